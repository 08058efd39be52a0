/*
 * Suite client.cli: the `synod` command end to end against real relays
 * and a real PostgreSQL (three relays of three operators, k = 2): init
 * with enrolment, register, lookup, send, receive with the right
 * plaintext, no second delivery; then a refusal a user meets: two relays
 * down, lookup and send refused with a clear reason and exit status 3.
 * The command is run as a user runs it, with SYNOD_HOME and
 * SYNOD_PASSPHRASE_FILE; nothing secret on its command line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"

#ifndef SYNOD_CLI_BIN
#error "SYNOD_CLI_BIN: the synod binary"
#endif

#define OUT_MAX 65536

typedef struct user {
  char root[256];
  char home[300];
  char pass[300];
} user_t;

static void user_make(user_t *u, const char *name) {
  const char *tmp = getenv("TMPDIR");
  snprintf(u->root, sizeof u->root, "%s/synod-cli-%s.XXXXXX",
           tmp && *tmp ? tmp : "/tmp", name);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(u->root));
  snprintf(u->home, sizeof u->home, "%s/home", u->root);
  snprintf(u->pass, sizeof u->pass, "%s/pass", u->root);
  FILE *f = fopen(u->pass, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "correct horse %s\n", name);
  fclose(f);
  chmod(u->pass, 0600);
}

static void user_free(user_t *u) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", u->root);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", u->root);
}

/* Runs `synod ARGS` as u (args already shell-quoted), its stdout and
 * stderr into out; returns the exit status. */
static int synod(const user_t *u, char *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int synod(const user_t *u, char *out, const char *fmt, ...) {
  char args[4096], cmd[5000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd,
           "SYNOD_HOME='%s' SYNOD_PASSPHRASE_FILE='%s' '%s' %s 2>&1 "
           "</dev/null",
           u->home, u->pass, SYNOD_CLI_BIN, args);
  FILE *p = popen(cmd, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  size_t n = fread(out, 1, OUT_MAX - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  fprintf(stderr, "$ synod %s\n%s[exit %d]\n", args, out, rc);
  return rc;
}

/* init with the whole trust set and the code; enrolment retried while the
 * relay is not ready for it yet. */
static void init_user(user_t *u, fixture_t *fx, fixture_relay_t *home,
                      const char *local, char *out) {
  char code[FIXTURE_CODE_MAX], relays[2048] = "";
  CU_ASSERT_EQUAL_FATAL(fixture_relay_user_add(home, local, code), 0);
  for (size_t i = 0; i < fixture_relay_count(fx); i++) {
    fixture_relay_t *r = fixture_relay_at(fx, i);
    size_t l = strlen(relays);
    snprintf(relays + l, sizeof relays - l, " --relay '%s=%s,%s,%s'",
             fixture_relay_name(r), fixture_relay_address(r),
             fixture_relay_key_line(r), fixture_relay_operator(r));
  }
  int rc = synod(u, out, "init --user %s@%s --code %s --device cli%s", local,
                 fixture_relay_name(home), code, relays);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "created the profile"));
  for (int i = 0; i < 50 && rc != 0; i++) {
    usleep(100000);
    rc = synod(u, out, "enroll --code %s", code);
  }
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "enrolled"));
}

static void test_story(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_story"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  char *out = malloc(OUT_MAX);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  user_t alice, bob;
  user_make(&alice, "alice");
  user_make(&bob, "bob");
  init_user(&alice, fx, ra, "alice", out);
  init_user(&bob, fx, rb, "bob", out);

  /* Usage errors are 2, with nothing done. */
  CU_ASSERT_EQUAL(synod(&alice, out, "lookup"), 2);
  CU_ASSERT_EQUAL(synod(&alice, out, "nonsense"), 2);
  CU_ASSERT_EQUAL(synod(&alice, out, "send --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));

  CU_ASSERT_EQUAL(synod(&alice, out, "register"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));
  CU_ASSERT_EQUAL(synod(&bob, out, "register"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));

  CU_ASSERT_EQUAL(synod(&alice, out, "lookup bob@relay-b"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "ACCEPTED"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "first contact"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "Org C"));
  CU_ASSERT_EQUAL(synod(&alice, out, "lookup bob@relay-b --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verdict\":\"accepted\""));

  /* Text as operands, then on standard input (the pinned-key path). */
  CU_ASSERT_EQUAL(synod(&alice, out, "send bob@relay-b 'hello bob, from the "
                                     "cli'"),
                  0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "sent to bob@relay-b (1 device)"));
  CU_ASSERT_EQUAL(synod(&alice, out, "send bob@relay-b < /dev/null"), 0);

  int got = 0;
  char all[OUT_MAX] = "";
  for (int i = 0; i < 50 && got < 2; i++) {
    CU_ASSERT_EQUAL(synod(&bob, out, "recv --json"), 0);
    strncat(all, out, sizeof all - strlen(all) - 1);
    got = 0;
    for (const char *p = all; (p = strstr(p, "\"status\":\"ok\"")); p++)
      got++;
    if (got < 2)
      usleep(100000);
  }
  CU_ASSERT_EQUAL(got, 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "\"sender\":\"alice@relay-a\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "\"body\":\"hello bob, from the cli\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "\"body\":\"\""));
  /* Acknowledged: not delivered again. */
  CU_ASSERT_EQUAL(synod(&bob, out, "recv"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 messages received"));

  /* Two relays down: no two operators can vouch for bob's key. */
  CU_ASSERT_EQUAL(fixture_relay_stop(rb), 0);
  CU_ASSERT_EQUAL(fixture_relay_stop(rc), 0);
  CU_ASSERT_EQUAL(synod(&alice, out, "--timeout 2000 lookup bob@relay-b"), 2);
  CU_ASSERT_EQUAL(synod(&alice, out, "lookup bob@relay-b --timeout 2000"), 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "REFUSED"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "unreachable"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 of your 3 relays did not answer"));
  CU_ASSERT_EQUAL(synod(&alice, out, "send bob@relay-b --timeout 2000 'lost'"),
                  3);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing was sent"));

  free(out);
  user_free(&alice);
  user_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo cli_tests[] = {
    {"story", test_story},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cli", NULL, NULL, NULL, fixture_teardown, cli_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
