/* See harness.h. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#include <CUnit/Basic.h>

#ifndef SYNOD_DEFAULT_VECTORS
#define SYNOD_DEFAULT_VECTORS "../shared/vectors"
#endif

int test_main(int argc, char **argv, CU_SuiteInfo *suites) {
  if (CU_initialize_registry() != CUE_SUCCESS) {
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    return 2;
  }
  if (CU_register_suites(suites) != CUE_SUCCESS) {
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 2;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  if (argc > 1) {
    int found = 0;
    for (CU_SuiteInfo *s = suites; s->pName; s++) {
      CU_pSuite suite = CU_get_suite(s->pName);
      CU_pTest t = suite ? CU_get_test(suite, argv[1]) : NULL;
      if (t) {
        CU_basic_run_test(suite, t);
        found = 1;
      }
    }
    if (!found) {
      fprintf(stderr, "no test named %s\n", argv[1]);
      CU_cleanup_registry();
      return 2;
    }
  } else {
    CU_basic_run_tests();
  }
  unsigned int failed = CU_get_number_of_failures();
  unsigned int run = CU_get_number_of_tests_run();
  unsigned int tfailed = CU_get_number_of_tests_failed();
  unsigned int sfailed = CU_get_number_of_suites_failed();
  CU_cleanup_registry();
  if (run == 0) {
    fprintf(stderr, "no test ran\n");
    return 1;
  }
  return (failed || tfailed || sfailed) ? 1 : 0;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
                                                                ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

json_object *test_vectors_load(const char *name) {
  const char *dir = getenv("SYNOD_VECTORS");
  if (!dir || !*dir)
    dir = SYNOD_DEFAULT_VECTORS;
  char path[4096];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof path)
    die("vector path too long: %s/%s", dir, name);
  json_object *root = json_object_from_file(path);
  if (!root)
    die("cannot load test vectors %s: %s", path, json_util_get_last_err());
  return root;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

uint8_t *test_hex_field(json_object *obj, const char *key, size_t *len) {
  const char *s = test_str_field(obj, key);
  if (!s)
    die("vector field %s missing", key);
  size_t n = strlen(s);
  if (n % 2)
    die("vector field %s has odd hex length", key);
  uint8_t *out = malloc(n / 2 + 1);
  if (!out)
    die("out of memory");
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval((unsigned char)s[2 * i]),
        lo = hexval((unsigned char)s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      die("vector field %s has bad hex", key);
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = n / 2;
  return out;
}

const char *test_str_field(json_object *obj, const char *key) {
  json_object *v;
  if (!json_object_object_get_ex(obj, key, &v) ||
      !json_object_is_type(v, json_type_string))
    return NULL;
  return json_object_get_string(v);
}

int64_t test_int_field(json_object *obj, const char *key) {
  json_object *v;
  if (!json_object_object_get_ex(obj, key, &v) ||
      !json_object_is_type(v, json_type_int))
    die("vector integer field %s missing", key);
  return json_object_get_int64(v);
}

int test_has_flag(json_object *test, const char *flag) {
  json_object *flags;
  if (!json_object_object_get_ex(test, "flags", &flags))
    return 0;
  size_t n = json_object_array_length(flags);
  for (size_t i = 0; i < n; i++) {
    const char *f = json_object_get_string(json_object_array_get_idx(flags, i));
    if (f && strcmp(f, flag) == 0)
      return 1;
  }
  return 0;
}

const char *test_pg_conninfo(void) {
  const char *s = getenv("SYNOD_TEST_PG");
  return (s && *s) ? s : NULL;
}
