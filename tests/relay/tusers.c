/* Users and federations for the relay suites; see tusers.h. */
#include "tusers.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "synod/crypto.h"

void tuser_make(tuser_t *u, fixture_relay_t *r, const char *local) {
  memset(u, 0, sizeof *u);
  snprintf(u->id, sizeof u->id, "%s@%s", local, fixture_relay_name(r));
  snprintf(u->local, sizeof u->local, "%s", local);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(u->pk, u->sk), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_user_add(r, local, u->code), 0);
  u->home = r;
}

tclient_t *tuser_login(tuser_t *u) {
  tclient_t *c = NULL;
  int rc = SYNOD_EAGAIN;
  for (int i = 0; i < 50 && rc == SYNOD_EAGAIN; i++) {
    rc = tclient_connect(&c, fixture_relay_port(u->home),
                         fixture_relay_public_key(u->home), u->id, u->sk,
                         u->code[0] ? u->code : NULL, TUSER_LOGIN_MS);
    if (rc == SYNOD_EAGAIN)
      usleep(100 * 1000);
  }
  if (rc != 0)
    fprintf(stderr, "login %s: %s\n", u->id, synod_err_name(rc));
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  u->code[0] = '\0'; /* a code works once */
  return c;
}

int64_t tuser_q(fixture_relay_t *r, const char *sql) {
  int64_t v = -1;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(r), sql, &v), 0);
  return v;
}

int64_t tuser_q_until(fixture_relay_t *r, tclient_t *c, const char *sql,
                      int64_t want, int timeout_ms) {
  int64_t v = tuser_q(r, sql);
  for (int t = 0; t < timeout_ms && v != want; t += 50) {
    if (c)
      tclient_run_for(c, 50);
    else
      usleep(50 * 1000);
    v = tuser_q(r, sql);
  }
  return v;
}

fixture_t *tuser_federation(const char *name, size_t n, int unlimited) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, name), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, n), 0);
  for (size_t i = 0; unlimited && i < n; i++) {
    fixture_relay_t *r = fixture_relay_at(fx, i);
    CU_ASSERT_EQUAL_FATAL(
        fixture_relay_set(r, "limits", "message_rate", "100000"), 0);
    CU_ASSERT_EQUAL_FATAL(
        fixture_relay_set(r, "limits", "message_burst", "100000"), 0);
  }
  if (unlimited)
    CU_ASSERT_EQUAL_FATAL(fixture_write_configs(fx), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  return fx;
}
