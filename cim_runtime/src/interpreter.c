/* The interpreter's init (reader, lifetimes, prepare, planner, in that order)
 * and invoke; see interpreter.h for the arena layout. */
#include "interpreter.h"

#include <string.h>

#include "arena.h"
#include "cim_map.h"
#include "kernels/kernel_util.h"
#include "model_reader.h"
#include "planner.h"

picogpt_status pg_interpreter_init(pg_interpreter *it, const void *model, size_t model_size,
                                   void *arena, size_t arena_size,
                                   const picogpt_options *options) {
  if (it == NULL) return PICOGPT_ERR_ARGUMENT;
  memset(it, 0, sizeof *it);
  if (model == NULL || arena == NULL) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT, "model and arena must not be NULL");
  }
  if (model_size < 8 || model_size > 0x7fffffffu) {
    return pg_fail(it, PICOGPT_ERR_MODEL_TRUNCATED, "model size %z bytes is not a TFLite model",
                   model_size);
  }
  it->model = (const uint8_t *)model;
  it->model_size = model_size;
  /* Align the arena start. */
  const size_t skip = (PG_ALIGN - ((uintptr_t)arena % PG_ALIGN)) % PG_ALIGN;
  it->arena_size = arena_size;
  if (arena_size < skip + PG_ALIGN) {
    it->arena_needed = skip + PG_ALIGN;
    return pg_fail(it, PICOGPT_ERR_ARENA_TOO_SMALL, "arena too small: %z bytes", arena_size);
  }
  it->simd_tables = options != NULL && options->simd_tables != 0;
  uint8_t *base = (uint8_t *)arena + skip;
  const size_t usable = (arena_size - skip) & ~(size_t)(PG_ALIGN - 1);
  it->arena = base;

  pg_prepare_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.it = it;
  ctx.fb.data = it->model;
  ctx.fb.size = (uint32_t)model_size;
  pg_arena_begin(&ctx.arena, it, base, usable, skip);

  picogpt_status st = pg_cim_begin(&ctx, options);
  if (st != PICOGPT_OK) return st;
  st = pg_read_model(it, &ctx.arena, &ctx.fb, &ctx.node_options);
  if (st != PICOGPT_OK) return st;
  st = pg_compute_lifetimes(it);
  if (st != PICOGPT_OK) return st;

  for (int n = 0; n < it->num_nodes; ++n) {
    pg_node *node = &it->nodes[n];
    const pg_kernel *kernel = pg_find_kernel(node->opcode);
    ctx.options = ctx.node_options[n].table;
    ctx.options_type = ctx.node_options[n].type;
    st = kernel->prepare(&ctx, node);
    if (st != PICOGPT_OK) return st;
    if (node->eval == NULL) {
      return pg_node_fail(&ctx, node, PICOGPT_ERR_UNSUPPORTED_OP, "no kernel for this variant");
    }
  }
  st = pg_cim_end(&ctx);
  if (st != PICOGPT_OK) return st;
  int fused = 0;
#if PICOGPT_FUSE_MASKED_SOFTMAX
  st = pg_fuse_masked_softmax(&ctx, &fused);
  if (st != PICOGPT_OK) return st;
#endif
  if (fused > 0) { /* the fused ops' inputs and outputs live from their new slots */
    st = pg_compute_lifetimes(it);
    if (st != PICOGPT_OK) return st;
  }

  if (ctx.scratch_request > 0) {
    it->scratch = pg_arena_persistent(&ctx.arena, ctx.scratch_request);
    if (it->scratch == NULL) return it->error.status;
    it->scratch_bytes = ctx.scratch_request;
  }

  /* What survives init: data pointers, graph I/O records, variables. */
  it->tensor_data =
      (void **)pg_arena_persistent(&ctx.arena, sizeof(void *) * (size_t)it->num_tensors);
  it->io_tensors = (pg_tensor *)pg_arena_persistent(
      &ctx.arena, sizeof(pg_tensor) * (size_t)(it->num_inputs + it->num_outputs));
  if (it->tensor_data == NULL || it->io_tensors == NULL) return it->error.status;
  for (int32_t i = 0; i < it->num_tensors; ++i) {
    pg_tensor *t = &it->tensors[i];
    if (t->is_variable && !t->is_constant) {
      t->data = pg_arena_persistent(&ctx.arena, t->bytes);
      if (t->data == NULL) return it->error.status;
      if (t->type == PG_INT8) memset(t->data, (int)t->zero_point, t->bytes);
    }
  }

  const size_t persistent = pg_arena_persistent_bytes(&ctx.arena);
  const size_t activations = pg_plan_activations(it);
  const size_t init_only = ctx.arena.head_bytes;
  const size_t head = activations > init_only ? activations : init_only;
  it->activation_bytes = activations;
  it->persistent_bytes = persistent;
  it->arena_used = skip + head + persistent;
  it->arena_needed = it->arena_used;
  it->arena_needed_exact = 1;
  if (head > (size_t)(ctx.arena.tail - base)) {
    return pg_fail(it, PICOGPT_ERR_ARENA_TOO_SMALL,
                   "arena too small: the model needs %z bytes, arena has %z", it->arena_used,
                   arena_size);
  }
  for (int32_t i = 0; i < it->num_tensors; ++i) {
    pg_tensor *t = &it->tensors[i];
    if (!t->is_constant && !t->is_variable) {
      t->data = pg_is_planned(t) ? base + t->arena_offset : base;
    }
    it->tensor_data[i] = t->data;
  }
  for (int32_t i = 0; i < it->num_inputs; ++i) it->io_tensors[i] = it->tensors[it->inputs[i]];
  for (int32_t i = 0; i < it->num_outputs; ++i) {
    it->io_tensors[it->num_inputs + i] = it->tensors[it->outputs[i]];
  }
  /* The tensor table's memory now belongs to the planned buffers. */
  it->tensors = NULL;
  it->live_positions = INT32_MAX;
  pg_clear_error(&it->error);
  return PICOGPT_OK;
}

picogpt_status pg_interpreter_invoke(pg_interpreter *it) {
  if (it == NULL || it->nodes == NULL) return PICOGPT_ERR_ARGUMENT;
  for (int32_t n = 0; n < it->num_nodes; ++n) {
    const pg_node *node = &it->nodes[n];
    const picogpt_status st = node->eval(it, node);
    if (st != PICOGPT_OK) return st;
  }
  return PICOGPT_OK;
}

pg_tensor *pg_interpreter_input(pg_interpreter *it, int index) {
  if (it == NULL || it->io_tensors == NULL || index < 0 || index >= it->num_inputs) return NULL;
  return &it->io_tensors[index];
}

pg_tensor *pg_interpreter_output(pg_interpreter *it, int index) {
  if (it == NULL || it->io_tensors == NULL || index < 0 || index >= it->num_outputs) return NULL;
  return &it->io_tensors[it->num_inputs + index];
}

/* ---- element types ------------------------------------------------------------------- */

uint32_t pg_type_size(int type) {
  switch (type) {
    case PG_FLOAT32:
    case PG_INT32:
      return 4;
    case PG_INT8:
    case PG_BOOL:
      return 1;
    default:
      return 0;
  }
}

const char *pg_type_name(int type) {
  switch (type) {
    case PG_FLOAT32: return "FLOAT32";
    case PG_INT32: return "INT32";
    case PG_INT8: return "INT8";
    case PG_BOOL: return "BOOL";
    case 1: return "FLOAT16";
    case 3: return "UINT8";
    case 4: return "INT64";
    case 7: return "INT16";
    case 17: return "INT4";
    default: return "unsupported type";
  }
}

