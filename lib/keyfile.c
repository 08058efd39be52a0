/* Plain and passphrase-sealed key files. See synod/keyfile.h. */
#include "synod/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synod/encoding.h"

#define B64_KEY_LEN SYNOD_BASE64_ENCODED_LEN(SYNOD_KEYFILE_KEY_BYTES) /* 44 */

static const char sealed_magic[8] = {'S', 'Y', 'N', 'O', 'D', 'K', 'E', 'Y'};
enum { SEALED_VERSION = 1, SEALED_KDF_SCRYPT = 1 };
/* Header offsets (synod/keyfile.h). */
enum {
  OFF_VERSION = 8,
  OFF_KDF = 9,
  OFF_LOG2N = 10,
  OFF_R = 11,
  OFF_P = 12,
  OFF_LEN = 13,
  OFF_SALT = 17,
  OFF_NONCE = 33,
  SALT_BYTES = 16,
};
_Static_assert(OFF_NONCE + SYNOD_AEAD_NONCE_BYTES ==
                   SYNOD_KEYFILE_SEALED_HEADER_BYTES,
               "header layout");

static const char *secret_magic(synod_key_type_t type) {
  switch (type) {
  case SYNOD_KEY_ED25519:
    return "synod-ed25519-secret-v1";
  case SYNOD_KEY_X25519:
    return "synod-x25519-secret-v1";
  }
  return NULL;
}

static const char *public_prefix(synod_key_type_t type) {
  switch (type) {
  case SYNOD_KEY_ED25519:
    return "synod-ed25519 ";
  case SYNOD_KEY_X25519:
    return "synod-x25519 ";
  }
  return NULL;
}

/* --- plain key files, in memory ------------------------------------------- */

/* prefix, then base64 of key, then suffix, then NUL. */
static int encode_line(char *out, size_t outlen, size_t *textlen,
                       const char *prefix, const uint8_t *key,
                       const char *suffix) {
  size_t plen = strlen(prefix), slen = strlen(suffix);
  size_t total = plen + B64_KEY_LEN + slen;
  if (!out || outlen <= total)
    return SYNOD_ETOOBIG;
  /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): NUL comes last */
  memcpy(out, prefix, plen);
  int rc = synod_base64_encode(out + plen, outlen - plen, key,
                               SYNOD_KEYFILE_KEY_BYTES);
  if (rc != 0)
    return rc;
  memcpy(out + plen + B64_KEY_LEN, suffix, slen + 1);
  if (textlen)
    *textlen = total;
  return 0;
}

/* Decodes in[0..inlen) = prefix, 44 base64 characters, optional '\n'. */
static int decode_line(uint8_t *key, const char *prefix, const char *in,
                       size_t inlen) {
  size_t plen = strlen(prefix), n = 0;
  if (inlen && in[inlen - 1] == '\n')
    inlen--;
  if (inlen != plen + B64_KEY_LEN || memcmp(in, prefix, plen) != 0)
    goto fail;
  if (synod_base64_decode(key, SYNOD_KEYFILE_KEY_BYTES, &n, in + plen,
                          B64_KEY_LEN) != 0 ||
      n != SYNOD_KEYFILE_KEY_BYTES)
    goto fail;
  return 0;
fail:
  synod_wipe(key, SYNOD_KEYFILE_KEY_BYTES);
  return SYNOD_EPARSE;
}

int synod_keyfile_encode_secret(
    char *out, size_t outlen, size_t *textlen, synod_key_type_t type,
    const uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES]) {
  const char *magic = secret_magic(type);
  char prefix[40];
  if (!magic)
    return SYNOD_EINVAL;
  snprintf(prefix, sizeof prefix, "%s\n", magic);
  return encode_line(out, outlen, textlen, prefix, sk, "\n");
}

int synod_keyfile_decode_secret(uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES],
                                synod_key_type_t type, const char *in,
                                size_t inlen) {
  const char *magic = secret_magic(type);
  char prefix[40];
  if (!magic || !in) {
    synod_wipe(sk, SYNOD_KEYFILE_KEY_BYTES);
    return SYNOD_EINVAL;
  }
  snprintf(prefix, sizeof prefix, "%s\n", magic);
  return decode_line(sk, prefix, in, inlen);
}

int synod_keyfile_format_public(
    char *out, size_t outlen, synod_key_type_t type,
    const uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES]) {
  const char *prefix = public_prefix(type);
  if (!prefix)
    return SYNOD_EINVAL;
  return encode_line(out, outlen, NULL, prefix, pk, "");
}

int synod_keyfile_parse_public(uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES],
                               synod_key_type_t type, const char *line,
                               size_t len) {
  const char *prefix = public_prefix(type);
  if (!prefix || !line)
    return SYNOD_EINVAL;
  return decode_line(pk, prefix, line, len);
}

/* --- file plumbing -------------------------------------------------------- */

static int from_errno(int e) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    return SYNOD_ENOENT;
  case EEXIST:
    return SYNOD_EEXIST;
  case EACCES:
  case EPERM:
  case EROFS:
    return SYNOD_EDENIED;
  case ENAMETOOLONG:
    return SYNOD_EINVAL;
  default:
    return SYNOD_EIO;
  }
}

static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return SYNOD_EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* fsync(2) of the directory holding path, so that a new or renamed entry
 * survives a crash, not only the file's data. */
static int fsync_dir(const char *path) {
  char dir[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof dir)
    return SYNOD_EINVAL;
  memcpy(dir, path, len + 1);
  char *slash = strrchr(dir, '/');
  if (!slash)
    memcpy(dir, ".", 2);
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return from_errno(errno);
  /* Some file systems refuse fsync on directories (EINVAL): nothing to do
   * there, the data itself has been synced. */
  int rc = (fsync(fd) != 0 && errno != EINVAL) ? SYNOD_EIO : 0;
  close(fd);
  return rc;
}

/* Writes data to fd, syncs and closes it. */
static int fill_and_close(int fd, const uint8_t *data, size_t len) {
  int rc = write_all(fd, data, len);
  if (rc == 0 && fsync(fd) != 0)
    rc = SYNOD_EIO;
  if (close(fd) != 0 && rc == 0)
    rc = SYNOD_EIO;
  return rc;
}

/* O_CREAT|O_EXCL: POSIX makes this fail with EEXIST also when path is a
 * symbolic link, dangling or not, so nothing is written through one. */
static int write_new(const char *path, const uint8_t *data, size_t len,
                     mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return from_errno(errno);
  int rc = fill_and_close(fd, data, len);
  if (rc != 0) {
    unlink(path); /* ours: we just created it */
    return rc;
  }
  return fsync_dir(path);
}

/* Temporary file next to path, then rename(2), which "shall be atomic"
 * with respect to other processes resolving path. */
static int write_replace(const char *path, const uint8_t *data, size_t len,
                         mode_t mode) {
  char tmp[PATH_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  if (n < 0 || (size_t)n >= sizeof tmp)
    return SYNOD_EINVAL;
  int fd = mkstemp(tmp); /* created 0600 with O_EXCL */
  if (fd < 0)
    return from_errno(errno);
  int rc = 0;
  if (mode != (S_IRUSR | S_IWUSR) && fchmod(fd, mode) != 0)
    rc = from_errno(errno);
  if (rc == 0)
    rc = fill_and_close(fd, data, len);
  else
    close(fd);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = from_errno(errno);
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  return fsync_dir(path);
}

static int write_file(const char *path, const uint8_t *data, size_t len,
                      mode_t mode, unsigned flags) {
  if (!path || !*path || (flags & ~SYNOD_KEYFILE_OVERWRITE))
    return SYNOD_EINVAL;
  return (flags & SYNOD_KEYFILE_OVERWRITE)
             ? write_replace(path, data, len, mode)
             : write_new(path, data, len, mode);
}

/* Reads the regular file at path into buf[0..cap); *len receives its size.
 * With secret set, refuses a file that group or others may touch. The
 * checks are made on the open descriptor, so the file checked is the file
 * read. O_NONBLOCK keeps a FIFO at path from blocking the open. */
static int read_file(uint8_t *buf, size_t cap, size_t *len, const char *path,
                     int secret) {
  if (!path)
    return SYNOD_EINVAL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return from_errno(errno);
  struct stat st;
  int rc = 0;
  size_t have = 0;
  if (fstat(fd, &st) != 0)
    rc = SYNOD_EIO;
  else if (!S_ISREG(st.st_mode))
    rc = SYNOD_EINVAL;
  else if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
    rc = SYNOD_EPERM;
  else if (st.st_size < 0 || (uintmax_t)st.st_size > cap)
    rc = SYNOD_ETOOBIG;
  while (rc == 0) {
    uint8_t extra = 0;
    /* Once cap is reached, one more byte tells a file that grew. */
    uint8_t *dst = have < cap ? buf + have : &extra;
    ssize_t n = read(fd, dst, have < cap ? cap - have : 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      rc = SYNOD_EIO;
    else if (n == 0)
      break;
    else if (have == cap)
      rc = SYNOD_ETOOBIG;
    else
      have += (size_t)n;
  }
  close(fd);
  if (rc != 0) {
    synod_wipe(buf, have);
    return rc;
  }
  *len = have;
  return 0;
}

/* --- plain key files, on disk --------------------------------------------- */

int synod_keyfile_write_secret(const char *path, synod_key_type_t type,
                               const uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES],
                               unsigned flags) {
  char text[SYNOD_KEYFILE_TEXT_MAX];
  size_t len;
  int rc = synod_keyfile_encode_secret(text, sizeof text, &len, type, sk);
  if (rc == 0)
    rc = write_file(path, (const uint8_t *)text, len, S_IRUSR | S_IWUSR, flags);
  synod_wipe(text, sizeof text);
  return rc;
}

int synod_keyfile_read_secret(uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES],
                              synod_key_type_t type, const char *path) {
  uint8_t text[SYNOD_KEYFILE_TEXT_MAX];
  size_t len;
  int rc = read_file(text, sizeof text, &len, path, 1);
  if (rc == 0)
    rc = synod_keyfile_decode_secret(sk, type, (const char *)text, len);
  else
    synod_wipe(sk, SYNOD_KEYFILE_KEY_BYTES);
  synod_wipe(text, sizeof text);
  return rc;
}

int synod_keyfile_write_public(const char *path, synod_key_type_t type,
                               const uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES],
                               unsigned flags) {
  char text[SYNOD_KEYFILE_TEXT_MAX];
  int rc = synod_keyfile_format_public(text, sizeof text - 1, type, pk);
  if (rc != 0)
    return rc;
  size_t len = strlen(text);
  text[len++] = '\n';
  return write_file(path, (const uint8_t *)text, len,
                    S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH, flags);
}

int synod_keyfile_read_public(uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES],
                              synod_key_type_t type, const char *path) {
  uint8_t text[SYNOD_KEYFILE_TEXT_MAX];
  size_t len = 0;
  int rc = read_file(text, sizeof text, &len, path, 0);
  if (rc != 0)
    return rc;
  return synod_keyfile_parse_public(pk, type, (const char *)text, len);
}

/* --- sealed files --------------------------------------------------------- */

static int kdf_key(uint8_t key[static SYNOD_CHACHA20POLY1305_KEY_BYTES],
                   const char *pass, size_t passlen, const uint8_t *header) {
  return synod_scrypt(key, SYNOD_CHACHA20POLY1305_KEY_BYTES, pass, passlen,
                      header + OFF_SALT, SALT_BYTES,
                      UINT64_C(1) << header[OFF_LOG2N], header[OFF_R],
                      header[OFF_P]);
}

int synod_keyfile_seal(uint8_t *out, size_t outlen, size_t *sealedlen,
                       const uint8_t *payload, size_t payloadlen,
                       const char *pass, size_t passlen,
                       const synod_keyfile_kdf_t *kdf) {
  static const synod_keyfile_kdf_t defaults = {SYNOD_KEYFILE_LOG2N_DEFAULT,
                                               SYNOD_KEYFILE_R_DEFAULT,
                                               SYNOD_KEYFILE_P_DEFAULT};
  if (!kdf)
    kdf = &defaults;
  if (!out || !payload || payloadlen == 0 || !pass || passlen == 0)
    return SYNOD_EINVAL;
  if (kdf->log2_n < 1 || kdf->log2_n > SYNOD_KEYFILE_LOG2N_MAX || kdf->r < 1 ||
      kdf->r > SYNOD_KEYFILE_R_MAX || kdf->p < 1 ||
      kdf->p > SYNOD_KEYFILE_P_MAX)
    return SYNOD_EINVAL;
  if (payloadlen > SYNOD_KEYFILE_PAYLOAD_MAX)
    return SYNOD_ETOOBIG;
  size_t need = SYNOD_KEYFILE_SEALED_LEN(payloadlen);
  if (outlen < need)
    return SYNOD_ETOOBIG;

  uint8_t key[SYNOD_CHACHA20POLY1305_KEY_BYTES];
  memcpy(out, sealed_magic, sizeof sealed_magic);
  out[OFF_VERSION] = SEALED_VERSION;
  out[OFF_KDF] = SEALED_KDF_SCRYPT;
  out[OFF_LOG2N] = kdf->log2_n;
  out[OFF_R] = kdf->r;
  out[OFF_P] = kdf->p;
  out[OFF_LEN] = (uint8_t)(payloadlen >> 24);
  out[OFF_LEN + 1] = (uint8_t)(payloadlen >> 16);
  out[OFF_LEN + 2] = (uint8_t)(payloadlen >> 8);
  out[OFF_LEN + 3] = (uint8_t)payloadlen;
  int rc = synod_random(out + OFF_SALT, SALT_BYTES);
  if (rc == 0)
    rc = synod_random(out + OFF_NONCE, SYNOD_AEAD_NONCE_BYTES);
  if (rc == 0)
    rc = kdf_key(key, pass, passlen, out);
  if (rc == 0)
    rc = synod_aead_encrypt(SYNOD_AEAD_CHACHA20POLY1305,
                            out + SYNOD_KEYFILE_SEALED_HEADER_BYTES, payload,
                            payloadlen, out, SYNOD_KEYFILE_SEALED_HEADER_BYTES,
                            out + OFF_NONCE, key);
  synod_wipe(key, sizeof key);
  if (rc != 0) {
    synod_wipe(out, need);
    return rc;
  }
  if (sealedlen)
    *sealedlen = need;
  return 0;
}

int synod_keyfile_open(uint8_t *payload, size_t payloadcap, size_t *payloadlen,
                       const uint8_t *in, size_t inlen, const char *pass,
                       size_t passlen) {
  if (!payload || !in || (!pass && passlen))
    return SYNOD_EINVAL;
  if (inlen < SYNOD_KEYFILE_SEALED_HEADER_BYTES)
    return SYNOD_ETRUNC;
  if (memcmp(in, sealed_magic, sizeof sealed_magic) != 0)
    return SYNOD_EPARSE;
  if (in[OFF_VERSION] != SEALED_VERSION)
    return SYNOD_EVERSION;
  if (in[OFF_KDF] != SEALED_KDF_SCRYPT || in[OFF_LOG2N] == 0 ||
      in[OFF_R] == 0 || in[OFF_P] == 0)
    return SYNOD_EPARSE;
  /* Bounded before anything is derived: the file chooses the cost. */
  if (in[OFF_LOG2N] > SYNOD_KEYFILE_LOG2N_MAX ||
      in[OFF_R] > SYNOD_KEYFILE_R_MAX || in[OFF_P] > SYNOD_KEYFILE_P_MAX)
    return SYNOD_ETOOBIG;
  uint32_t plen = (uint32_t)in[OFF_LEN] << 24 |
                  (uint32_t)in[OFF_LEN + 1] << 16 |
                  (uint32_t)in[OFF_LEN + 2] << 8 | in[OFF_LEN + 3];
  if (plen == 0)
    return SYNOD_EPARSE;
  if (plen > SYNOD_KEYFILE_PAYLOAD_MAX)
    return SYNOD_ETOOBIG;
  size_t need = SYNOD_KEYFILE_SEALED_LEN((size_t)plen);
  if (inlen < need)
    return SYNOD_ETRUNC;
  if (inlen > need)
    return SYNOD_EPARSE;
  if (payloadcap < plen)
    return SYNOD_ETOOBIG;

  uint8_t key[SYNOD_CHACHA20POLY1305_KEY_BYTES];
  int rc = kdf_key(key, pass, passlen, in);
  if (rc == 0)
    rc = synod_aead_decrypt(SYNOD_AEAD_CHACHA20POLY1305, payload,
                            in + SYNOD_KEYFILE_SEALED_HEADER_BYTES,
                            (size_t)plen + SYNOD_AEAD_TAG_BYTES, in,
                            SYNOD_KEYFILE_SEALED_HEADER_BYTES, in + OFF_NONCE,
                            key);
  synod_wipe(key, sizeof key);
  if (rc != 0) {
    synod_wipe(payload, plen);
    return rc;
  }
  if (payloadlen)
    *payloadlen = plen;
  return 0;
}

int synod_keyfile_write_sealed(const char *path, const uint8_t *payload,
                               size_t payloadlen, const char *pass,
                               size_t passlen, const synod_keyfile_kdf_t *kdf,
                               unsigned flags) {
  uint8_t buf[SYNOD_KEYFILE_SEALED_LEN(SYNOD_KEYFILE_PAYLOAD_MAX)];
  size_t len;
  int rc = synod_keyfile_seal(buf, sizeof buf, &len, payload, payloadlen, pass,
                              passlen, kdf);
  if (rc == 0)
    rc = write_file(path, buf, len, S_IRUSR | S_IWUSR, flags);
  synod_wipe(buf, sizeof buf);
  return rc;
}

int synod_keyfile_read_sealed(uint8_t *payload, size_t payloadcap,
                              size_t *payloadlen, const char *path,
                              const char *pass, size_t passlen) {
  uint8_t buf[SYNOD_KEYFILE_SEALED_LEN(SYNOD_KEYFILE_PAYLOAD_MAX)];
  size_t len;
  int rc = read_file(buf, sizeof buf, &len, path, 1);
  if (rc == 0)
    rc = synod_keyfile_open(payload, payloadcap, payloadlen, buf, len, pass,
                            passlen);
  synod_wipe(buf, sizeof buf);
  return rc;
}
