/* Internal: the CIM mapper (src/cim_map.c). At init it opens the device and tiles every
 * FULLY_CONNECTED weight matrix onto its macros; at each step it runs a layer's product
 * tile by tile (or on the CPU, for a layer that did not fit); afterwards it reports the
 * mapping and what a step costs (picogpt_cim_* in runtime.h). */
#ifndef PG_CIM_MAP_H
#define PG_CIM_MAP_H

#include "kernels/kernels.h"

/* One FULLY_CONNECTED layer's tiling: what its eval needs. */
typedef struct pg_cim_tiles {
  const int8_t *weights;   /* (out_features, in_features), row-major, in the model */
  int32_t out_features;    /* N */
  int32_t in_features;     /* K */
  int32_t products;        /* input vectors per invoke */
  int32_t row_tiles;       /* ceil(K / device rows) */
  int32_t col_tiles;       /* ceil(N / device cols) */
  int32_t first_tile;      /* -1: on the CPU */
} pg_cim_tiles;

/* Validates the device of options (defaults for zero fields), reserves the driver's state
 * in the arena and opens it. First thing of init, before any op is prepared. */
picogpt_status pg_cim_begin(pg_prepare_ctx *ctx, const picogpt_options *options);
/* Tiles one FULLY_CONNECTED: programs its tiles into the next free macros if they all
 * fit, else marks it for the CPU. */
picogpt_status pg_cim_map_layer(pg_prepare_ctx *ctx, const pg_node *node, const int8_t *weights,
                                int32_t out_features, int32_t in_features, int32_t products,
                                pg_cim_tiles *tiles);
/* After every op is prepared: fails with PICOGPT_ERR_CIM_CAPACITY (macros needed vs
 * available) if a layer did not fit and the CPU fallback is off. */
picogpt_status pg_cim_end(pg_prepare_ctx *ctx);

/* Scratch (int32 elements) pg_cim_product needs beyond the output: one tile's partial sums
 * when a layer has several row tiles. */
int32_t pg_cim_partial_elements(const pg_cim_tiles *tiles, const pg_interpreter *it);
/* acc[0..N) = W x for one input vector x (K,): the tiles' partial sums added up, or the CPU's
 * product. partial: pg_cim_partial_elements() scratch. A HAL error fails with
 * PICOGPT_ERR_CIM_HAL naming the op and the tile. */
picogpt_status pg_cim_product(pg_interpreter *it, const pg_node *node, const pg_cim_tiles *t,
                              const int8_t *x, int32_t *acc, int32_t *partial);

/* The tiling of a prepared FULLY_CONNECTED node, NULL for other nodes (kernels/matmul.c). */
const pg_cim_tiles *pg_fully_connected_tiles(const pg_node *node);
/* Layer `index` of the mapping in execution order (NULL past the last). */
const pg_cim_tiles *pg_cim_layer(const pg_interpreter *it, int32_t index, int32_t *op_index);
/* The cost model (picogpt_cim_cost_of): every mapped layer's tiles, products per step. */
picogpt_status pg_cim_cost(const pg_interpreter *it, const picogpt_cim_cost_params *params,
                           uint64_t cpu_instructions, picogpt_cim_cost *cost);

#endif /* PG_CIM_MAP_H */
