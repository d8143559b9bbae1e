/* The public headers stand alone and show only the user's API.
 *
 * Built with include/ as its only project include directory, so a public header that
 * pulled in an internal one (src/) would not compile. Each name below is an internal one;
 * declaring it here would clash if the public headers exposed it. main() uses the API a
 * user has, which also links it against the runtime. */
#include "pico_gpt/runtime.h" /* first: it must not rely on anything included before it */

#include <stdio.h>
#include <string.h>

#include "pico_gpt/status.h"

typedef int pg_tensor, pg_interpreter, pg_node, pg_runtime, pg_error, pg_type, pg_arena;
typedef int pg_prepare_ctx, pg_kernel, pg_requant, pg_fb;
enum { PG_MAX_RANK, PG_FLOAT32, PG_INT32, PG_BOOL, PG_INT8, PG_ALIGN, PG_ERROR_MESSAGE_SIZE };
static int pg_interpreter_init, pg_interpreter_invoke, pg_set_error, pg_fail;

int main(void) {
  int failed = pg_interpreter_init + pg_interpreter_invoke + pg_set_error + pg_fail;
  const char *name = picogpt_status_name(PICOGPT_ERR_ARENA_TOO_SMALL);
  if (strcmp(name, "PICOGPT_ERR_ARENA_TOO_SMALL") != 0) {
    printf("FAIL picogpt_status_name\n");
    failed = 1;
  }
  /* A runtime that was never initialized refuses to run and says why not. */
  static picogpt_runtime rt;
  static _Alignas(16) uint8_t arena[64];
  if (picogpt_init(&rt, NULL, 0, arena, sizeof arena) != PICOGPT_ERR_ARGUMENT ||
      strstr(picogpt_last_error(&rt), "must not be NULL") == NULL ||
      picogpt_step(&rt, 0, NULL) != PICOGPT_ERR_ARGUMENT) {
    printf("FAIL init without a model: %s\n", picogpt_last_error(&rt));
    failed = 1;
  }
  printf("public headers: %s (picogpt_runtime is %u bytes)\n", failed ? "FAIL" : "ok",
         (unsigned)sizeof rt);
  return failed;
}
