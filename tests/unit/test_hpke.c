/*
 * lib/hpke.c against the RFC 9180 test vectors (hpke-x25519-sha256.json,
 * read from the vectors directory at run time): every mode_base entry with
 * AES-128-GCM or ChaCha20-Poly1305 is checked step by step (DeriveKeyPair,
 * Encap/Decap, key schedule, every sequential encryption, every export);
 * the other modes are counted as skipped. Then the failure cases: tampering,
 * wrong keys, sequence exhaustion, low-order points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/hpke.h"

/* Like CU_ASSERT, and names the vector entry on failure. */
#define CHECK_AT(what, idx, cond)                                              \
  do {                                                                         \
    int ok_ = (cond) ? 1 : 0;                                                  \
    CU_assertImplementation(ok_ ? CU_TRUE : CU_FALSE, __LINE__, #cond,         \
                            __FILE__, "", CU_FALSE);                           \
    if (!ok_)                                                                  \
      fprintf(stderr, "hpke entry %zu %s %zu: %s failed\n", entry, (what),     \
              (size_t)(idx), #cond);                                           \
  } while (0)

/* A hex field that must have exactly len bytes, decoded into out. */
static void fixed_field(uint8_t *out, size_t len, json_object *obj,
                        const char *key) {
  size_t n;
  uint8_t *v = test_hex_field(obj, key, &n);
  CU_ASSERT_EQUAL_FATAL(n, len);
  memcpy(out, v, len);
  free(v);
}

static json_object *array_field(json_object *obj, const char *key) {
  json_object *v;
  CU_ASSERT_FATAL(json_object_object_get_ex(obj, key, &v) &&
                  json_object_is_type(v, json_type_array));
  return v;
}

typedef struct hpke_counts {
  size_t entries, skipped, encryptions, exports;
  size_t want_encryptions, want_exports;
} hpke_counts_t;

/* One mode_base entry: every step against the vector. */
static void check_entry(size_t entry, json_object *e, hpke_counts_t *c) {
  synod_hpke_aead_t aead = (synod_hpke_aead_t)test_int_field(e, "aead_id");
  size_t nk = synod_hpke_aead_key_bytes(aead);
  CU_ASSERT_FATAL(nk == 16 || nk == 32);
  size_t ikmElen, ikmRlen, infolen;
  uint8_t *ikmE = test_hex_field(e, "ikmE", &ikmElen);
  uint8_t *ikmR = test_hex_field(e, "ikmR", &ikmRlen);
  uint8_t *info = test_hex_field(e, "info", &infolen);
  uint8_t skEm[32], pkEm[32], skRm[32], pkRm[32], enc[32], shared[32];
  uint8_t key[32], base_nonce[12], exporter_secret[32];
  fixed_field(skEm, 32, e, "skEm");
  fixed_field(pkEm, 32, e, "pkEm");
  fixed_field(skRm, 32, e, "skRm");
  fixed_field(pkRm, 32, e, "pkRm");
  fixed_field(enc, 32, e, "enc");
  fixed_field(shared, 32, e, "shared_secret");
  fixed_field(key, nk, e, "key");
  fixed_field(base_nonce, 12, e, "base_nonce");
  fixed_field(exporter_secret, 32, e, "exporter_secret");

  /* DeriveKeyPair. */
  uint8_t sk[32], pk[32];
  CHECK_AT("step", 0, synod_hpke_derive_keypair(pk, sk, ikmE, ikmElen) == 0);
  CHECK_AT("step", 0, memcmp(sk, skEm, 32) == 0 && memcmp(pk, pkEm, 32) == 0);
  CHECK_AT("step", 1, synod_hpke_derive_keypair(pk, sk, ikmR, ikmRlen) == 0);
  CHECK_AT("step", 1, memcmp(sk, skRm, 32) == 0 && memcmp(pk, pkRm, 32) == 0);

  /* Encap with the vector's ephemeral key, Decap. */
  uint8_t ss[32], ourenc[32];
  CHECK_AT("step", 2, synod_hpke_encap(ss, ourenc, pkRm, skEm) == 0);
  CHECK_AT("step", 2, memcmp(ourenc, enc, 32) == 0);
  CHECK_AT("step", 2, memcmp(ss, shared, 32) == 0);
  memset(ss, 0, sizeof ss);
  CHECK_AT("step", 3, synod_hpke_decap(ss, enc, skRm) == 0);
  CHECK_AT("step", 3, memcmp(ss, shared, 32) == 0);

  /* KeySchedule. */
  synod_hpke_ctx_t ks;
  CHECK_AT("step", 4,
           synod_hpke_key_schedule(&ks, aead, shared, info, infolen) == 0);
  CHECK_AT("step", 4, memcmp(ks.key, key, nk) == 0);
  CHECK_AT("step", 4, memcmp(ks.base_nonce, base_nonce, 12) == 0);
  CHECK_AT("step", 4, memcmp(ks.exporter_secret, exporter_secret, 32) == 0);
  CHECK_AT("step", 4, ks.seq == 0 && ks.aead == aead);
  synod_hpke_ctx_wipe(&ks);

  /* SetupBaseS / SetupBaseR give the same contexts. */
  synod_hpke_ctx_t s, r;
  memset(ourenc, 0, sizeof ourenc);
  CU_ASSERT_FATAL(synod_hpke_setup_base_s(&s, ourenc, aead, info, infolen, pkRm,
                                          skEm) == 0);
  CU_ASSERT_FATAL(synod_hpke_setup_base_r(&r, aead, enc, info, infolen, skRm) ==
                  0);
  CHECK_AT("step", 5, memcmp(ourenc, enc, 32) == 0);
  CHECK_AT("step", 5,
           memcmp(s.key, key, nk) == 0 && memcmp(r.key, key, nk) == 0);
  CHECK_AT("step", 5,
           memcmp(s.base_nonce, base_nonce, 12) == 0 &&
               memcmp(r.base_nonce, base_nonce, 12) == 0);

  /* Every sequential encryption, in order. */
  json_object *encs = array_field(e, "encryptions");
  c->want_encryptions += json_object_array_length(encs);
  for (size_t i = 0; i < json_object_array_length(encs); i++) {
    json_object *x = json_object_array_get_idx(encs, i);
    size_t aadlen, ptlen, ctlen, noncelen;
    uint8_t *aad = test_hex_field(x, "aad", &aadlen);
    uint8_t *pt = test_hex_field(x, "pt", &ptlen);
    uint8_t *ct = test_hex_field(x, "ct", &ctlen);
    uint8_t *nonce = test_hex_field(x, "nonce", &noncelen);
    uint8_t *buf = malloc(ptlen + 16), *back = malloc(ptlen + 1);
    CU_ASSERT_FATAL(buf && back);
    CHECK_AT("encryption", i, ctlen == ptlen + 16 && noncelen == 12);
    /* ComputeNonce(seq) = base_nonce XOR I2OSP(seq, 12), seq = i. */
    uint8_t want_nonce[12];
    memcpy(want_nonce, base_nonce, 12);
    for (size_t b = 0; b < 8; b++)
      want_nonce[11 - b] ^= (uint8_t)((uint64_t)i >> (8 * b));
    CHECK_AT("encryption", i, memcmp(nonce, want_nonce, 12) == 0);
    CHECK_AT("encryption", i, s.seq == i && r.seq == i);
    /* The vector's nonce and key open the vector's ciphertext... */
    CHECK_AT("encryption", i,
             synod_aead_decrypt(nk == 16 ? SYNOD_AEAD_AES128GCM
                                         : SYNOD_AEAD_CHACHA20POLY1305,
                                back, ct, ctlen, aad, aadlen, nonce, key) == 0);
    /* ...and our context seals to exactly that ciphertext. */
    CHECK_AT("encryption", i,
             synod_hpke_seal(&s, buf, pt, ptlen, aad, aadlen) == 0 &&
                 memcmp(buf, ct, ctlen) == 0);
    /* A tampered copy fails and does not advance the receiver. */
    if (i % 64 == 0) {
      memcpy(buf, ct, ctlen);
      buf[i % ctlen] ^= 0x01;
      CHECK_AT("encryption", i,
               synod_hpke_open(&r, back, buf, ctlen, aad, aadlen) ==
                   SYNOD_EDECRYPT);
      CHECK_AT("encryption", i, r.seq == i);
    }
    memset(back, 0, ptlen + 1);
    CHECK_AT("encryption", i,
             synod_hpke_open(&r, back, ct, ctlen, aad, aadlen) == 0 &&
                 memcmp(back, pt, ptlen) == 0);
    CHECK_AT("encryption", i, s.seq == i + 1 && r.seq == i + 1);
    c->encryptions++;
    free(aad);
    free(pt);
    free(ct);
    free(nonce);
    free(buf);
    free(back);
  }

  /* Every export, from both sides. */
  json_object *exps = array_field(e, "exports");
  c->want_exports += json_object_array_length(exps);
  for (size_t i = 0; i < json_object_array_length(exps); i++) {
    json_object *x = json_object_array_get_idx(exps, i);
    size_t ctxlen, vallen;
    uint8_t *ectx = test_hex_field(x, "exporter_context", &ctxlen);
    uint8_t *val = test_hex_field(x, "exported_value", &vallen);
    int64_t L = test_int_field(x, "L");
    CHECK_AT("export", i, L > 0 && (size_t)L == vallen);
    uint8_t *out = malloc(vallen);
    CU_ASSERT_FATAL(out != NULL);
    CHECK_AT("export", i,
             synod_hpke_export(&s, out, vallen, ectx, ctxlen) == 0 &&
                 memcmp(out, val, vallen) == 0);
    memset(out, 0, vallen);
    CHECK_AT("export", i,
             synod_hpke_export(&r, out, vallen, ectx, ctxlen) == 0 &&
                 memcmp(out, val, vallen) == 0);
    c->exports++;
    free(out);
    free(ectx);
    free(val);
  }

  /* The wrong recipient key (the ephemeral one) cannot open message 0. */
  synod_hpke_ctx_t wrong;
  json_object *x0 = json_object_array_get_idx(encs, 0);
  size_t aadlen, ctlen;
  uint8_t *aad = test_hex_field(x0, "aad", &aadlen);
  uint8_t *ct = test_hex_field(x0, "ct", &ctlen);
  uint8_t *back = malloc(ctlen);
  CU_ASSERT_FATAL(back != NULL);
  CU_ASSERT_FATAL(
      synod_hpke_setup_base_r(&wrong, aead, enc, info, infolen, skEm) == 0);
  CHECK_AT("step", 6,
           synod_hpke_open(&wrong, back, ct, ctlen, aad, aadlen) ==
               SYNOD_EDECRYPT);
  synod_hpke_ctx_wipe(&wrong);
  free(back);
  free(aad);
  free(ct);

  synod_hpke_ctx_wipe(&s);
  synod_hpke_ctx_wipe(&r);
  free(ikmE);
  free(ikmR);
  free(info);
  c->entries++;
}

static void test_rfc9180_vectors(void) {
  json_object *root = test_vectors_load("hpke-x25519-sha256.json");
  CU_ASSERT_FATAL(json_object_is_type(root, json_type_array));
  size_t n = json_object_array_length(root);
  hpke_counts_t c = {0, 0, 0, 0, 0, 0};
  for (size_t entry = 0; entry < n; entry++) {
    json_object *e = json_object_array_get_idx(root, entry);
    int64_t mode = test_int_field(e, "mode"),
            aead = test_int_field(e, "aead_id");
    if (mode != SYNOD_HPKE_MODE_BASE ||
        test_int_field(e, "kem_id") != SYNOD_HPKE_KEM_X25519_SHA256 ||
        test_int_field(e, "kdf_id") != SYNOD_HPKE_KDF_HKDF_SHA256 ||
        (aead != SYNOD_HPKE_AEAD_AES128GCM &&
         aead != SYNOD_HPKE_AEAD_CHACHA20POLY1305)) {
      c.skipped++; /* psk, auth and auth_psk modes: not implemented */
      continue;
    }
    check_entry(entry, e, &c);
  }
  printf("\n    hpke: %zu base-mode entries checked, %zu entries of other "
         "modes skipped, file has %zu; %zu encryptions and %zu exports "
         "checked\n",
         c.entries, c.skipped, n, c.encryptions, c.exports);
  CU_ASSERT(c.entries > 0);
  CU_ASSERT_EQUAL(c.entries + c.skipped, n);
  CU_ASSERT(c.encryptions > 0);
  CU_ASSERT_EQUAL(c.encryptions, c.want_encryptions);
  CU_ASSERT(c.exports > 0);
  CU_ASSERT_EQUAL(c.exports, c.want_exports);
  json_object_put(root);
}

/* --- round trips and failures --------------------------------------------- */

static const synod_hpke_aead_t aeads[2] = {SYNOD_HPKE_AEAD_CHACHA20POLY1305,
                                           SYNOD_HPKE_AEAD_AES128GCM};

static void test_single_shot(void) {
  uint8_t pk[32], sk[32], pk2[32], sk2[32];
  const uint8_t pt[] = "the envelope body";
  const uint8_t aad[] = "envelope header", info[] = "synod/v1/message";
  uint8_t sealed[sizeof pt + SYNOD_HPKE_OVERHEAD], bad[sizeof sealed];
  uint8_t back[sizeof pt];
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(pk2, sk2), 0);
  for (size_t a = 0; a < 2; a++) {
    CU_ASSERT_EQUAL_FATAL(synod_hpke_seal_base(sealed, aeads[a], pt, sizeof pt,
                                               aad, sizeof aad, info,
                                               sizeof info, pk),
                          0);
    CU_ASSERT_EQUAL(synod_hpke_open_base(back, aeads[a], sealed, sizeof sealed,
                                         aad, sizeof aad, info, sizeof info,
                                         sk),
                    0);
    CU_ASSERT(memcmp(back, pt, sizeof pt) == 0);
    /* Every single flipped byte (enc, ciphertext, tag) is refused and the
     * output wiped. */
    size_t refused = 0;
    for (size_t i = 0; i < sizeof sealed; i++) {
      memcpy(bad, sealed, sizeof sealed);
      bad[i] ^= 0x20;
      memset(back, 0xaa, sizeof back);
      int rc = synod_hpke_open_base(back, aeads[a], bad, sizeof bad, aad,
                                    sizeof aad, info, sizeof info, sk);
      int wiped = 1;
      for (size_t j = 0; j < sizeof back; j++)
        wiped &= back[j] == 0;
      refused += rc == SYNOD_EDECRYPT && wiped;
    }
    CU_ASSERT_EQUAL(refused, sizeof sealed);
    /* Wrong recipient key, wrong aad, wrong info, wrong suite. */
    CU_ASSERT_EQUAL(synod_hpke_open_base(back, aeads[a], sealed, sizeof sealed,
                                         aad, sizeof aad, info, sizeof info,
                                         sk2),
                    SYNOD_EDECRYPT);
    CU_ASSERT_EQUAL(synod_hpke_open_base(back, aeads[a], sealed, sizeof sealed,
                                         aad, sizeof aad - 1, info, sizeof info,
                                         sk),
                    SYNOD_EDECRYPT);
    CU_ASSERT_EQUAL(synod_hpke_open_base(back, aeads[a], sealed, sizeof sealed,
                                         aad, sizeof aad, info, sizeof info - 1,
                                         sk),
                    SYNOD_EDECRYPT);
    CU_ASSERT_EQUAL(synod_hpke_open_base(back, aeads[1 - a], sealed,
                                         sizeof sealed, aad, sizeof aad, info,
                                         sizeof info, sk),
                    SYNOD_EDECRYPT);
    CU_ASSERT_EQUAL(synod_hpke_open_base(back, aeads[a], sealed,
                                         SYNOD_HPKE_OVERHEAD - 1, aad,
                                         sizeof aad, info, sizeof info, sk),
                    SYNOD_ETRUNC);
  }
  /* Two seals of one message differ (fresh ephemeral keys). */
  CU_ASSERT_EQUAL(synod_hpke_seal_base(sealed, aeads[0], pt, sizeof pt, NULL, 0,
                                       NULL, 0, pk),
                  0);
  CU_ASSERT_EQUAL(
      synod_hpke_seal_base(bad, aeads[0], pt, sizeof pt, NULL, 0, NULL, 0, pk),
      0);
  CU_ASSERT(memcmp(sealed, bad, SYNOD_HPKE_ENC_BYTES) != 0);
  /* Empty plaintext, empty info and aad. */
  uint8_t tagonly[SYNOD_HPKE_OVERHEAD];
  CU_ASSERT_EQUAL(
      synod_hpke_seal_base(tagonly, aeads[0], NULL, 0, NULL, 0, NULL, 0, pk),
      0);
  CU_ASSERT_EQUAL(synod_hpke_open_base(NULL, aeads[0], tagonly, sizeof tagonly,
                                       NULL, 0, NULL, 0, sk),
                  0);
  synod_wipe(sk, sizeof sk);
  synod_wipe(sk2, sizeof sk2);
}

static void test_sequence(void) {
  uint8_t pk[32], sk[32], enc[32], ct[3][20], pt[4] = {1, 2, 3, 4}, back[4];
  synod_hpke_ctx_t s, r;
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL_FATAL(
      synod_hpke_setup_base_s(&s, enc, aeads[0], NULL, 0, pk, NULL), 0);
  CU_ASSERT_EQUAL_FATAL(synod_hpke_setup_base_r(&r, aeads[0], enc, NULL, 0, sk),
                        0);
  for (int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(synod_hpke_seal(&s, ct[i], pt, sizeof pt, NULL, 0), 0);
  /* Out of order: message 1 does not open as message 0; no advance. */
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[1], 20, NULL, 0),
                  SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(r.seq, 0);
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[0], 20, NULL, 0), 0);
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[1], 20, NULL, 0), 0);
  /* Replay of message 1 fails. */
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[1], 20, NULL, 0),
                  SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[2], 20, NULL, 0), 0);
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[0], 15, NULL, 0), SYNOD_ETRUNC);

  /* Sequence exhaustion: the last usable number, then a hard stop. */
  s.seq = UINT64_MAX - 1;
  r.seq = UINT64_MAX - 1;
  CU_ASSERT_EQUAL(synod_hpke_seal(&s, ct[0], pt, sizeof pt, NULL, 0), 0);
  CU_ASSERT_EQUAL(s.seq, UINT64_MAX);
  CU_ASSERT_EQUAL(synod_hpke_seal(&s, ct[1], pt, sizeof pt, NULL, 0),
                  SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(s.seq, UINT64_MAX);
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[0], 20, NULL, 0), 0);
  CU_ASSERT(memcmp(back, pt, 4) == 0);
  CU_ASSERT_EQUAL(synod_hpke_open(&r, back, ct[0], 20, NULL, 0), SYNOD_ETOOBIG);

  /* Export bounds; an export is the same on both sides. */
  uint8_t e1[32], e2[32];
  CU_ASSERT_EQUAL(synod_hpke_export(&s, e1, 32, (const uint8_t *)"x", 1), 0);
  CU_ASSERT_EQUAL(synod_hpke_export(&r, e2, 32, (const uint8_t *)"x", 1), 0);
  CU_ASSERT(memcmp(e1, e2, 32) == 0);
  uint8_t *big = malloc(SYNOD_HPKE_MAX_EXPORT + 1);
  CU_ASSERT_FATAL(big != NULL);
  CU_ASSERT_EQUAL(synod_hpke_export(&s, big, SYNOD_HPKE_MAX_EXPORT, NULL, 0),
                  0);
  CU_ASSERT_EQUAL(
      synod_hpke_export(&s, big, SYNOD_HPKE_MAX_EXPORT + 1, NULL, 0),
      SYNOD_EINVAL);
  free(big);

  synod_hpke_ctx_wipe(&s);
  synod_hpke_ctx_wipe(&r);
  uint8_t zero[sizeof s];
  memset(zero, 0, sizeof zero);
  CU_ASSERT(memcmp(&s, zero, sizeof s) == 0);
  synod_hpke_ctx_wipe(NULL);
  synod_wipe(sk, sizeof sk);
}

static void test_bad_inputs(void) {
  uint8_t pk[32], sk[32], enc[32], ikm[32] = {0};
  synod_hpke_ctx_t ctx;
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(pk, sk), 0);
  /* A low-order recipient key (the zero point): DH output is zero. */
  uint8_t low[32] = {0};
  CU_ASSERT_EQUAL(
      synod_hpke_setup_base_s(&ctx, enc, aeads[0], NULL, 0, low, NULL),
      SYNOD_ECRYPTO);
  /* Low-order enc values (u = 1, u = 0) at the recipient. */
  uint8_t one[32] = {1};
  CU_ASSERT_EQUAL(synod_hpke_setup_base_r(&ctx, aeads[0], one, NULL, 0, sk),
                  SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(synod_hpke_setup_base_r(&ctx, aeads[0], low, NULL, 0, sk),
                  SYNOD_EDECRYPT);
  /* Unknown AEAD and other bad arguments. */
  CU_ASSERT_EQUAL(synod_hpke_setup_base_s(&ctx, enc, (synod_hpke_aead_t)2, NULL,
                                          0, pk, NULL),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_hpke_setup_base_r(&ctx, (synod_hpke_aead_t)0xffff, enc,
                                          NULL, 0, sk),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_hpke_aead_key_bytes((synod_hpke_aead_t)2), 0);
  CU_ASSERT_EQUAL(synod_hpke_derive_keypair(pk, sk, ikm, 31), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_hpke_derive_keypair(pk, sk, ikm, 32), 0);
  uint8_t *info = calloc(1, SYNOD_HPKE_MAX_INFO + 1);
  CU_ASSERT_FATAL(info != NULL);
  CU_ASSERT_EQUAL(synod_hpke_setup_base_s(&ctx, enc, aeads[1], info,
                                          SYNOD_HPKE_MAX_INFO + 1, pk, NULL),
                  SYNOD_ETOOBIG);
  /* The largest info works, through the heap path of the labeled input. */
  uint8_t pk2[32], sk2[32];
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(pk2, sk2), 0);
  CU_ASSERT_EQUAL(synod_hpke_setup_base_s(&ctx, enc, aeads[1], info,
                                          SYNOD_HPKE_MAX_INFO, pk2, NULL),
                  0);
  synod_hpke_ctx_t r;
  CU_ASSERT_EQUAL(synod_hpke_setup_base_r(&r, aeads[1], enc, info,
                                          SYNOD_HPKE_MAX_INFO, sk2),
                  0);
  CU_ASSERT(memcmp(ctx.key, r.key, 16) == 0);
  synod_hpke_ctx_wipe(&ctx);
  synod_hpke_ctx_wipe(&r);
  free(info);
  synod_wipe(sk, sizeof sk);
  synod_wipe(sk2, sizeof sk2);
}

static CU_TestInfo hpke_tests[] = {
    {"rfc9180_vectors", test_rfc9180_vectors},
    {"single_shot", test_single_shot},
    {"sequence", test_sequence},
    {"bad_inputs", test_bad_inputs},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"hpke", NULL, NULL, NULL, NULL, hpke_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
