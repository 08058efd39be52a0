/*
 * Federation links: our outgoing connection to each peer relay, which
 * drains the peer's outbox with a window of unacknowledged envelopes and
 * carries relay-to-relay notices (delivery failures, purges). See server.h.
 *
 * Each relay dials every peer; a connection carries traffic from the
 * dialler to the acceptor only, so the two directions of a pair never wait
 * on each other. A lost connection is retried with exponential backoff and
 * full jitter; what was in flight is re-sent from the outbox, and the
 * receiver's primary key drops the duplicates.
 */
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "server.h"
#include "store.h"
#include "synod/crypto.h"
#include "synod/log.h"
#include "synod/wire.h"

/* Envelopes per Forward frame. */
#define FORWARD_BATCH 64
/* Relay-to-relay notices in flight at once. */
#define NOTICE_WINDOW 16
/* Keep-alive: the acceptor's idle timeout counts received bytes only. */
#define LINK_PING_MS 30000
/* Pings between two pushes of our directory heads (5 minutes). */
#define LINK_HEADS_EVERY 10

typedef struct notice_req {
  uint64_t request_id;
  int64_t notice_id;
} notice_req_t;

typedef struct link_state {
  link_t *link;
  /* Outbox position (seq) of the newest envelope in flight: the next read
   * starts after it instead of reading the whole window in flight again
   * on every acknowledgement. Back to 0 whenever nothing is in flight
   * (after a reconnection, and as a rescan for a row that another relay
   * process on the same database committed out of seq order). */
  int64_t cursor;
  notice_req_t notices[NOTICE_WINDOW];
  uv_timer_t ping;
  unsigned pings;
  int handles_open;
} link_state_t;

static void link_connect(link_t *l);
static void link_finish(link_t *l);

static link_state_t *state(link_t *l) {
  return (link_state_t *)l->state;
}

/* --- connection ------------------------------------------------------------------ */

static void retry_cb(uv_timer_t *t) {
  link_connect(t->data);
}

static void schedule_retry(link_t *l) {
  relay_config_t *cfg = l->srv->cfg;
  uint8_t r[4];
  double draw = 0.5;
  if (synod_random(r, sizeof r) == 0)
    draw = (double)((uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 |
                    (uint32_t)r[2] << 8 | r[3]) /
           4294967296.0;
  uint64_t ms = policy_backoff_ms(l->attempt++, cfg->retry_min_ms,
                                  cfg->retry_max_ms, draw);
  uv_timer_start(&l->timer, retry_cb, ms, 0);
}

static void on_close(synod_conn_t *c, int status) {
  link_t *l = synod_conn_data(c);
  if (l->closing)
    synod_log(SYNOD_LOG_INFO, "link closed", "peer=%s", l->peer->name);
  else if (l->ready || status != SYNOD_EIO)
    synod_log(l->ready ? SYNOD_LOG_WARN : SYNOD_LOG_INFO, "link down",
              "peer=%s error=%s reason=%s", l->peer->name,
              synod_err_name(status), synod_conn_reason(c));
  l->conn = NULL;
  l->ready = 0;
  uv_timer_stop(&state(l)->ping);
  /* Whatever was in flight is sent again on the next connection. */
  idset_clear(&l->inflight);
  memset(state(l)->notices, 0, sizeof state(l)->notices);
  l->notices_inflight = 0;
  if (l->closing) {
    if (!l->pending)
      link_finish(l);
  } else {
    schedule_retry(l);
  }
}

static void ping_cb(uv_timer_t *t) {
  link_t *l = t->data;
  if (!l->ready)
    return;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping p = SYNOD__V1__PING__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &p;
  (void)synod_conn_send(l->conn, &f);
  /* Anti-entropy: our directory heads, now and then, besides the
   * exchange when a connection comes up. */
  if (++state(l)->pings % LINK_HEADS_EVERY == 0)
    dir_link_summary(l);
}

static void on_ready(synod_conn_t *c, int status) {
  (void)status;
  link_t *l = synod_conn_data(c);
  l->ready = 1;
  /* attempt is reset by the first acknowledgement, not here: a link that
   * connects and then fails on every Forward must still back off. */
  l->window = l->srv->cfg->window;
  synod_log(SYNOD_LOG_INFO, "link up", "peer=%s", l->peer->name);
  uv_timer_start(&state(l)->ping, ping_cb, LINK_PING_MS, LINK_PING_MS);
  link_kick(l);
}

static void on_writable(synod_conn_t *c, int status) {
  (void)status;
  link_kick(synod_conn_data(c));
}

/* --- acknowledgements ------------------------------------------------------------ */

typedef struct done_ctx {
  link_t *l;
  size_t n;
  uint8_t ids[];
} done_ctx_t;

static void done_cb(void *data, int status, uint64_t count) {
  (void)count;
  done_ctx_t *d = data;
  link_t *l = d->l;
  /* Only now, with the outbox updated, may a fetch see these ids again
   * without them being in flight. On failure they stay in flight until the
   * connection is replaced, and are then re-sent (and deduplicated). */
  if (status == 0) {
    for (size_t i = 0; i < d->n; i++)
      (void)idset_del(&l->inflight, d->ids + 16 * i);
  } else {
    synod_log(SYNOD_LOG_WARN, "outbox update failed", "peer=%s error=%s",
              l->peer->name, synod_err_name(status));
    if (l->conn)
      synod_conn_close(l->conn, SYNOD_EAGAIN);
  }
  l->pending--;
  free(d);
  link_kick(l);
}

typedef struct refused_ctx {
  link_t *l;
  uint8_t id[16];
} refused_ctx_t;

static void refused_cb(void *data, int status, uint64_t count) {
  refused_ctx_t *r = data;
  link_t *l = r->l;
  if (status == 0) {
    (void)idset_del(&l->inflight, r->id);
    if (count)
      session_kick_account(l->srv, (int64_t)count);
  }
  l->pending--;
  free(r);
  link_kick(l);
}

static void notice_done_cb(void *data, int status, uint64_t count) {
  (void)status;
  (void)count;
  link_t *l = data;
  l->pending--;
  link_kick(l);
}

/* A relay-to-relay notice was answered: forget it and delete it. */
static int notice_answered(link_t *l, uint64_t request_id) {
  for (size_t i = 0; i < NOTICE_WINDOW; i++) {
    notice_req_t *q = &state(l)->notices[i];
    if (q->request_id && q->request_id == request_id) {
      l->pending++;
      store_peer_notice_done(l->srv->db, q->notice_id, notice_done_cb, l);
      q->request_id = 0;
      l->notices_inflight--;
      return 1;
    }
  }
  return 0;
}

static void handle_ack(link_t *l, uint64_t rid, Synod__V1__ForwardAck *a) {
  l->attempt = 0;
  if (notice_answered(l, rid))
    return;
  if (a->n_accepted) {
    done_ctx_t *d = malloc(sizeof *d + 16 * a->n_accepted);
    if (!d) {
      synod_conn_close(l->conn, SYNOD_ENOMEM);
      return;
    }
    d->l = l;
    d->n = 0;
    for (size_t i = 0; i < a->n_accepted; i++)
      if (a->accepted[i].len == 16)
        memcpy(d->ids + 16 * d->n++, a->accepted[i].data, 16);
    l->pending++;
    store_outbox_done(l->srv->db, d->ids, d->n, done_cb, d);
  }
  for (size_t i = 0; i < a->n_rejected; i++) {
    Synod__V1__ForwardReject *r = a->rejected[i];
    if (r->message_id.len != 16 || !idset_has(&l->inflight, r->message_id.data))
      continue;
    /* The peer gave up for good: this relay signs the failure for its
     * sender, naming the peer's reason. */
    refused_ctx_t *rc = calloc(1, sizeof *rc);
    uint8_t *notice = NULL;
    size_t len = 0;
    int code = synod_err_from_wire(r->code);
    if (!rc || server_failure_notice(l->srv, r->message_id.data, "", code,
                                     &notice, &len) != 0) {
      free(rc);
      continue;
    }
    rc->l = l;
    memcpy(rc->id, r->message_id.data, 16);
    synod_log(SYNOD_LOG_INFO, "peer refused a message", "peer=%s code=%s",
              l->peer->name, synod_err_name(code));
    l->pending++;
    store_outbox_refused(l->srv->db, rc->id, NULL, notice, len, refused_cb, rc);
    free(notice);
  }
  if (a->window >= 1 && a->window <= 65536)
    l->window = a->window;
}

static void on_frame(synod_conn_t *c, Synod__V1__Frame *f) {
  link_t *l = synod_conn_data(c);
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_FORWARD_ACK:
    handle_ack(l, f->request_id, f->forward_ack);
    break;
  case SYNOD__V1__FRAME__BODY_PURGE_RESULT:
    (void)notice_answered(l, f->request_id);
    break;
  case SYNOD__V1__FRAME__BODY_PONG:
    break;
  case SYNOD__V1__FRAME__BODY_ERROR:
    /* A request failed at the peer (its database is down, say). Start
     * over on a new connection after a backoff: everything unanswered is
     * re-sent then, and duplicates are dropped by the peer. */
    synod_log(SYNOD_LOG_WARN, "peer refused a request",
              "peer=%s code=%s reason=%s", l->peer->name,
              synod_err_name(synod_err_from_wire(f->error->code)),
              f->error->reason ? f->error->reason : "");
    synod_conn_close(c, synod_err_from_wire(f->error->code));
    break;
  default:
    /* Heads from the peer and its answers to our fetches: directory.c. */
    if (!dir_link_frame(l, f))
      synod_conn_send_error(c, f->request_id, SYNOD_EDENIED,
                            "this connection carries forwards only");
    break;
  }
  synod_wire_free(f);
}

/* --- sending ---------------------------------------------------------------------- */

static int send_forward(link_t *l, Synod__V1__Envelope **envs, size_t n,
                        Synod__V1__DeliveryFailure *failure) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Forward fw = SYNOD__V1__FORWARD__INIT;
  f.request_id = ++l->next_request;
  f.body_case = SYNOD__V1__FRAME__BODY_FORWARD;
  f.forward = &fw;
  fw.envelopes = envs;
  fw.n_envelopes = n;
  if (failure) {
    fw.failures = &failure;
    fw.n_failures = 1;
  }
  return synod_conn_send(l->conn, &f);
}

static int send_notice(link_t *l, int64_t notice_id, const char *kind,
                       const uint8_t *body, size_t len) {
  if (strcmp(kind, "gossip") == 0) {
    /* A push, answered by nothing: done once handed to the connection. A
     * push lost with the connection is recovered by the heads exchange of
     * the next one (directory.h). */
    int rc = dir_link_push(l, body, len);
    if (rc == 0 || rc == SYNOD_EPARSE) {
      l->pending++;
      store_peer_notice_done(l->srv->db, notice_id, notice_done_cb, l);
    }
    return rc == SYNOD_EPARSE ? 0 : rc;
  }
  size_t slot = NOTICE_WINDOW;
  for (size_t i = 0; i < NOTICE_WINDOW; i++) {
    if (state(l)->notices[i].notice_id == notice_id &&
        state(l)->notices[i].request_id)
      return 0; /* already in flight */
    if (!state(l)->notices[i].request_id && slot == NOTICE_WINDOW)
      slot = i;
  }
  if (slot == NOTICE_WINDOW)
    return 0;
  int purge = strcmp(kind, "purge") == 0;
  ProtobufCMessage *m;
  if (synod_wire_unpack_message(purge
                                    ? &synod__v1__purge__descriptor
                                    : &synod__v1__delivery_failure__descriptor,
                                body, len, &m) != 0) {
    /* Written by this relay; unreadable means a bug. Drop it. */
    synod_log(SYNOD_LOG_ERROR, "unreadable queued notice", "peer=%s id=%lld",
              l->peer->name, (long long)notice_id);
    l->pending++;
    store_peer_notice_done(l->srv->db, notice_id, notice_done_cb, l);
    return 0;
  }
  int rc;
  if (purge) {
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__PeerPurge pp = SYNOD__V1__PEER_PURGE__INIT;
    f.request_id = ++l->next_request;
    f.body_case = SYNOD__V1__FRAME__BODY_PEER_PURGE;
    f.peer_purge = &pp;
    pp.purge = (Synod__V1__Purge *)m;
    rc = synod_conn_send(l->conn, &f);
  } else {
    rc = send_forward(l, NULL, 0, (Synod__V1__DeliveryFailure *)m);
  }
  synod_wire_free_message(m);
  if (rc == 0) {
    state(l)->notices[slot].request_id = l->next_request;
    state(l)->notices[slot].notice_id = notice_id;
    l->notices_inflight++;
  }
  return rc;
}

/* Sends batch[0..*nb) as one Forward and frees it; 1 when the connection
 * cannot take more now. */
static int flush(link_t *l, Synod__V1__Envelope **batch, uint8_t (*ids)[16],
                 size_t *nb) {
  int rc = send_forward(l, batch, *nb, NULL);
  if (rc == 0)
    for (size_t k = 0; k < *nb; k++)
      (void)idset_add(&l->inflight, ids[k]);
  else if (rc != SYNOD_EAGAIN)
    synod_conn_close(l->conn, rc);
  for (size_t k = 0; k < *nb; k++)
    synod_wire_free_message(&batch[k]->base);
  *nb = 0;
  return rc != 0;
}

static void fetch_done(void *data, int status, const store_rows_t *envs,
                       const store_rows_t *notices) {
  link_t *l = data;
  l->pending--;
  l->fetching = 0;
  if (!l->ready) {
    link_kick(l); /* possibly the last thing a closing link waited for */
    return;
  }
  if (status != 0) {
    /* EAGAIN: the database is not up (yet); its coming back kicks. */
    synod_log(status == SYNOD_EAGAIN ? SYNOD_LOG_DEBUG : SYNOD_LOG_WARN,
              "outbox read failed", "peer=%s error=%s", l->peer->name,
              synod_err_name(status));
    /* A kick that came while this read was out (the database coming
     * back up, say) found it busy and left only fetch_again: honour it,
     * or nothing reads the outbox until some unrelated event. */
    if (l->fetch_again) {
      l->fetch_again = 0;
      link_kick(l);
    }
    return;
  }
  Synod__V1__Envelope *batch[FORWARD_BATCH];
  uint8_t ids[FORWARD_BATCH][16];
  size_t nb = 0, bytes = 0, n = store_rows_count(envs);
  /* A Forward must fit the frame limit, which peers are expected to share
   * (deploy/README.md): cut batches by size as well as count. */
  size_t limit = l->srv->cfg->max_frame_bytes - 64;
  int blocked = 0;
  for (size_t i = 0; i < n && !blocked; i++) {
    size_t idlen, len;
    const uint8_t *id = store_rows_col(envs, i, 0, &idlen);
    const uint8_t *env = store_rows_col(envs, i, 1, &len);
    if (!id || idlen != 16 || !env || idset_has(&l->inflight, id))
      continue;
    if (l->inflight.n + nb >= l->window)
      break;
    if (nb && bytes + len + 8 > limit) {
      blocked = flush(l, batch, ids, &nb);
      bytes = 0;
      if (blocked)
        break;
    }
    bytes += len + 8;
    ProtobufCMessage *m;
    if (synod_wire_unpack_message(&synod__v1__envelope__descriptor, env, len,
                                  &m) != 0)
      continue;
    batch[nb] = (Synod__V1__Envelope *)m;
    memcpy(ids[nb], id, 16);
    if (++nb == FORWARD_BATCH) {
      blocked = flush(l, batch, ids, &nb);
      bytes = 0;
    }
  }
  if (nb && !blocked)
    blocked = flush(l, batch, ids, &nb);
  for (size_t k = 0; k < nb; k++)
    synod_wire_free_message(&batch[k]->base);
  for (size_t i = 0; i < n; i++) {
    size_t idlen;
    const uint8_t *id = store_rows_col(envs, i, 0, &idlen);
    int64_t seq = store_rows_int(envs, i, 2);
    if (id && idlen == 16 && seq > state(l)->cursor &&
        idset_has(&l->inflight, id))
      state(l)->cursor = seq;
  }
  for (size_t i = 0; i < store_rows_count(notices) && !blocked && l->conn;
       i++) {
    size_t klen, blen;
    const uint8_t *kind = store_rows_col(notices, i, 1, &klen);
    const uint8_t *body = store_rows_col(notices, i, 2, &blen);
    char k[32] = "";
    if (!kind || !body || klen >= sizeof k)
      continue;
    memcpy(k, kind, klen);
    if (send_notice(l, store_rows_int(notices, i, 0), k, body, blen) != 0)
      blocked = 1;
  }
  if (l->fetch_again && !blocked) {
    l->fetch_again = 0;
    link_kick(l);
  }
}

void link_kick(link_t *l) {
  if (l->closing) {
    if (!l->pending && !l->conn)
      link_finish(l);
    return;
  }
  if (!l->ready)
    return;
  if (l->fetching) {
    l->fetch_again = 1;
    return;
  }
  if (l->inflight.n >= l->window && l->notices_inflight >= NOTICE_WINDOW)
    return; /* acknowledgements kick again */
  if (l->inflight.n == 0)
    state(l)->cursor = 0;
  l->fetching = 1;
  l->pending++;
  store_fetch_outbox(
      l->srv->db, l->peer->name, state(l)->cursor,
      (unsigned)(l->inflight.n < l->window ? l->window - l->inflight.n : 0),
      NOTICE_WINDOW, fetch_done, l);
}

static void link_connect(link_t *l) {
  server_t *srv = l->srv;
  if (l->closing || l->conn)
    return;
  synod_conn_options_t opt;
  server_conn_options(srv, &opt, 0);
  opt.handshake.expected_peer_key = l->peer->key;
  opt.cb.on_ready = on_ready;
  opt.cb.on_frame = on_frame;
  opt.cb.on_writable = on_writable;
  opt.cb.on_close = on_close;
  opt.data = l;
  int rc = synod_conn_connect(&l->conn, srv->loop, l->peer->host, l->peer->port,
                              &opt);
  if (rc != 0) {
    l->conn = NULL;
    synod_log(SYNOD_LOG_WARN, "link connect failed", "peer=%s error=%s",
              l->peer->name, synod_err_name(rc));
    schedule_retry(l);
  }
}

int link_start(server_t *srv, link_t *l, const relay_config_peer_t *peer) {
  memset(l, 0, sizeof *l);
  link_state_t *st = calloc(1, sizeof *st);
  if (!st)
    return SYNOD_ENOMEM;
  l->state = st;
  st->link = l;
  l->srv = srv;
  l->peer = peer;
  l->window = srv->cfg->window;
  idset_init(&l->inflight);
  uv_timer_init(srv->loop, &l->timer);
  uv_timer_init(srv->loop, &st->ping);
  l->timer.data = l;
  st->ping.data = l;
  st->handles_open = 2;
  link_connect(l);
  return 0;
}

static void handle_closed(uv_handle_t *h) {
  link_t *l = h->data;
  if (--state(l)->handles_open == 0)
    l->closed = 1;
}

/* Every connection, op and handle of a closing link is done: close the
 * timers; the link is closed when both close callbacks ran. */
static void link_finish(link_t *l) {
  if (l->finishing)
    return;
  l->finishing = 1;
  uv_close((uv_handle_t *)&l->timer, handle_closed);
  uv_close((uv_handle_t *)&state(l)->ping, handle_closed);
}

void link_stop(link_t *l) {
  l->closing = 1;
  uv_timer_stop(&l->timer);
  uv_timer_stop(&state(l)->ping);
  if (l->conn)
    synod_conn_close(l->conn, 0);
  else if (!l->pending)
    link_finish(l);
}

void link_free(link_t *l) {
  idset_free(&l->inflight);
  free(l->state);
  l->state = NULL;
}
