/*
 * The key directory from the client's side (proto/README.md 7.2-7.4):
 * register our announcement, and look a user up at every relay of the
 * trust set with the quorum decision of synod/quorum.h.
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

static uint64_t opt_timeout(const synod_client_net_opts_t *o) {
  return o && o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
}

const char *synod_publish_status_name(synod_publish_status_t s) {
  switch (s) {
  case SYNOD_PUBLISH_ACCEPTED:
    return "accepted";
  case SYNOD_PUBLISH_REFUSED:
    return "refused";
  case SYNOD_PUBLISH_UNREACHABLE:
    return "unreachable";
  case SYNOD_PUBLISH_SKIPPED:
    return "skipped";
  }
  return "unknown";
}

/* --- enrolment ------------------------------------------------------------ */

int synod_client_enroll(synod_client_t *c, const char *code,
                        const synod_client_net_opts_t *opts) {
  const char *home_name;
  if (!code || !*code || synod_userid_parse(c->user_id, NULL, &home_name) != 0)
    return SYNOD_EINVAL;
  const synod_client_relay_t *home = profile_relay(c, home_name);
  if (!home)
    return SYNOD_EUNKNOWNPEER;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping ping = SYNOD__V1__PING__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &ping;
  fanout_target_t t = {.relay = home, .request = &f, .enrollment_code = code};
  int rc = fanout_run(c, &t, 1, opt_timeout(opts));
  if (rc == 0)
    rc = t.status;
  if (rc == 0 && t.answer->body_case != SYNOD__V1__FRAME__BODY_PONG)
    rc = SYNOD_EPROTO;
  synod_wire_free(t.answer);
  return rc;
}

/* --- register ------------------------------------------------------------- */

/* Our newest Publish as saved, or NULL (then *p is NULL). */
static int saved_publish(const synod_client_t *c, Synod__V1__Publish **p) {
  *p = NULL;
  if (!c->publish)
    return 0;
  ProtobufCMessage *m;
  int rc = synod_wire_unpack_message(&synod__v1__publish__descriptor,
                                     c->publish, c->publish_len, &m);
  if (rc != 0)
    return rc;
  *p = (Synod__V1__Publish *)m;
  if (!(*p)->announcement) {
    synod_wire_free_message(m);
    *p = NULL;
    return SYNOD_EPARSE;
  }
  return 0;
}

/* Replaces the saved Publish with a (and cs, may be NULL) and saves. */
static int save_publish(synod_client_t *c, const Synod__V1__Announcement *a,
                        const Synod__V1__Countersignature *cs) {
  Synod__V1__Publish p = SYNOD__V1__PUBLISH__INIT;
  Synod__V1__Countersignature *csp[1] = {synod_wire_lend(cs)};
  p.announcement = synod_wire_lend(a);
  if (cs) {
    p.countersignatures = csp;
    p.n_countersignatures = 1;
  }
  size_t n = protobuf_c_message_get_packed_size(&p.base);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf)
    return SYNOD_ENOMEM;
  protobuf_c_message_pack(&p.base, buf);
  uint8_t *old = c->publish;
  size_t oldlen = c->publish_len;
  c->publish = buf;
  c->publish_len = n;
  int rc = profile_save_self(c);
  if (rc != 0) {
    c->publish = old;
    c->publish_len = oldlen;
    free(buf);
  } else {
    free(old);
  }
  return rc;
}

/* Signs the next announcement after prev (NULL: version 1) and saves it
 * with its link in `self`, before anything is sent. */
static int sign_next(synod_client_t *c, const synod_announce_info_t *prev,
                     uint64_t now) {
  synod_device_t d = {.device_id = c->device_id, .name = c->device_name};
  memcpy(d.x25519_key, c->device_pk, sizeof d.x25519_key);
  uint64_t t = now;
  if (prev && prev->time > t)
    t = prev->time; /* chain rule: time never goes back */
  synod_announce_params_t p = {
      .user_id = c->user_id,
      .devices = &d,
      .ndevices = 1,
      .version = prev ? prev->version + 1 : 1,
      .time = t,
      .prev_hash = prev ? prev->hash : NULL,
      /* A changed identity key without the old seed at hand (this profile
       * keeps one identity seed) can only be a reset. */
      .reset = prev && memcmp(prev->identity_key, c->identity_pk, 32) != 0,
  };
  synod_announcement_t a;
  int rc = synod_announce_sign(&a, &p, c->identity_sk, NULL);
  if (rc != 0)
    return rc;
  self_link_t link = {.version = p.version, .time = t};
  memcpy(link.identity_key, c->identity_pk, 32);
  rc = synod_announce_hash(link.hash, a.body, a.body_len);
  self_link_t *g = rc ? NULL : realloc(c->self, (c->nself + 1) * sizeof *g);
  if (rc == 0 && !g)
    rc = SYNOD_ENOMEM;
  if (rc == 0) {
    c->self = g;
    c->self[c->nself++] = link;
    Synod__V1__Announcement w;
    synod_announcement_lend(&w, &a);
    rc = save_publish(c, &w, NULL);
    if (rc != 0)
      c->nself--;
  }
  synod_announcement_free(&a);
  return rc;
}

static void report_from(synod_publish_report_t *r, const fanout_target_t *t) {
  r->error = t->status;
  snprintf(r->reason, sizeof r->reason, "%s", t->reason);
  if (t->status == 0 && t->answer &&
      t->answer->body_case == SYNOD__V1__FRAME__BODY_PUBLISH_RESULT)
    r->status = SYNOD_PUBLISH_ACCEPTED;
  else if (t->status == 0) {
    r->status = SYNOD_PUBLISH_REFUSED;
    r->error = SYNOD_EPROTO;
    snprintf(r->reason, sizeof r->reason, "unexpected answer");
  } else
    r->status = t->refused ? SYNOD_PUBLISH_REFUSED : SYNOD_PUBLISH_UNREACHABLE;
}

typedef struct register_op {
  synod_client_op_t op; /* first: the handle the caller sees */
  synod_register_cb cb;
  uint64_t timeout_ms;
  uint64_t now;
  size_t home;
  Synod__V1__Publish *saved; /* the announcement as signed, owned */
  Synod__V1__Frame f;
  Synod__V1__Publish p;
  Synod__V1__Countersignature *csp[1];
  fanout_target_t home_t; /* round 1: the home relay */
  fanout_target_t *ts;    /* round 2: every other relay */
  size_t nt;
  fanout_t *fan; /* the round in flight */
  int rc;
  synod_register_result_t res;
} register_op_t;

static void register_cancel(synod_client_op_t *op) {
  register_op_t *r = (register_op_t *)op;
  fanout_cancel(r->fan);
}

static void register_finish(register_op_t *r, int rc) {
  op_detach(&r->op);
  r->op.finished = 1;
  synod_wire_free(r->home_t.answer);
  synod_wire_free_message(r->saved ? &r->saved->base : NULL);
  free(r->ts);
  r->cb(&r->op, rc, &r->res); /* the callback owns what res holds */
  free(r);
}

static void register_others_done(void *arg) {
  register_op_t *r = arg;
  r->fan = NULL;
  synod_client_t *c = r->op.c;
  for (size_t i = 0, j = 0; c && i < c->nrelays && j < r->nt; i++) {
    if (i == r->home)
      continue;
    report_from(&r->res.relays[i], &r->ts[j++]);
    if (r->res.relays[i].status == SYNOD_PUBLISH_ACCEPTED)
      r->res.accepted++;
  }
  for (size_t j = 0; j < r->nt; j++)
    synod_wire_free(r->ts[j].answer);
  register_finish(r, r->op.canceled || !c ? SYNOD_ECANCELED : 0);
}

static void register_home_done(void *arg) {
  register_op_t *r = arg;
  r->fan = NULL;
  synod_client_t *c = r->op.c;
  synod_register_result_t *res = &r->res;
  if (r->op.canceled || !c) {
    res->home_error = SYNOD_ECANCELED;
    register_finish(r, SYNOD_ECANCELED);
    return;
  }
  synod_publish_report_t *hr = &res->relays[r->home];
  fanout_target_t *t = &r->home_t;
  report_from(hr, t);
  Synod__V1__Countersignature *cs =
      hr->status == SYNOD_PUBLISH_ACCEPTED
          ? t->answer->publish_result->countersignature
          : NULL;
  if (hr->status == SYNOD_PUBLISH_ACCEPTED) {
    synod_countersig_info_t ci;
    int vrc =
        cs ? synod_countersig_verify(&ci, cs, c->relays[r->home].key, r->now)
           : SYNOD_EPROTO;
    if (vrc == 0 &&
        (strcmp(ci.user_id, c->user_id) != 0 || ci.version != res->version ||
         memcmp(ci.announcement_hash, res->hash, 32) != 0))
      vrc = SYNOD_EVERIFY;
    if (vrc == 0)
      vrc = save_publish(c, r->saved->announcement, cs);
    if (vrc != 0) {
      hr->status = SYNOD_PUBLISH_REFUSED;
      hr->error = vrc;
      snprintf(hr->reason, sizeof hr->reason,
               vrc == SYNOD_EIO
                   ? "cannot save the countersignature"
                   : "the home relay's countersignature is not valid");
    }
  }
  res->home_error = hr->status == SYNOD_PUBLISH_ACCEPTED ? 0 : hr->error;
  if (res->home_error != 0) {
    register_finish(r, res->home_error);
    return;
  }
  res->accepted = 1;

  /* Every other relay, at once, with the home relay's countersignature
   * (cs lives in home_t.answer, kept until the end). */
  r->ts = calloc(c->nrelays + 1, sizeof *r->ts);
  if (!r->ts) {
    register_finish(r, SYNOD_ENOMEM);
    return;
  }
  r->csp[0] = cs;
  r->p.countersignatures = r->csp;
  r->p.n_countersignatures = 1;
  for (size_t i = 0; i < c->nrelays; i++)
    if (i != r->home)
      r->ts[r->nt++] =
          (fanout_target_t){.relay = &c->relays[i], .request = &r->f};
  int rc = fanout_start(&r->fan, c, r->op.loop, r->ts, r->nt, r->timeout_ms,
                        register_others_done, r);
  if (rc != 0)
    register_finish(r, rc); /* from a loop callback: allowed */
}

/* Fills res->relays and signs or loads what to publish; 0 or the error
 * (then res->home_error holds it). */
static int register_prepare(register_op_t *r, synod_client_t *c,
                            unsigned flags) {
  synod_register_result_t *res = &r->res;
  res->home_error = SYNOD_EINVAL;
  if (flags & ~SYNOD_REGISTER_NEXT)
    return SYNOD_EINVAL;
  const char *home_name;
  if (synod_userid_parse(c->user_id, NULL, &home_name) != 0)
    return SYNOD_EINVAL;
  res->relays = calloc(c->nrelays ? c->nrelays : 1, sizeof *res->relays);
  if (!res->relays)
    return (res->home_error = SYNOD_ENOMEM);
  res->nrelays = c->nrelays;
  size_t home = c->nrelays;
  for (size_t i = 0; i < c->nrelays; i++) {
    res->relays[i].relay_name = c->relays[i].name;
    res->relays[i].operator_name = c->relays[i].operator_name;
    res->relays[i].status = SYNOD_PUBLISH_SKIPPED;
    if (strcmp(c->relays[i].name, home_name) == 0)
      home = i;
  }
  if (home == c->nrelays)
    return (res->home_error = SYNOD_EUNKNOWNPEER);
  r->home = home;
  r->now = (uint64_t)time(NULL);

  /* Sign a new version, or send the newest one again, byte for byte. */
  Synod__V1__Publish *saved = NULL;
  int rc = saved_publish(c, &saved);
  synod_announce_info_t last;
  memset(&last, 0, sizeof last);
  if (rc == 0 && saved) {
    /* Our own statement: only the clock rule could fail, if this
     * machine's clock went back; sign_next() keeps the time order. */
    rc = synod_announce_verify(&last, saved->announcement, UINT64_MAX / 2);
  }
  int fresh = !saved || (flags & SYNOD_REGISTER_NEXT) ||
              memcmp(last.identity_key, c->identity_pk, 32) != 0 ||
              last.ndevices != 1 || last.devices[0].device_id != c->device_id ||
              memcmp(last.devices[0].x25519_key, c->device_pk, 32) != 0;
  if (rc == 0 && fresh) {
    rc = sign_next(c, saved ? &last : NULL, r->now);
    synod_wire_free_message(saved ? &saved->base : NULL);
    saved = NULL;
    if (rc == 0)
      rc = saved_publish(c, &saved);
  }
  if (rc == 0 && !saved)
    rc = SYNOD_EINTERNAL; /* sign_next() saved one, or failed */
  if (rc == 0)
    rc = synod_announce_hash(res->hash, saved->announcement->body.data,
                             saved->announcement->body.len);
  r->saved = saved;
  if (rc != 0)
    return (res->home_error = rc);
  res->version = c->self[c->nself - 1].version;
  return 0;
}

static void register_failed(void *arg) {
  register_op_t *r = arg;
  r->fan = NULL;
  register_finish(r, r->op.canceled || !r->op.c ? SYNOD_ECANCELED : r->rc);
}

int synod_client_register_start(synod_client_t *c, uv_loop_t *loop,
                                unsigned flags,
                                const synod_client_net_opts_t *opts,
                                synod_register_cb cb, void *data,
                                synod_client_op_t **op) {
  if (op)
    *op = NULL;
  if (!c || !loop || !cb || (flags & ~SYNOD_REGISTER_NEXT))
    return SYNOD_EINVAL;
  register_op_t *r = calloc(1, sizeof *r);
  if (!r)
    return SYNOD_ENOMEM;
  r->cb = cb;
  r->timeout_ms = opt_timeout(opts);
  int rc = register_prepare(r, c, flags);
  if (rc != 0) {
    /* Reported like the network's failures: through cb, from the loop,
     * with res filled as far as it got. */
    r->rc = rc;
    rc = fanout_start(&r->fan, c, loop, NULL, 0, r->timeout_ms, register_failed,
                      r);
  } else {
    /* The home relay first: it checks the chain and countersigns. */
    synod__v1__frame__init(&r->f);
    synod__v1__publish__init(&r->p);
    r->f.body_case = SYNOD__V1__FRAME__BODY_PUBLISH;
    r->f.publish = &r->p;
    r->p.announcement = r->saved->announcement;
    r->home_t =
        (fanout_target_t){.relay = &c->relays[r->home], .request = &r->f};
    rc = fanout_start(&r->fan, c, loop, &r->home_t, 1, r->timeout_ms,
                      register_home_done, r);
  }
  if (rc != 0) {
    synod_wire_free_message(r->saved ? &r->saved->base : NULL);
    synod_register_result_free(&r->res);
    free(r);
    return rc;
  }
  op_init(&r->op, c, loop, data, register_cancel, 1);
  if (op)
    *op = &r->op;
  return 0;
}

/* --- the blocking register: the same operation on a private loop ---------- */

typedef struct register_wait {
  synod_client_t *c;
  unsigned flags;
  const synod_client_net_opts_t *opts;
  synod_register_result_t *res;
  int rc;
} register_wait_t;

static void register_wait_cb(synod_client_op_t *op, int status,
                             synod_register_result_t *res) {
  register_wait_t *w = synod_client_op_data(op);
  w->rc = status;
  *w->res = *res;
}

static int register_wait_start(uv_loop_t *loop, void *arg) {
  register_wait_t *w = arg;
  synod_client_op_t *op = NULL;
  int rc = synod_client_register_start(w->c, loop, w->flags, w->opts,
                                       register_wait_cb, w, &op);
  if (rc == 0)
    op_detach(op); /* blocking: nobody can close the client meanwhile */
  return rc;
}

int synod_client_register(synod_client_t *c, unsigned flags,
                          const synod_client_net_opts_t *opts,
                          synod_register_result_t *res) {
  memset(res, 0, sizeof *res);
  res->home_error = SYNOD_EINVAL;
  register_wait_t w = {
      .c = c, .flags = flags, .opts = opts, .res = res, .rc = 0};
  int rc = op_run_private(register_wait_start, &w);
  if (rc != 0) {
    if (res->home_error == 0)
      res->home_error = rc;
    return rc;
  }
  return w.rc;
}

void synod_register_result_free(synod_register_result_t *r) {
  if (!r)
    return;
  free(r->relays);
  memset(r, 0, sizeof *r);
}

/* --- lookup --------------------------------------------------------------- */

/* Stores the accepted pin, moving a replaced identity key to history. */
static int store_pin(synod_client_t *c, const char *user_id,
                     const synod_pin_t *pin) {
  long i = profile_pin_index(c, user_id);
  synod_client_pin_t *g = NULL;
  if (i < 0) {
    g = realloc(c->pins, (c->npins + 1) * sizeof *g);
    if (!g)
      return SYNOD_ENOMEM;
    c->pins = g;
    i = (long)c->npins++;
    memset(&c->pins[i], 0, sizeof c->pins[i]);
    snprintf(c->pins[i].user_id, sizeof c->pins[i].user_id, "%s", user_id);
  }
  synod_client_pin_t *p = &c->pins[i], old = *p;
  int had = old.pin.version != 0;
  if (had && memcmp(old.pin.identity_key, pin->identity_key, 32) != 0) {
    size_t keep = p->nhistory < SYNOD_CLIENT_HISTORY_MAX
                      ? p->nhistory
                      : SYNOD_CLIENT_HISTORY_MAX - 1;
    memmove(&p->history[1], &p->history[0], keep * sizeof p->history[0]);
    p->history[0].version = old.pin.version;
    memcpy(p->history[0].identity_key, old.pin.identity_key, 32);
    p->nhistory = keep + 1;
  }
  p->pin = *pin;
  int rc = profile_save_pins(c);
  if (rc != 0) {
    if (had)
      *p = old;
    else
      c->npins--;
  }
  return rc;
}

typedef struct lookup_op {
  synod_client_op_t op; /* first: the handle the caller sees */
  synod_lookup_cb cb;
  char user_id[SYNOD_USERID_MAX + 1];
  synod_client_net_opts_t opts;
  synod_client_pin_t pin;
  int has_pin;
  Synod__V1__Frame f;
  Synod__V1__LookupRequest q;
  fanout_target_t *ts;
  fanout_t *fan; /* until the round is done */
  synod_lookup_result_t res;
} lookup_op_t;

static void lookup_cancel(synod_client_op_t *op) {
  lookup_op_t *l = (lookup_op_t *)op;
  fanout_cancel(l->fan);
}

/* Decides on the answers of the round, and stores the pin. */
static int lookup_decide(lookup_op_t *l) {
  synod_client_t *c = l->op.c;
  synod_lookup_result_t *res = &l->res;
  size_t n = res->nanswers_;
  synod_quorum_answer_t *qa = calloc(n + 1, sizeof *qa);
  synod_trusted_relay_t *tr = calloc(n + 1, sizeof *tr);
  int rc = 0;
  if (!qa || !tr) {
    rc = SYNOD_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    tr[i].name = c->relays[i].name;
    tr[i].operator_name = c->relays[i].operator_name;
    memcpy(tr[i].key, c->relays[i].key, 32);
    qa[i].relay_name = c->relays[i].name;
    if (res->answers_[i] &&
        res->answers_[i]->body_case == SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER)
      qa[i].answer = res->answers_[i]->lookup_answer;
  }
  synod_quorum_input_t in = {
      .user_id = l->user_id,
      .answers = qa,
      .nanswers = n,
      .trust = tr,
      .ntrust = n,
      .k = c->k,
      .pin = l->has_pin ? &l->pin.pin : NULL,
      .now = l->opts.now ? l->opts.now : (uint64_t)time(NULL),
      .window = l->opts.window,
  };
  rc = synod_quorum_decide(&res->decision, &in);
  if (rc == 0 && res->decision.has_pin) {
    int src = store_pin(c, l->user_id, &res->decision.pin);
    if (src != 0)
      rc = src;
    else
      res->pin_saved = 1;
  }
out:
  free(qa);
  free(tr);
  return rc;
}

static void lookup_done(void *arg) {
  lookup_op_t *l = arg;
  synod_lookup_result_t *res = &l->res;
  l->fan = NULL;
  for (size_t i = 0; i < res->nanswers_; i++) {
    fanout_target_t *t = &l->ts[i];
    res->answers_[i] = t->answer;
    res->net_error[i] = t->status;
    snprintf(res->net_reason[i], sizeof res->net_reason[i], "%s", t->reason);
    if (t->answer &&
        t->answer->body_case != SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER) {
      res->net_error[i] = SYNOD_EPROTO;
      snprintf(res->net_reason[i], sizeof res->net_reason[i],
               "unexpected answer");
    }
  }
  int rc;
  if (l->op.canceled || !l->op.c) {
    rc = res->decision.error = SYNOD_ECANCELED;
    snprintf(res->decision.reason, sizeof res->decision.reason,
             "the lookup was canceled");
  } else {
    rc = lookup_decide(l);
    if (res->decision.error == 0 && rc != 0 && !res->decision.has_pin)
      res->decision.error = rc;
  }
  op_detach(&l->op);
  l->op.finished = 1;
  free(l->ts);
  l->cb(&l->op, rc, res); /* the callback owns what res holds */
  free(l);
}

int lookup_start(synod_client_t *c, uv_loop_t *loop, const char *user_id,
                 const synod_client_net_opts_t *opts, synod_lookup_cb cb,
                 void *data, int link, synod_client_op_t **op) {
  if (op)
    *op = NULL;
  if (!c || !loop || !cb || !user_id ||
      synod_userid_parse(user_id, NULL, NULL) != 0)
    return SYNOD_EINVAL;
  size_t n = c->nrelays;
  lookup_op_t *l = calloc(1, sizeof *l);
  if (!l)
    return SYNOD_ENOMEM;
  synod_lookup_result_t *res = &l->res;
  res->net_error = calloc(n + 1, sizeof *res->net_error);
  res->net_reason = calloc(n + 1, sizeof *res->net_reason);
  res->answers_ = calloc(n + 1, sizeof *res->answers_);
  l->ts = calloc(n + 1, sizeof *l->ts);
  int rc = SYNOD_ENOMEM;
  if (res->net_error && res->net_reason && res->answers_ && l->ts) {
    res->nanswers_ = n;
    snprintf(l->user_id, sizeof l->user_id, "%s", user_id);
    if (opts)
      l->opts = *opts;
    l->has_pin = synod_client_pin_get(c, user_id, &l->pin) == 0;
    synod__v1__frame__init(&l->f);
    synod__v1__lookup_request__init(&l->q);
    l->f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
    l->f.lookup_request = &l->q;
    l->q.user_id = l->user_id;
    l->q.from_version = l->has_pin ? l->pin.pin.version : 0;
    for (size_t i = 0; i < n; i++)
      l->ts[i] = (fanout_target_t){.relay = &c->relays[i], .request = &l->f};
    l->cb = cb;
    rc = fanout_start(&l->fan, c, loop, l->ts, n, opt_timeout(opts),
                      lookup_done, l);
  }
  if (rc != 0) {
    free(l->ts);
    synod_lookup_result_free(res);
    free(l);
    return rc;
  }
  op_init(&l->op, c, loop, data, lookup_cancel, link);
  if (op)
    *op = &l->op;
  return 0;
}

int synod_client_lookup_start(synod_client_t *c, uv_loop_t *loop,
                              const char *user_id,
                              const synod_client_net_opts_t *opts,
                              synod_lookup_cb cb, void *data,
                              synod_client_op_t **op) {
  return lookup_start(c, loop, user_id, opts, cb, data, 1, op);
}

/* --- the blocking lookup: the same operation on a private loop ------------ */

typedef struct lookup_wait {
  synod_client_t *c;
  const char *user_id;
  const synod_client_net_opts_t *opts;
  synod_lookup_result_t *res;
  int rc;
} lookup_wait_t;

static void lookup_wait_cb(synod_client_op_t *op, int status,
                           synod_lookup_result_t *res) {
  lookup_wait_t *w = synod_client_op_data(op);
  w->rc = status;
  *w->res = *res; /* ownership moves to the caller's result */
}

static int lookup_wait_start(uv_loop_t *loop, void *arg) {
  lookup_wait_t *w = arg;
  return lookup_start(w->c, loop, w->user_id, w->opts, lookup_wait_cb, w, 0,
                      NULL);
}

int synod_client_lookup(synod_client_t *c, const char *user_id,
                        const synod_client_net_opts_t *opts,
                        synod_lookup_result_t *res) {
  memset(res, 0, sizeof *res);
  res->decision.error = SYNOD_EINVAL;
  lookup_wait_t w = {
      .c = c, .user_id = user_id, .opts = opts, .res = res, .rc = 0};
  int rc = op_run_private(lookup_wait_start, &w);
  if (rc != 0) {
    res->decision.error = rc;
    return rc;
  }
  return w.rc;
}

void synod_lookup_result_free(synod_lookup_result_t *r) {
  if (!r)
    return;
  synod_quorum_result_free(&r->decision);
  for (size_t i = 0; r->answers_ && i < r->nanswers_; i++)
    synod_wire_free(r->answers_[i]);
  free(r->answers_);
  free(r->net_error);
  free(r->net_reason);
  memset(r, 0, sizeof *r);
}
