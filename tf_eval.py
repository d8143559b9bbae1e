"""
Exact loss of a trained PicoGPT over a whole split, not an estimate from random batches.

    uv run python tf_eval.py --out_dir out-tf-pico-shakespeare-char
    uv run python tf_eval.py --out_dir out-tf-pico-shakespeare-char --split=train --max_windows=2000
    uv run python tf_eval.py --tflite out-tf-pico-shakespeare-char/model_data_int8.tflite
    uv run python tf_eval.py --tflite M.tflite --window shift --keep 64   # the split as one text
    uv run python tf_eval.py --tflite M.tflite --window exact --every 16  # every 16th window

tf_train.py's eval estimates the loss from eval_iters random batches (nanoGPT's method, noise of a
few thousandths); this walks every non-overlapping block_size window of the split once.

--tflite PATH scores an exported int8 model on the same windows with the chip's arithmetic (the
project's C runtime through tf_model/chip.py, bit-exact with TFLite Micro and the firmware):
its loss, the float model's, how often their top-1 predictions agree, and the mean KL divergence
of the int8 next-character distribution from the float one. With --window the split
is read as one text, fed under that window policy as generation feeds it (cim_runtime/README.md
"Generation past the window"); --every N scores every N-th refilled window (exact refills for
every token).
"""

import argparse
import math
import sys
import time

from tf_data import CharDataset
from tf_model.checkpoint import DEFAULT_OUT_DIR, DataError, load_checkpoint
from tf_model.cli import HelpFormatter
from tf_model.window import WINDOW_POLICIES, resolve_keep


def split_loss(model, data, split, max_windows=None):
    """(mean loss in nats/char, tokens scored) over the split's non-overlapping windows."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def summed_loss(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        return tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )

    total, tokens, windows = 0.0, 0, 0
    for x, y in data.windows(split, batch_size=64):
        if max_windows is not None:
            x, y = x[: max_windows - windows], y[: max_windows - windows]
        if len(x) == 0:
            break
        total += float(summed_loss(x, y))
        tokens, windows = tokens + y.size, windows + len(x)
    return total / tokens, tokens


def keras_logits_fn(model, batch_size=64):
    """windows (n, L) -> float logits (n, L, vocab) of the Keras model, eval mode, batched."""
    import numpy as np
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def logits(windows):
        return np.concatenate(
            [
                forward(windows[i : i + batch_size]).numpy()
                for i in range(0, len(windows), batch_size)
            ]
        )

    return logits


def open_chip(args):
    """--tflite on the C runtime and the window's keep (0: the plain windows), checked before
    TensorFlow loads so that a bad file or option fails in a second."""
    from tf_model.chip import Chip, ChipError

    try:
        chip = Chip(args.tflite)
    except ChipError as e:
        raise DataError(str(e)) from None
    if args.window is None:
        return chip, 0
    try:
        return chip, resolve_keep(args.window, args.keep, chip.block_size)
    except ValueError as e:
        raise DataError(f"--keep {args.keep}: {e}") from None


def chip_eval(checkpoint, data, chip, keep, args):
    """--tflite: the export's loss with chip arithmetic vs the float model; prints one line."""
    from tqdm import tqdm

    from tf_model.chip import evaluate_text
    from tf_model.window import stream_plan

    exported = chip.metadata.get("config")
    if exported != checkpoint.config.to_dict():
        raise DataError(
            f"{args.tflite} was not exported from the model in {args.out_dir}: its config is "
            f"{exported} but the checkpoint's is {checkpoint.config.to_dict()}; pass the "
            "--out_dir it was exported from"
        )
    T = checkpoint.config.block_size
    tokens = data.tokens[args.split]
    if args.window is None:  # the plain evaluation's non-overlapping windows
        n = (len(tokens) - 1) // T
        if args.max_windows is not None:
            n = min(n, args.max_windows)
        tokens, how = tokens[: n * T + 1], "non-overlapping windows"
    else:
        if args.max_windows is not None:
            tokens = tokens[: args.max_windows * T + 1]
        how = f"one text, window {args.window}" + (
            f", keep {keep}" if args.window == "shift" else ""
        )
        if args.every > 1:
            how += f", every {args.every}th window"
    float_logits = keras_logits_fn(checkpoint.model)
    total = len(stream_plan(len(tokens) - 1, T, keep, args.every))
    start = time.monotonic()
    with tqdm(total=total, desc=f"{args.split} windows", unit="win", file=sys.stderr) as bar:
        r = evaluate_text(chip, tokens, keep, args.every, float_logits, progress=bar)
    print(
        f"{args.split} ({how}): int8 {r['int8_loss']:.4f}, float {r['float_loss']:.4f} "
        f"({r['loss_delta']:+.4f}) nats/char, top-1 agreement {100 * r['top1_agreement']:.2f}%, "
        f"KL(float || int8) {r['kl']:.4f} "
        f"over {r['predictions']:,} predictions ({r['windows']:,} windows); chip arithmetic "
        f"(C runtime) {r['chip_seconds']:.1f} s, float model {r['float_seconds']:.1f} s, "
        f"total {time.monotonic() - start:.1f} s"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--out_dir", default=DEFAULT_OUT_DIR, help="training output with model.keras"
    )
    parser.add_argument("--split", choices=("val", "train"), default="val", help="which split")
    parser.add_argument(
        "--max_windows",
        type=int,
        help="stop after this many windows (default: the whole split; train is large)",
    )
    parser.add_argument(
        "--data_dir", help="dataset directory (default: the one the model was trained on)"
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ start-up log")
    parser.add_argument(
        "--tflite", help="exported int8 model to score with the chip's arithmetic (C runtime)"
    )
    parser.add_argument(
        "--window",
        choices=WINDOW_POLICIES,
        help="with --tflite: read the split as one text under this window policy",
    )
    parser.add_argument(
        "--keep", type=int, help="with --window shift: tokens a full window keeps (block_size/4)"
    )
    parser.add_argument(
        "--every", type=int, default=1, help="with --window: score every N-th window (exact)"
    )
    args = parser.parse_args(argv)
    if (args.window or args.keep is not None or args.every != 1) and not args.tflite:
        parser.error("--window, --keep and --every need --tflite (they score an exported model)")
    if (args.keep is not None or args.every != 1) and not args.window:
        parser.error("--keep and --every need --window")
    if args.every < 1:
        parser.error(f"--every must be >= 1, got {args.every}")
    try:
        if args.max_windows is not None and args.max_windows < 1:
            raise DataError(f"--max_windows must be >= 1, got {args.max_windows}")
        chip, keep = open_chip(args) if args.tflite else (None, 0)
        from tf_model.quiet import import_keras

        import_keras(verbose=args.verbose)
        checkpoint = load_checkpoint(args.out_dir, args.data_dir)
        data = CharDataset(checkpoint.data_dir, checkpoint.config.block_size, 64)
        if chip is not None:
            chip_eval(checkpoint, data, chip, keep, args)
            return 0
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    loss, tokens = split_loss(checkpoint.model, data, args.split, args.max_windows)
    print(
        f"{args.split} loss {loss:.4f} nats/char ({loss / math.log(2):.4f} bits/char) over {tokens:,} tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
