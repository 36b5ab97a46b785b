"""Pure decisions: consent x channel x match -> visible / redact / hold, with a reason per face.

The one invariant (fail closed): a face stays visible in a channel only when it is confidently
matched to an enrolled pupil who is still at school and has consent for that channel now.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from photoguard.config import ChannelConfig, NearMatchPolicy
from photoguard.core.eligibility import Bar, visibility_bar
from photoguard.core.records import FaceAction, Match, MatchKind, Pupil


@dataclass(frozen=True, slots=True)
class Verdict:
    action: FaceAction
    reason: str


def decide_face(
    match: Match,
    channel: ChannelConfig,
    pupils: Mapping[str, Pupil],
    today: date,
    near_policy: NearMatchPolicy,
    approved: bool = False,
) -> Verdict:
    """Decide one face in one channel. ``approved``: a reviewer released this channel, so a
    near-match is redacted instead of held (never made visible).

    A near match holds the channel only where a person can change the outcome: when the
    candidate pupil would be visible in this channel if the reviewer confirmed the match
    (``core.eligibility``). Otherwise the face is redacted and the channel published; a
    redacted face that could have been shown says so in its reason (for a later, optional look)."""
    if match.kind is MatchKind.TOO_SMALL:
        return Verdict(FaceAction.REDACT, "too small to recognise")
    if match.kind is MatchKind.NONE or match.pupil_id is None:
        return Verdict(FaceAction.REDACT, "not recognised")
    pupil = pupils.get(match.pupil_id)
    allowed, why_not = _allowed(pupil, channel, today)
    if match.kind is MatchKind.NEAR:
        if not allowed:
            return Verdict(FaceAction.REDACT, f"uncertain match; not shown here even if confirmed ({why_not})")
        if near_policy is NearMatchPolicy.HOLD and not approved:
            return Verdict(FaceAction.HOLD, "uncertain match to a consenting pupil")
        return Verdict(
            FaceAction.REDACT, f"uncertain match; could be shown if confirmed (consent for {channel.consent})"
        )
    if not allowed:
        return Verdict(FaceAction.REDACT, why_not)
    return Verdict(FaceAction.VISIBLE, f"consent for {channel.consent}")


def _allowed(pupil: Pupil | None, channel: ChannelConfig, today: date) -> tuple[bool, str]:
    """The eligibility rule (``core.eligibility``) in the words of a decision reason."""
    bar = visibility_bar(pupil, channel.consent, today)
    if bar is None:
        return True, ""
    return False, _WHY_NOT[bar].format(key=channel.consent)


_WHY_NOT: dict[Bar, str] = {
    Bar.NOT_REGISTERED: "pupil not in the registry",
    Bar.LEFT: "pupil has left the school",
    Bar.NO_FACE_MATCHING: "no face_matching consent",
    Bar.NO_CONSENT: "no consent for {key}",
}


def decide_all(
    matches: Sequence[Match],
    channels: Sequence[ChannelConfig],
    pupils: Mapping[str, Pupil],
    today: date,
    near_policy: NearMatchPolicy,
    approved_channels: Collection[str] = (),
) -> list[dict[str, Verdict]]:
    """One dict channel -> Verdict per face, in the order of ``matches``."""
    return [
        {
            ch.name: decide_face(m, ch, pupils, today, near_policy, ch.name in approved_channels)
            for ch in channels
        }
        for m in matches
    ]


def held_channels(verdicts: Sequence[Mapping[str, Verdict]], channels: Sequence[ChannelConfig]) -> list[str]:
    return [ch.name for ch in channels if any(v[ch.name].action is FaceAction.HOLD for v in verdicts)]


def visible_pupils(
    verdicts: Sequence[Mapping[str, Verdict]], matches: Sequence[Match], channel: str
) -> list[str]:
    return sorted(
        m.pupil_id
        for v, m in zip(verdicts, matches, strict=True)
        if v[channel].action is FaceAction.VISIBLE and m.pupil_id is not None
    )
