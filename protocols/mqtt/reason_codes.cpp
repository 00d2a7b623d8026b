#include "protocols/mqtt/reason_codes.h"

namespace wharf::mqtt {

connect_return_code to_v311_connack(reason_code rc) noexcept {
  switch (rc) {
    case reason_code::success:
      return connect_return_code::accepted;
    case reason_code::unsupported_protocol_version:
      return connect_return_code::unacceptable_protocol_version;
    case reason_code::client_identifier_not_valid:
      return connect_return_code::identifier_rejected;
    case reason_code::bad_user_name_or_password:
      return connect_return_code::bad_user_name_or_password;
    case reason_code::not_authorized:
    case reason_code::banned:
    case reason_code::bad_authentication_method:
      return connect_return_code::not_authorized;
    default:
      return connect_return_code::server_unavailable;
  }
}

reason_code from_v311_connack(std::uint8_t return_code) noexcept {
  switch (return_code) {
    case 0:
      return reason_code::success;
    case 1:
      return reason_code::unsupported_protocol_version;
    case 2:
      return reason_code::client_identifier_not_valid;
    case 3:
      return reason_code::server_unavailable;
    case 4:
      return reason_code::bad_user_name_or_password;
    case 5:
      return reason_code::not_authorized;
    default:
      return reason_code::unspecified_error;
  }
}

bool valid_for_connack(reason_code rc) noexcept {
  switch (static_cast<std::uint8_t>(rc)) {
    case 0x00:
    case 0x80:
    case 0x81:
    case 0x82:
    case 0x83:
    case 0x84:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8A:
    case 0x8C:
    case 0x90:
    case 0x95:
    case 0x97:
    case 0x99:
    case 0x9A:
    case 0x9B:
    case 0x9C:
    case 0x9D:
    case 0x9F:
      return true;
    default:
      return false;
  }
}

bool valid_for_puback(reason_code rc) noexcept {
  switch (static_cast<std::uint8_t>(rc)) {
    case 0x00:
    case 0x10:
    case 0x80:
    case 0x83:
    case 0x87:
    case 0x90:
    case 0x91:
    case 0x97:
    case 0x99:
      return true;
    default:
      return false;
  }
}

bool valid_for_disconnect(reason_code rc) noexcept {
  switch (static_cast<std::uint8_t>(rc)) {
    case 0x00:
    case 0x04:
    case 0x80:
    case 0x81:
    case 0x82:
    case 0x83:
    case 0x87:
    case 0x89:
    case 0x8B:
    case 0x8D:
    case 0x8E:
    case 0x8F:
    case 0x90:
    case 0x93:
    case 0x94:
    case 0x95:
    case 0x96:
    case 0x97:
    case 0x98:
    case 0x99:
    case 0x9A:
    case 0x9B:
    case 0x9C:
    case 0x9D:
    case 0x9E:
    case 0x9F:
    case 0xA0:
    case 0xA1:
    case 0xA2:
      return true;
    default:
      return false;
  }
}

std::string_view to_string(reason_code rc) noexcept {
  switch (static_cast<std::uint8_t>(rc)) {
    case 0x00:
      return "Success";
    case 0x01:
      return "Granted QoS 1";
    case 0x02:
      return "Granted QoS 2";
    case 0x04:
      return "Disconnect with Will Message";
    case 0x10:
      return "No matching subscribers";
    case 0x11:
      return "No subscription existed";
    case 0x18:
      return "Continue authentication";
    case 0x19:
      return "Re-authenticate";
    case 0x80:
      return "Unspecified error";
    case 0x81:
      return "Malformed Packet";
    case 0x82:
      return "Protocol Error";
    case 0x83:
      return "Implementation specific error";
    case 0x84:
      return "Unsupported Protocol Version";
    case 0x85:
      return "Client Identifier not valid";
    case 0x86:
      return "Bad User Name or Password";
    case 0x87:
      return "Not authorized";
    case 0x88:
      return "Server unavailable";
    case 0x89:
      return "Server busy";
    case 0x8A:
      return "Banned";
    case 0x8B:
      return "Server shutting down";
    case 0x8C:
      return "Bad authentication method";
    case 0x8D:
      return "Keep Alive timeout";
    case 0x8E:
      return "Session taken over";
    case 0x8F:
      return "Topic Filter invalid";
    case 0x90:
      return "Topic Name invalid";
    case 0x91:
      return "Packet Identifier in use";
    case 0x92:
      return "Packet Identifier not found";
    case 0x93:
      return "Receive Maximum exceeded";
    case 0x94:
      return "Topic Alias invalid";
    case 0x95:
      return "Packet too large";
    case 0x96:
      return "Message rate too high";
    case 0x97:
      return "Quota exceeded";
    case 0x98:
      return "Administrative action";
    case 0x99:
      return "Payload format invalid";
    case 0x9A:
      return "Retain not supported";
    case 0x9B:
      return "QoS not supported";
    case 0x9C:
      return "Use another server";
    case 0x9D:
      return "Server moved";
    case 0x9E:
      return "Shared Subscriptions not supported";
    case 0x9F:
      return "Connection rate exceeded";
    case 0xA0:
      return "Maximum connect time";
    case 0xA1:
      return "Subscription Identifiers not supported";
    case 0xA2:
      return "Wildcard Subscriptions not supported";
    default:
      return "Unknown";
  }
}

}  // namespace wharf::mqtt
