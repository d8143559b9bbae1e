/* Software implementation of the CIM HAL (include/pico_gpt/cim_hal.h).
 *
 * Two versions with identical results (src/cim_hal_sw.h): a portable scalar
 * one (the reference; on rv32imac it is what the CPU does without the
 * accelerator) and, on x86 builds targeting AVX2, one that sign-extends int8
 * to int16 and multiplies pairs with vpmaddwd (|w x| <= 2^14, so a pair sum
 * fits the int32 lanes exactly; no saturating vpmaddubsw tricks). */
#include "cim_hal_sw.h"

#include "avx2_util.h"

static cim_hal_counters g_counters;

void cim_hal_matvec(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                    cim_hal_layout layout, const int8_t *x, int32_t *out) {
  g_counters.calls += 1;
  g_counters.macs += (uint64_t)rows * (uint64_t)cols;
#if PG_HAVE_AVX2
  pg_hal_matvec_avx2(weights, rows, cols, row_stride, layout, x, out);
#else
  pg_hal_matvec_scalar(weights, rows, cols, row_stride, layout, x, out);
#endif
}

void cim_hal_get_counters(cim_hal_counters *counters) { *counters = g_counters; }

void cim_hal_reset_counters(void) {
  g_counters.calls = 0;
  g_counters.macs = 0;
}

/* ---- scalar reference ------------------------------------------------------ */

/* Column-major (x^T W): rows of W scaled by x[c] accumulate into out. */
static void matvec_col_major(const int8_t *weights, int32_t rows, int32_t cols,
                             int32_t row_stride, const int8_t *x, int32_t *out) {
  for (int32_t r = 0; r < rows; ++r) out[r] = 0;
  for (int32_t c = 0; c < cols; ++c) {
    const int8_t *w = weights + (intptr_t)c * row_stride;
    const int32_t xc = x[c];
    for (int32_t r = 0; r < rows; ++r) out[r] += (int32_t)w[r] * xc;
  }
}

static int32_t dot_scalar(const int8_t *w, const int8_t *x, int32_t cols) {
  int32_t acc = 0;
  for (int32_t c = 0; c < cols; ++c) acc += (int32_t)w[c] * (int32_t)x[c];
  return acc;
}

void pg_hal_matvec_scalar(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                          cim_hal_layout layout, const int8_t *x, int32_t *out) {
  if (layout == CIM_HAL_COL_MAJOR) {
    matvec_col_major(weights, rows, cols, row_stride, x, out);
    return;
  }
  int32_t r = 0;
  /* Four rows at a time share each load of x; four columns per iteration amortize the
   * pointer increments (32-bit multiplies only: fine on rv32imac, ~3.6 instructions per
   * MAC there). */
  for (; r + 4 <= rows; r += 4) {
    const int8_t *w0 = weights + (intptr_t)r * row_stride, *w1 = w0 + row_stride;
    const int8_t *w2 = w1 + row_stride, *w3 = w2 + row_stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t c = 0;
    for (; c + 4 <= cols; c += 4) {
      const int32_t x0 = x[c], x1 = x[c + 1], x2 = x[c + 2], x3 = x[c + 3];
      a0 += w0[c] * x0 + w0[c + 1] * x1 + w0[c + 2] * x2 + w0[c + 3] * x3;
      a1 += w1[c] * x0 + w1[c + 1] * x1 + w1[c + 2] * x2 + w1[c + 3] * x3;
      a2 += w2[c] * x0 + w2[c + 1] * x1 + w2[c + 2] * x2 + w2[c + 3] * x3;
      a3 += w3[c] * x0 + w3[c + 1] * x1 + w3[c + 2] * x2 + w3[c + 3] * x3;
    }
    for (; c < cols; ++c) {
      const int32_t xc = x[c];
      a0 += w0[c] * xc;
      a1 += w1[c] * xc;
      a2 += w2[c] * xc;
      a3 += w3[c] * xc;
    }
    out[r] = a0;
    out[r + 1] = a1;
    out[r + 2] = a2;
    out[r + 3] = a3;
  }
  for (; r < rows; ++r) out[r] = dot_scalar(weights + (intptr_t)r * row_stride, x, cols);
}

/* ---- AVX2 ------------------------------------------------------------------- */
#if PG_HAVE_AVX2

static inline __m256i load16_i16(const int8_t *p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

static inline int32_t hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

void pg_hal_matvec_avx2(const int8_t *weights, int32_t rows, int32_t cols, int32_t row_stride,
                        cim_hal_layout layout, const int8_t *x, int32_t *out) {
  if (layout == CIM_HAL_COL_MAJOR) { /* unused by the exporter's models (adj_y) */
    matvec_col_major(weights, rows, cols, row_stride, x, out);
    return;
  }
  const int32_t vec_cols = cols & ~15;
  int32_t r = 0;
  /* Eight rows at a time: each 16-column slice of x is widened once. */
  for (; r + 8 <= rows; r += 8) {
    const int8_t *w = weights + (intptr_t)r * row_stride;
    const intptr_t s = row_stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0;
    for (int32_t c = 0; c < vec_cols; c += 16) {
      const __m256i xv = load16_i16(x + c);
      const int8_t *wc = w + c;
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(load16_i16(wc), xv));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(load16_i16(wc + s), xv));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(load16_i16(wc + 2 * s), xv));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(load16_i16(wc + 3 * s), xv));
      a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(load16_i16(wc + 4 * s), xv));
      a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(load16_i16(wc + 5 * s), xv));
      a6 = _mm256_add_epi32(a6, _mm256_madd_epi16(load16_i16(wc + 6 * s), xv));
      a7 = _mm256_add_epi32(a7, _mm256_madd_epi16(load16_i16(wc + 7 * s), xv));
    }
    const __m256i sums = pg_avx2_transpose_add8(a0, a1, a2, a3, a4, a5, a6, a7);
    _mm256_storeu_si256((__m256i *)(out + r), sums);
    if (vec_cols < cols) {
      for (int32_t k = 0; k < 8; ++k) {
        out[r + k] += dot_scalar(w + k * s + vec_cols, x + vec_cols, cols - vec_cols);
      }
    }
  }
  for (; r < rows; ++r) {
    const int8_t *w = weights + (intptr_t)r * row_stride;
    __m256i a = _mm256_setzero_si256();
    for (int32_t c = 0; c < vec_cols; c += 16) {
      a = _mm256_add_epi32(a, _mm256_madd_epi16(load16_i16(w + c), load16_i16(x + c)));
    }
    out[r] = hsum8(a) + dot_scalar(w + vec_cols, x + vec_cols, cols - vec_cols);
  }
}

#endif /* PG_HAVE_AVX2 */
