/*
 * The relay's accepted-session state machine (relay/sessproto.c), sans
 * I/O: authentication, then arbitrary frames as a connection delivers them
 * (lib/frame.c decoder, lib/wire.c parser), each decision acted on the way
 * session.c acts on it, with the database replaced by an answer it gives
 * (the fuzz input chooses the account lookup's outcome).
 *
 * Input: byte 0 chooses who connects (mod 8: alice, a member of
 * relay-a.test; bob@relay-b.test, a visitor; the peer relay-b.test; a
 * relay-b.test with the wrong key; an unknown relay; a malformed user id;
 * alice with an enrolment code; anyone while the relay stops), byte 1 the
 * account lookup's result, byte 2 bit 0 a frame sent before
 * authentication and bit 1 too many sessions; then the frame stream.
 *
 * Invariants checked:
 *  - nothing but the handshake before authentication: a frame in any
 *    phase but READY closes the session, and a closed session never
 *    becomes ready again;
 *  - authentication: a relay is accepted only under its configured name
 *    with its pinned key, a visitor only for another relay's user, a
 *    member only after a successful account lookup of its local part;
 *    every refusal carries a known error code and a reason;
 *  - peers and users are confined to their frame kinds: no Submit,
 *    DeliveryAck, Fetch, Purge or Publish from a relay; no Forward,
 *    PeerPurge or relay-to-relay directory frame from a user; no
 *    messaging from a visitor; answers and handshake frames are protocol
 *    violations from anyone;
 *  - every request gets exactly one typed answer (Submit: Accepted or
 *    Error; Purge and PeerPurge: PurgeResult or Error; Forward: ForwardAck
 *    or Error; Ping: Pong; a violation: one Error, then nothing), and
 *    every Error carries a known code and a reason;
 *  - the request checks keep their promises: an admitted envelope names a
 *    recipient whose local part fits and has a TTL within the maximum; a
 *    forwarded one comes from the peer's own users, for this relay, not
 *    yet expired; an admitted purge is the session user's own (or of the
 *    peer's namespace) with 16-byte ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixture.h"
#include "sessproto.h"
#include "synod/frame.h"
#include "synod/userid.h"
#include "synod/wire.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_session: %s\n", what);
    abort();
  }
}

static void check_code(int code, const char *why) {
  check(code < 0 && strcmp(synod_err_name(code), "EUNKNOWN") != 0,
        "an unknown error code");
  check(why && why[0], "an error without a reason");
}

static const relay_config_t *config(void) {
  static relay_config_t cfg;
  static int ready;
  if (!ready) {
    char err[CONFIG_ERR_MAX];
    const char *text = fx_relay_conf();
    if (config_load_buffer(&cfg, "fixture.conf", text, strlen(text), err,
                           sizeof err) != 0) {
      fprintf(stderr, "fuzz_session: fixture config: %s\n", err);
      abort();
    }
    ready = 1;
  }
  return &cfg;
}

static const int lookup_status[] = {
    0,           SYNOD_EUNKNOWNUSER, SYNOD_EDENIED,
    SYNOD_EAUTH, SYNOD_EBADKEY,      SYNOD_EAGAIN,
    SYNOD_EIO};

/* Authenticates as the input says; 1 if the session is READY after. */
static int authenticate(sessproto_t *sp, fx_in_t *in) {
  const fx_keys_t *keys = fx_keys();
  const relay_config_t *cfg = sp->cfg;
  uint8_t who = fx_byte(in) % 8, st = fx_byte(in), flags = fx_byte(in);
  synod_handshake_peer_t p;
  memset(&p, 0, sizeof p);
  p.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  char name[64];
  switch (who) {
  case 0:
  case 6:
  case 7:
    snprintf(name, sizeof name, "%s", FX_ALICE);
    memcpy(p.public_key, keys->alice_pk[0], 32);
    break;
  case 1:
    snprintf(name, sizeof name, "%s", FX_BOB);
    memcpy(p.public_key, keys->bob_pk, 32);
    break;
  case 2:
  case 3:
    p.role = SYNOD__V1__ROLE__ROLE_RELAY;
    snprintf(name, sizeof name, "%s", fx_relay_name[1]);
    memcpy(p.public_key, keys->relay_pk[who == 2 ? 1 : 0], 32);
    break;
  case 4:
    p.role = SYNOD__V1__ROLE__ROLE_RELAY;
    snprintf(name, sizeof name, "relay-z.test");
    memcpy(p.public_key, keys->relay_pk[0], 32);
    break;
  default:
    snprintf(name, sizeof name, "no-at-sign");
    break;
  }
  p.name = name;
  char code[] = "ABCDE-FGHIJ-KLMNO-PQRST";
  if (who == 6)
    p.enrollment_code = code;

  sessproto_decision_t d;
  if (flags & 1) {
    Synod__V1__Frame f;
    Synod__V1__Ping ping;
    synod__v1__frame__init(&f);
    synod__v1__ping__init(&ping);
    f.body_case = SYNOD__V1__FRAME__BODY_PING;
    f.ping = &ping;
    sessproto_frame(sp, &d, &f);
    check(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EPROTO &&
              sp->phase == SESSPROTO_CLOSED,
          "a frame before authentication did not close the session");
  }
  size_t nsessions = flags & 2 ? cfg->max_connections + 1 : 1;
  sessproto_auth(sp, &d, &p, who == 7, nsessions);
  fx_trace("session: who %u -> act %d %s", who, (int)d.act,
           d.code ? synod_err_name(d.code) : "");
  if (flags & 1) {
    check(d.act == SESSPROTO_REFUSE, "a closed session authenticated");
    return 0;
  }
  if (d.act == SESSPROTO_LOOKUP) {
    const char *relay;
    size_t llen;
    check(sp->phase == SESSPROTO_AUTHENTICATING &&
              synod_userid_parse(name, &llen, &relay) == 0 &&
              strcmp(relay, cfg->name) == 0 && strlen(d.local) == llen &&
              strncmp(d.local, name, llen) == 0,
          "an account lookup for someone not of this relay");
    check(d.has_code == (who == 6), "the enrolment code got lost");
    int status = lookup_status[st % (sizeof lookup_status / sizeof(int))];
    sessproto_auth_done(sp, &d, status);
    check((d.act == SESSPROTO_ACCEPT) == (status == 0),
          "the lookup's result was not followed");
    if (d.act == SESSPROTO_ACCEPT)
      check(sp->role == SESSPROTO_MEMBER, "a member that is not one");
  } else if (d.act == SESSPROTO_ACCEPT) {
    if (sp->role == SESSPROTO_RELAY) {
      const relay_config_peer_t *peer = config_find_peer(cfg, name);
      check(p.role == SYNOD__V1__ROLE__ROLE_RELAY && peer && sp->peer == peer &&
                memcmp(peer->key, p.public_key, 32) == 0,
            "a relay accepted without its pinned key");
    } else {
      const char *relay;
      check(sp->role == SESSPROTO_VISITOR &&
                synod_userid_parse(name, NULL, &relay) == 0 &&
                strcmp(relay, cfg->name) != 0 && strcmp(sp->user, name) == 0,
            "a visitor of this relay");
    }
  }
  if (d.act == SESSPROTO_REFUSE) {
    check_code(d.code, d.why);
    check(sp->phase == SESSPROTO_CLOSED, "refused but not closed");
    return 0;
  }
  check(d.act == SESSPROTO_ACCEPT && sp->phase == SESSPROTO_READY,
        "authentication ended neither accepted nor refused");
  check(who != 7 && !(flags & 2), "accepted while stopping or over the limit");
  return 1;
}

static int directory_kind(Synod__V1__Frame__BodyCase b, sessproto_role_t role) {
  switch (b) {
  case SYNOD__V1__FRAME__BODY_PUBLISH:
    return role != SESSPROTO_RELAY;
  case SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT:
  case SYNOD__V1__FRAME__BODY_HEADS_SUMMARY:
  case SYNOD__V1__FRAME__BODY_FETCH_ANNOUNCEMENTS:
    return role == SESSPROTO_RELAY;
  case SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST:
  case SYNOD__V1__FRAME__BODY_PROOF_REQUEST:
  case SYNOD__V1__FRAME__BODY_COUNTERSIGN_REQUEST:
    return 1;
  default:
    return 0;
  }
}

/* Acts on a Submit as session.c does; the number of answers sent. */
static int submit(const sessproto_t *sp, const Synod__V1__Submit *m) {
  Synod__V1__Envelope e = *m->envelope;
  e.sender = sp->user;
  e.sender_relay = synod_wire_lend(sp->cfg->name);
  e.time = FX_NOW;
  uint32_t ttl;
  size_t llen;
  const char *relay, *why;
  int rc = sessproto_submit(sp, &e, &ttl, &llen, &relay, &why);
  fx_trace("  submit -> %s", synod_err_name(rc));
  if (rc != 0) {
    check_code(rc, why);
    return 1; /* Error */
  }
  check(llen >= 1 && llen <= SYNOD_USERID_LOCAL_MAX &&
            e.recipient[llen] == '@' && relay == e.recipient + llen + 1,
        "an admitted envelope's recipient does not parse");
  check(ttl >= 1 && ttl <= sp->cfg->max_ttl_ms / 1000 &&
            e.message_id.len == 16 &&
            synod__v1__envelope__get_packed_size(&e) <=
                sp->cfg->max_envelope_bytes,
        "an admitted envelope breaks a limit");
  return 1; /* Accepted (or Error: no such peer, store failed) */
}

static int purge(const sessproto_t *sp, const Synod__V1__Purge *m) {
  Synod__V1__PurgeBody *b;
  const char *why = NULL;
  int rc = sessproto_purge(sp, m, FX_NOW, &b, &why);
  fx_trace("  purge -> %s %s", synod_err_name(rc), rc ? why : "");
  if (rc != 0) {
    check_code(rc, why);
    check(b == NULL, "a refused purge left a body");
    return 1;
  }
  const char *relay;
  check(synod_userid_parse(b->user_id, NULL, &relay) == 0 &&
            (sp->role == SESSPROTO_RELAY ? strcmp(relay, sp->peer->name) == 0
                                         : strcmp(b->user_id, sp->user) == 0),
        "a purge of someone else was admitted");
  for (size_t i = 0; i < b->n_message_ids; i++)
    check(b->message_ids[i].len == 16, "an admitted purge id is not 16 bytes");
  synod_wire_free_message(&b->base);
  return 1; /* PurgeResult */
}

static int forward(const sessproto_t *sp, const Synod__V1__Forward *m) {
  for (size_t i = 0; i < m->n_envelopes; i++) {
    const Synod__V1__Envelope *e = m->envelopes[i];
    uint64_t expires = 0;
    size_t llen = 0;
    int rc = sessproto_forwarded(sp, e, FX_NOW, &expires, &llen);
    fx_trace("  forwarded envelope -> %s", synod_err_name(rc));
    if (rc != 0) {
      check(strcmp(synod_err_name(rc), "EUNKNOWN") != 0 && rc < 0,
            "a forwarded envelope refused with an unknown code");
      continue;
    }
    const char *relay;
    check(expires > FX_NOW && llen >= 1 && llen <= SYNOD_USERID_LOCAL_MAX &&
              synod_userid_parse(e->recipient, NULL, &relay) == 0 &&
              strcmp(relay, sp->cfg->name) == 0 &&
              strcmp(e->sender_relay, sp->peer->name) == 0,
          "a forwarded envelope admitted against the rules");
  }
  for (size_t i = 0; i < m->n_failures; i++) {
    Synod__V1__DeliveryFailureBody *b;
    int rc = sessproto_failure(sp, m->failures[i], &b);
    fx_trace("  forwarded failure -> %s", synod_err_name(rc));
    if (rc != 0)
      continue;
    check(b->message_id.len == 16 && strcmp(b->relay_name, sp->peer->name) == 0,
          "a delivery failure admitted against the rules");
    synod_wire_free_message(&b->base);
  }
  return 1; /* ForwardAck */
}

/* One frame; 0 once the session is closed. */
static int frame(sessproto_t *sp, const Synod__V1__Frame *f) {
  sessproto_role_t role = sp->role;
  sessproto_decision_t d;
  sessproto_frame(sp, &d, f);
  Synod__V1__Frame__BodyCase b = f->body_case;
  int answers = 0, expect = 1;
  fx_trace("session: role %d frame %d -> act %d %s %s", (int)role, (int)b,
           (int)d.act, d.code ? synod_err_name(d.code) : "",
           d.why ? d.why : "");
  switch (d.act) {
  case SESSPROTO_CLOSE:
    check_code(d.code, d.why);
    check(sp->phase == SESSPROTO_CLOSED, "a violation left the session open");
    sessproto_frame(sp, &d, f);
    check(d.act == SESSPROTO_CLOSE, "a closed session took a frame");
    return 0;
  case SESSPROTO_ERROR:
    check_code(d.code, d.why);
    answers = 1;
    break;
  case SESSPROTO_PONG:
    check(b == SYNOD__V1__FRAME__BODY_PING, "a pong for something else");
    answers = 1;
    break;
  case SESSPROTO_IGNORE:
    check(b == SYNOD__V1__FRAME__BODY_PONG ||
              (b == SYNOD__V1__FRAME__BODY_DELIVERY_ACK &&
               f->delivery_ack->n_message_ids == 0),
          "a request ignored");
    expect = 0;
    break;
  case SESSPROTO_LOG_ERROR:
    check(b == SYNOD__V1__FRAME__BODY_ERROR, "logged something else");
    expect = 0;
    break;
  case SESSPROTO_SUBMIT:
    check(role == SESSPROTO_MEMBER && b == SYNOD__V1__FRAME__BODY_SUBMIT &&
              f->submit->envelope,
          "a submit from someone not a member");
    answers = submit(sp, f->submit);
    break;
  case SESSPROTO_ACK:
    check(role == SESSPROTO_MEMBER && b == SYNOD__V1__FRAME__BODY_DELIVERY_ACK,
          "an acknowledgement from someone not a member");
    for (size_t i = 0; i < f->delivery_ack->n_message_ids; i++)
      check(f->delivery_ack->message_ids[i].len == 16, "a bad id acknowledged");
    expect = 0; /* acknowledgements are not answered unless refused */
    break;
  case SESSPROTO_FETCH:
    check(role == SESSPROTO_MEMBER && b == SYNOD__V1__FRAME__BODY_FETCH,
          "a fetch from someone not a member");
    answers = 1; /* the next Deliver */
    break;
  case SESSPROTO_PURGE:
    check(role == SESSPROTO_MEMBER && b == SYNOD__V1__FRAME__BODY_PURGE,
          "a purge from someone not a member");
    answers = purge(sp, f->purge);
    break;
  case SESSPROTO_PEER_PURGE:
    check(role == SESSPROTO_RELAY && b == SYNOD__V1__FRAME__BODY_PEER_PURGE,
          "a peer purge from someone not a relay");
    answers = purge(sp, f->peer_purge->purge);
    break;
  case SESSPROTO_FORWARD: {
    size_t n = f->forward->n_envelopes + f->forward->n_failures;
    check(role == SESSPROTO_RELAY && b == SYNOD__V1__FRAME__BODY_FORWARD &&
              n >= 1 && n <= 1024,
          "a forward from someone not a relay, or of a bad size");
    answers = forward(sp, f->forward);
    break;
  }
  case SESSPROTO_DIRECTORY:
    check(directory_kind(b, role), "a directory frame of the wrong role");
    answers = 1; /* directory.c answers */
    break;
  default:
    check(0, "an unknown decision for a frame");
  }
  check(answers == expect, "a request without exactly one answer");
  check(sp->phase == SESSPROTO_READY && sp->role == role,
        "a request changed the session's phase or role");
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sessproto_t sp;
  sessproto_init(&sp, config());
  fx_in_t in = {data, size};
  int open = authenticate(&sp, &in);

  synod_frame_decoder_t dec;
  if (synod_frame_decoder_init(&dec, (uint32_t)sp.cfg->max_frame_bytes) != 0)
    abort();
  while (open && in.n > 0) {
    size_t used;
    uint8_t *body;
    size_t blen;
    int rc = synod_frame_decoder_feed(&dec, in.p, in.n, &used, &body, &blen);
    in.p += used;
    in.n -= used;
    if (rc != 1)
      break; /* more needed, or the connection fails */
    Synod__V1__Frame *f;
    rc = synod_wire_unpack(body, blen, &f);
    free(body);
    if (rc != 0)
      break; /* conn.c closes on a malformed frame */
    open = frame(&sp, f);
    synod_wire_free(f);
  }
  synod_frame_decoder_free(&dec);
  if (open) {
    sessproto_closed(&sp);
    check(sp.phase == SESSPROTO_CLOSED, "close did not close");
  }
  sessproto_free(&sp);
  return 0;
}
