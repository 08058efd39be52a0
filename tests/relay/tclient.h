/*
 * tclient: a small blocking test client of synod-relay, built on lib/
 * (synod_conn on a private libuv loop). It speaks the real protocol with a
 * real identity key; the ciphertext it sends is random bytes, which is all
 * a relay ever sees. The real client is the client issue's.
 *
 * Every call runs the client's own loop until its condition holds or
 * timeout_ms passes, so nothing can hang a test. Deliveries and failure
 * notices received at any time are recorded in the client (received ids in
 * order, duplicates included) until the test reads them.
 */
#ifndef SYNOD_TESTS_RELAY_TCLIENT_H
#define SYNOD_TESTS_RELAY_TCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"

typedef struct tclient tclient_t;

/* Ids and details of what was received so far. */
typedef struct tclient_rx {
  uint8_t id[16];
  char sender[128];
  uint64_t time;
  uint32_t ttl;
  size_t ctlen;
} tclient_rx_t;

/*
 * Connects to a relay at 127.0.0.1:port whose key is relay_pk, as user
 * (local@relay) with identity key seed sk, enrolling with code when given.
 * Returns 0 with *out, or the error that ended the attempt (the relay's
 * refusal code, SYNOD_ETIMEDOUT...); on error *out is NULL.
 */
int tclient_connect(tclient_t **out, uint16_t port, const uint8_t relay_pk[32],
                    const char *user, const uint8_t sk[32], const char *code,
                    int timeout_ms);

/* tclient_connect with flags: TCLIENT_REQUESTS_ONLY sets Hello's
 * requests_only (the relay pushes nothing; only a Fetch reads). */
#define TCLIENT_REQUESTS_ONLY 1
int tclient_connect_flags(tclient_t **out, uint16_t port,
                          const uint8_t relay_pk[32], const char *user,
                          const uint8_t sk[32], const char *code,
                          int timeout_ms, unsigned flags);

/* Closes and frees c (runs its loop until closed). NULL is a no-op. */
void tclient_close(tclient_t *c);

/* 1 while the connection is up. */
int tclient_up(const tclient_t *c);

/* The status the connection closed with, 0 while up. */
int tclient_close_status(const tclient_t *c);

/*
 * Submits an envelope with id to recipient: one device ciphertext of
 * ctlen random bytes, ttl seconds (0: the relay's default). Waits for the
 * answer: returns 0 with *accept set (ACCEPT_STATUS_*), or the Error code
 * the relay answered with, or SYNOD_ETIMEDOUT / SYNOD_ECLOSED.
 */
int tclient_submit(tclient_t *c, const uint8_t id[16], const char *recipient,
                   size_t ctlen, uint32_t ttl, int *accept, int timeout_ms);

/* Sends a Submit without waiting; the answer is counted in
 * tclient_answers(). */
int tclient_submit_async(tclient_t *c, const uint8_t id[16],
                         const char *recipient, size_t ctlen, uint32_t ttl);

/* Answers to async submits so far: accepted (stored or duplicate) and
 * errors. */
void tclient_answers(const tclient_t *c, size_t *accepted, size_t *errors);

/* Error answers to acknowledgements (sent by tclient_wait_rx and
 * tclient_ack) so far: "not recorded, send it again". */
size_t tclient_ack_errors(const tclient_t *c);

/* The message ids of async submits answered Accepted so far, in arrival
 * order, with their ACCEPT_STATUS_* (status may be NULL): copies up to max
 * into ids and returns how many there are in total. An Error answer has no
 * message id; it is counted by tclient_answers() only. */
size_t tclient_accepted(const tclient_t *c, uint8_t (*ids)[16], int *status,
                        size_t max);

/* tclient_accepted() from the from-th Accepted answer on: copies up to max
 * ids (and statuses, status may be NULL) of answers from, from+1, ... and
 * returns the total count, so a caller polling a long stream copies only
 * what is new. */
size_t tclient_accepted_from(const tclient_t *c, size_t from,
                             uint8_t (*ids)[16], int *status, size_t max);

/* Sends any frame as is (borrowed), e.g. a malformed request. */
int tclient_send(tclient_t *c, const Synod__V1__Frame *f);

/* Runs the loop until at least n deliveries in total were received (and,
 * with ack set, acknowledges each as it arrives, and first whatever arrived
 * earlier without being acknowledged). Returns 0 or
 * SYNOD_ETIMEDOUT / SYNOD_ECLOSED. */
int tclient_wait_rx(tclient_t *c, size_t n, int ack, int timeout_ms);

/* Deliveries received so far, in arrival order. */
const tclient_rx_t *tclient_rx(const tclient_t *c, size_t *n);

/* Delivery failures received: their message ids and codes. */
size_t tclient_failures(const tclient_t *c, uint8_t (*ids)[16], int *codes,
                        size_t max);

/* Runs the loop until n failure notices in total have arrived. */
int tclient_wait_failures(tclient_t *c, size_t n, int timeout_ms);

/* Acknowledges ids[0..n) and waits timeout_ms for an Error (an ack has no
 * answer on success): 0 when none came. */
int tclient_ack(tclient_t *c, const uint8_t (*ids)[16], size_t n,
                int timeout_ms);

/* A signed purge (scope: SYNOD__V1__PURGE_SCOPE__*; peer for a
 * conversation; ids for IDS), signed with sign_sk (normally the client's
 * own key). Returns 0 with *deleted, or the Error code. */
int tclient_purge(tclient_t *c, int scope, const char *peer,
                  const uint8_t (*ids)[16], size_t nids,
                  const uint8_t sign_sk[32], uint64_t *deleted, int timeout_ms);

/* The last Error frame received (code, reason) or 0. */
int tclient_last_error(const tclient_t *c, const char **reason);

/*
 * Sends f (borrowed; its request_id is set here to a fresh one) and waits
 * for the frame answering it. Returns 0 with *answer, owned by the caller
 * (synod_wire_free); or the code of an Error answer (its reason through
 * tclient_last_error()) with *answer NULL; or SYNOD_ETIMEDOUT /
 * SYNOD_ECLOSED.
 */
int tclient_request(tclient_t *c, Synod__V1__Frame *f,
                    Synod__V1__Frame **answer, int timeout_ms);

/* Runs the loop for ms milliseconds. */
void tclient_run_for(tclient_t *c, int ms);

/* A random 16-byte id. */
void tclient_random_id(uint8_t id[16]);

#endif
