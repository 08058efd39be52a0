/*
 * TLS 1.3 engine over memory BIOs (sans-I/O).
 *
 * The engine never touches a socket: ciphertext from the network is fed in
 * with synod_tls_feed(), ciphertext to send is taken out with
 * synod_tls_take(), plaintext goes through synod_tls_write() and
 * synod_tls_read(). The caller drives it from its event loop (lib/conn.c)
 * or pumps two engines into each other (tests/unit/test_tls.c), the way
 * nghttp2 separates its session from I/O.
 *
 * Policy, fixed and not configurable:
 *  - TLS 1.3 only (min = max = TLS1_3_VERSION);
 *  - ALPN "synod/1" is required on both sides: a server refuses a
 *    ClientHello without it (no_application_protocol alert), a client fails
 *    when the server selected nothing or something else;
 *  - no session tickets, no session cache, no resumption, no
 *    renegotiation, no compression.
 *
 * Why the client does not verify the server certificate (SSL_VERIFY_NONE):
 * synod authenticates peers by channel binding, not by PKI. After the
 * handshake each side signs the TLS exporter value (RFC 8446 section 7.5,
 * label SYNOD_TLS_EXPORTER_LABEL, no context, 32 bytes) with its Ed25519
 * key (lib/handshake.c). The exporter is derived from the session's own
 * key schedule, so it is unique to one TLS session and unknown to anyone
 * outside it. A man in the middle necessarily runs two TLS sessions, one
 * with each side, whose exporters differ; a signature it relays from one
 * session does not verify in the other, and it cannot produce one itself
 * without the victim's Ed25519 key. The certificate therefore carries no
 * trust: a relay may present an ordinary CA certificate for other
 * software's sake, or the ephemeral self-signed one made here.
 *
 * Errors: every failure of OpenSSL is reported as SYNOD_ETLS; the OpenSSL
 * error queue is drained at that moment and its first entry kept as a short
 * reason string (synod_tls_reason()).
 *
 * Threads: a context may be shared by the engines of one thread; an engine
 * is used by one thread at a time.
 */
#ifndef SYNOD_TLS_H
#define SYNOD_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "synod/err.h"

#define SYNOD_TLS_ALPN           "synod/1"
#define SYNOD_TLS_EXPORTER_LABEL "EXPORTER-synod-v1-channel-binding"
#define SYNOD_TLS_EXPORTER_BYTES 32
/* Size of a reason buffer, terminating NUL included. */
#define SYNOD_TLS_REASON_BYTES 128

typedef struct synod_tls_ctx synod_tls_ctx_t;
typedef struct synod_tls synod_tls_t;

/*
 * A server context. With cert_file and key_file (PEM; the certificate file
 * may hold a chain) it presents that certificate; with both NULL it
 * generates an ephemeral self-signed Ed25519 certificate now, valid for a
 * year from an hour ago. The key file is refused with SYNOD_EPERM when it
 * is group- or world-accessible (the house rule for key files), SYNOD_EIO
 * when it cannot be opened. Only one of the two paths given: SYNOD_EINVAL.
 * Other failures: SYNOD_ETLS, SYNOD_ENOMEM.
 * reason, when not NULL, points to SYNOD_TLS_REASON_BYTES bytes that
 * receive a short message on failure (an empty string on success).
 * *out is owned by the caller and released with synod_tls_ctx_free().
 */
int synod_tls_ctx_new_server(synod_tls_ctx_t **out, const char *cert_file,
                             const char *key_file, char *reason);

/* A client context (see the header comment for why it verifies nothing).
 * Same errors and reason convention as synod_tls_ctx_new_server(). */
int synod_tls_ctx_new_client(synod_tls_ctx_t **out, char *reason);

/* Releases ctx; engines made from it keep their own reference and may
 * outlive it. NULL is a no-op. */
void synod_tls_ctx_free(synod_tls_ctx_t *ctx);

/* A new engine of ctx's role (server or client). The client side starts
 * the handshake on the first synod_tls_handshake() call. *out is owned by
 * the caller; release it with synod_tls_free(). SYNOD_ENOMEM, SYNOD_ETLS. */
int synod_tls_new(synod_tls_t **out, synod_tls_ctx_t *ctx);

/* Releases t and wipes its key material. NULL is a no-op. */
void synod_tls_free(synod_tls_t *t);

/* 1 for a server engine, 0 for a client engine. */
int synod_tls_is_server(const synod_tls_t *t);

/*
 * Ciphertext in: copies data[0..len) into the engine's input buffer; data
 * is only read during the call. Nothing is decrypted until
 * synod_tls_handshake() or synod_tls_read() runs. SYNOD_ETLS on failure.
 */
int synod_tls_feed(synod_tls_t *t, const uint8_t *data, size_t len);

/* Number of ciphertext bytes waiting to be taken and sent. */
size_t synod_tls_pending(const synod_tls_t *t);

/*
 * Ciphertext out: moves up to cap pending bytes into out (caller-owned)
 * and sets *outlen (0 when nothing is pending). Returns 0, or SYNOD_ETLS.
 * Call after every feed/handshake/write/read/shutdown, also after a
 * failure: a failed handshake leaves its alert here for the peer.
 */
int synod_tls_take(synod_tls_t *t, uint8_t *out, size_t cap, size_t *outlen);

/*
 * Advances the handshake with the input fed so far. Returns 1 once the
 * handshake is complete (and stays 1), 0 when more input is needed (send
 * what synod_tls_pending() reports first), SYNOD_ETLS when it failed for
 * good (the failure is sticky; see synod_tls_reason()).
 * On completion the negotiated ALPN has been checked to be "synod/1".
 */
int synod_tls_handshake(synod_tls_t *t);

/* 1 once the handshake completed successfully. */
int synod_tls_handshake_done(const synod_tls_t *t);

/*
 * Plaintext out: encrypts all of data[0..len) into pending ciphertext
 * (data is only read during the call). SYNOD_EAGAIN before the handshake
 * is done, SYNOD_ECLOSED after synod_tls_shutdown(), SYNOD_ETLS on
 * failure (sticky).
 */
int synod_tls_write(synod_tls_t *t, const uint8_t *data, size_t len);

/*
 * Plaintext in: decrypts into out[0..cap) (caller-owned) and sets *outlen.
 * Returns 0 with *outlen == 0 when no whole record is buffered yet;
 * SYNOD_ECLOSED once the peer sent close_notify; SYNOD_ETLS on failure.
 * Call until *outlen is 0 to drain the input.
 */
SYNOD_WUR int synod_tls_read(synod_tls_t *t, uint8_t *out, size_t cap,
                             size_t *outlen);

/* Queues a close_notify alert (take it out and send it). Idempotent. */
int synod_tls_shutdown(synod_tls_t *t);

/*
 * The channel-binding value: SSL_export_keying_material() with label
 * SYNOD_TLS_EXPORTER_LABEL, no context, 32 bytes, into out
 * (caller-owned). SYNOD_EINVAL before the handshake is done, SYNOD_ETLS.
 */
SYNOD_WUR int synod_tls_exporter(synod_tls_t *t,
                                 uint8_t out[static SYNOD_TLS_EXPORTER_BYTES]);

/* A short reason for the last SYNOD_ETLS of t ("" if none). The string
 * belongs to t and is valid until its next call or synod_tls_free(). */
const char *synod_tls_reason(const synod_tls_t *t);

#endif
