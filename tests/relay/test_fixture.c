/*
 * Suite proving tests/relay/fixture.c against what synod-relay does today:
 * databases are created and dropped, a federation is keygen'd, configured
 * and migrated, operator commands run, and a failed fixture dumps its logs
 * and leaves nothing behind.
 *
 * The `run` helpers (start, wait for ready, stop, kill, pause, restart,
 * the dump when a relay dies) are proven against a fake relay, because
 * `synod-relay run` is not written yet: this very program, started with
 * SYNOD_FIXTURE_FAKE_RELAY set to the real binary, listens on the port of
 * its configuration for `run` and hands every other command to the real
 * synod-relay. Tests of the real server use the same helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <libpq-fe.h>

#include "config.h"
#include "fixture.h"
#include "harness.h"

/* Until tests/relay/CMakeLists.txt builds the synodfixture library (whose
 * PUBLIC definition SYNOD_FIXTURE_LIB says so), the fixture is compiled
 * here, so that this suite, which the test_*.c glob picks up, links. */
#ifndef SYNOD_FIXTURE_LIB
#include "fixture.c"
#endif
#include "synod/userid.h"

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Sends stderr to a file until capture_end(), which returns what was
 * written (malloc'd, caller frees): the expected failure messages and dumps
 * stay out of the test's output, and can be checked. */
struct capture {
  int fd, saved;
  char path[64];
};

static void capture_begin(struct capture *c) {
  snprintf(c->path, sizeof c->path, "/tmp/synod-fixture-stderr.XXXXXX");
  c->fd = mkstemp(c->path);
  CU_ASSERT_FATAL(c->fd >= 0);
  fflush(stderr);
  c->saved = dup(2);
  CU_ASSERT_FATAL(c->saved >= 0);
  dup2(c->fd, 2);
}

static char *capture_end(struct capture *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  struct stat st;
  char *text = NULL;
  if (fstat(c->fd, &st) == 0 && (text = calloc(1, (size_t)st.st_size + 1)))
    CU_ASSERT(pread(c->fd, text, (size_t)st.st_size, 0) == st.st_size);
  close(c->fd);
  unlink(c->path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  return text;
}

static void require_pg(void) {
  if (!getenv("SYNOD_TEST_PG_ADMIN"))
    CU_FAIL_FATAL("SYNOD_TEST_PG_ADMIN is unset: run through tests/run.sh");
}

static void test_pg_create_drop(void) {
  require_pg();
  fixture_pg_t *pg = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_pg_create(&pg, "pg_create_drop", "relay-a"), 0);
  char name[128];
  snprintf(name, sizeof name, "%s", fixture_pg_dbname(pg));
  char want[128];
  snprintf(want, sizeof want, "synod_pg_create_drop_relay_a_%ld",
           (long)getpid());
  CU_ASSERT_STRING_EQUAL(name, want);
  CU_ASSERT_EQUAL(fixture_pg_exists(name), 1);

  char got[128];
  CU_ASSERT_EQUAL(
      fixture_pg_query(pg, "SELECT current_database()", got, sizeof got), 0);
  CU_ASSERT_STRING_EQUAL(got, name);
  CU_ASSERT_EQUAL(fixture_pg_query(pg, "CREATE TABLE t (v int)", NULL, 0), 0);
  CU_ASSERT_EQUAL(
      fixture_pg_query(pg, "INSERT INTO t VALUES (1), (2)", NULL, 0), 0);
  int64_t n = -1;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(pg, "SELECT count(*) FROM t", &n), 0);
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_EQUAL(fixture_pg_query(pg, "SELECT 'too long'", got, 4),
                  SYNOD_ETOOBIG);

  /* A session still open on the database does not stop the drop. */
  PGconn *c = PQconnectdb(fixture_pg_conninfo(pg));
  CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_OK);
  CU_ASSERT_EQUAL(fixture_pg_drop(pg), 0);
  CU_ASSERT_EQUAL(fixture_pg_exists(name), 0);
  PQfinish(c);
}

static void test_pg_long_name(void) {
  require_pg();
  fixture_pg_t *pg = NULL;
  CU_ASSERT_EQUAL_FATAL(
      fixture_pg_create(&pg,
                        "A_Test_Name_That_Is_Much_Longer_Than_PostgreSQL_Allows"
                        "_For_An_Identifier",
                        "relay.example-org"),
      0);
  const char *name = fixture_pg_dbname(pg);
  CU_ASSERT(strlen(name) <= 63);
  CU_ASSERT(strncmp(name, "synod_a_test_name", 17) == 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(name, "_relay_example_org_"));
  CU_ASSERT_EQUAL(fixture_pg_exists(name), 1);
  CU_ASSERT_EQUAL(fixture_pg_drop(pg), 0);
}

/* The generated configuration, read by the relay's own parser. */
static void load(relay_config_t *cfg, const fixture_relay_t *r) {
  char err[CONFIG_ERR_MAX];
  int rc = config_load(cfg, fixture_relay_config_path(r), err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "%s\n", err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void test_federation(void) {
  require_pg();
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "federation"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_count(fx), 3);
  CU_ASSERT_PTR_NULL(fixture_relay_at(fx, 3));

  for (size_t i = 0; i < 3; i++) {
    fixture_relay_t *r = fixture_relay_at(fx, i);
    CU_ASSERT_PTR_EQUAL(fixture_relay_find(fx, fixture_relay_name(r)), r);
    CU_ASSERT_EQUAL(fixture_relay_pid(r), 0);
    CU_ASSERT(fixture_relay_port(r) > 0);
    CU_ASSERT(strncmp(fixture_relay_key_line(r), "synod-ed25519 ", 14) == 0);
    CU_ASSERT(exists(fixture_relay_dir(r)));

    relay_config_t cfg;
    load(&cfg, r);
    CU_ASSERT_STRING_EQUAL(cfg.name, fixture_relay_name(r));
    CU_ASSERT_STRING_EQUAL(cfg.operator_name, fixture_relay_operator(r));
    CU_ASSERT_STRING_EQUAL(cfg.listen, fixture_relay_address(r));
    CU_ASSERT_STRING_EQUAL(cfg.conninfo,
                           fixture_pg_conninfo(fixture_relay_pg(r)));
    CU_ASSERT_EQUAL(cfg.log_level, SYNOD_LOG_DEBUG);
    CU_ASSERT_EQUAL(cfg.retry_max_ms, 500);
    /* Every other relay is a peer, at its address, with its key. */
    CU_ASSERT_EQUAL(cfg.npeers, 2);
    for (size_t j = 0; j < 3; j++) {
      const fixture_relay_t *p = fixture_relay_at(fx, j);
      const relay_config_peer_t *peer =
          config_find_peer(&cfg, fixture_relay_name(p));
      if (p == r) {
        CU_ASSERT_PTR_NULL(peer);
        continue;
      }
      CU_ASSERT_PTR_NOT_NULL_FATAL(peer);
      CU_ASSERT_EQUAL(peer->port, fixture_relay_port(p));
      CU_ASSERT_STRING_EQUAL(peer->host, "127.0.0.1");
      CU_ASSERT(memcmp(peer->key, fixture_relay_public_key(p),
                       SYNOD_ED25519_PUBLIC_BYTES) == 0);
      CU_ASSERT_STRING_EQUAL(peer->operator_name, fixture_relay_operator(p));
      CU_ASSERT_NOT_EQUAL(fixture_relay_port(p), fixture_relay_port(r));
      CU_ASSERT(memcmp(fixture_relay_public_key(p), fixture_relay_public_key(r),
                       SYNOD_ED25519_PUBLIC_BYTES) != 0);
      CU_ASSERT_STRING_NOT_EQUAL(fixture_pg_dbname(fixture_relay_pg(p)),
                                 fixture_pg_dbname(fixture_relay_pg(r)));
    }
    config_free(&cfg);

    /* Migrated: a second migrate finds nothing to do, status reads it. */
    char out[4096];
    int status = -1;
    CU_ASSERT_EQUAL(fixture_relay_cmd(r, out, sizeof out, &status, "migrate"),
                    0);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "up to date"));
    CU_ASSERT_EQUAL(fixture_relay_cmd(r, out, sizeof out, &status, "status"),
                    0);
    CU_ASSERT_EQUAL(status, 0);
    char head[128];
    snprintf(head, sizeof head, "relay %s ", fixture_relay_name(r));
    CU_ASSERT(strncmp(out, head, strlen(head)) == 0);
  }
  CU_ASSERT_FALSE(fixture_failed(fx));
  fixture_free(fx);
}

static void test_user_add(void) {
  require_pg();
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "user_add"), 0);
  fixture_relay_t *r = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-a", NULL, &r), 0);
  CU_ASSERT_STRING_EQUAL(fixture_relay_operator(r), "Org relay-a");
  CU_ASSERT_EQUAL_FATAL(fixture_relay_migrate(r), 0);

  char alice[FIXTURE_CODE_MAX], bob[FIXTURE_CODE_MAX];
  CU_ASSERT_EQUAL_FATAL(fixture_relay_user_add(r, "alice", alice), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_user_add(r, "bob", bob), 0);
  /* Five groups of four base32 characters. */
  CU_ASSERT_EQUAL(strlen(alice), 24);
  CU_ASSERT_EQUAL(strspn(alice, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567-"), 24);
  CU_ASSERT_STRING_NOT_EQUAL(alice, bob);

  char out[4096];
  int status = -1;
  CU_ASSERT_EQUAL(
      fixture_relay_cmd(r, out, sizeof out, &status, "user", "list", "--json"),
      0);
  CU_ASSERT_EQUAL(status, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "alice@relay-a"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "bob@relay-a"));
  int64_t n = -1;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(r),
                                       "SELECT count(*) FROM accounts", &n),
                  0);
  CU_ASSERT_EQUAL(n, 2);
  /* A failing command is a status, not a fixture failure. */
  CU_ASSERT_EQUAL(
      fixture_relay_cmd(r, out, sizeof out, &status, "user", "add", "alice"),
      0);
  CU_ASSERT_NOT_EQUAL(status, 0);
  CU_ASSERT_EQUAL(fixture_relay_cmd(r, NULL, 0, &status, "status"), 0);
  CU_ASSERT_EQUAL(status, 0);
  CU_ASSERT_FALSE(fixture_failed(fx));
  fixture_free(fx);
}

static void test_settings(void) {
  require_pg();
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "settings"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  fixture_relay_t *a = fixture_relay_find(fx, "relay-a");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL(fixture_relay_set(a, "limits", "max_frame_bytes", "8192"), 0);
  CU_ASSERT_EQUAL(fixture_relay_set(a, "limits", "max_envelope_bytes", "4096"),
                  0);
  CU_ASSERT_EQUAL(fixture_relay_set(a, "relay", "log_level", "warn"), 0);
  CU_ASSERT_EQUAL(fixture_relay_set(a, "relay", "operator", NULL), 0);
  CU_ASSERT_EQUAL(
      fixture_relay_set(a, "peer \"relay-b\"", "operator", "\"Other\""), 0);
  CU_ASSERT_EQUAL(
      fixture_relay_set(a, "peer \"relay-z\"", "address", "127.0.0.1:9"), 0);
  CU_ASSERT_EQUAL(fixture_relay_set(a, "peer \"relay-z\"", "key",
                                    fixture_relay_key_line(a)),
                  0);
  CU_ASSERT_EQUAL(fixture_relay_set(a, "peer \"relay-z\"", "operator", "Z"), 0);
  CU_ASSERT_EQUAL(fixture_relay_drop_peer(a, "relay-c"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);

  relay_config_t cfg;
  load(&cfg, a);
  CU_ASSERT_EQUAL(cfg.max_frame_bytes, 8192);
  CU_ASSERT_EQUAL(cfg.max_envelope_bytes, 4096);
  CU_ASSERT_EQUAL(cfg.log_level, SYNOD_LOG_WARN);
  CU_ASSERT_STRING_EQUAL(cfg.operator_name, "relay-a"); /* the default */
  CU_ASSERT_EQUAL(cfg.npeers, 2);
  const relay_config_peer_t *b = config_find_peer(&cfg, "relay-b");
  CU_ASSERT_PTR_NOT_NULL(b);
  if (b)
    CU_ASSERT_STRING_EQUAL(b->operator_name, "Other");
  CU_ASSERT_PTR_NULL(config_find_peer(&cfg, "relay-c"));
  CU_ASSERT_PTR_NOT_NULL(config_find_peer(&cfg, "relay-z"));
  config_free(&cfg);

  /* A bad setting is the relay's to refuse, with file and line. */
  char out[512];
  int status = -1;
  CU_ASSERT_EQUAL(fixture_relay_set(a, "limits", "max_frame_bytes", "1"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL(fixture_relay_cmd(a, out, sizeof out, &status, "status"), 0);
  CU_ASSERT_EQUAL(status, 2);
  CU_ASSERT_FALSE(fixture_failed(fx));
  fixture_free(fx);
}

/* After fixture_free: no state directory, no database. */
static void test_teardown_cleans(void) {
  require_pg();
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "teardown"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 2), 0);
  char dir[2][512], db[2][128];
  for (size_t i = 0; i < 2; i++) {
    const fixture_relay_t *r = fixture_relay_at(fx, i);
    snprintf(dir[i], sizeof dir[i], "%s", fixture_relay_dir(r));
    snprintf(db[i], sizeof db[i], "%s", fixture_pg_dbname(fixture_relay_pg(r)));
    CU_ASSERT(exists(dir[i]));
    CU_ASSERT_EQUAL(fixture_pg_exists(db[i]), 1);
  }
  /* Left for the suite's tear-down, as a fatal assertion would leave it. */
  fixture_teardown();
  for (size_t i = 0; i < 2; i++) {
    CU_ASSERT_FALSE(exists(dir[i]));
    CU_ASSERT_EQUAL(fixture_pg_exists(db[i]), 0);
  }
}

/* A failed fixture writes every process's log to stderr, chutney-style. */
static void test_failure_dumps_logs(void) {
  require_pg();
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "dump"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 2), 0);
  CU_ASSERT_FALSE(fixture_failed(fx));

  struct capture c;
  capture_begin(&c);
  fixture_fail(fx, "deliberately, to see the dump");
  bool failed = fixture_failed(fx);
  fixture_free(fx);
  char *text = capture_end(&c);
  CU_ASSERT(failed);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "FAILED: deliberately"));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(text, "######## fixture dump: logs of every process"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "relay-a commands"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "relay-b commands"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "fixture: $ synod-relay keygen -c"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "fixture: $ synod-relay migrate -c"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "relay-b configuration"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "######## fixture dump: end of logs"));
  /* Secrets never reach a log: the key file's contents are not there. */
  CU_ASSERT_PTR_NULL(strstr(text, "synod-ed25519-secret"));
  free(text);
}

static void test_pg_restart(void) {
  require_pg();
  if (!getenv("SYNOD_PG_CTL") || !getenv("SYNOD_TEST_PG_DIR"))
    CU_FAIL_FATAL(
        "SYNOD_PG_CTL / SYNOD_TEST_PG_DIR unset: run through tests/run.sh");
  fixture_pg_t *pg = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_pg_create(&pg, "pg_restart", "relay-a"), 0);
  CU_ASSERT_EQUAL(fixture_pg_query(pg, "CREATE TABLE t (v int)", NULL, 0), 0);
  CU_ASSERT_EQUAL(fixture_pg_query(pg, "INSERT INTO t VALUES (7)", NULL, 0), 0);

  PGconn *c = PQconnectdb(fixture_pg_conninfo(pg));
  CU_ASSERT_EQUAL(PQstatus(c), CONNECTION_OK);
  int pid = PQbackendPID(c);
  CU_ASSERT_EQUAL(fixture_pg_restart(), 0);
  /* The old session was ended; a new one sees the committed row. */
  PGresult *r = PQexec(c, "SELECT 1");
  CU_ASSERT_NOT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  PQfinish(c);
  int64_t v = 0;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(pg, "SELECT v FROM t", &v), 0);
  CU_ASSERT_EQUAL(v, 7);
  int64_t newpid = 0;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(pg, "SELECT pg_backend_pid()", &newpid),
                  0);
  CU_ASSERT_NOT_EQUAL(newpid, pid);
  CU_ASSERT_EQUAL(fixture_pg_drop(pg), 0);
}

/* --- the fake relay ------------------------------------------------------- */

static volatile sig_atomic_t fake_term;

static void fake_on_term(int sig) {
  (void)sig;
  fake_term = 1;
}

/*
 * `run -c CONF` as a fake relay: listens on the port of CONF's listen line
 * and waits for SIGTERM. SYNOD_FIXTURE_FAKE_MODE: "exit3" exits 3 at once
 * without listening; "badstop" exits 1 on SIGTERM; else it exits 0. Other
 * commands are the real binary's (real).
 */
static int fake_relay(const char *real, int argc, char **argv) {
  if (strcmp(argv[1], "run") != 0) {
    argv[0] = (char *)(uintptr_t)real;
    execv(real, argv);
    perror("fake relay: execv");
    return 127;
  }
  const char *mode = getenv("SYNOD_FIXTURE_FAKE_MODE");
  mode = mode ? mode : "";
  fprintf(stderr, "fake relay: pid %ld, mode '%s'\n", (long)getpid(), mode);
  if (strcmp(mode, "exit3") == 0)
    return 3;
  if (argc != 4 || strcmp(argv[2], "-c") != 0)
    return 2;
  FILE *f = fopen(argv[3], "r");
  if (!f)
    return 1;
  char line[1024];
  unsigned port = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "listen = 127.0.0.1:%u", &port) == 1)
      break;
  fclose(f);
  struct sigaction sa = {.sa_handler = fake_on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old); /* delivered only in sigsuspend() */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (port == 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
      listen(fd, 16) != 0) {
    fprintf(stderr, "fake relay: cannot listen on port %u: %s\n", port,
            strerror(errno));
    return 1;
  }
  fprintf(stderr, "fake relay: listening on 127.0.0.1:%u\n", port);
  while (!fake_term)
    sigsuspend(&old);
  close(fd);
  fprintf(stderr, "fake relay: SIGTERM, exiting\n");
  return strcmp(mode, "badstop") == 0 ? 1 : 0;
}

/* Points the fixture at this program as a fake relay until fake_end(). */
static char real_bin[4096];

static void fake_begin(const char *mode) {
  if (!real_bin[0]) {
    const char *bin = fixture_relay_bin();
    CU_ASSERT_PTR_NOT_NULL_FATAL(bin);
    snprintf(real_bin, sizeof real_bin, "%s", bin);
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  CU_ASSERT_FATAL(n > 0);
  self[n] = '\0';
  setenv("SYNOD_FIXTURE_FAKE_RELAY", real_bin, 1);
  setenv("SYNOD_RELAY_BIN", self, 1);
  setenv("SYNOD_FIXTURE_FAKE_MODE", mode, 1);
}

static void fake_end(void) {
  unsetenv("SYNOD_FIXTURE_FAKE_MODE");
  unsetenv("SYNOD_FIXTURE_FAKE_RELAY");
  setenv("SYNOD_RELAY_BIN", real_bin, 1);
}

static bool port_accepts(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
  close(fd);
  return ok;
}

static void test_run_lifecycle(void) {
  require_pg();
  fake_begin("");
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "run_lifecycle"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 2), 0);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  CU_ASSERT_FALSE(fixture_relay_running(a));
  CU_ASSERT_EQUAL(fixture_relay_stop(a), SYNOD_ENOENT);
  CU_ASSERT_EQUAL(fixture_relay_kill(a), SYNOD_ENOENT);

  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  CU_ASSERT(fixture_relay_running(a));
  CU_ASSERT(fixture_relay_running(b));
  CU_ASSERT(port_accepts(fixture_relay_port(a)));
  CU_ASSERT(port_accepts(fixture_relay_port(b)));
  CU_ASSERT_EQUAL(fixture_relay_start(a), SYNOD_EEXIST);

  /* Paused, it still holds its socket; resumed, it stops cleanly. */
  CU_ASSERT_EQUAL(fixture_relay_pause(a), 0);
  CU_ASSERT(fixture_relay_running(a));
  CU_ASSERT_EQUAL(fixture_relay_resume(a), 0);
  pid_t before = fixture_relay_pid(a);
  CU_ASSERT_EQUAL(fixture_relay_restart(a), 0);
  CU_ASSERT(fixture_relay_pid(a) > 0 && fixture_relay_pid(a) != before);

  /* A paused relay still obeys stop (SIGTERM, then SIGCONT). */
  CU_ASSERT_EQUAL(fixture_relay_pause(b), 0);
  CU_ASSERT_EQUAL(fixture_relay_stop(b), 0);
  CU_ASSERT_FALSE(fixture_relay_running(b));
  CU_ASSERT_FALSE(port_accepts(fixture_relay_port(b)));
  CU_ASSERT_EQUAL(fixture_relay_start(b), 0);

  CU_ASSERT_EQUAL(fixture_relay_kill(a), 0);
  CU_ASSERT_FALSE(fixture_relay_running(a));
  CU_ASSERT_EQUAL(fixture_relay_pid(a), 0);
  CU_ASSERT_EQUAL(fixture_relay_start(a), 0);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);

  /* The run log tells the story, start by start. */
  size_t len = 0;
  FILE *f = fopen(fixture_relay_log_path(a), "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char log[16384];
  len = fread(log, 1, sizeof log - 1, f);
  fclose(f);
  log[len] = '\0';
  CU_ASSERT_PTR_NOT_NULL(strstr(log, "fixture: start 1 of relay-a"));
  CU_ASSERT_PTR_NOT_NULL(strstr(log, "fixture: start 3 of relay-a"));
  CU_ASSERT_PTR_NOT_NULL(strstr(log, "fake relay: listening"));
  CU_ASSERT_PTR_NOT_NULL(strstr(log, "status 137 (SIGKILL)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(log, "status 0 (after SIGTERM)"));
  CU_ASSERT_FALSE(fixture_failed(fx));
  fixture_free(fx);
  fake_end();
}

/* Relays running at teardown are killed; their logs dumped on failure. */
static void test_run_killed_at_teardown(void) {
  require_pg();
  fake_begin("");
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "run_teardown"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 2), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  pid_t pid = fixture_relay_pid(fixture_relay_at(fx, 0));
  uint16_t port = fixture_relay_port(fixture_relay_at(fx, 0));
  fixture_teardown();
  CU_ASSERT(kill(pid, 0) != 0 && errno == ESRCH);
  CU_ASSERT_FALSE(port_accepts(port));
  fake_end();
}

static void test_run_exits_early(void) {
  require_pg();
  fake_begin("exit3");
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "run_early"), 0);
  fixture_relay_t *a = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-a", NULL, &a), 0);
  struct capture c;
  capture_begin(&c);
  int rc = fixture_start_all(fx);
  bool running = fixture_relay_running(a), failed = fixture_failed(fx);
  fixture_free(fx);
  char *text = capture_end(&c);
  CU_ASSERT_EQUAL(rc, SYNOD_ECLOSED);
  CU_ASSERT_FALSE(running);
  CU_ASSERT(failed);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(text, "relay-a exited with status 3 before listening"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "fake relay: pid"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "status 3 (before it was ready)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "######## fixture run_early: logs"));
  free(text);
  fake_end();
}

static void test_run_bad_stop(void) {
  require_pg();
  fake_begin("badstop");
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "run_bad_stop"), 0);
  fixture_relay_t *a = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-a", NULL, &a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(a), 0);
  struct capture c;
  capture_begin(&c);
  int rc = fixture_relay_stop(a);
  bool failed = fixture_failed(fx);
  fixture_free(fx);
  char *text = capture_end(&c);
  CU_ASSERT_EQUAL(rc, SYNOD_EINTERNAL);
  CU_ASSERT(failed);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(text, "exited with status 1 after SIGTERM, not 0"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "status 1 (after SIGTERM)"));
  free(text);
  fake_end();
}

/* A relay that dies on its own is a failure, noticed at teardown. */
static void test_run_dies(void) {
  require_pg();
  fake_begin("");
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "run_dies"), 0);
  fixture_relay_t *a = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-a", NULL, &a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(a), 0);
  CU_ASSERT_FALSE(fixture_failed(fx));
  pid_t pid = fixture_relay_pid(a);
  kill(pid, SIGKILL);
  /* Until it is dead, leaving it for the fixture to reap. */
  siginfo_t info;
  CU_ASSERT_EQUAL(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
  struct capture c;
  capture_begin(&c);
  fixture_free(fx);
  char *text = capture_end(&c);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(text, "relay-a exited by itself with status 137"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "relay-a (127.0.0.1:"));
  free(text);
  fake_end();
}

static CU_TestInfo fixture_tests[] = {
    {"pg_create_drop", test_pg_create_drop},
    {"pg_long_name", test_pg_long_name},
    {"federation", test_federation},
    {"user_add", test_user_add},
    {"settings", test_settings},
    {"teardown_cleans", test_teardown_cleans},
    {"failure_dumps_logs", test_failure_dumps_logs},
    {"pg_restart", test_pg_restart},
    {"run_lifecycle", test_run_lifecycle},
    {"run_killed_at_teardown", test_run_killed_at_teardown},
    {"run_exits_early", test_run_exits_early},
    {"run_bad_stop", test_run_bad_stop},
    {"run_dies", test_run_dies},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"fixture", NULL, NULL, NULL, fixture_teardown, fixture_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  const char *real = getenv("SYNOD_FIXTURE_FAKE_RELAY");
  if (real && argc > 1)
    return fake_relay(real, argc, argv);
  return test_main(argc, argv, suites);
}
