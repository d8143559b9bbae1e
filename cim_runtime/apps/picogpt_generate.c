/* picogpt_generate: host CLI over the PicoGPT runtime.
 *
 *   picogpt_generate --prompt "ROMEO:" --length 200 --temperature 0.8 --top_k 20 --seed 7
 *   picogpt_generate path/to/model.tflite --prompt "JULIET:" --temperature 0
 *
 * Uses the embedded model (model_data.h) unless a .tflite path is given. The
 * vocabulary comes from the embedded arrays or from the model's "pico_gpt"
 * metadata. Prints the prompt and the generated text, then stats: tokens/s,
 * arena bytes, CIM HAL calls and MACs per token. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pico_gpt/runtime.h"
#if PICOGPT_HAVE_MODEL_DATA
#include "pico_gpt/model_data.h"
#endif

#define HOST_ARENA_BYTES (8u * 1024u * 1024u)
static _Alignas(16) uint8_t g_arena[HOST_ARENA_BYTES];
static picogpt_runtime g_rt;

#define MAX_VOCAB PICOGPT_MAX_VOCAB
#define MAX_TOKEN_BYTES 64
/* Storage for a vocabulary read from a .tflite's metadata (the embedded model has its own). */
static char g_vocab_bytes[UINT16_MAX]; /* offsets are uint16 */
static uint16_t g_vocab_offsets[MAX_VOCAB + 1];

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [MODEL.tflite] [--prompt TEXT] [--length N] [--temperature T] [--top_k K]\n"
          "          [--seed S] [--arena BYTES] [--quiet]\n"
          "  MODEL.tflite  exported model (default: the embedded model, if built with one)\n"
          "  --prompt      text to start from (default \"\\n\")\n"
          "  --length      tokens to generate (default 200)\n"
          "  --temperature 0 = greedy (default 0.8)\n"
          "  --top_k       keep the k most likely tokens, 0 = all (default 0)\n"
          "  --seed        sampling seed (default 1337)\n"
          "  --arena       tensor arena bytes to offer (default %u)\n",
          argv0, HOST_ARENA_BYTES);
}

/* Appends the UTF-8 encoding of code point cp. */
static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  out[0] = (char)(0xE0 | (cp >> 12));
  out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[2] = (char)(0x80 | (cp & 0x3F));
  return 3;
}

/* Parses the "itos" string array from the exporter's JSON metadata. */
static int vocab_from_metadata(const uint8_t *json, size_t n, picogpt_vocab *v) {
  const char *key = "\"itos\"";
  size_t i = 0;
  for (; i + 6 <= n && memcmp(json + i, key, 6) != 0; ++i) {
  }
  if (i + 6 > n) return -1;
  i += 6;
  while (i < n && json[i] != '[') ++i;
  ++i;
  size_t used = 0;
  int32_t size = 0;
  g_vocab_offsets[0] = 0;
  while (i < n && json[i] != ']') {
    if (json[i] != '"') {
      ++i;
      continue;
    }
    ++i;
    char buf[MAX_TOKEN_BYTES];
    size_t len = 0;
    while (i < n && json[i] != '"' && len + 4 < sizeof buf) {
      if (json[i] == '\\' && i + 1 < n) {
        const char e = (char)json[++i];
        if (e == 'n') buf[len++] = '\n';
        else if (e == 't') buf[len++] = '\t';
        else if (e == 'r') buf[len++] = '\r';
        else if (e == 'u' && i + 4 < n) {
          char hex[5] = {(char)json[i + 1], (char)json[i + 2], (char)json[i + 3], (char)json[i + 4], 0};
          len += put_utf8(buf + len, (unsigned)strtoul(hex, NULL, 16));
          i += 4;
        } else buf[len++] = e;
        ++i;
      } else {
        buf[len++] = (char)json[i++];
      }
    }
    ++i; /* closing quote */
    if (size >= MAX_VOCAB || used + len > sizeof g_vocab_bytes) return -1;
    memcpy(g_vocab_bytes + used, buf, len);
    used += len;
    g_vocab_offsets[++size] = (uint16_t)used;
  }
  *v = (picogpt_vocab){g_vocab_bytes, g_vocab_offsets, size};
  return size > 0 ? 0 : -1;
}

typedef struct printer {
  const picogpt_vocab *v;
  int quiet;
} printer;

static int on_token(void *user, int32_t token, int32_t position) {
  (void)position;
  const printer *p = (const printer *)user;
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
  const char *model_path = NULL, *prompt = "\n";
  long length = 200, top_k = 0, arena_bytes = HOST_ARENA_BYTES;
  double temperature = 0.8;
  unsigned long long seed = 1337;
  int quiet = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const int has_value = i + 1 < argc;
    if (!strcmp(a, "--prompt") && has_value) prompt = argv[++i];
    else if (!strcmp(a, "--length") && has_value) length = strtol(argv[++i], NULL, 10);
    else if (!strcmp(a, "--temperature") && has_value) temperature = strtod(argv[++i], NULL);
    else if (!strcmp(a, "--top_k") && has_value) top_k = strtol(argv[++i], NULL, 10);
    else if (!strcmp(a, "--seed") && has_value) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--arena") && has_value) arena_bytes = strtol(argv[++i], NULL, 10);
    else if (!strcmp(a, "--quiet")) quiet = 1;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(argv[0]);
      return 0;
    } else if (a[0] != '-' && model_path == NULL) model_path = a;
    else {
      fprintf(stderr, "error: unknown or incomplete argument '%s'\n", a);
      usage(argv[0]);
      return 2;
    }
  }
  if (length < 0 || length > 1000000 || arena_bytes <= 0 || arena_bytes > (long)HOST_ARENA_BYTES) {
    fprintf(stderr, "error: --length must be in [0, 1000000] and --arena in [1, %u]\n",
            HOST_ARENA_BYTES);
    return 2;
  }

  const uint8_t *model = NULL;
  size_t model_size = 0;
  picogpt_vocab v = {NULL, NULL, 0};
  if (model_path != NULL) {
    FILE *f = fopen(model_path, "rb");
    if (f == NULL) {
      fprintf(stderr, "error: cannot open %s: %s\n", model_path, strerror(errno));
      return 1;
    }
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n > 0 ? (uint8_t *)aligned_alloc(16, ((size_t)n + 15) & ~(size_t)15) : NULL;
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
      fprintf(stderr, "error: cannot read %s\n", model_path);
      fclose(f);
      return 1;
    }
    fclose(f);
    model = buf;
    model_size = (size_t)n;
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

  picogpt_status st = picogpt_init(&g_rt, model, model_size, g_arena, (size_t)arena_bytes);
  if (st != PICOGPT_OK) {
    fprintf(stderr, "error: %s: %s\n", picogpt_status_name(st), picogpt_last_error(&g_rt));
    return 1;
  }
  if (v.size == 0) {
    const uint8_t *json;
    size_t json_size;
    if (picogpt_model_metadata(model, model_size, "pico_gpt", &json, &json_size) != PICOGPT_OK ||
        vocab_from_metadata(json, json_size, &v) != 0) {
      fprintf(stderr, "error: the model has no pico_gpt metadata with a vocabulary (itos)\n");
      return 1;
    }
  }
  const picogpt_model_info *info = picogpt_info(&g_rt);
  if (v.size != info->vocab_size) {
    fprintf(stderr, "error: vocabulary has %d entries, the model %d\n", (int)v.size,
            (int)info->vocab_size);
    return 1;
  }
  static int32_t prompt_ids[1 << 16];
  const int n_prompt = picogpt_encode(&v, prompt, prompt_ids, (int32_t)(sizeof prompt_ids / 4));
  if (n_prompt <= 0) {
    fprintf(stderr,
            "error: the prompt is empty or has a character outside the vocabulary (at byte %d)\n",
            n_prompt < 0 ? -1 - n_prompt : 0);
    return 2;
  }
  picogpt_sampling sampling = {(float)temperature, (int32_t)top_k, (uint64_t)seed};
  printer p = {&v, quiet};
  if (!quiet) fputs(prompt, stdout);
  const double t0 = now_seconds();
  int32_t n_out = 0;
  st = picogpt_generate(&g_rt, prompt_ids, n_prompt, (int32_t)length, &sampling, on_token, &p,
                        NULL, &n_out);
  const double elapsed = now_seconds() - t0;
  if (!quiet) fputs("\n", stdout);
  if (st != PICOGPT_OK) {
    fprintf(stderr, "error: %s: %s\n", picogpt_status_name(st), picogpt_last_error(&g_rt));
    return 1;
  }
  const picogpt_stats *s = picogpt_get_stats(&g_rt);
  const double steps = s->steps ? (double)s->steps : 1.0;
  fprintf(stderr,
          "---\nmodel: %s, %s, vocab %d, block_size %d\n"
          "tokens: %d prompt + %d generated in %.3f s: %.1f tokens/s (%.3f ms per model step)\n"
          "arena: %zu bytes used (%zu planned: graph inputs incl. KV cache + activations; %zu persistent)\n"
          "CIM HAL: %.1f calls and %.0f MACs per token\n",
          model_path ? model_path : "embedded", info->use_kv_cache ? "KV-cache step model" : "full-window model",
          (int)info->vocab_size, (int)info->block_size, n_prompt, (int)n_out, elapsed,
          elapsed > 0 ? (double)(n_prompt + n_out) / elapsed : 0.0, 1e3 * elapsed / steps,
          info->arena_used, info->activation_bytes, info->persistent_bytes,
          (double)s->cim.calls / steps, (double)s->cim.macs / steps);
  return 0;
}
