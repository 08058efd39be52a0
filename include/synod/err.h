/*
 * synod error codes.
 *
 * Every fallible function in libsynod returns int: 0 on success or a
 * negative SYNOD_E* code. The list below is the only place codes are
 * defined; it also generates synod_strerror() and synod_err_name().
 *
 * The absolute value of a code is what travels in an error frame on the
 * wire (proto/README.md, "Error codes"), so codes are never renumbered:
 * a retired code keeps its slot and its name gains a _RETIRED suffix.
 */
#ifndef SYNOD_ERR_H
#define SYNOD_ERR_H

#define SYNOD_WUR __attribute__((warn_unused_result))

/* X(name, value, message) */
#define SYNOD_ERRNO_MAP(X)                                                     \
  X(EINVAL, 1, "invalid argument")                                             \
  X(ENOMEM, 2, "out of memory")                                                \
  X(ECRYPTO, 3, "cryptographic library failure")                               \
  X(EVERIFY, 4, "signature verification failed")                               \
  X(EDECRYPT, 5, "decryption failed: wrong key or tampered data")              \
  X(EPARSE, 6, "malformed input")                                              \
  X(ETOOBIG, 7, "input exceeds the configured limit")                          \
  X(ETRUNC, 8, "input truncated")                                              \
  X(EIO, 9, "input/output error")                                              \
  X(EPERM, 10, "file permissions are too open")                                \
  X(EEXIST, 11, "already exists")                                              \
  X(ENOENT, 12, "not found")                                                   \
  X(EPROTO, 13, "protocol violation")                                          \
  X(EVERSION, 14, "unsupported protocol version")                              \
  X(EAUTH, 15, "authentication failed")                                        \
  X(EBADKEY, 16, "peer key is not the expected key")                           \
  X(ETLS, 17, "TLS failure")                                                   \
  X(ECLOSED, 18, "connection closed")                                          \
  X(ETIMEDOUT, 19, "timed out")                                                \
  X(EAGAIN, 20, "temporarily unavailable, try later")                          \
  X(EDB, 21, "database error")                                                 \
  X(ECONFIG, 22, "invalid configuration")                                      \
  X(EUNKNOWNUSER, 23, "unknown user")                                          \
  X(EEXPIRED, 24, "expired")                                                   \
  X(EQUOTA, 25, "storage quota exceeded")                                      \
  X(ERATE, 26, "rate limit exceeded")                                          \
  X(EDENIED, 27, "not permitted")                                              \
  X(ECHAIN, 28, "announcement does not extend the chain")                      \
  X(ESTALE, 29, "statement is too old")                                        \
  X(EROLLBACK, 30, "older than the pinned version")                            \
  X(EEQUIVOCATION, 31, "conflicting signed statements")                        \
  X(ENOQUORUM, 32, "no quorum of distinct operators agrees")                   \
  X(EUNKNOWNPEER, 33, "unknown relay")                                         \
  X(ELIMIT, 34, "too many connections")                                        \
  X(EINTERNAL, 35, "internal error")                                           \
  X(ECANCELED, 36, "operation canceled")

enum synod_errno {
  SYNOD_OK = 0,
#define SYNOD_ERR_ENUM_(name, value, msg) SYNOD_##name = -(value),
  SYNOD_ERRNO_MAP(SYNOD_ERR_ENUM_)
#undef SYNOD_ERR_ENUM_
};

/* A static, human-readable message for err; never NULL. */
const char *synod_strerror(int err);

/* The code's name ("EVERIFY"), or "EUNKNOWN"; never NULL. */
const char *synod_err_name(int err);

/* Map a wire code (positive, from an error frame) back to a SYNOD_E*
 * value; unknown codes map to SYNOD_EPROTO. */
int synod_err_from_wire(unsigned int code);

#endif
