/* Pure relay policy; see policy.h. */
#include "policy.h"

#include <string.h>

#include "synod/err.h"
#include "synod/userid.h"

uint64_t policy_backoff_ms(unsigned int attempt, uint64_t min_ms,
                           uint64_t max_ms, double rand01) {
  if (max_ms < min_ms)
    max_ms = min_ms;
  uint64_t ceiling = min_ms;
  for (unsigned int i = 0; i < attempt && ceiling < max_ms; i++)
    ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
  if (ceiling > max_ms)
    ceiling = max_ms;
  if (rand01 < 0)
    rand01 = 0;
  if (rand01 >= 1)
    rand01 = 0.999999;
  return min_ms + (uint64_t)((double)(ceiling - min_ms) * rand01);
}

void policy_bucket_init(policy_bucket_t *b, uint32_t burst, uint64_t now_ms) {
  b->tokens = burst;
  b->last_ms = now_ms;
}

int policy_bucket_take(policy_bucket_t *b, uint32_t rate, uint32_t burst,
                       uint64_t now_ms) {
  if (now_ms > b->last_ms) {
    b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
    if (b->tokens > burst)
      b->tokens = burst;
    b->last_ms = now_ms;
  }
  if (b->tokens < 1.0)
    return SYNOD_ERATE;
  b->tokens -= 1.0;
  return 0;
}

int policy_check_envelope(const Synod__V1__Envelope *env,
                          const policy_envelope_limits_t *lim, uint32_t *ttl) {
  if (!env || env->message_id.len != POLICY_MESSAGE_ID_BYTES ||
      !env->recipient || synod_userid_parse(env->recipient, NULL, NULL) != 0)
    return SYNOD_EPARSE;
  size_t max_dev = lim->max_devices ? lim->max_devices : POLICY_MAX_DEVICES;
  if (env->n_ciphertexts == 0)
    return SYNOD_EPARSE;
  if (env->n_ciphertexts > max_dev)
    return SYNOD_ETOOBIG;
  for (size_t i = 0; i < env->n_ciphertexts; i++) {
    const Synod__V1__DeviceCiphertext *c = env->ciphertexts[i];
    if (!c || c->enc.len != 32 || c->ct.len == 0)
      return SYNOD_EPARSE;
    for (size_t j = 0; j < i; j++)
      if (env->ciphertexts[j]->device_id == c->device_id)
        return SYNOD_EPARSE;
  }
  if (synod__v1__envelope__get_packed_size(env) > lim->max_envelope_bytes)
    return SYNOD_ETOOBIG;
  uint32_t t = env->ttl ? env->ttl : lim->default_ttl;
  if (t == 0 || t > lim->max_ttl)
    return SYNOD_EINVAL;
  *ttl = t;
  return 0;
}

uint64_t policy_expires_at(uint64_t time_s, uint32_t ttl_s) {
  return time_s > UINT64_MAX - ttl_s ? UINT64_MAX : time_s + ttl_s;
}
