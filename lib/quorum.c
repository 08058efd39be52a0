/* The client's key decision; the rules are in synod/quorum.h. */
#include "synod/quorum.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per trust-set relay, while deciding. */
typedef struct relay_state {
  const Synod__V1__LookupAnswer *answer;
  int valid;
  int guilty;
  size_t resets;
  const Synod__V1__Announcement *head; /* NULL: the pin, no links sent */
  synod_announce_info_t info;          /* of head */
} relay_state_t;

const char *synod_relay_status_name(synod_relay_status_t s) {
  switch (s) {
  case SYNOD_RELAY_UNREACHABLE:
    return "unreachable";
  case SYNOD_RELAY_AGREED:
    return "agreed";
  case SYNOD_RELAY_DISAGREED:
    return "disagreed";
  case SYNOD_RELAY_NO_QUORUM:
    return "no quorum";
  case SYNOD_RELAY_STALE:
    return "stale";
  case SYNOD_RELAY_BAD_SIGNATURE:
    return "bad signature";
  case SYNOD_RELAY_BAD_ANSWER:
    return "bad answer";
  case SYNOD_RELAY_BAD_ANNOUNCEMENT:
    return "bad announcement";
  case SYNOD_RELAY_BAD_COUNTERSIGNATURE:
    return "bad countersignature";
  case SYNOD_RELAY_ROLLED_BACK:
    return "rolled back";
  case SYNOD_RELAY_FORKED:
    return "forked";
  case SYNOD_RELAY_EQUIVOCATOR:
    return "equivocator";
  }
  return "unknown";
}

void synod_quorum_result_free(synod_quorum_result_t *r) {
  if (r == NULL)
    return;
  free(r->relays);
  r->relays = NULL;
  r->nrelays = 0;
}

__attribute__((format(printf, 2, 3))) static void
append(synod_quorum_result_t *out, const char *fmt, ...) {
  size_t used = strlen(out->reason);
  if (used + 1 >= sizeof out->reason)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->reason + used, sizeof out->reason - used, fmt, ap);
  va_end(ap);
}

static int trust_index(const synod_quorum_input_t *in, const char *name) {
  for (size_t i = 0; i < in->ntrust; i++)
    if (strcmp(in->trust[i].name, name) == 0)
      return (int)i;
  return -1;
}

static int check_input(const synod_quorum_input_t *in) {
  if (in == NULL || synod_userid_parse(in->user_id, NULL, NULL) != 0 ||
      in->k < 2 || in->ntrust == 0 || in->trust == NULL ||
      in->ntrust > (size_t)INT32_MAX || (in->nanswers && !in->answers) ||
      (in->nnamespace && !in->namespace_keys))
    return SYNOD_EINVAL;
  for (size_t i = 0; i < in->ntrust; i++) {
    const synod_trusted_relay_t *t = &in->trust[i];
    if (t->name == NULL || synod_relay_name_check(t->name) != 0 ||
        t->operator_name == NULL || t->operator_name[0] == '\0')
      return SYNOD_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(t->name, in->trust[j].name) == 0 ||
          memcmp(t->key, in->trust[j].key, sizeof t->key) == 0)
        return SYNOD_EINVAL;
  }
  for (size_t i = 0; i < in->nnamespace; i++) {
    const char *n = in->namespace_keys[i].name;
    if (n == NULL || synod_relay_name_check(n) != 0 || trust_index(in, n) >= 0)
      return SYNOD_EINVAL;
  }
  for (size_t i = 0; i < in->nanswers; i++) {
    const char *n = in->answers[i].relay_name;
    if (n == NULL || trust_index(in, n) < 0)
      return SYNOD_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(n, in->answers[j].relay_name) == 0)
        return SYNOD_EINVAL;
  }
  return 0;
}

/* Step 1: every proof in every answer. */
static void scan_proofs(synod_quorum_result_t *out, relay_state_t *st,
                        const synod_quorum_input_t *in,
                        const synod_relay_key_t *keys, size_t nkeys,
                        const char *home) {
  for (size_t i = 0; i < in->ntrust; i++) {
    const Synod__V1__LookupAnswer *la = st[i].answer;
    if (la == NULL)
      continue;
    for (size_t p = 0; p < la->n_proofs; p++) {
      synod_proof_verdict_t v;
      if (synod_proof_verify(&v, la->proofs[p], keys, nkeys) != 0) {
        out->relays[i].proofs_rejected++;
        continue;
      }
      out->relays[i].proofs_valid++;
      if (v.kind ==
          SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT) {
        if (strcmp(v.user_id, in->user_id) == 0)
          out->flags |= SYNOD_QUORUM_USER_EQUIVOCATED;
        continue;
      }
      int g = trust_index(in, v.relay_name);
      if (g >= 0)
        st[g].guilty = 1;
      if (strcmp(v.relay_name, home) == 0)
        out->flags |= SYNOD_QUORUM_HOME_EQUIVOCATED;
    }
  }
}

/* Step 2, countersignatures: every link has one by the home relay. */
static int countersigned(const Synod__V1__LookupAnswer *la,
                         const synod_announce_info_t *head,
                         const uint8_t *home_key, const char *user_id,
                         uint64_t now) {
  size_t n = la->n_announcements;
  uint64_t first = head->version - (n - 1); /* links are consecutive */
  int bad_sig = 0;
  if (home_key == NULL)
    return SYNOD_EUNKNOWNPEER;
  uint8_t *covered = calloc(n, 1);
  uint8_t(*hashes)[SYNOD_SHA256_BYTES] = malloc(n * SYNOD_SHA256_BYTES);
  int rc = 0;
  if (covered == NULL || hashes == NULL) {
    rc = SYNOD_ENOMEM;
    goto out;
  }
  for (size_t j = 0; j < n; j++)
    synod_announce_hash(hashes[j], la->announcements[j]->body.data,
                        la->announcements[j]->body.len);
  for (size_t c = 0; c < la->n_countersignatures; c++) {
    synod_countersig_info_t ci;
    if (synod_countersig_verify(&ci, la->countersignatures[c], home_key, now) !=
        0) {
      bad_sig = 1;
      continue;
    }
    if (strcmp(ci.user_id, user_id) != 0 || ci.version < first ||
        ci.version > head->version)
      continue;
    size_t j = (size_t)(ci.version - first);
    if (memcmp(ci.announcement_hash, hashes[j], SYNOD_SHA256_BYTES) == 0)
      covered[j] = 1;
  }
  for (size_t j = 0; j < n; j++)
    if (!covered[j]) {
      rc = bad_sig ? SYNOD_EVERIFY : SYNOD_ENOENT;
      break;
    }
out:
  free(covered);
  free(hashes);
  return rc;
}

/* Step 2 for one relay: its report and whether its answer counts. */
static void judge(synod_relay_report_t *rep, relay_state_t *s,
                  const synod_trusted_relay_t *t,
                  const synod_quorum_input_t *in, const uint8_t *home_key,
                  const synod_chain_head_t *pinhead) {
  const Synod__V1__LookupAnswer *la = s->answer;
  const synod_pin_t *pin = in->pin;
  synod_lookup_info_t li;
  synod_chain_outcome_t co;

  rep->status = SYNOD_RELAY_UNREACHABLE;
  if (la == NULL)
    return;
  int rc = synod_lookup_verify(&li, la, t->key, in->now, in->window);
  if (rc != 0 && rc != SYNOD_ESTALE) {
    rep->status = rc == SYNOD_EVERIFY || la->signature.len != 64
                      ? SYNOD_RELAY_BAD_SIGNATURE
                      : SYNOD_RELAY_BAD_ANSWER;
    rep->error = rc;
    return;
  }
  rep->said = 1;
  rep->version = li.version;
  memcpy(rep->head_hash, li.head_hash, sizeof rep->head_hash);
  rep->time = li.time;
  if (strcmp(li.relay_name, t->name) != 0 ||
      strcmp(li.user_id, in->user_id) != 0) {
    rep->status = SYNOD_RELAY_BAD_ANSWER;
    rep->error = SYNOD_EBADKEY;
    return;
  }
  if (rc == SYNOD_ESTALE) {
    rep->status = SYNOD_RELAY_STALE;
    rep->error = rc;
    return;
  }
  if (pin != NULL && li.version < pin->version) {
    rep->status = SYNOD_RELAY_ROLLED_BACK;
    rep->error = SYNOD_EROLLBACK;
    return;
  }
  if (pin != NULL && li.version == pin->version) {
    if (memcmp(li.head_hash, pin->hash, SYNOD_SHA256_BYTES) != 0) {
      rep->status = SYNOD_RELAY_FORKED;
      rep->error = SYNOD_EEQUIVOCATION;
      return;
    }
    if (la->n_announcements == 0) {
      s->valid = 1; /* the pin itself; nothing new to check */
      return;
    }
  }
  if (li.version == 0) { /* "none known", no pin (else rolled back) */
    s->valid = 1;
    return;
  }
  if (la->n_announcements == 0) {
    rep->status = SYNOD_RELAY_BAD_ANSWER;
    rep->error = SYNOD_ENOENT;
    return;
  }
  rc = synod_chain_check(
      &co, in->user_id, pin ? pinhead : NULL,
      (const Synod__V1__Announcement *const *)la->announcements,
      la->n_announcements, in->now);
  if (rc != 0) {
    rep->status = rc == SYNOD_EEQUIVOCATION ? SYNOD_RELAY_FORKED
                  : rc == SYNOD_EROLLBACK   ? SYNOD_RELAY_ROLLED_BACK
                                            : SYNOD_RELAY_BAD_ANNOUNCEMENT;
    rep->error = rc;
    return;
  }
  if (co.head.version != li.version ||
      memcmp(co.head.hash, li.head_hash, SYNOD_SHA256_BYTES) != 0) {
    rep->status = SYNOD_RELAY_BAD_ANSWER;
    rep->error = SYNOD_ECHAIN; /* the links do not end at the signed head */
    return;
  }
  rc = countersigned(la, &co.head, home_key, in->user_id, in->now);
  if (rc != 0) {
    rep->status = SYNOD_RELAY_BAD_COUNTERSIGNATURE;
    rep->error = rc;
    return;
  }
  s->valid = 1;
  s->resets = co.resets;
  s->head = la->announcements[la->n_announcements - 1];
  s->info = co.head;
}

/* Distinct operators among the valid relays saying (version, hash). */
static size_t weight(const synod_quorum_input_t *in, const relay_state_t *st,
                     const synod_quorum_result_t *out, uint64_t version,
                     const uint8_t *hash) {
  size_t w = 0;
  for (size_t i = 0; i < in->ntrust; i++) {
    if (!st[i].valid || out->relays[i].version != version ||
        memcmp(out->relays[i].head_hash, hash, SYNOD_SHA256_BYTES) != 0)
      continue;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen =
          st[j].valid && out->relays[j].version == version &&
          memcmp(out->relays[j].head_hash, hash, SYNOD_SHA256_BYTES) == 0 &&
          strcmp(in->trust[j].operator_name, in->trust[i].operator_name) == 0;
    w += !seen;
  }
  return w;
}

/* Distinct operators of relays with status s. */
static size_t operators_with(const synod_quorum_input_t *in,
                             const synod_quorum_result_t *out,
                             synod_relay_status_t s) {
  size_t w = 0;
  for (size_t i = 0; i < in->ntrust; i++) {
    if (out->relays[i].status != s)
      continue;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen =
          out->relays[j].status == s &&
          strcmp(in->trust[j].operator_name, in->trust[i].operator_name) == 0;
    w += !seen;
  }
  return w;
}

static void append_relays(synod_quorum_result_t *out) {
  for (size_t i = 0; i < out->nrelays; i++) {
    const synod_relay_report_t *r = &out->relays[i];
    append(out, "%s %s (%s): %s", i ? ";" : "", r->relay_name, r->operator_name,
           synod_relay_status_name(r->status));
    if (r->said)
      append(out, ", says version %llu %02x%02x%02x%02x",
             (unsigned long long)r->version, r->head_hash[0], r->head_hash[1],
             r->head_hash[2], r->head_hash[3]);
    if (r->error)
      append(out, " [%s]", synod_err_name(r->error));
  }
}

static int refuse(synod_quorum_result_t *out, int code) {
  out->error = code;
  return code;
}

int synod_quorum_decide(synod_quorum_result_t *out,
                        const synod_quorum_input_t *in) {
  relay_state_t *st = NULL;
  synod_relay_key_t *keys = NULL;
  synod_chain_head_t pinhead;
  const char *home = NULL;
  const uint8_t *home_key = NULL;
  size_t nops = 0;

  memset(out, 0, sizeof *out);
  memset(&pinhead, 0, sizeof pinhead);
  if (check_input(in) != 0) {
    append(out, "invalid input to the quorum decision");
    return refuse(out, SYNOD_EINVAL);
  }
  if (in->pin) {
    out->pin = *in->pin;
    out->has_pin = 1;
    pinhead.version = in->pin->version;
    memcpy(pinhead.hash, in->pin->hash, sizeof pinhead.hash);
    memcpy(pinhead.identity_key, in->pin->identity_key,
           sizeof pinhead.identity_key);
    pinhead.time = in->pin->time;
  }
  (void)synod_userid_parse(in->user_id, NULL, &home);
  st = calloc(in->ntrust, sizeof *st);
  keys = calloc(in->ntrust + in->nnamespace, sizeof *keys);
  out->relays = calloc(in->ntrust, sizeof *out->relays);
  if (st == NULL || keys == NULL || out->relays == NULL) {
    free(st);
    free(keys);
    synod_quorum_result_free(out);
    append(out, "out of memory");
    return refuse(out, SYNOD_ENOMEM);
  }
  out->nrelays = in->ntrust;
  for (size_t i = 0; i < in->ntrust; i++) {
    keys[i].name = in->trust[i].name;
    memcpy(keys[i].key, in->trust[i].key, sizeof keys[i].key);
    out->relays[i].relay_name = in->trust[i].name;
    out->relays[i].operator_name = in->trust[i].operator_name;
    if (strcmp(in->trust[i].name, home) == 0)
      home_key = in->trust[i].key;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen =
          strcmp(in->trust[j].operator_name, in->trust[i].operator_name) == 0;
    nops += !seen;
  }
  for (size_t i = 0; i < in->nnamespace; i++) {
    keys[in->ntrust + i] = in->namespace_keys[i];
    if (strcmp(in->namespace_keys[i].name, home) == 0)
      home_key = in->namespace_keys[i].key;
  }
  for (size_t a = 0; a < in->nanswers; a++)
    st[trust_index(in, in->answers[a].relay_name)].answer =
        in->answers[a].answer;

  /* 1. proofs; 2. each relay. */
  scan_proofs(out, st, in, keys, in->ntrust + in->nnamespace, home);
  for (size_t i = 0; i < in->ntrust; i++) {
    judge(&out->relays[i], &st[i], &in->trust[i], in, home_key, &pinhead);
    if (st[i].guilty) {
      st[i].valid = 0;
      out->relays[i].status = SYNOD_RELAY_EQUIVOCATOR;
      out->relays[i].error = SYNOD_EEQUIVOCATION;
    }
  }

  /* 3, 4. The newest head with k distinct operators. */
  int best = -1, tie = 0;
  for (size_t i = 0; i < in->ntrust; i++) {
    if (!st[i].valid)
      continue;
    const synod_relay_report_t *r = &out->relays[i];
    if (weight(in, st, out, r->version, r->head_hash) < in->k)
      continue;
    if (best < 0 || r->version > out->relays[best].version) {
      best = (int)i;
      tie = 0;
    } else if (r->version == out->relays[best].version &&
               memcmp(r->head_hash, out->relays[best].head_hash,
                      SYNOD_SHA256_BYTES) != 0) {
      tie = 1;
    }
  }
  int rc = 0;
  if (best >= 0 && !tie) {
    const synod_relay_report_t *b = &out->relays[best];
    uint64_t version = b->version;
    uint8_t hash[SYNOD_SHA256_BYTES];
    memcpy(hash, b->head_hash, sizeof hash);
    out->operators = weight(in, st, out, version, hash);
    size_t resets = 0;
    for (size_t i = 0; i < in->ntrust; i++) {
      if (!st[i].valid)
        continue;
      int same = out->relays[i].version == version &&
                 memcmp(out->relays[i].head_hash, hash, sizeof hash) == 0;
      out->relays[i].status = same ? SYNOD_RELAY_AGREED : SYNOD_RELAY_DISAGREED;
      if (same && st[i].resets > resets)
        resets = st[i].resets;
      if (same && out->announcement == NULL && st[i].head != NULL) {
        out->announcement = st[i].head;
        out->info = st[i].info;
      }
    }
    if (version == 0) {
      append(out, "refused: %zu operators say %s has no announcement;",
             out->operators, in->user_id);
      rc = refuse(out, SYNOD_EUNKNOWNUSER);
    } else {
      out->version = version;
      memcpy(out->hash, hash, sizeof hash);
      if (resets)
        out->flags |= SYNOD_QUORUM_RESET;
      if (in->pin == NULL)
        out->flags |= SYNOD_QUORUM_FIRST_CONTACT;
      else if (version == in->pin->version)
        out->flags |= SYNOD_QUORUM_UNCHANGED;
      int verified =
          in->pin != NULL && in->pin->verified &&
          !(out->flags & (SYNOD_QUORUM_RESET | SYNOD_QUORUM_USER_EQUIVOCATED));
      if (in->pin != NULL && in->pin->verified && !verified)
        out->flags |= SYNOD_QUORUM_VERIFIED_CLEARED;
      if (out->announcement != NULL) {
        synod_chain_head_t h;
        synod_chain_head_from_info(&h, &out->info);
        out->pin.version = h.version;
        memcpy(out->pin.hash, h.hash, sizeof h.hash);
        memcpy(out->pin.identity_key, h.identity_key, sizeof h.identity_key);
        out->pin.time = h.time;
      }
      out->pin.verified = verified;
      out->has_pin = 1;
      append(out,
             "accepted version %llu of %s: %zu distinct operators agree "
             "(k=%u)",
             (unsigned long long)version, in->user_id, out->operators, in->k);
      if (resets)
        append(out, "; WARNING: identity key reset without continuity");
      if (out->flags & SYNOD_QUORUM_USER_EQUIVOCATED)
        append(out, "; WARNING: the identity key signed two announcements "
                    "for one version");
      if (out->flags & SYNOD_QUORUM_HOME_EQUIVOCATED)
        append(out, "; WARNING: home relay %s is a proven equivocator", home);
      if (out->flags & SYNOD_QUORUM_VERIFIED_CLEARED)
        append(out, "; verified state cleared");
      append(out, ";");
    }
  } else {
    for (size_t i = 0; i < in->ntrust; i++)
      if (st[i].valid)
        out->relays[i].status = SYNOD_RELAY_NO_QUORUM;
    if (tie) {
      append(out,
             "refused: two different heads of %s at one version each "
             "have %u operators;",
             in->user_id, in->k);
      rc = refuse(out, SYNOD_EEQUIVOCATION);
    } else if (operators_with(in, out, SYNOD_RELAY_ROLLED_BACK) >= in->k) {
      append(out,
             "refused: relays of %u operators answer below the pinned "
             "version %llu of %s;",
             in->k, (unsigned long long)(in->pin ? in->pin->version : 0),
             in->user_id);
      rc = refuse(out, SYNOD_EROLLBACK);
    } else if (operators_with(in, out, SYNOD_RELAY_STALE) >= in->k) {
      append(out, "refused: answers of %u operators about %s are stale;", in->k,
             in->user_id);
      rc = refuse(out, SYNOD_ESTALE);
    } else if (home_key == NULL) {
      append(out,
             "refused: the key of %s's home relay %s is not pinned, so "
             "its countersignatures cannot be checked;",
             in->user_id, home);
      rc = refuse(out, SYNOD_EUNKNOWNPEER);
    } else {
      if (in->k > nops)
        append(out, "refused: k=%u but the trust set has only %zu operators;",
               in->k, nops);
      else
        append(out, "refused: no head of %s has %u distinct operators;",
               in->user_id, in->k);
      rc = refuse(out, SYNOD_ENOQUORUM);
    }
  }
  append_relays(out);
  free(st);
  free(keys);
  return rc;
}
