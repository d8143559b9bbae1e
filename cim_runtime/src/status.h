/* Error reporting helpers shared by the runtime's modules. */
#ifndef PG_STATUS_H
#define PG_STATUS_H

#include <stdarg.h>
#include <stddef.h>

#include "pico_gpt/runtime.h"

/* printf subset: %s (const char *), %d (int), %u (unsigned), %z (size_t), %%. */
void pg_vformat(char *buf, size_t size, const char *fmt, va_list ap);
picogpt_status pg_set_error(picogpt_error *err, picogpt_status status, const char *fmt, ...);

#endif /* PG_STATUS_H */
