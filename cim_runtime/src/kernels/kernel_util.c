/* Helpers shared by the kernels (see kernel_util.h). */
#include "kernel_util.h"

#include <stdarg.h>
#include <string.h>

/* ---- tensors ----------------------------------------------------------------------- */

void pg_copy(void *dst, const void *src, size_t bytes) {
#if PG_SIMD_DISPATCH /* an x86-64 host: its C library copies with vector moves */
  memcpy(dst, src, bytes);
#else
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0) {
    for (; bytes >= 4; bytes -= 4, d += 4, s += 4) *(pg_word *)(void *)d = *(const pg_word *)(const void *)s;
  }
  for (; bytes > 0; --bytes) *d++ = *s++;
#endif
}

void pg_fill(void *dst, int32_t byte, size_t bytes) {
#if PG_SIMD_DISPATCH
  memset(dst, byte, bytes);
#else
  uint8_t *d = (uint8_t *)dst;
  const uint8_t b = (uint8_t)byte;
  for (; bytes > 0 && ((uintptr_t)d & 3u) != 0; --bytes) *d++ = b;
  const pg_word word = 0x01010101u * b;
  for (; bytes >= 4; bytes -= 4, d += 4) *(pg_word *)(void *)d = word;
  for (; bytes > 0; --bytes) *d++ = b;
#endif
}

int pg_same_shape(const pg_tensor *a, const pg_tensor *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; ++i) {
    if (a->dims[i] != b->dims[i]) return 0;
  }
  return 1;
}

/* ---- prepare-time checks ----------------------------------------------------------- */

picogpt_status pg_node_fail_details(pg_prepare_ctx *ctx, const pg_node *node,
                                    picogpt_status status, const char *fmt, ...) {
  char detail[PG_ERROR_MESSAGE_SIZE];
  va_list ap;
  va_start(ap, fmt);
  pg_vformat(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return pg_fail(ctx->it, status, "%s (op %d): %s", pg_op_name(node->opcode), (int)node->index,
                 detail);
}

picogpt_status pg_check_io(pg_prepare_ctx *ctx, const pg_node *node, int min_inputs,
                           int max_inputs, int num_outputs) {
  if (node->num_inputs < min_inputs || node->num_inputs > max_inputs) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_CORRUPT, "expects %d..%d inputs, has %d",
                        min_inputs, max_inputs, (int)node->num_inputs);
  }
  for (int i = 0; i < min_inputs; ++i) {
    if (node->inputs[i] < 0) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_CORRUPT, "input %d is missing", i);
    }
  }
  if (node->num_outputs != num_outputs) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_CORRUPT, "expects %d outputs, has %d",
                        num_outputs, (int)node->num_outputs);
  }
  return PICOGPT_OK;
}

picogpt_status pg_check_options_type(pg_prepare_ctx *ctx, const pg_node *node, int expected) {
  if (ctx->options_type != expected && ctx->options_type != 0) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_CORRUPT, "wrong options type %d",
                        (int)ctx->options_type);
  }
  return PICOGPT_OK;
}

picogpt_status pg_check_int8_quant(pg_prepare_ctx *ctx, const pg_node *node,
                                   const pg_tensor *t, const char *what) {
  if (t->type != PG_INT8) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE, "%s is %s, expected INT8", what,
                        pg_type_name(t->type));
  }
  if (!t->has_quantization) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "%s has no quantization", what);
  }
  if (t->zero_point < -128 || t->zero_point > 127) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "%s zero point %d out of int8 range",
                        what, (int)t->zero_point);
  }
  return PICOGPT_OK;
}

picogpt_status pg_activation_range_int8(pg_prepare_ctx *ctx, const pg_node *node,
                                        int activation, const pg_tensor *output,
                                        int32_t *act_min, int32_t *act_max) {
  /* CalculateActivationRangeQuantized: q(x) = zero_point + round(x / scale). */
  const int32_t zp = output->zero_point;
  const float scale = output->scale;
  *act_min = -128;
  *act_max = 127;
  switch (activation) {
    case PG_ACT_NONE:
      return PICOGPT_OK;
    case PG_ACT_RELU:
      if (zp > *act_min) *act_min = zp;
      return PICOGPT_OK;
    case PG_ACT_RELU6: {
      const int32_t q6 = zp + (int32_t)pg_roundf(6.0f / scale);
      if (zp > *act_min) *act_min = zp;
      if (q6 < *act_max) *act_max = q6;
      return PICOGPT_OK;
    }
    case PG_ACT_RELU_N1_TO_1: {
      const int32_t qm1 = zp + (int32_t)pg_roundf(-1.0f / scale);
      const int32_t q1 = zp + (int32_t)pg_roundf(1.0f / scale);
      if (qm1 > *act_min) *act_min = qm1;
      if (q1 < *act_max) *act_max = q1;
      return PICOGPT_OK;
    }
    default:
      return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_OP,
                          "fused activation %d not supported", activation);
  }
}

picogpt_status pg_const_i32(pg_prepare_ctx *ctx, const pg_node *node,
                            const pg_tensor *t, const char *what, int32_t max_count,
                            int32_t *values, int32_t *count) {
  if (!t->is_constant || t->type != PG_INT32) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_OP, "%s must be a constant INT32 tensor",
                        what);
  }
  if (t->num_elements > max_count) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "%s has %d values, at most %d supported",
                        what, (int)t->num_elements, (int)max_count);
  }
  memcpy(values, t->data, (size_t)t->num_elements * 4u);
  *count = t->num_elements;
  return PICOGPT_OK;
}

/* ---- broadcasting ------------------------------------------------------------------ */

/* Dimension i of a shape of the given rank, extended to ext_rank with leading 1s. */
static int32_t extended_dim(const int32_t *dims, int32_t rank, int ext_rank, int i) {
  const int src = i - (ext_rank - rank);
  return src >= 0 ? dims[src] : 1;
}

picogpt_status pg_broadcast_shapes(pg_prepare_ctx *ctx, const pg_node *node, int n,
                                   const int32_t *const dims[], const int32_t ranks[],
                                   int ext_rank, const char *what, int32_t *out_dims,
                                   int32_t *strides) {
  for (int i = 0; i < ext_rank; ++i) {
    out_dims[i] = 1;
    for (int k = 0; k < n; ++k) {
      const int32_t d = extended_dim(dims[k], ranks[k], ext_rank, i);
      if (d == 1) continue;
      if (out_dims[i] != 1 && out_dims[i] != d) {
        return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "%s do not broadcast", what);
      }
      out_dims[i] = d;
    }
  }
  for (int k = 0; k < n; ++k) {
    int32_t s = 1;
    for (int i = ext_rank - 1; i >= 0; --i) {
      const int32_t d = extended_dim(dims[k], ranks[k], ext_rank, i);
      strides[k * ext_rank + i] = d == 1 ? 0 : s;
      s *= d;
    }
  }
  return PICOGPT_OK;
}

picogpt_status pg_broadcast_tensors(pg_prepare_ctx *ctx, const pg_node *node, int n,
                                    const pg_tensor *const ins[], const pg_tensor *out,
                                    int32_t out_dims[PG_MAX_RANK],
                                    int32_t (*strides)[PG_MAX_RANK]) {
  enum { MAX_OPERANDS = 3 }; /* SELECT's condition, x and y */
  const int32_t *dims[MAX_OPERANDS];
  int32_t ranks[MAX_OPERANDS];
  int32_t out_rank = 0;
  for (int k = 0; k < n && k < MAX_OPERANDS; ++k) {
    dims[k] = ins[k]->dims;
    ranks[k] = ins[k]->rank;
    if (ranks[k] > out_rank) out_rank = ranks[k];
  }
  const picogpt_status st = pg_broadcast_shapes(ctx, node, n < MAX_OPERANDS ? n : MAX_OPERANDS,
                                                dims, ranks, PG_MAX_RANK, "input shapes",
                                                out_dims, &strides[0][0]);
  if (st != PICOGPT_OK) return st;
  if (out->rank != out_rank) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output rank %d, expected %d",
                        (int)out->rank, (int)out_rank);
  }
  for (int i = 0; i < out_rank; ++i) {
    if (out->dims[i] != out_dims[i + PG_MAX_RANK - out_rank]) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "output shape is not the broadcast shape");
    }
  }
  return PICOGPT_OK;
}
