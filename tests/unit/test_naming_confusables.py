"""Unicode look-alikes and invisible characters cannot smuggle a surname past the scrubber."""

from __future__ import annotations

import pytest

from photoguard.core.naming import PersonName, fold, scrub_text, slugify

NOOR = PersonName("Noor", "ter", "Horst")
SOPHIE = PersonName("Sophie", "", "Bakker")


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Horst", "horst"),
        ("\u041dorst", "horst"),  # Cyrillic capital En
        ("H\u043erst", "horst"),  # Cyrillic small o
        ("Hors\u0442", "horst"),  # Cyrillic small te
        ("\u0397orst", "horst"),  # Greek capital Eta
        ("\uff28orst", "horst"),  # fullwidth H
        ("\U0001d407orst", "horst"),  # mathematical bold H
        ("Zo\u00eb", "zoe"),
        ("\u0141ukasz", "lukasz"),
    ],
)
def test_fold_maps_lookalikes_to_latin(raw: str, folded: str) -> None:
    assert fold(raw) == folded
    assert len(fold(raw)) == len(raw)


@pytest.mark.parametrize(
    "caption",
    [
        "Noor ter \u041dorst op schoolreis",
        "Noor ter H\u043erst op schoolreis",
        "Noor t\u0435r Horst op schoolreis",
        "Noor ter Hor\u200bst op schoolreis",  # zero-width space inside the surname
        "Noor ter Hor\u00adst op schoolreis",  # soft hyphen
        "Noor ter \uff28orst op schoolreis",
    ],
)
def test_surname_with_homoglyph_is_scrubbed(caption: str) -> None:
    out = scrub_text(caption, [NOOR], public=False)
    assert "orst" not in out
    assert "op schoolreis" in out
    assert "Noor" in out


def test_public_channel_removes_homoglyph_first_name_too() -> None:
    out = scrub_text("S\u043eph\u0456e B\u0430kker wint", [SOPHIE], public=True)
    assert out == "wint"


def test_slug_drops_homoglyph_surname() -> None:
    assert slugify("tekening Noor ter \u041d\u043erst", [NOOR], public=False) == "tekening-noor"


def test_plain_words_are_not_changed() -> None:
    assert scrub_text("Mijn huis in het bos", [NOOR], public=False) == "Mijn huis in het bos"
