// Builds the Kafka record for an MQTT PUBLISH exactly as DESIGN.md's
// "Kafka record" says: value = payload bytes untouched; key from the route;
// CloudEvents binary-mode headers plus MQTT extensions, then the MQTT 5 user
// properties in order (names starting "ce_" are reserved and dropped).
#pragma once

#include "protocols/mqtt/packets.h"
#include "sinks/sink.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace wharf::mqtt {

struct publish_context {
  std::string_view client_id;
  std::string_view node_id;
  std::string_view remote_addr;  // "ip:port"
  std::uint64_t session_epoch = 0;
};

// Produces unique ce_id values: node id, a start-time nonce and a counter.
class id_source {
 public:
  explicit id_source(std::string_view node_id);
  std::string next();

 private:
  std::string prefix_;
  std::uint64_t counter_ = 0;
};

// ce_time format: RFC 3339 UTC with milliseconds.
std::string rfc3339_now();

// Hex SHA-256 over client id, packet id and payload (ce_dedupkey).
std::string dedup_key(std::string_view client_id, std::uint16_t packet_id, std::string_view payload);

// `payload` and `topic` are moved into the record.
sinks::record build_record(std::string kafka_topic, std::string key, std::string topic, std::string payload, qos q,
                           bool dup, std::uint16_t packet_id, const properties& props, const publish_context& ctx,
                           id_source& ids, bool will = false);

}  // namespace wharf::mqtt
