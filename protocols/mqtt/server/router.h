// Maps an MQTT topic to a Kafka topic and key: the ordered routes table of
// the config, first match wins, then the default route (if any).
#pragma once

#include "config/config.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::mqtt {

struct route_target {
  const std::string* kafka_topic = nullptr;  // owned by the router
  std::string key;
};

class router {
 public:
  explicit router(const config::mqtt_config& cfg);

  // nullopt: no route matches and there is no default route.
  std::optional<route_target> route(std::string_view topic, std::string_view client_id,
                                    std::string_view username) const;

  // Every Kafka topic a route can produce to (for the start-up check).
  std::vector<std::string> kafka_topics() const;

 private:
  std::vector<config::mqtt_route> routes_;
  std::optional<config::mqtt_route> default_;
};

// Expands %c (client id), %u (username), %t (topic) and %% in a template.
std::string expand_template(std::string_view tmpl, std::string_view client_id, std::string_view username,
                            std::string_view topic);

}  // namespace wharf::mqtt
