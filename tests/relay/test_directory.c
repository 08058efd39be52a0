/*
 * Integration suite: the key directory on real relays and a real
 * PostgreSQL (proto/README.md section 7). A client publishes to its home
 * relay and then to the other relays of its federation, looks itself up
 * everywhere, a relay stopped during publication catches up through the
 * heads exchange, and an equivocating announcement becomes a proof that
 * every relay serves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "synod/announce.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"
#include "synod/statement.h"
#include "synod/wire.h"
#include "tclient.h"
#include "tusers.h"

#define T_MS 10000
/* How long a relay may take to converge through gossip. */
#define CONVERGE_MS 20000

static uint64_t now_s(void) {
  return (uint64_t)time(NULL);
}

/* A signed announcement of user with one device, chained on prev. */
static void announce(synod_announcement_t *a, const char *user,
                     uint64_t version, const synod_announcement_t *prev,
                     const uint8_t sk[32], const uint8_t *prev_sk,
                     uint8_t device_byte) {
  synod_device_t d = {.device_id = 1, .name = "laptop"};
  memset(d.x25519_key, device_byte, sizeof d.x25519_key);
  uint8_t prev_hash[32];
  if (prev)
    CU_ASSERT_EQUAL_FATAL(
        synod_announce_hash(prev_hash, prev->body, prev->body_len), 0);
  synod_announce_params_t p = {
      .user_id = user,
      .devices = &d,
      .ndevices = 1,
      .version = version,
      .time = now_s(),
      .prev_hash = prev ? prev_hash : NULL,
  };
  CU_ASSERT_EQUAL_FATAL(synod_announce_sign(a, &p, sk, prev_sk), 0);
}

/* Publish a with the countersignatures cs[0..ncs). 0 with *result (when
 * not NULL, owned: synod_wire_free), or the relay's error code. */
static int publish(tclient_t *c, const synod_announcement_t *a,
                   Synod__V1__Countersignature **cs, size_t ncs,
                   Synod__V1__Frame **result) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Publish p = SYNOD__V1__PUBLISH__INIT;
  Synod__V1__Announcement w;
  synod_announcement_lend(&w, a);
  f.body_case = SYNOD__V1__FRAME__BODY_PUBLISH;
  f.publish = &p;
  p.announcement = &w;
  p.countersignatures = cs;
  p.n_countersignatures = ncs;
  Synod__V1__Frame *ans = NULL;
  int rc;
  /* "Try later" (a relay whose database connection is still coming up, or
   * whose chain changed under it) is retried, as a real client does. */
  for (int i = 0;; i++) {
    rc = tclient_request(c, &f, &ans, T_MS);
    if (rc != SYNOD_EAGAIN || i == 50)
      break;
    tclient_run_for(c, 100);
  }
  if (rc != 0)
    fprintf(stderr, "publish: %s\n", synod_err_name(rc));
  if (rc == 0) {
    CU_ASSERT_EQUAL(ans->body_case, SYNOD__V1__FRAME__BODY_PUBLISH_RESULT);
    if (result)
      *result = ans;
    else
      synod_wire_free(ans);
  }
  return rc;
}

/* A LookupAnswer of r for user from from_version, verified with r's key:
 * 0 with *info and *answer (owned), or an error code. */
static int lookup(tclient_t *c, fixture_relay_t *r, const char *user,
                  uint64_t from_version, synod_lookup_info_t *info,
                  Synod__V1__Frame **answer) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__LookupRequest q = SYNOD__V1__LOOKUP_REQUEST__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
  f.lookup_request = &q;
  q.user_id = synod_wire_lend(user);
  q.from_version = from_version;
  Synod__V1__Frame *ans = NULL;
  int rc = tclient_request(c, &f, &ans, T_MS);
  if (rc != 0)
    return rc;
  if (ans->body_case != SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER) {
    synod_wire_free(ans);
    return SYNOD_EPROTO;
  }
  rc = synod_lookup_verify(info, ans->lookup_answer,
                           fixture_relay_public_key(r), now_s(), 0);
  if (rc == 0 && (strcmp(info->relay_name, fixture_relay_name(r)) != 0 ||
                  strcmp(info->user_id, user) != 0))
    rc = SYNOD_EVERIFY;
  if (rc != 0 || !answer)
    synod_wire_free(ans);
  else
    *answer = ans;
  return rc;
}

/* Looks user up at r until its head is version (CONVERGE_MS). */
static int wait_head(tclient_t *c, fixture_relay_t *r, const char *user,
                     uint64_t version, uint8_t head[32]) {
  for (int waited = 0; waited < CONVERGE_MS; waited += 100) {
    synod_lookup_info_t li;
    if (lookup(c, r, user, 0, &li, NULL) == 0 && li.version == version) {
      if (head)
        memcpy(head, li.head_hash, 32);
      return 0;
    }
    tclient_run_for(c, 100);
  }
  return SYNOD_ETIMEDOUT;
}

/* The proofs r serves about user: 0 with *list (owned). */
static int proofs(tclient_t *c, const char *user, Synod__V1__Frame **list) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__ProofRequest q = SYNOD__V1__PROOF_REQUEST__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PROOF_REQUEST;
  f.proof_request = &q;
  q.user_id = synod_wire_lend(user);
  int rc = tclient_request(c, &f, list, T_MS);
  if (rc == 0 && (*list)->body_case != SYNOD__V1__FRAME__BODY_PROOF_LIST) {
    synod_wire_free(*list);
    *list = NULL;
    return SYNOD_EPROTO;
  }
  return rc;
}

/* The head of user in r's database as hex ("" when none). */
static void db_head(fixture_relay_t *r, const char *user, char *out,
                    size_t outlen) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT version || ':' || encode(hash, 'hex') FROM announcements"
           " WHERE user_id = '%s' ORDER BY version DESC LIMIT 1",
           user);
  CU_ASSERT_EQUAL(fixture_pg_query(fixture_relay_pg(r), sql, out, outlen), 0);
}

/* A visitor session of u at relay r (a relay that is not u's home). */
static tclient_t *visit(tuser_t *u, const uint8_t sk[32], fixture_relay_t *r) {
  tclient_t *c = NULL;
  for (int i = 0; i < 50 && !c; i++) {
    if (tclient_connect(&c, fixture_relay_port(r), fixture_relay_public_key(r),
                        u->id, sk, NULL, T_MS) != 0)
      usleep(100000);
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  return c;
}

static void test_publish_lookup_gossip(void) {
  fixture_t *fx = tuser_federation("dir_publish", 3, 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  tuser_t alice;
  tuser_make(&alice, ra, "alice");
  tclient_t *ca = tuser_login(&alice);
  tclient_t *cb = visit(&alice, alice.sk, rb);
  tclient_t *cc = visit(&alice, alice.sk, rc);

  /* Version 1 at the home relay: stored and countersigned. */
  synod_announcement_t v1, v2, v3, v3x;
  announce(&v1, alice.id, 1, NULL, alice.sk, NULL, 0x11);
  uint8_t h1[32];
  CU_ASSERT_EQUAL(synod_announce_hash(h1, v1.body, v1.body_len), 0);
  Synod__V1__Frame *res = NULL;
  CU_ASSERT_EQUAL_FATAL(publish(ca, &v1, NULL, 0, &res), 0);
  Synod__V1__PublishResult *pr = res->publish_result;
  CU_ASSERT_EQUAL(pr->version, 1);
  CU_ASSERT(pr->announcement_hash.len == 32 &&
            memcmp(pr->announcement_hash.data, h1, 32) == 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pr->countersignature);
  synod_countersig_info_t ci;
  CU_ASSERT_EQUAL(synod_countersig_verify(&ci, pr->countersignature,
                                          fixture_relay_public_key(ra),
                                          now_s()),
                  0);
  CU_ASSERT_STRING_EQUAL(ci.relay_name, "relay-a");
  CU_ASSERT_EQUAL(ci.version, 1);
  CU_ASSERT_EQUAL(memcmp(ci.announcement_hash, h1, 32), 0);
  /* Publishing the same bytes again is harmless. */
  CU_ASSERT_EQUAL(publish(ca, &v1, NULL, 0, NULL), 0);

  /* Another relay: only with the home relay's countersignature. */
  CU_ASSERT_EQUAL(publish(cb, &v1, NULL, 0, NULL), SYNOD_ECHAIN);
  uint8_t fpk[32], fsk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(fpk, fsk), 0);
  synod_countersig_info_t forged = ci;
  synod_signed_t fs;
  CU_ASSERT_EQUAL_FATAL(synod_countersig_sign(&fs, &forged, fsk), 0);
  Synod__V1__Countersignature fw = SYNOD__V1__COUNTERSIGNATURE__INIT;
  synod_signed_lend(&fw.body, &fw.signature, &fs);
  Synod__V1__Countersignature *fwp = &fw;
  CU_ASSERT_EQUAL(publish(cb, &v1, &fwp, 1, NULL), SYNOD_EVERIFY);
  synod_signed_free(&fs);
  /* (relay-b may hold it already: relay-a gossiped it on acceptance.) */
  Synod__V1__Frame *res_b = NULL;
  CU_ASSERT_EQUAL(publish(cb, &v1, &pr->countersignature, 1, &res_b), 0);
  if (res_b) {
    CU_ASSERT_EQUAL(res_b->publish_result->version, 1);
    CU_ASSERT_PTR_NULL(res_b->publish_result->countersignature);
    synod_wire_free(res_b);
  }
  synod_wire_free(res);

  /* relay-c heard of it by gossip; every relay answers with a fresh
   * signed statement naming the same head. */
  uint8_t head[32];
  CU_ASSERT_EQUAL(wait_head(cc, rc, alice.id, 1, head), 0);
  CU_ASSERT_EQUAL(memcmp(head, h1, 32), 0);
  fixture_relay_t *all[3] = {ra, rb, rc};
  tclient_t *cl[3] = {ca, cb, cc};
  for (int i = 0; i < 3; i++) {
    synod_lookup_info_t li;
    Synod__V1__Frame *ans = NULL;
    CU_ASSERT_EQUAL_FATAL(lookup(cl[i], all[i], alice.id, 0, &li, &ans), 0);
    CU_ASSERT_EQUAL(li.version, 1);
    CU_ASSERT_EQUAL(memcmp(li.head_hash, h1, 32), 0);
    CU_ASSERT(li.time + 5 >= now_s());
    Synod__V1__LookupAnswer *la = ans->lookup_answer;
    CU_ASSERT_EQUAL_FATAL(la->n_announcements, 1);
    CU_ASSERT_EQUAL_FATAL(la->n_countersignatures, 1);
    const Synod__V1__Announcement *links[1] = {la->announcements[0]};
    synod_chain_outcome_t out;
    CU_ASSERT_EQUAL(synod_chain_check(&out, alice.id, NULL, links, 1, now_s()),
                    0);
    CU_ASSERT_EQUAL(synod_countersig_verify(&ci, la->countersignatures[0],
                                            fixture_relay_public_key(ra),
                                            now_s()),
                    0);
    synod_wire_free(ans);
  }
  /* Nobody: a signed "none known". */
  synod_lookup_info_t none;
  CU_ASSERT_EQUAL(lookup(cb, rb, "nobody@relay-a", 0, &none, NULL), 0);
  CU_ASSERT_EQUAL(none.version, 0);

  /* relay-c is down while alice changes her identity key (with
   * continuity) and publishes version 2 at relay-a and relay-b. */
  tclient_close(cc);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(rc), 0);
  uint8_t pk2[32], sk2[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk2, sk2), 0);
  announce(&v2, alice.id, 2, &v1, sk2, alice.sk, 0x22);
  uint8_t h2[32];
  CU_ASSERT_EQUAL(synod_announce_hash(h2, v2.body, v2.body_len), 0);
  res = NULL;
  CU_ASSERT_EQUAL_FATAL(publish(ca, &v2, NULL, 0, &res), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res->publish_result->countersignature);
  CU_ASSERT_EQUAL(
      publish(cb, &v2, &res->publish_result->countersignature, 1, NULL), 0);
  synod_wire_free(res);
  /* The account follows its newest announcement: the new key logs in. */
  char hex[256];
  CU_ASSERT_EQUAL(fixture_pg_query(fixture_relay_pg(ra),
                                   "SELECT encode(identity_key, 'hex') FROM"
                                   " accounts WHERE name = 'alice'",
                                   hex, sizeof hex),
                  0);
  char want[65];
  for (int i = 0; i < 32; i++)
    snprintf(want + 2 * i, 3, "%02x", pk2[i]);
  CU_ASSERT_STRING_EQUAL(hex, want);
  tclient_t *cnew = NULL;
  CU_ASSERT_EQUAL(tclient_connect(&cnew, fixture_relay_port(ra),
                                  fixture_relay_public_key(ra), alice.id, sk2,
                                  NULL, T_MS),
                  0);

  /* relay-c comes back and converges through the heads exchange. */
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(rc), 0);
  cc = visit(&alice, sk2, rc);
  CU_ASSERT_EQUAL(wait_head(cc, rc, alice.id, 2, head), 0);
  CU_ASSERT_EQUAL(memcmp(head, h2, 32), 0);
  char da[128], db[128], dc[128];
  db_head(ra, alice.id, da, sizeof da);
  db_head(rb, alice.id, db, sizeof db);
  db_head(rc, alice.id, dc, sizeof dc);
  CU_ASSERT_STRING_EQUAL(da, db);
  CU_ASSERT_STRING_EQUAL(da, dc);
  CU_ASSERT(da[0] == '2');
  CU_ASSERT_EQUAL(tuser_q(rc, "SELECT count(*) FROM countersignatures"), 2);

  /* A lookup from the pin at version 1 gets the link it lacks. */
  synod_lookup_info_t li;
  Synod__V1__Frame *ans = NULL;
  CU_ASSERT_EQUAL_FATAL(lookup(cc, rc, alice.id, 1, &li, &ans), 0);
  CU_ASSERT_EQUAL(li.version, 2);
  CU_ASSERT_EQUAL(ans->lookup_answer->n_announcements, 1);
  synod_wire_free(ans);

  /* Two different version 3, both signed by alice's key: the second is
   * refused, becomes a proof, and every relay serves it. */
  announce(&v3, alice.id, 3, &v2, sk2, NULL, 0x33);
  announce(&v3x, alice.id, 3, &v2, sk2, NULL, 0x44);
  CU_ASSERT_EQUAL(publish(cnew, &v3, NULL, 0, NULL), 0);
  CU_ASSERT_EQUAL(publish(cnew, &v3x, NULL, 0, NULL), SYNOD_EEQUIVOCATION);
  Synod__V1__Frame *pl = NULL;
  CU_ASSERT_EQUAL_FATAL(proofs(cnew, alice.id, &pl), 0);
  CU_ASSERT_EQUAL_FATAL(pl->proof_list->n_proofs, 1);
  synod_proof_verdict_t v;
  CU_ASSERT_EQUAL(synod_proof_verify(&v, pl->proof_list->proofs[0], NULL, 0),
                  0);
  CU_ASSERT_EQUAL(v.kind,
                  SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT);
  CU_ASSERT_EQUAL(v.version, 3);
  CU_ASSERT_EQUAL(memcmp(v.key, pk2, 32), 0);
  synod_wire_free(pl);
  /* Gossiped: relay-b serves it too. */
  int seen = 0;
  for (int waited = 0; waited < CONVERGE_MS && !seen; waited += 100) {
    pl = NULL;
    if (proofs(cb, alice.id, &pl) == 0 && pl->proof_list->n_proofs == 1)
      seen = synod_proof_verify(&v, pl->proof_list->proofs[0], NULL, 0) == 0;
    synod_wire_free(pl);
    if (!seen)
      tclient_run_for(cb, 100);
  }
  CU_ASSERT(seen);
  /* Frozen: nothing newer is accepted for alice. */
  synod_announcement_t v4;
  announce(&v4, alice.id, 4, &v3, sk2, NULL, 0x55);
  CU_ASSERT_EQUAL(publish(cnew, &v4, NULL, 0, NULL), SYNOD_EEQUIVOCATION);
  /* Lookups carry the proof. */
  ans = NULL;
  CU_ASSERT_EQUAL_FATAL(lookup(cnew, ra, alice.id, 0, &li, &ans), 0);
  CU_ASSERT_EQUAL(li.version, 3);
  CU_ASSERT_EQUAL(ans->lookup_answer->n_proofs, 1);
  synod_wire_free(ans);

  synod_announcement_free(&v1);
  synod_announcement_free(&v2);
  synod_announcement_free(&v3);
  synod_announcement_free(&v3x);
  synod_announcement_free(&v4);
  tclient_close(ca);
  tclient_close(cb);
  tclient_close(cc);
  tclient_close(cnew);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* A client may publish only its own announcements, and only with its key. */
static void test_publish_refusals(void) {
  fixture_t *fx = tuser_federation("dir_refusals", 2, 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0);
  tuser_t alice, bob;
  tuser_make(&alice, ra, "alice");
  tuser_make(&bob, ra, "bob");
  tclient_t *ca = tuser_login(&alice);
  synod_announcement_t a;
  /* bob's announcement sent by alice */
  announce(&a, bob.id, 1, NULL, bob.sk, NULL, 0x11);
  CU_ASSERT_EQUAL(publish(ca, &a, NULL, 0, NULL), SYNOD_EDENIED);
  synod_announcement_free(&a);
  /* alice's user id, another key */
  uint8_t pk[32], sk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  announce(&a, alice.id, 1, NULL, sk, NULL, 0x11);
  CU_ASSERT_EQUAL(publish(ca, &a, NULL, 0, NULL), SYNOD_EDENIED);
  synod_announcement_free(&a);
  /* a gap: version 2 first */
  announce(&a, alice.id, 1, NULL, alice.sk, NULL, 0x11);
  synod_announcement_t b;
  announce(&b, alice.id, 2, &a, alice.sk, NULL, 0x12);
  CU_ASSERT_EQUAL(publish(ca, &b, NULL, 0, NULL), SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(publish(ca, &a, NULL, 0, NULL), 0);
  CU_ASSERT_EQUAL(publish(ca, &b, NULL, 0, NULL), 0);
  CU_ASSERT_EQUAL(tuser_q(ra, "SELECT count(*) FROM announcements"), 2);

  /* CountersignRequest: the stored countersignature, ENOENT for a version
   * not held, EEQUIVOCATION for another hash. */
  uint8_t hb[32];
  CU_ASSERT_EQUAL(synod_announce_hash(hb, b.body, b.body_len), 0);
  for (int k = 0; k < 3; k++) {
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__CountersignRequest q = SYNOD__V1__COUNTERSIGN_REQUEST__INIT;
    uint8_t other[32];
    memset(other, 0x5a, sizeof other);
    f.body_case = SYNOD__V1__FRAME__BODY_COUNTERSIGN_REQUEST;
    f.countersign_request = &q;
    q.user_id = alice.id;
    q.version = k == 1 ? 3 : 2;
    q.announcement_hash.data = k == 2 ? other : hb;
    q.announcement_hash.len = 32;
    Synod__V1__Frame *ans = NULL;
    int rc = tclient_request(ca, &f, &ans, T_MS);
    if (k == 0) {
      CU_ASSERT_EQUAL_FATAL(rc, 0);
      CU_ASSERT_EQUAL_FATAL(ans->body_case,
                            SYNOD__V1__FRAME__BODY_COUNTERSIGN_RESPONSE);
      synod_countersig_info_t ci;
      CU_ASSERT_EQUAL(synod_countersig_verify(
                          &ci, ans->countersign_response->countersignature,
                          fixture_relay_public_key(ra), now_s()),
                      0);
      CU_ASSERT_EQUAL(ci.version, 2);
      CU_ASSERT_EQUAL(memcmp(ci.announcement_hash, hb, 32), 0);
      synod_wire_free(ans);
    } else {
      CU_ASSERT_EQUAL(rc, k == 1 ? SYNOD_ENOENT : SYNOD_EEQUIVOCATION);
    }
  }
  synod_announcement_free(&a);
  synod_announcement_free(&b);
  tclient_close(ca);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* The home relay lies: it countersigns a substituted key for a version it
 * already vouched for. Another relay that holds the first countersignature
 * refuses the second, stores the proof naming the home relay, serves it and
 * gossips it, and keeps answering with the honest head. */
static void test_home_equivocates(void) {
  fixture_t *fx = tuser_federation("dir_home_lies", 3, 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  tuser_t alice;
  tuser_make(&alice, ra, "alice");
  tclient_t *ca = tuser_login(&alice);
  tclient_t *cb = visit(&alice, alice.sk, rb);
  synod_announcement_t v1, evil;
  announce(&v1, alice.id, 1, NULL, alice.sk, NULL, 0x11);
  Synod__V1__Frame *res = NULL;
  CU_ASSERT_EQUAL_FATAL(publish(ca, &v1, NULL, 0, &res), 0);
  CU_ASSERT_EQUAL(
      publish(cb, &v1, &res->publish_result->countersignature, 1, NULL), 0);
  synod_wire_free(res);

  /* relay-a's operator (its key file) vouches for another key. */
  char path[512];
  snprintf(path, sizeof path, "%s/relay.key", fixture_relay_dir(ra));
  uint8_t rsk[32], epk[32], esk[32];
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_read_secret(rsk, SYNOD_KEY_ED25519, path),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(epk, esk), 0);
  announce(&evil, alice.id, 1, NULL, esk, NULL, 0x66);
  synod_countersig_info_t ci;
  memset(&ci, 0, sizeof ci);
  snprintf(ci.user_id, sizeof ci.user_id, "%s", alice.id);
  ci.version = 1;
  CU_ASSERT_EQUAL(
      synod_announce_hash(ci.announcement_hash, evil.body, evil.body_len), 0);
  snprintf(ci.relay_name, sizeof ci.relay_name, "relay-a");
  ci.time = now_s();
  synod_signed_t cs;
  CU_ASSERT_EQUAL_FATAL(synod_countersig_sign(&cs, &ci, rsk), 0);
  Synod__V1__Countersignature w = SYNOD__V1__COUNTERSIGNATURE__INIT;
  synod_signed_lend(&w.body, &w.signature, &cs);
  Synod__V1__Countersignature *wp = &w;
  tclient_t *ce = visit(&alice, esk, rb);
  CU_ASSERT_EQUAL(publish(ce, &evil, &wp, 1, NULL), SYNOD_EEQUIVOCATION);
  synod_signed_free(&cs);

  synod_relay_key_t keys[1] = {{.name = "relay-a"}};
  memcpy(keys[0].key, fixture_relay_public_key(ra), 32);
  Synod__V1__Frame *pl = NULL;
  CU_ASSERT_EQUAL_FATAL(proofs(cb, alice.id, &pl), 0);
  CU_ASSERT_EQUAL_FATAL(pl->proof_list->n_proofs, 1);
  synod_proof_verdict_t v;
  CU_ASSERT_EQUAL(synod_proof_verify(&v, pl->proof_list->proofs[0], keys, 1),
                  0);
  CU_ASSERT_EQUAL(
      v.kind, SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE);
  CU_ASSERT_STRING_EQUAL(v.relay_name, "relay-a");
  synod_wire_free(pl);

  /* The honest head stays, and the answer carries the proof. */
  uint8_t h1[32];
  CU_ASSERT_EQUAL(synod_announce_hash(h1, v1.body, v1.body_len), 0);
  synod_lookup_info_t li;
  Synod__V1__Frame *ans = NULL;
  CU_ASSERT_EQUAL_FATAL(lookup(cb, rb, alice.id, 0, &li, &ans), 0);
  CU_ASSERT_EQUAL(li.version, 1);
  CU_ASSERT_EQUAL(memcmp(li.head_hash, h1, 32), 0);
  CU_ASSERT_EQUAL(ans->lookup_answer->n_proofs, 1);
  synod_wire_free(ans);

  /* Gossiped: relay-c serves the proof against relay-a. */
  tclient_t *cc = visit(&alice, alice.sk, rc);
  int seen = 0;
  for (int waited = 0; waited < CONVERGE_MS && !seen; waited += 100) {
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__ProofRequest q = SYNOD__V1__PROOF_REQUEST__INIT;
    f.body_case = SYNOD__V1__FRAME__BODY_PROOF_REQUEST;
    f.proof_request = &q;
    q.relay_name = synod_wire_lend("relay-a");
    pl = NULL;
    if (tclient_request(cc, &f, &pl, T_MS) == 0 &&
        pl->body_case == SYNOD__V1__FRAME__BODY_PROOF_LIST &&
        pl->proof_list->n_proofs == 1)
      seen = synod_proof_verify(&v, pl->proof_list->proofs[0], keys, 1) == 0;
    synod_wire_free(pl);
    if (!seen)
      tclient_run_for(cc, 100);
  }
  CU_ASSERT(seen);

  synod_wipe(rsk, sizeof rsk);
  synod_announcement_free(&v1);
  synod_announcement_free(&evil);
  tclient_close(ca);
  tclient_close(cb);
  tclient_close(cc);
  tclient_close(ce);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* A relay that missed a push (here: its rows deleted behind its back)
 * and then receives the next one asks the pushing peer for the links
 * between, without waiting for a reconnection. */
static void test_gap_fetch(void) {
  fixture_t *fx = tuser_federation("dir_gap", 2, 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1);
  tuser_t alice;
  tuser_make(&alice, ra, "alice");
  tclient_t *ca = tuser_login(&alice);
  tclient_t *cb = visit(&alice, alice.sk, rb);
  synod_announcement_t v1, v2;
  announce(&v1, alice.id, 1, NULL, alice.sk, NULL, 0x11);
  announce(&v2, alice.id, 2, &v1, alice.sk, NULL, 0x12);
  CU_ASSERT_EQUAL(publish(ca, &v1, NULL, 0, NULL), 0);
  CU_ASSERT_EQUAL(wait_head(cb, rb, alice.id, 1, NULL), 0);
  CU_ASSERT_EQUAL(fixture_pg_query(fixture_relay_pg(rb),
                                   "DELETE FROM announcements", NULL, 0),
                  0);
  CU_ASSERT_EQUAL(publish(ca, &v2, NULL, 0, NULL), 0);
  CU_ASSERT_EQUAL(wait_head(cb, rb, alice.id, 2, NULL), 0);
  CU_ASSERT_EQUAL(tuser_q(rb, "SELECT count(*) FROM announcements"), 2);
  synod_announcement_free(&v1);
  synod_announcement_free(&v2);
  tclient_close(ca);
  tclient_close(cb);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* More users than fetches allowed in flight on a link: a relay that was
 * down while they all published converges on every one, and both
 * databases end with the same chains. */
static void test_many_users_converge(void) {
  enum { N = 40 };
  fixture_t *fx = tuser_federation("dir_many", 2, 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(rb), 0);
  static tuser_t u[N];
  for (int i = 0; i < N; i++) {
    char name[16];
    snprintf(name, sizeof name, "user%02d", i);
    tuser_make(&u[i], ra, name);
    tclient_t *c = tuser_login(&u[i]);
    synod_announcement_t v1, v2;
    announce(&v1, u[i].id, 1, NULL, u[i].sk, NULL, (uint8_t)i);
    announce(&v2, u[i].id, 2, &v1, u[i].sk, NULL, (uint8_t)(i + 100));
    CU_ASSERT_EQUAL(publish(c, &v1, NULL, 0, NULL), 0);
    CU_ASSERT_EQUAL(publish(c, &v2, NULL, 0, NULL), 0);
    synod_announcement_free(&v1);
    synod_announcement_free(&v2);
    tclient_close(c);
  }
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(rb), 0);
  int64_t n = 0;
  for (int waited = 0; waited < CONVERGE_MS && n < 2 * N; waited += 100) {
    n = tuser_q(rb, "SELECT count(*) FROM announcements");
    if (n < 2 * N)
      usleep(100000);
  }
  CU_ASSERT_EQUAL(n, 2 * N);
  const char *sql = "SELECT md5(string_agg(user_id || ':' || version || ':' ||"
                    " encode(hash, 'hex'), ',' ORDER BY user_id, version))"
                    " FROM announcements";
  char da[64], db[64];
  CU_ASSERT_EQUAL(fixture_pg_query(fixture_relay_pg(ra), sql, da, sizeof da),
                  0);
  CU_ASSERT_EQUAL(fixture_pg_query(fixture_relay_pg(rb), sql, db, sizeof db),
                  0);
  CU_ASSERT_STRING_EQUAL(da, db);
  CU_ASSERT_EQUAL(tuser_q(rb, "SELECT count(*) FROM countersignatures"), 2 * N);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* Returns how many proofs r serves about user, waiting until there are
 * want of them (CONVERGE_MS). */
static size_t wait_proofs(tclient_t *c, const char *user, size_t want) {
  size_t n = 0;
  for (int waited = 0; waited < CONVERGE_MS && n < want; waited += 100) {
    Synod__V1__Frame *pl = NULL;
    if (proofs(c, user, &pl) == 0)
      n = pl->proof_list->n_proofs;
    synod_wire_free(pl);
    if (n < want)
      tclient_run_for(c, 100);
  }
  return n;
}

/* A partition: relay-a (the home) holds an honest version 2, relay-b an
 * evil one that relay-a's key also countersigned. When they meet again the
 * heads exchange finds the conflict, both store the proof against relay-a,
 * and neither replaces its head. */
static void test_partition_conflict(void) {
  fixture_t *fx = tuser_federation("dir_partition", 2, 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1);
  tuser_t alice;
  tuser_make(&alice, ra, "alice");
  tclient_t *ca = tuser_login(&alice);
  synod_announcement_t v1, v2, evil;
  announce(&v1, alice.id, 1, NULL, alice.sk, NULL, 0x11);
  announce(&v2, alice.id, 2, &v1, alice.sk, NULL, 0x12);
  CU_ASSERT_EQUAL(publish(ca, &v1, NULL, 0, NULL), 0);
  tclient_t *cb = visit(&alice, alice.sk, rb);
  CU_ASSERT_EQUAL(wait_head(cb, rb, alice.id, 1, NULL), 0);
  tclient_close(cb);

  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(rb), 0);
  CU_ASSERT_EQUAL(publish(ca, &v2, NULL, 0, NULL), 0);
  tclient_close(ca);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_stop(ra), 0);

  /* relay-a's key vouches for another version 2 (a reset to an evil key),
   * published at relay-b while relay-a is away. */
  char path[512];
  snprintf(path, sizeof path, "%s/relay.key", fixture_relay_dir(ra));
  uint8_t rsk[32], epk[32], esk[32];
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_read_secret(rsk, SYNOD_KEY_ED25519, path),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(epk, esk), 0);
  uint8_t h1[32];
  CU_ASSERT_EQUAL(synod_announce_hash(h1, v1.body, v1.body_len), 0);
  synod_device_t d = {.device_id = 1};
  memset(d.x25519_key, 0x66, 32);
  synod_announce_params_t p = {.user_id = alice.id,
                               .devices = &d,
                               .ndevices = 1,
                               .version = 2,
                               .time = now_s(),
                               .prev_hash = h1,
                               .reset = 1};
  CU_ASSERT_EQUAL_FATAL(synod_announce_sign(&evil, &p, esk, NULL), 0);
  synod_countersig_info_t ci;
  memset(&ci, 0, sizeof ci);
  snprintf(ci.user_id, sizeof ci.user_id, "%s", alice.id);
  ci.version = 2;
  CU_ASSERT_EQUAL(
      synod_announce_hash(ci.announcement_hash, evil.body, evil.body_len), 0);
  snprintf(ci.relay_name, sizeof ci.relay_name, "relay-a");
  ci.time = now_s();
  synod_signed_t cs;
  CU_ASSERT_EQUAL_FATAL(synod_countersig_sign(&cs, &ci, rsk), 0);
  synod_wipe(rsk, sizeof rsk);
  Synod__V1__Countersignature w = SYNOD__V1__COUNTERSIGNATURE__INIT;
  synod_signed_lend(&w.body, &w.signature, &cs);
  Synod__V1__Countersignature *wp = &w;
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(rb), 0);
  tclient_t *ce = visit(&alice, esk, rb);
  CU_ASSERT_EQUAL(publish(ce, &evil, &wp, 1, NULL), 0);
  synod_signed_free(&cs);

  /* They meet again. */
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(ra), 0);
  ca = tuser_login(&alice);
  CU_ASSERT_EQUAL(wait_proofs(ca, alice.id, 1), 1);
  CU_ASSERT_EQUAL(wait_proofs(ce, alice.id, 1), 1);
  synod_relay_key_t keys[1] = {{.name = "relay-a"}};
  memcpy(keys[0].key, fixture_relay_public_key(ra), 32);
  Synod__V1__Frame *pl = NULL;
  CU_ASSERT_EQUAL_FATAL(proofs(ce, alice.id, &pl), 0);
  if (pl->proof_list->n_proofs == 1) {
    synod_proof_verdict_t v;
    CU_ASSERT_EQUAL(synod_proof_verify(&v, pl->proof_list->proofs[0], keys, 1),
                    0);
    CU_ASSERT_STRING_EQUAL(v.relay_name, "relay-a");
  }
  synod_wire_free(pl);
  /* Each keeps its own version 2: evidence, not an update. */
  uint8_t h2[32], he[32];
  CU_ASSERT_EQUAL(synod_announce_hash(h2, v2.body, v2.body_len), 0);
  CU_ASSERT_EQUAL(synod_announce_hash(he, evil.body, evil.body_len), 0);
  synod_lookup_info_t li;
  CU_ASSERT_EQUAL(lookup(ca, ra, alice.id, 0, &li, NULL), 0);
  CU_ASSERT_EQUAL(memcmp(li.head_hash, h2, 32), 0);
  CU_ASSERT_EQUAL(lookup(ce, rb, alice.id, 0, &li, NULL), 0);
  CU_ASSERT_EQUAL(memcmp(li.head_hash, he, 32), 0);

  synod_announcement_free(&v1);
  synod_announcement_free(&v2);
  synod_announcement_free(&evil);
  tclient_close(ca);
  tclient_close(ce);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo directory_tests[] = {
    {"partition_conflict", test_partition_conflict},
    {"many_users_converge", test_many_users_converge},
    {"gap_fetch", test_gap_fetch},
    {"home_equivocates", test_home_equivocates},
    {"publish_lookup_gossip", test_publish_lookup_gossip},
    {"publish_refusals", test_publish_refusals},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"directory", NULL, NULL, NULL, NULL, directory_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
