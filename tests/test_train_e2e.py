"""End to end: prepared corpus -> tiny training run -> loss falls -> sampling -> resume, Ctrl-C,
NaN, a full disk. Scripts run as subprocesses where their exit status, terminal output or
signals are the point, and in-process (main(argv)) otherwise: each subprocess pays TensorFlow's
import."""

import csv
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    ROOT,
    TF_LOG_MARKERS,
    TINY_MODEL_ARGS,
    assert_no_traceback,
    run_script,
)

import tf_eval
import tf_sample

SCHEDULE = ["--learning_rate=1e-2", "--warmup_iters=5", "--lr_decay_iters=120"]


def train(corpus_dir, out_dir, *extra, timeout=600, **kwargs):
    return run_script(
        "tf_train.py",
        f"--data_dir={corpus_dir}",
        f"--out_dir={out_dir}",
        *TINY_MODEL_ARGS,
        *extra,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(corpus_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("run")
    r = train(
        corpus_dir,
        out_dir,
        "--max_iters=60",
        "--eval_interval=30",
        "--log_interval=20",
        "--progress_interval=0",  # a progress line at every log_interval (stdout is a pipe)
        *SCHEDULE,
        hide_tf_log=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out_dir, r


def read_metrics(out_dir):
    with open(os.path.join(out_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def test_training_lowers_the_loss_and_writes_every_file(trained):
    out_dir, r = trained
    rows = read_metrics(out_dir)
    assert [int(row["iter"]) for row in rows] == [0, 30, 60]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"]) - 0.8, rows
    for name in ("model.keras", "model_config.pkl", "ckpt.pkl", "metrics.csv"):
        assert (
            os.path.exists(os.path.join(out_dir, name))
            and f"wrote {out_dir}/{name}".replace("//", "/") in r.stdout
        )
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(out_dir, "tb")))
    assert "done: 60 iterations this run (iteration 0 -> 60)" in r.stdout
    assert "best val loss" in r.stdout
    with open(os.path.join(out_dir, "model_config.pkl"), "rb") as f:
        saved = pickle.load(f)
    assert saved["model_args"]["n_embd"] == 32 and saved["iter_num"] == 60
    assert abs(saved["best_val_loss"] - float(rows[-1]["val_loss"])) < 1e-4


def test_training_terminal_is_quiet_and_logs_progress(trained):
    _, r = trained
    # run without TF_CPP_MIN_LOG_LEVEL: TensorFlow's start-up log must not reach the terminal
    assert not [m for m in TF_LOG_MARKERS if m in r.stderr], r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert "step 0: evaluating 4 batches of train and val" in lines  # before the first result
    progress = [line for line in lines if line.startswith("iter ")]
    assert [line.split(":")[0] for line in progress] == ["iter 20/60", "iter 40/60", "iter 60/60"]
    assert all("ms/iter" in line and "ETA" in line and "loss" in line for line in progress)


def sample(out_dir, capsys, *extra):
    """tf_sample.py in-process: (exit status, stdout, stderr)."""
    status = tf_sample.main(
        [f"--out_dir={out_dir}", "--num_samples=2", "--max_new_tokens=40", *extra]
    )
    out, err = capsys.readouterr()
    return status, out, err


def test_sampling_is_reproducible_and_in_vocabulary(trained, corpus_dir, capsys):
    out_dir, _ = trained
    a, b = (sample(out_dir, capsys, "--seed=5", "--start=KING:") for _ in range(2))
    assert a[0] == 0, a[2][-2000:]
    assert a[1] == b[1]
    vocab = set((corpus_dir / "input.txt").read_text())
    texts = [t.strip("\n") for t in a[1].split("---------------") if t.strip("\n")]
    assert len(texts) == 2 and all(t.startswith("KING:") and len(t) == 45 for t in texts)
    assert set("".join(texts)) <= vocab
    assert sample(out_dir, capsys, "--seed=6", "--start=KING:")[1] != a[1]


def test_readme_sample_command_is_quiet(trained):
    """The README's form (`--out_dir DIR --start "..."`), as a user runs it."""
    out_dir, _ = trained
    r = run_script(
        "tf_sample.py", "--out_dir", str(out_dir), "--start", "KING: O", "--num_samples=1",
        "--max_new_tokens=10", hide_tf_log=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("KING: O") and r.stderr == ""


def test_exact_split_loss(trained, capsys):
    out_dir, _ = trained
    assert tf_eval.main([f"--out_dir={out_dir}"]) == 0
    out = capsys.readouterr().out
    val_loss = float(out.split("val loss ")[1].split()[0])
    estimate = float(read_metrics(out_dir)[-1]["val_loss"])  # from 4 random batches
    assert abs(val_loss - estimate) < 0.25, (val_loss, estimate)
    assert tf_eval.main([f"--out_dir={out_dir}", "--split=train", "--max_windows=10"]) == 0
    assert "over 320 tokens" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--out_dir={tmp}/missing"], "model.keras not found"),
        (["--out_dir={out}", "--max_windows=0"], "--max_windows must be >= 1"),
    ],
)
def test_eval_bad_inputs(trained, tmp_path, capsys, args, fragment):
    out_dir, _ = trained
    argv = [a.format(tmp=tmp_path, out=out_dir) for a in args]
    assert tf_eval.main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_greedy_sampling_ignores_the_seed(trained, capsys):
    out_dir, _ = trained
    a = sample(out_dir, capsys, "--temperature=0", "--seed=1")
    b = sample(out_dir, capsys, "--temperature=0", "--seed=2")
    assert a[0] == 0 and a[1] == b[1]


def test_tiny_temperature_is_greedy_not_a_crash(trained, capsys):
    out_dir, _ = trained
    greedy = sample(out_dir, capsys, "--temperature=0")
    tiny = sample(out_dir, capsys, "--temperature=1e-320")
    assert tiny[0] == 0, tiny[2]
    assert tiny[1] == greedy[1]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--start=KING{{}}"], "not in the model's vocabulary: ['{{', '}}']"),
        (["--start=FILE:{tmp}/missing.txt"], "cannot read the prompt file {tmp}/missing.txt"),
        (["--start=FILE:{tmp}/latin1.txt"], "the prompt file {tmp}/latin1.txt is not UTF-8"),
        (["--out_dir={tmp}"], "model.keras not found"),
        (["--temperature=-1"], "--temperature must be a finite number >= 0 (0 = greedy), got -1.0"),
        (["--temperature=nan"], "--temperature must be a finite number >= 0 (0 = greedy), got nan"),
        (["--temperature=inf"], "--temperature must be a finite number >= 0 (0 = greedy), got inf"),
        (["--top_k=0"], "--top_k must be >= 1"),
    ],
)
def test_sampling_bad_inputs(trained, tmp_path, capsys, args, fragment):
    out_dir, _ = trained
    (tmp_path / "latin1.txt").write_bytes("KING: café".encode("latin-1"))
    status, out, err = sample(out_dir, capsys, *[a.format(tmp=tmp_path) for a in args])
    assert status == 2 and out == ""
    assert fragment.format(tmp=tmp_path) in err, err


def test_long_prompt_keeps_the_last_block(trained, tmp_path, capsys):
    out_dir, _ = trained
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("KING:\nGood night my lord. " * 10)
    status, out, err = sample(
        out_dir, capsys, f"--start=FILE:{prompt}", "--max_new_tokens=5", "--num_samples=1"
    )
    assert status == 0, err[-2000:]
    assert "keeping the last 32" in err
    assert out.startswith(prompt.read_text()[-32:])


def file_bytes(directory, names=("model.keras", "model_config.pkl", "ckpt.pkl")):
    return {name: (directory / name).read_bytes() for name in names}


def no_fsize_limit_signal(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_full_disk_keeps_the_previous_set_then_resume_continues(trained, corpus_dir, tmp_path):
    """A save that fails (here: a file-size limit, as a full disk would) stops training with a
    message and leaves the previous complete set; the next resume continues from it, the
    schedule continues, and metrics.csv has each iteration once."""
    out_dir, _ = trained
    resumed = tmp_path / "resumed"
    shutil.copytree(out_dir, resumed)
    before = file_bytes(resumed)
    args = ["--init_from=resume", "--max_iters=90", "--eval_interval=30", *SCHEDULE]
    cmd = [sys.executable, "tf_train.py", f"--data_dir={corpus_dir}", f"--out_dir={resumed}"]
    full = subprocess.run(
        cmd + TINY_MODEL_ARGS + args + ["--always_save_checkpoint=True"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        preexec_fn=no_fsize_limit_signal(100_000),  # model.keras and ckpt.pkl are larger
        check=False,
    )
    assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-2000:]
    assert "could not save the checkpoint of iteration 90" in full.stderr
    assert "File too large" in full.stderr and "--init_from=resume" in full.stderr
    assert "stopped: 30 iterations this run (iteration 60 -> 90)" in full.stdout
    assert_no_traceback(full.stderr)
    assert file_bytes(resumed) == before
    assert not [n for n in os.listdir(resumed) if n.startswith(".tmp-")]

    r = train(corpus_dir, resumed, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout and "at iteration 60" in r.stdout
    assert "done: 30 iterations this run (iteration 60 -> 90)" in r.stdout
    rows = read_metrics(resumed)
    assert [int(row["iter"]) for row in rows] == [0, 30, 60, 90]  # the failed run's 90 dropped
    # the schedule continues: lr at 90 is the cosine value for iteration 90, not a fresh warmup
    from tf_model.schedule import get_lr

    assert float(rows[-1]["lr"]) == pytest.approx(get_lr(90, 1e-2, 5, 120, 3e-4), rel=1e-4)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(corpus_dir, tmp_path):
    r = train(
        corpus_dir,
        tmp_path,
        "--max_iters=200",
        "--eval_interval=10",
        "--learning_rate=1e9",
        "--grad_clip=0.0",
        "--decay_lr=False",
        "--weight_decay=0.0",
    )
    assert r.returncode == 1, (r.stdout[-2000:], r.stderr[-2000:])
    assert "loss became" in r.stdout and "last good checkpoint" in r.stdout


def interrupt_training(corpus_dir, out_dir, wait_for, *extra):
    """Start tf_train.py, send Ctrl-C once a stdout line starts with `wait_for` (+ 2 s)."""
    cmd = [
        sys.executable,
        "tf_train.py",
        f"--data_dir={corpus_dir}",
        f"--out_dir={out_dir}",
        *TINY_MODEL_ARGS,
        *extra,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    seen = []
    for line in proc.stdout:  # wait until training has really started
        seen.append(line)
        if line.startswith(wait_for):
            break
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(seen) + out, err


def test_ctrl_c_saves_resume_state(corpus_dir, tmp_path):
    from tf_model.checkpoint import load_resume_state

    status, out, err = interrupt_training(
        corpus_dir, tmp_path, "step 0: train loss", "--max_iters=100000", "--eval_interval=1000"
    )
    assert status == 130, err[-2000:]
    assert "interrupted at iteration" in out
    assert load_resume_state(str(tmp_path))["iter_num"] > 0
    assert not any(n.startswith(".tmp-") for n in os.listdir(tmp_path))


def test_ctrl_c_during_the_first_evaluation_leaves_a_model_to_sample(corpus_dir, tmp_path, capsys):
    status, out, err = interrupt_training(
        corpus_dir, tmp_path, "step 0: evaluating", "--eval_iters=1000000"
    )
    assert status == 130, err[-2000:]
    assert "interrupted at iteration 0" in out
    assert_no_traceback(err)
    status, text, err = sample(tmp_path, capsys, "--max_new_tokens=5", "--start=KING")
    assert status == 0, err
    assert text.startswith("KING")


def test_resume_without_checkpoint(tmp_path, corpus_dir):
    r = train(corpus_dir, tmp_path, "--init_from=resume")
    assert r.returncode == 2 and "ckpt.pkl does not exist" in r.stderr


def test_config_errors_exit_cleanly(corpus_dir, tmp_path):
    r = train(corpus_dir, tmp_path, "--n_embed=64")
    assert r.returncode == 2 and "unknown config key 'n_embed'" in r.stderr
    assert_no_traceback(r.stderr)
    r = run_script("tf_train.py", f"--out_dir={tmp_path}", "--n_embd=96")
    assert r.returncode == 2 and "CIMv3 limit" in r.stderr
    r = run_script("tf_train.py", f"--out_dir={tmp_path}", f"--data_dir={tmp_path}/nothing")
    assert r.returncode == 2 and "prepare.py" in r.stderr
    r = train(corpus_dir, tmp_path, "--batch_size=0")
    assert r.returncode == 2 and "--batch_size must be >= 1, got 0" in r.stderr
    assert_no_traceback(r.stderr)


def test_bfloat16_run_learns_and_saves_a_float32_model(corpus_dir, tmp_path, capsys, monkeypatch):
    """--mixed_precision=bfloat16: the loss falls like float32's, and model.keras loads as a
    float32 model whose logits are those of its weights in float32 (what sampling and export use).
    On a CPU without native bfloat16 the run says it will likely be slower (here: pretended)."""
    import keras
    import numpy as np

    import tf_train
    from tf_model import PicoGPT
    from tf_model.checkpoint import load_checkpoint

    monkeypatch.setattr(tf_train, "cpu_has_bfloat16", lambda: False)
    out_dir = tmp_path / "bf16"
    args = [f"--data_dir={corpus_dir}", f"--out_dir={out_dir}", *TINY_MODEL_ARGS, *SCHEDULE]
    try:
        status = tf_train.main([*args, "--max_iters=60", "--eval_interval=60", "--eval_iters=4",
                                "--mixed_precision=bfloat16"])  # fmt: skip
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = capsys.readouterr().out
    assert status == 0 and "bfloat16 mixed on CPU" in out
    assert "note: --mixed_precision=bfloat16 on a CPU without AVX-512 BF16 or AMX" in out
    rows = read_metrics(out_dir)
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"]) - 0.8, rows
    ckpt = load_checkpoint(str(out_dir))
    assert ckpt.model.dtype_policy.name == "float32"
    assert all(layer.dtype_policy.name == "float32" for layer in ckpt.model._flatten_layers())
    reference = PicoGPT(ckpt.config)
    reference.set_weights(ckpt.model.get_weights())
    x = np.arange(32, dtype=np.int32)[None] % ckpt.config.vocab_size
    np.testing.assert_array_equal(ckpt.model(x).numpy(), reference(x).numpy())
