/* Token sampling with integer arithmetic only, so host and firmware pick the
 * same tokens for the same seed.
 *
 * Procedure (documented in README "Sampling"):
 *  1. temperature <= 0: argmax, lowest token id on ties.
 *  2. top-k: keep the k largest logits; among equal logits at the cut the
 *     lowest ids win (a 256-bucket histogram over the int8 values).
 *  3. weight_i = exp((q_i - q_max) * logits_scale / temperature) in Q0.31,
 *     computed with the softmax kernel's fixed-point exp (beta = 1/temperature);
 *     the multiplier derivation is the only floating-point step, and it uses
 *     basic IEEE operations that are identical on every conforming target.
 *  4. r = next64() mod sum(weights); the token is the first whose running
 *     weight sum exceeds r.
 * The generator is xorshift64* (see runtime.h). */
#include "quant.h"
#include "runtime_internal.h"

void picogpt_rng_seed(picogpt_rng *rng, uint64_t seed) {
  rng->state = seed != 0 ? seed : UINT64_C(0x9E3779B97F4A7C15);
}

uint32_t picogpt_rng_next(picogpt_rng *rng) {
  uint64_t s = rng->state;
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  rng->state = s;
  return (uint32_t)((s * UINT64_C(0x2545F4914F6CDD1D)) >> 32);
}

static int32_t argmax(const int8_t *logits, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

/* The weights of step 3: exp(-d * logits_scale / temperature) for a difference d to the
 * maximum logit, from a table (generate's loop) or computed one by one. */
typedef struct exp_weights {
  const int32_t *table; /* [256] by d, or NULL */
  int32_t multiplier, diff_min;
  int left_shift;
  int uniform;          /* the multiplier has no valid form: every weight is 1 */
} exp_weights;

static exp_weights exp_weights_of(float logits_scale, float temperature, const int32_t *table) {
  exp_weights e = {table, 0, 0, 0, 0};
  e.uniform = pg_softmax_prepare(1.0 / (double)temperature, (double)logits_scale, &e.multiplier,
                                 &e.left_shift, &e.diff_min) != 0;
  return e;
}

static int32_t weight_of(const exp_weights *e, int32_t diff) {
  if (e->table) return e->table[-diff];
  return e->uniform ? 1 : pg_softmax_exp(diff, e->multiplier, e->left_shift, e->diff_min);
}

static int32_t sample(const int8_t *logits, int32_t vocab_size, const picogpt_sampling *sampling,
                      const exp_weights *e, picogpt_rng *rng, int32_t *scratch) {
  /* Top-k cut: threshold value t and how many entries equal to t to keep (without a cut,
   * every logit is above t = -129; the histogram is not needed). */
  int32_t k = sampling->top_k;
  int32_t threshold = -129, keep_at_threshold = 0;
  if (k > 0 && k < vocab_size) {
    int32_t histogram[256] = {0};
    for (int32_t i = 0; i < vocab_size; ++i) histogram[logits[i] + 128]++;
    int32_t above = 0;
    threshold = 127;
    while (above + histogram[threshold + 128] < k) {
      above += histogram[threshold + 128];
      --threshold;
    }
    keep_at_threshold = k - above;
  }
  const int8_t max_logit = logits[argmax(logits, vocab_size)];
  uint64_t total = 0;
  for (int32_t i = 0; i < vocab_size; ++i) {
    int32_t w = 0;
    int keep = logits[i] > threshold;
    if (logits[i] == threshold && keep_at_threshold > 0) {
      keep = 1;
      --keep_at_threshold;
    }
    if (keep) w = weight_of(e, logits[i] - max_logit);
    scratch[i] = w;
    total += (uint64_t)w;
  }
  if (total == 0) return argmax(logits, vocab_size);
  /* Two draws, high word first: sequenced, so every compiler gives the same r. */
  const uint64_t high = picogpt_rng_next(rng);
  const uint64_t low = picogpt_rng_next(rng);
  const uint64_t r = ((high << 32) | low) % total;
  uint64_t cumulative = 0;
  for (int32_t i = 0; i < vocab_size; ++i) {
    cumulative += (uint64_t)scratch[i];
    if (cumulative > r) return i;
  }
  return argmax(logits, vocab_size);
}

static int greedy(const picogpt_sampling *sampling, int32_t vocab_size) {
  return sampling == NULL || !(sampling->temperature > 0.0f) || vocab_size == 1;
}

int32_t picogpt_sample(const int8_t *logits, int32_t vocab_size, float logits_scale,
                       const picogpt_sampling *sampling, picogpt_rng *rng, int32_t *scratch) {
  if (vocab_size <= 0) return -1;
  if (greedy(sampling, vocab_size)) return argmax(logits, vocab_size);
  const exp_weights e = exp_weights_of(logits_scale, sampling->temperature, NULL);
  return sample(logits, vocab_size, sampling, &e, rng, scratch);
}

void pg_sample_table(float logits_scale, const picogpt_sampling *sampling, int32_t table[256]) {
  if (greedy(sampling, 2)) return;
  const exp_weights e = exp_weights_of(logits_scale, sampling->temperature, NULL);
  for (int32_t d = 0; d < 256; ++d) table[d] = weight_of(&e, -d);
}

int32_t pg_sample_tabulated(const int8_t *logits, int32_t vocab_size,
                            const picogpt_sampling *sampling, const int32_t table[256],
                            picogpt_rng *rng, int32_t *scratch) {
  if (vocab_size <= 0) return -1;
  if (greedy(sampling, vocab_size)) return argmax(logits, vocab_size);
  const exp_weights e = {table, 0, 0, 0, 0};
  return sample(logits, vocab_size, sampling, &e, rng, scratch);
}
