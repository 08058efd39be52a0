/*
 * synod-bench-lookup: the key directory's benchmark (issue 4), run by
 * tests/bench/lookup.sh against three relays of three operators on
 * loopback.
 *
 *   1. Ed25519 sign and verify rates of this machine (synod_ed25519_sign
 *      and _verify in a loop, about --crypto-seconds each): the crypto
 *      limit the other figures are read against.
 *   2. Lookup throughput of ONE relay (the first --relay): -c connections,
 *      spread over -t client threads (one libuv loop each), each keeping
 *      -w LookupRequests for the registered user in flight for --warmup +
 *      --duration seconds. Every answer is verified (synod_lookup_verify
 *      with the relay's pinned key, freshness included) and must name the
 *      registered head; answers/s counts the verified answers that arrived
 *      in the measured window. Each answer costs the relay one Ed25519
 *      signature, hence the ratio to the sign rate.
 *   3. Quorum lookup latency: the same LookupRequest to all three relays in
 *      parallel, then synod_quorum_decide (k = 2, no pin: every signature,
 *      the head link and its countersignature verified), timed from the
 *      first send to the decision; over pre-established connections, and
 *      again opening the three TLS sessions (visitor handshakes) each time.
 *
 * Before that it registers the user (README 7: publish at the home relay,
 * take its countersignature, publish it at the others) and waits until
 * every relay answers with that head. The clients are visitors
 * (lookup-bench@bench-client), as a client of another relay would be.
 *
 * Exit status: 0 when every answer verified and every quorum accepted, 1
 * otherwise, 2 on a usage or setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "synod/announce.h"
#include "synod/conn.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"
#include "synod/quorum.h"
#include "synod/statement.h"
#include "synod/tls.h"
#include "synod/wire.h"

#define NRELAYS    3
#define MAX_WINDOW 4096
#define VISITOR    "lookup-bench@bench-client"
#define SETUP_MS   20000
#define ANSWER_MS  5000

/* --- clock, statistics ---------------------------------------------------- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_s(void) {
  return (uint64_t)time(NULL);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Quantile q of v[0..n) in ms (v sorted in place); 0 when empty. */
static double pct_ms(uint64_t *v, size_t n, double q) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof *v, cmp_u64);
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return (double)v[i] / 1e6;
}

typedef struct lat {
  uint64_t *v;
  size_t n, cap;
} lat_t;

static void lat_add(lat_t *l, uint64_t ns) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 4096;
    uint64_t *v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = ns;
}

/* --- configuration -------------------------------------------------------- */

typedef struct relay_ep {
  char name[SYNOD_RELAY_NAME_MAX + 1];
  char operator_name[128];
  uint16_t port;
  uint8_t key[32];
} relay_ep_t;

static struct {
  relay_ep_t relay[NRELAYS];
  size_t nrelay;
  char user[SYNOD_USERID_MAX + 1]; /* local@relay-a */
  char code[256];
  unsigned conns, window, threads;
  double warmup, duration, crypto_s;
  unsigned quorum_iters, handshake_iters;
  uint64_t from_version;
  int verbose;
  /* processes whose CPU time per answer is reported (relay A, its
   * PostgreSQL backend) */
  struct {
    char name[32];
    long pid;
  } cpu[4];
  size_t ncpu;
  /* filled by registration */
  uint64_t version;
  uint8_t head[32];
  uint8_t visitor_pk[32], visitor_sk[32];
} G = {
    .conns = 8,
    .window = 32,
    .threads = 1,
    .warmup = 1,
    .duration = 5,
    .crypto_s = 1,
    .quorum_iters = 300,
    .handshake_iters = 50,
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  if (!G.verbose)
    return;
  va_list ap;
  va_start(ap, fmt);
  fputs("synod-bench-lookup: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* --- connections on a loop ------------------------------------------------ */

typedef struct loopctx {
  uv_loop_t loop;
  uv_timer_t timer;
  int timed_out;
  synod_tls_ctx_t *tls;
} loopctx_t;

typedef struct lconn lconn_t;
typedef void (*frame_fn)(lconn_t *c, Synod__V1__Frame *f);

struct lconn {
  loopctx_t *lc;
  synod_conn_t *conn;
  size_t relay; /* index in G.relay */
  int ready, closed, status;
  uint64_t next_rid;
  /* synchronous request */
  uint64_t wait_rid;
  Synod__V1__Frame *wait_answer;
  /* asynchronous use: the owner's handler (owns f) */
  frame_fn on_answer;
  void (*on_up)(lconn_t *c);
  void *owner;
};

static int loopctx_init(loopctx_t *lc) {
  memset(lc, 0, sizeof *lc);
  char reason[256] = "";
  if (uv_loop_init(&lc->loop) != 0)
    return -1;
  uv_timer_init(&lc->loop, &lc->timer);
  lc->timer.data = lc;
  if (synod_tls_ctx_new_client(&lc->tls, reason) != 0) {
    fprintf(stderr, "synod-bench-lookup: TLS: %s\n", reason);
    return -1;
  }
  return 0;
}

static void loopctx_done(loopctx_t *lc) {
  uv_close((uv_handle_t *)&lc->timer, NULL);
  uv_run(&lc->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&lc->loop) != 0)
    fprintf(stderr, "synod-bench-lookup: handles left open\n");
  synod_tls_ctx_free(lc->tls);
}

static void on_timer(uv_timer_t *t) {
  loopctx_t *lc = t->data;
  lc->timed_out = 1;
  uv_stop(&lc->loop);
}

/* Runs lc's loop until done(arg) or timeout_ms: 0 or SYNOD_ETIMEDOUT. */
static int run_until(loopctx_t *lc, int (*done)(void *), void *arg,
                     uint64_t timeout_ms) {
  lc->timed_out = 0;
  uv_update_time(&lc->loop);
  uv_timer_start(&lc->timer, on_timer, timeout_ms, 0);
  while (!done(arg) && !lc->timed_out)
    uv_run(&lc->loop, UV_RUN_ONCE);
  uv_timer_stop(&lc->timer);
  return done(arg) ? 0 : SYNOD_ETIMEDOUT;
}

static void c_on_ready(synod_conn_t *conn, int status) {
  (void)status;
  lconn_t *c = synod_conn_data(conn);
  c->ready = 1;
  if (c->on_up)
    c->on_up(c);
  uv_stop(synod_conn_loop(conn));
}

static void c_on_close(synod_conn_t *conn, int status) {
  lconn_t *c = synod_conn_data(conn);
  c->conn = NULL;
  c->ready = 0;
  c->closed = 1;
  c->status = status ? status : SYNOD_ECLOSED;
  uv_stop(synod_conn_loop(conn));
}

static void c_on_frame(synod_conn_t *conn, Synod__V1__Frame *f) {
  lconn_t *c = synod_conn_data(conn);
  if (c->wait_rid && f->request_id == c->wait_rid) {
    c->wait_answer = f;
    c->wait_rid = 0;
    uv_stop(synod_conn_loop(conn));
  } else if (c->on_answer) {
    c->on_answer(c, f);
  } else {
    synod_wire_free(f);
  }
}

/* Starts connecting c to relay ri as user (sk), enrolling with code when
 * not NULL. */
static int lconn_open(lconn_t *c, loopctx_t *lc, size_t ri, const char *user,
                      const uint8_t sk[32], const uint8_t pk_relay[32],
                      const char *code) {
  c->lc = lc;
  c->relay = ri;
  c->ready = c->closed = 0;
  c->status = 0;
  synod_conn_options_t opt;
  memset(&opt, 0, sizeof opt);
  opt.tls = lc->tls;
  opt.handshake.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  opt.handshake.name = user;
  opt.handshake.software = "synod-bench-lookup";
  opt.handshake.secret_key = sk;
  opt.handshake.expected_peer_key = pk_relay;
  opt.handshake.enrollment_code = code;
  opt.cb.on_ready = c_on_ready;
  opt.cb.on_frame = c_on_frame;
  opt.cb.on_close = c_on_close;
  opt.data = c;
  opt.handshake_timeout_ms = SETUP_MS;
  opt.high_water = 8u * 1024u * 1024u;
  return synod_conn_connect(&c->conn, &lc->loop, "127.0.0.1", G.relay[ri].port,
                            &opt);
}

static int up_or_closed(void *arg) {
  lconn_t *c = arg;
  return c->ready || c->closed;
}

static int is_closed(void *arg) {
  lconn_t *c = arg;
  return c->conn == NULL;
}

static void lconn_close(lconn_t *c) {
  if (c->conn) {
    synod_conn_close(c->conn, 0);
    (void)run_until(c->lc, is_closed, c, 5000);
  }
}

/* Connects synchronously: 0 or an error. */
static int lconn_connect(lconn_t *c, loopctx_t *lc, size_t ri, const char *user,
                         const uint8_t sk[32], const char *code) {
  memset(c, 0, sizeof *c);
  int rc = lconn_open(c, lc, ri, user, sk, G.relay[ri].key, code);
  if (rc == 0)
    rc = run_until(lc, up_or_closed, c, SETUP_MS);
  if (rc == 0 && !c->ready)
    rc = c->status ? c->status : SYNOD_ECLOSED;
  if (rc != 0)
    lconn_close(c);
  return rc;
}

static int answered(void *arg) {
  lconn_t *c = arg;
  return c->wait_answer != NULL || c->closed;
}

/* Sends f and waits for its answer: 0 with *ans (owned; Error frames are
 * returned as their code, the frame freed). */
static int lconn_request(lconn_t *c, Synod__V1__Frame *f,
                         Synod__V1__Frame **ans) {
  *ans = NULL;
  if (!c->conn)
    return SYNOD_ECLOSED;
  f->request_id = ++c->next_rid;
  c->wait_rid = f->request_id;
  c->wait_answer = NULL;
  int rc = synod_conn_send(c->conn, f);
  if (rc == 0)
    rc = run_until(c->lc, answered, c, ANSWER_MS);
  c->wait_rid = 0;
  if (rc == 0 && !c->wait_answer)
    rc = c->status ? c->status : SYNOD_ECLOSED;
  if (rc == 0 && c->wait_answer->body_case == SYNOD__V1__FRAME__BODY_ERROR) {
    rc = synod_err_from_wire(c->wait_answer->error->code);
    if (rc == 0) /* an Error frame saying "OK" is still no answer */
      rc = SYNOD_EPROTO;
    fprintf(stderr, "synod-bench-lookup: %s: error %s: %s\n",
            G.relay[c->relay].name, synod_err_name(rc),
            c->wait_answer->error->reason ? c->wait_answer->error->reason : "");
    synod_wire_free(c->wait_answer);
    c->wait_answer = NULL;
  }
  if (rc == 0)
    *ans = c->wait_answer;
  c->wait_answer = NULL;
  return rc;
}

static void lookup_frame(Synod__V1__Frame *f, Synod__V1__LookupRequest *q,
                         const char *user, uint64_t from) {
  synod__v1__frame__init(f);
  synod__v1__lookup_request__init(q);
  q->user_id = synod_wire_lend(user);
  q->from_version = from;
  f->body_case = SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST;
  f->lookup_request = q;
}

/* 0 when f is a LookupAnswer of relay ri, verified, naming the registered
 * head of the user. */
static int check_answer(const Synod__V1__Frame *f, size_t ri) {
  if (!f)
    return SYNOD_EPROTO;
  if (f->body_case != SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER)
    return f->body_case == SYNOD__V1__FRAME__BODY_ERROR
               ? synod_err_from_wire(f->error->code)
               : SYNOD_EPROTO;
  synod_lookup_info_t li;
  int rc =
      synod_lookup_verify(&li, f->lookup_answer, G.relay[ri].key, wall_s(), 0);
  if (rc != 0)
    return rc;
  if (strcmp(li.relay_name, G.relay[ri].name) != 0 ||
      strcmp(li.user_id, G.user) != 0)
    return SYNOD_EVERIFY;
  if (li.version != G.version || memcmp(li.head_hash, G.head, 32) != 0)
    return SYNOD_ECHAIN;
  return 0;
}

/* --- 1. Ed25519 rates ----------------------------------------------------- */

static void crypto_rates(double *sign_s, double *verify_s) {
  uint8_t pk[32], sk[32], sig[64], msg[128];
  if (synod_ed25519_keygen(pk, sk) != 0 || synod_random(msg, sizeof msg) != 0)
    abort();
  uint64_t limit = (uint64_t)(G.crypto_s * 1e9);
  uint64_t t0 = now_ns(), t = t0, n = 0;
  while (t - t0 < limit) {
    for (int k = 0; k < 64; k++, n++) {
      msg[0] = (uint8_t)n;
      synod_ed25519_sign(sig, msg, sizeof msg, sk);
    }
    t = now_ns();
  }
  *sign_s = (double)n / ((double)(t - t0) / 1e9);
  t0 = t = now_ns();
  n = 0;
  uint64_t bad = 0;
  while (t - t0 < limit) {
    for (int k = 0; k < 64; k++, n++)
      bad += synod_ed25519_verify(sig, msg, sizeof msg, pk) != 0;
    t = now_ns();
  }
  if (bad)
    fprintf(stderr, "synod-bench-lookup: %" PRIu64 " verifications failed\n",
            bad);
  *verify_s = (double)n / ((double)(t - t0) / 1e9);
}

/* --- registration --------------------------------------------------------- */

static int publish(lconn_t *c, const synod_announcement_t *a,
                   Synod__V1__Countersignature **cs, size_t ncs,
                   Synod__V1__Frame **res) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Publish p = SYNOD__V1__PUBLISH__INIT;
  Synod__V1__Announcement w;
  synod_announcement_lend(&w, a);
  f.body_case = SYNOD__V1__FRAME__BODY_PUBLISH;
  f.publish = &p;
  p.announcement = &w;
  p.countersignatures = cs;
  p.n_countersignatures = ncs;
  int rc = lconn_request(c, &f, res);
  if (rc == 0 && (*res)->body_case != SYNOD__V1__FRAME__BODY_PUBLISH_RESULT) {
    synod_wire_free(*res);
    *res = NULL;
    rc = SYNOD_EPROTO;
  }
  return rc;
}

/* Registers G.user (publish at home, countersignature, publish at the
 * others) and waits until every relay answers with its head. */
static int registration(loopctx_t *lc) {
  uint8_t pk[32], sk[32];
  if (synod_ed25519_keygen(pk, sk) != 0)
    return SYNOD_ECRYPTO;
  synod_device_t d = {.device_id = 1, .name = "bench"};
  if (synod_x25519_keygen(d.x25519_key, (uint8_t[32]){0}) != 0)
    return SYNOD_ECRYPTO;
  synod_announce_params_t p = {
      .user_id = G.user,
      .devices = &d,
      .ndevices = 1,
      .version = 1,
      .time = wall_s(),
  };
  synod_announcement_t a;
  int rc = synod_announce_sign(&a, &p, sk, NULL);
  if (rc != 0)
    return rc;
  (void)synod_announce_hash(G.head, a.body, a.body_len);
  G.version = 1;

  lconn_t home;
  rc = lconn_connect(&home, lc, 0, G.user, sk, G.code);
  if (rc != 0) {
    fprintf(stderr, "synod-bench-lookup: login of %s at %s: %s\n", G.user,
            G.relay[0].name, synod_err_name(rc));
    synod_announcement_free(&a);
    return rc;
  }
  Synod__V1__Frame *res = NULL;
  rc = publish(&home, &a, NULL, 0, &res);
  lconn_close(&home);
  if (rc == 0 && !res->publish_result->countersignature)
    rc = SYNOD_EPROTO;
  if (rc != 0) {
    fprintf(stderr, "synod-bench-lookup: publish at home: %s\n",
            synod_err_name(rc));
    synod_wire_free(res);
    synod_announcement_free(&a);
    return rc;
  }
  say("published %s v1 at %s", G.user, G.relay[0].name);
  for (size_t ri = 1; ri < G.nrelay && rc == 0; ri++) {
    lconn_t v;
    rc = lconn_connect(&v, lc, ri, G.user, sk, NULL);
    Synod__V1__Frame *r2 = NULL;
    if (rc == 0)
      rc = publish(&v, &a, &res->publish_result->countersignature, 1, &r2);
    synod_wire_free(r2);
    lconn_close(&v);
    if (rc != 0)
      fprintf(stderr, "synod-bench-lookup: publish at %s: %s\n",
              G.relay[ri].name, synod_err_name(rc));
    else
      say("published at %s", G.relay[ri].name);
  }
  synod_wire_free(res);
  synod_announcement_free(&a);
  if (rc != 0)
    return rc;
  /* Every relay names the head. */
  for (size_t ri = 0; ri < G.nrelay; ri++) {
    lconn_t v;
    rc = lconn_connect(&v, lc, ri, VISITOR, G.visitor_sk, NULL);
    if (rc != 0) {
      fprintf(stderr, "synod-bench-lookup: visitor at %s: %s\n",
              G.relay[ri].name, synod_err_name(rc));
      return rc;
    }
    int ok = 0;
    for (int k = 0; k < 200 && !ok; k++) {
      Synod__V1__Frame f, *ans = NULL;
      Synod__V1__LookupRequest q;
      lookup_frame(&f, &q, G.user, 0);
      rc = lconn_request(&v, &f, &ans);
      if (rc == 0)
        ok = check_answer(ans, ri) == 0;
      synod_wire_free(ans);
      if (!ok)
        uv_sleep(50);
    }
    lconn_close(&v);
    if (!ok) {
      fprintf(stderr, "synod-bench-lookup: %s never named the head\n",
              G.relay[ri].name);
      return SYNOD_ETIMEDOUT;
    }
  }
  say("every relay names %s v1", G.user);
  return 0;
}

/* CPU seconds (user + system) of process pid, -1 when unreadable. */
static double proc_cpu_s(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command, which ends at the last ')': state is field
   * 3, utime 14, stime 15. */
  char *p = strrchr(buf, ')');
  if (!p)
    return -1;
  unsigned long ut = 0, st = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
             &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_until(uint64_t t) {
  for (uint64_t n = now_ns(); n < t; n = now_ns()) {
    struct timespec ts = {.tv_sec = (time_t)((t - n) / 1000000000u),
                          .tv_nsec = (long)((t - n) % 1000000000u)};
    nanosleep(&ts, NULL);
  }
}

/* --- 2. lookup throughput ------------------------------------------------- */

typedef struct worker {
  pthread_t thread;
  loopctx_t lc;
  lconn_t *conns;
  size_t nconns;
  uint64_t *sent_at; /* per connection, window slots by request id */
  uv_timer_t stop_timer;
  int sending;
  size_t inflight;
  /* results */
  uint64_t answers, meas_answers, bad, errors, send_fail;
  lat_t lat;
  int setup_rc;
} worker_t;

static pthread_barrier_t g_barrier;
static uint64_t g_meas_t0, g_meas_t1, g_end;

static void load_send(worker_t *w, lconn_t *c) {
  size_t ci = (size_t)(c - w->conns);
  Synod__V1__Frame f;
  Synod__V1__LookupRequest q;
  lookup_frame(&f, &q, G.user, G.from_version);
  f.request_id = ++c->next_rid;
  w->sent_at[ci * MAX_WINDOW * 2 + f.request_id % (MAX_WINDOW * 2)] = now_ns();
  if (synod_conn_send(c->conn, &f) != 0) {
    w->send_fail++;
    return;
  }
  w->inflight++;
}

static void load_answer(lconn_t *c, Synod__V1__Frame *f) {
  worker_t *w = c->owner;
  uint64_t t = now_ns();
  size_t ci = (size_t)(c - w->conns);
  int rc = check_answer(f, c->relay);
  w->inflight--;
  w->answers++;
  if (rc == SYNOD_EAGAIN || (f->body_case == SYNOD__V1__FRAME__BODY_ERROR))
    w->errors++;
  else if (rc != 0)
    w->bad++;
  else if (t >= g_meas_t0 && t < g_meas_t1) {
    w->meas_answers++;
    lat_add(
        &w->lat,
        t - w->sent_at[ci * MAX_WINDOW * 2 + f->request_id % (MAX_WINDOW * 2)]);
  }
  if (rc != 0 && w->bad + w->errors <= 3)
    fprintf(stderr, "synod-bench-lookup: answer: %s\n", synod_err_name(rc));
  synod_wire_free(f);
  if (w->sending && c->conn)
    load_send(w, c);
  else if (!w->sending && w->inflight == 0)
    uv_stop(&w->lc.loop);
}

static void on_stop(uv_timer_t *t) {
  worker_t *w = t->data;
  w->sending = 0;
  if (w->inflight == 0)
    uv_stop(&w->lc.loop);
  else /* a bound on the drain */
    uv_timer_start(&w->lc.timer, on_timer, 10000, 0);
}

static int all_up(void *arg) {
  worker_t *w = arg;
  for (size_t i = 0; i < w->nconns; i++)
    if (!w->conns[i].ready && !w->conns[i].closed)
      return 0;
  return 1;
}

static int all_closed(void *arg) {
  worker_t *w = arg;
  for (size_t i = 0; i < w->nconns; i++)
    if (w->conns[i].conn)
      return 0;
  return 1;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  w->setup_rc = loopctx_init(&w->lc) != 0 ? SYNOD_ENOMEM : 0;
  for (size_t i = 0; i < w->nconns && w->setup_rc == 0; i++) {
    lconn_t *c = &w->conns[i];
    c->owner = w;
    c->on_answer = load_answer;
    w->setup_rc =
        lconn_open(c, &w->lc, 0, VISITOR, G.visitor_sk, G.relay[0].key, NULL);
  }
  if (w->setup_rc == 0)
    w->setup_rc = run_until(&w->lc, all_up, w, SETUP_MS);
  for (size_t i = 0; i < w->nconns && w->setup_rc == 0; i++)
    if (!w->conns[i].ready)
      w->setup_rc = w->conns[i].status ? w->conns[i].status : SYNOD_ECLOSED;
  pthread_barrier_wait(&g_barrier); /* connected */
  pthread_barrier_wait(&g_barrier); /* go (times set) */
  if (w->setup_rc == 0) {
    uv_timer_init(&w->lc.loop, &w->stop_timer);
    w->stop_timer.data = w;
    w->sending = 1;
    uint64_t now = now_ns();
    uv_update_time(&w->lc.loop);
    uv_timer_start(&w->stop_timer, on_stop,
                   g_end > now ? (g_end - now) / 1000000u : 0, 0);
    for (size_t i = 0; i < w->nconns; i++)
      for (unsigned k = 0; k < G.window; k++)
        load_send(w, &w->conns[i]);
    /* Until stopped and drained (or a drain deadline). */
    while (w->sending || w->inflight) {
      uv_run(&w->lc.loop, UV_RUN_DEFAULT);
      if (!w->sending && w->inflight && w->lc.timed_out) {
        fprintf(stderr, "synod-bench-lookup: %zu answers never came\n",
                w->inflight);
        w->bad += w->inflight;
        break;
      }
      if (!w->sending && w->inflight && all_closed(w))
        break;
    }
    uv_timer_stop(&w->lc.timer);
    uv_close((uv_handle_t *)&w->stop_timer, NULL);
  }
  for (size_t i = 0; i < w->nconns; i++)
    if (w->conns[i].conn)
      synod_conn_close(w->conns[i].conn, 0);
  (void)run_until(&w->lc, all_closed, w, 5000);
  loopctx_done(&w->lc);
  return NULL;
}

typedef struct tput {
  double cpu[4]; /* seconds in the measured window, G.cpu[i] */
  double self_cpu;
  double answers_s;
  uint64_t answers, bad, errors;
  double p50, p99;
} tput_t;

static int throughput(tput_t *out) {
  unsigned nt = G.threads < G.conns ? G.threads : G.conns;
  worker_t *w = calloc(nt, sizeof *w);
  lconn_t *conns = calloc(G.conns, sizeof *conns);
  if (!w || !conns) {
    free(w);
    free(conns);
    return SYNOD_ENOMEM;
  }
  size_t off = 0;
  for (unsigned t = 0; t < nt; t++) {
    w[t].nconns = G.conns / nt + (t < G.conns % nt ? 1 : 0);
    w[t].conns = conns + off;
    off += w[t].nconns;
    w[t].sent_at = calloc(w[t].nconns * MAX_WINDOW * 2, sizeof(uint64_t));
    if (!w[t].sent_at) {
      for (unsigned u = 0; u < t; u++)
        free(w[u].sent_at);
      free(w);
      free(conns);
      return SYNOD_ENOMEM;
    }
  }
  pthread_barrier_init(&g_barrier, NULL, nt + 1);
  for (unsigned t = 0; t < nt; t++)
    pthread_create(&w[t].thread, NULL, worker_main, &w[t]);
  pthread_barrier_wait(&g_barrier);
  uint64_t t0 = now_ns();
  g_meas_t0 = t0 + (uint64_t)(G.warmup * 1e9);
  g_meas_t1 = g_meas_t0 + (uint64_t)(G.duration * 1e9);
  g_end = g_meas_t1;
  say("%u connections up on %u threads; measuring", G.conns, nt);
  memset(out, 0, sizeof *out);
  pthread_barrier_wait(&g_barrier);
  /* CPU spent in the measured window (this thread only sleeps). */
  double c0[4] = {0}, s0;
  sleep_until(g_meas_t0);
  for (size_t i = 0; i < G.ncpu; i++)
    c0[i] = proc_cpu_s(G.cpu[i].pid);
  s0 = self_cpu_s();
  sleep_until(g_meas_t1);
  for (size_t i = 0; i < G.ncpu; i++)
    out->cpu[i] = proc_cpu_s(G.cpu[i].pid) - c0[i];
  out->self_cpu = self_cpu_s() - s0;
  int rc = 0;
  lat_t all = {0};
  uint64_t meas = 0;
  for (unsigned t = 0; t < nt; t++) {
    pthread_join(w[t].thread, NULL);
    if (w[t].setup_rc && !rc)
      rc = w[t].setup_rc;
    meas += w[t].meas_answers;
    out->answers += w[t].answers;
    out->bad += w[t].bad + w[t].send_fail;
    out->errors += w[t].errors;
    for (size_t i = 0; i < w[t].lat.n; i++)
      lat_add(&all, w[t].lat.v[i]);
    free(w[t].lat.v);
    free(w[t].sent_at);
  }
  pthread_barrier_destroy(&g_barrier);
  out->answers_s = (double)meas / G.duration;
  out->p50 = pct_ms(all.v, all.n, 0.50);
  out->p99 = pct_ms(all.v, all.n, 0.99);
  free(all.v);
  free(w);
  free(conns);
  if (rc)
    fprintf(stderr, "synod-bench-lookup: load connections: %s\n",
            synod_err_name(rc));
  return rc;
}

/* --- 3. quorum lookup latency --------------------------------------------- */

typedef struct quorum_round {
  lconn_t c[NRELAYS];
  Synod__V1__Frame *ans[NRELAYS];
  size_t got;
  uint64_t rid[NRELAYS];
} quorum_round_t;

static void q_answer(lconn_t *c, Synod__V1__Frame *f) {
  quorum_round_t *r = c->owner;
  size_t i = (size_t)(c - r->c);
  if (f->request_id != r->rid[i] || r->ans[i]) {
    synod_wire_free(f);
    return;
  }
  r->ans[i] = f;
  r->got++;
  uv_stop(&c->lc->loop);
}

static void q_send(lconn_t *c) {
  quorum_round_t *r = c->owner;
  size_t i = (size_t)(c - r->c);
  Synod__V1__Frame f;
  Synod__V1__LookupRequest q;
  lookup_frame(&f, &q, G.user, 0);
  f.request_id = r->rid[i] = ++c->next_rid;
  (void)synod_conn_send(c->conn, &f);
}

static int round_done(void *arg) {
  quorum_round_t *r = arg;
  size_t n = 0;
  for (size_t i = 0; i < G.nrelay; i++)
    n += r->ans[i] || r->c[i].closed;
  return n == G.nrelay;
}

/* Decides on r's answers: 0 when the registered head is accepted. */
static int decide(quorum_round_t *r) {
  synod_trusted_relay_t trust[NRELAYS];
  synod_quorum_answer_t qa[NRELAYS];
  for (size_t i = 0; i < G.nrelay; i++) {
    trust[i].name = G.relay[i].name;
    memcpy(trust[i].key, G.relay[i].key, 32);
    trust[i].operator_name = G.relay[i].operator_name;
    qa[i].relay_name = G.relay[i].name;
    qa[i].answer = r->ans[i] && r->ans[i]->body_case ==
                                    SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER
                       ? r->ans[i]->lookup_answer
                       : NULL;
  }
  synod_quorum_input_t in = {
      .user_id = G.user,
      .answers = qa,
      .nanswers = G.nrelay,
      .trust = trust,
      .ntrust = G.nrelay,
      .k = 2,
      .now = wall_s(),
  };
  synod_quorum_result_t res;
  int rc = synod_quorum_decide(&res, &in);
  if (rc == 0 &&
      (res.version != G.version || memcmp(res.hash, G.head, 32) != 0))
    rc = SYNOD_ECHAIN;
  if (rc != 0)
    fprintf(stderr, "synod-bench-lookup: quorum refused: %s\n", res.reason);
  synod_quorum_result_free(&res);
  return rc;
}

static void round_clear(quorum_round_t *r) {
  for (size_t i = 0; i < NRELAYS; i++) {
    synod_wire_free(r->ans[i]);
    r->ans[i] = NULL;
  }
  r->got = 0;
}

typedef struct qstats {
  double p50, p99, mean;
  double net_p50, decide_p50; /* answers in; synod_quorum_decide */
  unsigned ok, failed;
} qstats_t;

static void qstats_of(qstats_t *q, lat_t *l) {
  double sum = 0;
  for (size_t i = 0; i < l->n; i++)
    sum += (double)l->v[i];
  q->mean = l->n ? sum / (double)l->n / 1e6 : 0;
  q->p50 = pct_ms(l->v, l->n, 0.50);
  q->p99 = pct_ms(l->v, l->n, 0.99);
}

/* Over pre-established connections. */
static int quorum_connected(loopctx_t *lc, qstats_t *q) {
  quorum_round_t r;
  memset(&r, 0, sizeof r);
  memset(q, 0, sizeof *q);
  int rc = 0;
  for (size_t i = 0; i < G.nrelay && rc == 0; i++) {
    rc = lconn_connect(&r.c[i], lc, i, VISITOR, G.visitor_sk, NULL);
    r.c[i].owner = &r;
    r.c[i].on_answer = q_answer;
  }
  lat_t l = {0}, ln = {0}, ld = {0};
  for (unsigned it = 0; it < G.quorum_iters + 10 && rc == 0; it++) {
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < G.nrelay; i++)
      q_send(&r.c[i]);
    (void)run_until(lc, round_done, &r, ANSWER_MS);
    uint64_t tn = now_ns();
    int d = decide(&r);
    uint64_t t1 = now_ns();
    round_clear(&r);
    if (it < 10)
      continue; /* warm-up */
    if (d == 0) {
      q->ok++;
      lat_add(&l, t1 - t0);
      lat_add(&ln, tn - t0);
      lat_add(&ld, t1 - tn);
    } else {
      q->failed++;
    }
  }
  for (size_t i = 0; i < G.nrelay; i++)
    lconn_close(&r.c[i]);
  qstats_of(q, &l);
  q->net_p50 = pct_ms(ln.v, ln.n, 0.50);
  q->decide_p50 = pct_ms(ld.v, ld.n, 0.50);
  free(l.v);
  free(ln.v);
  free(ld.v);
  return rc;
}

/* Opening the three TLS sessions each time. */
static int quorum_handshakes(loopctx_t *lc, qstats_t *q) {
  memset(q, 0, sizeof *q);
  lat_t l = {0};
  for (unsigned it = 0; it < G.handshake_iters; it++) {
    quorum_round_t r;
    memset(&r, 0, sizeof r);
    uint64_t t0 = now_ns();
    int rc = 0;
    for (size_t i = 0; i < G.nrelay && rc == 0; i++) {
      r.c[i].owner = &r;
      r.c[i].on_answer = q_answer;
      r.c[i].on_up = q_send;
      rc = lconn_open(&r.c[i], lc, i, VISITOR, G.visitor_sk, G.relay[i].key,
                      NULL);
    }
    if (rc == 0)
      (void)run_until(lc, round_done, &r, SETUP_MS);
    int d = rc == 0 ? decide(&r) : rc;
    uint64_t t1 = now_ns();
    round_clear(&r);
    for (size_t i = 0; i < G.nrelay; i++)
      lconn_close(&r.c[i]);
    if (d == 0) {
      q->ok++;
      lat_add(&l, t1 - t0);
    } else {
      q->failed++;
    }
  }
  qstats_of(q, &l);
  free(l.v);
  return 0;
}

/* --- main ----------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: synod-bench-lookup --relay NAME:PORT:KEYLINE:OPERATOR (x3)\n"
          "                          --user LOCAL:CODE [options]\n"
          "  The first relay is the user's home and the one under load;\n"
          "  LOCAL is an account there, CODE its enrolment code.\n"
          "  -c N            load connections (8)\n"
          "  -w N            LookupRequests in flight per connection (32)\n"
          "  -t N            client threads for the load (1)\n"
          "  --warmup S      seconds before measuring (1)\n"
          "  --duration S    measured seconds (5)\n"
          "  --from V        from_version of the load's requests (0: the\n"
          "                  head link and its countersignature come along)\n"
          "  --quorum N      quorum lookups over open connections (300)\n"
          "  --handshakes N  quorum lookups opening connections (50)\n"
          "  --crypto S      seconds per Ed25519 rate (1)\n"
          "  --cpu-pid NAME:PID  report PID's CPU time per answer (x4)\n"
          "  -v              progress on stderr\n");
}

/* NAME:PORT:KEYLINE:OPERATOR; the key line holds a space, not a colon. */
static int parse_relay(char *arg, relay_ep_t *r) {
  char *f[4];
  for (int k = 0; k < 4; k++) {
    f[k] = arg;
    char *c = k < 3 ? strchr(arg, ':') : NULL;
    if (k < 3 && !c)
      return -1;
    if (c) {
      *c = '\0';
      arg = c + 1;
    }
  }
  char *end;
  long p = strtol(f[1], &end, 10);
  if (*end || p <= 0 || p > 65535 || strlen(f[0]) >= sizeof r->name ||
      strlen(f[3]) >= sizeof r->operator_name || !f[3][0])
    return -1;
  snprintf(r->name, sizeof r->name, "%s", f[0]);
  snprintf(r->operator_name, sizeof r->operator_name, "%s", f[3]);
  r->port = (uint16_t)p;
  return synod_keyfile_parse_public(r->key, SYNOD_KEY_ED25519, f[2],
                                    strlen(f[2]));
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || !*s || v < lo || v > hi)
    return -1;
  *out = (unsigned)v;
  return 0;
}

static int parse_secs(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (*end || !*s || !(v >= 0) || v > 3600)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  enum {
    O_RELAY = 256,
    O_USER,
    O_WARMUP,
    O_DUR,
    O_FROM,
    O_Q,
    O_H,
    O_CRYPTO,
    O_CPU
  };
  static const struct option lo[] = {
      {"relay", required_argument, NULL, O_RELAY},
      {"user", required_argument, NULL, O_USER},
      {"warmup", required_argument, NULL, O_WARMUP},
      {"duration", required_argument, NULL, O_DUR},
      {"from", required_argument, NULL, O_FROM},
      {"quorum", required_argument, NULL, O_Q},
      {"handshakes", required_argument, NULL, O_H},
      {"crypto", required_argument, NULL, O_CRYPTO},
      {"cpu-pid", required_argument, NULL, O_CPU},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int opt, bad = 0;
  unsigned u = 0;
  while ((opt = getopt_long(argc, argv, "c:w:t:vh", lo, NULL)) != -1) {
    switch (opt) {
    case 'c':
      bad |= parse_uint(optarg, 1, 1024, &G.conns);
      break;
    case 'w':
      bad |= parse_uint(optarg, 1, MAX_WINDOW, &G.window);
      break;
    case 't':
      bad |= parse_uint(optarg, 1, 64, &G.threads);
      break;
    case 'v':
      G.verbose = 1;
      break;
    case O_RELAY:
      if (G.nrelay == NRELAYS || parse_relay(optarg, &G.relay[G.nrelay++]) != 0)
        bad = 1;
      break;
    case O_USER: {
      char *colon = strchr(optarg, ':');
      if (!colon || colon == optarg || strlen(colon + 1) >= sizeof G.code) {
        bad = 1;
        break;
      }
      *colon = '\0';
      snprintf(G.code, sizeof G.code, "%s", colon + 1);
      snprintf(G.user, sizeof G.user, "%.60s@%s", optarg, "");
      break;
    }
    case O_WARMUP:
      bad |= parse_secs(optarg, &G.warmup);
      break;
    case O_DUR:
      bad |= parse_secs(optarg, &G.duration);
      break;
    case O_FROM:
      bad |= parse_uint(optarg, 0, 1000000, &u);
      G.from_version = u;
      break;
    case O_Q:
      bad |= parse_uint(optarg, 0, 1000000, &G.quorum_iters);
      break;
    case O_H:
      bad |= parse_uint(optarg, 0, 1000000, &G.handshake_iters);
      break;
    case O_CRYPTO:
      bad |= parse_secs(optarg, &G.crypto_s);
      break;
    case O_CPU: {
      char *colon = strrchr(optarg, ':');
      char *end;
      long pid = colon ? strtol(colon + 1, &end, 10) : 0;
      if (!colon || *end || pid <= 0 || G.ncpu == 4 ||
          (size_t)(colon - optarg) >= sizeof G.cpu[0].name) {
        bad = 1;
        break;
      }
      *colon = '\0';
      snprintf(G.cpu[G.ncpu].name, sizeof G.cpu[0].name, "%s", optarg);
      G.cpu[G.ncpu++].pid = pid;
      break;
    }
    default:
      bad = 1;
    }
  }
  if (bad || optind != argc || G.nrelay != NRELAYS || !G.user[0] ||
      G.duration <= 0) {
    usage();
    return 2;
  }
  /* The user's home is the first relay. */
  size_t ul = strlen(G.user);
  snprintf(G.user + ul, sizeof G.user - ul, "%s", G.relay[0].name);
  if (synod_ed25519_keygen(G.visitor_pk, G.visitor_sk) != 0)
    return 2;

  double sign_s, verify_s;
  crypto_rates(&sign_s, &verify_s);
  printf("ed25519: sign/s=%.0f verify/s=%.0f (one thread)\n", sign_s, verify_s);
  fflush(stdout);

  loopctx_t lc;
  if (loopctx_init(&lc) != 0)
    return 2;
  if (registration(&lc) != 0) {
    loopctx_done(&lc);
    return 2;
  }

  tput_t tp;
  int rc = throughput(&tp);
  if (rc != 0) {
    loopctx_done(&lc);
    return 2;
  }
  printf("lookup: answers/s=%.0f (%.1f%% of sign rate, %.1f%% of verify rate)"
         " connections=%u window=%u threads=%u from_version=%" PRIu64
         " latency p50=%.2f ms p99=%.2f ms\n",
         tp.answers_s, 100.0 * tp.answers_s / sign_s,
         100.0 * tp.answers_s / verify_s, G.conns, G.window, G.threads,
         G.from_version, tp.p50, tp.p99);
  /* CPU per answer: what each process would sustain on a core of its own. */
  uint64_t meas = (uint64_t)(tp.answers_s * G.duration + 0.5);
  if (meas) {
    printf("lookup: cpu per answer:");
    for (size_t i = 0; i < G.ncpu; i++)
      printf(" %s=%.0f us (%.0f%% of a core)", G.cpu[i].name,
             tp.cpu[i] / (double)meas * 1e6, 100.0 * tp.cpu[i] / G.duration);
    printf(" client=%.0f us (%.0f%% of a core; verify alone %.0f us)\n",
           tp.self_cpu / (double)meas * 1e6, 100.0 * tp.self_cpu / G.duration,
           1e6 / verify_s);
  }
  printf("lookup: answers=%" PRIu64 " verified-bad=%" PRIu64 " errors=%" PRIu64
         "\n",
         tp.answers, tp.bad, tp.errors);
  fflush(stdout);

  qstats_t qc, qh;
  rc = quorum_connected(&lc, &qc);
  if (rc == 0)
    rc = quorum_handshakes(&lc, &qh);
  loopctx_done(&lc);
  if (rc != 0) {
    fprintf(stderr, "synod-bench-lookup: quorum phase: %s\n",
            synod_err_name(rc));
    return 2;
  }
  printf("quorum lookup: p50=%.2f ms p99=%.2f ms (connected, n=%u),"
         " p50=%.2f ms p99=%.2f ms (with TLS handshakes, n=%u)\n",
         qc.p50, qc.p99, qc.ok, qh.p50, qh.p99, qh.ok);
  printf("quorum lookup: connected p50 split: answers in %.2f ms,"
         " synod_quorum_decide %.2f ms\n",
         qc.net_p50, qc.decide_p50);
  printf("quorum lookup: accepted=%u refused=%u (k=2 of %zu operators)\n",
         qc.ok + qh.ok, qc.failed + qh.failed, G.nrelay);
  int fail = tp.bad || tp.errors || qc.failed || qh.failed;
  return fail ? 1 : 0;
}
