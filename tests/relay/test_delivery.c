/*
 * Integration suite: store-and-forward between real relays on a real
 * PostgreSQL. Each test builds its own federation with the fixture, talks
 * to it with tclient (the real protocol over TLS), and checks what the
 * relays committed in their databases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "synod/crypto.h"
#include "synod/wire.h"
#include "tclient.h"
#include "tusers.h"

#define T_MS 10000

/* A→B across relays, acknowledged, then gone from both databases but the
 * tombstones; a local message A→A as well. */
static void test_cross_relay(void) {
  fixture_t *fx = tuser_federation("cross_relay", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob, carol;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tuser_make(&carol, a, "carol");
  tclient_t *ca = tuser_login(&alice), *cb = tuser_login(&bob),
            *cc = tuser_login(&carol);

  uint8_t id[16], id2[16];
  tclient_random_id(id);
  tclient_random_id(id2);
  int acc = -1;
  CU_ASSERT_EQUAL(tclient_submit(ca, id, bob.id, 256, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL(tclient_submit(ca, id2, carol.id, 100, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);

  CU_ASSERT_EQUAL(tclient_wait_rx(cb, 1, 1, T_MS), 0);
  CU_ASSERT_EQUAL(tclient_wait_rx(cc, 1, 1, T_MS), 0);
  size_t n;
  const tclient_rx_t *rx = tclient_rx(cb, &n);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_EQUAL(memcmp(rx[0].id, id, 16), 0);
  CU_ASSERT_STRING_EQUAL(rx[0].sender, alice.id);
  CU_ASSERT_EQUAL(rx[0].ctlen, 256);
  rx = tclient_rx(cc, &n);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_EQUAL(memcmp(rx[0].id, id2, 16), 0);

  /* Acknowledged: only tombstones are left, without ciphertext. */
  CU_ASSERT_EQUAL(tuser_q_until(b, cb,
                                "SELECT count(*) FROM inbox WHERE"
                                " envelope IS NOT NULL",
                                0, T_MS),
                  0);
  CU_ASSERT_EQUAL(tuser_q_until(a, cc,
                                "SELECT count(*) FROM inbox WHERE"
                                " envelope IS NOT NULL",
                                0, T_MS),
                  0);
  CU_ASSERT_EQUAL(tuser_q_until(a, ca,
                                "SELECT count(*) FROM outbox WHERE"
                                " envelope IS NOT NULL",
                                0, T_MS),
                  0);
  CU_ASSERT_EQUAL(tuser_q(b, "SELECT count(*) FROM inbox"), 1);
  CU_ASSERT_EQUAL(tuser_q_until(b, cb,
                                "SELECT stored_bytes FROM accounts"
                                " WHERE name = 'bob'",
                                0, T_MS),
                  0);

  /* The same message id again, after delivery: the sender's relay still
   * holds its tombstone, so it is a duplicate, never delivered twice. */
  CU_ASSERT_EQUAL(tclient_submit(ca, id, bob.id, 256, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE);
  CU_ASSERT_EQUAL(tclient_submit(ca, id2, carol.id, 100, 0, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE);
  tclient_run_for(cb, 1000);
  tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, 1);
  tclient_rx(cc, &n);
  CU_ASSERT_EQUAL(n, 1);

  tclient_close(ca);
  tclient_close(cb);
  tclient_close(cc);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* The recipient is offline: messages wait in its relay's inbox and are
 * drained in order when it connects. */
static void test_offline_recipient(void) {
  fixture_t *fx = tuser_federation("offline_recipient", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_t *cb = tuser_login(&bob);
  tclient_close(cb);
  tclient_t *ca = tuser_login(&alice);
  enum { N = 50 };
  uint8_t ids[N][16];
  for (int i = 0; i < N; i++) {
    int acc;
    tclient_random_id(ids[i]);
    CU_ASSERT_EQUAL(tclient_submit(ca, ids[i], bob.id, 64, 0, &acc, T_MS), 0);
  }
  /* All forwarded and committed on B before bob connects. */
  int64_t held = 0;
  for (int i = 0; i < 100 && held < N; i++) {
    tclient_run_for(ca, 50);
    held = tuser_q(b, "SELECT count(*) FROM inbox WHERE envelope IS NOT NULL");
  }
  CU_ASSERT_EQUAL(held, N);
  /* A requests-only session of bob (what `synod lookup` opens) is pushed
   * nothing; a Fetch on it is answered with what waits, in order. */
  tclient_t *cr = NULL;
  CU_ASSERT_EQUAL_FATAL(tclient_connect_flags(&cr, fixture_relay_port(b),
                                              fixture_relay_public_key(b),
                                              bob.id, bob.sk, NULL, T_MS,
                                              TCLIENT_REQUESTS_ONLY),
                        0);
  tclient_run_for(cr, 1000);
  size_t pushed = 0;
  tclient_rx(cr, &pushed);
  CU_ASSERT_EQUAL(pushed, 0);
  Synod__V1__Frame ff = SYNOD__V1__FRAME__INIT, *ans = NULL;
  Synod__V1__Fetch fetch = SYNOD__V1__FETCH__INIT;
  ff.body_case = SYNOD__V1__FRAME__BODY_FETCH;
  ff.fetch = &fetch;
  CU_ASSERT_EQUAL(tclient_request(cr, &ff, &ans, T_MS), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ans);
  CU_ASSERT_EQUAL_FATAL(ans->body_case, SYNOD__V1__FRAME__BODY_DELIVER);
  CU_ASSERT_EQUAL(ans->deliver->n_envelopes, N);
  for (size_t i = 0; i < ans->deliver->n_envelopes && i < N; i++)
    CU_ASSERT_EQUAL(
        memcmp(ans->deliver->envelopes[i]->message_id.data, ids[i], 16), 0);
  synod_wire_free(ans);
  tclient_run_for(cr, 300);
  tclient_rx(cr, &pushed);
  CU_ASSERT_EQUAL(pushed, N); /* the Fetch's answer only, no pushes after */
  tclient_close(cr);
  /* Not acknowledged there: the reading session gets them all. */
  cb = tuser_login(&bob);
  CU_ASSERT_EQUAL(tclient_wait_rx(cb, N, 1, T_MS), 0);
  size_t n;
  const tclient_rx_t *rx = tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, N);
  for (size_t i = 0; i < n && i < N; i++)
    CU_ASSERT_EQUAL(memcmp(rx[i].id, ids[i], 16), 0); /* in order */
  tclient_close(ca);
  tclient_close(cb);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* The peer relay is stopped: messages queue in the sender relay's outbox
 * and are delivered once it is back. */
static void test_peer_down(void) {
  fixture_t *fx = tuser_federation("peer_down", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(b), 0);
  tclient_t *ca = tuser_login(&alice);
  enum { N = 20 };
  for (int i = 0; i < N; i++) {
    uint8_t id[16];
    int acc;
    tclient_random_id(id);
    CU_ASSERT_EQUAL(tclient_submit(ca, id, bob.id, 64, 0, &acc, T_MS), 0);
  }
  CU_ASSERT_EQUAL(
      tuser_q(a, "SELECT count(*) FROM outbox WHERE envelope IS NOT NULL"), N);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(b), 0);
  tclient_t *cb = tuser_login(&bob);
  CU_ASSERT_EQUAL(tclient_wait_rx(cb, N, 1, 2 * T_MS), 0);
  CU_ASSERT_EQUAL(tuser_q_until(a, cb,
                                "SELECT count(*) FROM outbox WHERE"
                                " envelope IS NOT NULL",
                                0, T_MS),
                  0);
  size_t n;
  tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, N);
  tclient_close(ca);
  tclient_close(cb);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* A message whose TTL runs out before delivery is deleted and its sender
 * gets a failure notice signed by the recipient's relay. */
static void test_expiry_notice(void) {
  fixture_t *fx = tuser_federation("expiry_notice", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  tclient_t *ca = tuser_login(&alice);
  uint8_t id[16];
  int acc;
  tclient_random_id(id);
  CU_ASSERT_EQUAL(tclient_submit(ca, id, bob.id, 64, 1, &acc, T_MS), 0);
  CU_ASSERT_EQUAL(tclient_wait_failures(ca, 1, 3 * T_MS), 0);
  uint8_t fid[1][16];
  int code = 0;
  CU_ASSERT_EQUAL(tclient_failures(ca, fid, &code, 1), 1);
  CU_ASSERT_EQUAL(memcmp(fid[0], id, 16), 0);
  CU_ASSERT_EQUAL(code, SYNOD_EEXPIRED);
  /* Gone from bob's inbox, never delivered. */
  CU_ASSERT_EQUAL(
      tuser_q(b, "SELECT count(*) FROM inbox WHERE envelope IS NOT NULL"), 0);
  tclient_t *cb = tuser_login(&bob);
  tclient_run_for(cb, 500);
  size_t n;
  tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, 0);
  tclient_close(ca);
  tclient_close(cb);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* Large messages queued together: forwarded and delivered in frames that
 * respect the frame limit (once a batch of 64 could exceed it and the
 * messages never left the outbox). */
static void test_large_messages(void) {
  fixture_t *fx = tuser_federation("large_messages", 2, 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(b), 0);
  tclient_t *ca = tuser_login(&alice);
  enum { N = 12 };
  for (int i = 0; i < N; i++) {
    uint8_t id[16];
    int acc;
    tclient_random_id(id);
    CU_ASSERT_EQUAL(tclient_submit(ca, id, bob.id, 60000, 0, &acc, T_MS), 0);
  }
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(b), 0);
  tclient_t *cb = tuser_login(&bob);
  CU_ASSERT_EQUAL(tclient_wait_rx(cb, N, 1, 2 * T_MS), 0);
  size_t n;
  const tclient_rx_t *rx = tclient_rx(cb, &n);
  CU_ASSERT_EQUAL(n, N);
  for (size_t i = 0; i < n; i++)
    CU_ASSERT_EQUAL(rx[i].ctlen, 60000);
  CU_ASSERT(tclient_up(cb));
  tclient_close(ca);
  tclient_close(cb);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo delivery_tests[] = {
    {"large_messages", test_large_messages},
    {"cross_relay", test_cross_relay},
    {"offline_recipient", test_offline_recipient},
    {"peer_down", test_peer_down},
    {"expiry_notice", test_expiry_notice},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"delivery", NULL, NULL, NULL, NULL, delivery_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
