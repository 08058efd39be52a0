/*
 * A synod connection on a libuv loop: TCP, the TLS engine (synod/tls.h),
 * the frame decoder (synod/frame.h) and the session handshake
 * (synod/handshake.h) joined together. This is the only layer of the stack
 * that touches sockets; everything below it is sans-I/O.
 *
 * Life of a connection:
 *   created by synod_conn_serve() (TLS server, from a listening stream) or
 *   synod_conn_connect() (TLS client) -> TLS handshake -> session handshake
 *   -> on_auth (server only; decide with synod_conn_accept/refuse) ->
 *   on_ready -> on_frame ... -> on_close, exactly once.
 *
 * Errors the peer causes (a frame over the maximum, garbage, malformed
 * protobuf, a frame out of order, a frame cut short by EOF, a handshake
 * or a frame that does not finish in time) are answered with a typed Error frame
 * {code, short reason} whenever TLS is up, then that connection alone is
 * closed. The status given to on_close is the SYNOD_E* code of the cause.
 *
 * Memory: the connection's memory is freed by the close-callback chain of
 * its libuv handles, right after on_close returns. A connection is never
 * freed from inside one of its callbacks' callers, so a callback may call
 * synod_conn_close() and keep using the pointer until on_close.
 *
 * Threads: one loop, one thread, like libuv itself.
 */
#ifndef SYNOD_CONN_H
#define SYNOD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "synod.pb-c.h"
#include "synod/err.h"
#include "synod/handshake.h"
#include "synod/tls.h"

#define SYNOD_CONN_DEFAULT_HIGH_WATER   (1024u * 1024u)
#define SYNOD_CONN_DEFAULT_HANDSHAKE_MS 10000u
#define SYNOD_CONN_DEFAULT_CLOSE_MS     2000u
#define SYNOD_CONN_DEFAULT_FRAME_MS     30000u

typedef struct synod_conn synod_conn_t;

/*
 * A memory budget shared by connections: the bytes they buffer (ciphertext
 * not yet handed to the kernel, plus the body of a frame being received)
 * counted together against one limit. When a connection's growth takes the
 * total over the limit, the connection buffering the most is shed with
 * SYNOD_ELIMIT: a typed Error and a close when its write queue is small,
 * at once (its queued bytes dropped) when it is not reading anyway. A
 * server also asks synod_conn_budget_full() before taking new connections.
 * Per-connection state that is not buffered data (the TLS engine, about
 * ten KiB) is not counted.
 */
typedef struct synod_conn_budget synod_conn_budget_t;

/*
 * Callbacks; every one is optional except on_close. They run on the loop
 * thread, never from inside the function that created the connection.
 *
 * on_auth(c, 0): TLS server only. The peer proved possession of the key
 *   in synod_conn_peer(c)->public_key (and announced role, name and maybe
 *   an enrollment code). Decide now or later -- an asynchronous database
 *   lookup is fine -- with synod_conn_accept() or synod_conn_refuse(); the
 *   handshake timeout keeps running meanwhile.
 * on_ready(c, 0): the session is established. Client: on Ready. Server:
 *   from inside synod_conn_accept(). Frames may be sent from now on.
 * on_frame(c, f): a frame received after ready. OWNERSHIP PASSES: the
 *   callee owns f and releases it with synod_wire_free() whenever it likes
 *   (it may keep it across asynchronous work). Error frames with
 *   request_id 0 are connection errors and never reach on_frame: they
 *   close the connection with the peer's code.
 * on_writable(c, 0): synod_conn_send() returned SYNOD_EAGAIN earlier and
 *   the queue has drained to the low-water mark.
 * on_close(c, status): exactly once, for every connection whose creation
 *   returned 0. status is 0 after synod_conn_close(c, 0), SYNOD_ECLOSED
 *   when the peer closed cleanly, or the cause (SYNOD_ETIMEDOUT,
 *   SYNOD_ETLS, SYNOD_ETOOBIG, SYNOD_EPROTO, SYNOD_ELIMIT for a write
 *   queue over max_queue or a connection shed for the budget, the peer's
 *   Error code, ...);
 *   synod_conn_reason(c) says more. c is freed when on_close returns.
 */
typedef struct synod_conn_callbacks {
  void (*on_auth)(synod_conn_t *c, int status);
  void (*on_ready)(synod_conn_t *c, int status);
  void (*on_frame)(synod_conn_t *c, Synod__V1__Frame *f);
  void (*on_writable)(synod_conn_t *c, int status);
  void (*on_close)(synod_conn_t *c, int status);
} synod_conn_callbacks_t;

typedef struct synod_conn_options {
  /* Server context for synod_conn_serve(), client context for
   * synod_conn_connect(). Borrowed during creation only: the engine keeps
   * its own reference. */
  synod_tls_ctx_t *tls;
  /* The handshake's configuration; tls_server and max_frame are set by
   * the connection. Its strings and keys are copied at creation. */
  synod_handshake_config_t handshake;
  synod_conn_callbacks_t cb;
  void *data; /* the owner's, see synod_conn_data() */

  /* Largest frame body in either direction; 0: SYNOD_FRAME_DEFAULT_MAX. */
  uint32_t max_frame;
  /* Write queue cap in bytes not yet handed to the kernel (ciphertext
   * plus the cost of each write request, see synod_conn_queued()):
   * at or over high_water, synod_conn_send() refuses with SYNOD_EAGAIN;
   * on_writable fires once the queue is at or under low_water.
   * 0: SYNOD_CONN_DEFAULT_HIGH_WATER and high_water / 2. */
  size_t high_water;
  size_t low_water;
  /* From creation until the session is ready (TCP connect, TLS, hello,
   * auth and the owner's decision); 0: SYNOD_CONN_DEFAULT_HANDSHAKE_MS. */
  uint64_t handshake_timeout_ms;
  /* After ready, close when nothing was received for this long; 0: no
   * idle timeout. */
  uint64_t idle_timeout_ms;
  /* How long synod_conn_close() lets pending writes drain before it
   * closes hard; 0: SYNOD_CONN_DEFAULT_CLOSE_MS. */
  uint64_t close_timeout_ms;
  /* After ready, a frame whose first bytes arrived must be complete within
   * this long (a peer trickling a byte at a time keeps the idle timeout
   * quiet but not this one): SYNOD_ETIMEDOUT. Counted while the connection
   * reads; bytes arriving that yield no plaintext (a TLS record not yet
   * whole) count as a frame begun. The same time bounds a stop in
   * reading (see max_queue): a peer that leaves the write queue at
   * high_water this long takes nothing we send, and is cut at once with
   * SYNOD_ELIMIT. 0: SYNOD_CONN_DEFAULT_FRAME_MS. */
  uint64_t frame_timeout_ms;
  /* Back-pressure on the peer: while the write queue is at or over
   * high_water the connection stops reading from the peer (so a peer that
   * does not read cannot make us queue replies without end), and reads
   * again at low_water. A queue that still grows past max_queue (replies
   * to what was already read, pushes by the owner that ignored
   * SYNOD_EAGAIN, errors) closes the connection at once with SYNOD_ELIMIT.
   * 0: high_water + 2 * max_frame. */
  size_t max_queue;
  /* Optional budget shared with other connections (borrowed: it must
   * outlive every connection created with it). */
  synod_conn_budget_t *budget;
} synod_conn_options_t;

/* A budget of limit bytes (> 0): SYNOD_EINVAL, SYNOD_ENOMEM. */
int synod_conn_budget_new(synod_conn_budget_t **out, size_t limit);

/* Frees b; every connection created with it must have closed (on_close
 * returned). NULL is a no-op. */
void synod_conn_budget_free(synod_conn_budget_t *b);

/* Bytes buffered now, the most ever buffered, the limit. */
size_t synod_conn_budget_used(const synod_conn_budget_t *b);
size_t synod_conn_budget_peak(const synod_conn_budget_t *b);
size_t synod_conn_budget_limit(const synod_conn_budget_t *b);

/* 1 when used >= limit: take no new connections. */
int synod_conn_budget_full(const synod_conn_budget_t *b);

/* Connections shed for the budget so far. */
uint64_t synod_conn_budget_shed(const synod_conn_budget_t *b);

/*
 * Accepts one pending connection from listener (call it from the
 * listener's connection callback) as the TLS server. On success *out is
 * the connection and on_close will fire exactly once; on failure
 * (SYNOD_EINVAL, SYNOD_ENOMEM, SYNOD_ETLS, SYNOD_EIO) no callback fires
 * and *out is NULL (any accepted socket is closed).
 */
int synod_conn_serve(synod_conn_t **out, uv_stream_t *listener,
                     const synod_conn_options_t *opt);

/*
 * Connects to host:port as the TLS client. host is an IPv4 or IPv6
 * literal, or a name resolved with uv_getaddrinfo (first address). The
 * handshake config must carry the relay's expected key. Success and
 * failure as for synod_conn_serve(); a connect that fails later is
 * reported by on_close (SYNOD_EIO).
 */
int synod_conn_connect(synod_conn_t **out, uv_loop_t *loop, const char *host,
                       uint16_t port, const synod_conn_options_t *opt);

/* TLS server, after on_auth: accept the peer (sends Ready; on_ready fires
 * before this returns). SYNOD_EINVAL when no decision is pending,
 * SYNOD_ECLOSED once closing. */
int synod_conn_accept(synod_conn_t *c);

/* TLS server, after on_auth: refuse with code (negative SYNOD_E*) and a
 * short reason (copied); the peer gets the Error, then the connection
 * closes with code. Errors as for synod_conn_accept(). */
int synod_conn_refuse(synod_conn_t *c, int code, const char *reason);

/*
 * Sends f (borrowed for the call; packed and encrypted before returning).
 * SYNOD_EINVAL before ready, SYNOD_ECLOSED once closing, SYNOD_EAGAIN when
 * the write queue is at its cap (wait for on_writable), SYNOD_ETOOBIG when
 * f is larger than max_frame (the connection stays up), SYNOD_ENOMEM.
 */
int synod_conn_send(synod_conn_t *c, const Synod__V1__Frame *f);

/*
 * Sends f as the answer to a request the peer made: as synod_conn_send(),
 * but never SYNOD_EAGAIN. Answers need no cap of their own: at high_water
 * the connection stops reading requests, so what is still to be answered
 * is bounded by what was already read; max_queue still applies.
 */
int synod_conn_reply(synod_conn_t *c, const Synod__V1__Frame *f);

/* Sends Error{code, reason} answering request_id (0: a connection error);
 * same errors as synod_conn_send() but never SYNOD_EAGAIN: an error may
 * exceed the cap. A request_id of 0 should be followed by
 * synod_conn_close(). */
int synod_conn_send_error(synod_conn_t *c, uint64_t request_id, int code,
                          const char *reason);

/*
 * Closes c with status (given to on_close): queues TLS close_notify, lets
 * pending writes drain, sends FIN and reads until the peer closes, all
 * bounded by close_timeout_ms. Idempotent: only the first status counts.
 * on_close fires later, from the loop, never from inside this call.
 */
void synod_conn_close(synod_conn_t *c, int status);

/* The peer as the handshake knows it (key valid from on_auth / on_ready
 * on); owned by c, valid until on_close returns. */
const synod_handshake_peer_t *synod_conn_peer(const synod_conn_t *c);

/* A short reason for the close status ("" when none); owned by c. */
const char *synod_conn_reason(const synod_conn_t *c);

/* 1 once on_ready fired and until closing starts. */
int synod_conn_is_ready(const synod_conn_t *c);

/* Bytes the write queue holds: ciphertext not yet handed to the kernel
 * and a fixed overhead per write request (one per frame sent). */
size_t synod_conn_queued(const synod_conn_t *c);

void *synod_conn_data(const synod_conn_t *c);
void synod_conn_set_data(synod_conn_t *c, void *data);
uv_loop_t *synod_conn_loop(const synod_conn_t *c);

#endif
