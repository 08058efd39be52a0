/*
 * The client profile loader (client/pfile.c, client/profile.c) on
 * arbitrary file contents: the MAC line check and the four files' parsers.
 *
 * Input: one byte choosing the file (mod 4: profile, trust, pins, self),
 * then the file's bytes. The bytes go through pfile_check() with the
 * fixture's MAC key; the text it returns, or the whole input when the MAC
 * does not match (a fuzzer cannot forge it, and the parsers must hold on
 * any text), goes through profile_parse().
 * Checks: pfile_check() accepts only a text followed by its MAC line;
 * what the parsers accept keeps their promises (a valid user id, device
 * id and name; k in 2..1000; distinct relay names and keys; distinct pins
 * of valid users; self link versions from 1, strictly increasing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "synod/userid.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_profile: %s\n", what);
    abort();
  }
}

static const char *const names[] = {"profile", "trust", "pins", "self"};

static void check_client(const synod_client_t *c, const char *name) {
  if (strcmp(name, "profile") == 0) {
    check(!c->user_id[0] || synod_userid_parse(c->user_id, NULL, NULL) == 0,
          "a malformed user id");
    check(!c->device_name[0] || c->device_id != 0, "a device without an id");
  } else if (strcmp(name, "trust") == 0) {
    check(c->k == 0 || (c->k >= 2 && c->k <= 1000), "a quorum out of range");
    for (size_t i = 0; i < c->nrelays; i++)
      for (size_t j = i + 1; j < c->nrelays; j++)
        check(strcmp(c->relays[i].name, c->relays[j].name) != 0 &&
                  memcmp(c->relays[i].key, c->relays[j].key, 32) != 0,
              "a relay twice in the trust set");
  } else if (strcmp(name, "pins") == 0) {
    for (size_t i = 0; i < c->npins; i++) {
      check(synod_userid_parse(c->pins[i].user_id, NULL, NULL) == 0 &&
                c->pins[i].pin.version >= 1 &&
                c->pins[i].nhistory <= SYNOD_CLIENT_HISTORY_MAX,
            "a bad pin");
      for (size_t j = i + 1; j < c->npins; j++)
        check(strcmp(c->pins[i].user_id, c->pins[j].user_id) != 0,
              "a user pinned twice");
    }
  } else {
    /* Versions only go up; a reset's link may skip some (it follows the
     * home relay's head, client/reset.c). */
    for (size_t i = 0; i < c->nself; i++)
      check(c->self[i].version >= 1 &&
                (i == 0 || c->self[i].version > c->self[i - 1].version),
            "self links out of order");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > PFILE_MAX)
    return 0;
  const char *name = names[data[0] % 4];
  size_t n = size - 1;
  char *buf = malloc(n + 1), *text = malloc(n + 1);
  synod_client_t *c = calloc(1, sizeof *c);
  if (!buf || !text || !c)
    abort();
  memcpy(buf, data + 1, n);
  buf[n] = '\0';
  memcpy(text, buf, n + 1);

  size_t len;
  int rc = pfile_check(name, buf, n, &len, fx_mac_key);
  fx_trace("profile %s: mac -> %s", name, synod_err_name(rc));
  if (rc == 0) {
    check(len < n && strlen(buf) == len,
          "a MAC-checked text of the wrong length");
    check(memcmp(text + len, "mac ", 4) == 0 &&
              (len == 0 || text[len - 1] == '\n'),
          "accepted without a MAC line after the text");
  } else {
    check(rc == SYNOD_EPARSE || rc == SYNOD_EVERIFY, "unexpected MAC error");
  }
  /* The text, whether or not the MAC matched; it must hold no NUL before
   * its end, as pfile_read() guarantees. */
  char *t = rc == 0 ? buf : text;
  if (rc == 0 || memchr(t, '\0', n) == NULL) {
    rc = profile_parse(c, name, t);
    fx_trace("profile %s: parse -> %s", name, synod_err_name(rc));
    check(rc == 0 || rc == SYNOD_EPARSE || rc == SYNOD_ENOMEM,
          "a parser failed with an unexpected code");
    check_client(c, name);
  }
  synod_client_close(c);
  free(buf);
  free(text);
  return 0;
}
