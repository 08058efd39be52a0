/*
 * Integration suite relay.abuse: hostile load on a real relay and a real
 * PostgreSQL (issue 6, part 3). relay.refusals checks each refusal once;
 * here many attackers push at the relay's limits at once, and each case
 * checks three things:
 *
 *   - the attack meets its limit: a typed Error, or a closed connection
 *     where no TLS is up to carry one;
 *   - an honest session on the same relay keeps working: its Ping round
 *     trip is measured before and during the attack, and the 90th
 *     percentile during must stay under max(10 x before, 500 ms) -- a
 *     bound, not a benchmark -- and it still delivers a message after;
 *   - the relay's memory stays under its configured ceiling: VmRSS (from
 *     /proc/PID/status) is sampled during the attack, and its growth over
 *     the baseline taken after start-up must stay under max_buffered_bytes.
 *
 * Attackers run on a thread of their own (raw sockets, the sans-I/O TLS
 * engine and handshake machine, nothing shared with the main thread but
 * counters) while the main thread measures. Every case prints its figures
 * on stdout as one "abuse:" line.
 *
 * ASan keeps freed memory in a quarantine (256 MiB by default), which
 * would count as resident: main() caps it at 4 MiB for the relays it
 * starts, unless ASAN_OPTIONS already says otherwise.
 *
 * SYNOD_ABUSE_SECONDS (default 30) bounds the million-message case.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "harness.h"
#include "rawtls.h"
#include "synod/frame.h"
#include "synod/handshake.h"
#include "synod/tls.h"
#include "synod/wire.h"
#include "tclient.h"
#include "tusers.h"

#define T_MS 10000
/* The relay's memory ceiling in these tests. */
#define CEILING_BYTES (32u * 1024u * 1024u)
#define CEILING_TEXT  "32MiB"
#define MAX_SAMPLES   4096

static double now_msf(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

/* Occurrences of needle in relay r's log. */
static int log_count(fixture_relay_t *r, const char *needle) {
  FILE *f = fopen(fixture_relay_log_path(r), "r");
  if (!f)
    return -1;
  int n = 0;
  char line[4096];
  while (fgets(line, sizeof line, f))
    if (strstr(line, needle))
      n++;
  fclose(f);
  return n;
}

/* --- raw attackers -----------------------------------------------------------
 * A socket, the TLS engine pumped by hand and, for an authenticated
 * session, the handshake machine. Used from the attack thread only; no
 * CUnit assertion in here (they are not thread-safe): failures are
 * returned and counted. */

/*
 * Reads until the relay closes, within ms: 0 when it did, having seen a
 * connection Error (*code, 0 if none) on the way; SYNOD_ETIMEDOUT.
 */
static int raw_until_closed(raw_t *r, int *code, int ms) {
  int64_t until = raw_now_ms() + ms;
  *code = 0;
  for (;;) {
    int left = (int)(until - raw_now_ms());
    if (!r->tls) {
      int rc = raw_recv(r, until);
      if (rc == 0)
        continue;
      return rc == SYNOD_ECLOSED ? 0 : rc;
    }
    Synod__V1__Frame *f = NULL;
    int rc = raw_frame(r, &f, left > 0 ? left : 0);
    if (rc == 0) {
      if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR && f->request_id == 0)
        *code = synod_err_from_wire(f->error->code);
      synod_wire_free(f);
      continue;
    }
    if (rc == SYNOD_ETIMEDOUT)
      return rc;
    return 0; /* end of stream, reset, or TLS failing after close_notify */
  }
}

/* An authenticated client session as user u (enrolling with its code). */
static int raw_session(raw_t *r, const tuser_t *u, int rcvbuf) {
  fixture_relay_t *relay = u->home;
  int rc = raw_tls(r, fixture_relay_port(relay), rcvbuf);
  if (rc != 0)
    return rc;
  synod_handshake_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.role = SYNOD__V1__ROLE__ROLE_CLIENT;
  cfg.name = u->id;
  cfg.software = "test_abuse";
  cfg.secret_key = u->sk;
  cfg.expected_peer_key = fixture_relay_public_key(relay);
  cfg.enrollment_code = u->code[0] ? u->code : NULL;
  uint8_t exporter[SYNOD_TLS_EXPORTER_BYTES];
  rc = synod_handshake_new(&r->hs, &cfg);
  if (rc == 0)
    rc = synod_tls_exporter(r->tls, exporter);
  if (rc == 0)
    rc = synod_handshake_start(r->hs, exporter);
  int64_t until = raw_now_ms() + T_MS;
  while (rc == 0) {
    rc = raw_hs_flush(r);
    if (rc != 0 || synod_handshake_state(r->hs) == SYNOD_HS_READY)
      break;
    Synod__V1__Frame *f;
    int left = (int)(until - raw_now_ms());
    rc = raw_frame(r, &f, left > 0 ? left : 0);
    if (rc != 0)
      break;
    int ev = synod_handshake_recv(r->hs, f);
    synod_wire_free(f);
    if (ev < 0)
      rc = ev;
  }
  return rc;
}

/* A packed Submit (header included) of a small envelope to recipient;
 * its random message id goes to id_out when given. */
static int pack_submit(const char *recipient, uint64_t request_id,
                       uint8_t **out, size_t *outlen, uint8_t *id_out) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Submit s = SYNOD__V1__SUBMIT__INIT;
  Synod__V1__Envelope e = SYNOD__V1__ENVELOPE__INIT;
  Synod__V1__DeviceCiphertext dc = SYNOD__V1__DEVICE_CIPHERTEXT__INIT, *dcs[1];
  uint8_t id[16], enc[32], ct[32];
  tclient_random_id(id);
  if (id_out)
    memcpy(id_out, id, sizeof id);
  memset(enc, 1, sizeof enc);
  memset(ct, 2, sizeof ct);
  dc.device_id = 1;
  dc.enc.data = enc;
  dc.enc.len = sizeof enc;
  dc.ct.data = ct;
  dc.ct.len = sizeof ct;
  dcs[0] = &dc;
  e.message_id.data = id;
  e.message_id.len = 16;
  e.recipient = synod_wire_lend(recipient);
  e.ciphertexts = dcs;
  e.n_ciphertexts = 1;
  s.envelope = &e;
  f.request_id = request_id;
  f.body_case = SYNOD__V1__FRAME__BODY_SUBMIT;
  f.submit = &s;
  return synod_wire_pack(&f, SYNOD_FRAME_HARD_MAX, out, outlen);
}

static int pack_ping(uint64_t request_id, uint8_t **out, size_t *outlen) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping p = SYNOD__V1__PING__INIT;
  p.nonce = request_id;
  f.request_id = request_id;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &p;
  return synod_wire_pack(&f, SYNOD_FRAME_HARD_MAX, out, outlen);
}

/* --- the honest session and the measurements --------------------------------- */

typedef struct honest {
  fixture_t *fx;
  fixture_relay_t *relay;
  tuser_t from, to;
  tclient_t *cfrom, *cto;
  size_t delivered;
  uint64_t nonce;
} honest_t;

/* One Ping round trip of the honest session in ms, or -1 on failure. */
static double honest_rtt(honest_t *h) {
  Synod__V1__Frame f = SYNOD__V1__FRAME__INIT;
  Synod__V1__Ping p = SYNOD__V1__PING__INIT;
  p.nonce = ++h->nonce;
  f.body_case = SYNOD__V1__FRAME__BODY_PING;
  f.ping = &p;
  Synod__V1__Frame *ans = NULL;
  double t0 = now_msf();
  int rc = tclient_request(h->cfrom, &f, &ans, T_MS);
  double took = now_msf() - t0;
  int ok = rc == 0 && ans->body_case == SYNOD__V1__FRAME__BODY_PONG &&
           ans->pong->nonce == p.nonce;
  synod_wire_free(ans);
  return ok ? took : -1;
}

/* The relay for case name: max_buffered_bytes = CEILING_TEXT plus the
 * given [limits] overrides (pairs of key, value; NULL-terminated), started,
 * with the honest pair logged in. */
static fixture_relay_t *abuse_relay(honest_t *h, const char *name,
                                    const char *const *limits) {
  memset(h, 0, sizeof *h);
  CU_ASSERT_EQUAL_FATAL(fixture_new(&h->fx, name), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_federation(h->fx, 1), 0);
  fixture_relay_t *a = fixture_relay_at(h->fx, 0);
  CU_ASSERT_EQUAL_FATAL(
      fixture_relay_set(a, "limits", "max_buffered_bytes", CEILING_TEXT), 0);
  for (size_t i = 0; limits && limits[i]; i += 2)
    CU_ASSERT_EQUAL_FATAL(
        fixture_relay_set(a, "limits", limits[i], limits[i + 1]), 0);
  /* info, not debug: the log of a million refusals would be the test. */
  CU_ASSERT_EQUAL_FATAL(fixture_relay_set(a, "relay", "log_level", "info"), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_relay_write_config(a), 0);
  CU_ASSERT_EQUAL_FATAL(fixture_start_all(h->fx), 0);
  h->relay = a;
  tuser_make(&h->from, a, "hank");
  tuser_make(&h->to, a, "iris");
  h->cfrom = tuser_login(&h->from);
  h->cto = tuser_login(&h->to);
  return a;
}

/* The honest pair still delivers: hank -> iris, stored, pushed, acked. */
static void honest_delivers(honest_t *h, const char *what) {
  CU_ASSERT_FATAL(fixture_relay_running(h->relay));
  if (!tclient_up(h->cfrom) || !tclient_up(h->cto))
    fprintf(stderr, "after %s: an honest session went down\n", what);
  CU_ASSERT_FATAL(tclient_up(h->cfrom));
  CU_ASSERT_FATAL(tclient_up(h->cto));
  uint8_t id[16];
  int acc = -1;
  tclient_random_id(id);
  int rc = tclient_submit(h->cfrom, id, h->to.id, 64, 0, &acc, T_MS);
  if (rc != 0)
    fprintf(stderr, "after %s: honest submit: %s\n", what, synod_err_name(rc));
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(acc, SYNOD__V1__ACCEPT_STATUS__ACCEPT_STATUS_STORED);
  CU_ASSERT_EQUAL_FATAL(tclient_wait_rx(h->cto, ++h->delivered, 1, T_MS), 0);
}

static void abuse_finish(honest_t *h) {
  tclient_close(h->cfrom);
  tclient_close(h->cto);
  CU_ASSERT_EQUAL(fixture_stop_all(h->fx), 0);
  fixture_free(h->fx);
  h->fx = NULL;
}

/* An attack on its own thread; the main thread measures meanwhile. */
typedef struct attack attack_t;
typedef void (*attack_fn)(attack_t *a);

struct attack {
  const char *name;
  honest_t *h;
  attack_fn fn;
  void *arg;
  atomic_int done;
  atomic_int stop; /* set by the main thread: give up now */
  /* What the attacker reports (written by it, read after it is done). */
  int failures; /* its own setup failures */
  char note[256];
};

typedef struct measure {
  double before; /* median honest round trip before, ms */
  double during[MAX_SAMPLES];
  size_t n, failed;        /* round trips during; those that failed */
  long rss_base, rss_peak; /* KiB */
  double p50, p90, max, bound;
  int64_t took_ms;
} measure_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *attack_main(void *p) {
  attack_t *a = p;
  a->fn(a);
  atomic_store(&a->done, 1);
  return NULL;
}

/*
 * Measures the honest round trip (median of 15) and the relay's RSS, runs
 * the attack on a thread, samples both until it ends (or limit_ms, then
 * tells it to stop), prints the figures and asserts the bounds.
 */
static void run_attack(attack_t *a, honest_t *h, int limit_ms, size_t ceiling) {
  measure_t *m = calloc(1, sizeof *m);
  CU_ASSERT_FATAL(m != NULL);
  pid_t pid = fixture_relay_pid(h->relay);
  double b[15];
  for (int i = 0; i < 15; i++) {
    b[i] = honest_rtt(h);
    CU_ASSERT_FATAL(b[i] >= 0);
  }
  qsort(b, 15, sizeof b[0], cmp_double);
  m->before = b[7];
  m->rss_base = m->rss_peak = rss_kib(pid);
  CU_ASSERT_FATAL(m->rss_base > 0);
  a->h = h;

  pthread_t t;
  int64_t t0 = raw_now_ms();
  CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, attack_main, a), 0);
  while (!atomic_load(&a->done)) {
    if (raw_now_ms() - t0 > limit_ms)
      atomic_store(&a->stop, 1);
    double r = honest_rtt(h);
    if (r < 0)
      m->failed++;
    else if (m->n < MAX_SAMPLES)
      m->during[m->n++] = r;
    long kib = rss_kib(pid);
    if (kib > m->rss_peak)
      m->rss_peak = kib;
    sleep_ms(50);
  }
  pthread_join(t, NULL);
  m->took_ms = raw_now_ms() - t0;
  long kib = rss_kib(pid);
  if (kib > m->rss_peak)
    m->rss_peak = kib;

  qsort(m->during, m->n, sizeof m->during[0], cmp_double);
  if (m->n) {
    m->p50 = m->during[m->n / 2];
    m->p90 = m->during[(m->n * 9) / 10];
    m->max = m->during[m->n - 1];
  }
  m->bound = 10 * m->before > 500 ? 10 * m->before : 500;
  printf("\nabuse: %s: %s\n"
         "abuse: %s: honest round trip before %.2f ms; during %zu samples "
         "p50 %.2f p90 %.2f max %.2f ms (bound %.0f ms), %zu failed; "
         "attack %" PRId64 " ms\n"
         "abuse: %s: relay VmRSS baseline %ld KiB, peak %ld KiB, growth "
         "%ld KiB (ceiling max_buffered_bytes %zu KiB)\n",
         a->name, a->note, a->name, m->before, m->n, m->p50, m->p90, m->max,
         m->bound, m->failed, m->took_ms, a->name, m->rss_base, m->rss_peak,
         m->rss_peak - m->rss_base, ceiling / 1024);
  fflush(stdout);
  CU_ASSERT_EQUAL(a->failures, 0);
  CU_ASSERT(m->n > 0);
  CU_ASSERT_EQUAL(m->failed, 0);
  CU_ASSERT(m->p90 < m->bound);
  CU_ASSERT(m->rss_peak - m->rss_base < (long)(ceiling / 1024));
  free(m);
}

/* --- 1. slowloris ------------------------------------------------------------- */

#define SLOW_CONNS 20

/*
 * Before authentication: SLOW_CONNS connections each send a TLS
 * ClientHello one byte per second. The handshake timeout (2 s) must close
 * every one of them long before its hello is complete.
 */
static void slow_hello(attack_t *a) {
  int *closed_at = a->arg;
  raw_t r[SLOW_CONNS];
  uint8_t hello[4096];
  size_t hlen = 0;
  synod_tls_ctx_t *ctx = NULL;
  synod_tls_t *tls = NULL;
  if (synod_tls_ctx_new_client(&ctx, NULL) != 0 ||
      synod_tls_new(&tls, ctx) != 0 || synod_tls_handshake(tls) < 0 ||
      synod_tls_take(tls, hello, sizeof hello, &hlen) != 0 || hlen < 100) {
    a->failures++;
    goto out_tls;
  }
  for (int i = 0; i < SLOW_CONNS; i++)
    if (raw_tcp(&r[i], fixture_relay_port(a->h->relay), 0) != 0)
      a->failures++;
  int64_t t0 = raw_now_ms();
  int open = SLOW_CONNS;
  for (size_t sent = 0; sent < hlen && open > 0 && !atomic_load(&a->stop);
       sent++) {
    for (int i = 0; i < SLOW_CONNS; i++) {
      if (closed_at[i] || r[i].fd < 0)
        continue;
      uint8_t buf[64];
      ssize_t got = recv(r[i].fd, buf, sizeof buf, MSG_DONTWAIT);
      ssize_t w = got == 0 ? -1 : send(r[i].fd, hello + sent, 1, MSG_NOSIGNAL);
      if (got == 0 || w < 0) {
        closed_at[i] = (int)(raw_now_ms() - t0) + 1;
        open--;
      }
    }
    sleep_ms(1000);
  }
  snprintf(a->note, sizeof a->note,
           "%d connections sending a %zu-byte ClientHello a byte a second; "
           "%d still open at the end",
           SLOW_CONNS, hlen, open);
  for (int i = 0; i < SLOW_CONNS; i++)
    raw_free(&r[i]);
out_tls:
  synod_tls_free(tls);
  synod_tls_ctx_free(ctx);
}

/* After authentication: SLOW_CONNS sessions each send a Submit frame one
 * byte per second, each byte in a TLS record of its own. The frame
 * timeout (2 s) must answer each with Error ETIMEDOUT and close it. */
typedef struct slow_frame_arg {
  tuser_t users[SLOW_CONNS];
  int closed_at[SLOW_CONNS];
  int code[SLOW_CONNS];
} slow_frame_arg_t;

static void slow_frame(attack_t *a) {
  slow_frame_arg_t *s = a->arg;
  raw_t r[SLOW_CONNS];
  uint8_t *frame = NULL;
  size_t flen = 0;
  for (int i = 0; i < SLOW_CONNS; i++)
    if (raw_session(&r[i], &s->users[i], 0) != 0)
      a->failures++;
  if (pack_submit(a->h->to.id, 1, &frame, &flen, NULL) != 0) {
    a->failures++;
    flen = 0;
  }
  int64_t t0 = raw_now_ms();
  int open = SLOW_CONNS;
  for (size_t sent = 0; sent < flen && open > 0 && !atomic_load(&a->stop);
       sent++) {
    for (int i = 0; i < SLOW_CONNS; i++) {
      if (s->closed_at[i] || !r[i].tls)
        continue;
      uint8_t buf[4096];
      ssize_t got = recv(r[i].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got > 0 && synod_tls_feed(r[i].tls, buf, (size_t)got) != 0)
        got = 0;
      if (got == 0 || r[i].eof || raw_write(&r[i], frame + sent, 1) != 0) {
        s->closed_at[i] = (int)(raw_now_ms() - t0) + 1;
        open--;
        continue;
      }
      if (got > 0) {
        /* Something came: the Error, then the close. */
        int code = 0;
        if (raw_until_closed(&r[i], &code, 3000) == 0) {
          s->code[i] = code;
          s->closed_at[i] = (int)(raw_now_ms() - t0) + 1;
          open--;
        }
      }
    }
    sleep_ms(1000);
  }
  snprintf(a->note, sizeof a->note,
           "%d sessions sending a %zu-byte Submit a byte a second; %d still "
           "open at the end",
           SLOW_CONNS, flen, open);
  free(frame);
  for (int i = 0; i < SLOW_CONNS; i++)
    raw_free(&r[i]);
}

static void test_slowloris(void) {
  honest_t h;
  static const char *const limits[] = {"handshake_timeout", "2s",
                                       "frame_timeout", "2s", NULL};
  abuse_relay(&h, "abuse_slow", limits);

  attack_t a = {.name = "slowloris before auth", .fn = slow_hello};
  int closed_at[SLOW_CONNS] = {0};
  a.arg = closed_at;
  run_attack(&a, &h, 20000, CEILING_BYTES);
  for (int i = 0; i < SLOW_CONNS; i++) {
    /* Closed, and by the deadline: 2 s, plus a second of trickle and
     * slack for a loaded machine. */
    CU_ASSERT(closed_at[i] > 0);
    CU_ASSERT(closed_at[i] <= 6000);
  }
  honest_delivers(&h, "slowloris before auth");

  slow_frame_arg_t *s = calloc(1, sizeof *s);
  CU_ASSERT_FATAL(s != NULL);
  for (int i = 0; i < SLOW_CONNS; i++) {
    char name[16];
    snprintf(name, sizeof name, "slow%d", i);
    tuser_make(&s->users[i], h.relay, name);
  }
  int before = log_count(h.relay, "frame not completed in time");
  attack_t b = {.name = "slowloris after auth", .fn = slow_frame, .arg = s};
  run_attack(&b, &h, 20000, CEILING_BYTES);
  int told = 0;
  for (int i = 0; i < SLOW_CONNS; i++) {
    CU_ASSERT(s->closed_at[i] > 0);
    CU_ASSERT(s->closed_at[i] <= 6000);
    told += s->code[i] == SYNOD_ETIMEDOUT;
  }
  printf("abuse: slowloris after auth: %d of %d told ETIMEDOUT before the "
         "close\n",
         told, SLOW_CONNS);
  CU_ASSERT_EQUAL(told, SLOW_CONNS);
  /* The relay logs a session's end once its close completes, which may be
   * after the client saw the Error: wait for the lines, up to 5 s. */
  int logged = 0;
  for (int i = 0; i < 50; i++) {
    logged = log_count(h.relay, "frame not completed in time") - before;
    if (logged >= SLOW_CONNS)
      break;
    usleep(100 * 1000);
  }
  CU_ASSERT_EQUAL(logged, SLOW_CONNS);
  free(s);
  honest_delivers(&h, "slowloris after auth");
  abuse_finish(&h);
}

/* --- 2. a client that never reads ---------------------------------------------- */

/*
 * An authenticated session with a small receive buffer sends Pings as
 * fast as it can and never reads a Pong. The relay must stop reading it
 * once its write queue is at the cap rather than queue Pongs without end,
 * and cut it (ELIMIT, "peer is not reading") when it has taken nothing
 * for frame_timeout (3 s here); the attacker sees its writes fail once
 * the relay has closed.
 */
typedef struct nonreader_arg {
  tuser_t user;
  uint64_t pings;
  int closed;
  int64_t closed_after;
} nonreader_arg_t;

static void nonreader(attack_t *a) {
  nonreader_arg_t *n = a->arg;
  raw_t r;
  if (raw_session(&r, &n->user, 4096) != 0) {
    a->failures++;
    raw_free(&r);
    return;
  }
  /* 512 Pings to a TLS write: about 8 KiB of plaintext. */
  uint8_t batch[512 * 32];
  size_t blen = 0;
  int64_t t0 = raw_now_ms();
  while (!atomic_load(&a->stop) && raw_now_ms() - t0 < 30000) {
    blen = 0;
    for (int i = 0; i < 512; i++) {
      uint8_t *p;
      size_t len;
      if (pack_ping(++n->pings, &p, &len) != 0 || blen + len > sizeof batch) {
        a->failures++;
        break;
      }
      memcpy(batch + blen, p, len);
      blen += len;
      free(p);
    }
    if (synod_tls_write(r.tls, batch, blen) != 0) {
      a->failures++;
      break;
    }
    uint8_t ct[32768];
    size_t ctlen = 0;
    int rc = 0;
    while (rc == 0 && synod_tls_pending(r.tls) > 0 &&
           synod_tls_take(r.tls, ct, sizeof ct, &ctlen) == 0 && ctlen > 0)
      rc = raw_send_all(&r, ct, ctlen, raw_now_ms() + 500);
    if (rc == SYNOD_ECLOSED) {
      n->closed = 1;
      break;
    }
    /* SYNOD_ETIMEDOUT: the relay stopped reading us; keep pushing. */
  }
  n->closed_after = raw_now_ms() - t0;
  snprintf(a->note, sizeof a->note,
           "one session sent %" PRIu64 " Pings without reading; %s after "
           "%" PRId64 " ms",
           n->pings, n->closed ? "the relay closed it" : "still open",
           n->closed_after);
  raw_free(&r);
}

static void test_never_reads(void) {
  honest_t h;
  static const char *const limits[] = {"frame_timeout", "3s", NULL};
  abuse_relay(&h, "abuse_noread", limits);
  nonreader_arg_t *n = calloc(1, sizeof *n);
  CU_ASSERT_FATAL(n != NULL);
  tuser_make(&n->user, h.relay, "deaf");
  int before = log_count(h.relay, "peer is not reading");
  attack_t a = {.name = "never reads", .fn = nonreader, .arg = n};
  run_attack(&a, &h, 40000, CEILING_BYTES);
  CU_ASSERT(n->closed);
  /* The relay says why in its log. */
  int64_t until = raw_now_ms() + 5000;
  while (log_count(h.relay, "peer is not reading") == before &&
         raw_now_ms() < until)
    sleep_ms(100);
  CU_ASSERT(log_count(h.relay, "peer is not reading") > before);
  CU_ASSERT(log_count(h.relay, "error=ELIMIT") > 0);
  free(n);
  honest_delivers(&h, "a client that never reads");
  abuse_finish(&h);
}

/* --- 3. a flood of connections --------------------------------------------------- */

#define FLOOD_CONNS 1000
#define FLOOD_MAX   "16" /* max_connections */
/* What the relay may keep of the flood: max_connections plus its 64 in
 * handshake, less the two honest sessions. */
#define FLOOD_KEPT (16 + 64 - 2)

/*
 * FLOOD_CONNS TCP connections opened as fast as possible and held, none
 * speaking. max_connections (16) plus the relay's handshake allowance
 * (64) may wait for their handshake (10 s here); every other must be
 * closed at once, well before that. Then all of them go, and the slots
 * must be free again.
 */
typedef struct flood_arg {
  int refused;                   /* closed by the relay */
  int held;                      /* still open when the count was taken */
  int failed;                    /* could not connect */
  int64_t opened_ms, refused_ms; /* to open them all; until the count */
} flood_arg_t;

static void flood(attack_t *a) {
  flood_arg_t *f = a->arg;
  static int fds[FLOOD_CONNS];
  static char gone[FLOOD_CONNS];
  memset(gone, 0, sizeof gone);
  int64_t t0 = raw_now_ms();
  for (int i = 0; i < FLOOD_CONNS; i++) {
    raw_t r;
    if (raw_tcp(&r, fixture_relay_port(a->h->relay), 0) != 0) {
      raw_free(&r);
      fds[i] = -1;
      f->failed++;
      continue;
    }
    fds[i] = r.fd;
    r.fd = -1;
    raw_free(&r);
  }
  f->opened_ms = raw_now_ms() - t0;
  /* Until all but those the relay may keep are gone, or 4 s (well before
   * the 10 s handshake timeout closes the rest). */
  int64_t until = raw_now_ms() + 4000;
  for (;;) {
    f->refused = f->held = 0;
    for (int i = 0; i < FLOOD_CONNS; i++) {
      if (fds[i] < 0)
        continue;
      if (!gone[i]) {
        uint8_t b;
        ssize_t got = recv(fds[i], &b, 1, MSG_DONTWAIT);
        gone[i] = got == 0 || (got < 0 && errno != EAGAIN &&
                               errno != EWOULDBLOCK && errno != EINTR);
      }
      if (gone[i])
        f->refused++;
      else
        f->held++;
    }
    if (f->held <= FLOOD_KEPT || raw_now_ms() > until)
      break;
    sleep_ms(100);
  }
  f->refused_ms = raw_now_ms() - t0;
  /* The relay full, for the honest session to be measured meanwhile. */
  sleep_ms(2000);
  for (int i = 0; i < FLOOD_CONNS; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  snprintf(a->note, sizeof a->note,
           "%d connections opened in %" PRId64 " ms: %d closed by the relay, "
           "%d held (counted %" PRId64 " ms after the first), %d failed to "
           "connect",
           FLOOD_CONNS, f->opened_ms, f->refused, f->held, f->refused_ms,
           f->failed);
}

static void test_connection_flood(void) {
  honest_t h;
  static const char *const limits[] = {"max_connections", FLOOD_MAX,
                                       "handshake_timeout", "10s", NULL};
  abuse_relay(&h, "abuse_flood", limits);
  flood_arg_t f = {0};
  attack_t a = {.name = "connection flood", .fn = flood, .arg = &f};
  run_attack(&a, &h, 30000, CEILING_BYTES);
  CU_ASSERT_EQUAL(f.failed, 0);
  CU_ASSERT(f.held <= FLOOD_KEPT);
  CU_ASSERT_EQUAL(f.refused + f.held, FLOOD_CONNS);
  CU_ASSERT(log_count(h.relay, "connection dropped at accept") > 0);
  /* The flood is gone: slots are free again for a new session (once the
   * relay has seen the 78 go). */
  tuser_t late;
  tuser_make(&late, h.relay, "late");
  tclient_t *c = NULL;
  int rc = SYNOD_ELIMIT;
  for (int i = 0; i < 50 && rc != 0; i++) {
    rc = tclient_connect(&c, fixture_relay_port(h.relay),
                         fixture_relay_public_key(h.relay), late.id, late.sk,
                         late.code, T_MS);
    if (rc != 0)
      sleep_ms(100);
  }
  CU_ASSERT_EQUAL(rc, 0);
  tclient_close(c);
  honest_delivers(&h, "a connection flood");
  abuse_finish(&h);
}

/* --- 4. length prefixes: 4 GiB, max + 1, and max never finished --------------------- */

#define PREFIX_ROUNDS 100
#define HOLDERS       48

/*
 * max_frame_bytes is 1 MiB and max_buffered_bytes 16 MiB in this case.
 * PREFIX_ROUNDS times each: a fresh TLS connection announces a 4 GiB - 1
 * frame, and one announces max_frame_bytes + 1: each must get Error
 * ETOOBIG and be closed, with nothing allocated (the RSS bound).
 * Then HOLDERS connections each announce a frame of exactly
 * max_frame_bytes and send 64 KiB of it: the relay's decoder allocates
 * the announced 1 MiB for each, HOLDERS MiB in all against the 16 MiB
 * budget: the relay keeps at most 16 (they hear ETIMEDOUT at the
 * handshake timeout, 3 s), sheds with ELIMIT the one that takes it over,
 * and closes new connections at accept while the budget is full.
 */
typedef struct prefix_arg {
  int toobig_4g, toobig_max1, rounds, shed, held, refused, write_failed;
} prefix_arg_t;

static void prefixes(attack_t *a) {
  prefix_arg_t *p = a->arg;
  uint16_t port = fixture_relay_port(a->h->relay);
  static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  static const uint8_t over[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
  for (int i = 0; i < PREFIX_ROUNDS && !atomic_load(&a->stop); i++) {
    raw_t r;
    int code = 0;
    if (raw_tls(&r, port, 0) == 0 && raw_write(&r, huge, 4) == 0 &&
        raw_until_closed(&r, &code, T_MS) == 0 && code == SYNOD_ETOOBIG)
      p->toobig_4g++;
    raw_free(&r);
    code = 0;
    if (raw_tls(&r, port, 0) == 0 && raw_write(&r, over, 4) == 0 &&
        raw_until_closed(&r, &code, T_MS) == 0 && code == SYNOD_ETOOBIG)
      p->toobig_max1++;
    raw_free(&r);
    p->rounds++;
  }
  /* Half a maximal frame each, then wait for the relay's verdicts. */
  raw_t *r = calloc(HOLDERS, sizeof *r);
  if (!r) {
    a->failures++;
    return;
  }
  static const uint8_t max[4] = {0x00, 0x10, 0x00, 0x00}; /* 1 MiB */
  static uint8_t half[65536];
  int up[HOLDERS];
  for (int i = 0; i < HOLDERS; i++) {
    up[i] = raw_tls(&r[i], port, 0) == 0;
    if (!up[i]) {
      p->refused++; /* closed at accept: the budget is full */
      continue;
    }
    if (raw_write(&r[i], max, 4) != 0 ||
        raw_write(&r[i], half, sizeof half) != 0)
      p->write_failed++;
  }
  for (int i = 0; i < HOLDERS; i++) {
    int code = 0;
    if (!up[i]) {
      raw_free(&r[i]);
      continue;
    }
    /* Shed ones hear at once; the rest at the handshake timeout. */
    if (raw_until_closed(&r[i], &code, T_MS) == 0 && code == SYNOD_ELIMIT)
      p->shed++;
    else if (code == SYNOD_ETIMEDOUT)
      p->held++;
    raw_free(&r[i]);
  }
  free(r);
  snprintf(a->note, sizeof a->note,
           "%d rounds: 4 GiB prefix ETOOBIG %d, max+1 ETOOBIG %d; %d "
           "connections holding part of a 1 MiB frame: %d shed ELIMIT, %d "
           "timed out, %d closed at accept, %d writes failed",
           p->rounds, p->toobig_4g, p->toobig_max1, HOLDERS, p->shed, p->held,
           p->refused, p->write_failed);
}

static void test_length_prefixes(void) {
  honest_t h;
  static const char *const limits[] = {"handshake_timeout",
                                       "3s",
                                       "max_frame_bytes",
                                       "1MiB",
                                       "max_buffered_bytes",
                                       "16MiB",
                                       NULL};
  abuse_relay(&h, "abuse_prefix", limits);
  prefix_arg_t p = {0};
  attack_t a = {.name = "length prefixes", .fn = prefixes, .arg = &p};
  run_attack(&a, &h, 120000, 16u << 20);
  CU_ASSERT_EQUAL(p.toobig_4g, p.rounds);
  CU_ASSERT_EQUAL(p.toobig_max1, p.rounds);
  CU_ASSERT_EQUAL(p.rounds, PREFIX_ROUNDS);
  /* The budget is 16 MiB: at most 16 bodies of 1 MiB were kept; every
   * other holder was shed (ELIMIT), or closed at accept while the budget
   * was full. */
  CU_ASSERT_EQUAL(p.write_failed, 0);
  CU_ASSERT_EQUAL(p.shed + p.held + p.refused, HOLDERS);
  CU_ASSERT(p.held <= 16);
  CU_ASSERT(p.shed + p.refused >= HOLDERS - 16);
  honest_delivers(&h, "length prefixes");
  abuse_finish(&h);
}

/* --- 5. deep and huge protobuf ----------------------------------------------------- */

/* Appends a varint. */
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
  } while (v);
  return n;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >>= 7)
    n++;
  return n;
}

/*
 * Frame bodies, each a valid frame of at most 250000 bytes:
 *  DEEP    a Ping and an unknown field 999 holding an unknown field
 *          holding ... 30000 levels deep;
 *  WIDE    a Ping and 60000 unknown varint fields;
 *  REPEAT  a Submit whose envelope repeats its ciphertexts 60000 times.
 * Built by hand: the encoder would not make such things.
 */
enum shape { DEEP, WIDE, REPEAT };

static int build(enum shape s, const char *recipient, uint8_t **out,
                 size_t *outlen) {
  size_t cap = 300000;
  uint8_t *b = malloc(cap);
  if (!b)
    return SYNOD_ENOMEM;
  uint8_t *p = b + 4;
  size_t n = 0;
  p[n++] = 0x08; /* request_id = 7 */
  p[n++] = 7;
  if (s == DEEP || s == WIDE) {
    p[n++] = (14 << 3) | 2; /* ping */
    p[n++] = 2;
    p[n++] = 0x08; /* nonce = 7 */
    p[n++] = 7;
  }
  if (s == DEEP) {
    /* Level k holds level k+1: lengths computed from the inside out. */
    enum { LEVELS = 30000 };
    size_t *len = malloc(sizeof *len * (LEVELS + 1));
    if (!len) {
      free(b);
      return SYNOD_ENOMEM;
    }
    len[LEVELS] = 0;
    for (int k = LEVELS - 1; k >= 0; k--)
      len[k] = 2 + varint_len(len[k + 1]) + len[k + 1]; /* tag 999: 2 bytes */
    for (int k = 0; k < LEVELS; k++) {
      n += put_varint(p + n, (999u << 3) | 2);
      n += put_varint(p + n, len[k + 1]);
    }
    free(len);
  } else if (s == WIDE) {
    for (int k = 0; k < 60000; k++) {
      /* cppcheck-suppress badBitmaskCheck ; wire type 0 spelled out */
      n += put_varint(p + n, (900u << 3) | 0);
      p[n++] = 1;
    }
  } else {
    /* Field numbers from the descriptors, so this follows the schema. */
    const ProtobufCFieldDescriptor *fid =
        protobuf_c_message_descriptor_get_field_by_name(
            &synod__v1__envelope__descriptor, "message_id");
    const ProtobufCFieldDescriptor *frc =
        protobuf_c_message_descriptor_get_field_by_name(
            &synod__v1__envelope__descriptor, "recipient");
    const ProtobufCFieldDescriptor *fct =
        protobuf_c_message_descriptor_get_field_by_name(
            &synod__v1__envelope__descriptor, "ciphertexts");
    const ProtobufCFieldDescriptor *fenv =
        protobuf_c_message_descriptor_get_field_by_name(
            &synod__v1__submit__descriptor, "envelope");
    const ProtobufCFieldDescriptor *fsub =
        protobuf_c_message_descriptor_get_field_by_name(
            &synod__v1__frame__descriptor, "submit");
    if (!fid || !frc || !fct || !fenv || !fsub) {
      free(b);
      return SYNOD_EINTERNAL;
    }
    enum { COPIES = 60000 };
    size_t rlen = strlen(recipient);
    size_t env = varint_len((fid->id << 3) | 2) + 1 + 16 +
                 varint_len((frc->id << 3) | 2) + varint_len(rlen) + rlen +
                 (size_t)COPIES * (varint_len((fct->id << 3) | 2) + 1);
    size_t sub = varint_len((fenv->id << 3) | 2) + varint_len(env) + env;
    n += put_varint(p + n, (fsub->id << 3) | 2);
    n += put_varint(p + n, sub);
    n += put_varint(p + n, (fenv->id << 3) | 2);
    n += put_varint(p + n, env);
    n += put_varint(p + n, (fid->id << 3) | 2);
    p[n++] = 16;
    tclient_random_id(p + n);
    n += 16;
    n += put_varint(p + n, (frc->id << 3) | 2);
    n += put_varint(p + n, rlen);
    memcpy(p + n, recipient, rlen);
    n += rlen;
    for (int k = 0; k < COPIES; k++) {
      n += put_varint(p + n, (fct->id << 3) | 2);
      p[n++] = 0; /* an empty DeviceCiphertext */
    }
  }
  if (n + 4 > cap) {
    free(b);
    return SYNOD_EINTERNAL;
  }
  b[0] = (uint8_t)(n >> 24);
  b[1] = (uint8_t)(n >> 16);
  b[2] = (uint8_t)(n >> 8);
  b[3] = (uint8_t)n;
  *out = b;
  *outlen = n + 4;
  return 0;
}

#define PROTO_ROUNDS 10

typedef struct proto_arg {
  tuser_t user;
  int answered[3]; /* per shape: an answer (Pong or a typed request error) */
  int code[3];     /* the last answer: 0 for a Pong, else the Error code */
  double worst_ms[3];
  size_t bytes[3];
} proto_arg_t;

static void protobufs(attack_t *a) {
  proto_arg_t *p = a->arg;
  raw_t r;
  if (raw_session(&r, &p->user, 0) != 0) {
    a->failures++;
    raw_free(&r);
    return;
  }
  for (int round = 0; round < PROTO_ROUNDS && !atomic_load(&a->stop); round++) {
    for (int s = DEEP; s <= REPEAT; s++) {
      uint8_t *buf;
      size_t len;
      if (build((enum shape)s, a->h->to.id, &buf, &len) != 0) {
        a->failures++;
        continue;
      }
      p->bytes[s] = len;
      double t0 = now_msf();
      int rc = raw_write(&r, buf, len);
      free(buf);
      Synod__V1__Frame *f = NULL;
      while (rc == 0) {
        rc = raw_frame(&r, &f, T_MS);
        if (rc == 0 && f->request_id == 7)
          break;
        synod_wire_free(f);
        f = NULL;
      }
      double took = now_msf() - t0;
      if (rc == 0) {
        p->answered[s]++;
        p->code[s] = f->body_case == SYNOD__V1__FRAME__BODY_ERROR
                         ? synod_err_from_wire(f->error->code)
                     : f->body_case == SYNOD__V1__FRAME__BODY_PONG ? 0
                                                                   : 1;
        if (took > p->worst_ms[s])
          p->worst_ms[s] = took;
      }
      synod_wire_free(f);
    }
  }
  snprintf(a->note, sizeof a->note,
           "%d rounds: deep (%zu B) %d answered %s, worst %.1f ms; wide (%zu "
           "B) %d answered %s, worst %.1f ms; repeated (%zu B) %d answered "
           "%s, worst %.1f ms",
           PROTO_ROUNDS, p->bytes[0], p->answered[0],
           p->code[0] ? synod_err_name(p->code[0]) : "Pong", p->worst_ms[0],
           p->bytes[1], p->answered[1],
           p->code[1] ? synod_err_name(p->code[1]) : "Pong", p->worst_ms[1],
           p->bytes[2], p->answered[2],
           p->code[2] ? synod_err_name(p->code[2]) : "Pong", p->worst_ms[2]);
  raw_free(&r);
}

static void test_deep_protobuf(void) {
  honest_t h;
  abuse_relay(&h, "abuse_proto", NULL);
  proto_arg_t *p = calloc(1, sizeof *p);
  CU_ASSERT_FATAL(p != NULL);
  tuser_make(&p->user, h.relay, "nest");
  attack_t a = {.name = "deep and huge protobuf", .fn = protobufs, .arg = p};
  run_attack(&a, &h, 60000, CEILING_BYTES);
  for (int s = DEEP; s <= REPEAT; s++) {
    CU_ASSERT_EQUAL(p->answered[s], PROTO_ROUNDS);
    /* Linear work on 250 KB is milliseconds; quadratic would be seconds. */
    CU_ASSERT(p->worst_ms[s] < 1000);
  }
  /* Unknown fields are skipped, however deep or many: the Ping is answered. */
  CU_ASSERT_EQUAL(p->code[DEEP], 0);
  CU_ASSERT_EQUAL(p->code[WIDE], 0);
  /* 60000 device ciphertexts: a typed request error, not a crash. */
  CU_ASSERT(p->code[REPEAT] < 0);
  free(p);
  honest_delivers(&h, "deep and huge protobuf");
  abuse_finish(&h);
}

/* --- 6. a million tiny messages ----------------------------------------------------- */

#define MILLION 1000000u

typedef struct million_arg {
  tuser_t user;
  const char *recipient;
  int seconds;
  uint64_t sent, accepted, rate_refused, other_errors, answered;
  int other_code;
  int64_t send_ms;  /* until the last Submit was written */
  int64_t total_ms; /* until the last answer came */
} million_arg_t;

/* Counts the answers in the plaintext the engine holds. */
static int count_answers(raw_t *r, million_arg_t *m) {
  for (;;) {
    if (r->ptoff >= r->ptlen) {
      size_t n = 0;
      r->ptoff = r->ptlen = 0;
      int rc = synod_tls_read(r->tls, r->pt, sizeof r->pt, &n);
      if (rc != 0)
        return rc;
      if (n == 0)
        return 0;
      r->ptlen = n;
    }
    size_t used = 0, blen = 0;
    uint8_t *body = NULL;
    int d = synod_frame_decoder_feed(&r->dec, r->pt + r->ptoff,
                                     r->ptlen - r->ptoff, &used, &body, &blen);
    if (d < 0)
      return d;
    r->ptoff += used;
    if (d == 0)
      continue;
    Synod__V1__Frame *f = NULL;
    int rc = synod_wire_unpack(body, blen, &f);
    free(body);
    if (rc != 0)
      return rc;
    if (f->body_case == SYNOD__V1__FRAME__BODY_ACCEPTED) {
      m->accepted++;
      m->answered++;
    } else if (f->body_case == SYNOD__V1__FRAME__BODY_ERROR) {
      int code = synod_err_from_wire(f->error->code);
      if (f->request_id == 0) {
        synod_wire_free(f);
        return code ? code : SYNOD_ECLOSED;
      }
      if (code == SYNOD_ERATE) {
        m->rate_refused++;
      } else {
        m->other_errors++;
        m->other_code = code;
      }
      m->answered++;
    }
    synod_wire_free(f);
  }
}

static void million(attack_t *a) {
  million_arg_t *m = a->arg;
  raw_t r;
  if (raw_session(&r, &m->user, 0) != 0) {
    a->failures++;
    raw_free(&r);
    return;
  }
  /* One template Submit; each copy gets its own request id (the first
   * field: 0x08 then a varint, re-encoded per copy) and its own message
   * id (a counter written over the template's random one), so what the
   * rate limit lets through is stored, not a duplicate. */
  uint8_t *tmpl;
  size_t tlen;
  uint8_t mid[16];
  if (pack_submit(m->recipient, 1, &tmpl, &tlen, mid) != 0 || tmpl[4] != 0x08 ||
      tmpl[5] != 0x01) {
    a->failures++;
    raw_free(&r);
    return;
  }
  const uint8_t *rest = tmpl + 6;
  size_t restlen = tlen - 6, idoff = 0;
  for (size_t k = 0; k + 16 <= restlen && !idoff; k++)
    if (memcmp(rest + k, mid, 16) == 0)
      idoff = k;
  if (!idoff) {
    a->failures++;
    free(tmpl);
    raw_free(&r);
    return;
  }
  enum { BATCH = 256 };
  uint8_t *plain = malloc(BATCH * (tlen + 16));
  uint8_t *ct = malloc(BATCH * (tlen + 16) + 4096);
  size_t ctlen = 0, ctoff = 0;
  int64_t t0 = raw_now_ms(), deadline = t0 + (int64_t)m->seconds * 1000;
  int rc = 0;
  while (rc == 0 && plain && ct && !atomic_load(&a->stop)) {
    int sending = m->sent < MILLION && raw_now_ms() < deadline;
    if (!sending && ctoff == ctlen) {
      if (m->answered == m->sent || raw_now_ms() > deadline + 20000)
        break;
    }
    if (sending && ctoff == ctlen) {
      /* The next batch, encrypted as one TLS write. */
      size_t plen = 0;
      for (int i = 0; i < BATCH && m->sent < MILLION; i++) {
        uint64_t rid = ++m->sent;
        size_t body = restlen + 1 + varint_len(rid);
        plain[plen++] = (uint8_t)(body >> 24);
        plain[plen++] = (uint8_t)(body >> 16);
        plain[plen++] = (uint8_t)(body >> 8);
        plain[plen++] = (uint8_t)body;
        plain[plen++] = 0x08;
        plen += put_varint(plain + plen, rid);
        memcpy(plain + plen, rest, restlen);
        memcpy(plain + plen + idoff, &rid, sizeof rid);
        plen += restlen;
      }
      rc = synod_tls_write(r.tls, plain, plen);
      ctlen = ctoff = 0;
      while (rc == 0 && synod_tls_pending(r.tls) > 0) {
        size_t got = 0;
        rc = synod_tls_take(r.tls, ct + ctlen,
                            BATCH * (tlen + 16) + 4096 - ctlen, &got);
        if (got == 0)
          break;
        ctlen += got;
      }
    }
    struct pollfd pf = {.fd = r.fd,
                        .events = POLLIN | (ctoff < ctlen ? POLLOUT : 0)};
    if (poll(&pf, 1, 100) < 0 && errno != EINTR)
      break;
    if (pf.revents & POLLOUT) {
      ssize_t w =
          send(r.fd, ct + ctoff, ctlen - ctoff, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0)
        ctoff += (size_t)w;
      else if (w < 0 && errno != EAGAIN && errno != EINTR)
        rc = SYNOD_ECLOSED;
    }
    if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
      uint8_t buf[65536];
      ssize_t got = recv(r.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
        rc = SYNOD_ECLOSED;
      else if (got > 0 && synod_tls_feed(r.tls, buf, (size_t)got) != 0)
        rc = SYNOD_ETLS;
      if (rc == 0)
        rc = count_answers(&r, m);
    }
    if (!sending && m->send_ms == 0)
      m->send_ms = raw_now_ms() - t0;
  }
  m->total_ms = raw_now_ms() - t0;
  if (rc != 0) {
    fprintf(stderr, "million: the session ended: %s\n", synod_err_name(rc));
    a->failures++;
  }
  snprintf(a->note, sizeof a->note,
           "%" PRIu64 " Submits sent in %" PRId64 " ms (cap %u or %d s); "
           "answered %" PRIu64 " by %" PRId64 " ms: %" PRIu64
           " accepted, %" PRIu64 " refused ERATE, %" PRIu64 " other errors",
           m->sent, m->send_ms, MILLION, m->seconds, m->answered, m->total_ms,
           m->accepted, m->rate_refused, m->other_errors);
  free(plain);
  free(ct);
  free(tmpl);
  raw_free(&r);
}

static void test_million(void) {
  honest_t h;
  abuse_relay(&h, "abuse_million", NULL);
  million_arg_t *m = calloc(1, sizeof *m);
  CU_ASSERT_FATAL(m != NULL);
  tuser_make(&m->user, h.relay, "spam");
  tuser_t sink;
  tuser_make(&sink, h.relay, "sink");
  m->recipient = sink.id;
  const char *env = getenv("SYNOD_ABUSE_SECONDS");
  m->seconds = env && atoi(env) > 0 ? atoi(env) : 30;
  attack_t a = {.name = "a million tiny messages", .fn = million, .arg = m};
  run_attack(&a, &h, (m->seconds + 60) * 1000, CEILING_BYTES);
  CU_ASSERT(m->sent > 0);
  CU_ASSERT_EQUAL(m->answered, m->sent);
  CU_ASSERT_EQUAL(m->other_errors, 0);
  /* The bucket: 200 at once, then 50 a second (the defaults), for as long
   * as the relay was taking them (the last may be read after the last
   * was sent). */
  uint64_t allowed = 200 + 50 * (uint64_t)(m->total_ms / 1000 + 2);
  CU_ASSERT(m->accepted <= allowed);
  CU_ASSERT(m->accepted >= 200);
  CU_ASSERT_EQUAL(m->accepted + m->rate_refused, m->sent);
  /* What was accepted is stored: exactly that many for the sink. */
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM inbox i JOIN accounts a ON a.id = "
           "i.account_id WHERE a.name = '%s'",
           sink.local);
  int64_t stored = tuser_q(h.relay, sql);
  printf("abuse: a million tiny messages: %" PRId64
         " stored for the recipient\n",
         stored);
  CU_ASSERT_EQUAL(stored, (int64_t)m->accepted);
  free(m);
  honest_delivers(&h, "a million tiny messages");
  abuse_finish(&h);
}

static CU_TestInfo abuse_tests[] = {
    {"slowloris", test_slowloris},
    {"never_reads", test_never_reads},
    {"connection_flood", test_connection_flood},
    {"length_prefixes", test_length_prefixes},
    {"deep_protobuf", test_deep_protobuf},
    {"million", test_million},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"abuse", NULL, NULL, NULL, fixture_teardown, abuse_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  /* See the head of this file: a small ASan quarantine for the relays. */
  const char *asan = getenv("ASAN_OPTIONS");
  if (!asan || !strstr(asan, "quarantine_size_mb")) {
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", asan ? asan : "",
             asan && asan[0] ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
  }
  return test_main(argc, argv, suites);
}
