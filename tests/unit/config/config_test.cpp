#include "config/load.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

using namespace wharf::config;
using namespace std::chrono_literals;

namespace {

load_result load(std::string_view yaml, const overrides& flags = {}, char** env = nullptr) {
  return load_string(yaml, flags, env, "test.yaml");
}

// True when some error message contains every given fragment.
bool has_error(const load_result& r, std::initializer_list<std::string_view> fragments) {
  for (const auto& e : r.errors) {
    bool all = true;
    for (auto f : fragments) all = all && e.find(f) != std::string::npos;
    if (all) return true;
  }
  return false;
}

std::string errors_of(const load_result& r) {
  std::string s;
  for (const auto& e : r.errors) s += e + "\n";
  return s;
}

}  // namespace

TEST(ConfigDefaults, EmptyFileGivesValidDefaults) {
  auto r = load("");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg.mqtt.listen, "0.0.0.0:1883");
  EXPECT_EQ(r.cfg.admin.listen, "0.0.0.0:8081");
  EXPECT_FALSE(r.cfg.mqtt.allow_anonymous);
  EXPECT_EQ(r.cfg.kafka.brokers, "");
  EXPECT_FALSE(r.cfg.node.id.empty());
  EXPECT_EQ(r.cfg.local_log.dir, "./data/log");
  ASSERT_TRUE(r.cfg.mqtt.default_route.has_value());
  EXPECT_EQ(r.cfg.mqtt.default_route->kafka_topic, "mqtt.ingest");
}

TEST(ConfigDefaults, WarnsWhenNoMqttAuthenticationIsPossible) {
  auto r = load("");
  ASSERT_TRUE(r.ok());
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("every CONNECT is refused") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(ConfigParse, ReadsNestedKeysDurationsAndSizes) {
  auto r = load(R"(
node: {id: edge-7, data_dir: /tmp/w}
mqtt:
  allow_anonymous: true
  limits: {max_packet_size: 64KiB, connect_timeout: 2s, receive_maximum: 32}
kafka: {brokers: "127.0.0.1:9092,127.0.0.1:9093", linger: 10ms, compression: zstd}
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg.node.id, "edge-7");
  EXPECT_EQ(r.cfg.mqtt.limits.max_packet_size, 65536u);
  EXPECT_EQ(r.cfg.mqtt.limits.connect_timeout, 2000ms);
  EXPECT_EQ(r.cfg.mqtt.limits.receive_maximum, 32);
  EXPECT_EQ(r.cfg.kafka.linger, 10ms);
  EXPECT_EQ(r.cfg.kafka.compression, "zstd");
  EXPECT_EQ(r.cfg.local_log.dir, "/tmp/w/log");
}

TEST(ConfigParse, ReadsRoutesAclTypesAndProperties) {
  auto r = load(R"(
mqtt:
  allow_anonymous: true
  routes:
    - {filter: "sensors/+/temp", kafka_topic: sensors.temp, key: "%c-%t"}
  default_route: null
  acl:
    - {user: "*", action: publish, filter: "devices/%c/#"}
http:
  types:
    - {name: orders, kafka_topic: orders, key: "json:/orderId", mode: async, content_types: [application/json]}
kafka:
  brokers: 127.0.0.1:9092
  properties: {security.protocol: SASL_SSL, sasl.password: "${env:KAFKA_PASSWORD}"}
)");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  ASSERT_EQ(r.cfg.mqtt.routes.size(), 1u);
  EXPECT_EQ(r.cfg.mqtt.routes[0].filter, "sensors/+/temp");
  EXPECT_EQ(r.cfg.mqtt.routes[0].key, "%c-%t");
  EXPECT_FALSE(r.cfg.mqtt.default_route.has_value());
  ASSERT_EQ(r.cfg.mqtt.acl.size(), 1u);
  EXPECT_EQ(r.cfg.mqtt.acl[0].action, "publish");
  ASSERT_EQ(r.cfg.http.types.size(), 1u);
  EXPECT_EQ(r.cfg.http.types[0].mode, "async");
  EXPECT_EQ(r.cfg.http.types[0].content_types, std::vector<std::string>{"application/json"});
  EXPECT_EQ(r.cfg.kafka.properties.at("sasl.password"), "${env:KAFKA_PASSWORD}");
}

TEST(ConfigErrors, RejectsUnknownTopLevelKeyNamingValidOnes) {
  auto r = load("mqqt: {listen: 1}\n");
  EXPECT_TRUE(has_error(r, {"mqqt", "unknown key", "mqtt"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsUnknownNestedKey) {
  auto r = load("mqtt:\n  limits:\n    max_conections: 5\n");
  EXPECT_TRUE(has_error(r, {"mqtt.limits.max_conections", "unknown key", "max_connections"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsUnknownKeyInsideListItem) {
  auto r = load("mqtt:\n  routes:\n    - {filter: a, kafka_topic: b, topic: c}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.routes[0].topic", "unknown key"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsWrongTypeNamingKeyAndValue) {
  auto r = load("mqtt:\n  limits:\n    max_connections: lots\n");
  EXPECT_TRUE(has_error(r, {"mqtt.limits.max_connections", "\"lots\"", "whole number"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsOutOfRangeWithRange) {
  auto r = load("mqtt:\n  limits:\n    receive_maximum: 0\n");
  EXPECT_TRUE(has_error(r, {"mqtt.limits.receive_maximum", "\"0\"", "from 1 to 65535"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsValueTooLargeForSixteenBits) {
  auto r = load("mqtt:\n  limits:\n    max_keep_alive: 70000\n");
  EXPECT_TRUE(has_error(r, {"mqtt.limits.max_keep_alive", "70000"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsDurationWithoutUnit) {
  auto r = load("mqtt:\n  limits:\n    connect_timeout: 10\n");
  EXPECT_TRUE(has_error(r, {"mqtt.limits.connect_timeout", "\"10\"", "10s"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsBadBoolean) {
  auto r = load("mqtt:\n  allow_anonymous: maybe\n");
  EXPECT_TRUE(has_error(r, {"mqtt.allow_anonymous", "true or false"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsValueOutsideChoiceListingChoices) {
  auto r = load("log:\n  format: xml\n");
  EXPECT_TRUE(has_error(r, {"log.format", "\"xml\"", "text, json"})) << errors_of(r);
  auto c = load("kafka:\n  compression: brotli\n");
  EXPECT_TRUE(has_error(c, {"kafka.compression", "lz4", "zstd"})) << errors_of(c);
}

TEST(ConfigErrors, RejectsMappingWhereValueExpected) {
  auto r = load("kafka:\n  brokers: {a: b}\n");
  EXPECT_TRUE(has_error(r, {"kafka.brokers", "single value"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsScalarWhereSectionExpected) {
  auto r = load("mqtt: yes\n");
  EXPECT_TRUE(has_error(r, {"mqtt", "mapping"})) << errors_of(r);
}

TEST(ConfigErrors, RejectsTopLevelList) {
  auto r = load("- a\n- b\n");
  EXPECT_TRUE(has_error(r, {"top level must be a mapping"})) << errors_of(r);
}

TEST(ConfigErrors, ReportsYamlSyntaxErrorWithLine) {
  auto r = load("mqtt:\n  listen: [\n");
  EXPECT_TRUE(has_error(r, {"not valid YAML", "line"})) << errors_of(r);
}

TEST(ConfigErrors, CollectsEveryErrorInOneRun) {
  auto r = load("log: {format: xml, level: loud}\n");
  EXPECT_EQ(r.errors.size(), 2u) << errors_of(r);
}

TEST(ConfigValidate, RejectsListenWithoutPort) {
  auto r = load("mqtt:\n  listen: localhost\n");
  EXPECT_TRUE(has_error(r, {"mqtt.listen", "HOST:PORT"})) << errors_of(r);
}

TEST(ConfigValidate, TrustedProxiesAreAddressesOrCidrRanges) {
  EXPECT_TRUE(load("http:\n  trusted_proxies: [10.0.0.7, 10.0.0.0/8, \"fd00::/8\"]\n").ok());
  auto r = load("http:\n  trusted_proxies: [10.0.0.0/8, proxy.example, 10.0.0.0/40]\n");
  EXPECT_TRUE(has_error(r, {"http.trusted_proxies[1]", "proxy.example", "CIDR"})) << errors_of(r);
  EXPECT_TRUE(has_error(r, {"http.trusted_proxies[2]", "10.0.0.0/40"})) << errors_of(r);
}

TEST(ConfigValidate, EmptyListenDisablesListener) {
  auto r = load("mqtt: {listen: \"\"}\nhttp: {listen: \"\"}\n");
  EXPECT_TRUE(r.ok()) << errors_of(r);
}

TEST(ConfigValidate, TlsListenerRequiresCertificateAndKey) {
  auto r = load("mqtt:\n  tls: {listen: 0.0.0.0:8883}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.tls.cert_file", "required"})) << errors_of(r);
  EXPECT_TRUE(has_error(r, {"mqtt.tls.key_file", "required"})) << errors_of(r);
}

TEST(ConfigValidate, TlsFilesMustBeReadable) {
  auto r = load("mqtt:\n  tls: {listen: 0.0.0.0:8883, cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.tls.cert_file", "cannot read", "/nonexistent/c.pem"})) << errors_of(r);
}

TEST(ConfigValidate, ClientCertificatesNeedCa) {
  auto r = load(
      "mqtt:\n  tls: {listen: 0.0.0.0:8883, cert_file: /etc/hostname, key_file: /etc/hostname, "
      "require_client_cert: true}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.tls.ca_file", "required"})) << errors_of(r);
}

TEST(ConfigValidate, JwtNeedsKeyMaterial) {
  auto r = load("mqtt:\n  jwt: {enabled: true, algorithm: RS256}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.jwt.public_key_file", "required for RS256"})) << errors_of(r);
}

TEST(ConfigValidate, PasswordFileMustBeReadable) {
  auto r = load("mqtt:\n  password_file: /nonexistent/passwd\n");
  EXPECT_TRUE(has_error(r, {"mqtt.password_file", "cannot read"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsBadRouteFilterTopicAndKey) {
  auto r = load(R"(
mqtt:
  routes:
    - {filter: "a/#/b", kafka_topic: "bad topic", key: "%x"}
)");
  EXPECT_TRUE(has_error(r, {"mqtt.routes[0].filter", "a/#/b"})) << errors_of(r);
  EXPECT_TRUE(has_error(r, {"mqtt.routes[0].kafka_topic", "bad topic"})) << errors_of(r);
  EXPECT_TRUE(has_error(r, {"mqtt.routes[0].key", "%x"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsPlusMixedIntoLevel) {
  auto r = load("mqtt:\n  routes:\n    - {filter: \"a/b+\", kafka_topic: t}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.routes[0].filter"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsBadAclFilter) {
  auto r = load("mqtt:\n  acl:\n    - {user: bob, action: publish, filter: \"#/x\"}\n");
  EXPECT_TRUE(has_error(r, {"mqtt.acl[0].filter"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsDuplicateHttpTypeAndBadKeySource) {
  auto r = load(R"(
http:
  types:
    - {name: orders, kafka_topic: orders}
    - {name: orders, kafka_topic: orders2, key: "body"}
)");
  EXPECT_TRUE(has_error(r, {"http.types[1].name", "defined twice"})) << errors_of(r);
  EXPECT_TRUE(has_error(r, {"http.types[1].key", "producer, header:NAME or json:/pointer"})) << errors_of(r);
}

TEST(ConfigValidate, ApiKeyNeedsSha256AndKnownTypes) {
  auto r = load(R"(
http:
  types: [{name: orders, kafka_topic: orders}]
  api_keys:
    - {name: app, sha256: "abc", types: [orderz]}
)");
  EXPECT_TRUE(has_error(r, {"http.api_keys[0].sha256", "64 hex digits"})) << errors_of(r);
  EXPECT_TRUE(has_error(r, {"http.api_keys[0].types", "orderz"})) << errors_of(r);
}

TEST(ConfigValidate, ApiKeysFileEntriesAreAddedAndChecked) {
  auto dir = std::string(::testing::TempDir());
  std::ofstream(dir + "/keys.yaml") << "- {name: a, sha256: \"" << std::string(64, 'a') << "\"}\n"
                                    << "- {name: b, sha256: short, colour: red}\n";
  auto r = load("http:\n  api_keys_file: " + dir + "/keys.yaml\n");
  EXPECT_TRUE(has_error(r, {"keys.yaml[1].colour", "unknown key"})) << errors_of(r);
  std::ofstream(dir + "/keys.yaml") << "- {name: a, sha256: \"" << std::string(64, 'a') << "\", types: []}\n";
  auto ok = load("http:\n  api_keys_file: " + dir + "/keys.yaml\n");
  ASSERT_TRUE(ok.ok()) << errors_of(ok);
  ASSERT_EQ(ok.cfg.http.api_keys.size(), 1u);
  EXPECT_EQ(ok.cfg.http.api_keys[0].name, "a");
  auto missing = load("http:\n  api_keys_file: /nonexistent/keys.yaml\n");
  EXPECT_TRUE(has_error(missing, {"http.api_keys_file", "cannot read"})) << errors_of(missing);
}

TEST(ConfigValidate, KafkaPropertiesNeedBrokers) {
  auto r = load("kafka:\n  properties: {linger.ms: 5}\n");
  EXPECT_TRUE(has_error(r, {"kafka.properties", "kafka.brokers"})) << errors_of(r);
}

TEST(ConfigValidate, KafkaPropertiesCannotWeakenDurability) {
  auto r = load("kafka:\n  brokers: 127.0.0.1:9092\n  properties: {acks: \"1\"}\n");
  EXPECT_TRUE(has_error(r, {"kafka.properties.acks", "acks=all"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsBrokerWithoutPort) {
  auto r = load("kafka:\n  brokers: \"kafka-0\"\n");
  EXPECT_TRUE(has_error(r, {"kafka.brokers", "kafka-0"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsRedisUrlScheme) {
  auto r = load("redis:\n  url: http://localhost:6379\n");
  EXPECT_TRUE(has_error(r, {"redis.url", "sentinel://"})) << errors_of(r);
}

TEST(ConfigValidate, SentinelUrlNeedsMasterName) {
  auto r = load("redis:\n  url: sentinel://127.0.0.1:26379\n");
  EXPECT_TRUE(has_error(r, {"redis.url", "master"})) << errors_of(r);
}

TEST(ConfigValidate, AcceptsRedissUrl) {
  auto r = load("redis:\n  url: rediss://redis.local:6380\n");
  EXPECT_FALSE(has_error(r, {"redis"})) << errors_of(r);
}

TEST(ConfigValidate, RedisTlsKeysNeedTlsOn) {
  auto r = load("redis:\n  url: redis://h:6379\n  tls:\n    server_name: redis.local\n");
  EXPECT_TRUE(has_error(r, {"redis.tls", "redis.tls.enabled: true"})) << errors_of(r);
}

TEST(ConfigValidate, RedisTlsFilesMustBeReadable) {
  auto r = load("redis:\n  url: redis://h:6379\n  tls:\n    enabled: true\n    ca_file: /nonexistent/ca.crt\n");
  EXPECT_TRUE(has_error(r, {"redis.tls.ca_file", "/nonexistent/ca.crt"})) << errors_of(r);
}

TEST(ConfigValidate, RedisTlsCertAndKeyGoTogether) {
  auto r = load("redis:\n  url: rediss://h:6379\n  tls:\n    cert_file: /etc/hostname\n");
  EXPECT_TRUE(has_error(r, {"redis.tls", "cert_file and key_file"})) << errors_of(r);
}

TEST(ConfigValidate, RedisTlsNeedsUrl) {
  auto r = load("redis:\n  tls:\n    enabled: true\n");
  EXPECT_TRUE(has_error(r, {"redis.tls.enabled", "redis.url"})) << errors_of(r);
}

TEST(ConfigValidate, NodeTtlAtLeastTwoHeartbeats) {
  auto r = load("redis:\n  heartbeat_interval: 5s\n  node_ttl: 6s\n");
  EXPECT_TRUE(has_error(r, {"redis.node_ttl", "twice"})) << errors_of(r);
}

TEST(ConfigValidate, RejectsBadNodeId) {
  auto r = load("node:\n  id: \"a b\"\n");
  EXPECT_TRUE(has_error(r, {"node.id", "\"a b\""})) << errors_of(r);
}

TEST(ConfigOverrides, EnvironmentBeatsFileAndFlagsBeatEnvironment) {
  std::string e1 = "WHARF_KAFKA_BROKERS=10.0.0.1:9092";
  std::string e2 = "WHARF_MQTT_LIMITS_MAX_CONNECTIONS=77";
  char* env[] = {e1.data(), e2.data(), nullptr};
  auto r = load("kafka: {brokers: \"127.0.0.1:9092\"}\nmqtt: {limits: {max_connections: 5}}\n",
                {{"kafka.brokers", "10.0.0.2:9092"}}, env);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg.kafka.brokers, "10.0.0.2:9092");
  EXPECT_EQ(r.cfg.mqtt.limits.max_connections, 77u);
}

TEST(ConfigOverrides, BadEnvironmentValueNamesVariable) {
  std::string e1 = "WHARF_MQTT_LIMITS_CONNECT_TIMEOUT=soon";
  char* env[] = {e1.data(), nullptr};
  auto r = load("", {}, env);
  EXPECT_TRUE(has_error(r, {"mqtt.limits.connect_timeout", "WHARF_MQTT_LIMITS_CONNECT_TIMEOUT"})) << errors_of(r);
}

TEST(ConfigOverrides, UnknownWharfVariableIsWarned) {
  std::string e1 = "WHARF_KAFKA_BROKER=x";
  char* env[] = {e1.data(), nullptr};
  auto r = load("", {}, env);
  ASSERT_TRUE(r.ok());
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("WHARF_KAFKA_BROKER ") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(ConfigOverrides, ListFromCommaSeparatedEnvironment) {
  std::string e1 = "WHARF_HTTP_TRUSTED_PROXIES=10.0.0.1, 10.0.0.2";
  char* env[] = {e1.data(), nullptr};
  auto r = load("", {}, env);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.cfg.http.trusted_proxies, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
}

TEST(ConfigFile, MissingFileIsAnError) {
  auto r = load_file("/nonexistent/wharf.yaml", {}, nullptr);
  EXPECT_TRUE(has_error(r, {"cannot read", "/nonexistent/wharf.yaml"})) << errors_of(r);
}

TEST(ConfigFile, ShippedExamplesAreValid) {
  for (const char* name : {"/examples/dev.yaml", "/examples/production.yaml"}) {
    auto r = load_file(std::string(WHARF_SOURCE_DIR) + name, {}, nullptr);
    // production.yaml points at certificate files that exist only in a
    // deployment; everything else in it must be valid.
    for (const auto& e : r.errors) {
      EXPECT_EQ(e.find("--config"), std::string::npos) << name << " is missing: " << e;
      EXPECT_NE(e.find("cannot read"), std::string::npos) << name << ": " << e;
    }
  }
}

TEST(ConfigDocs, EveryKeyIsDocumented) {
  std::ifstream in(std::string(WHARF_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing";
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& line : describe_keys()) {
    std::string key = line.substr(0, line.find(':'));
    EXPECT_NE(doc.find("`" + key + "`"), std::string::npos) << key << " is not in docs/configuration.md";
  }
}

TEST(ConfigParsers, DurationsAndSizes) {
  milliseconds d{};
  EXPECT_TRUE(parse_duration("250ms", d));
  EXPECT_EQ(d, 250ms);
  EXPECT_TRUE(parse_duration("5m", d));
  EXPECT_EQ(d, 300000ms);
  EXPECT_FALSE(parse_duration("5", d));
  EXPECT_FALSE(parse_duration("ms", d));
  EXPECT_FALSE(parse_duration("-1s", d));
  std::uint64_t s = 0;
  EXPECT_TRUE(parse_size("1MiB", s));
  EXPECT_EQ(s, 1048576u);
  EXPECT_TRUE(parse_size("10kB", s));
  EXPECT_EQ(s, 10000u);
  EXPECT_FALSE(parse_size("1XB", s));
  EXPECT_FALSE(parse_size("99999999999999999999", s));
}
