"""Simulated non-ideal CIM macros: what ADC resolution and analogue noise do to the text.

    uv sync --group docs                                   # matplotlib, for the plot
    uv run python bench/bench_cim_nonideal.py              # the reference model -> docs/cim/
    uv run python bench/bench_cim_nonideal.py --tflite M.tflite --out_dir /tmp/sweep

Scores the WHOLE val split (its non-overlapping block_size windows, as `tf_eval.py --tflite`)
with the chip's arithmetic (tf_model.chip: the C runtime with picogpt_cim_nonideal) for
  - ADC bits {4, 5, 6, 7, 8, 10, exact} x read-out noise {0, 1, 2, 5 %} of the ADC full scale,
  - read-out noise {0.1, 0.2, 0.5 %} at 8 bits, to see where the noise stops hurting,
  - weight-programming noise {1, 2, 5 %} of each tile's max |w| (exact ADC, no read-out noise),
  - the uncalibrated range rule (each tile's bound) at 8, 10 and 12 bits, for comparison.
Each cell: the val loss, its difference to the exact run (nats/token) and the top-1 agreement
with the exact run (the share of predictions whose most likely token is unchanged).

ADC ranges: calibrated per tile, the largest |partial sum| of the tile in an exact run over
--calibration_windows random windows of train.bin (picogpt_cim_peaks; the val split is only
scored). Noise is seeded (--seed): a rerun gives the same table.

Writes DIR/nonideal_sweep.json (every cell and the settings), DIR/nonideal_sweep.csv and
DIR/nonideal_sweep.png (needs matplotlib: `uv sync --group docs`, or pass --no_plot); prints a
markdown table for cim_runtime/README.md and the minimum ADC resolution at which the loss stays
within --tolerance (0.01 nats) of the exact run. A benchmark, not a test: ~1-3 s per cell
for the exact arithmetic, ~40 s with read-out noise (37 cells: ~20 min on a shared 2-vCPU VM).
"""

import argparse
import csv
import io
import json
import os
import platform
import sys
import time

import numpy as np

from tf_model.checkpoint import DataError, load_split
from tf_model.chip import Chip, ChipError, NonIdeal, evaluate_text
from tf_model.fileio import write_files_atomic
from tf_model.window import stream_plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "shakespeare_char", "model_data_int8.tflite")
ADC_BITS = (4, 5, 6, 7, 8, 10, 0)  # 0: exact (no ADC quantization)
OUT_NOISE = (0.0, 0.01, 0.02, 0.05)
WEIGHT_NOISE = (0.01, 0.02, 0.05)
FINE_NOISE = (0.001, 0.002, 0.005)  # read-out noise below 1 %, at 8 bits: where does it hold?
BOUND_BITS = (8, 10, 12)


def bits_name(bits):
    return "exact" if bits == 0 else str(bits)


def cells():
    """(name, rule, NonIdeal fields) of every cell, the exact reference first."""
    out = [("exact", "calibrated", {})]
    for noise in OUT_NOISE:
        for bits in ADC_BITS:
            if bits or noise:
                out.append((f"adc {bits_name(bits)}, noise {noise:.0%}", "calibrated",
                            {"adc_bits": bits, "out_noise": noise}))  # fmt: skip
    for noise in FINE_NOISE:
        out.append((f"adc 8, noise {noise:.1%}", "calibrated", {"adc_bits": 8, "out_noise": noise}))
    for noise in WEIGHT_NOISE:
        out.append((f"weight noise {noise:.0%}", "calibrated", {"weight_noise": noise}))
    for bits in BOUND_BITS:
        out.append((f"adc {bits}, bound range", "bound", {"adc_bits": bits}))
    return out


def calibrate(model, train, block_size, n_windows, seed):
    """Each tile's largest |partial sum| over n_windows random train windows, exact run."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(train) - block_size, n_windows)
    windows = np.stack([np.asarray(train[s : s + block_size], np.int32) for s in starts])
    chip = Chip(model, cim_nonideal=NonIdeal(record_peaks=True))
    chip.score_windows(windows)
    return chip.cim_peaks()


def min_bits(rows, noise, tolerance):
    """The fewest ADC bits from which on (every coarser-to-finer setting above it too) the loss
    stays within tolerance of the exact run at this read-out noise; None if none does."""
    by_bits = {
        r["adc_bits"]: r["loss_delta"]
        for r in rows
        if r["rule"] == "calibrated" and r["out_noise"] == noise and r["weight_noise"] == 0
    }
    best = None
    for bits in sorted((b for b in by_bits if b), reverse=True):
        if by_bits[bits] > tolerance:
            break
        best = bits
    return best


def in_grid(row):
    """A cell of the main table: calibrated range, no weight noise, one of the grid's noises."""
    return (
        row["rule"] == "calibrated" and row["weight_noise"] == 0 and row["out_noise"] in OUT_NOISE
    )


def print_tables(rows, exact, tolerance):
    """The markdown tables and the minimum ADC bits per read-out noise (returned as a dict)."""
    noise_header = " | ".join(f"noise {n:.0%}" for n in OUT_NOISE)
    print(f"\nval loss - exact (nats/token) / top-1 agreement with exact; exact loss "
          f"{exact['int8_loss']:.4f} over {exact['predictions']:,} predictions")  # fmt: skip
    print(f"| ADC bits | {noise_header} |\n|---|" + "---|" * len(OUT_NOISE))
    cell = {(r["adc_bits"], r["out_noise"]): r for r in rows if in_grid(r)}
    for bits in ADC_BITS:
        line = [
            f"{cell[bits, n]['loss_delta']:+.4f} / {cell[bits, n]['top1_agreement']:.1%}"
            for n in OUT_NOISE
        ]
        print(f"| {bits_name(bits)} | " + " | ".join(line) + " |")
    print("\n| other | val loss - exact | top-1 agreement |\n|---|---|---|")
    for r in rows:
        if r["name"] != "exact" and not in_grid(r):
            print(f"| {r['name']} | {r['loss_delta']:+.4f} | {r['top1_agreement']:.1%} |")
    minimum = {f"{n:g}": min_bits(rows, n, tolerance) for n in OUT_NOISE}
    for noise, bits in minimum.items():
        verdict = f"{bits} bits" if bits else "no ADC resolution in the sweep"
        print(
            f"minimum ADC resolution within {tolerance} nats of exact, read-out noise "
            f"{float(noise):.0%}: {verdict}"
        )
    return minimum


def plot(rows, tolerance, title):
    """The PNG bytes: loss difference and top-1 agreement vs ADC bits, a line per noise level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_of = {b: (12 if b == 0 else b) for b in ADC_BITS}  # "exact" drawn right of 10 bits
    fig, (ax_loss, ax_top1) = plt.subplots(1, 2, figsize=(10, 4))
    for noise in OUT_NOISE:
        pts = sorted(
            (x_of[r["adc_bits"]], r["loss_delta"], r["top1_agreement"])
            for r in rows
            if r["rule"] == "calibrated" and r["out_noise"] == noise and r["weight_noise"] == 0
        )
        xs, deltas, top1 = zip(*pts, strict=True)
        label = f"read-out noise {noise:.0%}"
        ax_loss.plot(xs, deltas, marker="o", label=label)
        ax_top1.plot(xs, [100 * t for t in top1], marker="o", label=label)
    ax_loss.axhline(tolerance, color="grey", linestyle="--", linewidth=1)
    ax_loss.text(4, tolerance, f" {tolerance} nats", va="bottom", color="grey")
    ax_loss.set_yscale("symlog", linthresh=1e-3)
    lowest = min(r["loss_delta"] for r in rows)
    ax_loss.set_ylim(bottom=min(-1e-3, 1.5 * lowest))  # a finer ADC may be a hair better
    ax_loss.set_ylabel("val loss - exact (nats/token)")
    ax_top1.set_ylabel("top-1 agreement with exact (%)")
    for ax in (ax_loss, ax_top1):
        ax.set_xticks([x_of[b] for b in ADC_BITS], [bits_name(b) for b in ADC_BITS])
        ax.set_xlabel("ADC bits per column partial sum (calibrated range)")
        ax.grid(alpha=0.3)
    ax_top1.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    return png.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflite", default=MODEL, help="exported int8 model (default: reference)")
    parser.add_argument("--data_dir", default=os.path.join(ROOT, "data", "shakespeare_char"))
    parser.add_argument("--out_dir", default=os.path.join(ROOT, "docs", "cim"))
    parser.add_argument("--calibration_windows", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="calibration windows and noise")
    parser.add_argument("--tolerance", type=float, default=0.01, help="nats/token")
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG (no matplotlib)")
    args = parser.parse_args()
    if args.calibration_windows < 1:
        parser.error(f"--calibration_windows must be >= 1, got {args.calibration_windows}")
    if not 0 <= args.seed < 2**63:
        parser.error(f"--seed must be in [0, 2^63), got {args.seed}")
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401  (checked before minutes of work, not after)
        except ImportError:
            sys.exit(
                "error: the plot needs matplotlib, which is in the optional `docs` group: run "
                "`uv sync --group docs`, or pass --no_plot for the table alone"
            )
    from tqdm import tqdm

    try:
        exact_chip = Chip(args.tflite)
        T = exact_chip.block_size
        val = load_split(args.data_dir, "val", T, "the non-ideality sweep")
        train = load_split(args.data_dir, "train", T, "the ADC calibration")
    except (ChipError, DataError) as e:
        sys.exit(f"error: {e}")
    peaks = calibrate(args.tflite, train, T, args.calibration_windows, args.seed)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; model {args.tflite}; val split "
        f"{len(val):,} tokens; ADC ranges calibrated on {args.calibration_windows} train windows "
        f"(tile peaks {peaks.min():,}..{peaks.max():,})",
        file=sys.stderr,
    )
    n_windows = len(stream_plan(len(val) - 1, T, 0))
    plan = cells()
    rows, exact = [], None
    start = time.monotonic()
    with tqdm(total=len(plan) * n_windows, desc="sweep", unit="win", file=sys.stderr) as bar:
        for name, rule, fields in plan:
            bar.set_postfix_str(name)
            scales = tuple(int(p) for p in peaks) if rule == "calibrated" and fields else None
            nonideal = NonIdeal(seed=args.seed, adc_full_scale=scales, **fields) if fields else None
            chip = exact_chip if nonideal is None else Chip(args.tflite, cim_nonideal=nonideal)
            r = evaluate_text(chip, val, 0, progress=bar)
            if exact is None:
                exact = r
            rows.append(
                {
                    "name": name,
                    "rule": rule,
                    "adc_bits": fields.get("adc_bits", 0),
                    "out_noise": fields.get("out_noise", 0.0),
                    "weight_noise": fields.get("weight_noise", 0.0),
                    "val_loss": r["int8_loss"],
                    "loss_delta": r["int8_loss"] - exact["int8_loss"],
                    "top1_agreement": float(np.mean(r["int8_top1"] == exact["int8_top1"])),
                    "chip_seconds": r["chip_seconds"],
                }
            )
    seconds = time.monotonic() - start

    minimum = print_tables(rows, exact, args.tolerance)
    os.makedirs(args.out_dir, exist_ok=True)
    base = os.path.join(args.out_dir, "nonideal_sweep")
    result = {
        "model": os.path.relpath(os.path.abspath(args.tflite), ROOT),
        "val_tokens": len(val),
        "predictions": exact["predictions"],
        "calibration_windows": args.calibration_windows,
        "seed": args.seed,
        "tolerance_nats": args.tolerance,
        "adc_full_scale": [int(p) for p in peaks],
        "min_adc_bits": minimum,
        "cells": rows,
    }
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files = {
        base + ".json": (json.dumps(result, indent=1) + "\n").encode(),
        base + ".csv": table.getvalue().encode(),
    }
    if not args.no_plot:
        title = (
            f"{os.path.basename(args.tflite)}: whole val split ({exact['predictions']:,} "
            f"predictions), ADC range calibrated per tile"
        )
        files[base + ".png"] = plot(rows, args.tolerance, title)
    write_files_atomic(files)
    print(f"{len(rows)} cells in {seconds:.0f} s; wrote {', '.join(files)}", file=sys.stderr)


if __name__ == "__main__":
    main()
