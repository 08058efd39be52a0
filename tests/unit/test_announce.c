/*
 * lib/announce.c: building, verifying and chaining key announcements
 * (proto/README.md 7.1). Every refusal is checked for its exact code.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/announce.h"
#include "synod/sig.h"
#include "synod/wire.h"

#define NOW  UINT64_C(1700000000)
#define USER "alice@a.example"

typedef struct key {
  uint8_t pk[32], sk[32];
} key_t_;

static key_t_ newkey(void) {
  key_t_ k = {0};
  CU_ASSERT_FATAL(synod_ed25519_keygen(k.pk, k.sk) == 0);
  return k;
}

static synod_device_t dev(uint32_t id, uint8_t fill) {
  synod_device_t d;
  d.device_id = id;
  memset(d.x25519_key, fill, sizeof d.x25519_key);
  d.name = "laptop";
  return d;
}

/* Signs version v of USER after prev (NULL for v1). */
static synod_announcement_t mk(const key_t_ *k, uint64_t v,
                               const synod_announcement_t *prev,
                               const key_t_ *cont, int reset, uint64_t t) {
  synod_device_t d = dev(1, (uint8_t)v);
  uint8_t ph[32];
  synod_announce_params_t p = {USER, &d, 1, v, t, NULL, reset};
  if (prev) {
    CU_ASSERT_FATAL(synod_announce_hash(ph, prev->body, prev->body_len) == 0);
    p.prev_hash = ph;
  }
  synod_announcement_t a;
  CU_ASSERT_FATAL(synod_announce_sign(&a, &p, k->sk, cont ? cont->sk : NULL) ==
                  0);
  return a;
}

static int verify(const synod_announcement_t *a, synod_announce_info_t *info) {
  Synod__V1__Announcement w;
  synod_announcement_lend(&w, a);
  return synod_announce_verify(info, &w, NOW);
}

/* Signs an arbitrary body with k: for the shapes synod_announce_sign()
 * refuses to make. */
static synod_announcement_t craft(const Synod__V1__AnnouncementBody *b,
                                  const key_t_ *k) {
  synod_announcement_t a;
  memset(&a, 0, sizeof a);
  a.body_len = synod__v1__announcement_body__get_packed_size(b);
  a.body = malloc(a.body_len + 1);
  CU_ASSERT_FATAL(a.body != NULL);
  CU_ASSERT_FATAL(synod__v1__announcement_body__pack(b, a.body) == a.body_len);
  /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): a.body goes to the caller */
  CU_ASSERT_FATAL(synod_sig_sign(a.signature, SYNOD_SIG_ANNOUNCEMENT, a.body,
                                 a.body_len, k->sk) == 0);
  return a;
}

static void test_sign_verify_roundtrip(void) {
  key_t_ k = newkey();
  synod_device_t d[3] = {dev(7, 0x11), dev(9, 0x22), dev(1, 0x33)};
  d[1].name = NULL;
  synod_announce_params_t p = {USER, d, 3, 1, NOW - 10, NULL, 0};
  synod_announcement_t a;
  synod_announce_info_t info;
  uint8_t h[32];

  CU_ASSERT_EQUAL_FATAL(synod_announce_sign(&a, &p, k.sk, NULL), 0);
  CU_ASSERT_EQUAL(a.has_continuity, 0);
  CU_ASSERT_EQUAL_FATAL(verify(&a, &info), 0);
  CU_ASSERT_STRING_EQUAL(info.user_id, USER);
  CU_ASSERT(memcmp(info.identity_key, k.pk, 32) == 0);
  CU_ASSERT_EQUAL(info.version, 1);
  CU_ASSERT_EQUAL(info.time, NOW - 10);
  CU_ASSERT_EQUAL(info.reset, 0);
  CU_ASSERT_EQUAL(info.ndevices, 3);
  CU_ASSERT_EQUAL(info.devices[0].device_id, 7);
  CU_ASSERT_EQUAL(info.devices[2].device_id, 1);
  CU_ASSERT_EQUAL(info.devices[1].x25519_key[31], 0x22);
  /* The hash is SHA-256 of the exact body bytes, nothing else. */
  CU_ASSERT_EQUAL(synod_sha256(h, a.body, a.body_len), 0);
  CU_ASSERT(memcmp(info.hash, h, 32) == 0);
  /* The signature is over label || 0 || body, with the body's own key. */
  CU_ASSERT_EQUAL(synod_sig_verify(a.signature, SYNOD_SIG_ANNOUNCEMENT, a.body,
                                   a.body_len, k.pk),
                  0);
  /* The body parses as an AnnouncementBody carrying the parameters. */
  ProtobufCMessage *m;
  CU_ASSERT_EQUAL_FATAL(
      synod_wire_unpack_message(&synod__v1__announcement_body__descriptor,
                                a.body, a.body_len, &m),
      0);
  const Synod__V1__AnnouncementBody *b = (const Synod__V1__AnnouncementBody *)m;
  CU_ASSERT_STRING_EQUAL(b->devices[0]->name, "laptop");
  CU_ASSERT_STRING_EQUAL(b->devices[1]->name, "");
  CU_ASSERT_EQUAL(b->prev_hash.len, 0);
  CU_ASSERT_EQUAL(b->recovery_key.len, 0);
  synod_wire_free_message(m);
  synod_announcement_free(&a);
  CU_ASSERT_PTR_NULL(a.body);
  synod_announcement_free(NULL);
}

static void test_sign_refuses(void) {
  key_t_ k = newkey(), k2 = newkey();
  synod_device_t d[17];
  uint8_t ph[32] = {1};
  synod_announcement_t a;
  for (uint32_t i = 0; i < 17; i++)
    d[i] = dev(i, 1);
  synod_announce_params_t ok = {USER, d, 1, 2, NOW, ph, 0};
  synod_announce_params_t p;
  size_t refused = 0, cases = 0;

#define REFUSE(expr, cont)                                                     \
  do {                                                                         \
    p = ok;                                                                    \
    expr;                                                                      \
    cases++;                                                                   \
    refused += synod_announce_sign(&a, &p, k.sk, cont) == SYNOD_EINVAL &&      \
               a.body == NULL;                                                 \
  } while (0)
  REFUSE(p.user_id = "Alice@a.example", NULL);
  REFUSE(p.user_id = "alice", NULL);
  REFUSE(p.ndevices = 0, NULL);
  REFUSE(p.ndevices = 17, NULL);
  REFUSE((p.devices = (synod_device_t[]){dev(3, 1), dev(3, 2)}, p.ndevices = 2),
         NULL);
  REFUSE(p.version = 0, NULL);
  REFUSE(p.prev_hash = NULL, NULL);
  REFUSE((p.version = 1), NULL); /* v1 with a prev hash */
  REFUSE((p.reset = 1), k2.sk);  /* reset with continuity */
  REFUSE((void)0, k.sk);         /* continuity, same key */
  REFUSE((p.version = 1, p.prev_hash = NULL), k2.sk);
  REFUSE((p.version = 1, p.prev_hash = NULL, p.reset = 1), NULL);
#undef REFUSE
  CU_ASSERT_EQUAL(refused, cases);
  CU_ASSERT_EQUAL(cases, 12);
  CU_ASSERT_EQUAL(synod_announce_sign(&a, NULL, k.sk, NULL), SYNOD_EINVAL);
  /* The unchanged parameters do sign, with 16 devices at most. */
  p = ok;
  p.ndevices = 16;
  CU_ASSERT_EQUAL(synod_announce_sign(&a, &p, k.sk, NULL), 0);
  synod_announcement_free(&a);
}

static void test_verify_tampering(void) {
  key_t_ k = newkey(), k2 = newkey();
  synod_announcement_t a = mk(&k, 1, NULL, NULL, 0, NOW);
  synod_announce_info_t info;
  Synod__V1__Announcement w;
  size_t refused = 0;

  for (size_t i = 0; i < a.body_len; i++) {
    a.body[i] ^= 0x04;
    int rc = verify(&a, &info);
    refused += rc == SYNOD_EVERIFY || rc == SYNOD_EPARSE;
    a.body[i] ^= 0x04;
  }
  CU_ASSERT_EQUAL(refused, a.body_len);
  refused = 0;
  for (size_t i = 0; i < 64; i++) {
    a.signature[i] ^= 0x80;
    refused += verify(&a, &info) == SYNOD_EVERIFY;
    a.signature[i] ^= 0x80;
  }
  CU_ASSERT_EQUAL(refused, 64);
  /* A signature by another key, over the same body, is refused. */
  uint8_t good[64];
  memcpy(good, a.signature, 64);
  CU_ASSERT_FATAL(synod_sig_sign(a.signature, SYNOD_SIG_ANNOUNCEMENT, a.body,
                                 a.body_len, k2.sk) == 0);
  CU_ASSERT_EQUAL(verify(&a, &info), SYNOD_EVERIFY);
  /* So is the right key under another label. */
  CU_ASSERT_FATAL(synod_sig_sign(a.signature, SYNOD_SIG_CONTINUITY, a.body,
                                 a.body_len, k.sk) == 0);
  CU_ASSERT_EQUAL(verify(&a, &info), SYNOD_EVERIFY);
  memcpy(a.signature, good, 64);
  CU_ASSERT_EQUAL(verify(&a, &info), 0);
  /* Wrong sizes of the wrapper's signatures. */
  synod_announcement_lend(&w, &a);
  w.signature.len = 63;
  CU_ASSERT_EQUAL(synod_announce_verify(&info, &w, NOW), SYNOD_EPARSE);
  synod_announcement_lend(&w, &a);
  w.continuity_signature.data = a.continuity;
  w.continuity_signature.len = 32;
  CU_ASSERT_EQUAL(synod_announce_verify(&info, &w, NOW), SYNOD_EPARSE);
  CU_ASSERT_EQUAL(synod_announce_verify(&info, NULL, NOW), SYNOD_EINVAL);
  /* A failed verify leaves nothing behind. */
  CU_ASSERT_EQUAL(info.version, 0);
  CU_ASSERT_EQUAL(info.ndevices, 0);
  synod_announcement_free(&a);
}

static void test_verify_clock(void) {
  key_t_ k = newkey();
  synod_announce_info_t info;
  synod_announcement_t edge = mk(&k, 1, NULL, NULL, 0, NOW + 300);
  synod_announcement_t over = mk(&k, 1, NULL, NULL, 0, NOW + 301);
  synod_announcement_t old = mk(&k, 1, NULL, NULL, 0, 1);
  CU_ASSERT_EQUAL(verify(&edge, &info), 0);
  CU_ASSERT_EQUAL(verify(&over, &info), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(verify(&old, &info), 0); /* no lower bound */
  Synod__V1__Announcement w;
  synod_announcement_lend(&w, &edge);
  CU_ASSERT_EQUAL(synod_announce_verify(&info, &w, UINT64_MAX), SYNOD_EINVAL);
  synod_announcement_free(&edge);
  synod_announcement_free(&over);
  synod_announcement_free(&old);
}

/* Bodies synod_announce_sign() never makes, signed by their own key: each
 * is refused with its code after the signature verified. */
static void test_verify_body_rules(void) {
  key_t_ k = newkey(), k2 = newkey();
  uint8_t x[32], ph[32], shortkey[31];
  memset(x, 5, 32);
  memset(ph, 6, 32);
  memset(shortkey, 7, 31);
  Synod__V1__DeviceKey d[17], *dp[17];
  for (int i = 0; i < 17; i++) {
    synod__v1__device_key__init(&d[i]);
    d[i].device_id = (uint32_t)i;
    d[i].x25519_key.data = x;
    d[i].x25519_key.len = 32;
    dp[i] = &d[i];
  }
  Synod__V1__AnnouncementBody base, b;
  synod__v1__announcement_body__init(&base);
  base.user_id = synod_wire_lend(USER);
  base.identity_key.data = k.pk;
  base.identity_key.len = 32;
  base.devices = dp;
  base.n_devices = 1;
  base.version = 2;
  base.time = NOW;
  base.prev_hash.data = ph;
  base.prev_hash.len = 32;

  size_t n = 0, ok = 0;
  synod_announce_info_t info;
#define CASE(expr, code, cont)                                                 \
  do {                                                                         \
    b = base;                                                                  \
    expr;                                                                      \
    synod_announcement_t a = craft(&b, &k);                                    \
    if (cont) {                                                                \
      a.has_continuity = 1;                                                    \
      CU_ASSERT_FATAL(synod_sig_sign(a.continuity, SYNOD_SIG_CONTINUITY,       \
                                     a.body, a.body_len, k2.sk) == 0);         \
    }                                                                          \
    int rc_ = verify(&a, &info);                                               \
    ok += rc_ == (code);                                                       \
    if (rc_ != (code))                                                         \
      fprintf(stderr, "case %zu: got %s\n", n, synod_err_name(rc_));           \
    n++;                                                                       \
    synod_announcement_free(&a);                                               \
  } while (0)
  CASE((void)0, 0, 0);
  CASE(b.n_devices = 16, 0, 0);
  CASE(b.n_devices = 0, SYNOD_EPARSE, 0);
  CASE(b.n_devices = 17, SYNOD_EPARSE, 0);
  CASE((b.n_devices = 2, d[1].device_id = 0), SYNOD_EPARSE, 0);
  d[1].device_id = 1;
  CASE((d[0].x25519_key.len = 31), SYNOD_EPARSE, 0);
  d[0].x25519_key.len = 32;
  CASE(b.user_id = synod_wire_lend("alice@A.example"), SYNOD_EPARSE, 0);
  CASE(b.user_id = synod_wire_lend(""), SYNOD_EPARSE, 0);
  CASE(b.version = 0, SYNOD_EPARSE, 0);
  CASE(b.version = 1, SYNOD_EPARSE, 0); /* v1 with a prev_hash */
  CASE(b.prev_hash.len = 0, SYNOD_EPARSE, 0);
  CASE(b.prev_hash.len = 31, SYNOD_EPARSE, 0);
  CASE((b.version = 1, b.prev_hash.len = 0, b.reset = 1), SYNOD_ECHAIN, 0);
  CASE((b.version = 1, b.prev_hash.len = 0), SYNOD_ECHAIN, 1);
  CASE(b.reset = 1, SYNOD_ECHAIN, 1);
  /* A short identity key cannot verify anything: refused before. */
  CASE((b.identity_key.data = shortkey, b.identity_key.len = 31), SYNOD_EPARSE,
       0);
#undef CASE
  CU_ASSERT_EQUAL(n, 16);
  CU_ASSERT_EQUAL(ok, n);
  /* recovery_key is reserved: ignored by v1 receivers, not refused. */
  b = base;
  b.recovery_key.data = x;
  b.recovery_key.len = 32;
  synod_announcement_t a = craft(&b, &k);
  CU_ASSERT_EQUAL(verify(&a, &info), 0);
  synod_announcement_free(&a);
}

/* An unknown field is inside the signed, hashed bytes and is ignored. */
static void test_unknown_field_kept(void) {
  key_t_ k = newkey();
  synod_announcement_t a = mk(&k, 1, NULL, NULL, 0, NOW), b;
  synod_announce_info_t ia, ib;
  memset(&b, 0, sizeof b);
  b.body_len = a.body_len + 3;
  b.body = malloc(b.body_len);
  CU_ASSERT_FATAL(b.body != NULL);
  memcpy(b.body, a.body, a.body_len);
  b.body[a.body_len] = 0xf8; /* field 127, varint */
  b.body[a.body_len + 1] = 0x07;
  b.body[a.body_len + 2] = 0x01;
  /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): freed below */
  CU_ASSERT_FATAL(synod_sig_sign(b.signature, SYNOD_SIG_ANNOUNCEMENT, b.body,
                                 b.body_len, k.sk) == 0);
  CU_ASSERT_EQUAL(verify(&a, &ia), 0);
  CU_ASSERT_EQUAL(verify(&b, &ib), 0);
  CU_ASSERT_EQUAL(ia.version, ib.version);
  CU_ASSERT(memcmp(ia.hash, ib.hash, 32) != 0);
  synod_announcement_free(&a);
  synod_announcement_free(&b);
}

/* --- chains --------------------------------------------------------------- */

static int chain(synod_chain_outcome_t *o, const synod_chain_head_t *held,
                 const synod_announcement_t *const *as, size_t n) {
  Synod__V1__Announcement w[8];
  const Synod__V1__Announcement *wp[8];
  CU_ASSERT_FATAL(n <= 8);
  for (size_t i = 0; i < n; i++) {
    synod_announcement_lend(&w[i], as[i]);
    wp[i] = &w[i];
  }
  return synod_chain_check(o, USER, held, wp, n, NOW);
}

static synod_chain_head_t head_of(const synod_announcement_t *a) {
  synod_announce_info_t info;
  synod_chain_head_t h;
  CU_ASSERT_FATAL(verify(a, &info) == 0);
  synod_chain_head_from_info(&h, &info);
  return h;
}

static void test_chain_same_key(void) {
  key_t_ k = newkey();
  synod_announcement_t a1 = mk(&k, 1, NULL, NULL, 0, NOW - 30);
  synod_announcement_t a2 = mk(&k, 2, &a1, NULL, 0, NOW - 20);
  synod_announcement_t a3 = mk(&k, 3, &a2, NULL, 0, NOW - 10);
  synod_chain_head_t h1 = head_of(&a1), h3 = head_of(&a3);
  synod_chain_outcome_t o;

  CU_ASSERT_EQUAL(
      chain(&o, NULL, (const synod_announcement_t *[]){&a1, &a2, &a3}, 3), 0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EXTENDS);
  CU_ASSERT_EQUAL(o.head.version, 3);
  CU_ASSERT(memcmp(o.head.hash, h3.hash, 32) == 0);
  CU_ASSERT_EQUAL(o.resets, 0);
  /* From a held head: only the links above it. */
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&a2, &a3}, 2),
                  0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EXTENDS);
  CU_ASSERT_EQUAL(o.head.version, 3);
  /* Links starting at the held head itself anchor there. */
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&a1, &a2}, 2),
                  0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EXTENDS);
  CU_ASSERT_EQUAL(o.head.version, 2);
  /* The held head again: equal. */
  CU_ASSERT_EQUAL(chain(&o, &h3, (const synod_announcement_t *[]){&a3}, 1), 0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EQUAL);
  CU_ASSERT_EQUAL(chain(&o, &h3, (const synod_announcement_t *[]){&a2, &a3}, 2),
                  0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EQUAL);
  /* Older than the held head: rollback, whole sequence. */
  CU_ASSERT_EQUAL(chain(&o, &h3, (const synod_announcement_t *[]){&a1, &a2}, 2),
                  SYNOD_EROLLBACK);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_NONE);
  CU_ASSERT_EQUAL(o.index, 2);
  CU_ASSERT_EQUAL(chain(&o, &h3, (const synod_announcement_t *[]){&a1}, 1),
                  SYNOD_EROLLBACK);
  /* A gap above the held head, a gap inside, wrong order: no chain. */
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&a3}, 1),
                  SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(o.index, 0);
  CU_ASSERT_EQUAL(
      chain(&o, NULL, (const synod_announcement_t *[]){&a1, &a3}, 2),
      SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(o.index, 1);
  CU_ASSERT_EQUAL(
      chain(&o, NULL, (const synod_announcement_t *[]){&a2, &a1}, 2),
      SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(chain(&o, &h3, (const synod_announcement_t *[]){&a1, &a3}, 2),
                  SYNOD_ECHAIN);
  /* No links, bad user id. */
  CU_ASSERT_EQUAL(synod_chain_check(&o, USER, NULL, NULL, 0, NOW),
                  SYNOD_EINVAL);
  Synod__V1__Announcement w;
  const Synod__V1__Announcement *wp = &w;
  synod_announcement_lend(&w, &a1);
  CU_ASSERT_EQUAL(synod_chain_check(&o, "nobody", NULL, &wp, 1, NOW),
                  SYNOD_EINVAL);
  /* Links of another user. */
  CU_ASSERT_EQUAL(synod_chain_check(&o, "bob@a.example", NULL, &wp, 1, NOW),
                  SYNOD_ECHAIN);
  synod_announcement_free(&a1);
  synod_announcement_free(&a2);
  synod_announcement_free(&a3);
}

static void test_chain_links_rules(void) {
  key_t_ k = newkey();
  synod_announcement_t a1 = mk(&k, 1, NULL, NULL, 0, NOW - 30);
  synod_announcement_t other = mk(&k, 1, NULL, NULL, 0, NOW - 31);
  /* prev_hash of another body at the previous version */
  synod_announcement_t bad_prev = mk(&k, 2, &other, NULL, 0, NOW - 20);
  /* time going backwards */
  synod_announcement_t back = mk(&k, 2, &a1, NULL, 0, NOW - 40);
  /* reset with an unchanged key */
  synod_announcement_t same_reset = mk(&k, 2, &a1, NULL, 1, NOW - 20);
  synod_chain_head_t h1 = head_of(&a1);
  synod_chain_outcome_t o;
  CU_ASSERT_EQUAL(
      chain(&o, &h1, (const synod_announcement_t *[]){&bad_prev}, 1),
      SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(
      chain(&o, NULL, (const synod_announcement_t *[]){&a1, &bad_prev}, 2),
      SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&back}, 1),
                  SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(
      chain(&o, &h1, (const synod_announcement_t *[]){&same_reset}, 1),
      SYNOD_ECHAIN);
  /* A bad signature inside is reported with its index. */
  synod_announcement_t a2 = mk(&k, 2, &a1, NULL, 0, NOW - 20);
  a2.signature[0] ^= 1;
  CU_ASSERT_EQUAL(
      chain(&o, NULL, (const synod_announcement_t *[]){&a1, &a2}, 2),
      SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(o.index, 1);
  synod_announcement_free(&a1);
  synod_announcement_free(&a2);
  synod_announcement_free(&other);
  synod_announcement_free(&bad_prev);
  synod_announcement_free(&back);
  synod_announcement_free(&same_reset);
}

static void test_chain_key_change(void) {
  key_t_ k1 = newkey(), k2 = newkey(), k3 = newkey();
  synod_announcement_t a1 = mk(&k1, 1, NULL, NULL, 0, NOW - 30);
  synod_announcement_t cont = mk(&k2, 2, &a1, &k1, 0, NOW - 20);
  synod_announcement_t nocont = mk(&k2, 2, &a1, NULL, 0, NOW - 20);
  synod_announcement_t wrongcont = mk(&k2, 2, &a1, &k3, 0, NOW - 20);
  synod_announcement_t reset = mk(&k2, 2, &a1, NULL, 1, NOW - 20);
  synod_chain_head_t h1 = head_of(&a1);
  synod_chain_outcome_t o;

  CU_ASSERT_EQUAL(cont.has_continuity, 1);
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&cont}, 1),
                  0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EXTENDS);
  CU_ASSERT(memcmp(o.head.identity_key, k2.pk, 32) == 0);
  CU_ASSERT_EQUAL(o.head.has_continuity, 1);
  /* The continuity signature is outside the hashed body. */
  synod_announce_info_t ic, ic2;
  CU_ASSERT_EQUAL(verify(&cont, &ic), 0);
  cont.has_continuity = 0;
  CU_ASSERT_EQUAL(verify(&cont, &ic2), 0);
  CU_ASSERT(memcmp(ic.hash, ic2.hash, 32) == 0);
  /* ... and without it the key change does not extend. */
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&cont}, 1),
                  SYNOD_ECHAIN);
  cont.has_continuity = 1;
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&nocont}, 1),
                  SYNOD_ECHAIN);
  CU_ASSERT_EQUAL(
      chain(&o, &h1, (const synod_announcement_t *[]){&wrongcont}, 1),
      SYNOD_ECHAIN);
  /* Continuity over another label does not count. */
  synod_announcement_t relabel = mk(&k2, 2, &a1, &k1, 0, NOW - 20);
  CU_ASSERT_FATAL(synod_sig_sign(relabel.continuity, SYNOD_SIG_ANNOUNCEMENT,
                                 relabel.body, relabel.body_len, k1.sk) == 0);
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&relabel}, 1),
                  SYNOD_ECHAIN);
  /* A continuity signature where the key did not change is refused. */
  synod_announcement_t stray = mk(&k1, 2, &a1, NULL, 0, NOW - 20);
  stray.has_continuity = 1;
  CU_ASSERT_FATAL(synod_sig_sign(stray.continuity, SYNOD_SIG_CONTINUITY,
                                 stray.body, stray.body_len, k1.sk) == 0);
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&stray}, 1),
                  SYNOD_ECHAIN);
  /* A reset is legal and reported as one. */
  CU_ASSERT_EQUAL(chain(&o, &h1, (const synod_announcement_t *[]){&reset}, 1),
                  0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_RESET);
  CU_ASSERT_EQUAL(o.resets, 1);
  CU_ASSERT_EQUAL(o.head.reset, 1);
  /* Reset then continuity: still a reset over the whole sequence. */
  synod_announcement_t after = mk(&k3, 3, &reset, &k2, 0, NOW - 10);
  CU_ASSERT_EQUAL(
      chain(&o, &h1, (const synod_announcement_t *[]){&reset, &after}, 2), 0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_RESET);
  CU_ASSERT_EQUAL(o.resets, 1);
  CU_ASSERT_EQUAL(o.head.version, 3);
  /* Held past the reset: only what is new counts. */
  synod_chain_head_t h2 = head_of(&reset);
  CU_ASSERT_EQUAL(
      chain(&o, &h2, (const synod_announcement_t *[]){&reset, &after}, 2), 0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_EXTENDS);
  CU_ASSERT_EQUAL(o.resets, 0);
  /* No held head: a reset anchor is reported. */
  CU_ASSERT_EQUAL(chain(&o, NULL, (const synod_announcement_t *[]){&reset}, 1),
                  0);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_RESET);
  synod_announcement_free(&a1);
  synod_announcement_free(&cont);
  synod_announcement_free(&nocont);
  synod_announcement_free(&wrongcont);
  synod_announcement_free(&reset);
  synod_announcement_free(&relabel);
  synod_announcement_free(&stray);
  synod_announcement_free(&after);
}

static void test_chain_conflict(void) {
  key_t_ k = newkey();
  synod_announcement_t a1 = mk(&k, 1, NULL, NULL, 0, NOW - 30);
  synod_announcement_t a2 = mk(&k, 2, &a1, NULL, 0, NOW - 20);
  synod_announcement_t b2 = mk(&k, 2, &a1, NULL, 0, NOW - 19);
  synod_announcement_t b3 = mk(&k, 3, &b2, NULL, 0, NOW - 10);
  synod_chain_head_t h2 = head_of(&a2);
  synod_chain_outcome_t o;
  synod_announce_info_t ib2;
  CU_ASSERT_FATAL(verify(&b2, &ib2) == 0);

  CU_ASSERT_EQUAL(chain(&o, &h2, (const synod_announcement_t *[]){&b2}, 1),
                  SYNOD_EEQUIVOCATION);
  CU_ASSERT_EQUAL(o.result, SYNOD_CHAIN_CONFLICT);
  CU_ASSERT_EQUAL(o.index, 0);
  CU_ASSERT(memcmp(o.head.hash, ib2.hash, 32) == 0);
  /* A fork below a newer head is found at the held version. */
  CU_ASSERT_EQUAL(
      chain(&o, &h2, (const synod_announcement_t *[]){&a1, &b2, &b3}, 3),
      SYNOD_EEQUIVOCATION);
  CU_ASSERT_EQUAL(o.index, 1);
  /* Without the held version's link, the fork does not link to it. */
  CU_ASSERT_EQUAL(chain(&o, &h2, (const synod_announcement_t *[]){&b3}, 1),
                  SYNOD_ECHAIN);
  synod_announcement_free(&a1);
  synod_announcement_free(&a2);
  synod_announcement_free(&b2);
  synod_announcement_free(&b3);
}

static CU_TestInfo tests[] = {
    {"sign_verify_roundtrip", test_sign_verify_roundtrip},
    {"sign_refuses", test_sign_refuses},
    {"verify_tampering", test_verify_tampering},
    {"verify_clock", test_verify_clock},
    {"verify_body_rules", test_verify_body_rules},
    {"unknown_field_kept", test_unknown_field_kept},
    {"chain_same_key", test_chain_same_key},
    {"chain_links_rules", test_chain_links_rules},
    {"chain_key_change", test_chain_key_change},
    {"chain_conflict", test_chain_conflict},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"announce", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
