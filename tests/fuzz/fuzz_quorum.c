/*
 * The client's quorum decision (lib/quorum.c) on arbitrary answer sets
 * from the fixture's trust set of three relays.
 *
 * Input: three bytes (k: 2 or 3; the pin: 0 none, else taken from link
 * (b - 1) of the first answer, verified when b >= 0x80; the operators:
 * bit 0 makes relay-c an op-a relay, so two relays count once), then a
 * stream of frames as the client receives them: each LookupAnswer frame
 * is the answer of relay (request_id - 1) mod 3, the first one only.
 * Checks: an acceptance has at least k distinct operators among the
 * relays reported AGREED, a head for the user at or above the pin, and a
 * new pin equal to it; a refusal keeps the old pin; one report per
 * trust-set relay, each with a known status; the reason is a non-empty
 * string; the decision is the same when taken twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "synod/frame.h"
#include "synod/quorum.h"
#include "synod/wire.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_quorum: %s\n", what);
    abort();
  }
}

static void check_result(const synod_quorum_result_t *r,
                         const synod_quorum_input_t *q) {
  check(r->nrelays == q->ntrust && r->relays, "not one report per relay");
  check(memchr(r->reason, '\0', sizeof r->reason) && r->reason[0], "no reason");
  for (size_t i = 0; i < r->nrelays; i++)
    check(r->relays[i].status >= SYNOD_RELAY_UNREACHABLE &&
              r->relays[i].status <= SYNOD_RELAY_EQUIVOCATOR &&
              strcmp(r->relays[i].relay_name, q->trust[i].name) == 0,
          "a report with an unknown status or relay");
  if (r->error != 0) {
    check(r->has_pin == (q->pin != NULL), "a refusal changed the pin");
    check(!q->pin || memcmp(&r->pin, q->pin, sizeof r->pin) == 0,
          "a refusal changed the pin");
    return;
  }
  /* Accepted: at least k distinct operators agreed on it. */
  const char *ops[FX_NRELAYS];
  size_t nops = 0;
  for (size_t i = 0; i < r->nrelays; i++) {
    if (r->relays[i].status != SYNOD_RELAY_AGREED)
      continue;
    check(r->relays[i].said && r->relays[i].version == r->version &&
              memcmp(r->relays[i].head_hash, r->hash, 32) == 0,
          "an AGREED relay said something else");
    size_t j = 0;
    while (j < nops && strcmp(ops[j], r->relays[i].operator_name) != 0)
      j++;
    if (j == nops)
      ops[nops++] = r->relays[i].operator_name;
  }
  check(nops >= q->k && r->operators == nops, "accepted below quorum");
  check(r->has_pin && r->pin.version == r->version &&
            memcmp(r->pin.hash, r->hash, 32) == 0,
        "the new pin is not the accepted head");
  check(!q->pin || r->version >= q->pin->version, "accepted below the pin");
  check(r->version > 0, "accepted version 0");
  if (r->announcement)
    check(strcmp(r->info.user_id, q->user_id) == 0 &&
              memcmp(r->info.hash, r->hash, 32) == 0,
          "the accepted announcement is another");
  else
    check(r->flags & SYNOD_QUORUM_UNCHANGED, "no announcement, not unchanged");
  if (r->flags & (SYNOD_QUORUM_RESET | SYNOD_QUORUM_USER_EQUIVOCATED) ||
      !q->pin)
    check(!r->pin.verified, "a reset or first contact kept verified");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const fx_keys_t *keys = fx_keys();
  fx_in_t in = {data, size};
  unsigned k = 2 + (fx_byte(&in) & 1);
  uint8_t pin_sel = fx_byte(&in), op_sel = fx_byte(&in);

  synod_trusted_relay_t trust[FX_NRELAYS];
  memcpy(trust, keys->trust, sizeof trust);
  if (op_sel & 1)
    trust[2].operator_name = fx_operator[0];

  Synod__V1__Frame *frames[16];
  size_t nframes = 0;
  synod_quorum_answer_t answers[FX_NRELAYS];
  size_t nanswers = 0;
  synod_frame_decoder_t dec;
  if (synod_frame_decoder_init(&dec, 65536) != 0)
    abort();
  while (in.n > 0 && nframes < 16) {
    size_t used;
    uint8_t *body;
    size_t blen;
    int rc = synod_frame_decoder_feed(&dec, in.p, in.n, &used, &body, &blen);
    in.p += used;
    in.n -= used;
    if (rc != 1)
      break;
    Synod__V1__Frame *f;
    rc = synod_wire_unpack(body, blen, &f);
    free(body);
    if (rc != 0)
      continue;
    frames[nframes++] = f;
    if (f->body_case != SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER)
      continue;
    const char *name = fx_relay_name[(f->request_id - 1) % FX_NRELAYS];
    size_t j = 0;
    while (j < nanswers && strcmp(answers[j].relay_name, name) != 0)
      j++;
    if (j < nanswers)
      continue;
    answers[nanswers].relay_name = name;
    answers[nanswers].answer = f->lookup_answer;
    nanswers++;
  }
  synod_frame_decoder_free(&dec);

  const char *user = FX_ALICE;
  synod_pin_t pin;
  int has_pin = 0;
  if (pin_sel && nanswers && answers[0].answer->n_announcements) {
    const Synod__V1__LookupAnswer *a = answers[0].answer;
    synod_announce_info_t info;
    if (synod_announce_verify(
            &info, a->announcements[(size_t)(pin_sel - 1) % a->n_announcements],
            FX_NOW) == 0) {
      memset(&pin, 0, sizeof pin);
      pin.version = info.version;
      memcpy(pin.hash, info.hash, 32);
      memcpy(pin.identity_key, info.identity_key, 32);
      pin.time = info.time;
      pin.verified = pin_sel >= 0x80;
      has_pin = 1;
      user = strcmp(info.user_id, FX_BOB) == 0 ? FX_BOB : FX_ALICE;
    }
  }

  synod_quorum_input_t q = {
      .user_id = user,
      .answers = answers,
      .nanswers = nanswers,
      .trust = trust,
      .ntrust = FX_NRELAYS,
      .k = k,
      .pin = has_pin ? &pin : NULL,
      .now = FX_NOW,
  };
  synod_quorum_result_t r1, r2;
  int rc1 = synod_quorum_decide(&r1, &q);
  int rc2 = synod_quorum_decide(&r2, &q);
  check(rc1 == r1.error && rc1 == rc2 && rc1 != SYNOD_EINVAL &&
            rc1 != SYNOD_ENOMEM,
        "a valid input was refused as invalid, or two runs differ");
  fx_trace("quorum: answers %zu pin %d k %u -> %s v%llu: %s", nanswers, has_pin,
           k, synod_err_name(rc1), (unsigned long long)r1.version, r1.reason);
  check_result(&r1, &q);
  check(r1.version == r2.version && memcmp(r1.hash, r2.hash, 32) == 0 &&
            r1.flags == r2.flags && strcmp(r1.reason, r2.reason) == 0,
        "two runs decided differently");
  synod_quorum_result_free(&r1);
  synod_quorum_result_free(&r2);
  for (size_t i = 0; i < nframes; i++)
    synod_wire_free(frames[i]);
  return 0;
}
