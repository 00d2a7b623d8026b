#include "state/memory/memory_session_store.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace wharf::state {
namespace {

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <class H, class V>
void complete(const boost::asio::any_io_executor& ex, H h, V value) {
  boost::asio::post(ex, [h = std::move(h), value = std::move(value)]() mutable { h(std::move(value)); });
}

}  // namespace

memory_session_store::memory_session_store(std::string node_id, boost::asio::any_io_executor ex,
                                           prometheus::Registry& registry, clock_fn clock)
    : node_id_(std::move(node_id)),
      executor_(std::move(ex)),
      metrics_(registry),
      clock_(clock ? std::move(clock) : clock_fn(system_now_ms)),
      takeover_executor_(executor_) {}

std::size_t memory_session_store::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

bool memory_session_store::expired(const session& s, std::int64_t now) const {
  return !s.connected && s.expiry != never_expires &&
         s.disconnected_at + static_cast<std::int64_t>(s.expiry) * 1000 <= now;
}

std::optional<will_message> memory_session_store::mark_disconnected(session& s, std::int64_t now, bool publish_will) {
  s.connected = false;
  s.disconnected_at = now;
  s.last_seen = now;
  s.will_due.reset();
  if (!s.will || !publish_will) {
    s.will.reset();
    return std::nullopt;
  }
  std::uint32_t delay = std::min(s.will->delay_seconds, s.expiry);
  if (delay == 0) {
    std::optional<will_message> w = std::move(*s.will);
    s.will.reset();
    return w;
  }
  s.will_due = now + static_cast<std::int64_t>(delay) * 1000;
  return std::nullopt;
}

boost::system::error_code memory_session_store::check_epoch(const std::string& client_id, std::uint64_t epoch,
                                                            session** out) {
  if (stopped_) return store_error::shutting_down;
  auto it = sessions_.find(client_id);
  if (it == sessions_.end() || it->second.epoch != epoch) {
    metrics_.error("fenced");
    return store_error::fenced;
  }
  *out = &it->second;
  return {};
}

void memory_session_store::connect(std::string client_id, connect_params params, boost::asio::any_io_executor ex,
                                   handler<connect_result> h) {
  connect_result r;
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return complete(ex, std::move(h), boost::system::result<connect_result>(store_error::shutting_down));
    const auto now = clock_();
    auto it = sessions_.find(client_id);
    if (it != sessions_.end() && expired(it->second, now)) {
      if (it->second.will) r.will_to_publish = std::move(*it->second.will);  // the session ended
      sessions_.erase(it);
      metrics_.session("expired");
      it = sessions_.end();
    }
    if (it == sessions_.end()) {
      it = sessions_.emplace(client_id, session{}).first;
    } else {
      session& s = it->second;
      r.previous_node = node_of(s);
      r.previous_connection_id = s.connection;
      if (s.connected) {
        r.taken_over = true;  // every node of an in-memory store is this process: alive
        if (s.will && (s.will->delay_seconds == 0 || params.clean_start)) r.will_to_publish = std::move(*s.will);
      } else if (s.will && s.will_due && (*s.will_due <= now || params.clean_start)) {
        r.will_to_publish = std::move(*s.will);
      }
      if (params.clean_start) {
        s.subscriptions.clear();
        s.qos2.clear();
      } else {
        r.session_present = true;
      }
    }
    session& s = it->second;
    s.epoch = ++last_epoch_;
    if (params.node_id.empty() || params.node_id == node_id_)
      s.node.clear();
    else
      s.node = params.node_id;
    s.connection = params.connection_id;
    s.clean_start = params.clean_start;
    s.expiry = params.session_expiry_seconds;
    s.connected = true;
    s.last_seen = now;
    s.disconnected_at = 0;
    s.will = params.will ? std::make_unique<will_message>(std::move(*params.will)) : nullptr;
    s.will_due.reset();
    r.epoch = s.epoch;
    r.qos2_awaiting_pubrel.assign(s.qos2.begin(), s.qos2.end());
    for (const auto& [filter, sub] : s.subscriptions) r.subscriptions.push_back(sub);
    notify = r.taken_over && takeover_;
    metrics_.session(r.taken_over ? "taken_over" : r.session_present ? "resumed" : "created");
    if (notify) {
      boost::asio::post(takeover_executor_, [h = takeover_, client_id, epoch = r.epoch] { h(client_id, epoch); });
    }
  }
  complete(ex, std::move(h), boost::system::result<connect_result>(std::move(r)));
}

void memory_session_store::disconnect(std::string client_id, std::uint64_t epoch, disconnect_params params,
                                      boost::asio::any_io_executor ex, handler<disconnect_result> h) {
  std::lock_guard lock(mutex_);
  session* s = nullptr;
  if (auto ec = check_epoch(client_id, epoch, &s)) {
    return complete(ex, std::move(h), boost::system::result<disconnect_result>(ec));
  }
  disconnect_result r;
  const bool publish = params.will == will_handling::publish;
  if (params.session_expiry_seconds == 0) {
    if (publish && s->will) r.will_to_publish = std::move(*s->will);
    sessions_.erase(client_id);
  } else {
    s->expiry = params.session_expiry_seconds;
    r.will_to_publish = mark_disconnected(*s, clock_(), publish);
  }
  complete(ex, std::move(h), boost::system::result<disconnect_result>(std::move(r)));
}

void memory_session_store::qos2_hold(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                                     boost::asio::any_io_executor ex, done_handler h) {
  std::lock_guard lock(mutex_);
  session* s = nullptr;
  auto ec = check_epoch(client_id, epoch, &s);
  if (!ec) s->qos2.insert(packet_id);
  complete(ex, std::move(h), ec);
}

void memory_session_store::qos2_release(std::string client_id, std::uint64_t epoch, std::uint16_t packet_id,
                                        boost::asio::any_io_executor ex, handler<bool> h) {
  std::lock_guard lock(mutex_);
  session* s = nullptr;
  if (auto ec = check_epoch(client_id, epoch, &s)) {
    return complete(ex, std::move(h), boost::system::result<bool>(boost::system::in_place_error, ec));
  }
  complete(ex, std::move(h), boost::system::result<bool>(s->qos2.erase(packet_id) == 1));
}

void memory_session_store::update_expiry(std::string client_id, std::uint64_t epoch,
                                         std::uint32_t session_expiry_seconds, boost::asio::any_io_executor ex,
                                         done_handler h) {
  std::lock_guard lock(mutex_);
  session* s = nullptr;
  auto ec = check_epoch(client_id, epoch, &s);
  if (!ec) s->expiry = session_expiry_seconds;
  complete(ex, std::move(h), ec);
}

void memory_session_store::store_subscriptions(std::string client_id, std::uint64_t epoch,
                                               std::vector<subscription> add, std::vector<std::string> remove,
                                               boost::asio::any_io_executor ex, done_handler h) {
  std::lock_guard lock(mutex_);
  session* s = nullptr;
  auto ec = check_epoch(client_id, epoch, &s);
  if (!ec) {
    for (const auto& f : remove) s->subscriptions.erase(f);
    for (auto& sub : add) {
      auto filter = sub.filter;
      s->subscriptions[filter] = std::move(sub);
    }
  }
  complete(ex, std::move(h), ec);
}

void memory_session_store::poll_due_wills(boost::asio::any_io_executor ex, handler<sweep_result> h) {
  std::lock_guard lock(mutex_);
  if (stopped_) return complete(ex, std::move(h), boost::system::result<sweep_result>(store_error::shutting_down));
  sweep_result r;
  const auto now = clock_();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    session& s = it->second;
    const bool ended = expired(s, now);
    if (!s.connected && s.will && ((s.will_due && *s.will_due <= now) || ended)) {
      r.wills.push_back({it->first, std::move(*s.will)});
      s.will.reset();
      s.will_due.reset();
    }
    if (ended) {
      ++r.expired_sessions;
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  if (r.expired_sessions) metrics_.session("expired", r.expired_sessions);
  complete(ex, std::move(h), boost::system::result<sweep_result>(std::move(r)));
}

void memory_session_store::on_takeover(boost::asio::any_io_executor ex, takeover_handler h) {
  std::lock_guard lock(mutex_);
  takeover_executor_ = ex ? std::move(ex) : executor_;
  takeover_ = std::move(h);
}

void memory_session_store::shutdown(boost::asio::any_io_executor ex, done_handler h) {
  std::lock_guard lock(mutex_);
  if (!stopped_) {
    const auto now = clock_();
    for (auto& [id, s] : sessions_) {
      if (s.connected && node_of(s) == node_id_) {
        // Nobody is left to publish a will due now in a single-node store.
        (void)mark_disconnected(s, now, true);
      }
    }
    stopped_ = true;
  }
  complete(ex, std::move(h), boost::system::error_code{});
}

}  // namespace wharf::state
