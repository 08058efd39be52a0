/*
 * One request to many relays at once, on a libuv loop: a session per relay
 * (synod_conn, authenticated with the profile's identity key, the relay's
 * pinned key expected), the request sent on Ready, the first frame
 * answering it kept, then the session closed. A relay that does not answer
 * in time is only that relay's failure. fanout_run() is the same round on
 * a private loop, for the blocking calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "internal.h"
#include "synod/conn.h"
#include "synod/tls.h"
#include "synod/wire.h"

#define FANOUT_REQUEST_ID 1
#define FANOUT_CLOSE_MS   500

typedef struct fan_slot {
  fanout_t *f;
  fanout_target_t *t;
  synod_conn_t *conn;
  int done;
} fan_slot_t;

struct fanout {
  uv_timer_t timer; /* the round's deadline; closed last */
  fan_slot_t *slots;
  size_t n;
  int closing;
  void (*done)(void *arg);
  void *arg;
};

/* Untrusted text from the network, made printable. */
static void copy_reason(char *out, size_t n, const char *in) {
  size_t j = 0;
  for (size_t i = 0; in && in[i] && j + 1 < n; i++)
    out[j++] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
  out[j] = '\0';
}

static void on_timer_closed(uv_handle_t *h) {
  fanout_t *f = h->data;
  void (*done)(void *) = f->done;
  void *arg = f->arg;
  free(f->slots);
  free(f);
  done(arg);
}

/* When every slot is done and every session closed: close the timer,
 * whose close callback reports and frees. */
static void check_complete(fanout_t *f) {
  if (f->closing)
    return;
  for (size_t i = 0; i < f->n; i++)
    if (!f->slots[i].done || f->slots[i].conn)
      return;
  f->closing = 1;
  uv_timer_stop(&f->timer);
  uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

static void finish(fan_slot_t *s, int status, const char *reason) {
  if (s->done)
    return;
  s->done = 1;
  s->t->status = status;
  copy_reason(s->t->reason, sizeof s->t->reason,
              reason && *reason ? reason
                                : (status ? synod_strerror(status) : ""));
  if (s->conn)
    synod_conn_close(s->conn, 0);
  check_complete(s->f);
}

static void on_timer(uv_timer_t *h) {
  fanout_t *f = h->data;
  for (size_t i = 0; i < f->n; i++)
    finish(&f->slots[i], SYNOD_ETIMEDOUT, "no answer in time");
}

static void on_ready(synod_conn_t *conn, int status) {
  (void)status;
  fan_slot_t *s = synod_conn_data(conn);
  if (s->done)
    return;
  Synod__V1__Frame f = *s->t->request;
  f.request_id = FANOUT_REQUEST_ID;
  int rc = synod_conn_send(conn, &f);
  if (rc != 0)
    finish(s, rc, "cannot send the request");
}

static void on_frame(synod_conn_t *conn, Synod__V1__Frame *f) {
  fan_slot_t *s = synod_conn_data(conn);
  if (s->done || f->request_id != FANOUT_REQUEST_ID) {
    synod_wire_free(f); /* pushes, or late: not ours to act on */
    return;
  }
  if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR) {
    s->t->refused = 1;
    finish(s, synod_err_from_wire(f->error->code), f->error->reason);
    synod_wire_free(f);
    return;
  }
  s->t->answer = f;
  finish(s, 0, "");
}

static void on_close(synod_conn_t *conn, int status) {
  fan_slot_t *s = synod_conn_data(conn);
  s->conn = NULL;
  finish(s, status ? status : SYNOD_ECLOSED, synod_conn_reason(conn));
  check_complete(s->f);
}

int fanout_start(fanout_t **out, const synod_client_t *c, uv_loop_t *loop,
                 fanout_target_t *t, size_t n, uint64_t timeout_ms,
                 void (*done)(void *arg), void *arg) {
  if (out)
    *out = NULL;
  for (size_t i = 0; i < n; i++) {
    t[i].answer = NULL;
    t[i].status = SYNOD_EINTERNAL;
    t[i].refused = 0;
    t[i].reason[0] = '\0';
  }
  fanout_t *f = calloc(1, sizeof *f);
  fan_slot_t *slots = calloc(n ? n : 1, sizeof *slots);
  if (!f || !slots) {
    free(f);
    free(slots);
    return SYNOD_ENOMEM;
  }
  f->slots = slots;
  f->n = n;
  f->done = done;
  f->arg = arg;
  uv_timer_init(loop, &f->timer);
  f->timer.data = f;
  uv_timer_start(&f->timer, on_timer, timeout_ms, 0);
  if (out)
    *out = f;
  for (size_t i = 0; i < n; i++) {
    slots[i].f = f;
    slots[i].t = &t[i];
  }
  char reason[256];
  synod_tls_ctx_t *tls = NULL;
  int rc = n ? synod_tls_ctx_new_client(&tls, reason) : 0;
  for (size_t i = 0; i < n; i++) {
    fan_slot_t *s = &slots[i];
    if (rc != 0) {
      finish(s, rc, reason);
      continue;
    }
    synod_conn_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.tls = tls;
    opt.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
    opt.handshake.name = c->user_id;
    opt.handshake.software = "synod-client/" SYNOD_VERSION;
    opt.handshake.secret_key = c->identity_sk;
    opt.handshake.expected_peer_key = t[i].relay->key;
    opt.handshake.enrollment_code = t[i].enrollment_code;
    /* Request sessions read nothing: the relay must not push to them. */
    opt.handshake.requests_only = 1;
    opt.cb.on_ready = on_ready;
    opt.cb.on_frame = on_frame;
    opt.cb.on_close = on_close;
    opt.data = s;
    opt.handshake_timeout_ms = timeout_ms;
    /* Once answered (or given up on) nothing more is wanted from the
     * relay: a hung one must not hold the round for the default 2 s. */
    opt.close_timeout_ms = FANOUT_CLOSE_MS;
    int crc = synod_conn_connect(&s->conn, loop, t[i].relay->host,
                                 t[i].relay->port, &opt);
    if (crc != 0) {
      s->conn = NULL;
      finish(s, crc, "cannot connect");
    }
  }
  synod_tls_ctx_free(tls); /* each session holds its own reference */
  check_complete(f);       /* n == 0, or every connect failed */
  return 0;
}

void fanout_cancel(fanout_t *f) {
  for (size_t i = 0; f && i < f->n; i++)
    finish(&f->slots[i], SYNOD_ECANCELED, "canceled");
}

typedef struct fan_run {
  const synod_client_t *c;
  fanout_target_t *t;
  size_t n;
  uint64_t timeout_ms;
} fan_run_t;

static void run_done(void *arg) {
  (void)arg;
}

static int run_start(uv_loop_t *loop, void *arg) {
  fan_run_t *r = arg;
  return fanout_start(NULL, r->c, loop, r->t, r->n, r->timeout_ms, run_done, r);
}

int fanout_run(const synod_client_t *c, fanout_target_t *t, size_t n,
               uint64_t timeout_ms) {
  fan_run_t r = {.c = c, .t = t, .n = n, .timeout_ms = timeout_ms};
  return op_run_private(run_start, &r);
}
