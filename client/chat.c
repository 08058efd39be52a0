/*
 * `synod chat`: see chat.h.
 */
#include "chat.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define PROMPT         "> "

/* --- the receiving child --------------------------------------------------- */

typedef struct rx {
  int fd; /* the pipe's write end */
  const char *peer;
  char *buf;
  size_t len, cap;
  bool broken; /* the parent is gone */
  bool down;   /* an outage was reported and no message came since */
} rx_t;

static int put(rx_t *r, const char *s, size_t n) {
  if (r->len + n + 1 > r->cap) {
    size_t cap = (r->len + n + 1) * 2;
    char *b = realloc(r->buf, cap);
    if (!b)
      return -1;
    r->buf = b;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, s, n);
  r->len += n;
  return 0;
}

static int puts_(rx_t *r, const char *s) {
  return put(r, s, strlen(s));
}

/* Text as the terminal should see it: control characters made visible,
 * each further line indented under the first. */
static int put_text(rx_t *r, const uint8_t *b, size_t n) {
  while (n > 0 && b[n - 1] == '\n')
    n--;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = b[i];
    int e;
    if (ch == '\n')
      e = puts_(r, "\n    ");
    else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      e = put(r, "?", 1);
    else
      e = put(r, (const char *)&ch, 1);
    if (e)
      return e;
  }
  return 0;
}

static void hhmm(char out[8], uint64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (localtime_r(&tt, &tm) == NULL)
    snprintf(out, 8, "--:--");
  else
    snprintf(out, 8, "%02d:%02d", tm.tm_hour % 100, tm.tm_min % 100);
}

/* One record to the parent: the text and a NUL, written whole. */
static int send_record(rx_t *r) {
  if (put(r, "", 1) != 0)
    return SYNOD_ENOMEM;
  size_t off = 0;
  while (off < r->len) {
    ssize_t w = write(r->fd, r->buf + off, r->len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      r->broken = true;
      return SYNOD_EIO;
    }
    off += (size_t)w;
  }
  r->len = 0;
  return 0;
}

static int on_message(void *arg, const synod_received_t *m) {
  rx_t *r = arg;
  r->down = false;
  char when[8];
  hhmm(when, m->time);
  r->len = 0;
  int e = 0;
  if (m->status == SYNOD_RECV_OK) {
    bool ours = strcmp(m->sender, r->peer) == 0;
    bool text =
        m->content_type && strncmp(m->content_type, "text/plain", 10) == 0;
    if (m->sender_flags & SYNOD_QUORUM_RESET) {
      e |= puts_(r, "! WARNING: ");
      e |= puts_(r, m->sender);
      e |= puts_(r, "'s key was RESET since you last saw it (a new key "
                    "without a signature from the old one): it may be a new "
                    "device, or someone else.\n");
    }
    e |= puts_(r, "[");
    e |= puts_(r, when);
    e |= puts_(r, "] ");
    e |= puts_(r, m->sender);
    e |= puts_(r, ours ? ": " : " (not in this chat): ");
    if (text) {
      e |= put_text(r, m->body, m->body_len);
    } else {
      char what[96];
      snprintf(what, sizeof what, "[%zu bytes of ", m->body_len);
      e |= puts_(r, what);
      const char *ct = m->content_type ? m->content_type : "no type";
      e |= put_text(r, (const uint8_t *)ct, strlen(ct));
      e |= puts_(r, "]");
    }
  } else if (m->status == SYNOD_RECV_FAILED) {
    char id[33];
    for (size_t i = 0; i < 16; i++)
      snprintf(id + 2 * i, 3, "%02x", m->message_id[i]);
    e |= puts_(r, "! message ");
    e |= puts_(r, id);
    if (*m->recipient) {
      e |= puts_(r, " to ");
      e |= put_text(r, (const uint8_t *)m->recipient, strlen(m->recipient));
    }
    e |= puts_(r, " was not delivered: ");
    e |= put_text(r, (const uint8_t *)m->reason, strlen(m->reason));
    e |= puts_(r, " (");
    e |= put_text(r, (const uint8_t *)m->relay, strlen(m->relay));
    e |= puts_(r, m->relay_verified ? " says)" : " says, unverified)");
  } else {
    e |= puts_(r, m->status == SYNOD_RECV_REJECTED
                      ? "! REJECTED a message claiming to come from "
                      : "! HELD a message from ");
    e |= put_text(r, (const uint8_t *)m->sender, strlen(m->sender));
    e |= puts_(r, ": ");
    e |= put_text(r, (const uint8_t *)(m->reason ? m->reason : ""),
                  m->reason ? strlen(m->reason) : 0);
    e |= puts_(r, m->status == SYNOD_RECV_REJECTED
                      ? " (not shown; deleted from the relay)"
                      : " (it stays at the relay until the sender's key can "
                        "be checked)");
  }
  if (e)
    return SYNOD_ENOMEM;
  /* Taken, and so acknowledged, only once it is in the pipe. */
  return send_record(r);
}

static void child_main(synod_client_t *c, const char *peer,
                       const synod_client_net_opts_t *opts, int fd) {
  signal(SIGINT, SIG_IGN); /* Ctrl-C is the parent's: it stops us */
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  rx_t r = {.fd = fd, .peer = peer};
  unsigned delay = 1;
  for (;;) {
    int rc =
        synod_client_recv(c, SYNOD_RECV_FOLLOW, on_message, &r, opts, NULL);
    if (r.broken)
      break;
    if (rc == 0) { /* the relay closed the session: open another */
      delay = 1;
      sleep(1);
      continue;
    }
    if (!r.down) {
      char msg[256];
      r.len = 0;
      snprintf(msg, sizeof msg,
               "! cannot receive from your home relay (%s); retrying",
               synod_strerror(rc));
      if (puts_(&r, msg) != 0 || send_record(&r) != 0)
        break;
      r.down = true;
    }
    sleep(delay);
    if (delay < 16)
      delay *= 2;
  }
  free(r.buf);
}

/* --- the terminal ---------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  stop_signal = sig;
}

typedef struct term {
  bool tty;
  struct termios saved;
  char line[LINE_MAX_BYTES + 1];
  size_t len;
  int esc;  /* 0, 1 after ESC, 2 inside a CSI / SS3 sequence */
  char *in; /* the pipe's records, not yet complete */
  size_t inlen, incap;
} term_t;

static void out(const char *s, size_t n) {
  fwrite(s, 1, n, stdout);
}

static void outs(const char *s) {
  out(s, strlen(s));
}

/* Clears the current terminal line (the prompt and what is typed). */
static void clear_line(const term_t *t) {
  if (t->tty)
    outs("\r\033[K");
}

static void draw_line(const term_t *t) {
  if (t->tty) {
    outs("\r\033[K" PROMPT);
    out(t->line, t->len);
  }
  fflush(stdout);
}

/* A record from the child, shown above the line being typed. */
static void show(term_t *t, const char *rec) {
  clear_line(t);
  outs(rec);
  outs("\n");
  draw_line(t);
}

static void send_line(term_t *t, synod_client_t *c, const char *peer,
                      const synod_client_net_opts_t *opts, chat_sent_cb sent,
                      void *arg) {
  char when[8];
  hhmm(when, (uint64_t)time(NULL));
  clear_line(t);
  printf("[%s] %s: %.*s\n", when, synod_client_user_id(c), (int)t->len,
         t->line);
  fflush(stdout);
  synod_send_result_t res;
  int rc = synod_client_send(c, peer, SYNOD_CLIENT_TEXT, (uint8_t *)t->line,
                             t->len, opts, &res);
  fflush(stdout);
  if (sent)
    sent(arg, peer, rc, &res);
  fflush(stdout);
  fflush(stderr);
  synod_send_result_free(&res);
}

/* A complete line typed: 0 go on, 1 quit. */
static int submit(term_t *t, synod_client_t *c, const char *peer,
                  const synod_client_net_opts_t *opts, chat_sent_cb sent,
                  void *arg) {
  t->line[t->len] = '\0';
  int quit = 0;
  if (strcmp(t->line, "/quit") == 0) {
    quit = 1;
  } else if (t->len == 0) {
    /* nothing to send */
  } else if (t->line[0] == '/' && t->line[1] != '/') {
    clear_line(t);
    printf("! unknown command %s: /quit leaves the chat; start a line with "
           "// to send one that begins with /\n",
           t->line);
  } else {
    if (t->line[0] == '/') {
      memmove(t->line, t->line + 1, t->len);
      t->len--;
    }
    send_line(t, c, peer, opts, sent, arg);
  }
  t->len = 0;
  if (!quit)
    draw_line(t);
  return quit;
}

/* Bytes from standard input: 0 go on, 1 quit. */
static int keys(term_t *t, const unsigned char *b, size_t n, synod_client_t *c,
                const char *peer, const synod_client_net_opts_t *opts,
                chat_sent_cb sent, void *arg) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = b[i];
    if (t->esc == 1) { /* ESC [ or ESC O start a sequence; else one key */
      t->esc = ch == '[' || ch == 'O' ? 2 : 0;
      continue;
    }
    if (t->esc == 2) {
      if (ch >= 0x40 && ch <= 0x7e)
        t->esc = 0;
      continue;
    }
    if (ch == '\n' || (ch == '\r' && t->tty)) {
      if (submit(t, c, peer, opts, sent, arg))
        return 1;
    } else if (ch == 0x04 && t->tty) { /* Ctrl-D: quit on an empty line */
      if (t->len == 0)
        return 1;
    } else if (ch == 0x7f || ch == 0x08) {
      while (t->len > 0 && ((unsigned char)t->line[t->len - 1] & 0xc0) == 0x80)
        t->len--; /* a UTF-8 character's continuation bytes */
      if (t->len > 0)
        t->len--;
      draw_line(t);
    } else if (ch == 0x15) { /* Ctrl-U */
      t->len = 0;
      draw_line(t);
    } else if (ch == 0x17) { /* Ctrl-W: the word before the cursor */
      while (t->len > 0 && t->line[t->len - 1] == ' ')
        t->len--;
      while (t->len > 0 && t->line[t->len - 1] != ' ')
        t->len--;
      draw_line(t);
    } else if (ch == 0x1b) {
      t->esc = 1;
    } else if (ch >= 0x20 || ch == '\t') {
      if (t->len < LINE_MAX_BYTES) {
        t->line[t->len++] = (char)(ch == '\t' ? ' ' : ch);
        if (t->tty) {
          out((const char *)&t->line[t->len - 1], 1);
          fflush(stdout);
        }
      }
    }
  }
  return 0;
}

/* Bytes from the child: every complete record shown. -1 out of memory. */
static int records(term_t *t, const char *b, size_t n) {
  if (t->inlen + n > t->incap) {
    size_t cap = (t->inlen + n) * 2;
    char *p = realloc(t->in, cap);
    if (!p)
      return -1;
    t->in = p;
    t->incap = cap;
  }
  memcpy(t->in + t->inlen, b, n);
  t->inlen += n;
  size_t start = 0;
  for (size_t i = 0; i < t->inlen; i++)
    if (t->in[i] == '\0') {
      show(t, t->in + start);
      start = i + 1;
    }
  memmove(t->in, t->in + start, t->inlen - start);
  t->inlen -= start;
  return 0;
}

int chat_run(synod_client_t *c, const char *peer,
             const synod_client_net_opts_t *opts, chat_sent_cb sent,
             void *arg) {
  term_t *t = calloc(1, sizeof *t);
  if (!t)
    return SYNOD_ENOMEM;
  int p[2];
  if (pipe(p) != 0) {
    free(t);
    return SYNOD_EIO;
  }
  fflush(NULL); /* nothing buffered twice */
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    free(t);
    return SYNOD_EIO;
  }
  if (pid == 0) {
    close(p[0]);
    close(STDIN_FILENO);
    free(t);
    child_main(c, peer, opts, p[1]);
    close(p[1]);
    synod_client_close(c);
    _exit(0);
  }
  close(p[1]);

  stop_signal = 0;
  struct sigaction sa, old_int, old_term, old_hup;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);

  t->tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0;
  if (t->tty) {
    struct termios raw = t->saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* ISIG kept: Ctrl-C */
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0)
      t->tty = false;
  }
  if (t->tty)
    printf("Chat with %s. Type a line and Enter to send it; /quit or "
           "Ctrl-D leaves.\n",
           peer);
  draw_line(t);

  struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                          {.fd = p[0], .events = POLLIN}};
  bool receiving = true;
  int rc = 0;
  while (!stop_signal) {
    if (poll(fds, receiving ? 2 : 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      rc = SYNOD_EIO;
      break;
    }
    if (receiving && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char b[4096];
      ssize_t n = read(p[0], b, sizeof b);
      if (n > 0) {
        if (records(t, b, (size_t)n) != 0) {
          rc = SYNOD_ENOMEM;
          break;
        }
      } else if (n == 0 || errno != EINTR) {
        receiving = false;
        show(t, "! receiving stopped; sending still works");
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      unsigned char b[512];
      ssize_t n = read(STDIN_FILENO, b, sizeof b);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) { /* end of input */
        if (!t->tty && t->len > 0 &&
            (keys(t, (const unsigned char *)"\n", 1, c, peer, opts, sent, arg)))
          break;
        break;
      }
      if (keys(t, b, (size_t)n, c, peer, opts, sent, arg))
        break;
    }
  }

  if (t->tty) {
    clear_line(t);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
  }
  fflush(stdout);
  kill(pid, SIGTERM);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  close(p[0]);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  free(t->in);
  free(t);
  return rc;
}
