/* int8 matrix-vector products on the CPU; see matvec.h. */
#include "matvec.h"

#include <string.h>

#include "avx2_util.h"

/* ---- scalar reference ------------------------------------------------------------------ */

static int32_t dot(const int8_t *w, const int8_t *x, int32_t n, int32_t x_offset) {
  int32_t acc = 0;
  for (int32_t k = 0; k < n; ++k) acc += (int32_t)w[k] * ((int32_t)x[k] + x_offset);
  return acc;
}

/* Eight rows share each load of x and its offset; four inputs per iteration amortize the
 * nine pointer increments: 114 instructions per 32 MACs on rv32imac (3.6 per MAC), when the
 * compiler does not schedule the loads ahead and spill (the firmware compiles this file with
 * -fno-schedule-insns). Leftover rows go four, then one at a time. */
#define MAC8(k, xk)                                                                    \
  a0 += w0[k] * xk, a1 += w1[k] * xk, a2 += w2[k] * xk, a3 += w3[k] * xk,              \
  a4 += w4[k] * xk, a5 += w5[k] * xk, a6 += w6[k] * xk, a7 += w7[k] * xk

static void rows8(const int8_t *w0, int32_t n_in, intptr_t stride, const int8_t *x,
                  int32_t x_offset, int32_t *out) {
  const int8_t *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride, *w4 = w3 + stride;
  const int8_t *w5 = w4 + stride, *w6 = w5 + stride, *w7 = w6 + stride;
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  int32_t k = 0;
  for (; k + 4 <= n_in; k += 4) {
    int32_t xk = x[k] + x_offset;
    MAC8(k, xk);
    xk = x[k + 1] + x_offset;
    MAC8(k + 1, xk);
    xk = x[k + 2] + x_offset;
    MAC8(k + 2, xk);
    xk = x[k + 3] + x_offset;
    MAC8(k + 3, xk);
  }
  for (; k < n_in; ++k) {
    const int32_t xk = x[k] + x_offset;
    MAC8(k, xk);
  }
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
  out[4] = a4, out[5] = a5, out[6] = a6, out[7] = a7;
}

static void rows4(const int8_t *w0, int32_t n_in, intptr_t stride, const int8_t *x,
                  int32_t x_offset, int32_t *out) {
  const int8_t *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride;
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (int32_t k = 0; k < n_in; ++k) {
    const int32_t xk = x[k] + x_offset;
    a0 += w0[k] * xk, a1 += w1[k] * xk, a2 += w2[k] * xk, a3 += w3[k] * xk;
  }
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
}

void pg_matvec_scalar(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                      const int8_t *x, int32_t x_offset, int32_t *out) {
  if (n_in == 1) { /* attention's product with the new token's value: one input per row */
    const int32_t x0 = x[0] + x_offset;
    for (int32_t n = 0; n < n_out; ++n) out[n] = (int32_t)w[(intptr_t)n * stride] * x0;
    return;
  }
  int32_t n = 0;
  for (; n + 8 <= n_out; n += 8) rows8(w + (intptr_t)n * stride, n_in, stride, x, x_offset, out + n);
  if (n + 4 <= n_out) {
    rows4(w + (intptr_t)n * stride, n_in, stride, x, x_offset, out + n);
    n += 4;
  }
  for (; n < n_out; ++n) out[n] = dot(w + (intptr_t)n * stride, x, n_in, x_offset);
}

void pg_matvec_sparse(const int8_t *w, int32_t n_out, int32_t stride, const int16_t *idx,
                      const int16_t *val, int32_t nnz, int32_t *out) {
  int32_t n = 0;
  for (; n + 8 <= n_out; n += 8) { /* each index and value loaded once for eight rows */
    const int8_t *w0 = w + (intptr_t)n * stride, *w1 = w0 + stride, *w2 = w1 + stride;
    const int8_t *w3 = w2 + stride, *w4 = w3 + stride, *w5 = w4 + stride, *w6 = w5 + stride;
    const int8_t *w7 = w6 + stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (int32_t i = 0; i < nnz; ++i) {
      const int32_t k = idx[i], xk = val[i];
      MAC8(k, xk);
    }
    out[n] = a0, out[n + 1] = a1, out[n + 2] = a2, out[n + 3] = a3;
    out[n + 4] = a4, out[n + 5] = a5, out[n + 6] = a6, out[n + 7] = a7;
  }
  for (; n < n_out; ++n) {
    const int8_t *row = w + (intptr_t)n * stride;
    int32_t acc = 0;
    for (int32_t i = 0; i < nnz; ++i) acc += row[idx[i]] * val[i];
    out[n] = acc;
  }
}

void pg_matvec_col_major(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                         const int8_t *x, int32_t x_offset, int32_t *out) {
  for (int32_t n = 0; n < n_out; ++n) out[n] = 0;
  for (int32_t k = 0; k < n_in; ++k) {
    const int8_t *row = w + (intptr_t)k * stride;
    const int32_t xk = x[k] + x_offset;
    for (int32_t n = 0; n < n_out; ++n) out[n] += (int32_t)row[n] * xk;
  }
}

/* ---- emulated macro cells (layout: matvec.h) --------------------------------------------- */

static int32_t cell_groups(int32_t rows) { return (rows + 3) / 4; }
static int32_t cell_outputs(int32_t cols) { return (cols + 15) & ~15; }

size_t pg_cells_bytes(int32_t rows, int32_t cols) {
  if (rows < 1 || rows > PG_CELLS_MAX_SIDE || cols < 1 || cols > PG_CELLS_MAX_SIDE) return 0;
  return (size_t)cell_groups(rows) * (size_t)cell_outputs(cols) * 4u;
}

void pg_cells_pack(const int8_t *w, int32_t rows, int32_t cols, int32_t stride, uint8_t *cells) {
  const int32_t groups = cell_groups(rows), outputs = cell_outputs(cols);
  for (int32_t g = 0; g < groups; ++g) {
    for (int32_t n = 0; n < outputs; ++n) {
      for (int32_t j = 0; j < 4; ++j) {
        const int32_t k = 4 * g + j;
        const int32_t weight = n < cols && k < rows ? w[(intptr_t)n * stride + k] : 0;
        *cells++ = (uint8_t)(weight + 128);
      }
    }
  }
}

/* ---- AVX2: int8 widened to int16, pairs multiplied with vpmaddwd ---------------------------
 * |w| <= 128 and |x + x_offset| <= 255, so a pair sum is at most 65,280: exact in the int32
 * lanes, for any weights and offsets (the narrow product below needs weights above -128 and
 * no offset). */
#if PG_SIMD_DISPATCH

PG_TARGET_AVX2 static inline __m256i load16_i16(const int8_t *p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

PG_TARGET_AVX2 static inline int32_t hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

/* The last, partial slice of x (left < 16 inputs): widened, offset, and 0 in the lanes past
 * the row, so the weights loaded there add nothing whatever they are. */
PG_TARGET_AVX2 static inline __m256i tail_inputs(const int8_t *x, int32_t left, __m256i offset) {
  int8_t buf[16] = {0};
  memcpy(buf, x, (size_t)left);
  const __m256i lane = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256i keep = _mm256_cmpgt_epi16(_mm256_set1_epi16((int16_t)left), lane);
  return _mm256_and_si256(_mm256_add_epi16(load16_i16(buf), offset), keep);
}

/* The 16 bytes at p, a row's last `left` (< 16) weights and what follows them. A row before
 * the matrix's last reads into the next row (stride >= n_in >= 16 keeps that inside the
 * matrix); the last row is copied, since its following bytes may lie past the matrix. */
PG_TARGET_AVX2 static inline __m256i tail_weights(const int8_t *p, int32_t left, int last_row) {
  if (!last_row) return load16_i16(p);
  int8_t buf[16] = {0};
  memcpy(buf, p, (size_t)left);
  return load16_i16(buf);
}

/* a[r] += the products of xv with 16 weights of row r at wk + r * s, for rows 0-6, and with
 * w7, row 7's weights as the caller loaded them (the matrix's last row may need a copy). */
PG_TARGET_AVX2 static inline __attribute__((always_inline)) void madd_rows8(
    __m256i a[8], const int8_t *wk, intptr_t s, __m256i xv, __m256i w7) {
  for (int r = 0; r < 7; ++r) {
    a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(load16_i16(wk + r * s), xv));
  }
  a[7] = _mm256_add_epi32(a[7], _mm256_madd_epi16(w7, xv));
}

PG_TARGET_AVX2 void pg_matvec_avx2(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                    const int8_t *x, int32_t x_offset, int32_t *out) {
  /* Rows shorter than one 16-input slice cost less in the scalar kernel than in the block's
   * widening and lane sums. */
  if (n_in < 16) {
    pg_matvec_scalar(w, n_out, n_in, stride, x, x_offset, out);
    return;
  }
  const int32_t vec_in = n_in & ~15, left = n_in - vec_in;
  const __m256i offset = _mm256_set1_epi16((int16_t)x_offset);
  const __m256i x_tail = left ? tail_inputs(x + vec_in, left, offset) : _mm256_setzero_si256();
  const intptr_t s = stride;
  int32_t n = 0;
  /* Eight rows at a time: each 16-input slice of x is widened (and offset) once. */
  for (; n + 8 <= n_out; n += 8) {
    const int8_t *wn = w + (intptr_t)n * stride;
    __m256i a[8];
    for (int r = 0; r < 8; ++r) a[r] = _mm256_setzero_si256();
    for (int32_t k = 0; k < vec_in; k += 16) {
      const int8_t *wk = wn + k;
      madd_rows8(a, wk, s, _mm256_add_epi16(load16_i16(x + k), offset), load16_i16(wk + 7 * s));
    }
    if (left) { /* attention over the live cache positions: any length */
      const int8_t *wk = wn + vec_in;
      madd_rows8(a, wk, s, x_tail, tail_weights(wk + 7 * s, left, n + 8 == n_out));
    }
    _mm256_storeu_si256((__m256i *)(out + n),
                        pg_avx2_transpose_add8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]));
  }
  for (; n < n_out; ++n) {
    const int8_t *wn = w + (intptr_t)n * stride;
    __m256i a = _mm256_setzero_si256();
    for (int32_t k = 0; k < vec_in; k += 16) {
      const __m256i xv = _mm256_add_epi16(load16_i16(x + k), offset);
      a = _mm256_add_epi32(a, _mm256_madd_epi16(load16_i16(wn + k), xv));
    }
    if (left) {
      a = _mm256_add_epi32(
          a, _mm256_madd_epi16(tail_weights(wn + vec_in, left, n + 1 == n_out), x_tail));
    }
    out[n] = hsum8(a);
  }
}

/* ---- AVX2 over narrow weights: 32 byte products per vpmaddubsw ------------------------------
 * vpmaddubsw multiplies unsigned by signed bytes and adds pairs into saturating int16 lanes.
 * Given weights in [-127, 127] and x_offset 0 (the macro tiles), |x| <= 128 is the unsigned
 * operand and w * sign(x) the signed one (vpsignb: no overflow, since w != -128), so a pair
 * sum is at most 2 * 128 * 127 = 32,512 and never saturates. vpmaddwd against ones widens
 * the pairs: four operations per 32 products, where widening to int16 takes six. */

int pg_weights_narrow(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride) {
  /* A minimum without an early exit: the compiler vectorizes it, and a model's tiles are
   * narrow (read to the end) anyway. */
  int8_t lowest = 0;
  for (int32_t n = 0; n < n_out; ++n) {
    const int8_t *row = w + (intptr_t)n * stride;
    for (int32_t k = 0; k < n_in; ++k) lowest = row[k] < lowest ? row[k] : lowest;
  }
  return lowest != -128;
}

/* 32 products of one row summed into 8 int32 lanes: |x| (xabs) against w * sign(x). */
PG_TARGET_AVX2 static inline __m256i narrow_products(const int8_t *w, __m256i xv, __m256i xabs) {
  const __m256i signed_w = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)w), xv);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(xabs, signed_w), _mm256_set1_epi16(1));
}

PG_TARGET_AVX2 void pg_matvec_narrow_avx2(const int8_t *w, int32_t n_out, int32_t n_in,
                                          int32_t stride, const int8_t *x, int32_t *out) {
  if (n_in % 32) { /* a partial 32-byte slice: the widening kernel reads tails safely */
    pg_matvec_avx2(w, n_out, n_in, stride, x, 0, out);
    return;
  }
  const intptr_t s = stride;
  int32_t n = 0;
  for (; n + 8 <= n_out; n += 8) { /* eight rows share each load of x and its |x| */
    const int8_t *wn = w + (intptr_t)n * stride;
    __m256i a[8];
    for (int r = 0; r < 8; ++r) a[r] = _mm256_setzero_si256();
    for (int32_t k = 0; k < n_in; k += 32) {
      const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k));
      const __m256i xabs = _mm256_abs_epi8(xv);
      for (int r = 0; r < 8; ++r) {
        a[r] = _mm256_add_epi32(a[r], narrow_products(wn + r * s + k, xv, xabs));
      }
    }
    _mm256_storeu_si256((__m256i *)(out + n),
                        pg_avx2_transpose_add8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]));
  }
  for (; n < n_out; ++n) {
    const int8_t *wn = w + (intptr_t)n * stride;
    __m256i a = _mm256_setzero_si256();
    for (int32_t k = 0; k < n_in; k += 32) {
      const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + k));
      a = _mm256_add_epi32(a, narrow_products(wn + k, xv, _mm256_abs_epi8(xv)));
    }
    out[n] = hsum8(a);
  }
}

/* ---- AVX-512 VNNI: vpdpbusd, four byte products summed into each int32 lane -----------------
 * vpdpbusd multiplies unsigned by signed bytes, so one operand is made unsigned by flipping
 * its sign bit (adding 128):
 * - x_offset == 0 (the CIM tile products without tile memory): the weights, v_k = w_k + 128,
 *   and
 *     sum_k x_k w_k = sum_k v_k x_k - 128 sum_k x_k,
 *   one vpdpbusd per 64 weights and one input sum per call;
 * - otherwise (attention over the KV cache) the input, u_k = x_k + 128, and
 *     sum_k (x_k + x_offset) w_k = sum_k u_k w_k - sum_k c w_k,   c = 128 - x_offset,
 *   a second vpdpbusd against bytes of c, which are unsigned for x_offset in [-127, 128]
 *   (the negated zero point of an int8 tensor; other offsets take the scalar kernel).
 * Products are at most 255 * 128, four of them fit an int32 lane without saturation
 * (vpdpbusd, not vpdpbusds), and the int32 arithmetic wraps like the scalar reference's. A
 * tail of fewer than 64 inputs is loaded with a mask: the weights' missing bytes read as 0,
 * so they add nothing whatever the other operand holds there. Eight rows share each load of
 * x; their 16-lane sums are reduced together (sum_lanes8). */

/* The correction of products over flipped weights (or cells), whose unsigned bytes are
 * w + 128: sum_k x_k w_k = sum_k (w_k + 128) x_k - 128 sum_k x_k (wrapping like the scalar
 * kernel's int32 sums). */
PG_TARGET_AVX512VNNI static int32_t flip_correction(const int8_t *x, int32_t n) {
  return (int32_t)((uint32_t)pg_sum_i8_avx512(x, n) << 7);
}

/* Stores the first min(left, 16) int32 lanes; a whole vector with a plain store (masked
 * stores to memory are slow on Zen 4). */
PG_TARGET_AVX512VNNI static inline void store_i32_lanes(int32_t *out, __m512i v, int32_t left) {
  if (left >= 16) {
    _mm512_storeu_si512(out, v);
  } else {
    _mm512_mask_storeu_epi32(out, pg_lanes16(left), v);
  }
}

/* The sums of eight vectors' lanes, in order: pairs of vectors interleaved and added (32-bit,
 * then 64-bit lanes) leave rows 0-3 and 4-7 summed within each 128-bit lane; the 128-bit
 * lanes are then added across. 24 operations for eight rows, no horizontal adds. */
PG_TARGET_AVX512VNNI static inline __m256i sum_lanes8(const __m512i a[8]) {
  __m512i b[4];
  for (int i = 0; i < 4; ++i) {
    b[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]),
                            _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
  }
  const __m512i c0 = _mm512_add_epi32(_mm512_unpacklo_epi64(b[0], b[1]),
                                      _mm512_unpackhi_epi64(b[0], b[1]));
  const __m512i c1 = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2], b[3]),
                                      _mm512_unpackhi_epi64(b[2], b[3]));
  /* c0: rows 0-3 in each 128-bit lane, c1: rows 4-7. */
  const __m512i d = _mm512_add_epi32(_mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i e = _mm512_add_epi32(_mm512_shuffle_i32x4(d, d, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(d, d, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_castsi512_si256(e);
}

/* Rows [0, rows) of w (1 <= rows <= 8) against x into out[0 .. rows). A short block reads
 * its last row again in place of the missing ones (no branch in the loop; those sums are not
 * stored). x_offset == 0 flips the weights (see above); otherwise the input is flipped and
 * the offset's part comes from a second vpdpbusd: sum_k (x_k + x_offset) w_k =
 * sum_k u_k w_k - sum_k c w_k with u_k = x_k + 128 and c = 128 - x_offset, which is in
 * [0, 255] (x_offset = -zero point <= 128), so both products are unsigned x signed bytes. */
PG_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void rows_vnni(
    const int8_t *w, int32_t rows, intptr_t s, int32_t n_in, const int8_t *x, int32_t x_offset,
    int flip_weights, __m256i correction, int32_t *out) {
  const __m512i sign = _mm512_set1_epi8(-128);
  const __m512i c = _mm512_set1_epi8((char)(uint8_t)(128 - x_offset));
  const int8_t *row[8];
  for (int i = 0; i < 8; ++i) row[i] = w + (i < rows ? i : rows - 1) * s;
  __m512i p[8], r[8];
  for (int i = 0; i < 8; ++i) p[i] = r[i] = _mm512_setzero_si512();
  for (int32_t k = 0; k < n_in; k += 64) {
    const __mmask64 m = pg_lanes64(n_in - k);
    const __m512i xv = _mm512_maskz_loadu_epi8(m, x + k);
    const __m512i u = _mm512_xor_si512(xv, sign);
    for (int i = 0; i < 8; ++i) {
      const __m512i wv = _mm512_maskz_loadu_epi8(m, row[i] + k);
      if (flip_weights) {
        p[i] = _mm512_dpbusd_epi32(p[i], _mm512_xor_si512(wv, sign), xv);
      } else {
        p[i] = _mm512_dpbusd_epi32(p[i], u, wv);
        if (x_offset != 128) r[i] = _mm512_dpbusd_epi32(r[i], c, wv);
      }
    }
  }
  if (!flip_weights && x_offset != 128) {
    for (int i = 0; i < 8; ++i) p[i] = _mm512_sub_epi32(p[i], r[i]);
  }
  const __m256i sums = _mm256_sub_epi32(sum_lanes8(p), correction);
  if (rows == 8) { /* masked stores to memory are slow (Zen 4): only for a short block */
    _mm256_storeu_si256((__m256i *)out, sums);
  } else {
    _mm256_mask_storeu_epi32(out, (__mmask8)((1u << rows) - 1u), sums);
  }
}

PG_TARGET_AVX512VNNI void pg_matvec_avx512vnni(const int8_t *w, int32_t n_out, int32_t n_in,
                                               int32_t stride, const int8_t *x,
                                               int32_t x_offset, int32_t *out) {
  const intptr_t s = stride;
  if (n_in == 1 && stride == 1) { /* one input per row (the new token's value): 16 rows at once */
    const __m512i x0 = _mm512_set1_epi32(x[0] + x_offset);
    for (int32_t n = 0; n < n_out; n += 16) {
      const __m512i w16 = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(pg_lanes16(n_out - n), w + n));
      store_i32_lanes(out + n, _mm512_mullo_epi32(w16, x0), n_out - n);
    }
    return;
  }
  /* Other rows shorter than 8 inputs cost less in the scalar kernel than in a block's loads
   * and lane sums. */
  if (n_in < 8 || x_offset < -127 || x_offset > 128) {
    pg_matvec_scalar(w, n_out, n_in, stride, x, x_offset, out);
    return;
  }
  if (n_out == 1) { /* one row (attention's score for the new token): no lane sums of eight */
    __m512i p = _mm512_setzero_si512();
    for (int32_t k = 0; k < n_in; k += 64) {
      const __mmask64 m = pg_lanes64(n_in - k);
      const __m512i xv = _mm512_maskz_loadu_epi8(m, x + k);
      const __m512i wv = _mm512_maskz_loadu_epi8(m, w + k);
      const __m512i u = _mm512_xor_si512(xv, _mm512_set1_epi8(-128));
      /* sum (x + x_offset) w = sum (x + 128) w - (128 - x_offset) sum w */
      p = _mm512_dpbusd_epi32(p, u, wv);
      p = _mm512_sub_epi32(
          p, _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                 _mm512_set1_epi8((char)(uint8_t)(128 - x_offset)), wv));
    }
    out[0] = _mm512_reduce_add_epi32(p);
    return;
  }
  const __m256i none = _mm256_setzero_si256();
  if (x_offset == 0) {
    const __m256i correction = _mm256_set1_epi32(flip_correction(x, n_in));
    for (int32_t n = 0; n < n_out; n += 8) {
      rows_vnni(w + n * s, n_out - n < 8 ? n_out - n : 8, s, n_in, x, 0, 1, correction, out + n);
    }
  } else if (x_offset == 128) { /* zero point -128 (softmax outputs): c = 0 */
    for (int32_t n = 0; n < n_out; n += 8) {
      rows_vnni(w + n * s, n_out - n < 8 ? n_out - n : 8, s, n_in, x, 128, 0, none, out + n);
    }
  } else {
    for (int32_t n = 0; n < n_out; n += 8) {
      rows_vnni(w + n * s, n_out - n < 8 ? n_out - n : 8, s, n_in, x, x_offset, 0, none,
                out + n);
    }
  }
}

PG_TARGET_AVX512VNNI void pg_matvec_sums_avx512vnni(const int8_t *w, int32_t n_out,
                                                    int32_t n_in, int32_t stride,
                                                    const int8_t *x, int32_t x_offset,
                                                    const int32_t *row_sums, int32_t *out) {
  if (n_in < 8 || x_offset < -127 || x_offset > 128) { /* as pg_matvec_avx512vnni */
    pg_matvec_avx512vnni(w, n_out, n_in, stride, x, x_offset, out);
    return;
  }
  const intptr_t s = stride;
  const __m256i none = _mm256_setzero_si256();
  for (int32_t n = 0; n < n_out; n += 8) { /* sum_k (x_k + 128) w_k */
    rows_vnni(w + n * s, n_out - n < 8 ? n_out - n : 8, s, n_in, x, 128, 0, none, out + n);
  }
  /* minus (128 - x_offset) sum_k w_k; int32 lanes wrap like the scalar sums */
  const __m512i c = _mm512_set1_epi32(128 - x_offset);
  for (int32_t n = 0; n < n_out; n += 16) {
    const __mmask16 k = pg_lanes16(n_out - n);
    const __m512i sums = _mm512_maskz_loadu_epi32(k, row_sums + n);
    store_i32_lanes(out + n,
                    _mm512_sub_epi32(_mm512_maskz_loadu_epi32(k, out + n), _mm512_mullo_epi32(c, sums)),
                    n_out - n);
  }
}

/* ---- products over the cells (AVX-512 VNNI) -----------------------------------------------
 * The inputs are read four at a time: a tile whose rows are not a multiple of 4 gets a
 * zero-padded copy of x (the padding cells then add nothing, whatever they hold). Outputs past
 * cols (the cells are padded to 16) go to a scratch row and are dropped.
 *
 * AVX2 has no such kernel: without vpdpbusd it widens the bytes and multiplies 16 pairs per
 * vpmaddwd either way (three operations per 16 MACs), and a cells kernel that does so
 * measured slower than the row-major one (its passes over 32 outputs stride through the
 * tile), so the AVX2 path keeps the row-major weights. */

/* x itself, or x padded with zeros to a multiple of 4 in pad[]. */
static const int8_t *inputs_by_four(const int8_t *x, int32_t rows, int8_t *pad) {
  if ((rows & 3) == 0) return x;
  memcpy(pad, x, (size_t)rows);
  memset(pad + rows, 0, (size_t)(4 - (rows & 3)));
  return pad;
}

static int32_t load_four(const int8_t *x) {
  int32_t v;
  memcpy(&v, x, 4);
  return v;
}

/* `blocks` (a constant per call site) accumulators of 16 outputs each over every input group:
 * 64-byte cells times four broadcast inputs per vpdpbusd. */
PG_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void cell_blocks_vnni(
    const uint8_t *cells, intptr_t group_bytes, int32_t groups, const int8_t *x, int blocks,
    __m512i correction, int32_t *out) {
  __m512i acc[8];
  for (int b = 0; b < blocks; ++b) acc[b] = _mm512_setzero_si512();
  for (int32_t g = 0; g < groups; ++g, cells += group_bytes) {
    const __m512i xv = _mm512_set1_epi32(load_four(x + 4 * g));
    for (int b = 0; b < blocks; ++b) {
      acc[b] = _mm512_dpbusd_epi32(acc[b], _mm512_loadu_si512(cells + 64 * b), xv);
    }
  }
  for (int b = 0; b < blocks; ++b) {
    _mm512_storeu_si512(out + 16 * b, _mm512_sub_epi32(acc[b], correction));
  }
}

PG_TARGET_AVX512VNNI void pg_cells_matvec_avx512vnni(const uint8_t *cells, int32_t rows,
                                                     int32_t cols, const int8_t *x,
                                                     int32_t *out) {
  int8_t pad[PG_CELLS_MAX_SIDE + 4];
  int32_t spill[8 * 16];
  const int8_t *xs = inputs_by_four(x, rows, pad);
  const int32_t groups = cell_groups(rows), blocks = cell_outputs(cols) / 16;
  const intptr_t group_bytes = (intptr_t)blocks * 64;
  const __m512i correction = _mm512_set1_epi32(flip_correction(x, rows));
  /* Eight blocks (128 outputs) per pass: eight independent vpdpbusd chains. */
  for (int32_t b0 = 0; b0 < blocks; b0 += 8) {
    const int32_t n = blocks - b0 < 8 ? blocks - b0 : 8;
    const int whole = (b0 + n) * 16 <= cols;
    int32_t *dst = whole ? out + 16 * b0 : spill;
    const uint8_t *c = cells + 64 * b0;
    switch (n) {
      case 8: cell_blocks_vnni(c, group_bytes, groups, xs, 8, correction, dst); break;
      case 7: cell_blocks_vnni(c, group_bytes, groups, xs, 7, correction, dst); break;
      case 6: cell_blocks_vnni(c, group_bytes, groups, xs, 6, correction, dst); break;
      case 5: cell_blocks_vnni(c, group_bytes, groups, xs, 5, correction, dst); break;
      case 4: cell_blocks_vnni(c, group_bytes, groups, xs, 4, correction, dst); break;
      case 3: cell_blocks_vnni(c, group_bytes, groups, xs, 3, correction, dst); break;
      case 2: cell_blocks_vnni(c, group_bytes, groups, xs, 2, correction, dst); break;
      default: cell_blocks_vnni(c, group_bytes, groups, xs, 1, correction, dst); break;
    }
    if (!whole) memcpy(out + 16 * b0, spill, sizeof(int32_t) * (size_t)(cols - 16 * b0));
  }
}

#endif /* PG_SIMD_DISPATCH */
