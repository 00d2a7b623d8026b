// The HTTP ingest server over real sockets, in process, against the real
// Kafka of scripts/stack (127.0.0.1:9092-9094, topic http.events) and a real
// local write-ahead log. Records are read back from Kafka with librdkafka.
// Paths Kafka cannot produce on demand (a stalled or full sink) use small
// in-process sinks.
#include "protocols/http/authenticator.h"
#include "protocols/http/server/http_server.h"
#include "sinks/kafka/kafka_sink.h"
#include "sinks/local_log/local_log_sink.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <librdkafka/rdkafka.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <random>
#include <thread>

namespace wharf::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

const std::string k_brokers = "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";
const std::string k_topic = "http.events";
const std::string k_api_key = "integration-key-1";

std::string unique(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  return prefix + std::to_string(rng() % 1000000000);
}

// --- Kafka read-back ------------------------------------------------------

struct consumed {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

class kafka_reader {
 public:
  kafka_reader() {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", k_brokers.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", unique("wharf-http-test-").c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk_ == nullptr) throw std::runtime_error(err);
    rd_kafka_poll_set_consumer(rk_);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk_, k_topic.c_str(), nullptr);
    if (rd_kafka_metadata(rk_, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt == 0)
      throw std::runtime_error("Kafka at " + k_brokers + " has no topic " + k_topic +
                               " (run scripts/stack up --brokers 3)");
    partitions_ = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
  }
  ~kafka_reader() {
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  std::vector<std::int64_t> marks() {
    std::vector<std::int64_t> m;
    for (int p = 0; p < partitions_; ++p) {
      std::int64_t lo = 0, hi = 0;
      auto e = rd_kafka_query_watermark_offsets(rk_, k_topic.c_str(), p, &lo, &hi, 10000);
      if (e) throw std::runtime_error(rd_kafka_err2str(e));
      m.push_back(hi);
    }
    return m;
  }

  // Records with `key` written after `from`, in partition order, until `n`
  // arrived or 20 s passed.
  std::vector<consumed> read(const std::vector<std::int64_t>& from, const std::string& key, std::size_t n) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions_);
    for (int p = 0; p < partitions_; ++p)
      rd_kafka_topic_partition_list_add(list, k_topic.c_str(), p)->offset = from[static_cast<std::size_t>(p)];
    rd_kafka_assign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    std::vector<consumed> out;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (out.size() < n && std::chrono::steady_clock::now() < until) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 200);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key != nullptr &&
          std::string(static_cast<const char*>(m->key), m->key_len) == key) {
        consumed c;
        c.key = key;
        c.value.assign(static_cast<const char*>(m->payload), m->len);
        rd_kafka_headers_t* hdrs = nullptr;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* val;
          size_t sz;
          for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &sz) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
            c.headers[name] = std::string(static_cast<const char*>(val), sz);
        }
        out.push_back(std::move(c));
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk_, nullptr);
    return out;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  int partitions_ = 0;
};

// --- In-process sinks for paths Kafka cannot produce on demand ------------

// Takes records and never completes them (until destroyed): the request
// deadline passes.
class stalled_sink final : public sinks::sink {
 public:
  sinks::submit_status submit(sinks::record, asio::any_io_executor ex, sinks::completion done) override {
    std::lock_guard l(m_);
    held_.emplace_back(ex, std::move(done));
    return sinks::submit_status::accepted;
  }
  void async_wait_capacity(asio::any_io_executor ex, std::function<void()> f) override { asio::post(ex, f); }
  sinks::sink_health health() const override {
    sinks::sink_health h;
    h.queued_records = 250000;  // 13 s of backlog at the nominal rate
    return h;
  }
  void shutdown(std::chrono::milliseconds) override {
    std::lock_guard l(m_);
    for (auto& [ex, done] : held_)
      asio::post(ex, [d = std::move(done)] {
        d(sinks::delivery_result{sinks::delivery_status::failed_retryable, "shutdown", {}});
      });
    held_.clear();
  }
  std::string_view name() const noexcept override { return "stalled"; }

 private:
  std::mutex m_;
  std::vector<std::pair<asio::any_io_executor, sinks::completion>> held_;
};

// Refuses everything: queue full, not delivering for 30 s.
class full_sink final : public sinks::sink {
 public:
  sinks::submit_status submit(sinks::record, asio::any_io_executor, sinks::completion) override {
    return sinks::submit_status::queue_full;
  }
  void async_wait_capacity(asio::any_io_executor ex, std::function<void()> f) override { asio::post(ex, f); }
  sinks::sink_health health() const override {
    sinks::sink_health h;
    h.delivering = false;
    h.unhealthy_since = std::chrono::steady_clock::now() - 30s;
    return h;
  }
  void shutdown(std::chrono::milliseconds) override {}
  std::string_view name() const noexcept override { return "full"; }
};

// --- Client ---------------------------------------------------------------

using response = bhttp::response<bhttp::string_body>;

class connection {
 public:
  explicit connection(std::uint16_t port) : sock_(ioc_) { sock_.connect({asio::ip::make_address("127.0.0.1"), port}); }

  response send(bhttp::verb method, const std::string& target, const std::string& body,
                std::vector<std::pair<std::string, std::string>> headers = {},
                const std::string& content_type = "application/json") {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (method == bhttp::verb::post) req.prepare_payload();
    bhttp::write(sock_, req);
    return receive();
  }
  void write_raw(const std::string& bytes) { asio::write(sock_, asio::buffer(bytes)); }
  response receive() {
    response res;
    bhttp::response_parser<bhttp::string_body> p;
    p.body_limit(16 << 20);
    bhttp::read(sock_, buf_, p);
    return p.release();
  }
  // True when the server closed the connection.
  bool closed_by_peer() {
    beast::error_code ec;
    char c;
    sock_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context ioc_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
};

boost::json::value json_of(const response& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body(), ec);
  EXPECT_FALSE(ec) << r.body();
  return v;
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + name) << text;
  return dir + "/" + name;
}

// --- Fixture --------------------------------------------------------------

config::http_config base_config(const std::string& dir) {
  config::http_config cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.request_timeout = 15s;
  cfg.idle_timeout = 5s;
  cfg.max_batch_items = 100;
  config::http_type events;
  events.name = "events";
  events.kafka_topic = k_topic;
  events.allow_anonymous = true;
  events.max_body = 64 * 1024;
  events.cors_origins = {"https://app.example"};
  cfg.types.push_back(events);
  config::http_type orders;
  orders.name = "orders";
  orders.kafka_topic = k_topic;
  orders.key = "json:/userId";
  orders.content_types = {"application/json", "application/x-ndjson"};
  orders.schema_file = write_file(
      dir, "orders.json", R"({"type":"object","required":["userId"],"properties":{"userId":{"type":"string"}}})");
  cfg.types.push_back(orders);
  config::http_api_key key;
  key.name = "it";
  key.sha256 = sha256_hex(k_api_key);
  key.types = {"orders"};
  key.rate_per_second = 0.01;
  key.burst = 1000;
  cfg.api_keys.push_back(key);
  config::http_api_key limited;
  limited.name = "limited";
  limited.sha256 = sha256_hex("limited-key");
  limited.rate_per_second = 0.01;
  limited.burst = 1;
  cfg.api_keys.push_back(limited);
  return cfg;
}

class HttpIngest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((std::filesystem::temp_directory_path() / unique("wharf-http-it-")).string());
    config::kafka_config kcfg;
    kcfg.brokers = k_brokers;
    kcfg.check_topics = false;
    auto k = sinks::kafka::make_kafka_sink(kcfg, {k_topic}, *registry_);
    ASSERT_TRUE(k) << k.error();
    kafka_ = k->release();
    sinks::local_log::local_log_options o;
    o.dir = *dir_ + "/wal";
    auto w = sinks::local_log::local_log_sink::open(o, *registry_);
    ASSERT_TRUE(w) << w.error();
    wal_ = w->release();
  }
  static void TearDownTestSuite() {
    if (kafka_ != nullptr) kafka_->shutdown(5s);
    if (wal_ != nullptr) wal_->shutdown(5s);
    delete kafka_;
    delete wal_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  void start(config::http_config cfg, sinks::sink* kafka = nullptr) {
    server_ = std::make_unique<http_server>(ioc_, cfg, kafka != nullptr ? *kafka : *kafka_, wal_, "it-node", metrics_);
    ASSERT_FALSE(server_->start());
    port_ = server_->local_port();
    ASSERT_NE(port_, 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  void SetUp() override { ASSERT_NE(kafka_, nullptr); }
  void TearDown() override {
    if (server_) {
      std::promise<void> drained;
      server_->async_drain(2s, [&] { drained.set_value(); });
      drained.get_future().wait_for(10s);
    }
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }

  std::string metrics_text() {
    prometheus::TextSerializer s;
    return s.Serialize(metrics_.Collect());
  }

  static std::string* dir_;
  static inline std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  static sinks::sink* kafka_;
  static sinks::sink* wal_;

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  std::vector<std::thread> threads_;
  prometheus::Registry metrics_;
  std::unique_ptr<http_server> server_;
  std::uint16_t port_ = 0;
};
std::string* HttpIngest::dir_ = nullptr;
sinks::sink* HttpIngest::kafka_ = nullptr;
sinks::sink* HttpIngest::wal_ = nullptr;

TEST_F(HttpIngest, SingleEventIsInKafkaWithHeadersWhenThe200Arrives) {
  start(base_config(*dir_));
  kafka_reader kr;
  const auto from = kr.marks();
  const std::string producer = unique("p-");
  const std::string body = R"({"temp": 21.5, "note": "untouched  bytes"})";
  connection c(port_);
  auto r = c.send(bhttp::verb::post, "/v1/messages/events?producer=" + producer, body,
                  {{"User-Agent", "it/1"}, {"Idempotency-Key", "idem-1"}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const std::string id(json_of(r).at("id").as_string());
  auto got = kr.read(from, producer, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, body);
  EXPECT_EQ(got[0].headers["ce_id"], id);
  EXPECT_EQ(got[0].headers["ce_specversion"], "1.0");
  EXPECT_EQ(got[0].headers["ce_source"], "http/" + producer);
  EXPECT_EQ(got[0].headers["ce_type"], "events");
  EXPECT_EQ(got[0].headers["ce_node"], "it-node");
  EXPECT_EQ(got[0].headers["ce_remoteaddr"], "127.0.0.1");
  EXPECT_EQ(got[0].headers["ce_useragent"], "it/1");
  EXPECT_EQ(got[0].headers["ce_idempotencykey"], "idem-1");
  EXPECT_EQ(got[0].headers["content-type"], "application/json");
  EXPECT_EQ(got[0].headers["ce_time"].size(), 24u) << got[0].headers["ce_time"];
}

TEST_F(HttpIngest, BatchItemsBecomeSeparateRecordsInOrder) {
  start(base_config(*dir_));
  kafka_reader kr;
  const auto from = kr.marks();
  const std::string producer = unique("batch-");
  std::string body = "[";
  for (int i = 0; i < 20; ++i) body += (i ? "," : "") + std::string("{\"seq\":") + std::to_string(i) + "}";
  body += "]";
  connection c(port_);
  auto r = c.send(bhttp::verb::post, "/v1/messages/events?producer=" + producer, body);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  auto receipts = json_of(r).at("receipts").as_array();
  ASSERT_EQ(receipts.size(), 20u);
  auto got = kr.read(from, producer, 20);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(got[static_cast<std::size_t>(i)].value, "{\"seq\":" + std::to_string(i) + "}");
    EXPECT_EQ(got[static_cast<std::size_t>(i)].headers["ce_id"],
              receipts[static_cast<std::size_t>(i)].at("id").as_string());
  }
}

TEST_F(HttpIngest, NdjsonWithApiKeyIsKeyedByTheJsonPointer) {
  start(base_config(*dir_));
  kafka_reader kr;
  const auto from = kr.marks();
  const std::string user = unique("user-");
  const std::string body = "{\"userId\":\"" + user + "\",\"n\":1}\n{\"userId\":\"" + user + "\",\"n\":2}\n";
  connection c(port_);
  auto r = c.send(bhttp::verb::post, "/v1/messages/orders", body, {{"X-API-Key", k_api_key}}, "application/x-ndjson");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  auto got = kr.read(from, user, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value, "{\"userId\":\"" + user + "\",\"n\":1}");
  EXPECT_EQ(got[0].headers["ce_source"], "http/it");
}

TEST_F(HttpIngest, AsyncRequestIs202AfterTheWriteAheadLog) {
  start(base_config(*dir_));
  auto* wal = dynamic_cast<sinks::local_log::local_log_sink*>(wal_);
  ASSERT_NE(wal, nullptr);
  const auto before = wal->end_offset();
  connection c(port_);
  auto r = c.send(bhttp::verb::post, "/v1/messages/events", "[1,2,3]", {{"Prefer", "respond-async"}});
  ASSERT_EQ(r.result_int(), 202) << r.body();
  EXPECT_EQ(r["Preference-Applied"], "respond-async");
  EXPECT_EQ(json_of(r).at("status").as_string(), "accepted");
  EXPECT_GE(wal->end_offset(), before + 3) << "202 only after the records are fsync'd";
}

TEST_F(HttpIngest, ErrorStatusesOverTheWire) {
  start(base_config(*dir_));
  connection c(port_);
  EXPECT_EQ(c.send(bhttp::verb::post, "/v1/messages/nope", "{}").result_int(), 404);
  EXPECT_EQ(c.send(bhttp::verb::put, "/v1/messages/events", "").result_int(), 405);
  EXPECT_EQ(c.send(bhttp::verb::post, "/v1/messages/events", "{bad").result_int(), 400);
  EXPECT_EQ(c.send(bhttp::verb::post, "/v1/messages/orders", "{}").result_int(), 401);
  EXPECT_EQ(c.send(bhttp::verb::post, "/v1/messages/orders", "{}", {{"X-API-Key", "wrong"}}).result_int(), 401);
  EXPECT_EQ(c.send(bhttp::verb::post, "/v1/messages/orders", "x", {{"X-API-Key", k_api_key}}, "text/csv").result_int(),
            415);
  auto bad = c.send(bhttp::verb::post, "/v1/messages/orders", "[{\"userId\":1}]", {{"X-API-Key", k_api_key}});
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(json_of(bad).at("error").at("details").at(0).at("pointer").as_string(), "/userId") << bad.body();
  auto spec = c.send(bhttp::verb::get, "/openapi.yaml", "", {}, "");
  EXPECT_EQ(spec.result_int(), 200);
  EXPECT_NE(spec.body().find("openapi: 3.1"), std::string::npos);
  EXPECT_TRUE(spec.keep_alive()) << "all of this on one keep-alive connection";
}

TEST_F(HttpIngest, ForbiddenTypeIs403AndRateLimitIs429WithHeaders) {
  start(base_config(*dir_));
  connection c(port_);
  auto first = c.send(bhttp::verb::post, "/v1/messages/events", "{}", {{"Authorization", "Bearer limited-key"}});
  EXPECT_EQ(first.result_int(), 200) << first.body();
  auto limited = c.send(bhttp::verb::post, "/v1/messages/events", "{}", {{"Authorization", "Bearer limited-key"}});
  EXPECT_EQ(limited.result_int(), 429);
  // One token per 100 s; the first request spent a little of that time.
  const int retry = std::stoi(std::string(limited["Retry-After"]));
  EXPECT_GE(retry, 90);
  EXPECT_LE(retry, 100);
  EXPECT_EQ(limited["RateLimit-Limit"], "1");
  EXPECT_EQ(limited["RateLimit-Remaining"], "0");
  EXPECT_EQ(c.send(bhttp::verb::post, "/v1/messages/events", "{}", {{"X-API-Key", k_api_key}}).result_int(), 403);
  EXPECT_NE(metrics_text().find("wharf_http_rate_limited_total 1"), std::string::npos) << metrics_text();
}

TEST_F(HttpIngest, OversizeContentLengthIs413WithoutSendingTheBody) {
  start(base_config(*dir_));
  connection c(port_);
  c.write_raw(
      "POST /v1/messages/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n");
  auto r = c.receive();
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpIngest, OversizeChunkedBodyIs413) {
  start(base_config(*dir_));
  connection c(port_);
  std::string chunk(60 * 1024, 'x');
  std::ostringstream raw;
  raw << "POST /v1/messages/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: "
         "chunked\r\n\r\n";
  for (int i = 0; i < 2; ++i) raw << std::hex << chunk.size() << "\r\n" << chunk << "\r\n";
  raw << "0\r\n\r\n";
  c.write_raw(raw.str());
  EXPECT_EQ(c.receive().result_int(), 413);
}

TEST_F(HttpIngest, MissingLengthIs411) {
  start(base_config(*dir_));
  connection c(port_);
  c.write_raw("POST /v1/messages/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\r\n");
  EXPECT_EQ(c.receive().result_int(), 411);
}

TEST_F(HttpIngest, PipelinedRequestsAreAnsweredInOrder) {
  start(base_config(*dir_));
  connection c(port_);
  std::string both;
  for (const char* p : {"first", "second"}) {
    const std::string body = std::string("{\"p\":\"") + p + "\"}";
    both += "POST /v1/messages/events?producer=" + std::string(p) +
            " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body;
  }
  both += "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
  c.write_raw(both);
  EXPECT_EQ(c.receive().result_int(), 200);
  EXPECT_EQ(c.receive().result_int(), 200);
  EXPECT_EQ(c.receive().result_int(), 404);
}

TEST_F(HttpIngest, CorsPreflightAllowedAndDenied) {
  start(base_config(*dir_));
  connection c(port_);
  auto ok = c.send(bhttp::verb::options, "/v1/messages/events", "",
                   {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}}, "");
  EXPECT_EQ(ok.result_int(), 204);
  EXPECT_EQ(ok["Access-Control-Allow-Origin"], "https://app.example");
  auto denied = c.send(bhttp::verb::options, "/v1/messages/events", "",
                       {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}}, "");
  EXPECT_EQ(denied.result_int(), 403);
  EXPECT_EQ(denied["Access-Control-Allow-Origin"], "");
}

TEST_F(HttpIngest, SinkThatCannotConfirmInTimeGives503WithComputedRetryAfter) {
  stalled_sink stalled;
  auto cfg = base_config(*dir_);
  cfg.request_timeout = 300ms;
  start(cfg, &stalled);
  connection c(port_);
  auto r = c.send(bhttp::verb::post, "/v1/messages/events", "[1,2]");
  EXPECT_EQ(r.result_int(), 503) << r.body();
  EXPECT_EQ(r["Retry-After"], "14") << "1 + 250000 queued / 20000 per second";
  auto details = json_of(r).at("error").at("details").as_array();
  ASSERT_EQ(details.size(), 2u);
  EXPECT_EQ(details[0].at("status").as_string(), "retry");
  stalled.shutdown(0ms);
}

TEST_F(HttpIngest, FullSinkGives503WithRetryAfterFromTheOutage) {
  full_sink full;
  start(base_config(*dir_), &full);
  connection c(port_);
  auto r = c.send(bhttp::verb::post, "/v1/messages/events", "{}");
  EXPECT_EQ(r.result_int(), 503) << r.body();
  EXPECT_EQ(r["Retry-After"], "15") << "half of a 30 s outage";
}

TEST_F(HttpIngest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  auto cfg = base_config(*dir_);
  cfg.idle_timeout = 200ms;
  start(cfg);
  connection c(port_);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpIngest, DrainClosesIdleConnections) {
  start(base_config(*dir_));
  connection c(port_);
  EXPECT_EQ(c.send(bhttp::verb::get, "/openapi.yaml", "", {}, "").result_int(), 200);
  std::promise<void> drained;
  server_->async_drain(5s, [&] { drained.set_value(); });
  EXPECT_EQ(drained.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(server_->connection_count(), 0u);
  server_.reset();
}

TEST_F(HttpIngest, TlsListenerServesTheSameApi) {
  const std::string cert = *dir_ + "/tls-cert.pem", key = *dir_ + "/tls-key.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                          " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  auto cfg = base_config(*dir_);
  cfg.listen = "";
  cfg.tls.listen = "127.0.0.1:0";
  cfg.tls.cert_file = cert;
  cfg.tls.key_file = key;
  server_ = std::make_unique<http_server>(ioc_, cfg, *kafka_, wal_, "it-node", metrics_);
  ASSERT_FALSE(server_->start());
  EXPECT_EQ(server_->local_port(), 0);
  const auto port = server_->tls_local_port();
  ASSERT_NE(port, 0);
  for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });

  asio::io_context cioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<tcp::socket> stream(cioc, ctx);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  stream.handshake(asio::ssl::stream_base::client);
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/v1/messages/events?producer=tls", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::content_type, "application/json");
  req.body() = "{\"over\":\"tls\"}";
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buf;
  response res;
  bhttp::read(stream, buf, res);
  EXPECT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(json_of(res).at("status").as_string(), "stored");
}

}  // namespace
}  // namespace wharf::http
