/*
 * Versioned schema migrations over blocking libpq.
 *
 * A migration, once released, is never edited: a change to the schema is a
 * new migration appended to the list.
 */
#include "schema.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * v1: messaging.
 *
 * inbox rows stay after delivery with envelope set to NULL, as tombstones
 * until expires_at, so a duplicate forward of a delivered message still
 * collides with the primary key and is dropped: deduplication is the unique
 * constraint, not a lookup that could race. outbox.queued_at lets `status`
 * show how long a peer has been behind.
 */
static const char v1_sql[] =
    "CREATE TABLE accounts ("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL UNIQUE"
    "    CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),"
    "  identity_key bytea UNIQUE CHECK (octet_length(identity_key) = 32),"
    "  enroll_code_hash bytea CHECK (octet_length(enroll_code_hash) = 32),"
    "  disabled boolean NOT NULL DEFAULT false,"
    "  stored_bytes bigint NOT NULL DEFAULT 0 CHECK (stored_bytes >= 0),"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  enrolled_at timestamptz"
    ");"
    "CREATE TABLE inbox ("
    "  message_id bytea PRIMARY KEY CHECK (octet_length(message_id) = 16),"
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  seq bigserial NOT NULL,"
    "  sender text NOT NULL,"
    "  sender_relay text NOT NULL,"
    "  received_at timestamptz NOT NULL DEFAULT now(),"
    "  expires_at timestamptz NOT NULL,"
    "  envelope bytea,"
    "  delivered_at timestamptz"
    ");"
    "CREATE INDEX inbox_pending ON inbox (account_id, seq)"
    "  WHERE envelope IS NOT NULL;"
    "CREATE INDEX inbox_expires ON inbox (expires_at);"
    "CREATE INDEX inbox_sender ON inbox (sender) WHERE envelope IS NOT NULL;"
    "CREATE TABLE outbox ("
    "  message_id bytea PRIMARY KEY CHECK (octet_length(message_id) = 16),"
    "  peer text NOT NULL,"
    "  seq bigserial NOT NULL,"
    "  sender_account bigint REFERENCES accounts ON DELETE SET NULL,"
    "  sender text NOT NULL,"
    "  recipient text NOT NULL,"
    "  queued_at timestamptz NOT NULL DEFAULT now(),"
    "  expires_at timestamptz NOT NULL,"
    "  envelope bytea,"
    "  forwarded_at timestamptz"
    ");"
    "CREATE INDEX outbox_peer ON outbox (peer, seq) WHERE envelope IS NOT NULL;"
    "CREATE INDEX outbox_sender ON outbox (sender_account)"
    "  WHERE envelope IS NOT NULL;"
    "CREATE INDEX outbox_expires ON outbox (expires_at);"
    "CREATE TABLE notices ("
    "  id bigserial PRIMARY KEY,"
    "  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,"
    "  message_id bytea CHECK (octet_length(message_id) = 16),"
    "  kind text NOT NULL,"
    "  body bytea NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now()"
    ");"
    "CREATE INDEX notices_account ON notices (account_id, id);"
    "CREATE TABLE peer_notices ("
    "  id bigserial PRIMARY KEY,"
    "  peer text NOT NULL,"
    "  kind text NOT NULL CHECK (kind IN ('delivery-failure', 'purge')),"
    "  body bytea NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now()"
    ");"
    "CREATE INDEX peer_notices_peer ON peer_notices (peer, id);";

/*
 * v2: the key directory (proto/README.md section 7).
 *
 * announcements hold the exact bytes each user signed, one row per user and
 * version: the primary key is the rule "never two announcements for one
 * user and version", enforced by the database even against two relay
 * processes racing. countersignatures hold the home relay's statement for
 * each stored link. proofs hold packed EquivocationProof messages, unique on
 * their SHA-256 (synod_proof_build orders the pair canonically, so finding
 * the same conflict twice stores one row); a user with a proof of kind 1
 * or 2 is frozen: no newer link is accepted. peer_notices gains the kind
 * 'gossip': a packed GossipAnnouncement to push to that peer.
 */
static const char v2_sql[] =
    "CREATE TABLE announcements ("
    "  user_id text NOT NULL,"
    "  version bigint NOT NULL CHECK (version >= 1),"
    "  hash bytea NOT NULL CHECK (octet_length(hash) = 32),"
    "  body bytea NOT NULL,"
    "  signature bytea NOT NULL CHECK (octet_length(signature) = 64),"
    "  continuity bytea CHECK (octet_length(continuity) = 64),"
    "  identity_key bytea NOT NULL CHECK (octet_length(identity_key) = 32),"
    "  signed_at bigint NOT NULL,"
    "  received_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (user_id, version)"
    ");"
    "CREATE TABLE countersignatures ("
    "  user_id text NOT NULL,"
    "  version bigint NOT NULL,"
    "  hash bytea NOT NULL CHECK (octet_length(hash) = 32),"
    "  relay text NOT NULL,"
    "  body bytea NOT NULL,"
    "  signature bytea NOT NULL CHECK (octet_length(signature) = 64),"
    "  received_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (user_id, version, relay)"
    ");"
    "CREATE TABLE proofs ("
    "  id bigserial PRIMARY KEY,"
    "  user_id text NOT NULL,"
    "  kind int NOT NULL CHECK (kind BETWEEN 1 AND 3),"
    "  version bigint NOT NULL,"
    "  guilty_key bytea NOT NULL CHECK (octet_length(guilty_key) = 32),"
    "  guilty_relay text NOT NULL DEFAULT '',"
    "  proof bytea NOT NULL,"
    "  proof_hash bytea NOT NULL UNIQUE CHECK (octet_length(proof_hash) = 32),"
    "  received_at timestamptz NOT NULL DEFAULT now()"
    ");"
    "CREATE INDEX proofs_user ON proofs (user_id);"
    "CREATE INDEX proofs_relay ON proofs (guilty_relay);"
    "ALTER TABLE peer_notices DROP CONSTRAINT peer_notices_kind_check;"
    "ALTER TABLE peer_notices ADD CONSTRAINT peer_notices_kind_check"
    "  CHECK (kind IN ('delivery-failure', 'purge', 'gossip'));";

/*
 * v3: enrolment codes expire. A code printed by `user add` or `user
 * reenroll` binds a key only before enroll_code_expires (the relay's
 * enroll_code_ttl after it was made); codes issued before this migration
 * get seven days from it. A pending account without an expiry binds
 * nothing (the check fails closed).
 */
static const char v3_sql[] =
    "ALTER TABLE accounts ADD COLUMN enroll_code_expires timestamptz;"
    "UPDATE accounts SET enroll_code_expires = now() + interval '7 days'"
    "  WHERE enroll_code_hash IS NOT NULL;";

static const schema_migration_t migrations[] = {
    {1, "messaging: accounts, inbox, outbox, notices", v1_sql},
    {2, "directory: announcements, countersignatures, proofs", v2_sql},
    {3, "enrolment codes expire", v3_sql},
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

const schema_migration_t *schema_migrations(size_t *n) {
  *n = NMIGRATIONS;
  return migrations;
}

int schema_latest_version(void) {
  return migrations[NMIGRATIONS - 1].version;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...) {
  if (errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  /* PQerrorMessage ends in a newline; the caller adds its own. */
  size_t n = strlen(err);
  while (n > 0 && err[n - 1] == '\n')
    err[--n] = '\0';
}

/* Runs sql, expecting status want; on failure writes what into err. */
static int exec(PGconn *conn, const char *sql, ExecStatusType want,
                PGresult **out, const char *what, char *err, size_t errlen) {
  PGresult *r = PQexec(conn, sql);
  if (PQresultStatus(r) != want) {
    errf(err, errlen, "%s: %s", what,
         r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(conn));
    PQclear(r);
    return SYNOD_EDB;
  }
  if (out != NULL)
    *out = r;
  else
    PQclear(r);
  return 0;
}

/* The highest version in synod_schema, 0 when it is empty or absent;
 * *exists (may be NULL) tells which. */
static int read_version(PGconn *conn, int *version, int *exists, char *err,
                        size_t errlen) {
  PGresult *r = NULL;
  int rc = exec(conn, "SELECT to_regclass('synod_schema') IS NOT NULL",
                PGRES_TUPLES_OK, &r, "reading the schema version", err, errlen);
  if (rc != 0)
    return rc;
  int present = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  if (exists != NULL)
    *exists = present;
  if (!present) {
    *version = 0;
    return 0;
  }
  rc = exec(conn, "SELECT coalesce(max(version), 0) FROM synod_schema",
            PGRES_TUPLES_OK, &r, "reading the schema version", err, errlen);
  if (rc != 0)
    return rc;
  const char *text = PQgetvalue(r, 0, 0);
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  int bad = errno != 0 || end == text || *end != '\0' || v < 0 || v > INT_MAX;
  PQclear(r);
  if (bad) {
    errf(err, errlen, "reading the schema version: not a number");
    return SYNOD_EDB;
  }
  *version = (int)v;
  return 0;
}

int schema_current_version(PGconn *conn, int *version, char *err,
                           size_t errlen) {
  return read_version(conn, version, NULL, err, errlen);
}

static int too_new(int have, char *err, size_t errlen) {
  errf(err, errlen,
       "the database schema is at version %d, newer than this synod-relay "
       "knows (%d): upgrade synod-relay",
       have, schema_latest_version());
  return SYNOD_EVERSION;
}

int schema_check(PGconn *conn, char *err, size_t errlen) {
  int have;
  int rc = read_version(conn, &have, NULL, err, errlen);
  if (rc != 0)
    return rc;
  if (have > schema_latest_version())
    return too_new(have, err, errlen);
  if (have < schema_latest_version()) {
    errf(err, errlen,
         "the database schema is at version %d, this synod-relay needs %d: "
         "run synod-relay migrate",
         have, schema_latest_version());
    return SYNOD_EVERSION;
  }
  return 0;
}

/*
 * One transaction: lock, read the version, apply the next migration if one
 * is missing. *done is set when there was nothing left to apply. The lock is
 * taken before synod_schema is created or read, so a second relay waits
 * here and then sees the first one's work.
 */
static int migrate_step(PGconn *conn, int *version, int *done,
                        const schema_migration_t **applied, char *err,
                        size_t errlen) {
  char sql[128];
  int rc = exec(conn, "BEGIN", PGRES_COMMAND_OK, NULL, "BEGIN", err, errlen);
  if (rc != 0)
    return rc;
  snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)",
           (long long)SCHEMA_LOCK_KEY);
  rc = exec(conn, sql, PGRES_TUPLES_OK, NULL, "taking the migration lock", err,
            errlen);
  if (rc != 0)
    goto rollback;
  int exists = 0;
  rc = read_version(conn, version, &exists, err, errlen);
  if (rc != 0)
    goto rollback;
  /* Created here, under the lock, rather than with IF NOT EXISTS, which
   * races between two sessions and sends a NOTICE when it skips. */
  if (!exists) {
    rc = exec(conn,
              "CREATE TABLE synod_schema ("
              "  version int PRIMARY KEY,"
              "  applied_at timestamptz NOT NULL DEFAULT now(),"
              "  description text NOT NULL)",
              PGRES_COMMAND_OK, NULL, "creating synod_schema", err, errlen);
    if (rc != 0)
      goto rollback;
  }
  if (*version > schema_latest_version()) {
    rc = too_new(*version, err, errlen);
    goto rollback;
  }
  const schema_migration_t *m = NULL;
  for (size_t i = 0; i < NMIGRATIONS; i++)
    if (migrations[i].version == *version + 1)
      m = &migrations[i];
  if (m == NULL) {
    *done = 1;
    /* Commit so that a fresh database keeps its (empty) synod_schema. */
    return exec(conn, "COMMIT", PGRES_COMMAND_OK, NULL, "COMMIT", err, errlen);
  }
  char what[160];
  snprintf(what, sizeof what, "migration %d (%s)", m->version, m->description);
  rc = exec(conn, m->sql, PGRES_COMMAND_OK, NULL, what, err, errlen);
  if (rc != 0)
    goto rollback;
  char vbuf[16];
  snprintf(vbuf, sizeof vbuf, "%d", m->version);
  const char *params[2] = {vbuf, m->description};
  PGresult *r = PQexecParams(conn,
                             "INSERT INTO synod_schema (version, description)"
                             " VALUES ($1, $2)",
                             2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    errf(err, errlen, "recording %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    rc = SYNOD_EDB;
    goto rollback;
  }
  PQclear(r);
  rc = exec(conn, "COMMIT", PGRES_COMMAND_OK, NULL, what, err, errlen);
  if (rc != 0)
    return rc;
  *version = m->version;
  *applied = m;
  return 0;
rollback:
  PQclear(PQexec(conn, "ROLLBACK"));
  return rc;
}

int schema_migrate(PGconn *conn, schema_applied_cb applied, void *data,
                   int *version, char *err, size_t errlen) {
  int v = 0, rc = 0;
  if (errlen > 0)
    err[0] = '\0';
  for (;;) {
    int done = 0;
    const schema_migration_t *m = NULL;
    rc = migrate_step(conn, &v, &done, &m, err, errlen);
    if (rc != 0 || done)
      break;
    if (applied != NULL)
      applied(data, m);
  }
  if (version != NULL)
    *version = v;
  return rc;
}
