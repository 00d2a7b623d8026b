// The MQTT server: drives one `connection_machine` per connection over Asio
// sockets (plain TCP and TLS), authenticates CONNECTs, keeps sessions
// through the `session_store`, and hands every PUBLISH to the `sink`.
//
// Acknowledgements come only from the sink: a QoS 1 PUBACK / QoS 2 PUBREC
// is released when the sink's completion says `stored` (and, for QoS 2,
// after the session store replicated the held packet id). A sink failure
// closes the connection without an acknowledgement so the device re-sends.
//
// Threads: one acceptor per io_context on the same port (SO_REUSEPORT); a
// connection lives on the io_context that accepted it and every completion
// for it is posted there. Back-pressure: a connection stops reading while
// its machine's window is full, while the node-wide in-flight byte budget is
// spent, or while the sink's queue is full.
#pragma once

#include "config/config.h"

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}
namespace wharf::sinks {
class sink;
}
namespace wharf::state {
class session_store;
}

namespace wharf::mqtt {

class mqtt_server {
 public:
  // Throws std::runtime_error for start-up problems (unreadable password
  // file, TLS key) with a message naming the file.
  mqtt_server(std::vector<boost::asio::io_context*> contexts, const config::mqtt_config& cfg, std::string node_id,
              sinks::sink& sink, state::session_store& store, prometheus::Registry& registry);
  ~mqtt_server();

  // Binds `mqtt.listen` and `mqtt.tls.listen` (when set) and accepts.
  boost::system::error_code start();
  unsigned short port() const;      // 0 when plain MQTT is off
  unsigned short tls_port() const;  // 0 when TLS is off

  std::size_t connection_count() const;

  // Copies the per-message counters (kept per io thread, so a message costs
  // no shared atomic) into the Prometheus registry. Call before a scrape.
  void refresh_metrics();
  std::vector<std::string> kafka_topics() const;

  // Stops accepting, then closes every connection, spread over `duration`
  // with jitter: reading stops, acknowledgements in flight are written,
  // then MQTT 5 clients get DISCONNECT 0x8B (0x9C with `server_reference`)
  // and 3.1.1 connections are closed. `done` runs (on an io_context) when
  // every connection is gone or `duration` + `grace` has passed.
  void drain(std::chrono::milliseconds duration, std::chrono::milliseconds grace, std::string server_reference,
             std::function<void()> done);

  // Stops accepting and closes what is left at once.
  void stop();

  struct impl;  // defined in mqtt_server.cpp, shared with its connections

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace wharf::mqtt
