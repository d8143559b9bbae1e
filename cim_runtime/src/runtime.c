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

#include "cim_map.h"
#include "cim_nonideal.h"
#include "runtime_internal.h"

_Static_assert(sizeof(pg_runtime) <= sizeof(picogpt_runtime),
               "PICOGPT_RUNTIME_BYTES (pico_gpt/runtime.h) is too small for pg_runtime");
_Static_assert(sizeof(picogpt_runtime) - sizeof(pg_runtime) < 256,
               "PICOGPT_RUNTIME_BYTES (pico_gpt/runtime.h) wastes RAM: shrink it to pg_runtime");
_Static_assert(_Alignof(pg_runtime) <= _Alignof(picogpt_runtime),
               "picogpt_runtime is less aligned than pg_runtime");

static int shape_is(const pg_tensor *t, int type, int rank, int32_t d0, int32_t d1, int32_t d2) {
  const int32_t want[3] = {d0, d1, d2};
  if (t == NULL || t->type != type || t->rank != rank) return 0;
  for (int i = 0; i < rank; ++i) {
    if (t->dims[i] != want[i]) return 0;
  }
  return 1;
}

/* Attention reads only the cache positions that hold data (0 .. pos - 1): the products whose
 * right operand is a cache input get bound to it->live_positions, which step() sets. Exact,
 * because reset() fills the caches with their zero points and step() fills them in order
 * (kernels/matmul.c explains why the skipped positions add nothing). */
static void bind_attention_to_cache(pg_interpreter *it, int32_t block_size) {
  for (int32_t n = 0; n < it->num_nodes; ++n) {
    pg_node *node = &it->nodes[n];
    if (node->num_inputs < 2) continue;
    for (int32_t i = 2; i < it->num_inputs; ++i) {
      /* Inputs 2, 4, ... are K caches [H, T, D]; 3, 5, ... V caches [H, D, T]. */
      if (node->inputs[1] == it->inputs[i]) {
        pg_batch_matmul_bind_cache(node, i % 2 == 0, block_size);
      }
    }
  }
}

static picogpt_status bind_signature(pg_runtime *rt) {
  pg_interpreter *it = &rt->interp;
  picogpt_model_info *info = &rt->info;
  pg_tensor *logits = pg_interpreter_output(it, 0);
  if (logits == NULL || logits->type != PG_INT8 || !logits->has_quantization) {
    return pg_fail(it, PICOGPT_ERR_SIGNATURE, "output 0 must be int8 logits");
  }
  rt->logits_out = logits;
  info->logits_scale = logits->scale;
  info->logits_zero_point = logits->zero_point;
  if (it->num_inputs == 1) {
    /* Full-window model: tokens [1, T] -> logits [1, T, V]. */
    pg_tensor *tokens = pg_interpreter_input(it, 0);
    if (tokens == NULL || tokens->type != PG_INT32 || tokens->rank != 2 ||
        tokens->dims[0] != 1 || logits->rank != 3 || logits->dims[1] != tokens->dims[1] ||
        it->num_outputs != 1) {
      return pg_fail(it, PICOGPT_ERR_SIGNATURE,
                     "full model needs tokens int32 [1,T] in and logits int8 [1,T,V] out");
    }
    info->use_kv_cache = 0;
    rt->tokens_in = tokens;
    info->block_size = tokens->dims[1];
    info->vocab_size = logits->dims[2];
    rt->n_layer = 0;
  } else {
    /* Step model: token, pos, (k_cache_i, v_cache_i)* -> logits, (k_new_i, v_new_i)*. */
    const int32_t n_layer = (it->num_inputs - 2) / 2;
    pg_tensor *k0 = pg_interpreter_input(it, 2);
    if (it->num_inputs < 4 || it->num_inputs % 2 != 0 || n_layer > PICOGPT_MAX_LAYERS ||
        it->num_outputs != 1 + 2 * n_layer || logits->rank != 2 || logits->dims[0] != 1 ||
        k0 == NULL || k0->rank != 3) {
      return pg_fail(it, PICOGPT_ERR_SIGNATURE,
                     "step model needs token, pos, k/v caches in and logits, k/v rows out "
                     "(%d inputs, %d outputs)",
                     (int)it->num_inputs, (int)it->num_outputs);
    }
    info->use_kv_cache = 1;
    rt->n_layer = n_layer;
    rt->n_head = k0->dims[0];
    info->block_size = k0->dims[1];
    rt->head_size = k0->dims[2];
    info->vocab_size = logits->dims[1];
    rt->token_in = pg_interpreter_input(it, 0);
    rt->pos_in = pg_interpreter_input(it, 1);
    if (!shape_is(rt->token_in, PG_INT32, 1, 1, 0, 0) ||
        !shape_is(rt->pos_in, PG_INT32, 1, 1, 0, 0)) {
      return pg_fail(it, PICOGPT_ERR_SIGNATURE, "inputs 0/1 must be int32 [1] token and pos");
    }
    const int32_t H = rt->n_head, T = info->block_size, D = rt->head_size;
    for (int32_t l = 0; l < n_layer; ++l) {
      rt->k_cache[l] = pg_interpreter_input(it, 2 + 2 * l);
      rt->v_cache[l] = pg_interpreter_input(it, 3 + 2 * l);
      rt->k_new[l] = pg_interpreter_output(it, 1 + 2 * l);
      rt->v_new[l] = pg_interpreter_output(it, 2 + 2 * l);
      if (!shape_is(rt->k_cache[l], PG_INT8, 3, H, T, D) ||
          !shape_is(rt->v_cache[l], PG_INT8, 3, H, D, T) ||
          !shape_is(rt->k_new[l], PG_INT8, 3, H, 1, D) ||
          !shape_is(rt->v_new[l], PG_INT8, 3, H, D, 1)) {
        return pg_fail(it, PICOGPT_ERR_SIGNATURE, "cache tensor shapes wrong in layer %d",
                       (int)l);
      }
      if (rt->k_cache[l]->scale != rt->k_new[l]->scale ||
          rt->k_cache[l]->zero_point != rt->k_new[l]->zero_point ||
          rt->v_cache[l]->scale != rt->v_new[l]->scale ||
          rt->v_cache[l]->zero_point != rt->v_new[l]->zero_point) {
        return pg_fail(it, PICOGPT_ERR_SIGNATURE,
                       "cache and new-row quantization differ (the cache would drift) in layer %d",
                       (int)l);
      }
      info->kv_cache_bytes += rt->k_cache[l]->bytes + rt->v_cache[l]->bytes;
    }
    bind_attention_to_cache(it, T);
  }
  if (info->vocab_size < 1 || info->vocab_size > PICOGPT_MAX_VOCAB || info->block_size < 1 ||
      info->block_size > PICOGPT_MAX_CONTEXT) {
    return pg_fail(it, PICOGPT_ERR_SIGNATURE,
                   "vocabulary or context larger than the runtime's buffers (vocab %d, "
                   "block_size %d)",
                   (int)info->vocab_size, (int)info->block_size);
  }
  return PICOGPT_OK;
}

picogpt_status picogpt_init(picogpt_runtime *runtime, const void *model, size_t model_size,
                            void *arena, size_t arena_size) {
  return picogpt_init_with_options(runtime, model, model_size, arena, arena_size, NULL);
}

picogpt_status picogpt_init_with_options(picogpt_runtime *runtime, const void *model,
                                         size_t model_size, void *arena, size_t arena_size,
                                         const picogpt_options *options) {
  if (runtime == NULL) return PICOGPT_ERR_ARGUMENT;
  pg_runtime *rt = pg_runtime_of(runtime);
  memset(rt, 0, sizeof *rt);
  picogpt_status st =
      pg_interpreter_init(&rt->interp, model, model_size, arena, arena_size, options);
  rt->info.arena_needed = rt->interp.arena_needed;
  rt->info.arena_needed_exact = rt->interp.arena_needed_exact;
  if (st != PICOGPT_OK) return st;
  rt->info.arena_used = rt->interp.arena_used;
  rt->info.activation_bytes = rt->interp.activation_bytes;
  rt->info.persistent_bytes = rt->interp.persistent_bytes;
  st = bind_signature(rt);
  if (st != PICOGPT_OK) {
    rt->logits_out = NULL; /* not a usable PicoGPT: step/reset/generate refuse */
    return st;
  }
  return picogpt_reset(runtime);
}

/* Forgets the context; the counters are the caller's business (a refill is part of the same
 * generation). */
static void clear_context(pg_runtime *rt) {
  rt->position = 0;
  rt->logits = NULL;
  /* Cache rows past the context must hold the zero point after every reset and refill: the
   * live-position products count on them being exact zeros (README "Live positions only"),
   * and TFLite Micro and tf_model/export/tflite_step.py see them that way too. */
  for (int32_t l = 0; l < rt->n_layer; ++l) {
    memset(rt->k_cache[l]->data, (int)rt->k_cache[l]->zero_point, rt->k_cache[l]->bytes);
    memset(rt->v_cache[l]->data, (int)rt->v_cache[l]->zero_point, rt->v_cache[l]->bytes);
  }
  if (rt->tokens_in != NULL) memset(rt->tokens_in->data, 0, rt->tokens_in->bytes);
}

/* The runtime behind a public handle, or NULL when it is not a successfully initialized one. */
static pg_runtime *ready(picogpt_runtime *runtime) {
  if (runtime == NULL) return NULL;
  pg_runtime *rt = pg_runtime_of(runtime);
  return rt->logits_out != NULL ? rt : NULL;
}

picogpt_status picogpt_reset(picogpt_runtime *runtime) {
  pg_runtime *rt = ready(runtime);
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  clear_context(rt);
  memset(&rt->stats, 0, sizeof rt->stats);
  pg_clear_error(&rt->interp.error);
  return PICOGPT_OK;
}

static picogpt_status check_token(pg_runtime *rt, int32_t token) {
  if (token < 0 || token >= rt->info.vocab_size) {
    return pg_fail(&rt->interp, PICOGPT_ERR_TOKEN_RANGE, "token %d outside the vocabulary [0, %d)",
                   (int)token, (int)rt->info.vocab_size);
  }
  return PICOGPT_OK;
}

static picogpt_status step(pg_runtime *rt, int32_t token) {
  pg_interpreter *it = &rt->interp;
  const picogpt_model_info *info = &rt->info;
  picogpt_status st = check_token(rt, token);
  if (st != PICOGPT_OK) return st;
  if (rt->position >= info->block_size) {
    return pg_fail(it, PICOGPT_ERR_CONTEXT_FULL,
                   "context full: position %d reached block_size %d (reset or crop)",
                   (int)rt->position, (int)info->block_size);
  }
  const int32_t pos = rt->position;
  cim_hal_counters before, after;
  cim_hal_get_counters(it->cim.hal, &before);
  const uint64_t cpu_macs_before = it->cpu_macs;
  if (info->use_kv_cache) {
    *(int32_t *)rt->token_in->data = token;
    *(int32_t *)rt->pos_in->data = pos;
    it->live_positions = pos;
  } else {
    ((int32_t *)rt->tokens_in->data)[pos] = token;
  }
  st = pg_interpreter_invoke(it);
  if (st != PICOGPT_OK) return st;
  if (info->use_kv_cache) {
    const int32_t H = rt->n_head, T = info->block_size, D = rt->head_size;
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
    rt->logits = (const int8_t *)rt->logits_out->data + (intptr_t)pos * info->vocab_size;
  }
  cim_hal_get_counters(it->cim.hal, &after);
  picogpt_stats *stats = &rt->stats;
  stats->steps += 1;
  stats->cim.matvecs += after.matvecs - before.matvecs;
  stats->cim.macs += after.macs - before.macs;
  stats->cim.outputs += after.outputs - before.outputs;
  stats->cim.emulation_instructions +=
      after.emulation_instructions - before.emulation_instructions;
  stats->cpu_macs += it->cpu_macs - cpu_macs_before;
  rt->context[pos] = token;
  rt->position = pos + 1;
  return PICOGPT_OK;
}

picogpt_status picogpt_step(picogpt_runtime *runtime, int32_t token, const int8_t **logits) {
  pg_runtime *rt = ready(runtime);
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  const picogpt_status st = step(rt, token);
  if (st == PICOGPT_OK && logits != NULL) *logits = rt->logits;
  return st;
}

/* Clears the context and feeds tokens[0..n) from position 0 (1 <= n <= block_size); tokens
 * may be rt->context itself (token i is written to context[i] after it was read). The step
 * model runs them one by one. The full-window model needs one invoke, for the last: its rows
 * are independent, so that invoke also leaves the logits of every earlier position in
 * logits_out, bit-identical to a row-by-row run. */
static picogpt_status refill(pg_runtime *rt, const int32_t *tokens, int32_t n) {
  clear_context(rt);
  int32_t first = 0;
  if (!rt->info.use_kv_cache) {
    int32_t *slots = (int32_t *)rt->tokens_in->data;
    for (; first < n - 1; ++first) {
      const picogpt_status st = check_token(rt, tokens[first]);
      if (st != PICOGPT_OK) return st;
      slots[first] = rt->context[first] = tokens[first];
    }
    rt->position = first;
  }
  for (int32_t i = first; i < n; ++i) {
    const picogpt_status st = step(rt, tokens[i]);
    if (st != PICOGPT_OK) return st;
  }
  return PICOGPT_OK;
}

picogpt_window picogpt_default_window(int32_t block_size) {
  picogpt_window w = {PICOGPT_WINDOW_SHIFT, block_size / 4};
  return w;
}

picogpt_status picogpt_check_window(picogpt_runtime *runtime, const picogpt_window *window) {
  pg_runtime *rt = ready(runtime);
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  if (window == NULL) return PICOGPT_OK;
  const int32_t T = rt->info.block_size;
  if (window->policy != PICOGPT_WINDOW_SHIFT && window->policy != PICOGPT_WINDOW_EXACT) {
    return pg_fail(&rt->interp, PICOGPT_ERR_ARGUMENT,
                   "unknown window policy %d: use PICOGPT_WINDOW_SHIFT (0) or "
                   "PICOGPT_WINDOW_EXACT (1)",
                   (int)window->policy);
  }
  if (window->keep < 0 || window->keep >= T) {
    return pg_fail(&rt->interp, PICOGPT_ERR_ARGUMENT,
                   "window keep %d is out of range: it must be in [0, %d] (below the model's "
                   "block_size %d)",
                   (int)window->keep, (int)(T - 1), (int)T);
  }
  return PICOGPT_OK;
}

/* Tokens kept besides the new one when the context is full; -1 after a bad window. */
static int32_t keep_of(picogpt_runtime *runtime, const picogpt_window *window) {
  if (picogpt_check_window(runtime, window) != PICOGPT_OK) return -1;
  const int32_t T = pg_runtime_of(runtime)->info.block_size;
  const picogpt_window w = window != NULL ? *window : picogpt_default_window(T);
  return w.policy == PICOGPT_WINDOW_EXACT ? T - 1 : w.keep;
}

/* Feeds one token after the context; when the context is full, refills the window with its
 * last `keep` tokens and the new one from position 0. */
static picogpt_status feed_one(pg_runtime *rt, int32_t token, int32_t keep) {
  const int32_t T = rt->info.block_size;
  if (rt->position < T) return step(rt, token);
  picogpt_status st = check_token(rt, token);
  if (st != PICOGPT_OK) return st;
  memmove(rt->context, rt->context + T - keep, sizeof(int32_t) * (size_t)keep);
  rt->context[keep] = token;
  return refill(rt, rt->context, keep + 1);
}

picogpt_status picogpt_feed(picogpt_runtime *runtime, const int32_t *tokens, int32_t n_tokens,
                            const picogpt_window *window, int8_t *logits) {
  pg_runtime *rt = ready(runtime);
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  const int32_t keep = keep_of(runtime, window);
  if (keep < 0) return PICOGPT_ERR_ARGUMENT;
  if (n_tokens < 0 || (tokens == NULL && n_tokens > 0)) {
    return pg_fail(&rt->interp, PICOGPT_ERR_ARGUMENT, "feed needs tokens (got %d)",
                   (int)n_tokens);
  }
  const size_t V = (size_t)rt->info.vocab_size;
  for (int32_t i = 0; i < n_tokens; ++i) {
    const picogpt_status st = feed_one(rt, tokens[i], keep);
    if (st != PICOGPT_OK) return st;
    if (logits != NULL) memcpy(logits + (size_t)i * V, rt->logits, V);
  }
  return PICOGPT_OK;
}

picogpt_status picogpt_score_windows(picogpt_runtime *runtime, const int32_t *windows,
                                     int32_t n_windows, int32_t window_len, int32_t first_row,
                                     int8_t *logits) {
  pg_runtime *rt = ready(runtime);
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  const int32_t T = rt->info.block_size;
  if (windows == NULL || logits == NULL || n_windows < 0 || window_len < 1 || window_len > T ||
      first_row < 0 || first_row >= window_len) {
    return pg_fail(&rt->interp, PICOGPT_ERR_ARGUMENT,
                   "score_windows needs windows and logits, 1 <= window_len <= block_size %d "
                   "and 0 <= first_row < window_len (got %d windows of %d, first_row %d)",
                   (int)T, (int)n_windows, (int)window_len, (int)first_row);
  }
  const size_t V = (size_t)rt->info.vocab_size, rows = (size_t)(window_len - first_row);
  for (int32_t w = 0; w < n_windows; ++w) {
    const int32_t *tokens = windows + (size_t)w * (size_t)window_len;
    int8_t *out = logits + (size_t)w * rows * V;
    picogpt_status st;
    if (!rt->info.use_kv_cache) { /* one invoke gives every row (see refill) */
      st = refill(rt, tokens, window_len);
      if (st != PICOGPT_OK) return st;
      memcpy(out, (const int8_t *)rt->logits_out->data + (size_t)first_row * V, rows * V);
      continue;
    }
    clear_context(rt);
    for (int32_t i = 0; i < window_len; ++i) {
      st = step(rt, tokens[i]);
      if (st != PICOGPT_OK) return st;
      if (i >= first_row) memcpy(out + (size_t)(i - first_row) * V, rt->logits, V);
    }
  }
  return PICOGPT_OK;
}

picogpt_status picogpt_generate(picogpt_runtime *runtime, const int32_t *prompt,
                                int32_t prompt_len, int32_t max_new_tokens,
                                const picogpt_sampling *sampling, const picogpt_window *window,
                                picogpt_token_callback callback, void *user, int32_t *out,
                                int32_t *n_out) {
  if (n_out != NULL) *n_out = 0;
  pg_runtime *rt = ready(runtime);
  if (rt == NULL) return PICOGPT_ERR_ARGUMENT;
  if (prompt == NULL || prompt_len < 1 || max_new_tokens < 0) {
    return pg_fail(&rt->interp, PICOGPT_ERR_ARGUMENT,
                   "generate needs a prompt of >= 1 token (got %d)", (int)prompt_len);
  }
  const int32_t keep = keep_of(runtime, window);
  if (keep < 0) return PICOGPT_ERR_ARGUMENT;
  picogpt_reset(runtime);
  const int32_t T = rt->info.block_size;
  const int32_t start = prompt_len > T ? prompt_len - T : 0;
  picogpt_status st = refill(rt, prompt + start, prompt_len - start);
  if (st != PICOGPT_OK) return st;
  picogpt_rng rng;
  picogpt_rng_seed(&rng, sampling ? sampling->seed : 0);
  int32_t exp_table[256];
  pg_sample_table(rt->info.logits_scale, sampling, exp_table);
  for (int32_t i = 0; i < max_new_tokens; ++i) {
    const int32_t token =
        pg_sample_tabulated(rt->logits, rt->info.vocab_size, sampling, exp_table, &rng,
                            rt->sample_scratch);
    if (out != NULL) out[i] = token;
    if (n_out != NULL) *n_out = i + 1;
    if (callback != NULL && callback(user, token, rt->position)) break;
    if (i + 1 == max_new_tokens) break;
    st = feed_one(rt, token, keep);
    if (st != PICOGPT_OK) return st;
  }
  return PICOGPT_OK;
}

const char *picogpt_last_error(const picogpt_runtime *runtime) {
  return runtime ? pg_runtime_of_const(runtime)->interp.error.message : "runtime is NULL";
}

const picogpt_model_info *picogpt_info(const picogpt_runtime *runtime) {
  return runtime ? &pg_runtime_of_const(runtime)->info : NULL;
}

int32_t picogpt_position(const picogpt_runtime *runtime) {
  return runtime ? pg_runtime_of_const(runtime)->position : 0;
}

const picogpt_stats *picogpt_get_stats(const picogpt_runtime *runtime) {
  return runtime ? &pg_runtime_of_const(runtime)->stats : NULL;
}

/* ---- the CIM mapping and its cost ------------------------------------------------------- */

static const pg_interpreter *ready_interpreter(const picogpt_runtime *runtime) {
  if (runtime == NULL) return NULL;
  const pg_runtime *rt = pg_runtime_of_const(runtime);
  return rt->logits_out != NULL ? &rt->interp : NULL;
}

const picogpt_cim_mapping *picogpt_cim_info(const picogpt_runtime *runtime) {
  const pg_interpreter *it = ready_interpreter(runtime);
  return it ? &it->cim.map : NULL;
}

picogpt_status picogpt_cim_layer_info(const picogpt_runtime *runtime, int32_t index,
                                      picogpt_cim_layer *layer) {
  const pg_interpreter *it = ready_interpreter(runtime);
  int32_t op_index = 0;
  const pg_cim_tiles *t = it && index >= 0 ? pg_cim_layer(it, index, &op_index) : NULL;
  if (t == NULL || layer == NULL) return PICOGPT_ERR_ARGUMENT;
  layer->op_index = op_index;
  layer->out_features = t->out_features;
  layer->in_features = t->in_features;
  layer->products = t->products;
  layer->row_tiles = t->row_tiles;
  layer->col_tiles = t->col_tiles;
  layer->first_tile = t->first_tile;
  return PICOGPT_OK;
}

picogpt_status picogpt_cim_peaks(picogpt_runtime *runtime, int32_t *peaks, int32_t n) {
  if (ready_interpreter(runtime) == NULL) return PICOGPT_ERR_ARGUMENT;
  pg_interpreter *it = &pg_runtime_of(runtime)->interp;
#if PICOGPT_CIM_NONIDEAL
  return pg_cim_sim_peaks(it, it->cim.sim, peaks, n);
#else
  (void)peaks, (void)n;
  return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                 "picogpt_cim_peaks: this build has no non-ideality simulation (host builds only)");
#endif
}

picogpt_status picogpt_cim_cost_of(const picogpt_runtime *runtime,
                                   const picogpt_cim_cost_params *params,
                                   uint64_t cpu_instructions_per_token, picogpt_cim_cost *cost) {
  const pg_interpreter *it = ready_interpreter(runtime);
  if (it == NULL || cost == NULL) return PICOGPT_ERR_ARGUMENT;
  return pg_cim_cost(it, params, cpu_instructions_per_token, cost);
}
