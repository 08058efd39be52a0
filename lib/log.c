/* Levelled logfmt logger. See synod/log.h. */
#include "synod/log.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

static synod_log_level_t log_level = SYNOD_LOG_INFO;
static FILE *log_out; /* NULL: stderr, which is not a constant initialiser */
static void (*log_clock)(struct timespec *ts);

static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

void synod_log_set_level(synod_log_level_t level) {
  log_level = level > SYNOD_LOG_TRACE ? SYNOD_LOG_TRACE : level;
}

synod_log_level_t synod_log_get_level(void) {
  return log_level;
}

int synod_log_enabled(synod_log_level_t level) {
  return level <= log_level;
}

void synod_log_set_output(FILE *out) {
  log_out = out;
}

void synod_log_set_clock(void (*now)(struct timespec *ts)) {
  log_clock = now;
}

int synod_log_level_parse(synod_log_level_t *level, const char *s) {
  if (!level || !s)
    return SYNOD_EINVAL;
  for (unsigned i = 0; i <= SYNOD_LOG_TRACE; i++) {
    if (strcasecmp(s, level_names[i]) == 0) {
      *level = (synod_log_level_t)i;
      return 0;
    }
  }
  if (strcasecmp(s, "warning") == 0) {
    *level = SYNOD_LOG_WARN;
    return 0;
  }
  return SYNOD_EPARSE;
}

const char *synod_log_level_name(synod_log_level_t level) {
  return level <= SYNOD_LOG_TRACE ? level_names[level] : "unknown";
}

/* --- line assembly -------------------------------------------------------- */

/* A line is gathered here and handed to stdio in one fwrite, so lines from
 * several processes sharing stderr do not interleave (below 4 KiB). */
typedef struct writer {
  FILE *f;
  size_t len;
  char buf[4096];
} writer_t;

static void flush(writer_t *w) {
  if (w->len)
    (void)fwrite(w->buf, 1, w->len, w->f);
  w->len = 0;
}

static void put(writer_t *w, const char *s, size_t n) {
  while (n) {
    if (w->len == sizeof w->buf)
      flush(w);
    size_t k = sizeof w->buf - w->len;
    if (k > n)
      k = n;
    memcpy(w->buf + w->len, s, k);
    w->len += k;
    s += k;
    n -= k;
  }
}

static void put_str(writer_t *w, const char *s) {
  put(w, s, strlen(s));
}

static void put_u_escape(writer_t *w, unsigned cp) {
  static const char hex[] = "0123456789abcdef";
  char e[6] = {'\\', 'u'};
  for (unsigned i = 0; i < 4; i++)
    e[2 + i] = hex[cp >> (12 - 4 * i) & 15u];
  put(w, e, sizeof e);
}

/* Length (2..4) of the well-formed UTF-8 sequence at s[0..n) and its code
 * point in *cp, or 0 when the bytes are not one (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp) {
  unsigned c = s[0], lo = 0x80, hi = 0xbf;
  size_t len;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, *cp = c & 0x1fu;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, *cp = c & 0x0fu;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, *cp = c & 0x07u;
  else
    return 0;
  if (c == 0xe0)
    lo = 0xa0;
  else if (c == 0xed)
    hi = 0x9f;
  else if (c == 0xf0)
    lo = 0x90;
  else if (c == 0xf4)
    hi = 0x8f;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  *cp = *cp << 6 | (s[1] & 0x3fu);
  for (size_t i = 2; i < len; i++) {
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
    *cp = *cp << 6 | (s[i] & 0x3fu);
  }
  return len;
}

static int needs_quotes(const char *s, size_t n) {
  if (n == 0)
    return 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c >= 0x7f || c == '=' || c == '"' || c == '\\')
      return 1;
  }
  return 0;
}

/* Writes s[0..n) as one logfmt value; quoted when forced or needed. */
static void put_value(writer_t *w, const char *s, size_t n, int force_quotes) {
  int cut = n > SYNOD_LOG_VALUE_MAX;
  if (cut)
    n = SYNOD_LOG_VALUE_MAX;
  if (!force_quotes && !cut && !needs_quotes(s, n)) {
    put(w, s, n);
    return;
  }
  put(w, "\"", 1);
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      size_t j = i + 1; /* copy the run of plain characters at once */
      while (j < n && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '"' &&
             p[j] != '\\')
        j++;
      put(w, s + i, j - i);
      i = j;
      continue;
    }
    switch (c) {
    case '"':
      put(w, "\\\"", 2);
      break;
    case '\\':
      put(w, "\\\\", 2);
      break;
    case '\n':
      put(w, "\\n", 2);
      break;
    case '\r':
      put(w, "\\r", 2);
      break;
    case '\t':
      put(w, "\\t", 2);
      break;
    default:
      if (c < 0x80) { /* other C0 controls and DEL */
        put_u_escape(w, c);
        break;
      }
      unsigned cp;
      size_t len = utf8_seq(p + i, n - i, &cp);
      if (len == 0) {
        put_u_escape(w, 0xfffd);
      } else if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029) {
        /* C1 controls (0x9b is a terminal CSI) and the separators some
         * viewers treat as line ends. */
        put_u_escape(w, cp);
        i += len;
        continue;
      } else {
        put(w, s + i, len);
        i += len;
        continue;
      }
    }
    i++;
  }
  if (cut)
    put(w, "...", 3);
  put(w, "\"", 1);
}

/* --- kvfmt conversions ---------------------------------------------------- */

typedef enum length_mod {
  LEN_NONE,
  LEN_HH,
  LEN_H,
  LEN_L,
  LEN_LL,
  LEN_Z,
  LEN_J,
  LEN_T
} length_mod_t;

static intmax_t arg_signed(va_list *ap, length_mod_t len) {
  switch (len) {
  case LEN_HH:
    return (signed char)va_arg(*ap, int);
  case LEN_H:
    return (short)va_arg(*ap, int);
  case LEN_L:
    return va_arg(*ap, long);
  case LEN_LL:
    return va_arg(*ap, long long);
  case LEN_Z: /* NOLINT(bugprone-branch-clone): one type on LP64 only */
    return va_arg(*ap, ssize_t);
  case LEN_J:
    return va_arg(*ap, intmax_t);
  case LEN_T:
    return va_arg(*ap, ptrdiff_t);
  case LEN_NONE:
    break;
  }
  return va_arg(*ap, int);
}

static uintmax_t arg_unsigned(va_list *ap, length_mod_t len) {
  switch (len) {
  case LEN_HH:
    return (unsigned char)va_arg(*ap, unsigned);
  case LEN_H:
    return (unsigned short)va_arg(*ap, unsigned);
  case LEN_L:
    return va_arg(*ap, unsigned long);
  case LEN_LL:
    return va_arg(*ap, unsigned long long);
  case LEN_Z: /* NOLINT(bugprone-branch-clone): one type on LP64 only */
    return va_arg(*ap, size_t);
  case LEN_J:
    return va_arg(*ap, uintmax_t);
  case LEN_T:
    return (uintmax_t)va_arg(*ap, ptrdiff_t);
  case LEN_NONE:
    break;
  }
  return va_arg(*ap, unsigned);
}

/* Consumes one conversion's argument(s) and writes its value. *fmt points
 * just past the '%' and is advanced past the conversion. Returns 0, or -1
 * for an unsupported conversion, after which the arguments can no longer
 * be matched to the format. */
static int put_conversion(writer_t *w, const char **fmt, va_list *ap) {
  const char *p = *fmt;
  int prec = -1; /* printf: "a negative precision is taken as if omitted" */
  char num[400]; /* %.40f of DBL_MAX: 309 digits, '.', 40 decimals */
  int n;

  if (*p == '.') {
    p++;
    if (*p == '*') {
      prec = va_arg(*ap, int);
      p++;
    } else {
      for (prec = 0; *p >= '0' && *p <= '9'; p++)
        prec = prec < 100000 ? prec * 10 + (*p - '0') : prec;
    }
  }
  length_mod_t len = LEN_NONE;
  switch (*p) {
  case 'h':
    len = p[1] == 'h' ? LEN_HH : LEN_H;
    p += len == LEN_HH ? 2 : 1;
    break;
  case 'l':
    len = p[1] == 'l' ? LEN_LL : LEN_L;
    p += len == LEN_LL ? 2 : 1;
    break;
  case 'z':
    len = LEN_Z, p++;
    break;
  case 'j':
    len = LEN_J, p++;
    break;
  case 't':
    len = LEN_T, p++;
    break;
  default:
    break;
  }
  /* A larger precision is a bug in the caller, not worth a longer num. */
  int nprec = prec > 40 ? 40 : prec;
  switch (*p) {
  case 's': {
    if (len != LEN_NONE)
      return -1;
    const char *s = va_arg(*ap, const char *);
    if (!s)
      s = "(null)";
    /* Never scan far past what will be written: the string may be huge. */
    size_t max = SYNOD_LOG_VALUE_MAX + 1;
    if (prec >= 0 && (size_t)prec < max)
      max = (size_t)prec;
    size_t slen = strnlen(s, max);
    put_value(w, s, slen, 0);
    break;
  }
  case 'c': {
    if (len != LEN_NONE)
      return -1;
    char c = (char)va_arg(*ap, int);
    put_value(w, &c, 1, 0);
    break;
  }
  case 'd':
  case 'i':
    n = snprintf(num, sizeof num, "%.*jd", nprec, arg_signed(ap, len));
    goto number;
  case 'u':
    n = snprintf(num, sizeof num, "%.*ju", nprec, arg_unsigned(ap, len));
    goto number;
  case 'x':
    n = snprintf(num, sizeof num, "%.*jx", nprec, arg_unsigned(ap, len));
    goto number;
  case 'X':
    n = snprintf(num, sizeof num, "%.*jX", nprec, arg_unsigned(ap, len));
    goto number;
  case 'o':
    n = snprintf(num, sizeof num, "%.*jo", nprec, arg_unsigned(ap, len));
    goto number;
  case 'f':
  case 'e':
  case 'g': {
    if (len != LEN_NONE && len != LEN_L) /* %lf is %f */
      return -1;
    double v = va_arg(*ap, double);
    if (*p == 'f')
      n = snprintf(num, sizeof num, "%.*f", nprec, v);
    else if (*p == 'e')
      n = snprintf(num, sizeof num, "%.*e", nprec, v);
    else
      n = snprintf(num, sizeof num, "%.*g", nprec, v);
    goto number;
  }
  case 'p':
    if (len != LEN_NONE)
      return -1;
    n = snprintf(num, sizeof num, "%p", va_arg(*ap, void *));
    goto number;
  default:
    return -1;
  }
  *fmt = p + 1;
  return 0;

number:
  if (n < 0 || (size_t)n >= sizeof num)
    return -1;
  put_value(w, num, (size_t)n, 0);
  *fmt = p + 1;
  return 0;
}

/* Copies kvfmt's literal text and expands its conversions. */
static void put_kvs(writer_t *w, const char *fmt, va_list *ap) {
  while (*fmt) {
    if (*fmt != '%') {
      unsigned char c = (unsigned char)*fmt++;
      char out = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
      put(w, &out, 1);
      continue;
    }
    fmt++;
    if (*fmt == '%') {
      put(w, "%", 1);
      fmt++;
      continue;
    }
    if (put_conversion(w, &fmt, ap) < 0) {
      put_str(w, "!BADFMT");
      return;
    }
  }
}

static void put_timestamp(writer_t *w) {
  struct timespec ts = {0, 0};
  struct tm tm;
  char buf[40];
  if (log_clock)
    log_clock(&ts);
  else
    (void)clock_gettime(CLOCK_REALTIME, &ts);
  if (!gmtime_r(&ts.tv_sec, &tm) ||
      strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    put_str(w, "ts=?");
    return;
  }
  put_str(w, "ts=");
  put_str(w, buf);
  long ms = ts.tv_nsec / 1000000;
  if (ms < 0 || ms > 999)
    ms = 0;
  char frac[8];
  snprintf(frac, sizeof frac, ".%03ldZ", ms);
  put_str(w, frac);
}

void synod_vlog(synod_log_level_t level, const char *msg, const char *kvfmt,
                va_list ap) {
  if (!synod_log_enabled(level))
    return;
  writer_t w;
  w.f = log_out ? log_out : stderr;
  w.len = 0;
  put_timestamp(&w);
  put_str(&w, " level=");
  put_str(&w, synod_log_level_name(level));
  put_str(&w, " msg=");
  if (!msg)
    msg = "";
  put_value(&w, msg, strnlen(msg, SYNOD_LOG_VALUE_MAX + 1), 1);
  if (kvfmt && *kvfmt) {
    va_list ap2;
    va_copy(ap2, ap);
    put(&w, " ", 1);
    put_kvs(&w, kvfmt, &ap2);
    va_end(ap2);
  }
  put(&w, "\n", 1);
  flush(&w);
  (void)fflush(w.f);
}

void synod_log(synod_log_level_t level, const char *msg, const char *kvfmt,
               ...) {
  va_list ap;
  va_start(ap, kvfmt);
  synod_vlog(level, msg, kvfmt, ap);
  va_end(ap);
}
