/*
 * Shared plumbing for the CUnit suites: a main() that runs a suite list and
 * exits non-zero on any failure, and loaders for the third-party vectors in
 * ../shared/vectors (overridable with SYNOD_VECTORS).
 */
#ifndef SYNOD_TEST_HARNESS_H
#define SYNOD_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>
#include <json-c/json.h>

#ifdef __clang_analyzer__
#include <stdlib.h>
/* For clang-tidy's static analyzer only: a failed _FATAL assertion does
 * not return (CUnit longjmps out of the test), which the analyzer cannot
 * see through CU_assertImplementation(). Without this, every pointer a
 * _FATAL assertion checked is reported as a possible NULL dereference. */
#undef CU_assertImplementation
#define CU_assertImplementation(value, line, cond, file, fn, fatal)            \
  ((!(value) && (fatal)) ? abort() : (void)0)
#endif

/* Runs every suite in suites (terminated by CU_SUITE_INFO_NULL); with a
 * test name in argv[1], runs only that test. Returns the process exit
 * status: 0 when every assertion passed. */
int test_main(int argc, char **argv, CU_SuiteInfo *suites);

/* Parses vector file name from the vectors directory. The caller owns the
 * result (json_object_put). Aborts the test program with a message when
 * the file is missing or unparsable: a vector suite never silently runs
 * zero cases. */
json_object *test_vectors_load(const char *name);

/* Hex string field key of obj decoded into a malloc'd buffer (caller frees;
 * a zero-length value yields a non-NULL 1-byte allocation); *len receives
 * its length. Aborts on a missing field or bad hex. */
uint8_t *test_hex_field(json_object *obj, const char *key, size_t *len);

/* String field key of obj, or NULL. */
const char *test_str_field(json_object *obj, const char *key);

/* Integer field key of obj; aborts when missing. */
int64_t test_int_field(json_object *obj, const char *key);

/* 1 if the Wycheproof test object has flag in its "flags" array. */
int test_has_flag(json_object *test, const char *flag);

/* libpq conninfo of the test server (SYNOD_TEST_PG), or NULL. */
const char *test_pg_conninfo(void);

#endif
