/* Internal: helpers every kernel uses (TFLite Micro's kernel_util): tensor
 * access, the checks prepare repeats, numpy-style broadcasting and the index
 * stepping under every strided loop. */
#ifndef PG_KERNEL_UTIL_H
#define PG_KERNEL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../quant.h"
#include "kernels.h"

/* ---- tensors ----------------------------------------------------------------------- */

/* Tensor records exist during init only (prepare); eval reads data pointers. */
static inline void *pg_in_data(const pg_interpreter *it, const pg_node *n, int i) {
  return it->tensor_data[n->inputs[i]];
}
static inline void *pg_out_data(const pg_interpreter *it, const pg_node *n, int i) {
  return it->tensor_data[n->outputs[i]];
}
static inline pg_tensor *pg_in(pg_interpreter *it, const pg_node *n, int i) {
  return (i < n->num_inputs && n->inputs[i] >= 0) ? &it->tensors[n->inputs[i]] : NULL;
}
static inline pg_tensor *pg_out(pg_interpreter *it, const pg_node *n, int i) {
  return &it->tensors[n->outputs[i]];
}
int pg_same_shape(const pg_tensor *a, const pg_tensor *b);

/* ---- data movement in eval ---------------------------------------------------------- */

/* memcpy / memset for the step loop: a word at a time when the addresses allow it. The
 * bare-metal C library's versions are built for size and move one byte per ~6 instructions;
 * these take ~1.5 (the buffers must not overlap). */
typedef uint32_t __attribute__((__may_alias__)) pg_word; /* a word that may alias bytes */
void pg_copy(void *dst, const void *src, size_t bytes);
void pg_fill(void *dst, int32_t byte, size_t bytes);

/* ---- prepare-time memory ----------------------------------------------------------- */

/* Persistent, 16-byte aligned, zeroed; NULL (with the error set) if full. */
static inline void *pg_alloc_persistent(pg_prepare_ctx *ctx, size_t bytes) {
  return pg_arena_persistent(&ctx->arena, bytes);
}
/* Kernels that need temporary memory during eval call this at prepare; eval
 * then uses it->scratch (valid for the duration of one eval only). */
static inline void pg_request_scratch(pg_prepare_ctx *ctx, size_t bytes) {
  if (bytes > ctx->scratch_request) ctx->scratch_request = bytes;
}

/* ---- prepare-time checks (each failure names the op: "<OP> (op N): <message>") ------ */

picogpt_status pg_node_fail_details(pg_prepare_ctx *ctx, const pg_node *node,
                                    picogpt_status status, const char *fmt, ...);
#ifdef PICOGPT_TERSE_ERRORS /* see error.h */
#define pg_node_fail(ctx, node, status, ...)                                          \
  (PG_KEEPS_DETAILS(status)                                                           \
       ? pg_node_fail_details((ctx), (node), (status), __VA_ARGS__)                   \
       : (PG_DROP_DETAILS((node), __VA_ARGS__), pg_set_status(&(ctx)->it->error, (status))))
#else
#define pg_node_fail(ctx, node, status, ...) \
  pg_node_fail_details((ctx), (node), (status), __VA_ARGS__)
#endif

/* Counts of inputs and outputs; inputs below min_inputs must be present. */
picogpt_status pg_check_io(pg_prepare_ctx *ctx, const pg_node *node, int min_inputs,
                           int max_inputs, int num_outputs);
/* The node's builtin options must be absent or of the expected union type. */
picogpt_status pg_check_options_type(pg_prepare_ctx *ctx, const pg_node *node, int expected);
/* Tensor must be int8 with per-tensor quantization (scale > 0, finite). */
picogpt_status pg_check_int8_quant(pg_prepare_ctx *ctx, const pg_node *node, const pg_tensor *t,
                                   const char *what);
/* Activation range like CalculateActivationRangeQuantized for int8. */
picogpt_status pg_activation_range_int8(pg_prepare_ctx *ctx, const pg_node *node, int activation,
                                        const pg_tensor *output, int32_t *act_min,
                                        int32_t *act_max);
/* Reads the values of a constant INT32 tensor (at most max_count). */
picogpt_status pg_const_i32(pg_prepare_ctx *ctx, const pg_node *node, const pg_tensor *t,
                            const char *what, int32_t max_count, int32_t *values, int32_t *count);

/* ---- broadcasting ------------------------------------------------------------------ */

/* Numpy-style broadcast of n operand shapes (dims[k], ranks[k] <= ext_rank), each
 * extended to ext_rank dimensions with leading 1s: out_dims[ext_rank] gets the broadcast
 * shape, strides[k * ext_rank + i] operand k's element stride along dimension i (0 where
 * the operand is broadcast). Fails with PICOGPT_ERR_SHAPE "<what> do not broadcast". */
picogpt_status pg_broadcast_shapes(pg_prepare_ctx *ctx, const pg_node *node, int n,
                                   const int32_t *const dims[], const int32_t ranks[],
                                   int ext_rank, const char *what, int32_t *out_dims,
                                   int32_t *strides);
/* The same for n input tensors (ranks <= PG_MAX_RANK) and checks that the output
 * tensor has the broadcast shape. strides is [n][PG_MAX_RANK]. */
picogpt_status pg_broadcast_tensors(pg_prepare_ctx *ctx, const pg_node *node, int n,
                                    const pg_tensor *const ins[], const pg_tensor *out,
                                    int32_t out_dims[PG_MAX_RANK],
                                    int32_t (*strides)[PG_MAX_RANK]);

/* ---- index stepping ---------------------------------------------------------------- */

/* One step of the odometer under every strided loop: advances the multi-index idx over
 * dims[0..last] (dims[last] fastest) and moves each of the n element offsets off[k] by its
 * operand's strides stride[k][dim]. Loops that run the innermost dimension themselves pass
 * last = PG_MAX_RANK - 2. */
static inline void pg_index_step(int32_t *idx, const int32_t *dims, int last, int n,
                                 const int32_t (*stride)[PG_MAX_RANK], int32_t *off) {
  for (int dim = last; dim >= 0; --dim) {
    for (int k = 0; k < n; ++k) off[k] += stride[k][dim];
    if (++idx[dim] < dims[dim]) return;
    for (int k = 0; k < n; ++k) off[k] -= stride[k][dim] * dims[dim];
    idx[dim] = 0;
  }
}

#endif /* PG_KERNEL_UTIL_H */
