"""The chip's arithmetic in Python: a ctypes binding to the project's own C runtime (cim_runtime/).

    from tf_model.chip import Chip, evaluate_text
    chip = Chip("models/shakespeare_char/model_data_int8.tflite")  # builds the library once
    ids = chip.generate(prompt_ids, 500, temperature=0.8, seed=1337)  # the firmware's tokens
    q = chip.score_windows(windows)              # int8 logits (n, T, vocab), one C call
    result = evaluate_text(chip, val_tokens, keep=0, float_logits=keras_fn)  # loss, top-1

Everything runs in the C runtime the firmware runs (bit-exact with TFLite Micro): the same
kernels, the same window policy and the same integer sampler, so `generate` gives the text the
firmware prints for the same model, prompt, seed, temperature, top_k and window.

The shared library (CMake target picogpt_shared: the runtime plus cim_runtime/bindings/, built
like the host build: -O3, SIMD kernels chosen at run time by the CPU) is built on first use into
build/python-chip/ of the repository, as libpicogpt-<hash>.so, where <hash> covers every source
it is made of: an edited source gives a new library. The build runs under a file lock and the
finished library is renamed into place, so a half-built library is never loaded and concurrent
first uses build it once (tf_model/chip_build.py). It needs CMake >= 3.25 and a C compiler.
"""

import ctypes
import dataclasses
import time

import numpy as np

# building the library lives in chip_build.py; its names are part of this module's API
from .chip_build import BUILD_DIR, ChipBuildError, ChipError, build_library  # noqa: F401
from .window import WINDOW_POLICIES, resolve_keep, stream_plan

# ---- loading the library ---------------------------------------------------------------------


class HalCounters(ctypes.Structure):  # cim_hal_counters
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "programs", "program_cells", "matvecs", "macs", "outputs", "emulation_instructions"
        )
    ]  # fmt: skip


class Stats(ctypes.Structure):  # picogpt_stats
    _fields_ = [("steps", ctypes.c_uint32), ("cim", HalCounters), ("cpu_macs", ctypes.c_uint64)]


class CimDevice(ctypes.Structure):  # cim_hal_device; zero fields take the runtime's defaults
    _fields_ = [
        (name, ctypes.c_int32)
        for name in ("num_macros", "rows", "cols", "input_bits", "weight_bits")
    ]


class CimNonIdealC(ctypes.Structure):  # picogpt_cim_nonideal; all zero: exact
    _fields_ = [
        ("adc_bits", ctypes.c_int32),
        ("adc_range", ctypes.c_float),
        ("out_noise", ctypes.c_float),
        ("weight_noise", ctypes.c_float),
        ("seed", ctypes.c_uint64),
        ("adc_full_scale", ctypes.POINTER(ctypes.c_int32)),
        ("adc_full_scale_count", ctypes.c_int32),
        ("record_peaks", ctypes.c_int32),
    ]


class RuntimeOptions(ctypes.Structure):  # picogpt_options
    _fields_ = [
        ("cim_device", CimDevice),
        ("cim_cpu_fallback", ctypes.c_int32),
        ("cim_nonideal", CimNonIdealC),
        ("cim_tile_memory", ctypes.c_int32),
        ("simd_tables", ctypes.c_int32),
    ]


class CimMapping(ctypes.Structure):  # picogpt_cim_mapping
    _fields_ = [
        ("device", CimDevice),
        *[
            (n, ctypes.c_int32)
            for n in ("num_layers", "layers_on_cpu", "macros_needed", "macros_used")
        ],
        *[
            (n, ctypes.c_uint64)
            for n in (
                "weights_on_macros", "macs_on_macros", "macs_fc_on_cpu", "macs_batch_matmul",
                "tile_memory_bytes",
            )
        ],
    ]  # fmt: skip


class CimLayer(ctypes.Structure):  # picogpt_cim_layer
    _fields_ = [
        (name, ctypes.c_int32)
        for name in (
            "op_index", "out_features", "in_features", "products", "row_tiles", "col_tiles",
            "first_tile",
        )
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class NonIdeal:
    """Simulated non-ideal CIM macros (picogpt_cim_nonideal in pico_gpt/runtime.h; the model is
    in cim_runtime/README.md, "Non-ideality simulation"). The defaults are exact.

    adc_bits: ADC resolution of each column's partial sum per tile, 2..16 (0: no ADC).
    adc_range: the ADC's full scale as a fraction of each tile's reference range (0: 1).
    out_noise: Gaussian read-out noise, sigma as a fraction of the full scale (0.02 = 2 %).
    weight_noise: programming noise, sigma as a fraction of the tile's max |w|.
    seed: seed of the noise streams.
    adc_full_scale: calibrated reference ranges, one per tile used (Chip.cim_peaks() of an exact
        run with record_peaks); None: each tile's bound (its largest possible |partial sum|).
    record_peaks: record each tile's largest |partial sum| for Chip.cim_peaks().
    """

    adc_bits: int = 0
    adc_range: float = 0.0
    out_noise: float = 0.0
    weight_noise: float = 0.0
    seed: int = 0
    adc_full_scale: tuple | None = None
    record_peaks: bool = False

    def to_c(self):
        """The C struct (and the array it points to, which must stay alive during init)."""
        for name in ("adc_range", "out_noise", "weight_noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"NonIdeal.{name} must be a number, got {value!r}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"NonIdeal.seed must be in [0, 2^64), got {self.seed}")
        scales = None
        if self.adc_full_scale is not None:
            scales = _int32_array(self.adc_full_scale, "NonIdeal.adc_full_scale").ravel()
        c = CimNonIdealC(
            _int32(self.adc_bits, "NonIdeal.adc_bits"), float(self.adc_range),
            float(self.out_noise), float(self.weight_noise), int(self.seed),
            None if scales is None else _ptr(scales, ctypes.c_int32),
            0 if scales is None else len(scales), int(bool(self.record_peaks)),
        )  # fmt: skip
        return c, scales


class ModelInfo(ctypes.Structure):  # picogpt_model_info
    _fields_ = [
        ("use_kv_cache", ctypes.c_int32),
        ("vocab_size", ctypes.c_int32),
        ("block_size", ctypes.c_int32),
        ("logits_scale", ctypes.c_float),
        ("logits_zero_point", ctypes.c_int32),
        ("arena_used", ctypes.c_size_t),
        ("activation_bytes", ctypes.c_size_t),
        ("persistent_bytes", ctypes.c_size_t),
        ("kv_cache_bytes", ctypes.c_size_t),
        ("arena_needed", ctypes.c_size_t),
        ("arena_needed_exact", ctypes.c_int32),
    ]


class Sampling(ctypes.Structure):  # picogpt_sampling
    _fields_ = [
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
    ]


class Window(ctypes.Structure):  # picogpt_window (the enum is an int)
    _fields_ = [("policy", ctypes.c_int), ("keep", ctypes.c_int32)]


class SessionOptions(ctypes.Structure):  # picogpt_session_options; append fields, never reorder
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("arena_bytes", ctypes.c_uint64),
        ("runtime", RuntimeOptions),
    ]


_LIB = None
_P = ctypes.c_void_p
_I32P = ctypes.POINTER(ctypes.c_int32)
_I8P = ctypes.POINTER(ctypes.c_int8)
_SIGNATURES = {  # name: (restype, argtypes)
    "picogpt_session_open": (
        _P,
        [_P, ctypes.c_size_t, ctypes.POINTER(SessionOptions), ctypes.POINTER(ctypes.c_int),
         ctypes.c_char_p, ctypes.c_size_t],
    ),
    "picogpt_session_close": (None, [_P]),
    "picogpt_session_runtime": (_P, [_P]),
    "picogpt_session_arena_bytes": (ctypes.c_size_t, [_P]),
    "picogpt_cim_info": (ctypes.POINTER(CimMapping), [_P]),
    "picogpt_cim_layer_info": (ctypes.c_int, [_P, ctypes.c_int32, ctypes.POINTER(CimLayer)]),
    "picogpt_cim_peaks": (ctypes.c_int, [_P, _I32P, ctypes.c_int32]),
    "picogpt_struct_size": (ctypes.c_size_t, [ctypes.c_char_p]),
    "picogpt_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "picogpt_last_error": (ctypes.c_char_p, [_P]),
    "picogpt_info": (ctypes.POINTER(ModelInfo), [_P]),
    "picogpt_get_stats": (ctypes.POINTER(Stats), [_P]),
    "picogpt_position": (ctypes.c_int32, [_P]),
    "picogpt_reset": (ctypes.c_int, [_P]),
    "picogpt_step": (ctypes.c_int, [_P, ctypes.c_int32, ctypes.POINTER(_I8P)]),
    "picogpt_default_window": (Window, [ctypes.c_int32]),
    "picogpt_check_window": (ctypes.c_int, [_P, ctypes.POINTER(Window)]),
    "picogpt_feed": (ctypes.c_int, [_P, _I32P, ctypes.c_int32, ctypes.POINTER(Window), _I8P]),
    "picogpt_score_windows": (
        ctypes.c_int, [_P, _I32P, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, _I8P],
    ),
    "picogpt_generate": (
        ctypes.c_int,
        [_P, _I32P, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(Sampling),
         ctypes.POINTER(Window), _P, _P, _I32P, _I32P],
    ),
}  # fmt: skip
_MIRRORED = {  # C struct name: its ctypes mirror, checked at load
    "picogpt_model_info": ModelInfo,
    "picogpt_sampling": Sampling,
    "picogpt_window": Window,
    "picogpt_stats": Stats,
    "picogpt_session_options": SessionOptions,
    "picogpt_options": RuntimeOptions,
    "picogpt_cim_nonideal": CimNonIdealC,
    "picogpt_cim_mapping": CimMapping,
    "picogpt_cim_layer": CimLayer,
}


def load_library():
    """The runtime's shared library (built on first use), with every signature declared."""
    global _LIB
    if _LIB is None:
        path = build_library()
        lib = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        for name, mirror in _MIRRORED.items():
            size = lib.picogpt_struct_size(name.encode())
            if size != ctypes.sizeof(mirror):
                raise ChipBuildError(
                    f"{path}: struct {name} has {size} bytes in C but {ctypes.sizeof(mirror)} in "
                    f"tf_model/chip.py; update the ctypes mirror to runtime.h"
                )
        _LIB = lib
    return _LIB


def status_name(status):
    return load_library().picogpt_status_name(status).decode()


# ---- one model on the runtime -----------------------------------------------------------------


def _int32_array(tokens, what):
    array = np.ascontiguousarray(tokens, dtype=np.int64)
    if array.size and (
        array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max
    ):
        raise ValueError(f"{what} holds token ids outside int32")
    return np.ascontiguousarray(array, dtype=np.int32)


def _int32(value, what):
    """A Python int for an int32 parameter: ctypes would silently wrap a larger one."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    if not np.iinfo(np.int32).min <= value <= np.iinfo(np.int32).max:
        raise ValueError(f"{what} {value} is outside int32")
    return int(value)


def _ptr(array, ctype):
    return array.ctypes.data_as(ctypes.POINTER(ctype))


class Chip:
    """One exported int8 model (.tflite path or bytes) on the C runtime, in its own arena; its
    file is checked like every export (tf_model.export.tflite_step.read_export).

    `arena_bytes` 0 gives exactly what the model needs. `cim_device` (num_macros, rows, cols,
    input_bits, weight_bits; zeros and None take the defaults) and `cim_cpu_fallback` are
    picogpt_init_with_options' options: the CIM device the weights are mapped onto;
    `cim_nonideal` (a NonIdeal; None: exact) simulates non-ideal macros. `cim_tile_memory`
    gives the software CIM HAL its tile memory (on a CPU with AVX-512 VNNI: emulated macro
    cells, faster products with the same results, ~400 KB more arena; False: none).
    `simd_tables` keeps the tables the x86-64 kernels read instead of working values out (the
    same results, ~32 KB more arena for the reference model; False with
    cim_tile_memory=False: the arena need of PICOGPT_TENSOR_ARENA_SIZE's figure). Inputs are
    checked by the runtime; a refused one raises ValueError (token ids, window, option values)
    or ChipError (anything else), with the runtime's message.
    """

    def __init__(
        self,
        model,
        arena_bytes=0,
        cim_device=None,
        cim_cpu_fallback=False,
        cim_nonideal=None,
        cim_tile_memory=True,
        simd_tables=True,
    ):
        from .export.tflite_step import ExportedModelError, read_export

        self.name = "the model bytes" if isinstance(model, (bytes, bytearray)) else str(model)
        try:
            self.data, self.metadata = read_export(model)
        except ExportedModelError as e:
            raise ChipError(str(e)) from None
        self.itos = self.metadata.get("itos")  # list: token id -> text
        if not 0 <= arena_bytes < 2**63:
            raise ValueError(
                f"arena_bytes must be >= 0 (0: what the model needs), got {arena_bytes}"
            )
        self._lib = lib = load_library()
        device = CimDevice(*(cim_device or ()))
        if cim_nonideal is not None and not isinstance(cim_nonideal, NonIdeal):
            raise TypeError(f"cim_nonideal must be a tf_model.chip.NonIdeal, got {cim_nonideal!r}")
        nonideal, _scales = (cim_nonideal or NonIdeal()).to_c()  # _scales: alive during init
        runtime = RuntimeOptions(
            device,
            int(bool(cim_cpu_fallback)),
            nonideal,
            int(bool(cim_tile_memory)),
            int(bool(simd_tables)),
        )
        options = SessionOptions(ctypes.sizeof(SessionOptions), 0, int(arena_bytes), runtime)
        status = ctypes.c_int(0)
        error = ctypes.create_string_buffer(512)
        self._session = lib.picogpt_session_open(
            self.data, len(self.data), ctypes.byref(options), ctypes.byref(status), error, 512
        )
        if not self._session:
            message = (
                f"the C runtime cannot run {self.name}: {status_name(status.value)}: "
                f"{error.value.decode(errors='replace')}"
            )
            if status_name(status.value) == "PICOGPT_ERR_ARGUMENT":
                raise ValueError(message)  # an option value, e.g. cim_nonideal's
            raise ChipError(message)
        self._rt = lib.picogpt_session_runtime(self._session)
        info = lib.picogpt_info(self._rt).contents
        self.kind = "step" if info.use_kv_cache else "full"
        self.vocab_size, self.block_size = info.vocab_size, info.block_size
        self.logits_scale = float(info.logits_scale)
        self.logits_zero_point = int(info.logits_zero_point)
        self.arena_used = int(info.arena_used)
        # Arena the software CIM HAL holds as emulated cells (0 without VNNI or tile memory).
        self.tile_memory_bytes = int(lib.picogpt_cim_info(self._rt).contents.tile_memory_bytes)

    def close(self):
        if getattr(self, "_session", None):
            self._lib.picogpt_session_close(self._session)
            self._session = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- calls ------------------------------------------------------------------------------

    def _check(self, status, what):
        if status == 0:
            return
        message = self._lib.picogpt_last_error(self._rt).decode(errors="replace")
        name = status_name(status)
        if name in ("PICOGPT_ERR_TOKEN_RANGE", "PICOGPT_ERR_ARGUMENT"):
            raise ValueError(f"{what}: {message}")
        raise ChipError(f"{what}: {name}: {message}")

    def window(self, policy="shift", keep=None):
        """The C picogpt_window for a policy name and keep (None: the default), checked by the
        runtime; ValueError with what is valid otherwise."""
        if policy not in WINDOW_POLICIES:
            raise ValueError(
                f"unknown window policy {policy!r}: use one of {', '.join(WINDOW_POLICIES)}"
            )
        w = self._lib.picogpt_default_window(self.block_size)
        w.policy = WINDOW_POLICIES.index(policy)
        if keep is not None:
            resolve_keep(policy, keep, self.block_size)  # type and range, before the C cast
            w.keep = keep
        self._check(self._lib.picogpt_check_window(self._rt, ctypes.byref(w)), "window")
        return w

    def dequantize(self, q):
        """Real-valued logits of int8 ones: scale * (q - zero_point), float32."""
        return (np.asarray(q, np.float32) - self.logits_zero_point) * np.float32(self.logits_scale)

    def reset(self):
        self._check(self._lib.picogpt_reset(self._rt), "reset")

    @property
    def position(self):
        return int(self._lib.picogpt_position(self._rt))

    @property
    def stats(self):
        """Work since the last reset: model steps, CIM tile products and MACs, CPU MACs."""
        s = self._lib.picogpt_get_stats(self._rt).contents
        return {
            "steps": int(s.steps),
            "cim_matvecs": int(s.cim.matvecs),
            "cim_macs": int(s.cim.macs),
            "cpu_macs": int(s.cpu_macs),
        }

    def cim_mapping(self):
        """The mapping of the weights onto the CIM macros, as the runtime's mapper made it
        (picogpt_cim_info, picogpt_cim_layer_info): a JSON-ready dict with the device, one entry
        per FULLY_CONNECTED layer (in execution order) and the totals. MACs are per step (token);
        utilisation is the share of the cells of a layer's (or all used) macros holding weights."""
        m = self._lib.picogpt_cim_info(self._rt).contents
        dev = m.device
        cells = dev.rows * dev.cols
        layers = []
        layer = CimLayer()
        while self._lib.picogpt_cim_layer_info(self._rt, len(layers), ctypes.byref(layer)) == 0:
            tiles = layer.row_tiles * layer.col_tiles
            weights = layer.out_features * layer.in_features
            layers.append(
                {
                    "op_index": layer.op_index,
                    "weight_shape": [layer.out_features, layer.in_features],
                    "products_per_step": layer.products,
                    "col_tiles": layer.col_tiles,
                    "row_tiles": layer.row_tiles,
                    "tiles": tiles,
                    "macros": (
                        list(range(layer.first_tile, layer.first_tile + tiles))
                        if layer.first_tile >= 0
                        else []
                    ),
                    "on": "macros" if layer.first_tile >= 0 else "cpu",
                    "utilisation": weights / (tiles * cells),
                    "macs_per_step": layer.products * weights,
                }
            )
        macs_cpu = m.macs_fc_on_cpu + m.macs_batch_matmul
        total = m.macs_on_macros + macs_cpu
        return {
            "device": {n: getattr(dev, n) for n, _ in CimDevice._fields_},
            "layers": layers,
            "num_layers": m.num_layers,
            "layers_on_cpu": m.layers_on_cpu,
            "macros_needed": m.macros_needed,
            "macros_used": m.macros_used,
            "fits": m.layers_on_cpu == 0,
            "utilisation": m.weights_on_macros / (m.macros_used * cells) if m.macros_used else 0.0,
            "macs_on_macros": m.macs_on_macros,
            "macs_fully_connected_on_cpu": m.macs_fc_on_cpu,
            "macs_attention_on_cpu": m.macs_batch_matmul,  # over a full context
            "mac_share_on_macros": m.macs_on_macros / total if total else 0.0,
            "fully_connected_share_on_macros": (
                m.macs_on_macros / (m.macs_on_macros + m.macs_fc_on_cpu)
                if m.macs_on_macros + m.macs_fc_on_cpu
                else 0.0
            ),
        }

    def cim_peaks(self):
        """Each used tile's largest |partial sum| since the chip was made (int32, (macros_used,)),
        recorded with NonIdeal(record_peaks=True): calibrated ranges for NonIdeal.adc_full_scale."""
        n = self._lib.picogpt_cim_info(self._rt).contents.macros_used
        peaks = np.zeros(n, np.int32)
        status = self._lib.picogpt_cim_peaks(self._rt, _ptr(peaks, ctypes.c_int32), n)
        self._check(status, "cim_peaks")
        return peaks

    def step(self, token):
        """Feed one token at the current position; its int8 logits (vocab,)."""
        logits = _I8P()
        status = self._lib.picogpt_step(self._rt, _int32(token, "token"), ctypes.byref(logits))
        self._check(status, "step")
        return np.ctypeslib.as_array(logits, (self.vocab_size,)).copy()

    def feed(self, tokens, policy="shift", keep=None):
        """Feed tokens after the current context under the window policy (as generate feeds
        what it samples); the int8 logits after each, (len(tokens), vocab)."""
        tokens = _int32_array(tokens, "tokens").ravel()
        window = self.window(policy, keep)
        out = np.empty((len(tokens), self.vocab_size), np.int8)
        status = self._lib.picogpt_feed(
            self._rt, _ptr(tokens, ctypes.c_int32), _int32(len(tokens), "the number of tokens"),
            ctypes.byref(window),
            _ptr(out, ctypes.c_int8),
        )  # fmt: skip
        self._check(status, "feed")
        return out

    def score_windows(self, windows, first_row=0):
        """Teacher forcing, one C call: each row of windows (n, L), L <= block_size, from
        position 0; int8 logits after tokens first_row..L-1, (n, L - first_row, vocab)."""
        windows = _int32_array(windows, "windows")
        if windows.ndim != 2:
            raise ValueError(f"windows must be 2-D (n, length), got shape {windows.shape}")
        n, length = windows.shape
        out = np.empty((n, max(length - first_row, 0), self.vocab_size), np.int8)
        status = self._lib.picogpt_score_windows(
            self._rt, _ptr(windows, ctypes.c_int32), _int32(n, "the number of windows"),
            _int32(length, "the window length"), _int32(first_row, "first_row"),
            _ptr(out, ctypes.c_int8),
        )  # fmt: skip
        self._check(status, "score_windows")
        return out

    def generate(self, prompt_ids, max_new_tokens, temperature=0.8, top_k=0, seed=1337,
                 policy="shift", keep=None):  # fmt: skip
        """Sampled token ids after the prompt, from the runtime's integer sampler: the tokens
        the firmware and picogpt_generate produce for the same arguments. temperature 0 is
        greedy; top_k 0 (or >= vocab) keeps every token."""
        prompt = _int32_array(prompt_ids, "prompt_ids").ravel()
        if _int32(max_new_tokens, "max_new_tokens") < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        if top_k is None:
            top_k = 0
        if _int32(top_k, "top_k") < 0:
            raise ValueError(f"top_k must be >= 0 (0 = no cut), got {top_k}")
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must be in [0, 2^64), got {seed}")
        window = self.window(policy, keep)
        sampling = Sampling(float(temperature), int(top_k), int(seed))
        out = np.zeros(max(max_new_tokens, 1), np.int32)
        n_out = ctypes.c_int32(0)
        status = self._lib.picogpt_generate(
            self._rt, _ptr(prompt, ctypes.c_int32), _int32(len(prompt), "the prompt length"),
            int(max_new_tokens),
            ctypes.byref(sampling), ctypes.byref(window), None, None,
            _ptr(out, ctypes.c_int32), ctypes.byref(n_out),
        )  # fmt: skip
        self._check(status, "generate")
        return out[: n_out.value].tolist()


# ---- evaluation: a text under the window policy, with the chip's arithmetic -------------------


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl_divergence(float_logp, int8_logp):
    """KL(float || int8) of next-token distributions given as log-probabilities, nats, one
    value per position (the export report and tf_eval.py --tflite state its mean)."""
    return np.sum(np.exp(float_logp) * (float_logp - int8_logp), axis=-1)


def evaluate_text(chip, tokens, keep, every=1, float_logits=None, batch_windows=64, progress=None):
    """Next-token loss of `tokens` read as one text under the window policy, with chip arithmetic.

    keep: tokens a full window keeps (window.resolve_keep; exact = block_size - 1, keep 0 = the
    non-overlapping windows of a plain split evaluation). every: score every every-th window
    after the first (window.stream_plan), for the exact policy's cost. float_logits: optional
    function windows (b, L) -> float logits (b, L, vocab), e.g. the Keras model, evaluated on
    the same windows and rows for the float loss and the top-1 agreement. progress: an optional
    tqdm-like bar, advanced by the windows scored.

    Returns a dict: predictions, windows, int8_loss (nats/token), chip_seconds (time in the C
    runtime), and with float_logits float_loss, loss_delta, top1_agreement, kl (mean
    KL(float || int8), nats), float_seconds; per prediction the arrays targets, int8_nll,
    int8_top1 (the chip's most likely token) and (with float_logits) float_nll, agree,
    kl_per_prediction.
    """
    tokens = np.asarray(tokens)
    T = chip.block_size
    plan = stream_plan(len(tokens) - 1, T, keep, every)
    parts = {
        k: []
        for k in ("targets", "int8_nll", "int8_top1", "float_nll", "agree", "kl_per_prediction")
    }
    seconds = {"chip": 0.0, "float": 0.0}
    # Windows of one shape go to the runtime together: the first, the full-length middle
    # ones (in batches), the short last one.
    groups = {}
    for start, length, first_row in plan:
        groups.setdefault((length, first_row), []).append(start)
    for (length, first_row), starts in sorted(groups.items(), key=lambda g: g[1][0]):
        for i in range(0, len(starts), batch_windows):
            s = np.asarray(starts[i : i + batch_windows])
            windows = np.asarray(tokens[s[:, None] + np.arange(length)], np.int32)  # (b, L)
            targets = np.asarray(tokens[s[:, None] + np.arange(first_row + 1, length + 1)])
            t0 = time.perf_counter()
            q = chip.score_windows(windows, first_row)  # (b, rows, V) int8
            seconds["chip"] += time.perf_counter() - t0
            int8_logp = log_softmax(chip.dequantize(q))
            picked = targets[..., None].astype(np.int64)
            parts["targets"].append(targets.ravel())
            parts["int8_nll"].append(-np.take_along_axis(int8_logp, picked, -1).ravel())
            parts["int8_top1"].append(q.argmax(-1).ravel())  # lowest id on a tie, as greedy
            if float_logits is not None:
                t0 = time.perf_counter()
                reference = np.asarray(float_logits(windows))[:, first_row:]  # (b, rows, V)
                seconds["float"] += time.perf_counter() - t0
                float_logp = log_softmax(reference)
                parts["float_nll"].append(-np.take_along_axis(float_logp, picked, -1).ravel())
                parts["agree"].append((reference.argmax(-1) == int8_logp.argmax(-1)).ravel())
                parts["kl_per_prediction"].append(kl_divergence(float_logp, int8_logp).ravel())
            if progress is not None:
                progress.update(len(s))
    result = {k: np.concatenate(v) for k, v in parts.items() if v}
    result["predictions"], result["windows"] = len(result["targets"]), len(plan)
    result["int8_loss"] = float(result["int8_nll"].mean())
    result["chip_seconds"], result["float_seconds"] = seconds["chip"], seconds["float"]
    if float_logits is not None:
        result["float_loss"] = float(result["float_nll"].mean())
        result["loss_delta"] = result["int8_loss"] - result["float_loss"]
        result["top1_agreement"] = float(result["agree"].mean())
        result["kl"] = float(result["kl_per_prediction"].mean())
    return result
