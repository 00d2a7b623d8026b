#include "protocols/http/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace wharf::http {

token_bucket::token_bucket(double rate, double burst, steady_time now) noexcept
    : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

void token_bucket::refill(steady_time now) noexcept {
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
}

static std::chrono::milliseconds ceil_ms(double seconds) {
  return std::chrono::milliseconds{static_cast<long long>(std::ceil(std::max(0.0, seconds) * 1000.0))};
}

rate_decision token_bucket::take(steady_time now) noexcept {
  refill(now);
  rate_decision d;
  d.limit = burst_;
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    d.allowed = true;
  } else {
    d.allowed = false;
    d.retry_after = ceil_ms((1.0 - tokens_) / rate_);
  }
  d.remaining = std::floor(tokens_);
  d.reset = ceil_ms((burst_ - tokens_) / rate_);
  return d;
}

rate_decision rate_limiter::take(const std::string& key, double rate, double burst, steady_time now) {
  if (burst <= 0) burst = std::max(1.0, rate);
  if (burst < 1) burst = 1;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) it = buckets_.emplace(key, token_bucket(rate, burst, now)).first;
  return it->second.take(now);
}

}  // namespace wharf::http
