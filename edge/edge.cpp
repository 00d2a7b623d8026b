#include "edge/build_info.h"

namespace wharf::edge {

std::string build_version() { return WHARF_VERSION; }
std::string build_revision() { return WHARF_REVISION; }

}  // namespace wharf::edge
