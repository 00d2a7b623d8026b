// One Redis connection on Asio, over TCP or TLS.
//
// Asio owns the socket (resolver, tcp::socket, ssl::stream); hiredis is the
// protocol library only: commands are encoded with redisFormatCommandArgv and
// replies decoded with a redisReader. Replies come back in order, so a queue
// of pending commands matches them. Commands queued while a write is in
// flight go out together in the next write. Everything runs on the strand
// given at creation; every member function must be called on it.
//
// Every command has a deadline. When it passes, the command's handler gets
// store_error::timeout and the connection is closed (a Redis that does not
// answer is treated as gone), which fails the other pending commands with
// store_error::unavailable. Handlers run on the strand.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct redisReader;

namespace boost::asio::ssl {
class context;
}
namespace wharf::config {
struct redis_tls_config;
}

namespace wharf::state {

// A reply copied out of hiredis.
struct redis_reply {
  enum class kind : std::uint8_t { nil, status, error, integer, string, array };
  kind type = kind::nil;
  std::string str;  // status, error, string
  long long integer = 0;
  std::vector<redis_reply> elements;

  bool is_error() const noexcept { return type == kind::error; }
  bool error_starts_with(std::string_view prefix) const noexcept {
    return type == kind::error && std::string_view(str).starts_with(prefix);
  }
};

using strand_type = boost::asio::strand<boost::asio::io_context::executor_type>;

// How to reach servers over TLS. No context: plain TCP.
struct redis_tls {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::string server_name;  // SNI and the name checked; "" = the host connected to
  bool verify = true;
};

// Builds the TLS settings from redis.tls (`enabled` may come from rediss://).
// Throws std::runtime_error naming the key when a file cannot be used.
redis_tls make_redis_tls(const config::redis_tls_config& cfg, bool enabled);

class redis_connection : public std::enable_shared_from_this<redis_connection> {
 public:
  using reply_handler = std::function<void(boost::system::result<redis_reply>)>;
  using ready_handler = std::function<void(boost::system::error_code)>;
  using message_handler = std::function<void(const std::string& channel, const std::string& message)>;

  static std::shared_ptr<redis_connection> create(strand_type strand, std::string name, redis_tls tls = {});
  ~redis_connection();

  // Connects, sends AUTH when `password` is not empty, then calls `ready`
  // (error: store_error::unavailable or timeout). `on_closed` fires once
  // when an established connection is lost or closed by a timeout.
  void connect(const std::string& host, std::uint16_t port, const std::string& password,
               std::chrono::milliseconds timeout, ready_handler ready, std::function<void()> on_closed);

  // Sends one command; `h` gets the reply (an error reply is a reply, not an
  // error code), or unavailable / timeout.
  void command(std::vector<std::string> args, std::chrono::milliseconds timeout, reply_handler h);

  // Subscribes (the connection is in Pub/Sub mode afterwards: no commands).
  // `subscribed` fires once with the outcome; `on_message` for each message.
  void subscribe(std::string channel, std::chrono::milliseconds timeout, ready_handler subscribed,
                 message_handler on_message);

  // Closes now: pending handlers get store_error::unavailable; on_closed does not fire.
  void close();

  bool connected() const noexcept { return established_ && !closing_; }
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  const std::string& name() const noexcept { return name_; }

 private:
  struct pending;
  struct transport;
  redis_connection(strand_type strand, std::string name, redis_tls tls);
  void fail_connect(const char* step, boost::system::error_code ec);
  void on_transport_ready();
  void enqueue(const std::vector<std::string>& args);
  void start_write();
  void start_read();
  void on_data(std::size_t n);
  void dispatch(redis_reply r);
  void lost();

  strand_type strand_;
  std::string name_;
  redis_tls tls_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::unique_ptr<transport> io_;
  redisReader* reader_ = nullptr;
  bool established_ = false;
  bool closing_ = false;
  bool writing_ = false;
  bool subscribed_mode_ = false;
  std::string out_;       // encoded commands not yet handed to a write
  std::string in_write_;  // the bytes of the write in flight
  std::deque<std::shared_ptr<pending>> pending_;
  std::string password_;
  std::chrono::milliseconds connect_timeout_{};
  std::shared_ptr<boost::asio::steady_timer> connect_timer_;
  ready_handler ready_;
  std::function<void()> on_closed_;
  message_handler on_message_;
  ready_handler subscribed_;
  std::string channel_;
};

redis_reply copy_reply(const void* hiredis_reply);

}  // namespace wharf::state
