"""Head-shaped redaction outlines (pure geometry: a face in, ellipses out, no pixels read).

A detector's box is tight around the face (brows to chin, cheek to cheek) and axis-aligned, while a
person recognises a face from the whole head: forehead, hairline, both eyes, the side turned away.
So a face becomes the union of up to two rotated ellipses:

* **box ellipse** (always): the box grown ``grow``×, more for large faces (up to
  ``LARGE_EXTRA`` at ``LARGE_AT`` px and beyond), centred ``UP_SHIFT`` of the box height above the
  box centre (forehead and hair), then enlarged until every corner of the box lies inside it, so
  no pixel of the detected box stays. A box that touches the photo's edge is first extended past
  that edge to a face's usual proportions (the face goes on outside the photo; its centre is not
  the visible part's centre).
* **landmark ellipse** (when 5 plausible landmarks are given: right eye, left eye, nose, right and
  left mouth corner): its long axis follows the eyes-to-mouth direction, so a tilted head is
  covered along its own axis; centred just above the eyes (the middle of a head) and shifted away
  from the nose toward the back of the head in profile, where it is also wider.

The union can only cover more than the box ellipse alone (fail closed). Landmarks that lie far
outside the box or are degenerate are ignored; the box ellipse still stands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photoguard.core.records import Box

Landmarks = Sequence[tuple[float, float]]

#: The grown ellipse is never smaller than the one circumscribing the box (axes √2 × box).
MIN_GROW = math.sqrt(2.0)
#: Box ellipse: centre moved up by this share of the box height (forehead, hairline).
UP_SHIFT = 0.08
#: Box ellipse: extra growth for large faces, reached at LARGE_AT px (box height) and above,
#: ramping from nothing at SMALL_AT px. Large faces are the most recognisable ones.
LARGE_EXTRA = 0.15
SMALL_AT = 24.0
LARGE_AT = 128.0
#: A box edge within this many px of the photo's edge "touches" it.
EDGE_PX = 2.0
#: A whole face box is about this wide per unit of height (WIDER faces: median ~0.8).
FACE_ASPECT = 0.8
#: Landmark ellipse, in units of the eyes-to-mouth distance ``u``: half-height along the face's
#: axis, half-width across it, and how far above the eye line the centre sits. A head is about
#: 3.4 u from crown to chin with the eyes near its middle, and about 2.6 u wide.
HEAD_HALF_HEIGHT = 1.9
HEAD_HALF_WIDTH = 1.4
HEAD_CENTRE_UP = 0.15
#: Profile: the centre moves this share of ``u`` per unit of yaw away from the nose, and the
#: half-width grows by this share per unit of yaw (yaw = nose offset from the eyes' midpoint, in u).
PROFILE_SHIFT = 0.6
PROFILE_WIDEN = 0.6
MAX_YAW = 0.8
#: Landmarks are used only when all lie inside the box grown this much around its centre.
LANDMARK_SLACK = 1.6


@dataclass(frozen=True, slots=True)
class Ellipse:
    """Centre, semi-axes and rotation (radians; ``ax`` lies along the direction ``angle``)."""

    cx: float
    cy: float
    ax: float
    ay: float
    angle: float = 0.0

    def scaled(self, factor: float) -> Ellipse:
        return Ellipse(self.cx, self.cy, self.ax * factor, self.ay * factor, self.angle)

    def level(self, x: float, y: float) -> float:
        """< 1 inside, 1 on the outline, > 1 outside (squared normalised distance)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = x - self.cx, y - self.cy
        u, v = dx * c + dy * s, -dx * s + dy * c
        return (u / self.ax) ** 2 + (v / self.ay) ** 2

    def contains(self, x: float, y: float) -> bool:
        return self.level(x, y) <= 1.0

    def extent(self) -> tuple[float, float]:
        """Half-width and half-height of the axis-aligned rectangle around the ellipse."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return math.hypot(self.ax * c, self.ay * s), math.hypot(self.ax * s, self.ay * c)


def size_growth(grow: float, height: float) -> float:
    """The growth factor for a face box of ``height`` px: ``grow`` (at least √2), plus up to
    ``LARGE_EXTRA`` for large faces."""
    ramp = min(1.0, max(0.0, (height - SMALL_AT) / (LARGE_AT - SMALL_AT)))
    return max(grow, MIN_GROW) * (1.0 + LARGE_EXTRA * ramp)


def _cover(e: Ellipse, points: Sequence[tuple[float, float]]) -> Ellipse:
    """``e`` enlarged about its centre until every point lies inside it."""
    worst = max((e.level(x, y) for x, y in points), default=0.0)
    return e.scaled(math.sqrt(worst) * 1.0001) if worst > 1.0 else e


def extend_at_edges(box: Box, shape: tuple[int, int] | None) -> Box:
    """The box extended past the photo's edges it touches, to a face's usual proportions (a face
    cut by the edge goes on outside the photo). Unchanged when it touches no edge."""
    if shape is None:
        return box
    h, w = float(shape[0]), float(shape[1])
    x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
    left, right = x1 <= EDGE_PX, x2 >= w - EDGE_PX
    top, bottom = y1 <= EDGE_PX, y2 >= h - EDGE_PX
    bw, bh = x2 - x1, y2 - y1
    want_w, want_h = bh * FACE_ASPECT, bw / FACE_ASPECT
    if (left or right) and not (left and right) and bw < want_w:
        if left:
            x1 = x2 - want_w
        else:
            x2 = x1 + want_w
    if (top or bottom) and not (top and bottom) and bh < want_h:
        if top:
            y1 = y2 - want_h
        else:
            y2 = y1 + want_h
    return Box(x1, y1, x2, y2)


def box_ellipse(box: Box, grow: float, shape: tuple[int, int] | None = None) -> Ellipse:
    """The box ellipse (see the module docstring); ``shape`` = (H, W) of the photo, for faces
    cut by its edge."""
    full = extend_at_edges(box, shape)
    g = max(grow, MIN_GROW)
    cx, cy = full.center
    e = Ellipse(cx, cy - UP_SHIFT * full.height, max(full.width * g / 2, 0.5), max(full.height * g / 2, 0.5))
    corners = [(full.x1, full.y1), (full.x2, full.y1), (full.x1, full.y2), (full.x2, full.y2)]
    return _cover(e, corners).scaled(size_growth(grow, max(full.height, full.width / FACE_ASPECT)) / g)


def usable_landmarks(box: Box, landmarks: Landmarks | None) -> np.ndarray | None:
    """The 5 landmarks as a (5, 2) array, or None when missing, non-finite, outside the slackened
    box, or degenerate (eyes and mouth at one point)."""
    if landmarks is None or len(landmarks) != 5:
        return None
    try:
        pts = [(float(x), float(y)) for x, y in landmarks]
    except (TypeError, ValueError):
        return None
    cx, cy = box.center
    hw = max(box.width, 1.0) * LANDMARK_SLACK / 2
    hh = max(box.height, 1.0) * LANDMARK_SLACK / 2
    # also false for NaN
    if not all(abs(x - cx) <= hw and abs(y - cy) <= hh for x, y in pts):
        return None
    ex, ey = (pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2
    mx, my = (pts[3][0] + pts[4][0]) / 2, (pts[3][1] + pts[4][1]) / 2
    if math.hypot(ex - mx, ey - my) < 0.08 * max(box.height, box.width, 1.0):
        return None
    return np.array(pts, dtype=np.float64)


def landmark_ellipse(box: Box, landmarks: np.ndarray, grow: float) -> Ellipse:
    """The landmark ellipse for usable landmarks (see :func:`usable_landmarks`)."""
    eyes, nose, mouth = landmarks[:2].mean(axis=0), landmarks[2], landmarks[3:].mean(axis=0)
    up = eyes - mouth  # from the mouth towards the forehead, in image coordinates
    eye_mouth = float(np.hypot(*up))
    eye_gap = float(np.hypot(*(landmarks[1] - landmarks[0])))
    unit = max(eye_mouth, 0.9 * eye_gap)
    up = up / max(eye_mouth, 1e-9)
    across = np.array([-up[1], up[0]])  # perpendicular to the face's axis
    yaw = float(np.clip(np.dot(nose - eyes, across) / unit, -MAX_YAW, MAX_YAW))
    g = size_growth(grow, box.height) / MIN_GROW  # 1 at the default grow, more when large
    centre = eyes + up * HEAD_CENTRE_UP * unit - across * np.sign(yaw) * abs(yaw) * PROFILE_SHIFT * unit
    half_w = HEAD_HALF_WIDTH * unit * (1.0 + PROFILE_WIDEN * abs(yaw)) * g
    half_h = HEAD_HALF_HEIGHT * unit * g
    # ``ax`` lies along ``across``; angle of that direction in image coordinates
    angle = math.atan2(float(across[1]), float(across[0]))
    e = Ellipse(float(centre[0]), float(centre[1]), half_w, half_h, angle)
    return _cover(e, [tuple(p) for p in landmarks])


def head_outline(
    box: Box, grow: float, landmarks: Landmarks | None = None, shape: tuple[int, int] | None = None
) -> list[Ellipse]:
    """The ellipses whose union covers the head of the face in ``box`` (1 or 2)."""
    out = [box_ellipse(box, grow, shape)]
    pts = usable_landmarks(box, landmarks)
    if pts is not None:
        out.append(landmark_ellipse(box, pts, grow))
    return out


def _grown(e: Ellipse) -> Ellipse:
    """``e`` scaled by (1 + half a pixel diagonal / shorter semi-axis): it contains every point
    within that distance of ``e``, so testing pixel centres against it is conservative."""
    return e.scaled(1.0 + math.sqrt(0.5) / max(min(e.ax, e.ay), 1e-6))


def bounds(
    shape: tuple[int, int], ellipses: Sequence[Ellipse], reach: float = 1.0
) -> tuple[slice, slice] | None:
    """Rows and columns of the clipped bounding rectangle of the conservatively grown ellipses
    scaled by ``reach`` (None when it lies outside the photo)."""
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = w, h, 0, 0
    for e in ellipses:
        g = _grown(e)
        ex, ey = g.extent()
        x0, x1 = min(x0, math.floor(g.cx - ex * reach)), max(x1, math.ceil(g.cx + ex * reach))
        y0, y1 = min(y0, math.floor(g.cy - ey * reach)), max(y1, math.ceil(g.cy + ey * reach))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


def outline_levels(
    shape: tuple[int, int], ellipses: Sequence[Ellipse], reach: float = 1.0
) -> tuple[slice, slice, np.ndarray] | None:
    """(rows, cols, level) over :func:`bounds` (``reach``): per pixel centre, the smallest
    :meth:`Ellipse.level` against the conservatively grown ellipses (float32). ``level <= 1`` is
    the outline's mask (every pixel any point of which may lie inside); ``1 < level <= reach**2``
    a ring around it."""
    rect = bounds(shape, ellipses, reach)
    if rect is None:
        return None
    rs, cs = rect
    level: np.ndarray | None = None
    for g in (_grown(e) for e in ellipses):
        xs = np.arange(cs.start, cs.stop, dtype=np.float32) + np.float32(0.5 - g.cx)
        ys = np.arange(rs.start, rs.stop, dtype=np.float32) + np.float32(0.5 - g.cy)
        c, s = math.cos(g.angle), math.sin(g.angle)
        if abs(s) < 1e-9:  # axis-aligned: separable, two small vectors
            lv = (ys[:, None] / np.float32(g.ay)) ** 2 + (xs[None, :] / np.float32(g.ax)) ** 2
        else:
            u = (xs[None, :] * np.float32(c / g.ax)) + (ys[:, None] * np.float32(s / g.ax))
            v = (ys[:, None] * np.float32(c / g.ay)) - (xs[None, :] * np.float32(s / g.ay))
            lv = u * u + v * v
        level = lv if level is None else np.minimum(level, lv, out=level)
    assert level is not None
    return rs, cs, level


def ellipse_patch(shape: tuple[int, int], e: Ellipse) -> tuple[slice, slice, np.ndarray] | None:
    """(rows, cols, bool patch) of one ellipse within its clipped bounding rectangle.

    Conservative: a pixel belongs to the ellipse when any point of its square may lie inside
    (see :func:`outline_levels`), so even a 1 px face yields a non-empty mask."""
    return outline_patch(shape, [e])


def outline_patch(
    shape: tuple[int, int], ellipses: Sequence[Ellipse]
) -> tuple[slice, slice, np.ndarray] | None:
    """(rows, cols, bool patch) of the union of ``ellipses`` within its clipped bounding rectangle."""
    lv = outline_levels(shape, ellipses)
    if lv is None:
        return None
    rs, cs, level = lv
    return rs, cs, level <= 1.0
