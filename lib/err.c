/* Error names and messages, generated from SYNOD_ERRNO_MAP. */
#include "synod/err.h"

const char *synod_strerror(int err) {
  switch (err) {
  case SYNOD_OK:
    return "success";
#define SYNOD_ERR_MSG_(name, value, msg)                                       \
  case SYNOD_##name:                                                           \
    return msg;
    SYNOD_ERRNO_MAP(SYNOD_ERR_MSG_)
#undef SYNOD_ERR_MSG_
  default:
    return "unknown error";
  }
}

const char *synod_err_name(int err) {
  switch (err) {
  case SYNOD_OK:
    return "OK";
#define SYNOD_ERR_NAME_(name, value, msg)                                      \
  case SYNOD_##name:                                                           \
    return #name;
    SYNOD_ERRNO_MAP(SYNOD_ERR_NAME_)
#undef SYNOD_ERR_NAME_
  default:
    return "EUNKNOWN";
  }
}

int synod_err_from_wire(unsigned int code) {
  switch (code) {
#define SYNOD_ERR_WIRE_(name, value, msg)                                      \
  case value:                                                                  \
    return SYNOD_##name;
    SYNOD_ERRNO_MAP(SYNOD_ERR_WIRE_)
#undef SYNOD_ERR_WIRE_
  default:
    return SYNOD_EPROTO;
  }
}
