/*
 * HPKE (RFC 9180), base mode (mode_base, 0x00) only, with
 * DHKEM(X25519, HKDF-SHA256) (kem_id 0x0020), HKDF-SHA256 (kdf_id 0x0001)
 * and ChaCha20-Poly1305 (aead_id 0x0003) or AES-128-GCM (aead_id 0x0001).
 * The PSK and auth modes are deliberately absent.
 *
 * Keys are raw X25519 keys (synod_x25519_keygen() makes a pair). All
 * buffers are caller-owned and only used during the call. Every function
 * returns 0 or a negative SYNOD_E* code (synod/err.h); on failure, outputs
 * are wiped and a context is left as it was (a failed setup leaves it
 * wiped).
 */
#ifndef SYNOD_HPKE_H
#define SYNOD_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "synod/crypto.h"
#include "synod/err.h"

#define SYNOD_HPKE_MODE_BASE         0x00
#define SYNOD_HPKE_KEM_X25519_SHA256 0x0020
#define SYNOD_HPKE_KDF_HKDF_SHA256   0x0001

#define SYNOD_HPKE_ENC_BYTES     32 /* Nenc: the encapsulated key, pkE */
#define SYNOD_HPKE_SECRET_BYTES  32 /* Nsecret, Nh */
#define SYNOD_HPKE_NONCE_BYTES   12 /* Nn */
#define SYNOD_HPKE_TAG_BYTES     16 /* Nt */
#define SYNOD_HPKE_KEY_MAX_BYTES 32 /* the largest Nk supported */
/* Single-shot ciphertext: enc || AEAD ciphertext || tag. */
#define SYNOD_HPKE_OVERHEAD (SYNOD_HPKE_ENC_BYTES + SYNOD_HPKE_TAG_BYTES)
/* Longest info or exporter_context accepted (SYNOD_ETOOBIG beyond). */
#define SYNOD_HPKE_MAX_INFO (64u * 1024u)
/* Largest Export() length: 255 * Nh (RFC 9180 section 5.3). */
#define SYNOD_HPKE_MAX_EXPORT (255u * SYNOD_HPKE_SECRET_BYTES)

/* AEAD identifiers, valued as the RFC 9180 registry. */
typedef enum synod_hpke_aead {
  SYNOD_HPKE_AEAD_AES128GCM = 0x0001,
  SYNOD_HPKE_AEAD_CHACHA20POLY1305 = 0x0003,
} synod_hpke_aead_t;

/*
 * An encryption context, sender's or recipient's (RFC 9180 section 5.2).
 * Holds secrets: end every use with synod_hpke_ctx_wipe(). The fields are
 * public for inspection in tests; do not change them. A context must not be
 * used by two threads at once, and a sender context and a recipient
 * context are not interchangeable (the sequence numbers would disagree).
 */
typedef struct synod_hpke_ctx {
  synod_hpke_aead_t aead;
  uint8_t key[SYNOD_HPKE_KEY_MAX_BYTES]; /* first Nk bytes used */
  uint8_t base_nonce[SYNOD_HPKE_NONCE_BYTES];
  uint64_t seq; /* next sequence number */
  uint8_t exporter_secret[SYNOD_HPKE_SECRET_BYTES];
} synod_hpke_ctx_t;

/* Nk of aead (16 or 32), or 0 for an unknown identifier. */
size_t synod_hpke_aead_key_bytes(synod_hpke_aead_t aead);

/*
 * DeriveKeyPair (RFC 9180 section 7.1.3) for X25519: a key pair determined
 * by ikm. ikm must hold at least 32 bytes (Nsk) of entropy; shorter input
 * gives SYNOD_EINVAL.
 */
SYNOD_WUR int synod_hpke_derive_keypair(uint8_t pk[static SYNOD_X25519_BYTES],
                                        uint8_t sk[static SYNOD_X25519_BYTES],
                                        const uint8_t *ikm, size_t ikmlen);

/*
 * The KEM and the key schedule on their own, as RFC 9180 sections 4.1 and
 * 5.1 define them; setup_base_s/r below are built from these. They exist
 * for the test vectors and for protocols that need the pieces.
 *
 * encap: shared_secret and enc for pk_r; sk_e as for setup_base_s.
 * decap: shared_secret from enc and sk_r; a low-order enc gives
 * SYNOD_EDECRYPT. key_schedule: ctx in mode_base (empty psk and psk_id)
 * from shared_secret and info. Errors as for setup_base_s.
 */
SYNOD_WUR int
synod_hpke_encap(uint8_t shared_secret[static SYNOD_HPKE_SECRET_BYTES],
                 uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                 const uint8_t pk_r[static SYNOD_X25519_BYTES],
                 const uint8_t *sk_e);

SYNOD_WUR int
synod_hpke_decap(uint8_t shared_secret[static SYNOD_HPKE_SECRET_BYTES],
                 const uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                 const uint8_t sk_r[static SYNOD_X25519_BYTES]);

SYNOD_WUR int synod_hpke_key_schedule(
    synod_hpke_ctx_t *ctx, synod_hpke_aead_t aead,
    const uint8_t shared_secret[static SYNOD_HPKE_SECRET_BYTES],
    const uint8_t *info, size_t infolen);

/*
 * SetupBaseS: sender context for recipient key pk_r, with the encapsulated
 * key written to enc (send it with the ciphertexts). info (may be NULL when
 * infolen is 0) binds the context to the application's use.
 *
 * sk_e is NULL in normal use: a fresh ephemeral key is drawn from the
 * CSPRNG. A caller-given 32-byte ephemeral secret exists for test vectors
 * only; reusing one destroys the scheme's security.
 *
 * Errors: SYNOD_EINVAL (unknown aead, NULL argument), SYNOD_ETOOBIG (info
 * over SYNOD_HPKE_MAX_INFO), SYNOD_ECRYPTO (pk_r of low order, so the DH
 * output is zero, or a library failure).
 */
SYNOD_WUR int synod_hpke_setup_base_s(
    synod_hpke_ctx_t *ctx, uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
    synod_hpke_aead_t aead, const uint8_t *info, size_t infolen,
    const uint8_t pk_r[static SYNOD_X25519_BYTES], const uint8_t *sk_e);

/*
 * SetupBaseR: recipient context from enc (as received) and the recipient's
 * secret key sk_r. A low-order enc gives SYNOD_EDECRYPT, like any other
 * tampering; SYNOD_EINVAL and SYNOD_ETOOBIG as for setup_base_s.
 */
SYNOD_WUR int
synod_hpke_setup_base_r(synod_hpke_ctx_t *ctx, synod_hpke_aead_t aead,
                        const uint8_t enc[static SYNOD_HPKE_ENC_BYTES],
                        const uint8_t *info, size_t infolen,
                        const uint8_t sk_r[static SYNOD_X25519_BYTES]);

/*
 * Seal the next message: ct receives ptlen + SYNOD_HPKE_TAG_BYTES bytes
 * (ct may equal pt). The sequence number advances only on success.
 * SYNOD_ETOOBIG once the sequence number is exhausted (2^64 - 1 messages;
 * the context is then spent), or for an input over INT_MAX bytes.
 */
SYNOD_WUR int synod_hpke_seal(synod_hpke_ctx_t *ctx, uint8_t *ct,
                              const uint8_t *pt, size_t ptlen,
                              const uint8_t *aad, size_t aadlen);

/*
 * Open the next message: pt receives ctlen - SYNOD_HPKE_TAG_BYTES bytes
 * (pt may equal ct). SYNOD_EDECRYPT when the tag does not verify (pt is
 * wiped and the sequence number does not advance, so the next genuine
 * message still opens), SYNOD_ETRUNC when ctlen < SYNOD_HPKE_TAG_BYTES,
 * SYNOD_ETOOBIG when the sequence number is exhausted.
 */
SYNOD_WUR int synod_hpke_open(synod_hpke_ctx_t *ctx, uint8_t *pt,
                              const uint8_t *ct, size_t ctlen,
                              const uint8_t *aad, size_t aadlen);

/*
 * Export (RFC 9180 section 5.3): outlen bytes (at most
 * SYNOD_HPKE_MAX_EXPORT, else SYNOD_EINVAL) derived from the context's
 * exporter secret and exporter_context (at most SYNOD_HPKE_MAX_INFO bytes).
 */
SYNOD_WUR int synod_hpke_export(const synod_hpke_ctx_t *ctx, uint8_t *out,
                                size_t outlen, const uint8_t *exporter_context,
                                size_t exporter_contextlen);

/* Wipes every secret in ctx. ctx may be NULL. */
void synod_hpke_ctx_wipe(synod_hpke_ctx_t *ctx);

/*
 * Single shot: SetupBaseS to pk_r then one Seal. out receives
 * SYNOD_HPKE_OVERHEAD + ptlen bytes: enc, then ciphertext and tag. out must
 * not overlap pt. Errors as for setup_base_s and seal.
 */
SYNOD_WUR int
synod_hpke_seal_base(uint8_t *out, synod_hpke_aead_t aead, const uint8_t *pt,
                     size_t ptlen, const uint8_t *aad, size_t aadlen,
                     const uint8_t *info, size_t infolen,
                     const uint8_t pk_r[static SYNOD_X25519_BYTES]);

/*
 * Single shot: SetupBaseR from the first SYNOD_HPKE_ENC_BYTES of in, then
 * one Open of the rest. pt receives inlen - SYNOD_HPKE_OVERHEAD bytes and
 * must not overlap in. SYNOD_ETRUNC when inlen < SYNOD_HPKE_OVERHEAD,
 * SYNOD_EDECRYPT for a wrong key, info, aad or any tampering (pt wiped).
 */
SYNOD_WUR int
synod_hpke_open_base(uint8_t *pt, synod_hpke_aead_t aead, const uint8_t *in,
                     size_t inlen, const uint8_t *aad, size_t aadlen,
                     const uint8_t *info, size_t infolen,
                     const uint8_t sk_r[static SYNOD_X25519_BYTES]);

#endif
