// The local log forwarder replaying into the real Kafka sink: everything in
// the log reaches Kafka in order, and a restarted forwarder resumes from its
// cursor (duplicates allowed, loss not).
#include "sinks/kafka/kafka_sink.h"
#include "sinks/local_log/forwarder.h"
#include "sinks/local_log/local_log_sink.h"
#include "tests/integration/kafka_sink_test_support.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace wharf::sinks::local_log {
namespace {

namespace fs = std::filesystem;
namespace kt = kafka_test;

class LocalLogForwarderKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    WHARF_REQUIRE_KAFKA(1);
    dir_ = (fs::temp_directory_path() / ("wharf-wal-kafka-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    std::string why;
    const int brokers = kt::broker_count(why);
    topic_ = kt::unique_name("wharf.test.wal");
    ASSERT_TRUE(kt::create_topic(topic_, 3, brokers >= 3 ? 3 : 1, brokers >= 3 ? 2 : 1, why)) << why;
    local_log_options o;
    o.dir = dir_;
    auto log = local_log_sink::open(o, registry_);
    ASSERT_TRUE(log.has_value()) << log.error();
    log_ = std::move(*log);
    config::kafka_config c;
    c.brokers = kt::brokers();
    c.check_topics = false;
    auto k = kafka::kafka_sink::create(c, {topic_}, registry_);
    ASSERT_TRUE(k.has_value()) << k.error();
    kafka_ = std::move(*k);
    runner_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (kafka_) kafka_->shutdown(std::chrono::seconds(5));
    if (log_) log_->shutdown(std::chrono::seconds(5));
    work_.reset();
    if (runner_.joinable()) runner_.join();
    fs::remove_all(dir_);
  }

  void write(int from, int to) {
    std::atomic<int> stored{0};
    for (int i = from; i < to; ++i) {
      record r;
      r.topic = topic_;
      r.key = "dev-" + std::to_string(i % 7);
      r.value = std::to_string(i);
      r.headers = {{"ce_id", "wal-" + std::to_string(i)}};
      ASSERT_EQ(log_->submit(r, io_.get_executor(),
                             [&](delivery_result res) {
                               if (res.stored()) ++stored;
                             }),
                submit_status::accepted);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (stored.load() < to - from && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(stored.load(), to - from);
  }

  static bool wait_cursor(forwarder& f, std::uint64_t want) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (f.cursor() < want && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return f.cursor() == want;
  }

  std::string dir_, topic_;
  prometheus::Registry registry_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread runner_;
  std::unique_ptr<local_log_sink> log_;
  std::unique_ptr<kafka::kafka_sink> kafka_;
};

TEST_F(LocalLogForwarderKafka, ReplaysTheLogIntoKafkaInOrderAndResumesFromTheCursor) {
  write(0, 1000);
  {
    forwarder f(*log_, *kafka_, {}, registry_);
    ASSERT_TRUE(f.start().has_value());
    ASSERT_TRUE(wait_cursor(f, 1000)) << "cursor at " << f.cursor();
    f.stop();
  }
  write(1000, 1500);
  forwarder f(*log_, *kafka_, {}, registry_);
  ASSERT_TRUE(f.start().has_value());
  ASSERT_TRUE(wait_cursor(f, 1500)) << "cursor at " << f.cursor();
  f.stop();

  const auto got = kt::consume_all(topic_, 1500);
  std::set<int> seen;
  std::map<std::string, int> last_per_key;
  for (const auto& c : got) {
    const int v = std::stoi(c.value);
    EXPECT_EQ(c.header_value("ce_id"), "wal-" + std::to_string(v));
    if (!seen.insert(v).second) continue;  // a replayed duplicate
    auto it = last_per_key.find(c.key);
    if (it != last_per_key.end()) {
      EXPECT_GT(v, it->second) << "key " << c.key << " out of order";
    }
    last_per_key[c.key] = v;
  }
  EXPECT_EQ(seen.size(), 1500u) << "records of the log missing in Kafka";
}

}  // namespace
}  // namespace wharf::sinks::local_log
