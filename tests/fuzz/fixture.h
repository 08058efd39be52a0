/*
 * What the fuzz targets and the seed generator (gen_seeds.c) share: fixed
 * keys, names and a fixed clock, so that the seeds the generator signs are
 * statements the targets can verify. None of these keys protects anything.
 */
#ifndef SYNOD_FUZZ_FIXTURE_H
#define SYNOD_FUZZ_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "synod/crypto.h"
#include "synod/quorum.h"
#include "synod/statement.h"

/* The targets' clock: 2026-01-01T00:00:00Z. */
#define FX_NOW 1767225600u

#define FX_NRELAYS 3
/* relay-a.test, relay-b.test, relay-c.test of operators op-a, op-b, op-c. */
extern const char *const fx_relay_name[FX_NRELAYS];
extern const char *const fx_operator[FX_NRELAYS];

#define FX_ALICE "alice@relay-a.test"
#define FX_BOB   "bob@relay-b.test"

typedef struct fx_keys {
  uint8_t relay_sk[FX_NRELAYS][SYNOD_ED25519_SECRET_BYTES];
  uint8_t relay_pk[FX_NRELAYS][SYNOD_ED25519_PUBLIC_BYTES];
  /* alice's identity keys: [0] her first, [1] after a change. */
  uint8_t alice_sk[2][SYNOD_ED25519_SECRET_BYTES];
  uint8_t alice_pk[2][SYNOD_ED25519_PUBLIC_BYTES];
  uint8_t bob_sk[SYNOD_ED25519_SECRET_BYTES];
  uint8_t bob_pk[SYNOD_ED25519_PUBLIC_BYTES];
  synod_relay_key_t relay_keys[FX_NRELAYS];
  synod_trusted_relay_t trust[FX_NRELAYS];
} fx_keys_t;

/* The fixture's keys, derived once from fixed seeds; aborts on failure. */
const fx_keys_t *fx_keys(void);

/* relay-a.test's configuration (peers relay-b and relay-c with their
 * fixture keys), as INI text; static storage. */
const char *fx_relay_conf(void);

/* The profile files' MAC key. */
extern const uint8_t fx_mac_key[32];

/* A byte reader over fuzz input: takes from the front, 0 when empty. */
typedef struct fx_in {
  const uint8_t *p;
  size_t n;
} fx_in_t;
uint8_t fx_byte(fx_in_t *in);

/* Prints a line to stderr when SYNOD_FUZZ_TRACE is set in the environment:
 * what a target decided, to check that seeds reach the paths they mean. */
void fx_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
