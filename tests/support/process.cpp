#include "tests/support/process.h"

#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace wharf::test {

using namespace std::chrono;

std::string wharf_binary() {
  if (const char* e = std::getenv("WHARF_BINARY"); e && *e) return e;
  return WHARF_BINARY_PATH;
}

std::string source_dir() { return WHARF_SOURCE_DIR; }

unsigned short free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

http_reply http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body, const std::vector<std::string>& headers, milliseconds timeout) {
  http_reply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return reply;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (std::size_t sent = 0; sent < req.size();) {
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  auto deadline = steady_clock::now() + timeout;
  char buf[65536];
  while (steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<long long>(left, 1))) <= 0) break;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return reply;
  reply.status = std::atoi(raw.c_str() + 9);
  reply.headers = raw.substr(0, end);
  reply.body = raw.substr(end + 4);
  // Undo chunked transfer coding when present.
  if (reply.headers.find("Transfer-Encoding: chunked") != std::string::npos ||
      reply.headers.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out, &in = reply.body;
    std::size_t pos = 0;
    while (pos < in.size()) {
      auto eol = in.find("\r\n", pos);
      if (eol == std::string::npos) break;
      auto size = std::strtoul(in.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (size == 0) break;
      out += in.substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
    reply.body = out;
  }
  return reply;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string s;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, p)) s.append(buf, n);
  int status = ::pclose(p);
  if (out) *out = s;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

child_process::child_process(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  static int counter = 0;
  log_path_ = "/tmp/wharf-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ".log";
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    for (auto& e : extra_env) ::putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
}

child_process::~child_process() {
  if (running()) stop(SIGKILL, milliseconds{5000});
}

bool child_process::running() {
  if (status_ != -1) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

int child_process::wait(milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (running()) {
    if (steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(milliseconds{20});
  }
  return status_;
}

int child_process::stop(int sig, milliseconds timeout) {
  if (running()) ::kill(pid_, sig);
  return wait(timeout);
}

std::string child_process::output() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

wharf_node::wharf_node(options opts) : opts_(std::move(opts)) {
  dir_ = make_temp_dir("wharf-node");
  data_dir_ = dir_ + "/data";
  admin_port_ = free_port();
  if (opts_.mqtt) mqtt_port_ = free_port();
  if (opts_.http) http_port_ = free_port();
  if (!opts_.config_yaml.empty()) {
    config_path_ = dir_ + "/wharf.yaml";
    std::ofstream(config_path_) << opts_.config_yaml;
  }
  launch();
}

wharf_node::~wharf_node() {
  proc_.reset();
  run_command("rm -rf '" + dir_ + "'");
}

void wharf_node::launch() {
  std::vector<std::string> argv = {wharf_binary()};
  if (!config_path_.empty()) argv.insert(argv.end(), {"--config", config_path_});
  argv.insert(argv.end(), {"--node-id", opts_.node_id, "--data-dir", data_dir_, "--admin-listen",
                           "127.0.0.1:" + std::to_string(admin_port_), "--mqtt-listen",
                           opts_.mqtt ? "127.0.0.1:" + std::to_string(mqtt_port_) : "", "--http-listen",
                           opts_.http ? "127.0.0.1:" + std::to_string(http_port_) : ""});
  argv.insert(argv.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  proc_ = std::make_unique<child_process>(argv, opts_.env);
}

void wharf_node::restart() {
  proc_.reset();
  launch();
}

bool wharf_node::wait_ready(milliseconds timeout, std::string* why) {
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    if (!proc_->running()) break;
    if (http_get(admin_port_, "/readyz").status == 200) return true;
    std::this_thread::sleep_for(milliseconds{50});
  }
  if (why) *why = "node did not become ready; its log:\n" + proc_->output();
  return false;
}

}  // namespace wharf::test
