/* synod-bench: the core and the report; see bench.h and tests/bench/run.sh. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "synod/crypto.h"
#include "synod/keyfile.h"

enum {
  BENCH_F_SENT = 1,
  BENCH_F_ACCEPTED = 2,
  BENCH_F_DELIVERED = 4,
};

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- bookkeeping ------------------------------------------------------------
 */

static uint8_t *flag_slot(bench_sender_t *s, uint64_t seq) {
  if (seq >= s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap <= seq)
      cap *= 2;
    uint8_t *f = realloc(s->flags, cap);
    if (!f) {
      fprintf(stderr, "synod-bench: out of memory\n");
      exit(2);
    }
    memset(f + s->cap, 0, cap - s->cap);
    s->flags = f;
    s->cap = cap;
  }
  return &s->flags[seq];
}

/* Messages the rate allows now and not sent yet in this phase. */
static int rate_allows(bench_t *b) {
  if (b->rate <= 0)
    return 1;
  double elapsed = (double)(bench_now_ns() - b->phase_t0) / 1e9;
  return (double)b->phase_sent < b->rate * elapsed;
}

static int send_one(bench_t *b, size_t i) {
  bench_sender_t *s = &b->senders[i];
  uint64_t seq = s->next_seq++;
  *flag_slot(s, seq) = BENCH_F_SENT;
  uint8_t *p = b->payload;
  bench_put64(p + BENCH_HDR_TIME, bench_now_ns());
  bench_put32(p + BENCH_HDR_SENDER, (uint32_t)i);
  bench_put64(p + BENCH_HDR_SEQ, seq);
  bench_put32(p + BENCH_HDR_NONCE, b->nonce);
  s->inflight++;
  b->sent++;
  b->phase_sent++;
  int rc = b->drv->send(b, i, p, b->msg_bytes);
  if (rc != 0) {
    s->inflight--;
    b->errors++;
  }
  return rc;
}

void bench_pump_one(bench_t *b, size_t i) {
  bench_sender_t *s = &b->senders[i];
  while (b->sending && s->inflight < b->window && rate_allows(b))
    if (send_one(b, i) != 0)
      break;
}

/* Paced: one message at a time, round robin over senders with room. */
static void pump_all(bench_t *b) {
  if (b->rate <= 0) {
    for (size_t i = 0; i < b->n; i++)
      bench_pump_one(b, i);
    return;
  }
  size_t idle = 0;
  while (b->sending && idle < b->n && rate_allows(b)) {
    size_t i = b->rr;
    b->rr = (b->rr + 1) % b->n;
    if (b->senders[i].inflight < b->window) {
      idle = 0;
      if (send_one(b, i) != 0)
        break;
    } else {
      idle++;
    }
  }
}

void bench_answered(bench_t *b, size_t i, uint64_t seq, int ok) {
  if (i >= b->n || seq >= b->senders[i].next_seq) {
    b->strays++;
    return;
  }
  bench_sender_t *s = &b->senders[i];
  uint8_t *f = flag_slot(s, seq);
  if (*f & BENCH_F_ACCEPTED)
    return; /* answered twice: not ours to judge, the window is right */
  s->inflight--;
  if (ok) {
    *f |= BENCH_F_ACCEPTED;
    b->accepted++;
    if (!(*f & BENCH_F_DELIVERED))
      b->outstanding++;
  } else {
    b->errors++;
  }
  if (b->rate <= 0)
    bench_pump_one(b, i);
}

void bench_received(bench_t *b, size_t j, const uint8_t *payload, size_t len) {
  uint64_t now = bench_now_ns();
  if (len < BENCH_HDR_BYTES ||
      bench_get32(payload + BENCH_HDR_NONCE) != b->nonce ||
      bench_get32(payload + BENCH_HDR_SENDER) != j || j >= b->n) {
    b->strays++;
    return;
  }
  bench_sender_t *s = &b->senders[j];
  uint64_t seq = bench_get64(payload + BENCH_HDR_SEQ);
  if (seq >= s->next_seq) {
    b->strays++;
    return;
  }
  uint8_t *f = flag_slot(s, seq);
  if (*f & BENCH_F_DELIVERED) {
    b->duplicates++;
    return;
  }
  *f |= BENCH_F_DELIVERED;
  b->delivered++;
  if (*f & BENCH_F_ACCEPTED)
    b->outstanding--;
  if (now >= b->meas_t0 && now < b->meas_t1) {
    b->meas_delivered++;
    uint64_t sent = bench_get64(payload + BENCH_HDR_TIME);
    uint64_t us = now > sent ? (now - sent) / 1000 : 0;
    if (b->nlat == b->caplat) {
      size_t cap = b->caplat ? 2 * b->caplat : 65536;
      uint32_t *l = realloc(b->lat_us, cap * sizeof *l);
      if (!l)
        return;
      b->lat_us = l;
      b->caplat = cap;
    }
    b->lat_us[b->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  }
}

/* --- phases ------------------------------------------------------------------
 */

typedef struct phase_result {
  double delivered_per_s;
  double p50_ms, p99_ms;
  double rate; /* the pace asked for; 0: unlimited */
  int drained;
} phase_result_t;

typedef struct phase {
  bench_t *b;
  uv_timer_t tick;
  uint64_t stop_at, drain_until;
  int drained;
  uint64_t next_progress, last_sent, last_accepted, last_delivered;
} phase_t;

static int verbose;

/* -v: a line a second on stderr. */
static void progress(phase_t *ph, uint64_t now) {
  bench_t *b = ph->b;
  if (!verbose || now < ph->next_progress)
    return;
  ph->next_progress = now + 1000000000u;
  fprintf(stderr,
          "synod-bench: %s t=%.0f sent/s=%" PRIu64 " accepted/s=%" PRIu64
          " delivered/s=%" PRIu64 " outstanding=%" PRIu64 "\n",
          b->drv->name, (double)(now - b->phase_t0) / 1e9,
          b->sent - ph->last_sent, b->accepted - ph->last_accepted,
          b->delivered - ph->last_delivered, b->outstanding);
  ph->last_sent = b->sent;
  ph->last_accepted = b->accepted;
  ph->last_delivered = b->delivered;
}

static int all_answered(const bench_t *b) {
  for (size_t i = 0; i < b->n; i++)
    if (b->senders[i].inflight)
      return 0;
  return 1;
}

static void tick_cb(uv_timer_t *t) {
  phase_t *ph = t->data;
  bench_t *b = ph->b;
  uint64_t now = bench_now_ns();
  progress(ph, now);
  if (b->sending && now >= ph->stop_at)
    b->sending = 0;
  if (b->sending) {
    pump_all(b);
    return;
  }
  if (all_answered(b) && b->outstanding == 0) {
    ph->drained = 1;
    uv_timer_stop(t);
  } else if (now >= ph->drain_until) {
    uv_timer_stop(t);
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_ms(const uint32_t *v, size_t n, double q) {
  if (n == 0)
    return 0;
  size_t k = (size_t)(q * (double)(n - 1) + 0.5);
  return v[k] / 1000.0;
}

/* Runs one load phase: warmup, measurement, then no new sends until every
 * accepted message is delivered or drain_s passed. */
static void run_phase(bench_t *b, double rate, double warmup_s, double dur_s,
                      double drain_s, phase_result_t *r) {
  phase_t ph = {.b = b,
                .last_sent = b->sent,
                .last_accepted = b->accepted,
                .last_delivered = b->delivered};
  b->rate = rate;
  b->phase_sent = 0;
  b->meas_delivered = 0;
  b->nlat = 0;
  b->rr = 0;
  b->phase_t0 = bench_now_ns();
  b->meas_t0 = b->phase_t0 + (uint64_t)(warmup_s * 1e9);
  b->meas_t1 = b->meas_t0 + (uint64_t)(dur_s * 1e9);
  ph.stop_at = b->meas_t1;
  ph.drain_until = b->meas_t1 + (uint64_t)(drain_s * 1e9);
  b->sending = 1;
  uv_timer_init(b->loop, &ph.tick);
  ph.tick.data = &ph;
  uv_timer_start(&ph.tick, tick_cb, 1, 1);
  pump_all(b);
  while (uv_is_active((uv_handle_t *)&ph.tick))
    uv_run(b->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&ph.tick, NULL);
  uv_run(b->loop, UV_RUN_NOWAIT);
  qsort(b->lat_us, b->nlat, sizeof *b->lat_us, cmp_u32);
  r->delivered_per_s = (double)b->meas_delivered / dur_s;
  r->p50_ms = percentile_ms(b->lat_us, b->nlat, 0.50);
  r->p99_ms = percentile_ms(b->lat_us, b->nlat, 0.99);
  r->rate = rate;
  r->drained = ph.drained;
}

/* --- a whole measurement of one system
 * ------------------------------------------ */

typedef struct run_opts {
  size_t n;
  unsigned window;
  size_t size;
  double warmup_s, dur_s, drain_s;
} run_opts_t;

typedef struct system_result {
  int ok;
  phase_result_t full, half;
  uint64_t sent, accepted, delivered, lost, duplicates, strays, errors;
} system_result_t;

static uint64_t count_lost(const bench_t *b) {
  uint64_t lost = 0;
  for (size_t i = 0; i < b->n; i++) {
    const bench_sender_t *s = &b->senders[i];
    for (uint64_t q = 0; q < s->next_seq; q++)
      if ((s->flags[q] & (BENCH_F_ACCEPTED | BENCH_F_DELIVERED)) ==
          BENCH_F_ACCEPTED)
        lost++;
  }
  return lost;
}

static void run_system(uv_loop_t *loop, bench_driver_t *drv,
                       const run_opts_t *o, system_result_t *res) {
  memset(res, 0, sizeof *res);
  bench_t b = {0};
  b.loop = loop;
  b.n = o->n;
  b.window = o->window;
  b.msg_bytes = o->size;
  b.drv = drv;
  b.senders = calloc(o->n, sizeof *b.senders);
  b.payload = calloc(1, o->size);
  if (!b.senders || !b.payload ||
      synod_random((uint8_t *)&b.nonce, sizeof b.nonce) != 0 ||
      synod_random(b.payload, o->size) != 0) {
    fprintf(stderr, "synod-bench: cannot set up %s\n", drv->name);
    goto out;
  }
  uint64_t t = bench_now_ns();
  int rc = drv->setup(&b);
  if (rc != 0) {
    fprintf(stderr, "synod-bench: %s: setup failed (%d)\n", drv->name, rc);
    drv->teardown(&b);
    goto out;
  }
  fprintf(stderr,
          "synod-bench: %s: %zu senders and %zu receivers up in %.1f s\n",
          drv->name, b.n, b.n, (double)(bench_now_ns() - t) / 1e9);
  run_phase(&b, 0, o->warmup_s, o->dur_s, o->drain_s, &res->full);
  fprintf(stderr, "synod-bench: %s: full load %.0f msg/s\n", drv->name,
          res->full.delivered_per_s);
  run_phase(&b, res->full.delivered_per_s / 2, o->warmup_s, o->dur_s,
            o->drain_s, &res->half);
  drv->teardown(&b);
  res->ok = 1;
  res->sent = b.sent;
  res->accepted = b.accepted;
  res->delivered = b.delivered;
  res->lost = count_lost(&b);
  res->duplicates = b.duplicates;
  res->strays = b.strays;
  res->errors = b.errors;
out:
  for (size_t i = 0; b.senders && i < b.n; i++)
    free(b.senders[i].flags);
  free(b.senders);
  free(b.payload);
  free(b.lat_us);
}

/* --- report ------------------------------------------------------------------
 */

/* VmHWM of pid in KiB, or -1. */
static long peak_rss_kib(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

static void report(const char *name, const system_result_t *r) {
  if (!r->ok) {
    printf("%s: failed\n", name);
    return;
  }
  printf("%s: sent=%" PRIu64 " accepted=%" PRIu64 " delivered=%" PRIu64
         " lost=%" PRIu64 " duplicates=%" PRIu64 " errors=%" PRIu64
         " strays=%" PRIu64 "\n",
         name, r->sent, r->accepted, r->delivered, r->lost, r->duplicates,
         r->errors, r->strays);
  printf("%s: full load: delivered/s=%.0f p50_ms=%.2f p99_ms=%.2f%s\n", name,
         r->full.delivered_per_s, r->full.p50_ms, r->full.p99_ms,
         r->full.drained ? "" : " (not drained)");
  printf(
      "%s: half load: rate=%.0f delivered/s=%.0f p50_ms=%.2f p99_ms=%.2f%s\n",
      name, r->half.rate, r->half.delivered_per_s, r->half.p50_ms,
      r->half.p99_ms, r->half.drained ? "" : " (not drained)");
}

static void print_rss(const char *name, const char *what, long pid) {
  if (pid > 0)
    printf("%s: peak RSS %s=%ld KiB\n", name, what, peak_rss_kib(pid));
}

/* --- options
 * ------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "usage: synod-bench [options]\n"
          "  -n N            sender sessions, and as many recipients (32)\n"
          "  -w W            unanswered sends per sender (64)\n"
          "  -s BYTES        ciphertext / payload bytes per message (256)\n"
          "  -v              progress on stderr, a line a second\n"
          "  --warmup S      seconds before measuring, per phase (2)\n"
          "  --duration S    measured seconds per phase (8)\n"
          "  --drain S       most seconds to wait for stragglers (30)\n"
          "  --relay-a NAME:PORT:KEYLINE:USERS   senders' relay; USERS is a\n"
          "  --relay-b NAME:PORT:KEYLINE:USERS   file of 'name code' lines\n"
          "  --pid-a PID --pid-b PID             relays, for peak RSS\n"
          "  --mqtt-port PORT --pid-mqtt PID     the mosquitto broker\n"
          "Runs synod (if --relay-a/-b are given), then mosquitto (if\n"
          "--mqtt-port is given): full load, then half of it.\n"
          "Exit status 1 when a message was lost or duplicated.\n");
}

/* NAME:PORT:KEYLINE:USERS; the key line holds a space, not a colon. */
static int parse_relay(char *arg, const char **name, uint16_t *port,
                       uint8_t key[32], const char **users) {
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
  if (*end || p <= 0 || p > 65535)
    return -1;
  *name = f[0];
  *port = (uint16_t)p;
  *users = f[3];
  return synod_keyfile_parse_public(key, SYNOD_KEY_ED25519, f[2], strlen(f[2]));
}

int main(int argc, char **argv) {
  enum { O_WARMUP = 256, O_DUR, O_DRAIN, O_A, O_B, O_PA, O_PB, O_MP, O_PM };
  static const struct option longopts[] = {
      {"warmup", required_argument, NULL, O_WARMUP},
      {"duration", required_argument, NULL, O_DUR},
      {"drain", required_argument, NULL, O_DRAIN},
      {"relay-a", required_argument, NULL, O_A},
      {"relay-b", required_argument, NULL, O_B},
      {"pid-a", required_argument, NULL, O_PA},
      {"pid-b", required_argument, NULL, O_PB},
      {"mqtt-port", required_argument, NULL, O_MP},
      {"pid-mqtt", required_argument, NULL, O_PM},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  run_opts_t o = {.n = 32,
                  .window = 64,
                  .size = 256,
                  .warmup_s = 2,
                  .dur_s = 8,
                  .drain_s = 30};
  bench_synod_conf_t sc = {.host = "127.0.0.1"};
  bench_mqtt_conf_t mc = {.host = "127.0.0.1", .qos = 1};
  long pid_a = 0, pid_b = 0, pid_m = 0;
  int have_a = 0, have_b = 0, c;
  while ((c = getopt_long(argc, argv, "n:w:s:vh", longopts, NULL)) != -1) {
    switch (c) {
    case 'n':
      o.n = strtoul(optarg, NULL, 10);
      break;
    case 'w':
      o.window = (unsigned)strtoul(optarg, NULL, 10);
      break;
    case 's':
      o.size = strtoul(optarg, NULL, 10);
      break;
    case O_WARMUP:
      o.warmup_s = strtod(optarg, NULL);
      break;
    case O_DUR:
      o.dur_s = strtod(optarg, NULL);
      break;
    case O_DRAIN:
      o.drain_s = strtod(optarg, NULL);
      break;
    case O_A:
    case O_B: {
      int a = c == O_A;
      if (parse_relay(optarg, a ? &sc.relay_a : &sc.relay_b,
                      a ? &sc.port_a : &sc.port_b, a ? sc.key_a : sc.key_b,
                      a ? &sc.users_a : &sc.users_b) != 0) {
        fprintf(stderr, "synod-bench: bad --relay-%c\n", a ? 'a' : 'b');
        return 2;
      }
      *(a ? &have_a : &have_b) = 1;
      break;
    }
    case O_PA:
      pid_a = strtol(optarg, NULL, 10);
      break;
    case O_PB:
      pid_b = strtol(optarg, NULL, 10);
      break;
    case O_MP:
      mc.port = (uint16_t)strtoul(optarg, NULL, 10);
      break;
    case O_PM:
      pid_m = strtol(optarg, NULL, 10);
      break;
    case 'v':
      verbose = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (o.n == 0 || o.n > 4096 || o.window == 0 || o.size < BENCH_HDR_BYTES ||
      o.dur_s <= 0 || o.warmup_s < 0 || (have_a != have_b) ||
      (!have_a && !mc.port)) {
    usage(stderr);
    return 2;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  system_result_t syn = {0}, mq = {0};
  if (have_a) {
    bench_driver_t d;
    if (bench_synod_driver(&d, &sc) == 0)
      run_system(&loop, &d, &o, &syn);
  }
  if (mc.port) {
    bench_driver_t d;
    if (bench_mqtt_driver(&d, &mc) == 0)
      run_system(&loop, &d, &o, &mq);
  }

  printf("config: n=%zu window=%u size=%zu warmup_s=%.0f duration_s=%.0f\n",
         o.n, o.window, o.size, o.warmup_s, o.dur_s);
  if (have_a) {
    report("synod", &syn);
    print_rss("synod", "relay A", pid_a);
    print_rss("synod", "relay B", pid_b);
  }
  if (mc.port) {
    report("mosquitto", &mq);
    print_rss("mosquitto", "broker", pid_m);
  }
  if (have_a && mc.port && syn.ok && mq.ok && mq.full.delivered_per_s > 0)
    printf("ratio=%.2f (synod/mosquitto, delivered/s at full load)\n",
           syn.full.delivered_per_s / mq.full.delivered_per_s);
  uv_run(&loop, UV_RUN_NOWAIT);
  if (uv_loop_close(&loop) != 0)
    fprintf(stderr, "synod-bench: handles left open\n");
  int bad = (have_a && (!syn.ok || syn.lost || syn.duplicates)) ||
            (mc.port && (!mq.ok || mq.lost || mq.duplicates));
  return bad ? 1 : 0;
}
