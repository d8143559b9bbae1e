/* x86 bulk kernels of quant.h: AVX2 and AVX-512 versions of the scalar requantization,
 * elementwise and softmax-row loops in quant.c, with the same results (simd.c picks one at
 * load; tests/test_simd.c checks each against the scalar reference). Compiled on every
 * target; empty where PG_SIMD_DISPATCH is 0 (e.g. rv32). */
#include "quant.h"

#include "avx2_util.h"

/* ---- bulk kernels: AVX2 (same results as quant.c's scalar ones) ----------------- */
#if PG_SIMD_DISPATCH

/* MultiplyByQuantizedMultiplier on 8 lanes after its left shift: SRDHM by m (m >= 0, so the
 * saturating case a == b == INT32_MIN cannot occur), then RoundingDivideByPOT by rs, whose
 * mask 2^rs - 1 is given (per lane, or worked out once). rs is per lane (0..31). */
PG_TARGET_AVX2 static inline __m256i srdhm_rdbp8(__m256i x, __m256i m, __m256i rs,
                                                 __m256i mask) {
  const __m256i round = _mm256_set1_epi64x(INT64_C(1) << 30);
  /* (x * m + 2^30) >> 31 in 64-bit lanes: even lanes in place, odd lanes moved down. */
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), round);
  __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), round);
  even = _mm256_srli_epi64(even, 31); /* bits 31..62 -> low dword */
  odd = _mm256_slli_epi64(odd, 1);    /* bits 31..62 -> high dword */
  const __m256i t = _mm256_blend_epi32(even, odd, 0xAA);
  /* RoundingDivideByPOT: (t >> rs) + (remainder > threshold). */
  const __m256i remainder = _mm256_and_si256(t, mask);
  const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), t); /* -1 where t < 0 */
  const __m256i threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), negative);
  return _mm256_sub_epi32(_mm256_srav_epi32(t, rs), _mm256_cmpgt_epi32(remainder, threshold));
}

/* MultiplyByQuantizedMultiplier on 8 lanes: x * 2^ls, then srdhm_rdbp8; ls, rs per lane. */
PG_TARGET_AVX2 static inline __m256i mbqm8(__m256i x, __m256i m, __m256i ls, __m256i rs) {
  const __m256i one = _mm256_set1_epi32(1);
  return srdhm_rdbp8(_mm256_sllv_epi32(x, ls), m, rs,
                     _mm256_sub_epi32(_mm256_sllv_epi32(one, rs), one));
}

/* Per-lane left/right shift amounts of a TFLite shift (> 0 left, < 0 right). */
PG_TARGET_AVX2 static inline void split_shift8(__m256i shift, __m256i *ls, __m256i *rs) {
  const __m256i zero = _mm256_setzero_si256();
  *ls = _mm256_max_epi32(shift, zero);
  *rs = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
}

/* Clamps 8 int32 lanes and stores them as 8 int8. The packs saturate: the int8 range itself
 * (full_range) needs no clamps. */
PG_TARGET_AVX2 static inline void store8_i8(int8_t *out, __m256i v, __m256i lo, __m256i hi,
                                            int full_range) {
  if (!full_range) v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
  const __m256i w = _mm256_packs_epi32(v, v); /* int16: [0..3 0..3 | 4..7 4..7] */
  const __m256i b = _mm256_packs_epi16(w, w); /* int8, same pattern */
  const __m128i packed =
      _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  _mm_storel_epi64((__m128i *)out, packed);
}

PG_TARGET_AVX2 static inline __m256i load8_i8(const int8_t *p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* ADD and SUB's input rescale, MultiplyByQuantizedMultiplier(v << 20, m, -rs), without
 * 64-bit lanes. v is an int8 value plus its offset (|v| <= 255), so with m = mh 2^11 + ml
 * (ml < 2^11) the doubling high product is
 *   SRDHM(v 2^20, m) = floor((v m 2^20 + 2^30) / 2^31) = floor((v m + 2^10) / 2^11)
 *                    = v mh + floor((v ml + 2^10) / 2^11),
 * whose terms fit int32 (|v mh| < 2^28, |v ml + 2^10| < 2^19; the floor is an arithmetic
 * shift). The rounding right shift by the constant rs follows, as in mbqm8. About half of
 * mbqm8's operations; ADD's two input rescales were two thirds of its time. */
#define RESCALE_LEFT_SHIFT 20
typedef struct input_rescale {
  int32_t mh, ml, mask, half, rs;
} input_rescale;

static input_rescale input_rescale_of(int32_t multiplier, int32_t shift) {
  input_rescale r;
  r.mh = multiplier >> 11;
  r.ml = multiplier & 2047;
  r.rs = -shift; /* 0..31: input shifts are <= 0 */
  r.mask = (int32_t)((UINT32_C(1) << r.rs) - 1u);
  r.half = r.mask >> 1;
  return r;
}

PG_TARGET_AVX2 static inline __m256i rescale8(__m256i v, const input_rescale *r) {
  const __m256i one = _mm256_set1_epi32(1), mask = _mm256_set1_epi32(r->mask);
  const __m256i t = _mm256_add_epi32(
      _mm256_mullo_epi32(v, _mm256_set1_epi32(r->mh)),
      _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(v, _mm256_set1_epi32(r->ml)),
                                         _mm256_set1_epi32(1 << 10)),
                        11));
  const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), t);
  const __m256i threshold = _mm256_sub_epi32(_mm256_set1_epi32(r->half), negative);
  const __m256i shifted = _mm256_sra_epi32(t, _mm_cvtsi32_si128(r->rs));
  return _mm256_add_epi32(
      shifted, _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_and_si256(t, mask), threshold), one));
}

PG_TARGET_AVX2 void pg_requantize_avx2(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out) {
  const __m256i zp = _mm256_set1_epi32(q->output_zero_point);
  const __m256i lo = _mm256_set1_epi32(q->act_min), hi = _mm256_set1_epi32(q->act_max);
  const int full_range = q->act_min == -128 && q->act_max == 127;
  const __m256i offset_all = _mm256_set1_epi32(q->offset_all);
  const __m256i row_sum_scale = _mm256_set1_epi32(q->row_sum_scale);
  __m256i m = _mm256_set1_epi32(q->multiplier_all), ls, rs;
  split_shift8(_mm256_set1_epi32(q->shift_all), &ls, &rs);
  int32_t i = 0;
  if (pg_requant_shift_tables(q)) { /* FULLY_CONNECTED on a host (quant.h) */
    const int32_t *offset = q->offset, *multiplier = q->multiplier;
    const int32_t *right_shift = q->right_shift, *round_mask = q->round_mask;
    for (; i + 8 <= n; i += 8) {
      const __m256i x =
          _mm256_add_epi32(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i)),
                                            offset_all),
                           _mm256_loadu_si256((const __m256i *)(offset + i)));
      const __m256i v = srdhm_rdbp8(x, _mm256_loadu_si256((const __m256i *)(multiplier + i)),
                                    _mm256_loadu_si256((const __m256i *)(right_shift + i)),
                                    _mm256_loadu_si256((const __m256i *)(round_mask + i)));
      store8_i8(out + i, _mm256_add_epi32(v, zp), lo, hi, full_range);
    }
  }
  for (; i + 8 <= n; i += 8) {
    __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i)), offset_all);
    if (q->offset) x = _mm256_add_epi32(x, _mm256_loadu_si256((const __m256i *)(q->offset + i)));
    if (q->row_sum) {
      const __m256i sums = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(q->row_sum + i)));
      x = _mm256_add_epi32(x, _mm256_mullo_epi32(sums, row_sum_scale));
    }
    if (q->multiplier) m = _mm256_loadu_si256((const __m256i *)(q->multiplier + i));
    if (q->shift) split_shift8(load8_i8(q->shift + i), &ls, &rs);
    store8_i8(out + i, _mm256_add_epi32(mbqm8(x, m, ls, rs), zp), lo, hi, full_range);
  }
  if (i < n) {
    pg_requant tail = *q;
    if (tail.offset) tail.offset += i;
    if (tail.row_sum) tail.row_sum += i;
    if (tail.multiplier) tail.multiplier += i;
    if (tail.shift) tail.shift += i;
    if (tail.right_shift) tail.right_shift += i;
    if (tail.round_mask) tail.round_mask += i;
    pg_requantize_scalar(acc + i, n - i, &tail, out + i);
  }
}

/* The binary loop on 8 lanes: op, the steps and fast_rescale are constants in the copies that
 * pg_binary_avx2 specializes (binary_case). */
PG_TARGET_AVX2 static inline __attribute__((always_inline)) void binary8(
    const pg_binary_params *p, const int8_t *a, int32_t a_step, const int8_t *b, int32_t b_step,
    int8_t *out, int32_t n, int op, int fast_rescale) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i off1 = _mm256_set1_epi32(p->input1_offset);
  const __m256i off2 = _mm256_set1_epi32(p->input2_offset);
  const __m256i out_off = _mm256_set1_epi32(p->output_offset);
  const __m256i lo = _mm256_set1_epi32(p->act_min), hi = _mm256_set1_epi32(p->act_max);
  const int full_range = p->act_min == -128 && p->act_max == 127;
  const __m256i lshift = _mm256_set1_epi32(p->left_shift);
  const __m256i m1 = _mm256_set1_epi32(p->input1_multiplier);
  const __m256i m2 = _mm256_set1_epi32(p->input2_multiplier);
  const __m256i mo = _mm256_set1_epi32(p->output_multiplier);
  const __m256i rs1 = _mm256_set1_epi32(-p->input1_shift); /* <= 0 by construction */
  const __m256i rs2 = _mm256_set1_epi32(-p->input2_shift);
  __m256i lso, rso;
  split_shift8(_mm256_set1_epi32(p->output_shift), &lso, &rso);
  const __m256i a_bcast = _mm256_add_epi32(_mm256_set1_epi32(a[0]), off1);
  const __m256i b_bcast = _mm256_add_epi32(_mm256_set1_epi32(b[0]), off2);
  /* Rescaled broadcast operands are loop invariant. */
  const __m256i sa_bcast = mbqm8(_mm256_sllv_epi32(a_bcast, lshift), m1, zero, rs1);
  const __m256i sb_bcast = mbqm8(_mm256_sllv_epi32(b_bcast, lshift), m2, zero, rs2);
  const input_rescale r1 = input_rescale_of(p->input1_multiplier, p->input1_shift);
  const input_rescale r2 = input_rescale_of(p->input2_multiplier, p->input2_shift);
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i x = a_step ? _mm256_add_epi32(load8_i8(a + i), off1) : a_bcast;
    const __m256i y = b_step ? _mm256_add_epi32(load8_i8(b + i), off2) : b_bcast;
    __m256i raw;
    if (op == PG_BIN_MUL) {
      raw = mbqm8(_mm256_mullo_epi32(x, y), mo, lso, rso);
    } else {
      const __m256i sa = !a_step      ? sa_bcast
                         : fast_rescale ? rescale8(x, &r1)
                                        : mbqm8(_mm256_sllv_epi32(x, lshift), m1, zero, rs1);
      const __m256i sb = !b_step      ? sb_bcast
                         : fast_rescale ? rescale8(y, &r2)
                                        : mbqm8(_mm256_sllv_epi32(y, lshift), m2, zero, rs2);
      __m256i v;
      if (op == PG_BIN_SQUARED_DIFFERENCE) {
        const __m256i diff = _mm256_sub_epi32(sa, sb);
        v = _mm256_mullo_epi32(diff, diff);
      } else {
        v = op == PG_BIN_SUB ? _mm256_sub_epi32(sa, sb) : _mm256_add_epi32(sa, sb);
      }
      raw = mbqm8(v, mo, lso, rso);
    }
    store8_i8(out + i, _mm256_add_epi32(raw, out_off), lo, hi, full_range);
  }
  if (i < n) pg_binary_scalar(p, a + i * a_step, a_step, b + i * b_step, b_step, out + i, n - i);
}

/* The step model's binary ops, which the SIMD kernels run as specialized copies of their loop
 * (the rest take the general one): each copy then holds only its own constants in registers,
 * where the general loop spills some (AVX2: 16.1 -> 15.7 us/token, AVX-512 ~0.1 us). */
typedef enum binary_case {
  BINARY_ADD,         /* residuals, attention's two halves */
  BINARY_SUB_BCAST_B, /* x - mean */
  BINARY_MUL,         /* x * x, x * gamma */
  BINARY_MUL_BCAST_B, /* x * rsqrt(variance) */
  BINARY_OTHER
} binary_case;

static binary_case binary_case_of(const pg_binary_params *p, int32_t a_step, int32_t b_step) {
  const int fast = p->left_shift == RESCALE_LEFT_SHIFT;
  if (p->op == PG_BIN_ADD && a_step && b_step && fast) return BINARY_ADD;
  if (p->op == PG_BIN_SUB && a_step && !b_step && fast) return BINARY_SUB_BCAST_B;
  if (p->op == PG_BIN_MUL && a_step) return b_step ? BINARY_MUL : BINARY_MUL_BCAST_B;
  return BINARY_OTHER;
}

PG_TARGET_AVX2 void pg_binary_avx2(const pg_binary_params *p, const int8_t *a, int32_t a_step,
                                   const int8_t *b, int32_t b_step, int8_t *out, int32_t n) {
  switch (binary_case_of(p, a_step, b_step)) {
    case BINARY_ADD: binary8(p, a, 1, b, 1, out, n, PG_BIN_ADD, 1); break;
    case BINARY_SUB_BCAST_B: binary8(p, a, 1, b, 0, out, n, PG_BIN_SUB, 1); break;
    case BINARY_MUL: binary8(p, a, 1, b, 1, out, n, PG_BIN_MUL, 0); break;
    case BINARY_MUL_BCAST_B: binary8(p, a, 1, b, 0, out, n, PG_BIN_MUL, 0); break;
    default:
      binary8(p, a, a_step, b, b_step, out, n, p->op, p->left_shift == RESCALE_LEFT_SHIFT);
  }
}

/* Row sums: vpsadbw against 0 sums eight unsigned bytes (x + 128: the sign bit flipped) per
 * 64-bit lane; the rest of a row (fewer than 32 bytes) is added one by one. */
PG_TARGET_AVX2 void pg_row_sums_avx2(const int8_t *m, int32_t rows, int32_t cols, int32_t stride,
                                     int32_t *out) {
  const __m256i sign = _mm256_set1_epi8(-128), zero = _mm256_setzero_si256();
  const int32_t vec = cols & ~31;
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t *row = m + (intptr_t)r * stride;
    __m256i sums = zero;
    for (int32_t c = 0; c < vec; c += 32) {
      const __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(row + c)), sign);
      sums = _mm256_add_epi64(sums, _mm256_sad_epu8(u, zero));
    }
    __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
    s2 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
    uint32_t total = (uint32_t)_mm_cvtsi128_si32(s2) - 128u * (uint32_t)vec;
    for (int32_t c = vec; c < cols; ++c) total += (uint32_t)(int32_t)row[c];
    out[r] = (int32_t)total;
  }
}

/* ---- bulk kernels: AVX-512 (16 lanes; the same arithmetic as the AVX2 ones above) -------- */

/* mbqm8 on 16 lanes, after its left shift, with the rounding shift's mask (2^rs - 1) and half
 * given: a per-tensor shift's are worked out once per call. Mask registers do the blend and
 * the rounding corrections. */
PG_TARGET_AVX512VNNI static inline __m512i srdhm_rdbp16(__m512i x, __m512i m, __m512i rs,
                                                        __m512i mask, __m512i half) {
  const __m512i round = _mm512_set1_epi64(INT64_C(1) << 30), one = _mm512_set1_epi32(1);
  __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), round);
  __m512i odd = _mm512_add_epi64(
      _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)), round);
  even = _mm512_srli_epi64(even, 31);
  odd = _mm512_slli_epi64(odd, 1);
  const __m512i t = _mm512_mask_blend_epi32(0xAAAA, even, odd);
  const __m512i remainder = _mm512_and_si512(t, mask);
  const __mmask16 negative = _mm512_cmplt_epi32_mask(t, _mm512_setzero_si512());
  const __m512i threshold = _mm512_mask_add_epi32(half, negative, half, one);
  const __m512i shifted = _mm512_srav_epi32(t, rs);
  return _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(remainder, threshold), shifted,
                               one);
}

PG_TARGET_AVX512VNNI static inline __m512i pot_mask16(__m512i rs) {
  const __m512i one = _mm512_set1_epi32(1);
  return _mm512_sub_epi32(_mm512_sllv_epi32(one, rs), one);
}

PG_TARGET_AVX512VNNI static inline __m512i mbqm16(__m512i x, __m512i m, __m512i ls, __m512i rs) {
  const __m512i mask = pot_mask16(rs);
  return srdhm_rdbp16(_mm512_sllv_epi32(x, ls), m, rs, mask, _mm512_srai_epi32(mask, 1));
}

PG_TARGET_AVX512VNNI static inline void split_shift16(__m512i shift, __m512i *ls, __m512i *rs) {
  const __m512i zero = _mm512_setzero_si512();
  *ls = _mm512_max_epi32(shift, zero);
  *rs = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
}

PG_TARGET_AVX512VNNI void pg_row_sums_avx512(const int8_t *m, int32_t rows, int32_t cols,
                                             int32_t stride, int32_t *out) {
  for (int32_t r = 0; r < rows; ++r) out[r] = pg_sum_i8_avx512(m + (intptr_t)r * stride, cols);
}

/* Clamps 16 int32 lanes to [lo, hi] and stores the first min(left, 16) as int8; a whole
 * vector with a plain store (masked stores to memory are slow on Zen 4: a masked vpmovdb to
 * memory cost a third of requantize). The int8 range itself (no fused activation: full_range)
 * is the saturating narrowing's, which saves the two clamps. */
PG_TARGET_AVX512VNNI static inline void clamp_store_i8(int8_t *out, __m512i v, __m512i lo,
                                                      __m512i hi, int full_range, int32_t left) {
  const __m128i bytes = full_range
                            ? _mm512_cvtsepi32_epi8(v)
                            : _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi));
  if (left >= 16) {
    _mm_storeu_si128((__m128i *)out, bytes);
  } else {
    _mm_mask_storeu_epi8(out, pg_lanes16(left), bytes);
  }
}

/* The requantization loop; the flags are constants at the two call sites that matter
 * (FULLY_CONNECTED's per-channel case, BATCH_MATMUL's per-tensor one), which the compiler
 * unswitches: no per-iteration tests, and a per-tensor shift's constants out of the loop.
 * right_only: no left shifts (every shift <= 0). The last (or only) 16 lanes are masked: no
 * scalar tail (attention's rows have any length). */
PG_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void requantize16(
    const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out, int has_offset,
    int has_row_sum, int has_multiplier, int has_shift, int right_only, int shift_tables) {
  /* Locals: out may alias anything, so fields of q would be reloaded. */
  const int32_t *offset = q->offset, *multiplier = q->multiplier;
  const int16_t *row_sum = q->row_sum;
  const int8_t *shift = q->shift;
  const int32_t *right_shift = q->right_shift, *round_mask = q->round_mask;
  const __m512i zp = _mm512_set1_epi32(q->output_zero_point);
  const __m512i lo = _mm512_set1_epi32(q->act_min), hi = _mm512_set1_epi32(q->act_max);
  const int full_range = q->act_min == -128 && q->act_max == 127;
  const __m512i offset_all = _mm512_set1_epi32(q->offset_all);
  const __m512i row_sum_scale = _mm512_set1_epi32(q->row_sum_scale);
  __m512i m = _mm512_set1_epi32(q->multiplier_all), ls, rs;
  split_shift16(_mm512_set1_epi32(q->shift_all), &ls, &rs);
  __m512i mask = pot_mask16(rs), half = _mm512_srai_epi32(mask, 1);
  for (int32_t i = 0; i < n; i += 16) {
    const __mmask16 k = pg_lanes16(n - i);
    __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + i), offset_all);
    if (has_offset) x = _mm512_add_epi32(x, _mm512_maskz_loadu_epi32(k, offset + i));
    if (has_row_sum) {
      const __m512i sums = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, row_sum + i));
      x = _mm512_add_epi32(x, _mm512_mullo_epi32(sums, row_sum_scale));
    }
    if (has_multiplier) m = _mm512_maskz_loadu_epi32(k, multiplier + i);
    if (has_shift && shift_tables) {
      rs = _mm512_maskz_loadu_epi32(k, right_shift + i);
      mask = _mm512_maskz_loadu_epi32(k, round_mask + i);
      half = _mm512_srai_epi32(mask, 1);
    } else if (has_shift) {
      split_shift16(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, shift + i)), &ls, &rs);
      mask = pot_mask16(rs);
      half = _mm512_srai_epi32(mask, 1);
    }
    if (!right_only) x = _mm512_sllv_epi32(x, ls);
    clamp_store_i8(out + i, _mm512_add_epi32(srdhm_rdbp16(x, m, rs, mask, half), zp), lo, hi,
                   full_range, n - i);
  }
}

PG_TARGET_AVX512VNNI void pg_requantize_avx512(const int32_t *acc, int32_t n,
                                               const pg_requant *q, int8_t *out) {
  const int has_offset = q->offset != NULL, has_row_sum = q->row_sum != NULL;
  const int has_multiplier = q->multiplier != NULL, has_shift = q->shift != NULL;
  if (pg_requant_shift_tables(q)) {
    requantize16(acc, n, q, out, 1, 0, 1, 1, 1, 1); /* FULLY_CONNECTED on a host (quant.h) */
  } else if (!has_multiplier && !has_shift && !has_row_sum && !has_offset &&
             q->shift_all <= 0) {
    requantize16(acc, n, q, out, 0, 0, 0, 0, 1, 0); /* BATCH_MATMUL */
  } else {
    requantize16(acc, n, q, out, has_offset, has_row_sum, has_multiplier, has_shift, 0, 0);
  }
}

/* rescale8 on 16 lanes. */
PG_TARGET_AVX512VNNI static inline __m512i rescale16(__m512i v, const input_rescale *r) {
  const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(r->half);
  const __m512i t = _mm512_add_epi32(
      _mm512_mullo_epi32(v, _mm512_set1_epi32(r->mh)),
      _mm512_srai_epi32(_mm512_add_epi32(_mm512_mullo_epi32(v, _mm512_set1_epi32(r->ml)),
                                         _mm512_set1_epi32(1 << 10)),
                        11));
  const __mmask16 negative = _mm512_cmplt_epi32_mask(t, _mm512_setzero_si512());
  const __m512i threshold = _mm512_mask_add_epi32(half, negative, half, one);
  const __m512i shifted = _mm512_sra_epi32(t, _mm_cvtsi32_si128(r->rs));
  const __m512i remainder = _mm512_and_si512(t, _mm512_set1_epi32(r->mask));
  return _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(remainder, threshold), shifted,
                               one);
}

/* binary8 on 16 lanes. */
PG_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void binary16(
    const pg_binary_params *p, const int8_t *a, int32_t a_step, const int8_t *b, int32_t b_step,
    int8_t *out, int32_t n, int op, int fast_rescale) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i off1 = _mm512_set1_epi32(p->input1_offset);
  const __m512i off2 = _mm512_set1_epi32(p->input2_offset);
  const __m512i out_off = _mm512_set1_epi32(p->output_offset);
  const __m512i lo = _mm512_set1_epi32(p->act_min), hi = _mm512_set1_epi32(p->act_max);
  const int full_range = p->act_min == -128 && p->act_max == 127;
  const __m512i lshift = _mm512_set1_epi32(p->left_shift);
  const __m512i m1 = _mm512_set1_epi32(p->input1_multiplier);
  const __m512i m2 = _mm512_set1_epi32(p->input2_multiplier);
  const __m512i mo = _mm512_set1_epi32(p->output_multiplier);
  const __m512i rs1 = _mm512_set1_epi32(-p->input1_shift); /* <= 0 by construction */
  const __m512i rs2 = _mm512_set1_epi32(-p->input2_shift);
  __m512i lso, rso;
  split_shift16(_mm512_set1_epi32(p->output_shift), &lso, &rso);
  const __m512i a_bcast = _mm512_add_epi32(_mm512_set1_epi32(a[0]), off1);
  const __m512i b_bcast = _mm512_add_epi32(_mm512_set1_epi32(b[0]), off2);
  /* Rescaled broadcast operands are loop invariant: computed only where an operand is
   * broadcast (MUL does not rescale its inputs); measured 0.3 us/token on the VNNI path. */
  const int rescale = op != PG_BIN_MUL;
  const __m512i sa_bcast =
      rescale && !a_step ? mbqm16(_mm512_sllv_epi32(a_bcast, lshift), m1, zero, rs1) : zero;
  const __m512i sb_bcast =
      rescale && !b_step ? mbqm16(_mm512_sllv_epi32(b_bcast, lshift), m2, zero, rs2) : zero;
  const input_rescale r1 = input_rescale_of(p->input1_multiplier, p->input1_shift);
  const input_rescale r2 = input_rescale_of(p->input2_multiplier, p->input2_shift);
  for (int32_t i = 0; i < n; i += 16) {
    const __mmask16 k = pg_lanes16(n - i);
    const __m512i x =
        a_step ? _mm512_add_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, a + i)), off1)
               : a_bcast;
    const __m512i y =
        b_step ? _mm512_add_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b + i)), off2)
               : b_bcast;
    __m512i raw;
    if (op == PG_BIN_MUL) {
      raw = mbqm16(_mm512_mullo_epi32(x, y), mo, lso, rso);
    } else {
      const __m512i sa = !a_step      ? sa_bcast
                         : fast_rescale ? rescale16(x, &r1)
                                        : mbqm16(_mm512_sllv_epi32(x, lshift), m1, zero, rs1);
      const __m512i sb = !b_step      ? sb_bcast
                         : fast_rescale ? rescale16(y, &r2)
                                        : mbqm16(_mm512_sllv_epi32(y, lshift), m2, zero, rs2);
      __m512i v;
      if (op == PG_BIN_SQUARED_DIFFERENCE) {
        const __m512i diff = _mm512_sub_epi32(sa, sb);
        v = _mm512_mullo_epi32(diff, diff);
      } else {
        v = op == PG_BIN_SUB ? _mm512_sub_epi32(sa, sb) : _mm512_add_epi32(sa, sb);
      }
      raw = mbqm16(v, mo, lso, rso);
    }
    clamp_store_i8(out + i, _mm512_add_epi32(raw, out_off), lo, hi, full_range, n - i);
  }
}

PG_TARGET_AVX512VNNI void pg_binary_avx512(const pg_binary_params *p, const int8_t *a,
                                           int32_t a_step, const int8_t *b, int32_t b_step,
                                           int8_t *out, int32_t n) {
  switch (binary_case_of(p, a_step, b_step)) {
    case BINARY_ADD: binary16(p, a, 1, b, 1, out, n, PG_BIN_ADD, 1); break;
    case BINARY_SUB_BCAST_B: binary16(p, a, 1, b, 0, out, n, PG_BIN_SUB, 1); break;
    case BINARY_MUL: binary16(p, a, 1, b, 1, out, n, PG_BIN_MUL, 0); break;
    case BINARY_MUL_BCAST_B: binary16(p, a, 1, b, 0, out, n, PG_BIN_MUL, 0); break;
    default:
      binary16(p, a, a_step, b, b_step, out, n, p->op, p->left_shift == RESCALE_LEFT_SHIFT);
  }
}

/* The scalar row's arithmetic on 8 lanes: the exponentials are gathered from the table, the
 * int32 sum wraps (so its order does not matter), the output is mbqm8's product and shift. */
PG_TARGET_AVX2 int pg_softmax_row_avx2(const int8_t *x, int32_t depth, const int32_t *exp_q0,
                                       int8_t *y, int32_t last_count) {
  __m256i vmax = _mm256_set1_epi8(-128);
  int32_t c = 0;
  for (; c + 32 <= depth; c += 32) {
    vmax = _mm256_max_epi8(vmax, _mm256_loadu_si256((const __m256i *)(x + c)));
  }
  __m128i m16 = _mm_max_epi8(_mm256_castsi256_si128(vmax), _mm256_extracti128_si256(vmax, 1));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 8));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 4));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 2));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 1));
  int32_t max_in_row = (int8_t)_mm_cvtsi128_si32(m16);
  for (; c < depth; ++c) {
    if (x[c] > max_in_row) max_in_row = x[c];
  }
  const __m256i vmax32 = _mm256_set1_epi32(max_in_row);
  /* exp_q0 >= 0, so RoundingDivideByPOT(e, 12) is (e + 2048) >> 12 without overflow (in
   * unsigned lanes). */
  const __m256i half = _mm256_set1_epi32(2048);
  __m256i vsum = _mm256_setzero_si256();
  c = 0;
  for (; c + 8 <= depth; c += 8) {
    const __m256i e = _mm256_i32gather_epi32((const int *)exp_q0,
                                             _mm256_sub_epi32(vmax32, load8_i8(x + c)), 4);
    vsum = _mm256_add_epi32(vsum, _mm256_srli_epi32(_mm256_add_epi32(e, half), 12));
  }
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(vsum), _mm256_extracti128_si256(vsum, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
  int32_t sum_of_exps = _mm_cvtsi128_si32(s4);
  for (; c < depth; ++c) {
    sum_of_exps = pg_wrap_add(sum_of_exps,
                              pg_rounding_divide_by_pot(exp_q0[max_in_row - x[c]], 12));
  }
  sum_of_exps = pg_wrap_add(sum_of_exps,
                            pg_softmax_last_extra(x, depth, exp_q0, max_in_row, last_count));
  int num_bits_over_unit;
  const int32_t shifted_scale = pg_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
  const int exponent = num_bits_over_unit + 31 - 8;
  if (exponent < 0 || exponent > 31) return -1;
  const __m256i scale = _mm256_set1_epi32(shifted_scale), zero = _mm256_setzero_si256();
  const __m256i rs = _mm256_set1_epi32(exponent), offset = _mm256_set1_epi32(-128);
  const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
  c = 0;
  for (; c + 8 <= depth; c += 8) {
    const __m256i e = _mm256_i32gather_epi32((const int *)exp_q0,
                                             _mm256_sub_epi32(vmax32, load8_i8(x + c)), 4);
    store8_i8(y + c, _mm256_add_epi32(mbqm8(e, scale, zero, rs), offset), lo, hi, 1);
  }
  for (; c < depth; ++c) {
    const int32_t unsat = pg_rounding_divide_by_pot(
        pg_saturating_rounding_doubling_high_mul(shifted_scale, exp_q0[max_in_row - x[c]]),
        exponent);
    y[c] = (int8_t)pg_clamp(unsat - 128, -128, 127);
  }
  return 0;
}

/* The same row on 16 lanes. Each exponential is gathered once: the first pass keeps them
 * for the second (a row of up to PG_SOFTMAX_KEEP; longer rows take the AVX2 kernel). The
 * tail lanes are masked. */
#define PG_SOFTMAX_KEEP 1024
PG_TARGET_AVX512VNNI int pg_softmax_row_avx512(const int8_t *x, int32_t depth,
                                               const int32_t *exp_q0, int8_t *y,
                                               int32_t last_count) {
  if (depth > PG_SOFTMAX_KEEP) return pg_softmax_row_avx2(x, depth, exp_q0, y, last_count);
  int32_t exps[PG_SOFTMAX_KEEP];
  __m512i vmax = _mm512_set1_epi8(-128);
  for (int32_t c = 0; c < depth; c += 64) {
    const __mmask64 k = pg_lanes64(depth - c);
    vmax = _mm512_mask_max_epi8(vmax, k, vmax, _mm512_maskz_loadu_epi8(k, x + c));
  }
  __m256i m32 = _mm256_max_epi8(_mm512_castsi512_si256(vmax), _mm512_extracti64x4_epi64(vmax, 1));
  __m128i m16 = _mm_max_epi8(_mm256_castsi256_si128(m32), _mm256_extracti128_si256(m32, 1));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 8));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 4));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 2));
  m16 = _mm_max_epi8(m16, _mm_srli_si128(m16, 1));
  const int32_t max_in_row = (int8_t)_mm_cvtsi128_si32(m16);
  const __m512i vmax32 = _mm512_set1_epi32(max_in_row);
  /* exp_q0 >= 0, so RoundingDivideByPOT(e, 12) is (e + 2048) >> 12 without overflow (in
   * unsigned lanes); masked lanes gather nothing and add 0. */
  const __m512i half = _mm512_set1_epi32(2048);
  __m512i vsum = _mm512_setzero_si512();
  for (int32_t c = 0; c < depth; c += 16) {
    const __mmask16 k = pg_lanes16(depth - c);
    const __m512i index = _mm512_sub_epi32(vmax32, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, x + c)));
    const __m512i e = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, index, exp_q0, 4);
    _mm512_storeu_si512(exps + c, e);
    vsum = _mm512_mask_add_epi32(vsum, k, vsum, _mm512_srli_epi32(_mm512_add_epi32(e, half), 12));
  }
  int num_bits_over_unit;
  const int32_t sum_of_exps = pg_wrap_add(
      _mm512_reduce_add_epi32(vsum),
      pg_softmax_last_extra(x, depth, exp_q0, max_in_row, last_count));
  const int32_t shifted_scale = pg_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
  const int exponent = num_bits_over_unit + 31 - 8;
  if (exponent < 0 || exponent > 31) return -1;
  const __m512i scale = _mm512_set1_epi32(shifted_scale), zero = _mm512_setzero_si512();
  const __m512i rs = _mm512_set1_epi32(exponent), offset = _mm512_set1_epi32(-128);
  const __m512i mask = pot_mask16(rs), half_mask = _mm512_srai_epi32(mask, 1);
  for (int32_t c = 0; c < depth; c += 16) {
    const __m512i e = _mm512_loadu_si512(exps + c);
    const __m512i v = srdhm_rdbp16(e, scale, rs, mask, half_mask);
    clamp_store_i8(y + c, _mm512_add_epi32(v, offset), zero, zero, 1, depth - c);
  }
  return 0;
}

#endif /* PG_SIMD_DISPATCH */
