"""onnxruntime sessions from verified model bytes, and the in-memory graph edits some models need.

onnxruntime writes a device id under ``~/.cache/Microsoft/`` and sends usage events unless
``ORT_DISABLE_TELEMETRY=1`` is in the environment when it is imported. :func:`ort_session` forces
that value (a user's ``0`` is overridden: photoguard never phones home) before its import, as
``photoguard/__init__.py`` does for any other importer; every onnxruntime session in photoguard is
made here.

:func:`fold_weights` turns an ONNX file whose weights are stored block-quantised (int8
``DequantizeLinear`` with ``block_size``, then ``Reshape``, feeding each ``Conv``/``Gemm``) into
the same graph with those weights as float32 constants, drops graph inputs no node reads
(onnxruntime would ask for them in every feed) and can make the batch dimension symbolic. The
edit is deterministic and happens in memory, on bytes the caller has already checked against a
pinned sha256; nothing is written to disk.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from photoguard.photo.detect.base import ModelError

os.environ["ORT_DISABLE_TELEMETRY"] = "1"


def ort_session(data: bytes, threads: int, what: str, *, spin: bool = True) -> Any:
    """An onnxruntime CPU session for model ``data`` with ``threads`` intra-op threads.

    Inputs change size with every photo, text line or face count: onnxruntime's arena and memory
    patterns would keep the largest buffers of each shape for the life of the service (measured:
    +630 MB over 8 school photos for text finding), so plain allocations are used and returned
    after each run. ``what`` names the model in the ``ModelError`` raised when it cannot load;
    ``spin=False`` makes idle intra-op threads sleep at once instead of spinning for work."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(f"onnxruntime is not installed (needed for {what})") from exc
    ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load {what} model: {exc}") from exc


def _dequantized(x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """``DequantizeLinear`` (opset 21) of a constant: ``(x - zero) * scale``, where with ``block``
    > 0 each scale/zero point covers ``block`` consecutive elements along ``axis``."""
    xf = x.astype(np.float32)
    s = scale.astype(np.float32)
    z = zero.astype(np.float32) if zero is not None else np.zeros_like(s)
    if block > 0:
        axis %= x.ndim
        s = np.repeat(s, block, axis=axis).take(np.arange(x.shape[axis]), axis=axis)
        z = np.repeat(z, block, axis=axis).take(np.arange(x.shape[axis]), axis=axis)
    elif s.ndim == 1 and x.ndim > 1:  # per-axis
        shape = [1] * x.ndim
        shape[axis % x.ndim] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return np.asarray((xf - z) * s, dtype=np.float32)


def fold_weights(data: bytes, *, batch: str | None = None) -> bytes:
    """``data`` with constant ``DequantizeLinear`` (+ constant ``Reshape``) folded to float32
    initializers and unused graph inputs dropped; with ``batch``, the first dimension of every
    graph input and output becomes that symbolic name (the caller checks the graph accepts it).
    Raises ``ModelError`` when ``onnx`` is missing or the graph cannot be read."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise ModelError("the onnx package is not installed") from exc
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ModelError(f"cannot read the ONNX graph: {exc}") from exc
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.domain in ("", "ai.onnx") and all(
            i in inits for i in node.input if i
        ):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            arrays = [numpy_helper.to_array(inits[i]) if i else None for i in node.input]
            zero = arrays[2] if len(arrays) > 2 else None
            if arrays[0] is None or arrays[1] is None:
                raise ModelError("a DequantizeLinear node without data or scale")
            folded[node.output[0]] = _dequantized(
                arrays[0], arrays[1], zero, int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
            )
        elif node.op_type == "Reshape" and node.input[0] in folded and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]])
            folded[node.output[0]] = folded.pop(node.input[0]).reshape(shape)
        else:
            kept.append(node)
    read = {i for n in kept for i in n.input if i} | {o.name for o in graph.output}
    known = set(inits) | set(folded) | {o for n in kept for o in n.output} | {i.name for i in graph.input}
    if not read <= known:  # cannot happen for a valid graph; refused rather than half-edited
        raise ModelError("the ONNX graph could not be folded")
    new_inits = [t for t in graph.initializer if t.name in read]
    new_inits += [numpy_helper.from_array(arr, name) for name, arr in folded.items() if name in read]
    names = {t.name for t in new_inits}
    inputs = [i for i in graph.input if i.name in read and i.name not in names]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    del graph.input[:]
    graph.input.extend(inputs)
    if batch is not None:
        del graph.value_info[:]  # intermediate shapes recorded for batch 1 would contradict
        for vi in (*graph.input, *graph.output):
            dims = vi.type.tensor_type.shape.dim
            if len(dims):
                dims[0].Clear()
                dims[0].dim_param = batch
    return bytes(model.SerializeToString())
