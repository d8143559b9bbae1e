"""The int8 step model's arithmetic, simulated in float on the Keras weights (fake quantization).

    from tf_model.qat import FakeQuantPicoGPT
    fq = FakeQuantPicoGPT(keras_model, ranges)          # ranges: {point name: (min, max)}
    logits = fq(idx)                                     # (B, T, vocab), what int8 would say
    logits, values = fq(idx, quantize=False, observe=True)   # float, plus every point's values

Used for quantization-aware fine-tuning (tf_train.py --qat=True) and for choosing ranges
(tf_model/quant_ranges.py). It runs the full (B, T) sequence but rounds exactly where the
exported KV-cache step model (tf_model/export/graph.py) holds an int8 tensor; the points were
read from the converted model, and each one is the name of the op that produces that tensor
there (scope h{i}/ per block):

    emb            token + position embedding (two int8 GATHER tables, then ADD)
    h{i}/q, k, v   FULLY_CONNECTED outputs; k and v are also the int8 KV cache (same scale)
    h{i}/scores    q.k scores; cache part, new part, mask select and concat share one scale,
                   and the mask constant is the range's lowest code
    (probs)        SOFTMAX, fixed by TFLite Micro at scale 1/256, zero point -128
    h{i}/y_cache   attention over cache rows j < t;  y_new: the new row's share;  y: their sum
    h{i}/attn_proj, resid_attn, fc (relu fused), mlp_proj, resid_mlp
    h{i}/mean, centred, square, var, var_eps, rsqrt, norm    LayerNorm, centred once
    h{i}/ln_out    norm * gamma for the residual stream (the next block's matmuls get gamma
                   folded into their weights instead; the last block's goes into the logits)
    logits

Weights are rounded as the converter rounds them: FULLY_CONNECTED weights per output channel,
symmetric, codes -127..127 (after folding 1/sqrt(head_size) and gamma in); GATHER tables and
the gamma MUL constant per tensor, asymmetric. Activations use TensorFlow's FakeQuant op with
min/max nudged so that 0 is a code: the same scale and zero point the TFLite converter derives
from a calibrated range. Gradients pass straight through (inside the range for activations).

What this cannot mirror bit for bit is the integer arithmetic inside the kernels (TFLite Micro's
double-rounding requantization, fixed-point exp in SOFTMAX and RSQRT): its logits agree with
TFLite Micro's to a few int8 steps, not exactly (tests/test_qat.py states the tolerance).
"""

import math

import numpy as np
import tensorflow as tf

from .layers import LN_EPSILON, MASK_VALUE

# int8 tensors per block, in the order the step model computes them ("probs" is fixed).
BLOCK_POINTS = (
    "q",
    "k",
    "v",
    "scores",
    "y_cache",
    "y_new",
    "y",
    "attn_proj",
    "resid_attn",
    "fc",
    "mlp_proj",
    "resid_mlp",
    "mean",
    "centred",
    "square",
    "var",
    "var_eps",
    "rsqrt",
    "norm",
    "ln_out",
)
# TFLite Micro's int8 SOFTMAX output: scale 1/256, zero point -128, i.e. the range [0, 255/256].
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)


def point_names(config):
    """Every quantization point of a config's step model, in compute order."""
    names = ["emb"]
    for i in range(config.n_layer):
        last = i == config.n_layer - 1
        names += [f"h{i}/{p}" for p in BLOCK_POINTS if not (last and p == "ln_out")]
    return names + ["logits"]


def int8_params(lo, hi):
    """(scale, zero_point) the converter derives from a range [lo, hi]: widened to hold 0, then
    the zero point rounded to an int8 code ("nudged"), as FakeQuant does too."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zero_point = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return scale, zero_point


def int8_grid(lo, hi):
    """The real values of int8 codes -128 and 127 for the range [lo, hi]."""
    scale, zero_point = int8_params(lo, hi)
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def _round_half_away(x):
    return tf.sign(x) * tf.floor(tf.abs(x) + 0.5)


def fake_quant_per_channel(w):
    """Symmetric int8 per output channel (last axis), codes -127..127; straight-through."""
    scale = tf.maximum(tf.reduce_max(tf.abs(w), axis=0), 1e-30) / 127.0  # (out,)
    quantized = tf.clip_by_value(_round_half_away(w / scale), -127.0, 127.0) * scale
    return w + tf.stop_gradient(quantized - w)


def fake_quant_per_tensor(w):
    """Asymmetric int8 over the tensor's own [min, max] (GATHER tables, MUL constants)."""
    lo = tf.stop_gradient(tf.minimum(tf.reduce_min(w), 0.0))
    hi = tf.stop_gradient(tf.maximum(tf.reduce_max(w), 0.0))
    return tf.quantization.fake_quant_with_min_max_vars(w, lo, hi, num_bits=8)


class FakeQuantPicoGPT:
    """A Keras PicoGPT's forward pass with int8 rounding at the step model's tensors.

    The ranges live in a non-trainable (num_points, 2) variable so that a compiled train step
    reads updates; the Keras model's own variables are the ones trained.
    """

    def __init__(self, model, ranges=None, float_points=()):
        self.model = model
        # points left in float, for finding what costs accuracy: names from point_names(),
        # "probs" (softmax), "weights" (every matmul weight) or "constants" (tables, gamma)
        self.float_points = frozenset(float_points)
        self.config = model.config
        self.names = point_names(self.config)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.ranges = tf.Variable(
            np.zeros((len(self.names), 2), np.float32), trainable=False, name="quant_ranges"
        )
        if ranges is not None:
            self.set_ranges(ranges)

    def set_ranges(self, ranges):
        missing = [n for n in self.names if n not in ranges]
        if missing:
            raise ValueError(
                f"quantization ranges lack {missing}; expected one (min, max) per point of "
                f"{self.names}"
            )
        values = np.array(
            [[min(float(ranges[n][0]), 0.0), max(float(ranges[n][1]), 0.0)] for n in self.names],
            np.float32,
        )
        if not np.all(np.isfinite(values)) or np.any(values[:, 1] <= values[:, 0]):
            bad = [n for n, (lo, hi) in zip(self.names, values) if not lo < hi]
            raise ValueError(f"quantization ranges must be finite with min < max; bad: {bad}")
        self.ranges.assign(values)

    def get_ranges(self):
        return {n: (float(lo), float(hi)) for n, (lo, hi) in zip(self.names, self.ranges.numpy())}

    def __call__(self, idx, training=False, quantize=True, observe=False):
        """idx (B, T) int -> logits (B, T, vocab); with observe=True also {point: float values}
        in the full-sequence layout (scores (B, nh, T, T) before masking)."""
        c = self.config
        nh, hs, C = c.n_head, c.head_size, c.n_embd
        T = tf.shape(idx)[1]
        values = {}

        def point(name, x):
            if observe:
                values[name] = x
            if not quantize or name in self.float_points:
                return x
            r = self.ranges[self.index[name]]
            return tf.quantization.fake_quant_with_min_max_vars(x, r[0], r[1], num_bits=8)

        def weight(w):
            return fake_quant_per_channel(w) if quantize and "weights" not in skip else w

        def constant(w):
            return fake_quant_per_tensor(w) if quantize and "constants" not in skip else w

        skip = self.float_points

        def heads(x):  # (B, T, C) -> (B, nh, T, hs)
            return tf.transpose(tf.reshape(x, [-1, T, nh, hs]), [0, 2, 1, 3])

        m = self.model
        emb = tf.gather(constant(m.wte.embeddings), idx) + constant(m.wpe.embeddings)[:T]
        x = point("emb", m.drop(emb, training=training))  # (B, T, C)
        causal = tf.linalg.band_part(tf.ones([T, T], tf.bool), -1, 0)  # (T, T): key j <= query t
        earlier = tf.linalg.band_part(tf.ones([T, T]), -1, 0) - tf.eye(T)  # (T, T): j < t
        fc_in, gamma_in = x, None  # block input as the matmuls see it, and gamma to fold in
        for i, block in enumerate(m.blocks):
            p = f"h{i}/"
            attn, mlp = block.attn, block.mlp
            w_attn = attn.c_attn.kernel  # (C, 3C): [q | k | v] columns
            if gamma_in is not None:
                w_attn = gamma_in[:, None] * w_attn
            wq, wk, wv = tf.split(w_attn, 3, axis=-1)
            q = heads(point(p + "q", fc_in @ weight(wq / math.sqrt(hs))))  # (B, nh, T, hs)
            k = heads(point(p + "k", fc_in @ weight(wk)))  # (B, nh, T, hs)
            v = heads(point(p + "v", fc_in @ weight(wv)))  # (B, nh, T, hs)
            scores = tf.einsum("bhqd,bhkd->bhqk", q, k)  # (B, nh, T, T)
            if observe:
                values[p + "scores"] = scores  # masked entries included
            if quantize and p + "scores" not in skip:
                r = self.ranges[self.index[p + "scores"]]
                scores = tf.quantization.fake_quant_with_min_max_vars(
                    scores, r[0], r[1], num_bits=8
                )
                mask_value = _nudged_min(r[0], r[1])  # the int8 mask constant is code -128
            else:
                mask_value = tf.constant(MASK_VALUE)
            scores = tf.where(causal, scores, mask_value)
            # the step model's softmax also sees one more masked entry (cache rows t..T-1 are
            # masked and the new row comes separately): (T - t) masked, not (T - 1 - t)
            extra = tf.fill(tf.concat([tf.shape(scores)[:3], [1]], 0), mask_value)
            probs = tf.nn.softmax(tf.concat([scores, extra], axis=-1))[..., :-1]  # (B,nh,T,T)
            if quantize and "probs" not in skip:
                probs = tf.quantization.fake_quant_with_min_max_vars(
                    probs, SOFTMAX_RANGE[0], SOFTMAX_RANGE[1], num_bits=8
                )
            probs = attn.attn_dropout(probs, training=training)
            y_cache = point(p + "y_cache", tf.matmul(probs * earlier, v))  # (B, nh, T, hs)
            diagonal = tf.linalg.diag_part(probs)[..., None]  # (B, nh, T, 1): p_tt
            y_new = point(p + "y_new", diagonal * v)  # (B, nh, T, hs)
            y = point(p + "y", y_cache + y_new)
            y = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [-1, T, C])  # (B, T, C)
            proj = point(p + "attn_proj", y @ weight(attn.c_proj.kernel))
            x = point(p + "resid_attn", x + attn.resid_dropout(proj, training=training))
            h = point(p + "fc", tf.nn.relu(x @ weight(mlp.c_fc.kernel)))  # (B, T, 2C)
            proj = point(p + "mlp_proj", h @ weight(mlp.c_proj.kernel))
            x = point(p + "resid_mlp", x + mlp.drop(proj, training=training))
            mean = point(p + "mean", tf.reduce_mean(x, axis=-1, keepdims=True))  # (B, T, 1)
            centred = point(p + "centred", x - mean)
            square = point(p + "square", centred * centred)
            var = point(p + "var", tf.reduce_mean(square, axis=-1, keepdims=True))
            var_eps = point(p + "var_eps", var + LN_EPSILON)
            # int8 var_eps can round to 0; the int8 RSQRT then saturates, here the range clamps
            rsqrt = point(p + "rsqrt", tf.math.rsqrt(tf.maximum(var_eps, LN_EPSILON)))
            norm = point(p + "norm", centred * rsqrt)  # (B, T, C)
            gamma = block.ln_2.gamma
            if i < c.n_layer - 1:
                x = point(p + "ln_out", norm * constant(gamma))
            fc_in, gamma_in = norm, gamma
        w_logits = gamma_in[:, None] * tf.transpose(m.wte.embeddings)  # (C, vocab)
        logits = point("logits", fc_in @ weight(w_logits))  # (B, T, vocab)
        return (logits, values) if observe else logits


def _nudged_min(lo, hi):
    """Real value of code -128 for a range, as a tensor (see int8_grid)."""
    lo, hi = tf.minimum(lo, 0.0), tf.maximum(hi, 0.0)
    scale = (hi - lo) / 255.0
    zero_point = tf.clip_by_value(_round_half_away(-128.0 - lo / scale), -128.0, 127.0)
    return (-128.0 - zero_point) * scale


def _snap_per_channel(w):
    """w's nearest point on its own per-output-channel int8 grid (numpy, (in, out))."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-30) / 127.0
    return (
        np.clip(np.sign(w / scale) * np.floor(np.abs(w / scale) + 0.5), -127, 127) * scale
    ).astype(np.float32)


def _snap_per_tensor(w):
    """w's nearest point on its per-tensor asymmetric int8 grid (GATHER tables, MUL constants)."""
    return fake_quant_per_tensor(tf.constant(w)).numpy()


def snap_weights(model):
    """Move the Keras model's weights onto the int8 grid the exporter rounds them to, so that
    the float model *is* the int8 model's weights (weight rounding then costs no agreement).

    Exact for every FULLY_CONNECTED weight (per channel, with the previous block's gamma and
    1/sqrt(head_size) folded in, as the converter folds them), for wpe and for the gamma MUL
    constants. wte is tied: its grid is the logits matmul's (per vocabulary row, gamma folded);
    its GATHER table still rounds per tensor."""
    blocks = model.blocks
    for i, block in enumerate(blocks):
        if i < len(blocks) - 1:  # the last gamma has no MUL of its own (folded into the logits)
            block.ln_2.gamma.assign(_snap_per_tensor(block.ln_2.gamma.numpy()))
    gamma_in = None
    for block in blocks:
        attn, mlp = block.attn, block.mlp
        w = attn.c_attn.kernel.numpy()  # (C, 3C)
        g = np.ones((w.shape[0], 1), np.float32) if gamma_in is None else gamma_in[:, None]
        attn.c_attn.kernel.assign(_snap_per_channel(g * w) / g)
        for dense in (attn.c_proj, mlp.c_fc, mlp.c_proj):
            dense.kernel.assign(_snap_per_channel(dense.kernel.numpy()))
        gamma_in = block.ln_2.gamma.numpy()
    wte = model.wte.embeddings.numpy()  # (vocab, C); the logits weights are (gamma * wte)^T
    model.wte.embeddings.assign((_snap_per_channel((gamma_in[None, :] * wte).T).T) / gamma_in)
    model.wpe.embeddings.assign(_snap_per_tensor(model.wpe.embeddings.numpy()))
