#include "sinks/local_log/log_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wharf::sinks::local_log {

namespace {
constexpr std::size_t read_chunk = 256 * 1024;
}

log_reader::log_reader(std::string dir) : dir_(std::move(dir)) {}

log_reader::~log_reader() { close_segment(); }

void log_reader::close_segment() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
  buf_start_ = 0;
  file_pos_ = 0;
}

bool log_reader::open_segment(const segment_info& seg) {
  close_segment();
  fd_ = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    error_ = "cannot open " + seg.path + ": " + std::strerror(errno);
    return false;
  }
  segment_base_ = seg.base_offset;
  next_offset_ = seg.base_offset;
  return true;
}

bool log_reader::seek(std::uint64_t offset) {
  error_.clear();
  const auto segments = list_segments(dir_);
  if (segments.empty()) {
    close_segment();
    next_offset_ = offset;
    return true;
  }
  const segment_info* chosen = &segments.front();
  for (const auto& s : segments)
    if (s.base_offset <= offset) chosen = &s;
  if (!open_segment(*chosen)) return false;
  log_record skipped;
  while (next_offset_ < offset) {
    if (next(skipped, offset) != read_result::record) break;
  }
  return true;
}

bool log_reader::fill() {
  if (fd_ < 0) return false;
  if (buf_start_ > 0) {
    buf_.erase(0, buf_start_);
    buf_start_ = 0;
  }
  const std::size_t old = buf_.size();
  buf_.resize(old + read_chunk);
  ssize_t n;
  do {
    n = ::pread(fd_, buf_.data() + old, read_chunk, static_cast<off_t>(file_pos_));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    buf_.resize(old);
    return false;
  }
  buf_.resize(old + static_cast<std::size_t>(n));
  file_pos_ += static_cast<std::uint64_t>(n);
  return true;
}

bool log_reader::advance_segment() {
  for (const auto& s : list_segments(dir_)) {
    if (s.base_offset == next_offset_ && s.base_offset != segment_base_) return open_segment(s);
  }
  return false;
}

log_reader::read_result log_reader::next(log_record& out, std::uint64_t limit) {
  if (next_offset_ >= limit) return read_result::end;
  if (fd_ < 0) {
    const auto want = next_offset_;
    if (!seek(want) || fd_ < 0) return read_result::end;
    if (next_offset_ >= limit) return read_result::end;
  }
  for (;;) {
    std::size_t frame_size = 0;
    const std::string_view view(buf_.data() + buf_start_, buf_.size() - buf_start_);
    const auto st = decode_frame(view, out, frame_size);
    if (st == frame_status::ok) {
      buf_start_ += frame_size;
      out.offset = next_offset_++;
      return read_result::record;
    }
    if (fill()) continue;
    // Nothing more in this segment. Either the next segment starts here, or
    // the writer has not written the next frame yet.
    if (view.empty() && advance_segment()) continue;
    if (st == frame_status::corrupt || !view.empty()) {
      // Bytes that do not form a frame: fine at the end of the active
      // segment (a write in progress); corrupt if a later segment exists.
      for (const auto& s : list_segments(dir_)) {
        if (s.base_offset > segment_base_) {
          error_ = "corrupt frame at offset " + std::to_string(next_offset_) + " in segment " +
                   segment_file_name(segment_base_);
          return read_result::corrupt;
        }
      }
    }
    return read_result::end;
  }
}

}  // namespace wharf::sinks::local_log
