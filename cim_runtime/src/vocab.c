/* Prompt text -> token ids. One implementation for the host CLI and the
 * firmware, so both feed the model the same tokens for the same prompt (their
 * generated text is compared bit for bit). */
#include <string.h>

#include "pico_gpt/runtime.h"

int32_t picogpt_encode(const picogpt_vocab *vocab, const char *text,
                       int32_t *ids, int32_t max_ids) {
  int32_t n = 0;
  const char *p = text;
  while (*p) {
    int32_t best = -1;
    size_t best_len = 0;
    for (int32_t t = 0; t < vocab->size; ++t) {
      const size_t len = (size_t)(vocab->offsets[t + 1] - vocab->offsets[t]);
      if (len > best_len &&
          strncmp(p, vocab->bytes + vocab->offsets[t], len) == 0) {
        best = t;
        best_len = len;
      }
    }
    if (best < 0 || n >= max_ids)
      return -1 - (int32_t)(p - text);
    ids[n++] = best;
    p += best_len;
  }
  return n;
}
