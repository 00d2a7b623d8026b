#include "protocols/http/server/http_server.h"

// GCC 12 at -O2/-O3 reports a false -Wmismatched-new-delete when it inlines
// Asio's awaitable frame allocator (operator new of awaitable_frame_base and
// its std::free) into a coroutine; the pair is matched.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "protocols/http/openapi_yaml.h"
#include "protocols/http/request_handler.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <tuple>

namespace wharf::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Bodies of requests refused on their headers alone are read and dropped up
// to this size (keeps the connection); larger ones close the connection.
constexpr std::uint64_t k_discard_limit = 64 * 1024;

namespace {

std::pair<std::string, std::string> split_host_port(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return {listen, "0"};
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  return {host, listen.substr(colon + 1)};
}

std::string_view reason_label(unsigned status) {
  switch (status) {
    case 400:
      return "invalid";
    case 401:
      return "unauthenticated";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "timeout";
    case 411:
      return "length_required";
    case 413:
      return "too_large";
    case 415:
      return "unsupported_media_type";
    case 429:
      return "rate_limited";
    case 431:
      return "headers_too_large";
    case 500:
      return "failed";
    case 503:
      return "unavailable";
    default:
      return "other";
  }
}

// One live connection, reachable from stop()/drain() on other threads. Its
// fields are touched only on the connection's strand.
struct connection_entry {
  asio::any_io_executor executor;
  std::function<void()> close;  // closes the socket; valid while alive
  bool alive = true;
  bool idle = true;  // waiting for the next request
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& ioc, const config::http_config& cfg, sinks::sink& kafka, sinks::sink* wal, std::string node_id,
       prometheus::Registry& registry)
      : ioc_(ioc),
        cfg_(cfg),
        kafka_(kafka),
        wal_(wal),
        handler_(cfg, handler_options{node_id, wal != nullptr, std::string(openapi_yaml())}),
        plain_acceptor_(ioc),
        tls_acceptor_(ioc),
        ssl_ctx_(asio::ssl::context::tls_server),
        requests_(prometheus::BuildCounter()
                      .Name("wharf_http_requests_total")
                      .Help("HTTP requests answered, by route and status code")
                      .Register(registry)),
        duration_(prometheus::BuildHistogram()
                      .Name("wharf_http_request_duration_seconds")
                      .Help("Time from the request head to the answer, by route")
                      .Register(registry)),
        records_(prometheus::BuildCounter()
                     .Name("wharf_http_records_total")
                     .Help("Records handed to a sink, by type")
                     .Register(registry)),
        rejections_(prometheus::BuildCounter()
                        .Name("wharf_http_rejections_total")
                        .Help("Requests refused, by reason")
                        .Register(registry)),
        rate_limited_(prometheus::BuildCounter()
                          .Name("wharf_http_rate_limited_total")
                          .Help("Requests refused with 429 by a key's rate limit")
                          .Register(registry)
                          .Add({})),
        connections_gauge_(prometheus::BuildGauge()
                               .Name("wharf_connections")
                               .Help("Open client connections, by protocol")
                               .Register(registry)
                               .Add({{"protocol", "http"}})) {
    if (!cfg_.tls.listen.empty()) {
      error_code ec;
      ssl_ctx_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                           asio::ssl::context::no_tlsv1_1);
      ssl_ctx_.use_certificate_chain_file(cfg_.tls.cert_file, ec);
      if (ec) throw std::runtime_error("http.tls.cert_file: cannot load '" + cfg_.tls.cert_file + "': " + ec.message());
      ssl_ctx_.use_private_key_file(cfg_.tls.key_file, asio::ssl::context::pem, ec);
      if (ec) throw std::runtime_error("http.tls.key_file: cannot load '" + cfg_.tls.key_file + "': " + ec.message());
      if (!cfg_.tls.ca_file.empty()) {
        ssl_ctx_.load_verify_file(cfg_.tls.ca_file, ec);
        if (ec) throw std::runtime_error("http.tls.ca_file: cannot load '" + cfg_.tls.ca_file + "': " + ec.message());
        ssl_ctx_.set_verify_mode(asio::ssl::verify_peer |
                                 (cfg_.tls.require_client_cert ? asio::ssl::verify_fail_if_no_peer_cert : 0));
      }
    }
    static const prometheus::Histogram::BucketBoundaries buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                 0.25,  0.5,    1,     2.5,  5,     10};
    for (auto r : {route::messages, route::preflight, route::openapi, route::not_found})
      duration_by_route_.emplace(r, &duration_.Add({{"route", std::string(to_string(r))}}, buckets));
  }

  error_code listen(tcp::acceptor& acc, const std::string& where) {
    auto [host, port] = split_host_port(where);
    error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
    if (ec || results.empty()) return ec ? ec : asio::error::host_not_found;
    const tcp::endpoint ep = results.begin()->endpoint();
    acc.open(ep.protocol(), ec);
    if (ec) return ec;
    acc.set_option(asio::socket_base::reuse_address(true), ec);
    acc.bind(ep, ec);
    if (ec) return ec;
    acc.listen(asio::socket_base::max_listen_connections, ec);
    return ec;
  }

  error_code start() {
    if (!cfg_.listen.empty()) {
      if (auto ec = listen(plain_acceptor_, cfg_.listen)) return ec;
      asio::co_spawn(ioc_, accept_loop(plain_acceptor_, false), asio::detached);
    }
    if (!cfg_.tls.listen.empty()) {
      if (auto ec = listen(tls_acceptor_, cfg_.tls.listen)) return ec;
      asio::co_spawn(ioc_, accept_loop(tls_acceptor_, true), asio::detached);
    }
    return {};
  }

  void stop_accepting() {
    asio::post(ioc_, [self = shared_from_this()] {
      error_code ec;
      self->plain_acceptor_.close(ec);
      self->tls_acceptor_.close(ec);
    });
  }

  // Runs `fn` on every live connection's strand.
  void for_each_connection(const std::function<void(connection_entry&)>& fn) {
    std::lock_guard lock(mutex_);
    for (auto& e : entries_)
      asio::post(e->executor, [e, fn] {
        if (e->alive) fn(*e);
      });
  }

  void stop() {
    stop_accepting();
    draining_ = true;
    for_each_connection([](connection_entry& e) { e.close(); });
  }

  awaitable<void> accept_loop(tcp::acceptor& acc, bool tls) {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, sock] = co_await acc.async_accept(asio::make_strand(ioc_), use_tuple);
      if (ec) {
        if (!acc.is_open() || ec == asio::error::operation_aborted) co_return;
        // Out of descriptors and the like: back off a little instead of spinning.
        asio::steady_timer t(ioc_, std::chrono::milliseconds(50));
        co_await t.async_wait(use_tuple);
        continue;
      }
      if (draining_ || connections_.load() >= cfg_.max_connections) {
        rejections_.Add({{"reason", "max_connections"}}).Increment();
        error_code ignored;
        sock.close(ignored);
        continue;
      }
      auto ex = sock.get_executor();
      asio::co_spawn(ex, run_connection(std::move(sock), tls), asio::detached);
    }
  }

  awaitable<void> run_connection(tcp::socket sock, bool tls) {
    auto self = shared_from_this();
    error_code ec;
    auto ep = sock.remote_endpoint(ec);
    std::string peer = ec ? std::string() : ep.address().to_string();
    sock.set_option(tcp::no_delay(true), ec);
    auto entry = std::make_shared<connection_entry>();
    entry->executor = sock.get_executor();
    {
      std::lock_guard lock(mutex_);
      entries_.push_back(entry);
    }
    ++connections_;
    connections_gauge_.Increment();
    if (tls) {
      beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), ssl_ctx_);
      entry->close = [&stream] {
        error_code ignored;
        beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(stream).socket().close(ignored);
      };
      beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
      auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
      if (!hec) {
        co_await serve(stream, *entry, peer);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
        co_await stream.async_shutdown(use_tuple);
      }
      entry->alive = false;
    } else {
      beast::tcp_stream stream(std::move(sock));
      entry->close = [&stream] {
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
      };
      co_await serve(stream, *entry, peer);
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      entry->alive = false;
    }
    {
      std::lock_guard lock(mutex_);
      entries_.remove(entry);
    }
    --connections_;
    connections_gauge_.Decrement();
  }

  static bhttp::response<bhttp::string_body> to_beast(http_response&& r, unsigned version, bool keep_alive,
                                                      bool head_only) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::server, "wharf");
    for (auto& f : r.headers) res.insert(f.name, f.value);
    const auto n = r.body.size();
    res.body() = head_only ? std::string() : std::move(r.body);
    res.content_length(n);
    res.keep_alive(keep_alive);
    return res;
  }

  template <class Stream>
  awaitable<bool> write(Stream& stream, http_response&& r, unsigned version, bool keep_alive, bool head_only, route rt,
                        std::chrono::steady_clock::time_point started) {
    const unsigned status = r.status;
    auto res = to_beast(std::move(r), version, keep_alive, head_only);
    beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, res, use_tuple);
    requests_.Add({{"route", std::string(to_string(rt))}, {"status", std::to_string(status)}}).Increment();
    duration_by_route_.at(rt)->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (status >= 400) rejections_.Add({{"reason", std::string(reason_label(status))}}).Increment();
    if (status == 429) rate_limited_.Increment();
    co_return !ec;
  }

  template <class Stream>
  awaitable<void> serve(Stream& stream, connection_entry& entry, const std::string& peer) {
    beast::flat_buffer buffer(static_cast<std::size_t>(cfg_.max_header_bytes) + 65536);
    for (;;) {
      entry.idle = true;
      if (draining_) co_return;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(cfg_.max_header_bytes);
      // The head is checked against the type's limit first (413 without
      // reading the body); the real limit is set once the type is known.
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      beast::get_lowest_layer(stream).expires_after(cfg_.idle_timeout);
      auto [rec, rn] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
      entry.idle = false;
      const auto started = std::chrono::steady_clock::now();
      if (rec) {
        if (rec == bhttp::error::header_limit) {
          co_await write(
              stream,
              error_response(431, "The request headers are larger than " + std::to_string(cfg_.max_header_bytes) +
                                      " bytes; send fewer or shorter headers."),
              11, false, false, route::not_found, started);
        } else if (rec != bhttp::error::end_of_stream && rec != asio::error::operation_aborted &&
                   rec != beast::error::timeout && rec != asio::error::eof && rec != asio::error::connection_reset &&
                   buffer.size() > 0) {
          co_await write(stream, error_response(400, "The request is not valid HTTP/1.1: " + rec.message() + "."), 11,
                         false, false, route::not_found, started);
        }
        co_return;
      }
      auto& h = parser.get();
      http_request req;
      req.method = std::string(h.method_string());
      req.target = std::string(h.target());
      req.peer_address = peer;
      req.headers.reserve(16);
      for (const auto& f : h) req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
      const unsigned version = h.version();
      const bool head_only = h.method() == bhttp::verb::head;
      const bool client_keep_alive = h.keep_alive();
      const route rt = handler_.classify(req);

      auto outcome = handler_.check_head(req, started, std::chrono::system_clock::now());
      if (auto* resp = std::get_if<http_response>(&outcome)) {
        // A small unread body is read and dropped so the connection stays
        // usable; a large one is not read at all and the connection closes.
        bool body_pending = !parser.is_done();
        if (body_pending && parser.content_length() && *parser.content_length() <= k_discard_limit) {
          parser.body_limit(k_discard_limit);
          beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
          auto [dec, dn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
          body_pending = static_cast<bool>(dec);
        }
        const bool keep = client_keep_alive && !body_pending && !resp->close && !draining_;
        if (!co_await write(stream, std::move(*resp), version, keep, head_only, rt, started) || !keep) co_return;
        continue;
      }
      auto& head = std::get<accepted_head>(outcome);

      if (auto expect = h[bhttp::field::expect]; iequals(expect, "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
        beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
        auto [wec, wn] = co_await bhttp::async_write(stream, cont, use_tuple);
        if (wec) co_return;
      }
      parser.body_limit(head.body_limit);
      beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
      error_code bec;
      if (!parser.is_done()) std::tie(bec, std::ignore) = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      if (bec) {
        if (bec == bhttp::error::body_limit) {
          auto r = error_response(413, "The body is larger than " + std::to_string(head.body_limit) +
                                           " bytes, the limit for this type. Split it into smaller requests.");
          r.headers.insert(r.headers.end(), head.response_headers.begin(), head.response_headers.end());
          co_await write(stream, std::move(r), version, false, false, rt, started);
        } else if (bec == beast::error::timeout) {
          co_await write(stream, error_response(408, "The body did not arrive within the request timeout."), version,
                         false, false, rt, started);
        }
        co_return;
      }
      req.body = std::move(parser.get().body());

      auto result = handler_.handle_body(head, req, std::chrono::system_clock::now());
      http_response answer;
      if (auto* resp = std::get_if<http_response>(&result)) {
        answer = std::move(*resp);
      } else {
        auto& sub = std::get<submission>(result);
        answer = co_await deliver(sub, started);
      }
      const bool keep = client_keep_alive && !answer.close && !draining_;
      if (!co_await write(stream, std::move(answer), version, keep, head_only, rt, started) || !keep) co_return;
    }
  }

  // Shared with the completions, which may fire after the request gave up.
  struct delivery_state {
    explicit delivery_state(asio::any_io_executor ex, std::size_t n) : timer(ex), outcomes(n) {}
    asio::steady_timer timer;
    std::vector<record_outcome> outcomes;
    std::size_t pending = 0;
  };

  awaitable<http_response> deliver(submission& sub, std::chrono::steady_clock::time_point started) {
    auto ex = co_await asio::this_coro::executor;
    sinks::sink& sink = sub.async && wal_ != nullptr ? *wal_ : kafka_;
    auto st = std::make_shared<delivery_state>(ex, sub.records.size());
    records_.Add({{"type", sub.type}}).Increment(static_cast<double>(sub.records.size()));
    bool stopped = false;
    for (std::size_t i = 0; i < sub.records.size(); ++i) {
      if (stopped) {
        st->outcomes[i].fate = record_fate::not_submitted;
        continue;
      }
      st->outcomes[i].fate = record_fate::timed_out;
      ++st->pending;
      const auto s = sink.submit(std::move(sub.records[i]), ex, [st, i](sinks::delivery_result r) {
        st->outcomes[i] = to_outcome(r);
        if (--st->pending == 0) st->timer.cancel();
      });
      if (s != sinks::submit_status::accepted) {
        --st->pending;
        st->outcomes[i].fate = record_fate::not_submitted;
        st->outcomes[i].reason =
            s == sinks::submit_status::queue_full ? "the queue towards the sink is full" : "the node is shutting down";
        stopped = true;
      }
    }
    if (st->pending > 0) {
      st->timer.expires_at(started + cfg_.request_timeout);
      co_await st->timer.async_wait(use_tuple);
    }
    co_return handler_.delivery_response(sub, st->outcomes, sink.health(), std::chrono::steady_clock::now());
  }

  asio::io_context& ioc_;
  config::http_config cfg_;
  sinks::sink& kafka_;
  sinks::sink* wal_;
  request_handler handler_;
  tcp::acceptor plain_acceptor_;
  tcp::acceptor tls_acceptor_;
  asio::ssl::context ssl_ctx_;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> connections_{0};
  std::mutex mutex_;
  std::list<std::shared_ptr<connection_entry>> entries_;

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  std::map<route, prometheus::Histogram*> duration_by_route_;
  prometheus::Family<prometheus::Counter>& records_;
  prometheus::Family<prometheus::Counter>& rejections_;
  prometheus::Counter& rate_limited_;
  prometheus::Gauge& connections_gauge_;
};

http_server::http_server(asio::io_context& ioc, const config::http_config& cfg, sinks::sink& kafka, sinks::sink* wal,
                         std::string node_id, prometheus::Registry& registry)
    : impl_(std::make_shared<impl>(ioc, cfg, kafka, wal, std::move(node_id), registry)) {}

http_server::~http_server() {
  error_code ec;
  impl_->plain_acceptor_.close(ec);
  impl_->tls_acceptor_.close(ec);
}

error_code http_server::start() { return impl_->start(); }

std::uint16_t http_server::local_port() const noexcept {
  error_code ec;
  auto ep = impl_->plain_acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

std::uint16_t http_server::tls_local_port() const noexcept {
  error_code ec;
  auto ep = impl_->tls_acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

std::size_t http_server::connection_count() const noexcept { return impl_->connections_.load(); }

void http_server::stop_accepting() { impl_->stop_accepting(); }

void http_server::stop() { impl_->stop(); }

void http_server::async_drain(std::chrono::milliseconds deadline, std::function<void()> done) {
  auto self = impl_;
  self->stop_accepting();
  self->draining_ = true;
  self->for_each_connection([](connection_entry& e) {
    if (e.idle) e.close();
  });
  asio::co_spawn(
      self->ioc_,
      [self, deadline, done = std::move(done)]() -> awaitable<void> {
        const auto until = std::chrono::steady_clock::now() + deadline;
        asio::steady_timer t(self->ioc_);
        bool forced = false;
        while (self->connections_.load() > 0) {
          if (!forced && std::chrono::steady_clock::now() >= until) {
            self->stop();
            forced = true;
          }
          // Connections that were between requests when the drain began are
          // closed above; these polls only watch the busy ones finish.
          t.expires_after(std::chrono::milliseconds(20));
          co_await t.async_wait(use_tuple);
          self->for_each_connection([](connection_entry& e) {
            if (e.idle) e.close();
          });
        }
        if (done) done();
      },
      asio::detached);
}

}  // namespace wharf::http
