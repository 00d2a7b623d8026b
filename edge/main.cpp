// wharf: the IoT edge ingestion node. See `wharf --help`.
#include "config/load.h"
#include "edge/build_info.h"
#include "edge/logging.h"
#include "edge/node.h"
#include "protocols/mqtt/server/authenticator.h"
#include "sinks/local_log/log_command.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

extern char** environ;

namespace {

constexpr const char* usage = R"(wharf - IoT edge ingestion node: MQTT 3.1.1/5.0 and HTTP in, Kafka out.

Usage:
  wharf [--config FILE] [options]      run a node
  wharf --check-config [--config FILE] [options]
                                       validate the configuration and exit
  wharf --print-keys                   list every configuration key with its default
  wharf log cat|tail DIR               print the records of a local log (see docs/kafka.md)
  wharf passwd FILE USER               add or change a user in an MQTT password file
                                       (password read from standard input)
  wharf --help | --version

Options (each overrides its configuration key; WHARF_<SECTION>_<KEY>
environment variables override the file, options override both):
  --config FILE            YAML configuration (or WHARF_CONFIG)
  --node-id ID             node.id              unique name of this node
  --mqtt-listen HOST:PORT  mqtt.listen          plain MQTT ("" disables)
  --mqtt-tls-listen H:P    mqtt.tls.listen      MQTT over TLS
  --http-listen HOST:PORT  http.listen          HTTP ingest API
  --admin-listen HOST:PORT admin.listen         /livez /readyz /metrics
  --kafka-brokers LIST     kafka.brokers        empty: local log sink
  --redis URL              redis.url            redis://H:P or sentinel://H:P,.../MASTER
  --data-dir DIR           node.data_dir
  --log-format text|json   log.format
  --log-level LEVEL        log.level            trace|debug|info|warn|error

Exit status: 0 after a clean drain, 2 for a configuration error, 1 otherwise.
Documentation: docs/configuration.md, docs/mqtt.md, docs/http-api.md, docs/operations.md.
)";

const std::map<std::string, std::string> flag_keys = {
    {"--node-id", "node.id"},         {"--mqtt-listen", "mqtt.listen"},   {"--mqtt-tls-listen", "mqtt.tls.listen"},
    {"--http-listen", "http.listen"}, {"--admin-listen", "admin.listen"}, {"--kafka-brokers", "kafka.brokers"},
    {"--redis", "redis.url"},         {"--data-dir", "node.data_dir"},    {"--log-format", "log.format"},
    {"--log-level", "log.level"},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "log") == 0)
    return wharf::sinks::local_log::run_log_command(argc - 1, argv + 1);
  if (argc >= 2 && std::strcmp(argv[1], "passwd") == 0) return wharf::mqtt::run_passwd_command(argc, argv);
  std::string config_path;
  if (const char* e = std::getenv("WHARF_CONFIG")) config_path = e;
  bool check_only = false;
  wharf::config::overrides flags;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    auto take_value = [&]() -> bool {
      if (has_inline) return true;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wharf: %s needs a value; see wharf --help\n", arg.c_str());
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("wharf %s (revision %s)\n", wharf::edge::build_version().c_str(),
                  wharf::edge::build_revision().c_str());
      return 0;
    }
    if (arg == "--print-keys") {
      for (const auto& line : wharf::config::describe_keys()) std::puts(line.c_str());
      return 0;
    }
    if (arg == "--check-config") {
      check_only = true;
      continue;
    }
    if (arg == "--config" || arg == "-c") {
      if (!take_value()) return 2;
      config_path = value;
      continue;
    }
    if (auto it = flag_keys.find(arg); it != flag_keys.end()) {
      if (!take_value()) return 2;
      flags.emplace_back(it->second, value);
      continue;
    }
    std::fprintf(stderr, "wharf: unknown option %s; see wharf --help\n", argv[i]);
    return 2;
  }

  auto loaded = wharf::config::load_file(config_path, flags, environ);
  if (!loaded.ok()) {
    std::fprintf(stderr, "wharf: the configuration is not valid (%s):\n",
                 config_path.empty() ? "defaults" : config_path.c_str());
    for (const auto& e : loaded.errors) std::fprintf(stderr, "  - %s\n", e.c_str());
    return 2;
  }
  if (check_only) {
    for (const auto& w : loaded.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("configuration OK (%s)\n", config_path.empty() ? "defaults" : config_path.c_str());
    return 0;
  }

  wharf::edge::setup_logging(loaded.cfg.log.format, loaded.cfg.log.level, loaded.cfg.node.id);
  try {
    wharf::edge::node n(std::move(loaded.cfg), std::move(loaded.warnings));
    return n.run();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
