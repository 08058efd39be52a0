/*
 * User ids: "local@relay", the home relay being authoritative for local
 * names as a mail domain is (DESIGN.md section 2).
 *
 *   local  1..64 of [a-z0-9._-], not starting with '.', '-' or '_'
 *   relay  a relay name: 1..253 bytes of dot-separated labels, each 1..63 of
 *          [a-z0-9-], neither starting nor ending with '-'
 *
 * Only lowercase is accepted, so equal ids are equal byte strings and no
 * case-folding ambiguity can make two relays disagree about who is who.
 */
#ifndef SYNOD_USERID_H
#define SYNOD_USERID_H

#include <stddef.h>

#include "synod/err.h"

#define SYNOD_USERID_LOCAL_MAX 64
#define SYNOD_RELAY_NAME_MAX   253
#define SYNOD_USERID_MAX       (SYNOD_USERID_LOCAL_MAX + 1 + SYNOD_RELAY_NAME_MAX)

/* 0 if name (NUL-terminated) is a valid local part, else SYNOD_EPARSE. */
int synod_userid_check_local(const char *name);

/* 0 if name is a valid relay name, else SYNOD_EPARSE. */
int synod_relay_name_check(const char *name);

/*
 * Checks id and, on success, points *relay into id at the relay name and
 * sets *local_len to the length of the local part. id stays owned by the
 * caller; *relay is valid as long as id is. Either output may be NULL.
 */
int synod_userid_parse(const char *id, size_t *local_len, const char **relay);

#endif
