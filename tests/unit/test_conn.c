/*
 * Connections over loopback TCP (127.0.0.1, port 0) on a real libuv loop.
 * Honest clients are synod connections; misbehaving ones are raw: a bare
 * uv_tcp that writes bytes, or a bare TLS engine that completes TLS and
 * then writes whatever the test wants inside it. Callbacks count; counts
 * are asserted after uv_run; every test closes its loop.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "harness.h"
#include "synod/conn.h"
#include "synod/crypto.h"
#include "synod/frame.h"
#include "synod/handshake.h"
#include "synod/wire.h"

#define MAX_CONNS 16
#define GUARD_MS  20000

/* ms, times SYNOD_TEST_SLOWDOWN when it is set (tests/static/valgrind.sh
 * sets it: memcheck runs some 20 times slower). For the watchdog and the
 * handshake deadlines, which a test must not hit by slowness alone. */
static uint32_t slowed(uint32_t ms) {
  const char *s = getenv("SYNOD_TEST_SLOWDOWN");
  long k = s ? strtol(s, NULL, 10) : 1;
  return ms * (uint32_t)(k > 1 && k <= 100 ? k : 1);
}

/* --- fixture ---------------------------------------------------------------
 */

typedef struct fx {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_timer_t guard;
  uint16_t port;
  synod_tls_ctx_t *sctx, *cctx;
  uint8_t relay_pk[SYNOD_ED25519_PUBLIC_BYTES],
      relay_sk[SYNOD_ED25519_SECRET_BYTES];
  uint8_t user_pk[SYNOD_ED25519_PUBLIC_BYTES],
      user_sk[SYNOD_ED25519_SECRET_BYTES];
  synod_conn_options_t sopt; /* server side */

  /* server behaviour */
  int refuse_code;
  int server_conns_expected;  /* the listener closes after this many closes */
  int flood;                  /* server floods the client after ready */
  int reply_flood;            /* ... with synod_conn_reply, 100000 Pongs */
  int reply_pings;            /* answer Pings with synod_conn_reply */
  struct raw *close_on_close; /* a raw peer closed with the server's side */
  size_t max_queued;          /* the most queued seen while answering */

  /* server counts */
  int s_accepted, s_auth, s_ready, s_frames, s_closes, s_writable, s_eagain;
  int s_status[MAX_CONNS];
  int flood_sent;
} fx_t;

typedef struct client {
  fx_t *fx;
  synod_conn_t *conn;
  int quiet;          /* sends nothing after ready */
  int close_listener; /* closes the fixture's listener when it closes */
  int ready, frames, pongs, pings, closes, status, send_toobig;
  char reason[200];
} client_t;

static void guard_cb(uv_timer_t *t) {
  (void)t;
  CU_FAIL("test loop did not finish in time");
  uv_stop(t->loop);
}

static void s_on_auth(synod_conn_t *c, int status) {
  fx_t *fx = synod_conn_data(c);
  CU_ASSERT_EQUAL(status, 0);
  fx->s_auth++;
  const synod_handshake_peer_t *p = synod_conn_peer(c);
  CU_ASSERT_EQUAL(p->role, SYNOD__V1__ROLE__ROLE_CLIENT);
  CU_ASSERT_STRING_EQUAL(p->name, "alice@relay.test");
  if (fx->refuse_code) {
    CU_ASSERT_EQUAL(synod_conn_refuse(c, fx->refuse_code, "unknown key"), 0);
    CU_ASSERT_EQUAL(synod_conn_accept(c), SYNOD_ECLOSED);
  } else {
    CU_ASSERT_EQUAL(memcmp(p->public_key, fx->user_pk, sizeof fx->user_pk), 0);
    CU_ASSERT_EQUAL(synod_conn_accept(c), 0);
    if (!fx->reply_flood) /* which ends in on_ready, inside accept */
      CU_ASSERT_EQUAL(synod_conn_is_ready(c), 1);
  }
}

static void ping_frame(Synod__V1__Frame *f, Synod__V1__Ping *p,
                       uint64_t nonce) {
  synod__v1__frame__init(f);
  synod__v1__ping__init(p);
  p->nonce = nonce;
  f->body_case = SYNOD__V1__FRAME__BODY_PING;
  f->ping = p;
}

static void pong_frame(Synod__V1__Frame *f, Synod__V1__Pong *p,
                       uint64_t nonce) {
  synod__v1__frame__init(f);
  synod__v1__pong__init(p);
  p->nonce = nonce;
  f->body_case = SYNOD__V1__FRAME__BODY_PONG;
  f->pong = p;
}

/* Floods pings until the queue is full; the pong that ends the flood goes
 * out from on_writable. */
static void flood(synod_conn_t *c) {
  fx_t *fx = synod_conn_data(c);
  Synod__V1__Frame f;
  Synod__V1__Ping p;
  for (int i = 0; i < 1000000; i++) {
    ping_frame(&f, &p, (uint64_t)fx->flood_sent + 1);
    int rc = synod_conn_send(c, &f);
    if (rc == SYNOD_EAGAIN) {
      fx->s_eagain++;
      CU_ASSERT(synod_conn_queued(c) >= 64 * 1024);
      return;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    fx->flood_sent++;
  }
  CU_FAIL("the write queue never filled");
}

static void s_on_ready(synod_conn_t *c, int status) {
  fx_t *fx = synod_conn_data(c);
  CU_ASSERT_EQUAL(status, 0);
  fx->s_ready++;
  if (fx->flood)
    flood(c);
  if (fx->reply_flood) {
    /* Answers are never refused for the soft cap; the hard cap ends it. */
    Synod__V1__Frame f;
    Synod__V1__Pong p;
    pong_frame(&f, &p, 1);
    int rc = 0, i;
    for (i = 0; i < 100000 && rc == 0; i++)
      rc = synod_conn_reply(c, &f);
    CU_ASSERT_EQUAL(rc, SYNOD_ECLOSED);
    CU_ASSERT(i < 100000);
  }
}

static void s_on_writable(synod_conn_t *c, int status) {
  fx_t *fx = synod_conn_data(c);
  CU_ASSERT_EQUAL(status, 0);
  fx->s_writable++;
  CU_ASSERT(synod_conn_queued(c) <= 16 * 1024);
  Synod__V1__Frame f;
  Synod__V1__Pong p;
  pong_frame(&f, &p, 0);
  CU_ASSERT_EQUAL(synod_conn_send(c, &f), 0);
}

static void s_on_frame(synod_conn_t *c, Synod__V1__Frame *f) {
  fx_t *fx = synod_conn_data(c);
  fx->s_frames++;
  if (f->body_case == SYNOD__V1__FRAME__BODY_PING) {
    Synod__V1__Frame r;
    Synod__V1__Pong p;
    pong_frame(&r, &p, f->ping->nonce);
    if (fx->reply_pings) {
      int rc = synod_conn_reply(c, &r);
      CU_ASSERT(rc == 0 || rc == SYNOD_ECLOSED);
      if (synod_conn_queued(c) > fx->max_queued)
        fx->max_queued = synod_conn_queued(c);
    } else {
      CU_ASSERT_EQUAL(synod_conn_send(c, &r), 0);
    }
  }
  synod_wire_free(f); /* ours: on_frame hands the frame over */
}

struct raw;
static void raw_close(struct raw *r);

static void s_on_close(synod_conn_t *c, int status) {
  fx_t *fx = synod_conn_data(c);
  CU_ASSERT_FATAL(fx->s_closes < MAX_CONNS);
  fx->s_status[fx->s_closes++] = status;
  CU_ASSERT(status == SYNOD_ECLOSED || synod_conn_reason(c)[0] != '\0');
  if (fx->s_closes == fx->server_conns_expected)
    uv_close((uv_handle_t *)&fx->listener, NULL);
  if (fx->close_on_close)
    raw_close(fx->close_on_close);
}

static void on_connection(uv_stream_t *l, int status) {
  fx_t *fx = l->data;
  CU_ASSERT_EQUAL_FATAL(status, 0);
  synod_conn_t *c = NULL;
  fx->sopt.data = fx;
  CU_ASSERT_EQUAL(synod_conn_serve(&c, l, &fx->sopt), 0);
  if (c)
    fx->s_accepted++;
}

static void fx_init(fx_t *fx) {
  memset(fx, 0, sizeof *fx);
  CU_ASSERT_EQUAL_FATAL(uv_loop_init(&fx->loop), 0);
  CU_ASSERT_EQUAL_FATAL(synod_tls_ctx_new_server(&fx->sctx, NULL, NULL, NULL),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_tls_ctx_new_client(&fx->cctx, NULL), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(fx->relay_pk, fx->relay_sk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(fx->user_pk, fx->user_sk), 0);

  fx->sopt.tls = fx->sctx;
  fx->sopt.handshake.role = SYNOD__V1__ROLE__ROLE_RELAY;
  fx->sopt.handshake.name = "relay.test";
  fx->sopt.handshake.software = "test_conn";
  fx->sopt.handshake.secret_key = fx->relay_sk;
  fx->sopt.cb.on_auth = s_on_auth;
  fx->sopt.cb.on_ready = s_on_ready;
  fx->sopt.cb.on_frame = s_on_frame;
  fx->sopt.cb.on_writable = s_on_writable;
  fx->sopt.cb.on_close = s_on_close;
  fx->sopt.handshake_timeout_ms = slowed(5000);
  fx->server_conns_expected = 1;

  struct sockaddr_in sa;
  CU_ASSERT_EQUAL_FATAL(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
  CU_ASSERT_EQUAL_FATAL(uv_tcp_init(&fx->loop, &fx->listener), 0);
  fx->listener.data = fx;
  CU_ASSERT_EQUAL_FATAL(
      uv_tcp_bind(&fx->listener, (const struct sockaddr *)&sa, 0), 0);
  CU_ASSERT_EQUAL_FATAL(
      uv_listen((uv_stream_t *)&fx->listener, 16, on_connection), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  CU_ASSERT_EQUAL_FATAL(
      uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&ss, &len), 0);
  fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

  /* A watchdog that does not keep the loop alive by itself. */
  uv_timer_init(&fx->loop, &fx->guard);
  uv_timer_start(&fx->guard, guard_cb, slowed(GUARD_MS), 0);
  uv_unref((uv_handle_t *)&fx->guard);
}

/* Runs the loop to completion, then checks it closes clean. */
static void fx_run_and_close(fx_t *fx) {
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&fx->guard, NULL);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  CU_ASSERT_EQUAL(uv_loop_close(&fx->loop), 0);
  synod_tls_ctx_free(fx->sctx);
  synod_tls_ctx_free(fx->cctx);
}

/* --- honest client -------------------------------------------------------- */

static void c_on_ready(synod_conn_t *c, int status) {
  client_t *cl = synod_conn_data(c);
  CU_ASSERT_EQUAL(status, 0);
  cl->ready++;
  const synod_handshake_peer_t *p = synod_conn_peer(c);
  CU_ASSERT_EQUAL(
      memcmp(p->public_key, cl->fx->relay_pk, sizeof cl->fx->relay_pk), 0);
  CU_ASSERT_STRING_EQUAL(p->relay_name, "relay.test");
  if (cl->fx->flood || cl->quiet)
    return; /* the server speaks first, or nobody does */

  /* A frame over our own limit is refused and the connection stays. */
  synod_wire_error_t e;
  char big[SYNOD_WIRE_REASON_MAX + 1];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  synod_wire_error(&e, 7, SYNOD_EDENIED, big);
  if (synod_conn_send(c, &e.frame) == SYNOD_ETOOBIG)
    cl->send_toobig++;

  Synod__V1__Frame f;
  Synod__V1__Ping p2;
  ping_frame(&f, &p2, 42);
  CU_ASSERT_EQUAL(synod_conn_send(c, &f), 0);
}

static void c_on_frame(synod_conn_t *c, Synod__V1__Frame *f) {
  client_t *cl = synod_conn_data(c);
  cl->frames++;
  if (f->body_case == SYNOD__V1__FRAME__BODY_PING)
    cl->pings++;
  if (f->body_case == SYNOD__V1__FRAME__BODY_PONG) {
    cl->pongs++;
    if (!cl->fx->flood && !cl->fx->reply_flood)
      CU_ASSERT_EQUAL(f->pong->nonce, 42);
    synod_conn_close(c, 0);
    synod_conn_close(c, SYNOD_EIO); /* idempotent: the first status counts */
    CU_ASSERT_EQUAL(synod_conn_send(c, f), SYNOD_ECLOSED);
  }
  synod_wire_free(f);
}

static void c_on_close(synod_conn_t *c, int status) {
  client_t *cl = synod_conn_data(c);
  cl->closes++;
  cl->status = status;
  snprintf(cl->reason, sizeof cl->reason, "%s", synod_conn_reason(c));
  if (cl->close_listener)
    uv_close((uv_handle_t *)&cl->fx->listener, NULL);
}

static void client_start(fx_t *fx, client_t *cl, const uint8_t *expected,
                         uint32_t max_frame, uint64_t idle_ms) {
  memset(cl, 0, sizeof *cl);
  cl->fx = fx;
  synod_conn_options_t o;
  memset(&o, 0, sizeof o);
  o.tls = fx->cctx;
  o.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  o.handshake.name = "alice@relay.test";
  o.handshake.secret_key = fx->user_sk;
  o.handshake.expected_peer_key = expected ? expected : fx->relay_pk;
  o.cb.on_ready = c_on_ready;
  o.cb.on_frame = c_on_frame;
  o.cb.on_close = c_on_close;
  o.data = cl;
  o.max_frame = max_frame;
  o.idle_timeout_ms = idle_ms;
  o.handshake_timeout_ms = slowed(5000);
  CU_ASSERT_EQUAL_FATAL(
      synod_conn_connect(&cl->conn, &fx->loop, "127.0.0.1", fx->port, &o), 0);
}

/* --- raw clients ---------------------------------------------------------- */

typedef enum raw_mode {
  RAW_TCP, /* payload straight on TCP, no TLS */
  RAW_TLS, /* TLS, then payload as plaintext */
} raw_mode_t;

typedef struct raw {
  fx_t *fx;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_shutdown_t sreq;
  uv_timer_t trickle_timer;
  raw_mode_t mode;
  /* With session set, a session handshake as alice before the payload;
   * trickle_ms: the payload a byte at a time; deaf: stop reading once it
   * is sent. */
  int session, deaf;
  uint64_t trickle_ms;
  size_t trickled;
  synod_handshake_t *hs;
  int ready;
  const uint8_t *payload;
  size_t plen;
  int shutdown_after; /* FIN (no close_notify) right after the payload */
  synod_tls_t *tls;
  synod_frame_decoder_t dec;
  int sent;
  int hellos, errors, error_code, closed;
} raw_t;

static void raw_close_cb(uv_handle_t *h) {
  raw_t *r = h->data;
  synod_tls_free(r->tls);
  r->tls = NULL;
  synod_handshake_free(r->hs);
  r->hs = NULL;
  synod_frame_decoder_free(&r->dec);
  r->closed++;
}

static void raw_close(raw_t *r) {
  if (r->trickle_ms && !uv_is_closing((uv_handle_t *)&r->trickle_timer))
    uv_close((uv_handle_t *)&r->trickle_timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&r->tcp))
    uv_close((uv_handle_t *)&r->tcp, raw_close_cb);
}

static void raw_write_cb(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void raw_write(raw_t *r, const uint8_t *data, size_t len) {
  uv_write_t *w = malloc(sizeof *w + len);
  CU_ASSERT_FATAL(w != NULL);
  memcpy(w + 1, data, len);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned int)len);
  CU_ASSERT_EQUAL(uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, raw_write_cb), 0);
}

static void raw_flush_tls(raw_t *r) {
  uint8_t buf[8192];
  size_t n;
  while (synod_tls_take(r->tls, buf, sizeof buf, &n) == 0 && n > 0)
    raw_write(r, buf, n);
}

static void raw_shutdown_cb(uv_shutdown_t *s, int status) {
  (void)s;
  (void)status;
}

static void trickle_cb(uv_timer_t *t) {
  raw_t *r = t->data;
  if (r->trickled >= r->plen || uv_is_closing((uv_handle_t *)&r->tcp)) {
    uv_timer_stop(t);
    return;
  }
  CU_ASSERT_EQUAL(synod_tls_write(r->tls, r->payload + r->trickled++, 1), 0);
  raw_flush_tls(r);
}

static void raw_send_payload(raw_t *r) {
  r->sent = 1;
  if (r->trickle_ms) {
    uv_timer_start(&r->trickle_timer, trickle_cb, 0, r->trickle_ms);
    return;
  }
  if (r->mode == RAW_TCP) {
    if (r->plen)
      raw_write(r, r->payload, r->plen);
  } else if (r->plen) {
    CU_ASSERT_EQUAL(synod_tls_write(r->tls, r->payload, r->plen), 0);
    raw_flush_tls(r);
  }
  if (r->shutdown_after)
    uv_shutdown(&r->sreq, (uv_stream_t *)&r->tcp, raw_shutdown_cb);
  if (r->deaf)
    uv_read_stop((uv_stream_t *)&r->tcp);
}

/* The session handshake's frames go out inside TLS. */
static void raw_flush_hs(raw_t *r) {
  uint8_t *buf;
  size_t len;
  while (synod_handshake_take(r->hs, &buf, &len) == 1) {
    CU_ASSERT_EQUAL(synod_tls_write(r->tls, buf, len), 0);
    free(buf);
  }
  raw_flush_tls(r);
}

static void raw_start_session(raw_t *r) {
  synod_handshake_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  cfg.name = "alice@relay.test";
  cfg.software = "test_conn";
  cfg.secret_key = r->fx->user_sk;
  cfg.expected_peer_key = r->fx->relay_pk;
  uint8_t x[SYNOD_TLS_EXPORTER_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_handshake_new(&r->hs, &cfg), 0);
  CU_ASSERT_EQUAL_FATAL(synod_tls_exporter(r->tls, x), 0);
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(r->hs, x), 0);
  raw_flush_hs(r);
}

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  b->base = malloc(s);
  b->len = s;
}

static void raw_plain(raw_t *r, const uint8_t *p, size_t n) {
  while (n > 0) {
    size_t used;
    uint8_t *body;
    size_t blen;
    int rc = synod_frame_decoder_feed(&r->dec, p, n, &used, &body, &blen);
    CU_ASSERT_FATAL(rc >= 0);
    p += used;
    n -= used;
    if (rc == 0)
      break;
    Synod__V1__Frame *f = NULL;
    CU_ASSERT_EQUAL_FATAL(synod_wire_unpack(body, blen, &f), 0);
    free(body);
    if (f->body_case == SYNOD__V1__FRAME__BODY_HELLO)
      r->hellos++;
    if (r->hs && !r->ready && f->body_case != SYNOD__V1__FRAME__BODY_ERROR) {
      int ev = synod_handshake_recv(r->hs, f);
      CU_ASSERT(ev >= 0);
      raw_flush_hs(r);
      if (ev == SYNOD_HS_EV_READY) {
        r->ready = 1;
        raw_send_payload(r);
      }
    }
    if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR) {
      r->errors++;
      r->error_code = synod_err_from_wire(f->error->code);
      CU_ASSERT(f->error->reason[0] != '\0');
    }
    synod_wire_free(f);
  }
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  raw_t *r = s->data;
  if (nread < 0) {
    raw_close(r);
  } else if (nread > 0 && r->mode == RAW_TLS && r->tls) {
    CU_ASSERT_EQUAL(
        synod_tls_feed(r->tls, (const uint8_t *)b->base, (size_t)nread), 0);
    int h = synod_tls_handshake(r->tls);
    raw_flush_tls(r);
    if (h == 1) {
      if (r->session && !r->hs)
        raw_start_session(r);
      else if (!r->session && !r->sent)
        raw_send_payload(r);
      uint8_t plain[16384];
      size_t got;
      while (synod_tls_read(r->tls, plain, sizeof plain, &got) == 0 && got > 0)
        raw_plain(r, plain, got);
    }
  }
  free(b->base);
}

static void raw_connect_cb(uv_connect_t *req, int status) {
  raw_t *r = req->data;
  CU_ASSERT_EQUAL_FATAL(status, 0);
  uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
  if (r->mode == RAW_TCP) {
    raw_send_payload(r);
  } else {
    CU_ASSERT_EQUAL(synod_tls_handshake(r->tls), 0);
    raw_flush_tls(r);
  }
}

static void raw_start(fx_t *fx, raw_t *r, raw_mode_t mode,
                      const uint8_t *payload, size_t plen, int shutdown_after) {
  memset(r, 0, sizeof *r);
  r->mode = mode;
  r->payload = payload;
  r->plen = plen;
  r->shutdown_after = shutdown_after;
  r->fx = fx;
  if (mode == RAW_TLS)
    CU_ASSERT_EQUAL_FATAL(synod_tls_new(&r->tls, fx->cctx), 0);
  CU_ASSERT_EQUAL_FATAL(
      synod_frame_decoder_init(&r->dec, SYNOD_FRAME_DEFAULT_MAX), 0);
  uv_tcp_init(&fx->loop, &r->tcp);
  r->tcp.data = r;
  r->creq.data = r;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", fx->port, &sa);
  CU_ASSERT_EQUAL_FATAL(uv_tcp_connect(&r->creq, &r->tcp,
                                       (const struct sockaddr *)&sa,
                                       raw_connect_cb),
                        0);
}

/* A raw peer that completes the session handshake as alice, then sends
 * payload (a byte every trickle_ms when set) and, when deaf, stops
 * reading with a small receive buffer. */
static void raw_session_start(fx_t *fx, raw_t *r, const uint8_t *payload,
                              size_t plen, uint64_t trickle_ms, int deaf) {
  raw_start(fx, r, RAW_TLS, payload, plen, 0);
  r->session = 1;
  r->deaf = deaf;
  r->trickle_ms = trickle_ms;
  if (trickle_ms) {
    uv_timer_init(&fx->loop, &r->trickle_timer);
    r->trickle_timer.data = r;
  }
  if (deaf) {
    int small = 4096;
    CU_ASSERT_EQUAL(uv_recv_buffer_size((uv_handle_t *)&r->tcp, &small), 0);
  }
}

static int count_status(const fx_t *fx, int status) {
  int n = 0;
  for (int i = 0; i < fx->s_closes; i++)
    n += fx->s_status[i] == status;
  return n;
}

/* --- tests -------------------------------------------------------------- */

static void test_conn_loopback(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  client_start(&fx, &cl, NULL, 150, 0);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(fx.s_accepted, 1);
  CU_ASSERT_EQUAL(fx.s_auth, 1);
  CU_ASSERT_EQUAL(fx.s_ready, 1);
  CU_ASSERT_EQUAL(fx.s_frames, 1);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_ECLOSED);
  CU_ASSERT_EQUAL(cl.ready, 1);
  CU_ASSERT_EQUAL(cl.send_toobig, 1);
  CU_ASSERT_EQUAL(cl.pongs, 1);
  CU_ASSERT_EQUAL(cl.frames, 1);
  CU_ASSERT_EQUAL(cl.closes, 1);
  CU_ASSERT_EQUAL(cl.status, 0);
}

static void test_conn_refused(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  fx.refuse_code = SYNOD_EUNKNOWNUSER;
  client_start(&fx, &cl, NULL, 0, 0);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(fx.s_auth, 1);
  CU_ASSERT_EQUAL(fx.s_ready, 0);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_EUNKNOWNUSER);
  CU_ASSERT_EQUAL(cl.ready, 0);
  CU_ASSERT_EQUAL(cl.closes, 1);
  CU_ASSERT_EQUAL(cl.status, SYNOD_EUNKNOWNUSER);
  CU_ASSERT(strstr(cl.reason, "unknown key") != NULL);
}

/* The client expects another relay key: it refuses the relay with a typed
 * error, which ends the server's side with the same code. */
static void test_conn_wrong_relay_key(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  uint8_t other[SYNOD_ED25519_PUBLIC_BYTES], osk[SYNOD_ED25519_SECRET_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(other, osk), 0);
  client_start(&fx, &cl, other, 0, 0);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(cl.ready, 0);
  CU_ASSERT_EQUAL(cl.closes, 1);
  CU_ASSERT_EQUAL(cl.status, SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(fx.s_frames, 0);
}

/* Each misbehaving peer loses its own connection with a typed error while
 * an honest client, in the same loop run, is served to the end. */
static void test_conn_violations(void) {
  fx_t fx;
  fx_init(&fx);
  fx.server_conns_expected = 7;

  static const uint8_t oversized[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  uint8_t truncated[4 + 10] = {0, 0, 0, 100};
  uint8_t garbage[4 + 32] = {0, 0, 0, 32, 0x07}; /* field 0: invalid */
  uint8_t noise[512];
  uint32_t x = 0x9e3779b9u;
  for (size_t i = 0; i < sizeof noise; i++) {
    x = x * 1664525u + 1013904223u;
    noise[i] = (uint8_t)(x >> 24);
  }
  memcpy(garbage + 5, noise, sizeof garbage - 5);
  memcpy(truncated + 4, noise, 10);
  noise[0] = 0x00; /* not a TLS record type */

  /* A well-formed Ping before any Hello. */
  Synod__V1__Frame f;
  Synod__V1__Ping p;
  ping_frame(&f, &p, 1);
  uint8_t *early;
  size_t early_len;
  CU_ASSERT_EQUAL_FATAL(
      synod_wire_pack(&f, SYNOD_FRAME_DEFAULT_MAX, &early, &early_len), 0);

  raw_t r_big, r_trunc, r_garbage, r_early, r_noise, r_silent;
  client_t honest;
  raw_start(&fx, &r_big, RAW_TLS, oversized, sizeof oversized, 0);
  raw_start(&fx, &r_trunc, RAW_TLS, truncated, sizeof truncated, 1);
  raw_start(&fx, &r_garbage, RAW_TLS, garbage, sizeof garbage, 0);
  raw_start(&fx, &r_early, RAW_TLS, early, early_len, 0);
  raw_start(&fx, &r_noise, RAW_TCP, noise, sizeof noise, 0);
  /* for r_silent only; the rest finish long before */
  fx.sopt.handshake_timeout_ms = slowed(1500);
  raw_start(&fx, &r_silent, RAW_TLS, NULL, 0, 0);
  client_start(&fx, &honest, NULL, 0, 0);
  fx_run_and_close(&fx);
  free(early);

  CU_ASSERT_EQUAL(fx.s_accepted, 7);
  CU_ASSERT_EQUAL(fx.s_closes, 7);
  /* What each attacker was told. */
  CU_ASSERT_EQUAL(r_big.errors, 1);
  CU_ASSERT_EQUAL(r_big.error_code, SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(r_trunc.errors, 1);
  CU_ASSERT_EQUAL(r_trunc.error_code, SYNOD_ETRUNC);
  CU_ASSERT_EQUAL(r_garbage.errors, 1);
  CU_ASSERT_EQUAL(r_garbage.error_code, SYNOD_EPARSE);
  CU_ASSERT_EQUAL(r_early.errors, 1);
  CU_ASSERT_EQUAL(r_early.error_code, SYNOD_EPROTO);
  CU_ASSERT_EQUAL(r_silent.errors, 1);
  CU_ASSERT_EQUAL(r_silent.error_code, SYNOD_ETIMEDOUT);
  CU_ASSERT_EQUAL(
      r_big.hellos + r_trunc.hellos + r_garbage.hellos + r_early.hellos, 4);
  /* Every raw client saw its connection end. */
  CU_ASSERT_EQUAL(r_big.closed + r_trunc.closed + r_garbage.closed +
                      r_early.closed + r_noise.closed + r_silent.closed,
                  6);
  /* What the server reported, one close per cause. */
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ETOOBIG), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ETRUNC), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_EPARSE), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_EPROTO), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ETLS), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ETIMEDOUT), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ECLOSED), 1); /* the honest one */
  /* And the honest client was served in full. */
  CU_ASSERT_EQUAL(fx.s_auth, 1);
  CU_ASSERT_EQUAL(fx.s_ready, 1);
  CU_ASSERT_EQUAL(honest.ready, 1);
  CU_ASSERT_EQUAL(honest.pongs, 1);
  CU_ASSERT_EQUAL(honest.closes, 1);
  CU_ASSERT_EQUAL(honest.status, 0);
}

/* A small write cap: the server's flood is refused with EAGAIN, drains,
 * on_writable fires, and the client gets every frame in order. */
static void test_conn_backpressure(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  fx.flood = 1;
  fx.sopt.high_water = 64 * 1024;
  fx.sopt.low_water = 16 * 1024;
  client_start(&fx, &cl, NULL, 0, 0);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(fx.s_eagain, 1);
  CU_ASSERT_EQUAL(fx.s_writable, 1);
  CU_ASSERT(fx.flood_sent > 100);
  CU_ASSERT_EQUAL(cl.pings, fx.flood_sent);
  CU_ASSERT_EQUAL(cl.pongs, 1);
  CU_ASSERT_EQUAL(cl.status, 0);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
}

/* The server closes a session that stays silent past its idle timeout
 * and tells the client so with a typed error. */
static void test_conn_idle_timeout(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  fx.sopt.idle_timeout_ms = 150;
  client_start(&fx, &cl, NULL, 0, 0);
  cl.quiet = 1;
  uint64_t t0 = uv_now(&fx.loop);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(cl.ready, 1);
  CU_ASSERT_EQUAL(fx.s_ready, 1);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_ETIMEDOUT);
  CU_ASSERT_EQUAL(cl.closes, 1);
  CU_ASSERT_EQUAL(cl.status, SYNOD_ETIMEDOUT);
  CU_ASSERT(strstr(cl.reason, "idle") != NULL);
  CU_ASSERT(uv_now(&fx.loop) - t0 >= 150);
}

/* Connecting where nobody listens, by address and by name; and a client
 * context handed to the server side is refused without any callback. */
static void test_conn_connect_failures(void) {
  fx_t fx;
  fx_init(&fx);
  uint16_t port = fx.port;
  uv_close((uv_handle_t *)&fx.listener, NULL); /* now nobody listens there */
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  client_t a, b;
  fx.port = port;
  client_start(&fx, &a, NULL, 0, 0);
  memset(&b, 0, sizeof b);
  b.fx = &fx;
  synod_conn_options_t o;
  memset(&o, 0, sizeof o);
  o.tls = fx.cctx;
  o.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  o.handshake.name = "alice@relay.test";
  o.handshake.secret_key = fx.user_sk;
  o.handshake.expected_peer_key = fx.relay_pk;
  o.cb.on_close = c_on_close;
  o.data = &b;
  CU_ASSERT_EQUAL(synod_conn_connect(&b.conn, &fx.loop, "localhost", port, &o),
                  0);

  /* Misuse fails at once and no callback ever fires. */
  synod_conn_t *bad = NULL;
  o.cb.on_close = NULL;
  CU_ASSERT_EQUAL(synod_conn_connect(&bad, &fx.loop, "127.0.0.1", port, &o),
                  SYNOD_EINVAL);
  o.cb.on_close = c_on_close;
  o.tls = fx.sctx; /* a server context on a client */
  CU_ASSERT_EQUAL(synod_conn_connect(&bad, &fx.loop, "127.0.0.1", port, &o),
                  SYNOD_EINVAL);
  o.tls = fx.cctx;
  o.handshake.expected_peer_key = NULL;
  CU_ASSERT_EQUAL(synod_conn_connect(&bad, &fx.loop, "127.0.0.1", port, &o),
                  SYNOD_EINVAL);
  CU_ASSERT_PTR_NULL(bad);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(a.closes, 1);
  CU_ASSERT_EQUAL(a.status, SYNOD_EIO);
  CU_ASSERT(strstr(a.reason, "connect") != NULL);
  CU_ASSERT_EQUAL(b.closes, 1);
  CU_ASSERT_EQUAL(b.status, SYNOD_EIO);
  CU_ASSERT_EQUAL(a.ready + b.ready, 0);
}

/* The owner closes a connection that is still connecting / handshaking:
 * on_close fires once, later, with the owner's status. */
static void test_conn_close_early(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  client_start(&fx, &cl, NULL, 0, 0);
  cl.close_listener = 1;
  synod_conn_close(cl.conn, SYNOD_EDENIED);
  CU_ASSERT_EQUAL(cl.closes, 0); /* never from inside the call */
  CU_ASSERT_EQUAL(synod_conn_send(cl.conn, NULL), SYNOD_ECLOSED);
  /* The server may or may not accept the TCP connection before the
   * listener goes; either way its side ends without a session. */
  fx.server_conns_expected = 1000;
  fx_run_and_close(&fx);
  CU_ASSERT_EQUAL(cl.closes, 1);
  CU_ASSERT_EQUAL(cl.status, SYNOD_EDENIED);
  CU_ASSERT_EQUAL(fx.s_ready, 0);
  CU_ASSERT_EQUAL(fx.s_closes, fx.s_accepted);
}

/* A peer trickling a frame a byte every 40 ms keeps the idle timeout
 * (200 ms) quiet, but not the frame deadline (300 ms): ETIMEDOUT, told. */
static void test_conn_frame_timeout(void) {
  fx_t fx;
  fx_init(&fx);
  fx.sopt.idle_timeout_ms = 200;
  fx.sopt.frame_timeout_ms = 300;
  uint8_t frame[4 + 40] = {0, 0, 0, 40};
  raw_t r;
  raw_session_start(&fx, &r, frame, sizeof frame, 40, 0);
  uint64_t t0 = uv_now(&fx.loop);
  fx_run_and_close(&fx);
  uint64_t took = uv_now(&fx.loop) - t0;

  CU_ASSERT_EQUAL(fx.s_ready, 1);
  CU_ASSERT_EQUAL(fx.s_frames, 0);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_ETIMEDOUT);
  CU_ASSERT_EQUAL(r.ready, 1);
  CU_ASSERT_EQUAL(r.errors, 1);
  CU_ASSERT_EQUAL(r.error_code, SYNOD_ETIMEDOUT);
  CU_ASSERT(r.trickled > 3);            /* bytes kept coming ... */
  CU_ASSERT(r.trickled < sizeof frame); /* ... and the frame never ended */
  CU_ASSERT(took >= 300);
  CU_ASSERT_EQUAL(r.closed, 1);
}

/* A peer that sends Pings and never reads: once the answers queued reach
 * high_water the server stops reading it (the queue stays far from
 * max_queue), and after frame_timeout without progress it is cut:
 * ELIMIT, "peer is not reading". */
static void test_conn_not_reading(void) {
  fx_t fx;
  fx_init(&fx);
  fx.reply_pings = 1;
  fx.sopt.high_water = 16 * 1024;
  fx.sopt.low_water = 4 * 1024;
  fx.sopt.max_queue = 4 * 1024 * 1024;
  fx.sopt.frame_timeout_ms = 500;
  /* The kernel's buffers hold what the peer does not read: a small send
   * buffer on the server's side (accepted sockets inherit the listener's)
   * keeps that to some KiB instead of autotuned MiB, so the pause comes
   * after a few thousand answers even on a slow run (valgrind). */
  int small = 16 * 1024;
  CU_ASSERT_EQUAL(uv_send_buffer_size((uv_handle_t *)&fx.listener, &small), 0);
  /* Enough that the answers (some 40 bytes each) overflow what loopback
   * sockets buffer by far. */
  enum { PINGS = 400000 };
  Synod__V1__Frame f;
  Synod__V1__Ping g;
  uint8_t *one;
  size_t len;
  ping_frame(&f, &g, 1);
  CU_ASSERT_EQUAL_FATAL(
      synod_wire_pack(&f, SYNOD_FRAME_DEFAULT_MAX, &one, &len), 0);
  uint8_t *pings = malloc(PINGS * len), *p = pings;
  CU_ASSERT_FATAL(pings != NULL);
  for (int i = 0; i < PINGS; i++, p += len)
    memcpy(p, one, len);
  free(one);
  raw_t r;
  raw_session_start(&fx, &r, pings, (size_t)(p - pings), 0, 1);
  fx.close_on_close = &r;
  fx_run_and_close(&fx);
  free(pings);

  CU_ASSERT_EQUAL(fx.s_ready, 1);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_ELIMIT);
  CU_ASSERT(fx.s_frames > 0);
  CU_ASSERT(fx.s_frames < PINGS); /* it stopped reading them */
  /* Over high_water by at most the answers to one 16 KiB chunk. */
  CU_ASSERT(fx.max_queued < 1024 * 1024);
  CU_ASSERT_EQUAL(r.closed, 1);
}

/* Answers are not refused at high_water, but max_queue is a hard cap: the
 * server that answers 100000 times at once is cut with ELIMIT. */
static void test_conn_queue_cap(void) {
  fx_t fx;
  client_t cl;
  fx_init(&fx);
  fx.reply_flood = 1;
  fx.sopt.max_queue = 256 * 1024;
  client_start(&fx, &cl, NULL, 0, 0);
  cl.quiet = 1;
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(fx.s_ready, 1);
  CU_ASSERT_EQUAL(fx.s_closes, 1);
  CU_ASSERT_EQUAL(fx.s_status[0], SYNOD_ELIMIT);
  CU_ASSERT_EQUAL(cl.closes, 1); /* by a Pong that got through, or the cut */
}

/* Two peers each announce a 100000-byte frame against a shared budget of
 * 150000: the one that takes the total over is shed (ELIMIT, told); the
 * other keeps its buffer until its frame deadline. */
static void test_conn_budget(void) {
  fx_t fx;
  fx_init(&fx);
  synod_conn_budget_t *b = NULL;
  CU_ASSERT_EQUAL(synod_conn_budget_new(&b, 0), SYNOD_EINVAL);
  CU_ASSERT_EQUAL_FATAL(synod_conn_budget_new(&b, 150000), 0);
  fx.sopt.budget = b;
  fx.sopt.frame_timeout_ms = 1000;
  fx.server_conns_expected = 2;
  static const uint8_t partial[4 + 10] = {0, 1, 0x86, 0xa0}; /* 100000 */
  raw_t r1, r2;
  raw_session_start(&fx, &r1, partial, sizeof partial, 0, 0);
  raw_session_start(&fx, &r2, partial, sizeof partial, 0, 0);
  fx_run_and_close(&fx);

  CU_ASSERT_EQUAL(fx.s_ready, 2);
  CU_ASSERT_EQUAL(fx.s_closes, 2);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ELIMIT), 1);
  CU_ASSERT_EQUAL(count_status(&fx, SYNOD_ETIMEDOUT), 1);
  CU_ASSERT_EQUAL(r1.errors + r2.errors, 2);
  CU_ASSERT(r1.error_code == SYNOD_ELIMIT || r2.error_code == SYNOD_ELIMIT);
  CU_ASSERT_EQUAL(synod_conn_budget_shed(b), 1);
  CU_ASSERT(synod_conn_budget_peak(b) > 150000);
  CU_ASSERT_EQUAL(synod_conn_budget_used(b), 0);
  CU_ASSERT_EQUAL(synod_conn_budget_full(b), 0);
  CU_ASSERT_EQUAL(synod_conn_budget_limit(b), 150000);
  synod_conn_budget_free(b);
}

static CU_TestInfo conn_tests[] = {
    {"conn_loopback", test_conn_loopback},
    {"conn_refused", test_conn_refused},
    {"conn_wrong_relay_key", test_conn_wrong_relay_key},
    {"conn_violations", test_conn_violations},
    {"conn_backpressure", test_conn_backpressure},
    {"conn_idle_timeout", test_conn_idle_timeout},
    {"conn_connect_failures", test_conn_connect_failures},
    {"conn_close_early", test_conn_close_early},
    {"conn_frame_timeout", test_conn_frame_timeout},
    {"conn_not_reading", test_conn_not_reading},
    {"conn_queue_cap", test_conn_queue_cap},
    {"conn_budget", test_conn_budget},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"conn", NULL, NULL, NULL, NULL, conn_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
