// Who may connect and what they may publish.
//
// Methods, tried in this order for a CONNECT:
//  1. JWT: `mqtt.jwt.enabled` and the password field holds a JWT (three
//     dot-separated parts): signature (HS256/RS256), exp/nbf, iss/aud when
//     configured. The `sub` claim (else the username) becomes the username;
//     the topics claim lists the topic filters the token may publish to.
//  2. Client certificate CN as username (`mqtt.tls.cn_as_username`), when a
//     verified certificate was presented and no password was given.
//  3. Password file (`mqtt.password_file`, lines `user:$pbkdf2-sha256$ITER$SALT$HASH`,
//     made by `wharf passwd FILE USER`).
//  4. Anonymous: no username, and `mqtt.allow_anonymous`.
// Denied: MQTT 5 0x86 (bad user name or password) when credentials were
// given and are wrong, 0x87 (not authorized) when none were acceptable;
// 3.1.1 0x04 / 0x05 correspondingly.
//
// ACL (`mqtt.acl`): rules checked in order, first match decides; %u and %c
// are replaced by the connection's username and client id. No rules: every
// topic may be published. Rules present and none matches: denied.
#pragma once

#include "config/config.h"
#include "protocols/mqtt/reason_codes.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::mqtt {

struct credentials {
  std::string_view client_id;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;
  std::optional<std::string> cert_cn;  // verified client certificate's CN
};

// What a connection may do, compiled once at CONNECT.
class permissions {
 public:
  bool may_publish(std::string_view topic) const;

  struct rule {
    std::string filter;
    bool publish = true;
    bool allow = true;
  };
  std::vector<rule> rules;  // from the ACL, substituted
  bool acl_configured = false;
  std::optional<std::vector<std::string>> jwt_topics;  // the token's topic filters
};

struct auth_result {
  bool ok = false;
  reason_code code = reason_code::success;  // 0x86 or 0x87 when refused
  std::string username;                     // as authenticated ("" anonymous)
  std::string method;                       // jwt|certificate|password|anonymous
  std::string why;                          // for the log when refused
  permissions perms;
};

class authenticator {
 public:
  // Reads the password file and keys; throws std::runtime_error with a
  // message naming the file when they cannot be read (start-up only).
  explicit authenticator(const config::mqtt_config& cfg);
  ~authenticator();

  auth_result authenticate(const credentials& c) const;

 private:
  struct jwt_verifier;
  permissions compile(std::string_view username, std::string_view client_id) const;
  const config::mqtt_config& cfg_;
  std::map<std::string, std::string, std::less<>> passwords_;  // user -> encoded hash
  std::unique_ptr<jwt_verifier> jwt_;
};

// "$pbkdf2-sha256$ITER$SALT_B64$HASH_B64" for `password` with a random salt.
std::string hash_password(std::string_view password, int iterations = 100000);
bool verify_password(std::string_view password, std::string_view encoded);

// `wharf passwd FILE USER`: reads the password from standard input (one
// line) and adds or replaces USER in FILE. Returns the exit status.
int run_passwd_command(int argc, char** argv);

}  // namespace wharf::mqtt
