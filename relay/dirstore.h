/*
 * dirstore: the key directory's queries (schema v2), as ops on the
 * asynchronous db (db.h), like store.h for messaging.
 *
 * Every write is idempotent: announcements are keyed on (user, version),
 * countersignatures on (user, version, relay), proofs on their hash, all
 * written with ON CONFLICT DO NOTHING, so a write retried after a lost
 * COMMIT confirmation (db.h, "THE SUBTLE CASE") is a no-op.
 *
 * Results are handed to the callback as row sets in binary format (bigint:
 * 8 bytes big-endian, text: raw bytes without a terminator), borrowed for
 * the duration of the callback only. Buffers given to a dirstore_* call are
 * copied into the op before it returns.
 */
#ifndef SYNOD_RELAY_DIRSTORE_H
#define SYNOD_RELAY_DIRSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Links (announcements) sent in one LookupAnswer or GossipAnnouncement. */
#define DIRSTORE_MAX_LINKS 64
/* Proofs sent in one answer. */
#define DIRSTORE_MAX_PROOFS 64

typedef struct dirstore_rows dirstore_rows_t;
size_t dirstore_rows_count(const dirstore_rows_t *r);
/* Column col of row i as bytes (*len set), or NULL for SQL NULL. */
const uint8_t *dirstore_rows_col(const dirstore_rows_t *r, size_t i, int col,
                                 size_t *len);
/* Column col of row i as a bigint (0 for NULL). */
int64_t dirstore_rows_int(const dirstore_rows_t *r, size_t i, int col);
/* Column col of row i copied as a string into out[0..outlen): 0, or
 * SYNOD_ETOOBIG / SYNOD_ENOENT (NULL). */
int dirstore_rows_str(const dirstore_rows_t *r, size_t i, int col, char *out,
                      size_t outlen);

/* status 0 with res[0..n) (one row set per statement), else SYNOD_EAGAIN /
 * SYNOD_EDB / SYNOD_ENOMEM with n 0. */
typedef void (*dirstore_rows_cb)(void *data, int status,
                                 const dirstore_rows_t *const *res, size_t n);

/*
 * What the relay holds for user before accepting its announcement of
 * version, read in one read-only op:
 *   res[0] head:    version, hash, identity_key, signed_at (0 or 1 row)
 *   res[1] at:      hash, body, signature of the link at version (0 or 1)
 *   res[2] cs:      body, signature of relay's countersignature of it
 *   res[3] frozen:  one row when a proof of kind 1 or 2 concerns user
 *   res[4] taken:   one row when local (non-NULL) is a local account and
 *                   another account is bound to key
 */
void dirstore_state(db_t *db, const char *user, uint64_t version,
                    const char *relay, const char *local, const uint8_t key[32],
                    dirstore_rows_cb cb, void *data);

/* One link to store. */
typedef struct dirstore_link {
  const char *user;
  uint64_t version;
  const uint8_t *hash; /* 32 */
  const uint8_t *body;
  size_t body_len;
  const uint8_t *signature;    /* 64 */
  const uint8_t *continuity;   /* 64 or NULL */
  const uint8_t *identity_key; /* 32 */
  uint64_t time;
  /* The home relay's countersignature. */
  const char *cs_relay;
  const uint8_t *cs_body;
  size_t cs_len;
  const uint8_t *cs_sig; /* 64 */
  /* Set for a user of this relay: the account whose identity key follows
   * the newest link. */
  const char *local;
  /* A packed GossipAnnouncement queued for every peer when the link is
   * new, or NULL. */
  const uint8_t *gossip;
  size_t gossip_len;
  const char *const *peers;
  size_t npeers;
} dirstore_link_t;

/*
 * In one write op: stores the link when it is exactly the successor of the
 * newest version held (version 1 when none) and the user is not frozen,
 * its countersignature when the link at that version has this hash,
 * rebinds the local account to the link's identity key when it is now the
 * head, and queues the gossip for the peers when the link is new.
 *   res[0]: one row, count of links inserted (0 or 1)
 *   res[1]: the stored hash at (user, version), 0 or 1 row
 */
void dirstore_accept(db_t *db, const dirstore_link_t *in, dirstore_rows_cb cb,
                     void *data);

/* One verified proof to store. */
typedef struct dirstore_proof {
  const char *user;
  int kind;
  uint64_t version;
  const uint8_t *guilty_key; /* 32 */
  const char *guilty_relay;  /* "" for an announcement proof */
  const uint8_t *proof;      /* packed EquivocationProof */
  size_t proof_len;
  const uint8_t *gossip; /* packed GossipAnnouncement for the peers, or NULL */
  size_t gossip_len;
  const char *const *peers;
  size_t npeers;
} dirstore_proof_t;

/* Stores p unless a proof with the same hash is held, and queues the
 * gossip when it is new. res[0]: one row, 1 when new. */
void dirstore_put_proof(db_t *db, const dirstore_proof_t *p,
                        dirstore_rows_cb cb, void *data);

/*
 * The chain of user for a LookupAnswer or a FetchAnnouncements answer:
 *   res[0] head:   version, hash (0 or 1 row)
 *   res[1] links:  version, body, signature, continuity, cs body,
 *                  cs signature (the countersignature by relay), oldest
 *                  first, at most DIRSTORE_MAX_LINKS: versions above
 *                  from_version, or with from_version 0 and head_only only
 *                  the head
 *   res[2] proofs: packed proofs about user or against relay, at most
 *                  DIRSTORE_MAX_PROOFS
 */
void dirstore_chain(db_t *db, const char *user, uint64_t from_version,
                    int head_only, const char *relay, dirstore_rows_cb cb,
                    void *data);

/* Proofs matching the filters ("" matches everything): res[0] proof. */
void dirstore_proofs(db_t *db, const char *user, const char *relay,
                     dirstore_rows_cb cb, void *data);

/* Every user's head: res[0] user_id, version, hash, ordered by user. */
void dirstore_heads(db_t *db, dirstore_rows_cb cb, void *data);

/* The countersignature by relay of (user, version): res[0] announcement
 * hash, cs body, cs signature (0 or 1 row). */
void dirstore_countersig(db_t *db, const char *user, uint64_t version,
                         const char *relay, dirstore_rows_cb cb, void *data);

#endif
