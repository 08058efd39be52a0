/*
 * Cryptographic primitives over the OpenSSL 3.0 EVP interfaces.
 *
 * Every failure path clears the OpenSSL error queue: a stale entry left
 * there would be read by the next SSL_get_error() on the same thread and
 * turn an ordinary TLS want-read into a fatal error.
 */
#include "synod/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* EVP takes int lengths; larger inputs are refused rather than split. */
#define EVP_LEN_MAX ((size_t)INT_MAX - 64)

/* Never handed to OpenSSL for writing; stands in for an absent empty input
 * because some EVP parameter readers refuse a NULL pointer even with a zero
 * length. */
static const uint8_t empty[1];

static const uint8_t *nonnull(const uint8_t *p) {
  return p ? p : empty;
}

/* OSSL_PARAM_construct_octet_string() takes void * for parameters it only
 * reads; the integer round trip drops const without a qualifier warning. */
static void *param_in(const void *p) {
  return (void *)(uintptr_t)(p ? p : (const void *)empty);
}

static int fail(int err) {
  ERR_clear_error();
  return err;
}

int synod_random(uint8_t *buf, size_t len) {
  while (len > 0) {
    int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;
    if (RAND_bytes(buf, n) != 1)
      return fail(SYNOD_ECRYPTO);
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

void synod_wipe(void *p, size_t len) {
  if (p && len)
    OPENSSL_cleanse(p, len);
}

int synod_memeq(const void *a, const void *b, size_t len) {
  if (len == 0)
    return 1;
  return CRYPTO_memcmp(a, b, len) == 0;
}

int synod_sha256(uint8_t out[static SYNOD_SHA256_BYTES], const uint8_t *in,
                 size_t inlen) {
  unsigned int outlen = 0;
  if (inlen && !in)
    return SYNOD_EINVAL;
  if (EVP_Digest(nonnull(in), inlen, out, &outlen, EVP_sha256(), NULL) != 1 ||
      outlen != SYNOD_SHA256_BYTES)
    return fail(SYNOD_ECRYPTO);
  return 0;
}

/* --- Ed25519 --------------------------------------------------------------- */

int synod_ed25519_keygen(uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES],
                         uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]) {
  int rc = synod_random(sk, SYNOD_ED25519_SECRET_BYTES);
  if (rc == 0)
    rc = synod_ed25519_public(pk, sk);
  if (rc != 0)
    synod_wipe(sk, SYNOD_ED25519_SECRET_BYTES);
  return rc;
}

/* The raw public key of pkey into pk (32 bytes). */
static int raw_public(uint8_t pk[static 32], const EVP_PKEY *pkey) {
  size_t len = 32;
  if (EVP_PKEY_get_raw_public_key(pkey, pk, &len) != 1 || len != 32)
    return SYNOD_ECRYPTO;
  return 0;
}

int synod_ed25519_public(uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES],
                         const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]) {
  int rc = SYNOD_ECRYPTO;
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk,
                                               SYNOD_ED25519_SECRET_BYTES);
  if (!key)
    goto out;
  rc = raw_public(pk, key);
out:
  EVP_PKEY_free(key);
  return rc == 0 ? 0 : fail(rc);
}

struct synod_ed25519_signer {
  EVP_PKEY *key;
};

int synod_ed25519_signer_new(
    synod_ed25519_signer_t **out,
    const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]) {
  *out = NULL;
  synod_ed25519_signer_t *s = calloc(1, sizeof *s);
  if (!s)
    return SYNOD_ENOMEM;
  s->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk,
                                        SYNOD_ED25519_SECRET_BYTES);
  if (!s->key) {
    free(s);
    return fail(SYNOD_ECRYPTO);
  }
  *out = s;
  return 0;
}

void synod_ed25519_signer_free(synod_ed25519_signer_t *s) {
  if (!s)
    return;
  EVP_PKEY_free(s->key);
  free(s);
}

int synod_ed25519_signer_sign(const synod_ed25519_signer_t *s,
                              uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                              const uint8_t *m, size_t mlen) {
  int rc = SYNOD_ECRYPTO;
  EVP_MD_CTX *md = NULL;
  size_t siglen = SYNOD_ED25519_SIG_BYTES;
  if (!s || (mlen && !m)) {
    rc = SYNOD_EINVAL;
    goto out;
  }
  if (!(md = EVP_MD_CTX_new())) {
    rc = SYNOD_ENOMEM;
    goto out;
  }
  /* Pure Ed25519 is one-shot: the digest must be NULL (EVP_SIGNATURE-ED25519). */
  if (EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, s->key, NULL) != 1 ||
      EVP_DigestSign(md, sig, &siglen, nonnull(m), mlen) != 1 ||
      siglen != SYNOD_ED25519_SIG_BYTES)
    goto out;
  rc = 0;
out:
  EVP_MD_CTX_free(md);
  if (rc != 0) {
    synod_wipe(sig, SYNOD_ED25519_SIG_BYTES);
    return fail(rc);
  }
  return 0;
}

int synod_ed25519_sign(uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                       const uint8_t *m, size_t mlen,
                       const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]) {
  synod_ed25519_signer_t *s;
  if (mlen && !m) {
    synod_wipe(sig, SYNOD_ED25519_SIG_BYTES);
    return SYNOD_EINVAL;
  }
  int rc = synod_ed25519_signer_new(&s, sk);
  if (rc == 0)
    rc = synod_ed25519_signer_sign(s, sig, m, mlen);
  else
    synod_wipe(sig, SYNOD_ED25519_SIG_BYTES);
  synod_ed25519_signer_free(s);
  return rc;
}

int synod_ed25519_verify(const uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                         const uint8_t *m, size_t mlen,
                         const uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]) {
  int rc = SYNOD_EVERIFY;
  EVP_MD_CTX *md = NULL;
  EVP_PKEY *key = NULL;
  if (mlen && !m)
    goto out;
  key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk,
                                    SYNOD_ED25519_PUBLIC_BYTES);
  if (!key)
    goto out;
  if (!(md = EVP_MD_CTX_new()))
    goto out;
  /* EVP_DigestVerify returns 1 only for a good signature; 0 and negative
   * values (bad signature, malformed key or point) are all a failure. */
  if (EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, key, NULL) == 1 &&
      EVP_DigestVerify(md, sig, SYNOD_ED25519_SIG_BYTES, nonnull(m), mlen) == 1)
    rc = 0;
out:
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  return rc == 0 ? 0 : fail(rc);
}

/* --- X25519 ---------------------------------------------------------------- */

int synod_x25519_keygen(uint8_t pk[static SYNOD_X25519_BYTES],
                        uint8_t sk[static SYNOD_X25519_BYTES]) {
  int rc = synod_random(sk, SYNOD_X25519_BYTES);
  if (rc == 0)
    rc = synod_x25519_public(pk, sk);
  if (rc != 0)
    synod_wipe(sk, SYNOD_X25519_BYTES);
  return rc;
}

int synod_x25519_public(uint8_t pk[static SYNOD_X25519_BYTES],
                        const uint8_t sk[static SYNOD_X25519_BYTES]) {
  int rc = SYNOD_ECRYPTO;
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
                                               SYNOD_X25519_BYTES);
  if (!key)
    goto out;
  rc = raw_public(pk, key);
out:
  EVP_PKEY_free(key);
  return rc == 0 ? 0 : fail(rc);
}

int synod_x25519(uint8_t shared[static SYNOD_X25519_BYTES],
                 const uint8_t sk[static SYNOD_X25519_BYTES],
                 const uint8_t peer_pk[static SYNOD_X25519_BYTES]) {
  int rc = SYNOD_ECRYPTO;
  uint8_t buf[SYNOD_X25519_BYTES], acc = 0;
  size_t len = sizeof buf;
  EVP_PKEY_CTX *ctx = NULL;
  EVP_PKEY *peer = NULL;
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk,
                                               SYNOD_X25519_BYTES);
  if (!key)
    goto out;
  if (!(peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pk,
                                           SYNOD_X25519_BYTES)))
    goto out;
  if (!(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)))
    goto out;
  if (EVP_PKEY_derive_init(ctx) != 1 ||
      EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
      EVP_PKEY_derive(ctx, buf, &len) != 1 || len != sizeof buf)
    goto out;
  /* RFC 7748 section 6.1: refuse the all-zero output of a low-order point.
   * OpenSSL already fails there; the check stays so that the guarantee does
   * not rest on a provider detail. OR-ing every byte keeps it constant time. */
  for (size_t i = 0; i < sizeof buf; i++)
    acc |= buf[i];
  if (acc == 0)
    goto out;
  memcpy(shared, buf, sizeof buf);
  rc = 0;
out:
  synod_wipe(buf, sizeof buf);
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer);
  EVP_PKEY_free(key);
  if (rc != 0) {
    synod_wipe(shared, SYNOD_X25519_BYTES);
    return fail(rc);
  }
  return 0;
}

/* --- HKDF-SHA256 ------------------------------------------------------------ */

#define HKDF_SHA256_MAX (255u * SYNOD_SHA256_BYTES)

static char sha256_name[] = "SHA256"; /* read only; OSSL_PARAM wants char * */

/* One HKDF call in the given EVP_KDF_HKDF_MODE_*; salt and info may be
 * absent (NULL, 0). */
static int hkdf(int mode, uint8_t *out, size_t outlen, const uint8_t *key,
                size_t keylen, const uint8_t *salt, size_t saltlen,
                const uint8_t *info, size_t infolen) {
  int rc = SYNOD_ECRYPTO;
  EVP_KDF_CTX *ctx = NULL;
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  OSSL_PARAM params[6], *p = params;
  *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  *p++ =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha256_name, 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, param_in(key),
                                           keylen);
  if (saltlen)
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                             param_in(salt), saltlen);
  if (infolen)
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                             param_in(info), infolen);
  *p = OSSL_PARAM_construct_end();
  if (!kdf || !(ctx = EVP_KDF_CTX_new(kdf)))
    goto out;
  if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
    goto out;
  rc = 0;
out:
  EVP_KDF_CTX_free(ctx); /* clears the key copies it holds */
  EVP_KDF_free(kdf);
  if (rc != 0) {
    synod_wipe(out, outlen);
    return fail(rc);
  }
  return 0;
}

int synod_hkdf_sha256_extract(uint8_t prk[static SYNOD_SHA256_BYTES],
                              const uint8_t *salt, size_t saltlen,
                              const uint8_t *ikm, size_t ikmlen) {
  if ((saltlen && !salt) || (ikmlen && !ikm))
    return SYNOD_EINVAL;
  /* An absent salt is HashLen zero bytes (RFC 5869 section 2.2); HMAC pads
   * an empty key with zeros, so leaving it out gives the same PRK. */
  return hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, prk, SYNOD_SHA256_BYTES, ikm,
              ikmlen, salt, saltlen, NULL, 0);
}

int synod_hkdf_sha256_expand(uint8_t *out, size_t outlen, const uint8_t *prk,
                             size_t prklen, const uint8_t *info,
                             size_t infolen) {
  if (outlen > HKDF_SHA256_MAX || (outlen && !out) || (prklen && !prk) ||
      (infolen && !info))
    return SYNOD_EINVAL;
  if (outlen == 0)
    return 0;
  return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, out, outlen, prk, prklen, NULL, 0,
              info, infolen);
}

int synod_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt,
                      size_t saltlen, const uint8_t *ikm, size_t ikmlen,
                      const uint8_t *info, size_t infolen) {
  uint8_t prk[SYNOD_SHA256_BYTES];
  if (outlen > HKDF_SHA256_MAX || (outlen && !out) || (saltlen && !salt) ||
      (ikmlen && !ikm) || (infolen && !info))
    return SYNOD_EINVAL;
  int rc = synod_hkdf_sha256_extract(prk, salt, saltlen, ikm, ikmlen);
  if (rc == 0)
    rc = synod_hkdf_sha256_expand(out, outlen, prk, sizeof prk, info, infolen);
  synod_wipe(prk, sizeof prk);
  return rc;
}

/* --- AEAD ------------------------------------------------------------------- */

size_t synod_aead_key_bytes(synod_aead_t alg) {
  switch (alg) {
  case SYNOD_AEAD_CHACHA20POLY1305:
    return SYNOD_CHACHA20POLY1305_KEY_BYTES;
  case SYNOD_AEAD_AES128GCM:
    return SYNOD_AES128GCM_KEY_BYTES;
  }
  return 0;
}

static const EVP_CIPHER *aead_cipher(synod_aead_t alg) {
  switch (alg) {
  case SYNOD_AEAD_CHACHA20POLY1305:
    return EVP_chacha20_poly1305();
  case SYNOD_AEAD_AES128GCM:
    return EVP_aes_128_gcm();
  }
  return NULL;
}

/* A fresh context for alg keyed with key and nonce, for encryption (enc 1)
 * or decryption (enc 0), with ad already absorbed. */
static int aead_start(EVP_CIPHER_CTX **out, synod_aead_t alg, int enc,
                      const uint8_t *ad, size_t adlen,
                      const uint8_t nonce[static SYNOD_AEAD_NONCE_BYTES],
                      const uint8_t *key) {
  const EVP_CIPHER *cipher = aead_cipher(alg);
  EVP_CIPHER_CTX *ctx = NULL;
  int n = 0;
  *out = NULL;
  if (!cipher || !key || (adlen && !ad))
    return SYNOD_EINVAL;
  if (adlen > EVP_LEN_MAX)
    return SYNOD_ETOOBIG;
  if (!(ctx = EVP_CIPHER_CTX_new()))
    return SYNOD_ENOMEM;
  /* The nonce length is set between the two init calls, as EVP_EncryptInit(3)
   * describes for AEAD modes; 12 is already both ciphers' default. */
  if (EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, SYNOD_AEAD_NONCE_BYTES,
                          NULL) != 1 ||
      EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
      (adlen && EVP_CipherUpdate(ctx, NULL, &n, ad, (int)adlen) != 1)) {
    EVP_CIPHER_CTX_free(ctx);
    return SYNOD_ECRYPTO;
  }
  *out = ctx;
  return 0;
}

int synod_aead_encrypt(synod_aead_t alg, uint8_t *c, const uint8_t *m,
                       size_t mlen, const uint8_t *ad, size_t adlen,
                       const uint8_t nonce[static SYNOD_AEAD_NONCE_BYTES],
                       const uint8_t *key) {
  EVP_CIPHER_CTX *ctx = NULL;
  int n = 0;
  if (!c || (mlen && !m))
    return SYNOD_EINVAL;
  if (mlen > EVP_LEN_MAX)
    return SYNOD_ETOOBIG;
  int rc = aead_start(&ctx, alg, 1, ad, adlen, nonce, key);
  if (rc != 0)
    goto out;
  rc = SYNOD_ECRYPTO;
  if (mlen &&
      (EVP_EncryptUpdate(ctx, c, &n, m, (int)mlen) != 1 || (size_t)n != mlen))
    goto out;
  if (EVP_EncryptFinal_ex(ctx, c + mlen, &n) != 1 || n != 0)
    goto out;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SYNOD_AEAD_TAG_BYTES,
                          c + mlen) != 1)
    goto out;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(ctx);
  return rc == 0 ? 0 : fail(rc);
}

int synod_aead_decrypt(synod_aead_t alg, uint8_t *m, const uint8_t *c,
                       size_t clen, const uint8_t *ad, size_t adlen,
                       const uint8_t nonce[static SYNOD_AEAD_NONCE_BYTES],
                       const uint8_t *key) {
  EVP_CIPHER_CTX *ctx = NULL;
  uint8_t tag[SYNOD_AEAD_TAG_BYTES];
  int n = 0;
  if (!c)
    return SYNOD_EINVAL;
  if (clen < SYNOD_AEAD_TAG_BYTES)
    return SYNOD_ETRUNC;
  size_t mlen = clen - SYNOD_AEAD_TAG_BYTES;
  if (mlen && !m)
    return SYNOD_EINVAL;
  if (mlen > EVP_LEN_MAX)
    return SYNOD_ETOOBIG;
  /* A copy, because SET_TAG takes a non-const pointer and because m may
   * alias c. */
  memcpy(tag, c + mlen, sizeof tag);
  int rc = aead_start(&ctx, alg, 0, ad, adlen, nonce, key);
  if (rc != 0)
    goto out;
  rc = SYNOD_ECRYPTO;
  if (mlen &&
      (EVP_DecryptUpdate(ctx, m, &n, c, (int)mlen) != 1 || (size_t)n != mlen))
    goto out;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SYNOD_AEAD_TAG_BYTES,
                          tag) != 1)
    goto out;
  /* "EVP_DecryptFinal_ex() ... returns 0 if the decrypt failed" - for an
   * AEAD that is the tag check, done in constant time by OpenSSL. */
  rc = SYNOD_EDECRYPT;
  if (EVP_DecryptFinal_ex(ctx, m ? m + mlen : tag, &n) != 1 || n != 0)
    goto out;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(ctx);
  if (rc != 0) {
    if (m)
      synod_wipe(m, mlen);
    return fail(rc);
  }
  return 0;
}

/* --- scrypt ----------------------------------------------------------------- */

int synod_scrypt(uint8_t *out, size_t outlen, const char *pass, size_t passlen,
                 const uint8_t *salt, size_t saltlen, uint64_t n, uint32_t r,
                 uint32_t p) {
  if (!out || outlen == 0 || (passlen && !pass) || (saltlen && !salt))
    return SYNOD_EINVAL;
  /* RFC 7914: N a power of two greater than 1, r and p positive. */
  if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0)
    return SYNOD_EINVAL;
  /* OpenSSL's own accounting: 128 r (N + 2) for V and X, 128 r p for B.
   * Refusing here keeps a hostile key file from asking for gigabytes. */
  const uint64_t max = SYNOD_SCRYPT_MAX_MEM, r128 = 128u * (uint64_t)r;
  if (r128 > max / 2 || n > max / r128 - 2)
    return SYNOD_ETOOBIG;
  uint64_t v = r128 * (n + 2);
  if (p > (max - v) / r128)
    return SYNOD_ETOOBIG;

  int rc = SYNOD_ECRYPTO;
  uint64_t maxmem = max;
  EVP_KDF_CTX *ctx = NULL;
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, param_in(pass),
                                        passlen),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, param_in(salt),
                                        saltlen),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end(),
  };
  if (!kdf || !(ctx = EVP_KDF_CTX_new(kdf)))
    goto out;
  if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
    goto out;
  rc = 0;
out:
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (rc != 0) {
    synod_wipe(out, outlen);
    return fail(rc);
  }
  return 0;
}
