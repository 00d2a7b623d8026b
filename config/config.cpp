// Loads config structs from YAML, WHARF_* environment and flags, then
// validates them once. One table per struct (the `visit` overloads) drives
// YAML reading, environment overrides and the key listing, so a key cannot be
// readable one way and missing another.
#include "config/load.h"
#include "config/ip_network.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <unistd.h>

namespace wharf::config {

namespace {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string format_duration(milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 != 0 || ms == 0) return std::to_string(ms) + "ms";
  if (ms % 60000 != 0) return std::to_string(ms / 1000) + "s";
  if (ms % 3600000 != 0) return std::to_string(ms / 60000) + "m";
  return std::to_string(ms / 3600000) + "h";
}

// Numeric bounds of one key; `describe` is what the error message offers.
template <class T>
struct bounds {
  T min = std::numeric_limits<T>::lowest();
  T max = std::numeric_limits<T>::max();
};

// What a scalar key accepts beyond its type.
struct choice {
  std::vector<std::string> allowed;  // empty: anything
};

// Converts one scalar text into T. Returns an empty string on success,
// otherwise what would have been valid.
template <class T>
std::string parse_scalar(const std::string& text, T& out, const bounds<T>& b) {
  if constexpr (std::is_same_v<T, bool>) {
    (void)b;
    std::string t = text;
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    if (t == "true" || t == "yes" || t == "on" || t == "1") {
      out = true;
      return {};
    }
    if (t == "false" || t == "no" || t == "off" || t == "0") {
      out = false;
      return {};
    }
    return "expected true or false";
  } else if constexpr (std::is_same_v<T, double>) {
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) return "expected a number";
    if (v < b.min || v > b.max)
      return "expected a number from " + std::to_string(b.min) + " to " + std::to_string(b.max);
    out = v;
    return {};
  } else {
    std::uint64_t v = 0;
    if (!parse_size(text, v)) return "expected a whole number (sizes may use KiB, MiB, GiB)";
    if (v < static_cast<std::uint64_t>(b.min) || v > static_cast<std::uint64_t>(b.max))
      return "expected a whole number from " + std::to_string(b.min) + " to " + std::to_string(b.max);
    out = static_cast<T>(v);
    return {};
  }
}

std::string parse_scalar(const std::string& text, milliseconds& out, const bounds<milliseconds>& b) {
  milliseconds v{};
  if (!parse_duration(text, v)) return "expected a duration with a unit, such as 250ms, 10s, 5m or 1h";
  if (v < b.min || v > b.max)
    return "expected a duration from " + format_duration(b.min) + " to " + format_duration(b.max);
  out = v;
  return {};
}

// The reader of one mapping level. The same `visit` functions drive three
// modes: reading a YAML mapping, applying environment overrides and listing
// keys with their defaults.
class visitor {
 public:
  enum class mode { yaml, env, list };

  visitor(mode m, std::string path, load_result& r) : mode_(m), path_(std::move(path)), result_(r) {}

  void set_yaml(const YAML::Node& n) { node_ = n; }
  void set_env(const std::map<std::string, std::string>* env) { env_ = env; }
  std::vector<std::string>* listing = nullptr;

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  static std::string env_name(const std::string& key_path) {
    std::string n = "WHARF_";
    for (char c : key_path) n += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
  }

  template <class T, class B = bounds<T>>
  void scalar(std::string_view key, T& value, B b = {}, const choice& ch = {}, std::string_view help = {}) {
    keys_.push_back(std::string(key));
    std::string path = key_path(key);
    if (mode_ == mode::list) {
      listing->push_back(path + ": " + show(value) + (help.empty() ? "" : "  # " + std::string(help)));
      return;
    }
    std::optional<std::string> text;
    std::string where;
    if (mode_ == mode::yaml) {
      if (!node_ || !node_.IsMap() || !node_[std::string(key)]) return;
      YAML::Node v = node_[std::string(key)];
      if (!v.IsScalar()) {
        result_.errors.push_back(path + ": expected a single value, got a " + (v.IsMap() ? "mapping" : "list"));
        return;
      }
      text = v.Scalar();
    } else {
      auto it = env_->find(env_name(path));
      if (it == env_->end()) return;
      text = it->second;
      where = " (from " + it->first + ")";
    }
    assign(path, *text, value, b, ch, where);
  }

  void string_list(std::string_view key, std::vector<std::string>& value, std::string_view help = {}) {
    keys_.push_back(std::string(key));
    std::string path = key_path(key);
    if (mode_ == mode::list) {
      listing->push_back(path + ": [" + join(value) + "]" + (help.empty() ? "" : "  # " + std::string(help)));
      return;
    }
    if (mode_ == mode::yaml) {
      if (!node_ || !node_.IsMap() || !node_[std::string(key)]) return;
      YAML::Node v = node_[std::string(key)];
      if (v.IsNull()) {
        value.clear();
        return;
      }
      if (!v.IsSequence()) {
        result_.errors.push_back(path + ": expected a list of strings, e.g. [a, b]");
        return;
      }
      value.clear();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].IsScalar()) {
          result_.errors.push_back(path + "[" + std::to_string(i) + "]: expected a string");
          continue;
        }
        value.push_back(v[i].Scalar());
      }
      return;
    }
    auto it = env_->find(env_name(path));
    if (it == env_->end()) return;
    value.clear();
    std::stringstream ss(it->second);
    for (std::string item; std::getline(ss, item, ',');)
      if (auto t = trim(item); !t.empty()) value.push_back(t);
  }

  void string_map(std::string_view key, std::map<std::string, std::string>& value, std::string_view help = {}) {
    keys_.push_back(std::string(key));
    std::string path = key_path(key);
    if (mode_ == mode::list) {
      listing->push_back(path + ": {}" + (help.empty() ? "" : "  # " + std::string(help)));
      return;
    }
    if (mode_ != mode::yaml || !node_ || !node_.IsMap() || !node_[std::string(key)]) return;
    YAML::Node v = node_[std::string(key)];
    if (v.IsNull()) return;
    if (!v.IsMap()) {
      result_.errors.push_back(path + ": expected a mapping of names to values");
      return;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it->second.IsScalar()) {
        result_.errors.push_back(path + "." + it->first.as<std::string>() + ": expected a single value");
        continue;
      }
      value[it->first.as<std::string>()] = it->second.Scalar();
    }
  }

  template <class S>
  void section(std::string_view key, S& value) {
    keys_.push_back(std::string(key));
    visitor sub(mode_, key_path(key), result_);
    sub.env_ = env_;
    sub.listing = listing;
    if (mode_ == mode::yaml) {
      if (!node_ || !node_.IsMap() || !node_[std::string(key)]) return;
      YAML::Node v = node_[std::string(key)];
      if (v.IsNull()) return;
      if (!v.IsMap()) {
        result_.errors.push_back(sub.path_ + ": expected a mapping of keys");
        return;
      }
      sub.node_ = v;
    }
    visit(sub, value);
    sub.check_unknown();
  }

  template <class S>
  void optional_section(std::string_view key, std::optional<S>& value) {
    if (mode_ == mode::yaml && node_ && node_.IsMap() && node_[std::string(key)] && node_[std::string(key)].IsNull()) {
      keys_.push_back(std::string(key));
      value.reset();
      return;
    }
    if (mode_ == mode::yaml && node_ && node_.IsMap() && node_[std::string(key)] && !value) value.emplace();
    if (!value) {
      keys_.push_back(std::string(key));
      if (mode_ == mode::list) listing->push_back(key_path(key) + ": null");
      return;
    }
    section(key, *value);
  }

  template <class S>
  void list(std::string_view key, std::vector<S>& value, std::string_view help = {}) {
    keys_.push_back(std::string(key));
    std::string path = key_path(key);
    if (mode_ == mode::list) {
      listing->push_back(path + ": []" + (help.empty() ? "" : "  # " + std::string(help)));
      S sample{};
      visitor sub(mode_, path + "[]", result_);
      sub.listing = listing;
      visit(sub, sample);
      return;
    }
    if (mode_ != mode::yaml || !node_ || !node_.IsMap() || !node_[std::string(key)]) return;
    YAML::Node v = node_[std::string(key)];
    if (v.IsNull()) {
      value.clear();
      return;
    }
    if (!v.IsSequence()) {
      result_.errors.push_back(path + ": expected a list of mappings");
      return;
    }
    value.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      visitor sub(mode_, path + "[" + std::to_string(i) + "]", result_);
      if (!v[i].IsMap()) {
        result_.errors.push_back(sub.path_ + ": expected a mapping of keys");
        continue;
      }
      sub.node_ = v[i];
      S item{};
      visit(sub, item);
      sub.check_unknown();
      value.push_back(std::move(item));
    }
  }

  // Reports YAML keys at this level that no visit function asked for.
  void check_unknown() {
    if (mode_ != mode::yaml || !node_ || !node_.IsMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      auto k = it->first.as<std::string>();
      if (std::find(keys_.begin(), keys_.end(), k) == keys_.end())
        result_.errors.push_back(key_path(k) + ": unknown key; valid keys here are: " + join(keys_));
    }
  }

 private:
  template <class T, class B>
  void assign(const std::string& path, const std::string& text, T& value, const B& b, const choice& ch,
              const std::string& where) {
    if constexpr (std::is_same_v<T, std::string>) {
      (void)b;
      if (!ch.allowed.empty() && std::find(ch.allowed.begin(), ch.allowed.end(), text) == ch.allowed.end()) {
        result_.errors.push_back(path + ": " + quote(text) + where +
                                 " is not valid; expected one of: " + join(ch.allowed));
        return;
      }
      value = text;
    } else {
      T parsed{};
      std::string err = parse_scalar(text, parsed, b);
      if (!err.empty()) {
        result_.errors.push_back(path + ": " + quote(text) + where + " is not valid; " + err);
        return;
      }
      value = parsed;
    }
  }

  template <class T>
  static std::string show(const T& v) {
    if constexpr (std::is_same_v<T, std::string>)
      return v.empty() ? "\"\"" : v;
    else if constexpr (std::is_same_v<T, bool>)
      return v ? "true" : "false";
    else if constexpr (std::is_same_v<T, milliseconds>)
      return format_duration(v);
    else if constexpr (std::is_same_v<T, double>) {
      std::ostringstream s;
      s << v;
      return s.str();
    } else
      return std::to_string(v);
  }

  mode mode_;
  std::string path_;
  load_result& result_;
  YAML::Node node_;
  const std::map<std::string, std::string>* env_ = nullptr;
  std::vector<std::string> keys_;
};

template <class T>
bounds<T> range(T lo, T hi) {
  return bounds<T>{lo, hi};
}
bounds<milliseconds> dur(std::int64_t lo_ms, std::int64_t hi_ms) {
  return bounds<milliseconds>{milliseconds{lo_ms}, milliseconds{hi_ms}};
}
constexpr std::int64_t day_ms = 24LL * 3600 * 1000;

void visit(visitor& v, node_config& c) {
  v.scalar("id", c.id, {}, {}, "unique per node; default: the host name");
  v.scalar("data_dir", c.data_dir, {}, {}, "local log, write-ahead log and cursors");
}
void visit(visitor& v, drain_config& c) {
  v.scalar("duration", c.duration, dur(0, 3600000), {}, "MQTT disconnects are spread over this long");
  v.scalar("flush_timeout", c.flush_timeout, dur(0, 600000), {}, "producer flush deadline at exit");
  v.scalar("server_reference", c.server_reference, {}, {}, "MQTT 5 server to move to (0x9C); empty: 0x8B");
}
void visit(visitor& v, log_config& c) {
  v.scalar("level", c.level, {}, choice{{"trace", "debug", "info", "warn", "error"}});
  v.scalar("format", c.format, {}, choice{{"text", "json"}});
}
void visit(visitor& v, admin_config& c) {
  v.scalar("listen", c.listen, {}, {}, "HOST:PORT; empty disables");
  v.scalar("unready_after", c.unready_after, dur(0, day_ms), {}, "sustained sink/Redis outage before /readyz fails");
}
void visit(visitor& v, tls_config& c) {
  v.scalar("listen", c.listen, {}, {}, "HOST:PORT; empty: no TLS listener");
  v.scalar("cert_file", c.cert_file);
  v.scalar("key_file", c.key_file);
  v.scalar("ca_file", c.ca_file, {}, {}, "CA for client certificates");
  v.scalar("require_client_cert", c.require_client_cert);
  v.scalar("cn_as_username", c.cn_as_username);
}
void visit(visitor& v, mqtt_limits& c) {
  v.scalar("max_connections", c.max_connections, range<std::uint32_t>(1, 10'000'000));
  v.scalar("max_packet_size", c.max_packet_size, range<std::uint32_t>(64, 268'435'455), {}, "bytes, both ways");
  v.scalar("max_topic_length", c.max_topic_length, range<std::uint32_t>(1, 65535));
  v.scalar("max_topic_levels", c.max_topic_levels, range<std::uint32_t>(1, 1024));
  v.scalar("max_client_id_length", c.max_client_id_length, range<std::uint32_t>(23, 65535));
  v.scalar("connect_timeout", c.connect_timeout, dur(100, 600000));
  v.scalar("receive_maximum", c.receive_maximum, range<std::uint16_t>(1, 65535), {},
           "in-flight QoS 1/2 per connection");
  v.scalar("max_keep_alive", c.max_keep_alive, range<std::uint16_t>(1, 65535), {}, "seconds");
  v.scalar("topic_alias_maximum", c.topic_alias_maximum, range<std::uint16_t>(0, 65535));
  v.scalar("max_user_properties", c.max_user_properties, range<std::uint32_t>(0, 65535));
  v.scalar("inflight_bytes_budget", c.inflight_bytes_budget, range<std::uint64_t>(1 << 16, 1ull << 40), {},
           "bytes in flight to the sink across all connections");
}
void visit(visitor& v, mqtt_route& c) {
  v.scalar("filter", c.filter, {}, {}, "MQTT topic filter");
  v.scalar("kafka_topic", c.kafka_topic);
  v.scalar("key", c.key, {}, {}, "%c client id, %u username, %t topic");
}
void visit(visitor& v, mqtt_acl_rule& c) {
  v.scalar("user", c.user, {}, {}, "* for anyone");
  v.scalar("action", c.action, {}, choice{{"publish", "subscribe", "all"}});
  v.scalar("filter", c.filter, {}, {}, "%u and %c are substituted");
  v.scalar("allow", c.allow);
}
void visit(visitor& v, jwt_config& c) {
  v.scalar("enabled", c.enabled);
  v.scalar("algorithm", c.algorithm, {}, choice{{"HS256", "RS256"}});
  v.scalar("secret_file", c.secret_file);
  v.scalar("public_key_file", c.public_key_file);
  v.scalar("jwks_file", c.jwks_file);
  v.scalar("issuer", c.issuer);
  v.scalar("audience", c.audience);
  v.scalar("topics_claim", c.topics_claim, {}, {}, "MQTT: claim listing allowed topic filters");
  v.scalar("types_claim", c.types_claim, {}, {}, "HTTP: claim listing the types a token may write");
}
void visit(visitor& v, mqtt_config& c) {
  v.scalar("listen", c.listen, {}, {}, "HOST:PORT; empty disables plain MQTT");
  v.section("tls", c.tls);
  v.scalar("allow_anonymous", c.allow_anonymous);
  v.scalar("password_file", c.password_file, {}, {}, "made with `wharf passwd FILE USER`");
  v.section("jwt", c.jwt);
  v.list("acl", c.acl, "ordered; first match wins");
  v.scalar("deny_drops_silently", c.deny_drops_silently);
  v.section("limits", c.limits);
  v.list("routes", c.routes, "ordered; first match wins");
  v.optional_section("default_route", c.default_route);
  v.scalar("delivery_timeout", c.delivery_timeout, dur(100, 3600000));
}
void visit(visitor& v, http_type& c) {
  v.scalar("name", c.name);
  v.scalar("kafka_topic", c.kafka_topic);
  v.scalar("key", c.key, {}, {}, "producer | header:NAME | json:/pointer");
  v.string_list("content_types", c.content_types, "empty: any");
  v.scalar("schema_file", c.schema_file);
  v.scalar("mode", c.mode, {}, choice{{"sync", "async"}});
  v.scalar("batch", c.batch, {}, {}, "a JSON array body is a batch of events");
  v.scalar("idempotency_pointer", c.idempotency_pointer, {}, {}, "JSON pointer to a per-item idempotency key");
  v.scalar("docs_url", c.docs_url, {}, {}, "named in error messages");
  v.scalar("max_body", c.max_body, range<std::uint64_t>(1, 1ull << 30));
  v.scalar("allow_anonymous", c.allow_anonymous);
  v.string_list("cors_origins", c.cors_origins);
}
void visit(visitor& v, http_api_key& c) {
  v.scalar("name", c.name);
  v.scalar("sha256", c.sha256, {}, {}, "hex SHA-256 of the key");
  v.string_list("types", c.types, "empty: all types");
  v.string_list("origins", c.origins);
  v.scalar("rate_per_second", c.rate_per_second, range<double>(0, 1e9));
  v.scalar("burst", c.burst, range<double>(0, 1e9));
}
void visit(visitor& v, http_config& c) {
  v.scalar("listen", c.listen, {}, {}, "HOST:PORT; empty disables the HTTP API");
  v.section("tls", c.tls);
  v.list("types", c.types);
  v.list("api_keys", c.api_keys);
  v.scalar("api_keys_file", c.api_keys_file, {}, {}, "YAML list of api_keys entries, e.g. from a Secret");
  v.section("jwt", c.jwt);
  v.string_list("trusted_proxies", c.trusted_proxies,
                "addresses or CIDR ranges of proxies whose X-Forwarded-For is believed");
  v.scalar("max_header_bytes", c.max_header_bytes, range<std::uint32_t>(1024, 1 << 20));
  v.scalar("max_decompressed_body", c.max_decompressed_body, range<std::uint64_t>(1024, 1ull << 31));
  v.scalar("max_batch_items", c.max_batch_items, range<std::uint32_t>(1, 100000));
  v.scalar("cors_max_age", c.cors_max_age, range<std::uint32_t>(0, 86400), {}, "seconds");
  v.scalar("idle_timeout", c.idle_timeout, dur(100, 3600000));
  v.scalar("request_timeout", c.request_timeout, dur(100, 600000));
  v.scalar("max_connections", c.max_connections, range<std::uint32_t>(1, 10'000'000));
}
void visit(visitor& v, kafka_config& c) {
  v.scalar("brokers", c.brokers, {}, {}, "host:port,...; empty: local log sink");
  v.scalar("delivery_timeout", c.delivery_timeout, dur(1000, 3600000), {}, "message.timeout.ms");
  v.scalar("linger", c.linger, dur(0, 10000), {}, "linger.ms");
  v.scalar("compression", c.compression, {}, choice{{"none", "gzip", "snappy", "lz4", "zstd"}});
  v.scalar("queue_max_bytes", c.queue_max_bytes, range<std::uint64_t>(1 << 20, 1ull << 40));
  v.scalar("queue_max_messages", c.queue_max_messages, range<std::uint32_t>(1000, 10'000'000));
  v.scalar("check_topics", c.check_topics);
  v.string_map("properties", c.properties, "librdkafka settings; values may be ${env:NAME} or ${file:PATH}");
}
void visit(visitor& v, local_log_config& c) {
  v.scalar("dir", c.dir, {}, {}, "default: <node.data_dir>/log");
  v.scalar("segment_bytes", c.segment_bytes, range<std::uint64_t>(1 << 16, 1ull << 40));
  v.scalar("retention_bytes", c.retention_bytes, range<std::uint64_t>(1 << 16, 1ull << 50));
  v.scalar("retention_age", c.retention_age, dur(1000, 3650 * day_ms));
}
void visit(visitor& v, redis_tls_config& c) {
  v.scalar("enabled", c.enabled, {}, {}, "TLS to Redis and Sentinels; rediss:// turns it on too");
  v.scalar("ca_file", c.ca_file, {}, {}, "CA for the servers' certificates; empty: system CAs");
  v.scalar("cert_file", c.cert_file, {}, {}, "client certificate (tls-auth-clients)");
  v.scalar("key_file", c.key_file);
  v.scalar("server_name", c.server_name, {}, {}, "SNI and checked name; empty: each server's host");
  v.scalar("verify", c.verify, {}, {}, "check the server certificate and name");
}
void visit(visitor& v, redis_config& c) {
  v.scalar("url", c.url, {}, {},
           "redis://HOST:PORT, rediss://HOST:PORT or sentinel://HOST:PORT,.../MASTER; empty: in-memory");
  v.scalar("password", c.password);
  v.scalar("wait_replicas", c.wait_replicas, range<std::uint32_t>(0, 16), {}, "WAIT count before CONNACK");
  v.scalar("wait_timeout", c.wait_timeout, dur(1, 60000));
  v.scalar("command_timeout", c.command_timeout, dur(10, 60000));
  v.scalar("heartbeat_interval", c.heartbeat_interval, dur(100, 600000));
  v.scalar("node_ttl", c.node_ttl, dur(300, 3600000));
  v.section("tls", c.tls);
}
void visit(visitor& v, config& c) {
  v.section("node", c.node);
  v.section("log", c.log);
  v.section("admin", c.admin);
  v.section("mqtt", c.mqtt);
  v.section("http", c.http);
  v.section("kafka", c.kafka);
  v.section("local_log", c.local_log);
  v.section("redis", c.redis);
  v.section("drain", c.drain);
}

bool valid_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string port = s.substr(colon + 1);
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  return ec == std::errc{} && ptr == port.data() + port.size() && p <= 65535;
}

bool valid_kafka_topic(const std::string& t) {
  if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
  return std::all_of(t.begin(), t.end(),
                     [](unsigned char ch) { return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-'; });
}

// Topic filter syntax: '#' only as the last whole level, '+' only as a whole level.
bool valid_topic_filter(const std::string& f) {
  if (f.empty()) return false;
  std::size_t start = 0;
  while (true) {
    auto end = f.find('/', start);
    std::string level = f.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (level.find_first_of("+#") != std::string::npos && level.size() != 1) return false;
    if (level == "#" && end != std::string::npos) return false;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return true;
}

bool valid_key_template(const std::string& k) {
  for (std::size_t i = 0; i < k.size(); ++i) {
    if (k[i] != '%') continue;
    if (i + 1 >= k.size()) return false;
    char n = k[++i];
    if (n != 'c' && n != 'u' && n != 't' && n != '%') return false;
  }
  return true;
}

bool file_readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

void check_tls(const tls_config& t, const std::string& where, load_result& r) {
  if (t.listen.empty()) return;
  if (!valid_listen(t.listen))
    r.errors.push_back(where + ".listen: " + quote(t.listen) + " is not HOST:PORT (e.g. 0.0.0.0:8883)");
  for (auto [key, path] : {std::pair{"cert_file", &t.cert_file}, std::pair{"key_file", &t.key_file}}) {
    if (path->empty())
      r.errors.push_back(where + "." + key + ": required when " + where + ".listen is set");  // NOLINT
    else if (!file_readable(*path))
      r.errors.push_back(where + "." + key + ": cannot read " + quote(*path));
  }
  if ((t.require_client_cert || t.cn_as_username) && t.ca_file.empty())
    r.errors.push_back(where + ".ca_file: required when client certificates are checked");
  else if (!t.ca_file.empty() && !file_readable(t.ca_file))
    r.errors.push_back(where + ".ca_file: cannot read " + quote(t.ca_file));
}

void check_redis_tls(const redis_config& c, load_result& r) {
  const redis_tls_config& t = c.tls;
  const bool on = t.enabled || c.url.rfind("rediss://", 0) == 0;
  if (!on) {
    if (!t.ca_file.empty() || !t.cert_file.empty() || !t.key_file.empty() || !t.server_name.empty() || !t.verify)
      r.errors.push_back(
          "redis.tls: settings are given but TLS is off; set redis.tls.enabled: true (or use rediss://) "
          "or remove them");
    return;
  }
  if (c.url.empty()) r.errors.push_back("redis.tls.enabled: set, but redis.url is empty (in-memory sessions)");
  for (auto [key, path] :
       {std::pair{"ca_file", &t.ca_file}, std::pair{"cert_file", &t.cert_file}, std::pair{"key_file", &t.key_file}}) {
    if (!path->empty() && !file_readable(*path))
      r.errors.push_back(std::string("redis.tls.") + key + ": cannot read " + quote(*path));
  }
  if (t.cert_file.empty() != t.key_file.empty())
    r.errors.push_back("redis.tls: cert_file and key_file go together; set both for a client certificate, or neither");
  if (!t.verify)
    r.warnings.push_back("redis.tls.verify is false: the Redis server's identity is not checked (testing only)");
}

void check_jwt(const jwt_config& j, const std::string& where, load_result& r) {
  if (!j.enabled) return;
  const std::string& key = j.algorithm == "HS256" ? j.secret_file : j.public_key_file;
  const char* name = j.algorithm == "HS256" ? "secret_file" : "public_key_file";
  if (key.empty() && j.jwks_file.empty())
    r.errors.push_back(where + "." + name + ": required for " + j.algorithm + " when " + where + ".enabled is true");
  else if (!key.empty() && !file_readable(key))
    r.errors.push_back(where + "." + name + ": cannot read " + quote(key));
}

// http.api_keys_file: a YAML list of api_keys entries (the same keys as
// http.api_keys[]), appended to http.api_keys.
void load_api_keys_file(load_result& r) {
  const std::string& path = r.cfg.http.api_keys_file;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    r.errors.push_back("http.api_keys_file: cannot read " + quote(path));
    return;
  } catch (const YAML::Exception& e) {
    r.errors.push_back("http.api_keys_file: " + quote(path) + " is not valid YAML at line " +
                       std::to_string(e.mark.line + 1) + ": " + e.msg);
    return;
  }
  if (root.IsNull()) return;
  if (!root.IsSequence()) {
    r.errors.push_back("http.api_keys_file: " + quote(path) +
                       " must hold a list of {name, sha256, types, origins, rate_per_second, burst} entries");
    return;
  }
  for (std::size_t i = 0; i < root.size(); ++i) {
    visitor sub(visitor::mode::yaml, path + "[" + std::to_string(i) + "]", r);
    if (!root[i].IsMap()) {
      r.errors.push_back(path + "[" + std::to_string(i) + "]: expected a mapping of keys");
      continue;
    }
    sub.set_yaml(root[i]);
    http_api_key k{};
    visit(sub, k);
    sub.check_unknown();
    r.cfg.http.api_keys.push_back(std::move(k));
  }
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "wharf";
  return buf;
}

void validate(load_result& r) {
  config& c = r.cfg;
  if (c.node.id.empty()) c.node.id = host_name();
  if (c.node.id.size() > 128 || !std::all_of(c.node.id.begin(), c.node.id.end(), [](unsigned char ch) {
        return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
      }))
    r.errors.push_back("node.id: " + quote(c.node.id) +
                       " is not valid; use up to 128 letters, digits, '.', '_' or '-'");
  if (c.node.data_dir.empty()) r.errors.push_back("node.data_dir: must not be empty");
  if (c.local_log.dir.empty()) c.local_log.dir = c.node.data_dir + "/log";

  for (auto [key, value] : {std::pair{"admin.listen", &c.admin.listen}, std::pair{"mqtt.listen", &c.mqtt.listen},
                            std::pair{"http.listen", &c.http.listen}})
    if (!value->empty() && !valid_listen(*value))
      r.errors.push_back(std::string(key) + ": " + quote(*value) + " is not HOST:PORT (e.g. 0.0.0.0:1883)");
  check_tls(c.mqtt.tls, "mqtt.tls", r);
  check_tls(c.http.tls, "http.tls", r);
  check_jwt(c.mqtt.jwt, "mqtt.jwt", r);
  check_jwt(c.http.jwt, "http.jwt", r);

  if (!c.mqtt.password_file.empty() && !file_readable(c.mqtt.password_file))
    r.errors.push_back("mqtt.password_file: cannot read " + quote(c.mqtt.password_file));
  bool mqtt_on = !c.mqtt.listen.empty() || !c.mqtt.tls.listen.empty();
  if (mqtt_on && !c.mqtt.allow_anonymous && c.mqtt.password_file.empty() && !c.mqtt.jwt.enabled &&
      !c.mqtt.tls.cn_as_username)
    r.warnings.push_back(
        "mqtt: no way to authenticate is configured, so every CONNECT is refused; set mqtt.password_file, "
        "mqtt.jwt, mqtt.tls.cn_as_username, or mqtt.allow_anonymous: true (development only)");
  if (mqtt_on && c.mqtt.allow_anonymous)
    r.warnings.push_back("mqtt.allow_anonymous is true: any device may connect without credentials");

  auto check_route = [&](const mqtt_route& rt, const std::string& where, bool needs_filter) {
    if (needs_filter && !valid_topic_filter(rt.filter))
      r.errors.push_back(where + ".filter: " + quote(rt.filter) +
                         " is not a valid MQTT topic filter ('+' and '#' must fill a whole level, '#' only last)");
    if (!valid_kafka_topic(rt.kafka_topic))
      r.errors.push_back(where + ".kafka_topic: " + quote(rt.kafka_topic) +
                         " is not a valid Kafka topic (1-249 of letters, digits, '.', '_', '-')");
    if (!valid_key_template(rt.key))
      r.errors.push_back(where + ".key: " + quote(rt.key) + " is not valid; use text with %c, %u, %t or %%");
  };
  for (std::size_t i = 0; i < c.mqtt.routes.size(); ++i)
    check_route(c.mqtt.routes[i], "mqtt.routes[" + std::to_string(i) + "]", true);
  if (c.mqtt.default_route) check_route(*c.mqtt.default_route, "mqtt.default_route", false);
  for (std::size_t i = 0; i < c.mqtt.acl.size(); ++i)
    if (!valid_topic_filter(c.mqtt.acl[i].filter))
      r.errors.push_back("mqtt.acl[" + std::to_string(i) + "].filter: " + quote(c.mqtt.acl[i].filter) +
                         " is not a valid MQTT topic filter");

  for (std::size_t i = 0; i < c.http.trusted_proxies.size(); ++i)
    if (!ip_network::parse(c.http.trusted_proxies[i]))
      r.errors.push_back("http.trusted_proxies[" + std::to_string(i) + "]: " + quote(c.http.trusted_proxies[i]) +
                         " is not an IP address or CIDR range (e.g. 10.0.0.7, 10.0.0.0/8 or fd00::/8)");

  std::set<std::string> type_names;
  for (std::size_t i = 0; i < c.http.types.size(); ++i) {
    const auto& t = c.http.types[i];
    std::string where = "http.types[" + std::to_string(i) + "]";
    if (t.name.empty() || !std::all_of(t.name.begin(), t.name.end(), [](unsigned char ch) {
          return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
        }))
      r.errors.push_back(where + ".name: " + quote(t.name) + " is not valid; use letters, digits, '.', '_' or '-'");
    else if (!type_names.insert(t.name).second)
      r.errors.push_back(where + ".name: " + quote(t.name) + " is defined twice");
    if (!valid_kafka_topic(t.kafka_topic))
      r.errors.push_back(where + ".kafka_topic: " + quote(t.kafka_topic) +
                         " is not a valid Kafka topic (1-249 of letters, digits, '.', '_', '-')");
    if (!(t.key == "producer" || (t.key.rfind("header:", 0) == 0 && t.key.size() > 7) ||
          (t.key.rfind("json:/", 0) == 0)))
      r.errors.push_back(where + ".key: " + quote(t.key) +
                         " is not valid; expected producer, header:NAME or json:/pointer");
    if (!t.schema_file.empty() && !file_readable(t.schema_file))
      r.errors.push_back(where + ".schema_file: cannot read " + quote(t.schema_file));
    if (t.max_body > c.http.max_decompressed_body)
      r.errors.push_back(where + ".max_body: " + std::to_string(t.max_body) +
                         " is larger than http.max_decompressed_body (" + std::to_string(c.http.max_decompressed_body) +
                         ")");
  }
  if (!c.http.api_keys_file.empty()) load_api_keys_file(r);
  for (std::size_t i = 0; i < c.http.api_keys.size(); ++i) {
    const auto& k = c.http.api_keys[i];
    std::string where = "http.api_keys[" + std::to_string(i) + "]";
    if (k.name.empty()) r.errors.push_back(where + ".name: required");
    if (k.sha256.size() != 64 ||
        !std::all_of(k.sha256.begin(), k.sha256.end(), [](unsigned char ch) { return std::isxdigit(ch); }))
      r.errors.push_back(where +
                         ".sha256: expected 64 hex digits (the SHA-256 of the key, e.g. from "
                         "`printf %s KEY | sha256sum`)");
    for (const auto& t : k.types)
      if (!type_names.count(t))
        r.errors.push_back(where + ".types: " + quote(t) + " is not a configured http.types name");
  }

  if (c.kafka.brokers.empty()) {
    if (!c.kafka.properties.empty())
      r.errors.push_back("kafka.properties: set, but kafka.brokers is empty; set kafka.brokers to use Kafka");
  } else {
    std::stringstream ss(c.kafka.brokers);
    for (std::string b; std::getline(ss, b, ',');)
      if (!valid_listen(trim(b)))
        r.errors.push_back("kafka.brokers: " + quote(trim(b)) + " is not HOST:PORT (e.g. 127.0.0.1:9092)");
    for (const auto& [k, val] : c.kafka.properties) {
      static const std::set<std::string> managed = {"bootstrap.servers", "acks", "enable.idempotence",
                                                    "message.timeout.ms", "delivery.timeout.ms"};
      if (managed.count(k))
        r.errors.push_back("kafka.properties." + k +
                           ": Wharf sets this itself (acks=all, idempotence on, timeouts from kafka.*); remove it");
    }
  }
  if (c.mqtt.delivery_timeout < c.kafka.delivery_timeout && !c.kafka.brokers.empty())
    r.warnings.push_back(
        "mqtt.delivery_timeout is shorter than kafka.delivery_timeout: devices are disconnected "
        "before Kafka gives up");

  const std::string& u = c.redis.url;
  if (!u.empty() && u.rfind("redis://", 0) != 0 && u.rfind("rediss://", 0) != 0 && u.rfind("sentinel://", 0) != 0)
    r.errors.push_back("redis.url: " + quote(u) +
                       " is not valid; expected redis://HOST:PORT, rediss://HOST:PORT or "
                       "sentinel://HOST:PORT,HOST:PORT/MASTER");
  check_redis_tls(c.redis, r);
  if (u.rfind("sentinel://", 0) == 0 && u.find('/', 11) == std::string::npos)
    r.errors.push_back("redis.url: " + quote(u) + " names no master; expected sentinel://HOST:PORT,.../MASTER");
  if (c.redis.heartbeat_interval * 2 > c.redis.node_ttl)
    r.errors.push_back("redis.node_ttl: " + format_duration(c.redis.node_ttl) +
                       " must be at least twice redis.heartbeat_interval (" +
                       format_duration(c.redis.heartbeat_interval) + ")");
}

// Applies one flag/override given as a dotted key through the env path.
void apply_overrides(load_result& r, const overrides& flags) {
  if (flags.empty()) return;
  std::map<std::string, std::string> as_env;
  for (const auto& [key, value] : flags) as_env[visitor::env_name(key)] = value;
  visitor v(visitor::mode::env, "", r);
  v.set_env(&as_env);
  visit(v, r.cfg);
}

void apply_env(load_result& r, char** env) {
  if (!env) return;
  std::map<std::string, std::string> vars;
  for (char** e = env; *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("WHARF_", 0) != 0) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    vars.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  // An unknown WHARF_* variable is most likely a typo: say so.
  std::vector<std::string> listing;
  load_result scratch;
  visitor lister(visitor::mode::list, "", scratch);
  lister.listing = &listing;
  config defaults;
  visit(lister, defaults);
  std::set<std::string> known;
  for (const auto& line : listing) known.insert(visitor::env_name(line.substr(0, line.find(':'))));
  for (const auto& [name, value] : vars)
    if (!known.count(name) && name != "WHARF_CONFIG" && name.rfind("WHARF_BENCH_", 0) != 0)
      r.warnings.push_back("environment variable " + name + " matches no configuration key; it is ignored");
  visitor v(visitor::mode::env, "", r);
  v.set_env(&vars);
  visit(v, r.cfg);
}

load_result load_node(const YAML::Node& root, const overrides& flags, char** env, std::string source) {
  load_result r;
  r.cfg.source = std::move(source);
  if (root && !root.IsNull()) {
    if (!root.IsMap()) {
      r.errors.push_back(r.cfg.source + ": the top level must be a mapping of sections (node, mqtt, kafka, ...)");
      return r;
    }
    visitor v(visitor::mode::yaml, "", r);
    v.set_yaml(root);
    visit(v, r.cfg);
    v.check_unknown();
  }
  apply_env(r, env);
  apply_overrides(r, flags);
  if (r.errors.empty()) validate(r);
  return r;
}

}  // namespace

bool parse_duration(std::string_view text, milliseconds& out) {
  std::string t = trim(text);
  std::size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i == 0 || i > 12) return false;
  std::int64_t n = std::stoll(t.substr(0, i));
  std::string unit = t.substr(i);
  std::int64_t mult = 0;
  if (unit == "ms")
    mult = 1;
  else if (unit == "s")
    mult = 1000;
  else if (unit == "m")
    mult = 60000;
  else if (unit == "h")
    mult = 3600000;
  else if (unit == "d")
    mult = 86400000;
  else
    return false;
  out = milliseconds{n * mult};
  return true;
}

bool parse_size(std::string_view text, std::uint64_t& out) {
  std::string t = trim(text);
  std::size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i == 0 || i > 18) return false;
  std::uint64_t n = std::stoull(t.substr(0, i));
  std::string unit = trim(t.substr(i));
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "KiB")
    mult = 1ull << 10;
  else if (unit == "MiB")
    mult = 1ull << 20;
  else if (unit == "GiB")
    mult = 1ull << 30;
  else if (unit == "kB" || unit == "KB")
    mult = 1000;
  else if (unit == "MB")
    mult = 1000ull * 1000;
  else if (unit == "GB")
    mult = 1000ull * 1000 * 1000;
  else
    return false;
  if (n > std::numeric_limits<std::uint64_t>::max() / mult) return false;
  out = n * mult;
  return true;
}

load_result load_string(std::string_view yaml, const overrides& flags, char** env, std::string source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    load_result r;
    r.errors.push_back(source + ": not valid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                       std::to_string(e.mark.column + 1) + ": " + e.msg);
    return r;
  }
  return load_node(root, flags, env, std::move(source));
}

load_result load_file(const std::string& path, const overrides& flags, char** env) {
  if (path.empty()) return load_node(YAML::Node{}, flags, env, "defaults");
  std::ifstream in(path);
  if (!in) {
    load_result r;
    r.errors.push_back("--config: cannot read " + quote(path) +
                       "; give the path of a YAML file such as examples/dev.yaml");
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), flags, env, path);
}

std::vector<std::string> describe_keys() {
  std::vector<std::string> listing;
  load_result scratch;
  visitor v(visitor::mode::list, "", scratch);
  v.listing = &listing;
  config defaults;
  visit(v, defaults);
  return listing;
}

}  // namespace wharf::config
