// Wharf's configuration: one plain struct per subsystem, filled from YAML,
// environment (WHARF_*) and flags, validated once at start-up by
// `load_config` (config.cpp). Nothing here depends on the rest of Wharf, so
// every subsystem may read its own struct.
//
// Durations are written in YAML as "250ms", "10s", "5m"; sizes as bytes or
// "64KiB", "1MiB", "1GiB". docs/configuration.md lists every key.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wharf::config {

using std::chrono::milliseconds;

struct node_config {
  std::string id;                   // node.id / --node-id; default: host name
  std::string data_dir = "./data";  // node.data_dir / --data-dir
};

struct log_config {
  std::string level = "info";   // trace|debug|info|warn|error
  std::string format = "text";  // text|json
};

struct admin_config {
  std::string listen = "0.0.0.0:8081";  // "" disables the admin server
  // /readyz turns false when the sink could not deliver (or Redis had no
  // master) for longer than this; short blips do not pull the node out.
  milliseconds unready_after = milliseconds{15000};
};

struct tls_config {
  std::string listen;  // "" = no TLS listener
  std::string cert_file;
  std::string key_file;
  std::string ca_file;  // client certificates are checked against it
  bool require_client_cert = false;
  bool cn_as_username = false;  // use the client certificate's CN as username
};

struct mqtt_limits {
  std::uint32_t max_connections = 100000;
  std::uint32_t max_packet_size = 1u << 20;  // bytes, both ways
  std::uint32_t max_topic_length = 1024;
  std::uint32_t max_topic_levels = 32;
  std::uint32_t max_client_id_length = 128;
  milliseconds connect_timeout = milliseconds{10000};
  std::uint16_t receive_maximum = 64;   // per-connection in-flight QoS>0 window
  std::uint16_t max_keep_alive = 3600;  // seconds; Server Keep Alive caps the client's
  std::uint16_t topic_alias_maximum = 64;
  std::uint32_t max_user_properties = 32;
  std::uint64_t inflight_bytes_budget = 64ull << 20;  // global, across connections
};

struct mqtt_route {
  std::string filter;  // MQTT topic filter (+ and # allowed)
  std::string kafka_topic;
  std::string key = "%c";  // template: %c client id, %u username, %t topic, %% literal %
};

struct mqtt_acl_rule {
  std::string user;    // "*" any, or a user name
  std::string action;  // publish|subscribe|all
  std::string filter;  // topic filter, %u / %c substituted
  bool allow = true;
};

struct jwt_config {
  bool enabled = false;
  std::string algorithm = "HS256";      // HS256|RS256
  std::string secret_file;              // HS256 secret
  std::string public_key_file;          // RS256 PEM
  std::string jwks_file;                // JWKS (HTTP API)
  std::string issuer;                   // checked when set
  std::string audience;                 // checked when set
  std::string topics_claim = "topics";  // claim listing allowed topic filters
  std::string types_claim = "types";    // HTTP API: claim listing the types a token may write ("*" = all)
};

struct mqtt_config {
  std::string listen = "0.0.0.0:1883";  // "" disables plain MQTT
  tls_config tls;
  bool allow_anonymous = false;
  std::string password_file;
  jwt_config jwt;
  std::vector<mqtt_acl_rule> acl;
  bool deny_drops_silently = false;  // 3.1.1 denied PUBLISH: drop instead of close
  mqtt_limits limits;
  std::vector<mqtt_route> routes;
  // Where a PUBLISH goes when no route matches; `default_route: null`
  // rejects unmatched topics instead (5.0 reason 0x90, 3.1.1 close).
  std::optional<mqtt_route> default_route = mqtt_route{"#", "mqtt.ingest", "%c"};
  milliseconds delivery_timeout = milliseconds{30000};  // no ack by then: close the connection
};

struct http_type {
  std::string name;
  std::string kafka_topic;
  std::string key = "producer";            // producer | header:NAME | json:/pointer
  std::vector<std::string> content_types;  // empty = any
  std::string schema_file;                 // JSON Schema, optional
  std::string mode = "sync";               // sync|async
  std::uint64_t max_body = 1u << 20;
  bool allow_anonymous = false;
  std::vector<std::string> cors_origins;
  // application/json body whose top-level value is an array: true = a batch
  // (one record per item), false = one event that happens to be an array.
  bool batch = true;
  std::string idempotency_pointer;  // JSON pointer to a per-item idempotency key, optional
  std::string docs_url;             // named in error messages ("See <docs_url>"), optional
};

struct http_api_key {
  std::string name;
  std::string sha256;              // hex SHA-256 of the key
  std::vector<std::string> types;  // empty = all
  std::vector<std::string> origins;
  double rate_per_second = 0;  // 0 = unlimited
  double burst = 0;
};

struct http_config {
  std::string listen = "0.0.0.0:8080";  // "" disables the HTTP API
  tls_config tls;
  std::vector<http_type> types;
  std::vector<http_api_key> api_keys;
  // YAML file holding a list of api_keys entries, added to api_keys; lets the
  // key hashes live in a Kubernetes Secret instead of the config file. "" = none.
  std::string api_keys_file;
  jwt_config jwt;
  std::vector<std::string> trusted_proxies;
  std::uint32_t max_header_bytes = 16384;
  std::uint64_t max_decompressed_body = 8u << 20;
  std::uint32_t max_batch_items = 1000;
  milliseconds idle_timeout = milliseconds{60000};
  milliseconds request_timeout = milliseconds{10000};
  std::uint32_t max_connections = 10000;
  std::uint32_t cors_max_age = 600;  // seconds a browser may cache a preflight answer
};

struct kafka_config {
  std::string brokers;                                  // "" = no Kafka; the local log is the sink
  milliseconds delivery_timeout = milliseconds{30000};  // message.timeout.ms
  milliseconds linger = milliseconds{5};
  std::string compression = "lz4";  // none|gzip|snappy|lz4|zstd
  std::uint64_t queue_max_bytes = 256ull << 20;
  std::uint32_t queue_max_messages = 500000;
  bool check_topics = true;                       // describe topics at start-up, warn on weak durability
  std::map<std::string, std::string> properties;  // librdkafka pass-through
};

struct local_log_config {
  std::string dir;  // default: <data_dir>/log
  std::uint64_t segment_bytes = 64ull << 20;
  std::uint64_t retention_bytes = 1ull << 30;
  milliseconds retention_age = milliseconds{7LL * 24 * 3600 * 1000};
};

// TLS to Redis and to its Sentinels (docs/state.md).
struct redis_tls_config {
  bool enabled = false;     // also on with a rediss:// URL
  std::string ca_file;      // "" = the system's trusted CAs
  std::string cert_file;    // client certificate, for tls-auth-clients
  std::string key_file;     // its key
  std::string server_name;  // SNI and the name checked; "" = each server's host
  bool verify = true;       // check the server certificate and its name
};

struct redis_config {
  std::string url;  // "" = in-memory sessions; redis://h:p or sentinel://h:p,h:p/master
  std::string password;
  std::uint32_t wait_replicas = 1;
  milliseconds wait_timeout = milliseconds{500};
  milliseconds command_timeout = milliseconds{2000};
  milliseconds heartbeat_interval = milliseconds{2000};
  milliseconds node_ttl = milliseconds{10000};
  redis_tls_config tls;
};

struct drain_config {
  milliseconds duration = milliseconds{20000};      // spread MQTT disconnects over this long
  milliseconds flush_timeout = milliseconds{5000};  // producer flush deadline at exit
  std::string server_reference;                     // MQTT 5 DISCONNECT 0x9C target; "" = 0x8B
};

struct config {
  node_config node;
  drain_config drain;
  log_config log;
  admin_config admin;
  mqtt_config mqtt;
  http_config http;
  kafka_config kafka;
  local_log_config local_log;
  redis_config redis;
  std::string source;  // where it came from, for logs
};

}  // namespace wharf::config
