/* Internal: which implementation of the bulk int8 kernels runs (src/simd.c).
 *
 * Every bulk kernel (matvec.h: the matrix-vector product; quant.h: requantization and the
 * elementwise arithmetic) has a portable scalar version: the reference, and what RISC-V runs.
 * On x86-64 with GCC or clang (PG_SIMD_DISPATCH) the same build also carries AVX2 and
 * AVX-512 VNNI versions, compiled with per-function target attributes, so that nothing else
 * in the build needs those instructions and one binary runs on every x86-64. The kernels are
 * called through pg_simd, a table that src/simd.c fills once, when the program (or the shared
 * library) loads, with the best versions the CPU and the OS support (CPUID and XGETBV); every
 * version gives bit-identical results. picogpt_simd_select (runtime.h) installs another path.
 * Elsewhere, or with PICOGPT_NO_SIMD, the scalar kernels are called directly. */
#ifndef PG_SIMD_H
#define PG_SIMD_H

#include <stdint.h>

#include "pico_gpt/runtime.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(PICOGPT_NO_SIMD)
#define PG_SIMD_DISPATCH 1
/* What a function (and every inline helper it calls) may use: the whole path's instructions. */
#define PG_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define PG_TARGET_AVX512VNNI \
  __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
#else
#define PG_SIMD_DISPATCH 0
#endif

struct pg_requant;
struct pg_binary_params;

/* The kernels of one path (signatures and contracts: matvec.h, quant.h). */
typedef struct pg_simd_kernels {
  void (*matvec)(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride, const int8_t *x,
                 int32_t x_offset, int32_t *out);
  void (*requantize)(const int32_t *acc, int32_t n, const struct pg_requant *q, int8_t *out);
  void (*binary)(const struct pg_binary_params *p, const int8_t *a, int32_t a_step,
                 const int8_t *b, int32_t b_step, int8_t *out, int32_t n);
  int (*softmax_row)(const int8_t *x, int32_t depth, const int32_t *exp_q0, int8_t *y,
                     int32_t last_count);
  /* Over emulated macro cells (matvec.h); NULL: this path reads the row-major weights. */
  void (*cells_matvec)(const uint8_t *cells, int32_t rows, int32_t cols, const int8_t *x,
                       int32_t *out);
  void (*row_sums)(const int8_t *m, int32_t rows, int32_t cols, int32_t stride, int32_t *out);
  /* matvec with the rows' sums given (matvec.h); NULL: this path gains nothing from them. */
  void (*matvec_sums)(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                      const int8_t *x, int32_t x_offset, const int32_t *row_sums, int32_t *out);
  /* matvec with x_offset 0 over weights in [-127, 127] (matvec.h); NULL: matvec serves. */
  void (*matvec_narrow)(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                        const int8_t *x, int32_t *out);
} pg_simd_kernels;

#if PG_SIMD_DISPATCH
extern pg_simd_kernels pg_simd; /* the active path's kernels */
#endif

/* 1 while the scalar kernels run (always, in a build without SIMD paths): a kernel may then
 * prefer a formulation that only pays off without SIMD. */
static inline int pg_simd_scalar_active(void) {
#if PG_SIMD_DISPATCH
  return picogpt_simd_active() == PICOGPT_SIMD_SCALAR;
#else
  return 1;
#endif
}

#endif /* PG_SIMD_H */
