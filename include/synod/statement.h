/*
 * Relay statements of the key directory (proto/README.md 7.2, 7.3, 7.5):
 * the home relay's namespace countersignature, the lookup answer, and
 * equivocation proofs over those and over announcements. Pure: bytes and
 * values in, decisions out.
 *
 * Every statement travels as {body, signature}: body the exact bytes of a
 * *Body message as the signer produced them, signature Ed25519 over
 * label || 0x00 || body (synod/sig.h). Bodies are serialised once, when
 * signed, and never again.
 *
 * Choices a reviewer will ask about:
 *  - Countersignature (label synod/v1/countersignature): the relay that
 *    signs must be the user's home relay, i.e. relay_name equals the part
 *    of user_id after '@' (EDENIED otherwise): only the namespace authority
 *    for @X may vouch for @X's announcements. The caller supplies the key
 *    it pinned for that relay; the body names it, the key proves it.
 *    A countersignature dated more than 5 minutes after `now` is refused
 *    (EINVAL), as for announcements; there is no lower bound (it vouches
 *    for a chain link once and forever).
 *  - Lookup answer (label synod/v1/lookup-answer): version 0 means "none
 *    known" and comes with an empty head_hash; any other version with a
 *    32-byte head_hash (EPARSE otherwise). Freshness is part of verifying
 *    an answer: time older than now - window or later than now + 300 s is
 *    ESTALE. The signature is checked before freshness, so ESTALE always
 *    means an authentic but unusable statement, and its content is
 *    returned for reporting.
 *  - Key lookup before verification. A relay statement names its signer
 *    (relay_name) and an announcement carries its key (identity_key), so
 *    verifying a proof parses each body once to learn which pinned key to
 *    use; nothing else is read before both signatures verify.
 *  - Equivocation proofs ignore time entirely: two statements signed by one
 *    key that cannot both be true stay a proof however old or however far
 *    in the future they are dated, so clock skew cannot launder one. The
 *    rules per kind (README 7.5):
 *      ANNOUNCEMENT: both bodies signed (synod/v1/announcement) by the same
 *        identity_key, same user_id and version, different body bytes.
 *        Different bytes suffice, even if they encode the same values: the
 *        exact-bytes rule makes them two statements, so a client must
 *        re-send the stored bytes of a version, never re-sign it.
 *        The guilty party is the identity key (the user, or a thief of the
 *        user's key), not a relay.
 *      COUNTERSIGNATURE: both valid countersignatures (rules above) by the
 *        same relay, same user_id and version, different announcement_hash.
 *      LOOKUP_ANSWER: both valid lookup answer bodies by the same relay,
 *        same user_id and version, different head_hash. Two answers for one
 *        version that differ only in time are honest and not a proof.
 *    Both statements are checked with one key: the body's identity_key, or
 *    the key the verifier pinned for relay_name; a relay the verifier does
 *    not know makes the proof unverifiable (EUNKNOWNPEER), never valid.
 *  - synod_proof_build() orders the two statements canonically (shorter
 *    body first, then by bytes) so every party that finds the same pair
 *    produces the same proof bytes, which makes storage idempotent.
 *
 * Ownership: inputs are read during the call only. Outputs of type
 * synod_signed_t / synod_proof_t own malloc'd bodies, released by their
 * _free function. Returns 0 or a negative SYNOD_E* (synod/err.h).
 */
#ifndef SYNOD_STATEMENT_H
#define SYNOD_STATEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/userid.h"

/* Default freshness window of lookup answers, seconds (README 7.3). */
#define SYNOD_LOOKUP_FRESHNESS_DEFAULT 1800
/* Seconds a statement may be dated after the verifier's clock. */
#define SYNOD_STATEMENT_MAX_SKEW 300

/* A signed statement this library built: body malloc'd, owned. */
typedef struct synod_signed {
  uint8_t *body;
  size_t body_len;
  uint8_t signature[SYNOD_ED25519_SIG_BYTES];
} synod_signed_t;

/* Releases s's body and zeroes s; NULL is ignored. */
void synod_signed_free(synod_signed_t *s);

/* Points the wire fields at s's buffers (lent, valid while s is). */
void synod_signed_lend(ProtobufCBinaryData *body, ProtobufCBinaryData *sig,
                       const synod_signed_t *s);

/* --- namespace countersignature ----------------------------------------- */

typedef struct synod_countersig_info {
  char user_id[SYNOD_USERID_MAX + 1];
  uint64_t version; /* >= 1 */
  uint8_t announcement_hash[SYNOD_SHA256_BYTES];
  char relay_name[SYNOD_RELAY_NAME_MAX + 1]; /* the home relay */
  uint64_t time;
} synod_countersig_info_t;

/*
 * The home relay's countersignature of in (relay_name must be user_id's
 * home relay). *out owns the body on success, is zeroed on failure.
 * Errors: SYNOD_EINVAL (fields the verifier would refuse), SYNOD_EDENIED
 * (not the home relay), SYNOD_ENOMEM, SYNOD_ECRYPTO.
 */
SYNOD_WUR int synod_countersig_sign(
    synod_signed_t *out, const synod_countersig_info_t *in,
    const uint8_t relay_sk[static SYNOD_ED25519_SECRET_BYTES]);

/*
 * Verifies cs with relay_pk, the key the caller pinned for the user's home
 * relay, then parses it. The caller compares out->user_id, version and
 * announcement_hash with the link it vouches for.
 * Errors: SYNOD_EPARSE (sizes, body, names), SYNOD_EVERIFY, SYNOD_EDENIED
 * (relay_name is not user_id's home relay), SYNOD_EINVAL (dated after
 * now + 300 s, NULL cs). *out is zeroed on any error.
 */
SYNOD_WUR int synod_countersig_verify(
    synod_countersig_info_t *out, const Synod__V1__Countersignature *cs,
    const uint8_t relay_pk[static SYNOD_ED25519_PUBLIC_BYTES], uint64_t now);

/* --- lookup answer -------------------------------------------------------- */

typedef struct synod_lookup_info {
  uint64_t time;
  char user_id[SYNOD_USERID_MAX + 1];
  uint64_t version;                          /* 0: none known */
  uint8_t head_hash[SYNOD_SHA256_BYTES];     /* all zero when version is 0 */
  char relay_name[SYNOD_RELAY_NAME_MAX + 1]; /* the signer */
} synod_lookup_info_t;

/* Signs the LookupAnswerBody of in. Errors as synod_countersig_sign()
 * (no EDENIED: any relay answers for any user). */
SYNOD_WUR int
synod_lookup_sign(synod_signed_t *out, const synod_lookup_info_t *in,
                  const uint8_t relay_sk[static SYNOD_ED25519_SECRET_BYTES]);

/* synod_countersig_sign() and synod_lookup_sign() with a prepared signer
 * (crypto.h), for a relay that signs many statements with one key. */
SYNOD_WUR int synod_countersig_sign_by(synod_signed_t *out,
                                       const synod_countersig_info_t *in,
                                       const synod_ed25519_signer_t *signer);
SYNOD_WUR int synod_lookup_sign_by(synod_signed_t *out,
                                   const synod_lookup_info_t *in,
                                   const synod_ed25519_signer_t *signer);

/*
 * Verifies the body and signature of la with relay_pk (the pinned key of
 * the relay that was asked), parses the body and checks freshness against
 * now with window seconds back (0: SYNOD_LOOKUP_FRESHNESS_DEFAULT) and
 * SYNOD_STATEMENT_MAX_SKEW forward. Only the signed part is looked at;
 * the links, countersignatures and proofs are the caller's (synod/quorum.h).
 * Errors: SYNOD_EPARSE, SYNOD_EVERIFY, SYNOD_ESTALE (then *out IS filled:
 * the statement is authentic), SYNOD_EINVAL (NULL la). *out is zeroed on
 * other errors.
 */
SYNOD_WUR int
synod_lookup_verify(synod_lookup_info_t *out, const Synod__V1__LookupAnswer *la,
                    const uint8_t relay_pk[static SYNOD_ED25519_PUBLIC_BYTES],
                    uint64_t now, uint64_t window);

/* --- equivocation proofs -------------------------------------------------- */

/* A relay key the verifier pinned (trust set, peer configuration). */
typedef struct synod_relay_key {
  const char *name;
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES];
} synod_relay_key_t;

/* Who is proven to have lied, and about what. */
typedef struct synod_proof_verdict {
  Synod__V1__EquivocationKind kind;
  char user_id[SYNOD_USERID_MAX + 1];
  uint64_t version;
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES]; /* signed both statements */
  /* COUNTERSIGNATURE, LOOKUP_ANSWER: the guilty relay. ANNOUNCEMENT: "" (the
   * guilty party is key, the user's identity key). */
  char relay_name[SYNOD_RELAY_NAME_MAX + 1];
  /* What each statement named: ANNOUNCEMENT the two body hashes,
   * COUNTERSIGNATURE the two announcement_hash, LOOKUP_ANSWER the two
   * head_hash; in the proof's order. */
  uint8_t first_hash[SYNOD_SHA256_BYTES];
  uint8_t second_hash[SYNOD_SHA256_BYTES];
} synod_proof_verdict_t;

/*
 * Verifies p under the rules at the top, taking relay keys from
 * keys[0..nkeys) (matched by exact name). On success *out names the guilty
 * key. Errors: SYNOD_EINVAL (NULL, unspecified or unknown kind, or two
 * statements that do not conflict), SYNOD_EPARSE (sizes, bodies),
 * SYNOD_EVERIFY (a signature), SYNOD_EDENIED (a countersignature by a
 * relay that is not the user's home), SYNOD_EUNKNOWNPEER (relay not in
 * keys). *out is zeroed on error.
 */
SYNOD_WUR int synod_proof_verify(synod_proof_verdict_t *out,
                                 const Synod__V1__EquivocationProof *p,
                                 const synod_relay_key_t *keys, size_t nkeys);

/* An equivocation proof this library built; owns copies of both. */
typedef struct synod_proof {
  Synod__V1__EquivocationKind kind;
  synod_signed_t first, second;
} synod_proof_t;

/*
 * Builds a proof of kind from two signed statements (for announcements,
 * the Announcement's body and signature; the continuity signature plays no
 * part), after checking it with synod_proof_verify() (same errors); verdict
 * may be NULL. The statements are copied in canonical order (see top).
 */
SYNOD_WUR int synod_proof_build(synod_proof_t *out,
                                synod_proof_verdict_t *verdict,
                                Synod__V1__EquivocationKind kind,
                                const Synod__V1__Signed *a,
                                const Synod__V1__Signed *b,
                                const synod_relay_key_t *keys, size_t nkeys);

/* Releases both bodies and zeroes p; NULL is ignored. */
void synod_proof_free(synod_proof_t *p);

/* Points w (and its two Signed, stored by the caller in first and second)
 * at p's buffers; valid while p is. */
void synod_proof_lend(Synod__V1__EquivocationProof *w, Synod__V1__Signed *first,
                      Synod__V1__Signed *second, const synod_proof_t *p);

#endif
