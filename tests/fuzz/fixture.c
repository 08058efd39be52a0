/* The fuzz targets' fixed keys and configuration; see fixture.h. */
#include "fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synod/keyfile.h"

const char *const fx_relay_name[FX_NRELAYS] = {"relay-a.test", "relay-b.test",
                                               "relay-c.test"};
const char *const fx_operator[FX_NRELAYS] = {"op-a", "op-b", "op-c"};
const uint8_t fx_mac_key[32] = {0x5a, 0x5a, 0x5a, 0x5a};

static void seed(uint8_t sk[static 32], uint8_t tag) {
  for (int i = 0; i < 32; i++)
    sk[i] = (uint8_t)(tag + i);
}

static void public_or_die(uint8_t pk[static 32], const uint8_t sk[static 32]) {
  if (synod_ed25519_public(pk, sk) != 0) {
    fprintf(stderr, "fixture: cannot derive a public key\n");
    abort();
  }
}

const fx_keys_t *fx_keys(void) {
  static fx_keys_t k;
  static int ready;
  if (ready)
    return &k;
  for (int i = 0; i < FX_NRELAYS; i++) {
    seed(k.relay_sk[i], (uint8_t)(0xa0 + i));
    public_or_die(k.relay_pk[i], k.relay_sk[i]);
    k.relay_keys[i].name = fx_relay_name[i];
    memcpy(k.relay_keys[i].key, k.relay_pk[i], 32);
    k.trust[i].name = fx_relay_name[i];
    k.trust[i].operator_name = fx_operator[i];
    memcpy(k.trust[i].key, k.relay_pk[i], 32);
  }
  for (int i = 0; i < 2; i++) {
    seed(k.alice_sk[i], (uint8_t)(0x10 + i));
    public_or_die(k.alice_pk[i], k.alice_sk[i]);
  }
  seed(k.bob_sk, 0x20);
  public_or_die(k.bob_pk, k.bob_sk);
  ready = 1;
  return &k;
}

const char *fx_relay_conf(void) {
  static char text[2048];
  if (text[0])
    return text;
  const fx_keys_t *k = fx_keys();
  char kb[SYNOD_KEYFILE_TEXT_MAX], kc[SYNOD_KEYFILE_TEXT_MAX];
  if (synod_keyfile_format_public(kb, sizeof kb, SYNOD_KEY_ED25519,
                                  k->relay_pk[1]) != 0 ||
      synod_keyfile_format_public(kc, sizeof kc, SYNOD_KEY_ED25519,
                                  k->relay_pk[2]) != 0)
    abort();
  snprintf(text, sizeof text,
           "[relay]\n"
           "name = relay-a.test\n"
           "operator = op-a\n"
           "listen = 127.0.0.1:7400\n"
           "key_file = relay.key\n"
           "[database]\n"
           "conninfo = dbname=synod\n"
           "[limits]\n"
           "max_frame_bytes = 262144\n"
           "max_envelope_bytes = 65536\n"
           "max_ttl = 7d\n"
           "default_ttl = 2d\n"
           "[peer \"relay-b.test\"]\n"
           "address = 127.0.0.1:7401\n"
           "key = %s\n"
           "operator = op-b\n"
           "[peer \"relay-c.test\"]\n"
           "address = 127.0.0.1:7402\n"
           "key = %s\n"
           "operator = op-c\n",
           kb, kc);
  return text;
}

uint8_t fx_byte(fx_in_t *in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

void fx_trace(const char *fmt, ...) {
  static int on = -1;
  if (on < 0)
    on = getenv("SYNOD_FUZZ_TRACE") != NULL;
  if (!on)
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
