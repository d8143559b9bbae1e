"""End to end: prepared corpus -> tiny training run -> loss falls -> sampling -> resume, Ctrl-C, NaN."""

import csv
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY_MODEL_ARGS, run_script


def train(corpus_dir, out_dir, *extra, timeout=600):
    return run_script(
        "tf_train.py",
        f"--data_dir={corpus_dir}",
        f"--out_dir={out_dir}",
        *TINY_MODEL_ARGS,
        *extra,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained(corpus_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("run")
    r = train(
        corpus_dir,
        out_dir,
        "--max_iters=60",
        "--eval_interval=30",
        "--learning_rate=1e-2",
        "--warmup_iters=5",
        "--lr_decay_iters=120",
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
    assert "best val loss" in r.stdout
    with open(os.path.join(out_dir, "model_config.pkl"), "rb") as f:
        saved = pickle.load(f)
    assert saved["model_args"]["n_embd"] == 32 and saved["iter_num"] == 60
    assert abs(saved["best_val_loss"] - float(rows[-1]["val_loss"])) < 1e-4


def sample(out_dir, *extra):
    return run_script(
        "tf_sample.py", f"--out_dir={out_dir}", "--num_samples=2", "--max_new_tokens=40", *extra
    )


def test_sampling_is_reproducible_and_in_vocabulary(trained, corpus_dir):
    out_dir, _ = trained
    a, b = (
        sample(out_dir, "--seed=5", "--start=KING:"),
        sample(out_dir, "--seed=5", "--start=KING:"),
    )
    assert a.returncode == 0, a.stderr[-2000:]
    assert a.stdout == b.stdout
    vocab = set((corpus_dir / "input.txt").read_text())
    texts = [t.strip("\n") for t in a.stdout.split("---------------") if t.strip("\n")]
    assert len(texts) == 2 and all(t.startswith("KING:") and len(t) == 45 for t in texts)
    assert set("".join(texts)) <= vocab
    c = sample(out_dir, "--seed=6", "--start=KING:")
    assert c.stdout != a.stdout


def test_exact_split_loss(trained):
    out_dir, _ = trained
    r = run_script("tf_eval.py", f"--out_dir={out_dir}")
    assert r.returncode == 0, r.stderr[-2000:]
    val_loss = float(r.stdout.split("val loss ")[1].split()[0])
    estimate = float(read_metrics(out_dir)[-1]["val_loss"])  # from 4 random batches
    assert abs(val_loss - estimate) < 0.25, (val_loss, estimate)
    r = run_script("tf_eval.py", f"--out_dir={out_dir}", "--split=train", "--max_windows=10")
    assert r.returncode == 0 and "over 320 tokens" in r.stdout, r.stdout + r.stderr[-2000:]
    r = run_script("tf_eval.py", f"--out_dir={out_dir}/missing")
    assert r.returncode == 2 and "model.keras not found" in r.stderr


def test_greedy_sampling_ignores_the_seed(trained):
    out_dir, _ = trained
    a, b = (
        sample(out_dir, "--temperature=0", "--seed=1"),
        sample(out_dir, "--temperature=0", "--seed=2"),
    )
    assert a.returncode == 0 and a.stdout == b.stdout


def test_sampling_bad_inputs(trained, tmp_path):
    out_dir, _ = trained
    r = sample(out_dir, "--start=KING{}")
    assert r.returncode == 2 and "not in the model's vocabulary" in r.stderr and "'{'" in r.stderr
    r = sample(out_dir, f"--start=FILE:{tmp_path}/missing.txt")
    assert r.returncode == 2 and "cannot read the prompt file" in r.stderr
    r = run_script("tf_sample.py", f"--out_dir={tmp_path}")
    assert r.returncode == 2 and "model.keras not found" in r.stderr
    r = sample(out_dir, "--temperature=-1")
    assert r.returncode == 2 and "--temperature must be >= 0" in r.stderr


def test_long_prompt_keeps_the_last_block(trained, tmp_path):
    out_dir, _ = trained
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("KING:\nGood night my lord. " * 10)
    r = sample(out_dir, f"--start=FILE:{prompt}", "--max_new_tokens=5", "--num_samples=1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "keeping the last 32" in r.stderr
    assert r.stdout.startswith(prompt.read_text()[-32:])


def test_resume_continues_from_the_saved_iteration(trained, corpus_dir, tmp_path):
    import shutil

    out_dir, _ = trained
    resumed = tmp_path / "resumed"
    shutil.copytree(out_dir, resumed)
    r = train(
        corpus_dir,
        resumed,
        "--init_from=resume",
        "--max_iters=90",
        "--eval_interval=30",
        "--learning_rate=1e-2",
        "--warmup_iters=5",
        "--lr_decay_iters=120",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout and "at iteration 60" in r.stdout
    rows = read_metrics(resumed)
    assert [int(row["iter"]) for row in rows] == [0, 30, 60, 90]
    # the schedule continues: lr at 90 is the cosine value for iteration 90, not a fresh warmup
    from tf_model.schedule import get_lr

    assert float(rows[-1]["lr"]) == pytest.approx(get_lr(90, 1e-2, 5, 120, 3e-4), rel=1e-4)


def test_resume_without_checkpoint(tmp_path, corpus_dir):
    r = train(corpus_dir, tmp_path, "--init_from=resume")
    assert r.returncode == 2 and "ckpt.pkl does not exist" in r.stderr


def test_config_errors_exit_cleanly(corpus_dir, tmp_path):
    r = train(corpus_dir, tmp_path, "--n_embed=64")
    assert (
        r.returncode == 2
        and "unknown config key 'n_embed'" in r.stderr
        and "Traceback" not in r.stderr
    )
    r = run_script("tf_train.py", f"--out_dir={tmp_path}", "--n_embd=96")
    assert r.returncode == 2 and "CIMv3 limit" in r.stderr
    r = run_script("tf_train.py", f"--out_dir={tmp_path}", f"--data_dir={tmp_path}/nothing")
    assert r.returncode == 2 and "prepare.py" in r.stderr


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


def test_ctrl_c_saves_resume_state(corpus_dir, tmp_path):
    cmd = [
        sys.executable,
        "tf_train.py",
        f"--data_dir={corpus_dir}",
        f"--out_dir={tmp_path}",
        *TINY_MODEL_ARGS,
        "--max_iters=100000",
        "--eval_interval=1000",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    deadline = time.time() + 300
    for line in proc.stdout:  # wait until training has really started
        if line.startswith("step 0:") or time.time() > deadline:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted at iteration" in out
    with open(tmp_path / "ckpt.pkl", "rb") as f:
        state = pickle.load(f)
    assert state["iter_num"] > 0
    assert not any(n.startswith(".tmp-") for n in os.listdir(tmp_path))
