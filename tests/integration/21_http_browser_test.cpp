// A real browser (headless Chromium) against the HTTP ingest server: a page
// served from one origin uses fetch() and navigator.sendBeacon() to send
// events cross-origin to a type that allows the page's origin and to one that
// does not. Asserts what the page saw and which records reached the sink.
#include "protocols/http/server/http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <prometheus/registry.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <mutex>
#include <thread>

namespace wharf::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// Stores every record at once and remembers it.
class recording_sink final : public sinks::sink {
 public:
  sinks::submit_status submit(sinks::record rec, asio::any_io_executor ex, sinks::completion done) override {
    {
      std::lock_guard l(m_);
      records_.push_back(std::move(rec));
    }
    asio::post(ex, [d = std::move(done)] { d(sinks::delivery_result{sinks::delivery_status::stored, "", {}}); });
    return sinks::submit_status::accepted;
  }
  void async_wait_capacity(asio::any_io_executor ex, std::function<void()> f) override { asio::post(ex, f); }
  sinks::sink_health health() const override { return {}; }
  void shutdown(std::chrono::milliseconds) override {}
  std::string_view name() const noexcept override { return "recording"; }
  std::vector<sinks::record> records() {
    std::lock_guard l(m_);
    return records_;
  }

 private:
  std::mutex m_;
  std::vector<sinks::record> records_;
};

// Serves `page` to every GET on its own thread.
class page_server {
 public:
  explicit page_server(std::string page)
      : page_(std::move(page)), acc_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      for (;;) {
        tcp::socket s(ioc_);
        boost::system::error_code ec;
        acc_.accept(s, ec);
        if (ec || !acc_.is_open()) return;
        // One thread per connection: the browser opens speculative
        // connections it may never send a request on.
        std::thread([s = std::move(s), page = page_]() mutable {
          boost::system::error_code e;
          asio::streambuf buf;
          asio::read_until(s, buf, "\r\n\r\n", e);
          if (e) return;
          const std::string res =
              "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: " +
              std::to_string(page.size()) + "\r\n\r\n" + page;
          asio::write(s, asio::buffer(res), e);
        }).detach();
      }
    });
  }
  ~page_server() {
    boost::system::error_code ec;
    acc_.close(ec);
    // Unblock accept() by connecting once.
    tcp::socket s(ioc_);
    s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  std::string page_;
  asio::io_context ioc_;
  tcp::acceptor acc_;
  std::uint16_t port_ = acc_.local_endpoint().port();
  std::thread thread_;
};

std::string run_chromium(const std::string& url) {
  const std::string cmd =
      "chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-dev-shm-usage --virtual-time-budget=15000 --dump-dom '" +
      url + "' 2>/dev/null";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

TEST(HttpBrowser, FetchAndSendBeaconCrossOriginFollowCors) {
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  prometheus::Registry registry;
  recording_sink sink;

  // The page's origin is only known once its server has a port, so the page
  // reads the ingest port from its own URL (?ingest=PORT).
  const std::string page = R"(<!doctype html><html><body><pre id="out"></pre><script>
const ingest = 'http://127.0.0.1:' + new URLSearchParams(location.search).get('ingest');
const out = document.getElementById('out');
const log = (s) => { out.textContent += s + '\n'; };
(async () => {
  try {
    const r = await fetch(ingest + '/v1/messages/open?producer=fetch', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify({via: 'fetch-allowed'})});
    const body = await r.json();
    log('FETCH_ALLOWED ' + r.status + ' ' + body.status);
  } catch (e) { log('FETCH_ALLOWED ERROR ' + e.name); }
  try {
    const r = await fetch(ingest + '/v1/messages/closed?producer=fetch', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify({via: 'fetch-denied'})});
    log('FETCH_DENIED ' + r.status);
  } catch (e) { log('FETCH_DENIED ERROR ' + e.name); }
  log('BEACON_ALLOWED ' + navigator.sendBeacon(ingest + '/v1/messages/open?producer=beacon',
                                               JSON.stringify({via: 'beacon-allowed'})));
  log('BEACON_DENIED ' + navigator.sendBeacon(ingest + '/v1/messages/closed?producer=beacon',
                                              JSON.stringify({via: 'beacon-denied'})));
  await new Promise((res) => setTimeout(res, 1500));
  log('DONE');
})();
</script></body></html>)";
  page_server pages(page);
  const std::string origin = "http://127.0.0.1:" + std::to_string(pages.port());

  config::http_config cfg;
  cfg.listen = "127.0.0.1:0";
  config::http_type open;
  open.name = "open";
  open.kafka_topic = "http.events";
  open.allow_anonymous = true;
  open.content_types = {"application/json"};
  open.cors_origins = {origin};
  cfg.types.push_back(open);
  config::http_type closed = open;
  closed.name = "closed";
  closed.cors_origins = {"https://somewhere-else.example"};
  cfg.types.push_back(closed);

  http_server server(ioc, cfg, sink, nullptr, "browser-node", registry);
  ASSERT_FALSE(server.start());
  std::thread io([&] { ioc.run(); });

  const std::string dom = run_chromium(origin + "/index.html?ingest=" + std::to_string(server.local_port()));

  server.stop();
  work.reset();
  ioc.stop();
  io.join();

  ASSERT_NE(dom.find("DONE"), std::string::npos) << "chromium did not run the page (is Debian 'chromium' installed?):\n"
                                                 << dom;
  EXPECT_NE(dom.find("FETCH_ALLOWED 200 stored"), std::string::npos) << dom;
  EXPECT_NE(dom.find("FETCH_DENIED ERROR TypeError"), std::string::npos) << dom;
  EXPECT_NE(dom.find("BEACON_ALLOWED true"), std::string::npos) << dom;

  std::vector<std::string> seen;
  for (const auto& r : sink.records()) seen.push_back(r.value);
  auto has = [&](const std::string& via) {
    for (const auto& v : seen)
      if (v.find(via) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("fetch-allowed"));
  EXPECT_TRUE(has("beacon-allowed"));
  EXPECT_FALSE(has("fetch-denied")) << "the preflight was refused, so the POST must not have been sent";
  EXPECT_FALSE(has("beacon-denied")) << "a beacon from a disallowed origin is refused with 403";
  for (const auto& r : sink.records())
    for (const auto& h : r.headers)
      if (h.name == "ce_type") {
        EXPECT_EQ(h.value, "open");
      }
}

}  // namespace
}  // namespace wharf::http
