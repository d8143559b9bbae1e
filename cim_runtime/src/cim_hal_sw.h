/* Internal: the software CIM HAL's two implementations of cim_hal_matvec()
 * (src/cim_hal_sw.c), exposed so the tests can check them against each other.
 * cim_hal_matvec() uses the AVX2 one when PG_HAVE_AVX2 (src/quant.h), else the
 * scalar one, which is the reference and what a CPU without the accelerator
 * (e.g. rv32imac) runs. Neither touches the counters. */
#ifndef PG_CIM_HAL_SW_H
#define PG_CIM_HAL_SW_H

#include "pico_gpt/cim_hal.h"
#include "quant.h"

void pg_hal_matvec_scalar(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                          cim_hal_layout layout, const int8_t *x, int32_t *out);
#if PG_HAVE_AVX2
void pg_hal_matvec_avx2(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                        cim_hal_layout layout, const int8_t *x, int32_t *out);
#endif

#endif /* PG_CIM_HAL_SW_H */
