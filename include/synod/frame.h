/*
 * Framing: a 4-byte big-endian length, then that many bytes of a protobuf
 * Frame (proto/synod.proto). Sans-I/O: bytes in, whole frames out.
 *
 * The decoder checks each length against its maximum before it allocates,
 * so a peer that announces 4 GiB costs nothing but the 4 header bytes.
 */
#ifndef SYNOD_FRAME_H
#define SYNOD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "synod/err.h"

#define SYNOD_FRAME_HEADER_BYTES 4
/* Default maximum body length; the relay's max_frame_bytes overrides it. */
#define SYNOD_FRAME_DEFAULT_MAX (256u * 1024u)
/* No configuration may raise the maximum above this. */
#define SYNOD_FRAME_HARD_MAX (16u * 1024u * 1024u)

typedef struct synod_frame_decoder {
  uint32_t max;                          /* largest accepted body */
  uint8_t hdr[SYNOD_FRAME_HEADER_BYTES]; /* header bytes gathered so far */
  size_t hdr_have;
  uint8_t *body;   /* body being gathered, or NULL */
  size_t body_len; /* announced body length */
  size_t body_have;
  int failed; /* sticky error, 0 if none */
} synod_frame_decoder_t;

/* Initialise dec to accept bodies of at most max bytes (1..HARD_MAX). */
int synod_frame_decoder_init(synod_frame_decoder_t *dec, uint32_t max);

/* Releases any partial body. dec may be re-initialised afterwards. */
void synod_frame_decoder_free(synod_frame_decoder_t *dec);

/*
 * Consumes bytes from data[0..len) until one frame is complete or the input
 * is used up. *consumed receives how many bytes were taken. Returns
 *   1  a frame is complete: *body (malloc'd, the caller now owns it and
 *      frees it with free()) and *body_len are set; call again with the
 *      rest of the input;
 *   0  all input consumed, more is needed;
 *  <0  SYNOD_ETOOBIG (announced length over the maximum) or SYNOD_EPROTO
 *      (zero-length frame); the error is sticky, the connection is done.
 * A zero-length body is a protocol violation: every frame holds a message.
 */
SYNOD_WUR int synod_frame_decoder_feed(synod_frame_decoder_t *dec,
                                       const uint8_t *data, size_t len,
                                       size_t *consumed, uint8_t **body,
                                       size_t *body_len);

/* 1 if dec holds a partial frame (a peer that closes now truncated it). */
int synod_frame_decoder_pending(const synod_frame_decoder_t *dec);

/* Writes the header for a body of body_len bytes; SYNOD_ETOOBIG when
 * body_len exceeds max. */
int synod_frame_header(uint8_t hdr[static SYNOD_FRAME_HEADER_BYTES],
                       size_t body_len, uint32_t max);

#endif
