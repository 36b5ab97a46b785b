"""Table-driven tests of the one consent-eligibility rule (pure; no database)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from photoguard.config import ChannelConfig, RetentionConfig
from photoguard.core import eligibility as el
from photoguard.core.eligibility import Bar
from photoguard.core.records import Pupil

TODAY = date(2026, 11, 21)
YESTERDAY = TODAY - timedelta(days=1)
TOMORROW = TODAY + timedelta(days=1)


def pupil(left: date | None = None, **consents: bool) -> Pupil:
    return Pupil("p", "Emma", "de", "Vries", "7", left_on=left, consents=consents)


# (pupil, channel consent key, matching bar, visibility bar)
MATCH_AND_SHOW = [
    (None, "parro", Bar.NOT_REGISTERED, Bar.NOT_REGISTERED),
    (pupil(face_matching=True, parro=True), "parro", None, None),
    (pupil(face_matching=True, parro=False), "parro", None, Bar.NO_CONSENT),
    (pupil(face_matching=True), "parro", None, Bar.NO_CONSENT),  # blank means no
    (pupil(face_matching=False, parro=True), "parro", Bar.NO_FACE_MATCHING, Bar.NO_FACE_MATCHING),
    (pupil(parro=True), "parro", Bar.NO_FACE_MATCHING, Bar.NO_FACE_MATCHING),
    (pupil(YESTERDAY, face_matching=True, parro=True), "parro", Bar.LEFT, Bar.LEFT),
    (pupil(TODAY, face_matching=True, parro=True), "parro", Bar.LEFT, Bar.LEFT),  # the day itself
    (pupil(TOMORROW, face_matching=True, parro=True), "parro", None, None),
    (pupil(YESTERDAY, parro=False), "parro", Bar.LEFT, Bar.LEFT),  # leaving is named first
    (pupil(face_matching=True, website=True, parro=False), "website", None, None),
]


@pytest.mark.parametrize(("p", "key", "matching", "visibility"), MATCH_AND_SHOW)
def test_matching_and_visibility_table(p: Pupil | None, key: str, matching: Bar | None, visibility: Bar | None) -> None:
    assert el.matching_bar(p, TODAY) is matching
    assert el.may_match(p, TODAY) is (matching is None)
    assert el.visibility_bar(p, key, TODAY) is visibility
    assert el.may_show(p, key, TODAY) is (visibility is None)


def _every_pupil() -> list[Pupil | None]:
    """Every combination of leave date, face_matching and one publication consent (yes/no/blank)."""
    lefts = [None, TODAY - timedelta(days=400), YESTERDAY, TODAY, TOMORROW]
    answers: list[bool | None] = [True, False, None]
    out: list[Pupil | None] = [None]
    for left, fm, parro in itertools.product(lefts, answers, answers):
        consents = {k: v for k, v in (("face_matching", fm), ("parro", parro)) if v is not None}
        out.append(pupil(left, **consents))
    return out


@pytest.mark.parametrize("p", _every_pupil())
def test_visible_exactly_when_matchable_and_consenting(p: Pupil | None) -> None:
    for key in ("parro", "website"):
        expected = el.may_match(p, TODAY) and p is not None and p.consents.get(key) is True
        assert el.may_show(p, key, TODAY) is expected


LEAVERS = RetentionConfig(leaver_channels=["parro"], leaver_other_days=30)
LEFT_OCT = date(2026, 10, 1)

# (pupil, consent key, channel, today, reason or None)
WITHDRAW = [
    (None, "parro", "parro", TODAY, "pupil no longer in the registry"),
    (pupil(parro=True), "parro", "parro", TODAY, None),
    (pupil(parro=False), "parro", "parro", TODAY, "consent for parro withdrawn"),
    (pupil(), "parro", "parro", TODAY, "consent for parro withdrawn"),
    (pupil(parro=True, face_matching=False), "parro", "parro", TODAY, None),  # publication consent stands
    (pupil(LEFT_OCT, parro=True), "parro", "parro", TODAY, "pupil left the school"),
    (pupil(LEFT_OCT, parro=True), "parro", "parro", LEFT_OCT, "pupil left the school"),
    (pupil(LEFT_OCT, parro=True), "parro", "parro", LEFT_OCT - timedelta(days=1), None),
    (pupil(LEFT_OCT, website=True), "website", "website", date(2026, 10, 30), None),
    (
        pupil(LEFT_OCT, website=True),
        "website",
        "website",
        date(2026, 10, 31),
        "pupil left the school more than 30 days ago",
    ),
    (pupil(LEFT_OCT, website=False), "website", "website", TODAY, "consent for website withdrawn"),  # consent first
    (pupil(TOMORROW, parro=True), "parro", "parro", TODAY, None),
]


@pytest.mark.parametrize(("p", "key", "channel", "today", "reason"), WITHDRAW)
def test_withdrawal_table(p: Pupil | None, key: str, channel: str, today: date, reason: str | None) -> None:
    assert el.withdrawal_reason(p, key, channel, LEAVERS, today) == reason
    assert el.may_stay_published(p, key, channel, LEAVERS, today) is (reason is None)


def test_leaver_other_days_zero_keeps_other_channels() -> None:
    never = RetentionConfig(leaver_channels=["parro"], leaver_other_days=0)
    gone = pupil(date(2020, 1, 1), website=True)
    assert el.withdrawal_reason(gone, "website", "website", never, TODAY) is None


@pytest.mark.parametrize("p", _every_pupil())
def test_date_free_prefilter_covers_every_withdrawal(p: Pupil | None) -> None:
    """What the ledger's candidate query selects (``could_need_withdrawal``) must include every
    output the dated rule withdraws, on any day and with any retention setting."""
    settings = [LEAVERS, RetentionConfig(leaver_channels=[], leaver_other_days=0)]
    days = [TODAY + timedelta(days=d) for d in (-800, -400, -1, 0, 1, 40, 800)]
    for key, channel, retention, today in itertools.product(("parro", "website"), ("parro", "website"), settings, days):
        if el.withdrawal_reason(p, key, channel, retention, today) is not None:
            assert el.could_need_withdrawal(p, key)
    if p is not None and p.left_on is None and p.consents.get("parro") is True:
        assert not el.could_need_withdrawal(p, "parro")


# --------------------------------------------------------------------------------------------
# May a pupil be named (first name in a caption, a file name or text in the image)?

CLOSED = ChannelConfig(name="parro", consent="parro", public=False)
PUBLIC = ChannelConfig(name="website", consent="website", public=True)

NAMING = [
    (None, CLOSED, False),  # not in the registry
    (pupil(parro=True), CLOSED, True),  # face matching plays no part
    (pupil(face_matching=True, parro=True), CLOSED, True),
    (pupil(face_matching=True), CLOSED, False),  # blank means no
    (pupil(parro=False), CLOSED, False),
    (pupil(YESTERDAY, parro=True), CLOSED, False),  # left
    (pupil(TODAY, parro=True), CLOSED, False),  # the leave day itself
    (pupil(TOMORROW, parro=True), CLOSED, True),
    (pupil(website=True, face_matching=True), PUBLIC, False),  # never on a public channel
]


@pytest.mark.parametrize(("p", "channel", "named"), NAMING)
def test_may_be_named(p: Pupil | None, channel: ChannelConfig, named: bool) -> None:
    assert el.may_be_named(p, channel, TODAY) is named


def test_textpolicy_and_naming_use_the_one_rule() -> None:
    from photoguard.core import naming, textpolicy

    assert textpolicy.may_be_named is el.may_be_named
    assert naming.may_be_named is el.may_be_named
