"""
Per-token latency of the KV-cache step model vs the full-sequence model, LiteRT and TFLite Micro.

    uv run python bench/bench_tflite.py --model_dir out-tf-pico-shakespeare-char
    uv run python bench/bench_tflite.py --step out/model_data_int8.tflite --full out/model_data_full_int8.tflite \
        --tokens 32 64 128 --backends litert tflm --json bench_tflite.json

Export both models first (tf_convert_to_tflite.py --model_dir DIR, and again with
--no_kv_cache). For each N in --tokens the benchmark greedily generates N tokens from a one-token
prompt and reports wall time per generated token, including the Python-side work a host app
does (setting the cache inputs, writing back the new rows). The full-sequence model recomputes
its whole static [1, block_size] window for every token, so its per-token cost does not depend
on N; the step model's cost grows slowly with N only through the host-side work.
"""

import argparse
import json
import os
import statistics
import sys
import time

from tf_model.export import default_model_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_dir", help="directory with model_data_int8.tflite and model_data_full_int8.tflite"
    )
    parser.add_argument(
        "--step", help="KV-cache step model (default: MODEL_DIR/model_data_int8.tflite)"
    )
    parser.add_argument(
        "--full", help="full-sequence model (default: MODEL_DIR/model_data_full_int8.tflite)"
    )
    parser.add_argument("--tokens", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument(
        "--backends", nargs="+", choices=["litert", "tflm"], default=["litert", "tflm"]
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; median reported")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if not args.step and args.model_dir:
        args.step = default_model_path(args.model_dir, "step", "int8")
    if not args.full and args.model_dir:
        args.full = default_model_path(args.model_dir, "full", "int8")
    if not args.step or not args.full:
        parser.error("give --model_dir, or both --step and --full")
    for path, flag in ((args.step, "--no_kv_cache not given"), (args.full, "--no_kv_cache")):
        if not os.path.isfile(path):
            parser.error(
                f"model not found: {path}; export it with "
                f"`uv run python tf_convert_to_tflite.py --model_dir DIR` ({flag})"
            )
    if args.repeats < 1 or min(args.tokens) < 1:
        parser.error("--repeats and --tokens must be positive")
    return args


def generate_seconds(model, n_tokens):
    """Greedy generation of n_tokens from token 0; returns wall seconds."""
    context = [0]
    start = time.perf_counter()
    for _ in range(n_tokens):
        logits = model.next_logits(context)
        context.append(int(logits.argmax()))
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    from tf_model.export.tflite_step import load_exported

    results = []
    for backend in args.backends:
        models = {
            "kv_cache": load_exported(args.step, backend=backend),
            "full_sequence": load_exported(args.full, backend=backend),
        }
        block_size = models["kv_cache"].block_size
        for model in models.values():
            generate_seconds(model, 2)  # warm-up: first invokes allocate and prepare
        for n in args.tokens:
            if n > block_size:
                print(f"skipping {n} tokens: more than block_size {block_size}", file=sys.stderr)
                continue
            row = {"backend": backend, "tokens": n}
            for name, model in models.items():
                runs = [generate_seconds(model, n) for _ in range(args.repeats)]
                row[f"{name}_ms_per_token"] = 1000 * statistics.median(runs) / n
            row["speedup"] = row["full_sequence_ms_per_token"] / row["kv_cache_ms_per_token"]
            results.append(row)
            print(
                f"{backend:6s} {n:4d} tokens: KV cache {row['kv_cache_ms_per_token']:7.3f} ms/token, "
                f"full sequence {row['full_sequence_ms_per_token']:7.3f} ms/token, "
                f"speedup {row['speedup']:.1f}x",
                flush=True,
            )
    info = {
        "step_model": os.path.basename(args.step),
        "full_model": os.path.basename(args.full),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    if args.json:
        from tf_model.fileio import write_atomic

        write_atomic(args.json, (json.dumps(info, indent=2) + "\n").encode())
    print("wrote " + args.json if args.json else "done")


if __name__ == "__main__":
    main()
