/*
 * server: one synod-relay process serving on one libuv loop.
 *
 *   server.c   start-up, listener, authentication decisions, signals,
 *              the expiry sweep, shutdown
 *   session.c  accepted connections: clients (submit, delivery, purge) and
 *              peer relays forwarding to us
 *   link.c     our outgoing federation link to each peer, draining the
 *              outbox with a window of unacknowledged envelopes
 *
 * Durability rule (DESIGN.md section 4): nothing is acknowledged to a
 * client or a peer before the db op holding it reported its COMMIT.
 */
#ifndef SYNOD_RELAY_SERVER_H
#define SYNOD_RELAY_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "db.h"
#include "idset.h"
#include "policy.h"
#include "sessproto.h"
#include "synod/conn.h"
#include "synod/tls.h"

typedef struct server server_t;
typedef struct session session_t;
typedef struct link link_t;

/* An account's token bucket, shared by the account's sessions. */
typedef struct session_rate {
  policy_bucket_t bucket;
  unsigned refs;
} session_rate_t;

struct session {
  server_t *srv;
  synod_conn_t *conn;     /* NULL once closed */
  sessproto_t sp;         /* phase, role and request rules (sessproto.h) */
  session_t *prev, *next; /* server's list of sessions */
  session_t *acct_next;   /* chain of the account's sessions */
  int role;               /* SYNOD__V1__ROLE__ROLE_CLIENT / _RELAY, 0 */
  int64_t account_id;     /* clients of this relay */
  /* Copied from sp once authenticated; user points at sp.user. */
  const char *user; /* client: full user id */
  uint8_t key[32];  /* client: the identity key it authenticated with */
  const relay_config_peer_t *peer; /* peer relays */
  idset_t inflight;                /* delivered, not yet acknowledged */
  /* Inbox position (seq) of the newest envelope in flight: the next read
   * starts after it rather than reading the window in flight again. Back
   * to 0 whenever nothing is in flight (a rescan, for a row another relay
   * process on the same database committed out of seq order). */
  int64_t cursor;
  int fetching, fetch_again;
  uint64_t fetch_request; /* a Fetch to answer with the next Deliver */
  int requests_only;      /* Hello.requests_only: nothing pushed */
  unsigned pending;       /* db ops that will call back into this session */
  session_rate_t *rate;   /* the account's submit rate, shared by its
                            * sessions on this process */
};

struct link {
  server_t *srv;
  const relay_config_peer_t *peer;
  synod_conn_t *conn;
  uv_timer_t timer; /* reconnect backoff */
  unsigned attempt;
  int ready;
  idset_t inflight; /* forwarded, not yet acknowledged or recorded */
  int fetching, fetch_again;
  unsigned pending; /* db ops that will call back into this link */
  uint64_t next_request;
  unsigned window;
  size_t notices_inflight;
  int closing, finishing, closed;
  void *state; /* link.c's own */
};

#define SERVER_ACCT_BUCKETS 1024

struct server {
  uv_loop_t *loop;
  relay_config_t *cfg;
  uint8_t sk[32];
  uint8_t pk[32];
  synod_ed25519_signer_t *signer; /* sk prepared: signs every answer */
  synod_tls_ctx_t *tls_server;
  synod_tls_ctx_t *tls_client;
  synod_conn_budget_t *budget; /* max_buffered_bytes, every connection */
  uint64_t conns_dropped;      /* TCP connections closed at accept */
  db_t *db;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint;
  uv_timer_t sweep;
  int sweeping;
  session_t *sessions;
  size_t nsessions;
  session_t *by_account[SERVER_ACCT_BUCKETS];
  link_t *links;
  size_t nlinks;
  int stopping;
  int exit_code;
  /* directory.c: chain changes wait here and run one at a time; fetches
   * our links asked and not yet answered. */
  struct dir_job *dir_queue, *dir_queue_tail;
  int dir_busy, dir_draining;
  struct dir_fetch *dir_fetches;
};

/* Runs the relay of cfg until SIGTERM/SIGINT; returns the exit status. */
int server_run(relay_config_t *cfg);

/* Connection options for this server (TLS context, keys, limits). */
void server_conn_options(server_t *srv, synod_conn_options_t *opt,
                         int tls_server);

/* Wall clock in unix seconds and a monotonic clock in milliseconds. */
uint64_t server_now(void);
uint64_t server_ms(server_t *srv);

/* The link towards peer relay name, or NULL. */
link_t *server_link(server_t *srv, const char *name);

/* Signs a delivery failure of message id for recipient with code; *out
 * is a packed DeliveryFailure (malloc'd, caller frees). */
int server_failure_notice(server_t *srv, const uint8_t id[16],
                          const char *recipient, int code, uint8_t **out,
                          size_t *outlen);

/* --- session.c --- */

/* Called from the listener: accepts one connection as a session. */
void session_accept(server_t *srv, uv_stream_t *listener);

/* Takes the pending connection off listener's backlog and closes it at
 * once, without TLS; why is logged (one line per thousand drops). */
void server_drop_connection(server_t *srv, uv_stream_t *listener,
                            const char *why);

/* New messages may wait for account: every session of it re-reads. */
void session_kick_account(server_t *srv, int64_t account_id);

/* Every session of user (a full id) re-reads (a notice is waiting). */
void session_kick_user(server_t *srv, const char *user);

/* Closes every session of user (a full id) with Error{EDENIED, why}: the
 * operator changed the account (user disable, user reenroll). */
void session_close_user(server_t *srv, const char *user, const char *why);

/* The NOTIFY channel on which `synod-relay user disable|enable|reenroll`
 * names an account (payload: its local name) once the change committed. */
#define SERVER_ACCOUNTS_CHANNEL "synod_accounts"

/* Closes every session (shutdown). */
void session_close_all(server_t *srv);

/* A db op started for s (s->pending++) completed: drops that hold and frees
 * s when it was the last thing keeping a closed session. */
void session_unhold(session_t *s);

/* --- link.c --- */

int link_start(server_t *srv, link_t *l, const relay_config_peer_t *peer);

/* The outbox for this peer may hold something new. */
void link_kick(link_t *l);

/* Starts closing: the connection, then the link's handles once no db op
 * is outstanding; l->closed is set when done. */
void link_stop(link_t *l);

/* Frees what link_start allocated; after l->closed. */
void link_free(link_t *l);

#endif
