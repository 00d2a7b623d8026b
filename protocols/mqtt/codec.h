// MQTT wire codec: bytes -> packets (incremental `decoder`) and packets ->
// bytes (`encode`, appending to a caller's buffer). Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "protocols/mqtt/errors.h"
#include "protocols/mqtt/packets.h"

namespace wharf::mqtt {

struct decoder_options {
  // Largest whole packet (fixed header included) accepted; checked as soon
  // as the Remaining Length is known, before any of the body is buffered.
  std::uint32_t max_packet_size = 1u << 20;
  // Most User Properties accepted in one property list.
  std::uint32_t max_user_properties = 32;
};

// Incremental decoder. Feed bytes in pieces of any size (one at a time, or
// many packets at once); each call to `decode` returns the next complete
// packet, advancing `input` past the bytes it consumed. A packet split
// across calls is buffered internally (at most one packet, bounded by
// max_packet_size); complete packets in `input` are parsed in place.
//
// Until a CONNECT has been decoded the decoder does not know the protocol
// version: the first packet must be CONNECT (else first_packet_not_connect),
// and the CONNECT sets the version for everything after it. A decoder for
// the client side (tests) is given the version up front.
//
// Errors are sticky: after one, `decode` keeps returning it.
class decoder {
 public:
  explicit decoder(decoder_options options = {}, std::optional<protocol_version> version = std::nullopt) noexcept;

  // The next packet; std::nullopt when `input` ran out before a whole packet
  // (the partial bytes are kept); or the broken rule.
  boost::system::result<std::optional<packet>> decode(std::span<const std::uint8_t>& input);
  boost::system::result<std::optional<packet>> decode(std::string_view& input);

  // Version in force: set by a decoded CONNECT (or the constructor). After a
  // CONNECT error it is the version the CONNECT asked for (v5 for levels
  // above 5), so the caller knows which CONNACK format to answer with.
  std::optional<protocol_version> version() const noexcept { return version_; }
  void set_version(protocol_version v) noexcept { version_ = v; }
  void set_max_packet_size(std::uint32_t n) noexcept { options_.max_packet_size = n; }

  // True when bytes of an unfinished packet are buffered.
  bool has_partial() const noexcept { return !buffer_.empty() || header_len_ != 0; }

 private:
  boost::system::error_code parse(std::uint8_t first, const std::uint8_t* body, std::size_t len,
                                  std::optional<packet>& out);

  decoder_options options_;
  std::optional<protocol_version> version_;
  boost::system::error_code error_;
  // Partial fixed header (type byte + up to 4 length bytes).
  std::uint8_t header_[5] = {};
  std::size_t header_len_ = 0;
  std::uint32_t remaining_ = 0;  // body length, valid once header complete
  bool header_done_ = false;
  std::string buffer_;  // partial body
};

// Parses exactly one packet from `bytes`, which must hold it whole (tests,
// tools). Errors if bytes are missing or left over.
boost::system::result<packet> decode_one(std::string_view bytes, protocol_version version,
                                         decoder_options options = {});

// Appends the encoding of `p` for `version` to `out`. Properties are written
// only for 5.0. 3.1.1 CONNACK/SUBACK codes are mapped to 3.1.1 values.
void encode(const packet& p, protocol_version version, std::string& out);
void encode(const connack& p, protocol_version version, std::string& out);
void encode(const puback& p, protocol_version version, std::string& out);
void encode(const pubrec& p, protocol_version version, std::string& out);
void encode(const pubrel& p, protocol_version version, std::string& out);
void encode(const pubcomp& p, protocol_version version, std::string& out);
void encode(const suback& p, protocol_version version, std::string& out);
void encode(const unsuback& p, protocol_version version, std::string& out);
void encode(const disconnect& p, protocol_version version, std::string& out);

// Size in bytes `encode` would append.
std::size_t encoded_size(const packet& p, protocol_version version);

// Will Properties as a session store keeps them: the property list as on
// the wire, length prefix included, and back (only properties a will may
// carry are accepted).
std::string encode_will_properties(const properties& p);
boost::system::result<properties> decode_will_properties(std::string_view bytes, const decoder_options& options = {});

// Appends the MQTT Variable Byte Integer for n (n < 268'435'456).
void encode_varint(std::uint32_t n, std::string& out);

}  // namespace wharf::mqtt
