#include "protocols/mqtt/errors.h"

#include <string>

namespace wharf::mqtt {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "mqtt"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed_packet:
        return "malformed packet";
      case errc::invalid_packet_type:
        return "invalid packet type";
      case errc::reserved_flags:
        return "reserved fixed-header flags set wrongly";
      case errc::remaining_length_invalid:
        return "remaining length over 4 bytes";
      case errc::invalid_utf8:
        return "string is not valid MQTT UTF-8";
      case errc::invalid_qos:
        return "QoS 3 is invalid";
      case errc::invalid_connect_flags:
        return "invalid CONNECT flags";
      case errc::invalid_property:
        return "property not allowed in this packet";
      case errc::invalid_subscription_options:
        return "invalid subscription options";
      case errc::protocol_error:
        return "protocol error";
      case errc::duplicate_property:
        return "property appears more than once";
      case errc::invalid_property_value:
        return "invalid property value";
      case errc::packet_identifier_zero:
        return "packet identifier 0";
      case errc::empty_subscription_list:
        return "no topic filters";
      case errc::first_packet_not_connect:
        return "first packet is not CONNECT";
      case errc::second_connect:
        return "second CONNECT";
      case errc::unexpected_packet:
        return "packet not allowed from a client";
      case errc::session_expiry_invalid:
        return "session expiry set after CONNECT had 0";
      case errc::subscription_identifier_from_client:
        return "PUBLISH from a client carries a subscription identifier";
      case errc::unsupported_protocol_version:
        return "unsupported protocol version";
      case errc::bad_protocol_name:
        return "protocol name is not MQTT";
      case errc::client_identifier_not_valid:
        return "client identifier not valid";
      case errc::bad_authentication_method:
        return "authentication method not supported";
      case errc::keep_alive_timeout:
        return "keep alive timeout";
      case errc::topic_filter_invalid:
        return "topic filter invalid";
      case errc::topic_name_invalid:
        return "topic name invalid";
      case errc::receive_maximum_exceeded:
        return "receive maximum exceeded";
      case errc::topic_alias_invalid:
        return "topic alias invalid";
      case errc::packet_too_large:
        return "packet too large";
      case errc::payload_format_invalid:
        return "payload is not UTF-8 as its format says";
      case errc::too_many_user_properties:
        return "too many user properties";
      case errc::connect_timeout:
        return "no CONNECT in time";
    }
    return "unknown mqtt error";
  }
};

const category category_instance;

}  // namespace

const boost::system::error_category& mqtt_category() noexcept { return category_instance; }

reason_code to_reason_code(errc e) noexcept {
  switch (e) {
    case errc::malformed_packet:
    case errc::invalid_packet_type:
    case errc::reserved_flags:
    case errc::remaining_length_invalid:
    case errc::invalid_utf8:
    case errc::invalid_qos:
    case errc::invalid_connect_flags:
    case errc::invalid_property:
    case errc::invalid_subscription_options:
      return reason_code::malformed_packet;
    case errc::protocol_error:
    case errc::duplicate_property:
    case errc::invalid_property_value:
    case errc::packet_identifier_zero:
    case errc::empty_subscription_list:
    case errc::first_packet_not_connect:
    case errc::second_connect:
    case errc::unexpected_packet:
    case errc::session_expiry_invalid:
    case errc::subscription_identifier_from_client:
      return reason_code::protocol_error;
    case errc::unsupported_protocol_version:
    case errc::bad_protocol_name:
      return reason_code::unsupported_protocol_version;
    case errc::client_identifier_not_valid:
      return reason_code::client_identifier_not_valid;
    case errc::bad_authentication_method:
      return reason_code::bad_authentication_method;
    case errc::keep_alive_timeout:
      return reason_code::keep_alive_timeout;
    case errc::topic_filter_invalid:
      return reason_code::topic_filter_invalid;
    case errc::topic_name_invalid:
      return reason_code::topic_name_invalid;
    case errc::receive_maximum_exceeded:
      return reason_code::receive_maximum_exceeded;
    case errc::topic_alias_invalid:
      return reason_code::topic_alias_invalid;
    case errc::packet_too_large:
      return reason_code::packet_too_large;
    case errc::payload_format_invalid:
      return reason_code::payload_format_invalid;
    case errc::too_many_user_properties:
      return reason_code::implementation_specific_error;
    case errc::connect_timeout:
      return reason_code::keep_alive_timeout;
  }
  return reason_code::unspecified_error;
}

reason_code to_reason_code(const boost::system::error_code& ec) noexcept {
  if (!ec) return reason_code::success;
  if (ec.category() == mqtt_category()) return to_reason_code(static_cast<errc>(ec.value()));
  return reason_code::unspecified_error;
}

}  // namespace wharf::mqtt
