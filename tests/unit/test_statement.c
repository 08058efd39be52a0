/*
 * lib/statement.c: namespace countersignatures, lookup answers and
 * equivocation proofs (proto/README.md 7.2, 7.3, 7.5).
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/announce.h"
#include "synod/sig.h"
#include "synod/statement.h"
#include "synod/wire.h"

#define NOW  UINT64_C(1700000000)
#define USER "alice@a.example"
#define HOME "a.example"

typedef struct key {
  uint8_t pk[32], sk[32];
} key_t_;

static key_t_ newkey(void) {
  key_t_ k = {0};
  CU_ASSERT_FATAL(synod_ed25519_keygen(k.pk, k.sk) == 0);
  return k;
}

static synod_countersig_info_t csinfo(uint64_t v, uint8_t hfill, uint64_t t) {
  synod_countersig_info_t in;
  memset(&in, 0, sizeof in);
  strcpy(in.user_id, USER);
  strcpy(in.relay_name, HOME);
  in.version = v;
  memset(in.announcement_hash, hfill, 32);
  in.time = t;
  return in;
}

static synod_lookup_info_t lainfo(const char *relay, uint64_t v, uint8_t hfill,
                                  uint64_t t) {
  synod_lookup_info_t in;
  memset(&in, 0, sizeof in);
  strcpy(in.user_id, USER);
  strcpy(in.relay_name, relay);
  in.version = v;
  if (v)
    memset(in.head_hash, hfill, 32);
  in.time = t;
  return in;
}

static synod_signed_t cs_sign(const synod_countersig_info_t *in,
                              const key_t_ *k) {
  synod_signed_t s;
  CU_ASSERT_FATAL(synod_countersig_sign(&s, in, k->sk) == 0);
  return s;
}

static synod_signed_t la_sign(const synod_lookup_info_t *in, const key_t_ *k) {
  synod_signed_t s;
  CU_ASSERT_FATAL(synod_lookup_sign(&s, in, k->sk) == 0);
  return s;
}

static int cs_verify(const synod_signed_t *s, const key_t_ *k,
                     synod_countersig_info_t *out) {
  Synod__V1__Countersignature w = SYNOD__V1__COUNTERSIGNATURE__INIT;
  synod_signed_lend(&w.body, &w.signature, s);
  return synod_countersig_verify(out, &w, k->pk, NOW);
}

static int la_verify(const synod_signed_t *s, const key_t_ *k, uint64_t now,
                     uint64_t window, synod_lookup_info_t *out) {
  Synod__V1__LookupAnswer w = SYNOD__V1__LOOKUP_ANSWER__INIT;
  synod_signed_lend(&w.body, &w.signature, s);
  return synod_lookup_verify(out, &w, k->pk, now, window);
}

/* Signs arbitrary message bytes under label kind. */
static synod_signed_t craft(const ProtobufCMessage *m, synod_sig_kind_t kind,
                            const key_t_ *k) {
  synod_signed_t s;
  s.body_len = protobuf_c_message_get_packed_size(m);
  s.body = malloc(s.body_len + 1);
  CU_ASSERT_FATAL(s.body != NULL);
  CU_ASSERT_FATAL(protobuf_c_message_pack(m, s.body) == s.body_len);
  /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): s.body goes to the caller */
  CU_ASSERT_FATAL(
      synod_sig_sign(s.signature, kind, s.body, s.body_len, k->sk) == 0);
  return s;
}

/* --- countersignatures -------------------------------------------------------
 */

static void test_countersig_roundtrip(void) {
  key_t_ home = newkey(), other = newkey();
  synod_countersig_info_t in = csinfo(4, 0xab, NOW - 5), out;
  synod_signed_t s = cs_sign(&in, &home);

  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), 0);
  CU_ASSERT_STRING_EQUAL(out.user_id, USER);
  CU_ASSERT_STRING_EQUAL(out.relay_name, HOME);
  CU_ASSERT_EQUAL(out.version, 4);
  CU_ASSERT_EQUAL(out.time, NOW - 5);
  CU_ASSERT(memcmp(out.announcement_hash, in.announcement_hash, 32) == 0);
  CU_ASSERT_EQUAL(synod_sig_verify(s.signature, SYNOD_SIG_COUNTERSIGNATURE,
                                   s.body, s.body_len, home.pk),
                  0);
  /* Another relay's key: not verified, and nothing returned. */
  CU_ASSERT_EQUAL(cs_verify(&s, &other, &out), SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(out.version, 0);
  /* Every flipped body byte is refused. */
  size_t refused = 0;
  for (size_t i = 0; i < s.body_len; i++) {
    s.body[i] ^= 0x10;
    refused += cs_verify(&s, &home, &out) != 0;
    s.body[i] ^= 0x10;
  }
  CU_ASSERT_EQUAL(refused, s.body_len);
  /* The home relay's lookup-answer signature over the same bytes is no
   * countersignature. */
  CU_ASSERT_FATAL(synod_sig_sign(s.signature, SYNOD_SIG_LOOKUP_ANSWER, s.body,
                                 s.body_len, home.sk) == 0);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), SYNOD_EVERIFY);
  synod_signed_free(&s);
  CU_ASSERT_PTR_NULL(s.body);
}

static void test_countersig_rules(void) {
  key_t_ home = newkey();
  synod_countersig_info_t in, out;
  synod_signed_t s;

  /* Only the home relay may countersign for its users. */
  in = csinfo(1, 1, NOW);
  strcpy(in.relay_name, "b.example");
  CU_ASSERT_EQUAL(synod_countersig_sign(&s, &in, home.sk), SYNOD_EDENIED);
  CU_ASSERT_PTR_NULL(s.body);
  in = csinfo(0, 1, NOW);
  CU_ASSERT_EQUAL(synod_countersig_sign(&s, &in, home.sk), SYNOD_EINVAL);
  in = csinfo(1, 1, NOW);
  strcpy(in.user_id, "alice");
  CU_ASSERT_EQUAL(synod_countersig_sign(&s, &in, home.sk), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_countersig_sign(&s, NULL, home.sk), SYNOD_EINVAL);

  /* Clock: 300 s of skew, not 301. */
  in = csinfo(1, 1, NOW + 300);
  s = cs_sign(&in, &home);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), 0);
  synod_signed_free(&s);
  in = csinfo(1, 1, NOW + 301);
  s = cs_sign(&in, &home);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), SYNOD_EINVAL);
  synod_signed_free(&s);

  /* Crafted bodies, correctly signed by the key, refused by content. */
  uint8_t h[32];
  memset(h, 3, 32);
  Synod__V1__CountersignatureBody b;
  synod__v1__countersignature_body__init(&b);
  b.user_id = synod_wire_lend(USER);
  b.relay_name = synod_wire_lend("b.example");
  b.version = 1;
  b.announcement_hash.data = h;
  b.announcement_hash.len = 32;
  s = craft(&b.base, SYNOD_SIG_COUNTERSIGNATURE, &home);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), SYNOD_EDENIED);
  synod_signed_free(&s);
  b.relay_name = synod_wire_lend(HOME);
  b.announcement_hash.len = 31;
  s = craft(&b.base, SYNOD_SIG_COUNTERSIGNATURE, &home);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), SYNOD_EPARSE);
  synod_signed_free(&s);
  b.announcement_hash.len = 32;
  b.version = 0;
  s = craft(&b.base, SYNOD_SIG_COUNTERSIGNATURE, &home);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), SYNOD_EPARSE);
  synod_signed_free(&s);
  b.version = 1;
  b.relay_name = synod_wire_lend("A.example");
  s = craft(&b.base, SYNOD_SIG_COUNTERSIGNATURE, &home);
  CU_ASSERT_EQUAL(cs_verify(&s, &home, &out), SYNOD_EPARSE);
  synod_signed_free(&s);
  /* Signature of the wrong size. */
  in = csinfo(1, 1, NOW);
  s = cs_sign(&in, &home);
  Synod__V1__Countersignature w = SYNOD__V1__COUNTERSIGNATURE__INIT;
  synod_signed_lend(&w.body, &w.signature, &s);
  w.signature.len = 65;
  CU_ASSERT_EQUAL(synod_countersig_verify(&out, &w, home.pk, NOW),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(synod_countersig_verify(&out, NULL, home.pk, NOW),
                  SYNOD_EINVAL);
  synod_signed_free(&s);
}

/* --- lookup answers
 * ------------------------------------------------------------ */

static void test_lookup_roundtrip(void) {
  key_t_ r = newkey(), other = newkey();
  synod_lookup_info_t in = lainfo("b.example", 7, 0xcd, NOW - 60), out;
  synod_signed_t s = la_sign(&in, &r);
  CU_ASSERT_EQUAL(la_verify(&s, &r, NOW, 0, &out), 0);
  CU_ASSERT_EQUAL(out.version, 7);
  CU_ASSERT_EQUAL(out.time, NOW - 60);
  CU_ASSERT_STRING_EQUAL(out.relay_name, "b.example");
  CU_ASSERT_STRING_EQUAL(out.user_id, USER);
  CU_ASSERT(memcmp(out.head_hash, in.head_hash, 32) == 0);
  CU_ASSERT_EQUAL(la_verify(&s, &other, NOW, 0, &out), SYNOD_EVERIFY);
  CU_ASSERT_STRING_EQUAL(out.relay_name, "");
  synod_signed_free(&s);
  /* "None known": version 0, empty head. */
  in = lainfo("b.example", 0, 0, NOW);
  s = la_sign(&in, &r);
  CU_ASSERT_EQUAL(la_verify(&s, &r, NOW, 0, &out), 0);
  CU_ASSERT_EQUAL(out.version, 0);
  synod_signed_free(&s);
  CU_ASSERT_EQUAL(synod_lookup_verify(&out, NULL, r.pk, NOW, 0), SYNOD_EINVAL);
  in = lainfo("B.example", 1, 1, NOW);
  CU_ASSERT_EQUAL(synod_lookup_sign(&s, &in, r.sk), SYNOD_EINVAL);
}

static void test_lookup_freshness(void) {
  key_t_ r = newkey();
  synod_lookup_info_t out;
  struct {
    uint64_t t, window;
    int expect;
  } cases[] = {
      {NOW - 1800, 0, 0},      {NOW - 1801, 0, SYNOD_ESTALE},
      {NOW + 300, 0, 0},       {NOW + 301, 0, SYNOD_ESTALE},
      {NOW - 60, 60, 0},       {NOW - 61, 60, SYNOD_ESTALE},
      {0, 0, SYNOD_ESTALE},    {UINT64_MAX, 0, SYNOD_ESTALE},
      {NOW - 86400, 86400, 0},
  };
  size_t n = sizeof cases / sizeof cases[0], ok = 0;
  for (size_t i = 0; i < n; i++) {
    synod_lookup_info_t in = lainfo("b.example", 2, 9, cases[i].t);
    synod_signed_t s = la_sign(&in, &r);
    int rc = la_verify(&s, &r, NOW, cases[i].window, &out);
    /* A stale answer is authentic: its content comes back for reporting. */
    ok += rc == cases[i].expect && out.time == cases[i].t && out.version == 2;
    synod_signed_free(&s);
  }
  CU_ASSERT_EQUAL(ok, n);
  /* Near the ends of the clock nothing wraps. */
  synod_lookup_info_t in = lainfo("b.example", 2, 9, 5);
  synod_signed_t s = la_sign(&in, &r);
  CU_ASSERT_EQUAL(la_verify(&s, &r, 0, 0, &out), 0);
  CU_ASSERT_EQUAL(la_verify(&s, &r, UINT64_MAX, UINT64_MAX, &out), 0);
  CU_ASSERT_EQUAL(la_verify(&s, &r, UINT64_MAX, 1, &out), SYNOD_ESTALE);
  synod_signed_free(&s);
}

static void test_lookup_body_rules(void) {
  key_t_ r = newkey();
  uint8_t h[32] = {1};
  synod_lookup_info_t out;
  Synod__V1__LookupAnswerBody b;
  synod__v1__lookup_answer_body__init(&b);
  b.user_id = synod_wire_lend(USER);
  b.relay_name = synod_wire_lend("b.example");
  b.time = NOW;
  /* version 0 with a head, version 3 without one */
  b.head_hash.data = h;
  b.head_hash.len = 32;
  synod_signed_t s = craft(&b.base, SYNOD_SIG_LOOKUP_ANSWER, &r);
  CU_ASSERT_EQUAL(la_verify(&s, &r, NOW, 0, &out), SYNOD_EPARSE);
  synod_signed_free(&s);
  b.version = 3;
  b.head_hash.len = 0;
  s = craft(&b.base, SYNOD_SIG_LOOKUP_ANSWER, &r);
  CU_ASSERT_EQUAL(la_verify(&s, &r, NOW, 0, &out), SYNOD_EPARSE);
  synod_signed_free(&s);
  b.head_hash.len = 32;
  b.user_id = synod_wire_lend("alice@");
  s = craft(&b.base, SYNOD_SIG_LOOKUP_ANSWER, &r);
  CU_ASSERT_EQUAL(la_verify(&s, &r, NOW, 0, &out), SYNOD_EPARSE);
  synod_signed_free(&s);
  /* An embedded NUL in a signed string is malformed (README 3.3). */
  uint8_t nul[] = {0x12, 0x05, 'a', '@', 'b', 0x00, 'c'};
  synod_signed_t raw = {nul, sizeof nul, {0}};
  CU_ASSERT_FATAL(synod_sig_sign(raw.signature, SYNOD_SIG_LOOKUP_ANSWER, nul,
                                 sizeof nul, r.sk) == 0);
  CU_ASSERT_EQUAL(la_verify(&raw, &r, NOW, 0, &out), SYNOD_EPARSE);
}

/* --- equivocation proofs -------------------------------------------------- */

static Synod__V1__Signed as_signed(const synod_signed_t *s) {
  Synod__V1__Signed w = SYNOD__V1__SIGNED__INIT;
  synod_signed_lend(&w.body, &w.signature, s);
  return w;
}

static Synod__V1__Signed ann_signed(const synod_announcement_t *a) {
  Synod__V1__Signed w = SYNOD__V1__SIGNED__INIT;
  w.body.data = a->body;
  w.body.len = a->body_len;
  w.signature.data = synod_wire_lend(a->signature);
  w.signature.len = 64;
  return w;
}

static synod_announcement_t ann(const key_t_ *k, uint64_t t, uint64_t v) {
  synod_device_t d = {1, {0}, "phone"};
  uint8_t ph[32] = {9};
  synod_announce_params_t p = {USER, &d, 1, v, t, v > 1 ? ph : NULL, 0};
  synod_announcement_t a;
  CU_ASSERT_FATAL(synod_announce_sign(&a, &p, k->sk, NULL) == 0);
  return a;
}

static int verify_pair(Synod__V1__EquivocationKind kind,
                       const Synod__V1__Signed *a, const Synod__V1__Signed *b,
                       const synod_relay_key_t *keys, size_t nkeys,
                       synod_proof_verdict_t *v) {
  Synod__V1__EquivocationProof p = SYNOD__V1__EQUIVOCATION_PROOF__INIT;
  p.kind = kind;
  p.first = synod_wire_lend(a);
  p.second = synod_wire_lend(b);
  return synod_proof_verify(v, &p, keys, nkeys);
}

#define K_ANN  SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT
#define K_CS   SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE
#define K_LA   SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_LOOKUP_ANSWER
#define K_NONE SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_UNSPECIFIED

static void test_proof_announcement(void) {
  key_t_ k = newkey(), k2 = newkey();
  synod_announcement_t a = ann(&k, NOW, 3), b = ann(&k, NOW + 1, 3),
                       c = ann(&k, NOW, 4), d = ann(&k2, NOW + 1, 3);
  Synod__V1__Signed sa = ann_signed(&a), sb = ann_signed(&b),
                    sc = ann_signed(&c), sd = ann_signed(&d);
  synod_proof_verdict_t v;
  uint8_t ha[32], hb[32];
  CU_ASSERT_FATAL(synod_sha256(ha, a.body, a.body_len) == 0);
  CU_ASSERT_FATAL(synod_sha256(hb, b.body, b.body_len) == 0);

  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sa, &sb, NULL, 0, &v), 0);
  CU_ASSERT_EQUAL(v.kind, K_ANN);
  CU_ASSERT(memcmp(v.key, k.pk, 32) == 0);
  CU_ASSERT_STRING_EQUAL(v.relay_name, "");
  CU_ASSERT_STRING_EQUAL(v.user_id, USER);
  CU_ASSERT_EQUAL(v.version, 3);
  CU_ASSERT(memcmp(v.first_hash, ha, 32) == 0);
  CU_ASSERT(memcmp(v.second_hash, hb, 32) == 0);
  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sb, &sa, NULL, 0, &v), 0);
  CU_ASSERT(memcmp(v.first_hash, hb, 32) == 0);

  /* Not proofs: one statement twice, two versions, two keys. */
  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sa, &sa, NULL, 0, &v), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sa, &sc, NULL, 0, &v), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sa, &sd, NULL, 0, &v), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(v.version, 0);
  /* A forged second signature. */
  b.signature[10] ^= 1;
  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sa, &sb, NULL, 0, &v), SYNOD_EVERIFY);
  b.signature[10] ^= 1;
  /* The right pair under the wrong kind is not a proof. */
  CU_ASSERT(verify_pair(K_CS, &sa, &sb, NULL, 0, &v) != 0);
  CU_ASSERT(verify_pair(K_LA, &sa, &sb, NULL, 0, &v) != 0);
  CU_ASSERT_EQUAL(verify_pair(K_NONE, &sa, &sb, NULL, 0, &v), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(
      verify_pair((Synod__V1__EquivocationKind)9, &sa, &sb, NULL, 0, &v),
      SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_proof_verify(&v, NULL, NULL, 0), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(verify_pair(K_ANN, &sa, NULL, NULL, 0, &v), SYNOD_EINVAL);
  synod_announcement_free(&a);
  synod_announcement_free(&b);
  synod_announcement_free(&c);
  synod_announcement_free(&d);
}

static void test_proof_countersignature(void) {
  key_t_ home = newkey(), other = newkey();
  synod_relay_key_t keys[] = {{"b.example", {0}}, {HOME, {0}}};
  memcpy(keys[0].key, other.pk, 32);
  memcpy(keys[1].key, home.pk, 32);
  synod_countersig_info_t i1 = csinfo(5, 0x11, NOW), i2 = csinfo(5, 0x22, NOW),
                          i3 = csinfo(5, 0x11, NOW + 9),
                          i4 = csinfo(6, 0x22, NOW);
  synod_signed_t c1 = cs_sign(&i1, &home), c2 = cs_sign(&i2, &home),
                 c3 = cs_sign(&i3, &home), c4 = cs_sign(&i4, &home),
                 forged = cs_sign(&i2, &other);
  Synod__V1__Signed s1 = as_signed(&c1), s2 = as_signed(&c2),
                    s3 = as_signed(&c3), s4 = as_signed(&c4),
                    sf = as_signed(&forged);
  synod_proof_verdict_t v;

  CU_ASSERT_EQUAL(verify_pair(K_CS, &s1, &s2, keys, 2, &v), 0);
  CU_ASSERT_STRING_EQUAL(v.relay_name, HOME);
  CU_ASSERT(memcmp(v.key, home.pk, 32) == 0);
  CU_ASSERT_EQUAL(v.version, 5);
  CU_ASSERT_EQUAL(v.first_hash[0], 0x11);
  CU_ASSERT_EQUAL(v.second_hash[0], 0x22);
  /* Same hash at another time: honest. Other version: no conflict. */
  CU_ASSERT_EQUAL(verify_pair(K_CS, &s1, &s3, keys, 2, &v), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(verify_pair(K_CS, &s1, &s4, keys, 2, &v), SYNOD_EINVAL);
  /* A statement the home relay did not sign frames nobody. */
  CU_ASSERT_EQUAL(verify_pair(K_CS, &s1, &sf, keys, 2, &v), SYNOD_EVERIFY);
  /* The verifier does not know the relay: unverifiable. */
  CU_ASSERT_EQUAL(verify_pair(K_CS, &s1, &s2, keys, 1, &v), SYNOD_EUNKNOWNPEER);
  /* Under a pinned key that is not the signer's. */
  memcpy(keys[1].key, other.pk, 32);
  CU_ASSERT_EQUAL(verify_pair(K_CS, &s1, &s2, keys, 2, &v), SYNOD_EVERIFY);
  memcpy(keys[1].key, home.pk, 32);
  /* Countersignatures presented as lookup answers. */
  CU_ASSERT(verify_pair(K_LA, &s1, &s2, keys, 2, &v) != 0);
  synod_signed_free(&c1);
  synod_signed_free(&c2);
  synod_signed_free(&c3);
  synod_signed_free(&c4);
  synod_signed_free(&forged);
}

static void test_proof_lookup_answer(void) {
  key_t_ r = newkey();
  synod_relay_key_t keys[] = {{"b.example", {0}}};
  memcpy(keys[0].key, r.pk, 32);
  synod_lookup_info_t i1 = lainfo("b.example", 5, 0x11, NOW),
                      i2 = lainfo("b.example", 5, 0x22, NOW + 1),
                      i3 = lainfo("b.example", 5, 0x11, NOW + 100),
                      i4 = lainfo("b.example", 5, 0x22, NOW);
  strcpy(i4.user_id, "bob@a.example");
  synod_signed_t l1 = la_sign(&i1, &r), l2 = la_sign(&i2, &r),
                 l3 = la_sign(&i3, &r), l4 = la_sign(&i4, &r);
  Synod__V1__Signed s1 = as_signed(&l1), s2 = as_signed(&l2),
                    s3 = as_signed(&l3), s4 = as_signed(&l4);
  synod_proof_verdict_t v;

  CU_ASSERT_EQUAL(verify_pair(K_LA, &s1, &s2, keys, 1, &v), 0);
  CU_ASSERT_STRING_EQUAL(v.relay_name, "b.example");
  CU_ASSERT_EQUAL(v.kind, K_LA);
  /* Two honest answers, same head, different times. */
  CU_ASSERT_EQUAL(verify_pair(K_LA, &s1, &s3, keys, 1, &v), SYNOD_EINVAL);
  /* Different users. */
  CU_ASSERT_EQUAL(verify_pair(K_LA, &s1, &s4, keys, 1, &v), SYNOD_EINVAL);
  /* The proof ignores time: answers far outside any window still bind. */
  synod_lookup_info_t old = lainfo("b.example", 5, 0x33, 1);
  synod_signed_t lo = la_sign(&old, &r);
  Synod__V1__Signed so = as_signed(&lo);
  CU_ASSERT_EQUAL(verify_pair(K_LA, &so, &s1, keys, 1, &v), 0);
  synod_signed_free(&lo);
  synod_signed_free(&l1);
  synod_signed_free(&l2);
  synod_signed_free(&l3);
  synod_signed_free(&l4);
}

/* build: canonical order, owned copies, survives a protobuf round trip. */
static void test_proof_build(void) {
  key_t_ r = newkey();
  synod_relay_key_t keys[] = {{"b.example", {0}}};
  memcpy(keys[0].key, r.pk, 32);
  synod_lookup_info_t i1 = lainfo("b.example", 5, 0x11, NOW),
                      i2 = lainfo("b.example", 5, 0x22, NOW);
  synod_signed_t l1 = la_sign(&i1, &r), l2 = la_sign(&i2, &r);
  Synod__V1__Signed s1 = as_signed(&l1), s2 = as_signed(&l2);
  synod_proof_t p, q;
  synod_proof_verdict_t v, vq;

  CU_ASSERT_EQUAL_FATAL(synod_proof_build(&p, &v, K_LA, &s1, &s2, keys, 1), 0);
  CU_ASSERT_EQUAL_FATAL(synod_proof_build(&q, &vq, K_LA, &s2, &s1, keys, 1), 0);
  CU_ASSERT_EQUAL(p.kind, K_LA);
  CU_ASSERT_EQUAL(p.first.body_len, q.first.body_len);
  CU_ASSERT(memcmp(p.first.body, q.first.body, p.first.body_len) == 0);
  CU_ASSERT(memcmp(p.second.body, q.second.body, p.second.body_len) == 0);
  CU_ASSERT(memcmp(v.first_hash, vq.first_hash, 32) == 0);
  synod_proof_free(&q);
  /* The copies are independent of the inputs. */
  synod_signed_free(&l1);
  synod_signed_free(&l2);

  Synod__V1__EquivocationProof w;
  Synod__V1__Signed f, s;
  synod_proof_lend(&w, &f, &s, &p);
  size_t n = synod__v1__equivocation_proof__get_packed_size(&w);
  uint8_t *buf = malloc(n);
  CU_ASSERT_FATAL(buf != NULL);
  CU_ASSERT_FATAL(synod__v1__equivocation_proof__pack(&w, buf) == n);
  ProtobufCMessage *m;
  CU_ASSERT_FATAL(
      synod_wire_unpack_message(&synod__v1__equivocation_proof__descriptor, buf,
                                n, &m) == 0);
  CU_ASSERT_EQUAL(
      synod_proof_verify(&v, (Synod__V1__EquivocationProof *)m, keys, 1), 0);
  CU_ASSERT_STRING_EQUAL(v.relay_name, "b.example");
  synod_wire_free_message(m);
  free(buf);

  /* Not a proof: nothing built, nothing leaked. */
  Synod__V1__Signed pf = as_signed(&p.first);
  CU_ASSERT_EQUAL(synod_proof_build(&q, &vq, K_LA, &pf, &pf, keys, 1),
                  SYNOD_EINVAL);
  CU_ASSERT_PTR_NULL(q.first.body);
  CU_ASSERT_EQUAL(vq.version, 0);
  synod_proof_free(&p);
  synod_proof_free(NULL);
}

static CU_TestInfo tests[] = {
    {"countersig_roundtrip", test_countersig_roundtrip},
    {"countersig_rules", test_countersig_rules},
    {"lookup_roundtrip", test_lookup_roundtrip},
    {"lookup_freshness", test_lookup_freshness},
    {"lookup_body_rules", test_lookup_body_rules},
    {"proof_announcement", test_proof_announcement},
    {"proof_countersignature", test_proof_countersignature},
    {"proof_lookup_answer", test_proof_lookup_answer},
    {"proof_build", test_proof_build},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"statement", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
