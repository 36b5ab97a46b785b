"""Parsing the administration's consent export (no database: see integration/test_consent_registry)."""

from __future__ import annotations

from datetime import date

import pytest

from photoguard.ledger.consent import ConsentImportError, parse_csv, parse_yes
from tests.support.school import AS_EXPORTED, consent_csv

DUTCH = consent_csv(AS_EXPORTED)


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


def test_unknown_and_missing_columns_refused() -> None:
    with pytest.raises(ConsentImportError, match="unknown column"):
        parse_csv("leerling_id,voornaam,achternaam,schoenmaat\n1,a,b,42\n")
    with pytest.raises(ConsentImportError, match="missing required"):
        parse_csv("leerling_id,voornaam\n1,a\n")
