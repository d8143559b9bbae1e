/* Model reader: the TFLite flatbuffer (schema subset) into the interpreter's
 * tensor table (init-only, at the arena's head) and node table (persistent),
 * every field validated against the bytes and the limits below; and the
 * public lookup of a metadata entry. */
#include "model_reader.h"

#include <string.h>

#include "kernels/kernels.h"
#include "pico_gpt/runtime.h"

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

/* Limits of the graphs this reader accepts. */
#define PG_MAX_TENSORS 8192
#define PG_MAX_NODES 8192
#define PG_MAX_NODE_IO 64
#define PG_MAX_GRAPH_IO 64

#define FB_CHECK(expr, what)                                                              \
  do {                                                                                    \
    if ((expr) != 0)                                                                      \
      return pg_fail(it, PICOGPT_ERR_MODEL_TRUNCATED, "model bytes invalid: %s", (what)); \
  } while (0)

static picogpt_status parse_tensor(pg_interpreter *it, const pg_fb *fb,
                                   const pg_fb_vector *buffers, const pg_fb_table *tt,
                                   int32_t index, pg_tensor *t) {
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
  t->is_variable = is_variable ? 1 : 0; /* first_use, last_use: pg_compute_lifetimes */
  const uint32_t elem_size = pg_type_size(type);
  if (type < 0 || elem_size == 0) {
    return pg_fail(it, PICOGPT_ERR_UNSUPPORTED_TYPE, "tensor %d '%s': type %s (%d) not supported",
                   (int)index, t->name, pg_type_name(type), (int)type);
  }
  if (shape.count > PG_MAX_RANK) {
    return pg_fail(it, PICOGPT_ERR_SHAPE, "tensor %d '%s': rank %u exceeds %d", (int)index, t->name,
                   (unsigned)shape.count, PG_MAX_RANK);
  }
  t->rank = (int32_t)shape.count;
  /* The limit also bounds the product of the non-zero dimensions: a zero dimension makes the
   * tensor empty, but kernels still multiply its other dimensions (strides) in int32. */
  int64_t elements = 1, extent = 1;
  for (uint32_t d = 0; d < shape.count; ++d) {
    const int32_t dim = pg_fb_vec_i32(fb, &shape, d);
    if (dim < 0) {
      return pg_fail(it, PICOGPT_ERR_SHAPE, "tensor %d '%s': dynamic or negative dimension %d",
                     (int)index, t->name, (int)dim);
    }
    t->dims[d] = dim;
    elements *= dim;
    extent *= dim > 0 ? dim : 1;
    if (extent * (int64_t)elem_size > 0x40000000) {
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
      /* One zero point for every channel is TFLite Micro's space-saving form for per-channel
       * weights (their zero points are all 0); the exporter's C arrays use it. LiteRT wants
       * one per scale. */
      const int one_zero_point = zero_points.count == 1 && scales.count > 1;
      if (zero_points.count != scales.count && !one_zero_point) {
        return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                       "tensor %d '%s': %u scales but %u zero points (expected as many, or 1)",
                       (int)index, t->name, (unsigned)scales.count,
                       (unsigned)zero_points.count);
      }
      for (uint32_t i = 0; i < scales.count; ++i) {
        const float s = pg_fb_vec_f32(fb, &scales, i);
        if (!(s > 0.0f && s < 3.0e38f)) {
          return pg_fail(it, PICOGPT_ERR_QUANTIZATION,
                         "tensor %d '%s': scale must be positive and finite", (int)index, t->name);
        }
        const int64_t zp = pg_fb_vec_i64(fb, &zero_points, one_zero_point ? 0 : i);
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
        for (uint32_t i = 0; i < zero_points.count; ++i) {
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
static picogpt_status index_vector(pg_interpreter *it, pg_arena *arena, const pg_fb *fb,
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
  int32_t *copy = (int32_t *)pg_arena_persistent(arena, (size_t)v->count * 4u);
  if (copy == NULL) return it->error.status;
  for (uint32_t i = 0; i < v->count; ++i) copy[i] = pg_fb_vec_i32(fb, v, i);
  *out = copy;
  return PICOGPT_OK;
}

picogpt_status pg_read_model(pg_interpreter *it, pg_arena *arena, const pg_fb *fb,
                             pg_node_options **node_options) {
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
  it->tensors = (pg_tensor *)pg_arena_init_only(arena, sizeof(pg_tensor) * tensors.count);
  if (it->tensors == NULL) return it->error.status;
  for (uint32_t i = 0; i < tensors.count; ++i) {
    pg_fb_table tt;
    FB_CHECK(pg_fb_vector_table(fb, &tensors, i, &tt), "tensor table");
    const picogpt_status st = parse_tensor(it, fb, &buffers, &tt, (int32_t)i, &it->tensors[i]);
    if (st != PICOGPT_OK) return st;
  }

  const int32_t *graph_inputs, *graph_outputs;
  picogpt_status st = index_vector(it, arena, fb, &inputs, 0, "subgraph inputs", &graph_inputs);
  if (st != PICOGPT_OK) return st;
  st = index_vector(it, arena, fb, &outputs, 0, "subgraph outputs", &graph_outputs);
  if (st != PICOGPT_OK) return st;
  it->inputs = graph_inputs;
  it->num_inputs = (int32_t)inputs.count;
  it->outputs = graph_outputs;
  it->num_outputs = (int32_t)outputs.count;

  it->num_nodes = (int32_t)operators.count;
  it->nodes = (pg_node *)pg_arena_persistent(arena, sizeof(pg_node) * operators.count);
  if (it->nodes == NULL) return it->error.status;
  pg_node_options *all_options =
      (pg_node_options *)pg_arena_init_only(arena, sizeof(pg_node_options) * operators.count);
  if (all_options == NULL) return it->error.status;
  *node_options = all_options;
  for (uint32_t i = 0; i < operators.count; ++i) {
    pg_node *node = &it->nodes[i];
    pg_node_options *options = &all_options[i];
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
    st = index_vector(it, arena, fb, &op_inputs, 1, "operator inputs", &ins);
    if (st != PICOGPT_OK) return st;
    st = index_vector(it, arena, fb, &op_outputs, 0, "operator outputs", &outs);
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

