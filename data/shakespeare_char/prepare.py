"""
Prepare the Tiny Shakespeare dataset for character-level language modelling.

    python data/shakespeare_char/prepare.py                      # download (online)
    python data/shakespeare_char/prepare.py --input ../shared/data/tinyshakespeare/input.txt

Writes train.bin and val.bin (uint16 token ids, 90/10 split) and meta.pkl (vocab_size, itos, stoi)
next to this file, byte-for-byte the same format as nanoGPT's data/shakespeare_char/prepare.py.
"""

import argparse
import os
import pickle
import sys

import numpy as np
import requests

from tf_model.fileio import write_atomic

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
            f"    python {os.path.relpath(__file__)} --input /path/to/input.txt"
        ) from e
    write_atomic(dest, response.content)
    return response.text


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise PrepareError(f"input file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise PrepareError(f"input file {path} is not UTF-8 text: {e}") from None


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


def prepare(input_path=None, out_dir=HERE, url=DATA_URL):
    os.makedirs(out_dir, exist_ok=True)
    if input_path is None:
        cached = os.path.join(out_dir, "input.txt")
        data = read_text(cached) if os.path.exists(cached) else download(url, cached)
    else:
        data = read_text(input_path)
    if len(data) < 2:
        raise PrepareError(f"the input text has {len(data)} characters; need at least 2 to split")
    train_ids, val_ids, meta = encode_dataset(data)
    paths = {name: os.path.join(out_dir, name) for name in ("train.bin", "val.bin", "meta.pkl")}
    write_atomic(paths["train.bin"], train_ids.tobytes())
    write_atomic(paths["val.bin"], val_ids.tobytes())
    write_atomic(paths["meta.pkl"], pickle.dumps(meta))
    print(f"length of dataset in characters: {len(data):,}")
    print(f"vocab size: {meta['vocab_size']}")
    print(f"train has {len(train_ids):,} tokens, val has {len(val_ids):,} tokens")
    for path in paths.values():
        print(f"wrote {path}")
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", help="local copy of the text (skips the download)")
    parser.add_argument(
        "--out_dir", default=HERE, help="where to write train.bin, val.bin, meta.pkl"
    )
    parser.add_argument("--url", default=DATA_URL, help="where to download the text from")
    args = parser.parse_args(argv)
    try:
        prepare(args.input, args.out_dir, args.url)
    except PrepareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
