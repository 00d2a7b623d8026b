// The Lua scripts the Redis session store runs, one per mutating operation.
// Each is atomic on the primary; docs/state.md lists them with the key layout.
#pragma once

#include <string>

namespace wharf::state::scripts {

struct script {
  std::string source;
  std::string sha1;  // hex, for EVALSHA
};

struct script_set {
  script connect;
  script disconnect;
  script qos2_hold;
  script qos2_release;
  script update_expiry;
  script subscriptions;
  script sweep;
  script shutdown;
  script start;
};

// Every key and channel the scripts use starts with `prefix` ("wharf:" by
// default). It must not contain a quote or a backslash.
script_set make_scripts(const std::string& prefix);

}  // namespace wharf::state::scripts
