// Reads records from a local log directory, in offset order, from any
// position. Safe to use while a writer appends (in this process or another):
// a frame that is not complete yet at the end of the last segment reads as
// `end`, and the next call picks it up once it is there.
#pragma once

#include "sinks/local_log/log_format.h"

#include <cstdint>
#include <limits>
#include <string>

namespace wharf::sinks::local_log {

class log_reader {
 public:
  explicit log_reader(std::string dir);
  ~log_reader();
  log_reader(const log_reader&) = delete;
  log_reader& operator=(const log_reader&) = delete;

  // Positions the reader at `offset`, or at the oldest record still kept when
  // retention already deleted `offset`. False (with error()) if the directory
  // cannot be read.
  bool seek(std::uint64_t offset);

  enum class read_result : std::uint8_t {
    record,   // `out` holds the record at position()-1
    end,      // no record at position() yet (or position() reached `limit`)
    corrupt,  // a bad frame inside a closed segment; see error()
  };
  // Reads the record at position() if its offset is below `limit`.
  read_result next(log_record& out, std::uint64_t limit = std::numeric_limits<std::uint64_t>::max());

  // Offset of the next record next() returns.
  std::uint64_t position() const noexcept { return next_offset_; }
  const std::string& error() const noexcept { return error_; }

 private:
  bool open_segment(const segment_info& seg);
  void close_segment();
  // Appends more bytes from the current segment to the buffer; false at EOF.
  bool fill();
  // Moves to the segment that starts at next_offset_, if there is one.
  bool advance_segment();

  std::string dir_;
  int fd_ = -1;
  std::uint64_t segment_base_ = 0;
  std::uint64_t file_pos_ = 0;
  std::string buf_;
  std::size_t buf_start_ = 0;
  std::uint64_t next_offset_ = 0;
  std::string error_;
};

}  // namespace wharf::sinks::local_log
