/* libFuzzer target for the model reader, validator, kernel prepare and
 * planner (and one invoke of whatever loads), with and without tile memory: any byte
 * string must give a status, never a crash, leak or out-of-bounds access (ASan/UBSan).
 *
 *   fuzz_model -max_total_time=60 CORPUS_DIR SEED_DIR... */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interpreter.h"

#define FUZZ_ARENA_BYTES (1024u * 1024u) /* the seed models fit with tile memory too */
static _Alignas(16) uint8_t g_arena[FUZZ_ARENA_BYTES];
static _Alignas(16) uint8_t g_model[2u * 1024u * 1024u];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > sizeof g_model) return 0;
  memcpy(g_model, data, size); /* aligned, like an embedded model array */
  pg_interpreter it;
  /* Half the inputs with the CIM HAL's tile memory (on a VNNI CPU: the emulated cells). */
  picogpt_options options = {0};
  options.cim_tile_memory = (int32_t)(size & 1u);
  if (pg_interpreter_init(&it, g_model, size, g_arena, sizeof g_arena, &options) != PICOGPT_OK) {
    if (it.error.message[0] == '\0') abort(); /* every failure must explain itself */
    return 0;
  }
  /* Deterministic inputs; int32 inputs get small values (token ids, positions). */
  for (int i = 0; i < it.num_inputs; ++i) {
    pg_tensor *t = pg_interpreter_input(&it, i);
    if (t->type == PG_INT32) {
      for (int32_t k = 0; k < t->num_elements; ++k) ((int32_t *)t->data)[k] = k % 3;
    } else if (t->type == PG_FLOAT32) {
      for (int32_t k = 0; k < t->num_elements; ++k) ((float *)t->data)[k] = (float)(k % 7) - 3.f;
    } else {
      memset(t->data, 0x11, t->bytes);
    }
  }
  pg_interpreter_invoke(&it);
  return 0;
}
