// The local log sink: an append-only log on local disk. It is the embedded
// default when no Kafka is configured and the write-ahead log for async HTTP
// (a `forwarder` replays it into Kafka).
//
// Records go into a queue; one writer thread appends everything queued,
// calls fdatasync once for the whole group (group commit: records that arrive
// while an fsync runs share the next one), and only then posts each record's
// completion, `stored`, to its executor. A write or fsync error fails the
// group as retryable. At open, a torn tail at the end of the last segment
// (short frame or bad CRC, left by a crash) is truncated; nothing else is
// touched. Retention deletes closed segments by size and age, but never one
// holding records at or past the offset given to `protect_from` (the
// forwarder's cursor).
#pragma once

#include "config/config.h"
#include "sinks/sink.h"

#include <boost/system/result.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace prometheus {
class Registry;
}

namespace wharf::sinks::local_log {

struct local_log_options {
  std::string dir;
  std::uint64_t segment_bytes = 64ull << 20;
  std::uint64_t retention_bytes = 1ull << 30;
  std::chrono::milliseconds retention_age{7LL * 24 * 3600 * 1000};
  // Back-pressure: submit returns queue_full while this many bytes wait for
  // the writer.
  std::uint64_t queue_max_bytes = 64ull << 20;
  // Label of the sink in metrics and logs.
  std::string sink_label = "local-log";

  static local_log_options from(const config::local_log_config& cfg);
};

class local_log_sink final : public sink {
 public:
  // Opens (creating if needed) and recovers the log in `opts.dir`, then
  // starts the writer thread. The error names the directory and the cause.
  static boost::system::result<std::unique_ptr<local_log_sink>, std::string> open(local_log_options opts,
                                                                                  prometheus::Registry& registry);

  ~local_log_sink() override;

  submit_status submit(record rec, boost::asio::any_io_executor ex, completion done) override;
  submit_status try_submit(record& rec, boost::asio::any_io_executor ex, completion done) override;
  void async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) override;
  sink_health health() const override;
  void shutdown(std::chrono::milliseconds deadline) override;
  std::string_view name() const noexcept override { return "local-log"; }

  // Offset one past the last record that is fsynced (and whose completion was
  // posted). Readers in this process read below it.
  std::uint64_t end_offset() const noexcept;
  // Called on the writer thread after each group commit. Keep it short.
  void set_commit_listener(std::function<void()> listener);
  // Retention keeps every segment holding records at or past `offset`.
  void protect_from(std::optional<std::uint64_t> offset);
  const std::string& dir() const noexcept;
  // Bytes the open dropped as a torn tail (for tests and the start-up log).
  std::uint64_t recovered_torn_bytes() const noexcept;

  struct impl;

 private:
  explicit local_log_sink(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// The sink as the wiring wants it; the error names the directory and cause.
boost::system::result<std::unique_ptr<sink>, std::string> make_local_log_sink(const config::local_log_config& cfg,
                                                                              prometheus::Registry& registry);

}  // namespace wharf::sinks::local_log
