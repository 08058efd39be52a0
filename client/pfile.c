/*
 * The profile's text files: written atomically with a MAC line, read back
 * strictly. See include/synod/client.h for why the MAC: the trust set and
 * the pins are not secret, but they decide which keys are believed.
 *
 * A file is its text, then one line "mac <64 hex>\n", the MAC being
 * HMAC-SHA256(mac key, "synod/v1/profile-file" || 0x00 || name || 0x00 ||
 * text): the name is bound so that one valid file cannot be renamed into
 * another's place. HMAC-SHA256 is HKDF-Extract with the key as salt
 * (RFC 5869 section 2.2: PRK = HMAC-Hash(salt, IKM)).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "synod/crypto.h"

#define MAC_LABEL "synod/v1/profile-file"
#define MAC_LINE  "mac "

char *pfile_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

void hex_encode(char *out, const uint8_t *in, size_t len) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = d[in[i] >> 4];
    out[2 * i + 1] = d[in[i] & 15];
  }
  out[2 * len] = '\0';
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  return -1;
}

int hex_decode(uint8_t *out, size_t len, const char *s) {
  if (strlen(s) != 2 * len)
    return SYNOD_EPARSE;
  for (size_t i = 0; i < len; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return SYNOD_EPARSE;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

void sbuf_printf(sbuf_t *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + (size_t)n)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

static int from_errno(int e) {
  switch (e) {
  case ENOENT:
    return SYNOD_ENOENT;
  case EEXIST:
    return SYNOD_EEXIST;
  case EACCES:
  case EPERM:
  case EROFS:
    return SYNOD_EDENIED;
  case ENOMEM:
    return SYNOD_ENOMEM;
  default:
    return SYNOD_EIO;
  }
}

static int mac(uint8_t out[static SYNOD_SHA256_BYTES], const char *name,
               const char *text, size_t len,
               const uint8_t key[static PFILE_MAC_KEY_BYTES]) {
  size_t ll = sizeof MAC_LABEL, nl = strlen(name) + 1;
  uint8_t *m = malloc(ll + nl + len + 1);
  if (!m)
    return SYNOD_ENOMEM;
  memcpy(m, MAC_LABEL, ll);
  memcpy(m + ll, name, nl);
  memcpy(m + ll + nl, text, len);
  int rc = synod_hkdf_sha256_extract(out, key, PFILE_MAC_KEY_BYTES, m,
                                     ll + nl + len);
  free(m);
  return rc;
}

static int fsync_path(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return from_errno(errno);
  /* Some file systems refuse fsync on directories (EINVAL); the file's own
   * data is synced already. */
  int rc = (fsync(fd) != 0 && errno != EINVAL) ? SYNOD_EIO : 0;
  close(fd);
  return rc;
}

int pfile_write(const char *dir, const char *name, const char *text, size_t len,
                const uint8_t key[static PFILE_MAC_KEY_BYTES]) {
  uint8_t m[SYNOD_SHA256_BYTES];
  int rc = mac(m, name, text, len, key);
  if (rc != 0)
    return rc;
  char line[sizeof MAC_LINE + 2 * SYNOD_SHA256_BYTES + 1];
  memcpy(line, MAC_LINE, sizeof MAC_LINE - 1);
  hex_encode(line + sizeof MAC_LINE - 1, m, sizeof m);
  strcat(line, "\n");
  char *path = pfile_path(dir, name);
  size_t tl = strlen(dir) + strlen(name) + 16;
  char *tmp = malloc(tl);
  if (!path || !tmp) {
    free(path);
    free(tmp);
    return SYNOD_ENOMEM;
  }
  snprintf(tmp, tl, "%s/.%s.XXXXXX", dir, name);
  int fd = mkstemp(tmp); /* 0600, O_EXCL */
  if (fd < 0) {
    rc = from_errno(errno);
    goto out;
  }
  const char *parts[2] = {text, line};
  const size_t lens[2] = {len, strlen(line)};
  for (int i = 0; i < 2 && rc == 0; i++) {
    const char *p = parts[i];
    size_t left = lens[i];
    while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        rc = SYNOD_EIO;
        break;
      }
      p += w;
      left -= (size_t)w;
    }
  }
  if (rc == 0 && fsync(fd) != 0)
    rc = SYNOD_EIO;
  if (close(fd) != 0 && rc == 0)
    rc = SYNOD_EIO;
  /* rename(2) replaces path atomically for every other process. */
  if (rc == 0 && rename(tmp, path) != 0)
    rc = from_errno(errno);
  if (rc != 0)
    unlink(tmp);
  else
    rc = fsync_path(dir);
out:
  free(path);
  free(tmp);
  return rc;
}

int pfile_check_dir(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return from_errno(errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    return SYNOD_EPERM;
  return 0;
}

int pfile_read(const char *dir, const char *name, char **text, size_t *len,
               const uint8_t key[static PFILE_MAC_KEY_BYTES]) {
  *text = NULL;
  *len = 0;
  char *path = pfile_path(dir, name);
  if (!path)
    return SYNOD_ENOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  free(path);
  if (fd < 0)
    return errno == ELOOP ? SYNOD_EPERM : from_errno(errno);
  struct stat st;
  int rc = 0;
  char *buf = NULL;
  if (fstat(fd, &st) != 0)
    rc = SYNOD_EIO;
  else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
           (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    rc = SYNOD_EPERM;
  else if (st.st_size > (off_t)PFILE_MAX)
    rc = SYNOD_ETOOBIG;
  else if (!(buf = malloc((size_t)st.st_size + 1)))
    rc = SYNOD_ENOMEM;
  size_t got = 0;
  while (rc == 0 && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      rc = SYNOD_EIO;
    else
      got += (size_t)r;
  }
  close(fd);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  buf[got] = '\0';
  size_t n;
  rc = pfile_check(name, buf, got, &n, key);
  if (rc != 0) {
    free(buf);
    return rc;
  }
  *text = buf;
  *len = n;
  return 0;
}

int pfile_check(const char *name, char *buf, size_t got, size_t *len,
                const uint8_t key[static PFILE_MAC_KEY_BYTES]) {
  *len = 0;
  /* The last line is the MAC; the text before it ends with '\n' or is empty. */
  size_t want = sizeof MAC_LINE - 1 + 2 * SYNOD_SHA256_BYTES + 1;
  uint8_t stored[SYNOD_SHA256_BYTES], m[SYNOD_SHA256_BYTES];
  if (got < want || memchr(buf, '\0', got) ||
      memcmp(buf + got - want, MAC_LINE, sizeof MAC_LINE - 1) != 0 ||
      buf[got - 1] != '\n' || (got > want && buf[got - want - 1] != '\n'))
    return SYNOD_EPARSE;
  buf[got - 1] = '\0';
  int rc =
      hex_decode(stored, sizeof stored, buf + got - want + sizeof MAC_LINE - 1);
  if (rc == 0)
    rc = mac(m, name, buf, got - want, key);
  if (rc == 0 && !synod_memeq(m, stored, sizeof m))
    rc = SYNOD_EVERIFY;
  if (rc != 0)
    return rc;
  buf[got - want] = '\0';
  *len = got - want;
  return 0;
}
