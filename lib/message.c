/* Sealed end-to-end messages; see synod/message.h. */
#include "synod/message.h"

#include <stdlib.h>
#include <string.h>

#include "synod/sig.h"
#include "synod/wire.h"

#define INFO_LEN (sizeof SYNOD_MESSAGE_HPKE_INFO - 1)
#define AEAD     SYNOD_HPKE_AEAD_CHACHA20POLY1305

static int bytes_len_is(const ProtobufCBinaryData *b, size_t n) {
  return b->len == n && (n == 0 || b->data != NULL);
}

static const uint8_t *info_bytes(void) {
  return (const uint8_t *)SYNOD_MESSAGE_HPKE_INFO;
}

/* Packs m into a new malloc'd buffer (at least one byte allocated). */
static int pack_alloc(const ProtobufCMessage *m, uint8_t **out, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  *out = NULL;
  *len = 0;
  if (buf == NULL)
    return SYNOD_ENOMEM;
  if (protobuf_c_message_pack(m, buf) != n) {
    free(buf);
    return SYNOD_EINTERNAL;
  }
  *out = buf;
  *len = n;
  return 0;
}

static void wipe_free(uint8_t *p, size_t len) {
  if (p == NULL)
    return;
  synod_wipe(p, len);
  free(p);
}

/* 0 if s is a wire string (UTF-8, no NUL): checked by the same parser the
 * receiver runs, on a MessageBody holding only s. */
static int text_ok(const char *s) {
  Synod__V1__MessageBody b;
  synod__v1__message_body__init(&b);
  ProtobufCMessage *m = NULL;
  uint8_t *buf;
  size_t len;
  int rc;

  b.content_type = synod_wire_lend(s);
  if ((rc = pack_alloc(&b.base, &buf, &len)) != 0)
    return rc;
  rc = synod_wire_unpack_message(&synod__v1__message_body__descriptor, buf, len,
                                 &m);
  synod_wire_free_message(m);
  free(buf);
  return rc == SYNOD_EPARSE ? SYNOD_EINVAL : rc;
}

static int check_params(const synod_message_params_t *p) {
  if (p->sender == NULL || p->recipient == NULL || p->content_type == NULL ||
      (p->ndevices > 0 && p->devices == NULL) ||
      (p->body_len > 0 && p->body == NULL))
    return SYNOD_EINVAL;
  if (synod_userid_parse(p->sender, NULL, NULL) != 0 ||
      synod_userid_parse(p->recipient, NULL, NULL) != 0)
    return SYNOD_EINVAL;
  if (p->ndevices == 0)
    return SYNOD_EINVAL;
  if (p->ndevices > SYNOD_MESSAGE_MAX_DEVICES ||
      p->body_len > SYNOD_SIG_MAX_BYTES)
    return SYNOD_ETOOBIG;
  for (size_t i = 0; i < p->ndevices; i++)
    for (size_t j = 0; j < i; j++)
      if (p->devices[i].device_id == p->devices[j].device_id)
        return SYNOD_EINVAL;
  if (p->content_type[0] == '\0')
    return SYNOD_EINVAL;
  return text_ok(p->content_type);
}

/* One device's copy: MessageBody -> signed SealedMessage -> HPKE. */
static int
seal_copy(synod_message_sealed_t *s, size_t i, const synod_message_params_t *p,
          const uint8_t identity_sk[static SYNOD_ED25519_SECRET_BYTES]) {
  Synod__V1__MessageBody b;
  synod__v1__message_body__init(&b);
  Synod__V1__SealedMessage sm = SYNOD__V1__SEALED_MESSAGE__INIT;
  Synod__V1__DeviceCiphertext *dc = &s->copies[i];
  uint8_t sig[SYNOD_ED25519_SIG_BYTES];
  uint8_t *body = NULL, *pt = NULL, *ct = NULL;
  size_t body_len = 0, pt_len = 0;
  synod_hpke_ctx_t ctx;
  int rc;

  b.sender = s->sender;
  b.recipient = s->recipient;
  b.recipient_device_key.data = synod_wire_lend(p->devices[i].x25519_key);
  b.recipient_device_key.len = SYNOD_X25519_BYTES;
  b.message_id.data = s->message_id;
  b.message_id.len = SYNOD_MESSAGE_ID_BYTES;
  b.time = p->time;
  b.content_type = synod_wire_lend(p->content_type);
  b.body.data = synod_wire_lend(p->body);
  b.body.len = p->body_len;
  if ((rc = pack_alloc(&b.base, &body, &body_len)) != 0)
    goto out;
  /* Signed once, over the bytes that travel (README 6.1). */
  if ((rc = synod_sig_sign(sig, SYNOD_SIG_MESSAGE, body, body_len,
                           identity_sk)) != 0)
    goto out;
  sm.body.data = body;
  sm.body.len = body_len;
  sm.signature.data = sig;
  sm.signature.len = sizeof sig;
  if ((rc = pack_alloc(&sm.base, &pt, &pt_len)) != 0)
    goto out;
  if (pt_len > SIZE_MAX - SYNOD_HPKE_TAG_BYTES) {
    rc = SYNOD_ETOOBIG;
    goto out;
  }
  if ((ct = malloc(pt_len + SYNOD_HPKE_TAG_BYTES)) == NULL) {
    rc = SYNOD_ENOMEM;
    goto out;
  }
  rc = synod_hpke_setup_base_s(&ctx, s->enc[i], AEAD, info_bytes(), INFO_LEN,
                               p->devices[i].x25519_key, NULL);
  if (rc == 0)
    rc = synod_hpke_seal(&ctx, ct, pt, pt_len, NULL, 0);
  synod_hpke_ctx_wipe(&ctx);
  if (rc != 0)
    goto out;

  synod__v1__device_ciphertext__init(dc);
  dc->device_id = p->devices[i].device_id;
  dc->enc.data = s->enc[i];
  dc->enc.len = SYNOD_HPKE_ENC_BYTES;
  dc->ct.data = ct;
  dc->ct.len = pt_len + SYNOD_HPKE_TAG_BYTES;
  s->copy_ptrs[i] = dc;
  s->ncopies = i + 1;
  ct = NULL;
out:
  free(ct);
  wipe_free(pt, pt_len);
  wipe_free(body, body_len);
  synod_wipe(sig, sizeof sig);
  return rc;
}

int synod_message_seal(
    synod_message_sealed_t *out, const synod_message_params_t *p,
    const uint8_t identity_sk[static SYNOD_ED25519_SECRET_BYTES]) {
  int rc;

  if (out == NULL)
    return SYNOD_EINVAL;
  memset(out, 0, sizeof *out);
  if (p == NULL || identity_sk == NULL)
    return SYNOD_EINVAL;
  if ((rc = check_params(p)) != 0)
    return rc;

  if (p->message_id != NULL)
    memcpy(out->message_id, p->message_id, SYNOD_MESSAGE_ID_BYTES);
  else if ((rc = synod_random(out->message_id, SYNOD_MESSAGE_ID_BYTES)) != 0)
    return rc;
  /* Lengths were checked by synod_userid_parse (at most SYNOD_USERID_MAX). */
  memcpy(out->sender, p->sender, strlen(p->sender) + 1);
  memcpy(out->recipient, p->recipient, strlen(p->recipient) + 1);

  for (size_t i = 0; i < p->ndevices; i++)
    if ((rc = seal_copy(out, i, p, identity_sk)) != 0) {
      synod_message_sealed_free(out);
      return rc;
    }

  synod__v1__envelope__init(&out->envelope);
  out->envelope.message_id.data = out->message_id;
  out->envelope.message_id.len = SYNOD_MESSAGE_ID_BYTES;
  out->envelope.recipient = out->recipient;
  out->envelope.sender = out->sender;
  out->envelope.ttl = p->ttl;
  out->envelope.ciphertexts = out->copy_ptrs;
  out->envelope.n_ciphertexts = out->ncopies;
  return 0;
}

void synod_message_sealed_free(synod_message_sealed_t *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->ncopies && i < SYNOD_MESSAGE_MAX_DEVICES; i++)
    free(s->copies[i].ct.data);
  memset(s, 0, sizeof *s);
}

void synod_message_opened_free(synod_message_opened_t *m) {
  if (m == NULL)
    return;
  if (m->content_type != NULL)
    wipe_free((uint8_t *)m->content_type, strlen(m->content_type));
  wipe_free(m->body, m->body_len);
  memset(m, 0, sizeof *m);
}

/* Wipes the plaintext copies protobuf-c made, then frees the message. */
static void free_sealed(Synod__V1__SealedMessage *sm) {
  if (sm == NULL)
    return;
  if (sm->body.data != NULL)
    synod_wipe(sm->body.data, sm->body.len);
  synod_wire_free_message(&sm->base);
}

static void free_body(Synod__V1__MessageBody *b) {
  if (b == NULL)
    return;
  if (b->body.data != NULL)
    synod_wipe(b->body.data, b->body.len);
  if (b->content_type != NULL)
    synod_wipe(b->content_type, strlen(b->content_type));
  synod_wire_free_message(&b->base);
}

static int str_eq(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Step 1: our copy of env, or a refusal. */
static int find_copy(const Synod__V1__DeviceCiphertext **dc,
                     const Synod__V1__Envelope *env,
                     const synod_message_self_t *self, const char **why) {
  *dc = NULL;
  *why = "envelope";
  if (!bytes_len_is(&env->message_id, SYNOD_MESSAGE_ID_BYTES) ||
      (env->n_ciphertexts > 0 && env->ciphertexts == NULL))
    return SYNOD_EPARSE;
  if (!str_eq(env->recipient, self->user_id)) {
    *why = "envelope recipient";
    return SYNOD_EDENIED;
  }
  for (size_t i = 0; i < env->n_ciphertexts; i++) {
    const Synod__V1__DeviceCiphertext *c = env->ciphertexts[i];
    if (c == NULL)
      return SYNOD_EPARSE;
    if (c->device_id != self->device_id)
      continue;
    if (*dc != NULL) /* two copies for one device: which one? neither */
      return SYNOD_EPARSE;
    *dc = c;
  }
  if (*dc == NULL) {
    *why = "no copy for this device";
    return SYNOD_ENOENT;
  }
  if (!bytes_len_is(&(*dc)->enc, SYNOD_HPKE_ENC_BYTES) ||
      (*dc)->ct.len < SYNOD_HPKE_TAG_BYTES || (*dc)->ct.data == NULL)
    return SYNOD_EPARSE;
  return 0;
}

/* Step 2: the SealedMessage bytes, malloc'd into *pt. */
static int decrypt(uint8_t **pt, size_t *pt_len,
                   const Synod__V1__DeviceCiphertext *dc,
                   const uint8_t sk[static SYNOD_X25519_BYTES]) {
  synod_hpke_ctx_t ctx;
  size_t n = dc->ct.len - SYNOD_HPKE_TAG_BYTES;
  uint8_t *buf = malloc(n ? n : 1);
  int rc;

  *pt = NULL;
  *pt_len = 0;
  if (buf == NULL)
    return SYNOD_ENOMEM;
  rc = synod_hpke_setup_base_r(&ctx, AEAD, dc->enc.data, info_bytes(), INFO_LEN,
                               sk);
  if (rc == 0)
    rc = synod_hpke_open(&ctx, buf, dc->ct.data, dc->ct.len, NULL, 0);
  synod_hpke_ctx_wipe(&ctx);
  if (rc != 0) {
    wipe_free(buf, n); /* synod_hpke_open wiped it already */
    return rc;         /* EDECRYPT: wrong key, low-order enc or any tampering */
  }
  *pt = buf;
  *pt_len = n;
  return 0;
}

/* Step 5: field sizes of a verified body. */
static int body_ok(const Synod__V1__MessageBody *b) {
  if (synod_userid_parse(b->sender, NULL, NULL) != 0 ||
      synod_userid_parse(b->recipient, NULL, NULL) != 0 ||
      !bytes_len_is(&b->recipient_device_key, SYNOD_X25519_BYTES) ||
      !bytes_len_is(&b->message_id, SYNOD_MESSAGE_ID_BYTES) ||
      b->content_type == NULL || b->content_type[0] == '\0' ||
      (b->body.len > 0 && b->body.data == NULL))
    return SYNOD_EPARSE;
  return 0;
}

/* Step 6 and 7: the verified body is about this envelope and device. */
static int bindings_ok(const Synod__V1__MessageBody *b,
                       const Synod__V1__Envelope *env,
                       const synod_message_self_t *self,
                       const uint8_t our_pk[static SYNOD_X25519_BYTES],
                       uint64_t now, const char **why) {
  if (!str_eq(b->sender, env->sender)) {
    *why = "sender";
    return SYNOD_EDENIED;
  }
  if (!str_eq(b->recipient, self->user_id)) {
    *why = "recipient";
    return SYNOD_EDENIED;
  }
  if (memcmp(b->recipient_device_key.data, our_pk, SYNOD_X25519_BYTES) != 0) {
    *why = "device key";
    return SYNOD_EDENIED;
  }
  if (memcmp(b->message_id.data, env->message_id.data,
             SYNOD_MESSAGE_ID_BYTES) != 0) {
    *why = "message id";
    return SYNOD_EDENIED;
  }
  if (now > UINT64_MAX - SYNOD_MESSAGE_MAX_SKEW ||
      b->time > now + SYNOD_MESSAGE_MAX_SKEW) {
    *why = "time";
    return SYNOD_EINVAL;
  }
  return 0;
}

/* The caller-owned copies of a message that passed every check. */
static int fill_out(synod_message_opened_t *out,
                    const Synod__V1__MessageBody *b) {
  size_t ctlen = strlen(b->content_type);
  out->content_type = malloc(ctlen + 1);
  out->body = malloc(b->body.len ? b->body.len : 1);
  if (out->content_type == NULL || out->body == NULL)
    return SYNOD_ENOMEM;
  memcpy(out->content_type, b->content_type, ctlen + 1);
  if (b->body.len > 0)
    memcpy(out->body, b->body.data, b->body.len);
  out->body_len = b->body.len;
  memcpy(out->sender, b->sender, strlen(b->sender) + 1);
  memcpy(out->message_id, b->message_id.data, SYNOD_MESSAGE_ID_BYTES);
  out->time = b->time;
  return 0;
}

int synod_message_open(
    synod_message_opened_t *out, const Synod__V1__Envelope *env,
    const synod_message_self_t *self,
    const uint8_t sender_pk[static SYNOD_ED25519_PUBLIC_BYTES], uint64_t now) {
  const Synod__V1__DeviceCiphertext *dc;
  Synod__V1__SealedMessage *sm = NULL;
  Synod__V1__MessageBody *b = NULL;
  ProtobufCMessage *m = NULL;
  uint8_t our_pk[SYNOD_X25519_BYTES];
  uint8_t *pt = NULL;
  size_t pt_len = 0;
  const char *why = "arguments";
  int rc;

  if (out == NULL)
    return SYNOD_EINVAL;
  memset(out, 0, sizeof *out);
  rc = SYNOD_EINVAL;
  if (env == NULL || self == NULL || self->user_id == NULL ||
      self->x25519_sk == NULL || sender_pk == NULL ||
      synod_userid_parse(self->user_id, NULL, NULL) != 0)
    goto out;
  if ((rc = synod_x25519_public(our_pk, self->x25519_sk)) != 0)
    goto out;

  if ((rc = find_copy(&dc, env, self, &why)) != 0)
    goto out;
  why = "decrypt";
  if ((rc = decrypt(&pt, &pt_len, dc, self->x25519_sk)) != 0)
    goto out;

  why = "sealed message";
  if ((rc = synod_wire_unpack_message(&synod__v1__sealed_message__descriptor,
                                      pt, pt_len, &m)) != 0)
    goto out;
  sm = (Synod__V1__SealedMessage *)m;
  if (!bytes_len_is(&sm->signature, SYNOD_ED25519_SIG_BYTES) ||
      (sm->body.len > 0 && sm->body.data == NULL)) {
    rc = SYNOD_EPARSE;
    goto out;
  }
  /* Verify first, parse second (README 6.1). */
  why = "signature";
  if ((rc = synod_sig_verify(sm->signature.data, SYNOD_SIG_MESSAGE,
                             sm->body.data, sm->body.len, sender_pk)) != 0)
    goto out;

  why = "message body";
  if ((rc = synod_wire_unpack_message(&synod__v1__message_body__descriptor,
                                      sm->body.data, sm->body.len, &m)) != 0)
    goto out;
  b = (Synod__V1__MessageBody *)m;
  if ((rc = body_ok(b)) != 0)
    goto out;
  if ((rc = bindings_ok(b, env, self, our_pk, now, &why)) != 0)
    goto out;
  why = "out of memory";
  rc = fill_out(out, b);

out:
  free_body(b);
  free_sealed(sm);
  wipe_free(pt, pt_len);
  if (rc != 0) {
    synod_message_opened_free(out);
    out->why = why;
  }
  return rc;
}
