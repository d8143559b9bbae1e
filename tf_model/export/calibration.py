"""Int8 calibration: the windows, the float statistics and the activation ranges of an export.

Everything that decides an int8 range lives here, so a range source other than post-training
calibration (e.g. ranges learned by quantization-aware training) has one module to plug into:

`calibration_data` runs the steps below and returns what the converter needs:

1. `sample_windows`: training windows, each covering every position 0..block_size-1.
2. `calibrate`: the float model over those windows gives each layer's mask value (below the
   smallest real attention score) and the KV caches the step model sees at every position.
3. `step_representative_dataset` / `full_representative_dataset`: what the converter's
   calibrator runs; it records a min/max per tensor.
4. `clipped_ranges`: narrows the recorded ranges to percentiles before the converter quantizes.
"""

import math

import numpy as np

from ..quiet import captured_c_stderr
from .flatbuffer import op_name, read_model, write_model

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


def calibration_data(graph, kind, train_tokens, num_windows, seed, progress_factory=None):
    """(mask_values, representative_dataset) for an int8 export of `graph` (float weights)."""
    config = graph.config
    windows = sample_windows(train_tokens, num_windows, config.block_size, seed)
    progress = (
        progress_factory(len(windows), "calibrating (float model)") if progress_factory else None
    )
    mask_values, caches = calibrate(graph, windows, progress)
    if progress:
        progress.close()
    if kind == "step":
        return mask_values, step_representative_dataset(windows, caches, config.n_layer)
    return mask_values, full_representative_dataset(windows)


# ---- calibration range clipping -------------------------------------------------------------

# Computed activations (outputs of these ops with more than one element) get the
# [CLIP_PERCENTILE_LOW, CLIP_PERCENTILE_HIGH] percentiles of their float calibration values as
# their int8 range instead of the raw min/max; a square (MUL of a tensor by itself) gets
# CLIP_PERCENTILE_SQUARE. A few outlier channels (up to +-43 in the last block of the fully
# trained default model, where most values are within +-6) otherwise set the scale of the whole
# tensor. Softmax, select, concat, slices, reshapes and per-row scalars (mean, rsqrt) keep the
# converter's ranges; int8 kernels saturate values outside a range.
CLIP_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "SUB", "MUL")
CLIP_PERCENTILE_LOW, CLIP_PERCENTILE_HIGH = 0.01, 99.99
CLIP_PERCENTILE_SQUARE = 99.9
# Logits more than this many nats below the step's largest logit do not matter for argmax or
# sampling (weight < e^-10); the logits range starts there (5th percentile of the per-step max
# over calibration minus this margin) so the int8 scale spends its steps near the top.
LOGITS_FLOOR_MARGIN = 10.0


def clipped_ranges(calibrated: bytes, representative_dataset) -> bytes:
    """Narrow the min/max the calibrator recorded (see CLIP_OPS) using the float values of
    every tensor over the representative dataset; returns the calibrated model to quantize."""
    from ai_edge_litert.interpreter import Interpreter

    model = read_model(calibrated)
    graph = model.subgraphs[0]
    targets = {}  # tensor index -> is a square
    for op in graph.operators:
        index = op.outputs[0]
        q = graph.tensors[index].quantization
        if (
            op_name(model, op) in CLIP_OPS
            and index not in graph.outputs
            and int(np.prod(graph.tensors[index].shape)) > 1
            and q is not None
            and q.min is not None
            and len(q.min) == 1
        ):
            targets[index] = op_name(model, op) == "MUL" and op.inputs[0] == op.inputs[1]
    logits = graph.outputs[0]
    # read the targets as extra outputs of a copy: LiteRT keeps outputs, and this needs no
    # experimental_preserve_all_tensors (which it warns is for debugging only)
    probe = read_model(calibrated)
    probe.subgraphs[0].outputs = np.array(
        list(graph.outputs) + [i for i in targets if i not in graph.outputs], np.int32
    )
    with captured_c_stderr():
        interp = Interpreter(model_content=write_model(probe), num_threads=1)
        interp.allocate_tensors()
    in_details = interp.get_input_details()
    values = {i: [] for i in targets}
    step_max = []
    for sample in representative_dataset():
        for detail, x in zip(in_details, sample):
            interp.set_tensor(detail["index"], np.asarray(x, dtype=detail["dtype"]))
        interp.invoke()
        for i in targets:
            values[i].append(interp.get_tensor(i).ravel().copy())
        step_max.append(
            interp.get_tensor(logits).reshape(-1, interp.get_tensor(logits).shape[-1]).max(-1)
        )
    for i, square in targets.items():
        v = np.concatenate(values[i])
        q = graph.tensors[i].quantization
        if square:
            lo, hi = float(q.min[0]), float(np.percentile(v, CLIP_PERCENTILE_SQUARE))
        else:
            lo, hi = (
                float(x) for x in np.percentile(v, [CLIP_PERCENTILE_LOW, CLIP_PERCENTILE_HIGH])
            )
        q.min = np.array([max(lo, float(q.min[0]))], np.float32)
        q.max = np.array([min(hi, float(q.max[0]))], np.float32)
    q = graph.tensors[logits].quantization
    floor = float(np.percentile(np.concatenate(step_max), 5)) - LOGITS_FLOOR_MARGIN
    if q is not None and q.min is not None and len(q.min) == 1 and floor < float(q.max[0]):
        q.min = np.array([max(floor, float(q.min[0]))], np.float32)
    return write_model(model)
