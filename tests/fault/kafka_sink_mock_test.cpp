// The Kafka sink against librdkafka's in-process mock cluster, for errors a
// real cluster will not produce on demand: fatal idempotence errors and
// per-request error codes.
#include "sinks/kafka/kafka_sink.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace wharf::sinks::kafka {
namespace {

constexpr int16_t produce_api_key = 0;

class KafkaSinkMock : public ::testing::Test {
 protected:
  void SetUp() override {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ASSERT_NE(owner_, nullptr) << err;
    cluster_ = rd_kafka_mock_cluster_new(owner_, 3);
    ASSERT_NE(cluster_, nullptr);
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, topic_, 3, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
    runner_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (sink_) sink_->shutdown(std::chrono::seconds(5));
    sink_.reset();
    work_.reset();
    if (runner_.joinable()) runner_.join();
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
    if (owner_) rd_kafka_destroy(owner_);
  }

  void start(std::chrono::milliseconds delivery_timeout = std::chrono::seconds(10)) {
    config::kafka_config c;
    c.brokers = rd_kafka_mock_cluster_bootstraps(cluster_);
    c.delivery_timeout = delivery_timeout;
    c.check_topics = false;
    c.properties["retry.backoff.ms"] = "50";
    auto s = kafka_sink::create(c, {topic_}, registry_);
    ASSERT_TRUE(s.has_value()) << s.error();
    sink_ = std::move(*s);
  }

  struct outcome {
    std::mutex mu;
    std::map<int, delivery_result> results;
    std::atomic<int> done{0};
  };

  void submit(outcome& out, int seq, std::string key = "k") {
    record r;
    r.topic = topic_;
    r.key = std::move(key);
    r.value = std::to_string(seq);
    for (;;) {
      const auto st = sink_->submit(r, io_.get_executor(), [&out, seq](delivery_result res) {
        std::lock_guard lk(out.mu);
        out.results[seq] = std::move(res);
        ++out.done;
      });
      if (st == submit_status::accepted) return;
      ASSERT_EQ(st, submit_status::queue_full);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  static bool wait_done(outcome& out, int n, std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (out.done.load() < n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return out.done.load() == n;
  }

  // Values of every record in the mock topic.
  std::multiset<std::string> topic_values() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(cluster_), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "wharf-mock-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    auto* parts = rd_kafka_topic_partition_list_new(3);
    for (int p = 0; p < 3; ++p) rd_kafka_topic_partition_list_add(parts, topic_, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    std::multiset<std::string> values;
    int eofs = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (eofs < 3 && std::chrono::steady_clock::now() < until) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ++eofs;
      } else if (!m->err) {
        values.emplace(static_cast<const char*>(m->payload), m->len);
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return values;
  }

  double metric(const std::string& name) {
    double v = 0;
    for (const auto& fam : registry_.Collect())
      if (fam.name == name)
        for (const auto& m : fam.metric) v += m.counter.value + m.gauge.value;
    return v;
  }

  const char* topic_ = "wharf.mock";
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  prometheus::Registry registry_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread runner_;
  std::unique_ptr<kafka_sink> sink_;
};

TEST_F(KafkaSinkMock, StoresRecordsOnTheMockCluster) {
  start();
  outcome out;
  for (int i = 0; i < 20; ++i) submit(out, i);
  ASSERT_TRUE(wait_done(out, 20));
  for (auto& [seq, r] : out.results) EXPECT_TRUE(r.stored()) << seq << ": " << r.reason;
  EXPECT_EQ(topic_values().size(), 20u);
}

TEST_F(KafkaSinkMock, MessageSizeTooLargeFromTheBrokerFailsThatRecordPermanent) {
  start();
  rd_kafka_mock_push_request_errors(cluster_, produce_api_key, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  outcome out;
  submit(out, 1);
  ASSERT_TRUE(wait_done(out, 1));
  EXPECT_EQ(out.results[1].status, delivery_status::failed_permanent) << out.results[1].reason;
  EXPECT_EQ(out.results[1].why, delivery_result::cause::too_large);
  // The next record goes through.
  submit(out, 2);
  ASSERT_TRUE(wait_done(out, 2));
  EXPECT_TRUE(out.results[2].stored()) << out.results[2].reason;
}

TEST_F(KafkaSinkMock, TopicAuthorizationFailedFailsThatRecordPermanent) {
  start();
  rd_kafka_mock_push_request_errors(cluster_, produce_api_key, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  outcome out;
  submit(out, 1);
  ASSERT_TRUE(wait_done(out, 1));
  EXPECT_EQ(out.results[1].status, delivery_status::failed_permanent) << out.results[1].reason;
  EXPECT_EQ(out.results[1].why, delivery_result::cause::not_authorized);
  EXPECT_EQ(metric("wharf_sink_records_failed_total"), 1);
}

TEST_F(KafkaSinkMock, RetriableBrokerErrorIsRetriedAndStored) {
  start();
  rd_kafka_mock_push_request_errors(cluster_, produce_api_key, 2, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  outcome out;
  submit(out, 1);
  ASSERT_TRUE(wait_done(out, 1));
  EXPECT_TRUE(out.results[1].stored()) << out.results[1].reason;
  EXPECT_EQ(topic_values().count("1"), 1u);
}

TEST_F(KafkaSinkMock, FatalIdempotenceErrorReplacesTheProducerAndReportsNothingFalselyStored) {
  start();
  // Slow brokers so records are in flight when the error hits.
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_rtt(cluster_, b, 300);
  outcome out;
  for (int i = 0; i < 200; ++i) submit(out, i, "k" + std::to_string(i % 7));
  ASSERT_EQ(rd_kafka_test_fatal_error(static_cast<rd_kafka_t*>(sink_->native_handle_for_testing()),
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "injected by the test"),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(wait_done(out, 200));
  // The sink comes back by itself with a new producer.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink_->producer_restarts() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sink_->producer_restarts(), 1u);
  EXPECT_EQ(metric("wharf_kafka_producer_restarts_total"), 1);
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_rtt(cluster_, b, 0);
  for (int i = 200; i < 220; ++i) submit(out, i);
  ASSERT_TRUE(wait_done(out, 220));

  const auto values = topic_values();
  int stored = 0, retryable = 0;
  for (auto& [seq, r] : out.results) {
    if (r.stored()) {
      ++stored;
      EXPECT_GE(values.count(std::to_string(seq)), 1u) << "record " << seq << " reported stored but not in Kafka";
    } else {
      EXPECT_EQ(r.status, delivery_status::failed_retryable) << seq << ": " << r.reason;
      ++retryable;
    }
  }
  EXPECT_GT(retryable, 0) << "no record was in flight when the fatal error hit";
  for (int i = 200; i < 220; ++i) EXPECT_TRUE(out.results[i].stored()) << i << ": " << out.results[i].reason;
  std::printf("[ report ] fatal error: %d stored, %d failed retryable\n", stored, retryable);
}

TEST_F(KafkaSinkMock, AllBrokersDownUntilTheDeliveryTimeoutFailsRetryableNeverStored) {
  start(std::chrono::milliseconds(2000));
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_down(cluster_, b);
  outcome out;
  for (int i = 0; i < 10; ++i) submit(out, i);
  ASSERT_TRUE(wait_done(out, 10));
  for (auto& [seq, r] : out.results) {
    EXPECT_EQ(r.status, delivery_status::failed_retryable) << seq << ": " << r.reason;
  }
  const auto h = sink_->health();
  EXPECT_FALSE(h.delivering);
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_up(cluster_, b);
}

TEST_F(KafkaSinkMock, ShutdownFailsUnconfirmedRecordsAsRetryableAfterItsDeadline) {
  start(std::chrono::seconds(60));
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_down(cluster_, b);
  outcome out;
  for (int i = 0; i < 25; ++i) submit(out, i);
  const auto t0 = std::chrono::steady_clock::now();
  sink_->shutdown(std::chrono::milliseconds(500));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30)) << "shutdown ignored its deadline";
  ASSERT_TRUE(wait_done(out, 25));
  for (auto& [seq, r] : out.results) EXPECT_EQ(r.status, delivery_status::failed_retryable) << seq << ": " << r.reason;
  record r;
  r.topic = topic_;
  EXPECT_EQ(sink_->submit(r, io_.get_executor(), [](delivery_result) {}), submit_status::closed);
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_up(cluster_, b);
}

TEST_F(KafkaSinkMock, CompletionFiresExactlyOnceAcrossAProducerReplacement) {
  start();
  for (int b = 1; b <= 3; ++b) rd_kafka_mock_broker_set_rtt(cluster_, b, 200);
  std::atomic<int> calls{0};
  constexpr int n = 100;
  for (int i = 0; i < n; ++i) {
    record r;
    r.topic = topic_;
    r.key = "k";
    r.value = std::to_string(i);
    ASSERT_EQ(sink_->submit(r, io_.get_executor(), [&](delivery_result) { ++calls; }), submit_status::accepted);
  }
  rd_kafka_test_fatal_error(static_cast<rd_kafka_t*>(sink_->native_handle_for_testing()),
                            RD_KAFKA_RESP_ERR_PRODUCER_FENCED, "injected by the test");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (calls.load() < n && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Let any late delivery report of the old producer arrive, then count again.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(calls.load(), n);
}

}  // namespace
}  // namespace wharf::sinks::kafka
