/*
 * synod-relay: the relay daemon's command line.
 *
 * Subcommands are a table; each prints its own --help. A command is one or
 * two words ("status", "user add"); the longest match wins. Commands the
 * relay does not implement yet are absent rather than stubbed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "synod/err.h"

#define CONFIG_OPTION                                                          \
  "  -c, --config FILE    the relay configuration (default:\n"                 \
  "                       $SYNOD_RELAY_CONFIG, else\n"                         \
  "                       " ADMIN_DEFAULT_CONFIG ")\n"
#define HELP_OPTION "  -h, --help           show this help and exit\n"

static const admin_cmd_t commands[] = {
    {"keygen", admin_keygen, "write a new relay key and print its peer line",
     "usage: synod-relay keygen [-k KEYFILE | -c CONFIG]\n"
     "\n"
     "Generates the relay's Ed25519 key and writes it, mode 0600, to KEYFILE\n"
     "or to the configuration's key_file. An existing file is never\n"
     "overwritten: peers pin the key, so replacing it is a deliberate act.\n"
     "Prints what a peer operator pastes into their configuration: with -c,\n"
     "a ready [peer \"NAME\"] block (address, key, operator); with -k, the\n"
     "public key line alone.\n"
     "\n"
     "options:\n"
     "  -k, --key-file FILE  the key file to write\n" CONFIG_OPTION
         HELP_OPTION},
    {"pubkey", admin_pubkey, "print the peer line of the existing relay key",
     "usage: synod-relay pubkey [-k KEYFILE | -c CONFIG]\n"
     "\n"
     "Prints the same as keygen for the key already in KEYFILE or the\n"
     "configuration's key_file, without writing anything.\n"
     "\n"
     "options:\n"
     "  -k, --key-file FILE  the key file to read\n" CONFIG_OPTION HELP_OPTION},
    {"migrate", admin_migrate, "create or upgrade the database schema",
     "usage: synod-relay migrate [-c FILE]\n"
     "\n"
     "Applies the schema migrations the database lacks, each in its own\n"
     "transaction under an advisory lock (several relays may run it at\n"
     "once), and prints each one applied, or that the schema is up to date.\n"
     "Refuses a database whose schema is newer than this program.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
    {"user add", admin_user_add,
     "create an account and print its enrolment code",
     "usage: synod-relay user add NAME [-c FILE]\n"
     "\n"
     "Creates the account NAME (1 to 64 of a-z 0-9 . _ -, starting with a\n"
     "letter or digit; the user id is NAME@RELAY) and prints a one-time\n"
     "enrolment code. The user's first device presents it to bind the account\n"
     "to its identity key, before the code expires (enroll_code_ttl in the\n"
     "configuration, 7 days; the expiry is printed). Only a SHA-256 hash of\n"
     "the code is stored.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
    {"user list", admin_user_list, "list accounts",
     "usage: synod-relay user list [--json] [-c FILE]\n"
     "\n"
     "Lists every account: name, enrolled, pending or expired (its code\n"
     "was not used in time), disabled, bytes of\n"
     "ciphertext stored for it, creation time (UTC).\n"
     "\n"
     "options:\n"
     "      --json           print JSON instead\n" CONFIG_OPTION HELP_OPTION},
    {"user disable", admin_user_disable, "refuse an account's sessions",
     "usage: synod-relay user disable NAME [-c FILE]\n"
     "\n"
     "Marks the account disabled: it can no longer authenticate or receive;\n"
     "a running relay closes the sessions it has open. Stored messages are\n"
     "kept until they expire. Undo with user enable.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
    {"user enable", admin_user_enable, "re-enable a disabled account",
     "usage: synod-relay user enable NAME [-c FILE]\n"
     "\n"
     "Clears the disabled mark set by user disable.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
    {"user reenroll", admin_user_reenroll,
     "unbind an account's key, print a new enrolment code",
     "usage: synod-relay user reenroll NAME [-c FILE]\n"
     "\n"
     "For a user who lost their device or whose keys were compromised:\n"
     "clears the identity key bound to the account NAME (that key can no\n"
     "longer log in; a running relay closes its open sessions) and\n"
     "prints a new one-time enrolment code, of which only a SHA-256 hash is\n"
     "stored. The first key that presents the code is bound to the account;\n"
     "the user then publishes a key reset ('synod keys reset --code CODE').\n"
     "Check who asks before you run it: whoever holds the code owns the\n"
     "account. The change is logged on standard error with the old key.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
    {"run", admin_run, "serve: accept clients and peers, store and forward",
     "usage: synod-relay run [-c FILE]\n"
     "\n"
     "Serves the relay in the foreground until SIGTERM or SIGINT: TLS 1.3\n"
     "listener for clients and peer relays, one federation link to each\n"
     "configured peer, durable store-and-forward on PostgreSQL. Logs go to\n"
     "standard error in logfmt. The database must be migrated first\n"
     "(synod-relay migrate). On SIGTERM the relay stops accepting, lets the\n"
     "commits in flight finish, closes its connections and exits 0.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
    {"status", admin_status, "show queue depths and account counts",
     "usage: synod-relay status [-c FILE]\n"
     "\n"
     "Checks the configuration and prints, from the database, the account\n"
     "counts (total, enrolled, disabled), the messages waiting in the inbox\n"
     "for local users, the delivery-failure notices waiting, and for each\n"
     "peer the messages queued for it and the age of the oldest.\n"
     "\n"
     "options:\n" CONFIG_OPTION HELP_OPTION},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: synod-relay COMMAND [options]\n"
               "       synod-relay [--help | --version]\n"
               "\n"
               "The synod federated messaging relay.\n"
               "\n"
               "commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n"
               "'synod-relay COMMAND --help' describes a command.\n"
               "\n"
               "options:\n"
               "  -h, --help     show this help and exit\n"
               "  -V, --version  show the version and exit\n"
               "\n"
               "exit status: 0 success, 1 runtime failure, 2 usage error or "
               "invalid configuration\n");
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
    return ADMIN_EXIT_USAGE;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return ADMIN_EXIT_OK;
  }
  if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("synod-relay %s (protocol v1)\n", SYNOD_VERSION);
    return ADMIN_EXIT_OK;
  }

  const admin_cmd_t *best = NULL;
  int best_words = 0;
  for (size_t i = 0; i < NCOMMANDS; i++) {
    int w = match(commands[i].name, argc - 1, argv + 1);
    if (w > best_words) {
      best = &commands[i];
      best_words = w;
    }
  }
  if (best != NULL)
    return best->fn(best, argc - best_words, argv + best_words);

  /* A command group ("user") without, or with an unknown, subcommand. */
  bool group = false, help = argc > 2 && (strcmp(argv[2], "--help") == 0 ||
                                          strcmp(argv[2], "-h") == 0);
  size_t glen = strlen(argv[1]);
  for (size_t i = 0; i < NCOMMANDS; i++) {
    if (strncmp(commands[i].name, argv[1], glen) != 0 ||
        commands[i].name[glen] != ' ')
      continue;
    if (!group)
      fprintf(help ? stdout : stderr,
              "usage: synod-relay %s SUBCOMMAND ...\n\n"
              "subcommands:\n",
              argv[1]);
    group = true;
    fprintf(help ? stdout : stderr, "  %-14s %s\n", commands[i].name,
            commands[i].summary);
  }
  if (group) {
    if (help)
      return ADMIN_EXIT_OK;
    if (argc > 2)
      fprintf(stderr, "synod-relay %s: unknown subcommand '%s'\n", argv[1],
              argv[2]);
    return ADMIN_EXIT_USAGE;
  }
  fprintf(stderr, "synod-relay: unknown command '%s' (try --help)\n", argv[1]);
  return ADMIN_EXIT_USAGE;
}
