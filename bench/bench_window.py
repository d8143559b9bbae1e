"""Generation past the context window: what the window policies cost and what they lose.

    cmake --preset host-release && cmake --build --preset host-release
    cmake --preset riscv-release && cmake --build --preset riscv-release-build
    uv run python bench/bench_window.py                      # both tables (~30 min, QEMU exact runs)
    uv run python bench/bench_window.py --tables speed       # only the 100/300/500-token table

Table "speed": per generated token, for 100, 300 and 500 tokens from "ROMEO:" (temperature 0.8,
seed 1337), shift (the default keep) and exact: the firmware's instructions under QEMU
(riscv-release, rdinstret between the first and the last token, so the refills of the window
are included) and the host CLI's microseconds (host-release, --quiet, the best of --repeats runs:
the machine may be shared, and load only ever adds time).

Table "keep": for several keep values and exact, the val loss of the whole split read as one
text under the policy, with the chip's arithmetic (tf_model.chip.evaluate_text, the C runtime
on --tflite); the model steps per token once past the window, block_size / (block_size - keep);
and the firmware's instructions per token over a 500-token run with its ratio to the in-window
figure of a 100-token run (the target: <= 2.5x). exact is keep = block_size - 1.

Benchmark, not a test: the host times depend on the machine and its load; the instruction
counts and the losses are exact and repeatable.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import time

from tf_model.checkpoint import load_split
from tf_model.chip import Chip, evaluate_text
from tf_model.window import resolve_keep, stream_plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIRMWARE = os.path.join(
    ROOT, "build", "riscv-release", "cim_runtime", "firmware", "picogpt_firmware.elf"
)
HOST_CLI = os.path.join(ROOT, "build", "host-release", "cim_runtime", "apps", "picogpt_generate")
RUN_QEMU = os.path.join(ROOT, "scripts", "run_qemu.sh")
MODEL = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")
PROMPT = "ROMEO:"


def window_args(policy, keep):
    return ["--window", policy] + (["--keep", str(keep)] if keep is not None else [])


_QEMU = {}  # (tokens, policy, keep) -> stats; exact runs take minutes, run each once


def firmware_stats(args, tokens, policy, keep=None):
    key = (tokens, policy, keep)
    if key not in _QEMU:
        env = {**os.environ, "PICOGPT_QEMU_TIMEOUT": "3600"}
        out = subprocess.run(
            [RUN_QEMU, args.firmware, "--tokens", str(tokens), *window_args(policy, keep)],
            capture_output=True, text=True, check=True, env=env,
        ).stdout  # fmt: skip
        _QEMU[key] = dict(re.findall(r"(\w+)=(\S+)", out.split("picogpt-stats:")[1]))
    return _QEMU[key]


def host_us_per_token(args, tokens, policy):
    times = []
    for _ in range(args.repeats):
        err = subprocess.run(
            [args.host_cli, MODEL, "--prompt", PROMPT, "--length", str(tokens), "--quiet",
             *window_args(policy, None)],
            capture_output=True, text=True, check=True,
        ).stderr  # fmt: skip
        times.append(float(re.search(r"([\d.]+) us per generated token", err).group(1)))
    return min(times)


def speed_table(args):
    print(
        f"\n| tokens | window | instructions / token (QEMU, rv32imac) "
        f"| µs / token (host, best of {args.repeats}) |"
    )
    print("|---|---|---|---|")
    for tokens in (100, 300, 500):
        for policy in ("shift", "exact"):
            ipt = int(firmware_stats(args, tokens, policy)["instructions_per_token"])
            us = host_us_per_token(args, tokens, policy)
            print(f"| {tokens} | {policy} | {ipt:,} | {us:,.1f} |", flush=True)


def keep_table(args):
    from tqdm import tqdm

    chip = Chip(args.tflite)
    T = chip.block_size
    data_dir = args.data_dir or os.path.join(ROOT, "data", "shakespeare_char")
    val = load_split(data_dir, "val", T, "the window evaluation")
    in_window = int(firmware_stats(args, 100, "shift")["instructions_per_token"])
    print(
        f"\nval split: {len(val):,} tokens; in-window firmware figure {in_window:,} instructions/token"
    )
    print(
        "| window | keep | val loss (chip, whole split) | steps / token past the window "
        "| instructions / token, 500 tokens | vs in-window |"
    )
    print("|---|---|---|---|---|---|")
    for policy, keep in [("shift", k) for k in args.keeps] + [("exact", None)]:
        k = resolve_keep(policy, keep, T)
        loss = "(--skip_loss)"
        if not args.skip_loss:
            start = time.monotonic()
            total = len(stream_plan(len(val) - 1, T, k))
            with tqdm(total=total, desc=f"{policy} keep {k}", unit="win", file=sys.stderr) as bar:
                loss = f"{evaluate_text(chip, val, k, progress=bar)['int8_loss']:.4f}"
            seconds = time.monotonic() - start
            print(f"{policy} keep {k}: loss over the split in {seconds:.0f} s", file=sys.stderr)
        ipt = int(firmware_stats(args, 500, policy, keep)["instructions_per_token"])
        print(
            f"| {policy} | {k} | {loss} | {T / (T - k):.2f} | {ipt:,} | {ipt / in_window:.2f}x |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", choices=("all", "speed", "keep"), default="all")
    parser.add_argument("--tflite", default=MODEL, help="model for the losses (table keep)")
    parser.add_argument("--data_dir", help="dataset with val.bin (default data/shakespeare_char)")
    parser.add_argument("--keeps", type=int, nargs="+", default=[0, 16, 32, 48, 64, 96, 112])
    parser.add_argument(
        "--repeats", type=int, default=3, help="host runs per cell (the best counts)"
    )
    parser.add_argument(
        "--skip_loss", action="store_true", help="table keep without the losses (minutes each)"
    )
    parser.add_argument("--firmware", default=FIRMWARE, help="firmware ELF (embeds the model)")
    parser.add_argument("--host_cli", default=HOST_CLI, help="picogpt_generate")
    args = parser.parse_args()
    for path, how in [(args.firmware, "cmake --build --preset riscv-release-build"),
                      (args.host_cli, "cmake --build --preset host-release")]:  # fmt: skip
        if not os.path.exists(path):
            sys.exit(f"error: {path} not found; build it first: {how}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    if args.tables in ("all", "speed"):
        speed_table(args)
    if args.tables in ("all", "keep"):
        keep_table(args)


if __name__ == "__main__":
    main()
