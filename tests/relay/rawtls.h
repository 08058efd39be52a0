/*
 * rawtls: a relay connection driven by hand, for the suites that must send
 * what a well-behaved client never would (relay.refusals, relay.abuse): a
 * blocking socket, the TLS engine pumped explicitly and, for a session,
 * the handshake machine. No CUnit assertions here: everything returns a
 * code, so it may run on an attack thread.
 */
#ifndef SYNOD_TESTS_RELAY_RAWTLS_H
#define SYNOD_TESTS_RELAY_RAWTLS_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"
#include "synod/frame.h"
#include "synod/handshake.h"
#include "synod/tls.h"

/* How long a raw send waits for room in the socket, in milliseconds. */
#define RAW_SEND_MS 10000

typedef struct raw {
  int fd;
  synod_tls_ctx_t *ctx;
  synod_tls_t *tls;
  synod_handshake_t *hs;
  synod_frame_decoder_t dec;
  uint8_t pt[16384]; /* plaintext read from TLS, not yet decoded */
  size_t ptlen, ptoff;
  int eof;
} raw_t;

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t raw_now_ms(void);

/* A TCP connection to 127.0.0.1:port; rcvbuf > 0 shrinks our receive
 * buffer first (so a peer that does not read stops the relay's sending
 * soon). 0, SYNOD_EINVAL, SYNOD_EIO. Release with raw_free() either way. */
int raw_tcp(raw_t *r, uint16_t port, int rcvbuf);

/* Closes the socket and frees the engine, the handshake and the decoder. */
void raw_free(raw_t *r);

/* Writes all of p[0..n) on the socket, as is, waiting for room up to
 * until (raw_now_ms() time): 0, SYNOD_ETIMEDOUT, SYNOD_ECLOSED. */
int raw_send_all(raw_t *r, const uint8_t *p, size_t n, int64_t until);

/* Waits until the deadline for bytes from the socket and feeds them to the
 * engine (without TLS, drops them): 0, SYNOD_ECLOSED at end of stream or
 * reset, SYNOD_ETIMEDOUT, SYNOD_ETLS. */
int raw_recv(raw_t *r, int64_t until);

/* raw_tcp and a TLS 1.3 handshake with ALPN synod/1, nothing more. */
int raw_tls(raw_t *r, uint16_t port, int rcvbuf);

/* Plaintext into the TLS connection, as is, sent at once. */
int raw_write(raw_t *r, const uint8_t *data, size_t len);

/* f packed (up to the hard frame limit) and written. */
int raw_send_frame(raw_t *r, const Synod__V1__Frame *f);

/* The next frame from the relay within ms: 0 with *out (free it with
 * synod_wire_free), SYNOD_ECLOSED once the relay closed, SYNOD_ETIMEDOUT,
 * or the decoder's or parser's error. */
int raw_frame(raw_t *r, Synod__V1__Frame **out, int ms);

/* Takes the frames the handshake machine queued and sends them. */
int raw_hs_flush(raw_t *r);

#endif
