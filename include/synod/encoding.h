/*
 * Text encodings of binary data (RFC 4648): hex, base64 with padding
 * (section 4) and base64url without padding (section 5).
 *
 * Encoders write lowercase hex / canonical base64 followed by a NUL, so out
 * needs synod_*_encoded_len(inlen) + 1 bytes. Decoders take explicit input
 * lengths (no NUL needed, an embedded NUL is an error) and are strict: any
 * character outside the alphabet, whitespace, misplaced or missing padding,
 * or non-zero unused trailing bits (a non-canonical encoding, RFC 4648
 * section 3.5) is SYNOD_EPARSE, so each byte string has exactly one accepted
 * encoding. Hex decoding accepts either case.
 *
 * Both directions run in time independent of the byte values (no
 * table look-ups or branches on data), because they carry key material.
 *
 * All buffers are caller-owned and only used during the call. On failure a
 * decoder leaves out zeroed over the bytes it had written; callers decoding
 * secrets still wipe out themselves after use.
 */
#ifndef SYNOD_ENCODING_H
#define SYNOD_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "synod/err.h"

/* Characters (without the NUL) encoding n bytes; for array sizes known at
 * compile time: char buf[SYNOD_BASE64_ENCODED_LEN(32) + 1]. */
#define SYNOD_HEX_ENCODED_LEN(n)    (2 * (n))
#define SYNOD_BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
#define SYNOD_BASE64URL_ENCODED_LEN(n)                                         \
  (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* --- hex ------------------------------------------------------------------ */

/* Characters (without the NUL) encoding binlen bytes, or SIZE_MAX when
 * that does not fit in size_t. */
size_t synod_hex_encoded_len(size_t binlen);

/* Bytes that hexlen characters decode to (hexlen / 2; odd lengths are
 * rejected by the decoder). */
size_t synod_hex_decoded_len(size_t hexlen);

/* Lowercase hex of in[0..inlen) and a NUL into out[0..outlen).
 * SYNOD_ETOOBIG when outlen < synod_hex_encoded_len(inlen) + 1. */
int synod_hex_encode(char *out, size_t outlen, const uint8_t *in, size_t inlen);

/* Decodes in[0..inlen) (either case) into out; *binlen (if not NULL)
 * receives the byte count. SYNOD_EPARSE on an odd length or a non-hex
 * character, SYNOD_ETOOBIG when outlen < inlen / 2. */
SYNOD_WUR int synod_hex_decode(uint8_t *out, size_t outlen, size_t *binlen,
                               const char *in, size_t inlen);

/* --- base64, standard alphabet, padded (RFC 4648 section 4) --------------- */

/* Characters (without the NUL) encoding binlen bytes, or SIZE_MAX. */
size_t synod_base64_encoded_len(size_t binlen);

/* Upper bound of the bytes b64len characters decode to (the exact count is
 * smaller by the number of '=' at the end). */
size_t synod_base64_decoded_maxlen(size_t b64len);

/* Padded base64 of in[0..inlen) and a NUL into out[0..outlen).
 * SYNOD_ETOOBIG when outlen < synod_base64_encoded_len(inlen) + 1. */
int synod_base64_encode(char *out, size_t outlen, const uint8_t *in,
                        size_t inlen);

/* Decodes padded base64. *binlen (if not NULL) receives the byte count.
 * SYNOD_EPARSE on a length that is not a multiple of 4, a bad character,
 * bad padding or non-zero trailing bits; SYNOD_ETOOBIG when outlen is
 * smaller than the exact decoded length. */
SYNOD_WUR int synod_base64_decode(uint8_t *out, size_t outlen, size_t *binlen,
                                  const char *in, size_t inlen);

/* --- base64url, no padding (RFC 4648 section 5, as in JWS / RFC 7515) ----- */

/* Characters (without the NUL) encoding binlen bytes, or SIZE_MAX. */
size_t synod_base64url_encoded_len(size_t binlen);

/* Bytes that b64len characters decode to (exact for valid input). */
size_t synod_base64url_decoded_len(size_t b64len);

/* Unpadded base64url of in[0..inlen) and a NUL into out[0..outlen).
 * SYNOD_ETOOBIG when outlen < synod_base64url_encoded_len(inlen) + 1. */
int synod_base64url_encode(char *out, size_t outlen, const uint8_t *in,
                           size_t inlen);

/* Decodes unpadded base64url. SYNOD_EPARSE on '=', a bad character, a
 * length of 4k+1 or non-zero trailing bits; SYNOD_ETOOBIG when
 * outlen < synod_base64url_decoded_len(inlen). */
SYNOD_WUR int synod_base64url_decode(uint8_t *out, size_t outlen,
                                     size_t *binlen, const char *in,
                                     size_t inlen);

#endif
