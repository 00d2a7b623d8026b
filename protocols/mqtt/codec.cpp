#include "protocols/mqtt/codec.h"

#include <cstring>

#include "protocols/mqtt/topic.h"

namespace wharf::mqtt {
namespace {

using boost::system::error_code;

constexpr std::uint32_t max_varint = 268'435'455;

// Which packets a property may appear in (bit per context).
enum ctx : std::uint16_t {
  c_connect = 1 << 0,
  c_will = 1 << 1,
  c_connack = 1 << 2,
  c_publish = 1 << 3,
  c_puback = 1 << 4,  // PUBACK, PUBREC, PUBREL, PUBCOMP
  c_subscribe = 1 << 5,
  c_suback = 1 << 6,
  c_unsubscribe = 1 << 7,
  c_unsuback = 1 << 8,
  c_disconnect = 1 << 9,
  c_auth = 1 << 10,
  c_all = 0x7FF,
};

// Cursor over one packet's bytes. Every read checks bounds.
struct reader {
  const std::uint8_t* p;
  const std::uint8_t* end;

  std::size_t left() const noexcept { return static_cast<std::size_t>(end - p); }

  bool u8(std::uint8_t& v) noexcept {
    if (p >= end) return false;
    v = *p++;
    return true;
  }
  bool u16(std::uint16_t& v) noexcept {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
    p += 2;
    return true;
  }
  bool u32(std::uint32_t& v) noexcept {
    if (left() < 4) return false;
    v = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
    p += 4;
    return true;
  }
  // Variable Byte Integer: at most 4 bytes, minimally encoded.
  error_code varint(std::uint32_t& v) noexcept {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      std::uint8_t b;
      if (!u8(b)) return errc::malformed_packet;
      v |= std::uint32_t{static_cast<std::uint8_t>(b & 0x7F)} << (7 * i);
      if ((b & 0x80) == 0) {
        if (i > 0 && b == 0) return errc::malformed_packet;  // not minimal
        return {};
      }
    }
    return errc::malformed_packet;
  }
  error_code binary(std::string& out) {
    std::uint16_t n;
    if (!u16(n) || left() < n) return errc::malformed_packet;
    out.assign(reinterpret_cast<const char*>(p), n);
    p += n;
    return {};
  }
  error_code view(std::string_view& out) noexcept {
    std::uint16_t n;
    if (!u16(n) || left() < n) return errc::malformed_packet;
    out = std::string_view(reinterpret_cast<const char*>(p), n);
    p += n;
    return {};
  }
  error_code utf8(std::string& out) {
    std::string_view v;
    if (auto ec = view(v)) return ec;
    if (!is_valid_mqtt_utf8(v)) return errc::invalid_utf8;
    out.assign(v);
    return {};
  }
};

template <class T>
error_code set_once(std::optional<T>& field, T value) {
  if (field) return errc::duplicate_property;
  field = std::move(value);
  return {};
}

error_code read_byte_prop(reader& r, std::optional<std::uint8_t>& field, bool boolean) {
  std::uint8_t v;
  if (!r.u8(v)) return errc::malformed_packet;
  if (boolean && v > 1) return errc::invalid_property_value;
  return set_once(field, v);
}

error_code read_u16_prop(reader& r, std::optional<std::uint16_t>& field, bool nonzero) {
  std::uint16_t v;
  if (!r.u16(v)) return errc::malformed_packet;
  if (nonzero && v == 0) return errc::invalid_property_value;
  return set_once(field, v);
}

error_code read_u32_prop(reader& r, std::optional<std::uint32_t>& field, bool nonzero) {
  std::uint32_t v;
  if (!r.u32(v)) return errc::malformed_packet;
  if (nonzero && v == 0) return errc::invalid_property_value;
  return set_once(field, v);
}

error_code read_str_prop(reader& r, std::optional<std::string>& field, bool utf8) {
  if (field) return errc::duplicate_property;
  std::string v;
  if (auto ec = utf8 ? r.utf8(v) : r.binary(v)) return ec;
  field = std::move(v);
  return {};
}

// Property identifier -> contexts where it is allowed (0 = unknown).
constexpr std::uint16_t allowed_in(std::uint32_t id) noexcept {
  switch (id) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x08:
    case 0x09:
      return c_publish | c_will;
    case 0x0B:
      return c_publish | c_subscribe;
    case 0x11:
      return c_connect | c_connack | c_disconnect;
    case 0x12:
    case 0x13:
    case 0x1A:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
      return c_connack;
    case 0x15:
    case 0x16:
      return c_connect | c_connack | c_auth;
    case 0x17:
    case 0x19:
      return c_connect;
    case 0x18:
      return c_will;
    case 0x1C:
      return c_connack | c_disconnect;
    case 0x1F:
      return c_connack | c_puback | c_suback | c_unsuback | c_disconnect | c_auth;
    case 0x21:
    case 0x22:
    case 0x27:
      return c_connect | c_connack;
    case 0x23:
      return c_publish;
    case 0x26:
      return c_all;
    default:
      return 0;
  }
}

error_code read_properties(reader& r, properties& props, ctx where, const decoder_options& options) {
  std::uint32_t len;
  if (auto ec = r.varint(len)) return ec;
  if (len > r.left()) return errc::malformed_packet;
  reader pr{r.p, r.p + len};
  r.p += len;
  while (pr.left() > 0) {
    std::uint32_t id;
    if (auto ec = pr.varint(id)) return ec;
    if ((allowed_in(id) & where) == 0) return errc::invalid_property;
    error_code ec;
    switch (id) {
      case 0x01:
        ec = read_byte_prop(pr, props.payload_format_indicator, true);
        break;
      case 0x02:
        ec = read_u32_prop(pr, props.message_expiry_interval, false);
        break;
      case 0x03:
        ec = read_str_prop(pr, props.content_type, true);
        break;
      case 0x08: {
        ec = read_str_prop(pr, props.response_topic, true);
        if (!ec && validate_topic_name(*props.response_topic)) ec = errc::protocol_error;
        break;
      }
      case 0x09:
        ec = read_str_prop(pr, props.correlation_data, false);
        break;
      case 0x0B: {
        std::uint32_t v;
        if ((ec = pr.varint(v))) break;
        if (v == 0) {
          ec = errc::invalid_property_value;
        } else if (where == c_subscribe && !props.subscription_identifiers.empty()) {
          ec = errc::duplicate_property;
        } else {
          props.subscription_identifiers.push_back(v);
        }
        break;
      }
      case 0x11:
        ec = read_u32_prop(pr, props.session_expiry_interval, false);
        break;
      case 0x12:
        ec = read_str_prop(pr, props.assigned_client_identifier, true);
        break;
      case 0x13:
        ec = read_u16_prop(pr, props.server_keep_alive, false);
        break;
      case 0x15:
        ec = read_str_prop(pr, props.authentication_method, true);
        break;
      case 0x16:
        ec = read_str_prop(pr, props.authentication_data, false);
        break;
      case 0x17:
        ec = read_byte_prop(pr, props.request_problem_information, true);
        break;
      case 0x18:
        ec = read_u32_prop(pr, props.will_delay_interval, false);
        break;
      case 0x19:
        ec = read_byte_prop(pr, props.request_response_information, true);
        break;
      case 0x1A:
        ec = read_str_prop(pr, props.response_information, true);
        break;
      case 0x1C:
        ec = read_str_prop(pr, props.server_reference, true);
        break;
      case 0x1F:
        ec = read_str_prop(pr, props.reason_string, true);
        break;
      case 0x21:
        ec = read_u16_prop(pr, props.receive_maximum, true);
        break;
      case 0x22:
        ec = read_u16_prop(pr, props.topic_alias_maximum, false);
        break;
      case 0x23: {
        ec = read_u16_prop(pr, props.topic_alias, false);
        if (!ec && *props.topic_alias == 0) ec = errc::topic_alias_invalid;
        break;
      }
      case 0x24:
        ec = read_byte_prop(pr, props.maximum_qos, true);
        break;
      case 0x25:
        ec = read_byte_prop(pr, props.retain_available, true);
        break;
      case 0x26: {
        if (props.user_properties.size() >= options.max_user_properties) {
          ec = errc::too_many_user_properties;
          break;
        }
        std::string k, v;
        if ((ec = pr.utf8(k)) || (ec = pr.utf8(v))) break;
        props.user_properties.emplace_back(std::move(k), std::move(v));
        break;
      }
      case 0x27:
        ec = read_u32_prop(pr, props.maximum_packet_size, true);
        break;
      case 0x28:
        ec = read_byte_prop(pr, props.wildcard_subscription_available, true);
        break;
      case 0x29:
        ec = read_byte_prop(pr, props.subscription_identifier_available, true);
        break;
      case 0x2A:
        ec = read_byte_prop(pr, props.shared_subscription_available, true);
        break;
      default:
        ec = errc::invalid_property;
        break;
    }
    if (ec) return ec;
  }
  return {};
}

bool is_v5(const std::optional<protocol_version>& v) noexcept { return v == protocol_version::v5; }

// ---- per-packet parsers ----

error_code parse_connect(reader& r, connect& c, std::optional<protocol_version>& version,
                         const decoder_options& options) {
  std::string_view name;
  if (auto ec = r.view(name)) return ec;
  std::uint8_t level;
  if (!r.u8(level)) return errc::malformed_packet;
  const protocol_version asked = level >= 5 ? protocol_version::v5 : protocol_version::v311;
  if (!version) version = asked;
  if (name != "MQTT") {
    if (name == "MQIsdp") return errc::unsupported_protocol_version;
    return errc::bad_protocol_name;
  }
  if (level != 4 && level != 5) return errc::unsupported_protocol_version;
  c.version = asked;
  const bool v5 = asked == protocol_version::v5;

  std::uint8_t flags;
  if (!r.u8(flags)) return errc::malformed_packet;
  if (flags & 0x01) return errc::invalid_connect_flags;
  c.clean_start = flags & 0x02;
  const bool will = flags & 0x04;
  const std::uint8_t will_qos = (flags >> 3) & 0x03;
  const bool will_retain = flags & 0x20;
  const bool has_password = flags & 0x40;
  const bool has_username = flags & 0x80;
  if (will_qos == 3) return errc::invalid_qos;
  if (!will && (will_qos != 0 || will_retain)) return errc::invalid_connect_flags;
  if (!v5 && has_password && !has_username) return errc::invalid_connect_flags;
  if (!r.u16(c.keep_alive)) return errc::malformed_packet;
  if (v5) {
    if (auto ec = read_properties(r, c.props, c_connect, options)) return ec;
  }
  if (auto ec = r.utf8(c.client_id)) return ec;
  if (will) {
    will_message& w = c.will.emplace();
    w.qos = static_cast<qos>(will_qos);
    w.retain = will_retain;
    if (v5) {
      if (auto ec = read_properties(r, w.props, c_will, options)) return ec;
    }
    if (auto ec = r.utf8(w.topic)) return ec;
    if (auto ec = validate_topic_name(w.topic)) return ec;
    if (auto ec = r.binary(w.payload)) return ec;
  }
  if (has_username) {
    if (auto ec = r.utf8(c.username.emplace())) return ec;
  }
  if (has_password) {
    if (auto ec = r.binary(c.password.emplace())) return ec;
  }
  if (r.left() != 0) return errc::malformed_packet;
  return {};
}

error_code parse_connack(reader& r, std::uint8_t flags, connack& c, bool v5, const decoder_options& options) {
  if (flags != 0) return errc::reserved_flags;
  std::uint8_t ack_flags, code;
  if (!r.u8(ack_flags) || !r.u8(code)) return errc::malformed_packet;
  if (ack_flags & 0xFE) return errc::malformed_packet;
  c.session_present = ack_flags & 0x01;
  if (v5) {
    c.reason_code = static_cast<reason_code>(code);
    if (!valid_for_connack(c.reason_code)) return errc::malformed_packet;
    if (auto ec = read_properties(r, c.props, c_connack, options)) return ec;
  } else {
    if (code > 5) return errc::malformed_packet;
    c.reason_code = from_v311_connack(code);
  }
  if (r.left() != 0) return errc::malformed_packet;
  return {};
}

error_code parse_publish(reader& r, std::uint8_t flags, publish& p, bool v5, const decoder_options& options) {
  const std::uint8_t q = (flags >> 1) & 0x03;
  if (q == 3) return errc::invalid_qos;
  p.qos = static_cast<qos>(q);
  p.dup = flags & 0x08;
  p.retain = flags & 0x01;
  if (q == 0 && p.dup) return errc::reserved_flags;
  std::string_view topic;
  if (auto ec = r.view(topic)) return ec;
  if (!is_valid_mqtt_utf8(topic)) return errc::invalid_utf8;
  for (char ch : topic) {
    if (ch == '+' || ch == '#') return errc::topic_name_invalid;
  }
  if (q > 0) {
    if (!r.u16(p.packet_id)) return errc::malformed_packet;
    if (p.packet_id == 0) return errc::packet_identifier_zero;
  }
  if (v5) {
    if (auto ec = read_properties(r, p.props, c_publish, options)) return ec;
  }
  if (topic.empty()) {
    if (!v5) return errc::topic_name_invalid;
    if (!p.props.topic_alias) return errc::protocol_error;
  }
  p.topic.assign(topic);
  p.payload.assign(reinterpret_cast<const char*>(r.p), r.left());
  r.p = r.end;
  return {};
}

bool valid_ack_reason(std::uint8_t type, reason_code rc) noexcept {
  const auto v = static_cast<std::uint8_t>(rc);
  if (type == 6 || type == 7) return v == 0x00 || v == 0x92;  // PUBREL, PUBCOMP
  return valid_for_puback(rc);                                // PUBACK, PUBREC
}

template <class Ack>
error_code parse_ack(reader& r, std::uint8_t type, Ack& a, bool v5, const decoder_options& options) {
  if (!r.u16(a.packet_id)) return errc::malformed_packet;
  if (a.packet_id == 0) return errc::packet_identifier_zero;
  if (!v5) {
    return r.left() == 0 ? error_code{} : error_code{errc::malformed_packet};
  }
  if (r.left() == 0) return {};
  std::uint8_t code = 0;
  r.u8(code);
  a.reason_code = static_cast<reason_code>(code);
  if (!valid_ack_reason(type, a.reason_code)) return errc::malformed_packet;
  if (r.left() == 0) return {};
  if (auto ec = read_properties(r, a.props, c_puback, options)) return ec;
  return r.left() == 0 ? error_code{} : error_code{errc::malformed_packet};
}

error_code parse_subscribe(reader& r, subscribe& s, bool v5, const decoder_options& options) {
  if (!r.u16(s.packet_id)) return errc::malformed_packet;
  if (s.packet_id == 0) return errc::packet_identifier_zero;
  if (v5) {
    if (auto ec = read_properties(r, s.props, c_subscribe, options)) return ec;
  }
  while (r.left() > 0) {
    subscription& sub = s.subscriptions.emplace_back();
    if (auto ec = r.utf8(sub.filter)) return ec;
    std::uint8_t opts;
    if (!r.u8(opts)) return errc::malformed_packet;
    const std::uint8_t q = opts & 0x03;
    if (v5) {
      if (opts & 0xC0) return errc::invalid_subscription_options;
      if (q == 3) return errc::protocol_error;
      sub.no_local = opts & 0x04;
      sub.retain_as_published = opts & 0x08;
      sub.retain_handling = static_cast<std::uint8_t>((opts >> 4) & 0x03);
      if (sub.retain_handling == 3) return errc::protocol_error;
    } else {
      if (opts & 0xFC) return errc::invalid_subscription_options;
      if (q == 3) return errc::invalid_qos;
    }
    sub.max_qos = static_cast<qos>(q);
  }
  if (s.subscriptions.empty()) return errc::empty_subscription_list;
  return {};
}

error_code parse_suback(reader& r, suback& s, bool v5, const decoder_options& options) {
  if (!r.u16(s.packet_id)) return errc::malformed_packet;
  if (v5) {
    if (auto ec = read_properties(r, s.props, c_suback, options)) return ec;
  }
  while (r.left() > 0) {
    std::uint8_t code = 0;
    r.u8(code);
    if (!v5 && code > 2 && code != 0x80) return errc::malformed_packet;
    s.reason_codes.push_back(static_cast<reason_code>(code));
  }
  return {};
}

error_code parse_unsubscribe(reader& r, unsubscribe& u, bool v5, const decoder_options& options) {
  if (!r.u16(u.packet_id)) return errc::malformed_packet;
  if (u.packet_id == 0) return errc::packet_identifier_zero;
  if (v5) {
    if (auto ec = read_properties(r, u.props, c_unsubscribe, options)) return ec;
  }
  while (r.left() > 0) {
    if (auto ec = r.utf8(u.topic_filters.emplace_back())) return ec;
  }
  if (u.topic_filters.empty()) return errc::empty_subscription_list;
  return {};
}

error_code parse_unsuback(reader& r, unsuback& u, bool v5, const decoder_options& options) {
  if (!r.u16(u.packet_id)) return errc::malformed_packet;
  if (!v5) return r.left() == 0 ? error_code{} : error_code{errc::malformed_packet};
  if (auto ec = read_properties(r, u.props, c_unsuback, options)) return ec;
  while (r.left() > 0) {
    std::uint8_t code = 0;
    r.u8(code);
    u.reason_codes.push_back(static_cast<reason_code>(code));
  }
  return {};
}

// DISCONNECT and AUTH: optional reason code, then optional properties.
template <class P>
error_code parse_reason_and_props(reader& r, P& p, bool v5, ctx where, const decoder_options& options) {
  if (!v5 || r.left() == 0) {
    return r.left() == 0 ? error_code{} : error_code{errc::malformed_packet};
  }
  std::uint8_t code = 0;
  r.u8(code);
  p.reason_code = static_cast<reason_code>(code);
  if (where == c_disconnect && !valid_for_disconnect(p.reason_code)) {
    return errc::malformed_packet;
  }
  if (where == c_auth && code != 0x00 && code != 0x18 && code != 0x19) {
    return errc::malformed_packet;
  }
  if (r.left() == 0) return {};
  if (auto ec = read_properties(r, p.props, where, options)) return ec;
  return r.left() == 0 ? error_code{} : error_code{errc::malformed_packet};
}

constexpr std::uint8_t required_flags(std::uint8_t type) noexcept {
  return (type == 6 || type == 8 || type == 10) ? 0x02 : 0x00;
}

}  // namespace

// ---- decoder ----

decoder::decoder(decoder_options options, std::optional<protocol_version> version) noexcept
    : options_(options), version_(version) {}

boost::system::result<std::optional<packet>> decoder::decode(std::string_view& input) {
  std::span<const std::uint8_t> s(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  auto r = decode(s);
  input.remove_prefix(input.size() - s.size());
  return r;
}

boost::system::result<std::optional<packet>> decoder::decode(std::span<const std::uint8_t>& input) {
  // One result object, filled in place and returned by NRVO: a decoded
  // packet is never moved between here and the caller.
  boost::system::result<std::optional<packet>> res{boost::system::in_place_value};
  if (error_) {
    res = error_;
    return res;
  }
  if (!header_done_) {
    while (!input.empty()) {
      const std::uint8_t b = input.front();
      input = input.subspan(1);
      if (header_len_ == 0) {
        const std::uint8_t type = b >> 4;
        if (type == 0 || (type == 15 && version_ == protocol_version::v311)) {
          error_ = errc::invalid_packet_type;
        } else if (!version_ && type != 1) {
          error_ = errc::first_packet_not_connect;
        } else if (type != 3 && (b & 0x0F) != required_flags(type)) {
          error_ = errc::reserved_flags;
        }
        if (error_) {
          res = error_;
          return res;
        }
        header_[header_len_++] = b;
        continue;
      }
      header_[header_len_++] = b;
      if (b & 0x80) {
        if (header_len_ == 5) {
          res = error_ = errc::remaining_length_invalid;
          return res;
        }
        continue;
      }
      if (header_len_ > 2 && b == 0) {
        res = error_ = errc::remaining_length_invalid;
        return res;
      }
      std::uint32_t len = 0;
      for (std::size_t i = 1; i < header_len_; ++i) {
        len |= std::uint32_t{static_cast<std::uint8_t>(header_[i] & 0x7F)} << (7 * (i - 1));
      }
      if (std::uint64_t{header_len_} + len > options_.max_packet_size) {
        res = error_ = errc::packet_too_large;
        return res;
      }
      remaining_ = len;
      header_done_ = true;
      break;
    }
    if (!header_done_) return res;
  }

  const std::uint8_t* body;
  if (buffer_.empty() && input.size() >= remaining_) {
    body = input.data();
    input = input.subspan(remaining_);
  } else {
    const std::size_t need = remaining_ - buffer_.size();
    const std::size_t take = need < input.size() ? need : input.size();
    buffer_.append(reinterpret_cast<const char*>(input.data()), take);
    input = input.subspan(take);
    if (buffer_.size() < remaining_) return res;
    body = reinterpret_cast<const std::uint8_t*>(buffer_.data());
  }
  const std::uint8_t first = header_[0];
  const error_code ec = parse(first, body, remaining_, *res);
  header_len_ = 0;
  header_done_ = false;
  remaining_ = 0;
  if (buffer_.capacity() > 65536) {
    std::string().swap(buffer_);
  } else {
    buffer_.clear();
  }
  if (ec) res = error_ = ec;
  return res;
}

error_code decoder::parse(std::uint8_t first, const std::uint8_t* body, std::size_t len, std::optional<packet>& out) {
  reader r{body, body + len};
  const std::uint8_t type = first >> 4;
  const std::uint8_t flags = first & 0x0F;
  const bool v5 = is_v5(version_);
  auto make = [&out]<class T>(std::in_place_type_t<T> t) -> T& { return std::get<T>(out.emplace(t)); };
  switch (type) {
    case 1:
      return parse_connect(r, make(std::in_place_type<connect>), version_, options_);
    case 2:
      return parse_connack(r, flags, make(std::in_place_type<connack>), v5, options_);
    case 3:
      return parse_publish(r, flags, make(std::in_place_type<publish>), v5, options_);
    case 4:
      return parse_ack(r, type, make(std::in_place_type<puback>), v5, options_);
    case 5:
      return parse_ack(r, type, make(std::in_place_type<pubrec>), v5, options_);
    case 6:
      return parse_ack(r, type, make(std::in_place_type<pubrel>), v5, options_);
    case 7:
      return parse_ack(r, type, make(std::in_place_type<pubcomp>), v5, options_);
    case 8:
      return parse_subscribe(r, make(std::in_place_type<subscribe>), v5, options_);
    case 9:
      return parse_suback(r, make(std::in_place_type<suback>), v5, options_);
    case 10:
      return parse_unsubscribe(r, make(std::in_place_type<unsubscribe>), v5, options_);
    case 11:
      return parse_unsuback(r, make(std::in_place_type<unsuback>), v5, options_);
    case 12:
      if (len != 0) return errc::malformed_packet;
      out.emplace(pingreq{});
      return {};
    case 13:
      if (len != 0) return errc::malformed_packet;
      out.emplace(pingresp{});
      return {};
    case 14:
      return parse_reason_and_props(r, make(std::in_place_type<disconnect>), v5, c_disconnect, options_);
    case 15:
      if (!v5) return errc::invalid_packet_type;
      return parse_reason_and_props(r, make(std::in_place_type<auth>), v5, c_auth, options_);
    default:
      return errc::invalid_packet_type;
  }
}

boost::system::result<packet> decode_one(std::string_view bytes, protocol_version version, decoder_options options) {
  decoder d(options, version);
  auto r = d.decode(bytes);
  if (!r) return r.error();
  if (!*r || !bytes.empty()) return errc::malformed_packet;
  return std::move(**r);
}

// ---- encoder ----

namespace {

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u16(std::string& out, std::uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
  out.append(b, 2);
}
void put_u32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF),
                     static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v & 0xFF)};
  out.append(b, 4);
}
void put_str(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

bool props_empty(const properties& p) noexcept {
  static const properties empty{};
  return p == empty;
}

void put_properties(std::string& out, const properties& p) {
  std::string body;
  auto byte = [&](std::uint8_t id, const std::optional<std::uint8_t>& v) {
    if (v) {
      put_u8(body, id);
      put_u8(body, *v);
    }
  };
  auto u16 = [&](std::uint8_t id, const std::optional<std::uint16_t>& v) {
    if (v) {
      put_u8(body, id);
      put_u16(body, *v);
    }
  };
  auto u32 = [&](std::uint8_t id, const std::optional<std::uint32_t>& v) {
    if (v) {
      put_u8(body, id);
      put_u32(body, *v);
    }
  };
  auto str = [&](std::uint8_t id, const std::optional<std::string>& v) {
    if (v) {
      put_u8(body, id);
      put_str(body, *v);
    }
  };
  byte(0x01, p.payload_format_indicator);
  u32(0x02, p.message_expiry_interval);
  str(0x03, p.content_type);
  str(0x08, p.response_topic);
  str(0x09, p.correlation_data);
  for (auto id : p.subscription_identifiers) {
    put_u8(body, 0x0B);
    encode_varint(id, body);
  }
  u32(0x11, p.session_expiry_interval);
  str(0x12, p.assigned_client_identifier);
  u16(0x13, p.server_keep_alive);
  str(0x15, p.authentication_method);
  str(0x16, p.authentication_data);
  byte(0x17, p.request_problem_information);
  u32(0x18, p.will_delay_interval);
  byte(0x19, p.request_response_information);
  str(0x1A, p.response_information);
  str(0x1C, p.server_reference);
  str(0x1F, p.reason_string);
  u16(0x21, p.receive_maximum);
  u16(0x22, p.topic_alias_maximum);
  u16(0x23, p.topic_alias);
  byte(0x24, p.maximum_qos);
  byte(0x25, p.retain_available);
  for (const auto& [k, v] : p.user_properties) {
    put_u8(body, 0x26);
    put_str(body, k);
    put_str(body, v);
  }
  u32(0x27, p.maximum_packet_size);
  byte(0x28, p.wildcard_subscription_available);
  byte(0x29, p.subscription_identifier_available);
  byte(0x2A, p.shared_subscription_available);
  encode_varint(static_cast<std::uint32_t>(body.size()), out);
  out.append(body);
}

// Writes the fixed header and the body produced by `write_body`.
template <class F>
void framed(std::string& out, std::uint8_t first, F&& write_body) {
  const std::size_t start = out.size();
  out.append(5, '\0');
  write_body(out);
  const std::size_t len = out.size() - start - 5;
  char hdr[5];
  hdr[0] = static_cast<char>(first);
  std::size_t n = 1;
  std::size_t v = len;
  do {
    std::uint8_t b = v & 0x7F;
    v >>= 7;
    if (v) b |= 0x80;
    hdr[n++] = static_cast<char>(b);
  } while (v && n < 5);
  const std::size_t gap = 5 - n;
  std::memcpy(out.data() + start + gap, hdr, n);
  if (gap) out.erase(start, gap);
}

template <class Ack>
void encode_ack(std::uint8_t first, const Ack& a, protocol_version version, std::string& out) {
  const bool v5 = version == protocol_version::v5;
  const bool no_props = !v5 || props_empty(a.props);
  if (no_props && (!v5 || a.reason_code == reason_code::success)) {
    const char b[4] = {static_cast<char>(first), 2, static_cast<char>(a.packet_id >> 8),
                       static_cast<char>(a.packet_id & 0xFF)};
    out.append(b, 4);
    return;
  }
  framed(out, first, [&](std::string& o) {
    put_u16(o, a.packet_id);
    put_u8(o, static_cast<std::uint8_t>(a.reason_code));
    if (!no_props) put_properties(o, a.props);
  });
}

void encode_connect(const connect& c, protocol_version version, std::string& out) {
  const bool v5 = version == protocol_version::v5;
  framed(out, 0x10, [&](std::string& o) {
    put_str(o, "MQTT");
    put_u8(o, static_cast<std::uint8_t>(version));
    std::uint8_t flags = 0;
    if (c.clean_start) flags |= 0x02;
    if (c.will) {
      flags |= 0x04;
      flags |= static_cast<std::uint8_t>(static_cast<std::uint8_t>(c.will->qos) << 3);
      if (c.will->retain) flags |= 0x20;
    }
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    put_u8(o, flags);
    put_u16(o, c.keep_alive);
    if (v5) put_properties(o, c.props);
    put_str(o, c.client_id);
    if (c.will) {
      if (v5) put_properties(o, c.will->props);
      put_str(o, c.will->topic);
      put_str(o, c.will->payload);
    }
    if (c.username) put_str(o, *c.username);
    if (c.password) put_str(o, *c.password);
  });
}

void encode_publish(const publish& p, protocol_version version, std::string& out) {
  std::uint8_t first = 0x30 | static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.qos) << 1);
  if (p.dup) first |= 0x08;
  if (p.retain) first |= 0x01;
  framed(out, first, [&](std::string& o) {
    put_str(o, p.topic);
    if (p.qos != qos::at_most_once) put_u16(o, p.packet_id);
    if (version == protocol_version::v5) put_properties(o, p.props);
    o.append(p.payload);
  });
}

void encode_subscribe(const subscribe& s, protocol_version version, std::string& out) {
  const bool v5 = version == protocol_version::v5;
  framed(out, 0x82, [&](std::string& o) {
    put_u16(o, s.packet_id);
    if (v5) put_properties(o, s.props);
    for (const auto& sub : s.subscriptions) {
      put_str(o, sub.filter);
      std::uint8_t opts = static_cast<std::uint8_t>(sub.max_qos);
      if (v5) {
        if (sub.no_local) opts |= 0x04;
        if (sub.retain_as_published) opts |= 0x08;
        opts |= static_cast<std::uint8_t>(sub.retain_handling << 4);
      }
      put_u8(o, opts);
    }
  });
}

void encode_unsubscribe(const unsubscribe& u, protocol_version version, std::string& out) {
  framed(out, 0xA2, [&](std::string& o) {
    put_u16(o, u.packet_id);
    if (version == protocol_version::v5) put_properties(o, u.props);
    for (const auto& f : u.topic_filters) put_str(o, f);
  });
}

template <class P>
void encode_reason_and_props(std::uint8_t first, const P& p, protocol_version version, std::string& out) {
  if (version != protocol_version::v5 || (p.reason_code == reason_code::success && props_empty(p.props))) {
    const char b[2] = {static_cast<char>(first), 0};
    out.append(b, 2);
    return;
  }
  framed(out, first, [&](std::string& o) {
    put_u8(o, static_cast<std::uint8_t>(p.reason_code));
    if (!props_empty(p.props)) put_properties(o, p.props);
  });
}

}  // namespace

void encode_varint(std::uint32_t n, std::string& out) {
  if (n > max_varint) n = max_varint;
  do {
    std::uint8_t b = n & 0x7F;
    n >>= 7;
    if (n) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n);
}

void encode(const connack& c, protocol_version version, std::string& out) {
  if (version != protocol_version::v5) {
    const char b[4] = {0x20, 2, static_cast<char>(c.session_present ? 1 : 0),
                       static_cast<char>(to_v311_connack(c.reason_code))};
    out.append(b, 4);
    return;
  }
  framed(out, 0x20, [&](std::string& o) {
    put_u8(o, c.session_present ? 1 : 0);
    put_u8(o, static_cast<std::uint8_t>(c.reason_code));
    put_properties(o, c.props);
  });
}

void encode(const puback& p, protocol_version v, std::string& out) { encode_ack(0x40, p, v, out); }
void encode(const pubrec& p, protocol_version v, std::string& out) { encode_ack(0x50, p, v, out); }
void encode(const pubrel& p, protocol_version v, std::string& out) { encode_ack(0x62, p, v, out); }
void encode(const pubcomp& p, protocol_version v, std::string& out) { encode_ack(0x70, p, v, out); }

void encode(const suback& s, protocol_version version, std::string& out) {
  const bool v5 = version == protocol_version::v5;
  framed(out, 0x90, [&](std::string& o) {
    put_u16(o, s.packet_id);
    if (v5) put_properties(o, s.props);
    for (auto rc : s.reason_codes) {
      auto b = static_cast<std::uint8_t>(rc);
      if (!v5 && b > 2) b = 0x80;
      put_u8(o, b);
    }
  });
}

void encode(const unsuback& u, protocol_version version, std::string& out) {
  framed(out, 0xB0, [&](std::string& o) {
    put_u16(o, u.packet_id);
    if (version != protocol_version::v5) return;
    put_properties(o, u.props);
    for (auto rc : u.reason_codes) put_u8(o, static_cast<std::uint8_t>(rc));
  });
}

void encode(const disconnect& d, protocol_version version, std::string& out) {
  encode_reason_and_props(0xE0, d, version, out);
}

void encode(const packet& p, protocol_version version, std::string& out) {
  std::visit(
      [&](const auto& pk) {
        using T = std::decay_t<decltype(pk)>;
        if constexpr (std::is_same_v<T, connect>) {
          encode_connect(pk, version, out);
        } else if constexpr (std::is_same_v<T, publish>) {
          encode_publish(pk, version, out);
        } else if constexpr (std::is_same_v<T, subscribe>) {
          encode_subscribe(pk, version, out);
        } else if constexpr (std::is_same_v<T, unsubscribe>) {
          encode_unsubscribe(pk, version, out);
        } else if constexpr (std::is_same_v<T, pingreq>) {
          out.append("\xC0\x00", 2);
        } else if constexpr (std::is_same_v<T, pingresp>) {
          out.append("\xD0\x00", 2);
        } else if constexpr (std::is_same_v<T, auth>) {
          encode_reason_and_props(0xF0, pk, version, out);
        } else {
          encode(pk, version, out);
        }
      },
      p);
}

std::size_t encoded_size(const packet& p, protocol_version version) {
  std::string scratch;
  encode(p, version, scratch);
  return scratch.size();
}

std::string encode_will_properties(const properties& p) {
  std::string out;
  put_properties(out, p);
  return out;
}

boost::system::result<properties> decode_will_properties(std::string_view bytes, const decoder_options& options) {
  properties props;
  reader r{reinterpret_cast<const std::uint8_t*>(bytes.data()),
           reinterpret_cast<const std::uint8_t*>(bytes.data()) + bytes.size()};
  if (auto ec = read_properties(r, props, c_will, options)) return ec;
  if (r.left() != 0) {
    error_code trailing = errc::malformed_packet;
    return trailing;
  }
  return props;
}

}  // namespace wharf::mqtt
