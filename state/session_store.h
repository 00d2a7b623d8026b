// The interface MQTT sessions are kept through. No hiredis here.
//
// A session is what MQTT asks a broker to remember for a client ID between
// network connections: the session generation (epoch), which node and
// connection own it, clean start / session expiry, when it was last seen,
// its Will Message, its subscriptions and the inbound QoS 2 packet IDs that
// still wait for PUBREL. docs/state.md describes every field.
//
// Every operation is asynchronous. The completion handler fires exactly once,
// posted to the executor passed with the call, also on error, timeout or
// shutdown: a hung Redis yields `store_error::timeout` after
// `command_timeout`, never a silent wait.
//
// Fencing: `connect` returns a new epoch, strictly greater than any epoch any
// node ever received for any client ID. Every later write for the session
// carries that epoch; a write whose epoch is not the stored one is refused
// with `store_error::fenced` and changes nothing. So a node that lost a
// session to another node can never overwrite newer state.
//
// Durability: `connect`, `store_subscriptions` and `qos2_hold` complete with
// success only after the write reached `wait_replicas` replicas (Redis
// `WAIT`). If that cannot be confirmed the handler gets an error and the
// caller must not acknowledge (CONNACK 0x03 for 3.1.1, 0x88 for 5.0).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace prometheus {
class Registry;
}
namespace wharf::config {
struct redis_config;
}

namespace wharf::state {

enum class store_error {
  unavailable = 1,  // no connection to a Redis primary (failover in progress, refused, ...)
  not_replicated,   // written, but WAIT saw fewer than wait_replicas replicas in wait_timeout
  timeout,          // no reply within command_timeout
  fenced,           // the caller's epoch is not the session's current epoch
  not_found,        // no such session
  bad_reply,        // Redis answered something this code does not understand
  shutting_down,    // the store is stopping
};

const boost::system::error_category& store_category() noexcept;
inline boost::system::error_code make_error_code(store_error e) noexcept {
  return {static_cast<int>(e), store_category()};
}

}  // namespace wharf::state

template <>
struct boost::system::is_error_code_enum<wharf::state::store_error> : std::true_type {};

namespace wharf::state {

// Session Expiry Interval meaning "never expires" (MQTT 5 3.1.2.11.2).
inline constexpr std::uint32_t never_expires = 0xFFFFFFFFu;

struct will_message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  // MQTT 5 Will Properties other than Will Delay Interval, kept as the codec
  // encodes them on the wire (the property list with its length prefix,
  // mqtt::encode_will_properties). Opaque to the store; empty for 3.1.1 and
  // for a will without properties.
  std::string properties;
  std::uint32_t delay_seconds = 0;  // Will Delay Interval; 0 for 3.1.1
};

struct subscription {
  std::string filter;
  // MQTT 5 Subscription Options byte: bits 0-1 QoS, 2 No Local,
  // 3 Retain As Published, 4-5 Retain Handling. 3.1.1: just the QoS.
  std::uint8_t options = 0;
  std::uint32_t identifier = 0;  // Subscription Identifier, 0 = none
};

struct connect_params {
  bool clean_start = true;
  // 3.1.1: clean session 1 -> 0, clean session 0 -> never_expires.
  std::uint32_t session_expiry_seconds = 0;
  std::optional<will_message> will;
  std::string node_id;        // empty = this store's node
  std::string connection_id;  // unique per network connection, for logs and takeover
};

struct connect_result {
  bool session_present = false;  // what CONNACK must say
  std::uint64_t epoch = 0;       // carry it on every later call for this session
  std::string previous_node;     // node that owned the session while connected; "" if none
  std::string previous_connection_id;
  bool taken_over = false;                          // a live node owned it; it was told to close its connection
  std::vector<std::uint16_t> qos2_awaiting_pubrel;  // inbound QoS 2 ids still held
  std::vector<subscription> subscriptions;
  // The previous connection's Will Message, which this connect makes due
  // (will delay 0, or the session ended with clean start). Claimed: no other
  // node will publish it. The caller publishes it.
  std::optional<will_message> will_to_publish;
};

enum class will_handling : std::uint8_t {
  discard,  // normal DISCONNECT (reason 0x00): delete the will
  publish,  // connection lost, protocol error, DISCONNECT 0x04, server-initiated close
};

struct disconnect_params {
  // The session expiry in force after this connection; MQTT 5 DISCONNECT may
  // change it. 0 ends the session now.
  std::uint32_t session_expiry_seconds = 0;
  will_handling will = will_handling::publish;
};

struct disconnect_result {
  // A will that is due now (will delay 0, or the session ended); claimed for
  // the caller to publish. Wills with a delay are published later through
  // poll_due_wills.
  std::optional<will_message> will_to_publish;
};

struct due_will {
  std::string client_id;
  will_message will;
};

struct sweep_result {
  std::vector<due_will> wills;         // claimed: publish each exactly here
  std::uint32_t expired_sessions = 0;  // sessions this sweep removed
  std::uint32_t reaped_nodes = 0;      // dead nodes whose sessions were disconnected
};

template <class T>
using handler = std::function<void(boost::system::result<T>)>;
using done_handler = std::function<void(boost::system::error_code)>;

// Called when another connection (on any node, this one included) took over
// a session this node owned. The server closes its connection for
// `client_id` if that connection's epoch is lower than `new_epoch`
// (MQTT 5: DISCONNECT 0x8E Session taken over).
using takeover_handler = std::function<void(std::string client_id, std::uint64_t new_epoch)>;

// Whether the store can write sessions now; what /readyz looks at.
struct store_health {
  bool has_primary = true;  // the Redis store is connected to a primary (always true in memory)
  // When it last lost (or, never having had one, started looking for) a
  // primary; meaningful while !has_primary.
  std::chrono::steady_clock::time_point no_primary_since{};
};

class session_store {
 public:
  virtual ~session_store() = default;

  // Load or create the session, bump its epoch, make this node and
  // connection its owner, store the will; tell a live previous owner.
  virtual void connect(std::string client_id, connect_params params, boost::asio::any_io_executor ex,
                       handler<connect_result> h) = 0;

  // The connection for `epoch` ended. Marks the session disconnected (or
  // deletes it if it ends now). Fenced.
  virtual void disconnect(std::string client_id, std::uint64_t epoch, disconnect_params params,
                          boost::asio::any_io_executor ex, handler<disconnect_result> h) = 0;

  // Inbound QoS 2: remember `packet_id` until PUBREL (before PUBREC).
  // Fenced; replicated before success.
  virtual void qos2_hold(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                         boost::asio::any_io_executor ex, done_handler h) = 0;

  // PUBREL arrived: forget `packet_id`. The result says whether it was held
  // (MQTT 5 PUBCOMP 0x92 when it was not). Fenced.
  virtual void qos2_release(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                            boost::asio::any_io_executor ex, handler<bool> h) = 0;

  // Change the session expiry interval of a connected session. Fenced.
  virtual void update_expiry(std::string client_id, std::uint64_t epoch, std::uint32_t session_expiry_seconds,
                             boost::asio::any_io_executor ex, done_handler h) = 0;

  // Add or replace (same filter) subscriptions and remove filters. Fenced;
  // replicated before success.
  virtual void store_subscriptions(std::string client_id, std::uint64_t epoch, std::vector<subscription> add,
                                   std::vector<std::string> remove, boost::asio::any_io_executor ex,
                                   done_handler h) = 0;

  // Claim the wills that are due (will delay or session expiry over),
  // remove expired sessions, and disconnect the sessions of dead nodes.
  // Call it periodically (every few seconds) from one place per node; any
  // number of nodes may call it, each due will is claimed by exactly one.
  virtual void poll_due_wills(boost::asio::any_io_executor ex, handler<sweep_result> h) = 0;

  // Register the takeover callback; it is posted to the executor given at
  // construction (or to `ex` here). Replaces a previous registration.
  virtual void on_takeover(boost::asio::any_io_executor ex, takeover_handler h) = 0;

  // Graceful stop: mark every session this node owns disconnected (their
  // wills become due as after a lost connection), delete this node's
  // heartbeat, stop timers. Operations called afterwards fail with
  // shutting_down. The handler fires when done or on error.
  virtual void shutdown(boost::asio::any_io_executor ex, done_handler h) = 0;

  virtual std::string_view node_id() const noexcept = 0;

  // Safe to call from any thread, cheap (no Redis round trip).
  virtual store_health health() const noexcept { return {}; }
};

// Memory (url "") or Redis (redis://, sentinel://). Throws
// std::invalid_argument on a malformed URL (start-up only). The store runs
// on `io` and starts its heartbeat at once.
std::unique_ptr<session_store> make_session_store(const config::redis_config& cfg, std::string node_id,
                                                  boost::asio::io_context& io, prometheus::Registry& registry);

}  // namespace wharf::state
