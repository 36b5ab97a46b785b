"""Faces carried between the frames of a clip (pure: boxes in, tracks and masks out).

A greedy IoU tracker links each frame's detections to the tracks of the frames before; a track
that is not seen for more than ``gap`` frames ends. :func:`mask_boxes` then gives, for any frame,
the box to redact for every track that covers it:

* on a frame with a detection: that box;
* between two detections: the union of both boxes (the face moved from one to the other);
* up to ``gap`` frames before the first and after the last detection: the nearest box
  (a face the detector found late, or lost early, stays covered);

every box grown by the track's movement: ``motion_grow`` times its largest per-frame step,
times (1 + the frames to the nearest detection). Fail closed: masks are made larger, never
smaller, than the detections they come from.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from photoguard.core.records import Box, Detection


@dataclass
class Track:
    """One face followed through a clip. ``boxes`` maps frame index -> detected box."""

    track_id: int
    boxes: dict[int, Box] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return min(self.boxes)

    @property
    def last(self) -> int:
        return max(self.boxes)

    def add(self, frame: int, det: Detection) -> None:
        old = self.boxes.get(frame)
        self.boxes[frame] = det.box if old is None else _union(old, det.box)
        self.scores[frame] = max(det.score, self.scores.get(frame, 0.0))

    def step(self) -> float:
        """The largest movement of the box centre per frame between consecutive detections."""
        frames = sorted(self.boxes)
        best = 0.0
        for a, b in itertools.pairwise(frames):
            (ax, ay), (bx, by) = self.boxes[a].center, self.boxes[b].center
            move = max(abs(bx - ax), abs(by - ay))
            best = max(best, move / (b - a))
        return best


def _union(a: Box, b: Box) -> Box:
    return Box(min(a.x1, b.x1), min(a.y1, b.y1), max(a.x2, b.x2), max(a.y2, b.y2))


def _grown(box: Box, by: float) -> Box:
    return Box(box.x1 - by, box.y1 - by, box.x2 + by, box.y2 + by)


def _link_score(track_box: Box, det_box: Box, min_iou: float) -> float:
    """The IoU when it reaches ``min_iou``; else, for a quick face, a lesser score (below 0.01)
    when its centre moved less than one face size; else 0 (not the same face)."""
    iou = track_box.iou(det_box)
    if iou >= min_iou:
        return iou
    (tx, ty), (dx, dy) = track_box.center, det_box.center
    size = max(track_box.width, track_box.height, 1.0)
    dist = max(abs(tx - dx), abs(ty - dy)) / size
    return 0.0 if dist >= 1.0 else 0.01 * (1.0 - dist)


class IouTracker:
    """Greedy IoU linking, frame by frame. Feed frames in order with :meth:`update`."""

    def __init__(self, *, iou: float = 0.2, gap: int = 10) -> None:
        self.iou = iou
        self.gap = gap
        self.tracks: list[Track] = []
        self._open: list[Track] = []
        #: the last update started a track (a face came, or a false detection): the frame after
        #: it is worth detecting
        self.unsettled = False

    def open_boxes(self) -> list[Box]:
        """The last box of every track still open (to be linked by the next update)."""
        return [t.boxes[t.last] for t in self._open]

    def update(self, frame: int, dets: Sequence[Detection]) -> list[int]:
        """Link ``dets`` of ``frame``; returns the track id of each detection, in order."""
        self._open = [t for t in self._open if frame - t.last <= self.gap + 1]
        pairs: list[tuple[float, int, int]] = []
        for ti, t in enumerate(self._open):
            last = t.boxes[t.last]
            for di, d in enumerate(dets):
                score = _link_score(last, d.box, self.iou)
                if score > 0:
                    pairs.append((score, ti, di))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        used_t: set[int] = set()
        out: list[int | None] = [None] * len(dets)
        for _score, ti, di in pairs:
            if ti in used_t or out[di] is not None:
                continue
            used_t.add(ti)
            self._open[ti].add(frame, dets[di])
            out[di] = self._open[ti].track_id
        self.unsettled = any(o is None for o in out)
        for di, d in enumerate(dets):
            if out[di] is None:
                t = Track(len(self.tracks))
                t.add(frame, d)
                self.tracks.append(t)
                self._open.append(t)
                out[di] = t.track_id
        return [tid for tid in out if tid is not None]


@dataclass
class MaskPlan:
    """Per track: its detection frames (sorted) and growth per frame of distance."""

    tracks: Sequence[Track]
    gap: int
    motion_grow: float
    _frames: list[list[int]] = field(default_factory=list, init=False)
    _grow: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._frames = [sorted(t.boxes) for t in self.tracks]
        self._grow = [self.motion_grow * max(t.step(), 1.0) for t in self.tracks]

    def boxes(self, frame: int) -> dict[int, Box]:
        """track id -> box to redact on ``frame`` for every track that covers it."""
        out: dict[int, Box] = {}
        for t, frames, grow in zip(self.tracks, self._frames, self._grow, strict=True):
            if frame < frames[0] - self.gap or frame > frames[-1] + self.gap:
                continue
            k = bisect.bisect_left(frames, frame)
            if k < len(frames) and frames[k] == frame:
                box, away = t.boxes[frame], 0
            elif k == 0:
                box, away = t.boxes[frames[0]], frames[0] - frame
            elif k == len(frames):
                box, away = t.boxes[frames[-1]], frame - frames[-1]
            else:
                before, after = frames[k - 1], frames[k]
                box = _union(t.boxes[before], t.boxes[after])
                away = min(frame - before, after - frame)
            out[t.track_id] = _grown(box, grow * away) if away else box
        return out


def mask_boxes(tracks: Sequence[Track], frame: int, *, gap: int, motion_grow: float) -> dict[int, Box]:
    """One-off form of :meth:`MaskPlan.boxes`."""
    return MaskPlan(tracks, gap, motion_grow).boxes(frame)
