/* A relay connection driven by hand (rawtls.h). */
#include "rawtls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "synod/err.h"
#include "synod/wire.h"

int64_t raw_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int raw_tcp(raw_t *r, uint16_t port, int rcvbuf) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  if (synod_frame_decoder_init(&r->dec, SYNOD_FRAME_HARD_MAX) != 0)
    return SYNOD_EINVAL;
  r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0)
    return SYNOD_EIO;
  if (rcvbuf > 0)
    (void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(r->fd, (const struct sockaddr *)&sa, sizeof sa) != 0)
    return SYNOD_EIO;
  return 0;
}

void raw_free(raw_t *r) {
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
  synod_handshake_free(r->hs);
  synod_tls_free(r->tls);
  synod_tls_ctx_free(r->ctx);
  synod_frame_decoder_free(&r->dec);
  r->hs = NULL;
  r->tls = NULL;
  r->ctx = NULL;
}

int raw_send_all(raw_t *r, const uint8_t *p, size_t n, int64_t until) {
  while (n > 0) {
    ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = until - raw_now_ms();
      if (left <= 0)
        return SYNOD_ETIMEDOUT;
      struct pollfd pf = {.fd = r->fd, .events = POLLOUT};
      (void)poll(&pf, 1, (int)left);
      continue;
    }
    return SYNOD_ECLOSED;
  }
  return 0;
}

/* Sends the ciphertext the engine has ready. */
static int raw_flush(raw_t *r) {
  uint8_t buf[16384];
  while (synod_tls_pending(r->tls) > 0) {
    size_t n = 0;
    if (synod_tls_take(r->tls, buf, sizeof buf, &n) != 0)
      return SYNOD_ETLS;
    if (n == 0)
      break;
    int rc = raw_send_all(r, buf, n, raw_now_ms() + RAW_SEND_MS);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int raw_recv(raw_t *r, int64_t until) {
  for (;;) {
    int64_t left = until - raw_now_ms();
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    int n = poll(&p, 1, left > 0 ? (int)left : 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return SYNOD_ETIMEDOUT;
    uint8_t buf[16384];
    ssize_t got = recv(r->fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      r->eof = 1;
      return SYNOD_ECLOSED;
    }
    if (r->tls && synod_tls_feed(r->tls, buf, (size_t)got) != 0)
      return SYNOD_ETLS;
    return 0;
  }
}

int raw_tls(raw_t *r, uint16_t port, int rcvbuf) {
  int rc = raw_tcp(r, port, rcvbuf);
  if (rc == 0)
    rc = synod_tls_ctx_new_client(&r->ctx, NULL);
  if (rc == 0)
    rc = synod_tls_new(&r->tls, r->ctx);
  int64_t until = raw_now_ms() + RAW_SEND_MS;
  while (rc == 0) {
    int h = synod_tls_handshake(r->tls);
    rc = raw_flush(r);
    if (h < 0)
      return h;
    if (rc != 0 || h == 1)
      break;
    rc = raw_recv(r, until);
  }
  return rc;
}

int raw_write(raw_t *r, const uint8_t *data, size_t len) {
  int rc = synod_tls_write(r->tls, data, len);
  return rc != 0 ? rc : raw_flush(r);
}

int raw_send_frame(raw_t *r, const Synod__V1__Frame *f) {
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = synod_wire_pack(f, SYNOD_FRAME_HARD_MAX, &buf, &len);
  if (rc == 0)
    rc = raw_write(r, buf, len);
  free(buf);
  return rc;
}

int raw_frame(raw_t *r, Synod__V1__Frame **out, int ms) {
  *out = NULL;
  int64_t until = raw_now_ms() + ms;
  for (;;) {
    while (r->ptoff < r->ptlen) {
      size_t used = 0, blen = 0;
      uint8_t *body = NULL;
      int d = synod_frame_decoder_feed(
          &r->dec, r->pt + r->ptoff, r->ptlen - r->ptoff, &used, &body, &blen);
      if (d < 0)
        return d;
      r->ptoff += used;
      if (d == 1) {
        int rc = synod_wire_unpack(body, blen, out);
        free(body);
        return rc;
      }
    }
    r->ptoff = r->ptlen = 0;
    size_t n = 0;
    int rc = synod_tls_read(r->tls, r->pt, sizeof r->pt, &n);
    if (rc == SYNOD_ECLOSED)
      r->eof = 1;
    if (rc != 0)
      return rc;
    if (n > 0) {
      r->ptlen = n;
      continue;
    }
    if (r->eof)
      return SYNOD_ECLOSED;
    rc = raw_recv(r, until);
    if (rc != 0 && rc != SYNOD_ECLOSED)
      return rc; /* at EOF, read what was fed before it once more */
  }
}

int raw_hs_flush(raw_t *r) {
  uint8_t *buf;
  size_t len;
  int rc = 0;
  while (rc == 0 && synod_handshake_take(r->hs, &buf, &len) == 1) {
    rc = raw_write(r, buf, len);
    free(buf);
  }
  return rc;
}
