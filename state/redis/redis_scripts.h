// The Lua scripts the Redis session store runs, one per mutating operation.
// Each is atomic on the primary; docs/state.md lists them with the key layout.
#pragma once

#include <string>

namespace wharf::state::scripts {

struct script {
  const char* name;
  std::string source;
  std::string sha1;  // hex, for EVALSHA
};

const script& connect();
const script& disconnect();
const script& qos2_hold();
const script& qos2_release();
const script& update_expiry();
const script& subscriptions();
const script& sweep();
const script& shutdown();
const script& start();

}  // namespace wharf::state::scripts
