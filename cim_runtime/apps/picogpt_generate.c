/* picogpt_generate: host CLI over the PicoGPT runtime.
 *
 *   picogpt_generate --prompt "ROMEO:" --length 200 --temperature 0.8 --top_k 20 --seed 7
 *   picogpt_generate path/to/model.tflite --prompt "JULIET:" --temperature 0
 *   picogpt_generate --length 500 --window exact          # crop per token past the window
 *
 * Uses the embedded model (model_data.h) unless a .tflite path is given. The
 * vocabulary comes from the embedded arrays or from the model's "pico_gpt"
 * metadata. Prints the prompt and the generated text, then stats: tokens/s, time
 * and model steps per generated token, arena bytes, CIM tile products and MACs per
 * step; --cim_report adds the mapping of the weights onto the CIM macros and the cost
 * model's figures per token. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cim_report.h"
#include "cli_options.h"
#include "metadata_vocab.h"
#include "model_file.h"
#include "pico_gpt/runtime.h"
#include "simd_choice.h"
#if PICOGPT_HAVE_MODEL_DATA
#include "embedded_model.h" /* the model's header, picked by cmake/picogpt_model.cmake */
#endif

#define HOST_ARENA_BYTES (8u * 1024u * 1024u)
static _Alignas(16) uint8_t g_arena[HOST_ARENA_BYTES];
static picogpt_runtime g_rt;
static metadata_vocab g_metadata_vocab; /* a .tflite's vocabulary (embedded models have theirs) */
/* Reachable until exit, so the leak checker of the sanitizer build stays quiet. */
static uint8_t *g_model_file;
static int32_t *g_prompt_ids;
static int32_t *g_adc_ranges; /* --cim_adc_calibrate: each tile's calibrated ADC range */

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [MODEL.tflite] [--prompt TEXT] [--length N] [--temperature T] [--top_k K]\n"
          "          [--seed S] [--window shift|exact] [--keep N] [--arena BYTES] [--quiet]\n"
          "          [--cim_macros N] [--cim_rows R] [--cim_cols C] [--cim_cpu_fallback]\n"
          "          [--cim_report] [--cim_cpu_instructions N] [--simd PATH]\n"
          "          [--cim_adc_bits B] [--cim_adc_range F] [--cim_out_noise PCT]\n"
          "          [--cim_weight_noise PCT] [--cim_noise_seed S] [--cim_adc_calibrate]\n"
          "          [--cim_no_tile_memory] [--simd_no_tables]\n"
          "  MODEL.tflite  exported model (default: the embedded model, if built with one)\n"
          "  --prompt      text to start from (default \"\\n\")\n"
          "  --length      tokens to generate, 0..1000000 (default 200)\n"
          "  --temperature 0..100, digits with at most one '.'; 0 = greedy (default 0.8)\n"
          "  --top_k       keep the k most likely tokens, 0..%d, 0 = all (default 0)\n"
          "  --seed        sampling seed, 0..2^64-1 (default 1337)\n"
          "  --window      when the context is full: shift = keep the last --keep tokens and\n"
          "                continue from there, exact = crop to the last block_size tokens for\n"
          "                every token, ~block_size times slower (default shift)\n"
          "  --keep        tokens a shift keeps, 0..block_size-1 (default block_size/4)\n"
          "  --arena       tensor arena bytes to offer, 1..%u (default %u)\n"
          "  --cim_macros  CIM macros on the device, 1..65535 (default %d)\n"
          "  --cim_rows, --cim_cols  rows (inputs) and columns (outputs) per macro: 128, 256\n"
          "                or 512 (default 128)\n"
          "  --cim_cpu_fallback  run the layers that do not fit the macros on the CPU\n"
          "                (default: fail)\n"
          "  --cim_report  print the mapping onto the macros and the cost per token\n"
          "  --cim_cpu_instructions  the RISC-V core's instructions per token outside the\n"
          "                accelerator, as the firmware measures them, for tokens/s and uJ/token\n"
          "  --simd        host kernels: auto, scalar, avx2 or avx512vnni, all bit-exact\n"
          "                (default: PICOGPT_SIMD if set, else auto = the best this CPU runs)\n"
          "  --cim_no_tile_memory  give the CIM driver no tile memory: the products read the\n"
          "                model's row-major weights (default: the emulated cells, ~1.5x\n"
          "                faster products on x86-64 with AVX-512 VNNI)\n"
          "  --simd_no_tables  keep none of the tables the x86-64 kernels read instead of\n"
          "                working values out; with --cim_no_tile_memory the arena need is then\n"
          "                PICOGPT_TENSOR_ARENA_SIZE's figure (default: keep them, ~32 KB)\n"
          "  non-ideal macros, simulated (host only; default: exact, bit-exact with TFLite Micro;\n"
          "  cim_runtime/README.md \"Non-ideality simulation\"):\n"
          "  --cim_adc_bits  ADC bits per column partial sum of a tile, 2..16; 0 = no ADC\n"
          "                (default)\n"
          "  --cim_adc_range ADC full scale as a fraction of the tile's bound (its largest\n"
          "                possible |partial sum|), 0..16; 0 = 1 (default)\n"
          "  --cim_out_noise Gaussian read-out noise, sigma in %% of the full scale, 0..100\n"
          "  --cim_weight_noise  programming noise, sigma in %% of the tile's max |w|, 0..100\n"
          "  --cim_noise_seed  seed of the noise, 0..2^64-1 (default 0)\n"
          "  --cim_adc_calibrate  reference range of each tile's ADC = its largest |partial\n"
          "                sum| in an exact run of the same generation first (default: the\n"
          "                tile's bound)\n",
          argv0, PICOGPT_MAX_VOCAB, HOST_ARENA_BYTES, HOST_ARENA_BYTES, CIM_HAL_DEFAULT_MACROS);
}

/* The vocabulary of a .tflite from its "pico_gpt" metadata; 0, or -1 after printing why. */
static int vocab_from_model(const char *path, const uint8_t *model, size_t size,
                            picogpt_vocab *vocab) {
  const uint8_t *json;
  size_t json_size;
  if (picogpt_model_metadata(model, size, "pico_gpt", &json, &json_size) != PICOGPT_OK) {
    fprintf(stderr,
            "error: model file '%s' has no \"pico_gpt\" metadata with the vocabulary; export "
            "it with tf_convert_to_tflite.py\n",
            path);
    return -1;
  }
  char why[192];
  if (metadata_vocab_read(json, json_size, &g_metadata_vocab, why, sizeof why) != 0) {
    fprintf(stderr, "error: model file '%s': the vocabulary in its metadata is unreadable: %s\n",
            path, why);
    return -1;
  }
  *vocab = g_metadata_vocab.vocab;
  return 0;
}

static double now_seconds(void);

/* Prints each token and notes when the first and the latest arrived: the interval between
 * them is the decode cost of n_out - 1 tokens (steps, refills and sampling; printing too
 * unless --quiet), measured as the firmware measures instructions per token. */
typedef struct printer {
  const picogpt_vocab *v;
  int quiet;
  const picogpt_runtime *rt;
  int32_t generated;
  double first_time, last_time;
  uint32_t first_steps, last_steps;
} printer;

static int on_token(void *user, int32_t token, int32_t position) {
  (void)position;
  printer *p = (printer *)user;
  p->last_time = now_seconds();
  p->last_steps = picogpt_get_stats(p->rt)->steps;
  if (p->generated++ == 0) {
    p->first_time = p->last_time;
    p->first_steps = p->last_steps;
  }
  if (!p->quiet) {
    const uint16_t *off = p->v->offsets;
    fwrite(p->v->bytes + off[token], 1, (size_t)(off[token + 1] - off[token]), stdout);
    fflush(stdout);
  }
  return 0;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  const char *prompt = "\n";
  int64_t length = 200, top_k = 0, arena_bytes = HOST_ARENA_BYTES;
  double temperature = 0.8;
  uint64_t seed = 1337;
  int64_t window_policy = PICOGPT_WINDOW_SHIFT, keep = -1; /* -1: the model's default */
  int quiet = 0, help = 0, cim_fallback = 0, cim_report = 0, cim_adc_calibrate = 0;
  int cim_no_tile_memory = 0, simd_no_tables = 0;
  int64_t cim_macros = CIM_HAL_DEFAULT_MACROS, cim_rows = 128, cim_cols = 128;
  int64_t cim_cpu_instructions = 0, cim_adc_bits = 0;
  double cim_adc_range = 0.0, cim_out_noise_pct = 0.0, cim_weight_noise_pct = 0.0;
  uint64_t cim_noise_seed = 0;
  const char *simd = NULL;
  const cli_option options[] = {
      {"--prompt", CLI_TEXT, &prompt, 0, 0, NULL},
      {"--length", CLI_INT, &length, 0, 1000000, NULL},
      {"--temperature", CLI_DECIMAL, &temperature, 0, 100, NULL},
      {"--top_k", CLI_INT, &top_k, 0, PICOGPT_MAX_VOCAB, NULL},
      {"--seed", CLI_UINT64, &seed, 0, 0, NULL},
      {"--window", CLI_CHOICE, &window_policy, 0, 0, cli_window_policies},
      {"--keep", CLI_INT, &keep, 0, PICOGPT_MAX_CONTEXT - 1, NULL},
      {"--arena", CLI_INT, &arena_bytes, 1, HOST_ARENA_BYTES, NULL},
      {"--quiet", CLI_FLAG, &quiet, 0, 0, NULL},
      {"--cim_macros", CLI_INT, &cim_macros, 1, 65535, NULL},
      {"--cim_rows", CLI_INT, &cim_rows, 128, 512, NULL},
      {"--cim_cols", CLI_INT, &cim_cols, 128, 512, NULL},
      {"--cim_cpu_fallback", CLI_FLAG, &cim_fallback, 0, 0, NULL},
      {"--cim_report", CLI_FLAG, &cim_report, 0, 0, NULL},
      {"--cim_cpu_instructions", CLI_INT, &cim_cpu_instructions, 0, 1000000000000, NULL},
      {"--cim_adc_bits", CLI_INT, &cim_adc_bits, 0, 16, NULL},
      {"--cim_adc_range", CLI_DECIMAL, &cim_adc_range, 0, 16, NULL},
      {"--cim_out_noise", CLI_DECIMAL, &cim_out_noise_pct, 0, 100, NULL},
      {"--cim_weight_noise", CLI_DECIMAL, &cim_weight_noise_pct, 0, 100, NULL},
      {"--cim_noise_seed", CLI_UINT64, &cim_noise_seed, 0, 0, NULL},
      {"--cim_adc_calibrate", CLI_FLAG, &cim_adc_calibrate, 0, 0, NULL},
      {"--simd", CLI_TEXT, &simd, 0, 0, NULL},
      {"--cim_no_tile_memory", CLI_FLAG, &cim_no_tile_memory, 0, 0, NULL},
      {"--simd_no_tables", CLI_FLAG, &simd_no_tables, 0, 0, NULL},
      {"--help", CLI_FLAG, &help, 0, 0, NULL},
      {"-h", CLI_FLAG, &help, 0, 0, NULL},
  };
  const char *model_path = NULL;
  int n_paths = 0;
  char why[256];
  if (cli_parse(options, (int)(sizeof options / sizeof options[0]), argc, argv, 1, &model_path,
                1, &n_paths, why, sizeof why) != 0) {
    fprintf(stderr, "error: %s\n", why);
    usage(argv[0]);
    return 2;
  }
  if (help) {
    usage(argv[0]);
    return 0;
  }
  if (apply_simd_choice(simd) != 0) return 2;

  const uint8_t *model = NULL;
  size_t model_size = 0;
  picogpt_vocab v = {NULL, NULL, 0};
  if (model_path != NULL) {
    g_model_file = read_model_file(model_path, &model_size);
    if (g_model_file == NULL) return 1;
    model = g_model_file;
  } else {
#if PICOGPT_HAVE_MODEL_DATA
    model = g_pico_gpt_model_data;
    model_size = g_pico_gpt_model_data_len;
    v = (picogpt_vocab){g_pico_gpt_vocab, g_pico_gpt_vocab_offsets, PICOGPT_VOCAB_SIZE};
#else
    fprintf(stderr, "error: built without an embedded model; pass a .tflite path\n");
    usage(argv[0]);
    return 2;
#endif
  }

  /* The runtime checks the device (rows and cols of 128, 256 or 512) and the simulation's
   * parameters (adc_bits 1 is refused there), and says what is wrong. */
  const picogpt_cim_nonideal nonideal = {(int32_t)cim_adc_bits,   (float)cim_adc_range,
                                         (float)(cim_out_noise_pct / 100.0),
                                         (float)(cim_weight_noise_pct / 100.0),
                                         cim_noise_seed,          NULL,
                                         0,                       0};
  picogpt_options init_options = {
      {(int32_t)cim_macros, (int32_t)cim_rows, (int32_t)cim_cols, 8, 8}, cim_fallback, nonideal,
      !cim_no_tile_memory, !simd_no_tables};
  if (cim_adc_calibrate) { /* first an exact run that records the peaks (below) */
    init_options.cim_nonideal = (picogpt_cim_nonideal){.record_peaks = 1};
  }
  picogpt_status st = picogpt_init_with_options(&g_rt, model, model_size, g_arena,
                                                (size_t)arena_bytes, &init_options);
  if (st != PICOGPT_OK) {
    fprintf(stderr, "error: %s: %s\n", picogpt_status_name(st), picogpt_last_error(&g_rt));
    return 1;
  }
  cim_report_warn_fallback(stderr, &g_rt);
  if (v.size == 0 && vocab_from_model(model_path, model, model_size, &v) != 0) return 1;
  const picogpt_model_info *info = picogpt_info(&g_rt);
  if (v.size != info->vocab_size) {
    fprintf(stderr, "error: %s: the vocabulary has %d tokens but the model's logits %d\n",
            model_path ? model_path : "embedded model", (int)v.size, (int)info->vocab_size);
    return 1;
  }
  /* Every token is at least one byte: strlen(prompt) ids always suffice. */
  const size_t prompt_bytes = strlen(prompt);
  if (prompt_bytes == 0 || prompt_bytes > INT32_MAX / 2) {
    fprintf(stderr, "error: --prompt must have 1 to %d bytes, has %zu\n", INT32_MAX / 2,
            prompt_bytes);
    return 2;
  }
  g_prompt_ids = (int32_t *)malloc(sizeof(int32_t) * prompt_bytes);
  const int32_t n_prompt =
      g_prompt_ids ? picogpt_encode(&v, prompt, g_prompt_ids, (int32_t)prompt_bytes) : -1;
  if (n_prompt <= 0) {
    fprintf(stderr, "error: the prompt has a character outside the vocabulary (at byte %d)\n",
            (int)(-1 - n_prompt));
    return 2;
  }
  picogpt_window window = picogpt_default_window(info->block_size);
  window.policy = (picogpt_window_policy)window_policy;
  if (keep >= 0) window.keep = (int32_t)keep;
  if (picogpt_check_window(&g_rt, &window) != PICOGPT_OK) {
    fprintf(stderr, "error: bad option '--keep %d': %s\n", (int)window.keep,
            picogpt_last_error(&g_rt));
    return 2;
  }
  picogpt_sampling sampling = {(float)temperature, (int32_t)top_k, (uint64_t)seed};
  if (cim_adc_calibrate) {
    st = picogpt_generate(&g_rt, g_prompt_ids, n_prompt, (int32_t)length, &sampling, &window,
                          NULL, NULL, NULL, NULL);
    const int32_t tiles = picogpt_cim_info(&g_rt)->macros_used;
    g_adc_ranges = (int32_t *)malloc(sizeof(int32_t) * (size_t)(tiles > 0 ? tiles : 1));
    if (st == PICOGPT_OK) {
      st = g_adc_ranges ? picogpt_cim_peaks(&g_rt, g_adc_ranges, tiles) : PICOGPT_ERR_ARGUMENT;
    }
    /* A tile that only ever summed to 0 (unlikely) keeps a range of 1 LSB: it reads 0 exactly. */
    for (int32_t t = 0; st == PICOGPT_OK && t < tiles; ++t) {
      if (g_adc_ranges[t] == 0) g_adc_ranges[t] = 1;
    }
    init_options.cim_nonideal = nonideal;
    init_options.cim_nonideal.adc_full_scale = g_adc_ranges;
    init_options.cim_nonideal.adc_full_scale_count = tiles;
    if (st == PICOGPT_OK) {
      st = picogpt_init_with_options(&g_rt, model, model_size, g_arena, (size_t)arena_bytes,
                                     &init_options);
    }
    if (st != PICOGPT_OK) {
      fprintf(stderr, "error: --cim_adc_calibrate: %s: %s\n", picogpt_status_name(st),
              picogpt_last_error(&g_rt));
      return 1;
    }
    info = picogpt_info(&g_rt);
  }
  printer p = {&v, quiet, &g_rt, 0, 0.0, 0.0, 0, 0};
  if (!quiet) fputs(prompt, stdout);
  const double t0 = now_seconds();
  int32_t n_out = 0;
  st = picogpt_generate(&g_rt, g_prompt_ids, n_prompt, (int32_t)length, &sampling, &window,
                        on_token, &p, NULL, &n_out);
  const double elapsed = now_seconds() - t0;
  if (!quiet) fputs("\n", stdout);
  if (st != PICOGPT_OK) {
    fprintf(stderr, "error: %s: %s\n", picogpt_status_name(st), picogpt_last_error(&g_rt));
    return 1;
  }
  const picogpt_stats *s = picogpt_get_stats(&g_rt);
  char keep_text[32] = ""; /* exact crops per token: its keep means nothing */
  if (window.policy == PICOGPT_WINDOW_SHIFT) {
    snprintf(keep_text, sizeof keep_text, ", keep %d", (int)window.keep);
  }
  const double decode_seconds = p.last_time - p.first_time;
  const uint32_t decode_steps = p.last_steps - p.first_steps;
  const double steps = s->steps ? (double)s->steps : 1.0;
  fprintf(stderr,
          "---\nmodel: %s, %s, vocab %d, block_size %d; window %s%s\n"
          "tokens: %d prompt + %d generated in %.3f s: %.1f tokens/s, %.1f us per generated "
          "token (%.3f ms per model step, %.2f steps per generated token)\n"
          "arena: %zu bytes used (%zu planned: graph inputs incl. KV cache + activations; "
          "%zu persistent, of which %llu tile memory)\n"
          "CIM HAL: %.1f tile products and %.0f MACs per token (host kernels: %s)\n",
          model_path ? model_path : "embedded",
          info->use_kv_cache ? "KV-cache step model" : "full-window model",
          (int)info->vocab_size, (int)info->block_size, cli_window_policies[window.policy],
          keep_text, n_prompt, (int)n_out, elapsed,
          elapsed > 0 ? (double)(n_prompt + n_out) / elapsed : 0.0,
          n_out > 1 ? 1e6 * decode_seconds / (double)(n_out - 1) : 0.0, 1e3 * elapsed / steps,
          n_out > 1 ? (double)decode_steps / (double)(n_out - 1) : 0.0,
          info->arena_used, info->activation_bytes, info->persistent_bytes,
          (unsigned long long)picogpt_cim_info(&g_rt)->tile_memory_bytes,
          (double)s->cim.matvecs / steps, (double)s->cim.macs / steps,
          picogpt_simd_name(picogpt_simd_active()));
  if (cim_adc_bits || cim_out_noise_pct > 0 || cim_weight_noise_pct > 0) {
    fprintf(stderr,
            "CIM non-ideal (simulated): ADC %d bits (0: none), range %g x each tile's %s; "
            "read-out noise %g %%, weight noise %g %%, seed %llu\n",
            (int)cim_adc_bits, cim_adc_range > 0 ? cim_adc_range : 1.0,
            cim_adc_calibrate ? "calibrated peak" : "bound", cim_out_noise_pct,
            cim_weight_noise_pct, (unsigned long long)cim_noise_seed);
  }
  if (cim_report) cim_report_print(stderr, &g_rt, (uint64_t)cim_cpu_instructions);
  return 0;
}
