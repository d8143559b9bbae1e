"""Tests for the TFLite exporter (tf_convert_to_tflite.py and the tf_model/export/ package).

Models: a small trained PicoGPT (2 layers, n_embd 64, block 32, off-target sizes so it trains in
seconds) on real Tiny Shakespeare text, and an untrained default-config model for the shapes the
chip runs. Conversions go through the Python API in-process (one TensorFlow import); the CLI is
run as a subprocess where its exit code and output are the point.
"""

import json
import os
import pickle
import subprocess
import warnings

import numpy as np
import pytest
from conftest import ROOT, run_script

SMALL_MODEL = {
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 64,
    "block_size": 32,
    "dropout": 0.0,
    "enforce_cim_limits": False,
}
SMALL_TRAIN_ITERS = 400
# Floors for the small model after SMALL_TRAIN_ITERS steps; measured 98.4% (step) / 98.1% (full)
# top-1 agreement and val loss within 0.005 of float (docs/export.md). The targets for
# the trained default config (val loss + 0.05, 95%) are measured by the report, not here.
INT8_TOP1_FLOOR = 0.95
INT8_LOSS_MARGIN = 0.05
# CI clones the repo with ../shared beside its root
SHARED_TEXT = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt")


def shakespeare_data_dir(tmp_path_factory):
    """Real text: the repo's prepared data/shakespeare_char, else prepared from the shared copy."""
    repo = os.path.join(ROOT, "data", "shakespeare_char")
    if all(os.path.exists(os.path.join(repo, f)) for f in ("train.bin", "val.bin", "meta.pkl")):
        return repo
    if not os.path.exists(SHARED_TEXT):
        pytest.fail(
            "Tiny Shakespeare is not prepared: run `uv run python data/shakespeare_char/prepare.py`"
        )
    from data.shakespeare_char.prepare import prepare

    out = tmp_path_factory.mktemp("shakespeare")
    prepare(SHARED_TEXT, str(out))
    return str(out)


def train_checkpoint(out_dir, data_dir):
    """The one place these tests get a trained checkpoint: the real trainer, tf_train.py."""
    overrides = {
        **SMALL_MODEL,
        "out_dir": str(out_dir),
        "data_dir": str(data_dir),
        "max_iters": SMALL_TRAIN_ITERS,
        "lr_decay_iters": SMALL_TRAIN_ITERS,
        "eval_interval": SMALL_TRAIN_ITERS,  # evaluates at 0 and at the end, saves the last
        "eval_iters": 4,
        "batch_size": 16,
        "tensorboard": False,
    }
    args = [f"--{k}={v}" for k, v in overrides.items()]
    proc = run_script("tf_train.py", "--config", "tf_config/train_pico_quick.py", *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert os.path.exists(os.path.join(out_dir, "model.keras")), proc.stdout[-2000:]


def save_untrained_checkpoint(out_dir, data_dir, **config):
    """A freshly initialized model in checkpoint format (shape tests and bad-input tests)."""
    from tf_model.config import PicoGPTConfig
    from tf_model.model import PicoGPT

    os.makedirs(out_dir, exist_ok=True)
    cfg = PicoGPTConfig(**config)
    PicoGPT(cfg).save(os.path.join(out_dir, "model.keras"))
    info = {
        "model_args": cfg.to_dict(),
        "data_dir": str(data_dir),
        "iter_num": 0,
        "best_val_loss": float("nan"),
        "train_config": {},
    }
    with open(os.path.join(out_dir, "model_config.pkl"), "wb") as f:
        pickle.dump(info, f)
    return out_dir


@pytest.fixture(scope="module")
def checkpoint(trained_dir):
    from tf_model.checkpoint import load_checkpoint

    return load_checkpoint(trained_dir)


CONVERSION_WARNINGS = []  # Python warnings raised while the exports fixture converts


@pytest.fixture(scope="module")
def exports(checkpoint):
    """Every (kind, quantization) export of the small trained model, converted once."""
    from tf_model.export import build_tflite

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = {
            (kind, q): build_tflite(checkpoint, kind, q, num_calibration_windows=4)
            for kind in ("step", "full")
            for q in ("int8", "hybrid", "float")
        }
    CONVERSION_WARNINGS.extend(str(w.message) for w in caught)
    return built


def test_conversion_uses_no_debugging_only_interpreter_option(exports):
    """Calibration reads LiteRT tensors as extra outputs, not with experimental_preserve_all_
    tensors, which LiteRT warns is for debugging only."""
    assert not [w for w in CONVERSION_WARNINGS if "preserve_all_tensors" in w]


@pytest.fixture(scope="module")
def default_config_dir(tmp_path_factory, data_dir):
    return save_untrained_checkpoint(str(tmp_path_factory.mktemp("default_cfg")), data_dir)


# ---- conversion in each mode ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["step", "full"])
@pytest.mark.parametrize("quantization", ["int8", "hybrid", "float"])
def test_every_mode_converts_and_runs_in_litert(exports, checkpoint, kind, quantization):
    from tf_model.export.tflite_step import load_exported

    data, metadata = exports[(kind, quantization)]
    assert metadata["kind"] == kind and metadata["quantization"] == quantization
    model = load_exported(data, backend="litert")
    logits = model.next_logits([1, 2, 3])
    assert logits.shape == (checkpoint.config.vocab_size,)
    assert np.all(np.isfinite(logits))


def test_step_int8_signature(exports, checkpoint):
    from tf_model.export.flatbuffer import describe

    c = checkpoint.config
    info = describe(exports[("step", "int8")][0])
    names = [t["name"] for t in info["inputs"]]
    assert names == ["token", "pos"] + [
        f"{kv}_cache_{i}" for i in range(c.n_layer) for kv in ("k", "v")
    ]
    assert [t["name"] for t in info["outputs"]] == ["logits"] + [
        f"{kv}_new_{i}" for i in range(c.n_layer) for kv in ("k", "v")
    ]
    by_name = {t["name"]: t for t in info["inputs"] + info["outputs"]}
    assert by_name["token"]["dtype"] == by_name["pos"]["dtype"] == "int32"
    nh, hs, T = c.n_head, c.head_size, c.block_size
    for i in range(c.n_layer):
        assert by_name[f"k_cache_{i}"]["shape"] == [nh, T, hs]
        assert by_name[f"v_cache_{i}"]["shape"] == [nh, hs, T]
        assert by_name[f"k_new_{i}"]["shape"] == [nh, 1, hs]
        assert by_name[f"v_new_{i}"]["shape"] == [nh, hs, 1]
        for kv in ("k", "v"):
            cache, new = by_name[f"{kv}_cache_{i}"], by_name[f"{kv}_new_{i}"]
            assert cache["dtype"] == new["dtype"] == "int8"
            # the runtime copies new-row bytes into the cache: parameters must be identical
            assert cache["quantization"] == new["quantization"]
    assert by_name["logits"]["dtype"] == "int8"


DOCUMENTED_OPS = {
    "step": {
        "FULLY_CONNECTED", "ADD", "RESHAPE", "BATCH_MATMUL", "STRIDED_SLICE", "MEAN", "MUL",
        "SELECT_V2", "CONCATENATION", "SOFTMAX", "RSQRT", "SUB", "GATHER", "LESS",
    },
    "full": {
        "FULLY_CONNECTED", "ADD", "RESHAPE", "TRANSPOSE", "BATCH_MATMUL", "MEAN", "MUL",
        "SELECT_V2", "SOFTMAX", "RSQRT", "SUB", "GATHER",
    },
}  # fmt: skip


@pytest.mark.parametrize("kind", ["step", "full"])
def test_int8_ops_are_the_documented_set(exports, kind):
    """The C runtime implements exactly docs/model_signature.md's list; a new op must be noticed."""
    from tf_model.export.flatbuffer import describe

    assert set(describe(exports[(kind, "int8")][0])["ops"]) == DOCUMENTED_OPS[kind]
    with open(os.path.join(ROOT, "docs", "model_signature.md"), encoding="utf-8") as f:
        doc = f.read()
    for op in DOCUMENTED_OPS[kind]:
        assert op in doc


# ---- TFLite Micro ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["step", "full"])
def test_tflm_runs_int8_and_matches_litert(exports, data_dir, kind):
    from tf_model.export.tflite_step import load_exported

    data = exports[(kind, "int8")][0]
    tflm = load_exported(data, backend="tflm")
    litert = load_exported(data, backend="litert")
    val = np.memmap(os.path.join(data_dir, "val.bin"), dtype=np.uint16, mode="r")
    windows = [np.asarray(val[s : s + tflm.block_size], np.int32) for s in (1000, 9000, 17000)]
    a = np.concatenate([tflm.sequence_logits(w) for w in windows])
    b = np.concatenate([litert.sequence_logits(w) for w in windows])
    # same integer graph; the two interpreters round some requantizations differently (NOTES),
    # which flips near-tied argmaxes only
    assert np.mean(a.argmax(-1) == b.argmax(-1)) >= 0.9
    scale = tflm.interp.outputs["logits"][1]["quantization"]["scale"]
    assert np.max(np.abs(a - b)) <= 16 * scale
    assert tflm.interp.arena_bytes() > 0


@pytest.fixture(scope="module")
def default_step_int8(default_config_dir):
    """The default (per-channel) int8 step export of the default config."""
    from tf_model.checkpoint import load_checkpoint
    from tf_model.export import build_tflite

    data, _ = build_tflite(
        load_checkpoint(default_config_dir), "step", "int8", num_calibration_windows=1
    )
    return data


def test_tflm_default_config_step_model(default_step_int8):
    """The chip's shapes (n_embd 128, head 64, block 128): TFLM runs it, cache stays in place."""
    from tf_model.export import check_tflm
    from tf_model.export.tflite_step import load_exported

    data = default_step_int8
    arena, status = check_tflm(data, "int8", "step")
    assert status == "runs"
    # cache inputs (96 KB) + activations + per-channel data; a transposed V copy would add 48 KB
    assert 100_000 < arena < 180_000
    model = load_exported(data, backend="tflm")
    for pos, token in enumerate([5, 6, 7]):
        model.step(token, pos)
    assert np.array_equal(model.caches["v_cache_2"][:, :, 2], model.last_raw["v_new_2"][:, :, 0])
    assert np.array_equal(model.caches["k_cache_1"][:, 2, :], model.last_raw["k_new_1"][:, 0, :])


def test_default_per_channel_export_fits_460kb_with_shared_zero_points(default_step_int8):
    """Issue #3: per-channel int8 weights AND <= 460,000 B; the flatbuffer shares one zero-point
    vector per channel count (zero_point length still equals scale length)."""
    from tf_model.export.flatbuffer import (
        per_channel_quantization,
        read_metadata,
        read_model,
        schema,
    )

    data = default_step_int8
    assert len(data) <= 460_000
    zp_vectors = {}  # channel count -> offsets of the zero-point vectors used
    for q in per_channel_quantization(data):
        assert len(q["zero_points"]) == q["channels"]
        assert not q["zero_points"].any()
        zp_vectors.setdefault(q["channels"], set()).add(q["zero_point_offset"])
    assert sum(len(v) for v in zp_vectors.values()) >= 3  # per-channel tensors of 3+ widths
    assert all(len(positions) == 1 for positions in zp_vectors.values()), zp_vectors
    # every data-less tensor reads buffer 0 (no per-activation empty buffers)
    model = schema.Model.GetRootAsModel(bytearray(data), 0)
    empty = [b for b in range(model.BuffersLength()) if model.Buffers(b).DataLength() == 0]
    assert empty == [0]
    # the inputs and outputs keep their names, the int8 points their short point names, the
    # rest none (flatbuffer.strip_internal_names)
    from tf_model.config import PicoGPTConfig
    from tf_model.qat import point_names

    graph = read_model(data).subgraphs[0]
    io = set(graph.inputs) | set(graph.outputs)
    assert all(graph.tensors[i].name for i in io)
    points = set(point_names(PicoGPTConfig.from_dict(read_metadata(data)["config"])))
    internal = {t.name.decode() for i, t in enumerate(graph.tensors) if i not in io and t.name}
    assert internal and internal <= points, internal - points


def test_per_tensor_weights_are_smaller_and_still_accurate(exports, checkpoint):
    from tf_model.export import build_tflite, check_tflm, evaluate
    from tf_model.export.flatbuffer import read_model

    data, metadata = build_tflite(
        checkpoint, "step", "int8", num_calibration_windows=4, weight_quantization="per_tensor"
    )
    assert metadata["weight_quantization"] == "per_tensor"
    graph = read_model(data).subgraphs[0]
    scale_counts = {
        len(t.quantization.scale)
        for t in graph.tensors
        if t.quantization and t.quantization.scale is not None
    }
    assert scale_counts == {1}, "every tensor has one scale"
    per_channel = exports[("step", "int8")][0]
    assert len(data) < len(per_channel)
    assert check_tflm(data, "int8", "step")[1] == "runs"
    result = evaluate(checkpoint, data, "step", num_eval_windows=16)
    assert result["top1_agreement"] >= INT8_TOP1_FLOOR


def test_hybrid_is_reported_not_runnable_on_tflm(exports):
    from tf_model.export import check_tflm

    arena, status = check_tflm(exports[("step", "hybrid")][0], "hybrid", "step")
    assert arena is None
    assert "hybrid" in status and "FLOAT32" in status and "INT8" in status


# ---- accuracy -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["step", "full"])
def test_float_export_matches_keras(exports, checkpoint, kind):
    from tf_model.export import evaluate

    result = evaluate(checkpoint, exports[(kind, "float")][0], kind, num_eval_windows=2)
    assert result["max_abs_logit_diff"] <= 1e-4
    assert result["top1_agreement"] == 1.0


@pytest.mark.parametrize("kind", ["step", "full"])
def test_int8_agrees_with_float_on_real_text(exports, checkpoint, kind):
    from tf_model.export import evaluate

    result = evaluate(checkpoint, exports[(kind, "int8")][0], kind, num_eval_windows=16)
    assert result["keras_val_loss"] < 2.6, "the small model did not train; the floors mean nothing"
    assert result["top1_agreement"] >= INT8_TOP1_FLOOR
    assert result["export_val_loss"] <= result["keras_val_loss"] + INT8_LOSS_MARGIN


def test_step_and_full_int8_agree(exports, data_dir):
    from tf_model.export.tflite_step import load_exported

    step = load_exported(exports[("step", "int8")][0])
    full = load_exported(exports[("full", "int8")][0])
    val = np.memmap(os.path.join(data_dir, "val.bin"), dtype=np.uint16, mode="r")
    tokens = np.asarray(val[5000 : 5000 + step.block_size], dtype=np.int32)
    a, b = step.sequence_logits(tokens), full.sequence_logits(tokens)
    assert np.mean(a.argmax(-1) == b.argmax(-1)) >= 0.9


# ---- tf_eval.py --tflite: the export scored with the chip's arithmetic ------------------------


def eval_line(stdout):
    """tf_eval --tflite's summary -> (int8 loss, float loss, top-1 %, predictions, KL)."""
    import re

    m = re.search(
        r"int8 ([\d.]+), float ([\d.]+) \([+-][\d.]+\) nats/char, top-1 agreement ([\d.]+)%, "
        r"KL\(float \|\| int8\) ([\d.]+) over ([\d,]+) predictions",
        stdout,
    )
    assert m, stdout
    return float(m[1]), float(m[2]), m[3], int(m[5].replace(",", "")), float(m[4])


def test_tf_eval_tflite_agrees_with_tflite_micro(trained_dir, exports, checkpoint, tmp_path):
    """The C runtime's whole-split evaluation against a slow reference on a few windows: the
    tflite-micro interpreter for the int8 logits and the Keras model for the float ones."""
    from tf_model.checkpoint import load_split
    from tf_model.export.tflite_step import load_exported

    data = exports[("step", "int8")][0]
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    r = run_script("tf_eval.py", f"--out_dir={trained_dir}", f"--tflite={path}", "--max_windows=3")
    assert r.returncode == 0, r.stderr[-3000:]
    int8_loss, float_loss, top1, predictions, kl = eval_line(r.stdout)
    assert "non-overlapping windows" in r.stdout and "chip arithmetic (C runtime)" in r.stdout

    T = checkpoint.config.block_size
    val = load_split(checkpoint.data_dir, "val", T, "the test")
    windows = np.stack([np.asarray(val[i * T : i * T + T + 1], np.int64) for i in range(3)])
    x, y = windows[:, :-1], windows[:, 1:]
    tflm = load_exported(data, backend="tflm")
    int8_logits = np.stack([tflm.sequence_logits(w) for w in x]).astype(np.float64)
    float_logits = checkpoint.model(x.astype(np.int32)).numpy().astype(np.float64)

    def nll(logits):
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.take_along_axis(logp, y[..., None], -1).mean()

    assert predictions == 3 * T
    assert abs(int8_loss - nll(int8_logits)) <= 6e-5 and abs(float_loss - nll(float_logits)) <= 6e-5
    agree = np.mean(int8_logits.argmax(-1) == float_logits.argmax(-1))
    assert top1 == f"{100 * agree:.2f}"
    float_p = np.exp(float_logits - np.log(np.exp(float_logits).sum(-1, keepdims=True)))
    int8_logp = int8_logits - np.log(np.exp(int8_logits).sum(-1, keepdims=True))
    expected_kl = np.mean(np.sum(float_p * (np.log(float_p) - int8_logp), axis=-1))
    assert abs(kl - expected_kl) <= 6e-5

    r = run_script(
        "tf_eval.py", f"--out_dir={trained_dir}", f"--tflite={path}", "--max_windows=3",
        "--window=shift", "--keep=8",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "one text, window shift, keep 8" in r.stdout and eval_line(r.stdout)[3] == 3 * T


def test_tf_eval_tflite_bad_inputs(trained_dir, exports, default_step_int8, tmp_path):
    other, own = tmp_path / "other.tflite", tmp_path / "own.tflite"
    other.write_bytes(default_step_int8)
    own.write_bytes(exports[("step", "int8")][0])
    for args, message in [
        ([f"--tflite={other}"], "was not exported from the model in"),
        ([f"--tflite={tmp_path}/none.tflite"], "none.tflite: No such file"),
        ([f"--tflite={own}", "--window=shift", "--keep=32"], "--keep 32: window keep 32 is out"),
        (["--window=exact"], "--window, --keep and --every need --tflite"),
        ([f"--tflite={other}", "--keep=3"], "--keep and --every need --window"),
        ([f"--tflite={other}", "--window=exact", "--every=0"], "--every must be >= 1"),
        (["--max_windows=0"], "--max_windows must be >= 1"),
    ]:
        r = run_script("tf_eval.py", f"--out_dir={trained_dir}", *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr


# ---- tflite_step API ------------------------------------------------------------------------


def test_next_logits_reuses_cache_and_crops_like_keras(exports, checkpoint):
    from tf_model.export.tflite_step import load_exported

    model = load_exported(exports[("step", "float")][0])
    T = model.block_size
    context = list(np.random.default_rng(0).integers(0, model.vocab_size, T + 5))
    incremental = [model.next_logits(context[: n + 1]) for n in range(T + 5)]
    keras_logits = checkpoint.model(np.array([context[:T]], np.int32)).numpy()[0]
    np.testing.assert_allclose(incremental[T - 1], keras_logits[T - 1], atol=1e-4)
    # past block_size the context is cropped to the last T tokens, as the Keras sampler does
    cropped = checkpoint.model(np.array([context[5:]], np.int32)).numpy()[0, -1]
    np.testing.assert_allclose(incremental[-1], cropped, atol=1e-4)
    with pytest.raises(ValueError, match="pos must be"):
        model.step(0, T)
    with pytest.raises(ValueError, match="token must be"):
        model.step(model.vocab_size, 0)


# ---- CLI, C arrays, determinism -------------------------------------------------------------


def cli(*args):
    return run_script("tf_convert_to_tflite.py", "--quiet", *args)


def test_cli_writes_model_report_and_c_arrays(trained_dir, tmp_path):
    from tf_model.export.flatbuffer import micro_encoding

    out = tmp_path / "out"
    (out / "include" / "pico_gpt").mkdir(parents=True)
    header = out / "include" / "pico_gpt" / "model_data.h"
    source = out / "model_data.cc"
    common = ["--model_dir", trained_dir, "--num_calibration_samples", "4",
              "--num_eval_windows", "2", "--c_header", str(header), "--c_source", str(source)]  # fmt: skip
    result = cli(*common, "--output", str(out / "chip.tflite"))
    assert result.returncode == 0, result.stderr
    assert "top-1 agreement" in result.stdout and "wrote" in result.stdout
    model_bytes = (out / "chip.tflite").read_bytes()
    report = json.loads((out / "chip_report.json").read_text())
    assert report["file_bytes"] == len(model_bytes)
    assert report["tflm"]["status"] == "runs" and report["tflm"]["arena_bytes"] > 0
    assert report["kv_cache_bytes"] == 2 * 2 * 2 * 32 * 32  # 2 (K,V) x layers x heads x T x hs
    assert report["macs_per_token"] > 0 and report["ops"]["FULLY_CONNECTED"] == 6 * 2 + 1
    # the CIM mapping, from the C mapper: every layer (n_embd 64, 2 x n_embd in the MLP, a
    # vocabulary < 128) fits one 128 x 128 macro of the default device
    mapping = report["cim_mapping"]
    assert mapping["macros_needed"] == mapping["macros_used"] == 13 and mapping["fits"]
    assert [la["tiles"] for la in mapping["layers"]] == [1] * 13
    assert [la["name"] for la in mapping["layers"]][4:7] == [
        "h0.mlp.fc",
        "h0.mlp.proj",
        "h1.attn.q",
    ]
    assert "CIM mapping" in result.stdout and "13 macros of 128 x 128 needed" in result.stdout
    # the quantization debugger: KL and one agreement row per int8 tensor, the weakest printed
    evaluation = report["evaluation"]
    assert report["range_policy"] == "percentile" and "int8 ranges" in result.stdout
    assert 0 <= evaluation["kl_divergence"] < 0.1
    from tf_model.config import PicoGPTConfig
    from tf_model.qat import point_names

    rows = evaluation["tensor_agreement"]
    assert [r["point"] for r in rows] == point_names(PicoGPTConfig.from_dict(report["config"]))
    weakest = min(rows, key=lambda r: r["snr_db"])
    assert f"{weakest['point']} {weakest['snr_db']:.1f} dB" in result.stdout

    # C arrays compile as C and C++ and hold the model
    main_c = tmp_path / "main.c"
    main_c.write_text(
        '#include <stdio.h>\n#include "pico_gpt/model_data.h"\n'
        "int main(void) {\n"
        '  FILE *f = fopen("dump.bin", "wb");\n'
        "  fwrite(g_pico_gpt_model_data, 1, g_pico_gpt_model_data_len, f);\n"
        "  fclose(f);\n"
        '  printf("%d %d %d %d %d %d %c %d\\n", PICOGPT_N_LAYER, PICOGPT_N_HEAD, PICOGPT_N_EMBD,\n'
        "         PICOGPT_BLOCK_SIZE, PICOGPT_VOCAB_SIZE, PICOGPT_USE_KV_CACHE,\n"
        "         g_pico_gpt_vocab[g_pico_gpt_vocab_offsets[13]],\n"
        "         (int)((unsigned long)g_pico_gpt_model_data % 16));\n"
        "  return 0;\n}\n"
    )
    inc = str(out / "include")
    obj = tmp_path / "model_data.o"
    app = tmp_path / "app"
    for cmd in (
        ["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", inc, "-c", str(source), "-o", str(obj)],
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", inc, "-c", str(main_c), "-o", str(tmp_path / "main.o")],
        ["g++", str(tmp_path / "main.o"), str(obj), "-o", str(app)],
    ):  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    run = subprocess.run([str(app)], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0
    assert run.stdout.split() == ["2", "2", "64", "32", "65", "1", "A", "0"]  # token 13 is 'A'
    # the .tflite in TFLite Micro's encoding: one zero point per per-channel weight tensor
    assert (tmp_path / "dump.bin").read_bytes() == micro_encoding(model_bytes)
    header_text = header.read_text()
    ops = " ".join(sorted(report["ops"]))
    assert f'#define PICOGPT_MODEL_OPS "{ops}"' in header_text  # the firmware's kernels
    assert (
        f"#define PICOGPT_MODEL_TENSOR_ARENA_SIZE {report['tflm']['recommended_arena_bytes']}"
        in header_text
    )
    assert "define PICOGPT_TENSOR_ARENA_SIZE" not in header_text  # runtime.h owns that macro

    # the standalone generator (for build directories) writes the very same files
    header3, source3 = tmp_path / "h3" / "pico_gpt" / "model_data.h", tmp_path / "s3.cc"
    header3.parent.mkdir(parents=True)
    regen = run_script("-m", "tf_model.export.carray", str(out / "chip.tflite"),
                       "--c_header", str(header3), "--c_source", str(source3))  # fmt: skip
    assert regen.returncode == 0, regen.stderr
    assert header3.read_text() == header_text and source3.read_text() == source.read_text()

    # same input model -> byte-identical outputs, with or without --output
    header2, source2 = tmp_path / "h2" / "pico_gpt" / "model_data.h", tmp_path / "s2.cc"
    header2.parent.mkdir(parents=True)
    again = cli("--model_dir", trained_dir, "--num_calibration_samples", "4",
                "--num_eval_windows", "2", "--c_header", str(header2), "--c_source", str(source2))  # fmt: skip
    assert again.returncode == 0, again.stderr
    default_path = os.path.join(trained_dir, "model_data_int8.tflite")
    with open(default_path, "rb") as f:
        assert f.read() == model_bytes
    assert header2.read_text() == header_text
    assert source2.read_text() == source.read_text()


def test_build_is_deterministic(checkpoint, exports):
    from tf_model.export import build_tflite

    again, _ = build_tflite(checkpoint, "full", "int8", num_calibration_windows=4)
    assert again == exports[("full", "int8")][0]


# ---- bad input ------------------------------------------------------------------------------


def test_c_arrays_refuse_a_float_model(exports, tmp_path):
    from tf_model.export.carray import main

    path = tmp_path / "float.tflite"
    path.write_bytes(exports[("step", "float")][0])
    header, source = tmp_path / "model_data.h", tmp_path / "model_data.cc"
    assert main([str(path), "--c_header", str(header), "--c_source", str(source)]) == 2
    assert not header.exists() and not source.exists()
