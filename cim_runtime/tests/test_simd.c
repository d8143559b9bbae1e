/* Every SIMD path this CPU runs (src/simd.h), forced in turn through the public selection
 * API, against the scalar reference and a plain definition, bit for bit: products with input
 * offsets, products over emulated macro cells, requantization, binary ops, softmax rows. Also the scalar row sums and fixed-point helpers against
 * a literal transcription of their definitions (gemmlowp's for the latter), and the selection
 * API's errors. Random shapes with every tail length (of 8, 16 and 64 lanes), random and
 * extreme values (-128/127 operands, INT32_MIN/MAX accumulators, shifts from -31 to 30,
 * multipliers at both ends of [2^30, 2^31)).
 *
 * The golden and end-to-end tests run once per path too (tests/CMakeLists.txt). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/matvec.h"
#include "../src/quant.h"
#include "pico_gpt/runtime.h"
#include "simd_choice.h"

static const char *g_path = "scalar"; /* the path under test, for the messages */

static int g_failed, g_checks;

#define CHECK(cond, ...)                                \
  do {                                                  \
    ++g_checks;                                         \
    if (!(cond)) {                                      \
      if (g_failed++ < 20) {                            \
        printf("FAIL %s:%d: ", __FILE__, __LINE__);     \
        printf(__VA_ARGS__);                            \
        printf("\n");                                   \
      }                                                 \
    }                                                   \
  } while (0)

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 32);
}
static int32_t rnd_range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }

/* int8 data: mostly random, sometimes all at one extreme (the vpmaddwd edge). */
static void fill_i8(int8_t *p, int32_t n, int mode) {
  for (int32_t i = 0; i < n; ++i) {
    p[i] = mode == 1 ? -128 : mode == 2 ? 127 : (int8_t)rnd();
  }
}

/* gemmlowp's SaturatingRoundingDoublingHighMul, literally (division, nudge). */
static int32_t srdhm_reference(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

static void test_srdhm(void) {
  const int32_t edge[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -1, 0, 1,
                          1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX};
  const int n_edge = (int)(sizeof edge / sizeof edge[0]);
  for (int i = 0; i < n_edge; ++i) {
    for (int j = 0; j < n_edge; ++j) {
      CHECK(pg_saturating_rounding_doubling_high_mul(edge[i], edge[j]) ==
                srdhm_reference(edge[i], edge[j]),
            "SRDHM(%d, %d)", (int)edge[i], (int)edge[j]);
    }
  }
  for (int i = 0; i < 2000000; ++i) {
    /* Small operands hit the rounding ties; large ones the full range. */
    const int32_t a = (i & 1) ? (int32_t)rnd() : rnd_range(-70000, 70000);
    const int32_t b = (i & 2) ? (int32_t)rnd() : rnd_range(-70000, 70000);
    const int32_t got = pg_saturating_rounding_doubling_high_mul(a, b);
    const int32_t want = srdhm_reference(a, b);
    if (got != want) CHECK(0, "SRDHM(%d, %d) = %d, gemmlowp %d", (int)a, (int)b, (int)got, (int)want);
  }
  ++g_checks;
}

/* The active path's product with given row sums (matvec.h), or NULL where it has none. */
typedef void (*matvec_sums_fn)(const int8_t *w, int32_t n_out, int32_t n_in, int32_t stride,
                               const int8_t *x, int32_t x_offset, const int32_t *row_sums,
                               int32_t *out);
static matvec_sums_fn matvec_sums(void) {
#if PG_SIMD_DISPATCH
  return pg_simd.matvec_sums;
#else
  return NULL;
#endif
}

static void test_matvec(void) {
  enum { MAX_ROWS = 70, MAX_COLS = 300 };
  static int8_t w[MAX_ROWS * (MAX_COLS + 5)], x[MAX_COLS];
  static int32_t out_s[MAX_ROWS], out_v[MAX_ROWS];
  for (int iter = 0; iter < 600; ++iter) {
    /* Some products shorter than a SIMD slice (attention's one-input rows among them). */
    const int32_t rows = rnd_range(1, MAX_ROWS),
                  cols = iter % 11 == 3 ? rnd_range(1, 17) : rnd_range(1, MAX_COLS);
    const int col_major = iter % 5 == 4;
    const int32_t inner = col_major ? rows : cols;
    const int32_t outer = col_major ? cols : rows;
    const int32_t stride = inner + (iter % 3 == 0 ? rnd_range(0, 5) : 0);
    const int mode = iter % 7 == 0 ? 1 : iter % 7 == 1 ? 2 : 0;
    /* Input offsets: none (macro tiles), the extremes of -zero_point, random ones. */
    const int32_t x_offset = iter % 4 == 0 ? 0 : iter % 4 == 1 ? (iter & 8 ? 128 : -127)
                                                                : rnd_range(-127, 128);
    fill_i8(w, outer * stride, mode);
    fill_i8(x, cols, iter % 7 == 0 ? 1 : mode == 2 ? 1 : 0);
    if (col_major) {
      pg_matvec_col_major(w, rows, cols, stride, x, x_offset, out_s);
      memcpy(out_v, out_s, sizeof(int32_t) * (size_t)rows);
    } else {
      pg_matvec_scalar(w, rows, cols, stride, x, x_offset, out_s);
      /* The SIMD kernel gets copies of exactly the bytes it may read (the last row ends at
       * cols), so the sanitizers catch a read past either operand. */
      const size_t w_bytes = (size_t)(rows - 1) * (size_t)stride + (size_t)cols;
      int8_t *w_exact = (int8_t *)malloc(w_bytes), *x_exact = (int8_t *)malloc((size_t)cols);
      if (w_exact == NULL || x_exact == NULL) abort();
      memcpy(w_exact, w, w_bytes);
      memcpy(x_exact, x, (size_t)cols);
      pg_matvec(w_exact, rows, cols, stride, x_exact, x_offset, out_v);
      if (matvec_sums() != NULL && iter % 2) { /* the row sums' product instead */
        static int32_t sums[MAX_ROWS];
        pg_row_sums_scalar(w, rows, cols, stride, sums);
        matvec_sums()(w_exact, rows, cols, stride, x_exact, x_offset, sums, out_v);
      }
      free(w_exact);
      free(x_exact);
    }
    int bad = -1;
    for (int32_t r = 0; r < rows && bad < 0; ++r) {
      int32_t want = 0; /* plain definition, independent of both */
      for (int32_t c = 0; c < cols; ++c) {
        const int8_t wv = col_major ? w[c * stride + r] : w[r * stride + c];
        want += wv * (x[c] + x_offset);
      }
      if (out_s[r] != want || out_v[r] != want) bad = r;
    }
    CHECK(bad < 0,
          "%s: matvec %dx%d stride %d col_major %d offset %d mode %d: row %d scalar %d simd %d",
          g_path, (int)rows, (int)cols, (int)stride, col_major, (int)x_offset, mode, bad,
          bad >= 0 ? (int)out_s[bad] : 0, bad >= 0 ? (int)out_v[bad] : 0);
  }
}

/* Every short shape against the plain definition: one row, one input, rows around a block
 * of 8, inputs around a SIMD slice (16 and 64), each with and without row padding. */
static void test_matvec_edges(void) {
  static const int32_t row_counts[] = {1, 2, 7, 8, 9, 17};
  static const int32_t col_counts[] = {1, 2, 7, 8, 15, 16, 17, 63, 64, 65, 130};
  static const int32_t offsets[] = {0, 128, -127, 37};
  static int8_t w[17 * 140], x[140];
  static int32_t out[17];
  int failed = 0;
  for (size_t r = 0; r < sizeof row_counts / sizeof row_counts[0]; ++r) {
    for (size_t c = 0; c < sizeof col_counts / sizeof col_counts[0]; ++c) {
      for (int pad = 0; pad <= 3; pad += 3) {
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; ++o) {
          const int32_t rows = row_counts[r], cols = col_counts[c], stride = cols + pad;
          fill_i8(w, rows * stride, (int)o % 3);
          fill_i8(x, cols, 0);
          if (matvec_sums() != NULL && pad) {
            static int32_t sums[17];
            pg_row_sums_scalar(w, rows, cols, stride, sums);
            matvec_sums()(w, rows, cols, stride, x, offsets[o], sums, out);
          } else {
            pg_matvec(w, rows, cols, stride, x, offsets[o], out);
          }
          for (int32_t n = 0; n < rows; ++n) {
            int32_t want = 0;
            for (int32_t k = 0; k < cols; ++k) want += w[n * stride + k] * (x[k] + offsets[o]);
            if (out[n] != want && !failed) {
              failed = 1;
              CHECK(0, "%s: matvec %dx%d stride %d offset %d: row %d got %d want %d", g_path,
                    (int)rows, (int)cols, (int)stride, (int)offsets[o], (int)n, (int)out[n],
                    (int)want);
            }
          }
        }
      }
    }
  }
  ++g_checks;
}

/* The emulated macro cells (matvec.h): packed from random tiles of every shape up to the
 * largest macro (tails of 4 inputs and 16 outputs included), the active path's cells kernel
 * against the scalar row-major product. Only the VNNI path has one; on the others the HAL
 * reads the row-major weights, and the table must say so (NULL). */
static void test_cells(void) {
  enum { SIDE = PG_CELLS_MAX_SIDE };
  static int8_t w[SIDE * (SIDE + 3)], x[SIDE];
  static uint8_t cells[SIDE * SIDE];
  static int32_t out_s[SIDE], out_v[SIDE];
  void (*kernel)(const uint8_t *, int32_t, int32_t, const int8_t *, int32_t *) = NULL;
#if PG_SIMD_DISPATCH
  kernel = pg_simd.cells_matvec;
#endif
  const int has_cells = picogpt_simd_active() == PICOGPT_SIMD_AVX512VNNI;
  CHECK((kernel != NULL) == has_cells, "%s: cells kernel %s", g_path,
        kernel ? "present" : "missing");
  CHECK(pg_cells_bytes(0, 5) == 0 && pg_cells_bytes(5, SIDE + 1) == 0 &&
            pg_cells_bytes(1, 1) == 64 && pg_cells_bytes(128, 128) == 128 * 128 &&
            pg_cells_bytes(130, 65) == 33 * 80 * 4,
        "pg_cells_bytes");
  if (kernel == NULL) return;
  for (int iter = 0; iter < 300; ++iter) {
    const int32_t rows = iter < 4 ? (iter & 1 ? SIDE : 1) : rnd_range(1, iter % 3 ? 140 : SIDE);
    const int32_t cols = iter < 4 ? (iter & 2 ? SIDE : 1) : rnd_range(1, iter % 3 ? 140 : SIDE);
    const int32_t stride = rows + (iter % 2 ? rnd_range(0, 3) : 0);
    const int mode = iter % 7 == 0 ? 1 : iter % 7 == 1 ? 2 : 0;
    fill_i8(w, cols * stride, mode);
    fill_i8(x, rows, iter % 5 == 0 ? 1 : iter % 5 == 1 ? 2 : 0);
    memset(cells, 0xA5, sizeof cells); /* padding must not matter */
    pg_cells_pack(w, rows, cols, stride, cells);
    pg_matvec_scalar(w, cols, rows, stride, x, 0, out_s);
    out_v[cols - 1] = 0x5A5A5A5A;
    if (cols < SIDE) out_v[cols] = 0x12345678; /* nothing past cols is written */
    kernel(cells, rows, cols, x, out_v);
    int bad = -1;
    for (int32_t n = 0; n < cols && bad < 0; ++n) {
      if (out_v[n] != out_s[n]) bad = (int)n;
    }
    CHECK(bad < 0 && (cols == SIDE || out_v[cols] == 0x12345678),
          "%s: cells %d inputs x %d outputs stride %d mode %d: output %d scalar %d cells %d",
          g_path, (int)rows, (int)cols, (int)stride, mode, bad, bad >= 0 ? (int)out_s[bad] : 0,
          bad >= 0 ? (int)out_v[bad] : 0);
  }
}

/* The narrow product (matvec.h: x_offset 0, weights in [-127, 127]) against the definition,
 * with exact-size operands: rows around a block of 8, inputs that are and are not whole
 * 32-byte slices, and the extremes where a vpmaddubsw pair is largest (|x| = 128, |w| = 127).
 * Only AVX2 has one (VNNI's own product is faster); elsewhere the table says NULL. And
 * pg_weights_narrow: a -128 anywhere in the matrix, never in the padding past n_in. */
static void test_matvec_narrow(void) {
#if PG_SIMD_DISPATCH
  enum { MAX_ROWS = 40, MAX_COLS = 300 };
  static int8_t w[MAX_ROWS * (MAX_COLS + 5)], x[MAX_COLS];
  static int32_t out[MAX_ROWS];
  void (*kernel)(const int8_t *, int32_t, int32_t, int32_t, const int8_t *, int32_t *) =
      pg_simd.matvec_narrow;
  CHECK((kernel != NULL) == (picogpt_simd_active() == PICOGPT_SIMD_AVX2), "%s: narrow kernel %s",
        g_path, kernel ? "present" : "missing");
  int8_t m[3 * 10];
  memset(m, 5, sizeof m);
  m[9] = -128; /* padding of row 0 (n_in 8, stride 10) */
  CHECK(pg_weights_narrow(m, 3, 8, 10), "pg_weights_narrow: a -128 in the padding counted");
  m[27] = -128; /* row 2, input 7 */
  CHECK(!pg_weights_narrow(m, 3, 8, 10), "pg_weights_narrow: a -128 in the last row missed");
  if (kernel == NULL) return;
  static const int32_t col_choices[] = {32, 64, 96, 128, 256, 31, 33, 100};
  for (int iter = 0; iter < 400; ++iter) {
    const int32_t rows = iter % 5 == 0 ? rnd_range(1, 9) : rnd_range(1, MAX_ROWS);
    const int32_t cols = iter % 4 == 3 ? rnd_range(1, MAX_COLS) : col_choices[iter % 8];
    const int32_t stride = cols + (iter % 3 == 0 ? rnd_range(0, 5) : 0);
    const int mode = iter % 6; /* 0-2 random weights, 3: all 127, 4: all -127, 5: alternating */
    for (int32_t i = 0; i < rows * stride; ++i) {
      const int8_t r = (int8_t)rnd();
      w[i] = mode == 3 ? 127 : mode == 4 ? -127 : mode == 5 ? (i & 1 ? 127 : -127)
                                                          : (r == -128 ? -127 : r);
    }
    fill_i8(x, cols, iter % 7 == 0 ? 1 : iter % 7 == 1 ? 2 : 0);
    const size_t w_bytes = (size_t)(rows - 1) * (size_t)stride + (size_t)cols;
    int8_t *w_exact = (int8_t *)malloc(w_bytes), *x_exact = (int8_t *)malloc((size_t)cols);
    if (w_exact == NULL || x_exact == NULL) abort();
    memcpy(w_exact, w, w_bytes);
    memcpy(x_exact, x, (size_t)cols);
    CHECK(pg_weights_narrow(w_exact, rows, cols, stride), "pg_weights_narrow: no -128 here");
    kernel(w_exact, rows, cols, stride, x_exact, out);
    free(w_exact);
    free(x_exact);
    int bad = -1;
    int32_t want = 0;
    for (int32_t r = 0; r < rows && bad < 0; ++r) {
      want = 0;
      for (int32_t c = 0; c < cols; ++c) want += w[r * stride + c] * x[c];
      if (out[r] != want) bad = r;
    }
    CHECK(bad < 0, "%s: narrow matvec %dx%d stride %d mode %d: row %d got %d want %d", g_path,
          (int)rows, (int)cols, (int)stride, mode, bad, bad >= 0 ? (int)out[bad] : 0, (int)want);
  }
#endif
}

static void test_requantize(void) {
  enum { N = 77 };
  static int32_t acc[N], offset[N], mult[N];
  static int16_t row_sum[N];
  static int8_t shift[N], out_s[N], out_v[N];
  for (int iter = 0; iter < 4000; ++iter) {
    const int32_t n = rnd_range(1, N);
    for (int32_t i = 0; i < n; ++i) {
      const uint32_t kind = rnd() % 8;
      acc[i] = kind == 0 ? INT32_MIN : kind == 1 ? INT32_MAX : kind < 4 ? (int32_t)rnd()
                                                                        : rnd_range(-300000, 300000);
      offset[i] = (rnd() % 4 == 0) ? (int32_t)rnd() : rnd_range(-40000, 40000);
      row_sum[i] = (int16_t)rnd();
      mult[i] = (rnd() % 16 == 0) ? 0 : (int32_t)((1u << 30) + (rnd() >> 2)) ; /* [2^30, 2^31) */
      if (rnd() % 16 == 1) mult[i] = INT32_MAX;
      shift[i] = (int8_t)((rnd() % 4 == 0) ? rnd_range(-31, 30) : rnd_range(-12, 2));
    }
    pg_requant q = {0};
    const int per_channel = iter % 2;
    q.offset = (iter % 3) ? offset : NULL;
    q.offset_all = (iter % 5 == 0) ? (int32_t)rnd() : rnd_range(-1000, 1000);
    q.row_sum = (iter % 4 == 1) ? row_sum : NULL;
    q.row_sum_scale = rnd_range(-127, 128);
    q.multiplier = per_channel ? mult : NULL;
    q.shift = per_channel ? shift : NULL;
    q.multiplier_all = mult[0];
    q.shift_all = shift[0];
    if (iter % 6 == 5) { /* FULLY_CONNECTED's cases: row sums or offsets, right shifts only */
      for (int32_t i = 0; i < n; ++i) shift[i] = (int8_t)(shift[i] > 0 ? -shift[i] : shift[i]);
      const int from_row_sums = (iter / 6) % 2;
      q.offset = from_row_sums ? NULL : offset;
      q.row_sum = from_row_sums ? row_sum : NULL;
      q.right_shifts_only = 1;
#if PG_SIMD_DISPATCH
      if ((iter / 12) % 2 == 0) { /* the host's int32 shift tables (matmul.c) */
        static int32_t right_shift[N], round_mask[N];
        for (int32_t i = 0; i < n; ++i) {
          right_shift[i] = -shift[i];
          round_mask[i] = (int32_t)((UINT32_C(1) << right_shift[i]) - 1u);
        }
        q.right_shift = right_shift;
        q.round_mask = round_mask;
      }
#endif
    }
    q.output_zero_point = rnd_range(-128, 127);
    q.act_min = (iter % 4 == 0) ? q.output_zero_point : -128;
    q.act_max = 127;
    pg_requantize_scalar(acc, n, &q, out_s);
    pg_requantize(acc, n, &q, out_v);
    int bad = -1;
    for (int32_t i = 0; i < n && bad < 0; ++i) {
      int32_t o = q.offset ? pg_wrap_add(offset[i], q.offset_all) : q.offset_all;
      if (q.row_sum) o = pg_wrap_add(o, row_sum[i] * q.row_sum_scale);
      const int32_t m = per_channel ? mult[i] : q.multiplier_all;
      const int s = per_channel ? shift[i] : q.shift_all;
      /* Reference: MultiplyByQuantizedMultiplier spelled out with gemmlowp's SRDHM. */
      const int32_t x = pg_wrap_shl(pg_wrap_add(acc[i], o), s > 0 ? s : 0);
      int32_t v = pg_rounding_divide_by_pot(srdhm_reference(x, m), s > 0 ? 0 : -s);
      v = pg_clamp(pg_wrap_add(v, q.output_zero_point), q.act_min, q.act_max);
      if (out_s[i] != v || out_v[i] != v) bad = (int)i;
    }
    CHECK(bad < 0, "%s: requantize n %d per_channel %d: element %d scalar %d simd %d", g_path,
          (int)n,
          per_channel, bad, bad >= 0 ? out_s[bad] : 0, bad >= 0 ? out_v[bad] : 0);
  }
}

static void random_binary_params(pg_binary_params *p, int op) {
  memset(p, 0, sizeof *p);
  p->op = op;
  p->input1_offset = -rnd_range(-128, 127);
  p->input2_offset = -rnd_range(-128, 127);
  p->output_offset = rnd_range(-128, 127);
  p->left_shift = op == PG_BIN_SQUARED_DIFFERENCE ? 7 : op == PG_BIN_MUL ? 0 : 20;
  /* Input multipliers as QuantizeMultiplierSmallerThanOneExp makes them: the
   * larger input gets 1/2 (2^30, shift 0), the other <= 1/2. */
  p->input1_multiplier = (int32_t)((1u << 30) + (rnd() >> 2));
  p->input2_multiplier = (int32_t)((1u << 30) + (rnd() >> 2));
  /* Mostly small shifts (inputs of similar scales), sometimes any (very different ones). */
  p->input1_shift = (rnd() % 2) ? 0 : -rnd_range(0, rnd() % 4 ? 6 : 31);
  p->input2_shift = (rnd() % 2) ? 0 : -rnd_range(0, rnd() % 4 ? 6 : 31);
  if (p->input1_shift == 0) p->input1_multiplier = 1 << 30; /* exactly 1/2 */
  if (p->input2_shift == 0) p->input2_multiplier = 1 << 30;
  p->output_multiplier = (int32_t)((1u << 30) + (rnd() >> 2));
  p->output_shift = op == PG_BIN_MUL || op == PG_BIN_SQUARED_DIFFERENCE ? rnd_range(-31, 8)
                                                                         : -rnd_range(10, 31);
  p->act_min = (rnd() % 4 == 0) ? p->output_offset : -128;
  p->act_max = 127;
}

static int8_t binary_reference(const pg_binary_params *p, int32_t x, int32_t y) {
  const int32_t a = x + p->input1_offset, b = y + p->input2_offset;
  int32_t raw;
  if (p->op == PG_BIN_MUL) {
    raw = pg_multiply_by_quantized_multiplier(a * b, p->output_multiplier, p->output_shift);
  } else {
    const int32_t sa = pg_rounding_divide_by_pot(
        srdhm_reference(a * (1 << p->left_shift), p->input1_multiplier), -p->input1_shift);
    const int32_t sb = pg_rounding_divide_by_pot(
        srdhm_reference(b * (1 << p->left_shift), p->input2_multiplier), -p->input2_shift);
    const int32_t v = p->op == PG_BIN_ADD ? sa + sb : p->op == PG_BIN_SUB ? sa - sb
                                                                          : (sa - sb) * (sa - sb);
    raw = pg_multiply_by_quantized_multiplier(v, p->output_multiplier, p->output_shift);
  }
  return (int8_t)pg_clamp(pg_wrap_add(raw, p->output_offset), p->act_min, p->act_max);
}

static void test_binary(void) {
  enum { N = 70 };
  static int8_t a[N], b[N], out_s[N], out_v[N];
  for (int iter = 0; iter < 8000; ++iter) {
    pg_binary_params p;
    random_binary_params(&p, iter % 4);
    const int32_t n = rnd_range(1, N);
    const int32_t a_step = (iter / 4) % 3 == 1 ? 0 : 1;
    const int32_t b_step = (iter / 4) % 3 == 2 ? 0 : 1;
    const int mode = iter % 11 == 0 ? 1 : iter % 11 == 1 ? 2 : 0;
    fill_i8(a, N, mode);
    fill_i8(b, N, mode == 0 ? 0 : 3 - mode);
    pg_binary_scalar(&p, a, a_step, b, b_step, out_s, n);
    pg_binary(&p, a, a_step, b, b_step, out_v, n);
    int bad = -1;
    for (int32_t i = 0; i < n && bad < 0; ++i) {
      const int8_t want = binary_reference(&p, a[i * a_step], b[i * b_step]);
      if (out_s[i] != want || out_v[i] != want) bad = (int)i;
    }
    CHECK(bad < 0, "%s: binary op %d n %d steps %d/%d: element %d scalar %d simd %d", g_path,
          (int)p.op,
          (int)n, (int)a_step, (int)b_step, bad, bad >= 0 ? out_s[bad] : 0,
          bad >= 0 ? out_v[bad] : 0);
  }
}

/* Softmax rows against the scalar kernel (itself checked against TFLite Micro by the golden
 * tests): random tables (with zeros, as below diff_min, and the Q0.31 maximum at difference
 * 0), rows with runs of equal values (the causal mask's fill) and every tail length. A row of
 * 512 or more equal values sums past the reciprocal's range (2^28 in Q12.19: 9 bits over
 * unit), which both must report. A row whose last entry stands for several (last_count) must
 * give what the scalar kernel gives for the row with those copies written out. */
static void test_softmax_rows(void) {
  enum { MAX_DEPTH = 1100 }; /* past the AVX-512 row's kept exponentials (1024) too */
  static int32_t table[256];
  static int8_t x[MAX_DEPTH], y_s[MAX_DEPTH], y_v[MAX_DEPTH], x_full[2 * MAX_DEPTH],
      y_full[2 * MAX_DEPTH];
  for (int iter = 0; iter < 3000; ++iter) {
    const int overflow = iter % 50 == 0;
    for (int d = 0; d < 256; ++d) {
      const int32_t v = (int32_t)(rnd() >> 1);
      table[d] = d == 0 ? INT32_MAX : (d > 40 && rnd() % 4 == 0) ? 0 : v;
    }
    const int32_t depth = overflow ? rnd_range(512, MAX_DEPTH) : rnd_range(1, 300);
    const int32_t fill_from = overflow ? 0 : rnd_range(0, depth);
    fill_i8(x, depth, iter % 9 == 0 ? 1 : iter % 9 == 1 ? 2 : 0);
    for (int32_t c = fill_from; c < depth; ++c) x[c] = -100;
    memset(y_s, 0, sizeof y_s);
    memset(y_v, 0, sizeof y_v);
    const int32_t last_count = iter % 3 == 0 ? 1 : rnd_range(1, overflow ? 900 : 200);
    const int st_s = pg_softmax_row_scalar(x, depth, table, y_s, last_count);
    const int st_v = pg_softmax_row(x, depth, table, y_v, last_count);
    int bad = -1;
    for (int32_t c = 0; c < depth && bad < 0 && st_s == 0; ++c) {
      if (y_s[c] != y_v[c]) bad = (int)c;
    }
    /* The same row with the last entry's copies written out (overflowing rows overflow
     * either way: 512 or more equal values). */
    memcpy(x_full, x, (size_t)depth);
    for (int32_t c = depth; c < depth + last_count - 1; ++c) x_full[c] = x[depth - 1];
    const int32_t full_depth = depth + last_count - 1;
    const int st_full = pg_softmax_row_scalar(x_full, full_depth, table, y_full, 1);
    for (int32_t c = 0; c < full_depth && bad < 0 && st_s == 0; ++c) {
      if (y_full[c] != y_s[c < depth ? c : depth - 1]) bad = (int)c;
    }
    CHECK(st_s == st_v && st_s == st_full && bad < 0 && st_s == (overflow ? -1 : 0),
          "%s: softmax row depth %d fill %d last_count %d: status %d/%d/%d, element %d "
          "scalar %d simd %d",
          g_path, (int)depth, (int)fill_from, (int)last_count, st_s, st_v, st_full, bad,
          bad >= 0 ? y_s[bad < depth ? bad : depth - 1] : 0, bad >= 0 ? y_v[bad < depth ? bad : depth - 1] : 0);
  }
}

/* Scalar only (prepare time): the SWAR row sums against the plain definition. */
/* The SWAR row sums (scalar; FULLY_CONNECTED's prepare) and the active path's (pg_row_sums:
 * MEAN, BATCH_MATMUL at eval) against the plain definition, every tail length. */
static void test_row_sums(void) {
  static int8_t m[40 * 2400];
  static int32_t out_s[40], out_v[40];
  for (int iter = 0; iter < 500; ++iter) {
    /* Every 10th: long rows, past the 1024-byte SWAR chunk. */
    const int32_t rows = rnd_range(1, 40),
                  cols = iter % 10 ? rnd_range(1, 290) : rnd_range(1000, 2390);
    const int32_t stride = cols + rnd_range(0, 9); /* rows * stride <= 40 * 2399 */
    fill_i8(m, rows * stride, iter % 5 == 0 ? 1 : iter % 5 == 1 ? 2 : 0);
    pg_row_sums_scalar(m, rows, cols, stride, out_s);
    pg_row_sums(m, rows, cols, stride, out_v);
    int bad = -1;
    for (int32_t r = 0; r < rows && bad < 0; ++r) {
      int32_t want = 0;
      for (int32_t c = 0; c < cols; ++c) want += m[r * stride + c];
      if (out_s[r] != want || out_v[r] != want) bad = (int)r;
    }
    CHECK(bad < 0, "%s: row sums %dx%d: row %d", g_path, (int)rows, (int)cols, bad);
  }
}

/* The selection API: names, "auto", and the refusals that leave the active path alone. */
static void test_selection(void) {
  picogpt_simd path;
  const picogpt_simd best = picogpt_simd_best();
  CHECK(picogpt_simd_active() == best, "a program starts on the best path");
  CHECK(picogpt_simd_parse("auto", &path) == PICOGPT_OK && path == best, "auto is the best");
  for (int p = 0; p < PICOGPT_SIMD_COUNT; ++p) {
    const char *name = picogpt_simd_name((picogpt_simd)p);
    CHECK(name != NULL && picogpt_simd_parse(name, &path) == PICOGPT_OK && (int)path == p,
          "path %d's name parses back", p);
    CHECK(picogpt_simd_supported((picogpt_simd)p) == (p <= (int)best), "supported %d", p);
  }
  CHECK(picogpt_simd_parse("AVX2", &path) == PICOGPT_ERR_ARGUMENT, "names are lower case");
  CHECK(picogpt_simd_parse("", &path) == PICOGPT_ERR_ARGUMENT, "empty name");
  CHECK(picogpt_simd_parse(NULL, &path) == PICOGPT_ERR_ARGUMENT, "NULL name");
  CHECK(picogpt_simd_name(PICOGPT_SIMD_COUNT) == NULL, "name out of range");
  CHECK(picogpt_simd_select(PICOGPT_SIMD_COUNT) == PICOGPT_ERR_ARGUMENT &&
            picogpt_simd_select((picogpt_simd)-1) == PICOGPT_ERR_ARGUMENT &&
            picogpt_simd_active() == best,
        "an out-of-range path is refused and changes nothing");
  if (best + 1 < PICOGPT_SIMD_COUNT) {
    CHECK(picogpt_simd_select((picogpt_simd)(best + 1)) == PICOGPT_ERR_ARGUMENT &&
              picogpt_simd_active() == best,
          "a path this CPU lacks is refused and changes nothing");
  }
}

/* The apps' choice (--simd, PICOGPT_SIMD): exit status 2 for an unknown name or a path this
 * CPU lacks, nothing changed; 0 and the path active otherwise. */
static void test_apps_choice(void) {
  const picogpt_simd best = picogpt_simd_best();
  CHECK(apply_simd_choice("sse") == 2 && picogpt_simd_active() == best, "unknown --simd");
  CHECK(apply_simd_choice("scalar") == 0 && picogpt_simd_active() == PICOGPT_SIMD_SCALAR,
        "--simd scalar");
  if (best + 1 < PICOGPT_SIMD_COUNT) {
    CHECK(apply_simd_choice(picogpt_simd_name((picogpt_simd)(best + 1))) == 2 &&
              picogpt_simd_active() == PICOGPT_SIMD_SCALAR,
          "--simd with a path this CPU lacks");
  }
  setenv("PICOGPT_SIMD", "avx-512", 1);
  CHECK(apply_simd_choice(NULL) == 2, "unknown PICOGPT_SIMD");
  setenv("PICOGPT_SIMD", "", 1);
  CHECK(apply_simd_choice(NULL) == 0 && picogpt_simd_active() == PICOGPT_SIMD_SCALAR,
        "an empty PICOGPT_SIMD changes nothing");
  setenv("PICOGPT_SIMD", "auto", 1);
  CHECK(apply_simd_choice(NULL) == 0 && picogpt_simd_active() == best, "PICOGPT_SIMD=auto");
  unsetenv("PICOGPT_SIMD");
}

int main(void) {
  test_selection();
  test_apps_choice();
  test_srdhm();
  int paths = 0;
  for (int p = 0; p < PICOGPT_SIMD_COUNT; ++p) {
    if (!picogpt_simd_supported((picogpt_simd)p)) continue;
    CHECK(picogpt_simd_select((picogpt_simd)p) == PICOGPT_OK && (int)picogpt_simd_active() == p,
          "select path %d", p);
    g_path = picogpt_simd_name((picogpt_simd)p);
    test_row_sums();
    test_matvec();
    test_matvec_edges();
    test_cells();
    test_matvec_narrow();
    test_requantize();
    test_binary();
    test_softmax_rows();
    printf("%s: checked\n", g_path);
    ++paths;
  }
  printf("%d paths, %d checks, %d failed\n", paths, g_checks, g_failed);
  return g_failed == 0 ? 0 : 1;
}
