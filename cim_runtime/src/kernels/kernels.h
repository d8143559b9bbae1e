/* Internal interface between the interpreter and the op kernels.
 *
 * TFLite Micro's split: prepare() runs once at init, validates types, shapes
 * and quantization, derives multipliers and stores them in per-op data in the
 * arena's persistent part; eval() runs every invoke with no checks it can
 * avoid, no allocation and no I/O.
 */
#ifndef PG_KERNELS_H
#define PG_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../flatbuffer.h"
#include "../quant.h"
#include "pico_gpt/runtime.h"

/* TFLite BuiltinOperator codes (schema.fbs) of the ops this runtime knows. */
enum {
  PG_OP_ADD = 0,
  PG_OP_CONCATENATION = 2,
  PG_OP_DEQUANTIZE = 6,
  PG_OP_FULLY_CONNECTED = 9,
  PG_OP_MUL = 18,
  PG_OP_RESHAPE = 22,
  PG_OP_SOFTMAX = 25,
  PG_OP_GATHER = 36,
  PG_OP_TRANSPOSE = 39,
  PG_OP_MEAN = 40,
  PG_OP_SUB = 41,
  PG_OP_SQUEEZE = 43,
  PG_OP_STRIDED_SLICE = 45,
  PG_OP_CAST = 53,
  PG_OP_LESS = 58,
  PG_OP_SELECT = 64,
  PG_OP_SLICE = 65,
  PG_OP_EXPAND_DIMS = 70,
  PG_OP_LESS_EQUAL = 63,
  PG_OP_RSQRT = 76,
  PG_OP_SQUARED_DIFFERENCE = 99,
  PG_OP_QUANTIZE = 114,
  PG_OP_SELECT_V2 = 123,
  PG_OP_BATCH_MATMUL = 126,
};

/* BuiltinOptions union member ids (schema.fbs). */
enum {
  PG_OPT_FULLY_CONNECTED = 8,
  PG_OPT_SOFTMAX = 9,
  PG_OPT_CONCATENATION = 10,
  PG_OPT_ADD = 11,
  PG_OPT_RESHAPE = 17,
  PG_OPT_MUL = 21,
  PG_OPT_GATHER = 23,
  PG_OPT_TRANSPOSE = 26,
  PG_OPT_REDUCER = 27,
  PG_OPT_SUB = 28,
  PG_OPT_STRIDED_SLICE = 32,
  PG_OPT_BATCH_MATMUL = 101,
};

/* TFLite fused activations. */
enum { PG_ACT_NONE = 0, PG_ACT_RELU = 1, PG_ACT_RELU_N1_TO_1 = 2, PG_ACT_RELU6 = 3 };

typedef struct picogpt_node picogpt_node;
typedef picogpt_status (*pg_eval_fn)(picogpt_interpreter *it, const picogpt_node *node);

/* One operator of the graph, in execution order (persistent: what eval needs). */
struct picogpt_node {
  pg_eval_fn eval;         /* set by prepare */
  void *data;              /* per-op data from prepare, in the arena */
  const int32_t *inputs;   /* [num_inputs] tensor indices, -1 = optional absent; in the
                              model bytes (little-endian int32, validated at init) */
  const int32_t *outputs;  /* [num_outputs] tensor indices */
  int16_t num_inputs;      /* <= PG_MAX_NODE_IO */
  int16_t num_outputs;
  int16_t opcode;          /* BuiltinOperator (< 256 for the supported ones) */
  int16_t index;           /* position in the subgraph, for messages (< PG_MAX_NODES) */
};

/* Builtin options of one node, needed by prepare only (init-only memory). */
typedef struct pg_node_options {
  pg_fb_table table;       /* builtin options table (pos 0: none) */
  uint8_t type;            /* BuiltinOptions union type */
} pg_node_options;

/* Prepare-time context: the interpreter, its model reader and the
 * persistent allocator (the arena's tail, growing down). */
typedef struct pg_prepare_ctx {
  picogpt_interpreter *it;
  pg_fb fb;
  uint8_t *temp;        /* init-only records (the tensor table) from the arena's start */
  size_t temp_bytes;    /* their size; later reused by graph inputs and activations */
  size_t skip;          /* bytes skipped to align the arena's start */
  uint8_t *tail;        /* lowest persistent byte so far */
  uint8_t *tail_limit;  /* tail may not go below this */
  size_t tail_needed;   /* bytes the tail would need (keeps counting on failure) */
  size_t scratch_request; /* largest per-op scratch need, shared by all ops */
  pg_node_options *node_options; /* [num_nodes], init-only */
  pg_fb_table options;  /* of the node being prepared */
  uint8_t options_type;
} pg_prepare_ctx;

/* Kernels that need temporary memory during eval call this at prepare; eval
 * then uses it->scratch (valid for the duration of one eval only). */
static inline void pg_request_scratch(pg_prepare_ctx *ctx, size_t bytes) {
  if (bytes > ctx->scratch_request) ctx->scratch_request = bytes;
}

typedef picogpt_status (*pg_prepare_fn)(pg_prepare_ctx *ctx, picogpt_node *node);

typedef struct pg_kernel {
  int32_t opcode;
  const char *name;
  pg_prepare_fn prepare;
} pg_kernel;

/* Lookup in the table of supported ops; NULL if unsupported. */
const pg_kernel *pg_find_kernel(int32_t opcode);
const char *pg_op_name(int32_t opcode); /* "op#N" style for unknown ones */

/* ---- helpers shared by kernels (interpreter.c) ---------------------------- */
/* Persistent, 16-byte aligned, zeroed; NULL (with the error set) if full. */
void *pg_alloc_persistent(pg_prepare_ctx *ctx, size_t bytes);
picogpt_status pg_fail(picogpt_interpreter *it, picogpt_status status, const char *fmt, ...);
/* Error about a node: "<OP> (op N): <message>". */
picogpt_status pg_node_fail(pg_prepare_ctx *ctx, const picogpt_node *node,
                            picogpt_status status, const char *fmt, ...);

/* Tensor records exist during init only (prepare); eval reads data pointers. */
static inline void *pg_in_data(const picogpt_interpreter *it, const picogpt_node *n, int i) {
  return it->tensor_data[n->inputs[i]];
}
static inline void *pg_out_data(const picogpt_interpreter *it, const picogpt_node *n, int i) {
  return it->tensor_data[n->outputs[i]];
}
static inline picogpt_tensor *pg_in(picogpt_interpreter *it, const picogpt_node *n, int i) {
  return (i < n->num_inputs && n->inputs[i] >= 0) ? &it->tensors[n->inputs[i]] : NULL;
}
static inline picogpt_tensor *pg_out(picogpt_interpreter *it, const picogpt_node *n, int i) {
  return &it->tensors[n->outputs[i]];
}

/* Checks: counts of inputs/outputs, non-NULL tensors. */
picogpt_status pg_check_io(pg_prepare_ctx *ctx, const picogpt_node *node, int min_inputs,
                           int max_inputs, int num_outputs);
/* Tensor must be int8 with per-tensor quantization (scale > 0, finite). */
picogpt_status pg_check_int8_quant(pg_prepare_ctx *ctx, const picogpt_node *node,
                                   const picogpt_tensor *t, const char *what);
int pg_same_shape(const picogpt_tensor *a, const picogpt_tensor *b);
/* Activation range like CalculateActivationRangeQuantized for int8. */
picogpt_status pg_activation_range_int8(pg_prepare_ctx *ctx, const picogpt_node *node,
                                        int activation, const picogpt_tensor *output,
                                        int32_t *act_min, int32_t *act_max);
/* Reads constant int32 values of a tensor (must be constant). */
picogpt_status pg_const_i32(pg_prepare_ctx *ctx, const picogpt_node *node,
                            const picogpt_tensor *t, const char *what, int32_t max_count,
                            int32_t *values, int32_t *count);
/* Element size in bytes of a picogpt_type (0: unsupported). */
uint32_t pg_type_size(int type);
const char *pg_type_name(int type);

/* ---- prepare functions per op (the kernels directory) -------------------------------- */
picogpt_status pg_prepare_fully_connected(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_batch_matmul(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_binary(pg_prepare_ctx *ctx, picogpt_node *node); /* ADD SUB MUL SQDIFF */
picogpt_status pg_prepare_rsqrt(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_quantize(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_dequantize(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_softmax(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_mean(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_reshape(pg_prepare_ctx *ctx, picogpt_node *node); /* + SQUEEZE, EXPAND_DIMS */
picogpt_status pg_prepare_transpose(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_strided_slice(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_concatenation(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_gather(pg_prepare_ctx *ctx, picogpt_node *node);
picogpt_status pg_prepare_select(pg_prepare_ctx *ctx, picogpt_node *node); /* SELECT, SELECT_V2 */
picogpt_status pg_prepare_compare(pg_prepare_ctx *ctx, picogpt_node *node); /* LESS, LESS_EQUAL */

#endif /* PG_KERNELS_H */
