/* Suite for lib/encoding.c: hex, base64 and base64url (RFC 4648). */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "synod/encoding.h"

/* RFC 4648 section 10: the encodings of the prefixes of "foobar". */
static const char *const rfc_input[] = {"",     "f",     "fo",    "foo",
                                        "foob", "fooba", "foobar"};
static const char *const rfc_base64[] = {
    "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *const rfc_base16[] = {
    "", "66", "666F", "666F6F", "666F6F62", "666F6F6261", "666F6F626172"};
/* The same without padding, in the URL alphabet (section 5 and 3.2). */
static const char *const rfc_base64url[] = {
    "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
#define RFC_N (sizeof rfc_input / sizeof rfc_input[0])

static const uint8_t *u8(const char *s) {
  return (const uint8_t *)s;
}

static void lower(char *dst, const char *src) {
  for (; *src; src++, dst++)
    *dst = (*src >= 'A' && *src <= 'F') ? (char)(*src - 'A' + 'a') : *src;
  *dst = '\0';
}

static void test_hex_rfc4648(void) {
  for (size_t i = 0; i < RFC_N; i++) {
    const char *m = rfc_input[i], *h = rfc_base16[i];
    size_t mlen = strlen(m), hlen = strlen(h), n = 99;
    char out[32], low[32];
    uint8_t bin[16];
    lower(low, h);
    CU_ASSERT_EQUAL(synod_hex_encoded_len(mlen), hlen);
    CU_ASSERT_EQUAL(synod_hex_decoded_len(hlen), mlen);
    CU_ASSERT_EQUAL(synod_hex_encode(out, sizeof out, u8(m), mlen), 0);
    CU_ASSERT_STRING_EQUAL(out, low); /* lowercase out */
    CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, &n, h, hlen), 0);
    CU_ASSERT_EQUAL(n, mlen);
    CU_ASSERT_EQUAL(memcmp(bin, m, mlen), 0);
    n = 99;
    CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, &n, low, hlen), 0);
    CU_ASSERT_EQUAL(n, mlen);
    CU_ASSERT_EQUAL(memcmp(bin, m, mlen), 0);
  }
}

static void test_hex_all_bytes(void) {
  uint8_t all[256], back[256];
  char hex[513];
  for (unsigned i = 0; i < 256; i++)
    all[i] = (uint8_t)i;
  CU_ASSERT_EQUAL_FATAL(synod_hex_encode(hex, sizeof hex, all, 256), 0);
  CU_ASSERT_EQUAL(strlen(hex), 512);
  CU_ASSERT_EQUAL(memcmp(hex, "000102", 6), 0);
  CU_ASSERT_EQUAL(memcmp(hex + 508, "feff", 4), 0);
  size_t n;
  CU_ASSERT_EQUAL(synod_hex_decode(back, sizeof back, &n, hex, 512), 0);
  CU_ASSERT_EQUAL(n, 256);
  CU_ASSERT_EQUAL(memcmp(all, back, 256), 0);
  /* Mixed case decodes too. */
  CU_ASSERT_EQUAL(synod_hex_decode(back, 2, &n, "aBCd", 4), 0);
  CU_ASSERT_EQUAL(back[0], 0xab);
  CU_ASSERT_EQUAL(back[1], 0xcd);
}

static void test_hex_rejects(void) {
  uint8_t bin[8];
  char out[8];
  CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, NULL, "6", 1),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, NULL, "666", 3),
                  SYNOD_EPARSE);
  const char *bad[] = {"6g", "0x", " 6", "6 ", "g0", "6\n", "+1",
                       "-1", "@0", "`0", "G0", "/0", ":0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, NULL, bad[i], 2),
                    SYNOD_EPARSE);
  /* An embedded NUL is a bad character, not an end of string. */
  CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, NULL,
                                   "66\0"
                                   "0",
                                   4),
                  SYNOD_EPARSE);
  /* A failed decode leaves no partial output behind. */
  memset(bin, 0xaa, sizeof bin);
  CU_ASSERT_EQUAL(synod_hex_decode(bin, sizeof bin, NULL, "0102030z", 8),
                  SYNOD_EPARSE);
  for (size_t i = 0; i < 4; i++)
    CU_ASSERT_EQUAL(bin[i], 0);
  /* Buffers one byte too small. */
  CU_ASSERT_EQUAL(synod_hex_decode(bin, 2, NULL, "666f6f", 6), SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(synod_hex_decode(bin, 3, NULL, "666f6f", 6), 0);
  CU_ASSERT_EQUAL(synod_hex_encode(out, 6, u8("foo"), 3),
                  SYNOD_ETOOBIG); /* no room for NUL */
  CU_ASSERT_EQUAL(synod_hex_encode(out, 7, u8("foo"), 3), 0);
  CU_ASSERT_EQUAL(synod_hex_encode(NULL, 0, u8(""), 0), SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(synod_hex_encoded_len(SIZE_MAX / 2 + 1), SIZE_MAX);
}

static void test_base64_rfc4648(void) {
  for (size_t i = 0; i < RFC_N; i++) {
    const char *m = rfc_input[i], *b = rfc_base64[i];
    size_t mlen = strlen(m), blen = strlen(b), n = 99;
    char out[32];
    uint8_t bin[16];
    CU_ASSERT_EQUAL(synod_base64_encoded_len(mlen), blen);
    CU_ASSERT_EQUAL(SYNOD_BASE64_ENCODED_LEN(mlen), blen);
    CU_ASSERT(synod_base64_decoded_maxlen(blen) >= mlen);
    CU_ASSERT_EQUAL(synod_base64_encode(out, blen + 1, u8(m), mlen), 0);
    CU_ASSERT_STRING_EQUAL(out, b);
    /* Exactly the decoded length suffices, padding notwithstanding. */
    CU_ASSERT_EQUAL(synod_base64_decode(bin, mlen, &n, b, blen), 0);
    CU_ASSERT_EQUAL(n, mlen);
    CU_ASSERT_EQUAL(memcmp(bin, m, mlen), 0);
    if (mlen) {
      CU_ASSERT_EQUAL(synod_base64_decode(bin, mlen - 1, &n, b, blen),
                      SYNOD_ETOOBIG);
      CU_ASSERT_EQUAL(synod_base64_encode(out, blen, u8(m), mlen),
                      SYNOD_ETOOBIG);
    }
  }
}

static void test_base64url_rfc4648(void) {
  for (size_t i = 0; i < RFC_N; i++) {
    const char *m = rfc_input[i], *b = rfc_base64url[i];
    size_t mlen = strlen(m), blen = strlen(b), n = 99;
    char out[32];
    uint8_t bin[16];
    CU_ASSERT_EQUAL(synod_base64url_encoded_len(mlen), blen);
    CU_ASSERT_EQUAL(SYNOD_BASE64URL_ENCODED_LEN(mlen), blen);
    CU_ASSERT_EQUAL(synod_base64url_decoded_len(blen), mlen);
    CU_ASSERT_EQUAL(synod_base64url_encode(out, blen + 1, u8(m), mlen), 0);
    CU_ASSERT_STRING_EQUAL(out, b);
    CU_ASSERT_EQUAL(synod_base64url_decode(bin, mlen, &n, b, blen), 0);
    CU_ASSERT_EQUAL(n, mlen);
    CU_ASSERT_EQUAL(memcmp(bin, m, mlen), 0);
    if (mlen) {
      CU_ASSERT_EQUAL(synod_base64url_decode(bin, mlen - 1, &n, b, blen),
                      SYNOD_ETOOBIG);
      CU_ASSERT_EQUAL(synod_base64url_encode(out, blen, u8(m), mlen),
                      SYNOD_ETOOBIG);
    }
  }
}

/* Characters 62 and 63 differ between the alphabets (RFC 4648 tables 1
 * and 2); every byte value survives a round trip through both. */
static void test_base64_alphabets(void) {
  static const uint8_t fbefbe[3] = {0xfb, 0xef, 0xbe},
                       ones[3] = {0xff, 0xff, 0xff};
  char out[8];
  CU_ASSERT_EQUAL(synod_base64_encode(out, sizeof out, fbefbe, 3), 0);
  CU_ASSERT_STRING_EQUAL(out, "++++");
  CU_ASSERT_EQUAL(synod_base64_encode(out, sizeof out, ones, 3), 0);
  CU_ASSERT_STRING_EQUAL(out, "////");
  CU_ASSERT_EQUAL(synod_base64url_encode(out, sizeof out, fbefbe, 3), 0);
  CU_ASSERT_STRING_EQUAL(out, "----");
  CU_ASSERT_EQUAL(synod_base64url_encode(out, sizeof out, ones, 3), 0);
  CU_ASSERT_STRING_EQUAL(out, "____");

  uint8_t all[256], back[256];
  char b64[400];
  size_t n;
  for (unsigned i = 0; i < 256; i++)
    all[i] = (uint8_t)(255 - i);
  for (size_t len = 0; len <= 256; len += 1) {
    CU_ASSERT_EQUAL_FATAL(synod_base64_encode(b64, sizeof b64, all, len), 0);
    CU_ASSERT_EQUAL(strlen(b64), synod_base64_encoded_len(len));
    CU_ASSERT_EQUAL(
        synod_base64_decode(back, sizeof back, &n, b64, strlen(b64)), 0);
    CU_ASSERT(n == len && memcmp(all, back, len) == 0);
    CU_ASSERT_EQUAL_FATAL(synod_base64url_encode(b64, sizeof b64, all, len), 0);
    CU_ASSERT_EQUAL(strlen(b64), synod_base64url_encoded_len(len));
    CU_ASSERT_EQUAL(
        synod_base64url_decode(back, sizeof back, &n, b64, strlen(b64)), 0);
    CU_ASSERT(n == len && memcmp(all, back, len) == 0);
  }
}

static void test_base64_rejects(void) {
  static const char *const bad[] = {
      "Zg=",      /* length not a multiple of 4 */
      "Zg",       /* padding missing */
      "Zm8",      /* padding missing */
      "Z===",     /* three '=' */
      "====",     /* all padding */
      "=Zg=",     /* '=' first */
      "Zg==Zg==", /* padding in the middle */
      "Zg=A",     /* data after padding */
      "Zh==",     /* non-canonical: 'h' leaves low bits set (RFC 4648 3.5) */
      "Zm9=",     /* non-canonical: '9' leaves low bits set */
      "Zm 8",     /* whitespace */
      "Zm8=\n",   /* trailing newline */
      "Zm-_",     /* URL alphabet in standard base64 */
      "Zm8.",     /* not in any alphabet */
      "Zm\x80=",  /* high byte */
  };
  uint8_t bin[16];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = synod_base64_decode(bin, sizeof bin, NULL, bad[i], strlen(bad[i]));
    if (rc != SYNOD_EPARSE)
      fprintf(stderr, "accepted bad base64 \"%s\": %d\n", bad[i], rc);
    CU_ASSERT_EQUAL(rc, SYNOD_EPARSE);
  }
  CU_ASSERT_EQUAL(synod_base64_decode(bin, sizeof bin, NULL, "Zm\0v", 4),
                  SYNOD_EPARSE);
  memset(bin, 0xaa, sizeof bin);
  CU_ASSERT_EQUAL(synod_base64_decode(bin, sizeof bin, NULL, "Zm9vYmF!", 8),
                  SYNOD_EPARSE);
  for (size_t i = 0; i < 6; i++)
    CU_ASSERT_EQUAL(bin[i], 0);
}

static void test_base64url_rejects(void) {
  static const char *const bad[] = {
      "Z",     /* 4k+1 characters can not occur */
      "Zm9vY", /* likewise */
      "Zg==",  /* no padding in this variant */
      "Zm8=",  /* likewise */
      "Zh",    /* non-canonical */
      "Zm9",   /* non-canonical */
      "Zm+/",  /* standard alphabet */
      "Zm 8",  /* whitespace */
  };
  uint8_t bin[16];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(
        synod_base64url_decode(bin, sizeof bin, NULL, bad[i], strlen(bad[i])),
        SYNOD_EPARSE);
}

/* Over every final group with one and with two '=', a string decodes iff
 * it is the canonical encoding of what it decodes to, and each byte string
 * has exactly one accepted encoding. */
static void test_base64_canonical_exhaustive(void) {
  unsigned ok1 = 0, ok2 = 0;
  char in[5] = "Z\0\0=", re[8];
  uint8_t bin[3];
  size_t n;
  for (unsigned a = 0; a < 256; a++) {
    for (unsigned b = 0; b < 256; b++) {
      in[1] = (char)a;
      in[2] = (char)b;
      in[3] = '=';
      /* b == '=' would make this a two-'=' group, counted below. */
      if (b != '=' && synod_base64_decode(bin, sizeof bin, &n, in, 4) == 0) {
        ok1++;
        CU_ASSERT_EQUAL(synod_base64_encode(re, sizeof re, bin, n), 0);
        CU_ASSERT_EQUAL(memcmp(re, in, 4), 0);
      }
      in[0] = (char)a;
      in[1] = (char)b;
      in[2] = '=';
      if (synod_base64_decode(bin, sizeof bin, &n, in, 4) == 0) {
        ok2++;
        CU_ASSERT_EQUAL(synod_base64_encode(re, sizeof re, bin, n), 0);
        CU_ASSERT_EQUAL(memcmp(re, in, 4), 0);
      }
      in[0] = 'Z';
    }
  }
  /* 'Z' fixed, 64 choices for the second character, 16 of 64 for the
   * third: 2^10 two-byte strings; and 2^8 one-byte strings. */
  CU_ASSERT_EQUAL(ok1, 1024);
  CU_ASSERT_EQUAL(ok2, 256);
}

static void test_length_helpers(void) {
  CU_ASSERT_EQUAL(synod_base64_encoded_len(32), 44);
  CU_ASSERT_EQUAL(synod_base64url_encoded_len(32), 43);
  CU_ASSERT_EQUAL(synod_base64_decoded_maxlen(44), 33);
  CU_ASSERT_EQUAL(synod_base64url_decoded_len(43), 32);
  CU_ASSERT_EQUAL(synod_base64_encoded_len(SIZE_MAX), SIZE_MAX);
  CU_ASSERT_EQUAL(synod_base64url_encoded_len(SIZE_MAX), SIZE_MAX);
  CU_ASSERT_EQUAL(SYNOD_HEX_ENCODED_LEN(32), 64);
  char big[1];
  CU_ASSERT_EQUAL(synod_base64_encode(big, 1, u8("x"), SIZE_MAX),
                  SYNOD_ETOOBIG);
}

static CU_TestInfo encoding_tests[] = {
    {"hex_rfc4648", test_hex_rfc4648},
    {"hex_all_bytes", test_hex_all_bytes},
    {"hex_rejects", test_hex_rejects},
    {"base64_rfc4648", test_base64_rfc4648},
    {"base64url_rfc4648", test_base64url_rfc4648},
    {"base64_alphabets", test_base64_alphabets},
    {"base64_rejects", test_base64_rejects},
    {"base64url_rejects", test_base64url_rejects},
    {"base64_canonical_exhaustive", test_base64_canonical_exhaustive},
    {"length_helpers", test_length_helpers},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"encoding", NULL, NULL, NULL, NULL, encoding_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
