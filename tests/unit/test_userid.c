/* Suite for lib/userid.c: the syntax every relay must agree on. */
#include <string.h>

#include "harness.h"
#include "synod/userid.h"

static void test_valid(void) {
  size_t n;
  const char *relay;
  CU_ASSERT_EQUAL(synod_userid_parse("alice@relay-a", &n, &relay), 0);
  CU_ASSERT_EQUAL(n, 5);
  CU_ASSERT_STRING_EQUAL(relay, "relay-a");
  CU_ASSERT_EQUAL(synod_userid_parse("b.o_b-1@relay.example.org", &n, &relay),
                  0);
  CU_ASSERT_STRING_EQUAL(relay, "relay.example.org");
  CU_ASSERT_EQUAL(synod_userid_parse("0@a", NULL, NULL), 0);
  CU_ASSERT_EQUAL(synod_userid_check_local("alice"), 0);
  CU_ASSERT_EQUAL(synod_relay_name_check("x1.y-2.z"), 0);
}

static void test_invalid(void) {
  const char *bad[] = {
      "",
      "alice",
      "@relay",
      "alice@",
      "Alice@relay",
      "alice@Relay",
      "al ice@relay",
      "alice@relay.",
      "alice@.relay",
      "alice@re..lay",
      "alice@-relay",
      "alice@relay-",
      "alice@a-.b",
      ".alice@relay",
      "-a@relay",
      "a@b@c",
      "alice@relay_x",
      "ali\xc3\xa9@relay",
      "alice@rel\nay",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = synod_userid_parse(bad[i], NULL, NULL);
    if (rc != SYNOD_EPARSE)
      fprintf(stderr, "accepted: %s\n", bad[i]);
    CU_ASSERT_EQUAL(rc, SYNOD_EPARSE);
  }
  CU_ASSERT_EQUAL(synod_userid_parse(NULL, NULL, NULL), SYNOD_EINVAL);
}

static void test_lengths(void) {
  char id[400];
  memset(id, 'a', 64);
  strcpy(id + 64, "@r");
  CU_ASSERT_EQUAL(synod_userid_parse(id, NULL, NULL), 0);
  memset(id, 'a', 65);
  strcpy(id + 65, "@r");
  CU_ASSERT_EQUAL(synod_userid_parse(id, NULL, NULL), SYNOD_EPARSE);

  char name[300];
  memset(name, 'b', 63);
  name[63] = '\0';
  CU_ASSERT_EQUAL(synod_relay_name_check(name), 0);
  memset(name, 'b', 64);
  name[64] = '\0';
  CU_ASSERT_EQUAL(synod_relay_name_check(name), SYNOD_EPARSE);
  /* "c.c.c...c": 253 bytes is the DNS limit, 255 is over it. */
  name[0] = 'c';
  size_t n = 1;
  while (n < 253) {
    name[n++] = '.';
    name[n++] = 'c';
  }
  name[n] = '\0';
  CU_ASSERT_EQUAL(strlen(name), 253);
  CU_ASSERT_EQUAL(synod_relay_name_check(name), 0);
  name[n++] = '.';
  name[n++] = 'c';
  name[n] = '\0';
  CU_ASSERT_EQUAL(synod_relay_name_check(name), SYNOD_EPARSE);
}

static CU_TestInfo userid_tests[] = {
    {"valid", test_valid},
    {"invalid", test_invalid},
    {"lengths", test_lengths},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"userid", NULL, NULL, NULL, NULL, userid_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
