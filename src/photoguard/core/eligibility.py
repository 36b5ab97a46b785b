"""The one consent-eligibility rule, as pure functions of a registry ``Pupil`` and a date (no I/O).

Four questions, one place:

* **may this pupil be matched** (may we enrol, keep and use their face template): in the registry,
  not left (``left_on`` <= today means left), ``face_matching`` consent;
* **may this pupil be visible in a channel now** (what ``decide`` publishes): may be matched *and*
  consents to the channel's consent key. A pupil who cannot be matched is never recognised, so
  never shown;
* **may this pupil be named in a channel** (a first name in a caption, a file name or text in
  the image): never on public channels; otherwise still at school with consent for the channel's
  key. Face matching plays no part (a name is not biometric). Surnames are never published at all;
* **must a live output showing this pupil be withdrawn** (what ``propagate`` and the sweep take
  down): not in the registry, no consent for the channel's key, or left and the channel is a
  leaver channel (or ``leaver_other_days`` have passed). A ``face_matching`` withdrawal alone does
  not withdraw published files: the publication consents still stand.

Opt-in only: a key missing from ``Pupil.consents`` is a *no*. Callers turn a :class:`Bar` into
the words their users read (the decision reason, the enrolment refusal).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from photoguard.config import ChannelConfig, RetentionConfig
from photoguard.core.records import Pupil

FACE_MATCHING = "face_matching"


class Bar(StrEnum):
    """Why a pupil may not be matched or shown (the first bar found, in this order)."""

    NOT_REGISTERED = "not_registered"
    LEFT = "left"
    NO_FACE_MATCHING = "no_face_matching"
    NO_CONSENT = "no_consent"  # no consent for the channel's key


def has_left(pupil: Pupil, today: date) -> bool:
    return pupil.left_on is not None and pupil.left_on <= today


def matching_bar(pupil: Pupil | None, today: date) -> Bar | None:
    """None when the pupil may be enrolled, keep templates and be recognised today."""
    if pupil is None:
        return Bar.NOT_REGISTERED
    if has_left(pupil, today):
        return Bar.LEFT
    if not pupil.consents_to(FACE_MATCHING):
        return Bar.NO_FACE_MATCHING
    return None


def may_match(pupil: Pupil | None, today: date) -> bool:
    return matching_bar(pupil, today) is None


def visibility_bar(pupil: Pupil | None, consent_key: str, today: date) -> Bar | None:
    """None when a face confidently matched to ``pupil`` may stay visible in a channel that
    requires ``consent_key``."""
    bar = matching_bar(pupil, today)
    if bar is not None:
        return bar
    assert pupil is not None
    if not pupil.consents_to(consent_key):
        return Bar.NO_CONSENT
    return None


def may_show(pupil: Pupil | None, consent_key: str, today: date) -> bool:
    return visibility_bar(pupil, consent_key, today) is None


def may_be_named(pupil: Pupil | None, channel: ChannelConfig, today: date) -> bool:
    """May this pupil's first name appear in ``channel`` (caption, file name, text in the image)?
    Never on a public channel; otherwise only for a registered pupil who has not left and consents
    to the channel's key. A surname may appear nowhere (not asked here)."""
    if pupil is None or channel.public:
        return False
    return not has_left(pupil, today) and pupil.consents_to(channel.consent)


def withdrawal_reason(
    pupil: Pupil | None, consent_key: str, channel: str, retention: RetentionConfig, today: date
) -> str | None:
    """Why a live output in ``channel`` may no longer show ``pupil`` (None: it may)."""
    if pupil is None:
        return "pupil no longer in the registry"
    if not pupil.consents_to(consent_key):
        return f"consent for {consent_key} withdrawn"
    if pupil.left_on is not None and has_left(pupil, today):
        if channel in retention.leaver_channels:
            return "pupil left the school"
        days = retention.leaver_other_days
        if days and today >= pupil.left_on + timedelta(days=days):
            return f"pupil left the school more than {days} days ago"
    return None


def may_stay_published(
    pupil: Pupil | None, consent_key: str, channel: str, retention: RetentionConfig, today: date
) -> bool:
    return withdrawal_reason(pupil, consent_key, channel, retention, today) is None


def could_need_withdrawal(pupil: Pupil | None, consent_key: str) -> bool:
    """The date-free part of :func:`withdrawal_reason`: False means no ``today`` and no retention
    setting can make it withdraw. The ledger's candidate query must select exactly these."""
    return pupil is None or pupil.left_on is not None or not pupil.consents_to(consent_key)
