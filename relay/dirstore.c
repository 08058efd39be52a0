/*
 * The key directory's queries; see dirstore.h.
 *
 * Parameters: bytea in binary format, everything else as text, every
 * placeholder cast in the SQL. Results in binary format.
 */
#include "dirstore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/err.h"

#define MAX_PARAMS  16
#define MAX_RESULTS 8

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
  /* NULL b is SQL NULL. */
  p->v[p->n] = (const char *)b;
  p->len[p->n] = (int)len;
  p->fmt[p->n] = 1;
  p->n++;
}

static void p_int(params_t *p, int64_t v) {
  snprintf(p->num[p->n], sizeof p->num[0], "%" PRId64, v);
  p_text(p, p->num[p->n]);
}

/* --- rows ------------------------------------------------------------------ */

struct dirstore_rows {
  PGresult *res;
};

size_t dirstore_rows_count(const dirstore_rows_t *r) {
  return r && r->res && PQresultStatus(r->res) == PGRES_TUPLES_OK
             ? (size_t)PQntuples(r->res)
             : 0;
}

const uint8_t *dirstore_rows_col(const dirstore_rows_t *r, size_t i, int col,
                                 size_t *len) {
  *len = 0;
  if (i >= dirstore_rows_count(r) || col >= PQnfields(r->res) ||
      PQgetisnull(r->res, (int)i, col))
    return NULL;
  *len = (size_t)PQgetlength(r->res, (int)i, col);
  return (const uint8_t *)PQgetvalue(r->res, (int)i, col);
}

int64_t dirstore_rows_int(const dirstore_rows_t *r, size_t i, int col) {
  size_t len;
  const uint8_t *b = dirstore_rows_col(r, i, col, &len);
  uint64_t v = 0;
  if (!b || (len != 8 && len != 4))
    return 0;
  for (size_t k = 0; k < len; k++)
    v = v << 8 | b[k];
  return len == 4 ? (int32_t)(uint32_t)v : (int64_t)v;
}

int dirstore_rows_str(const dirstore_rows_t *r, size_t i, int col, char *out,
                      size_t outlen) {
  size_t len;
  const uint8_t *b = dirstore_rows_col(r, i, col, &len);
  if (!b)
    return SYNOD_ENOENT;
  if (len >= outlen || memchr(b, 0, len))
    return SYNOD_ETOOBIG;
  memcpy(out, b, len);
  out[len] = '\0';
  return 0;
}

/* --- ops ------------------------------------------------------------------- */

typedef struct ctx {
  dirstore_rows_cb cb;
  void *data;
} ctx_t;

static void rows_done(db_t *db, db_op_t *op, int status) {
  (void)db;
  ctx_t *c = db_op_data(op);
  dirstore_rows_t rows[MAX_RESULTS];
  const dirstore_rows_t *res[MAX_RESULTS];
  size_t n = 0;
  if (status == 0) {
    n = db_op_count(op);
    if (n > MAX_RESULTS)
      n = MAX_RESULTS;
    for (size_t i = 0; i < n; i++) {
      rows[i].res = db_op_result(op, i);
      res[i] = &rows[i];
    }
  }
  c->cb(c->data, status, res, n);
  free(c);
}

static db_op_t *op_new(dirstore_rows_cb cb, void *data, unsigned flags) {
  ctx_t *c = calloc(1, sizeof *c);
  db_op_t *op = c ? db_op_new(rows_done, c, flags) : NULL;
  if (!op) {
    free(c);
    cb(data, SYNOD_ENOMEM, NULL, 0);
    return NULL;
  }
  c->cb = cb;
  c->data = data;
  return op;
}

static int add(db_op_t *op, int rc, const char *sql, const params_t *p) {
  if (rc != 0)
    return rc;
  return db_op_add(op, sql, p->n, p->v, p->len, p->fmt, 1);
}

/* As store.c: an op whose statement list could not be built still calls
 * back once, from the loop, with SYNOD_EDB. */
static void submit(db_t *db, db_op_t *op, int rc) {
  if (rc != 0)
    (void)db_op_add(op, "SELECT 1/0", 0, NULL, NULL, NULL, 0);
  db_submit(db, op);
}

/* '{"a","b"}': relay names never hold a quote or a backslash
 * (synod/userid.h), so quoting them is enough. Caller frees. */
static char *text_array(const char *const *v, size_t n) {
  size_t len = 3;
  for (size_t i = 0; i < n; i++)
    len += strlen(v[i]) + 3;
  char *s = malloc(len);
  if (!s)
    return NULL;
  char *w = s;
  *w++ = '{';
  for (size_t i = 0; i < n; i++)
    w += sprintf(w, "%s\"%s\"", i ? "," : "", v[i]);
  *w++ = '}';
  *w = '\0';
  return s;
}

#define FROZEN(u)                                                              \
  "EXISTS (SELECT 1 FROM proofs WHERE user_id = " u " AND kind IN (1, 2))"

void dirstore_state(db_t *db, const char *user, uint64_t version,
                    const char *relay, const char *local, const uint8_t key[32],
                    dirstore_rows_cb cb, void *data) {
  db_op_t *op = op_new(cb, data, DB_OP_READONLY);
  if (!op)
    return;
  params_t p = {0};
  p_text(&p, user);
  int rc =
      add(op, 0,
          "SELECT version, hash, identity_key, signed_at FROM announcements"
          " WHERE user_id = $1::text ORDER BY version DESC LIMIT 1",
          &p);
  p_int(&p, (int64_t)version);
  rc = add(op, rc,
           "SELECT hash, body, signature FROM announcements"
           " WHERE user_id = $1::text AND version = $2::bigint",
           &p);
  p_text(&p, relay);
  rc = add(op, rc,
           "SELECT c.body, c.signature FROM countersignatures c"
           " JOIN announcements a ON a.user_id = c.user_id"
           "  AND a.version = c.version AND a.hash = c.hash"
           " WHERE c.user_id = $1::text AND c.version = $2::bigint"
           " AND c.relay = $3::text",
           &p);
  p.n = 1;
  rc = add(op, rc, "SELECT 1 WHERE " FROZEN("$1::text"), &p);
  p.n = 0;
  p_text(&p, local ? local : "");
  p_bin(&p, key, 32);
  rc = add(op, rc,
           "SELECT 1 FROM accounts WHERE $1::text <> ''"
           " AND identity_key = $2::bytea AND name <> $1::text",
           &p);
  submit(db, op, rc);
}

void dirstore_accept(db_t *db, const dirstore_link_t *in, dirstore_rows_cb cb,
                     void *data) {
  db_op_t *op = op_new(cb, data, 0);
  if (!op)
    return;
  char *peers = text_array(in->peers, in->gossip ? in->npeers : 0);
  if (!peers) {
    submit(db, op, SYNOD_ENOMEM);
    return;
  }
  params_t p = {0};
  p_text(&p, in->user);                               /* 1 */
  p_int(&p, (int64_t)in->version);                    /* 2 */
  p_bin(&p, in->hash, 32);                            /* 3 */
  p_bin(&p, in->body, in->body_len);                  /* 4 */
  p_bin(&p, in->signature, 64);                       /* 5 */
  p_bin(&p, in->continuity, in->continuity ? 64 : 0); /* 6 */
  p_bin(&p, in->identity_key, 32);                    /* 7 */
  p_int(&p, (int64_t)in->time);                       /* 8 */
  p_bin(&p, in->gossip, in->gossip_len);              /* 9 */
  p_text(&p, peers);                                  /* 10 */
  /* The successor of the newest link held, and no proof freezes the user:
   * checked here, in the writing transaction, so two relay processes on
   * one database cannot both extend the same head. */
  int rc = add(
      op, 0,
      "WITH ins AS (INSERT INTO announcements (user_id, version, hash, body,"
      "   signature, continuity, identity_key, signed_at)"
      "  SELECT $1::text, $2::bigint, $3::bytea, $4::bytea, $5::bytea,"
      "   $6::bytea, $7::bytea, $8::bigint"
      "  WHERE coalesce((SELECT max(version) FROM announcements"
      "                  WHERE user_id = $1::text), 0) = $2::bigint - 1"
      "   AND NOT " FROZEN(
          "$1::text") "  ON CONFLICT DO NOTHING RETURNING 1),"
                      " q AS (INSERT INTO peer_notices (peer, kind, body)"
                      "  SELECT unnest($10::text[]), 'gossip', $9::bytea"
                      "  WHERE $9::bytea IS NOT NULL AND EXISTS (SELECT 1 FROM ins))"
                      " SELECT count(*) FROM ins",
      &p);
  p.n = 3;
  p_text(&p, in->cs_relay);           /* 4 */
  p_bin(&p, in->cs_body, in->cs_len); /* 5 */
  p_bin(&p, in->cs_sig, 64);          /* 6 */
  rc = add(op, rc,
           "INSERT INTO countersignatures (user_id, version, hash, relay, body,"
           " signature)"
           " SELECT $1::text, $2::bigint, $3::bytea, $4::text, $5::bytea,"
           " $6::bytea WHERE EXISTS (SELECT 1 FROM announcements"
           "  WHERE user_id = $1::text AND version = $2::bigint"
           "  AND hash = $3::bytea)"
           " ON CONFLICT DO NOTHING",
           &p);
  if (in->local) {
    p.n = 3;
    p_text(&p, in->local);           /* 4 */
    p_bin(&p, in->identity_key, 32); /* 5 */
    /* The account follows its newest accepted announcement; a key bound
     * to another account is refused before this (dirstore_state res[4]),
     * and left alone here. */
    rc = add(op, rc,
             "UPDATE accounts SET identity_key = $5::bytea"
             " WHERE name = $4::text AND identity_key IS NOT NULL"
             " AND identity_key <> $5::bytea"
             " AND EXISTS (SELECT 1 FROM announcements WHERE user_id = $1::text"
             "  AND version = $2::bigint AND hash = $3::bytea)"
             " AND NOT EXISTS (SELECT 1 FROM announcements"
             "  WHERE user_id = $1::text AND version > $2::bigint)"
             " AND NOT EXISTS (SELECT 1 FROM accounts"
             "  WHERE identity_key = $5::bytea)",
             &p);
  }
  p.n = 2;
  rc = add(op, rc,
           "SELECT hash FROM announcements WHERE user_id = $1::text"
           " AND version = $2::bigint",
           &p);
  free(peers);
  submit(db, op, rc);
}

void dirstore_put_proof(db_t *db, const dirstore_proof_t *pr,
                        dirstore_rows_cb cb, void *data) {
  db_op_t *op = op_new(cb, data, 0);
  if (!op)
    return;
  char *peers = text_array(pr->peers, pr->gossip ? pr->npeers : 0);
  if (!peers) {
    submit(db, op, SYNOD_ENOMEM);
    return;
  }
  params_t p = {0};
  p_text(&p, pr->user);                  /* 1 */
  p_int(&p, pr->kind);                   /* 2 */
  p_int(&p, (int64_t)pr->version);       /* 3 */
  p_bin(&p, pr->guilty_key, 32);         /* 4 */
  p_text(&p, pr->guilty_relay);          /* 5 */
  p_bin(&p, pr->proof, pr->proof_len);   /* 6 */
  p_bin(&p, pr->gossip, pr->gossip_len); /* 7 */
  p_text(&p, peers);                     /* 8 */
  int rc = add(
      op, 0,
      "WITH ins AS (INSERT INTO proofs (user_id, kind, version, guilty_key,"
      "   guilty_relay, proof, proof_hash)"
      "  VALUES ($1::text, $2::int, $3::bigint, $4::bytea, $5::text, $6::bytea,"
      "   sha256($6::bytea))"
      "  ON CONFLICT DO NOTHING RETURNING 1),"
      " q AS (INSERT INTO peer_notices (peer, kind, body)"
      "  SELECT unnest($8::text[]), 'gossip', $7::bytea"
      "  WHERE $7::bytea IS NOT NULL AND EXISTS (SELECT 1 FROM ins))"
      " SELECT count(*) FROM ins",
      &p);
  free(peers);
  submit(db, op, rc);
}

void dirstore_chain(db_t *db, const char *user, uint64_t from_version,
                    int head_only, const char *relay, dirstore_rows_cb cb,
                    void *data) {
  db_op_t *op = op_new(cb, data, DB_OP_READONLY);
  if (!op)
    return;
  params_t p = {0};
  p_text(&p, user);
  int rc = add(op, 0,
               "SELECT version, hash FROM announcements"
               " WHERE user_id = $1::text ORDER BY version DESC LIMIT 1",
               &p);
  p_int(&p, (int64_t)from_version);
  p_text(&p, relay);
  p_int(&p, head_only && from_version == 0);
  p_int(&p, DIRSTORE_MAX_LINKS);
  rc = add(op, rc,
           "SELECT a.version, a.body, a.signature, a.continuity, c.body,"
           " c.signature FROM announcements a"
           " LEFT JOIN countersignatures c ON c.user_id = a.user_id"
           "  AND c.version = a.version AND c.hash = a.hash"
           "  AND c.relay = $3::text"
           " WHERE a.user_id = $1::text AND a.version > CASE WHEN $4::int = 1"
           "  THEN (SELECT max(version) - 1 FROM announcements"
           "        WHERE user_id = $1::text)"
           "  ELSE $2::bigint END"
           " ORDER BY a.version LIMIT $5::int",
           &p);
  p.n = 0;
  p_text(&p, user);
  p_text(&p, relay);
  p_int(&p, DIRSTORE_MAX_PROOFS);
  rc = add(op, rc,
           "SELECT proof FROM proofs WHERE user_id = $1::text"
           " OR guilty_relay = $2::text ORDER BY id LIMIT $3::int",
           &p);
  submit(db, op, rc);
}

void dirstore_proofs(db_t *db, const char *user, const char *relay,
                     dirstore_rows_cb cb, void *data) {
  db_op_t *op = op_new(cb, data, DB_OP_READONLY);
  if (!op)
    return;
  params_t p = {0};
  p_text(&p, user ? user : "");
  p_text(&p, relay ? relay : "");
  p_int(&p, DIRSTORE_MAX_PROOFS);
  submit(db, op,
         add(op, 0,
             "SELECT proof FROM proofs"
             " WHERE ($1::text = '' OR user_id = $1::text)"
             " AND ($2::text = '' OR guilty_relay = $2::text)"
             " ORDER BY id LIMIT $3::int",
             &p));
}

void dirstore_heads(db_t *db, dirstore_rows_cb cb, void *data) {
  db_op_t *op = op_new(cb, data, DB_OP_READONLY);
  if (!op)
    return;
  params_t p = {0};
  submit(db, op,
         add(op, 0,
             "SELECT DISTINCT ON (user_id) user_id, version, hash"
             " FROM announcements ORDER BY user_id, version DESC",
             &p));
}

void dirstore_countersig(db_t *db, const char *user, uint64_t version,
                         const char *relay, dirstore_rows_cb cb, void *data) {
  db_op_t *op = op_new(cb, data, DB_OP_READONLY);
  if (!op)
    return;
  params_t p = {0};
  p_text(&p, user);
  p_int(&p, (int64_t)version);
  p_text(&p, relay);
  submit(db, op,
         add(op, 0,
             "SELECT a.hash, c.body, c.signature FROM announcements a"
             " LEFT JOIN countersignatures c ON c.user_id = a.user_id"
             "  AND c.version = a.version AND c.hash = a.hash"
             "  AND c.relay = $3::text"
             " WHERE a.user_id = $1::text AND a.version = $2::bigint",
             &p));
}
