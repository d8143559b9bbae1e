"""Run an exported PicoGPT .tflite from Python: LiteRT or TFLite Micro's own interpreter.

    from tf_model.export.tflite_step import load_exported
    model = load_exported("out/model_data_int8.tflite")  # backend="litert" (default) or "tflm"
    model.reset()
    logits = model.step(token=17, pos=0)                 # np.float32 (vocab_size,), dequantized
    logits = model.next_logits([17, 42, 5])              # sampler helper: crops to block_size

`TFLiteStepModel` owns the KV cache the way the firmware does: the model reads the cache as
inputs and returns only the new K/V rows, which `step` writes at row `pos`. The int8 bytes are
stored unchanged (cache input and new-row output share scale and zero point by construction).
`TFLiteFullModel` runs the --no_kv_cache export. Golden data for the C runtime must come from
backend="tflm": LiteRT's reference kernels round differently by 1 LSB in places.
"""

import json
import re
import struct

import numpy as np

from ..config import PicoGPTConfig
from ..quiet import captured_c_stderr
from .flatbuffer import describe, read_metadata

BACKENDS = ("litert", "tflm")
TFLM_PROBE_ARENA_BYTES = 8 << 20  # generous arena for measuring; the real need is reported


class TFLiteRunError(RuntimeError):
    """An interpreter refused or failed to run the model; the message carries its log."""


class ExportedModelError(ValueError):
    """The file is not a PicoGPT export: unreadable, not a .tflite, truncated or corrupt."""


def _dequantize(x, quant):
    if quant is None or x.dtype == np.float32:
        return np.asarray(x, np.float32)
    return ((x.astype(np.int32) - quant["zero_point"]) * quant["scale"]).astype(np.float32)


_DTYPES = {"int8": np.int8, "int32": np.int32, "float32": np.float32}


class _Interpreter:
    """LiteRT or TFLite Micro behind one name-based interface."""

    def __init__(self, data: bytes, backend: str, arena_size=None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        info = describe(data)
        self.inputs = {t["name"]: (i, t) for i, t in enumerate(info["inputs"])}
        self.outputs = {t["name"]: (i, t) for i, t in enumerate(info["outputs"])}
        if backend == "litert":
            from ai_edge_litert.interpreter import Interpreter

            with captured_c_stderr():  # "Created TensorFlow Lite XNNPACK delegate" on every load
                self._interp = Interpreter(model_content=bytes(data), num_threads=1)
                self._interp.allocate_tensors()
            self._in_index = [d["index"] for d in self._interp.get_input_details()]
            self._out_index = [d["index"] for d in self._interp.get_output_details()]
        else:
            from tflite_micro.python.tflite_micro import runtime as tflm

            with captured_c_stderr() as log:
                try:
                    self._interp = tflm.Interpreter.from_bytes(
                        bytes(data), arena_size=arena_size or TFLM_PROBE_ARENA_BYTES
                    )
                    error = None
                except (RuntimeError, ValueError) as e:  # details are in the captured log
                    error = e
            if error is not None:
                raise TFLiteRunError(_tflm_message(error, log["value"])) from None

    def set_raw(self, name, array):
        index, t = self.inputs[name]
        array = np.ascontiguousarray(array, dtype=_DTYPES[t["dtype"]]).reshape(t["shape"])
        if self.backend == "litert":
            self._interp.set_tensor(self._in_index[index], array)
        else:
            self._interp.set_input(array, index)

    def invoke(self):
        if self.backend == "litert":
            self._interp.invoke()
            return
        with captured_c_stderr() as log:
            try:
                self._interp.invoke()
                error = None
            except (RuntimeError, ValueError) as e:
                error = e
        if error is not None:
            raise TFLiteRunError(_tflm_message(error, log["value"])) from None

    def get_raw(self, name):
        index, _ = self.outputs[name]
        if self.backend == "litert":
            return self._interp.get_tensor(self._out_index[index]).copy()
        return np.array(self._interp.get_output(index), copy=True)

    def get(self, name):
        return _dequantize(self.get_raw(name), self.outputs[name][1]["quantization"])

    def arena_bytes(self):
        """TFLite Micro's arena use after an invoke (from its RecordingMicroAllocator log)."""
        if self.backend != "tflm":
            raise ValueError("arena size is a TFLite Micro measurement; use backend='tflm'")
        with captured_c_stderr() as log:
            self._interp.print_allocations()
        match = re.search(r"Arena allocation total (\d+) bytes", log["value"])
        if not match:
            raise TFLiteRunError(f"could not read the arena size from: {log['value']!r}")
        return int(match.group(1))


def _tflm_message(error, log):
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    detail = "; ".join(lines[-6:]) if lines else str(error)
    return f"TFLite Micro rejected the model: {detail}"


def _load_bytes(model):
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    try:
        with open(model, "rb") as f:
            return f.read()
    except OSError as e:
        raise ExportedModelError(f"cannot read {model}: {e.strerror}") from None


def _pico_gpt_metadata(data, source="the model"):
    fix = "export one with: uv run python tf_convert_to_tflite.py --model_dir OUT_DIR"
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportedModelError(
            f"{source} is not a .tflite model (no TFL3 file identifier at byte 4); {fix}"
        )
    try:
        metadata = read_metadata(data)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        # the flatbuffer's offsets point past its end or at garbage: json.JSONDecodeError
        # is a ValueError too
        kind = "a damaged pico_gpt metadata entry" if isinstance(e, json.JSONDecodeError) else e
        raise ExportedModelError(
            f"{source} is not a valid .tflite model: it is truncated or corrupt ({kind}); {fix}"
        ) from None
    if metadata is None:
        raise ExportedModelError(f"{source} is a .tflite without pico_gpt metadata; {fix}")
    return metadata


class _ExportedModel:
    def __init__(self, model, backend="litert", arena_size=None):
        self.data = _load_bytes(model)
        self.metadata = _pico_gpt_metadata(self.data, _source(model))
        self.config = PicoGPTConfig.from_dict(self.metadata["config"])
        self.block_size = self.config.block_size
        self.vocab_size = self.config.vocab_size
        self.itos = self.metadata["itos"]  # list: token id -> text
        self.quantization = self.metadata["quantization"]
        self.backend = backend
        self.interp = _Interpreter(self.data, backend, arena_size)

    def decode(self, tokens):
        return "".join(self.itos[t] for t in tokens)


class TFLiteStepModel(_ExportedModel):
    """The KV-cache step export: `step(token, pos)` plus a runtime-held cache."""

    kind = "step"

    def __init__(self, model, backend="litert", arena_size=None):
        super().__init__(model, backend, arena_size)
        c = self.config
        self.cache_names = []
        for i in range(c.n_layer):
            self.cache_names += [f"k_cache_{i}", f"v_cache_{i}"]
        self.caches = {}
        for name in self.cache_names:
            t = self.interp.inputs[name][1]
            self.caches[name] = np.zeros(t["shape"], _DTYPES[t["dtype"]])
        self.last_raw = {}  # raw output tensors of the latest step (int8 for int8 models)
        self.reset()

    def reset(self):
        """Forget the context. Stale rows never matter (they are masked), zeros are for tidiness."""
        for name, cache in self.caches.items():
            quant = self.interp.inputs[name][1]["quantization"]
            cache.fill(quant["zero_point"] if cache.dtype == np.int8 else 0)
        self._tokens = []

    def step(self, token: int, pos: int) -> np.ndarray:
        """Feed `token` at position `pos`, write its K/V rows at `pos`, return float32 logits."""
        if not 0 <= pos < self.block_size:
            raise ValueError(f"pos must be in [0, {self.block_size}), got {pos}")
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token must be in [0, {self.vocab_size}), got {token}")
        self.interp.set_raw("token", np.array([token], np.int32))
        self.interp.set_raw("pos", np.array([pos], np.int32))
        for name in self.cache_names:  # TFLite Micro clobbers inputs: set them every invoke
            self.interp.set_raw(name, self.caches[name])
        self.interp.invoke()
        self.last_raw = {name: self.interp.get_raw(name) for name in self.interp.outputs}
        for i in range(self.config.n_layer):
            self.caches[f"k_cache_{i}"][:, pos, :] = self.last_raw[f"k_new_{i}"][:, 0, :]
            self.caches[f"v_cache_{i}"][:, :, pos] = self.last_raw[f"v_new_{i}"][:, :, 0]
        return self.interp.get("logits")[0]

    def next_logits(self, context) -> np.ndarray:
        """Logits after the last token of `context`, cropped to its last block_size tokens (the
        exact window policy, tf_model/window.py). Reuses the cache when `context` extends the
        previous call by one token."""
        context = [int(t) for t in context][-self.block_size :]
        if not context:
            raise ValueError("context must hold at least one token")
        if self._tokens and self._tokens == context[:-1]:
            logits = self.step(context[-1], len(context) - 1)
        else:
            self.reset()
            for pos, token in enumerate(context):
                logits = self.step(token, pos)
        self._tokens = context
        return logits

    def sequence_logits(self, tokens) -> np.ndarray:
        """Teacher-forced logits (len, vocab) for tokens[0..block_size-1] from position 0."""
        self.reset()
        out = np.stack([self.step(int(t), p) for p, t in enumerate(tokens[: self.block_size])])
        self._tokens = []
        return out


class TFLiteFullModel(_ExportedModel):
    """The --no_kv_cache export: a [1, block_size] window in, logits at every position out."""

    kind = "full"

    def reset(self):
        pass

    def sequence_logits(self, tokens) -> np.ndarray:
        tokens = [int(t) for t in tokens][: self.block_size]
        window = np.zeros([1, self.block_size], np.int32)  # padding after is causally invisible
        window[0, : len(tokens)] = tokens
        self.interp.set_raw("tokens", window)
        self.interp.invoke()
        return self.interp.get("logits")[0, : len(tokens)]

    def next_logits(self, context) -> np.ndarray:
        context = [int(t) for t in context][-self.block_size :]
        if not context:
            raise ValueError("context must hold at least one token")
        return self.sequence_logits(context)[-1]


def read_export(model):
    """(bytes, pico_gpt metadata) of an export, a path or bytes; an unreadable file, a non-.tflite,
    a truncated or corrupt one or one without the metadata is an ExportedModelError that says so.
    The one check every runner of an export makes first (this module, tf_model/chip.py)."""
    data = _load_bytes(model)
    return data, _pico_gpt_metadata(data, _source(model))


def load_exported(model, backend="litert", arena_size=None):
    """TFLiteStepModel or TFLiteFullModel, chosen from the model's pico_gpt metadata."""
    data = _load_bytes(model)
    kind = _pico_gpt_metadata(data, _source(model)).get("kind")
    cls = TFLiteStepModel if kind == "step" else TFLiteFullModel
    return cls(model, backend, arena_size)


def _source(model):
    return "the model bytes" if isinstance(model, (bytes, bytearray)) else str(model)
