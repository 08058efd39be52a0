/* A blocking test client of synod-relay; see tclient.h. */
#include "tclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "synod/conn.h"
#include "synod/crypto.h"
#include "synod/sig.h"
#include "synod/tls.h"
#include "synod/wire.h"

struct tclient {
  uv_loop_t loop;
  uv_timer_t timer;
  synod_tls_ctx_t *tls;
  synod_conn_t *conn;
  int ready, closed, close_status, timed_out;
  uint64_t next_request;
  /* the synchronous request being waited for */
  uint64_t wait_request;
  int wait_done, wait_code;
  Synod__V1__Frame *wait_answer;
  /* async submits */
  size_t async_ok, async_err;
  /* request ids of the acknowledgements sent, ascending, so that an Error
   * answering one is not taken for a submit's */
  uint64_t *ack_rids;
  size_t nack_rids, capack_rids, ack_errors;
  uint8_t (*acc_ids)[16]; /* ids of Accepted answers, in arrival order */
  int *acc_status;
  size_t nacc, capacc;
  /* received */
  tclient_rx_t *rx;
  size_t nrx, caprx;
  uint8_t (*fail_ids)[16];
  int *fail_codes;
  size_t nfail, capfail;
  int auto_ack;
  size_t acked_upto; /* rx[0..acked_upto) were acknowledged automatically */
  int last_error;
  char last_reason[256];
  char user_id[400];
};

/* Every event a wait may be waiting for also stops the loop: a callback
 * run at the start of uv_run(UV_RUN_ONCE) (a timer) would otherwise be
 * followed by a poll with no timeout. */
static void on_timer(uv_timer_t *t) {
  tclient_t *c = t->data;
  c->timed_out = 1;
  uv_stop(&c->loop);
}

static void on_close(synod_conn_t *conn, int status) {
  tclient_t *c = synod_conn_data(conn);
  c->conn = NULL;
  c->closed = 1;
  c->ready = 0;
  c->close_status = status ? status : SYNOD_ECLOSED;
  uv_stop(&c->loop);
}

static void on_ready(synod_conn_t *conn, int status) {
  (void)status;
  tclient_t *c = synod_conn_data(conn);
  c->ready = 1;
  uv_stop(&c->loop);
}

static void send_ack(tclient_t *c, const uint8_t (*ids)[16], size_t n) {
  if (!c->conn || n == 0)
    return;
  ProtobufCBinaryData *b = calloc(n, sizeof *b);
  if (!b)
    return;
  for (size_t i = 0; i < n; i++) {
    b[i].data = synod_wire_lend(ids[i]);
    b[i].len = 16;
  }
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__DeliveryAck a = SYNOD__V1__DELIVERY_ACK__INIT;
  f.request_id = ++c->next_request;
  if (c->nack_rids == c->capack_rids) {
    size_t cap = c->capack_rids ? 2 * c->capack_rids : 64;
    uint64_t *r = realloc(c->ack_rids, cap * sizeof *r);
    if (r) {
      c->ack_rids = r;
      c->capack_rids = cap;
    }
  }
  if (c->nack_rids < c->capack_rids)
    c->ack_rids[c->nack_rids++] = f.request_id;
  f.body_case = SYNOD__V1__FRAME__BODY_DELIVERY_ACK;
  f.delivery_ack = &a;
  a.message_ids = b;
  a.n_message_ids = n;
  (void)synod_conn_send(c->conn, &f);
  free(b);
}

static void record_deliver(tclient_t *c, Synod__V1__Deliver *d) {
  uint8_t(*acks)[16] = calloc(d->n_envelopes + 1, 16);
  size_t nacks = 0;
  for (size_t i = 0; i < d->n_envelopes; i++) {
    Synod__V1__Envelope *e = d->envelopes[i];
    if (c->nrx == c->caprx) {
      size_t cap = c->caprx ? 2 * c->caprx : 256;
      tclient_rx_t *rx = realloc(c->rx, cap * sizeof *rx);
      if (!rx)
        break;
      c->rx = rx;
      c->caprx = cap;
    }
    tclient_rx_t *r = &c->rx[c->nrx++];
    memset(r, 0, sizeof *r);
    if (e->message_id.len == 16)
      memcpy(r->id, e->message_id.data, 16);
    snprintf(r->sender, sizeof r->sender, "%s", e->sender ? e->sender : "");
    r->time = e->time;
    r->ttl = e->ttl;
    r->ctlen = e->n_ciphertexts ? e->ciphertexts[0]->ct.len : 0;
    if (acks)
      memcpy(acks[nacks++], r->id, 16);
  }
  if (c->auto_ack && acks) {
    send_ack(c, (const uint8_t(*)[16])acks, nacks);
    c->acked_upto = c->nrx;
  }
  free(acks);
}

static void record_failure(tclient_t *c, Synod__V1__DeliveryFailure *df) {
  ProtobufCMessage *m;
  if (synod_wire_unpack_message(&synod__v1__delivery_failure_body__descriptor,
                                df->body.data, df->body.len, &m) != 0)
    return;
  Synod__V1__DeliveryFailureBody *b = (Synod__V1__DeliveryFailureBody *)m;
  if (c->nfail == c->capfail) {
    size_t cap = c->capfail ? 2 * c->capfail : 16;
    void *ids = realloc(c->fail_ids, cap * 16);
    if (ids)
      c->fail_ids = ids;
    int *codes = realloc(c->fail_codes, cap * sizeof *codes);
    if (codes)
      c->fail_codes = codes;
    if (!ids || !codes) {
      synod_wire_free_message(m);
      return;
    }
    c->capfail = cap;
  }
  if (b->message_id.len == 16)
    memcpy(c->fail_ids[c->nfail], b->message_id.data, 16);
  c->fail_codes[c->nfail++] = synod_err_from_wire(b->code);
  if (c->auto_ack && b->message_id.len == 16)
    send_ack(c, (const uint8_t(*)[16])b->message_id.data, 1);
  synod_wire_free_message(m);
}

static void record_accepted(tclient_t *c, const Synod__V1__Accepted *a) {
  if (a->message_id.len != 16)
    return;
  if (c->nacc == c->capacc) {
    size_t cap = c->capacc ? 2 * c->capacc : 256;
    void *ids = realloc(c->acc_ids, cap * 16);
    if (ids)
      c->acc_ids = ids;
    int *st = realloc(c->acc_status, cap * sizeof *st);
    if (st)
      c->acc_status = st;
    if (!ids || !st)
      return;
    c->capacc = cap;
  }
  memcpy(c->acc_ids[c->nacc], a->message_id.data, 16);
  c->acc_status[c->nacc++] = (int)a->status;
}

static int u64cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int is_ack_request(const tclient_t *c, uint64_t rid) {
  return c->nack_rids &&
         bsearch(&rid, c->ack_rids, c->nack_rids, sizeof rid, u64cmp) != NULL;
}

static void on_frame(synod_conn_t *conn, Synod__V1__Frame *f) {
  tclient_t *c = synod_conn_data(conn);
  int keep = 0;
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_DELIVER:
    record_deliver(c, f->deliver);
    break;
  case SYNOD__V1__FRAME__BODY_DELIVERY_FAILURE:
    record_failure(c, f->delivery_failure);
    break;
  case SYNOD__V1__FRAME__BODY_ERROR:
    c->last_error = synod_err_from_wire(f->error->code);
    snprintf(c->last_reason, sizeof c->last_reason, "%s",
             f->error->reason ? f->error->reason : "");
    break;
  default:
    break;
  }
  if (f->request_id && f->request_id == c->wait_request) {
    c->wait_done = 1;
    c->wait_code = f->body_case == SYNOD__V1__FRAME__BODY_ERROR
                       ? synod_err_from_wire(f->error->code)
                       : 0;
    c->wait_answer = f;
    keep = 1;
  } else if (f->request_id && f->request_id > 0 &&
             (f->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED ||
              f->body_case == SYNOD__V1__FRAME__BODY_ERROR)) {
    if (f->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED) {
      c->async_ok++;
      record_accepted(c, f->accepted);
    } else if (is_ack_request(c, f->request_id)) {
      c->ack_errors++;
    } else {
      c->async_err++;
    }
  }
  if (!keep)
    synod_wire_free(f);
  uv_stop(&c->loop);
}

/* Runs the loop until *flag is set, the connection closes, or the
 * deadline; returns 0, SYNOD_ECLOSED or SYNOD_ETIMEDOUT. */
static int run_until(tclient_t *c, const int *flag, int timeout_ms) {
  c->timed_out = 0;
  /* The loop's clock stood still while the test did other things (another
   * client's loop, a sleep): a timer armed on it would already be due. */
  uv_update_time(&c->loop);
  uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  while (!*flag && !c->closed && !c->timed_out)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_timer_stop(&c->timer);
  if (*flag)
    return 0;
  return c->closed ? c->close_status : SYNOD_ETIMEDOUT;
}

int tclient_connect(tclient_t **out, uint16_t port, const uint8_t relay_pk[32],
                    const char *user, const uint8_t sk[32], const char *code,
                    int timeout_ms) {
  return tclient_connect_flags(out, port, relay_pk, user, sk, code, timeout_ms,
                               0);
}

int tclient_connect_flags(tclient_t **out, uint16_t port,
                          const uint8_t relay_pk[32], const char *user,
                          const uint8_t sk[32], const char *code,
                          int timeout_ms, unsigned flags) {
  *out = NULL;
  tclient_t *c = calloc(1, sizeof *c);
  if (!c)
    return SYNOD_ENOMEM;
  snprintf(c->user_id, sizeof c->user_id, "%s", user);
  uv_loop_init(&c->loop);
  uv_timer_init(&c->loop, &c->timer);
  c->timer.data = c;
  char reason[256];
  int rc = synod_tls_ctx_new_client(&c->tls, reason);
  if (rc == 0) {
    synod_conn_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.tls = c->tls;
    opt.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
    opt.handshake.name = user;
    opt.handshake.software = "synod-tclient";
    opt.handshake.secret_key = sk;
    opt.handshake.expected_peer_key = relay_pk;
    opt.handshake.enrollment_code = code;
    opt.handshake.requests_only = (flags & TCLIENT_REQUESTS_ONLY) != 0;
    opt.cb.on_ready = on_ready;
    opt.cb.on_frame = on_frame;
    opt.cb.on_close = on_close;
    opt.data = c;
    opt.handshake_timeout_ms = (uint64_t)timeout_ms;
    rc = synod_conn_connect(&c->conn, &c->loop, "127.0.0.1", port, &opt);
  }
  if (rc == 0)
    rc = run_until(c, &c->ready, timeout_ms + 1000);
  if (rc != 0) {
    tclient_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

void tclient_close(tclient_t *c) {
  if (!c)
    return;
  if (c->conn)
    synod_conn_close(c->conn, 0);
  while (c->conn)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&c->timer, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&c->loop) != 0)
    fprintf(stderr, "tclient: handles left open\n");
  synod_tls_ctx_free(c->tls);
  free(c->rx);
  free(c->acc_ids);
  free(c->acc_status);
  free(c->ack_rids);
  free(c->fail_ids);
  free(c->fail_codes);
  free(c);
}

int tclient_up(const tclient_t *c) {
  return c->ready && !c->closed;
}

int tclient_close_status(const tclient_t *c) {
  return c->close_status;
}

/* Sends f with a fresh request id and waits for its answer. On 0, the
 * answer is in c->wait_answer (caller frees with synod_wire_free). */
static int request(tclient_t *c, Synod__V1__Frame *f, int timeout_ms) {
  if (!c->conn)
    return SYNOD_ECLOSED;
  f->request_id = ++c->next_request;
  c->wait_request = f->request_id;
  c->wait_done = 0;
  c->wait_answer = NULL;
  int rc = synod_conn_send(c->conn, f);
  if (rc == 0)
    rc = run_until(c, &c->wait_done, timeout_ms);
  c->wait_request = 0;
  if (rc == 0 && c->wait_code == 0 && !c->wait_answer)
    rc = SYNOD_EPROTO; /* done without an answer: never, but not a crash */
  if (rc == 0 && c->wait_code != 0) {
    rc = c->wait_code;
    synod_wire_free(c->wait_answer);
    c->wait_answer = NULL;
  }
  return rc;
}

static int build_submit(const uint8_t id[16], const char *recipient,
                        size_t ctlen, uint32_t ttl, Synod__V1__Frame *f,
                        Synod__V1__Submit *s, Synod__V1__Envelope *e,
                        Synod__V1__DeviceCiphertext *dc,
                        Synod__V1__DeviceCiphertext **dcs, uint8_t *enc,
                        uint8_t *ct) {
  synod__v1__frame__init(f);
  synod__v1__submit__init(s);
  synod__v1__envelope__init(e);
  synod__v1__device_ciphertext__init(dc);
  if (synod_random(enc, 32) != 0 || (ctlen && synod_random(ct, ctlen) != 0))
    return SYNOD_ECRYPTO;
  dc->device_id = 1;
  dc->enc.data = enc;
  dc->enc.len = 32;
  dc->ct.data = ct;
  dc->ct.len = ctlen;
  dcs[0] = dc;
  e->message_id.data = synod_wire_lend(id);
  e->message_id.len = 16;
  e->recipient = synod_wire_lend(recipient);
  e->ttl = ttl;
  e->ciphertexts = dcs;
  e->n_ciphertexts = 1;
  s->envelope = e;
  f->body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  f->submit = s;
  return 0;
}

int tclient_submit(tclient_t *c, const uint8_t id[16], const char *recipient,
                   size_t ctlen, uint32_t ttl, int *accept, int timeout_ms) {
  Synod__V1__Frame f;
  Synod__V1__Submit s;
  Synod__V1__Envelope e;
  Synod__V1__DeviceCiphertext dc, *dcs[1];
  uint8_t enc[32];
  uint8_t *ct = malloc(ctlen + 1);
  if (!ct)
    return SYNOD_ENOMEM;
  int rc =
      build_submit(id, recipient, ctlen, ttl, &f, &s, &e, &dc, dcs, enc, ct);
  if (rc == 0)
    rc = request(c, &f, timeout_ms);
  free(ct);
  if (rc == 0) {
    if (c->wait_answer->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED)
      *accept = (int)c->wait_answer->accepted->status;
    else
      rc = SYNOD_EPROTO;
    synod_wire_free(c->wait_answer);
    c->wait_answer = NULL;
  }
  return rc;
}

int tclient_submit_async(tclient_t *c, const uint8_t id[16],
                         const char *recipient, size_t ctlen, uint32_t ttl) {
  if (!c->conn)
    return SYNOD_ECLOSED;
  Synod__V1__Frame f;
  Synod__V1__Submit s;
  Synod__V1__Envelope e;
  Synod__V1__DeviceCiphertext dc, *dcs[1];
  uint8_t enc[32];
  uint8_t *ct = malloc(ctlen + 1);
  if (!ct)
    return SYNOD_ENOMEM;
  int rc =
      build_submit(id, recipient, ctlen, ttl, &f, &s, &e, &dc, dcs, enc, ct);
  if (rc == 0) {
    f.request_id = ++c->next_request;
    rc = synod_conn_send(c->conn, &f);
  }
  free(ct);
  return rc;
}

void tclient_answers(const tclient_t *c, size_t *accepted, size_t *errors) {
  *accepted = c->async_ok;
  *errors = c->async_err;
}

size_t tclient_accepted(const tclient_t *c, uint8_t (*ids)[16], int *status,
                        size_t max) {
  size_t n = c->nacc < max ? c->nacc : max;
  for (size_t i = 0; i < n; i++) {
    if (ids)
      memcpy(ids[i], c->acc_ids[i], 16);
    if (status)
      status[i] = c->acc_status[i];
  }
  return c->nacc;
}

size_t tclient_ack_errors(const tclient_t *c) {
  return c->ack_errors;
}

size_t tclient_accepted_from(const tclient_t *c, size_t from,
                             uint8_t (*ids)[16], int *status, size_t max) {
  size_t n = from < c->nacc ? c->nacc - from : 0;
  if (n > max)
    n = max;
  for (size_t i = 0; i < n; i++) {
    if (ids)
      memcpy(ids[i], c->acc_ids[from + i], 16);
    if (status)
      status[i] = c->acc_status[from + i];
  }
  return c->nacc;
}

int tclient_send(tclient_t *c, const Synod__V1__Frame *f) {
  return c->conn ? synod_conn_send(c->conn, f) : SYNOD_ECLOSED;
}

/* Acknowledges what arrived while nobody was acknowledging (with Ready,
 * say, during tclient_connect). */
static void ack_backlog(tclient_t *c) {
  while (c->acked_upto < c->nrx) {
    size_t n = c->nrx - c->acked_upto;
    if (n > 1024)
      n = 1024;
    uint8_t(*ids)[16] = malloc(n * 16);
    if (!ids)
      return;
    for (size_t i = 0; i < n; i++)
      memcpy(ids[i], c->rx[c->acked_upto + i].id, 16);
    send_ack(c, (const uint8_t(*)[16])ids, n);
    free(ids);
    c->acked_upto += n;
  }
}

int tclient_wait_rx(tclient_t *c, size_t n, int ack, int timeout_ms) {
  c->auto_ack = ack;
  if (ack)
    ack_backlog(c);
  c->timed_out = 0;
  uv_update_time(&c->loop);
  uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  while (c->nrx < n && !c->closed && !c->timed_out)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_timer_stop(&c->timer);
  c->auto_ack = 0;
  if (c->nrx >= n)
    return 0;
  return c->closed ? c->close_status : SYNOD_ETIMEDOUT;
}

const tclient_rx_t *tclient_rx(const tclient_t *c, size_t *n) {
  *n = c->nrx;
  return c->rx;
}

size_t tclient_failures(const tclient_t *c, uint8_t (*ids)[16], int *codes,
                        size_t max) {
  size_t n = c->nfail < max ? c->nfail : max;
  for (size_t i = 0; i < n; i++) {
    if (ids)
      memcpy(ids[i], c->fail_ids[i], 16);
    if (codes)
      codes[i] = c->fail_codes[i];
  }
  return c->nfail;
}

int tclient_wait_failures(tclient_t *c, size_t n, int timeout_ms) {
  c->timed_out = 0;
  uv_update_time(&c->loop);
  uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  while (c->nfail < n && !c->closed && !c->timed_out)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_timer_stop(&c->timer);
  if (c->nfail >= n)
    return 0;
  return c->closed ? c->close_status : SYNOD_ETIMEDOUT;
}

int tclient_ack(tclient_t *c, const uint8_t (*ids)[16], size_t n,
                int timeout_ms) {
  c->last_error = 0;
  send_ack(c, ids, n);
  tclient_run_for(c, timeout_ms);
  return c->last_error;
}

int tclient_purge(tclient_t *c, int scope, const char *peer,
                  const uint8_t (*ids)[16], size_t nids,
                  const uint8_t sign_sk[32], uint64_t *deleted,
                  int timeout_ms) {
  Synod__V1__PurgeBody b;
  synod__v1__purge_body__init(&b);
  ProtobufCBinaryData *bids = calloc(nids + 1, sizeof *bids);
  if (!bids)
    return SYNOD_ENOMEM;
  for (size_t i = 0; i < nids; i++) {
    bids[i].data = synod_wire_lend(ids[i]);
    bids[i].len = 16;
  }
  /* The user id is the one this client authenticated as. */
  b.user_id = c->user_id;
  b.scope = (Synod__V1__PurgeScope)scope;
  b.peer = synod_wire_lend(peer ? peer : "");
  b.message_ids = bids;
  b.n_message_ids = nids;
  b.time = (uint64_t)time(NULL);
  size_t blen = synod__v1__purge_body__get_packed_size(&b);
  uint8_t *body = malloc(blen + 1);
  uint8_t sig[64];
  int rc = body ? 0 : SYNOD_ENOMEM;
  if (rc == 0) {
    synod__v1__purge_body__pack(&b, body);
    rc = synod_sig_sign(sig, SYNOD_SIG_PURGE, body, blen, sign_sk);
  }
  if (rc == 0) {
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__Purge p = SYNOD__V1__PURGE__INIT;
    f.body_case = SYNOD__V1__FRAME__BODY_PURGE;
    f.purge = &p;
    p.body.data = body;
    p.body.len = blen;
    p.signature.data = sig;
    p.signature.len = 64;
    rc = request(c, &f, timeout_ms);
    if (rc == 0) {
      if (c->wait_answer->body_case == SYNOD__V1__FRAME__BODY_PURGE_RESULT)
        *deleted = c->wait_answer->purge_result->deleted;
      else
        rc = SYNOD_EPROTO;
      synod_wire_free(c->wait_answer);
      c->wait_answer = NULL;
    }
  }
  free(body);
  free(bids);
  return rc;
}

int tclient_last_error(const tclient_t *c, const char **reason) {
  if (reason)
    *reason = c->last_reason;
  return c->last_error;
}

void tclient_run_for(tclient_t *c, int ms) {
  c->timed_out = 0;
  uv_update_time(&c->loop);
  uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
  while (!c->timed_out)
    uv_run(&c->loop, UV_RUN_ONCE);
}

void tclient_random_id(uint8_t id[16]) {
  if (synod_random(id, 16) != 0)
    abort();
}

int tclient_request(tclient_t *c, Synod__V1__Frame *f,
                    Synod__V1__Frame **answer, int timeout_ms) {
  *answer = NULL;
  int rc = request(c, f, timeout_ms);
  if (rc == 0)
    *answer = c->wait_answer;
  c->wait_answer = NULL;
  return rc;
}
