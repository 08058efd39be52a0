/*
 * Signed statements (DESIGN.md 5): an Ed25519 signature over
 *
 *     label || 0x00 || bytes
 *
 * where label is the fixed ASCII domain-separation label of the statement
 * kind and bytes are the exact bytes that travel on the wire. A signature
 * made for one kind never verifies as another, and nothing is ever
 * re-serialised before verifying: verify first, parse second.
 *
 * All buffers are caller-owned and only used during the call. Functions
 * return 0 or a negative SYNOD_E* code (synod/err.h).
 */
#ifndef SYNOD_SIG_H
#define SYNOD_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "synod/crypto.h"
#include "synod/err.h"

/* Largest statement accepted for signing or verifying (SYNOD_ETOOBIG
 * beyond), equal to the hard frame limit. */
#define SYNOD_SIG_MAX_BYTES (16u * 1024u * 1024u)

/* Statement kinds. The numbers are local to this library and never sent;
 * the labels are the contract (proto/README.md, 6.2). 0 is not a kind, so a
 * zero-initialised field is refused. */
typedef enum synod_sig_kind {
  SYNOD_SIG_CHANNEL_BINDING = 1, /* "synod/v1/channel-binding" */
  SYNOD_SIG_ANNOUNCEMENT,        /* "synod/v1/announcement" */
  SYNOD_SIG_CONTINUITY,          /* "synod/v1/continuity" */
  SYNOD_SIG_COUNTERSIGNATURE,    /* "synod/v1/countersignature" */
  SYNOD_SIG_LOOKUP_ANSWER,       /* "synod/v1/lookup-answer" */
  SYNOD_SIG_MESSAGE,             /* "synod/v1/message" */
  SYNOD_SIG_PURGE,               /* "synod/v1/purge" */
  SYNOD_SIG_DELIVERY_FAILURE,    /* "synod/v1/delivery-failure" */
} synod_sig_kind_t;

/* The label of kind: a static NUL-terminated ASCII string, or NULL for an
 * unknown kind. */
const char *synod_sig_label(synod_sig_kind_t kind);

/*
 * Signs label(kind) || 0x00 || bytes[0..len) with the Ed25519 seed sk.
 * bytes may be NULL when len is 0. On failure sig is zeroed.
 * Errors: SYNOD_EINVAL (unknown kind, NULL bytes with len > 0),
 * SYNOD_ETOOBIG (len > SYNOD_SIG_MAX_BYTES), SYNOD_ENOMEM, SYNOD_ECRYPTO.
 */
SYNOD_WUR int
synod_sig_sign(uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
               synod_sig_kind_t kind, const uint8_t *bytes, size_t len,
               const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]);

/* As synod_sig_sign(), with a prepared signer (crypto.h). */
SYNOD_WUR int synod_sig_sign_by(uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                                synod_sig_kind_t kind, const uint8_t *bytes,
                                size_t len,
                                const synod_ed25519_signer_t *signer);

/*
 * 0 if sig is pk's signature of label(kind) || 0x00 || bytes[0..len), else
 * SYNOD_EVERIFY. SYNOD_EINVAL, SYNOD_ETOOBIG and SYNOD_ENOMEM as for
 * synod_sig_sign; every non-zero result means "not verified".
 */
SYNOD_WUR int
synod_sig_verify(const uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                 synod_sig_kind_t kind, const uint8_t *bytes, size_t len,
                 const uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]);

#endif
