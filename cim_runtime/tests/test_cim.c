/* The CIM accelerator model: the mapping of the reference model onto macros (exact tile
 * counts, three device shapes), a device too small for it (the error, and the CPU fallback
 * with identical logits), the HAL's protocol checks (directly and through the runtime), the
 * cost model's arithmetic against hand-computed numbers, attention touching only the live
 * cache positions, and the simulated non-idealities' options (exact when off, seeded,
 * bad values refused).
 *
 * Usage: test_cim MODEL.tflite   (the exported reference step model) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pico_gpt/runtime.h"
#include "runtime_internal.h" /* the runtime's HAL state, to break the protocol on purpose */
#include "test_util.h"

#define ARENA_BYTES (1024u * 1024u)
static _Alignas(16) uint8_t g_arena[ARENA_BYTES];
static _Alignas(16) uint8_t g_arena2[ARENA_BYTES];
static picogpt_runtime g_rt, g_rt2;

static picogpt_status init_on(picogpt_runtime *rt, uint8_t *arena, const uint8_t *model,
                              size_t size, int32_t macros, int32_t rows, int32_t cols,
                              int32_t fallback) {
  const picogpt_options options = {.cim_device = {macros, rows, cols, 0, 0},
                                   .cim_cpu_fallback = fallback};
  return picogpt_init_with_options(rt, model, size, arena, ARENA_BYTES, &options);
}

/* ---- the mapping of the reference model --------------------------------------------------- */

/* Per block: q, k, v (128 x 128), the attention projection (128 x 128), the MLP's c_fc
 * (256 x 128) and c_proj (128 x 256); then the tied logits (65 x 128). (N, K) per layer. */
static const int32_t kLayers[19][2] = {
    {128, 128}, {128, 128}, {128, 128}, {128, 128}, {256, 128}, {128, 256}, {128, 128},
    {128, 128}, {128, 128}, {128, 128}, {256, 128}, {128, 256}, {128, 128}, {128, 128},
    {128, 128}, {128, 128}, {256, 128}, {128, 256}, {65, 128}};

static void check_mapping(const uint8_t *model, size_t size, int32_t side_rows, int32_t side_cols,
                          int32_t want_macros) {
  picogpt_status st = init_on(&g_rt, g_arena, model, size, 64, side_rows, side_cols, 0);
  CHECK(st == PICOGPT_OK, "init on 64 macros of %d x %d: %s", (int)side_rows, (int)side_cols,
        picogpt_last_error(&g_rt));
  if (st != PICOGPT_OK) return;
  const picogpt_cim_mapping *map = picogpt_cim_info(&g_rt);
  CHECK(map->num_layers == 19 && map->layers_on_cpu == 0, "%d layers, %d on the CPU",
        (int)map->num_layers, (int)map->layers_on_cpu);
  CHECK(map->macros_needed == want_macros && map->macros_used == want_macros,
        "%d x %d: %d macros needed, %d used, expected %d", (int)side_rows, (int)side_cols,
        (int)map->macros_needed, (int)map->macros_used, (int)want_macros);
  CHECK(map->weights_on_macros == 401536 && map->macs_on_macros == 401536 &&
            map->macs_fc_on_cpu == 0,
        "weights %llu, MACs %llu on macros", (unsigned long long)map->weights_on_macros,
        (unsigned long long)map->macs_on_macros);
  /* Attention over a full context: q . K^T and p . V over 128 positions, the new row's two
   * products, 2 heads of 64, 3 layers. */
  CHECK(map->macs_batch_matmul == 3u * 2u * (128u * 64u + 64u + 64u * 128u + 64u),
        "BATCH_MATMUL MACs %llu", (unsigned long long)map->macs_batch_matmul);
  int32_t next_tile = 0;
  for (int32_t i = 0; i < 19; ++i) {
    picogpt_cim_layer layer;
    st = picogpt_cim_layer_info(&g_rt, i, &layer);
    const int32_t N = kLayers[i][0], K = kLayers[i][1];
    const int32_t row_tiles = (K + side_rows - 1) / side_rows;
    const int32_t col_tiles = (N + side_cols - 1) / side_cols;
    CHECK(st == PICOGPT_OK && layer.out_features == N && layer.in_features == K &&
              layer.row_tiles == row_tiles && layer.col_tiles == col_tiles &&
              layer.first_tile == next_tile && layer.products == 1,
          "%d x %d layer %d: %d x %d, tiles %d x %d from %d", (int)side_rows, (int)side_cols,
          (int)i, (int)layer.out_features, (int)layer.in_features, (int)layer.col_tiles,
          (int)layer.row_tiles, (int)layer.first_tile);
    next_tile += row_tiles * col_tiles;
  }
  picogpt_cim_layer layer;
  CHECK(picogpt_cim_layer_info(&g_rt, 19, &layer) == PICOGPT_ERR_ARGUMENT &&
            picogpt_cim_layer_info(&g_rt, -1, &layer) == PICOGPT_ERR_ARGUMENT,
        "layer index out of range rejected");
  printf("ok   mapping on %d x %d macros: %d macros, utilisation %.1f %%\n", (int)side_rows,
         (int)side_cols, (int)map->macros_used,
         100.0 * (double)map->weights_on_macros /
             ((double)map->macros_used * side_rows * side_cols));
}

/* ---- a device too small ------------------------------------------------------------------- */

static void check_too_small(const uint8_t *model, size_t size) {
  picogpt_status st = init_on(&g_rt, g_arena, model, size, 8, 128, 128, 0);
  const char *message = picogpt_last_error(&g_rt);
  CHECK(st == PICOGPT_ERR_CIM_CAPACITY && strstr(message, "needs 25 CIM macros") != NULL &&
            strstr(message, "has 8") != NULL && strstr(message, "cim_cpu_fallback") != NULL,
        "8 macros: %s '%s'", picogpt_status_name(st), message);
  CHECK(picogpt_step(&g_rt, 0, NULL) == PICOGPT_ERR_ARGUMENT, "a failed init cannot step");
  printf("ok   8 macros -> %s: %s\n", picogpt_status_name(st), message);

  /* With the fallback the layers that do not fit run on the CPU, with the same logits. */
  st = init_on(&g_rt, g_arena, model, size, 8, 128, 128, 1);
  CHECK(st == PICOGPT_OK, "8 macros with CPU fallback: %s", picogpt_last_error(&g_rt));
  if (st != PICOGPT_OK) return;
  const picogpt_cim_mapping *map = picogpt_cim_info(&g_rt);
  /* In order: block 0's six layers take the 8 macros; the other 13 layers do not fit. */
  CHECK(map->macros_used == 8 && map->macros_needed == 25 && map->layers_on_cpu == 13 &&
            map->macs_on_macros == 131072 && map->macs_fc_on_cpu == 401536 - 131072,
        "fallback mapping: %d used, %d on the CPU", (int)map->macros_used,
        (int)map->layers_on_cpu);
  st = init_on(&g_rt2, g_arena2, model, size, 0, 0, 0, 0);
  CHECK(st == PICOGPT_OK, "default device: %s", picogpt_last_error(&g_rt2));
  int differ = 0;
  for (int32_t p = 0; p < 20 && st == PICOGPT_OK; ++p) {
    const int8_t *a = NULL, *b = NULL;
    const int32_t token = (p * 7 + 3) % picogpt_info(&g_rt)->vocab_size;
    if (picogpt_step(&g_rt, token, &a) != PICOGPT_OK || picogpt_step(&g_rt2, token, &b) != PICOGPT_OK) {
      CHECK(0, "step %d failed", (int)p);
      return;
    }
    differ += memcmp(a, b, (size_t)picogpt_info(&g_rt)->vocab_size) != 0;
  }
  CHECK(differ == 0, "CPU fallback: %d of 20 steps differ from the all-on-macros run", differ);
  const picogpt_stats *s = picogpt_get_stats(&g_rt);
  CHECK(s->cim.macs == 20u * 131072u && s->cim.matvecs == 20u * 8u,
        "fallback counters: %llu MACs, %llu products on the macros",
        (unsigned long long)s->cim.macs, (unsigned long long)s->cim.matvecs);
  printf("ok   8 macros with CPU fallback: 13 layers on the CPU, logits equal\n");
}

/* ---- the HAL's protocol --------------------------------------------------------------------- */

static void check_hal_protocol(const uint8_t *model, size_t size) {
  const cim_hal_device device = {2, 128, 128, 8, 8};
  static _Alignas(16) uint8_t memory[4096];
  cim_hal *hal = NULL;
  CHECK(cim_hal_state_bytes(&device) > 0 && cim_hal_state_bytes(&device) <= sizeof memory,
        "state bytes %zu", cim_hal_state_bytes(&device));
  const cim_hal_device bad_devices[] = {
      {0, 128, 128, 8, 8}, {2, 0, 128, 8, 8}, {2, 128, 5000, 8, 8}, {2, 128, 128, 4, 8},
      {2, 128, 128, 8, 2}};
  for (size_t i = 0; i < sizeof bad_devices / sizeof bad_devices[0]; ++i) {
    CHECK(cim_hal_state_bytes(&bad_devices[i]) == 0 &&
              cim_hal_open(memory, &bad_devices[i], &hal) == CIM_HAL_ERR_DEVICE,
          "bad device %zu accepted", i);
  }
  CHECK(cim_hal_open(memory, &device, &hal) == CIM_HAL_OK, "open");
  static int8_t w[256 * 128];
  for (size_t i = 0; i < sizeof w; ++i) w[i] = (int8_t)((int)(i * 37 % 255) - 127);
  int8_t x[128];
  for (int i = 0; i < 128; ++i) x[i] = (int8_t)(i - 64);
  int32_t out[129];
  CHECK(cim_hal_matvec(hal, 0, x, 128, out, 128) == CIM_HAL_ERR_UNPROGRAMMED,
        "matvec on an unprogrammed tile");
  CHECK(cim_hal_program(hal, 2, w, 128, 128, 128, NULL) == CIM_HAL_ERR_TILE &&
            cim_hal_program(hal, -1, w, 128, 128, 128, NULL) == CIM_HAL_ERR_TILE,
        "program outside the macros");
  CHECK(cim_hal_program(hal, 0, w, 129, 128, 129, NULL) == CIM_HAL_ERR_SHAPE &&
            cim_hal_program(hal, 0, w, 128, 129, 128, NULL) == CIM_HAL_ERR_SHAPE &&
            cim_hal_program(hal, 0, w, 100, 10, 99, NULL) == CIM_HAL_ERR_SHAPE &&
            cim_hal_program(hal, 0, NULL, 8, 8, 8, NULL) == CIM_HAL_ERR_SHAPE &&
            cim_hal_program(hal, 0, w, 0, 8, 8, NULL) == CIM_HAL_ERR_SHAPE,
        "tile larger than a macro, stride below rows, no weights, empty tile");
  /* A 100 x 10 tile (inputs x outputs) of a matrix with 256 inputs per output. */
  CHECK(cim_hal_program(hal, 1, w, 100, 10, 256, NULL) == CIM_HAL_OK, "program a tile");
  CHECK(cim_hal_matvec(hal, 1, x, 99, out, 10) == CIM_HAL_ERR_SHAPE &&
            cim_hal_matvec(hal, 1, x, 100, out, 11) == CIM_HAL_ERR_SHAPE &&
            cim_hal_matvec(hal, 2, x, 100, out, 10) == CIM_HAL_ERR_TILE &&
            cim_hal_matvec(hal, 0, x, 100, out, 10) == CIM_HAL_ERR_UNPROGRAMMED,
        "wrong input or output length, unknown or unprogrammed tile");
  CHECK(cim_hal_matvec(hal, 1, x, 100, out, 10) == CIM_HAL_OK, "matvec");
  int bad = 0;
  for (int o = 0; o < 10; ++o) {
    int32_t want = 0;
    for (int i = 0; i < 100; ++i) want += w[o * 256 + i] * x[i];
    bad += out[o] != want;
  }
  CHECK(bad == 0, "tile product: %d of 10 outputs wrong", bad);
  /* Tile memory: asked for by the software HAL only where a SIMD path reads cells (an x86-64
   * CPU with AVX-512 VNNI), never for a tile the device cannot hold; the same products with
   * it, on every path. */
  const size_t tile_bytes = cim_hal_tile_memory_bytes(hal, 100, 10);
  CHECK(tile_bytes == (picogpt_simd_supported(PICOGPT_SIMD_AVX512VNNI) ? 25u * 16u * 4u : 0u) &&
            cim_hal_tile_memory_bytes(hal, 129, 10) == 0 &&
            cim_hal_tile_memory_bytes(hal, 100, 129) == 0,
        "tile memory bytes %zu", tile_bytes);
  static _Alignas(16) uint8_t tile_memory[128 * 128];
  CHECK(cim_hal_program(hal, 0, w, 100, 10, 256, tile_bytes ? tile_memory : NULL) == CIM_HAL_OK,
        "program a tile with tile memory");
  for (int p = 0; p < PICOGPT_SIMD_COUNT; ++p) {
    if (!picogpt_simd_supported((picogpt_simd)p)) continue;
    picogpt_simd_select((picogpt_simd)p);
    int32_t cells_out[10];
    CHECK(cim_hal_matvec(hal, 0, x, 100, cells_out, 10) == CIM_HAL_OK &&
              memcmp(cells_out, out, sizeof cells_out) == 0,
          "%s: the tile with tile memory gives other sums", picogpt_simd_name((picogpt_simd)p));
  }
  picogpt_simd_select(picogpt_simd_best());
  cim_hal_counters c;
  cim_hal_get_counters(hal, &c);
  const uint64_t products = 1 + (uint64_t)picogpt_simd_best() + 1;
  CHECK(c.programs == 2 && c.program_cells == 2000 && c.matvecs == products &&
            c.macs == 1000 * products && c.outputs == 10 * products &&
            c.emulation_instructions == 0,
        "counters count what succeeded: %llu programs, %llu products",
        (unsigned long long)c.programs, (unsigned long long)c.matvecs);
  CHECK(strcmp(cim_hal_status_name(CIM_HAL_ERR_UNPROGRAMMED), "CIM_HAL_ERR_UNPROGRAMMED") == 0 &&
            strcmp(cim_hal_status_name((cim_hal_status)99), "CIM_HAL_ERR_UNKNOWN") == 0,
        "status names");

  /* Extremes on every path: |x| = 128 against weights of +-127 (the largest pairs of AVX2's
   * narrow product), and the same tile with one weight of -128, which must not take it. */
  static int8_t extreme[16 * 128];
  int8_t x_extreme[128];
  for (int i = 0; i < 16 * 128; ++i) extreme[i] = (int8_t)(i % 5 == 1 ? -127 : 127);
  for (int i = 0; i < 128; ++i) x_extreme[i] = (int8_t)(i % 7 == 3 ? 127 : -128);
  for (int with_min = 0; with_min < 2; ++with_min) {
    extreme[5 * 128 + 77] = (int8_t)(with_min ? -128 : 127);
    CHECK(cim_hal_program(hal, 0, extreme, 128, 16, 128, NULL) == CIM_HAL_OK, "program extremes");
    for (int p = 0; p < PICOGPT_SIMD_COUNT; ++p) {
      if (!picogpt_simd_supported((picogpt_simd)p)) continue;
      picogpt_simd_select((picogpt_simd)p);
      int32_t got[16];
      int wrong = cim_hal_matvec(hal, 0, x_extreme, 128, got, 16) != CIM_HAL_OK;
      for (int o = 0; o < 16; ++o) {
        int32_t want = 0;
        for (int i = 0; i < 128; ++i) want += extreme[o * 128 + i] * x_extreme[i];
        wrong += got[o] != want;
      }
      CHECK(wrong == 0, "%s: extreme tile%s: %d outputs wrong", picogpt_simd_name((picogpt_simd)p),
            with_min ? " with a -128 weight" : "", wrong);
    }
  }
  picogpt_simd_select(picogpt_simd_best());

  /* Through the runtime: a device the mapper rejects, then a protocol violation at a step
   * (the HAL forgets its tiles, as a driver reset would). */
  picogpt_status st = init_on(&g_rt, g_arena, model, size, 32, 100, 128, 0);
  CHECK(st == PICOGPT_ERR_ARGUMENT && strstr(picogpt_last_error(&g_rt), "128, 256 or 512"),
        "100-row macros: %s '%s'", picogpt_status_name(st), picogpt_last_error(&g_rt));
  st = init_on(&g_rt, g_arena, model, size, 0, 0, 0, 0);
  CHECK(st == PICOGPT_OK, "init: %s", picogpt_last_error(&g_rt));
  pg_runtime *rt = pg_runtime_of(&g_rt);
  const cim_hal_device *dev = &rt->interp.cim.map.device;
  CHECK(cim_hal_open(rt->interp.cim.hal, dev, &hal) == CIM_HAL_OK, "reopen the device");
  st = picogpt_step(&g_rt, 1, NULL);
  CHECK(st == PICOGPT_ERR_CIM_HAL &&
            strstr(picogpt_last_error(&g_rt), "cim_hal_matvec(tile 0): CIM_HAL_ERR_UNPROGRAMMED"),
        "step on forgotten tiles: %s '%s'", picogpt_status_name(st), picogpt_last_error(&g_rt));
  printf("ok   HAL protocol: %s\n", picogpt_last_error(&g_rt));
}

/* ---- the cost model --------------------------------------------------------------------------- */

static void check_cost(const uint8_t *model, size_t size) {
  picogpt_status st = init_on(&g_rt, g_arena, model, size, 0, 0, 0, 0);
  CHECK(st == PICOGPT_OK, "init: %s", picogpt_last_error(&g_rt));
  if (st != PICOGPT_OK) return;
  /* Defaults: 8 input bits, one per cycle; 1-bit cells, so 8 bit lines per weight and 1024
   * per macro; 8 bit lines per ADC, so 128 ADCs. A full 128 x 128 tile: 8 input cycles x
   * 8 rounds = 64 cycles and 8 x 1024 = 8192 conversions; the logits' 65 columns: 520 bit
   * lines, 5 rounds = 40 cycles, 8 x 520 = 4160 conversions. 24 full tiles + 1. */
  picogpt_cim_cost c;
  CHECK(picogpt_cim_cost_of(&g_rt, NULL, 400000, &c) == PICOGPT_OK, "default cost");
  CHECK(c.cim_cycles == 24u * 64u + 40u, "cycles %llu", (unsigned long long)c.cim_cycles);
  CHECK(c.conversions == 24u * 8192u + 4160u, "conversions %llu",
        (unsigned long long)c.conversions);
  /* 401,536 MACs x 194 fJ + 200,768 conversions x 480 fJ */
  CHECK(c.cim_energy_fj == 77897984u + 96368640u, "accelerator energy %llu fJ",
        (unsigned long long)c.cim_energy_fj);
  CHECK(c.cpu_instructions == 400000 && c.cpu_energy_fj == UINT64_C(400000) * 33400u,
        "CPU energy %llu fJ", (unsigned long long)c.cpu_energy_fj);
  CHECK(c.cycles == 401576 && c.energy_fj == 174266624u + UINT64_C(13360000000),
        "cycles %llu, energy %llu", (unsigned long long)c.cycles, (unsigned long long)c.energy_fj);
  /* 1000 * 50 MHz / 401,576 cycles = 124,509.4 */
  CHECK(c.tokens_per_s_milli == 124509 && c.clock_hz == 50000000, "tokens/s x 1000 %llu",
        (unsigned long long)c.tokens_per_s_milli);
  /* Writing: one cycle per word line, 128 per column tile and 256 for the 256-input
   * layers: 3 x (4 x 128 + 2 x 128 + 256) + 128 = 3200; 401,536 x 8 bits x 25 fJ. */
  CHECK(c.program_cycles == 3200 && c.program_energy_fj == 401536u * 8u * 25u,
        "programming %llu cycles, %llu fJ", (unsigned long long)c.program_cycles,
        (unsigned long long)c.program_energy_fj);

  /* Other parameters: 2 input bits per cycle (4 cycles), 2-bit cells (4 bit lines per weight,
   * 512 per macro), 4 per ADC (128 ADCs), 2 cycles per conversion. Full tile: 4 x 4 x 2 = 32
   * cycles, 4 x 512 = 2048 conversions; logits: 260 bit lines, 3 rounds: 24 cycles, 1040. */
  const picogpt_cim_cost_params p = {100000000u, 2, 2, 4, 2, 100, 1000, 2, 10, 1000};
  CHECK(picogpt_cim_cost_of(&g_rt, &p, 1000, &c) == PICOGPT_OK, "other parameters");
  CHECK(c.cim_cycles == 24u * 32u + 24u && c.conversions == 24u * 2048u + 1040u,
        "cycles %llu, conversions %llu", (unsigned long long)c.cim_cycles,
        (unsigned long long)c.conversions);
  CHECK(c.cim_energy_fj == 401536u * 100u + (24u * 2048u + 1040u) * 1000u &&
            c.tokens_per_s_milli == UINT64_C(100000000000) / (1000u + 792u) &&
            c.program_cycles == 2u * 3200u,
        "energy %llu, tokens/s x 1000 %llu", (unsigned long long)c.cim_energy_fj,
        (unsigned long long)c.tokens_per_s_milli);
  const picogpt_cim_cost_params zero_clock = {0, 1, 1, 8, 1, 1, 1, 1, 1, 1};
  const picogpt_cim_cost_params wide_cells = {1, 1, 16, 8, 1, 1, 1, 1, 1, 1};
  CHECK(picogpt_cim_cost_of(&g_rt, &zero_clock, 0, &c) == PICOGPT_ERR_ARGUMENT &&
            picogpt_cim_cost_of(&g_rt, &wide_cells, 0, &c) == PICOGPT_ERR_ARGUMENT &&
            picogpt_cim_cost_of(&g_rt, NULL, 0, NULL) == PICOGPT_ERR_ARGUMENT &&
            picogpt_cim_cost_of(NULL, NULL, 0, &c) == PICOGPT_ERR_ARGUMENT,
        "invalid parameters rejected");
  printf("ok   cost model: %llu cycles, %llu conversions per token\n",
         (unsigned long long)(24u * 64u + 40u), (unsigned long long)(24u * 8192u + 4160u));
}

/* ---- attention over the live positions only --------------------------------------------------- */

static void check_live_attention(const uint8_t *model, size_t size) {
  picogpt_status st = init_on(&g_rt, g_arena, model, size, 0, 0, 0, 0);
  if (st != PICOGPT_OK) return;
  /* At position p each layer's two heads multiply q with p cached keys and the new one, and
   * the probabilities with p cached values and the new one: 2 x 64 x (2 p + 2) MACs. */
  uint64_t before = 0;
  int wrong = 0;
  for (int32_t p = 0; p < 40; ++p) {
    st = picogpt_step(&g_rt, p % 60, NULL);
    const uint64_t now = picogpt_get_stats(&g_rt)->cpu_macs;
    wrong += st != PICOGPT_OK || now - before != 3u * 2u * 64u * (2u * (uint64_t)p + 2u);
    before = now;
  }
  CHECK(wrong == 0, "%d of 40 steps multiply other than the live positions", wrong);
  printf("ok   attention touches positions 0..pos only\n");
}

/* ---- simulated non-idealities (host builds) ------------------------------------------------- */

static picogpt_status init_nonideal(picogpt_runtime *rt, uint8_t *arena, const uint8_t *model,
                                    size_t size, const picogpt_cim_nonideal *nonideal) {
  const picogpt_options options = {.cim_nonideal = *nonideal};
  return picogpt_init_with_options(rt, model, size, arena, ARENA_BYTES, &options);
}

/* The int8 logits after feeding tokens 0..n-1 (n <= 16) into rt, concatenated. */
static void logits_of(picogpt_runtime *rt, int32_t n, int8_t *out) {
  const int32_t vocab = picogpt_info(rt)->vocab_size;
  const int8_t *logits = NULL;
  for (int32_t t = 0; t < n; ++t) {
    if (picogpt_step(rt, (t * 7) % vocab, &logits) != PICOGPT_OK) return;
    memcpy(out + (size_t)t * (size_t)vocab, logits, (size_t)vocab);
  }
}

static void check_nonideal(const uint8_t *model, size_t size) {
  enum { STEPS = 16, MAX_LOGITS = STEPS * 128 };
  static int8_t exact[MAX_LOGITS], a[MAX_LOGITS], b[MAX_LOGITS];
  CHECK(init_on(&g_rt, g_arena, model, size, 0, 0, 0, 0) == PICOGPT_OK, "exact init");
  logits_of(&g_rt, STEPS, exact);
  /* Recording peaks only: still exact. */
  picogpt_cim_nonideal cfg = {0, 0, 0, 0, 0, NULL, 0, 1};
  CHECK(init_nonideal(&g_rt, g_arena, model, size, &cfg) == PICOGPT_OK, "record_peaks init: %s",
        picogpt_last_error(&g_rt));
  logits_of(&g_rt, STEPS, a);
  CHECK(memcmp(a, exact, sizeof a) == 0, "recording peaks changed the logits");
  int32_t peaks[25] = {0};
  CHECK(picogpt_cim_peaks(&g_rt, peaks, 25) == PICOGPT_OK && peaks[0] > 0 && peaks[24] > 0,
        "peaks: %s", picogpt_last_error(&g_rt));
  CHECK(picogpt_cim_peaks(&g_rt, peaks, 24) == PICOGPT_ERR_ARGUMENT, "24 peaks of 25 tiles");
  /* Seeded: the same seed gives the same logits, another seed others. */
  const picogpt_cim_nonideal noisy = {6, 0, 0.02f, 0.01f, 7, peaks, 25, 0};
  CHECK(init_nonideal(&g_rt, g_arena, model, size, &noisy) == PICOGPT_OK, "noisy init: %s",
        picogpt_last_error(&g_rt));
  logits_of(&g_rt, STEPS, a);
  CHECK(init_nonideal(&g_rt2, g_arena2, model, size, &noisy) == PICOGPT_OK, "noisy init 2");
  logits_of(&g_rt2, STEPS, b);
  CHECK(memcmp(a, b, sizeof a) == 0, "seed 7 twice: different logits");
  CHECK(memcmp(a, exact, sizeof a) != 0, "6-bit ADC with noise: the exact logits");
  cfg = noisy;
  cfg.seed = 8;
  CHECK(init_nonideal(&g_rt2, g_arena2, model, size, &cfg) == PICOGPT_OK, "seed 8 init");
  logits_of(&g_rt2, STEPS, b);
  CHECK(memcmp(a, b, sizeof a) != 0, "seeds 7 and 8: the same logits");
  /* Bad values: each refused with a message naming the field. */
  const struct {
    picogpt_cim_nonideal cfg;
    const char *message;
  } bad[] = {
      {{1, 0, 0, 0, 0, NULL, 0, 0}, "adc_bits 1: need 2..16"},
      {{17, 0, 0, 0, 0, NULL, 0, 0}, "adc_bits 17"},
      {{8, -1.0f, 0, 0, 0, NULL, 0, 0}, "adc_range is not in [0, 16]"},
      {{0, 0, 1.5f, 0, 0, NULL, 0, 0}, "out_noise is not in [0, 1]"},
      {{0, 0, 0, -0.1f, 0, NULL, 0, 0}, "weight_noise is not in [0, 1]"},
      {{8, 0, 0, 0, 0, NULL, 3, 0}, "adc_full_scale is NULL but adc_full_scale_count is 3"},
      {{8, 0, 0, 0, 0, peaks, 24, 0}, "adc_full_scale has 24 entries"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    const picogpt_status st = init_nonideal(&g_rt, g_arena, model, size, &bad[i].cfg);
    CHECK(st == PICOGPT_ERR_ARGUMENT && strstr(picogpt_last_error(&g_rt), bad[i].message),
          "bad option %d: %s '%s'", (int)i, picogpt_status_name(st), picogpt_last_error(&g_rt));
  }
  peaks[3] = 0;
  const picogpt_cim_nonideal zero_range = {8, 0, 0, 0, 0, peaks, 25, 0};
  CHECK(init_nonideal(&g_rt, g_arena, model, size, &zero_range) == PICOGPT_ERR_ARGUMENT &&
            strstr(picogpt_last_error(&g_rt), "adc_full_scale[3] = 0"),
        "a zero range: '%s'", picogpt_last_error(&g_rt));
  printf("ok   non-idealities: exact when off, seeded, bad values refused\n");
}

/* ---- the arena: the documented default size, and the SIMD tables ----------------------- */

static _Alignas(16) uint8_t g_default_arena[PICOGPT_TENSOR_ARENA_SIZE];

static void check_arena_options(const uint8_t *model, size_t size) {
  enum { STEPS = 16, MAX_LOGITS = STEPS * 128 };
  static int8_t plain[MAX_LOGITS], tables[MAX_LOGITS];
  /* runtime.h's usage: the default options fit PICOGPT_TENSOR_ARENA_SIZE on every build. */
  picogpt_status st = picogpt_init(&g_rt, model, size, g_default_arena, sizeof g_default_arena);
  CHECK(st == PICOGPT_OK, "init in PICOGPT_TENSOR_ARENA_SIZE (%u) bytes: %s",
        (unsigned)PICOGPT_TENSOR_ARENA_SIZE, picogpt_last_error(&g_rt));
  if (st != PICOGPT_OK) return;
  const size_t plain_arena = picogpt_info(&g_rt)->arena_used;
  logits_of(&g_rt, STEPS, plain);
  /* simd_tables: more arena on x86-64 (none elsewhere), the same logits. */
  const picogpt_options options = {.simd_tables = 1};
  st = picogpt_init_with_options(&g_rt2, model, size, g_arena2, ARENA_BYTES, &options);
  CHECK(st == PICOGPT_OK, "init with SIMD tables: %s", picogpt_last_error(&g_rt2));
  if (st != PICOGPT_OK) return;
  const size_t tables_arena = picogpt_info(&g_rt2)->arena_used;
#if defined(__x86_64__) && !defined(PICOGPT_NO_SIMD)
  CHECK(tables_arena > plain_arena, "SIMD tables: arena %zu, without %zu", tables_arena,
        plain_arena);
#else
  CHECK(tables_arena == plain_arena, "no SIMD tables here: arena %zu, without %zu",
        tables_arena, plain_arena);
#endif
  logits_of(&g_rt2, STEPS, tables);
  CHECK(memcmp(plain, tables, sizeof plain) == 0, "SIMD tables changed the logits");
  printf("ok   default arena fits %u bytes (%zu used); SIMD tables: %zu, same logits\n",
         (unsigned)PICOGPT_TENSOR_ARENA_SIZE, plain_arena, tables_arena);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.tflite\n", argv[0]);
    return 2;
  }
  size_t size = 0;
  uint8_t *model = read_model(argv[1], &size);
  if (model == NULL) {
    printf("FAIL cannot read %s\n", argv[1]);
    return 1;
  }
  check_mapping(model, size, 128, 128, 25);
  check_mapping(model, size, 256, 256, 19);
  check_mapping(model, size, 512, 128, 22); /* rows hold all of K: c_proj takes 1 macro */
  check_too_small(model, size);
  check_hal_protocol(model, size);
  check_cost(model, size);
  check_live_attention(model, size);
  check_nonideal(model, size);
  check_arena_options(model, size);
  free(model);
  return test_summary();
}
