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


def write_model(model) -> bytes:
    buffers = model.buffers
    model.buffers = [_AlignedBuffer(b) for b in buffers]
    try:
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    finally:
        model.buffers = buffers
    return bytes(builder.Output())


def finalize(data: bytes, input_names, output_names, tied_pairs, metadata: dict) -> bytes:
    """Name the subgraph's inputs/outputs (in converter order), tie quantization, add metadata.

    tied_pairs: (input_name, output_name) pairs whose int8 scale/zero point must be identical
    (a cache input and the new rows the caller writes into it). The input takes the output's
    parameters; kernels derive their multipliers from tensor scales at Prepare time, so the
    graph stays consistent, and the bytes the step emits can be stored in the cache unchanged.
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
