/* Suite for lib/log.c: levels, line format, and logfmt quoting of hostile
 * values, asserted on the bytes written to a temporary file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"
#include "synod/log.h"

static FILE *out;
static char line[8192];

static void fixed_clock(struct timespec *ts) {
  ts->tv_sec = 1700000000; /* 2023-11-14T22:13:20Z */
  ts->tv_nsec = 42999999;  /* truncated, not rounded, to .042 */
}

static int setup(void) {
  out = tmpfile();
  if (!out)
    return -1;
  synod_log_set_output(out);
  synod_log_set_clock(fixed_clock);
  synod_log_set_level(SYNOD_LOG_TRACE);
  return 0;
}

static int teardown(void) {
  synod_log_set_output(NULL);
  synod_log_set_clock(NULL);
  synod_log_set_level(SYNOD_LOG_INFO);
  return fclose(out) == 0 ? 0 : -1;
}

/* Everything logged since the last call, as a string in line[]. */
static const char *written(void) {
  long end = ftell(out);
  rewind(out);
  size_t n = fread(line, 1, sizeof line - 1, out);
  line[n] = '\0';
  CU_ASSERT_EQUAL(end >= 0 ? (size_t)end : 0, n);
  rewind(out);
  CU_ASSERT_EQUAL(ftruncate(fileno(out), 0), 0);
  return line;
}

static size_t count_char(const char *s, char c) {
  size_t n = 0;
  for (; *s; s++)
    n += *s == c;
  return n;
}

#define TS "ts=2023-11-14T22:13:20.042Z "

static void test_line_format(void) {
  synod_log(SYNOD_LOG_INFO, "relay started", "port=%u name=%s", 4433u, "alpha");
  CU_ASSERT_STRING_EQUAL(
      written(), TS "level=info msg=\"relay started\" port=4433 name=alpha\n");
  synod_log(SYNOD_LOG_ERROR, "x", NULL);
  CU_ASSERT_STRING_EQUAL(written(), TS "level=error msg=\"x\"\n");
  synod_log(SYNOD_LOG_TRACE, NULL, NULL);
  CU_ASSERT_STRING_EQUAL(written(), TS "level=trace msg=\"\"\n");
}

static void test_real_clock(void) {
  synod_log_set_clock(NULL);
  synod_log(SYNOD_LOG_WARN, "now", NULL);
  synod_log_set_clock(fixed_clock);
  const char *s = written();
  unsigned y, mo, d, h, mi, sec, ms;
  char z;
  int used = 0;
  CU_ASSERT_EQUAL(sscanf(s, "ts=%4u-%2u-%2uT%2u:%2u:%2u.%3u%c%n", &y, &mo, &d,
                         &h, &mi, &sec, &ms, &z, &used),
                  8);
  CU_ASSERT_EQUAL(used, 27);
  CU_ASSERT_EQUAL(z, 'Z');
  CU_ASSERT(y >= 2023 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 &&
            mi < 60 && sec <= 60 && ms < 1000);
  CU_ASSERT_STRING_EQUAL(s + used, " level=warn msg=\"now\"\n");
}

static void test_levels(void) {
  synod_log_set_level(SYNOD_LOG_WARN);
  CU_ASSERT_EQUAL(synod_log_get_level(), SYNOD_LOG_WARN);
  CU_ASSERT_TRUE(synod_log_enabled(SYNOD_LOG_ERROR));
  CU_ASSERT_TRUE(synod_log_enabled(SYNOD_LOG_WARN));
  CU_ASSERT_FALSE(synod_log_enabled(SYNOD_LOG_INFO));
  synod_log(SYNOD_LOG_INFO, "hidden", NULL);
  synod_log(SYNOD_LOG_DEBUG, "hidden", NULL);
  synod_log(SYNOD_LOG_TRACE, "hidden", NULL);
  synod_log(SYNOD_LOG_WARN, "shown", NULL);
  synod_log(SYNOD_LOG_ERROR, "shown", NULL);
  const char *s = written();
  CU_ASSERT_EQUAL(count_char(s, '\n'), 2);
  CU_ASSERT_PTR_NULL(strstr(s, "hidden"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "level=warn"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "level=error"));
  synod_log_set_level((synod_log_level_t)99);
  CU_ASSERT_EQUAL(synod_log_get_level(), SYNOD_LOG_TRACE);
  synod_log_set_level(SYNOD_LOG_TRACE);
}

static void test_level_parse(void) {
  static const struct {
    const char *s;
    synod_log_level_t level;
  } ok[] = {{"error", SYNOD_LOG_ERROR},  {"WARN", SYNOD_LOG_WARN},
            {"warning", SYNOD_LOG_WARN}, {"Info", SYNOD_LOG_INFO},
            {"debug", SYNOD_LOG_DEBUG},  {"trace", SYNOD_LOG_TRACE}};
  synod_log_level_t level;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    level = (synod_log_level_t)99;
    CU_ASSERT_EQUAL(synod_log_level_parse(&level, ok[i].s), 0);
    CU_ASSERT_EQUAL(level, ok[i].level);
  }
  static const char *const bad[] = {"",      "inf",    "infos", "verbose",
                                    " info", "info\n", "2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(synod_log_level_parse(&level, bad[i]), SYNOD_EPARSE);
  CU_ASSERT_EQUAL(synod_log_level_parse(NULL, "info"), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_log_level_parse(&level, NULL), SYNOD_EINVAL);
  CU_ASSERT_STRING_EQUAL(synod_log_level_name(SYNOD_LOG_DEBUG), "debug");
  CU_ASSERT_STRING_EQUAL(synod_log_level_name((synod_log_level_t)5), "unknown");
}

static void test_quoting(void) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"plain", "plain"},
      {"", "\"\""},
      {"two words", "\"two words\""},
      {"k=v", "\"k=v\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"back\\slash", "\"back\\\\slash\""},
      {"tab\there", "\"tab\\there\""},
      {"cr\r", "\"cr\\r\""},
      {"\x1b[31mred", "\"\\u001b[31mred\""}, /* terminal escape */
      {"del\x7f", "\"del\\u007f\""},
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""}, /* UTF-8 kept */
      {"\xc2\x9b"
       "2J",
       "\"\\u009b2J\""}, /* C1 CSI */
      {"a\xe2\x80\xa8"
       "b",
       "\"a\\u2028b\""},                             /* LINE SEPARATOR */
      {"bad\xff", "\"bad\\ufffd\""},                 /* not UTF-8 */
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},            /* overlong '/' */
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""}, /* surrogate */
      {"\xe2\x82", "\"\\ufffd\\ufffd\""},            /* truncated sequence */
      {"\xf0\x9f\x94\x91", "\"\xf0\x9f\x94\x91\""},  /* 4-byte emoji kept */
  };
  char want[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    synod_log(SYNOD_LOG_INFO, "m", "v=%s", cases[i].in);
    snprintf(want, sizeof want, TS "level=info msg=\"m\" v=%s\n", cases[i].out);
    const char *got = written();
    if (strcmp(got, want) != 0)
      fprintf(stderr, "case %zu: got  %swant %s", i, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
  }
}

/* A peer-chosen string holding a newline and a fake line stays one value
 * of one line, and the msg field is escaped the same way. */
static void test_newline_injection(void) {
  const char *evil =
      "bob\n" TS "level=error msg=\"relay compromised\" user=root";
  synod_log(SYNOD_LOG_INFO, "login", "user=%s ok=%d", evil, 1);
  const char *s = written();
  CU_ASSERT_EQUAL(count_char(s, '\n'), 1);
  CU_ASSERT_STRING_EQUAL(
      s, TS "level=info msg=\"login\" user=\"bob\\n" TS
            "level=error msg=\\\"relay compromised\\\" user=root\" ok=1\n");
  synod_log(SYNOD_LOG_INFO, "line1\nts=x level=error msg=forged", NULL);
  s = written();
  CU_ASSERT_EQUAL(count_char(s, '\n'), 1);
  CU_ASSERT_STRING_EQUAL(
      s, TS "level=info msg=\"line1\\nts=x level=error msg=forged\"\n");
  /* Control bytes in the format's own text cannot split the line either. */
  synod_log(SYNOD_LOG_INFO, "m", "a=1\nb=%d", 2);
  CU_ASSERT_STRING_EQUAL(written(), TS "level=info msg=\"m\" a=1?b=2\n");
}

static void test_long_value_cut(void) {
  size_t n = SYNOD_LOG_VALUE_MAX * 3;
  char *big = malloc(n + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  memset(big, 'a', n);
  big[n] = '\0';
  synod_log(SYNOD_LOG_INFO, "m", "v=%s w=%d", big, 7);
  const char *s = written();
  const char *v = strstr(s, "v=\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(v);
  v += 3;
  CU_ASSERT_EQUAL(strspn(v, "a"), SYNOD_LOG_VALUE_MAX);
  CU_ASSERT_STRING_EQUAL(v + SYNOD_LOG_VALUE_MAX, "...\" w=7\n");
  /* Exactly the limit is not cut. */
  big[SYNOD_LOG_VALUE_MAX] = '\0';
  synod_log(SYNOD_LOG_INFO, "m", "v=%s", big);
  s = written();
  CU_ASSERT_EQUAL(strlen(s),
                  strlen(TS "level=info msg=\"m\" v=\n") + SYNOD_LOG_VALUE_MAX);
  free(big);
}

static void test_conversions(void) {
  const char buf[3] = {'a', 'b', 'c'};  /* not NUL-terminated */
  const char *volatile null_str = NULL; /* hidden from -Wformat-overflow */
  synod_log(SYNOD_LOG_DEBUG, "m",
            "d=%d i=%i neg=%ld u=%u ll=%lld z=%zu zd=%zd j=%jd hh=%hhu h=%hd "
            "x=%x X=%X o=%o "
            "s=%.*s s2=%.1s c=%c f=%.2f e=%.1e g=%g null=%s pct=100%% p0=%.3d",
            -5, 7, -1234567890123L, 4000000000u, 9223372036854775807LL,
            (size_t)SIZE_MAX, (ssize_t)-3, (intmax_t)-9, (unsigned char)200,
            (short)-300, 0xbeefu, 0xbeefu, 8u, 2, buf, "xyz", 'q', 3.14159,
            12345.0, 0.5, null_str, 7);
  char want[512];
  snprintf(
      want, sizeof want,
      TS "level=debug msg=\"m\" d=-5 i=7 neg=-1234567890123 u=4000000000 "
         "ll=9223372036854775807 z=%zu zd=-3 j=-9 hh=200 h=-300 x=beef X=BEEF "
         "o=10 "
         "s=ab s2=x c=q f=3.14 e=1.2e+04 g=0.5 null=(null) pct=100%% p0=007\n",
      (size_t)SIZE_MAX);
  CU_ASSERT_STRING_EQUAL(written(), want);
  int x = 0;
  synod_log(SYNOD_LOG_DEBUG, "m", "p=%p c=%c", (void *)&x, ' ');
  const char *s = written();
  CU_ASSERT_PTR_NOT_NULL(strstr(s, " p=0x"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, " c=\" \"\n"));
}

/* Field widths and flags are refused rather than guessed at. */
static void test_unsupported_conversion(void) {
  synod_log(SYNOD_LOG_INFO, "m", "a=%d b=%5d c=%s", 1, 2, "never");
  CU_ASSERT_STRING_EQUAL(written(), TS "level=info msg=\"m\" a=1 b=!BADFMT\n");
  synod_log(SYNOD_LOG_INFO, "m", "a=%-s", "x");
  CU_ASSERT_STRING_EQUAL(written(), TS "level=info msg=\"m\" a=!BADFMT\n");
}

static void vlog_helper(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void vlog_helper(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  synod_vlog(SYNOD_LOG_INFO, "via vlog", fmt, ap);
  va_end(ap);
}

static void test_vlog(void) {
  vlog_helper("n=%d s=%s", 3, "a b");
  CU_ASSERT_STRING_EQUAL(written(),
                         TS "level=info msg=\"via vlog\" n=3 s=\"a b\"\n");
}

static CU_TestInfo log_tests[] = {
    {"line_format", test_line_format},
    {"real_clock", test_real_clock},
    {"levels", test_levels},
    {"level_parse", test_level_parse},
    {"quoting", test_quoting},
    {"newline_injection", test_newline_injection},
    {"long_value_cut", test_long_value_cut},
    {"conversions", test_conversions},
    {"unsupported_conversion", test_unsupported_conversion},
    {"vlog", test_vlog},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"log", setup, teardown, NULL, NULL, log_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
