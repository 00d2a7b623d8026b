// SIGTERM drains a node: /readyz turns 503, MQTT 5 clients get DISCONNECT
// 0x8B, the process exits 0, and a QoS 1 publisher running through the
// drain finds every message it saw acknowledged in Kafka.
#include "tests/integration/02_mqtt_support.h"

#include <csignal>

using namespace wharf::test;
using namespace wharf::test::mqtt_it;

TEST(MqttDrain, SigtermDisconnectsWith0x8BTurnsUnreadyExitsZeroAndLosesNoAcknowledgedMessage) {
  scoped_topic topic("mqtt-it-drain");
  wharf_node node(node_options("  allow_anonymous: true\n  default_route: {kafka_topic: " + topic.name + "}\n",
                               "drain:\n  duration: 2s\n"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  // Idle MQTT 5 clients that record the DISCONNECT reason code they get.
  constexpr int idle = 5;
  std::vector<std::unique_ptr<mqtt::async_client>> clients;
  std::vector<std::shared_ptr<std::atomic<int>>> reasons;
  for (int i = 0; i < idle; ++i) {
    auto c = paho_client(uri(node.mqtt_port()), unique_name("drain-idle"), MQTTVERSION_5);
    auto got = std::make_shared<std::atomic<int>>(-1);
    c->set_disconnected_handler(
        [got](const mqtt::properties&, mqtt::ReasonCode rc) { got->store(static_cast<int>(rc)); });
    ASSERT_EQ(connect_result(*c, paho_connect_options(MQTTVERSION_5).finalize()), 0);
    clients.push_back(std::move(c));
    reasons.push_back(got);
  }

  // And a 3.1.1 client, which has no DISCONNECT to receive: its connection closes.
  auto old = paho_client(uri(node.mqtt_port()), unique_name("drain-311"), MQTTVERSION_3_1_1);
  auto old_lost = std::make_shared<std::atomic<bool>>(false);
  old->set_connection_lost_handler([old_lost](const std::string&) { old_lost->store(true); });
  ASSERT_EQ(connect_result(*old, paho_connect_options(MQTTVERSION_3_1_1).finalize()), 0);

  auto cid = unique_name("drain-pub");
  resending_publisher pub(node.mqtt_port(), cid, "drain/" + cid, 10);
  pub.start(1'000'000);
  ASSERT_TRUE(pub.wait_acked(100, 60s)) << "acknowledged before the drain: " << pub.acked_count();

  ASSERT_EQ(::kill(node.process().pid(), SIGTERM), 0);
  // /readyz says 503 while the node drains (connections are spread over 2s).
  bool saw_503 = false;
  for (int i = 0; i < 200 && !saw_503; ++i) {
    int status = http_get(node.admin_port(), "/readyz").status;
    saw_503 = status == 503;
    if (status == 0) break;  // admin already gone
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(saw_503) << "/readyz never answered 503 during the drain";
  EXPECT_EQ(node.process().wait(2s + 15s), 0) << node.process().output();

  for (int i = 0; i < idle; ++i) {
    for (int t = 0; t < 100 && reasons[i]->load() == -1; ++t) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(reasons[i]->load(), 0x8B) << "idle client " << i;
  }
  for (int t = 0; t < 100 && !old_lost->load(); ++t) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(old_lost->load()) << "the 3.1.1 connection was not closed";
  auto reasons_seen = pub.disconnect_reasons();
  ASSERT_FALSE(reasons_seen.empty()) << "the publisher was not sent a DISCONNECT";
  EXPECT_EQ(reasons_seen.front(), 0x8B);
  pub.stop();

  auto acked = pub.acked();
  auto recs = read_client(topic.name, cid, acked.size());
  std::set<std::string> stored;
  for (const auto& r : recs) stored.insert(r.value);
  std::size_t missing = 0;
  for (const auto& [seq, at] : acked) missing += stored.count(pub.payload(seq)) == 0;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged messages";
  EXPECT_GE(acked.size(), 100u);
}
