/* See db.h: asynchronous libpq on the loop, one pipeline per batch. */
#include "db.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/err.h"

#define DB_DEFAULT_BATCH      256u
#define DB_DEFAULT_BACKOFF    100u
#define DB_DEFAULT_BACKOFF_MX 10000u
#define DB_DEFAULT_CONNECT_TO 10000u
#define DB_NO_SEG             UINT32_MAX
/* Most distinct statements prepared on one connection; beyond, the rest
 * run unnamed (parsed and planned each time), as every statement once did. */
#define DB_MAX_PREPARED 256u

/* clang-format off */
#define container_of(ptr, type, member)                                        \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
/* clang-format on */

enum db_state {
  ST_DOWN,       /* waiting for the backoff timer */
  ST_CONNECTING, /* PQconnectPoll in progress, timer = attempt timeout */
  ST_UP,         /* in pipeline mode, ops accepted */
  ST_TORN,       /* handles closing, about to be freed */
};

struct db_stmt {
  char *mem; /* one block: values[], lengths[], formats[], sql, param bytes */
  const char *sql;
  const char *const *values;
  const int *lengths;
  const int *formats;
  int nparams;
  int result_format;
  int prep; /* its prepared statement in this batch, or -1 */
  PGresult *res;
};

struct db_op {
  db_t *db;
  db_op_cb cb;
  void *data;
  unsigned flags;
  int isolate; /* re-run alone after its batch failed */
  int status;  /* for deferred completion */
  struct db_stmt *stmts;
  size_t nstmts, capstmts;
  size_t failed;     /* failing statement, nstmts when BEGIN/COMMIT failed */
  PGresult *err_res; /* error not tied to a statement */
  db_op_t *next;
};

/* What the next result of the pipeline belongs to. */
enum { E_ROLLBACK, E_BEGIN, E_STMT, E_COMMIT, E_SYNC, E_PREPARE };
struct expect {
  uint8_t kind;
  uint32_t seg;  /* index in segs, DB_NO_SEG for the ROLLBACK and PREPARE
                  * segments */
  uint32_t op;   /* index in bops (E_STMT), in prepared (E_PREPARE) */
  uint32_t stmt; /* index in the op (E_STMT) */
};

/* A run of ops ended by one Sync: one transaction. */
struct seg {
  uint32_t lo, hi; /* ops bops[lo..hi) */
  uint8_t group;   /* explicit BEGIN..COMMIT around several ops */
  uint8_t failed;
  uint8_t done; /* its ops have completed */
};

/* One per socket libpq gave us; libpq may switch sockets while connecting
 * ("the socket may change after each PQconnectPoll call"). */
struct db_sock {
  uv_poll_t poll;
  db_t *db;
  int fd;
  int events;
};

/* A statement prepared on the current connection as "synod_<index>". */
struct prepared {
  uint64_t hash;
  char *sql; /* NULL once its Parse failed: never used again */
};

struct listener {
  char *channel;
  db_notify_cb cb;
  struct listener *next;
};

struct db {
  uv_loop_t *loop;
  char *conninfo;
  db_options_t opt;
  PGconn *conn;
  struct db_sock *sock;
  uv_timer_t timer;
  uv_idle_t kick;
  int state;
  int closing;
  unsigned handles; /* open uv handles; freed at zero once torn */
  unsigned attempt; /* failed connection attempts since the last success */
  uint64_t rng;
  int need_rollback; /* a failed group left an aborted transaction block */
  void (*close_cb)(db_t *db);

  db_op_t *qhead, *qtail; /* waiting for the next batch */
  db_op_t *dhead, *dtail; /* completed without I/O, callbacks pending */

  int inflight;
  db_op_t **bops; /* the batch's ops; NULL once completed */
  uint32_t nbops;
  struct seg *segs;
  uint32_t nsegs;
  struct expect *exp;
  size_t nexp, capexp, cur;
  int got;        /* current expect has its result */
  unsigned nulls; /* consecutive NULL results at a Sync */

  struct listener *listeners;
  db_stats_t stats;

  /* Server-side prepared statements of this connection, by SQL text: the
   * relay runs a couple of dozen statements over and over, and parsing,
   * analysing and planning each execution anew was the largest share of
   * the server's time under load (perf, tests/bench). */
  struct prepared *prep;
  uint32_t nprep;
};

static void pump(db_t *db);
static void conn_lost(db_t *db);
static void start_connect(db_t *db);
static void on_poll(uv_poll_t *h, int status, int events);
static void on_kick(uv_idle_t *h);

/* ---- ops ---------------------------------------------------------------- */

db_op_t *db_op_new(db_op_cb cb, void *data, unsigned flags) {
  db_op_t *op = calloc(1, sizeof *op);
  if (!op)
    return NULL;
  op->cb = cb;
  op->data = data;
  op->flags = flags;
  return op;
}

static void op_clear_results(db_op_t *op) {
  for (size_t i = 0; i < op->nstmts; i++) {
    PQclear(op->stmts[i].res);
    op->stmts[i].res = NULL;
  }
  PQclear(op->err_res);
  op->err_res = NULL;
  op->failed = op->nstmts;
}

void db_op_free(db_op_t *op) {
  if (!op)
    return;
  op_clear_results(op);
  for (size_t i = 0; i < op->nstmts; i++)
    free(op->stmts[i].mem);
  free(op->stmts);
  free(op);
}

int db_op_add(db_op_t *op, const char *sql, int nparams,
              const char *const *values, const int *lengths, const int *formats,
              int result_format) {
  if (!op || !sql || nparams < 0 || nparams > 65535 ||
      (nparams > 0 && !values) || (result_format != 0 && result_format != 1))
    return SYNOD_EINVAL;
  size_t np = (size_t)nparams, sqllen = strlen(sql) + 1, data = 0;
  for (size_t i = 0; i < np; i++) {
    if (!values[i])
      continue;
    int bin = formats && formats[i];
    if (bin && (!lengths || lengths[i] < 0))
      return SYNOD_EINVAL;
    data += bin ? (size_t)lengths[i] : strlen(values[i]) + 1;
  }
  if (op->nstmts == op->capstmts) {
    size_t cap = op->capstmts ? op->capstmts * 2 : 2;
    struct db_stmt *s = realloc(op->stmts, cap * sizeof *s);
    if (!s)
      return SYNOD_ENOMEM;
    op->stmts = s;
    op->capstmts = cap;
  }
  /* Pointers first, then ints, then bytes: each part stays aligned. */
  size_t ptrs = np * sizeof(char *), ints = np * sizeof(int);
  char *mem = malloc(ptrs + 2 * ints + sqllen + data + 1);
  if (!mem)
    return SYNOD_ENOMEM;
  const char **v = (const char **)(void *)mem;
  int *len = (int *)(void *)(mem + ptrs);
  int *fmt = (int *)(void *)(mem + ptrs + ints);
  char *p = mem + ptrs + 2 * ints;
  memcpy(p, sql, sqllen);
  const char *sqlcopy = p;
  p += sqllen;
  for (size_t i = 0; i < np; i++) {
    int bin = formats && formats[i];
    fmt[i] = bin;
    if (!values[i]) {
      v[i] = NULL;
      len[i] = 0;
      continue;
    }
    size_t n = bin ? (size_t)lengths[i] : strlen(values[i]) + 1;
    memcpy(p, values[i], n);
    v[i] = p;
    len[i] = bin ? lengths[i] : (int)(n - 1);
    p += n;
  }
  struct db_stmt *s = &op->stmts[op->nstmts++];
  *s = (struct db_stmt){.mem = mem,
                        .sql = sqlcopy,
                        .values = v,
                        .lengths = len,
                        .formats = fmt,
                        .nparams = nparams,
                        .result_format = result_format};
  op->failed = op->nstmts;
  return 0;
}

void *db_op_data(const db_op_t *op) {
  return op->data;
}

size_t db_op_count(const db_op_t *op) {
  return op->nstmts;
}

PGresult *db_op_result(const db_op_t *op, size_t i) {
  return i < op->nstmts ? op->stmts[i].res : NULL;
}

size_t db_op_failed_stmt(const db_op_t *op) {
  return op->failed;
}

const char *db_op_sqlstate(const db_op_t *op) {
  const PGresult *r =
      op->failed < op->nstmts ? op->stmts[op->failed].res : op->err_res;
  return r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
}

/* ---- completion ---------------------------------------------------------- */

static void complete(db_t *db, db_op_t *op, int status) {
  switch (status) {
  case 0:
    db->stats.ops_ok++;
    break;
  case SYNOD_EDB:
    db->stats.ops_failed++;
    break;
  case SYNOD_EAGAIN:
    db->stats.ops_eagain++;
    break;
  default:
    break;
  }
  if (op->cb)
    op->cb(db, op, status);
  db_op_free(op);
}

static void kick(db_t *db) {
  if (db->state != ST_TORN && !uv_is_active((uv_handle_t *)&db->kick))
    uv_idle_start(&db->kick, on_kick);
}

/* Completion without I/O: the callback runs from the loop, never from
 * inside db_submit(). */
static void defer_complete(db_t *db, db_op_t *op, int status) {
  op->status = status;
  op->next = NULL;
  if (db->dtail)
    db->dtail->next = op;
  else
    db->dhead = op;
  db->dtail = op;
  kick(db);
}

static void drain_deferred(db_t *db) {
  while (db->dhead) {
    db_op_t *op = db->dhead;
    db->dhead = op->next;
    if (!db->dhead)
      db->dtail = NULL;
    complete(db, op, op->status);
  }
}

static void fail_queue(db_t *db, int status) {
  db_op_t *op = db->qhead;
  db->qhead = db->qtail = NULL;
  while (op) {
    db_op_t *next = op->next;
    complete(db, op, status);
    op = next;
  }
}

/* ---- teardown ------------------------------------------------------------ */

/* Prepared statements die with their connection. */
static void prep_forget(db_t *db) {
  for (uint32_t i = 0; i < db->nprep; i++)
    free(db->prep[i].sql);
  free(db->prep);
  db->prep = NULL;
  db->nprep = 0;
}

static uint64_t sql_hash(const char *s) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211u;
  return h;
}

static void maybe_free(db_t *db) {
  if (db->state != ST_TORN || db->handles)
    return;
  drain_deferred(db); /* ops submitted from callbacks while closing */
  if (db->close_cb)
    db->close_cb(db);
  while (db->listeners) {
    struct listener *l = db->listeners;
    db->listeners = l->next;
    free(l->channel);
    free(l);
  }
  free(db->exp);
  free(db->segs);
  free(db->bops);
  free(db->conninfo);
  prep_forget(db);
  free(db);
}

static void on_handle_close(uv_handle_t *h) {
  db_t *db = h->data;
  db->handles--;
  maybe_free(db);
}

static void on_sock_close(uv_handle_t *h) {
  struct db_sock *s = container_of(h, struct db_sock, poll);
  db_t *db = s->db;
  free(s);
  db->handles--;
  maybe_free(db);
}

/* Stops polling before libpq closes the descriptor, or right after it did,
 * with no loop turn in between (libuv: "The user should not close a file
 * descriptor while it is being polled by an active poll handle"). */
static void close_sock(db_t *db) {
  if (!db->sock)
    return;
  uv_close((uv_handle_t *)&db->sock->poll, on_sock_close);
  db->sock = NULL;
}

static void drop_conn(db_t *db) {
  close_sock(db);
  if (db->conn)
    PQfinish(db->conn);
  db->conn = NULL;
}

static void teardown(db_t *db) {
  drain_deferred(db);
  db->state = ST_TORN;
  drop_conn(db);
  uv_close((uv_handle_t *)&db->timer, on_handle_close);
  uv_close((uv_handle_t *)&db->kick, on_handle_close);
}

/* ---- socket -------------------------------------------------------------- */

static int watch(db_t *db, int events) {
  int fd = PQsocket(db->conn);
  if (fd < 0)
    return -1;
  if (db->sock && db->sock->fd != fd)
    close_sock(db);
  if (!db->sock) {
    struct db_sock *s = calloc(1, sizeof *s);
    if (!s)
      return -1;
    if (uv_poll_init_socket(db->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->db = db;
    s->fd = fd;
    s->events = 0;
    db->handles++;
    db->sock = s;
  }
  if (db->sock->events != events) {
    if (uv_poll_start(&db->sock->poll, events, on_poll) != 0)
      return -1;
    db->sock->events = events;
  }
  return 0;
}

/* "If it returns 1, wait for the socket to become read- or write-ready. If
 * it becomes write-ready, call PQflush again. If it becomes read-ready,
 * call PQconsumeInput, then call PQflush again." (libpq, PQflush) */
static int flush(db_t *db) {
  int r = PQflush(db->conn);
  if (r < 0)
    return -1;
  return watch(db, r ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* ---- connecting ---------------------------------------------------------- */

static uint64_t rng_next(db_t *db) {
  /* splitmix64: jitter needs spread, not secrecy. */
  uint64_t z = (db->rng += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void on_timer(uv_timer_t *t);

static void schedule_reconnect(db_t *db) {
  uint64_t cap = db->opt.backoff_min_ms;
  for (unsigned i = 0; i < db->attempt && cap < db->opt.backoff_max_ms; i++)
    cap *= 2;
  if (cap > db->opt.backoff_max_ms)
    cap = db->opt.backoff_max_ms;
  if (db->attempt < UINT_MAX)
    db->attempt++;
  db->state = ST_DOWN;
  uv_timer_start(&db->timer, on_timer, rng_next(db) % (cap + 1), 0);
}

static void connect_failed(db_t *db) {
  drop_conn(db);
  uv_timer_stop(&db->timer);
  if (db->closing) {
    db->state = ST_DOWN;
    kick(db);
    return;
  }
  schedule_reconnect(db);
}

static void on_timer(uv_timer_t *t) {
  db_t *db = container_of(t, db_t, timer);
  if (db->state == ST_DOWN)
    start_connect(db);
  else if (db->state == ST_CONNECTING)
    connect_failed(db); /* attempt timed out */
}

static void ignore_notice(void *arg, const char *message) {
  /* The relay logs through its own channel; libpq's default prints to
   * stderr (e.g. the WARNING of a ROLLBACK outside a transaction). */
  (void)arg;
  (void)message;
}

static db_op_t *listen_op(db_t *db, const char *channel) {
  char *id = PQescapeIdentifier(db->conn, channel, strlen(channel));
  if (!id)
    return NULL;
  size_t n = strlen(id) + sizeof "LISTEN ";
  char *sql = malloc(n);
  db_op_t *op = db_op_new(NULL, NULL, 0);
  int ok = sql && op;
  if (ok) {
    memcpy(sql, "LISTEN ", 7);
    memcpy(sql + 7, id, n - 7);
    ok = db_op_add(op, sql, 0, NULL, NULL, NULL, 0) == 0;
  }
  PQfreemem(id);
  free(sql);
  if (!ok) {
    db_op_free(op);
    return NULL;
  }
  op->db = db;
  return op;
}

static void enqueue(db_t *db, db_op_t *op) {
  op->next = NULL;
  if (db->qtail)
    db->qtail->next = op;
  else
    db->qhead = op;
  db->qtail = op;
}

static void connected(db_t *db) {
  uv_timer_stop(&db->timer);
  if (PQsetnonblocking(db->conn, 1) != 0 ||
      PQenterPipelineMode(db->conn) != 1 || watch(db, UV_READABLE) != 0) {
    connect_failed(db);
    return;
  }
  PQsetNoticeProcessor(db->conn, ignore_notice, NULL);
  prep_forget(db);
  db->state = ST_UP;
  db->attempt = 0;
  db->need_rollback = 0;
  db->stats.connects++;
  for (struct listener *l = db->listeners; l; l = l->next) {
    int dup = 0;
    for (struct listener *k = db->listeners; k != l; k = k->next)
      dup |= strcmp(k->channel, l->channel) == 0;
    db_op_t *op = dup ? NULL : listen_op(db, l->channel);
    if (op)
      enqueue(db, op);
  }
  kick(db);
  if (db->opt.on_state)
    db->opt.on_state(db, 0);
}

static void connect_step(db_t *db) {
  switch (PQconnectPoll(db->conn)) {
  case PGRES_POLLING_READING:
    if (watch(db, UV_READABLE) != 0)
      connect_failed(db);
    break;
  case PGRES_POLLING_WRITING:
    if (watch(db, UV_WRITABLE) != 0)
      connect_failed(db);
    break;
  case PGRES_POLLING_OK:
    connected(db);
    break;
  default:
    connect_failed(db);
    break;
  }
}

static void start_connect(db_t *db) {
  db->conn = PQconnectStart(db->conninfo);
  if (!db->conn || PQstatus(db->conn) == CONNECTION_BAD) {
    connect_failed(db);
    return;
  }
  db->state = ST_CONNECTING;
  uv_timer_start(&db->timer, on_timer, db->opt.connect_timeout_ms, 0);
  /* "...behave as if it last returned PGRES_POLLING_WRITING" (libpq,
   * PQconnectStart) */
  if (watch(db, UV_WRITABLE) != 0)
    connect_failed(db);
}

/* ---- batches ------------------------------------------------------------- */

static int push_expect(db_t *db, uint8_t kind, uint32_t seg, uint32_t op,
                       uint32_t stmt) {
  if (db->nexp == db->capexp) {
    size_t cap = db->capexp ? db->capexp * 2 : 64;
    struct expect *e = realloc(db->exp, cap * sizeof *e);
    if (!e)
      return -1;
    db->exp = e;
    db->capexp = cap;
  }
  db->exp[db->nexp++] = (struct expect){kind, seg, op, stmt};
  return 0;
}

static int send_plain(db_t *db, const char *sql, uint8_t kind, uint32_t seg) {
  if (!PQsendQueryParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
    return -1;
  return push_expect(db, kind, seg, 0, 0);
}

/*
 * Finds or prepares the statement of s on this connection: s->prep is its
 * index, or -1 to run it unnamed. A new one is prepared here, ahead of
 * every segment of the batch and behind a Sync of its own ("PQsendPrepare
 * ... is allowed in pipeline mode", libpq 34.5.1), so a Parse that fails
 * spoils no transaction; its entry is then dropped (on_result) and the
 * statements that named it fail with their ops, to be prepared afresh by
 * the next batch that runs them.
 */
static int prepare_stmt(db_t *db, struct db_stmt *s, int *sent) {
  uint64_t h = sql_hash(s->sql);
  s->prep = -1;
  for (uint32_t i = 0; i < db->nprep; i++) {
    if (db->prep[i].hash == h && db->prep[i].sql &&
        strcmp(db->prep[i].sql, s->sql) == 0) {
      s->prep = (int)i;
      return 0;
    }
  }
  if (db->nprep == DB_MAX_PREPARED)
    return 0;
  if (!db->prep && !(db->prep = calloc(DB_MAX_PREPARED, sizeof *db->prep)))
    return 0;
  char *copy = strdup(s->sql), name[32];
  if (!copy)
    return 0;
  uint32_t i = db->nprep;
  snprintf(name, sizeof name, "synod_%u", i);
  if (!PQsendPrepare(db->conn, name, s->sql, s->nparams, NULL) ||
      push_expect(db, E_PREPARE, DB_NO_SEG, i, 0) != 0) {
    free(copy);
    return -1;
  }
  db->prep[i] = (struct prepared){h, copy};
  db->nprep++;
  s->prep = (int)i;
  *sent = 1;
  return 0;
}

static int send_op(db_t *db, uint32_t seg, uint32_t i) {
  db_op_t *op = db->bops[i];
  for (size_t k = 0; k < op->nstmts; k++) {
    const struct db_stmt *s = &op->stmts[k];
    char name[32];
    snprintf(name, sizeof name, "synod_%d", s->prep);
    if (s->prep >= 0
            ? !PQsendQueryPrepared(db->conn, name, s->nparams, s->values,
                                   s->lengths, s->formats, s->result_format)
            : !PQsendQueryParams(db->conn, s->sql, s->nparams, NULL, s->values,
                                 s->lengths, s->formats, s->result_format))
      return -1;
    if (push_expect(db, E_STMT, seg, i, (uint32_t)k) != 0)
      return -1;
  }
  return 0;
}

static int send_sync(db_t *db, uint32_t seg) {
  if (!PQpipelineSync(db->conn))
    return -1;
  return push_expect(db, E_SYNC, seg, 0, 0);
}

static int is_single(const db_op_t *op) {
  return op->isolate || (op->flags & DB_OP_READONLY);
}

static void send_batch(db_t *db) {
  /* Take up to max_batch_ops: ops that run alone first, in queue order,
   * then the rest in one write transaction, last, so that its failure
   * (which leaves an aborted transaction block) spoils nothing after it. */
  uint32_t n = 0, nsingle = 0;
  for (db_op_t *op = db->qhead; op && n < db->opt.max_batch_ops;
       op = op->next, n++)
    nsingle += is_single(op) ? 1u : 0u;
  uint32_t si = 0, gi = nsingle;
  for (uint32_t k = 0; k < n; k++) {
    db_op_t *op = db->qhead;
    db->qhead = op->next;
    op->next = NULL;
    db->bops[is_single(op) ? si++ : gi++] = op;
  }
  if (!db->qhead)
    db->qtail = NULL;
  db->nbops = n;
  db->nsegs = 0;
  db->nexp = db->cur = 0;
  db->got = 0;
  db->nulls = 0;
  db->inflight = 1;
  db->stats.pipelines++;

  if (db->need_rollback) {
    if (send_plain(db, "ROLLBACK", E_ROLLBACK, DB_NO_SEG) != 0 ||
        send_sync(db, DB_NO_SEG) != 0)
      goto lost;
    db->need_rollback = 0;
  }
  int prepared = 0;
  for (uint32_t i = 0; i < n; i++)
    for (size_t k = 0; k < db->bops[i]->nstmts; k++)
      if (prepare_stmt(db, &db->bops[i]->stmts[k], &prepared) != 0)
        goto lost;
  if (prepared && send_sync(db, DB_NO_SEG) != 0)
    goto lost;
  for (uint32_t i = 0; i < nsingle; i++) {
    uint32_t s = db->nsegs++;
    db->segs[s] = (struct seg){.lo = i, .hi = i + 1};
    if (send_op(db, s, i) != 0 || send_sync(db, s) != 0)
      goto lost;
  }
  if (nsingle < n) {
    uint32_t s = db->nsegs++;
    db->segs[s] = (struct seg){.lo = nsingle, .hi = n, .group = 1};
    if (send_plain(db, "BEGIN", E_BEGIN, s) != 0)
      goto lost;
    for (uint32_t i = nsingle; i < n; i++)
      if (send_op(db, s, i) != 0)
        goto lost;
    if (send_plain(db, "COMMIT", E_COMMIT, s) != 0 || send_sync(db, s) != 0)
      goto lost;
  }
  if (flush(db) != 0)
    goto lost;
  return;
lost:
  conn_lost(db);
}

static void finish_bop(db_t *db, uint32_t i, int status) {
  db_op_t *op = db->bops[i];
  db->bops[i] = NULL;
  if (op)
    complete(db, op, status);
}

static void seg_failed(db_t *db, const struct expect *e, PGresult *r) {
  struct seg *s = &db->segs[e->seg];
  if (s->failed) {
    PQclear(r);
    return;
  }
  s->failed = 1;
  db_op_t *op = db->bops[e->kind == E_STMT ? e->op : s->lo];
  if (!op) {
    PQclear(r);
    return;
  }
  if (e->kind == E_STMT) {
    PQclear(op->stmts[e->stmt].res);
    op->stmts[e->stmt].res = r;
    op->failed = e->stmt;
  } else {
    PQclear(op->err_res);
    op->err_res = r;
    op->failed = op->nstmts;
  }
}

static int result_ok(const PGresult *r) {
  switch (PQresultStatus(r)) {
  case PGRES_COMMAND_OK:
  case PGRES_TUPLES_OK:
  case PGRES_EMPTY_QUERY:
    return 1;
  default:
    return 0;
  }
}

/* The write transaction failed: re-run each of its ops alone, first in the
 * next batch, keeping their order. */
static void requeue_isolated(db_t *db, struct seg *s) {
  db_op_t *head = NULL, **tail = &head;
  for (uint32_t i = s->lo; i < s->hi; i++) {
    db_op_t *op = db->bops[i];
    db->bops[i] = NULL;
    if (!op)
      continue;
    op_clear_results(op);
    op->isolate = 1;
    db->stats.ops_rerun++;
    *tail = op;
    tail = &op->next;
  }
  if (!head)
    return;
  *tail = db->qhead;
  if (!db->qhead)
    db->qtail = container_of(tail, db_op_t, next);
  db->qhead = head;
}

static void end_segment(db_t *db, uint32_t si) {
  struct seg *s = &db->segs[si];
  if (s->done)
    return;
  s->done = 1;
  if (s->group) {
    /* COMMIT was confirmed earlier (done) or the transaction failed. */
    db->need_rollback = 1;
    if (s->hi - s->lo == 1)
      finish_bop(db, s->lo, SYNOD_EDB);
    else
      requeue_isolated(db, s);
    return;
  }
  db_op_t *op = db->bops[s->lo];
  if (!s->failed && op && !(op->flags & DB_OP_READONLY))
    db->stats.transactions++;
  finish_bop(db, s->lo, s->failed ? SYNOD_EDB : 0);
}

static void on_result(db_t *db, PGresult *r) {
  const struct expect *e = &db->exp[db->cur];
  struct seg *s = e->seg == DB_NO_SEG ? NULL : &db->segs[e->seg];
  switch (e->kind) {
  case E_ROLLBACK:
    PQclear(r);
    break;
  case E_PREPARE:
    if (!result_ok(r)) {
      free(db->prep[e->op].sql);
      db->prep[e->op].sql = NULL;
    }
    PQclear(r);
    break;
  case E_BEGIN:
    if (result_ok(r))
      PQclear(r);
    else
      seg_failed(db, e, r);
    break;
  case E_STMT: /* E_STMT and E_COMMIT always belong to a segment */
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
    if (result_ok(r) && !s->failed && db->bops[e->op]) {
      db_op_t *op = db->bops[e->op];
      PQclear(op->stmts[e->stmt].res);
      op->stmts[e->stmt].res = r;
    } else if (result_ok(r)) {
      PQclear(r);
    } else {
      seg_failed(db, e, r);
    }
    break;
  case E_COMMIT:
    /* COMMIT of an aborted block answers "ROLLBACK", not an error. */
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
    if (result_ok(r) && !s->failed && strcmp(PQcmdStatus(r), "COMMIT") == 0) {
      PQclear(r);
      s->done = 1;
      db->stats.transactions++;
      for (uint32_t i = s->lo; i < s->hi; i++)
        finish_bop(db, i, 0);
    } else {
      seg_failed(db, e, r);
    }
    break;
  default:
    break;
  }
}

static void batch_done(db_t *db) {
  db->inflight = 0;
  db->nbops = 0;
  pump(db);
}

/* Reads every result libpq has complete, in pipeline order. In pipeline
 * mode each query's results are followed by a NULL, a Sync's
 * PGRES_PIPELINE_SYNC is not. */
static void read_results(db_t *db) {
  while (db->state == ST_UP && db->inflight && !PQisBusy(db->conn)) {
    PGresult *r = PQgetResult(db->conn);
    const struct expect *e = &db->exp[db->cur];
    if (e->kind == E_SYNC) {
      if (!r) {
        if (++db->nulls > 1)
          break;
        continue;
      }
      db->nulls = 0;
      if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        /* e.g. an implicit COMMIT failing at the Sync */
        if (e->seg != DB_NO_SEG)
          seg_failed(db, e, r);
        else
          PQclear(r);
        continue;
      }
      PQclear(r);
      uint32_t seg = e->seg;
      if (++db->cur == db->nexp)
        db->inflight = 0; /* before callbacks: they may submit */
      if (seg != DB_NO_SEG)
        end_segment(db, seg);
      if (!db->inflight) {
        batch_done(db);
        return; /* pump may have sent the next batch; poll resumes it */
      }
      continue;
    }
    if (!r) {
      if (!db->got)
        break;
      db->got = 0;
      db->cur++;
      continue;
    }
    if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
      /* out of step with what was sent: trust nothing on this connection */
      PQclear(r);
      conn_lost(db);
      return;
    }
    if (db->got) { /* a second result for one query: not expected */
      PQclear(r);
      continue;
    }
    db->got = 1;
    on_result(db, r);
  }
}

static void dispatch_notifies(db_t *db) {
  PGnotify *n;
  while (db->state == ST_UP && (n = PQnotifies(db->conn)) != NULL) {
    for (struct listener *l = db->listeners; l; l = l->next)
      if (strcmp(l->channel, n->relname) == 0)
        l->cb(db, n->relname, n->extra);
    PQfreemem(n);
  }
}

static void conn_lost(db_t *db) {
  int was_up = db->state == ST_UP;
  if (was_up)
    db->stats.disconnects++;
  db->state = ST_DOWN; /* before callbacks: new ops fail fast */
  drop_conn(db);
  db->need_rollback = 0;
  if (was_up && db->opt.on_state)
    db->opt.on_state(db, SYNOD_EAGAIN);
  if (db->inflight) {
    /* Every op whose COMMIT was not confirmed: see THE SUBTLE CASE. */
    db->inflight = 0;
    for (uint32_t i = 0; i < db->nbops; i++)
      finish_bop(db, i, SYNOD_EAGAIN);
    db->nbops = 0;
  }
  fail_queue(db, SYNOD_EAGAIN);
  if (db->closing || db->state != ST_DOWN)
    kick(db);
  else
    schedule_reconnect(db);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct db_sock *s = container_of(h, struct db_sock, poll);
  db_t *db = s->db;
  if (s != db->sock)
    return;
  if (db->state == ST_CONNECTING) {
    connect_step(db);
    return;
  }
  if (db->state != ST_UP)
    return;
  if (status < 0 || ((events & UV_READABLE) && !PQconsumeInput(db->conn))) {
    conn_lost(db);
    return;
  }
  read_results(db);
  if (db->state != ST_UP)
    return;
  dispatch_notifies(db);
  if (db->state != ST_UP)
    return;
  if (flush(db) != 0 ||
      (db->state == ST_UP && PQstatus(db->conn) == CONNECTION_BAD))
    conn_lost(db);
}

/* Sends the next batch, or finishes a close, when nothing is in flight. */
static void pump(db_t *db) {
  if (db->state == ST_TORN || db->inflight)
    return;
  /* An idle connection must not sit in an aborted transaction block: it
   * would hold back NOTIFY delivery until the next op. */
  if (db->state == ST_UP && (db->qhead || db->need_rollback)) {
    send_batch(db);
    return;
  }
  if (db->closing)
    teardown(db);
}

static void on_kick(uv_idle_t *h) {
  db_t *db = container_of(h, db_t, kick);
  uv_idle_stop(h);
  drain_deferred(db);
  pump(db);
}

/* ---- public -------------------------------------------------------------- */

int db_open(uv_loop_t *loop, const char *conninfo, const db_options_t *options,
            db_t **out) {
  if (!loop || !conninfo || !out)
    return SYNOD_EINVAL;
  char *err = NULL;
  PQconninfoOption *parsed = PQconninfoParse(conninfo, &err);
  if (!parsed) {
    PQfreemem(err);
    return err ? SYNOD_ECONFIG : SYNOD_ENOMEM;
  }
  PQconninfoFree(parsed);

  db_t *db = calloc(1, sizeof *db);
  if (!db)
    return SYNOD_ENOMEM;
  if (options)
    db->opt = *options;
  if (!db->opt.max_batch_ops)
    db->opt.max_batch_ops = DB_DEFAULT_BATCH;
  if (!db->opt.backoff_min_ms)
    db->opt.backoff_min_ms = DB_DEFAULT_BACKOFF;
  if (!db->opt.backoff_max_ms)
    db->opt.backoff_max_ms = DB_DEFAULT_BACKOFF_MX;
  if (db->opt.backoff_max_ms < db->opt.backoff_min_ms)
    db->opt.backoff_max_ms = db->opt.backoff_min_ms;
  if (!db->opt.connect_timeout_ms)
    db->opt.connect_timeout_ms = DB_DEFAULT_CONNECT_TO;
  db->loop = loop;
  db->conninfo = strdup(conninfo);
  db->bops = calloc(db->opt.max_batch_ops, sizeof *db->bops);
  db->segs = calloc(db->opt.max_batch_ops, sizeof *db->segs);
  if (!db->conninfo || !db->bops || !db->segs) {
    free(db->conninfo);
    free(db->bops);
    free(db->segs);
    free(db);
    return SYNOD_ENOMEM;
  }
  db->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)db;
  uv_timer_init(loop, &db->timer);
  uv_idle_init(loop, &db->kick);
  db->timer.data = db->kick.data = db;
  db->handles = 2;
  db->state = ST_DOWN;
  start_connect(db);
  *out = db;
  return 0;
}

void db_close(db_t *db, void (*cb)(db_t *db)) {
  if (db->closing)
    return;
  db->closing = 1;
  db->close_cb = cb;
  if (db->state != ST_UP) {
    uv_timer_stop(&db->timer);
    drop_conn(db);
    db->state = ST_DOWN;
  }
  kick(db);
}

void db_submit(db_t *db, db_op_t *op) {
  op->db = db;
  if (db->closing)
    defer_complete(db, op, SYNOD_ECLOSED);
  else if (db->state != ST_UP)
    defer_complete(db, op, SYNOD_EAGAIN);
  else if (op->nstmts == 0)
    defer_complete(db, op, 0);
  else {
    enqueue(db, op);
    kick(db);
  }
}

int db_is_up(const db_t *db) {
  return db->state == ST_UP && !db->closing;
}

void *db_data(const db_t *db) {
  return db->opt.data;
}

void db_get_stats(const db_t *db, db_stats_t *out) {
  *out = db->stats;
}

int db_listen(db_t *db, const char *channel, db_notify_cb cb) {
  if (!channel || !*channel || !cb || db->closing)
    return SYNOD_EINVAL;
  struct listener *l = calloc(1, sizeof *l);
  if (!l || !(l->channel = strdup(channel))) {
    free(l);
    return SYNOD_ENOMEM;
  }
  l->cb = cb;
  struct listener **p = &db->listeners;
  int known = 0;
  while (*p) {
    known |= strcmp((*p)->channel, channel) == 0;
    p = &(*p)->next;
  }
  *p = l;
  if (db->state == ST_UP && !known) {
    db_op_t *op = listen_op(db, channel);
    if (!op)
      return SYNOD_ENOMEM;
    enqueue(db, op);
    kick(db);
  }
  return 0;
}
