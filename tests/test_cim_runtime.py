"""The C runtime's test suite, driven from pytest: configure + build the host-test preset, run ctest.

    uv run pytest tests/test_cim_runtime.py

ctest runs the kernel golden tests (TFLite Micro vectors), the end-to-end test (both exported
model kinds bit-exact over 128 positions), the robustness cases and a bounded libFuzzer run on
a seed corpus of real models. The build itself generates the golden data (TensorFlow + the
tflite-micro interpreter): kernel vectors from single-op models, and for the end-to-end test the
logits of the committed reference models (models/shakespeare_char/); it trains nothing.
"""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "host-test")


def run(cmd, timeout):
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built():
    for tool in ("cmake", "ctest", "clang"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required to build the C runtime (apt-get install cmake clang)")
    code, out = run(["cmake", "--preset", "host-test"], timeout=300)
    assert code == 0, f"cmake configure failed:\n{out[-6000:]}"
    code, out = run(["cmake", "--build", "--preset", "host-test"], timeout=1800)
    assert code == 0, f"build failed:\n{out[-8000:]}"
    return BUILD


def ctest(regex, timeout):
    code, out = run(["ctest", "--preset", "host-test", "-R", regex], timeout=timeout)
    assert code == 0, f"ctest -R {regex} failed:\n{out[-12000:]}"
    assert "tests passed" in out
    return out


def test_kernels_bit_exact_with_tflite_micro(built):
    ctest("^golden_", timeout=300)


def test_exported_models_bit_exact_over_128_steps(built):
    out = ctest("^e2e_", timeout=300)
    assert "Passed" in out


def test_robustness_cases(built):
    ctest("^robustness$", timeout=300)


def test_fuzz_model_reader_and_planner(built):
    ctest("^fuzz_", timeout=400)


def test_cli_generates_text_with_stats(built):
    cli = os.path.join(BUILD, "cim_runtime", "apps", "picogpt_generate")
    model = os.path.join(BUILD, "e2e", "model_step.tflite")
    args = [
        cli,
        model,
        "--prompt",
        "ROMEO:",
        "--length",
        "30",
        "--temperature",
        "0.8",
        "--top_k",
        "10",
        "--seed",
        "5",
    ]
    code, out = run(args, timeout=120)
    assert code == 0, out
    for stat in ("tokens/s", "bytes used", "MACs per token"):
        assert stat in out, out
    code2, out2 = run(args, timeout=120)
    assert code2 == 0, out2
    text = out.split("---")[0]
    assert text == out2.split("---")[0], "same seed must give the same text"
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:") + 20
    code, out = run([cli, model, "--prompt", "\u00e9\u00e9"], timeout=60)
    assert code == 2 and "outside the vocabulary" in out
    code, out = run([cli, os.path.join(BUILD, "e2e", "e2e.golden")], timeout=60)
    assert code == 1 and "error:" in out
