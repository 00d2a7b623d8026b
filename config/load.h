// Loading and validating Wharf's configuration.
//
// Precedence, lowest first: built-in defaults, the YAML file, WHARF_*
// environment variables (WHARF_MQTT_LIMITS_MAX_CONNECTIONS for
// mqtt.limits.max_connections), then command-line overrides given as
// dotted keys. Every problem is collected, so one run reports them all; each
// message names the key, the value and what would be valid.
#pragma once

#include "config/config.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::config {

struct load_result {
  config cfg;
  std::vector<std::string> errors;    // non-empty: the node must not start
  std::vector<std::string> warnings;  // logged at start-up

  bool ok() const noexcept { return errors.empty(); }
};

using overrides = std::vector<std::pair<std::string, std::string>>;  // {"kafka.brokers", "h:9092"}

// `path` may be empty (defaults only). `env` is a null-terminated
// environment block such as `environ`; nullptr ignores the environment.
load_result load_file(const std::string& path, const overrides& flags, char** env);

// The same from YAML text; `source` names it in messages.
load_result load_string(std::string_view yaml, const overrides& flags, char** env, std::string source = "<string>");

// Every settable key with its default, one "key: default  # type" line each,
// in declaration order (`wharf --print-keys`; docs/configuration.md is checked
// against it by a test).
std::vector<std::string> describe_keys();

// Parses "250ms", "10s", "5m", "1h", "2d". False when it is not a duration.
bool parse_duration(std::string_view text, milliseconds& out);
// Parses "1048576", "64KiB", "1MiB", "2GiB", "10kB", "1MB". False when not a size.
bool parse_size(std::string_view text, std::uint64_t& out);

}  // namespace wharf::config
