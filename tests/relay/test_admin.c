/*
 * Suite for relay/admin.c, through the real synod-relay binary (found next
 * to this test in the build tree, or at $SYNOD_RELAY_BIN) and a real
 * PostgreSQL database made through SYNOD_TEST_PG_ADMIN (tests/run.sh).
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "admin.h"
#include "config.h"
#include "harness.h"
#include "schema.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"

static char bin[PATH_MAX];
static char tmpdir[64];
static char conf[128];
static char dbname[64];
static char db_conninfo[512];

/* What the last run() printed. */
static char out[16384];
static char err[16384];

static int admin_exec(const char *sql) {
  PGconn *c = PQconnectdb(getenv("SYNOD_TEST_PG_ADMIN"));
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : -1;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static void read_file(const char *path, char *buf, size_t len) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static int setup(void) {
  const char *env = getenv("SYNOD_RELAY_BIN");
  if (env != NULL) {
    snprintf(bin, sizeof bin, "%s", env);
  } else {
    /* build/tests/relay/<this> -> build/relay/synod-relay */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
      return -1;
    self[n] = '\0';
    snprintf(bin, sizeof bin, "%s/../../relay/synod-relay", dirname(self));
  }
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "no synod-relay at %s (set SYNOD_RELAY_BIN)\n", bin);
    return -1;
  }
  const char *admin = getenv("SYNOD_TEST_PG_ADMIN");
  if (admin == NULL) {
    fprintf(stderr, "SYNOD_TEST_PG_ADMIN is not set (run tests/run.sh)\n");
    return -1;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/synod-admin-test.XXXXXX");
  if (mkdtemp(tmpdir) == NULL)
    return -1;
  snprintf(dbname, sizeof dbname, "synod_admin_test_%ld", (long)getpid());
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
  if (admin_exec(sql) != 0)
    return -1;
  snprintf(db_conninfo, sizeof db_conninfo, "%s dbname=%s", admin, dbname);
  snprintf(conf, sizeof conf, "%s/relay.conf", tmpdir);
  char text[2048];
  snprintf(text, sizeof text,
           "[relay]\n"
           "name = relay-a.test\n"
           "operator = \"Org A\"\n"
           "listen = 0.0.0.0:17400\n"
           "key_file = relay.key\n"
           "[database]\n"
           "conninfo = %s\n"
           "[peer \"relay-b.test\"]\n"
           "address = 127.0.0.1:17401\n"
           "key = synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
           "operator = Org B\n",
           db_conninfo);
  FILE *f = fopen(conf, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  fclose(f);
  return 0;
}

static int teardown(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  int rc = system(cmd);
  char sql[128];
  snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", dbname);
  return admin_exec(sql) == 0 && rc == 0 ? 0 : -1;
}

/* Runs synod-relay with the given arguments (NULL-terminated); returns its
 * exit status, with its output in out and err. */
static int run(const char *arg, ...) {
  const char *argv[16] = {bin};
  int argc = 1;
  va_list ap;
  va_start(ap, arg);
  for (const char *a = arg; a != NULL && argc < 15;
       a = va_arg(ap, const char *))
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;

  char opath[160], epath[160];
  snprintf(opath, sizeof opath, "%s/stdout", tmpdir);
  snprintf(epath, sizeof epath, "%s/stderr", tmpdir);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if (pid == 0) {
    int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
      _exit(127);
    unsetenv("SYNOD_RELAY_CONFIG");
    char *args[16];
    for (int i = 0; i <= argc; i++)
      args[i] = argv[i] != NULL ? strdup(argv[i]) : NULL;
    execv(bin, args);
    _exit(127);
  }
  int st = 0;
  CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
  read_file(opath, out, sizeof out);
  read_file(epath, err, sizeof err);
  CU_ASSERT_FATAL(WIFEXITED(st));
  return WEXITSTATUS(st);
}

/* Truncating string copy. */
static void copy(char *dst, size_t len, const char *src) {
  size_t n = strlen(src);
  if (n >= len)
    n = len - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static void test_help(void) {
  static const char *const cmds[][2] = {
      {"keygen", NULL},   {"pubkey", NULL},     {"migrate", NULL},
      {"user", "add"},    {"user", "list"},     {"user", "disable"},
      {"user", "enable"}, {"user", "reenroll"}, {"status", NULL},
      {"run", NULL},
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    int rc = cmds[i][1] ? run(cmds[i][0], cmds[i][1], "--help", NULL)
                        : run(cmds[i][0], "--help", NULL);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: synod-relay "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status: 0 success"));
  }
  CU_ASSERT_EQUAL(run("--help", NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "user add"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "  run "));
  CU_ASSERT_EQUAL(run("--version", NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "synod-relay "));
  CU_ASSERT_EQUAL(run(NULL), 2);
  CU_ASSERT_EQUAL(run("frobnicate", NULL), 2);
  CU_ASSERT_EQUAL(run("user", NULL), 2);
  CU_ASSERT_EQUAL(run("user", "frob", NULL), 2);
  CU_ASSERT_EQUAL(run("user", "--help", NULL), 0);
  CU_ASSERT_EQUAL(run("migrate", "--bogus", NULL), 2);
  CU_ASSERT_EQUAL(run("migrate", "-c", NULL), 2);
  CU_ASSERT_EQUAL(run("user", "add", NULL), 2);
}

static void test_keygen(void) {
  char key[160], line[SYNOD_KEYFILE_TEXT_MAX + 1];
  snprintf(key, sizeof key, "%s/other.key", tmpdir);
  CU_ASSERT_EQUAL_FATAL(run("keygen", "-k", key, NULL), 0);
  CU_ASSERT_EQUAL(strncmp(out, "synod-ed25519 ", 14), 0);
  copy(line, sizeof line, out);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(key, &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  uint8_t pk[32], sk[32], pk2[32];
  CU_ASSERT_EQUAL(
      synod_keyfile_parse_public(pk, SYNOD_KEY_ED25519, line, strlen(line)), 0);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_read_secret(sk, SYNOD_KEY_ED25519, key),
                        0);
  CU_ASSERT_EQUAL(synod_ed25519_public(pk2, sk), 0);
  synod_wipe(sk, sizeof sk);
  CU_ASSERT(memcmp(pk, pk2, 32) == 0);

  /* Never overwrites: exit 1 with the reason, the file unchanged. */
  CU_ASSERT_EQUAL(run("keygen", "-k", key, NULL), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "already exists"));
  CU_ASSERT_STRING_EQUAL(out, "");
  CU_ASSERT_EQUAL(run("pubkey", "-k", key, NULL), 0);
  CU_ASSERT_STRING_EQUAL(out, line);

  CU_ASSERT_EQUAL(run("keygen", "-k", key, "-c", conf, NULL), 2);
  CU_ASSERT_EQUAL(run("keygen", "extra", NULL), 2);
}

/* keygen -c prints a block that another relay's config accepts as is. */
static void test_keygen_block(void) {
  CU_ASSERT_EQUAL_FATAL(run("keygen", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "[peer \"relay-a.test\"]\n"));
  /* listen is a wildcard: peers are told the name instead */
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "address = relay-a.test:17400\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "operator = \"Org A\"\n"));
  char block[4096];
  copy(block, sizeof block, out);
  CU_ASSERT_EQUAL(run("keygen", "-c", conf, NULL), 1);

  char other[160], text[8192];
  snprintf(other, sizeof other, "%s/relay-b.conf", tmpdir);
  snprintf(text, sizeof text,
           "[relay]\nname = relay-b.test\nlisten = 127.0.0.1:17401\n"
           "key_file = b.key\n[database]\nconninfo = x\n%s",
           block);
  write_file(other, text);
  relay_config_t cfg;
  char msg[CONFIG_ERR_MAX];
  int rc = config_load(&cfg, other, msg, sizeof msg);
  if (rc != 0)
    fprintf(stderr, "\n  %s\n", msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const relay_config_peer_t *a = config_find_peer(&cfg, "relay-a.test");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_STRING_EQUAL(a->operator_name, "Org A");
  char key[160];
  snprintf(key, sizeof key, "%s/relay.key", tmpdir);
  uint8_t sk[32], pk[32];
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_read_secret(sk, SYNOD_KEY_ED25519, key),
                        0);
  CU_ASSERT_EQUAL(synod_ed25519_public(pk, sk), 0);
  synod_wipe(sk, sizeof sk);
  CU_ASSERT(memcmp(pk, a->key, 32) == 0);
  config_free(&cfg);

  CU_ASSERT_EQUAL(run("pubkey", "-c", conf, NULL), 0);
  CU_ASSERT_STRING_EQUAL(out, block);
}

static void test_bad_config(void) {
  char bad[160];
  snprintf(bad, sizeof bad, "%s/bad.conf", tmpdir);
  write_file(bad, "[relay]\nname = relay-a.test\nlisten = nowhere\n");
  CU_ASSERT_EQUAL(run("status", "-c", bad, NULL), 2);
  char want[256];
  snprintf(want, sizeof want, "synod-relay: %s:3: listen: expected host:port\n",
           bad);
  CU_ASSERT_STRING_EQUAL(err, want);
  CU_ASSERT_EQUAL(run("migrate", "-c", "/nonexistent.conf", NULL), 2);
}

/* The database's enroll_code_hash for name, hex. */
static void stored_hash(const char *name, char *hex, size_t len) {
  PGconn *c = PQconnectdb(db_conninfo);
  const char *params[1] = {name};
  PGresult *r = PQexecParams(c,
                             "SELECT encode(enroll_code_hash, 'hex') FROM"
                             " accounts WHERE name = $1",
                             1, NULL, params, NULL, NULL, 0);
  snprintf(hex, len, "%s",
           PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
               ? PQgetvalue(r, 0, 0)
               : "?");
  PQclear(r);
  PQfinish(c);
}

static void test_users(void) {
  /* Before migrate, commands that need the tables say so. */
  CU_ASSERT_EQUAL(run("user", "add", "alice", "-c", conf, NULL), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "run synod-relay migrate"));

  CU_ASSERT_EQUAL(run("migrate", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "applied schema version 1: "));
  CU_ASSERT_EQUAL(run("migrate", "-c", conf, NULL), 0);
  char want[64];
  snprintf(want, sizeof want, "schema is up to date at version %d\n",
           schema_latest_version());
  CU_ASSERT_STRING_EQUAL(out, want);

  CU_ASSERT_EQUAL(run("user", "add", "alice", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "added alice@relay-a.test\n"));
  const char *code = strstr(out, "enrolment code: ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(code);
  code += strlen("enrolment code: ");
  CU_ASSERT_EQUAL(strcspn(code, "\n"), ADMIN_ENROLL_CODE_TEXT - 1);
  /* Only the hash is stored, and it is the hash of the printed code. */
  uint8_t h[SYNOD_SHA256_BYTES];
  CU_ASSERT_EQUAL_FATAL(
      admin_enroll_code_hash(h, code, ADMIN_ENROLL_CODE_TEXT - 1), 0);
  char hex[65], stored[80];
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", h[i]);
  stored_hash("alice", stored, sizeof stored);
  CU_ASSERT_STRING_EQUAL(stored, hex);

  CU_ASSERT_EQUAL(run("user", "add", "alice", "-c", conf, NULL), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "user alice already exists"));
  CU_ASSERT_EQUAL(run("user", "add", "Alice", "-c", conf, NULL), 2);
  CU_ASSERT_EQUAL(run("user", "add", "-c", conf, "a b", NULL), 2);
  CU_ASSERT_EQUAL(run("user", "add", "-c", conf, NULL), 2);
  CU_ASSERT_EQUAL(run("user", "add", "bob", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "valid until: 20"));

  CU_ASSERT_EQUAL(run("user", "list", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "NAME"));
  const char *row = strstr(out, "\nalice ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(row);
  CU_ASSERT_PTR_NOT_NULL(strstr(row, "pending"));

  CU_ASSERT_EQUAL(run("user", "disable", "bob", "-c", conf, NULL), 0);
  CU_ASSERT_EQUAL(run("user", "disable", "carol", "-c", conf, NULL), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "no such user: carol"));

  CU_ASSERT_EQUAL(run("user", "list", "--json", "-c", conf, NULL), 0);
  json_object *list = json_tokener_parse(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(list);
  CU_ASSERT_EQUAL_FATAL(json_object_array_length(list), 2);
  json_object *bob = json_object_array_get_idx(list, 1);
  CU_ASSERT_STRING_EQUAL(test_str_field(bob, "name"), "bob");
  CU_ASSERT_STRING_EQUAL(test_str_field(bob, "user"), "bob@relay-a.test");
  CU_ASSERT_STRING_EQUAL(test_str_field(bob, "state"), "pending");
  json_object *v = NULL;
  CU_ASSERT(json_object_object_get_ex(bob, "disabled", &v) &&
            json_object_get_boolean(v));
  CU_ASSERT(json_object_object_get_ex(bob, "stored_bytes", &v) &&
            json_object_get_int64(v) == 0);
  json_object_put(list);

  CU_ASSERT_EQUAL(run("status", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(out, "accounts: 2 total, 0 enrolled, 1 disabled\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "relay-b.test"));

  CU_ASSERT_EQUAL(run("user", "enable", "bob", "-c", conf, NULL), 0);
  CU_ASSERT_EQUAL(run("status", "-c", conf, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(out, "accounts: 2 total, 0 enrolled, 0 disabled\n"));
}

static void test_enroll_code(void) {
  char a[ADMIN_ENROLL_CODE_TEXT], b[ADMIN_ENROLL_CODE_TEXT];
  CU_ASSERT_EQUAL(admin_enroll_code_new(a), 0);
  CU_ASSERT_EQUAL(admin_enroll_code_new(b), 0);
  CU_ASSERT_STRING_NOT_EQUAL(a, b);
  CU_ASSERT_EQUAL(strlen(a), 24);
  CU_ASSERT(a[4] == '-' && a[9] == '-' && a[14] == '-' && a[19] == '-');
  uint8_t h1[32], h2[32];
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h1, "ABCD-EFGH-IJKL-MNOP-2345", 24),
                  0);
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h2, "abcd efgh ijkl mnop 2345", 24),
                  0);
  CU_ASSERT(memcmp(h1, h2, 32) == 0);
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h2, "ABCDEFGHIJKLMNOP2345", 20), 0);
  CU_ASSERT(memcmp(h1, h2, 32) == 0);
  uint8_t want[32];
  CU_ASSERT_EQUAL(
      synod_sha256(want, (const uint8_t *)"ABCDEFGHIJKLMNOP2345", 20), 0);
  CU_ASSERT(memcmp(h1, want, 32) == 0);
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h2, "ABCD-EFGH-IJKL-MNOP-234", 23),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h2, "ABCD-EFGH-IJKL-MNOP-23456", 25),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h2, "ABCD-EFGH-IJKL-MNOP-2341", 24),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(admin_enroll_code_hash(h2, "ABCD-EFGH-IJKL-MNOP-234\0", 24),
                  SYNOD_EPARSE);
}

static CU_TestInfo admin_tests[] = {
    {"help", test_help},
    {"keygen", test_keygen},
    {"keygen_block", test_keygen_block},
    {"bad_config", test_bad_config},
    {"users", test_users},
    {"enroll_code", test_enroll_code},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"admin", setup, teardown, NULL, NULL, admin_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
