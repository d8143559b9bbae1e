"""Int8 activation ranges: observe them on the float model, choose them, put them into an export.

    from tf_model.quant_ranges import observe, choose_ranges, apply_ranges
    values = observe(keras_model, windows)             # {point: float32 samples}
    ranges = choose_ranges(values, "mse")              # {point: (min, max)}
    calibrated = apply_ranges(calibrated, ranges)      # before the converter's quantizer runs

The exporter (tf_model/export/calibration.py, --ranges) and QAT (tf_train.py --qat=True) take
their ranges from here. A point is a quantized tensor of the step model, named as in
tf_model/qat.py (h0/q, ...). The export graphs (tf_model/export/graph.py) name their ops the same way, so a converted model's tensor names say which point
each tensor is (`tensor_points`). Policies for choosing a range from a point's float values:

    minmax      the observed extremes (the converter's own calibration)
    percentile  0.01..99.99th percentile for matmul/add/mul outputs, 99.9th for squares,
                extremes for per-row scalars (the default for a float checkpoint)
    mse         per point, the range (from a grid of percentile pairs) with the least mean
                squared int8 rounding + clipping error on the observed values

Every policy gives the attention scores [mask value, high] (the mask constant is the lowest
code) and the logits a floor LOGITS_FLOOR_MARGIN below the 5th percentile of each position's
largest logit (lower logits do not matter after softmax).
"""

import math
import re

import numpy as np

from .export.calibration import MASK_MARGIN

POLICIES = ("minmax", "percentile", "mse")
LOGITS_FLOOR_MARGIN = 10.0  # nats below the typical row maximum; e^-10 weighs nothing
LOGITS_CEILING_PERCENTILE = 100.0  # of each position's largest logit: the top of the logits range
# percentile policy; per-row scalars keep their extremes
PERCENTILE_LOW, PERCENTILE_HIGH, PERCENTILE_SQUARE = 0.01, 99.99, 99.9
ROW_SCALARS = ("mean", "var", "var_eps", "rsqrt")
NONNEGATIVE = ("fc", "square", "var", "var_eps", "rsqrt")  # relu, squares and what follows
# mse policy: candidate ends, as percentiles of the observed values (100 = the extreme)
MSE_PERCENTILES = (100.0, 99.999, 99.99, 99.95, 99.9, 99.8, 99.5, 99.0, 98.0)
MSE_MAX_SAMPLES = 200_000  # values per point the search scores (a fixed random subset)
# export-graph op names that share the scores' int8 parameters
SCORE_ALIASES = ("scores_cache", "score_new", "scores_masked")


def point_kind(name):
    """The op part of a point name ("h0/fc" -> "fc", "logits" -> "logits")."""
    return name.rsplit("/", 1)[-1]


# ---- observing ------------------------------------------------------------------------------


def observe(model, windows, batch_size=8, progress=None):
    """Float values at every point over `windows` (N, T) int, teacher-forced from position 0.
    Also "logits_row_max": each position's largest logit (for the logits floor)."""
    import tensorflow as tf

    from .qat import FakeQuantPicoGPT

    fq = FakeQuantPicoGPT(model)
    forward = tf.function(lambda x: fq(x, quantize=False, observe=True), reduce_retracing=True)
    T = windows.shape[1]
    visible = np.tril(np.ones((T, T), bool))  # (T, T): the scores a query sees, j <= t
    collected = {}
    for first in range(0, len(windows), batch_size):
        logits, values = forward(np.asarray(windows[first : first + batch_size], np.int32))
        values["logits_row_max"] = tf.reduce_max(logits, axis=-1)
        for name, v in values.items():
            v = np.asarray(v, np.float32)
            if point_kind(name) == "scores":
                v = v[:, :, visible]  # (B, nh, visible entries)
            collected.setdefault(name, []).append(v.ravel())
        if progress:
            progress.update(min(batch_size, len(windows) - first))
    return {name: np.concatenate(parts) for name, parts in collected.items()}


# ---- choosing -------------------------------------------------------------------------------


def mask_value(scores):
    """The attention mask constant: MASK_MARGIN below the smallest real score (export/calibration.py's calibrate)."""
    return float(math.floor(float(np.min(scores))) - MASK_MARGIN)


def logits_floor(row_max):
    return float(np.percentile(row_max, 5)) - LOGITS_FLOOR_MARGIN


def int8_mse(values, lo, hi):
    """Mean squared error of rounding `values` to the int8 grid of [lo, hi] (clipping included)."""
    from .qat import int8_params

    scale, zero_point = int8_params(lo, hi)
    codes = np.clip(np.round(values / scale) + zero_point, -128, 127)
    return float(np.mean(((codes - zero_point) * scale - values) ** 2))


def mse_range(values, fixed_low=None, nonnegative=False):
    """The (lo, hi) pair from the MSE_PERCENTILES grid with the least int8 error."""
    rng = np.random.default_rng(0)
    sample = values if len(values) <= MSE_MAX_SAMPLES else rng.choice(values, MSE_MAX_SAMPLES)
    highs = np.percentile(values, MSE_PERCENTILES)
    if fixed_low is not None:
        lows = [fixed_low]
    elif nonnegative:
        lows = [0.0]
    else:
        lows = np.percentile(values, [100.0 - p for p in MSE_PERCENTILES])
    best = min(
        ((int8_mse(sample, lo, hi), lo, hi) for lo in lows for hi in highs if hi > lo),
        key=lambda t: t[0],
    )
    return float(best[1]), float(best[2])


def choose_range(name, values, policy, row_max=None):
    kind = point_kind(name)
    lo, hi = float(np.min(values)), float(np.max(values))
    if kind == "scores":
        low = mask_value(values)
        if policy == "mse":
            return mse_range(values, fixed_low=low)
        return low, hi
    if kind == "logits":
        low = max(logits_floor(row_max), lo)
        if policy == "mse":
            return mse_range(values, fixed_low=low)
        return low, min(hi, float(np.percentile(row_max, LOGITS_CEILING_PERCENTILE)))
    if policy == "minmax" or (policy == "percentile" and kind in ROW_SCALARS):
        return lo, hi
    if policy == "percentile":
        if kind == "square":
            return lo, float(np.percentile(values, PERCENTILE_SQUARE))
        p_lo, p_hi = np.percentile(values, [PERCENTILE_LOW, PERCENTILE_HIGH])
        return max(float(p_lo), lo), min(float(p_hi), hi)
    if policy == "mse":
        return mse_range(values, nonnegative=kind in NONNEGATIVE)
    raise ValueError(f"range policy must be one of {POLICIES}, got {policy!r}")


def choose_ranges(values, policy, names=None):
    """{point: (lo, hi)} for the observed `values` (from observe) under `policy`."""
    if policy not in POLICIES:
        raise ValueError(f"range policy must be one of {POLICIES}, got {policy!r}")
    names = names or [n for n in values if n != "logits_row_max"]
    return {n: choose_range(n, values[n], policy, values.get("logits_row_max")) for n in names}


# ---- the converted model --------------------------------------------------------------------


def table_ranges(model):
    """The GATHER outputs' ranges: their tables' own extremes. The converter quantizes a table
    with its output's parameters and would otherwise record the output's calibrated range
    (for the token table, that of the sum it feeds: 20% coarser on the default model)."""
    ranges = {}
    for point, table in (("token_emb", model.wte.embeddings), ("pos_emb", model.wpe.embeddings)):
        table = np.asarray(table)
        ranges[point] = (min(float(table.min()), 0.0), max(float(table.max()), 0.0))
    return ranges


def tensor_point(tensor_name, points, aliases=True):
    """The point a converted tensor is, from its name, or None. Fused ops join their op names
    with ';' and the output is the last one; the converter may append a digit to it.
    aliases=False: only the tensor named after the point itself, not the attention ops whose
    outputs share the scores' range (SCORE_ALIASES)."""
    last = tensor_name.split(";")[-1]
    for candidate in (last, re.sub(r"\d+$", "", last)):
        scope, _, op = candidate.rpartition("/")
        if aliases and op in SCORE_ALIASES:
            candidate = f"{scope}/scores"
        if candidate in points:
            return candidate
    return None


def tensor_points(model, points):
    """{tensor index: point} for the op outputs of a read_model() flatbuffer object."""
    from .export.flatbuffer import tensor_name

    graph = model.subgraphs[0]
    found = {}
    for op in graph.operators:
        index = op.outputs[0]
        name = tensor_point(tensor_name(graph.tensors[index]), points)
        if name is not None:
            found[index] = name
    if "logits" in points and "logits" not in found.values():
        # before export/flatbuffer.py's finalize names the outputs, the converter calls them
        # Identity, Identity_1, ...; the logits are the graph functions' first output
        found[graph.outputs[0]] = "logits"
    return found


# ops whose int8 output must carry their input's parameters
SAME_SCALE_OPS = ("RESHAPE", "STRIDED_SLICE")


def apply_ranges(calibrated: bytes, ranges) -> bytes:
    """Set the calibrated min/max of every point tensor (and of reshapes/slices of it) to
    `ranges`; the converter's quantizer then derives the int8 scale and zero point from them."""
    from .export.flatbuffer import op_name, read_model, write_model

    model = read_model(calibrated)
    graph = model.subgraphs[0]
    assigned = {}
    for index, name in tensor_points(model, set(ranges)).items():
        assigned[index] = ranges[name]
    for op in graph.operators:  # operators are stored in execution order
        if op_name(model, op) in SAME_SCALE_OPS and op.inputs[0] in assigned:
            assigned[op.outputs[0]] = assigned[op.inputs[0]]
    for index, (lo, hi) in assigned.items():
        q = graph.tensors[index].quantization
        if q is None or q.min is None or len(q.min) != 1:
            continue  # not a calibrated activation (the converter keeps it float or fixed)
        q.min = np.array([lo], np.float32)
        q.max = np.array([hi], np.float32)
    return write_model(model)


def ranges_from_model(data: bytes, points):
    """{point: (lo, hi)}: the real values of codes -128 and 127 of each point tensor in an
    int8 export (what the exported model actually uses)."""
    from .export.flatbuffer import read_model

    model = read_model(data)
    graph = model.subgraphs[0]
    ranges = {}
    for index, name in tensor_points(model, set(points)).items():
        q = graph.tensors[index].quantization
        scale, zero_point = float(q.scale[0]), int(q.zeroPoint[0])
        ranges[name] = ((-128 - zero_point) * scale, (127 - zero_point) * scale)
    return ranges
