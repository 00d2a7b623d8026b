#include "sinks/local_log/log_command.h"

#include "sinks/local_log/log_reader.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

namespace wharf::sinks::local_log {

namespace {

const char* usage =
    "usage: wharf log cat DIR\n"
    "       wharf log tail DIR [-n N] [-f]\n"
    "Prints the records of the local log in DIR with their headers.\n";

std::string escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

std::string rfc3339(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char b[96];
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return b;
}

void print_record(const log_record& r) {
  std::printf("offset=%llu time=%s topic=%s key=%s bytes=%zu\n", static_cast<unsigned long long>(r.offset),
              rfc3339(r.timestamp_ms).c_str(), escaped(r.rec.topic).c_str(), escaped(r.rec.key).c_str(),
              r.rec.value.size());
  for (const auto& h : r.rec.headers) std::printf("  %s: %s\n", escaped(h.name).c_str(), escaped(h.value).c_str());
  std::printf("  %s\n", escaped(r.rec.value).c_str());
}

// Prints records from the reader's position; returns false on corruption.
bool print_available(log_reader& reader) {
  log_record r;
  for (;;) {
    switch (reader.next(r)) {
      case log_reader::read_result::record:
        print_record(r);
        break;
      case log_reader::read_result::end:
        std::fflush(stdout);
        return true;
      case log_reader::read_result::corrupt:
        std::fflush(stdout);
        std::fprintf(stderr, "wharf log: %s\n", reader.error().c_str());
        return false;
    }
  }
}

}  // namespace

int run_log_command(int argc, char** argv) {
  if (argc < 3 || std::strcmp(argv[1], "--help") == 0) {
    std::fputs(usage, argc < 3 ? stderr : stdout);
    return argc < 3 ? 2 : 0;
  }
  const std::string verb = argv[1];
  const std::string dir = argv[2];
  if (!std::filesystem::is_directory(dir)) {
    std::fprintf(stderr, "wharf log: %s is not a directory\n", dir.c_str());
    return 1;
  }
  log_reader reader(dir);
  if (verb == "cat") {
    if (argc != 3) {
      std::fputs(usage, stderr);
      return 2;
    }
    if (!reader.seek(0)) {
      std::fprintf(stderr, "wharf log: %s\n", reader.error().c_str());
      return 1;
    }
    return print_available(reader) ? 0 : 1;
  }
  if (verb == "tail") {
    bool follow = false;
    std::uint64_t count = 10;
    for (int i = 3; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-f") {
        follow = true;
      } else if (a == "-n" && i + 1 < argc) {
        count = std::strtoull(argv[++i], nullptr, 10);
      } else {
        std::fputs(usage, stderr);
        return 2;
      }
    }
    // Find the end by reading through the last segment, then start `count`
    // before it.
    const auto segments = list_segments(dir);
    if (!reader.seek(segments.empty() ? 0 : segments.back().base_offset)) {
      std::fprintf(stderr, "wharf log: %s\n", reader.error().c_str());
      return 1;
    }
    log_record r;
    while (reader.next(r) == log_reader::read_result::record) {
    }
    const std::uint64_t end = reader.position();
    if (!reader.seek(end > count ? end - count : 0)) {
      std::fprintf(stderr, "wharf log: %s\n", reader.error().c_str());
      return 1;
    }
    if (!print_available(reader)) return 1;
    while (follow) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (!print_available(reader)) return 1;
    }
    return 0;
  }
  std::fprintf(stderr, "wharf log: unknown command '%s'\n%s", verb.c_str(), usage);
  return 2;
}

}  // namespace wharf::sinks::local_log
