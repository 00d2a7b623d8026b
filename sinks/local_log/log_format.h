// On-disk format of the local log.
//
// A log is a directory of segment files named after the offset of their first
// record, zero-padded to 20 digits: 00000000000000000000.log. Offsets number
// records from 0 and never repeat. A segment is a sequence of frames:
//
//   u32 body_length  (little endian)
//   u32 crc32c(body) (little endian, Castagnoli polynomial)
//   body:
//     u8  version (1)
//     i64 ingest time, Unix milliseconds
//     u32 topic length, topic bytes
//     u32 key length,   key bytes
//     u32 value length, value bytes
//     u32 header count, then per header: u32 name length, name, u32 value length, value
//
// A frame that is short or whose CRC does not match at the end of the last
// segment is a torn write from a crash: recovery truncates it.
#pragma once

#include "sinks/sink.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::sinks::local_log {

inline constexpr std::size_t frame_header_size = 8;
inline constexpr std::uint32_t max_body_size = 512u << 20;
inline constexpr std::uint8_t format_version = 1;

struct log_record {
  std::uint64_t offset = 0;
  std::int64_t timestamp_ms = 0;  // ingest time, Unix milliseconds
  record rec;
};

std::uint32_t crc32c(std::string_view bytes) noexcept;

// Appends one frame for `rec` to `out`.
void append_frame(std::string& out, const record& rec, std::int64_t timestamp_ms);

enum class frame_status : std::uint8_t {
  ok,
  incomplete,  // fewer bytes than the frame needs (torn tail, or still being written)
  corrupt,     // CRC mismatch, impossible length or malformed body
};

// Reads the frame header at the start of `bytes`: the body length, or
// incomplete/corrupt.
frame_status peek_frame(std::string_view bytes, std::uint32_t& body_length) noexcept;

// Checks and decodes one whole frame (header + body) starting at `bytes`.
frame_status decode_frame(std::string_view bytes, log_record& out, std::size_t& frame_size);

std::string segment_file_name(std::uint64_t base_offset);

struct segment_info {
  std::uint64_t base_offset = 0;
  std::string path;
  std::uint64_t size_bytes = 0;
};

// Segments in `dir`, oldest first. Files that are not segments are ignored.
std::vector<segment_info> list_segments(const std::string& dir);

}  // namespace wharf::sinks::local_log
