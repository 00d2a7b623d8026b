// A real wharf node on the stack's Sentinel URL while the Redis primary is
// SIGKILLed (scripts/stack kill redis-primary) in the middle of a stream of
// persistent-session CONNECTs (MQTT 5 with a session expiry, 3.1.1 with
// clean session 0). Every CONNECT gets a CONNACK or a clean close within a
// client-side deadline; a refusal is 5.0 0x88 / 3.1.1 0x03; after Sentinel
// promoted a replica every acknowledged client id resumes its session on the
// same node and on a second node; /metrics counts the master change. The
// killed Redis is restarted as a replica at the end.
#include "tests/integration/02_mqtt_support.h"
#include "tests/integration/redis_session_test_support.h"
#include "tests/support/mqtt_raw_client.h"

#include <mutex>
#include <sstream>

namespace {

using namespace std::chrono_literals;
namespace mq = wharf::mqtt;
namespace it = wharf::test::mqtt_it;
namespace rs = wharf::state::testing;
using wharf::test::mqtt_raw_client;
using wharf::test::wharf_node;
using clock_type = std::chrono::steady_clock;

// The node answers every CONNECT within about two command timeouts (one for
// the script and one for a WAIT it may queue behind); the client gives it
// more, and anything beyond that is a hang.
constexpr auto command_timeout = 2s;
constexpr auto client_deadline = 3 * command_timeout + 2s;

wharf_node::options node_options(const std::string& id) {
  wharf_node::options o;
  o.http = false;
  o.node_id = id;
  o.config_yaml = "kafka:\n  brokers: " + it::kafka_brokers() + "\nredis:\n  url: \"" + rs::sentinel_url() +
                  "\"\n  command_timeout: 2s\n  wait_timeout: 500ms\nmqtt:\n  allow_anonymous: true\n"
                  "  default_route: {kafka_topic: mqtt.ingest}\n";
  return o;
}

enum class answer { accepted, refused, closed, hung };

struct attempt {
  answer what = answer::hung;
  mq::reason_code code = mq::reason_code::success;
  bool session_present = false;
};

// One CONNECT; on success a normal DISCONNECT follows.
attempt connect_once(unsigned short port, mq::protocol_version v, const std::string& id, bool clean) {
  mqtt_raw_client c(port, v);
  attempt a;
  if (!c.connected()) {
    a.what = answer::closed;
    return a;
  }
  mq::connect p;
  p.version = v;
  p.clean_start = clean;
  p.keep_alive = 60;
  p.client_id = id;
  if (v == mq::protocol_version::v5 && !clean) p.props.session_expiry_interval = 600;
  c.send(p);
  auto got = c.receive(client_deadline);
  if (!got) {
    a.what = c.closed() ? answer::closed : answer::hung;
    return a;
  }
  auto* ack = std::get_if<mq::connack>(&*got);
  if (!ack) {
    a.what = answer::closed;  // anything but CONNACK first is a protocol failure; counted as not accepted
    a.code = mq::reason_code::protocol_error;
    return a;
  }
  a.code = ack->reason_code;
  a.session_present = ack->session_present;
  a.what = ack->reason_code == mq::reason_code::success ? answer::accepted : answer::refused;
  if (a.what == answer::accepted) c.send(mq::disconnect{});
  return a;
}

struct outcome {
  std::string client_id;
  mq::protocol_version version;
  attempt result;
  clock_type::time_point started, ended;
};

double metric_value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0 || line.rfind(name + "{", 0) == 0)
      return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

long long ms_since(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

TEST(RedisNodeFailover, PersistentSessionConnectsSurviveKillingThePrimary) {
  rs::require_stack();
  if (::testing::Test::HasFatalFailure()) return;
  const auto old_primary = *rs::current_primary();
  const std::string victim = rs::stack_redis_name(old_primary.second);
  ASSERT_FALSE(victim.empty()) << "primary port " << old_primary.second << " is not one of the stack's";
  ASSERT_GE(rs::online_replicas(old_primary).size(), 2u) << "the stack must start with two replicas";

  wharf_node a(node_options(it::unique_name("failover-a")));
  wharf_node b(node_options(it::unique_name("failover-b")));
  std::string why;
  ASSERT_TRUE(a.wait_ready(30s, &why)) << why;
  ASSERT_TRUE(b.wait_ready(30s, &why)) << why;
  const std::string run = it::unique_name("failover-dev");

  std::atomic<bool> stop{false};
  std::mutex m;
  std::vector<outcome> outcomes;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        outcome o;
        o.client_id = run + "-" + std::to_string(w) + "-" + std::to_string(i);
        o.version = (w + i) % 2 == 0 ? mq::protocol_version::v5 : mq::protocol_version::v311;
        o.started = clock_type::now();
        o.result = connect_once(a.mqtt_port(), o.version, o.client_id, false);
        o.ended = clock_type::now();
        {
          std::lock_guard lock(m);
          outcomes.push_back(o);
        }
        std::this_thread::sleep_for(o.result.what == answer::accepted ? 20ms : 100ms);
      }
    });
  }

  std::this_thread::sleep_for(1500ms);
  rs::restore_stack restore;
  const auto killed_at = clock_type::now();
  {
    const int rc = rs::run_stack("kill redis-primary");
    if (rc == 0) restore.names = victim;
    EXPECT_EQ(rc, 0) << rs::stack_script() << " kill redis-primary failed";
  }
  // Keep connecting until Sentinel names another primary and 50 connects
  // begun after that have succeeded.
  std::optional<clock_type::time_point> promoted_seen;
  const auto until = clock_type::now() + 60s;
  while (clock_type::now() < until) {
    if (!promoted_seen) {
      if (auto p = rs::current_primary(); p && *p != old_primary) promoted_seen = clock_type::now();
    } else {
      std::lock_guard lock(m);
      int ok_after = 0;
      for (const auto& o : outcomes) ok_after += o.started > *promoted_seen && o.result.what == answer::accepted;
      if (ok_after >= 50) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  for (auto& t : workers) t.join();
  ASSERT_TRUE(promoted_seen) << "Sentinel did not promote a replica within 60 s";

  // Every CONNECT was answered in time; refusals carry the right code.
  std::size_t accepted = 0, refused = 0, closed = 0, hung = 0, accepted_after_promotion = 0;
  std::optional<clock_type::time_point> first_failure, last_failure, first_success_after;
  std::vector<const outcome*> acked;
  for (const auto& o : outcomes) {
    if (o.result.what == answer::accepted) continue;
    if (!first_failure || o.ended < *first_failure) first_failure = o.ended;
    if (!last_failure || o.ended > *last_failure) last_failure = o.ended;
  }
  for (const auto& o : outcomes) {
    switch (o.result.what) {
      case answer::accepted:
        ++accepted;
        acked.push_back(&o);
        EXPECT_FALSE(o.result.session_present) << o.client_id << " is new";
        if (first_failure && o.started > *first_failure && (!first_success_after || o.ended < *first_success_after))
          first_success_after = o.ended;
        if (o.started > *promoted_seen) ++accepted_after_promotion;
        continue;
      case answer::refused:
        ++refused;
        EXPECT_EQ(o.result.code, mq::reason_code::server_unavailable)
            << o.client_id << (o.version == mq::protocol_version::v5 ? ": 5.0 reason 0x" : ": 3.1.1 (mapped) 0x")
            << std::hex << static_cast<int>(o.result.code);
        break;
      case answer::closed:
        ++closed;
        EXPECT_NE(o.result.code, mq::reason_code::protocol_error) << o.client_id << ": no CONNACK came first";
        break;
      case answer::hung:
        ++hung;
        ADD_FAILURE() << o.client_id << ": no CONNACK and no close within " << client_deadline.count() << " s";
        break;
    }
  }
  EXPECT_EQ(hung, 0u);
  EXPECT_GE(accepted_after_promotion, 50u);

  // No acknowledged session is lost: each resumes on A, then on B.
  std::size_t lost_a = 0, lost_b = 0;
  auto check_all = [&](unsigned short port, std::size_t& lost, const char* node) {
    std::atomic<std::size_t> next{0}, missing{0};
    std::vector<std::thread> ts;
    for (int w = 0; w < 4; ++w) {
      ts.emplace_back([&] {
        for (std::size_t i = next++; i < acked.size(); i = next++) {
          const auto* o = acked[i];
          auto r = connect_once(port, o->version, o->client_id, false);
          if (r.what != answer::accepted || !r.session_present) {
            ++missing;
            ADD_FAILURE() << o->client_id << " was acknowledged before/while the primary died but on node " << node
                          << " got " << (r.what == answer::accepted ? "session present 0" : "no session");
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    lost = missing;
  };
  check_all(a.mqtt_port(), lost_a, "A");
  check_all(b.mqtt_port(), lost_b, "B");
  EXPECT_EQ(lost_a, 0u);
  EXPECT_EQ(lost_b, 0u);

  // The node noticed the new primary.
  for (auto* n : {&a, &b}) {
    const auto metrics = wharf::test::http_get(n->admin_port(), "/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_GE(metric_value(metrics.body, "wharf_redis_master_changes_total"), 1)
        << "wharf_redis_master_changes_total does not show the failover";
  }
  const auto new_primary = rs::current_primary();
  ASSERT_TRUE(new_primary);
  EXPECT_NE(*new_primary, old_primary);

  // Remove the sessions (3.1.1 ones never expire).
  for (const auto* o : acked) connect_once(b.mqtt_port(), o->version, o->client_id, true);

  auto rel = [&](std::optional<clock_type::time_point> t) {
    return t ? std::to_string(ms_since(killed_at, *t)) + " ms" : std::string("none");
  };
  std::cout << "timeline after SIGKILL of " << victim << " (port " << old_primary.second << "):\n"
            << "  first failed CONNECT:                 " << rel(first_failure) << "\n"
            << "  Sentinel names the new primary (" << new_primary->second << "): " << rel(promoted_seen) << "\n"
            << "  first CONNACK 0 after the failures:   " << rel(first_success_after) << "\n"
            << "  last failed CONNECT:                  " << rel(last_failure) << "\n"
            << "connects: " << outcomes.size() << " (" << accepted << " accepted, " << refused << " refused 0x88/0x03, "
            << closed << " closed, " << hung << " hung); " << acked.size()
            << " acknowledged sessions resumed with session present on both nodes: " << acked.size() - lost_a << " / "
            << acked.size() - lost_b << "\n";
}

// /readyz and a Redis without any primary: every Redis server stopped, so
// Sentinel has nothing to promote. A short outage leaves the node ready; one
// longer than admin.unready_after makes /readyz 503 (check "sessions"); it
// is ready again once Redis is back.
TEST(RedisNodeReadiness, ReadyzFailsOnlyAfterRedisHadNoPrimaryForUnreadyAfter) {
  rs::require_stack();
  if (::testing::Test::HasFatalFailure()) return;
  constexpr auto threshold = 15s;
  auto o = node_options(it::unique_name("readyz"));
  o.config_yaml += "admin:\n  unready_after: 15s\n";
  wharf_node n(o);
  std::string why;
  ASSERT_TRUE(n.wait_ready(30s, &why)) << why;
  auto readyz = [&](const std::string& target = "/readyz") {
    return wharf::test::http_request(n.admin_port(), "GET", target, "", {}, 2000ms);
  };
  auto primary_up = [&] {
    return metric_value(wharf::test::http_get(n.admin_port(), "/metrics").body, "wharf_redis_primary_up");
  };
  auto wait_for = [](auto pred, std::chrono::milliseconds limit, auto each) {
    const auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
      if (pred()) return true;
      each();
      std::this_thread::sleep_for(200ms);
    }
    return pred();
  };
  ASSERT_TRUE(wait_for([&] { return primary_up() == 1; }, 30s, [] {})) << "the node never reached the Redis primary";
  const std::string all = "redis-1 redis-2 redis-3";
  rs::restore_stack restore;
  restore.names = all;

  // 1. A blip: stopped and started again well within the threshold, with
  // /readyz polled all along.
  const auto blip = clock_type::now();
  std::atomic<bool> blip_over{false};
  std::atomic<int> blip_polls{0}, blip_unready{0};
  std::thread poller([&] {
    while (!blip_over) {
      auto r = readyz();
      if (clock_type::now() < blip + threshold) {
        ++blip_polls;
        if (r.status != 200) ++blip_unready;
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  const int stop_rc = rs::run_stack("stop " + all);
  const bool noticed = wait_for([&] { return primary_up() == 0; }, 10s, [] {});
  const int start_rc = rs::run_stack("start " + all);
  const bool reconnected = wait_for([&] { return primary_up() == 1; }, 30s, [] {});
  const auto blip_ms = ms_since(blip, clock_type::now());
  blip_over = true;
  poller.join();
  ASSERT_EQ(stop_rc, 0);
  EXPECT_TRUE(noticed) << "the node did not notice that Redis is gone";
  ASSERT_EQ(start_rc, 0);
  ASSERT_TRUE(reconnected) << "the node did not reconnect to Redis";
  ASSERT_LT(blip_ms, std::chrono::duration_cast<std::chrono::milliseconds>(threshold).count())
      << "precondition: the blip must be shorter than the threshold (stack restart too slow)";
  EXPECT_GT(blip_polls.load(), 0);
  EXPECT_EQ(blip_unready.load(), 0) << "a Redis outage shorter than admin.unready_after flipped /readyz";
  ASSERT_TRUE(rs::eventually_two_replicas(60s)) << "the stack did not recover after the blip";

  // 2. An outage: no primary for longer than the threshold.
  const auto outage = clock_type::now();
  ASSERT_EQ(rs::run_stack("stop " + all), 0);
  std::optional<clock_type::time_point> unready_at;
  wait_for([&] { return unready_at.has_value(); }, threshold + 20s,
           [&] {
             auto r = readyz();
             if (r.status == 503 && !unready_at) unready_at = clock_type::now();
             if (clock_type::now() < outage + threshold) {
               EXPECT_EQ(r.status, 200) << "/readyz failed before admin.unready_after: " << r.body;
             }
           });
  ASSERT_TRUE(unready_at) << "/readyz stayed ready with no Redis primary for " << (threshold + 20s).count() << " s";
  EXPECT_GE(*unready_at, outage + threshold);
  auto verbose = readyz("/readyz?verbose");
  EXPECT_EQ(verbose.status, 503);
  EXPECT_NE(verbose.body.find(R"({"name":"sessions","ok":false,"detail":"no Redis primary for )"), std::string::npos)
      << verbose.body;
  EXPECT_EQ(primary_up(), 0);

  // 3. Redis back: ready again.
  const auto back = clock_type::now();
  ASSERT_EQ(rs::run_stack("start " + all), 0);
  std::optional<clock_type::time_point> ready_at;
  wait_for([&] { return ready_at.has_value(); }, 60s,
           [&] {
             if (readyz().status == 200) ready_at = clock_type::now();
           });
  ASSERT_TRUE(ready_at) << "/readyz did not recover after Redis came back";
  EXPECT_EQ(primary_up(), 1);
  std::cout << "readyz: blip of " << blip_ms << " ms kept the node ready (" << blip_polls.load()
            << " polls); outage: 503 after " << ms_since(outage, *unready_at) << " ms (threshold " << threshold.count()
            << " s), ready " << ms_since(back, *ready_at) << " ms after the start of Redis began\n";
}

}  // namespace
