#include "edge/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace wharf::edge {

namespace {

void append_json_escaped(std::string_view in, spdlog::memory_buf_t& dest) {
  static constexpr char hex[] = "0123456789abcdef";
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          dest.append(std::string_view(esc, sizeof esc));
        } else {
          dest.push_back(ch);
        }
    }
  }
}

// %* in the pattern: the log message, escaped for a JSON string.
class json_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<json_message_flag>(); }
};

}  // namespace

void setup_logging(const std::string& format, const std::string& level, const std::string& node_id) {
  auto logger = std::make_shared<spdlog::logger>("wharf", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    std::string node;
    spdlog::memory_buf_t buf;
    append_json_escaped(node_id, buf);
    node.assign(buf.data(), buf.size());
    formatter->add_flag<json_message_flag>('*').set_pattern(
        "{\"time\":\"%Y-%m-%dT%H:%M:%S.%e%z\",\"level\":\"%l\",\"node\":\"" + node + "\",\"msg\":\"%*\"}");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ " + node_id + " %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace wharf::edge
