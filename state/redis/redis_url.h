// Parses redis.url: `redis://[:password@]host[:port]` (one server, default
// port 6379; `rediss://` the same over TLS) or `sentinel://[:password@]host[:port],host[:port],.../master`
// (Sentinels, default port 26379, and the master name they watch).
// IPv6 addresses go in brackets: redis://[::1]:6379.
#pragma once

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::state {

struct redis_endpoint {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const redis_endpoint&, const redis_endpoint&) = default;
};

struct redis_target {
  bool sentinel = false;
  std::vector<redis_endpoint> endpoints;  // one for redis://, one or more for sentinel://
  std::string master_name;                // sentinel:// only
  std::string password;                   // from the URL; redis.password wins when set
  bool tls = false;                       // rediss://
};

enum class url_error {
  bad_scheme = 1,  // not redis://, rediss:// or sentinel://
  missing_host,
  bad_port,
  missing_master,   // sentinel:// without /master
  unexpected_path,  // redis:// with a path other than "" or "/" or "/0"
  several_hosts,    // redis:// with a comma-separated list
};

boost::system::result<redis_target> parse_redis_url(std::string_view url);

}  // namespace wharf::state
