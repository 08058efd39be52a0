/*
 * The client profile (include/synod/client.h): the sealed keys, the text
 * files that say whom to trust, and their strict parsers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"
#include "synod/crypto.h"
#include "synod/keyfile.h"

#define KEYS_FILE  PROFILE_KEYS_FILE
#define KEYS_MAGIC "SYNODPK1"
#define KEYS_LEN                                                               \
  (8 + SYNOD_ED25519_SECRET_BYTES + SYNOD_X25519_BYTES + PFILE_MAC_KEY_BYTES)

/* --- small parsers -------------------------------------------------------- */

/* Splits the next space-separated token off *s (NULL when none). */
static char *token(char **s) {
  char *p = *s;
  if (!p || !*p)
    return NULL;
  char *sp = strchr(p, ' ');
  if (sp) {
    *sp = '\0';
    *s = sp + 1;
  } else {
    *s = p + strlen(p);
  }
  return p;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || strlen(s) > 20)
    return SYNOD_EPARSE;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || (p == s && *p == '0' && p[1]))
      return SYNOD_EPARSE;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return SYNOD_EPARSE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* A display name: 1..SYNOD_CLIENT_NAME_MAX bytes, no control characters,
 * no leading or trailing space. */
static int check_label(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > SYNOD_CLIENT_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
    return SYNOD_EINVAL;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return SYNOD_EINVAL;
  return 0;
}

/* "host:port" or "[v6]:port". */
static int parse_address(const char *a,
                         char host[static SYNOD_CLIENT_HOST_MAX + 1],
                         uint16_t *port) {
  const char *colon = a ? strrchr(a, ':') : NULL;
  if (!colon || colon == a)
    return SYNOD_EINVAL;
  const char *h = a;
  size_t hl = (size_t)(colon - a);
  if (a[0] == '[') {
    if (hl < 3 || a[hl - 1] != ']')
      return SYNOD_EINVAL;
    h++;
    hl -= 2;
  }
  if (hl > SYNOD_CLIENT_HOST_MAX)
    return SYNOD_EINVAL;
  for (size_t i = 0; i < hl; i++)
    if (h[i] <= ' ' || h[i] == 0x7f || h[i] == '[' || h[i] == ']')
      return SYNOD_EINVAL;
  uint64_t p;
  if (parse_u64(colon + 1, &p) != 0 || p == 0 || p > 65535)
    return SYNOD_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (uint16_t)p;
  return 0;
}

static void format_address(char *out, size_t n, const synod_client_relay_t *r) {
  snprintf(out, n, strchr(r->host, ':') ? "[%s]:%u" : "%s:%u", r->host,
           (unsigned)r->port);
}

/* --- files ---------------------------------------------------------------- */

static int save_text(synod_client_t *c, const char *name, sbuf_t *b) {
  int rc = b->failed ? SYNOD_ENOMEM
                     : pfile_write(c->dir, name, b->p ? b->p : "", b->len,
                                   c->mac_key);
  free(b->p);
  return rc;
}

static int save_profile(synod_client_t *c) {
  sbuf_t b = {0};
  sbuf_printf(&b, "synod-profile-v1\nuser %s\ndevice %u %s\ncreated %llu\n",
              c->user_id, (unsigned)c->device_id, c->device_name,
              (unsigned long long)c->created);
  return save_text(c, "profile", &b);
}

static int save_trust(synod_client_t *c) {
  sbuf_t b = {0};
  sbuf_printf(&b, "synod-trust-v1\nquorum %u\n", c->k);
  for (size_t i = 0; i < c->nrelays; i++) {
    const synod_client_relay_t *r = &c->relays[i];
    char addr[SYNOD_CLIENT_HOST_MAX + 16], kl[SYNOD_KEYFILE_TEXT_MAX];
    format_address(addr, sizeof addr, r);
    if (synod_keyfile_format_public(kl, sizeof kl, SYNOD_KEY_ED25519, r->key))
      b.failed = 1;
    sbuf_printf(&b, "relay %s %s %s %s\n", r->name, addr, kl, r->operator_name);
  }
  return save_text(c, "trust", &b);
}

int profile_save_pins(synod_client_t *c) {
  sbuf_t b = {0};
  sbuf_printf(&b, "synod-pins-v1\n");
  for (size_t i = 0; i < c->npins; i++) {
    const synod_client_pin_t *p = &c->pins[i];
    char h[65], k[65];
    hex_encode(h, p->pin.hash, 32);
    hex_encode(k, p->pin.identity_key, 32);
    sbuf_printf(&b, "pin %s %llu %s %s %llu %s\n", p->user_id,
                (unsigned long long)p->pin.version, h, k,
                (unsigned long long)p->pin.time,
                p->pin.verified ? "verified" : "unverified");
    for (size_t j = 0; j < p->nhistory; j++) {
      hex_encode(k, p->history[j].identity_key, 32);
      sbuf_printf(&b, "prev %llu %s\n",
                  (unsigned long long)p->history[j].version, k);
    }
  }
  return save_text(c, "pins", &b);
}

int profile_save_self(synod_client_t *c) {
  sbuf_t b = {0};
  sbuf_printf(&b, "synod-self-v1\n");
  for (size_t i = 0; i < c->nself; i++) {
    char h[65], k[65];
    hex_encode(h, c->self[i].hash, 32);
    hex_encode(k, c->self[i].identity_key, 32);
    sbuf_printf(&b, "link %llu %s %s %llu\n",
                (unsigned long long)c->self[i].version, h, k,
                (unsigned long long)c->self[i].time);
  }
  if (c->publish) {
    char *hx = malloc(2 * c->publish_len + 1);
    if (!hx) {
      b.failed = 1;
    } else {
      hex_encode(hx, c->publish, c->publish_len);
      sbuf_printf(&b, "publish %s\n", hx);
      free(hx);
    }
  }
  return save_text(c, "self", &b);
}

/* Calls line() for each line of the text after the header line, which
 * must be header. Every line ends with '\n'. */
static int each_line(char *text, const char *header,
                     int (*line)(synod_client_t *c, char *l),
                     synod_client_t *c) {
  size_t hl = strlen(header);
  if (strncmp(text, header, hl) != 0 || text[hl] != '\n')
    return SYNOD_EPARSE;
  char *p = text + hl + 1;
  while (*p) {
    char *nl = strchr(p, '\n');
    if (!nl)
      return SYNOD_EPARSE;
    *nl = '\0';
    int rc = line(c, p);
    if (rc != 0)
      return rc;
    p = nl + 1;
  }
  return 0;
}

static int profile_line(synod_client_t *c, char *l) {
  char *kw = token(&l);
  uint64_t v;
  if (kw && strcmp(kw, "user") == 0 && !c->user_id[0]) {
    if (synod_userid_parse(l, NULL, NULL) != 0)
      return SYNOD_EPARSE;
    snprintf(c->user_id, sizeof c->user_id, "%s", l);
  } else if (kw && strcmp(kw, "device") == 0 && !c->device_name[0]) {
    if (parse_u64(token(&l), &v) != 0 || v == 0 || v > UINT32_MAX ||
        check_label(l) != 0)
      return SYNOD_EPARSE;
    c->device_id = (uint32_t)v;
    snprintf(c->device_name, sizeof c->device_name, "%s", l);
  } else if (kw && strcmp(kw, "created") == 0 && !c->created) {
    if (parse_u64(l, &c->created) != 0 || c->created == 0)
      return SYNOD_EPARSE;
  } else {
    return SYNOD_EPARSE;
  }
  return 0;
}

static int add_relay(synod_client_t *c, const char *name, const char *address,
                     const char *key_line, const char *op) {
  synod_client_relay_t r;
  memset(&r, 0, sizeof r);
  if (!name || synod_relay_name_check(name) != 0 || check_label(op) != 0)
    return SYNOD_EINVAL;
  int rc = parse_address(address, r.host, &r.port);
  if (rc != 0)
    return rc;
  if (!key_line || synod_keyfile_parse_public(r.key, SYNOD_KEY_ED25519,
                                              key_line, strlen(key_line)) != 0)
    return SYNOD_EPARSE;
  for (size_t i = 0; i < c->nrelays; i++)
    if (strcmp(c->relays[i].name, name) == 0 ||
        memcmp(c->relays[i].key, r.key, sizeof r.key) == 0)
      return SYNOD_EEXIST;
  snprintf(r.name, sizeof r.name, "%s", name);
  snprintf(r.operator_name, sizeof r.operator_name, "%s", op);
  synod_client_relay_t *g = realloc(c->relays, (c->nrelays + 1) * sizeof *g);
  if (!g)
    return SYNOD_ENOMEM;
  c->relays = g;
  c->relays[c->nrelays++] = r;
  return 0;
}

static int trust_line(synod_client_t *c, char *l) {
  char *kw = token(&l);
  if (kw && strcmp(kw, "quorum") == 0 && c->k == 0) {
    uint64_t k;
    if (parse_u64(l, &k) != 0 || k < 2 || k > 1000)
      return SYNOD_EPARSE;
    c->k = (unsigned)k;
    return 0;
  }
  if (!kw || strcmp(kw, "relay") != 0)
    return SYNOD_EPARSE;
  char *name = token(&l), *addr = token(&l), *kt = token(&l), *kb = token(&l);
  if (!name || !addr || !kt || !kb)
    return SYNOD_EPARSE;
  char kl[SYNOD_KEYFILE_TEXT_MAX];
  if ((size_t)snprintf(kl, sizeof kl, "%s %s", kt, kb) >= sizeof kl)
    return SYNOD_EPARSE;
  int rc = add_relay(c, name, addr, kl, l);
  return rc == 0 ? 0 : SYNOD_EPARSE;
}

static int pins_line(synod_client_t *c, char *l) {
  char *kw = token(&l);
  uint64_t v;
  if (kw && strcmp(kw, "prev") == 0) {
    synod_client_pin_t *p = c->npins ? &c->pins[c->npins - 1] : NULL;
    char *ver = token(&l);
    if (!p || p->nhistory == SYNOD_CLIENT_HISTORY_MAX ||
        parse_u64(ver, &v) != 0 ||
        hex_decode(p->history[p->nhistory].identity_key, 32, l) != 0)
      return SYNOD_EPARSE;
    p->history[p->nhistory++].version = v;
    return 0;
  }
  if (!kw || strcmp(kw, "pin") != 0)
    return SYNOD_EPARSE;
  synod_client_pin_t p;
  memset(&p, 0, sizeof p);
  char *user = token(&l), *ver = token(&l), *h = token(&l), *k = token(&l),
       *t = token(&l);
  if (!user || synod_userid_parse(user, NULL, NULL) != 0 ||
      profile_pin_index(c, user) >= 0 || parse_u64(ver, &p.pin.version) != 0 ||
      p.pin.version == 0 || !h || hex_decode(p.pin.hash, 32, h) != 0 || !k ||
      hex_decode(p.pin.identity_key, 32, k) != 0 ||
      parse_u64(t, &p.pin.time) != 0)
    return SYNOD_EPARSE;
  if (strcmp(l, "verified") == 0)
    p.pin.verified = 1;
  else if (strcmp(l, "unverified") != 0)
    return SYNOD_EPARSE;
  snprintf(p.user_id, sizeof p.user_id, "%s", user);
  synod_client_pin_t *g = realloc(c->pins, (c->npins + 1) * sizeof *g);
  if (!g)
    return SYNOD_ENOMEM;
  c->pins = g;
  c->pins[c->npins++] = p;
  return 0;
}

static int self_line(synod_client_t *c, char *l) {
  char *kw = token(&l);
  if (kw && strcmp(kw, "publish") == 0 && !c->publish) {
    size_t n = strlen(l) / 2;
    if (n == 0 || !(c->publish = malloc(n)))
      return n ? SYNOD_ENOMEM : SYNOD_EPARSE;
    c->publish_len = n;
    return hex_decode(c->publish, n, l);
  }
  if (!kw || strcmp(kw, "link") != 0 || c->publish)
    return SYNOD_EPARSE;
  self_link_t s;
  char *ver = token(&l), *h = token(&l), *k = token(&l);
  if (parse_u64(ver, &s.version) != 0 || s.version == 0 ||
      (c->nself && s.version <= c->self[c->nself - 1].version) || !h ||
      hex_decode(s.hash, 32, h) != 0 || !k ||
      hex_decode(s.identity_key, 32, k) != 0 || parse_u64(l, &s.time) != 0)
    return SYNOD_EPARSE;
  self_link_t *g = realloc(c->self, (c->nself + 1) * sizeof *g);
  if (!g)
    return SYNOD_ENOMEM;
  c->self = g;
  c->self[c->nself++] = s;
  return 0;
}

int profile_parse(synod_client_t *c, const char *name, char *text) {
  static const struct {
    const char *name, *header;
    int (*line)(synod_client_t *c, char *l);
  } files[] = {
      {"profile", "synod-profile-v1", profile_line},
      {"trust", "synod-trust-v1", trust_line},
      {"pins", "synod-pins-v1", pins_line},
      {"self", "synod-self-v1", self_line},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    if (strcmp(name, files[i].name) == 0)
      return each_line(text, files[i].header, files[i].line, c);
  return SYNOD_EINVAL;
}

static int load_text(synod_client_t *c, const char *name) {
  char *text;
  size_t len;
  int rc = pfile_read(c->dir, name, &text, &len, c->mac_key);
  if (rc == 0)
    rc = profile_parse(c, name, text);
  free(text);
  return rc;
}

/* --- open and create ------------------------------------------------------ */

static char *resolve_dir(const char *dir) {
  if (dir && *dir)
    return strdup(dir);
  const char *h = getenv("SYNOD_HOME");
  if (h && *h)
    return strdup(h);
  h = getenv("HOME");
  if (!h || !*h)
    return NULL;
  return pfile_path(h, ".config/synod");
}

static int derive_public(synod_client_t *c) {
  if (synod_ed25519_public(c->identity_pk, c->identity_sk) != 0 ||
      synod_x25519_public(c->device_pk, c->device_sk) != 0)
    return SYNOD_ECRYPTO;
  return 0;
}

static int load_keys(synod_client_t *c, const char *pass, size_t passlen) {
  uint8_t payload[KEYS_LEN];
  size_t n = 0;
  char *path = pfile_path(c->dir, KEYS_FILE);
  if (!path)
    return SYNOD_ENOMEM;
  int rc = synod_keyfile_read_sealed(payload, sizeof payload, &n, path, pass,
                                     passlen);
  free(path);
  if (rc == 0 && (n != KEYS_LEN || memcmp(payload, KEYS_MAGIC, 8) != 0))
    rc = SYNOD_EPARSE;
  if (rc == 0) {
    memcpy(c->identity_sk, payload + 8, 32);
    memcpy(c->device_sk, payload + 40, 32);
    memcpy(c->mac_key, payload + 72, 32);
    rc = derive_public(c);
  }
  synod_wipe(payload, sizeof payload);
  return rc;
}

int synod_client_open(synod_client_t **out, const char *dir, const char *pass,
                      size_t passlen) {
  *out = NULL;
  if (!pass || passlen == 0)
    return SYNOD_EINVAL;
  synod_client_t *c = calloc(1, sizeof *c);
  if (!c)
    return SYNOD_ENOMEM;
  int rc = (c->dir = resolve_dir(dir)) ? 0 : SYNOD_EINVAL;
  if (rc == 0)
    rc = pfile_check_dir(c->dir);
  if (rc == 0)
    rc = load_keys(c, pass, passlen);
  if (rc == 0)
    rc = load_text(c, "profile");
  if (rc == 0 && (!c->user_id[0] || !c->device_name[0] || !c->created))
    rc = SYNOD_EPARSE;
  if (rc == 0)
    rc = load_text(c, "trust");
  if (rc == 0 && c->k == 0)
    rc = SYNOD_EPARSE;
  if (rc == 0)
    rc = load_text(c, "pins");
  if (rc == 0)
    rc = load_text(c, "self");
  if (rc == 0 && c->publish && c->nself == 0)
    rc = SYNOD_EPARSE;
  if (rc != 0) {
    synod_client_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

int synod_client_create(synod_client_t **out, const char *dir,
                        const synod_profile_params_t *p) {
  *out = NULL;
  const char *dev = p && p->device_name ? p->device_name : "device";
  if (!p || !p->user_id || synod_userid_parse(p->user_id, NULL, NULL) != 0 ||
      !p->pass || p->passlen == 0 || check_label(dev) != 0)
    return SYNOD_EINVAL;
  synod_client_t *c = calloc(1, sizeof *c);
  if (!c)
    return SYNOD_ENOMEM;
  int rc = (c->dir = resolve_dir(dir)) ? 0 : SYNOD_EINVAL;
  if (rc == 0 && mkdir(c->dir, 0700) != 0 && errno != EEXIST)
    rc = errno == ENOENT ? SYNOD_ENOENT : SYNOD_EIO;
  if (rc == 0)
    rc = pfile_check_dir(c->dir);
  snprintf(c->user_id, sizeof c->user_id, "%s", p->user_id);
  snprintf(c->device_name, sizeof c->device_name, "%s", dev);
  c->device_id = 1;
  c->created = (uint64_t)time(NULL);
  c->k = 2;
  uint8_t payload[KEYS_LEN];
  /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a binary magic */
  memcpy(payload, KEYS_MAGIC, 8);
  if (rc == 0 && (synod_ed25519_keygen(c->identity_pk, c->identity_sk) != 0 ||
                  synod_x25519_keygen(c->device_pk, c->device_sk) != 0 ||
                  synod_random(c->mac_key, sizeof c->mac_key) != 0))
    rc = SYNOD_ECRYPTO;
  if (rc == 0) {
    memcpy(payload + 8, c->identity_sk, 32);
    memcpy(payload + 40, c->device_sk, 32);
    memcpy(payload + 72, c->mac_key, 32);
    char *path = pfile_path(c->dir, KEYS_FILE);
    /* Without OVERWRITE: O_EXCL, an existing profile is SYNOD_EEXIST. */
    rc = path ? synod_keyfile_write_sealed(path, payload, sizeof payload,
                                           p->pass, p->passlen, p->kdf, 0)
              : SYNOD_ENOMEM;
    free(path);
  }
  synod_wipe(payload, sizeof payload);
  if (rc == 0)
    rc = save_profile(c);
  if (rc == 0)
    rc = save_trust(c);
  if (rc == 0)
    rc = profile_save_pins(c);
  if (rc == 0)
    rc = profile_save_self(c);
  if (rc != 0) {
    synod_client_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

void synod_client_close(synod_client_t *c) {
  if (!c)
    return;
  op_cancel_all(c);
  free(c->dir);
  free(c->relays);
  free(c->pins);
  free(c->self);
  free(c->publish);
  synod_wipe(c, sizeof *c);
  free(c);
}

/* --- accessors ------------------------------------------------------------ */

const char *synod_client_user_id(const synod_client_t *c) {
  return c->user_id;
}
const char *synod_client_dir(const synod_client_t *c) {
  return c->dir;
}
const char *synod_client_device_name(const synod_client_t *c) {
  return c->device_name;
}
uint64_t synod_client_created(const synod_client_t *c) {
  return c->created;
}

void synod_client_identity_key(const synod_client_t *c,
                               uint8_t pk[static SYNOD_ED25519_PUBLIC_BYTES]) {
  memcpy(pk, c->identity_pk, SYNOD_ED25519_PUBLIC_BYTES);
}

void synod_client_device_key(const synod_client_t *c,
                             uint8_t pk[static SYNOD_X25519_BYTES]) {
  memcpy(pk, c->device_pk, SYNOD_X25519_BYTES);
}

int profile_write_keys(const synod_client_t *c, const char *name,
                       const uint8_t identity_sk[static 32],
                       const uint8_t device_sk[static 32], const char *pass,
                       size_t passlen, const synod_keyfile_kdf_t *kdf) {
  if (!c || !pass || passlen == 0)
    return SYNOD_EINVAL;
  /* The passphrase must be the profile's: the keys are re-sealed with it,
   * so a typo here would change the passphrase silently. */
  uint8_t payload[KEYS_LEN];
  size_t n = 0;
  char *path = pfile_path(c->dir, KEYS_FILE);
  char *out = pfile_path(c->dir, name);
  int rc = path && out ? synod_keyfile_read_sealed(payload, sizeof payload, &n,
                                                   path, pass, passlen)
                       : SYNOD_ENOMEM;
  if (rc == 0 && (n != KEYS_LEN || memcmp(payload, KEYS_MAGIC, 8) != 0 ||
                  memcmp(payload + 8, c->identity_sk, 32) != 0 ||
                  memcmp(payload + 72, c->mac_key, 32) != 0))
    rc = SYNOD_EVERIFY;
  if (rc == 0) {
    memcpy(payload + 8, identity_sk, 32);
    memcpy(payload + 40, device_sk, 32);
    rc = synod_keyfile_write_sealed(out, payload, sizeof payload, pass, passlen,
                                    kdf, SYNOD_KEYFILE_OVERWRITE);
  }
  synod_wipe(payload, sizeof payload);
  free(path);
  free(out);
  return rc;
}

int synod_client_rotate_device_key(synod_client_t *c, const char *pass,
                                   size_t passlen,
                                   const synod_keyfile_kdf_t *kdf) {
  if (!c || !pass || passlen == 0)
    return SYNOD_EINVAL;
  if (c->ops)
    return SYNOD_EAGAIN; /* operations in flight use the keys */
  uint8_t nsk[SYNOD_X25519_BYTES], npk[SYNOD_X25519_BYTES];
  int rc = synod_x25519_keygen(npk, nsk) == 0 ? 0 : SYNOD_ECRYPTO;
  if (rc == 0)
    rc = profile_write_keys(c, PROFILE_KEYS_FILE, c->identity_sk, nsk, pass,
                            passlen, kdf);
  if (rc == 0) {
    memcpy(c->device_sk, nsk, sizeof nsk);
    memcpy(c->device_pk, npk, sizeof npk);
  }
  synod_wipe(nsk, sizeof nsk);
  return rc;
}

/* --- trust ---------------------------------------------------------------- */

int synod_client_trust_add(synod_client_t *c, const char *name,
                           const char *address, const char *key_line,
                           const char *operator_name) {
  if (c->ops)
    return SYNOD_EAGAIN; /* operations in flight index the trust set */
  int rc = add_relay(c, name, address, key_line, operator_name);
  if (rc != 0)
    return rc;
  rc = save_trust(c);
  if (rc != 0)
    c->nrelays--; /* memory and disk stay the same */
  return rc;
}

int synod_client_trust_remove(synod_client_t *c, const char *name) {
  if (c->ops)
    return SYNOD_EAGAIN; /* operations in flight index the trust set */
  for (size_t i = 0; name && i < c->nrelays; i++) {
    if (strcmp(c->relays[i].name, name) != 0)
      continue;
    synod_client_relay_t r = c->relays[i];
    memmove(&c->relays[i], &c->relays[i + 1], (c->nrelays - i - 1) * sizeof r);
    c->nrelays--;
    int rc = save_trust(c);
    if (rc != 0) {
      memmove(&c->relays[i + 1], &c->relays[i], (c->nrelays - i) * sizeof r);
      c->relays[i] = r;
      c->nrelays++;
    }
    return rc;
  }
  return SYNOD_ENOENT;
}

int synod_client_set_quorum(synod_client_t *c, unsigned k) {
  if (k < 2 || k > 1000)
    return SYNOD_EINVAL;
  unsigned old = c->k;
  c->k = k;
  int rc = save_trust(c);
  if (rc != 0)
    c->k = old;
  return rc;
}

const synod_client_relay_t *synod_client_trust(const synod_client_t *c,
                                               size_t *n, unsigned *k) {
  if (n)
    *n = c->nrelays;
  if (k)
    *k = c->k;
  return c->relays;
}

const synod_client_relay_t *profile_relay(const synod_client_t *c,
                                          const char *name) {
  for (size_t i = 0; i < c->nrelays; i++)
    if (strcmp(c->relays[i].name, name) == 0)
      return &c->relays[i];
  return NULL;
}

/* --- pins ----------------------------------------------------------------- */

long profile_pin_index(const synod_client_t *c, const char *user_id) {
  for (size_t i = 0; i < c->npins; i++)
    if (strcmp(c->pins[i].user_id, user_id) == 0)
      return (long)i;
  return -1;
}

int synod_client_pin_get(const synod_client_t *c, const char *user_id,
                         synod_client_pin_t *out) {
  long i = user_id ? profile_pin_index(c, user_id) : -1;
  if (i < 0)
    return SYNOD_ENOENT;
  *out = c->pins[i];
  return 0;
}

int synod_client_pin_set_verified(synod_client_t *c, const char *user_id) {
  long i = user_id ? profile_pin_index(c, user_id) : -1;
  if (i < 0)
    return SYNOD_ENOENT;
  int old = c->pins[i].pin.verified;
  c->pins[i].pin.verified = 1;
  int rc = profile_save_pins(c);
  if (rc != 0)
    c->pins[i].pin.verified = old;
  return rc;
}
