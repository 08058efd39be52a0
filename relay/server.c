/*
 * The relay process: start-up, listener, signals, the expiry sweep and
 * shutdown. See server.h.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "directory.h"
#include "schema.h"
#include "store.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"
#include "synod/log.h"
#include "synod/sig.h"
#include "synod/userid.h"
#include "synod/wire.h"

/* Connections over max_connections still taken through TLS and the
 * session handshake, to be refused there with a typed ELIMIT; past this
 * many more, a new TCP connection is closed without a word (a flood must
 * not cost a TLS handshake each). */
#define HANDSHAKE_SLACK 64

/* How often expired messages are looked for, and how many per round. */
#define SWEEP_MS    1000
#define SWEEP_BATCH 256

uint64_t server_now(void) {
  return (uint64_t)time(NULL);
}

uint64_t server_ms(server_t *srv) {
  return uv_now(srv->loop);
}

link_t *server_link(server_t *srv, const char *name) {
  for (size_t i = 0; i < srv->nlinks; i++)
    if (strcmp(srv->links[i].peer->name, name) == 0)
      return &srv->links[i];
  return NULL;
}

void server_conn_options(server_t *srv, synod_conn_options_t *opt,
                         int tls_server) {
  relay_config_t *cfg = srv->cfg;
  memset(opt, 0, sizeof *opt);
  opt->tls = tls_server ? srv->tls_server : srv->tls_client;
  opt->handshake.role = SYNOD__V1__ROLE__ROLE_RELAY;
  opt->handshake.name = cfg->name;
  opt->handshake.software = "synod-relay/" SYNOD_VERSION;
  opt->handshake.secret_key = srv->sk;
  opt->max_frame = (uint32_t)cfg->max_frame_bytes;
  opt->handshake_timeout_ms = cfg->handshake_timeout_ms;
  opt->idle_timeout_ms = cfg->idle_timeout_ms;
  opt->frame_timeout_ms = cfg->frame_timeout_ms;
  /* Write queue: stop reading from the peer at 1 MiB unsent (the
   * default), cut it at 1 MiB plus two frames (the default cap). */
  opt->budget = srv->budget;
}

int server_failure_notice(server_t *srv, const uint8_t id[16],
                          const char *recipient, int code, uint8_t **out,
                          size_t *outlen) {
  Synod__V1__DeliveryFailureBody b;
  synod__v1__delivery_failure_body__init(&b);
  b.message_id.data = synod_wire_lend(id);
  b.message_id.len = 16;
  b.recipient = synod_wire_lend(recipient);
  b.code = (uint32_t)(code < 0 ? -code : code);
  b.relay_name = srv->cfg->name;
  b.time = server_now();
  size_t blen = synod__v1__delivery_failure_body__get_packed_size(&b);
  uint8_t *body = malloc(blen + 1);
  if (!body)
    return SYNOD_ENOMEM;
  synod__v1__delivery_failure_body__pack(&b, body);
  uint8_t sig[64];
  int rc = synod_sig_sign_by(sig, SYNOD_SIG_DELIVERY_FAILURE, body, blen,
                             srv->signer);
  if (rc == 0) {
    Synod__V1__DeliveryFailure df = SYNOD__V1__DELIVERY_FAILURE__INIT;
    df.body.data = body;
    df.body.len = blen;
    df.signature.data = sig;
    df.signature.len = 64;
    *outlen = synod__v1__delivery_failure__get_packed_size(&df);
    *out = malloc(*outlen);
    if (*out)
      synod__v1__delivery_failure__pack(&df, *out);
    else
      rc = SYNOD_ENOMEM;
  }
  free(body);
  return rc;
}

/* --- expiry ---------------------------------------------------------------------- */

typedef struct expire_ctx {
  server_t *srv;
  char *sender;
  char *sender_relay;
} expire_ctx_t;

static void expire_done(void *data, int status, uint64_t count) {
  expire_ctx_t *e = data;
  server_t *srv = e->srv;
  if (status == 0 && count) {
    if (strcmp(e->sender_relay, srv->cfg->name) == 0) {
      session_kick_user(srv, e->sender);
    } else {
      link_t *l = server_link(srv, e->sender_relay);
      if (l)
        link_kick(l);
    }
  }
  free(e->sender);
  free(e->sender_relay);
  free(e);
}

static void sweep_done(void *data, int status, const store_expired_t *rows,
                       size_t n) {
  server_t *srv = data;
  srv->sweeping = 0;
  if (status != 0) {
    if (status != SYNOD_EAGAIN)
      synod_log(SYNOD_LOG_WARN, "expiry sweep failed", "error=%s",
                synod_err_name(status));
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const store_expired_t *r = &rows[i];
    char recipient[SYNOD_USERID_MAX + 1];
    if (r->in_outbox)
      snprintf(recipient, sizeof recipient, "%s", r->recipient);
    else
      snprintf(recipient, sizeof recipient, "%s@%s", r->recipient,
               srv->cfg->name);
    const char *relay = NULL;
    size_t llen = 0;
    if (synod_userid_parse(r->sender, &llen, &relay) != 0)
      continue;
    const char *sender_relay = r->in_outbox ? srv->cfg->name : r->sender_relay;
    int local = strcmp(relay, srv->cfg->name) == 0;
    /* A failure for a sender of a relay we have no link to cannot be
     * delivered; the message is dropped all the same. */
    char sender_local[SYNOD_USERID_LOCAL_MAX + 1];
    memcpy(sender_local, r->sender, llen);
    sender_local[llen] = '\0';
    uint8_t *notice = NULL;
    size_t len = 0;
    expire_ctx_t *e = calloc(1, sizeof *e);
    if (!e || server_failure_notice(srv, r->message_id, recipient,
                                    SYNOD_EEXPIRED, &notice, &len) != 0) {
      free(e);
      continue;
    }
    e->srv = srv;
    e->sender = strdup(r->sender);
    e->sender_relay = strdup(local ? srv->cfg->name : sender_relay);
    if (!e->sender || !e->sender_relay) {
      free(e->sender);
      free(e->sender_relay);
      free(e);
      free(notice);
      continue;
    }
    synod_log(SYNOD_LOG_INFO, "message expired", "recipient=%s sender=%s",
              recipient, r->sender);
    store_expire_one(srv->db, r, local ? sender_local : NULL, notice, len,
                     expire_done, e);
    free(notice);
  }
}

static void sweep_cb(uv_timer_t *t) {
  server_t *srv = t->data;
  if (srv->sweeping || srv->stopping || !db_is_up(srv->db))
    return;
  srv->sweeping = 1;
  relay_config_t *cfg = srv->cfg;
  store_sweep(srv->db, server_now(),
              cfg->delivered == CONFIG_RETENTION_KEEP ? cfg->keep_for_ms : 0,
              SWEEP_BATCH, sweep_done, srv);
}

/* --- listener, database, signals ------------------------------------------------------ */

static void free_handle(uv_handle_t *h) {
  free(h);
}

void server_drop_connection(server_t *srv, uv_stream_t *listener,
                            const char *why) {
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t || uv_tcp_init(srv->loop, t) != 0) {
    free(t);
    return; /* it stays in the backlog; the kernel drops it in time */
  }
  (void)uv_accept(listener, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, free_handle);
  /* One line per thousand: a flood must not flood the log too. */
  if (srv->conns_dropped++ % 1000 == 0)
    synod_log(SYNOD_LOG_WARN, "connection dropped at accept",
              "reason=%s dropped=%" PRIu64, why, srv->conns_dropped);
}

/* An operator command changed an account: the sessions it already has were
 * authorised under the old state (a key now unbound, an account now
 * disabled), so they end; an account still allowed simply reconnects. */
static void on_account_changed(db_t *db, const char *channel,
                               const char *payload) {
  (void)channel;
  server_t *srv = db_data(db);
  char id[SYNOD_USERID_MAX + 2];
  if (!payload || !*payload ||
      snprintf(id, sizeof id, "%s@%s", payload, srv->cfg->name) >=
          (int)sizeof id)
    return;
  synod_log(SYNOD_LOG_INFO, "account changed by the operator", "user=%s", id);
  session_close_user(srv, id,
                     "the relay operator disabled or re-enrolled this account");
}

static void on_connection(uv_stream_t *listener, int status) {
  server_t *srv = listener->data;
  if (status < 0) {
    synod_log(SYNOD_LOG_WARN, "accept failed", "error=%s", uv_strerror(status));
    return;
  }
  if (srv->nsessions >= (size_t)srv->cfg->max_connections + HANDSHAKE_SLACK) {
    server_drop_connection(srv, listener, "too many connections");
    return;
  }
  if (synod_conn_budget_full(srv->budget)) {
    server_drop_connection(srv, listener, "memory budget exhausted");
    return;
  }
  session_accept(srv, listener);
}

static void on_db_state(db_t *db, int status) {
  server_t *srv = db_data(db);
  if (status == 0) {
    synod_log(SYNOD_LOG_INFO, "database up", NULL);
    /* Anything may have arrived while we could not look: re-read. */
    for (session_t *s = srv->sessions; s; s = s->next)
      if (s->account_id)
        session_kick_account(srv, s->account_id);
    for (size_t i = 0; i < srv->nlinks; i++)
      link_kick(&srv->links[i]);
  } else {
    synod_log(SYNOD_LOG_ERROR,
              "database down: refusing new messages until it is back", NULL);
  }
}

static void stop(server_t *srv) {
  if (srv->stopping)
    return;
  srv->stopping = 1;
  synod_log(SYNOD_LOG_INFO, "shutting down", NULL);
  uv_close((uv_handle_t *)&srv->listener, NULL);
  uv_timer_stop(&srv->sweep);
  uv_close((uv_handle_t *)&srv->sweep, NULL);
  uv_close((uv_handle_t *)&srv->sigterm, NULL);
  uv_close((uv_handle_t *)&srv->sigint, NULL);
  session_close_all(srv);
  for (size_t i = 0; i < srv->nlinks; i++)
    link_stop(&srv->links[i]);
  /* The db finishes what is queued (commits in flight complete and their
   * callbacks run) and closes after; the loop ends when every handle is
   * closed. */
  db_close(srv->db, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  stop(h->data);
}

static int check_schema(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  int rc = 0;
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "synod-relay: cannot connect to the database: %s",
            PQerrorMessage(c));
    rc = SYNOD_EDB;
  } else {
    char err[512] = "";
    rc = schema_check(c, err, sizeof err);
    if (rc != 0)
      fprintf(stderr, "synod-relay: %s\n", err);
  }
  PQfinish(c);
  return rc;
}

static int listen_on(server_t *srv) {
  relay_config_t *cfg = srv->cfg;
  int rc = uv_tcp_init(srv->loop, &srv->listener);
  if (rc == 0)
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&cfg->listen_addr,
                     0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
  if (rc != 0) {
    fprintf(stderr, "synod-relay: cannot listen on %s: %s\n", cfg->listen,
            uv_strerror(rc));
    return SYNOD_EIO;
  }
  srv->listener.data = srv;
  return 0;
}

int server_run(relay_config_t *cfg) {
  server_t *srv = calloc(1, sizeof *srv);
  uv_loop_t loop;
  char reason[256] = "";
  int rc, exit_code = 1, loop_ok = 0;
  if (!srv)
    return 1;
  srv->cfg = cfg;
  synod_log_set_level(cfg->log_level);
  signal(SIGPIPE, SIG_IGN);
  /* SIGTERM and SIGINT wait until their handlers are in place: the port
   * accepts connections (and a supervisor may already stop us) before
   * the loop has installed them. Unblocked at "relay ready", or at exit. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, NULL);

  rc = synod_keyfile_read_secret(srv->sk, SYNOD_KEY_ED25519, cfg->key_file);
  if (rc != 0) {
    fprintf(stderr, "synod-relay: %s: %s\n", cfg->key_file, synod_strerror(rc));
    goto out;
  }
  if (synod_ed25519_public(srv->pk, srv->sk) != 0 ||
      synod_ed25519_signer_new(&srv->signer, srv->sk) != 0)
    goto out;
  if (check_schema(cfg->conninfo) != 0)
    goto out;
  if (synod_tls_ctx_new_server(&srv->tls_server, cfg->tls_cert, cfg->tls_key,
                               reason) != 0 ||
      synod_tls_ctx_new_client(&srv->tls_client, reason) != 0) {
    fprintf(stderr, "synod-relay: TLS: %s\n", reason);
    goto out;
  }
  if (synod_conn_budget_new(&srv->budget, cfg->max_buffered_bytes) != 0)
    goto out;
  if (uv_loop_init(&loop) != 0)
    goto out;
  loop_ok = 1;
  srv->loop = &loop;
  if (listen_on(srv) != 0) {
    uv_close((uv_handle_t *)&srv->listener, NULL);
    goto run_out;
  }
  db_options_t dbo = {
      .max_batch_ops = cfg->max_batch, .on_state = on_db_state, .data = srv};
  rc = db_open(srv->loop, cfg->conninfo, &dbo, &srv->db);
  if (rc != 0) {
    fprintf(stderr, "synod-relay: database: %s\n", synod_strerror(rc));
    uv_close((uv_handle_t *)&srv->listener, NULL);
    goto run_out;
  }
  rc = db_listen(srv->db, SERVER_ACCOUNTS_CHANNEL, on_account_changed);
  if (rc != 0) {
    fprintf(stderr, "synod-relay: database: %s\n", synod_strerror(rc));
    srv->stopping = 1;
    goto run_out;
  }
  srv->links = calloc(cfg->npeers + 1, sizeof *srv->links);
  if (!srv->links) {
    srv->stopping = 1;
    goto run_out;
  }
  for (size_t i = 0; i < cfg->npeers; i++)
    if (link_start(srv, &srv->links[srv->nlinks], &cfg->peers[i]) == 0)
      srv->nlinks++;
  uv_signal_init(srv->loop, &srv->sigterm);
  uv_signal_init(srv->loop, &srv->sigint);
  srv->sigterm.data = srv->sigint.data = srv;
  uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
  uv_signal_start(&srv->sigint, on_signal, SIGINT);
  sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
  uv_timer_init(srv->loop, &srv->sweep);
  srv->sweep.data = srv;
  uv_timer_start(&srv->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);

  synod_log(SYNOD_LOG_INFO, "relay ready", "name=%s listen=%s peers=%zu",
            cfg->name, cfg->listen, cfg->npeers);
  uv_run(srv->loop, UV_RUN_DEFAULT);
  exit_code = 0;

run_out:
  if (exit_code != 0) {
    if (srv->db)
      db_close(srv->db, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
  }
out:
  sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
  dir_free(srv);
  for (size_t i = 0; i < srv->nlinks; i++)
    link_free(&srv->links[i]);
  free(srv->links);
  if (loop_ok && uv_loop_close(&loop) != 0) {
    synod_log(SYNOD_LOG_ERROR, "handles left open at exit", NULL);
    exit_code = 1;
  }
  if (srv->budget)
    synod_log(SYNOD_LOG_INFO, "connection buffers",
              "peak=%zu limit=%zu shed=%" PRIu64 " dropped_at_accept=%" PRIu64,
              synod_conn_budget_peak(srv->budget),
              synod_conn_budget_limit(srv->budget),
              synod_conn_budget_shed(srv->budget), srv->conns_dropped);
  synod_conn_budget_free(srv->budget);
  synod_tls_ctx_free(srv->tls_server);
  synod_tls_ctx_free(srv->tls_client);
  synod_ed25519_signer_free(srv->signer);
  synod_wipe(srv->sk, sizeof srv->sk);
  free(srv);
  synod_log(SYNOD_LOG_INFO, "stopped", "status=%d", exit_code);
  return exit_code;
}
