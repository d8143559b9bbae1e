"""
Generate text from a trained PicoGPT (Keras checkpoint) or from an exported .tflite model.

    uv run python tf_sample.py --out_dir out-tf-pico-shakespeare-char --start "O God, O God!"
    uv run python tf_sample.py --start=FILE:prompt.txt --temperature=0 --max_new_tokens=300
    uv run python tf_sample.py --tflite=out-tf-pico-shakespeare-char/model_data_int8.tflite --seed=7
    uv run python tf_sample.py --tflite=M.tflite --backend=litert --window=exact  # NOT bit-exact

--temperature 0 is greedy decoding. The same seed gives the same text. Prompts longer than the
model's block_size keep their last block_size characters. Past block_size the window policy
applies (--window shift keeps the last --keep tokens and continues; exact crops per token).

--tflite runs the exported int8 model on the chip's arithmetic (the project's C runtime, its
integer sampler and window policy): the text is the one the firmware and picogpt_generate print
for the same model, prompt, --seed, --temperature, --top_k, --window and --keep (sample i uses
seed + i). --backend litert runs it in LiteRT instead, whose int8 kernels round differently:
not bit-exact with the chip, and sampled with numpy. The Keras model decodes incrementally with
a float KV cache (tf_model/sampling.py).
"""

import argparse
import math
import os
import sys

import numpy as np

from tf_model.checkpoint import DEFAULT_OUT_DIR, DataError, load_checkpoint
from tf_model.cli import HelpFormatter
from tf_model.window import WINDOW_POLICIES, resolve_keep

BACKENDS = ("chip", "litert")  # for --tflite


class SampleError(Exception):
    pass


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
        except UnicodeDecodeError as e:
            raise SampleError(
                f"the prompt file {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                f"offset {e.start}); save it as UTF-8"
            ) from None
    return start


def check_args(args):
    if args.num_samples < 1:
        raise SampleError(f"--num_samples must be >= 1, got {args.num_samples}")
    if not 0 <= args.max_new_tokens < 2**31:
        raise SampleError(f"--max_new_tokens must be in [0, 2^31), got {args.max_new_tokens}")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise SampleError(
            f"--temperature must be a finite number >= 0 (0 = greedy), got {args.temperature}"
        )
    if args.top_k is not None and args.top_k < 1:
        raise SampleError(f"--top_k must be >= 1, got {args.top_k}")
    if not 0 <= args.seed < 2**64 - args.num_samples:
        raise SampleError(f"--seed must be in [0, 2^64 - num_samples), got {args.seed}")
    if args.backend is not None and not args.tflite:
        raise SampleError("--backend chooses how --tflite runs; it needs --tflite")


def load_sampler(args):
    """(itos, stoi, block_size, sample): the vocabulary (itos maps a token id to its text, a
    list or meta.pkl's dict) and sample(prompt_ids, keep, i) -> the new ids of sample i."""
    if args.tflite and (args.backend or "chip") == "chip":
        from tf_model.chip import Chip, ChipError

        try:
            chip = Chip(args.tflite)
        except ChipError as e:
            raise SampleError(str(e)) from None
        if chip.itos is None:
            raise SampleError(
                f"{args.tflite} has no pico_gpt metadata with the vocabulary; export it with "
                "tf_convert_to_tflite.py"
            )

        def sample(prompt_ids, keep, i):
            top_k = min(args.top_k or 0, chip.vocab_size)  # >= vocab_size: no cut, as in numpy
            return chip.generate(
                prompt_ids, args.max_new_tokens, args.temperature, top_k, args.seed + i,
                args.window, keep,
            )  # fmt: skip

        return chip.itos, {ch: i for i, ch in enumerate(chip.itos)}, chip.block_size, sample

    from tf_model.sampling import ExportedDecoder, KerasDecoder, generate

    if args.tflite:
        if not os.path.exists(args.tflite):
            raise SampleError(
                f"{args.tflite} not found; export one with: uv run python "
                "tf_convert_to_tflite.py --model_dir OUT_DIR"
            )
        from tf_model.export.tflite_step import load_exported

        exported = load_exported(args.tflite, backend="litert")
        itos, decoder = exported.itos, ExportedDecoder(exported)
        stoi = {ch: i for i, ch in enumerate(itos)}
    else:
        from tf_model.quiet import import_keras

        import_keras(verbose=args.verbose)
        checkpoint = load_checkpoint(args.out_dir)
        itos, stoi = checkpoint.meta["itos"], checkpoint.meta["stoi"]
        decoder = KerasDecoder(checkpoint.model)
    rng = np.random.default_rng(args.seed)

    def sample(prompt_ids, keep, i):
        return generate(
            decoder, prompt_ids, args.max_new_tokens, args.temperature, args.top_k, rng, keep
        )

    return itos, stoi, decoder.block_size, sample


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--out_dir", default=DEFAULT_OUT_DIR, help="training output with model.keras"
    )
    parser.add_argument(
        "--tflite",
        help="sample from this exported .tflite instead of the Keras model (default: the Keras model in --out_dir)",
    )
    parser.add_argument(
        "--start",
        default="\n",
        help="prompt text, or FILE:path to read it from a file (default: %(default)r)",
    )
    parser.add_argument("--num_samples", type=int, default=3, help="texts to generate")
    parser.add_argument(
        "--max_new_tokens", type=int, default=500, help="characters generated per text"
    )
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (argmax)")
    parser.add_argument("--top_k", type=int, default=200, help="keep only the k most likely tokens")
    parser.add_argument("--seed", type=int, default=1337, help="the same seed gives the same text")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ start-up log")
    parser.add_argument(
        "--window",
        choices=WINDOW_POLICIES,
        default="shift",
        help="past block_size: shift keeps the last --keep tokens and continues, exact crops "
        "to the last block_size tokens for every token (~block_size times slower)",
    )
    parser.add_argument(
        "--keep", type=int, help="tokens a shift keeps, 0..block_size-1 (default block_size/4)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="with --tflite: chip = the C runtime, bit-exact with the firmware (default); "
        "litert = LiteRT, NOT bit-exact with the chip",
    )
    args = parser.parse_args(argv)
    try:
        check_args(args)
        text = read_start(args.start)
        itos, stoi, block_size, sample = load_sampler(args)
        keep = resolve_keep(args.window, args.keep, block_size)
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
    for i in range(args.num_samples):
        new_ids = sample(prompt_ids, keep, i)
        print("".join(itos[t] for t in prompt_ids + new_ids))
        print("---------------")
    return 0


if __name__ == "__main__":
    sys.exit(main())
