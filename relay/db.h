/*
 * db: the relay's asynchronous PostgreSQL connection, with group commit.
 *
 * One db_t is one libpq connection driven by the process's libuv loop: it
 * connects with PQconnectStart/PQconnectPoll, keeps the socket in
 * non-blocking pipeline mode and polls it with uv_poll_t, so nothing here
 * ever blocks the loop.
 *
 * Unit of work: an op, an ordered list of parameterised statements plus a
 * completion callback. Ops submitted while a batch is in flight, or in the
 * same loop iteration, are queued and sent together as ONE pipeline:
 *
 *   [ROLLBACK; Sync]                      only after a failed batch
 *   stmts of read-only op 1; Sync          one implicit transaction each
 *   ...
 *   BEGIN; stmts of write op 1; stmts of write op 2; ...; COMMIT; Sync
 *
 * so N write ops cost one transaction and one WAL flush, not N. Write ops
 * complete as soon as the COMMIT result arrives; a relay acknowledges a
 * message from that callback and not before. At most max_batch_ops ops go
 * in one pipeline; one pipeline is in flight at a time (while its COMMIT is
 * being flushed, the next batch accumulates).
 *
 * Failure isolation: if any statement of the write transaction fails, the
 * whole transaction is rolled back and every op of it is re-run in the next
 * pipeline alone, each in its own implicit transaction ("If the client has
 * not issued an explicit BEGIN, then each Sync ordinarily causes an implicit
 * COMMIT if the preceding step(s) succeeded, or an implicit ROLLBACK if they
 * failed", PostgreSQL protocol docs, Pipelining). So one bad op (a unique
 * violation, say) fails alone with SYNOD_EDB and its neighbours commit, one
 * round trip later. The result is the same as running the ops one after the
 * other in submission order, each atomically.
 *
 * Connection loss: every op whose COMMIT was not confirmed, in flight or
 * queued, completes with SYNOD_EAGAIN; ops submitted while the connection
 * is down complete with SYNOD_EAGAIN at once (on the next loop iteration,
 * with no I/O). The db reconnects by itself with exponential backoff and
 * full jitter (a random delay in [0, min(backoff_max, backoff_min * 2^n)])
 * and tells the owner of each up/down transition.
 *
 * THE SUBTLE CASE: if the connection is lost after a COMMIT was sent but
 * before its result arrived, the op reports SYNOD_EAGAIN although the
 * transaction may have committed. Nothing acknowledged is lost (callers
 * acknowledge only on status 0), but a write may be applied and then
 * retried. Every write must therefore be idempotent: key rows on the
 * message id and write INSERT ... ON CONFLICT (id) DO NOTHING, so a retry of
 * a write that did commit is a no-op rather than a unique violation.
 *
 * A dead server that keeps the TCP connection open is detected by the
 * kernel, not by a timer here: put keepalives_idle / tcp_user_timeout in
 * the conninfo. Give host as an address (or hostaddr): libpq resolves a
 * host name with a blocking getaddrinfo() inside PQconnectStart().
 *
 * Statements must not contain transaction control (BEGIN, COMMIT, SAVEPOINT)
 * or commands that cannot run in a transaction block; SQL is one command
 * per statement (pipeline mode uses the extended protocol).
 */
#ifndef SYNOD_RELAY_DB_H
#define SYNOD_RELAY_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

typedef struct db db_t;
typedef struct db_op db_op_t;

/* Called on every connection state transition: status 0 when the
 * connection came up (ops are accepted again; after a down period,
 * notifications may have been missed, so listeners should rescan), and
 * SYNOD_EAGAIN when it went down (the relay should stop acknowledging). */
typedef void (*db_state_cb)(db_t *db, int status);

/* Called once per submitted op, always from the loop, never from inside
 * db_submit(). status: 0 committed (read-only: executed); SYNOD_EDB a
 * statement failed and the op was rolled back (db_op_failed_stmt(),
 * db_op_sqlstate()); SYNOD_EAGAIN no database now, or the connection was
 * lost before the commit was confirmed (see THE SUBTLE CASE above);
 * SYNOD_ECLOSED submitted after db_close(); SYNOD_ENOMEM. The op and its
 * results are freed when the callback returns. */
typedef void (*db_op_cb)(db_t *db, db_op_t *op, int status);

/* A NOTIFY on a channel this db LISTENs to. Both strings are valid for the
 * duration of the call. */
typedef void (*db_notify_cb)(db_t *db, const char *channel,
                             const char *payload);

/* Zero fields take the defaults given. */
typedef struct db_options {
  unsigned max_batch_ops;      /* ops per pipeline; 256 */
  uint64_t backoff_min_ms;     /* first reconnect delay cap; 100 */
  uint64_t backoff_max_ms;     /* reconnect delay cap; 10000 */
  uint64_t connect_timeout_ms; /* one connection attempt; 10000 */
  db_state_cb on_state;        /* may be NULL */
  void *data;                  /* the owner's context, see db_data() */
} db_options_t;

typedef struct db_stats {
  uint64_t pipelines;    /* pipelines sent */
  uint64_t transactions; /* write transactions whose COMMIT was confirmed */
  uint64_t ops_ok;       /* ops completed with 0 */
  uint64_t ops_failed;   /* ops completed with SYNOD_EDB */
  uint64_t ops_eagain;   /* ops completed with SYNOD_EAGAIN */
  uint64_t ops_rerun;    /* ops re-run alone after their batch failed */
  uint64_t connects;     /* connections established */
  uint64_t disconnects;  /* established connections lost */
} db_stats_t;

/* Flags of db_op_new(). */
enum {
  /* Run outside the write transaction, in an implicit transaction of its
   * own, ahead of the batch's writes; it does not see them. */
  DB_OP_READONLY = 1u << 0,
};

/* Creates a db on loop and starts connecting to conninfo (a libpq
 * connection string, copied). options may be NULL. Returns 0 and *out, or
 * SYNOD_ECONFIG (conninfo does not parse), SYNOD_EINVAL, SYNOD_ENOMEM. A
 * server that cannot be reached is not an error: the db keeps retrying
 * and its ops complete with SYNOD_EAGAIN until it is up. */
int db_open(uv_loop_t *loop, const char *conninfo, const db_options_t *options,
            db_t **out);

/* Stops accepting ops (later ones complete with SYNOD_ECLOSED), lets the
 * in-flight batch and the ops already queued finish (or fail with
 * SYNOD_EAGAIN if the connection is down), closes the connection and its
 * handles, then calls cb (may be NULL) and frees db. db stays valid until
 * cb returns. */
void db_close(db_t *db, void (*cb)(db_t *db));

/* Submits op (from db_op_new) and gives it to db: the callback is called
 * exactly once, later, from the loop. */
void db_submit(db_t *db, db_op_t *op);

/* 1 while connected and accepting ops, else 0. */
int db_is_up(const db_t *db);

/* The data given in db_options_t. */
void *db_data(const db_t *db);

/* Copies the counters into *out. */
void db_get_stats(const db_t *db, db_stats_t *out);

/* LISTENs to channel (copied) on this connection and on every reconnect,
 * calling cb for each notification. Returns 0, SYNOD_EINVAL or
 * SYNOD_ENOMEM. Notifications sent while the connection was down are
 * lost: treat an up transition as "rescan". Send with an op running
 * SELECT pg_notify($1, $2); inside a batch it is delivered at COMMIT. */
int db_listen(db_t *db, const char *channel, db_notify_cb cb);

/* A new empty op, or NULL when out of memory. data is the caller's and is
 * returned by db_op_data(). Free with db_op_free() unless submitted. */
db_op_t *db_op_new(db_op_cb cb, void *data, unsigned flags);

/* Appends a statement: sql with $1..$nparams, as PQsendQueryParams takes
 * them (paramTypes NULL: the server infers types, so cast binary params
 * in the SQL, e.g. $1::int8). values[i] NULL is SQL NULL; formats NULL
 * means all text; lengths[i] is read for binary params only (NULL lengths:
 * every param is text). result_format 0 text, 1 binary. Everything is
 * copied, nothing is borrowed. Returns 0, SYNOD_EINVAL or SYNOD_ENOMEM. */
int db_op_add(db_op_t *op, const char *sql, int nparams,
              const char *const *values, const int *lengths, const int *formats,
              int result_format);

/* Frees an op that was never submitted. */
void db_op_free(db_op_t *op);

/* Inside the completion callback only: */
void *db_op_data(const db_op_t *op);
size_t db_op_count(const db_op_t *op);
/* The result of statement i (rows: PQntuples/PQgetvalue; affected rows:
 * PQcmdTuples), borrowed until the callback returns (never PQclear it;
 * not const because PQcmdTuples takes a non-const pointer); NULL if it did not
 * run. With SYNOD_EDB, the failing statement's result is the error and
 * earlier ones are from the rolled-back attempt. */
PGresult *db_op_result(const db_op_t *op, size_t i);
/* With SYNOD_EDB: the index of the failing statement (or db_op_count()
 * when the commit itself failed), and its SQLSTATE ("23505") or NULL. */
size_t db_op_failed_stmt(const db_op_t *op);
const char *db_op_sqlstate(const db_op_t *op);

#endif
