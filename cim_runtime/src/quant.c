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

/* The requantization loop. FULLY_CONNECTED's case (per-channel multipliers; the zero-point
 * correction from int16 row sums, or int32 offsets where RAM allows: matmul.c) gets its own
 * copies, unswitched: the most frequent requantization of a step. Its channel multipliers are
 * usually all below one (right shifts only), which saves working out a left shift. */
enum { RQ_GENERAL, RQ_CHANNELS_ROW_SUMS, RQ_CHANNELS_OFFSETS };

static inline __attribute__((always_inline)) void requantize_loop(
    const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out, int kind) {
  /* Loop invariants in locals: out may alias anything, so fields of q would be reloaded. */
  const int32_t offset_all = q->offset_all, row_sum_scale = q->row_sum_scale;
  const int32_t zero_point = q->output_zero_point, lo = q->act_min, hi = q->act_max;
  const int32_t *offset = q->offset;
  const int16_t *row_sum = q->row_sum;
  const int32_t *multiplier = q->multiplier;
  const int8_t *shift = q->shift;
  if (kind == RQ_GENERAL) {
    mbqm m = mbqm_of(q->multiplier_all, q->shift_all);
    for (int32_t i = 0; i < n; ++i) {
      int32_t x = pg_wrap_add(acc[i], offset_all);
      if (offset) x = pg_wrap_add(x, offset[i]);
      if (row_sum) x = pg_wrap_add(x, (int32_t)((uint32_t)row_sum[i] * (uint32_t)row_sum_scale));
      if (multiplier) m = mbqm_of(multiplier[i], shift ? shift[i] : q->shift_all);
      /* Wrapping add: only extreme (non-model) accumulators get near the int32 limits. */
      out[i] = (int8_t)pg_clamp(pg_wrap_add(mbqm_apply(x, &m), zero_point), lo, hi);
    }
    return;
  }
  const int32_t right_only = q->right_shifts_only;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t correction = kind == RQ_CHANNELS_ROW_SUMS
                                   ? (int32_t)((uint32_t)row_sum[i] * (uint32_t)row_sum_scale)
                                   : offset[i];
    const int32_t x = pg_wrap_add(pg_wrap_add(acc[i], offset_all), correction);
    mbqm m;
    if (right_only) {
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
}

void pg_requantize_scalar(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out) {
  if (q->multiplier && q->shift && q->row_sum && !q->offset) {
    requantize_loop(acc, n, q, out, RQ_CHANNELS_ROW_SUMS);
#if PG_SIMD_DISPATCH /* only x86-64 hosts keep int32 offsets for every layer (simd_tables) */
  } else if (q->multiplier && q->shift && q->offset && !q->row_sum) {
    requantize_loop(acc, n, q, out, RQ_CHANNELS_OFFSETS);
#endif
  } else {
    requantize_loop(acc, n, q, out, RQ_GENERAL);
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

/* The Q12.19 summand of an entry at difference d to the row maximum. */
static int32_t softmax_term(const int32_t *exp_q0, int32_t d) {
  return pg_rounding_divide_by_pot(exp_q0[d], 12);
}

/* The last entry's last_count - 1 further copies: int32 additions that wrap, so their
 * product (in uint32) is the same as adding them one by one. */
int32_t pg_softmax_last_extra(const int8_t *x, int32_t depth, const int32_t *exp_q0,
                              int32_t max_in_row, int32_t last_count) {
  if (last_count == 1) return 0;
  const uint32_t term = (uint32_t)softmax_term(exp_q0, max_in_row - x[depth - 1]);
  return (int32_t)(term * (uint32_t)(last_count - 1));
}

int pg_softmax_row_scalar(const int8_t *x, int32_t depth, const int32_t *exp_q0, int8_t *y,
                          int32_t last_count) {
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
      term = softmax_term(exp_q0, max_in_row - prev);
    }
    sum_of_exps = pg_wrap_add(sum_of_exps, term);
  }
  sum_of_exps = pg_wrap_add(sum_of_exps,
                            pg_softmax_last_extra(x, depth, exp_q0, max_in_row, last_count));
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

