"""The documented flow end to end, with the README's own commands: prepare -> train -> sample ->
export (both kinds) -> riscv-debug build -> the firmware in QEMU.

It runs in a copy of the repository's files (a temp directory), so the commands stay exactly as
the README writes them -- default out_dir, the exporter writing the source tree's
model_data.{h,cc}, the preset's build directory -- without touching this checkout. What is
adapted: `uv run python` is this test's interpreter (the same environment), the text comes from
../shared as an absolute path, and training is a short run of a tiny off-target model
(the firmware runs any exported shape; the default model takes 45 minutes).
"""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, TF_LOG_MARKERS, assert_no_traceback

SHARED_TEXT = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt")
OUT = "out-tf-pico-shakespeare-char"
PROMPT = "O God, O God!"
SHORT_TINY_RUN = [  # the only additions to the README's training command
    "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--enforce_cim_limits=False",
    "--max_iters=40", "--lr_decay_iters=40", "--warmup_iters=4", "--eval_interval=20",
    "--eval_iters=2", "--batch_size=16", "--learning_rate=1e-2",
]  # fmt: skip


def copy_of_the_repository(dest):
    """The checkout's files as git sees them (tracked, and new files not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
    return dest


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    missing = [t for t in ("git", "cmake", "riscv64-unknown-elf-gcc", "qemu-system-riscv32")
               if shutil.which(t) is None]  # fmt: skip
    if missing:
        pytest.fail(f"missing {', '.join(missing)} (.ci/run installs them)")
    if not os.path.exists(SHARED_TEXT):
        pytest.fail(f"the Tiny Shakespeare text is not at {SHARED_TEXT}")
    return copy_of_the_repository(str(tmp_path_factory.mktemp("seed") / "repo"))


def run(repo, *cmd, timeout=600):
    """A command in the copy, as a user runs it (no TF_CPP_MIN_LOG_LEVEL: the scripts keep
    TensorFlow's start-up log off the terminal themselves)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    cmd = [sys.executable if part == "python" else part for part in cmd]
    proc = subprocess.run(
        cmd, cwd=repo, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert_no_traceback(proc.stderr)
    assert not [m for m in TF_LOG_MARKERS if m in proc.stderr], proc.stderr[-3000:]
    return proc


def model_kind_in_header(repo):
    with open(os.path.join(repo, "cim_runtime", "include", "pico_gpt", "model_data.h")) as f:
        return [line.strip() for line in f if line.startswith("#define PICOGPT_USE_KV_CACHE")]


def test_readme_flow_from_text_to_firmware(repo):
    run(repo, "python", "data/shakespeare_char/prepare.py", "--input", SHARED_TEXT)

    train = run(repo, "python", "tf_train.py", "--config",
                "tf_config/train_pico_shakespeare_char.py", *SHORT_TINY_RUN)  # fmt: skip
    for name in ("model.keras", "model_config.pkl"):
        assert os.path.isfile(os.path.join(repo, OUT, name)), train.stdout[-2000:]
    assert "done: 40 iterations this run" in train.stdout

    sample = run(repo, "python", "tf_sample.py", "--out_dir", OUT, "--start", PROMPT)
    texts = [t for t in sample.stdout.split("---------------\n") if t]
    assert len(texts) == 3 and all(t.startswith(PROMPT) for t in texts), sample.stdout[-2000:]

    run(repo, "python", "tf_convert_to_tflite.py", "--model_dir", OUT)
    assert os.path.isfile(os.path.join(repo, OUT, "model_data_int8.tflite"))
    assert os.path.isfile(os.path.join(repo, OUT, "model_data_int8_report.json"))
    assert model_kind_in_header(repo) == ["#define PICOGPT_USE_KV_CACHE 1"]
    run(repo, "python", "tf_convert_to_tflite.py", "--model_dir", OUT, "--no_kv_cache")
    assert os.path.isfile(os.path.join(repo, OUT, "model_data_full_int8.tflite"))
    assert model_kind_in_header(repo) == ["#define PICOGPT_USE_KV_CACHE 0"]

    # the build follows the kind of the model just exported (full window)
    configure = run(repo, "cmake", "--preset=riscv-debug")
    assert "a full-window (--no_kv_cache) model" in configure.stdout
    run(repo, "cmake", "--build", "--preset=riscv-debug-build")
    firmware = os.path.join("build", "riscv-debug", "cim_runtime", "firmware",
                            "picogpt_firmware.elf")  # fmt: skip
    qemu = run(repo, "scripts/run_qemu.sh", firmware, "--prompt", PROMPT, timeout=300)
    text, _, stats = qemu.stdout.partition("picogpt-stats:")
    assert text.startswith(PROMPT) and len(text) > len(PROMPT) + 50, qemu.stdout[-2000:]
    assert "model=full-window" in stats and "tokens=100" in stats
