#include "config/ip_network.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <string>

namespace wharf::config {
namespace {

struct parsed_address {
  std::array<std::uint8_t, 16> bytes{};
  bool v6 = false;
};

std::optional<parsed_address> parse_address(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
  const std::string s(text);
  parsed_address a;
  if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), mapped, sizeof mapped) == 0) {  // ::ffff:a.b.c.d is IPv4
    std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
    std::memset(a.bytes.data() + 4, 0, 12);
    return a;
  }
  a.v6 = true;
  return a;
}

}  // namespace

std::optional<ip_network> ip_network::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = parse_address(text.substr(0, slash));
  if (!addr) return std::nullopt;
  ip_network n;
  n.bytes = addr->bytes;
  n.v6 = addr->v6;
  const int max_prefix = n.v6 ? 128 : 32;
  n.prefix = max_prefix;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    int p = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || p < 0 || p > max_prefix)
      return std::nullopt;
    n.prefix = p;
  }
  return n;
}

namespace {

bool in(const ip_network& n, const parsed_address& a) {
  if (a.v6 != n.v6) return false;
  const int full = n.prefix / 8, rest = n.prefix % 8;
  if (std::memcmp(a.bytes.data(), n.bytes.data(), static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[static_cast<std::size_t>(full)] & mask) == (n.bytes[static_cast<std::size_t>(full)] & mask);
}

}  // namespace

bool ip_network::contains(std::string_view address) const {
  auto a = parse_address(address);
  return a && in(*this, *a);
}

bool any_contains(const std::vector<ip_network>& networks, std::string_view address) {
  if (networks.empty()) return false;
  auto a = parse_address(address);  // once, whatever the number of ranges
  if (!a) return false;
  for (const auto& n : networks)
    if (in(n, *a)) return true;
  return false;
}

}  // namespace wharf::config
