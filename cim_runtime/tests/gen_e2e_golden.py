"""End-to-end golden data: TFLite Micro's logits for the reference models over 128 steps.

Takes the exported reference models the repository carries (KV-cache step model and
--no_kv_cache full model, full INT8, trained with the default config), decodes 128 characters of
Shakespeare in the TFLite Micro interpreter and records the raw int8 logits at every position.
test_e2e.c requires cim_runtime to reproduce them bit for bit.

Usage:
    uv run python cim_runtime/tests/gen_e2e_golden.py --out build/host-test/e2e
    uv run python cim_runtime/tests/gen_e2e_golden.py --out DIR --step_model M.tflite --full_model F.tflite

Writes DIR/model_step.tflite, DIR/model_full.tflite (copies) and DIR/e2e.golden:
    b"PGE2", u32 n_tokens, u32 vocab_size, int32 tokens[n_tokens],
    int8 step_logits[n_tokens][vocab], int8 full_logits[n_tokens][vocab]
"""

import argparse
import os
import shutil
import struct
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from tf_model.export.tflite_step import load_exported

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REFERENCE_DIR = os.path.join(ROOT, "models", "shakespeare_char")
N_TOKENS = 128
# Real text, so activations sit in the ranges the model was calibrated on (Richard III, I.i).
PASSAGE = (
    "Now is the winter of our discontent\n"
    "Made glorious summer by this sun of York;\n"
    "And all the clouds that lour'd upon our house\n"
    "In the deep bosom of the ocean buried.\n"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--step_model", default=os.path.join(REFERENCE_DIR, "model_data_int8.tflite")
    )
    parser.add_argument(
        "--full_model", default=os.path.join(REFERENCE_DIR, "model_data_full_int8.tflite")
    )
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for kind, src in (("step", args.step_model), ("full", args.full_model)):
        shutil.copy(src, os.path.join(args.out, f"model_{kind}.tflite"))

    step = load_exported(os.path.join(args.out, "model_step.tflite"), backend="tflm")
    full = load_exported(os.path.join(args.out, "model_full.tflite"), backend="tflm")
    vocab = step.vocab_size
    n = min(N_TOKENS, step.block_size)
    stoi = {ch: i for i, ch in enumerate(step.itos)}
    tokens = np.array([stoi[ch] for ch in PASSAGE[:n]], np.int32)

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
    print(
        f"e2e golden: {n} tokens, vocab {vocab}, step/full argmax agreement {agree:.2f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
