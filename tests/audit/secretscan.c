/*
 * secretscan: looks for secrets in files, in every encoding a program is
 * likely to write them in. The audit.secrets test (tests/audit/secrets.sh)
 * runs it over the relays' logs, the PostgreSQL dumps and data directory,
 * the profiles and the commands' output of a whole quick-start story.
 *
 *   secretscan [SECRET...] [--dump] [--] PATH...
 *
 * SECRET is one of
 *   --text LABEL STRING          the bytes of STRING (a passphrase, a
 *                                plaintext, an enrolment code)
 *   --hex LABEL HEX              the bytes HEX encodes
 *   --relay-key LABEL FILE       the Ed25519 seed in a relay key file
 *   --profile LABEL DIR PASSFILE the private keys of a client profile, opened
 *                                with the library and the passphrase in
 *                                PASSFILE (one trailing newline ignored):
 *                                LABEL.identity (Ed25519 seed),
 *                                LABEL.device (X25519 private key) and
 *                                LABEL.mac (the profile's MAC key)
 *
 * Each secret is looked for raw, as hex in both cases, and as base64 and
 * base64url at the three alignments it can have inside a longer encoding
 * (only the characters that depend on the secret's bytes alone). PATHs
 * are files or directories, walked recursively; symbolic links are not
 * followed. --dump prints "LABEL HEX" for every secret instead, so that a
 * test can plant them.
 *
 * Prints one line per secret form found in a file, then a summary.
 * Exit status: 0 nothing found, 1 something found, 2 usage or I/O error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "synod/client.h"
#include "synod/encoding.h"
#include "synod/keyfile.h"

#define MAX_SECRETS  256
#define MAX_SECRET   4096
#define MIN_PATTERN  8 /* shorter forms would match by chance */
#define FORMS        9 /* raw, hex, HEX, 3 x base64, 3 x base64url */
#define MAX_PASSFILE 1024

typedef struct secret {
  char label[128];
  uint8_t *bytes;
  size_t len;
} secret_t;

typedef struct pattern {
  const secret_t *secret;
  char form[16];
  uint8_t *bytes;
  size_t len;
} pattern_t;

static secret_t secrets[MAX_SECRETS];
static size_t nsecrets;
static pattern_t *patterns;
static size_t npatterns;
static unsigned long long files_scanned, bytes_scanned, hits;

static int add_secret(const char *label, const uint8_t *bytes, size_t len) {
  if (nsecrets == MAX_SECRETS || len == 0 || len > MAX_SECRET ||
      strlen(label) >= sizeof secrets[0].label) {
    fprintf(stderr,
            "secretscan: secret '%s' refused (empty, too long or "
            "too many)\n",
            label);
    return SYNOD_EINVAL;
  }
  secret_t *s = &secrets[nsecrets];
  if (!(s->bytes = malloc(len)))
    return SYNOD_ENOMEM;
  memcpy(s->bytes, bytes, len);
  s->len = len;
  snprintf(s->label, sizeof s->label, "%s", label);
  nsecrets++;
  return 0;
}

static int add_hex(const char *label, const char *hex) {
  uint8_t buf[MAX_SECRET];
  size_t n;
  if (synod_hex_decode(buf, sizeof buf, &n, hex, strlen(hex)) != 0) {
    fprintf(stderr, "secretscan: --hex %s: not hex\n", label);
    return SYNOD_EPARSE;
  }
  int rc = add_secret(label, buf, n);
  OPENSSL_cleanse(buf, sizeof buf);
  return rc;
}

static int add_relay_key(const char *label, const char *path) {
  uint8_t sk[SYNOD_KEYFILE_KEY_BYTES];
  int rc = synod_keyfile_read_secret(sk, SYNOD_KEY_ED25519, path);
  if (rc != 0) {
    fprintf(stderr, "secretscan: %s: %s\n", path, synod_strerror(rc));
    return rc;
  }
  rc = add_secret(label, sk, sizeof sk);
  OPENSSL_cleanse(sk, sizeof sk);
  return rc;
}

static int add_profile(const char *label, const char *dir,
                       const char *passfile) {
  char pass[MAX_PASSFILE];
  FILE *f = fopen(passfile, "r");
  if (!f) {
    fprintf(stderr, "secretscan: %s: %s\n", passfile, strerror(errno));
    return SYNOD_EIO;
  }
  size_t n = fread(pass, 1, sizeof pass, f);
  fclose(f);
  if (n == sizeof pass) {
    fprintf(stderr, "secretscan: %s: too long\n", passfile);
    return SYNOD_ETOOBIG;
  }
  if (n > 0 && pass[n - 1] == '\n')
    n--;
  synod_client_t *c;
  int rc = synod_client_open(&c, dir, pass, n);
  OPENSSL_cleanse(pass, sizeof pass);
  if (rc != 0) {
    fprintf(stderr, "secretscan: profile %s: %s\n", dir, synod_strerror(rc));
    return rc;
  }
  char name[sizeof secrets[0].label];
  struct {
    const char *suffix;
    const uint8_t *key;
    size_t len;
  } keys[] = {
      {"identity", c->identity_sk, sizeof c->identity_sk},
      {"device", c->device_sk, sizeof c->device_sk},
      {"mac", c->mac_key, sizeof c->mac_key},
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0] && rc == 0; i++) {
    snprintf(name, sizeof name, "%s.%s", label, keys[i].suffix);
    rc = add_secret(name, keys[i].key, keys[i].len);
  }
  synod_client_close(c);
  return rc;
}

static int add_pattern(const secret_t *s, const char *form, const void *bytes,
                       size_t len) {
  if (len < MIN_PATTERN)
    return 0;
  for (size_t i = 0; i < npatterns; i++)
    if (patterns[i].len == len && memcmp(patterns[i].bytes, bytes, len) == 0)
      return 0; /* the same bytes in another form, e.g. base64url = base64 */
  pattern_t *p = &patterns[npatterns];
  if (!(p->bytes = malloc(len)))
    return SYNOD_ENOMEM;
  memcpy(p->bytes, bytes, len);
  p->len = len;
  p->secret = s;
  snprintf(p->form, sizeof p->form, "%s", form);
  npatterns++;
  return 0;
}

/*
 * The characters of base64(k zero bytes || secret) that depend on the
 * secret's bytes alone: character i covers bits [6i, 6i + 6), the secret
 * bits [8k, 8(k + n)). Inside any longer base64 text the secret shows as
 * exactly one of these three strings, whatever surrounds it.
 */
static int add_base64_forms(const secret_t *s) {
  static uint8_t in[MAX_SECRET + 2];
  static char out[SYNOD_BASE64_ENCODED_LEN(MAX_SECRET + 2) + 1];
  int rc = 0;
  for (size_t k = 0; k < 3 && rc == 0; k++) {
    memset(in, 0, k);
    memcpy(in + k, s->bytes, s->len);
    if ((rc = synod_base64_encode(out, sizeof out, in, k + s->len)) != 0)
      break;
    size_t first = (8 * k + 5) / 6, end = 8 * (k + s->len) / 6;
    char form[16];
    snprintf(form, sizeof form, "base64/%zu", k);
    if ((rc = add_pattern(s, form, out + first, end - first)) != 0)
      break;
    for (size_t i = first; i < end; i++)
      out[i] = (char)(out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i]);
    snprintf(form, sizeof form, "base64url/%zu", k);
    rc = add_pattern(s, form, out + first, end - first);
  }
  OPENSSL_cleanse(in, sizeof in);
  OPENSSL_cleanse(out, sizeof out);
  return rc;
}

static int make_patterns(void) {
  static char hex[SYNOD_HEX_ENCODED_LEN(MAX_SECRET) + 1];
  if (!(patterns = calloc(nsecrets * FORMS, sizeof *patterns)))
    return SYNOD_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < nsecrets && rc == 0; i++) {
    const secret_t *s = &secrets[i];
    if ((rc = add_pattern(s, "raw", s->bytes, s->len)) != 0 ||
        (rc = synod_hex_encode(hex, sizeof hex, s->bytes, s->len)) != 0 ||
        (rc = add_pattern(s, "hex", hex, 2 * s->len)) != 0)
      break;
    for (size_t j = 0; j < 2 * s->len; j++)
      if (hex[j] >= 'a' && hex[j] <= 'f')
        hex[j] = (char)(hex[j] - 'a' + 'A');
    if ((rc = add_pattern(s, "HEX", hex, 2 * s->len)) != 0)
      break;
    rc = add_base64_forms(s);
  }
  OPENSSL_cleanse(hex, sizeof hex);
  return rc;
}

static int scan_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    fprintf(stderr, "secretscan: %s: %s\n", path, strerror(errno));
    return SYNOD_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return SYNOD_EIO;
  }
  size_t size = (size_t)st.st_size, got = 0;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    close(fd);
    return SYNOD_ENOMEM;
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break; /* a file that shrank while we read: scan what we have */
    got += (size_t)r;
  }
  close(fd);
  for (size_t i = 0; i < npatterns; i++) {
    const pattern_t *p = &patterns[i];
    const uint8_t *at = memmem(buf, got, p->bytes, p->len);
    if (!at)
      continue;
    size_t count = 0;
    for (const uint8_t *q = at; q;
         q = memmem(q + 1, got - (size_t)(q + 1 - buf), p->bytes, p->len))
      count++;
    printf("FOUND %s as %s in %s at offset %zu (%zu times)\n", p->secret->label,
           p->form, path, (size_t)(at - buf), count);
    hits++;
  }
  files_scanned++;
  bytes_scanned += got;
  free(buf);
  return 0;
}

static int scan_path(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    fprintf(stderr, "secretscan: %s: %s\n", path, strerror(errno));
    return SYNOD_EIO;
  }
  if (S_ISREG(st.st_mode))
    return scan_file(path);
  if (!S_ISDIR(st.st_mode))
    return 0; /* links, sockets, fifos */
  DIR *d = opendir(path);
  if (!d) {
    fprintf(stderr, "secretscan: %s: %s\n", path, strerror(errno));
    return SYNOD_EIO;
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *sub = pfile_path(path, e->d_name);
    if (!sub) {
      rc = SYNOD_ENOMEM;
      break;
    }
    rc = scan_path(sub);
    free(sub);
  }
  closedir(d);
  return rc;
}

static void usage(void) {
  fprintf(stderr,
          "usage: secretscan [SECRET...] [--dump] [--] PATH...\n"
          "  --text LABEL STRING | --hex LABEL HEX | --relay-key LABEL FILE\n"
          "  | --profile LABEL DIR PASSFILE\n");
}

static void free_all(void) {
  for (size_t i = 0; i < nsecrets; i++) {
    OPENSSL_cleanse(secrets[i].bytes, secrets[i].len);
    free(secrets[i].bytes);
  }
  for (size_t i = 0; i < npatterns; i++) {
    OPENSSL_cleanse(patterns[i].bytes, patterns[i].len);
    free(patterns[i].bytes);
  }
  free(patterns);
}

int main(int argc, char **argv) {
  bool dump = false;
  int i = 1, rc = 0;
  for (; i < argc && rc == 0; i++) {
    const char *a = argv[i];
    int left = argc - i - 1;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--dump") == 0) {
      dump = true;
    } else if (strcmp(a, "--text") == 0 && left >= 2) {
      rc = add_secret(argv[i + 1], (const uint8_t *)argv[i + 2],
                      strlen(argv[i + 2]));
      i += 2;
    } else if (strcmp(a, "--hex") == 0 && left >= 2) {
      rc = add_hex(argv[i + 1], argv[i + 2]);
      i += 2;
    } else if (strcmp(a, "--relay-key") == 0 && left >= 2) {
      rc = add_relay_key(argv[i + 1], argv[i + 2]);
      i += 2;
    } else if (strcmp(a, "--profile") == 0 && left >= 3) {
      rc = add_profile(argv[i + 1], argv[i + 2], argv[i + 3]);
      i += 3;
    } else if (a[0] == '-') {
      usage();
      rc = SYNOD_EINVAL;
    } else {
      break;
    }
  }
  if (rc == 0 && nsecrets == 0) {
    usage();
    rc = SYNOD_EINVAL;
  }
  if (rc == 0 && dump) {
    static char hex[SYNOD_HEX_ENCODED_LEN(MAX_SECRET) + 1];
    for (size_t s = 0; s < nsecrets && rc == 0; s++)
      if ((rc = synod_hex_encode(hex, sizeof hex, secrets[s].bytes,
                                 secrets[s].len)) == 0)
        printf("%s %s\n", secrets[s].label, hex);
    OPENSSL_cleanse(hex, sizeof hex);
    free_all();
    return rc == 0 ? 0 : 2;
  }
  if (rc == 0 && i >= argc) {
    usage();
    rc = SYNOD_EINVAL;
  }
  if (rc == 0)
    rc = make_patterns();
  for (; i < argc && rc == 0; i++)
    rc = scan_path(argv[i]);
  if (rc == 0)
    printf("secretscan: %zu secrets in %zu forms, %llu files, %llu bytes: "
           "%llu found\n",
           nsecrets, npatterns, files_scanned, bytes_scanned, hits);
  free_all();
  if (rc != 0)
    return 2;
  return hits ? 1 : 0;
}
