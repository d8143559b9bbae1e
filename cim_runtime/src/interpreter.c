/* Generic interpreter: reads the TFLite flatbuffer (schema subset), validates
 * it up front, prepares every op, plans all tensor memory into the arena and
 * runs the ops in order.
 *
 * Arena layout (16-byte aligned):
 *   [ planned: graph inputs + activations ..... free ..... persistent ]
 *   head                                            tail, grows down
 * Planned: graph inputs live for the whole graph (never reused, so the caller
 * may write them once; a KV cache passed as an input is updated in place) and
 * activations share memory by lifetime. Persistent: node table, per-op data,
 * data pointers, records of the graph I/O, variables, kernel scratch.
 * During init the full tensor table sits at the arena's start: nothing is
 * planned there yet, and the graph inputs (the 96 KB KV cache) take that space
 * afterwards, so the table costs no RAM at run time.
 */
#include <stdarg.h>
#include <string.h>

#include "kernels/kernels.h"
#include "status.h"

/* Schema field ids (tensorflow/compiler/mlir/lite/schema/schema.fbs). */
enum { MODEL_VERSION = 0, MODEL_OPERATOR_CODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_BUILTIN = 3 };
enum { SUBGRAPH_TENSORS = 0, SUBGRAPH_INPUTS = 1, SUBGRAPH_OUTPUTS = 2, SUBGRAPH_OPERATORS = 3 };
enum {
  TENSOR_SHAPE = 0,
  TENSOR_TYPE = 1,
  TENSOR_BUFFER = 2,
  TENSOR_NAME = 3,
  TENSOR_QUANTIZATION = 4,
  TENSOR_IS_VARIABLE = 5,
  TENSOR_SPARSITY = 6,
};
enum { QUANT_SCALE = 2, QUANT_ZERO_POINT = 3, QUANT_DETAILS_TYPE = 4, QUANT_DIMENSION = 6 };
enum {
  OPERATOR_OPCODE_INDEX = 0,
  OPERATOR_INPUTS = 1,
  OPERATOR_OUTPUTS = 2,
  OPERATOR_OPTIONS_TYPE = 3,
  OPERATOR_OPTIONS = 4,
  OPERATOR_INTERMEDIATES = 8,
  OPERATOR_OPTIONS_2_TYPE = 11,
};
enum { BUFFER_DATA = 0, BUFFER_OFFSET = 1, BUFFER_SIZE = 2 };

#define PG_ALIGN 16u
#define PG_MAX_TENSORS 8192
#define PG_MAX_NODES 8192
#define PG_MAX_NODE_IO 64
#define PG_MAX_GRAPH_IO 64

static size_t align_up(size_t v) { return (v + (PG_ALIGN - 1)) & ~(size_t)(PG_ALIGN - 1); }

/* ---- error helpers ---------------------------------------------------------- */

picogpt_status pg_fail(picogpt_interpreter *it, picogpt_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  it->error.status = status;
  pg_vformat(it->error.message, sizeof it->error.message, fmt, ap);
  va_end(ap);
  return status;
}

picogpt_status pg_node_fail(pg_prepare_ctx *ctx, const picogpt_node *node,
                            picogpt_status status, const char *fmt, ...) {
  char detail[PICOGPT_ERROR_MESSAGE_SIZE];
  va_list ap;
  va_start(ap, fmt);
  pg_vformat(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return pg_fail(ctx->it, status, "%s (op %d): %s", pg_op_name(node->opcode), (int)node->index,
                 detail);
}

/* ---- persistent allocation ---------------------------------------------------- */

/* Init-only memory from the arena's start (before any persistent allocation). */
static void *alloc_temp(pg_prepare_ctx *ctx, size_t bytes) {
  const size_t size = align_up(bytes == 0 ? 1 : bytes);
  if ((size_t)(ctx->tail - ctx->temp) < size) {
    ctx->it->arena_needed = ctx->skip + ctx->temp_bytes + size + ctx->tail_needed;
    pg_fail(ctx->it, PICOGPT_ERR_ARENA_TOO_SMALL,
            "arena too small: the model needs at least %z bytes for its tables (arena has %z)",
            ctx->it->arena_needed, ctx->it->arena_size);
    return NULL;
  }
  void *p = ctx->temp;
  ctx->temp += size;
  ctx->temp_bytes += size;
  ctx->tail_limit = ctx->temp;
  memset(p, 0, size);
  return p;
}

void *pg_alloc_persistent(pg_prepare_ctx *ctx, size_t bytes) {
  const size_t size = align_up(bytes == 0 ? 1 : bytes);
  ctx->tail_needed += size;
  if ((size_t)(ctx->tail - ctx->tail_limit) < size) {
    ctx->it->arena_needed = ctx->skip + ctx->temp_bytes + ctx->tail_needed;
    pg_fail(ctx->it, PICOGPT_ERR_ARENA_TOO_SMALL,
            "arena too small: the model needs at least %z bytes for its tables (arena has %z)",
            ctx->it->arena_needed, ctx->it->arena_size);
    return NULL;
  }
  ctx->tail -= size;
  memset(ctx->tail, 0, size);
  return ctx->tail;
}

/* ---- type helpers ------------------------------------------------------------- */

uint32_t pg_type_size(int type) {
  switch (type) {
    case PICOGPT_FLOAT32:
    case PICOGPT_INT32:
      return 4;
    case PICOGPT_INT8:
    case PICOGPT_BOOL:
      return 1;
    default:
      return 0;
  }
}

const char *pg_type_name(int type) {
  switch (type) {
    case PICOGPT_FLOAT32: return "FLOAT32";
    case PICOGPT_INT32: return "INT32";
    case PICOGPT_INT8: return "INT8";
    case PICOGPT_BOOL: return "BOOL";
    case 1: return "FLOAT16";
    case 3: return "UINT8";
    case 4: return "INT64";
    case 7: return "INT16";
    case 17: return "INT4";
    default: return "unsupported type";
  }
}

int pg_same_shape(const picogpt_tensor *a, const picogpt_tensor *b) {
  if (a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; ++i) {
    if (a->dims[i] != b->dims[i]) return 0;
  }
  return 1;
}

picogpt_status pg_check_io(pg_prepare_ctx *ctx, const picogpt_node *node, int min_inputs,
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

picogpt_status pg_check_int8_quant(pg_prepare_ctx *ctx, const picogpt_node *node,
                                   const picogpt_tensor *t, const char *what) {
  if (t->type != PICOGPT_INT8) {
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

picogpt_status pg_activation_range_int8(pg_prepare_ctx *ctx, const picogpt_node *node,
                                        int activation, const picogpt_tensor *output,
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

picogpt_status pg_const_i32(pg_prepare_ctx *ctx, const picogpt_node *node,
                            const picogpt_tensor *t, const char *what, int32_t max_count,
                            int32_t *values, int32_t *count) {
  if (!t->is_constant || t->type != PICOGPT_INT32) {
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

/* ---- model parsing ------------------------------------------------------------- */

#define FB_CHECK(expr, what)                                                              \
  do {                                                                                    \
    if ((expr) != 0)                                                                      \
      return pg_fail(it, PICOGPT_ERR_MODEL_TRUNCATED, "model bytes invalid: %s", (what)); \
  } while (0)

static picogpt_status parse_tensor(picogpt_interpreter *it, const pg_fb *fb,
                                   const pg_fb_vector *buffers, const pg_fb_table *tt,
                                   int32_t index, picogpt_tensor *t) {
  pg_fb_vector shape, scales, zero_points, data;
  pg_fb_table quant, buffer, sparsity;
  int8_t type;
  uint32_t buffer_index;
  uint8_t is_variable;
  FB_CHECK(pg_fb_vector_field(fb, tt, TENSOR_SHAPE, 4, &shape), "tensor shape");
  FB_CHECK(pg_fb_i8(fb, tt, TENSOR_TYPE, 0, &type), "tensor type");
  FB_CHECK(pg_fb_u32(fb, tt, TENSOR_BUFFER, 0, &buffer_index), "tensor buffer");
  FB_CHECK(pg_fb_string_field(fb, tt, TENSOR_NAME, &t->name), "tensor name");
  FB_CHECK(pg_fb_table_field(fb, tt, TENSOR_QUANTIZATION, &quant), "tensor quantization");
  FB_CHECK(pg_fb_u8(fb, tt, TENSOR_IS_VARIABLE, 0, &is_variable), "tensor is_variable");
  FB_CHECK(pg_fb_table_field(fb, tt, TENSOR_SPARSITY, &sparsity), "tensor sparsity");
  if (sparsity.pos != 0) {
    return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_TYPE, "tensor %d '%s': sparse tensors not supported",
                   (int)index, t->name);
  }
  t->type = (uint8_t)type;
  t->is_variable = is_variable ? 1 : 0;
  t->first_use = -1;
  t->last_use = -1;
  const uint32_t elem_size = pg_type_size(type);
  if (type < 0 || elem_size == 0) {
    return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_TYPE, "tensor %d '%s': type %s (%d) not supported",
                   (int)index, t->name, pg_type_name(type), (int)type);
  }
  if (shape.count > PICOGPT_MAX_RANK) {
    return pg_fail(it, PICOGPT_ERR_SHAPE, "tensor %d '%s': rank %u exceeds %d", (int)index, t->name,
                   (unsigned)shape.count, PICOGPT_MAX_RANK);
  }
  t->rank = (int32_t)shape.count;
  int64_t elements = 1;
  for (uint32_t d = 0; d < shape.count; ++d) {
    const int32_t dim = pg_fb_vec_i32(fb, &shape, d);
    if (dim < 0) {
      return pg_fail(it, PICOGPT_ERR_SHAPE, "tensor %d '%s': dynamic or negative dimension %d",
                     (int)index, t->name, (int)dim);
    }
    t->dims[d] = dim;
    elements *= dim;
    if (elements * (int64_t)elem_size > 0x40000000) {
      return pg_fail(it, PICOGPT_ERR_SHAPE, "tensor %d '%s': too large", (int)index, t->name);
    }
  }
  t->num_elements = (int32_t)elements;
  t->bytes = (uint32_t)elements * elem_size;

  /* Data: a constant lives in its buffer inside the model bytes. */
  if (buffer_index >= buffers->count) {
    return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "tensor %d '%s': buffer %u out of range (%u)",
                   (int)index, t->name, (unsigned)buffer_index, (unsigned)buffers->count);
  }
  FB_CHECK(pg_fb_vector_table(fb, buffers, buffer_index, &buffer), "buffer table");
  uint64_t ext_offset, ext_size;
  FB_CHECK(pg_fb_vector_field(fb, &buffer, BUFFER_DATA, 1, &data), "buffer data");
  FB_CHECK(pg_fb_u64(fb, &buffer, BUFFER_OFFSET, 0, &ext_offset), "buffer offset");
  FB_CHECK(pg_fb_u64(fb, &buffer, BUFFER_SIZE, 0, &ext_size), "buffer size");
  if (ext_offset > 1 || ext_size > 0) {
    return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_TYPE,
                   "tensor %d '%s': buffer stored outside the flatbuffer (offset/size, models "
                   "over 2 GB) not supported",
                   (int)index, t->name);
  }
  if (data.count > 0) {
    if (data.count != t->bytes) {
      return pg_fail(it, PICOGPT_ERR_SHAPE, "tensor %d '%s': buffer has %u bytes, shape needs %u",
                     (int)index, t->name, (unsigned)data.count, (unsigned)t->bytes);
    }
    const uint8_t *p = fb->data + data.pos;
    if (((uintptr_t)p % elem_size) != 0) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT,
                     "tensor %d '%s': constant data misaligned (model array must be 16-byte "
                     "aligned)",
                     (int)index, t->name);
    }
    if (t->is_variable) {
      return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_TYPE,
                     "tensor %d '%s': variable tensors with initial data not supported", (int)index,
                     t->name);
    }
    t->data = (void *)(uintptr_t)p;
    t->is_constant = 1;
  }

  /* Quantization: per-tensor or per-channel affine. */
  if (quant.pos != 0) {
    uint8_t details_type;
    int32_t qdim;
    FB_CHECK(pg_fb_vector_field(fb, &quant, QUANT_SCALE, 4, &scales), "quantization scale");
    FB_CHECK(pg_fb_vector_field(fb, &quant, QUANT_ZERO_POINT, 8, &zero_points),
             "quantization zero_point");
    FB_CHECK(pg_fb_u8(fb, &quant, QUANT_DETAILS_TYPE, 0, &details_type), "quantization details");
    FB_CHECK(pg_fb_i32(fb, &quant, QUANT_DIMENSION, 0, &qdim), "quantized_dimension");
    if (details_type != 0) {
      return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                     "tensor %d '%s': custom quantization details not supported", (int)index,
                     t->name);
    }
    if (scales.count > 0) {
      if (zero_points.count != scales.count) {
        return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                       "tensor %d '%s': %u scales but %u zero points", (int)index, t->name,
                       (unsigned)scales.count, (unsigned)zero_points.count);
      }
      for (uint32_t i = 0; i < scales.count; ++i) {
        const float s = pg_fb_vec_f32(fb, &scales, i);
        if (!(s > 0.0f && s < 3.0e38f)) {
          return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                         "tensor %d '%s': scale must be positive and finite", (int)index, t->name);
        }
        const int64_t zp = pg_fb_vec_i64(fb, &zero_points, i);
        if (zp < -32768 || zp > 32767) {
          return pg_fail(it, PICOGPT_ERR_QUANTIZATION, "tensor %d '%s': zero point out of range",
                         (int)index, t->name);
        }
      }
      t->has_quantization = 1;
      t->scale = pg_fb_vec_f32(fb, &scales, 0);
      t->zero_point = (int32_t)pg_fb_vec_i64(fb, &zero_points, 0);
      t->num_channel_scales = (int32_t)scales.count;
      t->quantized_dimension = qdim;
      t->channel_scales = fb->data + scales.pos;
      if (scales.count > 1) {
        if (qdim < 0 || qdim >= t->rank || (uint32_t)t->dims[qdim] != scales.count) {
          return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                         "tensor %d '%s': %u channel scales do not match quantized dimension %d",
                         (int)index, t->name, (unsigned)scales.count, (int)qdim);
        }
        for (uint32_t i = 0; i < scales.count; ++i) {
          if (pg_fb_vec_i64(fb, &zero_points, i) != 0) {
            return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                           "tensor %d '%s': per-channel zero points must be 0", (int)index,
                           t->name);
          }
        }
      }
    }
  }
  return PICOGPT_OK;
}

/* Validates a vector of tensor indices and returns it in place in the model
 * bytes (flatbuffers align int32 vectors to 4) when the host is little-endian
 * and the vector is aligned; otherwise copies it into the persistent part. */
static picogpt_status index_vector(picogpt_interpreter *it, pg_prepare_ctx *ctx, const pg_fb *fb,
                                   const pg_fb_vector *v, int allow_absent, const char *what,
                                   const int32_t **out) {
  if (v->count > PG_MAX_NODE_IO) {
    return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "%s: %u entries exceed %d", what,
                   (unsigned)v->count, PG_MAX_NODE_IO);
  }
  for (uint32_t i = 0; i < v->count; ++i) {
    const int32_t idx = pg_fb_vec_i32(fb, v, i);
    if (idx >= it->num_tensors || idx < (allow_absent ? -1 : 0)) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "%s: tensor index %d out of range (%d tensors)",
                     what, (int)idx, (int)it->num_tensors);
    }
  }
  const uint16_t endian_probe = 1;
  const uint8_t *bytes = fb->data + v->pos;
  if (*(const uint8_t *)&endian_probe == 1 && (uintptr_t)bytes % 4u == 0) {
    *out = (const int32_t *)(const void *)bytes;
    return PICOGPT_OK;
  }
  int32_t *copy = (int32_t *)pg_alloc_persistent(ctx, (size_t)v->count * 4u);
  if (copy == NULL) return it->error.status;
  for (uint32_t i = 0; i < v->count; ++i) copy[i] = pg_fb_vec_i32(fb, v, i);
  *out = copy;
  return PICOGPT_OK;
}

static picogpt_status parse_model(picogpt_interpreter *it, pg_prepare_ctx *ctx) {
  const pg_fb *fb = &ctx->fb;
  pg_fb_table model, subgraph;
  pg_fb_vector opcodes, subgraphs, buffers, tensors, operators, inputs, outputs;
  uint32_t version;
  if (pg_fb_root(fb, &model) != 0) {
    return pg_fail(it, PICOGPT_ERR_MODEL_TRUNCATED, "model bytes invalid: no root table (%z bytes)",
                   it->model_size);
  }
  if (memcmp(fb->data + 4, "TFL3", 4) != 0) {
    return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "not a TFLite model (file identifier is not TFL3)");
  }
  FB_CHECK(pg_fb_u32(fb, &model, MODEL_VERSION, 0, &version), "model version");
  if (version != 3) {
    return pg_fail(it, PICOGPT_ERR_MODEL_VERSION, "model schema version %u, expected 3",
                   (unsigned)version);
  }
  FB_CHECK(pg_fb_vector_field(fb, &model, MODEL_OPERATOR_CODES, 4, &opcodes), "operator_codes");
  FB_CHECK(pg_fb_vector_field(fb, &model, MODEL_SUBGRAPHS, 4, &subgraphs), "subgraphs");
  FB_CHECK(pg_fb_vector_field(fb, &model, MODEL_BUFFERS, 4, &buffers), "buffers");
  if (subgraphs.count != 1) {
    return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_OP, "model has %u subgraphs, exactly 1 supported",
                   (unsigned)subgraphs.count);
  }
  FB_CHECK(pg_fb_vector_table(fb, &subgraphs, 0, &subgraph), "subgraph 0");
  FB_CHECK(pg_fb_vector_field(fb, &subgraph, SUBGRAPH_TENSORS, 4, &tensors), "tensors");
  FB_CHECK(pg_fb_vector_field(fb, &subgraph, SUBGRAPH_OPERATORS, 4, &operators), "operators");
  FB_CHECK(pg_fb_vector_field(fb, &subgraph, SUBGRAPH_INPUTS, 4, &inputs), "subgraph inputs");
  FB_CHECK(pg_fb_vector_field(fb, &subgraph, SUBGRAPH_OUTPUTS, 4, &outputs), "subgraph outputs");
  if (tensors.count == 0 || tensors.count > PG_MAX_TENSORS) {
    return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "model has %u tensors (1..%d supported)",
                   (unsigned)tensors.count, PG_MAX_TENSORS);
  }
  if (operators.count == 0 || operators.count > PG_MAX_NODES) {
    return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "model has %u operators (1..%d supported)",
                   (unsigned)operators.count, PG_MAX_NODES);
  }
  if (inputs.count == 0 || inputs.count > PG_MAX_GRAPH_IO || outputs.count == 0 ||
      outputs.count > PG_MAX_GRAPH_IO) {
    return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "model has %u inputs and %u outputs",
                   (unsigned)inputs.count, (unsigned)outputs.count);
  }

  it->num_tensors = (int32_t)tensors.count;
  it->tensors = (picogpt_tensor *)alloc_temp(ctx, sizeof(picogpt_tensor) * tensors.count);
  if (it->tensors == NULL) return it->error.status;
  for (uint32_t i = 0; i < tensors.count; ++i) {
    pg_fb_table tt;
    FB_CHECK(pg_fb_vector_table(fb, &tensors, i, &tt), "tensor table");
    const picogpt_status st = parse_tensor(it, fb, &buffers, &tt, (int32_t)i, &it->tensors[i]);
    if (st != PICOGPT_OK) return st;
  }

  const int32_t *graph_inputs, *graph_outputs;
  picogpt_status st = index_vector(it, ctx, fb, &inputs, 0, "subgraph inputs", &graph_inputs);
  if (st != PICOGPT_OK) return st;
  st = index_vector(it, ctx, fb, &outputs, 0, "subgraph outputs", &graph_outputs);
  if (st != PICOGPT_OK) return st;
  it->inputs = graph_inputs;
  it->num_inputs = (int32_t)inputs.count;
  it->outputs = graph_outputs;
  it->num_outputs = (int32_t)outputs.count;

  it->num_nodes = (int32_t)operators.count;
  it->nodes = (picogpt_node *)pg_alloc_persistent(ctx, sizeof(picogpt_node) * operators.count);
  if (it->nodes == NULL) return it->error.status;
  ctx->node_options =
      (pg_node_options *)alloc_temp(ctx, sizeof(pg_node_options) * operators.count);
  if (ctx->node_options == NULL) return it->error.status;
  for (uint32_t i = 0; i < operators.count; ++i) {
    picogpt_node *node = &it->nodes[i];
    pg_node_options *options = &ctx->node_options[i];
    pg_fb_table op, opcode;
    pg_fb_vector op_inputs, op_outputs, intermediates;
    uint32_t opcode_index;
    uint8_t options_2_type;
    node->index = (int16_t)i;
    FB_CHECK(pg_fb_vector_table(fb, &operators, i, &op), "operator table");
    FB_CHECK(pg_fb_u32(fb, &op, OPERATOR_OPCODE_INDEX, 0, &opcode_index), "opcode_index");
    if (opcode_index >= opcodes.count) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "op %u: opcode index %u out of range (%u)",
                     (unsigned)i, (unsigned)opcode_index, (unsigned)opcodes.count);
    }
    FB_CHECK(pg_fb_vector_table(fb, &opcodes, opcode_index, &opcode), "operator code");
    int8_t deprecated_code;
    int32_t builtin_code;
    FB_CHECK(pg_fb_i8(fb, &opcode, OPCODE_DEPRECATED_BUILTIN, 0, &deprecated_code), "opcode");
    FB_CHECK(pg_fb_i32(fb, &opcode, OPCODE_BUILTIN, 0, &builtin_code), "opcode");
    /* The schema's rule: the larger of the two fields is the op. */
    const int32_t code = builtin_code > deprecated_code ? builtin_code : deprecated_code;
    FB_CHECK(pg_fb_vector_field(fb, &op, OPERATOR_INPUTS, 4, &op_inputs), "operator inputs");
    FB_CHECK(pg_fb_vector_field(fb, &op, OPERATOR_OUTPUTS, 4, &op_outputs), "operator outputs");
    FB_CHECK(pg_fb_vector_field(fb, &op, OPERATOR_INTERMEDIATES, 4, &intermediates),
             "operator intermediates");
    FB_CHECK(pg_fb_u8(fb, &op, OPERATOR_OPTIONS_TYPE, 0, &options->type), "options type");
    FB_CHECK(pg_fb_table_field(fb, &op, OPERATOR_OPTIONS, &options->table), "builtin options");
    FB_CHECK(pg_fb_u8(fb, &op, OPERATOR_OPTIONS_2_TYPE, 0, &options_2_type), "options 2 type");
    if (pg_find_kernel(code) == NULL) { /* checked on the full code, before narrowing */
      return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_OP, "op %u: %s (builtin code %d) not supported",
                     (unsigned)i, pg_op_name(code), (int)code);
    }
    node->opcode = (int16_t)code;
    if (intermediates.count != 0 || options_2_type != 0) {
      return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_OP,
                     "op %u: %s uses intermediates/builtin_options_2, not supported", (unsigned)i,
                     pg_op_name(node->opcode));
    }
    const int32_t *ins, *outs;
    st = index_vector(it, ctx, fb, &op_inputs, 1, "operator inputs", &ins);
    if (st != PICOGPT_OK) return st;
    st = index_vector(it, ctx, fb, &op_outputs, 0, "operator outputs", &outs);
    if (st != PICOGPT_OK) return st;
    if (op_outputs.count == 0) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "op %u: %s has no outputs", (unsigned)i,
                     pg_op_name(node->opcode));
    }
    node->inputs = ins;
    node->num_inputs = (int16_t)op_inputs.count;
    node->outputs = outs;
    node->num_outputs = (int16_t)op_outputs.count;
  }
  return PICOGPT_OK;
}

/* ---- dataflow validation and lifetimes ------------------------------------------- */

static picogpt_status compute_lifetimes(picogpt_interpreter *it) {
  /* first_use: producing op; last_use: last consuming op. Graph inputs are
   * marked with first_use = -2 (planned for the whole graph, never reused). */
  for (int i = 0; i < it->num_inputs; ++i) {
    picogpt_tensor *t = &it->tensors[it->inputs[i]];
    if (t->is_constant) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "graph input %d '%s' is a constant", i,
                     t->name);
    }
    t->first_use = -2;
  }
  for (int n = 0; n < it->num_nodes; ++n) {
    const picogpt_node *node = &it->nodes[n];
    for (int i = 0; i < node->num_inputs; ++i) {
      if (node->inputs[i] < 0) continue;
      picogpt_tensor *t = &it->tensors[node->inputs[i]];
      if (t->is_constant) continue;
      if (t->first_use == -1 && !t->is_variable) {
        return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT,
                       "%s (op %d) reads tensor %d '%s' before any op writes it",
                       pg_op_name(node->opcode), n, (int)node->inputs[i], t->name);
      }
      t->last_use = n;
    }
    for (int o = 0; o < node->num_outputs; ++o) {
      picogpt_tensor *t = &it->tensors[node->outputs[o]];
      if (t->is_constant || t->first_use != -1 || t->is_variable) {
        return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT,
                       "%s (op %d) writes tensor %d '%s', which is constant, an input, a "
                       "variable or written twice",
                       pg_op_name(node->opcode), n, (int)node->outputs[o], t->name);
      }
      t->first_use = n;
      if (t->last_use < n) t->last_use = n;
    }
  }
  for (int i = 0; i < it->num_outputs; ++i) {
    picogpt_tensor *t = &it->tensors[it->outputs[i]];
    if (t->first_use == -1 && !t->is_constant && !t->is_variable) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "graph output %d '%s' is never written", i,
                     t->name);
    }
    t->last_use = it->num_nodes; /* alive after the last op */
  }
  return PICOGPT_OK;
}

/* ---- memory planning ------------------------------------------------------------------ */

/* Graph inputs (first_use -2) are planned too, alive for the whole graph. */
#define LIFETIME_END (PG_MAX_NODES + 1)

/* Greedy by size (largest first), each buffer at the lowest 16-byte aligned
 * offset that does not overlap a placed buffer with an intersecting
 * lifetime; the same idea as TFLite Micro's GreedyMemoryPlanner. Needs no
 * scratch memory (arena_offset == UINT32_MAX marks "not placed yet"), so an
 * arena of exactly the reported size always works. Returns the high-water
 * mark. O(n^2) to O(n^3) in the number of tensors; runs once at init. */
static int planned(const picogpt_tensor *t) {
  return !t->is_constant && !t->is_variable && (t->first_use >= 0 || t->first_use == -2) &&
         t->bytes > 0;
}

static size_t plan_activations(picogpt_interpreter *it) {
  for (int32_t i = 0; i < it->num_tensors; ++i) it->tensors[i].arena_offset = UINT32_MAX;
  size_t high_water = 0;
  for (;;) {
    /* Next: largest unplaced, then earliest first use, then lowest index. */
    picogpt_tensor *t = NULL;
    for (int32_t i = 0; i < it->num_tensors; ++i) {
      picogpt_tensor *c = &it->tensors[i];
      if (!planned(c) || c->arena_offset != UINT32_MAX) continue;
      if (t == NULL || c->bytes > t->bytes ||
          (c->bytes == t->bytes && c->first_use < t->first_use)) {
        t = c;
      }
    }
    if (t == NULL) break;
    const size_t size = align_up(t->bytes);
    size_t candidate = 0;
    int moved = 1;
    while (moved) {
      moved = 0;
      for (int32_t i = 0; i < it->num_tensors; ++i) {
        const picogpt_tensor *o = &it->tensors[i];
        if (o == t || !planned(o) || o->arena_offset == UINT32_MAX) continue;
        const int32_t t_last = t->first_use == -2 ? LIFETIME_END : t->last_use;
        const int32_t o_last = o->first_use == -2 ? LIFETIME_END : o->last_use;
        if (o_last < t->first_use || t_last < o->first_use) continue;
        const size_t o_start = o->arena_offset, o_end = o_start + align_up(o->bytes);
        if (candidate < o_end && o_start < candidate + size) {
          candidate = o_end;
          moved = 1;
        }
      }
    }
    t->arena_offset = (uint32_t)candidate;
    if (candidate + size > high_water) high_water = candidate + size;
  }
  return high_water;
}

/* ---- init / invoke ------------------------------------------------------------------------ */

picogpt_status picogpt_interpreter_init(picogpt_interpreter *it, const void *model,
                                        size_t model_size, void *arena, size_t arena_size) {
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
  uint8_t *base = (uint8_t *)arena + skip;
  const size_t usable = (arena_size - skip) & ~(size_t)(PG_ALIGN - 1);
  it->arena = base;

  pg_prepare_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.it = it;
  ctx.fb.data = it->model;
  ctx.fb.size = (uint32_t)model_size;
  ctx.temp = base;
  ctx.skip = skip;
  ctx.tail = base + usable;
  ctx.tail_limit = base;

  picogpt_status st = parse_model(it, &ctx);
  if (st != PICOGPT_OK) return st;
  st = compute_lifetimes(it);
  if (st != PICOGPT_OK) return st;

  for (int n = 0; n < it->num_nodes; ++n) {
    picogpt_node *node = &it->nodes[n];
    const pg_kernel *kernel = pg_find_kernel(node->opcode);
    ctx.options = ctx.node_options[n].table;
    ctx.options_type = ctx.node_options[n].type;
    st = kernel->prepare(&ctx, node);
    if (st != PICOGPT_OK) return st;
    if (node->eval == NULL) {
      return pg_node_fail(&ctx, node, PICOGPT_ERR_UNSUPPORTED_OP, "no kernel for this variant");
    }
  }

  if (ctx.scratch_request > 0) {
    it->scratch = pg_alloc_persistent(&ctx, ctx.scratch_request);
    if (it->scratch == NULL) return it->error.status;
    it->scratch_bytes = ctx.scratch_request;
  }

  /* What survives init: data pointers, graph I/O records, variables. */
  it->tensor_data = (void **)pg_alloc_persistent(&ctx, sizeof(void *) * (size_t)it->num_tensors);
  it->io_tensors = (picogpt_tensor *)pg_alloc_persistent(
      &ctx, sizeof(picogpt_tensor) * (size_t)(it->num_inputs + it->num_outputs));
  if (it->tensor_data == NULL || it->io_tensors == NULL) return it->error.status;
  for (int32_t i = 0; i < it->num_tensors; ++i) {
    picogpt_tensor *t = &it->tensors[i];
    if (t->is_variable && !t->is_constant) {
      t->data = pg_alloc_persistent(&ctx, t->bytes);
      if (t->data == NULL) return it->error.status;
      if (t->type == PICOGPT_INT8) memset(t->data, (int)t->zero_point, t->bytes);
    }
  }

  const size_t persistent = (size_t)(base + usable - ctx.tail);
  const size_t activations = plan_activations(it);
  const size_t head = activations > ctx.temp_bytes ? activations : ctx.temp_bytes;
  it->activation_bytes = activations;
  it->persistent_bytes = persistent;
  it->arena_used = skip + head + persistent;
  it->arena_needed = it->arena_used;
  it->arena_needed_exact = 1;
  if (head > (size_t)(ctx.tail - base)) {
    return pg_fail(it, PICOGPT_ERR_ARENA_TOO_SMALL,
                   "arena too small: the model needs %z bytes, arena has %z", it->arena_used,
                   arena_size);
  }
  for (int32_t i = 0; i < it->num_tensors; ++i) {
    picogpt_tensor *t = &it->tensors[i];
    if (!t->is_constant && !t->is_variable) t->data = planned(t) ? base + t->arena_offset : base;
    it->tensor_data[i] = t->data;
  }
  for (int32_t i = 0; i < it->num_inputs; ++i) it->io_tensors[i] = it->tensors[it->inputs[i]];
  for (int32_t i = 0; i < it->num_outputs; ++i) {
    it->io_tensors[it->num_inputs + i] = it->tensors[it->outputs[i]];
  }
  /* The tensor table's memory now belongs to the planned buffers. */
  it->tensors = NULL;
  it->error.status = PICOGPT_OK;
  it->error.message[0] = '\0';
  return PICOGPT_OK;
}

picogpt_status picogpt_interpreter_invoke(picogpt_interpreter *it) {
  if (it == NULL || it->nodes == NULL) return PICOGPT_ERR_ARGUMENT;
  for (int32_t n = 0; n < it->num_nodes; ++n) {
    const picogpt_node *node = &it->nodes[n];
    const picogpt_status st = node->eval(it, node);
    if (st != PICOGPT_OK) return st;
  }
  return PICOGPT_OK;
}

picogpt_tensor *picogpt_interpreter_input(picogpt_interpreter *it, int index) {
  if (it == NULL || it->io_tensors == NULL || index < 0 || index >= it->num_inputs) return NULL;
  return &it->io_tensors[index];
}

picogpt_tensor *picogpt_interpreter_output(picogpt_interpreter *it, int index) {
  if (it == NULL || it->io_tensors == NULL || index < 0 || index >= it->num_outputs) return NULL;
  return &it->io_tensors[it->num_inputs + index];
}

picogpt_status picogpt_model_metadata(const void *model, size_t model_size, const char *name,
                                      const uint8_t **data, size_t *size) {
  enum { MODEL_METADATA = 6, METADATA_NAME = 0, METADATA_BUFFER = 1 };
  if (model == NULL || name == NULL || data == NULL || size == NULL) return PICOGPT_ERR_ARGUMENT;
  if (model_size < 8 || model_size > 0x7fffffffu) return PICOGPT_ERR_MODEL_TRUNCATED;
  const pg_fb fb = {(const uint8_t *)model, (uint32_t)model_size};
  pg_fb_table root, entry, buffer;
  pg_fb_vector entries, buffers, bytes;
  if (pg_fb_root(&fb, &root) || pg_fb_vector_field(&fb, &root, MODEL_METADATA, 4, &entries) ||
      pg_fb_vector_field(&fb, &root, MODEL_BUFFERS, 4, &buffers)) {
    return PICOGPT_ERR_MODEL_TRUNCATED;
  }
  for (uint32_t i = 0; i < entries.count; ++i) {
    const char *entry_name;
    uint32_t buffer_index;
    if (pg_fb_vector_table(&fb, &entries, i, &entry) ||
        pg_fb_string_field(&fb, &entry, METADATA_NAME, &entry_name) ||
        pg_fb_u32(&fb, &entry, METADATA_BUFFER, 0, &buffer_index)) {
      return PICOGPT_ERR_MODEL_TRUNCATED;
    }
    if (strcmp(entry_name, name) != 0) continue;
    if (buffer_index >= buffers.count || pg_fb_vector_table(&fb, &buffers, buffer_index, &buffer) ||
        pg_fb_vector_field(&fb, &buffer, BUFFER_DATA, 1, &bytes)) {
      return PICOGPT_ERR_MODEL_CORRUPT;
    }
    *data = fb.data + bytes.pos;
    *size = bytes.count;
    return PICOGPT_OK;
  }
  return PICOGPT_ERR_SIGNATURE;
}

/* ---- kernel registry ----------------------------------------------------------------------- */

static const pg_kernel kKernels[] = {
    {PG_OP_ADD, "ADD", pg_prepare_binary},
    {PG_OP_SUB, "SUB", pg_prepare_binary},
    {PG_OP_MUL, "MUL", pg_prepare_binary},
    {PG_OP_SQUARED_DIFFERENCE, "SQUARED_DIFFERENCE", pg_prepare_binary},
    {PG_OP_FULLY_CONNECTED, "FULLY_CONNECTED", pg_prepare_fully_connected},
    {PG_OP_BATCH_MATMUL, "BATCH_MATMUL", pg_prepare_batch_matmul},
    {PG_OP_SOFTMAX, "SOFTMAX", pg_prepare_softmax},
    {PG_OP_MEAN, "MEAN", pg_prepare_mean},
    {PG_OP_RSQRT, "RSQRT", pg_prepare_rsqrt},
    {PG_OP_QUANTIZE, "QUANTIZE", pg_prepare_quantize},
    {PG_OP_DEQUANTIZE, "DEQUANTIZE", pg_prepare_dequantize},
    {PG_OP_RESHAPE, "RESHAPE", pg_prepare_reshape},
    {PG_OP_SQUEEZE, "SQUEEZE", pg_prepare_reshape},
    {PG_OP_EXPAND_DIMS, "EXPAND_DIMS", pg_prepare_reshape},
    {PG_OP_TRANSPOSE, "TRANSPOSE", pg_prepare_transpose},
    {PG_OP_STRIDED_SLICE, "STRIDED_SLICE", pg_prepare_strided_slice},
    {PG_OP_CONCATENATION, "CONCATENATION", pg_prepare_concatenation},
    {PG_OP_GATHER, "GATHER", pg_prepare_gather},
    {PG_OP_SELECT_V2, "SELECT_V2", pg_prepare_select},
    {PG_OP_SELECT, "SELECT", pg_prepare_select},
    {PG_OP_LESS, "LESS", pg_prepare_compare},
    {PG_OP_LESS_EQUAL, "LESS_EQUAL", pg_prepare_compare},
};

const pg_kernel *pg_find_kernel(int32_t opcode) {
  for (size_t i = 0; i < sizeof kKernels / sizeof kKernels[0]; ++i) {
    if (kKernels[i].opcode == opcode) return &kKernels[i];
  }
  return NULL;
}

const char *pg_op_name(int32_t opcode) {
  const pg_kernel *k = pg_find_kernel(opcode);
  if (k != NULL) return k->name;
  switch (opcode) {
    case 32: return "CUSTOM";
    case 3: return "CONV_2D";
    case 65: return "SLICE";
    case 71: return "EQUAL";
    case 142: return "VAR_HANDLE";
    case 143: return "READ_VARIABLE";
    case 144: return "ASSIGN_VARIABLE";
    case 150: return "GELU";
    case 151: return "DYNAMIC_UPDATE_SLICE";
    default: return "unknown op";
  }
}
