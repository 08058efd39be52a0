/*
 * lib/quorum.c: the client's key decision under attack. A trust set of
 * relays r1 (operator A, alice's home), r2 (B), r3 (C) and sometimes r4;
 * every answer is built and signed here as a (lying) relay would, and each
 * test asserts the decision, its code and every relay's status by count.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/quorum.h"
#include "synod/sig.h"
#include "synod/wire.h"

#define NOW  UINT64_C(1700000000)
#define USER "alice@r1.example"
#define MAXL 6

typedef struct key {
  uint8_t pk[32], sk[32];
} key_t_;

static key_t_ newkey(void) {
  key_t_ k = {0};
  CU_ASSERT_FATAL(synod_ed25519_keygen(k.pk, k.sk) == 0);
  return k;
}

typedef struct world {
  key_t_ rk[4];
  synod_trusted_relay_t trust[4];
  size_t ntrust;
  key_t_ alice;
  synod_announcement_t chain[3]; /* honest v1, v2, v3 */
  synod_signed_t cs[3];          /* r1's countersignatures of them */
} world_t;

static const char *names[4] = {"r1.example", "r2.example", "r3.example",
                               "r4.example"};

static synod_signed_t countersign(const key_t_ *home,
                                  const synod_announcement_t *a) {
  synod_announce_info_t info;
  Synod__V1__Announcement w;
  synod_announcement_lend(&w, a);
  CU_ASSERT_FATAL(synod_announce_verify(&info, &w, NOW) == 0);
  synod_countersig_info_t ci;
  memset(&ci, 0, sizeof ci);
  strcpy(ci.user_id, info.user_id);
  strcpy(ci.relay_name, names[0]);
  ci.version = info.version;
  memcpy(ci.announcement_hash, info.hash, 32);
  ci.time = NOW - 100;
  synod_signed_t s;
  CU_ASSERT_FATAL(synod_countersig_sign(&s, &ci, home->sk) == 0);
  return s;
}

/* Version v of alice signed by k after prev; cont: previous key. */
static synod_announcement_t ann(const key_t_ *k, uint64_t v,
                                const synod_announcement_t *prev,
                                const key_t_ *cont, int reset, uint8_t fill) {
  synod_device_t d = {1, {0}, "phone"};
  memset(d.x25519_key, fill, 32);
  uint8_t ph[32];
  synod_announce_params_t p = {USER, &d, 1, v, NOW - 1000 + v, NULL, reset};
  if (prev) {
    CU_ASSERT_FATAL(synod_announce_hash(ph, prev->body, prev->body_len) == 0);
    p.prev_hash = ph;
  }
  synod_announcement_t a;
  CU_ASSERT_FATAL(synod_announce_sign(&a, &p, k->sk, cont ? cont->sk : NULL) ==
                  0);
  return a;
}

static void world_init(world_t *w, size_t ntrust, const char *const *ops) {
  memset(w, 0, sizeof *w);
  w->ntrust = ntrust;
  for (size_t i = 0; i < ntrust; i++) {
    w->rk[i] = newkey();
    w->trust[i].name = names[i];
    memcpy(w->trust[i].key, w->rk[i].pk, 32);
    w->trust[i].operator_name = ops[i];
  }
  if (ntrust == 0)
    w->rk[0] = newkey();
  w->alice = newkey();
  for (uint64_t v = 1; v <= 3; v++) {
    w->chain[v - 1] =
        ann(&w->alice, v, v > 1 ? &w->chain[v - 2] : NULL, NULL, 0, (uint8_t)v);
    w->cs[v - 1] = countersign(&w->rk[0], &w->chain[v - 1]);
  }
}

static void world_free(world_t *w) {
  for (int i = 0; i < 3; i++) {
    synod_announcement_free(&w->chain[i]);
    synod_signed_free(&w->cs[i]);
  }
}

static void hash_of(uint8_t h[32], const synod_announcement_t *a) {
  CU_ASSERT_FATAL(synod_announce_hash(h, a->body, a->body_len) == 0);
}

static synod_pin_t pin_of(const world_t *w, uint64_t v, int verified) {
  synod_pin_t p;
  synod_announce_info_t info;
  Synod__V1__Announcement wa;
  synod_announcement_lend(&wa, &w->chain[v - 1]);
  CU_ASSERT_FATAL(synod_announce_verify(&info, &wa, NOW) == 0);
  p.version = v;
  memcpy(p.hash, info.hash, 32);
  memcpy(p.identity_key, info.identity_key, 32);
  p.time = info.time;
  p.verified = verified;
  return p;
}

/* One LookupAnswer and the storage it points into; not movable. */
typedef struct ans {
  synod_signed_t body;
  Synod__V1__LookupAnswer w;
  Synod__V1__Announcement lk[MAXL];
  Synod__V1__Announcement *lkp[MAXL];
  Synod__V1__Countersignature cs[MAXL];
  Synod__V1__Countersignature *csp[MAXL];
  Synod__V1__EquivocationProof *pp[2];
} ans_t;

/* Signs with signer an answer naming relay and user, at version/head (from
 * the last link when head is NULL and links are given). */
static void answer_full(ans_t *a, const key_t_ *signer, const char *relay,
                        const char *user, uint64_t t, uint64_t version,
                        const uint8_t *head,
                        const synod_announcement_t *const *links, size_t n,
                        const synod_signed_t *const *cs, size_t ncs) {
  synod_lookup_info_t li;
  memset(a, 0, sizeof *a);
  memset(&li, 0, sizeof li);
  CU_ASSERT_FATAL(n <= MAXL && ncs <= MAXL);
  strcpy(li.user_id, user);
  strcpy(li.relay_name, relay);
  li.time = t;
  li.version = version;
  if (head)
    memcpy(li.head_hash, head, 32);
  else if (n) {
    synod_announce_info_t info;
    Synod__V1__Announcement wa;
    synod_announcement_lend(&wa, links[n - 1]);
    CU_ASSERT_FATAL(synod_announce_verify(&info, &wa, NOW) == 0);
    li.version = info.version;
    memcpy(li.head_hash, info.hash, 32);
  }
  CU_ASSERT_FATAL(synod_lookup_sign(&a->body, &li, signer->sk) == 0);
  synod__v1__lookup_answer__init(&a->w);
  synod_signed_lend(&a->w.body, &a->w.signature, &a->body);
  for (size_t i = 0; i < n; i++) {
    synod_announcement_lend(&a->lk[i], links[i]);
    a->lkp[i] = &a->lk[i];
  }
  for (size_t i = 0; i < ncs; i++) {
    synod__v1__countersignature__init(&a->cs[i]);
    synod_signed_lend(&a->cs[i].body, &a->cs[i].signature, cs[i]);
    a->csp[i] = &a->cs[i];
  }
  a->w.announcements = a->lkp;
  a->w.n_announcements = n;
  a->w.countersignatures = a->csp;
  a->w.n_countersignatures = ncs;
  a->w.proofs = a->pp;
}

static void ans_free(ans_t *a) {
  synod_signed_free(&a->body);
}

/* Relay i's honest answer: head version v, links above from. */
static void honest(ans_t *a, const world_t *w, size_t i, uint64_t v,
                   uint64_t from, uint64_t t) {
  const synod_announcement_t *l[3];
  const synod_signed_t *c[3];
  size_t n = 0;
  for (uint64_t x = from + 1; x <= v; x++, n++) {
    l[n] = &w->chain[x - 1];
    c[n] = &w->cs[x - 1];
  }
  answer_full(a, &w->rk[i], names[i], USER, t, v, NULL, l, n, c, n);
  if (n == 0 && v > 0) { /* the pin itself, no links: sign its hash */
    uint8_t h[32];
    hash_of(h, &w->chain[v - 1]);
    ans_free(a);
    answer_full(a, &w->rk[i], names[i], USER, t, v, h, NULL, 0, NULL, 0);
  }
}

static int decide(synod_quorum_result_t *r, const world_t *w, ans_t *const *as,
                  unsigned k, const synod_pin_t *pin) {
  synod_quorum_answer_t qa[4];
  CU_ASSERT_FATAL(w->ntrust <= 4);
  for (size_t i = 0; i < w->ntrust; i++) {
    qa[i].relay_name = names[i];
    /* Every caller passes w->ntrust answers. */
    /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Branch) */
    qa[i].answer = as[i] ? &as[i]->w : NULL;
  }
  synod_quorum_input_t in = {USER, qa, w->ntrust, w->trust, w->ntrust, NULL,
                             0,    k,  pin,       NOW,      0};
  int rc = synod_quorum_decide(r, &in);
  CU_ASSERT_EQUAL(rc, r->error);
  CU_ASSERT(r->reason[0] != '\0');
  return rc;
}

static size_t count(const synod_quorum_result_t *r, synod_relay_status_t s) {
  size_t n = 0;
  for (size_t i = 0; i < r->nrelays; i++)
    n += r->relays[i].status == s;
  return n;
}

static const char *const ABC[] = {"A", "B", "C", "D"};

/* --- cases -------------------------------------------------------------- */

static void test_honest_three_of_three(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  uint8_t h2[32];
  world_init(&w, 3, ABC);
  hash_of(h2, &w.chain[1]);
  for (size_t i = 0; i < 3; i++)
    honest(&a[i], &w, i, 2, 0, NOW - 10);

  for (unsigned k = 2; k <= 3; k++) {
    CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, k, NULL),
                    0);
    CU_ASSERT_EQUAL(r.version, 2);
    CU_ASSERT(memcmp(r.hash, h2, 32) == 0);
    CU_ASSERT_EQUAL(r.operators, 3);
    CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 3);
    CU_ASSERT_EQUAL(r.nrelays, 3);
    CU_ASSERT_EQUAL(r.flags, SYNOD_QUORUM_FIRST_CONTACT);
    CU_ASSERT_EQUAL(a[0].w.n_announcements, 2); /* v1, v2 */
    CU_ASSERT_PTR_EQUAL(r.announcement, &a[0].lk[1]);
    CU_ASSERT(memcmp(r.info.identity_key, w.alice.pk, 32) == 0);
    CU_ASSERT_EQUAL(r.pin.version, 2);
    CU_ASSERT_EQUAL(r.pin.verified, 0); /* first contact is never verified */
    CU_ASSERT(memcmp(r.pin.hash, h2, 32) == 0);
    synod_quorum_result_free(&r);
  }
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);

  /* From a verified pin at v1: links above it; verified is kept. */
  synod_pin_t pin = pin_of(&w, 1, 1);
  for (size_t i = 0; i < 3; i++)
    honest(&a[i], &w, i, 3, 1, NOW - 10);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, &pin), 0);
  CU_ASSERT_EQUAL(r.version, 3);
  CU_ASSERT_EQUAL(r.flags, 0);
  CU_ASSERT_EQUAL(r.pin.verified, 1);
  CU_ASSERT_EQUAL(r.pin.version, 3);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 3);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);

  /* At the pin, no links sent: unchanged. */
  pin = pin_of(&w, 3, 1);
  for (size_t i = 0; i < 3; i++)
    honest(&a[i], &w, i, 3, 3, NOW - 10);
  CU_ASSERT_EQUAL(a[0].w.n_announcements, 0);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.flags, SYNOD_QUORUM_UNCHANGED);
  CU_ASSERT_PTR_NULL(r.announcement);
  CU_ASSERT_EQUAL(r.pin.version, 3);
  CU_ASSERT_EQUAL(r.pin.verified, 1);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 3);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

/* r3 serves a substituted key for alice, with a countersignature it made
 * itself (it is not the home relay): ignored and named. */
static void test_liar_forged_countersignature(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  key_t_ mallory = newkey();
  synod_announcement_t fake = ann(&mallory, 3, &w.chain[1], NULL, 1, 0xee);
  synod_signed_t fcs = countersign(&w.rk[2], &fake);
  honest(&a[0], &w, 0, 3, 0, NOW - 5);
  honest(&a[1], &w, 1, 3, 0, NOW - 5);
  answer_full(&a[2], &w.rk[2], names[2], USER, NOW - 5, 0, NULL,
              (const synod_announcement_t *[]){&fake}, 1,
              (const synod_signed_t *[]){&fcs}, 1);

  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.version, 3);
  CU_ASSERT(memcmp(r.info.identity_key, w.alice.pk, 32) == 0);
  CU_ASSERT_EQUAL(r.operators, 2);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 2);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_BAD_COUNTERSIGNATURE);
  CU_ASSERT_EQUAL(r.relays[2].error, SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(r.relays[2].said, 1);
  CU_ASSERT_EQUAL(r.relays[2].version, 3);
  CU_ASSERT(strstr(r.reason, "r3.example (C): bad countersignature") != NULL);
  synod_quorum_result_free(&r);
  /* With k = 3 the two honest operators are not enough. */
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_NO_QUORUM), 2);
  CU_ASSERT_EQUAL(r.has_pin, 0);
  synod_quorum_result_free(&r);
  ans_free(&a[2]);
  /* The same fake without any countersignature. */
  answer_full(&a[2], &w.rk[2], names[2], USER, NOW - 5, 0, NULL,
              (const synod_announcement_t *[]){&fake}, 1, NULL, 0);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_BAD_COUNTERSIGNATURE);
  CU_ASSERT_EQUAL(r.relays[2].error, SYNOD_ENOENT);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  synod_announcement_free(&fake);
  synod_signed_free(&fcs);
  world_free(&w);
}

/* The home relay countersigned a fake for r3 alone (a targeted
 * substitution needing two operators): with k = 2, r3 is outvoted only
 * because r1 and r2 agree; it is reported with what it said. */
static void test_liar_substituted_key(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  key_t_ mallory = newkey();
  synod_announcement_t fake = ann(&mallory, 3, &w.chain[1], NULL, 1, 0xee);
  synod_signed_t fcs = countersign(&w.rk[0], &fake);
  uint8_t hf[32];
  hash_of(hf, &fake);
  honest(&a[0], &w, 0, 3, 0, NOW - 5);
  honest(&a[1], &w, 1, 3, 0, NOW - 5);
  answer_full(&a[2], &w.rk[2], names[2], USER, NOW - 5, 0, NULL,
              (const synod_announcement_t *[]){&fake}, 1,
              (const synod_signed_t *[]){&fcs}, 1);

  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT(memcmp(r.info.identity_key, w.alice.pk, 32) == 0);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 2);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_DISAGREED), 1);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_DISAGREED);
  CU_ASSERT(memcmp(r.relays[2].head_hash, hf, 32) == 0);
  synod_quorum_result_free(&r);
  /* k = 3: refused, never a majority vote. */
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_NO_QUORUM), 3);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 0);
  CU_ASSERT_PTR_NULL(r.announcement);
  synod_quorum_result_free(&r);
  /* One honest relay unreachable, k = 2: one against one, refused. */
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], NULL, &a[2]}, 2, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_UNREACHABLE);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_NO_QUORUM), 2);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  synod_announcement_free(&fake);
  synod_signed_free(&fcs);
  world_free(&w);
}

/* r2 and r3 belong to operator B and agree on a fake: one operator. */
static void test_same_operator_not_a_quorum(void) {
  world_t w;
  ans_t a[4];
  synod_quorum_result_t r;
  const char *ops[] = {"A", "B", "B", "C"};
  world_init(&w, 4, ops);
  key_t_ mallory = newkey();
  synod_announcement_t fake = ann(&mallory, 3, &w.chain[1], NULL, 1, 0xee);
  synod_signed_t fcs = countersign(&w.rk[0], &fake);
  honest(&a[0], &w, 0, 3, 0, NOW - 5);
  for (size_t i = 1; i <= 2; i++)
    answer_full(&a[i], &w.rk[i], names[i], USER, NOW - 5, 0, NULL,
                (const synod_announcement_t *[]){&fake}, 1,
                (const synod_signed_t *[]){&fcs}, 1);

  CU_ASSERT_EQUAL(
      decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2], NULL}, 2, NULL),
      SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_NO_QUORUM), 3);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_UNREACHABLE), 1);
  CU_ASSERT_PTR_NULL(r.announcement);
  synod_quorum_result_free(&r);
  /* r4 (operator C) joins the honest side: 2 operators, accepted, and
   * the two B relays are both reported. */
  honest(&a[3], &w, 3, 3, 0, NOW - 5);
  CU_ASSERT_EQUAL(
      decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2], &a[3]}, 2, NULL), 0);
  CU_ASSERT(memcmp(r.info.identity_key, w.alice.pk, 32) == 0);
  CU_ASSERT_EQUAL(r.operators, 2);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_DISAGREED), 2);
  synod_quorum_result_free(&r);
  /* Honest r1 and r4, but B's relays on the honest side count once:
   * with k = 3 and B's two relays also honest, still only 3 operators. */
  for (size_t i = 1; i <= 2; i++) {
    ans_free(&a[i]);
    honest(&a[i], &w, i, 3, 0, NOW - 5);
  }
  CU_ASSERT_EQUAL(
      decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2], &a[3]}, 3, NULL), 0);
  CU_ASSERT_EQUAL(r.operators, 3);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 4);
  synod_quorum_result_free(&r);
  CU_ASSERT_EQUAL(
      decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2], &a[3]}, 4, NULL),
      SYNOD_ENOQUORUM);
  CU_ASSERT(strstr(r.reason, "only 3 operators") != NULL);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 4; i++)
    ans_free(&a[i]);
  synod_announcement_free(&fake);
  synod_signed_free(&fcs);
  world_free(&w);
}

static void test_stale(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  honest(&a[0], &w, 0, 2, 0, NOW - 1800);
  honest(&a[1], &w, 1, 2, 0, NOW + 300);
  honest(&a[2], &w, 2, 2, 0, NOW - 1801);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_STALE);
  CU_ASSERT_EQUAL(r.relays[2].time, NOW - 1801);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 2);
  synod_quorum_result_free(&r);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  synod_quorum_result_free(&r);
  ans_free(&a[0]);
  ans_free(&a[1]);
  /* Two stale, one from the future: ESTALE. */
  honest(&a[0], &w, 0, 2, 0, NOW - 4000);
  honest(&a[1], &w, 1, 2, 0, NOW + 301);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL),
                  SYNOD_ESTALE);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_STALE), 3);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

static void test_rollback(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  synod_pin_t pin = pin_of(&w, 3, 1);
  /* Everyone answers v2 with its link: below the pin. */
  for (size_t i = 0; i < 3; i++)
    honest(&a[i], &w, i, 2, 1, NOW - 5);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin),
                  SYNOD_EROLLBACK);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_ROLLED_BACK), 3);
  CU_ASSERT_EQUAL(r.pin.version, 3); /* the pin is kept */
  CU_ASSERT_EQUAL(r.pin.verified, 1);
  CU_ASSERT_EQUAL(r.relays[0].version, 2);
  synod_quorum_result_free(&r);
  /* One relay rolls back, two are at the pin: unchanged, one reported. */
  ans_free(&a[0]);
  ans_free(&a[1]);
  honest(&a[0], &w, 0, 3, 3, NOW - 5);
  honest(&a[1], &w, 1, 3, 3, NOW - 5);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.flags, SYNOD_QUORUM_UNCHANGED);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_ROLLED_BACK);
  synod_quorum_result_free(&r);
  /* "None known" while we hold a pin is a rollback too. */
  ans_free(&a[2]);
  answer_full(&a[2], &w.rk[2], names[2], USER, NOW, 0, NULL, NULL, 0, NULL, 0);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_ROLLED_BACK);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

static void test_forged_answer(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  key_t_ impostor = newkey();
  honest(&a[0], &w, 0, 2, 0, NOW - 5);
  honest(&a[2], &w, 2, 2, 0, NOW - 5);
  /* r2's answer signed by a key that is not r2's pinned key. */
  const synod_announcement_t *l[] = {&w.chain[1]};
  const synod_signed_t *c[] = {&w.cs[1]};
  answer_full(&a[1], &impostor, names[1], USER, NOW - 5, 0, NULL, l, 1, c, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_BAD_SIGNATURE);
  CU_ASSERT_EQUAL(r.relays[1].error, SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(r.relays[1].said, 0); /* nothing unauthenticated reported */
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 2);
  synod_quorum_result_free(&r);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  synod_quorum_result_free(&r);
  ans_free(&a[1]);
  /* r2 signs with its own key but claims to be r3: a replay elsewhere. */
  answer_full(&a[1], &w.rk[1], names[2], USER, NOW - 5, 0, NULL, l, 1, c, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_BAD_ANSWER);
  synod_quorum_result_free(&r);
  ans_free(&a[1]);
  /* An answer about another user. */
  answer_full(&a[1], &w.rk[1], names[1], "bob@r1.example", NOW - 5, 0, NULL, l,
              1, c, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_BAD_ANSWER);
  synod_quorum_result_free(&r);
  ans_free(&a[1]);
  /* Signed head that the links do not reach. */
  uint8_t h3[32];
  hash_of(h3, &w.chain[2]);
  answer_full(&a[1], &w.rk[1], names[1], USER, NOW - 5, 3, h3, l, 1, c, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_BAD_ANSWER);
  CU_ASSERT_EQUAL(r.relays[1].error, SYNOD_ECHAIN);
  synod_quorum_result_free(&r);
  ans_free(&a[1]);
  /* A tampered link. */
  synod_announcement_t bad = ann(&w.alice, 2, &w.chain[0], NULL, 0, 2);
  bad.signature[3] ^= 1;
  answer_full(&a[1], &w.rk[1], names[1], USER, NOW - 5, 0, NULL, NULL, 0, NULL,
              0);
  ans_free(&a[1]);
  answer_full(&a[1], &w.rk[1], names[1], USER, NOW - 5, 2, h3,
              (const synod_announcement_t *[]){&bad}, 1, c, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_BAD_ANNOUNCEMENT);
  CU_ASSERT_EQUAL(r.relays[1].error, SYNOD_EVERIFY);
  synod_quorum_result_free(&r);
  synod_announcement_free(&bad);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

/* r3 signed two different heads for v2; r1 carries the proof. */
static void test_equivocation_proof_excludes(void) {
  world_t w;
  ans_t a[3], x, y;
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  uint8_t other[32];
  memset(other, 0x77, 32);
  honest(&x, &w, 2, 2, 0, NOW - 500);
  answer_full(&y, &w.rk[2], names[2], USER, NOW - 400, 2, other, NULL, 0, NULL,
              0);
  Synod__V1__Signed sx = SYNOD__V1__SIGNED__INIT, sy = SYNOD__V1__SIGNED__INIT;
  sx.body = x.w.body, sx.signature = x.w.signature;
  sy.body = y.w.body, sy.signature = y.w.signature;
  synod_relay_key_t keys[] = {{names[2], {0}}};
  memcpy(keys[0].key, w.rk[2].pk, 32);
  synod_proof_t proof;
  CU_ASSERT_FATAL(
      synod_proof_build(
          &proof, NULL,
          SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_LOOKUP_ANSWER, &sx,
          &sy, keys, 1) == 0);
  Synod__V1__EquivocationProof pw;
  Synod__V1__Signed pf, ps;
  synod_proof_lend(&pw, &pf, &ps, &proof);

  for (size_t i = 0; i < 3; i++)
    honest(&a[i], &w, i, 2, 0, NOW - 5);
  a[0].pp[0] = &pw;
  a[0].w.n_proofs = 1;
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_EQUIVOCATOR);
  CU_ASSERT_EQUAL(r.relays[2].said, 1); /* what it said is still shown */
  CU_ASSERT_EQUAL(r.relays[0].proofs_valid, 1);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_NO_QUORUM), 2);
  synod_quorum_result_free(&r);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.operators, 2);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 2);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_EQUIVOCATOR);
  CU_ASSERT_EQUAL(r.flags & SYNOD_QUORUM_HOME_EQUIVOCATED, 0);
  synod_quorum_result_free(&r);
  /* The guilty relay carrying the proof against itself, even unreachable
   * otherwise: a proof counts whoever carries it, even a bad answer. */
  a[0].w.n_proofs = 0;
  a[1].pp[0] = &pw;
  a[1].w.n_proofs = 1;
  a[1].w.signature.len = 10; /* r2's own answer is now bad */
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(r.relays[1].status, SYNOD_RELAY_BAD_SIGNATURE);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_EQUIVOCATOR);
  synod_quorum_result_free(&r);
  a[1].w.signature.len = 64;
  /* A proof that does not verify excludes nobody. */
  proof.second.signature[0] ^= 1;
  synod_proof_lend(&pw, &pf, &ps, &proof);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 3, NULL), 0);
  CU_ASSERT_EQUAL(r.relays[1].proofs_rejected, 1);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 3);
  synod_quorum_result_free(&r);
  synod_proof_free(&proof);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  ans_free(&x);
  ans_free(&y);
  world_free(&w);
}

/* v3 is a reset to a new key (lost device), countersigned by the home
 * relay: accepted, flagged, verified state dropped. */
static void test_reset_flagged(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  key_t_ fresh = newkey();
  synod_announcement_t rs = ann(&fresh, 3, &w.chain[1], NULL, 1, 0x33);
  synod_signed_t rcs = countersign(&w.rk[0], &rs);
  synod_pin_t pin = pin_of(&w, 2, 1);
  for (size_t i = 0; i < 3; i++)
    answer_full(&a[i], &w.rk[i], names[i], USER, NOW - 5, 0, NULL,
                (const synod_announcement_t *[]){&rs}, 1,
                (const synod_signed_t *[]){&rcs}, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.flags, SYNOD_QUORUM_RESET | SYNOD_QUORUM_VERIFIED_CLEARED);
  CU_ASSERT_EQUAL(r.pin.verified, 0);
  CU_ASSERT_EQUAL(r.pin.version, 3);
  CU_ASSERT(memcmp(r.pin.identity_key, fresh.pk, 32) == 0);
  CU_ASSERT(strstr(r.reason, "reset") != NULL);
  synod_quorum_result_free(&r);
  /* An unverified pin: reset flagged, nothing to clear. */
  pin.verified = 0;
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.flags, SYNOD_QUORUM_RESET);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);

  /* The same change with a continuity signature keeps the verified state. */
  synod_announcement_t ct = ann(&fresh, 3, &w.chain[1], &w.alice, 0, 0x33);
  synod_signed_t ccs = countersign(&w.rk[0], &ct);
  pin.verified = 1;
  for (size_t i = 0; i < 3; i++)
    answer_full(&a[i], &w.rk[i], names[i], USER, NOW - 5, 0, NULL,
                (const synod_announcement_t *[]){&ct}, 1,
                (const synod_signed_t *[]){&ccs}, 1);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.flags, 0);
  CU_ASSERT_EQUAL(r.pin.verified, 1);
  CU_ASSERT(memcmp(r.pin.identity_key, fresh.pk, 32) == 0);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  synod_announcement_free(&rs);
  synod_announcement_free(&ct);
  synod_signed_free(&rcs);
  synod_signed_free(&ccs);
  world_free(&w);
}

static void test_k_larger_than_operators(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  for (size_t i = 0; i < 3; i++)
    honest(&a[i], &w, i, 2, 0, NOW - 5);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 4, NULL),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_NO_QUORUM), 3);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 0);
  CU_ASSERT_PTR_NULL(r.announcement);
  CU_ASSERT(strstr(r.reason, "k=4 but the trust set has only 3 operators") !=
            NULL);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

/* r3 is ahead with a valid v3; r1 and r2 agree on v2: v2 is the newest
 * head with a quorum, and r3's newer claim is reported, not followed. */
static void test_newest_with_quorum(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  honest(&a[0], &w, 0, 2, 0, NOW - 5);
  honest(&a[1], &w, 1, 2, 0, NOW - 5);
  honest(&a[2], &w, 2, 3, 0, NOW - 5);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.version, 2);
  CU_ASSERT_EQUAL(r.relays[2].status, SYNOD_RELAY_DISAGREED);
  CU_ASSERT_EQUAL(r.relays[2].version, 3);
  synod_quorum_result_free(&r);
  ans_free(&a[1]);
  honest(&a[1], &w, 1, 3, 0, NOW - 5);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL), 0);
  CU_ASSERT_EQUAL(r.version, 3);
  CU_ASSERT_EQUAL(r.relays[0].status, SYNOD_RELAY_DISAGREED);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 2);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

/* A pin at v2 and a chain that forks there: every relay is FORKED. */
static void test_fork_below_head(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  synod_pin_t pin = pin_of(&w, 2, 0);
  synod_announcement_t b2 = ann(&w.alice, 2, &w.chain[0], NULL, 0, 0x99);
  synod_announcement_t b3 = ann(&w.alice, 3, &b2, NULL, 0, 0x98);
  synod_signed_t c2 = countersign(&w.rk[0], &b2),
                 c3 = countersign(&w.rk[0], &b3);
  for (size_t i = 0; i < 3; i++)
    answer_full(&a[i], &w.rk[i], names[i], USER, NOW - 5, 0, NULL,
                (const synod_announcement_t *[]){&b2, &b3}, 2,
                (const synod_signed_t *[]){&c2, &c3}, 2);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_FORKED), 3);
  synod_quorum_result_free(&r);
  /* Head at the pinned version with another hash. */
  for (size_t i = 0; i < 3; i++) {
    ans_free(&a[i]);
    answer_full(&a[i], &w.rk[i], names[i], USER, NOW - 5, 0, NULL,
                (const synod_announcement_t *[]){&b2}, 1,
                (const synod_signed_t *[]){&c2}, 1);
  }
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, &pin),
                  SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_FORKED), 3);
  synod_quorum_result_free(&r);
  /* And the user's two signed v2 bodies are a proof against the identity
   * key: carried by r2, it is flagged and clears the verified state. */
  Synod__V1__Signed s1 = SYNOD__V1__SIGNED__INIT, s2 = SYNOD__V1__SIGNED__INIT;
  s1.body.data = b2.body, s1.body.len = b2.body_len;
  s1.signature.data = b2.signature, s1.signature.len = 64;
  s2.body.data = w.chain[1].body, s2.body.len = w.chain[1].body_len;
  s2.signature.data = w.chain[1].signature, s2.signature.len = 64;
  synod_proof_t up;
  CU_ASSERT_FATAL(
      synod_proof_build(
          &up, NULL,
          SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT, &s1,
          &s2, NULL, 0) == 0);
  Synod__V1__EquivocationProof pw;
  Synod__V1__Signed pf, ps;
  synod_proof_lend(&pw, &pf, &ps, &up);
  ans_t h[3];
  pin.verified = 1;
  for (size_t i = 0; i < 3; i++)
    honest(&h[i], &w, i, 3, 2, NOW - 5);
  h[1].pp[0] = &pw;
  h[1].w.n_proofs = 1;
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&h[0], &h[1], &h[2]}, 2, &pin), 0);
  CU_ASSERT_EQUAL(r.flags, SYNOD_QUORUM_USER_EQUIVOCATED |
                               SYNOD_QUORUM_VERIFIED_CLEARED);
  CU_ASSERT_EQUAL(r.pin.verified, 0);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 3); /* no relay is guilty */
  synod_quorum_result_free(&r);
  synod_proof_free(&up);
  for (size_t i = 0; i < 3; i++) {
    ans_free(&a[i]);
    ans_free(&h[i]);
  }
  synod_announcement_free(&b2);
  synod_announcement_free(&b3);
  synod_signed_free(&c2);
  synod_signed_free(&c3);
  world_free(&w);
}

/* alice's home relay is outside the trust set (r2, r3, r4 are trusted). */
static void test_home_outside_trust_set(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 4, (const char *[]){"A", "B", "C", "D"});
  for (size_t i = 1; i < 4; i++)
    honest(&a[i - 1], &w, i, 2, 0, NOW - 5);
  synod_quorum_answer_t qa[3];
  for (size_t i = 0; i < 3; i++) {
    qa[i].relay_name = names[i + 1];
    qa[i].answer = &a[i].w;
  }
  synod_quorum_input_t in = {USER, qa, 3,    &w.trust[1], 3, NULL,
                             0,    2,  NULL, NOW,         0};
  CU_ASSERT_EQUAL(synod_quorum_decide(&r, &in), SYNOD_EUNKNOWNPEER);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_BAD_COUNTERSIGNATURE), 3);
  synod_quorum_result_free(&r);
  /* With the home relay's key pinned for namespaces only: accepted, and
   * the home relay counts for nothing in the quorum. */
  synod_relay_key_t ns = {names[0], {0}};
  memcpy(ns.key, w.rk[0].pk, 32);
  in.namespace_keys = &ns;
  in.nnamespace = 1;
  CU_ASSERT_EQUAL(synod_quorum_decide(&r, &in), 0);
  CU_ASSERT_EQUAL(r.operators, 3);
  CU_ASSERT_EQUAL(r.nrelays, 3);
  synod_quorum_result_free(&r);
  /* A namespace key repeating a trust-set name is a configuration error. */
  ns.name = names[1];
  CU_ASSERT_EQUAL(synod_quorum_decide(&r, &in), SYNOD_EINVAL);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

static void test_unknown_user(void) {
  world_t w;
  ans_t a[3];
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  for (size_t i = 0; i < 3; i++)
    answer_full(&a[i], &w.rk[i], names[i], USER, NOW, 0, NULL, NULL, 0, NULL,
                0);
  CU_ASSERT_EQUAL(decide(&r, &w, (ans_t *[]){&a[0], &a[1], &a[2]}, 2, NULL),
                  SYNOD_EUNKNOWNUSER);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_AGREED), 3);
  CU_ASSERT_PTR_NULL(r.announcement);
  CU_ASSERT_EQUAL(r.has_pin, 0);
  synod_quorum_result_free(&r);
  for (size_t i = 0; i < 3; i++)
    ans_free(&a[i]);
  world_free(&w);
}

static void test_input_rules(void) {
  world_t w;
  ans_t a;
  synod_quorum_result_t r;
  world_init(&w, 3, ABC);
  honest(&a, &w, 0, 1, 0, NOW);
  synod_quorum_answer_t qa[2] = {{names[0], &a.w}, {names[0], NULL}};
  synod_quorum_input_t base = {USER, qa, 1,    w.trust, 3, NULL,
                               0,    2,  NULL, NOW,     0},
                       in;
  size_t refused = 0, cases = 0;
#define BAD(expr)                                                              \
  do {                                                                         \
    in = base;                                                                 \
    expr;                                                                      \
    cases++;                                                                   \
    refused += synod_quorum_decide(&r, &in) == SYNOD_EINVAL &&                 \
               r.error == SYNOD_EINVAL && r.relays == NULL;                    \
    synod_quorum_result_free(&r);                                              \
  } while (0)
  BAD(in.k = 1);
  BAD(in.k = 0);
  BAD(in.user_id = "alice");
  BAD(in.ntrust = 0);
  BAD(in.nanswers = 2); /* r1 twice */
  BAD(qa[1].relay_name = "r9.example"; in.nanswers = 2);
  qa[1].relay_name = names[0];
  synod_trusted_relay_t t[3];
  memcpy(t, w.trust, sizeof t);
  BAD(memcpy(t[2].key, t[1].key, 32); in.trust = t); /* one key, two names */
  memcpy(t, w.trust, sizeof t);
  BAD(t[2].name = names[1]; in.trust = t);
  memcpy(t, w.trust, sizeof t);
  BAD(t[1].operator_name = ""; in.trust = t);
  memcpy(t, w.trust, sizeof t);
  BAD(t[1].name = "R2.example"; in.trust = t);
#undef BAD
  CU_ASSERT_EQUAL(cases, 10);
  CU_ASSERT_EQUAL(refused, cases);
  CU_ASSERT_EQUAL(synod_quorum_decide(&r, NULL), SYNOD_EINVAL);
  synod_quorum_result_free(&r);
  /* The unchanged base decides (one answer of three: no quorum). */
  CU_ASSERT_EQUAL(synod_quorum_decide(&r, &base), SYNOD_ENOQUORUM);
  CU_ASSERT_EQUAL(count(&r, SYNOD_RELAY_UNREACHABLE), 2);
  synod_quorum_result_free(&r);
  synod_quorum_result_free(NULL);
  CU_ASSERT_STRING_EQUAL(synod_relay_status_name(SYNOD_RELAY_EQUIVOCATOR),
                         "equivocator");
  CU_ASSERT_STRING_EQUAL(synod_relay_status_name((synod_relay_status_t)0),
                         "unknown");
  ans_free(&a);
  world_free(&w);
}

static CU_TestInfo tests[] = {
    {"honest_three_of_three", test_honest_three_of_three},
    {"liar_forged_countersignature", test_liar_forged_countersignature},
    {"liar_substituted_key", test_liar_substituted_key},
    {"same_operator_not_a_quorum", test_same_operator_not_a_quorum},
    {"stale", test_stale},
    {"rollback", test_rollback},
    {"forged_answer", test_forged_answer},
    {"equivocation_proof_excludes", test_equivocation_proof_excludes},
    {"reset_flagged", test_reset_flagged},
    {"k_larger_than_operators", test_k_larger_than_operators},
    {"newest_with_quorum", test_newest_with_quorum},
    {"fork_below_head", test_fork_below_head},
    {"home_outside_trust_set", test_home_outside_trust_set},
    {"unknown_user", test_unknown_user},
    {"input_rules", test_input_rules},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"quorum", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
