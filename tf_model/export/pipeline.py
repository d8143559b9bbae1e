"""`export_model`: one call from tf_train.py's out_dir to the model bytes and its deployment report."""

import os

from ..checkpoint import DataError, load_checkpoint, load_split
from .calibration import resolve_range_policy
from .cim_mapping import cim_mapping_report
from .convert import build_tflite
from .errors import ExportError
from .flatbuffer import describe
from .validate import check_tflm, evaluate, kv_cache_bytes, recommended_arena_bytes

FLOAT_PARITY_TOLERANCE = 1e-4  # float export vs Keras logits, max abs difference


def default_model_path(model_dir, kind, quantization):
    """Where an export goes unless told: model_data_int8.tflite for the int8 step model (the
    chip's; the name the original PicoGPT README uses), model_data_full_int8.tflite for
    --no_kv_cache, and _hybrid / _float in place of _int8 for the other quantizations."""
    name = "model_data" + ("_full" if kind == "full" else "") + f"_{quantization}"
    return os.path.join(model_dir, name + ".tflite")


def report_path(model_path):
    """The deployment report beside a model: model_data_int8.tflite -> model_data_int8_report.json."""
    return model_path.removesuffix(".tflite") + "_report.json"


def export_model(
    model_dir,
    *,
    data_dir=None,
    kind="step",
    quantization="int8",
    weight_quantization="per_channel",
    num_calibration_windows=8,
    num_eval_windows=32,
    range_policy="auto",
    seed=0,
    file_name=None,
    progress_factory=None,
):
    """Validate the checkpoint and data, convert, run on TFLite Micro, evaluate, report.

    Returns (tflite bytes, report dict); writes nothing. `file_name` is what the report calls
    the model (default: the name of default_model_path); `progress_factory(total, description)`
    makes progress bars (tqdm-like: update, close). Raises ExportError for anything the user
    can fix. `range_policy`: where the int8 activation ranges come from (build_tflite).
    """
    for name, value in (
        ("--num_calibration_samples", num_calibration_windows),
        ("--num_eval_windows", num_eval_windows),
    ):
        if value < 1:
            raise ExportError(f"{name} must be >= 1, got {value}")
    try:
        checkpoint = load_checkpoint(model_dir, data_dir)
        # data problems surface now, not after minutes of conversion
        block_size = checkpoint.config.block_size
        if quantization == "int8":
            load_split(checkpoint.data_dir, "train", block_size, "int8 calibration")
        load_split(checkpoint.data_dir, "val", block_size, "the deployment report")
    except DataError as e:
        raise ExportError(str(e)) from None
    if quantization == "int8":
        resolve_range_policy(checkpoint, range_policy)  # a bad choice fails before conversion

    from ..model import count_params  # imports Keras, which load_checkpoint has loaded already

    data, metadata = build_tflite(
        checkpoint,
        kind,
        quantization,
        num_calibration_windows,
        seed,
        progress_factory,
        weight_quantization,
        range_policy,
    )
    signature = describe(data)
    arena, tflm_status = check_tflm(data, quantization, kind)
    evaluation = evaluate(
        checkpoint, data, kind, num_eval_windows, progress_factory=progress_factory
    )
    if quantization == "float" and evaluation["max_abs_logit_diff"] > FLOAT_PARITY_TOLERANCE:
        raise ExportError(
            f"the float export differs from the Keras model by {evaluation['max_abs_logit_diff']:.3g} "
            f"(> {FLOAT_PARITY_TOLERANCE:g}) in its logits: this is an exporter bug, please report "
            "it with the checkpoint"
        )
    report = {
        "kind": kind,
        "quantization": quantization,
        "weight_quantization": metadata["weight_quantization"],
        "file": file_name or os.path.basename(default_model_path("", kind, quantization)),
        "file_bytes": len(data),
        "float32_weight_bytes": 4 * count_params(checkpoint.model),
        "config": checkpoint.config.to_dict(),
        "iter_num": checkpoint.info.get("iter_num"),
        "evaluation": evaluation,
        "tflm": {
            "status": tflm_status,
            "arena_bytes": arena,
            "recommended_arena_bytes": recommended_arena_bytes(arena),
        },
        "kv_cache_bytes": kv_cache_bytes(signature),
        "macs_per_token": signature["macs_per_invoke"],
        "ops": signature["ops"],
        "num_ops": signature["num_ops"],
        "signature": {"inputs": signature["inputs"], "outputs": signature["outputs"]},
        "mask_values": metadata["mask_values"],
        "num_calibration_windows": metadata["num_calibration_windows"],
        "cim_mapping": cim_mapping_report(data, quantization),
        "range_policy": metadata["range_policy"],
    }
    return data, report
