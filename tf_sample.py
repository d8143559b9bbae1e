"""
Generate text from a trained PicoGPT (Keras checkpoint) or from an exported .tflite model.

    python tf_sample.py --out_dir=out-shakespeare-char --start="ROMEO:" --max_new_tokens=300
    python tf_sample.py --out_dir=out-shakespeare-char --start=FILE:prompt.txt --temperature=0
    python tf_sample.py --tflite=out-shakespeare-char/model.tflite --start="ROMEO:" --seed=7

--temperature 0 is greedy decoding. The same seed gives the same text. Prompts longer than the
model's block_size keep their last block_size characters.
"""

import argparse
import os
import sys

import numpy as np

from tf_model.checkpoint import DEFAULT_OUT_DIR, DataError, load_checkpoint


class SampleError(Exception):
    pass


class KerasNextLogits:
    """next_logits(context) with one compiled forward over a fixed (1, block_size) window."""

    def __init__(self, model):
        import tensorflow as tf

        self.block_size = model.config.block_size
        self.forward = tf.function(lambda idx: model(idx, training=False), reduce_retracing=True)

    def __call__(self, context):
        context = context[-self.block_size :]
        window = np.zeros(
            (1, self.block_size), np.int32
        )  # padding after the context is causally invisible
        window[0, : len(context)] = context
        return self.forward(window).numpy()[0, len(context) - 1].astype(np.float64)


def encode_prompt(text, stoi):
    unknown = sorted({ch for ch in text if ch not in stoi})
    if unknown:
        raise SampleError(
            f"the prompt contains characters not in the model's vocabulary: {unknown!r}; "
            f"allowed characters are {''.join(sorted(stoi))!r}"
        )
    if not text:
        raise SampleError("the prompt is empty; pass at least one character with --start")
    return [stoi[ch] for ch in text]


def read_start(start):
    if start.startswith("FILE:"):
        path = start[len("FILE:") :]
        try:
            with open(path, "r", encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            raise SampleError(f"cannot read the prompt file {path}: {e.strerror}") from None
    return start


def sample_token(logits, temperature, top_k, rng):
    """Greedy at temperature 0; otherwise softmax(logits / temperature) over the top_k logits."""
    if temperature == 0:
        return int(np.argmax(logits))
    logits = logits / temperature
    if top_k is not None and top_k < len(logits):
        kth = np.sort(logits)[-top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


def generate(next_logits, prompt_ids, max_new_tokens, temperature, top_k, rng):
    ids = list(prompt_ids)
    for _ in range(max_new_tokens):
        ids.append(sample_token(next_logits(ids), temperature, top_k, rng))
    return ids[len(prompt_ids) :]


def check_args(args):
    if args.num_samples < 1:
        raise SampleError(f"--num_samples must be >= 1, got {args.num_samples}")
    if args.max_new_tokens < 0:
        raise SampleError(f"--max_new_tokens must be >= 0, got {args.max_new_tokens}")
    if args.temperature < 0:
        raise SampleError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise SampleError(f"--top_k must be >= 1, got {args.top_k}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out_dir", default=DEFAULT_OUT_DIR, help="training output with model.keras"
    )
    parser.add_argument(
        "--tflite", help="sample from this exported .tflite instead of the Keras model"
    )
    parser.add_argument(
        "--start", default="\n", help="prompt text, or FILE:path to read it from a file"
    )
    parser.add_argument("--num_samples", type=int, default=3)
    parser.add_argument("--max_new_tokens", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (argmax)")
    parser.add_argument("--top_k", type=int, default=200, help="keep only the k most likely tokens")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)
    try:
        check_args(args)
        text = read_start(args.start)
        if args.tflite:
            if not os.path.exists(args.tflite):
                raise SampleError(
                    f"{args.tflite} not found; export one with tf_convert_to_tflite.py"
                )
            from tf_model.export.tflite_step import load_exported

            exported = load_exported(args.tflite)
            itos, block_size = exported.itos, exported.block_size
            stoi = {ch: i for i, ch in enumerate(itos)}
            next_logits = lambda ids: exported.next_logits(ids).astype(np.float64)
        else:
            checkpoint = load_checkpoint(args.out_dir)
            itos, stoi = checkpoint.meta["itos"], checkpoint.meta["stoi"]
            next_logits = KerasNextLogits(checkpoint.model)
            block_size = checkpoint.config.block_size
        prompt_ids = encode_prompt(text, stoi)
        if len(prompt_ids) > block_size:
            print(
                f"note: the prompt has {len(prompt_ids)} characters; keeping the last {block_size} (block_size)",
                file=sys.stderr,
            )
            prompt_ids = prompt_ids[-block_size:]
    except (SampleError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    for _ in range(args.num_samples):
        new_ids = generate(
            next_logits, prompt_ids, args.max_new_tokens, args.temperature, args.top_k, rng
        )
        print("".join(itos[i] for i in prompt_ids + new_ids))
        print("---------------")
    return 0


if __name__ == "__main__":
    sys.exit(main())
