#include "sinks/local_log/forwarder.h"
#include "sinks/local_log/local_log_sink.h"
#include "tests/unit/sinks/test_executor.h"

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace wharf::sinks::local_log {
namespace {

namespace fs = std::filesystem;
using test::make_record;
using test::run_until;

// An in-memory target: stores what it is given, and can fail chosen
// submissions (by their count) as retryable or permanent, or refuse with
// queue_full every few submissions.
class recording_sink final : public sink {
 public:
  submit_status submit(record rec, boost::asio::any_io_executor ex, completion done) override {
    std::lock_guard lk(mu_);
    const int n = submissions_++;
    if (refuse_every_ > 0 && n % refuse_every_ == refuse_every_ - 1 && !refused_last_) {
      refused_last_ = true;
      return submit_status::queue_full;
    }
    refused_last_ = false;
    delivery_result r{delivery_status::stored, {}, delivery_result::cause::none};
    if (fail_retryable_.count(rec.value) && !failed_once_.count(rec.value)) {
      failed_once_.insert(rec.value);
      r = {delivery_status::failed_retryable, "test outage", delivery_result::cause::none};
    } else if (fail_permanent_.count(rec.value)) {
      r = {delivery_status::failed_permanent, "test too large", delivery_result::cause::too_large};
    } else {
      stored_.push_back(rec.value);
    }
    boost::asio::post(ex, [done = std::move(done), r]() mutable { done(std::move(r)); });
    return submit_status::accepted;
  }
  void async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) override {
    boost::asio::post(ex, std::move(ready));
  }
  sink_health health() const override { return {}; }
  void shutdown(std::chrono::milliseconds) override {}
  std::string_view name() const noexcept override { return "recording"; }

  std::vector<std::string> stored() {
    std::lock_guard lk(mu_);
    return stored_;
  }
  void fail_once_retryable(std::string value) { fail_retryable_.insert(std::move(value)); }
  void fail_permanent(std::string value) { fail_permanent_.insert(std::move(value)); }
  void refuse_every(int n) { refuse_every_ = n; }

 private:
  std::mutex mu_;
  int submissions_ = 0;
  int refuse_every_ = 0;
  bool refused_last_ = false;
  std::set<std::string> fail_retryable_, failed_once_, fail_permanent_;
  std::vector<std::string> stored_;
};

class Forwarder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wharf-forwarder-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    open_log();
  }
  void TearDown() override {
    log_.reset();
    fs::remove_all(dir_);
  }
  void open_log() {
    local_log_options o;
    o.dir = dir_.string();
    auto r = local_log_sink::open(o, registry_);
    ASSERT_TRUE(r.has_value());
    log_ = std::move(*r);
  }
  void write(int from, int to) {
    std::atomic<int> done{0};
    for (int i = from; i < to; ++i)
      ASSERT_EQ(log_->submit(make_record("t", "k", "m" + std::to_string(i)), io_.get_executor(),
                             [&](delivery_result) { ++done; }),
                submit_status::accepted);
    ASSERT_TRUE(run_until(io_, [&] { return done.load() == to - from; }));
  }
  forwarder_options fast() {
    forwarder_options o;
    o.retry_backoff = std::chrono::milliseconds(10);
    o.cursor_interval = std::chrono::milliseconds(5);
    return o;
  }
  static bool wait_for(const std::function<bool()>& cond) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!cond() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return cond();
  }
  static std::vector<std::string> expected(int from, int to) {
    std::vector<std::string> v;
    for (int i = from; i < to; ++i) v.push_back("m" + std::to_string(i));
    return v;
  }

  fs::path dir_;
  prometheus::Registry registry_;
  boost::asio::io_context io_;
  std::unique_ptr<local_log_sink> log_;
};

TEST_F(Forwarder, ForwardsEveryRecordInOrderAndAdvancesTheCursorToTheEnd) {
  recording_sink target;
  write(0, 50);
  forwarder fwd(*log_, target, fast(), registry_);
  ASSERT_TRUE(fwd.start().has_value());
  write(50, 100);
  ASSERT_TRUE(wait_for([&] { return fwd.cursor() == 100; }));
  EXPECT_EQ(target.stored(), expected(0, 100));
  auto c = read_cursor_file((dir_ / "forwarder.cursor").string());
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ(**c, 100u);
}

TEST_F(Forwarder, RestartResumesAtTheDurableCursor) {
  write(0, 30);
  {
    recording_sink first;
    forwarder fwd(*log_, first, fast(), registry_);
    ASSERT_TRUE(fwd.start().has_value());
    ASSERT_TRUE(wait_for([&] { return fwd.cursor() == 30; }));
    fwd.stop();
  }
  write(30, 40);
  recording_sink second;
  forwarder fwd(*log_, second, fast(), registry_);
  ASSERT_TRUE(fwd.start().has_value());
  ASSERT_TRUE(wait_for([&] { return fwd.cursor() == 40; }));
  EXPECT_EQ(second.stored(), expected(30, 40));
}

TEST_F(Forwarder, RetryableFailureResendsFromTheFirstUnstoredRecordKeepingOrder) {
  recording_sink target;
  target.fail_once_retryable("m5");
  write(0, 20);
  forwarder fwd(*log_, target, fast(), registry_);
  ASSERT_TRUE(fwd.start().has_value());
  ASSERT_TRUE(wait_for([&] { return fwd.cursor() == 20; }));
  const auto got = target.stored();
  // m0..m4 once, then (possibly some of m6.. before the failure was seen),
  // then m5..m19 in order: the tail from m5 on is complete and ordered.
  auto it = std::find(got.begin(), got.end(), "m5");
  ASSERT_NE(it, got.end());
  EXPECT_EQ(std::vector<std::string>(it, got.end()), expected(5, 20));
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.begin() + 5), expected(0, 5));
}

TEST_F(Forwarder, PermanentFailureIsSteppedOverAndCounted) {
  recording_sink target;
  target.fail_permanent("m3");
  write(0, 6);
  forwarder fwd(*log_, target, fast(), registry_);
  ASSERT_TRUE(fwd.start().has_value());
  ASSERT_TRUE(wait_for([&] { return fwd.cursor() == 6; }));
  EXPECT_EQ(target.stored(), (std::vector<std::string>{"m0", "m1", "m2", "m4", "m5"}));
}

TEST_F(Forwarder, QueueFullFromTheTargetLosesNothing) {
  recording_sink target;
  target.refuse_every(3);
  write(0, 60);
  forwarder fwd(*log_, target, fast(), registry_);
  ASSERT_TRUE(fwd.start().has_value());
  ASSERT_TRUE(wait_for([&] { return fwd.cursor() == 60; }));
  EXPECT_EQ(target.stored(), expected(0, 60));
}

TEST(ForwarderCursor, WritesAtomicallyAndReadsBack) {
  const auto dir = fs::temp_directory_path() / ("wharf-cursor-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto path = (dir / "c").string();
  auto missing = read_cursor_file(path);
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
  std::string err;
  ASSERT_TRUE(write_cursor_file(path, 12345678901ull, err)) << err;
  ASSERT_TRUE(write_cursor_file(path, 42, err)) << err;
  auto c = read_cursor_file(path);
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ(**c, 42u);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  fs::remove_all(dir);
}

TEST(ForwarderCursor, GarbageFileIsAnErrorNamingTheFile) {
  const auto path = (fs::temp_directory_path() / ("wharf-cursor-bad-" + std::to_string(::getpid()))).string();
  std::ofstream(path) << "not a cursor";
  auto c = read_cursor_file(path);
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().find(path), std::string::npos);
  fs::remove(path);
}

}  // namespace
}  // namespace wharf::sinks::local_log
