/* PicoGPT token API over the generic interpreter: binds the exporter's
 * signature (docs/model_signature.md), keeps the KV cache in place, samples.
 *
 * KV-cache model: the cache inputs are graph inputs, which the interpreter
 * plans for the whole graph and never reuses, so the cache lives
 * in the input tensors themselves. After each invoke the new K row / V column
 * is copied into position `pos` (no requantization: the exporter ties their
 * scales). Nothing else is copied.
 * Full-window model: the `tokens` input holds the context; positions after the
 * last token are causally invisible, so they are left as they are. */
#include <string.h>

#include "pico_gpt/runtime.h"
#include "status.h"

static picogpt_status fail(picogpt_runtime *rt, picogpt_status st, const char *fmt,
                           const char *detail, int a, int b) {
  return pg_set_error(&rt->error, st, fmt, detail, a, b);
}

static int shape_is(const picogpt_tensor *t, int type, int rank, int32_t d0, int32_t d1,
                    int32_t d2) {
  const int32_t want[3] = {d0, d1, d2};
  if (t == NULL || t->type != type || t->rank != rank) return 0;
  for (int i = 0; i < rank; ++i) {
    if (t->dims[i] != want[i]) return 0;
  }
  return 1;
}

static picogpt_status bind_signature(picogpt_runtime *rt) {
  picogpt_interpreter *it = &rt->interp;
  picogpt_tensor *logits = picogpt_interpreter_output(it, 0);
  if (logits == NULL || logits->type != PICOGPT_INT8 || !logits->has_quantization) {
    return fail(rt, PICOGPT_ERR_SIGNATURE, "%s", "output 0 must be int8 logits", 0, 0);
  }
  rt->logits_out = logits;
  rt->logits_scale = logits->scale;
  rt->logits_zero_point = logits->zero_point;
  if (it->num_inputs == 1) {
    /* Full-window model: tokens [1, T] -> logits [1, T, V]. */
    picogpt_tensor *tokens = picogpt_interpreter_input(it, 0);
    if (tokens == NULL || tokens->type != PICOGPT_INT32 || tokens->rank != 2 ||
        tokens->dims[0] != 1 || logits->rank != 3 || logits->dims[1] != tokens->dims[1] ||
        it->num_outputs != 1) {
      return fail(rt, PICOGPT_ERR_SIGNATURE, "%s",
                  "full model needs tokens int32 [1,T] in and logits int8 [1,T,V] out", 0, 0);
    }
    rt->use_kv_cache = 0;
    rt->tokens_in = tokens;
    rt->block_size = tokens->dims[1];
    rt->vocab_size = logits->dims[2];
    rt->n_layer = 0;
  } else {
    /* Step model: token, pos, (k_cache_i, v_cache_i)* -> logits, (k_new_i, v_new_i)*. */
    const int32_t n_layer = (it->num_inputs - 2) / 2;
    picogpt_tensor *k0 = picogpt_interpreter_input(it, 2);
    if (it->num_inputs < 4 || it->num_inputs % 2 != 0 || n_layer > PICOGPT_MAX_LAYERS ||
        it->num_outputs != 1 + 2 * n_layer || logits->rank != 2 || logits->dims[0] != 1 ||
        k0 == NULL || k0->rank != 3) {
      return fail(rt, PICOGPT_ERR_SIGNATURE, "%s (%d inputs, %d outputs)",
                  "step model needs token, pos, k/v caches in and logits, k/v rows out",
                  (int)it->num_inputs, (int)it->num_outputs);
    }
    rt->use_kv_cache = 1;
    rt->n_layer = n_layer;
    rt->n_head = k0->dims[0];
    rt->block_size = k0->dims[1];
    rt->head_size = k0->dims[2];
    rt->vocab_size = logits->dims[1];
    rt->token_in = picogpt_interpreter_input(it, 0);
    rt->pos_in = picogpt_interpreter_input(it, 1);
    if (!shape_is(rt->token_in, PICOGPT_INT32, 1, 1, 0, 0) ||
        !shape_is(rt->pos_in, PICOGPT_INT32, 1, 1, 0, 0)) {
      return fail(rt, PICOGPT_ERR_SIGNATURE, "%s", "inputs 0/1 must be int32 [1] token and pos",
                  0, 0);
    }
    const int32_t H = rt->n_head, T = rt->block_size, D = rt->head_size;
    for (int32_t l = 0; l < n_layer; ++l) {
      rt->k_cache[l] = picogpt_interpreter_input(it, 2 + 2 * l);
      rt->v_cache[l] = picogpt_interpreter_input(it, 3 + 2 * l);
      rt->k_new[l] = picogpt_interpreter_output(it, 1 + 2 * l);
      rt->v_new[l] = picogpt_interpreter_output(it, 2 + 2 * l);
      if (!shape_is(rt->k_cache[l], PICOGPT_INT8, 3, H, T, D) ||
          !shape_is(rt->v_cache[l], PICOGPT_INT8, 3, H, D, T) ||
          !shape_is(rt->k_new[l], PICOGPT_INT8, 3, H, 1, D) ||
          !shape_is(rt->v_new[l], PICOGPT_INT8, 3, H, D, 1)) {
        return fail(rt, PICOGPT_ERR_SIGNATURE, "%s %d", "cache tensor shapes wrong in layer",
                    (int)l, 0);
      }
      if (rt->k_cache[l]->scale != rt->k_new[l]->scale ||
          rt->k_cache[l]->zero_point != rt->k_new[l]->zero_point ||
          rt->v_cache[l]->scale != rt->v_new[l]->scale ||
          rt->v_cache[l]->zero_point != rt->v_new[l]->zero_point) {
        return fail(rt, PICOGPT_ERR_SIGNATURE, "%s %d",
                    "cache and new-row quantization differ (the cache would drift) in layer",
                    (int)l, 0);
      }
    }
  }
  if (rt->vocab_size < 1 || rt->vocab_size > PICOGPT_MAX_VOCAB || rt->block_size < 1 ||
      rt->block_size > PICOGPT_MAX_CONTEXT) {
    return fail(rt, PICOGPT_ERR_SIGNATURE, "%s (vocab %d, block_size %d)",
                "vocabulary or context larger than the runtime's buffers", (int)rt->vocab_size,
                (int)rt->block_size);
  }
  return PICOGPT_OK;
}

picogpt_status picogpt_init(picogpt_runtime *rt, const void *model, size_t model_size,
                            void *arena, size_t arena_size) {
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  memset(rt, 0, sizeof *rt);
  picogpt_status st = picogpt_interpreter_init(&rt->interp, model, model_size, arena, arena_size);
  if (st != PICOGPT_OK) {
    rt->error = rt->interp.error;
    return st;
  }
  st = bind_signature(rt);
  if (st != PICOGPT_OK) return st;
  return picogpt_reset(rt);
}

picogpt_status picogpt_reset(picogpt_runtime *rt) {
  if (rt == NULL || rt->logits_out == NULL) return PICOGPT_ERR_ARGUMENT;
  rt->position = 0;
  rt->logits = NULL;
  memset(&rt->stats, 0, sizeof rt->stats);
  /* Stale cache rows are masked inside the model; the zero point keeps them tidy. */
  for (int32_t l = 0; l < rt->n_layer; ++l) {
    memset(rt->k_cache[l]->data, (int)rt->k_cache[l]->zero_point, rt->k_cache[l]->bytes);
    memset(rt->v_cache[l]->data, (int)rt->v_cache[l]->zero_point, rt->v_cache[l]->bytes);
  }
  if (rt->tokens_in != NULL) memset(rt->tokens_in->data, 0, rt->tokens_in->bytes);
  rt->error.status = PICOGPT_OK;
  rt->error.message[0] = '\0';
  return PICOGPT_OK;
}

picogpt_status picogpt_step(picogpt_runtime *rt, int32_t token, const int8_t **logits) {
  if (rt == NULL || rt->logits_out == NULL) return PICOGPT_ERR_ARGUMENT;
  if (token < 0 || token >= rt->vocab_size) {
    return fail(rt, PICOGPT_ERR_TOKEN_RANGE, "%stoken %d outside the vocabulary [0, %d)", "",
                (int)token, (int)rt->vocab_size);
  }
  if (rt->position >= rt->block_size) {
    return fail(rt, PICOGPT_ERR_CONTEXT_FULL,
                "%scontext full: position %d reached block_size %d (reset or crop)", "",
                (int)rt->position, (int)rt->block_size);
  }
  const int32_t pos = rt->position;
  cim_hal_counters before, after;
  cim_hal_get_counters(&before);
  if (rt->use_kv_cache) {
    *(int32_t *)rt->token_in->data = token;
    *(int32_t *)rt->pos_in->data = pos;
  } else {
    ((int32_t *)rt->tokens_in->data)[pos] = token;
  }
  const picogpt_status st = picogpt_interpreter_invoke(&rt->interp);
  if (st != PICOGPT_OK) {
    rt->error = rt->interp.error;
    return st;
  }
  if (rt->use_kv_cache) {
    const int32_t H = rt->n_head, T = rt->block_size, D = rt->head_size;
    for (int32_t l = 0; l < rt->n_layer; ++l) {
      int8_t *k = (int8_t *)rt->k_cache[l]->data, *v = (int8_t *)rt->v_cache[l]->data;
      const int8_t *kn = (const int8_t *)rt->k_new[l]->data;
      const int8_t *vn = (const int8_t *)rt->v_new[l]->data;
      for (int32_t h = 0; h < H; ++h) {
        memcpy(k + ((intptr_t)h * T + pos) * D, kn + (intptr_t)h * D, (size_t)D);
        for (int32_t d = 0; d < D; ++d) v[((intptr_t)h * D + d) * T + pos] = vn[h * D + d];
      }
    }
    rt->logits = (const int8_t *)rt->logits_out->data;
  } else {
    rt->logits = (const int8_t *)rt->logits_out->data + (intptr_t)pos * rt->vocab_size;
  }
  cim_hal_get_counters(&after);
  rt->stats.steps += 1;
  rt->stats.cim.calls += after.calls - before.calls;
  rt->stats.cim.macs += after.macs - before.macs;
  rt->context[pos] = token;
  rt->position = pos + 1;
  if (logits != NULL) *logits = rt->logits;
  return PICOGPT_OK;
}

/* Feeds tokens[0..n) from position 0 (n <= block_size). */
static picogpt_status refill(picogpt_runtime *rt, const int32_t *tokens, int32_t n) {
  const picogpt_stats saved = rt->stats;
  picogpt_reset(rt);
  rt->stats = saved;
  for (int32_t i = 0; i < n; ++i) {
    const picogpt_status st = picogpt_step(rt, tokens[i], NULL);
    if (st != PICOGPT_OK) return st;
  }
  return PICOGPT_OK;
}

picogpt_status picogpt_generate(picogpt_runtime *rt, const int32_t *prompt, int32_t prompt_len,
                                int32_t max_new_tokens, const picogpt_sampling *sampling,
                                picogpt_token_callback callback, void *user, int32_t *out,
                                int32_t *n_out) {
  if (n_out != NULL) *n_out = 0;
  if (rt == NULL || rt->logits_out == NULL) return PICOGPT_ERR_ARGUMENT;
  if (prompt == NULL || prompt_len < 1 || max_new_tokens < 0) {
    return fail(rt, PICOGPT_ERR_ARGUMENT, "%sgenerate needs a prompt of >= 1 token (got %d)", "",
                (int)prompt_len, 0);
  }
  picogpt_reset(rt);
  const int32_t T = rt->block_size;
  const int32_t start = prompt_len > T ? prompt_len - T : 0;
  picogpt_status st = refill(rt, prompt + start, prompt_len - start);
  if (st != PICOGPT_OK) return st;
  picogpt_rng rng;
  picogpt_rng_seed(&rng, sampling ? sampling->seed : 0);
  for (int32_t i = 0; i < max_new_tokens; ++i) {
    const int32_t token = picogpt_sample(rt->logits, rt->vocab_size, rt->logits_scale, sampling,
                                         &rng, rt->sample_scratch);
    if (out != NULL) out[i] = token;
    if (n_out != NULL) *n_out = i + 1;
    if (callback != NULL && callback(user, token, rt->position)) break;
    if (i + 1 == max_new_tokens) break;
    if (rt->position == T) {
      /* Crop to the last T tokens (the new one included) and refill. */
      int32_t window[PICOGPT_MAX_CONTEXT];
      memcpy(window, rt->context + 1, sizeof(int32_t) * (size_t)(T - 1));
      window[T - 1] = token;
      st = refill(rt, window, T);
    } else {
      st = picogpt_step(rt, token, NULL);
    }
    if (st != PICOGPT_OK) return st;
  }
  return PICOGPT_OK;
}

const char *picogpt_last_error(const picogpt_runtime *rt) {
  return rt ? rt->error.message : "runtime is NULL";
}
