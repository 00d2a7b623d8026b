// Kill the Redis primary (SIGKILL through scripts/stack) while sessions are
// being created; Sentinel promotes a replica. Every connect that succeeded
// must be on the new primary, every connect that did not must have failed
// cleanly (no hang), and the store must follow the new primary by itself.
// The killed Redis is restarted (as a replica) at the end.
#include "tests/integration/redis_session_test_support.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace wharf::state::testing {
namespace {

struct outcome {
  std::string client_id;
  bool ok = false;
  std::uint64_t epoch = 0;
  boost::system::error_code error;
  bool started_after_kill = false;
  std::chrono::milliseconds took{};
};

TEST(RedisSessionFailover, AcknowledgedSessionsSurviveKillingThePrimary) {
  require_stack();
  if (::testing::Test::HasFatalFailure()) return;
  const auto old_primary = *current_primary();
  const std::string victim = stack_redis_name(old_primary.second);
  ASSERT_FALSE(victim.empty()) << "primary port " << old_primary.second << " is not one of the stack's";
  ASSERT_GE(online_replicas(old_primary).size(), 2u) << "the stack must start with two replicas";

  auto cfg = store_runner::default_config();
  cfg.command_timeout = std::chrono::milliseconds(2000);
  cfg.wait_timeout = std::chrono::milliseconds(500);
  store_runner node("fault-node", cfg);
  const auto run = unique_id("failover");

  std::atomic<bool> killed{false};
  std::atomic<bool> stop{false};
  std::atomic<int> ok_after_kill{0};
  std::mutex m;
  std::vector<outcome> outcomes;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        outcome o;
        o.client_id = run + "-" + std::to_string(w) + "-" + std::to_string(i);
        o.started_after_kill = killed;
        const auto t0 = std::chrono::steady_clock::now();
        auto r = node.connect(o.client_id);
        o.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        if (r) {
          o.ok = true;
          o.epoch = r->epoch;
          if (o.started_after_kill) ++ok_after_kill;
        } else {
          o.error = r.error();
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::lock_guard lock(m);
        outcomes.push_back(std::move(o));
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  restore_stack restore;
  {
    const int rc = run_stack("kill redis-primary");
    killed = true;
    if (rc == 0) restore.names = victim;
    EXPECT_EQ(rc, 0) << stack_script() << " kill redis-primary failed";
  }
  // Run until the store has written through the new primary for a while.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ok_after_kill < 50 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& t : workers) t.join();

  ASSERT_GE(ok_after_kill.load(), 50) << "the store did not follow the new primary within 60 s";
  const auto new_primary = current_primary();
  ASSERT_TRUE(new_primary);
  EXPECT_NE(*new_primary, old_primary) << "Sentinel did not promote a replica";

  std::size_t ok = 0, failed = 0, missing = 0;
  std::chrono::milliseconds slowest{0};
  raw_redis primary(new_primary->first, new_primary->second);
  for (const auto& o : outcomes) {
    slowest = std::max(slowest, o.took);
    if (!o.ok) {
      ++failed;
      EXPECT_TRUE(o.error == make_error_code(store_error::unavailable) ||
                  o.error == make_error_code(store_error::timeout) ||
                  o.error == make_error_code(store_error::not_replicated))
          << o.client_id << ": " << o.error.message();
      continue;
    }
    ++ok;
    if (primary.get({"HGET", session_key(o.client_id), "epoch"}) != std::to_string(o.epoch)) {
      ++missing;
      ADD_FAILURE() << o.client_id << " was acknowledged with epoch " << o.epoch
                    << " but the new primary does not hold it";
    }
  }
  EXPECT_EQ(missing, 0u);
  double master_changes = 0;
  for (const auto& f : node.registry().Collect()) {
    if (f.name == "wharf_redis_master_changes_total" && !f.metric.empty()) master_changes = f.metric[0].counter.value;
  }
  EXPECT_GE(master_changes, 1);
  std::cout << "connects: " << ok << " acknowledged, " << failed << " failed cleanly during the failover, slowest "
            << slowest.count() << " ms; primary " << old_primary.second << " -> " << new_primary->second << "\n";
}

}  // namespace
}  // namespace wharf::state::testing
