/*
 * Self-monitoring (DESIGN.md 3, "Monitoring"; proto/README.md 7.4): ask
 * every relay of the trust set for our own user and compare each signed
 * head with the announcements this profile signed. A head we did not sign
 * is the footprint of a substitution, whoever made it (the home relay
 * registering a key for us, a relay inventing one); the relay's signed
 * answer is the evidence, and is kept in the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "synod/announce.h"
#include "synod/statement.h"
#include "synod/wire.h"

#define DEFAULT_TIMEOUT_MS 5000

const char *synod_monitor_status_name(synod_monitor_status_t s) {
  switch (s) {
  case SYNOD_MONITOR_OK:
    return "ok";
  case SYNOD_MONITOR_BEHIND:
    return "behind";
  case SYNOD_MONITOR_MISSING:
    return "missing";
  case SYNOD_MONITOR_FOREIGN:
    return "foreign key";
  case SYNOD_MONITOR_EQUIVOCATED:
    return "equivocated";
  case SYNOD_MONITOR_REFUSED_US:
    return "refused our key";
  case SYNOD_MONITOR_UNREACHABLE:
    return "unreachable";
  case SYNOD_MONITOR_BAD_ANSWER:
    return "bad answer";
  }
  return "unknown";
}

/* The link we signed at version, or NULL. */
static const self_link_t *own_link(const synod_client_t *c, uint64_t version) {
  for (size_t i = 0; i < c->nself; i++)
    if (c->self[i].version == version)
      return &c->self[i];
  return NULL;
}

/* 1 when la carries a valid proof that our identity signed two bodies. */
static int our_key_equivocated(const synod_client_t *c,
                               const Synod__V1__LookupAnswer *la,
                               const synod_relay_key_t *keys, size_t nkeys) {
  for (size_t i = 0; i < la->n_proofs; i++) {
    synod_proof_verdict_t v;
    if (synod_proof_verify(&v, la->proofs[i], keys, nkeys) == 0 &&
        v.kind ==
            SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT &&
        strcmp(v.user_id, c->user_id) == 0)
      return 1;
  }
  return 0;
}

static void judge(const synod_client_t *c, synod_monitor_report_t *r,
                  const synod_client_relay_t *relay,
                  const Synod__V1__LookupAnswer *la, uint64_t now,
                  uint64_t window, const synod_relay_key_t *keys,
                  size_t nkeys) {
  synod_lookup_info_t li;
  int rc = synod_lookup_verify(&li, la, relay->key, now, window);
  if ((rc == 0 || rc == SYNOD_ESTALE) &&
      (strcmp(li.relay_name, relay->name) != 0 ||
       strcmp(li.user_id, c->user_id) != 0))
    rc = SYNOD_EVERIFY;
  if (rc == 0 || rc == SYNOD_ESTALE) {
    r->said = 1;
    r->version = li.version;
    memcpy(r->head_hash, li.head_hash, 32);
    r->time = li.time;
  }
  if (rc != 0) {
    r->status = SYNOD_MONITOR_BAD_ANSWER;
    r->error = rc;
    snprintf(r->reason, sizeof r->reason, "%s", synod_strerror(rc));
    return;
  }
  if (our_key_equivocated(c, la, keys, nkeys)) {
    r->status = SYNOD_MONITOR_EQUIVOCATED;
    r->error = SYNOD_EEQUIVOCATION;
    snprintf(r->reason, sizeof r->reason,
             "a proof shows our identity key signed two announcements for "
             "one version");
    return;
  }
  const self_link_t *own = li.version ? own_link(c, li.version) : NULL;
  if (li.version == 0) {
    r->status = SYNOD_MONITOR_MISSING;
    snprintf(r->reason, sizeof r->reason,
             "the relay knows no announcement of ours");
  } else if (own && memcmp(own->hash, li.head_hash, 32) == 0) {
    r->status =
        own == &c->self[c->nself - 1] ? SYNOD_MONITOR_OK : SYNOD_MONITOR_BEHIND;
    snprintf(r->reason, sizeof r->reason, "%s",
             r->status == SYNOD_MONITOR_OK ? "our newest announcement"
                                           : "an older announcement of ours");
  } else {
    r->status = SYNOD_MONITOR_FOREIGN;
    r->error = SYNOD_EVERIFY;
    snprintf(r->reason, sizeof r->reason,
             "the relay vouches for version %llu, which we did not sign",
             (unsigned long long)li.version);
    /* The head link, when sent: whose key signed it. */
    if (la->n_announcements > 0) {
      synod_announce_info_t ai;
      const Synod__V1__Announcement *a =
          la->announcements[la->n_announcements - 1];
      if (synod_announce_verify(&ai, a, now) == 0 &&
          memcmp(ai.hash, li.head_hash, 32) == 0) {
        r->has_foreign_key = 1;
        memcpy(r->foreign_key, ai.identity_key, 32);
      }
    }
  }
  if (r->status == SYNOD_MONITOR_FOREIGN) {
    r->answer_body = malloc(la->body.len ? la->body.len : 1);
    if (r->answer_body) {
      memcpy(r->answer_body, la->body.data, la->body.len);
      r->answer_body_len = la->body.len;
      memcpy(r->answer_signature, la->signature.data, 64);
    }
  }
}

typedef struct monitor_op {
  synod_client_op_t op; /* first: the handle the caller sees */
  synod_monitor_cb cb;
  uint64_t now, window;
  Synod__V1__Frame f;
  Synod__V1__LookupRequest q;
  fanout_target_t *ts;
  fanout_t *fan;
  synod_monitor_result_t res;
} monitor_op_t;

static void monitor_cancel(synod_client_op_t *op) {
  fanout_cancel(((monitor_op_t *)op)->fan);
}

/* Judges every relay's answer (the client is still there). */
static int monitor_judge(monitor_op_t *m) {
  const synod_client_t *c = m->op.c;
  synod_monitor_result_t *res = &m->res;
  size_t n = res->nrelays;
  const char *home_name;
  if (synod_userid_parse(c->user_id, NULL, &home_name) != 0)
    return SYNOD_EINVAL;
  synod_relay_key_t *keys = calloc(n + 1, sizeof *keys);
  if (!keys)
    return SYNOD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    keys[i].name = c->relays[i].name;
    memcpy(keys[i].key, c->relays[i].key, 32);
  }
  for (size_t i = 0; i < n; i++) {
    synod_monitor_report_t *r = &res->relays[i];
    r->relay_name = c->relays[i].name;
    const Synod__V1__Frame *a = m->ts[i].answer;
    if (a && a->body_case == SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER) {
      judge(c, r, &c->relays[i], a->lookup_answer, m->now, m->window, keys, n);
    } else if (a) {
      r->status = SYNOD_MONITOR_BAD_ANSWER;
      r->error = SYNOD_EPROTO;
      snprintf(r->reason, sizeof r->reason, "unexpected answer");
    } else {
      int home = strcmp(c->relays[i].name, home_name) == 0;
      /* Our home relay refusing the session's key means the account was
       * bound to another key: the first step of a substitution. (The same
       * code also covers a relay whose own key no longer matches the
       * pinned one: alarming as well.) */
      r->status = home && m->ts[i].status == SYNOD_EBADKEY
                      ? SYNOD_MONITOR_REFUSED_US
                      : SYNOD_MONITOR_UNREACHABLE;
      r->error = m->ts[i].status;
      snprintf(r->reason, sizeof r->reason, "%s", m->ts[i].reason);
    }
    if (r->status == SYNOD_MONITOR_FOREIGN ||
        r->status == SYNOD_MONITOR_EQUIVOCATED ||
        r->status == SYNOD_MONITOR_REFUSED_US)
      res->alarm = 1;
  }
  free(keys);
  return 0;
}

static void monitor_done(void *arg) {
  monitor_op_t *m = arg;
  m->fan = NULL;
  int rc = m->op.canceled || !m->op.c ? SYNOD_ECANCELED : monitor_judge(m);
  for (size_t i = 0; i < m->res.nrelays; i++)
    synod_wire_free(m->ts[i].answer);
  free(m->ts);
  if (rc != 0)
    synod_monitor_result_free(&m->res);
  op_detach(&m->op);
  m->op.finished = 1;
  m->cb(&m->op, rc, &m->res); /* the callback owns what res holds */
  free(m);
}

int synod_client_monitor_start(synod_client_t *c, uv_loop_t *loop,
                               const synod_client_net_opts_t *opts,
                               synod_monitor_cb cb, void *data,
                               synod_client_op_t **op) {
  if (op)
    *op = NULL;
  if (!c || !loop || !cb || synod_userid_parse(c->user_id, NULL, NULL) != 0)
    return SYNOD_EINVAL;
  size_t n = c->nrelays;
  monitor_op_t *m = calloc(1, sizeof *m);
  if (!m)
    return SYNOD_ENOMEM;
  m->res.relays = calloc(n + 1, sizeof *m->res.relays);
  m->ts = calloc(n + 1, sizeof *m->ts);
  int rc = SYNOD_ENOMEM;
  if (m->res.relays && m->ts) {
    m->res.nrelays = n;
    m->cb = cb;
    m->now = opts && opts->now ? opts->now : (uint64_t)time(NULL);
    m->window = opts ? opts->window : 0;
    synod__v1__frame__init(&m->f);
    synod__v1__lookup_request__init(&m->q);
    m->f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
    m->f.lookup_request = &m->q;
    m->q.user_id = c->user_id; /* the trust set and user id stay put */
    for (size_t i = 0; i < n; i++)
      m->ts[i] = (fanout_target_t){.relay = &c->relays[i], .request = &m->f};
    rc = fanout_start(&m->fan, c, loop, m->ts, n,
                      opts && opts->timeout_ms ? opts->timeout_ms
                                               : DEFAULT_TIMEOUT_MS,
                      monitor_done, m);
  }
  if (rc != 0) {
    free(m->ts);
    synod_monitor_result_free(&m->res);
    free(m);
    return rc;
  }
  op_init(&m->op, c, loop, data, monitor_cancel, 1);
  if (op)
    *op = &m->op;
  return 0;
}

/* --- the blocking monitor: the same operation on a private loop ----------- */

typedef struct monitor_wait {
  synod_client_t *c;
  const synod_client_net_opts_t *opts;
  synod_monitor_result_t *res;
  int rc;
} monitor_wait_t;

static void monitor_wait_cb(synod_client_op_t *op, int status,
                            synod_monitor_result_t *res) {
  monitor_wait_t *w = synod_client_op_data(op);
  w->rc = status;
  *w->res = *res;
}

static int monitor_wait_start(uv_loop_t *loop, void *arg) {
  monitor_wait_t *w = arg;
  synod_client_op_t *op = NULL;
  int rc =
      synod_client_monitor_start(w->c, loop, w->opts, monitor_wait_cb, w, &op);
  if (rc == 0)
    op_detach(op); /* blocking: nobody can close the client meanwhile */
  return rc;
}

int synod_client_monitor(synod_client_t *c, const synod_client_net_opts_t *opts,
                         synod_monitor_result_t *res) {
  memset(res, 0, sizeof *res);
  monitor_wait_t w = {.c = c, .opts = opts, .res = res};
  int rc = op_run_private(monitor_wait_start, &w);
  return rc ? rc : w.rc;
}

void synod_monitor_result_free(synod_monitor_result_t *r) {
  if (!r)
    return;
  for (size_t i = 0; r->relays && i < r->nrelays; i++)
    free(r->relays[i].answer_body);
  free(r->relays);
  memset(r, 0, sizeof *r);
}
