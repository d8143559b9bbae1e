"""End-to-end golden data: exported PicoGPT models and TFLite Micro's logits over 128 steps.

Trains the default-config PicoGPT briefly (tf_model.export_devtrain), exports it with the
project's exporter in both kinds (KV-cache step model and --no_kv_cache full model, full INT8),
then decodes 128 tokens of validation text in the TFLite Micro interpreter and records the raw
int8 logits at every position. test_e2e.c requires cim_runtime to reproduce them bit for bit.

Usage:
    uv run python cim_runtime/tests/gen_e2e_golden.py --out build/host-test/e2e
    uv run python cim_runtime/tests/gen_e2e_golden.py --out DIR --step_model M.tflite --full_model F.tflite

Writes DIR/model_step.tflite, DIR/model_full.tflite and DIR/e2e.golden:
    b"PGE2", u32 n_tokens, u32 vocab_size, int32 tokens[n_tokens],
    int8 step_logits[n_tokens][vocab], int8 full_logits[n_tokens][vocab]
Deterministic: seeded training, seeded calibration windows, fixed text.
"""

import argparse
import os
import pickle
import shutil
import struct
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

SHARED_TEXT = "/work/shared/data/tinyshakespeare/input.txt"
N_TOKENS = 128


def prepare_data(work):
    """Tiny Shakespeare in nanoGPT format: the repo's copy, the shared text, or a synthetic one."""
    from data.shakespeare_char.prepare import prepare

    repo = os.path.join(ROOT, "data", "shakespeare_char")
    if all(os.path.exists(os.path.join(repo, f)) for f in ("train.bin", "val.bin", "meta.pkl")):
        return repo
    text = os.path.join(work, "input.txt")
    if os.path.exists(SHARED_TEXT):
        shutil.copy(SHARED_TEXT, text)
    else:
        from tests.conftest import make_corpus

        with open(text, "w", encoding="utf-8") as f:
            f.write(make_corpus(200_000))
    prepare(text, work)
    return work


def build_models(out, iters):
    from tf_model.export import build_tflite, load_checkpoint
    from tf_model.export_devtrain import train_dev_model

    work = tempfile.mkdtemp(prefix="picogpt_e2e_")
    try:
        data_dir = prepare_data(work)
        ckpt = os.path.join(work, "ckpt")
        train_dev_model(ckpt, data_dir, max_iters=iters, batch_size=8, lr=3e-3, log_every=0)
        checkpoint = load_checkpoint(ckpt)
        paths = {}
        for kind in ("step", "full"):
            data, _ = build_tflite(checkpoint, kind, "int8", num_calibration_windows=4)
            paths[kind] = os.path.join(out, f"model_{kind}.tflite")
            with open(paths[kind], "wb") as f:
                f.write(data)
        with open(os.path.join(data_dir, "meta.pkl"), "rb") as f:
            meta = pickle.load(f)
        val = np.fromfile(os.path.join(data_dir, "val.bin"), dtype=np.uint16)
        return paths, meta, val
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--iters", type=int, default=60, help="dev training steps")
    parser.add_argument("--step_model", help="use this exported step model instead of training")
    parser.add_argument("--full_model", help="use this exported full model instead of training")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    from tf_model.tflite_step import load_exported

    if args.step_model and args.full_model:
        for kind, src in (("step", args.step_model), ("full", args.full_model)):
            shutil.copy(src, os.path.join(args.out, f"model_{kind}.tflite"))
        rng = np.random.default_rng(7)
        val = None
    else:
        _, _, val = build_models(args.out, args.iters)

    step = load_exported(os.path.join(args.out, "model_step.tflite"), backend="tflm")
    full = load_exported(os.path.join(args.out, "model_full.tflite"), backend="tflm")
    vocab = step.vocab_size
    n = min(N_TOKENS, step.block_size)
    if val is not None:
        tokens = val[1000 : 1000 + n].astype(np.int32)
    else:
        tokens = rng.integers(0, vocab, size=n).astype(np.int32)

    step.reset()
    step_logits = []
    for pos, t in enumerate(tokens):
        step.step(int(t), pos)
        step_logits.append(np.asarray(step.last_raw["logits"], np.int8).reshape(vocab))
    full.sequence_logits(tokens)
    full_logits = np.asarray(full.interp.get_raw("logits"), np.int8).reshape(-1, vocab)[:n]

    with open(os.path.join(args.out, "e2e.golden"), "wb") as f:
        f.write(b"PGE2" + struct.pack("<II", n, vocab))
        f.write(tokens.astype("<i4").tobytes())
        f.write(np.stack(step_logits).astype(np.int8).tobytes())
        f.write(full_logits.astype(np.int8).tobytes())
    agree = float(np.mean(np.argmax(np.stack(step_logits), -1) == np.argmax(full_logits, -1)))
    print(f"e2e golden: {n} tokens, vocab {vocab}, step/full argmax agreement {agree:.2f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
