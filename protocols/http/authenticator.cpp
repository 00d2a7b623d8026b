#include "protocols/http/authenticator.h"

#include <boost/json.hpp>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace wharf::http {

bool identity::may_write(std::string_view type) const noexcept {
  if (all_types) return true;
  for (const auto& t : types)
    if (t == type || t == "*") return true;
  return false;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{len} * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 0xF]);
  }
  return out;
}

namespace {

std::string read_file(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(key) + ": cannot read file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return false;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return true;
}

std::string rsa_pem_from_jwk(const std::string& n_b64, const std::string& e_b64) {
  std::string n, e;
  if (!base64url_decode(n_b64, n) || !base64url_decode(e_b64, e) || n.empty() || e.empty())
    throw std::runtime_error("http.jwt.jwks_file: an RSA key has an invalid 'n' or 'e'");
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* pkey = nullptr;
  std::string pem;
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) > 0 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (PEM_write_bio_PUBKEY(bio, pkey) > 0) {
      char* data = nullptr;
      long len = BIO_get_mem_data(bio, &data);
      pem.assign(data, static_cast<std::size_t>(len));
    }
    BIO_free(bio);
  }
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (pem.empty()) throw std::runtime_error("http.jwt.jwks_file: an RSA key could not be loaded");
  return pem;
}

struct jwt_deleter {
  void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
using jwt_ptr = std::unique_ptr<jwt_t, jwt_deleter>;

struct free_deleter {
  void operator()(char* p) const noexcept { std::free(p); }
};

// A claim as JSON (libjwt hands back strings, numbers and arrays alike).
boost::json::value claim_json(jwt_t* j, const char* name) {
  std::unique_ptr<char, free_deleter> raw(jwt_get_grants_json(j, name));
  if (!raw) return nullptr;
  boost::system::error_code ec;
  auto v = boost::json::parse(raw.get(), ec);
  if (ec) return nullptr;
  return v;
}

}  // namespace

std::vector<jwt_key> parse_jwks(std::string_view json) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(json, ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("keys") || !doc.at("keys").is_array())
    throw std::runtime_error("http.jwt.jwks_file: expected a JSON object {\"keys\": [...]}");
  std::vector<jwt_key> keys;
  for (const auto& k : doc.at("keys").as_array()) {
    if (!k.is_object()) continue;
    const auto& o = k.as_object();
    auto str = [&](const char* f) -> std::string {
      if (auto* p = o.if_contains(f); p != nullptr && p->is_string()) return std::string(p->as_string());
      return {};
    };
    jwt_key key;
    key.kid = str("kid");
    const std::string kty = str("kty");
    const std::string alg = str("alg");
    if (kty == "oct") {
      if (!alg.empty() && alg != "HS256") continue;
      key.algorithm = "HS256";
      if (!base64url_decode(str("k"), key.material) || key.material.empty())
        throw std::runtime_error("http.jwt.jwks_file: an 'oct' key has an invalid 'k'");
    } else if (kty == "RSA") {
      if (!alg.empty() && alg != "RS256") continue;
      key.algorithm = "RS256";
      key.material = rsa_pem_from_jwk(str("n"), str("e"));
    } else {
      continue;  // EC and others: not supported, ignored
    }
    keys.push_back(std::move(key));
  }
  if (keys.empty()) throw std::runtime_error("http.jwt.jwks_file: no HS256 ('oct') or RS256 ('RSA') key found");
  return keys;
}

static std::vector<jwt_key> load_jwt_keys(const config::jwt_config& jwt) {
  std::vector<jwt_key> keys;
  if (!jwt.enabled) return keys;
  if (!jwt.jwks_file.empty()) keys = parse_jwks(read_file(jwt.jwks_file, "http.jwt.jwks_file"));
  if (!jwt.secret_file.empty()) {
    std::string secret = read_file(jwt.secret_file, "http.jwt.secret_file");
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    keys.push_back({"", "HS256", std::move(secret)});
  }
  if (!jwt.public_key_file.empty())
    keys.push_back({"", "RS256", read_file(jwt.public_key_file, "http.jwt.public_key_file")});
  if (keys.empty())
    throw std::runtime_error(
        "http.jwt: enabled but no key; set jwks_file, secret_file (HS256) or public_key_file (RS256)");
  return keys;
}

authenticator::authenticator(const config::http_config& cfg) : authenticator(cfg, load_jwt_keys(cfg.jwt)) {}

authenticator::authenticator(const config::http_config& cfg, std::vector<jwt_key> keys)
    : cfg_(cfg), jwt_keys_(std::move(keys)) {
  for (std::size_t i = 0; i < cfg_.api_keys.size(); ++i) key_by_hash_.emplace(to_lower(cfg_.api_keys[i].sha256), i);
}

auth_result authenticator::authenticate(const std::vector<field>& headers,
                                        std::chrono::system_clock::time_point now) const {
  if (auto k = find_header(headers, "x-api-key")) return verify_api_key(trim(*k));
  auto authz = find_header(headers, "authorization");
  if (!authz) return {};
  std::string_view v = trim(*authz);
  if (v.size() < 7 || !iequals(v.substr(0, 7), "bearer ")) {
    auth_result r;
    r.outcome = auth_result::status::invalid;
    r.message = "The Authorization header must be 'Bearer <API key or token>'.";
    return r;
  }
  std::string_view cred = trim(v.substr(7));
  // A JWT is three base64url parts separated by dots; API keys have no dots.
  if (cfg_.jwt.enabled && std::count(cred.begin(), cred.end(), '.') == 2) return verify_jwt(std::string(cred), now);
  return verify_api_key(cred);
}

auth_result authenticator::verify_api_key(std::string_view key) const {
  auth_result r;
  auto it = key.empty() ? key_by_hash_.end() : key_by_hash_.find(sha256_hex(key));
  if (it == key_by_hash_.end()) {
    r.outcome = auth_result::status::invalid;
    r.message = "The API key is not valid. Check the key, or ask the operator for one.";
    return r;
  }
  const auto& k = cfg_.api_keys[it->second];
  r.outcome = auth_result::status::ok;
  r.who.how = identity::kind::api_key;
  r.who.name = k.name;
  r.who.all_types = k.types.empty();
  r.who.types = k.types;
  r.who.origins = k.origins;
  r.who.rate_per_second = k.rate_per_second;
  r.who.burst = k.burst;
  return r;
}

auth_result authenticator::verify_jwt(const std::string& token, std::chrono::system_clock::time_point now) const {
  auth_result r;
  r.outcome = auth_result::status::invalid;
  if (token.size() > 8192) {
    r.message = "The bearer token is longer than 8192 bytes.";
    return r;
  }
  jwt_t* raw = nullptr;
  // First pass without a key only reads the header to pick the key (alg, kid).
  if (jwt_decode(&raw, token.c_str(), nullptr, 0) != 0 || raw == nullptr) {
    r.message = "The bearer token is not a well-formed JWT.";
    return r;
  }
  jwt_ptr unverified(raw);
  const char* alg_c = jwt_get_header(unverified.get(), "alg");
  const char* kid_c = jwt_get_header(unverified.get(), "kid");
  const std::string alg = alg_c != nullptr ? alg_c : "";
  const std::string kid = kid_c != nullptr ? kid_c : "";
  if (alg != "HS256" && alg != "RS256") {
    r.message = "The token is signed with '" + alg + "'; only HS256 and RS256 are accepted.";
    return r;
  }
  jwt_ptr verified;
  for (const auto& k : jwt_keys_) {
    // The key decides the algorithm: an RS256 public key is never used as an
    // HMAC secret (algorithm confusion).
    if (k.algorithm != alg) continue;
    if (!kid.empty() && !k.kid.empty() && k.kid != kid) continue;
    jwt_t* v = nullptr;
    if (jwt_decode(&v, token.c_str(), reinterpret_cast<const unsigned char*>(k.material.data()),
                   static_cast<int>(k.material.size())) == 0 &&
        v != nullptr) {
      verified.reset(v);
      break;
    }
  }
  if (!verified) {
    r.message = "The token's signature does not verify with any configured key.";
    return r;
  }
  jwt_t* j = verified.get();
  const long now_s =
      static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  errno = 0;
  const long exp = jwt_get_grant_int(j, "exp");
  if (errno == ENOENT || exp == 0) {
    r.message = "The token has no 'exp' claim; tokens must expire.";
    return r;
  }
  if (now_s >= exp) {
    r.message = "The token has expired; get a new one.";
    return r;
  }
  errno = 0;
  const long nbf = jwt_get_grant_int(j, "nbf");
  if (errno != ENOENT && nbf != 0 && now_s < nbf) {
    r.message = "The token is not valid yet ('nbf' is in the future).";
    return r;
  }
  if (!cfg_.jwt.issuer.empty()) {
    const char* iss = jwt_get_grant(j, "iss");
    if (iss == nullptr || cfg_.jwt.issuer != iss) {
      r.message = "The token's issuer is not accepted (expected '" + cfg_.jwt.issuer + "').";
      return r;
    }
  }
  if (!cfg_.jwt.audience.empty()) {
    auto aud = claim_json(j, "aud");
    bool ok = aud.is_string() && aud.as_string() == cfg_.jwt.audience;
    if (aud.is_array())
      for (const auto& a : aud.as_array()) ok = ok || (a.is_string() && a.as_string() == cfg_.jwt.audience);
    if (!ok) {
      r.message = "The token's audience does not include '" + cfg_.jwt.audience + "'.";
      return r;
    }
  }
  r.outcome = auth_result::status::ok;
  r.who.how = identity::kind::jwt;
  const char* sub = jwt_get_grant(j, "sub");
  r.who.name = sub != nullptr ? sub : "";
  // The types claim: an array of type names or a space-separated string; "*" = all.
  auto types = claim_json(j, cfg_.jwt.types_claim.c_str());
  auto add = [&](std::string_view t) {
    if (t == "*")
      r.who.all_types = true;
    else if (!t.empty())
      r.who.types.emplace_back(t);
  };
  if (types.is_array()) {
    for (const auto& t : types.as_array())
      if (t.is_string()) add(t.as_string());
  } else if (types.is_string()) {
    std::string_view s = types.as_string();
    while (!s.empty()) {
      auto sp = s.find(' ');
      add(s.substr(0, sp));
      if (sp == std::string_view::npos) break;
      s.remove_prefix(sp + 1);
    }
  }
  return r;
}

}  // namespace wharf::http
