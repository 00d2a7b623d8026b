// Version and source revision compiled into the binary.
#pragma once

#include <string>

namespace wharf::edge {

std::string build_version();
std::string build_revision();

}  // namespace wharf::edge
