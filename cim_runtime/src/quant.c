/* Quantization arithmetic; see quant.h. Learned from TensorFlow Lite's
 * kernels/internal/common.h, quantization_util.cc and gemmlowp's
 * fixedpoint.h; written for this runtime. */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "avx2_util.h"

#define PG_INT32_MIN (-2147483647 - 1)
#define PG_INT32_MAX 2147483647

/* ---- scalar helpers ------------------------------------------------------ */

int pg_clz32(uint32_t x) {
  if (x == 0) return 32;
  int n = 0;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

int pg_clz64(uint64_t x) {
  if (x == 0) return 64;
  int n = 0;
  while (!(x & 0x8000000000000000ull)) {
    x <<= 1;
    ++n;
  }
  return n;
}

double pg_frexp(double x, int *exponent) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int biased = (int)((bits >> 52) & 0x7ff);
  if (x == 0.0 || biased == 0x7ff) { /* zero, inf, nan: as frexp */
    *exponent = 0;
    return x;
  }
  int extra = 0;
  if (biased == 0) { /* subnormal: scale into the normal range first */
    x *= 18014398509481984.0; /* 2^54 */
    memcpy(&bits, &x, sizeof bits);
    biased = (int)((bits >> 52) & 0x7ff);
    extra = -54;
  }
  *exponent = biased - 1022 + extra;
  bits = (bits & ~(0x7ffull << 52)) | (0x3feull << 52);
  double m;
  memcpy(&m, &bits, sizeof m);
  return m;
}

double pg_round(double x) {
  double t = (double)(int64_t)x; /* truncation toward zero */
  double frac = x - t;
  if (frac >= 0.5) t += 1.0;
  if (frac <= -0.5) t -= 1.0;
  return t;
}

float pg_roundf(float x) {
  float t = (float)(int64_t)x;
  float frac = x - t;
  if (frac >= 0.5f) t += 1.0f;
  if (frac <= -0.5f) t -= 1.0f;
  return t;
}

float pg_sqrtf(float x) { return sqrtf(x); }

/* ---- gemmlowp fixed point ------------------------------------------------ */

int32_t pg_saturating_rounding_multiply_by_pot(int32_t x, int exponent) {
  if (exponent == 0) return x;
  if (exponent < 0) return pg_rounding_divide_by_pot(x, -exponent);
  const int32_t threshold = (int32_t)((INT64_C(1) << (31 - exponent)) - 1);
  if (x > threshold) return PG_INT32_MAX;
  if (x < -threshold) return PG_INT32_MIN;
  return pg_wrap_shl(x, exponent);
}

#define SRDHM pg_saturating_rounding_doubling_high_mul

/* exp(a) for a in [-1/4, 0), FixedPoint<int32, 0>. */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668;    /* exp(-1/8) */
  const int32_t constant_1_over_3 = 715827883; /* 1/3 */
  const int32_t x = pg_wrap_add(a, 1 << 28);   /* a + 1/8 */
  const int32_t x2 = SRDHM(x, x);
  const int32_t x3 = SRDHM(x2, x);
  const int32_t x4 = SRDHM(x2, x2);
  const int32_t x4_over_4 = pg_rounding_divide_by_pot(x4, 2);
  const int32_t poly = pg_rounding_divide_by_pot(
      pg_wrap_add(SRDHM(pg_wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
  return pg_wrap_add(constant_term, SRDHM(constant_term, pg_wrap_add(x, poly)));
}

int32_t pg_exp_on_negative_values_q5(int32_t a) {
  enum { kIntegerBits = 5, kFractionalBits = 26 };
  const int32_t one_quarter = 1 << (kFractionalBits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = pg_wrap_sub(a & mask, one_quarter);
  int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      pg_saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, kIntegerBits));
  const int32_t remainder = pg_wrap_sub(a_mod_quarter_minus_one_quarter, a);
  /* Barrel shifter: multiply by exp(-2^k) for each set bit of the remainder. */
  static const int32_t multipliers[7] = {
      1672461947, /* exp(-1/4) */
      1302514674, /* exp(-1/2) */
      790015084,  /* exp(-1) */
      290630308,  /* exp(-2) */
      39332535,   /* exp(-4) */
      720401,     /* exp(-8) */
      242,        /* exp(-16) */
  };
  for (int exponent = -2; exponent <= 4; ++exponent) {
    const int shift_amount = kFractionalBits + exponent;
    if (remainder & (int32_t)(UINT32_C(1) << shift_amount)) {
      result = SRDHM(result, multipliers[exponent + 2]);
    }
  }
  /* kIntegerBits == 5: no clamp below -32 is needed (gemmlowp skips it). */
  if (a == 0) result = PG_INT32_MAX; /* exactly one */
  return result;
}

int32_t pg_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  /* RoundingHalfSum(a, One) */
  const int64_t sum = (int64_t)a + (int64_t)PG_INT32_MAX;
  const int64_t sign = sum >= 0 ? 1 : -1;
  const int32_t half_denominator = (int32_t)((sum + sign) / 2);
  const int32_t constant_48_over_17 = 1515870810;      /* Q2.29 */
  const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
  int32_t x = pg_wrap_add(constant_48_over_17, SRDHM(half_denominator, constant_neg_32_over_17));
  const int32_t one_q2 = 1 << 29;
  for (int i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = SRDHM(half_denominator, x);
    const int32_t one_minus = pg_wrap_sub(one_q2, half_denominator_times_x);
    x = pg_wrap_add(x, pg_saturating_rounding_multiply_by_pot(SRDHM(x, one_minus), 2));
  }
  /* ExactMulByPot<-1> then Rescale<0> from 1 integer bit. */
  return pg_saturating_rounding_multiply_by_pot(x, 1);
}

int32_t pg_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit) {
  const int headroom_plus_one = pg_clz32((uint32_t)x);
  *num_bits_over_unit = x_integer_digits - headroom_plus_one;
  const uint32_t shifted = headroom_plus_one >= 32 ? 0u : ((uint32_t)x << headroom_plus_one);
  const int32_t shifted_sum_minus_one = (int32_t)(shifted - (UINT32_C(1) << 31));
  return pg_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

void pg_get_inv_sqrt_quantized_multiplier_exp(int32_t input, int reverse_shift,
                                              int32_t *output_inv_sqrt, int *output_shift) {
  if (input <= 1) {
    /* TFLM treats 0 like 1 (the only values without a valid computation). */
    *output_inv_sqrt = PG_INT32_MAX;
    *output_shift = 0;
    return;
  }
  *output_shift = 11;
  while (input >= (1 << 29)) {
    input /= 4;
    ++*output_shift;
  }
  const unsigned max_left_shift_bits = (unsigned)pg_clz32((uint32_t)input) - 1;
  const unsigned max_left_shift_bit_pairs = max_left_shift_bits / 2;
  const unsigned left_shift_bit_pairs = max_left_shift_bit_pairs - 1;
  *output_shift -= (int)left_shift_bit_pairs;
  input = pg_wrap_shl(input, (int)(2 * left_shift_bit_pairs));
  /* Newton-Raphson in FixedPoint<int32, 3>. */
  const int32_t fixedpoint_input = input >> 1;
  const int32_t fixedpoint_half_input = pg_rounding_divide_by_pot(fixedpoint_input, 1);
  const int32_t fixedpoint_half_three = (1 << 28) + (1 << 27);
  int32_t x = 1 << 28; /* one in Q3.28 */
  for (int i = 0; i < 5; ++i) {
    const int32_t x3 = pg_saturating_rounding_multiply_by_pot(SRDHM(SRDHM(x, x), x), 6);
    x = pg_saturating_rounding_multiply_by_pot(
        pg_wrap_sub(SRDHM(fixedpoint_half_three, x), SRDHM(fixedpoint_half_input, x3)), 3);
  }
  const int32_t fixedpoint_half_sqrt_2 = 1518500250; /* sqrt(2)/2 in Q0.31 */
  x = SRDHM(x, fixedpoint_half_sqrt_2);
  *output_inv_sqrt = x;
  if (*output_shift < 0) {
    *output_inv_sqrt = pg_wrap_shl(*output_inv_sqrt, -*output_shift);
    *output_shift = 0;
  }
  *output_shift *= reverse_shift;
}

#undef SRDHM

/* ---- multiplier derivation ----------------------------------------------- */

int pg_quantize_multiplier(double real_multiplier, int32_t *quantized_multiplier, int *shift) {
  *quantized_multiplier = 0;
  *shift = 0;
  if (real_multiplier == 0.0) return 0;
  if (!(real_multiplier > 0.0) || real_multiplier > 1e300) return -1; /* <0, NaN, inf */
  int exponent;
  const double q = pg_frexp(real_multiplier, &exponent);
  int64_t q_fixed = (int64_t)pg_round(q * (double)(INT64_C(1) << 31));
  if (q_fixed == (INT64_C(1) << 31)) {
    q_fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) { /* flush tiny multipliers to zero, as TFLM does */
    exponent = 0;
    q_fixed = 0;
  }
  if (exponent > 31) return -1; /* left shift would overflow every input */
  *quantized_multiplier = (int32_t)q_fixed;
  *shift = exponent;
  return 0;
}

int pg_quantize_multiplier_smaller_than_one(double real_multiplier,
                                            int32_t *quantized_multiplier, int *shift) {
  if (!(real_multiplier > 0.0 && real_multiplier < 1.0)) return -1;
  if (pg_quantize_multiplier(real_multiplier, quantized_multiplier, shift) != 0) return -1;
  return *shift <= 0 ? 0 : -1;
}

int pg_quantize_multiplier_greater_than_one(double real_multiplier,
                                            int32_t *quantized_multiplier, int *shift) {
  if (!(real_multiplier > 1.0)) return -1;
  if (pg_quantize_multiplier(real_multiplier, quantized_multiplier, shift) != 0) return -1;
  return *shift >= 0 ? 0 : -1;
}

int pg_softmax_prepare(double beta, double input_scale, int32_t *input_multiplier,
                       int *input_left_shift, int32_t *diff_min) {
  enum { kScaledDiffIntegerBits = 5 };
  const double max_real_multiplier = (double)((INT64_C(1) << 31) - 1);
  double m = beta * input_scale * (double)(1 << (31 - kScaledDiffIntegerBits));
  if (m > max_real_multiplier) m = max_real_multiplier;
  if (pg_quantize_multiplier_greater_than_one(m, input_multiplier, input_left_shift) != 0) {
    return -1;
  }
  if (*input_left_shift > 31) return -1;
  /* CalculateInputRadius(5, left_shift, 31) */
  const double max_input_rescaled = 1.0 * ((1 << kScaledDiffIntegerBits) - 1) *
                                    (double)(INT64_C(1) << (31 - kScaledDiffIntegerBits)) /
                                    (double)(INT64_C(1) << *input_left_shift);
  *diff_min = -(int32_t)max_input_rescaled; /* floor of a positive value */
  return 0;
}

int32_t pg_softmax_exp(int32_t input_diff, int32_t input_multiplier, int input_left_shift,
                       int32_t diff_min) {
  if (input_diff < diff_min) return 0;
  const int32_t rescaled =
      pg_multiply_by_quantized_multiplier(input_diff, input_multiplier, input_left_shift);
  return pg_exp_on_negative_values_q5(rescaled);
}

/* ---- bulk kernels: scalar reference ------------------------------------------ */

/* MultiplyByQuantizedMultiplier with its shift split and RoundingDivideByPOT's mask and half
 * mask worked out once per call rather than per element (the scalar loops below run on
 * rv32imac, where every instruction counts): the same result as
 * pg_multiply_by_quantized_multiplier for every input. */
typedef struct mbqm {
  int32_t multiplier;
  int left, right;   /* left shift before, rounding right shift after the high multiply */
  int32_t mask, half; /* (1 << right) - 1 and mask >> 1 */
} mbqm;

static inline mbqm mbqm_of(int32_t multiplier, int shift) {
  mbqm q;
  q.multiplier = multiplier;
  q.left = shift > 0 ? shift : 0;
  q.right = shift > 0 ? 0 : -shift;
  q.mask = (int32_t)((UINT32_C(1) << q.right) - 1u);
  q.half = q.mask >> 1;
  return q;
}

static inline int32_t mbqm_apply(int32_t x, const mbqm *q) {
  const int64_t product = (int64_t)pg_wrap_shl(x, q->left) * q->multiplier;
  /* (product + 2^30) >> 31 from the two 32-bit halves without a 64-bit add: 2 hi +
   * floor((lo + 2^30) / 2^31), and the latter is ((lo >> 30) + 1) >> 1 (0, 1, 1, 2). */
  const uint32_t lo = (uint32_t)product;
  const int32_t high = (int32_t)((uint32_t)(product >> 32) * 2u + (((lo >> 30) + 1u) >> 1));
  /* Round half away from zero: the threshold is half, plus one for negative values. */
  return (high >> q->right) + ((high & q->mask) > q->half - (high >> 31));
}

void pg_requantize_scalar(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out) {
  /* Loop invariants in locals: out may alias anything, so fields of q would be reloaded. */
  const int32_t offset_all = q->offset_all, row_sum_scale = q->row_sum_scale;
  const int32_t zero_point = q->output_zero_point, lo = q->act_min, hi = q->act_max;
  const int32_t *offset = q->offset;
  const int16_t *row_sum = q->row_sum;
  const int32_t *multiplier = q->multiplier;
  const int8_t *shift = q->shift;
  if (multiplier && shift && row_sum && !offset) {
    /* FULLY_CONNECTED's case (per-channel multipliers, zero-point row sums, no bias),
     * unswitched: the most frequent requantization of a step. Its channel multipliers are
     * usually all below one (right shifts only), which saves working out a left shift. */
    for (int32_t i = 0; i < n; ++i) {
      const int32_t x = pg_wrap_add(
          pg_wrap_add(acc[i], offset_all), (int32_t)((uint32_t)row_sum[i] * (uint32_t)row_sum_scale));
      mbqm m;
      if (q->right_shifts_only) {
        m.multiplier = multiplier[i];
        m.left = 0;
        m.right = -shift[i];
        m.mask = (int32_t)((UINT32_C(1) << m.right) - 1u);
        m.half = m.mask >> 1;
      } else {
        m = mbqm_of(multiplier[i], shift[i]);
      }
      out[i] = (int8_t)pg_clamp(pg_wrap_add(mbqm_apply(x, &m), zero_point), lo, hi);
    }
    return;
  }
  mbqm m = mbqm_of(q->multiplier_all, q->shift_all);
  for (int32_t i = 0; i < n; ++i) {
    int32_t x = pg_wrap_add(acc[i], offset_all);
    if (offset) x = pg_wrap_add(x, offset[i]);
    if (row_sum) x = pg_wrap_add(x, (int32_t)((uint32_t)row_sum[i] * (uint32_t)row_sum_scale));
    if (multiplier) m = mbqm_of(multiplier[i], shift ? shift[i] : q->shift_all);
    /* Wrapping add: only extreme (non-model) accumulators get near the int32 limits. */
    out[i] = (int8_t)pg_clamp(pg_wrap_add(mbqm_apply(x, &m), zero_point), lo, hi);
  }
}

/* ADD/SUB/SQUARED_DIFFERENCE's input rescaling: (v + offset) * 2^left_shift times a multiplier
 * below one (QuantizeMultiplierSmallerThanOne: the mbqm's own left shift is 0). */
static inline int32_t rescale_input(int32_t v, int32_t offset, int left_shift, const mbqm *m) {
  return mbqm_apply(pg_wrap_shl(v + offset, left_shift), m);
}

void pg_binary_scalar(const pg_binary_params *p, const int8_t *a, int32_t a_step,
                      const int8_t *b, int32_t b_step, int8_t *out, int32_t n) {
  const int32_t off1 = p->input1_offset, off2 = p->input2_offset, zp = p->output_offset;
  const int32_t lo = p->act_min, hi = p->act_max, op = p->op;
  const int ls = p->left_shift;
  const mbqm out_m = mbqm_of(p->output_multiplier, p->output_shift);
  const mbqm m1 = mbqm_of(p->input1_multiplier, p->input1_shift);
  const mbqm m2 = mbqm_of(p->input2_multiplier, p->input2_shift);
  int8_t *const end = out + n;
  if (op == PG_BIN_MUL) {
    for (; out < end; ++out, a += a_step, b += b_step) {
      const int32_t prod = (*a + off1) * (*b + off2);
      *out = (int8_t)pg_clamp(pg_wrap_add(zp, mbqm_apply(prod, &out_m)), lo, hi);
    }
  } else if (op == PG_BIN_SQUARED_DIFFERENCE) {
    for (; out < end; ++out, a += a_step, b += b_step) {
      const int32_t diff = rescale_input(*a, off1, ls, &m1) - rescale_input(*b, off2, ls, &m2);
      /* |diff| < 2^15: the square fits */
      *out = (int8_t)pg_clamp(pg_wrap_add(mbqm_apply(diff * diff, &out_m), zp), lo, hi);
    }
  } else {
    /* ADD, and SUB as the sum with the negated second operand (negation is exact). One loop
     * per kind of second operand keeps the constants in registers on rv32. */
    const int32_t sign = op == PG_BIN_SUB ? -1 : 1;
    if (b_step == 0) { /* broadcast: rescaled once */
      const int32_t sb = sign * rescale_input(b[0], off2, ls, &m2);
      for (; out < end; ++out, a += a_step) {
        const int32_t sum = rescale_input(*a, off1, ls, &m1) + sb;
        *out = (int8_t)pg_clamp(pg_wrap_add(mbqm_apply(sum, &out_m), zp), lo, hi);
      }
    } else {
      for (; out < end; ++out, a += a_step, ++b) {
        const int32_t sum =
            rescale_input(*a, off1, ls, &m1) + sign * rescale_input(*b, off2, ls, &m2);
        *out = (int8_t)pg_clamp(pg_wrap_add(mbqm_apply(sum, &out_m), zp), lo, hi);
      }
    }
  }
}

/* Four bytes per 32-bit load on CPUs without SIMD (rv32imac): x ^ 0x80 = x + 128 as
 * unsigned, even and odd bytes summed in two 16-bit lanes each (<= 255 per word, so
 * 256 words fit), then sum x = sum (x + 128) - 128 n. ~2 instructions per byte instead
 * of 4 for a byte loop; rows that are not 4-byte aligned take the byte loop. */
typedef uint32_t __attribute__((__may_alias__)) pg_u32_alias;

static int32_t row_sum_swar(const int8_t *row, int32_t cols) {
  const pg_u32_alias *w = (const pg_u32_alias *)(const void *)row;
  const int32_t words = cols / 4;
  int32_t total = 0;
  for (int32_t w0 = 0; w0 < words; w0 += 256) {
    const int32_t w1 = words - w0 < 256 ? words : w0 + 256;
    uint32_t even = 0, odd = 0;
    for (int32_t i = w0; i < w1; ++i) {
      const uint32_t v = w[i] ^ 0x80808080u;
      even += v & 0x00ff00ffu;
      odd += (v >> 8) & 0x00ff00ffu;
    }
    total += (int32_t)((even & 0xffffu) + (even >> 16) + (odd & 0xffffu) + (odd >> 16)) -
             128 * 4 * (w1 - w0);
  }
  for (int32_t c = words * 4; c < cols; ++c) total += row[c];
  return total;
}

void pg_row_sums_scalar(const int8_t *m, int32_t rows, int32_t cols, int32_t stride,
                        int32_t *out) {
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t *row = m + (intptr_t)r * stride;
    if ((uintptr_t)row % 4u == 0) {
      out[r] = row_sum_swar(row, cols);
    } else {
      int32_t s = 0;
      for (int32_t c = 0; c < cols; ++c) s += row[c];
      out[r] = s;
    }
  }
}

/* ---- SOFTMAX rows ------------------------------------------------------------------------ */

int pg_softmax_row_scalar(const int8_t *x, int32_t depth, const int32_t *exp_q0, int8_t *y) {
  int32_t max_in_row = -128;
  for (int32_t c = 0; c < depth; ++c) {
    if (x[c] > max_in_row) max_in_row = x[c];
  }
  /* A run of equal inputs (the causal mask's constant fills the rest of a row) reuses its
   * first entry's exponential and output: the same values, in the same order. */
  int32_t sum_of_exps = 0; /* Q12.19; wraps like TFLM's FixedPoint addition */
  int32_t prev = INT32_MIN, term = 0;
  for (int32_t c = 0; c < depth; ++c) {
    if (x[c] != prev) {
      prev = x[c];
      term = pg_rounding_divide_by_pot(exp_q0[max_in_row - prev], 12);
    }
    sum_of_exps = pg_wrap_add(sum_of_exps, term);
  }
  int num_bits_over_unit;
  const int32_t shifted_scale = pg_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
  const int exponent = num_bits_over_unit + 31 - 8;
  if (exponent < 0 || exponent > 31) return -1;
  prev = INT32_MIN;
  int8_t out_prev = 0;
  for (int32_t c = 0; c < depth; ++c) {
    if (x[c] != prev) {
      prev = x[c];
      const int32_t unsat = pg_rounding_divide_by_pot(
          pg_saturating_rounding_doubling_high_mul(shifted_scale, exp_q0[max_in_row - prev]),
          exponent);
      out_prev = (int8_t)pg_clamp(unsat - 128, -128, 127);
    }
    y[c] = out_prev;
  }
  return 0;
}

/* ---- bulk kernels: AVX2 (same results as the scalar ones above) ---------------- */
#if PG_SIMD_DISPATCH

/* MultiplyByQuantizedMultiplier on 8 lanes: x * 2^ls, then SRDHM by m (m >= 0, so
 * the saturating case a == b == INT32_MIN cannot occur), then RoundingDivideByPOT
 * by rs. ls, rs are per lane (0..31). */
PG_TARGET_AVX2 static inline __m256i mbqm8(__m256i x, __m256i m, __m256i ls, __m256i rs) {
  const __m256i round = _mm256_set1_epi64x(INT64_C(1) << 30);
  x = _mm256_sllv_epi32(x, ls);
  /* (x * m + 2^30) >> 31 in 64-bit lanes: even lanes in place, odd lanes moved down. */
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), round);
  __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), round);
  even = _mm256_srli_epi64(even, 31); /* bits 31..62 -> low dword */
  odd = _mm256_slli_epi64(odd, 1);    /* bits 31..62 -> high dword */
  const __m256i t = _mm256_blend_epi32(even, odd, 0xAA);
  /* RoundingDivideByPOT: (t >> rs) + (remainder > threshold). */
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rs), one);
  const __m256i remainder = _mm256_and_si256(t, mask);
  const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), t); /* -1 where t < 0 */
  const __m256i threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), negative);
  return _mm256_sub_epi32(_mm256_srav_epi32(t, rs), _mm256_cmpgt_epi32(remainder, threshold));
}

/* Per-lane left/right shift amounts of a TFLite shift (> 0 left, < 0 right). */
PG_TARGET_AVX2 static inline void split_shift8(__m256i shift, __m256i *ls, __m256i *rs) {
  const __m256i zero = _mm256_setzero_si256();
  *ls = _mm256_max_epi32(shift, zero);
  *rs = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
}

/* Clamps 8 int32 lanes and stores them as 8 int8. */
PG_TARGET_AVX2 static inline void store8_i8(int8_t *out, __m256i v, __m256i lo, __m256i hi) {
  v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
  const __m256i w = _mm256_packs_epi32(v, v); /* int16: [0..3 0..3 | 4..7 4..7] */
  const __m256i b = _mm256_packs_epi16(w, w); /* int8, same pattern */
  const __m128i packed =
      _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  _mm_storel_epi64((__m128i *)out, packed);
}

PG_TARGET_AVX2 static inline __m256i load8_i8(const int8_t *p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

PG_TARGET_AVX2 void pg_requantize_avx2(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out) {
  const __m256i zp = _mm256_set1_epi32(q->output_zero_point);
  const __m256i lo = _mm256_set1_epi32(q->act_min), hi = _mm256_set1_epi32(q->act_max);
  const __m256i offset_all = _mm256_set1_epi32(q->offset_all);
  const __m256i row_sum_scale = _mm256_set1_epi32(q->row_sum_scale);
  __m256i m = _mm256_set1_epi32(q->multiplier_all), ls, rs;
  split_shift8(_mm256_set1_epi32(q->shift_all), &ls, &rs);
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i)), offset_all);
    if (q->offset) x = _mm256_add_epi32(x, _mm256_loadu_si256((const __m256i *)(q->offset + i)));
    if (q->row_sum) {
      const __m256i sums = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(q->row_sum + i)));
      x = _mm256_add_epi32(x, _mm256_mullo_epi32(sums, row_sum_scale));
    }
    if (q->multiplier) m = _mm256_loadu_si256((const __m256i *)(q->multiplier + i));
    if (q->shift) split_shift8(load8_i8(q->shift + i), &ls, &rs);
    store8_i8(out + i, _mm256_add_epi32(mbqm8(x, m, ls, rs), zp), lo, hi);
  }
  if (i < n) {
    pg_requant tail = *q;
    if (tail.offset) tail.offset += i;
    if (tail.row_sum) tail.row_sum += i;
    if (tail.multiplier) tail.multiplier += i;
    if (tail.shift) tail.shift += i;
    pg_requantize_scalar(acc + i, n - i, &tail, out + i);
  }
}

PG_TARGET_AVX2 void pg_binary_avx2(const pg_binary_params *p, const int8_t *a, int32_t a_step, const int8_t *b,
                    int32_t b_step, int8_t *out, int32_t n) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i off1 = _mm256_set1_epi32(p->input1_offset);
  const __m256i off2 = _mm256_set1_epi32(p->input2_offset);
  const __m256i out_off = _mm256_set1_epi32(p->output_offset);
  const __m256i lo = _mm256_set1_epi32(p->act_min), hi = _mm256_set1_epi32(p->act_max);
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
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i x = a_step ? _mm256_add_epi32(load8_i8(a + i), off1) : a_bcast;
    const __m256i y = b_step ? _mm256_add_epi32(load8_i8(b + i), off2) : b_bcast;
    __m256i raw;
    if (p->op == PG_BIN_MUL) {
      raw = mbqm8(_mm256_mullo_epi32(x, y), mo, lso, rso);
    } else {
      const __m256i sa = a_step ? mbqm8(_mm256_sllv_epi32(x, lshift), m1, zero, rs1) : sa_bcast;
      const __m256i sb = b_step ? mbqm8(_mm256_sllv_epi32(y, lshift), m2, zero, rs2) : sb_bcast;
      __m256i v;
      if (p->op == PG_BIN_SQUARED_DIFFERENCE) {
        const __m256i diff = _mm256_sub_epi32(sa, sb);
        v = _mm256_mullo_epi32(diff, diff);
      } else {
        v = p->op == PG_BIN_SUB ? _mm256_sub_epi32(sa, sb) : _mm256_add_epi32(sa, sb);
      }
      raw = mbqm8(v, mo, lso, rso);
    }
    store8_i8(out + i, _mm256_add_epi32(raw, out_off), lo, hi);
  }
  if (i < n) pg_binary_scalar(p, a + i * a_step, a_step, b + i * b_step, b_step, out + i, n - i);
}

/* ---- bulk kernels: AVX-512 (16 lanes; the same arithmetic as the AVX2 ones above) -------- */

/* mbqm8 on 16 lanes, with mask registers for the blend and the rounding corrections. */
PG_TARGET_AVX512VNNI static inline __m512i mbqm16(__m512i x, __m512i m, __m512i ls, __m512i rs) {
  const __m512i round = _mm512_set1_epi64(INT64_C(1) << 30), one = _mm512_set1_epi32(1);
  x = _mm512_sllv_epi32(x, ls);
  __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), round);
  __m512i odd = _mm512_add_epi64(
      _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)), round);
  even = _mm512_srli_epi64(even, 31);
  odd = _mm512_slli_epi64(odd, 1);
  const __m512i t = _mm512_mask_blend_epi32(0xAAAA, even, odd);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rs), one);
  const __m512i remainder = _mm512_and_si512(t, mask);
  const __mmask16 negative = _mm512_cmplt_epi32_mask(t, _mm512_setzero_si512());
  const __m512i half = _mm512_srai_epi32(mask, 1);
  const __m512i threshold = _mm512_mask_add_epi32(half, negative, half, one);
  const __m512i shifted = _mm512_srav_epi32(t, rs);
  return _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(remainder, threshold), shifted,
                               one);
}

PG_TARGET_AVX512VNNI static inline void split_shift16(__m512i shift, __m512i *ls, __m512i *rs) {
  const __m512i zero = _mm512_setzero_si512();
  *ls = _mm512_max_epi32(shift, zero);
  *rs = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
}

PG_TARGET_AVX512VNNI static inline void store16_i8(int8_t *out, __m512i v, __m512i lo,
                                                   __m512i hi) {
  v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
  _mm_storeu_si128((__m128i *)out, _mm512_cvtepi32_epi8(v));
}

PG_TARGET_AVX512VNNI static inline __m512i load16_i8(const int8_t *p) {
  return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
}

PG_TARGET_AVX512VNNI void pg_requantize_avx512(const int32_t *acc, int32_t n,
                                               const pg_requant *q, int8_t *out) {
  const __m512i zp = _mm512_set1_epi32(q->output_zero_point);
  const __m512i lo = _mm512_set1_epi32(q->act_min), hi = _mm512_set1_epi32(q->act_max);
  const __m512i offset_all = _mm512_set1_epi32(q->offset_all);
  const __m512i row_sum_scale = _mm512_set1_epi32(q->row_sum_scale);
  __m512i m = _mm512_set1_epi32(q->multiplier_all), ls, rs;
  split_shift16(_mm512_set1_epi32(q->shift_all), &ls, &rs);
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i x = _mm512_add_epi32(_mm512_loadu_si512((const void *)(acc + i)), offset_all);
    if (q->offset) x = _mm512_add_epi32(x, _mm512_loadu_si512((const void *)(q->offset + i)));
    if (q->row_sum) {
      const __m512i sums =
          _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(q->row_sum + i)));
      x = _mm512_add_epi32(x, _mm512_mullo_epi32(sums, row_sum_scale));
    }
    if (q->multiplier) m = _mm512_loadu_si512((const void *)(q->multiplier + i));
    if (q->shift) split_shift16(load16_i8(q->shift + i), &ls, &rs);
    store16_i8(out + i, _mm512_add_epi32(mbqm16(x, m, ls, rs), zp), lo, hi);
  }
  if (i < n) { /* fewer than 16 left: AVX2's 8 lanes, then scalar */
    pg_requant tail = *q;
    if (tail.offset) tail.offset += i;
    if (tail.row_sum) tail.row_sum += i;
    if (tail.multiplier) tail.multiplier += i;
    if (tail.shift) tail.shift += i;
    pg_requantize_avx2(acc + i, n - i, &tail, out + i);
  }
}

PG_TARGET_AVX512VNNI void pg_binary_avx512(const pg_binary_params *p, const int8_t *a,
                                           int32_t a_step, const int8_t *b, int32_t b_step,
                                           int8_t *out, int32_t n) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i off1 = _mm512_set1_epi32(p->input1_offset);
  const __m512i off2 = _mm512_set1_epi32(p->input2_offset);
  const __m512i out_off = _mm512_set1_epi32(p->output_offset);
  const __m512i lo = _mm512_set1_epi32(p->act_min), hi = _mm512_set1_epi32(p->act_max);
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
  const __m512i sa_bcast = mbqm16(_mm512_sllv_epi32(a_bcast, lshift), m1, zero, rs1);
  const __m512i sb_bcast = mbqm16(_mm512_sllv_epi32(b_bcast, lshift), m2, zero, rs2);
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i x = a_step ? _mm512_add_epi32(load16_i8(a + i), off1) : a_bcast;
    const __m512i y = b_step ? _mm512_add_epi32(load16_i8(b + i), off2) : b_bcast;
    __m512i raw;
    if (p->op == PG_BIN_MUL) {
      raw = mbqm16(_mm512_mullo_epi32(x, y), mo, lso, rso);
    } else {
      const __m512i sa = a_step ? mbqm16(_mm512_sllv_epi32(x, lshift), m1, zero, rs1) : sa_bcast;
      const __m512i sb = b_step ? mbqm16(_mm512_sllv_epi32(y, lshift), m2, zero, rs2) : sb_bcast;
      __m512i v;
      if (p->op == PG_BIN_SQUARED_DIFFERENCE) {
        const __m512i diff = _mm512_sub_epi32(sa, sb);
        v = _mm512_mullo_epi32(diff, diff);
      } else {
        v = p->op == PG_BIN_SUB ? _mm512_sub_epi32(sa, sb) : _mm512_add_epi32(sa, sb);
      }
      raw = mbqm16(v, mo, lso, rso);
    }
    store16_i8(out + i, _mm512_add_epi32(raw, out_off), lo, hi);
  }
  if (i < n) pg_binary_avx2(p, a + i * a_step, a_step, b + i * b_step, b_step, out + i, n - i);
}

/* The scalar row's arithmetic on 8 lanes: the exponentials are gathered from the table, the
 * int32 sum wraps (so its order does not matter), the output is mbqm8's product and shift. */
PG_TARGET_AVX2 int pg_softmax_row_avx2(const int8_t *x, int32_t depth, const int32_t *exp_q0,
                                       int8_t *y) {
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
    store8_i8(y + c, _mm256_add_epi32(mbqm8(e, scale, zero, rs), offset), lo, hi);
  }
  for (; c < depth; ++c) {
    const int32_t unsat = pg_rounding_divide_by_pot(
        pg_saturating_rounding_doubling_high_mul(shifted_scale, exp_q0[max_in_row - x[c]]),
        exponent);
    y[c] = (int8_t)pg_clamp(unsat - 128, -128, 127);
  }
  return 0;
}

#endif /* PG_SIMD_DISPATCH */
