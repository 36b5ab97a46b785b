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
