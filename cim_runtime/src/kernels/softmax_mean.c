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
    if (pg_softmax_row(in + row, d->depth, d->exp_q0, out + row, 1) != 0) {
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

#if PICOGPT_FUSE_MASKED_SOFTMAX
/* ---- SELECT_V2 -> CONCATENATION -> SOFTMAX, fused ------------------------------------
 * Attention's scores in the KV-cache step model: the cache positions' scores, masked by the
 * causal condition (SELECT_V2 with a constant fill), then the new token's score appended
 * (CONCATENATION on the last axis), then SOFTMAX. The fused op computes the same rows (the
 * selects and copies are byte moves: both ops keep the quantization), without the two
 * intermediate tensors. When the condition keeps a prefix (it does: positions before the
 * step's), the masked entries are one value repeated: the row goes to the softmax kernel
 * once compacted, [kept scores, new score, fill], with the fill counted for every masked
 * entry (pg_softmax_row's last_count). The softmax of a row does not depend on the order of
 * its entries (a maximum, a wrapping int32 sum, then each entry on its own), so the outputs
 * are TFLite Micro's, and a step at position p reads p + 2 entries instead of T + 1. */

typedef struct masked_softmax_data {
  const softmax_data *softmax;
  int32_t rows;         /* leading elements (heads) */
  int32_t masked_depth; /* entries under the condition (cache positions) */
  int32_t tail_depth;   /* entries appended after them (the new token's score) */
  int32_t io[5];        /* condition, scores, fill, tail -> probabilities */
} masked_softmax_data;

/* Whether bytes p[0 .. n) are all 0 (a word at a time where aligned). */
static int all_zero(const uint8_t *p, int32_t n) {
  uint32_t any = 0;
  for (; n > 0 && ((uintptr_t)p & 3u) != 0; --n) any |= *p++;
  for (; n >= 4; n -= 4, p += 4) any |= *(const pg_word *)(const void *)p;
  for (; n > 0; --n) any |= *p++;
  return any == 0;
}

static picogpt_status eval_masked_softmax(pg_interpreter *it, const pg_node *node) {
  const masked_softmax_data *d = (const masked_softmax_data *)node->data;
  const uint8_t *cond = (const uint8_t *)pg_in_data(it, node, 0);
  const int8_t *scores = (const int8_t *)pg_in_data(it, node, 1);
  const int8_t fill = *(const int8_t *)pg_in_data(it, node, 2);
  const int8_t *tail = (const int8_t *)pg_in_data(it, node, 3);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  const int32_t masked_depth = d->masked_depth, tail_depth = d->tail_depth;
  const int32_t depth = masked_depth + tail_depth;
  /* Whether the condition keeps a prefix: its first false entry, then no true one. */
  const uint8_t *first_false = (const uint8_t *)memchr(cond, 0, (size_t)masked_depth);
  const int32_t kept = first_false ? (int32_t)(first_false - cond) : masked_depth;
  const int prefix = all_zero(cond + kept, masked_depth - kept);
  const int32_t filled = masked_depth - kept;
  int8_t *row = (int8_t *)it->scratch; /* depth + 1 bytes, then as many for the outputs */
  int8_t *probs = row + depth + 1;
  for (int32_t r = 0; r < d->rows; ++r) {
    const int8_t *s = scores + (intptr_t)r * masked_depth;
    const int8_t *t = tail + (intptr_t)r * tail_depth;
    int8_t *y = out + (intptr_t)r * depth;
    int st;
    if (prefix) {
      pg_copy(row, s, (size_t)kept);
      pg_copy(row + kept, t, (size_t)tail_depth);
      int32_t n = kept + tail_depth;
      if (filled > 0) row[n++] = fill;
      st = pg_softmax_row(row, n, d->softmax->exp_q0, probs, filled > 0 ? filled : 1);
      if (st == 0) {
        pg_copy(y, probs, (size_t)kept);
        if (filled > 0) pg_fill(y + kept, probs[n - 1], (size_t)filled);
        pg_copy(y + masked_depth, probs + kept, (size_t)tail_depth);
      }
    } else {
      for (int32_t c = 0; c < masked_depth; ++c) row[c] = cond[c] ? s[c] : fill;
      pg_copy(row + masked_depth, t, (size_t)tail_depth);
      st = pg_softmax_row(row, depth, d->softmax->exp_q0, y, 1);
    }
    if (st != 0) {
      return pg_fail(it, PICOGPT_ERR_EVAL, "SOFTMAX (op %d): sum of exponentials out of range",
                     (int)node->index);
    }
  }
  return PICOGPT_OK;
}

/* The node that reads tensor t, if exactly one does and t is not a graph output; else -1. */
static int32_t sole_reader(const pg_interpreter *it, int32_t t) {
  for (int32_t i = 0; i < it->num_outputs; ++i) {
    if (it->outputs[i] == t) return -1;
  }
  int32_t reader = -1;
  for (int32_t n = 0; n < it->num_nodes; ++n) {
    const pg_node *node = &it->nodes[n];
    for (int i = 0; i < node->num_inputs; ++i) {
      if (node->inputs[i] != t) continue;
      if (reader >= 0 && reader != n) return -1;
      reader = n;
    }
  }
  return reader;
}

/* Whether SELECT_V2 `sel` -> CONCATENATION `cat` -> SOFTMAX `sm` is the masked-scores pattern
 * the fused op computes: int8 [..., Da] scores, an element-wise condition of Da entries
 * broadcast over the leading dimensions, a one-element fill, the tail [..., Db] appended on
 * the last axis and available when the select runs. */
static int is_masked_softmax(const pg_interpreter *it, int32_t sel_at, const pg_node *cat) {
  const pg_node *sel = &it->nodes[sel_at];
  const pg_tensor *cond = &it->tensors[sel->inputs[0]], *x = &it->tensors[sel->inputs[1]];
  const pg_tensor *fill = &it->tensors[sel->inputs[2]], *a = &it->tensors[sel->outputs[0]];
  const pg_tensor *b = &it->tensors[cat->inputs[1]], *c = &it->tensors[cat->outputs[0]];
  if (a->type != PG_INT8 || b->type != PG_INT8 || c->type != PG_INT8 || fill->num_elements != 1 ||
      !pg_same_shape(x, a) || a->rank != c->rank || b->rank != c->rank || c->rank < 1) {
    return 0;
  }
  const int32_t last = c->rank - 1;
  for (int32_t k = 0; k < last; ++k) {
    if (a->dims[k] != c->dims[k] || b->dims[k] != c->dims[k]) return 0;
  }
  if (a->dims[last] + b->dims[last] != c->dims[last] || b->dims[last] < 1) return 0;
  if (cond->rank < 1 || cond->dims[cond->rank - 1] != a->dims[last] ||
      cond->num_elements != a->dims[last]) {
    return 0;
  }
  /* The tail must be there when the select runs: a constant, an input or an earlier op's. */
  if (b->is_constant || b->is_variable) return 1;
  const int32_t tail = cat->inputs[1];
  for (int32_t i = 0; i < it->num_inputs; ++i) {
    if (it->inputs[i] == tail) return 1;
  }
  for (int32_t n = 0; n < sel_at; ++n) {
    const pg_node *node = &it->nodes[n];
    for (int o = 0; o < node->num_outputs; ++o) {
      if (node->outputs[o] == tail) return 1;
    }
  }
  return 0;
}

picogpt_status pg_fuse_masked_softmax(pg_prepare_ctx *ctx, int *fused) {
  pg_interpreter *it = ctx->it;
  *fused = 0;
  for (int32_t n = 0; n < it->num_nodes; ++n) {
    pg_node *sel = &it->nodes[n];
    if (sel->opcode != PG_OP_SELECT_V2 || sel->num_inputs != 3 || sel->num_outputs != 1) continue;
    const int32_t cat_at = sole_reader(it, sel->outputs[0]);
    if (cat_at < 0) continue;
    const pg_node *cat = &it->nodes[cat_at];
    if (cat->opcode != PG_OP_CONCATENATION || cat->num_inputs != 2 || cat->num_outputs != 1 ||
        cat->inputs[0] != sel->outputs[0]) {
      continue;
    }
    const int32_t sm_at = sole_reader(it, cat->outputs[0]);
    if (sm_at < 0) continue;
    const pg_node *sm = &it->nodes[sm_at];
    if (sm->opcode != PG_OP_SOFTMAX || sm->eval != eval_softmax ||
        !is_masked_softmax(it, n, cat)) {
      continue;
    }
    masked_softmax_data *d =
        (masked_softmax_data *)pg_alloc_persistent(ctx, sizeof(masked_softmax_data));
    if (d == NULL) return it->error.status;
    const pg_tensor *c = &it->tensors[cat->outputs[0]];
    d->softmax = (const softmax_data *)sm->data;
    d->tail_depth = it->tensors[cat->inputs[1]].dims[c->rank - 1];
    d->masked_depth = c->dims[c->rank - 1] - d->tail_depth;
    d->rows = c->num_elements / c->dims[c->rank - 1];
    for (int i = 0; i < 3; ++i) d->io[i] = sel->inputs[i];
    d->io[3] = cat->inputs[1];
    d->io[4] = sm->outputs[0];
    pg_request_scratch(ctx, 2u * ((size_t)c->dims[c->rank - 1] + 1u));
    /* The select's slot runs the fused op (named as the SOFTMAX in messages); the
     * concatenation and the softmax leave the graph. */
    sel->inputs = d->io;
    sel->num_inputs = 4;
    sel->outputs = d->io + 4;
    sel->opcode = PG_OP_SOFTMAX;
    sel->index = sm->index;
    sel->data = d;
    sel->eval = eval_masked_softmax;
    const int32_t first = cat_at < sm_at ? cat_at : sm_at, second = cat_at < sm_at ? sm_at : cat_at;
    memmove(&it->nodes[second], &it->nodes[second + 1],
            sizeof(pg_node) * (size_t)(it->num_nodes - second - 1));
    memmove(&it->nodes[first], &it->nodes[first + 1],
            sizeof(pg_node) * (size_t)(it->num_nodes - first - 2));
    it->num_nodes -= 2;
    ++*fused;
  }
  return PICOGPT_OK;
}
#endif /* PICOGPT_FUSE_MASKED_SOFTMAX */

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
    pg_row_sums(in, d->out_count, d->inner_block, d->inner_block, sums);
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
