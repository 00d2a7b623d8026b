// One Wharf node: builds every component from the config (the composition
// root), runs them on one io_context per core, and owns the lifecycle:
// start -> ready -> (SIGTERM/SIGINT) drain -> flush -> exit.
#pragma once

#include "config/config.h"

#include <memory>
#include <vector>
#include <string>

namespace wharf::edge {

class node {
 public:
  node(config::config cfg, std::vector<std::string> warnings);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  // Starts everything and blocks until the node has drained after a signal.
  // Returns the process exit code.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wharf::edge
