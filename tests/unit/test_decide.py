"""Table-driven tests of the pure consent decision."""

from __future__ import annotations

from datetime import date

import pytest

from photoguard.config import NearMatchPolicy, Settings
from photoguard.core.decide import decide_all, decide_face, held_channels, visible_pupils
from photoguard.core.records import FaceAction, Match, MatchKind, Pupil

TODAY = date(2026, 11, 21)
ALL_YES = {k: True for k in ("newsletter", "parro", "guide", "website", "social", "face_matching")}


def pupil(pid: str, left: date | None = None, **consents: bool) -> Pupil:
    return Pupil(pid, "Emma", "de", "Vries", "7", left_on=left, consents={**ALL_YES, **consents})


PUPILS = {
    "yes": pupil("yes"),
    "noweb": pupil("noweb", website=False),
    "left": pupil("left", left=date(2026, 7, 31)),
    "leaving": pupil("leaving", left=date(2027, 7, 31)),
    "nofm": pupil("nofm", face_matching=False),
}
WEB = Settings().channel("website")
PARRO = Settings().channel("parro")


@pytest.mark.parametrize(
    ("match", "channel", "expected"),
    [
        (Match(MatchKind.MATCH, "yes", 0.3), WEB, FaceAction.VISIBLE),
        (Match(MatchKind.MATCH, "noweb", 0.3), WEB, FaceAction.REDACT),
        (Match(MatchKind.MATCH, "noweb", 0.3), PARRO, FaceAction.VISIBLE),
        (Match(MatchKind.MATCH, "left", 0.3), PARRO, FaceAction.REDACT),
        (Match(MatchKind.MATCH, "leaving", 0.3), PARRO, FaceAction.VISIBLE),
        (Match(MatchKind.MATCH, "nofm", 0.3), PARRO, FaceAction.REDACT),
        (Match(MatchKind.MATCH, "unknown-id", 0.3), PARRO, FaceAction.REDACT),
        (Match(MatchKind.NEAR, "yes", 0.5), WEB, FaceAction.HOLD),
        (Match(MatchKind.NEAR, "noweb", 0.5), WEB, FaceAction.REDACT),
        (Match(MatchKind.NEAR, "left", 0.5), PARRO, FaceAction.REDACT),
        (Match(MatchKind.NONE), WEB, FaceAction.REDACT),
        (Match(MatchKind.TOO_SMALL), PARRO, FaceAction.REDACT),
    ],
)
def test_decide_face(match: Match, channel: object, expected: FaceAction) -> None:
    v = decide_face(match, channel, PUPILS, TODAY, NearMatchPolicy.HOLD)  # type: ignore[arg-type]
    assert v.action is expected
    assert v.reason


def test_near_match_redact_policy_and_reviewer_approval() -> None:
    near = Match(MatchKind.NEAR, "yes", 0.5)
    assert decide_face(near, WEB, PUPILS, TODAY, NearMatchPolicy.REDACT).action is FaceAction.REDACT
    assert decide_face(near, WEB, PUPILS, TODAY, NearMatchPolicy.HOLD, approved=True).action is FaceAction.REDACT


def test_decide_all_holds_only_the_uncertain_channel() -> None:
    chans = Settings().channels
    matches = [Match(MatchKind.MATCH, "yes", 0.3), Match(MatchKind.NEAR, "noweb", 0.5)]
    verdicts = decide_all(matches, chans, PUPILS, TODAY, NearMatchPolicy.HOLD)
    # the near-match pupil has consent everywhere but the website -> held everywhere else
    assert held_channels(verdicts, chans) == ["newsletter", "parro", "guide", "social"]
    assert visible_pupils(verdicts, matches, "website") == ["yes"]


NEWSLETTER = Settings().channel("newsletter")
SOCIAL = Settings().channel("social")
NOSOCIAL = {"nosocial": pupil("nosocial", social=False)}


@pytest.mark.parametrize(
    ("candidate", "channel", "policy", "approved", "expected", "reason_part"),
    [
        # a person can change the outcome: the candidate would be visible if confirmed -> hold
        ("yes", WEB, NearMatchPolicy.HOLD, False, FaceAction.HOLD, "consenting pupil"),
        ("leaving", PARRO, NearMatchPolicy.HOLD, False, FaceAction.HOLD, "consenting pupil"),
        ("noweb", PARRO, NearMatchPolicy.HOLD, False, FaceAction.HOLD, "consenting pupil"),
        # ... unless the school redacts near matches, or a reviewer already released the channel
        ("yes", WEB, NearMatchPolicy.REDACT, False, FaceAction.REDACT, "could be shown if confirmed"),
        ("yes", WEB, NearMatchPolicy.HOLD, True, FaceAction.REDACT, "could be shown if confirmed"),
        # nobody can change the outcome: the candidate could never be shown here -> redact, publish
        ("noweb", WEB, NearMatchPolicy.HOLD, False, FaceAction.REDACT, "no consent for website"),
        ("nosocial", SOCIAL, NearMatchPolicy.HOLD, False, FaceAction.REDACT, "no consent for social"),
        ("left", NEWSLETTER, NearMatchPolicy.HOLD, False, FaceAction.REDACT, "has left the school"),
        ("nofm", NEWSLETTER, NearMatchPolicy.HOLD, False, FaceAction.REDACT, "no face_matching consent"),
        ("unknown-id", NEWSLETTER, NearMatchPolicy.HOLD, False, FaceAction.REDACT, "not in the registry"),
        ("noweb", WEB, NearMatchPolicy.REDACT, True, FaceAction.REDACT, "not shown here even if confirmed"),
    ],
)
def test_near_match_holds_only_where_confirming_could_show_the_pupil(
    candidate: str,
    channel: object,
    policy: NearMatchPolicy,
    approved: bool,
    expected: FaceAction,
    reason_part: str,
) -> None:
    near = Match(MatchKind.NEAR, candidate, 0.5, 0.6)
    v = decide_face(near, channel, {**PUPILS, **NOSOCIAL}, TODAY, policy, approved)  # type: ignore[arg-type]
    assert v.action is expected
    assert reason_part in v.reason


@pytest.mark.parametrize(
    ("near_candidate", "held"),
    [
        ("yes", ["newsletter", "parro", "guide", "website", "social"]),
        ("noweb", ["newsletter", "parro", "guide", "social"]),
        ("nosocial", ["newsletter", "parro", "guide", "website"]),
        ("left", []),
        ("nofm", []),
    ],
)
def test_a_photo_is_held_only_in_channels_where_the_near_candidate_could_appear(
    near_candidate: str, held: list[str]
) -> None:
    chans = Settings().channels
    matches = [Match(MatchKind.MATCH, "yes", 0.3), Match(MatchKind.NEAR, near_candidate, 0.5), Match(MatchKind.NONE)]
    verdicts = decide_all(matches, chans, {**PUPILS, **NOSOCIAL}, TODAY, NearMatchPolicy.HOLD)
    assert held_channels(verdicts, chans) == held
    for ch in chans:
        assert verdicts[2][ch.name].action is FaceAction.REDACT
        assert verdicts[0][ch.name].action is FaceAction.VISIBLE
        if ch.name not in held:
            assert verdicts[1][ch.name].action is FaceAction.REDACT
