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


@keras.saving.register_keras_serializable(package="pico_gpt")
class Dropout(keras.layers.Layer):
    """Inverted dropout that draws 16 random bits per element instead of a float32 uniform.

    Random-number generation was the largest non-matmul cost of a CPU train step; one 32-bit draw
    now serves two elements and no int-to-float conversion runs. The keep test `bits >= rate * 2^16`
    matches `rate` to within 2^-16 (0.1 -> 0.100006).
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = float(rate), seed
        self.threshold = round(self.rate * 65536)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        n = tf.size(x)
        bits = tf.random.stateless_uniform(
            [(n + 1) // 2],
            seed=self.seed_generator.next(),
            dtype=tf.int32,
            minval=None,
            maxval=None,
        )
        halves = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:n]  # two 16-bit draws per int32
        keep = tf.reshape(halves >= tf.constant(self.threshold, tf.uint16), tf.shape(x))
        return tf.where(keep, x * tf.cast(1.0 / (1.0 - self.rate), x.dtype), tf.zeros_like(x))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


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
        x32 = ops.cast(x, "float32")
        mean = ops.mean(x32, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * ops.rsqrt(var + self.epsilon) * ops.cast(self.gamma, "float32")
        return ops.cast(y, x.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="pico_gpt")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with one combined QKV projection and an explicit causal mask.

    The mask is built by hand (no fused attention kernel) so the graph converts to TFLite ops.
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
        B, T = ops.shape(x)[0], ops.shape(x)[1]
        C, nh, hs = self.n_embd, self.n_head, self.head_size
        # split, not qkv[i] indexing: the gradient of a strided slice zero-fills a full (B, T, 3C)
        # tensor per slice, which cost more than the attention itself on CPU
        q, k, v = ops.split(self.c_attn(x), 3, axis=-1)  # 3 x (B, T, C)
        q, k, v = (
            ops.transpose(ops.reshape(t, (B, T, nh, hs)), (0, 2, 1, 3)) for t in (q, k, v)
        )  # (B, nh, T, hs)
        q = q * ops.cast(1.0 / math.sqrt(hs), q.dtype)  # scale q, not the 4x larger (T, T) scores
        att = ops.einsum("bhqd,bhkd->bhqk", q, k)  # (B, nh, T, T); no transposed copy of k
        causal = ops.tril(ops.ones((T, T), dtype="bool"))  # (T, T), True where key <= query
        att = ops.where(causal, att, ops.cast(MASK_VALUE, att.dtype))
        att = ops.softmax(att, axis=-1)
        att = self.attn_dropout(att, training=training)
        y = ops.matmul(att, v)  # (B, nh, T, hs)
        y = ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (B, T, C))  # (B, T, C)
        return self.resid_dropout(self.c_proj(y), training=training)

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
