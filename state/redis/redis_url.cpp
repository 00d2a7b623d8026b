#include "state/redis/redis_url.h"

#include <charconv>

namespace wharf::state {
namespace {

class url_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "wharf.redis_url"; }
  std::string message(int ev) const override {
    switch (static_cast<url_error>(ev)) {
      case url_error::bad_scheme:
        return "scheme must be redis://, rediss:// or sentinel://";
      case url_error::missing_host:
        return "missing host";
      case url_error::bad_port:
        return "port must be a number from 1 to 65535";
      case url_error::missing_master:
        return "sentinel:// needs the master name as path (/mymaster)";
      case url_error::unexpected_path:
        return "redis:// takes no path";
      case url_error::several_hosts:
        return "redis:// takes one host; list several with sentinel://";
    }
    return "bad Redis URL";
  }
};

const boost::system::error_category& url_category() {
  static const url_category_impl c;
  return c;
}

boost::system::error_code err(url_error e) { return {static_cast<int>(e), url_category()}; }

boost::system::result<redis_endpoint> parse_endpoint(std::string_view s, std::uint16_t default_port) {
  redis_endpoint ep;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return err(url_error::missing_host);
    ep.host = std::string(s.substr(1, close - 1));
    auto rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return err(url_error::bad_port);
      port = rest.substr(1);
      if (port.empty()) return err(url_error::bad_port);
    }
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      ep.host = std::string(s);
    } else {
      ep.host = std::string(s.substr(0, colon));
      port = s.substr(colon + 1);
      if (port.empty()) return err(url_error::bad_port);
    }
  }
  if (ep.host.empty()) return err(url_error::missing_host);
  ep.port = default_port;
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535) {
      return err(url_error::bad_port);
    }
    ep.port = static_cast<std::uint16_t>(value);
  }
  return ep;
}

}  // namespace

boost::system::result<redis_target> parse_redis_url(std::string_view url) {
  redis_target t;
  constexpr std::string_view redis_scheme = "redis://";
  constexpr std::string_view sentinel_scheme = "sentinel://";
  std::string_view rest;
  constexpr std::string_view rediss_scheme = "rediss://";
  if (url.starts_with(redis_scheme)) {
    rest = url.substr(redis_scheme.size());
  } else if (url.starts_with(rediss_scheme)) {
    t.tls = true;
    rest = url.substr(rediss_scheme.size());
  } else if (url.starts_with(sentinel_scheme)) {
    t.sentinel = true;
    rest = url.substr(sentinel_scheme.size());
  } else {
    return err(url_error::bad_scheme);
  }

  std::string_view path;
  auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    auto userinfo = rest.substr(0, at);
    auto colon = userinfo.find(':');
    t.password = std::string(colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1));
    rest = rest.substr(at + 1);
  }
  if (rest.empty()) return err(url_error::missing_host);

  const std::uint16_t default_port = t.sentinel ? 26379 : 6379;
  while (true) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    auto ep = parse_endpoint(item, default_port);
    if (!ep) return ep.error();
    t.endpoints.push_back(std::move(*ep));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (t.sentinel) {
    if (path.empty()) return err(url_error::missing_master);
    t.master_name = std::string(path);
  } else {
    if (t.endpoints.size() != 1) return err(url_error::several_hosts);
    if (!path.empty() && path != "0") return err(url_error::unexpected_path);
  }
  return t;
}

}  // namespace wharf::state
