/*
 * Relay policy as pure functions of their inputs (DESIGN.md section 6):
 * retry schedules, rate limits, envelope admission and expiry. Nothing here
 * touches a socket, the loop or the database, so every rule is tested
 * directly.
 */
#ifndef SYNOD_RELAY_POLICY_H
#define SYNOD_RELAY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "synod.pb-c.h"

/*
 * Exponential backoff with full jitter: a delay drawn uniformly from
 * [min_ms, min(max_ms, min_ms * 2^attempt)], where rand01 in [0, 1) is the
 * caller's random draw. attempt 0 is the first retry.
 */
uint64_t policy_backoff_ms(unsigned int attempt, uint64_t min_ms,
                           uint64_t max_ms, double rand01);

/* A token bucket: rate tokens per second up to burst. */
typedef struct policy_bucket {
  double tokens;
  uint64_t last_ms;
} policy_bucket_t;

/* A full bucket at now_ms. */
void policy_bucket_init(policy_bucket_t *b, uint32_t burst, uint64_t now_ms);

/* Takes one token: 0 on success, SYNOD_ERATE when the bucket is empty. */
int policy_bucket_take(policy_bucket_t *b, uint32_t rate, uint32_t burst,
                       uint64_t now_ms);

/* Limits an envelope must meet; from the relay configuration. */
typedef struct policy_envelope_limits {
  size_t max_envelope_bytes; /* packed size of the envelope */
  uint32_t default_ttl;      /* seconds, used when the sender gives 0 */
  uint32_t max_ttl;          /* seconds */
  size_t max_devices;        /* ciphertexts per envelope */
} policy_envelope_limits_t;

#define POLICY_MAX_DEVICES      16
#define POLICY_MESSAGE_ID_BYTES 16

/*
 * Admission of a client's Submit: message id of 16 bytes, a syntactically
 * valid recipient, 1..max_devices ciphertexts each with a 32-byte enc and a
 * non-empty ct, no duplicate device ids, packed size within the limit, and
 * a TTL no greater than max_ttl. Returns 0, SYNOD_EPARSE (malformed),
 * SYNOD_ETOOBIG (size) or SYNOD_EINVAL (TTL). *ttl receives the effective
 * TTL (the default when the sender gave 0).
 */
int policy_check_envelope(const Synod__V1__Envelope *env,
                          const policy_envelope_limits_t *lim, uint32_t *ttl);

/* Expiry instant of a message accepted at time_s with ttl_s, saturating. */
uint64_t policy_expires_at(uint64_t time_s, uint32_t ttl_s);

#endif
