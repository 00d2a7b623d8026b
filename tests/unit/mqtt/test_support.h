// Helpers shared by the MQTT unit tests.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "protocols/mqtt/codec.h"

namespace wharf::mqtt::test {

// Raw bytes from a list of byte values.
inline std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

inline std::string encoded(const packet& p, protocol_version v) {
  std::string out;
  encode(p, v, out);
  return out;
}

// Decodes every packet in `data` as a client would (version known).
inline std::vector<packet> decode_all(const std::string& data, protocol_version v) {
  decoder d({268'435'455, 65535}, v);
  std::string_view in = data;
  std::vector<packet> out;
  while (!in.empty()) {
    auto r = d.decode(in);
    if (!r || !*r) break;
    out.push_back(std::move(**r));
  }
  return out;
}

// Decodes `data` with a fresh server-side decoder and returns the first
// error (or {} if every packet decoded).
inline boost::system::error_code first_error(const std::string& data, decoder_options options = {}) {
  decoder d(options);
  std::string_view in = data;
  while (!in.empty()) {
    auto r = d.decode(in);
    if (!r) return r.error();
    if (!*r) break;
  }
  return {};
}

// Version-prefixed CONNECT for feeding a server-side decoder before other
// packets: "MQTT" level v, clean start, keep alive 60, client id "c".
inline std::string connect_bytes(protocol_version v) {
  connect c;
  c.version = v;
  c.client_id = "c";
  c.keep_alive = 60;
  return encoded(c, v);
}

}  // namespace wharf::mqtt::test
