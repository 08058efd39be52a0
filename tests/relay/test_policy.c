/* Suite for relay/policy.c: retry, rate and admission rules. */
#include <string.h>

#include "harness.h"
#include "policy.h"
#include "synod/err.h"

static void test_backoff(void) {
  /* The ceiling doubles from min to max; the draw scales within it. */
  CU_ASSERT_EQUAL(policy_backoff_ms(0, 100, 60000, 0.0), 100);
  CU_ASSERT_EQUAL(policy_backoff_ms(0, 100, 60000, 0.99999), 100);
  CU_ASSERT_EQUAL(policy_backoff_ms(1, 100, 60000, 0.5), 150);
  CU_ASSERT_EQUAL(policy_backoff_ms(3, 100, 60000, 0.5), 450);
  CU_ASSERT(policy_backoff_ms(40, 100, 60000, 0.999999) <= 60000);
  CU_ASSERT(policy_backoff_ms(40, 100, 60000, 0.999999) > 59000);
  CU_ASSERT_EQUAL(policy_backoff_ms(1000, 100, 60000, 0.0), 100);
  /* Out-of-range draws are clamped, never overflow. */
  CU_ASSERT(policy_backoff_ms(5, 100, 1000, 7.0) <= 1000);
  CU_ASSERT_EQUAL(policy_backoff_ms(5, 100, 1000, -1.0), 100);
  CU_ASSERT_EQUAL(policy_backoff_ms(5, 500, 100, 0.5), 500);
}

static void test_bucket(void) {
  policy_bucket_t b;
  policy_bucket_init(&b, 3, 1000);
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1000), 0);
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1000), 0);
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1000), 0);
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1000), SYNOD_ERATE);
  /* 10 per second: one token after 100 ms, not before. */
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1050), SYNOD_ERATE);
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1100), 0);
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 1100), SYNOD_ERATE);
  /* Never more than burst, however long the pause. */
  int ok = 0;
  for (int i = 0; i < 10; i++)
    ok += policy_bucket_take(&b, 10, 3, 100000) == 0;
  CU_ASSERT_EQUAL(ok, 3);
  /* A clock that goes backwards refills nothing. */
  CU_ASSERT_EQUAL(policy_bucket_take(&b, 10, 3, 500), SYNOD_ERATE);
}

static uint8_t id16[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                           9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t enc32[32];
static uint8_t ct[100];

static void fill(Synod__V1__Envelope *e, Synod__V1__DeviceCiphertext *c,
                 Synod__V1__DeviceCiphertext **cs) {
  synod__v1__envelope__init(e);
  synod__v1__device_ciphertext__init(c);
  e->message_id.data = id16;
  e->message_id.len = 16;
  e->recipient = (char *)"bob@relay-b";
  c->device_id = 1;
  c->enc.data = enc32;
  c->enc.len = 32;
  c->ct.data = ct;
  c->ct.len = sizeof ct;
  cs[0] = c;
  e->ciphertexts = cs;
  e->n_ciphertexts = 1;
}

static const policy_envelope_limits_t lim = {.max_envelope_bytes = 1024,
                                             .default_ttl = 3600,
                                             .max_ttl = 86400,
                                             .max_devices = 4};

static void test_envelope(void) {
  Synod__V1__Envelope e;
  Synod__V1__DeviceCiphertext c, c2;
  Synod__V1__DeviceCiphertext *cs[8];
  uint32_t ttl = 0;

  fill(&e, &c, cs);
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), 0);
  CU_ASSERT_EQUAL(ttl, 3600);
  e.ttl = 60;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), 0);
  CU_ASSERT_EQUAL(ttl, 60);
  e.ttl = 86401;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EINVAL);

  fill(&e, &c, cs);
  e.message_id.len = 15;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);
  fill(&e, &c, cs);
  e.recipient = (char *)"Bob@relay-b";
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);
  fill(&e, &c, cs);
  e.recipient = NULL;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);
  fill(&e, &c, cs);
  e.n_ciphertexts = 0;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);
  fill(&e, &c, cs);
  c.enc.len = 31;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);
  fill(&e, &c, cs);
  c.ct.len = 0;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);

  /* Two copies for one device are malformed; two devices are fine. */
  fill(&e, &c, cs);
  c2 = c;
  cs[1] = &c2;
  e.n_ciphertexts = 2;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_EPARSE);
  c2.device_id = 2;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), 0);
  for (int i = 0; i < 5; i++)
    cs[i] = &c2;
  e.n_ciphertexts = 5;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_ETOOBIG);

  /* The packed size limit, at its edge. */
  static uint8_t big[2000];
  fill(&e, &c, cs);
  c.ct.data = big;
  c.ct.len = 2000;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_ETOOBIG);
  size_t base = synod__v1__envelope__get_packed_size(&e) - 2000;
  c.ct.len = 1024 - base - 1; /* length varint stays 2 bytes */
  CU_ASSERT_EQUAL(synod__v1__envelope__get_packed_size(&e), 1023);
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), 0);
  c.ct.len += 2;
  CU_ASSERT_EQUAL(policy_check_envelope(&e, &lim, &ttl), SYNOD_ETOOBIG);
}

static void test_expiry(void) {
  CU_ASSERT_EQUAL(policy_expires_at(1000, 60), 1060);
  CU_ASSERT_EQUAL(policy_expires_at(UINT64_MAX - 5, 60), UINT64_MAX);
}

static CU_TestInfo policy_tests[] = {
    {"backoff", test_backoff},   {"bucket", test_bucket},
    {"envelope", test_envelope}, {"expiry", test_expiry},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"policy", NULL, NULL, NULL, NULL, policy_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
