#include "protocols/mqtt/topic.h"

#include <algorithm>
#include <cstdint>

namespace wharf::mqtt {

bool is_valid_mqtt_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const std::uint8_t c = *p;
    if (c < 0x80) {
      if (c == 0) return false;  // U+0000
      ++p;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    if (cp > 0x10FFFF) return false;
    p += n + 1;
  }
  return true;
}

std::size_t topic_level_count(std::string_view topic) noexcept {
  return 1 + static_cast<std::size_t>(std::count(topic.begin(), topic.end(), '/'));
}

boost::system::error_code validate_topic_name(std::string_view topic, const topic_limits& limits) noexcept {
  if (topic.empty() || topic.size() > limits.max_length) return errc::topic_name_invalid;
  std::size_t levels = 1;
  for (char ch : topic) {
    if (ch == '+' || ch == '#') return errc::topic_name_invalid;
    levels += ch == '/';
  }
  if (levels > limits.max_levels) return errc::topic_name_invalid;
  return {};
}

namespace {

bool valid_filter_levels(std::string_view filter) noexcept {
  std::size_t start = 0;
  while (true) {
    const std::size_t end = filter.find('/', start);
    const std::string_view level =
        filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (level.find('#') != std::string_view::npos) {
      if (level != "#" || end != std::string_view::npos) return false;
    }
    if (level.find('+') != std::string_view::npos && level != "+") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

constexpr std::string_view share_prefix = "$share/";

}  // namespace

bool is_shared_subscription(std::string_view filter) noexcept {
  return filter.substr(0, share_prefix.size()) == share_prefix;
}

boost::system::error_code validate_topic_filter(std::string_view filter, const topic_limits& limits) noexcept {
  if (filter.empty() || filter.size() > limits.max_length || topic_level_count(filter) > limits.max_levels) {
    return errc::topic_filter_invalid;
  }
  if (is_shared_subscription(filter)) {
    const std::string_view rest = filter.substr(share_prefix.size());
    const std::size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos) return errc::topic_filter_invalid;
    const std::string_view name = rest.substr(0, slash);
    if (name.find_first_of("+#") != std::string_view::npos) return errc::topic_filter_invalid;
    const std::string_view inner = rest.substr(slash + 1);
    if (inner.empty() || !valid_filter_levels(inner)) return errc::topic_filter_invalid;
    return {};
  }
  if (!valid_filter_levels(filter)) return errc::topic_filter_invalid;
  return {};
}

bool matches(std::string_view filter, std::string_view topic) noexcept {
  if (!topic.empty() && topic.front() == '$' && !filter.empty() && (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  std::size_t fi = 0;
  std::size_t ti = 0;
  constexpr auto npos = std::string_view::npos;
  while (true) {
    const std::size_t fend = filter.find('/', fi);
    const std::string_view flevel = filter.substr(fi, fend == npos ? npos : fend - fi);
    if (flevel == "#") return true;  // also matches the parent level
    const std::size_t tend = topic.find('/', ti);
    const std::string_view tlevel = topic.substr(ti, tend == npos ? npos : tend - ti);
    if (flevel != "+" && flevel != tlevel) return false;
    if (fend == npos) return tend == npos;
    if (tend == npos) return filter.substr(fend + 1) == "#";
    fi = fend + 1;
    ti = tend + 1;
  }
}

}  // namespace wharf::mqtt
