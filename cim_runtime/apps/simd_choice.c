/* The SIMD path a host app was asked for; see simd_choice.h. */
#include "simd_choice.h"

#include <stdio.h>
#include <stdlib.h>

#include "pico_gpt/runtime.h"

int apply_simd_choice(const char *value) {
  const char *source = "--simd ";
  if (value == NULL) {
    value = getenv("PICOGPT_SIMD");
    source = "PICOGPT_SIMD=";
    if (value == NULL || value[0] == '\0') return 0;
  }
  picogpt_simd path;
  if (picogpt_simd_parse(value, &path) != PICOGPT_OK) {
    fprintf(stderr, "error: %s%s: unknown SIMD path; expected auto, scalar, avx2 or avx512vnni\n",
            source, value);
    return 2;
  }
  if (picogpt_simd_select(path) != PICOGPT_OK) {
    fprintf(stderr, "error: %s%s: this CPU (or this build) cannot run it; it runs:", source,
            value);
    for (int p = 0; p < PICOGPT_SIMD_COUNT; ++p) {
      if (picogpt_simd_supported((picogpt_simd)p)) {
        fprintf(stderr, " %s", picogpt_simd_name((picogpt_simd)p));
      }
    }
    fprintf(stderr, " (or auto: the best of them)\n");
    return 2;
  }
  return 0;
}
