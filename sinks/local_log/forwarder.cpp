#include "sinks/local_log/forwarder.h"

#include "sinks/local_log/log_reader.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

namespace wharf::sinks::local_log {

namespace asio = boost::asio;
namespace fs = std::filesystem;

boost::system::result<std::optional<std::uint64_t>, std::string> read_cursor_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (!fs::exists(path)) return std::optional<std::uint64_t>{};
    return "cannot read forwarder cursor " + path;
  }
  std::string magic;
  unsigned long long value = 0;
  if (!(in >> magic >> value) || magic != "wharf-cursor-v1")
    return "forwarder cursor " + path + " is not a wharf cursor file (delete it to replay the whole log)";
  return std::optional<std::uint64_t>{value};
}

bool write_cursor_file(const std::string& path, std::uint64_t offset, std::string& error) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const std::string text = "wharf-cursor-v1 " + std::to_string(offset) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  const auto dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

struct forwarder::impl {
  local_log_sink& log;
  sink& target;
  forwarder_options opts;
  prometheus::Counter& dropped;
  prometheus::Gauge& lag;

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::steady_timer poll_timer{io};
  asio::steady_timer cursor_timer{io};
  asio::steady_timer tick_timer{io};
  std::thread thread;
  log_reader reader;

  // io thread only
  enum class slot : std::uint8_t { in_flight, stored, failed };
  std::deque<slot> window;      // one per offset from `acked` on
  std::uint64_t acked = 0;      // every record below it is stored
  std::uint64_t next_send = 0;  // offset the reader is at
  bool rewind = false;
  bool waiting_capacity = false;
  bool stopping = false;
  bool cursor_dirty = false;
  std::size_t in_flight = 0;
  std::optional<log_record> held;  // refused by the target, sent first next time

  std::atomic<std::uint64_t> durable{0};
  std::mutex mu;
  std::condition_variable cv;

  impl(local_log_sink& l, sink& t, forwarder_options o, prometheus::Registry& registry)
      : log(l),
        target(t),
        opts(std::move(o)),
        dropped(prometheus::BuildCounter()
                    .Name("wharf_local_log_forward_dropped_total")
                    .Help("Local log records the forwarder stepped over because the target failed them as permanent")
                    .Register(registry)
                    .Add({})),
        lag(prometheus::BuildGauge()
                .Name("wharf_local_log_forward_lag_records")
                .Help("Records in the local log not yet stored in the forward target")
                .Register(registry)
                .Add({})),
        reader(l.dir()) {}

  void pump();
  void on_done(std::uint64_t offset, const delivery_result& r);
  void advance();
  void persist_cursor();
  void schedule_poll(std::chrono::milliseconds after);
  void schedule_tick();
};

void forwarder::impl::schedule_poll(std::chrono::milliseconds after) {
  poll_timer.expires_after(after);
  poll_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec) pump();
  });
}

void forwarder::impl::schedule_tick() {
  tick_timer.expires_after(std::chrono::milliseconds(250));
  tick_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping) return;
    pump();
    schedule_tick();
  });
}

void forwarder::impl::pump() {
  if (stopping || waiting_capacity) return;
  if (rewind) {
    if (in_flight > 0) return;  // wait for the rest to finish first
    rewind = false;
    window.clear();
    held.reset();
    next_send = acked;
    if (!reader.seek(acked)) spdlog::error("local log forwarder: {}", reader.error());
    spdlog::warn("local log forwarder: re-sending from offset {}", acked);
  }
  const std::uint64_t end = log.end_offset();
  lag.Set(static_cast<double>(end - acked));
  while (in_flight < opts.max_in_flight && next_send < end) {
    log_record lr;
    if (held) {
      lr = std::move(*held);
      held.reset();
    } else {
      const auto st = reader.next(lr, end);
      if (st == log_reader::read_result::corrupt) {
        spdlog::error("local log forwarder: {}; stopped", reader.error());
        return;
      }
      if (st == log_reader::read_result::end) break;
    }
    if (lr.offset != next_send) {
      // Retention deleted records the forwarder had not reached (it was not
      // running); jump to what is there.
      spdlog::warn("local log forwarder: records {}..{} are gone, resuming at {}", next_send, lr.offset - 1, lr.offset);
      window.clear();
      acked = next_send = lr.offset;
    }
    const std::uint64_t offset = lr.offset;
    // submit takes the record even when it refuses it, so hand it a copy.
    const auto st2 =
        target.submit(lr.rec, io.get_executor(), [this, offset](delivery_result r) { on_done(offset, r); });
    if (st2 == submit_status::queue_full) {
      waiting_capacity = true;
      held = std::move(lr);  // send it first when there is room
      target.async_wait_capacity(io.get_executor(), [this] {
        waiting_capacity = false;
        pump();
      });
      return;
    }
    if (st2 == submit_status::closed) {
      held = std::move(lr);
      schedule_poll(opts.retry_backoff);
      return;
    }
    window.push_back(slot::in_flight);
    ++in_flight;
    ++next_send;
  }
}

void forwarder::impl::on_done(std::uint64_t offset, const delivery_result& r) {
  --in_flight;
  if (offset < acked || offset - acked >= window.size()) return;  // from before a jump
  auto& s = window[offset - acked];
  if (r.status == delivery_status::stored) {
    s = slot::stored;
  } else if (r.status == delivery_status::failed_permanent) {
    spdlog::error("local log forwarder: record {} failed permanently and is skipped: {}", offset, r.reason);
    dropped.Increment();
    s = slot::stored;
  } else {
    s = slot::failed;
    if (!rewind) spdlog::warn("local log forwarder: record {} not stored ({}); will re-send", offset, r.reason);
    rewind = true;
  }
  advance();
  if (rewind) {
    if (in_flight == 0) schedule_poll(opts.retry_backoff);
  } else {
    pump();
  }
}

void forwarder::impl::advance() {
  bool moved = false;
  while (!window.empty() && window.front() == slot::stored) {
    window.pop_front();
    ++acked;
    moved = true;
  }
  if (moved && !cursor_dirty) {
    cursor_dirty = true;
    cursor_timer.expires_after(opts.cursor_interval);
    cursor_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) persist_cursor();
    });
  }
}

void forwarder::impl::persist_cursor() {
  cursor_dirty = false;
  std::string err;
  if (!write_cursor_file(opts.cursor_file, acked, err)) {
    spdlog::error("local log forwarder: {}", err);
    return;
  }
  durable.store(acked);
  log.protect_from(acked);
}

forwarder::forwarder(local_log_sink& log, sink& target, forwarder_options opts, prometheus::Registry& registry) {
  if (opts.cursor_file.empty()) opts.cursor_file = (fs::path(log.dir()) / "forwarder.cursor").string();
  impl_ = std::make_unique<impl>(log, target, std::move(opts), registry);
}

forwarder::~forwarder() { stop(); }

boost::system::result<void, std::string> forwarder::start() {
  auto c = read_cursor_file(impl_->opts.cursor_file);
  if (!c) return c.error();
  const std::uint64_t start_at = c->value_or(0);
  impl_->acked = impl_->next_send = start_at;
  impl_->durable.store(start_at);
  impl_->log.protect_from(start_at);
  if (!impl_->reader.seek(start_at)) return impl_->reader.error();
  if (impl_->reader.position() > start_at) impl_->acked = impl_->next_send = impl_->reader.position();
  impl* p = impl_.get();
  impl_->log.set_commit_listener([p] { asio::post(p->io, [p] { p->pump(); }); });
  // A slow fallback poll in case a notification raced with a rewind.
  impl_->schedule_tick();
  impl_->thread = std::thread([p] { p->io.run(); });
  spdlog::info("local log forwarder: forwarding {} from offset {} to {}", impl_->log.dir(), start_at,
               impl_->target.name());
  return {};
}

void forwarder::stop(std::chrono::milliseconds deadline) {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl* p = impl_.get();
  impl_->log.set_commit_listener({});
  asio::post(p->io, [p] { p->stopping = true; });
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    std::promise<std::size_t> n;
    auto f = n.get_future();
    asio::post(p->io, [p, &n] { n.set_value(p->in_flight); });
    if (f.get() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::promise<void> done;
  auto f = done.get_future();
  asio::post(p->io, [p, &done] {
    p->persist_cursor();
    p->poll_timer.cancel();
    p->cursor_timer.cancel();
    p->tick_timer.cancel();
    done.set_value();
  });
  f.get();
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->log.protect_from(std::nullopt);
}

std::uint64_t forwarder::cursor() const noexcept { return impl_->durable.load(); }

}  // namespace wharf::sinks::local_log
