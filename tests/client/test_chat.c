/*
 * Suite client.chat: `synod chat` driven in a real terminal, tmux on a
 * private socket, against real relays and a real PostgreSQL (three relays
 * of three operators, k = 2). What the screen shows is what is checked:
 * a line typed in alice's chat reaches bob (`synod recv`); bob's
 * messages appear in alice's chat while she types, above her unfinished
 * line, which is drawn again intact; a send refused for lack of quorum
 * (two relays down) says why and the chat goes on; /quit and Ctrl-C end
 * it with status 0.
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

#ifndef SYNOD_TMUX
#define SYNOD_TMUX ""
#endif

#define OUT_MAX CLI_OUT_MAX

/* --- the terminal: tmux on a private socket ------------------------------- */

static char sock[64];

/* tmux ARGS (shell-quoted), output into out (may be NULL). */
static int tmux(char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int tmux(char *out, const char *fmt, ...) {
  char args[4096], cmd[5000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "'%s' -L '%s' %s 2>&1", SYNOD_TMUX, sock, args);
  return cli_run(out, cmd);
}

/* Starts `synod chat PEER` as u in a 120x30 terminal named session; the
 * pane then prints the exit status and stays. */
static void chat_start(const cli_user_t *u, const char *session,
                       const char *peer) {
  CU_ASSERT_EQUAL(
      tmux(NULL,
           "new-session -d -s %s -x 120 -y 30 \"SYNOD_HOME='%s' "
           "SYNOD_PASSPHRASE_FILE='%s' '%s' chat %s; echo chat-exit-\\$?; "
           "sleep 600\"",
           session, u->home, u->pass, SYNOD_CLI_BIN, peer),
      0);
}

/* Waits up to seconds for every string of want (NULL-ended) on the screen
 * of session; the screen is left in out. */
static bool screen_shows(const char *session, char *out, int seconds,
                         const char *const *want) {
  for (int i = 0; i < seconds * 10; i++) {
    tmux(out, "capture-pane -p -t %s", session);
    bool all = true;
    for (const char *const *w = want; *w; w++)
      all = all && strstr(out, *w) != NULL;
    if (all)
      return true;
    usleep(100000);
  }
  fprintf(stderr, "--- screen of %s, waiting for '%s'...:\n%s---\n", session,
          want[0], out);
  return false;
}

#define SHOWS(session, out, seconds, ...)                                      \
  screen_shows(session, out, seconds, (const char *const[]){__VA_ARGS__, NULL})

/* Waits up to seconds for bob's `synod recv` to show text. */
static bool recv_shows(const cli_user_t *u, char *out, int seconds,
                       const char *text) {
  for (int i = 0; i < seconds; i++) {
    if (cli_synod(u, out, "recv") == 0 && strstr(out, text))
      return true;
    sleep(1);
  }
  return false;
}

static void test_chat(void) {
  if (!*SYNOD_TMUX || access(SYNOD_TMUX, X_OK) != 0) {
    fprintf(stderr, "tmux not found: run deploy/install-deps.sh --test and "
                    "configure again\n");
    CU_FAIL_FATAL("tmux is missing");
  }
  snprintf(sock, sizeof sock, "synodtest-chat-%ld", (long)getpid());
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "chat"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  char *out = malloc(OUT_MAX), *scr = malloc(OUT_MAX);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(scr);
  cli_user_t alice, bob;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "register"), 0);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&bob, out, "register"), 0);

  CU_ASSERT_EQUAL(cli_synod(&alice, out, "chat --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "/quit"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "chat"), 2);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "--help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "chat "));

  /* The key is announced before anything is sent: a first contact. */
  chat_start(&alice, "a", "bob@relay-b");
  CU_ASSERT_FATAL(
      SHOWS("a", scr, 30, "first contact", "Chat with bob@relay-b"));

  /* A line typed reaches bob. */
  tmux(NULL, "send-keys -t a -l 'hello bob from the chat'");
  tmux(NULL, "send-keys -t a Enter");
  CU_ASSERT(SHOWS("a", scr, 20, "alice@relay-a: hello bob from the chat"));
  CU_ASSERT(recv_shows(&bob, out, 20, "hello bob from the chat"));

  /* Bob's message appears in alice's chat. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "send alice@relay-a 'hi alice'"), 0);
  CU_ASSERT(SHOWS("a", scr, 20, "] bob@relay-b: hi alice"));

  /* ...also while she is typing: above her line, which stays whole. */
  tmux(NULL, "send-keys -t a -l 'half a lin'");
  CU_ASSERT(SHOWS("a", scr, 10, "> half a lin"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "send alice@relay-a 'while you type'"),
                  0);
  CU_ASSERT(SHOWS("a", scr, 20, "] bob@relay-b: while you type\n> half a lin"));
  tmux(NULL, "send-keys -t a -l 'e, finished'");
  tmux(NULL, "send-keys -t a Enter");
  CU_ASSERT(SHOWS("a", scr, 20, "alice@relay-a: half a line, finished"));
  CU_ASSERT(recv_shows(&bob, out, 20, "half a line, finished"));

  /* Two relays down: the send is refused with the reason, the chat goes
   * on. */
  CU_ASSERT_EQUAL(fixture_relay_stop(rb), 0);
  CU_ASSERT_EQUAL(fixture_relay_stop(rc), 0);
  tmux(NULL, "send-keys -t a -l 'nobody will vouch'");
  tmux(NULL, "send-keys -t a Enter");
  CU_ASSERT(SHOWS("a", scr, 30,
                  "! not sent: bob@relay-b's key cannot be "
                  "confirmed"));
  fprintf(stderr, "--- alice's screen:\n%s---\n", scr);
  tmux(NULL, "send-keys -t a -l '/quit'");
  tmux(NULL, "send-keys -t a Enter");
  CU_ASSERT(SHOWS("a", scr, 20, "chat-exit-0"));

  /* Ctrl-C leaves cleanly too (the chat starts while the key has no
   * quorum, and says so). */
  chat_start(&alice, "b", "bob@relay-b");
  CU_ASSERT(SHOWS("b", scr, 30, "REFUSED", "Chat with bob@relay-b"));
  tmux(NULL, "send-keys -t b C-c");
  CU_ASSERT(SHOWS("b", scr, 20, "chat-exit-0"));

  tmux(NULL, "kill-server");
  free(out);
  free(scr);
  cli_user_free(&alice);
  cli_user_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo chat_tests[] = {
    {"terminal", test_chat},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"chat", NULL, NULL, NULL, fixture_teardown, chat_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
