/* Internal: the generic interpreter under the token API. It runs any model
 * built from the supported ops; the token API (runtime.c) and the tests use it
 * directly, applications use include/pico_gpt/runtime.h.
 *
 * Init runs in stages, one file each:
 *   model_reader.c  flatbuffer -> tensor table and node table, validated
 *   planner.c       dataflow checks, tensor lifetimes, greedy arena placement
 *   kernels/        prepare per op (the registry maps op codes to kernels)
 *   interpreter.c   init (the stages in order, arena bookkeeping), invoke
 * Arena layout (16-byte aligned):
 *   [ planned: graph inputs + activations ..... free ..... persistent ]
 *   head                                            tail, grows down
 * Planned: graph inputs live for the whole graph (never reused, so the caller
 * may write them once; a KV cache passed as an input is updated in place) and
 * activations share memory by lifetime. Persistent: node table, per-op data,
 * data pointers, records of the graph I/O, variables, kernel scratch.
 * During init the full tensor table sits at the arena's start: nothing is
 * planned there yet, and the graph inputs (the 96 KB KV cache) take that space
 * afterwards, so the table costs no RAM at run time. */
#ifndef PG_INTERPRETER_H
#define PG_INTERPRETER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pico_gpt/runtime.h" /* picogpt_options, picogpt_cim_mapping */

/* Element types (values are the TFLite schema's TensorType). */
typedef enum pg_type {
  PG_FLOAT32 = 0,
  PG_INT32 = 2,
  PG_BOOL = 6,
  PG_INT8 = 9,
} pg_type;

#define PG_MAX_RANK 6
#define PG_ALIGN 16u /* arena alignment and allocation granule */

static inline size_t pg_align_up(size_t v) {
  return (v + (PG_ALIGN - 1)) & ~(size_t)(PG_ALIGN - 1);
}

/* One tensor of the graph. data points into the model (constants), into the
 * arena (activations and graph inputs, planned) or into the arena's persistent
 * part (variables). Shapes are static: fixed at init. After init only the graph
 * inputs and outputs keep a record (pg_interpreter_input/output). */
typedef struct pg_tensor {
  void *data;
  const char *name;         /* NUL-terminated, from the model ("" if none) */
  int32_t dims[PG_MAX_RANK];
  int32_t rank;
  int32_t num_elements;
  uint32_t bytes;
  uint8_t type;             /* pg_type */
  uint8_t is_constant;      /* data lives in the model bytes */
  uint8_t is_variable;      /* persistent across invokes (resource/is_variable) */
  uint8_t has_quantization;
  float scale;              /* per-tensor scale (first one if per-channel) */
  int32_t zero_point;
  int32_t num_channel_scales;   /* > 1: per-channel along quantized_dimension */
  int32_t quantized_dimension;
  const uint8_t *channel_scales; /* little-endian float32[num_channel_scales] in the model */
  int32_t first_use, last_use;   /* op indices, for the planner (-1: none, -2: graph input) */
  uint32_t arena_offset;         /* planned offset of non-constant tensors */
} pg_tensor;

struct pg_node; /* defined in kernels/kernels.h */

/* The CIM device and the mapping of the model's FULLY_CONNECTED weights onto it
 * (src/cim_map.c). */
typedef struct pg_cim {
  cim_hal *hal;             /* the driver's state, in the arena's persistent part */
  picogpt_cim_mapping map;  /* filled while the ops are prepared */
  int32_t cpu_fallback;     /* picogpt_options.cim_cpu_fallback */
  int32_t tile_memory;      /* picogpt_options.cim_tile_memory */
  struct pg_cim_sim *sim;   /* simulated non-idealities (src/cim_nonideal.c); NULL: exact */
} pg_cim;

typedef struct pg_interpreter {
  const uint8_t *model;
  size_t model_size;
  uint8_t *arena;           /* 16-byte aligned start of the usable arena */
  size_t arena_size;
  size_t arena_used;        /* planned graph inputs/activations + persistent data: the exact
                               arena this model needs (valid after a successful init) */
  /* After PICOGPT_ERR_ARENA_TOO_SMALL: the bytes needed, exact when arena_needed_exact,
   * else a lower bound (the model's tables alone did not fit); after success = arena_used. */
  size_t arena_needed;
  int32_t arena_needed_exact;
  size_t activation_bytes;  /* the planned part: graph inputs + activations (reused by lifetime) */
  size_t persistent_bytes;  /* nodes, per-op data, data pointers, I/O records, variables, scratch */
  /* [num_tensors] full records: valid during init only (they live at the arena's
   * start, which graph inputs and activations reuse afterwards); NULL after init. */
  pg_tensor *tensors;
  void **tensor_data;       /* [num_tensors] data pointers, persistent (what ops read) */
  pg_tensor *io_tensors;    /* [num_inputs + num_outputs] persistent records of the graph I/O */
  int32_t num_tensors;
  struct pg_node *nodes;    /* [num_nodes], in execution order */
  int32_t num_nodes;
  const int32_t *inputs;    /* [num_inputs] tensor indices */
  int32_t num_inputs;
  const int32_t *outputs;   /* [num_outputs] tensor indices */
  int32_t num_outputs;
  void *scratch;            /* shared kernel scratch (16-byte aligned), in the arena */
  size_t scratch_bytes;
  pg_cim cim;
  /* Positions of the KV caches that hold data (the step model's pos), set by the runtime
   * before each invoke; BATCH_MATMULs bound to a cache (pg_batch_matmul_bind_cache) read
   * only those. INT32_MAX (after init): all. */
  int32_t live_positions;
  int32_t simd_tables;      /* picogpt_options.simd_tables (read by prepare) */
  uint64_t cpu_macs;        /* products run on the CPU so far (BATCH_MATMUL, unmapped FC) */
  pg_error error;
} pg_interpreter;

/* Records an error of the interpreter; returns status. */
#define pg_fail(it, ...) pg_set_error(&(it)->error, __VA_ARGS__)

/* Parses and validates the model, prepares every op (mapping the FULLY_CONNECTED weights
 * onto the CIM device of options, NULL: the default one) and plans all memory into arena
 * (16-byte aligned; unaligned bytes at its start are skipped). The model bytes must outlive
 * the interpreter. */
picogpt_status pg_interpreter_init(pg_interpreter *it, const void *model, size_t model_size,
                                   void *arena, size_t arena_size,
                                   const picogpt_options *options);
/* Runs every op once. Graph inputs keep their contents across calls (they are
 * planned for the whole graph and never reused), so unchanged inputs need not be
 * written again; stock TFLite Micro differs here. */
picogpt_status pg_interpreter_invoke(pg_interpreter *it);
pg_tensor *pg_interpreter_input(pg_interpreter *it, int index);
pg_tensor *pg_interpreter_output(pg_interpreter *it, int index);

/* Element size in bytes of a pg_type (0: unsupported) and the schema's name of any
 * TensorType value (for messages). */
uint32_t pg_type_size(int type);
const char *pg_type_name(int type);

#endif /* PG_INTERPRETER_H */
