// Checks the Kafka that `scripts/stack up --brokers 3` runs: a record goes in
// with acks=all on an idempotent producer and comes back unchanged, and the
// stack's topics are replicated three times with min.insync.replicas=2.
// A missing or partial stack fails these tests; it never skips them.
#include <librdkafka/rdkafka.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr int expected_brokers = 3;
constexpr auto wait_limit = 30s;

std::string bootstrap_servers() {
  const char* env = std::getenv("WHARF_TEST_KAFKA_BROKERS");
  return env != nullptr ? env : "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";
}

std::string stack_hint() {
  return "Kafka at " + bootstrap_servers() + " is not the 3-broker stack; run: scripts/stack up --brokers 3";
}

struct kafka_deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct queue_deleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct event_deleter {
  void operator()(rd_kafka_event_t* ev) const { rd_kafka_event_destroy(ev); }
};
struct message_deleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
struct metadata_deleter {
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};
using kafka_ptr = std::unique_ptr<rd_kafka_t, kafka_deleter>;
using queue_ptr = std::unique_ptr<rd_kafka_queue_t, queue_deleter>;
using event_ptr = std::unique_ptr<rd_kafka_event_t, event_deleter>;
using message_ptr = std::unique_ptr<rd_kafka_message_t, message_deleter>;
using metadata_ptr = std::unique_ptr<const rd_kafka_metadata_t, metadata_deleter>;

struct delivery {
  bool reported = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int32_t partition = -1;
  int64_t offset = -1;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<delivery*>(opaque);
  d->reported = true;
  d->err = m->err;
  d->partition = m->partition;
  d->offset = m->offset;
}

// Builds a client; every property must be accepted, or the test fails there.
kafka_ptr make_client(rd_kafka_type_t type, const std::vector<std::pair<std::string, std::string>>& props,
                      delivery* report = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  std::vector<std::pair<std::string, std::string>> all{{"bootstrap.servers", bootstrap_servers()}};
  all.insert(all.end(), props.begin(), props.end());
  for (const auto& [key, value] : all) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << "config " << key << "=" << value << ": " << err;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  if (report != nullptr) {
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, report);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    ADD_FAILURE() << "rd_kafka_new: " << err;
    rd_kafka_conf_destroy(conf);
  }
  return kafka_ptr{rk};
}

// Cluster metadata for one topic (or all topics when topic is empty).
metadata_ptr fetch_metadata(rd_kafka_t* rk, const std::string& topic) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = topic.empty() ? nullptr : rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, rkt == nullptr ? 1 : 0, rkt, &md, 10000);
  if (rkt != nullptr) {
    rd_kafka_topic_destroy(rkt);
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ADD_FAILURE() << "metadata request failed: " << rd_kafka_err2str(err) << ". " << stack_hint();
    return nullptr;
  }
  return metadata_ptr{md};
}

const rd_kafka_metadata_topic_t* find_topic(const rd_kafka_metadata_t& md, std::string_view name) {
  for (int i = 0; i < md.topic_cnt; ++i) {
    if (name == md.topics[i].topic) {
      return &md.topics[i];
    }
  }
  return nullptr;
}

// Waits for one admin result event on the queue.
event_ptr wait_admin_result(rd_kafka_queue_t* queue) {
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, static_cast<int>(std::chrono::milliseconds(wait_limit).count()));
  if (ev == nullptr) {
    ADD_FAILURE() << "no admin result within the wait limit. " << stack_hint();
  }
  return event_ptr{ev};
}

std::string unique_topic_name() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return "stack-test-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

// Creates a topic with RF 3 and waits until every partition has a leader.
bool create_topic(rd_kafka_t* admin, const std::string& topic, int partitions) {
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, expected_brokers, err, sizeof err);
  if (nt == nullptr) {
    ADD_FAILURE() << "NewTopic: " << err;
    return false;
  }
  queue_ptr queue{rd_kafka_queue_new(admin)};
  rd_kafka_CreateTopics(admin, &nt, 1, nullptr, queue.get());
  rd_kafka_NewTopic_destroy(nt);
  event_ptr ev = wait_admin_result(queue.get());
  if (!ev) {
    return false;
  }
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ADD_FAILURE() << "CreateTopics: " << rd_kafka_event_error_string(ev.get());
    return false;
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  if (n != 1 || rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ADD_FAILURE() << "creating " << topic
                  << " failed: " << (n == 1 ? rd_kafka_topic_result_error_string(results[0]) : "no result");
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (std::chrono::steady_clock::now() < deadline) {
    metadata_ptr md = fetch_metadata(admin, topic);
    if (!md) {
      return false;
    }
    const rd_kafka_metadata_topic_t* t = find_topic(*md, topic);
    bool ready = t != nullptr && t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt == partitions;
    for (int p = 0; ready && p < t->partition_cnt; ++p) {
      ready = t->partitions[p].leader >= 0;
    }
    if (ready) {
      return true;
    }
    std::this_thread::sleep_for(200ms);
  }
  ADD_FAILURE() << "topic " << topic << " has no leader on every partition within the wait limit";
  return false;
}

void delete_topic(rd_kafka_t* admin, const std::string& topic) {
  rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
  queue_ptr queue{rd_kafka_queue_new(admin)};
  rd_kafka_DeleteTopics(admin, &dt, 1, nullptr, queue.get());
  rd_kafka_DeleteTopic_destroy(dt);
  event_ptr ev = wait_admin_result(queue.get());
  EXPECT_TRUE(ev && rd_kafka_event_error(ev.get()) == RD_KAFKA_RESP_ERR_NO_ERROR) << "deleting " << topic << " failed";
}

// Effective topic configuration (topic overrides and broker defaults).
std::optional<std::string> topic_config(rd_kafka_t* admin, const std::string& topic, const std::string& key) {
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  queue_ptr queue{rd_kafka_queue_new(admin)};
  rd_kafka_DescribeConfigs(admin, &res, 1, nullptr, queue.get());
  rd_kafka_ConfigResource_destroy(res);
  event_ptr ev = wait_admin_result(queue.get());
  if (!ev) {
    return std::nullopt;
  }
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ADD_FAILURE() << "DescribeConfigs: " << rd_kafka_event_error_string(ev.get());
    return std::nullopt;
  }
  size_t n = 0;
  const rd_kafka_ConfigResource_t** resources =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev.get()), &n);
  if (n != 1 || rd_kafka_ConfigResource_error(resources[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ADD_FAILURE() << "DescribeConfigs for " << topic << " failed";
    return std::nullopt;
  }
  size_t entries = 0;
  const rd_kafka_ConfigEntry_t** configs = rd_kafka_ConfigResource_configs(resources[0], &entries);
  for (size_t i = 0; i < entries; ++i) {
    if (key == rd_kafka_ConfigEntry_name(configs[i])) {
      const char* value = rd_kafka_ConfigEntry_value(configs[i]);
      return std::string{value != nullptr ? value : ""};
    }
  }
  return std::nullopt;
}

std::optional<std::string> header_value(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return std::string{static_cast<const char*>(value), size};
}

TEST(StackKafka, ClusterHasThreeBrokers) {
  kafka_ptr admin = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(admin);
  metadata_ptr md = fetch_metadata(admin.get(), "");
  ASSERT_TRUE(md);
  EXPECT_EQ(md->broker_cnt, expected_brokers) << stack_hint();
}

TEST(StackKafka, StackTopicsHaveThreeReplicasAndMinInsyncTwo) {
  kafka_ptr admin = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(admin);
  metadata_ptr md = fetch_metadata(admin.get(), "");
  ASSERT_TRUE(md);
  for (const char* name : {"mqtt.ingest", "http.events"}) {
    SCOPED_TRACE(name);
    const rd_kafka_metadata_topic_t* t = find_topic(*md, name);
    ASSERT_NE(t, nullptr) << "scripts/stack up did not create " << name;
    ASSERT_EQ(t->err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(t->err);
    ASSERT_GT(t->partition_cnt, 0);
    for (int p = 0; p < t->partition_cnt; ++p) {
      EXPECT_EQ(t->partitions[p].replica_cnt, expected_brokers) << "partition " << p;
    }
    EXPECT_EQ(topic_config(admin.get(), name, "min.insync.replicas"), "2");
    EXPECT_EQ(topic_config(admin.get(), name, "unclean.leader.election.enable"), "false");
  }
}

TEST(StackKafka, RecordProducedWithAcksAllComesBackWithKeyValueAndHeaders) {
  kafka_ptr admin = make_client(RD_KAFKA_PRODUCER, {});
  ASSERT_TRUE(admin);
  const std::string topic = unique_topic_name();
  ASSERT_TRUE(create_topic(admin.get(), topic, 1));

  const std::string key = "device-42";
  const std::string value{"payload\0with\xffraw bytes", 21};
  const std::string ce_id = "id-" + topic;

  delivery report;
  kafka_ptr producer = make_client(RD_KAFKA_PRODUCER, {{"enable.idempotence", "true"}, {"acks", "all"}}, &report);
  ASSERT_TRUE(producer);
  // rd_kafka_produceva rather than the RD_KAFKA_V_* macros, which expand to
  // GNU statement expressions.
  std::vector<rd_kafka_vu_t> fields(7);
  fields[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  fields[0].u.cstr = topic.c_str();
  fields[1].vtype = RD_KAFKA_VTYPE_PARTITION;
  fields[1].u.i32 = 0;
  fields[2].vtype = RD_KAFKA_VTYPE_KEY;
  fields[2].u.mem = {const_cast<char*>(key.data()), key.size()};
  fields[3].vtype = RD_KAFKA_VTYPE_VALUE;
  fields[3].u.mem = {const_cast<char*>(value.data()), value.size()};
  fields[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  fields[4].u.i = RD_KAFKA_MSG_F_COPY;
  fields[5].vtype = RD_KAFKA_VTYPE_HEADER;
  fields[5].u.header = {"ce_id", ce_id.data(), static_cast<ssize_t>(ce_id.size())};
  fields[6].vtype = RD_KAFKA_VTYPE_HEADER;
  fields[6].u.header = {"ce_specversion", "1.0", 3};
  rd_kafka_error_t* produce_error = rd_kafka_produceva(producer.get(), fields.data(), fields.size());
  if (produce_error != nullptr) {
    const std::string reason = rd_kafka_error_string(produce_error);
    rd_kafka_error_destroy(produce_error);
    FAIL() << "produce: " << reason;
  }
  rd_kafka_flush(producer.get(), static_cast<int>(std::chrono::milliseconds(wait_limit).count()));
  ASSERT_TRUE(report.reported) << "no delivery report. " << stack_hint();
  ASSERT_EQ(report.err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(report.err);
  ASSERT_EQ(report.partition, 0);
  ASSERT_GE(report.offset, 0);

  kafka_ptr consumer = make_client(
      RD_KAFKA_CONSUMER, {{"group.id", topic}, {"enable.auto.commit", "false"}, {"auto.offset.reset", "earliest"}});
  ASSERT_TRUE(consumer);
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(assignment, topic.c_str(), 0)->offset = report.offset;
  const rd_kafka_resp_err_t assign_err = rd_kafka_assign(consumer.get(), assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  ASSERT_EQ(assign_err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(assign_err);

  message_ptr got;
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    message_ptr m{rd_kafka_consumer_poll(consumer.get(), 500)};
    if (!m || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      continue;
    }
    ASSERT_EQ(m->err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_message_errstr(m.get());
    got = std::move(m);
  }
  ASSERT_TRUE(got) << "the produced record was not consumed back within the wait limit";
  EXPECT_EQ(got->offset, report.offset);
  EXPECT_EQ(std::string(static_cast<const char*>(got->key), got->key_len), key);
  EXPECT_EQ(std::string(static_cast<const char*>(got->payload), got->len), value);
  EXPECT_EQ(header_value(got.get(), "ce_id"), ce_id);
  EXPECT_EQ(header_value(got.get(), "ce_specversion"), "1.0");
  got.reset();
  rd_kafka_consumer_close(consumer.get());
  consumer.reset();

  delete_topic(admin.get(), topic);
}

}  // namespace
