// The embedded single-node session store: in-process maps with the same
// semantics as the Redis store (epochs, fencing, takeover, will delay,
// expiry, QoS 2 ids), minus durability. Sessions die with the process.
//
// Thread-safe: calls may come from any thread; completions are posted to
// the executor passed with each call.
#pragma once

#include "state/session_store.h"
#include "state/store_metrics.h"

#include <boost/container/flat_map.hpp>
#include <boost/container/flat_set.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace wharf::state {

class memory_session_store final : public session_store {
 public:
  // Milliseconds since the Unix epoch; tests pass a fake clock.
  using clock_fn = std::function<std::int64_t()>;

  memory_session_store(std::string node_id, boost::asio::any_io_executor ex, prometheus::Registry& registry,
                       clock_fn clock = {});

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
  std::string_view node_id() const noexcept override { return node_id_; }

  // For tests: number of sessions held.
  std::size_t size() const;

 private:
  struct session {
    std::uint64_t epoch = 0;
    std::string node;  // empty: this node (the usual case, no copy of its id)
    std::string connection;
    bool clean_start = true;
    std::uint32_t expiry = 0;
    bool connected = false;
    std::int64_t last_seen = 0;
    std::int64_t disconnected_at = 0;
    std::unique_ptr<will_message> will;    // on the heap: most sessions have none
    std::optional<std::int64_t> will_due;  // set while disconnected with a pending will
    // Flat (sorted vectors): 24 bytes each while empty, the usual case.
    boost::container::flat_map<std::string, subscription> subscriptions;
    boost::container::flat_set<std::uint16_t> qos2;
  };

  bool expired(const session& s, std::int64_t now) const;
  const std::string& node_of(const session& s) const { return s.node.empty() ? node_id_ : s.node; }
  // Marks a connected session disconnected at `now` and schedules its will.
  // Returns a will that is due at once.
  std::optional<will_message> mark_disconnected(session& s, std::int64_t now, bool publish_will);
  boost::system::error_code check_epoch(const std::string& client_id, std::uint64_t epoch, session** out);

  const std::string node_id_;
  boost::asio::any_io_executor executor_;
  store_metrics metrics_;
  clock_fn clock_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, session> sessions_;
  std::uint64_t last_epoch_ = 0;
  bool stopped_ = false;
  boost::asio::any_io_executor takeover_executor_;
  takeover_handler takeover_;
};

}  // namespace wharf::state
