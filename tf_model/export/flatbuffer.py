"""Read and rewrite .tflite flatbuffers: tensor names, I/O order, tied cache scales, metadata.

Uses the TFLite schema bindings shipped with the `tflite-micro` package (object API) and writes
every buffer 16-byte aligned, as the converter does, so int32 constants stay aligned on MCUs.
"""

import json

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

METADATA_NAME = "pico_gpt"  # JSON with the config, vocabulary and I/O conventions
BUILTIN_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def read_model(data: bytes):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(data), 0))


def op_name(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + code.customCode.decode()
    return BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")


def tensor_name(tensor):
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


class _AlignedBuffer:
    """Packs a BufferT with its data vector aligned to 16 bytes (the schema's force_align)."""

    def __init__(self, buffer):
        self.buffer = buffer

    def Pack(self, builder):
        data = self.buffer.data
        data_offset = None
        if data is not None and len(data):
            raw = np.asarray(data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data_offset = builder.EndVector()
        schema.BufferStart(builder)
        if data_offset is not None:
            schema.BufferAddData(builder, data_offset)
        return schema.BufferEnd(builder)


def _remap_buffers(model):
    """Point every data-less tensor at buffer 0 and identical constants at one buffer.

    Returns the new buffer list and {old index: new index}. Buffer 0 is the schema's empty
    sentinel; the converter gives every activation its own empty buffer (a 4-byte offset plus
    a table each). Identical constant bytes (e.g. RESHAPE shape tensors) are stored once;
    flatbuffers and all three runtimes allow several tensors to reference one buffer.
    """
    buffers = model.buffers
    if not buffers or (buffers[0].data is not None and len(buffers[0].data)):
        return buffers, {i: i for i in range(len(buffers))}
    keep, remap, by_bytes = [buffers[0]], {0: 0}, {}
    for i, b in enumerate(buffers[1:], start=1):
        if b.data is None or len(b.data) == 0:
            if b.offset or b.size:  # stored outside the flatbuffer: keep as is
                remap[i] = len(keep)
                keep.append(b)
            else:
                remap[i] = 0
            continue
        key = np.asarray(b.data, dtype=np.uint8).tobytes()
        if key not in by_bytes:
            by_bytes[key] = len(keep)
            keep.append(b)
        remap[i] = by_bytes[key]
    return keep, remap


class _Shared:
    """Packs vectors and quantization tables once per distinct content (deterministic).

    Flatbuffers allow several tables to reference the same vector or table: every per-channel
    QuantizationParameters of one length points at ONE int64 vector of zeros (zero_point
    length stays equal to scale length), identical scale vectors, shapes and whole
    quantization tables are stored once.
    """

    def __init__(self, builder):
        self.builder = builder
        self.vectors = {}
        self.tables = {}

    def vector(self, values, dtype):
        arr = np.ascontiguousarray(np.asarray(values, dtype=dtype))
        key = (arr.dtype.str, len(arr), arr.tobytes())
        if key not in self.vectors:
            self.vectors[key] = self.builder.CreateNumpyVector(arr)
        return self.vectors[key]

    def quantization(self, q):
        if q.details is not None:  # custom details: not ours to share
            return q.Pack(self.builder)
        fields = [
            ("min", np.float32),
            ("max", np.float32),
            ("scale", np.float32),
            ("zeroPoint", np.int64),
        ]
        key = tuple(
            None if getattr(q, f) is None else np.asarray(getattr(q, f), dt).tobytes()
            for f, dt in fields
        ) + (q.detailsType, q.quantizedDimension)
        if key in self.tables:
            return self.tables[key]
        b = self.builder
        offs = {f: self.vector(getattr(q, f), dt) for f, dt in fields if getattr(q, f) is not None}
        schema.QuantizationParametersStart(b)
        if "min" in offs:
            schema.QuantizationParametersAddMin(b, offs["min"])
        if "max" in offs:
            schema.QuantizationParametersAddMax(b, offs["max"])
        if "scale" in offs:
            schema.QuantizationParametersAddScale(b, offs["scale"])
        if "zeroPoint" in offs:
            schema.QuantizationParametersAddZeroPoint(b, offs["zeroPoint"])
        schema.QuantizationParametersAddDetailsType(b, q.detailsType)
        schema.QuantizationParametersAddQuantizedDimension(b, q.quantizedDimension)
        self.tables[key] = schema.QuantizationParametersEnd(b)
        return self.tables[key]


class _SharedTensor:
    """TensorT.Pack with shape, shape_signature and quantization shared through _Shared."""

    def __init__(self, tensor, shared):
        self.t = tensor
        self.shared = shared

    def Pack(self, builder):
        t, sh = self.t, self.shared
        if t.sparsity is not None or t.variantTensors is not None:
            return t.Pack(builder)
        shape = sh.vector(t.shape, np.int32) if t.shape is not None else None
        name = builder.CreateString(t.name) if t.name is not None else None
        quant = sh.quantization(t.quantization) if t.quantization is not None else None
        signature = None
        if t.shapeSignature is not None:
            signature = sh.vector(t.shapeSignature, np.int32)
        schema.TensorStart(builder)
        if shape is not None:
            schema.TensorAddShape(builder, shape)
        schema.TensorAddType(builder, t.type)
        schema.TensorAddBuffer(builder, t.buffer)
        if name is not None:
            schema.TensorAddName(builder, name)
        if quant is not None:
            schema.TensorAddQuantization(builder, quant)
        schema.TensorAddIsVariable(builder, t.isVariable)
        if signature is not None:
            schema.TensorAddShapeSignature(builder, signature)
        schema.TensorAddHasRank(builder, t.hasRank)
        schema.TensorAddExternalBuffer(builder, t.externalBuffer)
        return schema.TensorEnd(builder)


class _SharedEmptyBuffer:
    """One empty Buffer table for every data-less entry left in the buffer list."""

    def __init__(self, cache):
        self.cache = cache

    def Pack(self, builder):
        if "empty" not in self.cache:
            schema.BufferStart(builder)
            self.cache["empty"] = schema.BufferEnd(builder)
        return self.cache["empty"]


def write_model(model, compact=True) -> bytes:
    """Serialize a ModelT; constant data 16-byte aligned.

    compact (the default for every export): data-less tensors share buffer 0, identical
    constant buffers are stored once, and vectors/quantization tables with identical contents
    (notably the per-channel zero-point vectors, all zeros) are shared. Lossless: every
    tensor reads exactly the values it read before.
    """
    builder = flatbuffers.Builder(1 << 20)
    saved_buffers = model.buffers
    saved_tensors = [(g, g.tensors) for g in (model.subgraphs or [])]
    saved_meta = [(m, m.buffer) for m in (model.metadata or [])]
    saved_meta_buffer = model.metadataBuffer
    saved_tensor_buffers = [(t, t.buffer) for g, ts in saved_tensors for t in (ts or [])]
    try:
        if compact:
            buffers, remap = _remap_buffers(model)
            for t, index in saved_tensor_buffers:
                t.buffer = remap[index]
            for m, index in saved_meta:
                m.buffer = remap[index]
            if model.metadataBuffer is not None:
                model.metadataBuffer = [remap[int(i)] for i in saved_meta_buffer]
            shared = _Shared(builder)
            for g, ts in saved_tensors:
                g.tensors = [_SharedTensor(t, shared) for t in ts or []]
            empty = {}
            model.buffers = [
                _AlignedBuffer(b)
                if (b.data is not None and len(b.data)) or b.offset or b.size
                else _SharedEmptyBuffer(empty)
                for b in buffers
            ]
        else:
            model.buffers = [_AlignedBuffer(b) for b in saved_buffers]
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    finally:
        model.buffers = saved_buffers
        model.metadataBuffer = saved_meta_buffer
        for g, ts in saved_tensors:
            g.tensors = ts
        for m, index in saved_meta:
            m.buffer = index
        for t, index in saved_tensor_buffers:
            t.buffer = index
    return bytes(builder.Output())


def strip_internal_names(graph, points=()):
    """Drop the converter's names of intermediate tensors; a quantization point's tensor keeps
    the point's short name (`h0/q`, `h1/mean`, ...).

    The converter names each intermediate after the TensorFlow ops it came from (2.7 KB of
    flash in the reference model, ~8 % of the firmware's headroom); no runtime reads them. The
    inputs' and outputs' names are the model's contract (docs/model_signature.md), and the point
    names (~0.3 KB) let the quantization debugger and `quant_ranges.ranges_from_model` find
    each int8 point in the finished export.
    """
    from ..quant_ranges import tensor_point

    keep = set(graph.inputs) | set(graph.outputs)
    named = {}  # op output -> point; no aliases, which would give the point a second tensor
    for op in graph.operators:
        name = tensor_name(graph.tensors[op.outputs[0]]) if points else ""
        point = tensor_point(name, points, aliases=False) if name else None
        if point is not None:
            named[op.outputs[0]] = point
    for index, tensor in enumerate(graph.tensors):
        if index not in keep:
            tensor.name = named[index].encode() if index in named else None


def finalize(
    data: bytes, input_names, output_names, tied_pairs, metadata: dict, points=()
) -> bytes:
    """Name the subgraph's inputs/outputs (in converter order), tie quantization, add metadata.

    tied_pairs: (input_name, output_name) pairs whose int8 scale/zero point must be identical
    (a cache input and the new rows the caller writes into it). The input takes the output's
    parameters; kernels derive their multipliers from tensor scales at Prepare time, so the
    graph stays consistent, and the bytes the step emits can be stored in the cache unchanged.
    points: the quantization points whose tensors keep a name (strip_internal_names).
    """
    model = read_model(data)
    if len(model.subgraphs) != 1:
        raise ValueError(f"expected 1 subgraph, converter produced {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    if len(graph.inputs) != len(input_names) or len(graph.outputs) != len(output_names):
        raise ValueError(
            f"converter produced {len(graph.inputs)} inputs / {len(graph.outputs)} outputs, "
            f"expected {len(input_names)} / {len(output_names)}"
        )
    strip_internal_names(graph, set(points))
    for index, name in zip(graph.inputs, input_names):
        graph.tensors[index].name = name.encode()
    for index, name in zip(graph.outputs, output_names):
        graph.tensors[index].name = name.encode()
    by_name = {tensor_name(graph.tensors[i]): i for i in list(graph.inputs) + list(graph.outputs)}
    for input_name, output_name in tied_pairs:
        src = graph.tensors[by_name[output_name]]
        dst = graph.tensors[by_name[input_name]]
        if src.type != schema.TensorType.INT8 or dst.type != schema.TensorType.INT8:
            raise ValueError(f"can only tie int8 tensors, got {input_name}/{output_name}")
        dst.quantization.scale = np.array(src.quantization.scale, dtype=np.float32)
        dst.quantization.zeroPoint = np.array(src.quantization.zeroPoint, dtype=np.int64)
    # signature defs would still carry the converter's names; our tensor names are the contract
    model.signatureDefs = []
    blob = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(blob, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()]
    model.metadata.append(entry)
    return write_model(model)


def micro_encoding(data: bytes) -> bytes:
    """The model as the C arrays embed it: each per-channel quantized tensor whose zero points
    are all 0 (the int8 weights) stores one zero point instead of one per channel, and only the
    inputs and outputs keep their names (the point names serve Python tools, not the chip).

    TFLite Micro and the C runtime read a single zero point as every channel's (TFLite Micro's
    space-saving form for weights); LiteRT refuses it, so the .tflite files keep one per
    scale. 3.5 KB of the reference model, of a firmware flash the model nearly fills.
    """
    model = read_model(data)
    for graph in model.subgraphs:
        strip_internal_names(graph)
        for tensor in graph.tensors:
            q = tensor.quantization
            if q is None or q.scale is None or len(q.scale) <= 1 or q.zeroPoint is None:
                continue
            if len(q.zeroPoint) == len(q.scale) and not np.any(q.zeroPoint):
                q.zeroPoint = np.zeros(1, np.int64)
    return write_model(model)


def read_metadata(data: bytes):
    """The pico_gpt JSON metadata of an exported model, or None for a foreign .tflite."""
    model = schema.Model.GetRootAsModel(bytearray(data), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None


def _quant(tensor):
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    return {"scale": float(q.scale[0]), "zero_point": int(q.zeroPoint[0])}


def describe(data: bytes):
    """Inputs/outputs (name, shape, dtype, quantization), op histogram, MACs and weight bytes."""
    model = read_model(data)
    graph = model.subgraphs[0]

    def io(index):
        t = graph.tensors[index]
        return {
            "name": tensor_name(t),
            "shape": [int(d) for d in t.shape],
            "dtype": TYPE_NAMES[t.type].lower(),
            "quantization": _quant(t),
        }

    ops = {}
    macs = 0
    for op in graph.operators:
        name = op_name(model, op)
        ops[name] = ops.get(name, 0) + 1
        shapes = [list(graph.tensors[i].shape) for i in op.inputs if i >= 0]
        out_shape = list(graph.tensors[op.outputs[0]].shape)
        if name == "FULLY_CONNECTED":
            # output elements x input depth
            macs += int(np.prod(out_shape)) * int(shapes[1][-1])
        elif name == "BATCH_MATMUL":
            opts = op.builtinOptions
            lhs = shapes[0]
            depth = lhs[-2] if getattr(opts, "adjX", False) else lhs[-1]
            macs += int(np.prod(out_shape)) * int(depth)
    const_bytes = sum(len(b.data) for b in model.buffers if b.data is not None)
    return {
        "inputs": [io(i) for i in graph.inputs],
        "outputs": [io(i) for i in graph.outputs],
        "ops": dict(sorted(ops.items())),
        "num_ops": len(graph.operators),
        "macs_per_invoke": macs,
        "constant_bytes": const_bytes,
    }


def per_channel_quantization(data: bytes):
    """Every tensor quantized per channel: its index, channel count, zero points, and the byte
    offset of its zero_point vector in `data` (tensors with equal offsets share one vector)."""
    buf = bytearray(data)
    base = np.frombuffer(buf, np.uint8).ctypes.data
    graph = schema.Model.GetRootAsModel(buf, 0).Subgraphs(0)
    found = []
    for i in range(graph.TensorsLength()):
        q = graph.Tensors(i).Quantization()
        if q is None or q.ScaleLength() <= 1:
            continue
        # a view into buf (the generated reader does not copy), so its address gives the offset
        zero_points = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(0, np.int64)
        found.append(
            {
                "tensor": i,
                "channels": q.ScaleLength(),
                "zero_points": zero_points,
                "zero_point_offset": zero_points.ctypes.data - base if len(zero_points) else None,
            }
        )
    return found
