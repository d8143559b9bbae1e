"""tf_model/chip.py, the Python binding to the C runtime: bit-exact with the tflite-micro
interpreter, the window policy, the build, and clear errors for bad input.

    uv run pytest tests/test_chip.py

Golden data comes from TFLite Micro's own interpreter (never LiteRT, which rounds differently).
The models are the committed reference exports (step and full-window).
"""

import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, cpu_has_avx512_vnni

from tf_model.chip import Chip, ChipBuildError, ChipError, build_library, evaluate_text
from tf_model.export.flatbuffer import micro_encoding, read_model, write_model
from tf_model.window import WindowedDecoder, default_keep, resolve_keep, stream_plan

STEP_MODEL = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")
FULL_MODEL = os.path.join(ROOT, "models", "shakespeare_char", "model_data_full_int8.tflite")
TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. "
    "resolved.\n\nFirst Citizen:\nFirst, you know Caius Marcius is chief enemy to the people.\n"
    "\nAll:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him, and we'll have corn at "
    "our own price.\nIs't a verdict?\n"
)  # 365 characters: well past one 128-token window


@pytest.fixture(scope="module")
def step_chip():
    return Chip(STEP_MODEL)


@pytest.fixture(scope="module")
def full_chip():
    return Chip(FULL_MODEL)


def encode(chip, text):
    stoi = {ch: i for i, ch in enumerate(chip.itos)}
    return np.array([stoi[ch] for ch in text], np.int32)


def tflm_raw_logits(path, tokens):
    """TFLite Micro's int8 logits after each token, from position 0 (len(tokens) <= block_size)."""
    from tf_model.export.tflite_step import load_exported

    model = load_exported(path, backend="tflm")
    if model.kind == "full":
        window = np.zeros([1, model.block_size], np.int32)
        window[0, : len(tokens)] = tokens
        model.interp.set_raw("tokens", window)
        model.interp.invoke()
        return model.interp.get_raw("logits")[0, : len(tokens)]
    rows = []
    for pos, token in enumerate(tokens):
        model.step(int(token), pos)
        rows.append(model.last_raw["logits"][0])
    return np.stack(rows)


@pytest.mark.parametrize("path", [STEP_MODEL, FULL_MODEL], ids=["step", "full"])
def test_int8_logits_bit_exact_with_tflite_micro_over_a_window(path):
    chip = Chip(path)
    tokens = encode(chip, TEXT)[: chip.block_size]  # 128 steps / positions
    assert len(tokens) == 128
    expected = tflm_raw_logits(path, tokens)
    np.testing.assert_array_equal(chip.score_windows(tokens[None])[0], expected)
    chip.reset()  # and token by token through the step API
    got = np.stack([chip.step(t) for t in tokens[:16]])
    np.testing.assert_array_equal(got, expected[:16])
    assert chip.position == 16


def test_feed_past_the_window_equals_tflite_micro_under_the_policy(step_chip):
    """The C policy (picogpt_feed) against the Python twin driving TFLite Micro."""
    from tf_model.export.tflite_step import load_exported
    from tf_model.sampling import ExportedDecoder

    class RawLogits(ExportedDecoder):  # the int8 logits of the latest step
        def feed(self, tokens):
            super().feed(tokens)
            return self.model.last_raw["logits"][0]

    tokens = encode(step_chip, TEXT)[:200]
    keep = 100
    reference = WindowedDecoder(RawLogits(load_exported(STEP_MODEL, backend="tflm")), keep)
    expected = [reference.start(tokens[:1])] + [reference.push(t) for t in tokens[1:]]
    step_chip.reset()
    np.testing.assert_array_equal(step_chip.feed(tokens, "shift", keep), np.stack(expected))
    assert step_chip.stats["steps"] == 128 + (200 - 128) + (keep * 3)  # three refills of 100


@pytest.mark.parametrize("kind", ["step", "full"])
@pytest.mark.parametrize("policy, keep", [("shift", 0), ("shift", 40), ("exact", None)])
def test_feed_equals_the_stream_plan_windows(step_chip, full_chip, kind, policy, keep):
    """The policy as generation runs it (feed) = the windows evaluation scores (stream_plan):
    one window from position 0, then every block_size - keep tokens a refill of keep + 1."""
    chip = step_chip if kind == "step" else full_chip
    tokens = encode(chip, TEXT)[:300]
    k = resolve_keep(policy, keep, chip.block_size)
    chip.reset()
    streamed = chip.feed(tokens, policy, keep)
    rows = [
        chip.score_windows(tokens[None, start : start + length], first_row)[0]
        for start, length, first_row in stream_plan(len(tokens), chip.block_size, k)
    ]
    np.testing.assert_array_equal(streamed, np.concatenate(rows))


def test_python_window_twin_equals_the_c_policy(step_chip):
    """tf_model.window.WindowedDecoder (Keras and LiteRT samplers) refills exactly where the
    runtime does: driven over the chip's own step API, it reproduces picogpt_feed bit for bit."""

    class ChipDecoder:  # the decoder protocol over the runtime's step API
        block_size = step_chip.block_size

        def reset(self):
            step_chip.reset()

        def feed(self, tokens):
            return [step_chip.step(t) for t in tokens][-1]

    tokens = encode(step_chip, TEXT)[:300]
    for keep in (0, 37, 127):
        window = WindowedDecoder(ChipDecoder(), keep)
        twin = np.stack([window.start(tokens[:1])] + [window.push(t) for t in tokens[1:]])
        step_chip.reset()
        np.testing.assert_array_equal(twin, step_chip.feed(tokens, "shift", keep))


def test_default_keep_is_the_runtimes(step_chip):
    assert default_keep(step_chip.block_size) == step_chip.window("shift").keep
    for block_size in (1, 2, 7, 128, 512):
        assert resolve_keep("shift", None, block_size) == default_keep(block_size)


def test_generate_is_deterministic_and_follows_the_policy(step_chip):
    prompt = encode(step_chip, "ROMEO:")
    a = step_chip.generate(prompt, 300, temperature=0.8, top_k=20, seed=7)
    assert a == step_chip.generate(prompt, 300, temperature=0.8, top_k=20, seed=7)
    assert a != step_chip.generate(prompt, 300, temperature=0.8, top_k=20, seed=8)
    assert len(a) == 300 and all(0 <= t < step_chip.vocab_size for t in a)
    exact = step_chip.generate(prompt, 300, temperature=0, policy="exact")
    shift = step_chip.generate(prompt, 300, temperature=0, policy="shift")
    assert exact[: 128 - len(prompt) + 1] == shift[: 128 - len(prompt) + 1]  # same in the window
    # greedy = the argmax of the fed logits: generation is feed + the sampler
    step_chip.reset()
    logits = step_chip.feed(np.concatenate([prompt, exact[:-1]]), "exact")
    assert list(logits[len(prompt) - 1 :].argmax(-1)) == exact


def test_evaluate_text_scores_the_stream_with_chip_arithmetic(step_chip):
    tokens = encode(step_chip, TEXT)
    plain = evaluate_text(step_chip, tokens, keep=0)
    q = step_chip.score_windows(tokens[None, :128])[0]
    logits = step_chip.dequantize(q).astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(plain["int8_nll"][:128], -logp[np.arange(128), tokens[1:129]])
    assert plain["predictions"] == len(tokens) - 1 and plain["windows"] == 3
    shifted = evaluate_text(
        step_chip, tokens, keep=64, float_logits=lambda w: np.zeros(w.shape + (65,))
    )
    assert shifted["predictions"] == len(tokens) - 1
    assert shifted["top1_agreement"] == np.mean(shifted["agree"])
    assert abs(shifted["float_loss"] - np.log(65)) < 1e-9  # uniform float logits


# ---- bad input -------------------------------------------------------------------------------


def test_bad_window_is_a_clear_error(step_chip):
    prompt = encode(step_chip, "ROMEO:")
    with pytest.raises(ValueError, match=r"unknown window policy 'slide': use one of shift, exact"):
        step_chip.generate(prompt, 10, policy="slide")
    for keep in (-1, 128, 1000):
        with pytest.raises(ValueError, match=r"keep .* out of range: it must be in \[0, 127\]"):
            step_chip.feed(prompt, "shift", keep)
    with pytest.raises(TypeError, match="window keep must be an integer"):
        step_chip.generate(prompt, 10, keep=1.5)
    with pytest.raises(ValueError, match="unknown window policy"):
        resolve_keep("Shift", 3, 128)


def test_bad_tokens_and_arguments_are_clear_errors(step_chip):
    with pytest.raises(ValueError, match=r"token 65 outside the vocabulary \[0, 65\)"):
        step_chip.feed([1, 65])
    with pytest.raises(ValueError, match=r"token -1 outside the vocabulary"):
        step_chip.score_windows(np.array([[3, -1]]))
    with pytest.raises(ValueError, match="window_len <= block_size 128"):
        step_chip.score_windows(np.zeros((1, 129), np.int32))
    with pytest.raises(ValueError, match="2-D"):
        step_chip.score_windows(np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="prompt of >= 1 token"):
        step_chip.generate([], 5)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        step_chip.generate([1], 5, temperature=-1)
    with pytest.raises(ValueError, match="token 1099511627776 is outside int32"):
        step_chip.step(2**40)  # ctypes would wrap it to 0
    with pytest.raises(ValueError, match="arena_bytes must be >= 0"):
        Chip(STEP_MODEL, arena_bytes=-1)
    step_chip.reset()
    for t in range(128):
        step_chip.step(t % 65)
    with pytest.raises(ChipError, match="PICOGPT_ERR_CONTEXT_FULL: context full"):
        step_chip.step(0)


def test_bad_models_are_clear_errors(tmp_path):
    """The file is checked like every export (tflite_step.read_export); what the runtime refuses
    comes with its status and message."""
    with pytest.raises(ChipError, match=r"cannot read .*none.tflite: No such file"):
        Chip(str(tmp_path / "none.tflite"))
    with pytest.raises(ChipError, match=r"the model bytes is not a .tflite model \(no TFL3"):
        Chip(b"not a model at all, just some bytes")
    with open(STEP_MODEL, "rb") as f:
        truncated = f.read()[:5000]
    with pytest.raises(ChipError, match="is not a valid .tflite model: it is truncated or corrupt"):
        Chip(truncated)
    with pytest.raises(ChipError, match="cannot run .*: PICOGPT_ERR_ARENA_TOO_SMALL: .*needs"):
        Chip(STEP_MODEL, arena_bytes=4096)


def test_c_arrays_encoding_runs_bit_exact_on_tflite_micro_and_the_runtime(step_chip, tmp_path):
    """The firmware's embedded bytes (flatbuffer.micro_encoding: one zero point per per-channel
    weight tensor) give the logits of the .tflite on TFLite Micro and on the C runtime; a count
    of zero points that is neither one nor one per scale is refused with the numbers."""
    with open(STEP_MODEL, "rb") as f:
        original = f.read()
    micro = micro_encoding(original)
    assert len(original) - len(micro) > 3000
    path = tmp_path / "micro.tflite"
    path.write_bytes(micro)
    tokens = encode(step_chip, TEXT)[:12]
    expected = tflm_raw_logits(STEP_MODEL, tokens)
    np.testing.assert_array_equal(tflm_raw_logits(str(path), tokens), expected)
    np.testing.assert_array_equal(Chip(micro).score_windows(tokens[None])[0], expected)

    model = read_model(original)
    weights = next(
        t
        for t in model.subgraphs[0].tensors
        if t.quantization is not None
        and t.quantization.scale is not None
        and len(t.quantization.scale) > 1
    )
    weights.quantization.zeroPoint = np.zeros(2, np.int64)
    channels = len(weights.quantization.scale)
    with pytest.raises(
        ChipError,
        match=rf"PICOGPT_ERR_QUANTIZATION: .*{channels} scales but 2 zero points "
        r"\(expected as many, or 1\)",
    ):
        Chip(write_model(model))


def test_runtime_options_pass_through(step_chip):
    """picogpt_options reach picogpt_init_with_options: a CIM device too small for the model
    is refused, and with the CPU fallback it computes the same logits."""
    small = (8, 128, 128, 8, 8)
    with pytest.raises(ChipError, match="PICOGPT_ERR_CIM_CAPACITY: the model needs 25 CIM macros"):
        Chip(STEP_MODEL, cim_device=small)
    fallback = Chip(STEP_MODEL, cim_device=small, cim_cpu_fallback=True)
    tokens = encode(step_chip, TEXT)[:32]
    step_chip.reset()  # the counters restart: both count the same 32 steps
    np.testing.assert_array_equal(
        fallback.score_windows(tokens[None]), step_chip.score_windows(tokens[None])
    )
    assert fallback.stats["steps"] == step_chip.stats["steps"] == 32
    assert fallback.stats["cpu_macs"] > step_chip.stats["cpu_macs"]  # FC layers on the CPU


def test_simd_tables_change_the_arena_not_the_logits(step_chip):
    """simd_tables (on by default): on x86-64 the runtime keeps the tables its SIMD kernels read
    (per-channel FULLY_CONNECTED offsets and shifts, the K cache's row sums); the logits are
    the same bit for bit, and without them and without tile memory the arena fits runtime.h's
    PICOGPT_TENSOR_ARENA_SIZE (140 KiB)."""
    plain = Chip(STEP_MODEL, cim_tile_memory=False, simd_tables=False)
    assert plain.arena_used <= 140 * 1024
    tables = Chip(STEP_MODEL, cim_tile_memory=False)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert tables.arena_used > plain.arena_used
    tokens = encode(step_chip, TEXT)[:128]
    np.testing.assert_array_equal(
        plain.score_windows(tokens[None]), tables.score_windows(tokens[None])
    )


def test_tile_memory_changes_the_arena_not_the_logits(step_chip):
    """cim_tile_memory (on by default): on a CPU with AVX-512 VNNI the software HAL keeps each
    tile as emulated cells in the arena (25 tiles: 24 of 128 x 128 and the 65-output head
    padded to 80), and the products read those; elsewhere it asks for nothing. The logits are
    the same bit for bit."""
    plain = Chip(STEP_MODEL, cim_tile_memory=False)
    expected = 24 * 128 * 128 + 128 * 80 if cpu_has_avx512_vnni() else 0
    assert step_chip.tile_memory_bytes == expected and plain.tile_memory_bytes == 0
    assert step_chip.arena_used - plain.arena_used == expected
    tokens = encode(step_chip, TEXT)[:128]
    np.testing.assert_array_equal(
        plain.score_windows(tokens[None]), step_chip.score_windows(tokens[None])
    )


# ---- the build -------------------------------------------------------------------------------


def test_library_is_reused_and_rebuilt_only_for_new_sources():
    path = build_library()
    assert os.path.basename(path).startswith("libpicogpt-") and os.path.exists(path)
    assert build_library() == path  # no rebuild, same file
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")]


def test_concurrent_first_uses_build_once_and_an_edit_rebuilds(tmp_path):
    """Two processes that start at once on a copy of the sources: one builds (under the lock),
    the other waits and loads the same file. Editing a source gives a new library and removes
    the old one."""
    root = tmp_path / "repo"
    shutil.copytree(os.path.join(ROOT, "cim_runtime"), root / "cim_runtime")
    shutil.copytree(os.path.join(ROOT, "cmake"), root / "cmake")
    shutil.copy(os.path.join(ROOT, "CMakeLists.txt"), root)
    build_dir = tmp_path / "build"
    code = f"from tf_model.chip import build_library\nprint(build_library({str(build_dir)!r}, {str(root)!r}))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1 and os.path.exists(paths.pop())
    assert sum("building the C runtime" in err for _, err in results) == 1, results
    first = [f for f in os.listdir(build_dir) if f.startswith("libpicogpt-")]
    with open(root / "cim_runtime" / "src" / "runtime.c", "a") as f:
        f.write("/* an edit */\n")
    second = build_library(str(build_dir), str(root), quiet=True)
    assert (
        [os.path.basename(second)]
        == [f for f in os.listdir(build_dir) if f.startswith("libpicogpt-")]
        != first
    )


def test_missing_tools_are_named(tmp_path):
    """With no cmake (or no compiler) on PATH the first use says what to install."""
    code = (
        "from tf_model.chip import build_library, ChipBuildError\n"
        f"try:\n    build_library(build_dir={str(tmp_path)!r}, quiet=True)\n"
        "except ChipBuildError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PATH": str(tmp_path), "CC": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    ).stdout
    assert "cmake not found" in out and "apt-get install cmake gcc" in out, out
    os.symlink("/bin/true", tmp_path / "cmake")  # cmake "present", still no compiler
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    ).stdout
    assert "no C compiler found" in out and "install" in out, out


def test_unwritable_build_directory_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ChipBuildError, match="cannot create the binding's build directory"):
        build_library(build_dir=str(blocker / "build"), quiet=True)


def test_sources_outside_the_checkout_are_named(tmp_path):
    with pytest.raises(ChipBuildError, match="sources are not in"):
        build_library(build_dir=str(tmp_path / "b"), root=str(tmp_path))
