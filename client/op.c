/*
 * Asynchronous operations of the client library: the handle every
 * operation embeds, the client's list of those in flight (so closing the
 * client cancels them), cancellation, and the private loop on which the
 * blocking calls run the very same operations.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "internal.h"

void op_init(synod_client_op_t *op, synod_client_t *c, uv_loop_t *loop,
             void *data, void (*cancel)(synod_client_op_t *), int link) {
  memset(op, 0, sizeof *op);
  op->c = c;
  op->loop = loop;
  op->data = data;
  op->cancel = cancel;
  if (link) {
    op->next = c->ops;
    if (c->ops)
      c->ops->prev = op;
    c->ops = op;
    op->linked = 1;
  }
}

void op_detach(synod_client_op_t *op) {
  if (!op->linked)
    return;
  if (op->prev)
    op->prev->next = op->next;
  else if (op->c)
    op->c->ops = op->next;
  if (op->next)
    op->next->prev = op->prev;
  op->next = op->prev = NULL;
  op->linked = 0;
}

void op_cancel_all(synod_client_t *c) {
  while (c->ops) {
    synod_client_op_t *op = c->ops;
    op_detach(op);
    (void)synod_client_op_cancel(op);
    op->c = NULL; /* from now on the op must not touch the client */
  }
}

int synod_client_op_cancel(synod_client_op_t *op) {
  if (!op)
    return SYNOD_EINVAL;
  if (op->finished)
    return SYNOD_EINVAL; /* its callback is running */
  if (op->canceled)
    return 0;
  op->canceled = 1;
  op->cancel(op);
  return 0;
}

void *synod_client_op_data(const synod_client_op_t *op) {
  return op ? op->data : NULL;
}

uv_loop_t *synod_client_op_loop(const synod_client_op_t *op) {
  return op ? op->loop : NULL;
}

int op_run_private(int (*start)(uv_loop_t *loop, void *arg), void *arg) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return SYNOD_EIO;
  int rc = start(&loop, arg);
  /* The operation closes every handle it opened before its callback
   * returns, so the loop runs dry exactly when it is done. */
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0 && rc == 0)
    rc = SYNOD_EINTERNAL;
  return rc;
}
