/*
 * Session handshake: two machines back to back, frames packed by one,
 * unpacked and fed to the other, no TLS and no socket. The exporter is a
 * random stand-in for the TLS one.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/crypto.h"
#include "synod/frame.h"
#include "synod/handshake.h"
#include "synod/wire.h"

typedef struct side {
  synod_handshake_t *hs;
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t sk[SYNOD_ED25519_SECRET_BYTES];
  int ev_auth, ev_ready, failures, last;
} side_t;

typedef struct pair {
  side_t c, s;
  uint8_t exporter[SYNOD_TLS_EXPORTER_BYTES];
} pair_t;

static void keypair(side_t *x) {
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(x->pk, x->sk), 0);
}

/* A client and a server; expected is the key the client expects (NULL:
 * the server's own). */
static void pair_new(pair_t *p, const uint8_t *expected, const char *enroll) {
  memset(p, 0, sizeof *p);
  keypair(&p->c);
  keypair(&p->s);
  CU_ASSERT_EQUAL_FATAL(synod_random(p->exporter, sizeof p->exporter), 0);
  synod_handshake_config_t sc = {
      .tls_server = 1,
      .role = SYNOD__V1__ROLE__ROLE_RELAY,
      .name = "relay.example",
      .software = "test",
      .secret_key = p->s.sk,
  };
  synod_handshake_config_t cc = {
      .tls_server = 0,
      .role = SYNOD__V1__ROLE__ROLE_CLIENT,
      .name = "alice@relay.example",
      .secret_key = p->c.sk,
      .expected_peer_key = expected ? expected : p->s.pk,
      .enrollment_code = enroll,
  };
  CU_ASSERT_EQUAL_FATAL(synod_handshake_new(&p->s.hs, &sc), 0);
  CU_ASSERT_EQUAL_FATAL(synod_handshake_new(&p->c.hs, &cc), 0);
}

static void pair_free(pair_t *p) {
  synod_handshake_free(p->c.hs);
  synod_handshake_free(p->s.hs);
}

/* Unpacks a packed frame (header included). Caller frees the result. */
static Synod__V1__Frame *unpack(const uint8_t *buf, size_t len) {
  CU_ASSERT_FATAL(len > SYNOD_FRAME_HEADER_BYTES);
  size_t body = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
                (size_t)buf[2] << 8 | buf[3];
  CU_ASSERT_EQUAL_FATAL(body, len - SYNOD_FRAME_HEADER_BYTES);
  Synod__V1__Frame *f = NULL;
  CU_ASSERT_EQUAL_FATAL(
      synod_wire_unpack(buf + SYNOD_FRAME_HEADER_BYTES, body, &f), 0);
  return f;
}

static void deliver(side_t *to, const Synod__V1__Frame *f) {
  int rc = synod_handshake_recv(to->hs, f);
  to->last = rc;
  if (rc == SYNOD_HS_EV_AUTH)
    to->ev_auth++;
  else if (rc == SYNOD_HS_EV_READY)
    to->ev_ready++;
  else if (rc < 0)
    to->failures++;
}

/* Moves every queued frame from a to b; returns how many. Frames b can no
 * longer take (it failed or is ready) are dropped, as a closing
 * connection would. */
static int move(side_t *a, side_t *b) {
  int n = 0;
  uint8_t *buf;
  size_t len;
  while (synod_handshake_take(a->hs, &buf, &len) == 1) {
    Synod__V1__Frame *f = unpack(buf, len);
    free(buf);
    synod_hs_state_t st = synod_handshake_state(b->hs);
    if (st != SYNOD_HS_FAILED && st != SYNOD_HS_READY)
      deliver(b, f);
    synod_wire_free(f);
    n++;
  }
  return n;
}

static void pump(pair_t *p) {
  while (move(&p->c, &p->s) + move(&p->s, &p->c) > 0) {
  }
}

static void start_both(pair_t *p) {
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(p->c.hs, p->exporter), 0);
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(p->s.hs, p->exporter), 0);
}

/* Takes the single queued frame of x, asserting it is an Error of code. */
static void expect_error_frame(side_t *x, int code) {
  uint8_t *buf;
  size_t len;
  int found = 0;
  while (synod_handshake_take(x->hs, &buf, &len) == 1) {
    Synod__V1__Frame *f = unpack(buf, len);
    free(buf);
    if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR) {
      CU_ASSERT_EQUAL(synod_err_from_wire(f->error->code), code);
      CU_ASSERT(f->error->reason[0] != '\0');
      found++;
    }
    synod_wire_free(f);
  }
  CU_ASSERT_EQUAL(found, 1);
}

static void test_handshake_both_ready(void) {
  pair_t p;
  pair_new(&p, NULL, "ENROLL-1234");
  CU_ASSERT_EQUAL(synod_handshake_state(p.c.hs), SYNOD_HS_NEW);
  start_both(&p);
  CU_ASSERT_EQUAL(synod_handshake_start(p.c.hs, p.exporter), SYNOD_EINVAL);
  pump(&p);

  /* The server now holds a verified peer and waits for its owner. */
  CU_ASSERT_EQUAL(p.s.ev_auth, 1);
  CU_ASSERT_EQUAL(synod_handshake_state(p.s.hs), SYNOD_HS_DECIDING);
  CU_ASSERT_EQUAL(synod_handshake_state(p.c.hs), SYNOD_HS_WAIT_READY);
  const synod_handshake_peer_t *peer = synod_handshake_peer(p.s.hs);
  CU_ASSERT_EQUAL(memcmp(peer->public_key, p.c.pk, sizeof p.c.pk), 0);
  CU_ASSERT_EQUAL(peer->role, SYNOD__V1__ROLE__ROLE_CLIENT);
  CU_ASSERT_STRING_EQUAL(peer->name, "alice@relay.example");
  CU_ASSERT_STRING_EQUAL(peer->software, "");
  CU_ASSERT_PTR_NOT_NULL_FATAL(peer->enrollment_code);
  CU_ASSERT_STRING_EQUAL(peer->enrollment_code, "ENROLL-1234");
  CU_ASSERT_EQUAL(peer->version, 1);

  CU_ASSERT_EQUAL(synod_handshake_accept(p.c.hs), SYNOD_EINVAL); /* client */
  CU_ASSERT_EQUAL(synod_handshake_accept(p.s.hs), 0);
  CU_ASSERT_EQUAL(synod_handshake_accept(p.s.hs), SYNOD_EINVAL); /* twice */
  pump(&p);
  CU_ASSERT_EQUAL(p.c.ev_ready, 1);
  CU_ASSERT_EQUAL(p.c.failures + p.s.failures, 0);
  CU_ASSERT_EQUAL(synod_handshake_state(p.c.hs), SYNOD_HS_READY);
  CU_ASSERT_EQUAL(synod_handshake_state(p.s.hs), SYNOD_HS_READY);
  peer = synod_handshake_peer(p.c.hs);
  CU_ASSERT_EQUAL(memcmp(peer->public_key, p.s.pk, sizeof p.s.pk), 0);
  CU_ASSERT_EQUAL(peer->role, SYNOD__V1__ROLE__ROLE_RELAY);
  CU_ASSERT_STRING_EQUAL(peer->name, "relay.example");
  CU_ASSERT_STRING_EQUAL(peer->software, "test");
  CU_ASSERT_STRING_EQUAL(peer->relay_name, "relay.example");
  CU_ASSERT_EQUAL(synod_handshake_error(p.c.hs), 0);

  /* After ready, frames are the session's business. */
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Ping ping;
  synod__v1__ping__init(&ping);
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &ping;
  CU_ASSERT_EQUAL(synod_handshake_recv(p.c.hs, &f), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_handshake_state(p.c.hs), SYNOD_HS_READY);
  pair_free(&p);
}

static void test_handshake_wrong_server_key(void) {
  pair_t p;
  uint8_t other[SYNOD_ED25519_PUBLIC_BYTES], osk[SYNOD_ED25519_SECRET_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(other, osk), 0);
  pair_new(&p, other, NULL);
  start_both(&p);
  pump(&p);
  CU_ASSERT_EQUAL(p.c.last, SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(synod_handshake_state(p.c.hs), SYNOD_HS_FAILED);
  CU_ASSERT_EQUAL(synod_handshake_error(p.c.hs), SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(synod_handshake_peer_failed(p.c.hs), 0);
  /* The server heard why. */
  CU_ASSERT_EQUAL(synod_handshake_error(p.s.hs), SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(synod_handshake_peer_failed(p.s.hs), 1);
  CU_ASSERT(synod_handshake_reason(p.s.hs)[0] != '\0');
  CU_ASSERT_EQUAL(p.c.ev_ready + p.s.ev_ready, 0);
  pair_free(&p);
}

/* Two sessions with different exporters, as a man in the middle has: each
 * side's signature fails on the other. */
static void test_handshake_mitm_exporter(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  uint8_t other[SYNOD_TLS_EXPORTER_BYTES];
  memcpy(other, p.exporter, sizeof other);
  other[7] ^= 0x40;
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(p.c.hs, p.exporter), 0);
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(p.s.hs, other), 0);
  pump(&p);
  CU_ASSERT_EQUAL(synod_handshake_error(p.c.hs), SYNOD_EAUTH);
  CU_ASSERT_EQUAL(synod_handshake_error(p.s.hs), SYNOD_EAUTH);
  CU_ASSERT_EQUAL(p.s.ev_auth, 0);
  CU_ASSERT_EQUAL(p.c.ev_ready, 0);
  pair_free(&p);
}

/* Runs c and s to the point where the client's Auth is next for the
 * server, and returns that Auth frame (caller frees). */
static Synod__V1__Frame *client_auth(pair_t *p) {
  start_both(p);
  move(&p->s, &p->c); /* server Hello -> client, which answers with Auth */
  uint8_t *buf;
  size_t len;
  CU_ASSERT_FATAL(synod_handshake_take(p->c.hs, &buf, &len) == 1); /* Hello */
  Synod__V1__Frame *hello = unpack(buf, len);
  free(buf);
  deliver(&p->s, hello);
  synod_wire_free(hello);
  CU_ASSERT_FATAL(synod_handshake_take(p->c.hs, &buf, &len) == 1); /* Auth */
  Synod__V1__Frame *auth = unpack(buf, len);
  free(buf);
  CU_ASSERT_EQUAL_FATAL(auth->body_case, SYNOD__V1__FRAME__BODY_AUTH);
  return auth;
}

static void test_handshake_bad_signature(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  Synod__V1__Frame *auth = client_auth(&p);
  auth->auth->signature.data[10] ^= 1;
  deliver(&p.s, auth);
  synod_wire_free(auth);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EAUTH);
  CU_ASSERT_EQUAL(p.s.ev_auth, 0);
  /* Queued: the server's Hello is gone, its Auth and the Error remain. */
  expect_error_frame(&p.s, SYNOD_EAUTH);
  pair_free(&p);
}

static void test_handshake_short_key(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  Synod__V1__Frame *auth = client_auth(&p);
  auth->auth->public_key.len = 31;
  deliver(&p.s, auth);
  synod_wire_free(auth);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EAUTH);
  pair_free(&p);
}

/* The server's own Auth reflected back at it: right exporter, right key
 * format, but signed for the other side. */
static void test_handshake_reflected_auth(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  Synod__V1__Frame *cauth = client_auth(&p);
  synod_wire_free(cauth);
  uint8_t *buf;
  size_t len;
  Synod__V1__Frame *sauth = NULL;
  while (synod_handshake_take(p.s.hs, &buf, &len) == 1) {
    Synod__V1__Frame *f = unpack(buf, len);
    free(buf);
    if (f->body_case == SYNOD__V1__FRAME__BODY_AUTH && !sauth)
      sauth = f;
    else
      synod_wire_free(f);
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(sauth);
  deliver(&p.s, sauth);
  synod_wire_free(sauth);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EAUTH);
  pair_free(&p);
}

static void test_handshake_version_mismatch(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  start_both(&p);
  uint8_t nonce[SYNOD_HELLO_NONCE_BYTES] = {1};
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Hello h;
  synod__v1__hello__init(&h);
  h.min_version = 2;
  h.max_version = 3;
  h.nonce.data = nonce;
  h.nonce.len = sizeof nonce;
  h.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  h.name = (char *)"future@relay.example";
  f.body_case = SYNOD__V1__FRAME__BODY_HELLO;
  f.hello = &h;
  deliver(&p.s, &f);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EVERSION);
  CU_ASSERT_EQUAL(synod_handshake_error(p.s.hs), SYNOD_EVERSION);
  /* Sticky. */
  CU_ASSERT_EQUAL(synod_handshake_recv(p.s.hs, &f), SYNOD_EVERSION);
  expect_error_frame(&p.s, SYNOD_EVERSION);
  /* And the client side of it: told EVERSION, it fails with that code. */
  pair_free(&p);

  pair_new(&p, NULL, NULL);
  start_both(&p);
  h.role = SYNOD__V1__ROLE__ROLE_RELAY;
  deliver(&p.c, &f);
  CU_ASSERT_EQUAL(p.c.last, SYNOD_EVERSION);
  expect_error_frame(&p.c, SYNOD_EVERSION);
  pair_free(&p);
}

/* An inverted range (min above max) is no range at all. */
static void test_handshake_inverted_versions(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  start_both(&p);
  uint8_t nonce[SYNOD_HELLO_NONCE_BYTES] = {1};
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Hello h;
  synod__v1__hello__init(&h);
  h.min_version = 1;
  h.max_version = 0;
  h.nonce.data = nonce;
  h.nonce.len = sizeof nonce;
  h.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  f.body_case = SYNOD__V1__FRAME__BODY_HELLO;
  f.hello = &h;
  deliver(&p.s, &f);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EVERSION);
  pair_free(&p);
}

static void test_handshake_frame_before_auth(void) {
  /* A Ping before anything. */
  pair_t p;
  pair_new(&p, NULL, NULL);
  start_both(&p);
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  Synod__V1__Ping ping;
  synod__v1__ping__init(&ping);
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &ping;
  deliver(&p.s, &f);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EPROTO);
  expect_error_frame(&p.s, SYNOD_EPROTO);
  pair_free(&p);

  /* A Ping after Hello, before Auth. */
  pair_new(&p, NULL, NULL);
  start_both(&p);
  move(&p.c, &p.s); /* client Hello */
  CU_ASSERT_EQUAL(synod_handshake_state(p.s.hs), SYNOD_HS_AUTH);
  deliver(&p.s, &f);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EPROTO);
  pair_free(&p);

  /* Auth before Hello. */
  pair_new(&p, NULL, NULL);
  Synod__V1__Frame *auth = client_auth(&p);
  pair_t q;
  pair_new(&q, NULL, NULL);
  start_both(&q);
  deliver(&q.s, auth);
  CU_ASSERT_EQUAL(q.s.last, SYNOD_EPROTO);
  synod_wire_free(auth);
  pair_free(&q);
  pair_free(&p);

  /* A Ping while the server decides; a Ready sent to a server; a second
   * Hello. */
  pair_new(&p, NULL, NULL);
  start_both(&p);
  pump(&p);
  CU_ASSERT_EQUAL_FATAL(synod_handshake_state(p.s.hs), SYNOD_HS_DECIDING);
  deliver(&p.s, &f);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EPROTO);
  CU_ASSERT_EQUAL(synod_handshake_accept(p.s.hs), SYNOD_EINVAL);
  pair_free(&p);

  pair_new(&p, NULL, NULL);
  start_both(&p);
  Synod__V1__Frame rf;
  synod__v1__frame__init(&rf);
  Synod__V1__Ready ready;
  synod__v1__ready__init(&ready);
  ready.version = 1;
  rf.body_case = SYNOD__V1__FRAME__BODY_READY;
  rf.ready = &ready;
  deliver(&p.s, &rf);
  CU_ASSERT_EQUAL(p.s.last, SYNOD_EPROTO);
  /* A client that gets Ready before the server's Auth. */
  move(&p.s, &p.c); /* server Hello */
  deliver(&p.c, &rf);
  CU_ASSERT_EQUAL(p.c.last, SYNOD_EPROTO);
  pair_free(&p);
}

static void test_handshake_refused(void) {
  pair_t p;
  pair_new(&p, NULL, NULL);
  start_both(&p);
  pump(&p);
  CU_ASSERT_EQUAL_FATAL(p.s.ev_auth, 1);
  CU_ASSERT_EQUAL(synod_handshake_refuse(p.c.hs, SYNOD_EDENIED, "x"),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(
      synod_handshake_refuse(p.s.hs, SYNOD_EUNKNOWNUSER, "no such account"), 0);
  CU_ASSERT_EQUAL(synod_handshake_error(p.s.hs), SYNOD_EUNKNOWNUSER);
  CU_ASSERT_EQUAL(synod_handshake_refuse(p.s.hs, SYNOD_EDENIED, "again"),
                  SYNOD_EINVAL);
  pump(&p);
  CU_ASSERT_EQUAL(p.c.last, SYNOD_EUNKNOWNUSER);
  CU_ASSERT_EQUAL(p.c.failures, 1);
  CU_ASSERT_EQUAL(p.c.ev_ready, 0);
  CU_ASSERT_EQUAL(synod_handshake_peer_failed(p.c.hs), 1);
  CU_ASSERT_STRING_EQUAL(synod_handshake_reason(p.c.hs), "no such account");
  /* The client does not answer an Error. */
  uint8_t *buf;
  size_t len;
  CU_ASSERT_EQUAL(synod_handshake_take(p.c.hs, &buf, &len), 0);
  CU_ASSERT_PTR_NULL(buf);
  pair_free(&p);
}

static void test_handshake_misuse(void) {
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES], sk[SYNOD_ED25519_SECRET_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  synod_handshake_t *hs = NULL;
  synod_handshake_config_t cfg = {.tls_server = 0,
                                  .role = SYNOD__V1__ROLE__ROLE_CLIENT,
                                  .name = "a@b",
                                  .secret_key = sk};
  CU_ASSERT_EQUAL(synod_handshake_new(&hs, &cfg),
                  SYNOD_EINVAL); /* no expected key */
  cfg.tls_server = 1;
  CU_ASSERT_EQUAL(synod_handshake_new(&hs, &cfg),
                  SYNOD_EINVAL); /* server as client */
  cfg.role = SYNOD__V1__ROLE__ROLE_UNSPECIFIED;
  CU_ASSERT_EQUAL(synod_handshake_new(&hs, &cfg), SYNOD_EINVAL);
  cfg.role = SYNOD__V1__ROLE__ROLE_RELAY;
  cfg.name = NULL;
  CU_ASSERT_EQUAL(synod_handshake_new(&hs, &cfg), SYNOD_EINVAL);
  CU_ASSERT_PTR_NULL(hs);
  cfg.name = "relay.example";
  CU_ASSERT_EQUAL_FATAL(synod_handshake_new(&hs, &cfg), 0);
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  Synod__V1__Ping ping;
  synod__v1__ping__init(&ping);
  f.ping = &ping;
  CU_ASSERT_EQUAL(synod_handshake_recv(hs, &f),
                  SYNOD_EINVAL); /* before start */
  CU_ASSERT_EQUAL(synod_handshake_state(hs), SYNOD_HS_NEW);
  /* A hand-built frame whose oneof pointer is missing. */
  uint8_t x[SYNOD_TLS_EXPORTER_BYTES] = {0};
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(hs, x), 0);
  f.body_case = SYNOD__V1__FRAME__BODY_HELLO;
  f.hello = NULL;
  CU_ASSERT_EQUAL(synod_handshake_recv(hs, &f), SYNOD_EPROTO);
  synod_handshake_free(hs);
  synod_handshake_free(NULL);
}

static CU_TestInfo handshake_tests[] = {
    {"handshake_both_ready", test_handshake_both_ready},
    {"handshake_wrong_server_key", test_handshake_wrong_server_key},
    {"handshake_mitm_exporter", test_handshake_mitm_exporter},
    {"handshake_bad_signature", test_handshake_bad_signature},
    {"handshake_short_key", test_handshake_short_key},
    {"handshake_reflected_auth", test_handshake_reflected_auth},
    {"handshake_version_mismatch", test_handshake_version_mismatch},
    {"handshake_inverted_versions", test_handshake_inverted_versions},
    {"handshake_frame_before_auth", test_handshake_frame_before_auth},
    {"handshake_refused", test_handshake_refused},
    {"handshake_misuse", test_handshake_misuse},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"handshake", NULL, NULL, NULL, NULL, handshake_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
