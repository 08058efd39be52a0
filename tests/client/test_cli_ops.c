/*
 * Suite client.cli_ops: the `synod` commands purge, monitor and keys
 * devices end to end against real relays and a real PostgreSQL (three
 * relays of three operators, k = 2): messages waiting for bob are gone
 * after `synod purge --all` (his recv then gets nothing), `--with alice`
 * removes only alice's, a purge by message id; `synod monitor --once` on
 * an honest federation exits 0; `synod keys devices` lists the profile's
 * device key; usage errors exit 2.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "cliuser.h"
#include "harness.h"
#include "synod/client.h"

#define OUT_MAX CLI_OUT_MAX

/* `synod purge ARGS --json` as u until the relay has deleted at least
 * want messages in all (messages travel between relays asynchronously);
 * returns the total deleted. */
static unsigned long long purge_until(const cli_user_t *u, char *out,
                                      const char *args,
                                      unsigned long long want) {
  unsigned long long total = 0;
  for (int i = 0; i < 50 && total < want; i++) {
    CU_ASSERT_EQUAL(cli_synod(u, out, "purge %s --json", args), 0);
    const char *p = strstr(out, "\"deleted\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    total += strtoull(p + 10, NULL, 10);
    if (total < want)
      usleep(100000);
  }
  return total;
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

static void test_ops(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_ops"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  char *out = malloc(OUT_MAX), *all = malloc(OUT_MAX);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(all);
  cli_user_t alice, bob, carol;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_user_make(&carol, "carol");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  cli_init_user(&carol, fx, rc, "carol", out);

  /* Help and usage errors (2, nothing done). */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "--help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "purge"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "monitor"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "keys devices"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "monitor --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "--interval"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys devices --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge --all --with alice@relay-a"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge --with"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge --with nobody"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge not-an-id"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "monitor --interval 0"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "monitor --once extra"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys"), 2);

  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys devices"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "not registered yet"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, " cli "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "(this device)"));

  CU_ASSERT_EQUAL(cli_synod(&alice, out, "register"), 0);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "register"), 0);
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "register"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));

  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys devices --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"registered_version\":1"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"name\":\"cli\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"current\":true"));

  /* An honest federation: every relay holds our newest announcement. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "monitor --once"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no relay serves a key"));
  CU_ASSERT_PTR_NULL(strstr(out, "ALARM"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "monitor --once --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"alarm\":false"));
  CU_ASSERT_EQUAL(count(out, "\"status\":\"ok\""), 3);

  /* --with alice removes alice's messages to bob, not carol's. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b 'alice one'"), 0);
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "send bob@relay-b 'carol one'"), 0);
  CU_ASSERT(purge_until(&bob, out, "--with alice@relay-a", 1) == 1);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "purge --with alice@relay-a"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "deleted 0 messages"));
  all[0] = '\0';
  for (int i = 0; i < 50 && !strstr(all, "carol one"); i++) {
    CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv --json"), 0);
    strncat(all, out, OUT_MAX - strlen(all) - 1);
    if (!strstr(all, "carol one"))
      usleep(100000);
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "\"body\":\"carol one\""));
  CU_ASSERT_PTR_NULL(strstr(all, "alice one"));

  /* --all: everything waiting for bob is gone; recv gets nothing. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b 'alice two'"), 0);
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "send bob@relay-b 'carol two'"), 0);
  CU_ASSERT(purge_until(&bob, out, "--all", 2) == 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 messages received"));
  CU_ASSERT_PTR_NULL(strstr(out, " two"));

  /* By message id, as 'synod send' printed it. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b 'alice three'"), 0);
  const char *p = strstr(out, "message ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  char id[40];
  snprintf(id, sizeof id, "%.32s", p + 8);
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "send bob@relay-b 'carol three'"), 0);
  CU_ASSERT(purge_until(&bob, out, id, 1) == 1);
  all[0] = '\0';
  for (int i = 0; i < 50 && !strstr(all, "carol three"); i++) {
    CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv --json"), 0);
    strncat(all, out, OUT_MAX - strlen(all) - 1);
    if (!strstr(all, "carol three"))
      usleep(100000);
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "\"body\":\"carol three\""));
  CU_ASSERT_PTR_NULL(strstr(all, "alice three"));

  free(out);
  free(all);
  cli_user_free(&alice);
  cli_user_free(&bob);
  cli_user_free(&carol);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo ops_tests[] = {
    {"purge_monitor_keys", test_ops},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cli_ops", NULL, NULL, NULL, fixture_teardown, ops_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
