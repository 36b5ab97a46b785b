"""Names, file names and reasons from outside reach every list and report (issue 17): no output
may carry a spreadsheet formula or a terminal escape sequence, CSV is Dutch-Excel ready by default
and times are shown in the school's time zone (stored times stay UTC)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.ledger.db import Store
from tests.support.school import consent_csv, edit_config, import_consent, init_school

COLUMNS = ("leerling_id", "voornaam", "tussenvoegsel", "achternaam", "groep", "telefoon_klassenlijst", "telefoon")
FORMULA_NAME = '=HYPERLINK("http://e.vil/?x","klik")'
ESCAPE_NAME = "\x1b[2J\x1b[31mEvil\x9b1m\u202eliveE"
PUPILS = (
    ("1", FORMULA_NAME, "", "+cmd|' /C calc'!A0", "7", "ja", "@SUM(1+1)"),
    ("2", "Daan", "van der", ESCAPE_NAME, "7", "ja", "-2+3"),
    ("3", "\tTab", "", "Normaal", "7", "nee", ""),
)
HOSTILE_FILE = "outbox/parro/2026-11-21_=cmd|calc!A1_\x1b]0;pwned\x07_\u202egpj.jpg"

#: characters that may never reach a terminal or a spreadsheet raw
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = init_school(tmp_path / "school")
    store = Store(r / "state" / "photoguard.sqlite3")
    import_consent(store, r / "c.csv", consent_csv(PUPILS, COLUMNS))
    with store.transaction() as c:
        c.execute(
            "INSERT INTO takedowns(at, channel, output_path, output_sha256, pupil_id, reason) "
            "VALUES('2026-11-21T10:00:00+00:00','parro',?,'h1','2','=1+1 consent withdrawn')",
            (HOSTILE_FILE,),
        )
    store.close()
    return r


def _run(root: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["--root", str(root), *argv]) == 0
    return capsys.readouterr().out


def _assert_no_raw_controls(out: str, what: str) -> None:
    bad = RAW_CONTROL.findall(out)
    assert not bad, f"{what}: raw control characters {bad!r}"


def _assert_safe_csv(out: str, what: str, sep: str = ";") -> list[list[str]]:
    _assert_no_raw_controls(out.replace("\t", ""), what)
    rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff")), delimiter=sep))
    for row in rows:
        for cell in row:
            assert not cell.lstrip(" ").startswith(("=", "+", "@", "\t", "\r")), f"{what}: formula cell {cell!r}"
            assert not (cell.startswith("-") and cell.strip() != "-"), f"{what}: formula cell {cell!r}"
    return rows


OUTPUTS = [
    ("classlist", "7", "--format", "csv"),
    ("classlist", "7", "--format", "table"),
    ("classlist", "7", "--format", "html"),
    ("takedown", "list", "--format", "csv"),
    ("takedown", "list", "--format", "table"),
    ("takedown", "list", "--format", "html"),
    ("report", "privacy", "--format", "csv"),
    ("report", "privacy", "--format", "text"),
    ("report", "privacy", "--format", "html"),
    ("report", "privacy", "--format", "json"),
    ("consent", "show", "2"),
    ("consent", "show", "1"),
]


@pytest.mark.parametrize("argv", OUTPUTS, ids=["-".join(a) for a in OUTPUTS])
def test_no_output_carries_a_formula_or_an_escape_sequence(
    root: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    out = _run(root, capsys, *argv)
    what = " ".join(argv)
    _assert_no_raw_controls(out, what)
    if argv[-1] == "csv":
        rows = _assert_safe_csv(out, what)
        assert len(rows) > 1
    if argv[-1] == "html":
        assert "<script" not in out and 'href="http' not in out
    if argv[0] == "classlist":  # the names are still there, shown for what they are
        assert "HYPERLINK" in out and "Evil" in out and "\\x1b[2J" in out


def test_a_formula_name_stays_readable_in_the_csv(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _assert_safe_csv(_run(root, capsys, "classlist", "7", "--format", "csv"), "classlist")
    by_first = {r[0]: r for r in rows[1:]}
    formula = by_first["'" + FORMULA_NAME]
    assert formula[2] == "'+cmd|' /C calc'!A0" and formula[3] == "'@SUM(1+1)"
    daan = by_first["Daan"]
    assert daan[2] == "\\x1b[2J\\x1b[31mEvil\\x9b1m\\u202eliveE" and daan[3] == "'-2+3"


def test_csv_is_dutch_excel_ready_by_default_and_plain_on_request(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(root, capsys, "takedown", "list", "--format", "csv")
    assert out.startswith("\ufeffat;channel;file;")
    edit_config(root, csv_separator='","', csv_bom="false")
    out = _run(root, capsys, "takedown", "list", "--format", "csv")
    assert out.startswith("at,channel,file,")
    rows = _assert_safe_csv(out, "takedown plain", sep=",")
    assert rows[1][0] == "2026-11-21 11:00:00"


def test_times_are_shown_in_the_school_time_zone(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # stored 10:00 UTC on 21 November is 11:00 in Amsterdam (CET)
    table = _run(root, capsys, "takedown", "list")
    assert "2026-11-21 11:00" in table and "10:00" not in table
    text = _run(root, capsys, "report", "privacy", "--format", "text")
    assert "2026-11-21 11:00" in text and "Europe/Amsterdam" in text
    # JSON stays machine time: UTC as stored
    doc = json.loads(_run(root, capsys, "report", "privacy", "--format", "json"))
    assert doc["withdrawals"][0]["at"] == "2026-11-21T10:00:00+00:00"
    edit_config(root, timezone='"UTC"')
    assert "2026-11-21 10:00" in _run(root, capsys, "takedown", "list")


def test_an_unknown_time_zone_is_refused(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_config(root, timezone='"Europe/Atlantis"')
    assert main(["--root", str(root), "takedown", "list"]) != 0
    assert "Europe/Atlantis" in capsys.readouterr().err


def test_review_list_and_show_are_terminal_safe_and_local(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(root / "state" / "photoguard.sqlite3")
    with store.transaction() as c:
        c.execute(
            "INSERT INTO quarantine(id, sha256, status, reason, held_channels, created_at) "
            "VALUES('q1','abc','held',?,'[\"parro\"]','2026-07-01T10:00:00+00:00')",
            ("review needed \x1b]0;pwned\x07\u202e",),
        )
    store.close()
    listing = _run(root, capsys, "review", "list")
    _assert_no_raw_controls(listing, "review list")
    assert "2026-07-01 12:00" in listing and "\\x1b]0;pwned\\x07\\u202e" in listing  # CEST
    shown = _run(root, capsys, "review", "show", "q1")
    _assert_no_raw_controls(shown, "review show")
    assert "2026-07-01 12:00 Europe/Amsterdam" in shown
