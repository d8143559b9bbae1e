"""Export a trained PicoGPT to TFLite: checkpoint checks, calibration, conversion, validation.

The CLI (`tf_convert_to_tflite.py`) is a thin driver over `export_model`. Conventions of the
exported models are documented in docs/model_signature.md; user docs in docs/export.md.
"""

import math
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .config import PicoGPTConfig

QUANTIZATIONS = ("int8", "hybrid", "float")
WEIGHT_QUANTIZATIONS = ("per_channel", "per_tensor")
KINDS = ("step", "full")
METADATA_FORMAT = 1
FLOAT_PARITY_TOLERANCE = 1e-4  # float export vs Keras logits, max abs difference


class ExportError(Exception):
    """A user-fixable problem: the message says what is wrong, what was expected, how to fix."""


# ---- checkpoint and data ------------------------------------------------------------------


@dataclass
class Checkpoint:
    model_dir: str
    model: object  # the Keras PicoGPT
    config: PicoGPTConfig
    meta: dict  # meta.pkl: vocab_size, itos, stoi
    data_dir: str
    info: dict = field(default_factory=dict)  # model_config.pkl contents


def _load_pickle(path, what, fix):
    if not os.path.isfile(path):
        raise ExportError(f"{what} not found: {path}\n{fix}")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        TypeError,
        ValueError,
    ) as e:  # truncated, foreign or incompatible pickle
        raise ExportError(f"cannot read {what} {path}: {type(e).__name__}: {e}\n{fix}") from None


def load_checkpoint(model_dir, data_dir=None) -> Checkpoint:
    """Load tf_train.py's out_dir (model.keras + model_config.pkl) and its dataset's meta.pkl."""
    retrain = (
        "Point --model_dir at a tf_train.py --out_dir (it holds model.keras and model_config.pkl)."
    )
    if not os.path.isdir(model_dir):
        raise ExportError(f"model directory not found: {model_dir}\n{retrain}")
    config_path = os.path.join(model_dir, "model_config.pkl")
    info = _load_pickle(config_path, "model config", retrain)
    if not isinstance(info, dict) or "model_args" not in info:
        raise ExportError(
            f"{config_path} has no 'model_args' entry (keys: "
            f"{sorted(info) if isinstance(info, dict) else type(info).__name__}); "
            f"expected the dict tf_train.py writes.\n{retrain}"
        )
    try:
        config = PicoGPTConfig.from_dict(info["model_args"])
    except (TypeError, ValueError) as e:
        raise ExportError(f"{config_path}: invalid model_args: {e}") from None

    data_dir = data_dir or info.get("data_dir")
    if not data_dir:
        raise ExportError(
            f"{config_path} names no data_dir; pass --data_dir with the dataset directory "
            "(the one holding meta.pkl, train.bin and val.bin)"
        )
    meta_path = os.path.join(data_dir, "meta.pkl")
    meta = _load_pickle(
        meta_path,
        "vocabulary file meta.pkl",
        "Pass --data_dir with the dataset the model was trained on, or create it with "
        "data/shakespeare_char/prepare.py.",
    )
    if not isinstance(meta, dict) or not {"vocab_size", "itos"} <= set(meta):
        raise ExportError(f"{meta_path} lacks vocab_size/itos; expected nanoGPT's meta.pkl format")
    if meta["vocab_size"] != config.vocab_size:
        raise ExportError(
            f"vocabulary mismatch: {meta_path} has vocab_size {meta['vocab_size']} but the model "
            f"was built with vocab_size {config.vocab_size} ({config_path}). Pass --data_dir with "
            "the dataset the model was trained on."
        )

    keras_path = os.path.join(model_dir, "model.keras")
    if not os.path.isfile(keras_path):
        raise ExportError(f"model weights not found: {keras_path}\n{retrain}")
    from .tflite_step import captured_c_stderr

    with captured_c_stderr():  # TensorFlow's C++ start-up log is CUDA probing noise on CPUs
        import keras

        from . import model as _registers_custom_layers  # noqa: F401

    try:
        model = keras.models.load_model(keras_path, compile=False)
    except (
        OSError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        ImportError,
        zipfile.BadZipFile,
    ) as e:  # unreadable archive or config that does not deserialize
        raise ExportError(f"cannot load {keras_path}: {type(e).__name__}: {e}\n{retrain}") from None
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, PicoGPTConfig):
        raise ExportError(f"{keras_path} is not a PicoGPT model (got {type(model).__name__})")
    if model_config.to_dict() != config.to_dict():
        diff = {
            k: (v, config.to_dict()[k])
            for k, v in model_config.to_dict().items()
            if config.to_dict()[k] != v
        }
        raise ExportError(
            f"{keras_path} and {config_path} disagree (model.keras value, model_config.pkl value): "
            f"{diff}. Both files must come from the same tf_train.py run."
        )
    return Checkpoint(model_dir, model, config, meta, data_dir, info)


def load_split(data_dir, split, block_size, purpose):
    path = os.path.join(data_dir, f"{split}.bin")
    if not os.path.isfile(path):
        raise ExportError(
            f"{purpose} needs {path}, which does not exist. Prepare the dataset "
            "(data/shakespeare_char/prepare.py) or pass --data_dir with the directory holding "
            "train.bin and val.bin."
        )
    tokens = np.memmap(path, dtype=np.uint16, mode="r")
    if len(tokens) < block_size + 2:
        raise ExportError(
            f"{path} holds {len(tokens)} tokens; {purpose} needs at least block_size + 2 = "
            f"{block_size + 2}"
        )
    return tokens


def sample_windows(tokens, num_windows, length, seed):
    """`num_windows` random windows of `length` tokens, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.integers(0, len(tokens) - length, size=num_windows))
    return np.stack([np.asarray(tokens[s : s + length], dtype=np.int32) for s in starts])


def eval_windows(tokens, num_windows, length):
    """Evenly spaced windows over held-out text (deterministic, no randomness)."""
    starts = np.linspace(0, len(tokens) - length - 1, num_windows).astype(np.int64)
    return np.stack([np.asarray(tokens[s : s + length], dtype=np.int32) for s in starts])


# ---- calibration ----------------------------------------------------------------------------


def calibrate(graph, windows, progress=None):
    """Run the float model over training windows.

    Returns (mask_values, per-window probes) where probes[w] = [K_0, Vt_0, K_1, ...] (caches
    exactly as the step model sees them) and mask_values[i] = floor(smallest real attention
    score in layer i) - MASK_MARGIN.
    """
    from .export_graph import MASK_MARGIN

    fn = graph.full_function(with_probes=True)
    n_layer = graph.config.n_layer
    mins = np.full(n_layer, np.inf)
    caches = []
    for window in windows:
        out = fn(window[None, :])
        probes = out[1:]
        per_window = []
        for i in range(n_layer):
            k, vt, real_min = probes[3 * i], probes[3 * i + 1], probes[3 * i + 2]
            per_window += [k.numpy(), vt.numpy()]
            mins[i] = min(mins[i], float(real_min))
        caches.append(per_window)
        if progress:
            progress.update(1)
    mask_values = [float(math.floor(m) - MASK_MARGIN) for m in mins]
    return mask_values, caches


def step_representative_dataset(windows, caches, n_layer):
    """Every position 0..T-1 of every window, with the cache as it is at that step."""

    def gen():
        for window, window_caches in zip(windows, caches):
            T = len(window)
            for t in range(T):
                sample = [np.array([window[t]], np.int32), np.array([t], np.int32)]
                for i in range(n_layer):
                    k, vt = window_caches[2 * i], window_caches[2 * i + 1]
                    k_t = np.zeros_like(k)  # (nh, T, hs): rows < t filled, later rows empty
                    k_t[:, :t] = k[:, :t]
                    vt_t = np.zeros_like(vt)  # (nh, hs, T): columns < t filled
                    vt_t[:, :, :t] = vt[:, :, :t]
                    sample += [k_t, vt_t]
                yield sample

    return gen


def full_representative_dataset(windows):
    def gen():
        for window in windows:
            yield [window[None, :].astype(np.int32)]

    return gen


# ---- calibration range clipping -------------------------------------------------------------

# Computed activations (outputs of these ops with more than one element) get the
# [CLIP_PERCENTILE_LOW, CLIP_PERCENTILE_HIGH] percentiles of their float calibration values as
# their int8 range instead of the raw min/max; a square (MUL of a tensor by itself) gets
# CLIP_PERCENTILE_SQUARE. A few outlier channels (up to +-43 in the last block of the fully
# trained default model, where most values are within +-6) otherwise set the scale of the whole
# tensor. Softmax, select, concat, slices, reshapes and per-row scalars (mean, rsqrt) keep the
# converter's ranges; int8 kernels saturate values outside a range.
CLIP_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "SUB", "MUL")
CLIP_PERCENTILE_LOW, CLIP_PERCENTILE_HIGH = 0.01, 99.99
CLIP_PERCENTILE_SQUARE = 99.9
# Logits more than this many nats below the step's largest logit do not matter for argmax or
# sampling (weight < e^-10); the logits range starts there (5th percentile of the per-step max
# over calibration minus this margin) so the int8 scale spends its steps near the top.
LOGITS_FLOOR_MARGIN = 10.0


def clipped_ranges(calibrated: bytes, representative_dataset) -> bytes:
    """Narrow the min/max the calibrator recorded (see CLIP_OPS) using the float values of
    every tensor over the representative dataset; returns the calibrated model to quantize."""
    from ai_edge_litert.interpreter import Interpreter

    from .export_flatbuffer import op_name, read_model, write_model
    from .tflite_step import captured_c_stderr

    model = read_model(calibrated)
    graph = model.subgraphs[0]
    targets = {}  # tensor index -> is a square
    for op in graph.operators:
        index = op.outputs[0]
        q = graph.tensors[index].quantization
        if (
            op_name(model, op) in CLIP_OPS
            and index not in graph.outputs
            and int(np.prod(graph.tensors[index].shape)) > 1
            and q is not None
            and q.min is not None
            and len(q.min) == 1
        ):
            targets[index] = op_name(model, op) == "MUL" and op.inputs[0] == op.inputs[1]
    logits = graph.outputs[0]
    with captured_c_stderr():
        interp = Interpreter(
            model_content=bytes(calibrated), num_threads=1, experimental_preserve_all_tensors=True
        )
        interp.allocate_tensors()
    in_details = interp.get_input_details()
    values = {i: [] for i in targets}
    step_max = []
    for sample in representative_dataset():
        for detail, x in zip(in_details, sample):
            interp.set_tensor(detail["index"], np.asarray(x, dtype=detail["dtype"]))
        interp.invoke()
        for i in targets:
            values[i].append(interp.get_tensor(i).ravel().copy())
        step_max.append(
            interp.get_tensor(logits).reshape(-1, interp.get_tensor(logits).shape[-1]).max(-1)
        )
    for i, square in targets.items():
        v = np.concatenate(values[i])
        q = graph.tensors[i].quantization
        if square:
            lo, hi = float(q.min[0]), float(np.percentile(v, CLIP_PERCENTILE_SQUARE))
        else:
            lo, hi = (
                float(x) for x in np.percentile(v, [CLIP_PERCENTILE_LOW, CLIP_PERCENTILE_HIGH])
            )
        q.min = np.array([max(lo, float(q.min[0]))], np.float32)
        q.max = np.array([min(hi, float(q.max[0]))], np.float32)
    q = graph.tensors[logits].quantization
    floor = float(np.percentile(np.concatenate(step_max), 5)) - LOGITS_FLOOR_MARGIN
    if q is not None and q.min is not None and len(q.min) == 1 and floor < float(q.max[0]):
        q.min = np.array([max(floor, float(q.min[0]))], np.float32)
    return write_model(model)


# ---- conversion -----------------------------------------------------------------------------


def convert(
    fn, quantization, representative_dataset=None, weights="per_channel", clip_ranges=True
) -> bytes:
    import tensorflow as tf

    if weights not in WEIGHT_QUANTIZATIONS:
        raise ValueError(f"weights must be one of {WEIGHT_QUANTIZATIONS}, got {weights!r}")
    concrete = fn.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    # per-tensor FC weights save the per-channel scale/zero-point arrays (34 KB for the default
    # config: the schema stores zero points as int64); the converter exposes it as experimental
    converter._experimental_disable_per_channel_quantization_for_dense_layers = (
        weights == "per_tensor"
    )
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        # calibrate only, narrow the recorded ranges, then quantize: the same two steps the
        # converter takes internally (calibrate, then its MLIR quantizer), with clip_ranges between
        converter._experimental_calibrate_only = clip_ranges
    elif quantization == "hybrid":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights only
    elif quantization != "float":
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    from .tflite_step import captured_c_stderr

    # the converter prints its settings from C++ and warns that int8 inputs carry no float
    # statistics (they do not need any); show its log only if conversion fails
    with captured_c_stderr() as log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        try:
            result = converter.convert()
            if quantization == "int8" and clip_ranges:
                from tensorflow.lite.python.convert import mlir_quantize

                calibrated = clipped_ranges(result, representative_dataset)
                result = mlir_quantize(
                    calibrated,
                    False,  # the converter's _experimental_disable_per_channel default
                    input_data_type=tf.int8,
                    output_data_type=tf.int8,
                    disable_per_channel_for_dense_layers=weights == "per_tensor",
                )
            return result
        except Exception as e:  # noqa: BLE001 - ConverterError and friends; re-raised with log
            error = e
    raise ExportError(f"TFLite conversion failed: {error}\n{log['value'].strip()}") from None


def io_names(config, kind):
    if kind == "full":
        return ["tokens"], ["logits"], []
    inputs, outputs, tied = ["token", "pos"], ["logits"], []
    for i in range(config.n_layer):
        inputs += [f"k_cache_{i}", f"v_cache_{i}"]
        outputs += [f"k_new_{i}", f"v_new_{i}"]
        tied += [(f"k_cache_{i}", f"k_new_{i}"), (f"v_cache_{i}", f"v_new_{i}")]
    return inputs, outputs, tied


def build_tflite(
    checkpoint,
    kind="step",
    quantization="int8",
    num_calibration_windows=8,
    seed=0,
    progress_factory=None,
    weight_quantization="per_channel",
):
    """Convert the checkpoint's Keras model; returns (tflite bytes, metadata dict)."""
    import tensorflow as tf

    from .export_flatbuffer import finalize
    from .export_graph import FLOAT_MASK_VALUE, PicoGPTGraph, keras_weights

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    config = checkpoint.config
    weights = keras_weights(checkpoint.model)
    mask_values = [FLOAT_MASK_VALUE] * config.n_layer
    representative = None
    if quantization == "int8":
        if num_calibration_windows < 1:
            raise ExportError(
                f"--num_calibration_samples must be >= 1, got {num_calibration_windows}"
            )
        train = load_split(checkpoint.data_dir, "train", config.block_size, "int8 calibration")
        windows = sample_windows(train, num_calibration_windows, config.block_size, seed)
        progress = (
            progress_factory(len(windows), "calibrating (float model)")
            if progress_factory
            else None
        )
        mask_values, caches = calibrate(PicoGPTGraph(config, weights), windows, progress)
        if progress:
            progress.close()
        if kind == "step":
            representative = step_representative_dataset(windows, caches, config.n_layer)
        else:
            representative = full_representative_dataset(windows)
    graph = PicoGPTGraph(config, weights, mask_values)
    if kind == "step":
        cache_dtype = tf.float32  # int8 models get int8 cache I/O from inference_input_type
        fn = graph.step_function(cache_dtype)
    else:
        fn = graph.full_function()
    raw = convert(fn, quantization, representative, weight_quantization)
    inputs, outputs, tied = io_names(config, kind)
    itos = checkpoint.meta["itos"]
    metadata = {
        "format": METADATA_FORMAT,
        "kind": kind,
        "quantization": quantization,
        "weight_quantization": weight_quantization if quantization != "float" else None,
        "config": config.to_dict(),
        "itos": [itos[i] for i in range(config.vocab_size)],
        "mask_values": mask_values,
        "num_calibration_windows": num_calibration_windows if quantization == "int8" else 0,
        "cache_layout": (
            {
                "k_cache": "[n_head, block_size, head_size]",
                "v_cache": "[n_head, head_size, block_size]",
            }
            if kind == "step"
            else None
        ),
    }
    data = finalize(raw, inputs, outputs, tied if quantization == "int8" else [], metadata)
    return data, metadata


# ---- validation and evaluation --------------------------------------------------------------


def check_tflm(data, quantization, kind):
    """Load and invoke in TFLite Micro; returns (arena bytes or None, note)."""
    from .tflite_step import TFLiteRunError, load_exported

    try:
        runner = load_exported(data, backend="tflm")
        runner.reset()
        if kind == "step":
            runner.step(0, 0)
        else:
            runner.sequence_logits([0])
        return runner.interp.arena_bytes(), "runs"
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


def evaluate(checkpoint, data, kind, num_eval_windows=32, tflm_windows=1, progress_factory=None):
    """Teacher-forced val loss / top-1 agreement of the export vs the Keras float model."""
    from .tflite_step import TFLiteRunError, load_exported

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
        "max_abs_logit_diff": float(np.max(np.abs(export_logits - keras_logits))),
    }
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


# ---- writing --------------------------------------------------------------------------------


def check_writable(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ExportError(
            f"cannot write {path}: directory {directory} does not exist (create it first)"
        )
    if not os.access(directory, os.W_OK):
        raise ExportError(f"cannot write {path}: directory {directory} is not writable")
    if os.path.isdir(path):
        raise ExportError(f"cannot write {path}: it is a directory; give a file path")
