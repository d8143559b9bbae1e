"""Conversion: the Keras checkpoint -> a TensorFlow graph -> TFLite bytes with pico_gpt metadata."""

import warnings

from ..checkpoint import load_split
from ..quiet import captured_c_stderr
from .calibration import calibration_data, resolve_range_policy
from .errors import ExportError
from .flatbuffer import finalize

QUANTIZATIONS = ("int8", "hybrid", "float")
WEIGHT_QUANTIZATIONS = ("per_channel", "per_tensor")
KINDS = ("step", "full")
METADATA_FORMAT = 1


def convert(
    fn, quantization, representative_dataset=None, weights="per_channel", ranges=None
) -> bytes:
    """The tf.function as TFLite bytes. int8 with `ranges` ({point: (min, max)}, see
    tf_model/quant_ranges.py): the converter calibrates, apply_ranges sets the points' ranges,
    then the converter's own MLIR quantizer runs (the two steps convert() takes internally)."""
    import tensorflow as tf

    if weights not in WEIGHT_QUANTIZATIONS:
        raise ValueError(f"weights must be one of {WEIGHT_QUANTIZATIONS}, got {weights!r}")
    concrete = fn.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    # per-tensor FC weights save the per-channel scale/zero-point arrays (14.6 KB for the default
    # config once flatbuffer.py shares the int64 zero-point vectors; 34 KB before); the
    # converter exposes it as experimental
    converter._experimental_disable_per_channel_quantization_for_dense_layers = (
        weights == "per_tensor"
    )
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        converter._experimental_calibrate_only = ranges is not None
    elif quantization == "hybrid":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights only
    elif quantization != "float":
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    # the converter prints its settings from C++ and warns that int8 inputs carry no float
    # statistics (they do not need any); show its log only if conversion fails
    with captured_c_stderr() as log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        try:
            result = converter.convert()
            if quantization == "int8" and ranges is not None:
                from tensorflow.lite.python.convert import mlir_quantize

                from ..quant_ranges import apply_ranges

                result = mlir_quantize(
                    apply_ranges(result, ranges),
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
    range_policy="auto",
):
    """Convert the checkpoint's Keras model; returns (tflite bytes, metadata dict).

    range_policy (int8): where the activation ranges come from: "checkpoint" (the ranges a QAT
    run stored in model_config.pkl), a tf_model/quant_ranges.py policy (minmax, percentile,
    mse) observed by the float model on the calibration windows, or "auto" (the stored ranges
    if any, else percentile; calibration.resolve_range_policy)."""
    import tensorflow as tf

    from .graph import PicoGPTGraph, keras_weights

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    config = checkpoint.config
    weights = keras_weights(checkpoint.model)
    mask_values = representative = ranges = None  # None: the float model's mask value
    if quantization == "int8":
        train = load_split(checkpoint.data_dir, "train", config.block_size, "int8 calibration")
        mask_values, representative, ranges = calibration_data(
            checkpoint,
            PicoGPTGraph(config, weights),
            kind,
            train,
            num_calibration_windows,
            seed,
            range_policy,
            progress_factory,
        )
    graph = PicoGPTGraph(config, weights, mask_values)
    if kind == "step":
        cache_dtype = tf.float32  # int8 models get int8 cache I/O from inference_input_type
        fn = graph.step_function(cache_dtype)
    else:
        fn = graph.full_function()
    raw = convert(fn, quantization, representative, weight_quantization, ranges)
    inputs, outputs, tied = io_names(config, kind)
    itos = checkpoint.meta["itos"]
    metadata = {
        "format": METADATA_FORMAT,
        "kind": kind,
        "quantization": quantization,
        "weight_quantization": weight_quantization if quantization != "float" else None,
        "config": config.to_dict(),
        "itos": [itos[i] for i in range(config.vocab_size)],
        "mask_values": graph.mask_values,
        "num_calibration_windows": num_calibration_windows if quantization == "int8" else 0,
        "range_policy": (
            resolve_range_policy(checkpoint, range_policy) if quantization == "int8" else None
        ),
        "cache_layout": (
            {
                "k_cache": "[n_head, block_size, head_size]",
                "v_cache": "[n_head, head_size, block_size]",
            }
            if kind == "step"
            else None
        ),
    }
    # the int8 points keep their names (quantization debugger, ranges_from_model)
    from ..qat import point_names

    points = point_names(config) if quantization == "int8" else ()
    data = finalize(raw, inputs, outputs, tied if quantization == "int8" else [], metadata, points)
    return data, metadata
