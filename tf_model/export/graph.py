"""PicoGPT's forward pass rebuilt from the Keras weights as TFLite-friendly TensorFlow graphs.

Two graphs share one set of helpers (same math as `tf_model/model.py`, eval mode):

- `step`: one token at one position through a KV cache (the default export). The cache is
  passed in read-only and only the new K/V rows come out; the caller writes them at `pos`.
  K cache rows are [n_head, block_size, head_size]; the V cache is stored transposed,
  [n_head, head_size, block_size], so both attention matmuls read their right operand with
  adj_y=True (TFLite Micro's BATCH_MATMUL would otherwise keep a transposed copy of the cache).
- `full`: a whole [1, block_size] window of tokens to [1, block_size, vocab] logits.

Only ops with int8 kernels in TFLite Micro are used (see docs/model_signature.md). The causal
mask is a SELECT_V2 with a per-layer constant `mask_values[i]` rather than an additive -1e9: in
int8 the masked constant shares the score tensor's scale, so it is chosen just low enough
(calibration.py: calibrated minimum score - MASK_MARGIN) instead of stretching the int8 range to
1e9. Float exports use the Keras model's MASK_VALUE.
"""

import numpy as np
import tensorflow as tf

from ..layers import LN_EPSILON, MASK_VALUE


def keras_weights(model):
    """The Keras model's weights as float32 numpy arrays, checked against its config."""
    c = model.config
    # paths start with the model's name, which Keras uniquifies (pico_gpt, pico_gpt_1, ...)
    found = {
        "pico_gpt/" + w.path.split("/", 1)[1]: np.asarray(w.numpy(), dtype=np.float32)
        for w in model.weights
    }
    expected = {
        "pico_gpt/wte/embeddings": (c.vocab_size, c.n_embd),
        "pico_gpt/wpe/embeddings": (c.block_size, c.n_embd),
    }
    for i in range(c.n_layer):
        p = f"pico_gpt/h_{i}/"
        expected[p + "attn/c_attn/kernel"] = (c.n_embd, 3 * c.n_embd)
        expected[p + "attn/c_proj/kernel"] = (c.n_embd, c.n_embd)
        expected[p + "mlp/c_fc/kernel"] = (c.n_embd, 2 * c.n_embd)
        expected[p + "mlp/c_proj/kernel"] = (2 * c.n_embd, c.n_embd)
        expected[p + "ln_2/gamma"] = (c.n_embd,)
    for name, shape in expected.items():
        if name not in found:
            raise KeyError(f"weight {name} missing from the Keras model (has {sorted(found)})")
        if found[name].shape != shape:
            raise ValueError(f"weight {name} has shape {found[name].shape}, expected {shape}")
    return found


class PicoGPTGraph:
    """Builds the step and full-sequence tf.functions from a PicoGPTConfig and Keras weights."""

    def __init__(self, config, weights, mask_values=None):
        self.config = config
        c = config
        C, hs = c.n_embd, c.head_size
        self.wte = weights["pico_gpt/wte/embeddings"]  # (vocab, C)
        self.wpe = weights["pico_gpt/wpe/embeddings"]  # (block_size, C)
        self.layers = []
        for i in range(c.n_layer):
            p = f"pico_gpt/h_{i}/"
            c_attn = weights[p + "attn/c_attn/kernel"]  # (C, 3C): [q | k | v] columns
            self.layers.append(
                {
                    # 1/sqrt(head_size) folded into W_q: a power of two for head_size 64, so the
                    # int8 weights are identical and float results bit-equal to scaling scores.
                    "wq": c_attn[:, :C] / np.float32(np.sqrt(hs)),
                    "wk": c_attn[:, C : 2 * C],
                    "wv": c_attn[:, 2 * C :],
                    "w_attn_proj": weights[p + "attn/c_proj/kernel"],
                    "w_fc": weights[p + "mlp/c_fc/kernel"],
                    "w_mlp_proj": weights[p + "mlp/c_proj/kernel"],
                    "gamma": weights[p + "ln_2/gamma"],
                }
            )
        if mask_values is None:
            mask_values = [MASK_VALUE] * c.n_layer
        self.mask_values = [float(m) for m in mask_values]

    # ---- shared pieces -------------------------------------------------------------------

    def _activation(self, h):
        if self.config.activation == "relu":
            return tf.nn.relu(h, name="fc")
        return tf.nn.gelu(h, approximate=True, name="fc")

    def _mlp_and_norm(self, x, layer):
        """x + mlp(x), then the post-norm LayerNorm (gamma only). x: (rows, C)."""
        h = self._activation(tf.matmul(x, layer["w_fc"], name="fc_matmul"))  # (rows, 2C)
        x = tf.add(x, tf.matmul(h, layer["w_mlp_proj"], name="mlp_proj"), name="resid_mlp")
        # one centred tensor feeds both the variance and the output, so int8 rounds it once
        mean = tf.reduce_mean(x, axis=-1, keepdims=True, name="mean")  # (rows, 1)
        centred = tf.subtract(x, mean, name="centred")  # (rows, C)
        square = tf.multiply(centred, centred, name="square")  # (rows, C)
        var = tf.reduce_mean(square, axis=-1, keepdims=True, name="var")  # (rows, 1)
        rsqrt = tf.math.rsqrt(tf.add(var, LN_EPSILON, name="var_eps"), name="rsqrt")  # (rows, 1)
        norm = tf.multiply(centred, rsqrt, name="norm")  # (rows, C)
        return tf.multiply(norm, layer["gamma"], name="ln_out")  # (rows, C)

    def _logits(self, x):
        return tf.matmul(x, self.wte, transpose_b=True, name="logits")  # (rows, vocab), tied

    # ---- KV-cache step -------------------------------------------------------------------

    def step_signature(self, cache_dtype=tf.float32):
        c = self.config
        nh, hs, T = c.n_head, c.head_size, c.block_size
        spec = [
            tf.TensorSpec([1], tf.int32, name="token"),
            tf.TensorSpec([1], tf.int32, name="pos"),
        ]
        for i in range(c.n_layer):
            spec.append(tf.TensorSpec([nh, T, hs], cache_dtype, name=f"k_cache_{i}"))
            spec.append(tf.TensorSpec([nh, hs, T], cache_dtype, name=f"v_cache_{i}"))
        return spec

    def step(self, token, pos, *caches):
        """One decode step. Returns (logits (1, vocab), k_new_0, v_new_0, k_new_1, ...)."""
        c = self.config
        nh, hs, T, C = c.n_head, c.head_size, c.block_size, c.n_embd
        token_emb = tf.gather(self.wte, token, name="token_emb")  # (1, C)
        x = tf.add(token_emb, tf.gather(self.wpe, pos, name="pos_emb"), name="emb")  # (1, C)
        # cache row j holds position j; rows >= pos are stale or empty
        valid = tf.less(tf.range(T, dtype=tf.int32), pos)  # (T,)
        new_rows = []
        for i, layer in enumerate(self.layers):
            # op names (h{i}/q, ...) name the int8 tensors for quantization ranges (tf_model/qat.py)
            with tf.name_scope(f"h{i}"):
                k_cache, v_cache = caches[2 * i], caches[2 * i + 1]  # (nh, T, hs), (nh, hs, T)
                q = tf.reshape(tf.matmul(x, layer["wq"], name="q"), [nh, 1, hs])  # (nh, 1, hs)
                k_new = tf.reshape(tf.matmul(x, layer["wk"], name="k"), [nh, 1, hs])  # (nh, 1, hs)
                v_new = tf.reshape(tf.matmul(x, layer["wv"], name="v"), [nh, hs, 1])  # (nh, hs, 1)
                scores_cache = tf.matmul(
                    q, k_cache, adjoint_b=True, name="scores_cache"
                )  # (nh, 1, T)
                scores_cache = tf.where(
                    valid, scores_cache, self.mask_values[i], name="scores_masked"
                )
                score_new = tf.matmul(q, k_new, adjoint_b=True, name="score_new")  # (nh, 1, 1)
                scores = tf.concat(
                    [scores_cache, score_new], axis=-1, name="scores"
                )  # (nh, 1, T+1)
                probs = tf.nn.softmax(scores, name="probs")  # (nh, 1, T+1)
                y_cache = tf.matmul(probs[:, :, :T], v_cache, adjoint_b=True, name="y_cache")
                y_new = tf.matmul(probs[:, :, T:], v_new, adjoint_b=True, name="y_new")
                y = tf.add(y_cache, y_new, name="y")  # (nh, 1, hs)
                y = tf.reshape(y, [1, C])  # (1, C), heads contiguous as in the Keras layer
                attn = tf.matmul(y, layer["w_attn_proj"], name="attn_proj")
                x = tf.add(x, attn, name="resid_attn")
                x = self._mlp_and_norm(x, layer)
            new_rows += [k_new, v_new]
        return (self._logits(x), *new_rows)

    def step_function(self, cache_dtype=tf.float32):
        return tf.function(self.step, input_signature=self.step_signature(cache_dtype))

    # ---- full sequence -------------------------------------------------------------------

    def full(self, idx, with_probes=False):
        """idx (1, T) -> logits (1, T, vocab). With probes also per-layer K, V^T and the
        smallest unmasked attention score (used to calibrate the mask and the step caches)."""
        c = self.config
        nh, hs, T, C = c.n_head, c.head_size, c.block_size, c.n_embd
        token_emb = tf.gather(self.wte, tf.reshape(idx, [T]), name="token_emb")  # (T, C)
        x = tf.add(token_emb, self.wpe, name="emb")  # (T, C)
        causal = np.tril(np.ones((T, T), dtype=bool))  # key j visible from query t iff j <= t
        probes = []
        for i, layer in enumerate(self.layers):

            def heads(x, w, perm, name):
                h = tf.reshape(tf.matmul(x, w, name=name), [T, nh, hs])  # (T, nh, hs)
                return tf.transpose(h, perm)

            with tf.name_scope(f"h{i}"):  # the step graph's op names, where the op exists here
                q = heads(x, layer["wq"], [1, 0, 2], "q")  # (nh, T, hs)
                k = heads(x, layer["wk"], [1, 0, 2], "k")  # (nh, T, hs)
                # (nh, hs, T): V^T, read with adj_y like the step
                vt = heads(x, layer["wv"], [1, 2, 0], "v")
                scores = tf.matmul(q, k, adjoint_b=True, name="scores")  # (nh, T, T)
                if with_probes:
                    real_min = tf.reduce_min(tf.where(causal, scores, np.float32(np.inf)))
                    probes += [k, vt, real_min]
                scores = tf.where(causal, scores, self.mask_values[i], name="scores_masked")
                probs = tf.nn.softmax(scores, name="probs")  # (nh, T, T)
                y = tf.matmul(probs, vt, adjoint_b=True, name="y")  # (nh, T, hs)
                y = tf.reshape(tf.transpose(y, [1, 0, 2]), [T, C])  # (T, C)
                x = tf.add(
                    x, tf.matmul(y, layer["w_attn_proj"], name="attn_proj"), name="resid_attn"
                )
                x = self._mlp_and_norm(x, layer)
        logits = tf.reshape(self._logits(x), [1, T, c.vocab_size])  # (1, T, vocab)
        return (logits, *probes) if with_probes else logits

    def full_function(self, with_probes=False):
        spec = [tf.TensorSpec([1, self.config.block_size], tf.int32, name="tokens")]
        return tf.function(lambda idx: self.full(idx, with_probes), input_signature=spec)
