"""Int8 calibration: the windows, the float statistics and the activation ranges of an export.

Everything that decides an int8 range lives here, so a range source other than post-training
calibration (e.g. ranges learned by quantization-aware training) has one module to plug into:

`calibration_data` runs the steps below and returns what the converter needs:

1. `sample_windows`: training windows, each covering every position 0..block_size-1.
2. `calibrate`: the float model over those windows gives each layer's mask value (below the
   smallest real attention score) and the KV caches the step model sees at every position.
3. `step_representative_dataset` / `full_representative_dataset`: what the converter's
   calibrator runs; it records a min/max per tensor.
4. `int8_ranges`: the range of every int8 tensor, learned by quantization-aware training
   (stored in model_config.pkl) or chosen from the float model's values (tf_model/quant_ranges.py);
   they replace the calibrator's min/max before the converter quantizes.
"""

import math
import os

import numpy as np

from ..checkpoint import CONFIG_FILE
from .errors import ExportError

# Masked scores sit this many nats below the smallest real score seen in calibration: with up
# to block_size masked entries each weighted <= e^-10 relative to the row maximum, they shift
# the softmax denominator by < 0.6% while stretching the int8 score range by only ~10 nats.
MASK_MARGIN = 10.0


def sample_windows(tokens, num_windows, length, seed):
    """`num_windows` random windows of `length` tokens, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.integers(0, len(tokens) - length, size=num_windows))
    return np.stack([np.asarray(tokens[s : s + length], dtype=np.int32) for s in starts])


def calibrate(graph, windows, progress=None):
    """Run the float model over training windows.

    Returns (mask_values, per-window probes) where probes[w] = [K_0, Vt_0, K_1, ...] (caches
    exactly as the step model sees them) and mask_values[i] = floor(smallest real attention
    score in layer i) - MASK_MARGIN.
    """
    fn = graph.full_function(with_probes=True)
    n_layer = graph.config.n_layer
    mins = np.full(n_layer, np.inf)
    caches = []
    for window in windows:
        out = fn(window[None, :])
        probes = out[1:]
        per_window = []
        for i in range(n_layer):
            k, vt, real_min = probes[3 * i], probes[3 * i + 1], probes[3 * i + 2]
            per_window += [k.numpy(), vt.numpy()]
            mins[i] = min(mins[i], float(real_min))
        caches.append(per_window)
        if progress:
            progress.update(1)
    mask_values = [float(math.floor(m) - MASK_MARGIN) for m in mins]
    return mask_values, caches


def step_representative_dataset(windows, caches, n_layer):
    """Every position 0..T-1 of every window, with the cache as it is at that step."""

    def gen():
        for window, window_caches in zip(windows, caches):
            T = len(window)
            for t in range(T):
                sample = [np.array([window[t]], np.int32), np.array([t], np.int32)]
                for i in range(n_layer):
                    k, vt = window_caches[2 * i], window_caches[2 * i + 1]
                    k_t = np.zeros_like(k)  # (nh, T, hs): rows < t filled, later rows empty
                    k_t[:, :t] = k[:, :t]
                    vt_t = np.zeros_like(vt)  # (nh, hs, T): columns < t filled
                    vt_t[:, :, :t] = vt[:, :, :t]
                    sample += [k_t, vt_t]
                yield sample

    return gen


def full_representative_dataset(windows):
    def gen():
        for window in windows:
            yield [window[None, :].astype(np.int32)]

    return gen


def calibration_data(
    checkpoint, graph, kind, train_tokens, num_windows, seed, range_policy, progress_factory=None
):
    """(mask_values, representative_dataset, ranges) for an int8 export of `graph` (float
    weights of `checkpoint`); ranges: {tensor point: (min, max)} for quant_ranges.apply_ranges."""
    from ..quant_ranges import table_ranges

    config = graph.config
    windows = sample_windows(train_tokens, num_windows, config.block_size, seed)
    progress = (
        progress_factory(len(windows), "calibrating (float model)") if progress_factory else None
    )
    _, caches = calibrate(graph, windows, progress)
    if progress:
        progress.close()
    ranges = int8_ranges(checkpoint, windows, range_policy)
    # the mask constant is the scores' lowest int8 code, so it costs no range
    mask_values = [ranges[f"h{i}/scores"][0] for i in range(config.n_layer)]
    ranges = {**ranges, **table_ranges(checkpoint.model)}
    if kind == "step":
        representative = step_representative_dataset(windows, caches, config.n_layer)
    else:
        representative = full_representative_dataset(windows)
    return mask_values, representative, ranges


# ---- activation ranges ----------------------------------------------------------------------

RANGE_POLICIES = ("auto", "checkpoint", "minmax", "percentile", "mse")
DEFAULT_PTQ_RANGES = "percentile"  # what "auto" means for a float (not QAT) checkpoint


def resolve_range_policy(checkpoint, policy):
    """ "auto": the QAT ranges stored with the checkpoint if any, else DEFAULT_PTQ_RANGES."""
    if policy not in RANGE_POLICIES:
        raise ExportError(f"--ranges must be one of {RANGE_POLICIES}, got {policy!r}")
    if policy == "auto":
        return "checkpoint" if checkpoint.info.get("quant_ranges") else DEFAULT_PTQ_RANGES
    return policy


def int8_ranges(checkpoint, windows, policy):
    """{point: (min, max)} for quant_ranges.apply_ranges: the ones a QAT run stored in
    model_config.pkl ("checkpoint"), or observed by the float model on `windows` under a
    quant_ranges policy (minmax, percentile, mse). "auto" chooses (resolve_range_policy)."""
    from ..qat import point_names
    from ..quant_ranges import choose_ranges, observe

    policy = resolve_range_policy(checkpoint, policy)
    names = point_names(checkpoint.config)
    if policy != "checkpoint":
        return choose_ranges(observe(checkpoint.model, windows), policy, names)
    config_path = os.path.join(checkpoint.model_dir, CONFIG_FILE)
    stored = checkpoint.info.get("quant_ranges")
    if not stored:
        raise ExportError(
            f"{config_path} holds no quantization ranges: only a tf_train.py --qat=True run "
            "stores them. Choose --ranges percentile, mse or minmax for a float checkpoint."
        )
    missing = [n for n in names if n not in stored]
    if missing:
        raise ExportError(
            f"the quantization ranges in {config_path} lack {missing}: they were not learned "
            "for this model. Re-run the QAT fine-tuning (docs/export.md), or choose --ranges "
            "percentile, mse or minmax."
        )
    return {n: tuple(stored[n]) for n in names}
