#include "protocols/http/rate_limiter.h"

#include <gtest/gtest.h>

namespace wharf::http {
namespace {

using namespace std::chrono;
const steady_time t0{hours(1)};

TEST(HttpTokenBucket, AllowsTheBurstThenRefillsAtTheRate) {
  token_bucket b(2.0, 3.0, t0);  // 2 per second, burst 3
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.take(t0).allowed) << i;
  auto refused = b.take(t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, milliseconds(500));
  EXPECT_EQ(refused.reset, milliseconds(1500));
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_FALSE(b.take(t0 + milliseconds(499)).allowed);
  EXPECT_TRUE(b.take(t0 + milliseconds(500)).allowed);
}

TEST(HttpTokenBucket, NeverHoldsMoreThanTheBurst) {
  token_bucket b(10.0, 2.0, t0);
  auto d = b.take(t0 + hours(5));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 1);
  EXPECT_TRUE(b.take(t0 + hours(5)).allowed);
  EXPECT_FALSE(b.take(t0 + hours(5)).allowed);
}

TEST(HttpRateLimiter, KeepsOneBucketPerKeyAndDefaultsBurstToRate) {
  rate_limiter l;
  EXPECT_TRUE(l.take("a", 1, 0, t0).allowed);
  EXPECT_FALSE(l.take("a", 1, 0, t0).allowed);
  EXPECT_TRUE(l.take("b", 1, 0, t0).allowed);
  EXPECT_EQ(l.take("c", 5, 0, t0).limit, 5);
}

}  // namespace
}  // namespace wharf::http
