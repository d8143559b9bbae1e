/* The firmware's compact libgcc routines (cim_runtime/firmware/compact_libgcc.c, built here
 * with the pg_sf_ prefix) against this machine's IEEE 754 hardware and integer division, bit
 * for bit: add, sub, mul, div in both formats, the conversions between them and to/from
 * integers, and the comparisons, on signed zeros, subnormals, the largest finite values,
 * infinities, NaNs, operands of nearby exponents (cancellation, ties) and random bit patterns
 * (a NaN result must be the canonical quiet NaN: its sign and payload are where hardware
 * differs); 64-bit quotients and remainders, signed and unsigned, of operands of every
 * magnitude (the 32-bit fast path and the long one), and the division by zero. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define DECLARE(prefix)                                                                      \
  double prefix##adddf3(double, double);                                                     \
  double prefix##subdf3(double, double);                                                     \
  double prefix##muldf3(double, double);                                                     \
  double prefix##divdf3(double, double);                                                     \
  float prefix##addsf3(float, float);                                                        \
  float prefix##subsf3(float, float);                                                        \
  float prefix##mulsf3(float, float);                                                        \
  float prefix##divsf3(float, float);                                                        \
  double prefix##extendsfdf2(float);                                                         \
  float prefix##truncdfsf2(double);                                                          \
  double prefix##floatsidf(int32_t);                                                         \
  double prefix##floatdidf(int64_t);                                                         \
  float prefix##floatsisf(int32_t);                                                          \
  float prefix##floatdisf(int64_t);                                                          \
  int32_t prefix##fixdfsi(double);                                                           \
  int64_t prefix##fixdfdi(double);                                                           \
  int32_t prefix##fixsfsi(float);                                                            \
  int64_t prefix##fixsfdi(float);                                                            \
  int prefix##eqdf2(double, double);                                                         \
  int prefix##gedf2(double, double);                                                         \
  int prefix##ledf2(double, double);                                                         \
  int prefix##gtdf2(double, double);                                                         \
  int prefix##ltdf2(double, double);                                                         \
  int prefix##eqsf2(float, float);                                                           \
  int prefix##gesf2(float, float);                                                           \
  int prefix##lesf2(float, float);                                                          \
  uint64_t prefix##udivdi3(uint64_t, uint64_t);                                              \
  uint64_t prefix##umoddi3(uint64_t, uint64_t);                                              \
  int64_t prefix##divdi3(int64_t, int64_t);                                                  \
  int64_t prefix##moddi3(int64_t, int64_t);
DECLARE(pg_sf_)

static int g_failed, g_checks;
#define CHECK(cond, ...)                            \
  do {                                              \
    ++g_checks;                                     \
    if (!(cond) && g_failed++ < 20) {               \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
      printf(__VA_ARGS__);                          \
      printf("\n");                                 \
    }                                               \
  } while (0)

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint64_t rnd64(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545F4914F6CDD1Dull;
}

static uint64_t dbits(double d) {
  uint64_t b;
  memcpy(&b, &d, 8);
  return b;
}
static double dval(uint64_t b) {
  double d;
  memcpy(&d, &b, 8);
  return d;
}
static uint32_t fbits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}
static float fval(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static const uint64_t kDoubleNan = 0x7FF8000000000000ull;
static const uint32_t kFloatNan = 0x7FC00000u;

/* Bit patterns worth testing: specials, and random values of every kind. */
static const uint64_t kSpecialD[] = {
    0, 0x8000000000000000ull, 1, 0x000FFFFFFFFFFFFFull, 0x0010000000000000ull,
    0x7FEFFFFFFFFFFFFFull, 0x7FF0000000000000ull, 0xFFF0000000000000ull, 0x7FF8000000000000ull,
    0xFFF4000000000001ull, 0x3FF0000000000000ull, 0xBFF0000000000000ull, 0x3FEFFFFFFFFFFFFFull,
    0x4340000000000000ull, 0x43E0000000000000ull, 0xC3E0000000000000ull, 0x41DFFFFFFFC00000ull,
    0xC1E0000000000000ull, 0x3CA0000000000000ull};
static const uint32_t kSpecialF[] = {0,          0x80000000u, 1,           0x007FFFFFu,
                                     0x00800000u, 0x7F7FFFFFu, 0x7F800000u, 0xFF800000u,
                                     0x7FC00000u, 0xFFA00001u, 0x3F800000u, 0xBF800000u,
                                     0x4B000000u, 0x4F000000u, 0xCF000000u, 0x5F000000u,
                                     0xDF000000u, 0x33800000u};

static uint64_t random_double_bits(uint64_t near) {
  const uint64_t r = rnd64();
  switch (r % 6) {
    case 0: return kSpecialD[(r >> 8) % (sizeof kSpecialD / sizeof kSpecialD[0])];
    case 1: return rnd64(); /* any pattern */
    case 2: return (rnd64() & 0x800FFFFFFFFFFFFFull) | ((uint64_t)((r >> 8) % 3) << 52); /* tiny */
    case 3: /* an exponent within a few of near's: cancellation, alignment, ties */
      return (near & 0x7FF0000000000000ull) + (((r >> 8) % 5) << 52) -
             (2ull << 52) + (rnd64() & 0x800FFFFFFFFFFFFFull) * ((r >> 12) & 1) +
             (near & 0x000FFFFFFFFFFF00ull) * !((r >> 12) & 1);
    case 4: return (rnd64() & 0x800FFFFFFFFFFFFFull) | ((0x3C0ull + (r >> 8) % 128) << 52); /* ~1 */
    default: return (rnd64() & 0xFFFFF00000000000ull); /* short fractions: exact results */
  }
}

static uint32_t random_float_bits(uint32_t near) {
  const uint64_t r = rnd64();
  switch (r % 6) {
    case 0: return kSpecialF[(r >> 8) % (sizeof kSpecialF / sizeof kSpecialF[0])];
    case 1: return (uint32_t)rnd64();
    case 2: return ((uint32_t)rnd64() & 0x807FFFFFu) | ((uint32_t)((r >> 8) % 3) << 23);
    case 3:
      return (near & 0x7F800000u) + (uint32_t)(((r >> 8) % 5) << 23) - (2u << 23) +
             ((uint32_t)rnd64() & 0x807FFFFFu) * ((r >> 12) & 1) +
             (near & 0x007FFF00u) * !((r >> 12) & 1);
    case 4: return ((uint32_t)rnd64() & 0x807FFFFFu) | ((uint32_t)(0x60 + (r >> 8) % 64) << 23);
    default: return (uint32_t)rnd64() & 0xFFFF0000u;
  }
}

static int same_d(double want, double got) {
  return want != want ? dbits(got) == kDoubleNan : dbits(want) == dbits(got);
}
static int same_f(float want, float got) {
  return want != want ? fbits(got) == kFloatNan : fbits(want) == fbits(got);
}
static int sign_of(int c) { return (c > 0) - (c < 0); }

static void test_double(int iterations) {
  for (int i = 0; i < iterations; ++i) {
    const uint64_t ab = random_double_bits(rnd64()), bb = random_double_bits(ab);
    const double a = dval(ab), b = dval(bb);
    CHECK(same_d(a + b, pg_sf_adddf3(a, b)), "%016llx + %016llx", (unsigned long long)ab,
          (unsigned long long)bb);
    CHECK(same_d(a - b, pg_sf_subdf3(a, b)), "%016llx - %016llx", (unsigned long long)ab,
          (unsigned long long)bb);
    CHECK(same_d(a * b, pg_sf_muldf3(a, b)), "%016llx * %016llx", (unsigned long long)ab,
          (unsigned long long)bb);
    CHECK(same_d(a / b, pg_sf_divdf3(a, b)), "%016llx / %016llx", (unsigned long long)ab,
          (unsigned long long)bb);
    CHECK(same_f((float)a, pg_sf_truncdfsf2(a)), "(float)%016llx", (unsigned long long)ab);
    const int unordered = a != a || b != b;
    CHECK((pg_sf_eqdf2(a, b) == 0) == (a == b), "%016llx == %016llx", (unsigned long long)ab,
          (unsigned long long)bb);
    CHECK(unordered ? pg_sf_gedf2(a, b) < 0 && pg_sf_ledf2(a, b) > 0
                    : sign_of(pg_sf_gedf2(a, b)) == (a > b) - (a < b) &&
                          sign_of(pg_sf_ledf2(a, b)) == (a > b) - (a < b) &&
                          (pg_sf_ltdf2(a, b) < 0) == (a < b) && (pg_sf_gtdf2(a, b) > 0) == (a > b),
          "compare %016llx %016llx", (unsigned long long)ab, (unsigned long long)bb);
    if (a == a && a > -9.2e18 && a < 9.2e18) {
      CHECK(pg_sf_fixdfdi(a) == (int64_t)a, "(int64)%016llx", (unsigned long long)ab);
    }
    if (a == a && a > -2147483649.0 && a < 2147483648.0) {
      CHECK(pg_sf_fixdfsi(a) == (int32_t)a, "(int32)%016llx", (unsigned long long)ab);
    }
  }
}

static void test_float(int iterations) {
  for (int i = 0; i < iterations; ++i) {
    const uint32_t ab = random_float_bits((uint32_t)rnd64()), bb = random_float_bits(ab);
    const float a = fval(ab), b = fval(bb);
    CHECK(same_f(a + b, pg_sf_addsf3(a, b)), "%08x + %08x", ab, bb);
    CHECK(same_f(a - b, pg_sf_subsf3(a, b)), "%08x - %08x", ab, bb);
    CHECK(same_f(a * b, pg_sf_mulsf3(a, b)), "%08x * %08x", ab, bb);
    CHECK(same_f(a / b, pg_sf_divsf3(a, b)), "%08x / %08x", ab, bb);
    CHECK(same_d((double)a, pg_sf_extendsfdf2(a)), "(double)%08x", ab);
    const int unordered = a != a || b != b;
    CHECK((pg_sf_eqsf2(a, b) == 0) == (a == b), "%08x == %08x", ab, bb);
    CHECK(unordered ? pg_sf_gesf2(a, b) < 0 && pg_sf_lesf2(a, b) > 0
                    : sign_of(pg_sf_gesf2(a, b)) == (a > b) - (a < b) &&
                          sign_of(pg_sf_lesf2(a, b)) == (a > b) - (a < b),
          "compare %08x %08x", ab, bb);
    if (a == a && a > -9.2e18f && a < 9.2e18f) {
      CHECK(pg_sf_fixsfdi(a) == (int64_t)a, "(int64)%08x", ab);
    }
    if (a == a && a > -2147483648.5f && a < 2147483520.5f) {
      CHECK(pg_sf_fixsfsi(a) == (int32_t)a, "(int32)%08x", ab);
    }
  }
}

static void test_from_integers(int iterations) {
  const int64_t edge[] = {0, 1, -1, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN,
                          (1ll << 53) + 1, (1ll << 24) + 1, -((1ll << 53) + 3)};
  for (int i = 0; i < iterations; ++i) {
    const int64_t v = i < (int)(sizeof edge / sizeof edge[0]) ? edge[i]
                                                            : (int64_t)(rnd64() >> (rnd64() % 64));
    const int64_t s = (i & 1) ? -v : v;
    const int32_t s32 = (int32_t)s;
    CHECK(same_d((double)s, pg_sf_floatdidf(s)), "(double)%lld", (long long)s);
    CHECK(same_f((float)s, pg_sf_floatdisf(s)), "(float)%lld", (long long)s);
    CHECK(same_d((double)s32, pg_sf_floatsidf(s32)), "(double)%d", (int)s32);
    CHECK(same_f((float)s32, pg_sf_floatsisf(s32)), "(float)%d", (int)s32);
  }
}

/* An operand of random magnitude: every bit length from 0 to 64 is as likely. */
static uint64_t random_magnitude(void) {
  const int bits = (int)(rnd64() % 65);
  return bits == 0 ? 0 : rnd64() >> (64 - bits);
}

static void test_division(int iterations) {
  for (int i = 0; i < iterations; ++i) {
    const uint64_t n = random_magnitude(), d = random_magnitude();
    if (d != 0) {
      CHECK(pg_sf_udivdi3(n, d) == n / d && pg_sf_umoddi3(n, d) == n % d, "%llu / %llu",
            (unsigned long long)n, (unsigned long long)d);
      const int64_t sn = (i & 1) ? -(int64_t)(n >> 1) : (int64_t)(n >> 1);
      const int64_t sd = (i & 2) ? -(int64_t)(d >> 1) : (int64_t)(d >> 1);
      if (sd != 0) {
        CHECK(pg_sf_divdi3(sn, sd) == sn / sd && pg_sf_moddi3(sn, sd) == sn % sd,
              "%lld / %lld", (long long)sn, (long long)sd);
      }
    } else {
      CHECK(pg_sf_udivdi3(n, 0) == ~0ull && pg_sf_umoddi3(n, 0) == n, "%llu / 0",
            (unsigned long long)n);
      CHECK(pg_sf_divdi3(-(int64_t)(n >> 1), 0) == -1 &&
                pg_sf_moddi3(-(int64_t)(n >> 1), 0) == -(int64_t)(n >> 1),
            "-%llu / 0", (unsigned long long)(n >> 1));
    }
  }
  CHECK(pg_sf_divdi3(INT64_MIN, -1) == INT64_MIN && pg_sf_moddi3(INT64_MIN, -1) == 0,
        "INT64_MIN / -1 wraps");
}

int main(void) {
  test_double(600000);
  test_float(600000);
  test_from_integers(100000);
  test_division(400000);
  printf("%d checks, %d failed\n", g_checks, g_failed);
  return g_failed == 0 ? 0 : 1;
}
