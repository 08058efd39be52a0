/*
 * One request to many relays at once, on a private libuv loop: a session
 * per relay (synod_conn, authenticated with the profile's identity key,
 * the relay's pinned key expected), the request sent on Ready, the first
 * frame answering it kept, then the session closed. Each relay has its own
 * deadline; a relay that does not answer in time is only that relay's
 * failure.
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

typedef struct fan_slot {
  fanout_target_t *t;
  uv_timer_t timer; /* memory of the slot array; closed before it is freed */
  synod_conn_t *conn;
  int done;
} fan_slot_t;

/* Untrusted text from the network, made printable. */
static void copy_reason(char *out, size_t n, const char *in) {
  size_t j = 0;
  for (size_t i = 0; in && in[i] && j + 1 < n; i++)
    out[j++] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
  out[j] = '\0';
}

static void finish(fan_slot_t *s, int status, const char *reason) {
  if (s->done)
    return;
  s->done = 1;
  s->t->status = status;
  copy_reason(s->t->reason, sizeof s->t->reason,
              reason && *reason ? reason
                                : (status ? synod_strerror(status) : ""));
  uv_timer_stop(&s->timer);
  if (s->conn)
    synod_conn_close(s->conn, 0);
}

static void on_timer(uv_timer_t *h) {
  fan_slot_t *s = h->data;
  finish(s, SYNOD_ETIMEDOUT, "no answer in time");
}

static void on_ready(synod_conn_t *conn, int status) {
  (void)status;
  fan_slot_t *s = synod_conn_data(conn);
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
}

int fanout_run(const synod_client_t *c, fanout_target_t *t, size_t n,
               uint64_t timeout_ms) {
  for (size_t i = 0; i < n; i++) {
    t[i].answer = NULL;
    t[i].status = SYNOD_EINTERNAL;
    t[i].refused = 0;
    t[i].reason[0] = '\0';
  }
  if (n == 0)
    return 0;
  fan_slot_t *slots = calloc(n, sizeof *slots);
  if (!slots)
    return SYNOD_ENOMEM;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    free(slots);
    return SYNOD_EIO;
  }
  char reason[256];
  synod_tls_ctx_t *tls = NULL;
  int rc = synod_tls_ctx_new_client(&tls, reason);
  for (size_t i = 0; i < n; i++) {
    fan_slot_t *s = &slots[i];
    s->t = &t[i];
    uv_timer_init(&loop, &s->timer);
    s->timer.data = s;
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
    opt.cb.on_ready = on_ready;
    opt.cb.on_frame = on_frame;
    opt.cb.on_close = on_close;
    opt.data = s;
    opt.handshake_timeout_ms = timeout_ms;
    uv_timer_start(&s->timer, on_timer, timeout_ms, 0);
    int crc = synod_conn_connect(&s->conn, &loop, t[i].relay->host,
                                 t[i].relay->port, &opt);
    if (crc != 0) {
      s->conn = NULL;
      finish(s, crc, "cannot connect");
    }
  }
  /* Runs until every session has closed (finish() closes it; on_close
   * clears s->conn) and every timer has stopped. */
  uv_run(&loop, UV_RUN_DEFAULT);
  for (size_t i = 0; i < n; i++)
    uv_close((uv_handle_t *)&slots[i].timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  int lrc = uv_loop_close(&loop);
  synod_tls_ctx_free(tls);
  free(slots);
  return lrc == 0 ? 0 : SYNOD_EINTERNAL;
}
