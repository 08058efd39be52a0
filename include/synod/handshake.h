/*
 * Session handshake: a sans-I/O state machine over decoded Frames
 * (proto/synod.proto, "Session"). It never touches a socket or TLS: the
 * connection layer (lib/conn.c) hands it the TLS exporter once TLS is up,
 * every Frame received before the session is ready, and sends the packed
 * frames it takes out. Tests drive two machines back to back.
 *
 * The exchange, in each direction:
 *   1. Hello{max_version, min_version, nonce (32 random bytes), role, name,
 *      software}, sent by both sides as soon as TLS is up. The version is
 *      the highest both speak; none in common: Error EVERSION.
 *   2. Auth{public_key, signature, enrollment_code}, sent once the peer's
 *      Hello was accepted. signature is the signed statement of kind
 *      SYNOD_SIG_CHANNEL_BINDING over exporter(32) || side, side being 0x01
 *      when the signer is the TLS client and 0x02 when it is the TLS server,
 *      so a signature can be replayed neither into another TLS session nor
 *      back at its signer. A bad signature: Error EAUTH.
 *   3. TLS server: reports the verified peer (SYNOD_HS_EV_AUTH) and waits
 *      for its owner's decision, which may take as long as a database
 *      lookup: synod_handshake_accept() sends Ready{version, relay_name},
 *      synod_handshake_refuse() sends Error{code, reason}.
 *      TLS client: the server's key must equal the key it expected (Error
 *      EBADKEY otherwise); the session is ready on Ready.
 * Before ready, a frame other than hello, auth, ready or error, or one of
 * those out of order, is Error EPROTO. An Error received ends the
 * handshake with the peer's code and is never answered.
 *
 * A failure is final. When the machine detected it, an Error frame for the
 * peer is queued: take it, send it, then close. Timeouts belong to the
 * caller.
 */
#ifndef SYNOD_HANDSHAKE_H
#define SYNOD_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/tls.h"

#define SYNOD_PROTOCOL_VERSION  1
#define SYNOD_HELLO_NONCE_BYTES 32
/* The byte after the exporter in the signed channel binding. */
#define SYNOD_HS_SIDE_TLS_CLIENT 0x01
#define SYNOD_HS_SIDE_TLS_SERVER 0x02

/* What synod_handshake_recv() reports. */
enum synod_hs_event {
  SYNOD_HS_EV_NONE = 0,  /* nothing for the owner; keep going */
  SYNOD_HS_EV_AUTH = 1,  /* TLS server: peer verified, call accept/refuse */
  SYNOD_HS_EV_READY = 2, /* TLS client: session established */
};

typedef enum synod_hs_state {
  SYNOD_HS_NEW = 0,    /* waiting for synod_handshake_start() */
  SYNOD_HS_HELLO,      /* Hello sent, waiting for the peer's Hello */
  SYNOD_HS_AUTH,       /* Auth sent, waiting for the peer's Auth */
  SYNOD_HS_DECIDING,   /* TLS server: waiting for accept/refuse */
  SYNOD_HS_WAIT_READY, /* TLS client: server verified, waiting for Ready */
  SYNOD_HS_READY,      /* established */
  SYNOD_HS_FAILED,     /* final; see synod_handshake_error() */
} synod_hs_state_t;

typedef struct synod_handshake_config {
  int tls_server; /* 1 on the TLS server (accepting) side, else 0 */
  /* What this side announces in Hello: SYNOD__V1__ROLE__ROLE_CLIENT or
   * SYNOD__V1__ROLE__ROLE_RELAY. A TLS server is always a relay. */
  Synod__V1__Role role;
  const char *name;     /* Hello.name; the server also sends it as
                         * Ready.relay_name. Copied. */
  const char *software; /* Hello.software; NULL for none. Copied. */
  /* This side's Ed25519 seed. Copied, and wiped once the Auth signature
   * is made. */
  const uint8_t *secret_key;
  /* TLS client: the server key it must see (32 bytes, copied). Required
   * on the client, ignored on the server. */
  const uint8_t *expected_peer_key;
  const char *enrollment_code; /* TLS client: Auth.enrollment_code, or NULL */
  int requests_only;  /* client: Hello.requests_only (no pushed deliveries) */
  uint32_t max_frame; /* packing limit; 0 for SYNOD_FRAME_DEFAULT_MAX */
} synod_handshake_config_t;

/* The verified peer, filled in as its Hello and Auth arrive. */
typedef struct synod_handshake_peer {
  uint8_t public_key[SYNOD_ED25519_PUBLIC_BYTES]; /* verified by signature */
  Synod__V1__Role role;
  char *name;            /* Hello.name ("" if empty) */
  char *software;        /* Hello.software ("" if empty) */
  char *enrollment_code; /* Auth.enrollment_code, NULL if absent or empty */
  char *relay_name;      /* TLS client: Ready.relay_name, else NULL */
  int requests_only;     /* Hello.requests_only */
  uint32_t version;      /* negotiated version */
} synod_handshake_peer_t;

typedef struct synod_handshake synod_handshake_t;

/* A new machine in state SYNOD_HS_NEW. cfg and its strings are only read
 * during the call. *out is owned by the caller; release it with
 * synod_handshake_free(). SYNOD_EINVAL (missing name or key, a client
 * without expected_peer_key, a server announcing ROLE_CLIENT),
 * SYNOD_ENOMEM. */
int synod_handshake_new(synod_handshake_t **out,
                        const synod_handshake_config_t *cfg);

/* Releases hs and wipes its secrets. NULL is a no-op. */
void synod_handshake_free(synod_handshake_t *hs);

/*
 * TLS is up: exporter is synod_tls_exporter() of the connection (copied).
 * Queues this side's Hello and signs the channel binding. SYNOD_EINVAL
 * when called twice; SYNOD_ENOMEM or a signing error otherwise (the
 * machine is then failed).
 */
int synod_handshake_start(
    synod_handshake_t *hs,
    const uint8_t exporter[static SYNOD_TLS_EXPORTER_BYTES]);

/*
 * One received Frame; f is borrowed for the call only. Returns a
 * synod_hs_event value (>= 0), or the failure as a negative SYNOD_E* code:
 * the code of the Error frame queued for the peer, or the peer's own code
 * when it sent an Error. Once failed, every call returns the same code.
 * SYNOD_EINVAL (machine unchanged) before start or after ready: frames
 * after ready belong to the session, not the handshake.
 */
int synod_handshake_recv(synod_handshake_t *hs, const Synod__V1__Frame *f);

/*
 * TLS server, in SYNOD_HS_DECIDING: accept the peer. Queues Ready and
 * makes the session ready. SYNOD_EINVAL in any other state or on a
 * client.
 */
int synod_handshake_accept(synod_handshake_t *hs);

/*
 * TLS server, in SYNOD_HS_DECIDING: refuse the peer with code (a negative
 * SYNOD_E*, e.g. SYNOD_EUNKNOWNUSER) and a short reason (NULL for none,
 * copied). Queues the Error and fails the machine with code.
 * SYNOD_EINVAL in any other state or on a client.
 */
int synod_handshake_refuse(synod_handshake_t *hs, int code, const char *reason);

/*
 * Next packed frame to send (4-byte length header included), oldest first.
 * Returns 1 and hands over *out (malloc'd, the caller frees it) and
 * *outlen; 0 when nothing is queued (*out = NULL).
 */
int synod_handshake_take(synod_handshake_t *hs, uint8_t **out, size_t *outlen);

synod_hs_state_t synod_handshake_state(const synod_handshake_t *hs);

/* The failure code (negative), or 0 while not failed. */
int synod_handshake_error(const synod_handshake_t *hs);

/* The reason of the failure: the peer's Error.reason when it sent one, our
 * own otherwise; "" while not failed. Owned by hs. */
const char *synod_handshake_reason(const synod_handshake_t *hs);

/* 1 when the failure came from an Error frame the peer sent. */
int synod_handshake_peer_failed(const synod_handshake_t *hs);

/* The peer as known so far; owned by hs, valid until synod_handshake_free().
 * public_key is meaningful from SYNOD_HS_EV_AUTH (server) or
 * SYNOD_HS_WAIT_READY (client) on. */
const synod_handshake_peer_t *synod_handshake_peer(const synod_handshake_t *hs);

#endif
