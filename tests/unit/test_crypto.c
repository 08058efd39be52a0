/*
 * lib/crypto.c against Wycheproof (ed25519, x25519, chacha20-poly1305,
 * aes-gcm, hkdf-sha256; read from the vectors directory at run time) and
 * the RFC 7914 scrypt vectors, plus the helpers' basic contracts.
 *
 * Every vector test counts the cases it looked at and asserts that the
 * count equals the file's numberOfTests: a file that silently yields no
 * cases fails the suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/crypto.h"

/* Like CU_ASSERT, and names the vector case on failure. */
#define CHECK_CASE(name, tcid, cond)                                           \
  do {                                                                         \
    int ok_ = (cond) ? 1 : 0;                                                  \
    CU_assertImplementation(ok_ ? CU_TRUE : CU_FALSE, __LINE__, #cond,         \
                            __FILE__, "", CU_FALSE);                           \
    if (!ok_)                                                                  \
      fprintf(stderr, "%s tcId %lld: %s failed\n", (name), (long long)(tcid),  \
              #cond);                                                          \
  } while (0)

typedef struct counts {
  size_t checked;  /* run through our API and judged */
  size_t rejected; /* of those: parameters our fixed-size API cannot take */
  size_t skipped;  /* out of scope (other key sizes), not judged */
  size_t accepted; /* of those checked: our API accepted them */
} counts_t;

typedef void (*case_fn)(const char *name, json_object *group, json_object *test,
                        counts_t *c);

/* Runs fn over every test of every group of Wycheproof file, then checks
 * that every test of the file was either checked or explicitly skipped. */
static counts_t run_wycheproof(const char *file, const char *name, case_fn fn) {
  counts_t c = {0, 0, 0, 0};
  json_object *root = test_vectors_load(file), *groups;
  int64_t want = test_int_field(root, "numberOfTests");
  CU_ASSERT_FATAL(json_object_object_get_ex(root, "testGroups", &groups));
  for (size_t g = 0; g < json_object_array_length(groups); g++) {
    json_object *group = json_object_array_get_idx(groups, g), *tests;
    CU_ASSERT_FATAL(json_object_object_get_ex(group, "tests", &tests));
    for (size_t t = 0; t < json_object_array_length(tests); t++)
      fn(name, group, json_object_array_get_idx(tests, t), &c);
  }
  printf("\n    %s: %zu cases checked (%zu accepted, %zu refused, of which %zu "
         "by the API's fixed sizes), %zu skipped, file has %lld\n",
         name, c.checked, c.accepted, c.checked - c.accepted, c.rejected,
         c.skipped, (long long)want);
  CU_ASSERT(c.checked > 0);
  CU_ASSERT(want > 0);
  CU_ASSERT_EQUAL(c.checked + c.skipped, (size_t)want);
  json_object_put(root);
  return c;
}

static int result_is(json_object *test, const char *want) {
  const char *r = test_str_field(test, "result");
  return r && strcmp(r, want) == 0;
}

static int is_zero(const uint8_t *p, size_t len) {
  uint8_t acc = 0;
  for (size_t i = 0; i < len; i++)
    acc |= p[i];
  return acc == 0;
}

/* --- Ed25519 --------------------------------------------------------------- */

static void ed25519_case(const char *name, json_object *group,
                         json_object *test, counts_t *c) {
  json_object *pkobj;
  CU_ASSERT_FATAL(json_object_object_get_ex(group, "publicKey", &pkobj));
  int64_t tcid = test_int_field(test, "tcId");
  size_t pklen, msglen, siglen;
  uint8_t *pk = test_hex_field(pkobj, "pk", &pklen);
  uint8_t *msg = test_hex_field(test, "msg", &msglen);
  uint8_t *sig = test_hex_field(test, "sig", &siglen);
  int valid = result_is(test, "valid");
  CHECK_CASE(name, tcid, valid || result_is(test, "invalid"));
  if (pklen != SYNOD_ED25519_PUBLIC_BYTES ||
      siglen != SYNOD_ED25519_SIG_BYTES) {
    /* A truncated or padded signature cannot even be passed in. */
    CHECK_CASE(name, tcid, !valid);
    c->rejected++;
  } else {
    int rc = synod_ed25519_verify(sig, msg, msglen, pk);
    c->accepted += rc == 0;
    if (valid)
      CHECK_CASE(name, tcid, rc == 0);
    else
      CHECK_CASE(name, tcid, rc == SYNOD_EVERIFY);
  }
  c->checked++;
  free(pk);
  free(msg);
  free(sig);
}

static void test_ed25519_wycheproof(void) {
  run_wycheproof("ed25519_test.json", "ed25519", ed25519_case);
}

static void test_ed25519_roundtrip(void) {
  uint8_t pk[32], pk2[32], sk[32], sig[64], sig2[64];
  const uint8_t msg[] = "follow the keys";
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL(synod_ed25519_public(pk2, sk), 0);
  CU_ASSERT(memcmp(pk, pk2, 32) == 0);
  CU_ASSERT_EQUAL(synod_ed25519_sign(sig, msg, sizeof msg, sk), 0);
  CU_ASSERT_EQUAL(synod_ed25519_sign(sig2, msg, sizeof msg, sk), 0);
  CU_ASSERT(memcmp(sig, sig2, 64) == 0); /* deterministic */
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig, msg, sizeof msg, pk), 0);
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig, msg, sizeof msg - 1, pk),
                  SYNOD_EVERIFY);
  sig[10] ^= 1;
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig, msg, sizeof msg, pk),
                  SYNOD_EVERIFY);
  /* Empty message, NULL pointer. */
  CU_ASSERT_EQUAL(synod_ed25519_sign(sig, NULL, 0, sk), 0);
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig, NULL, 0, pk), 0);
  /* A NULL message with a length is a caller bug, never a read. */
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig, NULL, 1, pk), SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(synod_ed25519_sign(sig, NULL, 1, sk), SYNOD_EINVAL);
  synod_wipe(sk, sizeof sk);
}

/* --- X25519 ---------------------------------------------------------------- */

static void x25519_case(const char *name, json_object *group, json_object *test,
                        counts_t *c) {
  (void)group;
  int64_t tcid = test_int_field(test, "tcId");
  size_t publen, privlen, sharedlen;
  uint8_t *pub = test_hex_field(test, "public", &publen);
  uint8_t *priv = test_hex_field(test, "private", &privlen);
  uint8_t *shared = test_hex_field(test, "shared", &sharedlen);
  int valid = result_is(test, "valid");
  CHECK_CASE(name, tcid,
             valid || result_is(test, "acceptable") ||
                 result_is(test, "invalid"));
  if (publen != 32 || privlen != 32 || sharedlen != 32) {
    CHECK_CASE(name, tcid, !valid);
    c->rejected++;
  } else {
    uint8_t out[32];
    int rc = synod_x25519(out, priv, pub);
    c->accepted += rc == 0;
    if (is_zero(shared, 32)) {
      /* RFC 9180 section 7.1.4: an all-zero DH output must be refused.
       * Wycheproof marks these "acceptable" either way. */
      CHECK_CASE(name, tcid, rc == SYNOD_ECRYPTO);
      CHECK_CASE(name, tcid, is_zero(out, 32));
    } else if (result_is(test, "invalid")) {
      CHECK_CASE(name, tcid, rc != 0);
    } else {
      CHECK_CASE(name, tcid, rc == 0);
      CHECK_CASE(name, tcid, rc == 0 && memcmp(out, shared, 32) == 0);
    }
  }
  c->checked++;
  free(pub);
  free(priv);
  free(shared);
}

static void test_x25519_wycheproof(void) {
  run_wycheproof("x25519_test.json", "x25519", x25519_case);
}

static void test_x25519_roundtrip(void) {
  uint8_t apk[32], ask[32], bpk[32], bsk[32], s1[32], s2[32], pk[32];
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(apk, ask), 0);
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(bpk, bsk), 0);
  CU_ASSERT_EQUAL(synod_x25519_public(pk, ask), 0);
  CU_ASSERT(memcmp(pk, apk, 32) == 0);
  CU_ASSERT_EQUAL(synod_x25519(s1, ask, bpk), 0);
  CU_ASSERT_EQUAL(synod_x25519(s2, bsk, apk), 0);
  CU_ASSERT(memcmp(s1, s2, 32) == 0);
  /* The all-zero public key is of low order: refused, output wiped. */
  uint8_t zero[32] = {0};
  CU_ASSERT_EQUAL(synod_x25519(s1, ask, zero), SYNOD_ECRYPTO);
  CU_ASSERT(is_zero(s1, 32));
  synod_wipe(ask, 32);
  synod_wipe(bsk, 32);
}

/* --- AEAD ------------------------------------------------------------------- */

/* One Wycheproof AeadTest case for alg. Groups whose key size is not
 * keybits are skipped (counted); for AES-GCM, so are groups with nonces other
 * than 96 bits, which synod never uses. For ChaCha20-Poly1305 (always
 * 256-bit keys) a nonce other than 96 bits cannot be passed to the API's
 * 12-byte nonce parameter: such cases count as rejected and the file must
 * mark them invalid. */
static void aead_case(const char *name, synod_aead_t alg, size_t keybits,
                      json_object *group, json_object *test, counts_t *c) {
  int64_t tcid = test_int_field(test, "tcId");
  int64_t ivbits = test_int_field(group, "ivSize");
  int64_t kbits = test_int_field(group, "keySize");
  int64_t tagbits = test_int_field(group, "tagSize");
  if ((size_t)kbits != keybits || tagbits != 128 ||
      (alg == SYNOD_AEAD_AES128GCM && ivbits != 96)) {
    c->skipped++;
    return;
  }
  int valid = result_is(test, "valid");
  CHECK_CASE(name, tcid, valid || result_is(test, "invalid"));
  size_t keylen, ivlen, aadlen, msglen, ctlen, taglen;
  uint8_t *key = test_hex_field(test, "key", &keylen);
  uint8_t *iv = test_hex_field(test, "iv", &ivlen);
  uint8_t *aad = test_hex_field(test, "aad", &aadlen);
  uint8_t *msg = test_hex_field(test, "msg", &msglen);
  uint8_t *ct = test_hex_field(test, "ct", &ctlen);
  uint8_t *tag = test_hex_field(test, "tag", &taglen);
  c->checked++;
  if (ivlen != SYNOD_AEAD_NONCE_BYTES) {
    CHECK_CASE(name, tcid, !valid);
    c->rejected++;
    goto out;
  }
  CHECK_CASE(name, tcid, keylen == synod_aead_key_bytes(alg));
  CHECK_CASE(name, tcid, taglen == SYNOD_AEAD_TAG_BYTES);
  /* ct || tag, the layout our API uses. */
  size_t sealedlen = ctlen + taglen;
  uint8_t *sealed = malloc(sealedlen);
  uint8_t *buf = malloc(sealedlen);
  uint8_t *plain = malloc(ctlen + 1);
  CU_ASSERT_FATAL(sealed && buf && plain);
  memcpy(sealed, ct, ctlen);
  memcpy(sealed + ctlen, tag, taglen);
  int rc =
      synod_aead_decrypt(alg, plain, sealed, sealedlen, aad, aadlen, iv, key);
  c->accepted += rc == 0;
  if (valid) {
    CHECK_CASE(name, tcid, msglen == ctlen);
    CHECK_CASE(name, tcid, rc == 0 && memcmp(plain, msg, msglen) == 0);
    rc = synod_aead_encrypt(alg, buf, msg, msglen, aad, aadlen, iv, key);
    CHECK_CASE(name, tcid, rc == 0 && memcmp(buf, sealed, sealedlen) == 0);
    /* In place: c == m. */
    memcpy(buf, msg, msglen);
    rc = synod_aead_encrypt(alg, buf, buf, msglen, aad, aadlen, iv, key);
    CHECK_CASE(name, tcid, rc == 0 && memcmp(buf, sealed, sealedlen) == 0);
  } else {
    CHECK_CASE(name, tcid, rc == SYNOD_EDECRYPT);
    CHECK_CASE(name, tcid, is_zero(plain, ctlen)); /* wiped on failure */
  }
  free(sealed);
  free(buf);
  free(plain);
out:
  free(key);
  free(iv);
  free(aad);
  free(msg);
  free(ct);
  free(tag);
}

static void chacha_case(const char *name, json_object *group, json_object *test,
                        counts_t *c) {
  aead_case(name, SYNOD_AEAD_CHACHA20POLY1305, 256, group, test, c);
}

static void aesgcm_case(const char *name, json_object *group, json_object *test,
                        counts_t *c) {
  aead_case(name, SYNOD_AEAD_AES128GCM, 128, group, test, c);
}

static void test_chacha20poly1305_wycheproof(void) {
  counts_t c = run_wycheproof("chacha20_poly1305_test.json",
                              "chacha20-poly1305", chacha_case);
  CU_ASSERT_EQUAL(c.skipped, 0);
  CU_ASSERT(c.rejected > 0); /* the odd-nonce groups were seen */
}

static void test_aes128gcm_wycheproof(void) {
  counts_t c = run_wycheproof("aes_gcm_test.json", "aes-128-gcm", aesgcm_case);
  CU_ASSERT(c.checked > c.rejected);
}

static void test_aead_contract(void) {
  uint8_t key[32], nonce[12], m[40], c[56], out[40];
  CU_ASSERT_EQUAL_FATAL(synod_random(key, sizeof key), 0);
  CU_ASSERT_EQUAL_FATAL(synod_random(nonce, sizeof nonce), 0);
  memset(m, 'm', sizeof m);
  CU_ASSERT_EQUAL(synod_aead_key_bytes(SYNOD_AEAD_CHACHA20POLY1305), 32);
  CU_ASSERT_EQUAL(synod_aead_key_bytes(SYNOD_AEAD_AES128GCM), 16);
  for (int a = 0; a < 2; a++) {
    synod_aead_t alg = a ? SYNOD_AEAD_AES128GCM : SYNOD_AEAD_CHACHA20POLY1305;
    CU_ASSERT_EQUAL(
        synod_aead_encrypt(alg, c, m, sizeof m, NULL, 0, nonce, key), 0);
    CU_ASSERT_EQUAL(
        synod_aead_decrypt(alg, out, c, sizeof c, NULL, 0, nonce, key), 0);
    CU_ASSERT(memcmp(out, m, sizeof m) == 0);
    CU_ASSERT_EQUAL(synod_aead_decrypt(alg, out, c, 15, NULL, 0, nonce, key),
                    SYNOD_ETRUNC);
    /* Wrong associated data fails, and the output is wiped. */
    CU_ASSERT_EQUAL(synod_aead_decrypt(alg, out, c, sizeof c, m, 1, nonce, key),
                    SYNOD_EDECRYPT);
    CU_ASSERT(is_zero(out, sizeof out));
    /* Tag-only ciphertext of an empty message. */
    CU_ASSERT_EQUAL(synod_aead_encrypt(alg, c, NULL, 0, m, 3, nonce, key), 0);
    CU_ASSERT_EQUAL(synod_aead_decrypt(alg, NULL, c, 16, m, 3, nonce, key), 0);
    c[0] ^= 1;
    CU_ASSERT_EQUAL(synod_aead_decrypt(alg, NULL, c, 16, m, 3, nonce, key),
                    SYNOD_EDECRYPT);
  }
  CU_ASSERT_EQUAL(
      synod_aead_encrypt((synod_aead_t)7, c, m, sizeof m, NULL, 0, nonce, key),
      SYNOD_EINVAL);
  synod_wipe(key, sizeof key);
}

/* --- HKDF-SHA256 -------------------------------------------------------------- */

static void hkdf_case(const char *name, json_object *group, json_object *test,
                      counts_t *c) {
  (void)group;
  int64_t tcid = test_int_field(test, "tcId");
  int64_t size = test_int_field(test, "size");
  size_t ikmlen, saltlen, infolen, okmlen;
  uint8_t *ikm = test_hex_field(test, "ikm", &ikmlen);
  uint8_t *salt = test_hex_field(test, "salt", &saltlen);
  uint8_t *info = test_hex_field(test, "info", &infolen);
  uint8_t *okm = test_hex_field(test, "okm", &okmlen);
  CU_ASSERT_FATAL(size > 0);
  uint8_t *out = malloc((size_t)size);
  CU_ASSERT_FATAL(out != NULL);
  int rc = synod_hkdf_sha256(out, (size_t)size, salt, saltlen, ikm, ikmlen,
                             info, infolen);
  c->accepted += rc == 0;
  if (result_is(test, "valid")) {
    CHECK_CASE(name, tcid, okmlen == (size_t)size);
    CHECK_CASE(name, tcid, rc == 0 && memcmp(out, okm, okmlen) == 0);
    /* The two halves give the same as the whole. */
    uint8_t prk[32];
    uint8_t *out2 = malloc((size_t)size);
    CU_ASSERT_FATAL(out2 != NULL);
    CHECK_CASE(name, tcid,
               synod_hkdf_sha256_extract(prk, salt, saltlen, ikm, ikmlen) == 0);
    CHECK_CASE(name, tcid,
               synod_hkdf_sha256_expand(out2, (size_t)size, prk, 32, info,
                                        infolen) == 0);
    CHECK_CASE(name, tcid, memcmp(out2, okm, okmlen) == 0);
    free(out2);
  } else {
    /* The invalid cases ask for more than 255 * HashLen bytes. */
    CHECK_CASE(name, tcid, result_is(test, "invalid"));
    CHECK_CASE(name, tcid, rc == SYNOD_EINVAL);
  }
  c->checked++;
  free(out);
  free(ikm);
  free(salt);
  free(info);
  free(okm);
}

static void test_hkdf_wycheproof(void) {
  run_wycheproof("hkdf_sha256_test.json", "hkdf-sha256", hkdf_case);
}

static void test_hkdf_contract(void) {
  uint8_t prk[32], out[8161];
  CU_ASSERT_EQUAL(synod_hkdf_sha256_extract(prk, NULL, 0, NULL, 1),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_hkdf_sha256_extract(prk, NULL, 1, prk, 1),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_hkdf_sha256_extract(prk, NULL, 0, NULL, 0), 0);
  CU_ASSERT_EQUAL(synod_hkdf_sha256_expand(out, 8160, prk, 32, NULL, 0), 0);
  CU_ASSERT_EQUAL(synod_hkdf_sha256_expand(out, 8161, prk, 32, NULL, 0),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_hkdf_sha256_expand(out, 0, prk, 32, NULL, 0), 0);
}

/* --- helpers ------------------------------------------------------------------ */

static void test_memeq(void) {
  uint8_t a[64], b[64];
  memset(a, 0x5a, sizeof a);
  memcpy(b, a, sizeof b);
  CU_ASSERT_EQUAL(synod_memeq(a, b, sizeof a), 1);
  CU_ASSERT_EQUAL(synod_memeq(a, b, 0), 1);
  b[63] ^= 0x80;
  CU_ASSERT_EQUAL(synod_memeq(a, b, sizeof a), 0);
  CU_ASSERT_EQUAL(synod_memeq(a, b, 63), 1);
  b[0] ^= 1;
  CU_ASSERT_EQUAL(synod_memeq(a, b, 1), 0);
}

static void test_wipe(void) {
  uint8_t a[33];
  memset(a, 0xff, sizeof a);
  synod_wipe(a, sizeof a);
  CU_ASSERT(is_zero(a, sizeof a));
  synod_wipe(NULL, 0);
}

static void test_random(void) {
  uint8_t a[32], b[32];
  CU_ASSERT_EQUAL_FATAL(synod_random(a, sizeof a), 0);
  CU_ASSERT_EQUAL_FATAL(synod_random(b, sizeof b), 0);
  CU_ASSERT(memcmp(a, b, sizeof a) != 0);
  CU_ASSERT(!is_zero(a, sizeof a));
  CU_ASSERT_EQUAL(synod_random(a, 0), 0);
}

static void test_sha256(void) {
  /* FIPS 180-2 appendix B.1, "abc". */
  static const uint8_t want[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  uint8_t out[32];
  CU_ASSERT_EQUAL(synod_sha256(out, (const uint8_t *)"abc", 3), 0);
  CU_ASSERT(memcmp(out, want, 32) == 0);
  CU_ASSERT_EQUAL(synod_sha256(out, NULL, 1), SYNOD_EINVAL);
}

static void hex_to(uint8_t *out, const char *hex, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned int v = 0;
    CU_ASSERT_FATAL(sscanf(hex + 2 * i, "%2x", &v) == 1);
    out[i] = (uint8_t)v;
  }
}

static void test_scrypt_rfc7914(void) {
  /* RFC 7914 section 12, second and first test vectors. */
  uint8_t want[64], out[64];
  hex_to(want,
         "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
         "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
         64);
  CU_ASSERT_EQUAL(synod_scrypt(out, 64, "password", 8, (const uint8_t *)"NaCl",
                               4, 1024, 8, 16),
                  0);
  CU_ASSERT(memcmp(out, want, 64) == 0);
  hex_to(want,
         "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
         "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
         64);
  CU_ASSERT_EQUAL(synod_scrypt(out, 64, "", 0, NULL, 0, 16, 1, 1), 0);
  CU_ASSERT(memcmp(out, want, 64) == 0);
  /* Parameter checks. */
  CU_ASSERT_EQUAL(synod_scrypt(out, 64, "p", 1, NULL, 0, 1000, 8, 1),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_scrypt(out, 64, "p", 1, NULL, 0, 1024, 0, 1),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_scrypt(out, 64, "p", 1, NULL, 0, 1u << 24, 8, 1),
                  SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(synod_scrypt(out, 64, "p", 1, NULL, 0, 2, 0xffffffffu, 1),
                  SYNOD_ETOOBIG);
}

static CU_TestInfo crypto_tests[] = {
    {"ed25519_wycheproof", test_ed25519_wycheproof},
    {"ed25519_roundtrip", test_ed25519_roundtrip},
    {"x25519_wycheproof", test_x25519_wycheproof},
    {"x25519_roundtrip", test_x25519_roundtrip},
    {"chacha20poly1305_wycheproof", test_chacha20poly1305_wycheproof},
    {"aes128gcm_wycheproof", test_aes128gcm_wycheproof},
    {"aead_contract", test_aead_contract},
    {"hkdf_wycheproof", test_hkdf_wycheproof},
    {"hkdf_contract", test_hkdf_contract},
    {"memeq", test_memeq},
    {"wipe", test_wipe},
    {"random", test_random},
    {"sha256", test_sha256},
    {"scrypt_rfc7914", test_scrypt_rfc7914},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"crypto", NULL, NULL, NULL, NULL, crypto_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
