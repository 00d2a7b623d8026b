// The real wharf binary: flags, config errors, admin endpoints, signals.
#include "tests/support/process.h"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sstream>

using namespace wharf::test;
using namespace std::chrono_literals;

namespace {

wharf_node::options admin_only() {
  wharf_node::options o;
  o.mqtt = false;
  o.http = false;
  return o;
}

}  // namespace

TEST(EdgeBinary, VersionPrintsVersionAndRevision) {
  child_process p({wharf_binary(), "--version"});
  ASSERT_EQ(p.wait(10s), 0);
  EXPECT_NE(p.output().find("wharf 0."), std::string::npos) << p.output();
  EXPECT_NE(p.output().find("revision"), std::string::npos) << p.output();
}

TEST(EdgeBinary, HelpListsEveryFlag) {
  child_process p({wharf_binary(), "--help"});
  ASSERT_EQ(p.wait(10s), 0);
  for (const char* flag :
       {"--config", "--check-config", "--node-id", "--mqtt-listen", "--mqtt-tls-listen", "--http-listen",
        "--admin-listen", "--kafka-brokers", "--redis", "--data-dir", "--log-format"})
    EXPECT_NE(p.output().find(flag), std::string::npos) << flag;
}

TEST(EdgeBinary, UnknownFlagExitsWithUsageError) {
  child_process p({wharf_binary(), "--mqtt-lisen", "x"});
  EXPECT_EQ(p.wait(10s), 2);
  EXPECT_NE(p.output().find("unknown option --mqtt-lisen"), std::string::npos) << p.output();
}

TEST(EdgeBinary, CheckConfigAcceptsDevExample) {
  child_process p({wharf_binary(), "--check-config", "--config", source_dir() + "/examples/dev.yaml"});
  EXPECT_EQ(p.wait(10s), 0) << p.output();
  EXPECT_NE(p.output().find("configuration OK"), std::string::npos) << p.output();
}

TEST(EdgeBinary, BadConfigExitsNonZeroNamingKeyAndValue) {
  auto dir = make_temp_dir("wharf-cfg");
  std::ofstream(dir + "/bad.yaml") << "mqtt:\n  limits:\n    receive_maximum: 0\nkafka:\n  compresion: lz4\n";
  child_process p({wharf_binary(), "--config", dir + "/bad.yaml"});
  EXPECT_EQ(p.wait(10s), 2);
  auto out = p.output();
  EXPECT_NE(out.find("mqtt.limits.receive_maximum: \"0\" is not valid"), std::string::npos) << out;
  EXPECT_NE(out.find("kafka.compresion: unknown key"), std::string::npos) << out;
  run_command("rm -rf " + dir);
}

TEST(EdgeBinary, EnvironmentOverrideIsValidated) {
  child_process p({wharf_binary(), "--check-config"}, {"WHARF_LOG_FORMAT=xml"});
  EXPECT_EQ(p.wait(10s), 2);
  EXPECT_NE(p.output().find("WHARF_LOG_FORMAT"), std::string::npos) << p.output();
}

TEST(EdgeAdmin, LivezHealthzReadyzAndMetricsAnswer) {
  wharf_node node(admin_only());
  std::string why;
  ASSERT_TRUE(node.wait_ready(20s, &why)) << why;
  EXPECT_EQ(http_get(node.admin_port(), "/livez").status, 200);
  EXPECT_EQ(http_get(node.admin_port(), "/healthz").status, 200);
  auto ready = http_get(node.admin_port(), "/readyz?verbose");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find("\"ready\":true"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("\"checks\""), std::string::npos) << ready.body;
  auto metrics = http_get(node.admin_port(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("# TYPE wharf_build_info gauge"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("wharf_build_info{revision=\""), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("version=\"0."), std::string::npos) << metrics.body;
}

TEST(EdgeAdmin, UnknownPathIs404AndPostIs405) {
  wharf_node node(admin_only());
  std::string why;
  ASSERT_TRUE(node.wait_ready(20s, &why)) << why;
  EXPECT_EQ(http_get(node.admin_port(), "/nope").status, 404);
  EXPECT_EQ(http_request(node.admin_port(), "POST", "/metrics", "x").status, 405);
}

TEST(EdgeLifecycle, SigtermExitsCleanly) {
  wharf_node node(admin_only());
  std::string why;
  ASSERT_TRUE(node.wait_ready(20s, &why)) << why;
  EXPECT_EQ(node.process().stop(SIGTERM, 30s), 0) << node.process().output();
}

TEST(EdgeLifecycle, SigintExitsCleanly) {
  wharf_node node(admin_only());
  std::string why;
  ASSERT_TRUE(node.wait_ready(20s, &why)) << why;
  EXPECT_EQ(node.process().stop(SIGINT, 30s), 0) << node.process().output();
}

TEST(EdgeLogging, JsonFormatWritesOneObjectPerLine) {
  auto o = admin_only();
  o.extra_args = {"--log-format", "json"};
  wharf_node node(o);
  std::string why;
  ASSERT_TRUE(node.wait_ready(20s, &why)) << why;
  node.process().stop(SIGTERM, 30s);
  auto out = node.process().output();
  std::istringstream lines(out);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
    EXPECT_NE(line.find("\"level\":"), std::string::npos) << line;
    ++n;
  }
  EXPECT_GT(n, 0);
}

TEST(EdgeAdmin, AdminPortInUseFailsStartup) {
  auto port = free_port();
  auto o = admin_only();
  wharf_node first(o);
  std::string why;
  ASSERT_TRUE(first.wait_ready(20s, &why)) << why;
  child_process second({wharf_binary(), "--mqtt-listen", "", "--http-listen", "", "--admin-listen",
                        "127.0.0.1:" + std::to_string(first.admin_port())});
  EXPECT_EQ(second.wait(20s), 1) << second.output();
  EXPECT_NE(second.output().find("cannot listen"), std::string::npos) << second.output();
  (void)port;
}
