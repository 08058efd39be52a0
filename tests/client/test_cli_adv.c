/*
 * Suite client.cli_adv: the refusals and warnings a user meets, through
 * the `synod` command itself, against real relays and a real PostgreSQL
 * (three relays of three operators, k = 2; issue 5, "Tests"). Lies are
 * made as test_directory.c makes them: with a relay's own key file and
 * database, never by weakening the relay's code.
 *  - a lying relay: relay-c serves a substituted key for bob; `synod
 *    lookup` still accepts bob's key with 2 of 3 (exit 0) and its table
 *    names relay-c with its failure status;
 *  - a key reset: bob's home operator rebinds his account to a key of its
 *    own and publishes a reset; alice's next `synod lookup` and carol's
 *    next `synod send` warn of it, and the verified mark (`synod verify
 *    --confirm` earlier) is gone;
 *  - `synod keys rotate`: a new device key, with continuity;
 *  - `synod keys reset` after `synod-relay user reenroll`: new keys, the
 *    contacts warned as above, and the refusals (no re-enrolment, no
 *    code, a wrong or used code, the old key afterwards).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "cliuser.h"
#include "harness.h"
#include "synod/announce.h"
#include "synod/client.h"
#include "synod/keyfile.h"
#include "synod/sig.h"
#include "synod/statement.h"
#include "synod/wire.h"
#include "tclient.h"

#define OUT_MAX CLI_OUT_MAX
#define T_MS    10000

static uint64_t now_s(void) {
  return (uint64_t)time(NULL);
}

/* --- users driven through the command ------------------------------------- */

/* The line of out that names relay (as a table row: two spaces, then the
 * name), copied into line; false when there is none. */
static bool row_of(const char *out, const char *relay, char *line, size_t n) {
  char key[80];
  snprintf(key, sizeof key, "\n  %s ", relay);
  const char *p = strstr(out, key);
  if (!p)
    return false;
  p += 1;
  size_t l = strcspn(p, "\n");
  snprintf(line, n, "%.*s", (int)l, p);
  return true;
}

/* --- lies, made with an operator's means (as test_directory.c) ------------ */

static void hexs(char *out, const uint8_t *in, size_t n) {
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void sql(fixture_relay_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sql(fixture_relay_t *r, const char *fmt, ...) {
  char q[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q, sizeof q, fmt, ap);
  va_end(ap);
  CU_ASSERT_EQUAL_FATAL(fixture_pg_query(fixture_relay_pg(r), q, NULL, 0), 0);
}

/* An announcement of user by key sk (one random device key). */
static void announce(synod_announcement_t *a, const char *user,
                     uint64_t version, const uint8_t *prev_hash, int reset,
                     const uint8_t sk[32]) {
  synod_device_t d = {.device_id = 1, .name = "not bob's"};
  uint8_t dsk[32];
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(d.x25519_key, dsk), 0);
  synod_announce_params_t p = {.user_id = user,
                               .devices = &d,
                               .ndevices = 1,
                               .version = version,
                               .time = now_s(),
                               .prev_hash = prev_hash,
                               .reset = reset};
  CU_ASSERT_EQUAL_FATAL(synod_announce_sign(a, &p, sk, NULL), 0);
}

/* Writes a (with a countersignature by relay_sk in the name of home) into
 * r's database as the head of user at its version, replacing what r held
 * there: the relay will serve it, signing its answers with its own key. */
static void db_plant(fixture_relay_t *r, const char *user, uint64_t version,
                     const synod_announcement_t *a, const char *home,
                     const uint8_t relay_sk[32], const uint8_t id_pk[32]) {
  synod_countersig_info_t ci;
  memset(&ci, 0, sizeof ci);
  snprintf(ci.user_id, sizeof ci.user_id, "%s", user);
  ci.version = version;
  CU_ASSERT_EQUAL_FATAL(
      synod_announce_hash(ci.announcement_hash, a->body, a->body_len), 0);
  snprintf(ci.relay_name, sizeof ci.relay_name, "%s", home);
  ci.time = now_s();
  synod_signed_t cs;
  CU_ASSERT_EQUAL_FATAL(synod_countersig_sign(&cs, &ci, relay_sk), 0);
  char h[65], k[65], sg[129], csg[129], *body = malloc(2 * a->body_len + 1),
                                        *cbody = malloc(2 * cs.body_len + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(body);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cbody);
  hexs(h, ci.announcement_hash, 32);
  hexs(k, id_pk, 32);
  hexs(sg, a->signature, 64);
  hexs(csg, cs.signature, 64);
  hexs(body, a->body, a->body_len);
  hexs(cbody, cs.body, cs.body_len);
  sql(r, "DELETE FROM announcements WHERE user_id = '%s' AND version >= %llu",
      user, (unsigned long long)version);
  sql(r,
      "DELETE FROM countersignatures WHERE user_id = '%s' AND version >= %llu",
      user, (unsigned long long)version);
  sql(r,
      "INSERT INTO announcements (user_id, version, hash, body, signature,"
      " identity_key, signed_at) VALUES ('%s', %llu, '\\x%s', '\\x%s',"
      " '\\x%s', '\\x%s', %llu)",
      user, (unsigned long long)version, h, body, sg, k,
      (unsigned long long)now_s());
  sql(r,
      "INSERT INTO countersignatures (user_id, version, hash, relay, body,"
      " signature) VALUES ('%s', %llu, '\\x%s', '%s', '\\x%s', '\\x%s')",
      user, (unsigned long long)version, h, home, cbody, csg);
  free(body);
  free(cbody);
  synod_signed_free(&cs);
}

/* Publish of a by a session c (with the home countersignature cs when not
 * NULL); the PublishResult frame when asked for. */
static int publish(tclient_t *c, const synod_announcement_t *a,
                   Synod__V1__Countersignature *cs, Synod__V1__Frame **res) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Publish p = SYNOD__V1__PUBLISH__INIT;
  Synod__V1__Announcement w;
  synod_announcement_lend(&w, a);
  f.body_case = SYNOD__V1__FRAME__BODY_PUBLISH;
  f.publish = &p;
  p.announcement = &w;
  Synod__V1__Countersignature *csp[1] = {cs};
  if (cs) {
    p.countersignatures = csp;
    p.n_countersignatures = 1;
  }
  Synod__V1__Frame *ans = NULL;
  int rc = tclient_request(c, &f, &ans, T_MS);
  if (rc == 0 && res)
    *res = ans;
  else
    synod_wire_free(ans);
  return rc;
}

/* --- the suites ------------------------------------------------------------
 */

/* relay-c's operator substitutes bob's key in its database (another
 * identity key, under a countersignature it made up): the first lookup of
 * bob takes the honest key with 2 of 3 and names relay-c. */
static void test_liar(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_adv_liar"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  char *out = malloc(OUT_MAX), line[512];
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  cli_user_t alice, bob;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&bob, out, "register"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "register"), 0);

  uint8_t epk[32], esk[32], fpk[32], fsk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(epk, esk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(fpk, fsk), 0);
  synod_announcement_t evil;
  announce(&evil, "bob@relay-b", 1, NULL, 0, esk);
  db_plant(rc, "bob@relay-b", 1, &evil, "relay-b", fsk, epk);
  synod_announcement_free(&evil);

  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "bob@relay-b: ACCEPTED, version 1"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "vouched for by 2 operators"));
  CU_ASSERT_FATAL(row_of(out, "relay-c", line, sizeof line));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(line, synod_relay_status_name(SYNOD_RELAY_BAD_COUNTERSIGNATURE)));
  CU_ASSERT_PTR_NOT_NULL(strstr(line, fixture_relay_operator(rc)));
  CU_ASSERT_FATAL(row_of(out, "relay-a", line, sizeof line));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(line, synod_relay_status_name(SYNOD_RELAY_AGREED)));
  CU_ASSERT_FATAL(row_of(out, "relay-b", line, sizeof line));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(line, synod_relay_status_name(SYNOD_RELAY_AGREED)));
  /* --json says the same. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verdict\":\"accepted\""));
  char want[128];
  snprintf(want, sizeof want,
           "\"relay\":\"relay-c\",\"operator\":\"%s\","
           "\"status\":\"%s\"",
           fixture_relay_operator(rc),
           synod_relay_status_name(SYNOD_RELAY_FORKED));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
  /* A send still goes: to the key the quorum accepted. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b despite the liar"),
                  0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "sent to bob@relay-b"));
  int rrc = 0;
  for (int i = 0; i < 50; i++) {
    rrc = cli_synod(&bob, out, "recv");
    if (strstr(out, "despite the liar"))
      break;
    usleep(100000);
  }
  CU_ASSERT_EQUAL(rrc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "despite the liar"));

  free(out);
  cli_user_free(&alice);
  cli_user_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* bob's home operator rebinds his account to a key of its own and
 * publishes a reset through all three relays: alice (who verified bob)
 * and carol are warned at their next lookup or send, the verified mark is
 * gone. */
static void test_reset(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_adv_reset"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  char *out = malloc(OUT_MAX);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  cli_user_t alice, bob, carol;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_user_make(&carol, "carol");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  cli_init_user(&carol, fx, rc, "carol", out);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&bob, out, "register"), 0);

  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "first contact"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "verify bob@relay-b --confirm"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "now marked verified"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verified\":true"));
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "send bob@relay-b hello before"), 0);
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "verify bob@relay-b --confirm"), 0);

  /* The hash of bob's version 1, as alice pinned it. */
  synod_client_t *ac = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_client_open(&ac, alice.home, alice.passphrase,
                                          strlen(alice.passphrase)),
                        0);
  synod_client_pin_t pin;
  CU_ASSERT_EQUAL_FATAL(synod_client_pin_get(ac, "bob@relay-b", &pin), 0);
  CU_ASSERT(pin.pin.verified);
  uint8_t v1_hash[32];
  memcpy(v1_hash, pin.pin.hash, 32);
  synod_client_close(ac);

  /* The operator of relay-b: rebind the account, publish a reset. */
  uint8_t epk[32], esk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(epk, esk), 0);
  char ek[65];
  hexs(ek, epk, 32);
  sql(rb, "UPDATE accounts SET identity_key = '\\x%s' WHERE name = 'bob'", ek);
  tclient_t *evil_home = NULL;
  CU_ASSERT_EQUAL_FATAL(tclient_connect(&evil_home, fixture_relay_port(rb),
                                        fixture_relay_public_key(rb),
                                        "bob@relay-b", esk, NULL, T_MS),
                        0);
  synod_announcement_t evil;
  announce(&evil, "bob@relay-b", 2, v1_hash, 1, esk);
  Synod__V1__Frame *res = NULL;
  CU_ASSERT_EQUAL_FATAL(publish(evil_home, &evil, NULL, &res), 0);
  fixture_relay_t *others[2] = {ra, rc};
  for (size_t i = 0; i < 2; i++) {
    tclient_t *v = NULL;
    CU_ASSERT_EQUAL_FATAL(tclient_connect(&v, fixture_relay_port(others[i]),
                                          fixture_relay_public_key(others[i]),
                                          "bob@relay-b", esk, NULL, T_MS),
                          0);
    CU_ASSERT_EQUAL(
        publish(v, &evil, res->publish_result->countersignature, NULL), 0);
    tclient_close(v);
  }
  synod_wire_free(res);
  tclient_close(evil_home);
  synod_announcement_free(&evil);

  /* alice's next lookup: accepted, but loudly; not verified any more. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "ACCEPTED, version 2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "WARNING: bob@relay-b's key was RESET"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no longer marked verified"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "vouched for by:"));
  CU_ASSERT_PTR_NULL(strstr(out, "(verified)"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verified\":false"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "verify bob@relay-b"), 0);
  CU_ASSERT_PTR_NULL(strstr(out, "is verified"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "--confirm"));

  /* carol's next send says it before it says "sent". */
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "send bob@relay-b hello after"), 0);
  const char *warn = strstr(out, "WARNING: bob@relay-b's key was RESET");
  const char *sent = strstr(out, "sent to bob@relay-b");
  CU_ASSERT_PTR_NOT_NULL(warn);
  CU_ASSERT_PTR_NOT_NULL(sent);
  CU_ASSERT(warn && sent && warn < sent);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no longer marked verified"));
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "lookup bob@relay-b --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verified\":false"));

  free(out);
  cli_user_free(&alice);
  cli_user_free(&bob);
  cli_user_free(&carol);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* `synod recv` as u until out holds want (messages travel between relays
 * asynchronously); the last exit status. */
static int recv_until(const cli_user_t *u, char *out, const char *want) {
  int rc = 0;
  for (int i = 0; i < 50; i++) {
    rc = cli_synod(u, out, "recv");
    if (strstr(out, want))
      break;
    usleep(100000);
  }
  return rc;
}

/* The X25519 key `synod keys devices --json` shows, into key (65). */
static void device_key_of(const cli_user_t *u, char *out, char key[65]) {
  CU_ASSERT_EQUAL_FATAL(cli_synod(u, out, "keys devices --json"), 0);
  const char *p = strstr(out, "\"key\":\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  snprintf(key, 65, "%s", p + strlen("\"key\":\""));
}

/* bob rotates his device key: the profile holds the new key, version 2 is
 * published with continuity, alice's next send is sealed to the new key
 * (the one bob can still open) and bob reads it. */
static void test_rotate(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_adv_rotate"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1);
  char *out = malloc(OUT_MAX), before[65], after[65];
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  cli_user_t alice, bob;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "register"), 0);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&bob, out, "register"), 0);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b before rotation"),
                  0);
  CU_ASSERT_EQUAL(recv_until(&bob, out, "before rotation"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "before rotation"));
  device_key_of(&bob, out, before);

  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys rotate --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: synod keys rotate"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys rotate extra"), 2);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys rotate"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "new device key"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "announcement version 2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));
  device_key_of(&bob, out, after);
  CU_ASSERT_NOT_EQUAL(strcmp(before, after), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"registered_version\":2"));
  /* The profile reopens with the new key (same passphrase). */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys devices"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, after));

  /* alice's next send takes version 2 (a change with continuity, no
   * reset) and bob, who holds only the new key, reads it. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b after rotation"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "ACCEPTED, version 2"));
  CU_ASSERT_PTR_NULL(strstr(out, "RESET"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "sent to bob@relay-b"));
  CU_ASSERT_EQUAL(recv_until(&bob, out, "after rotation"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "after rotation"));
  CU_ASSERT_PTR_NULL(strstr(out, "REJECTED"));

  free(out);
  cli_user_free(&alice);
  cli_user_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* `synod-relay ARGS -c CONF` for relay r, stdout and stderr into out; the
 * exit status. */
static int relay_admin(fixture_relay_t *r, char *out, const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1 </dev/null",
           fixture_relay_bin(), args, fixture_relay_config_path(r));
  int rc = cli_run(out, cmd);
  fprintf(stderr, "$ synod-relay %s\n%s[exit %d]\n", args, out, rc);
  return rc;
}

/* The identity key `synod keys devices --json` shows, into key (65). */
static void identity_key_of(const cli_user_t *u, char *out, char key[65]) {
  CU_ASSERT_EQUAL_FATAL(cli_synod(u, out, "keys devices --json"), 0);
  const char *p = strstr(out, "\"identity_key\":\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  snprintf(key, 65, "%s", p + strlen("\"identity_key\":\""));
}

/* bob's keys are compromised: his operator re-enrols him (`synod-relay
 * user reenroll`), bob runs `synod keys reset --code` and has new keys
 * that the relays accept; alice, who had verified bob, is warned of the
 * reset by her next lookup and send, her verified mark is gone, and the
 * conversation goes on with the new keys. The refusals on the way: a
 * reset before the re-enrolment (the relay refuses the new key), a wrong
 * code, a used code, the old key after the re-enrolment; none of them
 * changes bob's profile. */
static void test_keys_reset(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_adv_keys_reset"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  char *out = malloc(OUT_MAX), k0[65], k1[65];
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  cli_user_t alice, bob, carol;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_user_make(&carol, "carol");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  cli_init_user(&carol, fx, rc, "carol", out);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "register"), 0);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&bob, out, "register"), 0);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&carol, out, "register"), 0);
  cli_user_t *contacts[2] = {&alice, &carol};
  for (size_t i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(cli_synod(contacts[i], out, "lookup bob@relay-b"), 0);
    CU_ASSERT_EQUAL(cli_synod(contacts[i], out, "verify bob@relay-b --confirm"),
                    0);
    CU_ASSERT_EQUAL(cli_synod(contacts[i], out, "lookup bob@relay-b --json"),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verified\":true"));
  }
  identity_key_of(&bob, out, k0);

  /* The help. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "keys reset"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "keys rotate"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys reset --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: synod keys reset"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "synod-relay user reenroll"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys reset extra"), 2);
  CU_ASSERT_EQUAL(relay_admin(rb, out, "user reenroll --help"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: synod-relay user reenroll"));

  /* Before the operator re-enrols him, the relay refuses a new key. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys reset"), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing was changed"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "still binds your account to your old"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "synod-relay user reenroll"));
  identity_key_of(&bob, out, k1);
  CU_ASSERT_STRING_EQUAL(k0, k1);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "monitor --once"), 0);
  char staged[400];
  snprintf(staged, sizeof staged, "%s/keys.reset", bob.home);
  CU_ASSERT_NOT_EQUAL(access(staged, F_OK), 0); /* removed on refusal */

  /* The operator: an unknown account, then bob's. */
  CU_ASSERT_EQUAL(relay_admin(rb, out, "user reenroll nobody"), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no such user: nobody"));
  CU_ASSERT_EQUAL(relay_admin(rb, out, "user reenroll bob"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "re-enrolled bob@relay-b"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "msg=\"account re-enrolled\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, k0)); /* the old key, logged */
  const char *cp = strstr(out, "enrolment code: ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(cp);
  char code[64];
  snprintf(code, sizeof code, "%.*s", (int)strcspn(cp + 16, "\n"), cp + 16);
  CU_ASSERT_EQUAL(relay_admin(rb, out, "user list --json"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"user\": \"bob@relay-b\", "
                                     "\"state\": \"pending\""));

  /* The old key no longer logs in. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv"), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, synod_strerror(SYNOD_EAUTH)));
  /* Without the code, with a wrong one: refused, nothing changed. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys reset"), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "waits for its code"));
  CU_ASSERT_EQUAL(
      cli_synod(&bob, out, "keys reset --code AAAA-BBBB-CCCC-DDDD-EEEE"), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "the code is wrong or was already used"));
  identity_key_of(&bob, out, k1);
  CU_ASSERT_STRING_EQUAL(k0, k1);

  /* A copy of the old profile, to show the old key refused afterwards. */
  char old_home[400], cmd[1000];
  snprintf(old_home, sizeof old_home, "%s/old", bob.root);
  snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", bob.home, old_home);
  CU_ASSERT_EQUAL_FATAL(cli_run(NULL, cmd), 0);

  /* The reset. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys reset --code %s", code), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "keys RESET"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "announcement version 2 countersigned"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "held by 3 of 3 relays"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "follows version 1"));
  identity_key_of(&bob, out, k1);
  CU_ASSERT_NOT_EQUAL(strcmp(k0, k1), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"registered_version\":2"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "monitor --once"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no relay serves a key for you"));
  /* The code worked once. */
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "keys reset --code %s", code), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "nothing was changed"));
  identity_key_of(&bob, out, k0);
  CU_ASSERT_STRING_EQUAL(k0, k1);
  /* The old key: refused by the home relay. */
  snprintf(cmd, sizeof cmd,
           "SYNOD_HOME='%s' SYNOD_PASSPHRASE_FILE='%s' '%s' recv 2>&1 "
           "</dev/null",
           old_home, bob.pass, SYNOD_CLI_BIN);
  CU_ASSERT_EQUAL(cli_run(out, cmd), 1);
  fprintf(stderr, "$ synod recv (old profile)\n%s", out);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, synod_strerror(SYNOD_EBADKEY)));

  /* alice's next lookup and carol's next send: warned, no longer
   * verified, bob's new key; the conversation goes on. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "lookup bob@relay-b"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "ACCEPTED, version 2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "WARNING: bob@relay-b's key was RESET"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no longer marked verified"));
  CU_ASSERT_PTR_NULL(strstr(out, "(verified)"));
  CU_ASSERT_EQUAL(cli_synod(&carol, out, "send bob@relay-b carol after reset"),
                  0);
  const char *warn = strstr(out, "WARNING: bob@relay-b's key was RESET");
  const char *sent = strstr(out, "sent to bob@relay-b");
  CU_ASSERT(warn && sent && warn < sent);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "no longer marked verified"));
  for (size_t i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(cli_synod(contacts[i], out, "lookup bob@relay-b --json"),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"verified\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, k1));
  }
  CU_ASSERT_EQUAL(recv_until(&bob, out, "carol after reset"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "carol after reset"));
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "send bob@relay-b after the reset"),
                  0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "sent to bob@relay-b"));
  CU_ASSERT_EQUAL(recv_until(&bob, out, "after the reset"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "after the reset"));
  CU_ASSERT_PTR_NULL(strstr(out, "REJECTED"));
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "send alice@relay-a new keys here"), 0);
  CU_ASSERT_EQUAL(recv_until(&alice, out, "new keys here"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "new keys here"));
  CU_ASSERT_PTR_NULL(strstr(out, "REJECTED"));

  free(out);
  cli_user_free(&alice);
  cli_user_free(&bob);
  cli_user_free(&carol);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* The message id `synod send` printed ("message HEX"), into id (33). */
static void sent_id(const char *out, char id[33]) {
  const char *p = strstr(out, ": message ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  snprintf(id, 33, "%s", p + strlen(": message "));
}

/* Plants in relay r's database a delivery-failure notice for local user
 * to_local: message id, recipient, code and relay_name as given, signed by
 * sk (the relay's key or not). */
static void plant_notice(fixture_relay_t *r, const char *to_local,
                         const uint8_t id[16], const char *recipient,
                         const char *relay_name, const uint8_t sk[32]) {
  Synod__V1__DeliveryFailureBody b = SYNOD__V1__DELIVERY_FAILURE_BODY__INIT;
  b.message_id.data = synod_wire_lend(id);
  b.message_id.len = 16;
  b.recipient = synod_wire_lend(recipient);
  b.code = (uint32_t)-SYNOD_EEXPIRED;
  b.relay_name = synod_wire_lend(relay_name);
  b.time = now_s();
  uint8_t body[512], sig[64], packed[1024];
  size_t blen = synod__v1__delivery_failure_body__get_packed_size(&b);
  CU_ASSERT_FATAL(blen <= sizeof body);
  synod__v1__delivery_failure_body__pack(&b, body);
  CU_ASSERT_EQUAL_FATAL(
      synod_sig_sign(sig, SYNOD_SIG_DELIVERY_FAILURE, body, blen, sk), 0);
  Synod__V1__DeliveryFailure df = SYNOD__V1__DELIVERY_FAILURE__INIT;
  df.body.data = body;
  df.body.len = blen;
  df.signature.data = sig;
  df.signature.len = 64;
  size_t plen = synod__v1__delivery_failure__get_packed_size(&df);
  CU_ASSERT_FATAL(plen <= sizeof packed);
  synod__v1__delivery_failure__pack(&df, packed);
  char hid[33], hp[2 * sizeof packed + 1];
  hexs(hid, id, 16);
  hexs(hp, packed, plen);
  sql(r,
      "INSERT INTO notices (account_id, message_id, kind, body)"
      " SELECT id, '\\x%s', 'delivery-failure', '\\x%s' FROM accounts"
      " WHERE name = '%s'",
      hid, hp, to_local);
}

/* Delivery failures shown to the sender: a message bob never fetches
 * expires at relay-b (relay-a gives messages a 2 s time to live), relay-b
 * signs a notice, and alice's `synod recv` says so, once, in words and in
 * --json; a message refused by bob's relay (bob disabled) is reported by
 * relay-a, which names no recipient. bob never sees either message. A
 * notice forged in a trusted relay's name is not shown; one from a relay
 * outside the trust set is, marked as unchecked. */
static void test_delivery_failure(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_adv_failure"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(ra, "limits", "default_ttl", "2s"),
                        0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(ra), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  char *out = malloc(OUT_MAX), id[33], want[256];
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  cli_user_t alice, bob;
  cli_user_make(&alice, "alice");
  cli_user_make(&bob, "bob");
  cli_init_user(&alice, fx, ra, "alice", out);
  cli_init_user(&bob, fx, rb, "bob", out);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "register"), 0);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&bob, out, "register"), 0);

  /* Expired at bob's relay. */
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "send bob@relay-b too late"), 0);
  sent_id(out, id);
  snprintf(want, sizeof want,
           "message %s to bob@relay-b was not delivered: it expired "
           "undelivered",
           id);
  CU_ASSERT_EQUAL(recv_until(&alice, out, "was not delivered"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "(relay-b says)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "some messages you sent were not"));
  /* Shown once: it was acknowledged. */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "recv"), 0);
  CU_ASSERT_PTR_NULL(strstr(out, "not delivered"));

  /* The same in --json. */
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "send bob@relay-b late again"),
                        0);
  sent_id(out, id);
  int rc = 0;
  for (int i = 0; i < 100; i++) {
    rc = cli_synod(&alice, out, "recv --json");
    if (strstr(out, "\"status\":\"failed\""))
      break;
    usleep(100000);
  }
  CU_ASSERT_EQUAL(rc, 0);
  snprintf(want, sizeof want,
           "{\"status\":\"failed\",\"sender\":\"alice@relay-a\","
           "\"message_id\":\"%s\",",
           id);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(out, "\"recipient\":\"bob@relay-b\",\"relay\":\"relay-b\","
                  "\"relay_verified\":true,\"error\":\"EEXPIRED\""));

  /* Refused by bob's relay: relay-a signs it and names no recipient. */
  CU_ASSERT_EQUAL(relay_admin(rb, out, "user disable bob"), 0);
  CU_ASSERT_EQUAL_FATAL(cli_synod(&alice, out, "send bob@relay-b refused"), 0);
  sent_id(out, id);
  snprintf(want, sizeof want, "message %s was not delivered: ", id);
  CU_ASSERT_EQUAL(recv_until(&alice, out, "was not delivered"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "(relay-a says)"));

  /* bob never sees any of them. */
  CU_ASSERT_EQUAL(relay_admin(rb, out, "user enable bob"), 0);
  CU_ASSERT_EQUAL(cli_synod(&bob, out, "recv"), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 messages received"));

  /* alice's home relay hands her a notice in relay-b's name that relay-b
   * did not sign (not shown, acknowledged), and one of a relay outside
   * her trust set (shown as that relay's unchecked word). */
  uint8_t fpk[32], fsk[32], id1[16], id2[16];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(fpk, fsk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_random(id1, sizeof id1), 0);
  CU_ASSERT_EQUAL_FATAL(synod_random(id2, sizeof id2), 0);
  plant_notice(ra, "alice", id1, "bob@relay-b", "relay-b", fsk);
  plant_notice(ra, "alice", id2, "zed@relay-x", "relay-x", fsk);
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "recv"), 0);
  hexs(id, id1, 16);
  CU_ASSERT_PTR_NULL(strstr(out, id));
  hexs(id, id2, 16);
  snprintf(want, sizeof want,
           "message %s to zed@relay-x was not delivered: it expired", id);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
  CU_ASSERT_PTR_NOT_NULL(
      strstr(out, "(relay-x says; it is not in your trust set"));
  int64_t left = -1;
  CU_ASSERT_EQUAL(fixture_pg_query_i64(fixture_relay_pg(ra),
                                       "SELECT count(*) FROM notices", &left),
                  0);
  CU_ASSERT_EQUAL(left, 0); /* both acknowledged */
  CU_ASSERT_EQUAL(cli_synod(&alice, out, "recv"), 0);
  CU_ASSERT_PTR_NULL(strstr(out, "not delivered"));

  free(out);
  cli_user_free(&alice);
  cli_user_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo adv_tests[] = {
    {"lying_relay", test_liar},
    {"key_reset", test_reset},
    {"keys_rotate", test_rotate},
    {"keys_reset", test_keys_reset},
    {"delivery_failure", test_delivery_failure},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cli_adv", NULL, NULL, NULL, fixture_teardown, adv_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
