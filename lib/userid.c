/* User id and relay name syntax; see synod/userid.h. */
#include "synod/userid.h"

#include <string.h>

static int is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int check_local(const char *s, size_t n) {
  if (n == 0 || n > SYNOD_USERID_LOCAL_MAX || !is_lower_alnum(s[0]))
    return SYNOD_EPARSE;
  for (size_t i = 0; i < n; i++)
    if (!is_lower_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
      return SYNOD_EPARSE;
  return 0;
}

int synod_userid_check_local(const char *name) {
  return name ? check_local(name, strlen(name)) : SYNOD_EINVAL;
}

int synod_relay_name_check(const char *name) {
  if (!name)
    return SYNOD_EINVAL;
  size_t n = strlen(name), label = 0;
  if (n == 0 || n > SYNOD_RELAY_NAME_MAX)
    return SYNOD_EPARSE;
  for (size_t i = 0; i <= n; i++) {
    char c = name[i];
    if (c == '.' || c == '\0') {
      if (label == 0 || label > 63 || name[i - 1] == '-')
        return SYNOD_EPARSE;
      label = 0;
      continue;
    }
    if (!is_lower_alnum(c) && !(c == '-' && label > 0))
      return SYNOD_EPARSE;
    label++;
  }
  return 0;
}

int synod_userid_parse(const char *id, size_t *local_len, const char **relay) {
  if (!id)
    return SYNOD_EINVAL;
  if (strlen(id) > SYNOD_USERID_MAX)
    return SYNOD_EPARSE;
  const char *at = strchr(id, '@');
  if (!at || check_local(id, (size_t)(at - id)) != 0 ||
      synod_relay_name_check(at + 1) != 0)
    return SYNOD_EPARSE;
  if (local_len)
    *local_len = (size_t)(at - id);
  if (relay)
    *relay = at + 1;
  return 0;
}
