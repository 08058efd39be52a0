/*
 * soak-proxy: the federation-link fault injector of the soak
 * (tests/soak/README.md). A small TCP relay on one libuv loop, one route
 * per target port: it listens on a fresh loopback port, and every
 * connection it accepts is joined to a new connection to 127.0.0.1:target,
 * bytes copied both ways. The soak points each relay's peer addresses at
 * these routes, so every federation connection crosses the proxy.
 *
 *   soak-proxy SEED TARGET_PORT...
 *
 * Once every route listens it prints "ready PORT..." (one listening port
 * per target, in order) on stdout. Then it reads commands on stdin, one a
 * line, route numbered from 0 in argument order:
 *
 *   cut R          closes every connection of route R now
 *   block R MS     cuts, and for MS milliseconds closes every connection
 *                  it accepts on route R at once
 *   delay R MS     holds every chunk forwarded on route R for MS
 *                  milliseconds before writing it (0: none), order kept
 *   truncate R     on every connection of route R, the next chunk read in
 *                  either direction is forwarded only in part (a random
 *                  prefix, at least one byte short), then both sides are
 *                  closed: a TLS record, hence a frame, cut in the middle
 *   clear          no delay, no block, nothing armed, on every route
 *
 * At the end of stdin it closes everything, prints one line of counts per
 * route ("route R accepted N cut N blocked N truncated N delayed N") on
 * stdout and exits 0. A line it cannot read is an error on stderr, exit 2.
 * Loopback only; the soak starts and ends it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define MAX_ROUTES 32
#define CMD_MAX    256

typedef struct pair pair_t;

typedef struct route {
  int index;
  uv_tcp_t listener;
  int target;
  uint64_t delay_ms;
  uint64_t blocked_until; /* uv_now() */
  pair_t *pairs;
  /* counts */
  unsigned accepted, cut, blocked, truncated, delayed;
} route_t;

/* A chunk waiting for its delay, in one direction of a pair. */
typedef struct chunk {
  struct chunk *next;
  uint64_t due;
  int to_up; /* 1: towards the target */
  int last;  /* close the pair once written */
  size_t len;
  char data[];
} chunk_t;

struct pair {
  route_t *route;
  pair_t *next, *prev;
  uv_tcp_t down; /* accepted, from the dialling relay */
  uv_tcp_t up;   /* to the target */
  uv_timer_t timer;
  uv_connect_t connect;
  chunk_t *head, *tail;
  int open_handles; /* freed when 0 and no write is pending */
  int writes;
  int closing;
  int truncate; /* armed: the next chunk read is cut short */
};

typedef struct write_req {
  uv_write_t req;
  pair_t *pair;
  int last;
  char data[];
} write_req_t;

static uv_loop_t *loop;
static route_t routes[MAX_ROUTES];
static int nroutes;
static uint64_t rng;
static uv_pipe_t in;
static char line[CMD_MAX];
static size_t linelen;
static int bad;

static uint64_t next_random(void) {
  /* xorshift64*: plenty for choosing where to cut. */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ULL;
}

/* --- pairs ---------------------------------------------------------------- */

static void pair_maybe_free(pair_t *p) {
  if (p->open_handles > 0 || p->writes > 0)
    return;
  chunk_t *c = p->head;
  while (c) {
    chunk_t *n = c->next;
    free(c);
    c = n;
  }
  free(p);
}

static void on_handle_closed(uv_handle_t *h) {
  pair_t *p = h->data;
  p->open_handles--;
  pair_maybe_free(p);
}

static void pair_close(pair_t *p) {
  if (p->closing)
    return;
  p->closing = 1;
  route_t *r = p->route;
  if (p->prev)
    p->prev->next = p->next;
  else
    r->pairs = p->next;
  if (p->next)
    p->next->prev = p->prev;
  p->next = p->prev = NULL;
  uv_close((uv_handle_t *)&p->down, on_handle_closed);
  uv_close((uv_handle_t *)&p->up, on_handle_closed);
  uv_close((uv_handle_t *)&p->timer, on_handle_closed);
}

static void on_written(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  pair_t *p = w->pair;
  p->writes--;
  if ((status != 0 || w->last) && !p->closing)
    pair_close(p);
  free(w);
  pair_maybe_free(p);
}

/* Writes len bytes of data towards up or down. */
static void pair_write(pair_t *p, int to_up, const char *data, size_t len,
                       int last) {
  if (p->closing)
    return;
  write_req_t *w = malloc(sizeof *w + len);
  if (!w) {
    pair_close(p);
    return;
  }
  memcpy(w->data, data, len);
  w->pair = p;
  w->last = last;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  uv_stream_t *s = (uv_stream_t *)(to_up ? &p->up : &p->down);
  if (uv_write(&w->req, s, &b, 1, on_written) != 0) {
    free(w);
    pair_close(p);
    return;
  }
  p->writes++;
}

static void flush_due(pair_t *p);

static void on_timer(uv_timer_t *t) {
  flush_due(t->data);
}

/* Writes the queued chunks that are due, in order; re-arms for the next. */
static void flush_due(pair_t *p) {
  uint64_t now = uv_now(loop);
  while (p->head && !p->closing && p->head->due <= now) {
    chunk_t *c = p->head;
    p->head = c->next;
    if (!p->head)
      p->tail = NULL;
    pair_write(p, c->to_up, c->data, c->len, c->last);
    free(c);
  }
  if (p->head && !p->closing)
    uv_timer_start(&p->timer, on_timer, p->head->due - now, 0);
}

static void forward(pair_t *p, int to_up, const char *data, size_t len) {
  route_t *r = p->route;
  int last = 0;
  if (p->truncate && len >= 2) {
    len = 1 + (size_t)(next_random() % (len - 1));
    last = 1;
    p->truncate = 0;
    r->truncated++;
  }
  if (r->delay_ms == 0 && !p->head) {
    pair_write(p, to_up, data, len, last);
    return;
  }
  chunk_t *c = malloc(sizeof *c + len);
  if (!c) {
    pair_close(p);
    return;
  }
  c->next = NULL;
  c->due = uv_now(loop) + r->delay_ms;
  c->to_up = to_up;
  c->last = last;
  c->len = len;
  memcpy(c->data, data, len);
  /* Order is kept: a chunk is never due before the one ahead of it. */
  if (p->tail && c->due < p->tail->due)
    c->due = p->tail->due;
  if (p->tail)
    p->tail->next = c;
  else
    p->head = c;
  p->tail = c;
  r->delayed++;
  if (p->head == c)
    uv_timer_start(&p->timer, on_timer, r->delay_ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  pair_t *p = s->data;
  if (n > 0 && !p->closing)
    forward(p, s == (uv_stream_t *)&p->down, buf->base, (size_t)n);
  else if (n < 0 && !p->closing) {
    /* One side ended: so does the other, after what is queued for it. A
     * relay's connection has no half-close. */
    if (p->head)
      p->tail->last = 1;
    else
      pair_close(p);
  }
  free(buf->base);
}

static void on_connected(uv_connect_t *req, int status) {
  pair_t *p = req->data;
  if (p->closing)
    return;
  if (status != 0 ||
      uv_read_start((uv_stream_t *)&p->down, on_alloc, on_read) != 0 ||
      uv_read_start((uv_stream_t *)&p->up, on_alloc, on_read) != 0)
    pair_close(p);
}

static void on_accept(uv_stream_t *server, int status) {
  route_t *r = server->data;
  if (status != 0)
    return;
  pair_t *p = calloc(1, sizeof *p);
  if (!p)
    return;
  p->route = r;
  uv_tcp_init(loop, &p->down);
  uv_tcp_init(loop, &p->up);
  uv_timer_init(loop, &p->timer);
  p->down.data = p->up.data = p->timer.data = p;
  p->connect.data = p;
  p->open_handles = 3;
  p->next = r->pairs;
  if (r->pairs)
    r->pairs->prev = p;
  r->pairs = p;
  if (uv_accept(server, (uv_stream_t *)&p->down) != 0) {
    pair_close(p);
    return;
  }
  r->accepted++;
  if (uv_now(loop) < r->blocked_until) {
    r->blocked++;
    pair_close(p);
    return;
  }
  struct sockaddr_in sin;
  uv_ip4_addr("127.0.0.1", r->target, &sin);
  if (uv_tcp_connect(&p->connect, &p->up, (const struct sockaddr *)&sin,
                     on_connected) != 0)
    pair_close(p);
}

/* --- commands ------------------------------------------------------------- */

static void cut_all(route_t *r) {
  while (r->pairs) {
    r->cut++;
    pair_close(r->pairs);
  }
}

static void print_counts(void) {
  for (int i = 0; i < nroutes; i++) {
    route_t *r = &routes[i];
    printf("route %d accepted %u cut %u blocked %u truncated %u delayed %u\n",
           i, r->accepted, r->cut, r->blocked, r->truncated, r->delayed);
  }
  fflush(stdout);
}

static void on_listener_closed(uv_handle_t *h) {
  (void)h;
}

static void shutdown_all(void) {
  uv_close((uv_handle_t *)&in, NULL);
  for (int i = 0; i < nroutes; i++) {
    cut_all(&routes[i]);
    uv_close((uv_handle_t *)&routes[i].listener, on_listener_closed);
  }
}

static route_t *route_arg(const char *s) {
  char *end;
  errno = 0;
  long i = strtol(s, &end, 10);
  if (errno || end == s || *end || i < 0 || i >= nroutes)
    return NULL;
  return &routes[i];
}

static void command(char *text) {
  char *words[4] = {0};
  int n = 0;
  char *save = NULL;
  for (char *t = strtok_r(text, " \t\r", &save); t && n < 4;
       t = strtok_r(NULL, " \t\r", &save))
    words[n++] = t;
  if (n == 0)
    return;
  route_t *r = n >= 2 ? route_arg(words[1]) : NULL;
  long ms = -1;
  if (n >= 3) {
    char *end;
    ms = strtol(words[2], &end, 10);
    if (*end || ms < 0)
      ms = -1;
  }
  if (strcmp(words[0], "clear") == 0 && n == 1) {
    for (int i = 0; i < nroutes; i++) {
      routes[i].delay_ms = 0;
      routes[i].blocked_until = 0;
      for (pair_t *p = routes[i].pairs; p; p = p->next)
        p->truncate = 0;
    }
  } else if (strcmp(words[0], "cut") == 0 && r && n == 2) {
    cut_all(r);
  } else if (strcmp(words[0], "block") == 0 && r && n == 3 && ms >= 0) {
    r->blocked_until = uv_now(loop) + (uint64_t)ms;
    cut_all(r);
  } else if (strcmp(words[0], "delay") == 0 && r && n == 3 && ms >= 0) {
    r->delay_ms = (uint64_t)ms;
  } else if (strcmp(words[0], "truncate") == 0 && r && n == 2) {
    for (pair_t *p = r->pairs; p; p = p->next)
      p->truncate = 1;
  } else {
    fprintf(stderr, "soak-proxy: cannot read command '%s'\n", words[0]);
    bad = 1;
  }
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf->base[i];
    if (ch == '\n' || linelen == CMD_MAX - 1) {
      line[linelen] = '\0';
      command(line);
      linelen = 0;
    } else {
      line[linelen++] = ch;
    }
  }
  free(buf->base);
  if (n < 0)
    shutdown_all();
}

int main(int argc, char **argv) {
  if (argc < 3 || argc - 2 > MAX_ROUTES) {
    fprintf(stderr, "usage: soak-proxy SEED TARGET_PORT... (at most %d)\n",
            MAX_ROUTES);
    return 2;
  }
  rng = strtoull(argv[1], NULL, 10) * 2654435761ULL + 0x9e3779b97f4a7c15ULL;
  loop = uv_default_loop();
  printf("ready");
  for (int i = 2; i < argc; i++) {
    route_t *r = &routes[nroutes];
    r->index = nroutes;
    r->target = atoi(argv[i]);
    if (r->target <= 0 || r->target > 65535) {
      fprintf(stderr, "soak-proxy: bad port %s\n", argv[i]);
      return 2;
    }
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(loop, &r->listener);
    r->listener.data = r;
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (uv_tcp_bind(&r->listener, (const struct sockaddr *)&sin, 0) != 0 ||
        uv_listen((uv_stream_t *)&r->listener, 64, on_accept) != 0 ||
        uv_tcp_getsockname(&r->listener, (struct sockaddr *)&bound, &blen) !=
            0) {
      fprintf(stderr, "soak-proxy: cannot listen on loopback\n");
      return 2;
    }
    printf(" %d", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    nroutes++;
  }
  printf("\n");
  fflush(stdout);
  uv_pipe_init(loop, &in, 0);
  if (uv_pipe_open(&in, 0) != 0 ||
      uv_read_start((uv_stream_t *)&in, on_alloc, on_stdin) != 0) {
    fprintf(stderr, "soak-proxy: cannot read stdin\n");
    return 2;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  print_counts();
  uv_loop_close(loop);
  return bad ? 2 : 0;
}
