"""The PicoGPT building blocks as serializable Keras 3 layers."""

import math

import keras
from keras import ops


def normal_init(std):
    return keras.initializers.RandomNormal(mean=0.0, stddev=std)


@keras.saving.register_keras_serializable(package="pico_gpt")
class LayerNormNoBias(keras.layers.Layer):
    """LayerNorm with a learned scale (gamma) and no offset, as the CIMv3 datapath has no bias."""

    def __init__(self, epsilon=1e-5, **kwargs):
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

    def __init__(self, n_embd, n_head, block_size, dropout=0.0, resid_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.n_head, self.block_size = n_embd, n_head, block_size
        self.dropout, self.resid_std = dropout, resid_std
        self.head_size = n_embd // n_head
        self.c_attn = keras.layers.Dense(3 * n_embd, use_bias=False, kernel_initializer=normal_init(0.02), name="c_attn")
        self.c_proj = keras.layers.Dense(n_embd, use_bias=False, kernel_initializer=normal_init(resid_std), name="c_proj")
        self.attn_dropout = keras.layers.Dropout(dropout, name="attn_dropout")
        self.resid_dropout = keras.layers.Dropout(dropout, name="resid_dropout")

    def build(self, input_shape):
        self.c_attn.build(input_shape)
        self.c_proj.build(input_shape)

    def call(self, x, training=False):
        B, T = ops.shape(x)[0], ops.shape(x)[1]
        C, nh, hs = self.n_embd, self.n_head, self.head_size
        qkv = self.c_attn(x)  # (B, T, 3C)
        qkv = ops.reshape(qkv, (B, T, 3, nh, hs))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B, nh, T, hs)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
        causal = ops.tril(ops.ones((T, T), dtype="bool"))  # (T, T), True where key <= query
        att = ops.where(causal, att, ops.cast(-1e4, att.dtype))
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
            "block_size": self.block_size,
            "dropout": self.dropout,
            "resid_std": self.resid_std,
        }


@keras.saving.register_keras_serializable(package="pico_gpt")
class MLP(keras.layers.Layer):
    """Dense(2C) -> activation -> Dense(C), no biases (2x expansion keeps the CIMv3 tiles square)."""

    def __init__(self, n_embd, dropout=0.0, activation="relu", resid_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.dropout, self.activation, self.resid_std = n_embd, dropout, activation, resid_std
        self.c_fc = keras.layers.Dense(2 * n_embd, use_bias=False, kernel_initializer=normal_init(0.02), name="c_fc")
        self.c_proj = keras.layers.Dense(n_embd, use_bias=False, kernel_initializer=normal_init(resid_std), name="c_proj")
        self.drop = keras.layers.Dropout(dropout, name="dropout")

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

    def __init__(self, n_embd, n_head, block_size, dropout=0.0, activation="relu", resid_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.n_head, self.block_size = n_embd, n_head, block_size
        self.dropout, self.activation, self.resid_std = dropout, activation, resid_std
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, dropout, resid_std, name="attn")
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
            "block_size": self.block_size,
            "dropout": self.dropout,
            "activation": self.activation,
            "resid_std": self.resid_std,
        }
