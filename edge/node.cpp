#include "edge/node.h"

#include "edge/admin_server.h"
#include "edge/build_info.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <dirent.h>
#include <sstream>
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
  std::atomic<bool> draining{false};
  std::atomic<bool> listeners_up{false};
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
    return checks;
  }

  std::string metrics_text() {
    update_process_metrics(*rss, *cpu, *fds);
    return prometheus::TextSerializer().Serialize(registry.Collect());
  }

  asio::io_context& main_context() { return *contexts.front(); }
};

node::node(config::config cfg, std::vector<std::string> warnings)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(warnings))) {}

node::~node() = default;

int node::run() {
  auto& s = *impl_;
  for (const auto& w : s.warnings) spdlog::warn("config: {}", w);
  spdlog::info("wharf {} ({}) starting as node {} with {} threads, config from {}", build_version(),
               build_revision(), s.cfg.node.id, s.contexts.size(), s.cfg.source);

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

  s.listeners_up = true;

  asio::signal_set signals(s.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&s](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("received signal {}: draining", signo);
    s.draining = true;
    if (s.admin) s.admin->stop();
    for (auto& c : s.contexts) c->stop();
  });

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
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace wharf::edge
