#include "state/redis/redis_url.h"

#include <gtest/gtest.h>

namespace wharf::state {
namespace {

TEST(RedisUrl, ParsesSingleServerWithPort) {
  auto t = parse_redis_url("redis://10.0.0.5:6390");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->sentinel);
  ASSERT_EQ(t->endpoints.size(), 1u);
  EXPECT_EQ(t->endpoints[0], (redis_endpoint{"10.0.0.5", 6390}));
}

TEST(RedisUrl, RedissIsOneServerOverTls) {
  auto t = parse_redis_url("rediss://redis.local:6380");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->tls);
  EXPECT_FALSE(t->sentinel);
  EXPECT_EQ(t->endpoints[0], (redis_endpoint{"redis.local", 6380}));
  EXPECT_FALSE(parse_redis_url("redis://h:1")->tls);
}

TEST(RedisUrl, DefaultsServerPortTo6379) {
  auto t = parse_redis_url("redis://redis.local");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->endpoints[0], (redis_endpoint{"redis.local", 6379}));
}

TEST(RedisUrl, AcceptsTrailingSlashAndDatabaseZero) {
  EXPECT_TRUE(parse_redis_url("redis://h:1/"));
  EXPECT_TRUE(parse_redis_url("redis://h:1/0"));
  EXPECT_FALSE(parse_redis_url("redis://h:1/3"));
}

TEST(RedisUrl, TakesPasswordFromUserinfo) {
  auto t = parse_redis_url("redis://:s3cret@h:6379");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->password, "s3cret");
  EXPECT_EQ(t->endpoints[0].host, "h");
  auto u = parse_redis_url("redis://default:pw@h");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->password, "pw");
}

TEST(RedisUrl, ParsesSentinelListAndMasterName) {
  auto t = parse_redis_url("sentinel://127.0.0.1:26379,127.0.0.1:26380,s3/wharf");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->sentinel);
  EXPECT_EQ(t->master_name, "wharf");
  ASSERT_EQ(t->endpoints.size(), 3u);
  EXPECT_EQ(t->endpoints[0], (redis_endpoint{"127.0.0.1", 26379}));
  EXPECT_EQ(t->endpoints[1], (redis_endpoint{"127.0.0.1", 26380}));
  EXPECT_EQ(t->endpoints[2], (redis_endpoint{"s3", 26379}));
}

TEST(RedisUrl, ParsesBracketedIpv6) {
  auto t = parse_redis_url("sentinel://[::1]:26379,[fe80::2]/m");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->endpoints[0], (redis_endpoint{"::1", 26379}));
  EXPECT_EQ(t->endpoints[1], (redis_endpoint{"fe80::2", 26379}));
}

TEST(RedisUrl, RejectsSentinelWithoutMasterName) {
  auto t = parse_redis_url("sentinel://h:26379");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().value(), static_cast<int>(url_error::missing_master));
  EXPECT_FALSE(parse_redis_url("sentinel://h:26379/"));
}

TEST(RedisUrl, RejectsUnknownScheme) {
  auto t = parse_redis_url("http://h:6379");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().value(), static_cast<int>(url_error::bad_scheme));
  EXPECT_FALSE(parse_redis_url("h:6379"));
}

TEST(RedisUrl, RejectsBadPorts) {
  EXPECT_FALSE(parse_redis_url("redis://h:"));
  EXPECT_FALSE(parse_redis_url("redis://h:0"));
  EXPECT_FALSE(parse_redis_url("redis://h:65536"));
  EXPECT_FALSE(parse_redis_url("redis://h:12ab"));
  EXPECT_FALSE(parse_redis_url("sentinel://h:1,h:x/m"));
}

TEST(RedisUrl, RejectsMissingHost) {
  EXPECT_FALSE(parse_redis_url("redis://"));
  EXPECT_FALSE(parse_redis_url("redis://:6379"));
  EXPECT_FALSE(parse_redis_url("sentinel://h,/m"));
}

TEST(RedisUrl, RejectsSeveralHostsForRedisScheme) {
  auto t = parse_redis_url("redis://a:1,b:2");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().value(), static_cast<int>(url_error::several_hosts));
}

}  // namespace
}  // namespace wharf::state
