/*
 * tusers: what the relay integration suites share on top of the fixture
 * and the test client: users with fresh identity keys and enrolment codes,
 * logging them in, one-number database queries, and a started federation.
 * Failures are CUnit assertions (fatal where the test cannot go on), so
 * these are called from inside a test only.
 */
#ifndef SYNOD_TESTS_RELAY_TUSERS_H
#define SYNOD_TESTS_RELAY_TUSERS_H

#include <stddef.h>
#include <stdint.h>

#include "fixture.h"
#include "tclient.h"

/* Deadline of one login attempt. */
#define TUSER_LOGIN_MS 15000

typedef struct tuser {
  char id[64]; /* local@relay */
  char local[32];
  uint8_t pk[32], sk[32];
  char code[FIXTURE_CODE_MAX]; /* empty once used */
  fixture_relay_t *home;
} tuser_t;

/* Creates account local on relay r (synod-relay user add) and a fresh
 * identity key for it. */
void tuser_make(tuser_t *u, fixture_relay_t *r, const char *local);

/* Connects u to its home relay, enrolling with its code the first time.
 * Retries while the relay answers "try later" (EAGAIN): a relay that has
 * just started or whose database is coming back does, and a real client
 * retries too. */
tclient_t *tuser_login(tuser_t *u);

/* The integer result of sql on r's database (-1 and a failed assertion
 * when the query fails). */
int64_t tuser_q(fixture_relay_t *r, const char *sql);

/* Polls tuser_q(r, sql) until it equals want or timeout_ms passes,
 * running c's loop meanwhile (so its acknowledgements go out) when c is
 * given; returns the last value. For figures that settle asynchronously,
 * where one look after a fixed sleep would be flaky on a busy machine. */
int64_t tuser_q_until(fixture_relay_t *r, tclient_t *c, const char *sql,
                      int64_t want, int timeout_ms);

/* A started federation of n relays for test name; with unlimited set,
 * the per-account rate limit is raised out of the way of tests that
 * pipeline hundreds of messages from one account. */
fixture_t *tuser_federation(const char *name, size_t n, int unlimited);

#endif
