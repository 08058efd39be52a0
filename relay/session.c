/*
 * Accepted connections: clients of this relay and peer relays forwarding
 * to it. See server.h.
 *
 * A session stays allocated while any db op it started is outstanding
 * (pending), even after its connection closed, so a late completion never
 * touches freed memory; it is freed by whichever of the two ends last.
 */
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "server.h"
#include "store.h"
#include "synod/crypto.h"
#include "synod/log.h"
#include "synod/userid.h"
#include "synod/wire.h"

/* Envelopes delivered to one session and not yet acknowledged. */
#define SESSION_WINDOW 512
/* Envelopes per Deliver frame. */
#define DELIVER_BATCH 64

static void session_kick(session_t *s);

/* --- lifetime ------------------------------------------------------------------- */

static void release(session_t *s) {
  if (s->conn || s->pending)
    return;
  idset_free(&s->inflight);
  sessproto_free(&s->sp);
  free(s);
}

void session_unhold(session_t *s) {
  s->pending--;
  release(s);
}

static session_t **acct_head(server_t *srv, int64_t id) {
  return &srv->by_account[(uint64_t)id % SERVER_ACCT_BUCKETS];
}

static void acct_unlink(session_t *s) {
  if (!s->account_id)
    return;
  if (s->rate && --s->rate->refs == 0)
    free(s->rate);
  s->rate = NULL;
  for (session_t **pp = acct_head(s->srv, s->account_id); *pp;
       pp = &(*pp)->acct_next) {
    if (*pp == s) {
      *pp = s->acct_next;
      break;
    }
  }
  s->acct_next = NULL;
}

static void on_close(synod_conn_t *c, int status) {
  session_t *s = synod_conn_data(c);
  server_t *srv = s->srv;
  if (status != 0 && status != SYNOD_ECLOSED)
    synod_log(SYNOD_LOG_INFO, "session closed", "peer=%s error=%s reason=%s",
              s->user   ? s->user
              : s->peer ? s->peer->name
                        : "-",
              synod_err_name(status), synod_conn_reason(c));
  acct_unlink(s);
  sessproto_closed(&s->sp);
  if (s->prev)
    s->prev->next = s->next;
  else
    srv->sessions = s->next;
  if (s->next)
    s->next->prev = s->prev;
  srv->nsessions--;
  s->conn = NULL;
  release(s);
}

/* Sends a request-level error; a failure to send closes the session. */
static void reply_error(session_t *s, uint64_t request_id, int code,
                        const char *reason) {
  if (s->conn && synod_conn_send_error(s->conn, request_id, code, reason) < 0)
    synod_conn_close(s->conn, SYNOD_EIO);
}

static void reply(session_t *s, Synod__V1__Frame *f) {
  if (!s->conn)
    return;
  /* Not capped: at the write cap the connection stops reading requests,
   * and one that then takes nothing is cut (lib/conn.c). */
  int rc = synod_conn_reply(s->conn, f);
  if (rc < 0)
    synod_conn_close(s->conn, rc);
}

/* --- authentication --------------------------------------------------------------- */

/* Takes what the session is from sp once it is authenticated. */
static void adopt(session_t *s) {
  s->user = s->sp.user;
  memcpy(s->key, s->sp.key, sizeof s->key);
  s->peer = s->sp.peer;
  s->role = s->sp.role == SESSPROTO_RELAY ? SYNOD__V1__ROLE__ROLE_RELAY
                                          : SYNOD__V1__ROLE__ROLE_CLIENT;
  const synod_handshake_peer_t *p = synod_conn_peer(s->conn);
  s->requests_only =
      s->role == SYNOD__V1__ROLE__ROLE_CLIENT && p && p->requests_only;
}

static void auth_done(void *data, int status, int64_t account_id) {
  session_t *s = data;
  s->pending--;
  if (!s->conn) {
    release(s);
    return;
  }
  sessproto_decision_t d;
  sessproto_auth_done(&s->sp, &d, status);
  if (d.act == SESSPROTO_ACCEPT) {
    s->account_id = account_id;
    (void)synod_conn_accept(s->conn);
    return;
  }
  synod_log(SYNOD_LOG_INFO, "client refused", "user=%s error=%s", s->user,
            synod_err_name(d.code));
  (void)synod_conn_refuse(s->conn, d.code, d.why);
}

static void on_auth(synod_conn_t *c, int status) {
  (void)status;
  session_t *s = synod_conn_data(c);
  server_t *srv = s->srv;
  const synod_handshake_peer_t *p = synod_conn_peer(c);
  sessproto_decision_t d;

  sessproto_auth(&s->sp, &d, p, srv->stopping, srv->nsessions);
  if (d.act == SESSPROTO_REFUSE) {
    if (d.code == SYNOD_EUNKNOWNPEER)
      synod_log(SYNOD_LOG_WARN, "unknown relay refused", "name=%s", p->name);
    else if (d.code == SYNOD_EBADKEY)
      synod_log(SYNOD_LOG_WARN, "relay with wrong key refused", "name=%s",
                p->name);
    (void)synod_conn_refuse(c, d.code, d.why);
    return;
  }
  adopt(s);
  if (d.act == SESSPROTO_ACCEPT) {
    (void)synod_conn_accept(c);
    return;
  }
  s->pending++;
  store_auth_client(srv->db, d.local, p->public_key,
                    d.has_code ? d.code_hash : NULL, auth_done, s);
}

static void on_ready(synod_conn_t *c, int status) {
  (void)status;
  session_t *s = synod_conn_data(c);
  server_t *srv = s->srv;
  if (s->account_id) {
    session_t **head = acct_head(srv, s->account_id);
    /* The rate limit is the account's: every session of it draws from the
     * same bucket, so opening more sessions buys no more messages. */
    for (session_t *o = *head; o && !s->rate; o = o->acct_next)
      if (o->account_id == s->account_id && o->rate)
        s->rate = o->rate;
    if (s->rate) {
      s->rate->refs++;
    } else if ((s->rate = calloc(1, sizeof *s->rate)) != NULL) {
      s->rate->refs = 1;
      policy_bucket_init(&s->rate->bucket, srv->cfg->message_burst,
                         server_ms(srv));
    } else {
      synod_conn_close(c, SYNOD_ENOMEM);
      return;
    }
    s->acct_next = *head;
    *head = s;
    synod_log(SYNOD_LOG_DEBUG, "client session up", "user=%s", s->user);
    session_kick(s);
  } else if (s->peer) {
    synod_log(SYNOD_LOG_INFO, "peer session up", "peer=%s", s->peer->name);
    dir_peer_up(s);
  }
}

static void on_writable(synod_conn_t *c, int status) {
  (void)status;
  session_kick(synod_conn_data(c));
}

/* --- delivery ---------------------------------------------------------------------- */

/* Sends batch[0..*nb) as one Deliver (answering a pending Fetch) and frees
 * it; adds the ids to the in-flight set. 1 when the connection cannot take
 * more now (on_writable kicks again) or is gone. */
static int send_deliver(session_t *s, Synod__V1__Envelope **batch,
                        uint8_t (*ids)[16], size_t *nb, int more,
                        size_t *sent) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Deliver d = SYNOD__V1__DELIVER__INIT;
  f.request_id = s->fetch_request;
  f.body_case = SYNOD__V1__FRAME__BODY_DELIVER;
  f.deliver = &d;
  d.envelopes = batch;
  d.n_envelopes = *nb;
  d.more = more;
  int rc = synod_conn_send(s->conn, &f);
  if (rc == 0) {
    for (size_t k = 0; k < *nb; k++)
      (void)idset_add(&s->inflight, ids[k]);
    *sent += *nb;
    s->fetch_request = 0;
  } else if (rc != SYNOD_EAGAIN) {
    synod_conn_close(s->conn, rc);
  }
  for (size_t k = 0; k < *nb; k++)
    synod_wire_free_message(&batch[k]->base);
  *nb = 0;
  return rc != 0;
}

static void drain_done(void *data, int status, const store_rows_t *envs,
                       const store_rows_t *notices) {
  session_t *s = data;
  s->pending--;
  s->fetching = 0;
  if (!s->conn) {
    release(s);
    return;
  }
  if (status != 0) {
    /* The next kick (a new message, an ack, a reconnect of the
     * database) retries. */
    synod_log(SYNOD_LOG_WARN, "delivery read failed", "user=%s error=%s",
              s->user, synod_err_name(status));
    /* Unless a kick came while this read was out (the database coming
     * back up): it found the session busy and left only fetch_again. */
    if (s->fetch_again) {
      s->fetch_again = 0;
      session_kick(s);
    }
    return;
  }
  Synod__V1__Envelope *batch[DELIVER_BATCH];
  uint8_t ids[DELIVER_BATCH][16];
  size_t nb = 0, bytes = 0, n = store_rows_count(envs), sent = 0;
  /* A Deliver frame must fit the frame limit: envelopes are at most
   * max_envelope_bytes each, below max_frame_bytes, and each costs a few
   * bytes of field header on top. */
  size_t limit = s->srv->cfg->max_frame_bytes - 64;
  int blocked = 0;
  for (size_t i = 0; i < n && !blocked; i++) {
    size_t idlen, len;
    const uint8_t *id = store_rows_col(envs, i, 0, &idlen);
    const uint8_t *env = store_rows_col(envs, i, 1, &len);
    if (!id || idlen != 16 || !env || idset_has(&s->inflight, id))
      continue;
    if (nb && bytes + len + 8 > limit) {
      blocked = send_deliver(s, batch, ids, &nb, 1, &sent);
      bytes = 0;
      if (blocked)
        break;
    }
    ProtobufCMessage *m;
    if (synod_wire_unpack_message(&synod__v1__envelope__descriptor, env, len,
                                  &m) != 0) {
      synod_log(SYNOD_LOG_ERROR, "stored envelope does not parse", "user=%s",
                s->user);
      continue;
    }
    batch[nb] = (Synod__V1__Envelope *)m;
    memcpy(ids[nb], id, 16);
    nb++;
    bytes += len + 8;
    if (nb == DELIVER_BATCH) {
      blocked = send_deliver(s, batch, ids, &nb, i + 1 < n, &sent);
      bytes = 0;
    }
  }
  if (!blocked && (nb || s->fetch_request))
    blocked = send_deliver(s, batch, ids, &nb, 0, &sent);
  for (size_t k = 0; k < nb; k++) /* left over after a blocked send */
    synod_wire_free_message(&batch[k]->base);
  for (size_t i = 0; i < n; i++) {
    size_t idlen;
    const uint8_t *id = store_rows_col(envs, i, 0, &idlen);
    int64_t seq = store_rows_int(envs, i, 2);
    if (id && idlen == 16 && seq > s->cursor && idset_has(&s->inflight, id))
      s->cursor = seq;
  }
  for (size_t i = 0; i < store_rows_count(notices) && !blocked && s->conn;
       i++) {
    size_t idlen, len;
    const uint8_t *id = store_rows_col(notices, i, 0, &idlen);
    const uint8_t *body = store_rows_col(notices, i, 1, &len);
    if (!id || idlen != 16 || !body || idset_has(&s->inflight, id))
      continue;
    ProtobufCMessage *m;
    if (synod_wire_unpack_message(&synod__v1__delivery_failure__descriptor,
                                  body, len, &m) != 0)
      continue;
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    f.body_case = SYNOD__V1__FRAME__BODY_DELIVERY_FAILURE;
    f.delivery_failure = (Synod__V1__DeliveryFailure *)m;
    int rc = synod_conn_send(s->conn, &f);
    synod_wire_free_message(m);
    if (rc == 0)
      (void)idset_add(&s->inflight, id);
    else
      blocked = 1;
  }
  if (sent)
    synod_log(SYNOD_LOG_TRACE, "delivered", "user=%s count=%zu", s->user, sent);
  if (s->fetch_again && !blocked) {
    s->fetch_again = 0;
    session_kick(s);
  }
}

/* Reads what waits for the account and sends what is not in flight. */
static void session_kick(session_t *s) {
  if (!s || !s->conn || !s->account_id || !synod_conn_is_ready(s->conn))
    return;
  /* A requests-only session (a lookup, a send) is read for only when it
   * asks: pushing to it would put messages in flight that it never
   * acknowledges, to be sent again to the device that does read. */
  if (s->requests_only && !s->fetch_request)
    return;
  if (s->fetching) {
    s->fetch_again = 1;
    return;
  }
  if (s->inflight.n >= SESSION_WINDOW && !s->fetch_request)
    return; /* acknowledgements kick again */
  size_t room =
      s->inflight.n >= SESSION_WINDOW ? 0 : SESSION_WINDOW - s->inflight.n;
  if (s->inflight.n == 0)
    s->cursor = 0;
  s->fetching = 1;
  s->pending++;
  /* Envelopes after the newest in flight, as many as the window has room
   * for; notices (few, in the same in-flight set) from the start. */
  store_fetch_inbox(s->srv->db, s->account_id, s->cursor, (unsigned)room,
                    (unsigned)(s->inflight.n + room), drain_done, s);
}

void session_kick_account(server_t *srv, int64_t account_id) {
  for (session_t *s = *acct_head(srv, account_id); s; s = s->acct_next)
    if (s->account_id == account_id)
      session_kick(s);
}

void session_kick_user(server_t *srv, const char *user) {
  for (session_t *s = srv->sessions; s; s = s->next)
    if (s->account_id && s->user && strcmp(s->user, user) == 0)
      session_kick(s);
}

/* --- client requests ----------------------------------------------------------------- */

typedef struct submit {
  session_t *s;
  server_t *srv;
  uint64_t request_id;
  store_item_t item;
  link_t *link;
  char local[SYNOD_USERID_LOCAL_MAX + 1];
  uint8_t *env;
} submit_t;

static void submit_done(void *data, int status, store_item_t *items, size_t n) {
  (void)n;
  submit_t *sb = data;
  session_t *s = sb->s;
  store_item_t *it = &items[0];
  if (status == 0 && it->status == STORE_STORED) {
    if (sb->link)
      link_kick(sb->link);
    else
      session_kick_account(sb->srv, it->account_id);
  }
  s->pending--;
  if (s->conn) {
    if (status == 0 && it->status >= 0) {
      Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
      Synod__V1__Accepted a = SYNOD__V1__ACCEPTED__INIT;
      f.request_id = sb->request_id;
      f.body_case = SYNOD__V1__FRAME__BODY_ACCEPTED;
      f.accepted = &a;
      a.message_id.data = it->message_id;
      a.message_id.len = 16;
      a.status = it->status == STORE_STORED
                     ? SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED
                     : SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE;
      reply(s, &f);
    } else if (status == 0) {
      reply_error(s, sb->request_id, it->status,
                  it->status == SYNOD_EUNKNOWNUSER ? "no such recipient"
                  : it->status == SYNOD_EQUOTA ? "recipient's storage is full"
                                               : "recipient disabled");
    } else {
      reply_error(s, sb->request_id, SYNOD_EAGAIN,
                  "message not stored, try later");
    }
  }
  release(s);
  free(sb->env);
  free(sb);
}

static void handle_submit(session_t *s, uint64_t rid, Synod__V1__Submit *m) {
  server_t *srv = s->srv;
  relay_config_t *cfg = srv->cfg;
  if (policy_bucket_take(&s->rate->bucket, cfg->message_rate,
                         cfg->message_burst, server_ms(srv)) != 0) {
    reply_error(s, rid, SYNOD_ERATE, "sending too fast, slow down");
    return;
  }
  if (!db_is_up(srv->db)) {
    reply_error(s, rid, SYNOD_EAGAIN, "database unavailable, try later");
    return;
  }
  /* The relay states who sent it and when; the client's values for these
   * fields are ignored. A shallow copy: the original owns the memory. */
  Synod__V1__Envelope e = *m->envelope;
  e.sender = s->sp.user;
  e.sender_relay = cfg->name;
  e.time = server_now();
  uint32_t ttl;
  size_t llen;
  const char *relay, *why;
  int rc = sessproto_submit(&s->sp, &e, &ttl, &llen, &relay, &why);
  if (rc != 0) {
    reply_error(s, rid, rc, why);
    return;
  }
  e.ttl = ttl;
  link_t *link = NULL;
  if (strcmp(relay, cfg->name) != 0 && !(link = server_link(srv, relay))) {
    reply_error(s, rid, SYNOD_EUNKNOWNPEER,
                "no federation with the recipient's relay");
    return;
  }
  submit_t *sb = calloc(1, sizeof *sb);
  size_t envlen = synod__v1__envelope__get_packed_size(&e);
  if (!sb || !(sb->env = malloc(envlen))) {
    free(sb);
    reply_error(s, rid, SYNOD_ENOMEM, "out of memory");
    return;
  }
  synod__v1__envelope__pack(&e, sb->env);
  sb->s = s;
  sb->srv = srv;
  sb->request_id = rid;
  sb->link = link;
  store_item_t *it = &sb->item;
  memcpy(it->message_id, e.message_id.data, 16);
  it->sender = s->user;
  it->sender_relay = cfg->name;
  it->expires_at = policy_expires_at(e.time, ttl);
  it->envelope = sb->env;
  it->envlen = envlen;
  if (link) {
    it->peer = link->peer->name;
    it->recipient = e.recipient;
    it->sender_account = s->account_id;
  } else {
    memcpy(sb->local, e.recipient, llen);
    sb->local[llen] = '\0';
    it->recipient_local = sb->local;
  }
  s->pending++;
  /* store_put copies every parameter before returning: e's borrowed
   * strings need not outlive this call. */
  store_put(srv->db, it, 1, cfg->quota_bytes, submit_done, sb);
  it->recipient = NULL;
}

typedef struct ack {
  session_t *s;
  uint64_t request_id;
  size_t n;
  uint8_t ids[];
} ack_t;

static void ack_done(void *data, int status, uint64_t count) {
  (void)count;
  ack_t *a = data;
  session_t *s = a->s;
  s->pending--;
  if (s->conn) {
    if (status == 0) {
      for (size_t i = 0; i < a->n; i++)
        (void)idset_del(&s->inflight, a->ids + 16 * i);
      session_kick(s);
    } else {
      reply_error(s, a->request_id, SYNOD_EAGAIN,
                  "acknowledgement not recorded, send it again");
    }
  }
  release(s);
  free(a);
}

/* m was checked by sessproto_frame(): 1 to 4096 ids of 16 bytes. */
static void handle_ack(session_t *s, uint64_t rid, Synod__V1__DeliveryAck *m) {
  ack_t *a = malloc(sizeof *a + 16 * m->n_message_ids);
  if (!a) {
    reply_error(s, rid, SYNOD_ENOMEM, "out of memory");
    return;
  }
  a->s = s;
  a->request_id = rid;
  a->n = 0;
  for (size_t i = 0; i < m->n_message_ids; i++)
    memcpy(a->ids + 16 * a->n++, m->message_ids[i].data, 16);
  s->pending++;
  relay_config_t *cfg = s->srv->cfg;
  store_ack_inbox(s->srv->db, s->account_id, a->ids, a->n,
                  cfg->delivered == CONFIG_RETENTION_KEEP ? cfg->keep_for_ms
                                                          : 0,
                  ack_done, a);
}

typedef struct purge {
  session_t *s;
  server_t *srv;
  uint64_t request_id;
} purge_t;

static void purge_done(void *data, int status, uint64_t count) {
  purge_t *p = data;
  session_t *s = p->s;
  s->pending--;
  if (status == 0)
    for (size_t i = 0; i < p->srv->nlinks; i++)
      link_kick(&p->srv->links[i]);
  if (s->conn) {
    if (status == 0) {
      Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
      Synod__V1__PurgeResult r = SYNOD__V1__PURGE_RESULT__INIT;
      f.request_id = p->request_id;
      f.body_case = SYNOD__V1__FRAME__BODY_PURGE_RESULT;
      f.purge_result = &r;
      r.deleted = count;
      reply(s, &f);
      synod_log(SYNOD_LOG_INFO, "purged", "user=%s deleted=%llu",
                s->user ? s->user : s->peer->name, (unsigned long long)count);
    } else {
      reply_error(s, p->request_id, SYNOD_EAGAIN, "purge not done, try later");
    }
  }
  release(s);
  free(p);
}

static void handle_purge(session_t *s, uint64_t rid, Synod__V1__Purge *m) {
  server_t *srv = s->srv;
  Synod__V1__PurgeBody *b;
  const char *why = "";
  int rc = sessproto_purge(&s->sp, m, server_now(), &b, &why);
  if (rc != 0) {
    reply_error(s, rid, rc, why);
    return;
  }
  purge_t *p = calloc(1, sizeof *p);
  uint8_t *ids = calloc(b->n_message_ids + 1, 16);
  uint8_t *queue = NULL;
  size_t queuelen = 0;
  const char **peers = calloc(srv->nlinks + 1, sizeof *peers);
  if (!s->peer) {
    queuelen = synod__v1__purge__get_packed_size(m);
    queue = malloc(queuelen + 1);
  }
  if (!p || !ids || !peers || (!s->peer && !queue)) {
    free(p);
    free(ids);
    free(queue);
    free(peers);
    synod_wire_free_message(&b->base);
    reply_error(s, rid, SYNOD_ENOMEM, "out of memory");
    return;
  }
  if (queue)
    synod__v1__purge__pack(m, queue);
  for (size_t i = 0; i < b->n_message_ids; i++)
    memcpy(ids + 16 * i, b->message_ids[i].data, 16);
  for (size_t i = 0; i < srv->nlinks; i++)
    peers[i] = srv->links[i].peer->name;
  store_purge_t q = {
      .account_id = s->peer ? 0 : s->account_id,
      .user = b->user_id,
      .scope = (int)b->scope,
      .peer = b->peer,
      .self = srv->cfg->name,
      .ids = ids,
      .nids = b->n_message_ids,
      .until = b->time ? b->time : server_now(),
      .queue = queue,
      .queuelen = queuelen,
      .peers = peers,
      .npeers = queue ? srv->nlinks : 0,
  };
  p->s = s;
  p->srv = srv;
  p->request_id = rid;
  s->pending++;
  store_purge(srv->db, &q, purge_done, p); /* copies every parameter */
  free(ids);
  free(queue);
  free(peers);
  synod_wire_free_message(&b->base);
}

/* --- peer relay requests ------------------------------------------------------------- */

typedef struct forward {
  session_t *s;
  server_t *srv;
  uint64_t request_id;
  unsigned outstanding;
  int failed;
  Synod__V1__ForwardAck ack;
  ProtobufCBinaryData *accepted;
  Synod__V1__ForwardReject *rejects;
  Synod__V1__ForwardReject **rejected;
  store_item_t *items;
  size_t nitems;
  char (*locals)[SYNOD_USERID_LOCAL_MAX + 1];
  uint8_t **envs;
  uint8_t (*ids)[16];
} forward_t;

static void accept_id(forward_t *fw, const uint8_t *id) {
  uint8_t *slot = fw->ids[fw->ack.n_accepted];
  memcpy(slot, id, 16);
  fw->accepted[fw->ack.n_accepted].data = slot;
  fw->accepted[fw->ack.n_accepted].len = 16;
  fw->ack.n_accepted++;
}

/* id must stay valid until the ack is sent. */
static void reject_id(forward_t *fw, const uint8_t *id, int code) {
  size_t k = fw->ack.n_rejected++;
  Synod__V1__ForwardReject *r = &fw->rejects[k];
  synod__v1__forward_reject__init(r);
  r->message_id.data = synod_wire_lend(id);
  r->message_id.len = 16;
  r->code = (uint32_t)(-code);
  fw->rejected[k] = r;
}

static void forward_finish(forward_t *fw) {
  session_t *s = fw->s;
  if (--fw->outstanding > 0)
    return;
  s->pending--;
  if (s->conn) {
    if (fw->failed) {
      reply_error(s, fw->request_id, SYNOD_EAGAIN, "not stored, try later");
    } else {
      Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
      f.request_id = fw->request_id;
      f.body_case = SYNOD__V1__FRAME__BODY_FORWARD_ACK;
      f.forward_ack = &fw->ack;
      fw->ack.accepted = fw->accepted;
      fw->ack.rejected = fw->rejected;
      fw->ack.window = fw->srv->cfg->window;
      reply(s, &f);
    }
  }
  release(s);
  for (size_t i = 0; i < fw->nitems; i++)
    free(fw->envs[i]);
  free(fw->envs);
  free(fw->items);
  free(fw->locals);
  free(fw->accepted);
  free(fw->rejects);
  free(fw->rejected);
  free(fw->ids);
  free(fw);
}

static void forward_put_done(void *data, int status, store_item_t *items,
                             size_t n) {
  forward_t *fw = data;
  if (status != 0) {
    fw->failed = 1;
  } else {
    for (size_t i = 0; i < n; i++) {
      if (items[i].status >= 0)
        accept_id(fw, items[i].message_id);
      else
        reject_id(fw, items[i].message_id, items[i].status);
      if (items[i].status == STORE_STORED)
        session_kick_account(fw->srv, items[i].account_id);
    }
  }
  forward_finish(fw);
}

typedef struct failure_in {
  forward_t *fw;
  uint8_t id[16];
} failure_in_t;

static void failure_in_done(void *data, int status, uint64_t count) {
  (void)count;
  failure_in_t *fi = data;
  if (status != 0)
    fi->fw->failed = 1;
  else
    accept_id(fi->fw, fi->id);
  if (status == 0 && count)
    session_kick_account(fi->fw->srv, (int64_t)count);
  forward_t *fw = fi->fw;
  free(fi);
  forward_finish(fw);
}

static void handle_forward(session_t *s, uint64_t rid, Synod__V1__Forward *m) {
  server_t *srv = s->srv;
  /* sessproto_frame() checked total: 1 to 1024. */
  size_t ne = m->n_envelopes, nf = m->n_failures, total = ne + nf;
  if (!db_is_up(srv->db)) {
    reply_error(s, rid, SYNOD_EAGAIN, "database unavailable, try later");
    return;
  }
  forward_t *fw = calloc(1, sizeof *fw);
  if (fw) {
    fw->accepted = calloc(total, sizeof *fw->accepted);
    fw->rejects = calloc(total, sizeof *fw->rejects);
    fw->rejected = calloc(total, sizeof *fw->rejected);
    /* ids[0..total): accepted ids; ids[total..2 total): copies of ids
     * rejected before storing, which must outlive the frame. */
    fw->ids = calloc(2 * total, sizeof *fw->ids);
    fw->items = calloc(ne + 1, sizeof *fw->items);
    fw->locals = calloc(ne + 1, sizeof *fw->locals);
    fw->envs = calloc(ne + 1, sizeof *fw->envs);
  }
  if (!fw || !fw->accepted || !fw->rejects || !fw->rejected || !fw->ids ||
      !fw->items || !fw->locals || !fw->envs) {
    if (fw) {
      free(fw->accepted);
      free(fw->rejects);
      free(fw->rejected);
      free(fw->ids);
      free(fw->items);
      free(fw->locals);
      free(fw->envs);
    }
    free(fw);
    reply_error(s, rid, SYNOD_ENOMEM, "out of memory");
    return;
  }
  fw->s = s;
  fw->srv = srv;
  fw->request_id = rid;
  synod__v1__forward_ack__init(&fw->ack);
  fw->outstanding = 1; /* held until every op below is submitted */
  s->pending++;
  uint64_t now = server_now();

  /* Rejected ids point at the frame's bytes: copy them into fw->ids
   * (the second half) so the ack outlives the frame. */
  size_t nrej_slots = 0;
  for (size_t i = 0; i < ne; i++) {
    Synod__V1__Envelope *e = m->envelopes[i];
    uint64_t expires = 0;
    size_t llen = 0;
    int rc = sessproto_forwarded(&s->sp, e, now, &expires, &llen);
    if (rc != 0) {
      if (e->message_id.len == 16) {
        uint8_t *slot = fw->ids[total + nrej_slots++];
        memcpy(slot, e->message_id.data, 16);
        reject_id(fw, slot, rc);
      }
      continue;
    }
    size_t k = fw->nitems;
    size_t len = synod__v1__envelope__get_packed_size(e);
    fw->envs[k] = malloc(len);
    if (!fw->envs[k]) {
      fw->failed = 1;
      break;
    }
    synod__v1__envelope__pack(e, fw->envs[k]);
    store_item_t *it = &fw->items[k];
    memcpy(it->message_id, e->message_id.data, 16);
    memcpy(fw->locals[k], e->recipient, llen);
    fw->locals[k][llen] = '\0';
    it->recipient_local = fw->locals[k];
    it->sender = e->sender;
    it->sender_relay = e->sender_relay;
    it->expires_at = expires;
    it->envelope = fw->envs[k];
    it->envlen = len;
    fw->nitems++;
  }
  if (fw->nitems && !fw->failed) {
    fw->outstanding++;
    store_put(srv->db, fw->items, fw->nitems, srv->cfg->quota_bytes,
              forward_put_done, fw);
    for (size_t k = 0; k < fw->nitems; k++) /* copied by store_put */
      fw->items[k].sender = fw->items[k].sender_relay = NULL;
  }
  for (size_t i = 0; i < nf && !fw->failed; i++) {
    Synod__V1__DeliveryFailure *df = m->failures[i];
    Synod__V1__DeliveryFailureBody *b;
    int rc = sessproto_failure(&s->sp, df, &b);
    if (rc != 0) {
      if (rc != SYNOD_EDENIED)
        synod_log(SYNOD_LOG_WARN, "peer sent a bad delivery failure", "peer=%s",
                  s->peer->name);
      continue; /* not accepted: the peer will see it neither acked */
    }
    ProtobufCMessage *bm = &b->base;
    size_t len = synod__v1__delivery_failure__get_packed_size(df);
    uint8_t *buf = malloc(len + 1);
    failure_in_t *fi = calloc(1, sizeof *fi);
    if (!buf || !fi) {
      free(buf);
      free(fi);
      synod_wire_free_message(bm);
      fw->failed = 1;
      break;
    }
    synod__v1__delivery_failure__pack(df, buf);
    fi->fw = fw;
    memcpy(fi->id, b->message_id.data, 16);
    fw->outstanding++;
    store_outbox_refused(srv->db, fi->id, s->peer->name, buf, len,
                         failure_in_done, fi);
    free(buf);
    synod_wire_free_message(bm);
  }
  forward_finish(fw);
}

/* --- dispatch --------------------------------------------------------------------------- */

static void pong(session_t *s, uint64_t rid, Synod__V1__Ping *p) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Pong g = SYNOD__V1__PONG__INIT;
  f.request_id = rid;
  f.body_case = SYNOD__V1__FRAME__BODY_PONG;
  f.pong = &g;
  g.nonce = p->nonce;
  reply(s, &f);
}

static void on_frame(synod_conn_t *c, Synod__V1__Frame *f) {
  session_t *s = synod_conn_data(c);
  uint64_t rid = f->request_id;
  sessproto_decision_t d;
  sessproto_frame(&s->sp, &d, f);
  switch (d.act) {
  case SESSPROTO_CLOSE:
    (void)synod_conn_send_error(c, 0, d.code, d.why);
    synod_conn_close(c, d.code);
    break;
  case SESSPROTO_ERROR:
    reply_error(s, rid, d.code, d.why);
    break;
  case SESSPROTO_PONG:
    pong(s, rid, f->ping);
    break;
  case SESSPROTO_SUBMIT:
    handle_submit(s, rid, f->submit);
    break;
  case SESSPROTO_ACK:
    handle_ack(s, rid, f->delivery_ack);
    break;
  case SESSPROTO_FETCH:
    s->fetch_request = rid ? rid : s->fetch_request;
    session_kick(s);
    break;
  case SESSPROTO_PURGE:
    handle_purge(s, rid, f->purge);
    break;
  case SESSPROTO_PEER_PURGE:
    handle_purge(s, rid, f->peer_purge->purge);
    break;
  case SESSPROTO_FORWARD:
    handle_forward(s, rid, f->forward);
    break;
  case SESSPROTO_LOG_ERROR:
    synod_log(SYNOD_LOG_INFO, "peer reported an error", "code=%u reason=%s",
              f->error->code, f->error->reason ? f->error->reason : "");
    break;
  case SESSPROTO_DIRECTORY:
    /* The key directory (Publish, Lookup, gossip, proofs): directory.c. */
    if (!dir_session_frame(s, f))
      reply_error(s, rid, SYNOD_EDENIED, "request not supported by this relay");
    break;
  default: /* IGNORE */
    break;
  }
  synod_wire_free(f);
}

/* --- accept / close ---------------------------------------------------------------------- */

void session_accept(server_t *srv, uv_stream_t *listener) {
  session_t *s = calloc(1, sizeof *s);
  if (!s) {
    /* The handle must outlive the asynchronous close: never the stack. */
    server_drop_connection(srv, listener, "out of memory");
    return;
  }
  s->srv = srv;
  sessproto_init(&s->sp, srv->cfg);
  idset_init(&s->inflight);
  synod_conn_options_t opt;
  server_conn_options(srv, &opt, 1);
  opt.cb.on_auth = on_auth;
  opt.cb.on_ready = on_ready;
  opt.cb.on_frame = on_frame;
  opt.cb.on_writable = on_writable;
  opt.cb.on_close = on_close;
  opt.data = s;
  int rc = synod_conn_serve(&s->conn, listener, &opt);
  if (rc != 0) {
    synod_log(SYNOD_LOG_WARN, "accept failed", "error=%s", synod_err_name(rc));
    idset_free(&s->inflight);
    free(s);
    return;
  }
  s->next = srv->sessions;
  if (s->next)
    s->next->prev = s;
  srv->sessions = s;
  srv->nsessions++;
}

void session_close_user(server_t *srv, const char *user, const char *why) {
  for (session_t *s = srv->sessions; s; s = s->next)
    if (s->conn && s->account_id && s->user && strcmp(s->user, user) == 0) {
      (void)synod_conn_send_error(s->conn, 0, SYNOD_EDENIED, why);
      synod_conn_close(s->conn, SYNOD_EDENIED);
    }
}

void session_close_all(server_t *srv) {
  for (session_t *s = srv->sessions; s; s = s->next)
    if (s->conn)
      synod_conn_close(s->conn, 0);
}
