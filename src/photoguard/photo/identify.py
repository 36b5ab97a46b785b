"""Face templates (dlib ResNet or SFace, both 128-d) and the pure matching decision against a
consent gallery (jointly per photo, optionally group-first).

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
from collections.abc import Collection, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from photoguard.config import IdentifyConfig
from photoguard.core.records import Box, Match, MatchKind
from photoguard.photo.detect.base import ModelError, ModelFile, verify_file
from photoguard.photo.facenet import FaceNet, probe_chips
from photoguard.photo.sface import Landmarks, SFaceModel

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
        engine: Literal["opencv", "dlib", "sface"] = "opencv",
        sface: SFaceModel | None = None,
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
        self._sface = (sface or SFaceModel()) if engine == "sface" else None

    @property
    def engine(self) -> str:
        """The engine in use once loaded: "sface", "opencv", or "dlib" (asked for, or the fallback)."""
        if self._sface is not None:
            return "sface"
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
        if self._sface is not None:
            self._sface.warm_up()
            return
        with self._lock:
            if self._models is None:
                self._models = self._load()

    def start(self) -> None:
        """Load the models and, for dlib's own descriptor, start its processes now (a service
        does this at start, so the first photo does not pay ~1-2 s of process start). A pool that
        cannot start is logged and templates are computed in-process."""
        self.warm_up()
        if self._workers < 2 or self._net is not None or self._sface is not None:
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
        """Stop the descriptor processes and SFace's feature threads (if any were started)."""
        if self._sface is not None:
            self._sface.close()
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def templates(
        self,
        rgb: np.ndarray,
        boxes: Sequence[Box],
        landmarks: Sequence[Landmarks | None] | None = None,
    ) -> list[np.ndarray]:
        """One (128,) float32 template per box, in order. ``landmarks`` (the detector's 5 points
        per box, where it gave them) are used by the sface engine; dlib finds its own."""
        if self._sface is not None:
            return self._sface.templates(rgb, boxes, landmarks)
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


@dataclass(frozen=True)
class MatchRule:
    """Thresholds of one template engine, as distances (smaller is closer). For SFace the
    distance is 1 - cosine similarity; for dlib it is the Euclidean distance."""

    metric: Literal["euclidean", "cosine"]
    match: float  # confident match up to this distance
    review: float  # "near" up to this distance
    margin: float  # required gap to the runner-up pupil
    outside_match: float  # confident match to a pupil outside the photo's group (<= match)
    #: a near match needs a second enrolment template of the pupil within this distance
    #: (None: not required); see :func:`assign_matches`
    near_support: float | None = None
    #: a confident match on one enrolment template alone needs this distance (None: the match
    #: threshold); between it and ``match`` a second template must be within ``match_support``
    single_match: float | None = None
    match_support: float | None = None
    #: what an unsupported face in that band becomes: NONE (redacted; the rule), or NEAR (held
    #: for review where the pupil consents: measured in bench/school_gallery.py, not configurable)
    band_fallback: Literal["none", "near"] = "none"

    @property
    def outside_penalty(self) -> float:
        """Added to the distance of every pupil outside the photo's group, so that the normal
        rule applied to the result is the stricter rule for them."""
        return max(0.0, self.match - self.outside_match)


def rule_for(cfg: IdentifyConfig) -> MatchRule:
    """The matching rule of the configured template engine."""
    if cfg.template_engine == "sface":
        return MatchRule(
            "cosine",
            1.0 - cfg.sface_match_similarity,
            1.0 - cfg.sface_review_similarity,
            cfg.sface_margin,
            1.0 - cfg.sface_outside_group_similarity,
            1.0 - cfg.sface_near_support_similarity if cfg.sface_near_support_similarity > 0 else None,
            1.0 - cfg.sface_single_photo_similarity if cfg.sface_match_support_similarity > 0 else None,
            1.0 - cfg.sface_match_support_similarity if cfg.sface_match_support_similarity > 0 else None,
        )
    return MatchRule("euclidean", cfg.match_distance, cfg.review_distance, cfg.margin, cfg.outside_group_distance)


#: |norm - 1| below this: an L2-normalised (SFace) template. dlib's descriptors have norms of
#: ~1.2-1.7 (LFW), so the two families can be told apart and never matched against each other:
#: an sface gallery must be all unit-norm, a dlib gallery must not be.
UNIT_NORM_TOLERANCE = 1e-3


def check_family(vectors: np.ndarray, metric: str) -> None:
    """Raise ModelError when templates of the other engine are mixed in (e.g. a school that
    enrolled with dlib switched to sface): such distances mean nothing, so the photo is held."""
    if len(vectors) == 0:
        return
    unit = np.abs(np.linalg.norm(vectors, axis=1) - 1.0) < UNIT_NORM_TOLERANCE
    if metric == "cosine" and not bool(np.all(unit)):
        raise ModelError(
            "enrolled templates were not made by the sface engine (dlib templates?): re-enrol the pupils"
            " with identify.template_engine = sface, or switch the engine back"
        )
    if metric == "euclidean" and bool(np.all(unit)):
        raise ModelError(
            "enrolled templates were made by the sface engine: set identify.template_engine = sface,"
            " or re-enrol the pupils"
        )


def distance_matrix(templates: np.ndarray, gallery: Gallery, metric: str) -> tuple[list[str], np.ndarray]:
    """Pupil ids (sorted) and a (faces x pupils) matrix: per pupil, the smallest distance over
    that pupil's templates."""
    pids, best, _ = distance_matrices(templates, gallery, metric)
    return pids, best


def distance_matrices(
    templates: np.ndarray, gallery: Gallery, metric: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pupil ids (sorted) and two (faces x pupils) matrices: per pupil, the smallest and the
    second-smallest distance over that pupil's templates (infinite for a pupil with one)."""
    t = np.asarray(templates, dtype=np.float32).reshape(-1, TEMPLATE_DIM)
    if metric == "cosine":
        rows = 1.0 - t @ gallery.vectors.T
    else:
        sq = (t * t).sum(1)[:, None] + (gallery.vectors * gallery.vectors).sum(1)[None, :] - 2.0 * t @ gallery.vectors.T
        rows = np.sqrt(np.maximum(sq, 0.0))
    pids, inverse = np.unique(np.array(gallery.pupil_ids, dtype=object), return_inverse=True)
    out = np.full((t.shape[0], len(pids)), np.inf, dtype=np.float64)
    second = np.full_like(out, np.inf)
    for j in range(len(pids)):
        cols = np.sort(rows[:, inverse == j], axis=1)
        out[:, j] = cols[:, 0]
        if cols.shape[1] > 1:
            second[:, j] = cols[:, 1]
    out[~np.isfinite(out)] = np.inf
    second[~np.isfinite(second)] = np.inf
    return [str(p) for p in pids], out, second


def _assign(dist: np.ndarray, limit: float) -> dict[int, int]:
    """The best overall matching of faces (rows) to pupils (columns) among pairs within ``limit``:
    the most pairs, then the smallest total distance. Returns {row: column}."""
    from scipy.optimize import linear_sum_assignment

    allowed = dist <= limit
    if not allowed.any():
        return {}
    rows = np.where(allowed.any(axis=1))[0]
    cols = np.where(allowed.any(axis=0))[0]
    sub = dist[np.ix_(rows, cols)]
    ok = allowed[np.ix_(rows, cols)]
    big = float(len(rows) + 1) * (float(np.max(sub[ok])) + 1.0) + 1.0  # any allowed pair beats none
    r, c = linear_sum_assignment(np.where(ok, sub, big))
    return {int(rows[i]): int(cols[j]) for i, j in zip(r, c, strict=True) if ok[i, j]}


def match_faces(
    templates: Sequence[np.ndarray | None],
    gallery: Gallery,
    cfg: IdentifyConfig,
    *,
    group_pupils: Collection[str] | None = None,
) -> list[Match]:
    """Pure decision for all faces of one photo, jointly.

    Each pupil is MATCHed at most once per photo, decided as the best overall matching of faces
    to pupils (not first come): faces are assigned to pupils within the match threshold so that
    the most faces, then the closest pairs, are matched. An assigned face is a MATCH when its
    runner-up (the next pupil, leaving out pupils MATCHed to other faces in the photo) is at
    least ``margin`` further; otherwise it is NEAR that pupil. A face left without a pupil is
    NEAR the closest pupil not MATCHed elsewhere within the review threshold, else NONE (so a
    second face of an already matched pupil is redacted, not held).

    ``group_pupils`` (the pupils, and enrolled staff, of the photo's group, e.g. from the
    teacher's folder) makes matching group-first: everyone else must pass the stricter
    ``outside_group`` threshold (their distances carry :attr:`MatchRule.outside_penalty`, and
    the distances in the result include it). ``None`` = no group known: one rule for all.

    Raises :class:`ModelError` when the gallery holds templates of another engine.
    """
    rule = rule_for(cfg)
    out: list[Match] = [Match(MatchKind.TOO_SMALL) for _ in templates]
    faces = [i for i, t in enumerate(templates) if t is not None]
    if not faces:
        return out
    if len(gallery) == 0:
        for i in faces:
            out[i] = Match(MatchKind.NONE)
        return out
    check_family(gallery.vectors, rule.metric)
    stacked = np.stack([np.asarray(templates[i], dtype=np.float32).reshape(TEMPLATE_DIM) for i in faces])
    if rule.metric == "cosine":
        check_family(stacked, rule.metric)
    pids, dist, second = distance_matrices(stacked, gallery, rule.metric)
    if group_pupils is not None:
        members = set(group_pupils)
        outside = np.array([p not in members for p in pids], dtype=bool)
        penalty = np.where(outside, rule.outside_penalty, 0.0)[None, :]
        dist, second = dist + penalty, second + penalty

    for f, m in enumerate(assign_matches(dist, pids, rule, support=second)):
        out[faces[f]] = m
    return out


def assign_matches(
    dist: np.ndarray, pids: Sequence[str], rule: MatchRule, *, support: np.ndarray | None = None
) -> list[Match]:
    """The joint decision of :func:`match_faces` on a (faces x pupils) distance matrix (column
    j is pupil ``pids[j]``; infinite = never this pupil). One Match per row.

    Two-photo support (``rule.near_support``, with ``support`` the distance of each pupil's
    second-closest enrolment template): a face in the review band (between the match and the
    review threshold) is NEAR a pupil only when a second enrolment photo of that pupil also
    resembles it (within ``near_support``); one template's resemblance at the edge of the
    review band is what strangers show by chance, so such a face is NONE (redacted, nothing
    held). Faces within the match threshold (confident, or near for want of margin) are not
    affected. ``support`` None: neither support rule is applied.

    Two-photo support for matches (``rule.single_match`` and ``rule.match_support``): one
    enrolment template alone makes a confident match only within ``single_match``; a face
    assigned to a pupil beyond it (but within ``match``) needs that pupil's second template
    within ``match_support`` too, else it is NONE (redacted, nothing held), and no other face of
    the photo may be NEAR that pupil (as if the pupil were matched). A look-alike stranger
    resembles one enrolment photo of a pupil at the match level more often than two. The rule
    only takes matches away."""
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2 or dist.shape[1] != len(pids):
        raise ValueError("one distance column per pupil is required")
    if support is not None and np.shape(support) != dist.shape:
        raise ValueError("support must have the shape of dist")
    assigned = _assign(dist, rule.match)
    unsupported: set[int] = set()
    if rule.single_match is not None and rule.match_support is not None and support is not None:
        unsupported = {f for f, c in assigned.items()
                       if dist[f, c] > rule.single_match and not support[f, c] <= rule.match_support}
    confident = {f: c for f, c in assigned.items() if f not in unsupported}
    while True:  # demote assignments without a clear margin until none changes
        taken = {c: f for f, c in confident.items()}
        changed = False
        for f, c in list(confident.items()):
            runner = _runner(dist[f], exclude={c, *(j for j, g in taken.items() if g != f)})
            if runner is not None and runner - dist[f, c] < rule.margin:
                del confident[f]
                changed = True
        if not changed:
            break
    taken = {c: f for f, c in confident.items()}
    # a pupil whose assigned face lacked support is not a candidate for the other faces either
    # (the assignment chose that face for the pupil; a weaker one nearly matching it holds nothing)
    claimed = {**{assigned[f]: f for f in unsupported}, **taken}
    out: list[Match] = []
    for f in range(dist.shape[0]):
        row = dist[f]
        if f in confident:
            c = confident[f]
            runner = _runner(row, exclude={c, *(j for j, g in taken.items() if g != f)})
            out.append(Match(MatchKind.MATCH, pids[c], float(row[c]), runner))
            continue
        free = [j for j in range(len(pids)) if claimed.get(j, f) == f]
        if f in unsupported and rule.band_fallback == "none":
            c = assigned[f]
            out.append(Match(MatchKind.NONE, None, float(row[c]),
                             _runner(row, exclude={c, *(j for j, g in taken.items() if g != f)})))
            continue
        if f in assigned:
            c = assigned[f]  # within the match threshold, but not clearly this pupil
        elif free:
            c = min(free, key=lambda j: (row[j], j))
        elif len(pids):
            c = int(np.argmin(row))
        else:
            out.append(Match(MatchKind.NONE))
            continue
        runner = _runner(row, exclude={c, *(j for j, g in taken.items() if g != f)})
        supported = (
            rule.near_support is None or support is None or row[c] <= rule.match or support[f, c] <= rule.near_support
        )
        if c in free and np.isfinite(row[c]) and row[c] <= rule.review and supported:
            out.append(Match(MatchKind.NEAR, pids[c], float(row[c]), runner))
        else:
            best = float(row[c]) if np.isfinite(row[c]) else None
            out.append(Match(MatchKind.NONE, None, best, runner))
    return out


def _runner(row: np.ndarray, exclude: set[int]) -> float | None:
    """The smallest finite distance in ``row`` outside ``exclude`` (None if there is none)."""
    mask = np.ones(row.shape[0], dtype=bool)
    mask[list(exclude)] = False
    rest = row[mask]
    rest = rest[np.isfinite(rest)]
    return float(rest.min()) if rest.size else None
