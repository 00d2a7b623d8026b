#include "protocols/mqtt/connection_machine.h"

#include <algorithm>
#include <atomic>

#include "config/config.h"
#include "protocols/mqtt/topic.h"

namespace wharf::mqtt {

using boost::system::error_code;

connection_options make_connection_options(const config::mqtt_limits& limits) {
  connection_options o;
  o.max_packet_size = limits.max_packet_size;
  o.receive_maximum = limits.receive_maximum;
  o.topic_alias_maximum = limits.topic_alias_maximum;
  o.max_keep_alive = limits.max_keep_alive;
  o.max_topic_length = limits.max_topic_length;
  o.max_topic_levels = limits.max_topic_levels;
  o.max_client_id_length = limits.max_client_id_length;
  o.max_user_properties = limits.max_user_properties;
  o.connect_timeout = limits.connect_timeout;
  return o;
}

connection_options make_connection_options(const config::mqtt_config& mqtt) {
  connection_options o = make_connection_options(mqtt.limits);
  o.deny_drops_silently = mqtt.deny_drops_silently;
  return o;
}

namespace {

constexpr std::uint32_t unlimited_packet_size = 268'435'460;

std::string fallback_client_id() {
  static std::atomic<std::uint64_t> counter{0};
  return "wharf-" + std::to_string(clock::now().time_since_epoch().count()) + "-" +
         std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

}  // namespace

connection_machine::connection_machine(connection_options options, clock::time_point now)
    : options_(options),
      decoder_(decoder_options{options.max_packet_size, options.max_user_properties}),
      opened_at_(now),
      last_received_(now) {}

std::uint16_t connection_machine::effective_receive_maximum() const noexcept {
  return options_.receive_maximum == 0 ? std::uint16_t{1} : options_.receive_maximum;
}

bool connection_machine::can_decode() const noexcept {
  if (state_ == state::awaiting_connect) return true;
  if (state_ != state::connected) return false;
  // 3.1.1 has no Receive Maximum: stop reading while the window is full of
  // messages waiting for the sink (they free up without the client's help).
  return v5() || acks_.size() < effective_receive_maximum();
}

bool connection_machine::wants_read() const noexcept { return can_decode(); }

std::optional<clock::time_point> connection_machine::next_deadline() const noexcept {
  if (state_ == state::awaiting_connect) return opened_at_ + options_.connect_timeout;
  if (state_ == state::connected && keep_alive_ > 0) {
    return last_received_ + std::chrono::milliseconds(std::uint64_t{keep_alive_} * 1500);
  }
  return std::nullopt;
}

// ---- input ----

void connection_machine::on_bytes(std::string_view bytes, clock::time_point now) {
  on_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), now);
}

void connection_machine::on_bytes(std::span<const std::uint8_t> bytes, clock::time_point now) {
  if (state_ == state::closed || bytes.empty()) return;
  // Keep Alive counts whole packets [MQTT-3.1.2-22]: a trickle of bytes that
  // never completes one does not keep the connection open.
  input_time_ = now;
  if (pending_offset_ < pending_input_.size()) {
    pending_input_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    process_pending();
  } else {
    process(bytes);
    if (!bytes.empty() && state_ != state::closed) {
      pending_input_.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      pending_offset_ = 0;
    }
  }
  flush_output();
}

void connection_machine::process(std::span<const std::uint8_t>& input) {
  while (!input.empty() && can_decode()) {
    auto r = decoder_.decode(input);
    if (!r) {
      fail(r.error());
      return;
    }
    if (!*r) break;
    last_received_ = input_time_;
    handle(std::move(**r));
    if (state_ == state::closed) return;
  }
}

void connection_machine::process_pending() {
  if (pending_offset_ >= pending_input_.size() || !can_decode()) return;
  std::span<const std::uint8_t> s(reinterpret_cast<const std::uint8_t*>(pending_input_.data()) + pending_offset_,
                                  pending_input_.size() - pending_offset_);
  process(s);
  pending_offset_ = pending_input_.size() - s.size();
  if (s.empty() || state_ == state::closed) {
    if (pending_input_.capacity() > 65536) {
      std::string().swap(pending_input_);
    } else {
      pending_input_.clear();
    }
    pending_offset_ = 0;
  }
}

void connection_machine::on_tick(clock::time_point now) {
  if (state_ == state::closed) return;
  if (state_ == state::awaiting_connect) {
    if (now - opened_at_ >= options_.connect_timeout) {
      finish(reason_code::keep_alive_timeout, errc::connect_timeout, false, false);
    }
    return;
  }
  if (state_ != state::connected || keep_alive_ == 0) return;
  if (!can_decode()) {
    // Reading is paused on our side: the client cannot be blamed for silence.
    last_received_ = now;
    return;
  }
  if (now - last_received_ >= std::chrono::milliseconds(std::uint64_t{keep_alive_} * 1500)) {
    fail(errc::keep_alive_timeout);
    flush_output();
  }
}

void connection_machine::on_socket_closed() {
  if (state_ == state::closed) return;
  finish(reason_code::unspecified_error, {}, true, true);
}

// ---- dispatch ----

void connection_machine::handle(packet&& p) {
  switch (p.index()) {
    case 0:  // CONNECT
      if (state_ == state::awaiting_connect) {
        handle_connect(std::get<connect>(std::move(p)));
      } else {
        fail(errc::second_connect);
      }
      return;
    case 2:  // PUBLISH
      handle_publish(std::get<publish>(std::move(p)));
      return;
    case 3:  // PUBACK
    case 4:  // PUBREC
    case 6:  // PUBCOMP: Wharf never sends PUBLISH; stray acks are ignored
      return;
    case 5:
      handle_pubrel(std::get<pubrel>(p));
      return;
    case 7:
      handle_subscribe(std::get<subscribe>(p));
      return;
    case 9:
      handle_unsubscribe(std::get<unsubscribe>(p));
      return;
    case 11:  // PINGREQ
      out_.append("\xD0\x00", 2);
      return;
    case 13:
      handle_disconnect(std::get<disconnect>(p));
      return;
    default:  // CONNACK, SUBACK, UNSUBACK, PINGRESP, AUTH
      fail(errc::unexpected_packet);
      return;
  }
}

// ---- CONNECT ----

void connection_machine::handle_connect(connect&& c) {
  const bool is_v5 = c.version == protocol_version::v5;
  if (is_v5 && c.props.authentication_method) {
    fail(errc::bad_authentication_method);
    return;
  }
  if (is_v5 && c.props.authentication_data) {
    // Authentication Data without Authentication Method (3.1.2.11.10).
    fail(errc::protocol_error);
    return;
  }
  if (c.client_id.size() > options_.max_client_id_length) {
    fail(errc::client_identifier_not_valid);
    return;
  }
  bool needs_id = false;
  if (c.client_id.empty()) {
    if (!is_v5 && !c.clean_start) {
      fail(errc::client_identifier_not_valid);
      return;
    }
    needs_id = true;
  }
  if (c.will) {
    const topic_limits limits{options_.max_topic_length, options_.max_topic_levels};
    if (auto ec = validate_topic_name(c.will->topic, limits)) {
      fail(ec);
      return;
    }
    if (c.will->props.payload_format_indicator == std::uint8_t{1} && !is_valid_mqtt_utf8(c.will->payload)) {
      fail(errc::payload_format_invalid);
      return;
    }
  }
  clean_start_ = c.clean_start;
  client_keep_alive_ = c.keep_alive;
  client_id_ = c.client_id;
  will_ = c.will ? std::make_unique<will_message>(*c.will) : nullptr;
  if (is_v5) {
    session_expiry_ = c.props.session_expiry_interval.value_or(0);
    client_max_packet_ = c.props.maximum_packet_size.value_or(unlimited_packet_size);
    request_problem_information_ = c.props.request_problem_information.value_or(1) != 0;
    request_response_information_ = c.props.request_response_information.value_or(0) != 0;
  }
  state_ = state::connect_pending;
  events_.emplace_back(connect_requested{std::move(c), needs_id});
}

void connection_machine::accept_connect(connect_decision decision) {
  if (state_ != state::connect_pending) return;
  if (is_failure(decision.reason_code)) {
    reject_connect(std::move(decision));
    return;
  }
  connack ack;
  ack.reason_code = reason_code::success;
  ack.session_present = decision.session_present && !clean_start_;
  if (client_id_.empty()) {
    client_id_ = decision.assigned_client_id.empty() ? fallback_client_id() : std::move(decision.assigned_client_id);
    client_id_assigned_ = true;
  }
  // Keep Alive: the client's, capped by max_keep_alive (0 = "never" is
  // capped too), unless the server decided otherwise.
  std::uint16_t ka = client_keep_alive_;
  if (options_.max_keep_alive != 0 && (ka == 0 || ka > options_.max_keep_alive)) {
    ka = options_.max_keep_alive;
  }
  if (decision.server_keep_alive) ka = *decision.server_keep_alive;
  keep_alive_ = ka;

  if (v5()) {
    properties& p = ack.props;
    if (effective_receive_maximum() != 65535) p.receive_maximum = effective_receive_maximum();
    if (options_.topic_alias_maximum > 0) p.topic_alias_maximum = options_.topic_alias_maximum;
    p.maximum_packet_size = options_.max_packet_size;
    if (client_id_assigned_) p.assigned_client_identifier = client_id_;
    if (keep_alive_ != client_keep_alive_) p.server_keep_alive = keep_alive_;
    if (decision.session_expiry_interval) {
      session_expiry_ = *decision.session_expiry_interval;
      p.session_expiry_interval = session_expiry_;
    }
    p.reason_string = std::move(decision.reason_string);
    p.server_reference = std::move(decision.server_reference);
    if (request_response_information_) {
      p.response_information = std::move(decision.response_information);
    }
    p.user_properties = std::move(decision.user_properties);
  }
  if (!send_limited(std::move(ack), false)) {
    // Even a CONNACK without properties exceeds the client's Maximum Packet
    // Size: it can never be told anything, so close [MQTT-3.1.2-24].
    finish(reason_code::packet_too_large, errc::packet_too_large, false, false);
    return;
  }
  state_ = state::connected;

  for (auto id : decision.qos2_awaiting_pubrel) {
    auto it = find_qos2(id);
    if (it == qos2_ids_.end() || it->packet_id != id) {
      qos2_ids_.insert(it, qos2_id{id, true, false});
    }
  }
  process_pending();
  flush_output();
}

void connection_machine::reject_connect(connect_decision decision) {
  if (state_ != state::connect_pending) return;
  reason_code rc = decision.reason_code;
  if (!is_failure(rc) || (v5() && !valid_for_connack(rc))) rc = reason_code::unspecified_error;
  connack ack;
  ack.reason_code = rc;
  if (v5()) {
    ack.props.reason_string = std::move(decision.reason_string);
    ack.props.server_reference = std::move(decision.server_reference);
    ack.props.user_properties = std::move(decision.user_properties);
  }
  send_limited(std::move(ack), false);
  finish(rc, {}, false, false);
}

// ---- PUBLISH ----

std::vector<connection_machine::qos2_id>::iterator connection_machine::find_qos2(std::uint16_t packet_id) noexcept {
  return std::lower_bound(qos2_ids_.begin(), qos2_ids_.end(), packet_id,
                          [](const qos2_id& e, std::uint16_t id) { return e.packet_id < id; });
}

void connection_machine::push_done_ack(std::uint16_t packet_id, mqtt::qos q, mqtt::reason_code rc) {
  acks_.push_back(ack_entry{next_token_++, packet_id, q, true, false, rc, std::nullopt});
}

void connection_machine::handle_publish(publish&& p) {
  const bool is_v5 = v5();
  if (is_v5) {
    if (!p.props.subscription_identifiers.empty()) {
      fail(errc::subscription_identifier_from_client);
      return;
    }
    if (p.props.topic_alias) {
      const std::uint16_t alias = *p.props.topic_alias;
      if (alias == 0 || alias > options_.topic_alias_maximum) {
        fail(errc::topic_alias_invalid);
        return;
      }
      if (p.topic.empty()) {
        if (aliases_.size() < alias || aliases_[alias - 1].empty()) {
          fail(errc::protocol_error);
          return;
        }
        p.topic = aliases_[alias - 1];
      } else {
        if (aliases_.size() < alias) aliases_.resize(options_.topic_alias_maximum);
        aliases_[alias - 1] = p.topic;
      }
      p.props.topic_alias.reset();
    }
  }

  // Problems the sender can be told about per message (5.0 QoS>0:
  // negative PUBACK/PUBREC in order); otherwise the connection closes.
  reason_code refuse = reason_code::success;
  const topic_limits limits{options_.max_topic_length, options_.max_topic_levels};
  if (validate_topic_name(p.topic, limits)) {
    refuse = reason_code::topic_name_invalid;
  } else if (is_v5 && p.props.payload_format_indicator == std::uint8_t{1} && !is_valid_mqtt_utf8(p.payload)) {
    refuse = reason_code::payload_format_invalid;
  }

  if (p.qos == qos::at_most_once) {
    if (refuse != reason_code::success) {
      fail(refuse == reason_code::topic_name_invalid ? errc::topic_name_invalid : errc::payload_format_invalid);
      return;
    }
    emit_publish(next_token_++, std::move(p));
    return;
  }

  // QoS 2 id already known: pending at the sink (its PUBREC will answer) or
  // awaiting PUBREL (answer PUBREC again). Never delivered twice.
  if (p.qos == qos::exactly_once) {
    auto it = find_qos2(p.packet_id);
    if (it != qos2_ids_.end() && it->packet_id == p.packet_id) {
      if (it->awaiting_pubrel) {
        // One repeated PUBREC per id waiting in the queue is enough; more
        // duplicates behind a slow sink would grow the queue unbounded.
        const bool queued = std::any_of(acks_.begin(), acks_.end(), [&](const ack_entry& e) {
          return !e.counts && e.packet_id == p.packet_id && e.qos == qos::exactly_once;
        });
        if (!queued) {
          push_done_ack(p.packet_id, p.qos, reason_code::success);
          release_acks();
        }
      }
      return;
    }
  }

  if (v5() ? inflight_ >= effective_receive_maximum()
           // 3.1.1 has no Receive Maximum: reading pauses while the sink
           // window is full (can_decode), so only QoS 2 packet ids held
           // for PUBREL, which only the client frees, are capped here.
           : p.qos == qos::exactly_once && qos2_ids_.size() >= effective_receive_maximum()) {
    fail(errc::receive_maximum_exceeded);
    return;
  }

  if (refuse != reason_code::success) {
    if (!is_v5) {
      fail(refuse == reason_code::topic_name_invalid ? errc::topic_name_invalid : errc::payload_format_invalid);
      return;
    }
    ++inflight_;
    acks_.push_back(ack_entry{next_token_++, p.packet_id, p.qos, true, true, refuse, {}});
    if (p.qos == qos::exactly_once) {
      qos2_ids_.insert(find_qos2(p.packet_id), qos2_id{p.packet_id, false, true});
    }
    release_acks();
    return;
  }

  ++inflight_;
  const publish_token token = next_token_++;
  acks_.push_back(ack_entry{token, p.packet_id, p.qos, false, true, reason_code::success, std::nullopt});
  if (p.qos == qos::exactly_once) {
    qos2_ids_.insert(find_qos2(p.packet_id), qos2_id{p.packet_id, false, true});
  }
  emit_publish(token, std::move(p));
}

void connection_machine::emit_publish(publish_token token, publish&& p) {
  // Built in place in the event queue: the payload is moved exactly once.
  auto& ev = std::get<publish_requested>(events_.emplace_back(std::in_place_type<publish_requested>));
  ev.token = token;
  ev.topic = std::move(p.topic);
  ev.payload = std::move(p.payload);
  ev.qos = p.qos;
  ev.retain = p.retain;
  ev.dup = p.dup;
  ev.packet_id = p.packet_id;
  ev.props = std::move(p.props);
}

void connection_machine::complete_publish(publish_token token, publish_outcome outcome) {
  if (state_ != state::connected) return;
  auto it = std::lower_bound(acks_.begin(), acks_.end(), token,
                             [](const ack_entry& e, publish_token t) { return e.token < t; });
  if (it == acks_.end() || it->token != token || it->done) return;

  const bool is_v5 = v5();
  reason_code rc = reason_code::success;
  switch (outcome.what) {
    case publish_outcome::kind::stored:
      break;
    case publish_outcome::kind::denied:
    case publish_outcome::kind::no_matching_route: {
      const reason_code code =
          outcome.what == publish_outcome::kind::denied ? reason_code::not_authorized : reason_code::topic_name_invalid;
      if (is_v5) {
        rc = code;
      } else if (!options_.deny_drops_silently) {
        finish(code, {}, false, true);
        return;
      }
      break;
    }
    case publish_outcome::kind::failed_permanent: {
      rc = outcome.reason_code;
      if (!is_failure(rc)) rc = reason_code::unspecified_error;
      if (!is_v5) {
        finish(rc, {}, false, true);
        return;
      }
      if (!valid_for_puback(rc)) {
        if (valid_for_disconnect(rc)) {  // e.g. 0x95 Packet too large
          send_limited(disconnect{rc, properties{.reason_string = std::move(outcome.reason_string)}}, false);
          finish(rc, {}, false, true);
          return;
        }
        rc = reason_code::unspecified_error;
      }
      break;
    }
    case publish_outcome::kind::failed_retryable:
      if (is_v5) {
        properties props;
        props.reason_string = std::move(outcome.reason_string);
        send_limited(disconnect{reason_code::server_busy, std::move(props)}, false);
      }
      finish(reason_code::server_busy, {}, false, true);
      return;
  }
  it->done = true;
  it->reason_code = rc;
  if (is_failure(rc)) it->reason_string = std::move(outcome.reason_string);
  release_acks();
  process_pending();
  flush_output();
}

void connection_machine::release_acks() {
  while (!acks_.empty() && acks_.front().done) {
    send_ack_entry(acks_.front());
    acks_.pop_front();
  }
}

void connection_machine::send_ack_entry(ack_entry& e) {
  properties props;
  props.reason_string = std::move(e.reason_string);
  if (e.qos == qos::at_least_once) {
    if (e.counts && inflight_ > 0) --inflight_;
    send_limited(puback{e.packet_id, e.reason_code, std::move(props)}, true);
    return;
  }
  auto it = find_qos2(e.packet_id);
  const bool known = it != qos2_ids_.end() && it->packet_id == e.packet_id;
  if (e.counts && known) {
    if (is_failure(e.reason_code)) {
      if (it->counts && inflight_ > 0) --inflight_;
      qos2_ids_.erase(it);
    } else {
      it->awaiting_pubrel = true;
      events_.emplace_back(qos2_held{e.packet_id});
    }
  }
  send_limited(pubrec{e.packet_id, e.reason_code, std::move(props)}, true);
}

void connection_machine::handle_pubrel(const pubrel& p) {
  auto it = find_qos2(p.packet_id);
  if (it != qos2_ids_.end() && it->packet_id == p.packet_id && it->awaiting_pubrel) {
    if (it->counts && inflight_ > 0) --inflight_;
    qos2_ids_.erase(it);
    events_.emplace_back(qos2_released{p.packet_id});
    send_limited(pubcomp{p.packet_id, reason_code::success, {}}, true);
    return;
  }
  send_limited(pubcomp{p.packet_id, v5() ? reason_code::packet_identifier_not_found : reason_code::success, {}}, true);
}

// ---- SUBSCRIBE / UNSUBSCRIBE: validated, then refused (ingest only) ----

void connection_machine::handle_subscribe(const subscribe& s) {
  const bool is_v5 = v5();
  const topic_limits limits{options_.max_topic_length, options_.max_topic_levels};
  suback ack;
  ack.packet_id = s.packet_id;
  ack.reason_codes.reserve(s.subscriptions.size());
  for (const auto& sub : s.subscriptions) {
    reason_code rc;
    if (validate_topic_filter(sub.filter, limits)) {
      rc = reason_code::topic_filter_invalid;
    } else if (is_shared_subscription(sub.filter)) {
      if (is_v5 && sub.no_local) {  // [MQTT-3.8.3-4]
        fail(errc::protocol_error);
        return;
      }
      rc = reason_code::shared_subscriptions_not_supported;
    } else {
      rc = reason_code::implementation_specific_error;
    }
    ack.reason_codes.push_back(is_v5 ? rc : reason_code::unspecified_error);
  }
  if (is_v5) ack.props.reason_string = "subscriptions are not supported by this server";
  send_limited(std::move(ack), true);
}

void connection_machine::handle_unsubscribe(const unsubscribe& u) {
  unsuback ack;
  ack.packet_id = u.packet_id;
  if (v5()) {
    const topic_limits limits{options_.max_topic_length, options_.max_topic_levels};
    ack.reason_codes.reserve(u.topic_filters.size());
    for (const auto& f : u.topic_filters) {
      ack.reason_codes.push_back(validate_topic_filter(f, limits) ? reason_code::topic_filter_invalid
                                                                  : reason_code::no_subscription_existed);
    }
  }
  send_limited(std::move(ack), true);
}

// ---- DISCONNECT ----

void connection_machine::handle_disconnect(const disconnect& d) {
  if (v5()) {
    if (d.props.server_reference) {  // a server-only property
      fail(errc::protocol_error);
      return;
    }
    if (d.props.session_expiry_interval) {
      if (session_expiry_ == 0 && *d.props.session_expiry_interval != 0) {
        fail(errc::session_expiry_invalid);  // [MQTT-3.14.2-2]
        return;
      }
      session_expiry_ = *d.props.session_expiry_interval;
      events_.emplace_back(session_expiry_update{session_expiry_});
    }
    finish(d.reason_code, {}, true, d.reason_code != reason_code::normal_disconnection);
    return;
  }
  finish(reason_code::normal_disconnection, {}, true, false);
}

void connection_machine::server_disconnect(reason_code rc, std::optional<std::string> server_reference,
                                           std::optional<std::string> reason_string, bool publish_will) {
  if (state_ == state::closed) return;
  if (state_ == state::connected) {
    if (v5()) {
      const reason_code sent = valid_for_disconnect(rc) ? rc : reason_code::unspecified_error;
      properties props;
      props.reason_string = std::move(reason_string);
      props.server_reference = std::move(server_reference);
      send_limited(disconnect{sent, std::move(props)}, false);
    }
    finish(rc, {}, false, publish_will);
    return;
  }
  if (state_ == state::connect_pending && (!v5() || valid_for_connack(rc)) && is_failure(rc)) {
    connack ack;
    ack.reason_code = rc;
    if (v5()) {
      ack.props.reason_string = std::move(reason_string);
      ack.props.server_reference = std::move(server_reference);
    }
    send_limited(std::move(ack), false);
  }
  finish(rc, {}, false, false);
}

// ---- errors and closing ----

void connection_machine::fail(error_code ec) {
  if (state_ == state::closed) return;
  reason_code rc = to_reason_code(ec);
  const auto version = decoder_.version();
  if (state_ == state::awaiting_connect || state_ == state::connect_pending) {
    // Before CONNACK: 5.0 answers with a CONNACK carrying the reason code;
    // 3.1.1 only for the two codes it has (0x01 version, 0x02 client id).
    if (version == protocol_version::v5 && valid_for_connack(rc)) {
      connack ack;
      ack.reason_code = rc;
      ack.props.reason_string = ec.message();
      send_limited(std::move(ack), false);
    } else if (version == protocol_version::v311 &&
               (rc == reason_code::unsupported_protocol_version || rc == reason_code::client_identifier_not_valid)) {
      send_limited(connack{false, rc, {}}, false);
    }
    finish(rc, ec, false, false);
    return;
  }
  if (version == protocol_version::v5) {
    if (!valid_for_disconnect(rc)) rc = reason_code::protocol_error;
    properties props;
    props.reason_string = ec.message();
    send_limited(disconnect{rc, std::move(props)}, false);
  }
  finish(rc, ec, false, true);
}

template <class P>
bool connection_machine::send_limited(P&& p, bool strip_if_no_problem_info) {
  const protocol_version version = decoder_.version().value_or(protocol_version::v311);
  // Reason strings come from anywhere (sink errors...): never send one that
  // is not valid MQTT UTF-8.
  if (p.props.reason_string && !is_valid_mqtt_utf8(*p.props.reason_string)) {
    p.props.reason_string.reset();
  }
  if (version == protocol_version::v5 && strip_if_no_problem_info && !request_problem_information_) {
    p.props.reason_string.reset();
    p.props.user_properties.clear();
  }
  const std::size_t before = out_.size();
  encode(p, version, out_);
  if (out_.size() - before <= client_max_packet_) return true;
  // Too large for the client: drop the Reason String and User Properties
  // first (spec 3.1.2.11.4); if still too large, do not send it at all.
  out_.resize(before);
  p.props.reason_string.reset();
  p.props.user_properties.clear();
  encode(p, version, out_);
  if (out_.size() - before <= client_max_packet_) return true;
  out_.resize(before);
  if constexpr (std::is_same_v<std::decay_t<P>, connack>) {
    // A CONNACK's other properties are optional to send: the client then
    // assumes the defaults, which only makes it more conservative, except
    // an assigned client identifier it would lose; keep that one longest.
    auto assigned = std::move(p.props.assigned_client_identifier);
    p.props = properties{};
    p.props.assigned_client_identifier = std::move(assigned);
    encode(p, version, out_);
    if (out_.size() - before <= client_max_packet_) return true;
    out_.resize(before);
  }
  return false;
}

void connection_machine::finish(reason_code rc, error_code ec, bool client_initiated, bool publish_will) {
  const bool was_connected = state_ == state::connected;
  state_ = state::closed;
  flush_output();
  if (publish_will && was_connected && will_) {
    std::chrono::seconds delay{0};
    if (v5()) {
      delay = std::chrono::seconds(std::min(will_->props.will_delay_interval.value_or(0), session_expiry_));
    }
    events_.emplace_back(will_requested{client_id_, std::move(*will_), delay});
  }
  will_.reset();
  events_.emplace_back(close_event{rc, ec, client_initiated});
  acks_.clear();
  qos2_ids_.clear();
  aliases_.clear();
  std::string().swap(pending_input_);
  pending_offset_ = 0;
}

void connection_machine::flush_output() {
  if (out_.empty()) return;
  events_.emplace_back(send_event{std::move(out_)});
  out_.clear();
}

}  // namespace wharf::mqtt
