// The interface every protocol acknowledges through. No librdkafka here.
//
// A protocol layer builds a `record`, calls `sink::submit` with the executor
// of the connection that owns the record and a completion. The completion
// fires exactly once, on that executor, with the record's fate:
//   stored            - durable (Kafka: PERSISTED with acks=all; local log:
//                       fsync done). Only now may the sender be acknowledged.
//   failed_retryable  - not stored; the sender should re-send (Kafka outage,
//                       delivery timeout, producer restarted, shutdown).
//   failed_permanent  - not stored and re-sending the same record will fail
//                       again (too large, unknown topic, not authorized).
// `submit` never blocks. When the sink's queue is full it returns
// `submit_status::queue_full` without taking the record and without calling
// the completion: that is back-pressure, the caller stops reading its socket
// and waits with `async_wait_capacity`.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::sinks {

struct header {
  std::string name;
  std::string value;
};

// One message on its way to Kafka. `value` holds the payload bytes exactly as
// received; headers keep their order.
struct record {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<header> headers;

  std::size_t size_bytes() const noexcept {
    std::size_t n = topic.size() + key.size() + value.size();
    for (const auto& h : headers) n += h.name.size() + h.value.size();
    return n;
  }
};

enum class delivery_status : std::uint8_t { stored, failed_retryable, failed_permanent };

struct delivery_result {
  delivery_status status = delivery_status::failed_retryable;
  // Empty when stored; otherwise a short reason for logs and reason strings
  // ("Broker: Message size too large", "delivery timeout", ...).
  std::string reason;
  // Permanent failures that map to a protocol reason code.
  enum class cause : std::uint8_t { none, too_large, unknown_topic, not_authorized, other } why = cause::none;

  bool stored() const noexcept { return status == delivery_status::stored; }
};

std::string_view to_string(delivery_status s) noexcept;

using completion = std::function<void(delivery_result)>;

enum class submit_status : std::uint8_t {
  accepted,    // the completion will fire exactly once
  queue_full,  // back-pressure: nothing was taken, the completion will not fire
  closed,      // the sink is shutting down: nothing was taken
};

// Health the node reports on /readyz and in metrics.
struct sink_health {
  bool delivering = true;  // false while the sink cannot deliver (all brokers down, ...)
  std::chrono::steady_clock::time_point unhealthy_since{};
  std::size_t queued_records = 0;
  std::size_t queued_bytes = 0;
};

class sink {
 public:
  virtual ~sink() = default;

  // Hands a record over. See the header comment for the contract.
  virtual submit_status submit(record rec, boost::asio::any_io_executor ex, completion done) = 0;

  // The same, but `rec` is moved from only when the result is `accepted`:
  // on queue_full or closed the caller still holds it and can hand it over
  // again later without having kept a copy. Sinks override it to avoid the
  // copy this default makes.
  virtual submit_status try_submit(record& rec, boost::asio::any_io_executor ex, completion done) {
    record copy = rec;
    auto st = submit(std::move(copy), std::move(ex), std::move(done));
    if (st == submit_status::accepted) rec = record{};
    return st;
  }

  // Calls `ready` once on `ex` when the queue has room again (at once, posted,
  // if it has room now).
  virtual void async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) = 0;

  virtual sink_health health() const = 0;

  // Stops intake, waits up to `deadline` for outstanding records, then fails
  // what remains as retryable. Blocks the calling thread; call it from the
  // lifecycle code, never from a connection's executor.
  virtual void shutdown(std::chrono::milliseconds deadline) = 0;

  // A short name for logs: "kafka", "local-log", "null".
  virtual std::string_view name() const noexcept = 0;
};

}  // namespace wharf::sinks
