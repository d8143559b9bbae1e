/* PicoGPT runtime: runs the INT8 TFLite models that tf_convert_to_tflite.py
 * emits, bit-exactly like the TensorFlow Lite Micro interpreter.
 *
 * C11, no dependencies, no heap. All memory comes from one caller-owned,
 * 16-byte aligned arena that picogpt_init() plans once; step() and
 * generate() allocate nothing and do no I/O.
 *
 * Usage (see apps/picogpt_generate.c):
 *
 *   static alignas(16) uint8_t arena[PICOGPT_TENSOR_ARENA_SIZE];
 *   picogpt_runtime rt;
 *   if (picogpt_init(&rt, model, model_size, arena, sizeof arena) != PICOGPT_OK)
 *     puts(picogpt_last_error(&rt));
 *   const int8_t *logits;  // (vocab_size,) quantized, see rt.logits_scale/zp
 *   picogpt_step(&rt, token, &logits);
 */
#ifndef PICO_GPT_RUNTIME_H
#define PICO_GPT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "pico_gpt/cim_hal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default arena size for the shipped model configuration (n_embd 128, 3 layers,
 * block_size 128): this runtime needs 139,136 bytes on x86-64 and 136,240 on rv32
 * (README "Memory"), 96 KiB of it the KV cache. The exact need of any model is what
 * picogpt_init() reports: rt.interp.arena_used after success, rt.interp.arena_needed
 * (and the message) after PICOGPT_ERR_ARENA_TOO_SMALL. Firmware should size its arena
 * from that measurement (cim_runtime/firmware does, with a probe run at build time),
 * not from a TFLite Micro figure: the two runtimes plan memory differently. */
#ifndef PICOGPT_TENSOR_ARENA_SIZE
#define PICOGPT_TENSOR_ARENA_SIZE (140u * 1024u)
#endif

/* Every function that can fail returns one of these. picogpt_status_name()
 * gives the enum name, picogpt_last_error() a message with the details. */
typedef enum picogpt_status {
  PICOGPT_OK = 0,
  PICOGPT_ERR_ARGUMENT,         /* NULL pointer, bad size or parameter */
  PICOGPT_ERR_MODEL_TRUNCATED,  /* an offset or length points past the end */
  PICOGPT_ERR_MODEL_CORRUPT,    /* structurally invalid flatbuffer/graph */
  PICOGPT_ERR_MODEL_VERSION,    /* schema version is not 3 */
  PICOGPT_ERR_UNSUPPORTED_OP,   /* builtin op (or option) not implemented */
  PICOGPT_ERR_UNSUPPORTED_TYPE, /* tensor type an op cannot handle */
  PICOGPT_ERR_SHAPE,            /* shapes inconsistent for an op */
  PICOGPT_ERR_QUANTIZATION,     /* missing/invalid scale or zero point */
  PICOGPT_ERR_SIGNATURE,        /* model inputs/outputs are not a PicoGPT */
  PICOGPT_ERR_ARENA_TOO_SMALL,  /* message says how many bytes are needed */
  PICOGPT_ERR_TOKEN_RANGE,      /* token id outside [0, vocab_size) */
  PICOGPT_ERR_CONTEXT_FULL,     /* position reached block_size */
  PICOGPT_ERR_EVAL,             /* a kernel rejected its input at run time */
  PICOGPT_STATUS_COUNT
} picogpt_status;

/* Error details: status plus a human-readable message. */
#define PICOGPT_ERROR_MESSAGE_SIZE 160
typedef struct picogpt_error {
  picogpt_status status;
  char message[PICOGPT_ERROR_MESSAGE_SIZE]; /* NUL-terminated */
} picogpt_error;

const char *picogpt_status_name(picogpt_status status);

/* ---------------------------------------------------------------------------
 * Generic interpreter: any model built from the supported ops.
 * ------------------------------------------------------------------------- */

/* Element types (values are the TFLite schema's TensorType). */
typedef enum picogpt_type {
  PICOGPT_FLOAT32 = 0,
  PICOGPT_INT32 = 2,
  PICOGPT_BOOL = 6,
  PICOGPT_INT8 = 9,
} picogpt_type;

#define PICOGPT_MAX_RANK 6

/* One tensor of the graph. data points into the model (constants), into the
 * arena (activations and graph inputs, planned) or into the arena's persistent
 * part (variables). Shapes are static: fixed at init. After init only the graph
 * inputs and outputs keep a record (picogpt_interpreter_input/output). */
typedef struct picogpt_tensor {
  void *data;
  const char *name;         /* NUL-terminated, from the model ("" if none) */
  int32_t dims[PICOGPT_MAX_RANK];
  int32_t rank;
  int32_t num_elements;
  uint32_t bytes;
  uint8_t type;             /* picogpt_type */
  uint8_t is_constant;      /* data lives in the model bytes */
  uint8_t is_variable;      /* persistent across invokes (resource/is_variable) */
  uint8_t has_quantization;
  float scale;              /* per-tensor scale (first one if per-channel) */
  int32_t zero_point;
  int32_t num_channel_scales;   /* > 1: per-channel along quantized_dimension */
  int32_t quantized_dimension;
  const uint8_t *channel_scales; /* little-endian float32[num_channel_scales] in the model */
  int32_t first_use, last_use;   /* op indices, for the planner (-1: none) */
  uint32_t arena_offset;         /* planned offset of non-constant tensors */
} picogpt_tensor;

struct picogpt_node; /* defined in src/kernels/kernels.h */

typedef struct picogpt_interpreter {
  const uint8_t *model;
  size_t model_size;
  uint8_t *arena;
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
  picogpt_tensor *tensors;
  void **tensor_data;       /* [num_tensors] data pointers, persistent (what ops read) */
  picogpt_tensor *io_tensors; /* [num_inputs + num_outputs] persistent records of the graph I/O */
  int32_t num_tensors;
  struct picogpt_node *nodes; /* [num_nodes], in execution order */
  int32_t num_nodes;
  const int32_t *inputs;    /* [num_inputs] tensor indices */
  int32_t num_inputs;
  const int32_t *outputs;   /* [num_outputs] tensor indices */
  int32_t num_outputs;
  void *scratch;            /* shared kernel scratch (16-byte aligned), in the arena */
  size_t scratch_bytes;
  picogpt_error error;
} picogpt_interpreter;

/* Parses and validates the model, prepares every op and plans all memory into
 * arena (16-byte aligned; unaligned bytes at its start are skipped). The
 * model bytes must outlive the interpreter. */
picogpt_status picogpt_interpreter_init(picogpt_interpreter *it, const void *model,
                                        size_t model_size, void *arena,
                                        size_t arena_size);
/* Runs every op once. Graph inputs keep their contents across calls (they are
 * planned for the whole graph and never reused), so unchanged inputs need not be
 * written again; stock TFLite Micro differs here. */
picogpt_status picogpt_interpreter_invoke(picogpt_interpreter *it);
picogpt_tensor *picogpt_interpreter_input(picogpt_interpreter *it, int index);
picogpt_tensor *picogpt_interpreter_output(picogpt_interpreter *it, int index);

/* Finds the model's metadata entry `name` (e.g. "pico_gpt", the exporter's
 * JSON with the vocabulary) without initializing anything; bounds-checked.
 * Returns PICOGPT_OK and points *data and *size at the entry in the model bytes. */
picogpt_status picogpt_model_metadata(const void *model, size_t model_size, const char *name,
                                      const uint8_t **data, size_t *size);

/* ---------------------------------------------------------------------------
 * PicoGPT: token-level API over the interpreter.
 * ------------------------------------------------------------------------- */

/* Sampling parameters. temperature <= 0 means greedy (argmax, lowest id on a
 * tie). top_k <= 0 or >= vocab_size means no top-k cut. */
typedef struct picogpt_sampling {
  float temperature;
  int32_t top_k;
  uint64_t seed;
} picogpt_sampling;

/* Called once per generated token; return non-zero to stop early. */
typedef int (*picogpt_token_callback)(void *user, int32_t token, int32_t position);

/* Work counters since the last reset. */
typedef struct picogpt_stats {
  uint32_t steps;           /* model invocations */
  cim_hal_counters cim;     /* matrix work given to the CIM HAL during those steps */
} picogpt_stats;

/* Limits of the fixed buffers inside picogpt_runtime (the CIMv3 target uses
 * block_size <= 128 and a 65-token vocabulary). */
#define PICOGPT_MAX_LAYERS 16
#define PICOGPT_MAX_CONTEXT 512
#define PICOGPT_MAX_VOCAB 1024

typedef struct picogpt_runtime {
  picogpt_interpreter interp;
  int32_t use_kv_cache;     /* 1: KV-cache step model, 0: full-window (--no_kv_cache) model */
  int32_t vocab_size;
  int32_t block_size;
  int32_t n_layer;
  int32_t n_head;
  int32_t head_size;
  int32_t position;         /* tokens in the context (next position to fill) */
  float logits_scale;       /* logits = logits_scale * (q - logits_zero_point) */
  int32_t logits_zero_point;
  const int8_t *logits;     /* (vocab_size,) of the last step, or NULL */
  /* Model tensors bound by signature (docs/model_signature.md). */
  picogpt_tensor *token_in;  /* step: int32 [1] */
  picogpt_tensor *pos_in;    /* step: int32 [1] */
  picogpt_tensor *tokens_in; /* full: int32 [1, block_size], doubles as the context */
  picogpt_tensor *logits_out;
  picogpt_tensor *k_cache[PICOGPT_MAX_LAYERS]; /* int8 [n_head, block_size, head_size], persistent */
  picogpt_tensor *v_cache[PICOGPT_MAX_LAYERS]; /* int8 [n_head, head_size, block_size], persistent */
  picogpt_tensor *k_new[PICOGPT_MAX_LAYERS];   /* int8 [n_head, 1, head_size] */
  picogpt_tensor *v_new[PICOGPT_MAX_LAYERS];   /* int8 [n_head, head_size, 1] */
  int32_t context[PICOGPT_MAX_CONTEXT];        /* tokens at positions 0..position-1 */
  int32_t sample_scratch[PICOGPT_MAX_VOCAB];   /* sampler weights */
  picogpt_stats stats;
  picogpt_error error;
} picogpt_runtime;

picogpt_status picogpt_init(picogpt_runtime *rt, const void *model, size_t model_size,
                            void *arena, size_t arena_size);
/* Forgets the context (position 0, KV cache cleared); counters restart. */
picogpt_status picogpt_reset(picogpt_runtime *rt);
/* Feeds one token at the current position; *logits (may be NULL) receives the
 * quantized next-token logits, valid until the next step. */
picogpt_status picogpt_step(picogpt_runtime *rt, int32_t token, const int8_t **logits);
/* Resets, feeds the prompt (its last block_size tokens), then samples up to
 * max_new_tokens tokens, stopping early when the callback returns non-zero.
 * When the context is full it is cropped to its last block_size tokens and
 * refilled from position 0, as the Python samplers do. Every sampled token is
 * passed to callback (may be NULL) and, if out is not NULL, stored in
 * out[0..*n_out) (out must hold max_new_tokens entries). */
picogpt_status picogpt_generate(picogpt_runtime *rt, const int32_t *prompt, int32_t prompt_len,
                                int32_t max_new_tokens, const picogpt_sampling *sampling,
                                picogpt_token_callback callback, void *user, int32_t *out,
                                int32_t *n_out);
const char *picogpt_last_error(const picogpt_runtime *rt);

/* ---------------------------------------------------------------------------
 * Sampling (integer-only, identical on host and firmware).
 * ------------------------------------------------------------------------- */

/* xorshift64* generator: s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
 * return (s * 0x2545F4914F6CDD1D) >> 32. A zero seed is replaced by
 * 0x9E3779B97F4A7C15 (the state must never be 0). */
typedef struct picogpt_rng {
  uint64_t state;
} picogpt_rng;
void picogpt_rng_seed(picogpt_rng *rng, uint64_t seed);
uint32_t picogpt_rng_next(picogpt_rng *rng);

/* A vocabulary in the exporter's layout (model_data.h): token t is the UTF-8 text
 * bytes[offsets[t] .. offsets[t + 1]). */
typedef struct picogpt_vocab {
  const char *bytes;
  const uint16_t *offsets; /* (size + 1,) */
  int32_t size;
} picogpt_vocab;

/* Greedy longest match of NUL-terminated text against the vocabulary (src/vocab.c). Returns
 * the number of ids written, or -1 - (byte offset) of the first text it cannot encode or
 * that does not fit in max_ids. */
int32_t picogpt_encode(const picogpt_vocab *vocab, const char *text, int32_t *ids,
                       int32_t max_ids);

/* Picks a token from quantized logits. scratch must hold vocab_size int32.
 * See src/sampler.c for the exact fixed-point procedure. */
int32_t picogpt_sample(const int8_t *logits, int32_t vocab_size, float logits_scale,
                       const picogpt_sampling *sampling, picogpt_rng *rng, int32_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* PICO_GPT_RUNTIME_H */
