// MQTT PUBLISH end to end: real clients (Paho C++ 3.1.1 and 5.0,
// mosquitto_pub) -> the real wharf binary -> the stack's Kafka, read back
// with librdkafka: payload bytes, key, CloudEvents headers, user properties,
// routes and a refused unmatched topic.
#include "tests/integration/02_mqtt_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>

#include <fstream>
#include <regex>
#include <set>

using namespace wharf::test;
using namespace wharf::test::mqtt_it;

namespace {

// Payload with zero bytes and every byte value, different per message.
std::string binary_payload(int n) {
  std::string s = "bin-" + std::to_string(n);
  s += std::string("\0\0\x01\xff\0", 5);
  for (int i = 0; i < 256; ++i) s += static_cast<char>((i + n) & 0xff);
  return s;
}

// The dedup key Wharf promises: hex of the first 16 bytes of SHA-256 over
// (u32 length of client id, client id, u16 packet id, payload).
std::string expected_dedup_key(const std::string& client_id, unsigned packet_id, const std::string& payload) {
  std::string in;
  auto n = static_cast<std::uint32_t>(client_id.size());
  in += static_cast<char>(n >> 24);
  in += static_cast<char>(n >> 16);
  in += static_cast<char>(n >> 8);
  in += static_cast<char>(n);
  in += client_id;
  in += static_cast<char>(packet_id >> 8);
  in += static_cast<char>(packet_id & 0xff);
  in += payload;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

const kafka_record* find_value(const std::vector<kafka_record>& recs, const std::string& value) {
  for (const auto& r : recs)
    if (r.value == value) return &r;
  return nullptr;
}

// Every header Wharf promises on an MQTT record.
void expect_cloudevents_headers(const kafka_record& r, const std::string& client_id, const std::string& topic, int qos,
                                const std::string& node_id) {
  SCOPED_TRACE("record at offset " + std::to_string(r.offset) + " of topic " + topic);
  EXPECT_EQ(r.header("ce_specversion"), "1.0");
  EXPECT_NE(r.header("ce_id"), "<absent>");
  EXPECT_FALSE(r.header("ce_id").empty());
  EXPECT_EQ(r.header("ce_source"), "mqtt/" + client_id);
  EXPECT_EQ(r.header("ce_type"), topic);
  EXPECT_TRUE(std::regex_match(r.header("ce_time"), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << r.header("ce_time");
  EXPECT_EQ(r.header("ce_clientid"), client_id);
  EXPECT_EQ(r.header("ce_mqttdup"), "false");
  EXPECT_EQ(r.header("ce_mqttqos"), std::to_string(qos));
  EXPECT_TRUE(std::regex_match(r.header("ce_sessionepoch"), std::regex(R"(\d+)"))) << r.header("ce_sessionepoch");
  EXPECT_EQ(r.header("ce_node"), node_id);
  auto pid = r.header("ce_packetid");
  ASSERT_TRUE(std::regex_match(pid, std::regex(R"(\d+)"))) << pid;
  if (qos == 0)
    EXPECT_EQ(pid, "0");
  else
    EXPECT_NE(pid, "0");
  EXPECT_EQ(r.header("ce_dedupkey"), expected_dedup_key(client_id, static_cast<unsigned>(std::stoul(pid)), r.value));
  for (const char* once : {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_clientid", "ce_packetid",
                           "ce_mqttdup", "ce_mqttqos", "ce_sessionepoch", "ce_node", "ce_dedupkey"})
    EXPECT_EQ(r.header_count(once), 1) << once;
}

// Raw MQTT 3.1.1 over a socket, for what the client libraries do not let a
// test choose (the DUP flag and the packet id).
class raw_mqtt311 {
 public:
  explicit raw_mqtt311(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~raw_mqtt311() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Reads exactly n bytes (or fewer on timeout / close).
  std::string read(std::size_t n) {
    std::string out;
    while (out.size() < n) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20000) <= 0) break;
      char buf[256];
      auto got = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) break;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
  }
  static std::string str(const std::string& s) {
    return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xff)} + s;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class MqttPublish : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    main_topic = new scoped_topic("mqtt-it-publish");
    routed_topic = new scoped_topic("mqtt-it-routed");
    auto o = node_options(
        "  allow_anonymous: true\n"
        "  routes:\n"
        "    - {filter: \"routed/#\", kafka_topic: " +
        routed_topic->name +
        ", key: \"%c-%t\"}\n"
        "  default_route: {kafka_topic: " +
        main_topic->name + ", key: \"%c\"}\n");
    node_id = o.node_id;
    node = new wharf_node(o);
    std::string why;
    ready = node->wait_ready(30s, &why);
    if (!ready) ADD_FAILURE() << why;
  }
  static void TearDownTestSuite() {
    delete node;
    delete routed_topic;
    delete main_topic;
  }
  void SetUp() override { ASSERT_TRUE(ready) << "the node did not start"; }

  static inline scoped_topic* main_topic = nullptr;
  static inline scoped_topic* routed_topic = nullptr;
  static inline wharf_node* node = nullptr;
  static inline std::string node_id;
  static inline bool ready = false;
};

// Publishes one message per QoS with a Paho client of `version`; returns
// the client id.
std::string publish_every_qos_with_paho(unsigned short port, int version, const std::string& prefix) {
  auto cid = unique_name(prefix);
  auto c = paho_client(uri(port), cid, version);
  EXPECT_EQ(connect_result(*c, paho_connect_options(version).finalize()), 0);
  for (int q = 0; q <= 2; ++q) {
    auto msg = mqtt::make_message("it/" + cid + "/qos" + std::to_string(q), binary_payload(q), q, false);
    auto tok = c->publish(msg);
    EXPECT_TRUE(tok->wait_for(20s)) << "QoS " << q;
    EXPECT_EQ(tok->get_reason_code(), 0) << "QoS " << q;
  }
  c->disconnect()->wait_for(5s);
  return cid;
}

}  // namespace

TEST_F(MqttPublish, Paho311EveryQosIsStoredWithExactBytesClientIdKeyAndHeaders) {
  auto cid = publish_every_qos_with_paho(node->mqtt_port(), MQTTVERSION_3_1_1, "paho311");
  auto recs = read_client(main_topic->name, cid, 3);
  ASSERT_EQ(recs.size(), 3u);
  for (int q = 0; q <= 2; ++q) {
    SCOPED_TRACE("QoS " + std::to_string(q));
    auto* r = find_value(recs, binary_payload(q));
    ASSERT_NE(r, nullptr) << "payload of QoS " << q << " not found byte for byte";
    EXPECT_EQ(r->key, cid);
    expect_cloudevents_headers(*r, cid, "it/" + cid + "/qos" + std::to_string(q), q, node_id);
    EXPECT_EQ(r->header("content-type"), "<absent>");
  }
}

TEST_F(MqttPublish, Paho5EveryQosIsStoredWithExactBytesClientIdKeyAndHeaders) {
  auto cid = publish_every_qos_with_paho(node->mqtt_port(), MQTTVERSION_5, "paho5");
  auto recs = read_client(main_topic->name, cid, 3);
  ASSERT_EQ(recs.size(), 3u);
  for (int q = 0; q <= 2; ++q) {
    SCOPED_TRACE("QoS " + std::to_string(q));
    auto* r = find_value(recs, binary_payload(q));
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->key, cid);
    expect_cloudevents_headers(*r, cid, "it/" + cid + "/qos" + std::to_string(q), q, node_id);
  }
}

TEST_F(MqttPublish, Paho5ContentTypeAndUserPropertiesBecomeHeadersInOrderWithoutReservedNames) {
  auto cid = unique_name("paho5props");
  auto c = paho_client(uri(node->mqtt_port()), cid, MQTTVERSION_5);
  ASSERT_EQ(connect_result(*c, paho_connect_options(MQTTVERSION_5).finalize()), 0);
  mqtt::properties props;
  props.add({mqtt::property::CONTENT_TYPE, "application/cbor"});
  props.add({mqtt::property::USER_PROPERTY, "site", "north"});
  props.add({mqtt::property::USER_PROPERTY, "ce_id", "forged"});
  props.add({mqtt::property::USER_PROPERTY, "line", "1"});
  props.add({mqtt::property::USER_PROPERTY, "ce_node", "forged"});
  props.add({mqtt::property::USER_PROPERTY, "line", "2"});
  auto msg =
      mqtt::message_ptr_builder().topic("props/" + cid).payload(binary_payload(7)).qos(1).properties(props).finalize();
  EXPECT_EQ(publish_result(*c, msg), 0);
  c->disconnect()->wait_for(5s);

  auto recs = read_client(main_topic->name, cid, 1);
  ASSERT_EQ(recs.size(), 1u);
  const auto& r = recs[0];
  EXPECT_EQ(r.value, binary_payload(7));
  EXPECT_EQ(r.header("content-type"), "application/cbor");
  expect_cloudevents_headers(r, cid, "props/" + cid, 1, node_id);
  EXPECT_NE(r.header("ce_id"), "forged");
  EXPECT_EQ(r.header("ce_node"), node_id);
  // The user properties, in the order sent, reserved names dropped.
  std::vector<std::pair<std::string, std::string>> user;
  for (const auto& h : r.headers)
    if (h.first == "site" || h.first == "line") user.push_back(h);
  std::vector<std::pair<std::string, std::string>> want = {{"site", "north"}, {"line", "1"}, {"line", "2"}};
  EXPECT_EQ(user, want);
}

TEST_F(MqttPublish, MosquittoPubEveryQosAndVersionIsStoredByteForByte) {
  auto dir = make_temp_dir("wharf-mqtt-pub");
  for (const std::string version : {"mqttv311", "mqttv5"}) {
    auto cid = unique_name("mosq-" + version);
    for (int q = 0; q <= 2; ++q) {
      std::string file = dir + "/payload" + std::to_string(q);
      std::ofstream(file, std::ios::binary) << binary_payload(10 + q);
      std::string extra = version == "mqttv5" ? " -D publish user-property via mosquitto -D publish content-type "
                                                "application/octet-stream"
                                              : "";
      std::string out;
      int rc = run_command("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(node->mqtt_port()) + " -V " + version +
                               " -i " + cid + " -q " + std::to_string(q) + " -t mosq/" + cid + "/" + std::to_string(q) +
                               " -f " + file + extra + " 2>&1",
                           &out);
      EXPECT_EQ(rc, 0) << version << " QoS " << q << ": " << out;
    }
    auto recs = read_client(main_topic->name, cid, 3);
    ASSERT_EQ(recs.size(), 3u) << version;
    for (int q = 0; q <= 2; ++q) {
      SCOPED_TRACE(version + " QoS " + std::to_string(q));
      auto* r = find_value(recs, binary_payload(10 + q));
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->key, cid);
      expect_cloudevents_headers(*r, cid, "mosq/" + cid + "/" + std::to_string(q), q, node_id);
      if (version == "mqttv5") {
        EXPECT_EQ(r->header("via"), "mosquitto");
        EXPECT_EQ(r->header("content-type"), "application/octet-stream");
      }
    }
  }
  run_command("rm -rf " + dir);
}

TEST_F(MqttPublish, EveryRecordGetsItsOwnCloudEventsId) {
  auto cid = unique_name("ids");
  auto c = paho_client(uri(node->mqtt_port()), cid, MQTTVERSION_5);
  ASSERT_EQ(connect_result(*c, paho_connect_options(MQTTVERSION_5).finalize()), 0);
  const int n = 50;
  for (int i = 0; i < n; ++i)  // the same payload every time: ids must still differ
    EXPECT_EQ(publish_result(*c, mqtt::make_message("ids/" + cid, "same", 1, false)), 0);
  c->disconnect()->wait_for(5s);
  auto recs = read_client(main_topic->name, cid, n);
  ASSERT_EQ(recs.size(), static_cast<std::size_t>(n));
  std::set<std::string> ids;
  for (const auto& r : recs) ids.insert(r.header("ce_id"));
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
}

TEST_F(MqttPublish, MatchingRouteChoosesKafkaTopicAndKeyTemplate) {
  auto cid = unique_name("routed");
  auto c = paho_client(uri(node->mqtt_port()), cid, MQTTVERSION_3_1_1);
  ASSERT_EQ(connect_result(*c, paho_connect_options(MQTTVERSION_3_1_1).finalize()), 0);
  std::string topic = "routed/" + cid + "/temp";
  auto tok = c->publish(mqtt::make_message(topic, "21.5", 1, false));
  ASSERT_TRUE(tok->wait_for(20s));
  c->disconnect()->wait_for(5s);

  auto recs = read_client(routed_topic->name, cid, 1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].value, "21.5");
  EXPECT_EQ(recs[0].key, cid + "-" + topic);
  expect_cloudevents_headers(recs[0], cid, topic, 1, node_id);
  // And not in the default route's topic.
  EXPECT_TRUE(read_client(main_topic->name, cid, 0, 15s).empty());
}

TEST_F(MqttPublish, DupFlagAndPacketIdOfTheWirePacketReachTheHeaders) {
  auto cid = unique_name("raw-dup");
  raw_mqtt311 c(node->mqtt_port());
  ASSERT_TRUE(c.connected());
  // CONNECT: protocol "MQTT" level 4, clean session, keep alive 60, client id.
  std::string connect_body = raw_mqtt311::str("MQTT") + std::string("\x04\x02\x00\x3c", 4) + raw_mqtt311::str(cid);
  c.send(std::string{'\x10', static_cast<char>(connect_body.size())} + connect_body);
  EXPECT_EQ(c.read(4), std::string("\x20\x02\x00\x00", 4)) << "CONNACK accepted";
  // PUBLISH QoS 1 with DUP set (0x3A), packet id 0x1234, then the same
  // message without DUP and packet id 7.
  for (auto [first, pid] : {std::pair{'\x3a', 0x1234}, std::pair{'\x32', 7}}) {
    std::string body = raw_mqtt311::str("raw/" + cid) +
                       std::string{static_cast<char>(pid >> 8), static_cast<char>(pid & 0xff)} + "again";
    c.send(std::string{first, static_cast<char>(body.size())} + body);
    EXPECT_EQ(c.read(4), (std::string{'\x40', '\x02', static_cast<char>(pid >> 8), static_cast<char>(pid & 0xff)}))
        << "PUBACK for packet id " << pid;
  }
  c.send(std::string("\xe0\x00", 2));  // DISCONNECT

  auto recs = read_client(main_topic->name, cid, 2);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].header("ce_mqttdup"), "true");
  EXPECT_EQ(recs[0].header("ce_packetid"), std::to_string(0x1234));
  EXPECT_EQ(recs[0].header("ce_dedupkey"), expected_dedup_key(cid, 0x1234, "again"));
  EXPECT_EQ(recs[1].header("ce_mqttdup"), "false");
  EXPECT_EQ(recs[1].header("ce_packetid"), "7");
  EXPECT_NE(recs[0].header("ce_dedupkey"), recs[1].header("ce_dedupkey"));
  EXPECT_NE(recs[0].header("ce_id"), recs[1].header("ce_id"));
}

TEST(MqttPublishNoDefaultRoute, UnmatchedTopicIsRefusedWith0x90AndMatchedTopicIsStored) {
  scoped_topic topic("mqtt-it-nodefault");
  auto o = node_options(
      "  allow_anonymous: true\n"
      "  routes:\n"
      "    - {filter: \"known/#\", kafka_topic: " +
      topic.name +
      "}\n"
      "  default_route: null\n");
  wharf_node node(o);
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  auto cid = unique_name("nodefault");
  auto c = paho_client(uri(node.mqtt_port()), cid, MQTTVERSION_5);
  ASSERT_EQ(connect_result(*c, paho_connect_options(MQTTVERSION_5).finalize()), 0);
  EXPECT_EQ(publish_result(*c, mqtt::make_message("unknown/" + cid, "lost", 1, false)), 0x90);
  EXPECT_TRUE(c->is_connected()) << "a refused 5.0 PUBLISH does not cost the connection";
  EXPECT_EQ(publish_result(*c, mqtt::make_message("known/" + cid, "kept", 1, false)), 0);
  c->disconnect()->wait_for(5s);

  auto recs = read_client(topic.name, cid, 1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].value, "kept");
  EXPECT_EQ(recs[0].key, cid);
}
