/*
 * synod: the client command line.
 *
 * Subcommands are a table; each prints its own --help. A command is one or
 * two words ("lookup", "trust add"); the longest match wins. Commands the
 * client does not implement yet are absent rather than stubbed.
 *
 * Secrets never come from the command line: the passphrase is read from
 * the file named by $SYNOD_PASSPHRASE_FILE, else prompted on the terminal
 * without echo.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "synod/client.h"
#include "synod/crypto.h"
#include "synod/err.h"

#include "chat.h"

#define EXIT_OK      0
#define EXIT_FAIL    1
#define EXIT_USAGE   2
#define EXIT_REFUSED 3

#define PASS_MAX 1024
#define BODY_MAX (60u * 1024u)

typedef struct cmd cmd_t;
typedef int (*cmd_fn)(const cmd_t *cmd, int argc, char **argv);
struct cmd {
  const char *name;
  cmd_fn fn;
  const char *summary;
  const char *help;
};

#define COMMON_OPTIONS                                                         \
  "  -H, --home DIR       the profile directory (default: $SYNOD_HOME, else\n" \
  "                       ~/.config/synod)\n"                                  \
  "  -t, --timeout MS     per relay, connect to answer (default 5000)\n"       \
  "  -h, --help           show this help and exit\n"
#define PASS_NOTE                                                              \
  "The passphrase is read from the file named by $SYNOD_PASSPHRASE_FILE\n"     \
  "(one trailing newline ignored), else asked on the terminal without echo.\n"
#define EXIT_NOTE(extra)                                                       \
  "\nexit status: 0 success, 1 failure, 2 usage error" extra "\n"

/* --- options shared by every command -------------------------------------- */

typedef struct common {
  const char *home;
  synod_client_net_opts_t net;
  bool json;
  bool follow;
  bool confirm;
  const char *user, *code, *device;
  char codebuf[128]; /* the code read from standard input (--code -) */
  unsigned quorum;
  const char **relays;
  size_t nrelays;
} common_t;

enum {
  OPT_USER = 256,
  OPT_CODE,
  OPT_DEVICE,
  OPT_RELAY,
  OPT_QUORUM,
  OPT_CONFIRM
};

/* Parses the options of argv (argv[0] is the command); *first is the
 * index of the first operand. allowed: which long options the command
 * takes, as a string of their short letters / codes. Returns -1 on
 * success, else the exit status (help printed: 0, usage: 2). */
static int parse(const cmd_t *cmd, int argc, char **argv, common_t *o,
                 const char *allowed, int *first) {
  static const struct option longs[] = {
      {"home", required_argument, NULL, 'H'},
      {"timeout", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},
      {"json", no_argument, NULL, 'j'},
      {"follow", no_argument, NULL, 'f'},
      {"user", required_argument, NULL, OPT_USER},
      {"code", required_argument, NULL, OPT_CODE},
      {"device", required_argument, NULL, OPT_DEVICE},
      {"relay", required_argument, NULL, OPT_RELAY},
      {"quorum", required_argument, NULL, OPT_QUORUM},
      {"confirm", no_argument, NULL, OPT_CONFIRM},
      {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof *o);
  o->home = getenv("SYNOD_HOME");
  if (o->home && !*o->home)
    o->home = NULL;
  optind = 1;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "H:t:hjf", longs, NULL)) != -1) {
    bool ok = ch == 'H' || ch == 't' || ch == 'h' ||
              (ch < 256 && ch > 0 && strchr(allowed, ch)) ||
              (ch >= 256 && strchr(allowed, 'U' + (ch - 256)));
    if (ch == '?' || ch == ':' || !ok) {
      fprintf(stderr,
              "synod %s: unknown or incomplete option '%s' (try --help)\n",
              cmd->name, argv[optind - 1]);
      return EXIT_USAGE;
    }
    char *end = NULL;
    switch (ch) {
    case 'h':
      fputs(cmd->help, stdout);
      return EXIT_OK;
    case 'H':
      o->home = optarg;
      break;
    case 't':
      errno = 0;
      o->net.timeout_ms = strtoull(optarg, &end, 10);
      if (errno || !end || *end || o->net.timeout_ms == 0) {
        fprintf(stderr, "synod %s: --timeout wants milliseconds\n", cmd->name);
        return EXIT_USAGE;
      }
      break;
    case 'j':
      o->json = true;
      break;
    case 'f':
      o->follow = true;
      break;
    case OPT_CONFIRM:
      o->confirm = true;
      break;
    case OPT_USER:
      o->user = optarg;
      break;
    case OPT_CODE:
      o->code = optarg;
      break;
    case OPT_DEVICE:
      o->device = optarg;
      break;
    case OPT_QUORUM:
      o->quorum = (unsigned)strtoul(optarg, &end, 10);
      if (!end || *end || o->quorum < 2) {
        fprintf(stderr, "synod %s: --quorum wants a number >= 2\n", cmd->name);
        return EXIT_USAGE;
      }
      break;
    case OPT_RELAY: {
      const char **p = realloc(o->relays, (o->nrelays + 1) * sizeof *p);
      if (!p)
        return EXIT_FAIL;
      o->relays = p;
      o->relays[o->nrelays++] = optarg;
      break;
    }
    }
  }
  /* '--code -': the code on standard input keeps it out of the process
   * list, where other local users could read it while the command runs. */
  if (o->code && strcmp(o->code, "-") == 0) {
    if (!fgets(o->codebuf, sizeof o->codebuf, stdin)) {
      fprintf(stderr, "synod %s: --code -: no code on standard input\n",
              cmd->name);
      return EXIT_USAGE;
    }
    o->codebuf[strcspn(o->codebuf, "\r\n")] = '\0';
    if (!o->codebuf[0]) {
      fprintf(stderr, "synod %s: --code -: the line read is empty\n",
              cmd->name);
      return EXIT_USAGE;
    }
    o->code = o->codebuf;
  }
  *first = optind;
  return -1;
}

/* Letters for parse()'s allowed: OPT_USER 'U', OPT_CODE 'V', OPT_DEVICE
 * 'W', OPT_RELAY 'X', OPT_QUORUM 'Y' (see the mapping in parse). */
#define A_USER    "U"
#define A_CODE    "V"
#define A_DEVICE  "W"
#define A_RELAY   "X"
#define A_QUORUM  "Y"
#define A_CONFIRM "Z"

/* --- the passphrase ------------------------------------------------------- */

static int read_pass_file(const char *path, char *buf, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "synod: cannot read SYNOD_PASSPHRASE_FILE %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  ssize_t n, got = 0;
  while ((n = read(fd, buf + got, PASS_MAX - (size_t)got)) > 0)
    got += n;
  close(fd);
  if (n < 0 || got >= (ssize_t)PASS_MAX) {
    fprintf(stderr, "synod: SYNOD_PASSPHRASE_FILE %s: unreadable or too long\n",
            path);
    return -1;
  }
  if (got > 0 && buf[got - 1] == '\n')
    got--;
  if (got > 0 && buf[got - 1] == '\r')
    got--;
  *len = (size_t)got;
  if (got == 0) {
    fprintf(stderr, "synod: SYNOD_PASSPHRASE_FILE %s is empty\n", path);
    return -1;
  }
  return 0;
}

static int prompt(const char *what, char *buf, size_t *len) {
  FILE *tty = fopen("/dev/tty", "r+");
  if (!tty) {
    fprintf(stderr, "synod: no terminal to ask the passphrase on; set "
                    "SYNOD_PASSPHRASE_FILE\n");
    return -1;
  }
  struct termios old, quiet;
  int fd = fileno(tty), echo_off = tcgetattr(fd, &old) == 0;
  if (echo_off) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  fprintf(tty, "%s: ", what);
  fflush(tty);
  char *got = fgets(buf, PASS_MAX, tty);
  if (echo_off)
    tcsetattr(fd, TCSAFLUSH, &old);
  /* C11 7.21.5.3: output may not follow input on one stream without a
   * positioning call between; the newline goes to the descriptor. */
  ssize_t w = write(fd, "\n", 1);
  (void)w;
  fclose(tty);
  if (!got)
    return -1;
  size_t n = strcspn(buf, "\r\n");
  buf[n] = '\0';
  *len = n;
  if (n == 0) {
    fprintf(stderr, "synod: an empty passphrase is not allowed\n");
    return -1;
  }
  return 0;
}

static int get_pass(char *buf, size_t *len, bool confirm) {
  const char *file = getenv("SYNOD_PASSPHRASE_FILE");
  if (file && *file)
    return read_pass_file(file, buf, len);
  if (prompt(confirm ? "New passphrase for this profile" : "Passphrase", buf,
             len) != 0)
    return -1;
  if (confirm) {
    char again[PASS_MAX];
    size_t alen = 0;
    int rc = prompt("Passphrase again", again, &alen);
    bool same = rc == 0 && alen == *len && memcmp(again, buf, alen) == 0;
    synod_wipe(again, sizeof again);
    if (!same) {
      fprintf(stderr, "synod: the passphrases differ\n");
      return -1;
    }
  }
  return 0;
}

/* Asks for the passphrase and opens the profile; on failure says why and
 * returns NULL. The passphrase stays in pass[0..*len) for a command that
 * re-seals keys with it (the caller wipes it), whatever the outcome. */
static synod_client_t *open_profile_pass(const common_t *o, char pass[PASS_MAX],
                                         size_t *len) {
  *len = 0;
  if (get_pass(pass, len, false) != 0)
    return NULL;
  synod_client_t *c = NULL;
  int rc = synod_client_open(&c, o->home, pass, *len);
  if (rc != 0) {
    const char *why = rc == SYNOD_EDECRYPT  ? "wrong passphrase, or the key "
                                              "file was altered"
                      : rc == SYNOD_ENOENT  ? "no profile there; create one "
                                              "with 'synod init'"
                      : rc == SYNOD_EPERM   ? "the profile is accessible to "
                                              "other users (it must be 0700 "
                                              "and its files 0600)"
                      : rc == SYNOD_EVERIFY ? "a profile file was changed "
                                              "outside synod"
                                            : synod_strerror(rc);
    fprintf(stderr, "synod: cannot open the profile %s: %s\n",
            o->home ? o->home : "(default)", why);
    return NULL;
  }
  return c;
}

static synod_client_t *open_profile(const common_t *o) {
  char pass[PASS_MAX];
  size_t len;
  synod_client_t *c = open_profile_pass(o, pass, &len);
  synod_wipe(pass, sizeof pass);
  return c;
}

/* --- output helpers ------------------------------------------------------- */

static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; s && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch == '\n')
      fputs("\\n", out);
    else if (ch < 0x20 || ch == 0x7f)
      fprintf(out, "\\u%04x", ch);
    else
      fputc(ch, out);
  }
  fputc('"', out);
}

static void hex(char *out, const uint8_t *in, size_t n) {
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* The key fingerprint: the identity key in groups of four hex digits. */
static void fingerprint(char out[80], const uint8_t key[32]) {
  char h[65];
  hex(h, key, 32);
  size_t j = 0;
  for (size_t i = 0; i < 64; i++) {
    if (i && i % 4 == 0)
      out[j++] = ' ';
    out[j++] = h[i];
  }
  out[j] = '\0';
}

static void utc(char out[32], uint64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm))
    strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
  else
    snprintf(out, 32, "%llu", (unsigned long long)t);
}

/* Exit status of a failed operation: policy refusals are 3. */
static int exit_of(int rc) {
  switch (rc) {
  case 0:
    return EXIT_OK;
  case SYNOD_ENOQUORUM:
  case SYNOD_EROLLBACK:
  case SYNOD_ESTALE:
  case SYNOD_EEQUIVOCATION:
  case SYNOD_EUNKNOWNUSER:
  case SYNOD_EUNKNOWNPEER:
    return EXIT_REFUSED;
  default:
    return EXIT_FAIL;
  }
}

static bool is_policy(int rc) {
  return exit_of(rc) == EXIT_REFUSED;
}

/* The refusal of a lookup in one sentence a non-expert understands. */
static void plain_refusal(char *out, size_t n, const char *user,
                          const synod_lookup_result_t *lr, unsigned k) {
  const synod_quorum_result_t *d = &lr->decision;
  size_t down = 0, total = d->nrelays;
  for (size_t i = 0; i < d->nrelays; i++)
    down += d->relays[i].status == SYNOD_RELAY_UNREACHABLE;
  switch (d->error) {
  case SYNOD_ENOQUORUM:
    if (down)
      snprintf(out, n,
               "%s's key cannot be confirmed: %zu of your %zu relays did not "
               "answer, and relays of %u different operators must agree on "
               "a key before it is used.",
               user, down, total, k);
    else
      snprintf(out, n,
               "%s's key cannot be confirmed: the relays do not agree on it "
               "(relays of %u different operators must), so someone may be "
               "lying; see below who said what.",
               user, k);
    break;
  case SYNOD_EUNKNOWNUSER:
    snprintf(out, n,
             "%s has no key: the relays say this user does not exist or has "
             "not registered yet.",
             user);
    break;
  case SYNOD_EROLLBACK:
    snprintf(out, n,
             "The relays offer an older key for %s than the one you already "
             "have, which would undo a key change; it was refused.",
             user);
    break;
  case SYNOD_ESTALE:
    snprintf(out, n,
             "The relays' answers about %s are too old or dated in the "
             "future; check this computer's clock, or try again later.",
             user);
    break;
  case SYNOD_EEQUIVOCATION:
    snprintf(out, n,
             "Relays vouch for two different keys for %s at once: someone is "
             "lying, so neither key is used.",
             user);
    break;
  case SYNOD_EUNKNOWNPEER:
    snprintf(out, n,
             "%s's home relay is not in your trust set, so its signature on "
             "the key cannot be checked; add it with 'synod trust add'.",
             user);
    break;
  default:
    snprintf(out, n, "%s", d->reason);
  }
}

/* What a lookup decided, for people: verdict, key changes, relay table. */
static void print_decision(FILE *out, const char *user,
                           const synod_lookup_result_t *lr,
                           const synod_client_pin_t *old, int had_pin,
                           unsigned k) {
  const synod_quorum_result_t *d = &lr->decision;
  if (d->error != 0) {
    char why[SYNOD_QUORUM_REASON_MAX + 512];
    plain_refusal(why, sizeof why, user, lr, k);
    fprintf(out, "%s: REFUSED. %s\n", user, why);
  } else {
    char fp[80];
    fingerprint(fp, d->pin.identity_key);
    fprintf(out,
            "%s: ACCEPTED, version %llu, vouched for by %zu operator%s "
            "(quorum %u)\n"
            "  key fingerprint: %s%s\n",
            user, (unsigned long long)d->version, d->operators,
            d->operators == 1 ? "" : "s", k, fp,
            d->pin.verified ? "  (verified)" : "");
    bool changed =
        had_pin && memcmp(old->pin.identity_key, d->pin.identity_key, 32) != 0;
    if (d->flags & SYNOD_QUORUM_FIRST_CONTACT)
      fprintf(out,
              "  first contact: this key is pinned now; compare the "
              "fingerprint with %s in person to trust it fully\n",
              user);
    if (d->flags & SYNOD_QUORUM_RESET)
      fprintf(out,
              "  WARNING: %s's key was RESET (a new key without a signature "
              "from the old one). It may be a new device, or someone else.\n",
              user);
    else if (changed)
      fprintf(out,
              "  note: %s's key changed, with continuity (the old key "
              "signed the new one)\n",
              user);
    if (d->flags & SYNOD_QUORUM_VERIFIED_CLEARED)
      fprintf(out, "  the key is no longer marked verified\n");
    if (d->flags & SYNOD_QUORUM_USER_EQUIVOCATED)
      fprintf(out,
              "  WARNING: %s's key signed two different announcements "
              "for one version: it may be stolen\n",
              user);
    if (d->flags & SYNOD_QUORUM_HOME_EQUIVOCATED)
      fprintf(out, "  WARNING: %s's home relay is proven to have lied\n", user);
    if (changed || (d->flags & SYNOD_QUORUM_RESET)) {
      fprintf(out, "  vouched for by:");
      for (size_t i = 0; i < d->nrelays; i++)
        if (d->relays[i].status == SYNOD_RELAY_AGREED)
          fprintf(out, " %s (%s)", d->relays[i].relay_name,
                  d->relays[i].operator_name);
      fprintf(out, "\n");
    }
  }
  fprintf(out, "  %-16s %-20s %-22s %s\n", "RELAY", "OPERATOR", "SAID",
          "STATUS");
  for (size_t i = 0; i < d->nrelays; i++) {
    const synod_relay_report_t *r = &d->relays[i];
    char said[40] = "-", hh[17];
    if (r->said) {
      hex(hh, r->head_hash, 8);
      if (r->version)
        snprintf(said, sizeof said, "v%llu %s", (unsigned long long)r->version,
                 hh);
      else
        snprintf(said, sizeof said, "no such user");
    }
    const char *detail = "";
    if (r->status == SYNOD_RELAY_UNREACHABLE && lr->net_reason)
      detail = lr->net_reason[i];
    fprintf(out, "  %-16s %-20s %-22s %s%s%s%s\n", r->relay_name,
            r->operator_name, said, synod_relay_status_name(r->status),
            *detail ? " (" : "", detail, *detail ? ")" : "");
  }
}

static void json_decision(FILE *out, const char *user,
                          const synod_lookup_result_t *lr, unsigned k) {
  const synod_quorum_result_t *d = &lr->decision;
  fprintf(out, "{\"user\":");
  json_str(out, user);
  fprintf(out, ",\"verdict\":\"%s\",\"error\":\"%s\",\"reason\":",
          d->error ? "refused" : "accepted",
          d->error ? synod_err_name(d->error) : "");
  json_str(out, d->reason);
  fprintf(out, ",\"quorum\":%u", k);
  if (d->error == 0) {
    char key[65];
    hex(key, d->pin.identity_key, 32);
    fprintf(out,
            ",\"version\":%llu,\"identity_key\":\"%s\",\"verified\":%s,"
            "\"operators\":%zu,\"reset\":%s,\"first_contact\":%s",
            (unsigned long long)d->version, key,
            d->pin.verified ? "true" : "false", d->operators,
            d->flags & SYNOD_QUORUM_RESET ? "true" : "false",
            d->flags & SYNOD_QUORUM_FIRST_CONTACT ? "true" : "false");
  }
  fprintf(out, ",\"relays\":[");
  for (size_t i = 0; i < d->nrelays; i++) {
    const synod_relay_report_t *r = &d->relays[i];
    fprintf(out, "%s{\"relay\":", i ? "," : "");
    json_str(out, r->relay_name);
    fprintf(out, ",\"operator\":");
    json_str(out, r->operator_name);
    fprintf(out, ",\"status\":");
    json_str(out, synod_relay_status_name(r->status));
    if (r->said) {
      char hh[65];
      hex(hh, r->head_hash, 32);
      fprintf(out, ",\"version\":%llu,\"head_hash\":\"%s\"",
              (unsigned long long)r->version, hh);
    }
    if (r->status == SYNOD_RELAY_UNREACHABLE && lr->net_reason) {
      fprintf(out, ",\"detail\":");
      json_str(out, lr->net_reason[i]);
    }
    fprintf(out, "}");
  }
  fprintf(out, "]}\n");
}

/* --- init, enroll --------------------------------------------------------- */

/* NAME=HOST:PORT,KEYLINE,OPERATOR */
static int add_relay_spec(synod_client_t *c, const char *spec) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", spec);
  char *eq = strchr(buf, '=');
  char *c1 = eq ? strchr(eq + 1, ',') : NULL;
  char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
  if (!eq || !c1 || !c2) {
    fprintf(stderr,
            "synod: --relay wants NAME=HOST:PORT,KEYLINE,OPERATOR, "
            "not '%s'\n",
            spec);
    return EXIT_USAGE;
  }
  *eq = *c1 = *c2 = '\0';
  int rc = synod_client_trust_add(c, buf, eq + 1, c1 + 1, c2 + 1);
  if (rc != 0) {
    fprintf(stderr, "synod: cannot trust relay %s: %s\n", buf,
            rc == SYNOD_EEXIST ? "a relay of that name or key is already "
                                 "trusted"
                               : synod_strerror(rc));
    return rc == SYNOD_EEXIST ? EXIT_FAIL : EXIT_USAGE;
  }
  return EXIT_OK;
}

static int do_enroll(synod_client_t *c, const char *code,
                     const synod_client_net_opts_t *net) {
  int rc = synod_client_enroll(c, code, net);
  if (rc == 0) {
    printf("enrolled %s at its home relay\n", synod_client_user_id(c));
    return EXIT_OK;
  }
  fprintf(stderr, "synod: enrolment of %s failed: %s\n",
          synod_client_user_id(c),
          rc == SYNOD_EAUTH          ? "the code is wrong or already used"
          : rc == SYNOD_EUNKNOWNUSER ? "the relay has no such account"
          : rc == SYNOD_EUNKNOWNPEER ? "the home relay is not in the trust "
                                       "set (add it with 'synod trust add')"
                                     : synod_strerror(rc));
  return EXIT_FAIL;
}

static int cmd_init(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o,
                        A_USER A_CODE A_DEVICE A_RELAY A_QUORUM, &first);
  if (rc >= 0)
    goto out;
  rc = EXIT_USAGE;
  if (first != argc || !o.user) {
    fprintf(stderr, "synod init: --user is required and there are no "
                    "operands (try --help)\n");
    goto out;
  }
  char pass[PASS_MAX];
  size_t plen = 0;
  if (get_pass(pass, &plen, true) != 0) {
    rc = EXIT_FAIL;
    goto out;
  }
  synod_profile_params_t pp = {.user_id = o.user,
                               .device_name = o.device,
                               .pass = pass,
                               .passlen = plen};
  synod_client_t *c = NULL;
  int lrc = synod_client_create(&c, o.home, &pp);
  synod_wipe(pass, sizeof pass);
  if (lrc != 0) {
    fprintf(stderr, "synod init: cannot create the profile: %s\n",
            lrc == SYNOD_EEXIST   ? "a profile already exists there"
            : lrc == SYNOD_EPERM  ? "the directory is accessible to other "
                                    "users"
            : lrc == SYNOD_EINVAL ? "invalid user id (local@relay) or device "
                                    "name"
                                  : synod_strerror(lrc));
    rc = lrc == SYNOD_EINVAL ? EXIT_USAGE : EXIT_FAIL;
    goto out;
  }
  printf("created the profile of %s in %s\n", synod_client_user_id(c),
         synod_client_dir(c));
  rc = EXIT_OK;
  for (size_t i = 0; i < o.nrelays && rc == EXIT_OK; i++)
    rc = add_relay_spec(c, o.relays[i]);
  if (rc == EXIT_OK && o.quorum &&
      (lrc = synod_client_set_quorum(c, o.quorum)) != 0) {
    fprintf(stderr, "synod init: cannot set the quorum: %s\n",
            synod_strerror(lrc));
    rc = EXIT_FAIL;
  }
  if (rc == EXIT_OK && o.code)
    rc = do_enroll(c, o.code, &o.net);
  else if (rc == EXIT_OK)
    printf("not enrolled yet: add the home relay with 'synod trust add', then "
           "run 'synod enroll --code CODE'\n");
  synod_client_close(c);
out:
  free(o.relays);
  return rc;
}

static int cmd_enroll(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, A_CODE, &first);
  if (rc >= 0)
    return rc;
  if (first != argc || !o.code) {
    fprintf(stderr, "synod enroll: --code is required (try --help)\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  rc = do_enroll(c, o.code, &o.net);
  synod_client_close(c);
  return rc;
}

/* --- trust ---------------------------------------------------------------- */

static int cmd_trust_add(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "", &first);
  if (rc >= 0)
    return rc;
  if (argc - first != 4) {
    fprintf(stderr, "synod trust add: wants NAME HOST:PORT KEYLINE OPERATOR "
                    "(try --help)\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  int lrc = synod_client_trust_add(c, argv[first], argv[first + 1],
                                   argv[first + 2], argv[first + 3]);
  if (lrc == 0) {
    printf("trusting relay %s at %s, run by %s\n", argv[first], argv[first + 1],
           argv[first + 3]);
    rc = EXIT_OK;
  } else {
    fprintf(stderr, "synod trust add: %s\n",
            lrc == SYNOD_EEXIST ? "a relay of that name or key is already "
                                  "trusted"
                                : "invalid name, address (HOST:PORT) or key "
                                  "line (synod-ed25519 BASE64)");
    rc = lrc == SYNOD_EEXIST ? EXIT_FAIL : EXIT_USAGE;
  }
  synod_client_close(c);
  return rc;
}

static int cmd_trust_remove(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "", &first);
  if (rc >= 0)
    return rc;
  if (argc - first != 1) {
    fprintf(stderr, "synod trust remove: wants NAME (try --help)\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  int lrc = synod_client_trust_remove(c, argv[first]);
  if (lrc == 0)
    printf("no longer trusting relay %s\n", argv[first]);
  else
    fprintf(stderr, "synod trust remove: %s\n",
            lrc == SYNOD_ENOENT ? "no such relay in the trust set"
                                : synod_strerror(lrc));
  synod_client_close(c);
  return lrc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_trust_list(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "j", &first);
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod trust list: takes no operands\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  size_t n = 0;
  unsigned k = 0;
  const synod_client_relay_t *r = synod_client_trust(c, &n, &k);
  if (o.json) {
    printf("{\"quorum\":%u,\"relays\":[", k);
    for (size_t i = 0; i < n; i++) {
      char key[65];
      hex(key, r[i].key, 32);
      printf("%s{\"name\":", i ? "," : "");
      json_str(stdout, r[i].name);
      printf(",\"host\":");
      json_str(stdout, r[i].host);
      printf(",\"port\":%u,\"key\":\"%s\",\"operator\":", r[i].port, key);
      json_str(stdout, r[i].operator_name);
      printf("}");
    }
    printf("]}\n");
  } else {
    printf("quorum: %u of %zu relays' operators must agree\n", k, n);
    printf("%-16s %-28s %-20s %s\n", "NAME", "ADDRESS", "OPERATOR",
           "KEY (first bytes)");
    for (size_t i = 0; i < n; i++) {
      char addr[300], key[17];
      snprintf(addr, sizeof addr, strchr(r[i].host, ':') ? "[%s]:%u" : "%s:%u",
               r[i].host, r[i].port);
      hex(key, r[i].key, 8);
      printf("%-16s %-28s %-20s %s\n", r[i].name, addr, r[i].operator_name,
             key);
    }
  }
  synod_client_close(c);
  return EXIT_OK;
}

/* --- register, lookup ----------------------------------------------------- */

static int cmd_register(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "", &first);
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod register: takes no operands\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  synod_register_result_t res;
  int lrc = synod_client_register(c, 0, &o.net, &res);
  printf("%s: announcement version %llu %s\n", synod_client_user_id(c),
         (unsigned long long)res.version,
         lrc == 0 ? "countersigned by the home relay" : "NOT published");
  printf("  %-16s %-20s %s\n", "RELAY", "OPERATOR", "RESULT");
  for (size_t i = 0; i < res.nrelays; i++) {
    const synod_publish_report_t *p = &res.relays[i];
    printf("  %-16s %-20s %s%s%s%s\n", p->relay_name, p->operator_name,
           synod_publish_status_name(p->status), p->reason[0] ? " (" : "",
           p->reason, p->reason[0] ? ")" : "");
  }
  printf("  held by %zu of %zu relays\n", res.accepted, res.nrelays);
  if (lrc != 0)
    fprintf(stderr,
            "synod register: the home relay did not take the "
            "announcement: %s\n",
            synod_strerror(lrc));
  synod_register_result_free(&res);
  synod_client_close(c);
  return lrc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_lookup(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "j", &first);
  if (rc >= 0)
    return rc;
  if (argc - first != 1) {
    fprintf(stderr, "synod lookup: wants one USER (local@relay)\n");
    return EXIT_USAGE;
  }
  const char *user = argv[first];
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  unsigned k = 0;
  (void)synod_client_trust(c, NULL, &k);
  synod_client_pin_t old;
  int had_pin = synod_client_pin_get(c, user, &old) == 0;
  synod_lookup_result_t lr;
  int lrc = synod_client_lookup(c, user, &o.net, &lr);
  if (lr.decision.relays == NULL) {
    fprintf(stderr, "synod lookup: %s\n",
            lrc == SYNOD_EINVAL ? "not a user id (local@relay), or the trust "
                                  "set is empty"
                                : synod_strerror(lrc));
    rc = lrc == SYNOD_EINVAL ? EXIT_USAGE : EXIT_FAIL;
  } else {
    if (o.json)
      json_decision(stdout, user, &lr, k);
    else
      print_decision(stdout, user, &lr, &old, had_pin, k);
    rc = exit_of(lrc);
    if (lrc != 0 && !is_policy(lrc))
      fprintf(stderr, "synod lookup: %s\n", synod_strerror(lrc));
  }
  synod_lookup_result_free(&lr);
  synod_client_close(c);
  return rc;
}

/* --- send, recv ----------------------------------------------------------- */

static int cmd_send(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "", &first);
  if (rc >= 0)
    return rc;
  if (argc - first < 1) {
    fprintf(stderr, "synod send: wants USER and the text, or USER and the "
                    "text on standard input\n");
    return EXIT_USAGE;
  }
  const char *user = argv[first];
  char *body = malloc(BODY_MAX + 1);
  size_t len = 0;
  if (!body)
    return EXIT_FAIL;
  if (argc - first > 1) {
    for (int i = first + 1; i < argc; i++) {
      size_t l = strlen(argv[i]);
      if (len + l + 1 > BODY_MAX) {
        fprintf(stderr, "synod send: the message is too long\n");
        free(body);
        return EXIT_USAGE;
      }
      if (i > first + 1)
        body[len++] = ' ';
      memcpy(body + len, argv[i], l);
      len += l;
    }
  } else {
    size_t n;
    while ((n = fread(body + len, 1, BODY_MAX + 1 - len, stdin)) > 0)
      len += n;
    if (len > BODY_MAX) {
      fprintf(stderr,
              "synod send: the message is too long (at most %u "
              "bytes)\n",
              BODY_MAX);
      free(body);
      return EXIT_USAGE;
    }
  }
  synod_client_t *c = open_profile(&o);
  if (!c) {
    free(body);
    return EXIT_FAIL;
  }
  unsigned k = 0;
  (void)synod_client_trust(c, NULL, &k);
  synod_client_pin_t old;
  int had_pin = synod_client_pin_get(c, user, &old) == 0;
  synod_send_result_t res;
  int lrc = synod_client_send(c, user, SYNOD_CLIENT_TEXT, (uint8_t *)body, len,
                              &o.net, &res);
  free(body);
  const synod_quorum_result_t *d = &res.lookup.decision;
  if (d->relays &&
      (d->error != 0 || d->flags != SYNOD_QUORUM_UNCHANGED ||
       (had_pin && memcmp(old.pin.identity_key, d->pin.identity_key, 32) != 0)))
    print_decision(d->error ? stderr : stdout, user, &res.lookup, &old, had_pin,
                   k); /* say what changed: never silently */
  if (lrc == 0) {
    char id[33];
    hex(id, res.message_id, 16);
    printf("sent to %s (%zu device%s): message %s%s\n", user, res.ndevices,
           res.ndevices == 1 ? "" : "s", id,
           res.duplicate ? " (the relay already had it)" : "");
    rc = EXIT_OK;
  } else if (d->error != 0) {
    char why[SYNOD_QUORUM_REASON_MAX + 512];
    if (d->relays)
      plain_refusal(why, sizeof why, user, &res.lookup, k);
    fprintf(stderr, "synod send: nothing was sent. %s\n",
            d->relays ? why : synod_strerror(lrc));
    rc = d->relays ? exit_of(lrc) : EXIT_FAIL;
  } else {
    fprintf(stderr, "synod send: not sent: %s%s%s\n", synod_strerror(lrc),
            res.reason[0] ? ": " : "", res.reason);
    rc = EXIT_FAIL;
  }
  synod_send_result_free(&res);
  synod_client_close(c);
  return rc;
}

typedef struct recv_state {
  bool json;
  size_t rejected, held, failed;
} recv_state_t;

/* A delivery-failure notice: "message ID to USER was not delivered:
 * REASON (RELAY says)". */
static void print_failure(const synod_received_t *m, const char *id,
                          bool json) {
  if (json) {
    printf("{\"status\":\"failed\",\"sender\":");
    json_str(stdout, m->sender);
    printf(",\"message_id\":\"%s\",\"time\":%llu,\"recipient\":", id,
           (unsigned long long)m->time);
    json_str(stdout, m->recipient);
    printf(",\"relay\":");
    json_str(stdout, m->relay);
    printf(",\"relay_verified\":%s,\"error\":\"%s\",\"reason\":",
           m->relay_verified ? "true" : "false", synod_err_name(m->error));
    json_str(stdout, m->reason);
    printf("}\n");
    return;
  }
  printf("message %s%s%s was not delivered: %s (%s says%s)\n", id,
         *m->recipient ? " to " : "", m->recipient, m->reason, m->relay,
         m->relay_verified ? ""
                           : "; it is not in your trust set, so this is "
                             "only your home relay's word");
}

/* Text as the terminal should see it: control characters but newline and
 * tab made visible. */
static void print_text(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = b[i];
    if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
      putchar('?');
    else
      putchar(ch);
  }
  if (n == 0 || b[n - 1] != '\n')
    putchar('\n');
}

static int on_message(void *arg, const synod_received_t *m) {
  recv_state_t *st = arg;
  char id[33], when[32];
  hex(id, m->message_id, 16);
  utc(when, m->time);
  bool text =
      m->content_type && strncmp(m->content_type, "text/plain", 10) == 0;
  if (m->status == SYNOD_RECV_REJECTED)
    st->rejected++;
  if (m->status == SYNOD_RECV_HELD)
    st->held++;
  if (m->status == SYNOD_RECV_FAILED) {
    st->failed++;
    print_failure(m, id, st->json);
  } else if (st->json) {
    printf("{\"status\":\"%s\",\"sender\":", m->status == SYNOD_RECV_OK ? "ok"
                                             : m->status == SYNOD_RECV_REJECTED
                                                 ? "rejected"
                                                 : "held");
    json_str(stdout, m->sender);
    printf(",\"message_id\":\"%s\",\"time\":%llu", id,
           (unsigned long long)m->time);
    if (m->status == SYNOD_RECV_OK) {
      printf(",\"content_type\":");
      json_str(stdout, m->content_type);
      if (text) {
        /* body is not NUL-terminated: copy it, do not strndup() it (a
         * string function may read to the NUL it expects). */
        char *s = malloc(m->body_len + 1);
        if (!s)
          return SYNOD_ENOMEM;
        memcpy(s, m->body, m->body_len);
        s[m->body_len] = '\0';
        printf(",\"body\":");
        json_str(stdout, s);
        free(s);
      }
    } else {
      printf(",\"error\":\"%s\",\"reason\":", synod_err_name(m->error));
      json_str(stdout, m->reason);
    }
    printf("}\n");
  } else if (m->status == SYNOD_RECV_OK) {
    printf("From %s, %s (verified):\n", m->sender, when);
    if (m->sender_flags & SYNOD_QUORUM_RESET)
      printf("  WARNING: %s's key was reset since you last saw it\n",
             m->sender);
    if (text)
      print_text(m->body, m->body_len);
    else
      printf("[%zu bytes of %s]\n", m->body_len, m->content_type);
  } else if (m->status == SYNOD_RECV_REJECTED) {
    printf("REJECTED a message claiming to come from %s (id %s): %s. It "
           "was not shown and is deleted from the relay.\n",
           m->sender, id, m->reason);
  } else {
    printf("HELD a message from %s (id %s): %s. It stays at the relay "
           "until the sender's key can be checked.\n",
           m->sender, id, m->reason);
  }
  /* What is printed is taken only once it left this process. */
  return fflush(stdout) == 0 ? 0 : SYNOD_EIO;
}

static int cmd_recv(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "jf", &first);
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod recv: takes no operands\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  recv_state_t st = {.json = o.json};
  size_t taken = 0;
  int lrc = synod_client_recv(c, o.follow ? SYNOD_RECV_FOLLOW : 0, on_message,
                              &st, &o.net, &taken);
  if (lrc != 0)
    fprintf(stderr, "synod recv: %s%s\n",
            lrc == SYNOD_EUNKNOWNPEER ? "the home relay is not in the trust "
                                        "set"
                                      : synod_strerror(lrc),
            lrc == SYNOD_EAUTH || lrc == SYNOD_EBADKEY
                ? " (your home relay no longer accepts this profile's key: "
                  "your account was re-enrolled, or reset from another "
                  "device; see 'synod keys reset --help')"
                : "");
  else if (!o.json)
    fprintf(stderr, "%zu message%s received%s%s\n", taken,
            taken == 1 ? "" : "s",
            st.rejected || st.held ? ", some rejected or held (see above)" : "",
            st.failed ? "; some messages you sent were not delivered (see "
                        "above)"
                      : "");
  synod_client_close(c);
  if (lrc != 0)
    return EXIT_FAIL;
  return st.rejected || st.held ? EXIT_REFUSED : EXIT_OK;
}

/* --- chat ----------------------------------------------------------------- */

typedef struct chat_state {
  unsigned k;
} chat_state_t;

/* After each line sent in the chat: a key change is said, a refusal says
 * why; the chat goes on either way. */
static void chat_sent(void *arg, const char *user, int rc,
                      const synod_send_result_t *res) {
  const chat_state_t *st = arg;
  const synod_quorum_result_t *d = &res->lookup.decision;
  if (rc == 0 && d->relays && d->flags != SYNOD_QUORUM_UNCHANGED)
    print_decision(stdout, user, &res->lookup, NULL, 0, st->k);
  if (rc == 0)
    return;
  char why[SYNOD_QUORUM_REASON_MAX + 512];
  if (d->error != 0 && d->relays)
    plain_refusal(why, sizeof why, user, &res->lookup, st->k);
  else
    snprintf(why, sizeof why, "%s%s%s", synod_strerror(rc),
             res->reason[0] ? ": " : "", res->reason);
  printf("! not sent: %s\n", why);
}

static int cmd_chat(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "", &first);
  if (rc >= 0)
    return rc;
  if (argc - first != 1) {
    fprintf(stderr, "synod chat: wants one USER (local@relay)\n");
    return EXIT_USAGE;
  }
  const char *user = argv[first];
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  chat_state_t st = {0};
  (void)synod_client_trust(c, NULL, &st.k);
  /* The key first: a change (a reset above all) is said before anything
   * is sent; a refusal too, and the chat starts anyway (receiving works,
   * each send says why it is refused). */
  synod_client_pin_t old;
  int had_pin = synod_client_pin_get(c, user, &old) == 0;
  synod_lookup_result_t lr;
  int lrc = synod_client_lookup(c, user, &o.net, &lr);
  const synod_quorum_result_t *d = &lr.decision;
  if (lrc == SYNOD_EINVAL) {
    fprintf(stderr, "synod chat: '%s' is not a user id (local@relay)\n", user);
    synod_lookup_result_free(&lr);
    synod_client_close(c);
    return EXIT_USAGE;
  }
  if (d->relays &&
      (lrc != 0 || d->flags != SYNOD_QUORUM_UNCHANGED ||
       (had_pin && memcmp(old.pin.identity_key, d->pin.identity_key, 32) != 0)))
    print_decision(stdout, user, &lr, &old, had_pin, st.k);
  else if (lrc == 0) {
    char fp[80];
    fingerprint(fp, d->pin.identity_key);
    printf("%s: key %s%s\n", user, fp,
           d->pin.verified ? " (verified)" : " (not verified: 'synod verify')");
  } else {
    fprintf(stderr, "synod chat: %s\n", synod_strerror(lrc));
  }
  synod_lookup_result_free(&lr);
  rc = chat_run(c, user, &o.net, chat_sent, &st);
  if (rc != 0)
    fprintf(stderr, "synod chat: %s\n", synod_strerror(rc));
  synod_client_close(c);
  return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* --- verify --------------------------------------------------------------- */

static int cmd_verify(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, A_CONFIRM, &first);
  if (rc >= 0)
    return rc;
  if (argc - first != 1) {
    fprintf(stderr, "synod verify: wants one USER (local@relay)\n");
    return EXIT_USAGE;
  }
  const char *user = argv[first];
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  unsigned k = 0;
  (void)synod_client_trust(c, NULL, &k);
  rc = EXIT_OK;
  if (!o.confirm) {
    /* A current key first: the number is about the key the quorum
     * accepts now. */
    synod_client_pin_t old;
    int had_pin = synod_client_pin_get(c, user, &old) == 0;
    synod_lookup_result_t lr;
    int lrc = synod_client_lookup(c, user, &o.net, &lr);
    if (lrc != 0 && lr.decision.relays)
      print_decision(stdout, user, &lr, &old, had_pin, k);
    else if (lrc != 0)
      fprintf(stderr, "synod verify: %s\n", synod_strerror(lrc));
    synod_lookup_result_free(&lr);
    if (lrc != 0)
      rc = lrc == SYNOD_EINVAL ? EXIT_USAGE : exit_of(lrc);
  }
  char sn[SYNOD_SAFETY_NUMBER_MAX];
  int src = rc == EXIT_OK ? synod_client_safety_number(c, user, sn) : 0;
  if (rc == EXIT_OK && src != 0) {
    fprintf(stderr, "synod verify: %s\n",
            src == SYNOD_ENOENT ? "no key of that user is pinned yet; run "
                                  "'synod verify USER' without --confirm "
                                  "first"
                                : synod_strerror(src));
    rc = src == SYNOD_EINVAL ? EXIT_USAGE : EXIT_FAIL;
  }
  if (rc == EXIT_OK) {
    synod_client_pin_t pin;
    int verified = synod_client_pin_get(c, user, &pin) == 0 && pin.pin.verified;
    printf("Safety number of %s and %s:\n\n    %s\n\n", synod_client_user_id(c),
           user, sn);
    if (o.confirm) {
      int vrc = synod_client_pin_set_verified(c, user);
      if (vrc == 0) {
        printf("%s's key is now marked verified. A key change will clear "
               "the mark and warn you.\n",
               user);
      } else {
        fprintf(stderr, "synod verify: cannot save: %s\n", synod_strerror(vrc));
        rc = EXIT_FAIL;
      }
    } else if (verified) {
      printf("%s's key is verified (you confirmed this number before).\n",
             user);
    } else {
      printf("Compare it with %s in person or on a call (they run 'synod "
             "verify %s'). If the two match, run:\n  synod verify %s "
             "--confirm\n",
             user, synod_client_user_id(c), user);
    }
  }
  synod_client_close(c);
  return rc;
}

/* --- purge, monitor, keys ------------------------------------------------- */

/* The options only purge and monitor take, read here so that parse() stays
 * the same for every command: taken out of argv (compacted in place), the
 * rest is left for parse(). */
typedef struct ops_opts {
  bool all, once;
  const char *with;
  unsigned interval;
} ops_opts_t;

static int ops_scan(const cmd_t *cmd, int *argc, char **argv, ops_opts_t *x) {
  bool purge = strcmp(cmd->name, "purge") == 0;
  bool monitor = strcmp(cmd->name, "monitor") == 0;
  int j = 1;
  bool rest = false;
  memset(x, 0, sizeof *x);
  x->interval = 300;
  for (int i = 1; i < *argc; i++) {
    const char *a = argv[i], *val = NULL;
    if (rest || strcmp(a, "--") == 0) {
      rest = true;
      argv[j++] = argv[i];
      continue;
    }
    if (purge && strcmp(a, "--all") == 0) {
      x->all = true;
    } else if (purge &&
               (strcmp(a, "--with") == 0 || strncmp(a, "--with=", 7) == 0)) {
      val = a[6] == '=' ? a + 7 : (i + 1 < *argc ? argv[++i] : NULL);
      if (!val || !*val) {
        fprintf(stderr, "synod purge: --with wants a USER (try --help)\n");
        return EXIT_USAGE;
      }
      x->with = val;
    } else if (monitor && strcmp(a, "--once") == 0) {
      x->once = true;
    } else if (monitor && (strcmp(a, "--interval") == 0 ||
                           strncmp(a, "--interval=", 11) == 0)) {
      val = a[10] == '=' ? a + 11 : (i + 1 < *argc ? argv[++i] : NULL);
      char *end = NULL;
      errno = 0;
      unsigned long v = val ? strtoul(val, &end, 10) : 0;
      if (!val || errno || !end || *end || v == 0 || v > 86400 * 7) {
        fprintf(stderr, "synod monitor: --interval wants seconds (1 to "
                        "604800)\n");
        return EXIT_USAGE;
      }
      x->interval = (unsigned)v;
    } else {
      argv[j++] = argv[i];
    }
  }
  argv[j] = NULL;
  *argc = j;
  return -1;
}

static int unhex16(uint8_t out[16], const char *s) {
  if (strlen(s) != 32)
    return -1;
  for (size_t i = 0; i < 16; i++) {
    unsigned v = 0;
    for (size_t k = 0; k < 2; k++) {
      char ch = s[2 * i + k];
      unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                   : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                   : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                            : 16;
      if (d > 15)
        return -1;
      v = v * 16 + d;
    }
    out[i] = (uint8_t)v;
  }
  return 0;
}

static int cmd_purge(const cmd_t *cmd, int argc, char **argv) {
  ops_opts_t x;
  int rc = ops_scan(cmd, &argc, argv, &x);
  if (rc >= 0)
    return rc;
  common_t o;
  int first;
  rc = parse(cmd, argc, argv, &o, "j", &first);
  if (rc >= 0)
    return rc;
  size_t nids = (size_t)(argc - first);
  if ((x.all ? 1 : 0) + (x.with ? 1 : 0) + (nids ? 1 : 0) != 1) {
    fprintf(stderr, "synod purge: wants exactly one of --all, --with USER, "
                    "or message IDs (try --help)\n");
    return EXIT_USAGE;
  }
  if (nids > SYNOD_PURGE_IDS_MAX) {
    fprintf(stderr, "synod purge: at most %d message ids at once\n",
            SYNOD_PURGE_IDS_MAX);
    return EXIT_USAGE;
  }
  if (x.with && synod_userid_parse(x.with, NULL, NULL) != 0) {
    fprintf(stderr,
            "synod purge: --with wants a user id (local@relay), not "
            "'%s'\n",
            x.with);
    return EXIT_USAGE;
  }
  uint8_t(*ids)[16] = NULL;
  if (nids) {
    ids = calloc(nids, sizeof *ids);
    if (!ids)
      return EXIT_FAIL;
    for (size_t i = 0; i < nids; i++)
      if (unhex16(ids[i], argv[first + (int)i]) != 0) {
        fprintf(stderr,
                "synod purge: '%s' is not a message id (32 hex "
                "digits, as 'synod send' and 'synod recv --json' "
                "show them)\n",
                argv[first + (int)i]);
        free(ids);
        return EXIT_USAGE;
      }
  }
  synod_client_t *c = open_profile(&o);
  if (!c) {
    free(ids);
    return EXIT_FAIL;
  }
  synod_purge_result_t res;
  synod_purge_scope_t scope = x.all    ? SYNOD_PURGE_ALL
                              : x.with ? SYNOD_PURGE_CONVERSATION
                                       : SYNOD_PURGE_IDS;
  int lrc = synod_client_purge(c, scope, x.with, (const uint8_t(*)[16])ids,
                               nids, &o.net, &res);
  const char *home = strchr(synod_client_user_id(c), '@') + 1;
  if (lrc == 0 && o.json) {
    printf("{\"relay\":");
    json_str(stdout, home);
    printf(",\"scope\":\"%s\",\"deleted\":%llu}\n",
           x.all    ? "all"
           : x.with ? "conversation"
                    : "ids",
           (unsigned long long)res.deleted);
  } else if (lrc == 0) {
    printf("%s: deleted %llu message%s at the home relay %s",
           synod_client_user_id(c), (unsigned long long)res.deleted,
           res.deleted == 1 ? "" : "s", home);
    if (x.with)
      printf(" (between you and %s)", x.with);
    printf("\n  it forwards the purge to its peer relays, which delete your "
           "messages still in flight\n");
  } else {
    fprintf(stderr, "synod purge: the home relay %s did not purge: %s\n", home,
            lrc == SYNOD_EUNKNOWNPEER ? "it is not in the trust set"
                                      : res.reason);
  }
  synod_client_close(c);
  free(ids);
  return lrc == 0 ? EXIT_OK : EXIT_FAIL;
}

static bool monitor_alarming(synod_monitor_status_t s) {
  return s == SYNOD_MONITOR_FOREIGN || s == SYNOD_MONITOR_EQUIVOCATED ||
         s == SYNOD_MONITOR_REFUSED_US;
}

static void hex_out(FILE *out, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%02x", p[i]);
}

static void monitor_print(FILE *out, const synod_client_t *c,
                          const synod_monitor_result_t *res, bool json) {
  uint64_t now = (uint64_t)time(NULL);
  if (json) {
    fprintf(out, "{\"user\":");
    json_str(out, synod_client_user_id(c));
    fprintf(out, ",\"time\":%llu,\"alarm\":%s,\"relays\":[",
            (unsigned long long)now, res->alarm ? "true" : "false");
    for (size_t i = 0; i < res->nrelays; i++) {
      const synod_monitor_report_t *r = &res->relays[i];
      fprintf(out, "%s{\"relay\":", i ? "," : "");
      json_str(out, r->relay_name);
      fprintf(out, ",\"status\":\"%s\",\"alarm\":%s",
              synod_monitor_status_name(r->status),
              monitor_alarming(r->status) ? "true" : "false");
      if (r->said) {
        fprintf(out, ",\"version\":%llu,\"head_hash\":\"",
                (unsigned long long)r->version);
        hex_out(out, r->head_hash, sizeof r->head_hash);
        fprintf(out, "\",\"time\":%llu", (unsigned long long)r->time);
      }
      if (r->error) {
        fprintf(out, ",\"error\":\"%s\",\"reason\":", synod_err_name(r->error));
        json_str(out, r->reason);
      }
      if (r->has_foreign_key) {
        fprintf(out, ",\"foreign_key\":\"");
        hex_out(out, r->foreign_key, sizeof r->foreign_key);
        fprintf(out, "\"");
      }
      if (r->answer_body) {
        fprintf(out, ",\"answer_body\":\"");
        hex_out(out, r->answer_body, r->answer_body_len);
        fprintf(out, "\",\"answer_signature\":\"");
        hex_out(out, r->answer_signature, sizeof r->answer_signature);
        fprintf(out, "\"");
      }
      fprintf(out, "}");
    }
    fprintf(out, "]}\n");
    fflush(out);
    return;
  }
  char when[32];
  utc(when, now);
  fprintf(out, "%s at %s: %s\n", synod_client_user_id(c), when,
          res->alarm ? "ALARM: a relay serves a key for you that you did not "
                       "sign, or refuses yours"
                     : "no relay serves a key for you that you did not sign");
  fprintf(out, "  %-16s %-12s %-22s %s\n", "RELAY", "STATUS", "HOLDS",
          "DETAIL");
  for (size_t i = 0; i < res->nrelays; i++) {
    const synod_monitor_report_t *r = &res->relays[i];
    char said[40] = "-", hh[17];
    if (r->said && r->version) {
      hex(hh, r->head_hash, 8);
      snprintf(said, sizeof said, "v%llu %s", (unsigned long long)r->version,
               hh);
    } else if (r->said) {
      snprintf(said, sizeof said, "no announcement");
    }
    fprintf(out, "  %-16s %-12s %-22s %s%s\n", r->relay_name,
            synod_monitor_status_name(r->status), said,
            monitor_alarming(r->status) ? "ALARM " : "",
            r->error || r->status != SYNOD_MONITOR_OK ? r->reason : "");
  }
  for (size_t i = 0; i < res->nrelays; i++) {
    const synod_monitor_report_t *r = &res->relays[i];
    if (!monitor_alarming(r->status))
      continue;
    fprintf(out, "\nevidence from %s (%s):\n", r->relay_name,
            synod_monitor_status_name(r->status));
    if (r->has_foreign_key) {
      char fp[80];
      fingerprint(fp, r->foreign_key);
      fprintf(out, "  identity key you did not sign: %s\n", fp);
    }
    if (r->answer_body) {
      fprintf(out, "  the relay's signed answer (body, hex):\n    ");
      hex_out(out, r->answer_body, r->answer_body_len);
      fprintf(out, "\n  its signature (hex):\n    ");
      hex_out(out, r->answer_signature, sizeof r->answer_signature);
      fprintf(out, "\n");
    }
  }
  bool behind = false;
  for (size_t i = 0; i < res->nrelays; i++)
    behind |= res->relays[i].status == SYNOD_MONITOR_BEHIND ||
              res->relays[i].status == SYNOD_MONITOR_MISSING;
  if (behind)
    fprintf(out, "  some relays lack your newest announcement; 'synod "
                 "register' publishes it again\n");
  fflush(out);
}

static int cmd_monitor(const cmd_t *cmd, int argc, char **argv) {
  ops_opts_t x;
  int rc = ops_scan(cmd, &argc, argv, &x);
  if (rc >= 0)
    return rc;
  common_t o;
  int first;
  rc = parse(cmd, argc, argv, &o, "j", &first);
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod monitor: takes no operands\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  for (;;) {
    synod_monitor_result_t res;
    int lrc = synod_client_monitor(c, &o.net, &res);
    if (lrc != 0) {
      fprintf(stderr, "synod monitor: %s\n", synod_strerror(lrc));
      synod_monitor_result_free(&res);
      rc = EXIT_FAIL;
      break;
    }
    monitor_print(stdout, c, &res, o.json);
    int alarm = res.alarm;
    synod_monitor_result_free(&res);
    if (alarm) {
      fprintf(stderr, "synod monitor: ALARM: see the evidence above; keep "
                      "it, and warn your contacts to compare safety "
                      "numbers with you\n");
      rc = EXIT_REFUSED;
      break;
    }
    if (x.once) {
      rc = EXIT_OK;
      break;
    }
    sleep(x.interval);
  }
  synod_client_close(c);
  return rc;
}

static int cmd_keys_devices(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "j", &first);
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod keys devices: takes no operands\n");
    return EXIT_USAGE;
  }
  synod_client_t *c = open_profile(&o);
  if (!c)
    return EXIT_FAIL;
  size_t n = 0;
  uint64_t reg = 0;
  synod_client_devices(c, NULL, 0, &n, &reg);
  synod_client_device_t *d = calloc(n ? n : 1, sizeof *d);
  if (!d) {
    synod_client_close(c);
    return EXIT_FAIL;
  }
  synod_client_devices(c, d, n, &n, &reg);
  uint8_t ik[SYNOD_ED25519_PUBLIC_BYTES];
  synod_client_identity_key(c, ik);
  if (o.json) {
    char key[65];
    hex(key, ik, sizeof ik);
    printf("{\"user\":");
    json_str(stdout, synod_client_user_id(c));
    printf(",\"identity_key\":\"%s\",\"registered_version\":%llu,"
           "\"devices\":[",
           key, (unsigned long long)reg);
    for (size_t i = 0; i < n; i++) {
      hex(key, d[i].x25519_key, sizeof d[i].x25519_key);
      printf("%s{\"device_id\":%u,\"name\":", i ? "," : "",
             (unsigned)d[i].device_id);
      json_str(stdout, d[i].name);
      printf(",\"key\":\"%s\",\"created\":%llu,\"current\":%s}", key,
             (unsigned long long)d[i].created, d[i].current ? "true" : "false");
    }
    printf("]}\n");
  } else {
    char fp[80];
    fingerprint(fp, ik);
    printf("%s\n  identity key fingerprint: %s\n", synod_client_user_id(c), fp);
    if (reg)
      printf("  newest announcement signed: version %llu\n",
             (unsigned long long)reg);
    else
      printf("  not registered yet: 'synod register' publishes these keys\n");
    printf("  %-6s %-20s %-24s %s\n", "ID", "NAME", "CREATED",
           "DEVICE KEY (X25519)");
    for (size_t i = 0; i < n; i++) {
      char when[32], key[65];
      utc(when, d[i].created);
      hex(key, d[i].x25519_key, sizeof d[i].x25519_key);
      printf("  %-6u %-20s %-24s %s%s\n", (unsigned)d[i].device_id, d[i].name,
             when, key, d[i].current ? "  (this device)" : "");
    }
  }
  free(d);
  synod_client_close(c);
  return EXIT_OK;
}

/* The register table: which relays took our announcement. */
static void print_publish(const synod_client_t *c,
                          const synod_register_result_t *res, int lrc) {
  printf("%s: announcement version %llu %s\n", synod_client_user_id(c),
         (unsigned long long)res->version,
         lrc == 0 ? "countersigned by the home relay" : "NOT published");
  printf("  %-16s %-20s %s\n", "RELAY", "OPERATOR", "RESULT");
  for (size_t i = 0; i < res->nrelays; i++) {
    const synod_publish_report_t *p = &res->relays[i];
    printf("  %-16s %-20s %s%s%s%s\n", p->relay_name, p->operator_name,
           synod_publish_status_name(p->status), p->reason[0] ? " (" : "",
           p->reason, p->reason[0] ? ")" : "");
  }
  printf("  held by %zu of %zu relays\n", res->accepted, res->nrelays);
}

static int cmd_keys_rotate(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, "", &first);
  free(o.relays); /* a --relay list is not used here */
  o.relays = NULL;
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod keys rotate: takes no operands\n");
    return EXIT_USAGE;
  }
  /* One passphrase for both: it opens the profile and re-seals its keys. */
  char pass[PASS_MAX];
  size_t plen;
  synod_client_t *c = open_profile_pass(&o, pass, &plen);
  if (!c) {
    synod_wipe(pass, sizeof pass);
    return EXIT_FAIL;
  }
  int lrc;
  uint8_t old[SYNOD_X25519_BYTES], now[SYNOD_X25519_BYTES];
  synod_client_device_key(c, old);
  lrc = synod_client_rotate_device_key(c, pass, plen, NULL);
  synod_wipe(pass, sizeof pass);
  if (lrc != 0) {
    fprintf(stderr, "synod keys rotate: the device key was not changed: %s\n",
            synod_strerror(lrc));
    synod_client_close(c);
    return EXIT_FAIL;
  }
  synod_client_device_key(c, now);
  char ho[65], hn[65];
  hex(ho, old, sizeof old);
  hex(hn, now, sizeof now);
  printf("%s: new device key (X25519)\n  old: %s\n  new: %s\n",
         synod_client_user_id(c), ho, hn);
  synod_register_result_t res;
  lrc = synod_client_register(c, SYNOD_REGISTER_NEXT, &o.net, &res);
  print_publish(c, &res, lrc);
  if (lrc != 0)
    fprintf(stderr,
            "synod keys rotate: the new key is saved, but the home relay did "
            "not take the announcement (%s); run 'synod register' to publish "
            "it\n",
            synod_strerror(lrc));
  synod_register_result_free(&res);
  synod_client_close(c);
  return lrc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* Why the home relay did not take the new key, for people. */
static const char *reset_refusal(int rc, const char *code) {
  switch (rc) {
  case SYNOD_EBADKEY:
    return "your home relay still binds your account to your old key. Ask "
           "its operator to re-enrol you ('synod-relay user reenroll NAME' "
           "prints a one-time code), then run 'synod keys reset --code CODE'";
  case SYNOD_EAUTH:
    return code ? "the code is wrong or was already used; ask the operator "
                  "of your home relay for a new one"
                : "your account was re-enrolled and waits for its code: "
                  "run 'synod keys reset --code CODE'";
  case SYNOD_EDENIED:
    return "your account is disabled at your home relay; ask its operator";
  case SYNOD_EUNKNOWNUSER:
    return "your home relay has no such account";
  case SYNOD_EUNKNOWNPEER:
    return "your home relay is not in the trust set (add it with 'synod "
           "trust add')";
  case SYNOD_EDECRYPT:
    return "wrong passphrase, or the key file was altered";
  default:
    return NULL;
  }
}

static int cmd_keys_reset(const cmd_t *cmd, int argc, char **argv) {
  common_t o;
  int first, rc = parse(cmd, argc, argv, &o, A_CODE, &first);
  free(o.relays); /* a --relay list is not used here */
  o.relays = NULL;
  if (rc >= 0)
    return rc;
  if (first != argc) {
    fprintf(stderr, "synod keys reset: takes no operands (try --help)\n");
    return EXIT_USAGE;
  }
  /* One passphrase for both: it opens the profile and seals the new keys. */
  char pass[PASS_MAX];
  size_t plen;
  synod_client_t *c = open_profile_pass(&o, pass, &plen);
  if (!c) {
    synod_wipe(pass, sizeof pass);
    return EXIT_FAIL;
  }
  int lrc;
  synod_reset_result_t res;
  lrc = synod_client_reset_keys(c, o.code, pass, plen, NULL, &o.net, &res);
  synod_wipe(pass, sizeof pass);
  char fo[80], fn[80];
  fingerprint(fo, res.old_identity_key);
  if (!res.keys_saved) {
    const char *why = reset_refusal(res.enroll_error, o.code);
    fprintf(stderr,
            "synod keys reset: your home relay did not accept a new key, so "
            "nothing was changed: %s%s%s%s\n",
            why ? why : synod_strerror(res.enroll_error),
            res.reason[0] ? " (the relay said: " : "", res.reason,
            res.reason[0] ? ")" : "");
    if (res.enroll_error == SYNOD_EIO && res.reason[0])
      fprintf(stderr, "synod keys reset: %s\n", res.reason);
    synod_reset_result_free(&res);
    synod_client_close(c);
    return EXIT_FAIL;
  }
  fingerprint(fn, res.new_identity_key);
  printf("%s: keys RESET; the home relay took the new identity key\n"
         "  old identity key: %s\n  new identity key: %s\n",
         synod_client_user_id(c), fo, fn);
  if (res.reg.relays) {
    print_publish(c, &res.reg, lrc);
    if (res.replaced_version)
      printf("  the reset follows version %llu, the newest the home relay "
             "held\n",
             (unsigned long long)res.replaced_version);
  }
  if (lrc == 0)
    printf("Your contacts' next lookup warns them that your key was reset "
           "and clears\ntheir verified mark: compare safety numbers with "
           "them again ('synod verify').\n");
  else
    fprintf(stderr,
            "synod keys reset: the new keys are saved, but the reset was not "
            "published (%s); run 'synod register' to publish it\n",
            synod_strerror(lrc));
  synod_reset_result_free(&res);
  synod_client_close(c);
  return lrc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* --- the table ------------------------------------------------------------ */

static const cmd_t commands[] = {
    {"init", cmd_init, "create a profile: keys, trust set, enrolment",
     "usage: synod init --user LOCAL@RELAY [--code CODE]\n"
     "                  [--relay NAME=HOST:PORT,KEYLINE,OPERATOR]...\n"
     "                  [--quorum K] [--device NAME] [-H DIR]\n"
     "\n"
     "Creates a new profile (mode 0700) with a new identity key and device\n"
     "key, sealed with a passphrase; adds each --relay to the trust set;\n"
     "sets the quorum K (default 2: two operators must agree on a key);\n"
     "then, with --code, enrols: binds the new identity key to the account\n"
     "LOCAL at the home relay RELAY with the one-time code its operator\n"
     "gave (`synod-relay user add`). The home relay must be in the trust\n"
     "set for that. KEYLINE is the relay's \"synod-ed25519 BASE64\" line\n"
     "(`synod-relay pubkey`). Next: 'synod register'.\n"
     "\n" PASS_NOTE "At init it is asked twice.\n"
     "\n"
     "options:\n"
     "      --user ID        the user id, local@home-relay (required)\n"
     "      --code CODE      the one-time enrolment code ('-': read it from\n"
     "                       standard input, out of the process list)\n"
     "      --relay SPEC     a relay to trust (repeatable)\n"
     "      --quorum K       operators that must agree (>= 2)\n"
     "      --device NAME    this device's name (default "
     "\"device\")\n" COMMON_OPTIONS EXIT_NOTE("")},
    {"enroll", cmd_enroll, "bind the profile's key to its account",
     "usage: synod enroll --code CODE [-H DIR]\n"
     "\n"
     "Binds the profile's identity key to its account at the home relay\n"
     "with the one-time code its operator gave, when 'synod init' was run\n"
     "without --code. Repeating it with a used code is harmless once bound.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "      --code CODE      the one-time enrolment code ('-': read it from\n"
     "                       standard input, out of the process list)\n" COMMON_OPTIONS
         EXIT_NOTE("")},
    {"trust add", cmd_trust_add, "trust a relay",
     "usage: synod trust add NAME HOST:PORT KEYLINE OPERATOR [-H DIR]\n"
     "\n"
     "Adds relay NAME at HOST:PORT ([v6]:PORT for IPv6) with its key line\n"
     "(\"synod-ed25519 BASE64\", as `synod-relay pubkey` prints it; quote\n"
     "it) and its operator. Relays of one operator count once in a quorum.\n"
     "\n" PASS_NOTE "\noptions:\n" COMMON_OPTIONS EXIT_NOTE("")},
    {"trust list", cmd_trust_list, "show the trust set and the quorum",
     "usage: synod trust list [--json] [-H DIR]\n"
     "\n"
     "Shows the quorum and every trusted relay: name, address, operator and\n"
     "the first bytes of its key (--json: the whole key, hex).\n"
     "\n" PASS_NOTE "\noptions:\n"
     "  -j, --json           print JSON instead\n" COMMON_OPTIONS EXIT_NOTE(
         "")},
    {"trust remove", cmd_trust_remove, "stop trusting a relay",
     "usage: synod trust remove NAME [-H DIR]\n"
     "\n"
     "Removes relay NAME from the trust set.\n"
     "\n" PASS_NOTE "\noptions:\n" COMMON_OPTIONS EXIT_NOTE("")},
    {"register", cmd_register, "publish this device's key to the relays",
     "usage: synod register [-H DIR]\n"
     "\n"
     "Publishes the profile's signed announcement (identity and device key)\n"
     "to the home relay, which countersigns it, then to every other trusted\n"
     "relay, and shows which relays took it. Running it again republishes\n"
     "the same announcement (harmless).\n"
     "\n" PASS_NOTE "\noptions:\n" COMMON_OPTIONS EXIT_NOTE(
         " (1 also when the home relay did not take it)")},
    {"lookup", cmd_lookup, "find a user's key by quorum of the trust set",
     "usage: synod lookup USER [--json] [-H DIR]\n"
     "\n"
     "Asks every trusted relay for USER's key at once and accepts a key\n"
     "only when relays of at least K different operators agree on it and it\n"
     "extends the key pinned earlier. Shows the verdict, the key fingerprint\n"
     "(compare it with USER in person), what changed since the last lookup\n"
     "(a reset is a warning), and every relay: what it said, its operator,\n"
     "and agreed / disagreed / stale / unreachable / ... . An accepted key\n"
     "is pinned in the profile. On refusal, one sentence says why.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "  -j, --json           print JSON instead\n" COMMON_OPTIONS EXIT_NOTE(
         ", 3 refused by policy (no quorum, rollback,\n"
         "stale answers, equivocation, unknown user or home "
         "relay)")},
    {"send", cmd_send, "send an end-to-end encrypted message",
     "usage: synod send USER [TEXT...] [-H DIR]\n"
     "\n"
     "Looks USER's key up (as 'synod lookup'; a key change is shown, never\n"
     "silent), encrypts TEXT (the words joined by spaces, else standard\n"
     "input, at most 61440 bytes) to every device key of USER's accepted\n"
     "announcement, signed by this profile's identity key, and hands it to\n"
     "the home relay, which forwards it. Done when the home relay stored it.\n"
     "\n" PASS_NOTE "\noptions:\n" COMMON_OPTIONS EXIT_NOTE(
         ", 3 refused by policy (USER's key has no\n"
         "quorum: the sentence says why; nothing was sent)")},
    {"recv", cmd_recv, "receive and verify waiting messages",
     "usage: synod recv [--follow] [--json] [-H DIR]\n"
     "\n"
     "Fetches the messages waiting at the home relay, looks each sender's\n"
     "key up by quorum, decrypts and verifies every message (sender,\n"
     "recipient, device key, id and time, signed by the sender's accepted\n"
     "key) before showing it, and then tells the relay to delete it. A\n"
     "message that does not verify is never shown: it is reported as\n"
     "REJECTED with the reason and deleted. A message whose sender's key\n"
     "has no quorum now is HELD at the relay for a later try. Messages seen\n"
     "before (the profile remembers the newest 4096 ids) are not shown\n"
     "twice. A relay's signed notice that a message you sent was not\n"
     "delivered is shown as \"message ID to USER was not delivered: REASON\n"
     "(RELAY says)\" (--json: status \"failed\"), once; a notice in the name\n"
     "of a trusted relay that it did not sign is not shown. Without\n"
     "--follow, stops when nothing more waits.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "  -f, --follow         keep waiting for new messages (Ctrl-C stops)\n"
     "  -j, --json           one JSON object per message\n" COMMON_OPTIONS
         EXIT_NOTE(", 3 some message was rejected or held")},
    {"chat", cmd_chat, "chat with a contact in the terminal",
     "usage: synod chat USER [-H DIR]\n"
     "\n"
     "An interactive line chat with USER. First looks USER's key up by\n"
     "quorum (as 'synod lookup'): a first contact, a key change and above\n"
     "all a reset are shown before anything is sent; a refusal too (the\n"
     "chat starts anyway: each line then says why it was not sent).\n"
     "Each line typed is sent as 'synod send' sends it, when Enter is\n"
     "pressed; a line refused (no quorum, relay down) says why and the\n"
     "chat goes on. Messages arrive while you type, verified as 'synod\n"
     "recv' verifies them, shown as \"[HH:MM] USER: text\" above the line\n"
     "being typed, and then deleted from the relay; messages from others\n"
     "are shown too, marked \"(not in this chat)\", rather than lost.\n"
     "\n"
     "keys: Enter sends; Backspace, Ctrl-U (line), Ctrl-W (word) edit;\n"
     "/quit, Ctrl-D on an empty line or Ctrl-C leave. Start a line with\n"
     "// to send one that begins with /. Standard input that is not a\n"
     "terminal: each line is sent, end of input leaves.\n"
     "\n" PASS_NOTE "\noptions:\n" COMMON_OPTIONS EXIT_NOTE(
         "; leaving with /quit, Ctrl-D\n"
         "or Ctrl-C is 0, a chat that could not start 1")},
    {"verify", cmd_verify, "compare a contact's key in person (safety number)",
     "usage: synod verify USER [--confirm] [-H DIR]\n"
     "\n"
     "Looks USER's key up by quorum (as 'synod lookup') and shows the safety\n"
     "number of your key and USER's: 30 digits that both of you see alike.\n"
     "Compare them in person or on a call; a different number means one of\n"
     "you does not have the other's real key. When they match,\n"
     "'synod verify USER --confirm' marks USER's pinned key verified\n"
     "(without a new lookup; it shows the number it confirms). A later key\n"
     "reset clears the mark and is reported.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "      --confirm        mark the pinned key verified\n" COMMON_OPTIONS
         EXIT_NOTE(", 3 refused by policy (USER's key has no\n"
                   "quorum)")},
    {"purge", cmd_purge, "delete your messages stored at the relays",
     "usage: synod purge (--all | --with USER | ID...) [--json] [-H DIR]\n"
     "\n"
     "Asks your home relay to delete messages stored for you, by a request\n"
     "signed with your identity key: --all every message; --with USER the\n"
     "messages between you and USER; ID... the messages with these ids (32\n"
     "hex digits each, as 'synod send' and 'synod recv --json' show them).\n"
     "It covers messages waiting for you, those you sent to its other users\n"
     "and those you sent that it has not handed on yet, received up to now;\n"
     "later messages are not touched. It prints how many it deleted, and\n"
     "forwards the purge to its peer relays, which delete your messages\n"
     "still in flight there.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "      --all            delete every message\n"
     "      --with USER      delete the conversation with USER\n"
     "  -j, --json           print JSON instead\n" COMMON_OPTIONS EXIT_NOTE(
         " (1 also when the relay refused)")},
    {"monitor", cmd_monitor,
     "check that no relay serves a key you did not sign",
     "usage: synod monitor [--once] [--interval SECONDS] [--json] [-H DIR]\n"
     "\n"
     "Asks every trusted relay what it holds for your own user and compares\n"
     "it with the announcements this profile signed. Prints per relay: ok\n"
     "(your newest announcement), behind or missing ('synod register'\n"
     "fixes that), unreachable, bad-answer, or an ALARM: foreign (the relay\n"
     "serves an announcement you did not sign: someone may be receiving\n"
     "your messages), equivocated (your key signed two announcements for\n"
     "one version: it may be stolen), or refused-us (your home relay no\n"
     "longer accepts your key). On an alarm it prints the evidence (the\n"
     "foreign key and the relay's signed answer, verifiable by anyone with\n"
     "the relay's key) and exits 3. Without --once it checks again every\n"
     "--interval seconds (default 300) until interrupted (Ctrl-C).\n"
     "\n" PASS_NOTE "\noptions:\n"
     "      --once           check once and exit\n"
     "      --interval S     seconds between checks (default 300)\n"
     "  -j, --json           one JSON object per check\n" COMMON_OPTIONS
         EXIT_NOTE(", 3 ALARM (the evidence is printed)")},
    {"keys rotate", cmd_keys_rotate, "replace this device's key and publish it",
     "usage: synod keys rotate [-H DIR]\n"
     "\n"
     "Makes a new device key (X25519) for this profile, re-seals the\n"
     "profile's keys with the passphrase (the file is replaced atomically;\n"
     "on failure the old key stays), then registers the next announcement\n"
     "version with the new key, signed by your identity key (continuity:\n"
     "contacts see a key change, not a reset), and shows which relays took\n"
     "it. Senders use the new key from their next lookup. Messages already\n"
     "sealed to the old key cannot be read afterwards: run 'synod recv'\n"
     "first. When the home relay cannot be reached, the new key is kept and\n"
     "'synod register' publishes it later.\n"
     "\n" PASS_NOTE "\noptions:\n" COMMON_OPTIONS EXIT_NOTE(
         " (1 also when the new key was saved but\n"
         "not published)")},
    {"keys reset", cmd_keys_reset,
     "new identity and device keys after a loss or compromise",
     "usage: synod keys reset [--code CODE] [-H DIR]\n"
     "\n"
     "For a lost device or compromised keys. Makes a new identity key and a\n"
     "new device key, presents them to your home relay with the one-time\n"
     "CODE its operator gave you after 'synod-relay user reenroll NAME',\n"
     "and, once the relay has bound your account to the new key, replaces\n"
     "the profile's keys (sealed with the passphrase) and publishes a key\n"
     "RESET: the next announcement version, after the newest one your home\n"
     "relay holds, signed by the new key alone (the old one is not trusted\n"
     "to vouch for it), to the home relay and then every trusted relay.\n"
     "Without a re-enrolment the relay refuses the new key (it still binds\n"
     "your account to the old one) and nothing is changed; a wrong or used\n"
     "code likewise. Contacts' next lookup or send warns them of the reset\n"
     "and drops their verified mark; compare safety numbers again. Messages\n"
     "sealed to the old device key cannot be read afterwards. On a new\n"
     "device: 'synod init' without --code, then 'synod keys reset --code'.\n"
     "When the reset cannot be published, the new keys are kept and\n"
     "'synod register' publishes it later.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "      --code CODE      the one-time code of the re-enrolment ('-':\n"
     "                       read it from standard input)\n" COMMON_OPTIONS
         EXIT_NOTE(" (1 also when the home\n"
                   "relay refused the new key: nothing "
                   "changed; or when the new keys\n"
                   "were saved but the reset not published)")},
    {"keys devices", cmd_keys_devices, "list this profile's device keys",
     "usage: synod keys devices [--json] [-H DIR]\n"
     "\n"
     "Shows your identity key's fingerprint, the newest announcement this\n"
     "profile signed, and the device keys of the profile (messages to you\n"
     "are encrypted to these): id, name, creation time and the X25519 key.\n"
     "A profile holds one device key today: this device's.\n"
     "\n" PASS_NOTE "\noptions:\n"
     "  -j, --json           print JSON instead\n" COMMON_OPTIONS EXIT_NOTE(
         "")},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: synod COMMAND [options]\n"
               "       synod [--help | --version]\n"
               "\n"
               "The synod client: end-to-end encrypted messaging over synod "
               "relays.\n"
               "\n"
               "commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n"
               "'synod COMMAND --help' describes a command.\n"
               "\n"
               "environment:\n"
               "  SYNOD_HOME             the profile directory (default "
               "~/.config/synod)\n"
               "  SYNOD_PASSPHRASE_FILE  read the passphrase from this file "
               "instead of\n"
               "                         asking on the terminal\n"
               "\n"
               "options:\n"
               "  -h, --help     show this help and exit\n"
               "  -V, --version  show the version and exit\n"
               "\n"
               "exit status: 0 success, 1 failure, 2 usage error, 3 refused by "
               "policy\n"
               "(a key without quorum, a message that failed verification,\n"
               "a monitor alarm)\n");
}

/* Number of words of name matched by argv[0..argc), or 0. */
static int match(const char *name, int argc, char **argv) {
  int words = 0;
  const char *p = name;
  while (*p != '\0') {
    size_t len = strcspn(p, " ");
    if (words >= argc || strlen(argv[words]) != len ||
        strncmp(argv[words], p, len) != 0)
      return 0;
    words++;
    p += len;
    if (*p == ' ')
      p++;
  }
  return words;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("synod %s (protocol v1)\n", SYNOD_VERSION);
    return EXIT_OK;
  }
  const cmd_t *best = NULL;
  int best_words = 0;
  for (size_t i = 0; i < NCOMMANDS; i++) {
    int w = match(commands[i].name, argc - 1, argv + 1);
    if (w > best_words) {
      best = &commands[i];
      best_words = w;
    }
  }
  if (best)
    return best->fn(best, argc - best_words, argv + best_words);
  /* A command group ("keys") alone, with --help, or with an unknown
   * subcommand: its subcommands, on stdout (exit 0) when asked for. */
  size_t glen = strlen(argv[1]);
  bool group = false, help = argc > 2 && (strcmp(argv[2], "--help") == 0 ||
                                          strcmp(argv[2], "-h") == 0);
  FILE *gout = help ? stdout : stderr;
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strncmp(commands[i].name, argv[1], glen) == 0 &&
        commands[i].name[glen] == ' ') {
      if (!group)
        fprintf(gout, "usage: synod %s SUBCOMMAND; subcommands:\n", argv[1]);
      group = true;
      fprintf(gout, "  %-14s %s\n", commands[i].name, commands[i].summary);
    }
  if (group && help) {
    fprintf(gout, "'synod %s SUBCOMMAND --help' describes one.\n", argv[1]);
    return EXIT_OK;
  }
  if (!group)
    fprintf(stderr, "synod: unknown command '%s' (try --help)\n", argv[1]);
  return EXIT_USAGE;
}
