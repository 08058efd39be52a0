/*
 * Signed statements: Ed25519 over label || 0x00 || bytes.
 *
 * Pure Ed25519 hashes the message twice (RFC 8032 section 5.1.6), so
 * OpenSSL cannot stream it: the whole labeled message is assembled in one
 * heap buffer, bounded by SYNOD_SIG_MAX_BYTES.
 */
#include "synod/sig.h"

#include <stdlib.h>
#include <string.h>

const char *synod_sig_label(synod_sig_kind_t kind) {
  switch (kind) {
  case SYNOD_SIG_CHANNEL_BINDING:
    return "synod/v1/channel-binding";
  case SYNOD_SIG_ANNOUNCEMENT:
    return "synod/v1/announcement";
  case SYNOD_SIG_CONTINUITY:
    return "synod/v1/continuity";
  case SYNOD_SIG_COUNTERSIGNATURE:
    return "synod/v1/countersignature";
  case SYNOD_SIG_LOOKUP_ANSWER:
    return "synod/v1/lookup-answer";
  case SYNOD_SIG_MESSAGE:
    return "synod/v1/message";
  case SYNOD_SIG_PURGE:
    return "synod/v1/purge";
  case SYNOD_SIG_DELIVERY_FAILURE:
    return "synod/v1/delivery-failure";
  }
  return NULL;
}

/* *out (malloc'd; caller frees) = label(kind) || 0x00 || bytes. */
static int labeled(uint8_t **out, size_t *outlen, synod_sig_kind_t kind,
                   const uint8_t *bytes, size_t len) {
  const char *label = synod_sig_label(kind);
  *out = NULL;
  *outlen = 0;
  if (!label || (len && !bytes))
    return SYNOD_EINVAL;
  if (len > SYNOD_SIG_MAX_BYTES)
    return SYNOD_ETOOBIG;
  size_t labellen = strlen(label);
  uint8_t *m = malloc(labellen + 1 + len);
  if (!m)
    return SYNOD_ENOMEM;
  memcpy(m, label, labellen);
  m[labellen] = 0x00;
  if (len)
    memcpy(m + labellen + 1, bytes, len);
  *out = m;
  *outlen = labellen + 1 + len;
  return 0;
}

int synod_sig_sign(uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                   synod_sig_kind_t kind, const uint8_t *bytes, size_t len,
                   const uint8_t sk[static SYNOD_ED25519_SECRET_BYTES]) {
  uint8_t *m;
  size_t mlen;
  int rc = labeled(&m, &mlen, kind, bytes, len);
  if (rc == 0)
    rc = synod_ed25519_sign(sig, m, mlen, sk);
  free(m);
  if (rc != 0)
    memset(sig, 0, SYNOD_ED25519_SIG_BYTES);
  return rc;
}

int synod_sig_sign_by(uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                      synod_sig_kind_t kind, const uint8_t *bytes, size_t len,
                      const synod_ed25519_signer_t *signer) {
  uint8_t *m;
  size_t mlen;
  int rc = labeled(&m, &mlen, kind, bytes, len);
  if (rc == 0)
    rc = synod_ed25519_signer_sign(signer, sig, m, mlen);
  free(m);
  if (rc != 0)
    memset(sig, 0, SYNOD_ED25519_SIG_BYTES);
  return rc;
}

int synod_sig_verify(const uint8_t sig[static SYNOD_ED25519_SIG_BYTES],
                     synod_sig_kind_t kind, const uint8_t *bytes, size_t len,
                     const uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]) {
  uint8_t *m;
  size_t mlen;
  int rc = labeled(&m, &mlen, kind, bytes, len);
  if (rc == 0)
    rc = synod_ed25519_verify(sig, m, mlen, pk);
  free(m);
  return rc;
}
