import keras
import numpy as np

from tf_model import PicoGPT, PicoGPTConfig, count_params

TINY = {
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 32,
    "block_size": 16,
    "dropout": 0.0,
    "enforce_cim_limits": False,
}


def test_default_model_has_exactly_418304_parameters():
    assert count_params(PicoGPT(PicoGPTConfig())) == 418_304


def test_logits_shape_and_tied_embedding():
    model = PicoGPT(PicoGPTConfig(**TINY))
    x = np.random.default_rng(0).integers(0, 65, (2, 16))
    assert model(x).shape == (2, 16, 65)
    names = [w.path for w in model.trainable_weights]
    assert not any("lm_head" in n or "bias" in n or "beta" in n for n in names), names


def test_future_tokens_do_not_change_past_logits():
    model = PicoGPT(PicoGPTConfig(**TINY))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 65, (1, 16))
    y = x.copy()
    y[0, 9:] = rng.integers(0, 65, 7)  # change only positions 9..15
    lx, ly = model(x).numpy(), model(y).numpy()
    np.testing.assert_allclose(lx[0, :9], ly[0, :9], atol=1e-6)
    assert np.abs(lx[0, 9:] - ly[0, 9:]).max() > 1e-4  # and the future positions did change


def test_dropout_is_active_only_in_training():
    model = PicoGPT(PicoGPTConfig(**{**TINY, "dropout": 0.5}))
    x = np.random.default_rng(2).integers(0, 65, (2, 16))
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    assert np.abs(model(x, training=True).numpy() - model(x).numpy()).max() > 1e-4


def test_dropout_rate_and_scaling():
    from tf_model.layers import Dropout

    layer = Dropout(0.1, seed=3)
    x = np.ones((200_000,), np.float32)
    y = layer(x, training=True).numpy()
    assert abs((y == 0).mean() - 0.1) < 0.005
    np.testing.assert_allclose(y[y != 0], 1 / 0.9, rtol=1e-6)


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    model = PicoGPT(PicoGPTConfig(**TINY))
    x = np.random.default_rng(3).integers(0, 65, (2, 16))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_initialisation_follows_nanogpt():
    model = PicoGPT(PicoGPTConfig())
    weights = {
        w.path.split("/", 1)[1]: w.numpy() for w in model.trainable_weights
    }  # drop "pico_gpt_N/"
    assert abs(weights["h_0/attn/c_attn/kernel"].std() - 0.02) < 0.002
    assert abs(weights["h_0/mlp/c_proj/kernel"].std() - 0.02 / np.sqrt(6)) < 0.001
    np.testing.assert_array_equal(weights["h_0/ln_2/gamma"], 1.0)


def test_layers_ignore_the_block_size_older_files_carry():
    """Attention and blocks once took an unused block_size; configs saved then still load."""
    from tf_model.layers import Block, CausalSelfAttention

    block = Block(n_embd=32, n_head=2, dropout=0.0, activation="relu", name="h_0")
    config = block.get_config()
    assert "block_size" not in config
    restored = Block.from_config({**config, "block_size": 16})
    assert (restored.n_embd, restored.n_head, restored.activation) == (32, 2, "relu")
    attn = CausalSelfAttention.from_config(
        {**CausalSelfAttention(32, 2, name="attn").get_config(), "block_size": 16}
    )
    x = np.random.default_rng(4).standard_normal((1, 16, 32)).astype(np.float32)
    assert attn(x).shape == (1, 16, 32)


def test_importing_the_library_and_its_config_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tf_model, tf_model.export, tf_model.checkpoint\n"
        "from tf_model import PicoGPTConfig\n"
        "PicoGPTConfig()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_import_tf_model_then_keras_load_model(tmp_path):
    """The README's two lines: `import tf_model` registers the layers with Keras when Keras is
    imported (here afterwards, and through tf.keras), without importing TensorFlow itself."""
    import subprocess
    import sys

    path = str(tmp_path / "model.keras")
    PicoGPT(PicoGPTConfig(**TINY)).save(path)
    code = (
        "import sys, tf_model\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "import keras, tensorflow as tf\n"
        f"print(type(keras.models.load_model({path!r})).__name__)\n"
        f"print(type(tf.keras.models.load_model({path!r})).__name__)\n"
    )
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["PicoGPT", "PicoGPT"]
