/* Internal: int8 matrix-vector products on the CPU (src/matvec.c). The software CIM HAL
 * emulates the macros with them (x_offset 0), and the kernels run the products that stay on
 * the CPU with them: attention (activation x activation, the KV cache) and FULLY_CONNECTED
 * layers that did not fit the device.
 *
 * x_offset is added to every input first: BATCH_MATMUL passes the negated zero point of its
 * left operand, so sum_k (x_k + x_offset) * w_k needs no row sums of the right operand
 * (|x_k + x_offset| <= 255, so the int16 products of the AVX2 path stay exact).
 *
 * Like the bulk kernels in quant.h, the row-major product has a portable scalar version (the
 * reference, what rv32imac runs) and, on x86-64, AVX2 and AVX-512 VNNI versions with
 * identical results; pg_matvec() calls the active SIMD path's (simd.h), the tests compare
 * each with the scalar one. */
#ifndef PG_MATVEC_H
#define PG_MATVEC_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/* Row-major: out[n] = sum_k (x[k] + x_offset) * w[n * stride + k] for n < n_out, k < n_in.
 * n_out >= 0, n_in >= 0 (0: out[n] = 0), stride >= n_in. */
void pg_matvec_scalar(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                      const int8_t *x, int32_t x_offset, int32_t *out);
#if PG_SIMD_DISPATCH
void pg_matvec_avx2(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                    const int8_t *x, int32_t x_offset, int32_t *out);
void pg_matvec_avx512vnni(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                          const int8_t *x, int32_t x_offset, int32_t *out);
#endif
#if PG_SIMD_DISPATCH
/* 1 if no weight of the (n_out x n_in, row stride `stride`) matrix is -128: TFLite's int8
 * weights are symmetric, [-127, 127], and the software CIM HAL checks each tile once, when it
 * programs it. */
int pg_weights_narrow(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride);
/* pg_matvec with x_offset 0 over such weights: AVX2 multiplies 32 bytes per instruction
 * then (matvec.c). The kernel tables (simd.h) hold it as matvec_narrow for AVX2 only. */
void pg_matvec_narrow_avx2(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                           const int8_t *x, int32_t *out);
#endif
static inline void pg_matvec(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                             const int8_t *x, int32_t x_offset, int32_t *out) {
#if PG_SIMD_DISPATCH
  pg_simd.matvec(w, n_out, n_in, stride, x, x_offset, out);
#else
  pg_matvec_scalar(w, n_out, n_in, stride, x, x_offset, out);
#endif
}

/* Emulated macro cells: the software CIM HAL's copy of a programmed tile on an x86-64 CPU
 * with AVX-512 VNNI (when the runtime gives it tile memory, cim_hal_tile_memory_bytes), in
 * the order the VNNI kernel reads it. A tile of `rows` inputs x `cols` outputs is stored as
 *     cells[g][n][j] = w[n][4g + j] + 128   (unsigned; 128, i.e. weight 0, past the tile)
 * for input groups g < ceil(rows / 4), outputs n < round_up(cols, 16), j < 4: the four
 * weights of every output for one group of four inputs side by side. One vpdpbusd then
 * multiplies 16 outputs x 4 inputs by a broadcast of four inputs, the tile is read once,
 * front to back, and no horizontal sums are left (the row-major products above reduce 16
 * lanes per output). The unsigned cells make the x86 byte products exact:
 *     sum_k w_k x_k = sum_k (w_k + 128) x_k - 128 sum_k x_k.
 * rows and cols are 1 .. PG_CELLS_MAX_SIDE. */
#define PG_CELLS_MAX_SIDE 512
size_t pg_cells_bytes(int32_t rows, int32_t cols);
/* Packs w[n * stride + k] (n < cols, k < rows, stride >= rows) into pg_cells_bytes bytes. */
void pg_cells_pack(const int8_t *w, int32_t rows, int32_t cols, int32_t stride, uint8_t *cells);
/* out[n] = sum_k x[k] * w[n][k] for n < cols, k < rows: pg_matvec_scalar's result with
 * x_offset 0. AVX-512 VNNI only (matvec.c says why): the other paths' kernel tables (simd.h)
 * have NULL there and read the row-major weights. */
#if PG_SIMD_DISPATCH
void pg_cells_matvec_avx512vnni(const uint8_t *cells, int32_t rows, int32_t cols,
                                const int8_t *x, int32_t *out);
#endif

/* pg_matvec with row_sums[n] = sum_k w[n * stride + k] given (k < n_in): with vpdpbusd,
 * sum_k (x_k + x_offset) w_k = sum_k (x_k + 128) w_k - (128 - x_offset) sum_k w_k takes one
 * instruction per 64 weights instead of two. Attention over the K cache, whose rows do not
 * change once written, keeps their sums (kernels/matmul.c). AVX-512 VNNI only. */
#if PG_SIMD_DISPATCH
void pg_matvec_sums_avx512vnni(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                               const int8_t *x, int32_t x_offset, const int32_t *row_sums,
                               int32_t *out);
#endif

/* Sparse input: out[n] = sum_i val[i] * w[n * stride + idx[i]] for n < n_out, i < nnz: the
 * product with an input whose other entries (after the offset) are 0. Attention's softmax
 * output is mostly exact zeros (about 70 % in the reference model), so p . V on a CPU without
 * SIMD skips them (BATCH_MATMUL decides per product). Scalar only. */
void pg_matvec_sparse(const int8_t *w, int32_t n_out, int32_t stride, const int16_t *idx,
                      const int16_t *val, int32_t nnz, int32_t *out);

/* Column-major (w stored n_in x n_out): out[n] = sum_k (x[k] + x_offset) * w[k * stride + n],
 * stride >= n_out. Scalar only: the exporter's models never need it (BATCH_MATMUL with
 * adj_y = false). */
void pg_matvec_col_major(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                         const int8_t *x, int32_t x_offset, int32_t *out);

#endif /* PG_MATVEC_H */
