/* Internal: the contract between the interpreter and the op kernels.
 *
 * TFLite Micro's split: prepare() runs once at init, validates types, shapes
 * and quantization, derives multipliers and stores them in per-op data in the
 * arena's persistent part; eval() runs every invoke with no checks it can
 * avoid, no allocation and no I/O. The registry (registry.c) maps op codes to
 * prepare functions; the helpers kernels share are in kernel_util.h.
 */
#ifndef PG_KERNELS_H
#define PG_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../arena.h"
#include "../flatbuffer.h"
#include "../interpreter.h"
#include "../quant.h" /* PG_COLD */

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
  PG_OP_LESS = 58,
  PG_OP_SELECT = 64,
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
  PG_OPT_MUL = 21,
  PG_OPT_GATHER = 23,
  PG_OPT_REDUCER = 27,
  PG_OPT_SUB = 28,
  PG_OPT_STRIDED_SLICE = 32,
  PG_OPT_BATCH_MATMUL = 101,
};

/* TFLite fused activations. */
enum { PG_ACT_NONE = 0, PG_ACT_RELU = 1, PG_ACT_RELU_N1_TO_1 = 2, PG_ACT_RELU6 = 3 };

typedef struct pg_node pg_node;
typedef picogpt_status (*pg_eval_fn)(pg_interpreter *it, const pg_node *node);

/* One operator of the graph, in execution order (persistent: what eval needs). */
struct pg_node {
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
  uint8_t type;            /* BuiltinOptions union type (0: none) */
} pg_node_options;

/* Prepare-time context: the interpreter, its model reader and the arena. */
typedef struct pg_prepare_ctx {
  pg_interpreter *it;
  pg_fb fb;
  pg_arena arena;
  size_t scratch_request;        /* largest per-op scratch need, shared by all ops */
  pg_node_options *node_options; /* [num_nodes], init-only */
  pg_fb_table options;           /* of the node being prepared */
  uint8_t options_type;
} pg_prepare_ctx;

typedef picogpt_status (*pg_prepare_fn)(pg_prepare_ctx *ctx, pg_node *node);

typedef struct pg_kernel {
  int32_t opcode;
  const char *name;
  pg_prepare_fn prepare;
} pg_kernel;

/* ---- the registry (registry.c) ------------------------------------------------------ */
/* Lookup in the table of supported ops; NULL if unsupported. */
const pg_kernel *pg_find_kernel(int32_t opcode);
/* The op's schema name; "unknown op" for codes this runtime has no name for. */
const char *pg_op_name(int32_t opcode);

/* ---- prepare functions per op (the kernels directory) ------------------------------- */
/* Prepare runs once, at init: PG_COLD (quant.h). */
PG_COLD picogpt_status pg_prepare_fully_connected(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_batch_matmul(pg_prepare_ctx *ctx, pg_node *node);
/* Binds a prepared BATCH_MATMUL (adj_y) whose right operand is a KV cache to the live
 * positions (it->live_positions): the cache positions are its rhs rows (K cache
 * [.., block_size, D]: positions_in_rows 1) or its rhs columns (V cache [.., D, block_size]).
 * The caller guarantees that positions >= live hold the cache's zero point. Returns 1 if
 * bound, 0 if the node is not such a product (it then reads the whole cache). */
int pg_batch_matmul_bind_cache(pg_node *node, int positions_in_rows, int32_t block_size);
PG_COLD picogpt_status pg_prepare_binary(pg_prepare_ctx *ctx, pg_node *node); /* ADD SUB MUL SQDIFF */
PG_COLD picogpt_status pg_prepare_rsqrt(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_quantize(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_dequantize(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_softmax(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_mean(pg_prepare_ctx *ctx, pg_node *node);
/* After every op's prepare, before planning: runs each SELECT_V2 -> CONCATENATION -> SOFTMAX
 * chain of attention's masked scores as one op (kernels/softmax_mean.c), which leaves the
 * graph two ops shorter; *fused counts them (the caller then recomputes the lifetimes).
 * Builds with PICOGPT_FUSE_MASKED_SOFTMAX=0 (the firmware, for flash) keep the three ops. */
#ifndef PICOGPT_FUSE_MASKED_SOFTMAX
#define PICOGPT_FUSE_MASKED_SOFTMAX 1
#endif
#if PICOGPT_FUSE_MASKED_SOFTMAX
PG_COLD picogpt_status pg_fuse_masked_softmax(pg_prepare_ctx *ctx, int *fused);
#endif
PG_COLD picogpt_status pg_prepare_reshape(pg_prepare_ctx *ctx, pg_node *node); /* + SQUEEZE, EXPAND_DIMS */
PG_COLD picogpt_status pg_prepare_transpose(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_strided_slice(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_concatenation(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_gather(pg_prepare_ctx *ctx, pg_node *node);
PG_COLD picogpt_status pg_prepare_select(pg_prepare_ctx *ctx, pg_node *node); /* SELECT, SELECT_V2 */
PG_COLD picogpt_status pg_prepare_compare(pg_prepare_ctx *ctx, pg_node *node); /* LESS, LESS_EQUAL */

#endif /* PG_KERNELS_H */
