"""Validation of an export: TFLite Micro runs it, and it agrees with the Keras float model.

Also the sizes the deployment report states (KV cache bytes, recommended tensor arena).
"""

import math

import numpy as np

from ..checkpoint import load_split
from .errors import ExportError
from .tflite_step import TFLiteRunError, load_exported


def eval_windows(tokens, num_windows, length):
    """Evenly spaced windows over held-out text (deterministic, no randomness)."""
    # the last start leaves one token spare, as it has in every report so far
    last = max(0, len(tokens) - length - 1)
    starts = np.linspace(0, last, num_windows).astype(np.int64)
    return np.stack([np.asarray(tokens[s : s + length], dtype=np.int32) for s in starts])


def tflm_arena_bytes(data):
    """The tensor arena TFLite Micro uses for one invoke of the model (raises TFLiteRunError)."""
    runner = load_exported(data, backend="tflm")
    if runner.kind == "step":
        runner.step(0, 0)
    else:
        runner.sequence_logits([0])
    return runner.interp.arena_bytes()


def check_tflm(data, quantization, kind):
    """Load and invoke in TFLite Micro; returns (arena bytes or None, note)."""
    try:
        return tflm_arena_bytes(data), "runs"
    except TFLiteRunError as e:
        if quantization == "hybrid":
            return None, f"does not run on TFLite Micro (by design, hybrid is for LiteRT): {e}"
        raise ExportError(
            f"{e}\nThe {quantization} {kind} model cannot run on TFLite Micro (see the op or type "
            "named above). Models within the CIMv3 limits (enforce_cim_limits=True: relu MLP) "
            "exported with the default --quantization int8 use only ops it supports; "
            "docs/model_signature.md lists them. Nothing was written."
        ) from None


def cross_entropy(logits, targets):
    logits = logits.astype(np.float64)
    m = logits.max(axis=-1, keepdims=True)
    logz = m[..., 0] + np.log(np.exp(logits - m).sum(axis=-1))
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return float(np.mean(logz - picked))


DEBUG_WINDOWS = 4  # eval windows the per-tensor agreement (quantization debugger) runs over


def evaluate(checkpoint, data, kind, num_eval_windows=32, tflm_windows=1, progress_factory=None):
    """Teacher-forced val loss / top-1 agreement / KL(float || export) of the export vs the
    Keras float model, and for int8 step models the agreement of every int8 tensor with its
    float value (quant_eval.tensor_agreement, the quantization debugger)."""
    from ..chip import kl_divergence, log_softmax
    from ..quant_eval import tensor_agreement

    T = checkpoint.config.block_size
    val = load_split(checkpoint.data_dir, "val", T, "the deployment report")
    windows = eval_windows(val, num_eval_windows, T + 1)  # (E, T+1)
    inputs, targets = windows[:, :T], windows[:, 1:]
    keras_logits = checkpoint.model(inputs, training=False).numpy()  # (E, T, vocab)
    litert = load_exported(data, backend="litert")
    progress = progress_factory(len(windows), "evaluating (LiteRT)") if progress_factory else None
    export_logits = []
    for window in inputs:
        export_logits.append(litert.sequence_logits(window))
        if progress:
            progress.update(1)
    if progress:
        progress.close()
    export_logits = np.stack(export_logits)
    result = {
        "eval_windows": int(num_eval_windows),
        "eval_tokens": int(targets.size),
        "keras_val_loss": cross_entropy(keras_logits, targets),
        "export_val_loss": cross_entropy(export_logits, targets),
        "top1_agreement": float(np.mean(export_logits.argmax(-1) == keras_logits.argmax(-1))),
        "kl_divergence": float(
            np.mean(kl_divergence(log_softmax(keras_logits), log_softmax(export_logits)))
        ),
        "max_abs_logit_diff": float(np.max(np.abs(export_logits - keras_logits))),
    }
    if kind == "step" and litert.quantization == "int8":
        result["tensor_agreement"] = tensor_agreement(
            checkpoint.model, data, inputs[:DEBUG_WINDOWS]
        )
    if tflm_windows:
        try:
            tflm = load_exported(data, backend="tflm")
        except TFLiteRunError:
            tflm = None  # hybrid: check_tflm already reported why
        if tflm is not None:
            tflm_logits = np.stack([tflm.sequence_logits(w) for w in inputs[:tflm_windows]])
            ref = export_logits[:tflm_windows]
            result["tflm_top1_agreement_with_litert"] = float(
                np.mean(tflm_logits.argmax(-1) == ref.argmax(-1))
            )
            result["tflm_max_abs_logit_diff_vs_litert"] = float(np.max(np.abs(tflm_logits - ref)))
    return result


def kv_cache_bytes(signature):
    """Bytes of the runtime-held cache: every *_cache_* input of a `describe()` signature."""
    dtype_bytes = {"int8": 1, "float32": 4}
    return sum(
        math.prod(t["shape"]) * dtype_bytes[t["dtype"]]
        for t in signature["inputs"]
        if "_cache_" in t["name"]
    )


ARENA_HEADROOM_BYTES = 1024  # on top of the measured need, then rounded up to 1 KiB


def recommended_arena_bytes(measured):
    """Arena to recommend for a measured TFLite Micro need (None stays None)."""
    if measured is None:
        return None
    return -(-(measured + ARENA_HEADROOM_BYTES) // 1024) * 1024
