/*
 * Delivery-failure notices (proto/README.md 10): a relay's signed word
 * that a message we sent was not delivered, opened for the application.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "synod/sig.h"
#include "synod/wire.h"

/* One sentence for people: what happened to the message (the relay that
 * says so is n->relay, shown beside it). */
static void notice_reason(notice_t *n) {
  const char *why;
  switch (n->code) {
  case SYNOD_EEXPIRED:
    why = "it expired undelivered: the recipient did not fetch it before "
          "its time to live ran out";
    break;
  case SYNOD_EUNKNOWNUSER:
    why = "the recipient's relay has no such user";
    break;
  case SYNOD_EDENIED:
    why = "the recipient's relay refused it: the account may be disabled";
    break;
  case SYNOD_EQUOTA:
    why = "the recipient's storage at their relay is full";
    break;
  default:
    why = synod_strerror(n->code);
  }
  snprintf(n->reason, sizeof n->reason, "%s", why);
}

int notice_open(const synod_client_t *c, const Synod__V1__DeliveryFailure *df,
                notice_t *n) {
  memset(n, 0, sizeof *n);
  if (!df || df->signature.len != SYNOD_ED25519_SIG_BYTES)
    return SYNOD_EPARSE;
  /* Verify first: the relay whose pinned key signed these bytes. */
  const synod_client_relay_t *signer = NULL;
  for (size_t i = 0; i < c->nrelays && !signer; i++)
    if (synod_sig_verify(df->signature.data, SYNOD_SIG_DELIVERY_FAILURE,
                         df->body.data, df->body.len, c->relays[i].key) == 0)
      signer = &c->relays[i];
  ProtobufCMessage *m = NULL;
  int rc =
      synod_wire_unpack_message(&synod__v1__delivery_failure_body__descriptor,
                                df->body.data, df->body.len, &m);
  if (rc != 0)
    return SYNOD_EPARSE;
  const Synod__V1__DeliveryFailureBody *b =
      (const Synod__V1__DeliveryFailureBody *)m;
  const char *relay = b->relay_name ? b->relay_name : "";
  const char *to = b->recipient ? b->recipient : "";
  if (b->message_id.len != 16 || strlen(relay) > SYNOD_RELAY_NAME_MAX ||
      (*to && synod_userid_parse(to, NULL, NULL) != 0)) {
    rc = SYNOD_EPARSE;
  } else if (signer) {
    /* Signed by a relay we trust: it must be the one it names. */
    rc = strcmp(signer->name, relay) == 0 ? 0 : SYNOD_EVERIFY;
    n->verified = 1;
  } else {
    /* Not signed by any relay we know: acceptable only from a relay we
     * cannot check; one of ours would have signed it with its key. */
    rc = profile_relay(c, relay) ? SYNOD_EVERIFY : 0;
  }
  if (b->message_id.len == 16) {
    memcpy(n->message_id, b->message_id.data, 16);
    n->has_id = 1;
  }
  if (rc == 0) {
    snprintf(n->recipient, sizeof n->recipient, "%s", to);
    snprintf(n->relay, sizeof n->relay, "%s", relay);
    for (char *p = n->relay; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f)
        *p = '?';
    n->code = synod_err_from_wire(b->code);
    n->time = b->time;
    notice_reason(n);
  }
  synod_wire_free_message(m);
  return rc;
}
