// Faults under a QoS 1 stream: all of Kafka stopped, and the node SIGKILLed.
// The publisher re-sends whatever was not acknowledged when its connection
// drops; afterwards every message it saw acknowledged must be in Kafka, and
// while no broker is up no acknowledgement may arrive.
#include "tests/integration/02_mqtt_support.h"

#include <csignal>

using namespace wharf::test;
using namespace wharf::test::mqtt_it;

namespace {

// Starts the brokers again whatever happens to the test: others share them.
struct brokers_restorer {
  std::string names = "kafka-1 kafka-2 kafka-3";
  bool stopped = false;
  ~brokers_restorer() {
    if (stopped) stack("start " + names);
  }
};

// Every acknowledged payload must be among the records of `topic`.
void expect_every_acknowledged_message_stored(resending_publisher& pub, const std::string& topic,
                                              const std::string& cid) {
  auto acked = pub.acked();
  auto recs = read_client(topic, cid, acked.size(), 90s);
  std::set<std::string> stored;
  for (const auto& r : recs) stored.insert(r.value);
  std::vector<long long> missing;
  for (const auto& [seq, at] : acked)
    if (!stored.count(pub.payload(seq))) missing.push_back(seq);
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acked.size()
                               << " acknowledged messages are not in Kafka; first missing seq " << missing.front();
  std::cout << "[ info ] " << acked.size() << " messages acknowledged, " << recs.size()
            << " records in Kafka (duplicates from re-sends included)\n";
}

}  // namespace

TEST(MqttKafkaOutage, NoAckWhileAllBrokersAreDownAcksResumeAfterRestartAndNothingAcknowledgedIsLost) {
  scoped_topic topic("mqtt-fault-outage");
  wharf_node node(node_options(
      "  allow_anonymous: true\n  delivery_timeout: 10s\n  default_route: {kafka_topic: " + topic.name + "}\n", "",
      "  delivery_timeout: 10s\n"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  auto cid = unique_name("outage-pub");
  resending_publisher pub(node.mqtt_port(), cid, "outage/" + cid, 20);
  pub.start(100'000);
  ASSERT_TRUE(pub.wait_acked(200, 60s)) << "acknowledged before the outage: " << pub.acked_count();

  brokers_restorer restore;
  restore.stopped = true;
  std::string out;
  ASSERT_EQ(stack("stop kafka-1 kafka-2 kafka-3", &out), 0) << out;
  auto all_down = clock_type::now();
  std::this_thread::sleep_for(20s);
  auto restart_at = clock_type::now();
  ASSERT_EQ(stack("start kafka-1 kafka-2 kafka-3", &out), 0) << out;
  restore.stopped = false;
  auto acked_at_restart = pub.acked_count();

  // Acknowledgements resume by themselves.
  EXPECT_TRUE(pub.wait_acked(acked_at_restart + 200, 120s))
      << "acknowledged after the restart: " << pub.acked_count() - acked_at_restart;
  EXPECT_TRUE(pub.finish(60s)) << "not every message sent was acknowledged in the end";

  // Acknowledgements already on their way when the last broker went may
  // still land in the first moment; none after that until the restart.
  std::size_t during = 0;
  for (const auto& [seq, at] : pub.acked()) during += at > all_down + 2s && at < restart_at;
  EXPECT_EQ(during, 0u) << "PUBACKs arrived while no Kafka broker was up";
  std::cout << "[ info ] reconnects: " << pub.connects() - 1 << ", DISCONNECT reasons:";
  for (int rc : pub.disconnect_reasons()) std::cout << " 0x" << std::hex << rc << std::dec;
  std::cout << "\n";
  expect_every_acknowledged_message_stored(pub, topic.name, cid);
}

TEST(MqttNodeCrash, SigkillMidStreamThenRestartLosesNothingAcknowledged) {
  scoped_topic topic("mqtt-fault-crash");
  wharf_node node(node_options("  allow_anonymous: true\n  default_route: {kafka_topic: " + topic.name + "}\n"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  auto cid = unique_name("crash-pub");
  resending_publisher pub(node.mqtt_port(), cid, "crash/" + cid, 20);
  pub.start(100'000);
  ASSERT_TRUE(pub.wait_acked(300, 60s)) << "acknowledged before the crash: " << pub.acked_count();

  EXPECT_EQ(node.process().stop(SIGKILL, 10s), 128 + SIGKILL);
  auto acked_at_crash = pub.acked_count();
  node.restart();
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;
  EXPECT_TRUE(pub.wait_acked(acked_at_crash + 300, 60s))
      << "acknowledged after the restart: " << pub.acked_count() - acked_at_crash;
  EXPECT_TRUE(pub.finish(60s)) << "not every message sent was acknowledged in the end";
  EXPECT_GE(pub.connects(), 2);
  expect_every_acknowledged_message_stored(pub, topic.name, cid);
}

TEST(MqttKafkaBrokerKill, OneBrokerKilledMidStreamAcksContinueAndNothingAcknowledgedIsLost) {
  scoped_topic topic("mqtt-fault-broker-kill", 3);
  wharf_node node(node_options(
      "  allow_anonymous: true\n  delivery_timeout: 10s\n  default_route: {kafka_topic: " + topic.name + "}\n", "",
      "  delivery_timeout: 10s\n"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  auto cid = unique_name("broker-kill-pub");
  resending_publisher pub(node.mqtt_port(), cid, "kill/" + cid, 20);
  pub.start(3000);
  ASSERT_TRUE(pub.wait_acked(200, 60s)) << "acknowledged before the kill: " << pub.acked_count();

  brokers_restorer restore;
  restore.names = "kafka-2";
  restore.stopped = true;
  std::string out;
  ASSERT_EQ(stack("kill kafka-2", &out), 0) << out;
  // Two of three replicas remain, as many as min.insync.replicas asks.
  auto acked_at_kill = pub.acked_count();
  EXPECT_TRUE(pub.wait_acked(acked_at_kill + 300, 90s))
      << "acknowledged with one broker down: " << pub.acked_count() - acked_at_kill;
  ASSERT_EQ(stack("start kafka-2", &out), 0) << out;
  restore.stopped = false;
  EXPECT_TRUE(pub.finish(60s)) << "not every message sent was acknowledged in the end";
  expect_every_acknowledged_message_stored(pub, topic.name, cid);
}
