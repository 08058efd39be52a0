/*
 * Suite proving the PostgreSQL plumbing of tests/run.sh: a real server is
 * reachable at SYNOD_TEST_PG, accepts a durable write and reads it back.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "harness.h"

static PGconn *connect_or_fail(void) {
  const char *ci = test_pg_conninfo();
  CU_ASSERT_PTR_NOT_NULL_FATAL(ci); /* tests/run.sh exports SYNOD_TEST_PG */
  PGconn *c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect %s: %s", ci, PQerrorMessage(c));
    PQfinish(c);
    CU_FAIL_FATAL("cannot connect to the test PostgreSQL");
  }
  return c;
}

static void test_roundtrip(void) {
  PGconn *c = connect_or_fail();
  PGresult *r = PQexec(c, "SHOW synchronous_commit");
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
  CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "on");
  PQclear(r);

  r = PQexec(c, "CREATE TEMP TABLE t (id int PRIMARY KEY, v bytea)");
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  const char *params[] = {"7", "\\x00ff"};
  r = PQexecParams(c, "INSERT INTO t VALUES ($1, $2)", 2, NULL, params, NULL,
                   NULL, 0);
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  /* The unique constraint the relay relies on for deduplication. */
  r = PQexecParams(c, "INSERT INTO t VALUES ($1, $2)", 2, NULL, params, NULL,
                   NULL, 0);
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
  CU_ASSERT_STRING_EQUAL(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");
  PQclear(r);
  r = PQexec(c, "SELECT encode(v, 'hex') FROM t WHERE id = 7");
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_TUPLES_OK);
  CU_ASSERT_EQUAL(PQntuples(r), 1);
  if (PQntuples(r) == 1)
    CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "00ff");
  PQclear(r);
  PQfinish(c);
}

static void test_server_version(void) {
  PGconn *c = connect_or_fail();
  CU_ASSERT(PQserverVersion(c) >= 150000);
  PQfinish(c);
}

static CU_TestInfo pg_tests[] = {
    {"roundtrip", test_roundtrip},
    {"server_version", test_server_version},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"pg", NULL, NULL, NULL, NULL, pg_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
