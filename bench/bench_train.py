"""
Throughput of the compiled PicoGPT train step (forward, backward, AdamW update) on this machine.

    uv run python bench/bench_train.py                    # default config, XLA on and off
    uv run python bench/bench_train.py --iters 30 --xla on

Prints a table and, last, `N ms/iter` for the fastest setting. Target (issue #2): <= 235 ms/iter for
the default config on a 2-core x86 CPU, i.e. >= 1.5x a PyTorch eager implementation (~355 ms/iter).
"""

import argparse
import os
import platform
import time

TARGET_MS = 235.0


def measure(xla, iters, warmup, batch_size, block_size):
    import numpy as np

    import tf_train
    from tf_model import PicoGPTConfig

    cfg = {**tf_train.DEFAULTS, "batch_size": batch_size, "block_size": block_size}
    trainer = tf_train.Trainer(
        cfg, PicoGPTConfig(block_size=block_size), use_float16=False, use_xla=xla
    )
    rng = np.random.default_rng(0)
    x = rng.integers(0, 65, size=(batch_size, block_size), dtype=np.int32)
    y = rng.integers(0, 65, size=(batch_size, block_size), dtype=np.int32)
    t0 = time.perf_counter()
    float(trainer.train_step(x, y))
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        float(trainer.train_step(x, y))
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        float(trainer.train_step(x, y))
        times.append(time.perf_counter() - t0)
    times.sort()
    return compile_s, times[len(times) // 2], times[0]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations after compiling")
    parser.add_argument("--xla", choices=["on", "off", "both"], default="both")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--block_size", type=int, default=128)
    args = parser.parse_args()
    from tf_model.quiet import import_keras

    import_keras()  # TensorFlow's C++ start-up log stays off the table

    settings = {"on": [True], "off": [False], "both": [True, False]}[args.xla]
    tokens = args.batch_size * args.block_size
    rows = []
    for xla in settings:
        compile_s, median_s, best_s = measure(
            xla, args.iters, args.warmup, args.batch_size, args.block_size
        )
        rows.append((xla, compile_s, median_s, best_s))

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}"
    )
    print(
        f"batch {args.batch_size} x block {args.block_size} = {tokens} tokens/iter, {args.iters} timed iterations\n"
    )
    print(
        f"| XLA | compile s | median ms/iter | best ms/iter | tokens/s | vs target {TARGET_MS:.0f} ms |"
    )
    print("|-----|-----------|----------------|--------------|----------|-----------------|")
    for xla, compile_s, median_s, best_s in rows:
        verdict = "meets" if median_s * 1000 <= TARGET_MS else "misses"
        print(
            f"| {'on' if xla else 'off':3} | {compile_s:9.1f} | {median_s * 1000:14.1f} | {best_s * 1000:12.1f} | "
            f"{tokens / median_s:8,.0f} | {verdict:15} |"
        )
    fastest = min(r[2] for r in rows)
    print(f"\n{fastest * 1000:.0f} ms/iter")


if __name__ == "__main__":
    main()
