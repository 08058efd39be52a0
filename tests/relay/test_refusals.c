/*
 * Integration suite: every refusal of the relay (proto/README.md sections
 * 3-5, 8 and 11; the relay issue's "each a typed error while other
 * sessions continue") on real relays and a real PostgreSQL.
 *
 * Each test keeps an honest pair of sessions open on the relay under test
 * while a misbehaving peer is refused, asserts the exact code that peer
 * received, and then asserts that the honest pair still delivers a message
 * (relay_healthy), so a refusal that took the relay, or any other
 * connection, down with it fails the test.
 *
 * Honest clients are tclient (the real protocol over lib/conn). The
 * misbehaving ones are raw: a blocking socket driving the sans-I/O TLS
 * engine (synod/tls.h) and, when a test needs an authenticated session,
 * the sans-I/O handshake machine (synod/handshake.h), so that after the
 * handshake they can write any bytes at all inside TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "rawtls.h"
#include "synod/crypto.h"
#include "synod/frame.h"
#include "synod/handshake.h"
#include "synod/keyfile.h"
#include "synod/tls.h"
#include "synod/wire.h"
#include "tclient.h"
#include "tusers.h"

#define T_MS 10000

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* --- users and honest sessions ------------------------------------------- */

/* Connects as id to relay r with key sk (and code): 0 with *out, or the
 * code the attempt ended with. */
static int connect_as(tclient_t **out, fixture_relay_t *r, const char *id,
                      const uint8_t sk[32], const char *code) {
  return tclient_connect(out, fixture_relay_port(r),
                         fixture_relay_public_key(r), id, sk, code, T_MS);
}

/* Two users of one relay with sessions open for the whole test. */
typedef struct honest {
  fixture_relay_t *relay;
  tuser_t from, to;
  tclient_t *cfrom, *cto;
  size_t delivered;
} honest_t;

static void honest_up(honest_t *h, fixture_relay_t *r) {
  memset(h, 0, sizeof *h);
  h->relay = r;
  tuser_make(&h->from, r, "hank");
  tuser_make(&h->to, r, "iris");
  h->cfrom = tuser_login(&h->from);
  h->cto = tuser_login(&h->to);
}

static void honest_down(honest_t *h) {
  tclient_close(h->cfrom);
  tclient_close(h->cto);
  h->cfrom = h->cto = NULL;
}

/*
 * The relay runs and the honest sessions opened before the refusal are
 * still up and still deliver: one message hank -> iris, accepted, pushed
 * and acknowledged. what names the refusal just tested, for the log.
 */
static void relay_healthy_(honest_t *h, const char *what, int line) {
  CU_ASSERT_FATAL(fixture_relay_running(h->relay));
  if (!tclient_up(h->cfrom) || !tclient_up(h->cto))
    fprintf(stderr, "line %d, after %s: an honest session went down\n", line,
            what);
  CU_ASSERT_FATAL(tclient_up(h->cfrom));
  CU_ASSERT_FATAL(tclient_up(h->cto));
  uint8_t id[16];
  int acc = -1;
  tclient_random_id(id);
  int rc = tclient_submit(h->cfrom, id, h->to.id, 64, 0, &acc, T_MS);
  if (rc != 0)
    fprintf(stderr, "line %d, after %s: honest submit: %s\n", line, what,
            synod_err_name(rc));
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL_FATAL(tclient_wait_rx(h->cto, ++h->delivered, 1, T_MS), 0);
  size_t n;
  const tclient_rx_t *rx = tclient_rx(h->cto, &n);
  CU_ASSERT_EQUAL_FATAL(n, h->delivered);
  CU_ASSERT_EQUAL(memcmp(rx[n - 1].id, id, 16), 0);
  CU_ASSERT_STRING_EQUAL(rx[n - 1].sender, h->from.id);
}
#define relay_healthy(h, what) relay_healthy_((h), (what), __LINE__)

/* Occurrences of needle in relay r's log. */
static int log_count(fixture_relay_t *r, const char *needle) {
  FILE *f = fopen(fixture_relay_log_path(r), "r");
  if (!f)
    return -1;
  int n = 0;
  char line[4096];
  while (fgets(line, sizeof line, f))
    if (strstr(line, needle))
      n++;
  fclose(f);
  return n;
}

static fixture_t *start_federation(const char *name, size_t n) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, name), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, n), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  return fx;
}

static void finish(fixture_t *fx) {
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* --- raw clients ------------------------------------------------------------
 * A blocking socket; with TLS, the engine is pumped by hand. Every wait
 * has a deadline. */

/* Waits for an Error frame, skipping anything else: 0 with its code (a
 * negative SYNOD_E*) and request id, or SYNOD_ECLOSED / SYNOD_ETIMEDOUT. */
static int raw_error(raw_t *r, int *code, uint64_t *request_id, int ms) {
  int64_t until = raw_now_ms() + ms;
  for (;;) {
    Synod__V1__Frame *f;
    int left = (int)(until - raw_now_ms());
    int rc = raw_frame(r, &f, left > 0 ? left : 0);
    if (rc != 0)
      return rc;
    int is_error = f->body_case == SYNOD__V1__FRAME__BODY_ERROR;
    if (is_error) {
      *code = synod_err_from_wire(f->error->code);
      if (request_id)
        *request_id = f->request_id;
    }
    synod_wire_free(f);
    if (is_error)
      return 0;
  }
}

/* Waits until the relay closed the connection (TLS close_notify, end of
 * stream or reset), dropping whatever it sends meanwhile: 0 or
 * SYNOD_ETIMEDOUT. */
static int raw_closed(raw_t *r, int ms) {
  int64_t until = raw_now_ms() + ms;
  for (;;) {
    int rc;
    if (r->tls) {
      Synod__V1__Frame *f = NULL;
      int left = (int)(until - raw_now_ms());
      rc = raw_frame(r, &f, left > 0 ? left : 0);
      synod_wire_free(f);
      if (rc == 0)
        continue;
      /* After close_notify the relay may reset instead of a FIN; a TLS
       * read error after the relay's Error is its closing too. */
      if (rc == SYNOD_ETLS && r->eof)
        rc = SYNOD_ECLOSED;
    } else {
      rc = raw_recv(r, until);
      if (rc == 0)
        continue;
    }
    return rc == SYNOD_ECLOSED ? 0 : rc;
  }
}

/* The error a refused raw peer gets, then the close: asserts both and that
 * it is a connection error (request id 0). */
static void expect_error_and_close_(raw_t *r, int code, int line) {
  int got = 0;
  uint64_t rid = 99;
  int rc = raw_error(r, &got, &rid, T_MS);
  if (rc != 0 || got != code)
    fprintf(stderr, "line %d: expected Error %s, got %s (wait: %s)\n", line,
            synod_err_name(code), got ? synod_err_name(got) : "none",
            synod_err_name(rc));
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(got, code);
  CU_ASSERT_EQUAL(rid, 0);
  CU_ASSERT_EQUAL(raw_closed(r, T_MS), 0);
}
#define expect_error_and_close(r, code)                                        \
  expect_error_and_close_((r), (code), __LINE__)

/*
 * A whole session handshake over raw TLS, as role with name and key sk
 * (and enrolment code), expecting the relay key relay_pk: 0 once ready,
 * or the code it failed with (the relay's Error code when it refused).
 */
static int raw_session(raw_t *r, fixture_relay_t *relay, Synod__V1__Role role,
                       const char *name, const uint8_t sk[32],
                       const char *code) {
  int rc = raw_tls(r, fixture_relay_port(relay), 0);
  if (rc != 0)
    return rc;
  synod_handshake_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.role = role;
  cfg.name = name;
  cfg.software = "test_refusals";
  cfg.secret_key = sk;
  cfg.expected_peer_key = fixture_relay_public_key(relay);
  cfg.enrollment_code = code;
  uint8_t exporter[SYNOD_TLS_EXPORTER_BYTES];
  rc = synod_handshake_new(&r->hs, &cfg);
  if (rc == 0)
    rc = synod_tls_exporter(r->tls, exporter);
  if (rc == 0)
    rc = synod_handshake_start(r->hs, exporter);
  int64_t until = raw_now_ms() + T_MS;
  while (rc == 0) {
    rc = raw_hs_flush(r);
    if (rc != 0 || synod_handshake_state(r->hs) == SYNOD_HS_READY)
      break;
    Synod__V1__Frame *f;
    int left = (int)(until - raw_now_ms());
    rc = raw_frame(r, &f, left > 0 ? left : 0);
    if (rc != 0)
      break;
    int ev = synod_handshake_recv(r->hs, f);
    synod_wire_free(f);
    if (ev < 0) {
      (void)raw_hs_flush(r);
      rc = ev;
    }
  }
  return rc;
}

/* A raw client session of a freshly enrolled user of relay. */
static void raw_user_session(raw_t *r, fixture_relay_t *relay,
                             const char *local) {
  tuser_t u;
  tuser_make(&u, relay, local);
  int rc =
      raw_session(r, relay, SYNOD__V1__ROLE__ROLE_CLIENT, u.id, u.sk, u.code);
  if (rc != 0)
    fprintf(stderr, "raw session %s: %s\n", u.id, synod_err_name(rc));
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* A Submit frame of a well-formed envelope to recipient. */
typedef struct submit_frame {
  Synod__V1__Frame f;
  Synod__V1__Submit s;
  Synod__V1__Envelope e;
  Synod__V1__DeviceCiphertext dc, *dcs[1];
  uint8_t id[16], enc[32], ct[32];
} submit_frame_t;

static void submit_frame(submit_frame_t *m, const char *recipient,
                         uint64_t request_id) {
  synod__v1__frame__init(&m->f);
  synod__v1__submit__init(&m->s);
  synod__v1__envelope__init(&m->e);
  synod__v1__device_ciphertext__init(&m->dc);
  tclient_random_id(m->id);
  memset(m->enc, 1, sizeof m->enc);
  memset(m->ct, 2, sizeof m->ct);
  m->dc.device_id = 1;
  m->dc.enc.data = m->enc;
  m->dc.enc.len = sizeof m->enc;
  m->dc.ct.data = m->ct;
  m->dc.ct.len = sizeof m->ct;
  m->dcs[0] = &m->dc;
  m->e.message_id.data = m->id;
  m->e.message_id.len = 16;
  m->e.recipient = synod_wire_lend(recipient);
  m->e.ciphertexts = m->dcs;
  m->e.n_ciphertexts = 1;
  m->s.envelope = &m->e;
  m->f.request_id = request_id;
  m->f.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  m->f.submit = &m->s;
}

/* --- 1. unauthenticated send ---------------------------------------------- */

/* A Submit before the handshake is done is a protocol violation (README
 * 4.1): Error EPROTO, then that connection alone is closed. */
static void test_unauthenticated_send(void) {
  fixture_t *fx = start_federation("refuse_unauth", 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  honest_t h;
  honest_up(&h, a);
  relay_healthy(&h, "start");

  /* Straight after TLS, instead of Hello. */
  raw_t r;
  submit_frame_t m;
  CU_ASSERT_EQUAL_FATAL(raw_tls(&r, fixture_relay_port(a), 0), 0);
  submit_frame(&m, h.to.id, 1);
  CU_ASSERT_EQUAL(raw_send_frame(&r, &m.f), 0);
  expect_error_and_close(&r, SYNOD_EPROTO);
  raw_free(&r);
  relay_healthy(&h, "submit before hello");

  /* After a Hello, instead of Auth. */
  tuser_t mallory;
  tuser_make(&mallory, a, "mallory");
  CU_ASSERT_EQUAL_FATAL(raw_tls(&r, fixture_relay_port(a), 0), 0);
  synod_handshake_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  cfg.name = mallory.id;
  cfg.secret_key = mallory.sk;
  cfg.expected_peer_key = fixture_relay_public_key(a);
  uint8_t exporter[SYNOD_TLS_EXPORTER_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_handshake_new(&r.hs, &cfg), 0);
  CU_ASSERT_EQUAL_FATAL(synod_tls_exporter(r.tls, exporter), 0);
  CU_ASSERT_EQUAL_FATAL(synod_handshake_start(r.hs, exporter), 0);
  CU_ASSERT_EQUAL(raw_hs_flush(&r), 0); /* our Hello only */
  submit_frame(&m, h.to.id, 1);
  CU_ASSERT_EQUAL(raw_send_frame(&r, &m.f), 0);
  expect_error_and_close(&r, SYNOD_EPROTO);
  raw_free(&r);
  relay_healthy(&h, "submit before auth");

  /* Nothing reached the recipient but the honest messages. */
  tclient_run_for(h.cto, 200);
  size_t n;
  tclient_rx(h.cto, &n);
  CU_ASSERT_EQUAL(n, h.delivered);
  honest_down(&h);
  finish(fx);
}

/* --- 2. unknown relays, wrong roles -------------------------------------- */

/* A relay not in the peer configuration: EUNKNOWNPEER; a configured peer's
 * name with another key: EBADKEY (README 4.3). The real peer link is not
 * disturbed: cross-relay delivery goes on. */
static void test_unknown_relay(void) {
  fixture_t *fx = start_federation("refuse_relay", 2);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  honest_t h;
  honest_up(&h, a);
  tuser_t bob;
  tuser_make(&bob, b, "bob");
  tclient_t *cb = tuser_login(&bob);

  uint8_t pk[32], sk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  raw_t r;
  CU_ASSERT_EQUAL(
      raw_session(&r, a, SYNOD__V1__ROLE__ROLE_RELAY, "relay-z", sk, NULL),
      SYNOD_EUNKNOWNPEER);
  CU_ASSERT_EQUAL(raw_closed(&r, T_MS), 0);
  raw_free(&r);
  relay_healthy(&h, "unknown relay");

  CU_ASSERT_EQUAL(raw_session(&r, a, SYNOD__V1__ROLE__ROLE_RELAY,
                              fixture_relay_name(b), sk, NULL),
                  SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(raw_closed(&r, T_MS), 0);
  raw_free(&r);
  relay_healthy(&h, "peer with a wrong key");

  /* Each refusal logged once. */
  CU_ASSERT_EQUAL(log_count(a, "unknown relay refused"), 1);
  CU_ASSERT_EQUAL(log_count(a, "relay with wrong key refused"), 1);

  /* The genuine relay-b still forwards to relay-a and back. */
  uint8_t id[16];
  int acc = -1;
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(h.cfrom, id, bob.id, 64, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL(tclient_wait_rx(cb, 1, 1, T_MS), 0);
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(cb, id, h.to.id, 64, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(tclient_wait_rx(h.cto, h.delivered + 1, 1, T_MS), 0);
  h.delivered++;
  tclient_close(cb);
  honest_down(&h);
  finish(fx);
}

/*
 * Frames of the other role are protocol violations (README section 5):
 * Error{EDENIED, request_id 0} and close; so is a response nobody asked
 * for (EPROTO). The genuine peer key is accepted over a raw session, so the
 * refusals above were about the name and the key alone.
 */
static void test_wrong_role(void) {
  fixture_t *fx = start_federation("refuse_role", 2);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  honest_t h;
  honest_up(&h, a);
  raw_t r;

  /* A client sending Forward. */
  raw_user_session(&r, a, "u1");
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Forward fw = SYNOD__V1__FORWARD__INIT;
  submit_frame_t m;
  submit_frame(&m, h.to.id, 1);
  Synod__V1__Envelope *envs[1] = {&m.e};
  fw.envelopes = envs;
  fw.n_envelopes = 1;
  f.request_id = 1;
  f.body_case = SYNOD__V1__FRAME__BODY_FORWARD;
  f.forward = &fw;
  CU_ASSERT_EQUAL(raw_send_frame(&r, &f), 0);
  expect_error_and_close(&r, SYNOD_EDENIED);
  raw_free(&r);
  relay_healthy(&h, "client forwarding");

  /* A client answering a request nobody made. */
  raw_user_session(&r, a, "u2");
  Synod__V1__Accepted acc = SYNOD__V1__ACCEPTED__INIT;
  acc.message_id.data = m.id;
  acc.message_id.len = 16;
  acc.status = SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED;
  synod__v1__frame__init(&f);
  f.request_id = 5;
  f.body_case = SYNOD__V1__FRAME__BODY_ACCEPTED;
  f.accepted = &acc;
  CU_ASSERT_EQUAL(raw_send_frame(&r, &f), 0);
  expect_error_and_close(&r, SYNOD_EPROTO);
  raw_free(&r);
  relay_healthy(&h, "unsolicited response");

  /* relay-b with its real key is accepted, but may not Submit. */
  char path[4096];
  uint8_t bsk[32];
  snprintf(path, sizeof path, "%s/relay.key", fixture_relay_dir(b));
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_read_secret(bsk, SYNOD_KEY_ED25519, path),
                        0);
  CU_ASSERT_EQUAL_FATAL(raw_session(&r, a, SYNOD__V1__ROLE__ROLE_RELAY,
                                    fixture_relay_name(b), bsk, NULL),
                        0);
  synod_wipe(bsk, sizeof bsk);
  submit_frame(&m, h.to.id, 1);
  CU_ASSERT_EQUAL(raw_send_frame(&r, &m.f), 0);
  expect_error_and_close(&r, SYNOD_EDENIED);
  raw_free(&r);
  relay_healthy(&h, "relay submitting");

  tclient_run_for(h.cto, 200);
  size_t n;
  tclient_rx(h.cto, &n);
  CU_ASSERT_EQUAL(n, h.delivered);
  honest_down(&h);
  finish(fx);
}

/* --- 3. keys, codes and accounts ------------------------------------------ */

/* Runs c's loop until the relay closes it (at most 10 s); asserts it was
 * closed by the relay's Error{EDENIED} (the operator changed the account),
 * and that the relay logged why. */
static void expect_closed_by_operator(fixture_relay_t *r, tclient_t *c,
                                      const char *what) {
  for (int i = 0; i < 100 && tclient_up(c); i++)
    tclient_run_for(c, 100);
  fprintf(stderr, "%s: session up=%d close status=%d\n", what, tclient_up(c),
          tclient_close_status(c));
  CU_ASSERT_FALSE(tclient_up(c));
  CU_ASSERT_EQUAL(tclient_close_status(c), SYNOD_EDENIED);
  CU_ASSERT(log_count(r, "account changed by the operator") > 0);
}

/* The client refusals of README 4.3, each a handshake Error, none of them
 * consuming anything: the right key or code still works afterwards. */
static void test_user_keys(void) {
  fixture_t *fx = start_federation("refuse_keys", 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  honest_t h;
  honest_up(&h, a);
  tuser_t alice, dave;
  tuser_make(&alice, a, "alice");
  tuser_make(&dave, a, "dave");
  char alice_code[FIXTURE_CODE_MAX];
  memcpy(alice_code, alice.code, sizeof alice_code);
  tclient_close(tuser_login(&alice)); /* enrolled with K1 */

  uint8_t pk2[32], sk2[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk2, sk2), 0);
  tclient_t *c = NULL;

  /* Bound to K1, presenting K2. */
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, sk2, NULL), SYNOD_EBADKEY);
  CU_ASSERT_PTR_NULL(c);
  relay_healthy(&h, "wrong key");

  /* A second device with the code the first one used. */
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, sk2, alice_code), SYNOD_EAUTH);
  relay_healthy(&h, "used code");

  /* A wrong code (one character changed, still well-formed), and none. */
  char wrong[FIXTURE_CODE_MAX];
  memcpy(wrong, dave.code, sizeof wrong);
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  CU_ASSERT_EQUAL(connect_as(&c, a, dave.id, dave.sk, wrong), SYNOD_EAUTH);
  CU_ASSERT_EQUAL(connect_as(&c, a, dave.id, dave.sk, NULL), SYNOD_EAUTH);
  relay_healthy(&h, "wrong code");

  /* No such account. */
  char nobody[64];
  snprintf(nobody, sizeof nobody, "nobody@%s", fixture_relay_name(a));
  CU_ASSERT_EQUAL(connect_as(&c, a, nobody, sk2, NULL), SYNOD_EUNKNOWNUSER);
  CU_ASSERT_EQUAL(connect_as(&c, a, nobody, sk2, dave.code),
                  SYNOD_EUNKNOWNUSER);
  relay_healthy(&h, "unknown account");

  /* Nothing was consumed or rebound: dave's real code, alice's real key. */
  tclient_close(tuser_login(&dave));
  tclient_close(tuser_login(&alice));

  /* A disabled account, even with its own key; the session it had open
   * when the operator disabled it is closed at once. */
  tclient_t *open_session = tuser_login(&alice);
  CU_ASSERT_PTR_NOT_NULL_FATAL(open_session);
  int st = -1;
  CU_ASSERT_EQUAL(
      fixture_relay_cmd(a, NULL, 0, &st, "user", "disable", "alice"), 0);
  CU_ASSERT_EQUAL(st, 0);
  expect_closed_by_operator(a, open_session, "disable");
  tclient_close(open_session);
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, alice.sk, NULL), SYNOD_EDENIED);
  relay_healthy(&h, "disabled account");
  CU_ASSERT_EQUAL(log_count(a, "client refused"), 7);

  honest_down(&h);
  finish(fx);
}

/* `synod-relay user reenroll`: the account's key is unbound at once (the
 * old key is refused with and without the old code), the new code binds
 * the first key that presents it, once; afterwards the old key is just
 * another key (EBADKEY). */
static void test_reenroll(void) {
  fixture_t *fx = start_federation("refuse_reenroll", 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  honest_t h;
  honest_up(&h, a);
  tuser_t alice;
  tuser_make(&alice, a, "alice");
  tclient_t *open_session = tuser_login(&alice); /* enrolled with K1 */
  CU_ASSERT_PTR_NOT_NULL_FATAL(open_session);

  char out[4096], code[FIXTURE_CODE_MAX];
  int st = -1;
  CU_ASSERT_EQUAL(
      fixture_relay_cmd(a, out, sizeof out, &st, "user", "reenroll", "nobody"),
      0);
  CU_ASSERT_EQUAL(st, 1);
  CU_ASSERT_EQUAL_FATAL(
      fixture_relay_cmd(a, out, sizeof out, &st, "user", "reenroll", "alice"),
      0);
  CU_ASSERT_EQUAL_FATAL(st, 0);
  const char *cp = strstr(out, "enrolment code: ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(cp);
  snprintf(code, sizeof code, "%.*s", (int)strcspn(cp + 16, "\n"), cp + 16);
  /* The session K1 still had open ends with the binding. */
  expect_closed_by_operator(a, open_session, "reenroll");
  tclient_close(open_session);

  uint8_t pk2[32], sk2[32], pk3[32], sk3[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk2, sk2), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk3, sk3), 0);
  tclient_t *c = NULL;
  /* The old key, unbound: refused. */
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, alice.sk, NULL), SYNOD_EAUTH);
  CU_ASSERT_PTR_NULL(c);
  /* A new key without the code, with a wrong one: refused. */
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, sk2, NULL), SYNOD_EAUTH);
  char wrong[FIXTURE_CODE_MAX];
  memcpy(wrong, code, sizeof wrong);
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, sk2, wrong), SYNOD_EAUTH);
  relay_healthy(&h, "reenrolled account");
  /* The code binds K2, once. */
  CU_ASSERT_EQUAL_FATAL(connect_as(&c, a, alice.id, sk2, code), 0);
  tclient_close(c);
  c = NULL;
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, sk2, NULL), 0);
  tclient_close(c);
  c = NULL;
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, sk3, code), SYNOD_EAUTH);
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, alice.sk, NULL), SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(connect_as(&c, a, alice.id, alice.sk, code), SYNOD_EAUTH);
  CU_ASSERT_PTR_NULL(c);
  relay_healthy(&h, "after reenrolment");
  synod_wipe(sk2, sizeof sk2);
  synod_wipe(sk3, sizeof sk3);

  /* Codes expire (enroll_code_ttl; the admin commands read it from the
   * configuration): an expired code binds nothing, `user list` says so,
   * and a re-enrolment issues a fresh one. */
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(a, "limits", "enroll_code_ttl", "1s"),
                        0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL_FATAL(
      fixture_relay_cmd(a, out, sizeof out, &st, "user", "add", "erin"), 0);
  CU_ASSERT_EQUAL_FATAL(st, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "valid until: "));
  cp = strstr(out, "enrolment code: ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(cp);
  snprintf(code, sizeof code, "%.*s", (int)strcspn(cp + 16, "\n"), cp + 16);
  usleep(1500 * 1000);
  char erin[64];
  snprintf(erin, sizeof erin, "erin@%s", fixture_relay_name(a));
  uint8_t pk4[32], sk4[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk4, sk4), 0);
  CU_ASSERT_EQUAL(connect_as(&c, a, erin, sk4, code), SYNOD_EAUTH);
  CU_ASSERT_PTR_NULL(c);
  CU_ASSERT_EQUAL(
      fixture_relay_cmd(a, out, sizeof out, &st, "user", "list", "--json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"state\": \"expired\""));
  CU_ASSERT_EQUAL_FATAL(
      fixture_relay_cmd(a, out, sizeof out, &st, "user", "reenroll", "erin"),
      0);
  CU_ASSERT_EQUAL_FATAL(st, 0);
  cp = strstr(out, "enrolment code: ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(cp);
  snprintf(code, sizeof code, "%.*s", (int)strcspn(cp + 16, "\n"), cp + 16);
  CU_ASSERT_EQUAL(connect_as(&c, a, erin, sk4, code), 0);
  tclient_close(c);
  c = NULL;
  synod_wipe(sk4, sizeof sk4);
  relay_healthy(&h, "expired code");

  honest_down(&h);
  finish(fx);
}

/* --- 4. frames ------------------------------------------------------------ */

/* Frames the decoder or the parser refuses, before and after
 * authentication, and bytes that are not TLS at all. */
static void test_bad_frames(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "refuse_frames"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 1), 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  CU_ASSERT_EQUAL_FATAL(
      fixture_relay_set(a, "limits", "max_frame_bytes", "100000"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  honest_t h;
  honest_up(&h, a);
  raw_t r;

  /* A length one over max_frame_bytes, after authentication. */
  raw_user_session(&r, a, "u1");
  const uint8_t over[4] = {0x00, 0x01, 0x86, 0xa1}; /* 100001 */
  CU_ASSERT_EQUAL(raw_write(&r, over, sizeof over), 0);
  expect_error_and_close(&r, SYNOD_ETOOBIG);
  raw_free(&r);
  relay_healthy(&h, "frame over max_frame_bytes");

  /* 4 GiB - 1 announced straight after TLS, instead of Hello. */
  CU_ASSERT_EQUAL_FATAL(raw_tls(&r, fixture_relay_port(a), 0), 0);
  const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  CU_ASSERT_EQUAL(raw_write(&r, huge, sizeof huge), 0);
  expect_error_and_close(&r, SYNOD_ETOOBIG);
  raw_free(&r);
  relay_healthy(&h, "4 GiB frame");

  /* A body that is not a protobuf Frame, after authentication. */
  raw_user_session(&r, a, "u2");
  const uint8_t bad[] = {0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff};
  CU_ASSERT_EQUAL(raw_write(&r, bad, sizeof bad), 0);
  expect_error_and_close(&r, SYNOD_EPARSE);
  raw_free(&r);
  relay_healthy(&h, "malformed protobuf");

  /* A Frame that parses but has no body: request_id = 1 only. */
  raw_user_session(&r, a, "u3");
  const uint8_t nobody[] = {0x00, 0x00, 0x00, 0x02, 0x08, 0x01};
  CU_ASSERT_EQUAL(raw_write(&r, nobody, sizeof nobody), 0);
  expect_error_and_close(&r, SYNOD_EPROTO);
  raw_free(&r);
  relay_healthy(&h, "frame without a body");

  /* A zero-length frame. */
  raw_user_session(&r, a, "u4");
  const uint8_t empty[] = {0x00, 0x00, 0x00, 0x00};
  CU_ASSERT_EQUAL(raw_write(&r, empty, sizeof empty), 0);
  expect_error_and_close(&r, SYNOD_EPROTO);
  raw_free(&r);
  relay_healthy(&h, "empty frame");

  /* A frame cut short by the end of the stream: the relay drops it and
   * closes; nothing is delivered. */
  int before = log_count(a, "ETRUNC");
  raw_user_session(&r, a, "u5");
  submit_frame_t m;
  submit_frame(&m, h.to.id, 1);
  uint8_t *buf = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(synod_wire_pack(&m.f, SYNOD_FRAME_HARD_MAX, &buf, &len),
                        0);
  CU_ASSERT_EQUAL(raw_write(&r, buf, len / 2), 0);
  free(buf);
  CU_ASSERT_EQUAL(shutdown(r.fd, SHUT_WR), 0);
  CU_ASSERT_EQUAL(raw_closed(&r, T_MS), 0);
  raw_free(&r);
  relay_healthy(&h, "truncated frame");
  CU_ASSERT_EQUAL(log_count(a, "ETRUNC"), before + 1);

  /* Garbage on plain TCP, where TLS is expected. */
  CU_ASSERT_EQUAL_FATAL(raw_tcp(&r, fixture_relay_port(a), 0), 0);
  static const char junk[] = "GET / HTTP/1.1\r\nHost: relay\r\n\r\n"
                             "\x00\x01\x02\x03\xff\xfe\xfd garbage";
  CU_ASSERT_EQUAL(raw_send_all(&r, (const uint8_t *)junk, sizeof junk,
                               raw_now_ms() + RAW_SEND_MS),
                  0);
  CU_ASSERT_EQUAL(raw_closed(&r, T_MS), 0);
  raw_free(&r);
  relay_healthy(&h, "garbage on TCP");

  /* Random bytes inside TLS, instead of a frame. */
  CU_ASSERT_EQUAL_FATAL(raw_tls(&r, fixture_relay_port(a), 0), 0);
  const uint8_t noise[] = {0x00, 0x00, 0x00, 0x08, 0x13, 0x37,
                           0xde, 0xad, 0xbe, 0xef, 0x99, 0x42};
  CU_ASSERT_EQUAL(raw_write(&r, noise, sizeof noise), 0);
  expect_error_and_close(&r, SYNOD_EPARSE);
  raw_free(&r);
  relay_healthy(&h, "garbage in TLS");

  tclient_run_for(h.cto, 200);
  size_t n;
  tclient_rx(h.cto, &n);
  CU_ASSERT_EQUAL(n, h.delivered); /* the cut-short Submit went nowhere */
  honest_down(&h);
  finish(fx);
}

/* --- 5. unknown recipients ------------------------------------------------ */

/* README 8.3 and 10: an unknown local recipient is a request error; an
 * unknown remote one is accepted, refused by its relay and comes back as a
 * signed delivery failure; a relay without a peer link: EUNKNOWNPEER. */
static void test_unknown_recipient(void) {
  fixture_t *fx = start_federation("refuse_recipient", 2);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  honest_t h;
  honest_up(&h, a);
  tuser_t alice;
  tuser_make(&alice, a, "alice");
  tclient_t *ca = tuser_login(&alice);
  char rcpt[64];
  uint8_t id[16];
  int acc = -1;

  snprintf(rcpt, sizeof rcpt, "nobody@%s", fixture_relay_name(a));
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(ca, id, rcpt, 64, 0, &acc, T_MS),
                  SYNOD_EUNKNOWNUSER);
  CU_ASSERT(tclient_up(ca));
  relay_healthy(&h, "unknown local recipient");

  snprintf(rcpt, sizeof rcpt, "x@relay-z");
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(ca, id, rcpt, 64, 0, &acc, T_MS),
                  SYNOD_EUNKNOWNPEER);
  CU_ASSERT(tclient_up(ca));
  relay_healthy(&h, "recipient of an unknown relay");

  snprintf(rcpt, sizeof rcpt, "nobody@%s", fixture_relay_name(b));
  tclient_random_id(id);
  acc = -1;
  CU_ASSERT_EQUAL(tclient_submit(ca, id, rcpt, 64, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL(tclient_wait_failures(ca, 1, T_MS), 0);
  uint8_t fid[2][16];
  int codes[2] = {0, 0};
  CU_ASSERT_EQUAL(tclient_failures(ca, fid, codes, 2), 1);
  CU_ASSERT_EQUAL(memcmp(fid[0], id, 16), 0);
  CU_ASSERT_EQUAL(codes[0], SYNOD_EUNKNOWNUSER);
  CU_ASSERT(tclient_up(ca));
  relay_healthy(&h, "unknown remote recipient");

  /* Nothing is left on either side for it. */
  int64_t v = -1;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(a),
                                       "SELECT count(*) FROM outbox"
                                       " WHERE envelope IS NOT NULL",
                                       &v),
                  0);
  CU_ASSERT_EQUAL(v, 0);
  CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(b),
                                       "SELECT count(*) FROM inbox", &v),
                  0);
  CU_ASSERT_EQUAL(v, 0);
  tclient_close(ca);
  honest_down(&h);
  finish(fx);
}

/* --- 6. limits ------------------------------------------------------------ */

/* message_rate 5/s, burst 5: a burst of 20 gets ERATE for some, the
 * session stays, and after a pause sending works again. */
static void test_rate_limit(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "refuse_rate"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 1), 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(a, "limits", "message_rate", "5"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(a, "limits", "message_burst", "5"),
                        0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  honest_t h;
  honest_up(&h, a);
  tuser_t alice;
  tuser_make(&alice, a, "alice");
  tclient_t *ca = tuser_login(&alice);

  enum { N = 20 };
  for (int i = 0; i < N; i++) {
    uint8_t id[16];
    tclient_random_id(id);
    CU_ASSERT_EQUAL(tclient_submit_async(ca, id, h.to.id, 64, 0), 0);
  }
  size_t ok = 0, err = 0;
  for (int i = 0; i < 200 && ok + err < N; i++) {
    tclient_run_for(ca, 50);
    tclient_answers(ca, &ok, &err);
  }
  CU_ASSERT_EQUAL(ok + err, N);
  CU_ASSERT(ok >= 5);
  CU_ASSERT(ok < N);
  CU_ASSERT(err > 0);
  CU_ASSERT_EQUAL(tclient_last_error(ca, NULL), SYNOD_ERATE);
  CU_ASSERT(tclient_up(ca));
  /* iris got exactly what was accepted (she acknowledges as they come). */
  CU_ASSERT_EQUAL(tclient_wait_rx(h.cto, ok, 1, T_MS), 0);
  h.delivered = ok;
  /* Another account's bucket is its own. */
  relay_healthy(&h, "rate limit");

  /* The bucket refills. */
  tclient_run_for(ca, 1200);
  uint8_t id[16];
  int acc = -1;
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(ca, id, h.to.id, 64, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL(tclient_wait_rx(h.cto, ++h.delivered, 1, T_MS), 0);

  /* The limit is the account's: a second session of alice's draws from
   * the same bucket (at most 4 tokens left plus a little refill), where
   * a bucket per session would have let it send 5 more on its own. */
  tclient_t *ca2 = tuser_login(&alice);
  for (int i = 0; i < N; i++) {
    tclient_random_id(id);
    CU_ASSERT_EQUAL(tclient_submit_async(ca2, id, h.to.id, 64, 0), 0);
    tclient_random_id(id);
    CU_ASSERT_EQUAL(tclient_submit_async(ca, id, h.to.id, 64, 0), 0);
  }
  size_t ok1 = 0, err1 = 0, ok2 = 0, err2 = 0;
  for (int i = 0; i < 200 && ok1 + err1 + ok2 + err2 < 2 * N + ok + err; i++) {
    tclient_run_for(ca, 25);
    tclient_run_for(ca2, 25);
    tclient_answers(ca, &ok1, &err1);
    tclient_answers(ca2, &ok2, &err2);
  }
  CU_ASSERT_EQUAL(ok1 + err1 - ok - err + ok2 + err2, 2 * N);
  size_t burst2 = ok1 - ok + ok2;
  CU_ASSERT(burst2 >= 1);
  CU_ASSERT(burst2 <= 7);
  CU_ASSERT_EQUAL(tclient_wait_rx(h.cto, h.delivered + burst2, 1, T_MS), 0);
  h.delivered += burst2;
  tclient_close(ca2);
  tclient_close(ca);
  honest_down(&h);
  finish(fx);
}

/* quota_bytes just over one max envelope: an offline recipient's inbox
 * fills and further messages get EQUOTA until it drains. */
static void test_quota(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "refuse_quota"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 1), 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(a, "limits", "quota_bytes", "70000"),
                        0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  honest_t h;
  honest_up(&h, a);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, a, "bob");
  tclient_close(tuser_login(&bob)); /* enrolled, offline */
  tclient_t *ca = tuser_login(&alice);

  /* 20000-byte ciphertexts: three fit in 70000 bytes, a fourth does not. */
  int acc = -1, stored = 0, rc = 0;
  uint8_t id[16];
  for (int i = 0; i < 10; i++) {
    tclient_random_id(id);
    rc = tclient_submit(ca, id, bob.id, 20000, 0, &acc, T_MS);
    if (rc != 0)
      break;
    CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
    stored++;
  }
  CU_ASSERT_EQUAL(stored, 3);
  CU_ASSERT_EQUAL(rc, SYNOD_EQUOTA);
  CU_ASSERT(tclient_up(ca));
  relay_healthy(&h, "quota");

  /* Bob drains his inbox: there is room again. */
  tclient_t *cb = tuser_login(&bob);
  CU_ASSERT_EQUAL(tclient_wait_rx(cb, 3, 1, T_MS), 0);
  /* Deliveries that came with Ready, before any wait, were not
   * acknowledged automatically: acknowledge all of them. */
  size_t nrx;
  const tclient_rx_t *rx = tclient_rx(cb, &nrx);
  CU_ASSERT_EQUAL_FATAL(nrx, 3);
  uint8_t got[3][16];
  for (size_t i = 0; i < 3; i++)
    memcpy(got[i], rx[i].id, 16);
  CU_ASSERT_EQUAL(tclient_ack(cb, (const uint8_t(*)[16])got, 3, 100), 0);
  int64_t v = -1;
  for (int i = 0; i < 50 && v != 0; i++) {
    tclient_run_for(cb, 50);
    CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(a),
                                         "SELECT stored_bytes FROM accounts"
                                         " WHERE name = 'bob'",
                                         &v),
                    0);
  }
  CU_ASSERT_EQUAL(v, 0);
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(ca, id, bob.id, 20000, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL(tclient_wait_rx(cb, 4, 1, T_MS), 0);
  tclient_close(cb);
  tclient_close(ca);
  honest_down(&h);
  finish(fx);
}

/* handshake_timeout closes a silent connection; max_connections refuses
 * the connections beyond it with ELIMIT. A single relay, so no peer link
 * takes a connection slot. */
static void test_connection_limits(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "refuse_conns"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 1), 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0);
  CU_ASSERT_EQUAL_FATAL(
      fixture_relay_set(a, "limits", "handshake_timeout", "300ms"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(a, "limits", "max_connections", "3"),
                        0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  tuser_t u[5];
  static const char *const names[5] = {"ann", "ben", "cat", "dan", "eve"};
  for (int i = 0; i < 5; i++)
    tuser_make(&u[i], a, names[i]);

  /* Plain TCP that never speaks: closed after the handshake timeout. */
  raw_t r;
  CU_ASSERT_EQUAL_FATAL(raw_tcp(&r, fixture_relay_port(a), 0), 0);
  int64_t t0 = raw_now_ms();
  CU_ASSERT_EQUAL(raw_closed(&r, 3000), 0);
  int64_t took = raw_now_ms() - t0;
  CU_ASSERT(took >= 250);
  CU_ASSERT(took <= 1200);
  raw_free(&r);

  /* TLS up but no Hello: told ETIMEDOUT, then closed. */
  CU_ASSERT_EQUAL_FATAL(raw_tls(&r, fixture_relay_port(a), 0), 0);
  t0 = raw_now_ms();
  expect_error_and_close(&r, SYNOD_ETIMEDOUT);
  CU_ASSERT(raw_now_ms() - t0 <= 1200);
  raw_free(&r);

  /* Three sessions fit; the fourth and fifth are refused. */
  tclient_t *c[5] = {NULL};
  for (int i = 0; i < 3; i++)
    c[i] = tuser_login(&u[i]);
  for (int i = 3; i < 5; i++) {
    CU_ASSERT_EQUAL(connect_as(&c[i], a, u[i].id, u[i].sk, u[i].code),
                    SYNOD_ELIMIT);
    CU_ASSERT_PTR_NULL(c[i]);
  }
  /* The three are untouched: ann -> ben. */
  honest_t h;
  memset(&h, 0, sizeof h);
  h.relay = a;
  h.from = u[0];
  h.to = u[1];
  h.cfrom = c[0];
  h.cto = c[1];
  relay_healthy(&h, "max_connections");

  /* A slot freed is a slot taken: dan, refused above, enrols now (his
   * code was not consumed by the refusal). */
  tclient_close(c[2]);
  int rc = SYNOD_ELIMIT;
  for (int i = 0; i < 50 && rc == SYNOD_ELIMIT; i++) {
    rc = connect_as(&c[3], a, u[3].id, u[3].sk, u[3].code);
    if (rc == SYNOD_ELIMIT)
      sleep_ms(50); /* the relay may not have seen cat go yet */
  }
  CU_ASSERT_EQUAL(rc, 0);
  relay_healthy(&h, "a freed slot");
  tclient_close(c[3]);
  honest_down(&h);
  finish(fx);
}

/* --- 7. visitors ---------------------------------------------------------- */

/* A user of relay-b connecting to relay-a is a visitor: its session is
 * accepted, but messaging requests are request errors EDENIED, and the
 * session stays open. */
static void test_visitor(void) {
  fixture_t *fx = start_federation("refuse_visitor", 2);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  honest_t h;
  honest_up(&h, a);
  tuser_t carol;
  tuser_make(&carol, b, "carol");
  tclient_t *cv = NULL;
  CU_ASSERT_EQUAL_FATAL(connect_as(&cv, a, carol.id, carol.sk, NULL), 0);

  uint8_t id[16];
  int acc = -1;
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(cv, id, h.to.id, 64, 0, &acc, T_MS),
                  SYNOD_EDENIED);
  CU_ASSERT(tclient_up(cv));
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(cv, id, carol.id, 64, 0, &acc, T_MS),
                  SYNOD_EDENIED);
  CU_ASSERT(tclient_up(cv));
  relay_healthy(&h, "visitor submit");

  /* Nothing was stored for anyone. */
  int64_t v = -1;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(a),
                                       "SELECT count(*) FROM outbox", &v),
                  0);
  CU_ASSERT_EQUAL(v, 0);
  tclient_close(cv);
  honest_down(&h);
  finish(fx);
}

static CU_TestInfo refusal_tests[] = {
    {"unauthenticated_send", test_unauthenticated_send},
    {"unknown_relay", test_unknown_relay},
    {"wrong_role", test_wrong_role},
    {"user_keys", test_user_keys},
    {"reenroll", test_reenroll},
    {"bad_frames", test_bad_frames},
    {"unknown_recipient", test_unknown_recipient},
    {"rate_limit", test_rate_limit},
    {"quota", test_quota},
    {"connection_limits", test_connection_limits},
    {"visitor", test_visitor},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"refusals", NULL, NULL, NULL, fixture_teardown, refusal_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
