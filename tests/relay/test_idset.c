/* Suite for relay/idset.c, checked against a plain array model. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "idset.h"

static void make_id(uint8_t id[16], unsigned v) {
  memset(id, 0, 16);
  /* Low entropy on purpose: many ids share hash bytes, long probe runs. */
  id[0] = (uint8_t)(v & 0x7);
  id[15] = (uint8_t)v;
  id[14] = (uint8_t)(v >> 8);
}

static void test_model(void) {
  idset_t s;
  idset_init(&s);
  enum { N = 2000 };
  static unsigned char model[N];
  memset(model, 0, sizeof model);
  srand(7);
  uint8_t id[16];
  for (int step = 0; step < 200000; step++) {
    unsigned v = (unsigned)rand() % N;
    make_id(id, v);
    int op = rand() % 3;
    if (op == 0) {
      CU_ASSERT_EQUAL_FATAL(idset_add(&s, id), !model[v]);
      model[v] = 1;
    } else if (op == 1) {
      CU_ASSERT_EQUAL_FATAL(idset_del(&s, id), model[v]);
      model[v] = 0;
    } else {
      CU_ASSERT_EQUAL_FATAL(idset_has(&s, id), model[v]);
    }
  }
  size_t count = 0;
  for (unsigned v = 0; v < N; v++) {
    make_id(id, v);
    CU_ASSERT_EQUAL(idset_has(&s, id), model[v]);
    count += model[v];
  }
  CU_ASSERT_EQUAL(s.n, count);
  idset_clear(&s);
  CU_ASSERT_EQUAL(s.n, 0);
  make_id(id, 1);
  CU_ASSERT_FALSE(idset_has(&s, id));
  idset_free(&s);
}

static void test_empty(void) {
  idset_t s;
  idset_init(&s);
  uint8_t id[16] = {0};
  CU_ASSERT_FALSE(idset_has(&s, id));
  CU_ASSERT_EQUAL(idset_del(&s, id), 0);
  idset_free(&s);
}

static CU_TestInfo idset_tests[] = {
    {"model", test_model},
    {"empty", test_empty},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"idset", NULL, NULL, NULL, NULL, idset_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
