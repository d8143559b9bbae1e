"""
Export a trained PicoGPT to TFLite for TFLite Micro (default: full-INT8 KV-cache step model).

    uv run python tf_convert_to_tflite.py --model_dir out-tf-pico-shakespeare-char
    uv run python tf_convert_to_tflite.py --model_dir out-tf-pico-shakespeare-char --no_kv_cache
    uv run python tf_convert_to_tflite.py --model_dir out-tf-pico-shakespeare-char --quantization float

Reads DIR/model.keras and DIR/model_config.pkl (tf_train.py's output) and the dataset named in
it (meta.pkl, train.bin for calibration, val.bin for the report). Writes:
  DIR/model_data_int8.tflite (or --output)  the model; model_data_full_int8.tflite with
                                            --no_kv_cache, _hybrid / _float in place of _int8
  DIR/model_data_int8_report.json           deployment report (also printed as a table)
  cim_runtime/include/pico_gpt/model_data.h and cim_runtime/src/pico_gpt/model_data.cc
                                            C arrays for the firmware (int8 models only)
Every model is loaded and invoked by LiteRT and by TFLite Micro's interpreter before anything
is written; all files are written atomically (all or nothing). See docs/export.md.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter (CUDA probing)

from tqdm import tqdm

from tf_model.cli import HelpFormatter
from tf_model.export import (
    QUANTIZATIONS,
    RANGE_POLICIES,
    WEIGHT_QUANTIZATIONS,
    ExportError,
    check_writable,
    default_model_path,
    export_model,
    report_path,
)
from tf_model.export.carray import c_arrays
from tf_model.export.cim_mapping import format_cim_mapping
from tf_model.fileio import write_files_atomic

REPO = os.path.dirname(os.path.abspath(__file__))

DEFAULT_C_HEADER = os.path.join(REPO, "cim_runtime", "include", "pico_gpt", "model_data.h")
DEFAULT_C_SOURCE = os.path.join(REPO, "cim_runtime", "src", "pico_gpt", "model_data.cc")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model_dir", required=True, help="tf_train.py --out_dir")
    parser.add_argument(
        "--data_dir",
        help="dataset dir (meta.pkl, train.bin, val.bin) "
        "(default: the one recorded in model_config.pkl)",
    )
    parser.add_argument(
        "--output",
        help="output .tflite path (default: --model_dir/model_data_int8.tflite, or the "
        "name for the chosen kind and quantization)",
    )
    parser.add_argument(
        "--no_kv_cache",
        action="store_true",
        help="export the full-sequence model ([1, block_size] tokens -> logits)",
    )
    parser.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default="int8",
        help="int8: full integer, the only choice for TFLite Micro; "
        "hybrid: int8 weights, float activations, LiteRT on CPU only; "
        "float: for debugging",
    )
    parser.add_argument(
        "--weights",
        choices=WEIGHT_QUANTIZATIONS,
        default="per_channel",
        help="int8 FC weight scales: per output channel (most accurate) or one per "
        "tensor (14.6 KB smaller for the default config, see docs/export.md)",
    )
    parser.add_argument(
        "--num_calibration_samples",
        type=int,
        default=8,
        help="training windows of block_size tokens run through the float model "
        "for int8 calibration; each covers every position 0..block_size-1",
    )
    parser.add_argument(
        "--num_eval_windows",
        type=int,
        default=32,
        help="held-out windows (val.bin) for the report's loss/agreement",
    )
    parser.add_argument(
        "--ranges",
        choices=RANGE_POLICIES,
        default="auto",
        help="int8 activation ranges: auto = the ranges a tf_train.py --qat=True run stored, "
        "else percentile; or checkpoint, minmax, percentile, mse to choose one "
        '(docs/export.md "Int8 ranges")',
    )
    parser.add_argument("--seed", type=int, default=0, help="calibration window sampling")
    parser.add_argument(
        "--c_header", default=DEFAULT_C_HEADER, help="C header with the model array"
    )
    parser.add_argument(
        "--c_source", default=DEFAULT_C_SOURCE, help="C source with the model array"
    )
    parser.add_argument("--no_c_arrays", action="store_true", help="do not write the C files")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ start-up log")
    return parser.parse_args(argv)


WEAKEST_TENSORS = 5  # the quantization debugger's tensors the printed table names


def format_table(report):
    def kib(n):
        return "n/a" if n is None else f"{n:,} B ({n / 1024:.1f} KiB)"

    ev = report["evaluation"]
    rows = [
        (
            "model",
            " / ".join(
                v
                for v in (report["kind"], report["quantization"], report["weight_quantization"])
                if v
            )
            + f"  ({report['file']})",
        ),
        ("val loss Keras float", f"{ev['keras_val_loss']:.4f} nats/char"),
        (
            "val loss exported",
            (
                f"{ev['export_val_loss']:.4f} nats/char "
                f"(delta {ev['export_val_loss'] - ev['keras_val_loss']:+.4f})"
            ),
        ),
        (
            "top-1 agreement w/ float",
            f"{100 * ev['top1_agreement']:.2f}% of {ev['eval_tokens']} tokens",
        ),
        ("KL(float || export)", f"{ev['kl_divergence']:.5f} nats/char"),
        ("max |logit diff| w/ float", f"{ev['max_abs_logit_diff']:.4g}"),
        ("file size", kib(report["file_bytes"])),
        (
            "float32 weights",
            (
                f"{kib(report['float32_weight_bytes'])}, "
                f"export is {report['file_bytes'] / report['float32_weight_bytes']:.1%}"
            ),
        ),
        ("TFLite Micro", report["tflm"]["status"]),
        ("TFLM tensor arena", kib(report["tflm"]["arena_bytes"])),
        ("KV cache", kib(report["kv_cache_bytes"])),
        ("MACs per token", f"{report['macs_per_token']:,}"),
        ("ops", ", ".join(f"{k} x{v}" for k, v in report["ops"].items())),
        ("CIM mapping", format_cim_mapping(report["cim_mapping"])),
    ]
    if "tflm_top1_agreement_with_litert" in ev:
        rows.insert(
            5,
            (
                "TFLM vs LiteRT top-1",
                (
                    f"{100 * ev['tflm_top1_agreement_with_litert']:.2f}% "
                    f"(max |logit diff| {ev['tflm_max_abs_logit_diff_vs_litert']:.3g})"
                ),
            ),
        )
    if report.get("range_policy"):
        rows.insert(1, ("int8 ranges", report["range_policy"]))
    if "tensor_agreement" in ev:
        weakest = sorted(ev["tensor_agreement"], key=lambda r: r["snr_db"])[:WEAKEST_TENSORS]
        rows.append(
            (
                "lowest-SNR int8 tensors",
                ", ".join(f"{r['point']} {r['snr_db']:.1f} dB" for r in weakest)
                + " (all in the JSON report; docs/export.md)",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def main(argv=None):
    args = parse_args(argv)
    kind = "full" if args.no_kv_cache else "step"
    output = args.output or default_model_path(args.model_dir, kind, args.quantization)
    write_c = args.quantization == "int8" and not args.no_c_arrays
    # unwritable outputs fail now, not after minutes of conversion
    if os.path.isdir(args.model_dir):  # a missing model_dir is reported by export_model
        check_writable(output)
        check_writable(report_path(output))
    if write_c:
        for path, default in ((args.c_header, DEFAULT_C_HEADER), (args.c_source, DEFAULT_C_SOURCE)):
            if path == default:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            check_writable(path)

    if args.verbose:
        from tf_model.quiet import import_keras

        import_keras(verbose=True)  # before export_model imports it quietly

    def progress(total, desc):
        return tqdm(total=total, desc=desc, disable=args.quiet, leave=False, file=sys.stderr)

    data, report = export_model(
        args.model_dir,
        data_dir=args.data_dir,
        kind=kind,
        quantization=args.quantization,
        weight_quantization=args.weights,
        num_calibration_windows=args.num_calibration_samples,
        num_eval_windows=args.num_eval_windows,
        range_policy=args.ranges,
        seed=args.seed,
        file_name=os.path.basename(output),
        progress_factory=progress,
    )
    files = {output: data, report_path(output): (json.dumps(report, indent=2) + "\n").encode()}
    if write_c:
        header, source = c_arrays(
            data,
            args.c_header,
            report["tflm"]["recommended_arena_bytes"],
            report["kv_cache_bytes"],
        )
        files[args.c_header] = header.encode()
        files[args.c_source] = source.encode()
    write_files_atomic(files)

    print(format_table(report))
    print("wrote " + ", ".join(files))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
