// Token buckets, one per API key, local to this node: with N nodes behind a
// load balancer a key may send up to N times its configured rate in total.
// One request costs one token whatever its number of items. Time is passed in,
// so the arithmetic is testable without clocks.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace wharf::http {

using steady_time = std::chrono::steady_clock::time_point;

struct rate_decision {
  bool allowed = true;
  double limit = 0;                         // bucket size (burst)
  double remaining = 0;                     // whole tokens left after this request
  std::chrono::milliseconds retry_after{};  // until one token is back (when refused)
  std::chrono::milliseconds reset{};        // until the bucket is full again
};

class token_bucket {
 public:
  // rate: tokens per second (> 0); burst: bucket size (>= 1).
  token_bucket(double rate, double burst, steady_time now) noexcept;
  rate_decision take(steady_time now) noexcept;

 private:
  void refill(steady_time now) noexcept;
  double rate_;
  double burst_;
  double tokens_;
  steady_time last_;
};

// Thread-safe map of buckets by key name.
class rate_limiter {
 public:
  // burst <= 0 means max(1, rate).
  rate_decision take(const std::string& key, double rate, double burst, steady_time now);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, token_bucket> buckets_;
};

}  // namespace wharf::http
