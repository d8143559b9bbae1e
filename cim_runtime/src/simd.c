/* The SIMD path of the bulk kernels: detection at load time and the public selection API
 * (runtime.h, "SIMD kernels"); see simd.h. */
#include "simd.h"

#include <string.h>

#include "matvec.h"
#include "pico_gpt/runtime.h"
#include "quant.h"

static const char *const kPathNames[PICOGPT_SIMD_COUNT] = {"scalar", "avx2", "avx512vnni"};

#if PG_SIMD_DISPATCH
#include <cpuid.h>

static const pg_simd_kernels kKernels[PICOGPT_SIMD_COUNT] = {
    {pg_matvec_scalar, pg_requantize_scalar, pg_binary_scalar, pg_softmax_row_scalar, NULL,
     pg_row_sums_scalar, NULL, NULL},
    {pg_matvec_avx2, pg_requantize_avx2, pg_binary_avx2, pg_softmax_row_avx2, NULL,
     pg_row_sums_avx2, NULL, pg_matvec_narrow_avx2},
    /* VNNI's own product is faster than the narrow one: four byte products per lane */
    {pg_matvec_avx512vnni, pg_requantize_avx512, pg_binary_avx512, pg_softmax_row_avx512,
     pg_cells_matvec_avx512vnni, pg_row_sums_avx512, pg_matvec_sums_avx512vnni, NULL},
};

pg_simd_kernels pg_simd = {pg_matvec_scalar, pg_requantize_scalar, pg_binary_scalar,
                           pg_softmax_row_scalar, NULL, pg_row_sums_scalar, NULL, NULL};
static picogpt_simd g_active = PICOGPT_SIMD_SCALAR;
static picogpt_simd g_best = PICOGPT_SIMD_SCALAR;

/* XCR0, the register states the OS saves on a context switch: a CPU's AVX registers are
 * usable only if the OS enabled them (XGETBV is available when CPUID reports OSXSAVE). */
static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0)); /* xgetbv */
  return ((uint64_t)hi << 32) | lo;
}

static picogpt_simd detect(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return PICOGPT_SIMD_SCALAR;
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx || !fma) return PICOGPT_SIMD_SCALAR;
  const uint64_t xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return PICOGPT_SIMD_SCALAR; /* SSE and AVX state */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return PICOGPT_SIMD_SCALAR;
  if (!((b >> 5) & 1)) return PICOGPT_SIMD_SCALAR; /* AVX2 */
  const int avx512 = (b >> 16) & 1 && (b >> 30) & 1 && (b >> 31) & 1; /* F, BW, VL */
  const int vnni = (c >> 11) & 1;                                       /* AVX512_VNNI */
  /* Opmask, upper halves of ZMM0-15, ZMM16-31. */
  if (avx512 && vnni && (xcr0 & 0xE0) == 0xE0) return PICOGPT_SIMD_AVX512VNNI;
  return PICOGPT_SIMD_AVX2;
}

/* Once, when the program or library loads: before any runtime exists, so no step ever sees
 * the table change under it unless the application calls picogpt_simd_select. */
__attribute__((constructor)) static void install_best(void) {
  g_best = detect();
  g_active = g_best;
  pg_simd = kKernels[g_best];
}

picogpt_simd picogpt_simd_best(void) { return g_best; }
picogpt_simd picogpt_simd_active(void) { return g_active; }

picogpt_status picogpt_simd_select(picogpt_simd path) {
  if (!picogpt_simd_supported(path)) return PICOGPT_ERR_ARGUMENT;
  g_active = path;
  pg_simd = kKernels[path];
  return PICOGPT_OK;
}

#else /* no SIMD kernels in this build: scalar only */

picogpt_simd picogpt_simd_best(void) { return PICOGPT_SIMD_SCALAR; }
picogpt_simd picogpt_simd_active(void) { return PICOGPT_SIMD_SCALAR; }

picogpt_status picogpt_simd_select(picogpt_simd path) {
  return path == PICOGPT_SIMD_SCALAR ? PICOGPT_OK : PICOGPT_ERR_ARGUMENT;
}

#endif

/* The paths are ordered: a CPU that runs one runs every path before it. */
int picogpt_simd_supported(picogpt_simd path) {
  return (int)path >= 0 && (int)path <= (int)picogpt_simd_best();
}

const char *picogpt_simd_name(picogpt_simd path) {
  return (int)path >= 0 && path < PICOGPT_SIMD_COUNT ? kPathNames[path] : NULL;
}

picogpt_status picogpt_simd_parse(const char *name, picogpt_simd *path) {
  if (name == NULL || path == NULL) return PICOGPT_ERR_ARGUMENT;
  if (strcmp(name, "auto") == 0) {
    *path = picogpt_simd_best();
    return PICOGPT_OK;
  }
  for (int i = 0; i < PICOGPT_SIMD_COUNT; ++i) {
    if (strcmp(name, kPathNames[i]) == 0) {
      *path = (picogpt_simd)i;
      return PICOGPT_OK;
    }
  }
  return PICOGPT_ERR_ARGUMENT;
}
