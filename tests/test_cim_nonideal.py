"""Simulated non-ideal CIM macros through the Python binding (picogpt_cim_nonideal), and the CIM
mapping in the exporter's deployment report.

    uv run pytest tests/test_cim_nonideal.py

Reference windows: 16 windows of 128 characters from the end of Tiny Shakespeare (the val
split's region), scored by the committed reference step model. Exact mode is bit-exact (the
golden tests in test_chip.py and ctest run with the simulation compiled in and off).
"""

import itertools
import json
import os

import numpy as np
import pytest
from conftest import ROOT, assert_no_traceback, run_script

from tf_model.chip import Chip, NonIdeal, log_softmax
from tf_model.export.cim_mapping import cim_mapping_report, format_cim_mapping, layer_roles

STEP_MODEL = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")
SHARED_TEXT = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt")
N_WINDOWS = 16


@pytest.fixture(scope="module")
def exact_chip():
    return Chip(STEP_MODEL)


@pytest.fixture(scope="module")
def windows(exact_chip):
    """(N_WINDOWS, block_size + 1) token ids: inputs and, shifted by one, targets."""
    with open(SHARED_TEXT, encoding="utf-8") as f:
        text = f.read()
    T = exact_chip.block_size
    tail = text[-N_WINDOWS * (T + 1) :]
    stoi = {ch: i for i, ch in enumerate(exact_chip.itos)}
    ids = np.array([stoi[ch] for ch in tail], np.int32)
    return ids.reshape(N_WINDOWS, T + 1)


@pytest.fixture(scope="module")
def peaks(exact_chip, windows):
    """Calibrated ADC ranges: each tile's largest |partial sum| on the reference windows."""
    chip = Chip(STEP_MODEL, cim_nonideal=NonIdeal(record_peaks=True))
    assert np.array_equal(
        chip.score_windows(windows[:, :-1]), exact_chip.score_windows(windows[:, :-1])
    ), "recording the peaks must not change the exact logits"
    p = chip.cim_peaks()
    assert p.shape == (25,) and (p > 0).all()
    return tuple(int(v) for v in p)


def nll(chip, windows):
    """Per-prediction negative log-likelihood (nats) of the targets, (N_WINDOWS * T,)."""
    logp = log_softmax(chip.dequantize(chip.score_windows(windows[:, :-1])))
    return -np.take_along_axis(logp, windows[:, 1:, None].astype(np.int64), -1).ravel()


def test_default_options_are_exact(exact_chip, windows):
    q = exact_chip.score_windows(windows[:4, :-1])
    for nonideal in (NonIdeal(), None):
        assert np.array_equal(
            Chip(STEP_MODEL, cim_nonideal=nonideal).score_windows(windows[:4, :-1]), q
        )


def test_a_seed_reproduces_the_logits_and_another_seed_differs(windows, peaks):
    def logits(seed):
        nonideal = NonIdeal(adc_bits=6, out_noise=0.02, weight_noise=0.01, seed=seed,
                            adc_full_scale=peaks)  # fmt: skip
        return Chip(STEP_MODEL, cim_nonideal=nonideal).score_windows(windows[:2, :-1])

    first = logits(7)
    assert np.array_equal(first, logits(7))
    assert not np.array_equal(first, logits(8))


def test_coarser_adc_never_improves_the_loss_by_more_than_noise(exact_chip, windows, peaks):
    """Deterministic ADC (no read-out noise), calibrated ranges: going from b to fewer bits may
    help a few predictions by chance, but never the mean by more than 3 standard errors of the
    per-prediction difference; and 4 bits clearly hurt."""
    bits = [0, 10, 8, 6, 5, 4]  # 0: no ADC; each is coarser than the one before
    losses = {0: nll(exact_chip, windows)}
    for b in bits[1:]:
        losses[b] = nll(
            Chip(STEP_MODEL, cim_nonideal=NonIdeal(adc_bits=b, adc_full_scale=peaks)), windows
        )
    for finer, coarser in itertools.pairwise(bits):
        diff = losses[coarser] - losses[finer]
        noise = 3 * diff.std() / np.sqrt(len(diff))
        assert diff.mean() >= -noise, (finer, coarser, diff.mean(), noise)
    assert losses[4].mean() > losses[0].mean() + 0.05, "a 4-bit ADC cannot be free"


@pytest.mark.parametrize(
    "nonideal, message",
    [
        (NonIdeal(adc_bits=1), "cim_nonideal.adc_bits 1: need 2..16 bits"),
        (NonIdeal(adc_bits=17), "cim_nonideal.adc_bits 17"),
        (NonIdeal(adc_range=-0.5), r"cim_nonideal.adc_range is not in \[0, 16\]"),
        (NonIdeal(out_noise=float("nan")), r"cim_nonideal.out_noise is not in \[0, 1\]"),
        (NonIdeal(weight_noise=2.0), r"cim_nonideal.weight_noise is not in \[0, 1\]"),
        (NonIdeal(adc_bits=8, adc_full_scale=(1000,) * 3), "adc_full_scale has 3 entries"),
        (NonIdeal(adc_bits=8, adc_full_scale=(0,) * 25), r"adc_full_scale\[0\] = 0"),
    ],
)
def test_bad_options_are_clear_errors(nonideal, message):
    with pytest.raises(ValueError, match=f"PICOGPT_ERR_ARGUMENT: .*{message}"):
        Chip(STEP_MODEL, cim_nonideal=nonideal)


def test_bad_option_types_and_peaks_without_recording(exact_chip):
    with pytest.raises(TypeError, match="cim_nonideal must be a tf_model.chip.NonIdeal"):
        Chip(STEP_MODEL, cim_nonideal={"adc_bits": 8})
    with pytest.raises(TypeError, match="NonIdeal.out_noise must be a number"):
        Chip(STEP_MODEL, cim_nonideal=NonIdeal(out_noise="2%"))
    with pytest.raises(ValueError, match=r"NonIdeal.seed must be in \[0, 2\^64\)"):
        Chip(STEP_MODEL, cim_nonideal=NonIdeal(seed=-1))
    with pytest.raises(ValueError, match="NonIdeal.adc_bits 4294967296 is outside int32"):
        Chip(STEP_MODEL, cim_nonideal=NonIdeal(adc_bits=2**32))
    with pytest.raises(ValueError, match="none recorded; init with cim_nonideal.record_peaks = 1"):
        exact_chip.cim_peaks()


# ---- the mapping in the deployment report ---------------------------------------------------


def test_report_mapping_of_the_reference_model():
    """The exporter's report section (from the C mapper): the exact tiles of the default model
    on the default device, 25 of 32 macros of 128 x 128."""
    with open(STEP_MODEL, "rb") as f:
        mapping = cim_mapping_report(f.read(), "int8")
    json.dumps(mapping)  # JSON-ready
    assert mapping["device"] == {"num_macros": 32, "rows": 128, "cols": 128, "input_bits": 8,
                                 "weight_bits": 8}  # fmt: skip
    layers = mapping["layers"]
    assert [la["name"] for la in layers[:6]] == [
        "h0.attn.q", "h0.attn.k", "h0.attn.v", "h0.attn.proj", "h0.mlp.fc", "h0.mlp.proj"
    ]  # fmt: skip
    assert layers[-1]["name"] == "lm_head" and len(layers) == 19
    # per block: q, k, v, proj 1 x 1; c_fc (256 x 128) 2 column tiles; c_proj (128 x 256) 2 row tiles
    block = [(1, 1), (1, 1), (1, 1), (1, 1), (2, 1), (1, 2)]
    assert [(la["col_tiles"], la["row_tiles"]) for la in layers] == block * 3 + [(1, 1)]
    assert [m for la in layers for m in la["macros"]] == list(range(25))
    assert layers[-1]["weight_shape"] == [65, 128]
    assert layers[-1]["utilisation"] == pytest.approx(65 / 128)
    assert mapping["macros_needed"] == mapping["macros_used"] == 25 and mapping["fits"]
    assert mapping["utilisation"] == pytest.approx(401536 / (25 * 128 * 128))
    assert mapping["macs_on_macros"] == 401536 and mapping["macs_fully_connected_on_cpu"] == 0
    assert mapping["fully_connected_share_on_macros"] == 1.0
    assert mapping["mac_share_on_macros"] == pytest.approx(401536 / (401536 + 99072))
    line = format_cim_mapping(mapping)
    assert "25 macros of 128 x 128 needed, device has 32 (fits); utilisation 98.0%" in line


def test_report_mapping_unavailable_and_unknown_graphs():
    assert "int8 models only" in cim_mapping_report(b"", "float")["unavailable"]
    assert format_cim_mapping({"unavailable": "why"}) == "not computed: why"
    assert layer_roles([[128, 128]] * 3) is None
    assert layer_roles([[128, 128]] * 4 + [[256, 128], [128, 256], [65, 128]])[-2:] == [
        "h0.mlp.proj", "lm_head"
    ]  # fmt: skip


# ---- the plot scripts: clear errors ---------------------------------------------------------


@pytest.fixture
def no_matplotlib(tmp_path):
    """An environment whose `import matplotlib` fails, as without `uv sync --group docs`."""
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('not installed')\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_plot_scripts_say_how_to_get_matplotlib(no_matplotlib, tmp_path):
    for script in ("scripts/plot_cim_map.py", "bench/bench_cim_nonideal.py"):
        r = run_script(script, env=no_matplotlib, timeout=120)
        assert r.returncode == 1 and "uv sync --group docs" in r.stderr, (script, r.stderr)
        assert_no_traceback(r.stderr)


def test_plot_cim_map_input_errors(tmp_path):
    no_section = tmp_path / "old_report.json"
    no_section.write_text(json.dumps({"kind": "step"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    cases = [
        (["--report", str(no_section)], "has no cim_mapping section; export the model again"),
        (["--report", str(broken)], "cannot read the report"),
        (["--report", str(tmp_path / "missing.json")], "cannot read the report"),
        (["--tflite", str(broken)], "cannot map"),
    ]
    for args, message in cases:
        r = run_script("scripts/plot_cim_map.py", *args, "--out", str(tmp_path / "m.png"))
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
        assert_no_traceback(r.stderr)
    assert not (tmp_path / "m.png").exists()


def test_sweep_rejects_bad_arguments():
    r = run_script("bench/bench_cim_nonideal.py", "--calibration_windows", "0", "--no_plot")
    assert r.returncode == 2 and "--calibration_windows must be >= 1, got 0" in r.stderr
    r = run_script("bench/bench_cim_nonideal.py", "--tflite", "missing.tflite", "--no_plot")
    assert r.returncode == 1 and "error: cannot read" in r.stderr and "missing.tflite" in r.stderr
    assert_no_traceback(r.stderr)
