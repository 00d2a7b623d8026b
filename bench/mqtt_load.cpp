// mqtt_load: an MQTT 3.1.1 / 5.0 load generator for loopback benchmarks.
//
// Raw epoll, hand-encoded packets, no allocation per message: every
// connection owns a fixed output buffer sized for its window and a slot ring
// of send times indexed by packet id. One epoll loop per thread (--threads).
//
// Modes:
//   closed loop (default): every connection keeps --inflight QoS>0 messages
//     outstanding; the rate is whatever the server sustains.
//   open loop (--rate R): R messages/s in total, spread evenly over the
//     connections; latency is measured from the intended send time, so a
//     stalled server is charged for the messages it delayed (no coordinated
//     omission).
//   idle (--idle): connect, keep alive with PINGREQ, hold for --duration;
//     with --server-pid the server's RSS delta per connection is reported.
//   connect only (--connect-only): a connection-rate test. Opens
//     --connections connections at --connect-rate (or as fast as the server
//     answers, at most --connect-window CONNECTs outstanding), measures
//     CONNACK latency from the intended send time, counts Session Present
//     and refusals by reason code; with --disconnect every connection sends
//     DISCONNECT and closes right after its CONNACK, so the open-files limit
//     does not cap the run.
//
// --persistent (or --session-expiry S) connects with clean session 0 (3.1.1)
// or Clean Start 0 and a Session Expiry Interval (5.0). Client ids are
// --client-prefix + connection index: a second run with the same prefix
// resumes the sessions of the first.
//
// Only loopback addresses (127.0.0.0/8) are accepted; the run is bounded by
// --connect-timeout + --warmup + --duration + a short drain.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;
using i64 = std::int64_t;

i64 now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return i64(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// ---------------------------------------------------------------------------
// Histogram: HdrHistogram-style log-linear buckets, 64 sub-buckets per power
// of two above 128 ns (relative error < 1.6%), exact below.
class histogram {
 public:
  static constexpr int sub = 64;
  static constexpr int size = 128 + 57 * sub;

  void record(i64 v) {
    if (v < 0) v = 0;
    counts_[index(u64(v))]++;
    total_++;
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }
  void merge(const histogram& o) {
    for (int i = 0; i < size; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }
  u64 count() const { return total_; }
  i64 max() const { return total_ ? max_ : 0; }
  i64 min() const { return total_ ? min_ : 0; }
  // Highest value equivalent to the bucket holding the p-th percentile.
  i64 percentile(double p) const {
    if (total_ == 0) return 0;
    u64 want = u64(std::ceil(p / 100.0 * double(total_)));
    if (want == 0) want = 1;
    u64 seen = 0;
    for (int i = 0; i < size; ++i) {
      seen += counts_[i];
      if (seen >= want) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static int index(u64 v) {
    if (v < 128) return int(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - 6;
    u64 m = v >> shift;  // in [64, 127]
    return 128 + (shift - 1) * sub + int(m - 64);
  }
  static i64 upper(int i) {
    if (i < 128) return i;
    int shift = (i - 128) / sub + 1;
    u64 m = u64((i - 128) % sub) + 64;
    return i64(((m + 1) << shift) - 1);
  }
  std::array<u64, size> counts_{};
  u64 total_ = 0;
  i64 max_ = 0;
  i64 min_ = INT64_MAX;
};

// ---------------------------------------------------------------------------
struct options {
  std::string host = "127.0.0.1";
  int port = 1883;
  u32 connections = 100;
  int version = 4;  // 4 = 3.1.1, 5 = 5.0
  int qos = 1;
  u32 payload = 200;
  u32 inflight = 16;
  double rate = 0;                // total messages/s; 0 = closed loop
  double connect_rate = 0;        // connections/s; 0 = as fast as possible
  u32 connect_concurrency = 512;  // CONNECTs outstanding (--connect-window)
  double warmup = 2;              // s
  double duration = 10;           // s
  double connect_timeout = 60;    // s
  bool idle = false;
  bool connect_only = false;
  bool disconnect = false;  // DISCONNECT right after CONNACK
  bool persistent = false;  // clean session / Clean Start 0
  u32 session_expiry = 0;   // 5.0 Session Expiry Interval, s
  u16 keepalive = 60;       // s
  u32 threads = 1;
  u32 source_ips = 0;  // 0 = automatic
  std::string topic = "bench/%i";
  std::string client_prefix;
  std::string username, password;
  std::string json_file;
  std::string label;
  int server_pid = 0;
  bool quiet = false;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout, R"(mqtt_load - MQTT load generator (loopback only)

  --host IP            127.0.0.x server address (default 127.0.0.1)
  --port N             (default 1883)
  --connections N      (default 100); beyond ~28k per source address the
                       connections are spread over 127.0.0.1..127.0.0.K
  --source-ips K       number of source addresses (default: automatic)
  --mqtt 3|5           protocol 3.1.1 or 5.0 (default 3)
  --qos 0|1|2          (default 1)
  --payload BYTES      (default 200)
  --inflight N         QoS>0 messages outstanding per connection (default 16)
  --rate R             open loop: R messages/s in total (default: closed loop)
  --connect-rate R     new connections per second (default unlimited)
  --warmup S           seconds before measuring (default 2)
  --duration S         measured seconds, or hold time with --idle (default 10)
  --connect-timeout S  give up connecting after S seconds (default 60)
  --idle               connect, PINGREQ every keep-alive/2, hold --duration
  --connect-only       connection-rate test: connect, count CONNACKs, stop
  --disconnect         send DISCONNECT and close right after each CONNACK
  --connect-window N   CONNECTs outstanding at most (default 512)
  --persistent         clean session 0 / Clean Start 0 (5.0: expiry 3600 s
                       unless --session-expiry)
  --session-expiry S   5.0 Session Expiry Interval (S > 0); implies --persistent
  --keepalive S        (default 60)
  --threads N          epoll threads (default 1)
  --topic T            topic, %%i = connection index (default bench/%%i)
  --client-prefix P    client id prefix (default bench-<pid>-)
  --username U --password P
  --server-pid PID     report the server's RSS before/after connecting
  --label TEXT         copied into the JSON record
  --json FILE          write a JSON record of settings and results
  --quiet
)");
  std::exit(code);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mqtt_load: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h")
      usage(0);
    else if (a == "--host")
      o.host = val();
    else if (a == "--port")
      o.port = std::atoi(val().c_str());
    else if (a == "--connections" || a == "-c")
      o.connections = u32(std::strtoul(val().c_str(), nullptr, 10));
    else if (a == "--source-ips")
      o.source_ips = u32(std::atoi(val().c_str()));
    else if (a == "--mqtt")
      o.version = val() == "5" ? 5 : 4;
    else if (a == "--qos")
      o.qos = std::atoi(val().c_str());
    else if (a == "--payload")
      o.payload = u32(std::atoi(val().c_str()));
    else if (a == "--inflight")
      o.inflight = u32(std::atoi(val().c_str()));
    else if (a == "--rate")
      o.rate = std::atof(val().c_str());
    else if (a == "--connect-rate")
      o.connect_rate = std::atof(val().c_str());
    else if (a == "--warmup")
      o.warmup = std::atof(val().c_str());
    else if (a == "--duration")
      o.duration = std::atof(val().c_str());
    else if (a == "--connect-timeout")
      o.connect_timeout = std::atof(val().c_str());
    else if (a == "--idle")
      o.idle = true;
    else if (a == "--connect-only")
      o.connect_only = true;
    else if (a == "--disconnect")
      o.disconnect = true;
    else if (a == "--connect-window")
      o.connect_concurrency = u32(std::strtoul(val().c_str(), nullptr, 10));
    else if (a == "--persistent")
      o.persistent = true;
    else if (a == "--session-expiry") {
      o.session_expiry = u32(std::strtoul(val().c_str(), nullptr, 10));
      o.persistent = true;
      if (o.session_expiry == 0) {
        std::fprintf(stderr, "mqtt_load: --session-expiry must be > 0 (0 ends the session at disconnect)\n");
        std::exit(2);
      }
    } else if (a == "--keepalive")
      o.keepalive = u16(std::atoi(val().c_str()));
    else if (a == "--threads")
      o.threads = u32(std::max(1, std::atoi(val().c_str())));
    else if (a == "--topic")
      o.topic = val();
    else if (a == "--client-prefix")
      o.client_prefix = val();
    else if (a == "--username")
      o.username = val();
    else if (a == "--password")
      o.password = val();
    else if (a == "--server-pid")
      o.server_pid = std::atoi(val().c_str());
    else if (a == "--label")
      o.label = val();
    else if (a == "--json")
      o.json_file = val();
    else if (a == "--quiet")
      o.quiet = true;
    else {
      std::fprintf(stderr, "mqtt_load: unknown option %s (see --help)\n", a.c_str());
      std::exit(2);
    }
  }
  in_addr a{};
  if (inet_pton(AF_INET, o.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "mqtt_load: --host must be a 127.0.0.0/8 address (benchmarks stay on loopback)\n");
    std::exit(2);
  }
  if (o.qos < 0 || o.qos > 2 || o.connections == 0 || o.inflight == 0 || o.inflight > 4096 || o.duration <= 0 ||
      o.warmup < 0 || o.payload > (1u << 20)) {
    std::fprintf(stderr, "mqtt_load: invalid settings (qos 0..2, connections>0, inflight 1..4096, payload<=1MiB)\n");
    std::exit(2);
  }
  if (o.connect_concurrency == 0 || (o.idle && o.connect_only) || (o.disconnect && !o.connect_only)) {
    std::fprintf(stderr,
                 "mqtt_load: --connect-window must be > 0; --disconnect needs --connect-only; "
                 "--idle and --connect-only exclude each other\n");
    std::exit(2);
  }
  if (o.persistent && o.session_expiry == 0) o.session_expiry = 3600;
  if (o.client_prefix.empty()) o.client_prefix = "bench-" + std::to_string(getpid()) + "-";
  if (o.source_ips == 0) o.source_ips = std::max<u32>(1, (o.connections + 19999) / 20000);
  if (o.source_ips > 254) o.source_ips = 254;
  return o;
}

// ---------------------------------------------------------------------------
// Encoding helpers.
std::size_t put_varint(u8* p, u32 v) {
  std::size_t n = 0;
  do {
    u8 b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    p[n++] = b;
  } while (v);
  return n;
}
void put_str(std::string& out, const std::string& s) {
  out.push_back(char(s.size() >> 8));
  out.push_back(char(s.size() & 0xff));
  out += s;
}

std::string encode_connect(const options& o, const std::string& client_id) {
  std::string body;
  put_str(body, "MQTT");
  body.push_back(char(o.version));
  u8 flags = o.persistent ? 0x00 : 0x02;  // clean session / clean start
  if (!o.username.empty()) flags |= 0x80;
  if (!o.password.empty()) flags |= 0x40;
  body.push_back(char(flags));
  body.push_back(char(o.keepalive >> 8));
  body.push_back(char(o.keepalive & 0xff));
  if (o.version == 5 && o.persistent) {
    body.push_back(5);     // properties length
    body.push_back(0x11);  // Session Expiry Interval
    for (int shift = 24; shift >= 0; shift -= 8) body.push_back(char((o.session_expiry >> shift) & 0xff));
  } else if (o.version == 5) {
    body.push_back(0);  // no properties
  }
  put_str(body, client_id);
  if (!o.username.empty()) put_str(body, o.username);
  if (!o.password.empty()) put_str(body, o.password);
  u8 hdr[5];
  hdr[0] = 0x10;
  std::size_t n = 1 + put_varint(hdr + 1, u32(body.size()));
  return std::string(reinterpret_cast<char*>(hdr), n) + body;
}

// ---------------------------------------------------------------------------
enum class state : u8 { idle, connecting, wait_connack, ready, closed };

struct connection {
  int fd = -1;
  u32 index = 0;
  state st = state::idle;
  // PUBLISH template: fixed header .. topic, then [packet id], [props], payload.
  std::string publish;        // full packet with packet id 0
  std::size_t id_offset = 0;  // where the packet id goes (QoS>0)
  std::string connect;
  // Output: bytes not yet written (out[out_begin, out.size())).
  std::vector<char> out;
  std::size_t out_begin = 0;
  bool dirty = false;
  bool want_write = false;
  // Partial inbound packet carried between reads (reserved once).
  std::string carry;
  // In flight: slot ring indexed by (packet id - 1) % window.
  u32 window = 0;
  u32 in_flight = 0;
  u32 next_id_seq = 0;       // counts packet ids issued
  u32 id_cycle = 0;          // ids cycle over 1..id_cycle (multiple of window)
  std::vector<i64> sent_at;  // 0 = free slot
  std::vector<u8> phase;     // QoS 2: 1 = waiting PUBREC, 2 = waiting PUBCOMP
  // Open loop: messages due to this connection / messages sent.
  u64 due = 0;
  u64 sent = 0;
  i64 next_ping = 0;
  i64 connect_due = 0;  // intended CONNECT time (CONNACK latency origin)
};

struct thread_stats {
  histogram latency;
  histogram connack_latency;  // from the intended connect time
  u64 connack_ok = 0;
  i64 last_connack = 0;
  std::array<u64, 2> session_present{};
  std::array<u64, 256> refused_by_code{};
  u64 acked_measured = 0;  // acks whose send (intended) time fell in the window
  u64 sent_measured = 0;
  u64 sent_total = 0;
  u64 acked_total = 0;
  u64 connected = 0;
  u64 connect_failed = 0;
  u64 connack_refused = 0;
  u64 disconnects = 0;
  u64 protocol_errors = 0;
  u64 negative_acks = 0;
  u64 pings = 0;
  u64 unsent_due = 0;  // open loop: due by the end but never sent
  u64 outstanding_at_end = 0;
  u32 server_receive_maximum = 0;
  std::string first_error;
};

// Times shared by every thread, set once connecting is over.
std::atomic<int> threads_connected{0};
std::atomic<i64> measure_start{0};  // 0 = not yet
std::atomic<bool> stop_all{false};

void on_signal(int) { stop_all.store(true); }

class worker {
 public:
  worker(const options& o, std::vector<u32> indices) : o_(o), indices_(std::move(indices)) {}

  void run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(indices_.size());
    std::string payload(o_.payload, 'x');
    for (std::size_t i = 0; i < conns_.size(); ++i) setup(conns_[i], indices_[i], payload);
    connect_phase();
    threads_connected.fetch_add(1);
    if (o_.connect_only) {
      for (auto& c : conns_)
        if (c.fd >= 0) ::close(c.fd);
      ::close(ep_);
      return;
    }
    // Wait for the common start, keeping connections serviced.
    while (measure_start.load() == 0 && !stop_all.load()) poll_ns(1'000'000);
    run_phase();
    for (auto& c : conns_)
      if (c.fd >= 0) ::close(c.fd);
    ::close(ep_);
  }

  thread_stats stats;

 private:
  void setup(connection& c, u32 index, const std::string& payload) {
    c.index = index;
    std::string topic;
    for (std::size_t i = 0; i < o_.topic.size(); ++i) {
      if (o_.topic[i] == '%' && i + 1 < o_.topic.size() && o_.topic[i + 1] == 'i') {
        topic += std::to_string(index);
        ++i;
      } else {
        topic.push_back(o_.topic[i]);
      }
    }
    std::string var;
    put_str(var, topic);
    std::size_t id_off_in_var = var.size();
    if (o_.qos > 0) var.append(2, '\0');
    if (o_.version == 5) var.push_back(0);
    var += payload;
    u8 hdr[5];
    hdr[0] = u8(0x30 | (o_.qos << 1));
    std::size_t n = 1 + put_varint(hdr + 1, u32(var.size()));
    c.publish.assign(reinterpret_cast<char*>(hdr), n);
    c.id_offset = n + id_off_in_var;
    c.publish += var;
    c.connect = encode_connect(o_, o_.client_prefix + std::to_string(index));
    c.window = o_.qos > 0 ? o_.inflight : 0;
    if (c.window) {
      c.id_cycle = (65535 / c.window) * c.window;
      c.sent_at.assign(c.window, 0);
      c.phase.assign(c.window, 0);
    }
    // Room for a full window (QoS>0) or a burst of 16 (QoS 0); idle
    // connections only ever hold CONNECT and PINGREQ.
    std::size_t burst =
        o_.idle || o_.connect_only ? 0 : std::size_t(std::max<u32>(c.window, 16)) * (c.publish.size() + 4);
    std::size_t cap = std::max<std::size_t>(c.connect.size(), 16) + burst;
    c.out.reserve(cap);
    c.carry.reserve(256);
  }

  void fail(connection& c, u64& counter, const char* what) {
    counter++;
    if (stats.first_error.empty())
      stats.first_error = std::string(what) + (errno ? std::string(": ") + std::strerror(errno) : std::string());
    close_conn(c);
  }

  void close_conn(connection& c) {
    if (c.fd >= 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
    }
    if (c.st == state::ready) ready_--;
    c.fd = -1;
    c.st = state::closed;
  }

  bool start_connect(connection& c, i64 due) {
    c.connect_due = due;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      errno = errno ? errno : EMFILE;
      fail(c, stats.connect_failed, "socket");
      return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (1 + c.index % o_.source_ips));
    if (o_.source_ips > 1 && ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      fail(c, stats.connect_failed, "bind");
      return false;
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(u16(o_.port));
    inet_pton(AF_INET, o_.host.c_str(), &dst.sin_addr);
    c.fd = fd;
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    if (r != 0 && errno != EINPROGRESS) {
      fail(c, stats.connect_failed, "connect");
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = u32(&c - conns_.data());
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    c.want_write = true;
    c.st = state::connecting;
    pending_++;
    return true;
  }

  void connect_phase() {
    i64 t0 = now_ns();
    i64 deadline = t0 + i64(o_.connect_timeout * 1e9);
    double per_thread_rate = o_.connect_rate > 0 ? o_.connect_rate / double(o_.threads) : 0;
    std::size_t next = 0;
    while (!stop_all.load()) {
      i64 now = now_ns();
      std::size_t allowed = conns_.size();
      if (per_thread_rate > 0) allowed = std::min(allowed, std::size_t(double(now - t0) / 1e9 * per_thread_rate) + 1);
      while (next < allowed && pending_ < o_.connect_concurrency) {
        // Intended time: the rate's schedule (a full window delays the
        // CONNECT, and the delay counts), or now when unlimited.
        i64 due = per_thread_rate > 0 ? t0 + i64(double(next) / per_thread_rate * 1e9) : now_ns();
        start_connect(conns_[next++], due);
      }
      if (next == conns_.size() && pending_ == 0) break;
      if (now > deadline) {
        for (auto& c : conns_)
          if (c.st == state::connecting || c.st == state::wait_connack) {
            errno = ETIMEDOUT;
            pending_--;
            fail(c, stats.connect_failed, "connect timeout");
          }
        stats.connect_failed += conns_.size() - next;
        break;
      }
      poll_ns(1'000'000);
    }
    stats.connected = o_.disconnect ? stats.connack_ok : ready_;
  }

  // One epoll round, blocking at most `timeout_ns`.
  void poll_ns(i64 timeout_ns) {
    epoll_event evs[256];
    timespec ts{time_t(timeout_ns / 1'000'000'000), long(timeout_ns % 1'000'000'000)};
    int n = epoll_pwait2(ep_, evs, 256, &ts, nullptr);
    now_ = now_ns();
    for (int i = 0; i < n; ++i) {
      connection& c = conns_[evs[i].data.u32];
      if (c.fd < 0) continue;
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        errno = err;
        if (c.st == state::connecting || c.st == state::wait_connack) {
          pending_--;
          fail(c, stats.connect_failed, "connect");
        } else {
          fail(c, stats.disconnects, "connection closed");
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT) {
        if (c.st == state::connecting) {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err) {
            errno = err;
            pending_--;
            fail(c, stats.connect_failed, "connect");
            continue;
          }
          c.st = state::wait_connack;
          append(c, c.connect.data(), c.connect.size());
        }
        flush(c);
        if (c.fd < 0) continue;
      }
      if (evs[i].events & EPOLLIN) read_conn(c);
    }
    flush_dirty();
  }

  void append(connection& c, const char* p, std::size_t n) {
    c.out.insert(c.out.end(), p, p + n);
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(u32(&c - conns_.data()));
    }
  }

  void flush_dirty() {
    for (u32 i : dirty_) {
      connection& c = conns_[i];
      c.dirty = false;
      if (c.fd >= 0 && c.st != state::connecting) flush(c);
    }
    dirty_.clear();
  }

  void flush(connection& c) {
    while (c.out_begin < c.out.size()) {
      ssize_t w = ::send(c.fd, c.out.data() + c.out_begin, c.out.size() - c.out_begin, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR) continue;
        fail(c, stats.disconnects, "send");
        return;
      }
      c.out_begin += std::size_t(w);
    }
    bool pending = c.out_begin < c.out.size();
    if (!pending) {
      c.out.clear();
      c.out_begin = 0;
    }
    if (pending != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (pending ? u32(EPOLLOUT) : 0u);
      ev.data.u32 = u32(&c - conns_.data());
      epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = pending;
    }
  }

  void read_conn(connection& c) {
    for (;;) {
      ssize_t r = ::recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
      if (r == 0) {
        errno = 0;
        if (c.st == state::wait_connack) pending_--;
        fail(c, c.st == state::wait_connack ? stats.connect_failed : stats.disconnects, "closed by server");
        return;
      }
      if (r < 0) {
        if (errno == EAGAIN) return;
        if (errno == EINTR) continue;
        if (c.st == state::wait_connack) pending_--;
        fail(c, stats.disconnects, "recv");
        return;
      }
      const u8* p = reinterpret_cast<const u8*>(rbuf_.data());
      std::size_t n = std::size_t(r);
      if (!c.carry.empty()) {
        c.carry.append(rbuf_.data(), n);
        std::size_t used = parse(c, reinterpret_cast<const u8*>(c.carry.data()), c.carry.size());
        if (c.fd < 0) return;
        c.carry.erase(0, used);
      } else {
        std::size_t used = parse(c, p, n);
        if (c.fd < 0) return;
        if (used < n) c.carry.assign(rbuf_.data() + used, n - used);
      }
      if (std::size_t(r) < rbuf_.size()) return;
    }
  }

  // Handles every complete packet in [p, p+n); returns the bytes consumed.
  std::size_t parse(connection& c, const u8* p, std::size_t n) {
    std::size_t pos = 0;
    while (pos < n) {
      if (n - pos < 2) break;
      u32 len = 0;
      std::size_t i = pos + 1;
      int shift = 0;
      bool complete = false;
      while (i < n && shift <= 21) {
        u8 b = p[i++];
        len |= u32(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (shift > 21) {
          errno = 0;
          fail(c, stats.protocol_errors, "bad remaining length");
          return n;
        }
        break;
      }
      if (n - i < len) break;
      handle(c, p[pos], p + i, len);
      if (c.fd < 0) return n;
      pos = i + len;
    }
    return pos;
  }

  void handle(connection& c, u8 type, const u8* body, u32 len) {
    errno = 0;
    switch (type >> 4) {
      case 2: {  // CONNACK
        if (c.st != state::wait_connack || len < 2) return fail(c, stats.protocol_errors, "unexpected CONNACK");
        pending_--;
        stats.connack_latency.record(now_ - c.connect_due);
        stats.last_connack = now_;
        if (body[1] != 0) {
          if (stats.first_error.empty()) stats.first_error = "CONNACK refused, code " + std::to_string(body[1]);
          stats.connack_refused++;
          stats.refused_by_code[body[1]]++;
          close_conn(c);
          return;
        }
        stats.connack_ok++;
        stats.session_present[body[0] & 1]++;
        if (o_.disconnect) {
          static const char disconnect[2] = {char(0xE0), 0};
          append(c, disconnect, 2);
          flush(c);
          close_conn(c);
          return;
        }
        if (o_.version == 5 && len > 2) {  // look for Receive Maximum (0x21)
          u32 plen = 0, shift = 0;
          std::size_t i = 2;
          while (i < len) {
            u8 b = body[i++];
            plen |= u32(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80)) break;
          }
          std::size_t end = std::min<std::size_t>(len, i + plen);
          while (i < end) {
            u8 id = body[i++];
            if (id == 0x21 && i + 2 <= end) {
              u32 rm = (u32(body[i]) << 8) | body[i + 1];
              stats.server_receive_maximum = rm;
              break;
            }
            // Skip a property we do not need: sizes per MQTT 5 table 2-4.
            switch (id) {
              case 0x01:
              case 0x17:
              case 0x19:
              case 0x24:
              case 0x25:
              case 0x28:
              case 0x29:
              case 0x2A:
                i += 1;
                break;
              case 0x13:
              case 0x21:
              case 0x22:
                i += 2;
                break;
              case 0x02:
              case 0x11:
              case 0x18:
              case 0x27:
                i += 4;
                break;
              case 0x26:
                if (i + 2 <= end) i += 2 + ((u32(body[i]) << 8) | body[i + 1]);
                if (i + 2 <= end) i += 2 + ((u32(body[i]) << 8) | body[i + 1]);
                break;
              default:
                if (i + 2 <= end)
                  i += 2 + ((u32(body[i]) << 8) | body[i + 1]);
                else
                  i = end;
            }
          }
          if (stats.server_receive_maximum && c.window > stats.server_receive_maximum) {
            if (stats.first_error.empty())
              stats.first_error = "--inflight " + std::to_string(c.window) + " exceeds the server's Receive Maximum " +
                                  std::to_string(stats.server_receive_maximum);
          }
        }
        c.st = state::ready;
        ready_++;
        c.next_ping = now_ + i64(o_.keepalive) * 500'000'000 * i64(1 + c.index % 997) / 997;
        return;
      }
      case 4:    // PUBACK
      case 7: {  // PUBCOMP
        if (len < 2) return fail(c, stats.protocol_errors, "short ack");
        if (len >= 3 && body[2] >= 0x80) stats.negative_acks++;
        u16 id = u16((u32(body[0]) << 8) | body[1]);
        complete(c, id, (type >> 4) == 4 ? 1 : 2);
        return;
      }
      case 5: {  // PUBREC -> PUBREL
        if (len < 2) return fail(c, stats.protocol_errors, "short PUBREC");
        if (len >= 3 && body[2] >= 0x80) {
          stats.negative_acks++;
          u16 id = u16((u32(body[0]) << 8) | body[1]);
          complete(c, id, 1);  // the exchange ends at a failed PUBREC
          return;
        }
        u16 id = u16((u32(body[0]) << 8) | body[1]);
        u32 slot = (u32(id) - 1) % c.window;
        if (id == 0 || c.phase[slot] != 1) return fail(c, stats.protocol_errors, "unexpected PUBREC");
        c.phase[slot] = 2;
        char rel[4] = {char(0x62), 2, char(body[0]), char(body[1])};
        append(c, rel, 4);
        return;
      }
      case 13:  // PINGRESP
        return;
      case 14:  // DISCONNECT (5.0)
        if (stats.first_error.empty())
          stats.first_error = "DISCONNECT from server, reason " + std::to_string(len ? body[0] : 0);
        return fail(c, stats.disconnects, "DISCONNECT");
      default:
        return fail(c, stats.protocol_errors, "unexpected packet");
    }
  }

  void complete(connection& c, u16 id, int expect_phase) {
    if (c.window == 0 || id == 0) return fail(c, stats.protocol_errors, "ack for QoS 0");
    u32 slot = (u32(id) - 1) % c.window;
    if (c.sent_at[slot] == 0 || c.phase[slot] != expect_phase)
      return fail(c, stats.protocol_errors, "ack for an unknown packet id");
    i64 t = c.sent_at[slot];
    c.sent_at[slot] = 0;
    c.phase[slot] = 0;
    c.in_flight--;
    stats.acked_total++;
    // Everything acknowledged inside the measured window counts, whenever it
    // was sent: with deep windows an ack may take longer than the window.
    if (now_ >= m_start_ && now_ <= m_end_) {
      stats.latency.record(now_ - t);
      stats.acked_measured++;
    }
    if (sending_) {
      if (o_.rate > 0)
        send_due(c);
      else
        send_one(c, now_);
    }
  }

  // Appends one PUBLISH stamped with `intended`; false when the window is full.
  bool send_one(connection& c, i64 intended) {
    if (c.st != state::ready) return false;
    if (c.window) {
      if (c.in_flight >= c.window) return false;
      u32 id = c.next_id_seq % c.id_cycle + 1;
      u32 slot = (id - 1) % c.window;
      if (c.sent_at[slot] != 0) return false;  // older id still out (acks out of order)
      c.next_id_seq++;
      c.sent_at[slot] = intended == 0 ? 1 : intended;
      c.phase[slot] = 1;  // waiting PUBACK / PUBREC
      c.in_flight++;
      c.publish[c.id_offset] = char(id >> 8);
      c.publish[c.id_offset + 1] = char(id & 0xff);
    }
    append(c, c.publish.data(), c.publish.size());
    stats.sent_total++;
    if (intended >= m_start_ && intended <= m_end_) stats.sent_measured++;
    return true;
  }

  // Open loop: messages of this connection are due at
  // start + (k * n_conns + local_index) / rate.
  i64 intended_time(const connection& c, u64 k) const {
    double t = (double(k) * double(conns_.size()) + double(&c - conns_.data())) / rate_;
    return t0_ + i64(t * 1e9);
  }

  void send_due(connection& c) {
    while (c.sent < c.due) {
      if (o_.qos == 0 && c.out.size() - c.out_begin > 1 << 16) break;  // socket full: back off
      if (!send_one(c, intended_time(c, c.sent))) break;
      c.sent++;
    }
  }

  void run_phase() {
    sending_ = !o_.idle;
    i64 start = measure_start.load();
    t0_ = start;
    m_start_ = start + i64(o_.warmup * 1e9);
    m_end_ = m_start_ + i64(o_.duration * 1e9);
    if (o_.idle) m_start_ = start, m_end_ = start + i64(o_.duration * 1e9);
    rate_ = o_.rate > 0 ? o_.rate * double(conns_.size()) / double(o_.connections) : 0;
    u64 issued = 0;
    now_ = now_ns();
    if (sending_ && o_.rate <= 0) {
      for (auto& c : conns_) {
        if (o_.qos == 0) continue;
        while (send_one(c, now_)) {
        }
      }
    }
    while (!stop_all.load()) {
      now_ = now_ns();
      if (now_ >= m_end_) break;
      if (sending_ && o_.rate > 0 && rate_ > 0) {
        u64 should = u64(double(now_ - t0_) / 1e9 * rate_);
        std::size_t n = conns_.size();
        for (; issued < should; ++issued) {
          connection& c = conns_[issued % n];
          c.due++;
          send_due(c);
        }
      }
      if (sending_ && o_.rate <= 0 && o_.qos == 0) {
        // QoS 0 closed loop: keep every socket busy up to ~64 KiB queued.
        for (auto& c : conns_)
          for (int k = 0; k < 16 && c.st == state::ready && c.out.size() - c.out_begin < (1 << 16); ++k)
            send_one(c, now_);
      }
      if (now_ >= next_ping_scan_) {
        next_ping_scan_ = now_ + 100'000'000;
        for (auto& c : conns_) {
          if (c.st == state::ready && now_ >= c.next_ping) {
            static const char ping[2] = {char(0xC0), 0};
            append(c, ping, 2);
            stats.pings++;
            c.next_ping = now_ + i64(o_.keepalive) * 500'000'000;
          }
        }
      }
      flush_dirty();
      i64 wait = o_.qos == 0 && sending_ && o_.rate <= 0 ? 100'000 : 1'000'000;
      if (sending_ && o_.rate > 0 && rate_ > 0) {
        // Wake for the next due message (sub-millisecond), not a fixed tick.
        i64 next = t0_ + i64(double(issued + 1) / rate_ * 1e9);
        wait = std::clamp<i64>(next - now_ns(), 0, 1'000'000);
      }
      poll_ns(wait);
      if (ready_ == 0 && !o_.idle) break;
    }
    // Drain: let acks already on the way land for up to 2 s (not measured).
    sending_ = false;
    i64 drain_until = now_ns() + 2'000'000'000;
    if (!o_.idle)
      while (stats.acked_total < stats.sent_total && now_ns() < drain_until && ready_ > 0 && !stop_all.load())
        poll_ns(5'000'000);
    for (auto& c : conns_) {
      if (c.due > c.sent) stats.unsent_due += c.due - c.sent;
      stats.outstanding_at_end += c.in_flight;
    }
  }

  const options& o_;
  std::vector<u32> indices_;
  std::vector<connection> conns_;
  std::vector<u32> dirty_;
  std::array<char, 1 << 16> rbuf_{};
  int ep_ = -1;
  u32 pending_ = 0;
  u64 ready_ = 0;
  i64 now_ = 0;
  i64 t0_ = 0, m_start_ = INT64_MAX, m_end_ = INT64_MAX;
  double rate_ = 0;
  bool sending_ = false;
  i64 next_ping_scan_ = 0;
};

long rss_kib(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

std::string json_escape(const std::string& s) {
  std::string r;
  for (char ch : s) {
    if (ch == '"' || ch == '\\')
      r.push_back('\\'), r.push_back(ch);
    else if (u8(ch) < 0x20)
      r += ' ';
    else
      r.push_back(ch);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  // Hard bound on the whole run, whatever the server does.
  alarm(unsigned(o.connect_timeout + o.warmup + o.duration + 30));

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  // With --disconnect only the outstanding CONNECTs hold descriptors.
  rlim_t need = rlim_t(o.disconnect ? std::min(o.connections, o.connect_concurrency) : o.connections) + 64;
  if (rl.rlim_cur < need) {
    rl.rlim_cur = std::min(need, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < need)
    std::fprintf(stderr, "mqtt_load: warning: open files limit %llu < %llu needed; raise ulimit -n\n",
                 static_cast<unsigned long long>(rl.rlim_cur), static_cast<unsigned long long>(need));

  long rss_before = rss_kib(o.server_pid);
  std::vector<std::unique_ptr<worker>> workers;
  for (u32 t = 0; t < o.threads; ++t) {
    std::vector<u32> idx;
    for (u32 i = t; i < o.connections; i += o.threads) idx.push_back(i);
    workers.push_back(std::make_unique<worker>(o, std::move(idx)));
  }
  i64 t_connect = now_ns();
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  while (threads_connected.load() < int(o.threads) && !stop_all.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  double connect_seconds = double(now_ns() - t_connect) / 1e9;
  u64 connected = 0;
  for (auto& w : workers) connected += w->stats.connected;
  if (!o.quiet)
    std::fprintf(stderr, "mqtt_load: %" PRIu64 "/%u connected in %.2f s\n", connected, o.connections, connect_seconds);
  // Let the server settle before sampling its memory.
  long rss_after = -1;
  if (o.server_pid > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    rss_after = rss_kib(o.server_pid);
  }
  measure_start.store(now_ns());
  for (auto& t : threads) t.join();

  thread_stats total;
  for (auto& w : workers) {
    auto& s = w->stats;
    total.latency.merge(s.latency);
    total.connack_latency.merge(s.connack_latency);
    total.connack_ok += s.connack_ok;
    total.last_connack = std::max(total.last_connack, s.last_connack);
    for (int i = 0; i < 2; ++i) total.session_present[i] += s.session_present[i];
    for (int i = 0; i < 256; ++i) total.refused_by_code[i] += s.refused_by_code[i];
    total.acked_measured += s.acked_measured;
    total.sent_measured += s.sent_measured;
    total.sent_total += s.sent_total;
    total.acked_total += s.acked_total;
    total.connected += s.connected;
    total.connect_failed += s.connect_failed;
    total.connack_refused += s.connack_refused;
    total.disconnects += s.disconnects;
    total.protocol_errors += s.protocol_errors;
    total.negative_acks += s.negative_acks;
    total.pings += s.pings;
    total.unsent_due += s.unsent_due;
    total.outstanding_at_end += s.outstanding_at_end;
    total.server_receive_maximum = std::max(total.server_receive_maximum, s.server_receive_maximum);
    if (total.first_error.empty()) total.first_error = s.first_error;
  }
  long rss_end = rss_kib(o.server_pid);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) / 1e6; };
  double cpu_user = secs(ru.ru_utime), cpu_sys = secs(ru.ru_stime);
  double rate = o.qos > 0 ? double(total.acked_measured) / o.duration : double(total.sent_measured) / o.duration;
  u64 errors =
      total.connect_failed + total.connack_refused + total.disconnects + total.protocol_errors + total.negative_acks;
  auto us = [](i64 ns) { return double(ns) / 1000.0; };
  const auto& h = total.latency;
  const auto& ch = total.connack_latency;
  // Connects/s: first CONNECT to last CONNACK.
  if (o.connect_only && total.last_connack > t_connect) connect_seconds = double(total.last_connack - t_connect) / 1e9;
  double connect_rate = connect_seconds > 0 ? double(total.connack_ok) / connect_seconds : 0;
  std::string refused_json, refused_text;
  for (int i = 0; i < 256; ++i) {
    if (!total.refused_by_code[i]) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s\"%d\":%" PRIu64, refused_json.empty() ? "" : ",", i, total.refused_by_code[i]);
    refused_json += buf;
    std::snprintf(buf, sizeof buf, "%s0x%02X: %" PRIu64, refused_text.empty() ? "" : ", ", i, total.refused_by_code[i]);
    refused_text += buf;
  }
  double rss_per_conn = (rss_before >= 0 && rss_after >= 0 && connected)
                            ? double(rss_after - rss_before) * 1024.0 / double(connected)
                            : -1;

  if (!o.quiet) {
    if (o.connect_only) {
      std::printf("connect only, MQTT %s, %s session%s, window %u%s%s\n", o.version == 5 ? "5.0" : "3.1.1",
                  o.persistent ? "persistent" : "clean",
                  o.persistent && o.version == 5 ? (", expiry " + std::to_string(o.session_expiry) + " s").c_str() : "",
                  o.connect_concurrency, o.disconnect ? ", DISCONNECT after CONNACK" : "",
                  o.connect_rate > 0 ? (", target " + std::to_string(o.connect_rate) + " connects/s").c_str() : "");
      std::printf("connects: %" PRIu64 " accepted in %.2f s = %.0f connects/s; session present 1: %" PRIu64
                  ", 0: %" PRIu64 "; refused: %" PRIu64 "%s%s%s\n",
                  total.connack_ok, connect_seconds, connect_rate, total.session_present[1], total.session_present[0],
                  total.connack_refused, refused_text.empty() ? "" : " (", refused_text.c_str(),
                  refused_text.empty() ? "" : ")");
      std::printf("CONNACK latency (us): p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (n=%" PRIu64 ")\n",
                  us(ch.percentile(50)), us(ch.percentile(90)), us(ch.percentile(99)), us(ch.percentile(99.9)),
                  us(ch.max()), ch.count());
    } else if (o.idle) {
      std::printf("idle: %" PRIu64 " connections held %.0f s, %" PRIu64 " PINGREQ\n", total.connected, o.duration,
                  total.pings);
    } else {
      std::printf("%s loop, MQTT %s QoS %d, %u B, %" PRIu64 " connections, inflight %u%s\n",
                  o.rate > 0 ? "open" : "closed", o.version == 5 ? "5.0" : "3.1.1", o.qos, o.payload, total.connected,
                  o.inflight, o.rate > 0 ? (", target " + std::to_string(o.rate) + " msg/s").c_str() : "");
      std::printf("rate: %.0f msg/s over %.1f s\n", rate, o.duration);
      if (o.qos > 0)
        std::printf("%s latency (us): p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (n=%" PRIu64 ")\n",
                    o.qos == 1 ? "PUBACK" : "PUBCOMP", us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
                    us(h.percentile(99.9)), us(h.max()), h.count());
    }
    if (rss_per_conn >= 0)
      std::printf("server RSS: %ld KiB before, %ld KiB connected, %ld KiB at end; %.0f B per connection\n", rss_before,
                  rss_after, rss_end, rss_per_conn);
    std::printf("errors: %" PRIu64 " (connect %" PRIu64 ", refused %" PRIu64 ", disconnects %" PRIu64
                ", protocol %" PRIu64 ", negative acks %" PRIu64 ")%s%s\n",
                errors, total.connect_failed, total.connack_refused, total.disconnects, total.protocol_errors,
                total.negative_acks, total.first_error.empty() ? "" : "; first: ", total.first_error.c_str());
    if (o.rate > 0 && total.unsent_due)
      std::printf("warning: %" PRIu64 " messages were due but never sent (server could not keep up)\n",
                  total.unsent_due);
  }

  if (!o.json_file.empty()) {
    FILE* f = std::fopen(o.json_file.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "mqtt_load: cannot write %s: %s\n", o.json_file.c_str(), std::strerror(errno));
      return 1;
    }
    std::fprintf(
        f,
        "{\"label\":\"%s\",\"mode\":\"%s\",\"mqtt\":\"%s\",\"qos\":%d,\"payload\":%u,\"connections\":%u,"
        "\"connected\":%" PRIu64
        ",\"inflight\":%u,\"target_rate\":%.1f,\"warmup_s\":%.1f,"
        "\"duration_s\":%.1f,\"threads\":%u,\"connect_s\":%.3f,\"rate\":%.1f,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
        ",\"latency_us\":{\"count\":%" PRIu64
        ",\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
        "\"errors\":{\"total\":%" PRIu64 ",\"connect\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"disconnects\":%" PRIu64
        ",\"protocol\":%" PRIu64 ",\"negative_acks\":%" PRIu64 ",\"first\":\"%s\"},\"unsent_due\":%" PRIu64
        ",\"outstanding_at_end\":%" PRIu64
        ",\"server_rss_kib\":{\"before\":%ld,\"connected\":%ld,\"end\":%ld},\"rss_bytes_per_connection\":%.1f,\"cpu_"
        "s\":{\"user\":%.3f,\"sys\":%.3f},"
        "\"connect\":{\"persistent\":%s,\"session_expiry\":%u,\"disconnect\":%s,\"window\":%u,"
        "\"target_rate\":%.1f,\"rate\":%.1f,\"accepted\":%" PRIu64 ",\"session_present\":{\"1\":%" PRIu64
        ",\"0\":%" PRIu64 "},\"refused\":{%s},\"latency_us\":{\"count\":%" PRIu64
        ",\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}}}\n",
        json_escape(o.label).c_str(),
        o.connect_only ? "connect"
        : o.idle       ? "idle"
                       : (o.rate > 0 ? "open" : "closed"),
        o.version == 5 ? "5.0" : "3.1.1", o.qos, o.payload, o.connections, total.connected, o.inflight, o.rate,
        o.warmup, o.duration, o.threads, connect_seconds, o.idle || o.connect_only ? 0.0 : rate, total.sent_total,
        total.acked_total, h.count(), us(h.min()), us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
        us(h.percentile(99.9)), us(h.max()), errors, total.connect_failed, total.connack_refused, total.disconnects,
        total.protocol_errors, total.negative_acks, json_escape(total.first_error).c_str(), total.unsent_due,
        total.outstanding_at_end, rss_before, rss_after, rss_end, rss_per_conn, cpu_user, cpu_sys,
        o.persistent ? "true" : "false", o.persistent && o.version == 5 ? o.session_expiry : 0,
        o.disconnect ? "true" : "false", o.connect_concurrency, o.connect_rate, connect_rate, total.connack_ok,
        total.session_present[1], total.session_present[0], refused_json.c_str(), ch.count(), us(ch.min()),
        us(ch.percentile(50)), us(ch.percentile(90)), us(ch.percentile(99)), us(ch.percentile(99.9)), us(ch.max()));
    std::fclose(f);
  }
  return total.connected == 0 ? 1 : 0;
}
