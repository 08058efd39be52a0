/*
 * The relay's INI configuration loader (relay/config.c) on arbitrary text,
 * through config_load_buffer(), the parser config_load() uses.
 *
 * Checks: a refused text gives SYNOD_ECONFIG (or ENOMEM) and an error
 * message naming the file; an accepted one meets every rule the loader
 * promises across keys (envelope below frame, default TTL within the
 * maximum, quota at least one envelope, retry bounds ordered, both or
 * neither TLS file, a valid relay name that is none of its peers' names,
 * peers with distinct names, a port and a host), and config_find_peer()
 * finds each peer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixture.h"
#include "synod/userid.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  relay_config_t cfg;
  char err[CONFIG_ERR_MAX];
  int rc = config_load_buffer(&cfg, "fuzz/relay.conf", (const char *)data, size,
                              err, sizeof err);
  fx_trace("config -> %s %s", synod_err_name(rc), rc ? err : "");
  if (rc != 0) {
    check(rc == SYNOD_ECONFIG || rc == SYNOD_ENOMEM,
          "refused with an unexpected code");
    check(strncmp(err, "fuzz/relay.conf", 15) == 0,
          "the error does not name the file");
    return 0;
  }
  check(synod_relay_name_check(cfg.name) == 0, "a bad relay name");
  check(cfg.operator_name[0] != '\0', "no operator name");
  check(cfg.listen && cfg.key_file && cfg.conninfo, "a required key missing");
  check(cfg.max_envelope_bytes < cfg.max_frame_bytes,
        "envelope not below the frame limit");
  check(cfg.default_ttl_ms <= cfg.max_ttl_ms, "default TTL above the maximum");
  check(cfg.quota_bytes >= cfg.max_envelope_bytes, "quota below one envelope");
  check(cfg.retry_min_ms <= cfg.retry_max_ms, "retry bounds reversed");
  check((cfg.tls_cert == NULL) == (cfg.tls_key == NULL),
        "one TLS file without the other");
  for (size_t i = 0; i < cfg.npeers; i++) {
    const relay_config_peer_t *p = &cfg.peers[i];
    check(synod_relay_name_check(p->name) == 0 && strcmp(p->name, cfg.name),
          "a bad peer name");
    check(p->host && p->port && p->address, "a peer without an address");
    check(config_find_peer(&cfg, p->name) == p, "peer names repeat");
  }
  config_free(&cfg);
  return 0;
}
