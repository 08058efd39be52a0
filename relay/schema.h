/*
 * The relay's PostgreSQL schema as versioned migrations compiled into the
 * binary, applied by `synod-relay migrate`.
 *
 * Applied versions are recorded in synod_schema(version, applied_at,
 * description). Each migration runs in its own transaction that first takes
 * the transaction-level advisory lock SCHEMA_LOCK_KEY, so relays migrating
 * one database at the same time apply every migration exactly once. A
 * database whose schema is newer than the binary is refused, never touched.
 *
 * These calls block: they are for the command line, not the event loop.
 */
#ifndef SYNOD_RELAY_SCHEMA_H
#define SYNOD_RELAY_SCHEMA_H

#include <stddef.h>

#include <libpq-fe.h>

#include "synod/err.h"

/* pg_advisory_xact_lock key held while migrating: "synod" in ASCII. */
#define SCHEMA_LOCK_KEY 0x73796e6f64LL

typedef struct schema_migration {
  int version;             /* 1, 2, ... without gaps */
  const char *description; /* one line, recorded in synod_schema */
  const char *sql;         /* statements run in the migration's transaction */
} schema_migration_t;

/* The compiled-in migrations in version order; *n receives their count.
 * Static storage. */
const schema_migration_t *schema_migrations(size_t *n);

/* The newest version this binary knows. */
int schema_latest_version(void);

/*
 * The version the database at conn is at (0 when synod_schema does not exist)
 * into *version. SYNOD_EDB with the server's message in err on failure.
 */
SYNOD_WUR int schema_current_version(PGconn *conn, int *version, char *err,
                                     size_t errlen);

/* Called after each migration commits; data is schema_migrate()'s. */
typedef void (*schema_applied_cb)(void *data, const schema_migration_t *m);

/*
 * Applies, in order, every migration the database at conn lacks, calling
 * applied (may be NULL) after each commit. conn must be idle, outside a
 * transaction; it is left so. *version (may be NULL) receives the version
 * the database was last seen at (after a failure: before the failed step).
 *
 * Returns 0 (also when nothing was missing), SYNOD_EVERSION when the database
 * is newer than this binary, SYNOD_EDB on a server error; err receives a
 * sentence saying what happened.
 */
SYNOD_WUR int schema_migrate(PGconn *conn, schema_applied_cb applied,
                             void *data, int *version, char *err,
                             size_t errlen);

/*
 * For `run`: 0 when the database is exactly at schema_latest_version();
 * SYNOD_EVERSION when it is older ("run synod-relay migrate") or newer
 * ("upgrade synod-relay"), SYNOD_EDB on a server error; err says which.
 */
SYNOD_WUR int schema_check(PGconn *conn, char *err, size_t errlen);

#endif
