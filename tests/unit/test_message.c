/*
 * lib/message.c: sealing a message to every device of a recipient and
 * opening one device's copy (proto/README.md 8.1). Every envelope is packed
 * and parsed again before it is opened, as a relay would deliver it, and
 * every refusal is checked for its exact code and named check.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "synod/hpke.h"
#include "synod/message.h"
#include "synod/sig.h"
#include "synod/wire.h"

#define NOW   UINT64_C(1700000000)
#define ALICE "alice@relay-a.example"
#define BOB   "bob@relay-b.example"
#define CAROL "carol@relay-c.example"
#define CTYPE "text/plain; charset=utf-8"
#define TEXT  "hello, bob"

typedef struct ident {
  uint8_t pk[32], sk[32];
} ident_t;

typedef struct device {
  uint32_t id;
  uint8_t pk[32], sk[32];
} device_t;

static ident_t alice, mallory;
static device_t bob_dev[SYNOD_MESSAGE_MAX_DEVICES + 1], carol_dev;

static int setup(void) {
  if (synod_ed25519_keygen(alice.pk, alice.sk) != 0 ||
      synod_ed25519_keygen(mallory.pk, mallory.sk) != 0 ||
      synod_x25519_keygen(carol_dev.pk, carol_dev.sk) != 0)
    return 1;
  carol_dev.id = 1;
  for (size_t i = 0; i < SYNOD_MESSAGE_MAX_DEVICES + 1; i++) {
    bob_dev[i].id = (uint32_t)(i + 1);
    if (synod_x25519_keygen(bob_dev[i].pk, bob_dev[i].sk) != 0)
      return 1;
  }
  return 0;
}

static synod_message_device_t mdev(const device_t *d) {
  synod_message_device_t m;
  m.device_id = d->id;
  memcpy(m.x25519_key, d->pk, 32);
  return m;
}

static synod_message_params_t params(const synod_message_device_t *devs,
                                     size_t n) {
  synod_message_params_t p = {.sender = ALICE,
                              .recipient = BOB,
                              .devices = devs,
                              .ndevices = n,
                              .time = NOW,
                              .content_type = CTYPE,
                              .body = (const uint8_t *)TEXT,
                              .body_len = sizeof TEXT - 1};
  return p;
}

/* Packs env and parses it back, as the relays deliver it. */
static Synod__V1__Envelope *deliver(const Synod__V1__Envelope *env) {
  size_t len = synod__v1__envelope__get_packed_size(env);
  uint8_t *buf = malloc(len ? len : 1);
  ProtobufCMessage *m = NULL;
  CU_ASSERT_FATAL(buf != NULL);
  CU_ASSERT_FATAL(synod__v1__envelope__pack(env, buf) == len);
  CU_ASSERT_FATAL(synod_wire_unpack_message(&synod__v1__envelope__descriptor,
                                            buf, len, &m) == 0);
  free(buf);
  return (Synod__V1__Envelope *)m;
}

/* Seals p from alice and delivers it. */
static Synod__V1__Envelope *send_as(const synod_message_params_t *p,
                                    const uint8_t sk[32]) {
  synod_message_sealed_t s;
  CU_ASSERT_FATAL(synod_message_seal(&s, p, sk) == 0);
  Synod__V1__Envelope *e = deliver(&s.envelope);
  synod_message_sealed_free(&s);
  return e;
}

static Synod__V1__Envelope *send_to_bob(size_t ndev) {
  synod_message_device_t d[SYNOD_MESSAGE_MAX_DEVICES];
  for (size_t i = 0; i < ndev; i++)
    d[i] = mdev(&bob_dev[i]);
  synod_message_params_t p = params(d, ndev);
  return send_as(&p, alice.sk);
}

/* Opens env as user with device dev (its id and secret key), alice's key
 * accepted; the opened message is freed unless out is given. */
static int open_as(const Synod__V1__Envelope *env, const char *user,
                   uint32_t dev_id, const uint8_t dev_sk[32],
                   const uint8_t sender_pk[32], uint64_t now,
                   synod_message_opened_t *out, const char **why) {
  synod_message_opened_t o;
  synod_message_self_t self = {user, dev_id, dev_sk};
  int rc = synod_message_open(&o, env, &self, sender_pk, now);
  if (rc != 0) {
    CU_ASSERT(o.why != NULL);
    CU_ASSERT(o.body == NULL && o.content_type == NULL && o.body_len == 0);
  } else {
    CU_ASSERT(o.why == NULL);
  }
  if (why != NULL)
    *why = o.why;
  if (out != NULL)
    *out = o;
  else
    synod_message_opened_free(&o);
  return rc;
}

static int bob_opens(const Synod__V1__Envelope *env, size_t dev,
                     const char **why) {
  return open_as(env, BOB, bob_dev[dev].id, bob_dev[dev].sk, alice.pk, NOW,
                 NULL, why);
}

static int why_is(const char *why, const char *want) {
  return why != NULL && strcmp(why, want) == 0;
}

static Synod__V1__DeviceCiphertext *copy_for(Synod__V1__Envelope *e,
                                             uint32_t id) {
  for (size_t i = 0; i < e->n_ciphertexts; i++)
    if (e->ciphertexts[i]->device_id == id)
      return e->ciphertexts[i];
  CU_FAIL("no copy for the device");
  abort(); /* a broken fixture, not a finding */
}

/* Test-side HPKE: the SealedMessage bytes of dc (malloc'd). */
static uint8_t *unseal(const Synod__V1__DeviceCiphertext *dc,
                       const uint8_t sk[32], size_t *len) {
  synod_hpke_ctx_t ctx;
  *len = dc->ct.len - SYNOD_HPKE_TAG_BYTES;
  uint8_t *pt = malloc(*len ? *len : 1);
  CU_ASSERT_FATAL(pt != NULL);
  CU_ASSERT_FATAL(synod_hpke_setup_base_r(
                      &ctx, SYNOD_HPKE_AEAD_CHACHA20POLY1305, dc->enc.data,
                      (const uint8_t *)SYNOD_MESSAGE_HPKE_INFO, 23, sk) == 0);
  CU_ASSERT_FATAL(synod_hpke_open(&ctx, pt, dc->ct.data, dc->ct.len, NULL, 0) ==
                  0);
  synod_hpke_ctx_wipe(&ctx);
  return pt;
}

/* Replaces dc's enc and ct by an HPKE sealing of pt to pk, as anyone
 * holding the plaintext can. */
static void reseal(Synod__V1__DeviceCiphertext *dc, const uint8_t *pt,
                   size_t len, const uint8_t pk[32]) {
  synod_hpke_ctx_t ctx;
  uint8_t *ct = malloc(len + SYNOD_HPKE_TAG_BYTES);
  CU_ASSERT_FATAL(ct != NULL && dc->enc.len == 32);
  CU_ASSERT_FATAL(synod_hpke_setup_base_s(
                      &ctx, dc->enc.data, SYNOD_HPKE_AEAD_CHACHA20POLY1305,
                      (const uint8_t *)SYNOD_MESSAGE_HPKE_INFO, 23, pk,
                      NULL) == 0);
  CU_ASSERT_FATAL(synod_hpke_seal(&ctx, ct, pt, len, NULL, 0) == 0);
  synod_hpke_ctx_wipe(&ctx);
  free(dc->ct.data);
  dc->ct.data = ct;
  dc->ct.len = len + SYNOD_HPKE_TAG_BYTES;
}

/* SealedMessage{body, signature by sk} bytes (malloc'd). */
static uint8_t *signed_pt(const uint8_t *body, size_t body_len,
                          const uint8_t sk[32], size_t *len) {
  uint8_t sig[64];
  Synod__V1__SealedMessage sm = SYNOD__V1__SEALED_MESSAGE__INIT;
  CU_ASSERT_FATAL(synod_sig_sign(sig, SYNOD_SIG_MESSAGE, body, body_len, sk) ==
                  0);
  sm.body.data = synod_wire_lend(body);
  sm.body.len = body_len;
  sm.signature.data = sig;
  sm.signature.len = 64;
  *len = synod__v1__sealed_message__get_packed_size(&sm);
  uint8_t *out = malloc(*len ? *len : 1);
  CU_ASSERT_FATAL(out != NULL);
  CU_ASSERT_FATAL(synod__v1__sealed_message__pack(&sm, out) == *len);
  return out;
}

static int contains(const uint8_t *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(hay + i, needle, k) == 0)
      return 1;
  return 0;
}

/* ------------------------------------------------------------------------ */

static void test_roundtrip_one_device(void) {
  synod_message_device_t d = mdev(&bob_dev[0]);
  synod_message_params_t p = params(&d, 1);
  synod_message_sealed_t s;
  synod_message_opened_t o;

  p.ttl = 3600;
  CU_ASSERT_FATAL(synod_message_seal(&s, &p, alice.sk) == 0);
  CU_ASSERT(s.envelope.n_ciphertexts == 1);
  CU_ASSERT(s.envelope.message_id.len == SYNOD_MESSAGE_ID_BYTES);
  CU_ASSERT(strcmp(s.envelope.recipient, BOB) == 0);
  CU_ASSERT(strcmp(s.envelope.sender, ALICE) == 0);
  CU_ASSERT(strcmp(s.envelope.sender_relay, "") == 0);
  CU_ASSERT(s.envelope.time == 0 && s.envelope.ttl == 3600);
  CU_ASSERT(s.envelope.ciphertexts[0]->device_id == bob_dev[0].id);
  CU_ASSERT(s.envelope.ciphertexts[0]->enc.len == 32);
  /* The ciphertext does not carry the body in the clear. */
  CU_ASSERT(!contains(s.envelope.ciphertexts[0]->ct.data,
                      s.envelope.ciphertexts[0]->ct.len, TEXT));

  Synod__V1__Envelope *e = deliver(&s.envelope);
  CU_ASSERT_FATAL(open_as(e, BOB, bob_dev[0].id, bob_dev[0].sk, alice.pk, NOW,
                          &o, NULL) == 0);
  CU_ASSERT(strcmp(o.sender, ALICE) == 0);
  CU_ASSERT(strcmp(o.content_type, CTYPE) == 0);
  CU_ASSERT(o.body_len == sizeof TEXT - 1 &&
            memcmp(o.body, TEXT, o.body_len) == 0);
  CU_ASSERT(o.time == NOW);
  CU_ASSERT(memcmp(o.message_id, s.message_id, SYNOD_MESSAGE_ID_BYTES) == 0);
  synod_message_opened_free(&o);
  CU_ASSERT(o.body == NULL && o.content_type == NULL);
  synod_message_opened_free(&o); /* twice is harmless */
  synod_wire_free_message(&e->base);
  synod_message_sealed_free(&s);
  synod_message_sealed_free(&s);
}

/* Three devices: each opens its own copy and only its own. */
static void test_roundtrip_three_devices(void) {
  Synod__V1__Envelope *e = send_to_bob(3);
  int ok = 0, decrypt = 0, noent = 0, other = 0;

  CU_ASSERT_FATAL(e->n_ciphertexts == 3);
  CU_ASSERT(memcmp(e->ciphertexts[0]->enc.data, e->ciphertexts[1]->enc.data,
                   32) != 0);
  /* Key of device i presented under device_id j. */
  for (size_t i = 0; i < 4; i++)
    for (size_t j = 0; j < 4; j++) {
      int rc = open_as(e, BOB, bob_dev[j].id, bob_dev[i].sk, alice.pk, NOW,
                       NULL, NULL);
      if (rc == 0)
        ok++;
      else if (rc == SYNOD_EDECRYPT)
        decrypt++;
      else if (rc == SYNOD_ENOENT)
        noent++;
      else
        other++;
    }
  CU_ASSERT(ok == 3);      /* the diagonal of the sealed devices */
  CU_ASSERT(decrypt == 9); /* 3 copies x 3 keys that are not theirs */
  CU_ASSERT(noent == 4);   /* device 4 got no copy */
  CU_ASSERT(other == 0);

  /* Every copy carries the same message id and content. */
  for (size_t i = 0; i < 3; i++) {
    synod_message_opened_t o;
    CU_ASSERT_FATAL(open_as(e, BOB, bob_dev[i].id, bob_dev[i].sk, alice.pk, NOW,
                            &o, NULL) == 0);
    CU_ASSERT(memcmp(o.message_id, e->message_id.data, 16) == 0);
    CU_ASSERT(o.body_len == sizeof TEXT - 1);
    synod_message_opened_free(&o);
  }
  synod_wire_free_message(&e->base);
}

/* Every single-bit change of enc or ct fails to decrypt. */
static void test_tampered_ciphertext(void) {
  Synod__V1__Envelope *e = send_to_bob(2);
  Synod__V1__DeviceCiphertext *dc = copy_for(e, bob_dev[1].id);
  size_t n = 0, decrypt = 0;
  const char *why = NULL;

  for (size_t i = 0; i < dc->ct.len; i++, n++) {
    dc->ct.data[i] ^= 0x01;
    if (bob_opens(e, 1, &why) == SYNOD_EDECRYPT && why_is(why, "decrypt"))
      decrypt++;
    dc->ct.data[i] ^= 0x01;
  }
  for (size_t i = 0; i < dc->enc.len; i++, n++) {
    dc->enc.data[i] ^= 0x80;
    if (bob_opens(e, 1, NULL) == SYNOD_EDECRYPT)
      decrypt++;
    dc->enc.data[i] ^= 0x80;
  }
  CU_ASSERT(n == dc->ct.len + 32);
  CU_ASSERT(decrypt == n);
  /* The other copy is untouched and both still open. */
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);
  CU_ASSERT(bob_opens(e, 1, NULL) == 0);

  /* A low-order enc (zero point) is tampering too. */
  uint8_t saved[32];
  memcpy(saved, dc->enc.data, 32);
  memset(dc->enc.data, 0, 32);
  CU_ASSERT(bob_opens(e, 1, NULL) == SYNOD_EDECRYPT);
  memcpy(dc->enc.data, saved, 32);

  /* Truncated to the tag: still well-formed, does not open. Shorter than
   * the tag: malformed. Nothing at all: malformed. */
  size_t len = dc->ct.len;
  dc->ct.len = SYNOD_HPKE_TAG_BYTES;
  CU_ASSERT(bob_opens(e, 1, NULL) == SYNOD_EDECRYPT);
  dc->ct.len = SYNOD_HPKE_TAG_BYTES - 1;
  CU_ASSERT(bob_opens(e, 1, &why) == SYNOD_EPARSE && why_is(why, "envelope"));
  dc->ct.len = len;
  CU_ASSERT(bob_opens(e, 1, NULL) == 0);
  synod_wire_free_message(&e->base);
}

/* The copy of another device presented as ours, and a wrong device key. */
static void test_wrong_device_key(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  uint8_t pk[32], sk[32];
  const char *why = NULL;

  CU_ASSERT_FATAL(synod_x25519_keygen(pk, sk) == 0);
  CU_ASSERT(open_as(e, BOB, bob_dev[0].id, sk, alice.pk, NOW, NULL, &why) ==
            SYNOD_EDECRYPT);
  CU_ASSERT(why_is(why, "decrypt"));
  CU_ASSERT(open_as(e, BOB, bob_dev[0].id, carol_dev.sk, alice.pk, NOW, NULL,
                    NULL) == SYNOD_EDECRYPT);
  synod_wire_free_message(&e->base);
}

/* Signed by a key other than the one the quorum accepted for the sender. */
static void test_wrong_signer(void) {
  synod_message_device_t d = mdev(&bob_dev[0]);
  synod_message_params_t p = params(&d, 1);
  const char *why = NULL;

  /* Mallory claims to be alice. */
  Synod__V1__Envelope *e = send_as(&p, mallory.sk);
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EVERIFY);
  CU_ASSERT(why_is(why, "signature"));
  /* Mallory's own key would verify: it is the binding to alice that fails. */
  CU_ASSERT(open_as(e, BOB, bob_dev[0].id, bob_dev[0].sk, mallory.pk, NOW, NULL,
                    NULL) == 0);
  synod_wire_free_message(&e->base);

  /* Alice's genuine message checked against another accepted key. */
  e = send_as(&p, alice.sk);
  CU_ASSERT(open_as(e, BOB, bob_dev[0].id, bob_dev[0].sk, mallory.pk, NOW, NULL,
                    NULL) == SYNOD_EVERIFY);
  synod_wire_free_message(&e->base);
}

/* Whoever holds the plaintext (the recipient) changes one byte of the
 * SealedMessage and seals it again: never accepted, and refused before the
 * body is believed (EVERIFY), or as malformed (EPARSE). */
static void test_tampered_plaintext(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  Synod__V1__DeviceCiphertext *dc = copy_for(e, bob_dev[0].id);
  size_t len, n = 0, verify = 0, parse = 0, ok = 0;
  uint8_t *pt = unseal(dc, bob_dev[0].sk, &len);

  for (size_t i = 0; i < len; i++, n++) {
    pt[i] ^= 0x01;
    reseal(dc, pt, len, bob_dev[0].pk);
    int rc = bob_opens(e, 0, NULL);
    if (rc == SYNOD_EVERIFY)
      verify++;
    else if (rc == SYNOD_EPARSE)
      parse++;
    else if (rc == 0)
      ok++;
    pt[i] ^= 0x01;
  }
  CU_ASSERT(n == len);
  CU_ASSERT(ok == 0);
  CU_ASSERT(verify + parse == n);
  CU_ASSERT(verify >= len - 8); /* all but the few protobuf tag/length bytes */
  reseal(dc, pt, len, bob_dev[0].pk);
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);
  free(pt);
  synod_wire_free_message(&e->base);
}

/* Bob re-seals alice's signed message to carol, in an envelope that says
 * alice sent it to carol with the same id: carol refuses. */
static void test_resealed_to_other_recipient(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  Synod__V1__DeviceCiphertext *dc = copy_for(e, bob_dev[0].id);
  const char *why = NULL;
  size_t len;
  uint8_t *pt = unseal(dc, bob_dev[0].sk, &len);

  reseal(dc, pt, len, carol_dev.pk);
  dc->device_id = carol_dev.id;
  free(e->recipient);
  e->recipient = strdup(CAROL);
  CU_ASSERT_FATAL(e->recipient != NULL);
  CU_ASSERT(open_as(e, CAROL, carol_dev.id, carol_dev.sk, alice.pk, NOW, NULL,
                    &why) == SYNOD_EDENIED);
  CU_ASSERT(why_is(why, "recipient"));
  free(pt);
  synod_wire_free_message(&e->base);
}

/* A copy for bob's device 1 re-sealed to his device 2: refused on the
 * device key the signed body names. */
static void test_copy_for_other_device(void) {
  Synod__V1__Envelope *e = send_to_bob(2);
  Synod__V1__DeviceCiphertext *dc0 = copy_for(e, bob_dev[0].id);
  Synod__V1__DeviceCiphertext *dc1 = copy_for(e, bob_dev[1].id);
  const char *why = NULL;
  size_t len;
  uint8_t *pt = unseal(dc0, bob_dev[0].sk, &len);

  reseal(dc1, pt, len, bob_dev[1].pk);
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);
  CU_ASSERT(bob_opens(e, 1, &why) == SYNOD_EDENIED);
  CU_ASSERT(why_is(why, "device key"));
  free(pt);
  synod_wire_free_message(&e->base);
}

/* A valid copy replayed under another envelope message id. */
static void test_replay_other_message_id(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  Synod__V1__Envelope *e2 = send_to_bob(1);
  const char *why = NULL;

  CU_ASSERT(memcmp(e->message_id.data, e2->message_id.data, 16) != 0);
  e->message_id.data[0] ^= 0x01;
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EDENIED);
  CU_ASSERT(why_is(why, "message id"));
  e->message_id.data[0] ^= 0x01;
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);

  /* e2's ciphertext in e's envelope. */
  memcpy(e2->message_id.data, e->message_id.data, 16);
  CU_ASSERT(bob_opens(e2, 0, &why) == SYNOD_EDENIED);
  CU_ASSERT(why_is(why, "message id"));
  synod_wire_free_message(&e->base);
  synod_wire_free_message(&e2->base);
}

/* The envelope says another sender than the signed body. */
static void test_sender_mismatch(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  const char *why = NULL;
  char *orig = e->sender;

  /* alice's key is accepted for alice@relay-b as well (same identity on
   * two relays), but the body says relay-a. */
  e->sender = synod_wire_lend("alice@relay-b.example");
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EDENIED);
  CU_ASSERT(why_is(why, "sender"));
  e->sender = synod_wire_lend("");
  CU_ASSERT(bob_opens(e, 0, NULL) == SYNOD_EDENIED);
  e->sender = orig;
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);
  synod_wire_free_message(&e->base);
}

/* The envelope is addressed to someone else than the opener. */
static void test_envelope_recipient(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  const char *why = NULL;

  CU_ASSERT(open_as(e, CAROL, bob_dev[0].id, bob_dev[0].sk, alice.pk, NOW, NULL,
                    &why) == SYNOD_EDENIED);
  CU_ASSERT(why_is(why, "envelope recipient"));
  synod_wire_free_message(&e->base);
}

static void test_clock(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  const char *why = NULL;
  uint64_t limit = NOW - SYNOD_MESSAGE_MAX_SKEW; /* message time - skew */

  CU_ASSERT(open_as(e, BOB, 1, bob_dev[0].sk, alice.pk, limit, NULL, NULL) ==
            0);
  CU_ASSERT(open_as(e, BOB, 1, bob_dev[0].sk, alice.pk, limit - 1, NULL,
                    &why) == SYNOD_EINVAL);
  CU_ASSERT(why_is(why, "time"));
  CU_ASSERT(open_as(e, BOB, 1, bob_dev[0].sk, alice.pk, UINT64_MAX, NULL,
                    NULL) == SYNOD_EINVAL);
  /* A week in the inbox is fine: no lower bound. */
  CU_ASSERT(open_as(e, BOB, 1, bob_dev[0].sk, alice.pk, NOW + 7 * 86400, NULL,
                    NULL) == 0);
  synod_wire_free_message(&e->base);
}

static void test_sizes(void) {
  synod_message_device_t d[SYNOD_MESSAGE_MAX_DEVICES + 1];
  synod_message_sealed_t s;
  synod_message_opened_t o;
  size_t ok = 0;

  for (size_t i = 0; i < SYNOD_MESSAGE_MAX_DEVICES + 1; i++)
    d[i] = mdev(&bob_dev[i]);
  synod_message_params_t p = params(d, SYNOD_MESSAGE_MAX_DEVICES + 1);
  CU_ASSERT(synod_message_seal(&s, &p, alice.sk) == SYNOD_ETOOBIG);
  CU_ASSERT(s.ncopies == 0 && s.envelope.n_ciphertexts == 0);
  synod_message_sealed_free(&s);

  p.ndevices = SYNOD_MESSAGE_MAX_DEVICES;
  Synod__V1__Envelope *e = send_as(&p, alice.sk);
  CU_ASSERT(e->n_ciphertexts == SYNOD_MESSAGE_MAX_DEVICES);
  for (size_t i = 0; i < SYNOD_MESSAGE_MAX_DEVICES; i++)
    if (bob_opens(e, i, NULL) == 0)
      ok++;
  CU_ASSERT(ok == SYNOD_MESSAGE_MAX_DEVICES);
  synod_wire_free_message(&e->base);

  /* An empty body is a message. */
  p = params(d, 1);
  p.body = NULL;
  p.body_len = 0;
  e = send_as(&p, alice.sk);
  CU_ASSERT_FATAL(open_as(e, BOB, 1, bob_dev[0].sk, alice.pk, NOW, &o, NULL) ==
                  0);
  CU_ASSERT(o.body != NULL && o.body_len == 0);
  synod_message_opened_free(&o);
  synod_wire_free_message(&e->base);

  /* A larger body. */
  static uint8_t big[60000];
  memset(big, 'x', sizeof big);
  p.body = big;
  p.body_len = sizeof big;
  e = send_as(&p, alice.sk);
  CU_ASSERT_FATAL(open_as(e, BOB, 1, bob_dev[0].sk, alice.pk, NOW, &o, NULL) ==
                  0);
  CU_ASSERT(o.body_len == sizeof big && memcmp(o.body, big, sizeof big) == 0);
  synod_message_opened_free(&o);
  synod_wire_free_message(&e->base);
}

static void test_seal_refuses(void) {
  synod_message_device_t d[2] = {mdev(&bob_dev[0]), mdev(&bob_dev[1])};
  synod_message_sealed_t s;
  synod_message_params_t p;
  size_t refused = 0, cases = 0;

#define REFUSE(code, change)                                                   \
  do {                                                                         \
    p = params(d, 2);                                                          \
    change;                                                                    \
    cases++;                                                                   \
    if (synod_message_seal(&s, &p, alice.sk) == (code) && s.ncopies == 0)      \
      refused++;                                                               \
    synod_message_sealed_free(&s);                                             \
  } while (0)

  REFUSE(SYNOD_EINVAL, p.ndevices = 0);
  REFUSE(SYNOD_EINVAL, p.devices = NULL);
  REFUSE(SYNOD_EINVAL, d[1].device_id = d[0].device_id);
  d[1].device_id = bob_dev[1].id;
  REFUSE(SYNOD_EINVAL, p.sender = "Alice@relay-a.example");
  REFUSE(SYNOD_EINVAL, p.recipient = "bob");
  REFUSE(SYNOD_EINVAL, p.sender = NULL);
  REFUSE(SYNOD_EINVAL, p.content_type = "");
  REFUSE(SYNOD_EINVAL, p.content_type = "text/\xff");
  REFUSE(SYNOD_EINVAL, p.content_type = NULL);
  REFUSE(SYNOD_EINVAL, (p.body = NULL, p.body_len = 1));
  REFUSE(SYNOD_ETOOBIG, p.body_len = SYNOD_SIG_MAX_BYTES + 1);
#undef REFUSE
  CU_ASSERT(cases == 11);
  CU_ASSERT(refused == cases);
  CU_ASSERT(synod_message_seal(&s, NULL, alice.sk) == SYNOD_EINVAL);

  /* A low-order device key cannot be sealed to; nothing leaks. */
  p = params(d, 2);
  memset(d[1].x25519_key, 0, 32);
  CU_ASSERT(synod_message_seal(&s, &p, alice.sk) == SYNOD_ECRYPTO);
  CU_ASSERT(s.ncopies == 0);
}

static void test_message_id(void) {
  synod_message_device_t d = mdev(&bob_dev[0]);
  synod_message_params_t p = params(&d, 1);
  synod_message_sealed_t a, b;
  uint8_t id[16];

  CU_ASSERT_FATAL(synod_message_seal(&a, &p, alice.sk) == 0);
  CU_ASSERT_FATAL(synod_message_seal(&b, &p, alice.sk) == 0);
  CU_ASSERT(memcmp(a.message_id, b.message_id, 16) != 0);
  synod_message_sealed_free(&a);
  synod_message_sealed_free(&b);

  memset(id, 0xA5, sizeof id);
  p.message_id = id;
  CU_ASSERT_FATAL(synod_message_seal(&a, &p, alice.sk) == 0);
  CU_ASSERT(a.envelope.message_id.len == 16 &&
            memcmp(a.envelope.message_id.data, id, 16) == 0);
  Synod__V1__Envelope *e = deliver(&a.envelope);
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);
  synod_wire_free_message(&e->base);
  synod_message_sealed_free(&a);
}

/* Malformed envelopes and plaintexts, each with its own code. */
static void test_malformed(void) {
  Synod__V1__Envelope *e = send_to_bob(2);
  Synod__V1__DeviceCiphertext *dc = copy_for(e, bob_dev[0].id);
  const char *why = NULL;

  e->message_id.len = 15;
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EPARSE && why_is(why, "envelope"));
  e->message_id.len = 16;
  dc->enc.len = 31;
  CU_ASSERT(bob_opens(e, 0, NULL) == SYNOD_EPARSE);
  dc->enc.len = 32;
  /* Two copies for one device. */
  Synod__V1__DeviceCiphertext *dc1 = copy_for(e, bob_dev[1].id);
  dc1->device_id = bob_dev[0].id;
  CU_ASSERT(bob_opens(e, 0, NULL) == SYNOD_EPARSE);
  dc1->device_id = bob_dev[1].id;
  CU_ASSERT(bob_opens(e, 0, NULL) == 0);
  CU_ASSERT(bob_opens(e, 1, NULL) == 0);

  /* HPKE plaintext that is not a SealedMessage. */
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  reseal(dc, junk, sizeof junk, bob_dev[0].pk);
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EPARSE);
  CU_ASSERT(why_is(why, "sealed message"));

  /* A SealedMessage whose signature is not 64 bytes. */
  Synod__V1__SealedMessage sm = SYNOD__V1__SEALED_MESSAGE__INIT;
  uint8_t buf[128], sig[63] = {0};
  sm.signature.data = sig;
  sm.signature.len = sizeof sig;
  size_t n = synod__v1__sealed_message__pack(&sm, buf);
  reseal(dc, buf, n, bob_dev[0].pk);
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EPARSE);
  CU_ASSERT(why_is(why, "sealed message"));

  /* Alice's valid signature over bytes that are not a MessageBody. */
  size_t len;
  uint8_t *pt = signed_pt(junk, sizeof junk, alice.sk, &len);
  reseal(dc, pt, len, bob_dev[0].pk);
  CU_ASSERT(bob_opens(e, 0, &why) == SYNOD_EPARSE);
  CU_ASSERT(why_is(why, "message body"));
  free(pt);

  /* A signed MessageBody with bad fields, one at a time. */
  size_t cases = 0, parse = 0;
  for (int k = 0; k < 5; k++) {
    Synod__V1__MessageBody b;
    synod__v1__message_body__init(&b);
    uint8_t body[512];
    b.sender = synod_wire_lend(ALICE);
    b.recipient = synod_wire_lend(BOB);
    b.recipient_device_key.data = bob_dev[0].pk;
    b.recipient_device_key.len = 32;
    b.message_id.data = e->message_id.data;
    b.message_id.len = 16;
    b.time = NOW;
    b.content_type = synod_wire_lend(CTYPE);
    switch (k) {
    case 0:
      b.content_type = synod_wire_lend("");
      break;
    case 1:
      b.recipient_device_key.len = 31;
      break;
    case 2:
      b.message_id.len = 0;
      break;
    case 3:
      b.sender = synod_wire_lend("alice");
      break;
    default:
      break; /* the control: accepted */
    }
    size_t blen = synod__v1__message_body__pack(&b, body);
    pt = signed_pt(body, blen, alice.sk, &len);
    reseal(dc, pt, len, bob_dev[0].pk);
    int rc = bob_opens(e, 0, &why);
    if (k < 4) {
      cases++;
      if (rc == SYNOD_EPARSE && why_is(why, "message body"))
        parse++;
    } else {
      CU_ASSERT(rc == 0);
    }
    free(pt);
  }
  CU_ASSERT(cases == 4 && parse == 4);
  synod_wire_free_message(&e->base);
}

static void test_open_arguments(void) {
  Synod__V1__Envelope *e = send_to_bob(1);
  synod_message_opened_t o;
  synod_message_self_t self = {BOB, 1, bob_dev[0].sk};

  CU_ASSERT(synod_message_open(NULL, e, &self, alice.pk, NOW) == SYNOD_EINVAL);
  CU_ASSERT(synod_message_open(&o, NULL, &self, alice.pk, NOW) == SYNOD_EINVAL);
  CU_ASSERT(why_is(o.why, "arguments"));
  CU_ASSERT(synod_message_open(&o, e, NULL, alice.pk, NOW) == SYNOD_EINVAL);
  self.user_id = "not an id";
  CU_ASSERT(synod_message_open(&o, e, &self, alice.pk, NOW) == SYNOD_EINVAL);
  self.user_id = BOB;
  self.x25519_sk = NULL;
  CU_ASSERT(synod_message_open(&o, e, &self, alice.pk, NOW) == SYNOD_EINVAL);
  synod_wire_free_message(&e->base);
}

static CU_TestInfo tests[] = {
    {"roundtrip_one_device", test_roundtrip_one_device},
    {"roundtrip_three_devices", test_roundtrip_three_devices},
    {"tampered_ciphertext", test_tampered_ciphertext},
    {"wrong_device_key", test_wrong_device_key},
    {"wrong_signer", test_wrong_signer},
    {"tampered_plaintext", test_tampered_plaintext},
    {"resealed_to_other_recipient", test_resealed_to_other_recipient},
    {"copy_for_other_device", test_copy_for_other_device},
    {"replay_other_message_id", test_replay_other_message_id},
    {"sender_mismatch", test_sender_mismatch},
    {"envelope_recipient", test_envelope_recipient},
    {"clock", test_clock},
    {"sizes", test_sizes},
    {"seal_refuses", test_seal_refuses},
    {"message_id", test_message_id},
    {"malformed", test_malformed},
    {"open_arguments", test_open_arguments},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"message", setup, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
