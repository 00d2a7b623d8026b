// One asynchronous hiredis connection driven by Asio.
//
// hiredis 0.14 has no Asio adapter: this one watches the context's socket
// with posix::stream_descriptor::async_wait (read and write readiness) and
// calls redisAsyncHandleRead/Write, all on the strand given at creation.
// Every member function must be called on that strand.
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
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct redisAsyncContext;

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

class redis_connection : public std::enable_shared_from_this<redis_connection> {
 public:
  using reply_handler = std::function<void(boost::system::result<redis_reply>)>;
  using ready_handler = std::function<void(boost::system::error_code)>;
  using message_handler = std::function<void(const std::string& channel, const std::string& message)>;

  static std::shared_ptr<redis_connection> create(strand_type strand, std::string name);
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

  bool connected() const noexcept { return context_ != nullptr && established_; }
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  const std::string& name() const noexcept { return name_; }

 private:
  struct pending;
  redis_connection(strand_type strand, std::string name);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_message(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  void lost();

  strand_type strand_;
  std::string name_;
  std::string host_;
  std::uint16_t port_ = 0;
  redisAsyncContext* context_ = nullptr;
  bool established_ = false;
  bool closing_ = false;
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
