/* FULLY_CONNECTED and BATCH_MATMUL (int8).
 *
 * FULLY_CONNECTED's weights are constant: the mapper (src/cim_map.c) writes them into CIM
 * macros at init, and each step the macros return raw sums W x; the zero-point correction
 * and requantization happen here:
 *   sum_k w (x - zx) = sum w x - zx sum w   (weights are symmetric, zw = 0)
 * BATCH_MATMUL multiplies two activations (attention over the KV cache) and runs on the CPU
 * (src/matvec.c), which folds the left operand's zero point into the inputs:
 *   sum_k (x - zx)(r - zr) = sum (x - zx) r - zr sum (x - zx)
 * Either integer result equals TFLite Micro's reference kernels' accumulator exactly (two's
 * complement arithmetic), then requantizes the same way. */
#include <string.h>

#include "../cim_map.h"
#include "../matvec.h"
#include "kernel_util.h"

/* Accumulation depth limit: keeps the int32 sums exact. */
#define PG_MAX_ACCUM_DEPTH 65536

/* ---- FULLY_CONNECTED ------------------------------------------------------------ */

typedef struct fc_data {
  int32_t batches;       /* rows of the input */
  pg_cim_tiles tiles;    /* the (N, K) weights and where they live: macros or the CPU */
  /* Requantization: the zero-point correction -input_zp * sum_k filter[n, k] comes from
   * int16 row sums (|sum| <= 128 K fits for K <= 256; larger K falls back to int32
   * offsets with the correction folded in), the bias is read from the model; per-channel
   * multiplier (int32) and shift (int8), or per-tensor ones. 7 bytes of RAM per channel. */
  pg_requant rq;
} fc_data;

static picogpt_status eval_fully_connected(pg_interpreter *it, const pg_node *node) {
  const fc_data *d = (const fc_data *)node->data;
  const int8_t *input = (const int8_t *)pg_in_data(it, node, 0);
  int8_t *output = (int8_t *)pg_out_data(it, node, 0);
  const int32_t N = d->tiles.out_features, K = d->tiles.in_features;
  int32_t *acc = (int32_t *)it->scratch; /* (N,) */
  int32_t *partial = acc + N;            /* (device cols,): one row tile's partial sums */
  for (int32_t b = 0; b < d->batches; ++b) {
    const picogpt_status st =
        pg_cim_product(it, node, &d->tiles, input + (intptr_t)b * K, acc, partial);
    if (st != PICOGPT_OK) return st;
    pg_requantize(acc, N, &d->rq, output + (intptr_t)b * N);
  }
  return PICOGPT_OK;
}

const pg_cim_tiles *pg_fully_connected_tiles(const pg_node *node) {
  if (node->opcode != PG_OP_FULLY_CONNECTED || node->data == NULL) return NULL;
  return &((const fc_data *)node->data)->tiles;
}

static float channel_scale(const pg_tensor *t, int32_t i) {
  uint32_t bits = pg_fb_read_u32(t->channel_scales + 4u * (uint32_t)i);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* sum_k filter[n, k]: the zero-point correction's row sum of output channel n. */
static int32_t filter_row_sum(const int8_t *filter, int32_t accum_depth, int32_t n) {
  int32_t sum;
  pg_row_sums_scalar(filter + (intptr_t)n * accum_depth, 1, accum_depth, accum_depth, &sum);
  return sum;
}

picogpt_status pg_prepare_fully_connected(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 3, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *input = pg_in(it, node, 0);
  const pg_tensor *filter = pg_in(it, node, 1);
  const pg_tensor *bias = pg_in(it, node, 2);
  const pg_tensor *output = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, input, "input")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, filter, "filter")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, output, "output")) != PICOGPT_OK) return st;

  int8_t activation = 0;
  uint8_t weights_format = 0;
  if ((st = pg_check_options_type(ctx, node, PG_OPT_FULLY_CONNECTED)) != PICOGPT_OK) return st;
  if (pg_fb_i8(&ctx->fb, &ctx->options, 0, 0, &activation) != 0 ||
      pg_fb_u8(&ctx->fb, &ctx->options, 1, 0, &weights_format) != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  if (weights_format != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_OP, "shuffled weights not supported");
  }
  if (filter->rank != 2 || !filter->is_constant) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "filter must be a constant 2-D tensor");
  }
  if (filter->zero_point != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "filter zero point must be 0");
  }
  const int32_t output_depth = filter->dims[0];
  const int32_t accum_depth = filter->dims[1];
  if (output_depth < 1 || accum_depth < 1 || accum_depth > PG_MAX_ACCUM_DEPTH ||
      output->rank < 1 || output->dims[output->rank - 1] != output_depth ||
      input->num_elements % accum_depth != 0 ||
      output->num_elements != (input->num_elements / accum_depth) * output_depth) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE,
                        "shapes do not match filter (%d x %d): input %d elements, output %d",
                        (int)output_depth, (int)accum_depth, (int)input->num_elements,
                        (int)output->num_elements);
  }
  if (bias != NULL) {
    if (bias->type != PG_INT32 || !bias->is_constant || bias->num_elements != output_depth) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "bias must be constant INT32 (%d)",
                          (int)output_depth);
    }
  }

  fc_data *d = (fc_data *)pg_alloc_persistent(ctx, sizeof(fc_data));
  if (d == NULL) return it->error.status;
  d->batches = input->num_elements / accum_depth;
  const int8_t *weights = (const int8_t *)filter->data;
  st = pg_cim_map_layer(ctx, node, weights, output_depth, accum_depth, d->batches, &d->tiles);
  if (st != PICOGPT_OK) return st;
  const int32_t *bias_data = bias ? (const int32_t *)bias->data : NULL;
  const int32_t input_offset = -input->zero_point;
  /* The int16 row sums save 2 bytes of RAM per channel; with picogpt_options.simd_tables an
   * x86-64 host keeps the int32 offsets, one add per output instead of a widening
   * multiply-add. */
  int fits_int16 = !(PG_SIMD_DISPATCH && it->simd_tables);
  for (int32_t n = 0; n < output_depth && fits_int16; ++n) {
    const int32_t sum = filter_row_sum(weights, accum_depth, n);
    fits_int16 = sum >= INT16_MIN && sum <= INT16_MAX;
  }
  if (fits_int16) {
    int16_t *row_sums = (int16_t *)pg_alloc_persistent(ctx, 2u * (size_t)output_depth);
    if (row_sums == NULL) return it->error.status;
    for (int32_t n = 0; n < output_depth; ++n) {
      row_sums[n] = (int16_t)filter_row_sum(weights, accum_depth, n);
    }
    d->rq.row_sum = row_sums;
    d->rq.row_sum_scale = input_offset; /* |input_offset * sum| <= 2^23: no overflow */
    d->rq.offset = bias_data;
  } else {
    int32_t *offsets = (int32_t *)pg_alloc_persistent(ctx, 4u * (size_t)output_depth);
    if (offsets == NULL) return it->error.status;
    for (int32_t n = 0; n < output_depth; ++n) {
      const int32_t sum = filter_row_sum(weights, accum_depth, n);
      /* TFLite accumulates sum (x + input_offset) * w (+ bias) in int32 (wrapping). */
      const int32_t offset = (int32_t)((uint32_t)input_offset * (uint32_t)sum);
      offsets[n] = bias_data ? pg_wrap_add(offset, bias_data[n]) : offset;
    }
    d->rq.offset = offsets;
  }
  d->rq.output_zero_point = output->zero_point;
  if (filter->num_channel_scales > 1) {
    /* Per-channel: effective scale per output channel, all in double. */
    if (filter->quantized_dimension != 0 || filter->num_channel_scales != output_depth) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                          "per-channel scales must be along the output dimension");
    }
    int32_t *multipliers = (int32_t *)pg_alloc_persistent(ctx, 4u * (size_t)output_depth);
    int8_t *shifts = (int8_t *)pg_alloc_persistent(ctx, (size_t)output_depth);
    if (multipliers == NULL || shifts == NULL) return it->error.status;
    for (int32_t n = 0; n < output_depth; ++n) {
      const double real = (double)input->scale * (double)channel_scale(filter, n) /
                          (double)output->scale;
      int shift;
      if (pg_quantize_multiplier(real, &multipliers[n], &shift) != 0 || shift < -31 ||
          shift > 30) {
        return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "channel %d multiplier invalid",
                            (int)n);
      }
      shifts[n] = (int8_t)shift;
    }
    d->rq.multiplier = multipliers;
    d->rq.shift = shifts;
    d->rq.right_shifts_only = 1;
    for (int32_t n = 0; n < output_depth; ++n) d->rq.right_shifts_only &= shifts[n] <= 0;
#if PG_SIMD_DISPATCH
    if (d->rq.right_shifts_only && it->simd_tables) { /* 8 more bytes per channel (quant.h) */
      int32_t *right_shift = (int32_t *)pg_alloc_persistent(ctx, 4u * (size_t)output_depth);
      int32_t *round_mask = (int32_t *)pg_alloc_persistent(ctx, 4u * (size_t)output_depth);
      if (right_shift == NULL || round_mask == NULL) return it->error.status;
      for (int32_t n = 0; n < output_depth; ++n) {
        right_shift[n] = -shifts[n];
        round_mask[n] = (int32_t)((UINT32_C(1) << right_shift[n]) - 1u);
      }
      d->rq.right_shift = right_shift;
      d->rq.round_mask = round_mask;
    }
#endif
  } else {
    /* GetQuantizedConvolutionMultipler with a bias argument: double product. */
    const double real = (double)input->scale * (double)filter->scale / (double)output->scale;
    int shift;
    if (pg_quantize_multiplier(real, &d->rq.multiplier_all, &shift) != 0 || shift < -31 ||
        shift > 30) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier invalid");
    }
    d->rq.shift_all = shift;
  }
  st = pg_activation_range_int8(ctx, node, activation, output, &d->rq.act_min, &d->rq.act_max);
  if (st != PICOGPT_OK) return st;
  const int32_t partial = pg_cim_partial_elements(&d->tiles, it);
  pg_request_scratch(ctx, 4u * ((size_t)output_depth + (size_t)partial));
  node->data = d;
  node->eval = eval_fully_connected;
  return PICOGPT_OK;
}

/* ---- BATCH_MATMUL ----------------------------------------------------------------- */

/* Operand ranks up to 5 (as TFLite Micro): up to 3 batch dimensions. */
#define BMM_MAX_RANK 5
#define BATCH_RANK (BMM_MAX_RANK - 2)

/* Which dimension of a BATCH_MATMUL bound to a KV cache holds the cache positions: only
 * the first it->live_positions of them are read (pg_batch_matmul_bind_cache). */
enum { LIVE_NONE = 0, LIVE_COLS = 1, LIVE_DEPTH = 2 };

typedef struct bmm_data {
  int32_t rows;   /* M: output rows (lhs rows) */
  int32_t cols;   /* N: output columns (rhs columns) */
  int32_t depth;  /* K */
  int32_t adj_x, adj_y;
  int32_t live;   /* LIVE_*: N (q . K^T, K cache [.., T, D]) or K (p . V, V cache [.., D, T]) */
  int32_t batch_dims[BATCH_RANK];     /* output batch extents, padded with leading 1s */
  int32_t batch_stride[2][BATCH_RANK]; /* lhs, rhs elements per batch step, 0 = broadcast */
  int32_t lhs_offset, rhs_offset, output_offset; /* -zp, -zp, +zp */
  int32_t multiplier, shift;
  /* x86-64 hosts with simd_tables, a right operand that is a graph input (a cache): the sums
   * of its rows, for the VNNI product (pg_matvec_sums_avx512vnni), kept between steps for
   * rows below rows_summed. Only the first `live` rows of a cache bound with LIVE_COLS are
   * read, the runtime writes row `pos` after the step at live == pos and resets a cache by
   * starting again at live 0, so a row never changes while it is below the last step's live
   * count: when live drops below rows_summed, every sum is taken again. NULL elsewhere;
   * absent from the firmware's RAM. */
#if PG_SIMD_DISPATCH
  int32_t *row_sums;      /* [rhs_rows]: rhs_batches blocks of `cols` rows */
  int32_t rhs_batches;
  int32_t rows_summed;    /* eval state */
#endif
} bmm_data;

#if PG_SIMD_DISPATCH
/* The row sums of a LIVE_COLS product's cache for rows [rows_summed, live), each batch; returns
 * them when the active path uses them. Kept up to date on every path, so that a path switch
 * (picogpt_simd_select) between steps cannot skip a reset. */
static const int32_t *cache_row_sums(bmm_data *d, const int8_t *rhs, int32_t live_rows) {
  if (d->row_sums == NULL || d->live != LIVE_COLS) return NULL;
  if (live_rows < d->rows_summed) d->rows_summed = 0;
  if (live_rows > d->rows_summed) {
    for (int32_t b = 0; b < d->rhs_batches; ++b) {
      const intptr_t first = (intptr_t)b * d->cols + d->rows_summed;
      pg_row_sums(rhs + first * d->depth, live_rows - d->rows_summed, d->depth, d->depth,
                  d->row_sums + first);
    }
    d->rows_summed = live_rows;
  }
  return pg_simd.matvec_sums != NULL ? d->row_sums : NULL;
}
#endif

static picogpt_status eval_batch_matmul(pg_interpreter *it, const pg_node *node) {
  const bmm_data *d = (const bmm_data *)node->data;
  const int8_t *lhs = (const int8_t *)pg_in_data(it, node, 0);
  const int8_t *rhs = (const int8_t *)pg_in_data(it, node, 1);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  const int32_t M = d->rows, N_all = d->cols, K_all = d->depth;
  /* Bound to a KV cache: positions >= live hold the cache's zero point (the runtime resets
   * the cache to it and fills it in order), so r + rhs_offset = 0 there. Over the depth
   * they add nothing; as output columns their whole sum is 0, which requantizes to the
   * output zero point. Skipping them gives TFLite Micro's result exactly. */
  const int32_t live = it->live_positions;
  const int32_t N = d->live == LIVE_COLS && live < N_all ? live : N_all;
  const int32_t K = d->live == LIVE_DEPTH && live < K_all ? live : K_all;
  /* The product over the V cache (its left operand is softmax's output) skips the zero
   * inputs with the scalar kernels (SIMD does the dense product faster); indices are int16. */
  const int sparse = pg_simd_scalar_active() && d->live == LIVE_DEPTH && d->adj_y &&
                     K_all <= INT16_MAX;
#if PG_SIMD_DISPATCH
  /* The sums are eval state of this node (node->data is its own, in the arena). */
  const int32_t *row_sums = cache_row_sums((bmm_data *)node->data, rhs, N);
#endif
  int32_t *acc = (int32_t *)it->scratch;        /* (N,) */
  int16_t *nz_idx = (int16_t *)(acc + N_all);   /* (K,): sparse input, when used */
  int16_t *nz_val = nz_idx + K_all;             /* (K,) */
  int8_t *xrow = (int8_t *)(nz_val + K_all);    /* (K,): one lhs row when adj_x */
  pg_requant rq = {0};
  rq.multiplier_all = d->multiplier;
  rq.shift_all = d->shift;
  rq.output_zero_point = d->output_offset;
  rq.act_min = -128;
  rq.act_max = 127;
  for (int32_t b0 = 0; b0 < d->batch_dims[0]; ++b0) {
    for (int32_t b1 = 0; b1 < d->batch_dims[1]; ++b1) {
      for (int32_t b2 = 0; b2 < d->batch_dims[2]; ++b2) {
        const int8_t *L = lhs + (intptr_t)b0 * d->batch_stride[0][0] +
                          (intptr_t)b1 * d->batch_stride[0][1] +
                          (intptr_t)b2 * d->batch_stride[0][2];
        const int8_t *R = rhs + (intptr_t)b0 * d->batch_stride[1][0] +
                          (intptr_t)b1 * d->batch_stride[1][1] +
                          (intptr_t)b2 * d->batch_stride[1][2];
        for (int32_t m = 0; m < M; ++m) {
          const int8_t *x;
          if (d->adj_x) { /* lhs stored (K, M) */
            for (int32_t k = 0; k < K; ++k) xrow[k] = L[(intptr_t)k * M + m];
            x = xrow;
          } else {
            x = L + (intptr_t)m * K_all;
          }
          int32_t lhs_sum = 0, nnz = K;
          if (sparse) {
            /* Inputs that are 0 after the offset (softmax's exact zeros) add nothing. */
            nnz = 0;
            for (int32_t k = 0; k < K; ++k) {
              lhs_sum += x[k];
              nz_idx[nnz] = (int16_t)k;
              nz_val[nnz] = (int16_t)(x[k] + d->lhs_offset);
              nnz += nz_val[nnz] != 0;
            }
          } else {
            pg_row_sums(x, 1, K, K, &lhs_sum);
          }
          if (2 * nnz <= K) {
            pg_matvec_sparse(R, N, K_all, nz_idx, nz_val, nnz, acc);
          } else if (d->adj_y) { /* rhs stored (N, K): row n is output column n */
#if PG_SIMD_DISPATCH
            if (row_sums != NULL) {
              pg_simd.matvec_sums(R, N, K, K_all, x, d->lhs_offset,
                                  row_sums + (R - rhs) / K_all, acc);
            } else {
              pg_matvec(R, N, K, K_all, x, d->lhs_offset, acc);
            }
#else
            pg_matvec(R, N, K, K_all, x, d->lhs_offset, acc);
#endif
          } else { /* rhs stored (K, N) */
            pg_matvec_col_major(R, N, K, N_all, x, d->lhs_offset, acc);
          }
          /* sum (x + lo)(r + ro) = sum (x + lo) r + ro (sum x + K lo) */
          rq.offset_all = (int32_t)((uint32_t)d->rhs_offset *
                                    ((uint32_t)lhs_sum + (uint32_t)K * (uint32_t)d->lhs_offset));
          int8_t *y = out + ((((intptr_t)b0 * d->batch_dims[1] + b1) * d->batch_dims[2] + b2) *
                                 M + m) * N_all;
          pg_requantize(acc, N, &rq, y);
          if (N < N_all) memset(y + N, d->output_offset, (size_t)(N_all - N));
        }
      }
    }
  }
  it->cpu_macs += (uint64_t)d->batch_dims[0] * (uint64_t)d->batch_dims[1] *
                  (uint64_t)d->batch_dims[2] * (uint64_t)M * (uint64_t)N * (uint64_t)K;
  return PICOGPT_OK;
}

int pg_batch_matmul_bind_cache(pg_node *node, int positions_in_rows, int32_t block_size) {
  if (node->opcode != PG_OP_BATCH_MATMUL || node->data == NULL) return 0;
  bmm_data *d = (bmm_data *)node->data;
  if (!d->adj_y) return 0;
  if (positions_in_rows && d->cols == block_size) {
    d->live = LIVE_COLS;
  } else if (!positions_in_rows && d->depth == block_size) {
    d->live = LIVE_DEPTH;
  } else {
    return 0;
  }
  return 1;
}

picogpt_status pg_prepare_batch_matmul(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *lhs = pg_in(it, node, 0);
  const pg_tensor *rhs = pg_in(it, node, 1);
  const pg_tensor *output = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, lhs, "lhs")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, rhs, "rhs")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, output, "output")) != PICOGPT_OK) return st;
  if (lhs->num_channel_scales > 1 || rhs->num_channel_scales > 1) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "per-channel operands not supported");
  }
  uint8_t adj_x = 0, adj_y = 0;
  if ((st = pg_check_options_type(ctx, node, PG_OPT_BATCH_MATMUL)) != PICOGPT_OK) return st;
  if (pg_fb_u8(&ctx->fb, &ctx->options, 0, 0, &adj_x) != 0 ||
      pg_fb_u8(&ctx->fb, &ctx->options, 1, 0, &adj_y) != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  if (lhs->rank < 2 || lhs->rank > BMM_MAX_RANK || rhs->rank < 2 || rhs->rank > BMM_MAX_RANK) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "operands must have rank 2..5");
  }
  const int32_t rank = lhs->rank > rhs->rank ? lhs->rank : rhs->rank;
  /* The last two dimensions are the matrices, the others batch dimensions. */
  const int32_t lhs_rows = lhs->dims[lhs->rank - 2], lhs_cols = lhs->dims[lhs->rank - 1];
  const int32_t rhs_rows = rhs->dims[rhs->rank - 2], rhs_cols = rhs->dims[rhs->rank - 1];
  bmm_data *d = (bmm_data *)pg_alloc_persistent(ctx, sizeof(bmm_data));
  if (d == NULL) return it->error.status;
  d->adj_x = adj_x ? 1 : 0;
  d->adj_y = adj_y ? 1 : 0;
  d->rows = adj_x ? lhs_cols : lhs_rows;
  d->depth = adj_x ? lhs_rows : lhs_cols;
  d->cols = adj_y ? rhs_rows : rhs_cols;
  const int32_t rhs_depth = adj_y ? rhs_cols : rhs_rows;
  if (rhs_depth != d->depth || d->depth < 1 || d->depth > PG_MAX_ACCUM_DEPTH || d->rows < 1 ||
      d->cols < 1) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "inner dimensions differ (%d vs %d)",
                        (int)d->depth, (int)rhs_depth);
  }
  const int32_t *const batch_shapes[2] = {lhs->dims, rhs->dims};
  const int32_t batch_ranks[2] = {lhs->rank - 2, rhs->rank - 2};
  st = pg_broadcast_shapes(ctx, node, 2, batch_shapes, batch_ranks, BATCH_RANK,
                           "batch dimensions", d->batch_dims, &d->batch_stride[0][0]);
  if (st != PICOGPT_OK) return st;
  for (int i = 0; i < BATCH_RANK; ++i) { /* batch steps -> element steps */
    d->batch_stride[0][i] *= lhs_rows * lhs_cols;
    d->batch_stride[1][i] *= rhs_rows * rhs_cols;
  }
  /* Output shape: broadcast batch dims (of the output rank) then (M, N). */
  if (output->rank != rank || output->dims[rank - 2] != d->rows ||
      output->dims[rank - 1] != d->cols) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output shape does not match (%d x %d)",
                        (int)d->rows, (int)d->cols);
  }
  for (int i = 0; i < rank - 2; ++i) {
    if (output->dims[i] != d->batch_dims[i + (BATCH_RANK - (rank - 2))]) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output batch dimension %d mismatch", i);
    }
  }
  d->lhs_offset = -lhs->zero_point;
  d->rhs_offset = -rhs->zero_point;
  d->output_offset = output->zero_point;
  /* TFLM: GetQuantizedConvolutionMultipler without bias: product in float. */
  const float product = lhs->scale * rhs->scale;
  const double real = (double)product / (double)output->scale;
  int shift;
  if (pg_quantize_multiplier(real, &d->multiplier, &shift) != 0 || shift < -31 || shift > 30) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier invalid");
  }
  d->shift = shift;
#if PG_SIMD_DISPATCH
  /* A cache (a graph input) read row by row: room for its rows' sums (4 bytes per row), with
   * picogpt_options.simd_tables. */
  if (it->simd_tables && d->adj_y && !d->adj_x && rhs->first_use == -2 && !rhs->is_constant) {
    const int32_t rows = rhs->num_elements / d->depth;
    d->row_sums = (int32_t *)pg_alloc_persistent(ctx, 4u * (size_t)rows);
    if (d->row_sums == NULL) return it->error.status;
    d->rhs_batches = rows / d->cols;
  }
#endif
  it->cim.map.macs_batch_matmul += (uint64_t)d->batch_dims[0] * (uint64_t)d->batch_dims[1] *
                                   (uint64_t)d->batch_dims[2] * (uint64_t)d->rows *
                                   (uint64_t)d->cols * (uint64_t)d->depth;
  pg_request_scratch(ctx, 4u * (size_t)d->cols + 5u * (size_t)d->depth);
  node->data = d;
  node->eval = eval_batch_matmul;
  return PICOGPT_OK;
}
