#include "sinks/local_log/log_format.h"

#include <boost/crc.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace wharf::sinks::local_log {

namespace {

using crc32c_t = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}
void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}
void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

std::uint32_t get_u32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
std::uint64_t get_u64(const char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// Reads length-prefixed fields from a frame body; any overrun marks it bad.
struct body_cursor {
  std::string_view rest;
  bool bad = false;

  std::uint32_t u32() {
    if (rest.size() < 4) {
      bad = true;
      return 0;
    }
    auto v = get_u32(rest.data());
    rest.remove_prefix(4);
    return v;
  }
  std::uint64_t u64() {
    if (rest.size() < 8) {
      bad = true;
      return 0;
    }
    auto v = get_u64(rest.data());
    rest.remove_prefix(8);
    return v;
  }
  std::string bytes() {
    auto n = u32();
    if (bad || rest.size() < n) {
      bad = true;
      return {};
    }
    std::string s(rest.substr(0, n));
    rest.remove_prefix(n);
    return s;
  }
};

}  // namespace

std::uint32_t crc32c(std::string_view bytes) noexcept {
  crc32c_t crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

void append_frame(std::string& out, const record& rec, std::int64_t timestamp_ms) {
  const std::size_t start = out.size();
  out.append(frame_header_size, '\0');
  out.push_back(static_cast<char>(format_version));
  put_u64(out, static_cast<std::uint64_t>(timestamp_ms));
  put_bytes(out, rec.topic);
  put_bytes(out, rec.key);
  put_bytes(out, rec.value);
  put_u32(out, static_cast<std::uint32_t>(rec.headers.size()));
  for (const auto& h : rec.headers) {
    put_bytes(out, h.name);
    put_bytes(out, h.value);
  }
  const std::size_t body_len = out.size() - start - frame_header_size;
  const std::uint32_t crc = crc32c(std::string_view(out.data() + start + frame_header_size, body_len));
  std::string header;
  put_u32(header, static_cast<std::uint32_t>(body_len));
  put_u32(header, crc);
  std::memcpy(out.data() + start, header.data(), frame_header_size);
}

frame_status peek_frame(std::string_view bytes, std::uint32_t& body_length) noexcept {
  if (bytes.size() < frame_header_size) return frame_status::incomplete;
  body_length = get_u32(bytes.data());
  // The smallest body: version, time and four zero lengths.
  if (body_length < 1 + 8 + 4 * 4 || body_length > max_body_size) return frame_status::corrupt;
  return frame_status::ok;
}

frame_status decode_frame(std::string_view bytes, log_record& out, std::size_t& frame_size) {
  std::uint32_t body_len = 0;
  if (auto st = peek_frame(bytes, body_len); st != frame_status::ok) return st;
  if (bytes.size() < frame_header_size + body_len) return frame_status::incomplete;
  const std::uint32_t want_crc = get_u32(bytes.data() + 4);
  const std::string_view body = bytes.substr(frame_header_size, body_len);
  if (crc32c(body) != want_crc) return frame_status::corrupt;
  body_cursor c{body};
  if (body.empty() || static_cast<std::uint8_t>(body[0]) != format_version) return frame_status::corrupt;
  c.rest.remove_prefix(1);
  out.timestamp_ms = static_cast<std::int64_t>(c.u64());
  out.rec.topic = c.bytes();
  out.rec.key = c.bytes();
  out.rec.value = c.bytes();
  const std::uint32_t n_headers = c.u32();
  out.rec.headers.clear();
  for (std::uint32_t i = 0; i < n_headers && !c.bad; ++i) {
    header h;
    h.name = c.bytes();
    h.value = c.bytes();
    out.rec.headers.push_back(std::move(h));
  }
  if (c.bad || !c.rest.empty()) return frame_status::corrupt;
  frame_size = frame_header_size + body_len;
  return frame_status::ok;
}

std::string segment_file_name(std::uint64_t base_offset) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.log", static_cast<unsigned long long>(base_offset));
  return name;
}

std::vector<segment_info> list_segments(const std::string& dir) {
  std::vector<segment_info> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    if (name.size() != 24 || !name.ends_with(".log")) continue;
    if (!std::all_of(name.begin(), name.begin() + 20, [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
    segment_info s;
    s.base_offset = std::stoull(name.substr(0, 20));
    s.path = entry.path().string();
    std::error_code size_ec;
    s.size_bytes = entry.file_size(size_ec);
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.base_offset < b.base_offset; });
  return out;
}

}  // namespace wharf::sinks::local_log
