/*
 * synod-relay: the relay daemon's command line.
 *
 * Subcommands are a table; each prints its own --help. Commands the relay
 * does not implement yet are absent rather than stubbed.
 */
#include <stdio.h>
#include <string.h>

#include "synod/err.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: synod-relay [--help | --version]\n"
          "\n"
          "The synod federated messaging relay.\n"
          "\n"
          "options:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  show the version and exit\n"
          "\n"
          "exit status: 0 success, 1 runtime failure, 2 usage error\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("synod-relay %s (protocol v1)\n", SYNOD_VERSION);
    return 0;
  }
  fprintf(stderr, "synod-relay: unknown command '%s' (try --help)\n", argv[1]);
  return 2;
}
