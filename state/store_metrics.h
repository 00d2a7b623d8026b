// Metrics every session store reports, registered on the caller's registry.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <string>

namespace wharf::state {

class store_metrics {
 public:
  explicit store_metrics(prometheus::Registry& registry);

  // wharf_redis_command_seconds{command}: one store operation, including WAIT.
  prometheus::Histogram& command_seconds(const std::string& command);
  // wharf_redis_errors_total{kind}
  void error(const std::string& kind);
  // wharf_redis_master_changes_total
  void master_changed() { master_changes_.Increment(); }
  // wharf_redis_primary_up: 1 while connected to a primary (Redis store only).
  void primary_up(bool up);
  // wharf_sessions_total{result=created|resumed|taken_over|expired}
  void session(const std::string& result, double n = 1) { sessions_.Add({{"result", result}}).Increment(n); }

 private:
  prometheus::Family<prometheus::Histogram>& command_family_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Counter& master_changes_;
  prometheus::Family<prometheus::Gauge>& primary_up_family_;
  prometheus::Gauge* primary_up_ = nullptr;
  prometheus::Family<prometheus::Counter>& sessions_;
  std::map<std::string, prometheus::Histogram*> histograms_;
};

}  // namespace wharf::state
