// Process-wide logging on spdlog: text for people, JSON lines for collectors.
#pragma once

#include <string>

namespace wharf::edge {

// format: "text" | "json"; level: trace|debug|info|warn|error.
void setup_logging(const std::string& format, const std::string& level, const std::string& node_id);

}  // namespace wharf::edge
