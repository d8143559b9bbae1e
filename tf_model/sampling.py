"""Sampling in Python: incremental decoders for the Keras model and LiteRT, and the sampler.

    from tf_model.sampling import KerasDecoder, generate
    decoder = KerasDecoder(keras_model)          # compiled float step with a float KV cache
    ids = generate(decoder, prompt_ids, 500, temperature=0.8, top_k=200,
                   rng=np.random.default_rng(1337), keep=64)

A decoder has `block_size`, `reset()` and `feed(tokens)`, which runs tokens at the next
positions and returns the float logits after the last one; `generate` drives it under the
window policy (tf_model/window.py), as the C runtime's picogpt_generate drives the chip. The
numpy sampler here is for the float and LiteRT paths; the chip's text comes from the C
runtime's integer sampler (tf_model/chip.py).
"""

import numpy as np

from .window import WindowedDecoder


class KerasDecoder:
    """The Keras model, one token per call, through a float KV cache.

    The step is the exporter's step graph (tf_model/export/graph.py) on the Keras weights with
    float32 caches, the computation the int8 step model quantizes. The caches are variables the
    compiled step updates itself, so a call moves only the token and the logits. Its logits
    equal the full-window forward's within float rounding (tested to 1e-4).
    """

    def __init__(self, model):
        import tensorflow as tf

        from .export.graph import PicoGPTGraph, keras_weights

        c = model.config
        self.block_size = c.block_size
        graph = PicoGPTGraph(c, keras_weights(model))
        caches = []  # per layer: K (n_head, T, head_size), V^T (n_head, head_size, T)
        for _ in range(c.n_layer):
            caches.append(tf.Variable(tf.zeros((c.n_head, c.block_size, c.head_size))))
            caches.append(tf.Variable(tf.zeros((c.n_head, c.head_size, c.block_size))))
        self._caches = caches
        spec = tf.TensorSpec([1], tf.int32)

        @tf.function(input_signature=[spec, spec])
        def step(token, pos):
            logits, *new_rows = graph.step(token, pos, *caches)
            for i in range(c.n_layer):  # write the new K row / V column at pos
                caches[2 * i][:, pos[0], :].assign(new_rows[2 * i][:, 0, :])
                caches[2 * i + 1][:, :, pos[0]].assign(new_rows[2 * i + 1][:, :, 0])
            return logits[0]  # (vocab,)

        self._step = step
        self.position = 0

    def reset(self):
        """Position 0. Stale cache rows are masked (exp(-1e4) is 0 in float32); zeros are tidy."""
        for cache in self._caches:
            cache.assign(np.zeros(cache.shape, np.float32))
        self.position = 0

    def feed(self, tokens):
        logits = None
        for token in tokens:
            if self.position >= self.block_size:
                raise ValueError(f"context full: position {self.position} reached block_size")
            logits = self._step(np.array([token], np.int32), np.array([self.position], np.int32))
            self.position += 1
        return logits.numpy()


class ExportedDecoder:
    """An exported .tflite run by tf_model.export.tflite_step (LiteRT or TFLite Micro): the
    step model through its cache, the full-window model by re-running the window."""

    def __init__(self, exported):
        self.model, self.block_size = exported, exported.block_size
        self.tokens = []

    def reset(self):
        self.model.reset()
        self.tokens = []

    def feed(self, tokens):
        tokens = [int(t) for t in tokens]
        if self.model.kind == "full":
            self.tokens += tokens
            return self.model.sequence_logits(self.tokens)[-1]
        for token in tokens:
            logits = self.model.step(token, len(self.tokens))
            self.tokens.append(token)
        return logits


def sample_token(logits, temperature, top_k, rng):
    """Greedy at temperature 0; otherwise softmax(logits / temperature) over the top_k logits."""
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return int(np.argmax(logits))
    # shift before dividing: a tiny temperature (1e-320) then gives -inf, never inf - inf = nan
    logits = (logits - logits.max()) / temperature
    if top_k is not None and top_k < len(logits):
        kth = np.sort(logits)[-top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits)
    probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


def generate(decoder, prompt_ids, max_new_tokens, temperature, top_k, rng, keep):
    """max_new_tokens sampled ids after the prompt (its last block_size tokens are the start),
    each fed back under the window policy with `keep` (window.resolve_keep)."""
    window = WindowedDecoder(decoder, keep)
    logits = window.start(prompt_ids)
    out = []
    for i in range(max_new_tokens):
        out.append(sample_token(logits, temperature, top_k, rng))
        if i + 1 < max_new_tokens:
            logits = window.push(out[-1])
    return out
