/* The accepted session's protocol rules, sans-I/O; see sessproto.h. */
#include "sessproto.h"

#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "policy.h"
#include "synod/crypto.h"
#include "synod/sig.h"
#include "synod/userid.h"
#include "synod/wire.h"

static void set(sessproto_decision_t *d, sessproto_act_t act, int code,
                const char *why) {
  memset(d, 0, sizeof *d);
  d->act = act;
  d->code = code;
  d->why = why;
}

static void refuse(sessproto_t *sp, sessproto_decision_t *d, int code,
                   const char *why) {
  set(d, SESSPROTO_REFUSE, code, why);
  sp->phase = SESSPROTO_CLOSED;
}

void sessproto_init(sessproto_t *sp, const relay_config_t *cfg) {
  memset(sp, 0, sizeof *sp);
  sp->cfg = cfg;
}

void sessproto_free(sessproto_t *sp) {
  free(sp->user);
  sp->user = NULL;
}

void sessproto_closed(sessproto_t *sp) {
  sp->phase = SESSPROTO_CLOSED;
}

/* --- authentication --------------------------------------------------------- */

void sessproto_auth(sessproto_t *sp, sessproto_decision_t *d,
                    const synod_handshake_peer_t *p, int stopping,
                    size_t nsessions) {
  const relay_config_t *cfg = sp->cfg;
  if (sp->phase != SESSPROTO_HANDSHAKE) {
    refuse(sp, d, SYNOD_EPROTO, "authenticated twice");
    return;
  }
  if (stopping) {
    refuse(sp, d, SYNOD_EAGAIN, "relay is shutting down");
    return;
  }
  if (nsessions > cfg->max_connections) {
    refuse(sp, d, SYNOD_ELIMIT, "too many connections");
    return;
  }
  if (p->role == SYNOD__V1__ROLE__ROLE_RELAY) {
    const relay_config_peer_t *peer = config_find_peer(cfg, p->name);
    if (!peer) {
      refuse(sp, d, SYNOD_EUNKNOWNPEER, "not a configured peer");
      return;
    }
    if (!synod_memeq(peer->key, p->public_key, 32)) {
      refuse(sp, d, SYNOD_EBADKEY, "not the pinned key of this peer");
      return;
    }
    sp->role = SESSPROTO_RELAY;
    sp->peer = peer;
    sp->phase = SESSPROTO_READY;
    set(d, SESSPROTO_ACCEPT, 0, NULL);
    return;
  }

  size_t llen;
  const char *relay;
  if (synod_userid_parse(p->name, &llen, &relay) != 0) {
    refuse(sp, d, SYNOD_EPARSE, "malformed user id");
    return;
  }
  free(sp->user);
  if (!(sp->user = strdup(p->name))) {
    refuse(sp, d, SYNOD_ENOMEM, "out of memory");
    return;
  }
  memcpy(sp->key, p->public_key, 32);
  if (strcmp(relay, cfg->name) != 0) {
    /* A visitor: a user of another relay, here for the directory. It has
     * no account, so every messaging request is refused (EDENIED). */
    sp->role = SESSPROTO_VISITOR;
    sp->phase = SESSPROTO_READY;
    set(d, SESSPROTO_ACCEPT, 0, NULL);
    return;
  }
  set(d, SESSPROTO_LOOKUP, 0, NULL);
  memcpy(d->local, p->name, llen);
  d->local[llen] = '\0';
  if (p->enrollment_code) {
    if (admin_enroll_code_hash(d->code_hash, p->enrollment_code,
                               strlen(p->enrollment_code)) != 0) {
      refuse(sp, d, SYNOD_EAUTH, "malformed enrolment code");
      return;
    }
    d->has_code = 1;
  }
  sp->phase = SESSPROTO_AUTHENTICATING;
}

void sessproto_auth_done(sessproto_t *sp, sessproto_decision_t *d, int status) {
  if (sp->phase != SESSPROTO_AUTHENTICATING) {
    refuse(sp, d, SYNOD_EPROTO, "no account lookup was pending");
    return;
  }
  if (status == 0) {
    sp->role = SESSPROTO_MEMBER;
    sp->phase = SESSPROTO_READY;
    set(d, SESSPROTO_ACCEPT, 0, NULL);
    return;
  }
  switch (status) {
  case SYNOD_EUNKNOWNUSER:
    refuse(sp, d, status, "no such account");
    break;
  case SYNOD_EDENIED:
    refuse(sp, d, status, "account disabled");
    break;
  case SYNOD_EAUTH:
    refuse(sp, d, status,
           "not enrolled: a valid one-time enrolment code is required");
    break;
  case SYNOD_EBADKEY:
    refuse(sp, d, status, "the account is bound to another identity key");
    break;
  case SYNOD_EAGAIN:
    refuse(sp, d, status, "database unavailable, try later");
    break;
  default:
    refuse(sp, d, SYNOD_EINTERNAL, "internal error");
    break;
  }
}

/* --- frames -------------------------------------------------------------------- */

/*
 * proto/README.md section 5: a frame of the other role (a client
 * forwarding, a peer relay submitting) is a protocol violation EDENIED; a
 * response nobody asked for (nothing is ever asked on an accepted
 * connection) or a handshake frame after the handshake is EPROTO. Both get
 * Error{code, request_id 0} and close the connection. 0: a frame for the
 * dispatch, where a visitor's messaging request stays a request error.
 */
static int frame_violation(Synod__V1__Frame__BodyCase body, int peer) {
  switch (body) {
  case SYNOD__V1__FRAME__BODY_SUBMIT:
  case SYNOD__V1__FRAME__BODY_DELIVERY_ACK:
  case SYNOD__V1__FRAME__BODY_FETCH:
  case SYNOD__V1__FRAME__BODY_PURGE:
    return peer ? SYNOD_EDENIED : 0;
  case SYNOD__V1__FRAME__BODY_FORWARD:
  case SYNOD__V1__FRAME__BODY_PEER_PURGE:
    return peer ? 0 : SYNOD_EDENIED;
  case SYNOD__V1__FRAME__BODY_DELIVERY_FAILURE:
    return SYNOD_EDENIED; /* a relay's push to its client */
  case SYNOD__V1__FRAME__BODY_PUBLISH:
    return peer ? SYNOD_EDENIED : 0;
  case SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT:
  case SYNOD__V1__FRAME__BODY_HEADS_SUMMARY:
  case SYNOD__V1__FRAME__BODY_FETCH_ANNOUNCEMENTS:
    return peer ? 0 : SYNOD_EDENIED;
  case SYNOD__V1__FRAME__BODY_PUBLISH_RESULT: /* responses */
  case SYNOD__V1__FRAME__BODY_COUNTERSIGN_RESPONSE:
  case SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER:
  case SYNOD__V1__FRAME__BODY_PROOF_LIST:
  case SYNOD__V1__FRAME__BODY_HELLO: /* handshake frames */
  case SYNOD__V1__FRAME__BODY_AUTH:
  case SYNOD__V1__FRAME__BODY_READY:
  case SYNOD__V1__FRAME__BODY_ACCEPTED:
  case SYNOD__V1__FRAME__BODY_DELIVER:
  case SYNOD__V1__FRAME__BODY_FORWARD_ACK:
  case SYNOD__V1__FRAME__BODY_PURGE_RESULT:
    return SYNOD_EPROTO;
  default:
    return 0;
  }
}

static void check_ack(sessproto_decision_t *d,
                      const Synod__V1__DeliveryAck *m) {
  if (m->n_message_ids == 0) {
    set(d, SESSPROTO_IGNORE, 0, NULL);
    return;
  }
  if (m->n_message_ids > 4096) {
    set(d, SESSPROTO_ERROR, SYNOD_ETOOBIG,
        "too many ids in one acknowledgement");
    return;
  }
  for (size_t i = 0; i < m->n_message_ids; i++) {
    if (m->message_ids[i].len != 16) {
      set(d, SESSPROTO_ERROR, SYNOD_EPARSE, "message ids are 16 bytes");
      return;
    }
  }
  set(d, SESSPROTO_ACK, 0, NULL);
}

void sessproto_frame(sessproto_t *sp, sessproto_decision_t *d,
                     const Synod__V1__Frame *f) {
  if (sp->phase != SESSPROTO_READY) {
    set(d, SESSPROTO_CLOSE, SYNOD_EPROTO, "frame before authentication");
    sp->phase = SESSPROTO_CLOSED;
    return;
  }
  int peer = sp->role == SESSPROTO_RELAY, member = sp->role == SESSPROTO_MEMBER;
  int violation = frame_violation(f->body_case, peer);
  if (violation) {
    set(d, SESSPROTO_CLOSE, violation,
        violation == SYNOD_EDENIED ? "frame of the other role"
                                   : "frame not allowed here");
    sp->phase = SESSPROTO_CLOSED;
    return;
  }
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_PING:
    set(d, SESSPROTO_PONG, 0, NULL);
    break;
  case SYNOD__V1__FRAME__BODY_PONG:
    set(d, SESSPROTO_IGNORE, 0, NULL);
    break;
  case SYNOD__V1__FRAME__BODY_SUBMIT:
    if (!member)
      set(d, SESSPROTO_ERROR, SYNOD_EDENIED,
          "only this relay's users may send here");
    else if (!f->submit->envelope)
      set(d, SESSPROTO_ERROR, SYNOD_EPARSE, "submit without an envelope");
    else
      set(d, SESSPROTO_SUBMIT, 0, NULL);
    break;
  case SYNOD__V1__FRAME__BODY_DELIVERY_ACK:
    if (member)
      check_ack(d, f->delivery_ack);
    else
      set(d, SESSPROTO_ERROR, SYNOD_EDENIED, "not a user of this relay");
    break;
  case SYNOD__V1__FRAME__BODY_FETCH:
    if (member)
      set(d, SESSPROTO_FETCH, 0, NULL);
    else
      set(d, SESSPROTO_ERROR, SYNOD_EDENIED, "not a user of this relay");
    break;
  case SYNOD__V1__FRAME__BODY_PURGE:
    if (member)
      set(d, SESSPROTO_PURGE, 0, NULL);
    else
      set(d, SESSPROTO_ERROR, SYNOD_EDENIED, "not a user of this relay");
    break;
  case SYNOD__V1__FRAME__BODY_PEER_PURGE:
    /* frame_violation() let only a relay through. */
    set(d, SESSPROTO_PEER_PURGE, 0, NULL);
    break;
  case SYNOD__V1__FRAME__BODY_FORWARD: {
    size_t total = f->forward->n_envelopes + f->forward->n_failures;
    if (total == 0 || total > 1024)
      set(d, SESSPROTO_ERROR, total ? SYNOD_ETOOBIG : SYNOD_EPARSE,
          "a forward holds 1 to 1024 items");
    else
      set(d, SESSPROTO_FORWARD, 0, NULL);
    break;
  }
  case SYNOD__V1__FRAME__BODY_ERROR:
    set(d, SESSPROTO_LOG_ERROR, 0, NULL);
    break;
  default:
    /* The key directory (Publish, Lookup, gossip, proofs): directory.c. */
    set(d, SESSPROTO_DIRECTORY, 0, NULL);
    break;
  }
}

/* --- request checks ------------------------------------------------------------- */

/*
 * From a client, the signature must be the session's identity key and the
 * body's user the session's user; from a peer relay, the user must belong
 * to that relay's namespace (the peer authenticated the user, as namespace
 * authority; this relay has no directory to check the user's key against
 * yet).
 */
int sessproto_purge(const sessproto_t *sp, const Synod__V1__Purge *m,
                    uint64_t now, Synod__V1__PurgeBody **out,
                    const char **why) {
  *out = NULL;
  int peer = sp->role == SESSPROTO_RELAY;
  if (!m) {
    *why = "peer purge without a purge";
    return SYNOD_EPARSE;
  }
  if (m->signature.len != 64) {
    *why = "purge signature must be 64 bytes";
    return SYNOD_EPARSE;
  }
  if (!peer && synod_sig_verify(m->signature.data, SYNOD_SIG_PURGE,
                                m->body.data, m->body.len, sp->key) != 0) {
    *why = "purge not signed by this user's identity key";
    return SYNOD_EVERIFY;
  }
  ProtobufCMessage *pm;
  if (synod_wire_unpack_message(&synod__v1__purge_body__descriptor,
                                m->body.data, m->body.len, &pm) != 0) {
    *why = "malformed purge body";
    return SYNOD_EPARSE;
  }
  Synod__V1__PurgeBody *b = (Synod__V1__PurgeBody *)pm;
  const char *relay;
  int rc = 0;
  if (!b->user_id || synod_userid_parse(b->user_id, NULL, &relay) != 0) {
    *why = "malformed user id";
    rc = SYNOD_EPARSE;
  } else if (peer ? strcmp(relay, sp->peer->name) != 0
                  : strcmp(b->user_id, sp->user) != 0) {
    *why = "purge for another user";
    rc = SYNOD_EDENIED;
  } else if (b->scope < SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL ||
             b->scope > SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_IDS) {
    *why = "unknown purge scope";
    rc = SYNOD_EPARSE;
  } else if (b->scope == SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_CONVERSATION &&
             (!b->peer || synod_userid_parse(b->peer, NULL, NULL) != 0)) {
    *why = "conversation purge needs the other user's id";
    rc = SYNOD_EPARSE;
  } else if (b->n_message_ids > 4096) {
    *why = "too many ids";
    rc = SYNOD_ETOOBIG;
  } else if (b->time > now + 300) {
    *why = "purge dated in the future";
    rc = SYNOD_EINVAL;
  }
  for (size_t i = 0; rc == 0 && i < b->n_message_ids; i++) {
    if (b->message_ids[i].len != 16) {
      *why = "message ids are 16 bytes";
      rc = SYNOD_EPARSE;
    }
  }
  if (rc != 0)
    synod_wire_free_message(pm);
  else
    *out = b;
  return rc;
}

static policy_envelope_limits_t limits(const relay_config_t *cfg) {
  policy_envelope_limits_t lim = {
      .max_envelope_bytes = cfg->max_envelope_bytes,
      .default_ttl = (uint32_t)(cfg->default_ttl_ms / 1000),
      .max_ttl = (uint32_t)(cfg->max_ttl_ms / 1000),
      .max_devices = POLICY_MAX_DEVICES,
  };
  return lim;
}

int sessproto_submit(const sessproto_t *sp, const Synod__V1__Envelope *e,
                     uint32_t *ttl, size_t *llen, const char **relay,
                     const char **why) {
  policy_envelope_limits_t lim = limits(sp->cfg);
  int rc = policy_check_envelope(e, &lim, ttl);
  if (rc != 0) {
    *why = rc == SYNOD_ETOOBIG  ? "envelope too large"
           : rc == SYNOD_EINVAL ? "ttl out of range"
                                : "malformed envelope";
    return rc;
  }
  /* policy_check_envelope() checked the recipient's syntax. */
  if (synod_userid_parse(e->recipient, llen, relay) != 0) {
    *why = "malformed envelope";
    return SYNOD_EPARSE;
  }
  return 0;
}

int sessproto_forwarded(const sessproto_t *sp, const Synod__V1__Envelope *e,
                        uint64_t now, uint64_t *expires, size_t *llen) {
  const relay_config_t *cfg = sp->cfg;
  const char *relay;
  if (e->message_id.len != 16)
    return SYNOD_EPARSE;
  if (!e->sender_relay || strcmp(e->sender_relay, sp->peer->name) != 0 ||
      !e->sender || synod_userid_parse(e->sender, NULL, &relay) != 0 ||
      strcmp(relay, sp->peer->name) != 0)
    return SYNOD_EDENIED; /* a peer speaks only for its own users */
  if (!e->recipient || synod_userid_parse(e->recipient, llen, &relay) != 0)
    return SYNOD_EPARSE;
  if (strcmp(relay, cfg->name) != 0)
    return SYNOD_EUNKNOWNUSER;
  policy_envelope_limits_t lim = limits(cfg);
  uint32_t ttl;
  int rc = policy_check_envelope(e, &lim, &ttl);
  if (rc != 0)
    return rc;
  /* The sender's relay dated it; a date in the future does not buy a
   * longer stay here. */
  uint64_t t = e->time < now ? e->time : now;
  *expires = policy_expires_at(t, ttl);
  return *expires <= now ? SYNOD_EEXPIRED : 0;
}

int sessproto_failure(const sessproto_t *sp,
                      const Synod__V1__DeliveryFailure *df,
                      Synod__V1__DeliveryFailureBody **body) {
  *body = NULL;
  ProtobufCMessage *bm = NULL;
  if (df->signature.len != 64)
    return SYNOD_EPARSE;
  if (synod_sig_verify(df->signature.data, SYNOD_SIG_DELIVERY_FAILURE,
                       df->body.data, df->body.len, sp->peer->key) != 0)
    return SYNOD_EVERIFY;
  if (synod_wire_unpack_message(&synod__v1__delivery_failure_body__descriptor,
                                df->body.data, df->body.len, &bm) != 0)
    return SYNOD_EPARSE;
  Synod__V1__DeliveryFailureBody *b = (Synod__V1__DeliveryFailureBody *)bm;
  if (b->message_id.len != 16 || !b->relay_name ||
      strcmp(b->relay_name, sp->peer->name) != 0) {
    synod_wire_free_message(bm);
    return SYNOD_EDENIED;
  }
  *body = b;
  return 0;
}
