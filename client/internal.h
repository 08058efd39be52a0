/*
 * What the client library's modules share (not installed): the profile in
 * memory, its files, and the fan-out of one request to many relays.
 */
#ifndef SYNOD_CLIENT_INTERNAL_H
#define SYNOD_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "synod.pb-c.h"
#include "synod/client.h"

#define PFILE_MAC_KEY_BYTES 32
#define PFILE_MAX           (1024u * 1024u)

/* One announcement this profile signed. */
typedef struct self_link {
  uint64_t version;
  uint8_t hash[SYNOD_SHA256_BYTES];
  uint8_t identity_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint64_t time;
} self_link_t;

struct synod_client {
  char *dir;
  char user_id[SYNOD_USERID_MAX + 1];
  char device_name[SYNOD_CLIENT_NAME_MAX + 1];
  uint32_t device_id;
  uint64_t created;
  uint8_t identity_sk[SYNOD_ED25519_SECRET_BYTES];
  uint8_t identity_pk[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t device_sk[SYNOD_X25519_BYTES];
  uint8_t device_pk[SYNOD_X25519_BYTES];
  uint8_t mac_key[PFILE_MAC_KEY_BYTES];
  /* trust */
  synod_client_relay_t *relays;
  size_t nrelays;
  unsigned k;
  /* pins */
  synod_client_pin_t *pins;
  size_t npins;
  /* self: every link we signed, oldest first; the newest as sent
   * (packed Publish: announcement and, once the home relay vouched, its
   * countersignature), NULL before the first register. */
  self_link_t *self;
  size_t nself;
  uint8_t *publish;
  size_t publish_len;
  /* asynchronous operations in flight (op.c); one receive session */
  synod_client_op_t *ops;
  int receiving;
};

/* --- pfile.c: the profile's text files ------------------------------------ */

/* Writes text[0..len) and its MAC line to dir/name atomically (temp file,
 * fsync, rename, fsync of dir), mode 0600. */
SYNOD_WUR int pfile_write(const char *dir, const char *name, const char *text,
                          size_t len,
                          const uint8_t key[static PFILE_MAC_KEY_BYTES]);

/* Reads dir/name (a regular file, owned by us, no group/other bits,
 * at most PFILE_MAX), checks and strips its MAC line: *text (malloc'd,
 * NUL-terminated, caller frees) holds the rest. SYNOD_ENOENT, SYNOD_EPERM,
 * SYNOD_ETOOBIG, SYNOD_EPARSE (no MAC line), SYNOD_EVERIFY (MAC), SYNOD_EIO. */
SYNOD_WUR int pfile_read(const char *dir, const char *name, char **text,
                         size_t *len,
                         const uint8_t key[static PFILE_MAC_KEY_BYTES]);

/* Checks and strips the MAC line of the file name whose bytes are
 * buf[0..got) (buf[got] must be '\0'; buf is modified): on success
 * buf[0..*len) is the text, NUL-terminated. pfile_read() without the
 * file: SYNOD_EPARSE, SYNOD_EVERIFY. */
SYNOD_WUR int pfile_check(const char *name, char *buf, size_t got, size_t *len,
                          const uint8_t key[static PFILE_MAC_KEY_BYTES]);

/* 0 when path is a directory owned by us with no group/other bits;
 * SYNOD_EPERM otherwise, SYNOD_ENOENT when missing. */
SYNOD_WUR int pfile_check_dir(const char *path);

/* "dir/name", malloc'd. */
char *pfile_path(const char *dir, const char *name);

/* Lower-case hex of in[0..len) into out (2 * len + 1 bytes). */
void hex_encode(char *out, const uint8_t *in, size_t len);
/* Exactly 2 * len hex digits of s into out: 0 or SYNOD_EPARSE. */
SYNOD_WUR int hex_decode(uint8_t *out, size_t len, const char *s);

/* A growable string. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed; /* an allocation failed: p holds what fitted */
} sbuf_t;
void sbuf_printf(sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- profile.c ------------------------------------------------------------ */

#define PROFILE_KEYS_FILE "keys"

/* Seals identity_sk, device_sk and c's MAC key with pass into dir/name
 * (replaced atomically), after checking pass opens the profile's keys file
 * and that it holds c's identity seed and MAC key: SYNOD_EDECRYPT (wrong
 * passphrase), SYNOD_EVERIFY (not this profile's keys), keyfile errors. */
SYNOD_WUR int profile_write_keys(const synod_client_t *c, const char *name,
                                 const uint8_t identity_sk[static 32],
                                 const uint8_t device_sk[static 32],
                                 const char *pass, size_t passlen,
                                 const synod_keyfile_kdf_t *kdf);
SYNOD_WUR int profile_save_pins(synod_client_t *c);
SYNOD_WUR int profile_save_self(synod_client_t *c);
/* Parses text, the MAC-checked contents of the profile file name
 * ("profile", "trust", "pins" or "self"), into c, as synod_client_open()
 * does after pfile_read(). text is modified. SYNOD_EPARSE on any line it
 * refuses, SYNOD_EINVAL for another name, SYNOD_ENOMEM. */
SYNOD_WUR int profile_parse(synod_client_t *c, const char *name, char *text);

/* The relay called name in the trust set, or NULL. */
const synod_client_relay_t *profile_relay(const synod_client_t *c,
                                          const char *name);
/* The index of the pin of user_id, or -1. */
long profile_pin_index(const synod_client_t *c, const char *user_id);

/* --- notice.c: delivery-failure notices ----------------------------------- */

typedef struct notice {
  uint8_t message_id[16];
  int has_id; /* message_id is set (also on some errors: acknowledge it) */
  char recipient[SYNOD_USERID_MAX + 1]; /* "" when the notice names none */
  char relay[SYNOD_RELAY_NAME_MAX + 1]; /* the relay that claims it */
  int code;                             /* SYNOD_E* */
  uint64_t time;
  int verified; /* signed by that relay's trust-set key */
  char reason[SYNOD_CLIENT_REASON_MAX];
} notice_t;

/* Opens df: verified with the trust-set key of the relay it names, or
 * unverifiable (that relay is not in the trust set, verified = 0), then
 * parsed, and a sentence made of it. SYNOD_EVERIFY when a trust-set relay
 * is named but did not sign it (or signed it naming another), SYNOD_EPARSE
 * when malformed; n->has_id tells whether it can still be acknowledged. */
SYNOD_WUR int notice_open(const synod_client_t *c,
                          const Synod__V1__DeliveryFailure *df, notice_t *n);

/* --- op.c: asynchronous operations in flight -------------------------------
 *
 * Every operation started on a caller's loop embeds this header first.
 * Top-level operations are linked into their client's list, so that
 * synod_client_close() can cancel them; inner ones (the lookup a send or a
 * receive runs) belong to their parent and are not linked. After cancel,
 * an operation no longer touches its client (c may be freed): its own
 * code checks op->c, which op_cancel_all() clears.
 */
struct synod_client_op {
  synod_client_t *c; /* NULL once the client closed */
  uv_loop_t *loop;
  void *data;                     /* the caller's, synod_client_op_data() */
  int canceled;                   /* synod_client_op_cancel() was called */
  int finished;                   /* the callback is running or has run */
  synod_client_op_t *next, *prev; /* c->ops, when linked */
  int linked;
  /* Kind-specific: stop whatever runs; the operation then completes from
   * the loop with SYNOD_ECANCELED. Never calls the user's callback. */
  void (*cancel)(synod_client_op_t *op);
};

/* Initialises op for c and loop; links it into c->ops when link. */
void op_init(synod_client_op_t *op, synod_client_t *c, uv_loop_t *loop,
             void *data, void (*cancel)(synod_client_op_t *), int link);
/* Unlinks op from its client's list (before its callback runs). */
void op_detach(synod_client_op_t *op);
/* synod_client_close(): cancels every linked op and forgets c in each. */
void op_cancel_all(synod_client_t *c);

/* Runs a private loop for a blocking wrapper: start(loop, arg) starts one
 * operation on it (returns 0 or an error, then nothing runs), the loop runs
 * until every handle closed, and is closed. Returns start's error, or 0,
 * or SYNOD_EIO / SYNOD_EINTERNAL for the loop itself. */
SYNOD_WUR int op_run_private(int (*start)(uv_loop_t *loop, void *arg),
                             void *arg);

/* --- fanout.c: one request to many relays, on a loop -----------------------
 */

typedef struct fanout_target {
  const synod_client_relay_t *relay; /* borrowed during fanout_start only */
  const Synod__V1__Frame *request;   /* borrowed until the fanout is done */
  const char *enrollment_code;       /* borrowed during fanout_start only */
  /* results */
  Synod__V1__Frame *answer; /* owned by the caller once done (free with
                               synod_wire_free); NULL unless status 0 */
  int status;  /* 0: answered (not an Error); the Error's code; or the
                  network's (SYNOD_ETIMEDOUT, SYNOD_EIO, SYNOD_EBADKEY...);
                  SYNOD_ECANCELED after fanout_cancel() */
  int refused; /* 1 when status is an Error frame answering the request */
  char reason[SYNOD_CLIENT_REASON_MAX];
} fanout_target_t;

typedef struct fanout fanout_t;

/*
 * Connects to every target's relay as c's user on loop, sends its request
 * once the session is up and waits for the answer, all at once; the round
 * has timeout_ms from the start to the last answer. done(arg) runs from
 * the loop, once, when every target has its result and every handle of
 * the round is closed (the fanout's memory is gone by then); never from
 * inside fanout_start. c is read during fanout_start only. Returns 0, or
 * SYNOD_ENOMEM (then nothing runs and done never fires). *out (may be
 * NULL) is valid until done runs.
 */
SYNOD_WUR int fanout_start(fanout_t **out, const synod_client_t *c,
                           uv_loop_t *loop, fanout_target_t *t, size_t n,
                           uint64_t timeout_ms, void (*done)(void *arg),
                           void *arg);

/* Ends every target still waiting with SYNOD_ECANCELED; done still runs,
 * from the loop. Idempotent. */
void fanout_cancel(fanout_t *f);

/* fanout_start() on a private loop, run to the end: blocking. Returns 0
 * when the round ran (see each target), SYNOD_ENOMEM / SYNOD_EIO
 * otherwise. */
SYNOD_WUR int fanout_run(const synod_client_t *c, fanout_target_t *t, size_t n,
                         uint64_t timeout_ms);

/* --- directory.c, for messaging.c ------------------------------------------
 */

/* The lookup behind synod_client_lookup_start(), as an inner operation of
 * a parent (link = 0) or a top-level one (link = 1). */
SYNOD_WUR int lookup_start(synod_client_t *c, uv_loop_t *loop,
                           const char *user_id,
                           const synod_client_net_opts_t *opts,
                           synod_lookup_cb cb, void *data, int link,
                           synod_client_op_t **op);

#endif
