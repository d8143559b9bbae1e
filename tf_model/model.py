"""PicoGPT: a tiny post-norm character-level GPT in Keras 3, shaped for the CIMv3 accelerator."""

import math

import keras
from keras import ops

from .config import PicoGPTConfig
from .layers import Block, Dropout, normal_init


@keras.saving.register_keras_serializable(package="pico_gpt")
class PicoGPT(keras.Model):
    """Token + learned position embeddings -> n_layer post-norm blocks -> logits tied to wte."""

    def __init__(self, config=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = PicoGPTConfig.from_dict(config)
        self.config = config or PicoGPTConfig()
        c = self.config
        resid_std = 0.02 / math.sqrt(2 * c.n_layer)  # GPT-2: scale residual projections by depth
        self.wte = keras.layers.Embedding(
            c.vocab_size, c.n_embd, embeddings_initializer=normal_init(0.02), name="wte"
        )
        self.wpe = keras.layers.Embedding(
            c.block_size, c.n_embd, embeddings_initializer=normal_init(0.02), name="wpe"
        )
        self.drop = Dropout(c.dropout, name="drop")
        self.blocks = [
            Block(c.n_embd, c.n_head, c.dropout, c.activation, resid_std, name=f"h_{i}")
            for i in range(c.n_layer)
        ]
        self.build((None, c.block_size))

    def build(self, input_shape):
        self.wte.build(input_shape)
        self.wpe.build(input_shape)
        for block in self.blocks:
            block.build(tuple(input_shape) + (self.config.n_embd,))
        self.built = True

    def call(self, idx, training=False):
        T = ops.shape(idx)[1]
        x = self.wte(idx) + self.wpe(ops.arange(T))  # (B, T, C)
        x = self.drop(x, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        wte = ops.cast(self.wte.embeddings, x.dtype)
        return ops.matmul(x, ops.transpose(wte))  # (B, T, vocab_size), tied to the input embedding

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def float32_twin(model):
    """`model` itself if it computes in float32, else a float32 PicoGPT holding its weights.

    A model built under a mixed policy (mixed_bfloat16 / mixed_float16 training) reads its
    float32 variables as 16-bit inside every call, and a .keras file keeps that policy: what is
    saved, sampled or evaluated goes through this, so it computes in float32 whatever the
    training precision was."""
    if model.dtype_policy.name == "float32" and all(
        layer.dtype_policy.name == "float32" for layer in model._flatten_layers()
    ):
        return model
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # the sublayers take the global policy
    try:
        twin = PicoGPT(model.config, name=model.name)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


def count_params(model):
    return sum(int(math.prod(w.shape)) for w in model.trainable_weights)
