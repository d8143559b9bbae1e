/* Internal: the host's simulation of non-ideal CIM macros (src/cim_nonideal.c), called by the
 * mapper (cim_map.c) around the HAL, so it works with any driver and leaves cim_hal.h alone:
 * programming noise on the weights before cim_hal_program, read-out noise and ADC
 * quantization on each tile's partial sums after cim_hal_matvec. Built only with
 * PICOGPT_CIM_NONIDEAL=1 (the host builds; CMakeLists.txt); the firmware leaves it out. The
 * model and its parameters: picogpt_cim_nonideal in pico_gpt/runtime.h. */
#ifndef PG_CIM_NONIDEAL_H
#define PG_CIM_NONIDEAL_H

#include "kernels/kernels.h"

typedef struct pg_cim_sim pg_cim_sim;

/* 1 if any field of cfg asks for simulation or recording (cfg may be NULL). */
static inline int pg_cim_nonideal_requested(const picogpt_cim_nonideal *cfg) {
  return cfg != NULL && (cfg->adc_bits != 0 || cfg->adc_range != 0.0f || cfg->out_noise != 0.0f ||
                         cfg->weight_noise != 0.0f || cfg->seed != 0 ||
                         cfg->adc_full_scale != NULL || cfg->adc_full_scale_count != 0 ||
                         cfg->record_peaks != 0);
}

#if PICOGPT_CIM_NONIDEAL
/* Checks cfg (NULL: exact) and, if it asks for anything, reserves the simulation's state for
 * num_macros tiles in the arena; *sim stays NULL in exact mode, so exact runs take no extra
 * arena and no extra work. */
picogpt_status pg_cim_sim_begin(pg_prepare_ctx *ctx, const picogpt_cim_nonideal *cfg,
                                int32_t num_macros, pg_cim_sim **sim);
/* The weights to program into `tile` (rows x cols, weights[o * *stride + i]): the given ones,
 * or a noisy int8 copy in the arena (then *stride becomes rows); also fixes the tile's ADC
 * full scale. NULL after an error (set on ctx's interpreter, naming the node). */
const int8_t *pg_cim_sim_program(pg_prepare_ctx *ctx, pg_cim_sim *sim, const pg_node *node,
                                 int32_t tile, const int8_t *weights, int32_t rows,
                                 int32_t cols, int32_t *stride);
/* After every layer is mapped: the calibrated ranges must have been one per tile used. */
picogpt_status pg_cim_sim_end(pg_interpreter *it, pg_cim_sim *sim);
/* What the ADC of `tile` reads from its partial sums out[0..n): records the peak, adds the
 * output noise, quantizes; in place. */
void pg_cim_sim_read(pg_cim_sim *sim, int32_t tile, int32_t *out, int32_t n);
/* The recorded peaks of tiles 0..n-1; PICOGPT_ERR_ARGUMENT (with the message) if not recorded. */
picogpt_status pg_cim_sim_peaks(pg_interpreter *it, const pg_cim_sim *sim, int32_t *peaks,
                                int32_t n);
#endif

#endif /* PG_CIM_NONIDEAL_H */
