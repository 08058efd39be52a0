/*
 * Suite for relay/schema.c against a real PostgreSQL: each test gets a fresh
 * database, made through SYNOD_TEST_PG_ADMIN (tests/run.sh) and dropped
 * afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"
#include "schema.h"
#include "synod/err.h"

static char dbname[64];
static char conninfo[512];
static int serial;

static PGconn *admin_connect(void) {
  const char *ci = getenv("SYNOD_TEST_PG_ADMIN");
  if (ci == NULL) {
    fprintf(stderr, "SYNOD_TEST_PG_ADMIN is not set (run tests/run.sh)\n");
    return NULL;
  }
  PGconn *c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect %s: %s", ci, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

static void admin_exec(const char *sql) {
  PGconn *c = admin_connect();
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(c);
}

/* CREATE DATABASE synod_schema_test_<pid>_<n>; conninfo points at it. */
static void fresh_db(void) {
  char sql[128];
  snprintf(dbname, sizeof dbname, "synod_schema_test_%ld_%d", (long)getpid(),
           ++serial);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
  admin_exec(sql);
  /* A later dbname= in a conninfo string overrides an earlier one. */
  snprintf(conninfo, sizeof conninfo, "%s dbname=%s",
           getenv("SYNOD_TEST_PG_ADMIN"), dbname);
}

static void drop_db(void) {
  char sql[128];
  snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", dbname);
  admin_exec(sql);
}

static PGconn *db_connect(void) {
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK)
    fprintf(stderr, "connect %s: %s", conninfo, PQerrorMessage(c));
  CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
  return c;
}

/* The single value of a one-row query, as text (static buffer). */
static const char *scalar(PGconn *c, const char *sql) {
  static char buf[256];
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
  CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
  CU_ASSERT_EQUAL_FATAL(PQntuples(r), 1);
  snprintf(buf, sizeof buf, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return buf;
}

/* The SQLSTATE of sql, "" on success. */
static const char *sqlstate(PGconn *c, const char *sql) {
  static char buf[8];
  PGresult *r = PQexec(c, sql);
  const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  snprintf(buf, sizeof buf, "%s", s != NULL ? s : "");
  PQclear(r);
  return buf;
}

struct applied {
  int count;
  int last;
};

static void on_applied(void *data, const schema_migration_t *m) {
  struct applied *a = data;
  a->count++;
  a->last = m->version;
}

static void test_list(void) {
  size_t n;
  const schema_migration_t *m = schema_migrations(&n);
  CU_ASSERT_FATAL(n >= 1);
  for (size_t i = 0; i < n; i++) {
    CU_ASSERT_EQUAL(m[i].version, (int)i + 1); /* no gaps, in order */
    CU_ASSERT(strlen(m[i].description) > 0);
    CU_ASSERT_PTR_NULL(strchr(m[i].description, '\n'));
  }
  CU_ASSERT_EQUAL(schema_latest_version(), m[n - 1].version);
}

static void test_apply_v1(void) {
  fresh_db();
  PGconn *c = db_connect();
  char err[512];
  int v = -1;
  CU_ASSERT_EQUAL(schema_current_version(c, &v, err, sizeof err), 0);
  CU_ASSERT_EQUAL(v, 0);
  CU_ASSERT_EQUAL(schema_check(c, err, sizeof err), SYNOD_EVERSION);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "run synod-relay migrate"));

  struct applied a = {0};
  CU_ASSERT_EQUAL(schema_migrate(c, on_applied, &a, &v, err, sizeof err), 0);
  CU_ASSERT_EQUAL(v, schema_latest_version());
  CU_ASSERT_EQUAL(a.count, schema_latest_version());
  CU_ASSERT_EQUAL(a.last, schema_latest_version());
  CU_ASSERT_EQUAL(schema_check(c, err, sizeof err), 0);
  CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);

  CU_ASSERT_STRING_EQUAL(
      scalar(c, "SELECT description FROM synod_schema WHERE version = 1"),
      "messaging: accounts, inbox, outbox, notices");
  CU_ASSERT_STRING_EQUAL(
      scalar(c,
             "SELECT applied_at > now() - interval '1 hour' FROM synod_schema"
             " WHERE version = 1"),
      "t");
  CU_ASSERT_STRING_EQUAL(
      scalar(c, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename IN ('accounts', 'inbox', 'outbox', 'notices')"),
      "4");

  /* The constraints the relay relies on. */
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c, "INSERT INTO accounts (name) VALUES ('alice'), ('bob')"), "");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c, "INSERT INTO accounts (name) VALUES ('alice')"), "23505");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c, "INSERT INTO accounts (name) VALUES ('Alice')"), "23514");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(
          c,
          "INSERT INTO inbox (message_id, account_id, sender, sender_relay,"
          " expires_at, envelope) SELECT '\\x00112233445566778899aabbccddeeff',"
          " id, 'carol@b.test', 'b.test', now() + interval '1 day', '\\x01' FROM accounts"
          " WHERE name = 'alice'"),
      "");
  /* A re-forwarded duplicate collides with the key, also as a tombstone. */
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c, "UPDATE inbox SET envelope = NULL, delivered_at = now()"),
      "");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(
          c,
          "INSERT INTO inbox (message_id, account_id, sender, sender_relay,"
          " expires_at, envelope) SELECT '\\x00112233445566778899aabbccddeeff',"
          " id, 'carol@b.test', 'b.test', now() + interval '1 day', '\\x01' FROM accounts"
          " WHERE name = 'bob'"),
      "23505");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(
          c,
          "INSERT INTO inbox (message_id, account_id, sender, sender_relay,"
          " expires_at) SELECT '\\x0011', id, 'c@b.test', 'b.test', now() FROM accounts"
          " WHERE name = 'bob'"),
      "23514");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c,
               "INSERT INTO outbox (message_id, peer, sender_account, sender,"
               " recipient, expires_at, envelope) SELECT"
               " '\\x00112233445566778899aabbccddeef0', 'b.test', id,"
               " 'alice@a.test', 'carol@b.test', now(), '\\x02' FROM accounts"
               " WHERE name = 'alice'"),
      "");
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c,
               "INSERT INTO notices (account_id, message_id, kind, body)"
               " SELECT id, '\\x00112233445566778899aabbccddeef0', 'expired',"
               " '\\x03' FROM accounts WHERE name = 'alice'"),
      "");
  /* Deleting an account takes its inbox and notices, keeps its outbox. */
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c, "DELETE FROM accounts WHERE name = 'alice'"), "");
  CU_ASSERT_STRING_EQUAL(scalar(c, "SELECT count(*) FROM inbox"), "0");
  CU_ASSERT_STRING_EQUAL(scalar(c, "SELECT count(*) FROM notices"), "0");
  CU_ASSERT_STRING_EQUAL(scalar(c, "SELECT sender_account IS NULL FROM outbox"),
                         "t");
  PQfinish(c);
  drop_db();
}

static void test_rerun(void) {
  fresh_db();
  PGconn *c = db_connect();
  char err[512];
  int v = -1;
  struct applied a = {0};
  CU_ASSERT_EQUAL(schema_migrate(c, on_applied, &a, &v, err, sizeof err), 0);
  CU_ASSERT_EQUAL(a.count, schema_latest_version());
  a.count = 0;
  v = -1;
  CU_ASSERT_EQUAL(schema_migrate(c, on_applied, &a, &v, err, sizeof err), 0);
  CU_ASSERT_EQUAL(a.count, 0);
  CU_ASSERT_EQUAL(v, schema_latest_version());
  CU_ASSERT_STRING_EQUAL(err, "");
  char want[16];
  snprintf(want, sizeof want, "%d", schema_latest_version());
  CU_ASSERT_STRING_EQUAL(scalar(c, "SELECT count(*) FROM synod_schema"), want);
  PQfinish(c);
  drop_db();
}

static void test_newer_refused(void) {
  fresh_db();
  PGconn *c = db_connect();
  char err[512];
  int v = -1;
  CU_ASSERT_EQUAL(schema_migrate(c, NULL, NULL, &v, err, sizeof err), 0);
  CU_ASSERT_STRING_EQUAL(
      sqlstate(c, "INSERT INTO synod_schema (version, description)"
                  " VALUES (99, 'from the future')"),
      "");
  struct applied a = {0};
  CU_ASSERT_EQUAL(schema_migrate(c, on_applied, &a, &v, err, sizeof err),
                  SYNOD_EVERSION);
  CU_ASSERT_EQUAL(a.count, 0);
  CU_ASSERT_EQUAL(v, 99);
  char want[256];
  snprintf(want, sizeof want,
           "the database schema is at version 99, newer than this "
           "synod-relay knows (%d): upgrade synod-relay",
           schema_latest_version());
  CU_ASSERT_STRING_EQUAL(err, want);
  CU_ASSERT_EQUAL(schema_check(c, err, sizeof err), SYNOD_EVERSION);
  CU_ASSERT_STRING_EQUAL(err, want);
  CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
  PQfinish(c);
  drop_db();
}

/* A failing statement leaves the database as it was: no half migration. */
static void test_failure_rolls_back(void) {
  fresh_db();
  PGconn *c = db_connect();
  char err[512];
  int v = -1;
  /* A table in the way makes migration 1 fail part-way. */
  CU_ASSERT_STRING_EQUAL(sqlstate(c, "CREATE TABLE outbox (x int)"), "");
  CU_ASSERT_EQUAL(schema_migrate(c, NULL, NULL, &v, err, sizeof err),
                  SYNOD_EDB);
  CU_ASSERT_EQUAL(v, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "migration 1 (messaging"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "already exists"));
  CU_ASSERT_EQUAL(PQtransactionStatus(c), PQTRANS_IDLE);
  CU_ASSERT_STRING_EQUAL(scalar(c, "SELECT to_regclass('accounts') IS NULL"),
                         "t");
  CU_ASSERT_STRING_EQUAL(
      scalar(c, "SELECT to_regclass('synod_schema') IS NULL"), "t");
  PQfinish(c);
  drop_db();
}

/* Two relays migrating one database at once: the advisory lock makes one
 * wait for the other, and each migration is applied once. */
static void test_concurrent(void) {
  fresh_db();
  enum { N = 4 };
  pid_t kids[N];
  for (int i = 0; i < N; i++) {
    kids[i] = fork();
    CU_ASSERT_FATAL(kids[i] >= 0);
    if (kids[i] == 0) {
      PGconn *c = PQconnectdb(conninfo);
      char err[512];
      int rc = PQstatus(c) == CONNECTION_OK
                   ? schema_migrate(c, NULL, NULL, NULL, err, sizeof err)
                   : SYNOD_EDB;
      if (rc != 0)
        fprintf(stderr, "child %d: %s\n", i, err);
      PQfinish(c);
      _exit(rc == 0 ? 0 : 1);
    }
  }
  for (int i = 0; i < N; i++) {
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(kids[i], &st, 0), kids[i]);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  PGconn *c = db_connect();
  char want[16];
  snprintf(want, sizeof want, "%d", schema_latest_version());
  CU_ASSERT_STRING_EQUAL(scalar(c, "SELECT count(*) FROM synod_schema"), want);
  PQfinish(c);
  drop_db();
}

static CU_TestInfo schema_tests[] = {
    {"list", test_list},
    {"apply_v1", test_apply_v1},
    {"rerun", test_rerun},
    {"newer_refused", test_newer_refused},
    {"failure_rolls_back", test_failure_rolls_back},
    {"concurrent", test_concurrent},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"schema", NULL, NULL, NULL, NULL, schema_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
