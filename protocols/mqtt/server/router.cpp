#include "protocols/mqtt/server/router.h"

#include "protocols/mqtt/topic.h"

#include <algorithm>

namespace wharf::mqtt {

router::router(const config::mqtt_config& cfg) : routes_(cfg.routes), default_(cfg.default_route) {}

std::optional<route_target> router::route(std::string_view topic, std::string_view client_id,
                                          std::string_view username) const {
  for (const auto& r : routes_)
    if (matches(r.filter, topic))
      return route_target{&r.kafka_topic, expand_template(r.key, client_id, username, topic)};
  if (default_) return route_target{&default_->kafka_topic, expand_template(default_->key, client_id, username, topic)};
  return std::nullopt;
}

std::vector<std::string> router::kafka_topics() const {
  std::vector<std::string> out;
  for (const auto& r : routes_) out.push_back(r.kafka_topic);
  if (default_) out.push_back(default_->kafka_topic);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string expand_template(std::string_view tmpl, std::string_view client_id, std::string_view username,
                            std::string_view topic) {
  if (tmpl == "%c") return std::string(client_id);  // the common case, no scan
  std::string out;
  out.reserve(tmpl.size() + client_id.size());
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '%' || i + 1 >= tmpl.size()) {
      out += tmpl[i];
      continue;
    }
    switch (tmpl[++i]) {
      case 'c':
        out += client_id;
        break;
      case 'u':
        out += username;
        break;
      case 't':
        out += topic;
        break;
      default:
        out += tmpl[i];
    }
  }
  return out;
}

}  // namespace wharf::mqtt
