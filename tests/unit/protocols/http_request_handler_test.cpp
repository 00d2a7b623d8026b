#include "protocols/http/gzip_decoder.h"
#include "protocols/http/request_handler.h"
#include "tests/unit/protocols/http_test_support.h"

#include <zlib.h>

#include <gtest/gtest.h>

namespace wharf::http {
namespace {

using namespace wharf::http::test;
namespace json = boost::json;

const std::string k_good_key = "s3cr3t-key-for-tests";

const char* k_order_schema = R"({
  "type": "object",
  "required": ["userId", "timestamp"],
  "properties": {
    "userId": {"type": "string"},
    "timestamp": {"type": "string", "format": "date-time"},
    "amount": {"type": "number"}
  }
})";

config::http_config make_config() {
  config::http_config cfg;
  config::http_type events;
  events.name = "events";
  events.kafka_topic = "http.events";
  events.allow_anonymous = true;
  events.max_body = 4096;
  events.cors_origins = {"https://app.example"};
  cfg.types.push_back(events);

  config::http_type orders;
  orders.name = "orders";
  orders.kafka_topic = "orders";
  orders.key = "json:/userId";
  orders.content_types = {"application/json", "application/x-ndjson"};
  orders.schema_file = temp_file("orders.schema.json", k_order_schema);
  orders.docs_url = "/docs/types/orders";
  orders.idempotency_pointer = "/orderId";
  cfg.types.push_back(orders);

  config::http_type raw;
  raw.name = "raw";
  raw.kafka_topic = "raw";
  raw.key = "header:X-Device";
  raw.batch = false;
  raw.mode = "async";
  raw.allow_anonymous = true;
  cfg.types.push_back(raw);

  config::http_api_key key;
  key.name = "shop";
  key.sha256 = sha256_hex(k_good_key);
  key.types = {"orders", "events"};
  key.rate_per_second = 1;
  key.burst = 2;
  cfg.api_keys.push_back(key);

  config::http_api_key narrow;
  narrow.name = "narrow";
  narrow.sha256 = sha256_hex("narrow-key");
  narrow.types = {"events"};
  narrow.origins = {"https://partner.example"};
  cfg.api_keys.push_back(narrow);

  cfg.trusted_proxies = {"10.0.0.7"};
  cfg.max_batch_items = 5;
  cfg.max_decompressed_body = 64 * 1024;
  return cfg;
}

class HttpRequestHandler : public ::testing::Test {
 protected:
  HttpRequestHandler() : handler_(make_config(), handler_options{"node-a", true, "openapi: 3.1.0\n"}) {}

  handler_outcome run(const http_request& req) {
    return handler_.handle(req, steady_,
                           std::chrono::system_clock::time_point{std::chrono::milliseconds{1714564800123}});
  }
  http_response response(const http_request& req) {
    auto o = run(req);
    EXPECT_TRUE(std::holds_alternative<http_response>(o)) << "expected an immediate response";
    if (auto* r = std::get_if<http_response>(&o)) return *r;
    return {};
  }
  submission records(const http_request& req) {
    auto o = run(req);
    if (auto* r = std::get_if<http_response>(&o)) ADD_FAILURE() << "got " << r->status << " " << r->body;
    if (auto* s = std::get_if<submission>(&o)) return *s;
    return {};
  }
  static std::vector<field> key_header(const std::string& k = k_good_key) { return {{"Authorization", "Bearer " + k}}; }

  request_handler handler_;
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1)};
};

void expect_error_shape(const http_response& r, unsigned code) {
  EXPECT_EQ(r.status, code) << r.body;
  auto v = body_json(r);
  ASSERT_TRUE(v.is_object());
  const auto& e = v.at("error");
  EXPECT_EQ(e.at("code").as_int64(), code);
  EXPECT_FALSE(e.at("message").as_string().empty());
  EXPECT_TRUE(e.at("details").is_array());
  EXPECT_EQ(header_value(r.headers, "Content-Type"), "application/json");
}

TEST_F(HttpRequestHandler, SingleEventBecomesOneRecordWithBytesUntouched) {
  const std::string body = "{ \"a\" : 1 }";
  auto s = records(post("/v1/messages/events?producer=web-1", body, "application/json",
                        {{"User-Agent", "curl/8"}, {"Idempotency-Key", "abc"}}));
  ASSERT_EQ(s.records.size(), 1u);
  const auto& r = s.records[0];
  EXPECT_EQ(r.topic, "http.events");
  EXPECT_EQ(r.key, "web-1");
  EXPECT_EQ(r.value, body);
  EXPECT_FALSE(s.batch);
  EXPECT_FALSE(s.async);
  EXPECT_EQ(record_header(r, "ce_specversion"), "1.0");
  EXPECT_EQ(record_header(r, "ce_source"), "http/web-1");
  EXPECT_EQ(record_header(r, "ce_type"), "events");
  EXPECT_EQ(record_header(r, "ce_time"), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(record_header(r, "ce_node"), "node-a");
  EXPECT_EQ(record_header(r, "ce_useragent"), "curl/8");
  EXPECT_EQ(record_header(r, "ce_idempotencykey"), "abc");
  EXPECT_EQ(record_header(r, "content-type"), "application/json");
  EXPECT_EQ(record_header(r, "ce_id"), s.ids[0]);
  EXPECT_EQ(s.ids[0].size(), 36u);
  EXPECT_EQ(s.ids[0][14], '7') << "UUIDv7";
}

TEST_F(HttpRequestHandler, OpaqueBodyOfAnyContentTypeIsKeptAsBytes) {
  std::string bin("\x00\x01\xff\xfe binary", 11);
  auto s = records(post("/v1/messages/events", bin, "application/octet-stream"));
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].value, bin);
  EXPECT_EQ(s.records[0].key, "anonymous");
  EXPECT_EQ(record_header(s.records[0], "content-type"), "application/octet-stream");
}

TEST_F(HttpRequestHandler, ReceiptIdsAreUniquePerRecord) {
  auto s = records(post("/v1/messages/events", "[1,2,3,4,5]"));
  ASSERT_EQ(s.ids.size(), 5u);
  std::set<std::string> unique(s.ids.begin(), s.ids.end());
  EXPECT_EQ(unique.size(), 5u);
}

TEST_F(HttpRequestHandler, JsonArrayIsABatchOfRecordsInOrder) {
  auto s = records(post("/v1/messages/events", R"([ {"n":1}, "two" ,[3, {"x":"]"}],null ])"));
  ASSERT_EQ(s.records.size(), 4u);
  EXPECT_TRUE(s.batch);
  EXPECT_EQ(s.records[0].value, R"({"n":1})");
  EXPECT_EQ(s.records[1].value, R"("two")");
  EXPECT_EQ(s.records[2].value, R"([3, {"x":"]"}])");
  EXPECT_EQ(s.records[3].value, "null");
}

TEST_F(HttpRequestHandler, JsonArrayIsOneEventWhenTheTypeSaysBatchFalse) {
  auto s = records(post("/v1/messages/raw", "[1,2]", "application/json", {{"X-Device", "d1"}}));
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].value, "[1,2]");
  EXPECT_EQ(s.records[0].key, "d1");
}

TEST_F(HttpRequestHandler, NdjsonLinesBecomeRecordsAndBlankLinesAreSkipped) {
  auto s = records(post("/v1/messages/events", "{\"a\":1}\r\n\n{\"a\":2}\n", "application/x-ndjson"));
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].value, "{\"a\":1}");
  EXPECT_EQ(s.records[1].value, "{\"a\":2}");
  EXPECT_EQ(record_header(s.records[1], "content-type"), "application/json");
}

TEST_F(HttpRequestHandler, NdjsonLineThatIsNotJsonIsReportedWithItsIndex) {
  auto r = response(post("/v1/messages/events", "{\"a\":1}\n{oops\n", "application/x-ndjson"));
  expect_error_shape(r, 400);
  auto d = body_json(r).at("error").at("details").as_array();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].at("index").as_int64(), 1);
}

TEST_F(HttpRequestHandler, BatchIdempotencyKeyGetsTheItemIndex) {
  auto s = records(post("/v1/messages/events", "[1,2]", "application/json", {{"Idempotency-Key", "req-9"}}));
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(record_header(s.records[0], "ce_idempotencykey"), "req-9/0");
  EXPECT_EQ(record_header(s.records[1], "ce_idempotencykey"), "req-9/1");
}

TEST_F(HttpRequestHandler, IdempotencyKeyLongerThan256CharactersIs400) {
  expect_error_shape(
      response(post("/v1/messages/events", "{}", "application/json", {{"Idempotency-Key", std::string(257, 'k')}})),
      400);
  EXPECT_EQ(records(post("/v1/messages/events", "{}", "application/json", {{"Idempotency-Key", std::string(256, 'k')}}))
                .records.size(),
            1u);
}

TEST_F(HttpRequestHandler, GzipBodyIsInflatedBeforeSplitting) {
  std::string plain = "[{\"a\":1},{\"a\":2}]";
  uLongf n = compressBound(plain.size()) + 32;
  std::string gz(n, '\0');
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = reinterpret_cast<Bytef*>(plain.data());
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  auto s = records(post("/v1/messages/events", gz, "application/json", {{"Content-Encoding", "gzip"}}));
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[1].value, "{\"a\":2}");
}

std::string gzip_of(const std::string& plain) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(plain.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  zs.avail_in = static_cast<uInt>(plain.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST_F(HttpRequestHandler, GzipBombIsRefusedWith413) {
  const std::string bomb = gzip_of(std::string(3 * 1024 * 1024, 'a'));  // ~3 KiB compressed
  ASSERT_LT(bomb.size(), 4096u);
  auto r = response(post("/v1/messages/events", bomb, "text/plain", {{"Content-Encoding", "gzip"}}));
  expect_error_shape(r, 413);
  EXPECT_NE(r.body.find("max_decompressed_body"), std::string::npos);
}

TEST_F(HttpRequestHandler, CorruptGzipIs400) {
  auto r = response(post("/v1/messages/events", "not gzip at all", "text/plain", {{"Content-Encoding", "gzip"}}));
  expect_error_shape(r, 400);
}

TEST_F(HttpRequestHandler, UnknownContentEncodingIs415) {
  expect_error_shape(response(post("/v1/messages/events", "x", "text/plain", {{"Content-Encoding", "br"}})), 415);
}

TEST_F(HttpRequestHandler, SchemaErrorsListIndexPointerAndMessageForEveryInvalidItem) {
  const std::string batch = R"([
    {"userId":"u1","timestamp":"2024-05-01T12:00:00Z"},
    {"timestamp":"yesterday"},
    {"userId":"u3","timestamp":"2024-05-01T12:00:00Z","amount":"ten"}
  ])";
  auto r = response(post("/v1/messages/orders", batch, "application/json", key_header()));
  expect_error_shape(r, 400);
  auto err = body_json(r).at("error");
  EXPECT_NE(std::string(err.at("message").as_string()).find("2 of 3 items are invalid"), std::string::npos)
      << err.at("message");
  EXPECT_NE(std::string(err.at("message").as_string()).find("See /docs/types/orders"), std::string::npos);
  bool saw_missing_user = false, saw_bad_time = false, saw_amount = false;
  for (const auto& d : err.at("details").as_array()) {
    const auto idx = d.at("index").as_int64();
    const std::string ptr(d.at("pointer").as_string());
    const std::string msg(d.at("message").as_string());
    EXPECT_NE(idx, 0) << "item 0 is valid";
    if (idx == 1 && msg.find("userId") != std::string::npos) saw_missing_user = true;
    if (idx == 1 && ptr == "/timestamp") saw_bad_time = true;
    if (idx == 2 && ptr == "/amount") saw_amount = true;
  }
  EXPECT_TRUE(saw_missing_user) << r.body;
  EXPECT_TRUE(saw_bad_time) << r.body;
  EXPECT_TRUE(saw_amount) << r.body;
}

TEST_F(HttpRequestHandler, ValidBatchTakesKeyAndIdempotencyKeyFromEachItem) {
  const std::string batch =
      R"([{"userId":"u1","timestamp":"2024-05-01T12:00:00Z","orderId":"o-1"},{"userId":"u2","timestamp":"2024-05-01T12:00:01Z"}])";
  auto s = records(post("/v1/messages/orders", batch, "application/json", key_header()));
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].key, "u1");
  EXPECT_EQ(s.records[1].key, "u2");
  EXPECT_EQ(record_header(s.records[0], "ce_idempotencykey"), "o-1");
  EXPECT_EQ(record_header(s.records[1], "ce_idempotencykey"), "");
  EXPECT_EQ(record_header(s.records[0], "ce_source"), "http/shop") << "producer defaults to the key name";
}

TEST_F(HttpRequestHandler, SingleInvalidEventMessageSaysWhatToFix) {
  auto r = response(
      post("/v1/messages/orders", R"({"timestamp":"2024-05-01T12:00:00Z"})", "application/json", key_header()));
  expect_error_shape(r, 400);
  const std::string msg(body_json(r).at("error").at("message").as_string());
  EXPECT_NE(msg.find("userId"), std::string::npos) << msg;
  EXPECT_NE(msg.find("See /docs/types/orders"), std::string::npos) << msg;
}

TEST_F(HttpRequestHandler, MalformedJsonIs400) {
  expect_error_shape(response(post("/v1/messages/events", "{\"a\":", "application/json")), 400);
}

TEST_F(HttpRequestHandler, EmptyBodyAndEmptyBatchAre400) {
  expect_error_shape(response(post("/v1/messages/events", "", "application/json")), 400);
  expect_error_shape(response(post("/v1/messages/events", "[]", "application/json")), 400);
}

TEST_F(HttpRequestHandler, TooManyBatchItemsIs413) {
  expect_error_shape(response(post("/v1/messages/events", "[1,2,3,4,5,6]")), 413);
  expect_error_shape(response(post("/v1/messages/events", "1\n2\n3\n4\n5\n6\n", "application/x-ndjson")), 413);
}

TEST_F(HttpRequestHandler, ContentLengthOverTheTypeLimitIs413BeforeTheBody) {
  http_request req = post("/v1/messages/events", "");
  req.headers[0].value = "5000";
  auto h = handler_.check_head(req, steady_, std::chrono::system_clock::now());
  ASSERT_TRUE(std::holds_alternative<http_response>(h));
  expect_error_shape(std::get<http_response>(h), 413);
}

TEST_F(HttpRequestHandler, MissingLengthIs411AndChunkedIsAccepted) {
  http_request req = post("/v1/messages/events", "{}");
  req.headers.erase(req.headers.begin());
  expect_error_shape(response(req), 411);
  req.headers.push_back({"Transfer-Encoding", "chunked"});
  EXPECT_EQ(records(req).records.size(), 1u);
}

TEST_F(HttpRequestHandler, UnknownTypeIs404AndUnknownPathIs404) {
  expect_error_shape(response(post("/v1/messages/nope", "{}")), 404);
  expect_error_shape(response(post("/v2/other", "{}")), 404);
}

TEST_F(HttpRequestHandler, WrongMethodIs405WithAllow) {
  http_request req = post("/v1/messages/events", "");
  req.method = "GET";
  auto r = response(req);
  expect_error_shape(r, 405);
  EXPECT_EQ(header_value(r.headers, "Allow"), "POST, OPTIONS");
}

TEST_F(HttpRequestHandler, ContentTypeNotListedByTheTypeIs415) {
  auto r = response(post("/v1/messages/orders", "<xml/>", "application/xml", key_header()));
  expect_error_shape(r, 415);
  EXPECT_NE(r.body.find("application/json"), std::string::npos);
}

TEST_F(HttpRequestHandler, TextPlainIsAcceptedForJsonTypesSoSendBeaconWorks) {
  auto s = records(post("/v1/messages/orders", R"({"userId":"u","timestamp":"2024-05-01T12:00:00Z"})",
                        "text/plain;charset=UTF-8", key_header()));
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].key, "u");
}

TEST_F(HttpRequestHandler, KeyFromMissingHeaderIs400) {
  expect_error_shape(response(post("/v1/messages/raw", "x", "text/plain")), 400);
}

TEST_F(HttpRequestHandler, KeyFromMissingJsonPointerIs400WithPointer) {
  // Schema passes (no required userId here? it is required) - use a type with json key and no schema.
  auto cfg = make_config();
  cfg.types[0].key = "json:/device/id";
  request_handler h(cfg, handler_options{"n", false, ""});
  auto o = h.handle(post("/v1/messages/events", R"([{"device":{"id":7}},{"device":{}}])"), steady_,
                    std::chrono::system_clock::now());
  ASSERT_TRUE(std::holds_alternative<http_response>(o));
  auto r = std::get<http_response>(o);
  expect_error_shape(r, 400);
  auto d = body_json(r).at("error").at("details").as_array();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].at("index").as_int64(), 1);
  EXPECT_EQ(d[0].at("pointer").as_string(), "/device/id");
}

TEST_F(HttpRequestHandler, InvalidProducerIs400) {
  expect_error_shape(response(post("/v1/messages/events?producer=a%20b", "{}")), 400);
}

// --- auth

TEST_F(HttpRequestHandler, NoCredentialsOnNonAnonymousTypeIs401WithChallenge) {
  auto r = response(post("/v1/messages/orders", "{}"));
  expect_error_shape(r, 401);
  EXPECT_EQ(header_value(r.headers, "WWW-Authenticate"), "Bearer");
}

TEST_F(HttpRequestHandler, WrongApiKeyIs401) {
  expect_error_shape(response(post("/v1/messages/orders", "{}", "application/json", key_header("wrong"))), 401);
  expect_error_shape(
      response(post("/v1/messages/orders", "{}", "application/json", {{"Authorization", "Basic Zm9vOmJhcg=="}})), 401);
}

TEST_F(HttpRequestHandler, ApiKeyInXApiKeyHeaderIsAccepted) {
  auto s = records(post("/v1/messages/orders", R"({"userId":"u","timestamp":"2024-05-01T12:00:00Z"})",
                        "application/json", {{"X-API-Key", k_good_key}}));
  EXPECT_EQ(s.records.size(), 1u);
}

TEST_F(HttpRequestHandler, ValidKeyWithoutTheTypeIs403) {
  expect_error_shape(response(post("/v1/messages/orders", "{}", "application/json", key_header("narrow-key"))), 403);
}

TEST_F(HttpRequestHandler, KeyRestrictedToOriginsRefusesOtherOrigins) {
  expect_error_shape(response(post("/v1/messages/events", "{}", "application/json",
                                   {{"X-API-Key", "narrow-key"}, {"Origin", "https://evil.example"}})),
                     403);
  auto s = records(post("/v1/messages/events", "{}", "application/json",
                        {{"X-API-Key", "narrow-key"}, {"Origin", "https://partner.example"}}));
  EXPECT_EQ(header_value(s.response_headers, "Access-Control-Allow-Origin"), "https://partner.example");
}

// --- rate limit

TEST_F(HttpRequestHandler, RateLimitGives429WithRetryAfterAndRateLimitHeaders) {
  auto ok_req = post("/v1/messages/events", "{}", "application/json", key_header());
  auto first = records(ok_req);
  EXPECT_EQ(header_value(first.response_headers, "RateLimit-Limit"), "2");
  EXPECT_EQ(header_value(first.response_headers, "RateLimit-Remaining"), "1");
  records(ok_req);
  auto r = response(ok_req);
  expect_error_shape(r, 429);
  EXPECT_EQ(header_value(r.headers, "Retry-After"), "1");
  EXPECT_EQ(header_value(r.headers, "RateLimit-Remaining"), "0");
  steady_ += std::chrono::seconds(1);
  EXPECT_EQ(records(ok_req).records.size(), 1u) << "a token is back after 1/rate seconds";
}

TEST_F(HttpRequestHandler, AnonymousCallersAreNotRateLimitedPerKey) {
  for (int i = 0; i < 10; ++i) records(post("/v1/messages/events", "{}"));
}

// --- CORS

TEST_F(HttpRequestHandler, PreflightFromAllowedOriginGetsCorsHeaders) {
  http_request req;
  req.method = "OPTIONS";
  req.target = "/v1/messages/events";
  req.headers = {{"Origin", "https://app.example"},
                 {"Access-Control-Request-Method", "POST"},
                 {"Access-Control-Request-Headers", "content-type"}};
  auto r = response(req);
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(header_value(r.headers, "Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_NE(header_value(r.headers, "Access-Control-Allow-Headers").find("Content-Type"), std::string::npos);
  EXPECT_EQ(header_value(r.headers, "Access-Control-Max-Age"), "600");
  EXPECT_EQ(header_value(r.headers, "Vary"), "Origin");
}

TEST_F(HttpRequestHandler, PreflightFromOtherOriginIs403WithoutCorsHeaders) {
  http_request req;
  req.method = "OPTIONS";
  req.target = "/v1/messages/events";
  req.headers = {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}};
  auto r = response(req);
  expect_error_shape(r, 403);
  EXPECT_EQ(header_value(r.headers, "Access-Control-Allow-Origin"), "");
}

TEST_F(HttpRequestHandler, PostFromDisallowedOriginIs403AndAllowedOriginGetsCorsHeaders) {
  expect_error_shape(response(post("/v1/messages/events", "{}", "text/plain", {{"Origin", "https://evil.example"}})),
                     403);
  auto s = records(post("/v1/messages/events", "{}", "text/plain", {{"Origin", "https://app.example"}}));
  EXPECT_EQ(header_value(s.response_headers, "Access-Control-Allow-Origin"), "https://app.example");
}

// --- addresses, async, openapi

TEST_F(HttpRequestHandler, ForwardedForIsUsedOnlyFromTrustedProxies) {
  auto req = post("/v1/messages/events", "{}", "application/json", {{"X-Forwarded-For", "1.2.3.4, 10.0.0.7"}});
  EXPECT_EQ(record_header(records(req).records[0], "ce_remoteaddr"), "1.2.3.4");
  req.peer_address = "192.0.2.1";  // not a trusted proxy
  EXPECT_EQ(record_header(records(req).records[0], "ce_remoteaddr"), "192.0.2.1");
}

TEST_F(HttpRequestHandler, TrustedProxiesMayBeCidrRanges) {
  auto cfg = make_config();
  cfg.trusted_proxies = {"10.0.0.0/8", "fd00::/8"};
  request_handler h(cfg, handler_options{"node-a", true, ""});
  auto remote = [&](std::string peer, std::string xff) {
    auto req = post("/v1/messages/events", "{}", "application/json", {{"X-Forwarded-For", std::move(xff)}});
    req.peer_address = std::move(peer);
    auto o = h.handle(req, steady_, std::chrono::system_clock::now());
    if (!std::holds_alternative<submission>(o)) return std::string("(no submission)");
    return record_header(std::get<submission>(o).records[0], "ce_remoteaddr");
  };
  // Two proxy hops inside the ranges: the client is the first address outside.
  EXPECT_EQ(remote("10.1.2.3", "198.51.100.4, fd00::9, 10.200.0.1"), "198.51.100.4");
  EXPECT_EQ(remote("::ffff:10.1.2.3", "198.51.100.4"), "198.51.100.4");
  EXPECT_EQ(remote("192.0.2.1", "198.51.100.4"), "192.0.2.1") << "a peer outside the ranges is not believed";
  // A spoofed left-most entry is not reached past an untrusted hop.
  EXPECT_EQ(remote("10.1.2.3", "1.1.1.1, 203.0.113.5"), "203.0.113.5");
}

TEST_F(HttpRequestHandler, PreferRespondAsyncSelectsAsyncModeAndSaysSo) {
  auto s = records(post("/v1/messages/events", "{}", "application/json", {{"Prefer", "respond-async, wait=5"}}));
  EXPECT_TRUE(s.async);
  EXPECT_EQ(header_value(s.response_headers, "Preference-Applied"), "respond-async");
  EXPECT_TRUE(records(post("/v1/messages/raw", "x", "text/plain", {{"X-Device", "d"}})).async) << "type mode async";
}

TEST_F(HttpRequestHandler, AsyncIsIgnoredWithoutAWriteAheadLog) {
  request_handler h(make_config(), handler_options{"n", false, ""});
  auto o = h.handle(post("/v1/messages/events", "{}", "application/json", {{"Prefer", "respond-async"}}), steady_,
                    std::chrono::system_clock::now());
  ASSERT_TRUE(std::holds_alternative<submission>(o));
  EXPECT_FALSE(std::get<submission>(o).async);
}

TEST_F(HttpRequestHandler, OpenApiIsServed) {
  http_request req;
  req.method = "GET";
  req.target = "/openapi.yaml";
  auto r = response(req);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "openapi: 3.1.0\n");
  EXPECT_EQ(header_value(r.headers, "Content-Type"), "application/yaml");
}

// --- delivery answers

TEST_F(HttpRequestHandler, AllStoredIs200WithAReceiptPerRecord) {
  auto s = records(post("/v1/messages/events", "[1,2]"));
  std::vector<record_outcome> out(2, record_outcome{record_fate::stored, "", {}});
  auto r = handler_.delivery_response(s, out, {}, steady_);
  EXPECT_EQ(r.status, 200u);
  auto v = body_json(r);
  EXPECT_EQ(v.at("status").as_string(), "stored");
  ASSERT_EQ(v.at("receipts").as_array().size(), 2u);
  EXPECT_EQ(v.at("receipts").at(1).at("id").as_string(), s.ids[1]);
}

TEST_F(HttpRequestHandler, AsyncAllStoredIs202) {
  auto s = records(post("/v1/messages/events", "{}", "application/json", {{"Prefer", "respond-async"}}));
  auto r = handler_.delivery_response(s, {record_outcome{record_fate::stored, "", {}}}, {}, steady_);
  EXPECT_EQ(r.status, 202u);
  EXPECT_EQ(body_json(r).at("id").as_string(), s.ids[0]);
}

TEST_F(HttpRequestHandler, PartialFailureIs503WithPerItemStatusAndRetryAfter) {
  auto s = records(post("/v1/messages/events", "[1,2,3]"));
  std::vector<record_outcome> out{{record_fate::stored, "", {}},
                                  {record_fate::failed_retryable, "broker down", {}},
                                  {record_fate::timed_out, "", {}}};
  sinks::sink_health h;
  h.delivering = true;
  h.queued_records = 100000;  // 5 s of backlog at the nominal drain rate
  auto r = handler_.delivery_response(s, out, h, steady_);
  expect_error_shape(r, 503);
  EXPECT_EQ(header_value(r.headers, "Retry-After"), "6");
  auto d = body_json(r).at("error").at("details").as_array();
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].at("status").as_string(), "stored");
  EXPECT_EQ(d[1].at("status").as_string(), "retry");
  EXPECT_EQ(d[2].at("status").as_string(), "retry");
  EXPECT_EQ(d[1].at("id").as_string(), s.ids[1]);
}

TEST_F(HttpRequestHandler, PermanentFailuresAre413Or500) {
  auto s = records(post("/v1/messages/events", "{}"));
  auto too_large = handler_.delivery_response(
      s, {record_outcome{record_fate::failed_permanent, "too big", sinks::delivery_result::cause::too_large}}, {},
      steady_);
  expect_error_shape(too_large, 413);
  auto unknown = handler_.delivery_response(
      s, {record_outcome{record_fate::failed_permanent, "no topic", sinks::delivery_result::cause::unknown_topic}}, {},
      steady_);
  expect_error_shape(unknown, 500);
}

TEST(HttpRetryAfter, GrowsWithTheOutageAndTheBacklog) {
  const auto now = std::chrono::steady_clock::time_point(std::chrono::hours(2));
  sinks::sink_health down;
  down.delivering = false;
  down.unhealthy_since = now - std::chrono::seconds(1);
  EXPECT_EQ(retry_after(down, now).count(), 2);
  down.unhealthy_since = now - std::chrono::seconds(40);
  EXPECT_EQ(retry_after(down, now).count(), 20);
  down.unhealthy_since = now - std::chrono::hours(1);
  EXPECT_EQ(retry_after(down, now).count(), 60);
  sinks::sink_health up;
  EXPECT_EQ(retry_after(up, now).count(), 1);
  up.queued_bytes = 64u << 20;
  EXPECT_EQ(retry_after(up, now).count(), 3);
  up.queued_records = 10'000'000;
  EXPECT_EQ(retry_after(up, now).count(), 30);
}

TEST(HttpGzip, InflatesAndCapsOutput) {
  const std::string plain(100000, 'z');
  auto ok = gunzip(gzip_of(plain), 100000);
  ASSERT_EQ(ok.status, inflate_status::ok);
  EXPECT_EQ(ok.data, plain);
  EXPECT_EQ(gunzip(gzip_of(plain), 99999).status, inflate_status::too_large);
  auto gz = gzip_of(plain);
  EXPECT_EQ(gunzip(gz.substr(0, gz.size() / 2), 1 << 20).status, inflate_status::corrupt);
  EXPECT_EQ(gunzip(gz + "trailing", 1 << 20).status, inflate_status::corrupt);
}

}  // namespace
}  // namespace wharf::http
