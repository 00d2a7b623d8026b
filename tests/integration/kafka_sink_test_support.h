// Test support for the Kafka sink tests: the stack's brokers, topics created
// with the admin API, consuming a topic back with librdkafka, and driving the
// scripts/stack fault verbs. Header-only; include it from one test file per
// executable.
#pragma once

#include "sinks/sink.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace wharf::sinks::kafka_test {

// $WHARF_TEST_KAFKA_BROKERS, else the three brokers of `scripts/stack up --brokers 3`.
inline std::string brokers() {
  const char* env = std::getenv("WHARF_TEST_KAFKA_BROKERS");
  return env && *env ? env : "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";
}

inline std::string unique_name(const std::string& prefix) {
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return prefix + "." + std::to_string(::getpid()) + "." + std::to_string(now % 1000000000);
}

inline rd_kafka_t* new_client(rd_kafka_type_t type, const std::map<std::string, std::string>& extra = {}) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers().c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  for (const auto& [k, v] : extra) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) ADD_FAILURE() << "rd_kafka_new: " << err;
  return rk;
}

// Number of brokers in the cluster, or 0 with `why` when it cannot be reached.
inline int broker_count(std::string& why) {
  rd_kafka_t* rk = new_client(RD_KAFKA_PRODUCER);
  if (rk == nullptr) return 0;
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, nullptr, &md, 10000);
  int n = 0;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    why = rd_kafka_err2str(err);
  } else {
    n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_destroy(rk);
  return n;
}

// Fails the test (fatally, from the caller) when Kafka from scripts/stack is
// not there.
#define WHARF_REQUIRE_KAFKA(min_brokers)                                                 \
  do {                                                                                   \
    std::string why_;                                                                    \
    const int n_ = ::wharf::sinks::kafka_test::broker_count(why_);                       \
    ASSERT_GE(n_, (min_brokers)) << "Kafka at " << ::wharf::sinks::kafka_test::brokers() \
                                 << " is not reachable or too small (" << why_           \
                                 << "): start it with `scripts/stack up --brokers 3`";   \
  } while (0)

// Creates a topic and waits until every partition has a leader.
inline bool create_topic(const std::string& topic, int partitions, int replication, int min_insync, std::string& why) {
  rd_kafka_t* rk = new_client(RD_KAFKA_PRODUCER);
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, replication, err, sizeof err);
  rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", std::to_string(min_insync).c_str());
  rd_kafka_NewTopic_set_config(nt, "unclean.leader.election.enable", "false");
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  bool ok = false;
  if (ev == nullptr) {
    why = "CreateTopics timed out";
  } else if (rd_kafka_event_error(ev)) {
    why = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const auto** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n == 1 && rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      why = rd_kafka_topic_result_error_string(res[0]);
    } else {
      ok = true;
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  // Wait for leaders everywhere.
  for (int i = 0; ok && i < 100; ++i) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    bool ready = false;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ready = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
      for (int p = 0; ready && p < md->topics[0].partition_cnt; ++p) ready = md->topics[0].partitions[p].leader >= 0;
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rd_kafka_destroy(rk);
  return ok;
}

struct consumed {
  int partition = -1;
  long long offset = -1;
  std::string key;
  std::string value;
  std::vector<header> headers;
  bool key_null = false;

  std::string header_value(const std::string& name) const {
    for (const auto& h : headers)
      if (h.name == name) return h.value;
    return {};
  }
};

// Reads every record of `topic` from the beginning, until `at_least` records
// arrived and every partition reached its end (or `limit` passed).
inline std::vector<consumed> consume_all(const std::string& topic, std::size_t at_least,
                                         std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  std::vector<consumed> out;
  rd_kafka_t* rk = new_client(RD_KAFKA_CONSUMER, {{"group.id", unique_name("wharf-test")},
                                                  {"enable.partition.eof", "true"},
                                                  {"enable.auto.commit", "false"},
                                                  {"isolation.level", "read_uncommitted"}});
  if (rk == nullptr) return out;
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  int partitions = 0;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<bool> at_eof(static_cast<std::size_t>(partitions), false);
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_eof[static_cast<std::size_t>(m->partition)] = true;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      at_eof[static_cast<std::size_t>(m->partition)] = false;
      consumed c;
      c.partition = m->partition;
      c.offset = m->offset;
      c.key_null = m->key == nullptr;
      if (m->key) c.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) c.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
          c.headers.push_back({name, val ? std::string(static_cast<const char*>(val), size) : std::string()});
      }
      out.push_back(std::move(c));
    }
    rd_kafka_message_destroy(m);
    bool all_eof = partitions > 0;
    for (bool e : at_eof) all_eof = all_eof && e;
    if (all_eof && out.size() >= at_least) break;
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

// True once every broker in `brokers()` answers a metadata request itself
// (not just appears in another broker's metadata), within `limit`.
inline bool wait_every_broker_answers(std::chrono::seconds limit) {
  std::vector<std::string> list;
  std::string all = brokers();
  for (std::size_t pos = 0; pos <= all.size();) {
    const auto comma = std::min(all.find(',', pos), all.size());
    list.push_back(all.substr(pos, comma - pos));
    pos = comma + 1;
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  for (const auto& b : list) {
    for (;;) {
      rd_kafka_conf_t* conf = rd_kafka_conf_new();
      char err[512];
      rd_kafka_conf_set(conf, "bootstrap.servers", b.c_str(), err, sizeof err);
      rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
      rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
      const rd_kafka_metadata_t* md = nullptr;
      bool ok = false;
      if (rk && rd_kafka_metadata(rk, 0, nullptr, &md, 3000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        // The answer must come from this broker and list it.
        const std::string port = b.substr(b.rfind(':') + 1);
        for (int i = 0; i < md->broker_cnt; ++i)
          ok = ok || (md->brokers[i].id == md->orig_broker_id && std::to_string(md->brokers[i].port) == port);
        rd_kafka_metadata_destroy(md);
      }
      if (rk) rd_kafka_destroy(rk);
      if (ok) break;
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  return true;
}

// Output of the last stack() call, for failure messages.
inline std::string& last_stack_output() {
  static std::string out;
  return out;
}

// scripts/stack from the source tree; returns the exit status and keeps the
// output in last_stack_output().
inline int stack(const std::string& args) {
  const std::string cmd = std::string(WHARF_SOURCE_DIR) + "/scripts/stack " + args + " 2>&1";
  last_stack_output() = "scripts/stack " + args + ":\n";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) last_stack_output() += buf;
  const int rc = ::pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace wharf::sinks::kafka_test
