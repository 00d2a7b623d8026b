// MQTT control packets, 3.1.1 and 5.0 normalised into one struct per kind.
//
// On 3.1.1 every `properties` member stays empty and reason codes are the
// 5.0 values (the codec maps CONNACK/SUBACK codes to the 3.1.1 wire values).
// Strings are owned `std::string`s filled once from the input bytes: a
// PUBLISH payload can be moved out of the packet into a sink record without
// another copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "protocols/mqtt/reason_codes.h"

namespace wharf::mqtt {

enum class protocol_version : std::uint8_t { v311 = 4, v5 = 5 };

enum class qos : std::uint8_t { at_most_once = 0, at_least_once = 1, exactly_once = 2 };

using user_property = std::pair<std::string, std::string>;

// Every MQTT 5.0 property (spec 2.2.2.2). Which ones a packet may carry is
// checked by the decoder; the encoder writes whatever is set.
struct properties {
  std::optional<std::uint8_t> payload_format_indicator{};           // 0x01
  std::optional<std::uint32_t> message_expiry_interval{};           // 0x02
  std::optional<std::string> content_type{};                        // 0x03
  std::optional<std::string> response_topic{};                      // 0x08
  std::optional<std::string> correlation_data{};                    // 0x09 binary
  std::vector<std::uint32_t> subscription_identifiers{};            // 0x0B
  std::optional<std::uint32_t> session_expiry_interval{};           // 0x11
  std::optional<std::string> assigned_client_identifier{};          // 0x12
  std::optional<std::uint16_t> server_keep_alive{};                 // 0x13
  std::optional<std::string> authentication_method{};               // 0x15
  std::optional<std::string> authentication_data{};                 // 0x16 binary
  std::optional<std::uint8_t> request_problem_information{};        // 0x17
  std::optional<std::uint32_t> will_delay_interval{};               // 0x18
  std::optional<std::uint8_t> request_response_information{};       // 0x19
  std::optional<std::string> response_information{};                // 0x1A
  std::optional<std::string> server_reference{};                    // 0x1C
  std::optional<std::string> reason_string{};                       // 0x1F
  std::optional<std::uint16_t> receive_maximum{};                   // 0x21
  std::optional<std::uint16_t> topic_alias_maximum{};               // 0x22
  std::optional<std::uint16_t> topic_alias{};                       // 0x23
  std::optional<std::uint8_t> maximum_qos{};                        // 0x24
  std::optional<std::uint8_t> retain_available{};                   // 0x25
  std::vector<user_property> user_properties{};                     // 0x26, in order
  std::optional<std::uint32_t> maximum_packet_size{};               // 0x27
  std::optional<std::uint8_t> wildcard_subscription_available{};    // 0x28
  std::optional<std::uint8_t> subscription_identifier_available{};  // 0x29
  std::optional<std::uint8_t> shared_subscription_available{};      // 0x2A

  bool operator==(const properties&) const = default;
};

struct will_message {
  std::string topic{};
  std::string payload{};
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  properties props{};  // will properties (5.0)

  bool operator==(const will_message&) const = default;
};

struct connect {
  protocol_version version = protocol_version::v5;
  bool clean_start = true;       // 3.1.1: Clean Session
  std::uint16_t keep_alive = 0;  // seconds
  std::string client_id{};
  std::optional<will_message> will{};
  std::optional<std::string> username{};
  std::optional<std::string> password{};  // binary
  properties props{};

  bool operator==(const connect&) const = default;
};

struct connack {
  bool session_present = false;
  mqtt::reason_code reason_code = reason_code::success;  // 3.1.1: mapped return code
  properties props{};

  bool operator==(const connack&) const = default;
};

struct publish {
  std::string topic{};  // may be empty on 5.0 when a Topic Alias is used
  std::string payload{};
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  // 0 for QoS 0
  properties props{};

  bool operator==(const publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP share one layout.
struct puback {
  std::uint16_t packet_id = 0;
  mqtt::reason_code reason_code = reason_code::success;
  properties props{};
  bool operator==(const puback&) const = default;
};
struct pubrec {
  std::uint16_t packet_id = 0;
  mqtt::reason_code reason_code = reason_code::success;
  properties props{};
  bool operator==(const pubrec&) const = default;
};
struct pubrel {
  std::uint16_t packet_id = 0;
  mqtt::reason_code reason_code = reason_code::success;
  properties props{};
  bool operator==(const pubrel&) const = default;
};
struct pubcomp {
  std::uint16_t packet_id = 0;
  mqtt::reason_code reason_code = reason_code::success;
  properties props{};
  bool operator==(const pubcomp&) const = default;
};

struct subscription {
  std::string filter{};
  mqtt::qos max_qos = qos::at_most_once;
  bool no_local = false;             // 5.0
  bool retain_as_published = false;  // 5.0
  std::uint8_t retain_handling = 0;  // 5.0: 0, 1 or 2

  bool operator==(const subscription&) const = default;
};

struct subscribe {
  std::uint16_t packet_id = 0;
  std::vector<subscription> subscriptions{};
  properties props{};
  bool operator==(const subscribe&) const = default;
};

struct suback {
  std::uint16_t packet_id = 0;
  std::vector<mqtt::reason_code> reason_codes{};  // 3.1.1: 0x00-0x02 or 0x80
  properties props{};
  bool operator==(const suback&) const = default;
};

struct unsubscribe {
  std::uint16_t packet_id = 0;
  std::vector<std::string> topic_filters{};
  properties props{};
  bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
  std::uint16_t packet_id = 0;
  std::vector<mqtt::reason_code> reason_codes{};  // empty (not sent) on 3.1.1
  properties props{};
  bool operator==(const unsuback&) const = default;
};

struct pingreq {
  bool operator==(const pingreq&) const = default;
};
struct pingresp {
  bool operator==(const pingresp&) const = default;
};

struct disconnect {
  mqtt::reason_code reason_code = reason_code::normal_disconnection;  // 5.0
  properties props{};
  bool operator==(const disconnect&) const = default;
};

struct auth {  // 5.0 only
  mqtt::reason_code reason_code = reason_code::success;
  properties props{};
  bool operator==(const auth&) const = default;
};

// Alternative index == MQTT control packet type - 1.
using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback, unsubscribe,
                            unsuback, pingreq, pingresp, disconnect, auth>;

// The MQTT control packet type (1 = CONNECT ... 15 = AUTH).
inline std::uint8_t packet_type(const packet& p) noexcept { return static_cast<std::uint8_t>(p.index() + 1); }

}  // namespace wharf::mqtt
