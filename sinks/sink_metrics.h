// Prometheus metrics every sink reports, labelled by sink name. Families are
// merged by name on the registry, so several sinks can share one registry.
#pragma once

#include "sinks/sink.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <string>

namespace wharf::sinks {

class sink_metrics {
 public:
  sink_metrics(prometheus::Registry& registry, const std::string& sink_name);

  void submitted() noexcept { submitted_.Increment(); }
  // Counts one completion and observes its delivery latency.
  void completed(const delivery_result& r, std::chrono::steady_clock::duration latency) noexcept;

  static const prometheus::Histogram::BucketBoundaries& latency_buckets();

 private:
  prometheus::Counter& submitted_;
  prometheus::Counter& stored_;
  prometheus::Counter& failed_retryable_;
  prometheus::Counter& failed_permanent_;
  prometheus::Histogram& delivery_seconds_;
};

}  // namespace wharf::sinks
