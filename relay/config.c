/*
 * relay.conf parsing on libinih.
 *
 * inih hands us each "key = value" with its section, but not the line number
 * (Debian builds it without INI_HANDLER_LINENO) and nothing at a section
 * header. So the file is fed through our own line reader (ini_parse_stream):
 * it counts lines, which gives the handler the line it is looking at, notes
 * where each section header is, refuses over-long lines that inih would
 * otherwise split silently, and strips leading blanks so an indented key is
 * a key rather than one of inih's multi-line continuations.
 *
 * Keys are a table (section, name, kind, offset, range); the handler looks a
 * key up, parses it by kind and stores it at its offset. Checks that involve
 * two keys run after the whole file has been read.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/keyfile.h"
#include "synod/wire.h"

#define KIB    UINT64_C(1024)
#define MIB    (KIB * 1024)
#define GIB    (MIB * 1024)
#define SEC    UINT64_C(1000)
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

enum key_kind {
  K_STR,       /* char * (strdup) */
  K_PATH,      /* char *, resolved against the config file's directory */
  K_NAME,      /* char[SYNOD_RELAY_NAME_MAX + 1], a relay name */
  K_OPERATOR,  /* char[CONFIG_OPERATOR_MAX + 1], printable text */
  K_LISTEN,    /* char * plus listen_addr/listen_addrlen */
  K_U32,       /* uint32_t in [min, max] */
  K_SIZE,      /* size_t byte count, optional KiB/MiB/GiB suffix */
  K_U64SIZE,   /* uint64_t byte count, optional KiB/MiB/GiB suffix */
  K_DURATION,  /* uint64_t milliseconds in [min, max] */
  K_LOGLEVEL,  /* synod_log_level_t */
  K_RETENTION, /* config_retention_t */
};

enum section_id {
  S_RELAY,
  S_DATABASE,
  S_LIMITS,
  S_RETENTION,
  S_FEDERATION,
  S_PEER
};

static const char *const section_names[] = {
    [S_RELAY] = "relay",           [S_DATABASE] = "database",
    [S_LIMITS] = "limits",         [S_RETENTION] = "retention",
    [S_FEDERATION] = "federation", [S_PEER] = "peer",
};

struct key {
  enum section_id section;
  const char *name;
  enum key_kind kind;
  size_t offset;
  uint64_t min, max;
  bool required;
};

#define F(field) offsetof(relay_config_t, field)

static const struct key keys[] = {
    {S_RELAY, "name", K_NAME, F(name), 0, 0, true},
    {S_RELAY, "operator", K_OPERATOR, F(operator_name), 0, 0, false},
    {S_RELAY, "listen", K_LISTEN, F(listen), 0, 0, true},
    {S_RELAY, "key_file", K_PATH, F(key_file), 0, 0, true},
    {S_RELAY, "tls_cert", K_PATH, F(tls_cert), 0, 0, false},
    {S_RELAY, "tls_key", K_PATH, F(tls_key), 0, 0, false},
    {S_RELAY, "log_level", K_LOGLEVEL, F(log_level), 0, 0, false},
    {S_DATABASE, "conninfo", K_STR, F(conninfo), 0, 0, true},
    {S_DATABASE, "max_batch", K_U32, F(max_batch), 1, 10000, false},
    {S_LIMITS, "max_frame_bytes", K_SIZE, F(max_frame_bytes), 1024, 16 * MIB,
     false},
    {S_LIMITS, "handshake_timeout", K_DURATION, F(handshake_timeout_ms), 100,
     5 * MINUTE, false},
    {S_LIMITS, "idle_timeout", K_DURATION, F(idle_timeout_ms), 1 * SEC, 7 * DAY,
     false},
    {S_LIMITS, "frame_timeout", K_DURATION, F(frame_timeout_ms), 100,
     5 * MINUTE, false},
    {S_LIMITS, "max_connections", K_U32, F(max_connections), 1, 1000000, false},
    {S_LIMITS, "max_buffered_bytes", K_SIZE, F(max_buffered_bytes), 1 * MIB,
     64 * GIB, false},
    {S_LIMITS, "message_rate", K_U32, F(message_rate), 1, 1000000, false},
    {S_LIMITS, "message_burst", K_U32, F(message_burst), 1, 10000000, false},
    {S_LIMITS, "quota_bytes", K_U64SIZE, F(quota_bytes), 1024, 1024 * GIB,
     false},
    {S_LIMITS, "max_ttl", K_DURATION, F(max_ttl_ms), 1 * MINUTE, 365 * DAY,
     false},
    {S_LIMITS, "default_ttl", K_DURATION, F(default_ttl_ms), 1 * SEC, 365 * DAY,
     false},
    {S_LIMITS, "max_envelope_bytes", K_SIZE, F(max_envelope_bytes), 256,
     16 * MIB, false},
    {S_LIMITS, "enroll_code_ttl", K_DURATION, F(enroll_code_ttl_ms), 1 * SEC,
     365 * DAY, false},
    {S_RETENTION, "delivered", K_RETENTION, F(delivered), 0, 0, false},
    {S_RETENTION, "keep_for", K_DURATION, F(keep_for_ms), 1 * SEC, 365 * DAY,
     false},
    {S_FEDERATION, "window", K_U32, F(window), 1, 65536, false},
    {S_FEDERATION, "retry_min", K_DURATION, F(retry_min_ms), 10, 1 * MINUTE,
     false},
    {S_FEDERATION, "retry_max", K_DURATION, F(retry_max_ms), 100, 1 * HOUR,
     false},
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* Keys of a [peer "NAME"] section; stored by hand in peer_set(). */
enum peer_key { P_ADDRESS, P_KEY, P_OPERATOR, NPEERKEYS };
static const char *const peer_key_names[NPEERKEYS] = {"address", "key",
                                                      "operator"};

struct parser {
  relay_config_t *cfg;
  const char *path;
  char *dir; /* directory of path, for relative paths; "" for cwd */
  FILE *file;
  char *linebuf;
  size_t linecap;

  /* Maintained by the reader. */
  int line;         /* number of the line inih is processing */
  int section_line; /* line of the newest section header, 0 before any */
  int cur_section;  /* enum section_id, or -1 when refused */

  /* Maintained by the handler. */
  relay_config_peer_t *cur_peer;
  int key_line[NKEYS];          /* where each key was set, 0 if not */
  int peer_key_line[NPEERKEYS]; /* same, for the current peer */
  int section_seen[S_PEER];     /* line of each singleton section */

  /* The first error. */
  int err_line; /* 0 when none; -1 for an error without a line */
  int err_code;
  char *err;
  size_t errlen;
};

static void fail_at(struct parser *p, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error only: later ones are often consequences of it. */
static void fail_at(struct parser *p, int line, int code, const char *fmt,
                    ...) {
  if (p->err_line != 0)
    return;
  p->err_line = line > 0 ? line : -1;
  p->err_code = code;
  if (p->errlen == 0)
    return;
  int n = line > 0 ? snprintf(p->err, p->errlen, "%s:%d: ", p->path, line)
                   : snprintf(p->err, p->errlen, "%s: ", p->path);
  if (n < 0 || (size_t)n >= p->errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

/* --- values -----------------------------------------------------------------
 */

/* Decimal digits only, no sign, no blanks; SYNOD_ETOOBIG past UINT64_MAX. */
static int parse_u64_prefix(const char *s, uint64_t *out, const char **end) {
  if (*s < '0' || *s > '9')
    return SYNOD_EPARSE;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return SYNOD_ETOOBIG;
    v = v * 10 + d;
  }
  *out = v;
  *end = s;
  return 0;
}

int config_parse_duration(const char *s, uint64_t *ms) {
  static const struct {
    const char *suffix;
    uint64_t ms;
  } units[] = {{"ms", 1}, {"s", SEC}, {"m", MINUTE}, {"h", HOUR}, {"d", DAY}};
  uint64_t v;
  const char *end;
  int rc = parse_u64_prefix(s, &v, &end);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].suffix) != 0)
      continue;
    if (v > UINT64_MAX / units[i].ms)
      return SYNOD_ETOOBIG;
    *ms = v * units[i].ms;
    return 0;
  }
  return SYNOD_EPARSE;
}

/* A byte count: digits, optionally followed by KiB, MiB or GiB. */
static int parse_size(const char *s, uint64_t *out) {
  static const struct {
    const char *suffix;
    uint64_t mul;
  } units[] = {{"", 1}, {"KiB", KIB}, {"MiB", MIB}, {"GiB", GIB}};
  uint64_t v;
  const char *end;
  int rc = parse_u64_prefix(s, &v, &end);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].suffix) != 0)
      continue;
    if (v > UINT64_MAX / units[i].mul)
      return SYNOD_ETOOBIG;
    *out = v * units[i].mul;
    return 0;
  }
  return SYNOD_EPARSE;
}

int config_parse_hostport(const char *s, int literal, char **host,
                          uint16_t *port, const char **why) {
  const char *h, *hend, *colon;
  bool v6 = false;
  *host = NULL;
  if (s[0] == '[') {
    h = s + 1;
    hend = strchr(h, ']');
    if (hend == NULL) {
      *why = "missing ']' after the IPv6 address";
      return SYNOD_EPARSE;
    }
    colon = hend + 1;
    v6 = true;
  } else {
    h = s;
    colon = strrchr(s, ':');
    hend = colon;
    if (colon != NULL && memchr(s, ':', (size_t)(colon - s)) != NULL) {
      *why = "an IPv6 address must be written in brackets, as [::1]:7400";
      return SYNOD_EPARSE;
    }
  }
  if (colon == NULL || *colon != ':') {
    *why = "expected host:port";
    return SYNOD_EPARSE;
  }
  if (hend == h) {
    *why = "the host is empty";
    return SYNOD_EPARSE;
  }
  uint64_t p;
  const char *end;
  if (parse_u64_prefix(colon + 1, &p, &end) != 0 || *end != '\0' || p < 1 ||
      p > 65535) {
    *why = "the port must be a number between 1 and 65535";
    return SYNOD_EPARSE;
  }
  size_t hlen = (size_t)(hend - h);
  char *hs = strndup(h, hlen);
  if (hs == NULL)
    return SYNOD_ENOMEM;
  unsigned char bin[sizeof(struct in6_addr)];
  if (v6 && inet_pton(AF_INET6, hs, bin) != 1) {
    *why = "not an IPv6 address";
    free(hs);
    return SYNOD_EPARSE;
  }
  if (!v6 && literal && inet_pton(AF_INET, hs, bin) != 1) {
    *why = "the host must be an IPv4 address or a bracketed IPv6 address";
    free(hs);
    return SYNOD_EPARSE;
  }
  if (!v6 && !literal && inet_pton(AF_INET, hs, bin) != 1 &&
      synod_relay_name_check(hs) != 0) {
    *why = "the host is neither an IP address nor a lowercase DNS name";
    free(hs);
    return SYNOD_EPARSE;
  }
  *host = hs;
  *port = (uint16_t)p;
  return 0;
}

static int set_listen(struct parser *p, const char *value) {
  relay_config_t *cfg = p->cfg;
  char *host;
  uint16_t port;
  const char *why = NULL;
  int rc = config_parse_hostport(value, 1, &host, &port, &why);
  if (rc == SYNOD_ENOMEM)
    return rc;
  if (rc != 0) {
    fail_at(p, p->line, SYNOD_ECONFIG, "listen: %s", why);
    return 0;
  }
  memset(&cfg->listen_addr, 0, sizeof cfg->listen_addr);
  if (value[0] == '[') {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&cfg->listen_addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    (void)inet_pton(AF_INET6, host, &a->sin6_addr);
    cfg->listen_addrlen = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&cfg->listen_addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    (void)inet_pton(AF_INET, host, &a->sin_addr);
    cfg->listen_addrlen = sizeof *a;
  }
  free(host);
  free(cfg->listen);
  cfg->listen = strdup(value);
  return cfg->listen == NULL ? SYNOD_ENOMEM : 0;
}

/* Display text: 1..max bytes, no control characters. */
static bool text_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return false;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return false;
  return true;
}

static char *resolve_path(const struct parser *p, const char *value) {
  if (value[0] == '/' || p->dir[0] == '\0')
    return strdup(value);
  size_t n = strlen(p->dir) + 1 + strlen(value) + 1;
  char *out = malloc(n);
  if (out != NULL)
    snprintf(out, n, "%s/%s", p->dir, value);
  return out;
}

static int set_range_error(struct parser *p, const struct key *k) {
  if (k->kind == K_DURATION)
    fail_at(p, p->line, SYNOD_ECONFIG, "%s: must be between %llums and %llums",
            k->name, (unsigned long long)k->min, (unsigned long long)k->max);
  else
    fail_at(p, p->line, SYNOD_ECONFIG, "%s: must be between %llu and %llu",
            k->name, (unsigned long long)k->min, (unsigned long long)k->max);
  return 0;
}

/* Stores value for key k. Returns 0 (an error, if any, is recorded in p) or
 * SYNOD_ENOMEM. */
static int set_key(struct parser *p, const struct key *k, const char *value) {
  void *field = (char *)p->cfg + k->offset;
  uint64_t v = 0;
  int rc;
  switch (k->kind) {
  case K_STR:
  case K_PATH: {
    char **dst = field;
    if (value[0] == '\0') {
      fail_at(p, p->line, SYNOD_ECONFIG, "%s: must not be empty", k->name);
      return 0;
    }
    char *s = k->kind == K_PATH ? resolve_path(p, value) : strdup(value);
    if (s == NULL)
      return SYNOD_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
  }
  case K_NAME:
    if (synod_relay_name_check(value) != 0) {
      fail_at(p, p->line, SYNOD_ECONFIG,
              "%s: '%s' is not a relay name (lowercase DNS labels of "
              "[a-z0-9-], dot-separated, at most %d bytes)",
              k->name, value, SYNOD_RELAY_NAME_MAX);
      return 0;
    }
    snprintf(field, SYNOD_RELAY_NAME_MAX + 1, "%s", value);
    return 0;
  case K_OPERATOR:
    if (!text_ok(value, CONFIG_OPERATOR_MAX)) {
      fail_at(p, p->line, SYNOD_ECONFIG,
              "%s: must be 1 to %d bytes without control characters", k->name,
              CONFIG_OPERATOR_MAX);
      return 0;
    }
    snprintf(field, CONFIG_OPERATOR_MAX + 1, "%s", value);
    return 0;
  case K_LISTEN:
    return set_listen(p, value);
  case K_U32:
  case K_SIZE:
  case K_U64SIZE: {
    const char *end = NULL;
    rc = k->kind == K_U32 ? parse_u64_prefix(value, &v, &end)
                          : parse_size(value, &v);
    if (rc == 0 && end && *end != '\0')
      rc = SYNOD_EPARSE;
    if (rc == SYNOD_EPARSE) {
      fail_at(p, p->line, SYNOD_ECONFIG,
              k->kind == K_U32
                  ? "%s: '%s' is not a whole number"
                  : "%s: '%s' is not a byte count (a whole number, "
                    "optionally followed by KiB, MiB or GiB)",
              k->name, value);
      return 0;
    }
    if (rc != 0 || v < k->min || v > k->max)
      return set_range_error(p, k);
    if (k->kind == K_U32)
      *(uint32_t *)field = (uint32_t)v;
    else if (k->kind == K_SIZE)
      *(size_t *)field = (size_t)v;
    else
      *(uint64_t *)field = v;
    return 0;
  }
  case K_DURATION:
    rc = config_parse_duration(value, &v);
    if (rc == SYNOD_EPARSE) {
      fail_at(p, p->line, SYNOD_ECONFIG,
              "%s: '%s' is not a duration (a whole number followed by ms, s, "
              "m, h or d, as in 250ms, 10s, 5m, 2h, 7d)",
              k->name, value);
      return 0;
    }
    if (rc != 0 || v < k->min || v > k->max)
      return set_range_error(p, k);
    *(uint64_t *)field = v;
    return 0;
  case K_LOGLEVEL: {
    synod_log_level_t level;
    if (synod_log_level_parse(&level, value) != 0) {
      fail_at(p, p->line, SYNOD_ECONFIG,
              "%s: '%s' is not one of error, warn, info, debug, trace", k->name,
              value);
      return 0;
    }
    *(synod_log_level_t *)field = level;
    return 0;
  }
  case K_RETENTION:
    if (strcmp(value, "delete") == 0)
      *(config_retention_t *)field = CONFIG_RETENTION_DELETE;
    else if (strcmp(value, "keep") == 0)
      *(config_retention_t *)field = CONFIG_RETENTION_KEEP;
    else
      fail_at(p, p->line, SYNOD_ECONFIG, "%s: must be delete or keep", k->name);
    return 0;
  }
  return 0;
}

/* --- peers ------------------------------------------------------------------
 */

/* The name inside [peer "NAME"], copied to out; false if s is not of that
 * form. */
static bool peer_section_name(const char *s, char *out, size_t outlen) {
  if (strncmp(s, "peer", 4) != 0 || (s[4] != ' ' && s[4] != '\t'))
    return false;
  s += 4;
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  if (n < 2 || s[0] != '"' || s[n - 1] != '"' || n - 2 >= outlen)
    return false;
  memcpy(out, s + 1, n - 2);
  out[n - 2] = '\0';
  return true;
}

/* Checks that the finished peer section has its required keys. */
static void peer_finish(struct parser *p) {
  relay_config_peer_t *peer = p->cur_peer;
  if (peer == NULL)
    return;
  for (int i = 0; i < NPEERKEYS; i++)
    if (p->peer_key_line[i] == 0)
      fail_at(p, peer->line, SYNOD_ECONFIG, "[peer \"%s\"]: %s: missing",
              peer->name, peer_key_names[i]);
  p->cur_peer = NULL;
}

static int peer_begin(struct parser *p, const char *section) {
  relay_config_t *cfg = p->cfg;
  char name[SYNOD_RELAY_NAME_MAX + 2];
  if (!peer_section_name(section, name, sizeof name)) {
    fail_at(p, p->section_line, SYNOD_ECONFIG,
            "[%s]: a peer section is written [peer \"relay.example.org\"]",
            section);
    return 0;
  }
  if (synod_relay_name_check(name) != 0) {
    fail_at(p, p->section_line, SYNOD_ECONFIG, "[%s]: '%s' is not a relay name",
            section, name);
    return 0;
  }
  if (strcmp(name, cfg->name) == 0) {
    fail_at(p, p->section_line, SYNOD_ECONFIG,
            "[%s]: a relay cannot be its own peer", section);
    return 0;
  }
  const relay_config_peer_t *dup = config_find_peer(cfg, name);
  if (dup != NULL) {
    fail_at(p, p->section_line, SYNOD_ECONFIG,
            "[%s]: duplicate peer (first defined on line %d)", section,
            dup->line);
    return 0;
  }
  relay_config_peer_t *peers =
      realloc(cfg->peers, (cfg->npeers + 1) * sizeof *cfg->peers);
  if (peers == NULL)
    return SYNOD_ENOMEM;
  cfg->peers = peers;
  relay_config_peer_t *peer = &peers[cfg->npeers++];
  memset(peer, 0, sizeof *peer);
  memcpy(peer->name, name, strlen(name) + 1); /* checked: <= 253 bytes */
  peer->line = p->section_line;
  p->cur_peer = peer;
  memset(p->peer_key_line, 0, sizeof p->peer_key_line);
  return 0;
}

static int peer_set(struct parser *p, const char *name, const char *value) {
  relay_config_peer_t *peer = p->cur_peer;
  int k;
  for (k = 0; k < NPEERKEYS; k++)
    if (strcmp(name, peer_key_names[k]) == 0)
      break;
  if (k == NPEERKEYS) {
    fail_at(p, p->line, SYNOD_ECONFIG,
            "unknown key '%s' in a peer section (known: address, key, "
            "operator)",
            name);
    return 0;
  }
  if (p->peer_key_line[k] != 0) {
    fail_at(p, p->line, SYNOD_ECONFIG, "%s: already set on line %d", name,
            p->peer_key_line[k]);
    return 0;
  }
  p->peer_key_line[k] = p->line;
  switch ((enum peer_key)k) {
  case P_ADDRESS: {
    const char *why = NULL;
    int rc = config_parse_hostport(value, 0, &peer->host, &peer->port, &why);
    if (rc == SYNOD_ENOMEM)
      return rc;
    if (rc != 0) {
      fail_at(p, p->line, SYNOD_ECONFIG, "address: %s", why);
      return 0;
    }
    peer->address = strdup(value);
    return peer->address == NULL ? SYNOD_ENOMEM : 0;
  }
  case P_KEY:
    if (synod_keyfile_parse_public(peer->key, SYNOD_KEY_ED25519, value,
                                   strlen(value)) != 0)
      fail_at(p, p->line, SYNOD_ECONFIG,
              "key: not a relay public key line 'synod-ed25519 BASE64' (paste "
              "the line synod-relay keygen printed on the peer)");
    return 0;
  case P_OPERATOR:
    if (!text_ok(value, CONFIG_OPERATOR_MAX))
      fail_at(p, p->line, SYNOD_ECONFIG,
              "operator: must be 1 to %d bytes without control characters",
              CONFIG_OPERATOR_MAX);
    else
      snprintf(peer->operator_name, sizeof peer->operator_name, "%s", value);
    return 0;
  case NPEERKEYS:
    break;
  }
  return 0;
}

/* --- inih callbacks ---------------------------------------------------------
 */

/* The reader met the header [section]. Sections are handled here rather than
 * at their first key so that an empty or unknown one is not overlooked. */
static int section_begin(struct parser *p, const char *section) {
  peer_finish(p);
  p->cur_section = -1;
  for (int s = 0; s < S_PEER; s++) {
    if (strcmp(section, section_names[s]) != 0)
      continue;
    if (p->section_seen[s] != 0) {
      fail_at(p, p->section_line, SYNOD_ECONFIG,
              "[%s]: duplicate section (first on line %d)", section,
              p->section_seen[s]);
      return 0;
    }
    p->section_seen[s] = p->section_line;
    p->cur_section = s;
    return 0;
  }
  if (strncmp(section, "peer", 4) == 0) {
    int rc = peer_begin(p, section);
    if (p->cur_peer != NULL)
      p->cur_section = S_PEER;
    return rc;
  }
  fail_at(p, p->section_line, SYNOD_ECONFIG,
          "unknown section [%s] (known: relay, database, limits, retention, "
          "federation, peer \"NAME\")",
          section);
  return 0;
}

/* A value wholly in double quotes loses them: operator = "Example Org". */
static const char *unquote(const char *value, char *buf, size_t buflen) {
  size_t n = strlen(value);
  if (n < 2 || value[0] != '"' || value[n - 1] != '"' || n - 2 >= buflen)
    return value;
  memcpy(buf, value + 1, n - 2);
  buf[n - 2] = '\0';
  return buf;
}

/* inih: "Handler should return nonzero on success, zero on error." We record
 * errors ourselves and return zero only to stop at memory exhaustion. */
static int handler(void *user, const char *section, const char *name,
                   const char *raw) {
  struct parser *p = user;
  int rc = 0;
  if (p->err_code == SYNOD_ENOMEM)
    return 0;
  if (p->section_line == 0) {
    fail_at(p, p->line, SYNOD_ECONFIG,
            "'%s' is outside any section (start with [relay])", name);
    return 1;
  }
  if (p->cur_section < 0)
    return 1; /* the section header was refused already */

  char buf[INI_MAX_LINE];
  const char *value = unquote(raw, buf, sizeof buf);
  if (p->cur_section == S_PEER) {
    rc = peer_set(p, name, value);
    goto out;
  }
  for (size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    if ((int)k->section != p->cur_section || strcmp(k->name, name) != 0)
      continue;
    if (p->key_line[i] != 0) {
      fail_at(p, p->line, SYNOD_ECONFIG, "%s: already set on line %d", name,
              p->key_line[i]);
      return 1;
    }
    p->key_line[i] = p->line;
    rc = set_key(p, k, value);
    goto out;
  }
  fail_at(p, p->line, SYNOD_ECONFIG, "unknown key '%s' in [%s]", name, section);
  return 1;
out:
  if (rc == SYNOD_ENOMEM) {
    p->err_line = 0;
    fail_at(p, p->line, SYNOD_ENOMEM, "out of memory");
    return 0;
  }
  return 1;
}

/* ini_reader: "fgets-style". Reads one whole line, so the line count stays
 * true; a line that does not fit inih's buffer is refused instead of being
 * split into two. */
static char *reader(char *str, int num, void *stream) {
  struct parser *p = stream;
  ssize_t n = getline(&p->linebuf, &p->linecap, p->file);
  if (n < 0)
    return NULL;
  p->line++;
  const char *s = p->linebuf;
  while (*s == ' ' || *s == '\t')
    s++;
  size_t len = (size_t)n - (size_t)(s - p->linebuf);
  if (memchr(s, '\0', len) != NULL) {
    fail_at(p, p->line, SYNOD_ECONFIG, "NUL byte in the line");
    return NULL;
  }
  /* "this must be 3 more than the longest line (due to '\r', '\n', and
   * '\0')" (ini.h, INI_MAX_LINE). */
  size_t text = len;
  while (text > 0 && (s[text - 1] == '\n' || s[text - 1] == '\r'))
    text--;
  /* What is copied is the whole line: a short text followed by a run of
   * CRs must not overflow inih's buffer either. */
  if (num < 3 || text > (size_t)num - 3 || len >= (size_t)num) {
    fail_at(p, p->line, SYNOD_ECONFIG, "line longer than %d characters",
            num - 3);
    return NULL;
  }
  memcpy(str, s, len + 1);
  /* inih takes a section name as everything between '[' and the first ']';
   * a header without ']' is left to inih to report as a syntax error. */
  char *close = strchr(str, ']');
  if (str[0] == '[' && close != NULL) {
    p->section_line = p->line;
    *close = '\0';
    int rc = section_begin(p, str + 1);
    *close = ']';
    if (rc != 0) {
      p->err_line = 0;
      fail_at(p, p->line, rc, "out of memory");
      return NULL;
    }
  }
  return str;
}

/* --- checks across keys ------------------------------------------------------
 */

static int line_of(const struct parser *p, const char *name) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strcmp(keys[i].name, name) == 0)
      return p->key_line[i];
  return 0;
}

static void check_whole(struct parser *p) {
  relay_config_t *c = p->cfg;
  for (size_t i = 0; i < NKEYS; i++)
    if (keys[i].required && p->key_line[i] == 0)
      fail_at(p, 0, SYNOD_ECONFIG, "[%s] %s: missing",
              section_names[keys[i].section], keys[i].name);
  if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
    int l = line_of(p, c->tls_cert != NULL ? "tls_cert" : "tls_key");
    fail_at(p, l, SYNOD_ECONFIG,
            "tls_cert and tls_key go together: set both or neither");
  }
  if (c->default_ttl_ms > c->max_ttl_ms) {
    int l = line_of(p, "default_ttl");
    fail_at(p, l ? l : line_of(p, "max_ttl"), SYNOD_ECONFIG,
            "default_ttl: must not exceed max_ttl (%llums)",
            (unsigned long long)c->max_ttl_ms);
  }
  if (c->max_envelope_bytes >= c->max_frame_bytes) {
    int l = line_of(p, "max_envelope_bytes");
    fail_at(p, l ? l : line_of(p, "max_frame_bytes"), SYNOD_ECONFIG,
            "max_envelope_bytes: must be smaller than max_frame_bytes (%zu), "
            "which also carries the envelope's framing",
            c->max_frame_bytes);
  }
  /* One connection at its write-queue cap (1 MiB plus two frames, see
   * server_conn_options) must fit, or an honest one would be shed. */
  if (c->max_buffered_bytes < 1 * MIB + 2 * c->max_frame_bytes) {
    int l = line_of(p, "max_buffered_bytes");
    fail_at(p, l ? l : line_of(p, "max_frame_bytes"), SYNOD_ECONFIG,
            "max_buffered_bytes: must be at least 1 MiB plus twice "
            "max_frame_bytes (%zu)",
            (size_t)(1 * MIB + 2 * c->max_frame_bytes));
  }
  if (c->quota_bytes < c->max_envelope_bytes) {
    int l = line_of(p, "quota_bytes");
    fail_at(p, l ? l : line_of(p, "max_envelope_bytes"), SYNOD_ECONFIG,
            "quota_bytes: must be at least max_envelope_bytes (%zu)",
            c->max_envelope_bytes);
  }
  if (c->retry_min_ms > c->retry_max_ms) {
    int l = line_of(p, "retry_min");
    fail_at(p, l ? l : line_of(p, "retry_max"), SYNOD_ECONFIG,
            "retry_min: must not exceed retry_max (%llums)",
            (unsigned long long)c->retry_max_ms);
  }
  if (c->delivered == CONFIG_RETENTION_DELETE && line_of(p, "keep_for") != 0)
    fail_at(p, line_of(p, "keep_for"), SYNOD_ECONFIG,
            "keep_for: only meaningful with delivered = keep");
  /* Peers named before [relay] name was read escaped the own-name check. */
  for (size_t i = 0; i < c->npeers; i++)
    if (strcmp(c->peers[i].name, c->name) == 0)
      fail_at(p, c->peers[i].line, SYNOD_ECONFIG,
              "[peer \"%s\"]: a relay cannot be its own peer", c->name);
  if (c->operator_name[0] == '\0')
    memcpy(c->operator_name, c->name, strlen(c->name) + 1);
}

static void set_defaults(relay_config_t *c) {
  c->log_level = SYNOD_LOG_INFO;
  c->max_batch = 256;
  c->max_frame_bytes = 262144;
  c->handshake_timeout_ms = 10 * SEC;
  c->idle_timeout_ms = 300 * SEC;
  c->frame_timeout_ms = 30 * SEC;
  c->max_connections = 1024;
  c->max_buffered_bytes = 256 * MIB;
  c->message_rate = 50;
  c->message_burst = 200;
  c->quota_bytes = 64 * MIB;
  c->max_ttl_ms = 7 * DAY;
  c->default_ttl_ms = 2 * DAY;
  c->max_envelope_bytes = 65536;
  c->enroll_code_ttl_ms = 7 * DAY;
  c->delivered = CONFIG_RETENTION_DELETE;
  c->keep_for_ms = 7 * DAY;
  c->window = 256;
  c->retry_min_ms = 100;
  c->retry_max_ms = 60 * SEC;
}

/* Parses file (read as path) into cfg: the one code path of config_load()
 * and config_load_buffer(). Closes file whatever happens; file NULL is the
 * failure to open it, with errno set. */
static int load(relay_config_t *cfg, const char *path, FILE *file, char *err,
                size_t errlen) {
  struct parser p = {.cfg = cfg,
                     .path = path,
                     .err = err,
                     .errlen = errlen,
                     .cur_section = -1};
  int open_errno = errno;
  memset(cfg, 0, sizeof *cfg);
  if (errlen > 0)
    err[0] = '\0';
  set_defaults(cfg);

  p.file = file;
  cfg->path = strdup(path);
  const char *slash = strrchr(path, '/');
  p.dir =
      slash == NULL ? strdup("") : strndup(path, (size_t)(slash - path + 1));
  if (cfg->path == NULL || p.dir == NULL) {
    fail_at(&p, 0, SYNOD_ENOMEM, "out of memory");
    goto out;
  }
  if (slash == path)
    p.dir[1] = '\0'; /* "/relay.conf" -> "/" */
  else if (slash != NULL)
    p.dir[slash - path] = '\0';

  if (p.file == NULL) {
    fail_at(&p, 0, SYNOD_EIO, "cannot open: %s", strerror(open_errno));
    goto out;
  }
  int rc = ini_parse_stream(reader, &p, handler, &p);
  if (rc == -2)
    fail_at(&p, 0, SYNOD_ENOMEM, "out of memory");
  else if (rc > 0 && (p.err_line <= 0 || rc < p.err_line)) {
    p.err_line = 0; /* inih's syntax error came first */
    fail_at(&p, rc, SYNOD_ECONFIG,
            "syntax error: expected 'key = value' or '[section]'");
  }
  if (ferror(p.file))
    fail_at(&p, 0, SYNOD_EIO, "read error");
  if (p.err_line == 0) {
    peer_finish(&p);
    check_whole(&p);
  }
out:
  if (p.file != NULL)
    fclose(p.file);
  free(p.linebuf);
  free(p.dir);
  if (p.err_line != 0) {
    config_free(cfg);
    return p.err_code;
  }
  return 0;
}

int config_load(relay_config_t *cfg, const char *path, char *err,
                size_t errlen) {
  return load(cfg, path, fopen(path, "r"), err, errlen);
}

int config_load_buffer(relay_config_t *cfg, const char *path, const char *text,
                       size_t len, char *err, size_t errlen) {
  /* fmemopen() reads the buffer in place: text must not change meanwhile.
   * glibc accepts size 0 (an empty file) since 2.22. */
  static char empty[1];
  FILE *f = fmemopen(len ? synod_wire_lend(text) : empty, len, "r");
  return load(cfg, path, f, err, errlen);
}

void config_free(relay_config_t *cfg) {
  if (cfg == NULL)
    return;
  for (size_t i = 0; i < cfg->npeers; i++) {
    free(cfg->peers[i].address);
    free(cfg->peers[i].host);
  }
  free(cfg->peers);
  free(cfg->path);
  free(cfg->listen);
  free(cfg->key_file);
  free(cfg->tls_cert);
  free(cfg->tls_key);
  free(cfg->conninfo);
  memset(cfg, 0, sizeof *cfg);
}

const relay_config_peer_t *config_find_peer(const relay_config_t *cfg,
                                            const char *name) {
  for (size_t i = 0; i < cfg->npeers; i++)
    if (strcmp(cfg->peers[i].name, name) == 0)
      return &cfg->peers[i];
  return NULL;
}
