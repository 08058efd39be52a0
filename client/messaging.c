/*
 * Messaging: send (lookup, seal to every device key, Submit to the home
 * relay) and receive (one session at the home relay, every envelope
 * opened against the sender's quorum-accepted key, acknowledged only once
 * the application took it). Both run on a libuv loop, the caller's or a
 * private one for the blocking calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "internal.h"
#include "synod/announce.h"
#include "synod/conn.h"
#include "synod/message.h"
#include "synod/tls.h"
#include "synod/wire.h"

#define DEFAULT_TIMEOUT_MS 5000
#define SEEN_FILE          "seen"
#define SEEN_MAX           4096
#define SUBMIT_TRIES       4
#define RECV_CLOSE_MS      1000

static uint64_t opt_timeout(const synod_client_net_opts_t *o) {
  return o && o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
}

static uint64_t opt_now(const synod_client_net_opts_t *o) {
  return o && o->now ? o->now : (uint64_t)time(NULL);
}

static const synod_client_relay_t *home_relay(const synod_client_t *c) {
  const char *home_name;
  if (synod_userid_parse(c->user_id, NULL, &home_name) != 0)
    return NULL;
  return profile_relay(c, home_name);
}

/* --- send ----------------------------------------------------------------- */

typedef struct send_op {
  synod_client_op_t op; /* first: the handle the caller sees */
  synod_send_cb cb;
  char recipient[SYNOD_USERID_MAX + 1];
  char *content_type;
  uint8_t *body;
  size_t body_len;
  synod_client_net_opts_t opts;
  uint64_t timeout_ms;
  synod_client_op_t *lookup; /* the recipient's lookup, while it runs */
  fanout_t *fan;             /* the round in flight */
  /* the link round (see send_link_done) */
  Synod__V1__Frame lf;
  Synod__V1__LookupRequest lq;
  fanout_target_t *lts;
  size_t nlts;
  /* the submit round */
  synod_message_sealed_t sealed;
  Synod__V1__Frame sf;
  Synod__V1__Submit sub;
  fanout_target_t st;
  int tries;
  uv_timer_t timer; /* the pause between tries; a deferred failure */
  int deferred;     /* the timer reports rc instead of trying again */
  int ending;
  int rc;
  synod_send_result_t res;
} send_op_t;

static void send_closed(uv_handle_t *h) {
  send_op_t *s = h->data;
  s->op.finished = 1;
  s->cb(&s->op, s->rc, &s->res); /* the callback owns what res holds */
  synod_message_sealed_free(&s->sealed);
  free(s->lts);
  free(s->content_type);
  free(s->body);
  free(s);
}

/* Ends the send once nothing of it runs any more. */
static void send_finish(send_op_t *s, int rc) {
  if (s->ending)
    return;
  s->ending = 1;
  s->rc = s->op.canceled || !s->op.c ? SYNOD_ECANCELED : rc;
  op_detach(&s->op);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, send_closed);
}

static void send_cancel(synod_client_op_t *op) {
  send_op_t *s = (send_op_t *)op;
  if (s->lookup)
    (void)synod_client_op_cancel(s->lookup); /* its callback finishes */
  else if (s->fan)
    fanout_cancel(s->fan); /* idem */
  else
    send_finish(s, SYNOD_ECANCELED); /* between tries */
}

static void send_submit(send_op_t *s);

static void send_on_timer(uv_timer_t *h) {
  send_op_t *s = h->data;
  if (s->deferred)
    send_finish(s, s->rc);
  else
    send_submit(s);
}

static void send_submit_done(void *arg) {
  send_op_t *s = arg;
  s->fan = NULL;
  fanout_target_t *t = &s->st;
  synod_send_result_t *res = &s->res;
  int rc = t->status;
  snprintf(res->reason, sizeof res->reason, "%s", t->reason);
  if (rc == 0) {
    Synod__V1__Accepted *a =
        t->answer->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED
            ? t->answer->accepted
            : NULL;
    if (!a || a->message_id.len != 16 ||
        memcmp(a->message_id.data, s->sealed.message_id, 16) != 0 ||
        (a->status != SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED &&
         a->status != SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE)) {
      rc = SYNOD_EPROTO;
      snprintf(res->reason, sizeof res->reason,
               "the home relay answered the message with something else "
               "than Accepted");
    } else {
      res->duplicate =
          a->status == SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE;
    }
  }
  synod_wire_free(t->answer);
  t->answer = NULL;
  res->submit_error = rc;
  /* Only "not stored, try later" is worth the same message again. */
  if (!s->op.canceled && s->op.c && ++s->tries < SUBMIT_TRIES &&
      (rc == SYNOD_EAGAIN || rc == SYNOD_ETIMEDOUT || rc == SYNOD_EIO)) {
    uv_timer_start(&s->timer, send_on_timer, 200u << s->tries, 0);
    return;
  }
  send_finish(s, rc);
}

static void send_submit(send_op_t *s) {
  const synod_client_relay_t *home = home_relay(s->op.c);
  if (!home) { /* the trust set cannot change meanwhile */
    send_finish(s, SYNOD_EUNKNOWNPEER);
    return;
  }
  s->st = (fanout_target_t){.relay = home, .request = &s->sf};
  int rc = fanout_start(&s->fan, s->op.c, s->op.loop, &s->st, 1, s->timeout_ms,
                        send_submit_done, s);
  if (rc != 0)
    send_finish(s, rc);
}

/* Seals to every device of info and submits. */
static void send_seal(send_op_t *s, const synod_announce_info_t *info) {
  synod_client_t *c = s->op.c;
  synod_message_device_t devs[SYNOD_MESSAGE_MAX_DEVICES];
  size_t nd = info->ndevices < SYNOD_MESSAGE_MAX_DEVICES
                  ? info->ndevices
                  : SYNOD_MESSAGE_MAX_DEVICES;
  /* cppcheck-suppress knownConditionTrueFalse ; nd is info's count */
  for (size_t i = 0; i < nd; i++) {
    devs[i].device_id = info->devices[i].device_id;
    memcpy(devs[i].x25519_key, info->devices[i].x25519_key, SYNOD_X25519_BYTES);
  }
  synod_message_params_t mp = {.sender = c->user_id,
                               .recipient = s->recipient,
                               .devices = devs,
                               .ndevices = nd,
                               .time = opt_now(&s->opts),
                               .content_type = s->content_type,
                               .body = s->body,
                               .body_len = s->body_len};
  int rc = synod_message_seal(&s->sealed, &mp, c->identity_sk);
  if (rc != 0) {
    send_finish(s, rc);
    return;
  }
  s->res.ndevices = nd;
  memcpy(s->res.message_id, s->sealed.message_id, sizeof s->res.message_id);
  synod__v1__frame__init(&s->sf);
  synod__v1__submit__init(&s->sub);
  s->sf.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  s->sf.submit = &s->sub;
  s->sub.envelope = &s->sealed.envelope;
  send_submit(s);
}

/*
 * The verified content of the accepted head, when the lookup carried no
 * link: the head is the pin itself and the relays sent nothing (they send
 * only what the asker lacks). The link was asked again from the relays
 * that agreed, from the version below; it is taken only if its hash is
 * the accepted one.
 */
static void send_link_done(void *arg) {
  send_op_t *s = arg;
  s->fan = NULL;
  const synod_quorum_result_t *d = &s->res.lookup.decision;
  synod_announce_info_t info;
  int found = SYNOD_ENOQUORUM;
  for (size_t i = 0; i < s->nlts; i++) {
    Synod__V1__Frame *a = s->lts[i].answer;
    if (found == 0 || !a ||
        a->body_case != SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER)
      continue;
    Synod__V1__LookupAnswer *la = a->lookup_answer;
    for (size_t j = 0; j < la->n_announcements; j++) {
      uint8_t h[SYNOD_SHA256_BYTES];
      const Synod__V1__Announcement *an = la->announcements[j];
      if (synod_announce_hash(h, an->body.data, an->body.len) != 0 ||
          memcmp(h, d->hash, sizeof h) != 0)
        continue;
      if (synod_announce_verify(&info, an, opt_now(&s->opts)) == 0 &&
          memcmp(info.identity_key, d->pin.identity_key, 32) == 0) {
        found = 0;
        break;
      }
    }
  }
  for (size_t i = 0; i < s->nlts; i++)
    synod_wire_free(s->lts[i].answer);
  if (s->op.canceled || !s->op.c) {
    send_finish(s, SYNOD_ECANCELED);
    return;
  }
  if (found != 0) {
    snprintf(s->res.reason, sizeof s->res.reason,
             "the relays that agreed on %.180s's key did not send its device "
             "keys",
             s->recipient);
    send_finish(s, found);
    return;
  }
  send_seal(s, &info);
}

static void send_lookup_done(synod_client_op_t *op, int status,
                             synod_lookup_result_t *lr) {
  send_op_t *s = synod_client_op_data(op);
  s->lookup = NULL;
  s->res.lookup = *lr; /* ours now; the caller's with the result */
  if (s->op.canceled || !s->op.c || status != 0) {
    send_finish(s, status);
    return;
  }
  const synod_quorum_result_t *d = &s->res.lookup.decision;
  if (d->announcement) {
    send_seal(s, &d->info);
    return;
  }
  synod_client_t *c = s->op.c;
  s->lts = calloc(c->nrelays + 1, sizeof *s->lts);
  if (!s->lts) {
    send_finish(s, SYNOD_ENOMEM);
    return;
  }
  synod__v1__frame__init(&s->lf);
  synod__v1__lookup_request__init(&s->lq);
  s->lf.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
  s->lf.lookup_request = &s->lq;
  s->lq.user_id = s->recipient;
  s->lq.from_version = d->version ? d->version - 1 : 0;
  for (size_t i = 0; i < d->nrelays && i < c->nrelays; i++)
    if (d->relays[i].status == SYNOD_RELAY_AGREED)
      s->lts[s->nlts++] =
          (fanout_target_t){.relay = &c->relays[i], .request = &s->lf};
  int rc = fanout_start(&s->fan, c, s->op.loop, s->lts, s->nlts, s->timeout_ms,
                        send_link_done, s);
  if (rc != 0)
    send_finish(s, rc);
}

int synod_client_send_start(synod_client_t *c, uv_loop_t *loop,
                            const char *recipient, const char *content_type,
                            const uint8_t *body, size_t body_len,
                            const synod_client_net_opts_t *opts,
                            synod_send_cb cb, void *data,
                            synod_client_op_t **op) {
  if (op)
    *op = NULL;
  if (!c || !loop || !cb || !recipient || !content_type ||
      (!body && body_len) || strlen(recipient) > SYNOD_USERID_MAX)
    return SYNOD_EINVAL;
  send_op_t *s = calloc(1, sizeof *s);
  if (!s)
    return SYNOD_ENOMEM;
  snprintf(s->recipient, sizeof s->recipient, "%s", recipient);
  s->content_type = strdup(content_type);
  s->body = malloc(body_len ? body_len : 1);
  if (!s->content_type || !s->body) {
    free(s->content_type);
    free(s->body);
    free(s);
    return SYNOD_ENOMEM;
  }
  if (body_len)
    memcpy(s->body, body, body_len);
  s->body_len = body_len;
  if (opts)
    s->opts = *opts;
  s->timeout_ms = opt_timeout(opts);
  s->cb = cb;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  op_init(&s->op, c, loop, data, send_cancel, 1);
  if (op)
    *op = &s->op;
  /* From here on every failure is reported through cb, from the loop. */
  int rc = home_relay(c) ? 0 : SYNOD_EUNKNOWNPEER;
  if (rc == 0)
    rc = lookup_start(c, loop, recipient, opts, send_lookup_done, s, 0,
                      &s->lookup);
  if (rc != 0) {
    s->deferred = 1;
    s->rc = rc;
    uv_timer_start(&s->timer, send_on_timer, 0, 0);
  }
  return 0;
}

/* --- the blocking send: the same operation on a private loop -------------- */

typedef struct send_wait {
  synod_client_t *c;
  const char *recipient, *content_type;
  const uint8_t *body;
  size_t body_len;
  const synod_client_net_opts_t *opts;
  synod_send_result_t *res;
  int rc;
} send_wait_t;

static void send_wait_cb(synod_client_op_t *op, int status,
                         synod_send_result_t *res) {
  send_wait_t *w = synod_client_op_data(op);
  w->rc = status;
  *w->res = *res;
}

static int send_wait_start(uv_loop_t *loop, void *arg) {
  send_wait_t *w = arg;
  synod_client_op_t *op = NULL;
  int rc = synod_client_send_start(w->c, loop, w->recipient, w->content_type,
                                   w->body, w->body_len, w->opts, send_wait_cb,
                                   w, &op);
  if (rc == 0)
    op_detach(op); /* blocking: nobody can close the client meanwhile */
  return rc;
}

int synod_client_send(synod_client_t *c, const char *recipient,
                      const char *content_type, const uint8_t *body,
                      size_t body_len, const synod_client_net_opts_t *opts,
                      synod_send_result_t *res) {
  memset(res, 0, sizeof *res);
  send_wait_t w = {.c = c,
                   .recipient = recipient,
                   .content_type = content_type,
                   .body = body,
                   .body_len = body_len,
                   .opts = opts,
                   .res = res};
  int rc = op_run_private(send_wait_start, &w);
  return rc ? rc : w.rc;
}

void synod_send_result_free(synod_send_result_t *r) {
  if (!r)
    return;
  synod_lookup_result_free(&r->lookup);
  memset(r, 0, sizeof *r);
}

/* --- seen message ids ----------------------------------------------------- */

typedef struct seen {
  uint8_t (*id)[16];
  size_t n, cap;
  int dirty;
} seen_t;

static int seen_has(const seen_t *s, const uint8_t *id) {
  for (size_t i = 0; i < s->n; i++)
    if (memcmp(s->id[i], id, 16) == 0)
      return 1;
  return 0;
}

static int seen_add(seen_t *s, const uint8_t *id) {
  if (seen_has(s, id))
    return 0;
  if (s->n == SEEN_MAX) { /* forget the oldest */
    memmove(s->id, s->id + 1, (s->n - 1) * sizeof *s->id);
    s->n--;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    void *p = realloc(s->id, cap * sizeof *s->id);
    if (!p)
      return SYNOD_ENOMEM;
    s->id = p;
    s->cap = cap;
  }
  memcpy(s->id[s->n++], id, 16);
  s->dirty = 1;
  return 0;
}

static int seen_load(synod_client_t *c, seen_t *s) {
  char *text = NULL;
  size_t len = 0;
  int rc = pfile_read(c->dir, SEEN_FILE, &text, &len, c->mac_key);
  if (rc == SYNOD_ENOENT)
    return 0;
  if (rc != 0)
    return rc;
  char *save = NULL;
  for (char *l = strtok_r(text, "\n", &save); l && rc == 0;
       l = strtok_r(NULL, "\n", &save)) {
    uint8_t id[16];
    if (hex_decode(id, 16, l) != 0)
      rc = SYNOD_EPARSE;
    else
      rc = seen_add(s, id);
  }
  free(text);
  s->dirty = 0;
  return rc;
}

static int seen_save(synod_client_t *c, seen_t *s) {
  if (!s->dirty)
    return 0;
  sbuf_t b = {0};
  for (size_t i = 0; i < s->n; i++) {
    char h[33];
    hex_encode(h, s->id[i], 16);
    sbuf_printf(&b, "%s\n", h);
  }
  int rc = b.failed ? SYNOD_ENOMEM
                    : pfile_write(c->dir, SEEN_FILE, b.p ? b.p : "", b.len,
                                  c->mac_key);
  free(b.p);
  if (rc == 0)
    s->dirty = 0;
  return rc;
}

/* --- receive -------------------------------------------------------------- */

/* What the session knows about one sender, for its whole life. */
typedef struct sender_key {
  char user[SYNOD_USERID_MAX + 1];
  int error;
  char reason[SYNOD_QUORUM_REASON_MAX];
  unsigned flags;
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES];
} sender_key_t;

typedef struct recv_op {
  synod_client_op_t op; /* first: the handle the caller sees */
  synod_recv_msg_cb on_message;
  synod_recv_done_cb on_done;
  unsigned flags;
  synod_client_net_opts_t opts;
  uint64_t timeout_ms;
  uv_timer_t timer;   /* a Fetch's deadline; closed last */
  synod_conn_t *conn; /* until its on_close */
  /* Deliver frames with envelopes and DeliveryFailures, in arrival order;
   * q[qi] is the frame being handled, ei its next envelope. */
  Synod__V1__Frame **q;
  size_t nq, capq, qi, ei;
  uint8_t (*acks)[16]; /* message ids to acknowledge */
  size_t nacks, capacks;
  seen_t seen;
  sender_key_t *ks;
  size_t nks;
  synod_client_op_t *lookup; /* a sender's lookup, while it runs */
  char looking_up[SYNOD_USERID_MAX + 1];
  uint64_t next_rid;
  uint64_t fetch_rid; /* the Fetch awaiting its Deliver, 0: none */
  int idle;           /* the last Fetch was answered by an empty Deliver */
  uint64_t ping_rid;  /* the Ping sent after it, 0: none */
  int synced; /* its Pong came: what the relay sent with that Deliver (the
                 failure notices follow it) has arrived */
  int more;   /* frames handled since the last Fetch */
  int ending;
  int closing; /* the timer is closing: the end is reported next */
  int status;
  size_t taken;
} recv_op_t;

static void recv_end(recv_op_t *r, int status);

static void recv_closed(uv_handle_t *h) {
  recv_op_t *r = h->data;
  r->op.finished = 1;
  r->on_done(&r->op, r->status, r->taken);
  for (size_t i = r->qi; i < r->nq; i++)
    synod_wire_free(r->q[i]);
  free(r->q);
  free(r->acks);
  free(r->seen.id);
  free(r->ks);
  free(r);
}

/* What the application took is on the device before the relay is told
 * it may delete it. */
static void recv_flush(recv_op_t *r) {
  synod_client_t *c = r->op.c;
  if (!c)
    return;
  int rc = seen_save(c, &r->seen);
  if (rc != 0) {
    recv_end(r, rc);
    return;
  }
  if (r->nacks == 0 || !r->conn || !synod_conn_is_ready(r->conn))
    return;
  ProtobufCBinaryData *ids = calloc(r->nacks, sizeof *ids);
  if (!ids) {
    recv_end(r, SYNOD_ENOMEM);
    return;
  }
  for (size_t i = 0; i < r->nacks; i++)
    ids[i] = (ProtobufCBinaryData){16, r->acks[i]};
  Synod__V1__Frame af = SYNOD__V1__FRAME__INIT;
  Synod__V1__DeliveryAck da = SYNOD__V1__DELIVERY_ACK__INIT;
  af.body_case = SYNOD__V1__FRAME__BODY_DELIVERY_ACK;
  af.delivery_ack = &da;
  af.request_id = ++r->next_rid;
  da.message_ids = ids;
  da.n_message_ids = r->nacks;
  rc = synod_conn_send(r->conn, &af);
  free(ids);
  r->nacks = 0;
  if (rc != 0)
    recv_end(r, rc);
}

static void recv_check_end(recv_op_t *r) {
  if (!r->ending || r->closing || r->conn || r->lookup)
    return;
  r->closing = 1;
  if (r->op.c && seen_save(r->op.c, &r->seen) != 0 && r->status == 0)
    r->status = SYNOD_EIO;
  op_detach(&r->op);
  if (r->op.c)
    r->op.c->receiving = 0;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, recv_closed);
}

/* Ends the session with status (the first one counts): acknowledges what
 * was taken while the session is up, then closes it. */
static void recv_end(recv_op_t *r, int status) {
  if (r->ending)
    return;
  r->ending = 1;
  r->status = r->op.canceled || !r->op.c ? SYNOD_ECANCELED : status;
  recv_flush(r);
  if (r->lookup)
    (void)synod_client_op_cancel(r->lookup);
  if (r->conn)
    synod_conn_close(r->conn, 0);
  uv_timer_stop(&r->timer);
  recv_check_end(r);
}

static void recv_cancel(synod_client_op_t *op) {
  recv_end((recv_op_t *)op, SYNOD_ECANCELED);
}

static void recv_timeout(uv_timer_t *h) {
  recv_end(h->data, SYNOD_ETIMEDOUT);
}

static void recv_fetch(recv_op_t *r) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Fetch fe = SYNOD__V1__FETCH__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_FETCH;
  f.fetch = &fe;
  f.request_id = r->fetch_rid = ++r->next_rid;
  r->idle = 0;
  r->ping_rid = 0;
  r->synced = 0;
  r->more = 0;
  int rc = synod_conn_send(r->conn, &f);
  if (rc != 0)
    recv_end(r, rc);
  else
    uv_timer_start(&r->timer, recv_timeout, r->timeout_ms, 0);
}

/* After an empty Deliver: the relay sends the failure notices of a read
 * right after its Deliver and answers requests in order, so once the Pong
 * of this Ping is in, the notices are too. */
static void recv_ping(recv_op_t *r) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping p = SYNOD__V1__PING__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &p;
  f.request_id = r->ping_rid = ++r->next_rid;
  int rc = synod_conn_send(r->conn, &f);
  if (rc != 0)
    recv_end(r, rc);
  else
    uv_timer_start(&r->timer, recv_timeout, r->timeout_ms, 0);
}

static int ack_add(recv_op_t *r, const uint8_t *id) {
  if (r->nacks == r->capacks) {
    size_t cap = r->capacks ? 2 * r->capacks : 16;
    void *p = realloc(r->acks, cap * sizeof *r->acks);
    if (!p)
      return SYNOD_ENOMEM;
    r->acks = p;
    r->capacks = cap;
  }
  memcpy(r->acks[r->nacks++], id, 16);
  return 0;
}

static const sender_key_t *sender_find(const recv_op_t *r, const char *user) {
  for (size_t i = 0; i < r->nks; i++)
    if (strcmp(r->ks[i].user, user) == 0)
      return &r->ks[i];
  return NULL;
}

static void recv_pump(recv_op_t *r);

static void recv_lookup_done(synod_client_op_t *op, int status,
                             synod_lookup_result_t *lr) {
  recv_op_t *r = synod_client_op_data(op);
  r->lookup = NULL;
  void *p = r->ending ? NULL : realloc(r->ks, (r->nks + 1) * sizeof *r->ks);
  if (p) {
    r->ks = p;
    sender_key_t *k = &r->ks[r->nks++];
    memset(k, 0, sizeof *k);
    snprintf(k->user, sizeof k->user, "%s", r->looking_up);
    k->error = status;
    snprintf(k->reason, sizeof k->reason, "%s", lr->decision.reason);
    k->flags = lr->decision.flags;
    if (status == 0)
      memcpy(k->pk, lr->decision.pin.identity_key, sizeof k->pk);
  } else if (!r->ending) {
    recv_end(r, SYNOD_ENOMEM);
  }
  synod_lookup_result_free(lr);
  if (r->ending)
    recv_check_end(r);
  else
    recv_pump(r);
}

/* Why a message failed to open, in words. */
static const char *open_failure(int orc) {
  return orc == SYNOD_EVERIFY
             ? "its signature is not by the sender's accepted key"
         : orc == SYNOD_EDECRYPT
             ? "it cannot be decrypted: altered on the way, or not sealed "
               "to this device's key"
         : orc == SYNOD_EDENIED
             ? "it was written for another recipient, device or message id "
               "(a copy replayed)"
         : orc == SYNOD_ENOENT ? "it holds no copy for this device"
         : orc == SYNOD_EINVAL ? "it is dated in the future"
                               : "it is malformed";
}

/* Handles one envelope: 1 when it waits for its sender's lookup (then
 * it is handled again once the lookup is done), else 0. */
static int recv_envelope(recv_op_t *r, const Synod__V1__Envelope *env) {
  synod_client_t *c = r->op.c;
  if (env->message_id.len != 16) /* cannot be acknowledged anyway */
    return 0;
  if (seen_has(&r->seen, env->message_id.data)) {
    if (ack_add(r, env->message_id.data) != 0)
      recv_end(r, SYNOD_ENOMEM);
    return 0;
  }
  synod_received_t m = {.message_id = env->message_id.data,
                        .sender = env->sender ? env->sender : "",
                        .time = env->time};
  int valid = synod_userid_parse(m.sender, NULL, NULL) == 0;
  const sender_key_t *k = valid ? sender_find(r, m.sender) : NULL;
  if (valid && !k) {
    /* Acknowledge what was taken so far, then ask the relays. */
    recv_flush(r);
    if (r->ending)
      return 0;
    snprintf(r->looking_up, sizeof r->looking_up, "%s", m.sender);
    int rc = lookup_start(c, r->op.loop, m.sender, &r->opts, recv_lookup_done,
                          r, 0, &r->lookup);
    if (rc != 0)
      recv_end(r, rc);
    return rc == 0;
  }
  synod_message_self_t self = {.user_id = c->user_id,
                               .device_id = c->device_id,
                               .x25519_sk = c->device_sk};
  synod_message_opened_t o;
  memset(&o, 0, sizeof o);
  char why[SYNOD_CLIENT_REASON_MAX];
  int ack = 1;
  if (!k) {
    m.status = SYNOD_RECV_REJECTED;
    m.error = SYNOD_EPARSE;
    m.reason = "the envelope names no valid sender";
  } else if (k->error != 0) {
    m.status = SYNOD_RECV_HELD;
    m.error = k->error;
    m.reason = k->reason;
    m.sender_flags = k->flags;
    ack = 0;
  } else {
    m.sender_flags = k->flags;
    int orc = synod_message_open(&o, env, &self, k->pk, opt_now(&r->opts));
    if (orc == 0) {
      m.status = SYNOD_RECV_OK;
      m.time = o.time;
      m.content_type = o.content_type;
      m.body = o.body;
      m.body_len = o.body_len;
    } else {
      snprintf(why, sizeof why, "%s (failed check: %s, %s)", open_failure(orc),
               o.why ? o.why : "envelope", synod_err_name(orc));
      m.status = SYNOD_RECV_REJECTED;
      m.error = orc;
      m.reason = why;
    }
  }
  int crc = r->on_message(&r->op, &m);
  synod_message_opened_free(&o);
  if (m.status == SYNOD_RECV_OK && crc != 0) {
    recv_end(r, crc); /* not taken: not acknowledged */
    return 0;
  }
  int rc = 0;
  if (m.status == SYNOD_RECV_OK) {
    r->taken++;
    rc = seen_add(&r->seen, env->message_id.data);
  }
  if (rc == 0 && ack)
    rc = ack_add(r, env->message_id.data);
  if (rc != 0)
    recv_end(r, rc);
  else if (crc != 0)
    recv_end(r, crc);
  return 0;
}

/* A failure of a message we sent (client/notice.c): shown as FAILED and
 * acknowledged once on_message returned 0; a forgery or junk is
 * acknowledged and not shown. */
static void recv_notice(recv_op_t *r, const Synod__V1__DeliveryFailure *df) {
  notice_t n;
  int crc = 0;
  if (notice_open(r->op.c, df, &n) == 0) {
    synod_received_t m = {.status = SYNOD_RECV_FAILED,
                          .sender = r->op.c->user_id,
                          .message_id = n.message_id,
                          .time = n.time,
                          .error = n.code,
                          .reason = n.reason,
                          .recipient = n.recipient,
                          .relay = n.relay,
                          .relay_verified = n.verified};
    crc = r->on_message(&r->op, &m);
  }
  if (crc != 0)
    recv_end(r, crc); /* it comes again next time */
  else if (n.has_id && ack_add(r, n.message_id) != 0)
    recv_end(r, SYNOD_ENOMEM);
}

/* Handles what is queued, in order, until the queue is empty or a sender
 * lookup must run first; then acknowledges and asks for more. */
static void recv_pump(recv_op_t *r) {
  while (!r->ending && !r->lookup && r->qi < r->nq) {
    Synod__V1__Frame *f = r->q[r->qi];
    int next = 1;
    if (f->body_case == SYNOD__V1__FRAME__BODY_DELIVERY_FAILURE)
      recv_notice(r, f->delivery_failure);
    else if (r->ei < f->deliver->n_envelopes) {
      if (recv_envelope(r, f->deliver->envelopes[r->ei]))
        return; /* recv_lookup_done() pumps again */
      r->ei++;
      next = r->ei >= f->deliver->n_envelopes;
    }
    if (next && !r->ending) {
      synod_wire_free(f);
      r->q[r->qi++] = NULL;
      r->ei = 0;
      r->more = 1;
    }
  }
  if (r->ending || r->lookup)
    return;
  r->qi = r->nq = 0;
  recv_flush(r);
  if (r->ending || !r->conn || (r->flags & SYNOD_RECV_FOLLOW) || r->fetch_rid)
    return;
  if (r->more)
    recv_fetch(r); /* anything left behind those? */
  else if (r->idle && r->synced)
    recv_end(r, 0); /* the relay has nothing more */
  else if (r->idle && !r->ping_rid)
    recv_ping(r);
}

static void recv_on_ready(synod_conn_t *conn, int status) {
  (void)status;
  recv_op_t *r = synod_conn_data(conn);
  if (!r->ending)
    recv_fetch(r);
}

static void recv_on_frame(synod_conn_t *conn, Synod__V1__Frame *f) {
  recv_op_t *r = synod_conn_data(conn);
  int keep = 0;
  if (r->ending) {
    synod_wire_free(f);
    return;
  }
  if (f->body_case == SYNOD__V1__FRAME__BODY_DELIVER) {
    if (r->fetch_rid && f->request_id == r->fetch_rid) {
      r->fetch_rid = 0;
      uv_timer_stop(&r->timer);
      r->idle = f->deliver->n_envelopes == 0;
    }
    keep = f->deliver->n_envelopes > 0;
  } else if (f->body_case == SYNOD__V1__FRAME__BODY_DELIVERY_FAILURE) {
    keep = 1;
  } else if (f->body_case == SYNOD__V1__FRAME__BODY_PONG) {
    if (r->ping_rid && f->request_id == r->ping_rid) {
      uv_timer_stop(&r->timer);
      r->synced = 1;
    }
  } else if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR) {
    recv_end(r, synod_err_from_wire(f->error->code));
  }
  if (keep && r->nq == r->capq) {
    size_t cap = r->capq ? 2 * r->capq : 8;
    void *p = realloc(r->q, cap * sizeof *r->q);
    if (!p) {
      recv_end(r, SYNOD_ENOMEM);
      keep = 0;
    } else {
      r->q = p;
      r->capq = cap;
    }
  }
  if (keep)
    r->q[r->nq++] = f;
  else
    synod_wire_free(f);
  recv_pump(r);
}

static void recv_on_close(synod_conn_t *conn, int status) {
  recv_op_t *r = synod_conn_data(conn);
  r->conn = NULL;
  /* The relay closing a session with nothing pending is the end of a
   * follow session, not a failure. */
  recv_end(r, r->idle ? 0 : (status ? status : SYNOD_ECLOSED));
  recv_check_end(r);
}

int synod_client_recv_start(synod_client_t *c, uv_loop_t *loop, unsigned flags,
                            const synod_client_net_opts_t *opts,
                            synod_recv_msg_cb on_message,
                            synod_recv_done_cb on_done, void *data,
                            synod_client_op_t **op) {
  if (op)
    *op = NULL;
  if (!c || !loop || !on_message || !on_done || (flags & ~SYNOD_RECV_FOLLOW))
    return SYNOD_EINVAL;
  if (c->receiving)
    return SYNOD_EAGAIN; /* one session at a time: one `seen` file */
  recv_op_t *r = calloc(1, sizeof *r);
  if (!r)
    return SYNOD_ENOMEM;
  r->on_message = on_message;
  r->on_done = on_done;
  r->flags = flags;
  if (opts)
    r->opts = *opts;
  r->timeout_ms = opt_timeout(opts);
  r->next_rid = 1;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  op_init(&r->op, c, loop, data, recv_cancel, 1);
  c->receiving = 1;
  if (op)
    *op = &r->op;
  /* From here on every failure is reported through on_done, from the
   * loop (recv_end closes the timer, whose close callback reports). */
  const synod_client_relay_t *home = home_relay(c);
  int rc = home ? seen_load(c, &r->seen) : SYNOD_EUNKNOWNPEER;
  char treason[SYNOD_TLS_REASON_BYTES];
  synod_tls_ctx_t *tls = NULL;
  if (rc == 0)
    rc = synod_tls_ctx_new_client(&tls, treason);
  if (rc == 0) {
    synod_conn_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.tls = tls;
    opt.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
    opt.handshake.name = c->user_id;
    opt.handshake.software = "synod-client/" SYNOD_VERSION;
    opt.handshake.secret_key = c->identity_sk;
    opt.handshake.expected_peer_key = home->key;
    opt.cb.on_ready = recv_on_ready;
    opt.cb.on_frame = recv_on_frame;
    opt.cb.on_close = recv_on_close;
    opt.data = r;
    opt.handshake_timeout_ms = r->timeout_ms;
    /* The last DeliveryAck drains within this; one cut short is harmless
     * (the message comes again and `seen` acknowledges it unseen). */
    opt.close_timeout_ms = RECV_CLOSE_MS;
    rc = synod_conn_connect(&r->conn, loop, home->host, home->port, &opt);
    if (rc != 0)
      r->conn = NULL;
  }
  synod_tls_ctx_free(tls);
  if (rc != 0)
    recv_end(r, rc);
  return 0;
}

/* --- the blocking receive: the same session on a private loop ------------- */

typedef struct recv_wait {
  synod_client_t *c;
  unsigned flags;
  const synod_client_net_opts_t *opts;
  synod_recv_cb cb;
  void *arg;
  int rc;
  size_t taken;
} recv_wait_t;

static int recv_wait_msg(synod_client_op_t *op, const synod_received_t *m) {
  recv_wait_t *w = synod_client_op_data(op);
  return w->cb(w->arg, m);
}

static void recv_wait_done(synod_client_op_t *op, int status, size_t taken) {
  recv_wait_t *w = synod_client_op_data(op);
  w->rc = status;
  w->taken = taken;
}

static int recv_wait_start(uv_loop_t *loop, void *arg) {
  recv_wait_t *w = arg;
  synod_client_op_t *op = NULL;
  int rc = synod_client_recv_start(w->c, loop, w->flags, w->opts, recv_wait_msg,
                                   recv_wait_done, w, &op);
  if (rc == 0)
    op_detach(op); /* blocking: nobody can close the client meanwhile */
  return rc;
}

int synod_client_recv(synod_client_t *c, unsigned flags, synod_recv_cb cb,
                      void *arg, const synod_client_net_opts_t *opts,
                      size_t *taken) {
  if (taken)
    *taken = 0;
  if (!cb)
    return SYNOD_EINVAL;
  recv_wait_t w = {.c = c, .flags = flags, .opts = opts, .cb = cb, .arg = arg};
  int rc = op_run_private(recv_wait_start, &w);
  if (taken)
    *taken = w.taken;
  return rc ? rc : w.rc;
}
