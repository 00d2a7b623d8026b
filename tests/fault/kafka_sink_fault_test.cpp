// The Kafka sink under continuous load while brokers of
// `scripts/stack up --brokers 3` (RF 3, min.insync.replicas 2) are killed and
// stopped. The promise under test: every record reported stored is in Kafka,
// per-key order holds, nothing is reported stored while it cannot be, memory
// stays bounded, and the flow resumes by itself. Every test restores the
// brokers it took down.
#include "sinks/kafka/kafka_sink.h"
#include "tests/integration/kafka_sink_test_support.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <deque>
#include <optional>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace wharf::sinks::kafka {
namespace {

namespace kt = kafka_test;
using steady = std::chrono::steady_clock;

// Submits records "key:seq" for `keys` keys at about `rate` records/s until
// stopped, honouring back-pressure, and remembers every outcome.
class load_generator {
 public:
  struct entry {
    std::string key;
    int seq = 0;
    steady::time_point submitted{};
    steady::time_point completed{};
    std::optional<delivery_result> result;
  };

  load_generator(sink& s, boost::asio::any_io_executor ex, std::string topic, int keys, int rate)
      : sink_(s), ex_(std::move(ex)), topic_(std::move(topic)), keys_(keys), rate_(rate) {}
  ~load_generator() { stop(); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool wait_all_done(std::chrono::seconds limit) {
    const auto until = steady::now() + limit;
    while (steady::now() < until) {
      {
        std::lock_guard lk(mu_);
        if (done_ == entries_.size()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // Stored completions that arrived in [from, to).
  int stored_between(steady::time_point from, steady::time_point to) {
    std::lock_guard lk(mu_);
    int n = 0;
    for (const auto& e : entries_)
      if (e.result && e.result->stored() && e.completed >= from && e.completed < to) ++n;
    return n;
  }
  // True once a record submitted at or after `t` was stored.
  bool stored_after(steady::time_point t) {
    std::lock_guard lk(mu_);
    for (auto it = entries_.rbegin(); it != entries_.rend() && it->submitted >= t; ++it)
      if (it->result && it->result->stored()) return true;
    return false;
  }
  std::vector<entry> snapshot() {
    std::lock_guard lk(mu_);
    return {entries_.begin(), entries_.end()};
  }
  std::size_t queue_full_count() const { return queue_full_.load(); }

 private:
  void run() {
    std::vector<int> next_seq(static_cast<std::size_t>(keys_), 0);
    const auto period = std::chrono::microseconds(1000000 / rate_);
    auto next_time = steady::now();
    for (int i = 0; !stopping_; ++i) {
      const int k = i % keys_;
      record r;
      r.topic = topic_;
      r.key = "key-" + std::to_string(k);
      const int seq = next_seq[static_cast<std::size_t>(k)];
      r.value = r.key + ":" + std::to_string(seq);
      r.value.resize(200, '.');
      std::size_t index;
      {
        std::lock_guard lk(mu_);
        index = entries_.size();
        entries_.push_back(entry{r.key, seq, steady::now(), {}, {}});
      }
      for (;;) {
        const auto st = sink_.submit(r, ex_, [this, index](delivery_result res) {
          std::lock_guard lk(mu_);
          entries_[index].completed = steady::now();
          entries_[index].result = std::move(res);
          ++done_;
        });
        if (st == submit_status::accepted) break;
        ++queue_full_;
        if (stopping_) {
          std::lock_guard lk(mu_);
          entries_.pop_back();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ++next_seq[static_cast<std::size_t>(k)];
      next_time += period;
      const auto now = steady::now();
      if (next_time > now) {
        std::this_thread::sleep_until(next_time);
      } else if (now - next_time > std::chrono::seconds(1)) {
        next_time = now;  // do not burst after back-pressure
      }
    }
  }

  sink& sink_;
  boost::asio::any_io_executor ex_;
  std::string topic_;
  int keys_;
  int rate_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> queue_full_{0};
  std::thread thread_;
  std::mutex mu_;
  std::deque<entry> entries_;
  std::size_t done_ = 0;
};

class KafkaSinkFault : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(std::string(WHARF_SOURCE_DIR) + "/scripts/stack"))
        << "scripts/stack is missing";
    restore_brokers();
    WHARF_REQUIRE_KAFKA(3);
    runner_ = std::thread([this] { io_.run(); });
    std::string why;
    topic_ = kt::unique_name("wharf.fault.sink");
    ASSERT_TRUE(kt::create_topic(topic_, 3, 3, 2, why)) << why;
  }
  void TearDown() override {
    restore_brokers();
    if (load_) load_->stop();
    if (sink_) sink_->shutdown(std::chrono::seconds(10));
    load_.reset();
    sink_.reset();
    work_.reset();
    if (runner_.joinable()) runner_.join();
  }

  // `scripts/stack up` starts whatever is down, all at once (one KRaft broker
  // cannot come up alone while the other two are down). It may return before
  // restarted brokers serve, so wait until each answers itself.
  static bool restore_brokers() {
    kt::stack("up");
    const bool ok = kt::wait_every_broker_answers(std::chrono::seconds(180));
    EXPECT_TRUE(ok) << "the brokers did not come back; " << kt::last_stack_output();
    return ok;
  }

  void start_sink(std::chrono::milliseconds delivery_timeout, std::uint32_t queue_max_messages = 500000) {
    config::kafka_config c;
    c.brokers = kt::brokers();
    c.delivery_timeout = delivery_timeout;
    c.queue_max_messages = queue_max_messages;
    auto s = kafka_sink::create(c, {topic_}, registry_);
    ASSERT_TRUE(s.has_value()) << s.error();
    sink_ = std::move(*s);
  }

  void start_load(int rate = 1000) {
    load_ = std::make_unique<load_generator>(*sink_, io_.get_executor(), topic_, 12, rate);
    load_->start();
  }

  static int leader_of(const std::string& topic, int partition) {
    rd_kafka_t* rk = kt::new_client(RD_KAFKA_PRODUCER);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    int leader = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int p = 0; p < md->topics[0].partition_cnt; ++p)
        if (md->topics[0].partitions[p].id == partition) leader = md->topics[0].partitions[p].leader;
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return leader;
  }

  // Every record reported stored is in the topic; per key, the records in
  // Kafka appear in submit order.
  void verify_kafka_has_every_stored_record() {
    const auto entries = load_->snapshot();
    std::size_t stored = 0, retryable = 0, permanent = 0;
    for (const auto& e : entries) {
      ASSERT_TRUE(e.result.has_value()) << e.key << ":" << e.seq << " never completed";
      if (e.result->stored()) ++stored;
      if (e.result->status == delivery_status::failed_retryable) ++retryable;
      if (e.result->status == delivery_status::failed_permanent) ++permanent;
    }
    EXPECT_GT(stored, 0u);
    EXPECT_EQ(permanent, 0u);
    const auto got = kt::consume_all(topic_, stored, std::chrono::seconds(90));
    std::set<std::string> in_kafka;
    std::map<std::string, std::vector<int>> per_key;
    for (const auto& c : got) {
      const auto value = c.value.substr(0, c.value.find('.'));
      in_kafka.insert(value);
      per_key[c.key].push_back(std::stoi(value.substr(value.find(':') + 1)));
    }
    std::size_t missing = 0;
    for (const auto& e : entries)
      if (e.result->stored() && !in_kafka.count(e.key + ":" + std::to_string(e.seq))) ++missing;
    EXPECT_EQ(missing, 0u) << "records reported stored but not in Kafka";
    for (const auto& [key, seqs] : per_key) {
      std::set<int> seen;
      int last = -1;
      for (int s : seqs) {
        if (!seen.insert(s).second) continue;  // a duplicate of an earlier record
        EXPECT_GT(s, last) << "key " << key << " out of order";
        last = s;
      }
    }
    std::printf("[ report ] %zu submitted, %zu stored, %zu failed retryable, %zu in Kafka, %zu queue_full refusals\n",
                entries.size(), stored, retryable, got.size(), load_->queue_full_count());
  }

  prometheus::Registry registry_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread runner_;
  std::string topic_;
  std::unique_ptr<kafka_sink> sink_;
  std::unique_ptr<load_generator> load_;
};

TEST_F(KafkaSinkFault, KillingThePartitionLeaderRepeatedlyLosesNoStoredRecordAndKeepsKeyOrder) {
  start_sink(std::chrono::seconds(60));
  start_load();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (int round = 0; round < 3; ++round) {
    const int leader = leader_of(topic_, round % 3);
    ASSERT_GE(leader, 1) << "no leader for partition " << round % 3;
    const auto name = "kafka-" + std::to_string(leader);
    ASSERT_EQ(kt::stack("kill " + name), 0) << kt::last_stack_output();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    // `start` returns once the broker answers; give its replicas a moment to
    // rejoin the ISR before the next leader goes.
    ASSERT_EQ(kt::stack("start " + name), 0) << kt::last_stack_output();
    ASSERT_TRUE(kt::wait_every_broker_answers(std::chrono::seconds(120)));
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  load_->stop();
  ASSERT_TRUE(load_->wait_all_done(std::chrono::seconds(90)));
  verify_kafka_has_every_stored_record();
}

TEST_F(KafkaSinkFault, AllBrokersDownReportsNothingStoredBoundsMemoryAndResumesByItself) {
  constexpr std::uint32_t queue_limit = 5000;
  start_sink(std::chrono::seconds(120), queue_limit);
  // A second sink with a short delivery timeout: during the outage its
  // records must fail as retryable, never stored.
  config::kafka_config short_cfg;
  short_cfg.brokers = kt::brokers();
  short_cfg.delivery_timeout = std::chrono::seconds(5);
  short_cfg.check_topics = false;
  prometheus::Registry short_registry;
  auto short_sink = kafka_sink::create(short_cfg, {}, short_registry);
  ASSERT_TRUE(short_sink.has_value()) << short_sink.error();

  start_load(1000);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (int b = 1; b <= 3; ++b) ASSERT_EQ(kt::stack("kill kafka-" + std::to_string(b)), 0) << kt::last_stack_output();
  // Reports already in librdkafka's queue may still come out just after the
  // last broker died; from here on nothing can be stored.
  const auto down = steady::now() + std::chrono::seconds(1);

  std::atomic<int> short_done{0}, short_stored{0}, short_retryable{0};
  for (int i = 0; i < 50; ++i) {
    record r;
    r.topic = topic_;
    r.key = "short";
    r.value = std::to_string(i);
    ASSERT_EQ((*short_sink)
                  ->submit(r, io_.get_executor(),
                           [&](delivery_result res) {
                             if (res.stored()) ++short_stored;
                             if (res.status == delivery_status::failed_retryable) ++short_retryable;
                             ++short_done;
                           }),
              submit_status::accepted);
  }
  std::size_t max_queued = 0;
  bool went_unhealthy = false;
  for (int s = 0; s < 30; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const auto h = sink_->health();
    max_queued = std::max(max_queued, h.queued_records);
    went_unhealthy = went_unhealthy || !h.delivering;
  }
  const auto up = steady::now();
  EXPECT_EQ(load_->stored_between(down, up), 0) << "records reported stored while every broker was down";
  EXPECT_EQ(short_done.load(), 50);
  EXPECT_EQ(short_retryable.load(), 50) << "delivery timeout must fail records as retryable";
  EXPECT_EQ(short_stored.load(), 0);
  EXPECT_GT(load_->queue_full_count(), 0u) << "no back-pressure during the outage";
  EXPECT_LE(max_queued, queue_limit);
  EXPECT_TRUE(went_unhealthy);

  ASSERT_TRUE(restore_brokers());
  const auto restarted = steady::now();
  const auto until = restarted + std::chrono::seconds(120);
  while (!load_->stored_after(restarted) && steady::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(load_->stored_after(restarted)) << "the flow did not resume after the brokers came back";
  load_->stop();
  ASSERT_TRUE(load_->wait_all_done(std::chrono::seconds(150)));
  (*short_sink)->shutdown(std::chrono::seconds(5));
  verify_kafka_has_every_stored_record();
}

TEST_F(KafkaSinkFault, TwoOfThreeBrokersDownReportsNothingStoredAndResumes) {
  start_sink(std::chrono::seconds(120));
  start_load(500);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_EQ(kt::stack("kill kafka-2"), 0) << kt::last_stack_output();
  ASSERT_EQ(kt::stack("kill kafka-3"), 0) << kt::last_stack_output();
  const auto down = steady::now() + std::chrono::seconds(1);
  bool went_unhealthy = false;
  for (int s = 0; s < 15; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    went_unhealthy = went_unhealthy || !sink_->health().delivering;
  }
  EXPECT_TRUE(went_unhealthy) << "health still said delivering while nothing could be stored";
  const auto up = steady::now();
  EXPECT_EQ(load_->stored_between(down, up), 0)
      << "records reported stored with only one of three replicas (min.insync.replicas 2)";
  ASSERT_TRUE(restore_brokers());  // both at once
  const auto restarted = steady::now();
  const auto until = restarted + std::chrono::seconds(120);
  while (!load_->stored_after(restarted) && steady::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(load_->stored_after(restarted)) << "the flow did not resume";
  load_->stop();
  ASSERT_TRUE(load_->wait_all_done(std::chrono::seconds(150)));
  verify_kafka_has_every_stored_record();
}

}  // namespace
}  // namespace wharf::sinks::kafka
