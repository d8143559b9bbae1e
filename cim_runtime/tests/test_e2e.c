/* End-to-end: exported PicoGPT models (both kinds) against TFLite Micro's
 * logits over 128 decoding steps, bit for bit, through the public API.
 *
 * Usage: test_e2e DIR   (DIR from gen_e2e_golden.py: model_step.tflite,
 *                        model_full.tflite, e2e.golden) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pico_gpt/runtime.h"
#include "runtime_internal.h" /* the full-window test invokes the interpreter directly */
#include "test_util.h"

#define ARENA_BYTES (2u * 1024u * 1024u)
static _Alignas(16) uint8_t g_arena[ARENA_BYTES];
static _Alignas(16) uint8_t g_arena2[ARENA_BYTES];
static picogpt_runtime g_rt, g_rt2;

typedef struct golden {
  uint32_t n, vocab;
  const int32_t *tokens;
  const int8_t *step_logits; /* [n][vocab] */
  const int8_t *full_logits; /* [n][vocab] */
} golden;

static uint8_t *load_model(const char *dir, const char *name, size_t *size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return read_model(path, size);
}

static int first_mismatch(const int8_t *a, const int8_t *b, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return (int)i;
  }
  return -1;
}

/* Steps every golden token; logits must equal TFLM's at every position. */
static void check_decode(picogpt_runtime *rt, const golden *g, const int8_t *expect,
                         const char *kind) {
  int bad_steps = 0;
  for (uint32_t p = 0; p < g->n; ++p) {
    const int8_t *logits = NULL;
    const picogpt_status st = picogpt_step(rt, g->tokens[p], &logits);
    if (st != PICOGPT_OK) {
      CHECK(0, "%s step %u: %s: %s", kind, p, picogpt_status_name(st), picogpt_last_error(rt));
      return;
    }
    const int m = first_mismatch(logits, expect + (size_t)p * g->vocab, g->vocab);
    if (m >= 0 && bad_steps++ < 3) {
      printf("  %s step %u: logit %d is %d, TFLM %d\n", kind, p, m, logits[m],
             expect[(size_t)p * g->vocab + (uint32_t)m]);
    }
  }
  CHECK(bad_steps == 0, "%s model: %d of %u steps differ from TFLite Micro", kind, bad_steps,
        g->n);
  printf("%s model: %u steps compared with TFLite Micro, %d differ; CIM: %llu MACs/step\n", kind,
         g->n, bad_steps, (unsigned long long)(picogpt_get_stats(rt)->cim.macs /
                              (picogpt_get_stats(rt)->steps ? picogpt_get_stats(rt)->steps : 1)));
}

/* The window policy: bad windows are refused with a message; past block_size, feed refills
 * the last `keep` tokens plus the new one from position 0, so its logits equal a window of
 * those tokens scored from position 0 (score_windows), and exact is keep = block_size - 1.
 * past_the_window 0 skips the long text: a full-window model invokes the whole window per
 * token, which under the sanitizers takes minutes (tests/test_chip.py runs it unsanitized). */
static void test_window_policy(picogpt_runtime *rt, const golden *g, const char *kind,
                               int past_the_window) {
  const int32_t T = picogpt_info(rt)->block_size, V = picogpt_info(rt)->vocab_size;
  const picogpt_window bad[] = {{(picogpt_window_policy)2, 0}, {PICOGPT_WINDOW_SHIFT, -1},
                                {PICOGPT_WINDOW_SHIFT, T}, {PICOGPT_WINDOW_EXACT, T}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    const picogpt_status st = picogpt_check_window(rt, &bad[i]);
    CHECK(st == PICOGPT_ERR_ARGUMENT && strstr(picogpt_last_error(rt), i ? "keep" : "policy"),
          "%s: bad window %zu refused: %s", kind, i, picogpt_last_error(rt));
  }
  int32_t n_out = 0, out[1];
  picogpt_sampling greedy = {0.0f, 0, 1};
  CHECK(picogpt_generate(rt, g->tokens, 4, 1, &greedy, &bad[2], NULL, NULL, out, &n_out) ==
                PICOGPT_ERR_ARGUMENT && n_out == 0,
        "%s: generate refuses a bad window before running", kind);
  enum { EXTRA = 9 };
  static int32_t text[PICOGPT_MAX_CONTEXT + EXTRA];
  static int8_t streamed[(PICOGPT_MAX_CONTEXT + EXTRA) * PICOGPT_MAX_VOCAB];
  static int8_t scored[PICOGPT_MAX_CONTEXT * PICOGPT_MAX_VOCAB];
  const picogpt_window dflt = picogpt_default_window(T);
  CHECK(dflt.policy == PICOGPT_WINDOW_SHIFT && dflt.keep == T / 4 &&
            picogpt_check_window(rt, NULL) == PICOGPT_OK,
        "%s: the default window", kind);

  /* Within the window feed is plain stepping; score_windows writes rows from first_row. */
  picogpt_reset(rt);
  CHECK(picogpt_feed(rt, g->tokens, 8, NULL, streamed) == PICOGPT_OK &&
            picogpt_score_windows(rt, g->tokens, 1, 8, 3, scored) == PICOGPT_OK &&
            memcmp(streamed + 3 * (size_t)V, scored, 5 * (size_t)V) == 0,
        "%s: score_windows rows from first_row", kind);
  CHECK(picogpt_score_windows(rt, g->tokens, 1, T + 1, 0, scored) == PICOGPT_ERR_ARGUMENT &&
            picogpt_score_windows(rt, g->tokens, 1, 8, 8, scored) == PICOGPT_ERR_ARGUMENT,
        "%s: score_windows refuses a window past block_size or an empty row range", kind);
  if (!past_the_window) return;
  /* A text of T + 9 tokens (the golden tokens, then again from the start). */
  for (int32_t i = 0; i < T + EXTRA; ++i) text[i] = g->tokens[(uint32_t)i % g->n];
  const int32_t keeps[] = {0, 5, T - 1};
  for (int k = 0; k < 3; ++k) {
    const picogpt_window w = {k == 2 ? PICOGPT_WINDOW_EXACT : PICOGPT_WINDOW_SHIFT, keeps[k]};
    picogpt_reset(rt);
    picogpt_status st = picogpt_feed(rt, text, T + EXTRA, &w, streamed);
    CHECK(st == PICOGPT_OK, "%s: feed past the window: %s", kind, picogpt_last_error(rt));
    /* The last token arrived in the window that starts where its last refill put it. */
    const int32_t stride = T - keeps[k];
    const int32_t refills = (T + EXTRA - 1 - keeps[k]) / stride; /* windows after the first */
    const int32_t start = refills * stride, len = T + EXTRA - start;
    CHECK(picogpt_position(rt) == len, "%s: keep %d: position %d after feed, expected %d", kind,
          (int)keeps[k], (int)picogpt_position(rt), (int)len);
    st = picogpt_score_windows(rt, text + start, 1, len, 0, scored);
    CHECK(st == PICOGPT_OK && first_mismatch(streamed + (size_t)(T + EXTRA - 1) * (size_t)V,
                                             scored + (size_t)(len - 1) * (size_t)V,
                                             (uint32_t)V) < 0,
          "%s: keep %d: the last token's logits equal its window's", kind, (int)keeps[k]);
  }
}

static void test_step_model(const uint8_t *model, size_t size, const golden *g) {
  picogpt_status st = picogpt_init(&g_rt, model, size, g_arena, ARENA_BYTES);
  CHECK(st == PICOGPT_OK, "init step model: %s", picogpt_last_error(&g_rt));
  if (st != PICOGPT_OK) return;
  const picogpt_model_info *info = picogpt_info(&g_rt);
  CHECK(info->use_kv_cache == 1 && info->vocab_size == (int32_t)g->vocab, "step model binding");
  CHECK(check_exact_arena("step model", model, size, info->arena_used, g_arena2) == 0,
        "step model arena size exact");
  check_decode(&g_rt, g, g->step_logits, "step");
  const picogpt_stats *stats = picogpt_get_stats(&g_rt);
  CHECK(stats->cim.macs > 0 && stats->steps == g->n, "CIM counters count the work");

  /* Past block_size: an error, not a write outside the cache. */
  if (g->n == (uint32_t)info->block_size) {
    st = picogpt_step(&g_rt, 0, NULL);
    CHECK(st == PICOGPT_ERR_CONTEXT_FULL, "step past block_size gives CONTEXT_FULL, got %s",
          picogpt_status_name(st));
  }
  /* Reset restores position 0: the first steps repeat exactly. */
  picogpt_reset(&g_rt);
  for (uint32_t p = 0; p < 4 && p < g->n; ++p) {
    const int8_t *logits;
    st = picogpt_step(&g_rt, g->tokens[p], &logits);
    CHECK(st == PICOGPT_OK && first_mismatch(logits, g->step_logits + p * g->vocab, g->vocab) < 0,
          "after reset, step %u repeats", p);
  }
  /* Token ids out of range. */
  st = picogpt_step(&g_rt, (int32_t)g->vocab, NULL);
  CHECK(st == PICOGPT_ERR_TOKEN_RANGE && strstr(picogpt_last_error(&g_rt), "outside") != NULL,
        "token == vocab_size rejected: %s", picogpt_status_name(st));
  st = picogpt_step(&g_rt, -1, NULL);
  CHECK(st == PICOGPT_ERR_TOKEN_RANGE, "negative token rejected");

  /* Greedy generation picks TFLM's argmax (lowest id on ties) after the prompt. */
  const int32_t prompt_len = 16;
  int32_t out[4];
  int32_t n_out = 0;
  picogpt_sampling greedy = {0.0f, 0, 1};
  st = picogpt_generate(&g_rt, g->tokens, prompt_len, 1, &greedy, NULL, NULL, NULL, out, &n_out);
  const int8_t *row = g->step_logits + (size_t)(prompt_len - 1) * g->vocab;
  int32_t best = 0;
  for (uint32_t i = 1; i < g->vocab; ++i) {
    if (row[i] > row[best]) best = (int32_t)i;
  }
  CHECK(st == PICOGPT_OK && n_out == 1 && out[0] == best, "greedy token %d, TFLM argmax %d",
        n_out ? out[0] : -1, best);

  /* Sampling is deterministic per seed and the seed matters. */
  int32_t a[40], b[40], c[40];
  int32_t na, nb, nc;
  picogpt_sampling s1 = {0.8f, 10, 1234}, s2 = {0.8f, 10, 99};
  picogpt_generate(&g_rt, g->tokens, 8, 40, &s1, NULL, NULL, NULL, a, &na);
  picogpt_generate(&g_rt, g->tokens, 8, 40, &s1, NULL, NULL, NULL, b, &nb);
  picogpt_generate(&g_rt, g->tokens, 8, 40, &s2, NULL, NULL, NULL, c, &nc);
  CHECK(na == 40 && nb == 40 && memcmp(a, b, sizeof a) == 0, "same seed, same tokens");
  CHECK(nc == 40 && memcmp(a, c, sizeof a) != 0, "different seed, different tokens");

  /* Generation runs past block_size by cropping and refilling. */
  int32_t long_out[8];
  int32_t n_long = 0;
  st = picogpt_generate(&g_rt, g->tokens, (int32_t)g->n, 3, &greedy, NULL, NULL, NULL, long_out,
                        &n_long);
  CHECK(st == PICOGPT_OK && n_long == 3, "generation past block_size: %s",
        picogpt_last_error(&g_rt));
  test_window_policy(&g_rt, g, "step", 1);
}

static void test_full_model(const uint8_t *model, size_t size, const golden *g) {
  picogpt_status st = picogpt_init(&g_rt2, model, size, g_arena, ARENA_BYTES);
  CHECK(st == PICOGPT_OK, "init full model: %s", picogpt_last_error(&g_rt2));
  if (st != PICOGPT_OK) return;
  const picogpt_model_info *info = picogpt_info(&g_rt2);
  CHECK(info->use_kv_cache == 0 && info->vocab_size == (int32_t)g->vocab, "full model binding");
  CHECK(check_exact_arena("full model", model, size, info->arena_used, g_arena2) == 0,
        "full model arena size exact");
  /* Every position of a full window in one invoke (what the full model is for)... */
  pg_runtime *rt = pg_runtime_of(&g_rt2);
  int32_t *window = (int32_t *)rt->tokens_in->data;
  for (uint32_t p = 0; p < g->n; ++p) window[p] = g->tokens[p];
  st = pg_interpreter_invoke(&rt->interp);
  CHECK(st == PICOGPT_OK, "full window invoke: %s", rt->interp.error.message);
  int bad_rows = 0;
  for (uint32_t p = 0; p < g->n; ++p) {
    const int8_t *row = (const int8_t *)rt->logits_out->data + (size_t)p * g->vocab;
    bad_rows += first_mismatch(row, g->full_logits + (size_t)p * g->vocab, g->vocab) >= 0;
  }
  CHECK(bad_rows == 0, "full model: %d of %u positions differ from TFLite Micro", bad_rows, g->n);
  printf("full model: %u positions compared with TFLite Micro, %d differ\n", g->n, bad_rows);
  /* ...and token by token through the API (each step runs the whole window). */
  picogpt_reset(&g_rt2);
  golden first = *g;
  first.n = g->n < 12 ? g->n : 12;
  check_decode(&g_rt2, &first, g->full_logits, "full (step API)");
  test_window_policy(&g_rt2, g, "full", 0);
}

/* With tile memory and the SIMD tables (picogpt_options.cim_tile_memory and simd_tables, what
 * the apps use): on a CPU with AVX-512 VNNI the software HAL keeps the tiles as emulated cells
 * and the VNNI path reads those, and on x86-64 the kernels read the per-channel and cache
 * row-sum tables; the logits must stay TFLite Micro's on every path, through resets and the
 * window's refills. (test_decode runs the defaults: neither.) */
static void test_tile_memory(const uint8_t *model, size_t size, const golden *g, int step_model) {
  picogpt_options options = {0};
  options.cim_tile_memory = 1;
  options.simd_tables = 1;
  picogpt_runtime *rt = &g_rt2;
  picogpt_status st = picogpt_init_with_options(rt, model, size, g_arena2, ARENA_BYTES, &options);
  CHECK(st == PICOGPT_OK, "init with tile memory: %s", picogpt_last_error(rt));
  if (st != PICOGPT_OK) return;
  const uint64_t tile_bytes = picogpt_cim_info(rt)->tile_memory_bytes;
  CHECK((tile_bytes > 0) == picogpt_simd_supported(PICOGPT_SIMD_AVX512VNNI),
        "tile memory %llu bytes", (unsigned long long)tile_bytes);
  const char *kind = step_model ? "step, tile memory" : "full (step API), tile memory";
  golden first = *g;
  if (!step_model) first.n = g->n < 12 ? g->n : 12; /* each step runs the whole window */
  check_decode(rt, &first, step_model ? g->step_logits : g->full_logits, kind);
  if (step_model) test_window_policy(rt, g, kind, 1);
  printf("%s: %u steps equal TFLite Micro's (%llu bytes of cells)\n", kind, first.n,
         (unsigned long long)tile_bytes);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  if (test_select_simd() != 0) return 1;
  size_t gsize = 0, step_size = 0, full_size = 0;
  char path[1024];
  snprintf(path, sizeof path, "%s/e2e.golden", argv[1]);
  uint8_t *gbytes = read_file(path, &gsize);
  uint8_t *step = load_model(argv[1], "model_step.tflite", &step_size);
  uint8_t *full = load_model(argv[1], "model_full.tflite", &full_size);
  if (gbytes == NULL || step == NULL || full == NULL || gsize < 12 ||
      memcmp(gbytes, "PGE2", 4) != 0) {
    printf("FAIL cannot read the e2e golden data in %s\n", argv[1]);
    return 1;
  }
  golden g;
  memcpy(&g.n, gbytes + 4, 4);
  memcpy(&g.vocab, gbytes + 8, 4);
  const size_t expect = 12 + 4u * g.n + 2u * (size_t)g.n * g.vocab;
  if (gsize != expect || g.n < 1) {
    printf("FAIL e2e golden has %zu bytes, expected %zu\n", gsize, expect);
    return 1;
  }
  g.tokens = (const int32_t *)(const void *)(gbytes + 12);
  g.step_logits = (const int8_t *)(gbytes + 12 + 4u * g.n);
  g.full_logits = g.step_logits + (size_t)g.n * g.vocab;

  test_step_model(step, step_size, &g);
  test_full_model(full, full_size, &g);
  test_tile_memory(step, step_size, &g, 1);
  test_tile_memory(full, full_size, &g, 0);
  free(gbytes);
  free(step);
  free(full);
  return test_summary();
}
