/*
 * Hex and base64 (RFC 4648). See synod/encoding.h.
 *
 * Characters are mapped with masks instead of look-up tables so that the
 * time taken does not depend on the (possibly secret) values: every
 * character goes through the same arithmetic, and validity is accumulated
 * into a mask that is tested once at the end.
 */
#include "synod/encoding.h"

#include <stdint.h>
#include <string.h>

/* All-ones when a < b, else 0; a and b below 2^31. */
static unsigned lt_mask(unsigned a, unsigned b) {
  return 0u - ((a - b) >> 31);
}

/* All-ones when lo <= c <= hi, else 0. */
static unsigned in_range(unsigned c, unsigned lo, unsigned hi) {
  return ~lt_mask(c, lo) & ~lt_mask(hi, c);
}

/* --- hex ------------------------------------------------------------------ */

size_t synod_hex_encoded_len(size_t binlen) {
  return binlen > SIZE_MAX / 2 ? SIZE_MAX : 2 * binlen;
}

size_t synod_hex_decoded_len(size_t hexlen) {
  return hexlen / 2;
}

static char hex_char(unsigned nibble) {
  /* '0'..'9', then 'a'..'f' which starts 39 code points after '9' + 1. */
  return (char)(nibble + '0' + (~lt_mask(nibble, 10) & 39u));
}

int synod_hex_encode(char *out, size_t outlen, const uint8_t *in,
                     size_t inlen) {
  size_t need = synod_hex_encoded_len(inlen);
  if (need == SIZE_MAX || outlen <= need)
    return SYNOD_ETOOBIG;
  for (size_t i = 0; i < inlen; i++) {
    out[2 * i] = hex_char((unsigned)in[i] >> 4);
    out[2 * i + 1] = hex_char((unsigned)in[i] & 15u);
  }
  out[need] = '\0';
  return 0;
}

/* Value of hex digit c (0..15); sets bits of *bad when c is not one. */
static unsigned hex_value(unsigned c, unsigned *bad) {
  unsigned digit = in_range(c, '0', '9');
  unsigned lower = in_range(c, 'a', 'f');
  unsigned upper = in_range(c, 'A', 'F');
  *bad |= ~(digit | lower | upper);
  return ((digit & (c - '0')) | (lower & (c - 'a' + 10u)) |
          (upper & (c - 'A' + 10u))) &
         15u;
}

int synod_hex_decode(uint8_t *out, size_t outlen, size_t *binlen,
                     const char *in, size_t inlen) {
  if (inlen % 2)
    return SYNOD_EPARSE;
  size_t need = inlen / 2;
  if (outlen < need)
    return SYNOD_ETOOBIG;
  unsigned bad = 0;
  for (size_t i = 0; i < need; i++) {
    unsigned hi = hex_value((unsigned char)in[2 * i], &bad);
    unsigned lo = hex_value((unsigned char)in[2 * i + 1], &bad);
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  if (bad) {
    if (need)
      memset(out, 0, need);
    return SYNOD_EPARSE;
  }
  if (binlen)
    *binlen = need;
  return 0;
}

/* --- base64 core ---------------------------------------------------------- */

/* The two alphabets differ only in the characters for 62 and 63. */
typedef struct alphabet {
  unsigned c62, c63;
} alphabet_t;

static const alphabet_t std_alphabet = {'+', '/'};
static const alphabet_t url_alphabet = {'-', '_'};

static char b64_char(unsigned v, const alphabet_t *a) {
  unsigned c = (in_range(v, 0, 25) & (v + 'A')) |
               (in_range(v, 26, 51) & (v - 26u + 'a')) |
               (in_range(v, 52, 61) & (v - 52u + '0')) |
               (in_range(v, 62, 62) & a->c62) | (in_range(v, 63, 63) & a->c63);
  return (char)c;
}

/* Value of base64 character c (0..63); sets bits of *bad when c is not in
 * the alphabet. */
static unsigned b64_value(unsigned c, const alphabet_t *a, unsigned *bad) {
  unsigned upper = in_range(c, 'A', 'Z');
  unsigned lower = in_range(c, 'a', 'z');
  unsigned digit = in_range(c, '0', '9');
  unsigned e62 = in_range(c, a->c62, a->c62);
  unsigned e63 = in_range(c, a->c63, a->c63);
  *bad |= ~(upper | lower | digit | e62 | e63);
  return ((upper & (c - 'A')) | (lower & (c - 'a' + 26u)) |
          (digit & (c - '0' + 52u)) | (e62 & 62u) | (e63 & 63u)) &
         63u;
}

/* Characters for binlen bytes: 4 per whole group of 3, then 2 or 3 for a
 * remainder of 1 or 2 (padded: always 4). SIZE_MAX on overflow. */
static size_t b64_len(size_t binlen, int pad) {
  size_t groups = binlen / 3, rem = binlen % 3;
  size_t tail = rem == 0 ? 0 : pad ? 4 : rem + 1;
  if (groups > (SIZE_MAX - 4) / 4)
    return SIZE_MAX;
  return groups * 4 + tail;
}

static int b64_encode(char *out, size_t outlen, const uint8_t *in, size_t inlen,
                      const alphabet_t *a, int pad) {
  size_t need = b64_len(inlen, pad);
  if (need == SIZE_MAX || outlen <= need)
    return SYNOD_ETOOBIG;
  size_t o = 0, i = 0;
  for (; inlen - i >= 3; i += 3) {
    unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64_char(w >> 18, a);
    out[o++] = b64_char(w >> 12 & 63u, a);
    out[o++] = b64_char(w >> 6 & 63u, a);
    out[o++] = b64_char(w & 63u, a);
  }
  size_t rem = inlen - i;
  if (rem) {
    unsigned w = (unsigned)in[i] << 16;
    if (rem == 2)
      w |= (unsigned)in[i + 1] << 8;
    out[o++] = b64_char(w >> 18, a);
    out[o++] = b64_char(w >> 12 & 63u, a);
    if (rem == 2)
      out[o++] = b64_char(w >> 6 & 63u, a);
    else if (pad)
      out[o++] = '=';
    if (pad)
      out[o++] = '=';
  }
  out[o] = '\0';
  return 0;
}

/* Bytes that nchars unpadded characters carry; nchars % 4 == 1 is not a
 * valid length and is rejected by the caller. */
static size_t b64_data_len(size_t nchars) {
  size_t rem = nchars % 4;
  return nchars / 4 * 3 + (rem ? rem - 1 : 0);
}

/* Decodes nchars characters without padding into out, which has room for
 * b64_data_len(nchars) bytes. Returns 0 or SYNOD_EPARSE; out is zeroed on
 * failure. */
static int b64_decode_chars(uint8_t *out, const char *in, size_t nchars,
                            const alphabet_t *a) {
  size_t rem = nchars % 4, whole = nchars - rem, o = 0;
  unsigned bad = 0;
  if (rem == 1)
    return SYNOD_EPARSE;
  for (size_t i = 0; i < whole; i += 4) {
    unsigned w = b64_value((unsigned char)in[i], a, &bad) << 18 |
                 b64_value((unsigned char)in[i + 1], a, &bad) << 12 |
                 b64_value((unsigned char)in[i + 2], a, &bad) << 6 |
                 b64_value((unsigned char)in[i + 3], a, &bad);
    out[o++] = (uint8_t)(w >> 16);
    out[o++] = (uint8_t)(w >> 8);
    out[o++] = (uint8_t)w;
  }
  if (rem) {
    unsigned w = b64_value((unsigned char)in[whole], a, &bad) << 18 |
                 b64_value((unsigned char)in[whole + 1], a, &bad) << 12;
    if (rem == 3)
      w |= b64_value((unsigned char)in[whole + 2], a, &bad) << 6;
    out[o++] = (uint8_t)(w >> 16);
    if (rem == 3)
      out[o++] = (uint8_t)(w >> 8);
    /* The bits below the last whole byte must be zero: otherwise several
     * strings would decode to the same bytes (RFC 4648 section 3.5). */
    bad |= rem == 3 ? (w & 0xffu) : (w & 0xffffu);
  }
  if (bad) {
    if (o)
      memset(out, 0, o);
    return SYNOD_EPARSE;
  }
  return 0;
}

/* --- base64 --------------------------------------------------------------- */

size_t synod_base64_encoded_len(size_t binlen) {
  return b64_len(binlen, 1);
}

size_t synod_base64_decoded_maxlen(size_t b64len) {
  return b64len / 4 * 3;
}

int synod_base64_encode(char *out, size_t outlen, const uint8_t *in,
                        size_t inlen) {
  return b64_encode(out, outlen, in, inlen, &std_alphabet, 1);
}

int synod_base64_decode(uint8_t *out, size_t outlen, size_t *binlen,
                        const char *in, size_t inlen) {
  if (inlen % 4)
    return SYNOD_EPARSE;
  /* Up to two '=' may end the input; any other '=' is not in the alphabet
   * and fails below, as does a group that is all padding. */
  size_t pad = 0;
  if (inlen && in[inlen - 1] == '=') {
    pad = 1;
    if (in[inlen - 2] == '=')
      pad = 2;
  }
  size_t nchars = inlen - pad, need = b64_data_len(nchars);
  if (outlen < need)
    return SYNOD_ETOOBIG;
  int rc = b64_decode_chars(out, in, nchars, &std_alphabet);
  if (rc)
    return rc;
  if (binlen)
    *binlen = need;
  return 0;
}

/* --- base64url ------------------------------------------------------------ */

size_t synod_base64url_encoded_len(size_t binlen) {
  return b64_len(binlen, 0);
}

size_t synod_base64url_decoded_len(size_t b64len) {
  return b64_data_len(b64len);
}

int synod_base64url_encode(char *out, size_t outlen, const uint8_t *in,
                           size_t inlen) {
  return b64_encode(out, outlen, in, inlen, &url_alphabet, 0);
}

int synod_base64url_decode(uint8_t *out, size_t outlen, size_t *binlen,
                           const char *in, size_t inlen) {
  if (inlen % 4 == 1)
    return SYNOD_EPARSE;
  size_t need = b64_data_len(inlen);
  if (outlen < need)
    return SYNOD_ETOOBIG;
  int rc = b64_decode_chars(out, in, inlen, &url_alphabet);
  if (rc)
    return rc;
  if (binlen)
    *binlen = need;
  return 0;
}
