"""dlib's face-recognition ResNet, read from its own model file and run by OpenCV's DNN module.

The dlib-bin wheel is built without BLAS, so its ResNet costs ~80 ms of one core per face. The
same network in OpenCV (im2col/Winograd kernels, threads) costs a fraction of that. Nothing is
retrained or downloaded: the weights are read from ``dlib_face_recognition_resnet_model_v1.dat``
(the file of the ``face-recognition-models`` wheel, sha256-checked by the caller), turned into an
in-memory ONNX graph and loaded by ``cv2.dnn``.

dlib serialises a network layer by layer, input first. Each layer starts with its type tag as a
length-prefixed string (``con_4``, ``affine_``, ...) followed by its fields; integers are packed
(one byte holding the sign and length, then little-endian bytes) and tensors are raw little-endian
float32. The reader below finds the layer tags in file order and reads only the fields it needs;
the structure (stem, residual blocks, pooling, the 128-d projection) is checked against a strict
grammar, so a file with any other layout is refused rather than half-understood.

Every network built here is compared with dlib's own descriptor on probe chips before use
(:meth:`FaceNet.verify_against`): a mismatch is an error and the caller falls back to dlib.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from photoguard.photo.detect.base import ModelError

CHIP = 150
#: largest difference allowed between this network's descriptor and dlib's (descriptors have
#: norm ~0.5-1 and the match thresholds are ~0.5 apart in distance; float32 reordering gives ~1e-6)
MAX_DEVIATION = 1e-3
#: chips per forward pass: bounds the layer buffers OpenCV keeps (~2 MB per chip) at no cost in speed
MAX_BATCH = 16

_TAGS = (b"input_rgb_image_sized", b"con_4", b"affine_", b"relu_", b"max_pool_2", b"avg_pool_2",
         b"add_prev_", b"fc_2")
_TAG_RE = re.compile(b"\\x01(?P<len>[\\x04-\\x15])(?P<tag>" + b"|".join(_TAGS) + b")")


@dataclass
class _Layer:
    kind: str
    ints: list[int] = field(default_factory=list)
    floats: list[float] = field(default_factory=list)
    params: np.ndarray | None = None


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        if size > 8:
            raise ModelError(f"dlib model: bad integer at byte {self.pos}")
        raw = self.data[self.pos + 1 : self.pos + 1 + size]
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ModelError(f"dlib model: unknown tensor version {version}")
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        end = self.pos + 4 * count
        if count <= 0 or end > len(self.data):
            raise ModelError("dlib model: tensor runs past the end of the file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos = end
        return values


def read_layers(data: bytes) -> list[_Layer]:
    """The layers of a serialised dlib network, input first, with the fields the graph needs."""
    layers: list[_Layer] = []
    pos = 0
    while True:
        m = _TAG_RE.search(data, pos)
        if m is None:
            break
        if int.from_bytes(m.group("len"), "little") != len(m.group("tag")):
            pos = m.start() + 1
            continue
        kind = m.group("tag").decode()
        r = _Reader(data, m.end())
        layer = _Layer(kind)
        if kind == "input_rgb_image_sized":
            layer.floats = [r.float() for _ in range(3)]
            layer.ints = [r.int(), r.int()]
        elif kind == "con_4":
            layer.params = r.tensor()
            layer.ints = [r.int() for _ in range(7)]  # filters, rows, cols, stride y/x, padding y/x
        elif kind == "affine_":
            layer.params = r.tensor()
        elif kind in ("max_pool_2", "avg_pool_2"):
            layer.ints = [r.int() for _ in range(6)]  # rows, cols, stride y/x, padding y/x
        elif kind == "fc_2":
            layer.ints = [r.int(), r.int()]  # outputs, inputs
            layer.params = r.tensor()
        layers.append(layer)
        # tensors hold arbitrary bytes: resume after what was read, never inside it
        pos = max(r.pos, m.end())
    return layers


class _Graph:
    """A tiny ONNX graph builder that tracks static (C, H, W) shapes."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, array: np.ndarray, prefix: str = "w") -> str:
        from onnx import numpy_helper

        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int], **attrs: Any) -> str:
        from onnx import helper

        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.shapes[out] = shape
        return out

    def conv(self, x: str, conv: _Layer, affine: _Layer) -> str:
        assert conv.params is not None and affine.params is not None
        nf, kr, kc, sy, sx, py, px = conv.ints
        c, h, w = self.shapes[x]
        weights = conv.params[: nf * c * kr * kc].reshape(nf, c, kr, kc)
        bias = conv.params[nf * c * kr * kc :]
        if bias.size != nf or affine.params.size != 2 * nf:
            raise ModelError("dlib model: convolution and affine sizes disagree")
        gamma, beta = affine.params[:nf], affine.params[nf:]
        # fold the affine layer (a frozen batch norm) into the convolution
        weights = weights * gamma[:, None, None, None]
        bias = bias * gamma + beta
        shape = (nf, (h + 2 * py - kr) // sy + 1, (w + 2 * px - kc) // sx + 1)
        return self.node(
            "Conv", [x, self.const(weights.astype(np.float32)), self.const(bias.astype(np.float32))], shape,
            kernel_shape=[kr, kc], strides=[sy, sx], pads=[py, px, py, px],
        )

    def pool(self, x: str, layer: _Layer, op: str) -> str:
        kr, kc, sy, sx, py, px = layer.ints
        c, h, w = self.shapes[x]
        shape = (c, (h + 2 * py - kr) // sy + 1, (w + 2 * px - kc) // sx + 1)
        return self.node(op, [x], shape, kernel_shape=[kr, kc], strides=[sy, sx], pads=[py, px, py, px])

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], self.shapes[x])

    def pad_to(self, x: str, shape: tuple[int, int, int]) -> str:
        have = self.shapes[x]
        if have == shape:
            return x
        extra = [0, shape[0] - have[0], shape[1] - have[1], shape[2] - have[2]]
        pads = np.array([0, 0, 0, 0, *extra], dtype=np.int64)
        return self.node("Pad", [x, self.const(pads, "pads")], shape, mode="constant")

    def add(self, a: str, b: str) -> str:
        """dlib's add_prev: the smaller input is zero-padded (channels, bottom, right)."""
        shape = tuple(max(p, q) for p, q in zip(self.shapes[a], self.shapes[b], strict=True))
        full = (shape[0], shape[1], shape[2])
        return self.node("Add", [self.pad_to(a, full), self.pad_to(b, full)], full)


def build_onnx(layers: Sequence[_Layer]) -> tuple[bytes, tuple[float, float, float]]:
    """The ONNX model (bytes) of dlib's face ResNet and the input's per-channel means (RGB)."""
    from onnx import TensorProto, helper

    kinds = [layer.kind for layer in layers]
    if not layers or kinds[0] != "input_rgb_image_sized" or layers[0].ints != [CHIP, CHIP]:
        raise ModelError("dlib model: not a 150x150 RGB face network")
    means = (layers[0].floats[0], layers[0].floats[1], layers[0].floats[2])
    g = _Graph()
    x = "chips"
    g.shapes[x] = (3, CHIP, CHIP)
    i = 1

    def expect(*names: str) -> list[_Layer]:
        nonlocal i
        got = kinds[i : i + len(names)]
        if tuple(got) != names:
            raise ModelError(f"dlib model: unexpected layers {got} at {i} (wanted {list(names)})")
        i += len(names)
        return list(layers[i - len(names) : i])

    conv, aff, _, pool = expect("con_4", "affine_", "relu_", "max_pool_2")
    x = g.pool(g.relu(g.conv(x, conv, aff)), pool, "MaxPool")
    blocks = 0
    while i < len(kinds) and kinds[i] == "con_4":
        block_in = x
        c1, a1, _, c2, a2 = expect("con_4", "affine_", "relu_", "con_4", "affine_")
        y = g.conv(g.relu(g.conv(block_in, c1, a1)), c2, a2)
        shortcut = block_in
        if kinds[i] == "avg_pool_2":
            (down,) = expect("avg_pool_2")
            shortcut = g.pool(block_in, down, "AveragePool")
        expect("add_prev_", "relu_")
        x = g.relu(g.add(y, shortcut))
        blocks += 1
    (last_pool, fc) = expect("avg_pool_2", "fc_2")
    if last_pool.ints[:2] != [0, 0] or i != len(kinds) or blocks == 0:
        raise ModelError("dlib model: unexpected network tail")
    outputs, inputs = fc.ints
    assert fc.params is not None
    if inputs != g.shapes[x][0] or fc.params.size != inputs * outputs:
        raise ModelError("dlib model: the projection layer does not fit the network")
    pooled = g.node("GlobalAveragePool", [x], (inputs, 1, 1))
    flat = g.node("Flatten", [pooled], (inputs, 1, 1))
    out = g.node("MatMul", [flat, g.const(fc.params.reshape(inputs, outputs))], (outputs, 1, 1))
    graph = helper.make_graph(
        g.nodes, "dlib_face_resnet",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["n", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["n", outputs])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="photoguard")
    model.ir_version = 8
    return model.SerializeToString(), means


class FaceNet:
    """The face ResNet in OpenCV. ``descriptors`` takes aligned 150x150 RGB chips (dlib's
    ``get_face_chips`` with padding 0.25) and returns one 128-d float32 row per chip."""

    def __init__(self, layers: Sequence[_Layer]) -> None:
        import cv2

        try:
            onnx_bytes, self._means = build_onnx(layers)
            self._net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_bytes, dtype=np.uint8))
        except ModelError:
            raise
        except Exception as exc:  # a cv2 or onnx error: not usable, the caller falls back to dlib
            raise ModelError(f"cannot build the face network in OpenCV: {type(exc).__name__}: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, model_path: Path) -> FaceNet:
        """The network of a dlib model file (its sha256 is the caller's to check)."""
        return cls(read_layers(model_path.read_bytes()))

    def descriptors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.empty((0, 128), dtype=np.float32)
        import cv2

        for c in chips:
            if c.shape != (CHIP, CHIP, 3) or c.dtype != np.uint8:
                raise ValueError("expected aligned 150x150 RGB uint8 chips")
        rows = []
        # OpenCV keeps layer buffers sized for the largest batch it has seen: ~2 MB per chip
        for start in range(0, len(chips), MAX_BATCH):
            part = list(chips[start : start + MAX_BATCH])
            blob = cv2.dnn.blobFromImages(part, 1 / 256.0, (CHIP, CHIP), self._means, swapRB=False, crop=False)
            with self._lock:
                self._net.setInput(blob)
                rows.append(self._net.forward().reshape(len(part), -1))
        return np.ascontiguousarray(np.concatenate(rows), dtype=np.float32)

    def verify_against(self, dlib_resnet: Any, probes: Sequence[np.ndarray]) -> float:
        """The largest difference between this network's descriptors and dlib's on ``probes``;
        raises :class:`ModelError` if it exceeds :data:`MAX_DEVIATION`."""
        ours = self.descriptors(probes)
        worst = 0.0
        for chip, mine in zip(probes, ours, strict=True):
            ref = np.asarray(dlib_resnet.compute_face_descriptor(chip), dtype=np.float32)
            worst = max(worst, float(np.max(np.abs(ref - mine))))
        if not worst <= MAX_DEVIATION:
            raise ModelError(f"the OpenCV face network differs from dlib's by {worst:.2e}")
        return worst


def probe_chips(count: int = 2) -> list[np.ndarray]:
    """Deterministic 150x150 chips with smooth structure and texture (no face data needed)."""
    rng = np.random.default_rng(20261121)
    yy, xx = np.mgrid[0:CHIP, 0:CHIP].astype(np.float32) / CHIP
    out = []
    for k in range(count):
        base = np.stack([np.sin(6 * xx + k), np.cos(5 * yy - k), np.sin(4 * (xx + yy))], axis=-1)
        noise = rng.normal(0, 0.25, size=(CHIP, CHIP, 3))
        out.append(np.clip(127.5 + 100 * (base + noise), 0, 255).astype(np.uint8))
    return out
