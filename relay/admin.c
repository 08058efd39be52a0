/*
 * synod-relay's operator commands. Output meant for people goes to stdout,
 * problems to stderr as "synod-relay CMD: reason".
 */
#include "admin.h"
#include "server.h"

#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "synod/encoding.h"
#include "synod/keyfile.h"
#include "synod/log.h"
#include "synod/userid.h"

static void errorf(const admin_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void errorf(const admin_cmd_t *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "synod-relay %s: ", cmd->name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void admin_print_help(const admin_cmd_t *cmd, FILE *out) {
  fputs(cmd->usage, out);
  fputs("\nexit status: 0 success, 1 runtime failure (database, key file, "
        "...),\n             2 usage error or invalid configuration\n",
        out);
}

static int usage_error(const admin_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const admin_cmd_t *cmd, const char *fmt, ...) {
  if (fmt != NULL) {
    va_list ap;
    fprintf(stderr, "synod-relay %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
  fprintf(stderr, "try 'synod-relay %s --help'\n", cmd->name);
  return ADMIN_EXIT_USAGE;
}

int admin_load_config(relay_config_t *cfg, const char *path) {
  if (path == NULL)
    path = getenv("SYNOD_RELAY_CONFIG");
  if (path == NULL || path[0] == '\0')
    path = ADMIN_DEFAULT_CONFIG;
  char err[CONFIG_ERR_MAX];
  int rc = config_load(cfg, path, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "synod-relay: %s\n", err);
    return ADMIN_EXIT_USAGE;
  }
  return ADMIN_EXIT_OK;
}

/*
 * Options common to the commands: -c FILE, -h, plus extra ones. Returns -1
 * to go on, or the exit status to return now. *nargs receives the operand
 * count, operands are argv[optind...].
 */
enum { OPT_JSON = 256 };

struct opts {
  const char *config;
  const char *key_file;
  bool json;
};

static int parse_opts(const admin_cmd_t *cmd, int argc, char **argv,
                      const char *shortopts, const struct option *longopts,
                      struct opts *o, int want_args, int *first) {
  optind = 0; /* glibc: full re-initialisation */
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
    switch (c) {
    case 'h':
      admin_print_help(cmd, stdout);
      return ADMIN_EXIT_OK;
    case 'c':
      o->config = optarg;
      break;
    case 'k':
      o->key_file = optarg;
      break;
    case OPT_JSON:
      o->json = true;
      break;
    case ':':
      return usage_error(cmd, "option %s needs an argument", argv[optind - 1]);
    default:
      return usage_error(cmd, "unknown option %s", argv[optind - 1]);
    }
  }
  if (argc - optind != want_args)
    return usage_error(cmd, want_args == 0 ? "takes no operands"
                                           : "expects exactly one operand");
  *first = optind;
  return -1;
}

static const struct option common_long[] = {
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Connects to the relay's database; NULL after saying why on stderr. */
static PGconn *db_connect(const admin_cmd_t *cmd, const relay_config_t *cfg) {
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *vals[] = {cfg->conninfo, "synod-relay", NULL};
  /* "If expand_dbname is non-zero, the value for the first dbname key word
   * is checked to see if it is a connection string" (libpq,
   * PQconnectdbParams), so conninfo keeps its whole syntax. */
  PGconn *conn = PQconnectdbParams(keys, vals, 1);
  if (conn == NULL) {
    errorf(cmd, "cannot connect to the database: out of memory");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    char *msg = PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
      n--;
    errorf(cmd, "cannot connect to the database: %.*s", (int)n, msg);
    PQfinish(conn);
    return NULL;
  }
  return conn;
}

/* The server's message for a failed result, without the trailing newline. */
static void report_pg(const admin_cmd_t *cmd, const char *what,
                      const PGresult *r) {
  const char *msg = PQresultErrorMessage(r);
  size_t n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n')
    n--;
  errorf(cmd, "%s: %.*s", what, (int)n, msg);
}

/* For commands that read the relay's tables: the schema must be current. */
static int need_schema(const admin_cmd_t *cmd, PGconn *conn) {
  char err[256];
  if (schema_check(conn, err, sizeof err) != 0) {
    errorf(cmd, "%s", err);
    return -1;
  }
  return 0;
}

/* --- keygen, pubkey ----------------------------------------------------------
 */

static const struct option key_long[] = {
    {"config", required_argument, NULL, 'c'},
    {"key-file", required_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Where peers reach us: the listen address, unless it is a wildcard, in
 * which case our name (a DNS name) with the listen port. */
static void print_peer_block(const relay_config_t *cfg, const char *keyline) {
  const char *port = strrchr(cfg->listen, ':') + 1;
  bool wildcard = strncmp(cfg->listen, "0.0.0.0:", 8) == 0 ||
                  strncmp(cfg->listen, "[::]:", 5) == 0;
  printf("# Paste this into the configuration of each relay that federates\n"
         "# with %s; check the key with its operator out of band.\n",
         cfg->name);
  printf("[peer \"%s\"]\n", cfg->name);
  if (wildcard)
    printf("address = %s:%s\n", cfg->name, port);
  else
    printf("address = %s\n", cfg->listen);
  printf("key = %s\n", keyline);
  printf("operator = \"%s\"\n", cfg->operator_name);
}

/* Resolves -k / -c into the key file path; *cfg is loaded when -k is not
 * given (then *have_cfg is set and the caller frees it). */
static int key_target(const admin_cmd_t *cmd, int argc, char **argv,
                      relay_config_t *cfg, bool *have_cfg, const char **path) {
  struct opts o = {0};
  int first;
  int rc = parse_opts(cmd, argc, argv, "+:c:k:h", key_long, &o, 0, &first);
  if (rc >= 0)
    return rc;
  if (o.key_file != NULL && o.config != NULL)
    return usage_error(cmd, "give -k or -c, not both");
  *have_cfg = false;
  if (o.key_file != NULL) {
    *path = o.key_file;
    return -1;
  }
  rc = admin_load_config(cfg, o.config);
  if (rc != ADMIN_EXIT_OK)
    return rc;
  *have_cfg = true;
  *path = cfg->key_file;
  return -1;
}

static int print_public(const relay_config_t *cfg, bool have_cfg,
                        const uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]) {
  char line[SYNOD_KEYFILE_TEXT_MAX];
  if (synod_keyfile_format_public(line, sizeof line, SYNOD_KEY_ED25519, pk) !=
      0)
    return ADMIN_EXIT_FAIL;
  if (have_cfg)
    print_peer_block(cfg, line);
  else
    printf("%s\n", line);
  return ADMIN_EXIT_OK;
}

int admin_keygen(const admin_cmd_t *cmd, int argc, char **argv) {
  relay_config_t cfg;
  bool have_cfg = false;
  const char *path = NULL;
  int rc = key_target(cmd, argc, argv, &cfg, &have_cfg, &path);
  if (rc >= 0)
    return rc;

  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES], sk[SYNOD_ED25519_SECRET_BYTES];
  int status = ADMIN_EXIT_FAIL;
  if (synod_ed25519_keygen(pk, sk) != 0) {
    errorf(cmd, "cannot generate a key: %s", synod_strerror(SYNOD_ECRYPTO));
    goto out;
  }
  rc = synod_keyfile_write_secret(path, SYNOD_KEY_ED25519, sk, 0);
  synod_wipe(sk, sizeof sk);
  if (rc == SYNOD_EEXIST) {
    errorf(cmd,
           "%s already exists; refusing to overwrite a relay key, which "
           "peers have pinned (synod-relay pubkey prints its line)",
           path);
    goto out;
  }
  if (rc != 0) {
    errorf(cmd, "cannot write %s: %s", path, synod_strerror(rc));
    goto out;
  }
  fprintf(stderr, "synod-relay keygen: wrote %s\n", path);
  status = print_public(&cfg, have_cfg, pk);
out:
  if (have_cfg)
    config_free(&cfg);
  return status;
}

int admin_pubkey(const admin_cmd_t *cmd, int argc, char **argv) {
  relay_config_t cfg;
  bool have_cfg = false;
  const char *path = NULL;
  int rc = key_target(cmd, argc, argv, &cfg, &have_cfg, &path);
  if (rc >= 0)
    return rc;

  uint8_t pk[SYNOD_ED25519_PUBLIC_BYTES], sk[SYNOD_ED25519_SECRET_BYTES];
  int status = ADMIN_EXIT_FAIL;
  rc = synod_keyfile_read_secret(sk, SYNOD_KEY_ED25519, path);
  if (rc != 0) {
    errorf(cmd, "cannot read %s: %s", path, synod_strerror(rc));
    goto out;
  }
  rc = synod_ed25519_public(pk, sk);
  synod_wipe(sk, sizeof sk);
  if (rc != 0) {
    errorf(cmd, "%s: %s", path, synod_strerror(rc));
    goto out;
  }
  status = print_public(&cfg, have_cfg, pk);
out:
  if (have_cfg)
    config_free(&cfg);
  return status;
}

/* --- migrate -----------------------------------------------------------------
 */

static void print_applied(void *data, const schema_migration_t *m) {
  (void)data;
  printf("applied schema version %d: %s\n", m->version, m->description);
  fflush(stdout);
}

int admin_migrate(const admin_cmd_t *cmd, int argc, char **argv) {
  struct opts o = {0};
  int first;
  int rc = parse_opts(cmd, argc, argv, "+:c:h", common_long, &o, 0, &first);
  if (rc >= 0)
    return rc;
  relay_config_t cfg;
  if ((rc = admin_load_config(&cfg, o.config)) != ADMIN_EXIT_OK)
    return rc;
  int status = ADMIN_EXIT_FAIL;
  PGconn *conn = db_connect(cmd, &cfg);
  if (conn == NULL)
    goto out;
  int before = 0, after = 0;
  char err[512];
  if (schema_current_version(conn, &before, err, sizeof err) != 0) {
    errorf(cmd, "%s", err);
    goto out;
  }
  rc = schema_migrate(conn, print_applied, NULL, &after, err, sizeof err);
  if (rc != 0) {
    errorf(cmd, "%s", err);
    goto out;
  }
  if (after == before)
    printf("schema is up to date at version %d\n", after);
  else
    printf("schema is now at version %d\n", after);
  status = ADMIN_EXIT_OK;
out:
  PQfinish(conn);
  config_free(&cfg);
  return status;
}

/* --- enrolment codes
 * ----------------------------------------------------------- */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int admin_enroll_code_new(char text[static ADMIN_ENROLL_CODE_TEXT]) {
  uint8_t r[ADMIN_ENROLL_CODE_CHARS];
  int rc = synod_random(r, sizeof r);
  if (rc != 0)
    return rc;
  size_t o = 0;
  for (size_t i = 0; i < sizeof r; i++) {
    if (i > 0 && i % 4 == 0)
      text[o++] = '-';
    text[o++] = b32[r[i] & 31]; /* 256 is a multiple of 32: uniform */
  }
  text[o] = '\0';
  synod_wipe(r, sizeof r);
  return 0;
}

int admin_enroll_code_hash(uint8_t hash[static SYNOD_SHA256_BYTES],
                           const char *code, size_t len) {
  char canon[ADMIN_ENROLL_CODE_CHARS];
  size_t n = 0;
  int rc = SYNOD_EPARSE;
  for (size_t i = 0; i < len; i++) {
    char c = code[i];
    if (c == '-' || c == ' ')
      continue;
    if (c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) ||
        n == sizeof canon)
      goto out;
    canon[n++] = c;
  }
  if (n != sizeof canon)
    goto out;
  rc = synod_sha256(hash, (const uint8_t *)canon, sizeof canon);
out:
  synod_wipe(canon, sizeof canon);
  return rc;
}

/* The expiry of the code just set, as text, in UTC. */
#define CODE_EXPIRY_TEXT                                                       \
  "to_char(enroll_code_expires AT TIME ZONE 'UTC',"                            \
  " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* --- user add | list | disable | enable
 * ------------------------------------------ */

static const struct option list_long[] = {
    {"config", required_argument, NULL, 'c'},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parses -c FILE NAME, loads the config, checks NAME and connects. Returns
 * -1 with *conn open, or an exit status. */
static int user_prologue(const admin_cmd_t *cmd, int argc, char **argv,
                         relay_config_t *cfg, PGconn **conn,
                         const char **name) {
  struct opts o = {0};
  int first = 0;
  int rc = parse_opts(cmd, argc, argv, ":c:h", common_long, &o, 1, &first);
  if (rc >= 0)
    return rc;
  *name = argv[first];
  if (synod_userid_check_local(*name) != 0)
    return usage_error(cmd,
                       "'%s' is not a user name: 1 to %d of a-z 0-9 . _ -, "
                       "starting with a letter or digit",
                       *name, SYNOD_USERID_LOCAL_MAX);
  if ((rc = admin_load_config(cfg, o.config)) != ADMIN_EXIT_OK)
    return rc;
  *conn = db_connect(cmd, cfg);
  if (*conn == NULL || need_schema(cmd, *conn) != 0) {
    PQfinish(*conn);
    config_free(cfg);
    return ADMIN_EXIT_FAIL;
  }
  return -1;
}

/* A fresh enrolment code for `user add` and `user reenroll`, and the
 * parameters of the statement that stores it: $1 the account name, $2 the
 * code's SHA-256 (binary), $3 its lifetime in milliseconds
 * (enroll_code_ttl). Wipe it with synod_wipe() after use. */
typedef struct new_code {
  char code[ADMIN_ENROLL_CODE_TEXT];
  uint8_t hash[SYNOD_SHA256_BYTES];
  char ttl[24];
  const char *params[3];
  int lengths[3], formats[3];
} new_code_t;

static int new_code(const admin_cmd_t *cmd, const relay_config_t *cfg,
                    const char *name, new_code_t *nc) {
  memset(nc, 0, sizeof *nc);
  if (admin_enroll_code_new(nc->code) != 0 ||
      admin_enroll_code_hash(nc->hash, nc->code, strlen(nc->code)) != 0) {
    errorf(cmd, "cannot make an enrolment code: %s",
           synod_strerror(SYNOD_ECRYPTO));
    return -1;
  }
  snprintf(nc->ttl, sizeof nc->ttl, "%" PRIu64, cfg->enroll_code_ttl_ms);
  nc->params[0] = name;
  nc->params[1] = (const char *)nc->hash;
  nc->params[2] = nc->ttl;
  nc->lengths[1] = (int)sizeof nc->hash;
  nc->formats[1] = 1;
  return 0;
}

int admin_user_add(const admin_cmd_t *cmd, int argc, char **argv) {
  relay_config_t cfg = {0}; /* user_prologue loads it when it returns -1 */
  PGconn *conn = NULL;
  const char *name;
  int rc = user_prologue(cmd, argc, argv, &cfg, &conn, &name);
  if (rc >= 0)
    return rc;

  int status = ADMIN_EXIT_FAIL;
  new_code_t nc;
  if (new_code(cmd, &cfg, name, &nc) != 0)
    goto out;
  PGresult *r = PQexecParams(
      conn,
      "INSERT INTO accounts (name, enroll_code_hash, enroll_code_expires)"
      " VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')"
      " RETURNING " CODE_EXPIRY_TEXT,
      3, NULL, nc.params, nc.lengths, nc.formats, 0);
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    printf("added %s@%s\n", name, cfg.name);
    printf("enrolment code: %s\n", nc.code);
    printf("valid until: %s\n", PQgetvalue(r, 0, 0));
    printf("Give the code to the user over a channel you trust; it works "
           "once, for the\nfirst device that enrols before it expires, and "
           "is not stored.\n");
    status = ADMIN_EXIT_OK;
  } else {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "23505") == 0) /* unique_violation */
      errorf(cmd, "user %s already exists", name);
    else
      report_pg(cmd, "cannot add the user", r);
  }
  PQclear(r);
out:
  synod_wipe(&nc, sizeof nc);
  PQfinish(conn);
  config_free(&cfg);
  return status;
}

static int set_disabled(const admin_cmd_t *cmd, int argc, char **argv,
                        bool disabled) {
  relay_config_t cfg;
  PGconn *conn = NULL;
  const char *name;
  int rc = user_prologue(cmd, argc, argv, &cfg, &conn, &name);
  if (rc >= 0)
    return rc;
  int status = ADMIN_EXIT_FAIL;
  const char *params[2] = {name, disabled ? "t" : "f"};
  PGresult *r =
      /* The NOTIFY is delivered at commit: a running relay then closes
       * the sessions the account already has. */
      PQexecParams(conn,
                   "WITH u AS (UPDATE accounts SET disabled = $2"
                   " WHERE name = $1 RETURNING name)"
                   " SELECT pg_notify('" SERVER_ACCOUNTS_CHANNEL "', name)"
                   " FROM u",
                   2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    report_pg(cmd, "cannot update the user", r);
  } else if (PQntuples(r) == 0) {
    errorf(cmd, "no such user: %s", name);
  } else {
    printf("%s %s@%s\n", disabled ? "disabled" : "enabled", name, cfg.name);
    status = ADMIN_EXIT_OK;
  }
  PQclear(r);
  PQfinish(conn);
  config_free(&cfg);
  return status;
}

int admin_user_disable(const admin_cmd_t *cmd, int argc, char **argv) {
  return set_disabled(cmd, argc, argv, true);
}

int admin_user_enable(const admin_cmd_t *cmd, int argc, char **argv) {
  return set_disabled(cmd, argc, argv, false);
}

/*
 * user reenroll: the operator's half of a key reset (proto/README.md 7.2).
 * The account's identity key binding is cleared and a new one-time code
 * stored, in one statement: from then on the old key is refused (no key is
 * bound, and a session without the code is EAUTH), and the first key that
 * presents the code is bound, as at the first enrolment. The announcement
 * chain is not touched: the user's reset announcement, published from the
 * new key, extends it. Logged (logfmt on stderr) with the old key, so the
 * operator's log says when the binding changed and from what.
 */
int admin_user_reenroll(const admin_cmd_t *cmd, int argc, char **argv) {
  relay_config_t cfg = {0}; /* user_prologue loads it when it returns -1 */
  PGconn *conn = NULL;
  const char *name;
  int rc = user_prologue(cmd, argc, argv, &cfg, &conn, &name);
  if (rc >= 0)
    return rc;

  int status = ADMIN_EXIT_FAIL;
  new_code_t nc;
  if (new_code(cmd, &cfg, name, &nc) != 0)
    goto out;
  /* The old key is read in the same statement, under the row lock the
   * UPDATE takes, so the log names the binding that was really cleared. */
  PGresult *r = PQexecParams(
      conn,
      "WITH u AS (UPDATE accounts a SET identity_key = NULL,"
      " enroll_code_hash = $2, enrolled_at = NULL,"
      " enroll_code_expires = now() + $3::bigint * interval '1 millisecond'"
      " FROM (SELECT id, identity_key FROM accounts WHERE name = $1"
      "       FOR UPDATE) o"
      " WHERE a.id = o.id"
      " RETURNING a.name, o.identity_key AS old, a.disabled,"
      "  a.enroll_code_expires)"
      " SELECT coalesce(encode(old, 'hex'), ''), disabled,"
      " pg_notify('" SERVER_ACCOUNTS_CHANNEL "', name), " CODE_EXPIRY_TEXT
      " FROM u",
      3, NULL, nc.params, nc.lengths, nc.formats, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    report_pg(cmd, "cannot re-enrol the user", r);
  } else if (PQntuples(r) == 0) {
    errorf(cmd, "no such user: %s", name);
  } else {
    const char *old = PQgetvalue(r, 0, 0);
    bool disabled = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    char id[SYNOD_USERID_MAX + 2];
    snprintf(id, sizeof id, "%s@%s", name, cfg.name);
    synod_log(SYNOD_LOG_WARN, "account re-enrolled",
              "user=%s old_identity_key=%s", id, *old ? old : "none");
    printf("re-enrolled %s@%s: %s\n", name, cfg.name,
           *old ? "its identity key is unbound and can no longer log in"
                : "it had no identity key bound yet");
    printf("enrolment code: %s\n", nc.code);
    printf("valid until: %s\n", PQgetvalue(r, 0, 3));
    printf("Give the code to the user over a channel you trust, after "
           "checking it is\nthem: it works once, for the first key that "
           "presents it, and is not stored.\nThe user runs 'synod keys reset "
           "--code CODE' (on a new device: 'synod init'\nwithout --code "
           "first).\n");
    if (disabled)
      printf("The account is disabled: 'synod-relay user enable %s' first.\n",
             name);
    status = ADMIN_EXIT_OK;
  }
  PQclear(r);
out:
  synod_wipe(&nc, sizeof nc);
  PQfinish(conn);
  config_free(&cfg);
  return status;
}

/* A JSON string; names are checked ASCII, but escape anyway. */
static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

int admin_user_list(const admin_cmd_t *cmd, int argc, char **argv) {
  struct opts o = {0};
  int first;
  int rc = parse_opts(cmd, argc, argv, ":c:h", list_long, &o, 0, &first);
  if (rc >= 0)
    return rc;
  relay_config_t cfg;
  if ((rc = admin_load_config(&cfg, o.config)) != ADMIN_EXIT_OK)
    return rc;
  int status = ADMIN_EXIT_FAIL;
  PGresult *r = NULL;
  PGconn *conn = db_connect(cmd, &cfg);
  if (conn == NULL || need_schema(cmd, conn) != 0)
    goto out;
  r = PQexec(conn,
             "SELECT name, CASE WHEN identity_key IS NOT NULL THEN 'enrolled'"
             "  WHEN enroll_code_expires > now() THEN 'pending'"
             "  ELSE 'expired' END, disabled, stored_bytes,"
             " to_char(created_at AT TIME ZONE 'UTC',"
             "         'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
             " FROM accounts ORDER BY name");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    report_pg(cmd, "cannot list users", r);
    goto out;
  }
  int n = PQntuples(r);
  if (o.json)
    putchar('[');
  else
    printf("%-32s %-8s %-8s %14s  %s\n", "NAME", "STATE", "DISABLED",
           "STORED_BYTES", "CREATED");
  for (int i = 0; i < n; i++) {
    const char *name = PQgetvalue(r, i, 0);
    const char *state = PQgetvalue(r, i, 1);
    bool disabled = strcmp(PQgetvalue(r, i, 2), "t") == 0;
    const char *bytes = PQgetvalue(r, i, 3);
    const char *created = PQgetvalue(r, i, 4);
    if (o.json) {
      printf("%s\n  {\"name\": ", i ? "," : "");
      json_string(name);
      printf(", \"user\": ");
      char id[SYNOD_USERID_MAX + 2];
      snprintf(id, sizeof id, "%s@%s", name, cfg.name);
      json_string(id);
      printf(", \"state\": \"%s\", \"disabled\": %s, \"stored_bytes\": %s, "
             "\"created_at\": \"%s\"}",
             state, disabled ? "true" : "false", bytes, created);
    } else {
      printf("%-32s %-8s %-8s %14s  %s\n", name, state, disabled ? "yes" : "no",
             bytes, created);
    }
  }
  if (o.json)
    printf("%s]\n", n ? "\n" : "");
  status = ADMIN_EXIT_OK;
out:
  PQclear(r);
  PQfinish(conn);
  config_free(&cfg);
  return status;
}

/* --- status
 * --------------------------------------------------------------------- */

/* "3d 4h", "5m 12s", "40s": an age for people. */
static void format_age(char *out, size_t outlen, long long s) {
  if (s >= 86400)
    snprintf(out, outlen, "%lldd %lldh", s / 86400, s % 86400 / 3600);
  else if (s >= 3600)
    snprintf(out, outlen, "%lldh %lldm", s / 3600, s % 3600 / 60);
  else if (s >= 60)
    snprintf(out, outlen, "%lldm %llds", s / 60, s % 60);
  else
    snprintf(out, outlen, "%llds", s);
}

static PGresult *query(const admin_cmd_t *cmd, PGconn *conn, const char *sql) {
  PGresult *r = PQexec(conn, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    report_pg(cmd, "status query failed", r);
    PQclear(r);
    return NULL;
  }
  return r;
}

int admin_status(const admin_cmd_t *cmd, int argc, char **argv) {
  struct opts o = {0};
  int first;
  int rc = parse_opts(cmd, argc, argv, "+:c:h", common_long, &o, 0, &first);
  if (rc >= 0)
    return rc;
  relay_config_t cfg;
  if ((rc = admin_load_config(&cfg, o.config)) != ADMIN_EXIT_OK)
    return rc;
  int status = ADMIN_EXIT_FAIL;
  PGresult *acc = NULL, *in = NULL, *out = NULL, *no = NULL;
  PGconn *conn = db_connect(cmd, &cfg);
  if (conn == NULL || need_schema(cmd, conn) != 0)
    goto done;
  /* One snapshot for all the figures. */
  PQclear(PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  acc = query(cmd, conn,
              "SELECT count(*), count(identity_key),"
              " count(*) FILTER (WHERE disabled) FROM accounts");
  in = query(cmd, conn,
             "SELECT count(*), coalesce(sum(octet_length(envelope)), 0),"
             " coalesce(extract(epoch FROM now() - min(received_at))::bigint,"
             " -1) FROM inbox WHERE envelope IS NOT NULL");
  out = query(
      cmd, conn,
      "SELECT peer, count(*),"
      " extract(epoch FROM now() - min(queued_at))::bigint"
      " FROM outbox WHERE envelope IS NOT NULL GROUP BY peer ORDER BY peer");
  no = query(cmd, conn, "SELECT count(*) FROM notices");
  PQclear(PQexec(conn, "COMMIT"));
  if (acc == NULL || in == NULL || out == NULL || no == NULL)
    goto done;

  printf("relay %s (operator: %s), schema version %d\n", cfg.name,
         cfg.operator_name, schema_latest_version());
  printf("accounts: %s total, %s enrolled, %s disabled\n",
         PQgetvalue(acc, 0, 0), PQgetvalue(acc, 0, 1), PQgetvalue(acc, 0, 2));
  char age[32] = "-";
  long long oldest = strtoll(PQgetvalue(in, 0, 2), NULL, 10);
  if (oldest >= 0)
    format_age(age, sizeof age, oldest);
  printf("inbox: %s messages waiting for delivery, %s bytes, oldest %s\n",
         PQgetvalue(in, 0, 0), PQgetvalue(in, 0, 1), age);
  printf("notices: %s delivery-failure notices waiting\n",
         PQgetvalue(no, 0, 0));
  printf("outbox:\n  %-40s %10s  %s\n", "PEER", "QUEUED", "OLDEST");
  int n = PQntuples(out);
  for (size_t i = 0; i < cfg.npeers; i++) {
    const char *queued = "0";
    snprintf(age, sizeof age, "-");
    for (int j = 0; j < n; j++) {
      if (strcmp(PQgetvalue(out, j, 0), cfg.peers[i].name) != 0)
        continue;
      queued = PQgetvalue(out, j, 1);
      format_age(age, sizeof age, strtoll(PQgetvalue(out, j, 2), NULL, 10));
    }
    printf("  %-40s %10s  %s\n", cfg.peers[i].name, queued, age);
  }
  /* Messages for relays no longer configured wait until they expire. */
  for (int j = 0; j < n; j++) {
    if (config_find_peer(&cfg, PQgetvalue(out, j, 0)) != NULL)
      continue;
    format_age(age, sizeof age, strtoll(PQgetvalue(out, j, 2), NULL, 10));
    printf("  %-40s %10s  %s  (not a configured peer)\n", PQgetvalue(out, j, 0),
           PQgetvalue(out, j, 1), age);
  }
  status = ADMIN_EXIT_OK;
done:
  PQclear(acc);
  PQclear(in);
  PQclear(out);
  PQclear(no);
  PQfinish(conn);
  config_free(&cfg);
  return status;
}

int admin_run(const admin_cmd_t *cmd, int argc, char **argv) {
  struct opts o = {0};
  int first;
  int rc = parse_opts(cmd, argc, argv, "+:c:h", common_long, &o, 0, &first);
  if (rc >= 0)
    return rc;
  relay_config_t cfg;
  if ((rc = admin_load_config(&cfg, o.config)) != ADMIN_EXIT_OK)
    return rc;
  int status = server_run(&cfg) == 0 ? ADMIN_EXIT_OK : ADMIN_EXIT_FAIL;
  config_free(&cfg);
  return status;
}
