// Collects completions on a foreign thread (librdkafka's poll thread, the
// local log writer) and posts them to their executors: one post per run of
// records that share an executor, so a connection's completions arrive in
// submit order and a batch of deliveries costs one post per connection.
#pragma once

#include "sinks/sink.h"

#include <boost/asio/any_io_executor.hpp>

#include <utility>
#include <vector>

namespace wharf::sinks {

class completion_batch {
 public:
  void add(const boost::asio::any_io_executor& ex, completion done, delivery_result result);
  // Posts everything collected so far and empties the batch.
  void post_all();
  bool empty() const noexcept { return groups_.empty(); }

 private:
  struct item {
    completion done;
    delivery_result result;
  };
  struct group {
    boost::asio::any_io_executor ex;
    std::vector<item> items;
  };
  std::vector<group> groups_;
};

}  // namespace wharf::sinks
