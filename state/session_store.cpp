#include "state/session_store.h"

#include "config/config.h"
#include "state/memory/memory_session_store.h"
#include "state/redis/redis_session_store.h"
#include "state/redis/redis_url.h"

#include <stdexcept>

namespace wharf::state {
namespace {

class store_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "wharf.state"; }
  std::string message(int ev) const override {
    switch (static_cast<store_error>(ev)) {
      case store_error::unavailable:
        return "no Redis primary reachable";
      case store_error::not_replicated:
        return "write not confirmed by enough Redis replicas";
      case store_error::timeout:
        return "Redis did not answer within command_timeout";
      case store_error::fenced:
        return "stale session epoch: the session belongs to a newer connection";
      case store_error::not_found:
        return "no such session";
      case store_error::bad_reply:
        return "unexpected reply from Redis";
      case store_error::shutting_down:
        return "session store is shutting down";
    }
    return "unknown session store error";
  }
};

}  // namespace

const boost::system::error_category& store_category() noexcept {
  static const store_category_impl category;
  return category;
}

std::unique_ptr<session_store> make_session_store(const config::redis_config& cfg, std::string node_id,
                                                  boost::asio::io_context& io, prometheus::Registry& registry) {
  if (cfg.url.empty()) {
    return std::make_unique<memory_session_store>(std::move(node_id), io.get_executor(), registry);
  }
  auto target = parse_redis_url(cfg.url);
  if (!target) {
    throw std::invalid_argument(
        "redis.url: " + target.error().message() + " in \"" + cfg.url +
        "\"; use redis://host:port, rediss://host:port or sentinel://host:port,host:port/master");
  }
  return std::make_unique<redis_session_store>(cfg, *target, std::move(node_id), io, registry);
}

}  // namespace wharf::state
