// Sink-only throughput and delivery latency.
//
//   sink_bench kafka --brokers LIST [--topic T] [--records N] [--size B]
//                    [--linger MS] [--compression C] [--rate R] [--window W]
//                    [--partitions P] [--replication R]
//   sink_bench local-log --dir D [--records N] [--size B] [--writers W] [--rate R]
//   sink_bench null [--records N]
//
// kafka: creates the topic if needed (P partitions, replication R,
// min.insync.replicas min(R,2)), submits N records of B bytes (200 by
// default) with keys spread over 1000 devices, at most W in flight
// (default 20000), at R records/s (0 = as fast as back-pressure allows), and
// prints records/s and submit->stored latency p50/p99/max. local-log: W
// threads submit N records in total (R records/s overall, 0 = unpaced);
// prints records/s, records per fsync and, per writer, the latency.
#include "sinks/kafka/kafka_sink.h"
#include "sinks/local_log/local_log_sink.h"
#include "sinks/null_sink.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <librdkafka/rdkafka.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace wharf;
using steady = std::chrono::steady_clock;

namespace {

std::map<std::string, std::string> parse_flags(int argc, char** argv, int from) {
  std::map<std::string, std::string> f;
  for (int i = from; i + 1 < argc; i += 2) f[argv[i]] = argv[i + 1];
  return f;
}

std::string flag(const std::map<std::string, std::string>& f, const std::string& name, const std::string& def) {
  auto it = f.find(name);
  return it == f.end() ? def : it->second;
}

void create_topic(const std::string& brokers, const std::string& topic, int partitions, int rf) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, rf, err, sizeof err);
  rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", std::to_string(std::min(rf, 2)).c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000)) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(rk);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // leaders elected
}

struct latencies {
  std::mutex mu;
  std::vector<double> ms;
  std::atomic<std::size_t> stored{0}, failed{0};
  void add(double v, bool ok) {
    if (ok) {
      ++stored;
    } else {
      ++failed;
    }
    std::lock_guard lk(mu);
    ms.push_back(v);
  }
  void print(const char* what, std::size_t n, double seconds) {
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) {
      return ms.empty() ? 0 : ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))];
    };
    std::printf(
        "%s: %zu records in %.2f s = %.0f records/s; stored %zu, failed %zu; latency ms p50 %.2f p99 %.2f max %.2f\n",
        what, n, seconds, n / seconds, stored.load(), failed.load(), pct(0.50), pct(0.99), ms.empty() ? 0 : ms.back());
  }
};

// Submits `n` records through `s` with at most `window` outstanding, at
// `rate` records/s (0 = unpaced).
void drive(sinks::sink& s, const std::string& topic, std::size_t n, std::size_t size, std::size_t window, double rate,
           const char* label) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  latencies lat;
  std::atomic<std::size_t> outstanding{0};
  const std::string value(size, 'x');
  const auto t0 = steady::now();
  for (std::size_t i = 0; i < n; ++i) {
    if (rate > 0) std::this_thread::sleep_until(t0 + std::chrono::duration<double>(i / rate));
    while (outstanding.load() >= window) std::this_thread::sleep_for(std::chrono::microseconds(50));
    sinks::record r;
    r.topic = topic;
    r.key = "device-" + std::to_string(i % 1000);
    r.value = value;
    r.headers = {{"ce_id", std::to_string(i)}, {"ce_specversion", "1.0"}};
    const auto submitted = steady::now();
    ++outstanding;
    for (;;) {
      const auto st = s.submit(r, io.get_executor(), [&, submitted](sinks::delivery_result res) {
        lat.add(std::chrono::duration<double, std::milli>(steady::now() - submitted).count(), res.stored());
        --outstanding;
      });
      if (st == sinks::submit_status::accepted) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  while (outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double secs = std::chrono::duration<double>(steady::now() - t0).count();
  work.reset();
  runner.join();
  lat.print(label, n, secs);
}

double histogram(prometheus::Registry& r, const std::string& name, bool sum) {
  for (const auto& fam : r.Collect())
    if (fam.name == name)
      for (const auto& m : fam.metric)
        return sum ? m.histogram.sample_sum : static_cast<double>(m.histogram.sample_count);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sink_bench kafka|local-log|null [--flag value ...] (see the source header)\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string mode = argv[1];
  const auto f = parse_flags(argc, argv, 2);
  const std::size_t n = std::stoull(flag(f, "--records", "200000"));
  const std::size_t size = std::stoull(flag(f, "--size", "200"));
  prometheus::Registry registry;

  if (mode == "kafka") {
    config::kafka_config c;
    c.brokers = flag(f, "--brokers", "127.0.0.1:9092");
    c.linger = std::chrono::milliseconds(std::stoll(flag(f, "--linger", "5")));
    c.compression = flag(f, "--compression", "lz4");
    c.check_topics = false;
    const std::string topic = flag(f, "--topic", "wharf.bench." + std::to_string(::getpid()));
    create_topic(c.brokers, topic, std::stoi(flag(f, "--partitions", "6")), std::stoi(flag(f, "--replication", "3")));
    auto s = sinks::kafka::kafka_sink::create(c, {topic}, registry);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error().c_str());
      return 1;
    }
    const std::string label = "kafka linger=" + flag(f, "--linger", "5") + "ms compression=" + c.compression +
                              " rate=" + flag(f, "--rate", "0");
    drive(**s, topic, n, size, std::stoull(flag(f, "--window", "20000")), std::stod(flag(f, "--rate", "0")),
          label.c_str());
    (*s)->shutdown(std::chrono::seconds(10));
    return 0;
  }
  if (mode == "local-log") {
    sinks::local_log::local_log_options o;
    o.dir = flag(f, "--dir", "/tmp/wharf-bench-log-" + std::to_string(::getpid()));
    std::filesystem::remove_all(o.dir);
    auto s = sinks::local_log::local_log_sink::open(o, registry);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error().c_str());
      return 1;
    }
    const std::size_t writers = std::stoull(flag(f, "--writers", "4"));
    const double rate = std::stod(flag(f, "--rate", "0")) / static_cast<double>(writers);
    std::vector<std::thread> threads;
    const auto t0 = steady::now();
    for (std::size_t w = 0; w < writers; ++w)
      threads.emplace_back([&] { drive(**s, "bench", n / writers, size, 100000, rate, "  writer"); });
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(steady::now() - t0).count();
    const double fsyncs = histogram(registry, "wharf_local_log_records_per_fsync", false);
    const double fsync_time = histogram(registry, "wharf_local_log_fsync_seconds", true);
    std::printf(
        "local-log: %zu records from %zu writers in %.2f s = %.0f records/s; %.0f fsyncs, %.1f records per "
        "fsync, mean write+fsync %.2f ms\n",
        n, writers, secs, n / secs, fsyncs, n / std::max(1.0, fsyncs), 1000 * fsync_time / std::max(1.0, fsyncs));
    (*s)->shutdown(std::chrono::seconds(10));
    std::filesystem::remove_all(o.dir);
    return 0;
  }
  if (mode == "null") {
    auto s = sinks::make_null_sink(registry);
    drive(*s, "bench", n, size, 100000, 0, "null");
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
