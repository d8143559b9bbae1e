/* CIM HAL: the int8 x int8 -> int32 matrix-vector interface that a CIMv3
 * compute-in-memory driver implements. Every matrix product of the runtime
 * (FULLY_CONNECTED, BATCH_MATMUL) goes through cim_hal_matvec(), so the
 * counters below say how much work the accelerator would take.
 *
 * The HAL computes raw products only; zero points, requantization and
 * activation clamping stay in the runtime (src/quant.c), so a hardware
 * implementation needs nothing but the dot products.
 *
 * The portable software implementation is src/cim_hal_sw.c. A firmware build
 * replaces it by linking another cim_hal_matvec() (CMake option
 * PICOGPT_CIM_HAL_SOFTWARE=OFF).
 */
#ifndef PICO_GPT_CIM_HAL_H
#define PICO_GPT_CIM_HAL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Work counters, accumulated by every cim_hal_matvec() call. */
typedef struct cim_hal_counters {
  uint64_t calls; /* cim_hal_matvec() invocations */
  uint64_t macs;  /* multiply-accumulates: rows * cols per call */
} cim_hal_counters;

/* Matrix layout of one matvec.
 *   CIM_HAL_ROW_MAJOR:  out[r] = sum_c W[r * row_stride + c] * x[c]   (W: rows x cols)
 *   CIM_HAL_COL_MAJOR:  out[r] = sum_c W[c * row_stride + r] * x[c]   (W: cols x rows)
 * COL_MAJOR is x^T W, which a crossbar computes as naturally as W x and lets
 * BATCH_MATMUL use an activation operand (e.g. the V cache) without a copy. */
typedef enum cim_hal_layout {
  CIM_HAL_ROW_MAJOR = 0,
  CIM_HAL_COL_MAJOR = 1,
} cim_hal_layout;

/* out[0..rows) = W x as above; out is overwritten (not accumulated).
 * rows, cols >= 1; row_stride >= cols (ROW_MAJOR) or >= rows (COL_MAJOR).
 * Must not fail: the runtime validates shapes before calling. */
void cim_hal_matvec(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                    cim_hal_layout layout, const int8_t *x, int32_t *out);

/* Counters since the last reset (process-wide: the HAL models one device). */
void cim_hal_get_counters(cim_hal_counters *counters);
void cim_hal_reset_counters(void);

#ifdef __cplusplus
}
#endif

#endif /* PICO_GPT_CIM_HAL_H */
