/*
 * The synod driver of synod-bench: sender i is user i of the file given
 * for relay A and submits to recipient i of relay B, which acknowledges
 * every Deliver at once. Each session enrols on its first connection with
 * a fresh identity key and the code `synod-relay user add` printed.
 *
 * Submit: request_id is the message's sequence number + 1, so Accepted
 * and Error answers map back to it; the message id is nonce(4) |
 * sender(4) | seq(8); the single device ciphertext is the payload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "synod/conn.h"
#include "synod/crypto.h"
#include "synod/tls.h"
#include "synod/wire.h"

#define SETUP_MS 60000

typedef struct sdrv sdrv_t;

typedef struct sconn {
  sdrv_t *d;
  size_t idx;
  int sender;
  synod_conn_t *conn;
  int ready;
  char user[160];
  char code[80];
  uint8_t sk[SYNOD_ED25519_SECRET_BYTES];
  uint64_t acks;
} sconn_t;

struct sdrv {
  bench_synod_conf_t conf;
  bench_t *b;
  synod_tls_ctx_t *tls;
  sconn_t *conns; /* senders [0, n), receivers [n, 2n) */
  size_t nconns, nready, nopen;
  int failed, closing;
  uint64_t errors_logged;
  uv_timer_t timer;
  int timed_out;
};

/* --- callbacks --------------------------------------------------------------
 */

static void on_close(synod_conn_t *c, int status) {
  sconn_t *s = synod_conn_data(c);
  sdrv_t *d = s->d;
  if (!d->closing) {
    fprintf(stderr, "synod-bench: session %s closed: %s %s\n", s->user,
            synod_err_name(status), synod_conn_reason(c));
    d->failed = 1;
  }
  if (s->ready)
    d->nready--;
  s->ready = 0;
  s->conn = NULL;
  d->nopen--;
}

static void on_ready(synod_conn_t *c, int status) {
  (void)status;
  sconn_t *s = synod_conn_data(c);
  s->ready = 1;
  s->d->nready++;
}

static void ack(sconn_t *s, Synod__V1__Deliver *dv) {
  ProtobufCBinaryData ids[64], *big = NULL, *v = ids;
  if (dv->n_envelopes > 64) {
    big = calloc(dv->n_envelopes, sizeof *big);
    if (!big)
      return;
    v = big;
  }
  size_t n = 0;
  for (size_t k = 0; k < dv->n_envelopes; k++)
    v[n++] = dv->envelopes[k]->message_id;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__DeliveryAck a = SYNOD__V1__DELIVERY_ACK__INIT;
  f.request_id = ++s->acks;
  f.body_case = SYNOD__V1__FRAME__BODY_DELIVERY_ACK;
  f.delivery_ack = &a;
  a.message_ids = v;
  a.n_message_ids = n;
  int rc = synod_conn_send(s->conn, &f);
  if (rc != 0)
    fprintf(stderr, "synod-bench: %s: ack not sent: %s\n", s->user,
            synod_err_name(rc));
  free(big);
}

static void on_frame(synod_conn_t *c, Synod__V1__Frame *f) {
  sconn_t *s = synod_conn_data(c);
  sdrv_t *d = s->d;
  bench_t *b = d->b;
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_ACCEPTED:
    if (s->sender && f->request_id)
      bench_answered(b, s->idx, f->request_id - 1,
                     f->accepted->status ==
                         SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
    break;
  case SYNOD__V1__FRAME__BODY_ERROR:
    if (d->errors_logged++ < 5)
      fprintf(stderr, "synod-bench: %s: error %s: %s\n", s->user,
              synod_err_name(synod_err_from_wire(f->error->code)),
              f->error->reason ? f->error->reason : "");
    if (s->sender && f->request_id)
      bench_answered(b, s->idx, f->request_id - 1, 0);
    break;
  case SYNOD__V1__FRAME__BODY_DELIVER:
    if (!s->sender) {
      Synod__V1__Deliver *dv = f->deliver;
      for (size_t k = 0; k < dv->n_envelopes; k++) {
        Synod__V1__Envelope *e = dv->envelopes[k];
        if (e->n_ciphertexts >= 1)
          bench_received(b, s->idx, e->ciphertexts[0]->ct.data,
                         e->ciphertexts[0]->ct.len);
        else
          b->strays++;
      }
      if (dv->n_envelopes)
        ack(s, dv);
    }
    break;
  default:
    break;
  }
  synod_wire_free(f);
}

/* --- driver ------------------------------------------------------------------
 */

static int send_msg(bench_t *b, size_t i, const uint8_t *payload, size_t len) {
  sdrv_t *d = b->drv->data;
  sconn_t *s = &d->conns[i], *r = &d->conns[d->b->n + i];
  if (!s->conn || !s->ready)
    return SYNOD_ECLOSED;
  uint64_t seq = bench_get64(payload + BENCH_HDR_SEQ);
  uint8_t id[16], enc[32] = {0};
  bench_put32(id, b->nonce);
  bench_put32(id + 4, (uint32_t)i);
  bench_put64(id + 8, seq);
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Submit sub = SYNOD__V1__SUBMIT__INIT;
  Synod__V1__Envelope e;
  synod__v1__envelope__init(&e);
  Synod__V1__DeviceCiphertext dc = SYNOD__V1__DEVICE_CIPHERTEXT__INIT;
  Synod__V1__DeviceCiphertext *dcs[1] = {&dc};
  dc.device_id = 1;
  dc.enc.data = enc;
  dc.enc.len = sizeof enc;
  dc.ct.data = synod_wire_lend(payload);
  dc.ct.len = len;
  e.message_id.data = id;
  e.message_id.len = 16;
  e.recipient = r->user;
  e.ciphertexts = dcs;
  e.n_ciphertexts = 1;
  sub.envelope = &e;
  f.request_id = seq + 1;
  f.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  f.submit = &sub;
  return synod_conn_send(s->conn, &f);
}

static void timer_cb(uv_timer_t *t) {
  sdrv_t *d = t->data;
  d->timed_out = 1;
}

static int connect_one(sdrv_t *d, sconn_t *s, uint16_t port,
                       const uint8_t key[32]) {
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES];
  if (synod_ed25519_keygen(pk, s->sk) != 0)
    return SYNOD_ECRYPTO;
  synod_conn_options_t opt;
  memset(&opt, 0, sizeof opt);
  opt.tls = d->tls;
  opt.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  opt.handshake.name = s->user;
  opt.handshake.software = "synod-bench";
  opt.handshake.secret_key = s->sk;
  opt.handshake.expected_peer_key = key;
  opt.handshake.enrollment_code = s->code;
  opt.cb.on_ready = on_ready;
  opt.cb.on_frame = on_frame;
  opt.cb.on_close = on_close;
  opt.data = s;
  opt.handshake_timeout_ms = SETUP_MS;
  int rc = synod_conn_connect(&s->conn, d->b->loop, d->conf.host, port, &opt);
  if (rc == 0)
    d->nopen++;
  return rc;
}

/* Reads n "name code" lines of path into conns[0..n). */
static int read_users(sconn_t *conns, size_t n, const char *path,
                      const char *relay) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "synod-bench: cannot open %s\n", path);
    return SYNOD_EIO;
  }
  char name[64], code[80];
  size_t k = 0;
  while (k < n && fscanf(f, "%63s %79s", name, code) == 2) {
    snprintf(conns[k].user, sizeof conns[k].user, "%s@%s", name, relay);
    snprintf(conns[k].code, sizeof conns[k].code, "%s", code);
    k++;
  }
  fclose(f);
  if (k < n) {
    fprintf(stderr, "synod-bench: %s has %zu users, %zu needed\n", path, k, n);
    return SYNOD_EINVAL;
  }
  return 0;
}

static int setup(bench_t *b) {
  sdrv_t *d = b->drv->data;
  d->b = b;
  size_t n = b->n; /* read once: the stores below could alias it */
  if (n == 0)
    return SYNOD_EINVAL;
  d->nconns = 2 * n;
  d->conns = calloc(d->nconns, sizeof *d->conns);
  if (!d->conns)
    return SYNOD_ENOMEM;
  uv_timer_init(b->loop, &d->timer);
  d->timer.data = d;
  for (size_t k = 0; k < d->nconns; k++) {
    d->conns[k].d = d;
    d->conns[k].sender = k < n;
    d->conns[k].idx = k % n;
  }
  int rc = read_users(d->conns, b->n, d->conf.users_a, d->conf.relay_a);
  if (rc == 0)
    rc = read_users(d->conns + b->n, b->n, d->conf.users_b, d->conf.relay_b);
  char reason[256];
  if (rc == 0 && (rc = synod_tls_ctx_new_client(&d->tls, reason)) != 0)
    fprintf(stderr, "synod-bench: tls: %s\n", reason);
  for (size_t k = 0; rc == 0 && k < d->nconns; k++) {
    sconn_t *s = &d->conns[k];
    rc = s->sender ? connect_one(d, s, d->conf.port_a, d->conf.key_a)
                   : connect_one(d, s, d->conf.port_b, d->conf.key_b);
  }
  if (rc != 0)
    return rc;
  uv_timer_start(&d->timer, timer_cb, SETUP_MS, 0);
  while (d->nready < d->nconns && !d->failed && !d->timed_out)
    uv_run(b->loop, UV_RUN_ONCE);
  uv_timer_stop(&d->timer);
  if (d->nready < d->nconns)
    return d->timed_out ? SYNOD_ETIMEDOUT : SYNOD_ECLOSED;
  return 0;
}

static void teardown(bench_t *b) {
  sdrv_t *d = b->drv->data;
  d->closing = 1;
  for (size_t k = 0; d->conns && k < d->nconns; k++)
    if (d->conns[k].conn)
      synod_conn_close(d->conns[k].conn, 0);
  while (d->nopen)
    uv_run(b->loop, UV_RUN_ONCE);
  if (d->conns)
    uv_close((uv_handle_t *)&d->timer, NULL);
  uv_run(b->loop, UV_RUN_NOWAIT);
  for (size_t k = 0; d->conns && k < d->nconns; k++)
    synod_wipe(d->conns[k].sk, sizeof d->conns[k].sk);
  free(d->conns);
  synod_tls_ctx_free(d->tls);
  free(d);
}

int bench_synod_driver(bench_driver_t *drv, const bench_synod_conf_t *conf) {
  sdrv_t *d = calloc(1, sizeof *d);
  if (!d)
    return SYNOD_ENOMEM;
  d->conf = *conf;
  drv->name = "synod";
  drv->setup = setup;
  drv->send = send_msg;
  drv->teardown = teardown;
  drv->data = d;
  return 0;
}
