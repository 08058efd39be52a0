/*
 * Relay statements (lib/statement.c): lookup-answer verification,
 * namespace countersignature verification and equivocation-proof
 * verification, with the fixture relays' keys.
 *
 * Input: one byte choosing the check (mod 3: lookup answer,
 * countersignature, proof), one choosing the relay whose key verifies
 * (mod 3), a freshness window byte (0: the default, else minutes), then the
 * LookupAnswer, Countersignature or EquivocationProof bytes.
 * Checks: an authentic statement names a valid relay and user, version 0
 * comes with an all-zero head hash and only then; ESTALE returns the
 * content, other errors zero it; a valid proof names two different
 * hashes and, rebuilt with synod_proof_build() from its two statements,
 * gives the same verdict and the same proof in either order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "synod/statement.h"
#include "synod/userid.h"
#include "synod/wire.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_statement: %s\n", what);
    abort();
  }
}

static int zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

static void lookup(const uint8_t *pk, uint64_t window, const uint8_t *data,
                   size_t size) {
  ProtobufCMessage *m;
  if (synod_wire_unpack_message(&synod__v1__lookup_answer__descriptor, data,
                                size, &m) != 0)
    return;
  synod_lookup_info_t info;
  int rc = synod_lookup_verify(&info, (Synod__V1__LookupAnswer *)m, pk, FX_NOW,
                               window);
  fx_trace("lookup answer -> %s", synod_err_name(rc));
  if (rc == 0 || rc == SYNOD_ESTALE) {
    check(synod_userid_parse(info.user_id, NULL, NULL) == 0 &&
              synod_relay_name_check(info.relay_name) == 0,
          "an authentic answer with a bad user or relay name");
    check((info.version == 0) == zero(info.head_hash, 32),
          "version 0 and an empty head hash disagree");
    uint64_t w = window ? window : SYNOD_LOOKUP_FRESHNESS_DEFAULT;
    int fresh = info.time + w >= FX_NOW &&
                info.time <= FX_NOW + SYNOD_STATEMENT_MAX_SKEW;
    check(fresh == (rc == 0), "freshness decided wrongly");
  } else {
    check(zero(&info, sizeof info), "an error left content");
  }
  synod_wire_free_message(m);
}

static void countersig(const uint8_t *pk, const uint8_t *data, size_t size) {
  ProtobufCMessage *m;
  if (synod_wire_unpack_message(&synod__v1__countersignature__descriptor, data,
                                size, &m) != 0)
    return;
  synod_countersig_info_t info;
  int rc = synod_countersig_verify(&info, (Synod__V1__Countersignature *)m, pk,
                                   FX_NOW);
  fx_trace("countersignature -> %s", synod_err_name(rc));
  if (rc == 0) {
    const char *home;
    check(synod_userid_parse(info.user_id, NULL, &home) == 0 &&
              strcmp(home, info.relay_name) == 0 && info.version >= 1 &&
              info.time <= FX_NOW + SYNOD_STATEMENT_MAX_SKEW,
          "a countersignature not by the home relay, or dated ahead");
  } else {
    check(zero(&info, sizeof info), "an error left content");
  }
  synod_wire_free_message(m);
}

static void proof(const fx_keys_t *keys, const uint8_t *data, size_t size) {
  ProtobufCMessage *m;
  if (synod_wire_unpack_message(&synod__v1__equivocation_proof__descriptor,
                                data, size, &m) != 0)
    return;
  Synod__V1__EquivocationProof *p = (Synod__V1__EquivocationProof *)m;
  synod_proof_verdict_t v;
  int rc = synod_proof_verify(&v, p, keys->relay_keys, FX_NRELAYS);
  fx_trace("proof -> %s", synod_err_name(rc));
  if (rc != 0) {
    check(zero(&v, sizeof v), "an error left a verdict");
    synod_wire_free_message(m);
    return;
  }
  check(v.kind == p->kind && memcmp(v.first_hash, v.second_hash, 32) != 0,
        "a proof of two statements that agree");
  check(synod_userid_parse(v.user_id, NULL, NULL) == 0,
        "a proof about a malformed user");
  synod_proof_t a, b;
  synod_proof_verdict_t va, vb;
  check(synod_proof_build(&a, &va, p->kind, p->first, p->second,
                          keys->relay_keys, FX_NRELAYS) == 0 &&
            synod_proof_build(&b, &vb, p->kind, p->second, p->first,
                              keys->relay_keys, FX_NRELAYS) == 0,
        "a valid proof does not rebuild");
  check(strcmp(va.user_id, v.user_id) == 0 && va.version == v.version &&
            memcmp(va.key, v.key, 32) == 0 &&
            strcmp(va.relay_name, v.relay_name) == 0,
        "the rebuilt proof names another culprit");
  check(a.first.body_len == b.first.body_len &&
            memcmp(a.first.body, b.first.body, a.first.body_len) == 0 &&
            a.second.body_len == b.second.body_len &&
            memcmp(a.second.body, b.second.body, a.second.body_len) == 0,
        "proof order is not canonical");
  synod_proof_free(&a);
  synod_proof_free(&b);
  synod_wire_free_message(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const fx_keys_t *keys = fx_keys();
  fx_in_t in = {data, size};
  uint8_t kind = fx_byte(&in) % 3, relay = fx_byte(&in) % FX_NRELAYS;
  uint64_t window = 60u * fx_byte(&in);
  switch (kind) {
  case 0:
    lookup(keys->relay_pk[relay], window, in.p, in.n);
    break;
  case 1:
    countersig(keys->relay_pk[relay], in.p, in.n);
    break;
  default:
    proof(keys, in.p, in.n);
    break;
  }
  return 0;
}
