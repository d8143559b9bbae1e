"""A short stand-in training loop that writes a checkpoint in tf_train.py's format.

    uv run python -m tf_model.export_devtrain --out_dir /tmp/picogpt_dev/ckpt --max_iters 300

The exporter's tests now train with tf_train.py itself. This file stays only because
cim_runtime/tests/gen_e2e_golden.py (the C runtime's golden-data generator, run by its CMake
tests) still imports train_dev_model; delete it once that script uses tf_train.py. It is not a
training recipe (fixed LR, no eval, no schedule). The checkpoint contract it writes:
`out_dir/model.keras` and `out_dir/model_config.pkl` = {"model_args", "data_dir", "iter_num",
"best_val_loss", "train_config"}.
"""

import argparse
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tf_model.config import PicoGPTConfig
from tf_model.fileio import atomic_path, write_atomic

DEFAULT_DATA_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "shakespeare_char"
)


def train_dev_model(
    out_dir,
    data_dir=DEFAULT_DATA_DIR,
    max_iters=300,
    batch_size=16,
    lr=3e-3,
    seed=1337,
    config_overrides=None,
    log_every=100,
):
    """Train PicoGPT for `max_iters` Adam steps on train.bin; write model.keras + model_config.pkl."""
    import keras
    import tensorflow as tf

    from tf_model.model import PicoGPT

    data_dir = os.path.abspath(data_dir)
    with open(os.path.join(data_dir, "meta.pkl"), "rb") as f:
        meta = pickle.load(f)
    config = PicoGPTConfig(**{"vocab_size": meta["vocab_size"], **(config_overrides or {})})
    train = np.memmap(os.path.join(data_dir, "train.bin"), dtype=np.uint16, mode="r")
    val = np.memmap(os.path.join(data_dir, "val.bin"), dtype=np.uint16, mode="r")
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    T = config.block_size

    def batch(split):
        starts = rng.integers(0, len(split) - T - 1, size=batch_size)
        x = np.stack([split[s : s + T] for s in starts]).astype(np.int32)  # (B, T)
        y = np.stack([split[s + 1 : s + 1 + T] for s in starts]).astype(np.int32)  # (B, T)
        return x, y

    model = PicoGPT(config)
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for it in range(max_iters):
        loss = train_step(*batch(train))
        if log_every and (it % log_every == 0 or it == max_iters - 1):
            print(f"devtrain iter {it}: train loss {float(loss):.4f}", flush=True)
    xv, yv = batch(val)
    val_loss = float(loss_fn(yv, model(xv, training=False)))

    os.makedirs(out_dir, exist_ok=True)
    tmp = atomic_path(os.path.join(out_dir, "model.keras"))
    try:
        model.save(tmp)
        os.replace(tmp, os.path.join(out_dir, "model.keras"))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    ckpt = {
        "model_args": config.to_dict(),
        "data_dir": data_dir,
        "iter_num": max_iters,
        "best_val_loss": val_loss,
        "train_config": {"batch_size": batch_size, "learning_rate": lr, "devtrain": True},
    }
    write_atomic(os.path.join(out_dir, "model_config.pkl"), pickle.dumps(ckpt))
    return val_loss


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--data_dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--max_iters", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    val_loss = train_dev_model(
        args.out_dir, args.data_dir, args.max_iters, args.batch_size, args.lr
    )
    print(f"wrote {args.out_dir}/model.keras and model_config.pkl (val loss {val_loss:.4f})")


if __name__ == "__main__":
    main()
