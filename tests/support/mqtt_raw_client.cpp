#include "tests/support/mqtt_raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace wharf::test {

using namespace std::chrono;

mqtt_raw_client::mqtt_raw_client(unsigned short port, mqtt::protocol_version v)
    : version_(v), decoder_(mqtt::decoder_options{256u << 20, 1000}, v) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    closed_ = true;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

mqtt_raw_client::~mqtt_raw_client() { close(); }

void mqtt_raw_client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void mqtt_raw_client::send(const mqtt::packet& p) {
  if (fd_ < 0) return;
  std::string out;
  mqtt::encode(p, version_, out);
  for (std::size_t sent = 0; sent < out.size();) {
    auto n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      closed_ = true;
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
}

std::optional<mqtt::packet> mqtt_raw_client::receive(milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  std::string_view empty;
  for (;;) {
    // A packet already buffered by the decoder comes first.
    std::span<const std::uint8_t> none;
    auto r = decoder_.decode(none);
    if (!r) {
      closed_ = true;
      return std::nullopt;
    }
    if (*r) return std::move(**r);
    if (fd_ < 0) return std::nullopt;
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    std::uint8_t buf[1];  // one byte at a time: the decoder keeps what is left
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      close();
      return std::nullopt;
    }
    std::span<const std::uint8_t> in(buf, static_cast<std::size_t>(n));
    auto got = decoder_.decode(in);
    if (!got) {
      closed_ = true;
      return std::nullopt;
    }
    if (*got) return std::move(**got);
  }
  (void)empty;
}

std::optional<mqtt::connack> mqtt_raw_client::connect(const std::string& client_id, bool clean_start,
                                                      std::optional<std::uint32_t> session_expiry,
                                                      std::uint16_t keep_alive) {
  mqtt::connect c;
  c.version = version_;
  c.clean_start = clean_start;
  c.keep_alive = keep_alive;
  c.client_id = client_id;
  if (version_ == mqtt::protocol_version::v5) c.props.session_expiry_interval = session_expiry;
  send(c);
  auto p = receive();
  if (!p) return std::nullopt;
  if (auto* ack = std::get_if<mqtt::connack>(&*p)) return *ack;
  return std::nullopt;
}

std::optional<mqtt::puback> mqtt_raw_client::publish_qos1(const std::string& topic, const std::string& payload,
                                                          std::uint16_t packet_id, bool dup, milliseconds timeout) {
  mqtt::publish p;
  p.topic = topic;
  p.payload = payload;
  p.qos = mqtt::qos::at_least_once;
  p.dup = dup;
  p.packet_id = packet_id;
  send(p);
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    auto got = receive(duration_cast<milliseconds>(deadline - steady_clock::now()));
    if (!got) return std::nullopt;
    if (auto* ack = std::get_if<mqtt::puback>(&*got)) return *ack;
  }
  return std::nullopt;
}

}  // namespace wharf::test
