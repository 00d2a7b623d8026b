// MQTT topic names and topic filters (spec 4.7): validation, level counting
// and filter matching for routes and ACLs. Strings are assumed to be valid
// MQTT UTF-8 already (the decoder checks that); `is_valid_mqtt_utf8` is here
// for callers holding strings from elsewhere (config).
#pragma once

#include <cstddef>
#include <string_view>

#include "protocols/mqtt/errors.h"

namespace wharf::mqtt {

struct topic_limits {
  std::size_t max_length = 65535;  // bytes
  std::size_t max_levels = 65535;  // 1 + number of '/'
};

// Well-formed UTF-8 without U+0000 and without surrogates (MQTT 1.5.4).
bool is_valid_mqtt_utf8(std::string_view s) noexcept;

// Number of levels: one more than the number of '/' ("a/b" -> 2, "" -> 1).
std::size_t topic_level_count(std::string_view topic) noexcept;

// A PUBLISH topic name: non-empty, no '+' or '#', within limits.
// Returns {} or errc::topic_name_invalid.
boost::system::error_code validate_topic_name(std::string_view topic, const topic_limits& limits = {}) noexcept;

// A SUBSCRIBE/ACL/route filter: non-empty; '+' alone in its level; '#' alone
// in the last level; "$share/{name}/{filter}" shares need a non-empty name
// without wildcards and a valid filter. Returns {} or
// errc::topic_filter_invalid.
boost::system::error_code validate_topic_filter(std::string_view filter, const topic_limits& limits = {}) noexcept;

// "$share/name/filter" (syntax only).
bool is_shared_subscription(std::string_view filter) noexcept;

// True when topic name `topic` matches filter `filter`. Wildcards at the
// first level do not match topics starting with '$' (4.7.2): "#" does not
// match "$SYS/x", "$SYS/#" does. Both arguments are assumed valid.
bool matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace wharf::mqtt
