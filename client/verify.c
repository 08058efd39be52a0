/*
 * Safety numbers: a short code derived from two users' identity keys that
 * both compute alike, to compare in person (include/synod/client.h).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SAFETY_LABEL "synod/v1/safety-number"

int synod_safety_number(
    char out[static SYNOD_SAFETY_NUMBER_MAX], const char *user_a,
    const uint8_t key_a[static SYNOD_ED25519_PUBLIC_BYTES], const char *user_b,
    const uint8_t key_b[static SYNOD_ED25519_PUBLIC_BYTES]) {
  out[0] = '\0';
  if (!user_a || !user_b || synod_userid_parse(user_a, NULL, NULL) != 0 ||
      synod_userid_parse(user_b, NULL, NULL) != 0)
    return SYNOD_EINVAL;
  /* The same order on both sides: by user id, then by key. */
  int cmp = strcmp(user_a, user_b);
  if (cmp == 0)
    cmp = memcmp(key_a, key_b, SYNOD_ED25519_PUBLIC_BYTES);
  const char *u[2] = {cmp <= 0 ? user_a : user_b, cmp <= 0 ? user_b : user_a};
  const uint8_t *k[2] = {cmp <= 0 ? key_a : key_b, cmp <= 0 ? key_b : key_a};
  uint8_t buf[sizeof SAFETY_LABEL + 2 * (2 + SYNOD_USERID_MAX + 32)];
  size_t n = 0;
  memcpy(buf, SAFETY_LABEL, sizeof SAFETY_LABEL); /* with its NUL */
  n = sizeof SAFETY_LABEL;
  for (int i = 0; i < 2; i++) {
    size_t l = strlen(u[i]);
    buf[n++] = (uint8_t)(l >> 8);
    buf[n++] = (uint8_t)l;
    memcpy(buf + n, u[i], l);
    n += l;
    memcpy(buf + n, k[i], 32);
    n += 32;
  }
  uint8_t h[SYNOD_SHA256_BYTES];
  int rc = synod_sha256(h, buf, n);
  if (rc != 0)
    return rc;
  /* 6 groups of 5 digits, each from 5 bytes of the hash (about 100 bits). */
  size_t o = 0;
  for (int g = 0; g < 6; g++) {
    uint64_t v = 0;
    for (int j = 0; j < 5; j++)
      v = (v << 8) | h[5 * g + j];
    o += (size_t)snprintf(out + o, SYNOD_SAFETY_NUMBER_MAX - o, "%s%05u",
                          g ? " " : "", (unsigned)(v % 100000u));
  }
  return 0;
}

int synod_client_safety_number(const synod_client_t *c, const char *user_id,
                               char out[static SYNOD_SAFETY_NUMBER_MAX]) {
  out[0] = '\0';
  synod_client_pin_t pin;
  int rc = synod_client_pin_get(c, user_id, &pin);
  if (rc != 0)
    return rc;
  return synod_safety_number(out, c->user_id, c->identity_pk, user_id,
                             pin.pin.identity_key);
}
