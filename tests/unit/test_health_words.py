"""Health remarks about pupils (issue 13 gap; AVG art. 9 special-category data): a caption's
clause about someone's health is removed on every channel, closed ones included, and a line of
text in a photo that mentions health is covered on every channel. Ordinary words that merely
contain a health word ('muziek', 'breuken', 'gipsen maskers') stay."""

from __future__ import annotations

import pytest

from photoguard.core.health import health_spans, mentions_health
from photoguard.core.naming import PersonName, scrub_caption
from photoguard.core.textpolicy import decide_text
from tests.unit.test_textpolicy import NEWSLETTER, PARRO, ROSTER, TODAY, WEBSITE, covered, line

NOOR = PersonName("Noor", "ter", "Horst")
DAAN = PersonName("Daan", "", "Jansen")


@pytest.mark.parametrize(
    ("caption", "kept"),
    [
        ("Noor was ziek, maar ze deed toch mee aan de musical.", "maar ze deed toch mee aan de musical."),
        ("Sportdag groep 5! Daan zat met koorts thuis. Volgend jaar weer.", "Sportdag groep 5! Volgend jaar weer."),
        ("Sem (astma) deed mee met de estafette.", "Sem deed mee met de estafette."),
        ("Emma is ziek. De rest van de klas bouwde een hut.", "De rest van de klas bouwde een hut."),
        ("Daan heeft een gebroken arm en zit in een rolstoel, maar hij lachte.", "maar hij lachte."),
        ("Noor heeft ADHD en kreeg extra hulp; de klas maakte een film.", "de klas maakte een film."),
        ("Lisa was back after the flu, and the class sang.", "the class sang."),
        ("Daan ligt in het ziekenhuis. Beterschap van groep 5!", "Beterschap van groep 5!"),
    ],
)
@pytest.mark.parametrize("public", [False, True])
def test_a_health_clause_leaves_the_caption_on_every_channel(caption: str, kept: str, public: bool) -> None:
    out = scrub_caption(caption, [NOOR, DAAN], public=public)
    assert not mentions_health(out), out
    if not public:  # on public channels names go as well; the rest of the sentence is the same
        assert out == kept


@pytest.mark.parametrize(
    "caption",
    [
        "Muziekles in groep 3: we zongen over de herfst.",
        "Groep 6 oefent met breuken en maakte gipsen maskers.",
        "Luis en Noor bouwden een kasteel.",
        "De sportdag was een groot succes.",
        "Illustraties van groep 8 hangen in de hal.",
    ],
)
def test_captions_without_health_words_are_not_touched(caption: str) -> None:
    assert health_spans(caption) == []
    assert scrub_caption(caption, [], public=False) == caption


def test_every_word_form_is_found_without_case() -> None:
    for text in ("ZIEK", "Ziekjes", "ziekgemeld", "Koortsig", "buikgriep", "waterpokken", "Hoofdluis",
                 "allergisch", "epilepsie", "autistisch", "geopereerd", "hersenschudding", "medicijnen",
                 "logopedie", "fysiotherapeut", "COVID-19", "Hospital", "wheelchair"):
        assert mentions_health(f"Vandaag {text} gezien"), text


@pytest.mark.parametrize("channel", [PARRO, NEWSLETTER, WEBSITE])
def test_health_words_written_in_a_photo_are_covered_on_every_channel(channel: object) -> None:
    words = covered("Noor is ziek", channel)  # type: ignore[arg-type]
    assert "ziek" in words
    reds = decide_text([line("Emma heeft koorts")], ROSTER, channel, TODAY)  # type: ignore[arg-type]
    assert "health" in [r.reason for r in reds]


def test_a_whiteboard_without_health_words_has_no_health_cover() -> None:
    reds = decide_text([line("Muziekles groep 3")], ROSTER, PARRO, TODAY)
    assert [r.reason for r in reds] == []


@pytest.mark.parametrize("public", [False, True])
def test_file_names_carry_no_health_words(public: bool) -> None:
    from photoguard.core.naming import slugify

    assert slugify("musical_Noor-ziek", [NOOR], public=public) == ("musical" if public else "musical-noor")
    assert slugify("sportdag-koorts-groep5", [], public=public) == "sportdag-groep5"
    assert slugify("muziekles", [], public=public) == "muziekles"
