"""Pure matching rules (no model): thresholds, margin, one MATCH per pupil, too-small faces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoguard.config import IdentifyConfig
from photoguard.core.records import Box, MatchKind
from photoguard.photo.identify import TEMPLATE_DIM, Gallery, match_faces, matchable

CFG = IdentifyConfig(match_distance=0.45, review_distance=0.55, margin=0.06, min_face_px=40)


def at(distance: float, axis: int = 0) -> np.ndarray:
    """A template at ``distance`` from the origin along one axis."""
    v = np.zeros(TEMPLATE_DIM, np.float32)
    v[axis] = distance
    return v


def origin_gallery(**pupils: float) -> Gallery:
    """Pupils placed on distinct axes at the given distance from the origin."""
    ids, rows = [], []
    for i, (pid, d) in enumerate(pupils.items()):
        ids.append(pid)
        rows.append(at(d, i))
    return Gallery(tuple(ids), np.stack(rows))


def test_empty_gallery_gives_none() -> None:
    g = Gallery.empty()
    assert len(g) == 0 and g.vectors.shape == (0, TEMPLATE_DIM)
    m = match_faces([at(0.0)], g, CFG)
    assert m[0].kind == MatchKind.NONE and m[0].pupil_id is None


def test_none_template_is_too_small() -> None:
    m = match_faces([None], origin_gallery(a=0.1), CFG)
    assert m[0].kind == MatchKind.TOO_SMALL


def test_match_near_none_by_distance() -> None:
    g = origin_gallery(a=0.30)
    assert match_faces([at(0)], g, CFG)[0].kind == MatchKind.MATCH
    g = origin_gallery(a=0.50)
    m = match_faces([at(0)], g, CFG)[0]
    assert m.kind == MatchKind.NEAR and m.pupil_id == "a" and m.distance == pytest.approx(0.5)
    g = origin_gallery(a=0.70)
    m = match_faces([at(0)], g, CFG)[0]
    assert m.kind == MatchKind.NONE and m.pupil_id is None


def test_boundaries_are_inclusive() -> None:
    cfg = IdentifyConfig(match_distance=0.5, review_distance=0.75, margin=0.0)
    assert match_faces([at(0)], origin_gallery(a=0.5), cfg)[0].kind == MatchKind.MATCH
    assert match_faces([at(0)], origin_gallery(a=0.75), cfg)[0].kind == MatchKind.NEAR


def test_margin_to_runner_up_required() -> None:
    m = match_faces([at(0)], origin_gallery(a=0.30, b=0.33), CFG)[0]
    assert m.kind == MatchKind.NEAR and m.pupil_id == "a"
    assert m.runner_up == pytest.approx(0.33, abs=1e-6)
    m = match_faces([at(0)], origin_gallery(a=0.30, b=0.40), CFG)[0]
    assert m.kind == MatchKind.MATCH and m.pupil_id == "a"


def test_runner_up_is_another_pupil_not_another_template() -> None:
    # two templates of the same pupil close together must not block the match
    g = Gallery(("a", "a", "b"), np.stack([at(0.30, 0), at(0.31, 1), at(0.9, 2)]))
    m = match_faces([at(0)], g, CFG)[0]
    assert m.kind == MatchKind.MATCH
    assert m.distance == pytest.approx(0.30, abs=1e-6)
    assert m.runner_up == pytest.approx(0.9, abs=1e-6)


def test_each_pupil_matched_once_per_photo() -> None:
    g = origin_gallery(a=0.0)
    far, near = at(0.3, 5), at(0.1, 6)
    m = match_faces([far, near, None], g, CFG)
    assert [x.kind for x in m] == [MatchKind.NEAR, MatchKind.MATCH, MatchKind.TOO_SMALL]
    assert m[0].pupil_id == "a"


def test_gallery_validation() -> None:
    with pytest.raises(ValueError):
        Gallery(("a",), np.zeros((2, TEMPLATE_DIM), np.float32))
    with pytest.raises(ValueError):
        Gallery(("a",), np.zeros((1, 64), np.float32))
    g = Gallery(("a",), np.zeros((1, TEMPLATE_DIM), np.float64))
    assert g.vectors.dtype == np.float32


def test_matchable() -> None:
    assert matchable(Box(0, 0, 40, 40), CFG)
    assert not matchable(Box(0, 0, 39.5, 80), CFG)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1.2), min_size=1, max_size=6),
    st.lists(st.floats(0, 1.2), min_size=1, max_size=4),
)
def test_match_invariants(pupil_d: list[float], face_d: list[float]) -> None:
    ids = tuple(f"p{i}" for i in range(len(pupil_d)))
    g = Gallery(ids, np.stack([at(d, i) for i, d in enumerate(pupil_d)]))
    faces = [at(d, 100 + i) for i, d in enumerate(face_d)]
    out = match_faces(faces, g, CFG)
    matched = [m.pupil_id for m in out if m.kind == MatchKind.MATCH]
    assert len(matched) == len(set(matched))  # a pupil at most once
    for m in out:
        if m.kind == MatchKind.MATCH:
            assert m.distance is not None and m.distance <= CFG.match_distance
            assert m.runner_up is None or m.runner_up - m.distance >= CFG.margin - 1e-6
        if m.kind == MatchKind.NEAR:
            assert m.distance is not None and m.distance <= CFG.review_distance
