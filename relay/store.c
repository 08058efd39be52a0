/*
 * The relay's messaging queries; see store.h.
 *
 * Parameters: bytea values are sent in binary format, everything else as
 * text, and every placeholder is cast in the SQL so the server never has to
 * guess a type. Fetches ask for binary results (bigint arrives as 8 bytes,
 * big-endian).
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod.pb-c.h"
#include "synod/err.h"

#define MAX_PARAMS 8

typedef struct params {
  int n;
  const char *v[MAX_PARAMS];
  int len[MAX_PARAMS];
  int fmt[MAX_PARAMS];
  char num[MAX_PARAMS][24];
} params_t;

static void p_text(params_t *p, const char *s) {
  p->v[p->n] = s;
  p->len[p->n] = 0;
  p->fmt[p->n] = 0;
  p->n++;
}

static void p_bin(params_t *p, const uint8_t *b, size_t len) {
  /* libpq takes a NULL value as SQL NULL; an empty bytea needs a pointer. */
  p->v[p->n] = b ? (const char *)b : "";
  p->len[p->n] = (int)len;
  p->fmt[p->n] = 1;
  p->n++;
}

static void p_int(params_t *p, int64_t v) {
  snprintf(p->num[p->n], sizeof p->num[0], "%" PRId64, v);
  p_text(p, p->num[p->n]);
}

static int add(db_op_t *op, const char *sql, const params_t *p, int binary) {
  return db_op_add(op, sql, p->n, p->v, p->len, p->fmt, binary);
}

/* A one-dimensional array parameter in PostgreSQL's binary array format
 * (array_recv): ndim, flags, element type, length, lower bound, then each
 * element as a 4-byte length and its bytes; integers big-endian. */
enum { OID_BYTEA = 17, OID_INT8 = 20, OID_TEXT = 25 };

typedef struct arr {
  uint8_t *b;
  size_t len, cap;
  int oom;
} arr_t;

static void arr_put(arr_t *a, const void *p, size_t n) {
  if (a->oom)
    return;
  if (a->len + n > a->cap) {
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + n)
      cap *= 2;
    uint8_t *b = realloc(a->b, cap);
    if (!b) {
      a->oom = 1;
      return;
    }
    a->b = b;
    a->cap = cap;
  }
  memcpy(a->b + a->len, p, n);
  a->len += n;
}

static void arr_u32(arr_t *a, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  arr_put(a, b, 4);
}

static void arr_begin(arr_t *a, uint32_t oid, size_t n) {
  arr_u32(a, 1); /* ndim */
  arr_u32(a, 0); /* no NULLs */
  arr_u32(a, oid);
  arr_u32(a, (uint32_t)n);
  arr_u32(a, 1); /* lower bound */
}

static void arr_elem(arr_t *a, const void *p, size_t n) {
  arr_u32(a, (uint32_t)n);
  arr_put(a, p, n);
}

static void arr_int8(arr_t *a, int64_t v) {
  uint8_t b[8];
  for (int k = 0; k < 8; k++)
    b[k] = (uint8_t)((uint64_t)v >> (56 - 8 * k));
  arr_elem(a, b, 8);
}

/* The ids[0..n) list as a relation, from one bytea parameter $k. */
#define IDS_OF(k)                                                              \
  "(SELECT substring($" k "::bytea FROM i * 16 + 1 FOR 16)"                    \
  " FROM generate_series(0, octet_length($" k "::bytea) / 16 - 1) AS i)"

/* --- rows ------------------------------------------------------------------ */

struct store_rows {
  PGresult *res;
};

size_t store_rows_count(const store_rows_t *r) {
  return r->res ? (size_t)PQntuples(r->res) : 0;
}

const uint8_t *store_rows_col(const store_rows_t *r, size_t i, int col,
                              size_t *len) {
  if (PQgetisnull(r->res, (int)i, col)) {
    *len = 0;
    return NULL;
  }
  *len = (size_t)PQgetlength(r->res, (int)i, col);
  return (const uint8_t *)PQgetvalue(r->res, (int)i, col);
}

static int64_t be64(const uint8_t *b) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++)
    v = v << 8 | b[k];
  return (int64_t)v;
}

int64_t store_rows_int(const store_rows_t *r, size_t i, int col) {
  size_t len;
  const uint8_t *b = store_rows_col(r, i, col, &len);
  if (!b)
    return 0;
  if (len == 8)
    return be64(b);
  if (len == 4)
    return (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                     (uint32_t)b[2] << 8 | b[3]);
  return 0;
}

/* A text-format result cell as an integer; 0 when absent. */
static int64_t text_int(PGresult *res, int row, int col) {
  if (!res || row >= PQntuples(res) || PQgetisnull(res, row, col))
    return 0;
  return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int text_bool(PGresult *res, int row, int col) {
  return res && row < PQntuples(res) && !PQgetisnull(res, row, col) &&
         PQgetvalue(res, row, col)[0] == 't';
}

static uint64_t cmd_count(PGresult *res) {
  return res ? strtoull(PQcmdTuples(res), NULL, 10) : 0;
}

/* Every store call keeps its callback in a small context. */
typedef struct ctx {
  void *cb;
  void *data;
  store_item_t *items;
  size_t n;
  int has_code;
  int multi; /* store_put: the inbox items went as one statement, last */
} ctx_t;

static ctx_t *ctx_new(void *cb, void *data) {
  ctx_t *c = calloc(1, sizeof *c);
  if (c) {
    c->cb = cb;
    c->data = data;
  }
  return c;
}

/* Creates the op or, when memory is short, reports SYNOD_ENOMEM through
 * fail() and returns NULL. */
static db_op_t *op_new(db_op_cb done, ctx_t *c, unsigned flags) {
  db_op_t *op = c ? db_op_new(done, c, flags) : NULL;
  if (!op)
    free(c);
  return op;
}

/* db_op_add failed (out of memory): run the callback through the db with
 * an op that fails, so callers still hear back from the loop. */
static void submit_or_fail(db_t *db, db_op_t *op, int rc) {
  if (rc == 0) {
    db_submit(db, op);
    return;
  }
  /* An op whose statement list is broken would be an internal error; the
   * only failure of db_op_add is ENOMEM. Submit it with a statement that
   * fails so the callback runs once, from the loop, with SYNOD_EDB. */
  (void)db_op_add(op, "SELECT 1/0", 0, NULL, NULL, NULL, 0);
  db_submit(db, op);
}

/* --- accounts ------------------------------------------------------------ */

static void auth_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  store_auth_cb cb = (store_auth_cb)c->cb;
  int64_t id = 0;
  if (status == SYNOD_EDB && c->has_code && db_op_sqlstate(op) &&
      strcmp(db_op_sqlstate(op), "23505") == 0) {
    /* The key is already bound to another account. */
    status = SYNOD_EAUTH;
  } else if (status == 0) {
    PGresult *r = db_op_result(op, db_op_count(op) - 1);
    if (!r || PQntuples(r) == 0)
      status = SYNOD_EUNKNOWNUSER;
    else if (text_bool(r, 0, 3))
      status = SYNOD_EDENIED;
    else if (text_bool(r, 0, 1))
      id = text_int(r, 0, 0);
    else if (text_bool(r, 0, 2) || c->has_code)
      status = SYNOD_EAUTH; /* no valid code, or a code already used */
    else
      status = SYNOD_EBADKEY;
  }
  cb(c->data, status, id);
  free(c);
}

void store_auth_client(db_t *db, const char *local, const uint8_t pk[32],
                       const uint8_t *code_hash, store_auth_cb cb, void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(auth_done, c, code_hash ? 0 : DB_OP_READONLY);
  if (!op) {
    cb(data, SYNOD_ENOMEM, 0);
    return;
  }
  c->has_code = code_hash != NULL;
  params_t p = {0};
  p_text(&p, local);
  p_bin(&p, pk, 32);
  int rc = 0;
  if (code_hash) {
    p_bin(&p, code_hash, 32);
    rc = add(op,
             "UPDATE accounts SET identity_key = $2::bytea,"
             " enroll_code_hash = NULL, enrolled_at = now()"
             " WHERE name = $1::text AND identity_key IS NULL AND NOT disabled"
             " AND enroll_code_hash = $3::bytea"
             " AND enroll_code_expires > now()",
             &p, 0);
    p.n = 2;
  }
  if (rc == 0)
    rc = add(
        op,
        "SELECT id, coalesce(identity_key = $2::bytea, false),"
        " identity_key IS NULL, disabled FROM accounts WHERE name = $1::text",
        &p, 0);
  submit_or_fail(db, op, rc);
}

/* --- put ---------------------------------------------------------------- */

static const char put_inbox_sql[] =
    "WITH a AS (SELECT id, stored_bytes, disabled FROM accounts"
    "           WHERE name = $1::text),"
    " dup AS (SELECT EXISTS (SELECT 1 FROM inbox WHERE message_id = $2::bytea) AS d),"
    " ins AS (INSERT INTO inbox (message_id, account_id, sender, sender_relay,"
    "                            expires_at, envelope)"
    "         SELECT $2::bytea, a.id, $3::text, $4::text,"
    "                to_timestamp($5::bigint::float8), $6::bytea FROM a"
    "         WHERE NOT a.disabled"
    "           AND a.stored_bytes + octet_length($6::bytea) <= $7::bigint"
    "         ON CONFLICT (message_id) DO NOTHING"
    "         RETURNING account_id, octet_length(envelope) AS n),"
    " upd AS (UPDATE accounts SET stored_bytes = accounts.stored_bytes + ins.n"
    "         FROM ins WHERE accounts.id = ins.account_id RETURNING accounts.id)"
    " SELECT (SELECT count(*) FROM upd), (SELECT id FROM a),"
    "        (SELECT disabled FROM a), (SELECT d FROM dup)";

/*
 * The same for many inbox items in one statement: parameters are arrays
 * (ids, recipient names, senders, sender relays, expiry, envelopes; item i
 * at ordinality i) and the quota; one row per item, in order: a code (0
 * stored, 1 duplicate, 2 unknown user, 3 disabled, 4 quota) and the
 * account id when stored. The outcome is the one-item statement's run for
 * each item in order, within one transaction, provided no message id
 * repeats in the batch (store_put checks): the quota admits items in order
 * while they fit, per account; an account whose running total passes its
 * room (quota - stored_bytes) continues, from the first item that does not
 * fit, through a recursive walk that skips items that do not fit and takes
 * later ones that still do. Rows are inserted in item order, so seq
 * follows it. A row inserted meanwhile by another process (the ON CONFLICT
 * path) is a duplicate. The duplicate test is a scalar subquery, not
 * EXISTS: the statement's generic plan is made once per connection, maybe
 * while inbox is still empty, and an EXISTS may then become a hash of the
 * whole table, read again on every execution; a scalar subquery stays a
 * primary-key probe per item.
 */
static const char put_inbox_multi_sql[] =
    "WITH RECURSIVE"
    " it AS (SELECT t.*, coalesce((SELECT true FROM inbox"
    "                              WHERE message_id = t.id), false) AS dup"
    "        FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[],"
    "                    $5::int8[], $6::bytea[])"
    "             WITH ORDINALITY AS t (id, local, sender, relay, exp, env, ord)),"
    " a AS (SELECT id, name, stored_bytes, disabled FROM accounts"
    "       WHERE name = ANY ($2::text[])),"
    " c AS (SELECT it.ord, a.id AS account_id, octet_length(it.env) AS n,"
    "              $7::bigint - a.stored_bytes AS room,"
    "              row_number() OVER w AS k, sum(octet_length(it.env)) OVER w AS run"
    "       FROM it JOIN a ON a.name = it.local"
    "       WHERE NOT it.dup AND NOT a.disabled"
    "       WINDOW w AS (PARTITION BY a.id ORDER BY it.ord)),"
    " over AS (SELECT account_id, min(k) AS k FROM c WHERE run > room"
    "          GROUP BY account_id),"
    " g (account_id, k, ord, used, ok) AS ("
    "   SELECT c.account_id, c.k, c.ord, c.run - c.n, false"
    "   FROM c JOIN over o ON o.account_id = c.account_id AND o.k = c.k"
    "   UNION ALL"
    "   SELECT c.account_id, c.k, c.ord,"
    "          g.used + CASE WHEN g.used + c.n <= c.room THEN c.n ELSE 0 END,"
    "          g.used + c.n <= c.room"
    "   FROM g JOIN c ON c.account_id = g.account_id AND c.k = g.k + 1),"
    " pick AS (SELECT c.ord FROM c LEFT JOIN over o USING (account_id)"
    "          WHERE o.k IS NULL OR c.k < o.k"
    "          UNION ALL SELECT ord FROM g WHERE ok),"
    " ins AS (INSERT INTO inbox (message_id, account_id, sender, sender_relay,"
    "                            expires_at, envelope)"
    "         SELECT it.id, c.account_id, it.sender, it.relay,"
    "                to_timestamp(it.exp::float8), it.env"
    "         FROM pick JOIN c USING (ord) JOIN it USING (ord) ORDER BY ord"
    "         ON CONFLICT (message_id) DO NOTHING"
    "         RETURNING message_id, account_id, octet_length(envelope) AS n),"
    " upd AS (UPDATE accounts SET stored_bytes = accounts.stored_bytes + s.n"
    "         FROM (SELECT account_id, sum(n) AS n FROM ins"
    "               GROUP BY account_id) s"
    "         WHERE accounts.id = s.account_id)"
    " SELECT CASE WHEN ins.message_id IS NOT NULL THEN 0 WHEN it.dup THEN 1"
    "             WHEN a.id IS NULL THEN 2 WHEN a.disabled THEN 3"
    "             WHEN it.ord IN (SELECT ord FROM pick) THEN 1 ELSE 4 END,"
    "        ins.account_id"
    " FROM it LEFT JOIN a ON a.name = it.local"
    "      LEFT JOIN ins ON ins.message_id = it.id"
    " ORDER BY it.ord";

static const char put_outbox_sql[] =
    "INSERT INTO outbox (message_id, peer, sender_account, sender, recipient,"
    "                    expires_at, envelope)"
    " VALUES ($1::bytea, $2::text, NULLIF($3::bigint, 0), $4::text, $5::text,"
    "         to_timestamp($6::bigint::float8), $7::bytea)"
    " ON CONFLICT (message_id) DO NOTHING";

static void put_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  /* Statements: one per outbox item, in order, then the inbox items: one
   * statement for all (c->multi) or one each, in order. */
  size_t stmt = 0, row = 0;
  PGresult *multi = c->multi ? db_op_result(op, db_op_count(op) - 1) : NULL;
  if (status == 0 && c->multi) {
    size_t ninbox = 0;
    for (size_t i = 0; i < c->n; i++)
      ninbox += !c->items[i].peer;
    if (!multi || PQntuples(multi) != (int)ninbox)
      status = SYNOD_EDB; /* cannot happen: one row per item */
  }
  if (status == 0) {
    for (size_t i = 0; i < c->n; i++) {
      store_item_t *it = &c->items[i];
      it->account_id = 0;
      if (multi && !it->peer) {
        static const int codes[] = {STORE_STORED, STORE_DUPLICATE,
                                    SYNOD_EUNKNOWNUSER, SYNOD_EDENIED,
                                    SYNOD_EQUOTA};
        int64_t code = text_int(multi, (int)row, 0);
        it->status = code >= 0 && code < 5 ? codes[code] : SYNOD_EQUOTA;
        if (it->status == STORE_STORED)
          it->account_id = text_int(multi, (int)row, 1);
        row++;
        continue;
      }
      PGresult *r = db_op_result(op, stmt++);
      if (it->peer) {
        it->status = cmd_count(r) == 1 ? STORE_STORED : STORE_DUPLICATE;
      } else if (text_int(r, 0, 0) == 1) {
        it->status = STORE_STORED;
        it->account_id = text_int(r, 0, 1);
      } else if (text_bool(r, 0, 3)) {
        it->status = STORE_DUPLICATE;
      } else if (!r || PQgetisnull(r, 0, 1)) {
        it->status = SYNOD_EUNKNOWNUSER;
      } else if (text_bool(r, 0, 2)) {
        it->status = SYNOD_EDENIED;
      } else {
        it->status = SYNOD_EQUOTA;
      }
    }
  }
  ((store_put_cb)c->cb)(c->data, status, c->items, c->n);
  free(c);
}

static int cmp_id(const void *a, const void *b) {
  return memcmp((*(const store_item_t *const *)a)->message_id,
                (*(const store_item_t *const *)b)->message_id, STORE_ID_BYTES);
}

/* 1 when the inbox items of items[0..n) can go as one statement: there is
 * one at least and no message id repeats among them (a repeat's outcome
 * depends on the earlier one's, which one statement does not see). Out of
 * memory: 0, one statement each. */
static int inbox_multi(const store_item_t *items, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    m += !items[i].peer;
  if (m < 2)
    return m == 1;
  const store_item_t **v = malloc(m * sizeof *v);
  if (!v)
    return 0;
  m = 0;
  for (size_t i = 0; i < n; i++)
    if (!items[i].peer)
      v[m++] = &items[i];
  qsort(v, m, sizeof *v, cmp_id);
  int ok = 1;
  for (size_t i = 1; i < m && ok; i++)
    ok = memcmp(v[i - 1]->message_id, v[i]->message_id, STORE_ID_BYTES) != 0;
  free(v);
  return ok;
}

/* Appends put_inbox_multi_sql for the inbox items of items[0..n). */
static int add_inbox_multi(db_op_t *op, const store_item_t *items, size_t n,
                           uint64_t quota_bytes) {
  static const uint32_t oids[6] = {OID_BYTEA, OID_TEXT, OID_TEXT,
                                   OID_TEXT,  OID_INT8, OID_BYTEA};
  arr_t a[6] = {{0}};
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    m += !items[i].peer;
  for (int k = 0; k < 6; k++)
    arr_begin(&a[k], oids[k], m);
  for (size_t i = 0; i < n; i++) {
    const store_item_t *it = &items[i];
    if (it->peer)
      continue;
    arr_elem(&a[0], it->message_id, STORE_ID_BYTES);
    arr_elem(&a[1], it->recipient_local, strlen(it->recipient_local));
    arr_elem(&a[2], it->sender, strlen(it->sender));
    arr_elem(&a[3], it->sender_relay, strlen(it->sender_relay));
    arr_int8(&a[4], (int64_t)it->expires_at);
    arr_elem(&a[5], it->envelope ? (const void *)it->envelope : "", it->envlen);
  }
  params_t p = {0};
  int oom = 0;
  for (int k = 0; k < 6; k++) {
    oom |= a[k].oom || a[k].len > INT32_MAX;
    p_bin(&p, a[k].b, a[k].len);
  }
  p_int(&p, (int64_t)quota_bytes);
  int rc = oom ? SYNOD_ENOMEM : add(op, put_inbox_multi_sql, &p, 0);
  for (int k = 0; k < 6; k++)
    free(a[k].b);
  return rc;
}

void store_put(db_t *db, store_item_t *items, size_t n, uint64_t quota_bytes,
               store_put_cb cb, void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(put_done, c, 0);
  if (!op) {
    cb(data, SYNOD_ENOMEM, items, n);
    return;
  }
  c->items = items;
  c->n = n;
  c->multi = inbox_multi(items, n);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const store_item_t *it = &items[i];
    params_t p = {0};
    if (c->multi && !it->peer)
      continue;
    if (it->peer) {
      p_bin(&p, it->message_id, STORE_ID_BYTES);
      p_text(&p, it->peer);
      p_int(&p, it->sender_account);
      p_text(&p, it->sender);
      p_text(&p, it->recipient);
      p_int(&p, (int64_t)it->expires_at);
      p_bin(&p, it->envelope, it->envlen);
      rc = add(op, put_outbox_sql, &p, 0);
    } else {
      p_text(&p, it->recipient_local);
      p_bin(&p, it->message_id, STORE_ID_BYTES);
      p_text(&p, it->sender);
      p_text(&p, it->sender_relay);
      p_int(&p, (int64_t)it->expires_at);
      p_bin(&p, it->envelope, it->envlen);
      p_int(&p, (int64_t)quota_bytes);
      rc = add(op, put_inbox_sql, &p, 0);
    }
  }
  if (rc == 0 && c->multi)
    rc = add_inbox_multi(op, items, n, quota_bytes);
  submit_or_fail(db, op, rc);
}

/* --- fetch --------------------------------------------------------------- */

static void fetch_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  store_rows_t envs = {NULL}, notices = {NULL};
  if (status == 0) {
    envs.res = db_op_result(op, 0);
    notices.res = db_op_result(op, 1);
  }
  ((store_fetch_cb)c->cb)(c->data, status, &envs, &notices);
  free(c);
}

void store_fetch_inbox(db_t *db, int64_t account_id, int64_t after_seq,
                       unsigned limit, unsigned notice_limit, store_fetch_cb cb,
                       void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(fetch_done, c, DB_OP_READONLY);
  if (!op) {
    store_rows_t none = {NULL};
    cb(data, SYNOD_ENOMEM, &none, &none);
    return;
  }
  params_t p = {0};
  p_int(&p, account_id);
  p_int(&p, limit);
  p_int(&p, after_seq);
  params_t q = {0};
  p_int(&q, account_id);
  p_int(&q, notice_limit);
  int rc = add(op,
               "SELECT message_id, envelope, seq FROM inbox"
               " WHERE account_id = $1::bigint AND envelope IS NOT NULL"
               " AND seq > $3::bigint AND delivered_at IS NULL"
               " ORDER BY seq LIMIT $2::int",
               &p, 1);
  if (rc == 0)
    rc =
        add(op,
            "SELECT message_id, body FROM notices WHERE account_id = $1::bigint"
            " ORDER BY id LIMIT $2::int",
            &q, 1);
  submit_or_fail(db, op, rc);
}

void store_fetch_outbox(db_t *db, const char *peer, int64_t after_seq,
                        unsigned limit, unsigned notice_limit,
                        store_fetch_cb cb, void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(fetch_done, c, DB_OP_READONLY);
  if (!op) {
    store_rows_t none = {NULL};
    cb(data, SYNOD_ENOMEM, &none, &none);
    return;
  }
  params_t p = {0};
  p_text(&p, peer);
  p_int(&p, limit);
  p_int(&p, after_seq);
  params_t q = {0};
  p_text(&q, peer);
  p_int(&q, notice_limit);
  int rc =
      add(op,
          "SELECT message_id, envelope, seq FROM outbox WHERE peer = $1::text"
          " AND envelope IS NOT NULL AND seq > $3::bigint"
          " ORDER BY seq LIMIT $2::int",
          &p, 1);
  if (rc == 0)
    rc = add(op,
             "SELECT id, kind, body FROM peer_notices WHERE peer = $1::text"
             " ORDER BY id LIMIT $2::int",
             &q, 1);
  submit_or_fail(db, op, rc);
}

/* --- completing ---------------------------------------------------------- */

static void count_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  uint64_t n = 0;
  if (status == 0) {
    /* The first statement's count is the answer: its rows when it is a
     * SELECT count(*), else the rows it changed. */
    PGresult *r = db_op_result(op, 0);
    n = PQresultStatus(r) == PGRES_TUPLES_OK ? (uint64_t)text_int(r, 0, 0)
                                             : cmd_count(r);
  }
  if (c->cb)
    ((store_count_cb)c->cb)(c->data, status, n);
  free(c);
}

static db_op_t *count_op(store_count_cb cb, void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(count_done, c, 0);
  if (!op && cb)
    cb(data, SYNOD_ENOMEM, 0);
  return op;
}

/* Clears ciphertext of inbox rows chosen by `pick` (a SELECT of
 * message_id, account_id and n = octet_length(envelope) ... FOR UPDATE)
 * and gives the bytes back to each account's quota; counts the rows. */
#define CLEAR_INBOX(pick, delivered)                                           \
  "WITH d AS (" pick "),"                                                      \
  " u AS (UPDATE inbox SET envelope = NULL, delivered_at = " delivered         \
  "       FROM d WHERE inbox.message_id = d.message_id"                        \
  "       RETURNING d.account_id, d.n),"                                       \
  " s AS (SELECT account_id, sum(n) AS n FROM u GROUP BY account_id),"         \
  " a AS (UPDATE accounts SET stored_bytes = greatest(0, stored_bytes - s.n)"  \
  "       FROM s WHERE accounts.id = s.account_id)"                            \
  " SELECT count(*) FROM u"

void store_ack_inbox(db_t *db, int64_t account_id, const uint8_t *ids, size_t n,
                     uint64_t keep_ms, store_count_cb cb, void *data) {
  db_op_t *op = count_op(cb, data);
  if (!op)
    return;
  params_t p = {0};
  p_int(&p, account_id);
  p_bin(&p, ids, n * STORE_ID_BYTES);
  /* One statement. Every inbox row is reached through its primary key: the
   * rows to clear are picked one id at a time (a LATERAL probe per distinct
   * id, locked), then updated by = ANY of their ids. Written as a join or
   * IN, the generic plan (made once per connection, maybe while inbox was
   * small) read every pending row of the account, or all of inbox, on each
   * acknowledgement. */
#define ACK_PICK(cond)                                                         \
  "SELECT r.message_id, r.n"                                                   \
  " FROM (SELECT DISTINCT substring($2::bytea FROM i * 16 + 1 FOR 16) AS id"   \
  "       FROM generate_series(0, octet_length($2::bytea) / 16 - 1) AS i) x,"  \
  " LATERAL (SELECT message_id, octet_length(envelope) AS n FROM inbox"        \
  "          WHERE message_id = x.id AND account_id = $1::bigint"              \
  "          AND envelope IS NOT NULL" cond " FOR UPDATE) r"
#define ACK_NOTICES                                                            \
  " nt AS (DELETE FROM notices WHERE account_id = $1::bigint"                  \
  "        AND message_id = ANY (ARRAY" IDS_OF("2") "))"
  int rc;
  if (keep_ms == 0)
    rc = add(
        op,
        "WITH d AS (" ACK_PICK(
            "") "),"
                " u AS (UPDATE inbox SET envelope = NULL,"
                "       delivered_at = coalesce(delivered_at, now())"
                "       WHERE message_id = ANY (ARRAY(SELECT message_id FROM d))"
                "       RETURNING 1),"
                " a AS (UPDATE accounts SET stored_bytes ="
                "         greatest(0, stored_bytes - (SELECT sum(n) FROM d))"
                "       WHERE id = $1::bigint AND EXISTS (SELECT 1 FROM d))," ACK_NOTICES
                " SELECT count(*) FROM u",
        &p, 0);
  else
    rc = add(
        op,
        "WITH d AS (" ACK_PICK(
            " AND delivered_at IS NULL") "),"
                                         " u AS (UPDATE inbox SET delivered_at = now()"
                                         "       WHERE message_id = ANY (ARRAY(SELECT message_id FROM d))"
                                         "       RETURNING 1)," ACK_NOTICES
                                         " SELECT count(*) FROM u",
        &p, 0);
#undef ACK_PICK
#undef ACK_NOTICES
  submit_or_fail(db, op, rc);
}

void store_outbox_done(db_t *db, const uint8_t *ids, size_t n,
                       store_count_cb cb, void *data) {
  db_op_t *op = count_op(cb, data);
  if (!op)
    return;
  params_t p = {0};
  p_bin(&p, ids, n * STORE_ID_BYTES);
  /* The row stays, without its ciphertext, until the message expires: a
   * delivery failure the peer reports later finds its sender here. = ANY of
   * an array, not IN: the generic plan of IN, made while outbox was small,
   * hashed the ids and read the whole table (tombstones too) on every
   * acknowledgement; = ANY stays an index scan of the primary key. */
  submit_or_fail(db, op,
                 add(op,
                     "UPDATE outbox SET envelope = NULL, forwarded_at = now()"
                     " WHERE envelope IS NOT NULL"
                     " AND message_id = ANY (ARRAY" IDS_OF("1") ")",
                     &p, 0));
}

void store_outbox_refused(db_t *db, const uint8_t id[STORE_ID_BYTES],
                          const char *peer, const uint8_t *notice,
                          size_t noticelen, store_count_cb cb, void *data) {
  db_op_t *op = count_op(cb, data);
  if (!op)
    return;
  params_t p = {0};
  p_bin(&p, id, STORE_ID_BYTES);
  p_bin(&p, notice, noticelen);
  p_text(&p, peer);
  submit_or_fail(
      db, op,
      add(op,
          "WITH d AS (DELETE FROM outbox WHERE message_id = $1::bytea"
          "           AND ($3::text IS NULL OR peer = $3::text)"
          "           RETURNING sender_account),"
          " n AS (INSERT INTO notices (account_id, message_id, kind, body)"
          "       SELECT sender_account, $1::bytea, 'delivery-failure', $2::bytea"
          "       FROM d WHERE sender_account IS NOT NULL)"
          " SELECT coalesce((SELECT sender_account FROM d LIMIT 1), 0)",
          &p, 0));
}

void store_peer_notice_done(db_t *db, int64_t notice_id, store_count_cb cb,
                            void *data) {
  db_op_t *op = count_op(cb, data);
  if (!op)
    return;
  params_t p = {0};
  p_int(&p, notice_id);
  submit_or_fail(
      db, op, add(op, "DELETE FROM peer_notices WHERE id = $1::bigint", &p, 0));
}

/* --- expiry ---------------------------------------------------------------- */

static char *dup_col(PGresult *r, int row, int col) {
  int len = PQgetlength(r, row, col);
  char *s = malloc((size_t)len + 1);
  if (s) {
    memcpy(s, PQgetvalue(r, row, col), (size_t)len);
    s[len] = '\0';
  }
  return s;
}

static void sweep_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  store_expired_t *rows = NULL;
  size_t n = 0;
  if (status == 0) {
    PGresult *in = db_op_result(op, 2), *out = db_op_result(op, 3);
    size_t total = (size_t)PQntuples(in) + (size_t)PQntuples(out);
    rows = total ? calloc(total, sizeof *rows) : NULL;
    if (total && !rows)
      status = SYNOD_ENOMEM;
    for (int k = 0; k < 2 && rows; k++) {
      PGresult *r = k ? out : in;
      for (int i = 0; i < PQntuples(r); i++) {
        store_expired_t *e = &rows[n];
        if (PQgetlength(r, i, 0) != STORE_ID_BYTES)
          continue;
        memcpy(e->message_id, PQgetvalue(r, i, 0), STORE_ID_BYTES);
        e->in_outbox = k;
        e->recipient = dup_col(r, i, 1);
        e->sender = dup_col(r, i, 2);
        e->sender_relay = dup_col(r, i, 3);
        n++;
        if (!e->recipient || !e->sender || !e->sender_relay) {
          status = SYNOD_ENOMEM;
          break;
        }
      }
    }
  }
  ((store_expired_cb)c->cb)(c->data, status, status == 0 ? rows : NULL,
                            status == 0 ? n : 0);
  for (size_t i = 0; i < n; i++) {
    free(rows[i].recipient);
    free(rows[i].sender);
    free(rows[i].sender_relay);
  }
  free(rows);
  free(c);
}

void store_sweep(db_t *db, uint64_t now, uint64_t keep_ms, unsigned limit,
                 store_expired_cb cb, void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(sweep_done, c, 0);
  if (!op) {
    cb(data, SYNOD_ENOMEM, NULL, 0);
    return;
  }
  params_t p = {0};
  p_int(&p, (int64_t)now);
  int rc = add(op,
               "WITH i AS (DELETE FROM inbox WHERE envelope IS NULL"
               "           AND expires_at < to_timestamp($1::bigint::float8)"
               "           RETURNING 1),"
               " o AS (DELETE FROM outbox WHERE envelope IS NULL"
               "       AND expires_at < to_timestamp($1::bigint::float8)"
               "         - interval '" STORE_OUTBOX_GRACE "'"
               "       RETURNING 1)"
               " SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM o)",
               &p, 0);
  params_t k = {0};
  p_int(&k, (int64_t)now);
  p_int(&k, (int64_t)keep_ms);
  if (rc == 0)
    rc = add(
        op,
        CLEAR_INBOX("SELECT message_id, account_id,"
                    " octet_length(envelope) AS n FROM inbox"
                    " WHERE delivered_at IS NOT NULL AND envelope IS NOT NULL"
                    " AND delivered_at < to_timestamp($1::bigint::float8)"
                    "   - make_interval(secs => $2::bigint / 1000.0)"
                    " FOR UPDATE",
                    "inbox.delivered_at"),
        &k, 0);
  p_int(&p, limit);
  if (rc == 0)
    rc = add(op,
             "SELECT i.message_id, a.name, i.sender, i.sender_relay"
             " FROM inbox i JOIN accounts a ON a.id = i.account_id"
             " WHERE i.envelope IS NOT NULL AND i.delivered_at IS NULL"
             " AND i.expires_at < to_timestamp($1::bigint::float8)"
             " ORDER BY i.expires_at LIMIT $2::int",
             &p, 1);
  if (rc == 0)
    rc = add(op,
             "SELECT message_id, recipient, sender, '' FROM outbox"
             " WHERE envelope IS NOT NULL"
             " AND expires_at < to_timestamp($1::bigint::float8)"
             " ORDER BY expires_at LIMIT $2::int",
             &p, 1);
  submit_or_fail(db, op, rc);
}

void store_expire_one(db_t *db, const store_expired_t *row,
                      const char *sender_local, const uint8_t *notice,
                      size_t noticelen, store_count_cb cb, void *data) {
  if (row->in_outbox) {
    store_outbox_refused(db, row->message_id, NULL, notice, noticelen, cb,
                         data);
    return;
  }
  db_op_t *op = count_op(cb, data);
  if (!op)
    return;
  params_t p = {0};
  p_bin(&p, row->message_id, STORE_ID_BYTES);
  p_bin(&p, notice, noticelen);
  p_text(&p, sender_local); /* NULL: not a local sender */
  p_text(&p, sender_local ? NULL : row->sender_relay);
  submit_or_fail(
      db, op,
      add(op,
          "WITH d AS (DELETE FROM inbox WHERE message_id = $1::bytea"
          "           AND envelope IS NOT NULL AND delivered_at IS NULL"
          "           RETURNING account_id, octet_length(envelope) AS n),"
          " a AS (UPDATE accounts SET stored_bytes = greatest(0, stored_bytes - d.n)"
          "       FROM d WHERE accounts.id = d.account_id),"
          " nl AS (INSERT INTO notices (account_id, message_id, kind, body)"
          "        SELECT id, $1::bytea, 'delivery-failure', $2::bytea"
          "        FROM accounts WHERE name = $3::text"
          "        AND EXISTS (SELECT 1 FROM d)),"
          " np AS (INSERT INTO peer_notices (peer, kind, body)"
          "        SELECT $4::text, 'delivery-failure', $2::bytea"
          "        WHERE $4::text IS NOT NULL AND EXISTS (SELECT 1 FROM d))"
          " SELECT count(*) FROM d",
          &p, 0));
}

/* --- purge ------------------------------------------------------------------ */

/* A purge deleted the inbox envelopes it cleared (statement 0) and the
 * queued outbox ones (statement 1): the answer counts both. */
static void purge_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  uint64_t n = 0;
  if (status == 0)
    n = (uint64_t)text_int(db_op_result(op, 0), 0, 0) +
        cmd_count(db_op_result(op, 1));
  ((store_count_cb)c->cb)(c->data, status, n);
  free(c);
}

void store_purge(db_t *db, const store_purge_t *pg, store_count_cb cb,
                 void *data) {
  ctx_t *c = ctx_new((void *)cb, data);
  db_op_t *op = op_new(purge_done, c, 0);
  if (!op) {
    cb(data, SYNOD_ENOMEM, 0);
    return;
  }
  params_t p = {0};
  p_int(&p, pg->account_id);
  p_text(&p, pg->user);
  p_int(&p, pg->scope);
  p_text(&p, pg->peer ? pg->peer : "");
  p_bin(&p, pg->ids, pg->nids * STORE_ID_BYTES);
  p_int(&p, (int64_t)pg->until);
  p_text(&p, pg->self);
  /* Received by the user ($1 is their account; 0 on a peer relay), or sent
   * by them and still waiting here for a recipient. Rows become
   * tombstones, so a later duplicate of a purged message is still refused.
   * until ($6) is whole seconds, as message times are: a purge covers
   * messages with time <= until, so everything stored during second until
   * too, not only up to its first instant. */
  int rc = add(
      op,
      CLEAR_INBOX(
          "SELECT i.message_id, i.account_id, octet_length(i.envelope) AS n"
          " FROM inbox i JOIN accounts a ON a.id = i.account_id"
          " WHERE i.envelope IS NOT NULL"
          " AND i.received_at < to_timestamp($6::bigint::float8 + 1)"
          " AND ((i.account_id = $1::bigint"
          "       AND ($3::int = 1 OR ($3::int = 2 AND i.sender = $4::text)"
          "            OR ($3::int = 3 AND i.message_id IN " IDS_OF(
              "5") ")))"
                   "   OR (i.sender = $2::text"
                   "       AND ($3::int = 1"
                   "            OR ($3::int = 2 AND a.name = split_part($4::text, '@', 1)"
                   "                AND split_part($4::text, '@', 2) = $7::text)"
                   "            OR ($3::int = 3 AND i.message_id IN " IDS_OF(
                       "5") "))))"
                            " FOR UPDATE OF i",
          "coalesce(inbox.delivered_at, now())"),
      &p, 0);
  /* Every parameter of a statement must appear in it (the server infers
   * their types), so the next two take only the ones they use. */
  p.n = 6;
  if (rc == 0)
    rc = add(op,
             "DELETE FROM outbox WHERE sender_account = NULLIF($1::bigint, 0)"
             " AND sender = $2::text AND envelope IS NOT NULL"
             " AND queued_at < to_timestamp($6::bigint::float8 + 1)"
             " AND ($3::int = 1 OR ($3::int = 2 AND recipient = $4::text)"
             "      OR ($3::int = 3 AND message_id IN " IDS_OF("5") "))",
             &p, 0);
  params_t n = {0};
  p_int(&n, pg->account_id);
  p_int(&n, pg->scope);
  p_bin(&n, pg->ids, pg->nids * STORE_ID_BYTES);
  /* Notices carry no peer: a conversation purge clears them all. */
  if (rc == 0 && pg->account_id)
    rc = add(op,
             "DELETE FROM notices WHERE account_id = $1::bigint"
             " AND ($2::int <> 3 OR message_id IN " IDS_OF("3") ")",
             &n, 0);
  for (size_t i = 0; rc == 0 && pg->queue && i < pg->npeers; i++) {
    params_t q = {0};
    p_text(&q, pg->peers[i]);
    p_bin(&q, pg->queue, pg->queuelen);
    rc = add(op,
             "INSERT INTO peer_notices (peer, kind, body)"
             " VALUES ($1::text, 'purge', $2::bytea)",
             &q, 0);
  }
  submit_or_fail(db, op, rc);
}
