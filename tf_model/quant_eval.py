"""The quantization debugger: how closely each int8 tensor of a step export tracks its float value.

    from tf_model.quant_eval import tensor_agreement
    rows = tensor_agreement(keras_model, tflite_bytes, windows)   # windows: (N, T) int
    worst = min(rows, key=lambda r: r["snr_db"])                  # {"point", "snr_db", "cosine"}

The export report (tf_model/export/validate.py) lists these rows; docs/export.md "The
quantization debugger" explains how to read them. Whole-split loss, top-1 agreement and KL in
the chip's arithmetic are tf_eval.py --tflite's job (tf_model/chip.py, evaluate_text).
"""

import numpy as np


def _step_view(point, full, t):
    """The slice of a full-sequence float value (batch of 1) that the step model's tensor for
    `point` holds at position t, flattened in the step tensor's element order."""
    kind = point.rsplit("/", 1)[-1]
    if kind in ("y_cache", "y_new", "y"):
        return full[0, :, t, :].ravel()  # (nh, hs)
    if kind == "scores":
        return full[0, :, t, : t + 1].ravel()  # (nh, t+1): cache rows j < t, then the new row
    return full[0, t].ravel()  # (1, N) rows and (1, 1) row scalars


def _step_scores(raw, t, T):
    """The scores concat (nh, 1, T+1) -> its visible entries, in _step_view's order."""
    return np.concatenate([raw[:, 0, :t], raw[:, 0, T:]], axis=-1).ravel()


def _probe_model(data, points):
    """A copy of the step export whose point tensors are extra outputs (LiteRT keeps outputs;
    no debugging-only interpreter option needed). Returns (bytes, {point: (output name, scale,
    zero point)})."""
    from .export.flatbuffer import read_model, tensor_name, write_model
    from .quant_ranges import tensor_point

    model = read_model(data)
    graph = model.subgraphs[0]
    found, extra = {}, []
    for op in graph.operators:
        index = op.outputs[0]
        t = graph.tensors[index]
        name = tensor_name(t)
        point = tensor_point(name, points)
        # one tensor per point: for the scores, the concat the softmax reads
        if (
            point is None
            or point in found
            or (point.endswith("/scores") and not name.endswith("/scores"))
        ):
            continue
        q = t.quantization
        found[point] = (name, float(q.scale[0]), int(q.zeroPoint[0]))
        if index not in graph.outputs:
            extra.append(index)
    graph.outputs = np.array(list(graph.outputs) + extra, np.int32)
    return write_model(model), found


def tensor_agreement(model, data, windows, progress=None):
    """Per int8 tensor of a step export: SNR (dB) and cosine similarity of its dequantized
    values against the float model's, teacher-forced over `windows` (N, T) from position 0.

    Errors accumulate as on the chip: each tensor is computed from int8 inputs. The tensors come
    from LiteRT (the TFLite Micro interpreter exposes only outputs); its int8 results differ from
    TFLite Micro's by a rounding step in places, which moves these figures little.
    Returns a list of {"point", "snr_db", "cosine"} in compute order."""
    from .export.tflite_step import load_exported
    from .qat import FakeQuantPicoGPT, point_names

    names = point_names(model.config)
    probe, tensors = _probe_model(data, set(names))
    runner = load_exported(probe, backend="litert")
    if runner.kind != "step":
        raise ValueError("tensor_agreement reads the KV-cache step model's tensors")
    float_forward = FakeQuantPicoGPT(model)
    sums = {p: np.zeros(4) for p in tensors}  # sum f^2, sum (f-q)^2, sum f*q, sum q^2
    T = windows.shape[1]
    for window in windows:
        _, values = float_forward(window[None, :], quantize=False, observe=True)
        values = {p: np.asarray(v, np.float64) for p, v in values.items()}
        runner.reset()
        for t, token in enumerate(window):
            runner.step(int(token), t)
            for point, (name, scale, zero_point) in tensors.items():
                q = (runner.last_raw[name].astype(np.float64) - zero_point) * scale
                q = _step_scores(q, t, T) if point.endswith("/scores") else q.ravel()
                f = _step_view(point, values[point], t)
                sums[point] += [f @ f, (f - q) @ (f - q), f @ q, q @ q]
        if progress:
            progress.update(1)
    rows = []
    for point in (n for n in names if n in tensors):
        signal, noise, dot, quantized = sums[point]
        rows.append(
            {
                "point": point,
                "snr_db": float(10 * np.log10(signal / noise)) if noise > 0 else float("inf"),
                "cosine": float(dot / np.sqrt(signal * quantized)) if signal * quantized else 1.0,
            }
        )
    return rows
