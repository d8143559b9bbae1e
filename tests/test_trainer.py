"""The compiled train step and its optimizer settings, on a tiny model (no subprocesses)."""

import numpy as np
import pytest

import tf_train
from tf_model import PicoGPTConfig
from tf_model.schedule import get_lr

TINY = PicoGPTConfig(
    n_layer=1, n_head=2, n_embd=32, block_size=16, dropout=0.1, enforce_cim_limits=False
)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 65, (4, 16), dtype=np.int32)
    return x, np.roll(x, -1, axis=1)


@pytest.mark.parametrize(
    "use_xla, precision",
    [
        (False, "float32"),
        (True, "float32"),
        (False, "float16"),
        (False, "bfloat16"),
        (True, "bfloat16"),
    ],
)
def test_train_step_lowers_the_loss(use_xla, precision):
    import keras

    try:
        trainer = tf_train.Trainer(
            {**tf_train.DEFAULTS, "learning_rate": 1e-2}, TINY, precision, use_xla
        )
        x, y = batch()
        losses = [float(trainer.train_step(x, y)) for _ in range(15)]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0] - 0.5, losses


def test_weight_decay_skips_layernorm_scales():
    trainer = tf_train.Trainer(
        {**tf_train.DEFAULTS, "learning_rate": 0.1, "weight_decay": 0.5}, TINY, "float32", False
    )
    variables = trainer.model.trainable_variables
    before = {v.path: v.numpy().copy() for v in variables}
    # zero gradients: Adam's update is 0, so any change is decoupled weight decay (p -= lr * wd * p)
    trainer.optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in variables])
    for v in variables:
        after, was = v.numpy(), before[v.path]
        if v.path.endswith("gamma"):
            np.testing.assert_array_equal(after, was)
        else:
            np.testing.assert_allclose(after, was * (1 - 0.1 * 0.5), rtol=1e-5)


def test_gradient_clipping_and_betas_are_configured():
    cfg = {**tf_train.DEFAULTS, "grad_clip": 0.5, "beta1": 0.8, "beta2": 0.95}
    trainer = tf_train.Trainer(cfg, TINY, "float32", False)
    opt = trainer.optimizer
    assert (opt.global_clipnorm, opt.beta_1, opt.beta_2, opt.epsilon) == (0.5, 0.8, 0.95, 1e-8)
    assert (
        tf_train.Trainer(
            {**cfg, "grad_clip": 0.0}, TINY, "float32", False
        ).optimizer.global_clipnorm
        is None
    )


def test_state_round_trip_restores_weights_and_optimizer():
    a = tf_train.Trainer(tf_train.DEFAULTS, TINY, "float32", False)
    x, y = batch()
    for _ in range(3):
        a.train_step(x, y)
    b = tf_train.Trainer(tf_train.DEFAULTS, TINY, "float32", False)
    b.load_state(a.state())
    np.testing.assert_array_equal(float(a.eval_step(x, y)), float(b.eval_step(x, y)))
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    other = tf_train.Trainer(
        tf_train.DEFAULTS, PicoGPTConfig(**{**TINY.to_dict(), "n_layer": 2}), "float32", False
    )
    with pytest.raises(tf_train.TrainError, match="does not match"):
        other.load_state(a.state())


def test_lr_schedule_matches_nanogpt():
    lr, warm, decay, floor = 3e-3, 100, 8000, 3e-4
    assert get_lr(0, lr, warm, decay, floor) == pytest.approx(lr * 1 / 101)
    assert get_lr(99, lr, warm, decay, floor) == pytest.approx(lr * 100 / 101)
    assert get_lr(100, lr, warm, decay, floor) == pytest.approx(lr)
    assert get_lr(4050, lr, warm, decay, floor) == pytest.approx((lr + floor) / 2)
    assert get_lr(8000, lr, warm, decay, floor) == pytest.approx(floor)
    assert get_lr(9000, lr, warm, decay, floor) == floor


def test_estimate_loss_uses_its_own_rng(corpus_dir):
    from tf_data import CharDataset

    data = CharDataset(str(corpus_dir), 16, 4, seed=1)
    config = PicoGPTConfig(**{**TINY.to_dict(), "vocab_size": data.meta["vocab_size"]})
    trainer = tf_train.Trainer(tf_train.DEFAULTS, config, "float32", False)
    state = data.get_rng_state()
    losses = tf_train.estimate_loss(trainer, data, 3, np.random.default_rng(0))
    assert set(losses) == {"train", "val"} and all(np.isfinite(list(losses.values())))
    assert data.get_rng_state() == state  # evaluation must not shift the training batch stream


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_weights(tmp_path):
    """mixed_bfloat16: matmuls in bfloat16, variables float32, a loss near float32's, and a
    saved model that loads as a float32 model (sampling and export stay in float32)."""
    import keras

    from tf_model import PicoGPT
    from tf_model.model import float32_twin

    x, y = batch()
    try:
        trainer = tf_train.Trainer(tf_train.DEFAULTS, TINY, "bfloat16", False)
        block = trainer.model.blocks[0]
        assert block.attn.compute_dtype == "bfloat16" and block.mlp.compute_dtype == "bfloat16"
        assert all(v.dtype == "float32" for v in trainer.model.weights)
        assert trainer.optimizer.__class__.__name__ == "AdamW"  # no loss scaling
        bf16_loss, weights_before = float(trainer.eval_step(x, y)), trainer.model.get_weights()
        trainer.train_step(x, y)
        trainer.model.save(tmp_path / "mixed.keras")  # a mixed-policy file, as older runs saved
        float32_twin(trainer.model).save(tmp_path / "model.keras")  # what tf_train.py saves
    finally:
        keras.mixed_precision.set_global_policy("float32")
    float_trainer = tf_train.Trainer(tf_train.DEFAULTS, TINY, "float32", False)
    float_trainer.model.set_weights(trainer.model.get_weights())
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert isinstance(loaded, PicoGPT)
    assert all(layer.compute_dtype == "float32" for layer in loaded.blocks)
    np.testing.assert_array_equal(loaded(x).numpy(), float_trainer.model(x).numpy())
    mixed = keras.models.load_model(tmp_path / "mixed.keras", compile=False)
    assert mixed.dtype_policy.name == "mixed_bfloat16"  # it would read its weights as bfloat16
    np.testing.assert_array_equal(float32_twin(mixed)(x).numpy(), float_trainer.model(x).numpy())
    # the same weights give a float32 loss within bfloat16's rounding of the bfloat16 one
    float_trainer.model.set_weights(weights_before)
    assert abs(float(float_trainer.eval_step(x, y)) - bf16_loss) < 0.01


def test_unknown_precision_and_cpu_bfloat16_flags(tmp_path):
    from tf_model.trainer import cpu_has_bfloat16

    with pytest.raises(ValueError, match=r"precision must be one of .*got 'bf16'"):
        tf_train.Trainer(tf_train.DEFAULTS, TINY, "bf16", False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert not cpu_has_bfloat16(str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_bfloat16(str(cpuinfo))
    cpuinfo.write_text("flags\t\t: amx_tile amx_bf16\n")
    assert cpu_has_bfloat16(str(cpuinfo))
    assert cpu_has_bfloat16(str(tmp_path / "no-such-file"))  # not Linux: nothing guessed
