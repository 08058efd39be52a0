/* Suite for lib/err.c: names, messages and the wire mapping. */
#include <string.h>

#include "harness.h"
#include "synod/err.h"

static void test_every_code_named(void) {
  int n = 0;
#define CHECK_(name, value, msg)                                               \
  CU_ASSERT_STRING_EQUAL(synod_err_name(SYNOD_##name), #name);                 \
  CU_ASSERT_STRING_EQUAL(synod_strerror(SYNOD_##name), msg);                   \
  CU_ASSERT_EQUAL(synod_err_from_wire(value), SYNOD_##name);                   \
  CU_ASSERT_EQUAL(-SYNOD_##name, value);                                       \
  n++;
  SYNOD_ERRNO_MAP(CHECK_)
#undef CHECK_
  CU_ASSERT(n >= 35);
}

static void test_unknown(void) {
  CU_ASSERT_STRING_EQUAL(synod_err_name(-9999), "EUNKNOWN");
  CU_ASSERT_STRING_EQUAL(synod_strerror(-9999), "unknown error");
  CU_ASSERT_STRING_EQUAL(synod_err_name(0), "OK");
  CU_ASSERT_EQUAL(synod_err_from_wire(0), SYNOD_EPROTO);
  CU_ASSERT_EQUAL(synod_err_from_wire(100000), SYNOD_EPROTO);
}

/* Wire codes are stable: these values are part of protocol v1. */
static void test_stable_values(void) {
  CU_ASSERT_EQUAL(SYNOD_EINVAL, -1);
  CU_ASSERT_EQUAL(SYNOD_EVERIFY, -4);
  CU_ASSERT_EQUAL(SYNOD_EAGAIN, -20);
  CU_ASSERT_EQUAL(SYNOD_ENOQUORUM, -32);
}

static CU_TestInfo err_tests[] = {
    {"every_code_named", test_every_code_named},
    {"unknown", test_unknown},
    {"stable_values", test_stable_values},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"err", NULL, NULL, NULL, NULL, err_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
