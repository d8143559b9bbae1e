"""
Throughput of the compiled PicoGPT train step (forward, backward, AdamW update) on this machine,
optionally against a PyTorch eager implementation of the same model, interleaved.

    uv run python bench/bench_train.py                    # default config, XLA on and off
    uv run python bench/bench_train.py --iters 30 --xla off
    uv run python bench/bench_train.py --xla off --rounds 5 --torch_python ../torchenv/bin/python
    uv run python bench/bench_train.py --xla off --profile 10    # where a step's time goes, by op
    uv run python bench/bench_train.py --xla off --precision both  # float32 and mixed bfloat16

Each round times --iters steps of every setting, one setting after the other, so a machine
shared with other jobs slows them alike; the table gives the median over all rounds, the best
step, the CPU time per step (all threads; it moves less than wall time when the machine is
busy), and the load average. With --torch_python (a python that can import torch; see
bench_train_torch.py for a venv outside the project) every round also runs bench_train_torch.py,
and the table gives each setting's speed-up over PyTorch eager (float32). Target (issue #12):
>= 2.5x. --precision bfloat16 times tf_train.py's --mixed_precision=bfloat16; the default,
auto, times it beside float32 on CPUs with AVX-512 BF16 or AMX, and float32 alone elsewhere.
Prints `N ms/iter` last, for the fastest TensorFlow setting.

--profile N traces N steps of each setting with TensorFlow's profiler (after the timed rounds)
and prints, per op type, the op count and time per step and its share: the busy time of the
executor's threads, summed over threads (with two inter-op threads, ops overlap, so shares
are of that sum, not of wall time). XLA-compiled kernels show up as one type (XLA kernel).
Tracing costs time of its own: read the shares, not the milliseconds. The trace is kept in a
fresh temporary directory (printed) for TensorBoard's profile plugin.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_SPEEDUP = 2.5  # issue #12: >= 2.5x the PyTorch eager throughput on the same machine


class TrainStepTimer:
    """One compiled train step (default model) and the times of the steps it ran."""

    def __init__(self, xla, precision, batch_size, block_size):
        import numpy as np

        import tf_train
        from tf_model import PicoGPTConfig

        cfg = {**tf_train.DEFAULTS, "batch_size": batch_size, "block_size": block_size}
        self.trainer = tf_train.Trainer(
            cfg, PicoGPTConfig(block_size=block_size), precision=precision, use_xla=xla
        )
        rng = np.random.default_rng(0)
        self.x = rng.integers(0, 65, size=(batch_size, block_size), dtype=np.int32)
        self.y = rng.integers(0, 65, size=(batch_size, block_size), dtype=np.int32)
        t0 = time.perf_counter()
        float(self.trainer.train_step(self.x, self.y))
        self.compile_s = time.perf_counter() - t0
        self.wall, self.cpu = [], []  # seconds per timed step

    def run(self, iters, warmup):
        for _ in range(warmup):
            float(self.trainer.train_step(self.x, self.y))
        for _ in range(iters):
            c0, t0 = time.process_time(), time.perf_counter()
            float(self.trainer.train_step(self.x, self.y))
            self.wall.append(time.perf_counter() - t0)
            self.cpu.append(time.process_time() - c0)


def run_torch(python, args):
    """One bench_train_torch.py run in `python`: (median s, best s, CPU s) per step."""
    cmd = [
        python,
        os.path.join(HERE, "bench_train_torch.py"),
        f"--iters={args.iters}",
        f"--warmup={args.warmup}",
        f"--batch_size={args.batch_size}",
        f"--block_size={args.block_size}",
    ]
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    found = re.search(r"^\| PyTorch eager \|([^\n]*)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not found:
        sys.exit(
            f"error: the PyTorch benchmark failed under --torch_python {python} "
            f"(exit status {done.returncode}):\n{(done.stderr or done.stdout)[-2000:]}"
        )
    median_ms, best_ms, cpu_ms = (float(v) for v in found.group(1).split("|")[:3])
    return median_ms / 1000, best_ms / 1000, cpu_ms / 1000


def profile_op_types(trainer, x, y, steps, logdir):
    """{op type: (ops per step, ms per step)} of `steps` traced train steps."""
    import glob
    from collections import defaultdict

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        float(trainer.train_step(x, y))
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    totals = defaultdict(lambda: [0, 0.0])
    for line in plane.lines:
        if not line.name.startswith("tf_Compute"):  # the executor's threads, not Python's
            continue
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            if name == "CpuExecutable::ExecuteAsyncOnStream":
                op_type = "XLA kernel"  # one fused kernel launched from the graph
            elif re.fullmatch(r"[^:\s]+:\w+", name):  # a graph op, "scope/op_name:OpType"
                op_type = name.rsplit(":", 1)[1]
            else:  # the executor's own events, and XLA's inside its kernels
                continue
            totals[op_type][0] += 1
            totals[op_type][1] += event.duration_ps / 1e9  # ms
    return {t: (n / steps, ms / steps) for t, (n, ms) in totals.items()}


def print_profile(name, op_types, top=20):
    total = sum(ms for _, ms in op_types.values())
    print(f"\n{name}: op time {total:.1f} ms/step summed over threads, top {top} op types")
    print("| op type | ops/step | ms/step | share |")
    print("|---|---|---|---|")
    for op_type, (count, ms) in sorted(op_types.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"| {op_type} | {count:.0f} | {ms:.2f} | {100 * ms / total:.1f}% |")


def setting_name(xla, precision):
    return f"XLA {'on' if xla else 'off'}, {precision if precision == 'float32' else 'mixed ' + precision}"


def median(values):
    return sorted(values)[len(values) // 2]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every setting in turn")
    parser.add_argument("--xla", choices=["on", "off", "both"], default="both")
    parser.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16", "both"],
        default="auto",
        help="compute dtype (auto: both where the CPU has native bfloat16, else float32)",
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument(
        "--torch_python",
        default="",
        help="a python that can import torch: also time bench_train_torch.py, interleaved",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also trace N steps per setting and print the busy time per op type",
    )
    args = parser.parse_args()
    for name in ("iters", "rounds", "batch_size", "block_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.profile < 0:
        parser.error(f"--profile must be >= 0 steps, got {args.profile}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.torch_python and not os.access(args.torch_python, os.X_OK):
        parser.error(
            f"--torch_python {args.torch_python} is not an executable file; give the python "
            "of a venv with torch (see bench/bench_train_torch.py for how to make one)"
        )
    from tf_model.quiet import import_keras

    import_keras()  # TensorFlow's C++ start-up log stays off the table

    load_before = os.getloadavg()[0]
    from tf_model.trainer import cpu_has_bfloat16

    if args.precision == "auto":
        args.precision = "both" if cpu_has_bfloat16() else "float32"
    xlas = {"on": [True], "off": [False], "both": [True, False]}[args.xla]
    precisions = {"both": ["float32", "bfloat16"]}.get(args.precision, [args.precision])
    timers = {
        (xla, precision): TrainStepTimer(xla, precision, args.batch_size, args.block_size)
        for xla in xlas
        for precision in precisions
    }
    torch_rounds = []  # (median s, best s, CPU s) per round
    for _ in range(args.rounds):
        for timer in timers.values():
            timer.run(args.iters, args.warmup)
        if args.torch_python:
            torch_rounds.append(run_torch(args.torch_python, args))
    load_after = os.getloadavg()[0]

    tokens = args.batch_size * args.block_size
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}; "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(
        f"batch {args.batch_size} x block {args.block_size} = {tokens} tokens/iter, "
        f"{args.rounds} round(s) of {args.iters} timed iterations per setting\n"
    )
    torch_s = median([r[0] for r in torch_rounds]) if torch_rounds else None
    print(
        "| train step | compile s | median ms/iter | best ms/iter | CPU ms/iter | tokens/s "
        f"| vs PyTorch eager (target {TARGET_SPEEDUP:g}x) |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting, t in timers.items():
        wall_s = median(t.wall)
        speedup = "" if torch_s is None else f"{torch_s / wall_s:.2f}x"
        print(
            f"| TensorFlow, {setting_name(*setting)} | {t.compile_s:.1f} | {wall_s * 1000:.1f} "
            f"| {min(t.wall) * 1000:.1f} | {median(t.cpu) * 1000:.1f} | {tokens / wall_s:,.0f} "
            f"| {speedup} |"
        )
    if torch_rounds:
        best, cpu = min(r[1] for r in torch_rounds), median([r[2] for r in torch_rounds])
        print(
            f"| PyTorch eager | | {torch_s * 1000:.1f} | {best * 1000:.1f} | {cpu * 1000:.1f} "
            f"| {tokens / torch_s:,.0f} | 1.00x |"
        )
    if args.rounds > 1:
        per_round = {
            setting_name(*setting): [
                median(t.wall[i * args.iters : (i + 1) * args.iters]) for i in range(args.rounds)
            ]
            for setting, t in timers.items()
        }
        if torch_rounds:
            per_round["PyTorch"] = [r[0] for r in torch_rounds]
        print("\nmedian ms/iter of each round (how noisy the machine was):")
        for name, values in per_round.items():
            print(f"  {name}: {', '.join(f'{v * 1000:.0f}' for v in values)}")
    for (xla, precision), t in timers.items():
        if args.profile:
            logdir = tempfile.mkdtemp(
                prefix=f"bench_train-profile-xla-{'on' if xla else 'off'}-{precision}-"
            )
            op_types = profile_op_types(t.trainer, t.x, t.y, args.profile, logdir)
            print_profile(f"TensorFlow, {setting_name(xla, precision)}", op_types)
            print(f"trace (TensorBoard's profile plugin reads it): {logdir}")
    fastest = min(median(t.wall) for t in timers.values())
    print(f"\n{fastest * 1000:.0f} ms/iter")


if __name__ == "__main__":
    main()
