// Sessions across nodes: two or three wharf nodes on loopback share the
// stack's Redis (through Sentinel) and Kafka. A device resumes on another
// node after a SIGKILL, is taken over across nodes, finishes a QoS 2 flow
// on another node, and publishes without costing Redis commands.
#include "tests/integration/02_mqtt_support.h"
#include "tests/support/mqtt_raw_client.h"

#include <cctype>
#include <csignal>
#include <fstream>
#include <sstream>
#include <future>

using namespace wharf::test;
using namespace wharf::test::mqtt_it;
namespace mq = wharf::mqtt;

namespace {

const char* redis_url = "sentinel://127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381/wharf";

wharf_node::options session_node(const std::string& id, const std::string& topic) {
  wharf_node::options o;
  o.http = false;
  o.node_id = id;
  o.config_yaml = "kafka:\n  brokers: " + kafka_brokers() + "\nredis:\n  url: \"" + redis_url +
                  "\"\nmqtt:\n  allow_anonymous: true\n  default_route: {kafka_topic: " + topic + "}\n";
  return o;
}

bool ready(wharf_node& n) {
  std::string why;
  bool ok = n.wait_ready(30s, &why);
  if (!ok) ADD_FAILURE() << why;
  return ok;
}

// Current Redis primary's port, from Sentinel.
std::string redis_primary_port() {
  std::string out;
  run_command("redis-cli -p 26379 SENTINEL get-master-addr-by-name wharf 2>/dev/null | tail -1", &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

template <class T>
const T* as(const std::optional<mq::packet>& p) {
  return p ? std::get_if<T>(&*p) : nullptr;
}

}  // namespace

TEST(MqttSessions, ResumesOnAnotherNodeAfterSigkillAndRedeliveredMessagesAreInKafka) {
  scoped_topic topic("it.sessions.resume");
  const std::string id_b = unique_name("node-b");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  wharf_node b(session_node(id_b, topic.name));
  ASSERT_TRUE(ready(a) && ready(b));
  const std::string id = unique_name("dev-resume");

  auto c = std::make_unique<mqtt_raw_client>(a.mqtt_port(), mq::protocol_version::v5);
  auto ack = c->connect(id, false, 600);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->reason_code, mq::reason_code::success);
  EXPECT_FALSE(ack->session_present);
  std::set<std::string> acknowledged;
  for (int i = 1; i <= 20; ++i) {
    auto pa = c->publish_qos1("dev/t", "m" + std::to_string(i), static_cast<std::uint16_t>(i));
    ASSERT_TRUE(pa) << "no PUBACK for message " << i;
    EXPECT_EQ(pa->reason_code, mq::reason_code::success);
    acknowledged.insert("m" + std::to_string(i));
  }
  // Five more in flight, then the node dies without warning.
  for (int i = 21; i <= 25; ++i) {
    mq::publish p;
    p.topic = "dev/t";
    p.payload = "m" + std::to_string(i);
    p.qos = mq::qos::at_least_once;
    p.packet_id = static_cast<std::uint16_t>(i);
    c->send(p);
  }
  ASSERT_EQ(a.process().stop(SIGKILL, 10s), 128 + SIGKILL);
  std::set<int> unacked = {21, 22, 23, 24, 25};
  while (auto p = c->receive(2s)) {
    if (auto* pa = std::get_if<mq::puback>(&*p)) {
      acknowledged.insert("m" + std::to_string(pa->packet_id));
      unacked.erase(pa->packet_id);
    }
  }
  c.reset();

  // The device reconnects to B: the session is there, and it re-sends what
  // it did not see acknowledged, with DUP set.
  mqtt_raw_client c2(b.mqtt_port(), mq::protocol_version::v5);
  auto ack2 = c2.connect(id, false, 600);
  ASSERT_TRUE(ack2);
  EXPECT_EQ(ack2->reason_code, mq::reason_code::success);
  EXPECT_TRUE(ack2->session_present) << "the session written before CONNACK on node A must survive A's death";
  for (int i : unacked) {
    auto pa = c2.publish_qos1("dev/t", "m" + std::to_string(i), static_cast<std::uint16_t>(i), true);
    ASSERT_TRUE(pa) << "no PUBACK from node B for re-sent message " << i;
    EXPECT_EQ(pa->reason_code, mq::reason_code::success);
    acknowledged.insert("m" + std::to_string(i));
  }
  auto records = read_client(topic.name, id, acknowledged.size());
  std::set<std::string> in_kafka;
  int dup_from_b = 0;
  for (const auto& r : records) {
    in_kafka.insert(r.value);
    if (r.header("ce_mqttdup") == "true") {
      EXPECT_EQ(r.header("ce_node"), id_b);
      ++dup_from_b;
    }
  }
  for (const auto& m : acknowledged) EXPECT_TRUE(in_kafka.count(m)) << m << " was acknowledged but is not in Kafka";
  EXPECT_EQ(dup_from_b, static_cast<int>(unacked.size()));
  // Records written by B carry B's node id and a newer session epoch.
  std::string epoch_a, epoch_b;
  for (const auto& r : records) (r.header("ce_mqttdup") == "true" ? epoch_b : epoch_a) = r.header("ce_sessionepoch");
  if (!unacked.empty()) {
    EXPECT_GT(std::stoull(epoch_b), std::stoull(epoch_a));
  }
}

TEST(MqttSessions, TakeoverAcrossNodesDisconnectsTheOldConnectionWith0x8E) {
  scoped_topic topic("it.sessions.takeover");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  wharf_node b(session_node(unique_name("node-b"), topic.name));
  ASSERT_TRUE(ready(a) && ready(b));
  const std::string id = unique_name("dev-takeover");
  mqtt_raw_client old_conn(a.mqtt_port(), mq::protocol_version::v5);
  ASSERT_TRUE(old_conn.connect(id, false, 600));
  mqtt_raw_client new_conn(b.mqtt_port(), mq::protocol_version::v5);
  auto ack = new_conn.connect(id, false, 600);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->reason_code, mq::reason_code::success);
  EXPECT_TRUE(ack->session_present);
  auto p = old_conn.receive(15s);
  auto* d = as<mq::disconnect>(p);
  ASSERT_NE(d, nullptr) << "the old connection got no DISCONNECT";
  EXPECT_EQ(d->reason_code, mq::reason_code::session_taken_over);
  EXPECT_FALSE(old_conn.receive(5s));
  EXPECT_TRUE(old_conn.closed());
  // The new owner keeps publishing.
  auto pa = new_conn.publish_qos1("dev/t", "after-takeover", 1);
  ASSERT_TRUE(pa);
  EXPECT_EQ(pa->reason_code, mq::reason_code::success);
}

TEST(MqttSessions, TakeoverOnOneNodeClosesThe311Connection) {
  scoped_topic topic("it.sessions.takeover311");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  ASSERT_TRUE(ready(a));
  const std::string id = unique_name("dev-311");
  mqtt_raw_client first(a.mqtt_port(), mq::protocol_version::v311);
  ASSERT_TRUE(first.connect(id, false));
  mqtt_raw_client second(a.mqtt_port(), mq::protocol_version::v311);
  auto ack = second.connect(id, false);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->reason_code, mq::reason_code::success);
  EXPECT_TRUE(ack->session_present);
  EXPECT_FALSE(first.receive(15s));
  EXPECT_TRUE(first.closed()) << "3.1.1 has no DISCONNECT from the server: the old connection is closed";
}

TEST(MqttSessions, ConcurrentConnectsOfOneClientIdEndWithExactlyOneOwner) {
  scoped_topic topic("it.sessions.race");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  wharf_node b(session_node(unique_name("node-b"), topic.name));
  ASSERT_TRUE(ready(a) && ready(b));
  for (int round = 0; round < 5; ++round) {
    const std::string id = unique_name("dev-race");
    mqtt_raw_client ca(a.mqtt_port(), mq::protocol_version::v5);
    mqtt_raw_client cb(b.mqtt_port(), mq::protocol_version::v5);
    auto fa = std::async(std::launch::async, [&] { return ca.connect(id, false, 600); });
    auto fb = std::async(std::launch::async, [&] { return cb.connect(id, false, 600); });
    auto ra = fa.get();
    auto rb = fb.get();
    ASSERT_TRUE(ra && rb);
    // Give the takeover notice time to arrive, then see who is still there.
    std::this_thread::sleep_for(3s);
    auto alive = [](mqtt_raw_client& c) {
      if (c.closed()) return false;
      c.send(mq::pingreq{});
      for (;;) {
        auto p = c.receive(5s);
        if (!p) return false;
        if (std::holds_alternative<mq::pingresp>(*p)) return true;
        if (std::holds_alternative<mq::disconnect>(*p)) return false;
      }
    };
    bool a_alive = ra->reason_code == mq::reason_code::success && alive(ca);
    bool b_alive = rb->reason_code == mq::reason_code::success && alive(cb);
    EXPECT_NE(a_alive, b_alive) << "round " << round << ": exactly one connection must own the session";
  }
}

TEST(MqttSessions, Qos2PubrelSentToAnotherNodeCompletesAndKafkaHoldsTheMessageOnce) {
  scoped_topic topic("it.sessions.qos2");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  wharf_node b(session_node(unique_name("node-b"), topic.name));
  ASSERT_TRUE(ready(a) && ready(b));
  const std::string id = unique_name("dev-qos2");
  const std::string payload = unique_name("exactly-once");
  {
    mqtt_raw_client c(a.mqtt_port(), mq::protocol_version::v5);
    ASSERT_TRUE(c.connect(id, false, 600));
    mq::publish p;
    p.topic = "dev/q2";
    p.payload = payload;
    p.qos = mq::qos::exactly_once;
    p.packet_id = 7;
    c.send(p);
    auto got = c.receive(20s);
    auto* rec = as<mq::pubrec>(got);
    ASSERT_NE(rec, nullptr) << "no PUBREC from node A";
    EXPECT_EQ(rec->packet_id, 7);
    EXPECT_EQ(rec->reason_code, mq::reason_code::success);
    ASSERT_EQ(a.process().stop(SIGKILL, 10s), 128 + SIGKILL);
  }
  mqtt_raw_client c(b.mqtt_port(), mq::protocol_version::v5);
  auto ack = c.connect(id, false, 600);
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->session_present);
  // A device that missed the PUBREC would re-send the PUBLISH with DUP: it
  // must be acknowledged without being stored again.
  mq::publish again;
  again.topic = "dev/q2";
  again.payload = payload;
  again.qos = mq::qos::exactly_once;
  again.packet_id = 7;
  again.dup = true;
  c.send(again);
  auto rec = c.receive(20s);
  ASSERT_NE(as<mq::pubrec>(rec), nullptr) << "no PUBREC from node B for the re-sent PUBLISH";
  mq::pubrel rel;
  rel.packet_id = 7;
  c.send(rel);
  auto comp = c.receive(20s);
  auto* pc = as<mq::pubcomp>(comp);
  ASSERT_NE(pc, nullptr) << "no PUBCOMP from node B";
  EXPECT_EQ(pc->packet_id, 7);
  EXPECT_EQ(pc->reason_code, mq::reason_code::success) << "node B must know packet id 7 was held";
  auto records = read_client(topic.name, id, 1, 20s);
  int copies = 0;
  for (const auto& r : records) copies += r.value == payload;
  EXPECT_EQ(copies, 1);
}

TEST(MqttSessions, PublishingCostsNoRedisCommands) {
  scoped_topic topic("it.sessions.redis-free");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  ASSERT_TRUE(ready(a));
  mqtt_raw_client c(a.mqtt_port(), mq::protocol_version::v5);
  ASSERT_TRUE(c.connect(unique_name("dev-hot"), false, 600));
  ASSERT_TRUE(c.publish_qos1("dev/hot", "warm-up", 1));
  // This node's connections to the Redis primary, by local port.
  const std::string primary = redis_primary_port();
  std::string ss;
  run_command("ss -tnpH state established '( dport = :" + primary + " )'", &ss);
  std::set<std::string> ours;
  std::istringstream lines(ss);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("pid=" + std::to_string(a.process().pid()) + ",") == std::string::npos) continue;
    std::istringstream f(line);
    std::string local;
    f >> local >> local >> local;  // Recv-Q Send-Q Local:Port
    ours.insert(local.substr(local.rfind(':') + 1));
  }
  ASSERT_FALSE(ours.empty()) << "found no Redis connection of the node in:\n" << ss;
  // Every command the node sends while 300 QoS 1 messages go through.
  const std::string monitor_file = make_temp_dir("wharf-monitor") + "/monitor.txt";
  run_command("(timeout 8 redis-cli -p " + primary + " MONITOR > " + monitor_file + " 2>&1 &)");
  std::this_thread::sleep_for(500ms);
  auto start = clock_type::now();
  for (int i = 0; i < 300; ++i) {
    auto pa = c.publish_qos1("dev/hot", "m" + std::to_string(i), static_cast<std::uint16_t>(2 + i));
    ASSERT_TRUE(pa);
    EXPECT_EQ(pa->reason_code, mq::reason_code::success);
  }
  auto burst = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
  std::this_thread::sleep_until(start + 8s);
  std::ifstream in(monitor_file);
  int node_commands = 0, total = 0;
  std::map<std::string, int> by_command;
  for (std::string line; std::getline(in, line);) {
    ++total;
    for (const auto& port : ours)
      if (line.find(":" + port + "]") != std::string::npos) {
        ++node_commands;
        auto q = line.find('"');
        by_command[line.substr(q, line.find('"', q + 1) - q + 1)]++;
      }
  }
  ASSERT_GT(total, 0) << "MONITOR recorded nothing";
  std::string summary;
  for (const auto& [cmd, n] : by_command) summary += cmd + "=" + std::to_string(n) + " ";
  // Heartbeats and will sweeps run every 2 s; one command per publish would
  // add 300.
  EXPECT_LT(node_commands, 40) << "the node sent " << node_commands << " Redis commands in 8 s around a "
                               << burst.count() << " ms burst of 300 publishes: " << summary;
}

TEST(MqttSessions, WillPublishedFromRedisByAnotherNodeCarriesItsProperties) {
  scoped_topic topic("it.sessions.will-props");
  const std::string id_b = unique_name("node-b");
  wharf_node a(session_node(unique_name("node-a"), topic.name));
  wharf_node b(session_node(id_b, topic.name));
  ASSERT_TRUE(ready(a) && ready(b));
  const std::string id = unique_name("dev-will");
  {
    mqtt_raw_client c(a.mqtt_port(), mq::protocol_version::v5);
    mq::connect p;
    p.clean_start = true;
    p.keep_alive = 60;
    p.client_id = id;
    p.props.session_expiry_interval = 5;  // the will is due when the session expires
    mq::will_message w;
    w.topic = "dev/will";
    w.payload = R"({"state":"gone"})";
    w.qos = mq::qos::at_least_once;
    w.props.will_delay_interval = 600;
    w.props.content_type = "application/json";
    w.props.payload_format_indicator = 1;
    w.props.response_topic = "dev/replies";
    w.props.user_properties = {{"site", "north"}, {"ce_id", "forged"}};
    p.will = w;
    c.send(p);
    auto got = c.receive(15s);
    auto ack = as<mq::connack>(got);
    ASSERT_NE(ack, nullptr);
    ASSERT_EQ(ack->reason_code, mq::reason_code::success);
  }  // the connection is lost without DISCONNECT: the will waits in Redis
  // Node A recorded the disconnect (the will is scheduled), then dies: node
  // B publishes the will from what Redis holds.
  bool scheduled = false;
  for (int i = 0; i < 100 && !scheduled; ++i) {
    std::string out;
    run_command("redis-cli -p " + redis_primary_port() + " ZSCORE wharf:wills '" + id + "' 2>/dev/null", &out);
    scheduled = !out.empty() && std::isdigit(static_cast<unsigned char>(out[0]));  // a score, not nil
    if (!scheduled) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(scheduled) << "node A never scheduled the will in Redis";
  ASSERT_EQ(a.process().stop(SIGKILL, 10s), 128 + SIGKILL);
  auto records = read_client(topic.name, id, 1, 40s);
  ASSERT_EQ(records.size(), 1u) << "the will was not published exactly once; node B's metrics:\n"
                                << http_get(b.admin_port(), "/metrics").body;
  const auto& r = records[0];
  EXPECT_EQ(r.value, R"({"state":"gone"})");
  EXPECT_EQ(r.header("ce_mqttwill"), "true");
  EXPECT_EQ(r.header("ce_node"), id_b);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("ce_mqttpayloadformat"), "1");
  EXPECT_EQ(r.header("ce_mqttresponsetopic"), "dev/replies");
  EXPECT_EQ(r.header("site"), "north");
  EXPECT_EQ(r.header_count("ce_id"), 1) << "a user property may not forge a ce_ header";
}
