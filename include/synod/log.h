/*
 * Levelled logfmt logger.
 *
 * One line per call:
 *
 *   ts=2024-05-01T12:34:56.789Z level=info msg="peer up" peer=alpha port=4433
 *
 * ts is RFC 3339 UTC with milliseconds. Every value (and msg, which is always
 * quoted) is logfmt-quoted where needed, so a string from a peer can neither
 * end the line nor forge a key: a value is put in double quotes when it is
 * empty or holds a space, '=', '"', '\\', a control character or a non-ASCII
 * byte; inside quotes '"' and '\\' are backslash-escaped, \n \r \t are
 * written as such, other C0/C1 controls, DEL and U+2028/U+2029 as \u00XX /
 * \u20XX, and bytes that are not valid UTF-8 as \ufffd. A value longer than
 * SYNOD_LOG_VALUE_MAX bytes is cut there and ends in "...".
 *
 * NOT THREAD-SAFE: the level, output and clock are process globals, set
 * without synchronisation. synod runs one event loop per process and logs
 * from it only; a program that logs from several threads must serialise
 * the calls (and any set_* call) itself.
 */
#ifndef SYNOD_LOG_H
#define SYNOD_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "synod/err.h"

typedef enum synod_log_level {
  SYNOD_LOG_ERROR = 0,
  SYNOD_LOG_WARN = 1,
  SYNOD_LOG_INFO = 2,
  SYNOD_LOG_DEBUG = 3,
  SYNOD_LOG_TRACE = 4,
} synod_log_level_t;

/* Longest value (in input bytes) written before it is cut. */
#define SYNOD_LOG_VALUE_MAX 1024

/* Lines at level or more severe are written; the default is INFO. Values
 * beyond TRACE are taken as TRACE. */
void synod_log_set_level(synod_log_level_t level);
synod_log_level_t synod_log_get_level(void);

/* 1 if a line at level would be written: lets a caller skip computing
 * expensive values. */
int synod_log_enabled(synod_log_level_t level);

/* Lines go to out, or to stderr when out is NULL (the default). The caller
 * keeps ownership of out and keeps it open until it is replaced; each line
 * is written with one fwrite when it fits in 4 KiB, then fflush'ed. Write
 * errors are ignored: logging never fails the caller. */
void synod_log_set_output(FILE *out);

/* The time source for ts, for tests and replays; NULL restores
 * clock_gettime(CLOCK_REALTIME). */
void synod_log_set_clock(void (*now)(struct timespec *ts));

/* "error", "warn", "info", "debug" or "trace" (any case; "warning" too)
 * into *level. SYNOD_EINVAL on NULL arguments, SYNOD_EPARSE otherwise. */
SYNOD_WUR int synod_log_level_parse(synod_log_level_t *level, const char *s);

/* Lowercase name of level ("info"), "unknown" when out of range. */
const char *synod_log_level_name(synod_log_level_t level);

/*
 * Logs msg at level with key=value pairs described by kvfmt, a printf-like
 * format whose literal text (keys, '=', spaces) is copied and whose
 * conversions are each written as one logfmt value:
 *
 *   synod_log(SYNOD_LOG_INFO, "peer up", "peer=%s port=%u", name, port);
 *   synod_log(SYNOD_LOG_WARN, "bad frame", "id=%.*s len=%zu", (int)n, id, len);
 *
 * Supported conversions: %s %c %d %i %u %x %X %o %f %e %g %p and %%, with
 * the length modifiers hh h l ll z j t and a precision (".N" or ".*");
 * %.*s reads at most that many bytes, so it takes unterminated buffers.
 * Flags and field widths are not supported: such a conversion is written
 * as !BADFMT and the rest of kvfmt is dropped. A NULL %s is written as
 * (null). msg and kvfmt may be NULL. Strings are only read during the call.
 * Literal bytes of kvfmt outside printable ASCII are written as '?'.
 */
void synod_log(synod_log_level_t level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* synod_log with a va_list, which it consumes. */
void synod_vlog(synod_log_level_t level, const char *msg, const char *kvfmt,
                va_list ap) __attribute__((format(printf, 3, 0)));

#endif
