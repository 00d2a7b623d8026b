#include "edge/node.h"

#include "edge/admin_server.h"
#include "edge/build_info.h"
#include "protocols/http/server/http_server.h"
#include "protocols/mqtt/server/mqtt_server.h"
#include "sinks/kafka/kafka_sink.h"
#include "sinks/local_log/forwarder.h"
#include "sinks/local_log/local_log_sink.h"
#include "sinks/null_sink.h"
#include "state/session_store.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <future>
#include <fstream>
#include <thread>
#include <dirent.h>
#include <sstream>
#include <string_view>
#include <unistd.h>

namespace wharf::edge {

namespace asio = boost::asio;

namespace {

// Resident and virtual memory and CPU time of this process from /proc.
void update_process_metrics(prometheus::Gauge& rss, prometheus::Gauge& cpu, prometheus::Gauge& fds) {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (statm >> pages_total >> pages_resident) rss.Set(static_cast<double>(pages_resident) * ::sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    auto close = line.rfind(')');
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoul(field);
      if (i == 15) stime = std::stoul(field);
    }
    cpu.Set(static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK)));
  }
  int n = 0;
  if (auto* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  fds.Set(n > 2 ? n - 2 : 0);
}

}  // namespace

struct node::impl {
  config::config cfg;
  std::vector<std::string> warnings;
  prometheus::Registry registry;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::thread> threads;
  std::unique_ptr<admin_server> admin;
  std::unique_ptr<sinks::sink> sink;
  std::unique_ptr<sinks::local_log::local_log_sink> wal;
  std::unique_ptr<sinks::local_log::forwarder> forwarder;
  std::unique_ptr<state::session_store> store;
  std::unique_ptr<mqtt::mqtt_server> mqtt;
  std::unique_ptr<::wharf::http::http_server> http;
  std::atomic<bool> draining{false};
  std::atomic<bool> listeners_up{false};
  std::thread shutdown_thread;
  std::atomic<bool> shutting_down{false};
  prometheus::Gauge* rss = nullptr;
  prometheus::Gauge* cpu = nullptr;
  prometheus::Gauge* fds = nullptr;

  impl(config::config c, std::vector<std::string> w) : cfg(std::move(c)), warnings(std::move(w)) {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
    prometheus::BuildGauge()
        .Name("wharf_build_info")
        .Help("Build identity; the value is always 1")
        .Register(registry)
        .Add({{"version", build_version()}, {"revision", build_revision()}})
        .Set(1);
    rss = &prometheus::BuildGauge()
               .Name("process_resident_memory_bytes")
               .Help("Resident memory size in bytes")
               .Register(registry)
               .Add({});
    cpu = &prometheus::BuildGauge()
               .Name("process_cpu_seconds_total")
               .Help("User and system CPU time spent in seconds")
               .Register(registry)
               .Add({});
    fds = &prometheus::BuildGauge()
               .Name("process_open_fds")
               .Help("Number of open file descriptors")
               .Register(registry)
               .Add({});
  }

  std::vector<readiness_check> readiness() {
    std::vector<readiness_check> checks;
    checks.push_back({"listeners", listeners_up.load(), listeners_up ? "all listeners accept" : "starting"});
    checks.push_back({"draining", !draining.load(), draining ? "the node is draining" : "not draining"});
    if (sink) {
      auto h = sink->health();
      // A short outage keeps the node in the load balancer: pulling every
      // pod out at once on a broker blip would turn a blip into an outage.
      bool ok = h.delivering || std::chrono::steady_clock::now() - h.unhealthy_since < cfg.admin.unready_after;
      std::string detail = std::string(sink->name()) + (h.delivering ? " delivering" : " not delivering") + ", " +
                           std::to_string(h.queued_records) + " records queued";
      checks.push_back({"sink", ok, detail});
    }
    if (store) {
      // Same rule for Redis: a failover takes seconds and must not pull
      // every node out of the load balancer; a Redis without a primary for
      // longer than admin.unready_after makes every CONNECT fail.
      auto h = store->health();
      auto down = std::chrono::steady_clock::now() - h.no_primary_since;
      bool ok = h.has_primary || down < cfg.admin.unready_after;
      std::string detail =
          cfg.redis.url.empty() ? "in memory"
          : h.has_primary
              ? "Redis primary connected"
              : "no Redis primary for " +
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(down).count()) + " ms";
      checks.push_back({"sessions", ok, detail});
    }
    return checks;
  }

  std::vector<asio::io_context*> context_ptrs() {
    std::vector<asio::io_context*> out;
    for (auto& c : contexts) out.push_back(c.get());
    return out;
  }

  // Builds the sink, the async write-ahead log, the session store and the
  // servers. Returns false (after logging why) when the node cannot start.
  bool build();
  void begin_drain();
  void finish_shutdown();

  std::string metrics_text() {
    update_process_metrics(*rss, *cpu, *fds);
    if (mqtt) mqtt->refresh_metrics();
    return prometheus::TextSerializer().Serialize(registry.Collect());
  }

  asio::io_context& main_context() { return *contexts.front(); }
};

bool node::impl::build() {
  std::vector<std::string> topics;
  for (const auto& r : cfg.mqtt.routes) topics.push_back(r.kafka_topic);
  if (cfg.mqtt.default_route) topics.push_back(cfg.mqtt.default_route->kafka_topic);
  for (const auto& t : cfg.http.types) topics.push_back(t.kafka_topic);
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());

  if (const char* b = std::getenv("WHARF_BENCH_NULL_SINK"); b && std::string_view(b) == "1") {
    // Benchmarks of the protocol layers only (bench/run): acknowledges every
    // record at once without storing it. Not a configuration key on purpose.
    sink = sinks::make_null_sink(registry);
    spdlog::critical(
        "benchmark mode (WHARF_BENCH_NULL_SINK=1): messages are NOT stored; every record is "
        "acknowledged and dropped");
  } else if (!cfg.kafka.brokers.empty()) {
    auto k = sinks::kafka::make_kafka_sink(cfg.kafka, topics, registry);
    if (!k) {
      spdlog::error("kafka: {}", k.error());
      return false;
    }
    sink = std::move(*k);
    spdlog::info("sink: Kafka at {} (acks=all, idempotent, delivery timeout {}ms)", cfg.kafka.brokers,
                 cfg.kafka.delivery_timeout.count());
    bool wants_async = !cfg.http.listen.empty() || !cfg.http.tls.listen.empty();
    if (wants_async) {
      // The write-ahead log of async HTTP (202 after fsync), forwarded to Kafka.
      auto opts = sinks::local_log::local_log_options::from(cfg.local_log);
      opts.dir = cfg.node.data_dir + "/wal";
      opts.sink_label = "wal";
      auto w = sinks::local_log::local_log_sink::open(opts, registry);
      if (!w) {
        spdlog::error("write-ahead log: {}", w.error());
        return false;
      }
      wal = std::move(*w);
      forwarder =
          std::make_unique<sinks::local_log::forwarder>(*wal, *sink, sinks::local_log::forwarder_options{}, registry);
      if (auto r = forwarder->start(); !r) {
        spdlog::error("write-ahead log forwarder: {}", r.error());
        return false;
      }
      spdlog::info("async HTTP: write-ahead log in {}, forwarded to Kafka", opts.dir);
    }
  } else {
    auto l = sinks::local_log::make_local_log_sink(cfg.local_log, registry);
    if (!l) {
      spdlog::error("local log: {}", l.error());
      return false;
    }
    sink = std::move(*l);
    spdlog::warn(
        "sink: no kafka.brokers configured; messages are stored in the local log {} (embedded default; "
        "read it with `wharf log cat {}`)",
        cfg.local_log.dir, cfg.local_log.dir);
  }

  try {
    store = state::make_session_store(cfg.redis, cfg.node.id, main_context(), registry);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return false;
  }
  if (cfg.redis.url.empty())
    spdlog::warn(
        "sessions: no redis.url configured; sessions are kept in memory on this node only (embedded "
        "default): a device cannot resume on another node");
  else
    spdlog::info("sessions: Redis at {}", cfg.redis.url);

  try {
    if (!cfg.mqtt.listen.empty() || !cfg.mqtt.tls.listen.empty()) {
      mqtt = std::make_unique<mqtt::mqtt_server>(context_ptrs(), cfg.mqtt, cfg.node.id, *sink, *store, registry);
      if (auto ec = mqtt->start()) {
        spdlog::error("mqtt.listen {} / mqtt.tls.listen {}: cannot listen: {}", cfg.mqtt.listen, cfg.mqtt.tls.listen,
                      ec.message());
        return false;
      }
      if (!cfg.mqtt.listen.empty()) spdlog::info("mqtt: listening on {} (port {})", cfg.mqtt.listen, mqtt->port());
      if (!cfg.mqtt.tls.listen.empty())
        spdlog::info("mqtt: TLS listening on {} (port {})", cfg.mqtt.tls.listen, mqtt->tls_port());
    }
    if (!cfg.http.listen.empty() || !cfg.http.tls.listen.empty()) {
      http = std::make_unique<::wharf::http::http_server>(main_context(), cfg.http, *sink, wal.get(), cfg.node.id,
                                                          registry);
      if (auto ec = http->start()) {
        spdlog::error("http.listen {}: cannot listen: {}", cfg.http.listen, ec.message());
        return false;
      }
      spdlog::info("http: listening on {} (port {})", cfg.http.listen, http->local_port());
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return false;
  }
  return true;
}

// SIGTERM: readiness false at once; stop accepting; MQTT clients are
// disconnected over drain.duration after their acknowledgements are written;
// HTTP requests in flight finish; then the sessions are released and the
// sink flushes with drain.flush_timeout.
void node::impl::begin_drain() {
  draining = true;
  auto pending = std::make_shared<std::atomic<int>>(2);
  auto one_done = [this, pending] {
    if (pending->fetch_sub(1) == 1) finish_shutdown();
  };
  if (http) {
    http->stop_accepting();
    http->async_drain(cfg.drain.duration + std::chrono::seconds(1), one_done);
  } else {
    one_done();
  }
  if (mqtt) {
    mqtt->drain(cfg.drain.duration,
                std::chrono::milliseconds(std::min<long long>(cfg.mqtt.delivery_timeout.count(), 5000)),
                cfg.drain.server_reference, [this, one_done] { asio::post(main_context(), one_done); });
  } else {
    one_done();
  }
}

void node::impl::finish_shutdown() {
  if (shutting_down.exchange(true)) return;
  if (mqtt) mqtt->stop();
  if (http) http->stop();
  if (admin) admin->stop();
  // Flushing blocks; the io_contexts keep running meanwhile so completions
  // (and their acknowledgements) still reach connections that remain.
  shutdown_thread = std::thread([this] {
    if (store) {
      std::promise<void> released;
      auto f = released.get_future();
      store->shutdown(main_context().get_executor(), [&released](boost::system::error_code ec) {
        if (ec) spdlog::warn("sessions: shutdown: {}", ec.message());
        released.set_value();
      });
      if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
        spdlog::warn("sessions: shutdown did not finish in 5s");
    }
    if (forwarder) forwarder->stop(cfg.drain.flush_timeout);
    if (sink) sink->shutdown(cfg.drain.flush_timeout);
    if (wal) wal->shutdown(cfg.drain.flush_timeout);
    for (auto& c : contexts) c->stop();
  });
}

node::node(config::config cfg, std::vector<std::string> warnings)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(warnings))) {}

node::~node() = default;

int node::run() {
  auto& s = *impl_;
  for (const auto& w : s.warnings) spdlog::warn("config: {}", w);
  spdlog::info("wharf {} ({}) starting as node {} with {} threads, config from {}", build_version(), build_revision(),
               s.cfg.node.id, s.contexts.size(), s.cfg.source);

  if (!s.cfg.admin.listen.empty()) {
    s.admin = std::make_unique<admin_server>(
        s.main_context(), admin_sources{[&s] { return s.readiness(); }, [&s] { return s.metrics_text(); }});
    if (auto ec = s.admin->start(s.cfg.admin.listen)) {
      spdlog::error("admin.listen {}: cannot listen: {}", s.cfg.admin.listen, ec.message());
      return 1;
    }
    spdlog::info("admin: listening on {} (/livez /readyz /metrics), port {}", s.cfg.admin.listen,
                 s.admin->local_port());
  }

  if (!s.build()) return 1;
  s.listeners_up = true;

  asio::signal_set signals(s.main_context(), SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&s, &signals, &on_signal](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (s.draining) {
      spdlog::warn("received signal {} again: stopping now", signo);
      s.finish_shutdown();
      return;
    }
    spdlog::info("received signal {}: draining", signo);
    s.begin_drain();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  for (std::size_t i = 1; i < s.contexts.size(); ++i) {
    s.threads.emplace_back([ctx = s.contexts[i].get()] {
      auto guard = asio::make_work_guard(*ctx);
      ctx->run();
    });
  }
  {
    auto guard = asio::make_work_guard(s.main_context());
    s.main_context().run();
  }
  for (auto& t : s.threads) t.join();
  if (s.shutdown_thread.joinable()) s.shutdown_thread.join();
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace wharf::edge
