/* Frames to bytes and back, over the protoc-c generated code. */
#include "synod/wire.h"

#include <stdlib.h>
#include <string.h>

#include "synod/frame.h"

/* Deeper than any path through synod.proto (Frame > LookupAnswer >
 * EquivocationProof > Signed is 4); the walk follows descriptors, not the
 * input, so this only guards against a future recursive schema. */
#define WIRE_MAX_DEPTH 16

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq_len(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    else if (c == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return len;
}

/* A wire string: UTF-8 and no NUL (C would cut the string there). */
static int string_ok(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t k = utf8_seq_len(s + i, n - i);
    if (k == 0 || s[i] == 0)
      return 0;
    i += k;
  }
  return 1;
}

static int read_varint(const uint8_t *buf, size_t len, size_t *pos,
                       uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
    uint8_t b = buf[(*pos)++];
    r |= (uint64_t)(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return SYNOD_EPARSE;
}

/*
 * Walks the encoded message buf[0..len) of type desc and checks every
 * string field it knows, recursing into known message fields. protobuf-c
 * has already accepted these bytes; the walk still treats them as hostile.
 */
static int check_strings(const ProtobufCMessageDescriptor *desc,
                         const uint8_t *buf, size_t len, unsigned depth) {
  size_t pos = 0;
  if (depth > WIRE_MAX_DEPTH)
    return SYNOD_EPARSE;
  while (pos < len) {
    uint64_t tag, n;
    if (read_varint(buf, len, &pos, &tag) != 0 || (tag >> 3) == 0 ||
        (tag >> 3) > UINT32_MAX)
      return SYNOD_EPARSE;
    switch (tag & 7) {
    case 0: /* varint */
      if (read_varint(buf, len, &pos, &n) != 0)
        return SYNOD_EPARSE;
      break;
    case 1: /* fixed64 */
      if (len - pos < 8)
        return SYNOD_EPARSE;
      pos += 8;
      break;
    case 5: /* fixed32 */
      if (len - pos < 4)
        return SYNOD_EPARSE;
      pos += 4;
      break;
    case 2: { /* length-delimited */
      if (read_varint(buf, len, &pos, &n) != 0 || n > len - pos)
        return SYNOD_EPARSE;
      const uint8_t *p = buf + pos;
      size_t plen = (size_t)n;
      pos += plen;
      const ProtobufCFieldDescriptor *fd =
          protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
      if (fd == NULL)
        break; /* unknown field: ignored, as the versioning rule says */
      if (fd->type == PROTOBUF_C_TYPE_STRING && !string_ok(p, plen))
        return SYNOD_EPARSE;
      if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        int rc = check_strings(fd->descriptor, p, plen, depth + 1);
        if (rc != 0)
          return rc;
      }
      break;
    }
    default: /* groups (3, 4) and 6, 7 do not exist in proto3 */
      return SYNOD_EPARSE;
    }
  }
  return 0;
}

int synod_wire_pack(const Synod__V1__Frame *f, uint32_t max, uint8_t **out,
                    size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  if (max == 0 || max > SYNOD_FRAME_HARD_MAX ||
      f->body_case == SYNOD__V1__FRAME__BODY__NOT_SET)
    return SYNOD_EINVAL;

  uint8_t hdr[SYNOD_FRAME_HEADER_BYTES];
  size_t body_len = synod__v1__frame__get_packed_size(f);
  int rc = synod_frame_header(hdr, body_len, max);
  if (rc != 0)
    return rc;
  uint8_t *buf = malloc(SYNOD_FRAME_HEADER_BYTES + body_len);
  if (buf == NULL)
    return SYNOD_ENOMEM;
  memcpy(buf, hdr, SYNOD_FRAME_HEADER_BYTES);
  size_t packed = synod__v1__frame__pack(f, buf + SYNOD_FRAME_HEADER_BYTES);
  if (packed != body_len) { /* cannot happen: same message, same size */
    free(buf);
    return SYNOD_EINTERNAL;
  }
  *out = buf;
  *outlen = SYNOD_FRAME_HEADER_BYTES + body_len;
  return 0;
}

int synod_wire_unpack_message(const ProtobufCMessageDescriptor *desc,
                              const uint8_t *buf, size_t len,
                              ProtobufCMessage **out) {
  /* protobuf_c_message_unpack: "Returns NULL on failure" -- malformed
   * input or allocation failure, without saying which. */
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, buf);
  *out = NULL;
  if (m == NULL)
    return SYNOD_EPARSE;
  if (check_strings(desc, buf, len, 0) != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    return SYNOD_EPARSE;
  }
  *out = m;
  return 0;
}

void synod_wire_free_message(ProtobufCMessage *m) {
  if (m != NULL)
    protobuf_c_message_free_unpacked(m, NULL);
}

int synod_wire_unpack(const uint8_t *body, size_t len, Synod__V1__Frame **out) {
  ProtobufCMessage *m;
  *out = NULL;
  int rc =
      synod_wire_unpack_message(&synod__v1__frame__descriptor, body, len, &m);
  if (rc != 0)
    return rc;
  Synod__V1__Frame *f = (Synod__V1__Frame *)m;
  /* An unset oneof is also what a member from a newer version looks like:
   * protobuf-c keeps it as an unknown field. Either way there is nothing
   * to act on, and a peer only sends new members after agreeing on a
   * version that has them. */
  if (f->body_case == SYNOD__V1__FRAME__BODY__NOT_SET) {
    synod__v1__frame__free_unpacked(f, NULL);
    return SYNOD_EPROTO;
  }
  *out = f;
  return 0;
}

void synod_wire_free(Synod__V1__Frame *f) {
  if (f != NULL)
    synod__v1__frame__free_unpacked(f, NULL);
}

/* Copies src into dst (room for max bytes plus NUL) on character
 * boundaries, replacing bad bytes and control characters with '?'. */
static void copy_reason(char *dst, size_t max, const char *src) {
  const uint8_t *s = (const uint8_t *)src;
  size_t n = strlen(src), i = 0, o = 0;
  while (i < n) {
    size_t k = utf8_seq_len(s + i, n - i);
    if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7F))) {
      if (o + 1 > max)
        break;
      dst[o++] = '?';
      i += k == 0 ? 1 : k;
      continue;
    }
    if (o + k > max)
      break;
    memcpy(dst + o, s + i, k);
    o += k;
    i += k;
  }
  dst[o] = '\0';
}

void synod_wire_error(synod_wire_error_t *e, uint64_t request_id, int code,
                      const char *reason) {
  /* 0u - x rather than -x: defined for INT_MIN too. */
  unsigned int wire = code < 0 ? 0u - (unsigned int)code : (unsigned int)code;
  if (wire == 0)
    wire = (unsigned int)-SYNOD_EINTERNAL;

  synod__v1__frame__init(&e->frame);
  synod__v1__error__init(&e->error);
  copy_reason(e->reason, SYNOD_WIRE_REASON_MAX, reason ? reason : "");
  e->error.code = wire;
  e->error.reason = e->reason;
  e->frame.request_id = request_id;
  e->frame.body_case = SYNOD__V1__FRAME__BODY_ERROR;
  e->frame.error = &e->error;
}
