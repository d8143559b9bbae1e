/* Error records and the message formatter shared by the runtime's modules
 * (the runtime has no stdio). */
#ifndef PG_ERROR_H
#define PG_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "pico_gpt/status.h"

#define PG_ERROR_MESSAGE_SIZE 160

/* The last failure of an interpreter (and of the runtime that owns it). */
typedef struct pg_error {
  picogpt_status status;
  char message[PG_ERROR_MESSAGE_SIZE]; /* NUL-terminated, "" after success */
} pg_error;

/* printf subset: %s (const char *), %d (int), %u (unsigned), %z (size_t), %%. */
void pg_vformat(char *buf, size_t size, const char *fmt, va_list ap);
/* Records status and the formatted message; returns status, so a failing
 * function can end with `return pg_set_error(...)`. */
picogpt_status pg_set_error(pg_error *err, picogpt_status status, const char *fmt, ...);

static inline void pg_clear_error(pg_error *err) {
  err->status = PICOGPT_OK;
  err->message[0] = '\0';
}

#endif /* PG_ERROR_H */
