/* Suite for relay/sessproto.c: the session's phases, roles, frame kinds
 * and request checks, without a socket. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "sessproto.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/keyfile.h"
#include "synod/sig.h"
#include "synod/wire.h"

static relay_config_t cfg;
static uint8_t peer_pk[32], peer_sk[32], user_pk[32], user_sk[32];

static int setup(void) {
  char kl[SYNOD_KEYFILE_TEXT_MAX], text[1024], err[CONFIG_ERR_MAX];
  if (synod_ed25519_keygen(peer_pk, peer_sk) != 0 ||
      synod_ed25519_keygen(user_pk, user_sk) != 0 ||
      synod_keyfile_format_public(kl, sizeof kl, SYNOD_KEY_ED25519, peer_pk) !=
          0)
    return -1;
  snprintf(text, sizeof text,
           "[relay]\nname = relay-a.test\nlisten = 127.0.0.1:7400\n"
           "key_file = relay.key\n[database]\nconninfo = dbname=x\n"
           "[peer \"relay-b.test\"]\naddress = 127.0.0.1:7401\nkey = %s\n"
           "operator = op-b\n",
           kl);
  int rc =
      config_load_buffer(&cfg, "t.conf", text, strlen(text), err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "%s\n", err);
  return rc;
}

static int teardown(void) {
  config_free(&cfg);
  return 0;
}

static void peer_of(synod_handshake_peer_t *p, Synod__V1__Role role,
                    const char *name, const uint8_t key[32]) {
  memset(p, 0, sizeof *p);
  p->role = role;
  p->name = synod_wire_lend(name);
  memcpy(p->public_key, key, 32);
}

static void test_auth(void) {
  sessproto_t sp;
  sessproto_decision_t d;
  synod_handshake_peer_t p;

  /* A configured peer with its pinned key: accepted, a relay. */
  sessproto_init(&sp, &cfg);
  peer_of(&p, SYNOD__V1__ROLE__ROLE_RELAY, "relay-b.test", peer_pk);
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_ACCEPT);
  CU_ASSERT_EQUAL(sp.role, SESSPROTO_RELAY);
  CU_ASSERT_EQUAL(sp.phase, SESSPROTO_READY);
  /* Authenticating twice is refused. */
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_REFUSE);
  CU_ASSERT_EQUAL(d.code, SYNOD_EPROTO);
  sessproto_free(&sp);

  /* The peer's name with another key; an unknown relay. */
  sessproto_init(&sp, &cfg);
  peer_of(&p, SYNOD__V1__ROLE__ROLE_RELAY, "relay-b.test", user_pk);
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.code, SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(sp.phase, SESSPROTO_CLOSED);
  sessproto_init(&sp, &cfg);
  peer_of(&p, SYNOD__V1__ROLE__ROLE_RELAY, "relay-z.test", peer_pk);
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.code, SYNOD_EUNKNOWNPEER);

  /* A user of another relay is a visitor, accepted at once. */
  sessproto_init(&sp, &cfg);
  peer_of(&p, SYNOD__V1__ROLE__ROLE_CLIENT, "bob@relay-b.test", user_pk);
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_ACCEPT);
  CU_ASSERT_EQUAL(sp.role, SESSPROTO_VISITOR);
  CU_ASSERT_STRING_EQUAL(sp.user, "bob@relay-b.test");
  sessproto_free(&sp);

  /* A user of this relay: the account is looked up first. */
  sessproto_init(&sp, &cfg);
  peer_of(&p, SYNOD__V1__ROLE__ROLE_CLIENT, "alice@relay-a.test", user_pk);
  char code[] = "abcde-fghij-klmno-pqrst";
  p.enrollment_code = code;
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_LOOKUP);
  CU_ASSERT_STRING_EQUAL(d.local, "alice");
  CU_ASSERT(d.has_code);
  CU_ASSERT_EQUAL(sp.phase, SESSPROTO_AUTHENTICATING);
  sessproto_auth_done(&sp, &d, SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_REFUSE);
  CU_ASSERT_EQUAL(d.code, SYNOD_EBADKEY);
  CU_ASSERT_STRING_EQUAL(d.why, "the account is bound to another identity key");
  sessproto_free(&sp);
  sessproto_init(&sp, &cfg);
  p.enrollment_code = NULL;
  sessproto_auth(&sp, &d, &p, 0, 1);
  sessproto_auth_done(&sp, &d, SYNOD_EDB);
  CU_ASSERT_EQUAL(d.code, SYNOD_EINTERNAL); /* details stay in the log */
  sessproto_free(&sp);

  /* Stopping, full, malformed: refused before anything else. */
  sessproto_init(&sp, &cfg);
  sessproto_auth(&sp, &d, &p, 1, 1);
  CU_ASSERT_EQUAL(d.code, SYNOD_EAGAIN);
  sessproto_init(&sp, &cfg);
  sessproto_auth(&sp, &d, &p, 0, cfg.max_connections + 1);
  CU_ASSERT_EQUAL(d.code, SYNOD_ELIMIT);
  sessproto_init(&sp, &cfg);
  peer_of(&p, SYNOD__V1__ROLE__ROLE_CLIENT, "no-at-sign", user_pk);
  sessproto_auth(&sp, &d, &p, 0, 1);
  CU_ASSERT_EQUAL(d.code, SYNOD_EPARSE);
}

/* The decision for a frame of kind body (its message all defaults) from a
 * session of role. */
static sessproto_decision_t decide(sessproto_role_t role,
                                   Synod__V1__Frame__BodyCase body,
                                   sessproto_phase_t *phase) {
  static Synod__V1__Ping any; /* every body kind reads as defaults */
  static Synod__V1__Submit submit;
  static Synod__V1__Forward forward;
  static Synod__V1__DeliveryAck ack;
  synod__v1__ping__init(&any);
  synod__v1__submit__init(&submit);
  synod__v1__forward__init(&forward);
  synod__v1__delivery_ack__init(&ack);
  sessproto_t sp;
  sessproto_init(&sp, &cfg);
  sp.phase = SESSPROTO_READY;
  sp.role = role;
  Synod__V1__Frame f;
  synod__v1__frame__init(&f);
  f.body_case = body;
  f.ping = &any;
  if (body == SYNOD__V1__FRAME__BODY_SUBMIT)
    f.submit = &submit;
  if (body == SYNOD__V1__FRAME__BODY_FORWARD)
    f.forward = &forward;
  if (body == SYNOD__V1__FRAME__BODY_DELIVERY_ACK)
    f.delivery_ack = &ack;
  sessproto_decision_t d;
  sessproto_frame(&sp, &d, &f);
  *phase = sp.phase;
  return d;
}

static void test_frames(void) {
  sessproto_phase_t ph;
  sessproto_decision_t d;

  /* Before authentication nothing but the handshake. */
  sessproto_t sp;
  sessproto_init(&sp, &cfg);
  Synod__V1__Frame f;
  Synod__V1__Ping ping;
  synod__v1__frame__init(&f);
  synod__v1__ping__init(&ping);
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &ping;
  sessproto_frame(&sp, &d, &f);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_CLOSE);
  CU_ASSERT_EQUAL(d.code, SYNOD_EPROTO);
  CU_ASSERT_EQUAL(sp.phase, SESSPROTO_CLOSED);

  /* Frames of the other role close the connection, EDENIED. */
  d = decide(SESSPROTO_RELAY, SYNOD__V1__FRAME__BODY_SUBMIT, &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EDENIED);
  CU_ASSERT_EQUAL(ph, SESSPROTO_CLOSED);
  d = decide(SESSPROTO_RELAY, SYNOD__V1__FRAME__BODY_PUBLISH, &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EDENIED);
  d = decide(SESSPROTO_MEMBER, SYNOD__V1__FRAME__BODY_FORWARD, &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EDENIED);
  d = decide(SESSPROTO_VISITOR, SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT,
             &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EDENIED);
  /* Answers nobody asked for and handshake frames: EPROTO. */
  d = decide(SESSPROTO_MEMBER, SYNOD__V1__FRAME__BODY_DELIVER, &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EPROTO);
  d = decide(SESSPROTO_RELAY, SYNOD__V1__FRAME__BODY_HELLO, &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EPROTO);
  d = decide(SESSPROTO_VISITOR, SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER, &ph);
  CU_ASSERT(d.act == SESSPROTO_CLOSE && d.code == SYNOD_EPROTO);

  /* A visitor's messaging request is a request error; its directory
   * request goes through. */
  d = decide(SESSPROTO_VISITOR, SYNOD__V1__FRAME__BODY_FETCH, &ph);
  CU_ASSERT(d.act == SESSPROTO_ERROR && d.code == SYNOD_EDENIED);
  CU_ASSERT_EQUAL(ph, SESSPROTO_READY);
  d = decide(SESSPROTO_VISITOR, SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST, &ph);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_DIRECTORY);

  /* Shapes checked here: a Submit needs an envelope, a Forward 1..1024
   * items, an empty DeliveryAck is ignored. */
  d = decide(SESSPROTO_MEMBER, SYNOD__V1__FRAME__BODY_SUBMIT, &ph);
  CU_ASSERT(d.act == SESSPROTO_ERROR && d.code == SYNOD_EPARSE);
  d = decide(SESSPROTO_RELAY, SYNOD__V1__FRAME__BODY_FORWARD, &ph);
  CU_ASSERT(d.act == SESSPROTO_ERROR && d.code == SYNOD_EPARSE);
  d = decide(SESSPROTO_MEMBER, SYNOD__V1__FRAME__BODY_DELIVERY_ACK, &ph);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_IGNORE);
  d = decide(SESSPROTO_MEMBER, SYNOD__V1__FRAME__BODY_PING, &ph);
  CU_ASSERT_EQUAL(d.act, SESSPROTO_PONG);
}

/* A purge by user, signed with sk, at time t. */
static void signed_purge(Synod__V1__Purge *m, uint8_t *body, size_t *len,
                         uint8_t sig[64], const char *user, uint64_t t,
                         const uint8_t sk[32]) {
  Synod__V1__PurgeBody b;
  synod__v1__purge_body__init(&b);
  b.user_id = synod_wire_lend(user);
  b.scope = SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL;
  b.time = t;
  *len = synod__v1__purge_body__pack(&b, body);
  CU_ASSERT_EQUAL(synod_sig_sign(sig, SYNOD_SIG_PURGE, body, *len, sk), 0);
  synod__v1__purge__init(m);
  m->body.data = body;
  m->body.len = *len;
  m->signature.data = sig;
  m->signature.len = 64;
}

static void test_purge(void) {
  sessproto_t sp;
  sessproto_init(&sp, &cfg);
  sp.phase = SESSPROTO_READY;
  sp.role = SESSPROTO_MEMBER;
  sp.user = strdup("alice@relay-a.test");
  memcpy(sp.key, user_pk, 32);
  Synod__V1__Purge m;
  Synod__V1__PurgeBody *b;
  uint8_t body[256], sig[64];
  size_t len;
  const char *why = NULL;

  signed_purge(&m, body, &len, sig, "alice@relay-a.test", 1000, user_sk);
  CU_ASSERT_EQUAL(sessproto_purge(&sp, &m, 1000, &b, &why), 0);
  CU_ASSERT_PTR_NOT_NULL(b);
  synod_wire_free_message(&b->base);
  /* Dated more than 300 s ahead; another user; another key. */
  CU_ASSERT_EQUAL(sessproto_purge(&sp, &m, 699, &b, &why), SYNOD_EINVAL);
  CU_ASSERT_PTR_NULL(b);
  signed_purge(&m, body, &len, sig, "carol@relay-a.test", 1000, user_sk);
  CU_ASSERT_EQUAL(sessproto_purge(&sp, &m, 1000, &b, &why), SYNOD_EDENIED);
  signed_purge(&m, body, &len, sig, "alice@relay-a.test", 1000, peer_sk);
  CU_ASSERT_EQUAL(sessproto_purge(&sp, &m, 1000, &b, &why), SYNOD_EVERIFY);
  CU_ASSERT_STRING_EQUAL(why, "purge not signed by this user's identity key");
  CU_ASSERT_EQUAL(sessproto_purge(&sp, NULL, 1000, &b, &why), SYNOD_EPARSE);
  sessproto_free(&sp);

  /* From a peer: any user of the peer's namespace, no user signature. */
  sessproto_init(&sp, &cfg);
  sp.phase = SESSPROTO_READY;
  sp.role = SESSPROTO_RELAY;
  sp.peer = config_find_peer(&cfg, "relay-b.test");
  signed_purge(&m, body, &len, sig, "bob@relay-b.test", 1000, user_sk);
  CU_ASSERT_EQUAL(sessproto_purge(&sp, &m, 1000, &b, &why), 0);
  synod_wire_free_message(&b->base);
  signed_purge(&m, body, &len, sig, "alice@relay-a.test", 1000, user_sk);
  CU_ASSERT_EQUAL(sessproto_purge(&sp, &m, 1000, &b, &why), SYNOD_EDENIED);
}

static CU_TestInfo sessproto_tests[] = {
    {"auth", test_auth},
    {"frames", test_frames},
    {"purge", test_purge},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"sessproto", setup, teardown, NULL, NULL, sessproto_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
