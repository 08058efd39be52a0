/* The synod command as a user; see cliuser.h. */
#include "cliuser.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef SYNOD_CLI_BIN
#error "SYNOD_CLI_BIN: the synod binary"
#endif

void cli_user_make(cli_user_t *u, const char *name) {
  memset(u, 0, sizeof *u);
  const char *tmp = getenv("TMPDIR");
  snprintf(u->root, sizeof u->root, "%s/synod-cli-%s.XXXXXX",
           tmp && *tmp ? tmp : "/tmp", name);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(u->root));
  snprintf(u->home, sizeof u->home, "%s/home", u->root);
  snprintf(u->pass, sizeof u->pass, "%s/pass", u->root);
  snprintf(u->passphrase, sizeof u->passphrase, "correct horse %s", name);
  FILE *f = fopen(u->pass, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "%s\n", u->passphrase);
  fclose(f);
  chmod(u->pass, 0600);
}

void cli_user_free(cli_user_t *u) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", u->root);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", u->root);
}

int cli_run(char *out, const char *cmd) {
  FILE *p = popen(cmd, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  if (out) {
    size_t n = fread(out, 1, CLI_OUT_MAX - 1, p);
    out[n] = '\0';
  } else {
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0)
      ;
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int vsynod(const cli_user_t *u, char *out, const char *input,
                  const char *fmt, va_list ap) {
  char args[4096], cmd[5200];
  vsnprintf(args, sizeof args, fmt, ap);
  /* The input is a test's own short token; quoted for the shell. */
  if (input)
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n' '%s' | SYNOD_HOME='%s' "
             "SYNOD_PASSPHRASE_FILE='%s' '%s' %s 2>&1",
             input, u->home, u->pass, SYNOD_CLI_BIN, args);
  else
    snprintf(cmd, sizeof cmd,
             "SYNOD_HOME='%s' SYNOD_PASSPHRASE_FILE='%s' '%s' %s 2>&1 "
             "</dev/null",
             u->home, u->pass, SYNOD_CLI_BIN, args);
  int rc = cli_run(out, cmd);
  fprintf(stderr, "$ synod %s\n%s[exit %d]\n", args, out ? out : "", rc);
  return rc;
}

int cli_synod(const cli_user_t *u, char *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vsynod(u, out, NULL, fmt, ap);
  va_end(ap);
  return rc;
}

int cli_synod_input(const cli_user_t *u, char *out, const char *input,
                    const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vsynod(u, out, input, fmt, ap);
  va_end(ap);
  return rc;
}

void cli_init_user(cli_user_t *u, fixture_t *fx, fixture_relay_t *home,
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
  /* The code on standard input (--code -), as a careful user gives it;
   * the enrol retry below passes it as an argument: both forms run. */
  int rc =
      cli_synod_input(u, out, code, "init --user %s@%s --code - --device cli%s",
                      local, fixture_relay_name(home), relays);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "created the profile"));
  for (int i = 0; i < 50 && rc != 0; i++) {
    usleep(100000);
    rc = cli_synod(u, out, "enroll --code %s", code);
  }
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}
