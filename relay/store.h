/*
 * store: the relay's messaging queries, as ops on the asynchronous db
 * (db.h). Every write is idempotent (keyed on the message id, INSERT ... ON
 * CONFLICT DO NOTHING), because a write whose COMMIT confirmation was lost
 * may be retried after it did commit (db.h, "THE SUBTLE CASE").
 *
 * Each function submits one op and calls its callback exactly once, from
 * the loop. Buffers given to a store_* call are copied into the op before
 * it returns, except where a comment says the caller keeps them (the item
 * arrays of store_put, which receive results). Rows handed to a callback
 * are borrowed for the duration of the callback only.
 */
#ifndef SYNOD_RELAY_STORE_H
#define SYNOD_RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define STORE_ID_BYTES 16

/* How long a forwarded message's outbox row outlives its expiry, so that a
 * delivery failure the peer signs when the message expires there (clocks
 * differ, sweeps run at their own pace) still finds the sender. */
#define STORE_OUTBOX_GRACE "1 hour"

/* --- accounts ---------------------------------------------------------- */

/* status 0 with the account id; SYNOD_EUNKNOWNUSER, SYNOD_EDENIED
 * (disabled), SYNOD_EAUTH (not enrolled and no valid code, or a code
 * given for an account enrolled with another key: the code was used),
 * SYNOD_EBADKEY (enrolled with another key, no code), SYNOD_EAGAIN,
 * SYNOD_EDB. */
typedef void (*store_auth_cb)(void *data, int status, int64_t account_id);

/*
 * Authenticates a client of account local by its identity key pk. With the
 * SHA-256 of an enrolment code (admin_enroll_code_hash), an account still
 * waiting for enrolment is first bound to pk in the same transaction; the
 * stored hash is cleared on use, so a code works once.
 */
void store_auth_client(db_t *db, const char *local, const uint8_t pk[32],
                       const uint8_t *code_hash, store_auth_cb cb, void *data);

/* --- putting envelopes ----------------------------------------------------- */

enum {
  STORE_STORED = 0,    /* committed now */
  STORE_DUPLICATE = 1, /* this message id was already held */
};

typedef struct store_item {
  /* in */
  uint8_t message_id[STORE_ID_BYTES];
  const char *recipient_local; /* local recipient: inbox of this account */
  const char *peer;            /* or: the peer relay's outbox */
  const char *recipient;       /* full id (outbox) */
  const char *sender;          /* full id */
  const char *sender_relay;
  int64_t sender_account;  /* outbox: the local sender's account, or 0 */
  uint64_t expires_at;     /* unix seconds */
  const uint8_t *envelope; /* packed Envelope */
  size_t envlen;
  /* out */
  int status;         /* STORE_STORED, STORE_DUPLICATE, or SYNOD_EUNKNOWNUSER
                       * / SYNOD_EQUOTA / SYNOD_EDENIED (local only) */
  int64_t account_id; /* local recipient's account when stored */
} store_item_t;

/* status 0: every item's status is set; otherwise nothing was stored. */
typedef void (*store_put_cb)(void *data, int status, store_item_t *items,
                             size_t n);

/*
 * Commits items[0..n) in one op: each into the recipient's inbox (with the
 * stored-bytes quota) or the peer's outbox. items is the caller's and must
 * stay valid until cb, which receives it back with the results.
 */
void store_put(db_t *db, store_item_t *items, size_t n, uint64_t quota_bytes,
               store_put_cb cb, void *data);

/* --- reading queues -------------------------------------------------------- */

/* A borrowed view of fetched rows (binary columns). */
typedef struct store_rows store_rows_t;
size_t store_rows_count(const store_rows_t *r);
/* Column col of row i as bytes (*len set), or NULL for SQL NULL. */
const uint8_t *store_rows_col(const store_rows_t *r, size_t i, int col,
                              size_t *len);
/* Column col of row i as a bigint. */
int64_t store_rows_int(const store_rows_t *r, size_t i, int col);

/* status 0 with rows, else SYNOD_EAGAIN / SYNOD_EDB and no rows.
 * Inbox: envs columns (message_id, envelope, seq bigint); notices
 * (message_id, body), the signed delivery-failure notices for the account.
 * Outbox: envs columns (message_id, envelope, seq); notices (id bigint, kind,
 * body), relay-to-relay notices ("delivery-failure": a packed
 * DeliveryFailure; "purge": a packed Purge). */
typedef void (*store_fetch_cb)(void *data, int status, const store_rows_t *envs,
                               const store_rows_t *notices);

/* Oldest-first undelivered envelopes of an account after inbox position
 * after_seq (0: from the start), at most limit, with their position as a
 * third column (bigint); and up to notice_limit of its notices. */
void store_fetch_inbox(db_t *db, int64_t account_id, int64_t after_seq,
                       unsigned limit, unsigned notice_limit, store_fetch_cb cb,
                       void *data);

/* Oldest-first envelopes queued for peer after outbox position
 * after_seq (0: from the start), at most limit, with their position as a
 * third column (bigint); and up to notice_limit of the peer's queued
 * relay-to-relay notices (signed failures, purges) as notices. */
void store_fetch_outbox(db_t *db, const char *peer, int64_t after_seq,
                        unsigned limit, unsigned notice_limit,
                        store_fetch_cb cb, void *data);

/* --- completing ---------------------------------------------------------- */

/* status 0 with how many rows changed, else SYNOD_EAGAIN / SYNOD_EDB. */
typedef void (*store_count_cb)(void *data, int status, uint64_t count);

/*
 * The account's device has the messages ids[0..n) (n ids of 16 bytes,
 * concatenated): with keep_ms 0 their ciphertext is deleted now (the row
 * stays as a deduplication tombstone until it expires), else marked
 * delivered and deleted keep_ms later by store_sweep. Notices with those
 * ids are deleted too.
 */
void store_ack_inbox(db_t *db, int64_t account_id, const uint8_t *ids, size_t n,
                     uint64_t keep_ms, store_count_cb cb, void *data);

/* The peer holds ids[0..n): delete their ciphertext from the outbox (the
 * rows stay until expiry, to route a later delivery failure). */
void store_outbox_done(db_t *db, const uint8_t *ids, size_t n,
                       store_count_cb cb, void *data);

/* Message id will never be delivered (refused or failed at peer, or
 * expired here): delete it from the outbox and leave the signed failure
 * notice (a packed DeliveryFailure) for its local sender. With peer set,
 * only a message queued for that peer is affected, so a relay can report
 * failures only for messages it was given. count is the local sender's
 * account id, whose sessions should be told; 0 when the message was not
 * found or its sender's account is gone. */
void store_outbox_refused(db_t *db, const uint8_t id[STORE_ID_BYTES],
                          const char *peer, const uint8_t *notice,
                          size_t noticelen, store_count_cb cb, void *data);

/* The peer took relay-to-relay notice number notice_id. */
void store_peer_notice_done(db_t *db, int64_t notice_id, store_count_cb cb,
                            void *data);

/* --- expiry and retention ------------------------------------------------------ */

/* One expired, undelivered message, for which a failure notice is due. */
typedef struct store_expired {
  uint8_t message_id[STORE_ID_BYTES];
  int in_outbox;   /* 1: never reached the peer; 0: in our inbox */
  char *recipient; /* outbox: full id; inbox: the local account name */
  char *sender;    /* full id */
  char *sender_relay;
} store_expired_t;

typedef void (*store_expired_cb)(void *data, int status,
                                 const store_expired_t *rows, size_t n);

/*
 * Housekeeping up to now (unix seconds): drops expired tombstones, deletes
 * ciphertext kept past its retention, and returns up to limit expired
 * undelivered messages (inbox and outbox) for which the caller signs
 * failure notices and calls store_expire_one().
 */
void store_sweep(db_t *db, uint64_t now, uint64_t keep_ms, unsigned limit,
                 store_expired_cb cb, void *data);

/*
 * Deletes expired message id (from the inbox or outbox, as rows said) if it
 * is still undelivered, and queues notice (a packed DeliveryFailure) for
 * its sender: into notices when sender_local is set (a local account),
 * otherwise for relay-to-relay delivery to sender_relay. count is 1 when
 * the message was deleted, 0 when it was delivered meanwhile.
 */
void store_expire_one(db_t *db, const store_expired_t *row,
                      const char *sender_local, const uint8_t *notice,
                      size_t noticelen, store_count_cb cb, void *data);

/* --- purge ----------------------------------------------------------------- */

typedef struct store_purge {
  int64_t account_id; /* home relay: the purging account; 0 on a peer */
  const char *user;   /* full id of the purging user */
  int scope;          /* SYNOD__V1__PURGE_SCOPE__* */
  const char *peer;   /* CONVERSATION: the other user's full id */
  const char *self;   /* this relay's name */
  const uint8_t *ids; /* IDS: n concatenated 16-byte ids */
  size_t nids;
  uint64_t until;       /* messages received at or before this (unix s) */
  const uint8_t *queue; /* home relay: the packed Purge to queue for every */
  size_t queuelen;      /* peer in peers[0..npeers), or NULL */
  const char *const *peers;
  size_t npeers;
} store_purge_t;

/*
 * Deletes what this relay stores for the purge's user, in one transaction:
 * on the home relay, the user's inbox ciphertext (tombstones stay), their
 * undelivered outbound messages and their notices; on a peer, the inbox
 * ciphertext of messages the user sent. Queues the Purge for the peers when
 * given. count is the number of envelopes deleted.
 */
void store_purge(db_t *db, const store_purge_t *p, store_count_cb cb,
                 void *data);

#endif
