/*
 * Suite client.profile: the profile directory (client/profile.c,
 * client/pfile.c). Keys sealed under the passphrase, text files bound by
 * their MAC, permissions enforced, every write atomic, strict reading.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "synod/client.h"

#define PASS  "correct horse battery staple"
#define KEY_A "synod-ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "synod-ed25519 ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

/* A cheap scrypt: these tests are about files, not about the KDF. */
static const synod_keyfile_kdf_t kdf = {.log2_n = 10, .r = 8, .p = 1};

static char root[256];

static int contains(const uint8_t *h, size_t n, const void *needle, size_t m) {
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(h + i, needle, m) == 0)
      return 1;
  return 0;
}

static char *mkroot(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/synod-profile.XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
  return root;
}

static void rmroot(void) {
  DIR *d = opendir(root);
  if (!d)
    return;
  char sub[512];
  snprintf(sub, sizeof sub, "%s/p", root);
  DIR *p = opendir(sub);
  struct dirent *e;
  while (p && (e = readdir(p))) {
    char f[1024];
    if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
      continue;
    snprintf(f, sizeof f, "%s/%s", sub, e->d_name);
    unlink(f);
  }
  if (p)
    closedir(p);
  rmdir(sub);
  closedir(d);
  rmdir(root);
}

/* Four buffers in turn, so that two paths can be used in one call. */
static char *ppath(const char *name) {
  static char bufs[4][600];
  static unsigned next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/p%s%s", root, name ? "/" : "",
           name ? name : "");
  return b;
}

static synod_client_t *make(void) {
  mkroot();
  synod_profile_params_t p = {.user_id = "alice@relay-a",
                              .device_name = "alice's laptop",
                              .pass = PASS,
                              .passlen = strlen(PASS),
                              .kdf = &kdf};
  synod_client_t *c = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_client_create(&c, ppath(NULL), &p), 0);
  return c;
}

static int reopen(const char *pass) {
  synod_client_t *c = NULL;
  int rc = synod_client_open(&c, ppath(NULL), pass, strlen(pass));
  CU_ASSERT((rc == 0) == (c != NULL));
  synod_client_close(c);
  return rc;
}

static void flip_byte(const char *name, long off) {
  int fd = open(ppath(name), O_RDWR);
  CU_ASSERT_FATAL(fd >= 0);
  uint8_t b;
  if (off < 0)
    off += lseek(fd, 0, SEEK_END);
  CU_ASSERT_EQUAL_FATAL(pread(fd, &b, 1, off), 1);
  b ^= 0x01;
  CU_ASSERT_EQUAL_FATAL(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static void test_roundtrip(void) {
  synod_client_t *c = make();
  uint8_t id[32], dev[32];
  synod_client_identity_key(c, id);
  synod_client_device_key(c, dev);
  CU_ASSERT_EQUAL(
      synod_client_trust_add(c, "relay-a", "127.0.0.1:7001", KEY_A, "Org A"),
      0);
  CU_ASSERT_EQUAL(synod_client_trust_add(c, "relay-b", "[::1]:7002", KEY_B,
                                         "Org B and Sons"),
                  0);
  CU_ASSERT_EQUAL(synod_client_set_quorum(c, 2), 0);
  synod_client_close(c);

  c = NULL;
  CU_ASSERT_EQUAL_FATAL(synod_client_open(&c, ppath(NULL), PASS, strlen(PASS)),
                        0);
  CU_ASSERT_STRING_EQUAL(synod_client_user_id(c), "alice@relay-a");
  CU_ASSERT_STRING_EQUAL(synod_client_device_name(c), "alice's laptop");
  CU_ASSERT(synod_client_created(c) > 1700000000u);
  uint8_t id2[32], dev2[32];
  synod_client_identity_key(c, id2);
  synod_client_device_key(c, dev2);
  CU_ASSERT_EQUAL(memcmp(id, id2, 32), 0);
  CU_ASSERT_EQUAL(memcmp(dev, dev2, 32), 0);
  size_t n;
  unsigned k;
  const synod_client_relay_t *t = synod_client_trust(c, &n, &k);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_EQUAL(k, 2);
  CU_ASSERT_STRING_EQUAL(t[1].host, "::1");
  CU_ASSERT_EQUAL(t[1].port, 7002);
  CU_ASSERT_STRING_EQUAL(t[1].operator_name, "Org B and Sons");
  CU_ASSERT_EQUAL(t[0].key[1], 1);

  /* Bad trust entries change nothing. */
  CU_ASSERT_EQUAL(synod_client_set_quorum(c, 1), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(
      synod_client_trust_add(c, "relay-a", "127.0.0.1:1", KEY_B, "x"),
      SYNOD_EEXIST);
  CU_ASSERT_EQUAL(
      synod_client_trust_add(c, "relay-c", "127.0.0.1:1", KEY_A, "x"),
      SYNOD_EEXIST);
  CU_ASSERT_EQUAL(synod_client_trust_add(c, "relay-c", "127.0.0.1:1",
                                         "synod-ed25519 nope", "x"),
                  SYNOD_EPARSE);
  CU_ASSERT_EQUAL(synod_client_trust_add(c, "relay-c", "127.0.0.1", KEY_A, "x"),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(
      synod_client_trust_add(c, "Relay C", "127.0.0.1:1", KEY_A, "x"),
      SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_client_trust_add(c, "relay-c", "127.0.0.1:1", KEY_A,
                                         "evil\noperator"),
                  SYNOD_EINVAL);
  CU_ASSERT_EQUAL(synod_client_trust_remove(c, "relay-z"), SYNOD_ENOENT);
  CU_ASSERT_EQUAL(synod_client_trust_remove(c, "relay-a"), 0);
  synod_client_trust(c, &n, NULL);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(synod_client_pin_set_verified(c, "bob@relay-b"),
                  SYNOD_ENOENT);
  synod_client_close(c);
  CU_ASSERT_EQUAL(reopen(PASS), 0);

  /* One profile per directory. */
  synod_profile_params_t p = {.user_id = "alice@relay-a",
                              .pass = PASS,
                              .passlen = strlen(PASS),
                              .kdf = &kdf};
  c = NULL;
  CU_ASSERT_EQUAL(synod_client_create(&c, ppath(NULL), &p), SYNOD_EEXIST);
  CU_ASSERT_PTR_NULL(c);
  rmroot();
}

/* Nothing secret in the clear: the identity seed appears in no file. */
static void test_no_plaintext_secret(void) {
  synod_client_t *c = make();
  const char *files[] = {"keys", "profile", "trust", "pins", "self"};
  for (size_t i = 0; i < 5; i++) {
    FILE *f = fopen(ppath(files[i]), "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char hex[65];
    hex_encode(hex, c->identity_sk, 32);
    CU_ASSERT_FALSE(contains(buf, n, c->identity_sk, 32));
    CU_ASSERT_FALSE(contains(buf, n, c->device_sk, 32));
    CU_ASSERT_FALSE(contains(buf, n, hex, 64));
    struct stat st;
    CU_ASSERT_EQUAL(stat(ppath(files[i]), &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  }
  struct stat st;
  CU_ASSERT_EQUAL(stat(ppath(NULL), &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
  synod_client_close(c);
  rmroot();
}

static void test_wrong_passphrase(void) {
  synod_client_close(make());
  CU_ASSERT_EQUAL(reopen("correct horse battery stapler"), SYNOD_EDECRYPT);
  CU_ASSERT_EQUAL(reopen("x"), SYNOD_EDECRYPT);
  synod_client_t *c = NULL;
  CU_ASSERT_EQUAL(synod_client_open(&c, ppath(NULL), PASS, 0), SYNOD_EINVAL);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  rmroot();
}

static void test_tampered(void) {
  synod_client_t *c = make();
  CU_ASSERT_EQUAL(
      synod_client_trust_add(c, "relay-a", "127.0.0.1:7001", KEY_A, "Org A"),
      0);
  synod_client_close(c);
  /* The sealed keys: any byte, header or ciphertext. */
  flip_byte("keys", 20);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EDECRYPT);
  flip_byte("keys", 20);
  flip_byte("keys", -1);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EDECRYPT);
  flip_byte("keys", -1);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  /* The trust set: a port changed by one digit. */
  FILE *f = fopen(ppath("trust"), "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *port = strstr(text, ":7001");
  CU_ASSERT_PTR_NOT_NULL_FATAL(port);
  flip_byte("trust", port - text + 4);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EVERIFY);
  flip_byte("trust", port - text + 4);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  /* A valid file of another name in its place (the MAC binds the name). */
  CU_ASSERT_EQUAL(rename(ppath("trust"), ppath("trust.saved")), 0);
  f = fopen(ppath("pins"), "rb");
  n = fread(text, 1, sizeof text, f);
  fclose(f);
  int fd = open(ppath("trust"), O_WRONLY | O_CREAT | O_EXCL, 0600);
  CU_ASSERT_EQUAL((size_t)write(fd, text, n), n);
  close(fd);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EVERIFY);
  /* No MAC line at all. */
  fd = open(ppath("trust"), O_WRONLY | O_TRUNC);
  CU_ASSERT_EQUAL(write(fd, "synod-trust-v1\nquorum 2\n", 24), 24);
  close(fd);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EPARSE);
  /* Missing. */
  unlink(ppath("trust"));
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_ENOENT);
  CU_ASSERT_EQUAL(rename(ppath("trust.saved"), ppath("trust")), 0);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  rmroot();
}

/* Files with a valid MAC but content the parser must refuse: only the
 * library's own key can make them, hence internal.h. */
static void test_strict_reading(void) {
  synod_client_t *c = make();
  static const struct {
    const char *file, *text;
  } bad[] = {
      {"trust", "synod-trust-v1\nquorum 1\n"},
      {"trust", "synod-trust-v2\nquorum 2\n"},
      {"trust", "synod-trust-v1\n"},
      {"trust", "synod-trust-v1\nquorum 2\nquorum 3\n"},
      {"trust",
       "synod-trust-v1\nquorum 2\nrelay relay-a 127.0.0.1:1 " KEY_A "\n"},
      {"trust", "synod-trust-v1\nquorum 2\nrelay relay-a 127.0.0.1:99999 " KEY_A
                " Org\n"},
      {"trust", "synod-trust-v1\nquorum 02\n"},
      {"trust", "synod-trust-v1\nquorum 2\nfrob\n"},
      {"trust", "synod-trust-v1\nquorum 2"},
      {"pins", "synod-pins-v1\nprev 1 00\n"},
      {"pins", "synod-pins-v1\npin bob@relay-b 1 00 00 5 verified\n"},
      {"pins",
       "synod-pins-v1\npin Bob 1 "
       "0000000000000000000000000000000000000000000000000000000000000000 "
       "0000000000000000000000000000000000000000000000000000000000000000 5 "
       "verified\n"},
      {"pins",
       "synod-pins-v1\npin bob@relay-b 1 "
       "0000000000000000000000000000000000000000000000000000000000000000 "
       "0000000000000000000000000000000000000000000000000000000000000000 5 "
       "maybe\n"},
      {"self",
       "synod-self-v1\nlink 0 "
       "0000000000000000000000000000000000000000000000000000000000000000 "
       "0000000000000000000000000000000000000000000000000000000000000000 5\n"},
      /* Versions only go up (a gap is a reset's: it follows the home
       * relay's head, not our own last link). */
      {"self",
       "synod-self-v1\nlink 2 "
       "0000000000000000000000000000000000000000000000000000000000000000 "
       "0000000000000000000000000000000000000000000000000000000000000000 5\n"
       "link 2 "
       "0000000000000000000000000000000000000000000000000000000000000000 "
       "0000000000000000000000000000000000000000000000000000000000000000 5\n"},
      {"self", "synod-self-v1\npublish 0a00\n"},
      {"profile", "synod-profile-v1\nuser alice@relay-a\ncreated 5\n"},
      {"profile",
       "synod-profile-v1\nuser alice@relay-a\ndevice 0 x\ncreated 5\n"},
      {"profile", "synod-profile-v1\nuser alice@relay-a\nuser "
                  "bob@relay-a\ndevice 1 x\ncreated 5\n"},
  };
  /* A good pins file parses, so the table above fails for its line. */
  const char *good =
      "synod-pins-v1\npin bob@relay-b 1 "
      "0000000000000000000000000000000000000000000000000000000000000000 "
      "0000000000000000000000000000000000000000000000000000000000000000 "
      "5 verified\nprev 0 "
      "0101010101010101010101010101010101010101010101010101010101010101\n";
  CU_ASSERT_EQUAL(
      pfile_write(ppath(NULL), "pins", good, strlen(good), c->mac_key), 0);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char saved[700];
    snprintf(saved, sizeof saved, "%s.saved", ppath(bad[i].file));
    CU_ASSERT_EQUAL(link(ppath(bad[i].file), saved), 0);
    CU_ASSERT_EQUAL(pfile_write(ppath(NULL), bad[i].file, bad[i].text,
                                strlen(bad[i].text), c->mac_key),
                    0);
    int rc = reopen(PASS);
    if (rc != SYNOD_EPARSE)
      fprintf(stderr, "case %zu (%s): %s\n", i, bad[i].file,
              synod_err_name(rc));
    CU_ASSERT_EQUAL(rc, SYNOD_EPARSE);
    CU_ASSERT_EQUAL(rename(saved, ppath(bad[i].file)), 0);
  }
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  synod_client_close(c);
  rmroot();
}

static void test_permissions(void) {
  synod_client_close(make());
  CU_ASSERT_EQUAL(chmod(ppath(NULL), 0750), 0);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EPERM);
  CU_ASSERT_EQUAL(chmod(ppath(NULL), 0701), 0);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EPERM);
  CU_ASSERT_EQUAL(chmod(ppath(NULL), 0700), 0);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  const char *files[] = {"keys", "trust", "pins", "profile", "self"};
  for (size_t i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(chmod(ppath(files[i]), 0640), 0);
    CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EPERM);
    CU_ASSERT_EQUAL(chmod(ppath(files[i]), 0604), 0);
    CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EPERM);
    CU_ASSERT_EQUAL(chmod(ppath(files[i]), 0600), 0);
  }
  /* A symbolic link in place of a text file is not followed. */
  CU_ASSERT_EQUAL(rename(ppath("pins"), ppath("pins.real")), 0);
  CU_ASSERT_EQUAL(symlink(ppath("pins.real"), ppath("pins")), 0);
  CU_ASSERT_EQUAL(reopen(PASS), SYNOD_EPERM);
  CU_ASSERT_EQUAL(unlink(ppath("pins")), 0);
  CU_ASSERT_EQUAL(rename(ppath("pins.real"), ppath("pins")), 0);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  rmroot();

  /* Creating into a directory others can read is refused. */
  mkroot();
  CU_ASSERT_EQUAL(mkdir(ppath(NULL), 0755), 0);
  CU_ASSERT_EQUAL(chmod(ppath(NULL), 0755), 0);
  synod_profile_params_t p = {.user_id = "alice@relay-a",
                              .pass = PASS,
                              .passlen = strlen(PASS),
                              .kdf = &kdf};
  synod_client_t *c = NULL;
  CU_ASSERT_EQUAL(synod_client_create(&c, ppath(NULL), &p), SYNOD_EPERM);
  CU_ASSERT_EQUAL(access(ppath("keys"), F_OK), -1);
  rmroot();
}

/* Every save replaces the file by rename: a reader holding the old file
 * (here a hard link to it) sees the old content whole, no temporary file
 * is left behind, and a temporary left by a crash is ignored. */
static void test_atomic_write(void) {
  synod_client_t *c = make();
  CU_ASSERT_EQUAL(link(ppath("trust"), ppath("trust.old")), 0);
  struct stat before, after, old;
  CU_ASSERT_EQUAL(stat(ppath("trust"), &before), 0);
  CU_ASSERT_EQUAL(
      synod_client_trust_add(c, "relay-a", "127.0.0.1:7001", KEY_A, "Org A"),
      0);
  CU_ASSERT_EQUAL(stat(ppath("trust"), &after), 0);
  CU_ASSERT_EQUAL(stat(ppath("trust.old"), &old), 0);
  CU_ASSERT_NOT_EQUAL(before.st_ino, after.st_ino);
  CU_ASSERT_EQUAL(before.st_ino, old.st_ino);
  CU_ASSERT_EQUAL(old.st_size, before.st_size);
  CU_ASSERT_EQUAL(after.st_mode & 0777, 0600);
  unlink(ppath("trust.old"));
  DIR *d = opendir(ppath(NULL));
  struct dirent *e;
  int temps = 0;
  while ((e = readdir(d)))
    temps += e->d_name[0] == '.' && e->d_name[1] && e->d_name[1] != '.';
  closedir(d);
  CU_ASSERT_EQUAL(temps, 0);
  /* A crash between write and rename leaves a temporary: harmless. */
  int fd = open(ppath(".trust.AbCdEf"), O_WRONLY | O_CREAT | O_EXCL, 0600);
  CU_ASSERT_EQUAL(write(fd, "synod-trust-v1\nhalf", 19), 19);
  close(fd);
  synod_client_close(c);
  CU_ASSERT_EQUAL(reopen(PASS), 0);
  unlink(ppath(".trust.AbCdEf"));
  rmroot();
}

static CU_TestInfo profile_tests[] = {
    {"atomic_write", test_atomic_write},
    {"no_plaintext_secret", test_no_plaintext_secret},
    {"permissions", test_permissions},
    {"roundtrip", test_roundtrip},
    {"strict_reading", test_strict_reading},
    {"tampered", test_tampered},
    {"wrong_passphrase", test_wrong_passphrase},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"profile", NULL, NULL, NULL, NULL, profile_tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv) {
  return test_main(argc, argv, suites);
}
