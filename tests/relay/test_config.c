/* Suite for relay/config.c: the example parses, and each class of mistake
 * is reported as FILE:LINE: reason. */
#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "harness.h"
#include "synod/err.h"

static char tmpdir[64];
static char path[128];
static relay_config_t cfg;
static char err[CONFIG_ERR_MAX];

static int setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/synod-config-test.XXXXXX");
  if (mkdtemp(tmpdir) == NULL)
    return -1;
  snprintf(path, sizeof path, "%s/relay.conf", tmpdir);
  return 0;
}

static int teardown(void) {
  unlink(path);
  return rmdir(tmpdir);
}

/* A valid file; the line numbers are used below. */
#define BASE                                                                   \
  "[relay]\n"                 /* 1 */                                          \
  "name = relay-a.test\n"     /* 2 */                                          \
  "listen = 127.0.0.1:7400\n" /* 3 */                                          \
  "key_file = relay.key\n"    /* 4 */                                          \
  "[database]\n"              /* 5 */                                          \
  "conninfo = dbname=synod\n" /* 6 */

#define KEY_B "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static int load(const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
  return config_load(&cfg, path, err, sizeof err);
}

/* Asserts that text is refused with "PATH:reason_with_line". */
static void expect_error(const char *text, const char *expected) {
  char want[CONFIG_ERR_MAX];
  snprintf(want, sizeof want, "%s:%s", path, expected);
  int rc = load(text);
  CU_ASSERT_EQUAL(rc, SYNOD_ECONFIG);
  if (strcmp(err, want) != 0)
    fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, err);
  CU_ASSERT_STRING_EQUAL(err, want);
  if (rc == 0)
    config_free(&cfg);
}

static void test_example(void) {
  /* deploy/relay.conf.example, found from this file's (absolute) path. */
  char src[] = __FILE__;
  char example[512];
  const char *top = getenv("SYNOD_SOURCE_DIR");
  if (top != NULL)
    snprintf(example, sizeof example, "%s/deploy/relay.conf.example", top);
  else
    snprintf(example, sizeof example, "%s/../../deploy/relay.conf.example",
             dirname(src));
  int rc = config_load(&cfg, example, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "\n  %s\n", err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_STRING_EQUAL(cfg.name, "relay-a.example");
  CU_ASSERT_STRING_EQUAL(cfg.operator_name, "Example Org A");
  CU_ASSERT_STRING_EQUAL(cfg.listen, "0.0.0.0:7400");
  CU_ASSERT_EQUAL(cfg.listen_addr.ss_family, AF_INET);
  CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&cfg.listen_addr)->sin_port),
                  7400);
  CU_ASSERT_STRING_EQUAL(cfg.key_file, "/var/lib/synod/relay.key");
  CU_ASSERT_PTR_NULL(cfg.tls_cert);
  CU_ASSERT_PTR_NULL(cfg.tls_key);
  CU_ASSERT_EQUAL(cfg.log_level, SYNOD_LOG_INFO);
  CU_ASSERT_STRING_EQUAL(cfg.conninfo,
                         "host=/var/run/postgresql dbname=synod user=synod");
  /* The example states every default; they must be the defaults. */
  CU_ASSERT_EQUAL(cfg.max_batch, 256);
  CU_ASSERT_EQUAL(cfg.max_frame_bytes, 262144);
  CU_ASSERT_EQUAL(cfg.handshake_timeout_ms, 10000);
  CU_ASSERT_EQUAL(cfg.idle_timeout_ms, 300000);
  CU_ASSERT_EQUAL(cfg.max_connections, 1024);
  CU_ASSERT_EQUAL(cfg.frame_timeout_ms, 30000);
  CU_ASSERT_EQUAL(cfg.max_buffered_bytes, 256u << 20);
  CU_ASSERT_EQUAL(cfg.message_rate, 50);
  CU_ASSERT_EQUAL(cfg.message_burst, 200);
  CU_ASSERT_EQUAL(cfg.quota_bytes, 64u << 20);
  CU_ASSERT_EQUAL(cfg.max_ttl_ms, 7ull * 86400000);
  CU_ASSERT_EQUAL(cfg.default_ttl_ms, 2ull * 86400000);
  CU_ASSERT_EQUAL(cfg.max_envelope_bytes, 65536);
  CU_ASSERT_EQUAL(cfg.enroll_code_ttl_ms, 7ull * 86400 * 1000);
  CU_ASSERT_EQUAL(cfg.delivered, CONFIG_RETENTION_DELETE);
  CU_ASSERT_EQUAL(cfg.window, 256);
  CU_ASSERT_EQUAL(cfg.retry_min_ms, 100);
  CU_ASSERT_EQUAL(cfg.retry_max_ms, 60000);
  CU_ASSERT_EQUAL_FATAL(cfg.npeers, 1);
  const relay_config_peer_t *b = config_find_peer(&cfg, "relay-b.example");
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_STRING_EQUAL(b->host, "relay-b.example");
  CU_ASSERT_EQUAL(b->port, 7400);
  CU_ASSERT_STRING_EQUAL(b->operator_name, "Example Org B");
  for (int i = 0; i < 32; i++)
    CU_ASSERT_EQUAL(b->key[i], i);
  CU_ASSERT_PTR_NULL(config_find_peer(&cfg, "relay-c.example"));
  config_free(&cfg);
}

/* Defaults apply, relative paths follow the file, the operator defaults to
 * the name, and everything can be set. */
static void test_values(void) {
  CU_ASSERT_EQUAL_FATAL(load(BASE), 0);
  char want[256];
  snprintf(want, sizeof want, "%s/relay.key", tmpdir);
  CU_ASSERT_STRING_EQUAL(cfg.key_file, want);
  CU_ASSERT_STRING_EQUAL(cfg.operator_name, "relay-a.test");
  CU_ASSERT_EQUAL(cfg.max_frame_bytes, 262144);
  CU_ASSERT_EQUAL(cfg.npeers, 0);
  config_free(&cfg);

  CU_ASSERT_EQUAL_FATAL(
      load("[relay]\n"
           "  name = relay-a.test ; indented, with a comment\n"
           "listen = [::1]:17400\n"
           "key_file = /etc/synod/k\n"
           "tls_cert = tls/cert.pem\n"
           "tls_key = tls/key.pem\n"
           "log_level = debug\n"
           "[limits]\n"
           "max_frame_bytes = 1MiB\n"
           "handshake_timeout = 250ms\n"
           "idle_timeout = 5m\n"
           "quota_bytes = 2GiB\n"
           "max_ttl = 2h\n"
           "default_ttl = 90m\n"
           "[retention]\n"
           "delivered = keep\n"
           "keep_for = 1d\n"
           "[database]\n"
           "conninfo = \"host=db port=5433\"\n"
           "[peer \"b.test\"]\n"
           "address = [2001:db8::1]:7400\n"
           "key = " KEY_B "\n"
           "operator = B\n"
           "[peer \"c.test\"]\n"
           "address = 192.0.2.7:7400\n"
           "key = " KEY_B "\n"
           "operator = C\n"),
      0);
  CU_ASSERT_EQUAL(cfg.listen_addr.ss_family, AF_INET6);
  CU_ASSERT_EQUAL(cfg.listen_addrlen, sizeof(struct sockaddr_in6));
  CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in6 *)&cfg.listen_addr)->sin6_port),
                  17400);
  CU_ASSERT_STRING_EQUAL(cfg.key_file, "/etc/synod/k");
  snprintf(want, sizeof want, "%s/tls/cert.pem", tmpdir);
  CU_ASSERT_STRING_EQUAL(cfg.tls_cert, want);
  CU_ASSERT_EQUAL(cfg.log_level, SYNOD_LOG_DEBUG);
  CU_ASSERT_EQUAL(cfg.max_frame_bytes, 1u << 20);
  CU_ASSERT_EQUAL(cfg.handshake_timeout_ms, 250);
  CU_ASSERT_EQUAL(cfg.idle_timeout_ms, 300000);
  CU_ASSERT_EQUAL(cfg.quota_bytes, 2ull << 30);
  CU_ASSERT_EQUAL(cfg.default_ttl_ms, 90ull * 60000);
  CU_ASSERT_EQUAL(cfg.delivered, CONFIG_RETENTION_KEEP);
  CU_ASSERT_EQUAL(cfg.keep_for_ms, 86400000);
  CU_ASSERT_STRING_EQUAL(cfg.conninfo, "host=db port=5433");
  CU_ASSERT_EQUAL_FATAL(cfg.npeers, 2);
  CU_ASSERT_STRING_EQUAL(cfg.peers[0].name, "b.test");
  CU_ASSERT_STRING_EQUAL(cfg.peers[0].host, "2001:db8::1");
  CU_ASSERT_EQUAL(cfg.peers[0].line, 20);
  CU_ASSERT_STRING_EQUAL(cfg.peers[1].address, "192.0.2.7:7400");
  config_free(&cfg);
  config_free(&cfg); /* zeroed: a second free is harmless */
}

static void test_duration(void) {
  uint64_t ms = 0;
  CU_ASSERT_EQUAL(config_parse_duration("250ms", &ms), 0);
  CU_ASSERT_EQUAL(ms, 250);
  CU_ASSERT_EQUAL(config_parse_duration("10s", &ms), 0);
  CU_ASSERT_EQUAL(ms, 10000);
  CU_ASSERT_EQUAL(config_parse_duration("5m", &ms), 0);
  CU_ASSERT_EQUAL(ms, 300000);
  CU_ASSERT_EQUAL(config_parse_duration("2h", &ms), 0);
  CU_ASSERT_EQUAL(ms, 7200000);
  CU_ASSERT_EQUAL(config_parse_duration("7d", &ms), 0);
  CU_ASSERT_EQUAL(ms, 604800000);
  CU_ASSERT_EQUAL(config_parse_duration("0s", &ms), 0);
  CU_ASSERT_EQUAL(ms, 0);
  const char *bad[] = {"",   "10",   "s",  "-1s",  "+1s",  "1.5s", "1 s",
                       "1S", "1sec", "1w", "10s ", " 10s", "1ms2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(config_parse_duration(bad[i], &ms), SYNOD_EPARSE);
  CU_ASSERT_EQUAL(config_parse_duration("99999999999999999999ms", &ms),
                  SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(config_parse_duration("999999999999999999d", &ms),
                  SYNOD_ETOOBIG);
}

static void test_hostport(void) {
  char *host = NULL;
  uint16_t port = 0;
  const char *why = NULL;
  CU_ASSERT_EQUAL(
      config_parse_hostport("relay.example:7400", 0, &host, &port, &why), 0);
  CU_ASSERT_STRING_EQUAL(host, "relay.example");
  CU_ASSERT_EQUAL(port, 7400);
  free(host);
  CU_ASSERT_EQUAL(config_parse_hostport("[::]:1", 1, &host, &port, &why), 0);
  CU_ASSERT_STRING_EQUAL(host, "::");
  free(host);
  const char *bad[] = {"relay.example:7400",
                       "127.0.0.1",
                       "127.0.0.1:0",
                       "127.0.0.1:65536",
                       ":7400",
                       "::1:7400",
                       "[::1]",
                       "[::1]7400",
                       "[nope]:1",
                       "1.2.3.4:7a",
                       "[::1:7400"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CU_ASSERT_EQUAL(config_parse_hostport(bad[i], 1, &host, &port, &why),
                    SYNOD_EPARSE);
    CU_ASSERT_PTR_NULL(host);
  }
  CU_ASSERT_EQUAL(
      config_parse_hostport("Relay.Example:1", 0, &host, &port, &why),
      SYNOD_EPARSE);
}

static void test_unknown(void) {
  expect_error(BASE "max_connection = 10\n",
               "7: unknown key 'max_connection' in [database]");
  expect_error(BASE "[limit]\nmax_connections = 10\n",
               "7: unknown section [limit] (known: relay, database, limits, "
               "retention, federation, peer \"NAME\")");
  /* An empty unknown section is still noticed. */
  expect_error(BASE "[bogus]\n",
               "7: unknown section [bogus] (known: relay, database, limits, "
               "retention, federation, peer \"NAME\")");
  expect_error("name = x\n" BASE,
               "1: 'name' is outside any section (start with [relay])");
  expect_error(BASE "[peer \"b.test\"]\naddress = b.test:1\nkey = " KEY_B
                    "\noperator = B\nport = 1\n",
               "11: unknown key 'port' in a peer section (known: address, "
               "key, operator)");
}

static void test_syntax(void) {
  expect_error(BASE "just words\n",
               "7: syntax error: expected 'key = value' or '[section]'");
  expect_error(BASE "[limits\n",
               "7: syntax error: expected 'key = value' or '[section]'");
  char text[1024];
  snprintf(text, sizeof text, BASE "max_batch = %0300d\n", 1);
  expect_error(text, "7: line longer than 197 characters");
  /* 197 characters and a CR LF are fine. */
  snprintf(text, sizeof text, BASE "max_batch = %0185d\r\n", 1);
  CU_ASSERT_EQUAL(strlen(text) - strlen(BASE), 199);
  CU_ASSERT_EQUAL(load(text), 0);
  CU_ASSERT_EQUAL(cfg.max_batch, 1);
  config_free(&cfg);
  snprintf(text, sizeof text, BASE "max_batch = %0186d\n", 1);
  expect_error(text, "7: line longer than 197 characters");
  /* A short line and a run of CRs is still more than inih's buffer holds
   * (found by fuzz_config: the whole line was copied into it). */
  snprintf(text, sizeof text, BASE "max_batch = 1%0300d\n", 0);
  for (char *c = strchr(text + strlen(BASE), '0'); *c == '0'; c++)
    *c = '\r';
  expect_error(text, "7: line longer than 197 characters");
  expect_error(BASE "conninfo = again\n", "7: conninfo: already set on line 6");
  expect_error(BASE "[relay]\nlog_level = info\n",
               "7: [relay]: duplicate section (first on line 1)");
}

static void test_duration_errors(void) {
  expect_error(BASE "[limits]\nidle_timeout = 10\n",
               "8: idle_timeout: '10' is not a duration (a whole number "
               "followed by ms, s, m, h or d, as in 250ms, 10s, 5m, 2h, 7d)");
  expect_error(BASE "[limits]\nhandshake_timeout = 1w\n",
               "8: handshake_timeout: '1w' is not a duration (a whole number "
               "followed by ms, s, m, h or d, as in 250ms, 10s, 5m, 2h, 7d)");
  expect_error(BASE "[limits]\nhandshake_timeout = 1h\n",
               "8: handshake_timeout: must be between 100ms and 300000ms");
  expect_error(BASE "[federation]\nretry_min = 2m\n",
               "8: retry_min: must be between 10ms and 60000ms");
}

static void test_range(void) {
  expect_error(BASE "[limits]\nmax_frame_bytes = 100\n",
               "8: max_frame_bytes: must be between 1024 and 16777216");
  expect_error(BASE "[limits]\nmax_frame_bytes = 17MiB\n",
               "8: max_frame_bytes: must be between 1024 and 16777216");
  expect_error(BASE "[limits]\nmax_frame_bytes = 99999999999999999999999\n",
               "8: max_frame_bytes: must be between 1024 and 16777216");
  expect_error(BASE "[limits]\nmax_frame_bytes = 1MB\n",
               "8: max_frame_bytes: '1MB' is not a byte count (a whole number, "
               "optionally followed by KiB, MiB or GiB)");
  expect_error(BASE "[limits]\nmax_connections = 0\n",
               "8: max_connections: must be between 1 and 1000000");
  expect_error(BASE "[limits]\nmax_connections = -5\n",
               "8: max_connections: '-5' is not a whole number");
  expect_error(BASE "[retention]\ndelivered = archive\n",
               "8: delivered: must be delete or keep");
  expect_error(
      "[relay]\nlog_level = loud\n",
      "2: log_level: 'loud' is not one of error, warn, info, debug, trace");
  /* Checks across keys point at the key that breaks them. */
  expect_error(BASE "[limits]\nmax_ttl = 1d\ndefault_ttl = 2d\n",
               "9: default_ttl: must not exceed max_ttl (86400000ms)");
  expect_error(BASE "[limits]\nmax_frame_bytes = 4096\n",
               "8: max_envelope_bytes: must be smaller than max_frame_bytes "
               "(4096), which also carries the envelope's framing");
  expect_error(BASE "[limits]\nquota_bytes = 2048\n",
               "8: quota_bytes: must be at least max_envelope_bytes (65536)");
  expect_error(BASE "[federation]\nretry_max = 1s\nretry_min = 2s\n",
               "9: retry_min: must not exceed retry_max (1000ms)");
  expect_error(BASE "[retention]\nkeep_for = 1d\n",
               "8: keep_for: only meaningful with delivered = keep");
  expect_error(BASE "[relay]\n",
               "7: [relay]: duplicate section (first on line 1)");
}

static void test_relay_keys(void) {
  expect_error(
      "[relay]\nname = Relay.Test\nlisten = 127.0.0.1:1\nkey_file = k\n"
      "[database]\nconninfo = x\n",
      "2: name: 'Relay.Test' is not a relay name (lowercase DNS "
      "labels of [a-z0-9-], dot-separated, at most 253 bytes)");
  expect_error("[relay]\nname = a.test\nlisten = localhost:7400\n",
               "3: listen: the host must be an IPv4 address or a bracketed "
               "IPv6 address");
  expect_error("[relay]\nname = a.test\nlisten = 127.0.0.1\n",
               "3: listen: expected host:port");
  expect_error("[relay]\nname = a.test\nlisten = 127.0.0.1:99999\n",
               "3: listen: the port must be a number between 1 and 65535");
  expect_error("[relay]\nname = a.test\nlisten = ::1:7400\n",
               "3: listen: an IPv6 address must be written in brackets, as "
               "[::1]:7400");
  expect_error("[relay]\nname = a.test\nlisten = [::g]:7400\n",
               "3: listen: not an IPv6 address");
  expect_error("[relay]\nname = a.test\nkey_file =\n",
               "3: key_file: must not be empty");
  expect_error("[database]\nconninfo = x\n"
               "[relay]\nname = a.test\nlisten = 127.0.0.1:1\nkey_file = k\n"
               "tls_cert = c.pem\n",
               "7: tls_cert and tls_key go together: set both or neither");
}

static void test_missing(void) {
  /* Without a line: the key is nowhere in the file. */
  expect_error("[relay]\nname = a.test\nlisten = 127.0.0.1:1\nkey_file = k\n",
               " [database] conninfo: missing");
  expect_error("[relay]\nlisten = 127.0.0.1:1\n", " [relay] name: missing");
  expect_error("[relay]\nname = a.test\n", " [relay] listen: missing");
  expect_error("", " [relay] name: missing");
  /* A peer's keys are reported at its header. */
  expect_error(BASE "[peer \"b.test\"]\naddress = b.test:7400\noperator = B\n",
               "7: [peer \"b.test\"]: key: missing");
  expect_error(BASE "[peer \"b.test\"]\n[limits]\n",
               "7: [peer \"b.test\"]: address: missing");
  expect_error(BASE "[peer \"b.test\"]\n",
               "7: [peer \"b.test\"]: address: missing");

  int rc = config_load(&cfg, "/nonexistent/relay.conf", err, sizeof err);
  CU_ASSERT_EQUAL(rc, SYNOD_EIO);
  CU_ASSERT_STRING_EQUAL(
      err, "/nonexistent/relay.conf: cannot open: No such file or directory");
}

static void test_peers(void) {
  expect_error(BASE
               "[peer \"b.test\"]\naddress = b.test:7400\nkey = "
               "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
               "9: key: not a relay public key line 'synod-ed25519 BASE64' "
               "(paste the line synod-relay keygen printed on the peer)");
  expect_error(BASE
               "[peer \"b.test\"]\naddress = b.test:7400\nkey = "
               "synod-x25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
               "9: key: not a relay public key line 'synod-ed25519 BASE64' "
               "(paste the line synod-relay keygen printed on the peer)");
  expect_error(
      BASE "[peer \"b.test\"]\naddress = b.test:7400\nkey = " KEY_B
           "\noperator = B\n[peer \"b.test\"]\n",
      "11: [peer \"b.test\"]: duplicate peer (first defined on line 7)");
  expect_error(BASE "[peer \"relay-a.test\"]\n",
               "7: [peer \"relay-a.test\"]: a relay cannot be its own peer");
  /* Also when the peer comes before [relay] names us. */
  expect_error("[peer \"a.test\"]\naddress = a.test:1\nkey = " KEY_B
               "\noperator = A\n"
               "[relay]\nname = a.test\nlisten = 127.0.0.1:1\nkey_file = k\n"
               "[database]\nconninfo = x\n",
               "1: [peer \"a.test\"]: a relay cannot be its own peer");
  expect_error(BASE "[peer b.test]\n",
               "7: [peer b.test]: a peer section is written [peer "
               "\"relay.example.org\"]");
  expect_error(BASE "[peer \"B.test\"]\n",
               "7: [peer \"B.test\"]: 'B.test' is not a relay name");
  expect_error(BASE "[peer \"b.test\"]\naddress = b_test:7400\n",
               "8: address: the host is neither an IP address nor a lowercase "
               "DNS name");
  expect_error(BASE
               "[peer \"b.test\"]\naddress = b.test:1\naddress = b.test:2\n",
               "9: address: already set on line 8");
}

/* config_load_buffer(): the same parse as the file, errors named after
 * the path given, the bytes need no terminator, and an empty text is a
 * file with nothing in it. */
static void test_buffer(void) {
  const char *text = BASE "max_batch = 7\n";
  CU_ASSERT_EQUAL(config_load_buffer(&cfg, "/etc/x/relay.conf", text,
                                     strlen(text), err, sizeof err),
                  0);
  CU_ASSERT_EQUAL(cfg.max_batch, 7);
  CU_ASSERT_STRING_EQUAL(cfg.key_file, "/etc/x/relay.key");
  config_free(&cfg);
  /* Cut before "max_batch": the limit keeps its default. */
  size_t cut = strlen(BASE);
  char copy[512];
  /* No NUL on purpose: the loader must stop at the length it is given. */
  /* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
  memcpy(copy, text, strlen(text));
  CU_ASSERT_EQUAL(
      config_load_buffer(&cfg, "b.conf", copy, cut, err, sizeof err), 0);
  CU_ASSERT_EQUAL(cfg.max_batch, 256);
  config_free(&cfg);
  text = BASE "just words\n";
  CU_ASSERT_EQUAL(
      config_load_buffer(&cfg, "b.conf", text, strlen(text), err, sizeof err),
      SYNOD_ECONFIG);
  CU_ASSERT_STRING_EQUAL(
      err, "b.conf:7: syntax error: expected 'key = value' or '[section]'");
  CU_ASSERT_EQUAL(config_load_buffer(&cfg, "b.conf", "", 0, err, sizeof err),
                  SYNOD_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "b.conf: [relay] name: missing"));
  CU_ASSERT_EQUAL(config_load_buffer(&cfg, "b.conf", "[relay]\nname = a\0b\n",
                                     19, err, sizeof err),
                  SYNOD_ECONFIG);
  CU_ASSERT_STRING_EQUAL(err, "b.conf:2: NUL byte in the line");
}

static CU_TestInfo config_tests[] = {
    {"example", test_example},
    {"values", test_values},
    {"duration", test_duration},
    {"hostport", test_hostport},
    {"unknown", test_unknown},
    {"syntax", test_syntax},
    {"duration_errors", test_duration_errors},
    {"range", test_range},
    {"relay_keys", test_relay_keys},
    {"missing", test_missing},
    {"peers", test_peers},
    {"buffer", test_buffer},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"config", setup, teardown, NULL, NULL, config_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
