#include "protocols/mqtt/server/record_builder.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

namespace wharf::mqtt {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

std::string to_hex(const unsigned char* p, std::size_t n) {
  std::string s(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = hex_digits[p[i] >> 4];
    s[2 * i + 1] = hex_digits[p[i] & 15];
  }
  return s;
}

}  // namespace

id_source::id_source(std::string_view node_id) {
  unsigned char nonce[6];
  if (RAND_bytes(nonce, sizeof nonce) != 1) {
    auto t = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    for (unsigned char& b : nonce) b = static_cast<unsigned char>(t >>= 8);
  }
  prefix_ = std::string(node_id) + "-" + to_hex(nonce, sizeof nonce) + "-";
}

std::string id_source::next() {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, ++counter_).ptr;
  std::string id;
  id.reserve(prefix_.size() + static_cast<std::size_t>(end - digits));
  id.append(prefix_).append(digits, end);
  return id;
}

std::string rfc3339_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  // "YYYY-MM-DDTHH:MM:SS" is formatted once per second and thread; only the
  // milliseconds are written per call.
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[32];
  thread_local std::size_t cached_len = 0;
  if (secs != cached_secs) {
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    int n = std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                          tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_len = n > 0 ? std::min(static_cast<std::size_t>(n), sizeof cached - 1) : 0;
    cached_secs = secs;
  }
  auto frac = static_cast<unsigned>(ms % 1000);
  const char tail[5] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                        static_cast<char>('0' + frac % 10), 'Z'};
  std::string out;
  out.reserve(cached_len + sizeof tail);
  out.append(cached, cached_len).append(tail, sizeof tail);
  return out;
}

std::string dedup_key(std::string_view client_id, std::uint16_t packet_id, std::string_view payload) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // Fetched once: OpenSSL 3 would otherwise look the algorithm up per call.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> holder(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_MD_CTX* ctx = holder.get();
  EVP_DigestInit_ex(ctx, sha256, nullptr);
  // Length-prefix the client id so ("ab", 1) and ("a", ...) cannot collide.
  std::uint32_t n = static_cast<std::uint32_t>(client_id.size());
  unsigned char prefix[6] = {static_cast<unsigned char>(n >> 24),        static_cast<unsigned char>(n >> 16),
                             static_cast<unsigned char>(n >> 8),         static_cast<unsigned char>(n),
                             static_cast<unsigned char>(packet_id >> 8), static_cast<unsigned char>(packet_id)};
  EVP_DigestUpdate(ctx, prefix, 4);
  EVP_DigestUpdate(ctx, client_id.data(), client_id.size());
  EVP_DigestUpdate(ctx, prefix + 4, 2);
  EVP_DigestUpdate(ctx, payload.data(), payload.size());
  EVP_DigestFinal_ex(ctx, digest, &len);
  return to_hex(digest, 16);  // 128 bits is plenty for a dedup window
}

sinks::record build_record(std::string kafka_topic, std::string key, std::string topic, std::string payload, qos q,
                           bool dup, std::uint16_t packet_id, const properties& props, const publish_context& ctx,
                           id_source& ids, bool will) {
  sinks::record r;
  r.topic = std::move(kafka_topic);
  r.key = std::move(key);
  auto& h = r.headers;
  h.reserve(15 + props.user_properties.size());
  h.push_back({"ce_specversion", "1.0"});
  h.push_back({"ce_id", ids.next()});
  std::string source;
  source.reserve(5 + ctx.client_id.size());
  source.append("mqtt/").append(ctx.client_id);
  h.push_back({"ce_source", std::move(source)});
  h.push_back({"ce_type", std::move(topic)});
  h.push_back({"ce_time", rfc3339_now()});
  if (props.content_type) h.push_back({"content-type", *props.content_type});
  h.push_back({"ce_clientid", std::string(ctx.client_id)});
  h.push_back({"ce_packetid", std::to_string(packet_id)});
  h.push_back({"ce_mqttdup", dup ? "true" : "false"});
  h.push_back({"ce_mqttqos", std::to_string(static_cast<int>(q))});
  h.push_back({"ce_sessionepoch", std::to_string(ctx.session_epoch)});
  h.push_back({"ce_node", std::string(ctx.node_id)});
  if (!ctx.remote_addr.empty()) h.push_back({"ce_remoteaddr", std::string(ctx.remote_addr)});
  h.push_back({"ce_dedupkey", dedup_key(ctx.client_id, packet_id, payload)});
  if (will) h.push_back({"ce_mqttwill", "true"});
  if (props.payload_format_indicator)
    h.push_back({"ce_mqttpayloadformat", std::to_string(*props.payload_format_indicator)});
  if (props.response_topic) h.push_back({"ce_mqttresponsetopic", *props.response_topic});
  if (props.correlation_data) h.push_back({"ce_mqttcorrelationdata", *props.correlation_data});
  for (const auto& [name, value] : props.user_properties) {
    if (name.rfind("ce_", 0) == 0) continue;  // reserved for Wharf
    h.push_back({name, value});
  }
  r.value = std::move(payload);
  return r;
}

}  // namespace wharf::mqtt
