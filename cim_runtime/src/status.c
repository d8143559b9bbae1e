/* Status names (the runtime's and the CIM HAL's) and the small message formatter (no stdio
 * in the runtime). */
#include <stdarg.h>

#include "error.h"
#include "pico_gpt/cim_hal.h"

const char *picogpt_status_name(picogpt_status status) {
  static const char *const names[PICOGPT_STATUS_COUNT] = {
      "PICOGPT_OK",
      "PICOGPT_ERR_ARGUMENT",
      "PICOGPT_ERR_MODEL_TRUNCATED",
      "PICOGPT_ERR_MODEL_CORRUPT",
      "PICOGPT_ERR_MODEL_VERSION",
      "PICOGPT_ERR_UNSUPPORTED_OP",
      "PICOGPT_ERR_UNSUPPORTED_TYPE",
      "PICOGPT_ERR_SHAPE",
      "PICOGPT_ERR_QUANTIZATION",
      "PICOGPT_ERR_SIGNATURE",
      "PICOGPT_ERR_ARENA_TOO_SMALL",
      "PICOGPT_ERR_TOKEN_RANGE",
      "PICOGPT_ERR_CONTEXT_FULL",
      "PICOGPT_ERR_EVAL",
      "PICOGPT_ERR_CIM_CAPACITY",
      "PICOGPT_ERR_CIM_HAL",
  };
  if ((unsigned)status >= PICOGPT_STATUS_COUNT) return "PICOGPT_ERR_UNKNOWN";
  return names[status];
}

const char *cim_hal_status_name(cim_hal_status status) {
  static const char *const names[] = {
      "CIM_HAL_OK",       "CIM_HAL_ERR_DEVICE",       "CIM_HAL_ERR_TILE",
      "CIM_HAL_ERR_SHAPE", "CIM_HAL_ERR_UNPROGRAMMED", "CIM_HAL_ERR_WRITE",
  };
  if ((unsigned)status >= sizeof names / sizeof names[0]) return "CIM_HAL_ERR_UNKNOWN";
  return names[status];
}

typedef struct out_buf {
  char *p;
  size_t left; /* room for characters, excluding the final NUL */
} out_buf;

static void put_char(out_buf *o, char c) {
  if (o->left > 0) {
    *o->p++ = c;
    o->left--;
  }
}

static void put_str(out_buf *o, const char *s) {
  if (s == NULL) s = "(null)";
  while (*s) put_char(o, *s++);
}

static void put_unsigned(out_buf *o, unsigned long long v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v != 0);
  while (n > 0) put_char(o, digits[--n]);
}

void pg_vformat(char *buf, size_t size, const char *fmt, va_list ap) {
  if (size == 0) return;
  out_buf o = {buf, size - 1};
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      put_char(&o, *fmt);
      continue;
    }
    ++fmt;
    switch (*fmt) {
      case 's':
        put_str(&o, va_arg(ap, const char *));
        break;
      case 'd': {
        long long v = va_arg(ap, int);
        if (v < 0) {
          put_char(&o, '-');
          put_unsigned(&o, (unsigned long long)(-v));
        } else {
          put_unsigned(&o, (unsigned long long)v);
        }
        break;
      }
      case 'u':
        put_unsigned(&o, va_arg(ap, unsigned));
        break;
      case 'z': /* %z: size_t */
        put_unsigned(&o, va_arg(ap, size_t));
        break;
      case '%':
        put_char(&o, '%');
        break;
      case '\0':
        --fmt;
        break;
      default:
        put_char(&o, '%');
        put_char(&o, *fmt);
        break;
    }
  }
  *o.p = '\0';
}

picogpt_status pg_set_error_details(pg_error *err, picogpt_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  err->status = status;
  pg_vformat(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return status;
}

picogpt_status pg_set_status(pg_error *err, picogpt_status status) {
  return pg_set_error_details(err, status, "%s (details: the build's arena probe prints them)",
                              picogpt_status_name(status));
}
