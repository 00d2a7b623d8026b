#include "sinks/local_log/local_log_sink.h"

#include "sinks/completion_batch.h"
#include "sinks/local_log/log_format.h"
#include "sinks/sink_metrics.h"

#include <boost/asio/post.hpp>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

namespace wharf::sinks::local_log {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

local_log_options local_log_options::from(const config::local_log_config& cfg) {
  local_log_options o;
  o.dir = cfg.dir;
  o.segment_bytes = cfg.segment_bytes;
  o.retention_bytes = cfg.retention_bytes;
  o.retention_age = cfg.retention_age;
  return o;
}

namespace {

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct pending {
  record rec;
  boost::asio::any_io_executor ex;
  completion done;
  clock_type::time_point submitted;
  std::int64_t timestamp_ms;
};

}  // namespace

struct local_log_sink::impl {
  local_log_options opts;
  sink_metrics metrics;
  prometheus::Histogram& fsync_seconds;
  prometheus::Histogram& records_per_fsync;

  // Writer state (writer thread only, after open).
  int fd = -1;
  std::uint64_t active_base = 0;
  std::uint64_t active_size = 0;
  std::uint64_t next_offset = 0;
  std::uint64_t torn_bytes = 0;
  clock_type::time_point last_retention{};

  std::atomic<std::uint64_t> committed{0};
  std::atomic<std::uint64_t> protected_from{std::numeric_limits<std::uint64_t>::max()};

  mutable std::mutex mu;
  std::condition_variable cv;
  std::condition_variable drained_cv;
  std::deque<pending> queue;
  std::uint64_t queued_bytes = 0;
  bool full = false;
  bool closed = false;
  bool abandon = false;  // shutdown deadline passed: fail what is left
  bool writing = false;
  bool healthy = true;
  clock_type::time_point unhealthy_since{};
  std::vector<std::pair<boost::asio::any_io_executor, std::function<void()>>> capacity_waiters;
  std::function<void()> commit_listener;
  std::thread writer;

  impl(local_log_options o, prometheus::Registry& registry)
      : opts(std::move(o)),
        metrics(registry, opts.sink_label),
        fsync_seconds(prometheus::BuildHistogram()
                          .Name("wharf_local_log_fsync_seconds")
                          .Help("Duration of one local log write + fdatasync (one group commit), in seconds")
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                                           0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})),
        records_per_fsync(prometheus::BuildHistogram()
                              .Name("wharf_local_log_records_per_fsync")
                              .Help("Records covered by one local log fdatasync (group commit size)")
                              .Register(registry)
                              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
                                                                               1024, 4096, 16384})) {}

  std::string open_log();
  std::string recover_last(const segment_info& seg);
  bool roll();
  void run();
  void commit(std::deque<pending>& batch);
  void fail_all(std::deque<pending>& batch, const std::string& reason);
  void apply_retention();
  void release_waiters_locked();
};

std::string local_log_sink::impl::open_log() {
  std::error_code ec;
  fs::create_directories(opts.dir, ec);
  if (ec) return "cannot create local log directory " + opts.dir + ": " + ec.message();
  auto segments = list_segments(opts.dir);
  if (segments.empty()) {
    active_base = 0;
    const auto path = (fs::path(opts.dir) / segment_file_name(0)).string();
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno_text("cannot create", path);
    if (!fsync_dir(opts.dir)) return errno_text("cannot fsync directory", opts.dir);
    active_size = 0;
    next_offset = 0;
  } else {
    if (auto err = recover_last(segments.back()); !err.empty()) return err;
  }
  committed.store(next_offset);
  return {};
}

// Scans the last segment, truncates a torn tail and opens it for appending.
std::string local_log_sink::impl::recover_last(const segment_info& seg) {
  int rfd = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return errno_text("cannot open", seg.path);
  std::string data;
  data.resize(seg.size_bytes);
  std::size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(rfd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(rfd);
  data.resize(got);
  std::size_t pos = 0;
  std::uint64_t count = 0;
  log_record scratch;
  while (pos < data.size()) {
    std::size_t size = 0;
    if (decode_frame(std::string_view(data).substr(pos), scratch, size) != frame_status::ok) break;
    pos += size;
    ++count;
  }
  fd = ::open(seg.path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_text("cannot open", seg.path);
  if (pos < data.size()) {
    torn_bytes = data.size() - pos;
    spdlog::warn(
        "local log: dropping a torn tail of {} bytes at the end of {} (records after offset {} were never "
        "acknowledged)",
        torn_bytes, seg.path, seg.base_offset + count);
    if (::ftruncate(fd, static_cast<off_t>(pos)) != 0 || ::fdatasync(fd) != 0)
      return errno_text("cannot truncate torn tail of", seg.path);
  }
  if (::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0) return errno_text("cannot seek", seg.path);
  active_base = seg.base_offset;
  active_size = pos;
  next_offset = seg.base_offset + count;
  return {};
}

bool local_log_sink::impl::roll() {
  const auto path = (fs::path(opts.dir) / segment_file_name(next_offset)).string();
  int nfd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (nfd < 0) {
    spdlog::error("local log: {}", errno_text("cannot create segment", path));
    return false;
  }
  if (!fsync_dir(opts.dir)) spdlog::warn("local log: {}", errno_text("cannot fsync directory", opts.dir));
  ::close(fd);
  fd = nfd;
  active_base = next_offset;
  active_size = 0;
  return true;
}

void local_log_sink::impl::fail_all(std::deque<pending>& batch, const std::string& reason) {
  completion_batch out;
  const auto now = clock_type::now();
  for (auto& p : batch) {
    delivery_result r{delivery_status::failed_retryable, reason, delivery_result::cause::none};
    metrics.completed(r, now - p.submitted);
    out.add(p.ex, std::move(p.done), std::move(r));
  }
  batch.clear();
  out.post_all();
}

void local_log_sink::impl::commit(std::deque<pending>& batch) {
  if (active_size >= opts.segment_bytes && active_size > 0) roll();
  std::string buf;
  for (const auto& p : batch) append_frame(buf, p.rec, p.timestamp_ms);
  const auto t0 = clock_type::now();
  const bool ok = write_all(fd, buf.data(), buf.size()) && ::fdatasync(fd) == 0;
  const auto t1 = clock_type::now();
  if (!ok) {
    const std::string reason = std::string("local log write failed: ") + std::strerror(errno);
    spdlog::error("local log: {} ({} records failed as retryable)", reason, batch.size());
    // Take back whatever part of the group reached the file, so the log stays
    // a sequence of whole frames.
    if (::ftruncate(fd, static_cast<off_t>(active_size)) == 0) ::lseek(fd, static_cast<off_t>(active_size), SEEK_SET);
    {
      std::lock_guard lk(mu);
      if (healthy) unhealthy_since = t1;
      healthy = false;
    }
    fail_all(batch, reason);
    return;
  }
  fsync_seconds.Observe(std::chrono::duration<double>(t1 - t0).count());
  records_per_fsync.Observe(static_cast<double>(batch.size()));
  active_size += buf.size();
  next_offset += batch.size();
  committed.store(next_offset, std::memory_order_release);
  {
    std::lock_guard lk(mu);
    healthy = true;
  }
  completion_batch out;
  for (auto& p : batch) {
    delivery_result r{delivery_status::stored, {}, delivery_result::cause::none};
    metrics.completed(r, t1 - p.submitted);
    out.add(p.ex, std::move(p.done), std::move(r));
  }
  batch.clear();
  out.post_all();
}

void local_log_sink::impl::apply_retention() {
  last_retention = clock_type::now();
  auto segments = list_segments(opts.dir);
  if (segments.size() < 2) return;
  std::uint64_t total = 0;
  for (const auto& s : segments) total += s.size_bytes;
  const auto keep_from = protected_from.load();
  const auto now = fs::file_time_type::clock::now();
  for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
    const auto& s = segments[i];
    if (s.base_offset == active_base) break;
    const std::uint64_t end = segments[i + 1].base_offset;  // one past its last record
    if (end > keep_from) break;                             // holds records the forwarder still needs
    std::error_code ec;
    const auto mtime = fs::last_write_time(s.path, ec);
    const bool too_old = !ec && now - mtime > opts.retention_age;
    const bool too_big = total > opts.retention_bytes;
    if (!too_old && !too_big) break;
    if (fs::remove(s.path, ec)) {
      spdlog::info("local log: retention deleted {} ({} bytes, {})", s.path, s.size_bytes,
                   too_big ? "size limit" : "age limit");
      total -= s.size_bytes;
    }
  }
}

void local_log_sink::impl::release_waiters_locked() {
  full = false;
  for (auto& [ex, fn] : capacity_waiters) boost::asio::post(ex, std::move(fn));
  capacity_waiters.clear();
}

void local_log_sink::impl::run() {
  std::deque<pending> batch;
  for (;;) {
    std::function<void()> listener;
    {
      std::unique_lock lk(mu);
      cv.wait_for(lk, std::chrono::seconds(1), [&] { return !queue.empty() || closed; });
      if (abandon) {
        batch.swap(queue);
        queued_bytes = 0;
        lk.unlock();
        fail_all(batch, "local log shut down");
        lk.lock();
        writing = false;
        drained_cv.notify_all();
        return;
      }
      if (queue.empty()) {
        if (closed) {
          writing = false;
          drained_cv.notify_all();
          return;
        }
        lk.unlock();
        if (clock_type::now() - last_retention > std::chrono::seconds(10)) apply_retention();
        continue;
      }
      batch.swap(queue);
      for (const auto& p : batch) queued_bytes -= p.rec.size_bytes();
      writing = true;
      listener = commit_listener;
    }
    const auto base_before = active_base;
    commit(batch);
    if (listener) listener();
    {
      std::lock_guard lk(mu);
      writing = false;
      if (full && queued_bytes < opts.queue_max_bytes / 2) release_waiters_locked();
      drained_cv.notify_all();
    }
    if (active_base != base_before || clock_type::now() - last_retention > std::chrono::seconds(10)) apply_retention();
  }
}

local_log_sink::local_log_sink(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

local_log_sink::~local_log_sink() {
  shutdown(std::chrono::milliseconds(5000));
  if (impl_->fd >= 0) ::close(impl_->fd);
}

boost::system::result<std::unique_ptr<local_log_sink>, std::string> local_log_sink::open(
    local_log_options opts, prometheus::Registry& registry) {
  if (opts.dir.empty()) return std::string("local_log.dir is empty: set it (default <node.data_dir>/log)");
  auto p = std::make_unique<impl>(std::move(opts), registry);
  if (auto err = p->open_log(); !err.empty()) {
    if (p->fd >= 0) ::close(p->fd);
    return err;
  }
  p->last_retention = clock_type::now();
  spdlog::info("local log: {} open, next offset {}", p->opts.dir, p->next_offset);
  impl* raw = p.get();
  p->writer = std::thread([raw] { raw->run(); });
  return std::unique_ptr<local_log_sink>(new local_log_sink(std::move(p)));
}

submit_status local_log_sink::submit(record rec, boost::asio::any_io_executor ex, completion done) {
  return try_submit(rec, std::move(ex), std::move(done));
}

submit_status local_log_sink::try_submit(record& rec, boost::asio::any_io_executor ex, completion done) {
  const auto size = rec.size_bytes();
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->closed) return submit_status::closed;
    if (impl_->queued_bytes + size > impl_->opts.queue_max_bytes && !impl_->queue.empty()) {
      impl_->full = true;
      return submit_status::queue_full;
    }
    impl_->queued_bytes += size;
    impl_->queue.push_back(pending{std::move(rec), std::move(ex), std::move(done), clock_type::now(), unix_ms_now()});
  }
  impl_->metrics.submitted();
  impl_->cv.notify_one();
  return submit_status::accepted;
}

void local_log_sink::async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) {
  std::lock_guard lk(impl_->mu);
  if (!impl_->full || impl_->closed) {
    boost::asio::post(ex, std::move(ready));
    return;
  }
  impl_->capacity_waiters.emplace_back(std::move(ex), std::move(ready));
}

sink_health local_log_sink::health() const {
  std::lock_guard lk(impl_->mu);
  sink_health h;
  h.delivering = impl_->healthy;
  h.unhealthy_since = impl_->unhealthy_since;
  h.queued_records = impl_->queue.size();
  h.queued_bytes = impl_->queued_bytes;
  return h;
}

void local_log_sink::shutdown(std::chrono::milliseconds deadline) {
  {
    std::unique_lock lk(impl_->mu);
    impl_->closed = true;
    impl_->cv.notify_all();
    if (!impl_->drained_cv.wait_for(lk, deadline, [&] { return impl_->queue.empty() && !impl_->writing; })) {
      impl_->abandon = true;
      impl_->cv.notify_all();
    }
    impl_->release_waiters_locked();
  }
  if (impl_->writer.joinable()) impl_->writer.join();
}

std::uint64_t local_log_sink::end_offset() const noexcept { return impl_->committed.load(std::memory_order_acquire); }

void local_log_sink::set_commit_listener(std::function<void()> listener) {
  std::lock_guard lk(impl_->mu);
  impl_->commit_listener = std::move(listener);
}

void local_log_sink::protect_from(std::optional<std::uint64_t> offset) {
  impl_->protected_from.store(offset.value_or(std::numeric_limits<std::uint64_t>::max()));
}

const std::string& local_log_sink::dir() const noexcept { return impl_->opts.dir; }

std::uint64_t local_log_sink::recovered_torn_bytes() const noexcept { return impl_->torn_bytes; }

boost::system::result<std::unique_ptr<sink>, std::string> make_local_log_sink(const config::local_log_config& cfg,
                                                                              prometheus::Registry& registry) {
  auto r = local_log_sink::open(local_log_options::from(cfg), registry);
  if (!r) return r.error();
  return std::unique_ptr<sink>(std::move(*r));
}

}  // namespace wharf::sinks::local_log
