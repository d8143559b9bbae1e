/* Data-movement ops: RESHAPE/SQUEEZE/EXPAND_DIMS, TRANSPOSE, STRIDED_SLICE,
 * CONCATENATION, GATHER. Type-agnostic (element size only); quantization
 * must pass through unchanged, as TFLite Micro requires. */
#include <string.h>

#include "kernel_util.h"

static picogpt_status same_quantization(pg_prepare_ctx *ctx, const pg_node *node,
                                        const pg_tensor *a, const pg_tensor *b) {
  if (a->type != b->type) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE, "types differ (%s vs %s)",
                        pg_type_name(a->type), pg_type_name(b->type));
  }
  if (a->type == PG_INT8 &&
      (a->has_quantization != b->has_quantization || a->scale != b->scale ||
       a->zero_point != b->zero_point)) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                        "input and output quantization must be equal");
  }
  return PICOGPT_OK;
}

/* ---- RESHAPE / SQUEEZE / EXPAND_DIMS: a copy with another shape ---------------- */

typedef struct copy_data {
  uint32_t bytes;
} copy_data;

static picogpt_status eval_copy(pg_interpreter *it, const pg_node *node) {
  const copy_data *d = (const copy_data *)node->data;
  const void *src = pg_in_data(it, node, 0);
  void *dst = pg_out_data(it, node, 0);
  /* The planner never overlaps an op's input and output unless they are the same buffer. */
  if (src != dst) pg_copy(dst, src, d->bytes);
  return PICOGPT_OK;
}

picogpt_status pg_prepare_reshape(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 1, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = same_quantization(ctx, node, in, out)) != PICOGPT_OK) return st;
  if (in->num_elements != out->num_elements) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "element counts differ (%d vs %d)",
                        (int)in->num_elements, (int)out->num_elements);
  }
  copy_data *d = (copy_data *)pg_alloc_persistent(ctx, sizeof(copy_data));
  if (d == NULL) return it->error.status;
  d->bytes = in->bytes;
  node->data = d;
  node->eval = eval_copy;
  return PICOGPT_OK;
}

/* ---- generic strided gather: output[i...] = input[offset + sum idx * stride] ------- */

typedef struct strided_copy {
  int32_t count;            /* output elements */
  uint32_t elem_size;
  int32_t base;             /* input element offset of output element 0 */
  int32_t dims[PG_MAX_RANK];    /* output iteration shape, extended with leading 1s */
  int32_t stride[PG_MAX_RANK];  /* input element stride per iteration dim (may be < 0) */
} strided_copy;

static void run_strided_copy(const strided_copy *d, const uint8_t *in, uint8_t *out) {
  int32_t idx[PG_MAX_RANK] = {0};
  int32_t off = d->base;
  const uint32_t es = d->elem_size;
  /* Innermost dimension as one run (a memcpy when contiguous), odometer over the rest. */
  const int32_t inner = d->dims[PG_MAX_RANK - 1], step = d->stride[PG_MAX_RANK - 1];
  for (int32_t i = 0; i < d->count; i += inner) {
    uint8_t *o = out + (size_t)i * es;
    if (step == 1) {
      pg_copy(o, in + (size_t)off * es, (size_t)inner * es);
    } else if (es == 1) {
      for (int32_t j = 0; j < inner; ++j) o[j] = in[off + j * step];
    } else {
      for (int32_t j = 0; j < inner; ++j) {
        memcpy(o + (size_t)j * es, in + (size_t)(off + j * step) * es, es);
      }
    }
    pg_index_step(idx, d->dims, PG_MAX_RANK - 2, 1, &d->stride, &off);
  }
}

static picogpt_status eval_strided_copy(pg_interpreter *it, const pg_node *node) {
  run_strided_copy((const strided_copy *)node->data, (const uint8_t *)pg_in_data(it, node, 0),
                   (uint8_t *)pg_out_data(it, node, 0));
  return PICOGPT_OK;
}

static void input_strides(const pg_tensor *t, int32_t *strides) {
  int32_t s = 1;
  for (int i = t->rank - 1; i >= 0; --i) {
    strides[i] = s;
    s *= t->dims[i];
  }
}

/* ---- TRANSPOSE ----------------------------------------------------------------------- */

picogpt_status pg_prepare_transpose(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = same_quantization(ctx, node, in, out)) != PICOGPT_OK) return st;
  int32_t perm[PG_MAX_RANK];
  int32_t n;
  st = pg_const_i32(ctx, node, pg_in(it, node, 1), "perm", PG_MAX_RANK, perm, &n);
  if (st != PICOGPT_OK) return st;
  if (n != in->rank || out->rank != in->rank) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "perm has %d entries for rank %d", (int)n,
                        (int)in->rank);
  }
  int seen[PG_MAX_RANK] = {0};
  int32_t in_stride[PG_MAX_RANK];
  input_strides(in, in_stride);
  strided_copy *d = (strided_copy *)pg_alloc_persistent(ctx, sizeof(strided_copy));
  if (d == NULL) return it->error.status;
  for (int i = 0; i < PG_MAX_RANK; ++i) d->dims[i] = 1;
  for (int i = 0; i < n; ++i) {
    if (perm[i] < 0 || perm[i] >= n || seen[perm[i]]) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "perm is not a permutation");
    }
    seen[perm[i]] = 1;
    if (out->dims[i] != in->dims[perm[i]]) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output dim %d should be %d", i,
                          (int)in->dims[perm[i]]);
    }
    d->dims[PG_MAX_RANK - n + i] = out->dims[i];
    d->stride[PG_MAX_RANK - n + i] = in_stride[perm[i]];
  }
  d->count = out->num_elements;
  d->elem_size = pg_type_size(in->type);
  node->data = d;
  node->eval = eval_strided_copy;
  return PICOGPT_OK;
}

/* ---- STRIDED_SLICE ------------------------------------------------------------------------ */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

picogpt_status pg_prepare_strided_slice(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 4, 4, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = same_quantization(ctx, node, in, out)) != PICOGPT_OK) return st;
  int32_t begin[PG_MAX_RANK], end[PG_MAX_RANK], strides[PG_MAX_RANK];
  int32_t nb, ne, ns;
  if ((st = pg_const_i32(ctx, node, pg_in(it, node, 1), "begin", PG_MAX_RANK, begin, &nb)) ||
      (st = pg_const_i32(ctx, node, pg_in(it, node, 2), "end", PG_MAX_RANK, end, &ne)) ||
      (st = pg_const_i32(ctx, node, pg_in(it, node, 3), "strides", PG_MAX_RANK, strides, &ns))) {
    return st;
  }
  if (nb != in->rank || ne != in->rank || ns != in->rank) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "begin/end/strides must have %d entries",
                        (int)in->rank);
  }
  int32_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_mask = 0;
  uint8_t offset = 0;
  if ((st = pg_check_options_type(ctx, node, PG_OPT_STRIDED_SLICE)) != PICOGPT_OK) return st;
  const pg_fb *fb = &ctx->fb;
  if (pg_fb_i32(fb, &ctx->options, 0, 0, &begin_mask) || pg_fb_i32(fb, &ctx->options, 1, 0, &end_mask) ||
      pg_fb_i32(fb, &ctx->options, 2, 0, &ellipsis_mask) ||
      pg_fb_i32(fb, &ctx->options, 3, 0, &new_axis_mask) ||
      pg_fb_i32(fb, &ctx->options, 4, 0, &shrink_mask) || pg_fb_u8(fb, &ctx->options, 5, 0, &offset)) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  if (ellipsis_mask || new_axis_mask || offset) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_OP,
                        "ellipsis/new_axis masks and offset are not supported");
  }
  strided_copy *d = (strided_copy *)pg_alloc_persistent(ctx, sizeof(strided_copy));
  if (d == NULL) return it->error.status;
  int32_t in_stride[PG_MAX_RANK];
  input_strides(in, in_stride);
  for (int i = 0; i < PG_MAX_RANK; ++i) d->dims[i] = 1;
  int64_t base = 0;
  int64_t count = 1;
  int out_axis = 0;
  const int r = in->rank;
  for (int axis = 0; axis < r; ++axis) {
    const int64_t size = in->dims[axis];
    const int64_t stride = strides[axis];
    if (stride == 0) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "stride 0 on axis %d", axis);
    }
    /* StartForAxis / StopForAxis of TFLite's strided_slice_logic.h. */
    int64_t start = begin[axis];
    if (begin_mask & (1 << axis)) start = stride > 0 ? INT32_MIN : INT32_MAX;
    if (start < 0) start += size;
    start = stride > 0 ? clamp64(start, 0, size) : clamp64(start, -1, size - 1);
    int64_t stop;
    const int shrink = (shrink_mask >> axis) & 1;
    if (shrink) {
      stop = start + 1;
    } else {
      stop = end[axis];
      if (end_mask & (1 << axis)) stop = stride > 0 ? INT32_MAX : INT32_MIN;
      if (stop < 0) stop += size;
      stop = stride > 0 ? clamp64(stop, 0, size) : clamp64(stop, -1, size - 1);
    }
    int64_t n = stride > 0 ? (stop - start + stride - 1) / stride : (start - stop - stride - 1) / -stride;
    if (n < 0) n = 0;
    if (shrink && n != 1) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "shrink axis %d selects nothing", axis);
    }
    if (!shrink) {
      if (out_axis >= out->rank || out->dims[out_axis] != n) {
        return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output dim %d should be %d", out_axis,
                            (int)n);
      }
      ++out_axis;
    }
    if (n > 0) base += start * in_stride[axis];
    d->dims[PG_MAX_RANK - r + axis] = (int32_t)n;
    d->stride[PG_MAX_RANK - r + axis] = (int32_t)(stride * in_stride[axis]);
    count *= n;
  }
  if (out_axis != out->rank || count != out->num_elements) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output shape does not match the slice");
  }
  d->base = (int32_t)base;
  d->count = (int32_t)count;
  d->elem_size = pg_type_size(in->type);
  node->data = d;
  node->eval = eval_strided_copy;
  return PICOGPT_OK;
}

/* ---- CONCATENATION ------------------------------------------------------------------------- */

typedef struct concat_data {
  int32_t outer;        /* product of dims before the axis */
  uint32_t out_block;   /* bytes of one outer slice of the output */
  uint32_t in_block[64];    /* bytes of one outer slice per input */
} concat_data;

static picogpt_status eval_concatenation(pg_interpreter *it, const pg_node *node) {
  const concat_data *d = (const concat_data *)node->data;
  uint8_t *out = (uint8_t *)pg_out_data(it, node, 0);
  for (int32_t o = 0; o < d->outer; ++o) {
    for (int32_t i = 0; i < node->num_inputs; ++i) {
      const uint8_t *src = (const uint8_t *)pg_in_data(it, node, i) + (size_t)o * d->in_block[i];
      pg_copy(out, src, d->in_block[i]);
      out += d->in_block[i];
    }
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_concatenation(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 1, 64, 1);
  if (st != PICOGPT_OK) return st;
  for (int i = 0; i < node->num_inputs; ++i) {
    if (node->inputs[i] < 0) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_CORRUPT, "input %d is missing", i);
    }
  }
  const pg_tensor *out = pg_out(it, node, 0);
  int32_t axis = 0;
  int8_t activation = 0;
  if ((st = pg_check_options_type(ctx, node, PG_OPT_CONCATENATION)) != PICOGPT_OK) return st;
  if (pg_fb_i32(&ctx->fb, &ctx->options, 0, 0, &axis) ||
      pg_fb_i8(&ctx->fb, &ctx->options, 1, 0, &activation)) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  if (activation != PG_ACT_NONE) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_OP, "fused activation not supported");
  }
  if (axis < 0) axis += out->rank;
  if (axis < 0 || axis >= out->rank) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "axis out of range");
  }
  concat_data *d = (concat_data *)pg_alloc_persistent(ctx, sizeof(concat_data));
  if (d == NULL) return it->error.status;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= out->dims[i];
  for (int i = axis + 1; i < out->rank; ++i) inner *= out->dims[i];
  const uint32_t es = pg_type_size(out->type);
  int64_t axis_total = 0;
  for (int i = 0; i < node->num_inputs; ++i) {
    const pg_tensor *in = pg_in(it, node, i);
    if ((st = same_quantization(ctx, node, in, out)) != PICOGPT_OK) return st;
    if (in->rank != out->rank) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "input %d rank differs", i);
    }
    for (int k = 0; k < out->rank; ++k) {
      if (k != axis && in->dims[k] != out->dims[k]) {
        return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "input %d dim %d differs", i, k);
      }
    }
    axis_total += in->dims[axis];
    d->in_block[i] = (uint32_t)(in->dims[axis] * inner * es);
  }
  if (axis_total != out->dims[axis]) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "inputs do not add up to the output");
  }
  d->outer = (int32_t)outer;
  d->out_block = (uint32_t)(axis_total * inner * es);
  node->data = d;
  node->eval = eval_concatenation;
  return PICOGPT_OK;
}

/* ---- GATHER ------------------------------------------------------------------------------- */

typedef struct gather_data {
  int32_t outer;       /* product of params dims before axis */
  int32_t axis_size;   /* params dim at axis */
  int32_t num_indices;
  uint32_t inner_bytes; /* bytes of one gathered slice */
} gather_data;

static picogpt_status eval_gather(pg_interpreter *it, const pg_node *node) {
  const gather_data *d = (const gather_data *)node->data;
  const uint8_t *params = (const uint8_t *)pg_in_data(it, node, 0);
  const int32_t *indices = (const int32_t *)pg_in_data(it, node, 1);
  uint8_t *out = (uint8_t *)pg_out_data(it, node, 0);
  for (int32_t i = 0; i < d->num_indices; ++i) {
    if (indices[i] < 0 || indices[i] >= d->axis_size) {
      return pg_fail(it, PICOGPT_ERR_EVAL, "GATHER (op %d): index %d out of range [0, %d)",
                     (int)node->index, (int)indices[i], (int)d->axis_size);
    }
  }
  for (int32_t o = 0; o < d->outer; ++o) {
    const uint8_t *base = params + (size_t)o * d->axis_size * d->inner_bytes;
    for (int32_t i = 0; i < d->num_indices; ++i) {
      pg_copy(out, base + (size_t)indices[i] * d->inner_bytes, d->inner_bytes);
      out += d->inner_bytes;
    }
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_gather(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *params = pg_in(it, node, 0);
  const pg_tensor *indices = pg_in(it, node, 1);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = same_quantization(ctx, node, params, out)) != PICOGPT_OK) return st;
  if (indices->type != PG_INT32) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE, "indices must be INT32");
  }
  int32_t axis = 0, batch_dims = 0;
  if ((st = pg_check_options_type(ctx, node, PG_OPT_GATHER)) != PICOGPT_OK) return st;
  if (pg_fb_i32(&ctx->fb, &ctx->options, 0, 0, &axis) ||
      pg_fb_i32(&ctx->fb, &ctx->options, 1, 0, &batch_dims)) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
  }
  if (batch_dims != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_OP, "batch_dims != 0 not supported");
  }
  if (axis < 0) axis += params->rank;
  if (axis < 0 || axis >= params->rank) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "axis out of range");
  }
  /* Output shape: params[:axis] + indices + params[axis+1:]. */
  int32_t expect[PG_MAX_RANK * 2];
  int n = 0;
  for (int i = 0; i < axis; ++i) expect[n++] = params->dims[i];
  for (int i = 0; i < indices->rank; ++i) expect[n++] = indices->dims[i];
  for (int i = axis + 1; i < params->rank; ++i) expect[n++] = params->dims[i];
  int ok = out->rank == n;
  for (int i = 0; ok && i < n; ++i) ok = out->dims[i] == expect[i];
  if (!ok) return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output shape mismatch");
  gather_data *d = (gather_data *)pg_alloc_persistent(ctx, sizeof(gather_data));
  if (d == NULL) return it->error.status;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= params->dims[i];
  for (int i = axis + 1; i < params->rank; ++i) inner *= params->dims[i];
  d->outer = (int32_t)outer;
  d->axis_size = params->dims[axis];
  d->num_indices = indices->num_elements;
  d->inner_bytes = (uint32_t)(inner * pg_type_size(params->type));
  node->data = d;
  node->eval = eval_gather;
  return PICOGPT_OK;
}
