"""Head outlines on synthetic geometry: tilted, profile, edge-cut and large faces.

A face is drawn in its own frame (upright, eyes on y = -15, mouth on y = 25, so the eyes-to-mouth
distance is 40), then rotated and moved into the photo. Points that identify a person (both eyes,
the hairline above them, the temples, the back of the head in profile) must lie inside the mask.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoguard.config import RedactConfig, RedactMethod, RedactOutline
from photoguard.core.records import Box, Detection
from photoguard.photo.headmask import (
    Ellipse,
    box_ellipse,
    ellipse_patch,
    extend_at_edges,
    head_outline,
    usable_landmarks,
)
from photoguard.photo.redact import redact, redaction_mask

Point = tuple[float, float]

# upright face in its own frame (origin between the eyes and the mouth)
EYES: list[Point] = [(-20.0, -15.0), (20.0, -15.0)]
NOSE: Point = (0.0, 5.0)
MOUTH: list[Point] = [(-15.0, 25.0), (15.0, 25.0)]
HAIRLINE: Point = (0.0, -55.0)  # one eyes-to-mouth distance above the eyes
TEMPLES: list[Point] = [(-36.0, -30.0), (36.0, -30.0)]
#: the tight box a detector gives for the upright face (brows to chin, cheek to cheek)
FACE_BOX = (-38.0, -40.0, 38.0, 55.0)


def place(points: list[Point], angle_deg: float, at: Point) -> list[Point]:
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return [(at[0] + x * c - y * s, at[1] + x * s + y * c) for x, y in points]


def tight_box(angle_deg: float, at: Point) -> Box:
    """The axis-aligned box a detector gives for the rotated face: about the upright face box's
    size around the rotated face's centre (detectors trained on upright boxes hug the skin; they
    do not return the rotated rectangle's bounding box)."""
    x1, y1, x2, y2 = FACE_BOX
    (cx, cy), = place([((x1 + x2) / 2, (y1 + y2) / 2)], angle_deg, at)
    hw, hh = (x2 - x1) / 2, (y2 - y1) / 2
    return Box(cx - hw, cy - hh, cx + hw, cy + hh)


def landmarks(angle_deg: float, at: Point) -> tuple[Point, ...]:
    return tuple(place([*EYES, NOSE, *MOUTH], angle_deg, at))


def inside(mask: np.ndarray, pts: list[Point]) -> list[bool]:
    return [bool(mask[int(y), int(x)]) for x, y in pts]


SHAPE = (400, 400)


@pytest.mark.parametrize("angle", [-50.0, -30.0, 30.0, 50.0])
def test_tilted_head_eyes_hairline_temples_inside(angle: float) -> None:
    at = (200.0, 200.0)
    box = tight_box(angle, at)
    det = Detection(box, 0.9, "test", landmarks(angle, at))
    wanted = place([*EYES, HAIRLINE, *TEMPLES], angle, at)
    head = redaction_mask(SHAPE, [det], 1.4)
    assert all(inside(head, wanted))
    if abs(angle) >= 45:  # the test means something: the box ellipse leaves some visible
        old = redaction_mask(SHAPE, [box], 1.4, outline=RedactOutline.ELLIPSE)
        assert not all(inside(old, wanted))


def test_upright_head_raised_toward_forehead_without_landmarks() -> None:
    at = (200.0, 200.0)
    box = tight_box(0.0, at)
    head = redaction_mask(SHAPE, [box], 1.4)
    old = redaction_mask(SHAPE, [box], 1.4, outline=RedactOutline.ELLIPSE)
    top = lambda m: int(np.nonzero(m.any(axis=1))[0].min())  # noqa: E731
    assert top(head) < top(old)  # more forehead and hair
    assert all(inside(head, place([*EYES, HAIRLINE], 0.0, at)))


@pytest.mark.parametrize("facing", [1.0, -1.0])
def test_profile_back_of_head_and_far_eye_inside(facing: float) -> None:
    """A face turned ~70° to one side: eyes bunched toward the nose, the box on the face only."""
    cx = 200.0
    f = facing
    # near eye, far eye (close to the nose), nose sticking out, mouth toward the nose side
    pts = ((cx - 2 * f, 185.0), (cx + 14 * f, 185.0), (cx + 30 * f, 205.0), (cx + 2 * f, 225.0), (cx + 16 * f, 225.0))
    xs = (cx - 25 * f, cx + 34 * f)
    box = Box(min(xs), 160.0, max(xs), 255.0)
    det = Detection(box, 0.8, "test", pts)
    back_of_head = (cx - 45 * f, 175.0)  # ear and hair on the side away from the nose
    hairline = (cx + 6 * f, 145.0)
    wanted = [pts[0], pts[1], back_of_head, hairline]
    head = redaction_mask(SHAPE, [det], 1.4)
    assert all(inside(head, wanted))
    old = redaction_mask(SHAPE, [box], 1.4, outline=RedactOutline.ELLIPSE)
    assert not inside(old, [back_of_head])[0]
    # without the landmarks the side is not known: the back of the head is the landmarks' gain
    assert not inside(redaction_mask(SHAPE, [box], 1.4), [back_of_head])[0]


@pytest.mark.parametrize("edge", ["left", "top", "right", "bottom"])
def test_face_cut_by_the_photo_edge(edge: str) -> None:
    """Half the face lies outside the photo; the detector's box is clipped to the photo."""
    h, w = 300, 300
    centre = {"left": (5.0, 150.0), "right": (295.0, 150.0), "top": (150.0, 30.0), "bottom": (150.0, 290.0)}[edge]
    full = tight_box(0.0, centre)
    clipped = full.clipped(w, h)
    eyes_hair = place([*EYES, HAIRLINE, *TEMPLES], 0.0, centre)
    visible = [(x, y) for x, y in eyes_hair if 0 <= x < w and 0 <= y < h]
    assert visible  # something to protect is in the photo
    head = redaction_mask((h, w), [clipped], 1.4)
    assert all(inside(head, visible))
    ext = extend_at_edges(clipped, (h, w))
    assert ext.area > clipped.area  # the box was extended past the edge


def test_large_faces_grow_more_than_small_ones() -> None:
    def ratio(side: float) -> float:
        box = Box(1000.0, 1000.0, 1000.0 + side * 0.8, 1000.0 + side)
        e = box_ellipse(box, 1.4)
        return e.ax * e.ay / (box.width * box.height)

    assert ratio(200.0) > ratio(60.0) > ratio(20.0)
    assert ratio(200.0) > ratio(20.0) * 1.2
    assert ratio(400.0) == pytest.approx(ratio(200.0), rel=0.05)  # capped


def test_implausible_landmarks_are_ignored() -> None:
    box = Box(100.0, 100.0, 180.0, 200.0)
    far = ((0.0, 0.0), (10.0, 0.0), (5.0, 5.0), (0.0, 10.0), (10.0, 10.0))
    assert usable_landmarks(box, far) is None
    one_point = ((140.0, 150.0),) * 5
    assert usable_landmarks(box, one_point) is None
    nan = ((float("nan"), 150.0),) + ((140.0, 150.0),) * 4
    assert usable_landmarks(box, nan) is None
    assert usable_landmarks(box, None) is None
    assert len(head_outline(box, 1.4, far)) == 1
    assert (redaction_mask(SHAPE, [Detection(box, 0.9, "t", far)], 1.4) == redaction_mask(SHAPE, [box], 1.4)).all()


def test_conservative_rasterisation_of_a_rotated_ellipse() -> None:
    e = Ellipse(20.3, 20.7, 6.0, 2.0, math.radians(33))
    patch = ellipse_patch((40, 40), e)
    assert patch is not None
    rs, cs, m = patch
    full = np.zeros((40, 40), bool)
    full[rs, cs] = m
    # every pixel with a sampled point inside the ellipse is in the mask
    for y in range(40):
        for x in range(40):
            if any(e.contains(x + dx, y + dy) for dx in (0.0, 0.5, 1.0) for dy in (0.0, 0.5, 1.0)):
                assert full[y, x], (x, y)
    assert full.sum() < math.pi * 7.5 * 3.5  # and not much more than it


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-30, 150),
    st.floats(-30, 110),
    st.floats(2, 90),
    st.floats(2, 90),
    st.floats(-90, 90),
    st.sampled_from([RedactMethod.SOLID, RedactMethod.PIXELATE]),
)
def test_head_outline_covers_the_whole_box(
    x: float, y: float, w: float, h: float, angle: float, method: RedactMethod
) -> None:
    """Whatever the landmarks say, every pixel whose centre lies inside the box is redacted."""
    box = Box(x, y, x + w, y + h)
    scale = h / 95.0
    cx, cy = box.center
    pts = tuple((cx + px * scale, cy + py * scale) for px, py in place([*EYES, NOSE, *MOUTH], angle, (0, 0)))
    det = Detection(box, 0.9, "t", pts)
    rgb = np.random.default_rng(1).integers(0, 256, (100, 140, 3), dtype=np.uint8)
    cfg = RedactConfig(method=method)
    m = redaction_mask(rgb.shape[:2], [det], cfg.grow)
    out = redact(rgb, [det], cfg, seed=0)
    cx1, cy1 = max(0, math.ceil(x - 0.5)), max(0, math.ceil(y - 0.5))
    cx2, cy2 = min(140, math.floor(x + w - 0.5) + 1), min(100, math.floor(y + h - 0.5) + 1)
    if cx2 > cx1 and cy2 > cy1:
        assert m[cy1:cy2, cx1:cx2].all()
    assert (out[~m] == rgb[~m]).all()
