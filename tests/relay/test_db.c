/*
 * Suite for relay/db.c on a real PostgreSQL (SYNOD_TEST_PG): results reach
 * the callbacks, writes of one loop turn share a transaction, a bad op fails
 * alone, a dead server fails ops fast, and a server restarted under load
 * never yields a success without its row.
 *
 * Tables are set up and checked over a plain blocking libpq connection,
 * outside the loop under test.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "db.h"
#include "harness.h"
#include "synod/err.h"

/* ---- plumbing ------------------------------------------------------------ */

static PGconn *admin(void) {
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

static void admin_exec(const char *sql) {
  PGconn *c = admin();
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
  CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(c);
}

static long admin_count(const char *sql) {
  PGconn *c = admin();
  PGresult *r = PQexec(c, sql);
  long n = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  else
    fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return n;
}

/* One loop, one db, counters the callbacks fill in. */
struct fx {
  uv_loop_t loop;
  uv_timer_t watchdog;
  db_t *db;
  int ups, downs, closed, timed_out;
  int ok, edb, eagain, other, pending;
  void (*on_up)(struct fx *fx);
};

static struct fx *fx_of(db_t *db) {
  return db_data(db);
}

static void on_state(db_t *db, int status) {
  struct fx *fx = fx_of(db);
  if (status == 0) {
    fx->ups++;
    if (fx->on_up)
      fx->on_up(fx);
  } else {
    CU_ASSERT_EQUAL(status, SYNOD_EAGAIN);
    fx->downs++;
  }
}

static void on_closed(db_t *db) {
  fx_of(db)->closed = 1;
}

static void on_watchdog(uv_timer_t *t) {
  struct fx *fx = t->data;
  fx->timed_out = 1;
  fprintf(stderr, "test_db: watchdog fired\n");
  if (fx->db)
    db_close(fx->db, on_closed);
}

static void fx_open(struct fx *fx, const char *conninfo,
                    const db_options_t *base, double watchdog_s) {
  memset(fx, 0, sizeof *fx);
  CU_ASSERT_EQUAL_FATAL(uv_loop_init(&fx->loop), 0);
  uv_timer_init(&fx->loop, &fx->watchdog);
  fx->watchdog.data = fx;
  uv_timer_start(&fx->watchdog, on_watchdog, (uint64_t)(watchdog_s * 1000), 0);
  uv_unref((uv_handle_t *)&fx->watchdog);
  db_options_t o = base ? *base : (db_options_t){0};
  o.on_state = on_state;
  o.data = fx;
  CU_ASSERT_EQUAL_FATAL(db_open(&fx->loop, conninfo, &o, &fx->db), 0);
}

/* Runs the loop until the db is up or the watchdog fires. */
static void fx_wait_up(struct fx *fx) {
  while (!fx->ups && !fx->timed_out)
    uv_run(&fx->loop, UV_RUN_ONCE);
  CU_ASSERT_EQUAL(fx->ups, 1);
}

static void fx_run_until_idle(struct fx *fx) {
  while (fx->pending > 0 && !fx->timed_out)
    uv_run(&fx->loop, UV_RUN_ONCE);
  CU_ASSERT_EQUAL(fx->pending, 0);
}

/* Closes the db, runs the loop dry, closes it: nothing may be left. */
static void fx_close(struct fx *fx) {
  if (!fx->closed)
    db_close(fx->db, on_closed);
  uv_close((uv_handle_t *)&fx->watchdog, NULL);
  CU_ASSERT_EQUAL(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  CU_ASSERT_EQUAL(fx->closed, 1);
  CU_ASSERT_EQUAL(fx->timed_out, 0);
  CU_ASSERT_EQUAL(uv_loop_close(&fx->loop), 0);
}

static void count_status(struct fx *fx, int status) {
  fx->pending--;
  if (status == 0)
    fx->ok++;
  else if (status == SYNOD_EDB)
    fx->edb++;
  else if (status == SYNOD_EAGAIN)
    fx->eagain++;
  else
    fx->other++;
}

static void on_counted(db_t *db, db_op_t *op, int status) {
  (void)op;
  count_status(fx_of(db), status);
}

/* Submits INSERT INTO table (id) VALUES (id) as one op. */
static void submit_insert(struct fx *fx, const char *table, long id,
                          db_op_cb cb, void *data) {
  char sql[128], val[32];
  snprintf(sql, sizeof sql,
           "INSERT INTO %s (id) VALUES ($1::int8) ON CONFLICT DO NOTHING",
           table);
  snprintf(val, sizeof val, "%ld", id);
  const char *values[] = {val};
  db_op_t *op = db_op_new(cb, data, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(op);
  CU_ASSERT_EQUAL_FATAL(db_op_add(op, sql, 1, values, NULL, NULL, 0), 0);
  fx->pending++;
  db_submit(fx->db, op);
}

/* ---- results ------------------------------------------------------------- */

static int results_seen;

static void on_results(db_t *db, db_op_t *op, int status) {
  CU_ASSERT_EQUAL(status, 0);
  CU_ASSERT_EQUAL(db_op_count(op), 3);
  PGresult *ins = db_op_result(op, 0);
  PGresult *upd = db_op_result(op, 1);
  PGresult *sel = db_op_result(op, 2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ins);
  CU_ASSERT_PTR_NOT_NULL_FATAL(upd);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sel);
  CU_ASSERT_EQUAL(PQresultStatus(ins), PGRES_TUPLES_OK);
  CU_ASSERT_EQUAL(PQntuples(ins), 2);
  CU_ASSERT_STRING_EQUAL(PQcmdTuples(upd), "2");
  /* binary result of a binary bytea parameter, byte for byte */
  CU_ASSERT_EQUAL(PQntuples(sel), 1);
  CU_ASSERT_EQUAL(PQfformat(sel, 0), 1);
  CU_ASSERT_EQUAL(PQgetlength(sel, 0, 0), 3);
  CU_ASSERT(memcmp(PQgetvalue(sel, 0, 0), "\x00\xff\x01", 3) == 0);
  CU_ASSERT_PTR_EQUAL(db_op_data(op), &results_seen);
  results_seen++;
  count_status(fx_of(db), status);
}

static void on_read(db_t *db, db_op_t *op, int status) {
  CU_ASSERT_EQUAL(status, 0);
  const PGresult *r = db_op_result(op, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  CU_ASSERT_EQUAL(PQntuples(r), 1);
  CU_ASSERT_STRING_EQUAL(PQgetvalue(r, 0, 0), "42");
  results_seen++;
  count_status(fx_of(db), status);
}

static void test_results(void) {
  admin_exec("DROP TABLE IF EXISTS db_test_results;"
             "CREATE TABLE db_test_results (id int8 PRIMARY KEY, v bytea)");
  struct fx fx;
  fx_open(&fx, test_pg_conninfo(), NULL, 30);
  fx_wait_up(&fx);
  results_seen = 0;

  db_op_t *op = db_op_new(on_results, &results_seen, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(op);
  const char *ids[] = {"1", "2"};
  CU_ASSERT_EQUAL(db_op_add(op,
                            "INSERT INTO db_test_results (id) VALUES ($1), "
                            "($2) RETURNING id",
                            2, ids, NULL, NULL, 0),
                  0);
  const char *blob[] = {"\x00\xff\x01"};
  const int len[] = {3}, fmt[] = {1};
  CU_ASSERT_EQUAL(
      db_op_add(op, "UPDATE db_test_results SET v = $1", 1, blob, len, fmt, 0),
      0);
  CU_ASSERT_EQUAL(db_op_add(op, "SELECT v FROM db_test_results WHERE id = 2", 0,
                            NULL, NULL, NULL, 1),
                  0);
  fx.pending++;
  db_submit(fx.db, op);

  db_op_t *rd = db_op_new(on_read, NULL, DB_OP_READONLY);
  CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
  CU_ASSERT_EQUAL(db_op_add(rd, "SELECT 40 + 2", 0, NULL, NULL, NULL, 0), 0);
  fx.pending++;
  db_submit(fx.db, rd);

  /* An op with no statement completes, later, with 0. */
  db_op_t *empty = db_op_new(on_counted, NULL, 0);
  fx.pending++;
  db_submit(fx.db, empty);
  CU_ASSERT_EQUAL(fx.ok, 0); /* never from inside db_submit() */

  fx_run_until_idle(&fx);
  CU_ASSERT_EQUAL(results_seen, 2);
  CU_ASSERT_EQUAL(fx.ok, 3);
  db_stats_t st;
  db_get_stats(fx.db, &st);
  CU_ASSERT_EQUAL(st.pipelines, 1); /* one loop turn, one pipeline */
  CU_ASSERT_EQUAL(st.transactions, 1);
  fx_close(&fx);
  CU_ASSERT_EQUAL(admin_count("SELECT count(*) FROM db_test_results "
                              "WHERE v = '\\x00ff01'"),
                  2);
  admin_exec("DROP TABLE db_test_results");
}

/* ---- group commit -------------------------------------------------------- */

static void test_group_commit(void) {
  enum { N = 1000 };
  admin_exec("DROP TABLE IF EXISTS db_test_group;"
             "CREATE TABLE db_test_group (id int8 PRIMARY KEY)");
  struct fx fx;
  fx_open(&fx, test_pg_conninfo(), NULL, 60);
  fx_wait_up(&fx);
  db_stats_t before;
  db_get_stats(fx.db, &before);
  for (long i = 0; i < N; i++)
    submit_insert(&fx, "db_test_group", i, on_counted, NULL);
  fx_run_until_idle(&fx);
  db_stats_t st;
  db_get_stats(fx.db, &st);
  uint64_t tx = st.transactions - before.transactions;
  printf("\n    group commit: %d ops in %llu transactions, %llu pipelines\n", N,
         (unsigned long long)tx,
         (unsigned long long)(st.pipelines - before.pipelines));
  CU_ASSERT_EQUAL(fx.ok, N);
  CU_ASSERT(tx >= 1 && tx <= N / 100); /* 256 per batch: 4 */
  CU_ASSERT_EQUAL(st.ops_rerun, 0);
  fx_close(&fx);
  CU_ASSERT_EQUAL(admin_count("SELECT count(*) FROM db_test_group"), N);
  admin_exec("DROP TABLE db_test_group");
}

/* ---- a bad op fails alone ------------------------------------------------ */

static void on_bad(db_t *db, db_op_t *op, int status) {
  CU_ASSERT_EQUAL(status, SYNOD_EDB);
  CU_ASSERT_PTR_NOT_NULL(db_op_sqlstate(op));
  if (db_op_sqlstate(op))
    CU_ASSERT_STRING_EQUAL(db_op_sqlstate(op), "23505");
  *(size_t *)db_op_data(op) = db_op_failed_stmt(op);
  count_status(fx_of(db), status);
}

static void test_bad_op_alone(void) {
  admin_exec("DROP TABLE IF EXISTS db_test_bad;"
             "CREATE TABLE db_test_bad (id int8 PRIMARY KEY);"
             "INSERT INTO db_test_bad VALUES (5)");
  struct fx fx;
  fx_open(&fx, test_pg_conninfo(), NULL, 30);
  fx_wait_up(&fx);
  for (long i = 1; i <= 10; i++) {
    if (i == 5) { /* plain INSERT, no ON CONFLICT: a unique violation */
      size_t *failed = malloc(sizeof *failed);
      db_op_t *op = db_op_new(on_bad, failed, 0);
      CU_ASSERT_EQUAL(db_op_add(op, "INSERT INTO db_test_bad VALUES (5)", 0,
                                NULL, NULL, NULL, 0),
                      0);
      fx.pending++;
      db_submit(fx.db, op);
      fx_run_until_idle(&fx);
      CU_ASSERT_EQUAL(*failed, 0);
      free(failed);
      fx.edb = 0;
      continue;
    }
    submit_insert(&fx, "db_test_bad", i, on_counted, NULL);
  }
  /* the same in the middle of a batch, and a two-statement op whose second
   * statement fails: its first must be rolled back too */
  for (long i = 11; i <= 20; i++)
    submit_insert(&fx, "db_test_bad", i, on_counted, NULL);
  size_t failed2 = 99;
  db_op_t *op = db_op_new(on_bad, &failed2, 0);
  CU_ASSERT_EQUAL(db_op_add(op, "INSERT INTO db_test_bad VALUES (100)", 0, NULL,
                            NULL, NULL, 0),
                  0);
  CU_ASSERT_EQUAL(db_op_add(op, "INSERT INTO db_test_bad VALUES (11)", 0, NULL,
                            NULL, NULL, 0),
                  0);
  fx.pending++;
  db_submit(fx.db, op);
  for (long i = 21; i <= 30; i++)
    submit_insert(&fx, "db_test_bad", i, on_counted, NULL);
  fx_run_until_idle(&fx);

  db_stats_t st;
  db_get_stats(fx.db, &st);
  printf("\n    bad op: ok %d failed %d, ops re-run alone %llu, "
         "transactions %llu, pipelines %llu\n",
         fx.ok, fx.edb, (unsigned long long)st.ops_rerun,
         (unsigned long long)st.transactions, (unsigned long long)st.pipelines);
  CU_ASSERT_EQUAL(fx.ok, 29);
  CU_ASSERT_EQUAL(fx.edb, 1);
  CU_ASSERT_EQUAL(failed2, 1);
  CU_ASSERT(st.ops_rerun >= 21);
  /* and the connection is healthy afterwards */
  submit_insert(&fx, "db_test_bad", 31, on_counted, NULL);
  fx_run_until_idle(&fx);
  CU_ASSERT_EQUAL(fx.ok, 30);
  fx_close(&fx);
  CU_ASSERT_EQUAL(admin_count("SELECT count(*) FROM db_test_bad"), 31);
  CU_ASSERT_EQUAL(admin_count("SELECT count(*) FROM db_test_bad "
                              "WHERE id = 100"),
                  0);
  admin_exec("DROP TABLE db_test_bad");
}

/* A deferred unique constraint fails at COMMIT: in the batch at its COMMIT,
 * and on the lone re-run at the Sync that commits the implicit transaction.
 * Either way the op fails alone, with the whole op as the failing part. */
static void on_deferred(db_t *db, db_op_t *op, int status) {
  CU_ASSERT_EQUAL(status, SYNOD_EDB);
  CU_ASSERT_EQUAL(db_op_failed_stmt(op), db_op_count(op));
  CU_ASSERT_PTR_NOT_NULL(db_op_sqlstate(op));
  if (db_op_sqlstate(op))
    CU_ASSERT_STRING_EQUAL(db_op_sqlstate(op), "23505");
  count_status(fx_of(db), status);
}

static void test_commit_fails(void) {
  admin_exec("DROP TABLE IF EXISTS db_test_deferred;"
             "CREATE TABLE db_test_deferred (id int8,"
             " UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)");
  struct fx fx;
  fx_open(&fx, test_pg_conninfo(), NULL, 30);
  fx_wait_up(&fx);
  for (long i = 1; i <= 3; i++) {
    db_op_t *op = db_op_new(i == 3 ? on_deferred : on_counted, NULL, 0);
    CU_ASSERT_EQUAL(db_op_add(op,
                              i == 3 ? "INSERT INTO db_test_deferred VALUES (1)"
                                     : "INSERT INTO db_test_deferred VALUES "
                                       "($1::int8)",
                              i == 3 ? 0 : 1,
                              (const char *const[]){i == 1 ? "1" : "2"}, NULL,
                              NULL, 0),
                    0);
    fx.pending++;
    db_submit(fx.db, op);
  }
  fx_run_until_idle(&fx);
  CU_ASSERT_EQUAL(fx.ok, 2);
  CU_ASSERT_EQUAL(fx.edb, 1);
  /* and the connection goes on (no ON CONFLICT: it refuses deferrable
   * constraints as arbiters) */
  db_op_t *op = db_op_new(on_counted, NULL, 0);
  CU_ASSERT_EQUAL(db_op_add(op, "INSERT INTO db_test_deferred VALUES (4)", 0,
                            NULL, NULL, NULL, 0),
                  0);
  fx.pending++;
  db_submit(fx.db, op);
  fx_run_until_idle(&fx);
  CU_ASSERT_EQUAL(fx.ok, 3);
  fx_close(&fx);
  CU_ASSERT_EQUAL(admin_count("SELECT count(*) FROM db_test_deferred"), 3);
  admin_exec("DROP TABLE db_test_deferred");
}

/* ---- a dead server ------------------------------------------------------- */

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
  close(fd); /* bound, never listening: connections are refused */
  return ntohs(a.sin_port);
}

static void on_tick_submit(uv_timer_t *t) {
  struct fx *fx = t->data;
  submit_insert(fx, "db_test_nowhere", 1, on_counted, NULL);
}

static void test_dead_server(void) {
  db_t *bad = NULL;
  uv_loop_t l;
  CU_ASSERT_EQUAL_FATAL(uv_loop_init(&l), 0);
  CU_ASSERT_EQUAL(db_open(&l, "no such option=1", NULL, &bad), SYNOD_ECONFIG);
  CU_ASSERT_EQUAL(uv_loop_close(&l), 0);

  char ci[128];
  snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=synod dbname=x",
           closed_port());
  db_options_t o = {.backoff_min_ms = 20, .backoff_max_ms = 80};
  struct fx fx;
  fx_open(&fx, ci, &o, 10);
  uint64_t t0 = uv_now(&fx.loop);
  for (int i = 0; i < 5; i++)
    submit_insert(&fx, "db_test_nowhere", i, on_counted, NULL);
  fx_run_until_idle(&fx);
  CU_ASSERT_EQUAL(fx.eagain, 5);
  CU_ASSERT(uv_now(&fx.loop) - t0 < 1000); /* fast, not a timeout */

  /* keep submitting for a while: reconnects are attempted, all fail fast */
  uv_timer_t tick;
  uv_timer_init(&fx.loop, &tick);
  tick.data = &fx;
  uv_timer_start(&tick, on_tick_submit, 10, 10);
  uint64_t until = uv_now(&fx.loop) + 500;
  while (uv_now(&fx.loop) < until && !fx.timed_out)
    uv_run(&fx.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  fx_run_until_idle(&fx);
  CU_ASSERT(fx.eagain > 20);
  CU_ASSERT_EQUAL(fx.ok + fx.edb + fx.other, 0);
  CU_ASSERT_EQUAL(fx.ups, 0);
  CU_ASSERT_FALSE(db_is_up(fx.db));
  fx_close(&fx);
}

/* ---- restart under load -------------------------------------------------- */

enum { MAXIDS = 200000, PER_TICK = 16, PENDING_MARK = 1 };

struct load {
  struct fx fx;
  uv_timer_t tick;
  uv_process_t child;
  int child_done;
  int64_t child_status;
  long next_id;
  int *status; /* per id: PENDING_MARK until its callback */
  int ok_after_reup;
  int stopping;
};

static void on_load_op(db_t *db, db_op_t *op, int status) {
  struct load *ld = (struct load *)(void *)fx_of(db);
  long id = (long)(intptr_t)db_op_data(op);
  ld->status[id] = status;
  if (status == 0 && ld->fx.downs > 0 && ld->fx.ups > 1)
    ld->ok_after_reup++;
  count_status(&ld->fx, status);
}

static void on_load_tick(uv_timer_t *t) {
  struct load *ld = t->data;
  for (int i = 0; i < PER_TICK && ld->next_id < MAXIDS; i++) {
    long id = ld->next_id++;
    ld->status[id] = PENDING_MARK;
    submit_insert(&ld->fx, "db_test_restart", id, on_load_op,
                  (void *)(intptr_t)id);
  }
}

static void on_child_exit(uv_process_t *p, int64_t exit_status, int sig) {
  struct load *ld = p->data;
  ld->child_done = 1;
  ld->child_status = sig ? -sig : exit_status;
  uv_close((uv_handle_t *)p, NULL);
}

static void test_restart_under_load(void) {
  const char *pgctl = getenv("SYNOD_PG_CTL");
  const char *pgdir = getenv("SYNOD_TEST_PG_DIR");
  CU_ASSERT_PTR_NOT_NULL_FATAL(pgctl); /* exported by tests/run.sh */
  CU_ASSERT_PTR_NOT_NULL_FATAL(pgdir);
  admin_exec("DROP TABLE IF EXISTS db_test_restart;"
             "CREATE TABLE db_test_restart (id int8 PRIMARY KEY)");
  struct load *ld = calloc(1, sizeof *ld);
  ld->status = calloc(MAXIDS, sizeof *ld->status);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ld->status);
  db_options_t o = {.backoff_max_ms = 1000};
  fx_open(&ld->fx, test_pg_conninfo(), &o, 120);
  fx_wait_up(&ld->fx);

  uv_timer_init(&ld->fx.loop, &ld->tick);
  ld->tick.data = ld;
  uv_timer_start(&ld->tick, on_load_tick, 0, 2);
  /* let the load run, then restart the server from a child process */
  uint64_t until = uv_now(&ld->fx.loop) + 300;
  while (uv_now(&ld->fx.loop) < until && !ld->fx.timed_out)
    uv_run(&ld->fx.loop, UV_RUN_ONCE);
  char *file = strdup(pgctl), *dir = strdup(pgdir), verb[] = "restart";
  char *args[] = {file, verb, dir, NULL};
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t po = {.exit_cb = on_child_exit,
                             .file = file,
                             .args = args,
                             .stdio_count = 3,
                             .stdio = stdio};
  ld->child.data = ld;
  CU_ASSERT_EQUAL_FATAL(uv_spawn(&ld->fx.loop, &ld->child, &po), 0);
  free(file);
  free(dir);
  int ok_before = ld->fx.ok;
  /* load goes on until the restart is over and writes succeed again */
  while (!ld->fx.timed_out && !(ld->child_done && ld->ok_after_reup >= 1000))
    uv_run(&ld->fx.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&ld->tick, NULL);
  fx_run_until_idle(&ld->fx);

  db_stats_t st;
  db_get_stats(ld->fx.db, &st);
  CU_ASSERT_EQUAL(ld->child_status, 0);
  CU_ASSERT(ok_before > 0);
  CU_ASSERT(ld->fx.downs >= 1);
  CU_ASSERT_EQUAL(ld->fx.ups, ld->fx.downs + 1);
  CU_ASSERT(ld->ok_after_reup >= 1000);
  CU_ASSERT(ld->fx.eagain > 0);
  CU_ASSERT_EQUAL(ld->fx.edb + ld->fx.other, 0);
  fx_close(&ld->fx);

  /* every success has its row; EAGAIN may or may not (THE SUBTLE CASE) */
  PGconn *c = admin();
  PGresult *r = PQexec(c, "SELECT id FROM db_test_restart");
  CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
  char *present = calloc(MAXIDS, 1);
  for (int i = 0; i < PQntuples(r); i++) {
    long id = strtol(PQgetvalue(r, i, 0), NULL, 10);
    if (id >= 0 && id < MAXIDS)
      present[id] = 1;
  }
  long missing = 0, ok = 0, again = 0, again_present = 0, pending = 0;
  for (long id = 0; id < ld->next_id; id++) {
    if (ld->status[id] == 0) {
      ok++;
      missing += !present[id];
    } else if (ld->status[id] == SYNOD_EAGAIN) {
      again++;
      again_present += present[id];
    } else if (ld->status[id] == PENDING_MARK) {
      pending++;
    }
  }
  printf("\n    restart: %ld ops, %ld ok (%d after reconnect), %ld EAGAIN "
         "(%ld of them committed anyway), %ld ok without row; "
         "%llu transactions, %llu pipelines, %llu disconnects\n",
         ld->next_id, ok, ld->ok_after_reup, again, again_present, missing,
         (unsigned long long)st.transactions, (unsigned long long)st.pipelines,
         (unsigned long long)st.disconnects);
  CU_ASSERT_EQUAL(missing, 0);
  CU_ASSERT_EQUAL(pending, 0);
  PQclear(r);
  PQfinish(c);
  free(present);
  free(ld->status);
  free(ld);
  admin_exec("DROP TABLE db_test_restart");
}

/* ---- close ------------------------------------------------------------- */

static void test_close_drains(void) {
  admin_exec("DROP TABLE IF EXISTS db_test_close;"
             "CREATE TABLE db_test_close (id int8 PRIMARY KEY)");
  struct fx fx;
  fx_open(&fx, test_pg_conninfo(), NULL, 30);
  fx_wait_up(&fx);
  /* queued before the close: committed; submitted after: ECLOSED */
  for (long i = 0; i < 300; i++)
    submit_insert(&fx, "db_test_close", i, on_counted, NULL);
  db_close(fx.db, on_closed);
  submit_insert(&fx, "db_test_close", 1000, on_counted, NULL);
  fx_close(&fx);
  CU_ASSERT_EQUAL(fx.ok, 300);
  CU_ASSERT_EQUAL(fx.other, 1); /* SYNOD_ECLOSED */
  CU_ASSERT_EQUAL(fx.pending, 0);
  CU_ASSERT_EQUAL(admin_count("SELECT count(*) FROM db_test_close"), 300);
  admin_exec("DROP TABLE db_test_close");

  /* closing while the server is unreachable ends at once */
  char ci[128];
  snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=synod dbname=x",
           closed_port());
  fx_open(&fx, ci, NULL, 10);
  submit_insert(&fx, "db_test_close", 1, on_counted, NULL);
  fx_close(&fx);
  CU_ASSERT_EQUAL(fx.eagain + fx.other, 1);
}

/* ---- LISTEN / NOTIFY ----------------------------------------------------- */

static char notified[64];

static void on_notify(db_t *db, const char *channel, const char *payload) {
  (void)db;
  CU_ASSERT_STRING_EQUAL(channel, "db_test_chan");
  snprintf(notified, sizeof notified, "%s", payload);
}

static void on_listening(db_t *db, db_op_t *op, int status) {
  (void)op;
  CU_ASSERT_EQUAL(status, 0);
  /* LISTEN was queued ahead of this op, so it has committed: notify */
  const char *v[] = {"db_test_chan", "hello"};
  db_op_t *n = db_op_new(on_counted, NULL, 0);
  CU_ASSERT_EQUAL(db_op_add(n, "SELECT pg_notify($1, $2)", 2, v, NULL, NULL, 0),
                  0);
  fx_of(db)->pending++;
  db_submit(db, n);
  count_status(fx_of(db), status);
}

static void test_listen(void) {
  struct fx fx;
  fx_open(&fx, test_pg_conninfo(), NULL, 30);
  notified[0] = 0;
  CU_ASSERT_EQUAL(db_listen(fx.db, "db_test_chan", on_notify), 0);
  fx_wait_up(&fx);
  db_op_t *op = db_op_new(on_listening, NULL, 0);
  CU_ASSERT_EQUAL(db_op_add(op, "SELECT 1", 0, NULL, NULL, NULL, 0), 0);
  fx.pending++;
  db_submit(fx.db, op);
  fx_run_until_idle(&fx);
  while (!notified[0] && !fx.timed_out)
    uv_run(&fx.loop, UV_RUN_ONCE);
  CU_ASSERT_STRING_EQUAL(notified, "hello");

  /* A failed write leaves no aborted transaction behind to hold back
   * notifications (they are delivered only between transactions). */
  db_op_t *bad = db_op_new(on_counted, NULL, 0);
  CU_ASSERT_EQUAL(db_op_add(bad, "SELECT 1/0", 0, NULL, NULL, NULL, 0), 0);
  fx.pending++;
  db_submit(fx.db, bad);
  fx_run_until_idle(&fx);
  CU_ASSERT_EQUAL(fx.edb, 1);
  for (int i = 0; i < 20; i++) { /* let the ROLLBACK go out and back */
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  admin_exec("NOTIFY db_test_chan, 'again'");
  while (strcmp(notified, "again") != 0 && !fx.timed_out)
    uv_run(&fx.loop, UV_RUN_ONCE);
  CU_ASSERT_STRING_EQUAL(notified, "again");
  fx_close(&fx);
}

static CU_TestInfo db_tests[] = {
    {"results", test_results},
    {"group_commit", test_group_commit},
    {"bad_op_alone", test_bad_op_alone},
    {"commit_fails", test_commit_fails},
    {"dead_server", test_dead_server},
    {"close_drains", test_close_drains},
    {"listen", test_listen},
    {"restart_under_load", test_restart_under_load},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"db", NULL, NULL, NULL, NULL, db_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
