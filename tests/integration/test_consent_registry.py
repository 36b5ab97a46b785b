"""The consent registry in SQLite: imports are all-or-nothing diffs with history."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoguard.ledger.consent import ConsentImportError, Registry, import_csv, parse_csv
from photoguard.ledger.db import Store
from tests.support.school import AS_EXPORTED, consent_csv

DUTCH = consent_csv(AS_EXPORTED)


def test_bad_rows_are_reported_with_line_numbers_and_nothing_imported(tmp_path: Path) -> None:
    text = (
        "leerling_id,voornaam,achternaam,datum_uitschrijving\n"
        "1,Emma,Vries,\n"
        "2,Daan,,\n"                 # line 3: surname missing
        "1,Dup,Licate,\n"             # line 4: duplicate id
        "3,Ana,Bakker,32-13-2026\n"   # line 5: bad date
        "4,Too,Many,,x\n"             # line 6: wrong field count
    )
    with pytest.raises(ConsentImportError) as exc:
        parse_csv(text)
    lines = " ".join(exc.value.problems)
    for n in (3, 4, 5, 6):
        assert f"line {n}:" in lines
    store = Store(tmp_path / "db.sqlite3", create=True)
    f = tmp_path / "c.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConsentImportError):
        import_csv(store, f)
    assert Registry(store).pupils() == {}


def test_not_utf8_refused(tmp_path: Path) -> None:
    f = tmp_path / "latin1.csv"
    f.write_bytes("leerling_id,voornaam,achternaam\n1,Zoë,Smit\n".encode("latin-1"))
    with pytest.raises(ConsentImportError, match="UTF-8"):
        import_csv(Store(tmp_path / "db.sqlite3", create=True), f)


def test_reimport_is_a_diff_with_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3", create=True)
    reg = Registry(store)
    f = tmp_path / "c.csv"
    f.write_text(DUTCH, encoding="utf-8")
    first = import_csv(store, f)
    assert first.added == 2 and first.version == 1
    again = import_csv(store, f)
    assert again.changes == [] and again.unchanged == 2 and again.version == 1
    assert store.consent_version() == 1
    emma, daan = AS_EXPORTED
    changed = consent_csv([(*emma[:9], "nee", *emma[10:]), daan])  # website withdrawn
    f.write_text(changed, encoding="utf-8")
    third = import_csv(store, f)
    assert [(c.pupil_id, c.key, c.old, c.new) for c in third.changes] == [("1001", "website", True, False)]
    assert third.changes[0].is_withdrawal
    assert store.consent_version() == 2
    hist = [(h["key"], h["old_value"], h["new_value"]) for h in reg.history("1001")]
    assert ("website", 1, 0) in hist
    assert reg.pupil("1001").consents["website"] is False  # type: ignore[union-attr]


def test_set_consent_single_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3", create=True)
    reg = Registry(store)
    reg.import_pupils(parse_csv(DUTCH), source="test")
    [ch] = reg.set_consent("1001", "social", True)
    assert (ch.old, ch.new) == (False, True)
    assert reg.set_consent("1001", "social", True) == []
    with pytest.raises(ValueError):
        reg.set_consent("1001", "tiktok", True)
    with pytest.raises(LookupError):
        reg.set_consent("nobody", "social", True)
