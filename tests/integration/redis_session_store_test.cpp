// The Redis session store against the local stack's Redis (primary, two
// replicas, three Sentinels). Run `scripts/stack up` first; without it every
// test fails.
#include "tests/integration/redis_session_test_support.h"

#include <boost/asio/ip/tcp.hpp>

#include <condition_variable>
#include <mutex>
#include <set>

namespace wharf::state::testing {
namespace {

class RedisSessionStore : public ::testing::Test {
 protected:
  void SetUp() override { require_stack(); }

  std::string field(const std::string& client_id, const std::string& name) {
    auto p = current_primary();
    if (!p) return "(no primary)";
    raw_redis r(p->first, p->second);
    return r.get({"HGET", session_key(client_id), name});
  }
};

TEST_F(RedisSessionStore, CreateThenResumeReportsSessionPresent) {
  store_runner node("it-node-a");
  const auto id = unique_id("resume");
  auto first = node.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_FALSE(first->session_present);
  ASSERT_TRUE(node.disconnect(id, first->epoch, 3600, will_handling::discard));
  auto second = node.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(second->session_present);
  EXPECT_EQ(second->previous_node, "it-node-a");
  EXPECT_EQ(field(id, "state"), "c");
}

TEST_F(RedisSessionStore, EveryConnectBumpsTheEpoch) {
  store_runner node("it-node-a");
  const auto id = unique_id("epoch");
  std::uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = node.connect(id);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_GT(r->epoch, last);
    last = r->epoch;
  }
  EXPECT_EQ(field(id, "epoch"), std::to_string(last));
}

TEST_F(RedisSessionStore, CleanSessionIsDeletedOnDisconnect) {
  store_runner node("it-node-a");
  const auto id = unique_id("clean");
  auto r = node.connect(id, true, 0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(field(id, "node"), "it-node-a");
  ASSERT_TRUE(node.disconnect(id, r->epoch, 0));
  EXPECT_EQ(field(id, "epoch"), "(nil)");
}

TEST_F(RedisSessionStore, StaleEpochWriteIsRejectedAndChangesNothing) {
  store_runner a("it-node-a");
  store_runner b("it-node-b");
  const auto id = unique_id("fence");
  auto old_conn = a.connect(id);
  ASSERT_TRUE(old_conn) << old_conn.error().message();
  auto new_conn = b.connect(id);
  ASSERT_TRUE(new_conn) << new_conn.error().message();

  // Node a replays writes with the epoch it had before the takeover.
  EXPECT_EQ(a.qos2_hold(id, old_conn->epoch, 99), make_error_code(store_error::fenced));
  auto d = a.disconnect(id, old_conn->epoch, 0, will_handling::publish);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), make_error_code(store_error::fenced));
  auto rel = a.qos2_release(id, old_conn->epoch, 99);
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error(), make_error_code(store_error::fenced));

  EXPECT_EQ(field(id, "epoch"), std::to_string(new_conn->epoch));
  EXPECT_EQ(field(id, "node"), "it-node-b");
  EXPECT_EQ(field(id, "state"), "c");
  auto p = current_primary();
  ASSERT_TRUE(p);
  raw_redis r(p->first, p->second);
  EXPECT_EQ(r.get({"SISMEMBER", session_key(id) + ":q2", "99"}), "0");
}

TEST_F(RedisSessionStore, TakeoverNoticeReachesTheOtherNode) {
  store_runner a("it-node-a");
  store_runner b("it-node-b");
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::uint64_t>> notices;
  a.store().on_takeover(a.executor(), [&](std::string id, std::uint64_t epoch) {
    std::lock_guard lock(m);
    notices.emplace_back(std::move(id), epoch);
    cv.notify_all();
  });
  const auto id = unique_id("takeover");
  auto first = a.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  // Node a must be known alive (heartbeat) and subscribed before b connects.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto second = b.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(second->taken_over);
  EXPECT_EQ(second->previous_node, "it-node-a");
  EXPECT_TRUE(second->session_present);

  std::unique_lock lock(m);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !notices.empty(); }))
      << "node a never heard that it lost " << id;
  EXPECT_EQ(notices[0].first, id);
  EXPECT_EQ(notices[0].second, second->epoch);
}

TEST_F(RedisSessionStore, ConcurrentConnectsFromTwoNodesEndWithExactlyOneOwner) {
  store_runner a("it-node-a");
  store_runner b("it-node-b");
  const auto id = unique_id("race");
  constexpr int per_node = 20;
  std::mutex m;
  std::vector<std::pair<std::string, std::uint64_t>> won;  // node, epoch
  int done = 0;
  std::condition_variable cv;
  auto issue = [&](store_runner& r, const std::string& node) {
    connect_params p;
    p.clean_start = false;
    p.session_expiry_seconds = 3600;
    p.connection_id = node;
    r.store().connect(id, p, r.executor(), [&, node](boost::system::result<connect_result> res) {
      std::lock_guard lock(m);
      if (res) won.emplace_back(node, res->epoch);
      ++done;
      cv.notify_all();
    });
  };
  for (int i = 0; i < per_node; ++i) {
    issue(a, "it-node-a");
    issue(b, "it-node-b");
  }
  std::unique_lock lock(m);
  ASSERT_TRUE(cv.wait_for(lock, store_runner::hang_guard, [&] { return done == 2 * per_node; }));
  ASSERT_FALSE(won.empty());
  std::set<std::uint64_t> epochs;
  std::pair<std::string, std::uint64_t> last{"", 0};
  for (const auto& w : won) {
    EXPECT_TRUE(epochs.insert(w.second).second) << "epoch " << w.second << " handed out twice";
    if (w.second > last.second) last = w;
  }
  EXPECT_EQ(field(id, "epoch"), std::to_string(last.second));
  EXPECT_EQ(field(id, "node"), last.first);
  auto p = current_primary();
  ASSERT_TRUE(p);
  raw_redis r(p->first, p->second);
  const bool in_a = r.get({"SISMEMBER", key_prefix() + "node:it-node-a:sessions", id}) == "1";
  const bool in_b = r.get({"SISMEMBER", key_prefix() + "node:it-node-b:sessions", id}) == "1";
  EXPECT_NE(in_a, in_b) << "exactly one node must own " << id;
  EXPECT_EQ(in_a ? "it-node-a" : "it-node-b", last.first);
}

TEST_F(RedisSessionStore, ConnectSucceedsOnlyOnceAReplicaHoldsTheSession) {
  store_runner node("it-node-a");
  const auto id = unique_id("wait");
  auto r = node.connect(id);
  ASSERT_TRUE(r) << r.error().message();
  auto p = current_primary();
  ASSERT_TRUE(p);
  auto replicas = online_replicas(*p);
  ASSERT_FALSE(replicas.empty()) << "the stack must run replicas";
  int holding = 0;
  for (const auto& rep : replicas) {
    raw_redis c(rep.first, rep.second);
    if (c.get({"HGET", session_key(id), "epoch"}) == std::to_string(r->epoch)) ++holding;
  }
  EXPECT_GE(holding, 1) << "WAIT returned before any replica had the session";
}

TEST_F(RedisSessionStore, Qos2IdsHeldOnOneNodeAreSeenByTheNext) {
  store_runner a("it-node-a");
  store_runner b("it-node-b");
  const auto id = unique_id("qos2");
  auto first = a.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_FALSE(a.qos2_hold(id, first->epoch, 42));
  auto second = b.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->qos2_awaiting_pubrel, (std::vector<std::uint16_t>{42}));
  auto rel = b.qos2_release(id, second->epoch, 42);
  ASSERT_TRUE(rel);
  EXPECT_TRUE(*rel);
}

TEST_F(RedisSessionStore, SubscriptionsSurviveReconnect) {
  store_runner node("it-node-a");
  const auto id = unique_id("subs");
  auto first = node.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_FALSE(node.call_done([&](done_handler h) {
    node.store().store_subscriptions(id, first->epoch, {{"sensors/+/temp", 1, 0}, {"cmd/#", 0x25, 12}}, {},
                                     node.executor(), h);
  }));
  auto second = node.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  ASSERT_EQ(second->subscriptions.size(), 2u);
  std::map<std::string, subscription> by_filter;
  for (const auto& s : second->subscriptions) by_filter[s.filter] = s;
  EXPECT_EQ(by_filter["cmd/#"].options, 0x25);
  EXPECT_EQ(by_filter["cmd/#"].identifier, 12u);
  EXPECT_EQ(by_filter["sensors/+/temp"].options, 1);
}

TEST_F(RedisSessionStore, DelayedWillIsClaimedByExactlyOneNode) {
  store_runner a("it-node-a");
  store_runner b("it-node-b");
  const auto id = unique_id("will");
  auto r = a.connect(id, false, 600, will_message{"wills/" + id, "bye", 1, false, "", 1});
  ASSERT_TRUE(r) << r.error().message();
  auto d = a.disconnect(id, r->epoch, 600, will_handling::publish);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_FALSE(d->will_to_publish) << "a will with a delay is not due at disconnect";
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  // Both nodes keep sweeping (older due wills may be ahead in the queue);
  // the will must come out exactly once.
  int claimed = 0;
  for (int round = 0; round < 20 && (claimed == 0 || round < 4); ++round) {
    auto s = (round % 2 == 0 ? a : b).sweep();
    ASSERT_TRUE(s) << s.error().message();
    for (const auto& w : s->wills) {
      if (w.client_id != id) continue;
      ++claimed;
      EXPECT_EQ(w.will.topic, "wills/" + id);
      EXPECT_EQ(w.will.payload, "bye");
    }
  }
  EXPECT_EQ(claimed, 1);
}

TEST_F(RedisSessionStore, SessionOfACrashedNodeIsResumedWithItsWill) {
  auto cfg = store_runner::default_config();
  cfg.node_ttl = std::chrono::milliseconds(1000);
  const auto id = unique_id("crash");
  {
    store_runner dead("it-node-dead", cfg);
    auto r = dead.connect(id, false, 600, will_message{"wills/crash", "lost", 0, false, "", 0});
    ASSERT_TRUE(r) << r.error().message();
    dead.crash();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // heartbeat key expires
  store_runner b("it-node-b");
  auto r = b.connect(id);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->session_present);
  EXPECT_FALSE(r->taken_over) << "a dead node cannot be told to close";
  EXPECT_EQ(r->previous_node, "it-node-dead");
  ASSERT_TRUE(r->will_to_publish);
  EXPECT_EQ(r->will_to_publish->payload, "lost");
}

TEST_F(RedisSessionStore, SweepDisconnectsSessionsOfADeadNode) {
  auto cfg = store_runner::default_config();
  cfg.node_ttl = std::chrono::milliseconds(1000);
  const auto id = unique_id("reap");
  {
    store_runner dead("it-node-reaped", cfg);
    auto r = dead.connect(id, false, 600, will_message{"wills/reap", "reaped", 0, false, "", 0});
    ASSERT_TRUE(r) << r.error().message();
    dead.crash();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  store_runner b("it-node-b");
  bool found = false;
  std::uint32_t reaped = 0;
  for (int round = 0; round < 20 && !found; ++round) {
    auto s = b.sweep();
    ASSERT_TRUE(s) << s.error().message();
    reaped += s->reaped_nodes;
    for (const auto& w : s->wills) found = found || (w.client_id == id && w.will.payload == "reaped");
  }
  EXPECT_GE(reaped, 1u);
  EXPECT_TRUE(found) << "the dead node's will was not claimed";
  EXPECT_EQ(field(id, "state"), "d");
}

TEST_F(RedisSessionStore, ShutdownMarksSessionsDisconnectedAndDropsTheHeartbeat) {
  const auto id = unique_id("shutdown");
  store_runner a("it-node-shutdown");
  auto r = a.connect(id);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_FALSE(a.shutdown());
  EXPECT_EQ(field(id, "state"), "d");
  auto p = current_primary();
  ASSERT_TRUE(p);
  raw_redis raw(p->first, p->second);
  EXPECT_EQ(raw.get({"EXISTS", key_prefix() + "node:it-node-shutdown:alive"}), "0");
  auto after = a.connect(unique_id("after"));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), make_error_code(store_error::shutting_down));
}

TEST_F(RedisSessionStore, UnreachableRedisYieldsAnErrorNotAHang) {
  auto cfg = store_runner::default_config();
  cfg.url = "redis://127.0.0.1:1";
  cfg.command_timeout = std::chrono::milliseconds(500);
  store_runner node("it-node-nowhere", cfg);
  auto r = node.connect(unique_id("nowhere"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(store_error::unavailable));
}

TEST_F(RedisSessionStore, SilentRedisYieldsAnErrorNotAHang) {
  // A server that accepts and never answers.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::vector<boost::asio::ip::tcp::socket> held;
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      held.push_back(std::move(s));
      accept();
    });
  };
  accept();
  std::thread t([&] { io.run(); });
  auto cfg = store_runner::default_config();
  cfg.url = "redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  cfg.command_timeout = std::chrono::milliseconds(500);
  {
    store_runner node("it-node-silent", cfg);
    auto r = node.connect(unique_id("silent"));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error() == make_error_code(store_error::timeout) ||
                r.error() == make_error_code(store_error::unavailable))
        << r.error().message();
  }
  boost::asio::post(io, [&] {
    acceptor.close();
    held.clear();
  });
  t.join();
}

TEST_F(RedisSessionStore, TakeoverOnTheSameNodeNotifiesThatNode) {
  store_runner a("it-node-a");
  std::promise<std::pair<std::string, std::uint64_t>> notice;
  auto got = notice.get_future();
  std::once_flag once;
  a.store().on_takeover(a.executor(), [&](std::string id, std::uint64_t epoch) {
    std::call_once(once, [&] { notice.set_value({std::move(id), epoch}); });
  });
  const auto id = unique_id("local-takeover");
  auto first = a.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // takeover subscription in place
  auto second = a.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(second->taken_over);
  ASSERT_EQ(got.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "no takeover notice";
  auto [who, epoch] = got.get();
  EXPECT_EQ(who, id);
  EXPECT_EQ(epoch, second->epoch);
}

TEST_F(RedisSessionStore, SkipsASentinelThatDoesNotAnswer) {
  auto cfg = store_runner::default_config();
  cfg.url = "sentinel://127.0.0.1:1," + cfg.url.substr(std::string("sentinel://").size());
  store_runner node("it-node-a", cfg);
  auto r = node.connect(unique_id("dead-sentinel"));
  ASSERT_TRUE(r) << r.error().message();
}

TEST_F(RedisSessionStore, ReplicaAddressYieldsUnavailableNotAWriteToAReplica) {
  auto p = current_primary();
  ASSERT_TRUE(p);
  auto replicas = online_replicas(*p);
  ASSERT_FALSE(replicas.empty());
  auto cfg = store_runner::default_config();
  cfg.url = "redis://" + replicas[0].first + ":" + std::to_string(replicas[0].second);
  cfg.command_timeout = std::chrono::milliseconds(1000);
  store_runner node("it-node-replica", cfg);
  const auto id = unique_id("replica");
  auto r = node.connect(id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(store_error::unavailable));
  EXPECT_EQ(field(id, "epoch"), "(nil)");
}

// A private password-protected Redis on a free port, for AUTH.
class private_redis {
 public:
  explicit private_redis(const std::string& password) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port_ = probe.local_endpoint().port();
    probe.close();
    dir_ = "/tmp/wharf-redis-auth-" + std::to_string(port_);
    const std::string cmd = "mkdir -p " + dir_ + " && redis-server --bind 127.0.0.1 --port " + std::to_string(port_) +
                            " --requirepass " + password + " --save '' --appendonly no --daemonize yes --dir " + dir_ +
                            " --pidfile " + dir_ + "/redis.pid --logfile " + dir_ + "/redis.log";
    started_ = std::system(cmd.c_str()) == 0;
    for (int i = 0; i < 50 && started_; ++i) {
      raw_redis r("127.0.0.1", port_);
      if (r.ok() && !r.get({"PING"}).empty()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~private_redis() {
    const std::string cmd = "kill $(cat " + dir_ + "/redis.pid) 2>/dev/null; rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }
  bool started() const { return started_; }
  int port() const { return port_; }

 private:
  int port_ = 0;
  bool started_ = false;
  std::string dir_;
};

TEST_F(RedisSessionStore, AuthenticatesWithThePassword) {
  private_redis redis("s3cret-pw");
  ASSERT_TRUE(redis.started()) << "could not start redis-server";
  auto cfg = store_runner::default_config();
  cfg.url = "redis://127.0.0.1:" + std::to_string(redis.port());
  cfg.password = "s3cret-pw";
  cfg.wait_replicas = 0;  // no replicas here
  {
    store_runner node("it-node-auth", cfg);
    auto r = node.connect(unique_id("auth"));
    ASSERT_TRUE(r) << r.error().message();
  }
  cfg.password = "wrong";
  cfg.command_timeout = std::chrono::milliseconds(1000);
  store_runner wrong("it-node-auth-wrong", cfg);
  auto r = wrong.connect(unique_id("auth-wrong"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(store_error::unavailable));
}

TEST_F(RedisSessionStore, CleanStartDiscardsSubscriptionsAndQos2Ids) {
  store_runner node("it-node-a");
  const auto id = unique_id("clean-start");
  auto first = node.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_FALSE(node.qos2_hold(id, first->epoch, 3));
  ASSERT_FALSE(node.call_done([&](done_handler h) {
    node.store().store_subscriptions(id, first->epoch, {{"x/#", 1, 0}}, {}, node.executor(), h);
  }));
  ASSERT_TRUE(node.disconnect(id, first->epoch, 3600, will_handling::discard));
  auto second = node.connect(id, true, 3600);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_FALSE(second->session_present);
  EXPECT_TRUE(second->subscriptions.empty());
  EXPECT_TRUE(second->qos2_awaiting_pubrel.empty());
}

TEST_F(RedisSessionStore, SessionIsGoneAfterItsExpiryInterval) {
  store_runner node("it-node-a");
  const auto id = unique_id("expiry");
  auto first = node.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(node.disconnect(id, first->epoch, 1, will_handling::discard));
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  auto second = node.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_FALSE(second->session_present);
}

TEST_F(RedisSessionStore, SweepRemovesExpiredSessions) {
  store_runner node("it-node-a");
  const auto id = unique_id("sweep-expiry");
  auto first = node.connect(id);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(node.disconnect(id, first->epoch, 1, will_handling::discard));
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  std::uint32_t expired = 0;
  for (int round = 0; round < 20 && field(id, "epoch") != "(nil)"; ++round) {
    auto s = node.sweep();
    ASSERT_TRUE(s) << s.error().message();
    expired += s->expired_sessions;
  }
  EXPECT_GE(expired, 1u);
  EXPECT_EQ(field(id, "epoch"), "(nil)");
}

TEST_F(RedisSessionStore, AbnormalDisconnectReturnsAWillWithoutDelayNormalOneDiscardsIt) {
  store_runner node("it-node-a");
  const auto lost = unique_id("will-now");
  auto a =
      node.connect(lost, false, 600, will_message{"w/now", "p", 2, true, std::string("\x26\x00\x01k\x00\x01v", 7), 0});
  ASSERT_TRUE(a) << a.error().message();
  auto d = node.disconnect(lost, a->epoch, 600, will_handling::publish);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_TRUE(d->will_to_publish);
  EXPECT_EQ(d->will_to_publish->topic, "w/now");
  EXPECT_EQ(d->will_to_publish->qos, 2);
  EXPECT_TRUE(d->will_to_publish->retain);
  EXPECT_EQ(d->will_to_publish->properties, std::string("\x26\x00\x01k\x00\x01v", 7))
      << "properties are kept byte for byte";

  const auto normal = unique_id("will-discard");
  auto b = node.connect(normal, false, 600, will_message{"w/discard", "p", 0, false, "", 0});
  ASSERT_TRUE(b) << b.error().message();
  auto e = node.disconnect(normal, b->epoch, 600, will_handling::discard);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_FALSE(e->will_to_publish);
  EXPECT_EQ(field(normal, "w"), "(nil)");
}

TEST_F(RedisSessionStore, ReconnectBeforeTheWillDelayCancelsTheWill) {
  store_runner node("it-node-a");
  const auto id = unique_id("will-cancel");
  auto a = node.connect(id, false, 600, will_message{"w/cancel", "p", 0, false, "", 1});
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(node.disconnect(id, a->epoch, 600, will_handling::publish));
  auto b = node.connect(id);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_FALSE(b->will_to_publish);
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  auto s = node.sweep();
  ASSERT_TRUE(s) << s.error().message();
  for (const auto& w : s->wills) EXPECT_NE(w.client_id, id) << "a cancelled will was published";
}

TEST_F(RedisSessionStore, TakeoverHandsOverTheOldWillWithoutDelay) {
  store_runner a("it-node-a");
  store_runner b("it-node-b");
  const auto id = unique_id("will-takeover");
  auto first = a.connect(id, false, 600, will_message{"w/old", "old", 0, false, "", 0});
  ASSERT_TRUE(first) << first.error().message();
  auto second = b.connect(id);
  ASSERT_TRUE(second) << second.error().message();
  ASSERT_TRUE(second->will_to_publish);
  EXPECT_EQ(second->will_to_publish->payload, "old");
}

TEST_F(RedisSessionStore, CountsALapsedHeartbeat) {
  store_runner node("it-node-lapse");
  ASSERT_TRUE(node.connect(unique_id("lapse")));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // a few heartbeats
  {
    auto p = current_primary();
    ASSERT_TRUE(p);
    raw_redis r(p->first, p->second);
    ASSERT_EQ(r.get({"DEL", key_prefix() + "node:it-node-lapse:alive"}), "1");  // as if it had expired
  }
  double lapsed = 0;
  for (int i = 0; i < 40 && lapsed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& f : node.registry().Collect()) {
      if (f.name != "wharf_redis_errors_total") continue;
      for (const auto& m : f.metric) {
        if (m.label.at(0).value == "heartbeat_lapsed") lapsed = m.counter.value;
      }
    }
  }
  EXPECT_GE(lapsed, 1);
}

TEST_F(RedisSessionStore, FactoryBuildsARedisStoreFromTheSentinelUrl) {
  boost::asio::io_context io;
  prometheus::Registry registry;
  auto cfg = store_runner::default_config();
  auto store = make_session_store(cfg, "it-node-factory", io, registry);
  const auto id = unique_id("factory");
  std::optional<boost::system::result<connect_result>> got;
  std::optional<boost::system::error_code> stopped;
  connect_params p;
  p.clean_start = true;
  store->connect(id, p, io.get_executor(), [&](boost::system::result<connect_result> r) {
    got = std::move(r);
    store->shutdown(io.get_executor(), [&](boost::system::error_code ec) { stopped = ec; });
  });
  io.run_for(store_runner::hang_guard);
  ASSERT_TRUE(got.has_value()) << "connect did not complete";
  ASSERT_TRUE(*got) << got->error().message();
  ASSERT_TRUE(stopped.has_value());
  EXPECT_FALSE(*stopped);
  auto primary = current_primary();
  ASSERT_TRUE(primary);
  raw_redis r(primary->first, primary->second);
  EXPECT_EQ(r.get({"HGET", "wharf:s:{" + id + "}", "epoch"}), std::to_string((*got)->epoch))
      << "the factory's store keeps sessions under the wharf: prefix";
  store.reset();
}

TEST_F(RedisSessionStore, ReportsCommandLatencyAndSessionOutcomes) {
  store_runner node("it-node-a");
  const auto id = unique_id("metrics");
  ASSERT_TRUE(node.connect(id));
  ASSERT_TRUE(node.connect(id));
  std::map<std::string, double> sessions;
  double connect_samples = 0;
  for (const auto& f : node.registry().Collect()) {
    if (f.name == "wharf_sessions_total") {
      for (const auto& m : f.metric) sessions[m.label.at(0).value] = m.counter.value;
    }
    if (f.name == "wharf_redis_command_seconds") {
      for (const auto& m : f.metric) {
        if (m.label.at(0).value == "connect") connect_samples = static_cast<double>(m.histogram.sample_count);
      }
    }
  }
  EXPECT_EQ(sessions["created"], 1);
  EXPECT_EQ(sessions["taken_over"], 1);
  EXPECT_EQ(connect_samples, 2);
}

// Subscribers of this node's takeover channel on the primary.
int takeover_subscribers(const std::string& node) {
  auto p = current_primary();
  if (!p) return -1;
  raw_redis r(p->first, p->second);
  auto v = r.command({"PUBSUB", "NUMSUB", key_prefix() + "node:" + node});
  return v.size() == 2 ? std::stoi(v[1]) : -1;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

TEST_F(RedisSessionStore, TakeoverWhileTheOwnersSubscriptionIsDownIsFoundAfterResubscribing) {
  // A long heartbeat: the subscription comes back only at the next beat,
  // so the takeover below certainly happens while it is down.
  auto slow = store_runner::default_config();
  slow.heartbeat_interval = std::chrono::milliseconds(4000);
  slow.node_ttl = std::chrono::milliseconds(12000);
  const std::string node_a = unique_id("it-node-a");
  store_runner a(node_a, slow);
  store_runner b("it-node-b");
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::uint64_t>> notices;
  a.store().on_takeover(a.executor(), [&](std::string id, std::uint64_t epoch) {
    std::lock_guard lock(m);
    notices.emplace_back(std::move(id), epoch);
    cv.notify_all();
  });
  const auto lost = unique_id("missed-takeover");
  const auto kept = unique_id("kept");
  const auto ended = unique_id("ended");
  auto first = a.connect(lost);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(a.connect(kept));
  auto gone = a.connect(ended);
  ASSERT_TRUE(gone);
  ASSERT_TRUE(a.disconnect(ended, gone->epoch, 0));  // a's own disconnect: no notice due
  ASSERT_TRUE(eventually([&] { return takeover_subscribers(node_a) == 1; }, std::chrono::seconds(10)))
      << "node a never subscribed to its takeover channel";

  // Cut node a's subscription (the Sentinels' connections carry names).
  {
    auto p = current_primary();
    ASSERT_TRUE(p);
    raw_redis r(p->first, p->second);
    std::istringstream list(r.get({"CLIENT", "LIST", "TYPE", "pubsub"}));
    for (std::string line; std::getline(list, line);) {
      if (line.find(" name= ") == std::string::npos) continue;
      r.command({"CLIENT", "KILL", "ID", line.substr(3, line.find(' ') - 3)});
    }
  }
  ASSERT_TRUE(eventually([&] { return takeover_subscribers(node_a) == 0; }, std::chrono::seconds(5)));
  auto second = b.connect(lost);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(second->taken_over) << "node a is alive: its notice was published";
  ASSERT_EQ(takeover_subscribers(node_a), 0) << "the notice must have been published to nobody";

  std::unique_lock lock(m);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(15), [&] { return !notices.empty(); }))
      << "node a never learnt that it lost " << lost << " while its subscription was down";
  EXPECT_EQ(notices[0].first, lost);
  EXPECT_EQ(notices[0].second, second->epoch);
  lock.unlock();
  // Nothing else: the session it still owns and the one it ended itself.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  lock.lock();
  EXPECT_EQ(notices.size(), 1u);
  double missed = 0;
  for (const auto& f : a.registry().Collect())
    if (f.name == "wharf_redis_errors_total")
      for (const auto& mt : f.metric)
        if (mt.label.at(0).value == "takeover_missed") missed = mt.counter.value;
  EXPECT_EQ(missed, 1);
}

TEST_F(RedisSessionStore, HealthTellsWhetherThereIsAPrimary) {
  store_runner up("it-node-a");
  ASSERT_TRUE(up.connect(unique_id("health")));
  EXPECT_TRUE(up.store().health().has_primary);
  auto cfg = store_runner::default_config();
  cfg.url = "redis://127.0.0.1:1";
  const auto before = std::chrono::steady_clock::now();
  store_runner down("it-node-down", cfg);
  EXPECT_FALSE(down.connect(unique_id("health")));
  auto h = down.store().health();
  EXPECT_FALSE(h.has_primary);
  EXPECT_GE(h.no_primary_since + std::chrono::milliseconds(1), before);
  EXPECT_LE(h.no_primary_since, std::chrono::steady_clock::now());
}

}  // namespace
}  // namespace wharf::state::testing
