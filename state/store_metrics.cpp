#include "state/store_metrics.h"

namespace wharf::state {

store_metrics::store_metrics(prometheus::Registry& registry)
    : command_family_(prometheus::BuildHistogram()
                          .Name("wharf_redis_command_seconds")
                          .Help("Time of one session store operation against Redis, WAIT included")
                          .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("wharf_redis_errors_total")
                  .Help("Session store errors by kind")
                  .Register(registry)),
      master_changes_(prometheus::BuildCounter()
                          .Name("wharf_redis_master_changes_total")
                          .Help("Times the session store switched to a different Redis primary")
                          .Register(registry)
                          .Add({})),
      primary_up_family_(prometheus::BuildGauge()
                             .Name("wharf_redis_primary_up")
                             .Help("1 while the session store is connected to a Redis primary, else 0")
                             .Register(registry)),
      sessions_(prometheus::BuildCounter()
                    .Name("wharf_sessions_total")
                    .Help("MQTT sessions by outcome: created, resumed, taken_over, expired")
                    .Register(registry)) {}

prometheus::Histogram& store_metrics::command_seconds(const std::string& command) {
  auto it = histograms_.find(command);
  if (it != histograms_.end()) return *it->second;
  static const prometheus::Histogram::BucketBoundaries buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                               0.1,    0.25,  0.5,    1,     2.5,  5};
  auto& h = command_family_.Add({{"command", command}}, buckets);
  histograms_.emplace(command, &h);
  return h;
}

void store_metrics::primary_up(bool up) {
  if (!primary_up_) primary_up_ = &primary_up_family_.Add({});
  primary_up_->Set(up ? 1 : 0);
}

void store_metrics::error(const std::string& kind) { errors_.Add({{"kind", kind}}).Increment(); }

}  // namespace wharf::state
