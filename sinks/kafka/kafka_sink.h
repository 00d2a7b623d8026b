// The Kafka sink: an idempotent librdkafka producer with acks=all.
//
// A record counts as stored only when its delivery report has no error and
// rd_kafka_message_status() is PERSISTED; POSSIBLY_PERSISTED is a retryable
// failure. Permanent errors (message too large, unknown topic or partition,
// topic/cluster authorization) fail that record as permanent. librdkafka's
// queue filling up is back-pressure (`submit_status::queue_full`). A fatal
// idempotence error fails every record in flight as retryable and replaces
// the producer (counted in wharf_kafka_producer_restarts_total).
//
// Threads: one poll thread serves librdkafka's callbacks and posts each
// completion to the executor the record was submitted with, one post per run
// of records sharing an executor. (A queue event fd watched from Asio would
// save the thread but not the hop: completions still have to be posted to
// each connection's executor, and the poll thread keeps librdkafka's
// callbacks off every io_context.) The payload is not copied at submit: the
// record stays owned by the sink until its delivery report, and librdkafka
// copies it once, into the produce request.
//
// librdkafka is included only in kafka_sink.cpp.
#pragma once

#include "config/config.h"
#include "sinks/sink.h"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prometheus {
class Registry;
}

namespace wharf::sinks::kafka {

// One librdkafka setting and the config key it came from (for errors).
struct producer_setting {
  std::string name;
  std::string value;
  std::string origin;  // "kafka.linger", "kafka.properties.sasl.password", ...
};

// Replaces every ${env:NAME} and ${file:/path} in `value` (for secrets in
// kafka.properties). A file's trailing newline is dropped. The error names
// `key` and what is missing.
boost::system::result<std::string, std::string> resolve_references(std::string_view key, std::string_view value);

// Every librdkafka setting the producer is created with, in the order they
// are applied: Wharf's fixed durability settings, the typed config fields,
// then kafka.properties with references resolved. Properties that would
// weaken durability (acks, enable.idempotence) or that have a typed key
// (message.timeout.ms: kafka.delivery_timeout) are refused.
boost::system::result<std::vector<producer_setting>, std::string> build_producer_settings(
    const config::kafka_config& cfg);

class kafka_sink final : public sink {
 public:
  // Creates the producer and its poll thread. When cfg.check_topics is set, a
  // background thread describes `topics` and warns about weak durability.
  // The error names the config key at fault.
  static boost::system::result<std::unique_ptr<kafka_sink>, std::string> create(const config::kafka_config& cfg,
                                                                                std::vector<std::string> topics,
                                                                                prometheus::Registry& registry);

  ~kafka_sink() override;

  submit_status submit(record rec, boost::asio::any_io_executor ex, completion done) override;
  submit_status try_submit(record& rec, boost::asio::any_io_executor ex, completion done) override;
  void async_wait_capacity(boost::asio::any_io_executor ex, std::function<void()> ready) override;
  sink_health health() const override;
  void shutdown(std::chrono::milliseconds deadline) override;
  std::string_view name() const noexcept override { return "kafka"; }

  // How many times a fatal error made the sink replace its producer.
  std::uint64_t producer_restarts() const noexcept;
  // Topics whose replication factor or min.insync.replicas is too low, or
  // that do not exist; filled by the start-up check (empty until it ran).
  std::vector<std::string> durability_warnings() const;
  // Blocks until the start-up topic check has finished.
  void wait_topic_check();

  // Tests only: the current rd_kafka_t* (it changes when the producer is
  // replaced). Call from the test thread while the sink is idle.
  void* native_handle_for_testing() noexcept;

  struct impl;

 private:
  explicit kafka_sink(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// The sink as the wiring wants it. `topics`: every Kafka topic the routes
// and HTTP types can produce to (checked at start-up).
boost::system::result<std::unique_ptr<sink>, std::string> make_kafka_sink(const config::kafka_config& cfg,
                                                                          std::vector<std::string> topics,
                                                                          prometheus::Registry& registry);

}  // namespace wharf::sinks::kafka
