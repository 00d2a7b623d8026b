// libFuzzer target for the MQTT decoder and the connection machine.
//
// Part 1 (decoder): the input is decoded as one buffer and again one byte
// at a time; both must give the same packets and the same error. Every
// decoded packet must survive encode -> decode unchanged.
//
// Part 2 (machine): the input is a script of operations (feed bytes,
// accept/reject the CONNECT, complete publishes with any outcome, advance
// the clock, server disconnect, socket closed). Invariants checked after
// every call: nothing follows `close`; every byte the machine sends decodes
// as valid MQTT for the connection's version; a 5.0 connection's in-flight
// count stays within Receive Maximum. (Ack ordering is covered by the unit
// tests, where the arrival order is known.)
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocols/mqtt/codec.h"
#include "protocols/mqtt/connection_machine.h"

namespace {

using namespace wharf::mqtt;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// ---- Part 1: decoder ----

struct decode_result {
  std::vector<packet> packets;
  boost::system::error_code error;
  std::optional<protocol_version> version;
};

decode_result decode_whole(std::string_view in, std::optional<protocol_version> v) {
  decode_result r;
  decoder d({4096, 8}, v);
  while (!in.empty()) {
    auto p = d.decode(in);
    if (!p) {
      r.error = p.error();
      break;
    }
    if (!*p) break;
    r.packets.push_back(std::move(**p));
  }
  r.version = d.version();
  return r;
}

decode_result decode_bytewise(std::string_view in, std::optional<protocol_version> v) {
  decode_result r;
  decoder d({4096, 8}, v);
  for (char ch : in) {
    std::string_view one(&ch, 1);
    auto p = d.decode(one);
    if (!p) {
      r.error = p.error();
      break;
    }
    if (*p) r.packets.push_back(std::move(**p));
  }
  r.version = d.version();
  return r;
}

void fuzz_decoder(std::string_view data, std::optional<protocol_version> preset) {
  const auto whole = decode_whole(data, preset);
  const auto bytewise = decode_bytewise(data, preset);
  check(whole.packets.size() == bytewise.packets.size(), "split changes packet count");
  check(whole.error == bytewise.error, "split changes error");
  for (std::size_t i = 0; i < whole.packets.size(); ++i) {
    check(whole.packets[i] == bytewise.packets[i], "split changes a packet");
  }
  if (!whole.version) return;
  for (const auto& p : whole.packets) {
    const protocol_version v = std::holds_alternative<connect>(p) ? std::get<connect>(p).version : *whole.version;
    std::string wire;
    encode(p, v, wire);
    check(wire.size() == encoded_size(p, v), "encoded_size differs");
    auto back = decode_one(wire, v, {1u << 20, 8});
    check(static_cast<bool>(back), "re-encoded packet does not decode");
    check(*back == p, "round trip changes the packet");
  }
}

// ---- Part 2: connection machine ----

struct machine_run {
  connection_machine m;
  clock::time_point now;
  bool closed = false;
  std::vector<publish_token> pending;  // QoS>0 tokens not completed
  std::vector<publish_token> qos0;
  std::uint16_t receive_maximum;

  machine_run(connection_options o, clock::time_point t) : m(o, t), now(t), receive_maximum(o.receive_maximum) {}

  void drain() {
    for (auto& ev : m.events()) {
      check(!closed, "event after close");
      if (auto* s = std::get_if<send_event>(&ev)) {
        check(!s->bytes.empty(), "empty send");
        const protocol_version v = m.version().value_or(protocol_version::v311);
        decoder d({268'435'455, 65535}, v);
        std::string_view in = s->bytes;
        while (!in.empty()) {
          auto p = d.decode(in);
          if (!p) {
            std::fprintf(stderr, "%s:", p.error().message().c_str());
            for (unsigned char ch : s->bytes) std::fprintf(stderr, " %02x", ch);
            std::fprintf(stderr, "\n");
            fail("machine sent invalid MQTT");
          }
          check(p->has_value(), "machine sent a partial packet");
        }
      } else if (auto* p = std::get_if<publish_requested>(&ev)) {
        if (p->qos == qos::at_most_once) {
          qos0.push_back(p->token);
        } else {
          pending.push_back(p->token);
        }
      } else if (std::holds_alternative<close_event>(ev)) {
        closed = true;
      }
    }
    m.clear_events();
    if (!closed) {
      check(m.inflight() <= std::max<std::size_t>(receive_maximum, 1) || m.version() == protocol_version::v311,
            "in-flight above receive maximum");
    }
  }
};

// A well-formed client packet built from fuzzer choices, so that the
// machine's deeper states (QoS 2 flows, aliases, DISCONNECT rules) are
// reached quickly; raw chunks cover everything else.
std::string generated_packet(FuzzedDataProvider& fdp, std::optional<protocol_version> current) {
  const protocol_version v = current.value_or(fdp.ConsumeBool() ? protocol_version::v5 : protocol_version::v311);
  const bool v5 = v == protocol_version::v5;
  static const char* const topics[] = {"a", "a/b", "", "a/b/c/d/e/f/g/h/i", "$SYS/x", "t"};
  packet p;
  switch (fdp.ConsumeIntegralInRange<int>(0, 9)) {
    case 0: {
      connect c;
      c.version = v;
      c.clean_start = fdp.ConsumeBool();
      c.keep_alive = fdp.ConsumeIntegralInRange<std::uint16_t>(0, 200);
      c.client_id = fdp.ConsumeBool() ? "" : "dev";
      if (fdp.ConsumeBool()) {
        c.will = will_message{"w/t",
                              fdp.ConsumeRandomLengthString(8),
                              static_cast<qos>(fdp.ConsumeIntegralInRange<int>(0, 2)),
                              fdp.ConsumeBool(),
                              {}};
        if (v5) {
          c.will->props.will_delay_interval = fdp.ConsumeIntegralInRange<std::uint32_t>(0, 100);
          if (fdp.ConsumeBool()) c.will->props.payload_format_indicator = 1;
        }
      }
      if (v5) {
        if (fdp.ConsumeBool()) {
          c.props.session_expiry_interval = fdp.ConsumeIntegralInRange<std::uint32_t>(0, 100);
        }
        if (fdp.ConsumeBool()) {
          c.props.maximum_packet_size = fdp.ConsumeIntegralInRange<std::uint32_t>(1, 64);
        }
        if (fdp.ConsumeBool()) c.props.request_problem_information = 0;
        if (fdp.ConsumeBool()) c.props.authentication_method = "x";
      }
      p = std::move(c);
      break;
    }
    case 1:
    case 2:
    case 3: {
      publish pub;
      pub.qos = static_cast<qos>(fdp.ConsumeIntegralInRange<int>(0, 2));
      pub.packet_id = pub.qos == qos::at_most_once ? 0 : fdp.ConsumeIntegralInRange<std::uint16_t>(1, 4);
      pub.dup = pub.qos != qos::at_most_once && fdp.ConsumeBool();
      pub.retain = fdp.ConsumeBool();
      pub.topic = topics[fdp.ConsumeIntegralInRange<int>(0, 5)];
      pub.payload = fdp.ConsumeRandomLengthString(16);
      if (v5) {
        if (fdp.ConsumeBool()) {
          pub.props.topic_alias = fdp.ConsumeIntegralInRange<std::uint16_t>(1, 5);
        }
        if (fdp.ConsumeBool()) pub.props.payload_format_indicator = 1;
        if (fdp.ConsumeBool()) pub.props.user_properties = {{"k", "v"}};
      } else if (pub.topic.empty()) {
        pub.topic = "t";
      }
      if (!v5 || !pub.props.topic_alias) {
        if (pub.topic.empty()) pub.topic = "t";
      }
      p = std::move(pub);
      break;
    }
    case 4:
      p = pubrel{fdp.ConsumeIntegralInRange<std::uint16_t>(1, 4), reason_code::success, {}};
      break;
    case 5: {
      subscribe sub;
      sub.packet_id = 1;
      sub.subscriptions.push_back(
          {fdp.ConsumeBool() ? "a/#" : "$share/g/a", qos::at_least_once, fdp.ConsumeBool(), false, 0});
      p = std::move(sub);
      break;
    }
    case 6:
      p = unsubscribe{2, {fdp.ConsumeBool() ? "a/+" : "a/#/b"}, {}};
      break;
    case 7: {
      disconnect d;
      if (v5) {
        d.reason_code =
            fdp.ConsumeBool() ? reason_code::normal_disconnection : reason_code::disconnect_with_will_message;
        if (fdp.ConsumeBool()) {
          d.props.session_expiry_interval = fdp.ConsumeIntegralInRange<std::uint32_t>(0, 10);
        }
      }
      p = std::move(d);
      break;
    }
    case 8:
      p = pingreq{};
      break;
    default:
      p = puback{fdp.ConsumeIntegralInRange<std::uint16_t>(1, 4), reason_code::success, {}};
      break;
  }
  std::string out;
  encode(p, v, out);
  return out;
}

void fuzz_machine(FuzzedDataProvider& fdp) {
  connection_options o;
  o.max_packet_size = fdp.ConsumeIntegralInRange<std::uint32_t>(16, 4096);
  o.receive_maximum = fdp.ConsumeIntegralInRange<std::uint16_t>(1, 8);
  o.topic_alias_maximum = fdp.ConsumeIntegralInRange<std::uint16_t>(0, 4);
  o.max_keep_alive = fdp.ConsumeIntegralInRange<std::uint16_t>(0, 100);
  o.max_topic_length = fdp.ConsumeIntegralInRange<std::uint32_t>(1, 64);
  o.max_topic_levels = fdp.ConsumeIntegralInRange<std::uint32_t>(1, 8);
  o.max_client_id_length = fdp.ConsumeIntegralInRange<std::uint32_t>(0, 32);
  o.max_user_properties = fdp.ConsumeIntegralInRange<std::uint32_t>(0, 4);
  o.deny_drops_silently = fdp.ConsumeBool();
  machine_run run(o, clock::time_point{} + std::chrono::hours(1));

  while (fdp.remaining_bytes() > 0 && !run.closed) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 9)) {
      case 8:
      case 9: {
        const std::string pkt = generated_packet(fdp, run.m.version());
        run.m.on_bytes(pkt, run.now);
        break;
      }
      case 0:
      case 1: {
        const std::string chunk = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<std::size_t>(1, 512));
        run.m.on_bytes(chunk, run.now);
        break;
      }
      case 2: {
        connect_decision d;
        d.session_present = fdp.ConsumeBool();
        if (fdp.ConsumeBool()) d.assigned_client_id = "assigned";
        if (fdp.ConsumeBool()) d.server_keep_alive = fdp.ConsumeIntegral<std::uint16_t>();
        if (fdp.ConsumeBool()) d.reason_string = fdp.ConsumeRandomLengthString(40);
        if (fdp.ConsumeBool()) d.qos2_awaiting_pubrel = {fdp.ConsumeIntegral<std::uint16_t>()};
        if (fdp.ConsumeBool()) {
          d.reason_code = static_cast<reason_code>(fdp.ConsumeIntegral<std::uint8_t>());
        }
        run.m.accept_connect(std::move(d));
        break;
      }
      case 3: {
        if (run.pending.empty() && run.qos0.empty()) break;
        auto& list = run.pending.empty() || (fdp.ConsumeBool() && !run.qos0.empty()) ? run.qos0 : run.pending;
        const std::size_t i = fdp.ConsumeIntegralInRange<std::size_t>(0, list.size() - 1);
        const publish_token t = list[i];
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
        publish_outcome out;
        switch (fdp.ConsumeIntegralInRange<int>(0, 9)) {
          case 0:
            out = publish_outcome::denied();
            break;
          case 1:
            out = publish_outcome::no_matching_route();
            break;
          case 2:
            out = publish_outcome::failed_permanent(static_cast<reason_code>(fdp.ConsumeIntegral<std::uint8_t>()));
            break;
          case 3:
            out = publish_outcome::failed_retryable();
            break;
          default:
            out = publish_outcome::stored();
            break;
        }
        if (fdp.ConsumeBool()) out.reason_string = fdp.ConsumeRandomLengthString(64);
        run.m.complete_publish(t, std::move(out));
        break;
      }
      case 4:
        run.now += std::chrono::milliseconds(fdp.ConsumeIntegralInRange<int>(0, 200'000));
        run.m.on_tick(run.now);
        break;
      case 5:
        run.m.server_disconnect(static_cast<reason_code>(fdp.ConsumeIntegral<std::uint8_t>()),
                                fdp.ConsumeBool() ? std::optional<std::string>("host:1883") : std::nullopt,
                                std::nullopt, fdp.ConsumeBool());
        break;
      case 6:
        run.m.on_socket_closed();
        break;
      case 7: {
        connect_decision d;
        d.reason_code = static_cast<reason_code>(fdp.ConsumeIntegral<std::uint8_t>() | 0x80);
        run.m.reject_connect(std::move(d));
        break;
      }
    }
    run.drain();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fuzz_decoder(bytes, std::nullopt);
  if (size > 0) {
    fuzz_decoder(bytes.substr(1), (data[0] & 1) ? protocol_version::v5 : protocol_version::v311);
  }
  FuzzedDataProvider fdp(data, size);
  fuzz_machine(fdp);
  return 0;
}
