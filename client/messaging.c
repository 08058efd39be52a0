/*
 * Messaging: send (lookup, seal to every device key, Submit to the home
 * relay) and receive (one session at the home relay, every envelope
 * opened against the sender's quorum-accepted key, acknowledged only once
 * the application took it). Both are blocking, on private libuv loops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/*
 * The verified content of the accepted head of a lookup. When the head is
 * the pin itself the relays sent no link (they send only what the asker
 * lacks): the link is asked again from the relays that agreed, from the
 * version below, and taken only if its hash is the accepted one.
 */
static int accepted_info(synod_client_t *c, const char *user,
                         const synod_lookup_result_t *lr,
                         const synod_client_net_opts_t *opts,
                         synod_announce_info_t *info) {
  const synod_quorum_result_t *d = &lr->decision;
  if (d->announcement) {
    *info = d->info;
    return 0;
  }
  size_t n = 0;
  fanout_target_t *ts = calloc(c->nrelays + 1, sizeof *ts);
  if (!ts)
    return SYNOD_ENOMEM;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__LookupRequest q;
  synod__v1__lookup_request__init(&q);
  f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
  f.lookup_request = &q;
  q.user_id = synod_wire_lend(user);
  q.from_version = d->version ? d->version - 1 : 0;
  for (size_t i = 0; i < d->nrelays && i < c->nrelays; i++)
    if (d->relays[i].status == SYNOD_RELAY_AGREED)
      ts[n++] = (fanout_target_t){.relay = &c->relays[i], .request = &f};
  int rc = fanout_run(c, ts, n, opt_timeout(opts));
  int found = SYNOD_ENOQUORUM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    Synod__V1__Frame *a = ts[i].answer;
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
      if (synod_announce_verify(info, an, opt_now(opts)) == 0 &&
          memcmp(info->identity_key, d->pin.identity_key, 32) == 0) {
        found = 0;
        break;
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    synod_wire_free(ts[i].answer);
  free(ts);
  return rc ? rc : found;
}

/* --- send ----------------------------------------------------------------- */

int synod_client_send(synod_client_t *c, const char *recipient,
                      const char *content_type, const uint8_t *body,
                      size_t body_len, const synod_client_net_opts_t *opts,
                      synod_send_result_t *res) {
  memset(res, 0, sizeof *res);
  if (!c || !recipient || !content_type || (!body && body_len))
    return SYNOD_EINVAL;
  const synod_client_relay_t *home = home_relay(c);
  if (!home)
    return SYNOD_EUNKNOWNPEER;
  int rc = synod_client_lookup(c, recipient, opts, &res->lookup);
  if (rc != 0)
    return rc;
  synod_announce_info_t info;
  rc = accepted_info(c, recipient, &res->lookup, opts, &info);
  if (rc != 0) {
    snprintf(res->reason, sizeof res->reason,
             "the relays that agreed on %s's key did not send its device "
             "keys",
             recipient);
    return rc;
  }
  synod_message_device_t devs[SYNOD_MESSAGE_MAX_DEVICES];
  size_t nd = info.ndevices < SYNOD_MESSAGE_MAX_DEVICES
                  ? info.ndevices
                  : SYNOD_MESSAGE_MAX_DEVICES;
  for (size_t i = 0; i < nd; i++) {
    devs[i].device_id = info.devices[i].device_id;
    memcpy(devs[i].x25519_key, info.devices[i].x25519_key, SYNOD_X25519_BYTES);
  }
  synod_message_params_t mp = {.sender = c->user_id,
                               .recipient = recipient,
                               .devices = devs,
                               .ndevices = nd,
                               .time = opt_now(opts),
                               .content_type = content_type,
                               .body = body,
                               .body_len = body_len};
  synod_message_sealed_t *s = calloc(1, sizeof *s);
  if (!s)
    return SYNOD_ENOMEM;
  rc = synod_message_seal(s, &mp, c->identity_sk);
  if (rc != 0) {
    free(s);
    return rc;
  }
  res->ndevices = nd;
  memcpy(res->message_id, s->message_id, sizeof res->message_id);
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Submit sub = SYNOD__V1__SUBMIT__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  f.submit = &sub;
  sub.envelope = &s->envelope;
  for (int tries = 0; tries < SUBMIT_TRIES; tries++) {
    if (tries)
      usleep(200000u << tries);
    fanout_target_t t = {.relay = home, .request = &f};
    rc = fanout_run(c, &t, 1, opt_timeout(opts));
    if (rc != 0)
      break;
    rc = t.status;
    snprintf(res->reason, sizeof res->reason, "%s", t.reason);
    if (rc == 0) {
      Synod__V1__Accepted *a =
          t.answer->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED
              ? t.answer->accepted
              : NULL;
      if (!a || a->message_id.len != 16 ||
          memcmp(a->message_id.data, s->message_id, 16) != 0 ||
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
    synod_wire_free(t.answer);
    /* Only "not stored, try later" is worth the same message again now. */
    if (rc != SYNOD_EAGAIN && rc != SYNOD_ETIMEDOUT && rc != SYNOD_EIO)
      break;
  }
  res->submit_error = rc;
  synod_message_sealed_free(s);
  free(s);
  return rc;
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

typedef struct rx {
  uv_loop_t loop;
  uv_timer_t timer;
  synod_conn_t *conn;
  Synod__V1__Frame **q; /* Deliver frames with envelopes, and failures */
  size_t nq, capq;
  uint64_t next_rid;
  uint64_t fetch_rid; /* the Fetch awaiting its Deliver, 0: none */
  int idle;           /* the last Fetch was answered by an empty Deliver */
  uint64_t ping_rid;  /* the Ping sent after it, 0: none */
  int synced; /* its Pong came: what the relay sent with that Deliver (the
                 failure notices follow it) has arrived */
  int closed;
  int status;
  char reason[SYNOD_CLIENT_REASON_MAX];
} rx_t;

static void rx_fail(rx_t *r, int status, const char *reason) {
  if (r->status == 0) {
    r->status = status;
    snprintf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
  }
  if (r->conn)
    synod_conn_close(r->conn, status);
  uv_stop(&r->loop);
}

static void rx_timeout(uv_timer_t *h) {
  rx_t *r = h->data;
  rx_fail(r, SYNOD_ETIMEDOUT, "the home relay did not answer in time");
}

static void rx_fetch(rx_t *r, uint64_t timeout_ms) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Fetch fe = SYNOD__V1__FETCH__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_FETCH;
  f.fetch = &fe;
  f.request_id = r->fetch_rid = ++r->next_rid;
  r->idle = 0;
  r->ping_rid = 0;
  r->synced = 0;
  int rc = synod_conn_send(r->conn, &f);
  if (rc != 0)
    rx_fail(r, rc, "cannot ask the home relay for messages");
  else
    uv_timer_start(&r->timer, rx_timeout, timeout_ms, 0);
}

/* After an empty Deliver: the relay sends the failure notices of a read
 * right after its Deliver and answers requests in order, so once the Pong
 * of this Ping is in, the notices are too. */
static void rx_ping(rx_t *r, uint64_t timeout_ms) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping p = SYNOD__V1__PING__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &p;
  f.request_id = r->ping_rid = ++r->next_rid;
  int rc = synod_conn_send(r->conn, &f);
  if (rc != 0)
    rx_fail(r, rc, "cannot reach the home relay");
  else
    uv_timer_start(&r->timer, rx_timeout, timeout_ms, 0);
}

static void rx_on_ready(synod_conn_t *conn, int status) {
  (void)status;
  rx_t *r = synod_conn_data(conn);
  uv_timer_stop(&r->timer);
  uv_stop(&r->loop); /* the caller sends the first Fetch */
}

static void rx_on_frame(synod_conn_t *conn, Synod__V1__Frame *f) {
  rx_t *r = synod_conn_data(conn);
  int keep = 0;
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
    char why[SYNOD_CLIENT_REASON_MAX];
    snprintf(why, sizeof why, "the home relay refused: %s",
             f->error->reason ? f->error->reason : "");
    rx_fail(r, synod_err_from_wire(f->error->code), why);
  }
  if (keep && r->nq == r->capq) {
    size_t cap = r->capq ? 2 * r->capq : 8;
    void *p = realloc(r->q, cap * sizeof *r->q);
    if (!p) {
      rx_fail(r, SYNOD_ENOMEM, "out of memory");
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
  uv_stop(&r->loop);
}

static void rx_on_close(synod_conn_t *conn, int status) {
  rx_t *r = synod_conn_data(conn);
  r->conn = NULL;
  r->closed = 1;
  if (r->status == 0 && status != 0) {
    r->status = status;
    snprintf(r->reason, sizeof r->reason, "%s", synod_conn_reason(conn));
  }
  uv_timer_stop(&r->timer);
  uv_stop(&r->loop);
}

/* What the receive knows about one sender, for the whole call. */
typedef struct sender_key {
  char user[SYNOD_USERID_MAX + 1];
  int error;
  char reason[SYNOD_QUORUM_REASON_MAX];
  unsigned flags;
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES];
} sender_key_t;

static const sender_key_t *sender_lookup(synod_client_t *c, sender_key_t **ks,
                                         size_t *nks, const char *user,
                                         const synod_client_net_opts_t *opts) {
  for (size_t i = 0; i < *nks; i++)
    if (strcmp((*ks)[i].user, user) == 0)
      return &(*ks)[i];
  void *p = realloc(*ks, (*nks + 1) * sizeof **ks);
  if (!p)
    return NULL;
  *ks = p;
  sender_key_t *k = &(*ks)[(*nks)++];
  memset(k, 0, sizeof *k);
  snprintf(k->user, sizeof k->user, "%s", user);
  synod_lookup_result_t lr;
  k->error = synod_client_lookup(c, user, opts, &lr);
  snprintf(k->reason, sizeof k->reason, "%s", lr.decision.reason);
  k->flags = lr.decision.flags;
  if (k->error == 0)
    memcpy(k->pk, lr.decision.pin.identity_key, sizeof k->pk);
  synod_lookup_result_free(&lr);
  return k;
}

int synod_client_recv(synod_client_t *c, unsigned flags, synod_recv_cb cb,
                      void *arg, const synod_client_net_opts_t *opts,
                      size_t *taken) {
  if (taken)
    *taken = 0;
  if (!c || !cb)
    return SYNOD_EINVAL;
  const synod_client_relay_t *home = home_relay(c);
  if (!home)
    return SYNOD_EUNKNOWNPEER;
  seen_t seen = {0};
  int rc = seen_load(c, &seen);
  if (rc != 0) {
    free(seen.id);
    return rc;
  }
  uint64_t timeout_ms = opt_timeout(opts);
  rx_t *r = calloc(1, sizeof *r);
  if (!r) {
    free(seen.id);
    return SYNOD_ENOMEM;
  }
  if (uv_loop_init(&r->loop) != 0) {
    free(r);
    free(seen.id);
    return SYNOD_EIO;
  }
  uv_timer_init(&r->loop, &r->timer);
  r->timer.data = r;
  r->next_rid = 1;
  char treason[256];
  synod_tls_ctx_t *tls = NULL;
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
    opt.cb.on_ready = rx_on_ready;
    opt.cb.on_frame = rx_on_frame;
    opt.cb.on_close = rx_on_close;
    opt.data = r;
    opt.handshake_timeout_ms = timeout_ms;
    rc = synod_conn_connect(&r->conn, &r->loop, home->host, home->port, &opt);
    if (rc != 0)
      r->conn = NULL;
  }
  sender_key_t *ks = NULL;
  size_t nks = 0, ntaken = 0;
  int started = 0, stop = 0;
  synod_message_self_t self = {.user_id = c->user_id,
                               .device_id = c->device_id,
                               .x25519_sk = c->device_sk};
  while (rc == 0 && !r->closed && !stop) {
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (r->closed || !r->conn)
      break;
    if (!started && synod_conn_is_ready(r->conn)) {
      started = 1;
      rx_fetch(r, timeout_ms);
      continue;
    }
    /* Everything queued, outside of any callback: the sender lookups run
     * their own loops. */
    size_t nq = r->nq;
    Synod__V1__Frame **q = r->q;
    r->q = NULL;
    r->nq = r->capq = 0;
    size_t nacks = 0, capacks = 0, nfids = 0;
    ProtobufCBinaryData *acks = NULL;
    uint8_t(*fids)[16] = calloc(nq + 1, sizeof *fids);
    if (!fids) {
      rc = SYNOD_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < nq; i++) {
      Synod__V1__Frame *f = q[i];
      size_t ne = f->body_case == SYNOD__V1__FRAME__BODY_DELIVER
                      ? f->deliver->n_envelopes
                      : 1;
      if (nacks + ne > capacks) {
        capacks = 2 * (nacks + ne);
        void *p = realloc(acks, capacks * sizeof *acks);
        if (!p) {
          rc = SYNOD_ENOMEM;
          break;
        }
        acks = p;
      }
      if (f->body_case == SYNOD__V1__FRAME__BODY_DELIVERY_FAILURE) {
        /* A failure of a message we sent (client/notice.c). */
        notice_t n;
        int nrc = notice_open(c, f->delivery_failure, &n);
        int crc = 0;
        if (nrc == 0) {
          synod_received_t m = {.status = SYNOD_RECV_FAILED,
                                .sender = c->user_id,
                                .message_id = n.message_id,
                                .time = n.time,
                                .error = n.code,
                                .reason = n.reason,
                                .recipient = n.recipient,
                                .relay = n.relay,
                                .relay_verified = n.verified};
          crc = cb(arg, &m);
        }
        if (crc == 0 && n.has_id) {
          memcpy(fids[nfids], n.message_id, 16);
          acks[nacks++] = (ProtobufCBinaryData){16, fids[nfids++]};
        }
        if (crc != 0) {
          rc = crc;
          stop = 1;
          break;
        }
        continue;
      }
      for (size_t j = 0; j < ne && !stop; j++) {
        Synod__V1__Envelope *env = f->deliver->envelopes[j];
        if (env->message_id.len != 16) /* cannot be acknowledged anyway */
          continue;
        synod_received_t m = {.message_id = env->message_id.data,
                              .sender = env->sender ? env->sender : "",
                              .time = env->time};
        int ack = 1;
        char why[SYNOD_CLIENT_REASON_MAX];
        if (seen_has(&seen, env->message_id.data)) {
          acks[nacks++] = env->message_id;
          continue;
        }
        const sender_key_t *k =
            synod_userid_parse(m.sender, NULL, NULL) == 0
                ? sender_lookup(c, &ks, &nks, m.sender, opts)
                : NULL;
        synod_message_opened_t o;
        memset(&o, 0, sizeof o);
        if (!k && synod_userid_parse(m.sender, NULL, NULL) == 0) {
          rc = SYNOD_ENOMEM;
          break;
        }
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
          int orc = synod_message_open(&o, env, &self, k->pk, opt_now(opts));
          if (orc == 0) {
            m.status = SYNOD_RECV_OK;
            m.time = o.time;
            m.content_type = o.content_type;
            m.body = o.body;
            m.body_len = o.body_len;
          } else {
            const char *what =
                orc == SYNOD_EVERIFY
                    ? "its signature is not by the sender's accepted key"
                : orc == SYNOD_EDECRYPT
                    ? "it cannot be decrypted: altered on the way, or not "
                      "sealed to this device's key"
                : orc == SYNOD_EDENIED
                    ? "it was written for another recipient, device or "
                      "message id (a copy replayed)"
                : orc == SYNOD_ENOENT ? "it holds no copy for this device"
                : orc == SYNOD_EINVAL ? "it is dated in the future"
                                      : "it is malformed";
            snprintf(why, sizeof why, "%s (failed check: %s, %s)", what,
                     o.why ? o.why : "envelope", synod_err_name(orc));
            m.status = SYNOD_RECV_REJECTED;
            m.error = orc;
            m.reason = why;
          }
        }
        int crc = cb(arg, &m);
        synod_message_opened_free(&o);
        if (m.status == SYNOD_RECV_OK && crc != 0) {
          rc = crc;
          stop = 1;
          break;
        }
        if (m.status == SYNOD_RECV_OK) {
          ntaken++;
          if (seen_add(&seen, env->message_id.data) != 0) {
            rc = SYNOD_ENOMEM;
            stop = 1;
            break;
          }
        }
        if (ack)
          acks[nacks++] = env->message_id;
        if (crc != 0) {
          rc = crc;
          stop = 1;
        }
      }
      if (rc != 0)
        break;
    }
    /* What the application took is on the device before the relay is
     * told it may delete it. */
    int src = seen_save(c, &seen);
    if (src != 0 && rc == 0)
      rc = src;
    if (nacks && r->conn && src == 0) {
      Synod__V1__Frame af = SYNOD__V1__FRAME__INIT;
      Synod__V1__DeliveryAck da = SYNOD__V1__DELIVERY_ACK__INIT;
      af.body_case = SYNOD__V1__FRAME__BODY_DELIVERY_ACK;
      af.delivery_ack = &da;
      af.request_id = ++r->next_rid;
      da.message_ids = acks;
      da.n_message_ids = nacks;
      int arc = synod_conn_send(r->conn, &af);
      if (arc != 0 && rc == 0)
        rc = arc;
    }
    free(acks);
    free(fids);
    for (size_t i = 0; i < nq; i++)
      synod_wire_free(q[i]);
    free(q);
    if (rc != 0 || stop)
      break;
    if (!(flags & SYNOD_RECV_FOLLOW)) {
      if (nq > 0 && !r->fetch_rid)
        rx_fetch(r, timeout_ms); /* anything left behind those? */
      else if (r->idle && !r->fetch_rid && r->nq == 0 && r->synced)
        break; /* the relay has nothing more */
      else if (r->idle && !r->fetch_rid && !r->ping_rid)
        rx_ping(r, timeout_ms);
    }
  }
  if (rc == 0 && r->status != 0 && !(r->idle && !r->conn))
    rc = r->status;
  if (r->conn) {
    synod_conn_close(r->conn, 0);
    while (!r->closed)
      uv_run(&r->loop, UV_RUN_DEFAULT);
  }
  for (size_t i = 0; i < r->nq; i++)
    synod_wire_free(r->q[i]);
  free(r->q);
  uv_close((uv_handle_t *)&r->timer, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  int lrc = uv_loop_close(&r->loop);
  synod_tls_ctx_free(tls);
  if (rc == 0 && lrc != 0)
    rc = SYNOD_EINTERNAL;
  free(r);
  free(ks);
  free(seen.id);
  if (taken)
    *taken = ntaken;
  return rc;
}
