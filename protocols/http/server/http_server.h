// The HTTP ingest server: Boost.Beast over C++20 coroutines, one coroutine
// per connection (co_spawn on a strand; the frame owns the stream). Requests
// on a connection are answered in order, one at a time (pipelined requests
// wait in the read buffer and the socket). For each request it runs the pure
// request_handler, hands the records to a sink, waits for every completion up
// to http.request_timeout and writes the answer (200/202 only when all are
// stored). Waiting never blocks a thread: other connections go on.
//
// Sinks: `kafka` for sync requests (completion = PERSISTED, acks=all), `wal`
// for async ones (completion = fsync'd); wal == nullptr disables 202 mode
// (Prefer: respond-async is then ignored, as RFC 7240 allows).
//
// Lifecycle: start() binds http.listen (and http.tls.listen when set);
// stop_accepting() closes the listeners; async_drain() also lets requests in
// progress finish (their answers carry Connection: close), closes idle
// connections and, at the deadline, everything; stop() closes everything now.
#pragma once

#include "config/config.h"
#include "sinks/sink.h"

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
}

namespace wharf::http {

class http_server {
 public:
  // Throws std::runtime_error (naming the key) when a JSON Schema, JWT key or
  // TLS file cannot be loaded.
  http_server(boost::asio::io_context& ioc, const config::http_config& cfg, sinks::sink& kafka, sinks::sink* wal,
              std::string node_id, prometheus::Registry& registry);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds and starts accepting. Returns the bind/listen error, if any.
  boost::system::error_code start();
  std::uint16_t local_port() const noexcept;      // plain listener (0 if none)
  std::uint16_t tls_local_port() const noexcept;  // TLS listener (0 if none)
  std::size_t connection_count() const noexcept;

  void stop_accepting();
  // `done` is posted to the io_context once every connection has closed.
  void async_drain(std::chrono::milliseconds deadline, std::function<void()> done);
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace wharf::http
