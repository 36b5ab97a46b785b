"""Tests for photoguard.naming (first increment; property tests follow)."""

from __future__ import annotations

from datetime import date

from photoguard.naming import PersonName, output_name, scrub_text, slugify

PEOPLE = [
    PersonName("Emma", "de", "Vries"),
    PersonName("Jan", "", "Bakker"),
    PersonName("Zoë", "van der", "Berg"),
]


def test_surname_removed_first_name_kept() -> None:
    assert scrub_text("Emma de Vries op schoolreis", PEOPLE, public=False) == "Emma op schoolreis"


def test_public_removes_all_names() -> None:
    out = scrub_text("Emma de Vries op schoolreis", PEOPLE, public=True)
    assert "emma" not in out.lower() and "vries" not in out.lower()


def test_slugify_example() -> None:
    slug = slugify("schoolreis_jan_de_vries_en_Emma", PEOPLE, public=False)
    assert "vries" not in slug and slug.startswith("schoolreis")


def test_output_name_example() -> None:
    name = output_name(date(2026, 11, 21), "7", "schoolreis", PEOPLE, public=True, n=1, ext="jpg")
    assert name == "2026-11-21_groep-7_schoolreis_1.jpg"
