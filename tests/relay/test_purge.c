/*
 * Integration suite: purge on real relays and a real PostgreSQL. A purge
 * signed by the user's identity key deletes what the relays store for them
 * (everything, one conversation, or given ids): their inbox, their
 * undelivered outbound messages, and, forwarded as a PeerPurge, what they
 * sent that waits at the recipient's relay. Each test checks the rows in
 * the databases, not only the relay's answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "synod/crypto.h"
#include "synod/sig.h"
#include "synod/wire.h"
#include "tclient.h"
#include "tusers.h"

#define T_MS 10000

static void send_n(tclient_t *c, const char *to, size_t n, uint8_t (*ids)[16]) {
  for (size_t i = 0; i < n; i++) {
    int acc = -1;
    uint8_t id[16];
    tclient_random_id(ids ? ids[i] : id);
    CU_ASSERT_EQUAL(
        tclient_submit(c, ids ? ids[i] : id, to, 100, 0, &acc, T_MS), 0);
    CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  }
}

/* "SELECT count(*) FROM inbox i JOIN accounts a ... WHERE a.name = 'local'
 * AND <cond>" */
static int64_t inbox_count(fixture_relay_t *r, const char *local,
                           const char *cond) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM inbox i JOIN accounts a ON a.id = i.account_id"
           " WHERE a.name = '%s' AND %s",
           local, cond);
  return tuser_q(r, sql);
}

static int64_t stored_bytes(fixture_relay_t *r, const char *local) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT stored_bytes FROM accounts WHERE name = '%s'", local);
  return tuser_q(r, sql);
}

/* bob on relay-b holds 4 messages from alice (relay-a) and 3 from carol
 * (relay-b), undelivered: everything committed in bob's inbox. */
typedef struct scene {
  fixture_t *fx;
  fixture_relay_t *a, *b;
  tuser_t alice, bob, carol;
  tclient_t *ca, *cc;
  uint8_t from_alice[4][16], from_carol[3][16];
} scene_t;

static void scene_up(scene_t *s, const char *name) {
  memset(s, 0, sizeof *s);
  s->fx = tuser_federation(name, 2, 0);
  s->a = fixture_relay_at(s->fx, 0);
  s->b = fixture_relay_at(s->fx, 1);
  tuser_make(&s->alice, s->a, "alice");
  tuser_make(&s->bob, s->b, "bob");
  tuser_make(&s->carol, s->b, "carol");
  tclient_close(tuser_login(&s->bob));
  s->ca = tuser_login(&s->alice);
  s->cc = tuser_login(&s->carol);
  send_n(s->ca, s->bob.id, 4, s->from_alice);
  send_n(s->cc, s->bob.id, 3, s->from_carol);
  CU_ASSERT_EQUAL_FATAL(
      tuser_q_until(s->b, s->ca,
                    "SELECT count(*) FROM inbox WHERE envelope IS NOT NULL", 7,
                    T_MS),
      7);
  CU_ASSERT(stored_bytes(s->b, "bob") > 0);
}

static void scene_down(scene_t *s) {
  tclient_close(s->ca);
  tclient_close(s->cc);
  CU_ASSERT_EQUAL(fixture_stop_all(s->fx), 0);
  fixture_free(s->fx);
}

/* bob connects and collects what is left; returns how many. */
static size_t bob_receives(scene_t *s, size_t expect) {
  tclient_t *cb = tuser_login(&s->bob);
  (void)tclient_wait_rx(cb, expect, 1, T_MS);
  (void)tclient_wait_rx(cb, (size_t)-1, 1, 500);
  size_t n;
  tclient_rx(cb, &n);
  tclient_close(cb);
  return n;
}

/* (a) bob purges everything: every inbox row of his is a tombstone, the
 * answer counts them, his quota is free again. */
static void test_purge_all(void) {
  scene_t s;
  scene_up(&s, "purge_all");
  tclient_t *cb = tuser_login(&s.bob);
  /* Purge before the drain can deliver anything: the purge is the first
   * request, but a session drains on connect; what it delivered is not
   * acknowledged, so it is still stored and purged. */
  uint64_t deleted = 0;
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL,
                                NULL, NULL, 0, s.bob.sk, &deleted, T_MS),
                  0);
  CU_ASSERT_EQUAL(deleted, 7);
  CU_ASSERT_EQUAL(inbox_count(s.b, "bob", "i.envelope IS NOT NULL"), 0);
  CU_ASSERT_EQUAL(inbox_count(s.b, "bob", "i.envelope IS NULL"), 7);
  CU_ASSERT_EQUAL(stored_bytes(s.b, "bob"), 0);
  tclient_close(cb);
  CU_ASSERT_EQUAL(bob_receives(&s, 0), 0);
  /* A purged id is still known: sent again, it is a duplicate. */
  int acc = -1;
  CU_ASSERT_EQUAL(
      tclient_submit(s.cc, s.from_carol[0], s.bob.id, 100, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE);
  scene_down(&s);
}

/* (b) bob purges his conversation with alice: only alice's go. */
static void test_purge_conversation(void) {
  scene_t s;
  scene_up(&s, "purge_conversation");
  int64_t carol_bytes =
      tuser_q(s.b, "SELECT coalesce(sum(octet_length(envelope)), 0)"
                   " FROM inbox WHERE sender = 'carol@relay-b'");
  tclient_t *cb = tuser_login(&s.bob);
  uint64_t deleted = 0;
  CU_ASSERT_EQUAL(
      tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_CONVERSATION,
                    s.alice.id, NULL, 0, s.bob.sk, &deleted, T_MS),
      0);
  tclient_close(cb);
  CU_ASSERT_EQUAL(deleted, 4);
  CU_ASSERT_EQUAL(
      inbox_count(s.b, "bob",
                  "i.sender = 'alice@relay-a' AND i.envelope IS NOT NULL"),
      0);
  CU_ASSERT_EQUAL(
      inbox_count(s.b, "bob",
                  "i.sender = 'carol@relay-b' AND i.envelope IS NOT NULL"),
      3);
  /* carol purges her conversation with bob@relay-a, a namesake of bob's
   * on another relay: her messages to bob@relay-b stay. */
  CU_ASSERT_EQUAL(
      tclient_purge(s.cc, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_CONVERSATION,
                    "bob@relay-a", NULL, 0, s.carol.sk, &deleted, T_MS),
      0);
  CU_ASSERT_EQUAL(deleted, 0);
  CU_ASSERT_EQUAL(stored_bytes(s.b, "bob"), carol_bytes);
  CU_ASSERT_EQUAL(bob_receives(&s, 3), 3);
  scene_down(&s);
}

/* (c) bob purges given ids: those and no others. An id of a message
 * neither to nor from bob is left alone; one bob sent, still waiting for
 * its local recipient, is his to purge. */
static void test_purge_ids(void) {
  scene_t s;
  scene_up(&s, "purge_ids");
  tuser_t dave;
  tuser_make(&dave, s.b, "dave");
  tclient_close(tuser_login(&dave));
  uint8_t to_dave[1][16], to_carol[1][16];
  send_n(s.cc, dave.id, 1, to_dave);
  tclient_t *cb = tuser_login(&s.bob);
  send_n(cb, s.carol.id, 1, to_carol);
  uint8_t ids[2][16];
  memcpy(ids[0], s.from_alice[1], 16);
  memcpy(ids[1], s.from_carol[2], 16);
  uint64_t deleted = 0;
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_IDS,
                                NULL, (const uint8_t(*)[16])ids, 2, s.bob.sk,
                                &deleted, T_MS),
                  0);
  CU_ASSERT_EQUAL(deleted, 2);
  CU_ASSERT_EQUAL(inbox_count(s.b, "bob", "i.envelope IS NOT NULL"), 5);
  CU_ASSERT_EQUAL(inbox_count(s.b, "bob", "i.envelope IS NULL"), 2);
  CU_ASSERT_EQUAL(
      tuser_q(s.b, "SELECT count(*) FROM inbox WHERE envelope IS NULL"), 2);
  /* Not bob's: carol's message to dave stays. */
  deleted = 99;
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_IDS,
                                NULL, (const uint8_t(*)[16])to_dave, 1,
                                s.bob.sk, &deleted, T_MS),
                  0);
  CU_ASSERT_EQUAL(deleted, 0);
  CU_ASSERT_EQUAL(inbox_count(s.b, "dave", "i.envelope IS NOT NULL"), 1);
  /* bob's own message, unacknowledged by carol: his to purge. */
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_IDS,
                                NULL, (const uint8_t(*)[16])to_carol, 1,
                                s.bob.sk, &deleted, T_MS),
                  0);
  CU_ASSERT_EQUAL(deleted, 1);
  CU_ASSERT_EQUAL(inbox_count(s.b, "carol", "i.envelope IS NOT NULL"), 0);
  CU_ASSERT_EQUAL(stored_bytes(s.b, "carol"), 0);
  tclient_close(cb);
  size_t n = bob_receives(&s, 5);
  CU_ASSERT_EQUAL(n, 5);
  scene_down(&s);
}

/* (d) alice's undelivered outbound messages: queued at relay-a while
 * relay-b is down, purged there and counted; relay-b, once back, never
 * gets them. */
static void test_purge_outbox(void) {
  fixture_t *fx = tuser_federation("purge_outbox", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(b), 0);
  tclient_t *ca = tuser_login(&alice);
  send_n(ca, bob.id, 5, NULL);
  const char *mine =
      "SELECT count(*) FROM outbox WHERE sender = 'alice@relay-a'"
      " AND envelope IS NOT NULL";
  CU_ASSERT_EQUAL(tuser_q(a, mine), 5);
  uint64_t deleted = 0;
  CU_ASSERT_EQUAL(tclient_purge(ca, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL,
                                NULL, NULL, 0, alice.sk, &deleted, T_MS),
                  0);
  CU_ASSERT_EQUAL(deleted, 5);
  CU_ASSERT_EQUAL(tuser_q(a, mine), 0);
  /* The purge waits for relay-b as a peer notice. */
  CU_ASSERT_EQUAL(
      tuser_q(a, "SELECT count(*) FROM peer_notices WHERE peer = 'relay-b'"
                 " AND kind = 'purge'"),
      1);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(b), 0);
  CU_ASSERT_EQUAL(
      tuser_q_until(a, ca, "SELECT count(*) FROM peer_notices", 0, T_MS), 0);
  tclient_t *cb = tuser_login(&bob);
  (void)tclient_wait_rx(cb, 1, 1, 1000);
  size_t n;
  tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL(tuser_q(b, "SELECT count(*) FROM inbox"), 0);
  tclient_close(cb);
  tclient_close(ca);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* (d) a purge forwarded as a PeerPurge: alice's messages already sit in
 * bob's inbox at relay-b; alice purges her conversation with bob at
 * relay-a, and the link carries the purge to relay-b, which clears them. */
static void test_peer_purge(void) {
  fixture_t *fx = tuser_federation("peer_purge", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob, carol;
  tuser_make(&alice, a, "alice");
  tuser_make(&carol, a, "carol");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  tclient_t *ca = tuser_login(&alice), *cc = tuser_login(&carol);
  send_n(ca, bob.id, 3, NULL);
  send_n(cc, bob.id, 2, NULL); /* carol's are not alice's to purge */
  const char *from_alice = "SELECT count(*) FROM inbox WHERE sender = "
                           "'alice@relay-a' AND envelope IS NOT NULL";
  CU_ASSERT_EQUAL_FATAL(tuser_q_until(b, ca, from_alice, 3, T_MS), 3);
  CU_ASSERT_EQUAL(tuser_q_until(a, ca,
                                "SELECT count(*) FROM outbox WHERE envelope"
                                " IS NOT NULL",
                                0, T_MS),
                  0);
  uint64_t deleted = 99;
  CU_ASSERT_EQUAL(
      tclient_purge(ca, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_CONVERSATION,
                    bob.id, NULL, 0, alice.sk, &deleted, T_MS),
      0);
  CU_ASSERT_EQUAL(deleted, 0); /* nothing of it left at relay-a */
  CU_ASSERT_EQUAL(tuser_q_until(b, ca, from_alice, 0, T_MS), 0);
  CU_ASSERT_EQUAL(tuser_q(b, "SELECT count(*) FROM inbox WHERE sender = "
                             "'alice@relay-a' AND envelope IS NULL"),
                  3);
  CU_ASSERT_EQUAL(tuser_q(b, "SELECT count(*) FROM inbox WHERE sender = "
                             "'carol@relay-a' AND envelope IS NOT NULL"),
                  2);
  CU_ASSERT_EQUAL(
      tuser_q_until(a, ca, "SELECT count(*) FROM peer_notices", 0, T_MS), 0);
  int64_t carol_bytes =
      tuser_q(b, "SELECT coalesce(sum(octet_length(envelope)), 0)"
                 " FROM inbox WHERE sender = 'carol@relay-a'");
  CU_ASSERT_EQUAL(stored_bytes(b, "bob"), carol_bytes);
  tclient_t *cb = tuser_login(&bob);
  (void)tclient_wait_rx(cb, 2, 1, T_MS);
  (void)tclient_wait_rx(cb, (size_t)-1, 1, 500);
  size_t n;
  const tclient_rx_t *rx = tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, 2);
  for (size_t i = 0; i < n; i++)
    CU_ASSERT_STRING_EQUAL(rx[i].sender, carol.id);
  tclient_close(cb);
  tclient_close(ca);
  tclient_close(cc);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* Sends a Purge frame whose body names user, signed with sk, and returns
 * the Error code the relay answered with (0: none within the wait). */
static int purge_as(tclient_t *c, const char *user, const uint8_t sk[32]) {
  Synod__V1__PurgeBody b = SYNOD__V1__PURGE_BODY__INIT;
  b.user_id = synod_wire_lend(user);
  b.scope = SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL;
  b.peer = synod_wire_lend("");
  b.time = (uint64_t)time(NULL);
  size_t blen = synod__v1__purge_body__get_packed_size(&b);
  uint8_t *body = malloc(blen + 1);
  CU_ASSERT_FATAL(body != NULL);
  synod__v1__purge_body__pack(&b, body);
  uint8_t sig[64];
  CU_ASSERT_EQUAL_FATAL(synod_sig_sign(sig, SYNOD_SIG_PURGE, body, blen, sk),
                        0);
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Purge p = SYNOD__V1__PURGE__INIT;
  f.request_id = 900001;
  f.body_case = SYNOD__V1__FRAME__BODY_PURGE;
  f.purge = &p;
  p.body.data = body;
  p.body.len = blen;
  p.signature.data = sig;
  p.signature.len = 64;
  /* Forget earlier errors: tclient_ack() clears the last one (and sends
   * nothing for no ids). */
  (void)tclient_ack(c, NULL, 0, 0);
  CU_ASSERT_EQUAL(tclient_send(c, &f), 0);
  for (int t = 0; t < 40 && !tclient_last_error(c, NULL); t++)
    tclient_run_for(c, 50);
  free(body);
  return tclient_last_error(c, NULL);
}

/* (e) a purge signed with another key is refused (EVERIFY), and so is one
 * for another user (EDENIED), signed properly by the session's user;
 * nothing is deleted, and the session goes on. */
static void test_purge_refused(void) {
  scene_t s;
  scene_up(&s, "purge_refused");
  tclient_t *cb = tuser_login(&s.bob);
  uint8_t wpk[32], wsk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(wpk, wsk), 0);
  uint64_t deleted = 99;
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL,
                                NULL, NULL, 0, wsk, &deleted, T_MS),
                  SYNOD_EVERIFY);
  /* carol's key, carol's user id, over bob's session: still not bob's. */
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL,
                                NULL, NULL, 0, s.carol.sk, &deleted, T_MS),
                  SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(purge_as(cb, s.carol.id, s.bob.sk), SYNOD_EDENIED);
  CU_ASSERT_EQUAL(inbox_count(s.b, "bob", "i.envelope IS NOT NULL"), 7);
  CU_ASSERT(tclient_up(cb));
  /* The session still works: a proper purge goes through. */
  CU_ASSERT_EQUAL(tclient_purge(cb, SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_IDS,
                                NULL, (const uint8_t(*)[16])s.from_carol, 1,
                                s.bob.sk, &deleted, T_MS),
                  0);
  CU_ASSERT_EQUAL(deleted, 1);
  tclient_close(cb);
  scene_down(&s);
}

static CU_TestInfo purge_tests[] = {
    {"all", test_purge_all},
    {"conversation", test_purge_conversation},
    {"ids", test_purge_ids},
    {"outbox", test_purge_outbox},
    {"peer_purge", test_peer_purge},
    {"refused", test_purge_refused},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"purge", NULL, NULL, NULL, NULL, purge_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
