"""Pure matching rules (no model): thresholds, margin, one MATCH per pupil, too-small faces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from photoguard.config import IdentifyConfig
from photoguard.core.records import Box, MatchKind
from photoguard.photo.detect.base import ModelError
from photoguard.photo.identify import (
    TEMPLATE_DIM,
    Gallery,
    MatchRule,
    assign_matches,
    distance_matrices,
    match_faces,
    matchable,
    rule_for,
)

CFG = IdentifyConfig(template_engine="opencv", match_distance=0.45, review_distance=0.55, margin=0.06, min_face_px=40)


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
    cfg = IdentifyConfig(template_engine="opencv", match_distance=0.5, review_distance=0.75, margin=0.0)
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
    # the same pupil twice in one photo: the closer face keeps the pupil, the other is nobody
    # (redacted), not "near" (which would hold the photo for a person)
    g = origin_gallery(a=0.0)
    far, near = at(0.3, 5), at(0.1, 6)
    m = match_faces([far, near, None], g, CFG)
    assert [x.kind for x in m] == [MatchKind.NONE, MatchKind.MATCH, MatchKind.TOO_SMALL]
    assert m[1].pupil_id == "a" and m[0].pupil_id is None
    # order does not matter
    m = match_faces([near, far], g, CFG)
    assert [x.kind for x in m] == [MatchKind.MATCH, MatchKind.NONE]


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
    # a gallery of only unit-norm rows is an sface gallery: refused by the dlib rule (tested below)
    assume(not all(abs(d - 1.0) < 1e-3 for d in pupil_d))
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


# -- joint assignment --------------------------------------------------------------------------


RULE = rule_for(CFG)


def decide(rows: list[list[float]], pids: str = "abc", rule: MatchRule = RULE) -> list[tuple[MatchKind, str | None]]:
    out = assign_matches(np.array(rows, dtype=np.float64), list(pids[: len(rows[0])]), rule)
    return [(m.kind, m.pupil_id) for m in out]


def test_joint_assignment_beats_first_come() -> None:
    # face 0 is closest to a (0.20) but also fits b (0.30); face 1 fits only a (0.25).
    # First come would give a to face 0 and leave face 1 near a; the best overall matching is
    # face 0 -> b, face 1 -> a. Face 0's runner-up a is taken by face 1, so its margin is clear.
    assert decide([[0.20, 0.30], [0.25, 0.90]], "ab") == [(MatchKind.MATCH, "b"), (MatchKind.MATCH, "a")]
    assert decide([[0.25, 0.90], [0.20, 0.30]], "ab") == [(MatchKind.MATCH, "a"), (MatchKind.MATCH, "b")]


def test_ambiguous_face_is_near_when_the_other_pupil_is_not_taken() -> None:
    m = assign_matches(np.array([[0.20, 0.22]]), ["a", "b"], RULE)[0]
    assert (m.kind, m.pupil_id, m.runner_up) == (MatchKind.NEAR, "a", pytest.approx(0.22))


def test_the_same_pupil_twice_keeps_the_closer_face_whatever_the_order() -> None:
    rows = {0: [0.35, 0.90], 1: [0.15, 0.90], 2: [0.90, 0.10]}
    for perm in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        got = dict(zip(perm, decide([rows[i] for i in perm], "ac"), strict=True))
        assert got == {0: (MatchKind.NONE, None), 1: (MatchKind.MATCH, "a"), 2: (MatchKind.MATCH, "c")}


def test_a_second_face_near_another_free_pupil_is_near_that_pupil() -> None:
    assert decide([[0.10, 0.90], [0.30, 0.50]], "ab") == [(MatchKind.MATCH, "a"), (MatchKind.NEAR, "b")]


def test_demotion_frees_the_pupil_for_the_runner_up_check() -> None:
    # face 0 -> a and face 1 -> b by assignment; face 1 is ambiguous (b 0.30 vs c 0.32) and is
    # demoted, so b is no longer taken and face 0 (a 0.20, b 0.22) must be demoted as well
    out = decide([[0.20, 0.22, 0.90], [0.90, 0.30, 0.32]])
    assert out == [(MatchKind.NEAR, "a"), (MatchKind.NEAR, "b")]


def test_infinite_distances_are_never_matched() -> None:
    inf = float("inf")
    assert decide([[inf, inf]], "ab") == [(MatchKind.NONE, None)]
    assert decide([[inf, 0.1]], "ab") == [(MatchKind.MATCH, "b")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1.2), min_size=3, max_size=3), min_size=1, max_size=5))
def test_assignment_invariants(rows: list[list[float]]) -> None:
    out = assign_matches(np.array(rows), ["a", "b", "c"], RULE)
    matched = {m.pupil_id: f for f, m in enumerate(out) if m.kind == MatchKind.MATCH}
    assert len(matched) == sum(m.kind == MatchKind.MATCH for m in out)
    for f, m in enumerate(out):
        if m.kind == MatchKind.MATCH:
            assert m.distance is not None and m.distance <= RULE.match
            others = [rows[f][j] for j, p in enumerate("abc") if p != m.pupil_id and matched.get(p, f) == f]
            assert all(o - m.distance >= RULE.margin - 1e-9 for o in others)
        elif m.kind == MatchKind.NEAR:
            assert m.distance is not None and m.distance <= RULE.review
            assert m.pupil_id not in matched
    # the number of confident matches never drops below the greedy first-come count's bound:
    # every face whose row has a unique clear minimum no other face wants is matched
    for f, row in enumerate(rows):
        best = min(range(3), key=lambda j: row[j])
        alone = all(rows[g][j] > RULE.review for g in range(len(rows)) if g != f for j in range(3))
        clear = all(row[j] - row[best] >= RULE.margin for j in range(3) if j != best)
        if alone and clear and row[best] <= RULE.match:
            assert out[f].kind == MatchKind.MATCH and out[f].pupil_id == "abc"[best]


def test_match_faces_places_faces_jointly_on_real_vectors() -> None:
    # two faces, one pupil: geometry through match_faces (Euclidean distances)
    g = origin_gallery(a=0.0)
    m = match_faces([at(0.2, 3), at(0.1, 4)], g, CFG)
    assert [(x.kind, x.pupil_id) for x in m] == [(MatchKind.NONE, None), (MatchKind.MATCH, "a")]
    assert m[0].distance == pytest.approx(0.2, abs=1e-6)


# -- group first -------------------------------------------------------------------------------


def two_pupils(a: float, z: float) -> tuple[Gallery, np.ndarray]:
    """Gallery of pupils a and z with Euclidean distances ``a`` and ``z`` to the returned face."""
    return origin_gallery(a=a, z=z), at(0.0)


GROUP_CFG = IdentifyConfig(
    template_engine="opencv", match_distance=0.45, review_distance=0.55, margin=0.06, outside_group_distance=0.35
)


def test_group_first_uses_the_stricter_rule_outside_the_group() -> None:
    g, face = two_pupils(0.40, 0.90)
    assert match_faces([face], g, GROUP_CFG)[0].kind == MatchKind.MATCH  # no group known: normal rule
    m = match_faces([face], g, GROUP_CFG, group_pupils={"a"})[0]
    assert (m.kind, m.pupil_id) == (MatchKind.MATCH, "a")
    m = match_faces([face], g, GROUP_CFG, group_pupils={"z"})[0]  # a is of another group: 0.40 > 0.35
    assert (m.kind, m.pupil_id) == (MatchKind.NEAR, "a")
    assert m.distance == pytest.approx(0.50, abs=1e-5)  # the penalty is part of the distance
    g, face = two_pupils(0.30, 0.90)
    m = match_faces([face], g, GROUP_CFG, group_pupils=set())[0]  # clear even by the stricter rule
    assert (m.kind, m.pupil_id) == (MatchKind.MATCH, "a")


def test_group_first_prefers_the_group_pupil_over_a_slightly_closer_outsider() -> None:
    g, face = two_pupils(0.30, 0.28)
    assert match_faces([face], g, GROUP_CFG)[0].kind == MatchKind.NEAR  # school-wide: ambiguous
    m = match_faces([face], g, GROUP_CFG, group_pupils=["a"])[0]
    assert (m.kind, m.pupil_id) == (MatchKind.MATCH, "a")
    assert m.runner_up == pytest.approx(0.38, abs=1e-5)


def test_outside_rule_must_be_stricter() -> None:
    with pytest.raises(ValueError):
        IdentifyConfig(match_distance=0.45, outside_group_distance=0.5)
    with pytest.raises(ValueError):
        IdentifyConfig(sface_match_similarity=0.5, sface_outside_group_similarity=0.45)
    with pytest.raises(ValueError):
        IdentifyConfig(sface_match_similarity=0.3)  # OpenCV's 0.363 let strangers through: bounded


# -- sface rule and template families ------------------------------------------------------------


#: the rules before two-photo support for matches (tested separately, with the defaults, below)
SFACE = IdentifyConfig(template_engine="sface", sface_match_similarity=0.45, sface_review_similarity=0.35,
                       sface_margin=0.05, sface_outside_group_similarity=0.55, sface_match_support_similarity=0.0)


def unit(*coords: tuple[int, float]) -> np.ndarray:
    v = np.zeros(TEMPLATE_DIM, np.float32)
    for axis, value in coords:
        v[axis] = value
    return v / np.linalg.norm(v)


def cos_to_e0(similarity: float, axis: int) -> np.ndarray:
    """A unit template with the given cosine similarity to the first axis."""
    return unit((0, similarity), (axis, float(np.sqrt(1 - similarity**2))))


def test_sface_rule_is_cosine_similarity() -> None:
    face = unit((0, 1.0))
    for sim, kind in ((0.60, MatchKind.MATCH), (0.4501, MatchKind.MATCH), (0.40, MatchKind.NEAR),
                      (0.30, MatchKind.NONE)):
        # two enrolment photos, the second at the two-photo support level
        g = Gallery(("a", "a"), np.stack([cos_to_e0(sim, 5), cos_to_e0(min(sim, 0.37), 7)]))
        m = match_faces([face], g, SFACE)[0]
        assert m.kind == kind, sim
        assert m.distance == pytest.approx(1 - sim, abs=1e-5)
    g = Gallery(("a", "b"), np.stack([cos_to_e0(0.60, 5), cos_to_e0(0.57, 6)]))
    assert match_faces([face], g, SFACE)[0].kind == MatchKind.NEAR  # margin 0.05


def test_sface_templates_never_meet_dlib_templates() -> None:
    dlib_gallery = origin_gallery(a=1.4, b=1.3)
    with pytest.raises(ModelError, match="re-enrol"):
        match_faces([unit((0, 1.0))], dlib_gallery, SFACE)
    sface_gallery = Gallery(("a", "b"), np.stack([unit((0, 1.0)), unit((1, 1.0))]))
    with pytest.raises(ModelError, match="sface"):
        match_faces([at(0.0)], sface_gallery, CFG)
    with pytest.raises(ModelError):  # a dlib template against an sface gallery
        match_faces([at(1.4, 3)], sface_gallery, SFACE)
    assert match_faces([None], dlib_gallery, SFACE)[0].kind == MatchKind.TOO_SMALL


def test_a_near_match_needs_a_second_enrolment_photo() -> None:
    """Two-photo support: in the review band, a face is NEAR a pupil (and may hold a channel)
    only when a second enrolment template of that pupil also reaches the support similarity;
    otherwise it is NONE (redacted). Confident matches need no second photo."""
    face = unit((0, 1.0))
    supported = Gallery(("a", "a", "a"), np.stack([cos_to_e0(0.40, 5), cos_to_e0(0.37, 6), cos_to_e0(0.1, 7)]))
    lone = Gallery(("a", "a", "a"), np.stack([cos_to_e0(0.40, 5), cos_to_e0(0.30, 6), cos_to_e0(0.1, 7)]))
    single = Gallery(("a",), np.stack([cos_to_e0(0.40, 5)]))
    m = match_faces([face], supported, SFACE)[0]
    assert (m.kind, m.pupil_id) == (MatchKind.NEAR, "a")
    for g in (lone, single):
        m = match_faces([face], g, SFACE)[0]
        assert (m.kind, m.pupil_id) == (MatchKind.NONE, None)
        assert m.distance == pytest.approx(0.60, abs=1e-5)  # the best distance is still reported
    off = SFACE.model_copy(update={"sface_near_support_similarity": 0.0})
    assert match_faces([face], single, off)[0].kind == MatchKind.NEAR  # rule switched off
    confident = Gallery(("a",), np.stack([cos_to_e0(0.60, 5)]))
    assert match_faces([face], confident, SFACE)[0].kind == MatchKind.MATCH


def test_two_photo_support_outside_the_group_carries_the_stricter_rule() -> None:
    """Outside the photo's group the second photo must pass the support level plus the same
    penalty as the best one."""
    face = unit((0, 1.0))
    cfg = SFACE.model_copy(update={"sface_outside_group_similarity": 0.55})  # penalty 0.10
    g = Gallery(("a", "a"), np.stack([cos_to_e0(0.52, 5), cos_to_e0(0.40, 6)]))
    assert match_faces([face], g, cfg, group_pupils=["a"])[0].kind == MatchKind.MATCH
    assert match_faces([face], g, cfg, group_pupils=[])[0].kind == MatchKind.NONE  # 2nd 0.30 after penalty
    g2 = Gallery(("a", "a"), np.stack([cos_to_e0(0.52, 5), cos_to_e0(0.47, 6)]))
    assert match_faces([face], g2, cfg, group_pupils=[])[0].kind == MatchKind.NEAR


def test_distance_matrices_give_each_pupils_second_template() -> None:
    g = Gallery(("a", "b", "a", "a"), np.stack([cos_to_e0(0.9, 5), cos_to_e0(0.8, 6), cos_to_e0(0.5, 7),
                                                cos_to_e0(0.7, 8)]))
    pids, best, second = distance_matrices(np.stack([unit((0, 1.0))]), g, "cosine")
    assert pids == ["a", "b"]
    assert best[0] == pytest.approx([0.1, 0.2], abs=1e-5)
    assert second[0, 0] == pytest.approx(0.3, abs=1e-5)
    assert np.isinf(second[0, 1])  # one template: no second
    with pytest.raises(ValueError, match="support"):
        assign_matches(best, pids, rule_for(SFACE), support=second[:, :1])


# -- two-photo support for confident matches (the defaults: match 0.50, one photo alone 0.60,
# -- a second photo 0.50) -------------------------------------------------------------------------

DEFAULT_SFACE = IdentifyConfig(template_engine="sface")


def pupil_templates(*similarities: float, pid: str = "a", first_axis: int = 5) -> Gallery:
    """Enrolment templates of one pupil at the given cosine similarities to the face (first axis)."""
    return Gallery(tuple(pid for _ in similarities),
                   np.stack([cos_to_e0(s, first_axis + k) for k, s in enumerate(similarities)]))


def test_defaults_of_two_photo_support_for_matches() -> None:
    cfg = DEFAULT_SFACE
    assert (cfg.sface_match_similarity, cfg.sface_single_photo_similarity, cfg.sface_match_support_similarity) == (
        0.50, 0.60, 0.50)


def test_a_match_below_the_single_photo_level_needs_a_second_enrolment_photo() -> None:
    """Between the match level (0.50) and the single-photo level (0.60) a face is MATCHed only
    when a second enrolment photo of the pupil also reaches 0.50; otherwise it is redacted (NONE,
    nothing held), its best similarity still reported."""
    face = unit((0, 1.0))
    supported = pupil_templates(0.54, 0.5001, 0.30)
    m = match_faces([face], supported, DEFAULT_SFACE)[0]
    assert (m.kind, m.pupil_id) == (MatchKind.MATCH, "a")
    for g in (pupil_templates(0.54, 0.46, 0.30), pupil_templates(0.54)):
        m = match_faces([face], g, DEFAULT_SFACE)[0]
        assert (m.kind, m.pupil_id) == (MatchKind.NONE, None)
        assert m.distance == pytest.approx(0.46, abs=1e-5)
    # one photo alone suffices from the single-photo level on
    m = match_faces([face], pupil_templates(0.61), DEFAULT_SFACE)[0]
    assert (m.kind, m.pupil_id) == (MatchKind.MATCH, "a")
    off = DEFAULT_SFACE.model_copy(update={"sface_match_support_similarity": 0.0})
    assert match_faces([face], pupil_templates(0.54, 0.46, 0.30), off)[0].kind == MatchKind.MATCH


def test_a_look_alike_stranger_matched_on_one_photo_is_redacted() -> None:
    """The lfwschool case: a stranger at 0.538 to one enrolment photo of a pupil of the photo's
    group, 0.458 and 0.374 to the others, next pupil 0.219: confident by one photo only."""
    face = unit((0, 1.0))
    g = Gallery(("a", "a", "a", "b", "b"), np.stack([
        cos_to_e0(0.538, 5), cos_to_e0(0.458, 6), cos_to_e0(0.374, 7), cos_to_e0(0.219, 8), cos_to_e0(0.1, 9)]))
    m = match_faces([face], g, DEFAULT_SFACE, group_pupils=["a", "b"])[0]
    assert (m.kind, m.pupil_id) == (MatchKind.NONE, None)
    before = DEFAULT_SFACE.model_copy(update={"sface_match_support_similarity": 0.0})
    assert match_faces([face], g, before, group_pupils=["a", "b"])[0].kind == MatchKind.MATCH


def test_two_photo_support_for_matches_outside_the_group_carries_the_penalty() -> None:
    """Outside the photo's group (0.60, a penalty of 0.10) one photo alone needs 0.70 and the
    second photo 0.60."""
    face = unit((0, 1.0))
    assert match_faces([face], pupil_templates(0.64, 0.62), DEFAULT_SFACE, group_pupils=[])[0].kind == MatchKind.MATCH
    assert match_faces([face], pupil_templates(0.64, 0.58), DEFAULT_SFACE, group_pupils=[])[0].kind == MatchKind.NONE
    assert match_faces([face], pupil_templates(0.71), DEFAULT_SFACE, group_pupils=[])[0].kind == MatchKind.MATCH
    assert match_faces([face], pupil_templates(0.64, 0.58), DEFAULT_SFACE, group_pupils=["a"])[0].kind == (
        MatchKind.MATCH)


def test_the_single_photo_level_is_not_below_the_match_level() -> None:
    with pytest.raises(ValueError, match="single_photo"):
        IdentifyConfig(sface_match_similarity=0.55, sface_single_photo_similarity=0.52)


SUPPORTED_RULE = MatchRule("cosine", 0.5, 0.58, 0.05, 0.4, 0.64, single_match=0.4, match_support=0.5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(0.2, 0.8), min_size=3, max_size=3), min_size=1, max_size=4),
       st.lists(st.lists(st.floats(0.0, 0.4), min_size=3, max_size=3), min_size=4, max_size=4))
def test_support_for_matches_only_takes_matches_away(rows: list[list[float]], extra: list[list[float]]) -> None:
    """The rule never adds a MATCH or changes whom a face matches; every MATCH it keeps beyond the
    single-photo level has a second template within the support distance."""
    dist = np.array(rows)
    support = dist + np.array(extra)[: len(rows)]
    pids = ["a", "b", "c"]
    without = assign_matches(dist, pids, MatchRule("cosine", 0.5, 0.58, 0.05, 0.4, 0.64), support=support)
    with_rule = assign_matches(dist, pids, SUPPORTED_RULE, support=support)
    for f, (m0, m1) in enumerate(zip(without, with_rule, strict=True)):
        if m1.kind is MatchKind.MATCH:
            assert (m0.kind, m0.pupil_id) == (MatchKind.MATCH, m1.pupil_id)
            c = pids.index(m1.pupil_id)
            assert dist[f, c] <= 0.4 or support[f, c] <= 0.5


def test_no_other_face_is_near_a_pupil_whose_face_lacked_support() -> None:
    """The pupil's own face at 0.54 without a second photo is redacted; a weaker face nearly
    matching the same pupil (0.45, with support) then holds nothing either."""
    own, other = unit((0, 1.0)), unit((1, 1.0))
    g = Gallery(("a", "a"), np.stack([
        unit((0, 0.54), (1, 0.45), (5, float(np.sqrt(1 - 0.54**2 - 0.45**2)))),
        unit((0, 0.46), (1, 0.40), (6, float(np.sqrt(1 - 0.46**2 - 0.40**2)))),
    ]))
    m_own, m_other = match_faces([own, other], g, DEFAULT_SFACE)
    assert (m_own.kind, m_other.kind) == (MatchKind.NONE, MatchKind.NONE)
    alone = match_faces([other], g, DEFAULT_SFACE)[0]
    assert (alone.kind, alone.pupil_id) == (MatchKind.NEAR, "a")  # without the band face it would hold
