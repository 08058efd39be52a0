/*
 * The operator's commands of synod-relay: keygen, pubkey, migrate, user
 * add|list|disable|enable|reenroll, status. They run before and beside the
 * server, not on its loop, so they use blocking libpq.
 *
 * relay/main.c holds the table of commands and dispatches; each command is
 * an admin_cmd_fn that parses its own options (getopt_long, argv[0] being
 * the command's last word) and returns the process exit status.
 */
#ifndef SYNOD_RELAY_ADMIN_H
#define SYNOD_RELAY_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "synod/crypto.h"
#include "synod/err.h"

/* Exit statuses of every command. */
#define ADMIN_EXIT_OK    0
#define ADMIN_EXIT_FAIL  1 /* runtime failure: database, key file, ... */
#define ADMIN_EXIT_USAGE 2 /* bad arguments or a bad configuration file */

/* Used when neither -c nor SYNOD_RELAY_CONFIG names the file. */
#define ADMIN_DEFAULT_CONFIG "/etc/synod/relay.conf"

typedef struct admin_cmd admin_cmd_t;

/* A command: argv[0] is its last word ("add" for "user add"), options and
 * operands follow. Returns an ADMIN_EXIT_* status. */
typedef int (*admin_cmd_fn)(const admin_cmd_t *cmd, int argc, char **argv);

struct admin_cmd {
  const char *name; /* one or two words: "keygen", "user add" */
  admin_cmd_fn fn;
  const char *summary; /* one line for synod-relay --help */
  const char *usage;   /* the command's --help text, without exit statuses */
};

/* Prints cmd's --help (usage, then the exit statuses) to out. */
void admin_print_help(const admin_cmd_t *cmd, FILE *out);

int admin_keygen(const admin_cmd_t *cmd, int argc, char **argv);
int admin_pubkey(const admin_cmd_t *cmd, int argc, char **argv);
int admin_migrate(const admin_cmd_t *cmd, int argc, char **argv);
int admin_user_add(const admin_cmd_t *cmd, int argc, char **argv);
int admin_user_list(const admin_cmd_t *cmd, int argc, char **argv);
int admin_user_disable(const admin_cmd_t *cmd, int argc, char **argv);
int admin_user_enable(const admin_cmd_t *cmd, int argc, char **argv);
int admin_user_reenroll(const admin_cmd_t *cmd, int argc, char **argv);
int admin_status(const admin_cmd_t *cmd, int argc, char **argv);
int admin_run(const admin_cmd_t *cmd, int argc, char **argv);

/*
 * Loads the configuration named by path, else $SYNOD_RELAY_CONFIG, else
 * ADMIN_DEFAULT_CONFIG, reporting a problem on stderr. Returns
 * ADMIN_EXIT_OK with *cfg to be config_free()d, or ADMIN_EXIT_USAGE.
 * For `run` as well.
 */
int admin_load_config(relay_config_t *cfg, const char *path);

/* --- one-time enrolment codes ------------------------------------------------
 */

/* A code is 20 characters of the RFC 4648 base32 alphabet (100 random bits),
 * shown as five groups of four: "K7QF-2MXA-..."; 24 bytes with the NUL. */
#define ADMIN_ENROLL_CODE_CHARS 20
#define ADMIN_ENROLL_CODE_TEXT  (ADMIN_ENROLL_CODE_CHARS + 4 + 1)

/* A fresh code in display form into text. */
SYNOD_WUR int admin_enroll_code_new(char text[static ADMIN_ENROLL_CODE_TEXT]);

/*
 * What accounts.enroll_code_hash holds for a code: SHA-256 of its 20
 * characters in upper case, without separators. The code may be typed in
 * either case, with '-' or ' ' anywhere. SYNOD_EPARSE when it is not 20
 * base32 characters. The server hashes what a client presents with this and
 * compares with synod_memeq().
 */
SYNOD_WUR int admin_enroll_code_hash(uint8_t hash[static SYNOD_SHA256_BYTES],
                                     const char *code, size_t len);

#endif
