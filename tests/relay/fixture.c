/* See fixture.h. */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <CUnit/CUnit.h>
#include <libpq-fe.h>

#include "synod/keyfile.h"

extern char **environ;

#define DUMP_TAIL_BYTES 65536
#define MAX_ARGS        32
#define PG_NAME_MAX     63 /* NAMEDATALEN - 1 */

struct fixture_pg {
  char *dbname;
  char *conninfo;
};

struct setting {
  char *section, *key, *value; /* value NULL: leave the key out */
};

struct fixture_relay {
  fixture_t *fx;
  char *name, *operator_name;
  char *dir, *conf, *log, *cmdlog, *cmdout, *keyfile, *address;
  uint16_t port;
  char key_line[SYNOD_KEYFILE_TEXT_MAX];
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES];
  fixture_pg_t *pg;
  pid_t pid;     /* of `run`, 0 when not running */
  unsigned runs; /* starts so far, for the log markers */
  struct setting *settings;
  size_t nsettings;
  char **dropped; /* peers left out */
  size_t ndropped;
};

struct fixture {
  char *test;
  fixture_relay_t **relays;
  size_t nrelays;
  bool failed;
  unsigned int cu_failures; /* CU_get_number_of_failures() at creation */
  fixture_t *next;          /* the list of live fixtures */
};

static fixture_t *live;

/* --- small helpers -------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A malloc'd printf. Aborts on out-of-memory: a test cannot go on. */
__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  if (n < 0)
    abort();
  char *s = malloc((size_t)n + 1);
  if (!s)
    abort();
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

static char *xstrdup(const char *s) {
  return fmt("%s", s);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p)
    abort();
  return p;
}

static bool keep_state(void) {
  const char *k = getenv("SYNOD_KEEP_STATE");
  return k && strcmp(k, "1") == 0;
}

static void say(const char *f, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  fputs("fixture: ", stderr);
  vfprintf(stderr, f, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Appends text to the file at path (created 0600). */
static void append_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  close(fd);
}

/* The whole file at path, NUL-terminated, malloc'd; *len its length. At
 * most max bytes, the last ones (*truncated then set). NULL if unreadable. */
static char *read_tail(const char *path, size_t max, size_t *len,
                       bool *truncated) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return NULL;
  }
  size_t size = (size_t)st.st_size, start = size > max ? size - max : 0;
  *truncated = start > 0;
  char *buf = malloc(size - start + 1);
  if (!buf)
    abort();
  size_t got = 0;
  while (got < size - start) {
    ssize_t n = pread(fd, buf + got, size - start - got, (off_t)(start + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  *len = got;
  return buf;
}

static void dump_file(const char *what, const char *path) {
  size_t len = 0;
  bool truncated = false;
  char *text = read_tail(path, DUMP_TAIL_BYTES, &len, &truncated);
  fprintf(stderr, "======== %s: %s%s ========\n", what, path,
          text ? (truncated ? " (last 64 KiB)" : "") : " (absent)");
  if (text) {
    fwrite(text, 1, len, stderr);
    if (len > 0 && text[len - 1] != '\n')
      fputc('\n', stderr);
    free(text);
  }
}

/* Removes path and everything under it; never follows symlinks. */
static void remove_tree(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlink(path);
    return;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *child = fmt("%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
      remove_tree(child);
    else
      unlink(child);
    free(child);
  }
  closedir(d);
  rmdir(path);
}

/* --- child processes ------------------------------------------------------ */

/*
 * Forks and executes argv[0] with the test's environment, stdin from
 * /dev/null and stdout / stderr on out_fd / err_fd. Only async-signal-safe
 * calls between fork and execve ("the child process may only execute
 * async-signal-safe operations until ... one of the exec functions is
 * called", POSIX fork()). Returns the pid, or -1.
 */
static pid_t spawn(char *const argv[], int out_fd, int err_fd) {
  pid_t parent = getpid();
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0)
    return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* Die with the test program, so no relay outlives a crashed test. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
      _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
      _exit(127);
    execve(argv[0], argv, environ);
    static const char msg[] = "fixture: execve failed\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  close(null_fd);
  return pid;
}

/* Decodes a wait status: the exit status, or 128 + the signal. */
static int exit_code(int wstatus) {
  if (WIFEXITED(wstatus))
    return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus))
    return 128 + WTERMSIG(wstatus);
  return -1;
}

/* Waits for pid to exit until the monotonic deadline. 0 with *wstatus set,
 * SYNOD_ETIMEDOUT, or SYNOD_EIO. */
static int wait_until(pid_t pid, int64_t deadline, int *wstatus) {
  int64_t nap = 2;
  for (;;) {
    pid_t w = waitpid(pid, wstatus, WNOHANG);
    if (w == pid)
      return 0;
    if (w < 0 && errno != EINTR)
      return SYNOD_EIO;
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return SYNOD_ETIMEDOUT;
    sleep_ms(nap < left ? nap : left);
    if (nap < 50)
      nap *= 2;
  }
}

/* SIGKILLs pid and reaps it (a killed process is reaped within 10 s unless
 * the kernel holds it in uninterruptible sleep). */
static int kill_and_reap(pid_t pid, int *wstatus) {
  kill(pid, SIGKILL);
  return wait_until(pid, now_ms() + 10000, wstatus);
}

/*
 * Runs argv to completion within timeout_ms, stdout to out_path (truncated)
 * and stderr appended to err_path. *code receives exit_code(). 0 when it
 * exited, SYNOD_ETIMEDOUT (killed), SYNOD_EIO.
 */
static int run_to_end(char *const argv[], const char *out_path,
                      const char *err_path, int64_t timeout_ms, int *code) {
  int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err_fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int rc = SYNOD_EIO;
  if (out_fd < 0 || err_fd < 0) {
    say("cannot open %s or %s: %s", out_path, err_path, strerror(errno));
    goto out;
  }
  pid_t pid = spawn(argv, out_fd, err_fd);
  if (pid < 0) {
    say("cannot start %s: %s", argv[0], strerror(errno));
    goto out;
  }
  int ws = 0;
  rc = wait_until(pid, now_ms() + timeout_ms, &ws);
  if (rc == SYNOD_ETIMEDOUT) {
    say("%s did not finish within %lld ms; killed", argv[0],
        (long long)timeout_ms);
    (void)kill_and_reap(pid, &ws);
  } else if (rc != 0) {
    say("waitpid %s: %s", argv[0], strerror(errno));
  } else {
    *code = exit_code(ws);
  }
out:
  if (out_fd >= 0)
    close(out_fd);
  if (err_fd >= 0)
    close(err_fd);
  return rc;
}

/* --- PostgreSQL ----------------------------------------------------------- */

/* conninfo with dbname replaced (NULL: unchanged), rebuilt from its parsed
 * keywords so a URI works too; connect_timeout added when absent so that
 * no connection attempt is unbounded. malloc'd, or NULL. */
static char *conninfo_with(const char *conninfo, const char *dbname) {
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
  if (!opts) {
    say("cannot parse conninfo '%s': %s", conninfo,
        err ? err : "out of memory");
    PQfreemem(err);
    return NULL;
  }
  size_t cap = strlen(conninfo) + (dbname ? strlen(dbname) : 0) + 64, len = 0;
  bool have_timeout = false;
  char *out = xcalloc(1, cap);
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    const char *v = o->val;
    if (strcmp(o->keyword, "dbname") == 0 && dbname)
      v = dbname;
    if (!v)
      continue;
    if (strcmp(o->keyword, "connect_timeout") == 0)
      have_timeout = true;
    /* keyword='value' with \ and ' escaped: at most 2 bytes each. */
    size_t need = len + strlen(o->keyword) + 2 * strlen(v) + 6;
    if (need >= cap) {
      cap = need * 2;
      out = realloc(out, cap);
      if (!out)
        abort();
    }
    len += (size_t)snprintf(out + len, cap - len, "%s%s='", len ? " " : "",
                            o->keyword);
    for (const char *p = v; *p; p++) {
      if (*p == '\\' || *p == '\'')
        out[len++] = '\\';
      out[len++] = *p;
    }
    out[len++] = '\'';
    out[len] = '\0';
  }
  PQconninfoFree(opts);
  if (!have_timeout) {
    char *t = fmt("%s connect_timeout=10", out);
    free(out);
    out = t;
  }
  return out;
}

/* A connection to the admin database, statements bounded to 60 s. */
static PGconn *admin_connect(void) {
  const char *admin = getenv("SYNOD_TEST_PG_ADMIN");
  if (!admin || !*admin) {
    say("SYNOD_TEST_PG_ADMIN is not set (tests/run.sh exports it)");
    return NULL;
  }
  char *ci = conninfo_with(admin, NULL);
  if (!ci)
    return NULL;
  PGconn *c = PQconnectdb(ci);
  free(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    say("cannot connect to %s: %s", admin, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  /* Quiet: "database ... does not exist, skipping" is expected. */
  PGresult *r = PQexec(c, "SET statement_timeout = '60s';"
                          " SET client_min_messages = warning");
  PQclear(r);
  return c;
}

/* Runs sql with up to one text parameter; returns the result if its status
 * is want, else NULL after saying why. */
static PGresult *exec_want(PGconn *c, const char *sql, const char *param,
                           ExecStatusType want) {
  PGresult *r =
      PQexecParams(c, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
  if (PQresultStatus(r) != want) {
    say("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return NULL;
  }
  return r;
}

/* [a-z0-9] kept (upper case lowered), everything else '_', at most max. */
static void sanitize(char *out, const char *in, size_t max) {
  size_t i = 0;
  for (; i < max && in[i]; i++) {
    char ch = in[i];
    if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a');
    out[i] = ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) ? ch : '_';
  }
  out[i] = '\0';
}

/* DROP DATABASE name after ending its sessions. */
static int drop_database(PGconn *c, const char *name) {
  PGresult *r =
      exec_want(c,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name, PGRES_TUPLES_OK);
  if (!r)
    return SYNOD_EDB;
  PQclear(r);
  char *ident = PQescapeIdentifier(c, name, strlen(name));
  if (!ident)
    return SYNOD_ENOMEM;
  /* WITH (FORCE) also ends sessions that connected since (PostgreSQL 13+). */
  char *sql = fmt("DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
  PQfreemem(ident);
  r = exec_want(c, sql, NULL, PGRES_COMMAND_OK);
  free(sql);
  if (!r)
    return SYNOD_EDB;
  PQclear(r);
  return 0;
}

int fixture_pg_create(fixture_pg_t **out, const char *test, const char *relay) {
  *out = NULL;
  char t[PG_NAME_MAX + 1], rl[25], suffix[48]; /* "_" rl "_" pid */
  sanitize(rl, relay, sizeof rl - 1);
  snprintf(suffix, sizeof suffix, "_%s_%ld", rl, (long)getpid());
  size_t room = PG_NAME_MAX - strlen("synod_") - strlen(suffix);
  sanitize(t, test, room);

  PGconn *c = admin_connect();
  if (!c)
    return getenv("SYNOD_TEST_PG_ADMIN") ? SYNOD_EDB : SYNOD_ECONFIG;
  fixture_pg_t *pg = xcalloc(1, sizeof *pg);
  pg->dbname = fmt("synod_%s%s", t, suffix);
  int rc = drop_database(c, pg->dbname); /* a leftover of a reused pid */
  if (rc == 0) {
    char *ident = PQescapeIdentifier(c, pg->dbname, strlen(pg->dbname));
    char *sql = fmt("CREATE DATABASE %s", ident ? ident : "\"\"");
    PQfreemem(ident);
    PGresult *r = exec_want(c, sql, NULL, PGRES_COMMAND_OK);
    free(sql);
    rc = r ? 0 : SYNOD_EDB;
    PQclear(r);
  }
  const char *admin = getenv("SYNOD_TEST_PG_ADMIN");
  if (rc == 0 && !admin)
    rc = SYNOD_ECONFIG;
  if (rc == 0) {
    pg->conninfo = conninfo_with(admin, pg->dbname);
    if (!pg->conninfo)
      rc = SYNOD_ECONFIG;
  }
  PQfinish(c);
  if (rc != 0) {
    free(pg->dbname);
    free(pg);
    return rc;
  }
  *out = pg;
  return 0;
}

int fixture_pg_drop(fixture_pg_t *pg) {
  if (!pg)
    return 0;
  int rc = 0;
  if (keep_state()) {
    say("SYNOD_KEEP_STATE=1: database %s kept", pg->dbname);
  } else {
    /* Retried: the server may be in the middle of a restart. */
    int64_t deadline = now_ms() + FIXTURE_CMD_MS;
    for (;;) {
      PGconn *c = admin_connect();
      rc = c ? drop_database(c, pg->dbname) : SYNOD_EDB;
      PQfinish(c);
      if (rc == 0 || now_ms() >= deadline)
        break;
      sleep_ms(200);
    }
  }
  free(pg->dbname);
  free(pg->conninfo);
  free(pg);
  return rc;
}

const char *fixture_pg_conninfo(const fixture_pg_t *pg) {
  return pg->conninfo;
}

const char *fixture_pg_dbname(const fixture_pg_t *pg) {
  return pg->dbname;
}

int fixture_pg_exists(const char *dbname) {
  PGconn *c = admin_connect();
  if (!c)
    return SYNOD_EDB;
  PGresult *r = exec_want(c, "SELECT 1 FROM pg_database WHERE datname = $1",
                          dbname, PGRES_TUPLES_OK);
  int rc = r ? PQntuples(r) > 0 : SYNOD_EDB;
  PQclear(r);
  PQfinish(c);
  return rc;
}

int fixture_pg_query(const fixture_pg_t *pg, const char *sql, char *out,
                     size_t outlen) {
  if (out && outlen)
    out[0] = '\0';
  PGconn *c = PQconnectdb(pg->conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    say("cannot connect to %s: %s", pg->dbname, PQerrorMessage(c));
    PQfinish(c);
    return SYNOD_EDB;
  }
  PGresult *r = PQexec(c, "SET statement_timeout = '60s'");
  PQclear(r);
  r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = 0;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    say("%s on %s: %s", sql, pg->dbname, PQerrorMessage(c));
    rc = SYNOD_EDB;
  } else if (out && outlen && st == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
             PQnfields(r) > 0) {
    const char *v = PQgetvalue(r, 0, 0);
    if (strlen(v) >= outlen)
      rc = SYNOD_ETOOBIG;
    else
      memcpy(out, v, strlen(v) + 1);
  }
  PQclear(r);
  PQfinish(c);
  return rc;
}

int fixture_pg_query_i64(const fixture_pg_t *pg, const char *sql,
                         int64_t *value) {
  char text[32];
  int rc = fixture_pg_query(pg, sql, text, sizeof text);
  if (rc != 0)
    return rc;
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (text[0] == '\0' || *end != '\0' || errno != 0) {
    say("%s: '%s' is not an integer", sql, text);
    return SYNOD_EPARSE;
  }
  *value = (int64_t)v;
  return 0;
}

int fixture_pg_restart(void) {
  const char *ctl = getenv("SYNOD_PG_CTL"), *dir = getenv("SYNOD_TEST_PG_DIR");
  if (!ctl || !*ctl || !dir || !*dir) {
    say("SYNOD_PG_CTL and SYNOD_TEST_PG_DIR must be set (tests/run.sh exports "
        "them)");
    return SYNOD_ECONFIG;
  }
  const char *tmp = getenv("TMPDIR");
  char *out = fmt("%s/synod-pg-restart.%ld.log", tmp && *tmp ? tmp : "/tmp",
                  (long)getpid());
  char *argv[] = {(char *)(uintptr_t)ctl, "restart", (char *)(uintptr_t)dir,
                  NULL};
  int code = -1;
  int64_t t0 = now_ms();
  int rc = run_to_end(argv, out, out, FIXTURE_CMD_MS, &code);
  if (rc == 0 && code != 0) {
    say("%s restart %s exited with %d", ctl, dir, code);
    rc = SYNOD_EIO;
  }
  if (rc != 0) {
    dump_file("private-pg.sh restart", out);
    char *log = fmt("%s/server.log", dir);
    dump_file("PostgreSQL", log);
    free(log);
  } else {
    say("PostgreSQL restarted in %lld ms", (long long)(now_ms() - t0));
  }
  unlink(out);
  free(out);
  return rc;
}

/* --- fixtures ------------------------------------------------------------- */

const char *fixture_relay_bin(void) {
  const char *b = getenv("SYNOD_RELAY_BIN");
  if (b && *b)
    return b;
#ifdef SYNOD_RELAY_BIN
  return SYNOD_RELAY_BIN;
#else
  /* Without the build's definition: the build tree's layout, this test in
   * BUILD/tests/relay/ and the relay in BUILD/relay/. */
  static char path[4096 + 32];
  if (!path[0]) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = '\0', strrchr(self, '/')) : NULL;
    if (!slash)
      return NULL;
    *slash = '\0';
    snprintf(path, sizeof path, "%s/../../relay/synod-relay", self);
  }
  return access(path, X_OK) == 0 ? path : NULL;
#endif
}

static void teardown_at_exit(void) {
  fixture_teardown();
}

int fixture_new(fixture_t **out, const char *test) {
  static bool registered;
  *out = NULL;
  if (!fixture_relay_bin()) {
    say("no synod-relay binary: set SYNOD_RELAY_BIN");
    return SYNOD_ECONFIG;
  }
  if (!registered) {
    atexit(teardown_at_exit);
    registered = true;
  }
  fixture_t *fx = xcalloc(1, sizeof *fx);
  fx->test = xstrdup(test);
  fx->cu_failures = CU_get_number_of_failures();
  fx->next = live;
  live = fx;
  *out = fx;
  return 0;
}

void fixture_fail(fixture_t *fx, const char *f, ...) {
  fx->failed = true;
  va_list ap;
  va_start(ap, f);
  fprintf(stderr, "fixture %s: FAILED: ", fx->test);
  vfprintf(stderr, f, ap);
  fputc('\n', stderr);
  va_end(ap);
}

bool fixture_failed(const fixture_t *fx) {
  return fx->failed || CU_get_number_of_failures() > fx->cu_failures;
}

size_t fixture_relay_count(const fixture_t *fx) {
  return fx->nrelays;
}

fixture_relay_t *fixture_relay_at(const fixture_t *fx, size_t i) {
  return i < fx->nrelays ? fx->relays[i] : NULL;
}

fixture_relay_t *fixture_relay_find(const fixture_t *fx, const char *name) {
  for (size_t i = 0; i < fx->nrelays; i++)
    if (strcmp(fx->relays[i]->name, name) == 0)
      return fx->relays[i];
  return NULL;
}

/* A free loopback TCP port: bound with port 0, read back, released. The
 * relay binds it a moment later; libuv sets SO_REUSEADDR, and the kernel
 * hands out ephemeral ports in turn, so a clash is unlikely. */
static int pick_port(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return SYNOD_EIO;
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  int rc = SYNOD_EIO;
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0) {
    *port = ntohs(sin.sin_port);
    rc = 0;
  } else {
    say("cannot pick a loopback port: %s", strerror(errno));
  }
  close(fd);
  return rc;
}

int fixture_add_relay(fixture_t *fx, const char *name,
                      const char *operator_name, fixture_relay_t **out) {
  if (out)
    *out = NULL;
  if (fixture_relay_find(fx, name)) {
    fixture_fail(fx, "relay %s added twice", name);
    return SYNOD_EEXIST;
  }
  fixture_relay_t *r = xcalloc(1, sizeof *r);
  r->fx = fx;
  r->name = xstrdup(name);
  r->operator_name =
      operator_name ? xstrdup(operator_name) : fmt("Org %s", name);
  fixture_relay_t **grown =
      realloc(fx->relays, (fx->nrelays + 1) * sizeof *fx->relays);
  if (!grown)
    abort();
  fx->relays = grown;
  fx->relays[fx->nrelays++] = r; /* from here fixture_free() releases it */

  const char *tmp = getenv("TMPDIR");
  char *tmpl =
      fmt("%s/synod-%s-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", fx->test, name);
  if (!mkdtemp(tmpl)) {
    fixture_fail(fx, "mkdtemp %s: %s", tmpl, strerror(errno));
    free(tmpl);
    return SYNOD_EIO;
  }
  r->dir = tmpl;
  r->conf = fmt("%s/relay.conf", r->dir);
  r->log = fmt("%s/relay.log", r->dir);
  r->cmdlog = fmt("%s/commands.log", r->dir);
  r->cmdout = fmt("%s/command.out", r->dir);
  r->keyfile = fmt("%s/relay.key", r->dir);

  int rc = pick_port(&r->port);
  if (rc != 0) {
    fixture_fail(fx, "%s: no port", name);
    return rc;
  }
  r->address = fmt("127.0.0.1:%u", (unsigned)r->port);
  rc = fixture_pg_create(&r->pg, fx->test, name);
  if (rc != 0) {
    fixture_fail(fx, "%s: cannot create its database: %s", name,
                 synod_strerror(rc));
    return rc;
  }
  /* keygen reads key_file from the configuration: write one without peers
   * first, then the full one once every relay's key is known. */
  if ((rc = fixture_relay_write_config(r)) != 0)
    return rc;
  char outbuf[4096];
  int status = -1;
  rc = fixture_relay_cmd(r, outbuf, sizeof outbuf, &status, "keygen");
  if (rc != 0 || status != 0) {
    fixture_fail(fx, "%s: synod-relay keygen failed (status %d)", name, status);
    return rc ? rc : SYNOD_EINTERNAL;
  }
  /* keygen -c prints a [peer] block; its "key = " line is the key line. */
  const char *k = strstr(outbuf, "\nkey = ");
  if (!k) {
    fixture_fail(fx, "%s: no 'key = ' line in keygen's output:\n%s", name,
                 outbuf);
    return SYNOD_EPARSE;
  }
  k += strlen("\nkey = ");
  size_t klen = strcspn(k, "\n");
  if (klen >= sizeof r->key_line ||
      synod_keyfile_parse_public(r->pk, SYNOD_KEY_ED25519, k, klen) != 0) {
    fixture_fail(fx, "%s: keygen printed a bad key line: %.*s", name, (int)klen,
                 k);
    return SYNOD_EPARSE;
  }
  memcpy(r->key_line, k, klen);
  r->key_line[klen] = '\0';
  if (out)
    *out = r;
  return 0;
}

int fixture_write_configs(fixture_t *fx) {
  for (size_t i = 0; i < fx->nrelays; i++) {
    int rc = fixture_relay_write_config(fx->relays[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int fixture_migrate_all(fixture_t *fx) {
  for (size_t i = 0; i < fx->nrelays; i++) {
    int rc = fixture_relay_migrate(fx->relays[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int fixture_federation(fixture_t *fx, size_t n) {
  if (n == 0 || n > 26) {
    fixture_fail(fx, "fixture_federation: %zu relays (1..26)", n);
    return SYNOD_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    char name[16], op[16];
    snprintf(name, sizeof name, "relay-%c", (char)('a' + i));
    snprintf(op, sizeof op, "Org %c", (char)('A' + i));
    int rc = fixture_add_relay(fx, name, op, NULL);
    if (rc != 0)
      return rc;
  }
  int rc = fixture_write_configs(fx);
  return rc ? rc : fixture_migrate_all(fx);
}

int fixture_start_all(fixture_t *fx) {
  for (size_t i = 0; i < fx->nrelays; i++) {
    int rc = fixture_relay_start(fx->relays[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int fixture_stop_all(fixture_t *fx) {
  int first = 0;
  for (size_t i = 0; i < fx->nrelays; i++) {
    if (fx->relays[i]->pid == 0)
      continue;
    int rc = fixture_relay_stop(fx->relays[i]);
    if (rc != 0 && first == 0)
      first = rc;
  }
  return first;
}

void fixture_dump_logs(const fixture_t *fx) {
  fprintf(stderr, "\n######## fixture %s: logs of every process ########\n",
          fx->test);
  for (size_t i = 0; i < fx->nrelays; i++) {
    const fixture_relay_t *r = fx->relays[i];
    if (!r->dir)
      continue;
    char *what = fmt("%s (%s) run", r->name, r->address ? r->address : "-");
    dump_file(what, r->log);
    free(what);
    what = fmt("%s commands", r->name);
    dump_file(what, r->cmdlog);
    free(what);
    what = fmt("%s configuration", r->name);
    dump_file(what, r->conf);
    free(what);
  }
  const char *pgdir = getenv("SYNOD_TEST_PG_DIR");
  if (pgdir && *pgdir) {
    char *log = fmt("%s/server.log", pgdir);
    dump_file("PostgreSQL (shared by every test)", log);
    free(log);
  }
  fprintf(stderr, "######## fixture %s: end of logs ########\n\n", fx->test);
}

static void relay_free(fixture_relay_t *r, bool keep) {
  (void)fixture_pg_drop(r->pg);
  if (r->dir) {
    if (keep)
      say("SYNOD_KEEP_STATE=1: %s kept in %s", r->name, r->dir);
    else
      remove_tree(r->dir);
  }
  free(r->name);
  free(r->operator_name);
  free(r->dir);
  free(r->conf);
  free(r->log);
  free(r->cmdlog);
  free(r->cmdout);
  free(r->keyfile);
  free(r->address);
  for (size_t i = 0; i < r->nsettings; i++) {
    free(r->settings[i].section);
    free(r->settings[i].key);
    free(r->settings[i].value);
  }
  free(r->settings);
  for (size_t i = 0; i < r->ndropped; i++)
    free(r->dropped[i]);
  free(r->dropped);
  free(r);
}

void fixture_free(fixture_t *fx) {
  if (!fx)
    return;
  for (fixture_t **p = &live; *p; p = &(*p)->next) {
    if (*p == fx) {
      *p = fx->next;
      break;
    }
  }
  /* A relay that exited by itself is a failure to show (chutney checks
   * that every node is still running). */
  for (size_t i = 0; i < fx->nrelays; i++)
    (void)fixture_relay_running(fx->relays[i]);
  bool failed = fixture_failed(fx);
  for (size_t i = 0; i < fx->nrelays; i++) {
    fixture_relay_t *r = fx->relays[i];
    if (r->pid > 0) {
      int ws = 0;
      kill(r->pid, SIGCONT);
      (void)kill_and_reap(r->pid, &ws);
      r->pid = 0;
      append_file(r->log, "fixture: killed at teardown\n");
    }
  }
  if (failed)
    fixture_dump_logs(fx);
  bool keep = keep_state();
  for (size_t i = 0; i < fx->nrelays; i++)
    relay_free(fx->relays[i], keep);
  free(fx->relays);
  free(fx->test);
  free(fx);
}

void fixture_teardown(void) {
  while (live)
    fixture_free(live);
}

/* --- one relay ------------------------------------------------------------ */

const char *fixture_relay_name(const fixture_relay_t *r) {
  return r->name;
}
const char *fixture_relay_operator(const fixture_relay_t *r) {
  return r->operator_name;
}
uint16_t fixture_relay_port(const fixture_relay_t *r) {
  return r->port;
}
const char *fixture_relay_address(const fixture_relay_t *r) {
  return r->address;
}
const char *fixture_relay_dir(const fixture_relay_t *r) {
  return r->dir;
}
const char *fixture_relay_config_path(const fixture_relay_t *r) {
  return r->conf;
}
const char *fixture_relay_log_path(const fixture_relay_t *r) {
  return r->log;
}
const char *fixture_relay_key_line(const fixture_relay_t *r) {
  return r->key_line;
}
const uint8_t *fixture_relay_public_key(const fixture_relay_t *r) {
  return r->pk;
}
fixture_pg_t *fixture_relay_pg(const fixture_relay_t *r) {
  return r->pg;
}
pid_t fixture_relay_pid(const fixture_relay_t *r) {
  return r->pid;
}

static struct setting *find_setting(const fixture_relay_t *r,
                                    const char *section, const char *key) {
  for (size_t i = 0; i < r->nsettings; i++)
    if (strcmp(r->settings[i].section, section) == 0 &&
        strcmp(r->settings[i].key, key) == 0)
      return &r->settings[i];
  return NULL;
}

int fixture_relay_set(fixture_relay_t *r, const char *section, const char *key,
                      const char *value) {
  struct setting *s = find_setting(r, section, key);
  if (!s) {
    struct setting *grown =
        realloc(r->settings, (r->nsettings + 1) * sizeof *r->settings);
    if (!grown)
      abort();
    r->settings = grown;
    s = &r->settings[r->nsettings++];
    s->section = xstrdup(section);
    s->key = xstrdup(key);
    s->value = NULL;
  }
  free(s->value);
  s->value = value ? xstrdup(value) : NULL;
  return 0;
}

int fixture_relay_drop_peer(fixture_relay_t *r, const char *peer) {
  char **grown = realloc(r->dropped, (r->ndropped + 1) * sizeof *r->dropped);
  if (!grown)
    abort();
  r->dropped = grown;
  r->dropped[r->ndropped++] = xstrdup(peer);
  return 0;
}

static bool dropped(const fixture_relay_t *r, const char *peer) {
  for (size_t i = 0; i < r->ndropped; i++)
    if (strcmp(r->dropped[i], peer) == 0)
      return true;
  return false;
}

/* Writes [section] with the fixture's defaults (NULL-terminated pairs),
 * each replaced or removed by a setting, then the settings it lacks. */
static void write_section(FILE *f, const fixture_relay_t *r,
                          const char *section, const char *const *defaults) {
  fprintf(f, "\n[%s]\n", section);
  for (size_t i = 0; defaults && defaults[i]; i += 2) {
    const struct setting *s = find_setting(r, section, defaults[i]);
    const char *v = s ? s->value : defaults[i + 1];
    if (v)
      fprintf(f, "%s = %s\n", defaults[i], v);
  }
  for (size_t i = 0; i < r->nsettings; i++) {
    const struct setting *s = &r->settings[i];
    bool is_default = false;
    for (size_t j = 0; defaults && defaults[j]; j += 2)
      is_default |= strcmp(defaults[j], s->key) == 0;
    if (strcmp(s->section, section) == 0 && !is_default && s->value)
      fprintf(f, "%s = %s\n", s->key, s->value);
  }
}

static bool section_written(const char *const *done, size_t ndone,
                            const char *section) {
  for (size_t i = 0; i < ndone; i++)
    if (strcmp(done[i], section) == 0)
      return true;
  return false;
}

int fixture_relay_write_config(fixture_relay_t *r) {
  fixture_t *fx = r->fx;
  char *tmp = fmt("%s.tmp", r->conf);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    fixture_fail(fx, "%s: cannot write %s: %s", r->name, tmp, strerror(errno));
    if (fd >= 0)
      close(fd);
    free(tmp);
    return SYNOD_EIO;
  }
  char *op = fmt("\"%s\"", r->operator_name);
  const char *relay[] = {"name",      r->name,    "operator", op,
                         "listen",    r->address, "key_file", r->keyfile,
                         "log_level", "debug",    NULL};
  const char *database[] = {"conninfo", r->pg ? r->pg->conninfo : "", NULL};
  const char *federation[] = {"retry_min", "20ms", "retry_max", "500ms", NULL};
  fprintf(f, "# written by tests/relay/fixture.c for test %s\n", fx->test);
  write_section(f, r, "relay", relay);
  write_section(f, r, "database", database);
  write_section(f, r, "federation", federation);
  free(op);

  /* Sections the fixture has no defaults for, and peers, in order. */
  size_t cap = r->nsettings + fx->nrelays + 3, ndone = 0;
  char **done = xcalloc(cap, sizeof *done);
  done[ndone++] = xstrdup("relay");
  done[ndone++] = xstrdup("database");
  done[ndone++] = xstrdup("federation");
  for (size_t i = 0; i < fx->nrelays; i++) {
    const fixture_relay_t *p = fx->relays[i];
    if (p == r || dropped(r, p->name) || p->key_line[0] == '\0')
      continue;
    char *section = fmt("peer \"%s\"", p->name);
    char *pop = fmt("\"%s\"", p->operator_name);
    const char *peer[] = {"address",  p->address, "key", p->key_line,
                          "operator", pop,        NULL};
    write_section(f, r, section, peer);
    free(pop);
    done[ndone++] = section;
  }
  for (size_t i = 0; i < r->nsettings; i++) {
    const char *section = r->settings[i].section;
    if (section_written((const char *const *)done, ndone, section))
      continue;
    write_section(f, r, section, NULL);
    done[ndone++] = xstrdup(section);
  }
  for (size_t i = 0; i < ndone; i++)
    free(done[i]);
  free(done);

  int rc = 0;
  if (fflush(f) != 0 || ferror(f))
    rc = SYNOD_EIO;
  if (fclose(f) != 0)
    rc = SYNOD_EIO;
  if (rc == 0 && rename(tmp, r->conf) != 0)
    rc = SYNOD_EIO;
  if (rc != 0)
    fixture_fail(fx, "%s: cannot write %s: %s", r->name, r->conf,
                 strerror(errno));
  free(tmp);
  return rc;
}

int fixture_relay_cmdv(fixture_relay_t *r, char *out, size_t outlen,
                       int *status, const char *const *args) {
  char *argv[MAX_ARGS + 4];
  size_t argc = 0;
  argv[argc++] = (char *)(uintptr_t)fixture_relay_bin();
  for (const char *const *a = args; *a; a++) {
    if (argc == MAX_ARGS) {
      fixture_fail(r->fx, "fixture_relay_cmd: more than %d arguments",
                   MAX_ARGS);
      return SYNOD_EINVAL;
    }
    argv[argc++] = (char *)(uintptr_t)*a;
  }
  argv[argc++] = "-c";
  argv[argc++] = r->conf;
  argv[argc] = NULL;

  /* The command line, then its stderr, stdout and status, in the log. */
  size_t cmdlen = 0;
  for (size_t i = 1; i < argc; i++)
    cmdlen += strlen(argv[i]) + 1;
  char *line = xcalloc(1, cmdlen + 1);
  for (size_t i = 1; i < argc; i++) {
    strcat(line, argv[i]);
    if (i + 1 < argc)
      strcat(line, " ");
  }
  char *head = fmt("fixture: $ synod-relay %s\n", line);
  append_file(r->cmdlog, head);
  free(head);

  int code = -1;
  int rc = run_to_end(argv, r->cmdout, r->cmdlog, FIXTURE_CMD_MS, &code);
  size_t len = 0;
  bool truncated = false;
  char *text = read_tail(r->cmdout, SIZE_MAX / 2, &len, &truncated);
  if (text) {
    append_file(r->cmdlog, text);
    if (len > 0 && text[len - 1] != '\n')
      append_file(r->cmdlog, "\n");
  }
  char *tail = fmt("fixture: exit status %d%s\n", code,
                   rc == SYNOD_ETIMEDOUT ? " (killed at the deadline)" : "");
  append_file(r->cmdlog, tail);
  free(tail);
  if (status)
    *status = code;
  if (out && outlen) {
    out[0] = '\0';
    if (text && len < outlen)
      memcpy(out, text, len + 1);
    else if (text && rc == 0)
      rc = SYNOD_ETOOBIG;
  }
  if (rc != 0)
    fixture_fail(r->fx, "%s: synod-relay %s: %s", r->name, line,
                 synod_strerror(rc));
  free(text);
  free(line);
  return rc;
}

int fixture_relay_migrate(fixture_relay_t *r) {
  int status = -1;
  int rc = fixture_relay_cmd(r, NULL, 0, &status, "migrate");
  if (rc == 0 && status != 0) {
    fixture_fail(r->fx, "%s: synod-relay migrate exited with %d", r->name,
                 status);
    rc = SYNOD_EINTERNAL;
  }
  return rc;
}

int fixture_relay_user_add(fixture_relay_t *r, const char *name,
                           char code[static FIXTURE_CODE_MAX]) {
  char out[4096];
  int status = -1;
  code[0] = '\0';
  int rc = fixture_relay_cmd(r, out, sizeof out, &status, "user", "add", name);
  if (rc != 0)
    return rc;
  if (status != 0) {
    fixture_fail(r->fx, "%s: synod-relay user add %s exited with %d", r->name,
                 name, status);
    return SYNOD_EINTERNAL;
  }
  static const char label[] = "enrolment code: ";
  const char *c = strstr(out, label);
  if (!c) {
    fixture_fail(r->fx, "%s: no enrolment code in:\n%s", r->name, out);
    return SYNOD_EPARSE;
  }
  c += sizeof label - 1;
  size_t len = strcspn(c, " \r\n");
  if (len == 0 || len >= FIXTURE_CODE_MAX) {
    fixture_fail(r->fx, "%s: bad enrolment code in:\n%s", r->name, out);
    return SYNOD_EPARSE;
  }
  memcpy(code, c, len);
  code[len] = '\0';
  return 0;
}

/* 1 when something accepts TCP connections at 127.0.0.1:port. */
static bool port_open(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  /* A loopback connect() completes or is refused at once: no timeout
   * needed. */
  bool ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
  close(fd);
  return ok;
}

/* Notes how the run process ended, in its log and, unless expected, as a
 * failure. */
static void ended(fixture_relay_t *r, int wstatus, const char *how,
                  bool expected) {
  char *line = fmt("fixture: %s exited with status %d (%s)\n", r->name,
                   exit_code(wstatus), how);
  append_file(r->log, line);
  free(line);
  r->pid = 0;
  if (!expected)
    fixture_fail(r->fx, "%s exited by itself with status %d (%s)", r->name,
                 exit_code(wstatus), how);
}

bool fixture_relay_running(fixture_relay_t *r) {
  if (r->pid <= 0)
    return false;
  int ws = 0;
  pid_t w = waitpid(r->pid, &ws, WNOHANG);
  if (w == r->pid) {
    ended(r, ws, "found exited", false);
    return false;
  }
  return true;
}

int fixture_relay_start(fixture_relay_t *r) {
  if (r->pid > 0)
    return SYNOD_EEXIST;
  char *head = fmt("fixture: start %u of %s: synod-relay run -c %s\n",
                   ++r->runs, r->name, r->conf);
  append_file(r->log, head);
  free(head);
  int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    fixture_fail(r->fx, "%s: open %s: %s", r->name, r->log, strerror(errno));
    return SYNOD_EIO;
  }
  char *argv[] = {(char *)(uintptr_t)fixture_relay_bin(), "run", "-c", r->conf,
                  NULL};
  pid_t pid = spawn(argv, fd, fd);
  close(fd);
  if (pid < 0) {
    fixture_fail(r->fx, "%s: fork: %s", r->name, strerror(errno));
    return SYNOD_EIO;
  }
  r->pid = pid;

  int64_t t0 = now_ms(), deadline = t0 + FIXTURE_READY_MS;
  int ws = 0;
  for (;;) {
    pid_t w = waitpid(pid, &ws, WNOHANG);
    if (w == pid) {
      ended(r, ws, "before it was ready", true);
      fixture_fail(r->fx, "%s exited with status %d before listening on %s",
                   r->name, exit_code(ws), r->address);
      dump_file(r->name, r->log);
      return SYNOD_ECLOSED;
    }
    /* Listening, and still alive (not somebody else on a reused port). */
    if (port_open(r->port) && waitpid(pid, &ws, WNOHANG) == 0)
      break;
    if (now_ms() >= deadline) {
      (void)kill_and_reap(pid, &ws);
      ended(r, ws, "killed: not ready in time", true);
      fixture_fail(r->fx, "%s did not listen on %s within %d ms", r->name,
                   r->address, FIXTURE_READY_MS);
      dump_file(r->name, r->log);
      return SYNOD_ETIMEDOUT;
    }
    sleep_ms(10);
  }
  char *ready = fmt("fixture: %s ready on %s after %lld ms (pid %ld)\n",
                    r->name, r->address, (long long)(now_ms() - t0), (long)pid);
  append_file(r->log, ready);
  free(ready);
  return 0;
}

int fixture_relay_stop(fixture_relay_t *r) {
  if (!fixture_relay_running(r))
    return SYNOD_ENOENT;
  pid_t pid = r->pid;
  /* SIGCONT first: a paused relay acts on SIGTERM once continued. Sent
   * after SIGTERM it could land while the exiting relay's LeakSanitizer
   * stops its threads (ptrace, SIGSTOP) and cancel that stop: LSan then
   * waits forever and the relay never exits. */
  kill(pid, SIGCONT);
  kill(pid, SIGTERM);
  int ws = 0;
  int rc = wait_until(pid, now_ms() + FIXTURE_STOP_MS, &ws);
  if (rc == SYNOD_ETIMEDOUT) {
    (void)kill_and_reap(pid, &ws);
    ended(r, ws, "killed: SIGTERM ignored", true);
    fixture_fail(r->fx, "%s did not exit within %d ms of SIGTERM", r->name,
                 FIXTURE_STOP_MS);
    return rc;
  }
  if (rc != 0) {
    fixture_fail(r->fx, "%s: waitpid: %s", r->name, strerror(errno));
    r->pid = 0;
    return rc;
  }
  ended(r, ws, "after SIGTERM", true);
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    fixture_fail(r->fx, "%s exited with status %d after SIGTERM, not 0",
                 r->name, exit_code(ws));
    return SYNOD_EINTERNAL;
  }
  return 0;
}

int fixture_relay_kill(fixture_relay_t *r) {
  if (!fixture_relay_running(r))
    return SYNOD_ENOENT;
  int ws = 0;
  int rc = kill_and_reap(r->pid, &ws);
  if (rc != 0) {
    fixture_fail(r->fx, "%s: not reaped after SIGKILL", r->name);
    return rc;
  }
  ended(r, ws, "SIGKILL", true);
  return 0;
}

static int signal_relay(fixture_relay_t *r, int sig) {
  if (!fixture_relay_running(r))
    return SYNOD_ENOENT;
  if (kill(r->pid, sig) != 0) {
    fixture_fail(r->fx, "%s: kill: %s", r->name, strerror(errno));
    return SYNOD_EIO;
  }
  char *line = fmt("fixture: %s sent %s\n", r->name, strsignal(sig));
  append_file(r->log, line);
  free(line);
  return 0;
}

int fixture_relay_pause(fixture_relay_t *r) {
  return signal_relay(r, SIGSTOP);
}

int fixture_relay_resume(fixture_relay_t *r) {
  return signal_relay(r, SIGCONT);
}

int fixture_relay_restart(fixture_relay_t *r) {
  int rc = fixture_relay_stop(r);
  return rc ? rc : fixture_relay_start(r);
}
