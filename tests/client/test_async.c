/*
 * Suite client.async: the asynchronous client API (synod_client_*_start)
 * on one libuv loop, against real relays and a real PostgreSQL: several
 * operations of two clients at once on one loop, a message acknowledged
 * only once the application took it, cancellation (and closing the client)
 * while a relay never answers, and the typed error of a relay that hangs.
 * Callbacks count what happened; the tests assert the counts after the
 * loop ran, and every test ends with its loop closed (uv_loop_close()
 * succeeds only when nothing is left on it).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "fixture.h"
#include "harness.h"
#include "synod/client.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"

#define PASS "pass phrase"
#define BODY "hello over one loop"

static const synod_keyfile_kdf_t kdf = {.log2_n = 10, .r = 8, .p = 1};

/* --- profiles ------------------------------------------------------------- */

typedef struct prof {
  char root[256];
  char dir[300];
  synod_client_t *c;
} prof_t;

static void prof_create(prof_t *p, const char *user) {
  const char *tmp = getenv("TMPDIR");
  snprintf(p->root, sizeof p->root, "%s/synod-async.XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(p->root));
  snprintf(p->dir, sizeof p->dir, "%s/p", p->root);
  synod_profile_params_t pp = {.user_id = user,
                               .device_name = "test device",
                               .pass = PASS,
                               .passlen = strlen(PASS),
                               .kdf = &kdf};
  p->c = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_client_create(&p->c, p->dir, &pp), 0);
}

/* local@home trusting every relay of fx, enrolled and registered with the
 * blocking calls. */
static void prof_make(prof_t *p, fixture_t *fx, fixture_relay_t *home,
                      const char *local) {
  char user[128];
  snprintf(user, sizeof user, "%s@%s", local, fixture_relay_name(home));
  prof_create(p, user);
  for (size_t i = 0; i < fixture_relay_count(fx); i++) {
    fixture_relay_t *r = fixture_relay_at(fx, i);
    CU_ASSERT_EQUAL_FATAL(synod_client_trust_add(p->c, fixture_relay_name(r),
                                                 fixture_relay_address(r),
                                                 fixture_relay_key_line(r),
                                                 fixture_relay_operator(r)),
                          0);
  }
  char code[FIXTURE_CODE_MAX];
  CU_ASSERT_EQUAL_FATAL(fixture_relay_user_add(home, local, code), 0);
  int rc = SYNOD_EAGAIN;
  for (int i = 0; i < 50 && rc == SYNOD_EAGAIN; i++)
    if ((rc = synod_client_enroll(p->c, code, NULL)) == SYNOD_EAGAIN)
      usleep(100000);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void prof_free(prof_t *p) {
  synod_client_close(p->c);
  p->c = NULL;
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

/* --- the loop --------------------------------------------------------------
 */

/* Runs loop until nothing is left on it, at most limit_ms: past that the
 * test fails and every operation in ops is canceled (so that a hang is a
 * failure, not a stuck ctest). */
static void run_loop(uv_loop_t *loop, uint64_t limit_ms,
                     synod_client_op_t **ops, size_t nops);

typedef struct watchdog {
  uv_timer_t timer;
  synod_client_op_t **ops;
  size_t nops;
  int fired;
} watchdog_t;

static void on_watchdog(uv_timer_t *h) {
  watchdog_t *w = h->data;
  w->fired = 1;
  for (size_t i = 0; i < w->nops; i++)
    if (w->ops[i])
      (void)synod_client_op_cancel(w->ops[i]);
}

static void run_loop(uv_loop_t *loop, uint64_t limit_ms,
                     synod_client_op_t **ops, size_t nops) {
  watchdog_t w = {.ops = ops, .nops = nops};
  uv_timer_init(loop, &w.timer);
  w.timer.data = &w;
  uv_timer_start(&w.timer, on_watchdog, limit_ms, 0);
  uv_unref((uv_handle_t *)&w.timer); /* the loop ends without it */
  uv_run(loop, UV_RUN_DEFAULT);
  CU_ASSERT_FALSE(w.fired);
  uv_close((uv_handle_t *)&w.timer, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

static uint64_t ms_since(uv_loop_t *loop, uint64_t t0) {
  uv_update_time(loop);
  return uv_now(loop) - t0;
}

/* --- two clients, five operations, one loop -------------------------------
 */

/* Drops op from ops (its callback ran: the handle is gone). */
static void forget(synod_client_op_t **ops, size_t n,
                   const synod_client_op_t *op) {
  for (size_t i = 0; i < n; i++)
    if (ops[i] == op)
      ops[i] = NULL;
}

typedef struct together {
  uv_loop_t *loop;
  uint8_t bob_pk[32];
  int registered, reg_status[2];
  size_t reg_accepted[2];
  int looked_up, lookup_status;
  int sent, send_status, send_ndevices;
  int received, ok_received, body_ok;
  int done, done_status;
  size_t taken;
  synod_client_op_t *recv_op;
  synod_client_op_t *ops[8];
  uv_timer_t stop_timer; /* cancels the follow session after the ack */
  int stop_timer_on;
  int stop_value; /* on_message's answer in the second round */
  int monitored, monitor_status, monitor_ok, monitor_alarm;
  int purged, purge_ok, purge_einval;
} together_t;

static void on_monitored(synod_client_op_t *op, int status,
                         synod_monitor_result_t *res) {
  together_t *t = synod_client_op_data(op);
  t->monitored++;
  t->monitor_status = status;
  t->monitor_alarm = res->alarm;
  for (size_t i = 0; i < res->nrelays; i++)
    t->monitor_ok += res->relays[i].status == SYNOD_MONITOR_OK;
  synod_monitor_result_free(res);
}

static void on_purged(synod_client_op_t *op, int status,
                      synod_purge_result_t *res) {
  together_t *t = synod_client_op_data(op);
  t->purged++;
  CU_ASSERT_EQUAL(res->error, status);
  if (status == 0)
    t->purge_ok++;
  if (status == SYNOD_EINVAL && strstr(res->reason, "CONVERSATION"))
    t->purge_einval++;
}

static void on_registered(synod_client_op_t *op, int status,
                          synod_register_result_t *res) {
  together_t *t = synod_client_op_data(op);
  forget(t->ops, 8, op);
  t->reg_status[t->registered] = status;
  t->reg_accepted[t->registered] = res->accepted;
  t->registered++;
  synod_register_result_free(res);
}

static void on_looked_up(synod_client_op_t *op, int status,
                         synod_lookup_result_t *res) {
  together_t *t = synod_client_op_data(op);
  forget(t->ops, 8, op);
  t->looked_up++;
  t->lookup_status = status;
  CU_ASSERT_EQUAL(res->decision.error, status);
  if (status == 0)
    CU_ASSERT_EQUAL(memcmp(res->decision.pin.identity_key, t->bob_pk, 32), 0);
  synod_lookup_result_free(res);
}

static void on_sent(synod_client_op_t *op, int status,
                    synod_send_result_t *res) {
  together_t *t = synod_client_op_data(op);
  forget(t->ops, 8, op);
  t->sent++;
  t->send_status = status;
  t->send_ndevices = (int)res->ndevices;
  CU_ASSERT_EQUAL(res->lookup.decision.error, 0);
  CU_ASSERT_EQUAL(res->submit_error, status);
  synod_send_result_free(res);
}

static void on_stop_timer(uv_timer_t *h) {
  together_t *t = h->data;
  CU_ASSERT_EQUAL(synod_client_op_cancel(t->recv_op), 0);
  CU_ASSERT_EQUAL(synod_client_op_cancel(t->recv_op), 0); /* harmless */
  uv_close((uv_handle_t *)h, NULL);
}

static int on_message(synod_client_op_t *op, const synod_received_t *m) {
  together_t *t = synod_client_op_data(op);
  t->received++;
  if (m->status != SYNOD_RECV_OK)
    fprintf(stderr, "unexpected message: %s\n", m->reason);
  if (m->status == SYNOD_RECV_OK) {
    t->ok_received++;
    t->body_ok = strcmp(m->sender, "alice@relay-a") == 0 &&
                 strcmp(m->content_type, SYNOD_CLIENT_TEXT) == 0 &&
                 m->body_len == strlen(BODY) &&
                 memcmp(m->body, BODY, m->body_len) == 0;
  }
  if (t->stop_value)
    return t->stop_value; /* not taken */
  /* Taken: the session acknowledges it when this returns; the follow
   * session is canceled a little later, from the loop. */
  if (t->stop_timer_on++)
    return 0;
  uv_timer_init(t->loop, &t->stop_timer);
  t->stop_timer.data = t;
  uv_timer_start(&t->stop_timer, on_stop_timer, 300, 0);
  return 0;
}

static void on_recv_done(synod_client_op_t *op, int status, size_t taken) {
  together_t *t = synod_client_op_data(op);
  forget(t->ops, 8, op);
  t->done++;
  t->done_status = status;
  t->taken = taken;
  t->recv_op = NULL;
}

static int count_cb(void *arg, const synod_received_t *m) {
  int *n = arg;
  if (m->status == SYNOD_RECV_OK && m->body_len == strlen(BODY) &&
      memcmp(m->body, BODY, m->body_len) == 0)
    (*n)++;
  return 0;
}

/* alice and bob register at once; then on one loop bob's follow session
 * waits while alice looks bob up and sends to him at the same time; the
 * message reaches bob's callback, is acknowledged (gone from the relay),
 * and the session ends by cancel. A message the callback does not take
 * stays at the relay. */
static void test_together(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "async_together"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  prof_t alice, bob;
  prof_make(&alice, fx, fixture_relay_at(fx, 0), "alice");
  prof_make(&bob, fx, fixture_relay_at(fx, 1), "bob");
  uv_loop_t loop;
  CU_ASSERT_EQUAL_FATAL(uv_loop_init(&loop), 0);
  together_t t;
  memset(&t, 0, sizeof t);
  t.loop = &loop;
  synod_client_identity_key(bob.c, t.bob_pk);

  /* Both register at once. */
  CU_ASSERT_EQUAL_FATAL(synod_client_register_start(alice.c, &loop, 0, NULL,
                                                    on_registered, &t,
                                                    &t.ops[0]),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_client_register_start(bob.c, &loop, 0, NULL,
                                                    on_registered, &t,
                                                    &t.ops[1]),
                        0);
  CU_ASSERT_EQUAL(t.registered, 0); /* never from inside start */
  /* The trust set and the keys are fixed while they run. */
  CU_ASSERT_EQUAL(synod_client_trust_remove(alice.c, "relay-c"), SYNOD_EAGAIN);
  CU_ASSERT_EQUAL(
      synod_client_rotate_device_key(alice.c, PASS, strlen(PASS), &kdf),
      SYNOD_EAGAIN);
  run_loop(&loop, 30000, t.ops, 2);
  CU_ASSERT_EQUAL(t.registered, 2);
  for (int i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(t.reg_status[i], 0);
    CU_ASSERT_EQUAL(t.reg_accepted[i], 3);
  }

  /* bob waits; alice looks up and sends, all on one loop. */
  CU_ASSERT_EQUAL_FATAL(synod_client_recv_start(bob.c, &loop, SYNOD_RECV_FOLLOW,
                                                NULL, on_message, on_recv_done,
                                                &t, &t.recv_op),
                        0);
  t.ops[2] = t.recv_op;
  /* One session per client at a time. */
  synod_client_op_t *second = NULL;
  CU_ASSERT_EQUAL(synod_client_recv_start(bob.c, &loop, 0, NULL, on_message,
                                          on_recv_done, &t, &second),
                  SYNOD_EAGAIN);
  CU_ASSERT_PTR_NULL(second);
  CU_ASSERT_EQUAL_FATAL(synod_client_lookup_start(alice.c, &loop, "bob@relay-b",
                                                  NULL, on_looked_up, &t,
                                                  &t.ops[3]),
                        0);
  CU_ASSERT_EQUAL_FATAL(
      synod_client_send_start(alice.c, &loop, "bob@relay-b", SYNOD_CLIENT_TEXT,
                              (const uint8_t *)BODY, strlen(BODY), NULL,
                              on_sent, &t, &t.ops[4]),
      0);
  /* Bad arguments are refused at once, and nothing runs. */
  CU_ASSERT_EQUAL(synod_client_lookup_start(alice.c, &loop, "no user", NULL,
                                            on_looked_up, &t, NULL),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_client_send_start(alice.c, &loop, "bob@relay-b",
                                          SYNOD_CLIENT_TEXT, NULL, 3, NULL,
                                          on_sent, &t, NULL),
                  SYNOD_EINVAL);
  run_loop(&loop, 30000, t.ops + 2, 3);
  CU_ASSERT_EQUAL(t.looked_up, 1);
  CU_ASSERT_EQUAL(t.lookup_status, 0);
  CU_ASSERT_EQUAL(t.sent, 1);
  CU_ASSERT_EQUAL(t.send_status, 0);
  CU_ASSERT_EQUAL(t.send_ndevices, 1);
  CU_ASSERT_EQUAL(t.received, 1);
  CU_ASSERT_EQUAL(t.ok_received, 1);
  CU_ASSERT(t.body_ok);
  CU_ASSERT_EQUAL(t.done, 1);
  CU_ASSERT_EQUAL(t.done_status, SYNOD_ECANCELED);
  CU_ASSERT_EQUAL(t.taken, 1);

  /* It was acknowledged: even with the device's record of taken ids
   * gone, the relay delivers nothing again. */
  char seen[400];
  snprintf(seen, sizeof seen, "%s/seen", bob.dir);
  CU_ASSERT_EQUAL(unlink(seen), 0);
  int n = 0;
  size_t taken = 99;
  CU_ASSERT_EQUAL(synod_client_recv(bob.c, 0, count_cb, &n, NULL, &taken), 0);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL(taken, 0);

  /* A message the callback does not take ends the session with the
   * callback's value and stays at the relay (a follow session: it waits
   * for the message to come over from alice's relay). */
  synod_send_result_t sr;
  CU_ASSERT_EQUAL(synod_client_send(alice.c, "bob@relay-b", SYNOD_CLIENT_TEXT,
                                    (const uint8_t *)BODY, strlen(BODY), NULL,
                                    &sr),
                  0);
  synod_send_result_free(&sr);
  t.stop_value = 42;
  t.received = t.ok_received = t.body_ok = t.done = 0;
  CU_ASSERT_EQUAL_FATAL(synod_client_recv_start(bob.c, &loop, SYNOD_RECV_FOLLOW,
                                                NULL, on_message, on_recv_done,
                                                &t, &t.recv_op),
                        0);
  run_loop(&loop, 30000, &t.recv_op, 1);
  CU_ASSERT_EQUAL(t.received, 1);
  CU_ASSERT(t.body_ok);
  CU_ASSERT_EQUAL(t.done, 1);
  CU_ASSERT_EQUAL(t.done_status, 42);
  CU_ASSERT_EQUAL(t.taken, 0);
  n = 0;
  CU_ASSERT_EQUAL(synod_client_recv(bob.c, 0, count_cb, &n, NULL, &taken), 0);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(taken, 1);

  /* alice monitors her key while bob purges, once refused (a bad scope,
   * through the callback) and once for real. */
  synod_client_op_t *more[3] = {NULL, NULL, NULL};
  CU_ASSERT_EQUAL_FATAL(synod_client_monitor_start(alice.c, &loop, NULL,
                                                   on_monitored, &t, &more[0]),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_client_purge_start(bob.c, &loop, SYNOD_PURGE_ALL,
                                                 NULL, NULL, 0, NULL, on_purged,
                                                 &t, &more[1]),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_client_purge_start(bob.c, &loop,
                                                 SYNOD_PURGE_CONVERSATION,
                                                 "not a user", NULL, 0, NULL,
                                                 on_purged, &t, &more[2]),
                        0);
  CU_ASSERT_EQUAL(t.monitored + t.purged, 0);
  run_loop(&loop, 30000, NULL, 0);
  CU_ASSERT_EQUAL(t.monitored, 1);
  CU_ASSERT_EQUAL(t.monitor_status, 0);
  CU_ASSERT_EQUAL(t.monitor_ok, 3);
  CU_ASSERT_EQUAL(t.monitor_alarm, 0);
  CU_ASSERT_EQUAL(t.purged, 2);
  CU_ASSERT_EQUAL(t.purge_ok, 1);
  CU_ASSERT_EQUAL(t.purge_einval, 1);

  CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
  prof_free(&alice);
  prof_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* --- a relay that accepts and never answers ------------------------------- */

typedef struct silent {
  uv_tcp_t server;
  uv_tcp_t *peers[16];
  size_t npeers;
  uint16_t port;
} silent_t;

static void on_silent_conn(uv_stream_t *server, int status) {
  silent_t *s = server->data;
  if (status != 0 || s->npeers == 16)
    return;
  uv_tcp_t *p = calloc(1, sizeof *p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  uv_tcp_init(server->loop, p);
  CU_ASSERT_EQUAL(uv_accept(server, (uv_stream_t *)p), 0);
  s->peers[s->npeers++] = p; /* never read, never written */
}

static void silent_start(silent_t *s, uv_loop_t *loop) {
  memset(s, 0, sizeof *s);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  CU_ASSERT_EQUAL_FATAL(uv_tcp_init(loop, &s->server), 0);
  s->server.data = s;
  CU_ASSERT_EQUAL_FATAL(uv_tcp_bind(&s->server, (const struct sockaddr *)&a, 0),
                        0);
  CU_ASSERT_EQUAL_FATAL(
      uv_listen((uv_stream_t *)&s->server, 16, on_silent_conn), 0);
  struct sockaddr_in got;
  int len = sizeof got;
  CU_ASSERT_EQUAL_FATAL(
      uv_tcp_getsockname(&s->server, (struct sockaddr *)&got, &len), 0);
  s->port = ntohs(got.sin_port);
}

static void free_on_close(uv_handle_t *h) {
  free(h);
}

static void silent_stop(silent_t *s) {
  for (size_t i = 0; i < s->npeers; i++)
    uv_close((uv_handle_t *)s->peers[i], free_on_close);
  uv_close((uv_handle_t *)&s->server, NULL);
}

/* A trust-set entry at the silent listener, with a key of its own. */
static void trust_silent(synod_client_t *c, const char *name, uint16_t port,
                         const char *op) {
  uint8_t pk[32], sk[64];
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  char line[SYNOD_KEYFILE_TEXT_MAX], addr[64];
  CU_ASSERT_EQUAL_FATAL(
      synod_keyfile_format_public(line, sizeof line, SYNOD_KEY_ED25519, pk), 0);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  CU_ASSERT_EQUAL_FATAL(synod_client_trust_add(c, name, addr, line, op), 0);
}

typedef struct ends {
  uv_loop_t *loop;
  uint64_t t_cancel;
  int calls[6]; /* lookup, send, recv, monitor, purge; register */
  int status[6];
  uint64_t after[6]; /* ms from the cancel to the callback */
  int decision_error;
  synod_client_op_t *ops[6];
  prof_t *p;
} ends_t;

static void end_at(ends_t *e, int i, int status) {
  e->calls[i]++;
  e->status[i] = status;
  e->after[i] = ms_since(e->loop, e->t_cancel);
  e->ops[i] = NULL;
}

static void on_end_lookup(synod_client_op_t *op, int status,
                          synod_lookup_result_t *res) {
  ends_t *e = synod_client_op_data(op);
  end_at(e, 0, status);
  e->decision_error = res->decision.error;
  synod_lookup_result_free(res);
}

static void on_end_send(synod_client_op_t *op, int status,
                        synod_send_result_t *res) {
  end_at(synod_client_op_data(op), 1, status);
  synod_send_result_free(res);
}

static int on_end_message(synod_client_op_t *op, const synod_received_t *m) {
  (void)op;
  (void)m;
  CU_FAIL("a silent relay delivered a message");
  return 0;
}

static void on_end_recv(synod_client_op_t *op, int status, size_t taken) {
  CU_ASSERT_EQUAL(taken, 0);
  end_at(synod_client_op_data(op), 2, status);
}

static void on_end_monitor(synod_client_op_t *op, int status,
                           synod_monitor_result_t *res) {
  end_at(synod_client_op_data(op), 3, status);
  synod_monitor_result_free(res);
}

static void on_end_purge(synod_client_op_t *op, int status,
                         synod_purge_result_t *res) {
  CU_ASSERT_EQUAL(res->error, status);
  end_at(synod_client_op_data(op), 4, status);
}

static void on_end_register(synod_client_op_t *op, int status,
                            synod_register_result_t *res) {
  end_at(synod_client_op_data(op), 5, status);
  synod_register_result_free(res);
}

static void on_cancel_timer(uv_timer_t *h) {
  ends_t *e = h->data;
  uv_update_time(e->loop);
  e->t_cancel = uv_now(e->loop);
  for (int i = 0; i < 5; i++)
    CU_ASSERT_EQUAL(synod_client_op_cancel(e->ops[i]), 0);
  /* The register is canceled by closing the client. */
  synod_client_close(e->p->c);
  e->p->c = NULL;
  for (int i = 0; i < 6; i++)
    CU_ASSERT_EQUAL(e->calls[i], 0); /* later, from the loop */
  uv_close((uv_handle_t *)h, NULL);
}

/* Every kind of operation in flight against relays that accept and stay silent
 * (timeouts of a minute) ends at once on cancel, or when the client is
 * closed: each callback once, with SYNOD_ECANCELED, nothing left on the
 * loop, nothing leaked. */
static void test_cancel_silent(void) {
  uv_loop_t loop;
  CU_ASSERT_EQUAL_FATAL(uv_loop_init(&loop), 0);
  silent_t s;
  silent_start(&s, &loop);
  prof_t p;
  prof_create(&p, "alice@relay-x");
  trust_silent(p.c, "relay-x", s.port, "Org X");
  trust_silent(p.c, "relay-y", s.port, "Org Y");
  synod_client_net_opts_t slow = {.timeout_ms = 60000};
  ends_t e;
  memset(&e, 0, sizeof e);
  e.loop = &loop;
  e.p = &p;
  CU_ASSERT_EQUAL_FATAL(synod_client_lookup_start(p.c, &loop, "bob@relay-y",
                                                  &slow, on_end_lookup, &e,
                                                  &e.ops[0]),
                        0);
  CU_ASSERT_EQUAL_FATAL(
      synod_client_send_start(p.c, &loop, "bob@relay-y", SYNOD_CLIENT_TEXT,
                              (const uint8_t *)BODY, strlen(BODY), &slow,
                              on_end_send, &e, &e.ops[1]),
      0);
  CU_ASSERT_EQUAL_FATAL(synod_client_recv_start(p.c, &loop, SYNOD_RECV_FOLLOW,
                                                &slow, on_end_message,
                                                on_end_recv, &e, &e.ops[2]),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_client_monitor_start(
                            p.c, &loop, &slow, on_end_monitor, &e, &e.ops[3]),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_client_purge_start(p.c, &loop, SYNOD_PURGE_ALL,
                                                 NULL, NULL, 0, &slow,
                                                 on_end_purge, &e, &e.ops[4]),
                        0);
  CU_ASSERT_EQUAL_FATAL(synod_client_register_start(p.c, &loop, 0, &slow,
                                                    on_end_register, &e,
                                                    &e.ops[5]),
                        0);
  CU_ASSERT_EQUAL(synod_client_op_cancel(NULL), SYNOD_EINVAL);
  uv_timer_t cancel;
  uv_timer_init(&loop, &cancel);
  cancel.data = &e;
  uv_timer_start(&cancel, on_cancel_timer, 500, 0);
  /* The listener stays open until every operation ended. */
  uv_unref((uv_handle_t *)&s.server);
  run_loop(&loop, 20000, e.ops, 6);
  CU_ASSERT(s.npeers >= 2); /* they did connect */
  for (int i = 0; i < 6; i++) {
    CU_ASSERT_EQUAL(e.calls[i], 1);
    CU_ASSERT_EQUAL(e.status[i], SYNOD_ECANCELED);
    CU_ASSERT(e.after[i] < 5000);
    fprintf(stderr, "cancel: callback %d after %llu ms\n", i,
            (unsigned long long)e.after[i]);
  }
  CU_ASSERT_EQUAL(e.decision_error, SYNOD_ECANCELED);
  silent_stop(&s);
  uv_run(&loop, UV_RUN_DEFAULT);
  CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
  prof_free(&p);
}

/* --- a hung relay --------------------------------------------------------- */

typedef struct hung {
  uv_loop_t *loop;
  int lookup_calls, lookup_status, lookup_net[3], lookup_error;
  int send_calls, send_status, submit_error;
  int recv_calls, recv_status;
  synod_client_op_t *ops[3];
} hung_t;

static void on_hung_lookup(synod_client_op_t *op, int status,
                           synod_lookup_result_t *res) {
  hung_t *h = synod_client_op_data(op);
  h->lookup_calls++;
  h->lookup_status = status;
  h->lookup_error = res->decision.error;
  for (size_t i = 0; i < 3 && i < res->decision.nrelays; i++)
    h->lookup_net[i] = res->net_error[i];
  synod_lookup_result_free(res);
  h->ops[0] = NULL;
}

static void on_hung_send(synod_client_op_t *op, int status,
                         synod_send_result_t *res) {
  hung_t *h = synod_client_op_data(op);
  h->send_calls++;
  h->send_status = status;
  h->submit_error = res->submit_error;
  synod_send_result_free(res);
  h->ops[1] = NULL;
}

static void on_hung_recv(synod_client_op_t *op, int status, size_t taken) {
  hung_t *h = synod_client_op_data(op);
  (void)taken;
  h->recv_calls++;
  h->recv_status = status;
  h->ops[2] = NULL;
}

/* alice's home relay is frozen (SIGSTOP: its socket accepts, nothing
 * answers). On one loop: a lookup still reaches a quorum of the other two
 * and names the frozen relay ETIMEDOUT; a send is decided but its submit
 * times out (tried again, then SYNOD_ETIMEDOUT); the receive session
 * times out. */
static void test_hung_relay(void) {
  fixture_t *fx = NULL;
  CU_ASSERT_EQUAL_FATAL(fixture_new(&fx, "async_hung"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(fx, 3), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(fx), 0);
  fixture_relay_t *ra = fixture_relay_at(fx, 0);
  prof_t alice, bob;
  prof_make(&alice, fx, ra, "alice");
  prof_make(&bob, fx, fixture_relay_at(fx, 1), "bob");
  synod_register_result_t rr;
  CU_ASSERT_EQUAL(synod_client_register(bob.c, 0, NULL, &rr), 0);
  synod_register_result_free(&rr);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_pause(ra), 0);

  uv_loop_t loop;
  CU_ASSERT_EQUAL_FATAL(uv_loop_init(&loop), 0);
  hung_t h;
  memset(&h, 0, sizeof h);
  h.loop = &loop;
  synod_client_net_opts_t quick = {.timeout_ms = 2000};
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  CU_ASSERT_EQUAL_FATAL(synod_client_lookup_start(alice.c, &loop, "bob@relay-b",
                                                  &quick, on_hung_lookup, &h,
                                                  &h.ops[0]),
                        0);
  CU_ASSERT_EQUAL_FATAL(
      synod_client_send_start(alice.c, &loop, "bob@relay-b", SYNOD_CLIENT_TEXT,
                              (const uint8_t *)BODY, strlen(BODY), &quick,
                              on_hung_send, &h, &h.ops[1]),
      0);
  CU_ASSERT_EQUAL_FATAL(synod_client_recv_start(alice.c, &loop, 0, &quick,
                                                on_end_message, on_hung_recv,
                                                &h, &h.ops[2]),
                        0);
  run_loop(&loop, 60000, h.ops, 3);
  uint64_t took = ms_since(&loop, t0);
  CU_ASSERT_EQUAL(fixture_relay_resume(ra), 0);
  CU_ASSERT_EQUAL(h.lookup_calls, 1);
  CU_ASSERT_EQUAL(h.lookup_status, 0);
  CU_ASSERT_EQUAL(h.lookup_error, 0);
  CU_ASSERT_EQUAL(h.lookup_net[0], SYNOD_ETIMEDOUT);
  CU_ASSERT_EQUAL(h.lookup_net[1], 0);
  CU_ASSERT_EQUAL(h.lookup_net[2], 0);
  CU_ASSERT_EQUAL(h.send_calls, 1);
  CU_ASSERT_EQUAL(h.send_status, SYNOD_ETIMEDOUT);
  CU_ASSERT_EQUAL(h.submit_error, SYNOD_ETIMEDOUT);
  CU_ASSERT_EQUAL(h.recv_calls, 1);
  CU_ASSERT_EQUAL(h.recv_status, SYNOD_ETIMEDOUT);
  /* All three ran at once: the send alone is a lookup and four tries of
   * 2 s each (and a bounded close) with pauses of 0.4, 0.8, 1.6 s. */
  CU_ASSERT(took < 45000);
  fprintf(stderr, "hung relay: every callback after %llu ms\n",
          (unsigned long long)took);
  CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
  prof_free(&alice);
  prof_free(&bob);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo async_tests[] = {
    {"together", test_together},
    {"cancel_silent", test_cancel_silent},
    {"hung_relay", test_hung_relay},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"async", NULL, NULL, NULL, fixture_teardown, async_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
