#include "state/redis/redis_connection.h"

#include "config/config.h"
#include "state/session_store.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <array>
#include <stdexcept>

namespace wharf::state {

namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

redis_tls make_redis_tls(const config::redis_tls_config& cfg, bool enabled) {
  redis_tls out;
  if (!enabled) return out;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  auto use = [](const char* key, const std::string& path, auto&& load) {
    boost::system::error_code ec;
    load(ec);
    if (ec) throw std::runtime_error("redis.tls." + std::string(key) + ": cannot use '" + path + "': " + ec.message());
  };
  if (cfg.ca_file.empty()) {
    use("ca_file", "(system CAs)", [&](boost::system::error_code& ec) { ctx->set_default_verify_paths(ec); });
  } else {
    use("ca_file", cfg.ca_file, [&](boost::system::error_code& ec) { ctx->load_verify_file(cfg.ca_file, ec); });
  }
  if (!cfg.cert_file.empty()) {
    use("cert_file", cfg.cert_file,
        [&](boost::system::error_code& ec) { ctx->use_certificate_chain_file(cfg.cert_file, ec); });
    use("key_file", cfg.key_file,
        [&](boost::system::error_code& ec) { ctx->use_private_key_file(cfg.key_file, ssl::context::pem, ec); });
  }
  ctx->set_verify_mode(cfg.verify ? ssl::verify_peer : ssl::verify_none);
  out.context = std::move(ctx);
  out.server_name = cfg.server_name;
  out.verify = cfg.verify;
  return out;
}

// The byte stream under the protocol: plain TCP or TLS over TCP.
struct redis_connection::transport {
  transport(const strand_type& strand, ssl::context* ctx) : resolver(strand) {
    if (ctx != nullptr)
      tls.emplace(strand, *ctx);
    else
      plain.emplace(strand);
  }
  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
  template <class F>
  void with_stream(F&& f) {
    if (tls)
      f(*tls);
    else
      f(*plain);
  }
  tcp::resolver resolver;
  std::optional<tcp::socket> plain;
  std::optional<ssl::stream<tcp::socket>> tls;
  std::array<char, 16384> buffer{};
};

redis_reply copy_reply(const void* hiredis_reply) {
  const auto* r = static_cast<const redisReply*>(hiredis_reply);
  redis_reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = redis_reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis_reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis_reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = redis_reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
      break;
    default:
      out.type = redis_reply::kind::nil;
      break;
  }
  return out;
}

struct redis_connection::pending {
  reply_handler handler;
  std::unique_ptr<boost::asio::steady_timer> timer;
  bool done = false;
};

std::shared_ptr<redis_connection> redis_connection::create(strand_type strand, std::string name, redis_tls tls) {
  return std::shared_ptr<redis_connection>(new redis_connection(std::move(strand), std::move(name), std::move(tls)));
}

redis_connection::redis_connection(strand_type strand, std::string name, redis_tls tls)
    : strand_(std::move(strand)), name_(std::move(name)), tls_(std::move(tls)) {}

redis_connection::~redis_connection() {
  close();
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void redis_connection::close() {
  closing_ = true;
  established_ = false;
  // These capture their owner; dropping them breaks the cycles.
  on_closed_ = nullptr;
  on_message_ = nullptr;
  if (connect_timer_) connect_timer_->cancel();
  if (io_) {
    boost::system::error_code ignored;
    io_->resolver.cancel();
    io_->socket().close(ignored);  // outstanding operations end with operation_aborted
  }
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& p : pending) {
    if (p->done) continue;
    p->done = true;
    if (p->timer) p->timer->cancel();
    boost::asio::post(strand_, [h = std::move(p->handler)] { h(store_error::unavailable); });
  }
  if (ready_) {
    boost::asio::post(strand_, [h = std::move(ready_)] { h(store_error::unavailable); });
    ready_ = nullptr;
  }
  if (subscribed_) {
    boost::asio::post(strand_, [h = std::move(subscribed_)] { h(store_error::unavailable); });
    subscribed_ = nullptr;
  }
}

void redis_connection::lost() {
  // The connection is dead or must be treated so (timeout): close it and tell the owner.
  const bool notify = !closing_;
  auto on_closed = std::move(on_closed_);
  on_closed_ = nullptr;
  close();
  if (notify && on_closed) boost::asio::post(strand_, std::move(on_closed));
}

void redis_connection::fail_connect(const char* step, boost::system::error_code ec) {
  if (closing_ || !ready_) return;
  std::string reason = ec.message();
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    // OpenSSL's own words, e.g. "certificate verify failed".
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    reason = buf;
    if (io_ && io_->tls) {
      const long verify = SSL_get_verify_result(io_->tls->native_handle());
      if (verify != X509_V_OK) reason += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
  }
  spdlog::warn("redis: {} to {}:{} failed at {}: {}", name_, host_, port_, step, reason);
  auto h = std::move(ready_);
  ready_ = nullptr;
  on_closed_ = nullptr;
  close();
  boost::asio::post(strand_, [h = std::move(h)] { h(store_error::unavailable); });
}

void redis_connection::connect(const std::string& host, std::uint16_t port, const std::string& password,
                               std::chrono::milliseconds timeout, ready_handler ready,
                               std::function<void()> on_closed) {
  host_ = host;
  port_ = port;
  password_ = password;
  ready_ = std::move(ready);
  on_closed_ = std::move(on_closed);
  connect_timeout_ = timeout;
  reader_ = redisReaderCreate();
  io_ = std::make_unique<transport>(strand_, tls_.context.get());
  connect_timer_ = std::make_shared<boost::asio::steady_timer>(strand_, timeout);
  std::weak_ptr<redis_connection> weak = weak_from_this();
  connect_timer_->async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->ready_) return;
    spdlog::warn("redis: {} to {}:{} timed out while connecting", self->name_, self->host_, self->port_);
    auto h = std::move(self->ready_);
    self->ready_ = nullptr;
    self->on_closed_ = nullptr;
    self->close();
    h(store_error::timeout);
  });
  io_->resolver.async_resolve(
      host, std::to_string(port),
      [self = shared_from_this()](boost::system::error_code ec, const tcp::resolver::results_type& results) {
        if (self->closing_) return;
        if (ec) return self->fail_connect("resolving the host", ec);
        boost::asio::async_connect(
            self->io_->socket(), results, [self](boost::system::error_code ec2, const tcp::endpoint&) {
              if (self->closing_) return;
              if (ec2) return self->fail_connect("TCP connect", ec2);
              boost::system::error_code ignored;
              self->io_->socket().set_option(tcp::no_delay(true), ignored);
              if (!self->io_->tls) return self->on_transport_ready();
              SSL* ssl_handle = self->io_->tls->native_handle();
              const std::string& name = self->tls_.server_name.empty() ? self->host_ : self->tls_.server_name;
              boost::system::error_code not_ip;
              (void)boost::asio::ip::make_address(name, not_ip);
              if (not_ip) SSL_set_tlsext_host_name(ssl_handle, name.c_str());
              if (self->tls_.verify) {
                X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
                if (not_ip)
                  SSL_set1_host(ssl_handle, name.c_str());
                else
                  X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
              }
              self->io_->tls->async_handshake(ssl::stream_base::client, [self](boost::system::error_code ec3) {
                if (self->closing_) return;
                if (ec3) return self->fail_connect("TLS handshake", ec3);
                self->on_transport_ready();
              });
            });
      });
}

void redis_connection::on_transport_ready() {
  established_ = true;
  start_read();
  auto finish = [weak = weak_from_this()](boost::system::error_code ec) {
    auto s = weak.lock();
    if (!s || !s->ready_) return;
    if (s->connect_timer_) s->connect_timer_->cancel();
    auto h = std::move(s->ready_);
    s->ready_ = nullptr;
    if (ec) {
      s->on_closed_ = nullptr;
      s->close();
    }
    h(ec);
  };
  if (password_.empty()) {
    boost::asio::post(strand_, [finish] { finish({}); });
    return;
  }
  command({"AUTH", password_}, connect_timeout_,
          [finish, weak = weak_from_this()](boost::system::result<redis_reply> r) {
            if (!r) return finish(r.error());
            if (r->is_error()) {
              if (auto s = weak.lock())
                spdlog::warn("redis: {} to {}:{}: AUTH refused: {}", s->name_, s->host_, s->port_, r->str);
              return finish(store_error::unavailable);
            }
            finish({});
          });
}

void redis_connection::enqueue(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> argvlen;
  argv.reserve(args.size());
  argvlen.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  char* cmd = nullptr;
  const int len = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), argvlen.data());
  if (len > 0) out_.append(cmd, static_cast<std::size_t>(len));
  redisFreeCommand(cmd);
  start_write();
}

void redis_connection::start_write() {
  if (writing_ || out_.empty() || closing_ || !established_) return;
  writing_ = true;
  in_write_.clear();
  in_write_.swap(out_);  // everything queued so far goes in one write
  io_->with_stream([&](auto& stream) {
    boost::asio::async_write(stream, boost::asio::buffer(in_write_),
                             [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                               self->writing_ = false;
                               if (self->closing_) return;
                               if (ec) return self->lost();
                               self->start_write();
                             });
  });
}

void redis_connection::start_read() {
  io_->with_stream([&](auto& stream) {
    stream.async_read_some(
        boost::asio::buffer(io_->buffer), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (self->closing_) return;
          if (ec) {
            if (ec != boost::asio::error::eof)
              spdlog::warn("redis: {} to {}:{} read failed: {}", self->name_, self->host_, self->port_, ec.message());
            return self->lost();
          }
          self->on_data(n);
        });
  });
}

// Bytes of one unfinished reply the reader may hold: Redis' own default
// proto-max-bulk-len, above any will or subscription list the store keeps.
constexpr std::size_t max_reply_bytes = 512u << 20;

void redis_connection::on_data(std::size_t n) {
  if (redisReaderFeed(reader_, io_->buffer.data(), n) != REDIS_OK) {
    spdlog::warn("redis: {} to {}:{}: {}", name_, host_, port_, reader_->errstr);
    return lost();
  }
  if (reader_->len > max_reply_bytes) {
    spdlog::warn("redis: {} to {}:{}: a reply over {} bytes; closing", name_, host_, port_, max_reply_bytes);
    return lost();
  }
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
      spdlog::warn("redis: {} to {}:{}: protocol error: {}", name_, host_, port_, reader_->errstr);
      return lost();
    }
    if (reply == nullptr) break;
    redis_reply r = copy_reply(reply);
    freeReplyObject(reply);
    dispatch(std::move(r));
    if (closing_) return;
  }
  start_read();
}

void redis_connection::dispatch(redis_reply r) {
  if (subscribed_mode_) {
    if (r.type != redis_reply::kind::array || r.elements.size() < 3) return;
    const std::string& kind = r.elements[0].str;
    if (kind == "subscribe") {
      if (connect_timer_) connect_timer_->cancel();
      if (subscribed_) {
        boost::asio::post(strand_, [h = std::move(subscribed_)] { h({}); });
        subscribed_ = nullptr;
      }
    } else if (kind == "message" && on_message_) {
      boost::asio::post(strand_, [h = on_message_, channel = std::move(r.elements[1].str),
                                  message = std::move(r.elements[2].str)] { h(channel, message); });
    }
    return;
  }
  if (pending_.empty()) {
    spdlog::warn("redis: {} to {}:{}: a reply nobody asked for; closing", name_, host_, port_);
    return lost();
  }
  auto p = std::move(pending_.front());
  pending_.pop_front();
  if (p->done) return;  // timed out; the connection is being closed anyway
  p->done = true;
  p->timer->cancel();
  boost::asio::post(strand_, [h = std::move(p->handler), r = std::move(r)]() mutable { h(std::move(r)); });
}

void redis_connection::command(std::vector<std::string> args, std::chrono::milliseconds timeout, reply_handler h) {
  if (!established_ || closing_ || subscribed_mode_) {
    boost::asio::post(strand_, [h = std::move(h)] { h(store_error::unavailable); });
    return;
  }
  auto p = std::make_shared<pending>();
  p->handler = std::move(h);
  p->timer = std::make_unique<boost::asio::steady_timer>(strand_, timeout);
  pending_.push_back(p);
  enqueue(args);
  std::weak_ptr<redis_connection> weak = weak_from_this();
  std::weak_ptr<pending> wp = p;
  p->timer->async_wait([weak, wp](boost::system::error_code ec) {
    auto pp = wp.lock();
    if (ec || !pp || pp->done) return;
    pp->done = true;
    pp->handler(store_error::timeout);
    if (auto self = weak.lock()) self->lost();
  });
}

void redis_connection::subscribe(std::string channel, std::chrono::milliseconds timeout, ready_handler subscribed,
                                 message_handler on_message) {
  if (!established_ || closing_ || subscribed_mode_ || !pending_.empty()) {
    boost::asio::post(strand_, [h = std::move(subscribed)] { h(store_error::unavailable); });
    return;
  }
  channel_ = std::move(channel);
  subscribed_ = std::move(subscribed);
  on_message_ = std::move(on_message);
  subscribed_mode_ = true;
  enqueue({"SUBSCRIBE", channel_});
  connect_timer_ = std::make_shared<boost::asio::steady_timer>(strand_, timeout);
  std::weak_ptr<redis_connection> weak = weak_from_this();
  connect_timer_->async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->subscribed_) return;
    auto h = std::move(self->subscribed_);
    self->subscribed_ = nullptr;
    h(store_error::timeout);
    self->lost();
  });
}

}  // namespace wharf::state
