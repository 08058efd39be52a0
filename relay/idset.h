/*
 * A set of 16-byte message ids: open addressing with linear probing and
 * backward-shift deletion (no tombstones), grown at 1/2 load. Used for the
 * envelopes a session or link has sent and not yet seen acknowledged, so a
 * re-read of the queue never sends one twice.
 */
#ifndef SYNOD_RELAY_IDSET_H
#define SYNOD_RELAY_IDSET_H

#include <stddef.h>
#include <stdint.h>

#define IDSET_ID_BYTES 16

typedef struct idset {
  uint8_t (*slots)[IDSET_ID_BYTES];
  uint8_t *used;
  size_t cap; /* power of two, or 0 */
  size_t n;
} idset_t;

void idset_init(idset_t *s);
void idset_free(idset_t *s);

/* 1 if id is in s. */
int idset_has(const idset_t *s, const uint8_t id[static IDSET_ID_BYTES]);

/* Adds id: 1 added, 0 already present, SYNOD_ENOMEM. */
int idset_add(idset_t *s, const uint8_t id[static IDSET_ID_BYTES]);

/* Removes id: 1 removed, 0 absent. */
int idset_del(idset_t *s, const uint8_t id[static IDSET_ID_BYTES]);

/* Empties s, keeping its memory. */
void idset_clear(idset_t *s);

#endif
