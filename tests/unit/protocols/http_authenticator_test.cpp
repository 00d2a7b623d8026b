#include "protocols/http/authenticator.h"
#include "tests/unit/protocols/http_test_support.h"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <gtest/gtest.h>

namespace wharf::http {
namespace {

using namespace std::chrono;

const auto k_now = system_clock::time_point(seconds(1714564800));

std::string b64url(const std::string& bin) {
  static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (unsigned char c : bin) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(tbl[(buf >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(tbl[(buf << (6 - bits)) & 0x3F]);
  return out;
}

std::string bn_bytes(const BIGNUM* bn) {
  std::string s(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(s.data()));
  return s;
}

// A fresh RSA key pair: private PEM for signing, JWKS entry for verifying.
struct rsa_keys {
  std::string private_pem;
  std::string jwk;  // {"kty":"RSA",...}
};

rsa_keys make_rsa(const std::string& kid) {
  EVP_PKEY* pkey = EVP_RSA_gen(2048);
  EXPECT_NE(pkey, nullptr);
  rsa_keys k;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  k.private_pem.assign(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e);
  k.jwk = R"({"kty":"RSA","alg":"RS256","kid":")" + kid + R"(","n":")" + b64url(bn_bytes(n)) + R"(","e":")" +
          b64url(bn_bytes(e)) + R"("})";
  BN_free(n);
  BN_free(e);
  EVP_PKEY_free(pkey);
  return k;
}

std::string sign(jwt_alg_t alg, const std::string& key, const std::string& claims_json, const std::string& kid = "") {
  jwt_t* j = nullptr;
  jwt_new(&j);
  jwt_add_grants_json(j, claims_json.c_str());
  if (!kid.empty()) jwt_add_header(j, "kid", kid.c_str());
  jwt_set_alg(j, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size()));
  char* tok = jwt_encode_str(j);
  std::string out = tok != nullptr ? tok : "";
  std::free(tok);
  jwt_free(j);
  return out;
}

std::string claims(const std::string& extra = R"("types":["orders"])", long exp = 1714564800 + 600) {
  return R"({"sub":"svc-1","iss":"https://issuer.example","aud":"wharf","exp":)" + std::to_string(exp) + "," + extra +
         "}";
}

config::http_config jwt_config() {
  config::http_config cfg;
  cfg.jwt.enabled = true;
  cfg.jwt.issuer = "https://issuer.example";
  cfg.jwt.audience = "wharf";
  return cfg;
}

std::vector<field> bearer(const std::string& t) { return {{"Authorization", "Bearer " + t}}; }

const std::string k_secret = "an-hs256-secret-of-enough-length!";

class HttpAuthenticator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { rsa_ = new rsa_keys(make_rsa("rsa-1")); }
  static void TearDownTestSuite() { delete rsa_; }

  authenticator make() {
    const std::string jwks =
        R"({"keys":[)" + rsa_->jwk + R"(,{"kty":"oct","kid":"hs-1","k":")" + b64url(k_secret) + R"("}]})";
    return authenticator(jwt_config(), parse_jwks(jwks));
  }
  static rsa_keys* rsa_;
};
rsa_keys* HttpAuthenticator::rsa_ = nullptr;

TEST_F(HttpAuthenticator, AcceptsHs256TokenFromJwksAndMapsTypesClaim) {
  auto a = make().authenticate(bearer(sign(JWT_ALG_HS256, k_secret, claims(), "hs-1")), k_now);
  ASSERT_EQ(a.outcome, auth_result::status::ok) << a.message;
  EXPECT_EQ(a.who.how, identity::kind::jwt);
  EXPECT_EQ(a.who.name, "svc-1");
  EXPECT_TRUE(a.who.may_write("orders"));
  EXPECT_FALSE(a.who.may_write("events"));
}

TEST_F(HttpAuthenticator, AcceptsRs256TokenVerifiedWithJwksRsaKey) {
  auto a = make().authenticate(
      bearer(sign(JWT_ALG_RS256, rsa_->private_pem, claims(R"("types":"orders events")"), "rsa-1")), k_now);
  ASSERT_EQ(a.outcome, auth_result::status::ok) << a.message;
  EXPECT_TRUE(a.who.may_write("events"));
}

TEST_F(HttpAuthenticator, RefusesTokenSignedWithAnotherKey) {
  auto other = make_rsa("rsa-1");
  auto a = make().authenticate(bearer(sign(JWT_ALG_RS256, other.private_pem, claims(), "rsa-1")), k_now);
  EXPECT_EQ(a.outcome, auth_result::status::invalid);
  auto b = make().authenticate(bearer(sign(JWT_ALG_HS256, "wrong-secret-wrong-secret-wrong!!", claims())), k_now);
  EXPECT_EQ(b.outcome, auth_result::status::invalid);
}

TEST_F(HttpAuthenticator, RefusesHs256TokenUsingTheRsaPublicKeyAsSecret) {
  // Algorithm confusion: the attacker knows the public key PEM.
  const auto jwks = parse_jwks(R"({"keys":[)" + rsa_->jwk + "]}");
  authenticator auth(jwt_config(), jwks);
  auto a = auth.authenticate(bearer(sign(JWT_ALG_HS256, jwks[0].material, claims(), "rsa-1")), k_now);
  EXPECT_EQ(a.outcome, auth_result::status::invalid);
}

TEST_F(HttpAuthenticator, RefusesExpiredTokensAndTokensWithoutExp) {
  auto a = make().authenticate(bearer(sign(JWT_ALG_HS256, k_secret, claims(R"("types":["orders"])", 1714564800 - 1))),
                               k_now);
  EXPECT_EQ(a.outcome, auth_result::status::invalid);
  EXPECT_NE(a.message.find("expired"), std::string::npos);
  auto b = make().authenticate(
      bearer(sign(JWT_ALG_HS256, k_secret, R"({"sub":"x","iss":"https://issuer.example","aud":"wharf"})")), k_now);
  EXPECT_EQ(b.outcome, auth_result::status::invalid);
}

TEST_F(HttpAuthenticator, ChecksIssuerAndAudience) {
  auto a = make().authenticate(
      bearer(sign(JWT_ALG_HS256, k_secret, R"({"iss":"https://other","aud":"wharf","exp":1714565000})")), k_now);
  EXPECT_EQ(a.outcome, auth_result::status::invalid);
  auto b = make().authenticate(
      bearer(sign(JWT_ALG_HS256, k_secret,
                  R"({"iss":"https://issuer.example","aud":["x","wharf"],"exp":1714565000,"types":["*"]})")),
      k_now);
  EXPECT_EQ(b.outcome, auth_result::status::ok) << b.message;
  EXPECT_TRUE(b.who.may_write("anything"));
}

TEST_F(HttpAuthenticator, RefusesAlgNone) {
  // header {"alg":"none","typ":"JWT"} . {"exp":9999999999} . (no signature)
  const std::string token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTl9.";
  auto a = make().authenticate(bearer(token), k_now);
  EXPECT_EQ(a.outcome, auth_result::status::invalid);
}

TEST(HttpApiKeys, MatchesOnlyTheSha256OfTheKey) {
  config::http_config cfg;
  config::http_api_key k;
  k.name = "k1";
  k.sha256 = sha256_hex("the-key");
  cfg.api_keys.push_back(k);
  authenticator auth(cfg, {});
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(auth.authenticate({{"X-API-Key", "the-key"}}, k_now).outcome, auth_result::status::ok);
  EXPECT_EQ(auth.authenticate({{"Authorization", "bearer the-key"}}, k_now).outcome, auth_result::status::ok);
  EXPECT_EQ(auth.authenticate({{"X-API-Key", k.sha256}}, k_now).outcome, auth_result::status::invalid)
      << "the stored hash is not itself a key";
  EXPECT_EQ(auth.authenticate({}, k_now).outcome, auth_result::status::no_credentials);
}

TEST(HttpJwks, RejectsDocumentsWithoutUsableKeys) {
  EXPECT_THROW(parse_jwks("{}"), std::runtime_error);
  EXPECT_THROW(parse_jwks(R"({"keys":[{"kty":"EC","crv":"P-256"}]})"), std::runtime_error);
}

}  // namespace
}  // namespace wharf::http
