// Who is calling: API keys (stored as hex SHA-256 in the config, presented as
// `Authorization: Bearer <key>` or `X-API-Key: <key>`) and JWT bearer tokens
// (HS256/RS256 via libjwt; keys from a JWKS file, an HS256 secret file or an
// RS256 PEM file). Pure: the current time is passed in.
#pragma once

#include "config/config.h"
#include "protocols/http/http_message.h"

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace wharf::http {

struct identity {
  enum class kind { anonymous, api_key, jwt } how = kind::anonymous;
  std::string name;  // API key name or the token's `sub`
  bool all_types = false;
  std::vector<std::string> types;    // when !all_types
  std::vector<std::string> origins;  // empty: any origin (or none)
  double rate_per_second = 0;        // 0: unlimited
  double burst = 0;

  bool may_write(std::string_view type) const noexcept;
};

struct auth_result {
  enum class status { no_credentials, ok, invalid } outcome = status::no_credentials;
  identity who;
  std::string message;  // why the credentials were refused (for the 401 body)
};

// One verification key for JWTs.
struct jwt_key {
  std::string kid;        // empty: matches any kid
  std::string algorithm;  // "HS256" or "RS256"
  std::string material;   // HS256: the secret bytes; RS256: PEM public key
};

// Parses a JWKS document ({"keys":[{"kty":"oct","k":..}|{"kty":"RSA","n":..,"e":..}]}).
// Throws std::runtime_error naming the problem (start-up only).
std::vector<jwt_key> parse_jwks(std::string_view json);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

class authenticator {
 public:
  // Reads the JWT key files named in cfg.jwt. Throws std::runtime_error with a
  // message naming the key and the fix when a file is missing or malformed.
  explicit authenticator(const config::http_config& cfg);
  // For tests: explicit JWT keys instead of files.
  authenticator(const config::http_config& cfg, std::vector<jwt_key> keys);

  auth_result authenticate(const std::vector<field>& headers, std::chrono::system_clock::time_point now) const;

 private:
  auth_result verify_api_key(std::string_view key) const;
  auth_result verify_jwt(const std::string& token, std::chrono::system_clock::time_point now) const;

  config::http_config cfg_;
  std::unordered_map<std::string, std::size_t> key_by_hash_;  // sha256 hex -> index in cfg_.api_keys
  std::vector<jwt_key> jwt_keys_;
};

}  // namespace wharf::http
