// Support for the MQTT black-box tests: the stack's Kafka (topics made and
// read back with librdkafka), node configurations, Paho clients, and a QoS 1
// publisher that re-sends what was not acknowledged. Header-only; include it
// from one test file per executable.
#pragma once

#include "tests/support/process.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace wharf::test::mqtt_it {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// $WHARF_TEST_KAFKA_BROKERS, else the three brokers of `scripts/stack up --brokers 3`.
inline std::string kafka_brokers() {
  const char* env = std::getenv("WHARF_TEST_KAFKA_BROKERS");
  return env && *env ? env : "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";
}

// A name no earlier run used: prefix.pid.time.
inline std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return prefix + "." + std::to_string(::getpid()) + "." + std::to_string(now % 1000000000) + "." +
         std::to_string(++counter);
}

inline rd_kafka_t* new_kafka_client(rd_kafka_type_t type, const std::map<std::string, std::string>& extra = {}) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", kafka_brokers().c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  for (const auto& [k, v] : extra) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  return rd_kafka_new(type, conf, err, sizeof err);
}

// Creates `topic` (replication 3, min.insync 2) and waits for its leaders.
// False with `why` when Kafka cannot be reached or refuses.
inline bool create_topic(const std::string& topic, int partitions, std::string& why) {
  rd_kafka_t* rk = new_kafka_client(RD_KAFKA_PRODUCER);
  if (!rk) {
    why = "cannot create a Kafka client";
    return false;
  }
  char err[512];
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 3, err, sizeof err);
  rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", "2");
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  bool ok = false;
  if (!ev) {
    why = "CreateTopics timed out (is `scripts/stack up --brokers 3` running?)";
  } else if (rd_kafka_event_error(ev)) {
    why = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const auto** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n == 1 && rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
      why = rd_kafka_topic_result_error_string(res[0]);
    else
      ok = true;
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  for (int i = 0; ok && i < 150; ++i) {
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
    std::this_thread::sleep_for(100ms);
  }
  rd_kafka_destroy(rk);
  return ok;
}

inline void delete_topic(const std::string& topic) {
  rd_kafka_t* rk = new_kafka_client(RD_KAFKA_PRODUCER);
  if (!rk) return;
  rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, &dt, 1, nullptr, q);
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 10000)) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_DeleteTopic_destroy(dt);
  rd_kafka_destroy(rk);
}

// A topic made for one test suite and deleted afterwards.
struct scoped_topic {
  std::string name;
  explicit scoped_topic(const std::string& prefix, int partitions = 1) : name(unique_name(prefix)) {
    std::string why;
    if (!create_topic(name, partitions, why)) ADD_FAILURE() << "cannot create Kafka topic " << name << ": " << why;
  }
  ~scoped_topic() { delete_topic(name); }
  scoped_topic(const scoped_topic&) = delete;
  scoped_topic& operator=(const scoped_topic&) = delete;
};

struct kafka_record {
  int partition = -1;
  long long offset = -1;
  bool key_null = false;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header named `name`, or "<absent>".
  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return v;
    return "<absent>";
  }
  int header_count(const std::string& name) const {
    int c = 0;
    for (const auto& h : headers) c += h.first == name;
    return c;
  }
};

// Every record of `topic` from the beginning, read until at least
// `at_least` records passed `keep` and every partition reached its end, or
// `limit` passed.
template <class Pred>
std::vector<kafka_record> read_topic(const std::string& topic, std::size_t at_least, Pred keep,
                                     std::chrono::milliseconds limit = 60s) {
  std::vector<kafka_record> out;
  rd_kafka_t* rk = new_kafka_client(RD_KAFKA_CONSUMER, {{"group.id", unique_name("wharf-mqtt-test")},
                                                        {"enable.partition.eof", "true"},
                                                        {"enable.auto.commit", "false"}});
  if (!rk) {
    ADD_FAILURE() << "cannot create a Kafka consumer";
    return out;
  }
  int partitions = 0;
  const auto until = clock_type::now() + limit;
  while (partitions == 0 && clock_type::now() < until) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        partitions = md->topics[0].partition_cnt;
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (partitions == 0) std::this_thread::sleep_for(200ms);
  }
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<bool> at_eof(static_cast<std::size_t>(partitions), false);
  std::size_t kept = 0;
  while (clock_type::now() < until) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_eof[static_cast<std::size_t>(m->partition)] = true;
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      at_eof[static_cast<std::size_t>(m->partition)] = false;
      kafka_record r;
      r.partition = m->partition;
      r.offset = m->offset;
      r.key_null = m->key == nullptr;
      if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
          r.headers.emplace_back(name, val ? std::string(static_cast<const char*>(val), size) : std::string());
      }
      if (keep(r)) {
        out.push_back(std::move(r));
        ++kept;
      }
    }
    rd_kafka_message_destroy(m);
    bool all_eof = partitions > 0;
    for (bool e : at_eof) all_eof = all_eof && e;
    if (all_eof && kept >= at_least) break;
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
}

// Records of `topic` whose ce_clientid is `client_id`.
inline std::vector<kafka_record> read_client(const std::string& topic, const std::string& client_id,
                                             std::size_t at_least, std::chrono::milliseconds limit = 60s) {
  return read_topic(
      topic, at_least, [&](const kafka_record& r) { return r.header("ce_clientid") == client_id; }, limit);
}

// scripts/stack with `args`; its exit status.
inline int stack(const std::string& args, std::string* out = nullptr) {
  return run_command(source_dir() + "/scripts/stack " + args + " 2>&1", out);
}

// The node options every MQTT test starts from: Kafka of the stack, plain
// MQTT on a free port, no HTTP; `mqtt_yaml` is the body of the `mqtt:`
// section and `kafka_yaml` more of the `kafka:` section (both indented two
// spaces), `extra_yaml` top-level sections.
inline wharf_node::options node_options(const std::string& mqtt_yaml, const std::string& extra_yaml = "",
                                        const std::string& kafka_yaml = "") {
  wharf_node::options o;
  o.http = false;
  o.node_id = unique_name("mqtt-node");
  o.config_yaml = "kafka:\n  brokers: " + kafka_brokers() + "\n" + kafka_yaml + "mqtt:\n" + mqtt_yaml + extra_yaml;
  return o;
}

inline std::string uri(unsigned short port, const std::string& scheme = "tcp") {
  return scheme + "://127.0.0.1:" + std::to_string(port);
}

// A Paho client speaking `version` (MQTTVERSION_3_1_1 or MQTTVERSION_5).
inline std::unique_ptr<mqtt::async_client> paho_client(const std::string& server_uri, const std::string& client_id,
                                                       int version) {
  return std::make_unique<mqtt::async_client>(server_uri, client_id, mqtt::create_options(version));
}

inline mqtt::connect_options_builder paho_connect_options(int version) {
  mqtt::connect_options_builder b;
  b.mqtt_version(version).connect_timeout(10s).keep_alive_interval(60s);
  if (version == MQTTVERSION_5)
    b.clean_start(true);
  else
    b.clean_session(true);
  return b;
}

// The CONNACK code of a refused Paho connect; 0 when accepted, -1 when no
// CONNACK came. (Paho C++ 1.2 reports a refused 5.0 CONNACK's reason code
// as the exception's return code, not its reason code.)
inline int connect_result(mqtt::async_client& c, const mqtt::connect_options& opts) {
  try {
    c.connect(opts)->wait_for(15s);
    if (!c.is_connected()) return -1;
    return 0;
  } catch (const mqtt::exception& e) {
    return e.get_reason_code() != 0 ? e.get_reason_code() : e.get_return_code();
  }
}

// The reason code of a QoS 1/2 publish: 0 when stored, the PUBACK/PUBREC
// reason code when refused, -1 when the connection went away first.
inline int publish_result(mqtt::async_client& c, mqtt::const_message_ptr msg, std::chrono::milliseconds limit = 20s) {
  try {
    auto tok = c.publish(std::move(msg));
    if (!tok->wait_for(limit)) return -1;
    return tok->get_reason_code();
  } catch (const mqtt::exception& e) {
    if (e.get_reason_code() >= 0x80) return e.get_reason_code();
    return -1;
  }
}

// A QoS 1 publisher that keeps `window` messages in flight, numbers its
// payloads "<prefix>-<seq>", reconnects by itself when the connection drops
// and then re-sends every message not acknowledged yet. It records when each
// acknowledgement arrived.
class resending_publisher {
 public:
  resending_publisher(unsigned short port, std::string client_id, std::string topic, int window = 20,
                      int version = MQTTVERSION_5)
      : port_(port), client_id_(std::move(client_id)), topic_(std::move(topic)), window_(window), version_(version) {}
  ~resending_publisher() { stop(); }

  void start(long long max_messages) {
    limit_ = max_messages;
    running_ = true;
    thread_ = std::thread([this] { run(); });
  }
  // Stops publishing new messages and waits (up to `drain`) until every
  // message sent so far is acknowledged.
  bool finish(std::chrono::milliseconds drain) {
    limit_ = next_seq();
    auto until = clock_type::now() + drain;
    while (clock_type::now() < until) {
      if (acked_count() == static_cast<std::size_t>(limit_.load())) break;
      std::this_thread::sleep_for(50ms);
    }
    bool all = acked_count() == static_cast<std::size_t>(limit_.load());
    stop();
    return all;
  }
  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
    if (client_) {
      try {
        if (client_->is_connected()) client_->disconnect()->wait_for(5s);
      } catch (const mqtt::exception&) {
      }
      client_.reset();
    }
  }

  std::string payload(long long seq) const { return client_id_ + "-" + std::to_string(seq); }
  long long next_seq() {
    std::lock_guard l(mu_);
    return next_;
  }
  std::size_t acked_count() {
    std::lock_guard l(mu_);
    return acked_.size();
  }
  std::map<long long, clock_type::time_point> acked() {
    std::lock_guard l(mu_);
    return acked_;
  }
  std::vector<int> disconnect_reasons() {
    std::lock_guard l(mu_);
    return disconnect_reasons_;
  }
  int connects() const { return connects_.load(); }
  // Waits until at least `n` messages are acknowledged.
  bool wait_acked(std::size_t n, std::chrono::milliseconds limit) {
    auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
      if (acked_count() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return acked_count() >= n;
  }

 private:
  struct listener : mqtt::iaction_listener {
    resending_publisher* p;
    long long seq;
    int generation;
    listener(resending_publisher* pp, long long s, int g) : p(pp), seq(s), generation(g) {}
    void on_success(const mqtt::token& tok) override {
      // A 5.0 PUBACK may carry a failure reason code; only 0 is an ack.
      if (tok.get_reason_code() >= 0x80) return on_failure(tok);
      std::lock_guard l(p->mu_);
      p->acked_.emplace(seq, clock_type::now());
      p->outstanding_.erase(seq);
      p->resend_.erase(seq);
    }
    void on_failure(const mqtt::token&) override {
      std::lock_guard l(p->mu_);
      if (generation != p->generation_ || p->acked_.count(seq)) return;
      p->outstanding_.erase(seq);
      p->resend_.insert(seq);
    }
  };

  void run() {
    while (running_) {
      if (!client_ || !client_->is_connected()) {
        if (!connect()) {
          std::this_thread::sleep_for(300ms);
          continue;
        }
      }
      long long seq = -1;
      {
        std::lock_guard l(mu_);
        if (static_cast<int>(outstanding_.size()) < window_) {
          if (!resend_.empty()) {
            seq = *resend_.begin();
            resend_.erase(resend_.begin());
          } else if (next_ < limit_.load()) {
            seq = next_++;
          }
          if (seq >= 0) outstanding_.insert(seq);
        }
      }
      if (seq < 0) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      auto l = std::make_shared<listener>(this, seq, generation_);
      listeners_.push_back(l);
      try {
        client_->publish(mqtt::make_message(topic_, payload(seq), 1, false), nullptr, *l);
      } catch (const mqtt::exception&) {
        std::lock_guard lk(mu_);
        outstanding_.erase(seq);
        resend_.insert(seq);
      }
    }
  }

  bool connect() {
    {
      // Everything not acknowledged is sent again on the new connection.
      std::lock_guard l(mu_);
      ++generation_;
      for (auto s : outstanding_) resend_.insert(s);
      outstanding_.clear();
    }
    try {
      if (client_) {
        try {
          client_->disconnect(0)->wait_for(1s);
        } catch (const mqtt::exception&) {
        }
      }
      client_ = paho_client(uri(port_), client_id_, version_);
      client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode rc) {
        std::lock_guard l(mu_);
        disconnect_reasons_.push_back(static_cast<int>(rc));
      });
      auto opts = paho_connect_options(version_).max_inflight(window_ + 10).connect_timeout(3s).finalize();
      client_->connect(opts)->wait_for(5s);
      if (!client_->is_connected()) return false;
      ++connects_;
      return true;
    } catch (const mqtt::exception&) {
      return false;
    }
  }

  unsigned short port_;
  std::string client_id_, topic_;
  int window_, version_;
  std::unique_ptr<mqtt::async_client> client_;
  std::vector<std::shared_ptr<listener>> listeners_;  // Paho keeps references
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<long long> limit_{0};
  std::atomic<int> connects_{0};
  std::mutex mu_;
  long long next_ = 0;
  int generation_ = 0;
  std::set<long long> outstanding_, resend_;
  std::map<long long, clock_type::time_point> acked_;
  std::vector<int> disconnect_reasons_;
};

}  // namespace wharf::test::mqtt_it
