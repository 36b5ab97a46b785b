"""A reviewer's decisions about single faces of one photo, applied to a fresh detection (pure).

A reviewer looks at a held (or published) photo and says, per face: "this is pupil P"
(:attr:`OverrideKind.CONFIRM`), "this is not pupil P" (:attr:`OverrideKind.STRANGER`) or "this is
not a face at all" (:attr:`OverrideKind.NOT_A_FACE`). The decision is kept with the face's box;
when the photo is rendered again, each decision applies to the detection that lies on that box
(IoU >= :data:`SAME_FACE_IOU`). Fail closed everywhere:

* a decision whose box no detection lies on changes nothing (the face, if any, is decided as usual);
* a confirmed face becomes a *match* of the pupil, and then :mod:`photoguard.core.decide` (with the
  eligibility rule) decides per channel; a confirmation never makes a face visible by itself;
* another face matched to the same pupil becomes a near match (one face per pupil per photo);
* "not a face" removes only a detection that matched nobody (``none`` / ``too_small``): a face that
  now matches or nearly matches a pupil is a face, whatever the mark says;
* a confirmation kept for later renders (``ledger/decisions.py``) stands only while its pupil may
  be matched (:func:`standing`): a pupil who left or whose ``face_matching`` consent was withdrawn
  is no longer confirmed anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from photoguard.core.eligibility import may_match
from photoguard.core.records import Box, Detection, Match, MatchKind, Pupil

#: a decision applies to the detection whose box overlaps its own this much (intersection over union)
SAME_FACE_IOU = 0.5


class OverrideKind(StrEnum):
    CONFIRM = "confirm"
    STRANGER = "stranger"
    NOT_A_FACE = "not_a_face"


@dataclass(frozen=True, slots=True)
class FaceOverride:
    box: Box
    kind: OverrideKind
    pupil_id: str | None = None  # CONFIRM: the pupil; STRANGER: the candidate rejected

    def to_json(self) -> dict[str, Any]:
        return {"box": self.box.to_list(), "kind": self.kind.value, "pupil_id": self.pupil_id}

    @classmethod
    def from_json(cls, data: Any) -> FaceOverride | None:
        """The decision from its stored form, or None when it is not a well-formed decision."""
        if not isinstance(data, dict):
            return None
        box, kind, pupil = data.get("box"), data.get("kind"), data.get("pupil_id")
        if not isinstance(box, list | tuple) or len(box) != 4 or kind not in set(OverrideKind):
            return None
        try:
            b = Box(*(float(v) for v in box))
        except (TypeError, ValueError):
            return None
        if pupil is not None and not isinstance(pupil, str):
            return None
        if kind == OverrideKind.CONFIRM and not pupil:
            return None
        return cls(b, OverrideKind(kind), pupil)


@dataclass(frozen=True, slots=True)
class Applied:
    """The detections and matches after the decisions, and what they did."""

    detections: list[Detection]
    matches: list[Match]
    #: per remaining face: the decision applied to it ('' when none)
    decided: list[str]
    #: the boxes removed as "not a face" (the self-check leaves these alone too)
    not_faces: list[Box]
    #: decisions that found no face to apply to (counted, never guessed)
    unmatched: int


def standing(overrides: Sequence[FaceOverride], pupils: Mapping[str, Pupil], today: date) -> list[FaceOverride]:
    """``overrides`` without the confirmations of pupils who may not be matched today (left, no
    ``face_matching`` consent, not in the registry). Fail closed: without its confirmation the
    face is decided afresh (redacted or held), never shown on a stale word. "Not this pupil" and
    "not a face" stand (the first only redacts)."""
    return [
        o
        for o in overrides
        if o.kind is not OverrideKind.CONFIRM or may_match(pupils.get(str(o.pupil_id)), today)
    ]


def face_for(box: Box, detections: Sequence[Detection]) -> int | None:
    """The index of the detection lying on ``box`` (best IoU >= :data:`SAME_FACE_IOU`), or None."""
    best, best_iou = None, SAME_FACE_IOU
    for i, d in enumerate(detections):
        iou = d.box.iou(box)
        if iou >= best_iou:
            best, best_iou = i, iou
    return best


def apply_overrides(
    detections: Sequence[Detection], matches: Sequence[Match], overrides: Sequence[FaceOverride]
) -> Applied:
    """Apply ``overrides`` (the last decision per face wins) to one photo's detections and matches."""
    dets, found = list(detections), list(matches)
    decided = [""] * len(dets)
    per_face: dict[int, FaceOverride] = {}
    unmatched = 0
    for o in overrides:
        i = face_for(o.box, dets)
        if i is None:
            unmatched += 1
            continue
        per_face[i] = o
    confirmed = {o.pupil_id for o in per_face.values() if o.kind is OverrideKind.CONFIRM}
    # one face per pupil: a face the matcher gave to a confirmed pupil, but not confirmed, is near
    for i, m in enumerate(found):
        if m.kind is MatchKind.MATCH and m.pupil_id in confirmed and i not in per_face:
            found[i] = Match(MatchKind.NEAR, m.pupil_id, m.distance, m.runner_up)
    drop: set[int] = set()
    for i, o in per_face.items():
        m = found[i]
        if o.kind is OverrideKind.CONFIRM:
            found[i] = Match(MatchKind.MATCH, o.pupil_id, m.distance, m.runner_up)
        elif o.kind is OverrideKind.STRANGER:
            # nobody; the rejected candidate stays on record (decide treats the face as not recognised)
            found[i] = Match(MatchKind.NONE, o.pupil_id, m.distance, m.runner_up)
        elif m.kind in (MatchKind.NONE, MatchKind.TOO_SMALL):
            drop.add(i)
        else:
            unmatched += 1  # "not a face" on a face that matches someone: it stays a face
            continue
        decided[i] = o.kind.value
    keep = [i for i in range(len(dets)) if i not in drop]
    return Applied(
        [dets[i] for i in keep],
        [found[i] for i in keep],
        [decided[i] for i in keep],
        [dets[i].box for i in sorted(drop)],
        unmatched,
    )


def was_applied(decision: FaceOverride, faces: Sequence[tuple[Box, str]]) -> bool:
    """Did a render apply ``decision``? ``faces``: the render's faces as (box, decision applied:
    ``reviewed``). A confirmation or rejection lies on a face that carries it; "not a face" on
    no face at all (the detection was taken out; on a face that matched someone it stays a face)."""
    on = face_for(decision.box, [Detection(b, 1.0) for b, _ in faces])
    if decision.kind is OverrideKind.NOT_A_FACE:
        return on is None
    return on is not None and faces[on][1] == decision.kind.value
