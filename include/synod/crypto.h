/*
 * Cryptographic primitives over OpenSSL 3.0 EVP.
 *
 * All buffers are caller-owned and only read or written during the call.
 * Argument order follows libsodium: outputs first, then inputs, each length
 * beside its buffer, keys last. Every function returns 0 or a negative
 * SYNOD_E* code (synod/err.h).
 */
#ifndef SYNOD_CRYPTO_H
#define SYNOD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "synod/err.h"

#define SYNOD_ED25519_PUBLIC_BYTES       32
#define SYNOD_ED25519_SECRET_BYTES       32 /* the RFC 8032 seed */
#define SYNOD_ED25519_SIG_BYTES          64
#define SYNOD_X25519_BYTES               32
#define SYNOD_SHA256_BYTES               32
#define SYNOD_AEAD_NONCE_BYTES           12
#define SYNOD_AEAD_TAG_BYTES             16
#define SYNOD_CHACHA20POLY1305_KEY_BYTES 32
#define SYNOD_AES128GCM_KEY_BYTES        16

/* Fill buf with len bytes from the OpenSSL CSPRNG. */
SYNOD_WUR int synod_random(uint8_t *buf, size_t len);

/* Overwrite len bytes at p with zeros in a way the compiler keeps. */
void synod_wipe(void *p, size_t len);

/* Constant-time comparison: 1 if the len bytes at a and b are equal, else 0. */
int synod_memeq(const void *a, const void *b, size_t len);

/* SHA-256 of in[0..inlen). */
int synod_sha256(uint8_t out[static SYNOD_SHA256_BYTES], const uint8_t *in,
                 size_t inlen);

/* --- Ed25519 (RFC 8032, pure) --------------------------------------------- */

/* New key pair: sk is the 32-byte seed. */
SYNOD_WUR int
synod_ed25519_keygen(uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES],
                     uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]);

/* The public key of seed sk. */
SYNOD_WUR int
synod_ed25519_public(uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES],
                     const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]);

int synod_ed25519_sign(uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                       const uint8_t *m, size_t mlen,
                       const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]);

/*
 * A signing key prepared once for many signatures. synod_ed25519_sign()
 * derives the key pair from the seed on every call, which costs a scalar
 * multiplication as large as the signature itself; a relay that signs every
 * lookup answer keeps a signer for its key instead. The signer holds the
 * secret in OpenSSL's key object until synod_ed25519_signer_free(), which
 * releases (and OpenSSL clears) it. sk is copied; the caller may wipe it.
 */
typedef struct synod_ed25519_signer synod_ed25519_signer_t;

SYNOD_WUR int
synod_ed25519_signer_new(synod_ed25519_signer_t **out,
                         const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]);

void synod_ed25519_signer_free(synod_ed25519_signer_t *s);

/* As synod_ed25519_sign(), with the prepared key. */
SYNOD_WUR int
synod_ed25519_signer_sign(const synod_ed25519_signer_t *s,
                          uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                          const uint8_t *m, size_t mlen);

/* 0 if sig is a valid signature of m by pk, else SYNOD_EVERIFY. */
SYNOD_WUR int
synod_ed25519_verify(const uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                     const uint8_t *m, size_t mlen,
                     const uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]);

/* --- X25519 (RFC 7748) ------------------------------------------------------ */

SYNOD_WUR int synod_x25519_keygen(uint8_t pk[static SYNOD_X25519_BYTES],
                                  uint8_t sk[static SYNOD_X25519_BYTES]);

SYNOD_WUR int synod_x25519_public(uint8_t pk[static SYNOD_X25519_BYTES],
                                  const uint8_t sk[static SYNOD_X25519_BYTES]);

/* Diffie-Hellman. Fails with SYNOD_ECRYPTO when the result is all zeros
 * (a low-order peer key), as RFC 7748 section 6.1 allows and RFC 9180
 * section 7.1.4 requires. */
SYNOD_WUR int synod_x25519(uint8_t shared[static SYNOD_X25519_BYTES],
                           const uint8_t sk[static SYNOD_X25519_BYTES],
                           const uint8_t peer_pk[static SYNOD_X25519_BYTES]);

/* --- HKDF-SHA256 (RFC 5869) -------------------------------------------------- */

int synod_hkdf_sha256_extract(uint8_t prk[static SYNOD_SHA256_BYTES],
                              const uint8_t *salt, size_t saltlen,
                              const uint8_t *ikm, size_t ikmlen);

/* outlen at most 255 * 32, else SYNOD_EINVAL. */
int synod_hkdf_sha256_expand(uint8_t *out, size_t outlen, const uint8_t *prk,
                             size_t prklen, const uint8_t *info,
                             size_t infolen);

/* Extract then expand. */
int synod_hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt,
                      size_t saltlen, const uint8_t *ikm, size_t ikmlen,
                      const uint8_t *info, size_t infolen);

/* --- AEAD (RFC 8439 ChaCha20-Poly1305, AES-128-GCM) -------------------------- */

typedef enum synod_aead {
  SYNOD_AEAD_CHACHA20POLY1305 = 0,
  SYNOD_AEAD_AES128GCM = 1,
} synod_aead_t;

/* Key length of alg in bytes (32 or 16). */
size_t synod_aead_key_bytes(synod_aead_t alg);

/* c receives mlen + SYNOD_AEAD_TAG_BYTES bytes: ciphertext then tag.
 * c may equal m (in place). */
int synod_aead_encrypt(synod_aead_t alg, uint8_t *c, const uint8_t *m,
                       size_t mlen, const uint8_t *ad, size_t adlen,
                       const uint8_t nonce[static SYNOD_AEAD_NONCE_BYTES],
                       const uint8_t *key);

/* m receives clen - SYNOD_AEAD_TAG_BYTES bytes. SYNOD_EDECRYPT when the tag
 * does not verify (m is then wiped), SYNOD_ETRUNC when clen < tag size. */
SYNOD_WUR int
synod_aead_decrypt(synod_aead_t alg, uint8_t *m, const uint8_t *c, size_t clen,
                   const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[static SYNOD_AEAD_NONCE_BYTES],
                   const uint8_t *key);

/* --- scrypt (RFC 7914), for passphrase-encrypted key files -------------------- */

/* Memory synod_scrypt() may use (128 r (N + 2) + 128 r p bytes): 1 GiB and
 * 1 MiB, enough for N = 2^20, r = 8. Larger parameters give SYNOD_ETOOBIG,
 * so a hostile key file cannot make the client allocate without bound. N
 * not a power of two above 1, r or p zero, or outlen zero give SYNOD_EINVAL. */
#define SYNOD_SCRYPT_MAX_MEM ((UINT64_C(1) << 30) + (UINT64_C(1) << 20))

SYNOD_WUR int synod_scrypt(uint8_t *out, size_t outlen, const char *pass,
                           size_t passlen, const uint8_t *salt, size_t saltlen,
                           uint64_t n, uint32_t r, uint32_t p);

#endif
