// A sink that stores nothing and reports every record as stored at once
// (posted to the submitting executor). For benchmarks of the protocol layers
// only: it breaks the "ack after durable" promise by design.
#pragma once

#include "sinks/sink.h"

#include <memory>

namespace prometheus {
class Registry;
}

namespace wharf::sinks {

std::unique_ptr<sink> make_null_sink(prometheus::Registry& registry);

}  // namespace wharf::sinks
