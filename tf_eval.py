"""
Exact loss of a trained PicoGPT over a whole split, not an estimate from random batches.

    python tf_eval.py --out_dir=out-shakespeare-char
    python tf_eval.py --out_dir=out-shakespeare-char --split=train --max_windows=2000

tf_train.py's eval estimates the loss from eval_iters random batches (nanoGPT's method, noise of a
few thousandths); this walks every non-overlapping block_size window of the split once.
"""

import argparse
import math
import sys

from tf_data import CharDataset
from tf_model.checkpoint import DEFAULT_OUT_DIR, DataError, load_checkpoint


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


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out_dir", default=DEFAULT_OUT_DIR, help="training output with model.keras"
    )
    parser.add_argument("--split", choices=("val", "train"), default="val")
    parser.add_argument(
        "--max_windows", type=int, help="stop after this many windows (train is large)"
    )
    parser.add_argument(
        "--data_dir", help="dataset directory (default: the one the model was trained on)"
    )
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.out_dir, args.data_dir)
        data = CharDataset(checkpoint.data_dir, checkpoint.config.block_size, 64)
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
