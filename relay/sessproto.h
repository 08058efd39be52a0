/*
 * The accepted session's protocol rules, sans-I/O (STYLE.md: the session
 * state machines take values in and give decisions out). session.c owns
 * the connection, the database and the delivery window; this module owns
 * what a session may do when: its phase, its role, which frame kinds each
 * role may send, and the checks of a request before anything is stored.
 * tests/fuzz/fuzz_session.c drives it with arbitrary frame sequences.
 *
 * Phases: HANDSHAKE (Hello/Auth, handled by lib/conn.c; no frame reaches
 * the session), AUTHENTICATING (a client of this relay whose account the
 * database is looking up), READY, CLOSED. Roles: a MEMBER (a user with an
 * account here), a VISITOR (a user of another relay, here for the
 * directory: every messaging request is refused EDENIED), a RELAY (a
 * configured peer with its pinned key).
 *
 * Every decision names one action; an error action always carries a
 * negative SYNOD_E* code and a short reason (a static string).
 *
 * Ownership: sessproto_t owns its copy of the user id (sessproto_free).
 * The config and the peer it points to are borrowed and must outlive it.
 * Frames and messages passed in are only read during the call, except
 * where a function hands back a parsed body the caller then owns.
 */
#ifndef SYNOD_RELAY_SESSPROTO_H
#define SYNOD_RELAY_SESSPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "synod.pb-c.h"
#include "synod/handshake.h"

typedef enum sessproto_phase {
  SESSPROTO_HANDSHAKE = 0,
  SESSPROTO_AUTHENTICATING,
  SESSPROTO_READY,
  SESSPROTO_CLOSED,
} sessproto_phase_t;

typedef enum sessproto_role {
  SESSPROTO_NOBODY = 0,
  SESSPROTO_MEMBER,
  SESSPROTO_VISITOR,
  SESSPROTO_RELAY,
} sessproto_role_t;

typedef enum sessproto_act {
  /* After authentication (sessproto_auth, sessproto_auth_done). */
  SESSPROTO_REFUSE = 1, /* refuse the handshake with code, why */
  SESSPROTO_ACCEPT,     /* accept: the session is READY */
  SESSPROTO_LOOKUP,     /* look the account up (local, code hash) */
  /* For a frame (sessproto_frame). */
  SESSPROTO_CLOSE,     /* protocol violation: Error{code, 0}, close */
  SESSPROTO_ERROR,     /* a request error: Error{code, request id} */
  SESSPROTO_IGNORE,    /* nothing to do or say */
  SESSPROTO_LOG_ERROR, /* the peer reported a request-level error */
  SESSPROTO_PONG,
  SESSPROTO_SUBMIT,     /* a member's Submit with an envelope */
  SESSPROTO_ACK,        /* a member's DeliveryAck, ids checked */
  SESSPROTO_FETCH,      /* a member's Fetch */
  SESSPROTO_PURGE,      /* a member's Purge (check with sessproto_purge) */
  SESSPROTO_PEER_PURGE, /* a peer's PeerPurge (idem) */
  SESSPROTO_FORWARD,    /* a peer's Forward with 1..1024 items */
  SESSPROTO_DIRECTORY,  /* the key directory's (directory.c) */
} sessproto_act_t;

typedef struct sessproto_decision {
  sessproto_act_t act;
  int code;        /* REFUSE, CLOSE, ERROR: the SYNOD_E* code */
  const char *why; /* REFUSE, CLOSE, ERROR: static reason */
  /* LOOKUP: the local part and the enrolment code's hash (has_code). */
  char local[SYNOD_USERID_LOCAL_MAX + 1];
  uint8_t code_hash[SYNOD_SHA256_BYTES];
  int has_code;
} sessproto_decision_t;

typedef struct sessproto {
  const relay_config_t *cfg;
  sessproto_phase_t phase;
  sessproto_role_t role;
  char *user; /* MEMBER, VISITOR: full user id (owned) */
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES]; /* MEMBER, VISITOR: identity */
  const relay_config_peer_t *peer;         /* RELAY */
} sessproto_t;

/* A new session in the HANDSHAKE phase under cfg (borrowed). */
void sessproto_init(sessproto_t *sp, const relay_config_t *cfg);

/* Releases the user id; sp may be re-initialised after. */
void sessproto_free(sessproto_t *sp);

/*
 * The peer finished the handshake as p. stopping: the relay shuts down;
 * nsessions: the sessions open, this one included. Decides REFUSE (the
 * session becomes CLOSED), ACCEPT (a relay peer or a visitor: READY) or
 * LOOKUP (a user of this relay: AUTHENTICATING until sessproto_auth_done).
 * Called in any other phase than HANDSHAKE: REFUSE EPROTO.
 */
void sessproto_auth(sessproto_t *sp, sessproto_decision_t *d,
                    const synod_handshake_peer_t *p, int stopping,
                    size_t nsessions);

/* The account lookup ended with status (0: found). ACCEPT (READY, role
 * MEMBER) or REFUSE with the code and words the client is shown. */
void sessproto_auth_done(sessproto_t *sp, sessproto_decision_t *d, int status);

/* The connection closed: CLOSED, whatever the phase. */
void sessproto_closed(sessproto_t *sp);

/*
 * What to do with frame f (proto/README.md section 5). Outside READY:
 * CLOSE EPROTO. A frame of the other role is CLOSE EDENIED, an answer
 * nobody asked for or a handshake frame CLOSE EPROTO; both make the phase
 * CLOSED. A visitor's messaging request is ERROR EDENIED. Requests with
 * simple shape rules are checked here (a Submit needs an envelope, a
 * DeliveryAck at most 4096 ids of 16 bytes, a Forward 1 to 1024 items).
 */
void sessproto_frame(sessproto_t *sp, sessproto_decision_t *d,
                     const Synod__V1__Frame *f);

/*
 * Checks a Purge (member: signed by the session's identity key, for the
 * session's user; relay: for a user of the peer's namespace) at now.
 * On success *body is the parsed PurgeBody, owned by the caller
 * (synod_wire_free_message); on error it is NULL and *why says why.
 * Errors: SYNOD_EPARSE, SYNOD_EVERIFY, SYNOD_EDENIED, SYNOD_ETOOBIG,
 * SYNOD_EINVAL (dated more than 300 s after now).
 */
SYNOD_WUR int sessproto_purge(const sessproto_t *sp, const Synod__V1__Purge *m,
                              uint64_t now, Synod__V1__PurgeBody **body,
                              const char **why);

/* Checks a member's envelope after the relay set sender, sender_relay and
 * time (policy_check_envelope under the configured limits). On success
 * *ttl is the effective TTL, *llen the recipient's local part length and
 * *relay its relay name (pointing into e->recipient). */
SYNOD_WUR int sessproto_submit(const sessproto_t *sp,
                               const Synod__V1__Envelope *e, uint32_t *ttl,
                               size_t *llen, const char **relay,
                               const char **why);

/* Checks an envelope a peer forwards at now; 0 or the code to reject it
 * with. On success *expires is when it expires here and *llen the length
 * of the recipient's local part. */
SYNOD_WUR int sessproto_forwarded(const sessproto_t *sp,
                                  const Synod__V1__Envelope *e, uint64_t now,
                                  uint64_t *expires, size_t *llen);

/* Checks a DeliveryFailure a peer forwards: signed by the peer's key,
 * about a 16-byte message id, naming the peer. On success *body is the
 * parsed body (caller frees with synod_wire_free_message). */
SYNOD_WUR int sessproto_failure(const sessproto_t *sp,
                                const Synod__V1__DeliveryFailure *df,
                                Synod__V1__DeliveryFailureBody **body);

#endif
