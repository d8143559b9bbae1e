"""bench/bench_train.py: its op-type profile parses TensorFlow's trace, and bad arguments are
errors that name the argument (a tiny step: no timing is checked)."""

import re
import shutil

import pytest
from conftest import run_script


def test_profile_prints_the_op_types_of_a_traced_step():
    r = run_script(
        "bench/bench_train.py",
        "--xla=off",
        "--iters=1",
        "--warmup=0",
        "--batch_size=2",
        "--block_size=16",
        "--profile=1",
        "--precision=both",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for trace_dir in re.findall(r"^trace .*: (\S+)$", r.stdout, re.MULTILINE):
        shutil.rmtree(trace_dir)  # a fresh temporary directory per run
    assert re.search(r"^\| TensorFlow, XLA off, float32 \|", r.stdout, re.MULTILINE)
    assert re.search(r"^\| TensorFlow, XLA off, mixed bfloat16 \|", r.stdout, re.MULTILINE)
    assert "TensorFlow, XLA off, mixed bfloat16: op time" in r.stdout
    table = r.stdout.split("op time", 1)[1]
    rows = dict(re.findall(r"^\| (\S[^|]*?) \| \d+ \| ([\d.]+) \|", table, re.MULTILINE))
    assert "XLA kernel" in rows  # dropout, attention, LayerNorm backward, AdamW
    assert any("MatMul" in op_type for op_type in rows)  # "_MklMatMul" with oneDNN
    assert sum(float(ms) for ms in rows.values()) > 0
    assert re.search(r"^\d+ ms/iter$", r.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    "arg, message",
    [
        ("--profile=-1", "--profile must be >= 0"),
        ("--iters=0", "--iters must be >= 1"),
        ("--precision=fp8", "argument --precision: invalid choice: 'fp8'"),
    ],
)
def test_bad_arguments_are_named(arg, message):
    r = run_script("bench/bench_train.py", arg)
    assert r.returncode == 2 and message in r.stderr, r.stderr
