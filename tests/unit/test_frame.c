/* Suite for lib/frame.c: the incremental length-prefixed decoder. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/frame.h"

static size_t put_frame(uint8_t *out, const uint8_t *body, size_t len) {
  CU_ASSERT_EQUAL_FATAL(synod_frame_header(out, len, SYNOD_FRAME_HARD_MAX), 0);
  memcpy(out + 4, body, len);
  return len + 4;
}

static void test_whole_frames(void) {
  synod_frame_decoder_t dec;
  uint8_t buf[64];
  size_t n = put_frame(buf, (const uint8_t *)"hello", 5);
  n += put_frame(buf + n, (const uint8_t *)"ab", 2);

  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 16), 0);
  size_t used, blen, off = 0;
  uint8_t *body;
  CU_ASSERT_EQUAL(synod_frame_decoder_feed(&dec, buf, n, &used, &body, &blen),
                  1);
  CU_ASSERT_EQUAL(used, 9);
  CU_ASSERT_EQUAL(blen, 5);
  CU_ASSERT_EQUAL(memcmp(body, "hello", 5), 0);
  free(body);
  off += used;
  CU_ASSERT_EQUAL(
      synod_frame_decoder_feed(&dec, buf + off, n - off, &used, &body, &blen),
      1);
  CU_ASSERT_EQUAL(blen, 2);
  CU_ASSERT_EQUAL(memcmp(body, "ab", 2), 0);
  free(body);
  off += used;
  CU_ASSERT_EQUAL(off, n);
  CU_ASSERT_FALSE(synod_frame_decoder_pending(&dec));
  synod_frame_decoder_free(&dec);
}

/* Every split point of a two-frame stream, byte by byte, gives the same
 * frames: the decoder holds no assumption about read boundaries. */
static void test_byte_at_a_time(void) {
  uint8_t buf[64];
  size_t n = put_frame(buf, (const uint8_t *)"0123456789", 10);
  n += put_frame(buf + n, (const uint8_t *)"xyz", 3);
  synod_frame_decoder_t dec;
  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 64), 0);
  int frames = 0;
  for (size_t i = 0; i < n; i++) {
    size_t used, blen;
    uint8_t *body;
    int rc = synod_frame_decoder_feed(&dec, buf + i, 1, &used, &body, &blen);
    CU_ASSERT(rc == 0 || rc == 1);
    CU_ASSERT_EQUAL(used, 1);
    if (rc == 1) {
      frames++;
      CU_ASSERT_EQUAL(blen, frames == 1 ? 10u : 3u);
      free(body);
    }
    CU_ASSERT_EQUAL(synod_frame_decoder_pending(&dec), i + 1 != n && i != 13);
  }
  CU_ASSERT_EQUAL(frames, 2);
  synod_frame_decoder_free(&dec);
}

/* A 4 GiB announcement is refused on its header alone, before allocation,
 * and the error is sticky. */
static void test_oversized(void) {
  synod_frame_decoder_t dec;
  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 1024), 0);
  const uint8_t hdr[] = {0xff, 0xff, 0xff, 0xff, 'x'};
  size_t used, blen;
  uint8_t *body;
  CU_ASSERT_EQUAL(
      synod_frame_decoder_feed(&dec, hdr, sizeof hdr, &used, &body, &blen),
      SYNOD_ETOOBIG);
  CU_ASSERT_PTR_NULL(body);
  CU_ASSERT_PTR_NULL(dec.body);
  CU_ASSERT_EQUAL(synod_frame_decoder_feed(&dec, hdr, 1, &used, &body, &blen),
                  SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(used, 0);
  synod_frame_decoder_free(&dec);

  /* One byte over the limit fails; exactly the limit passes the header. */
  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 1024), 0);
  const uint8_t over[] = {0, 0, 4, 1};
  CU_ASSERT_EQUAL(synod_frame_decoder_feed(&dec, over, 4, &used, &body, &blen),
                  SYNOD_ETOOBIG);
  synod_frame_decoder_free(&dec);
  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 1024), 0);
  const uint8_t at[] = {0, 0, 4, 0};
  CU_ASSERT_EQUAL(synod_frame_decoder_feed(&dec, at, 4, &used, &body, &blen),
                  0);
  CU_ASSERT_TRUE(synod_frame_decoder_pending(&dec));
  synod_frame_decoder_free(&dec);
}

static void test_zero_length_and_truncation(void) {
  synod_frame_decoder_t dec;
  size_t used, blen;
  uint8_t *body;
  const uint8_t zero[] = {0, 0, 0, 0};
  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 1024), 0);
  CU_ASSERT_EQUAL(synod_frame_decoder_feed(&dec, zero, 4, &used, &body, &blen),
                  SYNOD_EPROTO);
  synod_frame_decoder_free(&dec);

  /* A header promising 10 bytes followed by 3: the decoder waits, and
   * reports a pending partial frame for the caller to treat as truncated
   * when the peer closes. */
  const uint8_t part[] = {0, 0, 0, 10, 'a', 'b', 'c'};
  CU_ASSERT_EQUAL_FATAL(synod_frame_decoder_init(&dec, 1024), 0);
  CU_ASSERT_EQUAL(
      synod_frame_decoder_feed(&dec, part, sizeof part, &used, &body, &blen),
      0);
  CU_ASSERT_EQUAL(used, sizeof part);
  CU_ASSERT_TRUE(synod_frame_decoder_pending(&dec));
  synod_frame_decoder_free(&dec);
}

static void test_header_and_init_limits(void) {
  uint8_t hdr[4];
  synod_frame_decoder_t dec;
  CU_ASSERT_EQUAL(synod_frame_header(hdr, 0, 100), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_frame_header(hdr, 101, 100), SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(synod_frame_header(hdr, 0x00fe0304, SYNOD_FRAME_HARD_MAX), 0);
  CU_ASSERT_EQUAL(hdr[1], 0xfe);
  CU_ASSERT_EQUAL(hdr[3], 4);
  CU_ASSERT_EQUAL(synod_frame_decoder_init(&dec, 0), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_frame_decoder_init(&dec, SYNOD_FRAME_HARD_MAX + 1),
                  SYNOD_EINVAL);
}

static CU_TestInfo frame_tests[] = {
    {"whole_frames", test_whole_frames},
    {"byte_at_a_time", test_byte_at_a_time},
    {"oversized", test_oversized},
    {"zero_length_and_truncation", test_zero_length_and_truncation},
    {"header_and_init_limits", test_header_and_init_limits},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"frame", NULL, NULL, NULL, NULL, frame_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
