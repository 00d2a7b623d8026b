#include "protocols/mqtt/codec.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace wharf::mqtt {
namespace {

using test::bytes;
using test::connect_bytes;
using test::encoded;
using test::first_error;

// ---------------------------------------------------------------------------
// Round trips: encode -> decode gives the same packet, both versions.

std::vector<packet> sample_packets(protocol_version v) {
  const bool v5 = v == protocol_version::v5;
  std::vector<packet> out;

  connect c;
  c.version = v;
  c.clean_start = false;
  c.keep_alive = 30;
  c.client_id = "device-1";
  c.username = "alice";
  c.password = std::string("s\0cret", 6);
  will_message w;
  w.topic = "devices/1/status";
  w.payload = "offline";
  w.qos = qos::at_least_once;
  w.retain = true;
  if (v5) {
    w.props.will_delay_interval = 5;
    w.props.payload_format_indicator = 1;
    w.props.content_type = "text/plain";
    c.props.session_expiry_interval = 3600;
    c.props.receive_maximum = 10;
    c.props.maximum_packet_size = 4096;
    c.props.topic_alias_maximum = 4;
    c.props.request_problem_information = 0;
    c.props.user_properties = {{"a", "1"}, {"a", "2"}, {"b", ""}};
  }
  c.will = w;
  out.emplace_back(c);

  connack ca;
  ca.session_present = true;
  ca.reason_code = v5 ? reason_code::success : reason_code::success;
  if (v5) {
    ca.props.assigned_client_identifier = "auto-1";
    ca.props.receive_maximum = 64;
    ca.props.topic_alias_maximum = 64;
    ca.props.maximum_packet_size = 1u << 20;
    ca.props.server_keep_alive = 60;
    ca.props.retain_available = 1;
    ca.props.maximum_qos = 1;
    ca.props.wildcard_subscription_available = 0;
    ca.props.subscription_identifier_available = 0;
    ca.props.shared_subscription_available = 0;
    ca.props.reason_string = "welcome";
    ca.props.response_information = "resp/";
    ca.props.server_reference = "other:1883";
  }
  out.emplace_back(ca);
  connack refused;
  refused.reason_code = reason_code::not_authorized;
  out.emplace_back(refused);

  publish p0;
  p0.topic = "a/b";
  p0.payload = std::string("\x00\x01\x02", 3);
  out.emplace_back(p0);
  publish p1;
  p1.topic = "sensors/temp";
  p1.payload = "21.5";
  p1.qos = qos::at_least_once;
  p1.dup = true;
  p1.retain = true;
  p1.packet_id = 7;
  if (v5) {
    p1.props.payload_format_indicator = 1;
    p1.props.message_expiry_interval = 120;
    p1.props.content_type = "text/plain";
    p1.props.response_topic = "replies/1";
    p1.props.correlation_data = std::string("\x01\x00", 2);
    p1.props.topic_alias = 3;
    p1.props.user_properties = {{"k", "v"}};
  }
  out.emplace_back(p1);
  publish p2;
  p2.topic = "x";
  p2.qos = qos::exactly_once;
  p2.packet_id = 65535;
  p2.payload = std::string(300, 'z');  // two-byte remaining length
  out.emplace_back(p2);

  out.emplace_back(puback{1, reason_code::success, {}});
  out.emplace_back(pubrec{2, reason_code::success, {}});
  out.emplace_back(pubrel{3, reason_code::success, {}});
  out.emplace_back(pubcomp{4, reason_code::success, {}});
  if (v5) {
    puback nack{5, reason_code::not_authorized, {}};
    nack.props.reason_string = "denied";
    out.emplace_back(nack);
    out.emplace_back(pubrec{6, reason_code::payload_format_invalid, {}});
    out.emplace_back(pubcomp{7, reason_code::packet_identifier_not_found, {}});
  }

  subscribe s;
  s.packet_id = 9;
  s.subscriptions.push_back({"a/+/c", qos::at_least_once, false, false, 0});
  s.subscriptions.push_back({"d/#", qos::exactly_once, v5, v5, v5 ? std::uint8_t{2} : std::uint8_t{0}});
  if (v5) s.props.subscription_identifiers = {42};
  out.emplace_back(s);

  suback sa;
  sa.packet_id = 9;
  sa.reason_codes = {reason_code::granted_qos_1, reason_code::unspecified_error};
  if (v5) {
    sa.reason_codes.push_back(reason_code::implementation_specific_error);
    sa.props.reason_string = "no";
  }
  out.emplace_back(sa);

  unsubscribe u;
  u.packet_id = 10;
  u.topic_filters = {"a/+/c", "d/#"};
  if (v5) u.props.user_properties = {{"x", "y"}};
  out.emplace_back(u);

  unsuback ua;
  ua.packet_id = 10;
  if (v5) ua.reason_codes = {reason_code::no_subscription_existed, reason_code::success};
  out.emplace_back(ua);

  out.emplace_back(pingreq{});
  out.emplace_back(pingresp{});

  disconnect d;
  if (v5) {
    d.reason_code = reason_code::disconnect_with_will_message;
    d.props.session_expiry_interval = 0;
    d.props.reason_string = "bye";
  }
  out.emplace_back(d);
  out.emplace_back(disconnect{});

  if (v5) {
    auth a;
    a.reason_code = reason_code::continue_authentication;
    a.props.authentication_method = "SCRAM-SHA-1";
    a.props.authentication_data = "data";
    out.emplace_back(a);
  }
  return out;
}

void expect_round_trip(protocol_version v) {
  for (const auto& p : sample_packets(v)) {
    const std::string wire = encoded(p, v);
    EXPECT_EQ(wire.size(), encoded_size(p, v));
    auto back = decode_one(wire, v);
    ASSERT_TRUE(back) << "packet type " << int(packet_type(p)) << ": " << back.error().message();
    EXPECT_TRUE(*back == p) << "packet type " << int(packet_type(p));
  }
}

TEST(MqttCodec, RoundTripsEveryPacketKindOnV5) { expect_round_trip(protocol_version::v5); }

TEST(MqttCodec, RoundTripsEveryPacketKindOnV311) { expect_round_trip(protocol_version::v311); }

TEST(MqttCodec, EncodesV311ConnackReturnCodes) {
  std::string out;
  encode(connack{false, reason_code::bad_user_name_or_password, {}}, protocol_version::v311, out);
  EXPECT_EQ(out, bytes({0x20, 0x02, 0x00, 0x04}));
}

TEST(MqttCodec, EncodesSuccessPubackWithoutReasonCode) {
  std::string out;
  encode(puback{0x1234, reason_code::success, {}}, protocol_version::v5, out);
  EXPECT_EQ(out, bytes({0x40, 0x02, 0x12, 0x34}));
}

TEST(MqttCodec, EncodeAppendsSoAcksCanBeCoalesced) {
  std::string out;
  encode(puback{1, reason_code::success, {}}, protocol_version::v311, out);
  encode(puback{2, reason_code::success, {}}, protocol_version::v311, out);
  EXPECT_EQ(out, bytes({0x40, 2, 0, 1, 0x40, 2, 0, 2}));
}

TEST(MqttCodec, EncodesFourByteRemainingLength) {
  publish p;
  p.topic = "t";
  p.payload.assign(2'097'152, 'x');  // needs 4 length bytes
  const std::string wire = encoded(p, protocol_version::v311);
  EXPECT_EQ(static_cast<std::uint8_t>(wire[4]) & 0x80, 0);
  EXPECT_NE(static_cast<std::uint8_t>(wire[3]) & 0x80, 0);
  auto back = decode_one(wire, protocol_version::v311, {1u << 22, 32});
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<publish>(*back).payload.size(), p.payload.size());
}

// ---------------------------------------------------------------------------
// Feeding: any split of the input gives the same packets.

TEST(MqttDecoder, DecodesInputFedOneByteAtATime) {
  const auto v = protocol_version::v5;
  std::string wire;
  auto packets = sample_packets(v);
  packets.erase(packets.begin());  // sample CONNECT has a will; use a plain one first
  wire = connect_bytes(v);
  for (const auto& p : packets) encode(p, v, wire);

  decoder d;
  std::vector<packet> got;
  for (char ch : wire) {
    std::string_view one(&ch, 1);
    auto r = d.decode(one);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(one.empty());
    if (*r) got.push_back(std::move(**r));
  }
  ASSERT_EQ(got.size(), packets.size() + 1);
  for (std::size_t i = 0; i < packets.size(); ++i) EXPECT_TRUE(got[i + 1] == packets[i]) << i;
  EXPECT_FALSE(d.has_partial());
}

TEST(MqttDecoder, DecodesFiftyPacketsFromOneBuffer) {
  std::string wire = connect_bytes(protocol_version::v311);
  for (int i = 1; i <= 50; ++i) {
    publish p;
    p.topic = "t/" + std::to_string(i);
    p.payload = std::string(static_cast<std::size_t>(i), 'p');
    p.qos = qos::at_least_once;
    p.packet_id = static_cast<std::uint16_t>(i);
    encode(p, protocol_version::v311, wire);
  }
  decoder d;
  std::string_view in = wire;
  int publishes = 0;
  while (!in.empty()) {
    auto r = d.decode(in);
    ASSERT_TRUE(r);
    ASSERT_TRUE(*r);
    if (auto* p = std::get_if<publish>(&**r)) {
      ++publishes;
      EXPECT_EQ(p->packet_id, publishes);
      EXPECT_EQ(p->payload.size(), static_cast<std::size_t>(publishes));
    }
  }
  EXPECT_EQ(publishes, 50);
  EXPECT_EQ(d.version(), protocol_version::v311);
}

TEST(MqttDecoder, KeepsPartialPacketAcrossCalls) {
  std::string wire = connect_bytes(protocol_version::v5);
  const std::string pub = encoded(publish{"a", "hello", qos::at_most_once, false, false, 0, {}}, protocol_version::v5);
  wire += pub.substr(0, 4);
  decoder d;
  std::string_view in = wire;
  ASSERT_TRUE(d.decode(in).value().has_value());  // CONNECT
  auto r = d.decode(in);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(d.has_partial());
  std::string_view rest = std::string_view(pub).substr(4);
  r = d.decode(rest);
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ(std::get<publish>(**r).payload, "hello");
}

TEST(MqttDecoder, ErrorsAreSticky) {
  decoder d;
  std::string_view bad = "\x20\x02\x00\x00";  // CONNACK first
  EXPECT_FALSE(d.decode(bad));
  std::string good = connect_bytes(protocol_version::v5);
  std::string_view in = good;
  auto r = d.decode(in);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::first_packet_not_connect);
}

// ---------------------------------------------------------------------------
// Fixed header rules.

TEST(MqttDecoder, RejectsRemainingLengthOverFourBytes) {
  const std::string wire =
      connect_bytes(protocol_version::v311) + bytes({0x30,                    // PUBLISH QoS 0
                                                     0xFF, 0xFF, 0xFF, 0xFF,  // 4 length bytes, all "more"
                                                     0x01});                  // a fifth
  EXPECT_EQ(first_error(wire, {0xFFFFFFFF, 32}), errc::remaining_length_invalid);
}

TEST(MqttDecoder, RejectsRemainingLengthNotMinimallyEncoded) {
  const std::string wire = connect_bytes(protocol_version::v311) + bytes({0xC0,          // PINGREQ
                                                                          0x80, 0x00});  // 0 written in two bytes
  EXPECT_EQ(first_error(wire), errc::remaining_length_invalid);
}

TEST(MqttDecoder, RejectsPacketLargerThanMaximumBeforeReadingBody) {
  decoder d({100, 32});
  std::string wire = connect_bytes(protocol_version::v311);
  std::string_view in = wire;
  ASSERT_TRUE(d.decode(in));
  // PUBLISH announcing 1000 bytes of body: rejected from the header alone.
  std::string header = bytes({0x30, 0xE8, 0x07});
  std::string_view h = header;
  auto r = d.decode(h);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::packet_too_large);
  EXPECT_EQ(to_reason_code(r.error()), reason_code::packet_too_large);
}

TEST(MqttDecoder, RejectsAnyPacketBeforeConnect) {
  EXPECT_EQ(first_error(bytes({0xC0, 0x00})), errc::first_packet_not_connect);  // PINGREQ
}

TEST(MqttDecoder, RejectsPacketTypeZero) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) + bytes({0x00, 0x00})), errc::invalid_packet_type);
}

TEST(MqttDecoder, RejectsAuthPacketOnV311) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0xF0, 0x00})), errc::invalid_packet_type);
}

TEST(MqttDecoder, RejectsReservedFlagBitsInEveryFixedHeader) {
  const std::string c = connect_bytes(protocol_version::v5);
  EXPECT_EQ(first_error(c + bytes({0x41, 0x02, 0x00, 0x01})), errc::reserved_flags);  // PUBACK|1
  EXPECT_EQ(first_error(c + bytes({0x60, 0x02, 0x00, 0x01})), errc::reserved_flags);  // PUBREL|0
  EXPECT_EQ(first_error(c + bytes({0x80, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00})),
            errc::reserved_flags);                                                    // SUBSCRIBE|0
  EXPECT_EQ(first_error(c + bytes({0xA0, 0x02, 0x00, 0x01})), errc::reserved_flags);  // UNSUBSCRIBE|0
  EXPECT_EQ(first_error(c + bytes({0xC1, 0x00})), errc::reserved_flags);              // PINGREQ|1
  EXPECT_EQ(first_error(c + bytes({0xE8, 0x00})), errc::reserved_flags);              // DISCONNECT|8
  EXPECT_EQ(first_error(bytes({0x12, 0x00})), errc::reserved_flags);                  // CONNECT|2
}

TEST(MqttDecoder, RejectsRemainingLengthThatDoesNotMatchContent) {
  const std::string c = connect_bytes(protocol_version::v311);
  EXPECT_EQ(first_error(c + bytes({0x40, 0x03, 0x00, 0x01, 0x00})),  // 3.1.1 PUBACK is 2 bytes
            errc::malformed_packet);
  EXPECT_EQ(first_error(c + bytes({0xC0, 0x01, 0x00})), errc::malformed_packet);  // PINGREQ body
  EXPECT_EQ(first_error(c + bytes({0x30, 0x03,                                    // PUBLISH, 3 bytes
                                   0x00, 0x05, 'a'})),                            // topic claims 5 bytes, has 1
            errc::malformed_packet);
}

// ---------------------------------------------------------------------------
// PUBLISH rules.

TEST(MqttDecoder, RejectsQos3) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x36,  // PUBLISH, QoS bits 11
                                                                       0x05, 0x00, 0x01, 't', 0x00, 0x01})),
            errc::invalid_qos);
}

TEST(MqttDecoder, RejectsDupFlagOnQos0) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x38,  // PUBLISH, DUP, QoS 0
                                                                       0x03, 0x00, 0x01, 't'})),
            errc::reserved_flags);
}

TEST(MqttDecoder, RejectsPacketIdentifierZeroOnQos1Publish) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x32,             // PUBLISH QoS 1
                                                                       0x05,             // remaining length
                                                                       0x00, 0x01, 't',  // topic "t"
                                                                       0x00, 0x00})),    // packet id 0
            errc::packet_identifier_zero);
}

TEST(MqttDecoder, RejectsPacketIdentifierZeroOnPubrelSubscribeUnsubscribe) {
  const std::string c = connect_bytes(protocol_version::v311);
  EXPECT_EQ(first_error(c + bytes({0x62, 0x02, 0x00, 0x00})), errc::packet_identifier_zero);
  EXPECT_EQ(first_error(c + bytes({0x82, 0x06,                // SUBSCRIBE
                                   0x00, 0x00,                // packet id 0
                                   0x00, 0x01, 'a', 0x00})),  // "a" QoS 0
            errc::packet_identifier_zero);
  EXPECT_EQ(first_error(c + bytes({0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'})), errc::packet_identifier_zero);
}

TEST(MqttDecoder, RejectsWildcardsInPublishTopic) {
  const std::string c = connect_bytes(protocol_version::v311);
  EXPECT_EQ(first_error(c + bytes({0x30, 0x05, 0x00, 0x03, 'a', '/', '+'})), errc::topic_name_invalid);
  EXPECT_EQ(first_error(c + bytes({0x30, 0x03, 0x00, 0x01, '#'})), errc::topic_name_invalid);
}

TEST(MqttDecoder, RejectsEmptyTopicOnV311) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x30, 0x02, 0x00, 0x00})),
            errc::topic_name_invalid);
}

TEST(MqttDecoder, RejectsEmptyTopicWithoutAliasOnV5) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) + bytes({0x30, 0x03, 0x00, 0x00,  // empty topic
                                                                     0x00})),                 // no properties
            errc::protocol_error);
}

TEST(MqttDecoder, RejectsInvalidUtf8InTopic) {
  const std::string c = connect_bytes(protocol_version::v311);
  // 0xC3 0x28: a lead byte followed by a non-continuation byte.
  EXPECT_EQ(first_error(c + bytes({0x30, 0x04, 0x00, 0x02, 0xC3, 0x28})), errc::invalid_utf8);
  // U+0000 is not allowed in MQTT strings.
  EXPECT_EQ(first_error(c + bytes({0x30, 0x04, 0x00, 0x02, 'a', 0x00})), errc::invalid_utf8);
  // 0xED 0xA0 0x80: the surrogate U+D800.
  EXPECT_EQ(first_error(c + bytes({0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80})), errc::invalid_utf8);
  // 0xC0 0x80: overlong encoding of U+0000.
  EXPECT_EQ(first_error(c + bytes({0x30, 0x04, 0x00, 0x02, 0xC0, 0x80})), errc::invalid_utf8);
}

TEST(MqttDecoder, RejectsPropertyNotAllowedInPacketKind) {
  EXPECT_EQ(
      first_error(connect_bytes(protocol_version::v5) + bytes({0x30, 0x09, 0x00, 0x01, 't',  // topic
                                                               0x05,                         // properties: 5 bytes
                                                               0x11, 0, 0, 0, 10})),  // Session Expiry: CONNECT only
      errc::invalid_property);
}

TEST(MqttDecoder, RejectsUnknownPropertyIdentifier) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) +
                        bytes({0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x7F, 0x00})),  // identifier 0x7F
            errc::invalid_property);
}

TEST(MqttDecoder, RejectsDuplicatedProperty) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) + bytes({0x30, 0x0C, 0x00, 0x01, 't',
                                                                     0x08,                      // properties: 8 bytes
                                                                     0x03, 0x00, 0x01, 'a',     // Content Type "a"
                                                                     0x03, 0x00, 0x01, 'b'})),  // Content Type again
            errc::duplicate_property);
}

TEST(MqttDecoder, AcceptsRepeatedUserProperties) {
  auto r = decode_one(bytes({0x30, 0x12, 0x00, 0x01, 't',
                             0x0E,                                       // properties: 14 bytes
                             0x26, 0x00, 0x01, 'k',  0x00, 0x01, '1',    // k=1
                             0x26, 0x00, 0x01, 'k',  0x00, 0x01, '2'}),  // k=2
                      protocol_version::v5);
  ASSERT_TRUE(r) << r.error().message();
  const auto& up = std::get<publish>(*r).props.user_properties;
  ASSERT_EQ(up.size(), 2u);
  EXPECT_EQ(up[1].second, "2");
}

TEST(MqttDecoder, RejectsTooManyUserProperties) {
  std::string props;
  for (int i = 0; i < 3; ++i) props += bytes({0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'});
  std::string body = bytes({0x00, 0x01, 't', static_cast<int>(props.size())}) + props;
  std::string wire = bytes({0x30, static_cast<int>(body.size())}) + body;
  auto r = decode_one(wire, protocol_version::v5, {1024, 2});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::too_many_user_properties);
}

TEST(MqttDecoder, RejectsTopicAliasZero) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) +
                        bytes({0x30, 0x07, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00})),  // Topic Alias 0
            errc::topic_alias_invalid);
}

TEST(MqttDecoder, RejectsPayloadFormatIndicatorOtherThanZeroOrOne) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) +
                        bytes({0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x01, 0x02})),  // Payload Format Indicator 2
            errc::invalid_property_value);
}

TEST(MqttDecoder, RejectsPropertyLengthBeyondPacket) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) +
                        bytes({0x30, 0x05, 0x00, 0x01, 't', 0x09, 0x01})),  // properties claim 9 bytes, 1 present
            errc::malformed_packet);
}

// ---------------------------------------------------------------------------
// CONNECT rules.

std::string connect_with(std::string name, int level, int flags) {
  std::string body;
  body += bytes({0x00, static_cast<int>(name.size())}) + name;
  body += static_cast<char>(level);
  body += static_cast<char>(flags);
  body += bytes({0x00, 0x3C});            // keep alive 60
  if (level == 5) body += bytes({0x00});  // no properties
  body += bytes({0x00, 0x01, 'c'});       // client id "c"
  return bytes({0x10, static_cast<int>(body.size())}) + body;
}

TEST(MqttDecoder, RejectsWrongProtocolName) {
  decoder d;
  std::string wire = connect_with("MQTX", 4, 0x02);
  std::string_view in = wire;
  auto r = d.decode(in);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::bad_protocol_name);
  EXPECT_EQ(d.version(), protocol_version::v311);
}

TEST(MqttDecoder, RejectsUnknownProtocolLevelAndRemembersVersionAsked) {
  decoder d;
  std::string wire = connect_with("MQTT", 6, 0x02);
  std::string_view in = wire;
  auto r = d.decode(in);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::unsupported_protocol_version);
  EXPECT_EQ(d.version(), protocol_version::v5);  // answer in 5.0 format

  decoder d3;
  std::string old = connect_with("MQIsdp", 3, 0x02);  // MQTT 3.1
  std::string_view in3 = old;
  auto r3 = d3.decode(in3);
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error(), errc::unsupported_protocol_version);
  EXPECT_EQ(d3.version(), protocol_version::v311);
}

TEST(MqttDecoder, RejectsConnectReservedFlag) {
  EXPECT_EQ(first_error(connect_with("MQTT", 4, 0x03)), errc::invalid_connect_flags);
}

TEST(MqttDecoder, RejectsWillQosOrRetainWithoutWillFlag) {
  EXPECT_EQ(first_error(connect_with("MQTT", 4, 0x02 | 0x08)), errc::invalid_connect_flags);
  EXPECT_EQ(first_error(connect_with("MQTT", 5, 0x02 | 0x20)), errc::invalid_connect_flags);
}

TEST(MqttDecoder, RejectsWillQos3) {
  EXPECT_EQ(first_error(connect_with("MQTT", 4, 0x02 | 0x04 | 0x18)), errc::invalid_qos);
}

TEST(MqttDecoder, RejectsPasswordWithoutUserNameOnV311Only) {
  std::string v311 = connect_with("MQTT", 4, 0x02 | 0x40);
  v311 += bytes({0x00, 0x01, 'p'});
  v311[1] = static_cast<char>(v311.size() - 2);
  EXPECT_EQ(first_error(v311), errc::invalid_connect_flags);

  std::string v5 = connect_with("MQTT", 5, 0x02 | 0x40);
  v5 += bytes({0x00, 0x01, 'p'});
  v5[1] = static_cast<char>(v5.size() - 2);
  auto r = decode_one(v5, protocol_version::v5);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::get<connect>(*r).password, "p");
}

TEST(MqttDecoder, RejectsReceiveMaximumZero) {
  std::string body = bytes({0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C, 0x03, 0x21, 0x00,
                            0x00,  // properties: Receive Maximum 0
                            0x00, 0x01, 'c'});
  EXPECT_EQ(first_error(bytes({0x10, static_cast<int>(body.size())}) + body), errc::invalid_property_value);
}

TEST(MqttDecoder, RejectsWillTopicWithWildcard) {
  connect c;
  c.version = protocol_version::v311;
  c.client_id = "c";
  c.will = will_message{"a/#", "x", qos::at_most_once, false, {}};
  EXPECT_EQ(first_error(encoded(c, protocol_version::v311)), errc::topic_name_invalid);
}

TEST(MqttDecoder, RejectsTrailingBytesAfterConnectPayload) {
  std::string wire = connect_with("MQTT", 4, 0x02) + "x";
  wire[1] = static_cast<char>(wire.size() - 2);
  EXPECT_EQ(first_error(wire), errc::malformed_packet);
}

// ---------------------------------------------------------------------------
// SUBSCRIBE / UNSUBSCRIBE rules.

TEST(MqttDecoder, RejectsEmptySubscribe) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x82, 0x02, 0x00, 0x01})),
            errc::empty_subscription_list);
  EXPECT_EQ(
      first_error(connect_bytes(protocol_version::v5) + bytes({0x82, 0x03, 0x00, 0x01, 0x00})),  // id 1, no properties
      errc::empty_subscription_list);
}

TEST(MqttDecoder, RejectsEmptyUnsubscribe) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0xA2, 0x02, 0x00, 0x01})),
            errc::empty_subscription_list);
}

TEST(MqttDecoder, RejectsSubscriptionOptionsReservedBits) {
  // 3.1.1: only the two QoS bits may be set.
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04})),
            errc::invalid_subscription_options);
  // 5.0: bits 6 and 7 are reserved.
  EXPECT_EQ(
      first_error(connect_bytes(protocol_version::v5) + bytes({0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40})),
      errc::invalid_subscription_options);
}

TEST(MqttDecoder, RejectsRetainHandlingThreeAndQos3InSubscription) {
  EXPECT_EQ(
      first_error(connect_bytes(protocol_version::v5) + bytes({0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30})),
      errc::protocol_error);
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v311) + bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03})),
            errc::invalid_qos);
}

TEST(MqttDecoder, RejectsSubscriptionIdentifierZero) {
  EXPECT_EQ(first_error(connect_bytes(protocol_version::v5) +
                        bytes({0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00,  // Subscription Identifier 0
                               0x00, 0x01, 'a', 0x00})),
            errc::invalid_property_value);
}

// ---------------------------------------------------------------------------
// Error -> reason code mapping.

TEST(MqttErrors, MapEachErrorToTheSpecReasonCode) {
  EXPECT_EQ(to_reason_code(errc::reserved_flags), reason_code::malformed_packet);
  EXPECT_EQ(to_reason_code(errc::invalid_utf8), reason_code::malformed_packet);
  EXPECT_EQ(to_reason_code(errc::duplicate_property), reason_code::protocol_error);
  EXPECT_EQ(to_reason_code(errc::packet_too_large), reason_code::packet_too_large);
  EXPECT_EQ(to_reason_code(errc::receive_maximum_exceeded), reason_code::receive_maximum_exceeded);
  EXPECT_EQ(to_reason_code(errc::topic_alias_invalid), reason_code::topic_alias_invalid);
  EXPECT_EQ(to_reason_code(errc::payload_format_invalid), reason_code::payload_format_invalid);
  EXPECT_EQ(to_reason_code(errc::bad_protocol_name), reason_code::unsupported_protocol_version);
  EXPECT_EQ(to_reason_code(boost::system::error_code{}), reason_code::success);
  boost::system::error_code ec = errc::invalid_qos;
  EXPECT_EQ(ec.category().name(), std::string("mqtt"));
  EXPECT_FALSE(ec.message().empty());
}

TEST(MqttReasonCodes, MapToV311ConnackReturnCodes) {
  EXPECT_EQ(to_v311_connack(reason_code::unsupported_protocol_version),
            connect_return_code::unacceptable_protocol_version);
  EXPECT_EQ(to_v311_connack(reason_code::client_identifier_not_valid), connect_return_code::identifier_rejected);
  EXPECT_EQ(to_v311_connack(reason_code::bad_user_name_or_password), connect_return_code::bad_user_name_or_password);
  EXPECT_EQ(to_v311_connack(reason_code::not_authorized), connect_return_code::not_authorized);
  EXPECT_EQ(to_v311_connack(reason_code::server_busy), connect_return_code::server_unavailable);
  EXPECT_EQ(to_string(reason_code::packet_too_large), "Packet too large");
}

TEST(MqttWillProperties, RoundTripThroughTheSessionStoreForm) {
  properties p;
  p.content_type = "application/json";
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 30;
  p.response_topic = "replies/dev-1";
  p.correlation_data = std::string("\x00\x01", 2);
  p.user_properties = {{"site", "north"}, {"site", "south"}, {"k", ""}};
  const std::string stored = encode_will_properties(p);
  auto back = decode_will_properties(stored);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(encode_will_properties(properties{}), std::string(1, '\0'));  // just the zero length
}

TEST(MqttWillProperties, RefusesPropertiesAWillCannotCarryAndTrailingBytes) {
  properties p;
  p.topic_alias = 3;  // PUBLISH only
  EXPECT_FALSE(decode_will_properties(encode_will_properties(p)));
  properties ok;
  ok.content_type = "text/plain";
  EXPECT_FALSE(decode_will_properties(encode_will_properties(ok) + "x"));
  EXPECT_FALSE(decode_will_properties(""));
}

}  // namespace
}  // namespace wharf::mqtt
