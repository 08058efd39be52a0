/*
 * Announcement-chain validation (lib/announce.c): synod_announce_verify()
 * on each link and synod_chain_check() on the sequence, from no held head
 * or from a head taken from one of the links.
 *
 * Input: two bytes (held: 0 none, else the link index + 1 whose head is
 * held, modulo the links; then the user: even alice, odd bob), then a
 * GossipAnnouncement whose announcements are the links, oldest first.
 * Checks: a chain accepted or found conflicting has every link verifying
 * on its own for that user; the outcome is consistent (EQUAL ends at the
 * held head; EXTENDS and RESET end above it; a CONFLICT index names a
 * link at the held version with another hash); resets counted never
 * exceed the links; a rollback needs a held head.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "synod/announce.h"
#include "synod/wire.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_announce: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fx_in_t in = {data, size};
  uint8_t held_sel = fx_byte(&in), user_sel = fx_byte(&in);
  const char *user = user_sel & 1 ? FX_BOB : FX_ALICE;
  ProtobufCMessage *pm;
  if (synod_wire_unpack_message(&synod__v1__gossip_announcement__descriptor,
                                in.p, in.n, &pm) != 0)
    return 0;
  Synod__V1__GossipAnnouncement *g = (Synod__V1__GossipAnnouncement *)pm;
  size_t n = g->n_announcements;
  const Synod__V1__Announcement *const *links =
      (const Synod__V1__Announcement *const *)g->announcements;

  /* Each link on its own. */
  int all_verify = 1;
  synod_announce_info_t info;
  synod_chain_head_t held;
  int has_held = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = synod_announce_verify(&info, links[i], FX_NOW);
    if (rc != 0) {
      all_verify = 0;
      continue;
    }
    check(info.version >= 1 && info.ndevices >= 1 &&
              info.ndevices <= SYNOD_ANNOUNCE_MAX_DEVICES,
          "a verified link breaks the size rules");
    if (held_sel && (size_t)(held_sel - 1) % n == i) {
      synod_chain_head_from_info(&held, &info);
      has_held = 1;
    }
  }

  synod_chain_outcome_t out;
  int rc =
      synod_chain_check(&out, user, has_held ? &held : NULL, links, n, FX_NOW);
  fx_trace("announce: %zu links held %d -> %s result %d", n, has_held,
           synod_err_name(rc), (int)out.result);
  if (rc == 0) {
    check(n > 0 && all_verify, "a chain with a failing link was accepted");
    check(strcmp(out.head.user_id, user) == 0, "head of another user");
    check(out.resets <= n, "more resets than links");
    switch (out.result) {
    case SYNOD_CHAIN_EQUAL:
      check(has_held && out.head.version == held.version &&
                memcmp(out.head.hash, held.hash, 32) == 0,
            "EQUAL does not end at the held head");
      break;
    case SYNOD_CHAIN_EXTENDS:
    case SYNOD_CHAIN_RESET:
      check(!has_held || out.head.version > held.version,
            "a newer head that is not newer");
      check((out.result == SYNOD_CHAIN_RESET) == (out.resets > 0),
            "RESET and the reset count disagree");
      break;
    default:
      check(0, "success with no result");
    }
  } else if (rc == SYNOD_EEQUIVOCATION) {
    check(has_held && out.result == SYNOD_CHAIN_CONFLICT && out.index < n,
          "a conflict without a held head or a link");
    check(out.head.version == held.version &&
              memcmp(out.head.hash, held.hash, 32) != 0,
          "the conflicting link is not at the held version");
  } else {
    check(out.result == SYNOD_CHAIN_NONE, "an error with a result");
    check(out.index <= n, "error index past the links");
    check(rc != SYNOD_EROLLBACK || has_held, "rollback without a held head");
  }
  synod_wire_free_message(pm);
  return 0;
}
