// A minimal blocking MQTT client for black-box tests, built on Wharf's own
// codec: it sends exactly the packets a test builds (DUP flags, chosen
// packet ids, PUBREL to another node) and returns each packet the server
// sends, or reports the close.
#pragma once

#include "protocols/mqtt/codec.h"
#include "protocols/mqtt/packets.h"

#include <chrono>
#include <optional>
#include <string>

namespace wharf::test {

class mqtt_raw_client {
 public:
  mqtt_raw_client(unsigned short port, mqtt::protocol_version v);
  ~mqtt_raw_client();
  mqtt_raw_client(const mqtt_raw_client&) = delete;
  mqtt_raw_client& operator=(const mqtt_raw_client&) = delete;

  bool connected() const { return fd_ >= 0; }
  void send(const mqtt::packet& p);
  // The next packet, or nullopt when the server closed the connection or
  // nothing arrived within `timeout` (`closed()` tells which).
  std::optional<mqtt::packet> receive(std::chrono::milliseconds timeout = std::chrono::milliseconds{10000});
  bool closed() const { return closed_; }

  // CONNECT and wait for CONNACK; nullopt if none came.
  std::optional<mqtt::connack> connect(const std::string& client_id, bool clean_start,
                                       std::optional<std::uint32_t> session_expiry = std::nullopt,
                                       std::uint16_t keep_alive = 60);
  // QoS 1 PUBLISH and its PUBACK (nullopt if none came in time).
  std::optional<mqtt::puback> publish_qos1(const std::string& topic, const std::string& payload,
                                           std::uint16_t packet_id, bool dup = false,
                                           std::chrono::milliseconds timeout = std::chrono::milliseconds{20000});
  void close();

 private:
  int fd_ = -1;
  bool closed_ = false;
  mqtt::protocol_version version_;
  mqtt::decoder decoder_;
};

}  // namespace wharf::test
