/* picogpt_firmware: PicoGPT on bare-metal RISC-V (QEMU virt, semihosting for I/O and exit).
 *
 *   cmake --preset riscv-release && cmake --build --preset riscv-release-build --target run-qemu
 *   scripts/run_qemu.sh build/riscv-release/cim_runtime/firmware/picogpt_firmware.elf --seed 7
 *
 * Generates PICOGPT_FW_TOKENS tokens from PICOGPT_FW_PROMPT with a fixed seed, temperature and
 * top-k (compiled in from CMake, see fw_config.h), prints the prompt and the text, then one
 * stats line (docs/firmware.md explains every field):
 *
 *   picogpt-stats: tokens=200 prompt_tokens=6 instructions_per_token=... cycles_per_token=...
 *
 * Options on the semihosting command line (QEMU -append) override the compiled-in values, so
 * tests reuse one binary: --prompt TEXT, --tokens N, --seed S, --temperature T, --top_k K.
 * picolibc splits that command line at spaces, so in --prompt "\s" stands for a space, "\n"
 * for a newline and "\\" for a backslash.
 *
 * Exit status: 0 success, 1 runtime error (message on stderr), 2 bad option or prompt,
 * 3 the embedded model is not the kind PICOGPT_USE_KV_CACHE says.
 *
 * Built with PICOGPT_FW_PROBE, the same code only initializes the runtime in a large arena and
 * prints the exact arena size the model needs on this target; the build runs that probe in
 * QEMU to size the real firmware's arena (cim_runtime/firmware/CMakeLists.txt). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw_config.h" /* compiled-in prompt, tokens, seed, temperature, top-k (from CMake) */
#include "pico_gpt/runtime.h"
#if !PICOGPT_FW_PROBE
#include "fw_arena.h" /* PICOGPT_FW_ARENA_BYTES: what the model needs, measured by the probe */
#endif

/* The build's model kind is PICOGPT_FW_KV_CACHE (= CMake's PICOGPT_USE_KV_CACHE); the
 * exporter's model header defines PICOGPT_USE_KV_CACHE from the model itself, so a header of
 * the other kind stops the build here with a message instead of a macro-redefinition error. */
enum { kBuildUsesKvCache = PICOGPT_FW_KV_CACHE };
#undef PICOGPT_USE_KV_CACHE
#if PICOGPT_FW_MODEL_FULL
#include "pico_gpt/model_data_full.h"
#else
#include "pico_gpt/model_data.h"
#endif
#if defined(PICOGPT_USE_KV_CACHE) && PICOGPT_USE_KV_CACHE != PICOGPT_FW_KV_CACHE
#error "the embedded model_data is not the kind PICOGPT_USE_KV_CACHE selects (KV-cache step model: model_data.h, full-window: model_data_full.h; docs/firmware.md)"
#endif

/* ---- memory: everything static, sized at build time ----------------------------------- */

/* Stack reserve below the top of RAM, for picolibc.ld's .stack section (and the RAM budget).
 * Defined here because the linker script only honours a __stack_size defined by an input
 * object; a --defsym comes too late and silently leaves the default 2 KiB. */
#define FW_STR2(x) #x
#define FW_STR(x) FW_STR2(x)
__asm__(".globl __stack_size\n.set __stack_size, " FW_STR(PICOGPT_FW_STACK_SIZE) "\n");

/* Tensor arena: planned activations + persistent tables + the int8 KV cache. */
static _Alignas(16) uint8_t g_arena[PICOGPT_FW_ARENA_BYTES];
static picogpt_runtime g_rt;
#if !PICOGPT_FW_PROBE
/* Prompts up to one context window (block_size 128 by default); generate() would keep only
 * the last block_size tokens of a longer one anyway. */
#define MAX_PROMPT_TOKENS 128
static int32_t g_prompt_ids[MAX_PROMPT_TOKENS];
static char g_prompt_text[256]; /* --prompt after unescaping */
#endif

#if !PICOGPT_FW_PROBE
/* ---- RISC-V counters ----------------------------------------------------------------- */

/* Under QEMU -icount both count retired instructions (QEMU has no timing model); on silicon
 * rdcycle counts clock cycles. rv32 reads the 64-bit counters in two halves, re-reading the
 * high half to catch a carry between the reads. */
#if __riscv_xlen == 32
#define READ_CSR64(name)                                            \
  static uint64_t read_##name(void) {                               \
    uint32_t hi, lo, hi2;                                           \
    do {                                                            \
      __asm__ volatile("rd" #name "h %0" : "=r"(hi));               \
      __asm__ volatile("rd" #name " %0" : "=r"(lo));                \
      __asm__ volatile("rd" #name "h %0" : "=r"(hi2));              \
    } while (hi != hi2);                                            \
    return ((uint64_t)hi << 32) | lo;                               \
  }
#else
#define READ_CSR64(name)                                            \
  static uint64_t read_##name(void) {                               \
    uint64_t v;                                                     \
    __asm__ volatile("rd" #name " %0" : "=r"(v));                   \
    return v;                                                       \
  }
#endif
READ_CSR64(instret)
READ_CSR64(cycle)

typedef struct counters {
  uint64_t instret, cycle;
} counters;

static counters now(void) {
  counters c;
  c.instret = read_instret();
  c.cycle = read_cycle();
  return c;
}

/* ---- stack high-water mark ----------------------------------------------------------- */

/* The stack is [__picogpt_stack_bottom, __stack) (picogpt_memory.ld, picolibc.ld). main()
 * paints the unused part below its frame; after the run the lowest overwritten byte gives the
 * deepest use, which tells whether PICOGPT_FW_STACK_SIZE has headroom. */
extern uint8_t __picogpt_stack_bottom[];
extern uint8_t __stack[];
#define STACK_PAINT 0xA5u

static void paint_stack(void) {
  uintptr_t sp;
  __asm__ volatile("mv %0, sp" : "=r"(sp));
  volatile uint8_t *p = __picogpt_stack_bottom;
  /* Stop 64 bytes short of the stack pointer: this function's own frame is above it. */
  while ((uintptr_t)p + 64 < sp) *p++ = STACK_PAINT;
}

static size_t stack_used(void) {
  const volatile uint8_t *p = __picogpt_stack_bottom;
  while (p < __stack && *p == STACK_PAINT) ++p;
  return (size_t)(__stack - (const uint8_t *)p);
}

/* ---- vocabulary ---------------------------------------------------------------------- */

static const char *token_text(int32_t token, size_t *len) {
  const uint16_t begin = g_pico_gpt_vocab_offsets[token];
  *len = (size_t)(g_pico_gpt_vocab_offsets[token + 1] - begin);
  return g_pico_gpt_vocab + begin;
}

static const picogpt_vocab g_vocab = {g_pico_gpt_vocab, g_pico_gpt_vocab_offsets,
                                      PICOGPT_VOCAB_SIZE};

/* ---- options ------------------------------------------------------------------------- */

typedef struct options {
  const char *prompt;
  long tokens;
  picogpt_sampling sampling;
} options;

/* "\s" -> space, "\n" -> newline, "\\" -> backslash (the command line has no quoting). */
static int unescape(const char *in, char *out, size_t cap) {
  size_t n = 0;
  for (; *in; ++in) {
    char c = *in;
    if (c == '\\') {
      ++in;
      if (*in == 's') c = ' ';
      else if (*in == 'n') c = '\n';
      else if (*in == '\\') c = '\\';
      else return -1;
    }
    if (n + 1 >= cap) return -1;
    out[n++] = c;
  }
  out[n] = '\0';
  return 0;
}

/* The double nearest to a plain decimal ("0.8", "1", ".25"), bit-identical to strtod's for up
 * to 15 significant digits and 22 fraction digits: the digits form an integer below 2^53 and
 * 10^k (k <= 22) is exact in double, so their quotient is one correctly rounded IEEE division
 * (Clinger's fast path). This keeps picolibc's strtod (~3 KB of flash) out of the firmware. */
static int parse_decimal(const char *s, double *out) {
  uint64_t mantissa = 0;
  int digits = 0, any = 0, fraction = -1; /* fraction < 0: no decimal point seen yet */
  for (; *s; ++s) {
    if (*s == '.' && fraction < 0) {
      fraction = 0;
      continue;
    }
    if (*s < '0' || *s > '9') return -1;
    any = 1;
    if (fraction >= 0) fraction++;
    if (mantissa == 0 && *s == '0') continue; /* leading zeros are not significant */
    if (++digits > 15) return -1;
    mantissa = mantissa * 10u + (uint64_t)(*s - '0');
  }
  if (!any || fraction > 22) return -1;
  double scale = 1.0;
  for (int i = 0; i < fraction; ++i) scale *= 10.0; /* exact up to 1e22 */
  *out = (double)(int64_t)mantissa / scale; /* < 2^53: exact, and the signed conversion is one libgcc routine fewer */
  return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  const long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_options(int argc, char **argv, options *o) {
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    /* QEMU puts the kernel file name first on the semihosting command line; picolibc adds its
     * own argv[0]. Words that are not options are therefore skipped, not rejected. */
    if (strncmp(a, "--", 2) != 0) continue;
    if (i + 1 >= argc) {
      fprintf(stderr, "error: option %s needs a value\n", a);
      return -1;
    }
    const char *v = argv[++i];
    long n;
    if (!strcmp(a, "--prompt")) {
      if (unescape(v, g_prompt_text, sizeof g_prompt_text) != 0) {
        fprintf(stderr, "error: --prompt: bad escape (use \\s, \\n, \\\\) or longer than %u bytes\n",
                (unsigned)(sizeof g_prompt_text - 1));
        return -1;
      }
      o->prompt = g_prompt_text;
    } else if (!strcmp(a, "--tokens") && parse_long(v, 0, 1000000, &n) == 0) {
      o->tokens = n;
    } else if (!strcmp(a, "--top_k") && parse_long(v, 0, PICOGPT_MAX_VOCAB, &n) == 0) {
      o->sampling.top_k = (int32_t)n;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      errno = 0;
      const unsigned long long s = strtoull(v, &end, 10);
      if (errno || end == v || *end) {
        fprintf(stderr, "error: --seed needs an unsigned integer, got '%s'\n", v);
        return -1;
      }
      o->sampling.seed = (uint64_t)s;
    } else if (!strcmp(a, "--temperature")) {
      /* Parsed as double, then rounded to float, exactly as the host CLI does. */
      double t;
      if (parse_decimal(v, &t) != 0 || t > 100.0) {
        fprintf(stderr, "error: --temperature needs a decimal number in [0, 100], got '%s'\n", v);
        return -1;
      }
      o->sampling.temperature = (float)t;
    } else {
      fprintf(stderr,
              "error: bad option '%s %s' (options: --prompt TEXT, --tokens N, --seed S, "
              "--temperature T, --top_k K)\n",
              a, v);
      return -1;
    }
  }
  return 0;
}

/* ---- generation ---------------------------------------------------------------------- */

/* Per-token counters: the interval between two token callbacks is exactly one model step
 * plus one sampling. The callback's own printing is measured and subtracted, so the numbers
 * are the model's cost, not the semihosting console's. */
typedef struct run_state {
  int32_t generated;
  counters first;    /* at the first callback (after the prompt and the first sample) */
  counters last;     /* at the latest callback */
  counters io;       /* instructions/cycles spent printing in callbacks after the first */
} run_state;

static int on_token(void *user, int32_t token, int32_t position) {
  (void)position;
  run_state *s = (run_state *)user;
  const counters enter = now();
  if (s->generated == 0) s->first = enter;
  s->last = enter;
  size_t len;
  const char *text = token_text(token, &len);
  fwrite(text, 1, len, stdout);
  s->generated++;
  const counters leave = now();
  if (s->generated > 1) { /* the first callback's output falls outside every interval */
    s->io.instret += leave.instret - enter.instret;
    s->io.cycle += leave.cycle - enter.cycle;
  }
  return 0;
}

static int fail(const char *what, picogpt_status st) {
  fprintf(stderr, "error: %s: %s: %s\n", what, picogpt_status_name(st), picogpt_last_error(&g_rt));
  return 1;
}

static uint64_t per(uint64_t total, uint64_t n) { return n ? total / n : 0; }

/* One " key=value" field of the stats line. The firmware links picolibc's integer-only printf
 * (about 7 KB less flash than the default one), which has no 64-bit conversions, so 64-bit
 * counters are formatted here. */
static void put_stat(const char *key, uint64_t value) {
  char digits[21];
  int n = 0;
  do {
    digits[n++] = (char)('0' + value % 10u);
    value /= 10u;
  } while (value != 0);
  printf(" %s=", key);
  while (n > 0) putchar(digits[--n]);
}
#endif /* !PICOGPT_FW_PROBE */

#if PICOGPT_FW_PROBE
int main(void) {
  const picogpt_status st = picogpt_init(&g_rt, g_pico_gpt_model_data, g_pico_gpt_model_data_len,
                                         g_arena, sizeof g_arena);
  if (st != PICOGPT_OK) {
    fprintf(stderr, "error: probe: picogpt_init: %s: %s\n", picogpt_status_name(st),
            picogpt_last_error(&g_rt));
    return 1;
  }
  printf("picogpt-arena-bytes: %lu\n", (unsigned long)picogpt_info(&g_rt)->arena_used);
  return 0;
}
#else
int main(int argc, char **argv) {
  paint_stack();
  options o = {PICOGPT_FW_PROMPT,
               PICOGPT_FW_TOKENS,
               {PICOGPT_FW_TEMPERATURE, PICOGPT_FW_TOP_K, PICOGPT_FW_SEED}};
  if (parse_options(argc, argv, &o) != 0) return 2;

  const counters t_init = now();
  picogpt_status st = picogpt_init(&g_rt, g_pico_gpt_model_data, g_pico_gpt_model_data_len,
                                   g_arena, sizeof g_arena);
  if (st != PICOGPT_OK) return fail("picogpt_init", st);
  const counters t_ready = now();
  const picogpt_model_info *info = picogpt_info(&g_rt);
  if (info->use_kv_cache != kBuildUsesKvCache) {
    fprintf(stderr,
            "error: the firmware is built with PICOGPT_USE_KV_CACHE=%d but the embedded model is "
            "the %s model; embed the matching model_data (docs/firmware.md)\n",
            (int)kBuildUsesKvCache, info->use_kv_cache ? "KV-cache step" : "full-window");
    return 3;
  }
  if (info->vocab_size != PICOGPT_VOCAB_SIZE) {
    fprintf(stderr, "error: model_data.h says %d tokens, the model has %d\n", PICOGPT_VOCAB_SIZE,
            (int)info->vocab_size);
    return 3;
  }
  const int32_t n_prompt = picogpt_encode(&g_vocab, o.prompt, g_prompt_ids, MAX_PROMPT_TOKENS);
  if (n_prompt <= 0) {
    fprintf(stderr,
            "error: the prompt is empty, longer than %d tokens or has a character outside the "
            "vocabulary (at byte %d)\n",
            MAX_PROMPT_TOKENS, n_prompt < 0 ? (int)(-1 - n_prompt) : 0);
    return 2;
  }

  fputs(o.prompt, stdout);
  run_state rs = {0};
  int32_t n_out = 0;
  const counters t_start = now();
  st = picogpt_generate(&g_rt, g_prompt_ids, n_prompt, (int32_t)o.tokens, &o.sampling, on_token,
                        &rs, NULL, &n_out);
  const counters t_end = now();
  fputs("\n", stdout);
  if (st != PICOGPT_OK) return fail("picogpt_generate", st);

  /* Decode cost per token: between the first and the last token callback (n_out - 1 steps
   * plus samplings), printing excluded. Prefill: the prompt's steps plus the first sample. */
  const uint64_t decode_steps = n_out > 1 ? (uint64_t)(n_out - 1) : 0;
  const uint64_t decode_instret = rs.last.instret - rs.first.instret - rs.io.instret;
  const uint64_t decode_cycle = rs.last.cycle - rs.first.cycle - rs.io.cycle;
  const picogpt_stats *stats = picogpt_get_stats(&g_rt);
  const uint64_t steps = stats->steps;
  printf("picogpt-stats: model=%s", info->use_kv_cache ? "kv-cache" : "full-window");
  put_stat("tokens", (uint64_t)n_out);
  put_stat("prompt_tokens", (uint64_t)n_prompt);
  put_stat("instructions_per_token", per(decode_instret, decode_steps));
  put_stat("cycles_per_token", per(decode_cycle, decode_steps));
  put_stat("prefill_instructions", (n_out ? rs.first.instret : t_end.instret) - t_start.instret);
  put_stat("init_instructions", t_ready.instret - t_init.instret);
  put_stat("total_instructions", t_end.instret - t_init.instret);
  put_stat("arena_bytes", info->arena_used);
  put_stat("kv_cache_bytes", info->kv_cache_bytes);
  put_stat("cim_macs_per_token", per(stats->cim.macs, steps));
  put_stat("cim_calls_per_token", per(stats->cim.calls, steps));
  put_stat("stack_bytes", stack_used());
  putchar('\n');
  return 0;
}
#endif /* PICOGPT_FW_PROBE */
