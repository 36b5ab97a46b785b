"""The web app's pure parts: passwords, words and reasons, times, face outlines, --listen."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from photoguard.cli.web import parse_listen
from photoguard.web import i18n
from photoguard.web.passwords import DUMMY_HASH, check_new_password, hash_password, verify_password
from photoguard.web.previews import NoPreview, face_rows, redacted_boxes


def test_password_hash_round_trip_and_salt() -> None:
    a, b = hash_password("een lange wachtzin"), hash_password("een lange wachtzin")
    assert a != b and a.startswith("scrypt$15$8$1$")
    assert verify_password("een lange wachtzin", a) and verify_password("een lange wachtzin", b)
    assert not verify_password("een lange wachtzim", a)


@pytest.mark.parametrize(
    "stored", ["", "plain", "scrypt$15$8$1$zz$00", "bcrypt$15$8$1$00$00", "scrypt$30$8$1$00$00", DUMMY_HASH]
)
def test_a_malformed_or_dummy_hash_never_verifies(stored: str) -> None:
    assert not verify_password("", stored) and not verify_password("anything", stored)


def test_new_password_rules() -> None:
    assert check_new_password("kort")
    assert check_new_password(" tien tekens of meer")
    assert check_new_password("tien tekens of meer") is None


@pytest.mark.parametrize(
    ("reason", "dutch"),
    [
        ("no consent for website", "geen toestemming voor Website"),
        # a channel by the name staff know, not the configuration key
        ("no consent for newsletter", "geen toestemming voor Nieuwsbrief"),
        ("no consent for social", "geen toestemming voor Sociale media"),
        ("consent for guide", "toestemming voor Schoolgids"),
        ("outbox/parro not writable (read-only file system); stays held", "outbox/parro is niet beschrijfbaar"),
        ("outbox/website: disk full", "De schijf is vol"),
        ("not recognised", "niet herkend als leerling met toestemming"),
        ("uncertain match to a consenting pupil; review needed for: parro", "niet zeker genoeg"),
        ("pupil has left the school", "de leerling heeft de school verlaten"),
        ("something nobody translated", "something nobody translated"),
    ],
)
def test_reasons_in_dutch(reason: str, dutch: str) -> None:
    assert dutch in i18n.reason(reason, "nl")
    assert i18n.reason(reason, "en") == reason


@pytest.mark.parametrize(
    ("cookie", "header", "lang"),
    [
        (None, None, "nl"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "de-DE,nl;q=0.8,en;q=0.5", "nl"),
        ("en", "nl", "en"),
        ("fr", "fr-FR", "nl"),
    ],
)
def test_language_choice(cookie: str | None, header: str | None, lang: str) -> None:
    assert i18n.pick_language(cookie, header) == lang


def test_times_in_amsterdam_the_dutch_way() -> None:
    tz = ZoneInfo("Europe/Amsterdam")
    assert i18n.local_time("2026-12-02T17:04:00+00:00", tz) == "2-12-2026 18:04"  # winter: UTC+1
    assert i18n.local_time("2026-07-01T10:30:00Z", tz) == "1-7-2026 12:30"  # summer: UTC+2
    assert i18n.local_time("2026-07-01T10:30:00", tz) == "1-7-2026 12:30"  # naive = UTC
    assert i18n.local_time("gisteren", tz) == "" and i18n.local_time(None, tz) == ""


def test_preview_redacts_every_face_not_visible_in_the_channel() -> None:
    faces = [
        {"box": [0, 0, 10, 10], "decision": {"parro": "visible", "website": "redact"}},
        {"box": [20, 20, 30, 30], "decision": {"parro": "hold"}},
        {"box": [40, 40, 50, 50]},
    ]
    assert len(redacted_boxes(faces, "parro")) == 2
    assert len(redacted_boxes(faces, "website")) == 3
    assert len(redacted_boxes(faces, "")) == 3  # the thumbnail: everything
    with pytest.raises(NoPreview):
        redacted_boxes([{"box": None}], "parro")


def test_face_rows_are_clipped_to_the_photo() -> None:
    rows = face_rows(
        [{"box": [-5, 10, 120, 60], "decision": {"parro": "hold"}, "reason": {"parro": "x"}}], "parro", 100, 50
    )
    assert (rows[0]["x"], rows[0]["y"], rows[0]["w"], rows[0]["h"]) == (0.0, 10.0, 100.0, 40.0)
    assert rows[0]["action"] == "hold" and rows[0]["reason"] == "x"
    assert face_rows([{"box": [1, 1, 2, 2]}], "website", 10, 10)[0]["action"] == "redact"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:0", ("::1", 0)), ("0.0.0.0:443", ("0.0.0.0", 443))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", "localhost:8080", "127.0.0.1:99999", "127.0.0.1:", ":8080", "1.2.3.4:x"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)
