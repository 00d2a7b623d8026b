// docs/openapi.yaml, embedded at build time.
#pragma once

#include <string_view>

namespace wharf::http {

std::string_view openapi_yaml() noexcept;

}  // namespace wharf::http
