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

#include "simd.h"

/* Code that runs once, at init (prepare, multiplier derivations): cold, so compilers that
 * know the attribute optimize it for size (the firmware's flash is nearly full of model) and
 * keep it away from the step loop's code. */
#if defined(__GNUC__) || defined(__clang__)
#define PG_COLD __attribute__((cold))
#else
#define PG_COLD
#endif

/* ---- scalar helpers --------------------------------------------------- */
int pg_clz32(uint32_t x); /* 32 for x == 0 */
int pg_clz64(uint64_t x); /* 64 for x == 0 */
/* frexp without libm: x = m * 2^e, 0.5 <= |m| < 1 (0 -> 0, e = 0). */
PG_COLD double pg_frexp(double x, int *exponent);
/* std::round: half away from zero (|x| < 2^62). */
PG_COLD double pg_round(double x);
PG_COLD float pg_roundf(float x);
/* IEEE sqrtf (correctly rounded; the C library's, prepare time only). */
PG_COLD float pg_sqrtf(float x);

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
  /* gemmlowp: (ab + nudge) / 2^31 truncated toward zero, nudge = 2^30 for ab >= 0 and
   * 1 - 2^30 below. For ab < 0, truncation equals floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31)
   * = floor((ab + 2^30) / 2^31), the same expression as for ab >= 0. So one add and an
   * arithmetic shift are exact for every input: no branch, no 64-bit division. */
  return (int32_t)(((int64_t)a * (int64_t)b + (INT64_C(1) << 30)) >> 31);
}
/* RoundingDivideByPOT, round half away from zero; 0 <= exponent <= 31. */
static inline int32_t pg_rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u); /* no 64-bit shift on rv32 */
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
PG_COLD void pg_get_inv_sqrt_quantized_multiplier_exp(int32_t input, int reverse_shift,
                                              int32_t *output_inv_sqrt, int *output_shift);

/* ---- requantization ---------------------------------------------------- */
/* MultiplyByQuantizedMultiplier (double rounding): x * m * 2^shift. m is a QuantizeMultiplier
 * result, in [0, 2^31): never INT32_MIN, so SaturatingRoundingDoublingHighMul's one
 * saturating case (both operands INT32_MIN) cannot occur and is not tested for. */
static inline int32_t pg_multiply_by_quantized_multiplier(int32_t x, int32_t quantized_multiplier,
                                                          int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  const int64_t product = (int64_t)pg_wrap_shl(x, left_shift) * quantized_multiplier;
  return pg_rounding_divide_by_pot((int32_t)((product + (INT64_C(1) << 30)) >> 31), right_shift);
}

/* ---- multiplier derivation (prepare time only) -------------------------- */
/* QuantizeMultiplier. Returns 0 on success, -1 for a negative/NaN/inf input
 * (where TFLM would abort). */
PG_COLD int pg_quantize_multiplier(double real_multiplier, int32_t *quantized_multiplier, int *shift);
/* QuantizeMultiplierSmallerThanOneExp: requires 0 < m < 1. */
PG_COLD int pg_quantize_multiplier_smaller_than_one(double real_multiplier,
                                            int32_t *quantized_multiplier, int *shift);
/* QuantizeMultiplierGreaterThanOne: requires m > 1. */
PG_COLD int pg_quantize_multiplier_greater_than_one(double real_multiplier,
                                            int32_t *quantized_multiplier, int *shift);
/* PreprocessSoftmaxScaling + CalculateInputRadius for int8 softmax
 * (kScaledDiffIntegerBits = 5). */
PG_COLD int pg_softmax_prepare(double beta, double input_scale, int32_t *input_multiplier,
                       int *input_left_shift, int32_t *diff_min);

/* ---- softmax core (used by SOFTMAX and by the sampler) ------------------ */
/* exp(input_diff * scale) in Q0.31 for input_diff <= 0, using the softmax
 * multiplier; returns 0 when input_diff < diff_min. */
int32_t pg_softmax_exp(int32_t input_diff, int32_t input_multiplier, int input_left_shift,
                       int32_t diff_min);

/* ---- bulk kernels: requantization and elementwise arithmetic ----------------
 * Each has a portable scalar version (the reference; the one RISC-V runs) and, on
 * x86-64, AVX2 and (requantization, elementwise) AVX-512 versions with bit-identical
 * results; the unsuffixed inline calls the one the active SIMD path (simd.h) installed;
 * tests call each and compare. */
/* out[i] = clamp(MBQM(acc[i] + offset[i] + row_sum[i] * row_sum_scale + offset_all,
 *                    multiplier[i], shift[i]) + output_zero_point, act_min, act_max),
 * arithmetic wrapping like TFLite's int32 accumulator. Multipliers are >= 0
 * (QuantizeMultiplier's). */
typedef struct pg_requant {
  const int32_t *offset;     /* (n,) per element, or NULL */
  const int16_t *row_sum;    /* (n,) per element, or NULL (FC: weight row sums) */
  int32_t row_sum_scale;     /* FC: -input zero point */
  const int32_t *multiplier; /* (n,) per channel, or NULL: multiplier_all for all */
  const int8_t *shift;       /* (n,) per channel (-31..30), or NULL: shift_all */
  int32_t right_shifts_only; /* every shift[i] <= 0 (a hint for the scalar loop) */
#if PG_SIMD_DISPATCH
  /* x86-64 hosts with picogpt_options.simd_tables, per-channel right shifts only: -shift[i]
   * and its rounding mask 2^-shift[i] - 1 as int32, which the SIMD loops load instead of
   * working them out (pg_requant_shift_tables). */
  const int32_t *right_shift, *round_mask;
#endif
  int32_t offset_all;
  int32_t multiplier_all, shift_all;
  int32_t output_zero_point, act_min, act_max;
} pg_requant;
void pg_requantize_scalar(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out);
#if PG_SIMD_DISPATCH
/* FULLY_CONNECTED's case with the host's shift tables: per-channel multipliers, int32
 * offsets, right shifts only; the SIMD requantize loops read right_shift and round_mask. */
static inline int pg_requant_shift_tables(const struct pg_requant *q) {
  return q->multiplier != NULL && q->offset != NULL && q->row_sum == NULL &&
         q->right_shifts_only && q->right_shift != NULL && q->round_mask != NULL;
}
#endif

/* Quantized binary elementwise ops, TFLite Micro's int8 reference arithmetic. */
typedef enum pg_binary_op { PG_BIN_ADD, PG_BIN_SUB, PG_BIN_MUL, PG_BIN_SQUARED_DIFFERENCE } pg_binary_op;
typedef struct pg_binary_params {
  int32_t op;                                   /* pg_binary_op */
  int32_t input1_offset, input2_offset;         /* -zero points */
  int32_t output_offset;                        /* output zero point */
  int32_t left_shift;                           /* ADD/SUB 20, SQUARED_DIFFERENCE 7 */
  int32_t input1_multiplier, input1_shift;      /* shifts <= 0 (smaller than one) */
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  int32_t act_min, act_max;
} pg_binary_params;
/* out[i] = op(a[i * a_step], b[i * b_step]) for i < n; steps are 0 (broadcast) or 1. */
void pg_binary_scalar(const pg_binary_params *p, const int8_t *a, int32_t a_step,
                      const int8_t *b, int32_t b_step, int8_t *out, int32_t n);

/* out[r] = sum_c m[r * stride + c]: int8 row sums (FULLY_CONNECTED's prepare; at eval, MEAN,
 * BATCH_MATMUL's input sums and the K cache's row sums, through pg_row_sums). */
void pg_row_sums_scalar(const int8_t *m, int32_t rows, int32_t cols, int32_t stride,
                        int32_t *out);
#if PG_SIMD_DISPATCH
void pg_row_sums_avx2(const int8_t *m, int32_t rows, int32_t cols, int32_t stride,
                      int32_t *out);
void pg_row_sums_avx512(const int8_t *m, int32_t rows, int32_t cols, int32_t stride,
                        int32_t *out);
#endif
static inline void pg_row_sums(const int8_t *m, int32_t rows, int32_t cols, int32_t stride,
                               int32_t *out) {
#if PG_SIMD_DISPATCH
  pg_simd.row_sums(m, rows, cols, stride, out);
#else
  pg_row_sums_scalar(m, rows, cols, stride, out);
#endif
}

/* One row of TFLite's int8 SOFTMAX (output scale 1/256, zero point -128): y[c] from x[c],
 * c < depth, with exp_q0[d] = exp of the difference -d to the row maximum in Q0.31 (0 below
 * diff_min; the kernel's prepare tabulates it). The last entry stands for last_count >= 1
 * equal entries of the row (the causal mask's fill, kept once: kernels/softmax_mean.c): it
 * adds last_count exponentials to the sum, and y[depth - 1] is the output of each of them.
 * Returns 0, or -1 (y unwritten) if the sum of the exponentials is out of the reciprocal's
 * range. */
int pg_softmax_row_scalar(const int8_t *x, int32_t depth, const int32_t *exp_q0, int8_t *y,
                          int32_t last_count);
/* The sum's part for the last entry's copies after the first (every kernel adds it). */
int32_t pg_softmax_last_extra(const int8_t *x, int32_t depth, const int32_t *exp_q0,
                              int32_t max_in_row, int32_t last_count);

#if PG_SIMD_DISPATCH
int pg_softmax_row_avx2(const int8_t *x, int32_t depth, const int32_t *exp_q0, int8_t *y,
                        int32_t last_count);
void pg_requantize_avx2(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out);
void pg_binary_avx2(const pg_binary_params *p, const int8_t *a, int32_t a_step, const int8_t *b,
                    int32_t b_step, int8_t *out, int32_t n);
void pg_requantize_avx512(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out);
int pg_softmax_row_avx512(const int8_t *x, int32_t depth, const int32_t *exp_q0, int8_t *y,
                          int32_t last_count);
void pg_binary_avx512(const pg_binary_params *p, const int8_t *a, int32_t a_step,
                      const int8_t *b, int32_t b_step, int8_t *out, int32_t n);
#endif

static inline void pg_requantize(const int32_t *acc, int32_t n, const pg_requant *q, int8_t *out) {
#if PG_SIMD_DISPATCH
  pg_simd.requantize(acc, n, q, out);
#else
  pg_requantize_scalar(acc, n, q, out);
#endif
}
static inline int pg_softmax_row(const int8_t *x, int32_t depth, const int32_t *exp_q0,
                                 int8_t *y, int32_t last_count) {
#if PG_SIMD_DISPATCH
  return pg_simd.softmax_row(x, depth, exp_q0, y, last_count);
#else
  return pg_softmax_row_scalar(x, depth, exp_q0, y, last_count);
#endif
}
static inline void pg_binary(const pg_binary_params *p, const int8_t *a, int32_t a_step,
                             const int8_t *b, int32_t b_step, int8_t *out, int32_t n) {
#if PG_SIMD_DISPATCH
  pg_simd.binary(p, a, a_step, b, b_step, out, n);
#else
  pg_binary_scalar(p, a, a_step, b, b_step, out, n);
#endif
}

#endif /* PG_QUANT_H */
