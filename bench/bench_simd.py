"""Per-token latency of the PicoGPT C runtime on each SIMD path this CPU runs.

    cmake --preset host-release && cmake --build --preset host-release
    uv run python bench/bench_simd.py --repeats 5     # the reference model; --model for another
    taskset -c 1 uv run python bench/bench_simd.py    # pinned to one core: steadier on a busy machine

One build carries every path (scalar, AVX2, AVX-512 VNNI; src/simd.h) and picks the best at
load time; picogpt_bench --simd forces each in turn, interleaved over --repeats runs. The VNNI
path runs twice: with the CIM HAL's tile memory (the host apps' default: the tiles' weights as
emulated macro cells in the arena, picogpt_options.cim_tile_memory) and without it (the
row-major weights in the model bytes, the firmware's arena). The table shows, per path, quiet
us/token (the mean over positions of each position's best step time over 8,192 steps, 64 per
position: what a token costs on a quiet machine, since a shared machine preempts some steps),
the mean us/token (median run) and the speedup over scalar. A path the CPU lacks is listed as such.
Benchmark, not a test: numbers depend on the machine and its load.
"""

import os
import subprocess
import sys

from bench_runtime import cpu_name, parse_bench_args  # bench/ is the script's directory

# (path, tile memory). Only a CPU with VNNI gets tile memory, and only the VNNI path reads it,
# so the other paths run without it: what a CPU without VNNI does.
RUNS = (("scalar", "off"), ("avx2", "off"), ("avx512vnni", "off"), ("avx512vnni", "on"))


def run_path(bench, model, steps, path, tile_memory):
    """The bench line's fields for one run on path, or None if this CPU cannot run it."""
    proc = subprocess.run(
        [bench, model, "--steps", str(steps), "--simd", path, "--tile_memory", tile_memory],
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
    args = parse_bench_args(__doc__.splitlines()[0], 8192, "run")
    runs = {run: [] for run in RUNS}
    arena = {}
    for _ in range(max(1, args.repeats)):
        for path, tile_memory in RUNS:
            fields = run_path(args.bench, args.model, args.steps, path, tile_memory)
            if fields is not None:
                runs[path, tile_memory].append(
                    (float(fields["quiet_ms"]), float(fields["mean_ms"]))
                )
                arena[path, tile_memory] = int(fields["arena_bytes"])

    def median(values):
        values = sorted(values)
        return values[len(values) // 2]

    print(f"model: {args.model}, {args.steps} steps per run, median of {max(1, args.repeats)} runs")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, one thread")
    print()
    print(
        "| SIMD path | tile memory | arena bytes | quiet us/token | mean us/token (median run) "
        "| speedup vs scalar (quiet) |"
    )
    print("|---|---|---|---|---|---|")
    scalar = median([q for q, _ in runs["scalar", "off"]])
    best = None
    for run in RUNS:
        path, tile_memory = run
        if not runs[run]:
            print(f"| {path} | {tile_memory} | not supported by this CPU | | | |")
            continue
        quiet = median([q for q, _ in runs[run]])
        mean = median([m for _, m in runs[run]])
        print(
            f"| {path} | {tile_memory} | {arena[run]:,} | {1e3 * quiet:.1f} | {1e3 * mean:.1f} "
            f"| {scalar / quiet:.1f}x |"
        )
        if best is None or quiet < best[2]:
            best = (path, tile_memory, quiet)
    print()
    print(f"best path {best[0]} (tile memory {best[1]}): {1e3 * best[2]:.1f} us/token (quiet)")


if __name__ == "__main__":
    main()
