/*
 * Suite client.safety: the safety number is the same for both sides and
 * changes when either key changes.
 */
#include <string.h>

#include "harness.h"
#include "synod/client.h"
#include "synod/crypto.h"

static void test_symmetric_and_key_bound(void) {
  uint8_t a[32], b[32], b2[32], sk[SYNOD_ED25519_SECRET_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(a, sk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(b, sk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(b2, sk), 0);
  char ab[SYNOD_SAFETY_NUMBER_MAX], ba[SYNOD_SAFETY_NUMBER_MAX],
      ab2[SYNOD_SAFETY_NUMBER_MAX], swapped[SYNOD_SAFETY_NUMBER_MAX];
  CU_ASSERT_EQUAL(synod_safety_number(ab, "alice@relay-a", a, "bob@relay-b", b),
                  0);
  CU_ASSERT_EQUAL(synod_safety_number(ba, "bob@relay-b", b, "alice@relay-a", a),
                  0);
  CU_ASSERT_STRING_EQUAL(ab, ba);
  CU_ASSERT_EQUAL(strlen(ab), 35);
  for (size_t i = 0; i < strlen(ab); i++)
    CU_ASSERT(i % 6 == 5 ? ab[i] == ' ' : (ab[i] >= '0' && ab[i] <= '9'));
  /* bob's new key: another number. */
  CU_ASSERT_EQUAL(
      synod_safety_number(ab2, "alice@relay-a", a, "bob@relay-b", b2), 0);
  CU_ASSERT_STRING_NOT_EQUAL(ab, ab2);
  /* The keys bound to the ids: swapping them changes it too. */
  CU_ASSERT_EQUAL(
      synod_safety_number(swapped, "alice@relay-a", b, "bob@relay-b", a), 0);
  CU_ASSERT_STRING_NOT_EQUAL(ab, swapped);
  CU_ASSERT_EQUAL(synod_safety_number(ab, "not a user", a, "bob@relay-b", b),
                  SYNOD_EINVAL);
}

static CU_TestInfo safety_tests[] = {
    {"symmetric_and_key_bound", test_symmetric_and_key_bound},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"safety", NULL, NULL, NULL, NULL, safety_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
