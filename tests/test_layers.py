"""The hand-written gradients of the train step's layers against autodiff of the plain formulas,
and the dropout masks' statistics."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_model.layers import (
    HASH_MULTIPLIERS,
    HASH_SHIFTS,
    LN_EPSILON,
    MASK_VALUE,
    Dropout,
    causal_self_attention,
    dropout_mask,
    hash32,
    layer_norm_no_bias,
)


def plain_attention(x, w_attn, w_proj, n_head, dropout_mask=None):
    """The textbook formulation the model used before the hand-written gradient (autodiff only)."""
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = tf.split(tf.matmul(x, w_attn), 3, axis=-1)  # 3 x (B, T, C)
    q, k, v = (tf.transpose(tf.reshape(t, (B, T, n_head, hs)), (0, 2, 1, 3)) for t in (q, k, v))
    att = tf.einsum("bhqd,bhkd->bhqk", q / math.sqrt(hs), k)  # (B, nh, T, T)
    causal = tf.linalg.band_part(tf.ones((T, T), tf.bool), -1, 0)
    att = tf.nn.softmax(tf.where(causal, att, MASK_VALUE), axis=-1)
    if dropout_mask is not None:
        att = att * tf.transpose(dropout_mask, (1, 0, 2, 3))  # mask is (nh, B, T, T)
    y = tf.reshape(tf.transpose(tf.matmul(att, v), (0, 2, 1, 3)), (B, T, C))
    return tf.matmul(y, w_proj)


def attention_inputs(B, T, C, n_head, seed, with_dropout):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((B, T, C)), tf.float32)
    w_attn = tf.constant(rng.standard_normal((C, 3 * C)) * 0.3, tf.float32)
    w_proj = tf.constant(rng.standard_normal((C, C)) * 0.3, tf.float32)
    dropout = mask = None
    if with_dropout:  # rate 0.25; the reference applies the mask this seed gives
        layer = Dropout(0.25, seed=seed)
        dropout = layer.draw(tf.float32)
        mask = dropout_mask(tf.constant((n_head, B, T, T)), *dropout)
    return x, w_attn, w_proj, dropout, mask


def value_and_grads(fn, x, w_attn, w_proj, upstream):
    with tf.GradientTape() as tape:
        tape.watch([x, w_attn, w_proj])
        out = fn(x, w_attn, w_proj)
        loss = tf.reduce_sum(out * upstream)
    return out, tape.gradient(loss, [x, w_attn, w_proj])


@pytest.mark.parametrize(
    "B, T, C, n_head, with_dropout",
    [(2, 16, 32, 2, False), (2, 16, 32, 2, True), (3, 7, 24, 3, True), (1, 1, 16, 1, False)],
)
def test_attention_output_and_gradients_match_autodiff_of_the_plain_formula(
    B, T, C, n_head, with_dropout
):
    x, w_attn, w_proj, dropout, mask = attention_inputs(B, T, C, n_head, 0, with_dropout)
    upstream = tf.constant(np.random.default_rng(1).standard_normal((B, T, C)), tf.float32)
    out, grads = value_and_grads(
        lambda *a: causal_self_attention(*a, n_head, dropout), x, w_attn, w_proj, upstream
    )
    ref_out, ref_grads = value_and_grads(
        lambda *a: plain_attention(*a, n_head, mask), x, w_attn, w_proj, upstream
    )
    np.testing.assert_allclose(out.numpy(), ref_out.numpy(), rtol=1e-5, atol=1e-5)
    for name, g, ref in zip(("x", "w_attn", "w_proj"), grads, ref_grads):
        scale = np.abs(ref.numpy()).max()
        assert scale > 0, name
        np.testing.assert_allclose(g.numpy(), ref.numpy(), rtol=0, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("with_dropout", [True, False])
@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_attention_in_16_bit_follows_float32_with_the_same_dropout(dtype, with_dropout):
    """Mixed precision: 16-bit inputs give 16-bit outputs and gradients within the 16-bit
    rounding of float32's, with the same dropout mask (the softmax computes in float32)."""
    B, T, C, n_head = 2, 16, 32, 2
    x, w_attn, w_proj, dropout, _ = attention_inputs(B, T, C, n_head, 4, with_dropout)
    upstream = tf.constant(np.random.default_rng(5).standard_normal((B, T, C)), tf.float32)
    run = lambda *a: causal_self_attention(*a, n_head, dropout)
    ref_out, ref_grads = value_and_grads(run, x, w_attn, w_proj, upstream)
    narrow = [tf.cast(t, dtype) for t in (x, w_attn, w_proj, upstream)]
    dropout_16 = dropout and (dropout[0], dropout[1], tf.cast(dropout[2], dtype))
    out, grads = value_and_grads(lambda *a: causal_self_attention(*a, n_head, dropout_16), *narrow)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    tolerance = 0.05 if dtype == tf.bfloat16 else 0.01  # bfloat16 keeps 8 significant bits
    for name, got, ref in zip(
        ("out", "x", "w_attn", "w_proj"), [out, *grads], [ref_out, *ref_grads]
    ):
        ref = ref.numpy()
        got = tf.cast(got, tf.float32).numpy()
        np.testing.assert_allclose(
            got, ref, rtol=0, atol=tolerance * np.abs(ref).max(), err_msg=name
        )


def test_attention_gradient_does_not_reach_back_from_the_past_to_the_future():
    """The hand-written backward keeps causality: outputs at positions < j get no gradient
    from inputs at positions >= j, with dropout too."""
    B, T, C, n_head, j = 2, 12, 32, 2, 5
    x, w_attn, w_proj, dropout, _ = attention_inputs(B, T, C, n_head, 2, with_dropout=True)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = causal_self_attention(x, w_attn, w_proj, n_head, dropout)
        loss = tf.reduce_sum(out[:, :j] ** 2)
    d_x = tape.gradient(loss, x).numpy()
    assert np.all(d_x[:, j:] == 0.0)
    assert np.abs(d_x[:, :j]).min() > 0.0


def test_layer_norm_output_is_the_plain_formula_and_its_gradient_matches_autodiff():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((2, 5, 16)) * 3 + 1, tf.float32)
    gamma = tf.constant(rng.standard_normal(16), tf.float32)
    upstream = tf.constant(rng.standard_normal((2, 5, 16)), tf.float32)

    def plain(x, gamma):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + LN_EPSILON) * gamma

    results = []
    for fn in (lambda x, g: layer_norm_no_bias(x, g, LN_EPSILON), plain):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma])
            y = fn(x, gamma)
            loss = tf.reduce_sum(y * upstream)
        results.append((y.numpy(), *[g.numpy() for g in tape.gradient(loss, [x, gamma])]))
    (y, d_x, d_gamma), (ref_y, ref_d_x, ref_d_gamma) = results
    np.testing.assert_array_equal(y, ref_y)  # same ops in the same order
    np.testing.assert_allclose(d_x, ref_d_x, rtol=0, atol=1e-5 * np.abs(ref_d_x).max())
    np.testing.assert_allclose(d_gamma, ref_d_gamma, rtol=1e-5, atol=1e-6)


def test_dropout_mask_rate_values_and_independence():
    layer = Dropout(0.1, seed=5)
    mask = layer.mask((4, 64, 128, 128), tf.float32).numpy().ravel()  # an attention-sized mask
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.9)}
    dropped = mask == 0
    assert abs(dropped.mean() - 0.1) < 0.002  # 4.2 M draws: the standard error is 0.00015
    # neighbours' element indices differ in one bit: their drops must not be correlated
    assert abs(np.corrcoef(dropped[0::2], dropped[1::2])[0, 1]) < 0.01
    # each call draws a fresh mask (the seed counts up by one: the seed is hashed first)
    again = layer.mask((4, 64, 128, 128), tf.float32).numpy().ravel() == 0
    assert 0.17 < (dropped != again).mean() < 0.19  # 2 * 0.1 * 0.9 = 0.18 if independent


def test_dropout_with_the_same_seed_repeats_and_the_mask_follows_the_dtype():
    first = Dropout(0.2, seed=7).mask((3, 50), tf.float16)
    second = Dropout(0.2, seed=7).mask((3, 50), tf.float16)
    assert first.dtype == tf.float16
    np.testing.assert_array_equal(first.numpy(), second.numpy())


def test_hash32_is_lowbias32():
    """The dropout hash, against the same integer arithmetic written out in numpy."""
    x = np.random.default_rng(4).integers(0, 2**32, 10_000, dtype=np.uint64).astype(np.uint32)
    expected = x.astype(np.uint64)
    for i, shift in enumerate(HASH_SHIFTS):
        expected ^= expected >> shift
        if i < len(HASH_MULTIPLIERS):
            expected = (expected * HASH_MULTIPLIERS[i]) & 0xFFFFFFFF
    np.testing.assert_array_equal(hash32(tf.constant(x)).numpy(), expected.astype(np.uint32))
    all_16_bit = tf.constant(np.arange(1 << 16, dtype=np.uint32))
    assert len(np.unique(hash32(all_16_bit).numpy())) == 1 << 16  # a bijection: no collisions


def test_dropout_backward_drops_what_the_forward_dropped():
    """The backward draws the mask again from the seed: it must be the forward's mask."""
    layer = Dropout(0.3, seed=11)
    rng = np.random.default_rng(5)
    x = tf.constant(rng.uniform(0.5, 1.5, (3, 40, 64)), tf.float32)  # no zeros: y == 0 <=> dropped
    upstream = tf.constant(rng.standard_normal((3, 40, 64)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * upstream)
    kept = y.numpy() != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.7, rtol=1e-6)
    expected = np.where(kept, upstream.numpy() * np.float32(1 / 0.7), 0.0)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), expected, rtol=1e-6)
