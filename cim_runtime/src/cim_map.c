/* The CIM mapper; see cim_map.h and include/pico_gpt/cim_hal.h.
 *
 * The mapping rule: in the order the layers run, a FULLY_CONNECTED with an N x K weight
 * matrix takes ceil(K / rows) x ceil(N / cols) tiles, one per macro, from the next free
 * macros, if all of them fit; otherwise it runs on the CPU (only with cim_cpu_fallback; else
 * init fails and says how many macros the model needs). Tiles are numbered column tile by
 * column tile, row tiles within: tile (c, r) holds outputs [c * cols, ...) and inputs
 * [r * rows, ...). */
#include "cim_map.h"

#include <string.h>

#include "cim_nonideal.h"
#include "kernels/kernel_util.h"
#include "matvec.h"

/* The runtime's limits on a device (a driver may support less: cim_hal_open says so). */
static int supported_side(int32_t n) { return n == 128 || n == 256 || n == 512; }

picogpt_status pg_cim_begin(pg_prepare_ctx *ctx, const picogpt_options *options) {
  pg_interpreter *it = ctx->it;
  pg_cim *cim = &it->cim;
  const cim_hal_device defaults = CIM_HAL_DEVICE_DEFAULT;
  cim_hal_device dev = options ? options->cim_device : defaults;
  if (dev.num_macros == 0) dev.num_macros = defaults.num_macros;
  if (dev.rows == 0) dev.rows = defaults.rows;
  if (dev.cols == 0) dev.cols = defaults.cols;
  if (dev.input_bits == 0) dev.input_bits = defaults.input_bits;
  if (dev.weight_bits == 0) dev.weight_bits = defaults.weight_bits;
  if (dev.num_macros < 1 || dev.num_macros > 65535 || !supported_side(dev.rows) ||
      !supported_side(dev.cols) || dev.input_bits != 8 || dev.weight_bits != 8) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "CIM device %d macros of %d x %d, %d/%d-bit: need 1..65535 macros of "
                   "128, 256 or 512 rows and cols, 8-bit inputs and weights",
                   (int)dev.num_macros, (int)dev.rows, (int)dev.cols, (int)dev.input_bits,
                   (int)dev.weight_bits);
  }
  memset(cim, 0, sizeof *cim);
  cim->map.device = dev;
  cim->cpu_fallback = options ? options->cim_cpu_fallback != 0 : 0;
  cim->tile_memory = options ? options->cim_tile_memory != 0 : 0;
  const size_t bytes = cim_hal_state_bytes(&dev);
  void *memory = bytes ? pg_arena_persistent(&ctx->arena, bytes) : NULL;
  if (bytes && memory == NULL) return it->error.status;
  const cim_hal_status hs = cim_hal_open(memory, &dev, &cim->hal);
  if (hs != CIM_HAL_OK) {
    return pg_fail(it, PICOGPT_ERR_CIM_HAL,
                   "cim_hal_open: %s: the CIM driver cannot drive %d macros of %d x %d",
                   cim_hal_status_name(hs), (int)dev.num_macros, (int)dev.rows, (int)dev.cols);
  }
#if PICOGPT_CIM_NONIDEAL
  return pg_cim_sim_begin(ctx, options ? &options->cim_nonideal : NULL, dev.num_macros,
                          &cim->sim);
#else
  if (options && pg_cim_nonideal_requested(&options->cim_nonideal)) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal: simulated in host builds only");
  }
  return PICOGPT_OK;
#endif
}

static int32_t ceil_div(int32_t a, int32_t b) { return (a + b - 1) / b; }
static int32_t tile_extent(int32_t total, int32_t side, int32_t index) {
  const int32_t left = total - index * side;
  return left < side ? left : side;
}

picogpt_status pg_cim_map_layer(pg_prepare_ctx *ctx, const pg_node *node, const int8_t *weights,
                                int32_t out_features, int32_t in_features, int32_t products,
                                pg_cim_tiles *tiles) {
  pg_interpreter *it = ctx->it;
  picogpt_cim_mapping *map = &it->cim.map;
  const cim_hal_device *dev = &map->device;
  tiles->weights = weights;
  tiles->out_features = out_features;
  tiles->in_features = in_features;
  tiles->products = products;
  tiles->row_tiles = ceil_div(in_features, dev->rows);
  tiles->col_tiles = ceil_div(out_features, dev->cols);
  tiles->first_tile = -1;
  const int32_t n_tiles = tiles->row_tiles * tiles->col_tiles;
  const uint64_t macs = (uint64_t)products * (uint64_t)out_features * (uint64_t)in_features;
  map->num_layers += 1;
  map->macros_needed += n_tiles;
  if (map->macros_used + n_tiles > dev->num_macros) {
    map->layers_on_cpu += 1;
    map->macs_fc_on_cpu += macs;
    return PICOGPT_OK;
  }
  tiles->first_tile = map->macros_used;
  for (int32_t c = 0; c < tiles->col_tiles; ++c) {
    for (int32_t r = 0; r < tiles->row_tiles; ++r) {
      const int32_t tile = tiles->first_tile + c * tiles->row_tiles + r;
      const int32_t rows = tile_extent(in_features, dev->rows, r);
      const int32_t cols = tile_extent(out_features, dev->cols, c);
      const int8_t *tile_weights = weights + (intptr_t)c * dev->cols * in_features + r * dev->rows;
      int32_t stride = in_features;
#if PICOGPT_CIM_NONIDEAL
      if (it->cim.sim != NULL) {
        tile_weights = pg_cim_sim_program(ctx, it->cim.sim, node, tile, tile_weights, rows, cols,
                                          &stride);
        if (tile_weights == NULL) return it->error.status;
      }
#endif
      void *tile_memory = NULL;
      const size_t memory_bytes =
          it->cim.tile_memory ? cim_hal_tile_memory_bytes(it->cim.hal, rows, cols) : 0;
      if (memory_bytes > 0) {
        tile_memory = pg_arena_persistent(&ctx->arena, memory_bytes);
        if (tile_memory == NULL) return it->error.status;
        map->tile_memory_bytes += memory_bytes;
      }
      const cim_hal_status hs =
          cim_hal_program(it->cim.hal, tile, tile_weights, rows, cols, stride, tile_memory);
      if (hs != CIM_HAL_OK) {
        return pg_node_fail(ctx, node, PICOGPT_ERR_CIM_HAL, "cim_hal_program(tile %d): %s",
                            (int)tile, cim_hal_status_name(hs));
      }
    }
  }
  map->macros_used += n_tiles;
  map->weights_on_macros += (uint64_t)out_features * (uint64_t)in_features;
  map->macs_on_macros += macs;
  return PICOGPT_OK;
}

picogpt_status pg_cim_end(pg_prepare_ctx *ctx) {
  pg_interpreter *it = ctx->it;
  const picogpt_cim_mapping *map = &it->cim.map;
#if PICOGPT_CIM_NONIDEAL
  if (it->cim.sim != NULL) {
    const picogpt_status st = pg_cim_sim_end(it, it->cim.sim);
    if (st != PICOGPT_OK) return st;
  }
#endif
  if (map->layers_on_cpu == 0 || it->cim.cpu_fallback) return PICOGPT_OK;
  return pg_fail(it, PICOGPT_ERR_CIM_CAPACITY,
                 "the model needs %d CIM macros of %d x %d, the device has %d: %d of %d layers "
                 "do not fit (use a larger device, or cim_cpu_fallback for the CPU)",
                 (int)map->macros_needed, (int)map->device.rows, (int)map->device.cols,
                 (int)map->device.num_macros, (int)map->layers_on_cpu, (int)map->num_layers);
}

int32_t pg_cim_partial_elements(const pg_cim_tiles *tiles, const pg_interpreter *it) {
  return tiles->first_tile >= 0 && tiles->row_tiles > 1 ? it->cim.map.device.cols : 0;
}

picogpt_status pg_cim_product(pg_interpreter *it, const pg_node *node, const pg_cim_tiles *t,
                              const int8_t *x, int32_t *acc, int32_t *partial) {
  const int32_t N = t->out_features, K = t->in_features;
  if (t->first_tile < 0) {
    pg_matvec(t->weights, N, K, K, x, 0, acc);
    it->cpu_macs += (uint64_t)N * (uint64_t)K;
    return PICOGPT_OK;
  }
  const int32_t rows = it->cim.map.device.rows, cols = it->cim.map.device.cols;
  int32_t tile = t->first_tile;
  for (int32_t c = 0; c < t->col_tiles; ++c) {
    const int32_t n_cols = tile_extent(N, cols, c);
    int32_t *out = acc + (intptr_t)c * cols;
    for (int32_t r = 0; r < t->row_tiles; ++r, ++tile) {
      const int32_t n_rows = tile_extent(K, rows, r);
      const cim_hal_status hs =
          cim_hal_matvec(it->cim.hal, tile, x + (intptr_t)r * rows, n_rows,
                         r == 0 ? out : partial, n_cols);
      if (hs != CIM_HAL_OK) {
        return pg_fail(it, PICOGPT_ERR_CIM_HAL, "%s (op %d): cim_hal_matvec(tile %d): %s",
                       pg_op_name(node->opcode), (int)node->index, (int)tile,
                       cim_hal_status_name(hs));
      }
#if PICOGPT_CIM_NONIDEAL
      if (it->cim.sim != NULL) pg_cim_sim_read(it->cim.sim, tile, r == 0 ? out : partial, n_cols);
#endif
      /* The row tiles' partial sums add up to the layer's (|sum| < 2^31 for K <= 65536). */
      if (r > 0) {
        for (int32_t j = 0; j < n_cols; ++j) out[j] += partial[j];
      }
    }
  }
  return PICOGPT_OK;
}

/* ---- the report and the cost model ------------------------------------------------------ */

const pg_cim_tiles *pg_cim_layer(const pg_interpreter *it, int32_t index, int32_t *op_index) {
  for (int32_t n = 0, seen = 0; n < it->num_nodes; ++n) {
    const pg_cim_tiles *t = pg_fully_connected_tiles(&it->nodes[n]);
    if (t == NULL || seen++ != index) continue;
    if (op_index) *op_index = it->nodes[n].index;
    return t;
  }
  return NULL;
}

picogpt_status pg_cim_cost(const pg_interpreter *it, const picogpt_cim_cost_params *params,
                           uint64_t cpu_instructions, picogpt_cim_cost *cost) {
  const picogpt_cim_cost_params defaults = PICOGPT_CIM_COST_DEFAULT;
  const picogpt_cim_cost_params *p = params ? params : &defaults;
  const cim_hal_device *dev = &it->cim.map.device;
  if (p->clock_hz == 0 || p->input_bits_per_cycle == 0 || p->cell_bits == 0 ||
      p->cell_bits > (uint32_t)dev->weight_bits || p->columns_per_adc == 0 ||
      p->adc_cycles == 0) {
    return PICOGPT_ERR_ARGUMENT;
  }
  memset(cost, 0, sizeof *cost);
  /* A weight spans `cells` bit lines; all ADCs of a macro convert in parallel, each reading
   * its columns_per_adc bit lines one after another, once per input cycle. So a product's
   * cycles and conversions depend on the tile's used columns only, not on its rows. */
  const uint32_t input_cycles =
      ((uint32_t)dev->input_bits + p->input_bits_per_cycle - 1) / p->input_bits_per_cycle;
  const uint32_t cells = ((uint32_t)dev->weight_bits + p->cell_bits - 1) / p->cell_bits;
  uint32_t adcs = (uint32_t)dev->cols * cells / p->columns_per_adc;
  if (adcs == 0) adcs = 1;
  uint64_t macs = 0, program_bits = 0;
  const pg_cim_tiles *t;
  for (int32_t i = 0; (t = pg_cim_layer(it, i, NULL)) != NULL; ++i) {
    if (t->first_tile < 0) continue;
    const uint64_t products = (uint64_t)t->products * (uint32_t)t->row_tiles;
    for (int32_t c = 0; c < t->col_tiles; ++c) {
      const uint32_t cols = (uint32_t)tile_extent(t->out_features, dev->cols, c);
      const uint32_t bit_lines = cols * cells;
      cost->cim_cycles += products * (input_cycles * ((bit_lines + adcs - 1) / adcs) * p->adc_cycles);
      cost->conversions += products * (input_cycles * bit_lines);
      /* The row tiles together hold all in_features rows of these columns. */
      macs += (uint64_t)t->products * cols * (uint32_t)t->in_features;
      cost->program_cycles += (uint64_t)(uint32_t)t->in_features * p->program_cycles_per_row;
      program_bits += (uint64_t)cols * (uint32_t)t->in_features * (uint32_t)dev->weight_bits;
    }
  }
  cost->program_energy_fj = program_bits * p->program_energy_fj_per_bit;
  cost->cim_energy_fj = macs * p->mac_energy_fj + cost->conversions * p->conversion_energy_fj;
  cost->cpu_instructions = cpu_instructions;
  cost->cpu_energy_fj = cpu_instructions * p->cpu_energy_fj_per_instruction;
  cost->cycles = cpu_instructions + cost->cim_cycles;
  cost->energy_fj = cost->cim_energy_fj + cost->cpu_energy_fj;
  cost->tokens_per_s_milli = cost->cycles ? 1000u * (uint64_t)p->clock_hz / cost->cycles : 0;
  cost->clock_hz = p->clock_hz;
  return PICOGPT_OK;
}
