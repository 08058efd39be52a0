/*
 * cliuser: what the suites that run the `synod` command share: a user with
 * a private SYNOD_HOME and a 0600 passphrase file, running the binary as
 * that user, and creating a profile against a fixture federation. Failures
 * are CUnit assertions, so these are called from inside a test only.
 */
#ifndef SYNOD_TESTS_CLIENT_CLIUSER_H
#define SYNOD_TESTS_CLIENT_CLIUSER_H

#include "fixture.h"

/* Bytes of output a command may print into a caller's buffer. */
#define CLI_OUT_MAX 65536

typedef struct cli_user {
  char root[256];      /* temporary directory, removed by cli_user_free */
  char home[300];      /* SYNOD_HOME */
  char pass[300];      /* SYNOD_PASSPHRASE_FILE, mode 0600 */
  char passphrase[64]; /* what it holds */
} cli_user_t;

void cli_user_make(cli_user_t *u, const char *name);
void cli_user_free(cli_user_t *u);

/* Runs a shell command, stdout and stderr into out[0..CLI_OUT_MAX) (NULL:
 * discarded); returns the exit status (128 when it did not exit). */
int cli_run(char *out, const char *cmd);

/* Runs `synod ARGS` as u (ARGS already shell-quoted) with no standard
 * input, logs it with its output to stderr, and returns the exit status. */
int cli_synod(const cli_user_t *u, char *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cli_synod with one line, input and a newline, on standard input. */
int cli_synod_input(const cli_user_t *u, char *out, const char *input,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* `synod user add` local on home, then `synod init` as u with every relay of
 * fx in the trust set and the code; enrolment is retried while the relay
 * is not ready for it yet. */
void cli_init_user(cli_user_t *u, fixture_t *fx, fixture_relay_t *home,
                   const char *local, char *out);

#endif
