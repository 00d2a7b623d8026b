#include "sinks/local_log/log_format.h"

#include <gtest/gtest.h>

namespace wharf::sinks::local_log {
namespace {

record sample() {
  record r;
  r.topic = "mqtt.ingest";
  r.key = std::string("dev\0ice-1", 9);
  r.value = std::string("\x00\x01\xff payload", 11);
  r.headers = {{"ce_id", "abc"}, {"ce_mqttdup", "false"}, {"empty", ""}};
  return r;
}

TEST(LocalLogFormat, Crc32cMatchesTheCastagnoliCheckValue) {
  // The standard check value of CRC-32C over "123456789".
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(LocalLogFormat, FrameRoundTripsTopicKeyValueHeadersAndTime) {
  std::string buf;
  append_frame(buf, sample(), 1700000000123);
  log_record out;
  std::size_t size = 0;
  ASSERT_EQ(decode_frame(buf, out, size), frame_status::ok);
  EXPECT_EQ(size, buf.size());
  EXPECT_EQ(out.timestamp_ms, 1700000000123);
  EXPECT_EQ(out.rec.topic, "mqtt.ingest");
  EXPECT_EQ(out.rec.key, std::string("dev\0ice-1", 9));
  EXPECT_EQ(out.rec.value, std::string("\x00\x01\xff payload", 11));
  ASSERT_EQ(out.rec.headers.size(), 3u);
  EXPECT_EQ(out.rec.headers[0].name, "ce_id");
  EXPECT_EQ(out.rec.headers[1].value, "false");
  EXPECT_EQ(out.rec.headers[2].value, "");
}

TEST(LocalLogFormat, FrameStartsWithLittleEndianBodyLengthAndCrc) {
  std::string buf;
  append_frame(buf, sample(), 1);
  const std::uint32_t len = static_cast<unsigned char>(buf[0]) | static_cast<unsigned char>(buf[1]) << 8 |
                            static_cast<unsigned char>(buf[2]) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(buf[3])) << 24;
  EXPECT_EQ(len, buf.size() - frame_header_size);
  const std::uint32_t crc = static_cast<unsigned char>(buf[4]) | static_cast<unsigned char>(buf[5]) << 8 |
                            static_cast<unsigned char>(buf[6]) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(buf[7])) << 24;
  EXPECT_EQ(crc, crc32c(std::string_view(buf).substr(frame_header_size)));
  EXPECT_EQ(static_cast<std::uint8_t>(buf[8]), format_version);
}

TEST(LocalLogFormat, EveryTruncationOfAFrameIsIncomplete) {
  std::string buf;
  append_frame(buf, sample(), 1);
  for (std::size_t n = 0; n < buf.size(); ++n) {
    log_record out;
    std::size_t size = 0;
    const auto st = decode_frame(std::string_view(buf).substr(0, n), out, size);
    EXPECT_EQ(st, frame_status::incomplete) << "prefix of " << n << " bytes";
  }
}

TEST(LocalLogFormat, FlippedBitInBodyIsCorrupt) {
  std::string buf;
  append_frame(buf, sample(), 1);
  for (std::size_t i = frame_header_size; i < buf.size(); ++i) {
    std::string bad = buf;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    log_record out;
    std::size_t size = 0;
    EXPECT_EQ(decode_frame(bad, out, size), frame_status::corrupt) << "byte " << i;
  }
}

TEST(LocalLogFormat, ZeroFilledHeaderIsCorruptNotAnEmptyRecord) {
  const std::string zeros(64, '\0');
  log_record out;
  std::size_t size = 0;
  EXPECT_EQ(decode_frame(zeros, out, size), frame_status::corrupt);
}

TEST(LocalLogFormat, SegmentNamesAreZeroPaddedOffsets) {
  EXPECT_EQ(segment_file_name(0), "00000000000000000000.log");
  EXPECT_EQ(segment_file_name(1234), "00000000000000001234.log");
}

}  // namespace
}  // namespace wharf::sinks::local_log
