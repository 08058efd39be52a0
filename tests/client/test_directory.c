/*
 * Suite client.directory: the client library's key directory against real
 * relays and a real PostgreSQL, with a trust set of three relays and k = 2
 * (issue 4, "Adversarial tests"). Lies are made the way an operator would
 * make them: with the relay's own key file and its own database, never by
 * weakening the relay's code; the client runs exactly the code an
 * application links.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "synod/announce.h"
#include "synod/client.h"
#include "synod/keyfile.h"
#include "synod/statement.h"
#include "synod/wire.h"
#include "tclient.h"

#define PASS "pass phrase"
#define T_MS 10000

static const synod_keyfile_kdf_t kdf = {.log2_n = 10, .r = 8, .p = 1};

static uint64_t now_s(void) {
  return (uint64_t)time(NULL);
}

/* --- profiles ------------------------------------------------------------- */

typedef struct prof {
  char root[256];
  char dir[300];
  synod_client_t *c;
} prof_t;

/* A profile of local@home trusting every relay of fx as the fixture runs
 * them (operators overridable per relay index with ops[i] != NULL),
 * enrolled at its home relay. */
static void prof_make(prof_t *p, fixture_t *fx, fixture_relay_t *home,
                      const char *local, const char *const *ops) {
  const char *tmp = getenv("TMPDIR");
  snprintf(p->root, sizeof p->root, "%s/synod-cli-%s.XXXXXX",
           tmp && *tmp ? tmp : "/tmp", local);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(p->root));
  snprintf(p->dir, sizeof p->dir, "%s/p", p->root);
  char user[128];
  snprintf(user, sizeof user, "%s@%s", local, fixture_relay_name(home));
  synod_profile_params_t pp = {.user_id = user,
                               .device_name = "test device",
                               .pass = PASS,
                               .passlen = strlen(PASS),
                               .kdf = &kdf};
  p->c = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_client_create(&p->c, p->dir, &pp), 0);
  for (size_t i = 0; i < fixture_relay_count(fx); i++) {
    fixture_relay_t *r = fixture_relay_at(fx, i);
    CU_ASSERT_EQUAL_FATAL(
        synod_client_trust_add(
            p->c, fixture_relay_name(r), fixture_relay_address(r),
            fixture_relay_key_line(r),
            ops && ops[i] ? ops[i] : fixture_relay_operator(r)),
        0);
  }
  char code[FIXTURE_CODE_MAX];
  CU_ASSERT_EQUAL_FATAL(fixture_relay_user_add(home, local, code), 0);
  int rc = SYNOD_EAGAIN;
  for (int i = 0; i < 50 && rc == SYNOD_EAGAIN; i++)
    if ((rc = synod_client_enroll(p->c, code, NULL)) == SYNOD_EAGAIN)
      usleep(100000);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  /* The code is spent; the bound key alone logs in from now on. */
  CU_ASSERT_EQUAL(synod_client_enroll(p->c, code, NULL), 0);
}

static void prof_free(prof_t *p) {
  synod_client_close(p->c);
  DIR *d = opendir(p->dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char f[700];
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(f, sizeof f, "%s/%s", p->dir, e->d_name);
    unlink(f);
  }
  if (d)
    closedir(d);
  rmdir(p->dir);
  rmdir(p->root);
}

static synod_register_result_t reg(prof_t *p, unsigned flags, size_t accepted) {
  synod_register_result_t r;
  int rc = synod_client_register(p->c, flags, NULL, &r);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(r.accepted, accepted);
  for (size_t i = 0; rc != 0 && i < r.nrelays; i++)
    fprintf(stderr, "register %s: %s %s (%s)\n", r.relays[i].relay_name,
            synod_publish_status_name(r.relays[i].status),
            synod_err_name(r.relays[i].error), r.relays[i].reason);
  return r;
}

/* The report of relay name in a decision. */
static const synod_relay_report_t *said(const synod_lookup_result_t *r,
                                        const char *name) {
  for (size_t i = 0; i < r->decision.nrelays; i++)
    if (strcmp(r->decision.relays[i].relay_name, name) == 0)
      return &r->decision.relays[i];
  CU_FAIL_FATAL("relay missing from the report");
  return NULL;
}

static void show(const char *what, const synod_lookup_result_t *r) {
  fprintf(stderr, "%s: %s: %s\n", what, synod_err_name(r->decision.error),
          r->decision.reason);
  for (size_t i = 0; i < r->decision.nrelays; i++)
    fprintf(stderr, "  %s (%s): %s v%llu %s\n",
            r->decision.relays[i].relay_name,
            r->decision.relays[i].operator_name,
            synod_relay_status_name(r->decision.relays[i].status),
            (unsigned long long)r->decision.relays[i].version,
            r->net_error[i] ? r->net_reason[i] : "");
}

/* --- lies, made with an operator's means ---------------------------------- */

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

static void relay_secret(fixture_relay_t *r, uint8_t sk[32]) {
  char path[512];
  snprintf(path, sizeof path, "%s/relay.key", fixture_relay_dir(r));
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_read_secret(sk, SYNOD_KEY_ED25519, path),
                        0);
}

/* --- the suites ------------------------------------------------------------
 */

/* Honest lookups are accepted by all three; a relay answering with a
 * substituted key is named and outvoted; an answer signed by another key
 * than the pinned one is not believed; stale answers and two relays down
 * are refused, each with what every relay said. */
static void test_liar_stale_down(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_liar"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  prof_t bob, alice, carol, dave;
  prof_make(&bob, fx, rb, "bob", NULL);
  prof_make(&alice, fx, ra, "alice", NULL);
  prof_make(&carol, fx, ra, "carol", NULL);
  prof_make(&dave, fx, ra, "dave", NULL);
  uint8_t bob_pk[32], bob_dev[32];
  synod_client_identity_key(bob.c, bob_pk);
  synod_client_device_key(bob.c, bob_dev);

  /* Register: the home relay countersigns, the others accept. */
  synod_register_result_t r1 = reg(&bob, 0, 3);
  CU_ASSERT_EQUAL(r1.version, 1);
  for (size_t i = 0; i < r1.nrelays; i++)
    CU_ASSERT_EQUAL(r1.relays[i].status, SYNOD_PUBLISH_ACCEPTED);
  /* Again: the same bytes, not a new version. */
  synod_register_result_t r1b = reg(&bob, 0, 3);
  CU_ASSERT_EQUAL(r1b.version, 1);
  CU_ASSERT_EQUAL(memcmp(r1.hash, r1b.hash, 32), 0);
  synod_register_result_free(&r1b);

  /* Honest: accepted by all three, first contact, pinned. */
  synod_lookup_result_t lr;
  CU_ASSERT_EQUAL_FATAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr),
                        0);
  CU_ASSERT(lr.decision.flags & SYNOD_QUORUM_FIRST_CONTACT);
  CU_ASSERT_EQUAL(lr.decision.operators, 3);
  CU_ASSERT_EQUAL(lr.decision.version, 1);
  CU_ASSERT_EQUAL(memcmp(lr.decision.info.identity_key, bob_pk, 32), 0);
  CU_ASSERT_EQUAL(memcmp(lr.decision.info.devices[0].x25519_key, bob_dev, 32),
                  0);
  for (size_t i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(lr.decision.relays[i].status, SYNOD_RELAY_AGREED);
  CU_ASSERT(lr.pin_saved);
  synod_lookup_result_free(&lr);
  synod_client_pin_t pin;
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT_EQUAL(pin.pin.version, 1);
  CU_ASSERT_EQUAL(memcmp(pin.pin.hash, r1.hash, 32), 0);
  CU_ASSERT_FALSE(pin.pin.verified);
  /* The pin survives reopening the profile. */
  synod_client_close(alice.c);
  CU_ASSERT_EQUAL_FATAL(
      synod_client_open(&alice.c, alice.dir, PASS, strlen(PASS)), 0);
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT_EQUAL(pin.pin.version, 1);
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  CU_ASSERT(lr.decision.flags & SYNOD_QUORUM_UNCHANGED);
  synod_lookup_result_free(&lr);

  /* relay-c's operator substitutes bob's key in its database: another
   * identity key that signed the body, under a countersignature it made
   * up (it does not have relay-b's key). */
  uint8_t epk[32], esk[32], fpk[32], fsk[32];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(epk, esk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(fpk, fsk), 0);
  synod_announcement_t evil;
  announce(&evil, "bob@relay-b", 1, NULL, 0, esk);
  db_plant(rc, "bob@relay-b", 1, &evil, "relay-b", fsk, epk);
  synod_announcement_free(&evil);

  /* A first lookup (carol) takes the honest key and names the liar. */
  CU_ASSERT_EQUAL(synod_client_lookup(carol.c, "bob@relay-b", NULL, &lr), 0);
  show("carol, relay-c lies", &lr);
  CU_ASSERT_EQUAL(memcmp(lr.decision.info.identity_key, bob_pk, 32), 0);
  CU_ASSERT_EQUAL(lr.decision.operators, 2);
  CU_ASSERT_EQUAL(said(&lr, "relay-a")->status, SYNOD_RELAY_AGREED);
  CU_ASSERT_EQUAL(said(&lr, "relay-b")->status, SYNOD_RELAY_AGREED);
  CU_ASSERT_EQUAL(said(&lr, "relay-c")->status,
                  SYNOD_RELAY_BAD_COUNTERSIGNATURE);
  CU_ASSERT(said(&lr, "relay-c")->said);
  synod_lookup_result_free(&lr);
  /* A pinned lookup (alice) sees a fork at her pin. */
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  show("alice, relay-c lies", &lr);
  CU_ASSERT(lr.decision.flags & SYNOD_QUORUM_UNCHANGED);
  CU_ASSERT_EQUAL(said(&lr, "relay-c")->status, SYNOD_RELAY_FORKED);
  synod_lookup_result_free(&lr);

  /* dave pinned another key for relay-c: the session is refused before a
   * word of it is believed, and reported. */
  CU_ASSERT_EQUAL(synod_client_trust_remove(dave.c, "relay-c"), 0);
  char fline[SYNOD_KEYFILE_TEXT_MAX];
  CU_ASSERT_EQUAL(
      synod_keyfile_format_public(fline, sizeof fline, SYNOD_KEY_ED25519, fpk),
      0);
  CU_ASSERT_EQUAL(synod_client_trust_add(dave.c, "relay-c",
                                         fixture_relay_address(rc), fline,
                                         "Org C"),
                  0);
  CU_ASSERT_EQUAL(synod_client_lookup(dave.c, "bob@relay-b", NULL, &lr), 0);
  show("dave, wrong key for relay-c", &lr);
  CU_ASSERT_EQUAL(said(&lr, "relay-c")->status, SYNOD_RELAY_UNREACHABLE);
  CU_ASSERT_EQUAL(lr.net_error[2], SYNOD_EBADKEY);
  CU_ASSERT_EQUAL(memcmp(lr.decision.info.identity_key, bob_pk, 32), 0);
  synod_lookup_result_free(&lr);

  /* Answers older than the window (here: a client clock an hour ahead). */
  synod_client_net_opts_t late = {.now = now_s() + 3600};
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", &late, &lr),
                  SYNOD_ESTALE);
  show("alice, an hour late", &lr);
  CU_ASSERT_EQUAL(said(&lr, "relay-a")->status, SYNOD_RELAY_STALE);
  CU_ASSERT_EQUAL(said(&lr, "relay-b")->status, SYNOD_RELAY_STALE);
  CU_ASSERT_FALSE(lr.pin_saved);
  synod_lookup_result_free(&lr);

  /* Two relays down: no quorum, and the reason says so. */
  CU_ASSERT_EQUAL(fixture_relay_stop(rb), 0);
  CU_ASSERT_EQUAL(fixture_relay_stop(rc), 0);
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr),
                  SYNOD_ENOQUORUM);
  show("alice, two relays down", &lr);
  CU_ASSERT_EQUAL(said(&lr, "relay-a")->status, SYNOD_RELAY_NO_QUORUM);
  CU_ASSERT_EQUAL(said(&lr, "relay-b")->status, SYNOD_RELAY_UNREACHABLE);
  CU_ASSERT_EQUAL(said(&lr, "relay-c")->status, SYNOD_RELAY_UNREACHABLE);
  CU_ASSERT_NOT_EQUAL(lr.net_error[1], 0);
  CU_ASSERT(strlen(lr.decision.reason) > 10);
  synod_lookup_result_free(&lr);
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT_EQUAL(memcmp(pin.pin.hash, r1.hash, 32), 0);
  /* Registering with the home relay down: refused, nothing skipped over. */
  synod_register_result_t rd;
  CU_ASSERT_NOT_EQUAL(synod_client_register(bob.c, 0, NULL, &rd), 0);
  CU_ASSERT_EQUAL(rd.relays[1].status, SYNOD_PUBLISH_UNREACHABLE);
  CU_ASSERT_EQUAL(rd.relays[0].status, SYNOD_PUBLISH_SKIPPED);
  synod_register_result_free(&rd);

  synod_register_result_free(&r1);
  prof_free(&bob);
  prof_free(&alice);
  prof_free(&carol);
  prof_free(&dave);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* A relay set that answers with a version below the pin is refused. */
static void test_rollback(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_rollback"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  prof_t bob, alice;
  prof_make(&bob, fx, fixture_relay_at(fx, 1), "bob", NULL);
  prof_make(&alice, fx, fixture_relay_at(fx, 0), "alice", NULL);
  synod_register_result_t r1 = reg(&bob, 0, 3);
  synod_register_result_t r2 = reg(&bob, SYNOD_REGISTER_NEXT, 3);
  CU_ASSERT_EQUAL(r2.version, 2);
  synod_lookup_result_t lr;
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  CU_ASSERT_EQUAL(lr.decision.version, 2);
  synod_lookup_result_free(&lr);
  /* Every relay forgets version 2. */
  for (size_t i = 0; i < 3; i++) {
    sql(fixture_relay_at(fx, i), "DELETE FROM announcements WHERE user_id = "
                                 "'bob@relay-b' AND version = 2");
    sql(fixture_relay_at(fx, i), "DELETE FROM countersignatures WHERE user_id"
                                 " = 'bob@relay-b' AND version = 2");
  }
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr),
                  SYNOD_EROLLBACK);
  show("alice, rolled back", &lr);
  for (size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(lr.decision.relays[i].status, SYNOD_RELAY_ROLLED_BACK);
    CU_ASSERT_EQUAL(lr.decision.relays[i].version, 1);
  }
  synod_lookup_result_free(&lr);
  synod_client_pin_t pin;
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT_EQUAL(pin.pin.version, 2);
  CU_ASSERT_EQUAL(memcmp(pin.pin.hash, r2.hash, 32), 0);
  synod_register_result_free(&r1);
  synod_register_result_free(&r2);
  prof_free(&bob);
  prof_free(&alice);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* relay-b and relay-c are run by one operator, which substitutes bob's
 * key on both (a reset countersigned with relay-b's own key): two relays
 * agree, but one operator is not a quorum. */
static void test_same_operator(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_sameop"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-a", "Org A", NULL), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-b", "Org B", NULL), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_add_relay(fx, "relay-c", "Org B", NULL), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_write_configs(fx), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_migrate_all(fx), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *rb = fixture_relay_at(fx, 1), *rc = fixture_relay_at(fx, 2);
  prof_t bob, alice;
  prof_make(&bob, fx, rb, "bob", NULL);
  prof_make(&alice, fx, fixture_relay_at(fx, 0), "alice", NULL);
  synod_register_result_t r1 = reg(&bob, 0, 3);
  synod_lookup_result_t lr;
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  CU_ASSERT_EQUAL(lr.decision.operators, 2);
  synod_lookup_result_free(&lr);

  uint8_t bsk[32], epk[32], esk[32];
  relay_secret(rb, bsk);
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(epk, esk), 0);
  synod_announcement_t evil;
  announce(&evil, "bob@relay-b", 2, r1.hash, 1, esk);
  db_plant(rb, "bob@relay-b", 2, &evil, "relay-b", bsk, epk);
  db_plant(rc, "bob@relay-b", 2, &evil, "relay-b", bsk, epk);
  synod_announcement_free(&evil);
  synod_wipe(bsk, sizeof bsk);

  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr),
                  SYNOD_ENOQUORUM);
  show("alice, Org B agrees with itself", &lr);
  CU_ASSERT_EQUAL(said(&lr, "relay-b")->version, 2);
  CU_ASSERT_EQUAL(said(&lr, "relay-c")->version, 2);
  CU_ASSERT_EQUAL(said(&lr, "relay-b")->status, SYNOD_RELAY_NO_QUORUM);
  CU_ASSERT_EQUAL(said(&lr, "relay-a")->version, 1);
  synod_lookup_result_free(&lr);
  synod_client_pin_t pin;
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT_EQUAL(pin.pin.version, 1);

  /* The same answers with relay-c believed to be another operator's: the
   * operator label is all that stood in the way (and the reset is loud). */
  CU_ASSERT_EQUAL(synod_client_trust_remove(alice.c, "relay-c"), 0);
  CU_ASSERT_EQUAL(synod_client_trust_add(alice.c, "relay-c",
                                         fixture_relay_address(rc),
                                         fixture_relay_key_line(rc), "Org C"),
                  0);
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  CU_ASSERT(lr.decision.flags & SYNOD_QUORUM_RESET);
  CU_ASSERT_EQUAL(memcmp(lr.decision.info.identity_key, epk, 32), 0);
  synod_lookup_result_free(&lr);

  synod_register_result_free(&r1);
  prof_free(&bob);
  prof_free(&alice);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
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

/* The home relay's operator binds bob's account to a key of its own and
 * registers a reset through its own relay (a global substitution): bob's
 * monitor alarms with the evidence; alice accepts the reset loudly and
 * loses her verified state. */
static void test_reset_monitor(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "cli_reset"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0), *rb = fixture_relay_at(fx, 1),
                  *rc = fixture_relay_at(fx, 2);
  prof_t bob, alice;
  prof_make(&bob, fx, rb, "bob", NULL);
  prof_make(&alice, fx, ra, "alice", NULL);
  uint8_t bob_pk[32];
  synod_client_identity_key(bob.c, bob_pk);

  /* Before anything registered: the relays know none of ours. */
  synod_monitor_result_t m;
  CU_ASSERT_EQUAL(synod_client_monitor(bob.c, NULL, &m), 0);
  CU_ASSERT_FALSE(m.alarm);
  for (size_t i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(m.relays[i].status, SYNOD_MONITOR_MISSING);
  synod_monitor_result_free(&m);

  synod_register_result_t r1 = reg(&bob, 0, 3);
  CU_ASSERT_EQUAL(synod_client_monitor(bob.c, NULL, &m), 0);
  CU_ASSERT_FALSE(m.alarm);
  for (size_t i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(m.relays[i].status, SYNOD_MONITOR_OK);
  synod_monitor_result_free(&m);

  synod_lookup_result_t lr;
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  synod_lookup_result_free(&lr);
  CU_ASSERT_EQUAL(synod_client_pin_set_verified(alice.c, "bob@relay-b"), 0);
  synod_client_pin_t pin;
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT(pin.pin.verified);

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
  announce(&evil, "bob@relay-b", 2, r1.hash, 1, esk);
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

  /* bob's monitor: the home relay refuses his key, the others vouch for a
   * key he never signed, and their signed answers are the evidence. */
  CU_ASSERT_EQUAL(synod_client_monitor(bob.c, NULL, &m), 0);
  CU_ASSERT(m.alarm);
  for (size_t i = 0; i < 3; i++)
    fprintf(stderr, "monitor %s: %s (%s)\n", m.relays[i].relay_name,
            synod_monitor_status_name(m.relays[i].status), m.relays[i].reason);
  CU_ASSERT_EQUAL(m.relays[1].status, SYNOD_MONITOR_REFUSED_US);
  CU_ASSERT_EQUAL(m.relays[1].error, SYNOD_EBADKEY);
  size_t idx[2] = {0, 2};
  for (size_t j = 0; j < 2; j++) {
    synod_monitor_report_t *r = &m.relays[idx[j]];
    CU_ASSERT_EQUAL(r->status, SYNOD_MONITOR_FOREIGN);
    CU_ASSERT_EQUAL(r->version, 2);
    CU_ASSERT(r->has_foreign_key);
    CU_ASSERT_EQUAL(memcmp(r->foreign_key, epk, 32), 0);
    /* Anyone holding the relay's key can check the evidence. */
    Synod__V1__LookupAnswer la = SYNOD__V1__LOOKUP_ANSWER__INIT;
    la.body.data = r->answer_body;
    la.body.len = r->answer_body_len;
    la.signature.data = r->answer_signature;
    la.signature.len = 64;
    synod_lookup_info_t li;
    CU_ASSERT_EQUAL(synod_lookup_verify(
                        &li, &la,
                        fixture_relay_public_key(fixture_relay_at(fx, idx[j])),
                        now_s(), 0),
                    0);
    CU_ASSERT_EQUAL(li.version, 2);
  }
  synod_monitor_result_free(&m);

  /* alice: a reset, accepted by the quorum, flagged, verified cleared,
   * bob's old key kept in the pin's history. */
  CU_ASSERT_EQUAL(synod_client_lookup(alice.c, "bob@relay-b", NULL, &lr), 0);
  show("alice after the reset", &lr);
  CU_ASSERT(lr.decision.flags & SYNOD_QUORUM_RESET);
  CU_ASSERT(lr.decision.flags & SYNOD_QUORUM_VERIFIED_CLEARED);
  CU_ASSERT_EQUAL(memcmp(lr.decision.info.identity_key, epk, 32), 0);
  synod_lookup_result_free(&lr);
  CU_ASSERT_EQUAL(synod_client_pin_get(alice.c, "bob@relay-b", &pin), 0);
  CU_ASSERT_FALSE(pin.pin.verified);
  CU_ASSERT_EQUAL(pin.pin.version, 2);
  CU_ASSERT_EQUAL_FATAL(pin.nhistory, 1);
  CU_ASSERT_EQUAL(pin.history[0].version, 1);
  CU_ASSERT_EQUAL(memcmp(pin.history[0].identity_key, bob_pk, 32), 0);

  synod_announcement_free(&evil);
  synod_register_result_free(&r1);
  prof_free(&bob);
  prof_free(&alice);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo directory_tests[] = {
    {"liar_stale_down", test_liar_stale_down},
    {"reset_monitor", test_reset_monitor},
    {"rollback", test_rollback},
    {"same_operator", test_same_operator},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"directory", NULL, NULL, NULL, fixture_teardown, directory_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
