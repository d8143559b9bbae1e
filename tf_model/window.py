"""The window policy: what generation does when the context is full (block_size tokens).

    from tf_model.window import resolve_keep, WindowedDecoder
    keep = resolve_keep("shift", None, block_size)     # tokens kept when the window is full
    window = WindowedDecoder(decoder, keep)            # decoder: reset(), feed(tokens) -> logits
    logits = window.start(prompt_ids)                  # the prompt's last block_size tokens
    logits = window.push(token)                        # one more token, refilling when full

The model's positions are learned and absolute, so a full window cannot slide by one token
without re-running it from position 0:

- `shift` (default): keep the last `keep` tokens, re-run them with the new token from position
  0, then continue incrementally; block_size / (block_size - keep) model steps per token on
  average. `keep` defaults to block_size // 4 (the measured trade-off in cim_runtime/README.md).
- `exact`: crop to the last block_size tokens for every token (shift with keep = block_size - 1);
  the longest context every time, ~block_size steps per token past the window.

The C runtime is the reference (picogpt_generate / picogpt_feed in cim_runtime/src/runtime.c);
this is its twin for the Python decoders (Keras float, LiteRT) and the evaluation plans.
"""

import numpy as np

WINDOW_POLICIES = ("shift", "exact")  # in the order of the C enum picogpt_window_policy


def default_keep(block_size):
    """picogpt_default_window's keep: a quarter of the window."""
    return block_size // 4


def resolve_keep(policy, keep, block_size):
    """Tokens kept besides the new one when the window is full (exact: block_size - 1).
    keep None means the default. A bad policy or keep is a ValueError that says what is valid."""
    if policy not in WINDOW_POLICIES:
        raise ValueError(
            f"unknown window policy {policy!r}: use one of {', '.join(WINDOW_POLICIES)}"
        )
    if keep is None:
        keep = default_keep(block_size)
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)):
        raise TypeError(f"window keep must be an integer, got {keep!r}")
    if not 0 <= keep < block_size:
        raise ValueError(
            f"window keep {keep} is out of range: it must be in [0, {block_size - 1}] "
            f"(below the model's block_size {block_size})"
        )
    return block_size - 1 if policy == "exact" else int(keep)


class WindowedDecoder:
    """Feeds tokens to a decoder under the window policy, exactly as picogpt_feed does.

    The decoder has `block_size`, `reset()` and `feed(tokens)`, which runs tokens at the next
    positions and returns the logits after the last one.
    """

    def __init__(self, decoder, keep):
        self.decoder, self.keep = decoder, keep
        self.block_size = decoder.block_size
        self.context = []  # tokens at positions 0..len-1

    def start(self, prompt_ids):
        """Forget everything, feed the prompt's last block_size tokens; logits after them."""
        self.context = [int(t) for t in prompt_ids][-self.block_size :]
        if not self.context:
            raise ValueError("the prompt must hold at least one token")
        self.decoder.reset()
        return self.decoder.feed(self.context)

    def push(self, token):
        """Feed one token; when the window is full, refill it with the last `keep` tokens and
        this one from position 0. Returns the logits after it."""
        token = int(token)
        if len(self.context) < self.block_size:
            self.context.append(token)
            return self.decoder.feed([token])
        self.context = self.context[len(self.context) - self.keep :] + [token]
        self.decoder.reset()
        return self.decoder.feed(self.context)


def stream_plan(n_inputs, block_size, keep, every=1):
    """The windows in which a text of n_inputs tokens is fed under the window policy.

    A list of (start, length, first_row): the policy runs tokens[start:start + length] from
    position 0, and rows first_row..length-1 of those logits are its predictions after tokens
    start + first_row .. start + length - 1. The first window predicts from its first token on;
    after it every refill keeps `keep` tokens, so window j starts at j * (block_size - keep).
    With every > 1 only every every-th window after the first is listed (an evenly spaced
    subset, for the exact policy's ~block_size steps per token). keep 0 gives the
    non-overlapping windows of a plain split evaluation.
    """
    if n_inputs < 1:
        raise ValueError("the text must hold at least one token")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    stride = block_size - keep
    plan = [(0, min(block_size, n_inputs), 0)]
    j = every
    while j * stride + keep < n_inputs:
        start = j * stride
        plan.append((start, min(block_size, n_inputs - start), keep))
        j += every
    return plan
