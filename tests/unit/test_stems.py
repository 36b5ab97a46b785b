"""What the database keeps of a file name (issue 13): no pupil's name, and the stem itself
when it carries none (so outputs named from it later keep today's file names)."""

from __future__ import annotations

import pytest

from photoguard.core.naming import PersonName, slugify
from photoguard.core.stems import names_in, stored_stem

PEOPLE = (
    PersonName("Noor", "ter", "Horst"),
    PersonName("Emma", "de", "Vries"),
    PersonName("Mohammed", "", "El Amrani"),
)


@pytest.mark.parametrize(
    "stem", ["IMG_1234", "IMG_20261121_123456", "schoolreis (2)", "Sportdag groep 7", "PXL_20261121_0930", ""]
)
def test_a_stem_without_names_is_kept_as_it_is(stem: str) -> None:
    assert not names_in(stem, PEOPLE)
    assert stored_stem(stem, PEOPLE) == stem


@pytest.mark.parametrize(
    ("stem", "kept"),
    [
        ("Noor ter Horst tekening", "tekening"),
        ("tekening-noor", "tekening"),
        ("musical-mohammed_2", "musical-2"),
        ("EmmaDeVries", "foto"),
        ("schoolreis_El_Amrani", "schoolreis"),
        ("x" * 70 + " emma", "x" * 60),
    ],
)
def test_names_are_removed_first_names_too(stem: str, kept: str) -> None:
    assert names_in(stem, PEOPLE)
    assert stored_stem(stem, PEOPLE) == kept
    assert stored_stem(stored_stem(stem, PEOPLE), PEOPLE) == kept  # stable


def test_a_word_inside_a_longer_word_is_not_a_name() -> None:
    stem = "Het lange verhaal van de voorstelling in de aula met de hele bovenbouw erbij"
    assert not names_in(stem.replace("voorstelling", "noorderlicht"), PEOPLE)


def test_a_scrubbed_stem_names_outputs_without_names_on_every_channel() -> None:
    kept = stored_stem("Noor ter Horst tekening", PEOPLE)
    assert slugify(kept, PEOPLE, public=False) == slugify(kept, PEOPLE, public=True) == "tekening"
