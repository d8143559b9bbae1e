/* Internal: AVX2 and AVX-512 building blocks shared by the bulk kernels (quant.c, matvec.c). Only where
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
/* The first min(left, 16) of 16 lanes, and of 64 byte lanes: the last (or only) vector of a
 * row is masked, so no narrower or scalar tail runs. */
PG_TARGET_AVX512VNNI static inline __mmask16 pg_lanes16(int32_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}
PG_TARGET_AVX512VNNI static inline __mmask64 pg_lanes64(int32_t left) {
  return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
}

/* sum_k x[k] for k < n (wrapping like int32 sums): vpsadbw against 0 sums eight unsigned
 * bytes (x + 128: the sign bit flipped) per 64-bit lane; the masked-off bytes stay 0 after
 * the flip. Row sums, and the correction of products over flipped weights (matvec.c). */
PG_TARGET_AVX512VNNI static inline int32_t pg_sum_i8_avx512(const int8_t *x, int32_t n) {
  const __m512i sign = _mm512_set1_epi8(-128);
  __m512i sums = _mm512_setzero_si512();
  for (int32_t k = 0; k < n; k += 64) {
    const __mmask64 m = pg_lanes64(n - k);
    const __m512i u =
        _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + k), sign));
    sums = _mm512_add_epi64(sums, _mm512_sad_epu8(u, _mm512_setzero_si512()));
  }
  return (int32_t)((uint32_t)_mm512_reduce_add_epi64(sums) - 128u * (uint32_t)n);
}
#endif /* PG_SIMD_DISPATCH */

#endif /* PG_AVX2_UTIL_H */
