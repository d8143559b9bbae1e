/* Compact versions of the libgcc routines the firmware calls: IEEE 754 binary32/binary64
 * arithmetic and 64-bit integer division in integers (rv32imac has no FPU and no 64-bit divide).
 *
 * The runtime computes in float and double only at init, where it derives its requantization
 * multipliers exactly as TFLite Micro does (the float/double choices matter bit for bit), and
 * divides 64-bit integers only at init and to print. GCC turns each such operation into a call
 * of a libgcc routine (__muldf3, __divdf3, __udivdi3, ...); libgcc's are general and fast and
 * take ~13.5 KB of flash, more than a third of what the model leaves. Defining the same
 * routines here makes the linker take these and leave libgcc's out: one unpack, one
 * round-and-pack and one routine per operation, shared by both formats, and one shift-subtract
 * division, ~3.7 KB.
 *
 * Semantics: IEEE 754 with round to nearest, ties to even (the only mode C code without
 * fenv.h sees), gradual underflow (subnormals in and out), signed zeros, infinities; every NaN
 * result is the canonical quiet NaN (RISC-V's: positive, payload 0), as libgcc's RISC-V
 * soft-float returns. No exception flags. Conversions to integers truncate toward zero and
 * saturate (NaN: the largest value). Integer division truncates toward zero, the remainder
 * has the dividend's sign; by zero it gives what RISC-V's divide instructions give (quotient
 * all ones, remainder the dividend). tests/test_compact_libgcc.c checks every routine against
 * the host's hardware on edge cases and millions of random operands, bit for bit.
 *
 * Built with PG_COMPACT_LIBGCC_PREFIX (the host test), the routines get that prefix instead of
 * libgcc's names and leave the host's own arithmetic alone. */
#include <stdint.h>
#include <string.h>

#ifdef PG_COMPACT_LIBGCC_PREFIX
#define SF_CAT2(a, b) a##b
#define SF_CAT(a, b) SF_CAT2(a, b)
#define SF(name) SF_CAT(PG_COMPACT_LIBGCC_PREFIX, name)
#else
#define SF(name) __##name
#endif

/* The routines (libgcc's names and signatures; comparisons return an int whose sign says). */
double SF(adddf3)(double a, double b);
double SF(subdf3)(double a, double b);
double SF(muldf3)(double a, double b);
double SF(divdf3)(double a, double b);
float SF(addsf3)(float a, float b);
float SF(subsf3)(float a, float b);
float SF(mulsf3)(float a, float b);
float SF(divsf3)(float a, float b);
double SF(extendsfdf2)(float a);
float SF(truncdfsf2)(double a);
double SF(floatsidf)(int32_t i);
double SF(floatdidf)(int64_t i);
float SF(floatsisf)(int32_t i);
float SF(floatdisf)(int64_t i);
int32_t SF(fixdfsi)(double a);
int64_t SF(fixdfdi)(double a);
int32_t SF(fixsfsi)(float a);
int64_t SF(fixsfdi)(float a);
int SF(eqdf2)(double a, double b);
int SF(nedf2)(double a, double b);
int SF(gedf2)(double a, double b);
int SF(gtdf2)(double a, double b);
int SF(ledf2)(double a, double b);
int SF(ltdf2)(double a, double b);
int SF(eqsf2)(float a, float b);
int SF(nesf2)(float a, float b);
int SF(gesf2)(float a, float b);
int SF(gtsf2)(float a, float b);
int SF(lesf2)(float a, float b);
int SF(ltsf2)(float a, float b);
uint64_t SF(udivdi3)(uint64_t n, uint64_t d);
uint64_t SF(umoddi3)(uint64_t n, uint64_t d);
int64_t SF(divdi3)(int64_t n, int64_t d);
int64_t SF(moddi3)(int64_t n, int64_t d);

/* ---- formats and the unpacked form ----------------------------------------------------- */

typedef struct format {
  int frac_bits; /* 52 or 23 */
  int exp_bits;  /* 11 or 8 */
} format;
static const format kDouble = {52, 11}, kFloat = {23, 8};

enum { CLS_ZERO, CLS_NORMAL, CLS_INF, CLS_NAN };

/* A finite non-zero value: (-1)^sign * sig * 2^(exp - 62), the leading 1 of sig at bit 62
 * (bit 63 free for a carry); bit 0 is sticky (set if anything non-zero was shifted out). */
typedef struct unpacked {
  int cls;
  int sign;
  int32_t exp;
  uint64_t sig;
} unpacked;

static int clz64(uint64_t x) { /* x != 0; a binary search: init runs ~30 K operations */
  int n = 0;
  if (!(x >> 32)) n += 32, x <<= 32;
  if (!(x >> 48)) n += 16, x <<= 16;
  if (!(x >> 56)) n += 8, x <<= 8;
  if (!(x >> 60)) n += 4, x <<= 4;
  if (!(x >> 62)) n += 2, x <<= 2;
  if (!(x >> 63)) n += 1;
  return n;
}

static uint64_t bits_of_double(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}
static double double_of_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}
static uint64_t bits_of_float(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}
static float float_of_bits(uint64_t b) {
  const uint32_t w = (uint32_t)b;
  float f;
  memcpy(&f, &w, sizeof f);
  return f;
}

static int32_t bias_of(format f) { return (1 << (f.exp_bits - 1)) - 1; }
static uint64_t sign_bit(format f) { return (uint64_t)1 << (f.frac_bits + f.exp_bits); }
static uint64_t infinity_of(format f, int sign) {
  return (sign ? sign_bit(f) : 0) | ((uint64_t)((1 << f.exp_bits) - 1) << f.frac_bits);
}
static uint64_t nan_of(format f) { /* canonical quiet NaN */
  return infinity_of(f, 0) | ((uint64_t)1 << (f.frac_bits - 1));
}

/* sig * 2^(exp - 62) with sig normalized: the leading 1 at bit 62, sticky bit kept. */
static void normalize(unpacked *u) {
  if (u->sig >> 63) {
    u->sig = (u->sig >> 1) | (u->sig & 1);
    u->exp += 1;
  } else {
    const int shift = clz64(u->sig) - 1;
    u->sig <<= shift;
    u->exp -= shift;
  }
}

static unpacked unpack(uint64_t bits, format f) {
  unpacked u = {CLS_NORMAL, (int)((bits >> (f.frac_bits + f.exp_bits)) & 1), 0, 0};
  const int32_t e = (int32_t)((bits >> f.frac_bits) & ((1u << f.exp_bits) - 1));
  uint64_t frac = bits & (((uint64_t)1 << f.frac_bits) - 1);
  if (e == (1 << f.exp_bits) - 1) {
    u.cls = frac ? CLS_NAN : CLS_INF;
    return u;
  }
  if (e == 0 && frac == 0) {
    u.cls = CLS_ZERO;
    return u;
  }
  if (e != 0) frac |= (uint64_t)1 << f.frac_bits;
  /* frac * 2^(max(e, 1) - bias - frac_bits) */
  u.sig = frac;
  u.exp = (e ? e : 1) - bias_of(f) - f.frac_bits + 62;
  normalize(&u);
  return u;
}

/* Rounds a normalized finite value to format f (to nearest, ties to even), with overflow to
 * infinity and gradual underflow. */
static uint64_t round_pack(int sign, int32_t exp, uint64_t sig, format f) {
  const uint64_t sign_mask = sign ? sign_bit(f) : 0;
  const int32_t biased = exp + bias_of(f); /* of the leading bit, if normal */
  const int32_t max_biased = (1 << f.exp_bits) - 1;
  if (biased >= max_biased) return infinity_of(f, sign);
  int32_t shift = 62 - f.frac_bits; /* bits below the last kept one */
  if (biased <= 0) shift += 1 - biased; /* subnormal: the exponent field stays 0 */
  if (shift >= 64) return sign_mask; /* below half the smallest subnormal: +-0 */
  uint64_t kept = sig >> shift;
  const uint64_t rest = sig & (((uint64_t)1 << shift) - 1), half = (uint64_t)1 << (shift - 1);
  if (rest > half || (rest == half && (kept & 1))) ++kept;
  /* A normal kept includes the leading 1, which adds 1 to the exponent field: a carry out of
   * the fraction (kept == 2^(frac_bits + 1)) lands there too, and a subnormal that rounds up
   * to 2^frac_bits becomes the smallest normal number. */
  const uint64_t bits = (biased > 0 ? (uint64_t)(biased - 1) << f.frac_bits : 0) + kept;
  if ((bits >> f.frac_bits) >= (uint64_t)max_biased) return infinity_of(f, sign);
  return sign_mask | bits;
}

/* ---- the operations ---------------------------------------------------------------------- */

static uint64_t add(uint64_t a_bits, uint64_t b_bits, int negate_b, format f) {
  unpacked a = unpack(a_bits, f), b = unpack(b_bits, f);
  b.sign ^= negate_b;
  if (a.cls == CLS_NAN || b.cls == CLS_NAN) return nan_of(f);
  if (a.cls == CLS_INF || b.cls == CLS_INF) {
    if (a.cls == CLS_INF && b.cls == CLS_INF && a.sign != b.sign) return nan_of(f);
    return infinity_of(f, a.cls == CLS_INF ? a.sign : b.sign);
  }
  if (b.cls == CLS_ZERO) {
    if (a.cls == CLS_ZERO) return (a.sign && b.sign) ? sign_bit(f) : 0; /* -0 only for -0 + -0 */
    return round_pack(a.sign, a.exp, a.sig, f);
  }
  if (a.cls == CLS_ZERO) return round_pack(b.sign, b.exp, b.sig, f);
  if (a.exp < b.exp || (a.exp == b.exp && a.sig < b.sig)) { /* |a| >= |b| from here */
    const unpacked t = a;
    a = b;
    b = t;
  }
  const int32_t d = a.exp - b.exp;
  if (d >= 63) {
    b.sig = 1; /* sticky only */
  } else if (d > 0) {
    b.sig = (b.sig >> d) | ((b.sig & (((uint64_t)1 << d) - 1)) != 0);
  }
  unpacked r = {CLS_NORMAL, a.sign, a.exp, 0};
  if (a.sign == b.sign) {
    r.sig = a.sig + b.sig; /* < 2^64 */
  } else {
    r.sig = a.sig - b.sig;
    if (r.sig == 0) return 0; /* x - x = +0 when rounding to nearest */
  }
  normalize(&r);
  return round_pack(r.sign, r.exp, r.sig, f);
}

static uint64_t mul(uint64_t a_bits, uint64_t b_bits, format f) {
  const unpacked a = unpack(a_bits, f), b = unpack(b_bits, f);
  const int sign = a.sign ^ b.sign;
  if (a.cls == CLS_NAN || b.cls == CLS_NAN) return nan_of(f);
  if (a.cls == CLS_INF || b.cls == CLS_INF) {
    return (a.cls == CLS_ZERO || b.cls == CLS_ZERO) ? nan_of(f) : infinity_of(f, sign);
  }
  if (a.cls == CLS_ZERO || b.cls == CLS_ZERO) return sign ? sign_bit(f) : 0;
  /* The 126-bit product from 32-bit halves; sig = product >> 62 with the rest as sticky. */
  const uint64_t a0 = a.sig & 0xFFFFFFFFu, a1 = a.sig >> 32;
  const uint64_t b0 = b.sig & 0xFFFFFFFFu, b1 = b.sig >> 32;
  const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
  const uint64_t lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
  const uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  unpacked r = {CLS_NORMAL, sign, a.exp + b.exp,
                (hi << 2) | (lo >> 62) | ((lo & (((uint64_t)1 << 62) - 1)) != 0)};
  normalize(&r);
  return round_pack(r.sign, r.exp, r.sig, f);
}

static uint64_t divide(uint64_t a_bits, uint64_t b_bits, format f) {
  const unpacked a = unpack(a_bits, f), b = unpack(b_bits, f);
  const int sign = a.sign ^ b.sign;
  if (a.cls == CLS_NAN || b.cls == CLS_NAN) return nan_of(f);
  if (a.cls == CLS_INF) return b.cls == CLS_INF ? nan_of(f) : infinity_of(f, sign);
  if (b.cls == CLS_INF) return sign ? sign_bit(f) : 0;
  if (b.cls == CLS_ZERO) return a.cls == CLS_ZERO ? nan_of(f) : infinity_of(f, sign);
  if (a.cls == CLS_ZERO) return sign ? sign_bit(f) : 0;
  /* q = floor(a.sig * 2^(n - 1) / b.sig) by restoring division (a.sig < 2 * b.sig): n bits,
   * the n - 1 or n - 2 below the leading one enough for the fraction, a guard bit and a bit
   * that carries the sticky remainder, wherever normalize moves it. */
  const int n = f.frac_bits + 4;
  uint64_t rem = a.sig, q = 0;
  for (int i = 0; i < n; ++i) {
    q <<= 1;
    if (rem >= b.sig) {
      rem -= b.sig;
      q |= 1;
    }
    rem <<= 1;
  }
  unpacked r = {CLS_NORMAL, sign, a.exp - b.exp - n + 63, q | (rem != 0)};
  normalize(&r);
  return round_pack(r.sign, r.exp, r.sig, f);
}

static uint64_t from_int(int64_t i, format f) {
  if (i == 0) return 0;
  const int sign = i < 0;
  unpacked r = {CLS_NORMAL, sign, 62, sign ? 0 - (uint64_t)i : (uint64_t)i};
  normalize(&r);
  return round_pack(r.sign, r.exp, r.sig, f);
}

/* Truncation toward zero into [min, max] (max = 2^bits - 1 - ... : bits 31 or 63). */
static int64_t to_int(uint64_t bits, format f, int int_bits) {
  const unpacked u = unpack(bits, f);
  const int64_t max = (int64_t)((((uint64_t)1) << int_bits) - 1), min = -max - 1;
  if (u.cls == CLS_NAN) return max;
  if (u.cls == CLS_ZERO) return 0;
  const int32_t e = u.exp; /* |value| in [2^e, 2^(e + 1)) */
  if (u.cls == CLS_INF || e >= int_bits) return u.sign ? min : max; /* -2^int_bits is min too */
  if (e < 0) return 0;
  const uint64_t magnitude = u.sig >> (62 - e);
  return u.sign ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
}

static uint64_t convert(uint64_t bits, format from, format to) {
  const unpacked u = unpack(bits, from);
  if (u.cls == CLS_NAN) return nan_of(to);
  if (u.cls == CLS_INF) return infinity_of(to, u.sign);
  if (u.cls == CLS_ZERO) return u.sign ? sign_bit(to) : 0;
  return round_pack(u.sign, u.exp, u.sig, to);
}

/* -1, 0, 1 for a < b, a == b, a > b; 2 if unordered (a NaN). */
static int compare(uint64_t a_bits, uint64_t b_bits, format f) {
  const uint64_t magnitude = sign_bit(f) - 1;
  const uint64_t inf = infinity_of(f, 0);
  const uint64_t am = a_bits & magnitude, bm = b_bits & magnitude;
  if (am > inf || bm > inf) return 2;
  if (am == 0 && bm == 0) return 0; /* +0 == -0 */
  const int as = (a_bits & sign_bit(f)) != 0, bs = (b_bits & sign_bit(f)) != 0;
  if (as != bs) return as ? -1 : 1;
  if (am == bm) return 0;
  return ((am < bm) != as) ? -1 : 1; /* for negatives the larger magnitude is the smaller */
}

/* ---- libgcc's floating-point entry points --------------------------------------------------------------- */

#define D(x) bits_of_double(x)
#define F(x) bits_of_float(x)
double SF(adddf3)(double a, double b) { return double_of_bits(add(D(a), D(b), 0, kDouble)); }
double SF(subdf3)(double a, double b) { return double_of_bits(add(D(a), D(b), 1, kDouble)); }
double SF(muldf3)(double a, double b) { return double_of_bits(mul(D(a), D(b), kDouble)); }
double SF(divdf3)(double a, double b) { return double_of_bits(divide(D(a), D(b), kDouble)); }
float SF(addsf3)(float a, float b) { return float_of_bits(add(F(a), F(b), 0, kFloat)); }
float SF(subsf3)(float a, float b) { return float_of_bits(add(F(a), F(b), 1, kFloat)); }
float SF(mulsf3)(float a, float b) { return float_of_bits(mul(F(a), F(b), kFloat)); }
float SF(divsf3)(float a, float b) { return float_of_bits(divide(F(a), F(b), kFloat)); }
double SF(extendsfdf2)(float a) { return double_of_bits(convert(F(a), kFloat, kDouble)); }
float SF(truncdfsf2)(double a) { return float_of_bits(convert(D(a), kDouble, kFloat)); }
double SF(floatsidf)(int32_t i) { return double_of_bits(from_int(i, kDouble)); }
double SF(floatdidf)(int64_t i) { return double_of_bits(from_int(i, kDouble)); }
float SF(floatsisf)(int32_t i) { return float_of_bits(from_int(i, kFloat)); }
float SF(floatdisf)(int64_t i) { return float_of_bits(from_int(i, kFloat)); }
int32_t SF(fixdfsi)(double a) { return (int32_t)to_int(D(a), kDouble, 31); }
int64_t SF(fixdfdi)(double a) { return to_int(D(a), kDouble, 63); }
int32_t SF(fixsfsi)(float a) { return (int32_t)to_int(F(a), kFloat, 31); }
int64_t SF(fixsfdi)(float a) { return to_int(F(a), kFloat, 63); }
/* libgcc's comparison contract: eq/ne return 0 iff equal; ge/gt return < 0 when a < b or
 * unordered; le/lt return > 0 when a > b or unordered. */
int SF(eqdf2)(double a, double b) { return compare(D(a), D(b), kDouble) != 0; }
int SF(nedf2)(double a, double b) { return compare(D(a), D(b), kDouble) != 0; }
int SF(gedf2)(double a, double b) {
  const int c = compare(D(a), D(b), kDouble);
  return c == 2 ? -1 : c;
}
int SF(gtdf2)(double a, double b) { return SF(gedf2)(a, b); }
int SF(ledf2)(double a, double b) {
  const int c = compare(D(a), D(b), kDouble);
  return c == 2 ? 1 : c;
}
int SF(ltdf2)(double a, double b) { return SF(ledf2)(a, b); }
int SF(eqsf2)(float a, float b) { return compare(F(a), F(b), kFloat) != 0; }
int SF(nesf2)(float a, float b) { return compare(F(a), F(b), kFloat) != 0; }
int SF(gesf2)(float a, float b) {
  const int c = compare(F(a), F(b), kFloat);
  return c == 2 ? -1 : c;
}
int SF(gtsf2)(float a, float b) { return SF(gesf2)(a, b); }
int SF(lesf2)(float a, float b) {
  const int c = compare(F(a), F(b), kFloat);
  return c == 2 ? 1 : c;
}
int SF(ltsf2)(float a, float b) { return SF(lesf2)(a, b); }

/* ---- 64-bit integer division ---------------------------------------------------------------- */

/* n / d and n % d; operands below 2^32 use the hardware's 32-bit divide, others one
 * shift-subtract step per significant bit of n. */
static uint64_t udivmod(uint64_t n, uint64_t d, uint64_t *remainder) {
  if (d == 0) {
    *remainder = n;
    return ~(uint64_t)0;
  }
  if ((n >> 32) == 0 && (d >> 32) == 0) {
    *remainder = (uint32_t)n % (uint32_t)d;
    return (uint32_t)n / (uint32_t)d;
  }
  uint64_t q = 0, r = 0;
  for (int i = n ? 63 - clz64(n) : -1; i >= 0; --i) {
    r = (r << 1) | ((n >> i) & 1);
    if (r >= d) {
      r -= d;
      q |= (uint64_t)1 << i;
    }
  }
  *remainder = r;
  return q;
}

uint64_t SF(udivdi3)(uint64_t n, uint64_t d) {
  uint64_t r;
  return udivmod(n, d, &r);
}
uint64_t SF(umoddi3)(uint64_t n, uint64_t d) {
  uint64_t r;
  udivmod(n, d, &r);
  return r;
}
/* On magnitudes; INT64_MIN / -1 wraps to INT64_MIN (remainder 0), as RISC-V's div does. */
int64_t SF(divdi3)(int64_t n, int64_t d) {
  uint64_t r;
  const uint64_t q = udivmod(n < 0 ? 0 - (uint64_t)n : (uint64_t)n,
                             d < 0 ? 0 - (uint64_t)d : (uint64_t)d, &r);
  if (d == 0) return -1;
  return (int64_t)(((n < 0) != (d < 0)) ? 0 - q : q);
}
int64_t SF(moddi3)(int64_t n, int64_t d) {
  uint64_t r;
  udivmod(n < 0 ? 0 - (uint64_t)n : (uint64_t)n, d < 0 ? 0 - (uint64_t)d : (uint64_t)d, &r);
  return (int64_t)(n < 0 ? 0 - r : r);
}
