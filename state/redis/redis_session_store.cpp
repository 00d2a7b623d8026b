#include "state/redis/redis_session_store.h"

#include "config/config.h"
#include "state/redis/redis_connection.h"
#include "state/redis/redis_scripts.h"
#include "state/store_metrics.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <optional>

namespace wharf::state {
namespace {

using clock = std::chrono::steady_clock;
using replies = std::vector<redis_reply>;

template <class T>
void complete(const boost::asio::any_io_executor& ex, std::function<void(boost::system::result<T>)> h,
              boost::system::result<T> r) {
  boost::asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { h(std::move(r)); });
}

void complete(const boost::asio::any_io_executor& ex, done_handler h, boost::system::error_code ec) {
  boost::asio::post(ex, [h = std::move(h), ec] { h(ec); });
}

std::uint64_t to_u64(const redis_reply& r) {
  if (r.type == redis_reply::kind::integer) return static_cast<std::uint64_t>(r.integer);
  std::uint64_t v = 0;
  std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
  return v;
}

bool is_array(const redis_reply& r, std::size_t min_size) {
  return r.type == redis_reply::kind::array && r.elements.size() >= min_size;
}

// {wt, wp, wq, wr, wx, wd} as the scripts return it; empty array = no will.
std::optional<will_message> will_from(const redis_reply& r) {
  if (!is_array(r, 6) || r.elements[0].type == redis_reply::kind::nil) return std::nullopt;
  will_message w;
  w.topic = r.elements[0].str;
  w.payload = r.elements[1].str;
  w.qos = static_cast<std::uint8_t>(to_u64(r.elements[2]));
  w.retain = to_u64(r.elements[3]) != 0;
  w.properties = r.elements[4].str;
  w.delay_seconds = static_cast<std::uint32_t>(to_u64(r.elements[5]));
  return w;
}

}  // namespace

class redis_session_store::impl : public std::enable_shared_from_this<impl> {
 public:
  impl(const config::redis_config& cfg, redis_target target, std::string node_id, boost::asio::io_context& io,
       prometheus::Registry& registry, std::string key_prefix)
      : cfg_(cfg),
        target_(std::move(target)),
        node_id_(std::move(node_id)),
        prefix_(std::move(key_prefix)),
        scripts_(scripts::make_scripts(prefix_)),
        strand_(boost::asio::make_strand(io)),
        metrics_(registry),
        retry_timer_(strand_),
        heartbeat_timer_(strand_),
        takeover_executor_(io.get_executor()),
        tls_(make_redis_tls(cfg_.tls, cfg_.tls.enabled || target_.tls)) {
    if (!cfg_.password.empty())
      password_ = cfg_.password;
    else
      password_ = target_.password;
  }

  void start() {
    metrics_.primary_up(false);
    boost::asio::post(strand_, [self = shared_from_this()] {
      // First of all: sessions an earlier run of this node id left behind.
      self->reap_own_leftovers();
      self->heartbeat_tick();
    });
  }

  // Sessions one start-up, shutdown or sweep script handles: small enough
  // that a script never holds Redis for long, even on a loaded machine.
  static constexpr const char* batch = "200";

  void reap_own_leftovers() {
    run_script("start", scripts_.start, {node_id_, std::to_string(cfg_.node_ttl.count()), batch}, false,
               [self = shared_from_this()](boost::system::result<redis_reply> r) {
                 if (!r) {
                   spdlog::warn("redis: node start-up script failed: {}", r.error().message());
                 } else if (r->integer > 0 && !self->stopped_) {
                   self->reap_own_leftovers();
                 }
               });
  }

  void sweep_rounds(std::shared_ptr<sweep_result> acc, int round, boost::asio::any_io_executor ex,
                    handler<sweep_result> h);

  void shutdown_batches(boost::asio::any_io_executor ex, done_handler h) {
    run_script("shutdown", scripts_.shutdown, {node_id_, batch}, false,
               [self = shared_from_this(), ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                 if (r && r->integer > 0) return self->shutdown_batches(std::move(ex), std::move(h));
                 self->stop_now();
                 complete(ex, std::move(h), r ? boost::system::error_code{} : r.error());
               });
  }

  // ---- operations -------------------------------------------------------

  struct call {
    std::string name;
    std::vector<std::vector<std::string>> commands;
    bool wait = false;  // a WAIT reply follows the command replies
    std::function<void(boost::system::result<replies>)> done;
    clock::time_point started;
    clock::time_point deadline;
    std::unique_ptr<boost::asio::steady_timer> wait_timer;  // while no primary
    bool finished = false;
  };

  void exec(std::shared_ptr<call> c) {
    if (stopped_) return finish(*c, store_error::shutting_down);
    if (main_ready_) return send(std::move(c));
    waiting_.push_back(c);
    c->wait_timer = std::make_unique<boost::asio::steady_timer>(strand_, c->deadline);
    c->wait_timer->async_wait([self = shared_from_this(), c](boost::system::error_code ec) {
      if (ec || c->finished) return;
      self->metrics_.error("no_primary");
      self->finish(*c, store_error::unavailable);
    });
    ensure_connecting();
  }

  void send(std::shared_ptr<call> c) {
    if (c->finished) return;
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - clock::now());
    if (remaining.count() <= 0) return finish(*c, store_error::timeout);
    const std::size_t n = c->commands.size() + (c->wait ? 1 : 0);
    auto results = std::make_shared<replies>(n);
    auto outstanding = std::make_shared<std::size_t>(n);
    auto failed = std::make_shared<boost::system::error_code>();
    auto conn = main_;
    auto on_reply = [self = shared_from_this(), c, results, outstanding, failed](std::size_t i,
                                                                                 boost::system::result<redis_reply> r) {
      if (r)
        (*results)[i] = std::move(*r);
      else if (!*failed)
        *failed = r.error();
      if (--*outstanding != 0) return;
      if (*failed) {
        self->metrics_.error(*failed == store_error::timeout ? "timeout" : "connection");
        return self->finish(*c, *failed);
      }
      self->finish(*c, std::move(*results));
    };
    for (std::size_t i = 0; i < c->commands.size(); ++i) {
      ++commands_sent_;
      conn->command(c->commands[i], remaining,
                    [on_reply, i](boost::system::result<redis_reply> r) { on_reply(i, std::move(r)); });
    }
    if (c->wait) {
      join_wait(conn, [on_reply, i = n - 1](boost::system::result<redis_reply> r) { on_reply(i, std::move(r)); });
    }
  }

  // Group commit. WAIT covers every write sent before it on the same
  // connection, and Redis does not run a client's later commands while its
  // WAIT blocks. So one WAIT is in flight at a time; the writes sent
  // meanwhile share the next one. Under load many connects cost one WAIT.
  struct wait_batch {
    std::shared_ptr<redis_connection> conn;
    std::vector<std::function<void(boost::system::result<redis_reply>)>> waiters;
  };

  void join_wait(const std::shared_ptr<redis_connection>& conn,
                 std::function<void(boost::system::result<redis_reply>)> waiter) {
    if (wait_inflight_ && wait_inflight_->conn == conn) {
      if (!wait_next_ || wait_next_->conn != conn) {
        fail_batch(wait_next_);
        wait_next_ = std::make_shared<wait_batch>();
        wait_next_->conn = conn;
      }
      wait_next_->waiters.push_back(std::move(waiter));
      return;
    }
    fail_batch(wait_next_);
    wait_inflight_ = std::make_shared<wait_batch>();
    wait_inflight_->conn = conn;
    wait_inflight_->waiters.push_back(std::move(waiter));
    send_wait(wait_inflight_);
  }

  void send_wait(std::shared_ptr<wait_batch> b) {
    ++commands_sent_;
    ++waits_sent_;
    b->conn->command({"WAIT", std::to_string(cfg_.wait_replicas), std::to_string(cfg_.wait_timeout.count())},
                     cfg_.command_timeout, [self = shared_from_this(), b](boost::system::result<redis_reply> r) {
                       for (auto& w : b->waiters) w(r);
                       if (self->wait_inflight_ != b) return;
                       self->wait_inflight_.reset();
                       if (!r) return self->fail_batch(self->wait_next_);
                       if (self->wait_next_ && self->wait_next_->conn == b->conn) {
                         self->wait_inflight_ = std::move(self->wait_next_);
                         self->send_wait(self->wait_inflight_);
                       }
                     });
  }

  void fail_batch(std::shared_ptr<wait_batch>& b) {
    if (!b) return;
    auto waiters = std::move(b->waiters);
    b.reset();
    for (auto& w : waiters) w(boost::system::result<redis_reply>(store_error::unavailable));
  }

  void finish(call& c, boost::system::result<replies> r) {
    if (c.finished) return;
    c.finished = true;
    if (c.wait_timer) c.wait_timer->cancel();
    metrics_.command_seconds(c.name).Observe(std::chrono::duration<double>(clock::now() - c.started).count());
    auto done = std::move(c.done);
    done(std::move(r));
  }

  // Runs a script (EVALSHA, falling back to EVAL), followed by WAIT when
  // `wait` is set. On success `done` gets the script's reply alone; error
  // replies are turned into error codes here.
  void run_script(std::string name, const scripts::script& s, std::vector<std::string> args, bool wait,
                  std::function<void(boost::system::result<redis_reply>)> done) {
    auto c = std::make_shared<call>();
    c->name = std::move(name);
    c->started = clock::now();
    c->deadline = c->started + cfg_.command_timeout;
    std::vector<std::string> eval{"EVALSHA", s.sha1, "0"};
    eval.insert(eval.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
    c->commands.push_back(std::move(eval));
    const bool with_wait = wait && cfg_.wait_replicas > 0;
    c->wait = with_wait;
    c->done = [self = shared_from_this(), c_raw = c.get(), &s, with_wait,
               done = std::move(done)](boost::system::result<replies> r) mutable {
      if (!r) return done(r.error());
      auto& rs = *r;
      if (rs[0].error_starts_with("NOSCRIPT")) {
        // First use on this primary: send the source once, same deadline.
        auto again = std::make_shared<call>();
        again->name = c_raw->name;
        again->started = c_raw->started;
        again->deadline = c_raw->deadline;
        again->commands = c_raw->commands;
        again->wait = c_raw->wait;
        again->commands[0][0] = "EVAL";
        again->commands[0][1] = s.source;
        again->done = [self, with_wait, done = std::move(done)](boost::system::result<replies> r2) mutable {
          self->interpret(std::move(r2), with_wait, std::move(done));
        };
        return self->exec(std::move(again));
      }
      self->interpret(std::move(r), with_wait, std::move(done));
    };
    exec(std::move(c));
  }

  void interpret(boost::system::result<replies> r, bool with_wait,
                 const std::function<void(boost::system::result<redis_reply>)>& done) {
    if (!r) return done(r.error());
    auto& rs = *r;
    if (rs[0].is_error()) return done(classify(rs[0]));
    if (with_wait) {
      if (rs[1].is_error()) return done(classify(rs[1]));
      if (rs[1].type != redis_reply::kind::integer || rs[1].integer < static_cast<long long>(cfg_.wait_replicas)) {
        metrics_.error("not_replicated");
        return done(store_error::not_replicated);
      }
    }
    done(std::move(rs[0]));
  }

  boost::system::error_code classify(const redis_reply& e) {
    if (e.error_starts_with("FENCED")) {
      metrics_.error("fenced");
      return store_error::fenced;
    }
    if (e.error_starts_with("READONLY")) {
      // We talk to a replica: the primary moved. Find it again.
      metrics_.error("readonly");
      drop_primary();
      return store_error::unavailable;
    }
    if (e.error_starts_with("NOREPLICAS") || e.error_starts_with("LOADING") || e.error_starts_with("MASTERDOWN") ||
        e.error_starts_with("BUSY")) {
      metrics_.error("unavailable");
      return store_error::unavailable;
    }
    spdlog::warn("redis: unexpected error reply: {}", e.str);
    metrics_.error("reply");
    return store_error::bad_reply;
  }

  // ---- connection management -------------------------------------------

  void ensure_connecting() {
    if (connecting_ || main_ready_ || stopped_) return;
    connecting_ = true;
    ++attempt_;
    if (!target_.sentinel) return connect_primary(target_.endpoints.front());
    ask_sentinel(0, attempt_);
  }

  void ask_sentinel(std::size_t i, std::uint64_t attempt) {
    if (stopped_ || attempt != attempt_) return;
    if (i >= target_.endpoints.size()) {
      spdlog::warn("redis: no Sentinel knows a primary for '{}'", target_.master_name);
      return retry_later();
    }
    const auto& ep = target_.endpoints[i];
    auto conn = redis_connection::create(strand_, "sentinel-query", tls_);
    ++commands_sent_;
    conn->connect(
        ep.host, ep.port, std::string{}, cfg_.command_timeout,
        [self = shared_from_this(), conn, i, attempt](boost::system::error_code ec) {
          if (ec) return self->ask_sentinel(i + 1, attempt);
          conn->command(
              {"SENTINEL", "get-master-addr-by-name", self->target_.master_name}, self->cfg_.command_timeout,
              [self, conn, i, attempt](boost::system::result<redis_reply> r) {
                conn->close();
                if (attempt != self->attempt_) return;
                if (!r || !is_array(*r, 2)) return self->ask_sentinel(i + 1, attempt);
                redis_endpoint primary{r->elements[0].str, static_cast<std::uint16_t>(to_u64(r->elements[1]))};
                self->ensure_sentinel_subscription(i);
                self->connect_primary(primary);
              });
        },
        [] {});
  }

  void connect_primary(redis_endpoint ep) {
    if (stopped_) return;
    auto conn = redis_connection::create(strand_, "main", tls_);
    main_ = conn;
    conn->connect(
        ep.host, ep.port, password_, cfg_.command_timeout,
        [self = shared_from_this(), conn, ep](boost::system::error_code ec) {
          if (self->main_ != conn) return;
          if (ec) {
            self->metrics_.error("connection");
            self->main_.reset();
            return self->retry_later();
          }
          ++self->commands_sent_;
          conn->command({"ROLE"}, self->cfg_.command_timeout, [self, conn, ep](boost::system::result<redis_reply> r) {
            if (self->main_ != conn) return;
            if (!r || !is_array(*r, 1) || r->elements[0].str != "master") {
              // Sentinel has not caught up yet (or redis:// points at a replica).
              if (r)
                spdlog::warn("redis: {}:{} is not a primary; retrying", ep.host, ep.port);
              else
                spdlog::warn("redis: ROLE on {}:{} failed ({}); retrying", ep.host, ep.port, r.error().message());
              conn->close();
              self->main_.reset();
              return self->retry_later();
            }
            self->primary_ready(ep);
          });
        },
        [self = shared_from_this(), conn] {
          if (self->main_ != conn) return;
          spdlog::warn("redis: lost the connection to the primary {}:{}", conn->host(), conn->port());
          self->metrics_.error("connection");
          self->main_.reset();
          self->lose_primary();
          self->ensure_connecting();
        });
  }

  void primary_ready(const redis_endpoint& ep) {
    if (primary_ && !(*primary_ == ep)) {
      metrics_.master_changed();
      spdlog::info("redis: primary is now {}:{} (was {}:{})", ep.host, ep.port, primary_->host, primary_->port);
    } else if (!primary_) {
      spdlog::info("redis: connected to primary {}:{}", ep.host, ep.port);
    }
    primary_ = ep;
    main_ready_ = true;
    has_primary_.store(true, std::memory_order_release);
    metrics_.primary_up(true);
    connecting_ = false;
    backoff_ = std::chrono::milliseconds{0};
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& c : waiting) {
      if (c->wait_timer) c->wait_timer->cancel();
      send(c);
    }
    ensure_node_subscription();
  }

  void retry_later() {
    connecting_ = true;  // until the timer fires
    retry_pending_ = true;
    backoff_ = backoff_.count() == 0 ? std::chrono::milliseconds{100}
                                     : std::min(backoff_ * 2, std::chrono::milliseconds{2000});
    retry_timer_.expires_after(backoff_);
    retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->retry_pending_) return;
      self->retry_pending_ = false;
      self->connecting_ = false;
      self->ensure_connecting();
    });
  }

  void drop_primary() {
    if (main_) {
      main_->close();
      main_.reset();
    }
    lose_primary();
    ensure_connecting();
  }

  // No usable primary from now on (until primary_ready): /readyz measures
  // from the first moment of this.
  void lose_primary() {
    main_ready_ = false;
    if (has_primary_.exchange(false, std::memory_order_acq_rel)) {
      no_primary_since_.store(clock::now().time_since_epoch().count(), std::memory_order_release);
      metrics_.primary_up(false);
    }
    close_node_subscription();
  }

  // ---- sessions held by this node's connections (takeover re-check) ----
  // client id -> epochs of connections on this node that got CONNACK and
  // have not disconnected or been told of a takeover. Bounded by this
  // node's connections (plus a few whose notice overtook their CONNECT
  // reply, dropped at the next re-check).

  void hold(const std::string& client_id, std::uint64_t epoch) { held_[client_id].push_back(epoch); }

  void unhold(const std::string& client_id, std::uint64_t epoch) {
    auto it = held_.find(client_id);
    if (it == held_.end()) return;
    std::erase(it->second, epoch);
    if (it->second.empty()) held_.erase(it);
  }

  // A takeover to `epoch` supersedes every older connection of the id.
  void unhold_older(const std::string& client_id, std::uint64_t epoch) {
    auto it = held_.find(client_id);
    if (it == held_.end()) return;
    std::erase_if(it->second, [epoch](std::uint64_t e) { return e < epoch; });
    if (it->second.empty()) held_.erase(it);
  }

  // Sessions checked per round trip by the re-check.
  static constexpr std::size_t recheck_batch = 200;

  // After every (re)subscription of the takeover channel: a notice
  // published while the subscription was down is lost, so compare the
  // epoch Redis holds for every session this node holds a connection for
  // and deliver a takeover for each one that moved on (a newer epoch, or
  // the session is gone). Notices from now on arrive on the subscription.
  // Runs in batches of `recheck_batch` pipelined HGETs, one batch at a time.
  void recheck_held(std::uint64_t round) {
    auto ids = std::make_shared<std::vector<std::string>>();
    ids->reserve(held_.size());
    for (const auto& [id, epochs] : held_) ids->push_back(id);
    recheck_from(round, std::move(ids), 0);
  }

  void recheck_from(std::uint64_t round, std::shared_ptr<std::vector<std::string>> ids, std::size_t from) {
    if (stopped_ || round != recheck_round_ || from >= ids->size()) return;
    const std::size_t to = std::min(ids->size(), from + recheck_batch);
    auto c = std::make_shared<call>();
    c->name = "recheck";
    c->started = clock::now();
    c->deadline = c->started + cfg_.command_timeout;
    for (std::size_t i = from; i < to; ++i) c->commands.push_back({"HGET", prefix_ + "s:{" + (*ids)[i] + "}", "epoch"});
    c->done = [self = shared_from_this(), round, ids, from, to](boost::system::result<replies> r) {
      if (!r) {
        spdlog::warn("redis: takeover re-check failed: {}; it runs again after the next re-subscription",
                     r.error().message());
        return;
      }
      std::size_t moved = 0;
      for (std::size_t i = from; i < to; ++i) {
        const auto& id = (*ids)[i];
        const auto& reply = (*r)[i - from];
        if (reply.is_error()) continue;
        auto it = self->held_.find(id);
        if (it == self->held_.end()) continue;
        const std::uint64_t highest = *std::max_element(it->second.begin(), it->second.end());
        // Gone: whoever ended it had a newer epoch than any of ours.
        const std::uint64_t current = reply.type == redis_reply::kind::nil ? highest + 1 : to_u64(reply);
        bool stale = false;
        for (auto e : it->second) stale = stale || e < current;
        if (!stale) continue;
        ++moved;
        self->metrics_.error("takeover_missed");
        self->deliver_takeover(id, current);
      }
      if (moved > 0)
        spdlog::info("redis: {} session(s) were taken over while the takeover subscription was down; closing them",
                     moved);
      self->recheck_from(round, ids, to);
    };
    exec(std::move(c));
  }

  void close_node_subscription() {
    if (sub_) sub_->close();
    sub_.reset();
  }

  // Takeover notices for this node: "<epoch> <client id>".
  void ensure_node_subscription() {
    if (sub_ || stopped_ || !primary_ || !main_ready_) return;
    auto conn = redis_connection::create(strand_, "takeover", tls_);
    sub_ = conn;
    auto self = shared_from_this();
    auto drop = [self, conn] {
      if (self->sub_ == conn) self->sub_.reset();
    };
    conn->connect(
        primary_->host, primary_->port, password_, cfg_.command_timeout,
        [self, conn, drop](boost::system::error_code ec) {
          if (self->sub_ != conn) return;
          if (ec) return drop();
          conn->subscribe(
              self->prefix_ + "node:" + self->node_id_, self->cfg_.command_timeout,
              [self, drop](boost::system::error_code ec2) {
                if (ec2) return drop();
                self->recheck_held(++self->recheck_round_);
              },
              [self](const std::string&, const std::string& message) { self->deliver_takeover(message); });
        },
        drop);
  }

  void deliver_takeover(const std::string& message) {
    auto space = message.find(' ');
    if (space == std::string::npos) return;
    std::uint64_t epoch = 0;
    std::from_chars(message.data(), message.data() + space, epoch);
    deliver_takeover(message.substr(space + 1), epoch);
  }

  void deliver_takeover(std::string client_id, std::uint64_t epoch) {
    unhold_older(client_id, epoch);
    std::lock_guard lock(takeover_mutex_);
    if (!takeover_) return;
    boost::asio::post(takeover_executor_,
                      [h = takeover_, client_id = std::move(client_id), epoch] { h(client_id, epoch); });
  }

  // +switch-master "<name> <old ip> <old port> <new ip> <new port>"
  void ensure_sentinel_subscription(std::size_t i) {
    if (!target_.sentinel || sentinel_sub_ || stopped_) return;
    const auto& ep = target_.endpoints[i % target_.endpoints.size()];
    auto conn = redis_connection::create(strand_, "sentinel-events", tls_);
    sentinel_sub_ = conn;
    sentinel_index_ = i;
    auto self = shared_from_this();
    auto drop = [self, conn, i] {
      if (self->sentinel_sub_ != conn) return;
      self->sentinel_sub_.reset();
      self->sentinel_index_ = i + 1;  // next time, ask another one
    };
    conn->connect(
        ep.host, ep.port, std::string{}, cfg_.command_timeout,
        [self, conn, drop](boost::system::error_code ec) {
          if (self->sentinel_sub_ != conn) return;
          if (ec) return drop();
          conn->subscribe(
              "+switch-master", self->cfg_.command_timeout,
              [drop](boost::system::error_code ec2) {
                if (ec2) drop();
              },
              [self](const std::string&, const std::string& message) { self->on_switch_master(message); });
        },
        drop);
  }

  void on_switch_master(const std::string& message) {
    // name old_ip old_port new_ip new_port
    std::vector<std::string> parts;
    std::size_t pos = 0;
    while (pos <= message.size()) {
      auto next = message.find(' ', pos);
      if (next == std::string::npos) next = message.size();
      parts.push_back(message.substr(pos, next - pos));
      pos = next + 1;
    }
    if (parts.size() != 5 || parts[0] != target_.master_name) return;
    redis_endpoint now{parts[3], 0};
    std::from_chars(parts[4].data(), parts[4].data() + parts[4].size(), now.port);
    spdlog::info("redis: Sentinel reports a new primary {}:{}", now.host, now.port);
    if (main_ready_ && primary_ && *primary_ == now) return;
    // Go straight to the announced primary instead of waiting out a backoff.
    if (main_) main_->close();
    main_.reset();
    lose_primary();
    retry_pending_ = false;
    retry_timer_.cancel();
    backoff_ = std::chrono::milliseconds{0};
    connecting_ = true;
    ++attempt_;
    connect_primary(now);
  }

  void heartbeat_tick() {
    if (stopped_) return;
    if (main_ready_) {
      auto c = std::make_shared<call>();
      c->name = "heartbeat";
      c->started = clock::now();
      c->deadline = c->started + cfg_.command_timeout;
      c->commands = {
          {"SET", prefix_ + "node:" + node_id_ + ":alive", "1", "PX", std::to_string(cfg_.node_ttl.count()), "GET"},
          {"SADD", prefix_ + "nodes", node_id_}};
      c->done = [self = shared_from_this()](boost::system::result<replies> r) {
        if (!r) return;
        if ((*r)[0].is_error()) return (void)self->classify((*r)[0]);
        if ((*r)[0].type == redis_reply::kind::nil && self->heartbeats_ok_ > 0) {
          // Our key had expired: other nodes may have taken this node for
          // dead and marked its sessions disconnected.
          spdlog::warn(
              "redis: this node's heartbeat had lapsed (longer than node_ttl without reaching Redis); "
              "other nodes may have treated its sessions as disconnected");
          self->metrics_.error("heartbeat_lapsed");
        }
        ++self->heartbeats_ok_;
      };
      exec(std::move(c));
      ensure_node_subscription();
      if (target_.sentinel) ensure_sentinel_subscription(sentinel_index_);
    } else {
      ensure_connecting();
    }
    heartbeat_timer_.expires_after(cfg_.heartbeat_interval);
    heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->heartbeat_tick();
    });
  }

  void stop_now() {
    stopped_ = true;
    held_.clear();
    retry_timer_.cancel();
    heartbeat_timer_.cancel();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& c : waiting) finish(*c, store_error::shutting_down);
    if (main_) main_->close();
    main_.reset();
    lose_primary();
    wait_inflight_.reset();
    fail_batch(wait_next_);
    if (sentinel_sub_) sentinel_sub_->close();
    sentinel_sub_.reset();
  }

  const config::redis_config cfg_;
  const redis_target target_;
  const std::string node_id_;
  const std::string prefix_;
  const scripts::script_set scripts_;
  strand_type strand_;
  store_metrics metrics_;
  std::string password_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer heartbeat_timer_;
  std::chrono::milliseconds backoff_{0};

  std::shared_ptr<redis_connection> main_;
  std::shared_ptr<redis_connection> sub_;
  std::shared_ptr<redis_connection> sentinel_sub_;
  std::size_t sentinel_index_ = 0;
  std::optional<redis_endpoint> primary_;
  bool main_ready_ = false;
  std::atomic<bool> has_primary_{false};
  std::atomic<clock::rep> no_primary_since_{clock::now().time_since_epoch().count()};
  std::unordered_map<std::string, std::vector<std::uint64_t>> held_;
  std::uint64_t recheck_round_ = 0;
  bool connecting_ = false;
  bool retry_pending_ = false;
  std::uint64_t attempt_ = 0;  // discovery round; stale Sentinel answers are dropped
  bool stopped_ = false;
  std::deque<std::shared_ptr<call>> waiting_;
  std::atomic<std::uint64_t> commands_sent_{0};
  std::atomic<std::uint64_t> waits_sent_{0};
  std::uint64_t heartbeats_ok_ = 0;
  std::shared_ptr<wait_batch> wait_inflight_;
  std::shared_ptr<wait_batch> wait_next_;

  std::mutex takeover_mutex_;
  boost::asio::any_io_executor takeover_executor_;
  takeover_handler takeover_;
  const redis_tls tls_;  // to the primary and to the Sentinels alike
};

redis_session_store::redis_session_store(const config::redis_config& cfg, redis_target target, std::string node_id,
                                         boost::asio::io_context& io, prometheus::Registry& registry,
                                         std::string key_prefix)
    : impl_(std::make_shared<impl>(cfg, std::move(target), std::move(node_id), io, registry, std::move(key_prefix))) {
  impl_->start();
}

redis_session_store::~redis_session_store() { impl_->stop_now(); }

std::string_view redis_session_store::node_id() const noexcept { return impl_->node_id_; }

store_health redis_session_store::health() const noexcept {
  store_health h;
  h.has_primary = impl_->has_primary_.load(std::memory_order_acquire);
  h.no_primary_since = clock::time_point(clock::duration(impl_->no_primary_since_.load(std::memory_order_acquire)));
  return h;
}

std::uint64_t redis_session_store::commands_sent() const noexcept { return impl_->commands_sent_.load(); }

std::uint64_t redis_session_store::waits_sent() const noexcept { return impl_->waits_sent_.load(); }

void redis_session_store::connect(std::string client_id, connect_params params, boost::asio::any_io_executor ex,
                                  handler<connect_result> h) {
  boost::asio::post(impl_->strand_, [s = impl_, client_id = std::move(client_id), p = std::move(params),
                                     ex = std::move(ex), h = std::move(h)]() mutable {
    const bool ours = p.node_id.empty() || p.node_id == s->node_id_;
    std::vector<std::string> args{client_id, p.node_id.empty() ? s->node_id_ : p.node_id, p.connection_id,
                                  p.clean_start ? "1" : "0", std::to_string(p.session_expiry_seconds)};
    if (p.will) {
      args.insert(args.end(), {"1", p.will->topic, p.will->payload, std::to_string(p.will->qos),
                               p.will->retain ? "1" : "0", p.will->properties, std::to_string(p.will->delay_seconds)});
    } else {
      args.push_back("0");
    }
    s->run_script("connect", s->scripts_.connect, std::move(args), true,
                  [s, ex, ours, client_id, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                    if (!r) return complete<connect_result>(ex, std::move(h), r.error());
                    const auto& v = *r;
                    if (!is_array(v, 9)) {
                      s->metrics_.error("reply");
                      return complete<connect_result>(ex, std::move(h), store_error::bad_reply);
                    }
                    connect_result out;
                    out.session_present = to_u64(v.elements[0]) == 1;
                    out.epoch = to_u64(v.elements[1]);
                    if (ours) s->hold(client_id, out.epoch);
                    out.previous_node = v.elements[2].str;
                    out.previous_connection_id = v.elements[3].str;
                    out.taken_over = to_u64(v.elements[4]) == 1;
                    for (const auto& id : v.elements[5].elements) {
                      out.qos2_awaiting_pubrel.push_back(static_cast<std::uint16_t>(to_u64(id)));
                    }
                    const auto& subs = v.elements[6].elements;
                    for (std::size_t i = 0; i + 2 < subs.size(); i += 3) {
                      out.subscriptions.push_back({subs[i].str, static_cast<std::uint8_t>(to_u64(subs[i + 1])),
                                                   static_cast<std::uint32_t>(to_u64(subs[i + 2]))});
                    }
                    out.will_to_publish = will_from(v.elements[7]);
                    if (to_u64(v.elements[8]) == 1) s->metrics_.session("expired");
                    s->metrics_.session(out.taken_over ? "taken_over" : out.session_present ? "resumed" : "created");
                    complete<connect_result>(ex, std::move(h), std::move(out));
                  });
  });
}

void redis_session_store::disconnect(std::string client_id, std::uint64_t epoch, disconnect_params params,
                                     boost::asio::any_io_executor ex, handler<disconnect_result> h) {
  boost::asio::post(impl_->strand_, [s = impl_, client_id = std::move(client_id), epoch, params, ex = std::move(ex),
                                     h = std::move(h)]() mutable {
    s->unhold(client_id, epoch);
    s->run_script("disconnect", s->scripts_.disconnect,
                  {client_id, std::to_string(epoch), std::to_string(params.session_expiry_seconds),
                   params.will == will_handling::publish ? "1" : "0"},
                  false, [ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                    if (!r) return complete<disconnect_result>(ex, std::move(h), r.error());
                    disconnect_result out;
                    if (is_array(*r, 2)) out.will_to_publish = will_from(r->elements[1]);
                    complete<disconnect_result>(ex, std::move(h), std::move(out));
                  });
  });
}

void redis_session_store::qos2_hold(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                                    boost::asio::any_io_executor ex, done_handler h) {
  boost::asio::post(impl_->strand_, [s = impl_, client_id = std::move(client_id), epoch, packet_id, ex = std::move(ex),
                                     h = std::move(h)]() mutable {
    s->run_script("qos2_hold", s->scripts_.qos2_hold, {client_id, std::to_string(epoch), std::to_string(packet_id)},
                  true, [ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                    complete(ex, std::move(h), r ? boost::system::error_code{} : r.error());
                  });
  });
}

void redis_session_store::qos2_release(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                                       boost::asio::any_io_executor ex, handler<bool> h) {
  boost::asio::post(impl_->strand_, [s = impl_, client_id = std::move(client_id), epoch, packet_id, ex = std::move(ex),
                                     h = std::move(h)]() mutable {
    s->run_script("qos2_release", s->scripts_.qos2_release,
                  {client_id, std::to_string(epoch), std::to_string(packet_id)}, false,
                  [ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                    if (!r)
                      return complete<bool>(ex, std::move(h),
                                            boost::system::result<bool>(boost::system::in_place_error, r.error()));
                    complete<bool>(ex, std::move(h), r->integer == 1);
                  });
  });
}

void redis_session_store::update_expiry(std::string client_id, std::uint64_t epoch,
                                        std::uint32_t session_expiry_seconds, boost::asio::any_io_executor ex,
                                        done_handler h) {
  boost::asio::post(impl_->strand_, [s = impl_, client_id = std::move(client_id), epoch, session_expiry_seconds,
                                     ex = std::move(ex), h = std::move(h)]() mutable {
    s->run_script("update_expiry", s->scripts_.update_expiry,
                  {client_id, std::to_string(epoch), std::to_string(session_expiry_seconds)}, false,
                  [ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                    complete(ex, std::move(h), r ? boost::system::error_code{} : r.error());
                  });
  });
}

void redis_session_store::store_subscriptions(std::string client_id, std::uint64_t epoch, std::vector<subscription> add,
                                              std::vector<std::string> remove, boost::asio::any_io_executor ex,
                                              done_handler h) {
  boost::asio::post(impl_->strand_, [s = impl_, client_id = std::move(client_id), epoch, add = std::move(add),
                                     remove = std::move(remove), ex = std::move(ex), h = std::move(h)]() mutable {
    std::vector<std::string> args{client_id, std::to_string(epoch), std::to_string(remove.size())};
    for (auto& f : remove) args.push_back(std::move(f));
    for (auto& sub : add) {
      args.push_back(std::move(sub.filter));
      args.push_back(std::to_string(sub.options));
      args.push_back(std::to_string(sub.identifier));
    }
    s->run_script("subscriptions", s->scripts_.subscriptions, std::move(args), true,
                  [ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
                    complete(ex, std::move(h), r ? boost::system::error_code{} : r.error());
                  });
  });
}

void redis_session_store::poll_due_wills(boost::asio::any_io_executor ex, handler<sweep_result> h) {
  boost::asio::post(impl_->strand_, [s = impl_, ex = std::move(ex), h = std::move(h)]() mutable {
    s->sweep_rounds(std::make_shared<sweep_result>(), 0, std::move(ex), std::move(h));
  });
}

// One sweep script handles at most `batch` items of each kind so that Redis
// is never blocked for long; a poll runs up to 10 of them while there is more.
void redis_session_store::impl::sweep_rounds(std::shared_ptr<sweep_result> acc, int round,
                                             boost::asio::any_io_executor ex, handler<sweep_result> h) {
  run_script(
      "sweep", scripts_.sweep, {node_id_, batch}, false,
      [self = shared_from_this(), acc, round, ex, h = std::move(h)](boost::system::result<redis_reply> r) mutable {
        if (!r && acc->wills.empty() && round == 0) {
          return complete<sweep_result>(ex, std::move(h), r.error());
        }
        bool more = false;
        if (r && is_array(*r, 4)) {
          for (const auto& w : r->elements[0].elements) {
            if (!is_array(w, 7)) continue;
            redis_reply fields;
            fields.type = redis_reply::kind::array;
            fields.elements.assign(w.elements.begin() + 1, w.elements.end());
            if (auto will = will_from(fields)) acc->wills.push_back({w.elements[0].str, std::move(*will)});
          }
          const auto expired = static_cast<std::uint32_t>(to_u64(r->elements[1]));
          acc->expired_sessions += expired;
          acc->reaped_nodes += static_cast<std::uint32_t>(to_u64(r->elements[2]));
          if (expired) self->metrics_.session("expired", expired);
          more = to_u64(r->elements[3]) == 1;
        } else if (r) {
          self->metrics_.error("reply");
        }
        // Claimed wills are handed over even if a later round failed.
        if (more && round + 1 < 10 && !self->stopped_) {
          return self->sweep_rounds(std::move(acc), round + 1, std::move(ex), std::move(h));
        }
        complete<sweep_result>(ex, std::move(h), std::move(*acc));
      });
}

void redis_session_store::on_takeover(boost::asio::any_io_executor ex, takeover_handler h) {
  std::lock_guard lock(impl_->takeover_mutex_);
  if (ex) impl_->takeover_executor_ = std::move(ex);
  impl_->takeover_ = std::move(h);
}

void redis_session_store::shutdown(boost::asio::any_io_executor ex, done_handler h) {
  boost::asio::post(impl_->strand_, [s = impl_, ex = std::move(ex), h = std::move(h)]() mutable {
    if (s->stopped_) return complete(ex, std::move(h), boost::system::error_code{});
    s->heartbeat_timer_.cancel();
    s->shutdown_batches(std::move(ex), std::move(h));
  });
}

}  // namespace wharf::state
