/* Quantization arithmetic: the one module every kernel uses.
 *
 * These reproduce TensorFlow Lite Micro's integer arithmetic in its default
 * (double-rounding) build: gemmlowp's SaturatingRoundingDoublingHighMul
 * followed by RoundingDivideByPOT (round half away from zero), the
 * fixed-point exp/reciprocal/inverse-sqrt helpers, and the multiplier
 * derivations QuantizeMultiplier & co. Bit-exactness depends on every detail,
 * including where TFLM computes a scale ratio in float and where in double;
 * the kernels call the pg_* derivations with the same choices.
 *
 * Signed overflow is made explicit (wrapping through uint32) where TFLM's
 * C++ relies on two's complement wrap-around, so UBSan stays quiet; right
 * shifts of negative values are arithmetic on every supported compiler.
 */
#ifndef PG_QUANT_H
#define PG_QUANT_H

#include <stdint.h>

/* ---- scalar helpers --------------------------------------------------- */
int pg_clz32(uint32_t x); /* 32 for x == 0 */
int pg_clz64(uint64_t x); /* 64 for x == 0 */
/* frexp without libm: x = m * 2^e, 0.5 <= |m| < 1 (0 -> 0, e = 0). */
double pg_frexp(double x, int *exponent);
/* std::round: half away from zero (|x| < 2^62). */
double pg_round(double x);
float pg_roundf(float x);
/* IEEE sqrtf (correctly rounded; the C library's, prepare time only). */
float pg_sqrtf(float x);

static inline int32_t pg_wrap_add(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a + (uint32_t)b);
}
static inline int32_t pg_wrap_sub(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a - (uint32_t)b);
}
static inline int32_t pg_wrap_shl(int32_t a, int s) { return (int32_t)((uint32_t)a << s); }
static inline int32_t pg_clamp(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* ---- gemmlowp fixed point ---------------------------------------------- */
/* Inline: these run per element in every kernel. */
static inline int32_t pg_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}
/* RoundingDivideByPOT, round half away from zero; 0 <= exponent <= 31. */
static inline int32_t pg_rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}
/* SaturatingRoundingMultiplyByPOT<exponent>: saturating left shift for
 * exponent > 0, RoundingDivideByPOT for exponent < 0. */
int32_t pg_saturating_rounding_multiply_by_pot(int32_t x, int exponent);
/* exp(a) for a <= 0; a is FixedPoint<int32, 5> (26 fractional bits), the
 * result FixedPoint<int32, 0>. */
int32_t pg_exp_on_negative_values_q5(int32_t a);
/* 1 / (1 + a) for a in [0, 1), FixedPoint<int32, 0> in and out. */
int32_t pg_one_over_one_plus_x_for_x_in_0_1(int32_t a);
/* TFLite GetReciprocal: 1/x as Q0.31 with *num_bits_over_unit. x > 0. */
int32_t pg_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit);
/* TFLite GetInvSqrtQuantizedMultiplierExp. input >= 0. */
void pg_get_inv_sqrt_quantized_multiplier_exp(int32_t input, int reverse_shift,
                                              int32_t *output_inv_sqrt, int *output_shift);

/* ---- requantization ---------------------------------------------------- */
/* MultiplyByQuantizedMultiplier (double rounding): x * m * 2^shift. */
static inline int32_t pg_multiply_by_quantized_multiplier(int32_t x, int32_t quantized_multiplier,
                                                          int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  return pg_rounding_divide_by_pot(
      pg_saturating_rounding_doubling_high_mul(pg_wrap_shl(x, left_shift), quantized_multiplier),
      right_shift);
}

/* ---- multiplier derivation (prepare time only) -------------------------- */
/* QuantizeMultiplier. Returns 0 on success, -1 for a negative/NaN/inf input
 * (where TFLM would abort). */
int pg_quantize_multiplier(double real_multiplier, int32_t *quantized_multiplier, int *shift);
/* QuantizeMultiplierSmallerThanOneExp: requires 0 < m < 1. */
int pg_quantize_multiplier_smaller_than_one(double real_multiplier,
                                            int32_t *quantized_multiplier, int *shift);
/* QuantizeMultiplierGreaterThanOne: requires m > 1. */
int pg_quantize_multiplier_greater_than_one(double real_multiplier,
                                            int32_t *quantized_multiplier, int *shift);
/* PreprocessSoftmaxScaling + CalculateInputRadius for int8 softmax
 * (kScaledDiffIntegerBits = 5). */
int pg_softmax_prepare(double beta, double input_scale, int32_t *input_multiplier,
                       int *input_left_shift, int32_t *diff_min);

/* ---- softmax core (used by SOFTMAX and by the sampler) ------------------ */
/* exp(input_diff * scale) in Q0.31 for input_diff <= 0, using the softmax
 * multiplier; returns 0 when input_diff < diff_min. */
int32_t pg_softmax_exp(int32_t input_diff, int32_t input_multiplier, int input_left_shift,
                       int32_t diff_min);

#endif /* PG_QUANT_H */
