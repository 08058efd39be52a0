/*
 * `synod chat`: an interactive line chat with one contact in a terminal
 * (not installed; the command's engine, kept out of main.c).
 *
 * A child process (fork) runs the receive loop, synod_client_recv() with
 * SYNOD_RECV_FOLLOW, reconnecting when the session ends, and hands each
 * message, formatted, to the parent through a pipe; a message is
 * acknowledged only once it is in the pipe. The parent reads the terminal
 * one key at a time (no readline: canonical mode and echo off, signals
 * kept), edits the line itself, and prints every incoming message above
 * the line being typed, which it then draws again. Each typed line is
 * sent with synod_client_send(), blocking; incoming messages wait in the
 * pipe meanwhile. Not a terminal (a pipe or file on standard input):
 * lines are read and sent without prompt or echo.
 */
#ifndef SYNOD_CLIENT_CHAT_H
#define SYNOD_CLIENT_CHAT_H

#include "synod/client.h"

/* Called after every send with its result (rc 0: the home relay took
 * it), to say what a user must see: a key change or why it was not sent.
 * Standard output is flushed before; the cursor is at a line start. */
typedef void (*chat_sent_cb)(void *arg, const char *peer, int rc,
                             const synod_send_result_t *res);

/*
 * Runs the chat of c's user with peer until "/quit", end of input, or
 * SIGINT / SIGTERM / SIGHUP; the receiving child is then stopped and
 * reaped and the terminal restored. Messages from other senders are shown
 * too, marked, rather than acknowledged unseen. Returns 0, or SYNOD_EIO /
 * SYNOD_ENOMEM when the chat could not start.
 */
SYNOD_WUR int chat_run(synod_client_t *c, const char *peer,
                       const synod_client_net_opts_t *opts, chat_sent_cb sent,
                       void *arg);

#endif
