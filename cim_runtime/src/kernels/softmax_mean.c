/* SOFTMAX (int8 -> int8, output scale 1/256, zero point -128) and MEAN (int8).
 *
 * SOFTMAX follows TFLite's reference int8 softmax: differences to the row
 * maximum are scaled by beta * input_scale into Q5.26, exponentiated with
 * gemmlowp's exp_on_negative_values, summed in Q12.19, and divided through the
 * fixed-point reciprocal (a row at a time: pg_softmax_row in quant.c, scalar or SIMD). A
 * difference is one of 256 values, so prepare tabulates exp per difference; the table is
 * computed by the same code. */
#include <string.h>

#include "kernel_util.h"

/* ---- SOFTMAX ----------------------------------------------------------------- */

typedef struct softmax_data {
  int32_t rows;                 /* outer size */
  int32_t depth;                /* last dimension */
  /* exp(-d * beta * scale) in Q0.31 for the difference -d to the row maximum; 0 below
   * diff_min. TFLM skips those entries; adding 0 to the sum and scaling 0 (output -128)
   * is the same, so no validity flags are stored. The Q12.19 summand is derived at eval
   * (one rounding shift), so 1 KB per SOFTMAX is all the table RAM. */
  int32_t exp_q0[256];
} softmax_data;

static picogpt_status eval_softmax(pg_interpreter *it, const pg_node *node) {
  const softmax_data *d = (const softmax_data *)node->data;
  const int8_t *in = (const int8_t *)pg_in_data(it, node, 0);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  for (int32_t r = 0; r < d->rows; ++r) {
    const intptr_t row = (intptr_t)r * d->depth;
    if (pg_softmax_row(in + row, d->depth, d->exp_q0, out + row) != 0) {
      return pg_fail(it, PICOGPT_ERR_EVAL, "SOFTMAX (op %d): sum of exponentials out of range",
                     (int)node->index);
    }
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_softmax(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 1, 1, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, in, "input")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, out, "output")) != PICOGPT_OK) return st;
  if (out->zero_point != -128 || out->scale != 1.0f / 256) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                        "int8 output must have scale 1/256 and zero point -128");
  }
  if (!pg_same_shape(in, out) || in->rank < 1 || in->dims[in->rank - 1] < 1) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "input and output shapes differ");
  }
  if ((st = pg_check_options_type(ctx, node, PG_OPT_SOFTMAX)) != PICOGPT_OK) return st;
  float beta = 0.0f;
  if (pg_fb_f32(&ctx->fb, &ctx->options, 0, 0.0f, &beta) != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  int32_t input_multiplier, diff_min;
  int input_left_shift;
  if (pg_softmax_prepare((double)beta, (double)in->scale, &input_multiplier, &input_left_shift,
                         &diff_min) != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                        "beta * input scale gives no valid multiplier");
  }
  softmax_data *d = (softmax_data *)pg_alloc_persistent(ctx, sizeof(softmax_data));
  if (d == NULL) return it->error.status;
  d->depth = in->dims[in->rank - 1];
  d->rows = in->num_elements / d->depth;
  for (int neg = 0; neg < 256; ++neg) {
    const int32_t diff = -neg;
    if (diff < diff_min) continue; /* stays 0 */
    const int32_t rescaled =
        pg_multiply_by_quantized_multiplier(diff, input_multiplier, input_left_shift);
    d->exp_q0[neg] = pg_exp_on_negative_values_q5(rescaled);
  }
  node->data = d;
  node->eval = eval_softmax;
  return PICOGPT_OK;
}

/* ---- MEAN --------------------------------------------------------------------------- */

typedef struct mean_data {
  int32_t in_count;              /* input elements */
  int32_t out_count;             /* output elements */
  int32_t inner_block;           /* > 0: reduced axes are the trailing dims, block length */
  int32_t dims[PG_MAX_RANK];       /* input shape, extended */
  int32_t out_stride[PG_MAX_RANK]; /* output element stride per input dim (0: reduced) */
  int32_t num_in_axis;           /* elements averaged per output */
  int32_t input_zero_point, output_zero_point;
  int32_t multiplier, shift;     /* already divided by num_in_axis, as TFLM does */
} mean_data;

static picogpt_status eval_mean(pg_interpreter *it, const pg_node *node) {
  const mean_data *d = (const mean_data *)node->data;
  const int8_t *in = (const int8_t *)pg_in_data(it, node, 0);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  int32_t *sums = (int32_t *)it->scratch; /* (out_count,) */
  if (d->inner_block > 0) { /* LayerNorm's case: sums of contiguous rows */
    pg_row_sums_scalar(in, d->out_count, d->inner_block, d->inner_block, sums);
  } else {
    memset(sums, 0, sizeof(int32_t) * (size_t)d->out_count);
    int32_t idx[PG_MAX_RANK] = {0};
    int32_t off = 0;
    for (int32_t i = 0; i < d->in_count; ++i) {
      sums[off] += in[i];
      pg_index_step(idx, d->dims, PG_MAX_RANK - 1, 1, &d->out_stride, &off);
    }
  }
  for (int32_t o = 0; o < d->out_count; ++o) {
    const int32_t shifted_sum = sums[o] - d->input_zero_point * d->num_in_axis;
    const int32_t v = pg_multiply_by_quantized_multiplier(shifted_sum, d->multiplier, d->shift) +
                      d->output_zero_point;
    out[o] = (int8_t)pg_clamp(v, -128, 127);
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_mean(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *axis_t = pg_in(it, node, 1);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, in, "input")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, out, "output")) != PICOGPT_OK) return st;
  int32_t axes[PG_MAX_RANK * 2];
  int32_t num_axes;
  st = pg_const_i32(ctx, node, axis_t, "axis", PG_MAX_RANK * 2, axes, &num_axes);
  if (st != PICOGPT_OK) return st;
  uint8_t keep_dims = 0;
  if ((st = pg_check_options_type(ctx, node, PG_OPT_REDUCER)) != PICOGPT_OK) return st;
  if (pg_fb_u8(&ctx->fb, &ctx->options, 0, 0, &keep_dims) != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  const int rank = in->rank;
  int reduced[PG_MAX_RANK] = {0};
  for (int i = 0; i < num_axes; ++i) {
    int a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "axis %d out of range for rank %d",
                          (int)axes[i], rank);
    }
    reduced[a] = 1;
  }
  /* Expected output shape. */
  int32_t expect[PG_MAX_RANK];
  int expect_rank = 0;
  int64_t num_in_axis = 1;
  for (int i = 0; i < rank; ++i) {
    if (reduced[i]) {
      num_in_axis *= in->dims[i];
      if (keep_dims) expect[expect_rank++] = 1;
    } else {
      expect[expect_rank++] = in->dims[i];
    }
  }
  int shape_ok = out->rank == expect_rank;
  for (int i = 0; shape_ok && i < expect_rank; ++i) shape_ok = out->dims[i] == expect[i];
  if (!shape_ok || num_in_axis < 1 || in->num_elements < 1) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output shape does not match the reduction");
  }
  mean_data *d = (mean_data *)pg_alloc_persistent(ctx, sizeof(mean_data));
  if (d == NULL) return it->error.status;
  d->in_count = in->num_elements;
  d->out_count = out->num_elements;
  d->num_in_axis = (int32_t)num_in_axis;
  d->input_zero_point = in->zero_point;
  d->output_zero_point = out->zero_point;
  /* Trailing-axes fast path: reduced dims form a suffix. */
  int first_reduced = rank;
  while (first_reduced > 0 && reduced[first_reduced - 1]) --first_reduced;
  int suffix_only = 1;
  for (int i = 0; i < first_reduced; ++i) suffix_only &= !reduced[i];
  d->inner_block = suffix_only ? d->num_in_axis : 0;
  int32_t stride = 1;
  for (int i = PG_MAX_RANK - 1; i >= 0; --i) {
    const int src = i - (PG_MAX_RANK - rank);
    const int32_t dim = src >= 0 ? in->dims[src] : 1;
    const int is_reduced = src >= 0 && reduced[src];
    d->dims[i] = dim;
    d->out_stride[i] = is_reduced ? 0 : stride;
    if (!is_reduced) stride *= dim;
  }
  /* reduce_common.cc: multiplier from double scales; reduce.h folds 1/n in. */
  int32_t multiplier;
  int shift;
  if (pg_quantize_multiplier((double)in->scale / (double)out->scale, &multiplier, &shift) != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier out of range");
  }
  int extra = 63 - pg_clz64((uint64_t)num_in_axis);
  if (extra > 32) extra = 32;
  if (extra > 31 + shift) extra = 31 + shift;
  if (extra < 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier out of range");
  }
  d->multiplier = (int32_t)(((int64_t)multiplier << extra) / num_in_axis);
  d->shift = shift - extra;
  if (d->shift < -31 || d->shift > 30) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier out of range");
  }
  pg_request_scratch(ctx, 4u * (size_t)d->out_count);
  node->data = d;
  node->eval = eval_mean;
  return PICOGPT_OK;
}
