"""Consent provenance (issue 13): every value knows its source; an import changes a value only
when the administration's own answer changed, and never re-grants what another source withdrew."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.ledger.consent import KIND_ADMIN, KIND_MANUAL, KIND_WEB, Change, Provenance, Registry
from photoguard.ledger.db import Store
from tests.support.school import DAAN, EMMA, consent_csv, import_consent

WEBSITE = 9  # index of the website answer in a CONSENT_COLUMNS row
NEWSLETTER = 6


def _with(row: tuple[str, ...], index: int, value: str) -> tuple[str, ...]:
    return (*row[:index], value, *row[index + 1 :])


PUPIL_2001 = ("2001", "Noor", "ter", "Horst", "5", "", "ja", "ja", "ja", "ja", "ja", "nee", "nee")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "db.sqlite3", create=True)
    import_consent(s, tmp_path / "export-1.csv", consent_csv([EMMA, DAAN, PUPIL_2001]))
    return s


def test_reimport_after_a_paper_withdrawal_does_not_regrant(store: Store, tmp_path: Path) -> None:
    reg = Registry(store)
    assert reg.set_consent("2001", "website", False) == [Change("2001", "website", True, False)]
    assert reg.pupil("2001").consents["website"] is False  # type: ignore[union-attr]
    # next month's export still says website=ja (the office did not update it), and it also
    # withdraws Daan's newsletter and adds a new pupil: those apply
    newcomer = ("3001", "Sem", "", "Smit", "1", "", "ja", "ja", "ja", "ja", "ja", "ja", "nee")
    rep = import_consent(
        store, tmp_path / "export-2.csv", consent_csv([EMMA, _with(DAAN, NEWSLETTER, "nee"), PUPIL_2001, newcomer])
    )
    assert [(c.pupil_id, c.key, c.kind) for c in rep.conflicts] == [("2001", "website", KIND_MANUAL)]
    assert reg.pupil("2001").consents["website"] is False  # type: ignore[union-attr]
    assert ("1002", "newsletter", True, False) in [(c.pupil_id, c.key, c.old, c.new) for c in rep.changes]
    assert reg.pupil("1002").consents["newsletter"] is False  # type: ignore[union-attr]
    assert rep.added == 1 and reg.pupil("3001") is not None
    assert not any(c.pupil_id == "2001" for c in rep.changes)
    # and the month after, with the office still behind: listed again, still not re-granted
    again = import_consent(store, tmp_path / "export-3.csv", consent_csv([EMMA, DAAN, PUPIL_2001]))
    assert [(c.pupil_id, c.key) for c in again.conflicts] == [("2001", "website")]
    assert reg.pupil("2001").consents["website"] is False  # type: ignore[union-attr]
    events = [r["event"] for r in store.query("SELECT event FROM audit WHERE pupil_id='2001'")]
    assert events.count("consent.conflict") == 2


def test_every_source_that_withdraws_is_kept(store: Store, tmp_path: Path) -> None:
    reg = Registry(store)
    reg.set_consent("2001", "social", False, source="web:form-17", kind=KIND_WEB)
    rep = import_consent(store, tmp_path / "e.csv", consent_csv([EMMA, DAAN, PUPIL_2001]))
    found = [(c.pupil_id, c.key, c.kind, c.source) for c in rep.conflicts]
    assert found == [("2001", "social", KIND_WEB, "web:form-17")]
    assert reg.pupil("2001").consents["social"] is False  # type: ignore[union-attr]


def test_accept_regrants_applies_them_with_a_marked_source(store: Store, tmp_path: Path) -> None:
    from photoguard.ledger.consent import import_csv

    reg = Registry(store)
    reg.set_consent("2001", "website", False)
    f = tmp_path / "export-2.csv"
    f.write_text(consent_csv([EMMA, DAAN, PUPIL_2001]), encoding="utf-8")
    rep = import_csv(store, f, accept_regrants=True)
    assert rep.conflicts == []
    assert [(c.pupil_id, c.key) for c in rep.regrants_accepted] == [("2001", "website")]
    assert reg.pupil("2001").consents["website"] is True  # type: ignore[union-attr]
    last = reg.history("2001")[-1]
    assert (last["key"], last["old_value"], last["new_value"]) == ("website", 0, 1)
    assert last["source"] == "csv:export-2.csv; regrant accepted" and last["kind"] == KIND_ADMIN
    assert reg.provenance("2001")["website"].kind == KIND_ADMIN


def test_a_person_regrants_with_consent_set(store: Store, tmp_path: Path) -> None:
    reg = Registry(store)
    reg.set_consent("2001", "website", False)
    reg.set_consent("2001", "website", True)
    rep = import_consent(store, tmp_path / "e.csv", consent_csv([EMMA, DAAN, PUPIL_2001]))
    assert rep.conflicts == [] and rep.changes == []
    assert reg.pupil("2001").consents["website"] is True  # type: ignore[union-attr]


def test_an_import_changes_a_value_only_when_the_office_changed_its_answer(store: Store, tmp_path: Path) -> None:
    reg = Registry(store)
    # a paper *yes* the office has not recorded: the unchanged export (website=nee) keeps it
    reg.set_consent("1001", "website", True)
    rep = import_consent(store, tmp_path / "e2.csv", consent_csv([EMMA, DAAN, PUPIL_2001]))
    assert rep.changes == [] and rep.conflicts == []
    assert reg.pupil("1001").consents["website"] is True  # type: ignore[union-attr]
    # the office records it (ja): nothing changes; then the office withdraws it (nee): applied
    emma_yes = _with(EMMA, WEBSITE, "ja")
    rep = import_consent(store, tmp_path / "e3.csv", consent_csv([emma_yes, DAAN, PUPIL_2001]))
    assert rep.changes == [] and reg.pupil("1001").consents["website"] is True  # type: ignore[union-attr]
    rep = import_consent(store, tmp_path / "e4.csv", consent_csv([EMMA, DAAN, PUPIL_2001]))
    assert [(c.pupil_id, c.key, c.new) for c in rep.changes] == [("1001", "website", False)]
    assert reg.pupil("1001").consents["website"] is False  # type: ignore[union-attr]
    prov = reg.provenance("1001")["website"]
    assert prov == Provenance(False, KIND_ADMIN, "csv:e4.csv", prov.since, False)


def test_a_withdrawal_by_the_office_always_applies(store: Store, tmp_path: Path) -> None:
    reg = Registry(store)
    reg.set_consent("2001", "newsletter", True)  # the same answer, confirmed on paper
    assert reg.provenance("2001")["newsletter"].kind == KIND_MANUAL
    rep = import_consent(store, tmp_path / "e.csv", consent_csv([EMMA, DAAN, _with(PUPIL_2001, NEWSLETTER, "nee")]))
    assert [(c.pupil_id, c.key, c.new) for c in rep.changes] == [("2001", "newsletter", False)]
    assert reg.pupil("2001").consents["newsletter"] is False  # type: ignore[union-attr]


def test_a_no_confirmed_on_paper_is_not_regranted_by_the_office_later(store: Store, tmp_path: Path) -> None:
    reg = Registry(store)
    assert reg.set_consent("1001", "website", False) == []  # already no: no history row, but a paper source
    assert reg.provenance("1001")["website"].kind == KIND_MANUAL
    rep = import_consent(store, tmp_path / "e.csv", consent_csv([_with(EMMA, WEBSITE, "ja"), DAAN, PUPIL_2001]))
    assert [(c.pupil_id, c.key) for c in rep.conflicts] == [("1001", "website")]
    assert reg.pupil("1001").consents["website"] is False  # type: ignore[union-attr]


# -- the command line ---------------------------------------------------------------------------
@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "school"
    assert main(["init", str(r)]) == 0
    (tmp_path / "export.csv").write_text(consent_csv([EMMA, DAAN, PUPIL_2001]), encoding="utf-8")
    assert main(["--root", str(r), "consent", "import", str(tmp_path / "export.csv")]) == 0
    return r


def test_cli_lists_conflicts_and_exits_1_then_accept_regrants(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = str(tmp_path / "export.csv")
    assert main(["--root", str(root), "consent", "set", "2001", "website=no"]) == 0
    capsys.readouterr()
    assert main(["--root", str(root), "consent", "import", export]) == 1
    out = capsys.readouterr().out
    assert "imported: 0 new, 0 changed, 3 unchanged (0 changes; consent version 2)" in out
    assert "1 conflict(s): NOT re-granted" in out
    assert "2001 website: the administration says yes; withdrawn" in out and "(manual: manual)" in out
    assert main(["--root", str(root), "consent", "show", "2001", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["consents"]["website"] is False
    assert doc["sources"]["website"]["kind"] == "manual"
    assert doc["sources"]["website"]["administration"] is True
    assert doc["sources"]["newsletter"]["kind"] == "administration"
    assert [(h["key"], h["old"], h["new"], h["kind"]) for h in doc["history"]][-1] == ("website", 1, 0, "manual")
    assert doc["history"][0]["source"] == "csv:export.csv"
    assert main(["--root", str(root), "consent", "show", "2001"]) == 0
    text = capsys.readouterr().out
    assert "  website          no\n" in text
    assert "not from the administration's export:" in text and "the administration says yes" in text
    assert main(["--root", str(root), "consent", "import", "--accept-regrants", export]) == 0
    out = capsys.readouterr().out
    assert "1 re-grant(s) accepted" in out and "conflict" not in out
    assert main(["--root", str(root), "consent", "show", "2001", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["consents"]["website"] is True


# -- a database from before provenance ----------------------------------------------------------
_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pupils (pupil_id TEXT PRIMARY KEY, first_name TEXT NOT NULL, surname_prefix TEXT NOT NULL DEFAULT '',
    surname TEXT NOT NULL, grp TEXT NOT NULL DEFAULT '', left_on TEXT, phone TEXT NOT NULL DEFAULT '',
    confirmed_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE consent (pupil_id TEXT NOT NULL REFERENCES pupils(pupil_id) ON DELETE CASCADE, key TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (0, 1)), PRIMARY KEY (pupil_id, key));
CREATE TABLE consent_history (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, pupil_id TEXT NOT NULL,
    key TEXT NOT NULL, old_value INTEGER, new_value INTEGER, source TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE photos (sha256 TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    grp TEXT NOT NULL DEFAULT '', stem TEXT NOT NULL DEFAULT '', taken_on TEXT, uploader TEXT NOT NULL DEFAULT '',
    vault_path TEXT, quarantine_id TEXT, first_seen TEXT NOT NULL, updated_at TEXT NOT NULL);
INSERT INTO pupils VALUES ('2001', 'Noor', 'ter', 'Horst', '5', NULL, '', '2026-10-01', '2026-10-01');
INSERT INTO consent VALUES ('2001', 'website', 0), ('2001', 'newsletter', 1), ('2001', 'social', 0);
INSERT INTO consent_history(at, pupil_id, key, old_value, new_value, source, version) VALUES
    ('2026-10-01T08:00:00Z', '2001', 'website', NULL, 1, 'csv:oktober.csv', 1),
    ('2026-10-01T08:00:00Z', '2001', 'newsletter', NULL, 1, 'csv:oktober.csv', 1),
    ('2026-10-05T09:00:00Z', '2001', 'website', 1, 0, 'manual', 2);
INSERT INTO meta VALUES ('consent_version', '2');
INSERT INTO photos VALUES ('a' || hex(zeroblob(31)), 'published', '', '5', 'Noor ter Horst tekening', NULL, '',
    NULL, NULL, '2026-10-02', '2026-10-02');
INSERT INTO photos VALUES ('b' || hex(zeroblob(31)), 'published', '', '5', 'IMG_1234', NULL, '',
    NULL, NULL, '2026-10-02', '2026-10-02');
PRAGMA user_version=1;
"""


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1)
    store = Store(path)
    reg = Registry(store)
    prov = reg.provenance("2001")
    assert (prov["website"].kind, prov["website"].source, prov["website"].admin_value) == ("manual", "manual", True)
    assert prov["website"].since == "2026-10-05T09:00:00Z"
    assert (prov["newsletter"].kind, prov["newsletter"].admin_value) == (KIND_ADMIN, True)
    assert (prov["social"].kind, prov["social"].admin_value) == (KIND_ADMIN, False)
    assert [h["kind"] for h in reg.history("2001")] == [KIND_ADMIN, KIND_ADMIN, KIND_MANUAL]
    stems = sorted(r["stem"] for r in store.query("SELECT stem FROM photos"))
    assert stems == ["IMG_1234", "tekening"]
    # the next export still says website=ja: not re-granted
    rep = import_consent(store, tmp_path / "november.csv", consent_csv([PUPIL_2001]))
    assert [(c.pupil_id, c.key) for c in rep.conflicts] == [("2001", "website")]
    assert reg.pupil("2001").consents["website"] is False  # type: ignore[union-attr]
    store.close()
    assert Store(path).query("PRAGMA user_version")[0][0] >= 2  # opening twice is harmless


def test_a_new_pupil_name_is_scrubbed_from_stems_already_stored(tmp_path: Path) -> None:
    from photoguard.ledger import ledger

    store = Store(tmp_path / "db.sqlite3", create=True)
    import_consent(store, tmp_path / "e.csv", consent_csv([EMMA]))
    with store.transaction() as conn:
        ledger.upsert_photo_in(conn, "c" * 64, "published", "", "5", "Emma de Vries schoolreis", "", None, None)
        ledger.upsert_photo_in(conn, "d" * 64, "published", "", "5", "noor en sem", "", None, None)
    assert ledger.photo(store, "c" * 64)["stem"] == "schoolreis"  # type: ignore[index]
    assert ledger.photo(store, "d" * 64)["stem"] == "noor en sem"  # type: ignore[index]
    import_consent(store, tmp_path / "e2.csv", consent_csv([EMMA, PUPIL_2001]))
    assert ledger.photo(store, "d" * 64)["stem"] == "sem"  # type: ignore[index]
