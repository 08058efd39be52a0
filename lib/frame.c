/* Length-prefixed framing; see synod/frame.h. */
#include "synod/frame.h"

#include <stdlib.h>
#include <string.h>

int synod_frame_decoder_init(synod_frame_decoder_t *dec, uint32_t max) {
  if (!dec || max == 0 || max > SYNOD_FRAME_HARD_MAX)
    return SYNOD_EINVAL;
  memset(dec, 0, sizeof *dec);
  dec->max = max;
  return 0;
}

void synod_frame_decoder_free(synod_frame_decoder_t *dec) {
  if (!dec)
    return;
  free(dec->body);
  dec->body = NULL;
  dec->body_have = dec->body_len = dec->hdr_have = 0;
}

int synod_frame_decoder_pending(const synod_frame_decoder_t *dec) {
  return dec->hdr_have > 0 || dec->body != NULL;
}

int synod_frame_decoder_feed(synod_frame_decoder_t *dec, const uint8_t *data,
                             size_t len, size_t *consumed, uint8_t **body,
                             size_t *body_len) {
  size_t off = 0;

  *consumed = 0;
  *body = NULL;
  *body_len = 0;
  if (dec->failed)
    return dec->failed;

  while (off < len) {
    if (!dec->body) {
      size_t take = SYNOD_FRAME_HEADER_BYTES - dec->hdr_have;
      if (take > len - off)
        take = len - off;
      memcpy(dec->hdr + dec->hdr_have, data + off, take);
      dec->hdr_have += take;
      off += take;
      if (dec->hdr_have < SYNOD_FRAME_HEADER_BYTES)
        break;
      uint32_t n = (uint32_t)dec->hdr[0] << 24 | (uint32_t)dec->hdr[1] << 16 |
                   (uint32_t)dec->hdr[2] << 8 | (uint32_t)dec->hdr[3];
      /* Checked before any allocation: the announced size costs nothing. */
      if (n > dec->max) {
        dec->failed = SYNOD_ETOOBIG;
        break;
      }
      if (n == 0) {
        dec->failed = SYNOD_EPROTO;
        break;
      }
      dec->body = malloc(n);
      if (!dec->body) {
        dec->failed = SYNOD_ENOMEM;
        break;
      }
      dec->body_len = n;
      dec->body_have = 0;
      dec->hdr_have = 0;
    }
    size_t take = dec->body_len - dec->body_have;
    if (take > len - off)
      take = len - off;
    memcpy(dec->body + dec->body_have, data + off, take);
    dec->body_have += take;
    off += take;
    if (dec->body_have == dec->body_len) {
      *body = dec->body;
      *body_len = dec->body_len;
      dec->body = NULL;
      dec->body_len = dec->body_have = 0;
      *consumed = off;
      return 1;
    }
  }
  *consumed = off;
  return dec->failed;
}

int synod_frame_header(uint8_t hdr[static SYNOD_FRAME_HEADER_BYTES],
                       size_t body_len, uint32_t max) {
  if (body_len == 0)
    return SYNOD_EINVAL;
  if (body_len > max)
    return SYNOD_ETOOBIG;
  hdr[0] = (uint8_t)(body_len >> 24);
  hdr[1] = (uint8_t)(body_len >> 16);
  hdr[2] = (uint8_t)(body_len >> 8);
  hdr[3] = (uint8_t)body_len;
  return 0;
}
