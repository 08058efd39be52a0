/*
 * The relay side of the key directory; see directory.h.
 */
#include "directory.h"

#include <stdlib.h>
#include <string.h>

#include "dirstore.h"
#include "synod/announce.h"
#include "synod/crypto.h"
#include "synod/log.h"
#include "synod/statement.h"
#include "synod/userid.h"
#include "synod/wire.h"

/* FetchAnnouncements unanswered at once on one link. */
#define FETCH_WINDOW 16
/* Bytes kept free in a frame for its fixed parts (signed body, headers). */
#define FRAME_SLACK 4096

/* --- helpers --------------------------------------------------------------- */

static void s_send(session_t *s, Synod__V1__Frame *f) {
  if (!s->conn)
    return;
  /* Answers to requests: the connection stops reading at its soft cap
   * instead of refusing them, so a client that pipelines lookups and reads
   * slowly is slowed down, not cut. */
  int rc = synod_conn_reply(s->conn, f);
  if (rc < 0)
    synod_conn_close(s->conn, rc);
}

static void s_error(session_t *s, uint64_t rid, int code, const char *reason) {
  if (s->conn && synod_conn_send_error(s->conn, rid, code, reason) < 0)
    synod_conn_close(s->conn, SYNOD_EIO);
}

static const char *home_of(const char *user) {
  const char *home = NULL;
  if (!user || synod_userid_parse(user, NULL, &home) != 0)
    return NULL;
  return home;
}

/* The pinned key of relay name: ours, or a configured peer's. */
static const uint8_t *relay_key(server_t *srv, const char *name) {
  if (strcmp(name, srv->cfg->name) == 0)
    return srv->pk;
  const relay_config_peer_t *p = config_find_peer(srv->cfg, name);
  return p ? p->key : NULL;
}

/* Every relay key this relay knows, for proofs. Caller frees. */
static synod_relay_key_t *relay_keys(server_t *srv, size_t *n) {
  relay_config_t *cfg = srv->cfg;
  synod_relay_key_t *k = calloc(cfg->npeers + 1, sizeof *k);
  if (!k)
    return NULL;
  k[0].name = cfg->name;
  memcpy(k[0].key, srv->pk, 32);
  for (size_t i = 0; i < cfg->npeers; i++) {
    k[i + 1].name = cfg->peers[i].name;
    memcpy(k[i + 1].key, cfg->peers[i].key, 32);
  }
  *n = cfg->npeers + 1;
  return k;
}

static const char **peer_names(server_t *srv) {
  const char **v = calloc(srv->nlinks + 1, sizeof *v);
  for (size_t i = 0; v && i < srv->nlinks; i++)
    v[i] = srv->links[i].peer->name;
  return v;
}

static void kick_links(server_t *srv) {
  for (size_t i = 0; i < srv->nlinks; i++)
    link_kick(&srv->links[i]);
}

static int transient(int rc) {
  return rc == SYNOD_EAGAIN || rc == SYNOD_EDB || rc == SYNOD_ENOMEM ||
         rc == SYNOD_ECLOSED;
}

/*
 * The home relay's valid countersignature of the announcement info among
 * cs[0..n) (cs[hint] is tried first). 0 with *idx, or the code to refuse
 * with and *why.
 */
static int find_countersig(server_t *srv, const synod_announce_info_t *info,
                           Synod__V1__Countersignature *const *cs, size_t n,
                           size_t hint, size_t *idx, const char **why) {
  const char *home = home_of(info->user_id);
  const uint8_t *key = home ? relay_key(srv, home) : NULL;
  if (!key) {
    *why = "the user's home relay is not a peer of this relay";
    return SYNOD_ECHAIN;
  }
  uint64_t now = server_now();
  int bad = 0;
  for (size_t k = 0; k <= n; k++) {
    size_t i = k == 0 ? hint : k - 1;
    if (i >= n || (k > 0 && i == hint) || !cs[i])
      continue;
    synod_countersig_info_t ci;
    int rc = synod_countersig_verify(&ci, cs[i], key, now);
    if (rc != 0) {
      bad = rc;
      continue;
    }
    if (strcmp(ci.user_id, info->user_id) == 0 && ci.version == info->version &&
        synod_memeq(ci.announcement_hash, info->hash, 32)) {
      *idx = i;
      return 0;
    }
  }
  if (bad) {
    *why = "the home relay's countersignature does not verify";
    return bad == SYNOD_EINVAL ? SYNOD_EINVAL : SYNOD_EVERIFY;
  }
  *why = "no countersignature of this announcement by the user's home relay";
  return SYNOD_ECHAIN;
}

/* --- the chain queue ------------------------------------------------------- */

enum { FROM_CLIENT, FROM_PEER, FROM_LINK };

typedef struct dir_job {
  struct dir_job *next;
  server_t *srv;
  int from;
  session_t *s; /* FROM_CLIENT, FROM_PEER */
  link_t *l;    /* FROM_LINK */
  uint64_t rid;
  /* the announcement, owned copies */
  uint8_t *body;
  size_t body_len;
  uint8_t sig[64], cont[64];
  int has_cont;
  synod_announce_info_t info;
  /* the home relay's countersignature (given, signed here, or stored) */
  uint8_t *cs_body;
  size_t cs_len;
  uint8_t cs_sig[64];
  int has_cs;
  int is_home;
  char home[SYNOD_RELAY_NAME_MAX + 1];
  int retries;
  unsigned outstanding; /* proofs being stored */
} dir_job_t;

static void job_run(dir_job_t *j);
static void fetch(link_t *l, const char *user, uint64_t from, uint64_t want);

static void lend_announcement(Synod__V1__Announcement *a, const dir_job_t *j) {
  synod__v1__announcement__init(a);
  a->body.data = j->body;
  a->body.len = j->body_len;
  a->signature.data = synod_wire_lend(j->sig);
  a->signature.len = 64;
  if (j->has_cont) {
    a->continuity_signature.data = synod_wire_lend(j->cont);
    a->continuity_signature.len = 64;
  }
}

static void job_free(dir_job_t *j) {
  free(j->body);
  free(j->cs_body);
  free(j);
}

/* A job that finishes at once (the database is down) calls back here from
 * inside the loop: that call returns and the loop below runs the next job,
 * so the stack stays flat however long the queue. */
static void queue_next(server_t *srv) {
  if (srv->dir_draining)
    return;
  srv->dir_draining = 1;
  while (!srv->dir_busy && srv->dir_queue) {
    dir_job_t *j = srv->dir_queue;
    srv->dir_queue = j->next;
    if (!srv->dir_queue)
      srv->dir_queue_tail = NULL;
    j->next = NULL;
    srv->dir_busy = 1;
    job_run(j);
  }
  srv->dir_draining = 0;
}

static void job_enqueue(dir_job_t *j) {
  server_t *srv = j->srv;
  if (j->s)
    j->s->pending++;
  if (j->l)
    j->l->pending++;
  if (srv->dir_queue_tail)
    srv->dir_queue_tail->next = j;
  else
    srv->dir_queue = j;
  srv->dir_queue_tail = j;
  queue_next(srv);
}

/* Answers or logs the job's outcome, releases it, runs the next one. */
static void job_finish(dir_job_t *j, int rc, const char *why) {
  server_t *srv = j->srv;
  if (j->from == FROM_CLIENT) {
    session_t *s = j->s;
    if (rc == 0) {
      Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
      Synod__V1__PublishResult r = SYNOD__V1__PUBLISH_RESULT__INIT;
      Synod__V1__Countersignature cs = SYNOD__V1__COUNTERSIGNATURE__INIT;
      f.request_id = j->rid;
      f.body_case = SYNOD__V1__FRAME__BODY_PUBLISH_RESULT;
      f.publish_result = &r;
      r.version = j->info.version;
      r.announcement_hash.data = j->info.hash;
      r.announcement_hash.len = 32;
      if (j->is_home && j->has_cs) {
        cs.body.data = j->cs_body;
        cs.body.len = j->cs_len;
        cs.signature.data = j->cs_sig;
        cs.signature.len = 64;
        r.countersignature = &cs;
      }
      s_send(s, &f);
    } else {
      s_error(s, j->rid, rc, why);
    }
    synod_log(SYNOD_LOG_INFO, "publish", "user=%s version=%llu result=%s",
              j->info.user_id, (unsigned long long)j->info.version,
              rc ? synod_err_name(rc) : "ok");
  } else {
    if (rc != 0)
      synod_log(transient(rc) ? SYNOD_LOG_WARN : SYNOD_LOG_INFO,
                "gossiped announcement not taken",
                "peer=%s user=%s version=%llu error=%s reason=%s",
                j->s ? j->s->peer->name : j->l->peer->name, j->info.user_id,
                (unsigned long long)j->info.version, synod_err_name(rc),
                why ? why : "");
    /* Not stored for want of a database: drop the connection, so that
     * the next one exchanges heads again and fetches it. */
    if (transient(rc)) {
      if (j->s && j->s->conn)
        synod_conn_close(j->s->conn, SYNOD_EAGAIN);
      if (j->l && j->l->conn)
        synod_conn_close(j->l->conn, SYNOD_EAGAIN);
    }
  }
  if (j->s)
    session_unhold(j->s);
  if (j->l) {
    j->l->pending--;
    link_kick(j->l);
  }
  job_free(j);
  srv->dir_busy = 0;
  queue_next(srv);
}

/* --- proofs ---------------------------------------------------------------- */

typedef struct proof_ctx {
  server_t *srv;
  dir_job_t *job; /* or NULL */
} proof_ctx_t;

static void proof_stored(void *data, int status,
                         const dirstore_rows_t *const *res, size_t n) {
  proof_ctx_t *pc = data;
  if (status == 0 && n >= 1 && dirstore_rows_int(res[0], 0, 0) > 0) {
    synod_log(SYNOD_LOG_WARN, "equivocation proof stored", NULL);
    kick_links(pc->srv);
  } else if (status != 0) {
    synod_log(SYNOD_LOG_WARN, "storing a proof failed", "error=%s",
              synod_err_name(status));
  }
  dir_job_t *j = pc->job;
  free(pc);
  if (j && --j->outstanding == 0)
    job_finish(j, SYNOD_EEQUIVOCATION,
               "a different announcement holds this version: proof stored");
}

/* Stores the verified proof w (verdict v) and queues it for the peers. */
static void put_proof(server_t *srv, dir_job_t *j,
                      const Synod__V1__EquivocationProof *w,
                      const synod_proof_verdict_t *v) {
  size_t plen = synod__v1__equivocation_proof__get_packed_size(w);
  Synod__V1__GossipAnnouncement g = SYNOD__V1__GOSSIP_ANNOUNCEMENT__INIT;
  Synod__V1__EquivocationProof *pp = synod_wire_lend(w);
  g.proofs = &pp;
  g.n_proofs = 1;
  size_t glen = synod__v1__gossip_announcement__get_packed_size(&g);
  uint8_t *proof = malloc(plen + 1), *gossip = malloc(glen + 1);
  const char **peers = peer_names(srv);
  proof_ctx_t *pc = calloc(1, sizeof *pc);
  if (!proof || !gossip || !peers || !pc) {
    free(proof);
    free(gossip);
    free(peers);
    free(pc);
    return;
  }
  synod__v1__equivocation_proof__pack(w, proof);
  synod__v1__gossip_announcement__pack(&g, gossip);
  pc->srv = srv;
  pc->job = j;
  if (j)
    j->outstanding++;
  dirstore_proof_t p = {
      .user = v->user_id,
      .kind = (int)v->kind,
      .version = v->version,
      .guilty_key = v->key,
      .guilty_relay = v->relay_name,
      .proof = proof,
      .proof_len = plen,
      .gossip = gossip,
      .gossip_len = glen,
      .peers = peers,
      .npeers = srv->nlinks,
  };
  dirstore_put_proof(srv->db, &p, proof_stored, pc);
  free(proof);
  free(gossip);
  free(peers);
}

/* Builds and stores a proof of kind from statements a and b, when they
 * form one. */
static void build_proof(dir_job_t *j, Synod__V1__EquivocationKind kind,
                        const uint8_t *abody, size_t alen, const uint8_t *asig,
                        const uint8_t *bbody, size_t blen,
                        const uint8_t *bsig) {
  size_t nkeys = 0;
  synod_relay_key_t *keys = relay_keys(j->srv, &nkeys);
  if (!keys)
    return;
  Synod__V1__Signed a = SYNOD__V1__SIGNED__INIT, b = SYNOD__V1__SIGNED__INIT;
  a.body.data = synod_wire_lend(abody);
  a.body.len = alen;
  a.signature.data = synod_wire_lend(asig);
  a.signature.len = 64;
  b.body.data = synod_wire_lend(bbody);
  b.body.len = blen;
  b.signature.data = synod_wire_lend(bsig);
  b.signature.len = 64;
  synod_proof_t p;
  synod_proof_verdict_t v;
  int rc = synod_proof_build(&p, &v, kind, &a, &b, keys, nkeys);
  free(keys);
  if (rc != 0) {
    synod_log(SYNOD_LOG_INFO, "conflict without a proof",
              "user=%s kind=%d error=%s", j->info.user_id, (int)kind,
              synod_err_name(rc));
    return;
  }
  Synod__V1__EquivocationProof w;
  Synod__V1__Signed first, second;
  synod_proof_lend(&w, &first, &second, &p);
  put_proof(j->srv, j, &w, &v);
  synod_proof_free(&p);
}

/* --- one link through the queue -------------------------------------------- */

static void accepted(void *data, int status, const dirstore_rows_t *const *res,
                     size_t n) {
  dir_job_t *j = data;
  if (status != 0 || n < 2) {
    job_finish(j, status ? status : SYNOD_EDB, "not stored, try later");
    return;
  }
  int64_t inserted = dirstore_rows_int(res[0], 0, 0);
  size_t hlen;
  const uint8_t *h = dirstore_rows_col(res[n - 1], 0, 0, &hlen);
  if (h && hlen == 32 && synod_memeq(h, j->info.hash, 32)) {
    if (inserted) {
      synod_log(SYNOD_LOG_INFO, "announcement accepted", "user=%s version=%llu",
                j->info.user_id, (unsigned long long)j->info.version);
      kick_links(j->srv);
    }
    job_finish(j, 0, NULL);
    return;
  }
  /* Another process changed the chain between our read and write (or a
   * proof froze the user): read again and decide on what is there now. */
  if (j->retries++ < 2) {
    job_run(j);
    return;
  }
  job_finish(j, SYNOD_EAGAIN, "the chain changed meanwhile, try again");
}

static void job_write(dir_job_t *j) {
  server_t *srv = j->srv;
  if (!j->has_cs) {
    /* Only reached as the home relay: the namespace authority vouches. */
    synod_countersig_info_t ci;
    memset(&ci, 0, sizeof ci);
    memcpy(ci.user_id, j->info.user_id, sizeof ci.user_id);
    ci.version = j->info.version;
    memcpy(ci.announcement_hash, j->info.hash, 32);
    snprintf(ci.relay_name, sizeof ci.relay_name, "%s", srv->cfg->name);
    ci.time = server_now();
    synod_signed_t sg;
    int rc = synod_countersig_sign_by(&sg, &ci, srv->signer);
    if (rc != 0) {
      job_finish(j, rc, "cannot countersign");
      return;
    }
    j->cs_body = sg.body;
    j->cs_len = sg.body_len;
    memcpy(j->cs_sig, sg.signature, 64);
    j->has_cs = 1;
  }
  Synod__V1__Announcement a;
  lend_announcement(&a, j);
  Synod__V1__Countersignature cs = SYNOD__V1__COUNTERSIGNATURE__INIT;
  cs.body.data = j->cs_body;
  cs.body.len = j->cs_len;
  cs.signature.data = j->cs_sig;
  cs.signature.len = 64;
  Synod__V1__Announcement *ap = &a;
  Synod__V1__Countersignature *cp = &cs;
  Synod__V1__GossipAnnouncement g = SYNOD__V1__GOSSIP_ANNOUNCEMENT__INIT;
  g.announcements = &ap;
  g.n_announcements = 1;
  g.countersignatures = &cp;
  g.n_countersignatures = 1;
  size_t glen = synod__v1__gossip_announcement__get_packed_size(&g);
  uint8_t *gossip = malloc(glen + 1);
  const char **peers = peer_names(srv);
  if (!gossip || !peers) {
    free(gossip);
    free(peers);
    job_finish(j, SYNOD_ENOMEM, "out of memory");
    return;
  }
  synod__v1__gossip_announcement__pack(&g, gossip);
  char local[SYNOD_USERID_LOCAL_MAX + 1] = "";
  if (j->is_home) {
    size_t llen = (size_t)(strchr(j->info.user_id, '@') - j->info.user_id);
    memcpy(local, j->info.user_id, llen);
    local[llen] = '\0';
  }
  dirstore_link_t in = {
      .user = j->info.user_id,
      .version = j->info.version,
      .hash = j->info.hash,
      .body = j->body,
      .body_len = j->body_len,
      .signature = j->sig,
      .continuity = j->has_cont ? j->cont : NULL,
      .identity_key = j->info.identity_key,
      .time = j->info.time,
      .cs_relay = j->home,
      .cs_body = j->cs_body,
      .cs_len = j->cs_len,
      .cs_sig = j->cs_sig,
      .local = j->is_home ? local : NULL,
      .gossip = gossip,
      .gossip_len = glen,
      .peers = peers,
      .npeers = srv->nlinks,
  };
  dirstore_accept(srv->db, &in, accepted, j);
  free(gossip);
  free(peers);
}

static void state_read(void *data, int status,
                       const dirstore_rows_t *const *res, size_t n) {
  dir_job_t *j = data;
  if (status != 0 || n < 5) {
    job_finish(j, status ? status : SYNOD_EDB,
               "database unavailable, try later");
    return;
  }
  const dirstore_rows_t *head = res[0], *at = res[1], *cs = res[2];
  if (dirstore_rows_count(at)) {
    size_t hl, bl, sl;
    const uint8_t *h = dirstore_rows_col(at, 0, 0, &hl);
    const uint8_t *b = dirstore_rows_col(at, 0, 1, &bl);
    const uint8_t *sg = dirstore_rows_col(at, 0, 2, &sl);
    if (!h || hl != 32 || !b || !sg || sl != 64) {
      job_finish(j, SYNOD_EINTERNAL, "stored announcement unreadable");
      return;
    }
    size_t cbl = 0, csl = 0;
    const uint8_t *cb = dirstore_rows_col(cs, 0, 0, &cbl);
    const uint8_t *csg = dirstore_rows_col(cs, 0, 1, &csl);
    if (synod_memeq(h, j->info.hash, 32)) {
      /* Held already: harmless. Answer with the stored countersignature,
       * or store the one that is missing. */
      if (cb && csl == 64) {
        if (!j->has_cs) {
          j->cs_body = malloc(cbl + 1);
          if (!j->cs_body) {
            job_finish(j, SYNOD_ENOMEM, "out of memory");
            return;
          }
          memcpy(j->cs_body, cb, cbl);
          j->cs_len = cbl;
          memcpy(j->cs_sig, csg, 64);
          j->has_cs = 1;
        }
        job_finish(j, 0, NULL);
      } else {
        job_write(j);
      }
      return;
    }
    /* Two announcements for one user and version: evidence, not an
     * update. */
    synod_log(SYNOD_LOG_WARN, "conflicting announcement",
              "user=%s version=%llu", j->info.user_id,
              (unsigned long long)j->info.version);
    j->outstanding = 1;
    build_proof(j, SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT,
                b, bl, sg, j->body, j->body_len, j->sig);
    if (cb && csl == 64 && j->has_cs)
      build_proof(
          j, SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE,
          cb, cbl, csg, j->cs_body, j->cs_len, j->cs_sig);
    if (--j->outstanding == 0)
      job_finish(j, SYNOD_EEQUIVOCATION,
                 "a different announcement holds this version");
    return;
  }
  if (dirstore_rows_count(res[3])) {
    job_finish(j, SYNOD_EEQUIVOCATION,
               "this user's chain is frozen by an equivocation proof");
    return;
  }
  synod_chain_head_t held;
  memset(&held, 0, sizeof held);
  int has_head = dirstore_rows_count(head) > 0;
  if (has_head) {
    size_t hl, kl;
    const uint8_t *h = dirstore_rows_col(head, 0, 1, &hl);
    const uint8_t *k = dirstore_rows_col(head, 0, 2, &kl);
    if (!h || hl != 32 || !k || kl != 32) {
      job_finish(j, SYNOD_EINTERNAL, "stored head unreadable");
      return;
    }
    held.version = (uint64_t)dirstore_rows_int(head, 0, 0);
    memcpy(held.hash, h, 32);
    memcpy(held.identity_key, k, 32);
    held.time = (uint64_t)dirstore_rows_int(head, 0, 3);
  }
  uint64_t want = has_head ? held.version + 1 : 1;
  if (j->info.version > want && j->from != FROM_CLIENT) {
    /* Gossip ahead of us: a push we missed. Ask that peer for the links
     * between, over our link to it. */
    link_t *l = j->l ? j->l : server_link(j->srv, j->s->peer->name);
    if (l)
      fetch(l, j->info.user_id, want - 1, j->info.version);
  }
  if (j->info.version != want) {
    job_finish(j, SYNOD_ECHAIN,
               j->info.version > want
                   ? "links are missing: publish every version in order"
                   : "older than the chain held");
    return;
  }
  Synod__V1__Announcement a;
  lend_announcement(&a, j);
  const Synod__V1__Announcement *links[1] = {&a};
  synod_chain_outcome_t out;
  int rc = synod_chain_check(&out, j->info.user_id, has_head ? &held : NULL,
                             links, 1, server_now());
  if (rc != 0) {
    job_finish(j, rc, "the announcement does not extend the chain held");
    return;
  }
  if (j->from == FROM_CLIENT &&
      !synod_memeq(j->s->key, j->info.identity_key, 32) &&
      !(has_head && synod_memeq(j->s->key, held.identity_key, 32))) {
    job_finish(j, SYNOD_EDENIED,
               "the session's key is neither the announced nor the previous "
               "identity key");
    return;
  }
  if (dirstore_rows_count(res[4])) {
    job_finish(j, SYNOD_EDENIED,
               "that identity key is bound to another account");
    return;
  }
  job_write(j);
}

static void job_run(dir_job_t *j) {
  server_t *srv = j->srv;
  if (srv->stopping || !db_is_up(srv->db)) {
    job_finish(j, SYNOD_EAGAIN, "database unavailable, try later");
    return;
  }
  char local[SYNOD_USERID_LOCAL_MAX + 1] = "";
  if (j->is_home) {
    size_t llen = (size_t)(strchr(j->info.user_id, '@') - j->info.user_id);
    memcpy(local, j->info.user_id, llen);
    local[llen] = '\0';
  }
  dirstore_state(srv->db, j->info.user_id, j->info.version, j->home,
                 j->is_home ? local : NULL, j->info.identity_key, state_read,
                 j);
}

/*
 * Checks announcement a (with the countersignatures cs[0..ncs), hint the
 * index to try first) and queues it. require_cs: a peer's gossip, or a
 * visitor's Publish (always, unless this relay is the home). Returns 0
 * (queued: the job answers) or a code with *why.
 */
static int job_submit(server_t *srv, int from, session_t *s, link_t *l,
                      uint64_t rid, const Synod__V1__Announcement *a,
                      Synod__V1__Countersignature *const *cs, size_t ncs,
                      size_t hint, const char **why) {
  dir_job_t *j = calloc(1, sizeof *j);
  if (!j) {
    *why = "out of memory";
    return SYNOD_ENOMEM;
  }
  j->srv = srv;
  j->from = from;
  j->s = s;
  j->l = l;
  j->rid = rid;
  int rc;
  if (!a) {
    *why = "no announcement";
    rc = SYNOD_EPARSE;
    goto fail;
  }
  rc = synod_announce_verify(&j->info, a, server_now());
  if (rc != 0) {
    *why = rc == SYNOD_EVERIFY  ? "the announcement's signature does not verify"
           : rc == SYNOD_EINVAL ? "the announcement is dated in the future"
                                : "malformed announcement";
    goto fail;
  }
  if (from == FROM_CLIENT && strcmp(j->info.user_id, s->user) != 0) {
    *why = "a client publishes its own announcements only";
    rc = SYNOD_EDENIED;
    goto fail;
  }
  const char *home = home_of(j->info.user_id);
  if (!home) {
    *why = "malformed user id";
    rc = SYNOD_EPARSE;
    goto fail;
  }
  snprintf(j->home, sizeof j->home, "%s", home);
  j->is_home = strcmp(home, srv->cfg->name) == 0;
  if (!(j->is_home && from == FROM_CLIENT)) {
    size_t idx;
    rc = find_countersig(srv, &j->info, cs, ncs, hint, &idx, why);
    if (rc != 0)
      goto fail;
    j->cs_len = cs[idx]->body.len;
    j->cs_body = malloc(j->cs_len + 1);
    if (!j->cs_body) {
      rc = SYNOD_ENOMEM;
      *why = "out of memory";
      goto fail;
    }
    memcpy(j->cs_body, cs[idx]->body.data, j->cs_len);
    memcpy(j->cs_sig, cs[idx]->signature.data, 64);
    j->has_cs = 1;
  }
  j->body_len = a->body.len;
  j->body = malloc(j->body_len + 1);
  if (!j->body) {
    rc = SYNOD_ENOMEM;
    *why = "out of memory";
    goto fail;
  }
  memcpy(j->body, a->body.data, j->body_len);
  memcpy(j->sig, a->signature.data, 64);
  if (a->continuity_signature.len == 64) {
    memcpy(j->cont, a->continuity_signature.data, 64);
    j->has_cont = 1;
  }
  job_enqueue(j);
  return 0;
fail:
  job_free(j);
  return rc;
}

/* --- gossip received ------------------------------------------------------- */

static void proof_in(server_t *srv, const Synod__V1__EquivocationProof *p,
                     const char *peer) {
  size_t nkeys = 0;
  synod_relay_key_t *keys = relay_keys(srv, &nkeys);
  if (!keys)
    return;
  synod_proof_verdict_t v;
  int rc = synod_proof_verify(&v, p, keys, nkeys);
  free(keys);
  if (rc != 0) {
    synod_log(SYNOD_LOG_INFO, "gossiped proof not verified", "peer=%s error=%s",
              peer, synod_err_name(rc));
    return;
  }
  put_proof(srv, NULL, p, &v);
}

static void gossip_in(server_t *srv, session_t *s, link_t *l,
                      const Synod__V1__GossipAnnouncement *g) {
  /* cppcheck-suppress nullPointer ; exactly one of s and l is set */
  const char *peer = s ? s->peer->name : l->peer->name;
  for (size_t i = 0; i < g->n_announcements; i++) {
    const char *why = NULL;
    int rc =
        job_submit(srv, s ? FROM_PEER : FROM_LINK, s, l, 0, g->announcements[i],
                   g->countersignatures, g->n_countersignatures, i, &why);
    if (rc != 0)
      synod_log(SYNOD_LOG_INFO, "gossiped announcement refused",
                "peer=%s error=%s reason=%s", peer, synod_err_name(rc), why);
  }
  for (size_t i = 0; i < g->n_proofs; i++)
    if (g->proofs[i])
      proof_in(srv, g->proofs[i], peer);
}

/* --- reads: lookup, fetch, proofs, countersignatures ----------------------- */

enum { READ_LOOKUP, READ_FETCH, READ_PROOFS, READ_COUNTERSIG, READ_HEADS };

typedef struct dir_read {
  session_t *s;
  uint64_t rid;
  int kind;
  char user[SYNOD_USERID_MAX + 1];
  uint64_t version;
  uint8_t hash[32];
} dir_read_t;

/* Unpacks the stored proofs of rows (column 0) into out (at most max),
 * within *room bytes. Returns how many; free each with
 * synod_wire_free_message. */
static size_t unpack_proofs(const dirstore_rows_t *rows,
                            Synod__V1__EquivocationProof **out, size_t max,
                            size_t *room) {
  size_t n = 0;
  for (size_t i = 0; i < dirstore_rows_count(rows) && n < max; i++) {
    size_t len;
    const uint8_t *b = dirstore_rows_col(rows, i, 0, &len);
    ProtobufCMessage *m;
    if (!b || len + 16 > *room ||
        synod_wire_unpack_message(&synod__v1__equivocation_proof__descriptor, b,
                                  len, &m) != 0)
      continue;
    *room -= len + 16;
    out[n++] = (Synod__V1__EquivocationProof *)m;
  }
  return n;
}

/* Lends the links of rows (version, body, signature, continuity, cs body,
 * cs signature) to a[] / cs[] within *room bytes; returns how many. */
static size_t
lend_links(const dirstore_rows_t *rows, Synod__V1__Announcement *a,
           Synod__V1__Announcement **ap, Synod__V1__Countersignature *c,
           Synod__V1__Countersignature **cp, size_t *ncs, size_t *room) {
  size_t n = 0;
  *ncs = 0;
  for (size_t i = 0; i < dirstore_rows_count(rows) && n < DIRSTORE_MAX_LINKS;
       i++) {
    size_t bl, sl, kl, cbl, csl;
    const uint8_t *b = dirstore_rows_col(rows, i, 1, &bl);
    const uint8_t *sg = dirstore_rows_col(rows, i, 2, &sl);
    const uint8_t *k = dirstore_rows_col(rows, i, 3, &kl);
    const uint8_t *cb = dirstore_rows_col(rows, i, 4, &cbl);
    const uint8_t *cs = dirstore_rows_col(rows, i, 5, &csl);
    size_t need = bl + 64 + (k ? 64 : 0) + (cb ? cbl + 64 : 0) + 32;
    if (!b || !sg || need > *room)
      break;
    *room -= need;
    synod__v1__announcement__init(&a[n]);
    a[n].body.data = synod_wire_lend(b);
    a[n].body.len = bl;
    a[n].signature.data = synod_wire_lend(sg);
    a[n].signature.len = sl;
    if (k) {
      a[n].continuity_signature.data = synod_wire_lend(k);
      a[n].continuity_signature.len = kl;
    }
    ap[n] = &a[n];
    if (cb && cs) {
      synod__v1__countersignature__init(&c[*ncs]);
      c[*ncs].body.data = synod_wire_lend(cb);
      c[*ncs].body.len = cbl;
      c[*ncs].signature.data = synod_wire_lend(cs);
      c[*ncs].signature.len = csl;
      cp[*ncs] = &c[*ncs];
      (*ncs)++;
    }
    n++;
  }
  return n;
}

static void chain_read(void *data, int status,
                       const dirstore_rows_t *const *res, size_t nres) {
  dir_read_t *r = data;
  session_t *s = r->s;
  server_t *srv = s->srv;
  if (status != 0 || nres < 3) {
    s_error(s, r->rid, status == SYNOD_EAGAIN ? SYNOD_EAGAIN : SYNOD_EDB,
            "database unavailable, try later");
    goto out;
  }
  size_t room = srv->cfg->max_frame_bytes - FRAME_SLACK;
  Synod__V1__Announcement a[DIRSTORE_MAX_LINKS];
  Synod__V1__Announcement *ap[DIRSTORE_MAX_LINKS];
  Synod__V1__Countersignature c[DIRSTORE_MAX_LINKS];
  Synod__V1__Countersignature *cp[DIRSTORE_MAX_LINKS];
  Synod__V1__EquivocationProof *proofs[DIRSTORE_MAX_PROOFS];
  size_t ncs = 0;
  size_t nl = lend_links(res[1], a, ap, c, cp, &ncs, &room);
  size_t np = unpack_proofs(res[2], proofs, DIRSTORE_MAX_PROOFS, &room);
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  f.request_id = r->rid;
  if (r->kind == READ_LOOKUP) {
    synod_lookup_info_t li;
    memset(&li, 0, sizeof li);
    li.time = server_now();
    memcpy(li.user_id, r->user, sizeof li.user_id);
    size_t hl;
    const uint8_t *h = dirstore_rows_col(res[0], 0, 1, &hl);
    if (h && hl == 32) {
      li.version = (uint64_t)dirstore_rows_int(res[0], 0, 0);
      memcpy(li.head_hash, h, 32);
    }
    snprintf(li.relay_name, sizeof li.relay_name, "%s", srv->cfg->name);
    synod_signed_t sg;
    int rc = synod_lookup_sign_by(&sg, &li, srv->signer);
    if (rc != 0) {
      s_error(s, r->rid, rc, "cannot sign the answer");
    } else {
      Synod__V1__LookupAnswer la = SYNOD__V1__LOOKUP_ANSWER__INIT;
      synod_signed_lend(&la.body, &la.signature, &sg);
      la.announcements = ap;
      la.n_announcements = nl;
      la.countersignatures = cp;
      la.n_countersignatures = ncs;
      la.proofs = proofs;
      la.n_proofs = np;
      f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER;
      f.lookup_answer = &la;
      s_send(s, &f);
      synod_signed_free(&sg);
    }
  } else {
    Synod__V1__GossipAnnouncement g = SYNOD__V1__GOSSIP_ANNOUNCEMENT__INIT;
    g.announcements = ap;
    g.n_announcements = nl;
    g.countersignatures = cp;
    g.n_countersignatures = ncs;
    g.proofs = proofs;
    g.n_proofs = np;
    f.body_case = SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT;
    f.gossip_announcement = &g;
    s_send(s, &f);
  }
  for (size_t i = 0; i < np; i++)
    synod_wire_free_message(&proofs[i]->base);
out:
  session_unhold(s);
  free(r);
}

static void proofs_read(void *data, int status,
                        const dirstore_rows_t *const *res, size_t nres) {
  dir_read_t *r = data;
  session_t *s = r->s;
  if (status != 0 || nres < 1) {
    s_error(s, r->rid, status == SYNOD_EAGAIN ? SYNOD_EAGAIN : SYNOD_EDB,
            "database unavailable, try later");
  } else {
    size_t room = s->srv->cfg->max_frame_bytes - FRAME_SLACK;
    Synod__V1__EquivocationProof *proofs[DIRSTORE_MAX_PROOFS];
    size_t np = unpack_proofs(res[0], proofs, DIRSTORE_MAX_PROOFS, &room);
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__ProofList pl = SYNOD__V1__PROOF_LIST__INIT;
    f.request_id = r->rid;
    f.body_case = SYNOD__V1__FRAME__BODY_PROOF_LIST;
    f.proof_list = &pl;
    pl.proofs = proofs;
    pl.n_proofs = np;
    s_send(s, &f);
    for (size_t i = 0; i < np; i++)
      synod_wire_free_message(&proofs[i]->base);
  }
  session_unhold(s);
  free(r);
}

static void countersig_read(void *data, int status,
                            const dirstore_rows_t *const *res, size_t nres) {
  dir_read_t *r = data;
  session_t *s = r->s;
  size_t hl = 0, bl = 0, sl = 0;
  const uint8_t *h = NULL, *b = NULL, *sg = NULL;
  if (status == 0 && nres >= 1) {
    h = dirstore_rows_col(res[0], 0, 0, &hl);
    b = dirstore_rows_col(res[0], 0, 1, &bl);
    sg = dirstore_rows_col(res[0], 0, 2, &sl);
  }
  if (status != 0 || nres < 1) {
    s_error(s, r->rid, status == SYNOD_EAGAIN ? SYNOD_EAGAIN : SYNOD_EDB,
            "database unavailable, try later");
  } else if (!h || hl != 32) {
    s_error(s, r->rid, SYNOD_ENOENT, "no announcement of that version");
  } else if (!synod_memeq(h, r->hash, 32)) {
    s_error(s, r->rid, SYNOD_EEQUIVOCATION,
            "a different announcement holds that version");
  } else if (!b || sl != 64) {
    s_error(s, r->rid, SYNOD_ENOENT, "no countersignature held");
  } else {
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__CountersignResponse cr = SYNOD__V1__COUNTERSIGN_RESPONSE__INIT;
    Synod__V1__Countersignature cs = SYNOD__V1__COUNTERSIGNATURE__INIT;
    cs.body.data = synod_wire_lend(b);
    cs.body.len = bl;
    cs.signature.data = synod_wire_lend(sg);
    cs.signature.len = 64;
    cr.countersignature = &cs;
    f.request_id = r->rid;
    f.body_case = SYNOD__V1__FRAME__BODY_COUNTERSIGN_RESPONSE;
    f.countersign_response = &cr;
    s_send(s, &f);
  }
  session_unhold(s);
  free(r);
}

static dir_read_t *read_new(session_t *s, uint64_t rid, int kind,
                            const char *user) {
  if (user && user[0] && !home_of(user)) {
    s_error(s, rid, SYNOD_EPARSE, "malformed user id");
    return NULL;
  }
  if (!db_is_up(s->srv->db)) {
    s_error(s, rid, SYNOD_EAGAIN, "database unavailable, try later");
    return NULL;
  }
  dir_read_t *r = calloc(1, sizeof *r);
  if (!r) {
    s_error(s, rid, SYNOD_ENOMEM, "out of memory");
    return NULL;
  }
  r->s = s;
  r->rid = rid;
  r->kind = kind;
  snprintf(r->user, sizeof r->user, "%s", user ? user : "");
  s->pending++;
  return r;
}

/* --- heads ----------------------------------------------------------------- */

/* Sends our heads (rows of dirstore_heads) on conn as HeadsSummary pushes
 * that each fit the frame limit; stops at the first frame that cannot be
 * sent. */
static void send_heads(server_t *srv, synod_conn_t *conn,
                       const dirstore_rows_t *rows) {
  size_t n = dirstore_rows_count(rows);
  Synod__V1__Head *h = calloc(n + 1, sizeof *h);
  Synod__V1__Head **hp = calloc(n + 1, sizeof *hp);
  char(*users)[SYNOD_USERID_MAX + 1] = calloc(n + 1, sizeof *users);
  size_t limit = srv->cfg->max_frame_bytes - FRAME_SLACK, bytes = 0, first = 0,
         k = 0;
  for (size_t i = 0; h && hp && users && i <= n; i++) {
    size_t hl = 0, ul = 0;
    if (i < n)
      (void)dirstore_rows_col(rows, i, 0, &ul);
    size_t need = ul + 48;
    if (k > first && (i == n || bytes + need > limit)) {
      Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
      Synod__V1__HeadsSummary hs = SYNOD__V1__HEADS_SUMMARY__INIT;
      f.body_case = SYNOD__V1__FRAME__BODY_HEADS_SUMMARY;
      f.heads_summary = &hs;
      hs.heads = hp + first;
      hs.n_heads = k - first;
      if (synod_conn_send(conn, &f) != 0)
        break; /* the next exchange covers the rest */
      first = k;
      bytes = 0;
    }
    if (i == n)
      break;
    const uint8_t *hash = dirstore_rows_col(rows, i, 2, &hl);
    if (dirstore_rows_str(rows, i, 0, users[k], sizeof users[k]) != 0 ||
        !hash || hl != 32)
      continue;
    synod__v1__head__init(&h[k]);
    h[k].user_id = users[k];
    h[k].version = (uint64_t)dirstore_rows_int(rows, i, 1);
    h[k].head_hash.data = synod_wire_lend(hash);
    h[k].head_hash.len = 32;
    hp[k] = &h[k];
    bytes += need;
    k++;
  }
  free(h);
  free(hp);
  free(users);
}

static void heads_push(void *data, int status,
                       const dirstore_rows_t *const *res, size_t nres) {
  session_t *s = data;
  if (status != 0 || nres < 1)
    synod_log(SYNOD_LOG_WARN, "reading heads failed", "peer=%s error=%s",
              s->peer->name, synod_err_name(status));
  else if (s->conn)
    send_heads(s->srv, s->conn, res[0]);
  session_unhold(s);
}

void dir_peer_up(session_t *s) {
  if (!db_is_up(s->srv->db))
    return; /* the peer reconnects, and asks again, when ours is back */
  s->pending++;
  dirstore_heads(s->srv->db, heads_push, s);
}

static void heads_push_link(void *data, int status,
                            const dirstore_rows_t *const *res, size_t nres) {
  link_t *l = data;
  l->pending--;
  if (status == 0 && nres >= 1 && l->ready && l->conn)
    send_heads(l->srv, l->conn, res[0]);
  link_kick(l);
}

void dir_link_summary(link_t *l) {
  if (!l->ready || !db_is_up(l->srv->db))
    return;
  l->pending++;
  dirstore_heads(l->srv->db, heads_push_link, l);
}

typedef struct dir_fetch {
  struct dir_fetch *next;
  link_t *l;
  synod_conn_t *conn; /* the connection it was asked on */
  uint64_t rid;       /* 0: waiting to be sent */
  uint64_t from, want;
  char user[SYNOD_USERID_MAX + 1];
} dir_fetch_t;

typedef struct their_head {
  char user[SYNOD_USERID_MAX + 1];
  uint64_t version;
  uint8_t hash[32];
} their_head_t;

typedef struct heads_cmp {
  link_t *l;
  size_t n;
  their_head_t *h;
} heads_cmp_t;

/* Sends fetches waiting for l (rid 0) while fewer than FETCH_WINDOW are
 * unanswered on its connection, and forgets those of earlier connections:
 * a relay answering thousands of fetches at once would overrun its own
 * write limit and drop us as a peer that does not read. */
static void fetch_pump(link_t *l) {
  server_t *srv = l->srv;
  size_t out = 0;
  for (dir_fetch_t **pp = &srv->dir_fetches; *pp;) {
    dir_fetch_t *e = *pp;
    if (e->l == l && (e->conn != l->conn || !l->ready)) {
      *pp = e->next;
      free(e);
      continue;
    }
    if (e->l == l && e->rid)
      out++;
    pp = &e->next;
  }
  for (dir_fetch_t *e = srv->dir_fetches; e && out < FETCH_WINDOW;
       e = e->next) {
    if (e->l != l || e->rid)
      continue;
    Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
    Synod__V1__FetchAnnouncements fa;
    synod__v1__fetch_announcements__init(&fa);
    f.request_id = l->next_request + 1;
    f.body_case = SYNOD__V1__FRAME__BODY_FETCH_ANNOUNCEMENTS;
    f.fetch_announcements = &fa;
    fa.user_id = e->user;
    fa.from_version = e->from;
    if (synod_conn_send(l->conn, &f) != 0)
      break; /* the next answer pumps again */
    e->rid = ++l->next_request;
    out++;
    synod_log(SYNOD_LOG_DEBUG, "fetching announcements",
              "peer=%s user=%s from=%llu want=%llu", l->peer->name, e->user,
              (unsigned long long)e->from, (unsigned long long)e->want);
  }
}

/* Asks the peer of l for user's links above from (we want its head at
 * version want), once per user and connection. */
static void fetch(link_t *l, const char *user, uint64_t from, uint64_t want) {
  server_t *srv = l->srv;
  if (!l->ready || !l->conn)
    return;
  for (dir_fetch_t *o = srv->dir_fetches; o; o = o->next)
    if (o->l == l && o->conn == l->conn && strcmp(o->user, user) == 0)
      return; /* asked already; its answer continues as needed */
  dir_fetch_t *e = calloc(1, sizeof *e);
  if (!e)
    return;
  e->l = l;
  e->conn = l->conn;
  e->from = from;
  e->want = want;
  snprintf(e->user, sizeof e->user, "%s", user);
  /* At the tail: asked in the order they were found. */
  dir_fetch_t **pp = &srv->dir_fetches;
  while (*pp)
    pp = &(*pp)->next;
  *pp = e;
  fetch_pump(l);
}

/* One of our heads, pointing into the rows of dirstore_heads(). */
typedef struct our_head {
  char user[SYNOD_USERID_MAX + 1];
  uint64_t version;
  const uint8_t *hash;
} our_head_t;

static int cmp_head(const void *a, const void *b) {
  return strcmp(((const our_head_t *)a)->user, ((const our_head_t *)b)->user);
}

static void heads_compare(void *data, int status,
                          const dirstore_rows_t *const *res, size_t nres) {
  heads_cmp_t *hc = data;
  link_t *l = hc->l;
  l->pending--;
  our_head_t *ours = NULL;
  size_t n = 0;
  if (status == 0 && nres >= 1) {
    size_t rows = dirstore_rows_count(res[0]);
    ours = calloc(rows + 1, sizeof *ours);
    for (size_t k = 0; ours && k < rows; k++) {
      size_t hl;
      const uint8_t *h = dirstore_rows_col(res[0], k, 2, &hl);
      if (!h || hl != 32 ||
          dirstore_rows_str(res[0], k, 0, ours[n].user, sizeof ours[n].user))
        continue;
      ours[n].version = (uint64_t)dirstore_rows_int(res[0], k, 1);
      ours[n].hash = h;
      n++;
    }
    /* The database orders by its collation: sort bytewise here. */
    if (ours)
      qsort(ours, n, sizeof *ours, cmp_head);
  }
  if (!ours) {
    synod_log(SYNOD_LOG_WARN, "reading heads failed", "peer=%s error=%s",
              l->peer->name, synod_err_name(status ? status : SYNOD_ENOMEM));
  } else {
    for (size_t i = 0; i < hc->n; i++) {
      their_head_t *t = &hc->h[i];
      our_head_t key = {0};
      memcpy(key.user, t->user, sizeof key.user);
      const our_head_t *o = bsearch(&key, ours, n, sizeof *ours, cmp_head);
      uint64_t v = o ? o->version : 0;
      int same = o && synod_memeq(o->hash, t->hash, 32);
      /* Newer there, or another hash at our version (a conflict: fetch
       * the evidence, which starts with the link at our own version). */
      if (t->version > v || (t->version == v && !same))
        fetch(l, t->user, v ? v - 1 : 0, t->version);
    }
  }
  free(ours);
  free(hc->h);
  free(hc);
  link_kick(l);
}

static void link_heads(link_t *l, const Synod__V1__HeadsSummary *hs) {
  server_t *srv = l->srv;
  /* A summary starts a new exchange on this connection: fetches asked on
   * an earlier one will never be answered. */
  for (dir_fetch_t **pp = &srv->dir_fetches; *pp;) {
    dir_fetch_t *e = *pp;
    if (e->l == l) {
      *pp = e->next;
      free(e);
    } else {
      pp = &e->next;
    }
  }
  heads_cmp_t *hc = calloc(1, sizeof *hc);
  if (!hc)
    return;
  hc->l = l;
  hc->h = calloc(hs->n_heads + 1, sizeof *hc->h);
  if (!hc->h) {
    free(hc);
    return;
  }
  for (size_t i = 0; i < hs->n_heads; i++) {
    Synod__V1__Head *h = hs->heads[i];
    if (!h || !h->user_id || !home_of(h->user_id) || h->head_hash.len != 32 ||
        h->version == 0)
      continue;
    their_head_t *t = &hc->h[hc->n++];
    snprintf(t->user, sizeof t->user, "%s", h->user_id);
    t->version = h->version;
    memcpy(t->hash, h->head_hash.data, 32);
  }
  if (hc->n == 0 || !db_is_up(srv->db)) {
    free(hc->h);
    free(hc);
    return;
  }
  l->pending++;
  dirstore_heads(srv->db, heads_compare, hc);
}

static void link_gossip(link_t *l, uint64_t rid,
                        const Synod__V1__GossipAnnouncement *g) {
  server_t *srv = l->srv;
  dir_fetch_t *e = NULL;
  for (dir_fetch_t **pp = &srv->dir_fetches; rid && *pp; pp = &(*pp)->next) {
    if ((*pp)->l == l && (*pp)->rid == rid) {
      e = *pp;
      *pp = e->next;
      break;
    }
  }
  gossip_in(srv, NULL, l, g);
  if (e) {
    /* A capped answer: ask for the rest, from the last link received. */
    uint64_t last = 0;
    for (size_t i = 0; i < g->n_announcements; i++) {
      synod_announce_info_t info;
      if (g->announcements[i] &&
          synod_announce_verify(&info, g->announcements[i], server_now()) ==
              0 &&
          strcmp(info.user_id, e->user) == 0 && info.version > last)
        last = info.version;
    }
    char user[SYNOD_USERID_MAX + 1];
    memcpy(user, e->user, sizeof user);
    uint64_t want = e->want;
    free(e);
    if (last && last < want)
      fetch(l, user, last, want);
  }
  if (l->ready)
    fetch_pump(l);
}

/* --- entry points ---------------------------------------------------------- */

static void handle_publish(session_t *s, uint64_t rid, Synod__V1__Publish *m) {
  const char *why = NULL;
  if (!db_is_up(s->srv->db)) {
    s_error(s, rid, SYNOD_EAGAIN, "database unavailable, try later");
    return;
  }
  int rc = job_submit(s->srv, FROM_CLIENT, s, NULL, rid, m->announcement,
                      m->countersignatures, m->n_countersignatures, 0, &why);
  if (rc != 0) {
    synod_log(SYNOD_LOG_INFO, "publish refused", "user=%s error=%s reason=%s",
              s->user, synod_err_name(rc), why);
    s_error(s, rid, rc, why);
  }
}

int dir_session_frame(session_t *s, Synod__V1__Frame *f) {
  server_t *srv = s->srv;
  uint64_t rid = f->request_id;
  int peer = s->peer != NULL;
  dir_read_t *r;
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_PUBLISH:
    if (peer)
      s_error(s, rid, SYNOD_EDENIED, "a client request");
    else
      handle_publish(s, rid, f->publish);
    return 1;
  case SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST:
    if ((r = read_new(s, rid, READ_LOOKUP, f->lookup_request->user_id))) {
      if (!r->user[0]) {
        s_error(s, rid, SYNOD_EPARSE, "malformed user id");
        session_unhold(s);
        free(r);
        return 1;
      }
      dirstore_chain(srv->db, r->user, f->lookup_request->from_version, 1,
                     home_of(r->user), chain_read, r);
    }
    return 1;
  case SYNOD__V1__FRAME__BODY_FETCH_ANNOUNCEMENTS:
    if (!peer) {
      s_error(s, rid, SYNOD_EDENIED, "relay-to-relay request");
      return 1;
    }
    if ((r = read_new(s, rid, READ_FETCH, f->fetch_announcements->user_id))) {
      if (!r->user[0]) {
        s_error(s, rid, SYNOD_EPARSE, "malformed user id");
        session_unhold(s);
        free(r);
        return 1;
      }
      dirstore_chain(srv->db, r->user, f->fetch_announcements->from_version, 0,
                     home_of(r->user), chain_read, r);
    }
    return 1;
  case SYNOD__V1__FRAME__BODY_PROOF_REQUEST:
    if ((r = read_new(s, rid, READ_PROOFS, f->proof_request->user_id)))
      dirstore_proofs(srv->db, r->user, f->proof_request->relay_name,
                      proofs_read, r);
    return 1;
  case SYNOD__V1__FRAME__BODY_COUNTERSIGN_REQUEST: {
    Synod__V1__CountersignRequest *q = f->countersign_request;
    const char *home = home_of(q->user_id);
    if (!home || q->announcement_hash.len != 32) {
      s_error(s, rid, SYNOD_EPARSE, "malformed request");
      return 1;
    }
    if (strcmp(home, srv->cfg->name) != 0) {
      s_error(s, rid, SYNOD_EDENIED, "not a user of this relay");
      return 1;
    }
    if ((r = read_new(s, rid, READ_COUNTERSIG, q->user_id))) {
      r->version = q->version;
      memcpy(r->hash, q->announcement_hash.data, 32);
      dirstore_countersig(srv->db, r->user, r->version, srv->cfg->name,
                          countersig_read, r);
    }
    return 1;
  }
  case SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT:
    if (!peer)
      s_error(s, rid, SYNOD_EDENIED, "relay-to-relay request");
    else
      gossip_in(srv, s, NULL, f->gossip_announcement);
    return 1;
  case SYNOD__V1__FRAME__BODY_HEADS_SUMMARY:
    if (!peer) {
      s_error(s, rid, SYNOD_EDENIED, "relay-to-relay request");
    } else {
      /* Our own link to that peer fetches what we lack. */
      link_t *l = server_link(srv, s->peer->name);
      if (l)
        link_heads(l, f->heads_summary);
    }
    return 1;
  case SYNOD__V1__FRAME__BODY_PUBLISH_RESULT:
  case SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER:
  case SYNOD__V1__FRAME__BODY_PROOF_LIST:
  case SYNOD__V1__FRAME__BODY_COUNTERSIGN_RESPONSE:
    s_error(s, rid, SYNOD_EDENIED, "an answer nobody asked for");
    return 1;
  default:
    return 0;
  }
}

int dir_link_frame(link_t *l, Synod__V1__Frame *f) {
  switch (f->body_case) {
  case SYNOD__V1__FRAME__BODY_HEADS_SUMMARY:
    link_heads(l, f->heads_summary);
    return 1;
  case SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT:
    link_gossip(l, f->request_id, f->gossip_announcement);
    return 1;
  default:
    return 0;
  }
}

int dir_link_push(link_t *l, const uint8_t *body, size_t len) {
  if (!l->conn)
    return SYNOD_ECLOSED;
  ProtobufCMessage *m;
  if (synod_wire_unpack_message(&synod__v1__gossip_announcement__descriptor,
                                body, len, &m) != 0)
    return SYNOD_EPARSE;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT;
  f.gossip_announcement = (Synod__V1__GossipAnnouncement *)m;
  int rc = synod_conn_send(l->conn, &f);
  synod_wire_free_message(m);
  return rc;
}

void dir_free(server_t *srv) {
  while (srv->dir_fetches) {
    dir_fetch_t *e = srv->dir_fetches;
    srv->dir_fetches = e->next;
    free(e);
  }
  while (srv->dir_queue) {
    dir_job_t *j = srv->dir_queue;
    srv->dir_queue = j->next;
    job_free(j);
  }
  srv->dir_queue_tail = NULL;
}
