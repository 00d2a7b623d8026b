#include "state/redis/redis_connection.h"

#include "state/session_store.h"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace wharf::state {
namespace {

// The Asio side of one redisAsyncContext. hiredis owns the socket; we only
// wait for readiness. Shared with pending async_waits so that hiredis may
// free the context (cleanup hook) while a wait is outstanding.
struct asio_events {
  asio_events(strand_type strand, int fd, redisAsyncContext* ac) : context(ac), descriptor(strand, fd) {}
  redisAsyncContext* context;
  boost::asio::posix::stream_descriptor descriptor;
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
};

struct events_holder {
  std::shared_ptr<asio_events> events;
};

void arm_read(const std::shared_ptr<asio_events>& p);
void arm_write(const std::shared_ptr<asio_events>& p);

void arm_read(const std::shared_ptr<asio_events>& p) {
  if (p->reading || !p->want_read || p->context == nullptr) return;
  p->reading = true;
  p->descriptor.async_wait(boost::asio::posix::descriptor_base::wait_read, [p](boost::system::error_code ec) {
    p->reading = false;
    if (ec || p->context == nullptr || !p->want_read) return;
    redisAsyncHandleRead(p->context);
    arm_read(p);
  });
}

void arm_write(const std::shared_ptr<asio_events>& p) {
  if (p->writing || !p->want_write || p->context == nullptr) return;
  p->writing = true;
  p->descriptor.async_wait(boost::asio::posix::descriptor_base::wait_write, [p](boost::system::error_code ec) {
    p->writing = false;
    if (ec || p->context == nullptr || !p->want_write) return;
    redisAsyncHandleWrite(p->context);
    arm_write(p);
  });
}

void add_read(void* privdata) {
  auto& p = static_cast<events_holder*>(privdata)->events;
  p->want_read = true;
  arm_read(p);
}
void del_read(void* privdata) { static_cast<events_holder*>(privdata)->events->want_read = false; }
void add_write(void* privdata) {
  auto& p = static_cast<events_holder*>(privdata)->events;
  p->want_write = true;
  arm_write(p);
}
void del_write(void* privdata) { static_cast<events_holder*>(privdata)->events->want_write = false; }
void cleanup(void* privdata) {
  auto* holder = static_cast<events_holder*>(privdata);
  auto& p = holder->events;
  p->context = nullptr;
  p->want_read = p->want_write = false;
  // hiredis closes the socket itself: give it back without closing it.
  // release() also aborts the outstanding waits.
  (void)p->descriptor.release();
  delete holder;
}

void attach(redisAsyncContext* ac, strand_type strand) {
  auto* holder = new events_holder{std::make_shared<asio_events>(strand, ac->c.fd, ac)};
  ac->ev.data = holder;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
}

}  // namespace

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

std::shared_ptr<redis_connection> redis_connection::create(strand_type strand, std::string name) {
  return std::shared_ptr<redis_connection>(new redis_connection(std::move(strand), std::move(name)));
}

redis_connection::redis_connection(strand_type strand, std::string name)
    : strand_(std::move(strand)), name_(std::move(name)) {}

redis_connection::~redis_connection() { close(); }

void redis_connection::close() {
  closing_ = true;
  // These capture their owner; dropping them breaks the cycles.
  on_closed_ = nullptr;
  on_message_ = nullptr;
  if (connect_timer_) connect_timer_->cancel();
  if (context_ != nullptr) {
    auto* ac = context_;
    context_ = nullptr;
    established_ = false;
    redisAsyncFree(ac);  // runs every pending callback with a NULL reply
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
  // The connection is dead or must be treated so (timeout): free it and tell the owner.
  const bool notify = !closing_;
  auto on_closed = std::move(on_closed_);
  on_closed_ = nullptr;
  close();
  if (notify && on_closed) boost::asio::post(strand_, std::move(on_closed));
}

void redis_connection::connect(const std::string& host, std::uint16_t port, const std::string& password,
                               std::chrono::milliseconds timeout, ready_handler ready,
                               std::function<void()> on_closed) {
  host_ = host;
  port_ = port;
  password_ = password;
  ready_ = std::move(ready);
  on_closed_ = std::move(on_closed);
  redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
  if (ac == nullptr || ac->err) {
    if (ac != nullptr) redisAsyncFree(ac);
    boost::asio::post(strand_, [h = std::move(ready_)] { h(store_error::unavailable); });
    ready_ = nullptr;
    on_closed_ = nullptr;
    return;
  }
  context_ = ac;
  ac->data = this;
  attach(ac, strand_);
  redisAsyncSetConnectCallback(ac, &redis_connection::on_connect);
  redisAsyncSetDisconnectCallback(ac, &redis_connection::on_disconnect);
  connect_timer_ = std::make_shared<boost::asio::steady_timer>(strand_, timeout);
  std::weak_ptr<redis_connection> weak = weak_from_this();
  connect_timer_->async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->ready_) return;
    auto h = std::move(self->ready_);
    self->ready_ = nullptr;
    self->on_closed_ = nullptr;
    self->close();
    h(store_error::timeout);
  });
  connect_timeout_ = timeout;
}

void redis_connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_connection*>(ac->data);
  if (self == nullptr || self->closing_) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    self->context_ = nullptr;
    self->on_closed_ = nullptr;
    if (self->connect_timer_) self->connect_timer_->cancel();
    if (self->ready_) {
      boost::asio::post(self->strand_, [h = std::move(self->ready_)] { h(store_error::unavailable); });
      self->ready_ = nullptr;
    }
    return;
  }
  self->established_ = true;
  auto finish = [weak = self->weak_from_this()](boost::system::error_code ec) {
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
  if (self->password_.empty()) {
    boost::asio::post(self->strand_, [finish] { finish({}); });
    return;
  }
  self->command({"AUTH", self->password_}, self->connect_timeout_, [finish](boost::system::result<redis_reply> r) {
    if (!r) return finish(r.error());
    finish(r->is_error() ? boost::system::error_code(store_error::unavailable) : boost::system::error_code{});
  });
}

void redis_connection::on_disconnect(const redisAsyncContext* ac, int /*status*/) {
  auto* self = static_cast<redis_connection*>(ac->data);
  if (self == nullptr) return;
  // hiredis frees the context after this callback.
  self->context_ = nullptr;
  self->established_ = false;
  if (!self->closing_) self->lost();
}

void redis_connection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* holder = static_cast<std::shared_ptr<pending>*>(privdata);
  std::shared_ptr<pending> p = std::move(*holder);
  delete holder;
  if (p->done) return;
  p->done = true;
  p->timer->cancel();
  auto* self = static_cast<redis_connection*>(ac->data);
  boost::system::result<redis_reply> r = reply != nullptr
                                             ? boost::system::result<redis_reply>(copy_reply(reply))
                                             : boost::system::result<redis_reply>(store_error::unavailable);
  boost::asio::post(self->strand_, [h = std::move(p->handler), r = std::move(r)]() mutable { h(std::move(r)); });
}

void redis_connection::command(std::vector<std::string> args, std::chrono::milliseconds timeout, reply_handler h) {
  if (context_ == nullptr || !established_) {
    boost::asio::post(strand_, [h = std::move(h)] { h(store_error::unavailable); });
    return;
  }
  auto p = std::make_shared<pending>();
  p->handler = std::move(h);
  p->timer = std::make_unique<boost::asio::steady_timer>(strand_, timeout);
  std::vector<const char*> argv;
  std::vector<std::size_t> argvlen;
  argv.reserve(args.size());
  argvlen.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  auto* holder = new std::shared_ptr<pending>(p);
  if (redisAsyncCommandArgv(context_, &redis_connection::on_reply, holder, static_cast<int>(argv.size()), argv.data(),
                            argvlen.data()) != REDIS_OK) {
    delete holder;
    p->done = true;
    boost::asio::post(strand_, [h = std::move(p->handler)] { h(store_error::unavailable); });
    return;
  }
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

void redis_connection::on_message(redisAsyncContext* ac, void* reply, void* /*privdata*/) {
  auto* self = static_cast<redis_connection*>(ac->data);
  if (self == nullptr || self->closing_ || reply == nullptr) return;
  redis_reply r = copy_reply(reply);
  if (r.type != redis_reply::kind::array || r.elements.size() < 3) return;
  const std::string& kind = r.elements[0].str;
  if (kind == "subscribe") {
    if (self->connect_timer_) self->connect_timer_->cancel();
    if (self->subscribed_) {
      boost::asio::post(self->strand_, [h = std::move(self->subscribed_)] { h({}); });
      self->subscribed_ = nullptr;
    }
  } else if (kind == "message" && self->on_message_) {
    boost::asio::post(self->strand_, [h = self->on_message_, channel = r.elements[1].str, message = r.elements[2].str] {
      h(channel, message);
    });
  }
}

void redis_connection::subscribe(std::string channel, std::chrono::milliseconds timeout, ready_handler subscribed,
                                 message_handler on_message) {
  if (context_ == nullptr || !established_) {
    boost::asio::post(strand_, [h = std::move(subscribed)] { h(store_error::unavailable); });
    return;
  }
  channel_ = std::move(channel);
  subscribed_ = std::move(subscribed);
  on_message_ = std::move(on_message);
  const char* argv[] = {"SUBSCRIBE", channel_.c_str()};
  const std::size_t argvlen[] = {9, channel_.size()};
  if (redisAsyncCommandArgv(context_, &redis_connection::on_message, this, 2, argv, argvlen) != REDIS_OK) {
    boost::asio::post(strand_, [h = std::move(subscribed_)] { h(store_error::unavailable); });
    subscribed_ = nullptr;
    return;
  }
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
