"""Per-token latency of the PicoGPT C runtime on each SIMD path this CPU runs.

    cmake --preset host-release && cmake --build --preset host-release
    uv run python bench/bench_simd.py --repeats 5     # the reference model; --model for another

One build carries every path (scalar, AVX2, AVX-512 VNNI; src/simd.h) and picks the best at
load time; picogpt_bench --simd forces each in turn, interleaved over --repeats runs. The table
shows, per path, quiet us/token (the mean over positions of each position's best step time:
what a token costs on a quiet machine, since a shared machine preempts some steps), the mean
us/token (median run) and the speedup over scalar. A path the CPU lacks is listed as such.
Benchmark, not a test: numbers depend on the machine and its load.
"""

import os
import subprocess
import sys

from bench_runtime import cpu_name, parse_bench_args  # bench/ is the script's directory

PATHS = ("scalar", "avx2", "avx512vnni")


def run_path(bench, model, steps, path):
    """The bench line's fields for one run on path, or None if this CPU cannot run it."""
    proc = subprocess.run(
        [bench, model, "--steps", str(steps), "--simd", path],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 2 and "cannot run it" in proc.stderr:
        return None
    if proc.returncode != 0:
        sys.exit(f"{bench} --simd {path} failed ({proc.returncode}):\n{proc.stderr}")
    words = proc.stdout.split()
    return dict(zip(words[::2], words[1::2]))


def main():
    args = parse_bench_args(__doc__.splitlines()[0], 2048, "run")
    runs = {path: [] for path in PATHS}
    for _ in range(max(1, args.repeats)):
        for path in PATHS:
            fields = run_path(args.bench, args.model, args.steps, path)
            if fields is not None:
                runs[path].append((float(fields["quiet_ms"]), float(fields["mean_ms"])))

    def median(values):
        values = sorted(values)
        return values[len(values) // 2]

    print(f"model: {args.model}, {args.steps} steps per run, median of {max(1, args.repeats)} runs")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, one thread")
    print()
    print("| SIMD path | quiet us/token | mean us/token (median run) | speedup vs scalar (quiet) |")
    print("|---|---|---|---|")
    scalar = median([q for q, _ in runs["scalar"]])
    best = None
    for path in PATHS:
        if not runs[path]:
            print(f"| {path} | not supported by this CPU | | |")
            continue
        quiet = median([q for q, _ in runs[path]])
        mean = median([m for _, m in runs[path]])
        print(f"| {path} | {1e3 * quiet:.1f} | {1e3 * mean:.1f} | {scalar / quiet:.1f}x |")
        best = (path, quiet)
    print()
    print(f"best path {best[0]}: {1e3 * best[1]:.1f} us/token (quiet)")


if __name__ == "__main__":
    main()
