// MQTT 5.0 reason codes (spec section 2.4) and MQTT 3.1.1 CONNACK return
// codes (3.1.1 section 3.2.2.3).
//
// Wharf speaks 5.0 reason codes internally everywhere. Packets normalised
// across versions (connack, suback, ...) carry `reason_code`; the codec maps
// them to the 3.1.1 wire values when encoding for a 3.1.1 client.
#pragma once

#include <cstdint>
#include <string_view>

namespace wharf::mqtt {

enum class reason_code : std::uint8_t {
  success = 0x00,
  normal_disconnection = 0x00,
  granted_qos_0 = 0x00,
  granted_qos_1 = 0x01,
  granted_qos_2 = 0x02,
  disconnect_with_will_message = 0x04,
  no_matching_subscribers = 0x10,
  no_subscription_existed = 0x11,
  continue_authentication = 0x18,
  re_authenticate = 0x19,
  unspecified_error = 0x80,
  malformed_packet = 0x81,
  protocol_error = 0x82,
  implementation_specific_error = 0x83,
  unsupported_protocol_version = 0x84,
  client_identifier_not_valid = 0x85,
  bad_user_name_or_password = 0x86,
  not_authorized = 0x87,
  server_unavailable = 0x88,
  server_busy = 0x89,
  banned = 0x8A,
  server_shutting_down = 0x8B,
  bad_authentication_method = 0x8C,
  keep_alive_timeout = 0x8D,
  session_taken_over = 0x8E,
  topic_filter_invalid = 0x8F,
  topic_name_invalid = 0x90,
  packet_identifier_in_use = 0x91,
  packet_identifier_not_found = 0x92,
  receive_maximum_exceeded = 0x93,
  topic_alias_invalid = 0x94,
  packet_too_large = 0x95,
  message_rate_too_high = 0x96,
  quota_exceeded = 0x97,
  administrative_action = 0x98,
  payload_format_invalid = 0x99,
  retain_not_supported = 0x9A,
  qos_not_supported = 0x9B,
  use_another_server = 0x9C,
  server_moved = 0x9D,
  shared_subscriptions_not_supported = 0x9E,
  connection_rate_exceeded = 0x9F,
  maximum_connect_time = 0xA0,
  subscription_identifiers_not_supported = 0xA1,
  wildcard_subscriptions_not_supported = 0xA2,
};

// MQTT 3.1.1 CONNACK return codes.
enum class connect_return_code : std::uint8_t {
  accepted = 0x00,
  unacceptable_protocol_version = 0x01,
  identifier_rejected = 0x02,
  server_unavailable = 0x03,
  bad_user_name_or_password = 0x04,
  not_authorized = 0x05,
};

// True for reason codes that report a failure (0x80 and above).
constexpr bool is_failure(reason_code rc) noexcept { return static_cast<std::uint8_t>(rc) >= 0x80; }

// The 3.1.1 CONNACK return code closest to a 5.0 CONNACK reason code
// (0x84 -> 1, 0x85 -> 2, 0x88/0x89/0x9C/0x9D/0x9F -> 3, 0x86 -> 4,
// 0x87/0x8A/0x8C -> 5; other failures -> 3 "server unavailable").
connect_return_code to_v311_connack(reason_code rc) noexcept;
// The 5.0 reason code for a 3.1.1 CONNACK return code (values above 5 map
// to unspecified_error).
reason_code from_v311_connack(std::uint8_t return_code) noexcept;

// True when `rc` is one of the values the 5.0 spec lists for the packet.
bool valid_for_connack(reason_code rc) noexcept;
bool valid_for_disconnect(reason_code rc) noexcept;
// PUBACK and PUBREC share one list of reason codes.
bool valid_for_puback(reason_code rc) noexcept;

// "Malformed Packet", "Server busy", ... (spec wording); "Unknown" otherwise.
std::string_view to_string(reason_code rc) noexcept;

}  // namespace wharf::mqtt
