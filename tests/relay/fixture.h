/*
 * fixture: a real synod federation on loopback for integration tests.
 *
 * As chutney builds a real Tor network, a fixture builds real relays: each
 * gets a state directory (mkdtemp), its own PostgreSQL database on the test
 * server of tests/run.sh, a key written by `synod-relay keygen`, a free
 * loopback port, a configuration listing every other relay of the fixture
 * as a peer, its schema from `synod-relay migrate`, and, when started, a
 * `synod-relay run` child process whose stdout and stderr go to a log file
 * in its state directory. Operator commands run the same binary.
 *
 * Processes are started with fork/execve, never on a libuv loop, so a
 * test's own loops stay separate; a child is killed by the kernel if the
 * test program dies (PR_SET_PDEATHSIG). Every wait has a deadline: nothing
 * here can hang a test.
 *
 * Failure: when a fixture is freed after a failure (an assertion failed
 * since it was created, a fixture call failed, or fixture_fail() was
 * called) the log of every process it ran is written to stderr, relay by
 * relay, with the PostgreSQL server log; then whatever still runs is
 * killed, the databases are dropped and the state directories removed
 * (kept with SYNOD_KEEP_STATE=1, and their paths printed).
 *
 * Environment (exported by tests/run.sh):
 *   SYNOD_TEST_PG_ADMIN  conninfo of the server's postgres database; the
 *                        fixture creates and drops databases through it
 *   SYNOD_TEST_PG_DIR    the private server's directory, for restarts and
 *                        its server.log
 *   SYNOD_PG_CTL         deploy/private-pg.sh
 *   SYNOD_RELAY_BIN      the synod-relay binary; by default the build
 *                        tree's: the SYNOD_RELAY_BIN definition, else
 *                        ../../relay/synod-relay from the test program
 *   SYNOD_KEEP_STATE     1: keep state directories and databases
 *
 * Conventions: functions return 0 or a negative SYNOD_E* code, and say why
 * on stderr before failing, so a test only asserts the result. Strings
 * returned by accessors belong to the fixture and live until fixture_free().
 * Nothing here is thread-safe; use it from the test's thread.
 */
#ifndef SYNOD_TESTS_RELAY_FIXTURE_H
#define SYNOD_TESTS_RELAY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "synod/crypto.h"
#include "synod/err.h"

/* Deadlines, in milliseconds; generous because the tests run under ASan. */
#define FIXTURE_READY_MS 30000 /* run: until its port accepts connections */
#define FIXTURE_STOP_MS  30000 /* SIGTERM until exit */
#define FIXTURE_CMD_MS   60000 /* an operator command, a PostgreSQL restart */

/* Room for an enrolment code as user add prints it ("ABCD-EFGH-...") and
 * its NUL. */
#define FIXTURE_CODE_MAX 64

typedef struct fixture fixture_t;
typedef struct fixture_relay fixture_relay_t;
typedef struct fixture_pg fixture_pg_t;

/* --- PostgreSQL ----------------------------------------------------------- */

/*
 * Creates a fresh database synod_<test>_<relay>_<pid> (characters outside
 * [a-z0-9] become '_', long names are shortened to PostgreSQL's 63 bytes)
 * on the server of SYNOD_TEST_PG_ADMIN, dropping a leftover of that name
 * first. *out is the caller's until fixture_pg_drop(). SYNOD_ECONFIG when
 * SYNOD_TEST_PG_ADMIN is unset, SYNOD_EDB when the server refuses.
 */
SYNOD_WUR int fixture_pg_create(fixture_pg_t **out, const char *test,
                                const char *relay);

/* Terminates the database's backends (pg_terminate_backend), drops it and
 * frees pg (also on failure). With SYNOD_KEEP_STATE=1 it only frees. NULL
 * is a no-op. */
int fixture_pg_drop(fixture_pg_t *pg);

/* The database's libpq conninfo and name, owned by pg. */
const char *fixture_pg_conninfo(const fixture_pg_t *pg);
const char *fixture_pg_dbname(const fixture_pg_t *pg);

/* 1 if a database named dbname exists on the server, 0 if not, or a
 * negative code. */
int fixture_pg_exists(const char *dbname);

/*
 * Runs sql (one statement, no parameters) on pg's database over a fresh
 * connection, and copies the first column of the first row as text into
 * out[0..outlen) (NULL or 0: ignore the result; no row or SQL NULL give "").
 * SYNOD_EDB with the server's message on stderr, SYNOD_ETOOBIG when the
 * value does not fit.
 */
SYNOD_WUR int fixture_pg_query(const fixture_pg_t *pg, const char *sql,
                               char *out, size_t outlen);

/* fixture_pg_query() of an integer-valued statement ("SELECT count(*) ..."). */
SYNOD_WUR int fixture_pg_query_i64(const fixture_pg_t *pg, const char *sql,
                                   int64_t *value);

/*
 * Restarts the test server in place (`$SYNOD_PG_CTL restart
 * $SYNOD_TEST_PG_DIR`: fast shutdown, which ends every connection, then a
 * start on the same port), bounded by FIXTURE_CMD_MS. There is no separate
 * stop/start: private-pg.sh start picks a new port, which would invalidate
 * every conninfo. SYNOD_ECONFIG when the variables are unset.
 */
SYNOD_WUR int fixture_pg_restart(void);

/* --- a federation --------------------------------------------------------- */

/*
 * A fixture for the test named test ([A-Za-z0-9_]; it names databases and
 * state directories). It is registered so that fixture_teardown() can free
 * it when an assertion aborted the test. Freed with fixture_free().
 */
SYNOD_WUR int fixture_new(fixture_t **out, const char *test);

/*
 * Adds a relay called name (a relay name: "relay-a") run by operator_name
 * (NULL: "Org <name>"): makes its state directory and database, picks its
 * port, writes a first configuration (no peers yet), runs `synod-relay
 * keygen -c CONF` and records the public key line it prints. *out (may be
 * NULL) points into fx. The relay is not migrated or started.
 */
SYNOD_WUR int fixture_add_relay(fixture_t *fx, const char *name,
                                const char *operator_name,
                                fixture_relay_t **out);

/* Rewrites the configuration of every relay: each lists every other relay
 * of fx as a peer, except those removed with fixture_relay_drop_peer(). A
 * running relay sees the new file only when restarted. */
SYNOD_WUR int fixture_write_configs(fixture_t *fx);

/* `synod-relay migrate` for every relay. */
SYNOD_WUR int fixture_migrate_all(fixture_t *fx);

/*
 * n relays relay-a, relay-b, ... (n <= 26), run by "Org A", "Org B", ...,
 * all peering with each other, configured and migrated; not started.
 */
SYNOD_WUR int fixture_federation(fixture_t *fx, size_t n);

/* fixture_relay_start() / fixture_relay_stop() for every relay (stop:
 * those running; every one is tried, the first error is returned). */
SYNOD_WUR int fixture_start_all(fixture_t *fx);
SYNOD_WUR int fixture_stop_all(fixture_t *fx);

size_t fixture_relay_count(const fixture_t *fx);
/* The i-th relay added, or NULL. */
fixture_relay_t *fixture_relay_at(const fixture_t *fx, size_t i);
/* The relay called name, or NULL. */
fixture_relay_t *fixture_relay_find(const fixture_t *fx, const char *name);

/* Marks fx failed, so its logs are dumped when it is freed, and prints the
 * reason on stderr. */
void fixture_fail(fixture_t *fx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True when fx is marked failed or a CUnit assertion failed since
 * fixture_new(). */
bool fixture_failed(const fixture_t *fx);

/* Writes the log of every process of fx (the tail of each file, up to
 * 64 KiB) and of the PostgreSQL server to stderr. */
void fixture_dump_logs(const fixture_t *fx);

/*
 * Tears fx down: dumps the logs if fixture_failed(); SIGKILLs relays still
 * running (after a failure or not: a test that wants a clean exit calls
 * fixture_stop_all() and asserts it); drops the databases; removes the
 * state directories unless SYNOD_KEEP_STATE=1. NULL is a no-op.
 */
void fixture_free(fixture_t *fx);

/* Frees every fixture not freed yet: a CUnit test tear-down function
 * (CU_SuiteInfo.pTearDownFunc), which runs even when a fatal assertion
 * ended the test early. Also installed with atexit(). */
void fixture_teardown(void);

/* --- one relay ------------------------------------------------------------ */

const char *fixture_relay_name(const fixture_relay_t *r);
const char *fixture_relay_operator(const fixture_relay_t *r);
uint16_t fixture_relay_port(const fixture_relay_t *r);
/* "127.0.0.1:PORT", as peers and clients reach it. */
const char *fixture_relay_address(const fixture_relay_t *r);
const char *fixture_relay_dir(const fixture_relay_t *r);
const char *fixture_relay_config_path(const fixture_relay_t *r);
/* The log of `run` (all starts appended, each after a "fixture:" line). */
const char *fixture_relay_log_path(const fixture_relay_t *r);
/* "synod-ed25519 BASE64", as keygen printed it, and the key itself. */
const char *fixture_relay_key_line(const fixture_relay_t *r);
const uint8_t *fixture_relay_public_key(const fixture_relay_t *r);
fixture_pg_t *fixture_relay_pg(const fixture_relay_t *r);
/* The pid of its `run` process, or 0 when not running. */
pid_t fixture_relay_pid(const fixture_relay_t *r);

/*
 * Sets key = value in [section] of r's configuration, replacing what the
 * fixture writes by default; value NULL leaves the key out, even one the
 * fixture writes (to test a missing key). section is
 * "relay", "database", "limits", "retention", "federation" or a peer
 * section written as `peer "relay-b"`. Takes effect with the next
 * fixture_relay_write_config() / fixture_write_configs().
 *
 * The fixture's defaults beyond the required keys: [relay] log_level =
 * debug; [federation] retry_min = 20ms, retry_max = 500ms, so reconnection
 * after a restart takes well under a second.
 */
SYNOD_WUR int fixture_relay_set(fixture_relay_t *r, const char *section,
                                const char *key, const char *value);

/* Leaves peer out of r's configuration (r will refuse it as unknown). */
SYNOD_WUR int fixture_relay_drop_peer(fixture_relay_t *r, const char *peer);

/* Writes r's configuration file (mode 0600) from its settings and the
 * relays of its fixture. */
SYNOD_WUR int fixture_relay_write_config(fixture_relay_t *r);

/*
 * Runs `synod-relay ARG... -c CONF` within FIXTURE_CMD_MS: args is a
 * NULL-terminated array; fixture_relay_cmd(r, out, outlen, &status, "user",
 * "list") builds it (no NULL to write; one is harmless). Its stdout goes to
 * out[0..outlen) (NUL-terminated, NULL or 0 to discard); stdout and stderr
 * are both appended to the relay's command log, which failure dumps show.
 * *status (may be NULL) receives the exit status, or 128+signal.
 * Returns 0 when the command ran to its end, whatever its status;
 * SYNOD_ETIMEDOUT (it was killed), SYNOD_ETOOBIG (out too small; the
 * status is still set), SYNOD_EIO.
 */
SYNOD_WUR int fixture_relay_cmdv(fixture_relay_t *r, char *out, size_t outlen,
                                 int *status, const char *const *args);
#define fixture_relay_cmd(r, out, outlen, status, ...)                         \
  fixture_relay_cmdv((r), (out), (outlen), (status),                           \
                     (const char *const[]){__VA_ARGS__, NULL})

/* `synod-relay migrate`; exit status 0 required. */
SYNOD_WUR int fixture_relay_migrate(fixture_relay_t *r);

/* `synod-relay user add NAME`; exit status 0 required; the printed
 * enrolment code into code. */
SYNOD_WUR int fixture_relay_user_add(fixture_relay_t *r, const char *name,
                                     char code[static FIXTURE_CODE_MAX]);

/*
 * Starts `synod-relay run -c CONF` with its output appended to the log, and
 * waits until it accepts a TCP connection on its port (FIXTURE_READY_MS).
 * If it exits or the deadline passes first, it is killed, its log dumped,
 * and SYNOD_ECLOSED / SYNOD_ETIMEDOUT returned. SYNOD_EEXIST when it is
 * already running.
 */
SYNOD_WUR int fixture_relay_start(fixture_relay_t *r);

/* SIGTERM (and SIGCONT, in case it is paused), then waits FIXTURE_STOP_MS
 * for it to exit. 0 only for exit status 0; SYNOD_EINTERNAL with the
 * status on stderr otherwise; SYNOD_ETIMEDOUT (then SIGKILLed). Not
 * running: SYNOD_ENOENT. */
SYNOD_WUR int fixture_relay_stop(fixture_relay_t *r);

/* SIGKILL, and reaps it. Not running: SYNOD_ENOENT. */
SYNOD_WUR int fixture_relay_kill(fixture_relay_t *r);

/* SIGSTOP / SIGCONT: the process freezes with its sockets open, as a hung
 * relay would. */
SYNOD_WUR int fixture_relay_pause(fixture_relay_t *r);
SYNOD_WUR int fixture_relay_resume(fixture_relay_t *r);

/* fixture_relay_stop() then fixture_relay_start(). */
SYNOD_WUR int fixture_relay_restart(fixture_relay_t *r);

/* True while its `run` process has not exited (it is reaped when it has;
 * an unexpected exit marks the fixture failed). */
bool fixture_relay_running(fixture_relay_t *r);

/* The synod-relay binary the fixture runs. */
const char *fixture_relay_bin(void);

#endif
