/*
 * Purge (proto/README.md 9) and the profile's device keys: the library
 * side of `synod purge` and `synod keys devices`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "synod/sig.h"
#include "synod/wire.h"

#define DEFAULT_TIMEOUT_MS 5000

static int purge_fail(synod_purge_result_t *res, int rc, const char *why) {
  res->error = rc;
  snprintf(res->reason, sizeof res->reason, "%s",
           why ? why : synod_strerror(rc));
  return rc;
}

typedef struct purge_op {
  synod_client_op_t op; /* first: the handle the caller sees */
  synod_purge_cb cb;
  uint8_t *body; /* the signed PurgeBody */
  size_t blen;
  uint8_t sig[SYNOD_ED25519_SIG_BYTES];
  Synod__V1__Frame f;
  Synod__V1__Purge p;
  fanout_target_t t;
  fanout_t *fan;
  int rc; /* a failure found before anything was sent */
  synod_purge_result_t res;
} purge_op_t;

/* Checks the request and signs the PurgeBody; on failure res says why. */
static int purge_prepare(purge_op_t *po, synod_client_t *c,
                         synod_purge_scope_t scope, const char *peer,
                         const uint8_t (*ids)[16], size_t nids,
                         const synod_client_net_opts_t *opts) {
  synod_purge_result_t *res = &po->res;
  switch (scope) {
  case SYNOD_PURGE_ALL:
    if (peer || nids)
      return purge_fail(res, SYNOD_EINVAL, "ALL takes no peer and no ids");
    break;
  case SYNOD_PURGE_CONVERSATION:
    if (!peer || synod_userid_parse(peer, NULL, NULL) != 0 || nids)
      return purge_fail(res, SYNOD_EINVAL,
                        "CONVERSATION wants a valid peer user id");
    break;
  case SYNOD_PURGE_IDS:
    if (peer || nids == 0 || !ids || nids > SYNOD_PURGE_IDS_MAX)
      return purge_fail(res, SYNOD_EINVAL, "IDS wants 1 to 4096 ids");
    break;
  default:
    return purge_fail(res, SYNOD_EINVAL, "unknown purge scope");
  }
  const char *home_name;
  if (synod_userid_parse(c->user_id, NULL, &home_name) != 0)
    return purge_fail(res, SYNOD_EINVAL, NULL);
  const synod_client_relay_t *home = profile_relay(c, home_name);
  if (!home)
    return purge_fail(res, SYNOD_EUNKNOWNPEER,
                      "the home relay is not in the trust set");

  ProtobufCBinaryData *bids = calloc(nids + 1, sizeof *bids);
  if (!bids)
    return purge_fail(res, SYNOD_ENOMEM, NULL);
  for (size_t i = 0; i < nids; i++) {
    bids[i].data = synod_wire_lend(ids[i]);
    bids[i].len = 16;
  }
  Synod__V1__PurgeBody b = SYNOD__V1__PURGE_BODY__INIT;
  b.user_id = c->user_id;
  b.scope = (Synod__V1__PurgeScope)scope;
  b.peer = synod_wire_lend(peer ? peer : "");
  b.message_ids = bids;
  b.n_message_ids = nids;
  b.time = opts && opts->now ? opts->now : (uint64_t)time(NULL);
  po->blen = synod__v1__purge_body__get_packed_size(&b);
  po->body = malloc(po->blen + 1);
  int rc = po->body ? 0 : SYNOD_ENOMEM;
  if (rc == 0) {
    synod__v1__purge_body__pack(&b, po->body);
    rc = synod_sig_sign(po->sig, SYNOD_SIG_PURGE, po->body, po->blen,
                        c->identity_sk);
  }
  free(bids);
  if (rc != 0)
    return purge_fail(res, rc, NULL);
  synod__v1__frame__init(&po->f);
  synod__v1__purge__init(&po->p);
  po->f.body_case = SYNOD__V1__FRAME__BODY_PURGE;
  po->f.purge = &po->p;
  po->p.body.data = po->body;
  po->p.body.len = po->blen;
  po->p.signature.data = po->sig;
  po->p.signature.len = sizeof po->sig;
  po->t = (fanout_target_t){.relay = home, .request = &po->f};
  return 0;
}

static void purge_cancel(synod_client_op_t *op) {
  fanout_cancel(((purge_op_t *)op)->fan);
}

static void purge_done(void *arg) {
  purge_op_t *po = arg;
  po->fan = NULL;
  synod_purge_result_t *res = &po->res;
  fanout_target_t *t = &po->t;
  int rc = po->rc;
  if (po->op.canceled || !po->op.c)
    rc = purge_fail(res, SYNOD_ECANCELED, "the purge was canceled");
  else if (rc != 0)
    ; /* res already says why */
  else if (t->status != 0)
    rc = purge_fail(res, t->status, t->reason);
  else if (!t->answer ||
           t->answer->body_case != SYNOD__V1__FRAME__BODY_PURGE_RESULT ||
           !t->answer->purge_result)
    rc = purge_fail(res, SYNOD_EPROTO, "the relay did not answer PurgeResult");
  else
    res->deleted = t->answer->purge_result->deleted;
  synod_wire_free(t->answer);
  free(po->body);
  op_detach(&po->op);
  po->op.finished = 1;
  po->cb(&po->op, rc, res);
  free(po);
}

int synod_client_purge_start(synod_client_t *c, uv_loop_t *loop,
                             synod_purge_scope_t scope, const char *peer,
                             const uint8_t (*ids)[16], size_t nids,
                             const synod_client_net_opts_t *opts,
                             synod_purge_cb cb, void *data,
                             synod_client_op_t **op) {
  if (op)
    *op = NULL;
  if (!c || !loop || !cb)
    return SYNOD_EINVAL;
  purge_op_t *po = calloc(1, sizeof *po);
  if (!po)
    return SYNOD_ENOMEM;
  po->cb = cb;
  /* A request refused here is reported like the network's failures:
   * through cb, from the loop (a round of no relay). */
  po->rc = purge_prepare(po, c, scope, peer, ids, nids, opts);
  int rc = fanout_start(&po->fan, c, loop, &po->t, po->rc ? 0 : 1,
                        opts && opts->timeout_ms ? opts->timeout_ms
                                                 : DEFAULT_TIMEOUT_MS,
                        purge_done, po);
  if (rc != 0) {
    free(po->body);
    free(po);
    return rc;
  }
  op_init(&po->op, c, loop, data, purge_cancel, 1);
  if (op)
    *op = &po->op;
  return 0;
}

/* --- the blocking purge: the same operation on a private loop ------------- */

typedef struct purge_wait {
  synod_client_t *c;
  synod_purge_scope_t scope;
  const char *peer;
  const uint8_t (*ids)[16];
  size_t nids;
  const synod_client_net_opts_t *opts;
  synod_purge_result_t *res;
  int rc;
} purge_wait_t;

static void purge_wait_cb(synod_client_op_t *op, int status,
                          synod_purge_result_t *res) {
  purge_wait_t *w = synod_client_op_data(op);
  w->rc = status;
  *w->res = *res;
}

static int purge_wait_start(uv_loop_t *loop, void *arg) {
  purge_wait_t *w = arg;
  synod_client_op_t *op = NULL;
  int rc = synod_client_purge_start(w->c, loop, w->scope, w->peer, w->ids,
                                    w->nids, w->opts, purge_wait_cb, w, &op);
  if (rc == 0)
    op_detach(op); /* blocking: nobody can close the client meanwhile */
  return rc;
}

int synod_client_purge(synod_client_t *c, synod_purge_scope_t scope,
                       const char *peer, const uint8_t (*ids)[16], size_t nids,
                       const synod_client_net_opts_t *opts,
                       synod_purge_result_t *res) {
  if (!res)
    return SYNOD_EINVAL;
  memset(res, 0, sizeof *res);
  purge_wait_t w = {.c = c,
                    .scope = scope,
                    .peer = peer,
                    .ids = ids,
                    .nids = nids,
                    .opts = opts,
                    .res = res};
  int rc = op_run_private(purge_wait_start, &w);
  return rc ? purge_fail(res, rc, NULL) : w.rc;
}

void synod_client_devices(const synod_client_t *c, synod_client_device_t *out,
                          size_t max, size_t *n, uint64_t *registered) {
  if (n)
    *n = 1;
  if (registered)
    *registered = c->nself ? c->self[c->nself - 1].version : 0;
  if (out && max >= 1) {
    memset(&out[0], 0, sizeof out[0]);
    out[0].device_id = c->device_id;
    snprintf(out[0].name, sizeof out[0].name, "%s", c->device_name);
    memcpy(out[0].x25519_key, c->device_pk, sizeof out[0].x25519_key);
    out[0].created = c->created;
    out[0].current = 1;
  }
}
