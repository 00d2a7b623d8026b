// Plain HTTP request and response values that the pure request handler works
// on. No Beast, no Asio: the server in server/ converts to and from these, and
// tests and the fuzzer build them directly.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::http {

struct field {
  std::string name;
  std::string value;
};

struct http_request {
  std::string method;  // "POST", "GET", ...
  std::string target;  // origin-form: "/v1/messages/orders?producer=web"
  std::vector<field> headers;
  std::string body;          // bytes as received (still gzip-encoded if sent so)
  std::string peer_address;  // IP address of the TCP peer, no port
};

struct http_response {
  unsigned status = 200;
  std::vector<field> headers;  // Content-Type is among them when there is a body
  std::string body;
  // The connection must close after this response (the request body was not
  // read, or the server is draining).
  bool close = false;
};

// First header named `name` (ASCII case-insensitive), if any.
std::optional<std::string_view> find_header(const std::vector<field>& headers, std::string_view name) noexcept;

bool iequals(std::string_view a, std::string_view b) noexcept;
std::string to_lower(std::string_view s);
std::string_view trim(std::string_view s) noexcept;

}  // namespace wharf::http
