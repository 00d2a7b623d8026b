// libFuzzer target for the HTTP request handler (pure: no sockets). The input
// is an HTTP/1.1 request as text: request line, headers, blank line, body.
// Every stage runs: check_head, handle_body and delivery_response with the
// outcomes taken from the input's last byte.
#include "protocols/http/authenticator.h"
#include "protocols/http/request_handler.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string_view>

namespace {

using namespace wharf;

std::unique_ptr<http::request_handler> make_handler() {
  const auto dir = std::filesystem::temp_directory_path() / "wharf-http-fuzz";
  std::filesystem::create_directories(dir);
  const std::string schema = (dir / "schema.json").string();
  std::ofstream(schema) << R"({"type":"object","required":["id"],"properties":{"id":{"type":"string"},)"
                           R"("n":{"type":"integer","minimum":0},"tags":{"type":"array","items":{"type":"string"}}}})";
  config::http_config cfg;
  cfg.max_batch_items = 50;
  cfg.max_decompressed_body = 256 * 1024;
  cfg.trusted_proxies = {"10.0.0.1"};
  config::http_type events;
  events.name = "events";
  events.kafka_topic = "http.events";
  events.allow_anonymous = true;
  events.max_body = 64 * 1024;
  events.cors_origins = {"https://a.example"};
  events.idempotency_pointer = "/id";
  cfg.types.push_back(events);
  config::http_type orders;
  orders.name = "orders";
  orders.kafka_topic = "orders";
  orders.key = "json:/id";
  orders.schema_file = schema;
  orders.allow_anonymous = true;
  orders.content_types = {"application/json", "application/x-ndjson"};
  cfg.types.push_back(orders);
  config::http_type raw;
  raw.name = "raw";
  raw.kafka_topic = "raw";
  raw.key = "header:X-Device";
  raw.batch = false;
  cfg.types.push_back(raw);
  config::http_api_key key;
  key.name = "k";
  key.sha256 = http::sha256_hex("key");
  key.rate_per_second = 5;
  key.burst = 3;
  cfg.api_keys.push_back(key);
  cfg.jwt.enabled = true;
  std::vector<http::jwt_key> keys{{"", "HS256", "fuzz-secret"}};
  return std::make_unique<http::request_handler>(cfg, http::handler_options{"fuzz", true, "openapi: 3.1.0\n"},
                                                 std::make_unique<http::authenticator>(cfg, std::move(keys)));
}

http::http_request parse(std::string_view in) {
  http::http_request req;
  req.peer_address = "10.0.0.1";
  auto line_end = in.find('\n');
  std::string_view line = in.substr(0, line_end);
  in = line_end == std::string_view::npos ? std::string_view() : in.substr(line_end + 1);
  auto sp = line.find(' ');
  req.method = std::string(line.substr(0, sp));
  req.target = sp == std::string_view::npos ? "/" : std::string(line.substr(sp + 1));
  while (!in.empty()) {
    auto e = in.find('\n');
    std::string_view h = in.substr(0, e);
    in = e == std::string_view::npos ? std::string_view() : in.substr(e + 1);
    if (h.empty() || h == "\r") break;
    auto colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    req.headers.push_back({std::string(h.substr(0, colon)), std::string(http::trim(h.substr(colon + 1)))});
  }
  req.body = std::string(in);
  return req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static auto handler = make_handler();
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size - 1);
  const std::uint8_t fate_bits = data[size - 1];
  auto req = parse(in);
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1714564800));
  const auto steady = std::chrono::steady_clock::time_point(std::chrono::seconds(1000));
  auto out = handler->handle(req, steady, now);
  if (auto* sub = std::get_if<http::submission>(&out)) {
    std::vector<http::record_outcome> outcomes;
    for (std::size_t i = 0; i < sub->records.size(); ++i)
      outcomes.push_back({static_cast<http::record_fate>((fate_bits >> (i % 4)) % 5), "x", {}});
    sinks::sink_health h;
    h.delivering = (fate_bits & 1) != 0;
    h.queued_records = fate_bits * 1000u;
    auto r = handler->delivery_response(*sub, outcomes, h, steady);
    if (r.status < 200 || r.status > 599) __builtin_trap();
  } else {
    const auto& r = std::get<http::http_response>(out);
    if (r.status < 200 || r.status > 599) __builtin_trap();
  }
  return 0;
}
