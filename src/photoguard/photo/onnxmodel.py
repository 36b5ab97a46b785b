"""onnxruntime sessions from verified model bytes, and the in-memory graph edits some models need.

onnxruntime writes a device id under ``~/.cache/Microsoft/`` and sends usage events unless
``ORT_DISABLE_TELEMETRY=1`` is in the environment when it is imported. :func:`ort_session` forces
that value (a user's ``0`` is overridden: photoguard never phones home) before its import, as
``photoguard/__init__.py`` does for any other importer; every onnxruntime session in photoguard is
made here.

:func:`prepare_graph` drops graph inputs no node reads (onnxruntime would ask for them in every
feed) and can make the batch dimension symbolic. The edit is deterministic and happens in memory,
on bytes the caller has already checked against a pinned sha256; nothing is written to disk.
Weights stored block-quantised (int8 ``DequantizeLinear`` with ``block_size``, then ``Reshape``,
feeding each ``Conv``/``Gemm``) are folded to float32 by onnxruntime itself at load
(``ort_session(fold_quantized=True)``): measured against folding them here with numpy, the same
features and speed, and ~30 MB less peak memory (the float32 graph is never serialised).
"""

from __future__ import annotations

import os
from typing import Any

from photoguard.photo.detect.base import ModelError

os.environ["ORT_DISABLE_TELEMETRY"] = "1"


def ort_session(data: bytes, threads: int, what: str, *, spin: bool = True, fold_quantized: bool = False) -> Any:
    """An onnxruntime CPU session for model ``data`` with ``threads`` intra-op threads.

    Inputs change size with every photo, text line or face count: onnxruntime's arena and memory
    patterns would keep the largest buffers of each shape for the life of the service (measured:
    +630 MB over 8 school photos for text finding), so plain allocations are used and returned
    after each run. ``what`` names the model in the ``ModelError`` raised when it cannot load;
    ``spin=False`` makes idle intra-op threads sleep at once instead of spinning for work;
    ``fold_quantized=True`` treats ``DequantizeLinear`` as an ordinary operator, so that weights
    stored quantised are turned to float32 once, at load, by constant folding (instead of being
    kept for quantised kernels: a network whose weights only are quantised then runs in float32)."""
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
    if fold_quantized:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load {what} model: {exc}") from exc


def prepare_graph(data: bytes, *, batch: str | None = None) -> bytes:
    """``data`` with the graph inputs no node reads dropped; with ``batch``, the first dimension of
    every graph input and output becomes that symbolic name (the caller checks the graph accepts
    it: a ``Reshape`` with a fixed batch would not). Raises ``ModelError`` when ``onnx`` is missing
    or the graph cannot be read."""
    try:
        import onnx
    except ImportError as exc:
        raise ModelError("the onnx package is not installed") from exc
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ModelError(f"cannot read the ONNX graph: {exc}") from exc
    graph = model.graph
    read = {i for n in graph.node for i in n.input if i}
    stored = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name in read and i.name not in stored]
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
