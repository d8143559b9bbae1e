/* picogpt_firmware: PicoGPT on bare-metal RISC-V (QEMU virt, semihosting for I/O and exit).
 *
 *   cmake --preset riscv-release && cmake --build --preset riscv-release-build --target run-qemu
 *   scripts/run_qemu.sh build/riscv-release/cim_runtime/firmware/picogpt_firmware.elf --seed 7
 *
 * Generates PICOGPT_FW_TOKENS tokens from PICOGPT_FW_PROMPT with a fixed seed, temperature,
 * top-k and window policy (compiled in from CMake, see fw_config.h), prints the prompt and the
 * text, then one stats line (docs/firmware.md explains every field):
 *
 *   picogpt-stats: model=kv-cache tokens=100 prompt_tokens=6 window=shift keep=32 ...
 *
 * Options on the semihosting command line (QEMU -append) override the compiled-in values, so
 * tests reuse one binary: --prompt TEXT, --tokens N, --seed S, --temperature T, --top_k K,
 * --window shift|exact, --keep N, parsed by the host CLI's strict parser
 * (cim_runtime/apps/cli_options.c). The firmware reads that line itself and splits it at
 * spaces; in a word "\s" stands for a space, "\n" for a newline and "\\" for a backslash
 * (scripts/run_qemu.sh writes every argument that way, so
 * `run_qemu.sh FW.elf --prompt "O God, O God!"` passes the prompt exactly). Words before the
 * first option are the program's name (QEMU puts the ELF's path there); after it every word
 * is an option or its value. A line too long for the buffer, a bad escape, a bad value or a
 * prompt the vocabulary cannot encode is an error, never a silent cut.
 *
 * Exit status: 0 success, 1 runtime error or trap (message on stderr), 2 bad option or prompt.
 *
 * Built with PICOGPT_FW_PROBE, the same code only initializes the runtime in a large arena,
 * checks that the model is what its model_data.h says (kind and vocabulary size; exit status 3
 * if not) and prints the exact arena size the model needs on this target; the build runs that
 * probe in QEMU to size the real firmware's arena (cim_runtime/firmware/CMakeLists.txt) and
 * stops if it fails. */
#include <semihost.h> /* sys_semihost_get_cmdline */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h> /* _exit */

#include "embedded_model.h" /* the model's header, picked by cmake/picogpt_model.cmake */
#include "fw_config.h" /* compiled-in prompt, tokens, seed, temperature, top-k, window (CMake) */
#include "cli_options.h" /* the option parser and cli_format_u64 */
#include "pico_gpt/runtime.h"
#if !PICOGPT_FW_PROBE
#include "fw_arena.h" /* PICOGPT_FW_ARENA_BYTES: what the model needs, measured by the probe */
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
/* The CIM device the weights are mapped onto (fw_config.h, from CMake); the host-only
 * non-ideality simulation stays off (zero). */
static const picogpt_options g_options = {.cim_device = PICOGPT_FW_CIM_DEVICE,
                                          .cim_cpu_fallback = PICOGPT_FW_CIM_CPU_FALLBACK};
#if !PICOGPT_FW_PROBE
/* Prompts up to one context window (block_size 128 by default); generate() would keep only
 * the last block_size tokens of a longer one anyway. */
#define MAX_PROMPT_TOKENS 128
static int32_t g_prompt_ids[MAX_PROMPT_TOKENS];
/* The semihosting command line, split into words and unescaped in place. */
#define MAX_COMMAND_LINE 1024
#define MAX_WORDS 64
static char g_command_line[MAX_COMMAND_LINE];
static char *g_words[MAX_WORDS];
#endif

/* ---- output ------------------------------------------------------------------------- */

/* The firmware links no printf (picolibc's takes ~1.5 KB of flash): it writes its texts with
 * fputs and its numbers, all of them non-negative, with these. */
static void put_u64(FILE *f, uint64_t value) {
  char text[CLI_U64_TEXT_SIZE];
  cli_format_u64(value, text);
  fputs(text, f);
}

/* The texts up to the NULL, one after the other. */
static void put_texts(FILE *f, const char *text, ...) {
  va_list ap;
  va_start(ap, text);
  for (; text != NULL; text = va_arg(ap, const char *)) fputs(text, f);
  va_end(ap);
}

/* ---- traps ------------------------------------------------------------------------- */

/* picolibc's plain start-up code (--crt0=hosted, cmake/riscv-picolibc.cmake) installs no trap
 * handler, and its semihosting one brings printf along: main points mtvec here, so a fault
 * (illegal instruction, bad access) ends the run with its cause and address instead of
 * hanging QEMU. mtvec's direct mode needs a 4-byte aligned handler. */
/* -march=rv32imac leaves out the CSR instructions' extension, which every core with machine
 * mode has; the assembler wants it named. */
#define ZICSR(insn) ".option push\n.option arch, +zicsr\n" insn "\n.option pop"

static void put_hex(FILE *f, uintptr_t value) {
  char text[2 + 2 * sizeof value + 1] = "0x";
  for (size_t i = 0; i < 2 * sizeof value; ++i) {
    const unsigned nibble = (unsigned)(value >> (4 * (2 * sizeof value - 1 - i))) & 15u;
    text[2 + i] = "0123456789abcdef"[nibble];
  }
  text[sizeof text - 1] = '\0';
  fputs(text, f);
}

__attribute__((aligned(4), noreturn)) static void on_trap(void) {
  uintptr_t cause, address;
  __asm__ volatile(ZICSR("csrr %0, mcause") : "=r"(cause));
  __asm__ volatile(ZICSR("csrr %0, mepc") : "=r"(address));
  fputs("error: trap: mcause=", stderr);
  put_u64(stderr, cause);
  fputs(" mepc=", stderr);
  put_hex(stderr, address);
  fputs("\n", stderr);
  _exit(1);
}

static void install_trap_handler(void) { __asm__ volatile(ZICSR("csrw mtvec, %0") : : "r"(on_trap)); }

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
  int64_t tokens;
  uint64_t seed;
  double temperature;
  int64_t top_k;
  int64_t window; /* picogpt_window_policy */
  int64_t keep;   /* -1: the model's default (picogpt_default_window) */
} options;

/* "\s" -> space, "\n" -> newline, "\\" -> backslash, in place (the text only shrinks).
 * 0, or -1 for any other backslash sequence. */
static int unescape(char *word) {
  char *out = word;
  for (const char *in = word; *in; ++in) {
    char c = *in;
    if (c == '\\') {
      ++in;
      if (*in == 's') c = ' ';
      else if (*in == 'n') c = '\n';
      else if (*in == '\\') c = '\\';
      else return -1;
    }
    *out++ = c;
  }
  *out = '\0';
  return 0;
}

/* Reads the semihosting command line and parses the options in it. 0, or -1 after printing
 * why not. */
static int parse_options(options *o) {
  if (sys_semihost_get_cmdline(g_command_line, (int)sizeof g_command_line) != 0) {
    fputs("error: the semihosting command line is longer than ", stderr);
    put_u64(stderr, sizeof g_command_line - 1);
    fputs(" bytes (with the ELF's path); shorten the options, e.g. the prompt\n", stderr);
    return -1;
  }
  int n_words = 0, first_option = -1;
  for (char *p = g_command_line; *p;) {
    if (*p == ' ') {
      *p++ = '\0';
      continue;
    }
    if (n_words == MAX_WORDS) {
      fputs("error: more than " FW_STR(MAX_WORDS) " words on the semihosting command line\n",
            stderr);
      return -1;
    }
    g_words[n_words] = p;
    while (*p && *p != ' ') ++p;
    if (*p) *p++ = '\0'; /* the word ends here */
    if (first_option < 0 && strncmp(g_words[n_words], "--", 2) == 0) first_option = n_words;
    if (first_option >= 0 && unescape(g_words[n_words]) != 0) {
      put_texts(stderr, "error: bad escape in '", g_words[n_words],
                "' (use \\s for a space, \\n for a newline, \\\\ for a backslash)\n", NULL);
      return -1;
    }
    ++n_words;
  }
  if (first_option < 0) return 0; /* no options: the compiled-in settings */
  const cli_option table[] = {
      {"--prompt", CLI_TEXT, &o->prompt, 0, 0, NULL},
      {"--tokens", CLI_INT, &o->tokens, 0, 1000000, NULL},
      {"--seed", CLI_UINT64, &o->seed, 0, 0, NULL},
      {"--temperature", CLI_DECIMAL, &o->temperature, 0, 100, NULL},
      {"--top_k", CLI_INT, &o->top_k, 0, PICOGPT_MAX_VOCAB, NULL},
      {"--window", CLI_CHOICE, &o->window, 0, 0, cli_window_policies},
      {"--keep", CLI_INT, &o->keep, 0, PICOGPT_MAX_CONTEXT - 1, NULL},
  };
  char why[192];
  int n_positional;
  if (cli_parse(table, (int)(sizeof table / sizeof table[0]), n_words, g_words, first_option,
                NULL, 0, &n_positional, why, sizeof why) != 0) {
    put_texts(stderr, "error: ", why, "\n", NULL);
    return -1;
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
  /* The software CIM HAL's emulation of the macros (picogpt_stats.cim) at the first and the
   * latest callback: the accelerator's part of the instructions in between. */
  uint64_t first_emulation, last_emulation;
} run_state;

static int on_token(void *user, int32_t token, int32_t position) {
  (void)position;
  run_state *s = (run_state *)user;
  const counters enter = now();
  const uint64_t emulation = picogpt_get_stats(&g_rt)->cim.emulation_instructions;
  if (s->generated == 0) {
    s->first = enter;
    s->first_emulation = emulation;
  }
  s->last = enter;
  s->last_emulation = emulation;
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
  put_texts(stderr, "error: ", what, ": ", picogpt_status_name(st), ": ",
            picogpt_last_error(&g_rt), "\n", NULL);
  return 1;
}

static uint64_t per(uint64_t total, uint64_t n) { return n ? total / n : 0; }

/* One " key=value" field of the stats line. */
static void put_stat(const char *key, uint64_t value) {
  put_texts(stdout, " ", key, "=", NULL);
  put_u64(stdout, value);
}

/* A field with three decimals, from thousandths. */
static void put_milli(const char *key, uint64_t thousandths) {
  put_stat(key, thousandths / 1000u);
  const unsigned fraction = (unsigned)(thousandths % 1000u);
  const char decimals[] = {'.', (char)('0' + fraction / 100u), (char)('0' + fraction / 10u % 10u),
                           (char)('0' + fraction % 10u), '\0'};
  fputs(decimals, stdout);
}
#endif /* !PICOGPT_FW_PROBE */

#if PICOGPT_FW_PROBE
int main(void) {
  install_trap_handler();
  const picogpt_status st = picogpt_init_with_options(
      &g_rt, g_pico_gpt_model_data, g_pico_gpt_model_data_len, g_arena, sizeof g_arena, &g_options);
  if (st != PICOGPT_OK) {
    put_texts(stderr, "error: probe: picogpt_init: ", picogpt_status_name(st), ": ",
              picogpt_last_error(&g_rt), "\n", NULL);
    return 1;
  }
  /* The firmware trusts model_data.h's kind and vocabulary size: this build-time run of the
   * same model is where they are checked. */
  const picogpt_model_info *info = picogpt_info(&g_rt);
  if (info->use_kv_cache != PICOGPT_USE_KV_CACHE) {
    put_texts(stderr, "error: model_data.h says PICOGPT_USE_KV_CACHE " FW_STR(PICOGPT_USE_KV_CACHE)
              " but the embedded model is the ", info->use_kv_cache ? "KV-cache step" : "full-window",
              " model; re-export it with tf_convert_to_tflite.py (docs/firmware.md)\n", NULL);
    return 3;
  }
  if (info->vocab_size != PICOGPT_VOCAB_SIZE) {
    fputs("error: model_data.h says " FW_STR(PICOGPT_VOCAB_SIZE) " tokens, the model has ", stderr);
    put_u64(stderr, (uint64_t)info->vocab_size);
    fputs("\n", stderr);
    return 3;
  }
  fputs("picogpt-arena-bytes: ", stdout);
  put_u64(stdout, info->arena_used);
  fputs("\n", stdout);
  return 0;
}
#else
int main(void) {
  install_trap_handler();
  paint_stack();
  options o = {PICOGPT_FW_PROMPT, PICOGPT_FW_TOKENS, PICOGPT_FW_SEED, PICOGPT_FW_TEMPERATURE,
               PICOGPT_FW_TOP_K, PICOGPT_FW_WINDOW, PICOGPT_FW_KEEP};
  if (parse_options(&o) != 0) return 2;
  /* The temperature is parsed as a double and rounded to float, exactly as the host CLI does. */
  const picogpt_sampling sampling = {(float)o.temperature, (int32_t)o.top_k, o.seed};

  const counters t_init = now();
  picogpt_status st = picogpt_init_with_options(
      &g_rt, g_pico_gpt_model_data, g_pico_gpt_model_data_len, g_arena, sizeof g_arena, &g_options);
  if (st != PICOGPT_OK) return fail("picogpt_init", st);
  const picogpt_cim_mapping *map = picogpt_cim_info(&g_rt);
#if PICOGPT_FW_CIM_CPU_FALLBACK
  if (map->layers_on_cpu > 0) {
    fputs("warning: ", stderr);
    put_u64(stderr, (uint64_t)map->layers_on_cpu);
    fputs(" of ", stderr);
    put_u64(stderr, (uint64_t)map->num_layers);
    fputs(" FULLY_CONNECTED layers do not fit the ", stderr);
    put_u64(stderr, (uint64_t)map->device.num_macros);
    fputs(" CIM macros (the model needs ", stderr);
    put_u64(stderr, (uint64_t)map->macros_needed);
    fputs(") and run on the CPU\n", stderr);
  }
#endif
  const counters t_ready = now();
  const picogpt_model_info *info = picogpt_info(&g_rt);
  const int32_t n_prompt = picogpt_encode(&g_vocab, o.prompt, g_prompt_ids, MAX_PROMPT_TOKENS);
  if (n_prompt <= 0) {
    /* Where encoding stopped: no token matches there, or the ids ran out. */
    const int32_t at = n_prompt < 0 ? -1 - n_prompt : 0;
    int32_t one;
    if (n_prompt == 0) {
      fputs("error: the prompt is empty\n", stderr);
    } else if (picogpt_encode(&g_vocab, o.prompt + at, &one, 1) == -1) {
      fputs("error: the prompt has a character outside the vocabulary (at byte ", stderr);
      put_u64(stderr, (uint64_t)at);
      fputs(")\n", stderr);
    } else {
      fputs("error: the prompt is longer than " FW_STR(MAX_PROMPT_TOKENS)
            " tokens (one context window)\n", stderr);
    }
    return 2;
  }

  picogpt_window window = picogpt_default_window(info->block_size);
  window.policy = (picogpt_window_policy)o.window;
  if (o.keep >= 0) window.keep = (int32_t)o.keep;
  if (picogpt_check_window(&g_rt, &window) != PICOGPT_OK) {
    fputs("error: bad option '--keep ", stderr);
    put_u64(stderr, (uint64_t)window.keep);
    put_texts(stderr, "': ", picogpt_last_error(&g_rt), "\n", NULL);
    return 2;
  }

  fputs(o.prompt, stdout);
  run_state rs = {0};
  int32_t n_out = 0;
  const counters t_start = now();
  st = picogpt_generate(&g_rt, g_prompt_ids, n_prompt, (int32_t)o.tokens, &sampling, &window,
                        on_token, &rs, NULL, &n_out);
  const counters t_end = now();
  fputs("\n", stdout);
  if (st != PICOGPT_OK) return fail("picogpt_generate", st);

  /* Decode cost per token: between the first and the last token callback (n_out - 1 feeds,
   * refills of the window included, plus samplings), printing excluded. Prefill: the prompt's
   * steps plus the first sample. */
  const uint64_t decode_steps = n_out > 1 ? (uint64_t)(n_out - 1) : 0;
  const uint64_t decode_instret = rs.last.instret - rs.first.instret - rs.io.instret;
  const uint64_t decode_cycle = rs.last.cycle - rs.first.cycle - rs.io.cycle;
  const picogpt_stats *stats = picogpt_get_stats(&g_rt);
  const uint64_t steps = stats->steps;
  put_texts(stdout, "picogpt-stats: model=", info->use_kv_cache ? "kv-cache" : "full-window", NULL);
  put_stat("tokens", (uint64_t)n_out);
  put_stat("prompt_tokens", (uint64_t)n_prompt);
  put_texts(stdout, " window=", cli_window_policies[window.policy], NULL);
  put_stat("keep", (uint64_t)window.keep);
  put_stat("instructions_per_token", per(decode_instret, decode_steps));
  put_stat("cycles_per_token", per(decode_cycle, decode_steps));
  put_stat("prefill_instructions", (n_out ? rs.first.instret : t_end.instret) - t_start.instret);
  put_stat("init_instructions", t_ready.instret - t_init.instret);
  put_stat("total_instructions", t_end.instret - t_init.instret);
  put_stat("arena_bytes", info->arena_used);
  put_stat("kv_cache_bytes", info->kv_cache_bytes);
  put_stat("cim_macros", (uint64_t)map->macros_used);
  put_stat("cim_products_per_token", per(stats->cim.matvecs, steps));
  put_stat("cim_macs_per_token", per(stats->cim.macs, steps));
  put_stat("cpu_macs_per_token", per(stats->cpu_macs, steps));
  /* What the core executes per token outside the accelerator: the decode instructions less
   * the software HAL's emulation of the macros. The cost model (runtime.h) adds the macros'
   * cycles and energy at its default clock. */
  const uint64_t cpu_instructions =
      per(decode_instret - (rs.last_emulation - rs.first_emulation), decode_steps);
  picogpt_cim_cost cost;
  picogpt_cim_cost_of(&g_rt, NULL, cpu_instructions, &cost);
  put_stat("cpu_instructions_per_token", cpu_instructions);
  put_stat("cim_cycles_per_token", cost.cim_cycles);
  put_stat("cim_nj_per_token", cost.cim_energy_fj / 1000000u);
  put_stat("clock_mhz", cost.clock_hz / 1000000u);
  put_milli("tokens_per_s", cost.tokens_per_s_milli);
  put_milli("uj_per_token", cost.energy_fj / 1000000u);
  put_stat("stack_bytes", stack_used());
  putchar('\n');
  return 0;
}
#endif /* PICOGPT_FW_PROBE */
