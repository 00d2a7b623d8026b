// The admin endpoints as a pure function: request in, response out.
//   GET /livez, /healthz  liveness: the process runs; checks no dependency.
//   GET /readyz[?verbose] readiness: every check passes; ?verbose gives JSON.
//   GET /metrics          Prometheus text exposition.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <string>
#include <vector>

namespace wharf::edge {

namespace http = boost::beast::http;

struct readiness_check {
  std::string name;
  bool ok = false;
  std::string detail;  // why it is failing, or what it checks
};

struct admin_sources {
  std::function<std::vector<readiness_check>()> readiness;  // evaluated per request
  std::function<std::string()> metrics_text;                // Prometheus text format
};

http::response<http::string_body> handle_admin_request(const http::request<http::string_body>& req,
                                                       const admin_sources& sources);

}  // namespace wharf::edge
