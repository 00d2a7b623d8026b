// Shared by the Redis session store integration and fault tests: where the
// local stack's Redis is (scripts/stack up: primary + 2 replicas on
// 6379-6381, Sentinels 26379-26381, master "wharf"), a plain synchronous
// hiredis client to look at Redis directly, and a store running on its own
// io_context thread with blocking wrappers.
//
// WHARF_TEST_REDIS_SENTINELS ("host:port,host:port") and WHARF_STACK (the
// stack script) override the defaults, for running against another stack.
#pragma once

#include "config/config.h"
#include "state/redis/redis_session_store.h"
#include "state/redis/redis_url.h"
#include "state/session_store.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <sys/wait.h>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace wharf::state::testing {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

inline std::vector<std::pair<std::string, int>> sentinels() {
  std::vector<std::pair<std::string, int>> out;
  std::stringstream ss(env_or("WHARF_TEST_REDIS_SENTINELS", "127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381"));
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto colon = item.rfind(':');
    out.emplace_back(item.substr(0, colon), std::stoi(item.substr(colon + 1)));
  }
  return out;
}

inline std::string sentinel_url() {
  std::string url = "sentinel://";
  bool first = true;
  for (const auto& [h, p] : sentinels()) {
    url += (first ? "" : ",") + h + ":" + std::to_string(p);
    first = false;
  }
  return url + "/wharf";
}

inline std::string stack_script() { return env_or("WHARF_STACK", WHARF_SOURCE_DIR "/scripts/stack"); }

// A synchronous hiredis connection for looking at Redis from the test.
class raw_redis {
 public:
  raw_redis(const std::string& host, int port) {
    timeval tv{2, 0};
    ctx_ = redisConnectWithTimeout(host.c_str(), port, tv);
    if (ctx_ != nullptr && ctx_->err == 0) redisSetTimeout(ctx_, tv);
  }
  ~raw_redis() {
    if (ctx_ != nullptr) redisFree(ctx_);
  }
  raw_redis(const raw_redis&) = delete;
  raw_redis& operator=(const raw_redis&) = delete;

  bool ok() const { return ctx_ != nullptr && ctx_->err == 0; }

  // Array replies flattened to strings; integers as decimal; nil as "(nil)".
  std::vector<std::string> command(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    if (!ok()) return out;
    std::vector<const char*> argv;
    std::vector<std::size_t> len;
    for (const auto& a : args) {
      argv.push_back(a.data());
      len.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), len.data()));
    if (r == nullptr) return out;
    flatten(r, out);
    freeReplyObject(r);
    return out;
  }

  std::string get(const std::vector<std::string>& args) {
    auto v = command(args);
    return v.empty() ? std::string("(nil)") : v.front();
  }

 private:
  static void flatten(const redisReply* r, std::vector<std::string>& out) {
    switch (r->type) {
      case REDIS_REPLY_ARRAY:
        for (std::size_t i = 0; i < r->elements; ++i) flatten(r->element[i], out);
        break;
      case REDIS_REPLY_INTEGER:
        out.push_back(std::to_string(r->integer));
        break;
      case REDIS_REPLY_NIL:
        out.push_back("(nil)");
        break;
      default:
        out.emplace_back(r->str, r->len);
        break;
    }
  }
  redisContext* ctx_ = nullptr;
};

// The primary as the Sentinels name it now, or nullopt.
inline std::optional<std::pair<std::string, int>> current_primary() {
  for (const auto& [h, p] : sentinels()) {
    raw_redis s(h, p);
    if (!s.ok()) continue;
    auto v = s.command({"SENTINEL", "get-master-addr-by-name", "wharf"});
    if (v.size() == 2) return std::make_pair(v[0], std::stoi(v[1]));
  }
  return std::nullopt;
}

// Replicas the primary reports online in INFO replication.
inline std::vector<std::pair<std::string, int>> online_replicas(const std::pair<std::string, int>& primary) {
  std::vector<std::pair<std::string, int>> out;
  raw_redis r(primary.first, primary.second);
  std::istringstream info(r.get({"INFO", "replication"}));
  std::string line;
  while (std::getline(info, line)) {
    if (!line.starts_with("slave") || line.find("state=online") == std::string::npos) continue;
    auto ip = line.find("ip=");
    auto port = line.find("port=");
    if (ip == std::string::npos || port == std::string::npos) continue;
    out.emplace_back(line.substr(ip + 3, line.find(',', ip) - ip - 3), std::stoi(line.substr(port + 5)));
  }
  return out;
}

// Fails the current test unless the stack's Redis answers through Sentinel.
inline void require_stack() {
  auto p = current_primary();
  ASSERT_TRUE(p.has_value()) << "no Sentinel at " << sentinel_url()
                             << " names a primary for 'wharf': run scripts/stack up";
  raw_redis r(p->first, p->second);
  ASSERT_EQ(r.get({"PING"}), "PONG") << "Redis primary " << p->first << ":" << p->second << " does not answer";
}

// The stack's Redis ports in redis-1..3 order ($WHARF_TEST_REDIS_PORTS).
inline std::vector<int> stack_redis_ports() {
  std::vector<int> out;
  std::stringstream ss(env_or("WHARF_TEST_REDIS_PORTS", "6379,6380,6381"));
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

// The scripts/stack name (redis-1..3) of the Redis on `port`; "" if none.
inline std::string stack_redis_name(int port) {
  const auto ports = stack_redis_ports();
  for (std::size_t i = 0; i < ports.size(); ++i)
    if (ports[i] == port) return "redis-" + std::to_string(i + 1);
  return {};
}

// scripts/stack with `args` (WHARF_STACK_DIR is inherited); its exit status.
inline int run_stack(const std::string& args) {
  const std::string cmd = stack_script() + " " + args;
  int rc = std::system(cmd.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

// Waits until the primary Sentinel names has both replicas online.
inline bool eventually_two_replicas(std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (auto p = current_primary(); p && online_replicas(*p).size() >= 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return false;
}

// Restarts the stopped or killed Redis servers in `names` (when not empty)
// and waits until the primary has both replicas again, so later tests find
// the stack as `scripts/stack up` left it.
struct restore_stack {
  std::string names;
  ~restore_stack() {
    if (names.empty()) return;
    EXPECT_EQ(run_stack("start " + names), 0) << "could not restart " << names;
    if (eventually_two_replicas(std::chrono::seconds(60))) return;
    ADD_FAILURE() << "the stack did not get back to a primary with two replicas after restarting " << names;
  }
};

// The tests keep their sessions under their own key prefix, so that wharf
// nodes sharing the stack (which sweep and claim wills under "wharf:") and
// these tests do not see each other's sessions.
inline std::string key_prefix() { return env_or("WHARF_TEST_REDIS_PREFIX", "wharf-test:"); }

inline std::string session_key(const std::string& client_id) { return key_prefix() + "s:{" + client_id + "}"; }

// A store of the real kind on its own thread, with blocking calls. Every
// wait is bounded (hang_guard) so a hang fails the test instead of
// blocking ctest.
class store_runner {
 public:
  static constexpr auto hang_guard = std::chrono::seconds(20);

  explicit store_runner(std::string node_id, config::redis_config cfg = default_config()) : work_(io_.get_executor()) {
    auto target = parse_redis_url(cfg.url);
    if (target) {
      store_ = std::make_unique<redis_session_store>(cfg, *target, std::move(node_id), io_, registry_, key_prefix());
    } else {
      ADD_FAILURE() << "bad Redis URL " << cfg.url;
      store_ = make_session_store(config::redis_config{}, std::move(node_id), io_, registry_);
    }
    thread_ = std::thread([this] { io_.run(); });
  }
  ~store_runner() {
    boost::asio::post(io_, [this] { store_.reset(); });
    work_.reset();
    thread_.join();
  }

  static config::redis_config default_config() {
    config::redis_config c;
    c.url = sentinel_url();
    c.wait_replicas = 1;
    c.wait_timeout = std::chrono::milliseconds(1000);
    c.command_timeout = std::chrono::milliseconds(3000);
    c.heartbeat_interval = std::chrono::milliseconds(500);
    c.node_ttl = std::chrono::milliseconds(3000);
    return c;
  }

  session_store& store() { return *store_; }
  prometheus::Registry& registry() { return registry_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  template <class T, class Start>
  boost::system::result<T> call(Start start) {
    auto promise = std::make_shared<std::promise<boost::system::result<T>>>();
    auto future = promise->get_future();
    start([promise](boost::system::result<T> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(hang_guard) != std::future_status::ready) {
      ADD_FAILURE() << "session store handler did not fire: the store hung";
      return boost::system::result<T>(store_error::timeout);
    }
    return future.get();
  }

  boost::system::error_code call_done(std::function<void(done_handler)> start) {
    auto r = call<bool>([&](handler<bool> h) {
      start([h](boost::system::error_code ec) {
        h(ec ? boost::system::result<bool>(boost::system::in_place_error, ec) : boost::system::result<bool>(true));
      });
    });
    return r ? boost::system::error_code{} : r.error();
  }

  boost::system::result<connect_result> connect(const std::string& id, bool clean_start = false,
                                                std::uint32_t expiry = 3600,
                                                std::optional<will_message> will = std::nullopt) {
    connect_params p;
    p.clean_start = clean_start;
    p.session_expiry_seconds = expiry;
    p.will = std::move(will);
    p.connection_id = "conn-" + std::to_string(++connections_);
    return call<connect_result>([&](handler<connect_result> h) { store_->connect(id, p, executor(), h); });
  }

  boost::system::result<disconnect_result> disconnect(const std::string& id, std::uint64_t epoch,
                                                      std::uint32_t expiry = 3600,
                                                      will_handling w = will_handling::publish) {
    return call<disconnect_result>([&](handler<disconnect_result> h) {
      store_->disconnect(id, epoch, {expiry, w}, executor(), h);
    });
  }

  boost::system::error_code qos2_hold(const std::string& id, std::uint64_t epoch, std::uint16_t pid) {
    return call_done([&](done_handler h) { store_->qos2_hold(id, epoch, pid, executor(), h); });
  }

  boost::system::result<bool> qos2_release(const std::string& id, std::uint64_t epoch, std::uint16_t pid) {
    return call<bool>([&](handler<bool> h) { store_->qos2_release(id, epoch, pid, executor(), h); });
  }

  boost::system::result<sweep_result> sweep() {
    return call<sweep_result>([&](handler<sweep_result> h) { store_->poll_due_wills(executor(), h); });
  }

  boost::system::error_code shutdown() {
    return call_done([&](done_handler h) { store_->shutdown(executor(), h); });
  }

  // Drops the store without shutdown(), like a crashed node.
  void crash() {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      store_.reset();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  prometheus::Registry registry_;
  std::unique_ptr<session_store> store_;
  std::thread thread_;
  int connections_ = 0;
};

// A client id no earlier run used.
inline std::string unique_id(const std::string& prefix) {
  static int n = 0;
  return prefix + "-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-" +
         std::to_string(++n);
}

}  // namespace wharf::state::testing
