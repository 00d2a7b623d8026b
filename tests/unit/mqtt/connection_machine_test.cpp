#include "protocols/mqtt/connection_machine.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "test_support.h"

namespace wharf::mqtt {
namespace {

using namespace std::chrono_literals;
using test::bytes;
using test::encoded;

// Drives a connection_machine like the server would and records what it
// asked for.
struct client {
  protocol_version version;
  clock::time_point now = clock::time_point{} + 1h;
  connection_machine m;
  std::string wire;  // every byte the machine sent
  std::vector<connect_requested> connects;
  std::vector<publish_requested> publishes;
  std::vector<will_requested> wills;
  std::vector<session_expiry_update> expiry_updates;
  std::vector<std::uint16_t> held, released;
  std::optional<close_event> closed;
  std::size_t send_events = 0;
  std::size_t last_call_send_events = 0;

  explicit client(protocol_version v, connection_options o = {}) : version(v), m(o, clock::time_point{} + 1h) {}

  void collect() {
    last_call_send_events = 0;
    for (auto& ev : m.events()) {
      EXPECT_FALSE(closed) << "event after close";
      if (auto* s = std::get_if<send_event>(&ev)) {
        wire += s->bytes;
        ++send_events;
        ++last_call_send_events;
      } else if (auto* c = std::get_if<connect_requested>(&ev)) {
        connects.push_back(std::move(*c));
      } else if (auto* p = std::get_if<publish_requested>(&ev)) {
        publishes.push_back(std::move(*p));
      } else if (auto* w = std::get_if<will_requested>(&ev)) {
        wills.push_back(std::move(*w));
      } else if (auto* e = std::get_if<session_expiry_update>(&ev)) {
        expiry_updates.push_back(*e);
      } else if (auto* h = std::get_if<qos2_held>(&ev)) {
        held.push_back(h->packet_id);
      } else if (auto* r = std::get_if<qos2_released>(&ev)) {
        released.push_back(r->packet_id);
      } else if (auto* c2 = std::get_if<close_event>(&ev)) {
        closed = *c2;
      }
    }
    m.clear_events();
  }

  void feed(const std::string& data) {
    m.on_bytes(data, now);
    collect();
  }
  void send(const packet& p) { feed(encoded(p, version)); }
  void tick(clock::duration d) {
    now += d;
    m.on_tick(now);
    collect();
  }
  void accept(connect_decision d = {}) {
    m.accept_connect(std::move(d));
    collect();
  }
  void complete(publish_token t, publish_outcome o = publish_outcome::stored()) {
    m.complete_publish(t, std::move(o));
    collect();
  }

  // Packets the machine sent since the last call to `take`.
  std::vector<packet> take() {
    auto out = test::decode_all(wire, version);
    wire.clear();
    return out;
  }

  connect make_connect(std::string id = "dev") const {
    connect c;
    c.version = version;
    c.client_id = std::move(id);
    c.keep_alive = 10;
    return c;
  }

  // CONNECT + accept; drops the CONNACK.
  void connected(connect c) {
    send(c);
    EXPECT_EQ(connects.size(), 1u);
    accept();
    auto sent = take();
    EXPECT_EQ(sent.size(), 1u);
    EXPECT_TRUE(m.connected());
  }
  void connected() { connected(make_connect()); }

  void publish_qos(qos q, std::uint16_t id, std::string topic = "t", std::string payload = "p", bool dup = false) {
    publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = q;
    p.packet_id = q == qos::at_most_once ? 0 : id;
    p.dup = dup;
    send(p);
  }
};

template <class T>
const T& as(const packet& p) {
  EXPECT_TRUE(std::holds_alternative<T>(p)) << "got packet type " << int(packet_type(p));
  static const T empty{};
  return std::holds_alternative<T>(p) ? std::get<T>(p) : empty;
}

// ---------------------------------------------------------------------------
// CONNECT

TEST(MqttConnection, AcceptedConnectSendsConnackWithOurLimits) {
  connection_options o;
  o.receive_maximum = 10;
  o.topic_alias_maximum = 5;
  o.max_packet_size = 4096;
  client c(protocol_version::v5, o);
  c.send(c.make_connect());
  ASSERT_EQ(c.connects.size(), 1u);
  EXPECT_EQ(c.connects[0].connect.client_id, "dev");
  EXPECT_FALSE(c.connects[0].client_id_assignment_needed);
  EXPECT_FALSE(c.m.wants_read());  // nothing decoded until the decision
  EXPECT_TRUE(c.take().empty());
  c.accept();
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  const auto& ack = as<connack>(sent[0]);
  EXPECT_EQ(ack.reason_code, reason_code::success);
  EXPECT_EQ(ack.props.receive_maximum, 10);
  EXPECT_EQ(ack.props.topic_alias_maximum, 5);
  EXPECT_EQ(ack.props.maximum_packet_size, 4096u);
  EXPECT_FALSE(ack.props.server_keep_alive);  // client's 10 s is within the cap
  EXPECT_TRUE(c.m.connected());
  EXPECT_TRUE(c.m.wants_read());
}

TEST(MqttConnection, PacketsPipelinedAfterConnectWaitForTheDecision) {
  client c(protocol_version::v5);
  std::string wire = encoded(c.make_connect(), c.version);
  encode(publish{"t", "x", qos::at_least_once, false, false, 1, {}}, c.version, wire);
  c.feed(wire);
  EXPECT_TRUE(c.publishes.empty());
  c.accept();
  ASSERT_EQ(c.publishes.size(), 1u);
  EXPECT_EQ(c.publishes[0].payload, "x");
}

TEST(MqttConnection, PacketBeforeConnectClosesWithoutReply) {
  client c(protocol_version::v5);
  c.send(pingreq{});
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.closed->error, errc::first_packet_not_connect);
  EXPECT_TRUE(c.wire.empty());
}

TEST(MqttConnection, SecondConnectIsProtocolError) {
  client c(protocol_version::v5);
  c.connected();
  c.send(c.make_connect());
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::protocol_error);
  EXPECT_EQ(c.closed->error, errc::second_connect);
}

TEST(MqttConnection, V311SecondConnectClosesWithoutPacket) {
  client c(protocol_version::v311);
  c.connected();
  c.send(c.make_connect());
  ASSERT_TRUE(c.closed);
  EXPECT_TRUE(c.take().empty());
}

TEST(MqttConnection, V5EmptyClientIdGetsAssignedIdentifier) {
  client c(protocol_version::v5);
  c.send(c.make_connect(""));
  ASSERT_EQ(c.connects.size(), 1u);
  EXPECT_TRUE(c.connects[0].client_id_assignment_needed);
  connect_decision d;
  d.assigned_client_id = "wharf-node1-42";
  c.accept(d);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).props.assigned_client_identifier, "wharf-node1-42");
  EXPECT_EQ(c.m.client_id(), "wharf-node1-42");
}

TEST(MqttConnection, V311EmptyClientIdWithCleanSessionIsAssignedSilently) {
  client c(protocol_version::v311);
  c.send(c.make_connect(""));
  ASSERT_EQ(c.connects.size(), 1u);
  EXPECT_TRUE(c.connects[0].client_id_assignment_needed);
  c.accept({.assigned_client_id = "auto-1"});
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).reason_code, reason_code::success);
  EXPECT_EQ(c.m.client_id(), "auto-1");
}

TEST(MqttConnection, V311EmptyClientIdWithoutCleanSessionGetsIdentifierRejected) {
  client c(protocol_version::v311);
  connect cn = c.make_connect("");
  cn.clean_start = false;
  c.send(cn);
  EXPECT_TRUE(c.connects.empty());
  ASSERT_TRUE(c.closed);
  // Raw bytes: CONNACK, length 2, no session, return code 2.
  EXPECT_EQ(c.wire, bytes({0x20, 0x02, 0x00, 0x02}));
}

TEST(MqttConnection, ClientIdLongerThanLimitIsRejected) {
  connection_options o;
  o.max_client_id_length = 4;
  client c(protocol_version::v5, o);
  c.send(c.make_connect("12345"));
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).reason_code, reason_code::client_identifier_not_valid);
}

TEST(MqttConnection, V311WrongProtocolNameGetsConnack01) {
  client c(protocol_version::v311);
  std::string body = bytes({0x00, 0x04, 'M', 'Q', 'X', 'X', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, 'c'});
  c.feed(bytes({0x10, static_cast<int>(body.size())}) + body);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.wire, bytes({0x20, 0x02, 0x00, 0x01}));
}

TEST(MqttConnection, V5WrongProtocolNameGetsConnack84) {
  client c(protocol_version::v5);
  std::string body = bytes({0x00, 0x04, 'M', 'Q', 'X', 'X', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x01, 'c'});
  c.feed(bytes({0x10, static_cast<int>(body.size())}) + body);
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).reason_code, reason_code::unsupported_protocol_version);
}

TEST(MqttConnection, UnknownProtocolLevelGetsUnsupportedVersion) {
  client c(protocol_version::v311);
  std::string body = bytes({0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x01, 'c'});
  c.feed(bytes({0x10, static_cast<int>(body.size())}) + body);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.wire, bytes({0x20, 0x02, 0x00, 0x01}));
}

TEST(MqttConnection, MalformedV5ConnectGetsConnackWithReasonCode) {
  client c(protocol_version::v5);
  std::string body = bytes({0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
                            0x03,  // reserved flag bit set
                            0x00, 0x3C, 0x00, 0x00, 0x01, 'c'});
  c.feed(bytes({0x10, static_cast<int>(body.size())}) + body);
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).reason_code, reason_code::malformed_packet);
}

TEST(MqttConnection, AuthenticationMethodGetsBadAuthenticationMethod) {
  client c(protocol_version::v5);
  connect cn = c.make_connect();
  cn.props.authentication_method = "SCRAM-SHA-256";
  c.send(cn);
  EXPECT_TRUE(c.connects.empty());
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).reason_code, reason_code::bad_authentication_method);
}

TEST(MqttConnection, AuthPacketWithoutEnhancedAuthIsProtocolError) {
  client c(protocol_version::v5);
  c.connected();
  c.send(auth{reason_code::re_authenticate, {}});
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::protocol_error);
}

TEST(MqttConnection, ServerOnlyPacketsFromClientAreProtocolErrors) {
  const std::vector<packet> server_only = {connack{}, suback{1, {reason_code::success}, {}}, unsuback{1, {}, {}},
                                           pingresp{}};
  for (const auto& p : server_only) {
    client c(protocol_version::v5);
    c.connected();
    c.send(p);
    ASSERT_TRUE(c.closed) << int(packet_type(p));
    EXPECT_EQ(c.closed->error, errc::unexpected_packet);
    auto sent = c.take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::protocol_error);
  }
}

TEST(MqttConnection, RejectedConnectSendsV311ReturnCode) {
  client c(protocol_version::v311);
  c.send(c.make_connect());
  c.m.reject_connect({.reason_code = reason_code::bad_user_name_or_password});
  c.collect();
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.wire, bytes({0x20, 0x02, 0x00, 0x04}));
}

TEST(MqttConnection, SessionPresentIsFalseWithCleanStart) {
  client c(protocol_version::v5);
  c.send(c.make_connect());
  c.accept({.session_present = true});
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(as<connack>(sent[0]).session_present);
}

// ---------------------------------------------------------------------------
// Timers

TEST(MqttConnection, ConnectTimeoutClosesWithoutPacket) {
  connection_options o;
  o.connect_timeout = 5s;
  client c(protocol_version::v5, o);
  EXPECT_EQ(c.m.next_deadline(), c.now + 5s);
  c.tick(4999ms);
  EXPECT_FALSE(c.closed);
  c.tick(1ms);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.closed->error, errc::connect_timeout);
  EXPECT_TRUE(c.wire.empty());
}

TEST(MqttConnection, KeepAliveExpiresAtOneAndAHalfTimes) {
  client c(protocol_version::v5);
  connect cn = c.make_connect();
  cn.keep_alive = 10;
  cn.will = will_message{"wills/dev", "gone", qos::at_least_once, false, {}};
  c.connected(cn);
  EXPECT_EQ(c.m.next_deadline(), c.now + 15s);
  c.tick(14999ms);
  EXPECT_FALSE(c.closed);
  c.tick(1ms);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.closed->error, errc::keep_alive_timeout);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::keep_alive_timeout);
  ASSERT_EQ(c.wills.size(), 1u);  // abnormal close publishes the will
}

TEST(MqttConnection, AnyPacketResetsKeepAlive) {
  client c(protocol_version::v311);
  c.connected();
  c.tick(14s);
  c.send(pingreq{});
  EXPECT_EQ(c.wire, bytes({0xD0, 0x00}));  // PINGRESP
  c.tick(14s);
  EXPECT_FALSE(c.closed);
  c.tick(1s);
  EXPECT_TRUE(c.closed);
  EXPECT_TRUE(c.take().size() == 1u);  // only the PINGRESP; 3.1.1 gets no DISCONNECT
}

TEST(MqttConnection, KeepAliveZeroIsCappedByMaxKeepAlive) {
  connection_options o;
  o.max_keep_alive = 100;
  client c(protocol_version::v5, o);
  connect cn = c.make_connect();
  cn.keep_alive = 0;
  c.send(cn);
  c.accept();
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<connack>(sent[0]).props.server_keep_alive, 100);
  EXPECT_EQ(c.m.keep_alive(), 100);
}

// ---------------------------------------------------------------------------
// QoS 1 ordering

TEST(MqttConnection, PubacksLeaveInArrivalOrderWhenCompletionsArriveOutOfOrder) {
  client c(protocol_version::v5);
  c.connected();
  for (std::uint16_t id = 1; id <= 3; ++id) c.publish_qos(qos::at_least_once, id);
  ASSERT_EQ(c.publishes.size(), 3u);
  c.complete(c.publishes[2].token);
  c.complete(c.publishes[1].token);
  EXPECT_TRUE(c.wire.empty());  // nothing before the first is stored
  c.complete(c.publishes[0].token);
  EXPECT_EQ(c.last_call_send_events, 1u);  // coalesced into one write
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(as<puback>(sent[0]).packet_id, 1);
  EXPECT_EQ(as<puback>(sent[1]).packet_id, 2);
  EXPECT_EQ(as<puback>(sent[2]).packet_id, 3);
  EXPECT_EQ(c.m.inflight(), 0u);
}

TEST(MqttConnection, Qos0NeitherWaitsNorBlocksAcks) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.publish_qos(qos::at_most_once, 0);
  c.publish_qos(qos::at_least_once, 2);
  ASSERT_EQ(c.publishes.size(), 3u);
  EXPECT_EQ(c.publishes[1].qos, qos::at_most_once);
  c.complete(c.publishes[0].token);
  c.complete(c.publishes[2].token);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(as<puback>(sent[1]).packet_id, 2);
}

TEST(MqttConnection, PublishRequestCarriesMessageAndProperties) {
  client c(protocol_version::v5);
  c.connected();
  publish p{"sensors/1", "{\"t\":1}", qos::at_least_once, true, true, 9, {}};
  p.props.content_type = "application/json";
  p.props.user_properties = {{"site", "north"}};
  p.props.message_expiry_interval = 30;
  c.send(p);
  ASSERT_EQ(c.publishes.size(), 1u);
  const auto& r = c.publishes[0];
  EXPECT_EQ(r.topic, "sensors/1");
  EXPECT_EQ(r.payload, "{\"t\":1}");
  EXPECT_TRUE(r.retain);
  EXPECT_TRUE(r.dup);
  EXPECT_EQ(r.packet_id, 9);
  EXPECT_EQ(r.props.content_type, "application/json");
  EXPECT_EQ(r.props.user_properties, p.props.user_properties);
  EXPECT_EQ(r.props.message_expiry_interval, 30u);
}

// ---------------------------------------------------------------------------
// QoS 2

TEST(MqttConnection, Qos2PubrecOnlyAfterCompletionThenPubrelGetsPubcomp) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::exactly_once, 5);
  ASSERT_EQ(c.publishes.size(), 1u);
  EXPECT_TRUE(c.wire.empty());
  c.complete(c.publishes[0].token);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubrec>(sent[0]).packet_id, 5);
  EXPECT_EQ(c.held, std::vector<std::uint16_t>{5});
  EXPECT_EQ(c.m.inflight(), 1u);  // until PUBCOMP
  c.send(pubrel{5, reason_code::success, {}});
  sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubcomp>(sent[0]).packet_id, 5);
  EXPECT_EQ(as<pubcomp>(sent[0]).reason_code, reason_code::success);
  EXPECT_EQ(c.released, std::vector<std::uint16_t>{5});
  EXPECT_EQ(c.m.inflight(), 0u);
}

TEST(MqttConnection, Qos2DuplicateAwaitingPubrelIsNotDeliveredAgainButPubrecedAgain) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::exactly_once, 5);
  c.complete(c.publishes[0].token);
  c.take();
  c.publish_qos(qos::exactly_once, 5, "t", "p", true);
  EXPECT_EQ(c.publishes.size(), 1u);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubrec>(sent[0]).packet_id, 5);
  EXPECT_EQ(c.held.size(), 1u);
}

TEST(MqttConnection, Qos2DuplicateWhileSinkPendingIsNotDeliveredAgain) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::exactly_once, 5);
  c.publish_qos(qos::exactly_once, 5, "t", "p", true);
  EXPECT_EQ(c.publishes.size(), 1u);
  c.complete(c.publishes[0].token);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);  // one PUBREC
}

TEST(MqttConnection, Qos2RepeatedPubrecKeepsArrivalOrder) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::exactly_once, 5);
  c.complete(c.publishes[0].token);
  c.take();
  c.publish_qos(qos::at_least_once, 6);                 // pending at the sink
  c.publish_qos(qos::exactly_once, 5, "t", "p", true);  // repeat: PUBREC after 6's PUBACK
  EXPECT_TRUE(c.wire.empty());
  c.complete(c.publishes[1].token);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(as<puback>(sent[0]).packet_id, 6);
  EXPECT_EQ(as<pubrec>(sent[1]).packet_id, 5);
}

TEST(MqttConnection, Qos2DuplicatesBehindASlowSinkAreAnsweredOnce) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::exactly_once, 5);
  c.complete(c.publishes[0].token);
  c.take();
  c.publish_qos(qos::at_least_once, 6);  // blocks the queue
  for (int i = 0; i < 100; ++i) c.publish_qos(qos::exactly_once, 5, "t", "p", true);
  c.complete(c.publishes[1].token);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(as<puback>(sent[0]).packet_id, 6);
  EXPECT_EQ(as<pubrec>(sent[1]).packet_id, 5);
}

TEST(MqttConnection, PubrelForUnknownIdGetsPubcomp92OnV5) {
  client c(protocol_version::v5);
  c.connected();
  c.send(pubrel{77, reason_code::success, {}});
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubcomp>(sent[0]).reason_code, reason_code::packet_identifier_not_found);
  EXPECT_FALSE(c.closed);
}

TEST(MqttConnection, PubrelForUnknownIdGetsPlainPubcompOnV311) {
  client c(protocol_version::v311);
  c.connected();
  c.send(pubrel{77, reason_code::success, {}});
  EXPECT_EQ(c.wire, bytes({0x70, 0x02, 0x00, 77}));
}

TEST(MqttConnection, ResumedSessionQos2IdsAreNotDeliveredTwice) {
  client c(protocol_version::v5);
  connect cn = c.make_connect();
  cn.clean_start = false;
  c.send(cn);
  c.accept({.session_present = true, .qos2_awaiting_pubrel = {9}});
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(as<connack>(sent[0]).session_present);
  c.publish_qos(qos::exactly_once, 9, "t", "p", true);
  EXPECT_TRUE(c.publishes.empty());
  sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubrec>(sent[0]).packet_id, 9);
  c.send(pubrel{9, reason_code::success, {}});
  sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubcomp>(sent[0]).reason_code, reason_code::success);
}

// ---------------------------------------------------------------------------
// Outcomes

TEST(MqttConnection, DeniedPublishGetsNotAuthorizedOnV5) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.complete(c.publishes[0].token, publish_outcome::denied());
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<puback>(sent[0]).reason_code, reason_code::not_authorized);
  EXPECT_FALSE(c.closed);
}

TEST(MqttConnection, DeniedPublishOnV311ClosesUnlessDropsSilently) {
  {
    client c(protocol_version::v311);
    c.connected();
    c.publish_qos(qos::at_least_once, 1);
    c.complete(c.publishes[0].token, publish_outcome::denied());
    EXPECT_TRUE(c.closed);
    EXPECT_TRUE(c.wire.empty());
  }
  {
    connection_options o;
    o.deny_drops_silently = true;
    client c(protocol_version::v311, o);
    c.connected();
    c.publish_qos(qos::at_least_once, 1);
    c.complete(c.publishes[0].token, publish_outcome::denied());
    EXPECT_FALSE(c.closed);
    EXPECT_EQ(c.wire, bytes({0x40, 0x02, 0x00, 0x01}));
  }
}

TEST(MqttConnection, UnroutablePublishGetsTopicNameInvalid) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::exactly_once, 1);
  c.complete(c.publishes[0].token, publish_outcome::no_matching_route());
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<pubrec>(sent[0]).reason_code, reason_code::topic_name_invalid);
  EXPECT_TRUE(c.held.empty());  // a failed PUBREC ends the QoS 2 flow
  EXPECT_EQ(c.m.inflight(), 0u);
}

TEST(MqttConnection, PermanentFailureSendsItsReasonCode) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.complete(c.publishes[0].token, publish_outcome::failed_permanent(reason_code::quota_exceeded));
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<puback>(sent[0]).reason_code, reason_code::quota_exceeded);
}

TEST(MqttConnection, PermanentFailureWithDisconnectOnlyCodeDisconnects) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.complete(c.publishes[0].token, publish_outcome::failed_permanent(reason_code::packet_too_large));
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::packet_too_large);
}

TEST(MqttConnection, RetryableFailureDisconnectsServerBusyWithoutAck) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.publish_qos(qos::at_least_once, 2);
  c.complete(c.publishes[0].token);  // PUBACK 1
  c.complete(c.publishes[1].token, publish_outcome::failed_retryable());
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(as<puback>(sent[0]).packet_id, 1);
  EXPECT_EQ(as<disconnect>(sent[1]).reason_code, reason_code::server_busy);
}

TEST(MqttConnection, RetryableFailureOnV311ClosesWithoutPacket) {
  client c(protocol_version::v311);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.complete(c.publishes[0].token, publish_outcome::failed_retryable());
  ASSERT_TRUE(c.closed);
  EXPECT_TRUE(c.wire.empty());
}

TEST(MqttConnection, PayloadNotUtf8AsDeclaredGetsPayloadFormatInvalid) {
  client c(protocol_version::v5);
  c.connected();
  publish p{"t", "\xFF\xFE", qos::at_least_once, false, false, 1, {}};
  p.props.payload_format_indicator = 1;
  c.send(p);
  EXPECT_TRUE(c.publishes.empty());
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<puback>(sent[0]).reason_code, reason_code::payload_format_invalid);
}

TEST(MqttConnection, TopicLongerThanLimitGetsTopicNameInvalid) {
  connection_options o;
  o.max_topic_length = 4;
  client c(protocol_version::v5, o);
  c.connected();
  c.publish_qos(qos::at_least_once, 1, "toolong");
  EXPECT_TRUE(c.publishes.empty());
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<puback>(sent[0]).reason_code, reason_code::topic_name_invalid);
}

TEST(MqttConnection, TopicWithTooManyLevelsClosesV311) {
  connection_options o;
  o.max_topic_levels = 2;
  client c(protocol_version::v311, o);
  c.connected();
  c.publish_qos(qos::at_least_once, 1, "a/b/c");
  EXPECT_TRUE(c.publishes.empty());
  EXPECT_TRUE(c.closed);
}

TEST(MqttConnection, ReasonStringDroppedWhenClientMaximumPacketSizeIsSmall) {
  client c(protocol_version::v5);
  connect cn = c.make_connect();
  cn.props.maximum_packet_size = 16;
  c.connected(cn);
  c.publish_qos(qos::at_least_once, 1);
  publish_outcome o = publish_outcome::denied();
  o.reason_string = "this reason string does not fit in sixteen bytes";
  c.complete(c.publishes[0].token, o);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<puback>(sent[0]).reason_code, reason_code::not_authorized);
  EXPECT_FALSE(as<puback>(sent[0]).props.reason_string);
}

TEST(MqttConnection, RequestProblemInformationZeroDropsReasonStringFromPuback) {
  client c(protocol_version::v5);
  connect cn = c.make_connect();
  cn.props.request_problem_information = 0;
  c.connected(cn);
  c.publish_qos(qos::at_least_once, 1);
  publish_outcome o = publish_outcome::denied();
  o.reason_string = "no";
  c.complete(c.publishes[0].token, o);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(as<puback>(sent[0]).props.reason_string);
}

TEST(MqttConnection, ReasonStringThatIsNotUtf8IsNeverSent) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  publish_outcome o = publish_outcome::denied();
  o.reason_string = std::string("bad\xFF", 4);
  c.complete(c.publishes[0].token, o);
  auto sent = c.take();  // decodes: the client would reject invalid UTF-8
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(as<puback>(sent[0]).props.reason_string);
}

// ---------------------------------------------------------------------------
// Receive Maximum

TEST(MqttConnection, ReceiveMaximumExceededDisconnects93) {
  connection_options o;
  o.receive_maximum = 2;
  client c(protocol_version::v5, o);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.publish_qos(qos::exactly_once, 2);
  EXPECT_FALSE(c.closed);
  c.publish_qos(qos::at_least_once, 3);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.publishes.size(), 2u);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::receive_maximum_exceeded);
}

TEST(MqttConnection, Qos2AwaitingPubrelCountsTowardsReceiveMaximum) {
  connection_options o;
  o.receive_maximum = 1;
  client c(protocol_version::v5, o);
  c.connected();
  c.publish_qos(qos::exactly_once, 1);
  c.complete(c.publishes[0].token);
  c.publish_qos(qos::at_least_once, 2);  // PUBCOMP not sent yet: over the window
  EXPECT_TRUE(c.closed);
}

TEST(MqttConnection, Qos0DoesNotCountTowardsReceiveMaximum) {
  connection_options o;
  o.receive_maximum = 1;
  client c(protocol_version::v5, o);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  for (int i = 0; i < 5; ++i) c.publish_qos(qos::at_most_once, 0);
  EXPECT_FALSE(c.closed);
  EXPECT_EQ(c.publishes.size(), 6u);
}

TEST(MqttConnection, V311FullWindowPausesReadingUntilAcksLeave) {
  connection_options o;
  o.receive_maximum = 2;
  client c(protocol_version::v311, o);
  c.connected();
  std::string wire;
  for (std::uint16_t id = 1; id <= 4; ++id) {
    encode(publish{"t", "p", qos::at_least_once, false, false, id, {}}, c.version, wire);
  }
  c.feed(wire);
  EXPECT_EQ(c.publishes.size(), 2u);  // the rest stays buffered
  EXPECT_FALSE(c.m.wants_read());
  EXPECT_FALSE(c.closed);
  c.tick(60s);  // our pause is not the client's silence
  EXPECT_FALSE(c.closed);
  c.complete(c.publishes[0].token);
  EXPECT_EQ(c.publishes.size(), 3u);
  c.complete(c.publishes[1].token);
  c.complete(c.publishes[2].token);
  EXPECT_EQ(c.publishes.size(), 4u);
  c.complete(c.publishes[3].token);
  EXPECT_TRUE(c.m.wants_read());
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 4u);
  for (std::uint16_t i = 0; i < 4; ++i) EXPECT_EQ(as<puback>(sent[i]).packet_id, i + 1);
}

// ---------------------------------------------------------------------------
// Topic aliases

TEST(MqttConnection, TopicAliasIsSetThenResolved) {
  client c(protocol_version::v5);
  c.connected();
  publish first{"long/topic/name", "1", qos::at_most_once, false, false, 0, {}};
  first.props.topic_alias = 3;
  c.send(first);
  publish second{"", "2", qos::at_most_once, false, false, 0, {}};
  second.props.topic_alias = 3;
  c.send(second);
  ASSERT_EQ(c.publishes.size(), 2u);
  EXPECT_EQ(c.publishes[1].topic, "long/topic/name");
  EXPECT_FALSE(c.publishes[1].props.topic_alias);
}

TEST(MqttConnection, TopicAliasAboveMaximumDisconnects94) {
  connection_options o;
  o.topic_alias_maximum = 2;
  client c(protocol_version::v5, o);
  c.connected();
  publish p{"t", "1", qos::at_most_once, false, false, 0, {}};
  p.props.topic_alias = 3;
  c.send(p);
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::topic_alias_invalid);
}

TEST(MqttConnection, UnknownTopicAliasIsProtocolError) {
  client c(protocol_version::v5);
  c.connected();
  publish p{"", "1", qos::at_most_once, false, false, 0, {}};
  p.props.topic_alias = 1;
  c.send(p);
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::protocol_error);
}

TEST(MqttConnection, SubscriptionIdentifierInPublishFromClientIsProtocolError) {
  client c(protocol_version::v5);
  c.connected();
  publish p{"t", "1", qos::at_most_once, false, false, 0, {}};
  p.props.subscription_identifiers = {4};
  c.send(p);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.closed->error, errc::subscription_identifier_from_client);
}

// ---------------------------------------------------------------------------
// Will and DISCONNECT

connect with_will(client& c, std::uint32_t will_delay, std::uint32_t session_expiry) {
  connect cn = c.make_connect();
  cn.will = will_message{"wills/dev", "offline", qos::at_least_once, true, {}};
  if (c.version == protocol_version::v5) {
    cn.will->props.will_delay_interval = will_delay;
    cn.props.session_expiry_interval = session_expiry;
  }
  return cn;
}

TEST(MqttConnection, WillRequestedOnAbnormalCloseWithDelay) {
  client c(protocol_version::v5);
  c.connected(with_will(c, 30, 3600));
  c.m.on_socket_closed();
  c.collect();
  ASSERT_EQ(c.wills.size(), 1u);
  EXPECT_EQ(c.wills[0].will.topic, "wills/dev");
  EXPECT_EQ(c.wills[0].will.payload, "offline");
  EXPECT_EQ(c.wills[0].delay, 30s);
  EXPECT_EQ(c.wills[0].client_id, "dev");
  ASSERT_TRUE(c.closed);
  EXPECT_TRUE(c.closed->client_initiated);
}

TEST(MqttConnection, WillDelayIsCappedBySessionExpiry) {
  client c(protocol_version::v5);
  c.connected(with_will(c, 300, 20));
  c.m.on_socket_closed();
  c.collect();
  ASSERT_EQ(c.wills.size(), 1u);
  EXPECT_EQ(c.wills[0].delay, 20s);
}

TEST(MqttConnection, NoWillOnNormalDisconnect) {
  client c(protocol_version::v5);
  c.connected(with_will(c, 0, 0));
  c.send(disconnect{});
  ASSERT_TRUE(c.closed);
  EXPECT_TRUE(c.wills.empty());
  EXPECT_TRUE(c.wire.empty());  // the server never answers a DISCONNECT
  EXPECT_TRUE(c.closed->client_initiated);
}

TEST(MqttConnection, NoWillOnV311Disconnect) {
  client c(protocol_version::v311);
  c.connected(with_will(c, 0, 0));
  c.send(disconnect{});
  ASSERT_TRUE(c.closed);
  EXPECT_TRUE(c.wills.empty());
}

TEST(MqttConnection, WillOnDisconnectWithWillMessage) {
  client c(protocol_version::v5);
  c.connected(with_will(c, 0, 0));
  c.send(disconnect{reason_code::disconnect_with_will_message, {}});
  ASSERT_TRUE(c.closed);
  ASSERT_EQ(c.wills.size(), 1u);
  EXPECT_EQ(c.wills[0].delay, 0s);
}

TEST(MqttConnection, WillOnProtocolError) {
  client c(protocol_version::v311);
  c.connected(with_will(c, 0, 0));
  c.send(pingresp{});
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.wills.size(), 1u);
}

TEST(MqttConnection, NoWillWhenConnectRejected) {
  client c(protocol_version::v5);
  c.send(with_will(c, 0, 0));
  c.m.reject_connect({.reason_code = reason_code::not_authorized});
  c.collect();
  ASSERT_TRUE(c.closed);
  EXPECT_TRUE(c.wills.empty());
}

TEST(MqttConnection, DisconnectMayChangeSessionExpiry) {
  client c(protocol_version::v5);
  connect cn = c.make_connect();
  cn.props.session_expiry_interval = 60;
  c.connected(cn);
  disconnect d;
  d.props.session_expiry_interval = 0;
  c.send(d);
  ASSERT_EQ(c.expiry_updates.size(), 1u);
  EXPECT_EQ(c.expiry_updates[0].seconds, 0u);
  EXPECT_TRUE(c.closed);
}

TEST(MqttConnection, SessionExpiryFromZeroToNonZeroIsProtocolError) {
  client c(protocol_version::v5);
  c.connected(with_will(c, 0, 0));
  disconnect d;
  d.props.session_expiry_interval = 60;
  c.send(d);
  ASSERT_TRUE(c.closed);
  EXPECT_EQ(c.closed->error, errc::session_expiry_invalid);
  EXPECT_TRUE(c.expiry_updates.empty());
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::protocol_error);
  EXPECT_EQ(c.wills.size(), 1u);
}

TEST(MqttConnection, ServerReferenceInClientDisconnectIsProtocolError) {
  client c(protocol_version::v5);
  c.connected();
  disconnect d;
  d.props.server_reference = "elsewhere";
  c.send(d);
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::protocol_error);
}

TEST(MqttConnection, TakeoverSendsSessionTakenOver) {
  client c(protocol_version::v5);
  c.connected(with_will(c, 5, 100));
  c.m.server_disconnect(reason_code::session_taken_over);
  c.collect();
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::session_taken_over);
  EXPECT_EQ(c.wills.size(), 1u);
  EXPECT_FALSE(c.closed->client_initiated);
}

TEST(MqttConnection, DrainSendsUseAnotherServerWithReference) {
  client c(protocol_version::v5);
  c.connected();
  c.m.server_disconnect(reason_code::use_another_server, "10.0.0.2:1883", {}, false);
  c.collect();
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).props.server_reference, "10.0.0.2:1883");
}

TEST(MqttConnection, NothingHappensAfterClose) {
  client c(protocol_version::v5);
  c.connected();
  c.publish_qos(qos::at_least_once, 1);
  c.m.on_socket_closed();
  c.collect();
  ASSERT_TRUE(c.closed);
  c.complete(c.publishes[0].token);
  c.send(pingreq{});
  c.tick(1h);
  EXPECT_TRUE(c.m.events().empty());
  EXPECT_TRUE(c.wire.empty());
}

// ---------------------------------------------------------------------------
// SUBSCRIBE / UNSUBSCRIBE: validated, then refused

TEST(MqttConnection, SubscribeIsRefusedPerFilterWithFittingCodes) {
  client c(protocol_version::v5);
  c.connected();
  subscribe s;
  s.packet_id = 4;
  s.subscriptions = {{"a/+", qos::at_least_once, false, false, 0},
                     {"a/#/b", qos::at_most_once, false, false, 0},
                     {"$share/g/a", qos::at_most_once, false, false, 0}};
  c.send(s);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  const auto& ack = as<suback>(sent[0]);
  EXPECT_EQ(ack.packet_id, 4);
  EXPECT_EQ(ack.reason_codes,
            (std::vector<reason_code>{reason_code::implementation_specific_error, reason_code::topic_filter_invalid,
                                      reason_code::shared_subscriptions_not_supported}));
  EXPECT_FALSE(c.closed);
}

TEST(MqttConnection, SubscribeOnV311GetsFailureCodes) {
  client c(protocol_version::v311);
  c.connected();
  subscribe s;
  s.packet_id = 4;
  s.subscriptions = {{"a", qos::at_least_once, false, false, 0}};
  c.send(s);
  // SUBACK, length 3, packet id 4, 0x80 failure.
  EXPECT_EQ(c.wire, bytes({0x90, 0x03, 0x00, 0x04, 0x80}));
}

TEST(MqttConnection, SharedSubscriptionWithNoLocalIsProtocolError) {
  client c(protocol_version::v5);
  c.connected();
  subscribe s;
  s.packet_id = 4;
  s.subscriptions = {{"$share/g/a", qos::at_most_once, true, false, 0}};
  c.send(s);
  EXPECT_TRUE(c.closed);
}

TEST(MqttConnection, UnsubscribeGetsNoSubscriptionExisted) {
  client c(protocol_version::v5);
  c.connected();
  c.send(unsubscribe{8, {"a/b", "a/#/x"}, {}});
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<unsuback>(sent[0]).reason_codes,
            (std::vector<reason_code>{reason_code::no_subscription_existed, reason_code::topic_filter_invalid}));
}

// ---------------------------------------------------------------------------
// Errors after CONNECT

TEST(MqttConnection, MalformedPacketGetsDisconnect81OnV5) {
  client c(protocol_version::v5);
  c.connected();
  c.feed(bytes({0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}));  // QoS 3
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::malformed_packet);
  EXPECT_EQ(c.closed->error, errc::invalid_qos);
}

TEST(MqttConnection, OversizedPacketGetsDisconnect95) {
  connection_options o;
  o.max_packet_size = 64;
  client c(protocol_version::v5, o);
  c.connected();
  c.publish_qos(qos::at_most_once, 0, "t", std::string(100, 'x'));
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::packet_too_large);
}

TEST(MqttConnection, OptionsComeFromConfigLimits) {
  config::mqtt_limits l;
  l.receive_maximum = 7;
  l.max_packet_size = 1000;
  l.connect_timeout = std::chrono::milliseconds(1234);
  const auto o = make_connection_options(l);
  EXPECT_EQ(o.receive_maximum, 7);
  EXPECT_EQ(o.max_packet_size, 1000u);
  EXPECT_EQ(o.connect_timeout, std::chrono::milliseconds(1234));

  config::mqtt_config mc;
  mc.deny_drops_silently = true;
  mc.limits.topic_alias_maximum = 3;
  const auto o2 = make_connection_options(mc);
  EXPECT_TRUE(o2.deny_drops_silently);
  EXPECT_EQ(o2.topic_alias_maximum, 3);
}

// Everything a client might send, as one byte stream.
std::string busy_session(protocol_version v) {
  std::string wire;
  connect cn;
  cn.version = v;
  cn.client_id = "dev";
  cn.keep_alive = 30;
  encode(cn, v, wire);
  for (std::uint16_t i = 1; i <= 50; ++i) {
    const qos q = static_cast<qos>(i % 3);
    encode(publish{"t/" + std::to_string(i),
                   std::string(i, 'x'),
                   q,
                   false,
                   false,
                   q == qos::at_most_once ? std::uint16_t{0} : i,
                   {}},
           v, wire);
  }
  encode(pingreq{}, v, wire);
  encode(subscribe{3, {{"a/#", qos::at_least_once, false, false, 0}}, {}}, v, wire);
  return wire;
}

TEST(MqttConnection, OneByteAtATimeGivesTheSameResultAsOneBuffer) {
  for (auto v : {protocol_version::v311, protocol_version::v5}) {
    const std::string wire = busy_session(v);
    client whole(v);
    whole.feed(wire);
    whole.accept();
    client bytewise(v);
    for (std::size_t i = 0; i < wire.size(); ++i) {
      bytewise.feed(wire.substr(i, 1));
      if (bytewise.connects.size() == 1 && !bytewise.m.connected()) bytewise.accept();
    }
    ASSERT_EQ(whole.publishes.size(), 50u);
    ASSERT_EQ(bytewise.publishes.size(), 50u);
    for (std::size_t i = 0; i < 50; ++i) {
      EXPECT_EQ(whole.publishes[i].topic, bytewise.publishes[i].topic);
      EXPECT_EQ(whole.publishes[i].payload, bytewise.publishes[i].payload);
      whole.complete(whole.publishes[i].token);
      bytewise.complete(bytewise.publishes[i].token);
    }
    EXPECT_EQ(whole.wire, bytewise.wire);  // CONNACK, PINGRESP, SUBACK, acks
    EXPECT_FALSE(whole.closed);
    EXPECT_EQ(whole.m.inflight(), 17u);  // the 17 QoS 2 messages await PUBREL
  }
}

TEST(MqttConnection, Qos0PayloadNotUtf8AsDeclaredDisconnects99) {
  client c(protocol_version::v5);
  c.connected();
  publish p{"t", "\xC3\x28", qos::at_most_once, false, false, 0, {}};
  p.props.payload_format_indicator = 1;
  c.send(p);
  EXPECT_TRUE(c.publishes.empty());
  ASSERT_TRUE(c.closed);
  auto sent = c.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(as<disconnect>(sent[0]).reason_code, reason_code::payload_format_invalid);
}

}  // namespace
}  // namespace wharf::mqtt
