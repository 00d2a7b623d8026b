#include "sinks/kafka/kafka_sink.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace wharf::sinks::kafka {
namespace {

config::kafka_config base() {
  config::kafka_config c;
  c.brokers = "127.0.0.1:9092";
  return c;
}

std::string value_of(const std::vector<producer_setting>& s, const std::string& name) {
  std::string v = "<unset>";
  for (const auto& x : s)
    if (x.name == name) v = x.value;  // the last one wins, as in librdkafka
  return v;
}

TEST(KafkaSettings, FixesAcksAllIdempotenceAndNoAutoCreate) {
  auto s = build_producer_settings(base());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s, "acks"), "all");
  EXPECT_EQ(value_of(*s, "enable.idempotence"), "true");
  EXPECT_EQ(value_of(*s, "allow.auto.create.topics"), "false");
}

TEST(KafkaSettings, MapsTypedConfigFields) {
  auto c = base();
  c.delivery_timeout = std::chrono::milliseconds(12000);
  c.linger = std::chrono::milliseconds(7);
  c.compression = "zstd";
  c.queue_max_bytes = 8ull << 20;
  c.queue_max_messages = 1234;
  auto s = build_producer_settings(c);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s, "bootstrap.servers"), "127.0.0.1:9092");
  EXPECT_EQ(value_of(*s, "message.timeout.ms"), "12000");
  EXPECT_EQ(value_of(*s, "linger.ms"), "7");
  EXPECT_EQ(value_of(*s, "compression.type"), "zstd");
  EXPECT_EQ(value_of(*s, "queue.buffering.max.kbytes"), "8192");
  EXPECT_EQ(value_of(*s, "queue.buffering.max.messages"), "1234");
}

TEST(KafkaSettings, PassesPropertiesThroughAfterTheTypedFields) {
  auto c = base();
  c.properties["security.protocol"] = "SASL_SSL";
  c.properties["sasl.mechanisms"] = "SCRAM-SHA-512";
  c.properties["linger.ms"] = "20";
  auto s = build_producer_settings(c);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s, "security.protocol"), "SASL_SSL");
  EXPECT_EQ(value_of(*s, "sasl.mechanisms"), "SCRAM-SHA-512");
  EXPECT_EQ(value_of(*s, "linger.ms"), "20");
  for (const auto& x : *s) {
    if (x.name == "security.protocol") {
      EXPECT_EQ(x.origin, "kafka.properties.security.protocol");
    }
  }
}

TEST(KafkaSettings, ResolvesEnvironmentReferences) {
  ::setenv("WHARF_TEST_SASL_PASSWORD", "s3cr3t", 1);
  auto c = base();
  c.properties["sasl.password"] = "${env:WHARF_TEST_SASL_PASSWORD}";
  c.properties["sasl.username"] = "user-${env:WHARF_TEST_SASL_PASSWORD}-x";
  auto s = build_producer_settings(c);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s, "sasl.password"), "s3cr3t");
  EXPECT_EQ(value_of(*s, "sasl.username"), "user-s3cr3t-x");
}

TEST(KafkaSettings, ResolvesFileReferencesWithoutTheTrailingNewline) {
  const auto path = (std::filesystem::temp_directory_path() / ("wharf-secret-" + std::to_string(::getpid()))).string();
  std::ofstream(path) << "from-file\n";
  auto c = base();
  c.properties["ssl.key.password"] = "${file:" + path + "}";
  auto s = build_producer_settings(c);
  std::filesystem::remove(path);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s, "ssl.key.password"), "from-file");
}

TEST(KafkaSettings, MissingEnvironmentVariableNamesTheKeyAndTheVariable) {
  ::unsetenv("WHARF_TEST_DOES_NOT_EXIST");
  auto c = base();
  c.properties["sasl.password"] = "${env:WHARF_TEST_DOES_NOT_EXIST}";
  auto s = build_producer_settings(c);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().find("kafka.properties.sasl.password"), std::string::npos);
  EXPECT_NE(s.error().find("WHARF_TEST_DOES_NOT_EXIST"), std::string::npos);
}

TEST(KafkaSettings, UnreadableFileIsAnError) {
  auto c = base();
  c.properties["sasl.password"] = "${file:/nonexistent/wharf/secret}";
  auto s = build_producer_settings(c);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().find("/nonexistent/wharf/secret"), std::string::npos);
}

TEST(KafkaSettings, RefusesPropertiesThatWeakenDurability) {
  for (const char* key : {"acks", "request.required.acks", "enable.idempotence", "message.timeout.ms"}) {
    auto c = base();
    c.properties[key] = "1";
    auto s = build_producer_settings(c);
    ASSERT_FALSE(s.has_value()) << key;
    EXPECT_NE(s.error().find(std::string("kafka.properties.") + key), std::string::npos);
  }
}

TEST(KafkaSettings, EmptyBrokersIsAnError) {
  config::kafka_config c;
  auto s = build_producer_settings(c);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().find("kafka.brokers"), std::string::npos);
}

TEST(KafkaSettings, UnknownLibrdkafkaPropertyFailsCreationNamingTheKey) {
  auto c = base();
  c.check_topics = false;
  c.properties["no.such.property"] = "1";
  prometheus::Registry registry;
  auto s = kafka_sink::create(c, {}, registry);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().find("kafka.properties.no.such.property"), std::string::npos);
}

TEST(KafkaSettings, LiteralDollarTextIsKept) {
  auto c = base();
  c.properties["client.id"] = "a${b";
  auto s = build_producer_settings(c);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(value_of(*s, "client.id"), "a${b");
}

}  // namespace
}  // namespace wharf::sinks::kafka
