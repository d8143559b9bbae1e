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
picogpt_status pg_set_error_details(pg_error *err, picogpt_status status, const char *fmt, ...);
/* Records status with the message "<status name> (details: the build's arena probe ...)". */
picogpt_status pg_set_status(pg_error *err, picogpt_status status);

#ifdef PICOGPT_TERSE_ERRORS
/* The firmware (cim_runtime/firmware/CMakeLists.txt): its model and CIM device are fixed at
 * build time, when the arena probe runs the same init on them with every message, so the
 * firmware keeps the details only of the errors its run-time inputs can cause (arguments such
 * as the window, token range, full context, eval) and drops the texts of the model's and the
 * device's checks (~9 KB of flash). The dropped details stay an unevaluated operand of sizeof:
 * not in the build, yet used (no unused-variable warnings). */
static inline int pg_details_dropped(int unused, ...) { return unused; }
#define PG_DROP_DETAILS(...) ((void)sizeof(pg_details_dropped(0, __VA_ARGS__)))
#define PG_KEEPS_DETAILS(status)                                                   \
  ((status) == PICOGPT_ERR_ARGUMENT || (status) == PICOGPT_ERR_TOKEN_RANGE ||      \
   (status) == PICOGPT_ERR_CONTEXT_FULL || (status) == PICOGPT_ERR_EVAL)
#define pg_set_error(err, status, ...)                                             \
  (PG_KEEPS_DETAILS(status) ? pg_set_error_details((err), (status), __VA_ARGS__)   \
                            : (PG_DROP_DETAILS(__VA_ARGS__), pg_set_status((err), (status))))
#else
#define pg_set_error(err, status, ...) pg_set_error_details((err), (status), __VA_ARGS__)
#endif

static inline void pg_clear_error(pg_error *err) {
  err->status = PICOGPT_OK;
  err->message[0] = '\0';
}

#endif /* PG_ERROR_H */
