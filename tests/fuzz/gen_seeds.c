/*
 * Writes the fuzz targets' seed corpora: real protocol traffic built and
 * signed with the library under the fixture's keys (fixture.h), each file
 * prefixed with the selector bytes its target reads first.
 *
 *   fuzz_gen_seeds OUTDIR     writes OUTDIR/<target>/<name> for every target
 *
 * tests/fuzz/gen-seeds.sh runs it into tests/fuzz/corpus/. Signatures are
 * deterministic (Ed25519), HPKE ciphertexts are not: a rerun changes the
 * envelope seeds' bytes, not what they exercise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "internal.h"
#include "synod/announce.h"
#include "synod/frame.h"
#include "synod/keyfile.h"
#include "synod/message.h"
#include "synod/sig.h"
#include "synod/statement.h"
#include "synod/wire.h"

static const char *outdir;

static void die(const char *what) {
  fprintf(stderr, "fuzz_gen_seeds: %s\n", what);
  exit(1);
}

#define OK(x)                                                                  \
  do {                                                                         \
    if ((x) != 0)                                                              \
      die(#x);                                                                 \
  } while (0)

/* --- output ---------------------------------------------------------------- */

typedef struct buf {
  uint8_t *p;
  size_t n;
} buf_t;

static void put(buf_t *b, const void *data, size_t n) {
  uint8_t *g = realloc(b->p, b->n + n + 1);
  if (!g)
    die("out of memory");
  b->p = g;
  if (n)
    memcpy(b->p + b->n, data, n);
  b->n += n;
}

static void put_msg(buf_t *b, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *tmp = malloc(n + 1);
  if (!tmp)
    die("out of memory");
  protobuf_c_message_pack(m, tmp);
  put(b, tmp, n);
  free(tmp);
}

/* Appends f as a frame (length header and body). */
static void put_frame(buf_t *b, const Synod__V1__Frame *f) {
  uint8_t *out;
  size_t len;
  OK(synod_wire_pack(f, SYNOD_FRAME_HARD_MAX, &out, &len));
  put(b, out, len);
  free(out);
}

static void write_seed(const char *target, const char *name, const buf_t *b) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", outdir, target);
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    die("cannot make a corpus directory");
  snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0)
    die("cannot write a seed");
}

/* Writes prefix bytes then body. */
static void seed(const char *target, const char *name, const uint8_t *prefix,
                 size_t plen, const buf_t *body) {
  buf_t b = {0};
  put(&b, prefix, plen);
  if (body)
    put(&b, body->p, body->n);
  write_seed(target, name, &b);
  free(b.p);
}

/* --- the traffic ------------------------------------------------------------ */

#define NLINKS 4
static synod_announcement_t links[NLINKS]; /* alice v1..v4 */
static Synod__V1__Announcement wlinks[NLINKS];
static Synod__V1__Announcement *wlinkp[NLINKS];
static synod_signed_t csig[NLINKS]; /* relay-a's */
static Synod__V1__Countersignature wcsig[NLINKS];
static Synod__V1__Countersignature *wcsigp[NLINKS];
static synod_announcement_t bob1;
static Synod__V1__Announcement wbob1;

static void make_chain(const fx_keys_t *k) {
  synod_device_t dev[2] = {{.device_id = 1, .name = "laptop"},
                           {.device_id = 2, .name = "phone"}};
  uint8_t dsk[32];
  for (int d = 0; d < 2; d++) {
    memset(dsk, 0x40 + d, sizeof dsk);
    OK(synod_x25519_public(dev[d].x25519_key, dsk));
  }
  /* v1 key0; v2 key0 with a second device; v3 key1 with continuity;
   * v4 key0 again as a reset. */
  const uint8_t *key[NLINKS] = {k->alice_sk[0], k->alice_sk[0], k->alice_sk[1],
                                k->alice_sk[0]};
  uint8_t hash[32];
  for (int i = 0; i < NLINKS; i++) {
    synod_announce_params_t p = {
        .user_id = FX_ALICE,
        .devices = dev,
        .ndevices = i == 0 ? 1 : 2,
        .version = (uint64_t)i + 1,
        .time = FX_NOW - 4000 + 1000 * (uint64_t)i,
        .prev_hash = i ? hash : NULL,
        .reset = i == 3,
    };
    OK(synod_announce_sign(&links[i], &p, key[i],
                           i == 2 ? k->alice_sk[0] : NULL));
    OK(synod_announce_hash(hash, links[i].body, links[i].body_len));
    synod_announcement_lend(&wlinks[i], &links[i]);
    wlinkp[i] = &wlinks[i];
    synod_countersig_info_t ci = {.version = (uint64_t)i + 1,
                                  .time = FX_NOW - 3900 + 1000 * (uint64_t)i};
    snprintf(ci.user_id, sizeof ci.user_id, "%s", FX_ALICE);
    snprintf(ci.relay_name, sizeof ci.relay_name, "%s", fx_relay_name[0]);
    memcpy(ci.announcement_hash, hash, 32);
    OK(synod_countersig_sign(&csig[i], &ci, k->relay_sk[0]));
    synod__v1__countersignature__init(&wcsig[i]);
    synod_signed_lend(&wcsig[i].body, &wcsig[i].signature, &csig[i]);
    wcsigp[i] = &wcsig[i];
  }
  synod_announce_params_t p = {.user_id = FX_BOB,
                               .devices = dev,
                               .ndevices = 1,
                               .version = 1,
                               .time = FX_NOW - 500};
  OK(synod_announce_sign(&bob1, &p, k->bob_sk, NULL));
  synod_announcement_lend(&wbob1, &bob1);
}

static uint8_t head_hash[NLINKS][32];

/* Packed EquivocationProofs seeds_statement() built: relay-b's two lookup
 * answers, alice's two v2 announcements. seeds_quorum() hands them out. */
static buf_t proof_lookup_b, proof_alice;

/* relay r's lookup answer for alice at version v (1..NLINKS) with links
 * from..v, dated age seconds ago; *s receives the signed body. */
static void make_answer(Synod__V1__LookupAnswer *a, synod_signed_t *s,
                        const fx_keys_t *k, int r, int from, int v,
                        uint64_t age) {
  synod_lookup_info_t li = {.time = FX_NOW - age, .version = (uint64_t)v};
  snprintf(li.user_id, sizeof li.user_id, "%s", FX_ALICE);
  snprintf(li.relay_name, sizeof li.relay_name, "%s", fx_relay_name[r]);
  if (v)
    memcpy(li.head_hash, head_hash[v - 1], 32);
  OK(synod_lookup_sign(s, &li, k->relay_sk[r]));
  synod__v1__lookup_answer__init(a);
  synod_signed_lend(&a->body, &a->signature, s);
  if (v) {
    a->announcements = &wlinkp[from - 1];
    a->n_announcements = (size_t)(v - from + 1);
    a->countersignatures = &wcsigp[from - 1];
    a->n_countersignatures = (size_t)(v - from + 1);
  }
}

static void frame_of(Synod__V1__Frame *f, uint64_t rid,
                     Synod__V1__Frame__BodyCase c, void *msg) {
  synod__v1__frame__init(f);
  f->request_id = rid;
  f->body_case = c;
  /* Every body member of the oneof shares one slot: set it through one. */
  f->ping = msg;
}

/* --- targets ----------------------------------------------------------------- */

static void seeds_announce(void) {
  Synod__V1__GossipAnnouncement g;
  buf_t b = {0};
  /* The whole chain, from nothing and from v1, v2, v3 held. */
  synod__v1__gossip_announcement__init(&g);
  g.announcements = wlinkp;
  g.n_announcements = NLINKS;
  g.countersignatures = wcsigp;
  g.n_countersignatures = NLINKS;
  put_msg(&b, &g.base);
  for (uint8_t held = 0; held < 4; held++) {
    uint8_t pre[2] = {held, 0};
    char name[32];
    snprintf(name, sizeof name, "chain4-held%u", held);
    seed("announce", name, pre, 2, &b);
  }
  free(b.p);
  b = (buf_t){0};
  /* The continuity link alone after v2 held (held index 1 of 3). */
  g.announcements = &wlinkp[1];
  g.n_announcements = 2;
  put_msg(&b, &g.base);
  seed("announce", "continuity", (const uint8_t[]){1, 0}, 2, &b);
  free(b.p);
  b = (buf_t){0};
  Synod__V1__Announcement *bp = &wbob1;
  g.announcements = &bp;
  g.n_announcements = 1;
  g.n_countersignatures = 0;
  put_msg(&b, &g.base);
  seed("announce", "bob1", (const uint8_t[]){0, 1}, 2, &b);
  free(b.p);
}

static void seeds_quorum(const fx_keys_t *k) {
  /* All three relays agree on v3, from v1; relay-c lags at v2; relay-b is
   * stale; relay-c says nobody. */
  struct {
    const char *name;
    uint8_t pre[3];
    int v[3], from[3];
    uint64_t age[3];
  } cases[] = {
      {"agree-v3", {0, 0, 0}, {3, 3, 3}, {1, 1, 1}, {10, 10, 10}},
      {"agree-v3-k3", {1, 0, 0}, {3, 3, 3}, {1, 1, 1}, {10, 10, 10}},
      {"lagging-c", {0, 0, 0}, {3, 3, 2}, {1, 1, 1}, {10, 10, 10}},
      {"stale-b", {0, 0, 0}, {3, 3, 3}, {1, 1, 1}, {10, 7200, 10}},
      {"unknown-c", {0, 0, 0}, {3, 3, 0}, {1, 1, 1}, {10, 10, 10}},
      {"pinned-v2", {0, 0x82, 0}, {4, 4, 4}, {1, 3, 3}, {10, 10, 10}},
      {"pinned-v2-verified", {0, 0x83, 0}, {3, 3, 3}, {1, 3, 3}, {10, 10, 10}},
      {"same-operator", {0, 0, 1}, {3, 2, 3}, {1, 1, 1}, {10, 10, 10}},
      /* relay-c carries proof that relay-b equivocated; relay-a carries
       * proof that alice's key signed two version 2 bodies. */
      {"proof-against-b", {0, 0, 0}, {3, 3, 3}, {1, 1, 1}, {10, 10, 10}},
      {"proof-against-alice", {0, 0, 0}, {3, 3, 3}, {1, 1, 1}, {10, 10, 10}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    buf_t b = {0};
    for (int r = 0; r < FX_NRELAYS; r++) {
      Synod__V1__LookupAnswer a;
      synod_signed_t s;
      make_answer(&a, &s, k, r, cases[c].from[r], cases[c].v[r],
                  cases[c].age[r]);
      const buf_t *pb = NULL;
      if (strcmp(cases[c].name, "proof-against-b") == 0 && r == 2)
        pb = &proof_lookup_b;
      if (strcmp(cases[c].name, "proof-against-alice") == 0 && r == 0)
        pb = &proof_alice;
      Synod__V1__EquivocationProof *proof = NULL;
      if (pb) {
        proof = synod__v1__equivocation_proof__unpack(NULL, pb->n, pb->p);
        if (!proof)
          die("a proof does not parse");
        a.proofs = &proof;
        a.n_proofs = 1;
      }
      Synod__V1__Frame f;
      frame_of(&f, (uint64_t)r + 1, SYNOD__V1__FRAME__BODY_LOOKUP_ANSWER, &a);
      put_frame(&b, &f);
      synod_signed_free(&s);
      if (proof)
        synod__v1__equivocation_proof__free_unpacked(proof, NULL);
    }
    seed("quorum", cases[c].name, cases[c].pre, 3, &b);
    free(b.p);
  }
}

/* Two lookup answers of relay r for v3 with different heads, as a proof. */
static void seeds_statement(const fx_keys_t *k) {
  buf_t b = {0};
  Synod__V1__LookupAnswer a;
  synod_signed_t s, s2;
  make_answer(&a, &s, k, 1, 1, 3, 10);
  a.n_announcements = a.n_countersignatures = 0;
  put_msg(&b, &a.base);
  seed("statement", "lookup-b", (const uint8_t[]){0, 1, 0}, 3, &b);
  seed("statement", "lookup-b-window", (const uint8_t[]){0, 1, 1}, 3, &b);
  free(b.p);
  b = (buf_t){0};
  make_answer(&a, &s2, k, 1, 1, 0, 10);
  put_msg(&b, &a.base);
  seed("statement", "lookup-none", (const uint8_t[]){0, 1, 0}, 3, &b);
  free(b.p);
  synod_signed_free(&s2);

  b = (buf_t){0};
  put_msg(&b, &wcsig[2].base);
  seed("statement", "countersig-a", (const uint8_t[]){1, 0, 0}, 3, &b);
  free(b.p);

  /* LOOKUP_ANSWER proof: relay-b's v3 answer above and one naming v2's
   * hash as v3. */
  synod_lookup_info_t li = {.time = FX_NOW - 5, .version = 3};
  snprintf(li.user_id, sizeof li.user_id, "%s", FX_ALICE);
  snprintf(li.relay_name, sizeof li.relay_name, "%s", fx_relay_name[1]);
  memcpy(li.head_hash, head_hash[1], 32);
  OK(synod_lookup_sign(&s2, &li, k->relay_sk[1]));
  Synod__V1__Signed x, y;
  synod__v1__signed__init(&x);
  synod__v1__signed__init(&y);
  synod_signed_lend(&x.body, &x.signature, &s);
  synod_signed_lend(&y.body, &y.signature, &s2);
  synod_proof_t p;
  OK(synod_proof_build(
      &p, NULL, SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_LOOKUP_ANSWER,
      &x, &y, k->relay_keys, FX_NRELAYS));
  Synod__V1__EquivocationProof w;
  Synod__V1__Signed wf, ws;
  synod_proof_lend(&w, &wf, &ws, &p);
  b = (buf_t){0};
  put_msg(&b, &w.base);
  seed("statement", "proof-lookup", (const uint8_t[]){2, 0, 0}, 3, &b);
  seed("proto", "equivocation_proof", (const uint8_t[]){20}, 1, &b);
  proof_lookup_b = b;
  synod_proof_free(&p);
  synod_signed_free(&s);
  synod_signed_free(&s2);

  /* COUNTERSIGNATURE proof: relay-a vouching for two hashes at v2. */
  synod_countersig_info_t ci = {.version = 2, .time = FX_NOW - 100};
  snprintf(ci.user_id, sizeof ci.user_id, "%s", FX_ALICE);
  snprintf(ci.relay_name, sizeof ci.relay_name, "%s", fx_relay_name[0]);
  memcpy(ci.announcement_hash, head_hash[2], 32);
  OK(synod_countersig_sign(&s2, &ci, k->relay_sk[0]));
  synod_signed_lend(&x.body, &x.signature, &csig[1]);
  synod_signed_lend(&y.body, &y.signature, &s2);
  OK(synod_proof_build(
      &p, NULL,
      SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_COUNTERSIGNATURE, &x, &y,
      k->relay_keys, FX_NRELAYS));
  synod_proof_lend(&w, &wf, &ws, &p);
  b = (buf_t){0};
  put_msg(&b, &w.base);
  seed("statement", "proof-countersig", (const uint8_t[]){2, 0, 0}, 3, &b);
  free(b.p);
  synod_proof_free(&p);
  synod_signed_free(&s2);

  /* ANNOUNCEMENT proof: alice signing two different v2 bodies. */
  synod_device_t dev = {.device_id = 9, .name = "other"};
  memset(dev.x25519_key, 0x09, 32);
  synod_announce_params_t ap = {.user_id = FX_ALICE,
                                .devices = &dev,
                                .ndevices = 1,
                                .version = 2,
                                .time = FX_NOW - 2500,
                                .prev_hash = head_hash[0]};
  synod_announcement_t other;
  OK(synod_announce_sign(&other, &ap, k->alice_sk[0], NULL));
  x.body.data = links[1].body;
  x.body.len = links[1].body_len;
  x.signature.data = links[1].signature;
  x.signature.len = 64;
  y.body.data = other.body;
  y.body.len = other.body_len;
  y.signature.data = other.signature;
  y.signature.len = 64;
  OK(synod_proof_build(
      &p, NULL, SYNOD__V1__EQUIVOCATION_KIND__EQUIVOCATION_KIND_ANNOUNCEMENT,
      &x, &y, k->relay_keys, FX_NRELAYS));
  synod_proof_lend(&w, &wf, &ws, &p);
  b = (buf_t){0};
  put_msg(&b, &w.base);
  seed("statement", "proof-announcement", (const uint8_t[]){2, 0, 0}, 3, &b);
  proof_alice = b;
  synod_proof_free(&p);
  synod_announcement_free(&other);
}

/* A sealed message from alice to bob (or the reverse), into *out. */
static void seal(synod_message_sealed_t *out, const fx_keys_t *k,
                 const char *from, const char *to, uint8_t id) {
  synod_message_device_t dev = {.device_id = 1};
  uint8_t dsk[32], mid[16];
  memset(dsk, 0x41, sizeof dsk);
  memset(mid, id, sizeof mid);
  OK(synod_x25519_public(dev.x25519_key, dsk));
  synod_message_params_t p = {.sender = from,
                              .recipient = to,
                              .devices = &dev,
                              .ndevices = 1,
                              .message_id = mid,
                              .time = FX_NOW,
                              .ttl = 3600,
                              .content_type = "text/plain",
                              .body = (const uint8_t *)"hello",
                              .body_len = 5};
  OK(synod_message_seal(
      out, &p, strcmp(from, FX_ALICE) == 0 ? k->alice_sk[0] : k->bob_sk));
}

/* A Purge signed by sk for user, scope ALL or IDS (with one id). */
static void make_purge(Synod__V1__Purge *m, uint8_t **body, const char *user,
                       int ids, const uint8_t *sk) {
  static uint8_t sig[64], id[16];
  memset(id, 7, sizeof id);
  Synod__V1__PurgeBody b;
  synod__v1__purge_body__init(&b);
  b.user_id = synod_wire_lend(user);
  b.scope = ids ? SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_IDS
                : SYNOD__V1__PURGE_SCOPE__PURGE_SCOPE_ALL;
  ProtobufCBinaryData bid = {16, id};
  if (ids) {
    b.message_ids = &bid;
    b.n_message_ids = 1;
  }
  b.time = FX_NOW;
  size_t n = synod__v1__purge_body__get_packed_size(&b);
  *body = malloc(n);
  if (!*body)
    die("out of memory");
  synod__v1__purge_body__pack(&b, *body);
  OK(synod_sig_sign(sig, SYNOD_SIG_PURGE, *body, n, sk));
  synod__v1__purge__init(m);
  m->body.data = *body;
  m->body.len = n;
  m->signature.data = sig;
  m->signature.len = 64;
}

static void seeds_session(const fx_keys_t *k, buf_t *frames_out) {
  Synod__V1__Frame f;
  buf_t member = {0}, visitor = {0}, peer = {0};

  Synod__V1__Ping ping;
  synod__v1__ping__init(&ping);
  ping.nonce = 42;
  frame_of(&f, 1, SYNOD__V1__FRAME__BODY_PING, &ping);
  put_frame(&member, &f);
  put_frame(&visitor, &f);
  put_frame(&peer, &f);

  /* alice submits to bob (another relay) and to carol (this one). */
  synod_message_sealed_t m1, m2;
  seal(&m1, k, FX_ALICE, FX_BOB, 1);
  seal(&m2, k, FX_ALICE, "carol@relay-a.test", 2);
  Synod__V1__Submit sub;
  synod__v1__submit__init(&sub);
  sub.envelope = &m1.envelope;
  frame_of(&f, 2, SYNOD__V1__FRAME__BODY_SUBMIT, &sub);
  put_frame(&member, &f);
  put_frame(&visitor, &f);
  sub.envelope = &m2.envelope;
  f.request_id = 3;
  put_frame(&member, &f);

  Synod__V1__DeliveryAck ack;
  synod__v1__delivery_ack__init(&ack);
  ProtobufCBinaryData ids[2] = {{16, m1.message_id}, {16, m2.message_id}};
  ack.message_ids = ids;
  ack.n_message_ids = 2;
  frame_of(&f, 0, SYNOD__V1__FRAME__BODY_DELIVERY_ACK, &ack);
  put_frame(&member, &f);

  Synod__V1__Fetch fetch;
  synod__v1__fetch__init(&fetch);
  frame_of(&f, 4, SYNOD__V1__FRAME__BODY_FETCH, &fetch);
  put_frame(&member, &f);

  Synod__V1__Purge purge;
  uint8_t *pbody, *pbody2;
  make_purge(&purge, &pbody, FX_ALICE, 1, k->alice_sk[0]);
  frame_of(&f, 5, SYNOD__V1__FRAME__BODY_PURGE, &purge);
  put_frame(&member, &f);

  Synod__V1__Publish pub;
  synod__v1__publish__init(&pub);
  pub.announcement = &wlinks[0];
  frame_of(&f, 6, SYNOD__V1__FRAME__BODY_PUBLISH, &pub);
  put_frame(&member, &f);

  Synod__V1__LookupRequest lr;
  synod__v1__lookup_request__init(&lr);
  lr.user_id = synod_wire_lend(FX_BOB);
  frame_of(&f, 7, SYNOD__V1__FRAME__BODY_LOOKUP_REQUEST, &lr);
  put_frame(&member, &f);
  put_frame(&visitor, &f);
  put_frame(&peer, &f);

  /* relay-b forwards bob's message to alice and a delivery failure. */
  synod_message_sealed_t m3;
  seal(&m3, k, FX_BOB, FX_ALICE, 3);
  m3.envelope.sender_relay = synod_wire_lend(fx_relay_name[1]);
  m3.envelope.time = FX_NOW;
  Synod__V1__Envelope *envp = &m3.envelope;
  Synod__V1__DeliveryFailureBody dfb;
  synod__v1__delivery_failure_body__init(&dfb);
  dfb.message_id.data = m1.message_id;
  dfb.message_id.len = 16;
  dfb.recipient = synod_wire_lend(FX_BOB);
  dfb.code = (uint32_t)-SYNOD_EUNKNOWNUSER;
  dfb.relay_name = synod_wire_lend(fx_relay_name[1]);
  dfb.time = FX_NOW;
  uint8_t dfbytes[512], dfsig[64];
  size_t dflen = synod__v1__delivery_failure_body__pack(&dfb, dfbytes);
  OK(synod_sig_sign(dfsig, SYNOD_SIG_DELIVERY_FAILURE, dfbytes, dflen,
                    k->relay_sk[1]));
  Synod__V1__DeliveryFailure df;
  synod__v1__delivery_failure__init(&df);
  df.body.data = dfbytes;
  df.body.len = dflen;
  df.signature.data = dfsig;
  df.signature.len = 64;
  Synod__V1__DeliveryFailure *dfp = &df;
  Synod__V1__Forward fw;
  synod__v1__forward__init(&fw);
  fw.envelopes = &envp;
  fw.n_envelopes = 1;
  fw.failures = &dfp;
  fw.n_failures = 1;
  frame_of(&f, 8, SYNOD__V1__FRAME__BODY_FORWARD, &fw);
  put_frame(&peer, &f);

  Synod__V1__PeerPurge pp;
  synod__v1__peer_purge__init(&pp);
  Synod__V1__Purge purge2;
  make_purge(&purge2, &pbody2, FX_BOB, 0, k->bob_sk);
  pp.purge = &purge2;
  frame_of(&f, 9, SYNOD__V1__FRAME__BODY_PEER_PURGE, &pp);
  put_frame(&peer, &f);

  Synod__V1__GossipAnnouncement ga;
  synod__v1__gossip_announcement__init(&ga);
  ga.announcements = wlinkp;
  ga.n_announcements = 2;
  ga.countersignatures = wcsigp;
  ga.n_countersignatures = 2;
  frame_of(&f, 0, SYNOD__V1__FRAME__BODY_GOSSIP_ANNOUNCEMENT, &ga);
  put_frame(&peer, &f);

  Synod__V1__Head head;
  synod__v1__head__init(&head);
  head.user_id = synod_wire_lend(FX_ALICE);
  head.version = 2;
  head.head_hash.data = head_hash[1];
  head.head_hash.len = 32;
  Synod__V1__Head *headp = &head;
  Synod__V1__HeadsSummary hs;
  synod__v1__heads_summary__init(&hs);
  hs.heads = &headp;
  hs.n_heads = 1;
  frame_of(&f, 0, SYNOD__V1__FRAME__BODY_HEADS_SUMMARY, &hs);
  put_frame(&peer, &f);

  /* who: 0 member, 1 visitor, 2 peer, 6 member with an enrolment code;
   * byte 1 the lookup result (0 found). */
  seed("session", "member", (const uint8_t[]){0, 0, 0}, 3, &member);
  seed("session", "member-enrol", (const uint8_t[]){6, 0, 0}, 3, &member);
  seed("session", "member-refused", (const uint8_t[]){0, 1, 0}, 3, &member);
  seed("session", "visitor", (const uint8_t[]){1, 0, 0}, 3, &visitor);
  seed("session", "peer", (const uint8_t[]){2, 0, 0}, 3, &peer);
  seed("session", "peer-sends-member-frames", (const uint8_t[]){2, 0, 0}, 3,
       &member);
  seed("session", "member-sends-peer-frames", (const uint8_t[]){0, 0, 0}, 3,
       &peer);
  seed("session", "before-auth", (const uint8_t[]){0, 0, 1}, 3, &member);

  /* The frame decoder's seeds are the same streams. */
  seed("frame", "member", (const uint8_t[]){0}, 1, &member);
  seed("frame", "peer-chunked", (const uint8_t[]){3}, 1, &peer);
  seed("frame", "visitor-bytewise", (const uint8_t[]){1}, 1, &visitor);
  put(frames_out, member.p, member.n);

  /* The messages on their own for the protobuf target. */
  buf_t b = {0};
  put_msg(&b, &m1.envelope.base);
  seed("proto", "envelope", (const uint8_t[]){28}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put_msg(&b, &fw.base);
  seed("proto", "forward", (const uint8_t[]){34}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put_msg(&b, &purge.base);
  seed("proto", "purge", (const uint8_t[]){38}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put(&b, purge.body.data, purge.body.len);
  seed("proto", "purge_body", (const uint8_t[]){37}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put(&b, dfbytes, dflen);
  seed("proto", "delivery_failure_body", (const uint8_t[]){41}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put_msg(&b, &hs.base);
  seed("proto", "heads_summary", (const uint8_t[]){23}, 1, &b);
  free(b.p);

  free(pbody);
  free(pbody2);
  synod_message_sealed_free(&m1);
  synod_message_sealed_free(&m2);
  synod_message_sealed_free(&m3);
  free(member.p);
  free(visitor.p);
  free(peer.p);
}

static void seeds_proto(const fx_keys_t *k, const buf_t *frames) {
  buf_t b = {0};
  /* The first frame of the member's stream, without its header. */
  if (frames->n > 4) {
    size_t n = (size_t)frames->p[0] << 24 | (size_t)frames->p[1] << 16 |
               (size_t)frames->p[2] << 8 | frames->p[3];
    put(&b, frames->p + 4, n);
    seed("proto", "frame", (const uint8_t[]){0}, 1, &b);
    free(b.p);
  }
  b = (buf_t){0};
  put(&b, links[2].body, links[2].body_len);
  seed("proto", "announcement_body", (const uint8_t[]){9}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put_msg(&b, &wlinks[2].base);
  seed("proto", "announcement", (const uint8_t[]){10}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put(&b, csig[0].body, csig[0].body_len);
  seed("proto", "countersignature_body", (const uint8_t[]){11}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put_msg(&b, &wcsig[0].base);
  seed("proto", "countersignature", (const uint8_t[]){12}, 1, &b);
  free(b.p);
  Synod__V1__LookupAnswer a;
  synod_signed_t s;
  make_answer(&a, &s, k, 0, 1, 2, 10);
  b = (buf_t){0};
  put(&b, s.body, s.body_len);
  seed("proto", "lookup_answer_body", (const uint8_t[]){18}, 1, &b);
  free(b.p);
  b = (buf_t){0};
  put_msg(&b, &a.base);
  seed("proto", "lookup_answer", (const uint8_t[]){19}, 1, &b);
  free(b.p);
  synod_signed_free(&s);
  /* Every other type from the empty message (a valid encoding of each). */
  for (uint8_t t = 0; t < 45; t++) {
    char name[32];
    snprintf(name, sizeof name, "empty-%02u", t);
    seed("proto", name, &t, 1, NULL);
  }
}

static void seeds_config(void) {
  const char *base = fx_relay_conf();
  buf_t b = {0};
  put(&b, base, strlen(base));
  seed("config", "relay-a", NULL, 0, &b);
  free(b.p);
  const char *extra =
      "[retention]\ndelivered = keep\nkeep_for = 3d\n"
      "[federation]\nwindow = 64\nretry_min = 250ms\nretry_max = 2m\n";
  b = (buf_t){0};
  put(&b, base, strlen(base));
  put(&b, extra, strlen(extra));
  seed("config", "relay-a-all-sections", NULL, 0, &b);
  free(b.p);
  const char *v6 = "[relay]\nname = relay-v6.test\nlisten = [::1]:7400\n"
                   "key_file = /etc/synod/relay.key\ntls_cert = cert.pem\n"
                   "tls_key = key.pem\nlog_level = debug\n"
                   "[database]\nconninfo = \"host=/run/postgresql dbname=s\"\n"
                   "max_batch = 64\n"
                   "[limits]\nquota_bytes = 16MiB\nmessage_rate = 10\n"
                   "message_burst = 20\nhandshake_timeout = 5s\n"
                   "idle_timeout = 1h\nmax_connections = 64\n"
                   "max_frame_bytes = 65536\nmax_envelope_bytes = 32768\n";
  b = (buf_t){0};
  put(&b, v6, strlen(v6));
  seed("config", "ipv6-tls", NULL, 0, &b);
  free(b.p);
}

/* The four profile files as synod_client_create() and the pin and self
 * savers write them, re-MACed under the fixture key. */
static void seeds_profile(const fx_keys_t *k) {
  char dir[] = "/tmp/synod-fuzz-seeds.XXXXXX";
  if (!mkdtemp(dir))
    die("mkdtemp");
  char pdir[sizeof dir + 16];
  snprintf(pdir, sizeof pdir, "%s/p", dir);
  synod_keyfile_kdf_t kdf = {.log2_n = 10, .r = 8, .p = 1};
  synod_profile_params_t pp = {.user_id = FX_ALICE,
                               .device_name = "laptop",
                               .pass = "seed",
                               .passlen = 4,
                               .kdf = &kdf};
  synod_client_t *c;
  OK(synod_client_create(&c, pdir, &pp));
  char kl[SYNOD_KEYFILE_TEXT_MAX];
  for (int r = 0; r < FX_NRELAYS; r++) {
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", 7400 + r);
    synod_keyfile_format_public(kl, sizeof kl, SYNOD_KEY_ED25519,
                                k->relay_pk[r]);
    OK(synod_client_trust_add(c, fx_relay_name[r], addr, kl, fx_operator[r]));
  }
  OK(synod_client_set_quorum(c, 2));
  synod_client_pin_t pin;
  memset(&pin, 0, sizeof pin);
  snprintf(pin.user_id, sizeof pin.user_id, "%s", FX_BOB);
  pin.pin.version = 3;
  memcpy(pin.pin.hash, head_hash[2], 32);
  memcpy(pin.pin.identity_key, k->bob_pk, 32);
  pin.pin.time = FX_NOW - 100;
  pin.pin.verified = 1;
  pin.nhistory = 1;
  pin.history[0].version = 1;
  memcpy(pin.history[0].identity_key, k->alice_pk[1], 32);
  c->pins = malloc(sizeof pin);
  if (!c->pins)
    die("out of memory");
  c->pins[0] = pin;
  c->npins = 1;
  OK(profile_save_pins(c));
  c->self = calloc(2, sizeof *c->self);
  if (!c->self)
    die("out of memory");
  for (int i = 0; i < 2; i++) {
    c->self[i].version = (uint64_t)i + 1;
    memcpy(c->self[i].hash, head_hash[i], 32);
    memcpy(c->self[i].identity_key, k->alice_pk[0], 32);
    c->self[i].time = FX_NOW - 4000 + 1000 * (uint64_t)i;
  }
  c->nself = 2;
  c->publish = malloc(links[1].body_len);
  if (!c->publish)
    die("out of memory");
  memcpy(c->publish, links[1].body, links[1].body_len);
  c->publish_len = links[1].body_len;
  OK(profile_save_self(c));

  const char *names[] = {"profile", "trust", "pins", "self"};
  char rdir[sizeof dir + 16];
  snprintf(rdir, sizeof rdir, "%s/r", dir);
  if (mkdir(rdir, 0700) != 0)
    die("mkdir");
  for (uint8_t i = 0; i < 4; i++) {
    char *text, *path;
    size_t len;
    OK(pfile_read(c->dir, names[i], &text, &len, c->mac_key));
    OK(pfile_write(rdir, names[i], text, len, fx_mac_key));
    free(text);
    path = pfile_path(rdir, names[i]);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
      die("cannot read a profile file back");
    buf_t b = {0};
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
      put(&b, chunk, n);
    fclose(f);
    seed("profile", names[i], &i, 1, &b);
    unlink(path);
    free(path);
    free(b.p);
  }
  rmdir(rdir);
  /* The profile directory itself: remove what create wrote. */
  const char *all[] = {"profile", "trust", "pins", "self", "keys"};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    char *path = pfile_path(pdir, all[i]);
    if (path)
      unlink(path);
    free(path);
  }
  rmdir(pdir);
  rmdir(dir);
  synod_client_close(c);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_gen_seeds OUTDIR\n");
    return 2;
  }
  outdir = argv[1];
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
    die("cannot make OUTDIR");
  const fx_keys_t *k = fx_keys();
  make_chain(k);
  for (int i = 0; i < NLINKS; i++)
    OK(synod_announce_hash(head_hash[i], links[i].body, links[i].body_len));
  buf_t frames = {0};
  seeds_announce();
  seeds_statement(k); /* before the quorum's: it builds the proofs */
  seeds_quorum(k);
  seeds_session(k, &frames);
  seeds_proto(k, &frames);
  seeds_config();
  seeds_profile(k);
  free(frames.p);
  free(proof_lookup_b.p);
  free(proof_alice.p);
  for (int i = 0; i < NLINKS; i++) {
    synod_announcement_free(&links[i]);
    synod_signed_free(&csig[i]);
  }
  synod_announcement_free(&bob1);
  return 0;
}
