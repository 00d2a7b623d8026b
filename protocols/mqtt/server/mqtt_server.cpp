#include "protocols/mqtt/server/mqtt_server.h"

#include "protocols/mqtt/codec.h"
#include "protocols/mqtt/connection_machine.h"
#include "protocols/mqtt/server/authenticator.h"
#include "protocols/mqtt/server/record_builder.h"
#include "protocols/mqtt/server/router.h"
#include "sinks/sink.h"
#include "state/session_store.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/container/new_allocator.hpp>
#include <boost/intrusive/set.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <random>
#include <unordered_map>

namespace wharf::mqtt {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

boost::system::error_code parse_listen(const std::string& listen, tcp::endpoint& out) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return asio::error::invalid_argument;
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return ec;
  out = tcp::endpoint(addr, static_cast<unsigned short>(std::stoi(listen.substr(colon + 1))));
  return {};
}

std::string reason_label(reason_code rc) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(rc));
  return buf;
}

std::string remote_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return {};
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// The reason code a permanent sink failure gets in a 5.0 PUBACK/PUBREC.
reason_code reason_for(const sinks::delivery_result& r) {
  using cause = sinks::delivery_result::cause;
  switch (r.why) {
    case cause::not_authorized:
      return reason_code::not_authorized;
    case cause::too_large:
      return reason_code::quota_exceeded;
    case cause::unknown_topic:
      return reason_code::implementation_specific_error;
    default:
      return reason_code::unspecified_error;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Metrics, shared by every connection.
struct server_metrics {
  prometheus::Family<prometheus::Gauge>& connections_family;
  prometheus::Gauge& connections_tcp;
  prometheus::Gauge& connections_tls;
  prometheus::Family<prometheus::Counter>& connects;
  prometheus::Family<prometheus::Counter>& disconnects;
  prometheus::Family<prometheus::Counter>& rejected;
  prometheus::Counter* received_qos[3];
  prometheus::Counter& received_bytes;
  prometheus::Counter& acknowledged;
  prometheus::Gauge& inflight_messages;
  prometheus::Gauge& inflight_bytes;
  prometheus::Counter& wills;

  explicit server_metrics(prometheus::Registry& r)
      : connections_family(prometheus::BuildGauge()
                               .Name("wharf_connections")
                               .Help("Open client connections by protocol and listener")
                               .Register(r)),
        connections_tcp(connections_family.Add({{"protocol", "mqtt"}, {"listener", "tcp"}})),
        connections_tls(connections_family.Add({{"protocol", "mqtt"}, {"listener", "tls"}})),
        connects(prometheus::BuildCounter()
                     .Name("wharf_mqtt_connects_total")
                     .Help("CONNECT packets answered, by result (reason code)")
                     .Register(r)),
        disconnects(prometheus::BuildCounter()
                        .Name("wharf_mqtt_disconnects_total")
                        .Help("Connections ended, by reason code (sent or received) and initiator")
                        .Register(r)),
        rejected(prometheus::BuildCounter()
                     .Name("wharf_mqtt_publish_rejected_total")
                     .Help("PUBLISH packets not stored, by reason")
                     .Register(r)),
        received_bytes(prometheus::BuildCounter()
                           .Name("wharf_mqtt_received_bytes_total")
                           .Help("Bytes read from MQTT connections")
                           .Register(r)
                           .Add({})),
        acknowledged(prometheus::BuildCounter()
                         .Name("wharf_mqtt_publish_acknowledged_total")
                         .Help("QoS 1/2 PUBLISH packets acknowledged after the sink stored them")
                         .Register(r)
                         .Add({})),
        inflight_messages(prometheus::BuildGauge()
                              .Name("wharf_mqtt_inflight_messages")
                              .Help("PUBLISH packets handed to the sink and not yet completed")
                              .Register(r)
                              .Add({})),
        inflight_bytes(prometheus::BuildGauge()
                           .Name("wharf_mqtt_inflight_bytes")
                           .Help("Bytes of records handed to the sink and not yet completed")
                           .Register(r)
                           .Add({})),
        wills(prometheus::BuildCounter()
                  .Name("wharf_mqtt_wills_published_total")
                  .Help("Will messages handed to the sink")
                  .Register(r)
                  .Add({})) {
    auto& fam = prometheus::BuildCounter()
                    .Name("wharf_mqtt_publish_received_total")
                    .Help("PUBLISH packets received, by QoS")
                    .Register(r);
    for (int q = 0; q < 3; ++q) received_qos[q] = &fam.Add({{"qos", std::to_string(q)}});
  }
};

class connection_base;

// Per-message metrics of one shard. Only the shard's thread writes them (a
// plain load and store, no locked read-modify-write on a line the other
// cores share); `mqtt_server::refresh_metrics` reads them for a scrape.
struct shard_counters {
  using value = std::atomic<std::int64_t>;
  alignas(64) value received[3] = {};
  value received_bytes{0};
  value acknowledged{0};
  value inflight_messages{0};
  value inflight_bytes{0};

  template <typename N>
  static void add(value& v, N n) {
    v.store(v.load(std::memory_order_relaxed) + static_cast<std::int64_t>(n), std::memory_order_relaxed);
  }
};

// A connection's next deadline (keep-alive, CONNECT timeout, delivery
// timeout, drain) in its shard's set. Linked while one is due; unlinks
// itself when the connection goes.
struct deadline_entry : boost::intrusive::set_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>,
                                                        boost::intrusive::optimize_size<true>> {
  explicit deadline_entry(connection_base& c) : owner(&c) {}
  clock::time_point at{};
  connection_base* owner;
  struct earlier {
    bool operator()(const deadline_entry& a, const deadline_entry& b) const { return a.at < b.at; }
  };
};

// One io_context's share of the server: its acceptors and connections.
struct shard {
  explicit shard(asio::io_context& c) : ioc(c), deadline_timer(c) {}
  asio::io_context& ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<tcp::acceptor> tls_acceptor;
  std::list<std::shared_ptr<connection_base>> connections;
  std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(64 * 1024);
  shard_counters counters;

  // One timer for the deadlines of every connection of the shard (a timer
  // per connection costs its state plus a pending wait operation each).
  boost::intrusive::multiset<deadline_entry, boost::intrusive::compare<deadline_entry::earlier>,
                             boost::intrusive::constant_time_size<false>>
      deadlines;
  asio::steady_timer deadline_timer;
  bool deadline_timer_armed = false;
  clock::time_point deadline_timer_at{};
  std::vector<std::shared_ptr<connection_base>> due;  // reused by fire_deadlines

  void schedule(deadline_entry& e, clock::time_point at) {
    if (e.is_linked()) deadlines.erase(deadlines.iterator_to(e));
    e.at = at;
    deadlines.insert(e);
    // The armed timer is kept when it fires no later than needed.
    if (!deadline_timer_armed || at < deadline_timer_at) arm_deadline_timer(at);
  }
  void unschedule(deadline_entry& e) {
    if (e.is_linked()) deadlines.erase(deadlines.iterator_to(e));
  }
  void arm_deadline_timer(clock::time_point at) {
    deadline_timer_armed = true;
    deadline_timer_at = at;
    deadline_timer.expires_at(at);
    deadline_timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      deadline_timer_armed = false;
      fire_deadlines();
    });
  }
  // Runs the connections whose deadline passed, then re-arms for the next.
  void fire_deadlines();
};

struct mqtt_server::impl {
  std::vector<asio::io_context*> contexts;
  config::mqtt_config cfg;
  std::string node_id;
  sinks::sink& sink;
  state::session_store& store;
  server_metrics metrics;
  router routes;
  authenticator auth;
  connection_options conn_options;
  std::unique_ptr<ssl::context> tls;
  std::vector<std::unique_ptr<shard>> shards;
  std::atomic<std::int64_t> inflight_bytes{0};
  std::atomic<std::int64_t> inflight_messages{0};
  std::atomic<std::size_t> connection_count{0};
  std::atomic<std::uint64_t> next_connection_id{0};
  std::atomic<bool> accepting{true};
  std::unique_ptr<asio::steady_timer> sweep_timer;
  // What refresh_metrics last added to the Prometheus counters.
  std::mutex metrics_mutex;
  std::int64_t published_received[3] = {};
  std::int64_t published_received_bytes = 0;
  std::int64_t published_acknowledged = 0;

  // client id -> connections of this node that hold (or held) its session,
  // and the newest epoch a takeover notice announced for it. A notice can
  // overtake the CONNECT it supersedes (it comes over another Redis
  // connection), so it is remembered for a while and checked at claim time.
  std::mutex owners_mutex;
  std::unordered_multimap<std::string, std::weak_ptr<connection_base>> owners;
  struct takeover_mark {
    std::uint64_t epoch;
    clock::time_point at;
  };
  std::unordered_map<std::string, takeover_mark> takeovers;

  impl(std::vector<asio::io_context*> c, const config::mqtt_config& conf, std::string node, sinks::sink& s,
       state::session_store& st, prometheus::Registry& registry)
      : contexts(std::move(c)),
        cfg(conf),
        node_id(std::move(node)),
        sink(s),
        store(st),
        metrics(registry),
        routes(cfg),
        auth(cfg),
        conn_options(make_connection_options(cfg.limits)) {
    conn_options.deny_drops_silently = cfg.deny_drops_silently;
    if (!cfg.tls.listen.empty()) {
      tls = std::make_unique<ssl::context>(ssl::context::tls_server);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      boost::system::error_code ec;
      tls->use_certificate_chain_file(cfg.tls.cert_file, ec);
      if (ec) throw std::runtime_error("mqtt.tls.cert_file " + cfg.tls.cert_file + ": " + ec.message());
      tls->use_private_key_file(cfg.tls.key_file, ssl::context::pem, ec);
      if (ec) throw std::runtime_error("mqtt.tls.key_file " + cfg.tls.key_file + ": " + ec.message());
      if (!cfg.tls.ca_file.empty()) {
        tls->load_verify_file(cfg.tls.ca_file, ec);
        if (ec) throw std::runtime_error("mqtt.tls.ca_file " + cfg.tls.ca_file + ": " + ec.message());
        tls->set_verify_mode(ssl::verify_peer |
                             (cfg.tls.require_client_cert ? ssl::verify_fail_if_no_peer_cert : ssl::verify_none));
      }
    }
    for (auto* ioc : contexts) shards.push_back(std::make_unique<shard>(*ioc));
  }

  std::int64_t budget() const { return static_cast<std::int64_t>(cfg.limits.inflight_bytes_budget); }
  bool over_budget() const { return inflight_bytes.load(std::memory_order_relaxed) >= budget(); }

  // Registers `c` as holding `client_id` at `epoch`. False when a takeover
  // notice for a newer epoch already arrived: the caller lost the session.
  bool claim_owner(const std::string& client_id, const std::shared_ptr<connection_base>& c, std::uint64_t epoch);
  void release_owner(const std::string& client_id, const connection_base* c);
  void on_takeover(const std::string& client_id, std::uint64_t epoch);

  void publish_will(const std::string& client_id, const state::will_message& w, std::uint64_t epoch,
                    asio::any_io_executor ex);
  void start_sweep();
};

// ---------------------------------------------------------------------------
// One client connection; the stream type differs for TCP and TLS.
class connection_base : public std::enable_shared_from_this<connection_base> {
 public:
  connection_base(mqtt_server::impl& srv, shard& sh, bool tls)
      : srv_(srv),
        sh_(sh),
        tls_(tls),
        machine_(srv.conn_options, clock::now()),
        deadline_(*this),
        connection_number_(srv.next_connection_id.fetch_add(1)) {}
  virtual ~connection_base() = default;

  using list_iterator = std::list<std::shared_ptr<connection_base>>::iterator;
  // Starts reading; once the connection has ended it hands itself back to
  // the shard (its entry is `it`, see release_when_idle).
  virtual void start(list_iterator it) = 0;
  asio::any_io_executor executor() { return sh_.ioc.get_executor(); }
  std::uint64_t epoch() const { return epoch_; }
  bool closed() const { return machine_.closed(); }

  // Another node (or connection) took the session over.
  void taken_over(std::uint64_t new_epoch) {
    if (machine_.closed() || new_epoch <= epoch_) return;
    superseded_ = true;
    machine_.server_disconnect(reason_code::session_taken_over, {}, std::string("session taken over"));
    process_events();
  }

  // Drain: stop reading; once acknowledgements in flight are written (or at
  // `deadline`), disconnect with `rc`.
  void begin_drain(reason_code rc, std::string server_reference, clock::time_point deadline) {
    if (machine_.closed()) return;
    draining_ = true;
    drain_rc_ = rc;
    if (!server_reference.empty()) drain_reference_ = std::make_unique<std::string>(std::move(server_reference));
    drain_deadline_ = deadline;
    maybe_finish_drain();
    arm_tick();
  }

  void force_close() {
    if (!machine_.closed()) {
      machine_.server_disconnect(reason_code::server_shutting_down);
      process_events();
    }
    close_socket();
  }

 protected:
  virtual void async_write_out() = 0;
  virtual void close_socket() = 0;
  virtual std::string remote() const = 0;
  virtual std::optional<std::string> peer_cn() const { return std::nullopt; }

  bool can_read() const {
    return !machine_.closed() && !closing_ && !draining_ && machine_.wants_read() && !parked_ && !srv_.over_budget();
  }

  // Sleeps until `can_read` may have become true (woken by `wake`, or a
  // short poll while the node-wide budget is spent).
  asio::awaitable<void> wait_until_readable() {
    while (!can_read() && !machine_.closed() && !closing_) co_await sleep(srv_.over_budget() ? 5ms : 1h);
  }
  // Sleeps up to `d`; `wake` ends the sleep early. The timer exists only
  // while the connection sleeps: an idle connection waits on its socket and
  // holds none.
  asio::awaitable<void> sleep(clock::duration d) {
    asio::steady_timer t(sh_.ioc, d);
    resume_ = &t;
    struct forget {
      asio::steady_timer*& p;
      ~forget() { p = nullptr; }
    } guard{resume_};
    co_await t.async_wait(use_tuple);
  }
  void wake() {
    if (resume_) resume_->cancel();
  }

  void on_input(std::span<const std::uint8_t> bytes) {
    sh_.counters.add(sh_.counters.received_bytes, bytes.size());
    machine_.on_bytes(bytes, clock::now());
    process_events();
  }

  // Carries out what the machine asked for.
  void process_events() {
    auto& evs = machine_.events();
    if (evs.empty()) {
      arm_tick();
      return;
    }
    // Handlers may call back into the machine, which appends new events:
    // take the batch first. While messages are in flight the two vectors
    // trade places, so neither is reallocated per batch (a nested call finds
    // the spare taken and uses a fresh one); an idle connection keeps none.
    std::vector<event> batch = std::move(spare_events_);
    batch.swap(evs);
    for (auto& ev : batch) {
      std::visit([this](auto& e) { handle(e); }, ev);
    }
    batch.clear();
    if (spare_events_.capacity() == 0 && machine_.inflight() > 0) spare_events_ = std::move(batch);
    if (!machine_.events().empty()) process_events();
    arm_tick();
  }

  void handle(send_event& e) {
    if (out_pending_.empty())
      out_pending_.swap(e.bytes);
    else
      out_pending_ += e.bytes;
    flush();
  }

  void handle(connect_requested& e);
  void handle(publish_requested& e);
  void handle(will_requested&) { will_due_ = true; }
  void handle(session_expiry_update& e) { session_expiry_ = e.seconds; }
  void handle(qos2_held&) {}
  void handle(qos2_released& e) {
    if (epoch_ == 0) return;
    srv_.store.qos2_release(client_id_, epoch_, e.packet_id, executor(), [](boost::system::result<bool>) {});
  }
  void handle(close_event& e) {
    if (closing_) return;
    closing_ = true;
    // Record the end of the session before the socket closes, so a client
    // that reconnects at once finds the state its DISCONNECT asked for.
    release_session();
    close_reason_ = e.reason_code;
    client_initiated_ = e.client_initiated;
    if (e.error)
      spdlog::debug("mqtt {} {}: closing: {} ({})", connection_id(), client_id_, e.error.message(),
                    reason_label(e.reason_code));
    flush();
    wake();
  }

  void flush() {
    if (writing_) return;
    if (out_pending_.empty()) {
      if (closing_) close_socket();
      return;
    }
    writing_ = true;
    out_inflight_.swap(out_pending_);
    out_pending_.clear();
    async_write_out();
  }
  void on_written(boost::system::error_code ec) {
    writing_ = false;
    out_inflight_.clear();
    if (ec) {
      if (!machine_.closed()) {
        machine_.on_socket_closed();
        process_events();
      }
      close_socket();
      return;
    }
    flush();
  }

  // Keep-alive, CONNECT timeout, delivery timeout and drain deadline.
  void arm_tick() {
    if (machine_.closed()) {
      sh_.unschedule(deadline_);
      return;
    }
    auto next = machine_.next_deadline();
    if (auto oldest = oldest_acknowledgeable()) {
      auto t = *oldest + srv_.cfg.delivery_timeout;
      if (!next || t < *next) next = t;
    }
    if (draining_ && (!next || drain_deadline_ < *next)) next = drain_deadline_;
    if (!next) {
      sh_.unschedule(deadline_);
      return;
    }
    // A deadline no later than needed is kept: when it passes, on_tick
    // re-arms for the real one. Moving it on every ack (whose deadlines
    // only move later) would cost a set update per message.
    if (deadline_.is_linked() && deadline_.at <= *next) return;
    sh_.schedule(deadline_, *next);
  }

 public:
  // The shard's timer found this connection's deadline passed (and unlinked it).
  void on_tick() {
    auto now = clock::now();
    auto oldest = oldest_acknowledgeable();
    if (oldest && *oldest + srv_.cfg.delivery_timeout <= now && !machine_.closed()) {
      spdlog::warn(
          "mqtt {} {}: the sink did not confirm a message within mqtt.delivery_timeout; disconnecting so "
          "the device re-sends",
          connection_id(), client_id_);
      srv_.metrics.rejected.Add({{"reason", "delivery_timeout"}}).Increment();
      machine_.server_disconnect(reason_code::server_busy, {}, std::string("delivery timeout"));
    }
    if (draining_ && now >= drain_deadline_) finish_drain();
    machine_.on_tick(now);
    process_events();
  }

 protected:
  void maybe_finish_drain() {
    if (draining_ && machine_.inflight() == 0 && !oldest_acknowledgeable()) finish_drain();
  }
  void finish_drain() {
    if (machine_.closed()) return;
    std::optional<std::string> ref;
    if (drain_reference_) ref = *drain_reference_;
    machine_.server_disconnect(drain_rc_, ref, std::string("server shutting down"));
    process_events();
  }

  void submit(sinks::record rec, publish_token token, qos q, std::uint16_t packet_id);
  void complete(publish_token token, const sinks::delivery_result& r);
  void acknowledge(publish_token token, qos q, std::uint16_t packet_id, const sinks::delivery_result& r);

  // Submit time of the oldest QoS 1/2 record the sink has not completed.
  std::optional<clock::time_point> oldest_acknowledgeable() const {
    for (std::size_t i = submitted_head_; i < submitted_.size(); ++i)
      if (!submitted_[i].done && submitted_[i].q != qos::at_most_once) return submitted_[i].at;
    return std::nullopt;
  }

 public:
  // Called by the shard when the connection's coroutine has ended. While
  // the sink still owes completions, the shard keeps the connection (its
  // entry at `it`) so they find it alive; the last one lets it go.
  // Returns true when the caller may drop it now.
  bool release_when_idle(std::list<std::shared_ptr<connection_base>>::iterator it) {
    if (submitted_head_ == submitted_.size()) return true;
    linger_ = it;
    return false;
  }

 protected:
  // Runs once after the socket is done: session bookkeeping and metrics.
  void finished() {
    if (!machine_.closed()) {
      machine_.on_socket_closed();
      process_events();
    }
    auto& gauge = tls_ ? srv_.metrics.connections_tls : srv_.metrics.connections_tcp;
    gauge.Decrement();
    srv_.connection_count.fetch_sub(1);
    srv_.metrics.disconnects
        .Add({{"reason", reason_label(close_reason_)}, {"initiator", client_initiated_ ? "client" : "server"}})
        .Increment();
    release_session();
    sh_.unschedule(deadline_);
    wake();
  }

  // Tells the session store this connection is over (once).
  void release_session() {
    if (epoch_ == 0 || released_) return;
    released_ = true;
    {
      srv_.release_owner(client_id_, this);
      if (!superseded_) {
        state::disconnect_params p;
        p.session_expiry_seconds = session_expiry_;
        p.will = will_due_ ? state::will_handling::publish : state::will_handling::discard;
        auto& srv = srv_;
        auto client = client_id_;
        auto epoch = epoch_;
        auto ex = executor();
        srv_.store.disconnect(client_id_, epoch_, p, ex,
                              [&srv, client, epoch, ex](boost::system::result<state::disconnect_result> r) {
                                if (r && r->will_to_publish) srv.publish_will(client, *r->will_to_publish, epoch, ex);
                              });
      }
    }
  }

  // "<node id>/<n>", built when needed (logs, CONNECT) rather than held.
  std::string connection_id() const { return srv_.node_id + "/" + std::to_string(connection_number_); }

  mqtt_server::impl& srv_;
  shard& sh_;
  bool tls_;
  connection_machine machine_;
  deadline_entry deadline_;               // in sh_.deadlines while one is due
  asio::steady_timer* resume_ = nullptr;  // the timer of `sleep`, while it runs
  std::optional<id_source> ids_;          // made at the first PUBLISH
  std::uint64_t connection_number_;
  std::string client_id_;
  std::string username_;
  std::string remote_;
  permissions perms_;
  std::uint64_t epoch_ = 0;
  std::uint32_t session_expiry_ = 0;
  bool will_due_ = false;
  bool superseded_ = false;
  bool released_ = false;
  bool closing_ = false;
  bool client_initiated_ = false;
  reason_code close_reason_ = reason_code::normal_disconnection;
  bool draining_ = false;
  reason_code drain_rc_ = reason_code::server_shutting_down;
  std::unique_ptr<std::string> drain_reference_;  // only while draining to another server
  clock::time_point drain_deadline_{};
  std::string out_pending_, out_inflight_;
  bool writing_ = false;
  // Record refused with queue_full, re-submitted when the sink has room.
  struct parked_record {
    sinks::record rec;
    publish_token token;
    qos q;
    std::uint16_t packet_id;
  };
  std::unique_ptr<parked_record> parked_record_;  // rare: on the heap
  bool parked_ = false;
  // Records handed to the sink and not yet completed, from submitted_head_
  // on, in token order (tokens grow with time), for the completion and the
  // delivery timeout. Completed entries at the front only move the head;
  // the vector keeps its capacity, so a message costs no allocation, and a
  // connection that never published holds none.
  struct submitted_record {
    publish_token token;
    clock::time_point at;
    std::size_t size;
    std::uint16_t packet_id;
    qos q;
    bool done;
  };
  std::vector<submitted_record> submitted_;
  std::size_t submitted_head_ = 0;
  std::optional<std::list<std::shared_ptr<connection_base>>::iterator> linger_;
  std::vector<event> spare_events_;
};

void shard::fire_deadlines() {
  auto now = clock::now();
  // Collected first: on_tick may schedule the same connection again.
  while (!deadlines.empty() && deadlines.begin()->at <= now) {
    auto& e = *deadlines.begin();
    deadlines.erase(deadlines.begin());
    if (auto c = e.owner->weak_from_this().lock()) due.push_back(std::move(c));
  }
  for (auto& c : due) c->on_tick();
  due.clear();
  if (!deadlines.empty() && (!deadline_timer_armed || deadlines.begin()->at < deadline_timer_at))
    arm_deadline_timer(deadlines.begin()->at);
}

void connection_base::handle(connect_requested& e) {
  auto& c = e.connect;
  auto reject = [this](reason_code rc, std::string why) {
    srv_.metrics.connects.Add({{"result", reason_label(rc)}}).Increment();
    connect_decision d;
    d.reason_code = rc;
    if (!why.empty()) d.reason_string = why;
    machine_.reject_connect(std::move(d));
    process_events();
  };
  if (srv_.connection_count.load() > srv_.cfg.limits.max_connections) {
    spdlog::warn("mqtt: refusing {}: mqtt.limits.max_connections ({}) reached", remote_,
                 srv_.cfg.limits.max_connections);
    return reject(reason_code::quota_exceeded, "too many connections");
  }
  credentials creds;
  creds.client_id = c.client_id;
  if (c.username) creds.username = *c.username;
  if (c.password) creds.password = *c.password;
  creds.cert_cn = peer_cn();
  auto a = srv_.auth.authenticate(creds);
  if (!a.ok) {
    spdlog::info("mqtt: refused CONNECT from {} (client id '{}'): {}", remote_, c.client_id, a.why);
    return reject(a.code, a.code == reason_code::not_authorized ? "not authorized" : "bad user name or password");
  }
  username_ = a.username;
  perms_ = std::move(a.perms);
  std::string assigned;
  client_id_ = c.client_id;
  if (e.client_id_assignment_needed || client_id_.empty()) {
    assigned = "wharf-" + connection_id();
    for (auto& ch : assigned)
      if (ch == '/') ch = '-';
    client_id_ = assigned;
  }
  std::uint32_t expiry = c.version == protocol_version::v5 ? c.props.session_expiry_interval.value_or(0)
                                                           : (c.clean_start ? 0 : state::never_expires);
  session_expiry_ = expiry;
  state::connect_params p;
  p.clean_start = c.clean_start;
  p.session_expiry_seconds = expiry;
  p.node_id = srv_.node_id;
  p.connection_id = connection_id();
  if (c.will) {
    state::will_message w;
    w.topic = c.will->topic;
    w.payload = c.will->payload;
    w.qos = static_cast<std::uint8_t>(c.will->qos);
    w.retain = c.will->retain;
    w.delay_seconds = c.will->props.will_delay_interval.value_or(0);
    // Content type, user properties and the rest go with the session, so
    // that whichever node publishes the will puts them in the record.
    properties wp = c.will->props;
    wp.will_delay_interval.reset();
    if (wp != properties{}) w.properties = encode_will_properties(wp);
    p.will = std::move(w);
  }
  auto self = shared_from_this();
  srv_.store.connect(
      client_id_, std::move(p), executor(), [self, assigned](boost::system::result<state::connect_result> r) {
        auto& me = *self;
        if (me.machine_.closed()) return;
        if (!r) {
          spdlog::warn("mqtt: session store could not confirm CONNECT of '{}': {}", me.client_id_, r.error().message());
          me.srv_.metrics.connects.Add({{"result", reason_label(reason_code::server_unavailable)}}).Increment();
          connect_decision d;
          d.reason_code = reason_code::server_unavailable;
          d.reason_string = "session state unavailable, retry";
          me.machine_.reject_connect(std::move(d));
          me.process_events();
          return;
        }
        me.epoch_ = r->epoch;
        // False: a newer CONNECT of this client id won while
        // ours was in flight; it is closed right after CONNACK.
        bool owner = me.srv_.claim_owner(me.client_id_, self, r->epoch);
        connect_decision d;
        d.session_present = r->session_present;
        d.assigned_client_id = assigned;
        d.qos2_awaiting_pubrel = r->qos2_awaiting_pubrel;
        me.srv_.metrics.connects.Add({{"result", reason_label(reason_code::success)}}).Increment();
        me.machine_.accept_connect(std::move(d));
        if (!owner) me.taken_over(r->epoch + 1);
        me.process_events();
        if (r->will_to_publish) me.srv_.publish_will(me.client_id_, *r->will_to_publish, r->epoch, me.executor());
        me.wake();
      });
}

void connection_base::handle(publish_requested& e) {
  int qi = static_cast<int>(e.qos);
  sh_.counters.add(sh_.counters.received[qi], 1);
  if (!perms_.may_publish(e.topic)) {
    srv_.metrics.rejected.Add({{"reason", "not_authorized"}}).Increment();
    machine_.complete_publish(e.token, publish_outcome::denied());
    return;
  }
  auto target = srv_.routes.route(e.topic, client_id_, username_);
  if (!target) {
    srv_.metrics.rejected.Add({{"reason", "no_route"}}).Increment();
    machine_.complete_publish(e.token, publish_outcome::no_matching_route());
    return;
  }
  publish_context ctx{client_id_, srv_.node_id, remote_, epoch_};
  auto rec = build_record(*target->kafka_topic, std::move(target->key), std::move(e.topic), std::move(e.payload), e.qos,
                          e.dup, e.packet_id, e.props, ctx, ids_ ? *ids_ : ids_.emplace(srv_.node_id));
  submit(std::move(rec), e.token, e.qos, e.packet_id);
}

void connection_base::submit(sinks::record rec, publish_token token, qos q, std::uint16_t packet_id) {
  std::size_t size = rec.size_bytes();
  // Two words, so std::function holds it without allocating. The connection
  // outlives the call: the shard keeps it while submitted_ is not empty (see
  // release_when_idle), and the sink completes every accepted record.
  auto status = srv_.sink.try_submit(rec, executor(), [this, token](sinks::delivery_result r) { complete(token, r); });
  if (status == sinks::submit_status::accepted) {
    srv_.inflight_bytes.fetch_add(static_cast<std::int64_t>(size), std::memory_order_relaxed);
    sh_.counters.add(sh_.counters.inflight_bytes, size);
    sh_.counters.add(sh_.counters.inflight_messages, 1);
    submitted_record entry{token, clock::now(), size, packet_id, q, false};
    if (submitted_head_ == submitted_.size() || submitted_.back().token < token)
      submitted_.push_back(entry);
    else  // not expected (tokens are submitted in order), but keep the order
      submitted_.insert(
          std::upper_bound(submitted_.begin() + static_cast<std::ptrdiff_t>(submitted_head_), submitted_.end(), token,
                           [](publish_token t, const submitted_record& s) { return t < s.token; }),
          entry);
    return;
  }
  if (status == sinks::submit_status::closed) {
    srv_.metrics.rejected.Add({{"reason", "sink_closed"}}).Increment();
    machine_.complete_publish(token, publish_outcome::failed_retryable());
    return;
  }
  // Queue full: keep the record, stop reading, retry when there is room.
  parked_ = true;
  parked_record_ = std::make_unique<parked_record>(parked_record{std::move(rec), token, q, packet_id});
  srv_.sink.async_wait_capacity(executor(), [self = shared_from_this()] {
    if (!self->parked_record_ || self->machine_.closed()) return;
    auto p = std::move(*self->parked_record_);
    self->parked_record_.reset();
    self->parked_ = false;
    self->submit(std::move(p.rec), p.token, p.q, p.packet_id);
    self->process_events();
    self->wake();
  });
}

void connection_base::complete(publish_token token, const sinks::delivery_result& r) {
  auto it = std::lower_bound(submitted_.begin() + static_cast<std::ptrdiff_t>(submitted_head_), submitted_.end(), token,
                             [](const submitted_record& s, publish_token t) { return s.token < t; });
  if (it == submitted_.end() || it->token != token || it->done) {
    spdlog::error("mqtt {}: completion for an unknown record ignored", connection_id());
    return;
  }
  it->done = true;
  const auto entry = *it;
  while (submitted_head_ < submitted_.size() && submitted_[submitted_head_].done) ++submitted_head_;
  if (submitted_head_ == submitted_.size()) {
    submitted_.clear();
    submitted_head_ = 0;
  } else if (submitted_head_ >= 64 && submitted_head_ * 2 >= submitted_.size()) {
    // Never empty under steady load: drop the completed prefix now and then.
    submitted_.erase(submitted_.begin(), submitted_.begin() + static_cast<std::ptrdiff_t>(submitted_head_));
    submitted_head_ = 0;
  }
  srv_.inflight_bytes.fetch_sub(static_cast<std::int64_t>(entry.size), std::memory_order_relaxed);
  sh_.counters.add(sh_.counters.inflight_bytes, -static_cast<std::int64_t>(entry.size));
  sh_.counters.add(sh_.counters.inflight_messages, -1);
  if (!machine_.closed()) acknowledge(token, entry.q, entry.packet_id, r);
  if (submitted_.empty() && linger_) {
    // The read loop has ended and this was the last completion owed: the
    // shard lets the connection go. Nothing may touch `this` afterwards.
    auto at = *linger_;
    linger_.reset();
    sh_.connections.erase(at);
  }
}

void connection_base::acknowledge(publish_token token, qos q, std::uint16_t packet_id,
                                  const sinks::delivery_result& r) {
  if (r.stored()) {
    if (q == qos::exactly_once && epoch_ != 0) {
      // PUBREC only once the held packet id is replicated, so a PUBREL sent
      // to another node after a crash completes without a second delivery.
      auto self = shared_from_this();
      srv_.store.qos2_hold(client_id_, epoch_, packet_id, executor(), [self, token](boost::system::error_code ec) {
        if (self->machine_.closed()) return;
        if (ec) {
          spdlog::warn("mqtt {}: could not record QoS 2 packet id: {}", self->client_id_, ec.message());
          self->machine_.complete_publish(token, publish_outcome::failed_retryable());
        } else {
          self->sh_.counters.add(self->sh_.counters.acknowledged, 1);
          self->machine_.complete_publish(token, publish_outcome::stored());
        }
        self->process_events();
        self->maybe_finish_drain();
        self->wake();
      });
      return;
    }
    if (q != qos::at_most_once) sh_.counters.add(sh_.counters.acknowledged, 1);
    machine_.complete_publish(token, publish_outcome::stored());
  } else if (r.status == sinks::delivery_status::failed_permanent) {
    srv_.metrics.rejected.Add({{"reason", "permanent"}}).Increment();
    auto out = publish_outcome::failed_permanent(reason_for(r));
    out.reason_string = r.reason;
    machine_.complete_publish(token, std::move(out));
  } else {
    srv_.metrics.rejected.Add({{"reason", "retryable"}}).Increment();
    spdlog::warn("mqtt {} {}: sink could not store a message ({}); disconnecting without acknowledgement",
                 connection_id(), client_id_, r.reason);
    machine_.complete_publish(token, publish_outcome::failed_retryable());
  }
  process_events();
  maybe_finish_drain();
  wake();
}

// Plain TCP: idle connections hold no read buffer; readiness is awaited
// and the bytes are read into the shard's buffer, many packets at once.
class tcp_connection final : public connection_base {
 public:
  tcp_connection(mqtt_server::impl& srv, shard& sh, tcp::socket s)
      : connection_base(srv, sh, false), socket_(std::move(s)) {
    remote_ = remote_of(socket_);
  }

  // The read loop runs as completion handlers, not as a coroutine: an idle
  // connection holds one pending readiness wait and no coroutine frames.
  void start(list_iterator it) override {
    entry_ = it;
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) return end();
    socket_.set_option(tcp::no_delay(true), ec);
    arm_tick();
    next();
  }

 private:
  std::shared_ptr<tcp_connection> self() { return std::static_pointer_cast<tcp_connection>(shared_from_this()); }

  // Waits for input when the machine wants it; else sleeps until `wake`
  // (or a short poll while the node-wide budget is spent) and looks again.
  void next() {
    if (machine_.closed() || closing_) return end();
    if (!can_read()) return sleep_then(srv_.over_budget() ? 5ms : 1h, &tcp_connection::next);
    // Plain new/delete for this operation: Asio's recycling allocator would
    // hand it a cached block of whatever size was freed last (an accept
    // operation: ~330 bytes held by every idle connection instead of ~100).
    socket_.async_wait(tcp::socket::wait_read, asio::bind_allocator(boost::container::new_allocator<void>(),
                                                                    [self = self()](boost::system::error_code ec) {
                                                                      if (ec) return self->end();
                                                                      self->on_readable();
                                                                    }));
  }

  void on_readable() {
    if (!can_read()) return next();
    boost::system::error_code ec;
    auto n = socket_.read_some(asio::buffer(sh_.read_buffer), ec);
    if (ec == asio::error::would_block) return next();
    if (ec || n == 0) return end();
    try {
      on_input(std::span<const std::uint8_t>(sh_.read_buffer.data(), n));
    } catch (const std::exception& e) {
      spdlog::error("mqtt {}: closing after an error: {}", connection_id(), e.what());
      return end();
    }
    next();
  }

  // Like `sleep`: a timer only while sleeping, cancelled by `wake`.
  void sleep_then(clock::duration d, void (tcp_connection::*then)()) {
    auto t = std::make_shared<asio::steady_timer>(sh_.ioc, d);
    resume_ = t.get();
    t->async_wait([self = self(), t, then](boost::system::error_code) {
      if (self->resume_ == t.get()) self->resume_ = nullptr;
      ((*self).*then)();
    });
  }

  // The loop is over: let pending writes (acks, DISCONNECT) finish, then
  // close and hand the connection back to the shard.
  void end() {
    if (ended_) return;
    if (writing_) return sleep_then(10ms, &tcp_connection::end);
    ended_ = true;
    finished();
    close_socket();
    if (release_when_idle(entry_)) sh_.connections.erase(entry_);  // the caller holds a reference
  }

 public:
  void async_write_out() override {
    asio::async_write(socket_, asio::buffer(out_inflight_),
                      [self = std::static_pointer_cast<tcp_connection>(shared_from_this())](
                          boost::system::error_code ec, std::size_t) { self->on_written(ec); });
  }

  void close_socket() override {
    if (!socket_.is_open()) return;
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    // Unread input at close() makes the kernel answer with RST, and a peer
    // that gets RST may drop the DISCONNECT just written: discard what has
    // already arrived (bounded) so the close is an orderly FIN.
    socket_.non_blocking(true, ec);
    for (int i = 0; i < 16; ++i) {
      auto n = socket_.read_some(asio::buffer(sh_.read_buffer), ec);
      if (ec || n == 0) break;
    }
    socket_.close(ec);
    wake();
  }

  std::string remote() const override { return remote_; }

 private:
  tcp::socket socket_;
  list_iterator entry_{};
  bool ended_ = false;
};

class tls_connection final : public connection_base {
 public:
  tls_connection(mqtt_server::impl& srv, shard& sh, tcp::socket s)
      : connection_base(srv, sh, true), stream_(std::move(s), *srv.tls) {
    remote_ = remote_of(stream_.next_layer());
  }

  void start(list_iterator it) override {
    asio::co_spawn(sh_.ioc, read_loop(), [self = shared_from_this(), &sh = sh_, it](std::exception_ptr) {
      if (self->release_when_idle(it)) sh.connections.erase(it);
    });
  }

  asio::awaitable<void> read_loop() {
    boost::system::error_code ec;
    stream_.next_layer().set_option(tcp::no_delay(true), ec);
    arm_tick();  // the CONNECT timeout covers the handshake too
    auto [hec] = co_await stream_.async_handshake(ssl::stream_base::server, use_tuple);
    if (hec) {
      spdlog::debug("mqtt tls {}: handshake failed: {}", remote_, hec.message());
    } else {
      std::vector<std::uint8_t> buf(16 * 1024);
      for (;;) {
        co_await wait_until_readable();
        if (machine_.closed() || closing_) break;
        auto [rec, n] = co_await stream_.async_read_some(asio::buffer(buf), use_tuple);
        if (rec || n == 0) break;
        on_input(std::span<const std::uint8_t>(buf.data(), n));
      }
      while (writing_) {
        co_await sleep(10ms);
      }
    }
    finished();
    close_socket();
  }

  void async_write_out() override {
    asio::async_write(stream_, asio::buffer(out_inflight_),
                      [self = std::static_pointer_cast<tls_connection>(shared_from_this())](
                          boost::system::error_code ec, std::size_t) { self->on_written(ec); });
  }

  void close_socket() override {
    auto& s = stream_.next_layer();
    if (!s.is_open()) return;
    boost::system::error_code ec;
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
    wake();
  }

  std::string remote() const override { return remote_; }

  std::optional<std::string> peer_cn() const override {
    auto* ssl = const_cast<ssl::stream<tcp::socket>&>(stream_).native_handle();
    X509* cert = SSL_get_peer_certificate(ssl);
    if (!cert) return std::nullopt;
    std::unique_ptr<X509, void (*)(X509*)> guard(cert, X509_free);
    if (SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) <= 0) return std::nullopt;
    return std::string(cn);
  }

 private:
  ssl::stream<tcp::socket> stream_;
};

// ---------------------------------------------------------------------------

bool mqtt_server::impl::claim_owner(const std::string& client_id, const std::shared_ptr<connection_base>& c,
                                    std::uint64_t epoch) {
  std::lock_guard lock(owners_mutex);
  auto mark = takeovers.find(client_id);
  if (mark != takeovers.end() && mark->second.epoch > epoch) return false;
  owners.emplace(client_id, c);
  return true;
}

void mqtt_server::impl::release_owner(const std::string& client_id, const connection_base* c) {
  std::lock_guard lock(owners_mutex);
  auto [first, last] = owners.equal_range(client_id);
  for (auto it = first; it != last; ++it) {
    auto cur = it->second.lock();
    if (!cur || cur.get() == c) {
      owners.erase(it);
      return;
    }
  }
}

void mqtt_server::impl::on_takeover(const std::string& client_id, std::uint64_t epoch) {
  std::vector<std::shared_ptr<connection_base>> holders;
  {
    std::lock_guard lock(owners_mutex);
    auto now = clock::now();
    // Forget marks older than a minute; a CONNECT result never lags that long.
    if (takeovers.size() > 1024)
      std::erase_if(takeovers, [now](const auto& kv) { return now - kv.second.at > std::chrono::minutes(1); });
    auto& m = takeovers[client_id];
    if (epoch > m.epoch) m = takeover_mark{epoch, now};
    auto [first, last] = owners.equal_range(client_id);
    for (auto it = first; it != last; ++it)
      if (auto c = it->second.lock()) holders.push_back(std::move(c));
  }
  for (auto& c : holders) asio::post(c->executor(), [c, epoch] { c->taken_over(epoch); });
}

void mqtt_server::impl::publish_will(const std::string& client_id, const state::will_message& w, std::uint64_t epoch,
                                     asio::any_io_executor ex) {
  auto target = routes.route(w.topic, client_id, "");
  if (!target) {
    spdlog::warn("mqtt: will of '{}' on topic '{}' matches no route; not published", client_id, w.topic);
    return;
  }
  id_source ids(node_id);
  publish_context ctx{client_id, node_id, "", epoch};
  properties props;
  if (!w.properties.empty()) {
    auto decoded = decode_will_properties(w.properties);
    if (decoded)
      props = std::move(*decoded);
    else
      spdlog::warn("mqtt: will of '{}': stored will properties are unreadable ({}); published without them", client_id,
                   decoded.error().message());
  }
  auto rec = build_record(*target->kafka_topic, std::move(target->key), w.topic, w.payload, static_cast<qos>(w.qos),
                          false, 0, props, ctx, ids, true);
  metrics.wills.Increment();
  auto status = sink.submit(std::move(rec), ex, [client_id](sinks::delivery_result r) {
    if (!r.stored()) spdlog::warn("mqtt: will of '{}' was not stored: {}", client_id, r.reason);
  });
  if (status != sinks::submit_status::accepted)
    spdlog::warn("mqtt: will of '{}' could not be handed to the sink (queue full or closed)", client_id);
}

void mqtt_server::impl::start_sweep() {
  sweep_timer = std::make_unique<asio::steady_timer>(*contexts.front());
  auto tick = std::make_shared<std::function<void()>>();
  // The function refers to itself weakly (a strong self-reference would be a
  // cycle that is never freed); the pending wait and poll keep it alive.
  *tick = [this, weak = std::weak_ptr<std::function<void()>>(tick)] {
    auto tick = weak.lock();
    if (!tick) return;
    sweep_timer->expires_after(2s);
    sweep_timer->async_wait([this, tick](boost::system::error_code ec) {
      if (ec) return;
      auto ex = contexts.front()->get_executor();
      store.poll_due_wills(ex, [this, tick, ex](boost::system::result<state::sweep_result> r) {
        if (r)
          for (const auto& w : r->wills) publish_will(w.client_id, w.will, 0, ex);
        if (accepting.load()) (*tick)();
      });
    });
  };
  (*tick)();
}

namespace {

asio::awaitable<void> accept_loop(mqtt_server::impl& srv, shard& sh, tcp::acceptor& acceptor, bool tls) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("mqtt: accept failed: {}", ec.message());
      asio::steady_timer t(sh.ioc, 50ms);  // e.g. out of file descriptors: do not spin
      co_await t.async_wait(use_tuple);
      continue;
    }
    if (!srv.accepting.load()) continue;
    // Hard cap a little above max_connections: beyond it not even a CONNACK.
    if (srv.connection_count.load() >= srv.cfg.limits.max_connections + 64) continue;
    std::shared_ptr<connection_base> c;
    if (tls)
      c = std::make_shared<tls_connection>(srv, sh, std::move(socket));
    else
      c = std::make_shared<tcp_connection>(srv, sh, std::move(socket));
    srv.connection_count.fetch_add(1);
    (tls ? srv.metrics.connections_tls : srv.metrics.connections_tcp).Increment();
    sh.connections.push_front(c);
    c->start(sh.connections.begin());
  }
}

}  // namespace

mqtt_server::mqtt_server(std::vector<asio::io_context*> contexts, const config::mqtt_config& cfg, std::string node_id,
                         sinks::sink& sink, state::session_store& store, prometheus::Registry& registry)
    : impl_(std::make_unique<impl>(std::move(contexts), cfg, std::move(node_id), sink, store, registry)) {}

mqtt_server::~mqtt_server() { stop(); }

boost::system::error_code mqtt_server::start() {
  auto& s = *impl_;
  auto bind_all = [&](const std::string& listen, bool tls) -> boost::system::error_code {
    if (listen.empty()) return {};
    tcp::endpoint ep;
    if (auto ec = parse_listen(listen, ep)) return ec;
    for (auto& sh : s.shards) {
      auto a = std::make_unique<tcp::acceptor>(sh->ioc);
      boost::system::error_code ec;
      a->open(ep.protocol(), ec);
      if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) a->set_option(reuse_port(true), ec);
      if (!ec) a->bind(ep, ec);
      if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) return ec;
      ep.port(a->local_endpoint().port());  // port 0: later shards share the chosen port
      (tls ? sh->tls_acceptor : sh->acceptor) = std::move(a);
    }
    return {};
  };
  if (auto ec = bind_all(s.cfg.listen, false)) return ec;
  if (auto ec = bind_all(s.cfg.tls.listen, true)) return ec;
  for (auto& sh : s.shards) {
    if (sh->acceptor) asio::co_spawn(sh->ioc, accept_loop(s, *sh, *sh->acceptor, false), asio::detached);
    if (sh->tls_acceptor) asio::co_spawn(sh->ioc, accept_loop(s, *sh, *sh->tls_acceptor, true), asio::detached);
  }
  s.store.on_takeover(s.contexts.front()->get_executor(),
                      [&s](std::string client_id, std::uint64_t epoch) { s.on_takeover(client_id, epoch); });
  s.start_sweep();
  return {};
}

unsigned short mqtt_server::port() const {
  auto& sh = impl_->shards.front();
  boost::system::error_code ec;
  return sh->acceptor ? sh->acceptor->local_endpoint(ec).port() : 0;
}

unsigned short mqtt_server::tls_port() const {
  auto& sh = impl_->shards.front();
  boost::system::error_code ec;
  return sh->tls_acceptor ? sh->tls_acceptor->local_endpoint(ec).port() : 0;
}

std::size_t mqtt_server::connection_count() const { return impl_->connection_count.load(); }

void mqtt_server::refresh_metrics() {
  auto& s = *impl_;
  std::int64_t received[3] = {}, received_bytes = 0, acknowledged = 0, inflight_messages = 0, inflight_bytes = 0;
  for (auto& sh : s.shards) {
    auto& c = sh->counters;
    for (int q = 0; q < 3; ++q) received[q] += c.received[q].load(std::memory_order_relaxed);
    received_bytes += c.received_bytes.load(std::memory_order_relaxed);
    acknowledged += c.acknowledged.load(std::memory_order_relaxed);
    inflight_messages += c.inflight_messages.load(std::memory_order_relaxed);
    inflight_bytes += c.inflight_bytes.load(std::memory_order_relaxed);
  }
  std::lock_guard lock(s.metrics_mutex);
  auto advance = [](prometheus::Counter& counter, std::int64_t& published, std::int64_t now) {
    if (now > published) counter.Increment(static_cast<double>(now - published));
    published = std::max(published, now);
  };
  for (int q = 0; q < 3; ++q) advance(*s.metrics.received_qos[q], s.published_received[q], received[q]);
  advance(s.metrics.received_bytes, s.published_received_bytes, received_bytes);
  advance(s.metrics.acknowledged, s.published_acknowledged, acknowledged);
  // A record's submit and completion run on its connection's shard, so each
  // shard's in-flight sums are exact; across shards they are a moment apart.
  s.metrics.inflight_messages.Set(static_cast<double>(inflight_messages));
  s.metrics.inflight_bytes.Set(static_cast<double>(inflight_bytes));
}

std::vector<std::string> mqtt_server::kafka_topics() const { return impl_->routes.kafka_topics(); }

void mqtt_server::drain(std::chrono::milliseconds duration, std::chrono::milliseconds grace,
                        std::string server_reference, std::function<void()> done) {
  auto& s = *impl_;
  s.accepting = false;
  auto rc = server_reference.empty() ? reason_code::server_shutting_down : reason_code::use_another_server;
  auto start = clock::now();
  auto remaining = std::make_shared<std::atomic<std::size_t>>(s.shards.size());
  auto finish = std::make_shared<std::function<void()>>(std::move(done));
  for (auto& shp : s.shards) {
    shard& sh = *shp;
    asio::post(sh.ioc, [&s, &sh, rc, server_reference, start, duration, grace, remaining, finish] {
      boost::system::error_code ec;
      if (sh.acceptor) sh.acceptor->close(ec);
      if (sh.tls_acceptor) sh.tls_acceptor->close(ec);
      // Spread the disconnects over `duration` with jitter so the clients do
      // not all reconnect to the remaining nodes in the same instant.
      std::mt19937 rng(std::random_device{}());
      std::size_t n = sh.connections.size();
      std::uniform_int_distribution<long long> jitter(0, std::max<long long>(1, duration.count()));
      for (auto& c : sh.connections) {
        auto at = start + std::chrono::milliseconds(n > 1 ? jitter(rng) : 0);
        auto t = std::make_shared<asio::steady_timer>(sh.ioc, at);
        t->async_wait([c, t, rc, server_reference, at, grace](boost::system::error_code) {
          c->begin_drain(rc, server_reference, at + grace);
        });
      }
      // Poll until this shard is empty or the deadline passed.
      auto deadline = start + duration + grace + 1s;
      auto poll = std::make_shared<asio::steady_timer>(sh.ioc);
      auto check = std::make_shared<std::function<void()>>();
      // Weak self-reference, as in start_sweep: the pending wait owns it.
      *check = [&sh, poll, weak = std::weak_ptr<std::function<void()>>(check), deadline, remaining, finish] {
        auto check = weak.lock();
        if (!check) return;
        if (sh.connections.empty() || clock::now() >= deadline) {
          for (auto& c : sh.connections) c->force_close();
          if (remaining->fetch_sub(1) == 1 && *finish) (*finish)();
          return;
        }
        poll->expires_after(20ms);
        poll->async_wait([check](boost::system::error_code) { (*check)(); });
      };
      (*check)();
    });
  }
  if (s.sweep_timer) asio::post(*s.contexts.front(), [&s] { s.sweep_timer->cancel(); });
}

void mqtt_server::stop() {
  auto& s = *impl_;
  s.accepting = false;
  for (auto& sh : s.shards) {
    boost::system::error_code ec;
    if (sh->acceptor) sh->acceptor->close(ec);
    if (sh->tls_acceptor) sh->tls_acceptor->close(ec);
  }
}

}  // namespace wharf::mqtt
