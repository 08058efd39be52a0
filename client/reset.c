/*
 * Key reset (proto/README.md 7.1 rule 5, 7.2): a new identity key and
 * device key for a user whose device is lost or whose keys are
 * compromised, bound to the account with a code of the home operator's
 * `synod-relay user reenroll`, then published as an explicit reset
 * announcement that follows the home relay's head of our chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "synod/announce.h"
#include "synod/statement.h"
#include "synod/wire.h"

#define DEFAULT_TIMEOUT_MS 5000
#define RESET_KEYS_FILE    "keys.reset"

static uint64_t opt_timeout(const synod_client_net_opts_t *o) {
  return o && o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* One session to the home relay as c's (new) key, with the code when not
 * NULL, answered by Ready and then a Pong: the relay took the key. */
static int probe_home(synod_client_t *c, const synod_client_relay_t *home,
                      const char *code, const synod_client_net_opts_t *opts,
                      synod_reset_result_t *res) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping ping = SYNOD__V1__PING__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &ping;
  fanout_target_t t = {.relay = home, .request = &f, .enrollment_code = code};
  int rc = fanout_run(c, &t, 1, opt_timeout(opts));
  if (rc == 0) {
    rc = t.status;
    snprintf(res->reason, sizeof res->reason, "%s", t.reason);
  }
  if (rc == 0 && t.answer->body_case != SYNOD__V1__FRAME__BODY_PONG) {
    rc = SYNOD_EPROTO;
    snprintf(res->reason, sizeof res->reason, "unexpected answer");
  }
  synod_wire_free(t.answer);
  return rc;
}

/*
 * The head of our chain as the home relay holds it, verified: its signed
 * LookupAnswer (pinned key, its name, our user) and the head link, whose
 * hash must be the signed head hash. *head is NULL when it holds none.
 * The reset follows this head, not our own newest link: whoever held the
 * old key may have published past it.
 */
static int home_head(synod_client_t *c, const synod_client_relay_t *home,
                     const synod_client_net_opts_t *opts,
                     Synod__V1__Frame **answer,
                     const Synod__V1__Announcement **head) {
  *answer = NULL;
  *head = NULL;
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__LookupRequest q = SYNOD__V1__LOOKUP_REQUEST__INIT;
  f.body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
  f.lookup_request = &q;
  q.user_id = c->user_id;
  q.from_version = 0; /* the head link only */
  fanout_target_t t = {.relay = home, .request = &f};
  int rc = fanout_run(c, &t, 1, opt_timeout(opts));
  if (rc == 0)
    rc = t.status;
  if (rc != 0)
    return rc;
  *answer = t.answer;
  if (t.answer->body_case != SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER)
    return SYNOD_EPROTO;
  const Synod__V1__LookupAnswer *la = t.answer->lookup_answer;
  uint64_t now = opts && opts->now ? opts->now : (uint64_t)time(NULL);
  synod_lookup_info_t li;
  rc = synod_lookup_verify(&li, la, home->key, now, opts ? opts->window : 0);
  if (rc == 0 && (strcmp(li.relay_name, home->name) != 0 ||
                  strcmp(li.user_id, c->user_id) != 0))
    rc = SYNOD_EVERIFY;
  if (rc != 0 || li.version == 0)
    return rc;
  if (la->n_announcements == 0)
    return SYNOD_EPROTO;
  const Synod__V1__Announcement *a = la->announcements[la->n_announcements - 1];
  synod_announce_info_t ai;
  rc = synod_announce_verify(&ai, a, now);
  if (rc == 0 &&
      (strcmp(ai.user_id, c->user_id) != 0 || ai.version != li.version ||
       memcmp(ai.hash, li.head_hash, 32) != 0))
    rc = SYNOD_EVERIFY;
  if (rc == 0)
    *head = a;
  return rc;
}

/* Makes head (NULL: none) the link our next announcement follows: the
 * saved Publish becomes it, and links of ours at or past its version are
 * dropped (versions in `self` only go up). Saved at once, so a later
 * `synod register` publishes the reset if this run does not get that far. */
static int follow_head(synod_client_t *c, const Synod__V1__Announcement *head,
                       uint64_t version) {
  uint8_t *buf = NULL;
  size_t n = 0;
  if (head) {
    Synod__V1__Publish p = SYNOD__V1__PUBLISH__INIT;
    p.announcement = synod_wire_lend(head);
    n = protobuf_c_message_get_packed_size(&p.base);
    if (!(buf = malloc(n ? n : 1)))
      return SYNOD_ENOMEM;
    protobuf_c_message_pack(&p.base, buf);
  }
  size_t keep = 0;
  while (keep < c->nself && c->self[keep].version < version + 1)
    keep++;
  if (!head)
    keep = 0;
  uint8_t *old = c->publish;
  size_t oldlen = c->publish_len, oldn = c->nself;
  c->publish = buf;
  c->publish_len = n;
  c->nself = keep;
  int rc = profile_save_self(c);
  if (rc != 0) {
    c->publish = old;
    c->publish_len = oldlen;
    c->nself = oldn;
    free(buf);
  } else {
    free(old);
  }
  return rc;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return SYNOD_EIO;
  int rc = (fsync(fd) != 0 && errno != EINVAL) ? SYNOD_EIO : 0;
  close(fd);
  return rc;
}

int synod_client_reset_keys(synod_client_t *c, const char *code,
                            const char *pass, size_t passlen,
                            const synod_keyfile_kdf_t *kdf,
                            const synod_client_net_opts_t *opts,
                            synod_reset_result_t *res) {
  if (!res)
    return SYNOD_EINVAL;
  memset(res, 0, sizeof *res);
  const char *home_name;
  if (!c || !pass || passlen == 0 || (code && !*code) ||
      synod_userid_parse(c->user_id, NULL, &home_name) != 0)
    return (res->enroll_error = SYNOD_EINVAL);
  if (c->ops) {
    snprintf(res->reason, sizeof res->reason,
             "operations of this profile are in flight");
    return (res->enroll_error = SYNOD_EAGAIN);
  }
  const synod_client_relay_t *home = profile_relay(c, home_name);
  if (!home) {
    snprintf(res->reason, sizeof res->reason,
             "the home relay is not in the trust set");
    return (res->enroll_error = SYNOD_EUNKNOWNPEER);
  }
  memcpy(res->old_identity_key, c->identity_pk, 32);

  /* The new keys, sealed next to the profile's before the relay sees
   * them: once the relay binds the new key, it must not be lost. */
  uint8_t isk[SYNOD_ED25519_SECRET_BYTES], ipk[SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t dsk[SYNOD_X25519_BYTES], dpk[SYNOD_X25519_BYTES];
  uint8_t osk[SYNOD_ED25519_SECRET_BYTES], odsk[SYNOD_X25519_BYTES];
  uint8_t opk[SYNOD_ED25519_PUBLIC_BYTES], odpk[SYNOD_X25519_BYTES];
  char *staged = pfile_path(c->dir, RESET_KEYS_FILE);
  char *keys = pfile_path(c->dir, PROFILE_KEYS_FILE);
  int rc = staged && keys ? 0 : SYNOD_ENOMEM;
  if (rc == 0 && (synod_ed25519_keygen(ipk, isk) != 0 ||
                  synod_x25519_keygen(dpk, dsk) != 0))
    rc = SYNOD_ECRYPTO;
  if (rc == 0)
    rc = profile_write_keys(c, RESET_KEYS_FILE, isk, dsk, pass, passlen, kdf);
  if (rc != 0) {
    res->enroll_error = rc;
    goto out;
  }

  /* Present the new key (with the code) to the home relay; on refusal
   * the profile keeps its old keys, in memory and on disk. */
  memcpy(osk, c->identity_sk, sizeof osk);
  memcpy(opk, c->identity_pk, sizeof opk);
  memcpy(odsk, c->device_sk, sizeof odsk);
  memcpy(odpk, c->device_pk, sizeof odpk);
  memcpy(c->identity_sk, isk, sizeof isk);
  memcpy(c->identity_pk, ipk, sizeof ipk);
  memcpy(c->device_sk, dsk, sizeof dsk);
  memcpy(c->device_pk, dpk, sizeof dpk);
  rc = probe_home(c, home, code, opts, res);
  if (rc == 0 && rename(staged, keys) != 0) {
    rc = SYNOD_EIO;
    snprintf(res->reason, sizeof res->reason,
             "the home relay took the new key, but it could not be moved "
             "from %s to %s",
             staged, keys);
    res->enroll_error = rc;
    goto out; /* c keeps the new keys: they are the account's now */
  }
  if (rc != 0) {
    res->enroll_error = rc;
    memcpy(c->identity_sk, osk, sizeof osk);
    memcpy(c->identity_pk, opk, sizeof opk);
    memcpy(c->device_sk, odsk, sizeof odsk);
    memcpy(c->device_pk, odpk, sizeof odpk);
    (void)unlink(staged);
    goto out;
  }
  res->keys_saved = 1;
  memcpy(res->new_identity_key, c->identity_pk, 32);
  rc = fsync_dir(c->dir);

  /* The reset follows the home relay's head of our chain. */
  Synod__V1__Frame *answer = NULL;
  const Synod__V1__Announcement *head = NULL;
  if (rc == 0)
    rc = home_head(c, home, opts, &answer, &head);
  if (rc == 0 && head) {
    synod_announce_info_t ai;
    rc = synod_announce_verify(&ai, head, UINT64_MAX / 2);
    res->replaced_version = ai.version;
  }
  if (rc == 0)
    rc = follow_head(c, head, res->replaced_version);
  synod_wire_free(answer);
  if (rc != 0) {
    /* Nothing published: 'synod register' signs the reset later. */
    res->reg.home_error = rc;
    goto out;
  }
  rc = synod_client_register(c, 0, opts, &res->reg);

out:
  synod_wipe(isk, sizeof isk);
  synod_wipe(dsk, sizeof dsk);
  synod_wipe(osk, sizeof osk);
  synod_wipe(odsk, sizeof odsk);
  free(staged);
  free(keys);
  return rc;
}

void synod_reset_result_free(synod_reset_result_t *r) {
  if (!r)
    return;
  synod_register_result_free(&r->reg);
  memset(r, 0, sizeof *r);
}
