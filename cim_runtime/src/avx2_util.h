/* Internal: AVX2 building blocks shared by the bulk kernels (quant.c, matvec.c). Only where
 * the build dispatches to SIMD kernels (PG_SIMD_DISPATCH, simd.h); each function carries the
 * target attribute of the paths that call it. */
#ifndef PG_AVX2_UTIL_H
#define PG_AVX2_UTIL_H

#include "quant.h"

#if PG_SIMD_DISPATCH
#include <immintrin.h>

/* Transpose-and-add: the lane totals of a0..a7 as one vector (lane k = sum of the int32
 * lanes of ak), e.g. eight row sums accumulated in eight vectors. */
PG_TARGET_AVX2 static inline __m256i pg_avx2_transpose_add8(__m256i a0, __m256i a1, __m256i a2, __m256i a3,
                                             __m256i a4, __m256i a5, __m256i a6, __m256i a7) {
  const __m256i h01 = _mm256_hadd_epi32(a0, a1), h23 = _mm256_hadd_epi32(a2, a3);
  const __m256i h45 = _mm256_hadd_epi32(a4, a5), h67 = _mm256_hadd_epi32(a6, a7);
  const __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}
#endif /* PG_SIMD_DISPATCH */

#endif /* PG_AVX2_UTIL_H */
