"""
Prepare the Tiny Shakespeare dataset for character-level language modelling.

    uv run python data/shakespeare_char/prepare.py                      # download (online)
    uv run python data/shakespeare_char/prepare.py --input ../shared/data/tinyshakespeare/input.txt

Writes train.bin and val.bin (uint16 token ids, 90/10 split) and meta.pkl (vocab_size, itos, stoi)
next to this file, byte-for-byte the same format as nanoGPT's data/shakespeare_char/prepare.py.
A failed run writes nothing (and leaves no empty --out_dir behind).
"""

import argparse
import contextlib
import os
import pickle
import sys

import numpy as np
import requests

from tf_model.checkpoint import prepare_hint
from tf_model.cli import HelpFormatter
from tf_model.config import PicoGPTConfig
from tf_model.fileio import write_atomic, write_files_atomic

DATA_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
HERE = os.path.dirname(os.path.abspath(__file__))


class PrepareError(Exception):
    pass


def download(url, dest, timeout=30.0):
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as e:
        raise PrepareError(
            f"could not download the dataset from {url}: {e}\n"
            "If this machine is offline, pass a local copy of the text instead:\n"
            f"    {prepare_hint(os.path.dirname(dest))}"
        ) from None
    try:
        write_atomic(dest, response.content)
    except OSError as e:
        raise PrepareError(f"cannot write {dest}: {e.strerror}") from None
    return response.text


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise PrepareError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise PrepareError(
            f"--input {path} is a directory; give the text file itself (e.g. {path}/input.txt)"
        ) from None
    except OSError as e:
        raise PrepareError(f"cannot read --input {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise PrepareError(f"input file {path} is not UTF-8 text: {e}") from None


def min_chars_for(block_size):
    """The shortest text whose val split (the last 10%) holds block_size + 1 tokens."""
    n = 10 * (block_size + 1) - 10
    while n - int(n * 0.9) < block_size + 1:
        n += 1
    return n


def encode_dataset(data: str):
    """nanoGPT's recipe: vocab = sorted unique characters; first 90% train, last 10% val."""
    chars = sorted(set(data))
    if len(chars) > 65535:
        raise PrepareError(f"{len(chars)} distinct characters do not fit uint16 token ids")
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    n = len(data)
    train_ids = np.array([stoi[c] for c in data[: int(n * 0.9)]], dtype=np.uint16)
    val_ids = np.array([stoi[c] for c in data[int(n * 0.9) :]], dtype=np.uint16)
    meta = {"vocab_size": len(chars), "itos": itos, "stoi": stoi}
    return train_ids, val_ids, meta


def prepare(input_path=None, out_dir=HERE, url=DATA_URL, block_size=None):
    """Encode the text and write the three files; every problem is a PrepareError.

    Each split must hold one training window, block_size + 1 tokens (default: PicoGPTConfig's
    block_size), or training could not use the dataset."""
    block_size = block_size or PicoGPTConfig().block_size
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise PrepareError(f"--out_dir {out_dir} is a file, not a directory; choose a directory")
    created = not os.path.isdir(out_dir)
    try:
        if input_path is None:
            cached = os.path.join(out_dir, "input.txt")
            if os.path.exists(cached):
                data = read_text(cached)
            else:
                make_out_dir(out_dir)
                data = download(url, cached)
        else:
            data = read_text(input_path)
        n_val = len(data) - int(len(data) * 0.9)
        if n_val < block_size + 1:
            raise PrepareError(
                f"the input text has {len(data):,} characters: its validation split (the last "
                f"10%) would hold {n_val} tokens, fewer than block_size+1 = {block_size + 1} (one "
                f"training window). Use a text of at least {min_chars_for(block_size):,} "
                "characters, or --block_size for a model with a shorter context."
            )
        train_ids, val_ids, meta = encode_dataset(data)
        paths = {name: os.path.join(out_dir, name) for name in ("train.bin", "val.bin", "meta.pkl")}
        make_out_dir(out_dir)
        try:
            write_files_atomic(
                {
                    paths["train.bin"]: train_ids.tobytes(),
                    paths["val.bin"]: val_ids.tobytes(),
                    paths["meta.pkl"]: pickle.dumps(meta),
                }
            )
        except OSError as e:
            raise PrepareError(f"cannot write to --out_dir {out_dir}: {e.strerror}") from None
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(out_dir)  # only if still empty
        raise
    print(f"length of dataset in characters: {len(data):,}")
    print(f"vocab size: {meta['vocab_size']}")
    print(f"train has {len(train_ids):,} tokens, val has {len(val_ids):,} tokens")
    for path in paths.values():
        print(f"wrote {path}")
    return paths


def make_out_dir(out_dir):
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise PrepareError(f"cannot create --out_dir {out_dir}: {e.strerror}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--input", help="local copy of the text (default: download it, once, into --out_dir)"
    )
    parser.add_argument(
        "--out_dir", default=HERE, help="where to write train.bin, val.bin, meta.pkl"
    )
    parser.add_argument("--url", default=DATA_URL, help="where to download the text from")
    parser.add_argument(
        "--block_size",
        type=int,
        default=PicoGPTConfig().block_size,
        help="context length of the model to train: each split must hold block_size+1 tokens",
    )
    args = parser.parse_args(argv)
    try:
        if args.block_size < 1:
            raise PrepareError(f"--block_size must be >= 1, got {args.block_size}")
        prepare(args.input, args.out_dir, args.url, args.block_size)
    except PrepareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
