/* TLS 1.3 engine over memory BIOs; see synod/tls.h for the contract. */
#include "synod/tls.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ALPN wire form: one length-prefixed protocol name. */
static const unsigned char alpn_wire[] = "\x07" SYNOD_TLS_ALPN;
#define ALPN_WIRE_LEN (sizeof alpn_wire - 1)
#define ALPN_NAME_LEN (sizeof SYNOD_TLS_ALPN - 1)

struct synod_tls_ctx {
  SSL_CTX *ssl_ctx;
  int server;
};

struct synod_tls {
  SSL *ssl;
  BIO *in;  /* network -> engine; owned by ssl */
  BIO *out; /* engine -> network; owned by ssl */
  int server;
  int done;      /* handshake complete and ALPN checked */
  int failed;    /* sticky fatal error */
  int shut;      /* our close_notify queued */
  int peer_shut; /* peer's close_notify received */
  char reason[SYNOD_TLS_REASON_BYTES];
};

/*
 * Keeps a short reason from the OpenSSL error queue, then empties it.
 * SSL_get_error(3): "The current thread's error queue must be empty before
 * the TLS/SSL I/O operation is attempted, or SSL_get_error() will not work
 * reliably" -- so a failure never leaves entries behind for the next call.
 */
static void drain_errors(char *reason, const char *what) {
  unsigned long e = ERR_get_error();
  if (reason) {
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
      snprintf(reason, SYNOD_TLS_REASON_BYTES, "%s: %s", what, r);
    else if (e)
      snprintf(reason, SYNOD_TLS_REASON_BYTES, "%s: error %lx", what, e);
    else
      snprintf(reason, SYNOD_TLS_REASON_BYTES, "%s", what);
  }
  ERR_clear_error();
}

static int engine_fail(synod_tls_t *t, const char *what) {
  t->failed = 1;
  drain_errors(t->reason, what);
  return SYNOD_ETLS;
}

/* --- server callbacks --------------------------------------------------- */

/*
 * The ALPN select callback runs only when the ClientHello carries the
 * extension; a hello without it is refused here, before any key exchange,
 * so a client that does not speak synod/1 never completes a handshake.
 */
static int client_hello_cb(SSL *ssl, int *alert, void *arg) {
  (void)arg;
  const unsigned char *ext;
  size_t extlen;
  if (!SSL_client_hello_get0_ext(
          ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
          &extlen)) {
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out,
                          unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  unsigned int i = 0;
  while (i < inlen) {
    unsigned int n = in[i];
    if (n > inlen - i - 1)
      break;
    if (n == ALPN_NAME_LEN &&
        memcmp(in + i + 1, SYNOD_TLS_ALPN, ALPN_NAME_LEN) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)n;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* --- contexts --------------------------------------------------------- */

static SSL_CTX *ctx_common(int server) {
  SSL_CTX *c = SSL_CTX_new_ex(
      NULL, NULL, server ? TLS_server_method() : TLS_client_method());
  if (!c)
    return NULL;
  if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
      !SSL_CTX_set_num_tickets(c, 0) || !SSL_CTX_set_max_early_data(c, 0))
    goto fail;
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                             SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
  if (server) {
    SSL_CTX_set_client_hello_cb(c, client_hello_cb, NULL);
    SSL_CTX_set_alpn_select_cb(c, alpn_select_cb, NULL);
  } else if (SSL_CTX_set_alpn_protos(c, alpn_wire,
                                     (unsigned int)ALPN_WIRE_LEN) != 0) {
    goto fail; /* note: 0 is success for this one */
  }
  return c;
fail:
  SSL_CTX_free(c);
  return NULL;
}

/* An ephemeral self-signed Ed25519 certificate (X.509 v3, random 127-bit
 * serial, CN=synod-relay). It carries no trust; see synod/tls.h. */
static int use_ephemeral_cert(SSL_CTX *c) {
  int ok = 0;
  X509 *x = NULL;
  BIGNUM *serial = NULL;
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pkey)
    goto out;
  if (!(x = X509_new()) || !X509_set_version(x, X509_VERSION_3))
    goto out;
  if (!(serial = BN_new()) ||
      !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
    goto out;
  if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600L) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600))
    goto out;
  X509_NAME *name = X509_get_subject_name(x);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)"synod-relay", -1, -1,
                                  0) ||
      !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey))
    goto out;
  /* X509_sign(3): "md must be NULL" for Ed25519, which hashes internally. */
  if (X509_sign(x, pkey, NULL) <= 0)
    goto out;
  ok = SSL_CTX_use_certificate(c, x) == 1 &&
       SSL_CTX_use_PrivateKey(c, pkey) == 1;
out:
  BN_free(serial);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

/* Refuses encrypted keys instead of prompting on a terminal, which the
 * default PEM callback would do. */
/* NOLINTNEXTLINE(readability-non-const-parameter): pem_password_cb type */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* Loads the private key from path, refusing a group- or world-accessible
 * file. fstat on the opened descriptor, so the mode checked is the mode of
 * the file read. */
static int load_key(SSL_CTX *c, const char *path, char *reason) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (reason)
      snprintf(reason, SYNOD_TLS_REASON_BYTES, "cannot open TLS key file");
    return SYNOD_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    if (reason)
      snprintf(reason, SYNOD_TLS_REASON_BYTES,
               "TLS key file is not a regular file");
    return SYNOD_EIO;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    close(fd);
    if (reason)
      snprintf(reason, SYNOD_TLS_REASON_BYTES,
               "TLS key file is group- or world-accessible");
    return SYNOD_EPERM;
  }
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    return SYNOD_ENOMEM;
  }
  EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, no_passphrase_cb, NULL);
  fclose(f);
  if (!pkey) {
    drain_errors(reason, "TLS key file");
    return SYNOD_ETLS;
  }
  int ok = SSL_CTX_use_PrivateKey(c, pkey) == 1;
  EVP_PKEY_free(pkey);
  if (!ok) {
    drain_errors(reason, "TLS key");
    return SYNOD_ETLS;
  }
  return 0;
}

static int ctx_wrap(synod_tls_ctx_t **out, SSL_CTX *c, int server) {
  synod_tls_ctx_t *ctx = malloc(sizeof *ctx);
  if (!ctx) {
    SSL_CTX_free(c);
    return SYNOD_ENOMEM;
  }
  ctx->ssl_ctx = c;
  ctx->server = server;
  *out = ctx;
  return 0;
}

int synod_tls_ctx_new_server(synod_tls_ctx_t **out, const char *cert_file,
                             const char *key_file, char *reason) {
  int rc;
  if (reason)
    reason[0] = '\0';
  *out = NULL;
  if (!cert_file != !key_file) {
    if (reason)
      snprintf(reason, SYNOD_TLS_REASON_BYTES,
               "TLS certificate and key go together");
    return SYNOD_EINVAL;
  }
  ERR_clear_error();
  SSL_CTX *c = ctx_common(1);
  if (!c) {
    drain_errors(reason, "TLS server context");
    return SYNOD_ETLS;
  }
  if (cert_file) {
    if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
      drain_errors(reason, "TLS certificate file");
      rc = SYNOD_ETLS;
      goto fail;
    }
    if ((rc = load_key(c, key_file, reason)) != 0)
      goto fail;
    if (SSL_CTX_check_private_key(c) != 1) {
      drain_errors(reason, "TLS key does not match certificate");
      rc = SYNOD_ETLS;
      goto fail;
    }
  } else if (!use_ephemeral_cert(c)) {
    drain_errors(reason, "ephemeral TLS certificate");
    rc = SYNOD_ETLS;
    goto fail;
  }
  return ctx_wrap(out, c, 1);
fail:
  SSL_CTX_free(c);
  return rc;
}

int synod_tls_ctx_new_client(synod_tls_ctx_t **out, char *reason) {
  if (reason)
    reason[0] = '\0';
  *out = NULL;
  ERR_clear_error();
  SSL_CTX *c = ctx_common(0);
  if (!c) {
    drain_errors(reason, "TLS client context");
    return SYNOD_ETLS;
  }
  return ctx_wrap(out, c, 0);
}

void synod_tls_ctx_free(synod_tls_ctx_t *ctx) {
  if (!ctx)
    return;
  SSL_CTX_free(ctx->ssl_ctx);
  free(ctx);
}

/* --- engines ---------------------------------------------------------- */

int synod_tls_new(synod_tls_t **out, synod_tls_ctx_t *ctx) {
  *out = NULL;
  synod_tls_t *t = calloc(1, sizeof *t);
  if (!t)
    return SYNOD_ENOMEM;
  t->server = ctx->server;
  ERR_clear_error();
  /* SSL_new takes its own reference on the SSL_CTX. */
  if (!(t->ssl = SSL_new(ctx->ssl_ctx)))
    goto fail;
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->in || !t->out) {
    BIO_free(t->in);
    BIO_free(t->out);
    goto fail;
  }
  /* An empty memory BIO reports "retry" (BIO_s_mem(3): eof return -1), so
   * an engine waiting for input sees SSL_ERROR_WANT_READ, never EOF. */
  SSL_set_bio(t->ssl, t->in, t->out); /* ssl now owns both */
  if (t->server)
    SSL_set_accept_state(t->ssl);
  else
    SSL_set_connect_state(t->ssl);
  *out = t;
  return 0;
fail:
  drain_errors(NULL, "");
  SSL_free(t->ssl);
  free(t);
  return SYNOD_ETLS;
}

void synod_tls_free(synod_tls_t *t) {
  if (!t)
    return;
  SSL_free(t->ssl); /* frees the BIOs and cleanses the key schedule */
  OPENSSL_cleanse(t, sizeof *t);
  free(t);
}

int synod_tls_is_server(const synod_tls_t *t) {
  return t->server;
}

int synod_tls_feed(synod_tls_t *t, const uint8_t *data, size_t len) {
  while (len > 0) {
    size_t n = len > INT_MAX ? INT_MAX : len;
    size_t w = 0;
    ERR_clear_error();
    if (!BIO_write_ex(t->in, data, n, &w) || w != n)
      return engine_fail(t, "buffering input");
    data += n;
    len -= n;
  }
  return 0;
}

size_t synod_tls_pending(const synod_tls_t *t) {
  return BIO_ctrl_pending(t->out);
}

int synod_tls_take(synod_tls_t *t, uint8_t *out, size_t cap, size_t *outlen) {
  *outlen = 0;
  if (cap == 0 || BIO_ctrl_pending(t->out) == 0)
    return 0;
  ERR_clear_error();
  if (!BIO_read_ex(t->out, out, cap, outlen))
    return engine_fail(t, "taking output");
  return 0;
}

/* Both sides insist on synod/1: a server never selects anything else, a
 * client must see it selected. */
static int check_alpn(synod_tls_t *t) {
  const unsigned char *p = NULL;
  unsigned int n = 0;
  SSL_get0_alpn_selected(t->ssl, &p, &n);
  if (n != ALPN_NAME_LEN || memcmp(p, SYNOD_TLS_ALPN, ALPN_NAME_LEN) != 0) {
    t->failed = 1;
    snprintf(t->reason, sizeof t->reason, "handshake: ALPN %s not negotiated",
             SYNOD_TLS_ALPN);
    return SYNOD_ETLS;
  }
  return 0;
}

int synod_tls_handshake(synod_tls_t *t) {
  if (t->failed)
    return SYNOD_ETLS;
  if (t->done)
    return 1;
  ERR_clear_error();
  int r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    if (check_alpn(t) != 0)
      return SYNOD_ETLS;
    t->done = 1;
    return 1;
  }
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  return engine_fail(t, "handshake");
}

int synod_tls_handshake_done(const synod_tls_t *t) {
  return t->done && !t->failed;
}

int synod_tls_write(synod_tls_t *t, const uint8_t *data, size_t len) {
  if (t->failed)
    return SYNOD_ETLS;
  if (!t->done)
    return SYNOD_EAGAIN;
  if (t->shut)
    return SYNOD_ECLOSED;
  if (len == 0)
    return 0;
  size_t w = 0;
  ERR_clear_error();
  /* Without SSL_MODE_ENABLE_PARTIAL_WRITE and over a memory BIO that grows
   * as needed, SSL_write_ex either writes everything or fails. */
  if (SSL_write_ex(t->ssl, data, len, &w) != 1 || w != len)
    return engine_fail(t, "write");
  return 0;
}

int synod_tls_read(synod_tls_t *t, uint8_t *out, size_t cap, size_t *outlen) {
  *outlen = 0;
  if (t->failed)
    return SYNOD_ETLS;
  if (t->peer_shut)
    return SYNOD_ECLOSED;
  if (!t->done) {
    int h = synod_tls_handshake(t);
    if (h <= 0)
      return h;
  }
  if (cap == 0)
    return 0;
  ERR_clear_error();
  int r = SSL_read_ex(t->ssl, out, cap, outlen);
  if (r == 1)
    return 0;
  *outlen = 0;
  switch (SSL_get_error(t->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return 0;
  case SSL_ERROR_ZERO_RETURN:
    t->peer_shut = 1;
    return SYNOD_ECLOSED;
  default:
    return engine_fail(t, "read");
  }
}

int synod_tls_shutdown(synod_tls_t *t) {
  if (t->shut)
    return 0;
  t->shut = 1;
  /* SSL_shutdown(3): it "must not be called if a previous fatal error has
   * occurred", and before the handshake there is nothing to close. */
  if (t->failed || !t->done)
    return 0;
  ERR_clear_error();
  if (SSL_shutdown(t->ssl) < 0)
    return engine_fail(t, "shutdown");
  return 0;
}

int synod_tls_exporter(synod_tls_t *t,
                       uint8_t out[static SYNOD_TLS_EXPORTER_BYTES]) {
  if (!t->done || t->failed)
    return SYNOD_EINVAL;
  static const char label[] = SYNOD_TLS_EXPORTER_LABEL;
  ERR_clear_error();
  /* use_context = 0: no context. */
  if (SSL_export_keying_material(t->ssl, out, SYNOD_TLS_EXPORTER_BYTES, label,
                                 sizeof label - 1, NULL, 0, 0) != 1) {
    drain_errors(t->reason, "exporter");
    return SYNOD_ETLS;
  }
  return 0;
}

const char *synod_tls_reason(const synod_tls_t *t) {
  return t->reason;
}
