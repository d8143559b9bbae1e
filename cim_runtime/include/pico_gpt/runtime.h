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
 *   static picogpt_runtime rt;
 *   if (picogpt_init(&rt, model, model_size, arena, sizeof arena) != PICOGPT_OK)
 *     puts(picogpt_last_error(&rt));
 *   const int8_t *logits;  // (vocab_size,) quantized, see picogpt_info(&rt)->logits_scale
 *   picogpt_step(&rt, token, &logits);
 *
 * This header is the whole public API; the interpreter underneath is internal
 * (src/interpreter.h).
 */
#ifndef PICO_GPT_RUNTIME_H
#define PICO_GPT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "pico_gpt/cim_hal.h"
#include "pico_gpt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default arena size for the shipped model configuration (n_embd 128, 3 layers,
 * block_size 128): with the default options this runtime needs 141,120 bytes on x86-64 and
 * 137,072 on rv32 (README "Memory"), 96 KiB of it the KV cache. The exact need of any model is what
 * picogpt_init() reports in picogpt_info(): arena_used after success, arena_needed
 * (and the message) after PICOGPT_ERR_ARENA_TOO_SMALL. Firmware should size its arena
 * from that measurement (cim_runtime/firmware does, with a probe run at build time),
 * not from a TFLite Micro figure: the two runtimes plan memory differently. */
#ifndef PICOGPT_TENSOR_ARENA_SIZE
#define PICOGPT_TENSOR_ARENA_SIZE (140u * 1024u)
#endif

/* Limits of the fixed buffers inside picogpt_runtime (the CIMv3 target uses
 * block_size <= 128 and a 65-token vocabulary). */
#define PICOGPT_MAX_LAYERS 16
#define PICOGPT_MAX_CONTEXT 512
#define PICOGPT_MAX_VOCAB 1024

/* The runtime's state: caller-owned storage (static or on a large stack), used
 * only through the functions below. Its size is fixed at compile time (the
 * context and sampler buffers above plus the interpreter's records); the
 * runtime checks at compile time that its state fits. */
#define PICOGPT_RUNTIME_BYTES (6536u + 96u * sizeof(void *))
typedef struct picogpt_runtime {
  union {
    max_align_t align;
    unsigned char bytes[PICOGPT_RUNTIME_BYTES];
  } opaque;
} picogpt_runtime;

/* What picogpt_init() found and planned. Valid after a successful init, except
 * arena_needed/arena_needed_exact, which are also set after
 * PICOGPT_ERR_ARENA_TOO_SMALL. */
typedef struct picogpt_model_info {
  int32_t use_kv_cache;      /* 1: KV-cache step model, 0: full-window (--no_kv_cache) model */
  int32_t vocab_size;
  int32_t block_size;        /* context length */
  float logits_scale;        /* logits = logits_scale * (q - logits_zero_point) */
  int32_t logits_zero_point;
  size_t arena_used;         /* the exact arena this model needs (alignment skip included) */
  size_t activation_bytes;   /* of which planned: graph inputs (KV cache) + activations */
  size_t persistent_bytes;   /* of which persistent: nodes, op data, I/O records, scratch */
  size_t kv_cache_bytes;     /* int8 K and V caches of all layers, in the arena (0: full model) */
  /* Bytes this model needs: = arena_used after success; after ARENA_TOO_SMALL exact when
   * arena_needed_exact, else a lower bound (the model's tables alone did not fit). */
  size_t arena_needed;
  int32_t arena_needed_exact;
} picogpt_model_info;

/* Sampling parameters. temperature <= 0 means greedy (argmax, lowest id on a
 * tie). top_k <= 0 or >= vocab_size means no top-k cut. */
typedef struct picogpt_sampling {
  float temperature;
  int32_t top_k;
  uint64_t seed;
} picogpt_sampling;

/* What generation does when the context window is full (block_size tokens) and another token
 * must be fed. The model's positions are learned and absolute, so the window cannot slide by
 * one token without re-running it from position 0. */
typedef enum picogpt_window_policy {
  /* Keep the last `keep` tokens, re-run them with the new token from position 0, then continue
   * incrementally: block_size / (block_size - keep) model steps per token on average. */
  PICOGPT_WINDOW_SHIFT = 0,
  /* Crop to the last block_size tokens for every token (shift with keep = block_size - 1): the
   * longest context every time, about block_size model steps per token past the window. */
  PICOGPT_WINDOW_EXACT = 1,
} picogpt_window_policy;

typedef struct picogpt_window {
  picogpt_window_policy policy;
  int32_t keep; /* tokens kept besides the new one, 0 <= keep < block_size (exact ignores it) */
} picogpt_window;

/* The default window for a model of this context length: shift, keep = block_size / 4 (the
 * measured trade-off of cim_runtime/README.md "Generation past the window"). */
picogpt_window picogpt_default_window(int32_t block_size);

/* Called once per generated token; return non-zero to stop early. */
typedef int (*picogpt_token_callback)(void *user, int32_t token, int32_t position);

/* Work counters since the last reset. */
typedef struct picogpt_stats {
  uint32_t steps;           /* model invocations */
  cim_hal_counters cim;     /* the CIM accelerator's work during those steps (programs: 0) */
  uint64_t cpu_macs;        /* products the CPU ran: attention (live positions only) and
                               FULLY_CONNECTED layers that did not fit the device */
} picogpt_stats;

/* Non-ideal CIM read-out and programming, simulated by the host build (src/cim_nonideal.c;
 * cim_runtime/README.md "Non-ideality simulation"). All fields zero (the default): exact,
 * bit-exact with TFLite Micro. Only the layers on the macros are affected; the CPU's products
 * stay exact. The noise is drawn from streams seeded at init: the same options and the same
 * calls give the same logits (picogpt_reset does not restart the streams). The firmware is
 * built without the simulation: there a non-zero field fails init with PICOGPT_ERR_ARGUMENT.
 *
 * Per tile t the ADC has the full scale FS_t = adc_range * R_t, where the reference range R_t
 * is adc_full_scale[t] if given (a calibration: the largest |partial sum| of the tile on
 * calibration text, picogpt_cim_peaks), else the tile's bound: the largest |partial sum| it
 * can produce, 128 * max over columns of sum |w| (no clipping, the coarsest steps). */
typedef struct picogpt_cim_nonideal {
  /* ADC resolution of each column's partial sum per tile: 2..16 bits, 2^(bits-1) - 1 levels
   * each side of 0 over [-FS_t, FS_t], clipped outside; 0: no ADC quantization. */
  int32_t adc_bits;
  float adc_range;    /* full scale as a fraction of the reference range, (0, 16]; 0: 1 */
  float out_noise;    /* additive Gaussian noise on each partial sum before the ADC, sigma
                         as a fraction of FS_t, [0, 1] (0.02: 2 %) */
  float weight_noise; /* programming noise, drawn once per weight at init: sigma as a fraction
                         of the tile's max |w|, [0, 1]; the result is rounded back to int8 */
  uint64_t seed;      /* seed of the noise streams */
  /* Calibrated reference ranges, one per tile used, each > 0, or NULL for the tiles' bounds.
   * Read at init only; adc_full_scale_count must equal picogpt_cim_info()->macros_used. */
  const int32_t *adc_full_scale;
  int32_t adc_full_scale_count;
  /* 1: record each tile's largest |partial sum| (picogpt_cim_peaks), e.g. in an exact run for
   * adc_full_scale. */
  int32_t record_peaks;
} picogpt_cim_nonideal;

/* Options of picogpt_init_with_options. A zero field takes its default. */
typedef struct picogpt_options {
  /* The CIM accelerator the mapper tiles the weights onto; zero fields take the values of
   * CIM_HAL_DEVICE_DEFAULT (32 macros of 128 x 128, 8-bit inputs and weights). */
  cim_hal_device cim_device;
  /* A model that needs more macros than the device has: 0 (default) fails init with
   * PICOGPT_ERR_CIM_CAPACITY; 1 runs the layers that do not fit on the CPU
   * (picogpt_cim_info(rt)->layers_on_cpu > 0; the apps print a warning). */
  int32_t cim_cpu_fallback;
  /* Simulated non-idealities of the macros (host builds; zero: exact). */
  picogpt_cim_nonideal cim_nonideal;
  /* 1: give the CIM driver the memory it asks for per tile (cim_hal_tile_memory_bytes), from
   * the arena. The software HAL on an x86-64 CPU with AVX-512 VNNI keeps each tile's weights
   * there as emulated cells in the order its VNNI kernel reads them: the tile products run
   * ~1.5x faster with the same results, for about rows x cols bytes of arena per tile used
   * (403,456 B for the reference model: picogpt_cim_info()->tile_memory_bytes). 0
   * (default): the arena need stays the figure above (PICOGPT_TENSOR_ARENA_SIZE). Hardware
   * drivers, the firmware and CPUs without VNNI ask for nothing either way. The host apps and
   * the Python binding turn it on. */
  int32_t cim_tile_memory;
  /* 1: keep the tables the x86-64 SIMD kernels read instead of working values out every step:
   * FULLY_CONNECTED's int32 zero-point offsets, right shifts and rounding masks per channel,
   * and the K cache's row sums (32 KB of arena for the reference model; with AVX-512 VNNI a
   * token is 2-5 % faster, with the same results). 0 (default): the arena need stays the
   * figure above. Builds without SIMD dispatch (the firmware) keep none either way. The host
   * apps and the Python binding turn it on. */
  int32_t simd_tables;
} picogpt_options;

/* Parses and validates the model, prepares every op and plans all memory into
 * arena (16-byte aligned; unaligned bytes at its start are skipped and counted).
 * The model bytes and the arena must outlive the runtime. Maps the weights onto the
 * default CIM device (picogpt_init_with_options with NULL options). */
picogpt_status picogpt_init(picogpt_runtime *rt, const void *model, size_t model_size,
                            void *arena, size_t arena_size);
/* The same with options (NULL: defaults). */
picogpt_status picogpt_init_with_options(picogpt_runtime *rt, const void *model,
                                         size_t model_size, void *arena, size_t arena_size,
                                         const picogpt_options *options);
/* Forgets the context (position 0, KV cache cleared); counters restart. */
picogpt_status picogpt_reset(picogpt_runtime *rt);
/* Feeds one token at the current position; *logits (may be NULL) receives the
 * quantized next-token logits, valid until the next step. */
picogpt_status picogpt_step(picogpt_runtime *rt, int32_t token, const int8_t **logits);
/* PICOGPT_OK if window (NULL: the default) is a valid policy with 0 <= keep < block_size for
 * this model; otherwise PICOGPT_ERR_ARGUMENT and picogpt_last_error() says what was wrong. */
picogpt_status picogpt_check_window(picogpt_runtime *rt, const picogpt_window *window);
/* Feeds tokens[0..n_tokens) after the current context, under the window policy (NULL: the
 * default) when the context is full, exactly as generate() feeds the tokens it samples. If
 * logits is not NULL, the quantized logits after token i (they predict token i + 1) go to
 * logits[i * vocab_size .. (i + 1) * vocab_size). Teacher forcing for a long text: reset, then
 * feed it in pieces. */
picogpt_status picogpt_feed(picogpt_runtime *rt, const int32_t *tokens, int32_t n_tokens,
                            const picogpt_window *window, int8_t *logits);
/* Teacher forcing over many windows in one call: each of the n_windows rows of
 * windows[n_windows][window_len] (window_len <= block_size) is fed from a reset context,
 * position 0 on, and the logits after its tokens first_row .. window_len - 1 are written to
 * logits[n_windows][window_len - first_row][vocab_size]. */
picogpt_status picogpt_score_windows(picogpt_runtime *rt, const int32_t *windows,
                                     int32_t n_windows, int32_t window_len, int32_t first_row,
                                     int8_t *logits);
/* Resets, feeds the prompt (its last block_size tokens), then samples up to
 * max_new_tokens tokens, stopping early when the callback returns non-zero. Each sampled
 * token is fed back under the window policy (NULL: picogpt_default_window). Every sampled
 * token is passed to callback (may be NULL) and, if out is not NULL, stored in
 * out[0..*n_out) (out must hold max_new_tokens entries). */
picogpt_status picogpt_generate(picogpt_runtime *rt, const int32_t *prompt, int32_t prompt_len,
                                int32_t max_new_tokens, const picogpt_sampling *sampling,
                                const picogpt_window *window, picogpt_token_callback callback,
                                void *user, int32_t *out, int32_t *n_out);
/* The message of the last failure ("" after success). */
const char *picogpt_last_error(const picogpt_runtime *rt);
/* The model's facts and the arena plan (see picogpt_model_info). */
const picogpt_model_info *picogpt_info(const picogpt_runtime *rt);
/* Tokens in the context: the position the next step fills. */
int32_t picogpt_position(const picogpt_runtime *rt);
/* Work since the last reset. */
const picogpt_stats *picogpt_get_stats(const picogpt_runtime *rt);

/* ---------------------------------------------------------------------------
 * The CIM mapping (src/cim_map.c): every FULLY_CONNECTED (its weights are constant) is
 * split into tiles of the device's macros at init, one tile per macro, in the order the
 * layers run. A layer whose tiles do not all fit into the macros left runs on the CPU
 * (with cim_cpu_fallback) or fails init. BATCH_MATMUL (attention: activation x
 * activation products over the KV cache) always runs on the CPU: its right operand
 * changes every step, and writing it into macros would cost a programming pass per token.
 * ------------------------------------------------------------------------- */

/* One FULLY_CONNECTED layer: an out_features x in_features weight matrix. */
typedef struct picogpt_cim_layer {
  int32_t op_index;     /* the operator's index in the model */
  int32_t out_features; /* N: outputs, spread over macro columns */
  int32_t in_features;  /* K: inputs, spread over macro rows */
  int32_t products;     /* input vectors per step (1 in the step model, block_size in the
                           full-window one) */
  int32_t row_tiles;    /* ceil(K / device rows): partial sums the runtime adds up */
  int32_t col_tiles;    /* ceil(N / device cols) */
  int32_t first_tile;   /* tiles first_tile .. first_tile + row_tiles * col_tiles - 1, column
                           tile by column tile; -1: the layer runs on the CPU */
} picogpt_cim_layer;

/* The whole mapping; MAC counts are per step (one token). */
typedef struct picogpt_cim_mapping {
  cim_hal_device device;      /* the device mapped onto (defaults filled in) */
  int32_t num_layers;         /* FULLY_CONNECTED layers */
  int32_t layers_on_cpu;      /* of which did not fit and run on the CPU */
  int32_t macros_needed;      /* tiles of all layers */
  int32_t macros_used;        /* tiles on the device */
  uint64_t weights_on_macros; /* weights the used macros hold (utilisation: / (macros_used *
                                 rows * cols)) */
  uint64_t macs_on_macros;    /* FULLY_CONNECTED MACs on the accelerator */
  uint64_t macs_fc_on_cpu;    /* FULLY_CONNECTED MACs of the layers on the CPU */
  uint64_t macs_batch_matmul; /* BATCH_MATMUL MACs (CPU) over a full context; the step model
                                 touches only the live positions (picogpt_get_stats) */
  uint64_t tile_memory_bytes; /* arena given to the driver per tile (options.cim_tile_memory) */
} picogpt_cim_mapping;

/* The mapping after a successful init (NULL before). */
const picogpt_cim_mapping *picogpt_cim_info(const picogpt_runtime *rt);
/* Layer `index` (0 .. num_layers - 1, in execution order); PICOGPT_ERR_ARGUMENT otherwise. */
picogpt_status picogpt_cim_layer_info(const picogpt_runtime *rt, int32_t index,
                                      picogpt_cim_layer *layer);

/* The largest |partial sum| each tile produced since init (peaks[macros_used], in tile
 * order), recorded with cim_nonideal.record_peaks; PICOGPT_ERR_ARGUMENT without it, or if n is
 * not macros_used. Partial sums before any simulated noise or ADC. */
picogpt_status picogpt_cim_peaks(picogpt_runtime *rt, int32_t *peaks, int32_t n);

/* Cost model parameters (cim_runtime/README.md, "Cost model", has the sources). Energies
 * in femtojoules (1e-15 J); integers, so the firmware needs no floating point. */
typedef struct picogpt_cim_cost_params {
  uint32_t clock_hz;              /* clock of the RISC-V core and the macros */
  uint32_t input_bits_per_cycle;  /* input bits a macro applies per cycle (1: bit-serial) */
  uint32_t cell_bits;             /* weight bits per memory cell: a weight spans
                                     weight_bits / cell_bits bit lines */
  uint32_t columns_per_adc;       /* bit lines sharing one ADC (read one after another) */
  uint32_t adc_cycles;            /* cycles per conversion */
  uint32_t mac_energy_fj;         /* per int8 x int8 MAC in the array, ADC excluded */
  uint32_t conversion_energy_fj;  /* per ADC conversion */
  uint32_t program_cycles_per_row;   /* to write one word line of a tile */
  uint32_t program_energy_fj_per_bit; /* to write one weight bit */
  uint32_t cpu_energy_fj_per_instruction; /* the RISC-V core, one instruction per cycle */
} picogpt_cim_cost_params;
#define PICOGPT_CIM_COST_DEFAULT {50000000u, 1u, 1u, 8u, 1u, 194u, 480u, 1u, 25u, 33400u}

/* What one step (token) costs; the program_* fields are paid once, at init. */
typedef struct picogpt_cim_cost {
  uint64_t cim_cycles;       /* the macros' products, one after another (the HAL is
                                synchronous): input cycles x ADC rounds x adc_cycles each */
  uint64_t conversions;      /* ADC conversions: input cycles x bit lines read per product */
  uint64_t cim_energy_fj;    /* MACs x mac_energy + conversions x conversion_energy */
  uint64_t cpu_instructions; /* executed by the core outside the accelerator (as given) */
  uint64_t cpu_energy_fj;
  uint64_t cycles;           /* cpu_instructions + cim_cycles: the core waits for each product */
  uint64_t energy_fj;        /* cim_energy_fj + cpu_energy_fj */
  uint64_t tokens_per_s_milli; /* 1000 * clock_hz / cycles */
  uint64_t clock_hz;         /* the clock the figures are for (params->clock_hz) */
  uint64_t program_cycles;   /* writing every tile at init */
  uint64_t program_energy_fj;
} picogpt_cim_cost;

/* The cost of one step of this model on its device. cpu_instructions_per_token is what the
 * RISC-V core executes per token outside the accelerator, measured (the firmware's
 * cpu_instructions_per_token); params NULL: PICOGPT_CIM_COST_DEFAULT. */
picogpt_status picogpt_cim_cost_of(const picogpt_runtime *rt, const picogpt_cim_cost_params *params,
                                   uint64_t cpu_instructions_per_token, picogpt_cim_cost *cost);

/* Finds the model's metadata entry `name` (e.g. "pico_gpt", the exporter's
 * JSON with the vocabulary) without initializing anything; bounds-checked.
 * Returns PICOGPT_OK and points *data and *size at the entry in the model bytes. */
picogpt_status picogpt_model_metadata(const void *model, size_t model_size, const char *name,
                                      const uint8_t **data, size_t *size);

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

/* Picks a token from quantized logits. scratch must hold vocab_size int32.
 * See src/sampler.c for the exact fixed-point procedure. */
int32_t picogpt_sample(const int8_t *logits, int32_t vocab_size, float logits_scale,
                       const picogpt_sampling *sampling, picogpt_rng *rng, int32_t *scratch);

/* ---------------------------------------------------------------------------
 * Vocabulary.
 * ------------------------------------------------------------------------- */

/* ---- SIMD kernels (x86-64 hosts) ------------------------------------------------------
 * The int8 products, requantization and elementwise kernels exist in several versions with
 * bit-identical results. An x86-64 build (GCC or clang, no -march flags needed) carries all of
 * them; when the program loads, the runtime picks the best one the CPU and the OS support
 * (CPUID, XGETBV). Other targets, and builds with PICOGPT_NO_SIMD, have the scalar one only.
 * The choice is process-wide: select a path before initializing or stepping runtimes, not
 * while another thread steps one. */
typedef enum picogpt_simd {
  PICOGPT_SIMD_SCALAR = 0,  /* portable C (what RISC-V runs); every CPU */
  PICOGPT_SIMD_AVX2 = 1,    /* AVX2 + FMA: Intel Haswell, AMD Zen and later */
  PICOGPT_SIMD_AVX512VNNI = 2, /* AVX-512 F/BW/VL + VNNI: Intel Cascade Lake, AMD Zen 4 and later */
  PICOGPT_SIMD_COUNT
} picogpt_simd;
/* The best path this CPU supports (what a program starts with), and the active one. */
picogpt_simd picogpt_simd_best(void);
picogpt_simd picogpt_simd_active(void);
/* 1 if this build and CPU can run path (every path up to picogpt_simd_best()), else 0. */
int picogpt_simd_supported(picogpt_simd path);
/* Makes path the active one; PICOGPT_ERR_ARGUMENT (nothing changes) if it is not supported. */
picogpt_status picogpt_simd_select(picogpt_simd path);
/* "scalar", "avx2", "avx512vnni"; NULL for a value out of range. */
const char *picogpt_simd_name(picogpt_simd path);
/* The path of a name above, or "auto" (the best); PICOGPT_ERR_ARGUMENT for any other text. */
picogpt_status picogpt_simd_parse(const char *name, picogpt_simd *path);

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

#ifdef __cplusplus
}
#endif

#endif /* PICO_GPT_RUNTIME_H */
