// Replays the local log into another sink (Kafka) and remembers how far it
// got in a cursor file.
//
// The cursor is the offset of the first record not yet known to be stored in
// the target; every record below it was reported `stored`. It is written
// atomically (temp file, fsync, rename, fsync of the directory) a few times a
// second, so a restart resumes at most a moment behind: duplicates are
// possible, loss is not. Records go out in log order; when one fails
// retryably the forwarder lets the others in flight finish, then re-sends
// from the first record not stored (go-back-N), so per-key order holds in
// the target. A record failed as permanent is logged, counted in
// `wharf_local_log_forward_dropped_total` and stepped over: it would block the
// log forever otherwise. While it runs, retention keeps every segment from
// the cursor on.
#pragma once

#include "sinks/local_log/local_log_sink.h"
#include "sinks/sink.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace prometheus {
class Registry;
}

namespace wharf::sinks::local_log {

struct forwarder_options {
  // Default: <log dir>/forwarder.cursor
  std::string cursor_file;
  std::size_t max_in_flight = 10000;
  std::chrono::milliseconds retry_backoff{1000};
  std::chrono::milliseconds cursor_interval{200};
};

// Reads a cursor file; nullopt when it does not exist yet.
boost::system::result<std::optional<std::uint64_t>, std::string> read_cursor_file(const std::string& path);
// Writes the cursor durably (temp + fsync + rename + directory fsync).
bool write_cursor_file(const std::string& path, std::uint64_t offset, std::string& error);

class forwarder {
 public:
  forwarder(local_log_sink& log, sink& target, forwarder_options opts, prometheus::Registry& registry);
  ~forwarder();
  forwarder(const forwarder&) = delete;
  forwarder& operator=(const forwarder&) = delete;

  // Loads the cursor and starts the forwarding thread. The error names the
  // cursor file and the cause.
  boost::system::result<void, std::string> start();
  // Stops submitting, waits up to `deadline` for records in flight, writes the
  // cursor a last time and joins the thread.
  void stop(std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

  // The durable cursor as last written.
  std::uint64_t cursor() const noexcept;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace wharf::sinks::local_log
