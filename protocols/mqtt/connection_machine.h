// The per-connection MQTT state machine, Sans-I/O.
//
// The server feeds it what happened (bytes arrived, time passed, the sink
// stored a message, the session store decided about a CONNECT, the socket
// closed) and after each call drains `events()`: bytes to write, requests
// to act on, and finally `close`. The machine never blocks, never reads a
// clock and never touches a socket.
//
// What it promises:
//  - CONNECT first and once; everything the spec says about a CONNECT is
//    checked before `connect_requested` is emitted. Nothing else is decoded
//    until the server answers with `accept_connect` or `reject_connect`.
//  - A QoS 1/2 PUBLISH is acknowledged (PUBACK / PUBREC) only after
//    `complete_publish` for its token, and acknowledgements leave in PUBLISH
//    arrival order [MQTT-4.6.0-2] whatever order completions arrive in.
//  - All bytes produced by one call are coalesced into one `send` event.
//  - `close` is the last event ever emitted; later calls do nothing.
//  - Memory per connection is bounded: in-flight publishes by Receive
//    Maximum, aliases by Topic Alias Maximum, input by max packet size plus
//    the bytes of the `on_bytes` call that was being processed when
//    decoding paused (the server stops reading while `wants_read()` is false).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/container/deque.hpp>
#include <boost/system/error_code.hpp>

#include "protocols/mqtt/codec.h"
#include "protocols/mqtt/errors.h"
#include "protocols/mqtt/packets.h"
#include "protocols/mqtt/reason_codes.h"

namespace wharf::config {
struct mqtt_limits;
struct mqtt_config;
}  // namespace wharf::config

namespace wharf::mqtt {

using clock = std::chrono::steady_clock;

// Limits and settings of one connection. Defaults match
// wharf::config::mqtt_limits.
struct connection_options {
  std::uint32_t max_packet_size = 1u << 20;  // bytes, inbound (and advertised)
  std::uint16_t receive_maximum = 64;        // our inbound QoS>0 window
  std::uint16_t topic_alias_maximum = 64;    // aliases a client may set
  std::uint16_t max_keep_alive = 3600;       // seconds; caps the client's
  std::uint32_t max_topic_length = 1024;     // bytes
  std::uint32_t max_topic_levels = 32;
  std::uint32_t max_client_id_length = 128;          // bytes
  std::uint32_t max_user_properties = 32;            // per property list
  std::chrono::milliseconds connect_timeout{10000};  // socket open -> CONNECT
  // 3.1.1 has no negative PUBACK: a denied (or unroutable) QoS>0 PUBLISH is
  // acknowledged and dropped when true, else the connection is closed.
  bool deny_drops_silently = false;
};

// From the operator's config (config/config.h); keeps wharf_mqtt_core free
// of a link dependency on wharf_config.
connection_options make_connection_options(const config::mqtt_limits& limits);
// Same, plus the non-limit settings (deny_drops_silently).
connection_options make_connection_options(const config::mqtt_config& mqtt);

// Identifies one PUBLISH handed to the server, for `complete_publish`.
// Strictly increasing per connection (not necessarily by one).
using publish_token = std::uint64_t;

// ---- decisions the server hands in ----

struct connect_decision {
  // success accepts; a failure code (>= 0x80) rejects (3.1.1: mapped to the
  // nearest return code, see to_v311_connack).
  mqtt::reason_code reason_code = reason_code::success;
  bool session_present = false;  // forced false when rejecting or clean start
  // Required when `connect_requested::client_id_assignment_needed`; the
  // machine falls back to "wharf-<n>" if left empty.
  std::string assigned_client_id{};
  std::optional<std::uint16_t> server_keep_alive{};        // overrides the cap
  std::optional<std::uint32_t> session_expiry_interval{};  // 5.0: if capped
  std::optional<std::string> reason_string{};
  std::optional<std::string> server_reference{};  // with 0x9C / 0x9D
  std::optional<std::string> response_information{};
  std::vector<user_property> user_properties{};
  // Resumed session: QoS 2 packet ids still awaiting PUBREL (from the
  // session store), so a re-sent PUBLISH is not delivered twice.
  std::vector<std::uint16_t> qos2_awaiting_pubrel{};
};

struct publish_outcome {
  enum class kind : std::uint8_t {
    stored,             // sink confirmed -> PUBACK / PUBREC 0x00
    denied,             // ACL -> 0x87 Not authorized
    no_matching_route,  // no route -> 0x90 Topic Name invalid
    failed_permanent,   // `reason_code`: 0x97, 0x95, 0x99, 0x80 ...
    failed_retryable,   // sink could not confirm: close without an ack
                        // (5.0: DISCONNECT 0x89 Server busy)
  };
  kind what = kind::stored;
  mqtt::reason_code reason_code = reason_code::unspecified_error;  // failed_permanent
  std::optional<std::string> reason_string{};                      // 5.0, dropped if too large

  static publish_outcome stored() { return {}; }
  static publish_outcome denied() { return {kind::denied, reason_code::not_authorized, {}}; }
  static publish_outcome no_matching_route() { return {kind::no_matching_route, reason_code::topic_name_invalid, {}}; }
  static publish_outcome failed_permanent(mqtt::reason_code rc) { return {kind::failed_permanent, rc, {}}; }
  static publish_outcome failed_retryable() { return {kind::failed_retryable, reason_code::server_busy, {}}; }
};

// ---- events the machine emits ----

// Write these bytes to the socket, in order.
struct send_event {
  std::string bytes{};
};

// A valid CONNECT arrived. Answer with accept_connect / reject_connect.
struct connect_requested {
  mqtt::connect connect{};  // as received (will included, password binary)
  // Client sent an empty client id and may have one assigned (5.0, or
  // 3.1.1 with Clean Session 1): fill connect_decision::assigned_client_id.
  bool client_id_assignment_needed = false;
};

// Hand this message to the sink, then call complete_publish(token, ...).
// QoS 0 completions are optional (nothing is acknowledged for QoS 0).
struct publish_requested {
  publish_token token = 0;
  std::string topic{};    // Topic Alias resolved
  std::string payload{};  // move it into the record
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
  properties props{};  // user properties, content type, payload format,
                       // message expiry, response topic, correlation data
};

// The connection ended abnormally while a Will was stored: publish it after
// `delay` (0 = now; 5.0 min(Will Delay Interval, Session Expiry Interval)).
// A reconnect of the same client id within the delay cancels it (server).
struct will_requested {
  std::string client_id{};
  will_message will{};
  std::chrono::seconds delay{0};
};

// 5.0 DISCONNECT changed the Session Expiry Interval.
struct session_expiry_update {
  std::uint32_t seconds = 0;
};

// QoS 2 packet-id state for the session store (resume on another node).
struct qos2_held {  // PUBREC sent; id awaits PUBREL
  std::uint16_t packet_id = 0;
};
struct qos2_released {  // PUBCOMP sent; id free
  std::uint16_t packet_id = 0;
};

// Close the socket (after writing every `send` before it). Always last.
struct close_event {
  mqtt::reason_code reason_code = reason_code::normal_disconnection;  // sent or implied
  boost::system::error_code error{};                                  // the rule broken, if any (for logs)
  bool client_initiated = false;                                      // client DISCONNECT or socket closed
};

using event = std::variant<send_event, connect_requested, publish_requested, will_requested, session_expiry_update,
                           qos2_held, qos2_released, close_event>;

class connection_machine {
 public:
  connection_machine(connection_options options, clock::time_point now);

  // ---- inputs ----
  void on_bytes(std::span<const std::uint8_t> bytes, clock::time_point now);
  void on_bytes(std::string_view bytes, clock::time_point now);
  // Enforces the CONNECT timeout and Keep Alive (1.5 x the negotiated value).
  void on_tick(clock::time_point now);
  void accept_connect(connect_decision decision);
  void reject_connect(connect_decision decision);  // reason_code must be >= 0x80
  void complete_publish(publish_token token, publish_outcome outcome);
  // Server-initiated close: 0x8E takeover, 0x8B shutting down, 0x9C/0x9D
  // with a server reference (drain), 0x89 busy ... 5.0 gets a DISCONNECT
  // (or CONNACK if not yet accepted, when the code is allowed there).
  void server_disconnect(mqtt::reason_code rc, std::optional<std::string> server_reference = {},
                         std::optional<std::string> reason_string = {}, bool publish_will = true);
  void on_socket_closed();

  // ---- outputs ----
  std::vector<event>& events() noexcept { return events_; }
  void clear_events() noexcept { events_.clear(); }

  // ---- state ----
  // False while the machine will not decode more input (CONNECT decision
  // pending, 3.1.1 in-flight window full, closed): stop reading the socket
  // until a later call makes it true again.
  bool wants_read() const noexcept;
  bool connected() const noexcept { return state_ == state::connected; }
  bool closed() const noexcept { return state_ == state::closed; }
  std::optional<protocol_version> version() const noexcept { return decoder_.version(); }
  const std::string& client_id() const noexcept { return client_id_; }
  // When on_tick should next be called (CONNECT timeout or keep-alive).
  std::optional<clock::time_point> next_deadline() const noexcept;
  // QoS>0 PUBLISHes received and not yet fully acknowledged.
  std::size_t inflight() const noexcept { return inflight_; }
  // Negotiated values (after accept_connect).
  std::uint16_t keep_alive() const noexcept { return keep_alive_; }
  std::uint32_t client_maximum_packet_size() const noexcept { return client_max_packet_; }

 private:
  enum class state : std::uint8_t { awaiting_connect, connect_pending, connected, closed };
  struct ack_entry {
    publish_token token;
    std::uint16_t packet_id;
    mqtt::qos qos;
    bool done;
    bool counts;  // occupies an in-flight slot (false: repeated PUBREC)
    mqtt::reason_code reason_code;
    std::optional<std::string> reason_string;
  };
  struct qos2_id {
    std::uint16_t packet_id;
    bool awaiting_pubrel;  // false: waiting for the sink
    bool counts;           // occupies an in-flight slot (false: restored)
  };

  bool can_decode() const noexcept;
  void process(std::span<const std::uint8_t>& input);
  void process_pending();
  void handle(packet&& p);
  void handle_connect(connect&& c);
  void handle_publish(publish&& p);
  void emit_publish(publish_token token, publish&& p);
  void handle_pubrel(const pubrel& p);
  void handle_subscribe(const subscribe& s);
  void handle_unsubscribe(const unsubscribe& u);
  void handle_disconnect(const disconnect& d);
  void fail(boost::system::error_code ec);
  void push_done_ack(std::uint16_t packet_id, mqtt::qos q, mqtt::reason_code rc);
  void release_acks();
  void send_ack_entry(ack_entry& e);
  template <class P>
  // Appends `p` unless it exceeds the client's Maximum Packet Size even
  // without its optional properties; false when it was not sent.
  bool send_limited(P&& p, bool strip_if_no_problem_info);
  void finish(mqtt::reason_code rc, boost::system::error_code ec, bool client_initiated, bool publish_will);
  void flush_output();
  std::vector<qos2_id>::iterator find_qos2(std::uint16_t packet_id) noexcept;
  std::uint16_t effective_receive_maximum() const noexcept;
  bool v5() const noexcept { return decoder_.version() == protocol_version::v5; }

  connection_options options_;
  decoder decoder_;
  state state_ = state::awaiting_connect;
  clock::time_point opened_at_;
  clock::time_point last_received_;  // last complete packet
  clock::time_point input_time_;     // time of the latest on_bytes
  std::string pending_input_;        // undecoded bytes while paused
  std::size_t pending_offset_ = 0;
  std::string out_;  // bytes of the current call
  std::vector<event> events_;

  std::string client_id_;
  std::uint16_t client_keep_alive_ = 0;
  bool clean_start_ = true;
  // On the heap: most connections have no Will, and a will_message is
  // ~0.5 KiB inline (its properties).
  std::unique_ptr<will_message> will_;
  std::uint32_t session_expiry_ = 0;
  std::uint16_t keep_alive_ = 0;
  std::uint32_t client_max_packet_ = 268'435'460;
  bool request_problem_information_ = true;
  bool request_response_information_ = false;
  bool client_id_assigned_ = false;

  publish_token next_token_ = 1;
  // Arrival order, tokens increasing. Boost's deque allocates on first use
  // (std::deque's allocates ~600 bytes on construction, per idle connection).
  boost::container::deque<ack_entry> acks_;
  std::vector<qos2_id> qos2_ids_;  // sorted by packet id
  std::size_t inflight_ = 0;
  std::vector<std::string> aliases_;  // index alias-1
};

}  // namespace wharf::mqtt
