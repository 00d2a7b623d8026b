#include "protocols/mqtt/server/authenticator.h"

#include "protocols/mqtt/topic.h"

#include <boost/json/parse.hpp>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace wharf::mqtt {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string b64(const unsigned char* p, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::optional<std::string> unb64(std::string_view s) {
  std::string out(3 * s.size() / 4 + 3, '\0');
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (len < 0) return std::nullopt;
  std::size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(len) - pad);
  return out;
}

std::string substitute(std::string_view filter, std::string_view username, std::string_view client_id) {
  std::string out;
  for (std::size_t i = 0; i < filter.size(); ++i) {
    if (filter[i] == '%' && i + 1 < filter.size() && (filter[i + 1] == 'u' || filter[i + 1] == 'c')) {
      out += filter[i + 1] == 'u' ? username : client_id;
      ++i;
    } else {
      out += filter[i];
    }
  }
  return out;
}

bool looks_like_jwt(std::string_view s) {
  auto first = s.find('.');
  return first != std::string_view::npos && s.find('.', first + 1) != std::string_view::npos &&
         s.find_first_of(" \t\n") == std::string_view::npos;
}

}  // namespace

bool permissions::may_publish(std::string_view topic) const {
  if (jwt_topics) {
    bool any = false;
    for (const auto& f : *jwt_topics) any = any || matches(f, topic);
    if (!any) return false;
  }
  if (!acl_configured) return true;
  for (const auto& r : rules)
    if (r.publish && matches(r.filter, topic)) return r.allow;
  return false;
}

struct authenticator::jwt_verifier {
  std::string key;
  jwt_alg_t alg = JWT_ALG_HS256;
  std::string issuer, audience, topics_claim;

  // Verified claims, or the reason it was refused.
  bool verify(std::string_view token, std::string& subject, std::optional<std::vector<std::string>>& topics,
              std::string& why) const {
    jwt_t* jwt = nullptr;
    std::string t(token);
    if (jwt_decode(&jwt, t.c_str(), reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())) !=
            0 ||
        !jwt) {
      why = "JWT signature or format invalid";
      return false;
    }
    std::unique_ptr<jwt_t, void (*)(jwt_t*)> guard(jwt, jwt_free);
    if (jwt_get_alg(jwt) != alg) {
      why = "JWT algorithm not accepted";
      return false;
    }
    long now = static_cast<long>(std::time(nullptr));
    long exp = jwt_get_grant_int(jwt, "exp");
    if (exp > 0 && exp <= now) {
      why = "JWT expired";
      return false;
    }
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (nbf > 0 && nbf > now + 60) {
      why = "JWT not yet valid";
      return false;
    }
    if (!issuer.empty()) {
      const char* iss = jwt_get_grant(jwt, "iss");
      if (!iss || issuer != iss) {
        why = "JWT issuer not accepted";
        return false;
      }
    }
    if (!audience.empty()) {
      const char* aud = jwt_get_grant(jwt, "aud");
      bool ok = aud && audience == aud;
      if (!ok) {
        if (char* auds = jwt_get_grants_json(jwt, "aud")) {
          boost::system::error_code ec;
          auto v = boost::json::parse(auds, ec);
          std::free(auds);
          if (!ec && v.is_array())
            for (const auto& a : v.as_array()) ok = ok || (a.is_string() && a.as_string() == audience);
        }
      }
      if (!ok) {
        why = "JWT audience not accepted";
        return false;
      }
    }
    if (const char* sub = jwt_get_grant(jwt, "sub")) subject = sub;
    if (char* json = jwt_get_grants_json(jwt, topics_claim.c_str())) {
      boost::system::error_code ec;
      auto v = boost::json::parse(json, ec);
      std::free(json);
      std::vector<std::string> filters;
      if (!ec && v.is_array())
        for (const auto& f : v.as_array())
          if (f.is_string()) filters.emplace_back(f.as_string());
      topics = std::move(filters);
    } else if (const char* one = jwt_get_grant(jwt, topics_claim.c_str())) {
      topics = std::vector<std::string>{one};
    }
    return true;
  }
};

authenticator::authenticator(const config::mqtt_config& cfg) : cfg_(cfg) {
  if (!cfg.password_file.empty()) {
    std::istringstream in(read_file(cfg.password_file));
    int lineno = 0;
    for (std::string line; std::getline(in, line);) {
      ++lineno;
      if (line.empty() || line[0] == '#') continue;
      auto colon = line.find(':');
      if (colon == std::string::npos || line.compare(colon + 1, 15, "$pbkdf2-sha256$") != 0)
        throw std::runtime_error(cfg.password_file + ":" + std::to_string(lineno) +
                                 ": expected USER:$pbkdf2-sha256$... (make it with `wharf passwd FILE USER`)");
      passwords_[line.substr(0, colon)] = line.substr(colon + 1);
    }
  }
  if (cfg.jwt.enabled) {
    jwt_ = std::make_unique<jwt_verifier>();
    jwt_->alg = cfg.jwt.algorithm == "RS256" ? JWT_ALG_RS256 : JWT_ALG_HS256;
    jwt_->key = read_file(cfg.jwt.algorithm == "RS256" ? cfg.jwt.public_key_file : cfg.jwt.secret_file);
    if (jwt_->alg == JWT_ALG_HS256)
      while (!jwt_->key.empty() && (jwt_->key.back() == '\n' || jwt_->key.back() == '\r')) jwt_->key.pop_back();
    jwt_->issuer = cfg.jwt.issuer;
    jwt_->audience = cfg.jwt.audience;
    jwt_->topics_claim = cfg.jwt.topics_claim;
  }
}

authenticator::~authenticator() = default;

permissions authenticator::compile(std::string_view username, std::string_view client_id) const {
  permissions p;
  p.acl_configured = !cfg_.acl.empty();
  for (const auto& r : cfg_.acl) {
    if (r.user != "*" && r.user != username) continue;
    if (r.action == "subscribe") continue;
    p.rules.push_back({substitute(r.filter, username, client_id), true, r.allow});
  }
  return p;
}

auth_result authenticator::authenticate(const credentials& c) const {
  auth_result r;
  auto refuse = [&](reason_code code, std::string why) {
    r.ok = false;
    r.code = code;
    r.why = std::move(why);
    return r;
  };
  if (jwt_ && c.password && looks_like_jwt(*c.password)) {
    std::string subject, why;
    std::optional<std::vector<std::string>> topics;
    if (!jwt_->verify(*c.password, subject, topics, why)) return refuse(reason_code::bad_user_name_or_password, why);
    r.username = !subject.empty() ? subject : std::string(c.username.value_or(""));
    r.method = "jwt";
    r.perms = compile(r.username, c.client_id);
    r.perms.jwt_topics = std::move(topics);
    r.ok = true;
    return r;
  }
  if (cfg_.tls.cn_as_username && c.cert_cn && !c.password) {
    r.username = *c.cert_cn;
    r.method = "certificate";
    r.perms = compile(r.username, c.client_id);
    r.ok = true;
    return r;
  }
  if (c.username && c.password && !passwords_.empty()) {
    auto it = passwords_.find(*c.username);
    if (it == passwords_.end() || !verify_password(*c.password, it->second))
      return refuse(reason_code::bad_user_name_or_password, "unknown user or wrong password");
    r.username = std::string(*c.username);
    r.method = "password";
    r.perms = compile(r.username, c.client_id);
    r.ok = true;
    return r;
  }
  if (c.username || c.password) {
    if (cfg_.allow_anonymous && !c.password && c.username) {
      // Anonymous access with a self-declared name, as Mosquitto allows.
      r.username = std::string(*c.username);
      r.method = "anonymous";
      r.perms = compile(r.username, c.client_id);
      r.ok = true;
      return r;
    }
    return refuse(reason_code::bad_user_name_or_password, "credentials given but no method accepts them");
  }
  if (!cfg_.allow_anonymous) return refuse(reason_code::not_authorized, "anonymous access is off");
  r.method = "anonymous";
  r.perms = compile("", c.client_id);
  r.ok = true;
  return r;
}

std::string hash_password(std::string_view password, int iterations) {
  unsigned char salt[16];
  RAND_bytes(salt, sizeof salt);
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt, sizeof salt, iterations, EVP_sha256(),
                    sizeof out, out);
  return "$pbkdf2-sha256$" + std::to_string(iterations) + "$" + b64(salt, sizeof salt) + "$" + b64(out, sizeof out);
}

bool verify_password(std::string_view password, std::string_view encoded) {
  // $pbkdf2-sha256$ITER$SALT$HASH
  constexpr std::string_view prefix = "$pbkdf2-sha256$";
  if (encoded.substr(0, prefix.size()) != prefix) return false;
  encoded.remove_prefix(prefix.size());
  auto d1 = encoded.find('$');
  if (d1 == std::string_view::npos) return false;
  auto d2 = encoded.find('$', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  int iterations = 0;
  try {
    iterations = std::stoi(std::string(encoded.substr(0, d1)));
  } catch (...) {
    return false;
  }
  if (iterations < 1 || iterations > 10'000'000) return false;
  auto salt = unb64(encoded.substr(d1 + 1, d2 - d1 - 1));
  auto want = unb64(encoded.substr(d2 + 1));
  if (!salt || !want || want->empty() || want->size() > 64) return false;
  unsigned char got[64];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt->data()), static_cast<int>(salt->size()), iterations,
                    EVP_sha256(), static_cast<int>(want->size()), got);
  return CRYPTO_memcmp(got, want->data(), want->size()) == 0;
}

int run_passwd_command(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: wharf passwd FILE USER   (reads the password from standard input)\n");
    return 2;
  }
  std::string file = argv[2], user = argv[3];
  if (user.empty() || user.find(':') != std::string::npos) {
    std::fprintf(stderr, "wharf passwd: the user name must be non-empty and contain no ':'\n");
    return 2;
  }
  std::string password;
  if (!std::getline(std::cin, password) || password.empty()) {
    std::fprintf(stderr, "wharf passwd: give the password on standard input, e.g. `echo S3cret | wharf passwd %s %s`\n",
                 file.c_str(), user.c_str());
    return 2;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  std::vector<std::string> lines;
  {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(user + ":", 0) != 0) lines.push_back(line);
  }
  lines.push_back(user + ":" + hash_password(password));
  std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
    if (!out) {
      std::fprintf(stderr, "wharf passwd: cannot write %s\n", tmp.c_str());
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    std::fprintf(stderr, "wharf passwd: cannot replace %s\n", file.c_str());
    return 1;
  }
  std::printf("%s: set password for %s\n", file.c_str(), user.c_str());
  return 0;
}

}  // namespace wharf::mqtt
