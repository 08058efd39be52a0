/* Suite for lib/keyfile.c: plain and sealed key files, in memory and on
 * disk (in a mkdtemp directory removed by the suite cleanup). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"

static char dir[64];

/* Cheap parameters so that tests run scrypt hundreds of times. */
static const synod_keyfile_kdf_t fast = {10, 8, 1};

static const char pass[] = "correct horse battery staple";
#define PASSLEN (sizeof pass - 1)

static int setup(void) {
  strcpy(dir, "/tmp/synod-keyfile-XXXXXX");
  umask(022);
  return mkdtemp(dir) ? 0 : -1;
}

/* Removes every file in dir, then dir. */
static int teardown(void) {
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  struct dirent *e;
  char p[sizeof dir + sizeof e->d_name + 1];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0 && rmdir(p) != 0)
      fprintf(stderr, "cannot remove %s: %s\n", p, strerror(errno));
  }
  closedir(d);
  return rmdir(dir);
}

/* dir/name, in one of 8 rotating buffers so that a test can hold a few
 * paths at once. */
static const char *path_of(const char *name) {
  static char p[8][128];
  static unsigned next;
  char *s = p[next++ % 8];
  snprintf(s, sizeof p[0], "%s/%s", dir, name);
  return s;
}

static size_t count_entries(void) {
  DIR *d = opendir(dir);
  size_t n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static void write_raw(const char *path, const void *data, size_t len,
                      mode_t mode) {
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
  CU_ASSERT_EQUAL(fchmod(fd, mode), 0);
  close(fd);
}

static size_t read_raw(const char *path, void *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

static mode_t mode_of(const char *path) {
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
  return st.st_mode & 07777;
}

static void seq_key(uint8_t k[32], uint8_t start) {
  for (unsigned i = 0; i < 32; i++)
    k[i] = (uint8_t)(start + i);
}

/* --- plain files ---------------------------------------------------------- */

static void test_secret_text_format(void) {
  uint8_t sk[32], back[32];
  char text[SYNOD_KEYFILE_TEXT_MAX];
  size_t len;
  seq_key(sk, 0);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_encode_secret(text, sizeof text, &len,
                                                    SYNOD_KEY_ED25519, sk),
                        0);
  CU_ASSERT_STRING_EQUAL(text,
                         "synod-ed25519-secret-v1\n"
                         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
  CU_ASSERT_EQUAL(len, strlen(text));
  CU_ASSERT_EQUAL(
      synod_keyfile_decode_secret(back, SYNOD_KEY_ED25519, text, len), 0);
  CU_ASSERT_EQUAL(memcmp(sk, back, 32), 0);
  /* The final newline is optional. */
  CU_ASSERT_EQUAL(
      synod_keyfile_decode_secret(back, SYNOD_KEY_ED25519, text, len - 1), 0);
  CU_ASSERT_EQUAL(memcmp(sk, back, 32), 0);
  /* The other type's file is refused. */
  CU_ASSERT_EQUAL(
      synod_keyfile_decode_secret(back, SYNOD_KEY_X25519, text, len),
      SYNOD_EPARSE);
  CU_ASSERT_EQUAL(synod_keyfile_encode_secret(text, sizeof text, &len,
                                              SYNOD_KEY_X25519, sk),
                  0);
  CU_ASSERT_EQUAL(memcmp(text, "synod-x25519-secret-v1\n", 23), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_encode_secret(text, len, NULL, SYNOD_KEY_X25519, sk),
      SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(synod_keyfile_encode_secret(text, sizeof text, NULL,
                                              (synod_key_type_t)7, sk),
                  SYNOD_EINVAL);
}

static void test_secret_text_rejects(void) {
  static const char *const bad[] = {
      "",
      "synod-ed25519-secret-v1",
      "synod-ed25519-secret-v1\n",
      "synod-ed25519-secret-"
      "v2\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
      "synod-ed25519-secret-v1 "
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
      "synod-ed25519-secret-"
      "v1\r\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n",
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n",
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= \n",
      "synod-ed25519-secret-v1\n "
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nextra\n",
      "synod-ed25519-secret-v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg="
      "=\n", /* 31 */
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n", /* 33 */
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n", /* bits */
      "synod-ed25519-secret-"
      "v1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
      "SYNOD-ED25519-SECRET-"
      "V1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
  };
  uint8_t sk[32];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(sk, 0xaa, sizeof sk);
    CU_ASSERT_EQUAL(synod_keyfile_decode_secret(sk, SYNOD_KEY_ED25519, bad[i],
                                                strlen(bad[i])),
                    SYNOD_EPARSE);
    uint8_t zero[32] = {0};
    CU_ASSERT_EQUAL(memcmp(sk, zero, 32), 0); /* nothing left behind */
  }
}

static void test_public_line(void) {
  uint8_t pk[32], back[32];
  char line[SYNOD_KEYFILE_TEXT_MAX];
  seq_key(pk, 0);
  CU_ASSERT_EQUAL_FATAL(
      synod_keyfile_format_public(line, sizeof line, SYNOD_KEY_ED25519, pk), 0);
  CU_ASSERT_STRING_EQUAL(
      line, "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  CU_ASSERT_EQUAL(
      synod_keyfile_parse_public(back, SYNOD_KEY_ED25519, line, strlen(line)),
      0);
  CU_ASSERT_EQUAL(memcmp(pk, back, 32), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_parse_public(back, SYNOD_KEY_X25519, line, strlen(line)),
      SYNOD_EPARSE);
  CU_ASSERT_EQUAL(
      synod_keyfile_format_public(line, sizeof line, SYNOD_KEY_X25519, pk), 0);
  CU_ASSERT_EQUAL(memcmp(line, "synod-x25519 AAEC", 17), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_parse_public(back, SYNOD_KEY_X25519, line, strlen(line)),
      0);
  static const char *const bad[] = {
      "synod-ed25519  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
      "synod-ed25519\tAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
      "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= comment",
      "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n",
      "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8_",
      "synod-ed25519 ",
      "ssh-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CU_ASSERT_EQUAL(synod_keyfile_parse_public(back, SYNOD_KEY_ED25519, bad[i],
                                               strlen(bad[i])),
                    SYNOD_EPARSE);
}

static void test_secret_file_roundtrip(void) {
  uint8_t pk[32], sk[32], back[32], pk2[32];
  const char *p = path_of("relay.key");
  CU_ASSERT_EQUAL_FATAL(synod_ed25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_write_secret(p, SYNOD_KEY_ED25519, sk, 0),
                        0);
  CU_ASSERT_EQUAL(mode_of(p), 0600);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, p), 0);
  CU_ASSERT_EQUAL(memcmp(sk, back, 32), 0);
  CU_ASSERT_EQUAL(synod_ed25519_public(pk2, back), 0);
  CU_ASSERT_EQUAL(memcmp(pk, pk2, 32), 0);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_X25519, p),
                  SYNOD_EPARSE);

  const char *xp = path_of("relay.x25519");
  CU_ASSERT_EQUAL_FATAL(synod_x25519_keygen(pk, sk), 0);
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(xp, SYNOD_KEY_X25519, sk, 0), 0);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_X25519, xp), 0);
  CU_ASSERT_EQUAL(memcmp(sk, back, 32), 0);

  /* Public key files: 0644 is fine for them. */
  const char *pp = path_of("relay.pub");
  CU_ASSERT_EQUAL(synod_keyfile_write_public(pp, SYNOD_KEY_X25519, pk, 0), 0);
  CU_ASSERT_EQUAL(mode_of(pp), 0644);
  CU_ASSERT_EQUAL(synod_keyfile_read_public(back, SYNOD_KEY_X25519, pp), 0);
  CU_ASSERT_EQUAL(memcmp(pk, back, 32), 0);
  char text[128];
  size_t n = read_raw(pp, text, sizeof text - 1);
  text[n] = '\0';
  CU_ASSERT_EQUAL(n, 13 + 44 + 1);
  CU_ASSERT_EQUAL(text[n - 1], '\n');
  synod_wipe(sk, sizeof sk);
  synod_wipe(back, sizeof back);
}

/* Any group or other bit is refused, whether or not it grants reading. */
static void test_secret_file_modes(void) {
  uint8_t sk[32], back[32];
  char text[SYNOD_KEYFILE_TEXT_MAX];
  size_t len;
  seq_key(sk, 7);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_encode_secret(text, sizeof text, &len,
                                                    SYNOD_KEY_ED25519, sk),
                        0);
  const char *p = path_of("modes.key");
  static const mode_t refused[] = {0644, 0640, 0604, 0660, 0620,
                                   0602, 0610, 0601, 0666, 0700 | 0070};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    write_raw(p, text, len, refused[i]);
    memset(back, 0xaa, sizeof back);
    CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, p),
                    SYNOD_EPERM);
    CU_ASSERT_EQUAL(back[0], 0);
  }
  static const mode_t accepted[] = {0600, 0400, 0700};
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
    write_raw(p, text, len, accepted[i]);
    CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, p), 0);
    CU_ASSERT_EQUAL(memcmp(sk, back, 32), 0);
  }
  /* The mode checked is the target's: a symlink to a 0600 file is read,
   * a symlink to a 0644 file refused. */
  const char *link = path_of("modes.link");
  CU_ASSERT_EQUAL_FATAL(symlink("modes.key", link), 0);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, link), 0);
  CU_ASSERT_EQUAL(chmod(p, 0644), 0);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, link),
                  SYNOD_EPERM);
  /* Public files are not subject to the rule. */
  static const char pub[] =
      "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
  write_raw(p, pub, sizeof pub - 1, 0644);
  CU_ASSERT_EQUAL(synod_keyfile_read_public(back, SYNOD_KEY_ED25519, p), 0);
  unlink(link);
  unlink(p);
}

static void test_refuse_overwrite(void) {
  uint8_t a[32], b[32], back[32];
  seq_key(a, 1);
  seq_key(b, 100);
  const char *p = path_of("once.key");
  size_t before = count_entries();
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_write_secret(p, SYNOD_KEY_ED25519, a, 0),
                        0);
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(p, SYNOD_KEY_ED25519, b, 0),
                  SYNOD_EEXIST);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, p), 0);
  CU_ASSERT_EQUAL(memcmp(a, back, 32), 0); /* untouched */

  /* Nor through a symlink, even a dangling one. */
  const char *link = path_of("dangling.key");
  CU_ASSERT_EQUAL_FATAL(symlink("nowhere", link), 0);
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(link, SYNOD_KEY_ED25519, b, 0),
                  SYNOD_EEXIST);
  CU_ASSERT_EQUAL(access(path_of("nowhere"), F_OK), -1);
  unlink(link);

  /* Explicit overwrite replaces the file atomically, keeps 0600, and
   * leaves no temporary file behind. */
  CU_ASSERT_EQUAL(chmod(p, 0600), 0);
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(p, SYNOD_KEY_ED25519, b,
                                             SYNOD_KEYFILE_OVERWRITE),
                  0);
  CU_ASSERT_EQUAL(synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, p), 0);
  CU_ASSERT_EQUAL(memcmp(b, back, 32), 0);
  CU_ASSERT_EQUAL(mode_of(p), 0600);
  CU_ASSERT_EQUAL(count_entries(), before + 1);
  /* Overwrite also creates. */
  const char *q = path_of("fresh.key");
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(q, SYNOD_KEY_ED25519, a,
                                             SYNOD_KEYFILE_OVERWRITE),
                  0);
  CU_ASSERT_EQUAL(mode_of(q), 0600);
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(q, SYNOD_KEY_ED25519, a, 2),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_keyfile_write_secret(path_of("no/such/dir.key"),
                                             SYNOD_KEY_ED25519, a, 0),
                  SYNOD_ENOENT);
  unlink(p);
  unlink(q);
}

static void test_read_odd_files(void) {
  uint8_t back[32];
  CU_ASSERT_EQUAL(
      synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, path_of("missing")),
      SYNOD_ENOENT);
  /* A directory and a FIFO are not key files (and the FIFO must not block). */
  CU_ASSERT_EQUAL_FATAL(mkdir(path_of("subdir"), 0700), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, path_of("subdir")),
      SYNOD_EINVAL);
  CU_ASSERT_EQUAL(rmdir(path_of("subdir")), 0);
  CU_ASSERT_EQUAL_FATAL(mkfifo(path_of("fifo"), 0600), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, path_of("fifo")),
      SYNOD_EINVAL);
  unlink(path_of("fifo"));
  CU_ASSERT_EQUAL(
      synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, "/dev/null"),
      SYNOD_EINVAL);
  /* Bounded size: a large file is refused before it is parsed. */
  static char big[8192];
  memset(big, 'A', sizeof big);
  write_raw(path_of("big.key"), big, sizeof big, 0600);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, path_of("big.key")),
      SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_public(back, SYNOD_KEY_ED25519, path_of("big.key")),
      SYNOD_ETOOBIG);
  unlink(path_of("big.key"));
  /* A key file truncated on disk. */
  write_raw(path_of("short.key"), "synod-ed25519-secret-v1\nAAECAw", 30, 0600);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_secret(back, SYNOD_KEY_ED25519, path_of("short.key")),
      SYNOD_EPARSE);
  unlink(path_of("short.key"));
}

/* --- sealed files --------------------------------------------------------- */

static void test_sealed_roundtrip(void) {
  uint8_t payload[100], sealed[SYNOD_KEYFILE_SEALED_LEN(100)],
      sealed2[sizeof sealed];
  uint8_t back[SYNOD_KEYFILE_PAYLOAD_MAX];
  size_t slen = 0, blen = 0;
  for (unsigned i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)(i * 7);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed, sizeof sealed, &slen,
                                           payload, sizeof payload, pass,
                                           PASSLEN, &fast),
                        0);
  CU_ASSERT_EQUAL(slen, 45 + 100 + 16);
  CU_ASSERT_EQUAL(
      memcmp(sealed, "SYNODKEY\x01\x01\x0a\x08\x01\x00\x00\x00\x64", 17), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, sealed, slen, pass, PASSLEN),
      0);
  CU_ASSERT_EQUAL(blen, sizeof payload);
  CU_ASSERT_EQUAL(memcmp(back, payload, sizeof payload), 0);
  /* Exactly the payload length is room enough; one less is not. */
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, 100, &blen, sealed, slen, pass, PASSLEN), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, 99, &blen, sealed, slen, pass, PASSLEN),
      SYNOD_ETOOBIG);
  /* Fresh salt and nonce each time. */
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed2, sizeof sealed2, NULL,
                                           payload, sizeof payload, pass,
                                           PASSLEN, &fast),
                        0);
  CU_ASSERT_NOT_EQUAL(memcmp(sealed + 17, sealed2 + 17, 16), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(sealed + 33, sealed2 + 33, 12), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(sealed + 45, sealed2 + 45, 116), 0);
  /* The default cost is written into the header. */
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed, sizeof sealed, &slen,
                                           payload, 32, pass, PASSLEN, NULL),
                        0);
  CU_ASSERT_EQUAL(memcmp(sealed + 10, "\x0f\x08\x01", 3), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, sealed, slen, pass, PASSLEN),
      0);
  CU_ASSERT(blen == 32 && memcmp(back, payload, 32) == 0);
  synod_wipe(back, sizeof back);
}

static void test_sealed_wrong_passphrase(void) {
  uint8_t payload[32], sealed[SYNOD_KEYFILE_SEALED_LEN(32)], back[32];
  size_t slen, blen;
  seq_key(payload, 9);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed, sizeof sealed, &slen,
                                           payload, 32, pass, PASSLEN, &fast),
                        0);
  memset(back, 0xaa, sizeof back);
  CU_ASSERT_EQUAL(synod_keyfile_open(back, sizeof back, &blen, sealed, slen,
                                     "Correct horse battery staple", PASSLEN),
                  SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(back[0], 0); /* nothing of the attempt left behind */
  CU_ASSERT_EQUAL(synod_keyfile_open(back, sizeof back, &blen, sealed, slen,
                                     pass, PASSLEN - 1),
                  SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, sealed, slen, "", 0),
      SYNOD_EDECRYPT);
}

/* Every single-bit change of every byte is rejected, each with the error
 * its position calls for. */
static void test_sealed_every_byte_flipped(void) {
  uint8_t payload[32], sealed[SYNOD_KEYFILE_SEALED_LEN(24)], back[24];
  size_t slen, blen;
  seq_key(payload, 50);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed, sizeof sealed, &slen,
                                           payload, 24, pass, PASSLEN, &fast),
                        0);
  static const uint8_t masks[] = {0x01, 0x80};
  for (size_t i = 0; i < slen; i++) {
    for (size_t m = 0; m < sizeof masks; m++) {
      sealed[i] ^= masks[m];
      int rc = synod_keyfile_open(back, sizeof back, &blen, sealed, slen, pass,
                                  PASSLEN);
      sealed[i] ^= masks[m];
      int want;
      if (i < 8 || i == 9)
        want = SYNOD_EPARSE; /* magic, KDF id */
      else if (i == 8)
        want = SYNOD_EVERSION;
      else if (i == 12 && masks[m] == 0x01)
        want = SYNOD_EPARSE; /* p = 0 */
      else if (i >= 10 && i <= 12 && masks[m] == 0x80)
        want = SYNOD_ETOOBIG; /* cost above the bounds */
      else if (i == 13 || i == 14 || (i == 15 && masks[m] == 0x80))
        want = SYNOD_ETOOBIG; /* announced length above the maximum */
      else if (i == 15 || i == 16)
        want = SYNOD_ETRUNC; /* announced length above the file's */
      else
        want = SYNOD_EDECRYPT; /* cost, salt, nonce, ciphertext, tag */
      if (rc != want)
        fprintf(stderr, "byte %zu mask %02x: %s, want %s\n", i, masks[m],
                synod_err_name(rc), synod_err_name(want));
      CU_ASSERT_EQUAL(rc, want);
    }
  }
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, sealed, slen, pass, PASSLEN),
      0);
}

static void test_sealed_hostile_params(void) {
  uint8_t payload[16] = {1}, sealed[SYNOD_KEYFILE_SEALED_LEN(16)], back[16];
  size_t slen, blen;
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed, sizeof sealed, &slen,
                                           payload, 16, pass, PASSLEN, &fast),
                        0);
  static const struct {
    uint8_t log2n, r, p;
    int want;
  } cases[] = {
      {21, 8, 1, SYNOD_ETOOBIG}, /* N above 2^20 */
      {63, 8, 1, SYNOD_ETOOBIG},
      {255, 255, 255, SYNOD_ETOOBIG},
      {15, 17, 1, SYNOD_ETOOBIG}, /* r above 16 */
      {15, 8, 5, SYNOD_ETOOBIG},  /* p above 4 */
      {20, 16, 4, SYNOD_ETOOBIG}, /* each in range, 2 GiB together */
      {0, 8, 1, SYNOD_EPARSE},
      {15, 0, 1, SYNOD_EPARSE},
      {15, 8, 0, SYNOD_EPARSE},
      {11, 8, 1, SYNOD_EDECRYPT}, /* in bounds, but not what was sealed */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t copy[sizeof sealed];
    memcpy(copy, sealed, sizeof copy);
    copy[10] = cases[i].log2n;
    copy[11] = cases[i].r;
    copy[12] = cases[i].p;
    CU_ASSERT_EQUAL(
        synod_keyfile_open(back, sizeof back, &blen, copy, slen, pass, PASSLEN),
        cases[i].want);
  }
  /* A payload length beyond the maximum, and one matching no file. */
  uint8_t copy[sizeof sealed];
  memcpy(copy, sealed, sizeof copy);
  copy[13] = 0xff;
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, copy, slen, pass, PASSLEN),
      SYNOD_ETOOBIG);
  memcpy(copy, sealed, sizeof copy);
  copy[16] = 0;
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, copy, slen, pass, PASSLEN),
      SYNOD_EPARSE); /* zero-length payload */
  copy[16] = 15;
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, copy, slen, pass, PASSLEN),
      SYNOD_EPARSE); /* file longer than announced */
  /* The sealer refuses such parameters too. */
  static const synod_keyfile_kdf_t bad_kdf[] = {
      {21, 8, 1}, {15, 17, 1}, {15, 8, 5}, {0, 8, 1}, {15, 0, 1}, {15, 8, 0}};
  for (size_t i = 0; i < sizeof bad_kdf / sizeof bad_kdf[0]; i++)
    CU_ASSERT_EQUAL(synod_keyfile_seal(copy, sizeof copy, NULL, payload, 16,
                                       pass, PASSLEN, &bad_kdf[i]),
                    SYNOD_EINVAL);
}

static void test_sealed_truncated(void) {
  uint8_t payload[40], sealed[SYNOD_KEYFILE_SEALED_LEN(40) + 1], back[40];
  size_t slen, blen;
  seq_key(payload, 3);
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(sealed, sizeof sealed, &slen,
                                           payload, 32, pass, PASSLEN, &fast),
                        0);
  for (size_t len = 0; len < slen; len++)
    CU_ASSERT_EQUAL(synod_keyfile_open(back, sizeof back, &blen, sealed, len,
                                       pass, PASSLEN),
                    SYNOD_ETRUNC);
  sealed[slen] = 0;
  CU_ASSERT_EQUAL(synod_keyfile_open(back, sizeof back, &blen, sealed, slen + 1,
                                     pass, PASSLEN),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, sealed, slen, pass, PASSLEN),
      0);
}

static void test_seal_arguments(void) {
  static uint8_t big[SYNOD_KEYFILE_PAYLOAD_MAX + 1];
  uint8_t out[SYNOD_KEYFILE_SEALED_LEN(sizeof big)];
  CU_ASSERT_EQUAL(synod_keyfile_seal(out, sizeof out, NULL, big, sizeof big,
                                     pass, PASSLEN, &fast),
                  SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(synod_keyfile_seal(out, SYNOD_KEYFILE_SEALED_LEN(10) - 1,
                                     NULL, big, 10, pass, PASSLEN, &fast),
                  SYNOD_ETOOBIG);
  CU_ASSERT_EQUAL(
      synod_keyfile_seal(out, sizeof out, NULL, big, 10, pass, 0, &fast),
      SYNOD_EINVAL); /* empty passphrase */
  CU_ASSERT_EQUAL(
      synod_keyfile_seal(out, sizeof out, NULL, big, 0, pass, PASSLEN, &fast),
      SYNOD_EINVAL);
  /* The largest payload round-trips. */
  size_t slen, blen;
  for (size_t i = 0; i < SYNOD_KEYFILE_PAYLOAD_MAX; i++)
    big[i] = (uint8_t)(i ^ (i >> 8));
  CU_ASSERT_EQUAL_FATAL(synod_keyfile_seal(out, sizeof out, &slen, big,
                                           SYNOD_KEYFILE_PAYLOAD_MAX, pass,
                                           PASSLEN, &fast),
                        0);
  static uint8_t back[SYNOD_KEYFILE_PAYLOAD_MAX];
  CU_ASSERT_EQUAL(
      synod_keyfile_open(back, sizeof back, &blen, out, slen, pass, PASSLEN),
      0);
  CU_ASSERT(blen == SYNOD_KEYFILE_PAYLOAD_MAX && memcmp(back, big, blen) == 0);
}

static void test_sealed_file(void) {
  uint8_t payload[64], back[64];
  size_t blen;
  const char *p = path_of("client.sealed");
  seq_key(payload, 11);
  seq_key(payload + 32, 200);
  CU_ASSERT_EQUAL_FATAL(
      synod_keyfile_write_sealed(p, payload, 64, pass, PASSLEN, &fast, 0), 0);
  CU_ASSERT_EQUAL(mode_of(p), 0600);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_sealed(back, sizeof back, &blen, p, pass, PASSLEN), 0);
  CU_ASSERT(blen == 64 && memcmp(back, payload, 64) == 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_sealed(back, sizeof back, &blen, p, "nope", 4),
      SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(
      synod_keyfile_write_sealed(p, payload, 64, pass, PASSLEN, &fast, 0),
      SYNOD_EEXIST);
  CU_ASSERT_EQUAL(synod_keyfile_write_sealed(p, payload, 32, pass, PASSLEN,
                                             &fast, SYNOD_KEYFILE_OVERWRITE),
                  0);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_sealed(back, sizeof back, &blen, p, pass, PASSLEN), 0);
  CU_ASSERT_EQUAL(blen, 32);
  CU_ASSERT_EQUAL(chmod(p, 0640), 0);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_sealed(back, sizeof back, &blen, p, pass, PASSLEN),
      SYNOD_EPERM);
  /* Truncated on disk. */
  uint8_t raw[256];
  CU_ASSERT_EQUAL(chmod(p, 0600), 0);
  size_t n = read_raw(p, raw, sizeof raw);
  write_raw(p, raw, n - 1, 0600);
  CU_ASSERT_EQUAL(
      synod_keyfile_read_sealed(back, sizeof back, &blen, p, pass, PASSLEN),
      SYNOD_ETRUNC);
  unlink(p);
}

static CU_TestInfo keyfile_tests[] = {
    {"secret_text_format", test_secret_text_format},
    {"secret_text_rejects", test_secret_text_rejects},
    {"public_line", test_public_line},
    {"secret_file_roundtrip", test_secret_file_roundtrip},
    {"secret_file_modes", test_secret_file_modes},
    {"refuse_overwrite", test_refuse_overwrite},
    {"read_odd_files", test_read_odd_files},
    {"sealed_roundtrip", test_sealed_roundtrip},
    {"sealed_wrong_passphrase", test_sealed_wrong_passphrase},
    {"sealed_every_byte_flipped", test_sealed_every_byte_flipped},
    {"sealed_hostile_params", test_sealed_hostile_params},
    {"sealed_truncated", test_sealed_truncated},
    {"seal_arguments", test_seal_arguments},
    {"sealed_file", test_sealed_file},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"keyfile", setup, teardown, NULL, NULL, keyfile_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
