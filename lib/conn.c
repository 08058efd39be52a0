/*
 * A connection on the loop: TCP <-> TLS engine <-> frame decoder <->
 * handshake / owner. See synod/conn.h for the contract.
 *
 * Every way out goes through synod_conn_close(), which may only start
 * closing; memory goes in the close callbacks of the three handles (tcp,
 * idle and
 * timer), once both ran and no getaddrinfo request is outstanding.
 */
#include "synod/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/frame.h"
#include "synod/wire.h"

#define container_of(ptr, type, member)                                        \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* One read from the kernel. Allocated per read rather than per connection:
 * an idle connection then costs no buffer. A read that fills it means
 * more is waiting: the connection then yields to the others until the
 * next loop iteration (see yield_cb), so one flooding peer gets one read
 * of this size handled per iteration, not libuv's up to 32 in a row. */
#define READ_BYTES (16u * 1024u)
/* Plaintext is decrypted through a stack buffer of this size: one TLS
 * record. */
#define PLAIN_BYTES  (16u * 1024u)
#define REASON_BYTES 160
/* A connection shed for the budget with more than this queued is not
 * reading: its queue is dropped rather than drained. */
#define SHED_DRAIN_BYTES (64u * 1024u)

struct synod_conn_budget {
  size_t limit, used, peak;
  uint64_t shed;
  int shedding;       /* the Error a shed connection gets must not shed again */
  synod_conn_t *head; /* every connection created with it, until freed */
};

typedef struct wreq {
  uv_write_t req;
  synod_conn_t *c;
  size_t len; /* what it counts in queued: data and overhead */
  uint8_t data[];
} wreq_t;

/* A write request costs its header and the allocator's due on top of its
 * data; the queue counts them, so that a flood of tiny frames (a Pong is
 * some 40 bytes) is bounded by the memory it takes, not by its payload. */
#define WREQ_OVERHEAD (sizeof(wreq_t) + 32u)

struct synod_conn {
  uv_tcp_t tcp;
  uv_timer_t
      timer; /* handshake deadline, then idle check, then close deadline */
  uv_idle_t yield; /* active while reading waits for the next iteration */
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  uv_getaddrinfo_t gai_req;
  uv_loop_t *loop;

  synod_tls_t *tls;
  synod_handshake_t *hs;
  synod_frame_decoder_t dec;
  synod_conn_callbacks_t cb;
  void *data;

  uint32_t max_frame;
  size_t high_water, low_water, max_queue, queued;
  uint64_t handshake_ms, idle_ms, close_ms, frame_ms;
  uint64_t last_rx;     /* uv_now() of the last bytes received */
  uint64_t frame_start; /* uv_now() when the frame being received began */
  uint64_t pause_start; /* uv_now() when reading stopped (paused) */

  synod_conn_budget_t *budget; /* NULL, or linked into its list */
  synod_conn_t *bprev, *bnext;
  size_t held;   /* bytes counted in budget->used */
  uint16_t port; /* for the connect after getaddrinfo */

  int handles; /* initialised handles not yet closed */
  int status;  /* for on_close */
  unsigned connected : 1;
  unsigned hs_started : 1;
  unsigned ready : 1;
  unsigned want_writable : 1;
  unsigned closing : 1;
  unsigned hard_closing : 1;
  unsigned shut_sent : 1;
  unsigned shut_done : 1;
  unsigned eof : 1;
  unsigned gai_pending : 1;
  unsigned silent : 1;     /* creation failed: no callback at all */
  unsigned reading : 1;    /* uv_read_start() in effect */
  unsigned paused : 1;     /* reading stopped: the write queue is full */
  unsigned yielding : 1;   /* reading stopped until the next iteration */
  unsigned frame_open : 1; /* a frame has begun (frame_start is valid) */
  char reason[REASON_BYTES];
};

static void set_reason(synod_conn_t *c, const char *what, const char *detail) {
  if (c->reason[0])
    return; /* the first cause is the one worth keeping */
  if (detail && detail[0])
    snprintf(c->reason, sizeof c->reason, "%s: %s", what, detail);
  else
    snprintf(c->reason, sizeof c->reason, "%s", what);
}

/* --- the budget ------------------------------------------------------------ */

static void shed_over_budget(synod_conn_budget_t *b);

/* Bytes c buffers: unsent ciphertext and a frame body being received (the
 * decoder allocates the announced length at once). */
static size_t holding(const synod_conn_t *c) {
  return c->queued + (c->dec.body ? c->dec.body_len : 0);
}

/* Brings c's share of the budget up to date; sheds when it grew past the
 * limit. */
static void account(synod_conn_t *c) {
  synod_conn_budget_t *b = c->budget;
  if (!b)
    return;
  size_t now = holding(c), before = c->held;
  b->used = b->used - before + now;
  c->held = now;
  if (b->used > b->peak)
    b->peak = b->used;
  if (now > before && b->used > b->limit && !b->shedding)
    shed_over_budget(b);
}

static void budget_unlink(synod_conn_t *c) {
  synod_conn_budget_t *b = c->budget;
  if (!b)
    return;
  b->used -= c->held;
  c->held = 0;
  if (c->bprev)
    c->bprev->bnext = c->bnext;
  else
    b->head = c->bnext;
  if (c->bnext)
    c->bnext->bprev = c->bprev;
  c->budget = NULL;
}

/* --- closing ------------------------------------------------------------ */

static void conn_free(synod_conn_t *c) {
  budget_unlink(c);
  synod_tls_free(c->tls);
  synod_handshake_free(c->hs);
  synod_frame_decoder_free(&c->dec);
  free(c);
}

static void maybe_finish(synod_conn_t *c) {
  if (c->handles > 0 || c->gai_pending)
    return;
  if (!c->silent)
    c->cb.on_close(c, c->status);
  conn_free(c);
}

static void tcp_close_cb(uv_handle_t *h) {
  synod_conn_t *c = container_of(h, synod_conn_t, tcp);
  c->handles--;
  maybe_finish(c);
}

static void yield_close_cb(uv_handle_t *h) {
  synod_conn_t *c = container_of(h, synod_conn_t, yield);
  c->handles--;
  maybe_finish(c);
}

static void timer_close_cb(uv_handle_t *h) {
  synod_conn_t *c = container_of(h, synod_conn_t, timer);
  c->handles--;
  maybe_finish(c);
}

/*
 * uv_close(3): "In-progress requests, like uv_connect_t or uv_write_t, are
 * cancelled and have their callbacks called asynchronously with
 * status=UV_ECANCELED" -- before the close callback, so the write and
 * connect callbacks always find c alive. A getaddrinfo request is not tied
 * to a handle and is waited for (gai_pending).
 */
static void hard_close(synod_conn_t *c) {
  if (c->hard_closing)
    return;
  c->hard_closing = 1;
  c->closing = 1;
  c->ready = 0;
  if (c->gai_pending)
    uv_cancel((uv_req_t *)&c->gai_req);
  uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
  uv_close((uv_handle_t *)&c->timer, timer_close_cb);
  uv_close((uv_handle_t *)&c->yield, yield_close_cb);
}

/* Closes at once with code, dropping what is queued: for a peer that has
 * stopped reading, to which nothing could be said anyway. */
static void abort_conn(synod_conn_t *c, int code, const char *reason) {
  if (!c->closing)
    c->status = code;
  set_reason(c, reason, NULL);
  hard_close(c);
}

static void timer_cb(uv_timer_t *t);

static void shutdown_cb(uv_shutdown_t *req, int status) {
  synod_conn_t *c = container_of(req, synod_conn_t, shutdown_req);
  if (c->hard_closing)
    return;
  c->shut_done = 1;
  /* Our FIN is out. Keep reading (and discarding) until the peer's FIN:
   * closing a socket with unread input makes the kernel send RST, which
   * may destroy the Error frame just sent before the peer reads it. */
  if (status < 0 || c->eof)
    hard_close(c);
}

static void flush_tls(synod_conn_t *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* uv_read_start() and uv_read_stop() at most once each way: libuv
 * refuses a second start (UV_EALREADY). */
static int start_reading(synod_conn_t *c) {
  if (c->reading)
    return 0;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc == 0)
    c->reading = 1;
  return rc;
}

static void stop_reading(synod_conn_t *c) {
  if (!c->reading)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

void synod_conn_close(synod_conn_t *c, int status) {
  if (c->closing)
    return;
  c->closing = 1;
  c->ready = 0;
  c->status = status;
  /* Nothing more is decoded: a partial frame's memory goes now. */
  synod_frame_decoder_free(&c->dec);
  account(c);
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, timer_cb, c->close_ms, 0);
  if ((c->paused || c->yielding) && c->connected && !c->eof) {
    /* Read (and drop) again, to see the peer's end of stream. */
    c->paused = 0;
    c->yielding = 0;
    uv_idle_stop(&c->yield);
    (void)start_reading(c);
  }
  if (!c->connected) {
    hard_close(c);
    return;
  }
  if (synod_tls_handshake_done(c->tls)) {
    (void)synod_tls_shutdown(c->tls);
    flush_tls(c);
  }
  if (c->hard_closing)
    return;
  /* uv_shutdown(3): "It waits for pending write requests to complete." */
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
    hard_close(c);
    return;
  }
  c->shut_sent = 1;
}

/* --- writing ------------------------------------------------------------ */

static void resume_reading(synod_conn_t *c);

static void write_cb(uv_write_t *req, int status) {
  wreq_t *w = container_of(req, wreq_t, req);
  synod_conn_t *c = w->c;
  c->queued -= w->len;
  free(w);
  account(c);
  if (c->hard_closing)
    return;
  if (status < 0) {
    set_reason(c, "write failed", uv_strerror(status));
    if (c->closing)
      hard_close(c);
    else
      synod_conn_close(c, SYNOD_EIO);
    return;
  }
  if (c->paused && c->queued <= c->low_water && !c->closing)
    resume_reading(c);
  if (c->want_writable && c->queued <= c->low_water && !c->closing) {
    c->want_writable = 0;
    if (c->cb.on_writable)
      c->cb.on_writable(c, 0);
  }
}

/* Moves all pending ciphertext into one write request. */
static void flush_tls(synod_conn_t *c) {
  size_t n = synod_tls_pending(c->tls);
  if (n == 0 || c->hard_closing || !c->connected)
    return;
  wreq_t *w = malloc(sizeof *w + n);
  if (!w) {
    set_reason(c, "out of memory", NULL);
    hard_close(c);
    return;
  }
  size_t got = 0;
  if (synod_tls_take(c->tls, w->data, n, &got) != 0 || got == 0) {
    free(w);
    set_reason(c, "TLS output", synod_tls_reason(c->tls));
    hard_close(c);
    return;
  }
  w->c = c;
  w->len = got + WREQ_OVERHEAD;
  uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned int)got);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
  if (rc != 0) {
    free(w);
    set_reason(c, "write failed", uv_strerror(rc));
    hard_close(c);
    return;
  }
  c->queued += w->len;
  if (c->queued > c->max_queue && !c->closing) {
    abort_conn(c, SYNOD_ELIMIT,
               "peer is not reading: unsent data over the limit");
    return;
  }
  account(c);
}

/* Encrypts one packed frame (plaintext bytes) and sends it. */
static int send_packed(synod_conn_t *c, const uint8_t *buf, size_t len) {
  int rc = synod_tls_write(c->tls, buf, len);
  if (rc != 0) {
    set_reason(c, "TLS write", synod_tls_reason(c->tls));
    synod_conn_close(c, SYNOD_ETLS);
    return rc;
  }
  flush_tls(c);
  return 0;
}

static int send_frame(synod_conn_t *c, const Synod__V1__Frame *f) {
  uint8_t *buf;
  size_t len;
  int rc = synod_wire_pack(f, c->max_frame, &buf, &len);
  if (rc != 0)
    return rc;
  rc = send_packed(c, buf, len);
  free(buf);
  return rc;
}

/* The handshake's queued frames (Hello, Auth, Ready, Error) go out. */
static void flush_hs(synod_conn_t *c) {
  uint8_t *buf;
  size_t len;
  while (synod_handshake_take(c->hs, &buf, &len) == 1) {
    if (!c->hard_closing && synod_tls_handshake_done(c->tls))
      (void)send_packed(c, buf, len);
    free(buf);
  }
}

/*
 * A failure the peer caused: tell it with a typed Error when TLS is up,
 * then close this connection with code.
 */
static void conn_fail(synod_conn_t *c, int code, const char *reason) {
  if (c->closing)
    return;
  set_reason(c, reason, NULL);
  if (synod_tls_handshake_done(c->tls)) {
    synod_wire_error_t e;
    synod_wire_error(&e, 0, code, reason);
    (void)send_frame(c, &e.frame);
  }
  synod_conn_close(c, code);
}

static void tls_failed(synod_conn_t *c) {
  set_reason(c, "TLS", synod_tls_reason(c->tls));
  flush_tls(c); /* the alert, if OpenSSL made one */
  synod_conn_close(c, SYNOD_ETLS);
}

/* --- reading ------------------------------------------------------------ */

/* After ready the timer runs to the nearer of the idle deadline and the
 * deadline of the frame being received. */
static void arm_timer(synod_conn_t *c) {
  uint64_t now = uv_now(c->loop), due = UINT64_MAX;
  if (c->idle_ms && !c->paused) /* not reading: we cannot know */
    due = c->last_rx + c->idle_ms;
  if (c->frame_open && c->frame_start + c->frame_ms < due)
    due = c->frame_start + c->frame_ms;
  if (c->paused && c->pause_start + c->frame_ms < due)
    due = c->pause_start + c->frame_ms;
  uv_timer_stop(&c->timer);
  if (due != UINT64_MAX)
    uv_timer_start(&c->timer, timer_cb, due > now ? due - now : 0, 0);
}

static void become_ready(synod_conn_t *c) {
  c->ready = 1;
  arm_timer(c);
  if (c->cb.on_ready)
    c->cb.on_ready(c, 0);
}

static void handshake_frame(synod_conn_t *c, const Synod__V1__Frame *f) {
  int ev = synod_handshake_recv(c->hs, f);
  flush_hs(c);
  if (ev < 0) {
    set_reason(c,
               synod_handshake_peer_failed(c->hs) ? "peer error" : "handshake",
               synod_handshake_reason(c->hs));
    synod_conn_close(c, ev);
    return;
  }
  if (ev == SYNOD_HS_EV_AUTH) {
    if (c->cb.on_auth)
      c->cb.on_auth(c, 0);
    else
      (void)synod_conn_refuse(c, SYNOD_EDENIED, "no one to authorise the peer");
  } else if (ev == SYNOD_HS_EV_READY) {
    become_ready(c);
  }
}

static void on_body(synod_conn_t *c, const uint8_t *body, size_t len) {
  Synod__V1__Frame *f = NULL;
  int rc = synod_wire_unpack(body, len, &f);
  if (rc != 0) {
    conn_fail(c, rc,
              rc == SYNOD_EPROTO ? "frame has no known body"
                                 : "malformed frame");
    return;
  }
  if (!c->ready) {
    handshake_frame(c, f);
    synod_wire_free(f);
    return;
  }
  if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR && f->request_id == 0) {
    int code = synod_err_from_wire(f->error->code);
    set_reason(c, "peer error", f->error->reason);
    synod_wire_free(f);
    synod_conn_close(c, code);
    return;
  }
  if (c->cb.on_frame)
    c->cb.on_frame(c, f); /* ownership passes */
  else
    synod_wire_free(f);
}

static void on_plaintext(synod_conn_t *c, const uint8_t *data, size_t len) {
  while (len > 0 && !c->closing) {
    size_t used = 0, body_len = 0;
    uint8_t *body = NULL;
    int r =
        synod_frame_decoder_feed(&c->dec, data, len, &used, &body, &body_len);
    if (r < 0) {
      conn_fail(c, r,
                r == SYNOD_ETOOBIG ? "frame over the size limit"
                                   : "empty frame");
      return;
    }
    data += used;
    len -= used;
    account(c); /* a body announced: its buffer exists now */
    if (r == 0)
      return;
    on_body(c, body, body_len);
    free(body);
    account(c);
  }
}

/* The peer ended its side (TLS close_notify or TCP EOF). */
static void peer_closed(synod_conn_t *c, const char *how) {
  if (synod_frame_decoder_pending(&c->dec)) {
    conn_fail(c, SYNOD_ETRUNC, "frame cut short by end of stream");
    return;
  }
  set_reason(c, how, NULL);
  synod_conn_close(c, SYNOD_ECLOSED);
}

static void start_session(synod_conn_t *c) {
  uint8_t x[SYNOD_TLS_EXPORTER_BYTES];
  int rc = synod_tls_exporter(c->tls, x);
  if (rc == 0)
    rc = synod_handshake_start(c->hs, x);
  synod_wipe(x, sizeof x);
  c->hs_started = 1;
  if (rc != 0) {
    set_reason(c, "cannot start the session handshake", synod_strerror(rc));
    flush_hs(c);
    synod_conn_close(c, rc);
    return;
  }
  flush_hs(c);
}

/*
 * Decrypts and handles what the TLS engine holds, until it is empty or the
 * write queue reaches high_water; then reading from the peer stops until
 * the queue drains (write_cb), and what is left waits in the engine.
 * fresh: new ciphertext came in for this call.
 */
static void pump(synod_conn_t *c, int fresh) {
  uint8_t plain[PLAIN_BYTES];
  int got_plain = 0;
  while (!c->closing && c->queued < c->high_water) {
    size_t got = 0;
    int rc = synod_tls_read(c->tls, plain, sizeof plain, &got);
    if (rc == SYNOD_ECLOSED) {
      peer_closed(c, "peer closed the session");
      break;
    }
    if (rc != 0) {
      tls_failed(c);
      break;
    }
    if (got == 0)
      break;
    got_plain = 1;
    on_plaintext(c, plain, got);
  }
  synod_wipe(plain, sizeof plain);
  if (c->closing)
    return;
  if (c->queued >= c->high_water && !c->paused) {
    stop_reading(c);
    c->paused = 1;
    c->pause_start = uv_now(c->loop);
    if (c->ready)
      arm_timer(c);
  }
  if (!c->ready)
    return; /* the handshake deadline covers everything before ready */
  /* A frame has begun when the decoder holds part of one, or when bytes
   * came in and gave no plaintext (a TLS record not yet whole). Its clock
   * stops while we do not read. */
  int begun = synod_frame_decoder_pending(&c->dec) || (fresh && !got_plain);
  if (begun && !c->paused) {
    if (!c->frame_open) {
      c->frame_open = 1;
      c->frame_start = uv_now(c->loop);
      arm_timer(c);
    }
  } else {
    c->frame_open = 0;
  }
}

static void resume_reading(synod_conn_t *c) {
  c->paused = 0;
  c->last_rx = uv_now(c->loop); /* the idle clock starts again */
  if (!c->yielding && start_reading(c) != 0) {
    set_reason(c, "read failed", NULL);
    synod_conn_close(c, SYNOD_EIO);
    return;
  }
  pump(c, 0);
  flush_tls(c);
}

static void on_ciphertext(synod_conn_t *c, const uint8_t *data, size_t len) {
  c->last_rx = uv_now(c->loop);
  if (synod_tls_feed(c->tls, data, len) != 0) {
    tls_failed(c);
    return;
  }
  if (!c->hs_started) {
    int r = synod_tls_handshake(c->tls);
    if (r < 0) {
      tls_failed(c);
      return;
    }
    if (r == 0) {
      flush_tls(c);
      return;
    }
    start_session(c);
  }
  pump(c, 1);
  flush_tls(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  /* uv_alloc_cb(3): a NULL base or zero length makes the read callback
   * report UV_ENOBUFS. */
  buf->base = malloc(READ_BYTES);
  buf->len = buf->base ? READ_BYTES : 0;
}

static void yield_cb(uv_idle_t *h) {
  synod_conn_t *c = container_of(h, synod_conn_t, yield);
  uv_idle_stop(h);
  c->yielding = 0;
  if (!c->closing && !c->paused && start_reading(c) != 0) {
    set_reason(c, "read failed", NULL);
    synod_conn_close(c, SYNOD_EIO);
  }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  synod_conn_t *c = container_of(s, synod_conn_t, tcp);
  if (nread > 0 && !c->closing) {
    on_ciphertext(c, (const uint8_t *)buf->base, (size_t)nread);
    /* A full read: more waits. Let the other connections have their turn
     * (an idle handle runs before the next poll for I/O). */
    if ((size_t)nread == READ_BYTES && !c->closing && c->reading) {
      stop_reading(c);
      c->yielding = 1;
      uv_idle_start(&c->yield, yield_cb);
    }
  } else if (nread < 0) {
    c->eof = 1;
    stop_reading(c);
    if (c->closing) {
      if (!c->shut_sent || c->shut_done)
        hard_close(c);
    } else if (nread == UV_EOF) {
      peer_closed(c, "peer closed the connection");
    } else {
      set_reason(c, "read failed", uv_strerror((int)nread));
      synod_conn_close(c, nread == UV_ECONNRESET ? SYNOD_ECLOSED : SYNOD_EIO);
    }
  }
  /* nread == 0 is EAGAIN; nread > 0 while closing is drained and dropped. */
  free(buf->base);
}

/* --- timers ------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t) {
  synod_conn_t *c = container_of(t, synod_conn_t, timer);
  if (c->closing) {
    set_reason(c, "close timed out", NULL);
    hard_close(c);
    return;
  }
  if (!c->ready) {
    conn_fail(c, SYNOD_ETIMEDOUT, "handshake timed out");
    return;
  }
  uint64_t now = uv_now(c->loop);
  if (c->paused && now - c->pause_start >= c->frame_ms)
    /* It takes nothing we send: nothing we could say would reach it. */
    abort_conn(c, SYNOD_ELIMIT, "peer is not reading");
  else if (c->frame_open && now - c->frame_start >= c->frame_ms)
    conn_fail(c, SYNOD_ETIMEDOUT, "frame not completed in time");
  else if (c->idle_ms && !c->paused && now - c->last_rx >= c->idle_ms)
    conn_fail(c, SYNOD_ETIMEDOUT, "idle timeout");
  else
    arm_timer(c);
}

/* --- creation ----------------------------------------------------------- */

static void on_connected(synod_conn_t *c) {
  c->connected = 1;
  (void)uv_tcp_nodelay(&c->tcp, 1); /* small frames, interactive protocol */
  int rc = start_reading(c);
  if (rc != 0) {
    set_reason(c, "read failed", uv_strerror(rc));
    synod_conn_close(c, SYNOD_EIO);
    return;
  }
  if (!synod_tls_is_server(c->tls)) {
    /* The client speaks first: ClientHello. */
    if (synod_tls_handshake(c->tls) < 0) {
      tls_failed(c);
      return;
    }
    flush_tls(c);
  }
}

static void connect_cb(uv_connect_t *req, int status) {
  synod_conn_t *c = container_of(req, synod_conn_t, connect_req);
  if (c->closing)
    return; /* including UV_ECANCELED from hard_close */
  if (status < 0) {
    set_reason(c, "connect failed", uv_strerror(status));
    synod_conn_close(c, SYNOD_EIO);
    return;
  }
  on_connected(c);
}

static int start_connect(synod_conn_t *c, const struct sockaddr *sa) {
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, connect_cb);
  if (rc != 0)
    set_reason(c, "connect failed", uv_strerror(rc));
  return rc;
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  synod_conn_t *c = container_of(req, synod_conn_t, gai_req);
  c->gai_pending = 0;
  if (c->closing) {
    uv_freeaddrinfo(res);
    maybe_finish(c);
    return;
  }
  if (status < 0 || !res) {
    set_reason(c, "cannot resolve the host", uv_strerror(status));
    uv_freeaddrinfo(res);
    synod_conn_close(c, SYNOD_EIO);
    return;
  }
  int rc = start_connect(c, res->ai_addr);
  uv_freeaddrinfo(res);
  if (rc != 0)
    synod_conn_close(c, SYNOD_EIO);
}

static int conn_new(synod_conn_t **out, uv_loop_t *loop,
                    const synod_conn_options_t *opt, int server) {
  *out = NULL;
  if (!opt || !opt->tls || !opt->cb.on_close ||
      opt->max_frame > SYNOD_FRAME_HARD_MAX)
    return SYNOD_EINVAL;
  synod_conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return SYNOD_ENOMEM;
  c->loop = loop;
  c->cb = opt->cb;
  c->data = opt->data;
  c->max_frame = opt->max_frame ? opt->max_frame : SYNOD_FRAME_DEFAULT_MAX;
  c->high_water =
      opt->high_water ? opt->high_water : SYNOD_CONN_DEFAULT_HIGH_WATER;
  c->low_water = opt->low_water ? opt->low_water : c->high_water / 2;
  if (c->low_water > c->high_water)
    c->low_water = c->high_water;
  c->handshake_ms = opt->handshake_timeout_ms ? opt->handshake_timeout_ms
                                              : SYNOD_CONN_DEFAULT_HANDSHAKE_MS;
  c->idle_ms = opt->idle_timeout_ms;
  c->close_ms = opt->close_timeout_ms ? opt->close_timeout_ms
                                      : SYNOD_CONN_DEFAULT_CLOSE_MS;
  c->frame_ms = opt->frame_timeout_ms ? opt->frame_timeout_ms
                                      : SYNOD_CONN_DEFAULT_FRAME_MS;
  c->max_queue = opt->max_queue ? opt->max_queue
                                : c->high_water + 2 * (size_t)c->max_frame;
  if (c->max_queue < c->high_water)
    c->max_queue = c->high_water;

  int rc = synod_tls_new(&c->tls, opt->tls);
  if (rc == 0 && synod_tls_is_server(c->tls) != server)
    rc = SYNOD_EINVAL; /* a client context given to serve, or the reverse */
  if (rc == 0) {
    synod_handshake_config_t hc = opt->handshake;
    hc.tls_server = server;
    hc.max_frame = c->max_frame;
    rc = synod_handshake_new(&c->hs, &hc);
  }
  if (rc == 0)
    rc = synod_frame_decoder_init(&c->dec, c->max_frame);
  if (rc != 0) {
    conn_free(c);
    return rc;
  }
  /* From here on memory goes through the close callbacks. */
  uv_timer_init(loop, &c->timer); /* cannot fail on unix */
  c->handles++;
  if (uv_tcp_init(loop, &c->tcp) != 0) {
    c->silent = 1;
    uv_close((uv_handle_t *)&c->timer, timer_close_cb);
    return SYNOD_EIO;
  }
  c->handles++;
  uv_idle_init(loop, &c->yield); /* cannot fail */
  c->handles++;
  uv_timer_start(&c->timer, timer_cb, c->handshake_ms, 0);
  if (opt->budget) {
    c->budget = opt->budget;
    c->bnext = opt->budget->head;
    if (c->bnext)
      c->bnext->bprev = c;
    opt->budget->head = c;
  }
  *out = c;
  return 0;
}

/* A creation that fails after the handles exist: close without callbacks. */
static int fail_silently(synod_conn_t **out, synod_conn_t *c, int rc) {
  c->silent = 1;
  c->closing = 1;
  hard_close(c);
  *out = NULL;
  return rc;
}

int synod_conn_serve(synod_conn_t **out, uv_stream_t *listener,
                     const synod_conn_options_t *opt) {
  synod_conn_t *c;
  int rc = conn_new(&c, listener->loop, opt, 1);
  if (rc != 0) {
    *out = NULL;
    return rc;
  }
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0)
    return fail_silently(out, c, SYNOD_EIO);
  c->connected = 1;
  (void)uv_tcp_nodelay(&c->tcp, 1);
  if (start_reading(c) != 0)
    return fail_silently(out, c, SYNOD_EIO);
  *out = c;
  return 0;
}

int synod_conn_connect(synod_conn_t **out, uv_loop_t *loop, const char *host,
                       uint16_t port, const synod_conn_options_t *opt) {
  *out = NULL;
  if (!host)
    return SYNOD_EINVAL;
  synod_conn_t *c;
  int rc = conn_new(&c, loop, opt, 0);
  if (rc != 0)
    return rc;
  c->port = port;
  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
    if (start_connect(c, (const struct sockaddr *)&ss) != 0)
      return fail_silently(out, c, SYNOD_EIO);
  } else {
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned int)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (uv_getaddrinfo(loop, &c->gai_req, gai_cb, host, service, &hints) != 0)
      return fail_silently(out, c, SYNOD_EIO);
    c->gai_pending = 1;
  }
  *out = c;
  return 0;
}

/* --- the owner's calls ---------------------------------------------------- */

int synod_conn_accept(synod_conn_t *c) {
  if (c->closing)
    return SYNOD_ECLOSED;
  int rc = synod_handshake_accept(c->hs);
  if (rc != 0)
    return rc;
  flush_hs(c);
  if (c->closing)
    return SYNOD_ECLOSED;
  become_ready(c);
  return 0;
}

int synod_conn_refuse(synod_conn_t *c, int code, const char *reason) {
  if (c->closing)
    return SYNOD_ECLOSED;
  int rc = synod_handshake_refuse(c->hs, code, reason);
  if (rc != 0)
    return rc;
  flush_hs(c);
  set_reason(c, "refused", reason);
  synod_conn_close(c, synod_handshake_error(c->hs));
  return 0;
}

int synod_conn_send(synod_conn_t *c, const Synod__V1__Frame *f) {
  if (c->closing)
    return SYNOD_ECLOSED;
  if (!c->ready)
    return SYNOD_EINVAL;
  if (c->queued >= c->high_water) {
    c->want_writable = 1;
    return SYNOD_EAGAIN;
  }
  return send_frame(c, f);
}

int synod_conn_reply(synod_conn_t *c, const Synod__V1__Frame *f) {
  if (c->closing)
    return SYNOD_ECLOSED;
  if (!c->ready)
    return SYNOD_EINVAL;
  return send_frame(c, f);
}

int synod_conn_send_error(synod_conn_t *c, uint64_t request_id, int code,
                          const char *reason) {
  if (c->closing)
    return SYNOD_ECLOSED;
  if (!c->ready)
    return SYNOD_EINVAL;
  synod_wire_error_t e;
  synod_wire_error(&e, request_id, code, reason);
  return send_frame(c, &e.frame);
}

const synod_handshake_peer_t *synod_conn_peer(const synod_conn_t *c) {
  return synod_handshake_peer(c->hs);
}

const char *synod_conn_reason(const synod_conn_t *c) {
  return c->reason;
}

int synod_conn_is_ready(const synod_conn_t *c) {
  return c->ready && !c->closing;
}

size_t synod_conn_queued(const synod_conn_t *c) {
  return c->queued;
}

void *synod_conn_data(const synod_conn_t *c) {
  return c->data;
}

void synod_conn_set_data(synod_conn_t *c, void *data) {
  c->data = data;
}

uv_loop_t *synod_conn_loop(const synod_conn_t *c) {
  return c->loop;
}

/* --- the budget ------------------------------------------------------------ */

/* Sheds connections, biggest first, until those not already closing hold
 * no more than the limit. Closing ones release their bytes within
 * close_ms (at once when aborted). */
static void shed_over_budget(synod_conn_budget_t *b) {
  b->shedding = 1;
  for (;;) {
    size_t live = 0;
    synod_conn_t *big = NULL;
    for (synod_conn_t *c = b->head; c; c = c->bnext) {
      if (c->closing)
        continue;
      live += c->held;
      if (!big || c->held > big->held)
        big = c;
    }
    if (!big || live <= b->limit)
      break;
    b->shed++;
    if (big->queued > SHED_DRAIN_BYTES)
      abort_conn(big, SYNOD_ELIMIT, "relay memory budget exhausted");
    else
      conn_fail(big, SYNOD_ELIMIT, "relay memory budget exhausted");
    if (!big->closing)
      abort_conn(big, SYNOD_ELIMIT, "relay memory budget exhausted");
  }
  b->shedding = 0;
}

int synod_conn_budget_new(synod_conn_budget_t **out, size_t limit) {
  *out = NULL;
  if (limit == 0)
    return SYNOD_EINVAL;
  synod_conn_budget_t *b = calloc(1, sizeof *b);
  if (!b)
    return SYNOD_ENOMEM;
  b->limit = limit;
  *out = b;
  return 0;
}

void synod_conn_budget_free(synod_conn_budget_t *b) {
  free(b);
}

size_t synod_conn_budget_used(const synod_conn_budget_t *b) {
  return b->used;
}

size_t synod_conn_budget_peak(const synod_conn_budget_t *b) {
  return b->peak;
}

size_t synod_conn_budget_limit(const synod_conn_budget_t *b) {
  return b->limit;
}

int synod_conn_budget_full(const synod_conn_budget_t *b) {
  return b->used >= b->limit;
}

uint64_t synod_conn_budget_shed(const synod_conn_budget_t *b) {
  return b->shed;
}
