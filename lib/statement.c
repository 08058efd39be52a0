/* Countersignatures, lookup answers, equivocation proofs; see
 * synod/statement.h. */
#include "synod/statement.h"

#include <stdlib.h>
#include <string.h>

#include "synod/sig.h"
#include "synod/wire.h"

static int bytes_len_is(const ProtobufCBinaryData *b, size_t n) {
  return b->len == n && (n == 0 || b->data != NULL);
}

void synod_signed_free(synod_signed_t *s) {
  if (s == NULL)
    return;
  free(s->body);
  memset(s, 0, sizeof *s);
}

void synod_signed_lend(ProtobufCBinaryData *body, ProtobufCBinaryData *sig,
                       const synod_signed_t *s) {
  body->data = synod_wire_lend(s->body);
  body->len = s->body_len;
  sig->data = synod_wire_lend(s->signature);
  sig->len = sizeof s->signature;
}

/* Packs m once and signs the bytes: what is signed is what travels. */
static int pack_sign(synod_signed_t *out, const ProtobufCMessage *m,
                     synod_sig_kind_t kind, const uint8_t *sk,
                     const synod_ed25519_signer_t *signer) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *body = malloc(len ? len : 1);
  if (body == NULL)
    return SYNOD_ENOMEM;
  if (protobuf_c_message_pack(m, body) != len) {
    free(body);
    return SYNOD_EINTERNAL;
  }
  out->body = body;
  out->body_len = len;
  int rc = signer ? synod_sig_sign_by(out->signature, kind, body, len, signer)
                  : synod_sig_sign(out->signature, kind, body, len, sk);
  if (rc != 0)
    synod_signed_free(out);
  return rc;
}

/* Signature (64 bytes) of kind over body with pk, before any parsing. */
static int check_sig(const ProtobufCBinaryData *body,
                     const ProtobufCBinaryData *sig, synod_sig_kind_t kind,
                     const uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]) {
  if (!bytes_len_is(sig, SYNOD_ED25519_SIG_BYTES) ||
      body->len > SYNOD_SIG_MAX_BYTES)
    return SYNOD_EPARSE;
  return synod_sig_verify(sig->data, kind, body->data, body->len, pk);
}

/* Copies a valid relay name. */
static int copy_relay(char dst[static SYNOD_RELAY_NAME_MAX + 1],
                      const char *name) {
  if (synod_relay_name_check(name) != 0)
    return SYNOD_EPARSE;
  memcpy(dst, name, strlen(name) + 1);
  return 0;
}

static int copy_user(char dst[static SYNOD_USERID_MAX + 1], const char *id) {
  if (synod_userid_parse(id, NULL, NULL) != 0)
    return SYNOD_EPARSE;
  memcpy(dst, id, strlen(id) + 1);
  return 0;
}

/* --- countersignature ------------------------------------------------------
 */

/* The namespace rule: relay is user_id's home relay. */
static int is_home(const char *user_id, const char *relay) {
  const char *home;
  return synod_userid_parse(user_id, NULL, &home) == 0 &&
         strcmp(home, relay) == 0;
}

static int countersig_parse(synod_countersig_info_t *out,
                            const ProtobufCBinaryData *body) {
  ProtobufCMessage *m;
  int rc = synod_wire_unpack_message(
      &synod__v1__countersignature_body__descriptor, body->data, body->len, &m);
  if (rc != 0)
    return rc;
  const Synod__V1__CountersignatureBody *b =
      (const Synod__V1__CountersignatureBody *)m;
  if ((rc = copy_user(out->user_id, b->user_id)) != 0 ||
      (rc = copy_relay(out->relay_name, b->relay_name)) != 0)
    goto out;
  if (b->version < 1 ||
      !bytes_len_is(&b->announcement_hash, SYNOD_SHA256_BYTES)) {
    rc = SYNOD_EPARSE;
    goto out;
  }
  if (!is_home(out->user_id, out->relay_name)) {
    rc = SYNOD_EDENIED;
    goto out;
  }
  out->version = b->version;
  memcpy(out->announcement_hash, b->announcement_hash.data, SYNOD_SHA256_BYTES);
  out->time = b->time;
out:
  synod_wire_free_message(m);
  return rc;
}

static int countersig_sign(synod_signed_t *out,
                           const synod_countersig_info_t *in,
                           const uint8_t *relay_sk,
                           const synod_ed25519_signer_t *signer) {
  Synod__V1__CountersignatureBody b;
  synod__v1__countersignature_body__init(&b);
  memset(out, 0, sizeof *out);
  if (in == NULL || synod_userid_parse(in->user_id, NULL, NULL) != 0 ||
      synod_relay_name_check(in->relay_name) != 0 || in->version < 1)
    return SYNOD_EINVAL;
  if (!is_home(in->user_id, in->relay_name))
    return SYNOD_EDENIED;
  b.user_id = synod_wire_lend(in->user_id);
  b.version = in->version;
  b.announcement_hash.data = synod_wire_lend(in->announcement_hash);
  b.announcement_hash.len = SYNOD_SHA256_BYTES;
  b.relay_name = synod_wire_lend(in->relay_name);
  b.time = in->time;
  return pack_sign(out, &b.base, SYNOD_SIG_COUNTERSIGNATURE, relay_sk, signer);
}

int synod_countersig_sign(
    synod_signed_t *out, const synod_countersig_info_t *in,
    const uint8_t relay_sk[static SYNOD_ED25519_SECRET_BYTES]) {
  return countersig_sign(out, in, relay_sk, NULL);
}

int synod_countersig_sign_by(synod_signed_t *out,
                             const synod_countersig_info_t *in,
                             const synod_ed25519_signer_t *signer) {
  return signer ? countersig_sign(out, in, NULL, signer) : SYNOD_EINVAL;
}

int synod_countersig_verify(
    synod_countersig_info_t *out, const Synod__V1__Countersignature *cs,
    const uint8_t relay_pk[static SYNOD_ED25519_PUBLIC_BYTES], uint64_t now) {
  int rc;
  memset(out, 0, sizeof *out);
  if (cs == NULL)
    return SYNOD_EINVAL;
  if ((rc = check_sig(&cs->body, &cs->signature, SYNOD_SIG_COUNTERSIGNATURE,
                      relay_pk)) != 0 ||
      (rc = countersig_parse(out, &cs->body)) != 0)
    goto fail;
  if (now > UINT64_MAX - SYNOD_STATEMENT_MAX_SKEW ||
      out->time > now + SYNOD_STATEMENT_MAX_SKEW) {
    rc = SYNOD_EINVAL;
    goto fail;
  }
  return 0;
fail:
  memset(out, 0, sizeof *out);
  return rc;
}

/* --- lookup answer
 * ------------------------------------------------------------ */

static int lookup_parse(synod_lookup_info_t *out,
                        const ProtobufCBinaryData *body) {
  ProtobufCMessage *m;
  int rc = synod_wire_unpack_message(&synod__v1__lookup_answer_body__descriptor,
                                     body->data, body->len, &m);
  if (rc != 0)
    return rc;
  const Synod__V1__LookupAnswerBody *b = (const Synod__V1__LookupAnswerBody *)m;
  if ((rc = copy_user(out->user_id, b->user_id)) != 0 ||
      (rc = copy_relay(out->relay_name, b->relay_name)) != 0)
    goto out;
  if (!bytes_len_is(&b->head_hash, b->version ? SYNOD_SHA256_BYTES : 0)) {
    rc = SYNOD_EPARSE;
    goto out;
  }
  out->time = b->time;
  out->version = b->version;
  if (b->version)
    memcpy(out->head_hash, b->head_hash.data, SYNOD_SHA256_BYTES);
out:
  synod_wire_free_message(m);
  return rc;
}

static int lookup_sign(synod_signed_t *out, const synod_lookup_info_t *in,
                       const uint8_t *relay_sk,
                       const synod_ed25519_signer_t *signer) {
  Synod__V1__LookupAnswerBody b;
  synod__v1__lookup_answer_body__init(&b);
  memset(out, 0, sizeof *out);
  if (in == NULL || synod_userid_parse(in->user_id, NULL, NULL) != 0 ||
      synod_relay_name_check(in->relay_name) != 0)
    return SYNOD_EINVAL;
  b.time = in->time;
  b.user_id = synod_wire_lend(in->user_id);
  b.version = in->version;
  if (in->version) {
    b.head_hash.data = synod_wire_lend(in->head_hash);
    b.head_hash.len = SYNOD_SHA256_BYTES;
  }
  b.relay_name = synod_wire_lend(in->relay_name);
  return pack_sign(out, &b.base, SYNOD_SIG_LOOKUP_ANSWER, relay_sk, signer);
}

int synod_lookup_sign(
    synod_signed_t *out, const synod_lookup_info_t *in,
    const uint8_t relay_sk[static SYNOD_ED25519_SECRET_BYTES]) {
  return lookup_sign(out, in, relay_sk, NULL);
}

int synod_lookup_sign_by(synod_signed_t *out, const synod_lookup_info_t *in,
                         const synod_ed25519_signer_t *signer) {
  return signer ? lookup_sign(out, in, NULL, signer) : SYNOD_EINVAL;
}

int synod_lookup_verify(
    synod_lookup_info_t *out, const Synod__V1__LookupAnswer *la,
    const uint8_t relay_pk[static SYNOD_ED25519_PUBLIC_BYTES], uint64_t now,
    uint64_t window) {
  int rc;
  memset(out, 0, sizeof *out);
  if (la == NULL)
    return SYNOD_EINVAL;
  if ((rc = check_sig(&la->body, &la->signature, SYNOD_SIG_LOOKUP_ANSWER,
                      relay_pk)) != 0 ||
      (rc = lookup_parse(out, &la->body)) != 0) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  if (window == 0)
    window = SYNOD_LOOKUP_FRESHNESS_DEFAULT;
  /* Written without now - window and now + skew, which could wrap. */
  if (out->time < now && now - out->time > window)
    return SYNOD_ESTALE;
  if (out->time > now && out->time - now > SYNOD_STATEMENT_MAX_SKEW)
    return SYNOD_ESTALE;
  return 0;
}

/* --- equivocation proofs
 * ------------------------------------------------------- */

static const uint8_t *relay_key(const synod_relay_key_t *keys, size_t nkeys,
                                const char *name) {
  for (size_t i = 0; i < nkeys; i++)
    if (keys[i].name != NULL && strcmp(keys[i].name, name) == 0)
      return keys[i].key;
  return NULL;
}

static int signed_ok(const Synod__V1__Signed *s) {
  return s != NULL && bytes_len_is(&s->signature, SYNOD_ED25519_SIG_BYTES) &&
         (s->body.len == 0 || s->body.data != NULL) &&
         s->body.len <= SYNOD_SIG_MAX_BYTES;
}

/* Announcement bodies: the fields a proof compares. */
typedef struct ann_fields {
  char user_id[SYNOD_USERID_MAX + 1];
  uint64_t version;
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES];
} ann_fields_t;

static int ann_parse(ann_fields_t *f, const ProtobufCBinaryData *body) {
  ProtobufCMessage *m;
  int rc = synod_wire_unpack_message(&synod__v1__announcement_body__descriptor,
                                     body->data, body->len, &m);
  if (rc != 0)
    return rc;
  const Synod__V1__AnnouncementBody *b = (const Synod__V1__AnnouncementBody *)m;
  if (!bytes_len_is(&b->identity_key, SYNOD_ED25519_PUBLIC_BYTES) ||
      b->version < 1)
    rc = SYNOD_EPARSE;
  else
    rc = copy_user(f->user_id, b->user_id);
  if (rc == 0) {
    f->version = b->version;
    memcpy(f->key, b->identity_key.data, sizeof f->key);
  }
  synod_wire_free_message(m);
  return rc;
}

static int proof_announcements(synod_proof_verdict_t *out,
                               const Synod__V1__Signed *a,
                               const Synod__V1__Signed *b) {
  ann_fields_t fa, fb;
  int rc;
  if ((rc = ann_parse(&fa, &a->body)) != 0 ||
      (rc = ann_parse(&fb, &b->body)) != 0)
    return rc;
  /* Two different keys are two signers, not one liar. */
  if (memcmp(fa.key, fb.key, sizeof fa.key) != 0)
    return SYNOD_EINVAL;
  if ((rc = check_sig(&a->body, &a->signature, SYNOD_SIG_ANNOUNCEMENT,
                      fa.key)) != 0 ||
      (rc = check_sig(&b->body, &b->signature, SYNOD_SIG_ANNOUNCEMENT,
                      fa.key)) != 0)
    return rc;
  if (strcmp(fa.user_id, fb.user_id) != 0 || fa.version != fb.version ||
      (a->body.len == b->body.len &&
       memcmp(a->body.data, b->body.data, a->body.len) == 0))
    return SYNOD_EINVAL;
  memcpy(out->user_id, fa.user_id, sizeof out->user_id);
  out->version = fa.version;
  memcpy(out->key, fa.key, sizeof out->key);
  synod_sha256(out->first_hash, a->body.data, a->body.len);
  synod_sha256(out->second_hash, b->body.data, b->body.len);
  return 0;
}

/* The signer's relay name of a relay statement, read to pick the key. */
static int relay_name_of(char name[static SYNOD_RELAY_NAME_MAX + 1],
                         Synod__V1__EquivocationKind kind,
                         const ProtobufCBinaryData *body) {
  const ProtobufCMessageDescriptor *d =
      kind == SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE
          ? &synod__v1__countersignature_body__descriptor
          : &synod__v1__lookup_answer_body__descriptor;
  ProtobufCMessage *m;
  int rc = synod_wire_unpack_message(d, body->data, body->len, &m);
  if (rc != 0)
    return rc;
  const char *n = d == &synod__v1__countersignature_body__descriptor
                      ? ((const Synod__V1__CountersignatureBody *)m)->relay_name
                      : ((const Synod__V1__LookupAnswerBody *)m)->relay_name;
  rc = copy_relay(name, n);
  synod_wire_free_message(m);
  return rc;
}

static int proof_relay(synod_proof_verdict_t *out,
                       Synod__V1__EquivocationKind kind,
                       const Synod__V1__Signed *a, const Synod__V1__Signed *b,
                       const synod_relay_key_t *keys, size_t nkeys) {
  int cs =
      kind == SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE;
  synod_sig_kind_t label =
      cs ? SYNOD_SIG_COUNTERSIGNATURE : SYNOD_SIG_LOOKUP_ANSWER;
  char name[SYNOD_RELAY_NAME_MAX + 1];
  int rc = relay_name_of(name, kind, &a->body);
  if (rc != 0)
    return rc;
  const uint8_t *pk = relay_key(keys, nkeys, name);
  if (pk == NULL)
    return SYNOD_EUNKNOWNPEER;
  if ((rc = check_sig(&a->body, &a->signature, label, pk)) != 0 ||
      (rc = check_sig(&b->body, &b->signature, label, pk)) != 0)
    return rc;

  const char *ua, *ub, *ra, *rb;
  uint64_t va, vb;
  const uint8_t *ha, *hb;
  synod_countersig_info_t ca, cb;
  synod_lookup_info_t la, lb;
  if (cs) {
    if ((rc = countersig_parse(&ca, &a->body)) != 0 ||
        (rc = countersig_parse(&cb, &b->body)) != 0)
      return rc;
    ua = ca.user_id, ub = cb.user_id, ra = ca.relay_name, rb = cb.relay_name;
    va = ca.version, vb = cb.version;
    ha = ca.announcement_hash, hb = cb.announcement_hash;
  } else {
    if ((rc = lookup_parse(&la, &a->body)) != 0 ||
        (rc = lookup_parse(&lb, &b->body)) != 0)
      return rc;
    ua = la.user_id, ub = lb.user_id, ra = la.relay_name, rb = lb.relay_name;
    va = la.version, vb = lb.version;
    ha = la.head_hash, hb = lb.head_hash;
  }
  if (strcmp(ua, ub) != 0 || strcmp(ra, rb) != 0 || va != vb ||
      memcmp(ha, hb, SYNOD_SHA256_BYTES) == 0)
    return SYNOD_EINVAL;
  memcpy(out->user_id, ua, strlen(ua) + 1);
  memcpy(out->relay_name, ra, strlen(ra) + 1);
  out->version = va;
  memcpy(out->key, pk, sizeof out->key);
  memcpy(out->first_hash, ha, SYNOD_SHA256_BYTES);
  memcpy(out->second_hash, hb, SYNOD_SHA256_BYTES);
  return 0;
}

static int verify_pair(synod_proof_verdict_t *out,
                       Synod__V1__EquivocationKind kind,
                       const Synod__V1__Signed *a, const Synod__V1__Signed *b,
                       const synod_relay_key_t *keys, size_t nkeys) {
  int rc;
  memset(out, 0, sizeof *out);
  if (!signed_ok(a) || !signed_ok(b))
    return (a == NULL || b == NULL) ? SYNOD_EINVAL : SYNOD_EPARSE;
  switch (kind) {
  case SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT:
    rc = proof_announcements(out, a, b);
    break;
  case SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE:
  case SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_LOOKUP_ANSWER:
    rc = proof_relay(out, kind, a, b, keys, nkeys);
    break;
  default:
    rc = SYNOD_EINVAL;
  }
  if (rc != 0)
    memset(out, 0, sizeof *out);
  else
    out->kind = kind;
  return rc;
}

int synod_proof_verify(synod_proof_verdict_t *out,
                       const Synod__V1__EquivocationProof *p,
                       const synod_relay_key_t *keys, size_t nkeys) {
  if (p == NULL) {
    memset(out, 0, sizeof *out);
    return SYNOD_EINVAL;
  }
  return verify_pair(out, p->kind, p->first, p->second, keys, nkeys);
}

void synod_proof_free(synod_proof_t *p) {
  if (p == NULL)
    return;
  synod_signed_free(&p->first);
  synod_signed_free(&p->second);
  memset(p, 0, sizeof *p);
}

static int copy_signed(synod_signed_t *dst, const Synod__V1__Signed *s) {
  dst->body = malloc(s->body.len ? s->body.len : 1);
  if (dst->body == NULL)
    return SYNOD_ENOMEM;
  if (s->body.len)
    memcpy(dst->body, s->body.data, s->body.len);
  dst->body_len = s->body.len;
  memcpy(dst->signature, s->signature.data, SYNOD_ED25519_SIG_BYTES);
  return 0;
}

/* Canonical order: shorter body first, then by bytes. */
static int before(const Synod__V1__Signed *a, const Synod__V1__Signed *b) {
  if (a->body.len != b->body.len)
    return a->body.len < b->body.len;
  return memcmp(a->body.data, b->body.data, a->body.len) < 0;
}

int synod_proof_build(synod_proof_t *out, synod_proof_verdict_t *verdict,
                      Synod__V1__EquivocationKind kind,
                      const Synod__V1__Signed *a, const Synod__V1__Signed *b,
                      const synod_relay_key_t *keys, size_t nkeys) {
  synod_proof_verdict_t v;
  memset(out, 0, sizeof *out);
  int rc = verify_pair(&v, kind, a, b, keys, nkeys);
  if (rc == 0) {
    if (!before(a, b)) {
      const Synod__V1__Signed *t = a;
      a = b;
      b = t;
      synod_proof_verdict_t w = v;
      memcpy(v.first_hash, w.second_hash, sizeof v.first_hash);
      memcpy(v.second_hash, w.first_hash, sizeof v.second_hash);
    }
    if ((rc = copy_signed(&out->first, a)) == 0)
      rc = copy_signed(&out->second, b);
  }
  if (rc != 0) {
    synod_proof_free(out);
    memset(&v, 0, sizeof v);
  } else {
    out->kind = kind;
  }
  if (verdict != NULL)
    *verdict = v;
  return rc;
}

void synod_proof_lend(Synod__V1__EquivocationProof *w, Synod__V1__Signed *first,
                      Synod__V1__Signed *second, const synod_proof_t *p) {
  synod__v1__equivocation_proof__init(w);
  synod__v1__signed__init(first);
  synod__v1__signed__init(second);
  synod_signed_lend(&first->body, &first->signature, &p->first);
  synod_signed_lend(&second->body, &second->signature, &p->second);
  w->kind = p->kind;
  w->first = first;
  w->second = second;
}
