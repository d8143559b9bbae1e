/* Internal: the state behind the public, opaque picogpt_runtime (runtime.c
 * owns it; the tests read it to check the interpreter underneath). */
#ifndef PG_RUNTIME_INTERNAL_H
#define PG_RUNTIME_INTERNAL_H

#include "interpreter.h"
#include "pico_gpt/runtime.h"

typedef struct pg_runtime {
  pg_interpreter interp;    /* its error record is the runtime's (picogpt_last_error) */
  picogpt_model_info info;
  int32_t n_layer;          /* layers with a runtime-held KV cache (0: full-window model) */
  int32_t n_head;
  int32_t head_size;
  int32_t position;         /* tokens in the context (next position to fill) */
  const int8_t *logits;     /* (vocab_size,) of the last step, or NULL */
  /* Model tensors bound by signature (docs/model_signature.md). */
  pg_tensor *token_in;      /* step: int32 [1] */
  pg_tensor *pos_in;        /* step: int32 [1] */
  pg_tensor *tokens_in;     /* full: int32 [1, block_size], doubles as the context */
  pg_tensor *logits_out;    /* NULL until a successful init */
  pg_tensor *k_cache[PICOGPT_MAX_LAYERS]; /* int8 [n_head, block_size, head_size], persistent */
  pg_tensor *v_cache[PICOGPT_MAX_LAYERS]; /* int8 [n_head, head_size, block_size], persistent */
  pg_tensor *k_new[PICOGPT_MAX_LAYERS];   /* int8 [n_head, 1, head_size] */
  pg_tensor *v_new[PICOGPT_MAX_LAYERS];   /* int8 [n_head, head_size, 1] */
  int32_t context[PICOGPT_MAX_CONTEXT];   /* tokens at positions 0..position-1 */
  int32_t sample_scratch[PICOGPT_MAX_VOCAB]; /* sampler weights */
  picogpt_stats stats;
} pg_runtime;

/* picogpt_sample with the exponentials tabulated (sampler.c): generate() fills the table of
 * the 256 differences to the maximum logit once (a few hundred instructions each on rv32)
 * instead of computing one per logit per token; same tokens. */
void pg_sample_table(float logits_scale, const picogpt_sampling *sampling, int32_t table[256]);
int32_t pg_sample_tabulated(const int8_t *logits, int32_t vocab_size,
                            const picogpt_sampling *sampling, const int32_t table[256],
                            picogpt_rng *rng, int32_t *scratch);

/* The state inside the caller's storage. runtime.c checks at compile time that it
 * fits picogpt_runtime and needs no stricter alignment. */
static inline pg_runtime *pg_runtime_of(picogpt_runtime *rt) {
  return (pg_runtime *)(void *)rt->opaque.bytes;
}
static inline const pg_runtime *pg_runtime_of_const(const picogpt_runtime *rt) {
  return (const pg_runtime *)(const void *)rt->opaque.bytes;
}

#endif /* PG_RUNTIME_INTERNAL_H */
