/* Suite for lib/wire.c: Frames to framed bytes and back. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/frame.h"
#include "synod/wire.h"

/* Members of Frame.body in protocol v1 (proto/synod.proto). A new member
 * must be added to proto/README.md too; this count is the reminder. */
#define V1_FRAME_MEMBERS 28

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* Packs f, checks the header, unpacks the body, checks the body packs to
 * the same bytes again. Returns the unpacked frame (caller frees). */
static Synod__V1__Frame *roundtrip(const Synod__V1__Frame *f) {
  uint8_t *buf, *again;
  size_t len, alen;
  Synod__V1__Frame *g = NULL;

  CU_ASSERT_EQUAL_FATAL(synod_wire_pack(f, SYNOD_FRAME_DEFAULT_MAX, &buf, &len),
                        0);
  CU_ASSERT_FATAL(len > SYNOD_FRAME_HEADER_BYTES);
  CU_ASSERT_EQUAL(be32(buf), len - SYNOD_FRAME_HEADER_BYTES);
  CU_ASSERT_EQUAL_FATAL(synod_wire_unpack(buf + SYNOD_FRAME_HEADER_BYTES,
                                          len - SYNOD_FRAME_HEADER_BYTES, &g),
                        0);
  CU_ASSERT_EQUAL(g->body_case, f->body_case);
  CU_ASSERT_EQUAL(g->request_id, f->request_id);
  CU_ASSERT_EQUAL_FATAL(
      synod_wire_pack(g, SYNOD_FRAME_DEFAULT_MAX, &again, &alen), 0);
  CU_ASSERT_EQUAL(alen, len);
  CU_ASSERT_EQUAL(memcmp(again, buf, len), 0);
  free(again);
  free(buf);
  return g;
}

/* Every member of the oneof, default-initialised, found through the
 * descriptor so a member added to the schema is covered without edits. */
static void test_every_member_roundtrips(void) {
  const ProtobufCMessageDescriptor *fd = &synod__v1__frame__descriptor;
  unsigned members = 0;

  for (unsigned i = 0; i < fd->n_fields; i++) {
    const ProtobufCFieldDescriptor *field = &fd->fields[i];
    if (!(field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
      continue;
    members++;
    CU_ASSERT_EQUAL_FATAL(field->type, PROTOBUF_C_TYPE_MESSAGE);
    const ProtobufCMessageDescriptor *md = field->descriptor;
    ProtobufCMessage *m = calloc(1, md->sizeof_message);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    protobuf_c_message_init(md, m);

    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    f.request_id = 1000u + field->id;
    char *base = (char *)&f;
    memcpy(base + field->offset, &m, sizeof m);
    f.body_case = (Synod__V1__Frame__BodyCase)field->id;

    Synod__V1__Frame *g = roundtrip(&f);
    ProtobufCMessage *got;
    memcpy(&got, (char *)g + field->offset, sizeof got);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got != NULL)
      CU_ASSERT_PTR_EQUAL(got->descriptor, md);
    synod_wire_free(g);
    free(m);
  }
  CU_ASSERT_EQUAL(members, V1_FRAME_MEMBERS);
}

static void test_session_fields(void) {
  uint8_t nonce[32], key[32], sig[64];
  memset(nonce, 0xA5, sizeof nonce);
  memset(key, 0x11, sizeof key);
  memset(sig, 0x22, sizeof sig);

  Synod__V1__Hello hello;
  synod__v1__hello__init(&hello);
  hello.max_version = 1;
  hello.min_version = 1;
  hello.nonce.data = nonce;
  hello.nonce.len = sizeof nonce;
  hello.role = SYNOD__V1__ROLE__ROLE_RELAY;
  hello.name = "relay.example.org";
  hello.software = "synod-relay/0.1.0";
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_HELLO;
  f.hello = &hello;
  Synod__V1__Frame *g = roundtrip(&f);
  CU_ASSERT_EQUAL(g->hello->max_version, 1);
  CU_ASSERT_EQUAL(g->hello->role, SYNOD__V1__ROLE__ROLE_RELAY);
  CU_ASSERT_STRING_EQUAL(g->hello->name, "relay.example.org");
  CU_ASSERT_EQUAL(g->hello->nonce.len, 32);
  CU_ASSERT_EQUAL(memcmp(g->hello->nonce.data, nonce, 32), 0);
  synod_wire_free(g);

  Synod__V1__Auth auth;
  synod__v1__auth__init(&auth);
  auth.public_key.data = key;
  auth.public_key.len = sizeof key;
  auth.signature.data = sig;
  auth.signature.len = sizeof sig;
  auth.enrollment_code = "K7QX-22MF";
  f.body_case = SYNOD__V1__FRAME__BODY_AUTH;
  f.auth = &auth;
  f.request_id = 7;
  g = roundtrip(&f);
  CU_ASSERT_EQUAL(g->auth->signature.len, 64);
  CU_ASSERT_EQUAL(memcmp(g->auth->public_key.data, key, 32), 0);
  CU_ASSERT_STRING_EQUAL(g->auth->enrollment_code, "K7QX-22MF");
  synod_wire_free(g);
}

static void test_nested_fields(void) {
  uint8_t id[16], enc[32], ct[48];
  memset(id, 0x33, sizeof id);
  memset(enc, 0x44, sizeof enc);
  memset(ct, 0x55, sizeof ct);

  Synod__V1__DeviceCiphertext dc[2] = {SYNOD__V1__DEVICE_CIPHERTEXT__INIT,
                                       SYNOD__V1__DEVICE_CIPHERTEXT__INIT};
  Synod__V1__DeviceCiphertext *dcs[2] = {&dc[0], &dc[1]};
  for (unsigned i = 0; i < 2; i++) {
    dc[i].device_id = i + 1;
    dc[i].enc.data = enc;
    dc[i].enc.len = sizeof enc;
    dc[i].ct.data = ct;
    dc[i].ct.len = sizeof ct;
  }
  Synod__V1__Envelope env;
  synod__v1__envelope__init(&env);
  env.message_id.data = id;
  env.message_id.len = sizeof id;
  env.recipient = "bob@b.example";
  env.sender = "alice@a.example";
  env.sender_relay = "a.example";
  env.time = 1700000000;
  env.ttl = 604800;
  env.n_ciphertexts = 2;
  env.ciphertexts = dcs;
  Synod__V1__Submit sub = SYNOD__V1__SUBMIT__INIT;
  sub.envelope = &env;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  f.request_id = UINT64_MAX;
  f.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  f.submit = &sub;
  Synod__V1__Frame *g = roundtrip(&f);
  const Synod__V1__Envelope *e = g->submit->envelope;
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_STRING_EQUAL(e->recipient, "bob@b.example");
  CU_ASSERT_EQUAL(e->ttl, 604800);
  CU_ASSERT_EQUAL_FATAL(e->n_ciphertexts, 2);
  CU_ASSERT_EQUAL(e->ciphertexts[1]->device_id, 2);
  CU_ASSERT_EQUAL(memcmp(e->ciphertexts[1]->ct.data, ct, sizeof ct), 0);
  synod_wire_free(g);

  /* A lookup answer carrying a proof: three levels of nesting. */
  uint8_t body[] = {1, 2, 3};
  Synod__V1__Signed s1 = SYNOD__V1__SIGNED__INIT, s2 = SYNOD__V1__SIGNED__INIT;
  s1.body.data = body;
  s1.body.len = sizeof body;
  s2.signature.data = body;
  s2.signature.len = 1;
  Synod__V1__EquivocationProof proof = SYNOD__V1__EQUIVOCATION_PROOF__INIT;
  proof.kind = SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_LOOKUP_ANSWER;
  proof.first = &s1;
  proof.second = &s2;
  Synod__V1__EquivocationProof *proofs[1] = {&proof};
  Synod__V1__LookupAnswer la = SYNOD__V1__LOOKUP_ANSWER__INIT;
  la.n_proofs = 1;
  la.proofs = proofs;
  f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER;
  f.lookup_answer = &la;
  g = roundtrip(&f);
  CU_ASSERT_EQUAL_FATAL(g->lookup_answer->n_proofs, 1);
  CU_ASSERT_EQUAL(
      g->lookup_answer->proofs[0]->kind,
      SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_LOOKUP_ANSWER);
  CU_ASSERT_EQUAL(g->lookup_answer->proofs[0]->first->body.len, 3);
  synod_wire_free(g);
}

static void expect_unpack(const uint8_t *b, size_t n, int want) {
  Synod__V1__Frame *g = (Synod__V1__Frame *)&g; /* must be reset to NULL */
  CU_ASSERT_EQUAL(synod_wire_unpack(b, n, &g), want);
  CU_ASSERT_PTR_NULL(g);
}

static void test_garbage_is_eparse(void) {
  static const uint8_t bad_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff};
  /* hello (10), length 5, but only 1 byte follows */
  static const uint8_t truncated[] = {0x52, 0x05, 0x08};
  /* field 1 with wire type 7 */
  static const uint8_t bad_type[] = {0x0f, 0x00};
  /* hello { name = "\xff" } */
  static const uint8_t bad_utf8[] = {0x52, 0x03, 0x2a, 0x01, 0xff};
  /* hello { name = "a\0b" } */
  static const uint8_t nul[] = {0x52, 0x05, 0x2a, 0x03, 'a', 0x00, 'b'};
  /* hello { name = CESU surrogate U+D800 } */
  static const uint8_t surrogate[] = {0x52, 0x05, 0x2a, 0x03, 0xed, 0xa0, 0x80};
  /* submit { envelope { recipient = overlong "/" } } */
  static const uint8_t deep[] = {0x92, 0x03, 0x06, 0x0a, 0x04,
                                 0x12, 0x02, 0xc0, 0xaf};
  uint8_t noise[512];
  uint32_t x = 0x9e3779b9u;
  for (size_t i = 0; i < sizeof noise; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    noise[i] = (uint8_t)x;
  }
  noise[0] = 0x0f; /* field 1 with wire type 7: never valid */

  expect_unpack(bad_varint, sizeof bad_varint, SYNOD_EPARSE);
  expect_unpack(truncated, sizeof truncated, SYNOD_EPARSE);
  expect_unpack(bad_type, sizeof bad_type, SYNOD_EPARSE);
  expect_unpack(bad_utf8, sizeof bad_utf8, SYNOD_EPARSE);
  expect_unpack(nul, sizeof nul, SYNOD_EPARSE);
  expect_unpack(surrogate, sizeof surrogate, SYNOD_EPARSE);
  expect_unpack(deep, sizeof deep, SYNOD_EPARSE);
  expect_unpack(noise, sizeof noise, SYNOD_EPARSE);
}

static void test_strings_that_are_fine(void) {
  /* hello { name = "é€😀" } and an unknown field 9 = "\xff" (ignored) */
  static const uint8_t ok[] = {0x52, 0x0b, 0x2a, 0x09, 0xc3, 0xa9, 0xe2, 0x82,
                               0xac, 0xf0, 0x9f, 0x98, 0x80, 0x4a, 0x01, 0xff};
  Synod__V1__Frame *g;
  CU_ASSERT_EQUAL_FATAL(synod_wire_unpack(ok, sizeof ok, &g), 0);
  CU_ASSERT_STRING_EQUAL(g->hello->name,
                         "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  synod_wire_free(g);
}

static void test_empty_oneof_is_eproto(void) {
  /* only request_id = 5 */
  static const uint8_t id_only[] = {0x08, 0x05};
  /* field 61 (not a v1 member), empty message */
  static const uint8_t future[] = {0xea, 0x03, 0x00};
  expect_unpack(id_only, sizeof id_only, SYNOD_EPROTO);
  expect_unpack(future, sizeof future, SYNOD_EPROTO);
  expect_unpack((const uint8_t *)"", 0, SYNOD_EPROTO);
}

static void test_pack_limits(void) {
  uint8_t big[300];
  memset(big, 0x66, sizeof big);
  Synod__V1__Purge purge = SYNOD__V1__PURGE__INIT;
  purge.body.data = big;
  purge.body.len = sizeof big;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PURGE;
  f.purge = &purge;
  size_t body_len = synod__v1__frame__get_packed_size(&f);

  uint8_t *out = (uint8_t *)&out;
  size_t len = 1;
  CU_ASSERT_EQUAL(synod_wire_pack(&f, (uint32_t)body_len - 1, &out, &len),
                  SYNOD_ETOOBIG);
  CU_ASSERT_PTR_NULL(out);
  CU_ASSERT_EQUAL(len, 0);
  CU_ASSERT_EQUAL(synod_wire_pack(&f, 256, &out, &len), SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL_FATAL(synod_wire_pack(&f, (uint32_t)body_len, &out, &len), 0);
  CU_ASSERT_EQUAL(len, body_len + SYNOD_FRAME_HEADER_BYTES);
  free(out);

  CU_ASSERT_EQUAL(synod_wire_pack(&f, 0, &out, &len), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_wire_pack(&f, SYNOD_FRAME_HARD_MAX + 1, &out, &len),
                  SYNOD_EINVAL);
  Synod__V1__Frame empty = SYNOD__V1__FRAME__INIT;
  empty.request_id = 3;
  CU_ASSERT_EQUAL(synod_wire_pack(&empty, SYNOD_FRAME_DEFAULT_MAX, &out, &len),
                  SYNOD_EINVAL);
  CU_ASSERT_PTR_NULL(out);
}

static void test_error_builder(void) {
  synod_wire_error_t e;
  synod_wire_error(&e, 42, SYNOD_EVERSION, "no common version");
  Synod__V1__Frame *g = roundtrip(&e.frame);
  CU_ASSERT_EQUAL(g->request_id, 42);
  CU_ASSERT_EQUAL(g->error->code, 14);
  CU_ASSERT_EQUAL(synod_err_from_wire(g->error->code), SYNOD_EVERSION);
  CU_ASSERT_STRING_EQUAL(g->error->reason, "no common version");
  synod_wire_free(g);

  /* 150 two-byte characters: cut at 100 whole characters, 200 bytes. */
  char longr[301];
  for (size_t i = 0; i < 300; i += 2)
    memcpy(longr + i, "\xc3\xa9", 2);
  longr[300] = '\0';
  synod_wire_error(&e, 0, SYNOD_EAUTH, longr);
  CU_ASSERT_EQUAL(strlen(e.reason), 200);
  CU_ASSERT_EQUAL(e.error.code, 15);

  /* 'a' then two-byte characters: the 100th does not fit whole. */
  char odd[302] = "a";
  memcpy(odd + 1, longr, sizeof longr);
  synod_wire_error(&e, 0, SYNOD_EAUTH, odd);
  CU_ASSERT_EQUAL(strlen(e.reason), 199);

  synod_wire_error(&e, 0, 16, "bad\xff key\n\x1b[31m\xe2\x82");
  CU_ASSERT_STRING_EQUAL(e.reason, "bad? key??[31m??");
  CU_ASSERT_EQUAL(e.error.code, 16);
  g = roundtrip(&e.frame);
  synod_wire_free(g);

  synod_wire_error(&e, 0, 0, NULL);
  CU_ASSERT_EQUAL(e.error.code, 35);
  CU_ASSERT_STRING_EQUAL(e.reason, "");
}

/* Signed bodies are parsed with the same checks as frames. */
static void test_unpack_message(void) {
  uint8_t key[32];
  memset(key, 7, sizeof key);
  Synod__V1__AnnouncementBody ab;
  synod__v1__announcement_body__init(&ab);
  ab.user_id = "alice@a.example";
  ab.identity_key.data = key;
  ab.identity_key.len = sizeof key;
  ab.version = 3;
  uint8_t buf[128];
  size_t n = synod__v1__announcement_body__pack(&ab, buf);

  ProtobufCMessage *m;
  CU_ASSERT_EQUAL_FATAL(
      synod_wire_unpack_message(&synod__v1__announcement_body__descriptor, buf,
                                n, &m),
      0);
  Synod__V1__AnnouncementBody *got = (Synod__V1__AnnouncementBody *)m;
  CU_ASSERT_STRING_EQUAL(got->user_id, "alice@a.example");
  CU_ASSERT_EQUAL(got->version, 3);
  synod_wire_free_message(m);

  ab.user_id = "alice@a.example\xc0";
  n = synod__v1__announcement_body__pack(&ab, buf);
  m = (ProtobufCMessage *)&m;
  CU_ASSERT_EQUAL(synod_wire_unpack_message(
                      &synod__v1__announcement_body__descriptor, buf, n, &m),
                  SYNOD_EPARSE);
  CU_ASSERT_PTR_NULL(m);
  synod_wire_free(NULL);
  synod_wire_free_message(NULL);
}

static CU_TestInfo wire_tests[] = {
    {"every_member_roundtrips", test_every_member_roundtrips},
    {"session_fields", test_session_fields},
    {"nested_fields", test_nested_fields},
    {"garbage_is_eparse", test_garbage_is_eparse},
    {"strings_that_are_fine", test_strings_that_are_fine},
    {"empty_oneof_is_eproto", test_empty_oneof_is_eproto},
    {"pack_limits", test_pack_limits},
    {"error_builder", test_error_builder},
    {"unpack_message", test_unpack_message},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"wire", NULL, NULL, NULL, NULL, wire_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
