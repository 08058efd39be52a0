/*
 * Integration suite: the durability rule (DESIGN.md section 4) on real
 * relays and a real PostgreSQL. A relay acknowledges a message only once it
 * is committed, so whatever a sender saw Accepted must reach the recipient,
 * exactly once, whatever is killed or restarted in between: the sending
 * relay (SIGKILL right after acknowledging, or mid-stream), the receiving
 * relay mid-forward, PostgreSQL under load. Message ids deduplicate at
 * every hop, so the same id sent twice is delivered once.
 *
 * Every test pipelines submits (tclient_submit_async), records the ids
 * answered Accepted (tclient_accepted), and at the end checks the
 * recipient's deliveries against them: every accepted id delivered, none
 * twice, nothing delivered that was never sent.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "synod/crypto.h"
#include "tclient.h"
#include "tusers.h"

#define T_MS 15000

/* --- id sets ---------------------------------------------------------------
 */

static int idcmp(const void *a, const void *b) {
  return memcmp(a, b, 16);
}

static void id_sort(uint8_t (*ids)[16], size_t n) {
  qsort(ids, n, 16, idcmp);
}

static int id_in(const uint8_t (*sorted)[16], size_t n, const uint8_t id[16]) {
  return n && bsearch(id, sorted, n, 16, idcmp) != NULL;
}

/* What a recipient received, checked against what was sent and accepted. */
typedef struct verdict {
  size_t delivered;    /* distinct ids received */
  size_t duplicates;   /* receptions beyond the first of an id */
  size_t missing;      /* accepted ids never received */
  size_t unknown;      /* received ids that were never sent */
  size_t unacked_seen; /* received ids sent but never answered Accepted */
} verdict_t;

/* rx: the deliveries of one or more clients of the recipient, appended. */
static verdict_t check(const tclient_rx_t *rx, size_t nrx,
                       const uint8_t (*sent)[16], size_t nsent,
                       const uint8_t (*acc)[16], size_t nacc) {
  verdict_t v = {0};
  uint8_t(*got)[16] = calloc(nrx + 1, 16);
  uint8_t(*s)[16] = calloc(nsent + 1, 16);
  uint8_t(*a)[16] = calloc(nacc + 1, 16);
  CU_ASSERT_FATAL(got && s && a);
  for (size_t i = 0; i < nrx; i++)
    memcpy(got[i], rx[i].id, 16);
  memcpy(s, sent, 16 * nsent);
  memcpy(a, acc, 16 * nacc);
  id_sort(got, nrx);
  id_sort(s, nsent);
  id_sort(a, nacc);
  for (size_t i = 0; i < nrx; i++) {
    if (i > 0 && memcmp(got[i], got[i - 1], 16) == 0) {
      v.duplicates++;
      continue;
    }
    v.delivered++;
    if (!id_in((const uint8_t(*)[16])s, nsent, got[i]))
      v.unknown++;
    else if (!id_in((const uint8_t(*)[16])a, nacc, got[i]))
      v.unacked_seen++;
  }
  for (size_t i = 0; i < nacc; i++)
    if (!id_in((const uint8_t(*)[16])got, nrx, a[i]))
      v.missing++;
  free(got);
  free(s);
  free(a);
  return v;
}

/* --- pipelined sending ------------------------------------------------------
 */

typedef struct pump {
  tclient_t *c;
  const char *rcpt[2]; /* alternates between the recipients given */
  size_t nrcpt;
  uint8_t (*ids)[16]; /* every id sent, in order */
  size_t sent, cap;
  size_t window; /* unanswered submits at most */
} pump_t;

static void pump_init(pump_t *p, tclient_t *c, size_t cap, size_t window,
                      const char *r0, const char *r1) {
  memset(p, 0, sizeof *p);
  p->c = c;
  p->rcpt[0] = r0;
  p->rcpt[1] = r1;
  p->nrcpt = r1 ? 2 : 1;
  p->ids = calloc(cap, 16);
  CU_ASSERT_FATAL(p->ids != NULL);
  p->cap = cap;
  p->window = window;
}

static size_t answered(const pump_t *p) {
  size_t ok, err;
  tclient_answers(p->c, &ok, &err);
  return ok + err;
}

static size_t accepted(const pump_t *p) {
  size_t ok, err;
  tclient_answers(p->c, &ok, &err);
  return ok;
}

/* Sends up to max more submits within the window, then runs the client's
 * loop for ms. Returns how many it sent. */
static size_t pump_step(pump_t *p, size_t max, int ms) {
  size_t k = 0;
  while (k < max && p->sent < p->cap && tclient_up(p->c) &&
         p->sent - answered(p) < p->window) {
    uint8_t *id = p->ids[p->sent];
    tclient_random_id(id);
    if (tclient_submit_async(p->c, id, p->rcpt[p->sent % p->nrcpt], 128, 0) !=
        0)
      break; /* write queue full or closed: retried on the next step */
    p->sent++;
    k++;
  }
  if (tclient_up(p->c))
    tclient_run_for(p->c, ms);
  return k;
}

/* Pumps until every id is sent and answered, or accepted() reaches
 * stop_at, or the connection closes, or the deadline. */
static void pump_until(pump_t *p, size_t stop_at, int timeout_ms) {
  for (int t = 0; t < timeout_ms; t++) {
    if (accepted(p) >= stop_at || !tclient_up(p->c) ||
        (p->sent == p->cap && answered(p) == p->sent))
      return;
    pump_step(p, p->window, 1);
  }
}

/* The accepted ids of p's client (malloc'd), *n set. */
static uint8_t (*accepted_ids(const pump_t *p, size_t *n))[16] {
  size_t total = tclient_accepted(p->c, NULL, NULL, 0);
  uint8_t(*ids)[16] = calloc(total + 1, 16);
  CU_ASSERT_FATAL(ids != NULL);
  *n = tclient_accepted(p->c, ids, NULL, total);
  return ids;
}

/* Receives with acknowledgements until want deliveries, then keeps
 * receiving (and acknowledging) for soak_ms to catch duplicates. */
static void drain(tclient_t *c, size_t want, int soak_ms) {
  (void)tclient_wait_rx(c, want, 1, 3 * T_MS);
  (void)tclient_wait_rx(c, (size_t)-1, 1, soak_ms);
}

static void report(const char *what, size_t sent, size_t acc, verdict_t v) {
  fprintf(stderr,
          "durability %s: sent=%zu accepted=%zu delivered=%zu duplicates=%zu"
          " missing=%zu unacked_delivered=%zu unknown=%zu\n",
          what, sent, acc, v.delivered, v.duplicates, v.missing, v.unacked_seen,
          v.unknown);
}

/* --- the sending relay killed -----------------------------------------------
 */

enum { N_KILL = 300 };

/*
 * alice on relay-a pipelines N messages to bob on relay-b, who is offline.
 * relay-a is SIGKILLed as soon as stop_at submits were answered Accepted
 * (N: right after the last acknowledgement; less: mid-stream, with submits
 * still in flight), then restarted. Every id alice saw Accepted reaches
 * bob, exactly once.
 */
static void kill_sender(const char *name, size_t stop_at) {
  fixture_t *fx = tuser_federation(name, 2, 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  tclient_t *ca = tuser_login(&alice);

  pump_t p;
  pump_init(&p, ca, N_KILL, 64, bob.id, NULL);
  pump_until(&p, stop_at, 3 * T_MS);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_kill(a), 0);
  CU_ASSERT(accepted(&p) >= stop_at);
  size_t nacc;
  uint8_t(*acc)[16] = accepted_ids(&p, &nacc);
  int64_t queued =
      tuser_q(a, "SELECT count(*) FROM outbox WHERE envelope IS NOT NULL");
  int64_t at_b = tuser_q(b, "SELECT count(*) FROM inbox");
  fprintf(stderr,
          "%s: killed relay-a after %zu accepted of %zu sent; outbox"
          " %lld, relay-b inbox %lld\n",
          name, nacc, p.sent, (long long)queued, (long long)at_b);
  /* Committed before acknowledged: all of it is in one database or the
   * other even before relay-a runs again. */
  CU_ASSERT(queued + at_b >= (int64_t)nacc);
  tclient_close(ca);

  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(a), 0);
  tclient_t *cb = tuser_login(&bob);
  drain(cb, nacc, 1500);
  size_t nrx;
  const tclient_rx_t *rx = tclient_rx(cb, &nrx);
  verdict_t v = check(rx, nrx, (const uint8_t(*)[16])p.ids, p.sent,
                      (const uint8_t(*)[16])acc, nacc);
  report(name, p.sent, nacc, v);
  CU_ASSERT_EQUAL(v.missing, 0);
  CU_ASSERT_EQUAL(v.duplicates, 0);
  CU_ASSERT_EQUAL(v.unknown, 0);
  /* Everything delivered and acknowledged: no ciphertext left anywhere,
   * once the acknowledgements in flight have committed. */
  CU_ASSERT_EQUAL(
      tuser_q_until(a, cb,
                    "SELECT count(*) FROM outbox WHERE envelope IS NOT NULL", 0,
                    T_MS),
      0);
  CU_ASSERT_EQUAL(
      tuser_q_until(b, cb,
                    "SELECT count(*) FROM inbox WHERE envelope IS NOT NULL", 0,
                    T_MS),
      0);
  CU_ASSERT_EQUAL(
      tuser_q_until(b, cb,
                    "SELECT stored_bytes FROM accounts WHERE name = 'bob'", 0,
                    T_MS),
      0);

  tclient_close(cb);
  free(acc);
  free(p.ids);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static void test_kill_sender_after_last_ack(void) {
  kill_sender("kill_sender_last", N_KILL);
}

static void test_kill_sender_mid_stream(void) {
  kill_sender("kill_sender_mid", N_KILL / 2);
}

/*
 * The receiving relay is SIGKILLed while the link forwards to it: alice
 * keeps sending (relay-a queues), relay-b comes back, the link re-sends
 * what was in flight and relay-b drops what it already committed. bob
 * gets every accepted message exactly once.
 */
static void test_kill_receiver_mid_forward(void) {
  fixture_t *fx = tuser_federation("kill_receiver", 2, 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tclient_close(tuser_login(&bob));
  tclient_t *ca = tuser_login(&alice);

  pump_t p;
  pump_init(&p, ca, N_KILL, 64, bob.id, NULL);
  /* Kill relay-b once it holds some of the messages but not all. */
  int64_t at_b = 0;
  for (int i = 0; i < 3000 && tclient_up(ca); i++) {
    pump_step(&p, 16, 2);
    if (i % 5 == 0 && (at_b = tuser_q(b, "SELECT count(*) FROM inbox")) >= 30)
      break;
  }
  CU_ASSERT_EQUAL_FATAL(fixture_relay_kill(b), 0);
  fprintf(stderr,
          "kill_receiver: killed relay-b holding %lld, %zu sent,"
          " %zu accepted\n",
          (long long)at_b, p.sent, accepted(&p));
  CU_ASSERT(at_b > 0);
  pump_until(&p, N_KILL, 3 * T_MS); /* the rest, while relay-b is down */
  CU_ASSERT_EQUAL(accepted(&p), N_KILL);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(b), 0);

  size_t nacc;
  uint8_t(*acc)[16] = accepted_ids(&p, &nacc);
  tclient_t *cb = tuser_login(&bob);
  drain(cb, nacc, 1500);
  size_t nrx;
  const tclient_rx_t *rx = tclient_rx(cb, &nrx);
  verdict_t v = check(rx, nrx, (const uint8_t(*)[16])p.ids, p.sent,
                      (const uint8_t(*)[16])acc, nacc);
  report("kill_receiver", p.sent, nacc, v);
  CU_ASSERT_EQUAL(v.missing, 0);
  CU_ASSERT_EQUAL(v.duplicates, 0);
  CU_ASSERT_EQUAL(v.unknown, 0);
  CU_ASSERT_EQUAL(
      tuser_q_until(a, cb,
                    "SELECT count(*) FROM outbox WHERE envelope IS NOT NULL", 0,
                    T_MS),
      0);
  CU_ASSERT_EQUAL(
      tuser_q_until(b, cb,
                    "SELECT count(*) FROM inbox WHERE envelope IS NOT NULL", 0,
                    T_MS),
      0);

  tclient_close(ca);
  tclient_close(cb);
  free(acc);
  free(p.ids);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* --- PostgreSQL restarted under load ----------------------------------------
 */

static int log_has(fixture_relay_t *r, const char *needle) {
  FILE *f = fopen(fixture_relay_log_path(r), "r");
  if (!f)
    return 0;
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

/*
 * alice on relay-a sends continuously, alternately to bob on relay-b
 * (outbox and link) and to dave on relay-a (local inbox), while the
 * PostgreSQL server of both relays is restarted (fast shutdown: every
 * connection ends, commits in flight included). Submits answered Accepted
 * are delivered exactly once. Those answered "try later" (EAGAIN) may or
 * may not have been stored (a COMMIT whose answer was lost, relay/db.h
 * "THE SUBTLE CASE"), so alice sends them again, as a client must; then
 * every id is delivered exactly once. The relays find PostgreSQL again by
 * themselves and say so in their logs.
 */
static void test_pg_restart_under_load(void) {
  fixture_t *fx = tuser_federation("pg_restart", 2, 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob, dave;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tuser_make(&dave, a, "dave");
  tclient_close(tuser_login(&bob));
  tclient_close(tuser_login(&dave));
  tclient_t *ca = tuser_login(&alice);

  enum { CAP = 6000 };
  pump_t p;
  pump_init(&p, ca, CAP, 32, bob.id, dave.id);
  pump_until(&p, 100, T_MS); /* load is flowing */
  size_t before = accepted(&p);

  /* Restart the server from a child, so this process keeps sending while
   * PostgreSQL goes down and comes back. The child only runs the restart
   * command and leaves with _exit: the fixture stays this process's. */
  fflush(NULL);
  pid_t child = fork();
  CU_ASSERT_FATAL(child >= 0);
  if (child == 0)
    _exit(fixture_pg_restart() == 0 ? 0 : 1);
  int ws = 0, done = 0;
  size_t errs_during = 0;
  for (int t = 0; t < 60000 && !done && tclient_up(ca); t += 2) {
    pump_step(&p, 2, 2);
    done = waitpid(child, &ws, WNOHANG) == child;
  }
  if (!done) {
    kill(child, SIGKILL);
    (void)waitpid(child, &ws, 0);
  }
  CU_ASSERT_FATAL(done && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  size_t ok_at_up, err_at_up;
  tclient_answers(ca, &ok_at_up, &err_at_up);
  errs_during = err_at_up;
  const char *reason = "";
  int last = tclient_last_error(ca, &reason);
  fprintf(stderr,
          "pg_restart: during the restart %zu sent, %zu accepted,"
          " %zu errors (last %s: %s)\n",
          p.sent, ok_at_up, err_at_up, synod_err_name(last), reason);
  CU_ASSERT(tclient_up(ca));
  CU_ASSERT(errs_during == 0 || last == SYNOD_EAGAIN);

  /* The relay resumes by itself: new submits are accepted again. */
  size_t resumed_from = accepted(&p);
  for (int t = 0; t < 20000 && accepted(&p) < resumed_from + 200 &&
                  tclient_up(ca) && p.sent < p.cap;
       t += 2)
    pump_step(&p, 4, 2);
  CU_ASSERT(accepted(&p) >= resumed_from + 200);
  pump_until(&p, (size_t)-1, T_MS); /* every submit answered */
  p.cap = p.sent;
  size_t ok, err;
  tclient_answers(ca, &ok, &err);
  CU_ASSERT_EQUAL(ok + err, p.sent);
  CU_ASSERT(log_has(a, "database down"));
  CU_ASSERT(log_has(a, "database up"));
  CU_ASSERT(log_has(b, "database down"));
  CU_ASSERT(log_has(b, "database up"));

  size_t nacc;
  uint8_t(*acc)[16] = accepted_ids(&p, &nacc);
  CU_ASSERT_EQUAL(nacc, ok);

  /* bob and dave drain: every accepted id, once. */
  tclient_t *cb = tuser_login(&bob), *cd = tuser_login(&dave);
  size_t want_b = 0, want_d = 0;
  {
    /* Accepted ids per recipient: even positions went to bob. */
    uint8_t(*sa)[16] = calloc(nacc + 1, 16);
    memcpy(sa, acc, 16 * nacc);
    id_sort(sa, nacc);
    for (size_t i = 0; i < p.sent; i++)
      if (id_in((const uint8_t(*)[16])sa, nacc, p.ids[i]))
        *(i % 2 ? &want_d : &want_b) += 1;
    free(sa);
  }
  drain(cb, want_b, 500);
  drain(cd, want_d, 500);
  size_t nb, nd;
  const tclient_rx_t *rb = tclient_rx(cb, &nb), *rd = tclient_rx(cd, &nd);
  tclient_rx_t *all = calloc(nb + nd + 1, sizeof *all);
  CU_ASSERT_FATAL(all != NULL);
  memcpy(all, rb, nb * sizeof *all);
  memcpy(all + nb, rd, nd * sizeof *all);
  verdict_t v = check(all, nb + nd, (const uint8_t(*)[16])p.ids, p.sent,
                      (const uint8_t(*)[16])acc, nacc);
  report("pg_restart (first pass)", p.sent, nacc, v);
  fprintf(stderr, "pg_restart: accepted before the restart %zu; errors %zu\n",
          before, err);
  CU_ASSERT_EQUAL(v.missing, 0);
  CU_ASSERT_EQUAL(v.duplicates, 0);
  CU_ASSERT_EQUAL(v.unknown, 0);
  /* Stored though answered "try later": only a commit cut off by the
   * shutdown can do that, at most one batch per relay. */
  CU_ASSERT(v.unacked_seen <= 256);

  /* alice sends every id not answered Accepted again, as a client does
   * after "try later": now each is stored, or a duplicate if its first
   * attempt had committed after all. */
  tclient_t *ca2 = tuser_login(&alice);
  size_t resent = 0, resent_dup = 0;
  {
    uint8_t(*sa)[16] = calloc(nacc + 1, 16);
    memcpy(sa, acc, 16 * nacc);
    id_sort(sa, nacc);
    for (size_t i = 0; i < p.sent; i++) {
      if (id_in((const uint8_t(*)[16])sa, nacc, p.ids[i]))
        continue;
      int st = -1;
      int rc = tclient_submit(ca2, p.ids[i], i % 2 ? dave.id : bob.id, 128, 0,
                              &st, T_MS);
      CU_ASSERT_EQUAL(rc, 0);
      resent++;
      if (rc == 0 && st == SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE)
        resent_dup++;
    }
    free(sa);
  }
  drain(cb, want_b + (resent + 1) / 2, 1000);
  drain(cd, want_d + resent / 2, 200);
  rb = tclient_rx(cb, &nb);
  rd = tclient_rx(cd, &nd);
  free(all);
  all = calloc(nb + nd + 1, sizeof *all);
  CU_ASSERT_FATAL(all != NULL);
  memcpy(all, rb, nb * sizeof *all);
  memcpy(all + nb, rd, nd * sizeof *all);
  v = check(all, nb + nd, (const uint8_t(*)[16])p.ids, p.sent,
            (const uint8_t(*)[16])p.ids, p.sent);
  fprintf(stderr, "pg_restart: re-sent %zu, of which %zu duplicates\n", resent,
          resent_dup);
  report("pg_restart (after re-sending)", p.sent, p.sent, v);
  CU_ASSERT_EQUAL(v.missing, 0);
  CU_ASSERT_EQUAL(v.duplicates, 0);
  CU_ASSERT_EQUAL(v.unknown, 0);
  CU_ASSERT_EQUAL(v.delivered, p.sent);

  free(all);
  free(acc);
  free(p.ids);
  tclient_close(ca);
  tclient_close(ca2);
  tclient_close(cb);
  tclient_close(cd);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

/* --- the same id twice
 * -------------------------------------------------------- */

/*
 * The same message id sent twice: back to back (in one group commit), once
 * more after the sending relay restarted, and after a SIGKILL; to a remote
 * and to a local recipient. Each is stored once and delivered once.
 */
static void test_same_id_twice(void) {
  fixture_t *fx = tuser_federation("same_id", 2, 1);
  fixture_relay_t *a = fixture_relay_at(fx, 0), *b = fixture_relay_at(fx, 1);
  tuser_t alice, bob, dave;
  tuser_make(&alice, a, "alice");
  tuser_make(&bob, b, "bob");
  tuser_make(&dave, a, "dave");
  tclient_close(tuser_login(&bob));
  tclient_close(tuser_login(&dave));
  tclient_t *ca = tuser_login(&alice);

  enum { K = 20 };
  uint8_t ids[K][16];
  const char *to[2] = {bob.id, dave.id};
  /* Pipelined pairs: the copy shares a batch with the original. */
  for (int i = 0; i < K; i++) {
    tclient_random_id(ids[i]);
    CU_ASSERT_EQUAL(tclient_submit_async(ca, ids[i], to[i % 2], 64, 0), 0);
    CU_ASSERT_EQUAL(tclient_submit_async(ca, ids[i], to[i % 2], 64, 0), 0);
  }
  for (int t = 0; t < 100; t++) {
    size_t ok, err;
    tclient_answers(ca, &ok, &err);
    if (ok + err == 2 * K)
      break;
    tclient_run_for(ca, 50);
  }
  int st[2 * K];
  CU_ASSERT_EQUAL(tclient_accepted(ca, NULL, st, 2 * K), 2 * K);
  int stored = 0, dup = 0;
  for (int i = 0; i < 2 * K; i++) {
    stored += st[i] == SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED;
    dup += st[i] == SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE;
  }
  CU_ASSERT_EQUAL(stored, K);
  CU_ASSERT_EQUAL(dup, K);
  tclient_close(ca);

  /* Again after a clean restart and after a SIGKILL of relay-a: before
   * delivery (rows with ciphertext). */
  CU_ASSERT_EQUAL_FATAL(fixture_relay_restart(a), 0);
  ca = tuser_login(&alice);
  for (int i = 0; i < K; i++) {
    int acc = -1;
    CU_ASSERT_EQUAL(tclient_submit(ca, ids[i], to[i % 2], 64, 0, &acc, T_MS),
                    0);
    CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE);
  }
  tclient_close(ca);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_kill(a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_start(a), 0);
  ca = tuser_login(&alice);
  for (int i = 0; i < K; i++) {
    int acc = -1;
    CU_ASSERT_EQUAL(tclient_submit(ca, ids[i], to[i % 2], 64, 0, &acc, T_MS),
                    0);
    CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE);
  }

  tclient_t *cb = tuser_login(&bob), *cd = tuser_login(&dave);
  drain(cb, K / 2, 500);
  drain(cd, K / 2, 500);
  size_t nb, nd;
  const tclient_rx_t *rb = tclient_rx(cb, &nb), *rd = tclient_rx(cd, &nd);
  CU_ASSERT_EQUAL(nb, K / 2);
  CU_ASSERT_EQUAL(nd, K / 2);
  tclient_rx_t all[2 * K + 2];
  size_t n = 0;
  for (size_t i = 0; i < nb && n < 2 * K; i++)
    all[n++] = rb[i];
  for (size_t i = 0; i < nd && n < 2 * K; i++)
    all[n++] = rd[i];
  verdict_t v =
      check(all, n, (const uint8_t(*)[16])ids, K, (const uint8_t(*)[16])ids, K);
  report("same_id", 2 * K, K, v);
  CU_ASSERT_EQUAL(v.missing, 0);
  CU_ASSERT_EQUAL(v.duplicates, 0);

  /* And once more after delivery, after a restart: the tombstones on
   * both relays still know the ids. */
  tclient_run_for(cb, 300);
  tclient_close(ca);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_restart(a), 0);
  ca = tuser_login(&alice);
  for (int i = 0; i < K; i++) {
    int acc = -1;
    CU_ASSERT_EQUAL(tclient_submit(ca, ids[i], to[i % 2], 64, 0, &acc, T_MS),
                    0);
    CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_DUPLICATE);
  }
  (void)tclient_wait_rx(cb, (size_t)-1, 1, 800);
  (void)tclient_wait_rx(cd, (size_t)-1, 1, 200);
  tclient_rx(cb, &nb);
  tclient_rx(cd, &nd);
  CU_ASSERT_EQUAL(nb, K / 2);
  CU_ASSERT_EQUAL(nd, K / 2);

  tclient_close(ca);
  tclient_close(cb);
  tclient_close(cd);
  CU_ASSERT_EQUAL(fixture_stop_all(fx), 0);
  fixture_free(fx);
}

static CU_TestInfo durability_tests[] = {
    {"kill_sender_after_last_ack", test_kill_sender_after_last_ack},
    {"kill_sender_mid_stream", test_kill_sender_mid_stream},
    {"kill_receiver_mid_forward", test_kill_receiver_mid_forward},
    {"pg_restart_under_load", test_pg_restart_under_load},
    {"same_id_twice", test_same_id_twice},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"durability", NULL, NULL, NULL, NULL, durability_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
