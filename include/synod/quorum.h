/*
 * The client's key decision (proto/README.md 7.4; DESIGN.md 3): a pure
 * function from the lookup answers of the trust set to "accept this
 * announcement" or "refuse, because", with what every relay said. No
 * sockets, no clock, no storage: the caller queries, passes the answers and
 * the time, and stores the pin it is given back.
 *
 * THE RULES, in the order they are applied.
 *
 * Input (EINVAL, nothing decided): user_id valid; k >= 2 (DESIGN.md: the
 * guarantee needs k >= 2; k = 1 would let one relay decide); a non-empty
 * trust set with valid, distinct relay names, distinct keys (one key under
 * two names or operators would count twice) and non-empty operator names;
 * each answer names a trust-set relay, at most once; a namespace key never
 * repeats a trust-set name.
 *
 * 1. Proofs. Every EquivocationProof carried by ANY answer (whatever that
 *    answer's own fate: a proof is self-certifying, its carrier adds
 *    nothing) is checked with synod_proof_verify() against the trust-set
 *    and namespace keys. A valid countersignature or lookup-answer proof
 *    names a relay; if it is in the trust set, that relay is an
 *    EQUIVOCATOR and its answer counts for nothing, whatever it says now.
 *    If it is the user's home relay, the result carries
 *    SYNOD_QUORUM_HOME_EQUIVOCATED. A valid announcement proof about this
 *    user sets SYNOD_QUORUM_USER_EQUIVOCATED (the identity key signed two
 *    bodies for one version: the key is misused or stolen) and clears the
 *    verified state like a reset. Proofs about other users or unknown
 *    relays are counted in the carrier's report and otherwise ignored.
 * 2. Each relay of the trust set gets exactly one status:
 *    - no answer, or answer NULL: UNREACHABLE;
 *    - LookupAnswer signature not 64 bytes or not valid under THAT relay's
 *      trust-set key: BAD_SIGNATURE (nothing it says is used);
 *    - authentic but the body does not parse, names another relay than
 *      the one asked or another user: BAD_ANSWER;
 *    - authentic, dated before now - window or after now + 300 s: STALE;
 *    - a pin exists and the answer's version is below it (version 0,
 *      "none known", included): ROLLED_BACK;
 *    - the head is the pin itself (same version and hash): valid, no links
 *      needed (README 7.3 sends only links above the asker's version);
 *    - otherwise the links must be present, form a chain from the pin (or,
 *      with no pin, from their first link) by synod_chain_check(), and end
 *      exactly at the signed version and head hash: a link at the pin's
 *      version with another hash, or a head at the pin's version with
 *      another hash, is FORKED; any other failure BAD_ANNOUNCEMENT
 *      (including links that stop short of the pin: the caller may ask
 *      again from a lower version);
 *    - every link must carry a valid countersignature of the user's home
 *      relay (key from the trust set, else from the namespace keys) for
 *      that user, version and announcement hash: BAD_COUNTERSIGNATURE if
 *      any link lacks one. If the home relay's key is known to neither, no
 *      announcement can be accepted (EUNKNOWNPEER): a client that cannot
 *      check the namespace authority does not guess;
 *    - then, if a proof of step 1 names the relay: EQUIVOCATOR, overriding
 *      the above (what it said is still reported).
 *    Whatever a relay said under a valid signature is reported (version,
 *    head hash, time), whatever its status.
 * 3. Grouping. Valid answers are grouped by (version, head hash). A group's
 *    weight is the number of DISTINCT operator names among its relays
 *    (compared byte for byte): two relays of one operator count once. An
 *    operator whose relays sit in two groups counts in both; that cannot
 *    help a lie past k, since it is one more colluding operator.
 * 4. Decision. Among groups of weight >= k, take the highest version.
 *    - Two different heads at that version each with weight >= k (only
 *      possible when 2k operators answered): refuse, EEQUIVOCATION.
 *    - Version 0 ("none known", only without a pin): refuse,
 *      EUNKNOWNUSER.
 *    - Otherwise ACCEPT it. Newer heads below weight k are not taken: a
 *      disagreement below k is reported (DISAGREED, with what was said),
 *      never resolved by majority. Every valid answer already extends the
 *      pin, so the accepted head does too.
 *    No group of weight >= k: refuse with EROLLBACK if at least k distinct
 *    operators answered ROLLED_BACK, else ESTALE if at least k answered
 *    STALE, else EUNKNOWNPEER if the home relay's key is unknown, else
 *    ENOQUORUM (also when k exceeds the trust set's operators: the
 *    sentence says so).
 * 5. On acceptance: the agreeing relays are AGREED, other valid ones
 *    DISAGREED; flags say RESET (a link past the pin, or with no pin the
 *    anchor, is a reset), UNCHANGED (the head is the pin), FIRST_CONTACT
 *    (no pin), USER_/HOME_EQUIVOCATED (step 1) and VERIFIED_CLEARED. The
 *    new pin is the accepted head; its verified flag survives only if the
 *    old pin was verified and neither RESET nor USER_EQUIVOCATED is set (a
 *    first contact is never verified: that takes comparing fingerprints
 *    out of band). On refusal, valid answers are NO_QUORUM and the pin is
 *    the old one, unchanged.
 *
 * Not done here (callers and later steps): building equivocation proofs
 * from conflicting answers of one round (synod_proof_build() does it given
 * the pair), fetching missing links, storing pins.
 */
#ifndef SYNOD_QUORUM_H
#define SYNOD_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"
#include "synod/announce.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/statement.h"

/* One relay of the client's trust set. Strings are borrowed. */
typedef struct synod_trusted_relay {
  const char *name;
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES];
  const char *operator_name;
} synod_trusted_relay_t;

/* What the client pinned for a user. */
typedef struct synod_pin {
  uint64_t version;
  uint8_t hash[SYNOD_SHA256_BYTES];
  uint8_t identity_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint64_t time; /* of the pinned announcement (chain rule: time order) */
  int verified;  /* fingerprint compared out of band */
} synod_pin_t;

/* One relay's reply: relay_name as queried (a trust-set name), answer the
 * received LookupAnswer (unverified) or NULL when it did not answer. */
typedef struct synod_quorum_answer {
  const char *relay_name;
  const Synod__V1__LookupAnswer *answer;
} synod_quorum_answer_t;

typedef struct synod_quorum_input {
  const char *user_id;
  const synod_quorum_answer_t *answers;
  size_t nanswers;
  const synod_trusted_relay_t *trust;
  size_t ntrust;
  /* Pinned keys of home relays outside the trust set: used only to check
   * namespace countersignatures and proofs, never counted. May be NULL. */
  const synod_relay_key_t *namespace_keys;
  size_t nnamespace;
  unsigned k;
  const synod_pin_t *pin; /* NULL: none */
  uint64_t now;
  uint64_t window; /* seconds; 0: SYNOD_LOOKUP_FRESHNESS_DEFAULT (1800) */
} synod_quorum_input_t;

typedef enum synod_relay_status {
  SYNOD_RELAY_UNREACHABLE = 1,
  SYNOD_RELAY_AGREED,               /* in the accepted group */
  SYNOD_RELAY_DISAGREED,            /* valid, another head than the accepted */
  SYNOD_RELAY_NO_QUORUM,            /* valid, but nothing was accepted */
  SYNOD_RELAY_STALE,                /* authentic, outside the window */
  SYNOD_RELAY_BAD_SIGNATURE,        /* answer not signed by its pinned key */
  SYNOD_RELAY_BAD_ANSWER,           /* signed, but wrong relay, user or body */
  SYNOD_RELAY_BAD_ANNOUNCEMENT,     /* links fail verification or the chain */
  SYNOD_RELAY_BAD_COUNTERSIGNATURE, /* a link lacks the home's signature */
  SYNOD_RELAY_ROLLED_BACK,          /* below the pin */
  SYNOD_RELAY_FORKED,               /* another head at the pin's version */
  SYNOD_RELAY_EQUIVOCATOR /* proven to have signed two conflicting heads */
} synod_relay_status_t;

/* A short lowercase name of s ("bad signature"); never NULL. */
const char *synod_relay_status_name(synod_relay_status_t s);

typedef struct synod_relay_report {
  const char *relay_name;    /* borrowed from the trust set */
  const char *operator_name; /* borrowed from the trust set */
  synod_relay_status_t status;
  int error; /* SYNOD_E* detail of a failing status, else 0 */
  /* 1 when version, head_hash and time come from an answer whose
   * signature verified (reported even when it was refused). */
  int said;
  uint64_t version;
  uint8_t head_hash[SYNOD_SHA256_BYTES];
  uint64_t time;
  size_t proofs_valid;    /* valid proofs this answer carried */
  size_t proofs_rejected; /* proofs that did not verify or were unknown */
} synod_relay_report_t;

#define SYNOD_QUORUM_RESET            0x01u
#define SYNOD_QUORUM_VERIFIED_CLEARED 0x02u
#define SYNOD_QUORUM_UNCHANGED        0x04u
#define SYNOD_QUORUM_FIRST_CONTACT    0x08u
#define SYNOD_QUORUM_USER_EQUIVOCATED 0x10u
#define SYNOD_QUORUM_HOME_EQUIVOCATED 0x20u

#define SYNOD_QUORUM_REASON_MAX 1024

typedef struct synod_quorum_result {
  int error;                            /* 0: ACCEPTED; else the refusal code */
  char reason[SYNOD_QUORUM_REASON_MAX]; /* one human sentence, always set */
  unsigned flags;                       /* SYNOD_QUORUM_* */
  /* ACCEPTED: the head announcement as received, borrowed from the input
   * answers (valid while they are); NULL when UNCHANGED and no relay sent
   * the pinned link again. info is its verified content (zero if NULL). */
  const Synod__V1__Announcement *announcement;
  synod_announce_info_t info;
  uint64_t version;
  uint8_t hash[SYNOD_SHA256_BYTES];
  size_t operators; /* distinct operators in the accepted group */
  /* The pin to store: the accepted head, or the input pin on refusal. */
  synod_pin_t pin;
  int has_pin;
  /* One report per trust-set relay, in trust-set order; malloc'd, released
   * by synod_quorum_result_free(). NULL only after EINVAL or ENOMEM. */
  synod_relay_report_t *relays;
  size_t nrelays;
} synod_quorum_result_t;

/*
 * Decides as described at the top. *out is always filled (error, reason,
 * reports) and must be released with synod_quorum_result_free(), also on
 * refusal. Returns out->error: 0 if and only if accepted, so a caller that
 * only tests the return value cannot mistake a refusal for a key.
 * Refusals: SYNOD_ENOQUORUM, SYNOD_EROLLBACK, SYNOD_ESTALE,
 * SYNOD_EEQUIVOCATION, SYNOD_EUNKNOWNUSER, SYNOD_EUNKNOWNPEER.
 * Errors: SYNOD_EINVAL (input rules), SYNOD_ENOMEM.
 */
SYNOD_WUR int synod_quorum_decide(synod_quorum_result_t *out,
                                  const synod_quorum_input_t *in);

/* Releases r's reports; r may be reused after. NULL is ignored. */
void synod_quorum_result_free(synod_quorum_result_t *r);

#endif
