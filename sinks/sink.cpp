#include "sinks/sink.h"

namespace wharf::sinks {

std::string_view to_string(delivery_status s) noexcept {
  switch (s) {
    case delivery_status::stored:
      return "stored";
    case delivery_status::failed_retryable:
      return "failed_retryable";
    case delivery_status::failed_permanent:
      return "failed_permanent";
  }
  return "unknown";
}

}  // namespace wharf::sinks
