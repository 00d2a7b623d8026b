#include "sinks/kafka/kafka_sink.h"

#include "sinks/completion_batch.h"
#include "sinks/sink_metrics.h"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <librdkafka/rdkafka.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace wharf::sinks::kafka {

using clock_type = std::chrono::steady_clock;

// ---------------------------------------------------------------- settings

boost::system::result<std::string, std::string> resolve_references(std::string_view key, std::string_view value) {
  using result_type = boost::system::result<std::string, std::string>;
  auto fail = [](std::string msg) { return result_type(boost::system::in_place_error, std::move(msg)); };
  std::string out;
  std::size_t pos = 0;
  while (pos < value.size()) {
    const auto start = value.find("${", pos);
    if (start == std::string_view::npos) {
      out.append(value.substr(pos));
      break;
    }
    out.append(value.substr(pos, start - pos));
    const auto end = value.find('}', start);
    if (end == std::string_view::npos) {
      out.append(value.substr(start));
      break;
    }
    const std::string_view ref = value.substr(start + 2, end - start - 2);
    if (ref.starts_with("env:")) {
      const std::string name(ref.substr(4));
      const char* v = std::getenv(name.c_str());
      if (v == nullptr)
        return fail(std::string(key) + ": environment variable " + name + " is not set (referenced as ${env:" + name +
                    "})");
      out.append(v);
    } else if (ref.starts_with("file:")) {
      const std::string path(ref.substr(5));
      std::ifstream in(path, std::ios::binary);
      if (!in) return fail(std::string(key) + ": cannot read file " + path + " (referenced as ${file:" + path + "})");
      std::ostringstream ss;
      ss << in.rdbuf();
      std::string content = ss.str();
      if (content.ends_with("\r\n")) {
        content.resize(content.size() - 2);
      } else if (content.ends_with('\n')) {
        content.pop_back();
      }
      out.append(content);
    } else {
      // Not a reference we know: keep it literally.
      out.append(value.substr(start, end - start + 1));
    }
    pos = end + 1;
  }
  return result_type(boost::system::in_place_value, std::move(out));
}

boost::system::result<std::vector<producer_setting>, std::string> build_producer_settings(
    const config::kafka_config& cfg) {
  if (cfg.brokers.empty()) return std::string("kafka.brokers is empty: set it to host:port[,host:port...]");
  std::vector<producer_setting> s;
  s.push_back({"bootstrap.servers", cfg.brokers, "kafka.brokers"});
  s.push_back({"enable.idempotence", "true", "(fixed)"});
  s.push_back({"acks", "all", "(fixed)"});
  s.push_back({"allow.auto.create.topics", "false", "(fixed)"});
  s.push_back({"client.id", "wharf", "(default)"});
  s.push_back({"statistics.interval.ms", "1000", "(default)"});
  s.push_back({"message.timeout.ms", std::to_string(cfg.delivery_timeout.count()), "kafka.delivery_timeout"});
  s.push_back({"linger.ms", std::to_string(cfg.linger.count()), "kafka.linger"});
  // A missing topic fails its records as permanent (unknown topic) well
  // before the delivery timeout would fail them as retryable.
  s.push_back({"topic.metadata.propagation.max.ms",
               std::to_string(std::min<std::int64_t>(10000, cfg.delivery_timeout.count() / 2)), "(default)"});
  s.push_back({"compression.type", cfg.compression, "kafka.compression"});
  s.push_back({"queue.buffering.max.messages", std::to_string(cfg.queue_max_messages), "kafka.queue_max_messages"});
  s.push_back({"queue.buffering.max.kbytes", std::to_string(std::max<std::uint64_t>(1, cfg.queue_max_bytes / 1024)),
               "kafka.queue_max_bytes"});
  static const std::map<std::string, std::string> refused = {
      {"acks", "Wharf acknowledges senders only after acks=all"},
      {"request.required.acks", "Wharf acknowledges senders only after acks=all"},
      {"enable.idempotence", "the producer must be idempotent"},
      {"message.timeout.ms", "set kafka.delivery_timeout instead"},
      {"delivery.timeout.ms", "set kafka.delivery_timeout instead"},
      {"bootstrap.servers", "set kafka.brokers instead"},
      {"metadata.broker.list", "set kafka.brokers instead"},
      {"allow.auto.create.topics", "topics must be created with the right replication settings beforehand"},
  };
  for (const auto& [name, raw] : cfg.properties) {
    const std::string origin = "kafka.properties." + name;
    if (auto it = refused.find(name); it != refused.end()) return origin + " cannot be set: " + it->second;
    auto v = resolve_references(origin, raw);
    if (!v) return v.error();
    s.push_back({name, std::move(*v), origin});
  }
  return s;
}

// ---------------------------------------------------------------- the sink

namespace {

struct in_flight {
  record rec;  // librdkafka points into rec.value until the delivery report
  boost::asio::any_io_executor ex;
  completion done;
  clock_type::time_point submitted;
};

delivery_result classify(rd_kafka_resp_err_t err, rd_kafka_msg_status_t status) {
  using cause = delivery_result::cause;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (status == RD_KAFKA_MSG_STATUS_PERSISTED) return {delivery_status::stored, {}, cause::none};
    return {delivery_status::failed_retryable, "delivery report without PERSISTED status", cause::none};
  }
  std::string reason = rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return {delivery_status::failed_permanent, std::move(reason), cause::too_large};
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
      return {delivery_status::failed_permanent, std::move(reason), cause::unknown_topic};
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return {delivery_status::failed_permanent, std::move(reason), cause::not_authorized};
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return {delivery_status::failed_permanent, std::move(reason), cause::other};
    default:
      return {delivery_status::failed_retryable, std::move(reason), cause::none};
  }
}

}  // namespace

struct kafka_sink::impl {
  std::vector<producer_setting> settings;
  config::kafka_config cfg;
  std::vector<std::string> topics;
  sink_metrics metrics;
  prometheus::Gauge& queue_messages;
  prometheus::Gauge& queue_bytes;
  prometheus::Gauge& brokers_up;
  prometheus::Counter& restarts;
  prometheus::Family<prometheus::Gauge>& durability_family;

  // The producer. Replaced only by the poll thread, under the exclusive lock;
  // submit produces under the shared lock.
  std::shared_mutex rk_mu;
  rd_kafka_t* rk = nullptr;

  std::mutex pending_mu;
  std::unordered_map<std::uint64_t, std::unique_ptr<in_flight>> pending;
  std::uint64_t next_id = 1;
  std::condition_variable drained_cv;

  std::atomic<bool> closed{false};
  std::atomic<bool> stop_poll{false};
  std::atomic<bool> fatal_pending{false};
  std::atomic<bool> restarting{false};
  std::atomic<std::uint64_t> restart_count{0};
  std::thread poll_thread;
  completion_batch batch;  // poll thread (or shutdown, after it stopped)
  std::size_t delivered_in_round = 0;

  std::mutex capacity_mu;
  bool full = false;
  std::vector<std::pair<boost::asio::any_io_executor, std::function<void()>>> capacity_waiters;

  mutable std::mutex health_mu;
  int brokers_up_count = -1;  // unknown until the first statistics
  bool failing = false;       // the last completion was a retryable failure
  bool healthy = true;
  clock_type::time_point unhealthy_since{};
  // Progress: records waiting and none stored for `stall_after` also counts
  // as not delivering (e.g. too few in-sync replicas: brokers up, no acks).
  clock_type::time_point last_stored{};
  std::atomic<std::int64_t> busy_since_ns{0};  // when pending last went from empty to non-empty
  static constexpr std::chrono::seconds stall_after{10};
  std::size_t stats_msg_cnt = 0;
  std::size_t stats_msg_size = 0;

  std::mutex check_mu;
  std::condition_variable check_cv;
  bool check_done = false;
  std::vector<std::string> warnings;
  std::thread check_thread;

  impl(const config::kafka_config& c, std::vector<std::string> t, std::vector<producer_setting> s,
       prometheus::Registry& registry)
      : settings(std::move(s)),
        cfg(c),
        topics(std::move(t)),
        metrics(registry, "kafka"),
        queue_messages(prometheus::BuildGauge()
                           .Name("wharf_kafka_queue_messages")
                           .Help("Messages in librdkafka's producer queue (waiting or in flight)")
                           .Register(registry)
                           .Add({})),
        queue_bytes(prometheus::BuildGauge()
                        .Name("wharf_kafka_queue_bytes")
                        .Help("Bytes of messages in librdkafka's producer queue")
                        .Register(registry)
                        .Add({})),
        brokers_up(prometheus::BuildGauge()
                       .Name("wharf_kafka_brokers_up")
                       .Help("Kafka brokers the producer is connected to (state UP)")
                       .Register(registry)
                       .Add({})),
        restarts(prometheus::BuildCounter()
                     .Name("wharf_kafka_producer_restarts_total")
                     .Help("Times a fatal producer error made Wharf replace its Kafka producer")
                     .Register(registry)
                     .Add({})),
        durability_family(prometheus::BuildGauge()
                              .Name("wharf_kafka_topic_durability_warnings")
                              .Help("1 for a target topic that is missing or has replication factor < 3, "
                                    "min.insync.replicas < 2 or unclean leader election on")
                              .Register(registry)) {}

  boost::system::result<rd_kafka_t*, std::string> new_producer();
  void poll_loop();
  void restart_producer();
  void on_delivery(const rd_kafka_message_t* msg);
  void on_error(int err, const char* reason);
  void on_stats(std::string_view json);
  void complete(std::unique_ptr<in_flight> f, delivery_result r);
  void note_outcome(const delivery_result& r);
  void update_health_locked();
  void release_waiters();
  // Posts a retryable failure for every record in flight; returns the
  // records, to be freed after the producer is destroyed.
  std::unordered_map<std::uint64_t, std::unique_ptr<in_flight>> fail_all_pending(const std::string& reason);
  void check_topics();
  std::size_t pending_count() {
    std::lock_guard lk(pending_mu);
    return pending.size();
  }
};

namespace {

void dr_msg_cb(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<kafka_sink::impl*>(opaque)->on_delivery(msg);
}
void error_cb(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<kafka_sink::impl*>(opaque)->on_error(err, reason);
}
int stats_cb(rd_kafka_t*, char* json, size_t len, void* opaque) {
  static_cast<kafka_sink::impl*>(opaque)->on_stats(std::string_view(json, len));
  return 0;
}
void log_cb(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  // librdkafka logs every failed connection attempt as an error; the error
  // callback already reports what matters, so its log is turned down a step.
  auto lvl = level <= 2   ? spdlog::level::err
             : level <= 4 ? spdlog::level::warn
             : level <= 6 ? spdlog::level::info
                          : spdlog::level::debug;
  if (std::string_view(fac) == "FAIL") lvl = spdlog::level::debug;
  spdlog::log(lvl, "kafka: [{}] {}", fac, buf);
}

}  // namespace

boost::system::result<rd_kafka_t*, std::string> kafka_sink::impl::new_producer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& s : settings) {
    if (rd_kafka_conf_set(conf, s.name.c_str(), s.value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return s.origin + ": " + errstr;
    }
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_stats_cb(conf, stats_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (p == nullptr) {
    rd_kafka_conf_destroy(conf);
    return std::string("kafka producer: ") + errstr;
  }
  return p;
}

void kafka_sink::impl::complete(std::unique_ptr<in_flight> f, delivery_result r) {
  metrics.completed(r, clock_type::now() - f->submitted);
  note_outcome(r);
  batch.add(f->ex, std::move(f->done), std::move(r));
}

void kafka_sink::impl::on_delivery(const rd_kafka_message_t* msg) {
  const auto id = reinterpret_cast<std::uintptr_t>(msg->_private);
  std::unique_ptr<in_flight> f;
  {
    std::lock_guard lk(pending_mu);
    auto it = pending.find(id);
    if (it == pending.end()) return;  // already failed (producer replaced, shutdown)
    f = std::move(it->second);
    pending.erase(it);
    if (pending.empty()) drained_cv.notify_all();
  }
  ++delivered_in_round;
  auto r = classify(msg->err, rd_kafka_message_status(msg));
  if (r.status == delivery_status::failed_permanent)
    spdlog::warn("kafka: record for topic {} failed permanently: {}", f->rec.topic, r.reason);
  complete(std::move(f), std::move(r));
}

void kafka_sink::impl::on_error(int err, const char* reason) {
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    char detail[512];
    const auto orig = rd_kafka_fatal_error(rk, detail, sizeof detail);
    spdlog::error(
        "kafka: FATAL producer error {}: {} - failing records in flight as retryable and replacing the "
        "producer",
        rd_kafka_err2name(orig), detail);
    fatal_pending.store(true);
    return;
  }
  if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    spdlog::warn("kafka: all brokers are down: {}", reason);
    std::lock_guard lk(health_mu);
    brokers_up_count = 0;
    update_health_locked();
    return;
  }
  if (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__RESOLVE) {
    spdlog::info("kafka: {}: {}", rd_kafka_err2name(e), reason);
    return;
  }
  spdlog::warn("kafka: {}: {}", rd_kafka_err2name(e), reason);
}

void kafka_sink::impl::on_stats(std::string_view json) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return;
  const auto& o = v.get_object();
  int up = 0;
  if (auto* b = o.if_contains("brokers"); b && b->is_object()) {
    for (const auto& [name, broker] : b->get_object()) {
      if (!broker.is_object()) continue;
      const auto& bo = broker.get_object();
      const auto* state = bo.if_contains("state");
      const auto* nodeid = bo.if_contains("nodeid");
      if (state && state->is_string() && state->get_string() == "UP" && nodeid && nodeid->is_int64() &&
          nodeid->get_int64() >= 0)
        ++up;
    }
  }
  brokers_up.Set(up);
  std::lock_guard lk(health_mu);
  brokers_up_count = up;
  if (auto* m = o.if_contains("msg_cnt"); m && m->is_int64()) stats_msg_cnt = static_cast<std::size_t>(m->get_int64());
  if (auto* m = o.if_contains("msg_size"); m && m->is_int64())
    stats_msg_size = static_cast<std::size_t>(m->get_int64());
  queue_bytes.Set(static_cast<double>(stats_msg_size));
  update_health_locked();
}

void kafka_sink::impl::note_outcome(const delivery_result& r) {
  std::lock_guard lk(health_mu);
  const bool was = failing;
  failing = r.status == delivery_status::failed_retryable && !closed.load();
  if (r.status == delivery_status::stored) {
    failing = false;
    last_stored = clock_type::now();
  }
  if (was != failing) update_health_locked();
}

void kafka_sink::impl::update_health_locked() {
  const bool now_healthy = brokers_up_count != 0 && !failing;
  if (healthy && !now_healthy) unhealthy_since = clock_type::now();
  healthy = now_healthy;
}

void kafka_sink::impl::release_waiters() {
  std::vector<std::pair<boost::asio::any_io_executor, std::function<void()>>> w;
  {
    std::lock_guard lk(capacity_mu);
    full = false;
    w.swap(capacity_waiters);
  }
  for (auto& [ex, fn] : w) boost::asio::post(ex, std::move(fn));
}

std::unordered_map<std::uint64_t, std::unique_ptr<in_flight>> kafka_sink::impl::fail_all_pending(
    const std::string& reason) {
  std::unordered_map<std::uint64_t, std::unique_ptr<in_flight>> left;
  {
    std::lock_guard lk(pending_mu);
    left.swap(pending);
    drained_cv.notify_all();
  }
  // Fail in submit order so each connection sees its completions in order.
  std::map<std::uint64_t, in_flight*> ordered;
  for (auto& [id, f] : left) ordered.emplace(id, f.get());
  for (auto& [id, f] : ordered) {
    delivery_result r{delivery_status::failed_retryable, reason, delivery_result::cause::none};
    metrics.completed(r, clock_type::now() - f->submitted);
    note_outcome(r);
    batch.add(f->ex, std::move(f->done), std::move(r));
  }
  batch.post_all();
  // The records (and their payloads) stay alive in `left` until the caller
  // has destroyed the producer that may still point into them.
  return left;
}

void kafka_sink::impl::restart_producer() {
  fatal_pending.store(false);
  {
    std::lock_guard lk(capacity_mu);
    full = true;  // callers that get queue_full during the swap wait for it
  }
  restarting.store(true);
  std::unique_lock lk(rk_mu);
  // Serve what librdkafka reports itself, then fail the rest.
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
  rd_kafka_poll(rk, 0);
  batch.post_all();
  auto left = fail_all_pending("Kafka producer replaced after a fatal error");
  rd_kafka_destroy(rk);
  rk = nullptr;
  left.clear();
  restarts.Increment();
  restart_count.fetch_add(1);
  for (int attempt = 0; !stop_poll.load(); ++attempt) {
    auto p = new_producer();
    if (p) {
      rk = *p;
      break;
    }
    spdlog::error("kafka: cannot recreate the producer: {}", p.error());
    lk.unlock();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    lk.lock();
  }
  spdlog::error("kafka: producer replaced after a fatal error ({} replacement(s) so far)", restart_count.load());
  lk.unlock();
  restarting.store(false);
  release_waiters();
}

void kafka_sink::impl::poll_loop() {
  while (!stop_poll.load()) {
    delivered_in_round = 0;
    rd_kafka_poll(rk, 100);
    batch.post_all();
    queue_messages.Set(rd_kafka_outq_len(rk));
    if (fatal_pending.load()) {
      restart_producer();
      continue;
    }
    // Room again once deliveries freed some, or when nothing is queued at all
    // (then no delivery report would ever wake the waiters).
    bool was_full;
    {
      std::lock_guard lk(capacity_mu);
      was_full = full;
    }
    if (was_full && (delivered_in_round > 0 || rd_kafka_outq_len(rk) == 0)) release_waiters();
  }
}

void kafka_sink::impl::check_topics() {
  auto done = [this](std::vector<std::string> w) {
    std::lock_guard lk(check_mu);
    warnings = std::move(w);
    check_done = true;
    check_cv.notify_all();
  };
  if (topics.empty()) return done({});
  // A separate, short-lived handle, so the check never holds up the producer.
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& s : settings) {
    if (s.name == "enable.idempotence" || s.name == "acks" || s.name == "statistics.interval.ms") continue;
    rd_kafka_conf_set(conf, s.name.c_str(), s.value.c_str(), errstr, sizeof errstr);
  }
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_t* admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (admin == nullptr) {
    rd_kafka_conf_destroy(conf);
    spdlog::warn("kafka: cannot check topic durability: {}", errstr);
    return done({});
  }
  const int timeout_ms = 10000;
  std::set<std::string> weak;
  std::map<std::string, int> replication;
  const rd_kafka_metadata_t* md = nullptr;
  if (auto err = rd_kafka_metadata(admin, 1, nullptr, &md, timeout_ms); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka: cannot check topic durability (metadata: {}); the check is skipped", rd_kafka_err2str(err));
    rd_kafka_destroy(admin);
    return done({});
  }
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt == 0) continue;
    int rf = 1 << 30;
    for (int p = 0; p < t.partition_cnt; ++p) rf = std::min(rf, t.partitions[p].replica_cnt);
    replication[t.topic] = rf;
  }
  rd_kafka_metadata_destroy(md);
  std::vector<std::string> existing;
  for (const auto& t : topics) {
    auto it = replication.find(t);
    if (it == replication.end()) {
      spdlog::error(
          "kafka: topic {} does not exist and Wharf does not create topics: create it with replication "
          "factor 3 and min.insync.replicas=2",
          t);
      weak.insert(t);
      continue;
    }
    existing.push_back(t);
    if (it->second < 3) {
      spdlog::warn(
          "kafka: topic {} has replication factor {}: acknowledged records can be lost when a broker "
          "fails; use 3",
          t, it->second);
      weak.insert(t);
    }
  }
  if (!existing.empty()) {
    rd_kafka_queue_t* q = rd_kafka_queue_new(admin);
    std::vector<rd_kafka_ConfigResource_t*> res;
    for (const auto& t : existing) res.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(admin, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr);
    rd_kafka_DescribeConfigs(admin, res.data(), res.size(), opts, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (ev == nullptr || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: cannot describe topic configs: {}", ev ? rd_kafka_event_error_string(ev) : "timed out");
    } else {
      const auto* result = rd_kafka_event_DescribeConfigs_result(ev);
      size_t n = 0;
      const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
      for (size_t i = 0; i < n; ++i) {
        const std::string topic = rd_kafka_ConfigResource_name(rs[i]);
        if (rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          spdlog::warn("kafka: cannot describe topic {}: {}", topic, rd_kafka_ConfigResource_error_string(rs[i]));
          continue;
        }
        size_t ce = 0;
        const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &ce);
        for (size_t j = 0; j < ce; ++j) {
          const std::string name = rd_kafka_ConfigEntry_name(entries[j]);
          const char* value = rd_kafka_ConfigEntry_value(entries[j]);
          if (value == nullptr) continue;
          if (name == "min.insync.replicas" && std::atoi(value) < 2) {
            spdlog::warn(
                "kafka: topic {} has min.insync.replicas={}: acks=all then waits for too few replicas; "
                "use 2 (with replication factor 3)",
                topic, value);
            weak.insert(topic);
          }
          if (name == "unclean.leader.election.enable" && std::string_view(value) == "true") {
            spdlog::warn(
                "kafka: topic {} allows unclean leader election: acknowledged records can be lost; "
                "turn it off",
                topic);
            weak.insert(topic);
          }
        }
      }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    for (auto* r : res) rd_kafka_ConfigResource_destroy(r);
    rd_kafka_queue_destroy(q);
  }
  rd_kafka_destroy(admin);
  for (const auto& t : topics) durability_family.Add({{"topic", t}}).Set(weak.count(t) ? 1 : 0);
  if (weak.empty()) spdlog::info("kafka: {} target topic(s) checked: durability settings are fine", topics.size());
  done(std::vector<std::string>(weak.begin(), weak.end()));
}

// ---------------------------------------------------------------- public

kafka_sink::kafka_sink(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

kafka_sink::~kafka_sink() { shutdown(std::chrono::milliseconds(5000)); }

boost::system::result<std::unique_ptr<kafka_sink>, std::string> kafka_sink::create(const config::kafka_config& cfg,
                                                                                   std::vector<std::string> topics,
                                                                                   prometheus::Registry& registry) {
  auto settings = build_producer_settings(cfg);
  if (!settings) return settings.error();
  auto p = std::make_unique<impl>(cfg, std::move(topics), std::move(*settings), registry);
  auto rk = p->new_producer();
  if (!rk) return rk.error();
  p->rk = *rk;
  impl* raw = p.get();
  p->poll_thread = std::thread([raw] { raw->poll_loop(); });
  if (cfg.check_topics) {
    p->check_thread = std::thread([raw] { raw->check_topics(); });
  } else {
    p->check_done = true;
  }
  spdlog::info("kafka: producer for {} (acks=all, idempotent, linger {} ms, compression {}, delivery timeout {} ms)",
               cfg.brokers, cfg.linger.count(), cfg.compression, cfg.delivery_timeout.count());
  return std::unique_ptr<kafka_sink>(new kafka_sink(std::move(p)));
}

submit_status kafka_sink::submit(record rec, boost::asio::any_io_executor ex, completion done) {
  return try_submit(rec, std::move(ex), std::move(done));
}

submit_status kafka_sink::try_submit(record& rec, boost::asio::any_io_executor ex, completion done) {
  auto& d = *impl_;
  std::shared_lock lk(d.rk_mu, std::try_to_lock);
  if (!lk.owns_lock()) {
    if (d.closed.load()) return submit_status::closed;
    if (d.restarting.load()) {
      // The producer is being replaced: back-pressure until it is back.
      std::lock_guard clk(d.capacity_mu);
      d.full = true;
      return submit_status::queue_full;
    }
    lk.lock();  // try_lock_shared may fail spuriously; nobody holds it long
  }
  if (d.closed.load() || d.rk == nullptr) return submit_status::closed;

  auto f = std::make_unique<in_flight>(in_flight{std::move(rec), std::move(ex), std::move(done), clock_type::now()});
  in_flight* raw = f.get();
  std::uint64_t id;
  {
    std::lock_guard plk(d.pending_mu);
    id = d.next_id++;
    d.pending.emplace(id, std::move(f));
    if (d.pending.size() == 1)
      d.busy_since_ns.store(clock_type::now().time_since_epoch().count(), std::memory_order_relaxed);
  }
  rd_kafka_headers_t* hdrs = nullptr;
  if (!raw->rec.headers.empty()) {
    hdrs = rd_kafka_headers_new(raw->rec.headers.size());
    for (const auto& h : raw->rec.headers)
      rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
  }
  // No F_COPY: the value stays in `raw->rec` until the delivery report;
  // librdkafka copies it once into the produce request.
  const auto err = rd_kafka_producev(
      d.rk, RD_KAFKA_V_TOPIC(raw->rec.topic.c_str()), RD_KAFKA_V_KEY(raw->rec.key.data(), raw->rec.key.size()),
      RD_KAFKA_V_VALUE(raw->rec.value.data(), raw->rec.value.size()), RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(id))), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    d.metrics.submitted();
    return submit_status::accepted;
  }
  if (hdrs) rd_kafka_headers_destroy(hdrs);
  std::unique_ptr<in_flight> back;
  {
    std::lock_guard plk(d.pending_mu);
    auto it = d.pending.find(id);
    back = std::move(it->second);
    d.pending.erase(it);
  }
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    rec = std::move(back->rec);  // the caller keeps it for a later attempt
    std::lock_guard clk(d.capacity_mu);
    d.full = true;
    return submit_status::queue_full;
  }
  // Refused at once (too large, unknown topic, fatal state ...): the record
  // was accepted by the interface, so its completion fires, posted.
  d.metrics.submitted();
  auto r = classify(err, RD_KAFKA_MSG_STATUS_NOT_PERSISTED);
  if (err == RD_KAFKA_RESP_ERR__FATAL) d.fatal_pending.store(true);
  d.metrics.completed(r, clock_type::now() - back->submitted);
  boost::asio::post(back->ex, [done = std::move(back->done), r = std::move(r)]() mutable { done(std::move(r)); });
  return submit_status::accepted;
}

void kafka_sink::async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) {
  std::lock_guard lk(impl_->capacity_mu);
  if (!impl_->full || impl_->closed.load()) {
    boost::asio::post(ex, std::move(ready));
    return;
  }
  impl_->capacity_waiters.emplace_back(std::move(ex), std::move(ready));
}

sink_health kafka_sink::health() const {
  std::size_t pending;
  {
    std::lock_guard plk(impl_->pending_mu);
    pending = impl_->pending.size();
  }
  std::lock_guard lk(impl_->health_mu);
  sink_health h;
  h.delivering = impl_->healthy;
  h.unhealthy_since = impl_->unhealthy_since;
  h.queued_records = pending;
  h.queued_bytes = impl_->stats_msg_size;
  if (h.delivering && pending > 0) {
    const clock_type::time_point busy{clock_type::duration{impl_->busy_since_ns.load(std::memory_order_relaxed)}};
    const auto progress = std::max(impl_->last_stored, busy);
    if (clock_type::now() - progress > impl::stall_after) {
      h.delivering = false;
      h.unhealthy_since = progress + impl::stall_after;
    }
  }
  return h;
}

void kafka_sink::shutdown(std::chrono::milliseconds deadline) {
  auto& d = *impl_;
  if (d.closed.exchange(true)) {
    if (d.poll_thread.joinable()) d.poll_thread.join();
    return;
  }
  {
    // No produce is in progress once we hold the lock once.
    std::unique_lock lk(d.rk_mu);
  }
  {
    std::unique_lock lk(d.pending_mu);
    d.drained_cv.wait_for(lk, deadline, [&] { return d.pending.empty(); });
  }
  d.stop_poll.store(true);
  if (d.poll_thread.joinable()) d.poll_thread.join();
  if (d.check_thread.joinable()) d.check_thread.join();
  if (d.rk != nullptr) {
    if (const auto unconfirmed = d.pending_count(); unconfirmed > 0)
      spdlog::warn("kafka: shutdown deadline passed with {} record(s) unconfirmed: failing them as retryable",
                   unconfirmed);
    rd_kafka_purge(d.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_poll(d.rk, 0);
    d.batch.post_all();
    // Whatever librdkafka did not report: completions now, payloads freed
    // after the producer is gone.
    auto left = d.fail_all_pending("Kafka sink shut down before the record was confirmed");
    rd_kafka_destroy(d.rk);
    d.rk = nullptr;
  }
  d.release_waiters();
}

std::uint64_t kafka_sink::producer_restarts() const noexcept { return impl_->restart_count.load(); }

std::vector<std::string> kafka_sink::durability_warnings() const {
  std::lock_guard lk(impl_->check_mu);
  return impl_->warnings;
}

void kafka_sink::wait_topic_check() {
  std::unique_lock lk(impl_->check_mu);
  impl_->check_cv.wait(lk, [&] { return impl_->check_done; });
}

void* kafka_sink::native_handle_for_testing() noexcept { return impl_->rk; }

boost::system::result<std::unique_ptr<sink>, std::string> make_kafka_sink(const config::kafka_config& cfg,
                                                                          std::vector<std::string> topics,
                                                                          prometheus::Registry& registry) {
  auto r = kafka_sink::create(cfg, std::move(topics), registry);
  if (!r) return r.error();
  return std::unique_ptr<sink>(std::move(*r));
}

}  // namespace wharf::sinks::kafka
