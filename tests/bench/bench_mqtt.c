/*
 * The mosquitto driver of synod-bench: publisher i publishes at QoS 1 to
 * topic bench/<i>, to which subscriber i alone subscribed at QoS 1 (a
 * persistent session: clean_session false). A publish is answered by the
 * broker's PUBACK; the window counts unacknowledged publishes, as the
 * synod driver counts unanswered submits.
 *
 * libmosquitto runs on bench's libuv loop, without its own thread: the
 * socket is polled with uv_poll_t and handed to mosquitto_loop_read() /
 * mosquitto_loop_write(), and mosquitto_loop_misc() runs on a timer for
 * keep-alives ("use these functions ... if you wish to use mosquitto in
 * your own event loop", mosquitto.h, mosquitto_loop_read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "bench.h"
#include "synod/err.h"

#define SETUP_MS  30000
#define MID_SLOTS 65536 /* mids are 16 bits */

typedef struct mdrv mdrv_t;

typedef struct mclient {
  mdrv_t *d;
  size_t idx;
  int publisher;
  struct mosquitto *m;
  uv_poll_t poll;
  int polling, events;
  int connected, subscribed;
  char topic[32];
  uint64_t *mid_seq; /* publisher: seq of each mid in flight */
} mclient_t;

struct mdrv {
  bench_mqtt_conf_t conf;
  bench_t *b;
  mclient_t *cl; /* publishers [0, n), subscribers [n, 2n) */
  size_t ncl, nconnected, nsubscribed;
  int failed, closing;
  uv_timer_t misc;
  uint64_t deadline;
};

static void update_poll(mclient_t *c);

/* --- libmosquitto callbacks
 * ------------------------------------------------------- */

static void on_connect(struct mosquitto *m, void *obj, int rc) {
  mclient_t *c = obj;
  if (rc != 0) {
    fprintf(stderr, "synod-bench: mqtt connect refused: %s\n",
            mosquitto_connack_string(rc));
    c->d->failed = 1;
    return;
  }
  c->connected = 1;
  c->d->nconnected++;
  if (!c->publisher && mosquitto_subscribe(m, NULL, c->topic, c->d->conf.qos) !=
                           MOSQ_ERR_SUCCESS)
    c->d->failed = 1;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n,
                         const int *granted) {
  (void)m;
  (void)mid;
  mclient_t *c = obj;
  if (n < 1 || granted[0] != c->d->conf.qos) {
    fprintf(stderr, "synod-bench: mqtt subscription not granted at QoS %d\n",
            c->d->conf.qos);
    c->d->failed = 1;
    return;
  }
  c->subscribed = 1;
  c->d->nsubscribed++;
}

static void on_publish(struct mosquitto *m, void *obj, int mid) {
  (void)m;
  mclient_t *c = obj;
  bench_answered(c->d->b, c->idx, c->mid_seq[(unsigned)mid % MID_SLOTS], 1);
}

static void on_message(struct mosquitto *m, void *obj,
                       const struct mosquitto_message *msg) {
  (void)m;
  mclient_t *c = obj;
  bench_received(c->d->b, c->idx, msg->payload, (size_t)msg->payloadlen);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc) {
  (void)m;
  mclient_t *c = obj;
  if (!c->d->closing) {
    fprintf(stderr, "synod-bench: mqtt client %zu disconnected: %s\n", c->idx,
            mosquitto_strerror(rc));
    c->d->failed = 1;
  }
  c->connected = 0;
}

/* --- the loop
 * ------------------------------------------------------------------------ */

static void poll_cb(uv_poll_t *p, int status, int events) {
  mclient_t *c = p->data;
  int rc = MOSQ_ERR_SUCCESS;
  if (status < 0 || (events & UV_READABLE))
    rc = mosquitto_loop_read(c->m, 1);
  if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE))
    rc = mosquitto_loop_write(c->m, 1);
  if (rc != MOSQ_ERR_SUCCESS && !c->d->closing) {
    fprintf(stderr, "synod-bench: mqtt client %zu: %s\n", c->idx,
            mosquitto_strerror(rc));
    c->d->failed = 1;
  }
  update_poll(c);
}

/* Polls for writability only while libmosquitto has bytes queued. */
static void update_poll(mclient_t *c) {
  if (!c->polling)
    return;
  int ev = UV_READABLE | (mosquitto_want_write(c->m) ? UV_WRITABLE : 0);
  if (ev != c->events) {
    c->events = ev;
    uv_poll_start(&c->poll, ev, poll_cb);
  }
}

static void misc_cb(uv_timer_t *t) {
  mdrv_t *d = t->data;
  for (size_t k = 0; k < d->ncl; k++)
    if (d->cl[k].polling) {
      mosquitto_loop_misc(d->cl[k].m);
      update_poll(&d->cl[k]);
    }
}

/* --- driver
 * ------------------------------------------------------------------------ */

static int send_msg(bench_t *b, size_t i, const uint8_t *payload, size_t len) {
  mdrv_t *d = b->drv->data;
  mclient_t *c = &d->cl[i];
  int mid = 0;
  int rc = mosquitto_publish(c->m, &mid, d->cl[b->n + i].topic, (int)len,
                             payload, d->conf.qos, false);
  if (rc != MOSQ_ERR_SUCCESS)
    return SYNOD_EIO;
  c->mid_seq[(unsigned)mid % MID_SLOTS] = bench_get64(payload + BENCH_HDR_SEQ);
  update_poll(c);
  return 0;
}

static int start_client(mdrv_t *d, mclient_t *c) {
  char id[48];
  snprintf(id, sizeof id, "bench-%s-%zu", c->publisher ? "pub" : "sub", c->idx);
  c->m = mosquitto_new(id, c->publisher, c);
  if (!c->m)
    return SYNOD_ENOMEM;
  mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
  /* QoS 1 messages in flight, per client (MQTT 3.1.1): the window. */
  mosquitto_max_inflight_messages_set(c->m, d->b->window);
  mosquitto_connect_callback_set(c->m, on_connect);
  mosquitto_disconnect_callback_set(c->m, on_disconnect);
  mosquitto_subscribe_callback_set(c->m, on_subscribe);
  mosquitto_publish_callback_set(c->m, on_publish);
  mosquitto_message_callback_set(c->m, on_message);
  if (c->publisher && !(c->mid_seq = calloc(MID_SLOTS, sizeof *c->mid_seq)))
    return SYNOD_ENOMEM;
  int rc = mosquitto_connect(c->m, d->conf.host, d->conf.port, 60);
  if (rc != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "synod-bench: mqtt connect to %s:%u: %s\n", d->conf.host,
            d->conf.port, mosquitto_strerror(rc));
    return SYNOD_EIO;
  }
  if (uv_poll_init_socket(d->b->loop, &c->poll, mosquitto_socket(c->m)) != 0)
    return SYNOD_EIO;
  c->poll.data = c;
  c->polling = 1;
  c->events = 0;
  update_poll(c);
  return 0;
}

static int setup(bench_t *b) {
  mdrv_t *d = b->drv->data;
  d->b = b;
  d->ncl = 2 * b->n;
  d->cl = calloc(d->ncl, sizeof *d->cl);
  if (!d->cl)
    return SYNOD_ENOMEM;
  uv_timer_init(b->loop, &d->misc);
  d->misc.data = d;
  uv_timer_start(&d->misc, misc_cb, 100, 100);
  int rc = 0;
  /* Subscribers first, so nothing is published to an empty topic. */
  for (size_t k = d->ncl; rc == 0 && k-- > 0;) {
    mclient_t *c = &d->cl[k];
    c->d = d;
    c->publisher = k < b->n;
    c->idx = k % b->n;
    snprintf(c->topic, sizeof c->topic, "bench/%zu", c->idx);
    rc = start_client(d, c);
  }
  if (rc != 0)
    return rc;
  uint64_t deadline = bench_now_ns() + (uint64_t)SETUP_MS * 1000000u;
  while ((d->nconnected < d->ncl || d->nsubscribed < b->n) && !d->failed &&
         bench_now_ns() < deadline)
    uv_run(b->loop, UV_RUN_ONCE);
  if (d->failed)
    return SYNOD_EIO;
  return d->nconnected < d->ncl || d->nsubscribed < b->n ? SYNOD_ETIMEDOUT : 0;
}

static void teardown(bench_t *b) {
  mdrv_t *d = b->drv->data;
  d->closing = 1;
  for (size_t k = 0; d->cl && k < d->ncl; k++) {
    mclient_t *c = &d->cl[k];
    if (c->m && c->connected) {
      mosquitto_disconnect(c->m);
      mosquitto_loop_write(c->m, 1);
    }
    if (c->polling)
      uv_close((uv_handle_t *)&c->poll, NULL);
    c->polling = 0;
  }
  if (d->cl)
    uv_close((uv_handle_t *)&d->misc, NULL);
  uv_run(b->loop, UV_RUN_NOWAIT);
  for (size_t k = 0; d->cl && k < d->ncl; k++) {
    mosquitto_destroy(d->cl[k].m);
    free(d->cl[k].mid_seq);
  }
  free(d->cl);
  free(d);
  mosquitto_lib_cleanup();
}

int bench_mqtt_driver(bench_driver_t *drv, const bench_mqtt_conf_t *conf) {
  if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
    return SYNOD_EIO;
  mdrv_t *d = calloc(1, sizeof *d);
  if (!d)
    return SYNOD_ENOMEM;
  d->conf = *conf;
  drv->name = "mosquitto";
  drv->setup = setup;
  drv->send = send_msg;
  drv->teardown = teardown;
  drv->data = d;
  return 0;
}
