/* Set of message ids; see idset.h. */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "synod/err.h"

/* Message ids are random (chosen by clients, but a client gains nothing by
 * colliding its own ids), so a few bytes of the id are a fine hash. */
static size_t slot_of(const uint8_t *id, size_t cap) {
  uint64_t h;
  memcpy(&h, id, sizeof h);
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return (size_t)h & (cap - 1);
}

void idset_init(idset_t *s) {
  memset(s, 0, sizeof *s);
}

void idset_free(idset_t *s) {
  free(s->slots);
  free(s->used);
  idset_init(s);
}

void idset_clear(idset_t *s) {
  if (s->cap)
    memset(s->used, 0, s->cap);
  s->n = 0;
}

static size_t find(const idset_t *s, const uint8_t *id) {
  size_t i = slot_of(id, s->cap);
  while (s->used[i] && memcmp(s->slots[i], id, IDSET_ID_BYTES) != 0)
    i = (i + 1) & (s->cap - 1);
  return i;
}

int idset_has(const idset_t *s, const uint8_t id[static IDSET_ID_BYTES]) {
  return s->cap && s->used[find(s, id)];
}

static int grow(idset_t *s) {
  size_t cap = s->cap ? s->cap * 2 : 64;
  idset_t t = {calloc(cap, IDSET_ID_BYTES), calloc(cap, 1), cap, 0};
  if (!t.slots || !t.used) {
    free(t.slots);
    free(t.used);
    return SYNOD_ENOMEM;
  }
  for (size_t i = 0; i < s->cap; i++) {
    if (s->used[i]) {
      size_t j = find(&t, s->slots[i]);
      memcpy(t.slots[j], s->slots[i], IDSET_ID_BYTES);
      t.used[j] = 1;
      t.n++;
    }
  }
  free(s->slots);
  free(s->used);
  *s = t;
  return 0;
}

int idset_add(idset_t *s, const uint8_t id[static IDSET_ID_BYTES]) {
  if ((s->n + 1) * 2 > s->cap) {
    int rc = grow(s);
    if (rc < 0)
      return rc;
  }
  size_t i = find(s, id);
  /* grow() replaced s->used: the analyzer takes it for the freed one. */
  if (s->used[i]) /* NOLINT(clang-analyzer-unix.Malloc) */
    return 0;
  memcpy(s->slots[i], id, IDSET_ID_BYTES);
  s->used[i] = 1;
  s->n++;
  return 1;
}

int idset_del(idset_t *s, const uint8_t id[static IDSET_ID_BYTES]) {
  if (!s->cap)
    return 0;
  size_t i = find(s, id);
  if (!s->used[i])
    return 0;
  s->used[i] = 0;
  s->n--;
  /* Backward shift: move later members of the probe run into the hole
   * when their home slot does not lie cyclically in (hole, j]. */
  size_t mask = s->cap - 1, hole = i, j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!s->used[j])
      break;
    size_t home = slot_of(s->slots[j], s->cap);
    int stays =
        hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays)
      continue;
    memcpy(s->slots[hole], s->slots[j], IDSET_ID_BYTES);
    s->used[hole] = 1;
    s->used[j] = 0;
    hole = j;
  }
  return 1;
}
