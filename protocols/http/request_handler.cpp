#include "protocols/http/request_handler.h"

#include "protocols/http/gzip_decoder.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace wharf::http {

namespace json = boost::json;

// ---------------------------------------------------------------------------
// Compiled type

struct type_entry {
  config::http_type cfg;
  enum class key_source { producer, header, json } key = key_source::producer;
  std::string key_arg;                   // header name or JSON pointer
  std::vector<std::string> media_types;  // lower-case
  std::unique_ptr<valijson::Schema> schema;
  bool needs_json = false;  // schema, json key or idempotency pointer

  std::string see() const { return cfg.docs_url.empty() ? std::string() : " See " + cfg.docs_url; }
};

std::string_view to_string(route r) noexcept {
  switch (r) {
    case route::messages:
      return "messages";
    case route::preflight:
      return "preflight";
    case route::openapi:
      return "openapi";
    case route::not_found:
      return "not_found";
  }
  return "not_found";
}

record_outcome to_outcome(const sinks::delivery_result& r) {
  record_outcome o;
  o.reason = r.reason;
  o.why = r.why;
  switch (r.status) {
    case sinks::delivery_status::stored:
      o.fate = record_fate::stored;
      break;
    case sinks::delivery_status::failed_retryable:
      o.fate = record_fate::failed_retryable;
      break;
    case sinks::delivery_status::failed_permanent:
      o.fate = record_fate::failed_permanent;
      break;
  }
  return o;
}

std::chrono::seconds retry_after(const sinks::sink_health& h, std::chrono::steady_clock::time_point now) {
  using std::chrono::seconds;
  if (!h.delivering) {
    const double outage = h.unhealthy_since.time_since_epoch().count() == 0 || now < h.unhealthy_since
                              ? 0.0
                              : std::chrono::duration<double>(now - h.unhealthy_since).count();
    return seconds{std::clamp<long long>(static_cast<long long>(std::ceil(outage / 2.0)), 2, 60)};
  }
  // Nominal drain: 20000 records/s or 32 MiB/s, whichever backlog is longer.
  const double by_records = static_cast<double>(h.queued_records) / 20000.0;
  const double by_bytes = static_cast<double>(h.queued_bytes) / (32.0 * 1024 * 1024);
  return seconds{std::clamp<long long>(1 + static_cast<long long>(std::ceil(std::max(by_records, by_bytes))), 1, 30)};
}

static std::string json_string(std::string_view s) { return json::serialize(json::string(s)); }

http_response error_response(unsigned status, const std::string& message, const std::string& details_json) {
  http_response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = "{\"error\":{\"code\":" + std::to_string(status) + ",\"message\":" + json_string(message) +
           ",\"details\":" + details_json + "}}";
  return r;
}

// ---------------------------------------------------------------------------
// Helpers

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string media_type_of(std::string_view content_type) {
  auto semi = content_type.find(';');
  return to_lower(trim(content_type.substr(0, semi)));
}

bool is_json_media(std::string_view m) {
  return m == "application/json" || (m.size() > 5 && m.substr(m.size() - 5) == "+json");
}
bool is_ndjson_media(std::string_view m) {
  return m == "application/x-ndjson" || m == "application/ndjson" || m == "application/jsonl";
}

bool list_has(const std::vector<std::string>& list, std::string_view v) {
  for (const auto& e : list)
    if (e == "*" || e == v) return true;
  return false;
}

// RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.123Z
std::string rfc3339_ms(system_time t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 74 random bits.
std::string uuid_v7(system_time t) {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  const auto ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
  const std::uint64_t r1 = rng(), r2 = rng();
  std::uint8_t b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x70 | ((r1 >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(r1);
  b[8] = static_cast<std::uint8_t>(0x80 | ((r2 >> 56) & 0x3F));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<std::uint8_t>(r2 >> (8 * (15 - i)));
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 0xF]);
  }
  return s;
}

bool valid_producer(std::string_view p) {
  if (p.empty() || p.size() > 128) return false;
  for (char c : p) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == ':' || c == '@';
    if (!ok) return false;
  }
  return true;
}

// Header values copied into Kafka headers: printable, bounded.
std::string bounded(std::string_view v, std::size_t max = 512) {
  std::string out;
  for (char c : v.substr(0, max)) out.push_back((static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c);
  return out;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// The byte ranges of the items of a top-level JSON array. Precondition: `s`
// parsed as a JSON array, so brackets and strings are balanced.
std::vector<std::string_view> split_json_array(std::string_view s) {
  std::vector<std::string_view> items;
  s = trim_ws(s);
  std::size_t i = 1;  // after '['
  int depth = 0;
  bool in_string = false;
  std::size_t start = i;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      ++depth;
    else if ((c == ']' || c == '}') && depth > 0)
      --depth;
    else if (depth == 0 && (c == ',' || c == ']')) {
      auto item = trim_ws(s.substr(start, i - start));
      if (!item.empty() || c == ',') items.push_back(item);
      start = i + 1;
      if (c == ']') break;
    }
  }
  return items;
}

std::string json_pointer_from_context(const std::vector<std::string>& ctx) {
  std::string p;
  for (const auto& c : ctx) {
    if (c == "<root>") continue;
    std::string_view seg = c;
    if (seg.size() >= 2 && seg.front() == '[' && seg.back() == ']') seg = seg.substr(1, seg.size() - 2);
    if (seg.size() >= 2 && seg.front() == '\'' && seg.back() == '\'') seg = seg.substr(1, seg.size() - 2);
    p.push_back('/');
    for (char ch : seg) {
      if (ch == '~')
        p += "~0";
      else if (ch == '/')
        p += "~1";
      else
        p.push_back(ch);
    }
  }
  return p;
}

// A JSON value used as a key or idempotency key: strings as they are, other
// scalars serialized; objects/arrays/null refused.
std::optional<std::string> scalar_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_int64() || v.is_uint64() || v.is_double() || v.is_bool()) return json::serialize(v);
  return std::nullopt;
}

struct item_error {
  std::size_t index;
  std::string pointer;
  std::string message;
};

constexpr std::size_t max_reported_errors = 100;

}  // namespace

// ---------------------------------------------------------------------------
// Construction

request_handler::request_handler(const config::http_config& cfg, handler_options opts)
    : request_handler(cfg, std::move(opts), std::make_unique<authenticator>(cfg)) {}

request_handler::request_handler(const config::http_config& cfg, handler_options opts,
                                 std::unique_ptr<authenticator> auth)
    : cfg_(cfg), opts_(std::move(opts)), auth_(std::move(auth)) {
  for (const auto& p : cfg_.trusted_proxies) {
    auto n = config::ip_network::parse(p);
    if (!n) throw std::runtime_error("http.trusted_proxies: '" + p + "' is not an IP address or CIDR range");
    trusted_proxies_.push_back(*n);
  }
  for (const auto& t : cfg_.types) {
    auto e = std::make_unique<type_entry>();
    e->cfg = t;
    const std::string where = "http.types[" + t.name + "]";
    if (t.key == "producer" || t.key.empty()) {
      e->key = type_entry::key_source::producer;
    } else if (t.key.rfind("header:", 0) == 0 && t.key.size() > 7) {
      e->key = type_entry::key_source::header;
      e->key_arg = t.key.substr(7);
    } else if (t.key.rfind("json:", 0) == 0) {
      e->key = type_entry::key_source::json;
      e->key_arg = t.key.substr(5);
      if (!e->key_arg.empty() && e->key_arg.front() != '/')
        throw std::runtime_error(where + ".key: a JSON pointer starts with '/', e.g. json:/deviceId");
    } else {
      throw std::runtime_error(where + ".key: expected producer, header:NAME or json:/pointer, got '" + t.key + "'");
    }
    for (const auto& m : t.content_types) e->media_types.push_back(media_type_of(m));
    if (!t.schema_file.empty()) {
      const std::string text = read_text_file(t.schema_file);
      if (text.empty()) throw std::runtime_error(where + ".schema_file: cannot read '" + t.schema_file + "'");
      boost::system::error_code ec;
      json::value doc = json::parse(text, ec);
      if (ec) throw std::runtime_error(where + ".schema_file: '" + t.schema_file + "' is not JSON: " + ec.message());
      e->schema = std::make_unique<valijson::Schema>();
      try {
        valijson::SchemaParser parser;
        valijson::adapters::BoostJsonAdapter adapter(doc);
        parser.populateSchema(adapter, *e->schema);
      } catch (const std::exception& ex) {
        throw std::runtime_error(where + ".schema_file: '" + t.schema_file +
                                 "' is not a usable JSON Schema: " + ex.what());
      }
    }
    e->needs_json = e->schema != nullptr || e->key == type_entry::key_source::json || !t.idempotency_pointer.empty();
    types_.push_back(std::move(e));
  }
}

request_handler::~request_handler() = default;

// ---------------------------------------------------------------------------
// Routing

namespace {
struct target_parts {
  bool ok = false;
  bool openapi = false;
  bool messages = false;
  std::string type;
  std::optional<std::string> producer;
};

target_parts parse_target(std::string_view target) {
  target_parts p;
  if (target.size() > 8192) return p;
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return p;
  p.ok = true;
  std::vector<std::string> segs;
  for (auto s : u->segments()) {
    if (segs.size() > 8) return p;
    segs.push_back(s);
  }
  if (segs.size() == 1 && segs[0] == "openapi.yaml") p.openapi = true;
  if (segs.size() == 3 && segs[0] == "v1" && segs[1] == "messages" && !segs[2].empty()) {
    p.messages = true;
    p.type = segs[2];
  }
  for (auto param : u->params()) {
    if (param.key == "producer") {
      p.producer = std::string(param.has_value ? std::string(param.value) : std::string());
      break;
    }
  }
  return p;
}
}  // namespace

route request_handler::classify(const http_request& req) const {
  auto p = parse_target(req.target);
  if (p.openapi) return route::openapi;
  if (p.messages) return iequals(req.method, "OPTIONS") ? route::preflight : route::messages;
  return route::not_found;
}

bool request_handler::origin_allowed_by_type(const type_entry& t, std::string_view origin) const {
  if (list_has(t.cfg.cors_origins, origin)) return true;
  // Preflights carry no credentials: an origin that some key allowed to
  // write this type may also pass the preflight.
  for (const auto& k : cfg_.api_keys)
    if ((k.types.empty() || list_has(k.types, t.cfg.name)) && list_has(k.origins, origin)) return true;
  return false;
}

static void add_cors(std::vector<field>& h, std::string_view origin) {
  h.push_back({"Access-Control-Allow-Origin", std::string(origin)});
  h.push_back({"Vary", "Origin"});
  h.push_back({"Access-Control-Expose-Headers",
               "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Preference-Applied"});
}

http_response request_handler::preflight(const type_entry& t, const http_request& req) const {
  auto origin = find_header(req.headers, "origin");
  auto method = find_header(req.headers, "access-control-request-method");
  if (!origin || !method)
    return error_response(400, "A preflight request needs Origin and Access-Control-Request-Method headers.");
  if (!origin_allowed_by_type(t, *origin))
    return error_response(403, "Origin " + std::string(bounded(*origin, 200)) + " may not send events of type '" +
                                   t.cfg.name + "'. The operator can add it to http.types[].cors_origins." + t.see());
  if (*method != "POST") return error_response(405, "Only POST is allowed on /v1/messages/" + t.cfg.name + ".");
  http_response r;
  r.status = 204;
  r.headers.push_back({"Access-Control-Allow-Origin", std::string(*origin)});
  r.headers.push_back({"Vary", "Origin"});
  r.headers.push_back({"Access-Control-Allow-Methods", "POST, OPTIONS"});
  r.headers.push_back({"Access-Control-Allow-Headers",
                       "Content-Type, Content-Encoding, Authorization, X-API-Key, Idempotency-Key, Prefer"});
  r.headers.push_back({"Access-Control-Max-Age", std::to_string(cfg_.cors_max_age)});
  return r;
}

std::string request_handler::remote_address(const http_request& req) const {
  if (!config::any_contains(trusted_proxies_, req.peer_address)) return req.peer_address;
  auto xff = find_header(req.headers, "x-forwarded-for");
  if (!xff) return req.peer_address;
  // Walk from the right: the first address that is not a trusted proxy is
  // the client as far as we can trust the chain.
  std::string_view list = *xff;
  std::string candidate = req.peer_address;
  int hops = 0;
  while (!list.empty() && hops++ < 32) {
    auto comma = list.rfind(',');
    std::string_view addr = trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
    if (addr.empty()) continue;
    candidate = bounded(addr, 64);
    if (!config::any_contains(trusted_proxies_, addr)) break;
  }
  return candidate;
}

// ---------------------------------------------------------------------------
// Stage 1: headers

head_outcome request_handler::check_head(const http_request& req, std::chrono::steady_clock::time_point now_steady,
                                         system_time now) {
  const auto p = parse_target(req.target);
  if (!p.ok) return error_response(400, "The request target is not a valid URL path.");
  if (p.openapi) {
    if (!iequals(req.method, "GET") && !iequals(req.method, "HEAD")) {
      auto r = error_response(405, "Use GET to fetch /openapi.yaml.");
      r.headers.push_back({"Allow", "GET, HEAD"});
      return r;
    }
    http_response r;
    r.headers.push_back({"Content-Type", "application/yaml"});
    r.body = opts_.openapi_yaml;
    return r;
  }
  if (!p.messages)
    return error_response(404,
                          "There is nothing at this path. Send events with POST /v1/messages/{type}; the API is "
                          "described at /openapi.yaml.");

  const type_entry* t = nullptr;
  for (const auto& e : types_)
    if (e->cfg.name == p.type) t = e.get();
  if (t == nullptr)
    return error_response(404, "There is no type '" + bounded(p.type, 100) +
                                   "' on this node. Check the type name in the URL (/v1/messages/{type}).");

  if (iequals(req.method, "OPTIONS")) return preflight(*t, req);
  if (!iequals(req.method, "POST")) {
    auto r = error_response(405, "Use POST to send events to /v1/messages/" + t->cfg.name + ".");
    r.headers.push_back({"Allow", "POST, OPTIONS"});
    return r;
  }

  accepted_head head;
  head.type = t;
  const auto origin = find_header(req.headers, "origin");
  const bool type_allows_origin = origin && origin_allowed_by_type(*t, *origin);
  if (type_allows_origin) add_cors(head.response_headers, *origin);
  auto reject = [&](http_response r) {
    r.headers.insert(r.headers.end(), head.response_headers.begin(), head.response_headers.end());
    return r;
  };

  // Who is calling, and may they write this type?
  auto a = auth_->authenticate(req.headers, now);
  if (a.outcome == auth_result::status::invalid) {
    auto r = error_response(401, a.message);
    r.headers.push_back({"WWW-Authenticate", "Bearer error=\"invalid_token\""});
    return reject(std::move(r));
  }
  if (a.outcome == auth_result::status::no_credentials) {
    if (!t->cfg.allow_anonymous) {
      auto r = error_response(401, "Type '" + t->cfg.name +
                                       "' needs credentials: send 'Authorization: Bearer <API key or token>' or "
                                       "'X-API-Key: <API key>'." +
                                       t->see());
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      return reject(std::move(r));
    }
    a.who.how = identity::kind::anonymous;
    a.who.all_types = true;
  }
  head.who = std::move(a.who);
  if (!head.who.may_write(t->cfg.name))
    return reject(error_response(403, "These credentials may not send events of type '" + t->cfg.name +
                                          "'. Ask the operator to add the type to the key or token."));
  if (origin) {
    const bool ok = head.who.origins.empty() ? type_allows_origin : list_has(head.who.origins, *origin);
    if (!ok)
      return reject(error_response(403, "Origin " + bounded(*origin, 200) + " may not send events of type '" +
                                            t->cfg.name +
                                            "'. The operator can allow it in http.types[].cors_origins "
                                            "or the API key's origins."));
    if (!type_allows_origin) add_cors(head.response_headers, *origin);
  }

  // Rate limit: per API key, per node.
  if (head.who.how == identity::kind::api_key && head.who.rate_per_second > 0) {
    auto d = limiter_.take("key:" + head.who.name, head.who.rate_per_second, head.who.burst, now_steady);
    const auto secs = [](std::chrono::milliseconds ms) { return std::to_string((ms.count() + 999) / 1000); };
    head.response_headers.push_back({"RateLimit-Limit", std::to_string(static_cast<long long>(d.limit))});
    head.response_headers.push_back({"RateLimit-Remaining", std::to_string(static_cast<long long>(d.remaining))});
    head.response_headers.push_back({"RateLimit-Reset", secs(d.reset)});
    if (!d.allowed) {
      auto r = error_response(429, "Too many requests for key '" + head.who.name + "': the limit is " +
                                       bounded(std::to_string(head.who.rate_per_second), 12) +
                                       " requests per second. Wait for Retry-After seconds, then resend.");
      r.headers.push_back({"Retry-After", secs(d.retry_after)});
      return reject(std::move(r));
    }
  }

  // Producer
  if (p.producer) {
    if (!valid_producer(*p.producer))
      return reject(error_response(400, "The producer parameter must be 1-128 characters of A-Z a-z 0-9 - _ . : @."));
    head.producer = *p.producer;
  } else {
    head.producer = head.who.name.empty() || !valid_producer(head.who.name) ? "anonymous" : head.who.name;
  }

  if (auto ik = find_header(req.headers, "idempotency-key"); ik && (ik->empty() || ik->size() > 256))
    return reject(error_response(400,
                                 "The Idempotency-Key header must be 1-256 characters; send a shorter key (a UUID "
                                 "works well)."));

  // Body framing and size
  const auto cl = find_header(req.headers, "content-length");
  const auto te = find_header(req.headers, "transfer-encoding");
  head.body_limit = t->cfg.max_body;
  if (cl) {
    std::uint64_t n = 0;
    auto s = trim(*cl);
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return reject(error_response(400, "Content-Length must be a decimal number of bytes."));
    for (char c : s) n = n * 10 + static_cast<std::uint64_t>(c - '0');
    if (n > t->cfg.max_body)
      return reject(error_response(413, "The body is " + std::to_string(n) + " bytes; type '" + t->cfg.name +
                                            "' accepts at most " + std::to_string(t->cfg.max_body) +
                                            " bytes. Split it into smaller requests or compress it with gzip."));
  } else if (!te || to_lower(*te).find("chunked") == std::string::npos) {
    return reject(error_response(411, "Send a Content-Length header (or Transfer-Encoding: chunked) with the body."));
  }

  // Content-Encoding
  if (auto ce = find_header(req.headers, "content-encoding")) {
    const auto enc = to_lower(trim(*ce));
    if (enc == "gzip" || enc == "x-gzip")
      head.gzip = true;
    else if (enc != "identity" && !enc.empty())
      return reject(error_response(415, "Content-Encoding '" + bounded(enc, 40) +
                                            "' is not supported; send the body uncompressed or with gzip."));
  }

  // Content-Type
  head.content_type = find_header(req.headers, "content-type").value_or("");
  head.media_type = media_type_of(head.content_type);
  if (head.media_type.empty()) head.media_type = "application/octet-stream";
  if (!t->media_types.empty()) {
    bool ok = list_has(t->media_types, head.media_type);
    // Browsers' sendBeacon sends strings as text/plain: a JSON type takes it.
    if (!ok && head.media_type == "text/plain") ok = list_has(t->media_types, "application/json");
    if (!ok) {
      std::string allowed;
      for (const auto& m : t->media_types) allowed += (allowed.empty() ? "" : ", ") + m;
      return reject(error_response(415, "Type '" + t->cfg.name + "' accepts " + allowed + "; the request says '" +
                                            bounded(head.media_type, 100) + "'. Set the Content-Type header." +
                                            t->see()));
    }
  }
  if (t->needs_json && !is_json_media(head.media_type) && !is_ndjson_media(head.media_type) &&
      head.media_type != "text/plain")
    return reject(error_response(
        415, "Type '" + t->cfg.name + "' takes JSON: send application/json or application/x-ndjson." + t->see()));

  if (t->key == type_entry::key_source::header && !find_header(req.headers, t->key_arg))
    return reject(error_response(400, "Type '" + t->cfg.name + "' takes its Kafka key from the " + t->key_arg +
                                          " header; send that header." + t->see()));

  // Sync or async (RFC 7240 Prefer: respond-async).
  bool want_async = t->cfg.mode == "async";
  if (auto pref = find_header(req.headers, "prefer"))
    if (to_lower(*pref).find("respond-async") != std::string::npos) want_async = true;
  head.async = want_async && opts_.async_supported;
  return head;
}

// ---------------------------------------------------------------------------
// Stage 2: body

handler_outcome request_handler::handle_body(const accepted_head& head, const http_request& req, system_time now) {
  const type_entry& t = *head.type;
  auto reject = [&](http_response r) {
    r.headers.insert(r.headers.end(), head.response_headers.begin(), head.response_headers.end());
    return r;
  };
  if (req.body.size() > head.body_limit)
    return reject(error_response(413, "The body is larger than " + std::to_string(head.body_limit) +
                                          " bytes, the limit for type '" + t.cfg.name + "'."));

  std::string inflated;
  std::string_view body = req.body;
  if (head.gzip) {
    auto r = gunzip(req.body, cfg_.max_decompressed_body);
    if (r.status == inflate_status::too_large)
      return reject(error_response(413, "The gzip body decompresses to more than " +
                                            std::to_string(cfg_.max_decompressed_body) +
                                            " bytes (http.max_decompressed_body). Send smaller batches."));
    if (r.status != inflate_status::ok)
      return reject(error_response(400, "The body says Content-Encoding: gzip but " + r.message + "."));
    inflated = std::move(r.data);
    body = inflated;
  }
  if (body.empty())
    return reject(error_response(400, "The body is empty. Send one event, a JSON array of events or NDJSON."));

  // Split into items.
  const bool ndjson = is_ndjson_media(head.media_type);
  const bool json_body = is_json_media(head.media_type) || (head.media_type == "text/plain" && t.needs_json);
  std::vector<std::string_view> items;
  std::vector<json::value> values;  // parsed items (JSON bodies only)
  std::vector<char> parsed;         // values[i] holds item i
  std::vector<item_error> errors;
  bool batch = false;
  json::parse_options popts;
  popts.max_depth = 64;

  if (ndjson) {
    batch = true;
    std::string_view rest = body;
    std::size_t line_no = 0;
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (trim_ws(line).empty()) continue;
      if (items.size() >= cfg_.max_batch_items) {
        items.push_back(line);  // counted, reported below
        break;
      }
      items.push_back(line);
      boost::system::error_code ec;
      auto v = json::parse(line, ec, {}, popts);
      if (ec && errors.size() < max_reported_errors)
        errors.push_back(
            {items.size() - 1, "", "line " + std::to_string(line_no) + " is not valid JSON: " + ec.message()});
      values.push_back(ec ? json::value() : std::move(v));
      parsed.push_back(ec ? 0 : 1);
    }
  } else if (json_body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec, {}, popts);
    if (ec)
      return reject(error_response(400, "The body is not valid JSON (" + ec.message() +
                                            "). Send one JSON event or a JSON array of events." + t.see()));
    if (v.is_array() && t.cfg.batch) {
      batch = true;
      if (v.as_array().size() > cfg_.max_batch_items)
        return reject(error_response(413, "The batch has " + std::to_string(v.as_array().size()) +
                                              " items; the limit is " + std::to_string(cfg_.max_batch_items) +
                                              " (http.max_batch_items). Split it into smaller requests."));
      items = split_json_array(body);
      auto& arr = v.as_array();
      if (items.size() != arr.size())
        return reject(error_response(400, "The JSON array could not be split into items."));
      for (auto& e : arr) values.push_back(std::move(e));
      parsed.assign(values.size(), 1);
    } else {
      items.push_back(body);
      values.push_back(std::move(v));
      parsed.push_back(1);
    }
  } else {
    items.push_back(body);
  }

  if (batch && items.size() > cfg_.max_batch_items)
    return reject(error_response(413, "The batch has more than " + std::to_string(cfg_.max_batch_items) +
                                          " items (http.max_batch_items). Split it into smaller requests."));
  if (batch && items.empty()) return reject(error_response(400, "The batch is empty. Send at least one event."));

  // Validate every item (all-or-nothing) and work out keys.
  std::vector<std::string> keys(items.size());
  std::vector<std::string> idem(items.size());
  const auto idem_header = find_header(req.headers, "idempotency-key");
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (errors.size() >= max_reported_errors) break;
    const bool have_json = i < parsed.size() && parsed[i] != 0;
    if (ndjson && !have_json) continue;  // parse error already recorded
    if (t.schema && have_json) {
      valijson::Validator validator;
      valijson::ValidationResults results;
      valijson::adapters::BoostJsonAdapter adapter(values[i]);
      bool ok = false;
      try {
        ok = validator.validate(*t.schema, adapter, &results);
      } catch (const std::exception& ex) {
        errors.push_back({i, "", std::string("the schema could not be checked: ") + ex.what()});
        continue;
      }
      if (!ok) {
        valijson::ValidationResults::Error err;
        while (results.popError(err) && errors.size() < max_reported_errors)
          errors.push_back({i, json_pointer_from_context(err.context), err.description});
      }
    }
    switch (t.key) {
      case type_entry::key_source::producer:
        keys[i] = head.producer;
        break;
      case type_entry::key_source::header:
        keys[i] = std::string(find_header(req.headers, t.key_arg).value_or(""));
        break;
      case type_entry::key_source::json: {
        boost::system::error_code ec;
        const json::value* kv = have_json ? values[i].find_pointer(t.key_arg, ec) : nullptr;
        std::optional<std::string> k = kv != nullptr ? scalar_text(*kv) : std::nullopt;
        if (!k)
          errors.push_back(
              {i, t.key_arg,
               "the Kafka key is taken from " + t.key_arg + ", which is missing or not a string or number"});
        else
          keys[i] = std::move(*k);
        break;
      }
    }
    if (!t.cfg.idempotency_pointer.empty() && have_json) {
      boost::system::error_code ec;
      const json::value* iv = values[i].find_pointer(t.cfg.idempotency_pointer, ec);
      if (iv != nullptr)
        if (auto s = scalar_text(*iv)) idem[i] = bounded(*s, 256);
    }
    if (idem[i].empty() && idem_header)
      idem[i] = bounded(*idem_header, 256) + (batch ? "/" + std::to_string(i) : std::string());
  }

  if (!errors.empty()) {
    json::array details;
    for (const auto& e : errors)
      details.push_back(json::object{{"index", e.index}, {"pointer", e.pointer}, {"message", e.message}});
    std::string msg;
    if (batch) {
      std::size_t bad = 0, last = SIZE_MAX;
      for (const auto& e : errors)
        if (e.index != last) ++bad, last = e.index;
      msg = std::to_string(bad) + " of " + std::to_string(items.size()) +
            " items are invalid, so none was accepted. Fix the items listed in details (index, JSON pointer, "
            "problem) and resend the whole batch.";
    } else {
      msg = "The event is invalid: " + errors.front().message +
            (errors.front().pointer.empty() ? std::string() : " (at " + errors.front().pointer + ")") +
            (errors.size() > 1 ? " and " + std::to_string(errors.size() - 1) + " more problem(s) listed in details"
                               : std::string()) +
            ". Fix it and resend.";
    }
    msg += t.see();
    return reject(error_response(400, msg, json::serialize(details)));
  }

  // Build the records: payload bytes untouched, CloudEvents binary headers.
  submission sub;
  sub.type = t.cfg.name;
  sub.async = head.async;
  sub.batch = batch;
  sub.response_headers = head.response_headers;
  if (head.async) sub.response_headers.push_back({"Preference-Applied", "respond-async"});
  const std::string time = rfc3339_ms(now);
  const std::string remote = remote_address(req);
  const auto ua = find_header(req.headers, "user-agent");
  const std::string item_type = batch ? std::string("application/json") : head.content_type;
  sub.records.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    sinks::record r;
    r.topic = t.cfg.kafka_topic;
    r.key = std::move(keys[i]);
    r.value.assign(items[i]);
    std::string id = uuid_v7(now);
    r.headers.reserve(11);
    r.headers.push_back({"ce_specversion", "1.0"});
    r.headers.push_back({"ce_id", id});
    r.headers.push_back({"ce_source", "http/" + head.producer});
    r.headers.push_back({"ce_type", t.cfg.name});
    r.headers.push_back({"ce_time", time});
    if (!item_type.empty()) r.headers.push_back({"content-type", bounded(item_type, 200)});
    r.headers.push_back({"ce_node", opts_.node_id});
    if (!remote.empty()) r.headers.push_back({"ce_remoteaddr", remote});
    if (ua) r.headers.push_back({"ce_useragent", bounded(*ua)});
    if (!idem[i].empty()) r.headers.push_back({"ce_idempotencykey", idem[i]});
    sub.ids.push_back(std::move(id));
    sub.records.push_back(std::move(r));
  }
  return sub;
}

handler_outcome request_handler::handle(const http_request& req, std::chrono::steady_clock::time_point now_steady,
                                        system_time now) {
  auto h = check_head(req, now_steady, now);
  if (auto* r = std::get_if<http_response>(&h)) return std::move(*r);
  return handle_body(std::get<accepted_head>(h), req, now);
}

// ---------------------------------------------------------------------------
// Stage 3: delivery

static std::string_view fate_name(record_fate f) {
  switch (f) {
    case record_fate::stored:
      return "stored";
    case record_fate::failed_retryable:
      return "retry";
    case record_fate::failed_permanent:
      return "failed";
    case record_fate::timed_out:
      return "retry";
    case record_fate::not_submitted:
      return "retry";
  }
  return "retry";
}

http_response request_handler::delivery_response(const submission& sub, const std::vector<record_outcome>& outcomes,
                                                 const sinks::sink_health& health,
                                                 std::chrono::steady_clock::time_point now) const {
  std::size_t stored = 0, permanent = 0, retry = 0, too_large = 0, timed_out = 0;
  for (std::size_t i = 0; i < sub.records.size(); ++i) {
    const record_fate f = i < outcomes.size() ? outcomes[i].fate : record_fate::not_submitted;
    if (f == record_fate::stored)
      ++stored;
    else if (f == record_fate::failed_permanent) {
      ++permanent;
      if (outcomes[i].why == sinks::delivery_result::cause::too_large) ++too_large;
    } else {
      ++retry;
      if (f == record_fate::timed_out) ++timed_out;
    }
  }
  const char* ok_word = sub.async ? "accepted" : "stored";
  json::array receipts;
  for (std::size_t i = 0; i < sub.records.size(); ++i) {
    const record_fate f = i < outcomes.size() ? outcomes[i].fate : record_fate::not_submitted;
    json::object o{{"index", i}, {"id", sub.ids[i]}};
    o["status"] = f == record_fate::stored ? std::string_view(ok_word) : fate_name(f);
    if (f != record_fate::stored) {
      std::string reason = i < outcomes.size() ? outcomes[i].reason : std::string();
      if (f == record_fate::timed_out) reason = "not confirmed within the request deadline";
      if (f == record_fate::not_submitted && reason.empty()) reason = "the queue towards Kafka is full";
      o["reason"] = reason;
    }
    receipts.push_back(std::move(o));
  }

  http_response r;
  r.headers = sub.response_headers;
  if (stored == sub.records.size()) {
    r.status = sub.async ? 202 : 200;
    r.headers.push_back({"Content-Type", "application/json"});
    json::object body{{"status", ok_word}, {"type", sub.type}, {"count", sub.records.size()}};
    if (sub.records.size() == 1 && !sub.batch) body["id"] = sub.ids[0];
    body["receipts"] = std::move(receipts);
    r.body = json::serialize(body);
    return r;
  }

  const std::string where = sub.async ? "the local write-ahead log" : "Kafka";
  std::string msg;
  unsigned status;
  if (retry > 0) {
    status = 503;
    msg = std::to_string(retry) + " of " + std::to_string(sub.records.size()) + " record(s) could not be stored in " +
          where + (timed_out > 0 ? " within the request deadline" : "") +
          (sub.batch ? ". Retry only the items whose status is 'retry' after Retry-After seconds; the items marked "
                       "'stored' are already saved."
                     : ". Retry after Retry-After seconds.");
    if (permanent > 0) msg += " Items marked 'failed' will not succeed when resent.";
  } else if (too_large == permanent) {
    status = 413;
    msg = std::to_string(permanent) + " record(s) are larger than " + where + " accepts; send smaller events.";
  } else {
    status = 500;
    msg = std::to_string(permanent) + " record(s) were refused by " + where +
          " and will not succeed when resent (the node's Kafka topic or permissions are misconfigured); tell the "
          "operator.";
  }
  r = error_response(status, msg, json::serialize(receipts));
  r.headers.insert(r.headers.end(), sub.response_headers.begin(), sub.response_headers.end());
  if (status == 503) r.headers.push_back({"Retry-After", std::to_string(retry_after(health, now).count())});
  return r;
}

}  // namespace wharf::http
