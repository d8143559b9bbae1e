/* SELECT_V2 (cond ? x : y with broadcasting, used for the causal mask) and
 * LESS (int32/int8 comparison with broadcasting, producing the mask). */
#include <string.h>

#include "kernel_util.h"

typedef struct nary_broadcast {
  int32_t count;                      /* output elements */
  int32_t dims[PG_MAX_RANK];          /* output shape, extended */
  int32_t stride[3][PG_MAX_RANK];     /* per input element strides (0 = broadcast) */
} nary_broadcast;

static picogpt_status setup_nary(pg_prepare_ctx *ctx, const pg_node *node,
                                 const pg_tensor *const *ins, int n, const pg_tensor *out,
                                 nary_broadcast *b) {
  const picogpt_status st = pg_broadcast_tensors(ctx, node, n, ins, out, b->dims, b->stride);
  if (st != PICOGPT_OK) return st;
  b->count = out->num_elements;
  return PICOGPT_OK;
}

/* ---- SELECT_V2 ------------------------------------------------------------------ */

typedef struct select_data {
  nary_broadcast b;
  uint32_t elem_size;
} select_data;

static picogpt_status eval_select(pg_interpreter *it, const pg_node *node) {
  const select_data *d = (const select_data *)node->data;
  const uint8_t *cond = (const uint8_t *)pg_in_data(it, node, 0);
  const uint8_t *x = (const uint8_t *)pg_in_data(it, node, 1);
  const uint8_t *y = (const uint8_t *)pg_in_data(it, node, 2);
  uint8_t *out = (uint8_t *)pg_out_data(it, node, 0);
  int32_t idx[PG_MAX_RANK] = {0}, off[3] = {0, 0, 0};
  const uint32_t es = d->elem_size;
  if (es == 1) {
    /* int8/bool: runs along the innermost dimension, odometer over the outer ones
     * (the causal mask: a [T] condition against [H, 1, T] scores). */
    const int32_t inner = d->b.dims[PG_MAX_RANK - 1];
    const int32_t sc = d->b.stride[0][PG_MAX_RANK - 1], sx = d->b.stride[1][PG_MAX_RANK - 1],
                  sy = d->b.stride[2][PG_MAX_RANK - 1];
    for (int32_t i = 0; i < d->b.count; i += inner) {
      const uint8_t *c = cond + off[0], *xs = x + off[1], *ys = y + off[2];
      if (sc == 1 && sx == 1 && sy == 0) { /* the mask's case: fixed strides vectorize */
        const uint8_t y0 = ys[0];
        int32_t j = 0;
        if ((((uintptr_t)c | (uintptr_t)xs | (uintptr_t)(out + i)) & 3u) == 0) {
          /* Four at a time: 0xFF in each byte whose condition is non-zero. */
          const uint32_t y4 = 0x01010101u * y0;
          for (; j + 4 <= inner; j += 4) {
            const uint32_t cw = *(const pg_word *)(const void *)(c + j);
            const uint32_t m = (((cw | ((cw & 0x7F7F7F7Fu) + 0x7F7F7F7Fu)) & 0x80808080u) >> 7) * 0xFFu;
            const uint32_t xv = *(const pg_word *)(const void *)(xs + j);
            *(pg_word *)(void *)(out + i + j) = y4 ^ ((xv ^ y4) & m);
          }
        }
        for (; j < inner; ++j) out[i + j] = c[j] ? xs[j] : y0;
      } else {
        for (int32_t j = 0; j < inner; ++j) out[i + j] = c[j * sc] ? xs[j * sx] : ys[j * sy];
      }
      pg_index_step(idx, d->b.dims, PG_MAX_RANK - 2, 3, d->b.stride, off);
    }
    return PICOGPT_OK;
  }
  for (int32_t i = 0; i < d->b.count; ++i) {
    const uint8_t *src = cond[off[0]] ? x + (size_t)off[1] * es : y + (size_t)off[2] * es;
    memcpy(out + (size_t)i * es, src, es);
    pg_index_step(idx, d->b.dims, PG_MAX_RANK - 1, 3, d->b.stride, off);
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_select(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 3, 3, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *ins[3] = {pg_in(it, node, 0), pg_in(it, node, 1), pg_in(it, node, 2)};
  const pg_tensor *out = pg_out(it, node, 0);
  if (ins[0]->type != PG_BOOL) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE, "condition must be BOOL");
  }
  for (int k = 1; k < 3; ++k) {
    if (ins[k]->type != out->type) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE, "x/y/output types differ");
    }
    if (out->type == PG_INT8 &&
        (ins[k]->scale != out->scale || ins[k]->zero_point != out->zero_point)) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                          "x, y and output must share scale and zero point");
    }
  }
  select_data *d = (select_data *)pg_alloc_persistent(ctx, sizeof(select_data));
  if (d == NULL) return it->error.status;
  if (node->opcode == PG_OP_SELECT) {
    /* SELECT (v1) needs equal shapes, or a rank-1 condition over dim 0. */
    if (!pg_same_shape(ins[1], ins[2]) || !pg_same_shape(ins[1], out) ||
        !pg_same_shape(ins[0], out)) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "SELECT needs equal shapes");
    }
  }
  if ((st = setup_nary(ctx, node, ins, 3, out, &d->b)) != PICOGPT_OK) return st;
  d->elem_size = pg_type_size(out->type);
  node->data = d;
  node->eval = eval_select;
  return PICOGPT_OK;
}

/* ---- LESS / LESS_EQUAL ----------------------------------------------------------------- */

typedef struct compare_data {
  nary_broadcast b;
  int32_t type;
  int32_t or_equal;
} compare_data;

static picogpt_status eval_compare(pg_interpreter *it, const pg_node *node) {
  const compare_data *d = (const compare_data *)node->data;
  const void *a = pg_in_data(it, node, 0);
  const void *c = pg_in_data(it, node, 1);
  uint8_t *out = (uint8_t *)pg_out_data(it, node, 0);
  int32_t idx[PG_MAX_RANK] = {0}, off[2] = {0, 0};
  if (d->type == PG_INT32) {
    /* The causal mask's LESS(range, pos): runs along the innermost dimension. */
    const int32_t inner = d->b.dims[PG_MAX_RANK - 1];
    const int32_t sa = d->b.stride[0][PG_MAX_RANK - 1], sc = d->b.stride[1][PG_MAX_RANK - 1];
    const int or_equal = d->or_equal; /* a local: out may alias d */
    for (int32_t i = 0; i < d->b.count; i += inner) {
      const int32_t *x = (const int32_t *)a + off[0], *y = (const int32_t *)c + off[1];
      if (sa == 1 && sc == 0) { /* a range against the position: fixed strides vectorize */
        const int32_t y0 = y[0];
        if (or_equal) {
          for (int32_t j = 0; j < inner; ++j) out[i + j] = (uint8_t)(x[j] <= y0);
        } else {
          for (int32_t j = 0; j < inner; ++j) out[i + j] = (uint8_t)(x[j] < y0);
        }
      } else {
        for (int32_t j = 0; j < inner; ++j, x += sa, y += sc) {
          out[i + j] = (uint8_t)(*x < *y || (or_equal && *x == *y));
        }
      }
      pg_index_step(idx, d->b.dims, PG_MAX_RANK - 2, 2, d->b.stride, off);
    }
    return PICOGPT_OK;
  }
  for (int32_t i = 0; i < d->b.count; ++i) {
    int less, equal;
    if (d->type == PG_INT8) {
      const int8_t x = ((const int8_t *)a)[off[0]], y = ((const int8_t *)c)[off[1]];
      less = x < y;
      equal = x == y;
    } else {
      const float x = ((const float *)a)[off[0]], y = ((const float *)c)[off[1]];
      less = x < y;
      equal = x == y;
    }
    out[i] = (uint8_t)(less || (d->or_equal && equal));
    pg_index_step(idx, d->b.dims, PG_MAX_RANK - 1, 2, d->b.stride, off);
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_compare(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *ins[2] = {pg_in(it, node, 0), pg_in(it, node, 1)};
  const pg_tensor *out = pg_out(it, node, 0);
  if (out->type != PG_BOOL || ins[0]->type != ins[1]->type || ins[0]->type == PG_BOOL) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE,
                        "inputs must share a numeric type and the output must be BOOL");
  }
  if (ins[0]->type == PG_INT8 &&
      (ins[0]->scale != ins[1]->scale || ins[0]->zero_point != ins[1]->zero_point)) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                        "int8 comparison needs equal quantization");
  }
  compare_data *d = (compare_data *)pg_alloc_persistent(ctx, sizeof(compare_data));
  if (d == NULL) return it->error.status;
  if ((st = setup_nary(ctx, node, ins, 2, out, &d->b)) != PICOGPT_OK) return st;
  d->type = ins[0]->type;
  d->or_equal = node->opcode == PG_OP_LESS_EQUAL;
  node->data = d;
  node->eval = eval_compare;
  return PICOGPT_OK;
}
