#include "config/ip_network.h"

#include <gtest/gtest.h>

namespace wharf::config {
namespace {

TEST(IpNetwork, SingleAddressMatchesOnlyItself) {
  auto n = ip_network::parse("10.0.0.7");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->contains("10.0.0.7"));
  EXPECT_FALSE(n->contains("10.0.0.8"));
  EXPECT_FALSE(n->contains("::1"));
}

TEST(IpNetwork, Ipv4RangesMatchByPrefix) {
  auto n = ip_network::parse("10.0.0.0/8");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->contains("10.255.3.4"));
  EXPECT_FALSE(n->contains("11.0.0.1"));
  auto odd = ip_network::parse("192.168.1.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("192.168.1.200"));
  EXPECT_FALSE(odd->contains("192.168.1.127"));
  auto all = ip_network::parse("0.0.0.0/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains("203.0.113.9"));
  EXPECT_FALSE(all->contains("2001:db8::1")) << "an IPv4 range never matches IPv6";
}

TEST(IpNetwork, Ipv6RangesAndMappedIpv4) {
  auto n = ip_network::parse("fd00::/8");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->contains("fd12:3456::1"));
  EXPECT_FALSE(n->contains("fe80::1"));
  auto v4 = ip_network::parse("10.0.0.0/8");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains("::ffff:10.1.2.3")) << "dual-stack sockets report IPv4 peers this way";
}

TEST(IpNetwork, RejectsWhatIsNotAnAddressOrRange) {
  for (const char* bad : {"", "10.0.0", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1",
                          "host.example", "10.0.0.0/8/8", "[::1]"})
    EXPECT_FALSE(ip_network::parse(bad)) << bad;
}

TEST(IpNetwork, AnyContainsChecksEveryRange) {
  std::vector<ip_network> list{*ip_network::parse("10.0.0.0/8"), *ip_network::parse("::1")};
  EXPECT_TRUE(any_contains(list, "10.9.9.9"));
  EXPECT_TRUE(any_contains(list, "::1"));
  EXPECT_FALSE(any_contains(list, "127.0.0.1"));
  EXPECT_FALSE(any_contains({}, "10.0.0.1"));
  EXPECT_FALSE(any_contains(list, "not an address"));
}

}  // namespace
}  // namespace wharf::config
