/* Announcements and chain validation; see synod/announce.h. */
#include "synod/announce.h"

#include <stdlib.h>
#include <string.h>

#include "synod/sig.h"
#include "synod/wire.h"

static int bytes_len_is(const ProtobufCBinaryData *b, size_t n) {
  return b->len == n && (n == 0 || b->data != NULL);
}

/* The parameter rules shared by signing and verifying. */
static int check_fields(const char *user_id, size_t ndevices, uint64_t version,
                        int has_prev) {
  if (synod_userid_parse(user_id, NULL, NULL) != 0)
    return SYNOD_EPARSE;
  if (ndevices < 1 || ndevices > SYNOD_ANNOUNCE_MAX_DEVICES)
    return SYNOD_EPARSE;
  if (version < 1 || (version == 1) == (has_prev != 0))
    return SYNOD_EPARSE;
  return 0;
}

static int check_structure(uint64_t version, int reset, int has_continuity) {
  if (version == 1 && (reset || has_continuity))
    return SYNOD_ECHAIN;
  if (reset && has_continuity)
    return SYNOD_ECHAIN;
  return 0;
}

int synod_announce_hash(uint8_t out[static SYNOD_SHA256_BYTES],
                        const uint8_t *body, size_t len) {
  return synod_sha256(out, body, len);
}

void synod_announcement_free(synod_announcement_t *a) {
  if (a == NULL)
    return;
  free(a->body);
  memset(a, 0, sizeof *a);
}

void synod_announcement_lend(Synod__V1__Announcement *w,
                             const synod_announcement_t *a) {
  synod__v1__announcement__init(w);
  w->body.data = synod_wire_lend(a->body);
  w->body.len = a->body_len;
  w->signature.data = synod_wire_lend(a->signature);
  w->signature.len = sizeof a->signature;
  if (a->has_continuity) {
    w->continuity_signature.data = synod_wire_lend(a->continuity);
    w->continuity_signature.len = sizeof a->continuity;
  }
}

int synod_announce_sign(
    synod_announcement_t *out, const synod_announce_params_t *p,
    const uint8_t identity_sk[static SYNOD_ED25519_SECRET_BYTES],
    const uint8_t *prev_identity_sk) {
  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES], prev_pk[SYNOD_ED25519_PUBLIC_BYTES];
  Synod__V1__DeviceKey dev[SYNOD_ANNOUNCE_MAX_DEVICES];
  Synod__V1__DeviceKey *devp[SYNOD_ANNOUNCE_MAX_DEVICES];
  Synod__V1__AnnouncementBody b;
  synod__v1__announcement_body__init(&b);
  int rc;

  memset(out, 0, sizeof *out);
  if (p == NULL || p->user_id == NULL || (p->ndevices && !p->devices))
    return SYNOD_EINVAL;
  if (check_fields(p->user_id, p->ndevices, p->version, p->prev_hash != NULL) !=
          0 ||
      check_structure(p->version, p->reset, prev_identity_sk != NULL) != 0)
    return SYNOD_EINVAL;
  for (size_t i = 0; i < p->ndevices; i++)
    for (size_t j = 0; j < i; j++)
      if (p->devices[i].device_id == p->devices[j].device_id)
        return SYNOD_EINVAL;
  if ((rc = synod_ed25519_public(pk, identity_sk)) != 0)
    return rc;
  if (prev_identity_sk != NULL) {
    if ((rc = synod_ed25519_public(prev_pk, prev_identity_sk)) != 0)
      return rc;
    if (memcmp(pk, prev_pk, sizeof pk) == 0)
      return SYNOD_EINVAL; /* continuity only on an identity change */
  }

  for (size_t i = 0; i < p->ndevices; i++) {
    synod__v1__device_key__init(&dev[i]);
    dev[i].device_id = p->devices[i].device_id;
    dev[i].x25519_key.data = synod_wire_lend(p->devices[i].x25519_key);
    dev[i].x25519_key.len = SYNOD_X25519_BYTES;
    dev[i].name = synod_wire_lend(p->devices[i].name ? p->devices[i].name : "");
    devp[i] = &dev[i];
  }
  b.user_id = synod_wire_lend(p->user_id);
  b.identity_key.data = pk;
  b.identity_key.len = sizeof pk;
  b.devices = devp;
  b.n_devices = p->ndevices;
  b.version = p->version;
  b.time = p->time;
  if (p->prev_hash) {
    b.prev_hash.data = synod_wire_lend(p->prev_hash);
    b.prev_hash.len = SYNOD_SHA256_BYTES;
  }
  b.reset = p->reset ? 1 : 0;

  size_t len = synod__v1__announcement_body__get_packed_size(&b);
  uint8_t *body = malloc(len ? len : 1);
  if (body == NULL)
    return SYNOD_ENOMEM;
  if (synod__v1__announcement_body__pack(&b, body) != len) {
    free(body);
    return SYNOD_EINTERNAL;
  }
  out->body = body;
  out->body_len = len;
  rc = synod_sig_sign(out->signature, SYNOD_SIG_ANNOUNCEMENT, body, len,
                      identity_sk);
  if (rc == 0 && prev_identity_sk != NULL) {
    rc = synod_sig_sign(out->continuity, SYNOD_SIG_CONTINUITY, body, len,
                        prev_identity_sk);
    out->has_continuity = 1;
  }
  if (rc != 0)
    synod_announcement_free(out);
  return rc;
}

/* Body fields into info, after the signature verified. */
static int fill_info(synod_announce_info_t *info,
                     const Synod__V1__AnnouncementBody *b) {
  int rc =
      check_fields(b->user_id, b->n_devices, b->version, b->prev_hash.len != 0);
  if (rc != 0)
    return rc;
  if (b->version > 1 && !bytes_len_is(&b->prev_hash, SYNOD_SHA256_BYTES))
    return SYNOD_EPARSE;
  size_t idlen = strlen(b->user_id);
  memcpy(info->user_id, b->user_id, idlen + 1);
  info->version = b->version;
  info->time = b->time;
  if (b->version > 1)
    memcpy(info->prev_hash, b->prev_hash.data, SYNOD_SHA256_BYTES);
  info->reset = b->reset ? 1 : 0;
  info->ndevices = b->n_devices;
  for (size_t i = 0; i < b->n_devices; i++) {
    const Synod__V1__DeviceKey *d = b->devices[i];
    if (!bytes_len_is(&d->x25519_key, SYNOD_X25519_BYTES))
      return SYNOD_EPARSE;
    for (size_t j = 0; j < i; j++)
      if (info->devices[j].device_id == d->device_id)
        return SYNOD_EPARSE;
    info->devices[i].device_id = d->device_id;
    memcpy(info->devices[i].x25519_key, d->x25519_key.data, SYNOD_X25519_BYTES);
  }
  return 0;
}

int synod_announce_verify(synod_announce_info_t *info,
                          const Synod__V1__Announcement *a, uint64_t now) {
  ProtobufCMessage *m = NULL;
  int rc;

  memset(info, 0, sizeof *info);
  if (a == NULL)
    return SYNOD_EINVAL;
  if (!bytes_len_is(&a->signature, SYNOD_ED25519_SIG_BYTES) ||
      (a->continuity_signature.len != 0 &&
       !bytes_len_is(&a->continuity_signature, SYNOD_ED25519_SIG_BYTES)) ||
      a->body.len > SYNOD_SIG_MAX_BYTES)
    return SYNOD_EPARSE;
  /* The key is a field of the signed body: parse to find it, look at
   * nothing else until the signature over the received bytes verifies. */
  rc = synod_wire_unpack_message(&synod__v1__announcement_body__descriptor,
                                 a->body.data, a->body.len, &m);
  if (rc != 0)
    return rc;
  const Synod__V1__AnnouncementBody *b = (const Synod__V1__AnnouncementBody *)m;
  if (!bytes_len_is(&b->identity_key, SYNOD_ED25519_PUBLIC_BYTES)) {
    rc = SYNOD_EPARSE;
    goto out;
  }
  rc = synod_sig_verify(a->signature.data, SYNOD_SIG_ANNOUNCEMENT, a->body.data,
                        a->body.len, b->identity_key.data);
  if (rc != 0)
    goto out;
  memcpy(info->identity_key, b->identity_key.data, SYNOD_ED25519_PUBLIC_BYTES);
  if ((rc = fill_info(info, b)) != 0)
    goto out;
  info->has_continuity = a->continuity_signature.len != 0;
  if ((rc = check_structure(info->version, info->reset,
                            info->has_continuity)) != 0)
    goto out;
  if (now > UINT64_MAX - SYNOD_ANNOUNCE_MAX_SKEW ||
      info->time > now + SYNOD_ANNOUNCE_MAX_SKEW) {
    rc = SYNOD_EINVAL;
    goto out;
  }
  rc = synod_announce_hash(info->hash, a->body.data, a->body.len);
out:
  synod_wire_free_message(m);
  if (rc != 0)
    memset(info, 0, sizeof *info);
  return rc;
}

void synod_chain_head_from_info(synod_chain_head_t *h,
                                const synod_announce_info_t *info) {
  h->version = info->version;
  memcpy(h->hash, info->hash, sizeof h->hash);
  memcpy(h->identity_key, info->identity_key, sizeof h->identity_key);
  h->time = info->time;
}

/* Rule 2 of synod_chain_check: does cur (verified, wire form a) extend
 * prev? */
static int extends(const synod_chain_head_t *prev,
                   const synod_announce_info_t *cur,
                   const Synod__V1__Announcement *a) {
  if (prev->version == UINT64_MAX || cur->version != prev->version + 1 ||
      memcmp(cur->prev_hash, prev->hash, SYNOD_SHA256_BYTES) != 0 ||
      cur->time < prev->time)
    return SYNOD_ECHAIN;
  int same = memcmp(cur->identity_key, prev->identity_key,
                    SYNOD_ED25519_PUBLIC_BYTES) == 0;
  if (same)
    return (cur->reset || cur->has_continuity) ? SYNOD_ECHAIN : 0;
  if (cur->reset)
    return cur->has_continuity ? SYNOD_ECHAIN : 0;
  if (!cur->has_continuity)
    return SYNOD_ECHAIN;
  return synod_sig_verify(a->continuity_signature.data, SYNOD_SIG_CONTINUITY,
                          a->body.data, a->body.len, prev->identity_key) == 0
             ? 0
             : SYNOD_ECHAIN;
}

int synod_chain_check(synod_chain_outcome_t *out, const char *user_id,
                      const synod_chain_head_t *held,
                      const Synod__V1__Announcement *const *links,
                      size_t nlinks, uint64_t now) {
  synod_announce_info_t *cur = &out->head;
  synod_chain_head_t prev;
  int have_prev = 0, anchored = held == NULL;
  int rc = 0;
  size_t i;

  memset(out, 0, sizeof *out);
  if (nlinks == 0 || links == NULL ||
      synod_userid_parse(user_id, NULL, NULL) != 0)
    return SYNOD_EINVAL;
  if (held != NULL)
    prev = *held;

  for (i = 0; i < nlinks; i++) {
    if ((rc = synod_announce_verify(cur, links[i], now)) != 0)
      goto fail;
    if (strcmp(cur->user_id, user_id) != 0) {
      rc = SYNOD_ECHAIN;
      goto fail;
    }
    if (held != NULL && cur->version == held->version) {
      if (memcmp(cur->hash, held->hash, SYNOD_SHA256_BYTES) != 0) {
        out->result = SYNOD_CHAIN_CONFLICT;
        out->index = i;
        return SYNOD_EEQUIVOCATION;
      }
      /* The held head itself: links before it were checked pairwise
       * (a broken older link is still a broken answer); it extends
       * them by hash, and it is our anchor from here on. */
      if (have_prev && (rc = extends(&prev, cur, links[i])) != 0)
        goto fail;
      anchored = 1;
    } else if (have_prev) {
      if ((rc = extends(&prev, cur, links[i])) != 0)
        goto fail;
      if (anchored && cur->reset)
        out->resets++;
    } else if (held != NULL && cur->version > held->version) {
      /* First link above the held head: must extend it directly. */
      if ((rc = extends(held, cur, links[i])) != 0)
        goto fail;
      anchored = 1;
      if (cur->reset)
        out->resets++;
    } else if (held == NULL && cur->reset) {
      out->resets++; /* the anchor itself: nothing vouches for it */
    }
    synod_chain_head_from_info(&prev, cur);
    have_prev = 1;
  }
  if (held != NULL && prev.version < held->version) {
    i = nlinks;
    rc = SYNOD_EROLLBACK;
    goto fail;
  }
  if (!anchored) { /* cannot happen: the newest link is >= held */
    i = nlinks;
    rc = SYNOD_ECHAIN;
    goto fail;
  }
  if (held != NULL && prev.version == held->version)
    out->result = SYNOD_CHAIN_EQUAL;
  else
    out->result = out->resets ? SYNOD_CHAIN_RESET : SYNOD_CHAIN_EXTENDS;
  return 0;
fail:
  memset(out, 0, sizeof *out);
  out->index = i;
  return rc;
}
