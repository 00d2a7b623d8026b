// The admin HTTP server (/livez, /readyz, /metrics) on Beast. Small and
// separate from the ingest API so probes keep answering while ingest is busy.
#pragma once

#include "edge/admin_handler.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <string>

namespace wharf::edge {

class admin_server {
 public:
  admin_server(boost::asio::io_context& ioc, admin_sources sources);
  ~admin_server();

  // Binds and starts accepting on "HOST:PORT". Returns the bind error, if any.
  boost::system::error_code start(const std::string& listen);
  unsigned short local_port() const;
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Splits "HOST:PORT" (IPv6 as "[::1]:8081") into an endpoint.
boost::system::error_code resolve_listen(const std::string& listen, boost::asio::ip::tcp::endpoint& out);

}  // namespace wharf::edge
