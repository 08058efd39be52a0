/*
 * The frame decoder (lib/frame.c) and the frame parser (lib/wire.c) on an
 * arbitrary byte stream, as a connection reads it.
 *
 * Input: one byte choosing the chunk sizes, then the stream.
 * Checks: the stream cut in chunks gives the same frames and the same
 * error as the stream fed whole (the decoder keeps no state that depends
 * on how bytes arrive); no body exceeds the maximum or is empty; an error
 * is sticky; every frame that parses packs again, and that packing parses
 * and packs to the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/frame.h"
#include "synod/wire.h"

#define MAX 4096u

typedef struct run {
  uint8_t *bodies[64];
  size_t lens[64];
  size_t n;
  int error;
} run_t;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_frame: %s\n", what);
    abort();
  }
}

static void repack(const uint8_t *body, size_t len) {
  Synod__V1__Frame *f = NULL;
  if (synod_wire_unpack(body, len, &f) != 0)
    return;
  uint8_t *a = NULL, *b = NULL;
  size_t alen = 0, blen = 0;
  Synod__V1__Frame *g = NULL;
  int rc = synod_wire_pack(f, SYNOD_FRAME_HARD_MAX, &a, &alen);
  check(rc == 0, "a parsed frame does not pack");
  check(synod_wire_unpack(a + 4, alen - 4, &g) == 0,
        "a packed frame does not parse");
  check(synod_wire_pack(g, SYNOD_FRAME_HARD_MAX, &b, &blen) == 0,
        "a re-parsed frame does not pack");
  check(alen == blen && memcmp(a, b, alen) == 0,
        "packing is not stable after one round");
  free(a);
  free(b);
  synod_wire_free(f);
  synod_wire_free(g);
}

static void decode(run_t *r, const uint8_t *data, size_t len, uint8_t mode) {
  synod_frame_decoder_t dec;
  check(synod_frame_decoder_init(&dec, MAX) == 0, "init");
  memset(r, 0, sizeof *r);
  size_t off = 0, step = 0;
  while (off < len && r->error == 0) {
    size_t chunk = mode == 0 ? len - off : (size_t)(mode & 0x0f) + 1 + step % 3;
    step++;
    if (chunk > len - off)
      chunk = len - off;
    size_t used = 0;
    while (used < chunk) {
      size_t consumed;
      uint8_t *body;
      size_t blen;
      int rc = synod_frame_decoder_feed(&dec, data + off + used, chunk - used,
                                        &consumed, &body, &blen);
      check(consumed <= chunk - used, "consumed more than given");
      used += consumed;
      if (rc < 0) {
        check(rc == SYNOD_ETOOBIG || rc == SYNOD_EPROTO || rc == SYNOD_ENOMEM,
              "unexpected decoder error");
        r->error = rc;
        size_t c2;
        uint8_t *b2;
        size_t l2;
        check(synod_frame_decoder_feed(&dec, data, len, &c2, &b2, &l2) == rc &&
                  b2 == NULL,
              "decoder error is not sticky");
        break;
      }
      if (rc == 0) {
        check(used == chunk, "more needed before the input was used up");
        break;
      }
      check(body != NULL && blen > 0 && blen <= MAX, "bad body");
      if (r->n < 64) {
        r->bodies[r->n] = body;
        r->lens[r->n] = blen;
        r->n++;
      } else {
        free(body);
      }
    }
    off += chunk;
  }
  synod_frame_decoder_free(&dec);
}

static void release(run_t *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->bodies[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  run_t whole, cut;
  decode(&whole, data + 1, size - 1, 0);
  decode(&cut, data + 1, size - 1, (uint8_t)(mode | 1));
  check(whole.n == cut.n && whole.error == cut.error,
        "chunking changed the frames");
  for (size_t i = 0; i < whole.n; i++) {
    check(whole.lens[i] == cut.lens[i] &&
              memcmp(whole.bodies[i], cut.bodies[i], whole.lens[i]) == 0,
          "chunking changed a frame's bytes");
    repack(whole.bodies[i], whole.lens[i]);
  }
  release(&whole);
  release(&cut);
  return 0;
}
