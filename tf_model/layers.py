"""The PicoGPT building blocks as serializable Keras 3 layers."""

import math

import keras
import tensorflow as tf
from keras import ops

LN_EPSILON = 1e-5  # LayerNormNoBias's default; the exporter's graph reads it from here
# Masked attention scores: exp(-1e4 - max) is exactly 0 in float32, and -1e4 still fits float16.
MASK_VALUE = -1e4


def normal_init(std):
    return keras.initializers.RandomNormal(mean=0.0, stddev=std)


def without_block_size(config):
    """A layer config without `block_size`: attention and blocks once took it (unused), and
    .keras files saved then still carry it."""
    return {k: v for k, v in config.items() if k != "block_size"}


# lowbias32 (C. Wellons' integer hash search): a 32-bit bijection whose output bits each flip with
# probability ~1/2 when any input bit flips.
HASH_SHIFTS = (16, 15, 16)
HASH_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)


def hash32(x):
    """lowbias32 of a uint32 tensor, elementwise: xor-shift, multiply, xor-shift, multiply,
    xor-shift (uint32 products wrap around, as the hash wants)."""
    (s1, s2, s3), (m1, m2) = HASH_SHIFTS, HASH_MULTIPLIERS
    shift = tf.bitwise.right_shift
    x = x ^ shift(x, tf.constant(s1, tf.uint32))
    x = x * tf.constant(m1, tf.uint32)
    x = x ^ shift(x, tf.constant(s2, tf.uint32))
    x = x * tf.constant(m2, tf.uint32)
    return x ^ shift(x, tf.constant(s3, tf.uint32))


def random_keep(shape, seed, threshold, offset=0):
    """(shape) bool, True where an element's 16 random bits are >= threshold (a uint32 scalar).

    Element i's bits are the top half of hash(hash((offset + i) ^ k0) + k1), with (k0, k1) the
    hashed (2,) int32 seed: counter-based like TensorFlow's stateless Philox, but a few integer
    ops per element that XLA fuses with their consumer into one vectorized pass (Philox took ~3 ns
    per 32-bit draw plus a pass per op, the largest non-matmul cost of a CPU train step). The same
    seed and offset give the same bits, so a backward pass recomputes its forward's mask instead
    of keeping it. Hashing the seed first makes the masks of neighbouring seeds (the
    SeedGenerator counts up by one) unrelated. Call it inside an XLA-compiled function."""
    key = hash32(tf.bitcast(tf.cast(seed, tf.int32), tf.uint32))  # (2,)
    key = tf.stack([key[0], hash32(key[1] ^ key[0])])  # the second key depends on both halves
    index = tf.range(tf.reduce_prod(shape), dtype=tf.int32) + tf.cast(offset, tf.int32)  # (n,)
    mixed = hash32(hash32(tf.bitcast(index, tf.uint32) ^ key[0]) + key[1])
    bits = tf.bitwise.right_shift(mixed, tf.constant(16, tf.uint32))
    return tf.reshape(bits >= threshold, shape)


@tf.function(jit_compile=True)
def dropout_mask(shape, seed, threshold, scale):
    """A (shape) mask of scale's dtype: `scale` where random_keep, else 0."""
    return tf.where(random_keep(shape, seed, threshold), scale, tf.zeros_like(scale))


@tf.function(jit_compile=True)
def keep_and_scale(x, seed, threshold, scale):
    """x * scale where random_keep(x's shape), else 0: one fused pass, no mask in memory."""
    wide = tf.cast(x, tf.float32)
    kept = tf.where(
        random_keep(tf.shape(x), seed, threshold), wide * tf.cast(scale, tf.float32), 0.0
    )
    return tf.cast(kept, x.dtype)


def dropout(x, seed, threshold, scale):
    """Inverted dropout of x with a (2,) int32 seed; the gradient recomputes the same mask."""

    @tf.custom_gradient
    def forward(x):
        def backward(dy):
            return keep_and_scale(dy, seed, threshold, scale)

        return keep_and_scale(x, seed, threshold, scale), backward

    return forward(x)


@keras.saving.register_keras_serializable(package="pico_gpt")
class Dropout(keras.layers.Layer):
    """Inverted dropout from 16 random bits per element (`random_keep`).

    The keep test `bits >= rate * 2^16` matches `rate` to within 2^-16 (0.1 -> 0.100006). Kept
    elements are multiplied by 1 / (1 - rate) in the same fused pass that draws the bits, and the
    backward pass draws the same bits again: no mask tensor is stored between the two.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = float(rate), seed
        self.threshold = round(self.rate * 65536)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def draw(self, dtype):
        """(seed, threshold, scale) of a fresh mask: what random_keep and keep_and_scale take."""
        return (
            self.seed_generator.next(),
            tf.constant(self.threshold, tf.uint32),
            tf.constant(1.0 / (1.0 - self.rate), dtype),
        )

    def mask(self, shape, dtype):
        """A fresh (shape) tensor of `dtype`: 0 where dropped, 1 / (1 - rate) where kept."""
        return dropout_mask(tf.convert_to_tensor(shape, tf.int32), *self.draw(dtype))

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        return dropout(x, *self.draw(x.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def layer_norm_no_bias(x, gamma, epsilon):
    """(x - mean) / sqrt(var + epsilon) * gamma over the last axis, with a hand-written gradient.

    The forward runs the same ops in the same order as the plain formula (outputs are bit-equal);
    the backward is the closed form dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with
    g = dy * gamma, instead of autodiff's chain of broadcast gradients (Tile, Sum, Reshape).
    """

    @tf.custom_gradient
    def forward(x, gamma):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)  # (..., 1)
        centred = x - mean
        var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)  # (..., 1)
        rstd = tf.math.rsqrt(var + epsilon)  # (..., 1)
        xhat = centred * rstd
        y = xhat * gamma

        def backward(dy):
            # Plain ops: as one XLA kernel it measured slower (~1.3 ms per launch, 3 per step).
            rows = tf.reshape(dy * xhat, [-1, tf.shape(x)[-1]])  # (N, C)
            dgamma = tf.reduce_sum(rows, axis=0)  # (C,)
            g = dy * gamma
            mean_g = tf.reduce_mean(g, axis=-1, keepdims=True)
            mean_gx = tf.reduce_mean(g * xhat, axis=-1, keepdims=True)
            return rstd * (g - mean_g - xhat * mean_gx), dgamma

        return y, backward

    return forward(x, gamma)


@keras.saving.register_keras_serializable(package="pico_gpt")
class LayerNormNoBias(keras.layers.Layer):
    """LayerNorm with a learned scale (gamma) and no offset, as the CIMv3 datapath has no bias."""

    def __init__(self, epsilon=LN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        # statistics in float32 even under mixed precision: variance of fp16 activations underflows
        y = layer_norm_no_bias(
            ops.cast(x, "float32"), ops.cast(self.gamma, "float32"), self.epsilon
        )
        return ops.cast(y, x.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@tf.function(jit_compile=True)
def softmax_and_dropout(scores, causal, seed, offset, threshold, scale):
    """(att, dropped) of (B, T, T) scores: att = softmax over keys with the non-causal scores
    masked, dropped = att with dropout (random_keep at `offset`); one fused XLA kernel."""
    wide = tf.cast(scores, tf.float32)
    att = tf.nn.softmax(tf.where(causal, wide, tf.constant(MASK_VALUE, tf.float32)), axis=-1)
    keep = random_keep(tf.shape(att), seed, threshold, offset)
    dropped = tf.where(keep, att * tf.cast(scale, tf.float32), tf.zeros_like(att))
    return att, tf.cast(dropped, scores.dtype)


@tf.function(jit_compile=True)
def softmax_and_dropout_grad(d_dropped, att, row_dot, seed, offset, threshold, scale):
    """The scores' gradient given the dropped weights' one: softmax_and_dropout backward, with
    the same mask drawn again: att * (d_att - row_dot), d_att = d_dropped where kept * scale."""
    keep = random_keep(tf.shape(att), seed, threshold, offset)
    f32 = lambda t: tf.cast(t, tf.float32)
    d_att = tf.where(keep, f32(d_dropped) * f32(scale), tf.zeros_like(f32(d_dropped)))
    return tf.cast(f32(att) * (d_att - f32(row_dot)), d_dropped.dtype)


def causal_self_attention(x, w_attn, w_proj, n_head, dropout=None):
    """softmax(q k^T / sqrt(hs) + causal mask) v per head, projected: (B, T, C) -> (B, T, C).

    x @ w_attn gives [q | k | v], each split into n_head heads of hs = C / n_head columns;
    `dropout`, if given, is Dropout.draw's (seed, threshold, scale): the attention weights of
    head h are dropped where random_keep((n_head, B, T, T), seed, threshold) is False at
    [h] (so `Dropout.mask` of that shape and seed is the mask), kept ones scaled. The math is the
    textbook one; the work is arranged for a CPU:
    - each head's q, k, v come from their own weight columns, already (B, T, hs): no split or
      transpose of a (B, T, 3C) tensor, in either direction;
    - the gradient is written by hand: it needs neither the masked scores' select nor the
      softmax's (T, T) row sums (sum_j dP_ij P_ij = dy_i . y_i, a (T, hs) product), and it
      assembles d[q | k | v] once for one weight-gradient and one input-gradient matmul;
    - with dropout, mask, softmax and dropout run as one fused kernel each way, and the backward
      draws the mask again instead of keeping an (n_head, B, T, T) tensor.
    Masked scores are MASK_VALUE below the row's maximum or lower, so their weights are exactly 0.
    """
    B, T, C = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
    hs = C // n_head
    scale = tf.cast(1.0 / math.sqrt(hs), x.dtype)
    causal = tf.linalg.band_part(tf.ones((T, T), tf.bool), -1, 0)  # (T, T), True where key <= query
    if dropout is not None:
        seed = dropout[0]
        offsets = [h * B * T * T for h in range(n_head)]  # head h's place in (n_head, B, T, T)

    def head_columns(w, part, h):  # the (C, hs) columns of head h of q (part 0), k (1) or v (2)
        start = part * C + h * hs
        return w[:, start : start + hs]

    @tf.custom_gradient
    def attention(x, w_attn, w_proj):
        rows = tf.reshape(x, (-1, C))  # (B*T, C)
        saved, ys = [], []
        for h in range(n_head):
            q, k, v = (
                tf.reshape(tf.matmul(rows, head_columns(w_attn, part, h)), (B, T, hs))
                for part in range(3)
            )  # 3 x (B, T, hs)
            q = q * scale  # scale q, not the 2x larger (T, T) scores
            scores = tf.matmul(q, k, transpose_b=True)  # (B, T, T)
            if dropout is None:  # the softmax in float32 under mixed precision, as the kernels
                wide = tf.cast(scores, tf.float32)
                att = tf.nn.softmax(tf.where(causal, wide, tf.constant(MASK_VALUE, tf.float32)), -1)
                dropped = tf.cast(att, x.dtype)
            else:
                att, dropped = softmax_and_dropout(scores, causal, seed, offsets[h], *dropout[1:])
            ys.append(tf.matmul(dropped, v))  # (B, T, hs)
            saved.append((q, k, v, att, dropped, ys[-1]))
        y = tf.reshape(tf.concat(ys, axis=-1), (-1, C))  # (B*T, C), heads side by side
        out = tf.reshape(tf.matmul(y, w_proj), (B, T, C))

        def backward(d_out):
            d_out = tf.reshape(d_out, (-1, C))  # (B*T, C)
            d_w_proj = tf.matmul(y, d_out, transpose_a=True)  # (C, C)
            d_parts = [[], [], []]  # per part (q, k, v), per head: (B, T, hs)
            for h in range(n_head):
                q, k, v, att, dropped, y_h = saved[h]
                w_proj_h = w_proj[h * hs : (h + 1) * hs]  # (hs, C): head h's rows
                dy = tf.reshape(tf.matmul(d_out, w_proj_h, transpose_b=True), (B, T, hs))
                d_v = tf.matmul(dropped, dy, transpose_a=True)  # (B, T, hs)
                d_dropped = tf.matmul(dy, v, transpose_b=True)  # (B, T, T)
                # softmax backward: att * (d_att - sum_j d_att_ij att_ij); the row sum equals
                # dy_i . y_i because y = dropped @ v
                row_dot = tf.reduce_sum(dy * y_h, axis=-1, keepdims=True)  # (B, T, 1)
                if dropout is None:  # (B, T, T); 0 where masked (att is 0)
                    d_att = tf.cast(d_dropped, tf.float32) - tf.cast(row_dot, tf.float32)
                    d_scores = tf.cast(att * d_att, x.dtype)
                else:
                    d_scores = softmax_and_dropout_grad(
                        d_dropped, att, row_dot, seed, offsets[h], *dropout[1:]
                    )
                d_parts[0].append(tf.matmul(d_scores, k) * scale)
                d_parts[1].append(tf.matmul(d_scores, q, transpose_a=True))
                d_parts[2].append(d_v)
            d_qkv = tf.reshape(tf.concat(d_parts[0] + d_parts[1] + d_parts[2], -1), (-1, 3 * C))
            d_x = tf.reshape(tf.matmul(d_qkv, w_attn, transpose_b=True), (B, T, C))
            d_w_attn = tf.matmul(rows, d_qkv, transpose_a=True)  # (C, 3C)
            return d_x, d_w_attn, d_w_proj

        return out, backward

    return attention(x, w_attn, w_proj)


@keras.saving.register_keras_serializable(package="pico_gpt")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with one combined QKV projection and an explicit causal mask.

    The Dense sublayers own the weights (and their saved names); the math, forward and backward,
    is `causal_self_attention`. The int8 export rebuilds the same forward from the weights
    (tf_model/export/graph.py).
    """

    def __init__(self, n_embd, n_head, dropout=0.0, resid_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.n_head, self.dropout, self.resid_std = n_embd, n_head, dropout, resid_std
        self.head_size = n_embd // n_head
        self.c_attn = keras.layers.Dense(
            3 * n_embd, use_bias=False, kernel_initializer=normal_init(0.02), name="c_attn"
        )
        self.c_proj = keras.layers.Dense(
            n_embd, use_bias=False, kernel_initializer=normal_init(resid_std), name="c_proj"
        )
        self.attn_dropout = Dropout(dropout, name="attn_dropout")
        self.resid_dropout = Dropout(dropout, name="resid_dropout")

    def build(self, input_shape):
        self.c_attn.build(input_shape)
        self.c_proj.build(input_shape)

    def call(self, x, training=False):
        attn_dropout = None
        if training and self.dropout > 0.0:
            attn_dropout = self.attn_dropout.draw(x.dtype)
        y = causal_self_attention(
            x,
            ops.cast(self.c_attn.kernel, x.dtype),
            ops.cast(self.c_proj.kernel, x.dtype),
            self.n_head,
            attn_dropout,
        )
        return self.resid_dropout(y, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "n_embd": self.n_embd,
            "n_head": self.n_head,
            "dropout": self.dropout,
            "resid_std": self.resid_std,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**without_block_size(config))


@keras.saving.register_keras_serializable(package="pico_gpt")
class MLP(keras.layers.Layer):
    """Dense(2C) -> activation -> Dense(C), no biases (2x expansion keeps the CIMv3 tiles square)."""

    def __init__(self, n_embd, dropout=0.0, activation="relu", resid_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.dropout, self.activation, self.resid_std = (
            n_embd,
            dropout,
            activation,
            resid_std,
        )
        self.c_fc = keras.layers.Dense(
            2 * n_embd, use_bias=False, kernel_initializer=normal_init(0.02), name="c_fc"
        )
        self.c_proj = keras.layers.Dense(
            n_embd, use_bias=False, kernel_initializer=normal_init(resid_std), name="c_proj"
        )
        self.drop = Dropout(dropout, name="dropout")

    def build(self, input_shape):
        self.c_fc.build(input_shape)
        self.c_proj.build(tuple(input_shape[:-1]) + (2 * self.n_embd,))

    def call(self, x, training=False):
        h = self.c_fc(x)  # (B, T, 2C)
        h = ops.relu(h) if self.activation == "relu" else ops.gelu(h, approximate=True)
        return self.drop(self.c_proj(h), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "n_embd": self.n_embd,
            "dropout": self.dropout,
            "activation": self.activation,
            "resid_std": self.resid_std,
        }


@keras.saving.register_keras_serializable(package="pico_gpt")
class Block(keras.layers.Layer):
    """Post-norm transformer block: x = x + attn(x); x = x + mlp(x); x = ln_2(x)."""

    def __init__(self, n_embd, n_head, dropout=0.0, activation="relu", resid_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.n_head = n_embd, n_head
        self.dropout, self.activation, self.resid_std = dropout, activation, resid_std
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, resid_std, name="attn")
        self.mlp = MLP(n_embd, dropout, activation, resid_std, name="mlp")
        self.ln_2 = LayerNormNoBias(name="ln_2")

    def build(self, input_shape):
        self.attn.build(input_shape)
        self.mlp.build(input_shape)
        self.ln_2.build(input_shape)

    def call(self, x, training=False):
        x = x + self.attn(x, training=training)
        x = x + self.mlp(x, training=training)
        return self.ln_2(x)

    def get_config(self):
        return {
            **super().get_config(),
            "n_embd": self.n_embd,
            "n_head": self.n_head,
            "dropout": self.dropout,
            "activation": self.activation,
            "resid_std": self.resid_std,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**without_block_size(config))
