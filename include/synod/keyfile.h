/*
 * Key files.
 *
 * Plain secret key files, for relays (text, one key per file):
 *
 *   synod-ed25519-secret-v1\n          or  synod-x25519-secret-v1\n
 *   <base64 of the 32-byte secret>\n
 *
 * The secret is the RFC 8032 seed for Ed25519 and the RFC 7748 scalar for
 * X25519, in padded standard base64 (44 characters). The final newline may
 * be missing; nothing else varies (no CR, spaces or comments).
 *
 * Public key lines, as peers exchange them and configs hold them:
 *
 *   synod-ed25519 <base64 pk>          or  synod-x25519 <base64 pk>
 *
 * Sealed (passphrase-encrypted) files, for client keys, binary:
 *
 *   offset size
 *        0    8  magic "SYNODKEY"
 *        8    1  format version, 1
 *        9    1  KDF, 1 = scrypt (RFC 7914)
 *       10    1  log2 N  (1..20; default 15)
 *       11    1  r       (1..16; default 8)
 *       12    1  p       (1..4;  default 1)
 *       13    4  payload length L, big-endian (1..SYNOD_KEYFILE_PAYLOAD_MAX)
 *       17   16  salt, random
 *       33   12  nonce, random
 *       45  L+16 ChaCha20-Poly1305 (RFC 8439) of the payload, then the tag
 *
 * The AEAD key is scrypt(passphrase, salt, N, r, p), 32 bytes; the 45
 * header bytes are the associated data, so editing the parameters (to
 * weaken them or to make the opener do other work) fails the tag. The
 * parameter bounds are checked before any work is done, and synod_scrypt()
 * additionally refuses to use more than SYNOD_SCRYPT_MAX_MEM (so N = 2^20
 * with r = 16 is SYNOD_ETOOBIG although each is in range).
 *
 * Files: every secret or sealed file is created 0600, fsync'ed, and its
 * directory fsync'ed. Without SYNOD_KEYFILE_OVERWRITE a file is created
 * with O_CREAT|O_EXCL and an existing one (or a symlink) is SYNOD_EEXIST;
 * with it, the content is written to a temporary file in the same
 * directory which is then renamed over path, so a reader sees the old or
 * the new file, never a mix. Readers open path (following symlinks), then
 * fstat the open file: not a regular file is SYNOD_EINVAL, a secret or
 * sealed file with any group or other permission bit is SYNOD_EPERM, a
 * file larger than its format allows is SYNOD_ETOOBIG. Missing files are
 * SYNOD_ENOENT, EACCES/EPERM/EROFS from the system SYNOD_EDENIED, other
 * system errors SYNOD_EIO.
 *
 * All buffers are caller-owned and used only during the call. The library
 * wipes every copy of a secret it makes (synod_wipe); the caller wipes its
 * own sk and payload buffers when done.
 */
#ifndef SYNOD_KEYFILE_H
#define SYNOD_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "synod/crypto.h"
#include "synod/err.h"

#define SYNOD_KEYFILE_KEY_BYTES 32

typedef enum synod_key_type {
  SYNOD_KEY_ED25519 = 1,
  SYNOD_KEY_X25519 = 2,
} synod_key_type_t;

/* Flag for the write functions: atomically replace an existing file. */
#define SYNOD_KEYFILE_OVERWRITE 1u

/* Buffer size that holds any plain secret file's text or public key line,
 * with its NUL. */
#define SYNOD_KEYFILE_TEXT_MAX 96

/* --- plain key files, in memory ------------------------------------------- */

/* The secret file text for sk and a NUL into out[0..outlen); *textlen (if
 * not NULL) receives its length without the NUL. SYNOD_EINVAL on an
 * unknown type, SYNOD_ETOOBIG when outlen is too small (TEXT_MAX is not). */
int synod_keyfile_encode_secret(
    char *out, size_t outlen, size_t *textlen, synod_key_type_t type,
    const uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES]);

/* Parses a secret file's text in[0..inlen), which must be of type, into sk.
 * SYNOD_EPARSE on anything but the exact format (including a file of the
 * other type); sk is zeroed on failure. */
SYNOD_WUR int
synod_keyfile_decode_secret(uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES],
                            synod_key_type_t type, const char *in,
                            size_t inlen);

/* The public key line for pk, without newline, and a NUL into out. */
int synod_keyfile_format_public(
    char *out, size_t outlen, synod_key_type_t type,
    const uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES]);

/* Parses a public key line of type (one trailing '\n' allowed) into pk.
 * SYNOD_EPARSE on anything else. */
SYNOD_WUR int
synod_keyfile_parse_public(uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES],
                           synod_key_type_t type, const char *line, size_t len);

/* --- plain key files, on disk --------------------------------------------- */

/* Writes sk as a secret file of type at path, mode 0600. flags is 0 or
 * SYNOD_KEYFILE_OVERWRITE. */
SYNOD_WUR int
synod_keyfile_write_secret(const char *path, synod_key_type_t type,
                           const uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES],
                           unsigned flags);

/* Reads the secret file of type at path into sk (zeroed on failure).
 * SYNOD_EPERM when group or others have any permission on it. */
SYNOD_WUR int
synod_keyfile_read_secret(uint8_t sk[static SYNOD_KEYFILE_KEY_BYTES],
                          synod_key_type_t type, const char *path);

/* Writes pk's public key line and a newline at path, mode 0644. */
SYNOD_WUR int
synod_keyfile_write_public(const char *path, synod_key_type_t type,
                           const uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES],
                           unsigned flags);

/* Reads a public key file (one line) of type into pk; any mode. */
SYNOD_WUR int
synod_keyfile_read_public(uint8_t pk[static SYNOD_KEYFILE_KEY_BYTES],
                          synod_key_type_t type, const char *path);

/* --- sealed files --------------------------------------------------------- */

#define SYNOD_KEYFILE_SEALED_HEADER_BYTES 45
/* Largest payload: room for a handful of keys and their metadata. */
#define SYNOD_KEYFILE_PAYLOAD_MAX 4096
/* Bytes of a sealed file holding n payload bytes. */
#define SYNOD_KEYFILE_SEALED_LEN(n)                                            \
  (SYNOD_KEYFILE_SEALED_HEADER_BYTES + (n) + SYNOD_AEAD_TAG_BYTES)

#define SYNOD_KEYFILE_LOG2N_DEFAULT 15
#define SYNOD_KEYFILE_R_DEFAULT     8
#define SYNOD_KEYFILE_P_DEFAULT     1
#define SYNOD_KEYFILE_LOG2N_MAX     20
#define SYNOD_KEYFILE_R_MAX         16
#define SYNOD_KEYFILE_P_MAX         4

/* scrypt cost: N = 2^log2_n. */
typedef struct synod_keyfile_kdf {
  uint8_t log2_n, r, p;
} synod_keyfile_kdf_t;

/* Seals payload[0..payloadlen) under the passphrase pass[0..passlen) into
 * out[0..outlen), with a fresh random salt and nonce; *sealedlen (if not
 * NULL) receives SYNOD_KEYFILE_SEALED_LEN(payloadlen). kdf NULL means the
 * defaults (2^15, 8, 1). SYNOD_EINVAL on an empty payload or passphrase or
 * kdf out of bounds, SYNOD_ETOOBIG when payloadlen > PAYLOAD_MAX or outlen
 * is too small; out is wiped on failure. */
SYNOD_WUR int synod_keyfile_seal(uint8_t *out, size_t outlen, size_t *sealedlen,
                                 const uint8_t *payload, size_t payloadlen,
                                 const char *pass, size_t passlen,
                                 const synod_keyfile_kdf_t *kdf);

/* Opens sealed bytes in[0..inlen) into payload[0..payloadcap); *payloadlen
 * receives the payload length. Errors, in the order checked:
 * SYNOD_ETRUNC for fewer bytes than a header; SYNOD_EPARSE for a wrong
 * magic, unknown KDF or zero parameter; SYNOD_EVERSION for another format
 * version; SYNOD_ETOOBIG for parameters or payload length above the bounds;
 * SYNOD_ETRUNC / SYNOD_EPARSE when inlen is below / above what the header
 * announces; SYNOD_ETOOBIG when payloadcap is smaller than the payload;
 * SYNOD_EDECRYPT for a wrong passphrase or any modified byte (payload is
 * then wiped). */
SYNOD_WUR int synod_keyfile_open(uint8_t *payload, size_t payloadcap,
                                 size_t *payloadlen, const uint8_t *in,
                                 size_t inlen, const char *pass,
                                 size_t passlen);

/* synod_keyfile_seal into a new file at path, mode 0600. */
SYNOD_WUR int
synod_keyfile_write_sealed(const char *path, const uint8_t *payload,
                           size_t payloadlen, const char *pass, size_t passlen,
                           const synod_keyfile_kdf_t *kdf, unsigned flags);

/* synod_keyfile_open of the file at path, after the permission checks of a
 * secret file (SYNOD_EPERM when group or others have any bit). */
SYNOD_WUR int synod_keyfile_read_sealed(uint8_t *payload, size_t payloadcap,
                                        size_t *payloadlen, const char *path,
                                        const char *pass, size_t passlen);

#endif
