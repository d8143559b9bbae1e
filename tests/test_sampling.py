"""tf_model/sampling.py and tf_model/window.py: the Keras model's incremental decoder, the
window policy in Python, and the plan that evaluates a text under it.

    uv run pytest tests/test_sampling.py
"""

import numpy as np
import pytest
from test_model import TINY  # 2 layers, n_embd 32, block_size 16

from tf_model.window import WindowedDecoder, resolve_keep, stream_plan


@pytest.fixture(scope="module")
def tiny_model():
    from tf_model import PicoGPT, PicoGPTConfig

    return PicoGPT(PicoGPTConfig(**TINY))


def test_keras_decoder_equals_the_full_forward(tiny_model):
    """One token per call through the float KV cache = the (1, T) forward, position by position,
    and again after a reset."""
    from tf_model.sampling import KerasDecoder

    decoder = KerasDecoder(tiny_model)
    tokens = np.random.default_rng(0).integers(0, 65, 16)
    expected = tiny_model(tokens[None].astype(np.int32)).numpy()[0]  # (T, vocab)
    for _ in range(2):
        decoder.reset()
        got = np.stack([decoder.feed([t]) for t in tokens])
        np.testing.assert_allclose(got, expected, atol=1e-4)
    decoder.reset()
    np.testing.assert_allclose(decoder.feed(tokens[:5]), expected[4], atol=1e-4)
    with pytest.raises(ValueError, match="context full"):
        decoder.feed(tokens)


@pytest.mark.parametrize("policy, keep", [("exact", None), ("shift", 0), ("shift", 6)])
def test_keras_sampler_past_the_window_follows_the_policy(tiny_model, policy, keep):
    """Past block_size every logit equals the forward over the window the policy keeps: its
    last `keep` tokens and the new one, from position 0 (exact: the last block_size tokens)."""
    from tf_model.sampling import KerasDecoder

    T = TINY["block_size"]
    k = resolve_keep(policy, keep, T)
    text = list(np.random.default_rng(1).integers(0, 65, 3 * T))
    window = WindowedDecoder(KerasDecoder(tiny_model), k)
    got = [window.start(text[:1])] + [window.push(t) for t in text[1:]]
    for start, length, first_row in stream_plan(len(text), T, k):
        forward = tiny_model(np.array([text[start : start + length]], np.int32)).numpy()[0]
        for row in range(first_row, length):
            np.testing.assert_allclose(got[start + row], forward[row], atol=1e-4)


def test_generate_is_seeded_and_greedy_ignores_the_seed(tiny_model):
    from tf_model.sampling import KerasDecoder, generate

    decoder = KerasDecoder(tiny_model)

    def run(temperature, seed):
        rng = np.random.default_rng(seed)
        return generate(decoder, [1, 2, 3], 40, temperature, 10, rng, keep=4)

    assert run(1.0, 5) == run(1.0, 5) and run(1.0, 5) != run(1.0, 6)
    assert run(0, 1) == run(0, 2) and len(run(0, 1)) == 40


def test_stream_plan():
    # keep 0: the non-overlapping windows of a plain evaluation
    assert stream_plan(40, 16, 0) == [(0, 16, 0), (16, 16, 0), (32, 8, 0)]
    # shift: every refill keeps 4 tokens, so windows start every 12 tokens
    assert stream_plan(40, 16, 4) == [(0, 16, 0), (12, 16, 4), (24, 16, 4)]
    # exact: one new prediction per window; every=10 takes an evenly spaced subset of them
    exact = stream_plan(40, 16, 15)
    assert len(exact) == 1 + 24 and exact[1] == (1, 16, 15) and exact[-1] == (24, 16, 15)
    assert stream_plan(40, 16, 15, every=10) == [(0, 16, 0), (10, 16, 15), (20, 16, 15)]
    # every prediction of the text is made exactly once
    for keep in (0, 3, 15):
        rows = [s + r for s, n, f in stream_plan(40, 16, keep) for r in range(f, n)]
        assert rows == list(range(40))
    assert stream_plan(5, 16, 8) == [(0, 5, 0)]  # shorter than a window


def test_window_errors_say_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown window policy 'slide': use one of shift, exact"):
        resolve_keep("slide", None, 16)
    for keep in (-1, 16):
        with pytest.raises(ValueError, match=r"keep .* must be in \[0, 15\] .*block_size 16"):
            resolve_keep("shift", keep, 16)
    with pytest.raises(TypeError, match="must be an integer"):
        resolve_keep("shift", True, 16)
    assert resolve_keep("exact", 3, 16) == 15 and resolve_keep("shift", None, 16) == 4
    with pytest.raises(ValueError, match="at least one token"):
        stream_plan(0, 16, 4)
    with pytest.raises(ValueError, match="every must be >= 1"):
        stream_plan(10, 16, 4, every=0)
