/*
 * Key announcements and their hash chain (proto/README.md 7.1; DESIGN.md 3).
 * Pure: bytes and values in, decisions out; no clock of its own (the
 * caller passes `now`, unix seconds UTC).
 *
 * An announcement is a user's signed statement of their keys. It travels
 * as Announcement{body, signature, continuity_signature}:
 *   body                  the exact AnnouncementBody bytes the user signed
 *   signature             identity_key over "synod/v1/announcement" || 0 ||
 * body continuity_signature  only on an identity change without reset: the
 *                         PREVIOUS identity key over
 *                         "synod/v1/continuity" || 0 || the same body bytes
 * The announcement hash is SHA-256 of the body bytes alone (README 6.3), so
 * adding or dropping the continuity signature never changes the hash, and
 * prev_hash, countersignatures and lookup heads all name exactly what the
 * user signed.
 *
 * Choices a reviewer will ask about:
 *  - Verify first, parse second, but the key is inside the body. An
 *    announcement is self-signed: the identity key that verifies it is a
 *    field of the signed body, so the body is parsed once (by protobuf-c,
 *    over at most SYNOD_SIG_MAX_BYTES) to find the key, and nothing else
 *    from it is looked at, copied or acted on before the signature over the
 *    received bytes verifies. A valid signature only proves the body is
 *    internally consistent (whoever holds identity_key signed it); whether
 *    identity_key is the user's key is what the chain, the home relay's
 *    countersignature and the quorum decide.
 *  - Size rules (EPARSE): identity_key 32 bytes, signature 64, continuity
 *    signature absent or 64, user_id valid (synod/userid.h), 1 to 16 devices
 *    each with a 32-byte X25519 key and a device_id unique in the body,
 *    version >= 1, prev_hash empty at version 1 and 32 bytes above it.
 *    Device names are not bounded beyond the frame limit and are not
 *    returned in synod_announce_info_t; parse the verified body for them.
 *  - Structure rules (ECHAIN) checkable on one announcement alone: a
 *    version 1 announcement has no reset and no continuity signature; a
 *    reset carries no continuity signature.
 *  - Clock (EINVAL): time more than SYNOD_ANNOUNCE_MAX_SKEW seconds after
 *    `now` is refused (README 7.1: 5 minutes). There is no lower bound: a
 *    head may legitimately be months old; freshness is a property of the
 *    relays' lookup answers, not of the user's statement. Within a chain a
 *    link's time must be >= its predecessor's (ECHAIN).
 *  - recovery_key is reserved (README 7.1: empty in v1, ignored by v1
 *    receivers): never set when signing, ignored when verifying.
 *  - Unknown fields in a body are kept (they are inside the hashed bytes)
 *    and ignored, as README 13 requires. Two bodies that differ only in
 *    encoding or in unknown fields are two statements (different hashes).
 *  - The continuity signature is checked with the previous link's key in
 *    synod_chain_check(), not in synod_announce_verify(): only the chain
 *    knows the previous key. A bad or missing continuity signature where
 *    one is required is ECHAIN (the link does not extend), as README 7.1
 *    rule 4 says, not EVERIFY.
 *
 * Ownership: every function below only reads its inputs during the call and
 * keeps no pointer to them. Returns 0 or a negative SYNOD_E* (synod/err.h).
 */
#ifndef SYNOD_ANNOUNCE_H
#define SYNOD_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/userid.h"

#define SYNOD_ANNOUNCE_MAX_DEVICES 16
/* Seconds a statement may be dated after the verifier's clock. */
#define SYNOD_ANNOUNCE_MAX_SKEW 300

/* One device key, as given to synod_announce_sign(). */
typedef struct synod_device {
  uint32_t device_id;
  uint8_t x25519_key[SYNOD_X25519_BYTES];
  const char *name; /* display label; NULL or "" for none; must be UTF-8 */
} synod_device_t;

/* What the user states. All pointers are borrowed for the call only. */
typedef struct synod_announce_params {
  const char *user_id;
  const synod_device_t *devices;
  size_t ndevices;  /* 1..SYNOD_ANNOUNCE_MAX_DEVICES */
  uint64_t version; /* >= 1 */
  uint64_t time;
  /* SHA-256 of the previous body; NULL exactly when version is 1. */
  const uint8_t *prev_hash;
  int reset; /* 1: the identity key changes without continuity */
} synod_announce_params_t;

/* A signed announcement this library built. body is malloc'd and owned by
 * the struct (synod_announcement_free); the struct itself may be copied
 * or moved, but then only one copy may be freed. */
typedef struct synod_announcement {
  uint8_t *body;
  size_t body_len;
  uint8_t signature[SYNOD_ED25519_SIG_BYTES];
  uint8_t continuity[SYNOD_ED25519_SIG_BYTES];
  int has_continuity;
} synod_announcement_t;

/* The verified content of one announcement. Plain values, no pointers. */
typedef struct synod_announce_info {
  char user_id[SYNOD_USERID_MAX + 1];
  uint8_t identity_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint64_t version;
  uint64_t time;
  uint8_t prev_hash[SYNOD_SHA256_BYTES]; /* all zero at version 1 */
  int reset;
  int has_continuity;
  size_t ndevices;
  struct {
    uint32_t device_id;
    uint8_t x25519_key[SYNOD_X25519_BYTES];
  } devices[SYNOD_ANNOUNCE_MAX_DEVICES];
  uint8_t hash[SYNOD_SHA256_BYTES]; /* SHA-256 of the body bytes */
} synod_announce_info_t;

/*
 * Builds the AnnouncementBody bytes for p and signs them with the identity
 * seed identity_sk. prev_identity_sk, when not NULL, is the previous
 * identity seed: it adds the continuity signature, and is only allowed when
 * its public key differs from identity_sk's and p->reset is 0. The body is
 * serialised once here and never again: what is signed is what travels.
 * On success *out owns a new body; on failure *out is zeroed.
 * Errors: SYNOD_EINVAL (parameters that synod_announce_verify() would
 * refuse, continuity with reset or with an unchanged key), SYNOD_ENOMEM,
 * SYNOD_ECRYPTO.
 */
SYNOD_WUR int synod_announce_sign(
    synod_announcement_t *out, const synod_announce_params_t *p,
    const uint8_t identity_sk[static SYNOD_ED25519_SECRET_BYTES],
    const uint8_t *prev_identity_sk);

/* Releases a's body and zeroes a; NULL is ignored. */
void synod_announcement_free(synod_announcement_t *a);

/* Points the wire message w at a's buffers (lent, not copied): w is valid
 * while a is, and must never be freed with protobuf-c. */
void synod_announcement_lend(Synod__V1__Announcement *w,
                             const synod_announcement_t *a);

/* SHA-256 of the exact body bytes: the announcement hash. */
int synod_announce_hash(uint8_t out[static SYNOD_SHA256_BYTES],
                        const uint8_t *body, size_t len);

/*
 * Verifies one announcement on its own: the identity signature over the
 * received body bytes, then the size, structure and clock rules listed at
 * the top. The continuity signature is only checked for size here.
 * On success *info holds the content and hash; on failure it is zeroed.
 * Errors: SYNOD_EPARSE (malformed body or sizes), SYNOD_EVERIFY (identity
 * signature), SYNOD_ECHAIN (structure), SYNOD_EINVAL (dated after
 * now + SYNOD_ANNOUNCE_MAX_SKEW), SYNOD_ENOMEM.
 */
SYNOD_WUR int synod_announce_verify(synod_announce_info_t *info,
                                    const Synod__V1__Announcement *a,
                                    uint64_t now);

/* The newest link of a chain someone holds (a relay's stored head, a
 * client's pin). */
typedef struct synod_chain_head {
  uint64_t version;
  uint8_t hash[SYNOD_SHA256_BYTES];
  uint8_t identity_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint64_t time; /* the head announcement's time */
} synod_chain_head_t;

/* The head held after accepting info. */
void synod_chain_head_from_info(synod_chain_head_t *h,
                                const synod_announce_info_t *info);

typedef enum synod_chain_result {
  SYNOD_CHAIN_NONE = 0,    /* set on errors other than a conflict */
  SYNOD_CHAIN_EXTENDS = 1, /* a newer head, every key change continuous */
  SYNOD_CHAIN_RESET,       /* a newer head, at least one link is a reset */
  SYNOD_CHAIN_EQUAL,       /* the links end at the held head itself */
  SYNOD_CHAIN_CONFLICT,    /* a link has the held version, another hash */
} synod_chain_result_t;

typedef struct synod_chain_outcome {
  synod_chain_result_t result;
  /* CONFLICT: index of the conflicting link. Other errors: index of the
   * link that failed, or nlinks when the sequence as a whole fails (head
   * below the held version). */
  size_t index;
  /* Links with reset set past the held head (with no held head: in all of
   * links, the anchor included, since nothing vouches for its key). */
  size_t resets;
  /* The newest link (EXTENDS, RESET, EQUAL) or the conflicting link. */
  synod_announce_info_t head;
} synod_chain_outcome_t;

/*
 * Checks that links[0..nlinks) (oldest first) are announcements of user_id
 * that form a chain and relate to held as follows.
 *
 *  1. Every link passes synod_announce_verify(now) and names user_id
 *     (ECHAIN otherwise).
 *  2. Consecutive links: version exactly previous + 1, prev_hash = hash of
 *     the previous body, time >= previous time, and the key rule: same
 *     identity key -> reset false and no continuity signature; changed key
 *     and reset false -> continuity signature by the previous link's key
 *     over this body (label synod/v1/continuity); changed key and reset
 *     true -> no continuity signature. Any break: ECHAIN.
 *  3. held == NULL: links[0] is the anchor (a first lookup receives only
 *     the head), taken as is; result EXTENDS, or RESET when any link has
 *     reset set. A relay that insists on a chain from version 1 checks
 *     links[0]'s version itself.
 *  4. held != NULL:
 *     - a link with held->version and another hash: SYNOD_EEQUIVOCATION,
 *       result CONFLICT (the two bodies are evidence, not an update);
 *     - newest link below held->version: SYNOD_EROLLBACK;
 *     - a link with held->version and held->hash: the chain is anchored
 *       there; links after it are checked by rule 2;
 *     - otherwise links[0] must be held->version + 1 and extend held by
 *       rule 2 (with held's hash, key and time as "previous"): ECHAIN if
 *       not, including a gap (the asker fetches the missing links);
 *     - result EQUAL when the newest link is the held head, else EXTENDS or
 *       RESET (a reset link after the anchor).
 * On success and on SYNOD_EEQUIVOCATION *out is filled as documented
 * above; on other errors out->result is NONE and out->index names the
 * failing link. Errors: SYNOD_EINVAL (nlinks 0, bad user_id), those of
 * synod_announce_verify(), SYNOD_ECHAIN, SYNOD_EROLLBACK,
 * SYNOD_EEQUIVOCATION.
 */
SYNOD_WUR int synod_chain_check(synod_chain_outcome_t *out, const char *user_id,
                                const synod_chain_head_t *held,
                                const Synod__V1__Announcement *const *links,
                                size_t nlinks, uint64_t now);

#endif
