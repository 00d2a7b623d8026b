// The Redis session store over TLS, against real TLS-only redis-server 7
// processes this test starts on free ports: a primary, a replica
// replicating over TLS (tls-replication yes) and a Sentinel listening on
// TLS only. A throwaway CA and certificates are made with openssl.
#include "redis_session_test_support.h"
#include "tests/support/mqtt_raw_client.h"
#include "tests/support/process.h"

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace wharf::state::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
  ::pclose(p);
  return out;
}

// A CA and a certificate it signed for localhost / 127.0.0.1 / ::1 (used as
// server and as client certificate), plus an unrelated second CA.
struct pki {
  fs::path dir;
  std::string ca, cert, key, other_ca;

  pki() {
    dir = fs::temp_directory_path() / ("wharf-redis-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ca = (dir / "ca.crt").string();
    cert = (dir / "redis.crt").string();
    key = (dir / "redis.key").string();
    other_ca = (dir / "other-ca.crt").string();
    const std::string d = dir.string();
    const std::string quiet = " >/dev/null";
    std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=wharf-test-ca -keyout " + d +
                 "/ca.key -out " + ca + quiet + " 2>&1")
                    .c_str());
    std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout " + d +
                 "/other-ca.key -out " + other_ca + quiet + " 2>&1")
                    .c_str());
    std::ofstream(dir / "ext.cnf") << "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                                      "extendedKeyUsage=serverAuth,clientAuth\n";
    std::system(("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + key + " -out " + d +
                 "/redis.csr" + quiet + " 2>&1")
                    .c_str());
    std::system(("openssl x509 -req -days 2 -in " + d + "/redis.csr -CA " + ca + " -CAkey " + d +
                 "/ca.key -CAcreateserial -extfile " + d + "/ext.cnf -out " + cert + quiet + " 2>&1")
                    .c_str());
  }
  ~pki() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  bool ok() const { return fs::exists(ca) && fs::exists(cert) && fs::exists(key) && fs::exists(other_ca); }
};

// One redis-server (or Sentinel) with TLS only (port 0).
class tls_redis {
 public:
  tls_redis(const pki& p, std::vector<std::string> extra, bool sentinel = false, bool client_certs = false)
      : pki_(p), port_(wharf::test::free_port()) {
    const fs::path conf = p.dir / ("redis-" + std::to_string(port_) + ".conf");
    std::ofstream f(conf);
    f << "port 0\ntls-port " << port_ << "\nbind 127.0.0.1 -::1\n"
      << "tls-cert-file " << p.cert << "\ntls-key-file " << p.key << "\ntls-ca-cert-file " << p.ca << "\n"
      << "tls-auth-clients " << (client_certs ? "yes" : "no") << "\n"
      << "tls-replication yes\nsave \"\"\nappendonly no\ndir " << p.dir.string() << "\n"
      << "dbfilename dump-" << port_ << ".rdb\n";
    for (const auto& line : extra) f << line << "\n";
    f.close();
    std::vector<std::string> argv{sentinel ? "/usr/bin/redis-sentinel" : "/usr/bin/redis-server", conf.string()};
    proc_ = std::make_unique<wharf::test::child_process>(argv);
  }

  unsigned short port() const { return port_; }

  // redis-cli over TLS with the test's certificate.
  std::string cli(const std::string& args) const {
    return run("redis-cli --tls --cacert " + pki_.ca + " --cert " + pki_.cert + " --key " + pki_.key +
               " -h 127.0.0.1 -p " + std::to_string(port_) + " " + args);
  }

  // Waits until `args` answers with text containing `expect`.
  bool wait_for(const std::string& args, const std::string& expect, std::chrono::seconds limit = 20s) const {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (cli(args).find(expect) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::string output() const { return proc_->output(); }
  void kill() { proc_->stop(SIGKILL); }

 private:
  const pki& pki_;
  unsigned short port_;
  std::unique_ptr<wharf::test::child_process> proc_;
};

// Captures what the store logs, to check the reason it gives.
class log_capture {
 public:
  log_capture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~log_capture() {
    auto& sinks = spdlog::default_logger()->sinks();
    std::erase(sinks, sink_);
  }
  std::string text() const {
    std::string out;
    for (const auto& l : sink_->last_formatted()) out += l;
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

config::redis_config tls_config(const pki& p, const std::string& url) {
  auto c = store_runner::default_config();
  c.url = url;
  c.tls.enabled = true;
  c.tls.ca_file = p.ca;
  c.wait_replicas = 0;
  return c;
}

class RedisTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = std::make_unique<pki>(); }
  static void TearDownTestSuite() { pki_.reset(); }
  void SetUp() override { ASSERT_TRUE(pki_->ok()) << "openssl could not make the test certificates"; }
  static std::unique_ptr<pki> pki_;
};
std::unique_ptr<pki> RedisTls::pki_;

TEST_F(RedisTls, SessionSurvivesReconnectOverRediss) {
  tls_redis primary(*pki_, {});
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  // A DNS name (checked against the certificate's SAN), not an address.
  store_runner runner("tls-node-a", tls_config(*pki_, "rediss://localhost:" + std::to_string(primary.port())));
  const auto id = unique_id("tls");
  auto first = runner.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_FALSE(first->session_present);
  ASSERT_FALSE(runner.disconnect(id, first->epoch).has_error());
  auto second = runner.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(second->session_present);
  EXPECT_GT(second->epoch, first->epoch);
  EXPECT_NE(primary.cli("EXISTS " + session_key(id)).find('1'), std::string::npos);
}

TEST_F(RedisTls, SentinelAndReplicaOverTlsWithWait) {
  tls_redis primary(*pki_, {});
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  tls_redis replica(*pki_, {"replicaof 127.0.0.1 " + std::to_string(primary.port())});
  ASSERT_TRUE(replica.wait_for("INFO replication", "master_link_status:up"))
      << "the replica did not sync over TLS: " << replica.output();
  tls_redis sentinel(*pki_,
                     {"sentinel monitor wharf 127.0.0.1 " + std::to_string(primary.port()) + " 1",
                      "sentinel down-after-milliseconds wharf 60000"},
                     true);
  ASSERT_TRUE(sentinel.wait_for("SENTINEL get-master-addr-by-name wharf", std::to_string(primary.port())))
      << sentinel.output();

  auto cfg = tls_config(*pki_, "sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/wharf");
  cfg.wait_replicas = 1;
  store_runner runner("tls-node-b", cfg);
  const auto id = unique_id("tls-sentinel");
  auto first = runner.connect(id);
  ASSERT_TRUE(first) << first.error().message();  // WAIT 1 answered: the TLS replica has it
  EXPECT_FALSE(first->session_present);
  ASSERT_FALSE(runner.disconnect(id, first->epoch).has_error());
  auto second = runner.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(second->session_present);
  EXPECT_NE(replica.cli("EXISTS " + session_key(id)).find('1'), std::string::npos);
}

// A Redis failover with TLS everywhere: the primary is SIGKILLed, the
// Sentinel (TLS only) promotes the TLS replica, and the store follows it over
// TLS. A session acknowledged before the kill (WAIT 1: on the replica) is
// present on the new primary; connects during the failover fail cleanly.
TEST_F(RedisTls, FailoverOverTlsKeepsAcknowledgedSessions) {
  tls_redis primary(*pki_, {});
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  // Two replicas, so that after the promotion one is left to answer WAIT 1.
  tls_redis replica(*pki_, {"replicaof 127.0.0.1 " + std::to_string(primary.port())});
  tls_redis replica2(*pki_, {"replicaof 127.0.0.1 " + std::to_string(primary.port())});
  ASSERT_TRUE(replica.wait_for("INFO replication", "master_link_status:up"))
      << "the replica did not sync over TLS: " << replica.output();
  ASSERT_TRUE(replica2.wait_for("INFO replication", "master_link_status:up"))
      << "the replica did not sync over TLS: " << replica2.output();
  tls_redis sentinel(*pki_,
                     {"sentinel monitor wharf 127.0.0.1 " + std::to_string(primary.port()) + " 1",
                      "sentinel down-after-milliseconds wharf 1000", "sentinel failover-timeout wharf 10000"},
                     true);
  ASSERT_TRUE(sentinel.wait_for("SENTINEL get-master-addr-by-name wharf", std::to_string(primary.port())))
      << sentinel.output();
  // The Sentinel must know the replica before the primary goes.
  ASSERT_TRUE(sentinel.wait_for("SENTINEL replicas wharf", std::to_string(replica.port()))) << sentinel.output();

  auto cfg = tls_config(*pki_, "sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/wharf");
  cfg.wait_replicas = 1;
  cfg.command_timeout = std::chrono::milliseconds(2000);
  store_runner runner("tls-node-failover", cfg);
  const auto before = unique_id("tls-before-failover");
  auto first = runner.connect(before);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_FALSE(first->session_present);

  primary.kill();

  // Until the replica is promoted, connects fail with an error (no hang:
  // store_runner fails the test after 20 s); then one succeeds.
  const auto during = unique_id("tls-during-failover");
  const auto until = std::chrono::steady_clock::now() + 30s;
  bool connected = false;
  int failures = 0;
  std::string last_error;
  while (!connected && std::chrono::steady_clock::now() < until) {
    auto r = runner.connect(during);
    if (r) {
      connected = true;
    } else {
      ++failures;
      last_error = r.error().message();
      std::this_thread::sleep_for(200ms);
    }
  }
  ASSERT_TRUE(connected) << "no connect succeeded after the failover (last error: " << last_error
                         << "); sentinel: " << sentinel.output();
  const auto now_primary = sentinel.cli("SENTINEL get-master-addr-by-name wharf");
  const bool first_promoted = now_primary.find(std::to_string(replica.port())) != std::string::npos;
  const bool second_promoted = now_primary.find(std::to_string(replica2.port())) != std::string::npos;
  ASSERT_TRUE(first_promoted || second_promoted) << "the Sentinel did not promote a replica: " << now_primary;
  const tls_redis& promoted = first_promoted ? replica : replica2;

  auto again = runner.connect(before);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(again->session_present) << "a session acknowledged with WAIT 1 was lost in the failover";
  EXPECT_GT(again->epoch, first->epoch);
  EXPECT_NE(promoted.cli("EXISTS " + session_key(before)).find('1'), std::string::npos);

  double master_changes = 0;
  for (const auto& f : runner.registry().Collect()) {
    if (f.name == "wharf_redis_master_changes_total" && !f.metric.empty()) master_changes = f.metric[0].counter.value;
  }
  EXPECT_GE(master_changes, 1);
  std::printf("TLS failover: %d connect attempt(s) failed before the promoted replica answered\n", failures);
}

TEST_F(RedisTls, WrongCaIsRefusedWithReason) {
  tls_redis primary(*pki_, {});
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  log_capture log;
  auto cfg = tls_config(*pki_, "rediss://127.0.0.1:" + std::to_string(primary.port()));
  cfg.tls.ca_file = pki_->other_ca;
  cfg.command_timeout = 1000ms;
  store_runner runner("tls-node-c", cfg);
  auto r = runner.connect(unique_id("tls-wrong-ca"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), store_error::unavailable);
  EXPECT_NE(log.text().find("certificate verify failed"), std::string::npos) << log.text();
}

TEST_F(RedisTls, ClientCertificateWhenRedisRequiresOne) {
  tls_redis primary(*pki_, {}, false, true);
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  const std::string url = "rediss://127.0.0.1:" + std::to_string(primary.port());
  {
    auto cfg = tls_config(*pki_, url);
    cfg.tls.cert_file = pki_->cert;
    cfg.tls.key_file = pki_->key;
    store_runner runner("tls-node-d", cfg);
    auto r = runner.connect(unique_id("tls-client-cert"));
    ASSERT_TRUE(r) << r.error().message();
  }
  {
    log_capture log;
    auto cfg = tls_config(*pki_, url);
    cfg.command_timeout = 1000ms;
    store_runner runner("tls-node-e", cfg);
    auto r = runner.connect(unique_id("tls-no-client-cert"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), store_error::unavailable);
    EXPECT_NE(log.text().find("certificate required"), std::string::npos) << log.text();
  }
}

// The wharf binary with its sessions on a TLS-only Redis: a persistent
// MQTT 5 session is absent on the first CONNECT and present on the next.
TEST_F(RedisTls, NodeResumesSessionKeptInTlsRedis) {
  tls_redis primary(*pki_, {});
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  wharf::test::wharf_node::options o;
  o.http = false;
  o.node_id = unique_id("tls-node");
  o.config_yaml = "redis:\n  url: \"rediss://localhost:" + std::to_string(primary.port()) +
                  "\"\n  wait_replicas: 0\n  tls:\n    ca_file: \"" + pki_->ca + "\"\nmqtt:\n  allow_anonymous: true\n";
  wharf::test::wharf_node node(o);
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;
  const std::string id = unique_id("tls-device");
  {
    wharf::test::mqtt_raw_client c(node.mqtt_port(), mqtt::protocol_version::v5);
    auto ack = c.connect(id, false, 600);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->reason_code, mqtt::reason_code::success);
    EXPECT_FALSE(ack->session_present);
    c.close();
  }
  wharf::test::mqtt_raw_client c(node.mqtt_port(), mqtt::protocol_version::v5);
  auto ack = c.connect(id, false, 600);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->reason_code, mqtt::reason_code::success);
  EXPECT_TRUE(ack->session_present) << node.process().output();
}

// A node that does not trust Redis' certificate answers CONNECT with 0x88
// (Server unavailable) instead of hanging, and logs why.
TEST_F(RedisTls, NodeWithWrongCaRefusesConnectWith0x88) {
  tls_redis primary(*pki_, {});
  ASSERT_TRUE(primary.wait_for("PING", "PONG")) << primary.output();
  wharf::test::wharf_node::options o;
  o.http = false;
  o.node_id = unique_id("tls-node-wrong-ca");
  o.config_yaml = "redis:\n  url: \"rediss://127.0.0.1:" + std::to_string(primary.port()) +
                  "\"\n  command_timeout: 1s\n  tls:\n    ca_file: \"" + pki_->other_ca +
                  "\"\nmqtt:\n  allow_anonymous: true\n";
  wharf::test::wharf_node node(o);
  std::string why;
  ASSERT_TRUE(node.wait_ready(30s, &why)) << why;
  wharf::test::mqtt_raw_client c(node.mqtt_port(), mqtt::protocol_version::v5);
  auto ack = c.connect(unique_id("tls-device"), false, 600);
  ASSERT_TRUE(ack) << "no CONNACK: " << node.process().output();
  EXPECT_EQ(ack->reason_code, mqtt::reason_code::server_unavailable);
  EXPECT_NE(node.process().output().find("certificate verify failed"), std::string::npos) << node.process().output();
}

}  // namespace
}  // namespace wharf::state::testing
