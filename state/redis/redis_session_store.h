// The session store on replicated Redis (Asio transport, TCP or TLS; hiredis
// encodes commands and decodes replies).
//
// One command connection to the current primary carries every operation;
// mutating operations are single Lua scripts (state/redis/redis_scripts.cpp,
// docs/state.md), pipelined with WAIT where the operation must survive a
// failover. A second connection subscribes to this node's takeover channel
// and, with sentinel://, a third one to a Sentinel's +switch-master.
//
// The primary is found by asking each Sentinel in turn
// (SENTINEL get-master-addr-by-name) and checked with ROLE. The store
// rediscovers it on +switch-master, on a lost connection, a timeout, or a
// READONLY reply, with backoff (100 ms doubling to 2 s). Operations issued
// while there is no primary wait for one until their command_timeout and
// then fail with store_error::unavailable.
//
// Everything runs on a strand of the io_context given at construction.
// Destroy the store on that io_context's thread or after it stopped.
#pragma once

#include "state/redis/redis_url.h"
#include "state/session_store.h"

#include <boost/asio/io_context.hpp>

#include <memory>

namespace wharf::config {
struct redis_config;
}

namespace wharf::state {

class redis_session_store final : public session_store {
 public:
  // `key_prefix` starts every key and channel (docs/state.md); stores that
  // share a prefix share sessions. No quote or backslash in it.
  redis_session_store(const config::redis_config& cfg, redis_target target, std::string node_id,
                      boost::asio::io_context& io, prometheus::Registry& registry, std::string key_prefix = "wharf:");
  ~redis_session_store() override;

  void connect(std::string client_id, connect_params params, boost::asio::any_io_executor ex,
               handler<connect_result> h) override;
  void disconnect(std::string client_id, std::uint64_t epoch, disconnect_params params, boost::asio::any_io_executor ex,
                  handler<disconnect_result> h) override;
  void qos2_hold(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id, boost::asio::any_io_executor ex,
                 done_handler h) override;
  void qos2_release(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                    boost::asio::any_io_executor ex, handler<bool> h) override;
  void update_expiry(std::string client_id, std::uint64_t epoch, std::uint32_t session_expiry_seconds,
                     boost::asio::any_io_executor ex, done_handler h) override;
  void store_subscriptions(std::string client_id, std::uint64_t epoch, std::vector<subscription> add,
                           std::vector<std::string> remove, boost::asio::any_io_executor ex, done_handler h) override;
  void poll_due_wills(boost::asio::any_io_executor ex, handler<sweep_result> h) override;
  void on_takeover(boost::asio::any_io_executor ex, takeover_handler h) override;
  void shutdown(boost::asio::any_io_executor ex, done_handler h) override;
  std::string_view node_id() const noexcept override;
  store_health health() const noexcept override;

  // Redis commands sent so far (EVALSHA, EVAL, WAIT, heartbeats, discovery...).
  std::uint64_t commands_sent() const noexcept;
  // WAIT commands among them (one per batch of writes under load).
  std::uint64_t waits_sent() const noexcept;

  class impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace wharf::state
