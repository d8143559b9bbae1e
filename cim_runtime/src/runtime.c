/* PicoGPT token API over the generic interpreter (placeholder until the
 * exporter's signature is settled). */
#include <string.h>

#include "pico_gpt/runtime.h"

const char *picogpt_last_error(const picogpt_runtime *rt) {
  return rt ? rt->error.message : "runtime is NULL";
}
