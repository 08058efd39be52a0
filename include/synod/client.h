/*
 * The synod client library: a user's profile on this device and the key
 * directory as seen from it (DESIGN.md sections 1-3; proto/README.md 7).
 *
 * THE PROFILE is a directory ($SYNOD_HOME, else $HOME/.config/synod, or a
 * path given to synod_client_create / synod_client_open), mode 0700 and
 * owned by the user; a profile directory or file that group or others may
 * access is refused (SYNOD_EPERM), never used. It holds:
 *   keys     sealed with the passphrase (synod/keyfile.h, scrypt +
 *            ChaCha20-Poly1305): the Ed25519 identity seed, the X25519
 *            device key and a 32-byte profile MAC key. The only secrets.
 *   profile  user id, device id and name, creation time.
 *   trust    the trust set: relays (name, host:port, Ed25519 key line,
 *            operator) and the quorum k (>= 2).
 *   pins     per contact: the pinned version, head hash, identity key,
 *            announcement time, verified flag, and a short history of the
 *            contact's earlier identity keys.
 *   self     every announcement this profile signed (version, hash,
 *            identity key, time) and the newest one with its home
 *            countersignature, as the exact bytes that were signed.
 * The text files are not secret but they decide what is trusted, so each
 * ends with an HMAC-SHA256 line under the sealed MAC key: a trust set or a
 * pin edited behind the user's back is refused (SYNOD_EVERIFY), like a
 * tampered key file (SYNOD_EDECRYPT). Every file is written to a
 * temporary file in the same directory, fsync'ed, renamed over the old
 * one and the directory fsync'ed: a reader sees the old or the new file,
 * never a mix. Files are read back strictly: an unknown line, a missing
 * field or a bad value is SYNOD_EPARSE.
 *
 * THE DIRECTORY operations connect to the relays of the trust set as the
 * profile's user (the identity key authenticates every session; relays
 * that are not the home relay serve it as a visitor):
 *   register  publish our announcement to the home relay, take its
 *             countersignature, then publish to every other relay;
 *   lookup    ask every relay at once, decide with synod_quorum_decide()
 *             (synod/quorum.h) against the pin, and store the new pin;
 *   monitor   ask every relay for our own user and alarm on any
 *             announcement that is not one we signed;
 *   reset     new identity and device keys, bound with the code of a
 *             re-enrolment, published as a reset announcement.
 *
 * Errors: every function returns 0 or a negative SYNOD_E* (synod/err.h).
 * Ownership: strings and buffers passed in are read during the call only;
 * results documented as owned are released by their _free function.
 *
 * TWO WAYS TO CALL THE NETWORK OPERATIONS. Each of register, lookup,
 * monitor, send, receive and purge has an asynchronous form,
 * synod_client_<op>_start(), that runs on the caller's libuv loop and
 * reports through a callback, and a blocking form, synod_client_<op>(),
 * for simple programs: it runs the very same operation on a private loop
 * until its callback fired. Enrolment and the key reset are blocking only
 * (rare steps, each a few requests in turn).
 * Do not call a blocking form from inside a callback of a loop that must
 * stay live: it runs no other loop meanwhile.
 *
 * The asynchronous forms (section "asynchronous operations" below):
 *   - start returns 0, and then the callback runs exactly once, from the
 *     loop, never from inside the start call; or a negative SYNOD_E*
 *     (SYNOD_EINVAL for bad arguments, SYNOD_ENOMEM, SYNOD_EAGAIN for a
 *     second receive session), and then nothing runs and nothing leaks.
 *   - The result handed to the callback is the callback's to keep: it
 *     releases it with the result's _free function, before returning or
 *     later after copying the struct (*mine = *res); the struct itself is
 *     the operation's and is gone when the callback returns.
 *   - The operation handle (synod_client_op_t, returned through the
 *     optional op argument) is valid until its callback returns; it may
 *     be used to cancel and to find the caller's data
 *     (synod_client_op_data()).
 *   - Cancellation: synod_client_op_cancel() stops the operation's
 *     sessions; its callback still runs, once, from the loop, with
 *     SYNOD_ECANCELED (the receive session: after messages already taken
 *     were saved and acknowledged as far as the session still could).
 *     Closing the client cancels every operation in flight the same way;
 *     their callbacks then run without the client, so they must not use
 *     it, and the caller keeps running the loop until they did (uv_run
 *     returns when nothing is left). Nothing leaks either way.
 * Threads and loops: a synod_client_t and its operations are used from
 * one thread, the thread of the loop the operations run on; nothing here
 * is thread-safe. Several operations may run at once on one loop (a
 * receive session while sending, lookups in parallel). While an operation
 * is in flight the trust set and the keys cannot change
 * (synod_client_trust_add, _remove, synod_client_rotate_device_key and
 * synod_client_reset_keys return SYNOD_EAGAIN), and synod_client_close()
 * must not be called from inside one of the client's callbacks.
 */
#ifndef SYNOD_CLIENT_H
#define SYNOD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "synod.pb-c.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/keyfile.h"
#include "synod/quorum.h"
#include "synod/userid.h"

typedef struct synod_client synod_client_t;

/* An asynchronous operation in flight (see "asynchronous operations"). */
typedef struct synod_client_op synod_client_op_t;

/* --- the profile ---------------------------------------------------------- */

#define SYNOD_CLIENT_NAME_MAX    128 /* device and operator names, bytes */
#define SYNOD_CLIENT_HOST_MAX    255
#define SYNOD_CLIENT_HISTORY_MAX 8 /* earlier identity keys kept per pin */

typedef struct synod_profile_params {
  const char *user_id;     /* local@home-relay */
  const char *device_name; /* NULL: "device"; no control characters */
  const char *pass;        /* the passphrase, passlen bytes, not empty */
  size_t passlen;
  const synod_keyfile_kdf_t *kdf; /* NULL: the keyfile defaults */
} synod_profile_params_t;

/*
 * Creates a new profile in dir (NULL: $SYNOD_HOME, else
 * $HOME/.config/synod): makes the directory 0700 if missing (its parent
 * must exist), generates the identity and device keys, writes every file,
 * and opens it into *out. An existing profile there is SYNOD_EEXIST; a
 * directory group or others may access is SYNOD_EPERM.
 * Errors also: SYNOD_EINVAL (parameters), SYNOD_EIO, SYNOD_ENOMEM.
 */
SYNOD_WUR int synod_client_create(synod_client_t **out, const char *dir,
                                  const synod_profile_params_t *p);

/*
 * Opens the profile in dir (NULL as above) with the passphrase. Errors:
 * SYNOD_ENOENT (no profile), SYNOD_EPERM (directory or a file accessible
 * to group or others, or not owned by the user), SYNOD_EDECRYPT (wrong
 * passphrase or tampered key file), SYNOD_EVERIFY (a text file changed
 * behind the library's back), SYNOD_EPARSE (a file not in its format),
 * SYNOD_ETOOBIG, SYNOD_EIO, SYNOD_ENOMEM. *out is NULL on error.
 */
SYNOD_WUR int synod_client_open(synod_client_t **out, const char *dir,
                                const char *pass, size_t passlen);

/* Wipes the keys and frees c. NULL is ignored. */
void synod_client_close(synod_client_t *c);

/* Owned by c, valid until synod_client_close(). */
const char *synod_client_user_id(const synod_client_t *c);
const char *synod_client_dir(const synod_client_t *c);
const char *synod_client_device_name(const synod_client_t *c);
uint64_t synod_client_created(const synod_client_t *c);
void synod_client_identity_key(const synod_client_t *c,
                               uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]);
void synod_client_device_key(const synod_client_t *c,
                             uint8_t pk[static SYNOD_X25519_BYTES]);

/* --- the trust set -------------------------------------------------------- */

typedef struct synod_client_relay {
  char name[SYNOD_RELAY_NAME_MAX + 1];
  char host[SYNOD_CLIENT_HOST_MAX + 1]; /* name or IP literal */
  uint16_t port;
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES];
  char operator_name[SYNOD_CLIENT_NAME_MAX + 1];
} synod_client_relay_t;

/*
 * Adds a relay: address "host:port" ("[v6]:port" for IPv6 literals),
 * key_line "synod-ed25519 BASE64" as `synod-relay keygen` prints it, the
 * operator's name (relays of one operator count once in a quorum). Saved
 * at once. SYNOD_EEXIST when the name or the key is already in the set;
 * SYNOD_EINVAL / SYNOD_EPARSE on bad values; SYNOD_EAGAIN while an
 * asynchronous operation of c is in flight.
 */
SYNOD_WUR int synod_client_trust_add(synod_client_t *c, const char *name,
                                     const char *address, const char *key_line,
                                     const char *operator_name);

/* Removes relay name and saves. SYNOD_ENOENT when absent, SYNOD_EAGAIN
 * while an asynchronous operation of c is in flight. */
SYNOD_WUR int synod_client_trust_remove(synod_client_t *c, const char *name);

/* Sets the quorum (k >= 2, SYNOD_EINVAL otherwise) and saves. A new
 * profile has k = 2. */
SYNOD_WUR int synod_client_set_quorum(synod_client_t *c, unsigned k);

/* The trust set, owned by c and valid until the next trust call; *k (may
 * be NULL) receives the quorum. */
const synod_client_relay_t *synod_client_trust(const synod_client_t *c,
                                               size_t *n, unsigned *k);

/* --- pins ----------------------------------------------------------------- */

typedef struct synod_client_pin {
  char user_id[SYNOD_USERID_MAX + 1];
  synod_pin_t pin;
  /* Earlier identity keys of this contact, newest first, with the last
   * version each was pinned at. */
  size_t nhistory;
  struct {
    uint64_t version;
    uint8_t identity_key[SYNOD_ED25519_PUBLIC_BYTES];
  } history[SYNOD_CLIENT_HISTORY_MAX];
} synod_client_pin_t;

/* Copies the pin of user_id into *out. SYNOD_ENOENT when none. */
SYNOD_WUR int synod_client_pin_get(const synod_client_t *c, const char *user_id,
                                   synod_client_pin_t *out);

/* Marks the pin of user_id verified (the user compared the fingerprint out
 * of band) and saves. SYNOD_ENOENT when none. */
SYNOD_WUR int synod_client_pin_set_verified(synod_client_t *c,
                                            const char *user_id);

/* --- enrolment ------------------------------------------------------------ */

/* Options of the network operations; NULL or zero fields mean defaults. */
typedef struct synod_client_net_opts {
  uint64_t timeout_ms; /* per relay, connect to answer; 0: 5000 */
  /* Lookup and monitor only: the clock the checks use (0: time(NULL)) and
   * the freshness window (0: SYNOD_LOOKUP_FRESHNESS_DEFAULT). */
  uint64_t now;
  uint64_t window;
} synod_client_net_opts_t;

/*
 * Binds our identity key to our account at the home relay with the
 * one-time enrolment code its operator handed out (proto/README.md 4.3):
 * one session carrying the code, answered by Ready, checked with a Ping.
 * A code for an account already bound to this key is harmless.
 * Errors: the relay's refusal (SYNOD_EAUTH wrong or used code,
 * SYNOD_EUNKNOWNUSER, SYNOD_EDENIED), SYNOD_EUNKNOWNPEER (home relay not
 * in the trust set), SYNOD_ETIMEDOUT, SYNOD_EIO, SYNOD_EBADKEY.
 */
SYNOD_WUR int synod_client_enroll(synod_client_t *c, const char *code,
                                  const synod_client_net_opts_t *opts);

/* --- asynchronous operations ---------------------------------------------- */

/*
 * Cancels op, an operation whose callback has not run yet: its sessions
 * close, and its callback runs once, from the loop, with SYNOD_ECANCELED,
 * whatever the relays already did (a send canceled late may have been
 * stored by the home relay). Calling it again is harmless (0). SYNOD_EINVAL for
 * NULL or from inside op's own callback. Calling it after op's callback
 * returned is a use after free.
 */
int synod_client_op_cancel(synod_client_op_t *op);

/* The data given when op was started; its loop. */
void *synod_client_op_data(const synod_client_op_t *op);
uv_loop_t *synod_client_op_loop(const synod_client_op_t *op);

/* --- register ------------------------------------------------------------- */

typedef enum synod_publish_status {
  SYNOD_PUBLISH_ACCEPTED = 1, /* the relay holds our announcement */
  SYNOD_PUBLISH_REFUSED,      /* it answered with an Error (error, reason) */
  SYNOD_PUBLISH_UNREACHABLE,  /* no session or no answer in time */
  SYNOD_PUBLISH_SKIPPED,      /* not tried: the home relay did not vouch */
} synod_publish_status_t;

/* A short lowercase name of s; never NULL. */
const char *synod_publish_status_name(synod_publish_status_t s);

#define SYNOD_CLIENT_REASON_MAX 256

typedef struct synod_publish_report {
  const char *relay_name;    /* borrowed from the client's trust set */
  const char *operator_name; /* idem */
  synod_publish_status_t status;
  int error; /* SYNOD_E* of REFUSED / UNREACHABLE, else 0 */
  char reason[SYNOD_CLIENT_REASON_MAX]; /* relay's or network's, escaped */
} synod_publish_report_t;

typedef struct synod_register_result {
  uint64_t version;
  uint8_t hash[SYNOD_SHA256_BYTES];
  int home_error;                 /* 0 when the home relay countersigned */
  size_t accepted;                /* relays that hold it, home included */
  synod_publish_report_t *relays; /* trust-set order; malloc'd */
  size_t nrelays;
} synod_register_result_t;

/* register: sign a new version even when the keys did not change */
#define SYNOD_REGISTER_NEXT 0x1u

/*
 * Publishes our announcement: version 1 the first time; the next version
 * when the profile's keys no longer match our newest announcement or with
 * SYNOD_REGISTER_NEXT; otherwise our newest announcement again, as the
 * exact bytes signed then (relays answer a repeat as a success, and a
 * re-signed body would be an equivocation of our own key). A new
 * announcement is saved in `self` BEFORE it is sent, so a crash can never
 * lead to signing two bodies for one version.
 * The home relay (the relay part of our user id, which must be in the
 * trust set: SYNOD_EUNKNOWNPEER otherwise) gets it first; its
 * countersignature is verified with its pinned key and saved; then every
 * other relay gets it with the countersignature, in parallel.
 * *res is always filled and released with synod_register_result_free().
 * Returns 0 when the home relay countersigned (see res for the others),
 * else res->home_error (the relay's refusal, SYNOD_ETIMEDOUT, SYNOD_EIO,
 * SYNOD_EBADKEY...), or SYNOD_EINVAL / SYNOD_ENOMEM / SYNOD_EIO locally.
 */
SYNOD_WUR int synod_client_register(synod_client_t *c, unsigned flags,
                                    const synod_client_net_opts_t *opts,
                                    synod_register_result_t *res);

void synod_register_result_free(synod_register_result_t *r);

/* status: what synod_client_register() returns, or SYNOD_ECANCELED. */
typedef void (*synod_register_cb)(synod_client_op_t *op, int status,
                                  synod_register_result_t *res);

/* synod_client_register() on loop; its result through cb (see the
 * header comment for ownership and cancellation). The new announcement
 * is signed and saved before this returns. */
SYNOD_WUR int synod_client_register_start(synod_client_t *c, uv_loop_t *loop,
                                          unsigned flags,
                                          const synod_client_net_opts_t *opts,
                                          synod_register_cb cb, void *data,
                                          synod_client_op_t **op);

/* --- lookup --------------------------------------------------------------- */

typedef struct synod_lookup_result {
  /* The decision, as synod/quorum.h documents it: error (0 = accepted),
   * reason, flags, announcement and info, pin, and one report per relay
   * in trust-set order. */
  synod_quorum_result_t decision;
  /* Per relay (same order): why it gave no answer when the decision says
   * UNREACHABLE (SYNOD_ETIMEDOUT, SYNOD_EIO, SYNOD_EBADKEY, or the code of
   * an Error it answered with), and the reason text. */
  int *net_error;
  char (*net_reason)[SYNOD_CLIENT_REASON_MAX];
  int pin_saved; /* 1 when the new pin was written to the profile */
  /* private: the answers decision.announcement points into */
  Synod__V1__Frame **answers_;
  size_t nanswers_;
} synod_lookup_result_t;

/*
 * Looks user_id up at every relay of the trust set in parallel
 * (LookupRequest from the pinned version), decides, and on acceptance
 * stores the new pin (the old identity key goes to the pin's history when
 * it changed). *res is always filled (also on refusal) and released with
 * synod_lookup_result_free(). Returns res->decision.error (0 only when a
 * key was accepted: SYNOD_ENOQUORUM, SYNOD_EROLLBACK, SYNOD_ESTALE,
 * SYNOD_EEQUIVOCATION, SYNOD_EUNKNOWNUSER, SYNOD_EUNKNOWNPEER refusals),
 * or a local error (SYNOD_EINVAL, SYNOD_ENOMEM, SYNOD_EIO when the pin
 * could not be saved: the decision is still in res).
 * Not yet: asking a relay again when its answer stops short of its head
 * (synod-relay caps an answer at 64 links; that relay is then reported
 * BAD_ANNOUNCEMENT), keeping the equivocation proofs answers carry, and
 * namespace keys of home relays outside the trust set (a user whose home
 * relay is not in the trust set is refused with SYNOD_EUNKNOWNPEER).
 */
SYNOD_WUR int synod_client_lookup(synod_client_t *c, const char *user_id,
                                  const synod_client_net_opts_t *opts,
                                  synod_lookup_result_t *res);

void synod_lookup_result_free(synod_lookup_result_t *r);

/* status: what synod_client_lookup() returns, or SYNOD_ECANCELED (then
 * res->decision.error is SYNOD_ECANCELED too, and no pin was stored). */
typedef void (*synod_lookup_cb)(synod_client_op_t *op, int status,
                                synod_lookup_result_t *res);

/* synod_client_lookup() on loop; its result through cb. SYNOD_EINVAL at
 * once for an invalid user id. */
SYNOD_WUR int synod_client_lookup_start(synod_client_t *c, uv_loop_t *loop,
                                        const char *user_id,
                                        const synod_client_net_opts_t *opts,
                                        synod_lookup_cb cb, void *data,
                                        synod_client_op_t **op);

/* --- self-monitoring ------------------------------------------------------ */

typedef enum synod_monitor_status {
  SYNOD_MONITOR_OK = 1,      /* the head is our newest announcement */
  SYNOD_MONITOR_BEHIND,      /* an older announcement of ours */
  SYNOD_MONITOR_MISSING,     /* the relay knows none of ours */
  SYNOD_MONITOR_FOREIGN,     /* ALARM: an announcement we did not sign */
  SYNOD_MONITOR_EQUIVOCATED, /* ALARM: a proof that our key signed twice */
  SYNOD_MONITOR_REFUSED_US,  /* ALARM when home: our key is refused */
  SYNOD_MONITOR_UNREACHABLE, /* no session or no answer */
  SYNOD_MONITOR_BAD_ANSWER,  /* answer not signed by the pinned key, or
                                not about us, or stale */
} synod_monitor_status_t;

const char *synod_monitor_status_name(synod_monitor_status_t s);

typedef struct synod_monitor_report {
  const char *relay_name; /* borrowed from the trust set */
  synod_monitor_status_t status;
  int error; /* SYNOD_E* detail, else 0 */
  char reason[SYNOD_CLIENT_REASON_MAX];
  /* What the relay signed (said = 1 when the answer verified). */
  int said;
  uint64_t version;
  uint8_t head_hash[SYNOD_SHA256_BYTES];
  uint64_t time;
  /* FOREIGN: the evidence. The identity key of the announcement we did not
   * sign (has_foreign_key = 1 when the relay sent the announcement and its
   * signature verified), and the relay's signed answer as received
   * (owned; body and signature bytes, verifiable by anyone with the
   * relay's key). */
  int has_foreign_key;
  uint8_t foreign_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t *answer_body;
  size_t answer_body_len;
  uint8_t answer_signature[SYNOD_ED25519_SIG_BYTES];
} synod_monitor_report_t;

typedef struct synod_monitor_result {
  int alarm; /* 1: some relay holds a key we did not sign (see relays) */
  synod_monitor_report_t *relays; /* trust-set order; malloc'd */
  size_t nrelays;
} synod_monitor_result_t;

/*
 * Looks up our own user at every relay of the trust set and compares each
 * signed head with the announcements this profile signed. Sets
 * res->alarm on FOREIGN, EQUIVOCATED, and on the home relay refusing our
 * identity key (EBADKEY: the account was rebound to another key).
 * *res is always filled; release with synod_monitor_result_free().
 * Returns 0 when the round ran (an alarm is a result, not an error), or
 * SYNOD_EINVAL / SYNOD_ENOMEM.
 */
SYNOD_WUR int synod_client_monitor(synod_client_t *c,
                                   const synod_client_net_opts_t *opts,
                                   synod_monitor_result_t *res);

void synod_monitor_result_free(synod_monitor_result_t *r);

/* status: what synod_client_monitor() returns, or SYNOD_ECANCELED (then
 * res holds no reports). */
typedef void (*synod_monitor_cb)(synod_client_op_t *op, int status,
                                 synod_monitor_result_t *res);

/* synod_client_monitor() on loop; its result through cb. */
SYNOD_WUR int synod_client_monitor_start(synod_client_t *c, uv_loop_t *loop,
                                         const synod_client_net_opts_t *opts,
                                         synod_monitor_cb cb, void *data,
                                         synod_client_op_t **op);

/* --- messaging ------------------------------------------------------------ */

#define SYNOD_CLIENT_TEXT "text/plain; charset=utf-8"

typedef struct synod_send_result {
  /* The recipient's quorum lookup, as synod_client_lookup() fills it: on
   * refusal decision.reason says why in one sentence; on acceptance
   * decision.flags tell a key change (SYNOD_QUORUM_RESET, FIRST_CONTACT,
   * VERIFIED_CLEARED, ...) and decision.relays which relays vouched. */
  synod_lookup_result_t lookup;
  uint8_t message_id[16];
  size_t ndevices;  /* device keys the message was sealed to */
  int duplicate;    /* the home relay already held this message id */
  int submit_error; /* 0, or why the home relay did not take it */
  char reason[SYNOD_CLIENT_REASON_MAX]; /* the relay's or network's */
} synod_send_result_t;

/*
 * Sends body (body_len bytes, content_type e.g. SYNOD_CLIENT_TEXT) to
 * recipient: a quorum lookup of the recipient (refused: returns the
 * decision's error, nothing sent), HPKE-sealed and signed
 * (synod/message.h) to every device key of the accepted announcement,
 * Submitted to our home relay, and 0 only once it answered Accepted
 * (stored or duplicate). A relay answering EAGAIN is asked again, with the
 * same message id, a few times. *res is always filled; release it with
 * synod_send_result_free().
 * Errors: the lookup's refusal (SYNOD_ENOQUORUM, SYNOD_EROLLBACK,
 * SYNOD_ESTALE, SYNOD_EEQUIVOCATION, SYNOD_EUNKNOWNUSER,
 * SYNOD_EUNKNOWNPEER); the home relay's refusal or network failure
 * (res->submit_error: SYNOD_EQUOTA, SYNOD_ERATE, SYNOD_ETIMEDOUT...);
 * SYNOD_EINVAL, SYNOD_ETOOBIG, SYNOD_ENOMEM, SYNOD_EIO.
 */
SYNOD_WUR int synod_client_send(synod_client_t *c, const char *recipient,
                                const char *content_type, const uint8_t *body,
                                size_t body_len,
                                const synod_client_net_opts_t *opts,
                                synod_send_result_t *res);

void synod_send_result_free(synod_send_result_t *r);

/* status: what synod_client_send() returns, or SYNOD_ECANCELED. */
typedef void (*synod_send_cb)(synod_client_op_t *op, int status,
                              synod_send_result_t *res);

/* synod_client_send() on loop; its result through cb. content_type and
 * body are copied. SYNOD_EINVAL at once for bad arguments; every other
 * failure (SYNOD_EUNKNOWNPEER too) comes through cb. A try that failed
 * with "try later" is retried after a pause on loop's timer. */
SYNOD_WUR int synod_client_send_start(synod_client_t *c, uv_loop_t *loop,
                                      const char *recipient,
                                      const char *content_type,
                                      const uint8_t *body, size_t body_len,
                                      const synod_client_net_opts_t *opts,
                                      synod_send_cb cb, void *data,
                                      synod_client_op_t **op);

typedef enum synod_recv_status {
  SYNOD_RECV_OK = 1,   /* verified: sender, time, content are authentic */
  SYNOD_RECV_REJECTED, /* failed to open or verify: nothing of it shown,
                          acknowledged so that it is not delivered again */
  SYNOD_RECV_HELD,     /* the sender's key has no quorum now: not
                          acknowledged, delivered again next time */
  SYNOD_RECV_FAILED,   /* not a message: a relay's signed notice that a
                          message WE sent was not delivered (below) */
} synod_recv_status_t;

/* One received message, borrowed for the duration of the callback. */
typedef struct synod_received {
  synod_recv_status_t status;
  const char *sender;        /* the envelope's sender (authentic only if OK) */
  const uint8_t *message_id; /* 16 bytes */
  uint64_t time;             /* OK: the sender's clock; else the relay's */
  const char *content_type;  /* OK only, else NULL */
  const uint8_t *body;       /* OK only, else NULL */
  size_t body_len;
  int error;             /* REJECTED / HELD / FAILED: the SYNOD_E* cause */
  const char *reason;    /* REJECTED / HELD / FAILED: one sentence */
  unsigned sender_flags; /* the sender lookup's SYNOD_QUORUM_* flags */
  /* FAILED only (proto/README.md 10): message_id is the id of the message
   * we sent, sender our own user id, time the relay's, error the relay's
   * code (SYNOD_EEXPIRED: expired undelivered; SYNOD_EUNKNOWNUSER,
   * SYNOD_EDENIED, SYNOD_EQUOTA...), and (NULL / 0 for the others): */
  const char *recipient; /* as the notice names it; "" when it names none
                            (a relay that a peer refused it to says so) */
  const char *relay;     /* the relay that claims the failure */
  int relay_verified;    /* 1: signed by that relay's trust-set key; 0: the
                            relay is not in the trust set, so the claim is
                            only the home relay's word */
} synod_received_t;

/* Returns 0 when the application has taken the message (it is then
 * acknowledged); any other value stops synod_client_recv(), which returns
 * it, without acknowledging this message. */
typedef int (*synod_recv_cb)(void *arg, const synod_received_t *m);

/* recv: keep the session open and wait for new messages until the
 * callback stops it or the relay closes the session */
#define SYNOD_RECV_FOLLOW 0x1u

/*
 * Receives the messages waiting at our home relay: one session, every
 * Deliver opened in turn. For each envelope the sender is looked up
 * (quorum, pin updated, once per sender and call) and the message opened
 * and verified with the sender's accepted identity key (synod/message.h);
 * cb sees it, and the relay gets a DeliveryAck only after cb returned 0.
 * A message that fails to open or verify is given to cb as REJECTED (its
 * return value is then only a stop request) and acknowledged. Message ids
 * already taken (the profile's `seen` file, the newest 4096) are
 * acknowledged again without calling cb. A delivery-failure notice is
 * given to cb as FAILED and acknowledged when cb returns 0 (a non-zero
 * value stops, and the notice comes again next time); a notice naming a
 * trust-set relay but not signed by its key, or malformed, is a forgery
 * or junk: acknowledged and not shown. Without SYNOD_RECV_FOLLOW,
 * returns 0 once the relay has nothing more; *taken (may be NULL) counts
 * the OK messages cb took. Blocking: synod_client_recv_start() below on a
 * private loop.
 * Errors: cb's non-zero value; SYNOD_EUNKNOWNPEER (home relay not in the
 * trust set), the session's failure (SYNOD_ETIMEDOUT, SYNOD_EIO,
 * SYNOD_EBADKEY, the relay's Error), SYNOD_ENOMEM, SYNOD_EIO.
 */
SYNOD_WUR int synod_client_recv(synod_client_t *c, unsigned flags,
                                synod_recv_cb cb, void *arg,
                                const synod_client_net_opts_t *opts,
                                size_t *taken);

/* A receive session's callbacks (op first; its data from
 * synod_client_op_data()). on_message: m is borrowed for the call; return
 * 0 when the application has taken the message (it is recorded in `seen`
 * and acknowledged after on_message returned), any other value ends the
 * session with that status and this message unacknowledged. on_done: once,
 * at the end: status is what synod_client_recv() returns (0 when the
 * relay had nothing more, or closed a follow session while idle), or
 * SYNOD_ECANCELED; taken counts the OK messages on_message took. */
typedef int (*synod_recv_msg_cb)(synod_client_op_t *op,
                                 const synod_received_t *m);
typedef void (*synod_recv_done_cb)(synod_client_op_t *op, int status,
                                   size_t taken);

/*
 * synod_client_recv() as a session on loop: the same steps, each sender
 * looked up on loop while the session waits (messages are handled one at
 * a time, in order). With SYNOD_RECV_FOLLOW the session stays open until
 * the relay closes it, on_message stops it, or it is canceled (then
 * on_done gets SYNOD_ECANCELED; what was taken before is saved and, while
 * the session was still up, acknowledged). One session per client at a
 * time: SYNOD_EAGAIN for a second. SYNOD_EINVAL for bad arguments; every
 * other failure comes through on_done.
 */
SYNOD_WUR int synod_client_recv_start(synod_client_t *c, uv_loop_t *loop,
                                      unsigned flags,
                                      const synod_client_net_opts_t *opts,
                                      synod_recv_msg_cb on_message,
                                      synod_recv_done_cb on_done, void *data,
                                      synod_client_op_t **op);

/* --- safety numbers ------------------------------------------------------- */

/* "12345 67890 12345 67890 12345 67890" and its NUL. */
#define SYNOD_SAFETY_NUMBER_MAX 36

/*
 * The safety number of two users and their identity keys: 30 decimal
 * digits in 6 groups, the same whichever side computes it (the pairs are
 * ordered by user id), different when either key changes. It is
 * SHA-256("synod/v1/safety-number" NUL, then per user in that order:
 * the id's length as two bytes big-endian, the id, the 32-byte key), each
 * group the big-endian value of 5 hash bytes modulo 100000. SYNOD_EINVAL
 * on an invalid user id.
 */
SYNOD_WUR int synod_safety_number(
    char out[static SYNOD_SAFETY_NUMBER_MAX], const char *user_a,
    const uint8_t key_a[static SYNOD_ED25519_PUBLIC_BYTES], const char *user_b,
    const uint8_t key_b[static SYNOD_ED25519_PUBLIC_BYTES]);

/* The safety number of our identity key and the PINNED key of user_id (no
 * lookup: call synod_client_lookup() first for a current pin).
 * SYNOD_ENOENT when user_id has no pin. */
SYNOD_WUR int
synod_client_safety_number(const synod_client_t *c, const char *user_id,
                           char out[static SYNOD_SAFETY_NUMBER_MAX]);

/* --- purge and devices (client/ops.c) ------------------------------------- */

typedef enum synod_purge_scope {
  SYNOD_PURGE_ALL = 1,          /* every message stored for us */
  SYNOD_PURGE_CONVERSATION = 2, /* those between us and one peer */
  SYNOD_PURGE_IDS = 3,          /* those with the listed message ids */
} synod_purge_scope_t;

#define SYNOD_PURGE_IDS_MAX 4096

typedef struct synod_purge_result {
  uint64_t deleted; /* envelopes the home relay deleted (PurgeResult) */
  int error;        /* 0, or the relay's refusal / the network's failure */
  char reason[SYNOD_CLIENT_REASON_MAX]; /* the relay's or network's */
} synod_purge_result_t;

/*
 * Asks our home relay to delete messages stored for us (proto/README.md
 * 9): a PurgeBody {our user id, scope, peer (CONVERSATION only), ids (IDS
 * only, 16 bytes each, at most SYNOD_PURGE_IDS_MAX), time = opts->now or
 * now} signed by our identity key, sent as Purge in one session. The relay
 * deletes, among messages it received up to that second, our inbox, the
 * ciphertext we sent to its other users and our outbound messages not yet
 * accepted by a peer, and forwards the purge to its peers (which delete
 * the in-flight messages of ours they hold; not counted here). *res is
 * always filled. Returns 0 when the relay answered PurgeResult (then
 * res->deleted), else res->error: the relay's refusal (SYNOD_EVERIFY,
 * SYNOD_EDENIED, SYNOD_EAGAIN...), SYNOD_ETIMEDOUT, SYNOD_EIO,
 * SYNOD_EBADKEY; SYNOD_EUNKNOWNPEER when the home relay is not in the
 * trust set; SYNOD_EINVAL (bad scope, peer or ids), SYNOD_ENOMEM.
 */
SYNOD_WUR int synod_client_purge(synod_client_t *c, synod_purge_scope_t scope,
                                 const char *peer, const uint8_t (*ids)[16],
                                 size_t nids,
                                 const synod_client_net_opts_t *opts,
                                 synod_purge_result_t *res);

/* status: what synod_client_purge() returns (res->error), or
 * SYNOD_ECANCELED. res is the operation's, valid during the call (it owns
 * nothing). */
typedef void (*synod_purge_cb)(synod_client_op_t *op, int status,
                               synod_purge_result_t *res);

/* synod_client_purge() on loop; its result through cb. peer and ids are
 * read during this call only. SYNOD_EINVAL at once for a NULL c, loop or
 * cb; a refused request (bad scope, peer or ids, no home relay) comes
 * through cb like the relay's refusals. */
SYNOD_WUR int synod_client_purge_start(synod_client_t *c, uv_loop_t *loop,
                                       synod_purge_scope_t scope,
                                       const char *peer,
                                       const uint8_t (*ids)[16], size_t nids,
                                       const synod_client_net_opts_t *opts,
                                       synod_purge_cb cb, void *data,
                                       synod_client_op_t **op);

typedef struct synod_client_device {
  uint32_t device_id;
  char name[SYNOD_CLIENT_NAME_MAX + 1];
  uint8_t x25519_key[SYNOD_X25519_BYTES];
  uint64_t created;
  int current; /* 1: the key of this device (the profile's own) */
} synod_client_device_t;

/*
 * The device keys of our profile, up to max into out (may be NULL when max
 * is 0); *n receives how many there are. A profile holds one device key
 * today: its own. *registered (may be NULL) receives the newest
 * announcement version this profile signed, 0 before the first register.
 */
void synod_client_devices(const synod_client_t *c, synod_client_device_t *out,
                          size_t max, size_t *n, uint64_t *registered);

/*
 * Replaces this device's key (X25519) with a new one: the keys file is
 * re-sealed with pass, which must be the profile's passphrase (it is
 * checked against the file first: SYNOD_EDECRYPT when wrong, SYNOD_EVERIFY
 * when the file no longer holds this profile's keys), with kdf (NULL: the
 * default cost). The file is replaced atomically; on any error the
 * profile keeps its old key, on disk and in c. Afterwards the profile's
 * keys no longer match its newest announcement, so the next
 * synod_client_register() signs the next version with the new key
 * (continuity: the same identity key). Messages sealed to the old key
 * and not yet received can no longer be read: receive them first.
 * Returns 0, SYNOD_EINVAL, SYNOD_ENOMEM, SYNOD_ECRYPTO or a keyfile error;
 * SYNOD_EAGAIN while an asynchronous operation of c is in flight.
 */
SYNOD_WUR int synod_client_rotate_device_key(synod_client_t *c,
                                             const char *pass, size_t passlen,
                                             const synod_keyfile_kdf_t *kdf);

/* --- key reset (client/reset.c) ------------------------------------------- */

typedef struct synod_reset_result {
  uint8_t old_identity_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t new_identity_key[SYNOD_ED25519_PUBLIC_BYTES]; /* once keys_saved */
  /* 0 when the home relay took the new key; else its refusal or the
   * network's failure, with the reason (the relay's text, escaped). */
  int enroll_error;
  char reason[SYNOD_CLIENT_REASON_MAX];
  int keys_saved;              /* 1: the profile holds the new keys now */
  uint64_t replaced_version;   /* the home relay's head the reset follows */
  synod_register_result_t reg; /* the publication (zeroed if not reached) */
} synod_reset_result_t;

/*
 * Resets our keys (a lost device, or compromised keys; proto/README.md
 * 7.1-7.2): a new identity key and a new device key, then
 *  1. both are sealed with pass (which must open the profile's keys file:
 *     SYNOD_EDECRYPT, SYNOD_EVERIFY otherwise; kdf NULL: the default cost)
 *     into the profile directory as `keys.reset`;
 *  2. the home relay is asked to accept the new key, with code (the
 *     one-time code its operator printed with `synod-relay user
 *     reenroll`; NULL: none, which the relay refuses while the account is
 *     bound to the old key). On refusal nothing changed: the profile keeps
 *     its old keys, `keys.reset` is removed, res->enroll_error and
 *     res->reason say why (SYNOD_EBADKEY: the account is still bound to
 *     the old key, it was not re-enrolled; SYNOD_EAUTH: wrong or used
 *     code, or no code for a re-enrolled account; SYNOD_EDENIED: account
 *     disabled; SYNOD_EUNKNOWNUSER; SYNOD_ETIMEDOUT, SYNOD_EIO...);
 *  3. accepted, `keys.reset` replaces `keys` (res->keys_saved): the old
 *     keys are gone and the account is bound to the new identity key;
 *  4. the home relay's head of our chain is fetched and verified (its
 *     signed answer, the head link), because whoever held the old key may
 *     have published past our own newest announcement; then
 *     synod_client_register() publishes the next version, signed by the
 *     new key alone with reset set (no continuity signature: the old key
 *     is not trusted), to the home relay and then the trust set
 *     (res->reg, as synod_client_register() fills it).
 * Contacts' next lookup reports the reset and drops their verified mark.
 * Messages sealed to the old device key and not yet received can no
 * longer be read. Returns 0 when the home relay countersigned the reset;
 * else res->enroll_error (nothing changed), or after step 3 the failure of
 * step 4 (res->reg.home_error: the new keys are kept and `synod register`
 * publishes the reset later), or SYNOD_EINVAL, SYNOD_EUNKNOWNPEER (home
 * relay not in the trust set), SYNOD_ENOMEM, SYNOD_ECRYPTO. If the keys
 * file cannot be replaced after the relay took the new key, SYNOD_EIO and
 * res->reason names `keys.reset`, which then holds the account's keys.
 * *res is always filled; release it with synod_reset_result_free().
 * Blocking only; SYNOD_EAGAIN while an asynchronous operation of c is in
 * flight (they use the keys).
 */
SYNOD_WUR int synod_client_reset_keys(synod_client_t *c, const char *code,
                                      const char *pass, size_t passlen,
                                      const synod_keyfile_kdf_t *kdf,
                                      const synod_client_net_opts_t *opts,
                                      synod_reset_result_t *res);

void synod_reset_result_free(synod_reset_result_t *r);

#endif
