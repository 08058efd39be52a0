/*
 * The relay's configuration: an INI file (deploy/relay.conf.example documents
 * every key) parsed with libinih into a relay_config_t.
 *
 * Every problem is reported as "FILE:LINE: reason" (or "FILE: reason" for a
 * key that is missing altogether), so an operator can go straight to the
 * line. Unknown sections and keys are errors, not ignored: a misspelt limit
 * must not silently fall back to its default.
 *
 * Peers are sections of the form [peer "relay-b.example"] (the quoted form of
 * git-config), one per peer relay.
 */
#ifndef SYNOD_RELAY_CONFIG_H
#define SYNOD_RELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "synod/crypto.h"
#include "synod/err.h"
#include "synod/log.h"
#include "synod/userid.h"

/* Longest operator display name, in bytes; room for a relay name, which is
 * the default. */
#define CONFIG_OPERATOR_MAX 255
/* Room for an error message: a path plus a line number plus a reason. */
#define CONFIG_ERR_MAX 1024

typedef enum config_retention {
  CONFIG_RETENTION_DELETE = 0, /* delete a message once delivered (default) */
  CONFIG_RETENTION_KEEP = 1,   /* keep it keep_for after delivery */
} config_retention_t;

/* A [peer "NAME"] section. */
typedef struct relay_config_peer {
  char name[SYNOD_RELAY_NAME_MAX + 1];
  char operator_name[CONFIG_OPERATOR_MAX + 1];
  char *address; /* "host:port" as written (host may be a DNS name) */
  char *host;    /* host part, brackets removed for IPv6 */
  uint16_t port;
  uint8_t key[SYNOD_ED25519_PUBLIC_BYTES]; /* the pinned relay key */
  int line;                                /* line of the section header */
} relay_config_peer_t;

typedef struct relay_config {
  char *path; /* the file as given to config_load() */

  /* [relay] */
  char name[SYNOD_RELAY_NAME_MAX + 1];
  char operator_name[CONFIG_OPERATOR_MAX + 1]; /* defaults to name */
  char *listen;                        /* "127.0.0.1:7400" or "[::1]:7400" */
  struct sockaddr_storage listen_addr; /* listen, resolved (no DNS) */
  socklen_t listen_addrlen;
  char *key_file;              /* relative paths are resolved against */
  char *tls_cert;              /* the config file's directory; the */
  char *tls_key;               /* TLS pair is both NULL or both set */
  synod_log_level_t log_level; /* default info */

  /* [database] */
  char *conninfo;     /* libpq connection string */
  uint32_t max_batch; /* writes committed in one transaction; default 256 */

  /* [limits] */
  size_t max_frame_bytes;        /* default 262144, 1024..16 MiB */
  uint64_t handshake_timeout_ms; /* default 10 s */
  uint64_t idle_timeout_ms;      /* default 300 s */
  uint64_t frame_timeout_ms;     /* a frame begun, until whole: 30 s */
  uint32_t max_connections;      /* default 1024 */
  size_t max_buffered_bytes;     /* all connections' buffers, 256 MiB */
  uint32_t message_rate;         /* per account per second, default 50 */
  uint32_t message_burst;        /* token bucket depth, default 200 */
  uint64_t quota_bytes;          /* stored ciphertext per account, 64 MiB */
  uint64_t max_ttl_ms;           /* default 7 d */
  uint64_t default_ttl_ms;       /* default 2 d, at most max_ttl */
  size_t max_envelope_bytes;     /* default 65536, below max_frame_bytes */
  uint64_t enroll_code_ttl_ms;   /* a user add/reenroll code lives 7 d */

  /* [retention] */
  config_retention_t delivered; /* default delete */
  uint64_t keep_for_ms;         /* with keep: how long; default 7 d */

  /* [federation] */
  uint32_t window;       /* unacknowledged forwards per link, default 256 */
  uint64_t retry_min_ms; /* reconnect backoff, default 100 ms */
  uint64_t retry_max_ms; /* default 60 s */

  /* [peer "NAME"] sections, in file order */
  relay_config_peer_t *peers;
  size_t npeers;
} relay_config_t;

/*
 * Parses the file at path into *cfg, which the caller provides (contents are
 * overwritten) and releases with config_free() after a success. On failure
 * *cfg holds nothing to free (it is zeroed), and err[0..errlen) receives a
 * NUL-terminated "FILE:LINE: reason".
 *
 * Returns 0, SYNOD_ECONFIG for any problem with the file's contents,
 * SYNOD_EIO when it cannot be read (err says why), SYNOD_ENOMEM.
 */
SYNOD_WUR int config_load(relay_config_t *cfg, const char *path, char *err,
                          size_t errlen);

/*
 * config_load() on the file contents text[0..len) instead of a file: the
 * same parser, line numbers and errors. path names the text in messages
 * and resolves relative paths, as a file's path would. text is only read
 * during the call and need not be NUL-terminated. Used by the fuzz target
 * tests/fuzz/fuzz_config.c, so the parser it exercises is the file's.
 */
SYNOD_WUR int config_load_buffer(relay_config_t *cfg, const char *path,
                                 const char *text, size_t len, char *err,
                                 size_t errlen);

/* Releases what config_load() allocated and zeroes *cfg; NULL is a no-op. */
void config_free(relay_config_t *cfg);

/* The peer called name, or NULL. The result points into cfg. */
const relay_config_peer_t *config_find_peer(const relay_config_t *cfg,
                                            const char *name);

/*
 * Parses a duration: a decimal number directly followed by a unit, one of
 * ms, s, m, h, d ("250ms", "10s", "5m", "2h", "7d"). *ms receives
 * milliseconds. SYNOD_EPARSE on anything else, SYNOD_ETOOBIG on overflow.
 */
SYNOD_WUR int config_parse_duration(const char *s, uint64_t *ms);

/*
 * Parses "host:port" or "[v6]:port" into *host (malloc'd, brackets removed,
 * caller frees) and *port (1..65535). With literal set, host must be an IP
 * address literal. SYNOD_EPARSE with a reason in why (static string).
 */
SYNOD_WUR int config_parse_hostport(const char *s, int literal, char **host,
                                    uint16_t *port, const char **why);

#endif
