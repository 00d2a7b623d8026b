#include "state/memory/memory_session_store.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

namespace wharf::state {
namespace {

class MemorySessionStore : public ::testing::Test {
 protected:
  template <class T, class Start>
  boost::system::result<T> wait(Start start) {
    std::optional<boost::system::result<T>> out;
    start([&](boost::system::result<T> r) { out = std::move(r); });
    io.restart();
    io.run();
    EXPECT_TRUE(out.has_value()) << "the handler did not fire";
    return out ? std::move(*out) : boost::system::result<T>(store_error::timeout);
  }

  boost::system::error_code wait_done(std::function<void(done_handler)> start) {
    std::optional<boost::system::error_code> out;
    start([&](boost::system::error_code ec) { out = ec; });
    io.restart();
    io.run();
    EXPECT_TRUE(out.has_value()) << "the handler did not fire";
    return out.value_or(store_error::timeout);
  }

  boost::system::result<connect_result> connect(const std::string& id, connect_params p) {
    return wait<connect_result>([&](handler<connect_result> h) { store.connect(id, p, io.get_executor(), h); });
  }
  boost::system::result<connect_result> connect_persistent(const std::string& id) {
    return connect(id, params(false, 3600));
  }
  boost::system::result<disconnect_result> disconnect(const std::string& id, std::uint64_t epoch, std::uint32_t expiry,
                                                      will_handling w) {
    return wait<disconnect_result>([&](handler<disconnect_result> h) {
      store.disconnect(id, epoch, {expiry, w}, io.get_executor(), h);
    });
  }
  boost::system::error_code hold(const std::string& id, std::uint64_t epoch, std::uint16_t pid) {
    return wait_done([&](done_handler h) { store.qos2_hold(id, epoch, pid, io.get_executor(), h); });
  }
  boost::system::result<bool> release(const std::string& id, std::uint64_t epoch, std::uint16_t pid) {
    return wait<bool>([&](handler<bool> h) { store.qos2_release(id, epoch, pid, io.get_executor(), h); });
  }
  boost::system::result<sweep_result> sweep() {
    return wait<sweep_result>([&](handler<sweep_result> h) { store.poll_due_wills(io.get_executor(), h); });
  }
  static connect_params params(bool clean_start, std::uint32_t expiry, std::optional<will_message> w = std::nullopt) {
    connect_params p;
    p.clean_start = clean_start;
    p.session_expiry_seconds = expiry;
    p.will = std::move(w);
    p.connection_id = "conn";
    return p;
  }
  static will_message will(std::uint32_t delay) { return {"last/will", "gone", 1, false, "", delay}; }

  boost::asio::io_context io;
  prometheus::Registry registry;
  std::int64_t now = 1'700'000'000'000;
  memory_session_store store{"node-a", io.get_executor(), registry, [this] { return now; }};
};

TEST_F(MemorySessionStore, NewSessionIsNotPresent) {
  auto r = connect_persistent("dev1");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->session_present);
  EXPECT_GT(r->epoch, 0u);
  EXPECT_FALSE(r->taken_over);
  EXPECT_EQ(r->previous_node, "");
}

TEST_F(MemorySessionStore, ResumedSessionIsPresentWithHigherEpoch) {
  auto first = connect_persistent("dev1");
  ASSERT_TRUE(first);
  ASSERT_TRUE(disconnect("dev1", first->epoch, 3600, will_handling::discard));
  auto second = connect_persistent("dev1");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->session_present);
  EXPECT_GT(second->epoch, first->epoch);
  EXPECT_FALSE(second->taken_over);
  EXPECT_EQ(second->previous_node, "node-a");
}

TEST_F(MemorySessionStore, CleanStartDiscardsStoredState) {
  auto first = connect_persistent("dev1");
  ASSERT_TRUE(first);
  ASSERT_FALSE(hold("dev1", first->epoch, 7));
  ASSERT_FALSE(wait_done([&](done_handler h) {
    store.store_subscriptions("dev1", first->epoch, {{"a/#", 1, 0}}, {}, io.get_executor(), h);
  }));
  ASSERT_TRUE(disconnect("dev1", first->epoch, 3600, will_handling::discard));
  auto second = connect("dev1", params(true, 0));
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->session_present);
  EXPECT_TRUE(second->qos2_awaiting_pubrel.empty());
  EXPECT_TRUE(second->subscriptions.empty());
}

TEST_F(MemorySessionStore, SecondConnectTakesOverAndNotifiesWithNewEpoch) {
  std::vector<std::pair<std::string, std::uint64_t>> notices;
  store.on_takeover(io.get_executor(), [&](std::string id, std::uint64_t e) { notices.emplace_back(id, e); });
  auto first = connect_persistent("dev1");
  ASSERT_TRUE(first);
  auto second = connect_persistent("dev1");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->taken_over);
  EXPECT_TRUE(second->session_present);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].first, "dev1");
  EXPECT_EQ(notices[0].second, second->epoch);
}

TEST_F(MemorySessionStore, StaleEpochWritesAreFencedAndChangeNothing) {
  auto old_conn = connect_persistent("dev1");
  auto new_conn = connect_persistent("dev1");
  ASSERT_TRUE(old_conn && new_conn);
  EXPECT_EQ(hold("dev1", old_conn->epoch, 5), make_error_code(store_error::fenced));
  auto rel = release("dev1", old_conn->epoch, 5);
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error(), make_error_code(store_error::fenced));
  auto d = disconnect("dev1", old_conn->epoch, 0, will_handling::publish);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), make_error_code(store_error::fenced));
  // The newer connection still owns a live session without packet id 5.
  EXPECT_EQ(store.size(), 1u);
  auto held = release("dev1", new_conn->epoch, 5);
  ASSERT_TRUE(held);
  EXPECT_FALSE(*held);
}

TEST_F(MemorySessionStore, Qos2IdsSurviveReconnectUntilReleased) {
  auto first = connect_persistent("dev1");
  ASSERT_TRUE(first);
  ASSERT_FALSE(hold("dev1", first->epoch, 10));
  ASSERT_FALSE(hold("dev1", first->epoch, 11));
  ASSERT_TRUE(disconnect("dev1", first->epoch, 3600, will_handling::publish));
  auto second = connect_persistent("dev1");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->qos2_awaiting_pubrel, (std::vector<std::uint16_t>{10, 11}));
  auto r = release("dev1", second->epoch, 10);
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  auto again = release("dev1", second->epoch, 10);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

TEST_F(MemorySessionStore, SubscriptionsAreStoredReplacedAndRemoved) {
  auto first = connect_persistent("dev1");
  ASSERT_TRUE(first);
  ASSERT_FALSE(wait_done([&](done_handler h) {
    store.store_subscriptions("dev1", first->epoch, {{"a/+", 1, 0}, {"b/#", 2, 7}}, {}, io.get_executor(), h);
  }));
  ASSERT_FALSE(wait_done([&](done_handler h) {
    store.store_subscriptions("dev1", first->epoch, {{"b/#", 0, 9}}, {"a/+"}, io.get_executor(), h);
  }));
  auto second = connect_persistent("dev1");
  ASSERT_TRUE(second);
  ASSERT_EQ(second->subscriptions.size(), 1u);
  EXPECT_EQ(second->subscriptions[0].filter, "b/#");
  EXPECT_EQ(second->subscriptions[0].options, 0);
  EXPECT_EQ(second->subscriptions[0].identifier, 9u);
}

TEST_F(MemorySessionStore, DisconnectWithZeroExpiryDeletesTheSession) {
  auto r = connect("dev1", params(true, 0));
  ASSERT_TRUE(r);
  ASSERT_TRUE(disconnect("dev1", r->epoch, 0, will_handling::discard));
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(MemorySessionStore, DisconnectedSessionLivesUntilItsExpiryInterval) {
  auto r = connect_persistent("dev1");
  ASSERT_TRUE(r);
  ASSERT_TRUE(disconnect("dev1", r->epoch, 10, will_handling::discard));
  now += 9'000;
  auto back = connect_persistent("dev1");
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->session_present);
  ASSERT_TRUE(disconnect("dev1", back->epoch, 10, will_handling::discard));
  now += 10'000;
  auto late = connect_persistent("dev1");
  ASSERT_TRUE(late);
  EXPECT_FALSE(late->session_present);
}

TEST_F(MemorySessionStore, SweepRemovesExpiredSessions) {
  auto r = connect_persistent("dev1");
  ASSERT_TRUE(r);
  ASSERT_TRUE(disconnect("dev1", r->epoch, 5, will_handling::discard));
  auto early = sweep();
  ASSERT_TRUE(early);
  EXPECT_EQ(early->expired_sessions, 0u);
  now += 5'000;
  auto s = sweep();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->expired_sessions, 1u);
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(MemorySessionStore, WillWithoutDelayIsReturnedByAbnormalDisconnect) {
  auto r = connect("dev1", params(false, 60, will(0)));
  ASSERT_TRUE(r);
  auto d = disconnect("dev1", r->epoch, 60, will_handling::publish);
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->will_to_publish);
  EXPECT_EQ(d->will_to_publish->topic, "last/will");
  auto s = sweep();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->wills.empty()) << "a claimed will must not be published twice";
}

TEST_F(MemorySessionStore, NormalDisconnectDiscardsTheWill) {
  auto r = connect("dev1", params(false, 60, will(5)));
  ASSERT_TRUE(r);
  auto d = disconnect("dev1", r->epoch, 60, will_handling::discard);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->will_to_publish);
  now += 120'000;
  auto s = sweep();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->wills.empty());
}

TEST_F(MemorySessionStore, DelayedWillIsClaimedOnceAfterTheDelay) {
  auto r = connect("dev1", params(false, 600, will(30)));
  ASSERT_TRUE(r);
  auto d = disconnect("dev1", r->epoch, 600, will_handling::publish);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->will_to_publish);
  now += 29'000;
  auto early = sweep();
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->wills.empty());
  now += 1'000;
  auto due = sweep();
  ASSERT_TRUE(due);
  ASSERT_EQ(due->wills.size(), 1u);
  EXPECT_EQ(due->wills[0].client_id, "dev1");
  auto again = sweep();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->wills.empty());
}

TEST_F(MemorySessionStore, WillIsDueWhenSessionExpiresBeforeTheDelay) {
  auto r = connect("dev1", params(false, 10, will(300)));
  ASSERT_TRUE(r);
  ASSERT_TRUE(disconnect("dev1", r->epoch, 10, will_handling::publish));
  now += 10'000;
  auto s = sweep();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->wills.size(), 1u);
  EXPECT_EQ(s->expired_sessions, 1u);
}

TEST_F(MemorySessionStore, ReconnectBeforeWillDelayCancelsTheWill) {
  auto r = connect("dev1", params(false, 600, will(30)));
  ASSERT_TRUE(r);
  ASSERT_TRUE(disconnect("dev1", r->epoch, 600, will_handling::publish));
  now += 10'000;
  auto back = connect_persistent("dev1");
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->will_to_publish);
  now += 60'000;
  auto s = sweep();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->wills.empty());
}

TEST_F(MemorySessionStore, TakeoverPublishesTheOldWillWithoutDelay) {
  auto r = connect("dev1", params(false, 600, will(0)));
  ASSERT_TRUE(r);
  auto next = connect_persistent("dev1");
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->will_to_publish);
  EXPECT_EQ(next->will_to_publish->payload, "gone");
}

TEST_F(MemorySessionStore, ShutdownDisconnectsSessionsAndRefusesLaterCalls) {
  auto r = connect("dev1", params(false, 600, will(0)));
  ASSERT_TRUE(r);
  EXPECT_FALSE(wait_done([&](done_handler h) { store.shutdown(io.get_executor(), h); }));
  auto after = connect_persistent("dev2");
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), make_error_code(store_error::shutting_down));
}

TEST_F(MemorySessionStore, CountsSessionOutcomesInMetrics) {
  auto a = connect_persistent("dev1");
  auto b = connect_persistent("dev1");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(disconnect("dev1", b->epoch, 3600, will_handling::discard));
  ASSERT_TRUE(connect_persistent("dev1"));
  std::map<std::string, double> seen;
  for (const auto& family : registry.Collect()) {
    if (family.name != "wharf_sessions_total") continue;
    for (const auto& m : family.metric) seen[m.label.at(0).value] = m.counter.value;
  }
  EXPECT_EQ(seen["created"], 1);
  EXPECT_EQ(seen["taken_over"], 1);
  EXPECT_EQ(seen["resumed"], 1);
}

}  // namespace
}  // namespace wharf::state
