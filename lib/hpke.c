/*
 * RFC 9180 HPKE, mode_base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-128-GCM or ChaCha20-Poly1305, from the primitives in crypto.c.
 * Section numbers below are RFC 9180's.
 */
#include "synod/hpke.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* "HPKE-v1" (section 4). */
static const uint8_t version_label[7] = {'H', 'P', 'K', 'E', '-', 'v', '1'};

/* suite_id for the KEM: "KEM" || I2OSP(kem_id, 2) (section 4.1). */
static const uint8_t kem_suite[5] = {'K', 'E', 'M', 0x00, 0x20};

#define HPKE_SUITE_BYTES 10
#define STACK_LABELED    192 /* labeled inputs up to this size stay on the stack */

/* suite_id for the rest: "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) ||
 * I2OSP(aead_id, 2) (section 5.1). */
static void hpke_suite(uint8_t out[static HPKE_SUITE_BYTES],
                       synod_hpke_aead_t aead) {
  const unsigned int id = (unsigned int)aead;
  out[0] = 'H';
  out[1] = 'P';
  out[2] = 'K';
  out[3] = 'E';
  out[4] = SYNOD_HPKE_KEM_X25519_SHA256 >> 8;
  out[5] = SYNOD_HPKE_KEM_X25519_SHA256 & 0xff;
  out[6] = SYNOD_HPKE_KDF_HKDF_SHA256 >> 8;
  out[7] = SYNOD_HPKE_KDF_HKDF_SHA256 & 0xff;
  out[8] = (uint8_t)(id >> 8);
  out[9] = (uint8_t)(id & 0xff);
}

size_t synod_hpke_aead_key_bytes(synod_hpke_aead_t aead) {
  switch (aead) {
  case SYNOD_HPKE_AEAD_AES128GCM:
    return SYNOD_AES128GCM_KEY_BYTES;
  case SYNOD_HPKE_AEAD_CHACHA20POLY1305:
    return SYNOD_CHACHA20POLY1305_KEY_BYTES;
  }
  return 0;
}

static synod_aead_t aead_alg(synod_hpke_aead_t aead) {
  return aead == SYNOD_HPKE_AEAD_AES128GCM ? SYNOD_AEAD_AES128GCM
                                           : SYNOD_AEAD_CHACHA20POLY1305;
}

/* A labeled input: the parts concatenated into stack when they fit, else
 * into a fresh allocation. *buf points at the result; release with
 * labeled_free(). Inputs may hold secrets (the DH output), so the buffer
 * is wiped on release. */
typedef struct labeled {
  uint8_t stack[STACK_LABELED];
  uint8_t *buf;
  size_t len;
} labeled_t;

/* [I2OSP(L, 2) when with_len] || "HPKE-v1" || suite || label || data.
 * datalen is bounded by the callers (at most SYNOD_HPKE_MAX_INFO + 65). */
static int labeled_build(labeled_t *l, int with_len, size_t outlen,
                         const uint8_t *suite, size_t suitelen,
                         const char *label, const uint8_t *data,
                         size_t datalen) {
  size_t labellen = strlen(label);
  size_t len =
      (with_len ? 2 : 0) + sizeof version_label + suitelen + labellen + datalen;
  l->buf = len <= sizeof l->stack ? l->stack : malloc(len);
  l->len = len;
  if (!l->buf)
    return SYNOD_ENOMEM;
  uint8_t *p = l->buf;
  if (with_len) {
    *p++ = (uint8_t)(outlen >> 8);
    *p++ = (uint8_t)(outlen & 0xff);
  }
  memcpy(p, version_label, sizeof version_label);
  p += sizeof version_label;
  memcpy(p, suite, suitelen);
  p += suitelen;
  memcpy(p, label, labellen);
  p += labellen;
  if (datalen)
    memcpy(p, data, datalen);
  return 0;
}

static void labeled_free(labeled_t *l) {
  if (!l->buf)
    return;
  synod_wipe(l->buf, l->len);
  if (l->buf != l->stack)
    free(l->buf);
  l->buf = NULL;
}

/* LabeledExtract(salt, label, ikm) (section 4). */
static int labeled_extract(uint8_t prk[static SYNOD_SHA256_BYTES],
                           const uint8_t *suite, size_t suitelen,
                           const uint8_t *salt, size_t saltlen,
                           const char *label, const uint8_t *ikm,
                           size_t ikmlen) {
  labeled_t l;
  int rc = labeled_build(&l, 0, 0, suite, suitelen, label, ikm, ikmlen);
  if (rc == 0)
    rc = synod_hkdf_sha256_extract(prk, salt, saltlen, l.buf, l.len);
  labeled_free(&l);
  return rc;
}

/* LabeledExpand(prk, label, info, L) (section 4); L fits in two bytes
 * because every caller keeps it at most 255 * Nh. */
static int labeled_expand(uint8_t *out, size_t outlen,
                          const uint8_t prk[static SYNOD_SHA256_BYTES],
                          const uint8_t *suite, size_t suitelen,
                          const char *label, const uint8_t *info,
                          size_t infolen) {
  labeled_t l;
  int rc = labeled_build(&l, 1, outlen, suite, suitelen, label, info, infolen);
  if (rc == 0)
    rc = synod_hkdf_sha256_expand(out, outlen, prk, SYNOD_SHA256_BYTES, l.buf,
                                  l.len);
  labeled_free(&l);
  return rc;
}

/* --- DHKEM(X25519, HKDF-SHA256) (section 4.1) ------------------------------ */

int synod_hpke_derive_keypair(uint8_t pk[static SYNOD_X25519_BYTES],
                              uint8_t sk[static SYNOD_X25519_BYTES],
                              const uint8_t *ikm, size_t ikmlen) {
  uint8_t dkp_prk[SYNOD_SHA256_BYTES];
  if (!ikm || ikmlen < SYNOD_X25519_BYTES)
    return SYNOD_EINVAL;
  if (ikmlen > SYNOD_HPKE_MAX_INFO)
    return SYNOD_ETOOBIG;
  /* Section 7.1.3: for X25519 the expanded bytes are the secret key as is;
   * X25519 clamps when it uses it. */
  int rc = labeled_extract(dkp_prk, kem_suite, sizeof kem_suite, NULL, 0,
                           "dkp_prk", ikm, ikmlen);
  if (rc == 0)
    rc = labeled_expand(sk, SYNOD_X25519_BYTES, dkp_prk, kem_suite,
                        sizeof kem_suite, "sk", NULL, 0);
  if (rc == 0)
    rc = synod_x25519_public(pk, sk);
  synod_wipe(dkp_prk, sizeof dkp_prk);
  if (rc != 0)
    synod_wipe(sk, SYNOD_X25519_BYTES);
  return rc;
}

/* ExtractAndExpand(dh, kem_context) with kem_context = enc || pkRm. */
static int extract_and_expand(uint8_t shared[static SYNOD_HPKE_SECRET_BYTES],
                              const uint8_t dh[static SYNOD_X25519_BYTES],
                              const uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                              const uint8_t pk_r[static SYNOD_X25519_BYTES]) {
  uint8_t eae_prk[SYNOD_SHA256_BYTES];
  uint8_t kem_context[SYNOD_HPKE_ENC_BYTES + SYNOD_X25519_BYTES];
  memcpy(kem_context, enc, SYNOD_HPKE_ENC_BYTES);
  memcpy(kem_context + SYNOD_HPKE_ENC_BYTES, pk_r, SYNOD_X25519_BYTES);
  int rc = labeled_extract(eae_prk, kem_suite, sizeof kem_suite, NULL, 0,
                           "eae_prk", dh, SYNOD_X25519_BYTES);
  if (rc == 0)
    rc = labeled_expand(shared, SYNOD_HPKE_SECRET_BYTES, eae_prk, kem_suite,
                        sizeof kem_suite, "shared_secret", kem_context,
                        sizeof kem_context);
  synod_wipe(eae_prk, sizeof eae_prk);
  return rc;
}

int synod_hpke_encap(uint8_t shared_secret[static SYNOD_HPKE_SECRET_BYTES],
                     uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                     const uint8_t pk_r[static SYNOD_X25519_BYTES],
                     const uint8_t *sk_e) {
  uint8_t ske[SYNOD_X25519_BYTES], dh[SYNOD_X25519_BYTES];
  int rc;
  if (sk_e) {
    memcpy(ske, sk_e, sizeof ske);
    rc = synod_x25519_public(enc, ske);
  } else {
    rc = synod_x25519_keygen(enc, ske);
  }
  if (rc != 0)
    goto out;
  /* A low-order pk_r gives an all-zero DH output, which synod_x25519()
   * refuses (section 7.1.4). */
  if ((rc = synod_x25519(dh, ske, pk_r)) != 0)
    goto out;
  rc = extract_and_expand(shared_secret, dh, enc, pk_r);
out:
  synod_wipe(ske, sizeof ske);
  synod_wipe(dh, sizeof dh);
  if (rc != 0) {
    synod_wipe(shared_secret, SYNOD_HPKE_SECRET_BYTES);
    synod_wipe(enc, SYNOD_HPKE_ENC_BYTES);
  }
  return rc;
}

int synod_hpke_decap(uint8_t shared_secret[static SYNOD_HPKE_SECRET_BYTES],
                     const uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                     const uint8_t sk_r[static SYNOD_X25519_BYTES]) {
  uint8_t dh[SYNOD_X25519_BYTES], pk_r[SYNOD_X25519_BYTES];
  int rc = synod_x25519(dh, sk_r, enc);
  if (rc != 0) {
    rc = SYNOD_EDECRYPT; /* enc came off the wire: a low-order point */
    goto out;
  }
  if ((rc = synod_x25519_public(pk_r, sk_r)) != 0)
    goto out;
  rc = extract_and_expand(shared_secret, dh, enc, pk_r);
out:
  synod_wipe(dh, sizeof dh);
  if (rc != 0)
    synod_wipe(shared_secret, SYNOD_HPKE_SECRET_BYTES);
  return rc;
}

/* --- key schedule (section 5.1) -------------------------------------------- */

int synod_hpke_key_schedule(
    synod_hpke_ctx_t *ctx, synod_hpke_aead_t aead,
    const uint8_t shared_secret[static SYNOD_HPKE_SECRET_BYTES],
    const uint8_t *info, size_t infolen) {
  const size_t nk = synod_hpke_aead_key_bytes(aead);
  uint8_t suite[HPKE_SUITE_BYTES];
  /* mode || psk_id_hash || info_hash */
  uint8_t ksc[1 + 2 * SYNOD_SHA256_BYTES];
  uint8_t secret[SYNOD_SHA256_BYTES];
  if (!ctx || nk == 0 || (infolen && !info))
    return SYNOD_EINVAL;
  if (infolen > SYNOD_HPKE_MAX_INFO)
    return SYNOD_ETOOBIG;
  hpke_suite(suite, aead);
  memset(ctx, 0, sizeof *ctx);
  ctx->aead = aead;
  ksc[0] = SYNOD_HPKE_MODE_BASE;
  /* mode_base: psk and psk_id are both the empty string (section 5.1.1). */
  int rc = labeled_extract(ksc + 1, suite, sizeof suite, NULL, 0, "psk_id_hash",
                           NULL, 0);
  if (rc == 0)
    rc = labeled_extract(ksc + 1 + SYNOD_SHA256_BYTES, suite, sizeof suite,
                         NULL, 0, "info_hash", info, infolen);
  if (rc == 0)
    rc = labeled_extract(secret, suite, sizeof suite, shared_secret,
                         SYNOD_HPKE_SECRET_BYTES, "secret", NULL, 0);
  if (rc == 0)
    rc = labeled_expand(ctx->key, nk, secret, suite, sizeof suite, "key", ksc,
                        sizeof ksc);
  if (rc == 0)
    rc = labeled_expand(ctx->base_nonce, SYNOD_HPKE_NONCE_BYTES, secret, suite,
                        sizeof suite, "base_nonce", ksc, sizeof ksc);
  if (rc == 0)
    rc = labeled_expand(ctx->exporter_secret, SYNOD_HPKE_SECRET_BYTES, secret,
                        suite, sizeof suite, "exp", ksc, sizeof ksc);
  synod_wipe(secret, sizeof secret);
  if (rc != 0)
    synod_hpke_ctx_wipe(ctx);
  return rc;
}

int synod_hpke_setup_base_s(synod_hpke_ctx_t *ctx,
                            uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                            synod_hpke_aead_t aead, const uint8_t *info,
                            size_t infolen,
                            const uint8_t pk_r[static SYNOD_X25519_BYTES],
                            const uint8_t *sk_e) {
  uint8_t shared[SYNOD_HPKE_SECRET_BYTES];
  if (!ctx || synod_hpke_aead_key_bytes(aead) == 0 || (infolen && !info))
    return SYNOD_EINVAL;
  if (infolen > SYNOD_HPKE_MAX_INFO)
    return SYNOD_ETOOBIG;
  int rc = synod_hpke_encap(shared, enc, pk_r, sk_e);
  if (rc == 0)
    rc = synod_hpke_key_schedule(ctx, aead, shared, info, infolen);
  synod_wipe(shared, sizeof shared);
  if (rc != 0) {
    synod_hpke_ctx_wipe(ctx);
    synod_wipe(enc, SYNOD_HPKE_ENC_BYTES);
  }
  return rc;
}

int synod_hpke_setup_base_r(synod_hpke_ctx_t *ctx, synod_hpke_aead_t aead,
                            const uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                            const uint8_t *info, size_t infolen,
                            const uint8_t sk_r[static SYNOD_X25519_BYTES]) {
  uint8_t shared[SYNOD_HPKE_SECRET_BYTES];
  if (!ctx || synod_hpke_aead_key_bytes(aead) == 0 || (infolen && !info))
    return SYNOD_EINVAL;
  if (infolen > SYNOD_HPKE_MAX_INFO)
    return SYNOD_ETOOBIG;
  int rc = synod_hpke_decap(shared, enc, sk_r);
  if (rc == 0)
    rc = synod_hpke_key_schedule(ctx, aead, shared, info, infolen);
  synod_wipe(shared, sizeof shared);
  if (rc != 0)
    synod_hpke_ctx_wipe(ctx);
  return rc;
}

/* --- encryption context (section 5.2) --------------------------------------- */

/* ComputeNonce(seq): base_nonce XOR I2OSP(seq, Nn). seq < 2^64, so only the
 * last eight bytes change. */
static void compute_nonce(uint8_t nonce[static SYNOD_HPKE_NONCE_BYTES],
                          const synod_hpke_ctx_t *ctx) {
  memcpy(nonce, ctx->base_nonce, SYNOD_HPKE_NONCE_BYTES);
  for (size_t i = 0; i < 8; i++)
    nonce[SYNOD_HPKE_NONCE_BYTES - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

/* The RFC's limit is 2^96 - 1 messages; a 64-bit counter stops earlier, at
 * UINT64_MAX, which it never reaches in practice and never wraps past. */
static int seq_check(const synod_hpke_ctx_t *ctx) {
  return ctx->seq == UINT64_MAX ? SYNOD_ETOOBIG : 0;
}

int synod_hpke_seal(synod_hpke_ctx_t *ctx, uint8_t *ct, const uint8_t *pt,
                    size_t ptlen, const uint8_t *aad, size_t aadlen) {
  uint8_t nonce[SYNOD_HPKE_NONCE_BYTES];
  if (!ctx || synod_hpke_aead_key_bytes(ctx->aead) == 0)
    return SYNOD_EINVAL;
  int rc = seq_check(ctx);
  if (rc != 0)
    return rc;
  compute_nonce(nonce, ctx);
  rc = synod_aead_encrypt(aead_alg(ctx->aead), ct, pt, ptlen, aad, aadlen,
                          nonce, ctx->key);
  if (rc == 0)
    ctx->seq++;
  return rc;
}

int synod_hpke_open(synod_hpke_ctx_t *ctx, uint8_t *pt, const uint8_t *ct,
                    size_t ctlen, const uint8_t *aad, size_t aadlen) {
  uint8_t nonce[SYNOD_HPKE_NONCE_BYTES];
  if (!ctx || synod_hpke_aead_key_bytes(ctx->aead) == 0)
    return SYNOD_EINVAL;
  int rc = seq_check(ctx);
  if (rc != 0)
    return rc;
  compute_nonce(nonce, ctx);
  rc = synod_aead_decrypt(aead_alg(ctx->aead), pt, ct, ctlen, aad, aadlen,
                          nonce, ctx->key);
  if (rc == 0)
    ctx->seq++;
  return rc;
}

int synod_hpke_export(const synod_hpke_ctx_t *ctx, uint8_t *out, size_t outlen,
                      const uint8_t *exporter_context,
                      size_t exporter_contextlen) {
  uint8_t suite[HPKE_SUITE_BYTES];
  if (!ctx || synod_hpke_aead_key_bytes(ctx->aead) == 0 ||
      outlen > SYNOD_HPKE_MAX_EXPORT || (outlen && !out) ||
      (exporter_contextlen && !exporter_context))
    return SYNOD_EINVAL;
  if (exporter_contextlen > SYNOD_HPKE_MAX_INFO)
    return SYNOD_ETOOBIG;
  hpke_suite(suite, ctx->aead);
  return labeled_expand(out, outlen, ctx->exporter_secret, suite, sizeof suite,
                        "sec", exporter_context, exporter_contextlen);
}

void synod_hpke_ctx_wipe(synod_hpke_ctx_t *ctx) {
  if (ctx)
    synod_wipe(ctx, sizeof *ctx);
}

/* --- single shot (section 6.1) ---------------------------------------------- */

/* Inputs the AEAD layer refuses anyway; checked first so that the output
 * length arithmetic below cannot overflow. */
#define HPKE_PT_MAX ((size_t)INT_MAX - 64)

int synod_hpke_seal_base(uint8_t *out, synod_hpke_aead_t aead,
                         const uint8_t *pt, size_t ptlen, const uint8_t *aad,
                         size_t aadlen, const uint8_t *info, size_t infolen,
                         const uint8_t pk_r[static SYNOD_X25519_BYTES]) {
  synod_hpke_ctx_t ctx;
  if (!out)
    return SYNOD_EINVAL;
  if (ptlen > HPKE_PT_MAX)
    return SYNOD_ETOOBIG;
  int rc = synod_hpke_setup_base_s(&ctx, out, aead, info, infolen, pk_r, NULL);
  if (rc != 0)
    return rc;
  rc =
      synod_hpke_seal(&ctx, out + SYNOD_HPKE_ENC_BYTES, pt, ptlen, aad, aadlen);
  synod_hpke_ctx_wipe(&ctx);
  if (rc != 0)
    synod_wipe(out, SYNOD_HPKE_OVERHEAD + ptlen);
  return rc;
}

int synod_hpke_open_base(uint8_t *pt, synod_hpke_aead_t aead, const uint8_t *in,
                         size_t inlen, const uint8_t *aad, size_t aadlen,
                         const uint8_t *info, size_t infolen,
                         const uint8_t sk_r[static SYNOD_X25519_BYTES]) {
  synod_hpke_ctx_t ctx;
  if (!in)
    return SYNOD_EINVAL;
  if (inlen < SYNOD_HPKE_OVERHEAD)
    return SYNOD_ETRUNC;
  int rc = synod_hpke_setup_base_r(&ctx, aead, in, info, infolen, sk_r);
  if (rc == 0)
    rc = synod_hpke_open(&ctx, pt, in + SYNOD_HPKE_ENC_BYTES,
                         inlen - SYNOD_HPKE_ENC_BYTES, aad, aadlen);
  synod_hpke_ctx_wipe(&ctx);
  if (rc != 0 && pt)
    synod_wipe(pt, inlen - SYNOD_HPKE_OVERHEAD);
  return rc;
}
