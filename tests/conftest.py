"""Shared fixtures: a small synthetic corpus prepared in nanoGPT format, and a helper to run scripts."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A tiny off-target model that trains in seconds (CIMv3 checks off: n_embd=32 is not a CIM width).
TINY_MODEL_ARGS = [
    "--n_layer=2",
    "--n_head=2",
    "--n_embd=32",
    "--block_size=32",
    "--dropout=0.0",
    "--enforce_cim_limits=False",
    "--batch_size=16",
    "--eval_iters=4",
]


def make_corpus(n_chars=30_000):
    """Deterministic text with real structure (repeated words and lines) so a model can learn it."""
    words = [
        "the",
        "king",
        "queen",
        "shall",
        "speak",
        "now",
        "my",
        "lord",
        "good",
        "night",
        "and",
        "to",
    ]
    lines, i = [], 0
    while sum(len(line) + 1 for line in lines) < n_chars:
        name = ("ROMEO", "JULIET", "KING")[i % 3]
        body = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(6))
        lines.append(f"{name}:\n{body.capitalize()}.\n")
        i += 1
    return "\n".join(lines)[:n_chars]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    from data.shakespeare_char.prepare import prepare

    d = tmp_path_factory.mktemp("corpus")
    text_path = d / "input.txt"
    text_path.write_text(make_corpus(), encoding="utf-8")
    prepare(str(text_path), str(d))
    return d


@pytest.fixture(scope="session")
def shakespeare_dir(tmp_path_factory):
    """Tiny Shakespeare prepared in nanoGPT format (test_export.shakespeare_data_dir)."""
    from test_export import shakespeare_data_dir

    return shakespeare_data_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def small_trained_dir(tmp_path_factory, shakespeare_dir):
    """test_export's small trained PicoGPT, trained once for every module that needs it."""
    from test_export import train_checkpoint

    out = tmp_path_factory.mktemp("trained")
    train_checkpoint(out, shakespeare_dir)
    return str(out)


def run_script(*args, timeout=600, env=None, hide_tf_log=True):
    """Run a project script with the test interpreter; return the CompletedProcess (text).

    hide_tf_log=False runs it as a user would, without TF_CPP_MIN_LOG_LEVEL set, so a test can
    check that the script itself keeps TensorFlow's start-up log off the terminal."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    if not hide_tf_log:
        full_env.pop("TF_CPP_MIN_LOG_LEVEL")
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


# What TensorFlow's C++ start-up writes to stderr when nothing hides it (absl log lines such as
# "I0000 00:00:... port.cc:153] oneDNN custom operations are on", "E0000 ... failed call to cuInit").
TF_LOG_MARKERS = ("oneDNN", "cuInit", "cuda", "absl::InitializeLog", "I0000 ", "E0000 ", "W0000 ")


def cpu_has_avx512_vnni():
    """Whether this (Linux) CPU runs the C runtime's AVX-512 VNNI path: the one that reads the
    CIM HAL's tile memory."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= set(flags)


def assert_no_traceback(stderr):
    assert "Traceback" not in stderr, stderr[-3000:]


# the exporter tests' names for the two session models
@pytest.fixture(scope="session")
def data_dir(shakespeare_dir):
    return shakespeare_dir


@pytest.fixture(scope="session")
def trained_dir(small_trained_dir):
    return small_trained_dir
