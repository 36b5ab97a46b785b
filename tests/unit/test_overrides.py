"""A reviewer's face decisions applied to a fresh detection (pure): which face a decision lands
on, one face per pupil, "not a face" only where nobody matched, and the stored form."""

from __future__ import annotations

from datetime import date

from photoguard.core.overrides import FaceOverride, OverrideKind, apply_overrides, standing, was_applied
from photoguard.core.records import Box, Detection, Match, MatchKind, Pupil

A, B, C = Box(0, 0, 100, 100), Box(200, 0, 300, 100), Box(400, 0, 450, 50)
DETS = [Detection(A, 0.9), Detection(B, 0.9), Detection(C, 0.6)]


def test_a_confirmation_makes_the_near_face_a_match_and_demotes_another_face_of_that_pupil() -> None:
    matches = [Match(MatchKind.NEAR, "p1", 0.5), Match(MatchKind.MATCH, "p1", 0.3), Match(MatchKind.NONE)]
    out = apply_overrides(DETS, matches, [FaceOverride(Box(2, 1, 101, 99), OverrideKind.CONFIRM, "p1")])
    assert [m.kind for m in out.matches] == [MatchKind.MATCH, MatchKind.NEAR, MatchKind.NONE]
    assert out.matches[0].pupil_id == "p1" and out.decided == ["confirm", "", ""]
    assert out.unmatched == 0 and out.not_faces == []


def test_a_rejection_makes_the_face_nobody() -> None:
    matches = [Match(MatchKind.NEAR, "p1", 0.5), Match(MatchKind.NONE), Match(MatchKind.NONE)]
    out = apply_overrides(DETS, matches, [FaceOverride(A, OverrideKind.STRANGER, "p1")])
    assert out.matches[0].kind is MatchKind.NONE and out.decided[0] == "stranger"


def test_not_a_face_drops_only_a_detection_that_matched_nobody() -> None:
    matches = [Match(MatchKind.NEAR, "p1", 0.5), Match(MatchKind.NONE), Match(MatchKind.TOO_SMALL)]
    marks = [FaceOverride(b, OverrideKind.NOT_A_FACE) for b in (A, B, C)]
    out = apply_overrides(DETS, matches, marks)
    assert [d.box for d in out.detections] == [A]  # the near match is a face, whatever the mark
    assert out.not_faces == [B, C] and out.unmatched == 1


def test_a_decision_whose_face_is_not_found_changes_nothing() -> None:
    matches = [Match(MatchKind.NEAR, "p1", 0.5), Match(MatchKind.NONE), Match(MatchKind.NONE)]
    out = apply_overrides(DETS, matches, [FaceOverride(Box(40, 40, 140, 140), OverrideKind.CONFIRM, "p1")])
    assert out.matches == matches and out.unmatched == 1


def test_the_last_decision_about_a_face_wins() -> None:
    matches = [Match(MatchKind.NEAR, "p1", 0.5), Match(MatchKind.NONE), Match(MatchKind.NONE)]
    out = apply_overrides(
        DETS, matches, [FaceOverride(A, OverrideKind.CONFIRM, "p1"), FaceOverride(A, OverrideKind.STRANGER, "p1")]
    )
    assert out.matches[0].kind is MatchKind.NONE


def test_stored_form_round_trips_and_malformed_entries_are_dropped() -> None:
    o = FaceOverride(A, OverrideKind.CONFIRM, "p1")
    assert FaceOverride.from_json(o.to_json()) == o
    for bad in (None, [], {"box": [1, 2, 3], "kind": "confirm", "pupil_id": "p"}, {"box": [0, 0, 1, 1], "kind": "x"},
                {"box": [0, 0, 1, 1], "kind": "confirm"}, {"box": ["a", 0, 1, 1], "kind": "not_a_face"}):
        assert FaceOverride.from_json(bad) is None


def test_a_kept_confirmation_stands_only_while_its_pupil_may_be_matched() -> None:
    today = date(2026, 11, 21)
    yes = {"face_matching": True, "newsletter": True}
    pupils = {
        "p1": Pupil("p1", "A", "", "X", "7", consents=yes),
        "p2": Pupil("p2", "B", "", "Y", "7", consents={"newsletter": True}),  # no face_matching
        "p3": Pupil("p3", "C", "", "Z", "7", left_on=date(2026, 11, 21), consents=yes),  # left today
        "p4": Pupil("p4", "D", "", "W", "7", left_on=date(2026, 12, 1), consents=yes),  # leaves later
    }
    kept = [FaceOverride(A, OverrideKind.CONFIRM, pid) for pid in ("p1", "p2", "p3", "p4", "p9")]
    kept += [FaceOverride(B, OverrideKind.STRANGER, "p2"), FaceOverride(C, OverrideKind.NOT_A_FACE)]
    out = standing(kept, pupils, today)
    assert [(o.kind.value, o.pupil_id) for o in out] == [
        ("confirm", "p1"),
        ("confirm", "p4"),
        ("stranger", "p2"),  # only ever redacts
        ("not_a_face", None),
    ]


def test_was_applied_tells_a_decision_that_found_its_face() -> None:
    faces = [(A, "confirm"), (B, "")]  # C was taken out as "not a face"
    assert was_applied(FaceOverride(Box(1, 1, 100, 100), OverrideKind.CONFIRM, "p1"), faces)
    assert not was_applied(FaceOverride(B, OverrideKind.CONFIRM, "p1"), faces)  # not carried by B
    assert not was_applied(FaceOverride(B, OverrideKind.STRANGER, "p1"), faces)
    assert was_applied(FaceOverride(C, OverrideKind.NOT_A_FACE), faces)
    assert not was_applied(FaceOverride(B, OverrideKind.NOT_A_FACE), faces)  # still a face there
