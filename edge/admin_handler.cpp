#include "edge/admin_handler.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace wharf::edge {

namespace {

http::response<http::string_body> make(const http::request<http::string_body>& req, http::status status,
                                       std::string content_type, std::string body) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, "wharf");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace

http::response<http::string_body> handle_admin_request(const http::request<http::string_body>& req,
                                                       const admin_sources& sources) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view{};

  bool known = path == "/livez" || path == "/healthz" || path == "/readyz" || path == "/metrics";
  if (!known)
    return make(req, http::status::not_found, "text/plain; charset=utf-8",
                "not found; the admin server serves /livez, /healthz, /readyz and /metrics\n");
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = make(req, http::status::method_not_allowed, "text/plain; charset=utf-8", "use GET\n");
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (path == "/livez" || path == "/healthz") return make(req, http::status::ok, "text/plain; charset=utf-8", "ok\n");
  if (path == "/metrics")
    return make(req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8", sources.metrics_text());

  auto checks = sources.readiness();
  bool ready = true;
  for (const auto& c : checks) ready = ready && c.ok;
  auto status = ready ? http::status::ok : http::status::service_unavailable;
  bool verbose =
      query == "verbose" || query.rfind("verbose=", 0) == 0 || query.find("&verbose") != std::string_view::npos;
  if (!verbose) {
    std::string body = ready ? "ready\n" : "not ready:";
    if (!ready) {
      for (const auto& c : checks)
        if (!c.ok) body += " " + c.name + " (" + c.detail + ")";
      body += "\n";
    }
    return make(req, status, "text/plain; charset=utf-8", std::move(body));
  }
  boost::json::array arr;
  for (const auto& c : checks) arr.push_back(boost::json::object{{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  boost::json::object root{{"ready", ready}, {"checks", std::move(arr)}};
  return make(req, status, "application/json", boost::json::serialize(root) + "\n");
}

}  // namespace wharf::edge
