"""core/textsafe: formula cells, terminal escapes, Dutch-Excel CSV, the school's time zone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from photoguard.config import LocaleConfig, Settings
from photoguard.core.textsafe import OutputStyle, csv_cell, local_time, terminal_text, write_csv

AMS = ZoneInfo("Europe/Amsterdam")
UNSAFE = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))] + list(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://e.vil","klik")',
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
        "  =1+1",
        "\uff1d1+1",  # full-width '='
        "\uff0bcmd",
        "+31 6 12345678",
    ],
)
def test_formula_cells_become_text(cell: str) -> None:
    out = csv_cell(cell)
    assert isinstance(out, str) and out.startswith("'")
    assert not any(ch in out for ch in UNSAFE)


@pytest.mark.parametrize("cell", ["Emma", "van der", "O'Brien", "Zoë", "-", "", "2026-11-21 11:00", "a=b", "h1"])
def test_ordinary_cells_are_unchanged(cell: str) -> None:
    assert csv_cell(cell) == cell


def test_numbers_stay_numbers() -> None:
    assert csv_cell(-3) == -3 and csv_cell(2.5) == 2.5 and csv_cell(None) == ""


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # OSC: set the terminal title
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("\x9d0;x\x9c", "\\x9d0;x\\x9c"),  # C1 OSC ... ST
        ("abc\u202egpj.exe", "abc\\u202egpj.exe"),  # right-to-left override
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("a\nb\rc\td\x00e\x7f", "a\\x0ab\\x0dc\\x09d\\x00e\\x7f"),
        ("line\u2028break", "line\\u2028break"),
    ],
)
def test_terminal_escapes_are_made_visible(raw: str, shown: str) -> None:
    assert terminal_text(raw) == shown


@pytest.mark.parametrize("text", ["Zoë", "Ängelholm", "李雷", "محمد", "👩\u200d👩\u200d👦", "Ṣ\u0301"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert terminal_text(text) == text


@given(st.text())
def test_no_unsafe_character_survives(text: str) -> None:
    out = terminal_text(text)
    assert not any(ch in UNSAFE for ch in out)
    cell = csv_cell(text)
    assert isinstance(cell, str)
    assert not any(ch in UNSAFE for ch in cell)
    assert not cell.lstrip(" ").startswith(("=", "+", "@", "\uff1d", "\uff0b", "\uff20")) or cell.startswith("'")


def test_write_csv_defaults_to_dutch_excel() -> None:
    text = write_csv(["naam", "telefoon"], [["Zoë", "+31 6 1234"], ["=1+1", "0612"]], OutputStyle())
    assert text.startswith("\ufeffnaam;telefoon\n")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))
    assert rows == [["naam", "telefoon"], ["Zoë", "'+31 6 1234"], ["'=1+1", "0612"]]


def test_write_csv_plain_commas_without_bom() -> None:
    text = write_csv(["a", "b"], [["x,y", "-"]], OutputStyle(csv_separator=",", csv_bom=False))
    assert text == 'a,b\n"x,y",-\n'


def test_bad_style_is_refused() -> None:
    with pytest.raises(ValueError):
        OutputStyle(csv_separator="\t")
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo's own error
        OutputStyle(timezone="Mars/Olympus")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-11-21T10:00:00+00:00", "2026-11-21 11:00"),  # CET, UTC+1
        ("2026-07-01T10:00:00+00:00", "2026-07-01 12:00"),  # CEST, UTC+2
        ("2026-03-29T00:59:59+00:00", "2026-03-29 01:59"),  # the hour before summer time
        ("2026-03-29T01:00:00+00:00", "2026-03-29 03:00"),  # summer time starts
        ("2026-11-21T23:30:00Z", "2026-11-22 00:30"),  # a new day in Amsterdam
        ("2026-11-21T10:00:00", "2026-11-21 11:00"),  # no zone stored: UTC
        ("2026-11-21", "2026-11-21"),  # a date stays a date
        ("", ""),
        ("not a time\x1b[2J", "not a time\\x1b[2J"),
    ],
)
def test_local_time(stored: str, shown: str) -> None:
    assert local_time(stored, AMS) == shown


def test_local_time_of_a_datetime_and_seconds() -> None:
    dt = datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)
    assert local_time(dt, AMS, seconds=True) == "2026-11-21 11:00:05"
    assert OutputStyle(timezone="UTC").time(dt) == "2026-11-21 10:00"


def test_locale_config_defaults_and_validation() -> None:
    loc = Settings().locale
    assert (loc.timezone, loc.csv_separator, loc.csv_bom) == ("Europe/Amsterdam", ";", True)
    assert OutputStyle.from_settings(loc) == OutputStyle()
    assert LocaleConfig(timezone="America/Curacao").timezone == "America/Curacao"
    for bad in ("Europe/Atlantis", "", "../../etc/passwd"):
        with pytest.raises(ValidationError):
            LocaleConfig(timezone=bad)
    with pytest.raises(ValidationError):
        LocaleConfig(csv_separator="|")  # type: ignore[arg-type]
