"""Privacy report, class list and the yearly consent reminder (library and CLI)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.followup.classlist import class_list, render
from photoguard.followup.reports import (
    build_privacy_report,
    parse_period,
    period_cutoff,
    render_privacy,
    stale_pupils,
)
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store
from tests.support.school import consent_csv, import_consent, init_school

COLUMNS = (
    "leerling_id", "voornaam", "tussenvoegsel", "achternaam", "groep", "datum_uitschrijving", "telefoon", "parro",
    "website", "telefoon_klassenlijst",
)
EMMA = ("1", "Emma", "de", "Vries", "7", "", "0612345678", "ja", "ja", "ja")
PUPILS = (
    EMMA,
    ("2", "Daan", "van der", "Berg", "7", "", "0687654321", "ja", "nee", "nee"),
    ("3", "Sam", "", "Aalders", "7", "2020-01-01", "0611111111", "ja", "ja", "ja"),
    ("4", "Noor", "", "Bakker", "5", "", "0622222222", "ja", "ja", "ja"),
)
CSV = consent_csv(PUPILS, COLUMNS)
NAMES = ("Emma", "Vries", "Daan", "Berg", "Sam", "Aalders", "Noor", "Bakker")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = init_school(tmp_path / "school")
    store = Store(r / "state" / "photoguard.sqlite3")
    import_consent(store, r / "c.csv", CSV)
    Registry(store).set_consent("1", "website", False)
    with store.transaction() as c:
        c.execute(
            "INSERT INTO outputs(source_sha256, channel, path, sha256, visible_pupils, "
            "consent_version, created_at, withdrawn_at, withdrawn_reason) "
            "VALUES('s','website','outbox/website/"
            "2026-11-21_groep-7_kamp-emma_1.jpg','h1','[\"1\"]',1,'2026-11-20T10:00:00+00:00',"
            "'2026-11-21T10:00:00+00:00','consent for website withdrawn')"
        )
        c.execute(
            "INSERT INTO takedowns(at, channel, output_path, output_sha256, pupil_id, reason) "
            "VALUES('2026-11-21T10:00:00+00:00','website',"
            "'outbox/website/2026-11-21_groep-7_kamp-emma_1.jpg',"
            "'h1','1','consent for website withdrawn')"
        )
        Store.log_deletion(
            c, "output", "output 1", "consent for website withdrawn", sha256="h1", channel="website"
        )
    store.close()
    return r


def test_privacy_report_all_formats_without_names(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(root / "state" / "photoguard.sqlite3")
    rep = build_privacy_report(store, ["parro", "website"])
    assert rep.totals["withdrawals"] == 1 and rep.totals["deletions"] == 1
    assert rep.totals["consent_changes_by_kind"]["website:yes->no"] == 1
    assert rep.channels["website"].withdrawn == 1 and rep.channels["website"].takedowns == 1
    for fmt in ("text", "csv", "html", "json"):
        out = render_privacy(rep, fmt)
        assert "h1" in out
        for n in NAMES:
            assert n.lower() not in out.lower(), (fmt, n)
    text = render_privacy(rep, "csv")
    assert text.startswith("\ufeffsection;at;")  # Dutch Excel: a BOM and ';' by default
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))
    assert {r["section"] for r in rows} == {
        "consent_change",
        "withdrawal",
        "deletion",
        "channel_count",
    }
    assert json.loads(render_privacy(rep, "json"))["totals"]["withdrawals"] == 1
    # period filter: nothing before the history began
    empty = build_privacy_report(store, ["website"], start=date(2000, 1, 1), end=date(2000, 12, 31))
    assert empty.consent_changes == [] and empty.withdrawals == [] and empty.deletions == []
    assert (
        main(
            [
                "--root",
                str(root),
                "report",
                "privacy",
                "--from",
                "2026-11-21",
                "--to",
                "2026-11-21",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["totals"]["withdrawals"] == 1
    assert (
        main(
            ["--root", str(root), "report", "privacy", "--from", "2026-11-22", "--to", "2026-11-21"]
        )
        == 2
    )


def test_classlist(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(root / "state" / "photoguard.sqlite3")
    entries = class_list(store, "7", today=date(2026, 11, 21))
    assert [e.full_name for e in entries] == ["Daan van der Berg", "Emma de Vries"]  # Sam left
    assert [e.phone for e in entries] == ["", "0612345678"]  # Daan: no classlist_phone consent
    assert class_list(store, "groep 7", today=date(2026, 11, 21)) == entries
    rows = list(csv.reader(io.StringIO(render(entries, "7", "csv").removeprefix("\ufeff")), delimiter=";"))
    assert rows[0] == ["voornaam", "tussenvoegsel", "achternaam", "telefoon"]
    assert rows[1] == ["Daan", "van der", "Berg", ""]
    page = render(entries, "7", "html")
    assert "0687654321" not in page and "0612345678" in page and "<script" not in page
    assert main(["--root", str(root), "classlist", "7"]) == 0
    out = capsys.readouterr().out
    assert "Emma de Vries" in out and "0687654321" not in out and "Aalders" not in out
    assert main(["--root", str(root), "classlist", "5", "--format", "csv"]) == 0
    assert "Bakker" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "cutoff"),
    [
        ("30d", date(2026, 2, 28)),
        ("2w", date(2026, 3, 16)),
        ("12m", date(2025, 3, 30)),
        ("1m", date(2026, 2, 28)),  # 30 March minus a month: end of February
        ("1y", date(2025, 3, 30)),
    ],
)
def test_period_cutoff(text: str, cutoff: date) -> None:
    assert period_cutoff(text, date(2026, 3, 30)) == cutoff


@pytest.mark.parametrize("bad", ["", "12", "m", "0d", "-3d", "12x", "1.5y"])
def test_bad_period(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_period(bad)


def test_stale_and_confirmation_by_unchanged_import(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(root / "state" / "photoguard.sqlite3")
    with store.transaction() as c:
        c.execute("UPDATE pupils SET confirmed_at='2024-01-01T00:00:00+00:00'")
    stale = stale_pupils(store, "12m", today=date(2026, 11, 21))
    assert [p.pupil_id for p in stale] == ["4", "1", "2"] or sorted(p.pupil_id for p in stale) == [
        "1",
        "2",
        "4",
    ]
    assert "3" not in {p.pupil_id for p in stale}  # left the school
    assert main(["--root", str(root), "consent", "stale", "--older-than", "12m"]) == 0
    out = capsys.readouterr().out
    assert "3 pupil(s)" in out and "Emma" not in out
    # an import listing pupils unchanged confirms them
    emma_without_website = (*EMMA[:8], "nee", EMMA[9])
    rep = import_consent(store, root / "again.csv", consent_csv([emma_without_website, *PUPILS[1:]], COLUMNS))
    assert rep.changes == []
    assert stale_pupils(store, "12m") == []
    assert main(["--root", str(root), "consent", "stale", "--older-than", "soon"]) == 2
