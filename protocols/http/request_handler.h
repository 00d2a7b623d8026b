// The HTTP ingest API as pure functions: a request goes in, either an
// immediate response or the records to hand to a sink come out. No sockets,
// no Asio, no clocks (time is passed in), so tests and the fuzzer call it
// directly. The Beast server (server/) does the I/O around it:
//
//   1. check_head(request without body) -> response | accepted_head
//      routing, type lookup, auth, CORS, rate limit, Content-Length/-Type/
//      -Encoding checks. A response here means: do not read the body.
//   2. handle_body(accepted_head, request with body) -> response | submission
//      gunzip (capped), batch split, JSON Schema validation (all-or-nothing),
//      Kafka key, enrichment headers, one record per event.
//   3. The server submits the records and collects one record_outcome each,
//      then delivery_response(...) turns them into 200/202/503/500.
//
// Thread-safe: one handler serves every connection (the rate limiter locks).
#pragma once

#include "config/config.h"
#include "config/ip_network.h"
#include "protocols/http/authenticator.h"
#include "protocols/http/http_message.h"
#include "protocols/http/rate_limiter.h"
#include "sinks/sink.h"

#include <chrono>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace wharf::http {

using system_time = std::chrono::system_clock::time_point;

struct handler_options {
  std::string node_id;
  bool async_supported = false;  // a write-ahead log is wired: 202 mode possible
  std::string openapi_yaml;      // served at GET /openapi.yaml
};

// Route label for metrics.
enum class route { messages, preflight, openapi, not_found };
std::string_view to_string(route r) noexcept;

struct type_entry;  // a configured type, compiled (schema, key source)

// The headers passed every check; the server may read the body now.
struct accepted_head {
  const type_entry* type = nullptr;
  identity who;
  std::string producer;
  std::string media_type;    // lower-case, no parameters ("application/json")
  std::string content_type;  // the header as sent ("" if none)
  bool gzip = false;
  bool async = false;                   // reply 202 after the write-ahead log
  std::uint64_t body_limit = 0;         // bytes on the wire
  std::vector<field> response_headers;  // CORS and RateLimit-* for every answer
};

struct submission {
  std::string type;
  bool async = false;
  bool batch = false;
  std::vector<sinks::record> records;
  std::vector<std::string> ids;  // ce_id of each record, same order
  std::vector<field> response_headers;
};

enum class record_fate { stored, failed_retryable, failed_permanent, timed_out, not_submitted };
struct record_outcome {
  record_fate fate = record_fate::not_submitted;
  std::string reason;
  sinks::delivery_result::cause why = sinks::delivery_result::cause::none;
};
record_outcome to_outcome(const sinks::delivery_result& r);

using head_outcome = std::variant<http_response, accepted_head>;
using handler_outcome = std::variant<http_response, submission>;

// Seconds a client should wait before retrying, from the sink's state: while
// the sink cannot deliver, half the outage so far (2..60 s); otherwise the
// backlog over a nominal drain rate (1..30 s).
std::chrono::seconds retry_after(const sinks::sink_health& h, std::chrono::steady_clock::time_point now);

// {"error":{"code":..,"message":..,"details":[..]}}
http_response error_response(unsigned status, const std::string& message, const std::string& details_json = "[]");

class request_handler {
 public:
  // Loads JSON Schemas and JWT keys. Throws std::runtime_error naming the
  // config key and the fix (start-up only).
  request_handler(const config::http_config& cfg, handler_options opts);
  request_handler(const config::http_config& cfg, handler_options opts, std::unique_ptr<authenticator> auth);
  ~request_handler();
  request_handler(const request_handler&) = delete;
  request_handler& operator=(const request_handler&) = delete;

  route classify(const http_request& req) const;

  head_outcome check_head(const http_request& req, std::chrono::steady_clock::time_point now_steady, system_time now);
  handler_outcome handle_body(const accepted_head& head, const http_request& req, system_time now);
  // Both stages (tests, fuzzing).
  handler_outcome handle(const http_request& req, std::chrono::steady_clock::time_point now_steady, system_time now);

  // outcomes[i] belongs to sub.records[i].
  http_response delivery_response(const submission& sub, const std::vector<record_outcome>& outcomes,
                                  const sinks::sink_health& health, std::chrono::steady_clock::time_point now) const;

  const config::http_config& config() const noexcept { return cfg_; }

 private:
  http_response preflight(const type_entry& t, const http_request& req) const;
  bool origin_allowed_by_type(const type_entry& t, std::string_view origin) const;
  std::string remote_address(const http_request& req) const;

  config::http_config cfg_;
  std::vector<config::ip_network> trusted_proxies_;
  handler_options opts_;
  std::unique_ptr<authenticator> auth_;
  std::vector<std::unique_ptr<type_entry>> types_;
  rate_limiter limiter_;
};

}  // namespace wharf::http
