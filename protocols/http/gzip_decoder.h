// Streaming gzip inflate with a hard cap on the decompressed size, so a small
// compressed body cannot expand into gigabytes (a "zip bomb"): inflation stops
// as soon as the output would pass `max_output`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wharf::http {

enum class inflate_status { ok, too_large, corrupt };

struct inflate_result {
  inflate_status status = inflate_status::corrupt;
  std::string data;     // the decompressed bytes when ok
  std::string message;  // why it failed otherwise
};

inflate_result gunzip(std::string_view compressed, std::size_t max_output);

}  // namespace wharf::http
