// Test support: start the real `wharf` binary (or any program) as a child
// process, find free ports, speak plain HTTP/1.1 to it. Used by integration
// and fault tests; no mocks.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include <sys/types.h>

namespace wharf::test {

// Path of the wharf binary under test: $WHARF_BINARY, else the one built
// alongside the tests.
std::string wharf_binary();

// A port on 127.0.0.1 that was free a moment ago.
unsigned short free_port();

struct http_reply {
  int status = 0;  // 0: no answer (connection refused, timeout)
  std::string headers;
  std::string body;
};

// One request over a fresh connection to 127.0.0.1:port.
http_reply http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::vector<std::string>& headers = {},
                        std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
inline http_reply http_get(unsigned short port, const std::string& target) { return http_request(port, "GET", target); }

class child_process {
 public:
  // Starts argv[0] with the given arguments; stdout and stderr go to a log file.
  explicit child_process(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~child_process();  // SIGKILLs the child if it still runs
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig` and waits up to `timeout` for the exit. Returns the exit
  // status (128+signal when killed by a signal), or -1 on timeout.
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::milliseconds{15000});
  // Waits for the child to exit by itself.
  int wait(std::chrono::milliseconds timeout);
  std::string output() const;  // everything it printed so far
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// A wharf node for tests: free ports for every listener, its own data dir,
// started with `--config` when a YAML text is given.
class wharf_node {
 public:
  struct options {
    std::string config_yaml;              // written to a temp file when non-empty
    std::vector<std::string> extra_args;  // appended after the generated flags
    std::vector<std::string> env;         // NAME=VALUE
    std::string node_id = "test-node";
    bool mqtt = true;
    bool http = true;
  };
  explicit wharf_node(options opts);
  ~wharf_node();

  // Waits until /readyz answers 200. False (with the log in `why`) otherwise.
  bool wait_ready(std::chrono::milliseconds timeout, std::string* why = nullptr);

  unsigned short admin_port() const { return admin_port_; }
  unsigned short mqtt_port() const { return mqtt_port_; }
  unsigned short http_port() const { return http_port_; }
  const std::string& data_dir() const { return data_dir_; }
  child_process& process() { return *proc_; }
  // Starts the same node again (same ports and data dir) after it exited.
  void restart();

 private:
  void launch();
  options opts_;
  unsigned short admin_port_ = 0, mqtt_port_ = 0, http_port_ = 0;
  std::string dir_, data_dir_, config_path_;
  std::unique_ptr<child_process> proc_;
};

// A fresh temporary directory, removed by the caller if it wants.
std::string make_temp_dir(const std::string& prefix);

// Runs a shell command; returns its exit status and fills `out` with stdout.
int run_command(const std::string& cmd, std::string* out = nullptr);

// Root of the source tree (for scripts/stack and examples/).
std::string source_dir();

}  // namespace wharf::test
