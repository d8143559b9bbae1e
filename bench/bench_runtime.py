"""Per-token latency of the PicoGPT C runtime vs LiteRT vs the TFLite Micro interpreter.

    cmake --preset host-release && cmake --build --preset host-release
    uv run python bench/bench_runtime.py --repeats 5     # the reference model; --model for another

Same INT8 KV-cache step model, same machine; each backend runs --repeats times, interleaved
(C, LiteRT, TFLite Micro, C, ...), and the table shows the median of the per-run means (the
machine is shared, so single runs are noisy) and the best single step. Every backend decodes the same
token sequence with the cache protocol of docs/model_signature.md: LiteRT (XNNPACK, one
thread) and TFLite Micro get token, pos and the full caches set before every invoke (TFLite
Micro reuses input memory, so an app must do that), then the new K/V rows are written back;
the C runtime keeps the cache in place (build/host-release/.../picogpt_bench) and runs the
best SIMD path this CPU has (PICOGPT_SIMD=avx2 in the environment forces another; the
table's label names it). Prints a table.
Benchmark, not a test: numbers depend on the machine and its load.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_BENCH = os.path.join(ROOT, "build", "host-release", "cim_runtime", "apps", "picogpt_bench")


_LOADED = {}  # backend -> loaded model: load once, time every repeat


def time_python_backend(model, backend, steps):
    """Mean and best per-step latency (ms) of tf_model.export.tflite_step on one backend."""
    from tf_model.export.tflite_step import load_exported

    if backend not in _LOADED:
        _LOADED[backend] = load_exported(model, backend=backend)
    m = _LOADED[backend]
    times = []
    for rep in range(2):  # rep 0 warms up
        m.reset()
        pos = 0
        for i in range(steps):
            if pos == m.block_size:
                m.reset()
                pos = 0
            t0 = time.perf_counter()
            m.step(i % m.vocab_size, pos)
            dt = time.perf_counter() - t0
            pos += 1
            if rep == 1:
                times.append(dt)
    return 1e3 * sum(times) / len(times), 1e3 * min(times)


def time_c_runtime(model, steps, bench):
    proc = subprocess.run(
        [bench, model, "--steps", str(steps)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:  # e.g. a PICOGPT_SIMD this CPU lacks: the binary says which
        sys.exit(f"{bench} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    fields = dict(re.findall(r"(\w+) ([\w.]+)", proc.stdout))
    return float(fields["mean_ms"]), float(fields["min_ms"]), fields


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_bench_args(description, steps, unit):
    """The options of the C runtime's benchmarks (--model, --steps, --bench, --repeats); exits
    with the build command when the picogpt_bench binary is missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--model",
        default=os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite"),
        help="exported INT8 KV-cache step model (default: the reference model)",
    )
    parser.add_argument("--steps", type=int, default=steps, help=f"decoding steps per {unit}")
    parser.add_argument("--bench", default=DEFAULT_BENCH, help="picogpt_bench binary")
    parser.add_argument("--repeats", type=int, default=3, help=f"runs per {unit} (median shown)")
    args = parser.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(
            f"{args.bench} missing: cmake --preset host-release && "
            "cmake --build --preset host-release"
        )
    return args


def main():
    args = parse_bench_args(__doc__.splitlines()[0], 256, "backend")

    runs = {"c": [], "litert": [], "tflm": []}
    for _ in range(max(1, args.repeats)):
        c_mean, c_best, fields = time_c_runtime(args.model, args.steps, args.bench)
        runs["c"].append((c_mean, c_best))
        runs["litert"].append(time_python_backend(args.model, "litert", args.steps))
        runs["tflm"].append(time_python_backend(args.model, "tflm", args.steps))

    def summary(name):
        means = sorted(mean for mean, _ in runs[name])
        return means[len(means) // 2], min(best for _, best in runs[name])

    c_mean, c_best = summary("c")
    litert_mean, litert_best = summary("litert")
    tflm_mean, tflm_best = summary("tflm")

    print(
        f"model: {args.model} ({os.path.getsize(args.model)} bytes), {args.steps} steps, "
        f"median of {max(1, args.repeats)} runs"
    )
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, one thread per backend")
    print(
        f"C runtime: {float(fields['macs_per_step']) / 1e6:.3f} M CIM MACs per token, "
        f"arena {int(fields['arena_bytes'])} bytes"
    )
    print()
    print("| backend | mean ms/token (median run) | best ms/token | C runtime speedup (mean) |")
    print("|---|---|---|---|")
    for name, mean, best in (
        (f"cim_runtime (C, -O3, SIMD path {fields['simd']})", c_mean, c_best),
        ("LiteRT (XNNPACK, 1 thread)", litert_mean, litert_best),
        ("TFLite Micro interpreter", tflm_mean, tflm_best),
    ):
        print(f"| {name} | {mean:.3f} | {best:.3f} | {mean / c_mean:.1f}x |")


if __name__ == "__main__":
    main()
