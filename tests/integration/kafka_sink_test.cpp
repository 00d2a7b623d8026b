// The Kafka sink against the real brokers of `scripts/stack up --brokers 3`:
// what the sink reports stored is read back with librdkafka and compared
// byte for byte.
#include "sinks/kafka/kafka_sink.h"
#include "tests/integration/kafka_sink_test_support.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

namespace wharf::sinks::kafka {
namespace {

namespace kt = kafka_test;

class KafkaSink : public ::testing::Test {
 protected:
  void SetUp() override {
    WHARF_REQUIRE_KAFKA(1);
    runner_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (sink_) sink_->shutdown(std::chrono::seconds(10));
    work_.reset();
    if (runner_.joinable()) runner_.join();
  }

  config::kafka_config cfg() {
    config::kafka_config c;
    c.brokers = kt::brokers();
    c.delivery_timeout = std::chrono::milliseconds(30000);
    return c;
  }

  std::string new_topic(int partitions = 3) {
    std::string why;
    std::string topic = kt::unique_name("wharf.test.sink");
    int brokers = kt::broker_count(why);
    EXPECT_TRUE(kt::create_topic(topic, partitions, brokers >= 3 ? 3 : 1, brokers >= 3 ? 2 : 1, why)) << why;
    return topic;
  }

  void start(config::kafka_config c, std::vector<std::string> topics = {}) {
    auto s = kafka_sink::create(c, std::move(topics), registry_);
    ASSERT_TRUE(s.has_value()) << s.error();
    sink_ = std::move(*s);
  }

  // Submits and waits for every completion; returns the results in submit order.
  std::vector<delivery_result> produce_all(std::vector<record> records) {
    std::vector<delivery_result> results(records.size());
    std::atomic<std::size_t> done{0};
    for (std::size_t i = 0; i < records.size(); ++i) {
      for (;;) {
        const auto st = sink_->submit(records[i], io_.get_executor(), [&, i](delivery_result r) {
          results[i] = std::move(r);
          ++done;
        });
        if (st == submit_status::accepted) break;
        EXPECT_EQ(st, submit_status::queue_full);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (done.load() < records.size() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(done.load(), records.size());
    return results;
  }

  prometheus::Registry registry_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread runner_;
  std::unique_ptr<kafka_sink> sink_;
};

TEST_F(KafkaSink, KeysHeadersAndValueBytesArriveIntact) {
  const auto topic = new_topic();
  start(cfg());
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  std::vector<record> records;
  for (int i = 0; i < 50; ++i) {
    record r;
    r.topic = topic;
    r.key = std::string("key\0with\xff", 9) + std::to_string(i);
    r.value = all_bytes + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 100, '\0');
    r.headers = {{"ce_id", "id-" + std::to_string(i)},
                 {"ce_specversion", "1.0"},
                 {"bin", std::string("\x00\x01\x02", 3)},
                 {"empty", ""},
                 {"dup", "first"},
                 {"dup", "second"}};
    records.push_back(r);
  }
  const auto results = produce_all(records);
  for (const auto& r : results) EXPECT_TRUE(r.stored()) << r.reason;

  const auto got = kt::consume_all(topic, records.size());
  ASSERT_EQ(got.size(), records.size());
  std::map<std::string, kt::consumed> by_id;
  for (const auto& c : got) by_id[c.header_value("ce_id")] = c;
  for (int i = 0; i < 50; ++i) {
    const auto& want = records[static_cast<std::size_t>(i)];
    ASSERT_TRUE(by_id.count("id-" + std::to_string(i))) << i;
    const auto& c = by_id["id-" + std::to_string(i)];
    EXPECT_EQ(c.key, want.key);
    EXPECT_EQ(c.value, want.value);
    ASSERT_EQ(c.headers.size(), want.headers.size());
    for (std::size_t h = 0; h < want.headers.size(); ++h) {
      EXPECT_EQ(c.headers[h].name, want.headers[h].name);
      EXPECT_EQ(c.headers[h].value, want.headers[h].value);
    }
  }
}

TEST_F(KafkaSink, PerKeyOrderIsPreservedAcrossManyRecords) {
  const auto topic = new_topic(6);
  start(cfg());
  constexpr int keys = 20, per_key = 500;
  std::vector<record> records;
  for (int i = 0; i < per_key; ++i)
    for (int k = 0; k < keys; ++k) {
      record r;
      r.topic = topic;
      r.key = "device-" + std::to_string(k);
      r.value = std::to_string(i);
      records.push_back(std::move(r));
    }
  const auto results = produce_all(records);
  std::size_t stored = 0;
  for (const auto& r : results) stored += r.stored() ? 1 : 0;
  EXPECT_EQ(stored, records.size());

  const auto got = kt::consume_all(topic, records.size());
  ASSERT_EQ(got.size(), records.size());
  std::map<std::string, std::vector<int>> seqs;
  std::map<std::string, int> partition_of;
  // consume_all returns each partition in offset order.
  for (const auto& c : got) {
    seqs[c.key].push_back(std::stoi(c.value));
    if (partition_of.count(c.key)) {
      EXPECT_EQ(partition_of[c.key], c.partition) << c.key;
    }
    partition_of[c.key] = c.partition;
  }
  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(keys));
  for (const auto& [key, s] : seqs) {
    ASSERT_EQ(s.size(), static_cast<std::size_t>(per_key)) << key;
    for (int i = 0; i < per_key; ++i) ASSERT_EQ(s[static_cast<std::size_t>(i)], i) << key;
  }
}

TEST_F(KafkaSink, CompletionsRunOnTheSubmittingExecutor) {
  const auto topic = new_topic(1);
  start(cfg());
  std::atomic<int> on_runner{0}, done{0};
  const auto runner_id = runner_.get_id();
  for (int i = 0; i < 100; ++i) {
    record r;
    r.topic = topic;
    r.key = "k";
    r.value = std::to_string(i);
    ASSERT_EQ(sink_->submit(r, io_.get_executor(),
                            [&](delivery_result) {
                              if (std::this_thread::get_id() == runner_id) ++on_runner;
                              ++done;
                            }),
              submit_status::accepted);
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (done.load() < 100 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(done.load(), 100);
  EXPECT_EQ(on_runner.load(), 100);
}

TEST_F(KafkaSink, MessageLargerThanTheBrokerLimitFailsPermanentAsTooLarge) {
  const auto topic = new_topic(1);
  start(cfg());
  record r;
  r.topic = topic;
  r.key = "k";
  r.value = std::string(2u << 20, 'x');  // message.max.bytes is 1 MB by default
  const auto results = produce_all({r});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, delivery_status::failed_permanent) << results[0].reason;
  EXPECT_EQ(results[0].why, delivery_result::cause::too_large);
}

TEST_F(KafkaSink, UnknownTopicFailsPermanentAndIsNotCreated) {
  auto c = cfg();
  c.properties["topic.metadata.propagation.max.ms"] = "2000";
  start(c);
  record r;
  r.topic = kt::unique_name("wharf.test.missing");
  r.key = "k";
  r.value = "v";
  const auto results = produce_all({r});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, delivery_status::failed_permanent) << results[0].reason;
  EXPECT_EQ(results[0].why, delivery_result::cause::unknown_topic);
  std::string why;
  rd_kafka_t* rk = kt::new_client(RD_KAFKA_PRODUCER);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, r.topic.c_str(), nullptr);
  ASSERT_EQ(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_NE(md->topics[0].err, RD_KAFKA_RESP_ERR_NO_ERROR) << "the topic was created";
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
}

TEST_F(KafkaSink, StartupCheckWarnsAboutWeakTopicsOnly) {
  WHARF_REQUIRE_KAFKA(3);
  std::string why;
  const auto good = kt::unique_name("wharf.test.good");
  const auto weak_rf = kt::unique_name("wharf.test.rf1");
  const auto weak_isr = kt::unique_name("wharf.test.isr1");
  const auto missing = kt::unique_name("wharf.test.none");
  ASSERT_TRUE(kt::create_topic(good, 1, 3, 2, why)) << why;
  ASSERT_TRUE(kt::create_topic(weak_rf, 1, 1, 1, why)) << why;
  ASSERT_TRUE(kt::create_topic(weak_isr, 1, 3, 1, why)) << why;
  start(cfg(), {good, weak_rf, weak_isr, missing});
  sink_->wait_topic_check();
  const auto warnings = sink_->durability_warnings();
  EXPECT_EQ(std::count(warnings.begin(), warnings.end(), good), 0);
  EXPECT_EQ(std::count(warnings.begin(), warnings.end(), weak_rf), 1);
  EXPECT_EQ(std::count(warnings.begin(), warnings.end(), weak_isr), 1);
  EXPECT_EQ(std::count(warnings.begin(), warnings.end(), missing), 1);
  double flagged = 0;
  for (const auto& fam : registry_.Collect())
    if (fam.name == "wharf_kafka_topic_durability_warnings")
      for (const auto& m : fam.metric) flagged += m.gauge.value;
  EXPECT_EQ(flagged, 3);
}

TEST_F(KafkaSink, ReportsBrokersUpAndHealthyWhileDelivering) {
  const auto topic = new_topic(1);
  start(cfg());
  record r;
  r.topic = topic;
  r.key = "k";
  r.value = "v";
  ASSERT_TRUE(produce_all({r})[0].stored());
  double up = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (up == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (const auto& fam : registry_.Collect())
      if (fam.name == "wharf_kafka_brokers_up") up = fam.metric.at(0).gauge.value;
  }
  EXPECT_GE(up, 1);
  EXPECT_TRUE(sink_->health().delivering);
}

TEST_F(KafkaSink, ShutdownRefusesNewRecords) {
  start(cfg());
  sink_->shutdown(std::chrono::seconds(5));
  record r;
  r.topic = "x";
  EXPECT_EQ(sink_->submit(r, io_.get_executor(), [](delivery_result) {}), submit_status::closed);
}

}  // namespace
}  // namespace wharf::sinks::kafka
