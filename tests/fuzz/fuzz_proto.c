/*
 * unpack -> pack -> unpack -> pack of every top-level message of
 * proto/synod.proto, with protobuf-c's own parser and with the project's
 * checked one (synod_wire_unpack_message: UTF-8, no NUL in strings).
 *
 * Input: one byte choosing the message type (modulo the table below, which
 * regress.sh checks lists every message of the .proto), then its bytes.
 * Checks: what the checked parser accepts protobuf-c accepts; a parsed
 * message packs to get_packed_size() bytes; when the checked parser
 * accepted the input, those bytes parse again with both parsers and pack
 * to the same bytes (byte-stable after one round).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/wire.h"

#define M(n) &synod__v1__##n##__descriptor
static const ProtobufCMessageDescriptor *const types[] = {
    M(frame),
    M(signed),
    M(hello),
    M(auth),
    M(ready),
    M(error),
    M(ping),
    M(pong),
    M(device_key),
    M(announcement_body),
    M(announcement),
    M(countersignature_body),
    M(countersignature),
    M(publish),
    M(publish_result),
    M(countersign_request),
    M(countersign_response),
    M(lookup_request),
    M(lookup_answer_body),
    M(lookup_answer),
    M(equivocation_proof),
    M(gossip_announcement),
    M(head),
    M(heads_summary),
    M(fetch_announcements),
    M(proof_request),
    M(proof_list),
    M(device_ciphertext),
    M(envelope),
    M(submit),
    M(accepted),
    M(deliver),
    M(delivery_ack),
    M(fetch),
    M(forward),
    M(forward_reject),
    M(forward_ack),
    M(purge_body),
    M(purge),
    M(purge_result),
    M(peer_purge),
    M(delivery_failure_body),
    M(delivery_failure),
    M(message_body),
    M(sealed_message),
};
#undef M
#define NTYPES (sizeof types / sizeof types[0])

static void check(int ok, const char *what,
                  const ProtobufCMessageDescriptor *d) {
  if (!ok) {
    fprintf(stderr, "fuzz_proto: %s: %s\n", d->name, what);
    abort();
  }
}

/* Packs m into a new buffer of exactly get_packed_size() bytes. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf)
    abort();
  size_t w = protobuf_c_message_pack(m, buf);
  check(w == n, "pack wrote another size than get_packed_size", m->descriptor);
  *len = n;
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const ProtobufCMessageDescriptor *d = types[data[0] % NTYPES];
  data++;
  size--;

  ProtobufCMessage *checked = NULL;
  int checked_ok = synod_wire_unpack_message(d, data, size, &checked) == 0;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
  check(!checked_ok || m != NULL,
        "checked parser accepts what protobuf-c refuses", d);
  synod_wire_free_message(checked);
  if (!m)
    return 0;
  check(protobuf_c_message_check(m), "unpacked message fails its check", d);

  size_t alen, blen;
  uint8_t *a = pack(m, &alen);
  ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, alen, a);
  protobuf_c_message_free_unpacked(m, NULL);
  /* protobuf-c alone accepts an over-long encoded tag of field number 0
   * (80 00) as an unknown field and packs it back as the tag 00, which no
   * parser accepts (regress/proto/crash-db96bc68...). The checked parser
   * refuses field number 0, and everything the project reads goes through
   * it, so the round trip is asserted for what the checked parser accepts;
   * the rest only has to be memory-safe. */
  if (!checked_ok) {
    free(a);
    protobuf_c_message_free_unpacked(m2, NULL);
    return 0;
  }
  check(m2 != NULL, "packed bytes do not parse", d);
  uint8_t *b = pack(m2, &blen);
  check(alen == blen && memcmp(a, b, alen) == 0,
        "re-pack is not byte-stable after one round", d);
  ProtobufCMessage *c2 = NULL;
  check(synod_wire_unpack_message(d, a, alen, &c2) == 0,
        "checked parser refuses the re-packed bytes of what it accepted", d);
  synod_wire_free_message(c2);
  free(a);
  free(b);
  protobuf_c_message_free_unpacked(m2, NULL);
  return 0;
}
