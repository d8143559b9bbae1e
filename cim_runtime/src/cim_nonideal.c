/* Simulated non-ideal CIM macros (host only); see cim_nonideal.h and picogpt_cim_nonideal.
 *
 * The model, per tile t (one macro) and column o, for a product with input x:
 *   programming: w'[o,i] = clamp(round(w[o,i] + N(0, (weight_noise * max|w_t|)^2)), -128, 127),
 *                drawn once at init: a weight written into a cell misses its target
 *                conductance and keeps the error (aihwkit's programming noise, here on the
 *                int8 grid the HAL takes, so a driver could program the same weights);
 *   read-out:    s = sum_i w'[o,i] x[i] over the tile's rows (the exact int32 partial sum),
 *                v = s + N(0, (out_noise * FS_t)^2) (aihwkit's out_noise: additive Gaussian
 *                noise of the analogue sum, relative to the output range),
 *                ADC: q = clamp(round(v / step), -L, L) * step, L = 2^(bits-1) - 1,
 *                step = FS_t / L (a signed ADC, symmetric levels as aihwkit's out_res), clipped
 *                at +-FS_t (aihwkit's out_bound); the runtime adds q, rounded to an integer,
 *                over the row tiles like any partial sum.
 * FS_t = adc_range * R_t, R_t the calibrated range or the tile's bound (runtime.h).
 *
 * Determinism: two xorshift64* streams seeded from `seed` (one for the weights at init, one
 * for the read-out noise, advanced product by product in the runtime's fixed order), Gaussians
 * by Box-Muller. The same build, options and calls give the same logits; another libm may
 * round log/cos differently in the last bit. */
#include "cim_nonideal.h"

#include <math.h>
#include <string.h>

#include "kernels/kernel_util.h"

#if PICOGPT_CIM_NONIDEAL

#define MAX_ADC_BITS 16
#define MAX_ADC_RANGE 16
#define X_MAX_ABS 128 /* |x| of an int8 input */

typedef struct noise_stream {
  uint64_t state;
  double spare; /* Box-Muller's second value */
  int has_spare;
} noise_stream;

typedef struct sim_tile {
  double full_scale; /* FS_t, in partial-sum units (0: not programmed yet) */
  int64_t peak;      /* largest |partial sum| read so far */
} sim_tile;

struct pg_cim_sim {
  picogpt_cim_nonideal cfg;
  int32_t num_macros;
  int32_t levels;    /* L = 2^(adc_bits - 1) - 1; 0: no ADC */
  noise_stream weight_noise, read_noise;
  sim_tile tiles[];  /* [num_macros] */
};

static void stream_seed(noise_stream *s, uint64_t seed) {
  /* splitmix64 of the seed: nearby seeds give unrelated streams, and the state is never 0 */
  uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  s->state = z ? z : 0x9E3779B97F4A7C15ull;
  s->has_spare = 0;
}

/* Uniform in (0, 1]: 53 random bits of xorshift64*, plus one so log() never sees 0. */
static double uniform(noise_stream *s) {
  uint64_t x = s->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s->state = x;
  return (double)(((x * 0x2545F4914F6CDD1Dull) >> 11) + 1) * (1.0 / 9007199254740992.0);
}

static double gaussian(noise_stream *s) {
  if (s->has_spare) {
    s->has_spare = 0;
    return s->spare;
  }
  const double r = sqrt(-2.0 * log(uniform(s))), phi = 6.283185307179586 * uniform(s);
  s->spare = r * sin(phi);
  s->has_spare = 1;
  return r * cos(phi);
}

static int fraction_ok(float v, float max) { return v >= 0.0f && v <= max; } /* NaN: no */

picogpt_status pg_cim_sim_begin(pg_prepare_ctx *ctx, const picogpt_cim_nonideal *cfg,
                                int32_t num_macros, pg_cim_sim **sim) {
  pg_interpreter *it = ctx->it;
  *sim = NULL;
  if (!pg_cim_nonideal_requested(cfg)) return PICOGPT_OK;
  if (cfg->adc_bits != 0 && (cfg->adc_bits < 2 || cfg->adc_bits > MAX_ADC_BITS)) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal.adc_bits %d: need 2..%d bits, or 0 for no ADC quantization",
                   (int)cfg->adc_bits, MAX_ADC_BITS);
  }
  if (!fraction_ok(cfg->adc_range, (float)MAX_ADC_RANGE)) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal.adc_range is not in [0, %d]: the full scale as a fraction of "
                   "each tile's reference range (0: 1)",
                   MAX_ADC_RANGE);
  }
  const struct {
    const char *name;
    float value;
  } noises[] = {{"out_noise", cfg->out_noise}, {"weight_noise", cfg->weight_noise}};
  for (int k = 0; k < 2; ++k) {
    if (!fraction_ok(noises[k].value, 1.0f)) {
      return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                     "cim_nonideal.%s is not in [0, 1]: sigma as a fraction (0.02 = 2 %%)",
                     noises[k].name);
    }
  }
  if ((cfg->adc_full_scale == NULL) != (cfg->adc_full_scale_count == 0)) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal.adc_full_scale is %s but adc_full_scale_count is %d: give "
                   "both (one range per tile used) or neither",
                   cfg->adc_full_scale ? "set" : "NULL", (int)cfg->adc_full_scale_count);
  }
  pg_cim_sim *s = (pg_cim_sim *)pg_alloc_persistent(
      ctx, sizeof(pg_cim_sim) + sizeof(sim_tile) * (size_t)num_macros);
  if (s == NULL) return it->error.status;
  s->cfg = *cfg; /* adc_full_scale is read while the tiles are programmed (init) only */
  if (s->cfg.adc_range == 0.0f) s->cfg.adc_range = 1.0f;
  s->num_macros = num_macros;
  s->levels = cfg->adc_bits ? (1 << (cfg->adc_bits - 1)) - 1 : 0;
  stream_seed(&s->weight_noise, cfg->seed);
  stream_seed(&s->read_noise, cfg->seed ^ 0x5DEECE66Dull);
  *sim = s;
  return PICOGPT_OK;
}

const int8_t *pg_cim_sim_program(pg_prepare_ctx *ctx, pg_cim_sim *sim, const pg_node *node,
                                 int32_t tile, const int8_t *weights, int32_t rows,
                                 int32_t cols, int32_t *stride) {
  const int8_t *w = weights;
  if (sim->cfg.weight_noise > 0.0f) {
    int8_t *copy = (int8_t *)pg_alloc_persistent(ctx, (size_t)rows * (size_t)cols);
    if (copy == NULL) return NULL;
    int32_t max_abs = 0;
    for (int32_t o = 0; o < cols; ++o) {
      for (int32_t i = 0; i < rows; ++i) {
        const int32_t v = weights[(intptr_t)o * *stride + i];
        if ((v < 0 ? -v : v) > max_abs) max_abs = v < 0 ? -v : v;
      }
    }
    const double sigma = (double)sim->cfg.weight_noise * (double)max_abs;
    for (int32_t o = 0; o < cols; ++o) {
      for (int32_t i = 0; i < rows; ++i) {
        double v = round((double)weights[(intptr_t)o * *stride + i] +
                         sigma * gaussian(&sim->weight_noise));
        v = v < -128.0 ? -128.0 : v > 127.0 ? 127.0 : v;
        copy[(intptr_t)o * rows + i] = (int8_t)v;
      }
    }
    w = copy;
    *stride = rows;
  }
  double reference;
  if (sim->cfg.adc_full_scale != NULL) {
    if (tile >= sim->cfg.adc_full_scale_count) {
      pg_node_fail(ctx, node, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal.adc_full_scale has %d entries, the mapping uses more tiles (tile "
                   "%d): pass picogpt_cim_peaks of this model and device",
                   (int)sim->cfg.adc_full_scale_count, (int)tile);
      return NULL;
    }
    const int32_t r = sim->cfg.adc_full_scale[tile];
    if (r <= 0) {
      pg_node_fail(ctx, node, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal.adc_full_scale[%d] = %d: a tile's calibrated range must be > 0 "
                   "(its largest |partial sum|)",
                   (int)tile, (int)r);
      return NULL;
    }
    reference = (double)r;
  } else {
    int64_t bound = 1; /* an all-zero tile: any range reads it exactly */
    for (int32_t o = 0; o < cols; ++o) {
      int64_t sum = 0;
      for (int32_t i = 0; i < rows; ++i) {
        const int32_t v = w[(intptr_t)o * *stride + i];
        sum += v < 0 ? -v : v;
      }
      if (sum * X_MAX_ABS > bound) bound = sum * X_MAX_ABS;
    }
    reference = (double)bound;
  }
  sim->tiles[tile].full_scale = (double)sim->cfg.adc_range * reference;
  return w;
}

void pg_cim_sim_read(pg_cim_sim *sim, int32_t tile, int32_t *out, int32_t n) {
  sim_tile *t = &sim->tiles[tile];
  if (sim->cfg.record_peaks) {
    for (int32_t j = 0; j < n; ++j) {
      const int64_t a = out[j] < 0 ? -(int64_t)out[j] : (int64_t)out[j];
      if (a > t->peak) t->peak = a;
    }
  }
  const double sigma = (double)sim->cfg.out_noise * t->full_scale;
  if (sim->levels == 0 && sigma == 0.0) return;
  const double step = sim->levels ? t->full_scale / sim->levels : 0.0;
  for (int32_t j = 0; j < n; ++j) {
    double v = (double)out[j];
    if (sigma > 0.0) v += sigma * gaussian(&sim->read_noise);
    if (sim->levels) {
      double level = round(v / step);
      level = level < -sim->levels ? -sim->levels : level > sim->levels ? sim->levels : level;
      v = level * step;
    }
    /* |v| <= 16 x the tile's bound (< 2^31) with the ADC; plain noise is clamped too */
    v = round(v);
    out[j] = v < -2147483647.0 ? -2147483647 : v > 2147483647.0 ? 2147483647 : (int32_t)v;
  }
}

picogpt_status pg_cim_sim_end(pg_interpreter *it, pg_cim_sim *sim) {
  const int32_t used = it->cim.map.macros_used;
  if (sim->cfg.adc_full_scale != NULL && sim->cfg.adc_full_scale_count != used) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "cim_nonideal.adc_full_scale has %d entries, the mapping uses %d tiles: pass "
                   "picogpt_cim_peaks of this model and device",
                   (int)sim->cfg.adc_full_scale_count, (int)used);
  }
  sim->cfg.adc_full_scale = NULL; /* the caller's array need not outlive init */
  return PICOGPT_OK;
}

picogpt_status pg_cim_sim_peaks(pg_interpreter *it, const pg_cim_sim *sim, int32_t *peaks,
                                int32_t n) {
  if (sim == NULL || !sim->cfg.record_peaks) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "picogpt_cim_peaks: none recorded; init with cim_nonideal.record_peaks = 1");
  }
  if (peaks == NULL || n != it->cim.map.macros_used) {
    return pg_fail(it, PICOGPT_ERR_ARGUMENT,
                   "picogpt_cim_peaks: n is %d, the mapping uses %d tiles (macros_used)", (int)n,
                   (int)it->cim.map.macros_used);
  }
  for (int32_t t = 0; t < n; ++t) {
    peaks[t] = sim->tiles[t].peak > INT32_MAX ? INT32_MAX : (int32_t)sim->tiles[t].peak;
  }
  return PICOGPT_OK;
}

#endif /* PICOGPT_CIM_NONIDEAL */
