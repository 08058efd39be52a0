/*
 * synod-bench: end-to-end load on loopback, one process, one libuv loop.
 *
 *   bench.c        options, the load phases (full, then half rate), the
 *                  bookkeeping of every message (accepted, delivered,
 *                  duplicated, lost), latency percentiles and the report
 *   bench_synod.c  the synod driver: N sender sessions on relay A, N
 *                  recipient sessions on relay B, over lib/'s synod_conn
 *   bench_mqtt.c   the mosquitto driver: N QoS 1 publishers and N
 *                  subscribers, libmosquitto polled on the same loop
 *
 * Sender i always writes to receiver i. Every message carries a payload
 * that begins with a header (bench_hdr_*): the sender's monotonic clock
 * at submit, the sender's index, the message's sequence number and the
 * run's nonce, so the receiver, in the same process, measures end-to-end
 * latency and spots duplicates and strays without a lookup table.
 */
#ifndef SYNOD_TESTS_BENCH_H
#define SYNOD_TESTS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Payload header: time(8) sender(4) seq(8) nonce(4), little-endian. */
#define BENCH_HDR_BYTES 24

typedef struct bench bench_t;

static inline void bench_put64(uint8_t *p, uint64_t v) {
  for (int k = 0; k < 8; k++)
    p[k] = (uint8_t)(v >> (8 * k));
}

static inline uint64_t bench_get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; k--)
    v = v << 8 | p[k];
  return v;
}

static inline void bench_put32(uint8_t *p, uint32_t v) {
  for (int k = 0; k < 4; k++)
    p[k] = (uint8_t)(v >> (8 * k));
}

static inline uint32_t bench_get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* Header fields at these offsets. */
#define BENCH_HDR_TIME   0
#define BENCH_HDR_SENDER 8
#define BENCH_HDR_SEQ    12
#define BENCH_HDR_NONCE  20

/* A driver: a system under test as the core sees it. */
typedef struct bench_driver {
  const char *name;
  /* Connects every sender and receiver and returns once all are ready
   * (running b's loop), or a negative code. */
  int (*setup)(bench_t *b);
  /* Sends payload[0..len) from sender i (borrowed for the call): 0, or
   * a negative code (the core counts it as an error, no retry). */
  int (*send)(bench_t *b, size_t i, const uint8_t *payload, size_t len);
  /* Closes every connection, running b's loop until they are closed. */
  void (*teardown)(bench_t *b);
  void *data; /* the driver's own */
} bench_driver_t;

/* Per-sender bookkeeping, owned by the core. */
typedef struct bench_sender {
  size_t inflight; /* sent, not yet answered */
  uint64_t next_seq;
  uint8_t *flags; /* per seq: BENCH_F_* */
  size_t cap;
} bench_sender_t;

struct bench {
  uv_loop_t *loop;
  size_t n;         /* senders, and as many receivers */
  unsigned window;  /* unanswered sends per sender */
  size_t msg_bytes; /* payload size, >= BENCH_HDR_BYTES */
  uint32_t nonce;
  bench_driver_t *drv;
  bench_sender_t *senders;
  uint8_t *payload; /* scratch payload of msg_bytes */
  /* the phase */
  int sending; /* 0: sends stop, in-flight ones still count */
  double rate; /* messages/s over all senders; 0: unlimited */
  uint64_t phase_t0, meas_t0, meas_t1; /* ns, monotonic */
  uint64_t phase_sent;
  size_t rr; /* round-robin start of the next paced pump */
  /* totals */
  uint64_t sent, accepted, delivered, duplicates, strays, errors;
  uint64_t outstanding; /* accepted, not delivered yet */
  uint64_t meas_delivered;
  uint32_t *lat_us; /* latencies of deliveries in the measurement window */
  size_t nlat, caplat;
};

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* For drivers: send number seq of sender i was answered (ok 1: accepted,
 * durably stored; 0: refused). */
void bench_answered(bench_t *b, size_t i, uint64_t seq, int ok);

/* For drivers: receiver j got payload[0..len). */
void bench_received(bench_t *b, size_t j, const uint8_t *payload, size_t len);

/* Sends what the window and the rate allow for sender i. */
void bench_pump_one(bench_t *b, size_t i);

/* Drivers (bench_synod.c, bench_mqtt.c). */
typedef struct bench_synod_conf {
  const char *host;
  uint16_t port_a, port_b;
  uint8_t key_a[32], key_b[32];
  const char *relay_a, *relay_b; /* relay names */
  const char *users_a, *users_b; /* files of "name code" lines */
} bench_synod_conf_t;

int bench_synod_driver(bench_driver_t *d, const bench_synod_conf_t *conf);

typedef struct bench_mqtt_conf {
  const char *host;
  uint16_t port;
  int qos;
} bench_mqtt_conf_t;

int bench_mqtt_driver(bench_driver_t *d, const bench_mqtt_conf_t *conf);

#endif
