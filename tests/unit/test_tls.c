/*
 * TLS engine: two engines back to back with no socket, bytes pumped by
 * hand. Clients that break the policy (TLS 1.2 only, wrong or missing
 * ALPN) are plain OpenSSL SSL objects over memory BIOs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"
#include "synod/tls.h"

/* One end of a pumped connection: a synod engine or a raw OpenSSL one. */
typedef struct end {
  synod_tls_t *t;
  SSL *raw;
  BIO *rin, *rout; /* raw only; owned by raw */
  int state;       /* 1 done, 0 in progress, <0 failed */
} end_t;

static void end_raw_init(end_t *e, SSL_CTX *c) {
  memset(e, 0, sizeof *e);
  e->raw = SSL_new(c);
  e->rin = BIO_new(BIO_s_mem());
  e->rout = BIO_new(BIO_s_mem());
  SSL_set_bio(e->raw, e->rin, e->rout);
  SSL_set_connect_state(e->raw);
}

static void end_step(end_t *e) {
  if (e->state != 0)
    return;
  if (e->t) {
    e->state = synod_tls_handshake(e->t);
    return;
  }
  ERR_clear_error();
  int r = SSL_do_handshake(e->raw);
  if (r == 1)
    e->state = 1;
  else if (SSL_get_error(e->raw, r) != SSL_ERROR_WANT_READ)
    e->state = -1;
  ERR_clear_error();
}

/* Moves pending ciphertext from a to b; returns the byte count. */
static size_t move(end_t *a, end_t *b) {
  uint8_t buf[4096];
  size_t total = 0, n;
  for (;;) {
    if (a->t) {
      CU_ASSERT_EQUAL_FATAL(synod_tls_take(a->t, buf, sizeof buf, &n), 0);
    } else if (!BIO_read_ex(a->rout, buf, sizeof buf, &n)) {
      n = 0;
    }
    if (n == 0)
      return total;
    total += n;
    if (b->t) {
      CU_ASSERT_EQUAL_FATAL(synod_tls_feed(b->t, buf, n), 0);
    } else {
      CU_ASSERT_FATAL(BIO_write(b->rin, buf, (int)n) == (int)n);
    }
  }
}

/* Runs both handshakes until a round moves no byte: with no new input,
 * another step could not change anything. */
static void pump(end_t *c, end_t *s) {
  for (int i = 0; i < 50; i++) {
    end_step(c);
    end_step(s);
    if (move(c, s) + move(s, c) == 0)
      return;
  }
  CU_FAIL("handshake did not settle");
}

static void end_free(end_t *e) {
  synod_tls_free(e->t);
  SSL_free(e->raw);
}

static synod_tls_ctx_t *server_ctx(void) {
  synod_tls_ctx_t *ctx = NULL;
  char reason[SYNOD_TLS_REASON_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_tls_ctx_new_server(&ctx, NULL, NULL, reason), 0);
  CU_ASSERT_STRING_EQUAL(reason, "");
  return ctx;
}

static synod_tls_ctx_t *client_ctx(void) {
  synod_tls_ctx_t *ctx = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_tls_ctx_new_client(&ctx, NULL), 0);
  return ctx;
}

/* Reads everything buffered in t into buf; returns the length. */
static size_t drain_plain(synod_tls_t *t, uint8_t *buf, size_t cap) {
  size_t have = 0, n;
  do {
    CU_ASSERT_EQUAL_FATAL(synod_tls_read(t, buf + have, cap - have, &n), 0);
    have += n;
  } while (n > 0 && have < cap);
  return have;
}

static void test_tls_back_to_back(void) {
  synod_tls_ctx_t *sctx = server_ctx(), *cctx = client_ctx();
  end_t c = {0}, s = {0};
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&c.t, cctx), 0);
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&s.t, sctx), 0);
  /* Engines keep their own reference on the context. */
  synod_tls_ctx_free(sctx);
  synod_tls_ctx_free(cctx);
  CU_ASSERT_EQUAL(synod_tls_is_server(s.t), 1);
  CU_ASSERT_EQUAL(synod_tls_is_server(c.t), 0);

  uint8_t x[SYNOD_TLS_EXPORTER_BYTES];
  CU_ASSERT_EQUAL(synod_tls_exporter(c.t, x), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_tls_write(c.t, (const uint8_t *)"x", 1), SYNOD_EAGAIN);

  pump(&c, &s);
  CU_ASSERT_EQUAL_FATAL(c.state, 1);
  CU_ASSERT_EQUAL_FATAL(s.state, 1);
  CU_ASSERT_EQUAL(synod_tls_handshake_done(c.t), 1);
  CU_ASSERT_EQUAL(synod_tls_handshake_done(s.t), 1);
  CU_ASSERT_EQUAL(synod_tls_handshake(c.t), 1); /* stays done */

  uint8_t xc[SYNOD_TLS_EXPORTER_BYTES], xs[SYNOD_TLS_EXPORTER_BYTES];
  uint8_t zero[SYNOD_TLS_EXPORTER_BYTES] = {0};
  CU_ASSERT_EQUAL(synod_tls_exporter(c.t, xc), 0);
  CU_ASSERT_EQUAL(synod_tls_exporter(s.t, xs), 0);
  CU_ASSERT_EQUAL(memcmp(xc, xs, sizeof xc), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(xc, zero, sizeof xc), 0);

  /* Client to server, a small message. */
  uint8_t buf[200000];
  CU_ASSERT_EQUAL(synod_tls_write(c.t, (const uint8_t *)"hello relay", 11), 0);
  CU_ASSERT(synod_tls_pending(c.t) > 11);
  move(&c, &s);
  CU_ASSERT_EQUAL(synod_tls_pending(c.t), 0);
  size_t n = drain_plain(s.t, buf, sizeof buf);
  CU_ASSERT_EQUAL(n, 11);
  CU_ASSERT_EQUAL(memcmp(buf, "hello relay", 11), 0);

  /* Server to client, several records' worth. */
  size_t big = 100000;
  uint8_t *msg = malloc(big);
  CU_ASSERT_FATAL(msg != NULL);
  for (size_t i = 0; i < big; i++)
    msg[i] = (uint8_t)(i * 7 + 3);
  CU_ASSERT_EQUAL(synod_tls_write(s.t, msg, big), 0);
  move(&s, &c);
  n = drain_plain(c.t, buf, sizeof buf);
  CU_ASSERT_EQUAL(n, big);
  CU_ASSERT_EQUAL(memcmp(buf, msg, big), 0);
  free(msg);

  /* Nothing buffered: a read yields zero bytes, not an error. */
  CU_ASSERT_EQUAL(synod_tls_read(c.t, buf, sizeof buf, &n), 0);
  CU_ASSERT_EQUAL(n, 0);

  /* close_notify from the client ends the server's reading. */
  CU_ASSERT_EQUAL(synod_tls_shutdown(c.t), 0);
  CU_ASSERT_EQUAL(synod_tls_shutdown(c.t), 0);
  CU_ASSERT_EQUAL(synod_tls_write(c.t, (const uint8_t *)"x", 1), SYNOD_ECLOSED);
  move(&c, &s);
  CU_ASSERT_EQUAL(synod_tls_read(s.t, buf, sizeof buf, &n), SYNOD_ECLOSED);
  CU_ASSERT_EQUAL(synod_tls_read(s.t, buf, sizeof buf, &n), SYNOD_ECLOSED);
  end_free(&c);
  end_free(&s);
}

/* Two sessions never share an exporter value: that is what makes the
 * channel binding stop a man in the middle. */
static void test_tls_exporter_per_session(void) {
  synod_tls_ctx_t *sctx = server_ctx(), *cctx = client_ctx();
  uint8_t x[2][SYNOD_TLS_EXPORTER_BYTES];
  for (int i = 0; i < 2; i++) {
    end_t c = {0}, s = {0};
    CU_ASSERT_EQUAL_FATAL(synod_tls_new(&c.t, cctx), 0);
    CU_ASSERT_EQUAL_FATAL(synod_tls_new(&s.t, sctx), 0);
    pump(&c, &s);
    CU_ASSERT_EQUAL_FATAL(c.state, 1);
    CU_ASSERT_EQUAL(synod_tls_exporter(c.t, x[i]), 0);
    end_free(&c);
    end_free(&s);
  }
  CU_ASSERT_NOT_EQUAL(memcmp(x[0], x[1], sizeof x[0]), 0);
  synod_tls_ctx_free(sctx);
  synod_tls_ctx_free(cctx);
}

/* A raw client context: TLS versions and ALPN (wire form, or NULL) given. */
static SSL_CTX *raw_client(int minv, int maxv, const char *alpn,
                           unsigned int alpnlen) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());
  CU_ASSERT_FATAL(c != NULL);
  SSL_CTX_set_min_proto_version(c, minv);
  SSL_CTX_set_max_proto_version(c, maxv);
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
  if (alpn)
    CU_ASSERT_EQUAL_FATAL(
        SSL_CTX_set_alpn_protos(c, (const unsigned char *)alpn, alpnlen), 0);
  return c;
}

/* Runs a raw client against a synod server; both must fail and the server
 * must say why. Returns nothing: asserts. */
static void expect_refused(SSL_CTX *rc, const char *why) {
  synod_tls_ctx_t *sctx = server_ctx();
  end_t c, s = {0};
  end_raw_init(&c, rc);
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&s.t, sctx), 0);
  pump(&c, &s);
  CU_ASSERT_EQUAL(s.state, SYNOD_ETLS);
  CU_ASSERT(c.state < 0);
  CU_ASSERT_EQUAL(synod_tls_handshake_done(s.t), 0);
  CU_ASSERT_EQUAL(synod_tls_handshake(s.t), SYNOD_ETLS); /* sticky */
  const char *reason = synod_tls_reason(s.t);
  CU_ASSERT(reason[0] != '\0');
  if (why && !strstr(reason, why))
    fprintf(stderr, "unexpected reason: %s\n", reason);
  CU_ASSERT(why == NULL || strstr(reason, why) != NULL);
  size_t n;
  uint8_t b[16];
  CU_ASSERT_EQUAL(synod_tls_read(s.t, b, sizeof b, &n), SYNOD_ETLS);
  CU_ASSERT_EQUAL(synod_tls_write(s.t, b, 1), SYNOD_ETLS);
  /* The error queue was drained: nothing is left for the next caller. */
  CU_ASSERT_EQUAL(ERR_peek_error(), 0);
  end_free(&c);
  end_free(&s);
  SSL_CTX_free(rc);
  synod_tls_ctx_free(sctx);
}

static void test_tls_refuses_tls12(void) {
  expect_refused(raw_client(TLS1_VERSION, TLS1_2_VERSION, "\x07synod/1", 8),
                 "unsupported protocol");
}

static void test_tls_refuses_wrong_alpn(void) {
  expect_refused(
      raw_client(TLS1_3_VERSION, TLS1_3_VERSION, "\x02h2\x08http/1.1", 12),
      "handshake");
}

static void test_tls_refuses_missing_alpn(void) {
  expect_refused(raw_client(TLS1_3_VERSION, TLS1_3_VERSION, NULL, 0),
                 "handshake");
}

/* A raw client offering synod/1 among others is accepted: the server picks
 * synod/1 out of the list. */
static void test_tls_alpn_in_list(void) {
  synod_tls_ctx_t *sctx = server_ctx();
  SSL_CTX *rc =
      raw_client(TLS1_3_VERSION, TLS1_3_VERSION, "\x02h2\x07synod/1", 11);
  end_t c, s = {0};
  end_raw_init(&c, rc);
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&s.t, sctx), 0);
  pump(&c, &s);
  CU_ASSERT_EQUAL(s.state, 1);
  CU_ASSERT_EQUAL(c.state, 1);
  /* And a resumption ticket was never issued. */
  uint8_t b[64];
  size_t n = 0;
  SSL_read_ex(c.raw, b, sizeof b, &n);
  ERR_clear_error();
  CU_ASSERT_EQUAL(SSL_SESSION_is_resumable(SSL_get0_session(c.raw)), 0);
  end_free(&c);
  end_free(&s);
  SSL_CTX_free(rc);
  synod_tls_ctx_free(sctx);
}

/* --- certificate files --------------------------------------------------- */

/* Writes a self-signed P-256 certificate and its key into dir. */
static void write_cert_pair(const char *cert, const char *key,
                            mode_t key_mode) {
  EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  CU_ASSERT_FATAL(pk != NULL);
  X509 *x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_NAME *nm = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                             (const unsigned char *)"relay.test", -1, -1, 0);
  X509_set_issuer_name(x, nm);
  X509_set_pubkey(x, pk);
  CU_ASSERT_FATAL(X509_sign(x, pk, EVP_sha256()) > 0);
  FILE *f = fopen(cert, "w");
  CU_ASSERT_FATAL(f != NULL);
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen(key, "w");
  CU_ASSERT_FATAL(f != NULL);
  PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  CU_ASSERT_FATAL(chmod(key, key_mode) == 0);
  X509_free(x);
  EVP_PKEY_free(pk);
}

static void test_tls_cert_files(void) {
  char dir[] = "/tmp/synod-tls-XXXXXX";
  CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
  char cert[64], key[64];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  write_cert_pair(cert, key, 0600);

  synod_tls_ctx_t *sctx = NULL, *cctx = client_ctx();
  char reason[SYNOD_TLS_REASON_BYTES];
  CU_ASSERT_EQUAL_FATAL(synod_tls_ctx_new_server(&sctx, cert, key, reason), 0);
  end_t c = {0}, s = {0};
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&c.t, cctx), 0);
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&s.t, sctx), 0);
  pump(&c, &s);
  CU_ASSERT_EQUAL(c.state, 1);
  CU_ASSERT_EQUAL(s.state, 1);
  end_free(&c);
  end_free(&s);
  synod_tls_ctx_free(sctx);
  synod_tls_ctx_free(cctx);

  /* A key readable by others is refused. */
  sctx = NULL;
  CU_ASSERT_FATAL(chmod(key, 0644) == 0);
  CU_ASSERT_EQUAL(synod_tls_ctx_new_server(&sctx, cert, key, reason),
                  SYNOD_EPERM);
  CU_ASSERT(sctx == NULL);
  CU_ASSERT(reason[0] != '\0');
  CU_ASSERT_FATAL(chmod(key, 0600) == 0);

  /* Half a pair, a missing file, a certificate that is not PEM. */
  CU_ASSERT_EQUAL(synod_tls_ctx_new_server(&sctx, cert, NULL, reason),
                  SYNOD_EINVAL);
  char missing[80];
  snprintf(missing, sizeof missing, "%s/none.pem", dir);
  CU_ASSERT_EQUAL(synod_tls_ctx_new_server(&sctx, cert, missing, reason),
                  SYNOD_EIO);
  CU_ASSERT_EQUAL(synod_tls_ctx_new_server(&sctx, missing, key, reason),
                  SYNOD_ETLS);
  CU_ASSERT(reason[0] != '\0');
  CU_ASSERT_EQUAL(ERR_peek_error(), 0);
  /* Key and certificate that do not belong together. */
  char cert2[80], key2[80];
  snprintf(cert2, sizeof cert2, "%s/cert2.pem", dir);
  snprintf(key2, sizeof key2, "%s/key2.pem", dir);
  write_cert_pair(cert2, key2, 0600);
  CU_ASSERT_EQUAL(synod_tls_ctx_new_server(&sctx, cert, key2, reason),
                  SYNOD_ETLS);
  CU_ASSERT(sctx == NULL);

  unlink(cert);
  unlink(key);
  unlink(cert2);
  unlink(key2);
  rmdir(dir);
}

/* Garbage instead of a ClientHello fails the server engine, sticky. */
static void test_tls_garbage(void) {
  synod_tls_ctx_t *sctx = server_ctx();
  synod_tls_t *s = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_tls_new(&s, sctx), 0);
  static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  CU_ASSERT_EQUAL(synod_tls_feed(s, junk, sizeof junk - 1), 0);
  CU_ASSERT_EQUAL(synod_tls_handshake(s), SYNOD_ETLS);
  CU_ASSERT(synod_tls_reason(s)[0] != '\0');
  CU_ASSERT(strstr(synod_tls_reason(s), "http request") != NULL);
  synod_tls_free(s);
  synod_tls_ctx_free(sctx);
}

static CU_TestInfo tls_tests[] = {
    {"tls_back_to_back", test_tls_back_to_back},
    {"tls_exporter_per_session", test_tls_exporter_per_session},
    {"tls_refuses_tls12", test_tls_refuses_tls12},
    {"tls_refuses_wrong_alpn", test_tls_refuses_wrong_alpn},
    {"tls_refuses_missing_alpn", test_tls_refuses_missing_alpn},
    {"tls_alpn_in_list", test_tls_alpn_in_list},
    {"tls_cert_files", test_tls_cert_files},
    {"tls_garbage", test_tls_garbage},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls", NULL, NULL, NULL, NULL, tls_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
