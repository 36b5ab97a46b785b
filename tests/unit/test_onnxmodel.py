"""In-memory ONNX edits (unused inputs dropped, symbolic batch) and onnxruntime's folding of
block-quantised weights, on a tiny graph built here; the shared session helper."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from photoguard.photo.detect.base import ModelError
from photoguard.photo.onnxmodel import ort_session, prepare_graph

RNG = np.random.default_rng(5)
Q = RNG.integers(-128, 128, size=(4, 10), dtype=np.int8)  # 4 rows, blocks of 4 along axis 1: 3 blocks
SCALE = RNG.uniform(0.01, 0.1, size=(4, 3)).astype(np.float32)
ZERO = RNG.integers(-5, 5, size=(4, 3), dtype=np.int8)
X = RNG.normal(size=(3, 8)).astype(np.float32)


def weights() -> np.ndarray:
    """The dequantised weight by hand: (q - zero) * scale, one scale per 4 elements of a row."""
    s = np.repeat(SCALE, 4, axis=1)[:, :10]
    z = np.repeat(ZERO, 4, axis=1)[:, :10].astype(np.float32)
    return ((Q.astype(np.float32) - z) * s).reshape(8, 5)


def tiny_graph() -> bytes:
    """x (1, 8) @ Reshape(DequantizeLinear(q, block 4), (8, 5)) -> y (1, 5), with a declared graph
    input no node reads (as the SFace file has)."""
    nodes = [
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["w_deq"], axis=1, block_size=4),
        helper.make_node("Reshape", ["w_deq", "w_shape"], ["w"]),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(Q, "q"),
        numpy_helper.from_array(SCALE, "scale"),
        numpy_helper.from_array(ZERO, "zero"),
        numpy_helper.from_array(np.array([8, 5], np.int64), "w_shape"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("unused_weight", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return bytes(model.SerializeToString())


def test_the_prepared_graph_runs_batches_and_folding_gives_the_quantised_weights() -> None:
    raw = tiny_graph()
    prepared = prepare_graph(raw, batch="N")
    m = onnx.load_from_string(prepared)
    assert [i.name for i in m.graph.input] == ["x"]  # the unused input is gone
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert [n.op_type for n in m.graph.node] == ["DequantizeLinear", "Reshape", "MatMul"]
    onnx.checker.check_model(m)
    want = X @ weights()
    for fold in (True, False):
        got = ort_session(prepared, 1, "test", fold_quantized=fold, spin=fold).run(None, {"x": X})[0]
        assert got.shape == (3, 5)
        assert np.abs(got - want).max() < 1e-5  # values ~10: float32 rounding


def test_the_graph_as_shipped_asks_for_its_unused_input() -> None:
    """Why the edit is needed: onnxruntime wants a feed for every declared graph input."""
    with pytest.raises(Exception, match="unused_weight"):
        ort_session(tiny_graph(), 1, "test").run(None, {"x": X[:1]})


def test_without_batch_the_graph_keeps_its_shapes() -> None:
    m = onnx.load_from_string(prepare_graph(tiny_graph()))
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    assert [i.name for i in m.graph.input] == ["x"]


def test_the_edit_is_deterministic() -> None:
    assert prepare_graph(tiny_graph(), batch="N") == prepare_graph(tiny_graph(), batch="N")


def test_unreadable_bytes_are_a_model_error() -> None:
    with pytest.raises(ModelError, match="ONNX graph"):
        prepare_graph(b"\x08\x07not a graph at all")


def test_without_the_onnx_package_it_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ModelError, match="onnx package"):
        prepare_graph(tiny_graph())


def test_a_broken_graph_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="cannot load broken model"):
        ort_session(b"\x08\x07", 1, "broken")
