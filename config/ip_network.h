// An IPv4 or IPv6 address range written as an address ("10.0.0.7", "::1",
// a single host) or in CIDR notation ("10.0.0.0/8", "fd00::/8"), and the
// test whether an address text lies in it. IPv4-mapped IPv6 addresses
// ("::ffff:10.0.0.7", as a dual-stack socket reports IPv4 peers) match IPv4
// ranges.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace wharf::config {

struct ip_network {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes
  bool v6 = false;
  int prefix = 0;  // bits that must match

  // "10.0.0.0/8", "10.0.0.7", "fd00::/8" or "::1"; nullopt when not one.
  static std::optional<ip_network> parse(std::string_view text);
  bool contains(std::string_view address) const;
};

// True when `address` lies in any of `networks`.
bool any_contains(const std::vector<ip_network>& networks, std::string_view address);

}  // namespace wharf::config
