/*
 * lib/sig.c: signed statements, Ed25519 over label || 0x00 || bytes.
 * The Ed25519 primitive itself is checked against Wycheproof in
 * test_crypto.c; here the labels, the domain separation and the limits.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/sig.h"

static const struct {
  synod_sig_kind_t kind;
  const char *label;
} kinds[] = {
    {SYNOD_SIG_CHANNEL_BINDING, "synod/v1/channel-binding"},
    {SYNOD_SIG_ANNOUNCEMENT, "synod/v1/announcement"},
    {SYNOD_SIG_CONTINUITY, "synod/v1/continuity"},
    {SYNOD_SIG_COUNTERSIGNATURE, "synod/v1/countersignature"},
    {SYNOD_SIG_LOOKUP_ANSWER, "synod/v1/lookup-answer"},
    {SYNOD_SIG_MESSAGE, "synod/v1/message"},
    {SYNOD_SIG_PURGE, "synod/v1/purge"},
    {SYNOD_SIG_DELIVERY_FAILURE, "synod/v1/delivery-failure"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static void test_labels(void) {
  for (size_t i = 0; i < NKINDS; i++) {
    const char *l = synod_sig_label(kinds[i].kind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(l, kinds[i].label);
    for (const char *p = l; *p; p++)
      CU_ASSERT(*p > 0x20 && *p < 0x7f); /* printable ASCII, no NUL inside */
    for (size_t j = 0; j < i; j++)
      CU_ASSERT(kinds[i].kind != kinds[j].kind &&
                strcmp(l, synod_sig_label(kinds[j].kind)) != 0);
  }
  CU_ASSERT_PTR_NULL(synod_sig_label((synod_sig_kind_t)0));
  CU_ASSERT_PTR_NULL(synod_sig_label((synod_sig_kind_t)(NKINDS + 1)));
  CU_ASSERT_PTR_NULL(synod_sig_label((synod_sig_kind_t)-1));
}

static void test_roundtrip_and_separation(void) {
  uint8_t pk[32], sk[32], sig[NKINDS][64];
  const uint8_t body[] = {0x0a, 0x05, 'a', '@', 'b', '.', 'c', 0x10, 0x01};
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  for (size_t i = 0; i < NKINDS; i++) {
    CU_ASSERT_EQUAL(
        synod_sig_sign(sig[i], kinds[i].kind, body, sizeof body, sk), 0);
    CU_ASSERT_EQUAL(
        synod_sig_verify(sig[i], kinds[i].kind, body, sizeof body, pk), 0);
  }
  /* A signature made for one kind verifies as no other kind. */
  size_t refused = 0;
  for (size_t i = 0; i < NKINDS; i++)
    for (size_t j = 0; j < NKINDS; j++)
      if (i != j)
        refused += synod_sig_verify(sig[i], kinds[j].kind, body, sizeof body,
                                    pk) == SYNOD_EVERIFY;
  CU_ASSERT_EQUAL(refused, NKINDS * (NKINDS - 1));
  /* Nor as a bare Ed25519 signature of the body. */
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig[0], body, sizeof body, pk),
                  SYNOD_EVERIFY);
  synod_wipe(sk, sizeof sk);
}

static void test_tampering(void) {
  uint8_t pk[32], sk[32], pk2[32], sk2[32], sig[64], bad[64];
  uint8_t body[100];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk2, sk2), 0);
  CU_ASSERT_EQUAL_FATAL(synod_random(body, sizeof body), 0);
  CU_ASSERT_EQUAL_FATAL(
      synod_sig_sign(sig, SYNOD_SIG_PURGE, body, sizeof body, sk), 0);
  /* Every flipped body byte fails. */
  size_t refused = 0;
  for (size_t i = 0; i < sizeof body; i++) {
    body[i] ^= 0x01;
    refused += synod_sig_verify(sig, SYNOD_SIG_PURGE, body, sizeof body, pk) ==
               SYNOD_EVERIFY;
    body[i] ^= 0x01;
  }
  CU_ASSERT_EQUAL(refused, sizeof body);
  /* Every flipped signature byte fails. */
  refused = 0;
  for (size_t i = 0; i < sizeof sig; i++) {
    memcpy(bad, sig, sizeof sig);
    bad[i] ^= 0x80;
    refused += synod_sig_verify(bad, SYNOD_SIG_PURGE, body, sizeof body, pk) ==
               SYNOD_EVERIFY;
  }
  CU_ASSERT_EQUAL(refused, sizeof sig);
  /* Truncated or extended body fails. */
  CU_ASSERT_EQUAL(
      synod_sig_verify(sig, SYNOD_SIG_PURGE, body, sizeof body - 1, pk),
      SYNOD_EVERIFY);
  /* Wrong key fails. */
  CU_ASSERT_EQUAL(
      synod_sig_verify(sig, SYNOD_SIG_PURGE, body, sizeof body, pk2),
      SYNOD_EVERIFY);
  CU_ASSERT_EQUAL(synod_sig_verify(sig, SYNOD_SIG_PURGE, body, sizeof body, pk),
                  0);
  synod_wipe(sk, sizeof sk);
  synod_wipe(sk2, sizeof sk2);
}

/* The wire contract (proto/README.md 6.2): a purge signature is Ed25519 over
 * the 14 bytes "synod/v1/purge", one 0x00, then the body bytes. */
static void test_message_layout(void) {
  uint8_t pk[32], sk[32], sig[64], sig2[64];
  const uint8_t body[] = {1, 2, 3};
  const uint8_t m[] = {'s', 'y', 'n', 'o', 'd', '/',  'v', '1', '/',
                       'p', 'u', 'r', 'g', 'e', 0x00, 1,   2,   3};
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL(synod_sig_sign(sig, SYNOD_SIG_PURGE, body, sizeof body, sk),
                  0);
  CU_ASSERT_EQUAL(synod_ed25519_sign(sig2, m, sizeof m, sk), 0);
  CU_ASSERT(memcmp(sig, sig2, 64) == 0);
  CU_ASSERT_EQUAL(synod_ed25519_verify(sig, m, sizeof m, pk), 0);
  /* Empty body: label || 0x00 only. */
  CU_ASSERT_EQUAL(synod_sig_sign(sig, SYNOD_SIG_PURGE, NULL, 0, sk), 0);
  CU_ASSERT_EQUAL(synod_ed25519_sign(sig2, m, 15, sk), 0);
  CU_ASSERT(memcmp(sig, sig2, 64) == 0);
  CU_ASSERT_EQUAL(synod_sig_verify(sig, SYNOD_SIG_PURGE, NULL, 0, pk), 0);
  synod_wipe(sk, sizeof sk);
}

static void test_limits(void) {
  uint8_t pk[32], sk[32], sig[64], zero[64] = {0};
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  /* Unknown kind: EINVAL, and sign leaves no signature behind. */
  memset(sig, 0xaa, sizeof sig);
  CU_ASSERT_EQUAL(synod_sig_sign(sig, (synod_sig_kind_t)0, NULL, 0, sk),
                  SYNOD_EINVAL);
  CU_ASSERT(memcmp(sig, zero, 64) == 0);
  CU_ASSERT_EQUAL(synod_sig_verify(sig, (synod_sig_kind_t)99, NULL, 0, pk),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_sig_verify(sig, SYNOD_SIG_MESSAGE, NULL, 5, pk),
                  SYNOD_EINVAL);
  /* Over the cap: refused before anything is read or allocated. */
  const uint8_t one = 1;
  CU_ASSERT_EQUAL(
      synod_sig_sign(sig, SYNOD_SIG_MESSAGE, &one, SYNOD_SIG_MAX_BYTES + 1, sk),
      SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(
      synod_sig_verify(sig, SYNOD_SIG_MESSAGE, &one, (size_t)-1, pk),
      SYNOD_ETOOBIG);
  /* At the cap: works, through the heap. */
  uint8_t *big = calloc(1, SYNOD_SIG_MAX_BYTES);
  CU_ASSERT_FATAL(big != NULL);
  big[SYNOD_SIG_MAX_BYTES - 1] = 7;
  CU_ASSERT_EQUAL(
      synod_sig_sign(sig, SYNOD_SIG_MESSAGE, big, SYNOD_SIG_MAX_BYTES, sk), 0);
  CU_ASSERT_EQUAL(
      synod_sig_verify(sig, SYNOD_SIG_MESSAGE, big, SYNOD_SIG_MAX_BYTES, pk),
      0);
  big[SYNOD_SIG_MAX_BYTES - 1] = 8;
  CU_ASSERT_EQUAL(
      synod_sig_verify(sig, SYNOD_SIG_MESSAGE, big, SYNOD_SIG_MAX_BYTES, pk),
      SYNOD_EVERIFY);
  free(big);
  synod_wipe(sk, sizeof sk);
}

/* A prepared signer gives exactly the signatures of the seed (Ed25519 is
 * deterministic), for every kind, and refuses what sign refuses. */
static void test_signer(void) {
  uint8_t pk[32], sk[32], a[64], b[64];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  synod_ed25519_signer_t *signer = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_signer_new(&signer, sk), 0);
  const uint8_t msg[] = "same bytes, same signature";
  int same = 0;
  for (int k = SYNOD_SIG_CHANNEL_BINDING; k <= SYNOD_SIG_DELIVERY_FAILURE;
       k++) {
    CU_ASSERT_EQUAL(synod_sig_sign(a, (synod_sig_kind_t)k, msg, sizeof msg, sk),
                    0);
    CU_ASSERT_EQUAL(
        synod_sig_sign_by(b, (synod_sig_kind_t)k, msg, sizeof msg, signer), 0);
    same += memcmp(a, b, 64) == 0;
    CU_ASSERT_EQUAL(
        synod_sig_verify(b, (synod_sig_kind_t)k, msg, sizeof msg, pk), 0);
  }
  CU_ASSERT_EQUAL(same, SYNOD_SIG_DELIVERY_FAILURE);
  CU_ASSERT_EQUAL(
      synod_sig_sign_by(b, (synod_sig_kind_t)0, msg, sizeof msg, signer),
      SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_sig_sign_by(b, SYNOD_SIG_PURGE, msg, sizeof msg, NULL),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_ed25519_signer_sign(signer, b, NULL, 5), SYNOD_EINVAL);
  synod_ed25519_signer_free(signer);
  synod_ed25519_signer_free(NULL);
}

static CU_TestInfo sig_tests[] = {
    {"signer", test_signer},
    {"labels", test_labels},
    {"roundtrip_and_separation", test_roundtrip_and_separation},
    {"tampering", test_tampering},
    {"message_layout", test_message_layout},
    {"limits", test_limits},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"sig", NULL, NULL, NULL, NULL, sig_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
