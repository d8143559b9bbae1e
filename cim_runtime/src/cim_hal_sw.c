/* Portable software implementation of the CIM HAL (include/pico_gpt/cim_hal.h).
 * Plain loops that compilers vectorize well on the host; on rv32imac they are
 * what the CPU would do without the accelerator. */
#include "pico_gpt/cim_hal.h"

static cim_hal_counters g_counters;

void cim_hal_matvec(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                    cim_hal_layout layout, const int8_t *x, int32_t *out) {
  g_counters.calls += 1;
  g_counters.macs += (uint64_t)rows * (uint64_t)cols;
  if (layout == CIM_HAL_ROW_MAJOR) {
    int32_t r = 0;
    /* Four rows at a time share the loads of x (vectorizes well). */
    for (; r + 4 <= rows; r += 4) {
      const int8_t *w0 = weights + (intptr_t)r * row_stride, *w1 = w0 + row_stride;
      const int8_t *w2 = w1 + row_stride, *w3 = w2 + row_stride;
      int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int32_t c = 0; c < cols; ++c) {
        const int32_t xc = x[c];
        a0 += (int32_t)w0[c] * xc;
        a1 += (int32_t)w1[c] * xc;
        a2 += (int32_t)w2[c] * xc;
        a3 += (int32_t)w3[c] * xc;
      }
      out[r] = a0;
      out[r + 1] = a1;
      out[r + 2] = a2;
      out[r + 3] = a3;
    }
    for (; r < rows; ++r) {
      const int8_t *w = weights + (intptr_t)r * row_stride;
      int32_t acc = 0;
      for (int32_t c = 0; c < cols; ++c) acc += (int32_t)w[c] * (int32_t)x[c];
      out[r] = acc;
    }
  } else {
    for (int32_t r = 0; r < rows; ++r) out[r] = 0;
    for (int32_t c = 0; c < cols; ++c) {
      const int8_t *w = weights + (intptr_t)c * row_stride;
      const int32_t xc = x[c];
      for (int32_t r = 0; r < rows; ++r) out[r] += (int32_t)w[r] * xc;
    }
  }
}

void cim_hal_get_counters(cim_hal_counters *counters) { *counters = g_counters; }

void cim_hal_reset_counters(void) {
  g_counters.calls = 0;
  g_counters.macs = 0;
}
