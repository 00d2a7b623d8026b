// Errors found while decoding MQTT bytes or running a connection, as
// `boost::system::error_code`s of category `mqtt_category()`.
//
// Every error names the rule that was broken (so logs and tests can say
// which) and maps to exactly one MQTT 5.0 reason code through
// `to_reason_code`: that code is what a 5.0 client receives in DISCONNECT
// (or CONNACK before the connection is accepted). 3.1.1 clients are simply
// disconnected, except for the CONNECT errors 3.1.1 has a return code for.
#pragma once

#include <system_error>
#include <type_traits>

#include <boost/system/error_code.hpp>

#include "protocols/mqtt/reason_codes.h"

namespace wharf::mqtt {

enum class errc {
  // -> 0x81 Malformed Packet
  malformed_packet = 1,          // generic: lengths inconsistent, bytes missing
  invalid_packet_type,           // type 0, or 15 (AUTH) on 3.1.1
  reserved_flags,                // fixed-header flag bits not as specified
  remaining_length_invalid,      // over 4 bytes, or not minimally encoded
  invalid_utf8,                  // ill-formed UTF-8, U+0000 or surrogates
  invalid_qos,                   // QoS 3
  invalid_connect_flags,         // reserved bit, will flags inconsistent,
                                 // password without user name on 3.1.1
  invalid_property,              // unknown identifier, or not allowed here
  invalid_subscription_options,  // reserved bits, retain handling 3
  // -> 0x82 Protocol Error
  protocol_error,                       // generic
  duplicate_property,                   // a property that may appear once, twice
  invalid_property_value,               // e.g. Receive Maximum 0, bool not 0/1
  packet_identifier_zero,               // QoS>0 PUBLISH, SUBSCRIBE, PUBREL, ... id 0
  empty_subscription_list,              // SUBSCRIBE / UNSUBSCRIBE without entries
  first_packet_not_connect,             // any packet before CONNECT
  second_connect,                       // CONNECT after CONNECT
  unexpected_packet,                    // server-only packet (CONNACK, SUBACK, ...)
                                        // or AUTH without enhanced authentication
  session_expiry_invalid,               // DISCONNECT sets expiry after CONNECT had 0
  subscription_identifier_from_client,  // PUBLISH from a client with one
  // -> 0x84 Unsupported Protocol Version (3.1.1: CONNACK 0x01)
  unsupported_protocol_version,  // protocol level other than 4 or 5
  bad_protocol_name,             // not "MQTT"
  // -> 0x85 Client Identifier not valid (3.1.1: CONNACK 0x02)
  client_identifier_not_valid,
  // -> 0x8C Bad authentication method
  bad_authentication_method,
  // -> 0x8D Keep Alive timeout
  keep_alive_timeout,
  // -> 0x8F Topic Filter invalid
  topic_filter_invalid,
  // -> 0x90 Topic Name invalid
  topic_name_invalid,  // empty, wildcard, too long, too many levels
  // -> 0x93 Receive Maximum exceeded
  receive_maximum_exceeded,
  // -> 0x94 Topic Alias invalid
  topic_alias_invalid,  // 0, above our maximum, or unknown
  // -> 0x95 Packet too large
  packet_too_large,
  // -> 0x99 Payload format invalid
  payload_format_invalid,
  // -> 0x83 Implementation specific error
  too_many_user_properties,
  // connection never sent CONNECT in time: closed without a packet
  connect_timeout,
};

const boost::system::error_category& mqtt_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), mqtt_category()}; }

// The MQTT 5.0 reason code for an error (table in docs/mqtt.md).
reason_code to_reason_code(errc e) noexcept;
// Same, for an error code of any category (non-MQTT -> unspecified_error).
reason_code to_reason_code(const boost::system::error_code& ec) noexcept;

}  // namespace wharf::mqtt

template <>
struct boost::system::is_error_code_enum<wharf::mqtt::errc> : std::true_type {};

namespace wharf::mqtt {
inline std::error_code make_std_error_code(errc e) noexcept { return static_cast<std::error_code>(make_error_code(e)); }
}  // namespace wharf::mqtt
