"""Golden vectors for the C runtime's kernel tests, produced by the TFLite Micro interpreter.

Builds small int8 models with TensorFlow's converter (one op, or a few), feeds them
seeded random int8 inputs, records TFLite Micro's outputs, and writes one .pgtv file per
op family into the output directory. The C test runner (test_golden.c) runs the same
model bytes through cim_runtime and requires bit-identical outputs.

Usage:
    uv run python cim_runtime/tests/gen_kernel_golden.py --out build/host-test/golden

File format (.pgtv, little-endian):
    b"PGTV" u32 version=1, u32 n_cases, then per case:
      u32 len + name bytes, u32 len + model bytes, u32 n_invocations,
      per invocation: u32 n_inputs  + (u32 input index,  u32 nbytes, bytes) each,
                      u32 n_outputs + (u32 output index, u32 nbytes, bytes) each.
Everything is seeded, so reruns produce identical files.
"""

import argparse
import os
import struct
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from tflite_micro.python.tflite_micro import runtime as tflm

INVOCATIONS = 3


def convert(fn, input_specs, rng, int8_io=True, per_channel_dense=True, calib_fn=None):
    """Converts a tf.function to a full-int8 TFLite model calibrated on random data."""
    concrete = tf.function(fn).get_concrete_function(
        *[tf.TensorSpec(shape, dtype) for shape, dtype in input_specs]
    )

    def representative():
        for _ in range(32):
            yield [
                calib_fn(shape, rng)
                if (calib_fn and dtype == tf.float32)
                else (
                    rng.standard_normal(shape).astype(np.float32)
                    if dtype == tf.float32
                    else rng.integers(0, 8, size=shape).astype(np.int32)
                )
                for shape, dtype in input_specs
            ]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    if not per_channel_dense:
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()


def run_tflm(model, rng, invocations=INVOCATIONS, input_fn=None):
    """Runs the model in TFLite Micro on seeded random inputs; returns the invocations."""
    interp = tflm.Interpreter.from_bytes(bytes(model), arena_size=len(model) * 10 + 256 * 1024)
    records = []
    n_in = len(model_inputs(model))
    for inv in range(invocations):
        inputs = []
        for i in range(n_in):
            det = interp.get_input_details(i)
            shape, dtype = tuple(det["shape"]), det["dtype"]
            if input_fn is not None:
                arr = input_fn(i, shape, dtype, rng, inv)
            elif dtype == np.int8:
                arr = rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
            elif dtype == np.float32:
                arr = rng.standard_normal(shape).astype(np.float32)
            else:
                arr = rng.integers(0, 8, size=shape).astype(dtype)
            interp.set_input(arr, i)
            inputs.append((i, np.ascontiguousarray(arr).tobytes()))
        interp.invoke()
        outputs = []
        for o in range(len(model_outputs(model))):
            out = interp.get_output(o)
            outputs.append((o, np.ascontiguousarray(out).tobytes()))
        records.append((inputs, outputs))
    return records


def model_inputs(model):
    return tf.lite.Interpreter(model_content=model).get_input_details()


def model_outputs(model):
    return tf.lite.Interpreter(model_content=model).get_output_details()


def op_names(model):
    interp = tf.lite.Interpreter(model_content=model)
    return sorted({d["op_name"] for d in interp._get_ops_details()})


def write_pgtv(path, cases):
    with open(path, "wb") as f:
        f.write(b"PGTV" + struct.pack("<II", 1, len(cases)))
        for name, model, records in cases:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<I", len(model)) + bytes(model))
            f.write(struct.pack("<I", len(records)))
            for inputs, outputs in records:
                for group in (inputs, outputs):
                    f.write(struct.pack("<I", len(group)))
                    f.writelines(struct.pack("<II", idx, len(data)) + data for idx, data in group)


# ---- model families, one .pgtv each -----------------------------------------------


def dense_fn(weights, relu):
    w = tf.constant(weights)

    def fn(x):
        y = tf.matmul(x, w) if len(x.shape) == 2 else tf.einsum("...k,kn->...n", x, w)
        return tf.nn.relu(y) if relu else y

    return fn


def bind(fn, **kwargs):
    """fn with keyword arguments bound; tf.function must not see them as inputs."""
    return lambda *args: fn(*args, **kwargs)


def fully_connected(rng):
    cases = []
    for name, (shape, n_out, relu, per_channel) in {
        "fc_1x128_to_384": ((1, 1, 128), 384, False, True),
        "fc_4x32_to_16_relu": ((4, 32), 16, True, True),
        "fc_2x3x24_to_10_per_tensor": ((2, 3, 24), 10, False, False),
        "fc_1x256_to_65": ((1, 256), 65, False, True),
    }.items():
        fn = dense_fn(rng.standard_normal((shape[-1], n_out)).astype(np.float32) * 0.1, relu)
        model = convert(fn, [(shape, tf.float32)], rng, per_channel_dense=per_channel)
        cases.append((name, model, run_tflm(model, rng)))
    # With a bias (Dense with use_bias=True).
    w = tf.constant(rng.standard_normal((32, 8)).astype(np.float32) * 0.2)
    b = tf.constant(rng.standard_normal((8,)).astype(np.float32))
    model = convert(lambda x: tf.matmul(x, w) + b, [((3, 32), tf.float32)], rng)
    cases.append(("fc_bias", model, run_tflm(model, rng)))
    # Weight row sums beyond int16 (all weights near the channel maximum, K = 300): the
    # runtime's int32-offset fallback for the zero-point correction.
    w = tf.constant(0.5 + 0.01 * np.abs(rng.standard_normal((300, 12))).astype(np.float32))
    model = convert(lambda x: tf.matmul(x, w), [((2, 300), tf.float32)], rng)
    cases.append(("fc_2x300_large_row_sums", model, run_tflm(model, rng)))
    return cases


def batch_matmul(rng):
    cases = []
    for name, (sa, sb, ta, tb) in {
        "bmm_qk_adj_y": ((1, 2, 1, 64), (1, 2, 128, 64), False, True),
        "bmm_av": ((1, 2, 1, 128), (1, 2, 128, 64), False, False),
        "bmm_square": ((1, 2, 16, 16), (1, 2, 16, 16), False, False),
        "bmm_adj_x": ((2, 8, 5), (2, 8, 6), True, False),
        "bmm_broadcast": ((3, 4, 7), (1, 7, 5), False, False),
    }.items():
        model = convert(
            bind(
                lambda a, b, ta, tb: tf.matmul(a, b, transpose_a=ta, transpose_b=tb), ta=ta, tb=tb
            ),
            [(sa, tf.float32), (sb, tf.float32)],
            rng,
        )
        cases.append((name, model, run_tflm(model, rng)))
    return cases


def binary(rng):
    cases = []
    ops = {
        "add": tf.add,
        "sub": tf.subtract,
        "mul": tf.multiply,
        "squared_difference": tf.math.squared_difference,
    }
    for opname, op in ops.items():
        for shape_name, (sa, sb) in {
            "same": ((1, 4, 32), (1, 4, 32)),
            "bcast": ((1, 4, 32), (1, 1, 32)),
            "bcast2": ((2, 1, 8), (1, 3, 1)),
        }.items():
            fn = bind(lambda a, b, op: op(a, b * 0.5), op=op)  # different input scales
            model = convert(fn, [(sa, tf.float32), (sb, tf.float32)], rng)
            cases.append((f"{opname}_{shape_name}", model, run_tflm(model, rng)))
    # A constant operand and a fused relu.
    c = tf.constant(rng.standard_normal((32,)).astype(np.float32))
    model = convert(lambda a: tf.nn.relu(a + c), [((1, 4, 32), tf.float32)], rng)
    cases.append(("add_const_relu", model, run_tflm(model, rng)))
    return cases


def softmax(rng):
    cases = []
    for name, (shape, scale) in {
        "softmax_2x1x128": ((1, 2, 1, 128), 4.0),
        "softmax_4x16": ((4, 16), 1.0),
        "softmax_wide_range": ((3, 65), 20.0),
    }.items():
        fn = bind(lambda x, scale: tf.nn.softmax(x * scale, axis=-1), scale=scale)

        def calib(shape, rng):
            return rng.standard_normal(shape).astype(np.float32)

        model = convert(fn, [(shape, tf.float32)], rng, calib_fn=calib)
        cases.append((name, model, run_tflm(model, rng)))
    return cases


def mean(rng):
    cases = []
    for name, (shape, axis) in {
        "mean_last": ((1, 1, 128), -1),
        "mean_last_rows": ((2, 3, 24), -1),
        "mean_middle": ((2, 5, 3), 1),
        "mean_two_axes": ((2, 4, 6), (0, 2)),
    }.items():
        model = convert(
            bind(
                lambda x, axis: tf.reduce_mean(x * 1.5 + 0.3, axis=axis, keepdims=True), axis=axis
            ),
            [(shape, tf.float32)],
            rng,
        )
        cases.append((name, model, run_tflm(model, rng)))
    return cases


def rsqrt(rng):
    cases = []

    def calib(shape, rng):
        return np.abs(rng.standard_normal(shape)).astype(np.float32) * 3 + 0.01

    def inputs(i, shape, dtype, rng, inv):
        # Every int8 value at or above the zero point (negative reals are an error).
        vals = np.arange(-128, 128, dtype=np.int64)
        return (
            np.resize(rng.permutation(vals), shape).astype(np.int8)
            if inv == 0
            else rng.integers(-128, 128, size=shape).astype(np.int8)
        )

    model = convert(lambda x: tf.math.rsqrt(x), [((1, 256), tf.float32)], rng, calib_fn=calib)
    interp = tf.lite.Interpreter(model_content=model)
    zp = interp.get_input_details()[0]["quantization"][1]

    def valid_inputs(i, shape, dtype, rng, inv):
        return np.clip(inputs(i, shape, dtype, rng, inv), zp, 127).astype(np.int8)

    cases.append(("rsqrt", model, run_tflm(model, rng, input_fn=valid_inputs)))
    return cases


def shapes(rng):
    cases = []
    table = {
        "reshape_transpose": (
            ((1, 1, 384),),
            lambda x: tf.transpose(tf.reshape(x * 1.0, (1, 1, 3, 2, 64)), (2, 0, 3, 1, 4)),
        ),
        "strided_slice": (((3, 2, 1, 64),), lambda x: x[1] + 0.0),
        "strided_slice_steps": (((4, 10, 6),), lambda x: x[1:4, ::2, -3:] + 0.0),
        "concatenation": (((1, 2, 5, 64), (1, 2, 1, 64)), lambda a, b: tf.concat([a, b], axis=2)),
    }
    for name, (shape_list, fn) in table.items():
        model = convert(fn, [(s, tf.float32) for s in shape_list], rng)
        cases.append((name, model, run_tflm(model, rng)))
    # GATHER: int32 ids into a constant int8 embedding (the token embedding).
    emb = tf.constant(rng.standard_normal((65, 128)).astype(np.float32))

    def gather_fn(ids):
        return tf.gather(emb, ids) * 1.0

    def ids_fn(i, shape, dtype, rng, inv):
        return rng.integers(0, 65, size=shape).astype(np.int32)

    model = convert(gather_fn, [((1, 3), tf.int32)], rng)
    cases.append(("gather_embedding", model, run_tflm(model, rng, input_fn=ids_fn)))
    return cases


def quantize(rng):
    # Float in/out: QUANTIZE at the start, DEQUANTIZE at the end.
    w = tf.constant(rng.standard_normal((16, 8)).astype(np.float32) * 0.3)
    model = convert(lambda x: tf.matmul(x, w), [((2, 16), tf.float32)], rng, int8_io=False)
    return [("quantize_dequantize_float_io", model, run_tflm(model, rng))]


def layernorm_block(rng):
    """A post-norm block fragment: the op mix the exported model uses for LayerNorm."""
    gamma = tf.constant(rng.uniform(0.5, 1.5, (64,)).astype(np.float32))

    def fn(x):
        mean = tf.reduce_mean(x, -1, keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(x, mean), -1, keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-5) * gamma

    model = convert(fn, [((1, 2, 64), tf.float32)], rng)
    return [("layernorm", model, run_tflm(model, rng))]


def mask(rng):
    """The KV-cache model's causal mask: LESS(range, pos) -> SELECT_V2(cond, scores, const)."""
    T = 16

    def fn(scores, pos):
        cond = tf.range(T, dtype=tf.int32) < pos  # (T,) visible cache rows
        return tf.nn.softmax(tf.where(cond, scores, tf.constant(-8.0)), axis=-1)

    def inputs(i, shape, dtype, rng, inv):
        if dtype == np.int32:
            return np.array([[3, 1, T - 1][inv]], dtype=np.int32).reshape(shape)
        return rng.integers(-128, 128, size=shape).astype(np.int8)

    model = convert(fn, [((1, 2, 1, T), tf.float32), ((1,), tf.int32)], rng)
    cases = [("causal_mask_softmax", model, run_tflm(model, rng, input_fn=inputs))]

    # The step model's chain, which the runtime runs as one fused op: masked cache scores,
    # the new token's score appended, softmax. The condition keeps a prefix (the compacted
    # row) or, over a reversed range, a suffix (the general path); positions 0 and T mask
    # everything and nothing.
    def chain(positions):
        def fn(scores, new, pos):
            cond = positions < pos
            masked = tf.where(cond, scores, tf.constant(-8.0))
            return tf.nn.softmax(tf.concat([masked, new], axis=-1), axis=-1)

        return fn

    def chain_inputs(i, shape, dtype, rng, inv):
        if dtype == np.int32:
            return np.array([[0, 5, T][inv]], dtype=np.int32).reshape(shape)
        return rng.integers(-128, 128, size=shape).astype(np.int8)

    for name, positions in (("prefix", np.arange(T)), ("suffix", np.arange(T)[::-1])):
        fn = chain(tf.constant(positions, dtype=tf.int32))
        specs = [((1, 2, 1, T), tf.float32), ((1, 2, 1, 1), tf.float32), ((1,), tf.int32)]
        model = convert(fn, specs, rng)
        cases.append(
            (f"masked_concat_softmax_{name}", model, run_tflm(model, rng, input_fn=chain_inputs))
        )
    return cases


FAMILIES = {
    "fully_connected": fully_connected,
    "batch_matmul": batch_matmul,
    "binary": binary,
    "softmax": softmax,
    "mean": mean,
    "rsqrt": rsqrt,
    "shapes": shapes,
    "quantize": quantize,
    "layernorm": layernorm_block,
    "mask": mask,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the .pgtv files")
    parser.add_argument("--only", nargs="*", help="families to generate (default: all)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for family, make in FAMILIES.items():
        if args.only and family not in args.only:
            continue
        rng = np.random.default_rng(sum(map(ord, family)))  # stable per family
        cases = make(rng)
        write_pgtv(os.path.join(args.out, f"{family}.pgtv"), cases)
        # The models double as the fuzzer's seed corpus.
        os.makedirs(os.path.join(args.out, "corpus"), exist_ok=True)
        for name, model, _ in cases:
            with open(os.path.join(args.out, "corpus", f"{name}.tflite"), "wb") as f:
                f.write(bytes(model))
        ops = sorted({op for _, m, _ in cases for op in op_names(m)})
        print(f"{family}: {len(cases)} cases, ops {', '.join(ops)}", file=sys.stderr)


if __name__ == "__main__":
    main()
