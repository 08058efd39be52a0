/* Session handshake state machine; see synod/handshake.h for the contract. */
#include "synod/handshake.h"

#include <stdlib.h>
#include <string.h>

#include "synod/frame.h"
#include "synod/sig.h"
#include "synod/wire.h"

/* Hello, Auth and one of Ready or Error: nothing else is ever queued. */
#define HS_QUEUE_MAX 4
/* The signed channel binding: exporter || side byte. */
#define BINDING_BYTES (SYNOD_TLS_EXPORTER_BYTES + 1)

struct synod_handshake {
  int tls_server;
  Synod__V1__Role role;
  char *name;
  char *software;
  int requests_only;
  char *enrollment_code; /* TLS client only; NULL for none */
  uint8_t secret_key[SYNOD_ED25519_SECRET_BYTES];
  uint8_t public_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t expected_peer_key[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t exporter[SYNOD_TLS_EXPORTER_BYTES];
  uint8_t signature[SYNOD_ED25519_SIG_BYTES]; /* our Auth signature */
  uint32_t max_frame;

  synod_hs_state_t state;
  int error;       /* negative once failed */
  int peer_failed; /* the failure is the peer's Error */
  char reason[SYNOD_WIRE_REASON_MAX + 1];
  synod_handshake_peer_t peer;

  struct {
    uint8_t *buf;
    size_t len;
  } queue[HS_QUEUE_MAX];
  size_t qhead, qlen;
};

static char *dup_str(const char *s) {
  if (!s)
    s = "";
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void set_reason(synod_handshake_t *hs, const char *reason) {
  size_t n = strlen(reason);
  if (n > SYNOD_WIRE_REASON_MAX)
    n = SYNOD_WIRE_REASON_MAX;
  memcpy(hs->reason, reason, n);
  hs->reason[n] = '\0';
}

/* Packs f onto the output queue; the queue owns the bytes until taken. */
static int enqueue(synod_handshake_t *hs, const Synod__V1__Frame *f) {
  if (hs->qlen == HS_QUEUE_MAX)
    return SYNOD_EINTERNAL;
  uint8_t *buf;
  size_t len;
  int rc = synod_wire_pack(f, hs->max_frame, &buf, &len);
  if (rc != 0)
    return rc;
  size_t slot = (hs->qhead + hs->qlen) % HS_QUEUE_MAX;
  hs->queue[slot].buf = buf;
  hs->queue[slot].len = len;
  hs->qlen++;
  return 0;
}

/* A failure this side detected: final, and the peer is told why. */
static int fail(synod_handshake_t *hs, int code, const char *reason) {
  if (hs->state == SYNOD_HS_FAILED)
    return hs->error;
  hs->state = SYNOD_HS_FAILED;
  hs->error = code;
  set_reason(hs, reason);
  synod_wire_error_t e;
  synod_wire_error(&e, 0, code, reason);
  (void)enqueue(hs, &e.frame); /* best effort: the failure stands anyway */
  return code;
}

/* The peer's Error: final, and never answered. */
static int fail_by_peer(synod_handshake_t *hs, const Synod__V1__Error *err) {
  hs->state = SYNOD_HS_FAILED;
  hs->peer_failed = 1;
  hs->error = synod_err_from_wire(err->code);
  set_reason(hs, err->reason ? err->reason : "");
  return hs->error;
}

int synod_handshake_new(synod_handshake_t **out,
                        const synod_handshake_config_t *cfg) {
  *out = NULL;
  if (!cfg->name || !cfg->secret_key)
    return SYNOD_EINVAL;
  if (cfg->role != SYNOD__V1__ROLE__ROLE_CLIENT &&
      cfg->role != SYNOD__V1__ROLE__ROLE_RELAY)
    return SYNOD_EINVAL;
  if (cfg->tls_server && cfg->role != SYNOD__V1__ROLE__ROLE_RELAY)
    return SYNOD_EINVAL;
  if (!cfg->tls_server && !cfg->expected_peer_key)
    return SYNOD_EINVAL;
  if (cfg->max_frame > SYNOD_FRAME_HARD_MAX)
    return SYNOD_EINVAL;

  synod_handshake_t *hs = calloc(1, sizeof *hs);
  if (!hs)
    return SYNOD_ENOMEM;
  hs->tls_server = cfg->tls_server != 0;
  hs->role = cfg->role;
  hs->max_frame = cfg->max_frame ? cfg->max_frame : SYNOD_FRAME_DEFAULT_MAX;
  hs->name = dup_str(cfg->name);
  hs->software = dup_str(cfg->software);
  hs->requests_only = cfg->requests_only ? 1 : 0;
  if (!hs->tls_server && cfg->enrollment_code && cfg->enrollment_code[0])
    hs->enrollment_code = dup_str(cfg->enrollment_code);
  if (!hs->name || !hs->software ||
      (!hs->tls_server && cfg->enrollment_code && cfg->enrollment_code[0] &&
       !hs->enrollment_code)) {
    synod_handshake_free(hs);
    return SYNOD_ENOMEM;
  }
  memcpy(hs->secret_key, cfg->secret_key, sizeof hs->secret_key);
  int rc = synod_ed25519_public(hs->public_key, hs->secret_key);
  if (rc != 0) {
    synod_handshake_free(hs);
    return rc;
  }
  if (!hs->tls_server)
    memcpy(hs->expected_peer_key, cfg->expected_peer_key,
           sizeof hs->expected_peer_key);
  hs->state = SYNOD_HS_NEW;
  *out = hs;
  return 0;
}

void synod_handshake_free(synod_handshake_t *hs) {
  if (!hs)
    return;
  for (size_t i = 0; i < hs->qlen; i++)
    free(hs->queue[(hs->qhead + i) % HS_QUEUE_MAX].buf);
  free(hs->name);
  free(hs->software);
  free(hs->enrollment_code);
  free(hs->peer.name);
  free(hs->peer.software);
  free(hs->peer.enrollment_code);
  free(hs->peer.relay_name);
  synod_wipe(hs, sizeof *hs);
  free(hs);
}

static void binding(uint8_t out[static BINDING_BYTES],
                    const uint8_t exporter[static SYNOD_TLS_EXPORTER_BYTES],
                    int signer_is_server) {
  memcpy(out, exporter, SYNOD_TLS_EXPORTER_BYTES);
  out[SYNOD_TLS_EXPORTER_BYTES] =
      signer_is_server ? SYNOD_HS_SIDE_TLS_SERVER : SYNOD_HS_SIDE_TLS_CLIENT;
}

int synod_handshake_start(
    synod_handshake_t *hs,
    const uint8_t exporter[static SYNOD_TLS_EXPORTER_BYTES]) {
  if (hs->state != SYNOD_HS_NEW)
    return SYNOD_EINVAL;
  memcpy(hs->exporter, exporter, sizeof hs->exporter);

  /* Sign now and forget the secret: the machine holds it no longer than
   * this call. */
  uint8_t msg[BINDING_BYTES];
  binding(msg, hs->exporter, hs->tls_server);
  int rc = synod_sig_sign(hs->signature, SYNOD_SIG_CHANNEL_BINDING, msg,
                          sizeof msg, hs->secret_key);
  synod_wipe(hs->secret_key, sizeof hs->secret_key);
  if (rc != 0)
    return fail(hs, rc, "cannot sign the channel binding");

  uint8_t nonce[SYNOD_HELLO_NONCE_BYTES];
  if ((rc = synod_random(nonce, sizeof nonce)) != 0)
    return fail(hs, rc, "no randomness");
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Hello h;
  synod__v1__hello__init(&h);
  h.max_version = SYNOD_PROTOCOL_VERSION;
  h.min_version = SYNOD_PROTOCOL_VERSION;
  h.nonce.data = nonce;
  h.nonce.len = sizeof nonce;
  h.role = hs->role;
  h.name = hs->name;
  h.software = hs->software;
  h.requests_only = hs->requests_only;
  f.body_case = SYNOD__V1__FRAME__BODY_HELLO;
  f.hello = &h;
  if ((rc = enqueue(hs, &f)) != 0)
    return fail(hs, rc, "cannot send hello");
  hs->state = SYNOD_HS_HELLO;
  return 0;
}

static int send_auth(synod_handshake_t *hs) {
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Auth a;
  synod__v1__auth__init(&a);
  a.public_key.data = hs->public_key;
  a.public_key.len = sizeof hs->public_key;
  a.signature.data = hs->signature;
  a.signature.len = sizeof hs->signature;
  if (hs->enrollment_code)
    a.enrollment_code = hs->enrollment_code;
  f.body_case = SYNOD__V1__FRAME__BODY_AUTH;
  f.auth = &a;
  return enqueue(hs, &f);
}

static int on_hello(synod_handshake_t *hs, const Synod__V1__Hello *h) {
  if (hs->state != SYNOD_HS_HELLO)
    return fail(hs, SYNOD_EPROTO, "unexpected hello");
  if (h->nonce.len != SYNOD_HELLO_NONCE_BYTES)
    return fail(hs, SYNOD_EPROTO, "hello nonce must be 32 bytes");
  if (h->role != SYNOD__V1__ROLE__ROLE_CLIENT &&
      h->role != SYNOD__V1__ROLE__ROLE_RELAY)
    return fail(hs, SYNOD_EPROTO, "hello without a valid role");
  if (!hs->tls_server && h->role != SYNOD__V1__ROLE__ROLE_RELAY)
    return fail(hs, SYNOD_EPROTO, "the TLS server must be a relay");
  /* Highest version in both ranges. */
  uint32_t lo = h->min_version > SYNOD_PROTOCOL_VERSION
                    ? h->min_version
                    : SYNOD_PROTOCOL_VERSION;
  uint32_t hi = h->max_version < SYNOD_PROTOCOL_VERSION
                    ? h->max_version
                    : SYNOD_PROTOCOL_VERSION;
  if (h->min_version > h->max_version || lo > hi)
    return fail(hs, SYNOD_EVERSION,
                "no common protocol version (this side speaks 1)");
  hs->peer.version = hi;
  hs->peer.role = h->role;
  hs->peer.requests_only = h->requests_only ? 1 : 0;
  free(hs->peer.name);
  free(hs->peer.software);
  hs->peer.name = dup_str(h->name);
  hs->peer.software = dup_str(h->software);
  if (!hs->peer.name || !hs->peer.software)
    return fail(hs, SYNOD_ENOMEM, "out of memory");
  int rc = send_auth(hs);
  if (rc != 0)
    return fail(hs, rc, "cannot send auth");
  hs->state = SYNOD_HS_AUTH;
  return SYNOD_HS_EV_NONE;
}

static int on_auth(synod_handshake_t *hs, const Synod__V1__Auth *a) {
  if (hs->state != SYNOD_HS_AUTH)
    return fail(hs, SYNOD_EPROTO, "unexpected auth");
  if (a->public_key.len != SYNOD_ED25519_PUBLIC_BYTES ||
      a->signature.len != SYNOD_ED25519_SIG_BYTES)
    return fail(hs, SYNOD_EAUTH, "auth key or signature has the wrong size");
  /* The peer signed as the other side of this TLS session. */
  uint8_t msg[BINDING_BYTES];
  binding(msg, hs->exporter, !hs->tls_server);
  if (synod_sig_verify(a->signature.data, SYNOD_SIG_CHANNEL_BINDING, msg,
                       sizeof msg, a->public_key.data) != 0)
    return fail(hs, SYNOD_EAUTH, "channel binding signature does not verify");
  memcpy(hs->peer.public_key, a->public_key.data, SYNOD_ED25519_PUBLIC_BYTES);

  if (hs->tls_server) {
    if (a->enrollment_code && a->enrollment_code[0] &&
        !(hs->peer.enrollment_code = dup_str(a->enrollment_code)))
      return fail(hs, SYNOD_ENOMEM, "out of memory");
    hs->state = SYNOD_HS_DECIDING;
    return SYNOD_HS_EV_AUTH;
  }
  if (!synod_memeq(hs->peer.public_key, hs->expected_peer_key,
                   SYNOD_ED25519_PUBLIC_BYTES))
    return fail(hs, SYNOD_EBADKEY, "relay key is not the expected key");
  hs->state = SYNOD_HS_WAIT_READY;
  return SYNOD_HS_EV_NONE;
}

static int on_ready(synod_handshake_t *hs, const Synod__V1__Ready *r) {
  if (hs->tls_server || hs->state != SYNOD_HS_WAIT_READY)
    return fail(hs, SYNOD_EPROTO, "unexpected ready");
  if (r->version != hs->peer.version)
    return fail(hs, SYNOD_EPROTO, "ready names another version");
  if (!(hs->peer.relay_name = dup_str(r->relay_name)))
    return fail(hs, SYNOD_ENOMEM, "out of memory");
  hs->state = SYNOD_HS_READY;
  return SYNOD_HS_EV_READY;
}

int synod_handshake_recv(synod_handshake_t *hs, const Synod__V1__Frame *f) {
  switch (hs->state) {
  case SYNOD_HS_NEW:
  case SYNOD_HS_READY:
    return SYNOD_EINVAL;
  case SYNOD_HS_FAILED:
    return hs->error;
  default:
    break;
  }
  /* protobuf-c sets the oneof case and its pointer together; a NULL here
   * would be a hand-built frame, treated like any malformed one. */
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_ERROR:
    if (f->error)
      return fail_by_peer(hs, f->error);
    break;
  case SYNOD__V1__FRAME__BODY_HELLO:
    if (f->hello)
      return on_hello(hs, f->hello);
    break;
  case SYNOD__V1__FRAME__BODY_AUTH:
    if (f->auth)
      return on_auth(hs, f->auth);
    break;
  case SYNOD__V1__FRAME__BODY_READY:
    if (f->ready)
      return on_ready(hs, f->ready);
    break;
  default:
    return fail(hs, SYNOD_EPROTO, "frame before the session is ready");
  }
  return fail(hs, SYNOD_EPROTO, "malformed frame");
}

int synod_handshake_accept(synod_handshake_t *hs) {
  if (!hs->tls_server || hs->state != SYNOD_HS_DECIDING)
    return SYNOD_EINVAL;
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Ready r;
  synod__v1__ready__init(&r);
  r.version = hs->peer.version;
  r.relay_name = hs->name;
  f.body_case = SYNOD__V1__FRAME__BODY_READY;
  f.ready = &r;
  int rc = enqueue(hs, &f);
  if (rc != 0)
    return fail(hs, rc, "cannot send ready");
  hs->state = SYNOD_HS_READY;
  return 0;
}

int synod_handshake_refuse(synod_handshake_t *hs, int code,
                           const char *reason) {
  if (!hs->tls_server || hs->state != SYNOD_HS_DECIDING)
    return SYNOD_EINVAL;
  if (code >= 0)
    code = SYNOD_EDENIED;
  fail(hs, code, reason ? reason : "");
  return 0;
}

int synod_handshake_take(synod_handshake_t *hs, uint8_t **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  if (hs->qlen == 0)
    return 0;
  *out = hs->queue[hs->qhead].buf;
  *outlen = hs->queue[hs->qhead].len;
  hs->queue[hs->qhead].buf = NULL;
  hs->qhead = (hs->qhead + 1) % HS_QUEUE_MAX;
  hs->qlen--;
  return 1;
}

synod_hs_state_t synod_handshake_state(const synod_handshake_t *hs) {
  return hs->state;
}

int synod_handshake_error(const synod_handshake_t *hs) {
  return hs->error;
}

const char *synod_handshake_reason(const synod_handshake_t *hs) {
  return hs->reason;
}

int synod_handshake_peer_failed(const synod_handshake_t *hs) {
  return hs->peer_failed;
}

const synod_handshake_peer_t *
synod_handshake_peer(const synod_handshake_t *hs) {
  return &hs->peer;
}
