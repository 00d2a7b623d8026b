// Test program for local_log_crash_test: appends records "seq-N" (N from
// argv[2] on) to the local log in argv[1] from two threads, and prints each
// N on its own line once the log reports it stored. Runs until killed.
#include "sinks/local_log/local_log_sink.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <prometheus/registry.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  using namespace wharf::sinks;
  if (argc != 3) {
    std::fprintf(stderr, "usage: local_log_crash_writer DIR FIRST_SEQ\n");
    return 2;
  }
  // stdout carries the sequence numbers only.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("stderr"));
  prometheus::Registry registry;
  local_log::local_log_options o;
  o.dir = argv[1];
  o.segment_bytes = 256 * 1024;  // several segments in a run
  auto opened = local_log::local_log_sink::open(o, registry);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().c_str());
    return 1;
  }
  auto& log = **opened;
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  std::atomic<unsigned long long> next{std::stoull(argv[2])};
  auto writer = [&] {
    for (;;) {
      const auto seq = next.fetch_add(1);
      record r;
      r.topic = "crash";
      r.key = "k" + std::to_string(seq % 5);
      r.value = "seq-" + std::to_string(seq) + std::string(100, '.');
      r.headers = {{"seq", std::to_string(seq)}};
      while (log.submit(r, io.get_executor(), [seq](delivery_result res) {
        if (!res.stored()) return;
        const std::string line = std::to_string(seq) + "\n";
        (void)!::write(1, line.data(), line.size());
      }) == submit_status::queue_full) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  };
  std::thread a(writer), b(writer);
  a.join();
  b.join();
  runner.join();
}
