/*
 * End-to-end sealed messages (proto/README.md 8.1; DESIGN.md 4). Pure:
 * bytes and values in, an envelope or a verified message out; no socket,
 * no clock of its own (the caller passes `now`, unix seconds UTC), no
 * state (deduplication by message id is the caller's job).
 *
 * Sealing. For each device key of the recipient's accepted announcement
 * the sender builds one MessageBody {sender, recipient,
 * recipient_device_key = THAT device's key, message_id, time,
 * content_type, body}, signs its bytes with the identity key (label
 * "synod/v1/message"), packs SealedMessage{body, signature} and seals
 * those bytes with HPKE base mode, DHKEM(X25519, HKDF-SHA256),
 * HKDF-SHA256, ChaCha20-Poly1305, info = the 23 bytes
 * "synod/v1/sealed-message", empty aad, to the device key: one
 * DeviceCiphertext{device_id, enc, ct} per device, ct being the AEAD
 * ciphertext and tag of the single message (sequence number 0).
 *
 * Opening, in this order, so that nothing from the plaintext is looked at
 * before it is authenticated and nothing signed is believed before it is
 * bound to this envelope and this device:
 *   1. the envelope: message_id 16 bytes (EPARSE), recipient is us
 *      (EDENIED), exactly one ciphertext for our device_id (none: ENOENT,
 *      several: EPARSE), enc 32 bytes and ct at least the 16-byte tag
 *      (EPARSE);
 *   2. HPKE open with our device's secret key (EDECRYPT: tampered enc or
 *      ct, sealed to another key, another info or aad);
 *   3. parse SealedMessage, signature 64 bytes (EPARSE);
 *   4. verify the signature over the received body bytes with the
 *      sender's identity key that the CALLER accepted through its quorum
 *      lookup of envelope.sender (EVERIFY), before parsing the body;
 *   5. parse MessageBody: valid user ids, 32-byte recipient_device_key,
 *      16-byte message_id, non-empty content_type (EPARSE);
 *   6. bindings, all EDENIED (an authentic statement that is not about
 *      this envelope): sender == envelope.sender (the lookup was for that
 *      user), recipient == us (a copy re-sealed to someone else by its
 *      first recipient or a relay), recipient_device_key == our device's
 *      public key (a copy meant for another device or an old key),
 *      message_id == envelope.message_id (a replay under a fresh id that
 *      would slip past deduplication);
 *   7. time at most SYNOD_MESSAGE_MAX_SKEW seconds after now (EINVAL, as
 *      for every dated statement, README 12). There is no lower bound: a
 *      message may wait in an inbox for its TTL.
 * Every refusal also names the failed check in out->why (a static string)
 * for logs and the one-sentence reason a user is shown.
 *
 * Secrets (the identity seed, the device secret key, the plaintexts this
 * module handles on the heap or stack) are wiped after use.
 */
#ifndef SYNOD_MESSAGE_H
#define SYNOD_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"
#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/hpke.h"
#include "synod/userid.h"

#define SYNOD_MESSAGE_ID_BYTES    16
#define SYNOD_MESSAGE_MAX_DEVICES 16 /* ciphertexts per envelope */
/* Seconds a message may be dated after the receiver's clock. */
#define SYNOD_MESSAGE_MAX_SKEW 300
/* The HPKE info string, without a terminator (23 bytes). */
#define SYNOD_MESSAGE_HPKE_INFO "synod/v1/sealed-message"

/* One device key of the recipient's accepted announcement. */
typedef struct synod_message_device {
  uint32_t device_id;
  uint8_t x25519_key[SYNOD_X25519_BYTES];
} synod_message_device_t;

/* What to seal. Every pointer is borrowed for the call only. */
typedef struct synod_message_params {
  const char *sender;    /* our user id */
  const char *recipient; /* their user id */
  const synod_message_device_t *devices;
  size_t ndevices; /* 1..SYNOD_MESSAGE_MAX_DEVICES, distinct device_id */
  /* SYNOD_MESSAGE_ID_BYTES bytes, or NULL: drawn from the CSPRNG. */
  const uint8_t *message_id;
  uint64_t time;            /* the sender's clock */
  uint32_t ttl;             /* Envelope.ttl; 0: the relay's default */
  const char *content_type; /* non-empty UTF-8 without NUL */
  const uint8_t *body;      /* may be NULL when body_len is 0 */
  size_t body_len;
} synod_message_params_t;

/*
 * A sealed message: `envelope` is ready to put in a Submit and pack. It
 * points into this struct (recipient, sender, message_id, the
 * DeviceCiphertext array, the enc keys) and at one malloc'd ct buffer per
 * device, all owned by the struct: the struct must not be copied or moved
 * once sealed, the envelope must not be freed with protobuf-c or written
 * through, and synod_message_sealed_free() releases everything.
 * envelope.sender is set to the sender's id (the sender's relay overwrites
 * it anyway); sender_relay and time are left empty for that relay to set.
 */
typedef struct synod_message_sealed {
  Synod__V1__Envelope envelope;
  uint8_t message_id[SYNOD_MESSAGE_ID_BYTES];
  char sender[SYNOD_USERID_MAX + 1];
  char recipient[SYNOD_USERID_MAX + 1];
  size_t ncopies;
  Synod__V1__DeviceCiphertext copies[SYNOD_MESSAGE_MAX_DEVICES];
  Synod__V1__DeviceCiphertext *copy_ptrs[SYNOD_MESSAGE_MAX_DEVICES];
  uint8_t enc[SYNOD_MESSAGE_MAX_DEVICES][SYNOD_HPKE_ENC_BYTES];
} synod_message_sealed_t;

/*
 * Seals p to every device in p->devices, signing with the identity seed
 * identity_sk (whose public key the recipient must have accepted for
 * p->sender). Each MessageBody is serialised once: the bytes signed are the
 * bytes sealed. On success *out owns the result; on failure it is zeroed
 * and owns nothing.
 * Errors: SYNOD_EINVAL (NULL argument, invalid user id, no device,
 * duplicate device_id, empty or non-UTF-8 content_type), SYNOD_ETOOBIG
 * (more than SYNOD_MESSAGE_MAX_DEVICES devices, a body over
 * SYNOD_SIG_MAX_BYTES), SYNOD_ECRYPTO (a low-order device key, a library
 * failure), SYNOD_ENOMEM.
 */
SYNOD_WUR int synod_message_seal(
    synod_message_sealed_t *out, const synod_message_params_t *p,
    const uint8_t identity_sk[static SYNOD_ED25519_SECRET_BYTES]);

/* Releases what s owns and zeroes it; NULL and a zeroed struct are fine. */
void synod_message_sealed_free(synod_message_sealed_t *s);

/* The receiving device. Borrowed for the call only. */
typedef struct synod_message_self {
  const char *user_id; /* our user id */
  uint32_t device_id;  /* our DeviceKey.device_id */
  /* Our device's X25519 secret key; its public key, which MessageBody must
   * name, is derived from it, so the two cannot disagree. */
  const uint8_t *x25519_sk; /* SYNOD_X25519_BYTES */
} synod_message_self_t;

/* A verified message. content_type and body are malloc'd copies owned by
 * the struct (synod_message_opened_free wipes and frees them). */
typedef struct synod_message_opened {
  char sender[SYNOD_USERID_MAX + 1]; /* equals envelope.sender */
  uint8_t message_id[SYNOD_MESSAGE_ID_BYTES];
  uint64_t time;      /* MessageBody.time, the sender's clock */
  char *content_type; /* NUL-terminated, non-empty, UTF-8 */
  uint8_t *body;      /* never NULL on success, even when body_len is 0 */
  size_t body_len;
  /* NULL on success; on failure a static string naming the check that
   * failed (e.g. "recipient", "signature"), everything else zeroed. */
  const char *why;
} synod_message_opened_t;

/*
 * Opens our device's copy of env and checks it as listed at the top.
 * sender_pk is the identity key of env->sender as accepted by the caller's
 * quorum lookup: the caller must not take it from the message. now is the
 * receiver's clock. Nothing in env is kept.
 * Errors: SYNOD_EINVAL (NULL argument, invalid our user id; a message
 * dated in the future), SYNOD_ENOENT (no copy for our device),
 * SYNOD_EPARSE, SYNOD_EDECRYPT, SYNOD_EVERIFY, SYNOD_EDENIED (bindings),
 * SYNOD_ENOMEM, SYNOD_ECRYPTO. On any error *out holds only `why`.
 */
SYNOD_WUR int
synod_message_open(synod_message_opened_t *out, const Synod__V1__Envelope *env,
                   const synod_message_self_t *self,
                   const uint8_t sender_pk[static SYNOD_ED25519_PUBLIC_BYTES],
                   uint64_t now);

/* Wipes and frees what m owns and zeroes it; NULL is ignored. */
void synod_message_opened_free(synod_message_opened_t *m);

#endif
