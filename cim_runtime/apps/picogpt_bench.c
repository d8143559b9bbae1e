/* picogpt_bench: per-token latency of the runtime on one model (driven by
 * bench/bench_runtime.py).
 *
 *   picogpt_bench MODEL.tflite [--steps N] [--simd auto|scalar|avx2|avx512vnni]
 *                 [--tile_memory on|off] [--simd_tables on|off]
 *
 * Decodes N tokens (token id i % vocab; the context is reset when it reaches
 * block_size, as a sampler would crop) after a warm-up pass, and prints one
 * line: "simd PATH steps N mean_ms X min_ms Y quiet_ms Q macs_per_step Z arena_bytes B
 * tile_memory_bytes T", where quiet_ms is the mean over positions of each position's best
 * time (see below) and T the part of the arena the CIM driver holds as tile memory
 * (picogpt_options.cim_tile_memory: on by default, as in the other host apps; so are
 * picogpt_options.simd_tables).
 * The SIMD path is the best this CPU runs, unless --simd (or the PICOGPT_SIMD
 * environment variable) forces one. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pico_gpt/runtime.h"
#include "model_file.h"
#include "simd_choice.h"

static _Alignas(16) uint8_t g_arena[8u * 1024u * 1024u];
static picogpt_runtime g_rt;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 1 for "on", 0 for "off"; otherwise -1 after printing what the option expects. */
static int on_off(const char *argv0, const char *option, const char *value) {
  if (!strcmp(value, "on")) return 1;
  if (!strcmp(value, "off")) return 0;
  fprintf(stderr, "%s: %s %s: expected on or off\n", argv0, option, value);
  return -1;
}

int main(int argc, char **argv) {
  static const char usage[] =
      "usage: %s MODEL.tflite [--steps N] [--simd auto|scalar|avx2|avx512vnni] "
      "[--tile_memory on|off] [--simd_tables on|off]\n";
  if (argc < 2) {
    fprintf(stderr, usage, argv[0]);
    return 2;
  }
  long steps = 256;
  const char *simd = NULL;
  int tile_memory = 1, simd_tables = 1;
  for (int i = 2; i < argc; i += 2) {
    char *end = NULL;
    if (i + 1 < argc && !strcmp(argv[i], "--steps")) {
      steps = strtol(argv[i + 1], &end, 10);
      if (*end != '\0' || steps < 1 || steps > 100000000) {
        fprintf(stderr, "%s: --steps %s: expected an integer in [1, 100000000]\n", argv[0],
                argv[i + 1]);
        return 2;
      }
    } else if (i + 1 < argc && !strcmp(argv[i], "--simd")) {
      simd = argv[i + 1];
    } else if (i + 1 < argc && !strcmp(argv[i], "--simd_tables")) {
      if ((simd_tables = on_off(argv[0], argv[i], argv[i + 1])) < 0) return 2;
    } else if (i + 1 < argc && !strcmp(argv[i], "--tile_memory")) {
      if ((tile_memory = on_off(argv[0], argv[i], argv[i + 1])) < 0) return 2;
    } else {
      fprintf(stderr, "%s: unexpected argument %s\n", argv[0], argv[i]);
      fprintf(stderr, usage, argv[0]);
      return 2;
    }
  }
  if (apply_simd_choice(simd) != 0) return 2;
  size_t n = 0;
  uint8_t *model = read_model_file(argv[1], &n);
  if (model == NULL) return 1;
  picogpt_options options = {0};
  options.cim_tile_memory = tile_memory;
  options.simd_tables = simd_tables;
  picogpt_status st =
      picogpt_init_with_options(&g_rt, model, n, g_arena, sizeof g_arena, &options);
  if (st != PICOGPT_OK) {
    fprintf(stderr, "error: %s\n", picogpt_last_error(&g_rt));
    return 1;
  }
  const picogpt_model_info *info = picogpt_info(&g_rt);
  /* Each position's best time over the measured pass: a step costs more the more positions
   * attention reads, and a busy machine preempts some steps, so the mean over positions of
   * these minima is the cost of a token on a quiet machine (needs steps >= block_size). */
  double *best_at = (double *)malloc(sizeof(double) * (size_t)info->block_size);
  if (best_at == NULL) return 1;
  for (int32_t p = 0; p < info->block_size; ++p) best_at[p] = 1e9;
  double total = 0.0, best = 1e9;
  uint64_t macs = 0, counted = 0;
  for (int pass = 0; pass < 2; ++pass) { /* pass 0 warms caches and branch predictors */
    picogpt_reset(&g_rt);
    for (long i = 0; i < steps; ++i) {
      if (picogpt_position(&g_rt) == info->block_size) picogpt_reset(&g_rt);
      const int32_t pos = picogpt_position(&g_rt);
      const double t0 = now_seconds();
      st = picogpt_step(&g_rt, (int32_t)(i % info->vocab_size), NULL);
      const double dt = now_seconds() - t0;
      if (st != PICOGPT_OK) {
        fprintf(stderr, "error: %s\n", picogpt_last_error(&g_rt));
        return 1;
      }
      if (pass == 1) {
        total += dt;
        if (dt < best) best = dt;
        if (dt < best_at[pos]) best_at[pos] = dt;
        ++counted;
      }
    }
    if (pass == 1) macs = picogpt_get_stats(&g_rt)->cim.macs;
  }
  double best_sum = 0.0;
  int32_t positions = 0;
  for (int32_t p = 0; p < info->block_size; ++p) {
    if (best_at[p] < 1e9) best_sum += best_at[p], ++positions;
  }
  const uint32_t steps_run = picogpt_get_stats(&g_rt)->steps;
  printf("simd %s steps %llu mean_ms %.4f min_ms %.4f quiet_ms %.4f macs_per_step %.0f "
         "arena_bytes %zu tile_memory_bytes %llu\n",
         picogpt_simd_name(picogpt_simd_active()), (unsigned long long)counted,
         1e3 * total / (double)counted, 1e3 * best, 1e3 * best_sum / (double)positions,
         (double)macs / (double)(steps_run ? steps_run : 1), info->arena_used,
         (unsigned long long)picogpt_cim_info(&g_rt)->tile_memory_bytes);
  free(best_at);
  free(model);
  return 0;
}
