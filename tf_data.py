"""
Memory-mapped (x, y) batches from nanoGPT-format token files (train.bin / val.bin / meta.pkl).

    from tf_data import CharDataset
    data = CharDataset("data/shakespeare_char", block_size=128, batch_size=32, seed=1337)
    x, y = data.get_batch("train")          # two int32 arrays of shape (32, 128)
    ds = data.as_tf_dataset("train")        # the same stream as a tf.data.Dataset

Files written by nanoGPT's PyTorch prepare.py load unchanged. The batch stream is a pure function
of the seed and the number of batches drawn, and its RNG state can be saved and restored.
"""

import os

import numpy as np

from tf_model.checkpoint import DataError, load_meta, load_split

SPLITS = ("train", "val")


class CharDataset:
    """Random windows of block_size+1 tokens; x is the window's head, y the same shifted by one."""

    def __init__(self, data_dir, block_size, batch_size, seed=1337, vocab_size=None):
        self.data_dir, self.block_size, self.batch_size = data_dir, block_size, batch_size
        self.meta = load_meta(data_dir)
        if vocab_size is not None and vocab_size != self.meta["vocab_size"]:
            raise DataError(
                f"vocab size mismatch: {os.path.join(data_dir, 'meta.pkl')} has vocab_size="
                f"{self.meta['vocab_size']} but the model has vocab_size={vocab_size}; "
                f"set vocab_size={self.meta['vocab_size']} in the config"
            )
        self.tokens = {
            split: load_split(data_dir, split, block_size, "training and evaluation")
            for split in SPLITS
        }
        self.rng = np.random.default_rng(seed)

    def get_batch(self, split, rng=None):
        """(x, y), each int32 (batch_size, block_size)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        tokens = self.tokens[split]
        rng = rng or self.rng
        starts = rng.integers(0, len(tokens) - self.block_size, size=self.batch_size)
        window = np.arange(self.block_size + 1)
        batch = tokens[starts[:, None] + window].astype(np.int32)  # (B, T+1)
        return batch[:, :-1], batch[:, 1:]

    def windows(self, split, batch_size=None):
        """Every non-overlapping (x, y) window of a split, in order, batched: an exact evaluation."""
        tokens = self.tokens[split]
        T, B = self.block_size, batch_size or self.batch_size
        n = (len(tokens) - 1) // T
        for first in range(0, n, B):
            starts = np.arange(first, min(first + B, n)) * T
            batch = tokens[starts[:, None] + np.arange(T + 1)].astype(np.int32)  # (b, T+1)
            yield batch[:, :-1], batch[:, 1:]

    def get_rng_state(self):
        return self.rng.bit_generator.state

    def set_rng_state(self, state):
        self.rng.bit_generator.state = state

    def as_tf_dataset(self, split, seed=None):
        """An endless tf.data.Dataset of (x, y) batches; its own RNG when seed is given."""
        import tensorflow as tf

        rng = np.random.default_rng(seed) if seed is not None else self.rng
        spec = tf.TensorSpec((self.batch_size, self.block_size), tf.int32)

        def batches():
            while True:
                yield self.get_batch(split, rng)

        return tf.data.Dataset.from_generator(batches, output_signature=(spec, spec))
