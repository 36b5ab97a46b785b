from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from photoguard.ledger.consent import ConsentImportError, Registry, import_csv, parse_csv, parse_yes
from photoguard.ledger.db import Store

DUTCH = (
    "leerling_id;voornaam;tussenvoegsel;achternaam;groep;datum_uitschrijving;nieuwsbrief;parro;"
    "schoolgids;website;social_media;telefoon_klassenlijst;gezichtsherkenning\n"
    "1001;Emma;de;Vries;7;;ja;JA;nee;Ja;n;1;ja\n"
    "1002;Daan;van der;Berg;7;31-07-2026;nee;ja;;misschien;TRUE;0;nee\n"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ja", True), ("JA", True), ("j", True), ("yes", True), ("1", True), ("True", True),
     ("nee", False), ("", False), (None, False), ("misschien", False), ("0", False), ("n", False),
     ("ja!", False), ("yes please", False)],
)
def test_opt_in_only(raw: str | None, expected: bool) -> None:
    assert parse_yes(raw) is expected


def test_dutch_semicolon_export_with_bom() -> None:
    pupils = parse_csv("\ufeff" + DUTCH)
    emma, daan = pupils
    assert (emma.first_name, emma.surname_prefix, emma.surname, emma.group) == ("Emma", "de", "Vries", "7")
    assert emma.consents == {
        "newsletter": True, "parro": True, "guide": False, "website": True, "social": False,
        "classlist_phone": True, "face_matching": True,
    }
    assert daan.left_on == date(2026, 7, 31)
    assert daan.consents["website"] is False  # 'misschien' is not a yes
    assert daan.consents["social"] is True


def test_english_comma_export() -> None:
    text = "pupil_id,first_name,surname_prefix,surname,group,left_on,newsletter,face_matching\n" \
           "p1,Sam,,Jansen,3,2027-07-15,yes,no\n"
    [p] = parse_csv(text)
    assert p.surname == "Jansen" and p.left_on == date(2027, 7, 15)
    assert p.consents["newsletter"] and not p.consents["face_matching"] and not p.consents["parro"]


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
    store = Store(tmp_path / "db.sqlite3")
    f = tmp_path / "c.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConsentImportError):
        import_csv(store, f)
    assert Registry(store).pupils() == {}


def test_unknown_and_missing_columns_refused() -> None:
    with pytest.raises(ConsentImportError, match="unknown column"):
        parse_csv("leerling_id,voornaam,achternaam,schoenmaat\n1,a,b,42\n")
    with pytest.raises(ConsentImportError, match="missing required"):
        parse_csv("leerling_id,voornaam\n1,a\n")


def test_not_utf8_refused(tmp_path: Path) -> None:
    f = tmp_path / "latin1.csv"
    f.write_bytes("leerling_id,voornaam,achternaam\n1,Zoë,Smit\n".encode("latin-1"))
    with pytest.raises(ConsentImportError, match="UTF-8"):
        import_csv(Store(tmp_path / "db.sqlite3"), f)


def test_reimport_is_a_diff_with_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    reg = Registry(store)
    f = tmp_path / "c.csv"
    f.write_text(DUTCH, encoding="utf-8")
    first = import_csv(store, f)
    assert first.added == 2 and first.version == 1
    again = import_csv(store, f)
    assert again.changes == [] and again.unchanged == 2 and again.version == 1
    assert store.consent_version() == 1
    changed = DUTCH.replace("1001;Emma;de;Vries;7;;ja;JA;nee;Ja", "1001;Emma;de;Vries;7;;ja;JA;nee;nee")
    f.write_text(changed, encoding="utf-8")
    third = import_csv(store, f)
    assert [(c.pupil_id, c.key, c.old, c.new) for c in third.changes] == [("1001", "website", True, False)]
    assert third.changes[0].is_withdrawal
    assert store.consent_version() == 2
    hist = [(h["key"], h["old_value"], h["new_value"]) for h in reg.history("1001")]
    assert ("website", 1, 0) in hist
    assert reg.pupil("1001").consents["website"] is False  # type: ignore[union-attr]


def test_set_consent_single_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    reg = Registry(store)
    reg.import_pupils(parse_csv(DUTCH), source="test")
    [ch] = reg.set_consent("1001", "social", True)
    assert (ch.old, ch.new) == (False, True)
    assert reg.set_consent("1001", "social", True) == []
    with pytest.raises(ValueError):
        reg.set_consent("1001", "tiktok", True)
    with pytest.raises(LookupError):
        reg.set_consent("nobody", "social", True)
