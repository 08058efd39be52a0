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
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "cliuser.h"
#include "harness.h"
#include "internal.h"
#include "synod/message.h"
#include "synod/wire.h"

#define OUT_MAX CLI_OUT_MAX

/* Submits, as alice (her own session at her home relay, as the relay
 * requires), a message to bob that must not be shown: signed by another
 * key than alice's (wrong_key), or with its ciphertext altered. */
static void submit_bad(const cli_user_t *alice, const cli_user_t *bob,
                       int wrong_key) {
  char pass[64];
  synod_client_t *a = NULL, *b = NULL;
  snprintf(pass, sizeof pass, "correct horse alice");
  CU_ASSERT_EQUAL_FATAL(synod_client_open(&a, alice->home, pass, strlen(pass)),
                        0);
  snprintf(pass, sizeof pass, "correct horse bob");
  CU_ASSERT_EQUAL_FATAL(synod_client_open(&b, bob->home, pass, strlen(pass)),
                        0);
  synod_message_device_t d = {.device_id = b->device_id};
  synod_client_device_key(b, d.x25519_key);
  const char *text = "you must never see this";
  synod_message_params_t mp = {.sender = "alice@relay-a",
                               .recipient = "bob@relay-b",
                               .devices = &d,
                               .ndevices = 1,
                               .time = (uint64_t)time(NULL),
                               .content_type = "text/plain; charset=utf-8",
                               .body = (const uint8_t *)text,
                               .body_len = strlen(text)};
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES], sk[SYNOD_ED25519_SECRET_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  synod_message_sealed_t *s = calloc(1, sizeof *s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL_FATAL(
      synod_message_seal(s, &mp, wrong_key ? sk : a->identity_sk), 0);
  if (!wrong_key)
    s->copies[0].ct.data[3] ^= 0x40;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Submit sub = SYNOD__V1__SUBMIT__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  f.submit = &sub;
  sub.envelope = &s->envelope;
  fanout_target_t t = {.relay = profile_relay(a, "relay-a"), .request = &f};
  CU_ASSERT_PTR_NOT_NULL_FATAL(t.relay);
  CU_ASSERT_EQUAL(fanout_run(a, &t, 1, 5000), 0);
  CU_ASSERT_EQUAL(t.status, 0);
  CU_ASSERT(t.answer && t.answer->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED);
  synod_wire_free(t.answer);
  synod_message_sealed_free(s);
  free(s);
  synod_client_close(a);
  synod_client_close(b);
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
  cli_user_t alice, bob;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);

  /* Usage errors are 2, with nothing done. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup"), 2);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "nonsense"), 2);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "enroll --code -"), 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no code on standard input"));
  CU_ASSERT_EQUAL(cli_synod_input(&alice, out, "", "enroll --code -"), 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "the line read is empty"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));

  CU_ASSERT_EQUAL(cli_synod(&alice, out, "register"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "register"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));

  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "ACCEPTED"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "first contact"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "Org C"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verdict\":\"accepted\""));

  /* Safety numbers: the same on both sides; --confirm marks the pin. */
  {
    char na[64] = "", nb[64] = "";
    CU_ASSERT_EQUAL(cli_synod(&alice, out, "verify bob@relay-b"), 0);
    const char *p = strstr(out, ":\n\n    ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    snprintf(na, sizeof na, "%.35s", p + 7);
    CU_ASSERT_EQUAL(cli_synod(&bob, out, "verify alice@relay-a"), 0);
    p = strstr(out, ":\n\n    ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    snprintf(nb, sizeof nb, "%.35s", p + 7);
    CU_ASSERT_EQUAL(strlen(na), 35);
    CU_ASSERT_STRING_EQUAL(na, nb);
    CU_ASSERT_EQUAL(cli_synod(&alice, out, "verify bob@relay-b --confirm"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, na));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "marked verified"));
    CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(verified)"));
  }

  /* Text as operands, then on standard input (the pinned-key path). */
  CU_ASSERT_EQUAL(cli_synod(&alice, out,
                            "send bob@relay-b 'hello bob, from the "
                            "cli'"),
                  0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "sent to bob@relay-b (1 device)"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b < /dev/null"), 0);

  int got = 0;
  char all[OUT_MAX] = "";
  for (int i = 0; i < 50 && got < 2; i++) {
    CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv --json"), 0);
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
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 messages received"));

  /* recv --follow shows a message that arrives while it waits. */
  {
    char file[400], cmd[2000];
    snprintf(file, sizeof file, "%s/follow.out", bob.root);
    snprintf(cmd, sizeof cmd,
             "SYNOD_HOME='%s' SYNOD_PASSPHRASE_FILE='%s' timeout 6 '%s' recv "
             "--follow --json > '%s' 2>&1 < /dev/null &",
             bob.home, bob.pass, SYNOD_CLI_BIN, file);
    CU_ASSERT_EQUAL(system(cmd), 0);
    usleep(1000000);
    CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b 'while you wait'"),
                    0);
    int seen = 0;
    for (int i = 0; i < 50 && !seen; i++) {
      FILE *f = fopen(file, "r");
      size_t n = f ? fread(out, 1, OUT_MAX - 1, f) : 0;
      out[n] = '\0';
      if (f)
        fclose(f);
      seen = strstr(out, "\"body\":\"while you wait\"") != NULL;
      if (!seen)
        usleep(100000);
    }
    CU_ASSERT(seen);
    usleep(6000000); /* let timeout end it */
  }

  /* A message signed by another key than alice's accepted one, and one
   * altered on the way: neither is shown, both are reported as rejected
   * (exit 3) and acknowledged, so they do not come back. */
  submit_bad(&alice, &bob, 1);
  submit_bad(&alice, &bob, 0);
  int rejected = 0, st = 0;
  all[0] = '\0';
  for (int i = 0; i < 50 && rejected < 2; i++) {
    st = cli_synod(&bob, out, "recv");
    strncat(all, out, sizeof all - strlen(all) - 1);
    rejected = 0;
    for (const char *p = all; (p = strstr(p, "REJECTED")); p++)
      rejected++;
    if (rejected < 2)
      usleep(100000);
  }
  CU_ASSERT_EQUAL(rejected, 2);
  CU_ASSERT_EQUAL(st, 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "signature"));
  CU_ASSERT_PTR_NULL(strstr(all, "never see this"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 messages received"));

  /* Two relays down: no two operators can vouch for bob's key. */
  CU_ASSERT_EQUAL(fixture_relay_stop(rb), 0);
  CU_ASSERT_EQUAL(fixture_relay_stop(rc), 0);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "--timeout 2000 lookup bob@relay-b"),
                  2);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b --timeout 2000"),
                  3);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "REFUSED"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "unreachable"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 of your 3 relays did not answer"));
  CU_ASSERT_EQUAL(
      cli_synod(&alice, out, "send bob@relay-b --timeout 2000 'lost'"), 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing was sent"));

  free(out);
  cli_user_free(&alice);
  cli_user_free(&bob);
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
