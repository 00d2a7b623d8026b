#include "edge/admin_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

namespace wharf::edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

boost::system::error_code resolve_listen(const std::string& listen, tcp::endpoint& out) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return asio::error::invalid_argument;
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return ec;
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return asio::error::invalid_argument;
  }
  if (port < 0 || port > 65535) return asio::error::invalid_argument;
  out = tcp::endpoint(addr, static_cast<unsigned short>(port));
  return {};
}

struct admin_server::impl {
  asio::io_context& ioc;
  admin_sources sources;
  tcp::acceptor acceptor;

  impl(asio::io_context& c, admin_sources s) : ioc(c), sources(std::move(s)), acceptor(c) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(8192);
    for (;;) {
      stream.expires_after(std::chrono::seconds(30));
      http::request_parser<http::string_body> parser;
      parser.header_limit(8192);
      parser.body_limit(4096);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec) break;
      auto res = handle_admin_request(parser.get(), sources);
      bool keep = res.keep_alive();
      auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
      if (wec || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        spdlog::warn("admin: accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(ioc, serve(std::move(socket)), asio::detached);
    }
  }
};

admin_server::admin_server(asio::io_context& ioc, admin_sources sources)
    : impl_(std::make_unique<impl>(ioc, std::move(sources))) {}

admin_server::~admin_server() = default;

boost::system::error_code admin_server::start(const std::string& listen) {
  tcp::endpoint ep;
  if (auto ec = resolve_listen(listen, ep)) return ec;
  boost::system::error_code ec;
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
  return {};
}

unsigned short admin_server::local_port() const {
  boost::system::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void admin_server::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace wharf::edge
