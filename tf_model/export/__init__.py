"""Export a trained PicoGPT to TFLite for TFLite Micro and the C runtime (docs/export.md).

    from tf_model.export import export_model
    data, report = export_model("out-tf-pico-shakespeare-char")  # int8 KV-cache step model + report

The pipeline, one module per stage:
    pipeline.py     export_model: checks, conversion, TFLite Micro check, evaluation, report
    graph.py        the forward pass rebuilt as TFLite-friendly tf.functions (step and full)
    calibration.py  int8 calibration windows, mask values and activation ranges (--ranges)
    convert.py      TFLite conversion and the pico_gpt metadata (build_tflite)
    flatbuffer.py   reading and rewriting .tflite flatbuffers (names, tied scales, metadata)
    validate.py     TFLite Micro check, accuracy against the Keras model, report sizes
    carray.py       the model as C arrays for the firmware (also `uv run python -m tf_model.export.carray`)
    tflite_step.py  running an exported model from Python (LiteRT or TFLite Micro)
Importing this package does not import TensorFlow; converting does.
"""

from .calibration import RANGE_POLICIES
from .convert import KINDS, QUANTIZATIONS, WEIGHT_QUANTIZATIONS, build_tflite
from .errors import ExportError, check_writable
from .pipeline import FLOAT_PARITY_TOLERANCE, default_model_path, export_model, report_path
from .validate import check_tflm, evaluate

__all__ = [
    "FLOAT_PARITY_TOLERANCE",
    "KINDS",
    "QUANTIZATIONS",
    "RANGE_POLICIES",
    "WEIGHT_QUANTIZATIONS",
    "ExportError",
    "build_tflite",
    "check_tflm",
    "check_writable",
    "default_model_path",
    "evaluate",
    "export_model",
    "report_path",
]
