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

int synod_client_purge(synod_client_t *c, synod_purge_scope_t scope,
                       const char *peer, const uint8_t (*ids)[16], size_t nids,
                       const synod_client_net_opts_t *opts,
                       synod_purge_result_t *res) {
  if (!res)
    return SYNOD_EINVAL;
  memset(res, 0, sizeof *res);
  if (!c)
    return purge_fail(res, SYNOD_EINVAL, NULL);
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
  Synod__V1__PurgeBody b;
  synod__v1__purge_body__init(&b);
  b.user_id = c->user_id;
  b.scope = (Synod__V1__PurgeScope)scope;
  b.peer = synod_wire_lend(peer ? peer : "");
  b.message_ids = bids;
  b.n_message_ids = nids;
  b.time = opts && opts->now ? opts->now : (uint64_t)time(NULL);
  size_t blen = synod__v1__purge_body__get_packed_size(&b);
  uint8_t *body = malloc(blen + 1);
  uint8_t sig[SYNOD_ED25519_SIG_BYTES];
  int rc = body ? 0 : SYNOD_ENOMEM;
  if (rc == 0) {
    synod__v1__purge_body__pack(&b, body);
    rc = synod_sig_sign(sig, SYNOD_SIG_PURGE, body, blen, c->identity_sk);
  }
  if (rc != 0) {
    free(body);
    free(bids);
    return purge_fail(res, rc, NULL);
  }
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Purge p = SYNOD__V1__PURGE__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PURGE;
  f.purge = &p;
  p.body.data = body;
  p.body.len = blen;
  p.signature.data = sig;
  p.signature.len = sizeof sig;
  fanout_target_t t = {.relay = home, .request = &f};
  rc = fanout_run(c, &t, 1,
                  opts && opts->timeout_ms ? opts->timeout_ms
                                           : DEFAULT_TIMEOUT_MS);
  free(body);
  free(bids);
  if (rc != 0)
    return purge_fail(res, rc, NULL);
  if (t.status != 0)
    rc = purge_fail(res, t.status, t.reason);
  else if (!t.answer ||
           t.answer->body_case != SYNOD__V1__FRAME__BODY_PURGE_RESULT ||
           !t.answer->purge_result)
    rc = purge_fail(res, SYNOD_EPROTO, "the relay did not answer PurgeResult");
  else
    res->deleted = t.answer->purge_result->deleted;
  synod_wire_free(t.answer);
  return rc;
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
