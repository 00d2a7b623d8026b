#include "sinks/sink_metrics.h"

namespace wharf::sinks {

namespace {

prometheus::Family<prometheus::Counter>& submitted_family(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("wharf_sink_records_submitted_total")
      .Help("Records handed to a sink (accepted by submit)")
      .Register(r);
}
prometheus::Family<prometheus::Counter>& stored_family(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("wharf_sink_records_stored_total")
      .Help("Records the sink reported as durably stored")
      .Register(r);
}
prometheus::Family<prometheus::Counter>& failed_family(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("wharf_sink_records_failed_total")
      .Help("Records the sink reported as not stored, by reason (retryable|permanent)")
      .Register(r);
}
prometheus::Family<prometheus::Histogram>& delivery_family(prometheus::Registry& r) {
  return prometheus::BuildHistogram()
      .Name("wharf_sink_delivery_seconds")
      .Help("Time from submit to completion, in seconds")
      .Register(r);
}

}  // namespace

const prometheus::Histogram::BucketBoundaries& sink_metrics::latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                               0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return buckets;
}

sink_metrics::sink_metrics(prometheus::Registry& registry, const std::string& sink_name)
    : submitted_(submitted_family(registry).Add({{"sink", sink_name}})),
      stored_(stored_family(registry).Add({{"sink", sink_name}})),
      failed_retryable_(failed_family(registry).Add({{"sink", sink_name}, {"reason", "retryable"}})),
      failed_permanent_(failed_family(registry).Add({{"sink", sink_name}, {"reason", "permanent"}})),
      delivery_seconds_(delivery_family(registry).Add({{"sink", sink_name}}, latency_buckets())) {}

void sink_metrics::completed(const delivery_result& r, std::chrono::steady_clock::duration latency) noexcept {
  switch (r.status) {
    case delivery_status::stored:
      stored_.Increment();
      break;
    case delivery_status::failed_retryable:
      failed_retryable_.Increment();
      break;
    case delivery_status::failed_permanent:
      failed_permanent_.Increment();
      break;
  }
  delivery_seconds_.Observe(std::chrono::duration<double>(latency).count());
}

}  // namespace wharf::sinks
