/* Quantization arithmetic; see quant.h. Learned from TensorFlow Lite's
 * kernels/internal/common.h, quantization_util.cc and gemmlowp's
 * fixedpoint.h; written for this runtime. */
#include "quant.h"

#include <math.h>
#include <string.h>

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

/* ---- requantization ------------------------------------------------------ */

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
