// Who may connect and publish, against the real wharf binary: password file
// made with `wharf passwd`, JWT (HS256, RS256) in the password field with
// its topics claim, ACL with %c, TLS with a test CA and the client
// certificate's CN as username. What is allowed is read back from Kafka.
#include "tests/integration/02_mqtt_support.h"

#include <jwt.h>

#include <ctime>
#include <fstream>
#include <sstream>

using namespace wharf::test;
using namespace wharf::test::mqtt_it;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A signed JWT made with libjwt; `grants_json` is merged into the claims.
std::string make_jwt(jwt_alg_t alg, const std::string& key, const std::string& subject, long expires_at,
                     const std::string& grants_json = "") {
  jwt_t* j = nullptr;
  EXPECT_EQ(jwt_new(&j), 0);
  jwt_add_grant(j, "sub", subject.c_str());
  jwt_add_grant_int(j, "iat", static_cast<long>(std::time(nullptr)));
  jwt_add_grant_int(j, "exp", expires_at);
  if (!grants_json.empty()) {
    EXPECT_EQ(jwt_add_grants_json(j, grants_json.c_str()), 0);
  }
  EXPECT_EQ(jwt_set_alg(j, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())), 0);
  char* s = jwt_encode_str(j);
  std::string out = s ? s : "";
  std::free(s);
  jwt_free(j);
  EXPECT_FALSE(out.empty()) << "jwt_encode_str failed";
  return out;
}

long in_seconds(long s) { return static_cast<long>(std::time(nullptr)) + s; }

mqtt::connect_options login(int version, const std::string& user, const std::string& password) {
  return paho_connect_options(version).user_name(user).password(password).finalize();
}

// A node whose default route writes to `topic` keyed by `key`.
wharf_node::options auth_node(const std::string& topic, const std::string& mqtt_yaml, const std::string& key = "%c") {
  return node_options(mqtt_yaml + "  default_route: {kafka_topic: " + topic + ", key: \"" + key + "\"}\n");
}

class MqttAuth : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("wharf-mqtt-auth"); }
  void TearDown() override { run_command("rm -rf '" + dir_ + "'"); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

constexpr int v311 = MQTTVERSION_3_1_1;
constexpr int v5 = MQTTVERSION_5;

}  // namespace

TEST_F(MqttAuth, PasswordFileAcceptsRightPasswordRefusesWrongOneAndAnonymous) {
  scoped_topic topic("mqtt-it-passwd");
  std::string out;
  ASSERT_EQ(run_command("echo 'n0t-s3cret' | " + wharf_binary() + " passwd " + path("passwd") + " alice 2>&1", &out), 0)
      << out;
  ASSERT_EQ(run_command("echo 'other' | " + wharf_binary() + " passwd " + path("passwd") + " bob 2>&1", &out), 0)
      << out;
  EXPECT_EQ(slurp(path("passwd")).find("n0t-s3cret"), std::string::npos) << "the file holds hashes only";
  wharf_node node(auth_node(topic.name, "  allow_anonymous: false\n  password_file: " + path("passwd") + "\n"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  for (int version : {v311, v5}) {
    SCOPED_TRACE(version == v5 ? "MQTT 5.0" : "MQTT 3.1.1");
    auto cid = unique_name("alice");
    auto ok = paho_client(uri(node.mqtt_port()), cid, version);
    ASSERT_EQ(connect_result(*ok, login(version, "alice", "n0t-s3cret")), 0);
    EXPECT_EQ(publish_result(*ok, mqtt::make_message("pw/" + cid, "from alice", 1, false)), 0);
    ok->disconnect()->wait_for(5s);
    auto recs = read_client(topic.name, cid, 1);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].value, "from alice");

    auto wrong = paho_client(uri(node.mqtt_port()), unique_name("mallory"), version);
    EXPECT_EQ(connect_result(*wrong, login(version, "alice", "guess")), version == v5 ? 0x86 : 4);
    auto unknown = paho_client(uri(node.mqtt_port()), unique_name("mallory"), version);
    EXPECT_EQ(connect_result(*unknown, login(version, "nobody", "n0t-s3cret")), version == v5 ? 0x86 : 4);
    auto anonymous = paho_client(uri(node.mqtt_port()), unique_name("anon"), version);
    EXPECT_EQ(connect_result(*anonymous, paho_connect_options(version).finalize()), version == v5 ? 0x87 : 5);
  }
}

TEST_F(MqttAuth, MosquittoPubWithPasswordFile) {
  scoped_topic topic("mqtt-it-passwd-mosq");
  ASSERT_EQ(run_command("echo 'pw-carol' | " + wharf_binary() + " passwd " + path("passwd") + " carol"), 0);
  wharf_node node(auth_node(topic.name, "  allow_anonymous: false\n  password_file: " + path("passwd") + "\n", "%u"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;
  auto cid = unique_name("carol");
  std::string base = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(node.mqtt_port()) + " -q 1 -t pw/x -i " + cid;
  std::string out;
  EXPECT_EQ(run_command(base + " -u carol -P pw-carol -m good 2>&1", &out), 0) << out;
  EXPECT_NE(run_command(base + " -u carol -P wrong -m bad 2>&1", &out), 0) << out;
  EXPECT_NE(run_command(base + " -m anonymous 2>&1", &out), 0) << out;
  auto recs = read_client(topic.name, cid, 1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].value, "good");
  EXPECT_EQ(recs[0].key, "carol") << "%u is the authenticated user";
}

TEST_F(MqttAuth, Hs256JwtIsAcceptedExpiredOrForgedIsRefusedAndTopicsClaimLimitsPublish) {
  scoped_topic topic("mqtt-it-jwt");
  const std::string secret = "a-test-secret-of-enough-length-0123456789";
  std::ofstream(path("secret")) << secret << "\n";
  wharf_node node(auth_node(topic.name,
                            "  allow_anonymous: false\n"
                            "  jwt: {enabled: true, algorithm: HS256, secret_file: " +
                                path("secret") + "}\n",
                            "%u"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  auto cid = unique_name("jwt");
  auto token = make_jwt(JWT_ALG_HS256, secret, "device-17", in_seconds(300), R"({"topics": ["jwt/ok/#"]})");
  auto c = paho_client(uri(node.mqtt_port()), cid, v5);
  ASSERT_EQ(connect_result(*c, login(v5, "ignored", token)), 0);
  EXPECT_EQ(publish_result(*c, mqtt::make_message("jwt/ok/1", "allowed", 1, false)), 0);
  EXPECT_EQ(publish_result(*c, mqtt::make_message("jwt/other", "outside the claim", 1, false)), 0x87);
  EXPECT_TRUE(c->is_connected());
  c->disconnect()->wait_for(5s);
  auto recs = read_client(topic.name, cid, 1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].value, "allowed");
  EXPECT_EQ(recs[0].key, "device-17") << "the sub claim is the username";

  auto expired = make_jwt(JWT_ALG_HS256, secret, "device-17", in_seconds(-60));
  for (int version : {v311, v5}) {
    auto e = paho_client(uri(node.mqtt_port()), unique_name("jwt-expired"), version);
    EXPECT_EQ(connect_result(*e, login(version, "device-17", expired)), version == v5 ? 0x86 : 4);
  }
  auto forged = make_jwt(JWT_ALG_HS256, "another-secret-of-enough-length-987654321", "device-17", in_seconds(300));
  auto f = paho_client(uri(node.mqtt_port()), unique_name("jwt-forged"), v5);
  EXPECT_EQ(connect_result(*f, login(v5, "device-17", forged)), 0x86);
}

TEST_F(MqttAuth, Rs256JwtSignedWithTheKeyIsAcceptedAndWithAnotherKeyRefused) {
  scoped_topic topic("mqtt-it-rs256");
  std::string out;
  ASSERT_EQ(run_command("cd " + dir_ +
                            " && openssl genrsa -out key.pem 2048 && openssl rsa -in key.pem -pubout -out pub.pem"
                            " && openssl genrsa -out other.pem 2048 2>&1",
                        &out),
            0)
      << out;
  wharf_node node(auth_node(topic.name,
                            "  allow_anonymous: false\n"
                            "  jwt: {enabled: true, algorithm: RS256, public_key_file: " +
                                path("pub.pem") + "}\n",
                            "%u"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  auto cid = unique_name("rs256");
  auto c = paho_client(uri(node.mqtt_port()), cid, v311);
  ASSERT_EQ(
      connect_result(*c, login(v311, "x", make_jwt(JWT_ALG_RS256, slurp(path("key.pem")), "meter-9", in_seconds(300)))),
      0);
  EXPECT_EQ(publish_result(*c, mqtt::make_message("meters/9", "kWh", 1, false)), 0);
  c->disconnect()->wait_for(5s);
  auto recs = read_client(topic.name, cid, 1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].key, "meter-9");

  auto other = paho_client(uri(node.mqtt_port()), unique_name("rs256-other"), v5);
  EXPECT_EQ(connect_result(
                *other, login(v5, "x", make_jwt(JWT_ALG_RS256, slurp(path("other.pem")), "meter-9", in_seconds(300)))),
            0x86);
}

TEST_F(MqttAuth, AclWithClientIdAllowsOwnTopicAndDeniesOthers) {
  scoped_topic topic("mqtt-it-acl");
  wharf_node node(auth_node(topic.name,
                            "  allow_anonymous: true\n"
                            "  acl:\n"
                            "    - {user: \"*\", action: publish, filter: \"acl/%c/#\", allow: true}\n"
                            "    - {user: \"*\", action: all, filter: \"#\", allow: false}\n"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  // 5.0: the denied PUBLISH gets PUBACK 0x87 and the connection stays.
  auto cid5 = unique_name("acl5");
  auto c5 = paho_client(uri(node.mqtt_port()), cid5, v5);
  ASSERT_EQ(connect_result(*c5, paho_connect_options(v5).finalize()), 0);
  EXPECT_EQ(publish_result(*c5, mqtt::make_message("acl/" + cid5 + "/temp", "mine", 1, false)), 0);
  EXPECT_EQ(publish_result(*c5, mqtt::make_message("acl/someone-else/temp", "theirs", 1, false)), 0x87);
  EXPECT_TRUE(c5->is_connected());
  c5->disconnect()->wait_for(5s);

  // 3.1.1 has no negative PUBACK: the denied PUBLISH closes the connection.
  auto cid3 = unique_name("acl3");
  auto c3 = paho_client(uri(node.mqtt_port()), cid3, v311);
  ASSERT_EQ(connect_result(*c3, paho_connect_options(v311).finalize()), 0);
  EXPECT_EQ(publish_result(*c3, mqtt::make_message("acl/" + cid3 + "/temp", "mine too", 1, false)), 0);
  EXPECT_EQ(publish_result(*c3, mqtt::make_message("acl/someone-else/temp", "theirs too", 1, false), 5s), -1);
  for (int i = 0; i < 100 && c3->is_connected(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(c3->is_connected());

  auto mine5 = read_client(topic.name, cid5, 1);
  ASSERT_EQ(mine5.size(), 1u);
  EXPECT_EQ(mine5[0].value, "mine");
  auto mine3 = read_client(topic.name, cid3, 1);
  ASSERT_EQ(mine3.size(), 1u);
  EXPECT_EQ(mine3[0].value, "mine too");
}

TEST_F(MqttAuth, TlsWithClientCertificateUsesItsCommonNameAsUsername) {
  scoped_topic topic("mqtt-it-tls");
  std::string out;
  const std::string device = unique_name("device-cn");
  // A test CA, a server certificate for 127.0.0.1 and localhost, a device
  // certificate, and a certificate from a CA the node does not trust.
  std::string script =
      "set -e; cd " + dir_ +
      "\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=wharf-test-ca\n"
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost\n"
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext\n"
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile "
      "san.ext\n"
      "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=" +
      device +
      "\n"
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.crt -days 2 -subj /CN=rogue\n";
  ASSERT_EQ(run_command("bash -c '" + script + "' 2>&1", &out), 0) << out;

  auto tls_port = free_port();
  wharf_node node(auth_node(topic.name,
                            "  allow_anonymous: false\n"
                            "  tls:\n"
                            "    listen: 127.0.0.1:" +
                                std::to_string(tls_port) + "\n    cert_file: " + path("server.crt") +
                                "\n    key_file: " + path("server.key") + "\n    ca_file: " + path("ca.crt") +
                                "\n    require_client_cert: true\n    cn_as_username: true\n",
                            "%u"));
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;

  // mosquitto_pub, verifying the server against the test CA.
  auto mosq_cid = unique_name("tls-mosq");
  std::string base = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(tls_port) + " --cafile " + path("ca.crt") +
                     " -q 1 -t tls/x -i " + mosq_cid;
  EXPECT_EQ(
      run_command(base + " --cert " + path("client.crt") + " --key " + path("client.key") + " -m via-mosquitto 2>&1",
                  &out),
      0)
      << out;
  EXPECT_NE(run_command(base + " -m without-certificate 2>&1", &out), 0) << out;
  EXPECT_NE(run_command(base + " --cert " + path("rogue.crt") + " --key " + path("rogue.key") +
                            " -m untrusted-certificate 2>&1",
                        &out),
            0)
      << out;

  // Paho 5.0 over TLS with the device certificate.
  auto paho_cid = unique_name("tls-paho");
  auto c = paho_client(uri(tls_port, "ssl"), paho_cid, v5);
  auto ssl = mqtt::ssl_options_builder()
                 .trust_store(path("ca.crt"))
                 .key_store(path("client.crt"))
                 .private_key(path("client.key"))
                 .enable_server_cert_auth(true)
                 .finalize();
  ASSERT_EQ(connect_result(*c, paho_connect_options(v5).ssl(ssl).finalize()), 0);
  EXPECT_EQ(publish_result(*c, mqtt::make_message("tls/y", "via-paho", 1, false)), 0);
  c->disconnect()->wait_for(5s);

  auto via_mosq = read_client(topic.name, mosq_cid, 1);
  ASSERT_EQ(via_mosq.size(), 1u);
  EXPECT_EQ(via_mosq[0].value, "via-mosquitto");
  EXPECT_EQ(via_mosq[0].key, device) << "the certificate's CN is the username";
  auto via_paho = read_client(topic.name, paho_cid, 1);
  ASSERT_EQ(via_paho.size(), 1u);
  EXPECT_EQ(via_paho[0].value, "via-paho");
  EXPECT_EQ(via_paho[0].key, device);
}
