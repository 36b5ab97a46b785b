"""Tests for photoguard.naming: surnames never published, first names not on public channels."""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoguard.core.naming import (
    COMMON_WORD_SURNAMES,
    PersonName,
    fold,
    output_name,
    scrub_text,
    slugify,
)

# Generated Dutch pupils. Name vocabularies are disjoint from the filler words below.
FIRST_NAMES = [
    "Emma", "Julia", "Mila", "Tess", "Sophie", "Zoë", "Sara", "Nora", "Yara", "Eva", "Liv",
    "Lotte", "Saar", "Noor", "Anna", "Evi", "Lieke", "Féline", "Isabella", "Anne-Sophie", "Maud",
    "Noah", "Sem", "Liam", "Lucas", "Daan", "Finn", "Levi", "Luuk", "Mees", "Jesse", "Milan",
    "Thijs", "Sven", "Gijs", "Jurriën", "Stijn", "Thomas", "Ruben", "Bram", "Jan", "Pieter", "Sjoerd",
    "Joëlle", "Chloë", "Loïs", "Inés", "René", "Ömer", "Aïsha", "Eliza", "Hugo", "Olivier", "Fenna",
]  # fmt: skip
PREFIXES = ["", "", "", "de", "van", "van der", "van den", "van de", "ter", "ten", "'t", "in 't", "den", "van 't"]
SURNAMES = [
    "Vries", "Jansen", "Dijkstra", "Hoekstra", "Meijer", "Mulder", "Bakker", "Visser", "Smit",
    "Boer", "Groot", "Kok", "Jong", "Koster", "Brink", "Berg", "Dekker", "Vermeulen", "Hendriks",
    "Wouters", "Brouwer", "Peeters", "Willems", "Hermans", "Gerritsen", "Kuipers", "Veldhuizen",
    "Hoogland", "Ruiters", "Van Dam", "Sarıkaya", "Öztürk", "El Amrani", "Nguyễn", "Çelik", "Schröder",
    "Heuvel", "Wal", "Laan", "Linden", "Pol", "Haan", "Graaf", "Wit", "Zanten", "Bosch", "Velde",
    "Hoeven", "Leeuwen", "Doorn", "Ploeg", "Kamp", "Steeg", "Haar", "Weijden", "Blaauw", "Schaïk",
]  # fmt: skip
FILLER = [
    "schoolreis", "naar", "het", "museum", "met", "groep", "zeven", "sportdag", "op", "het", "plein",
    "tijdens", "kerstviering", "in", "gymzaal", "samen", "voorleeswedstrijd", "feest", "vandaag",
    "buiten", "spelen", "gezellig", "musical", "oefenen", "juf", "meester", "excursie", "bos",
]  # fmt: skip
COMMON_SURNAMES = COMMON_WORD_SURNAMES

# Ordinary Dutch sentences full of words that are also surnames or first names.
ORDINARY = [
    "De boer melkt de koeien en de bakker bakt brood.",
    "We gaan naar de smit om het hek te laten maken.",
    "De visser ving een grote vis in de haven.",
    "Ik ben blij met de roos uit de tuin van oma.",
    "In de zomer spelen we in het bos bij de molen.",
    "Het is een groot feest: de kok maakt pannenkoeken.",
    "De koster luidt de klok en de mulder maalt het graan.",
    "Jong geleerd is oud gedaan, zegt de meester.",
    "De haan kraait, de vos sluipt langs de wal.",
    "We lopen over de dijk naar de brink in het dorp.",
    "Op de berg ligt sneeuw; de graaf woont in het kasteel.",
    "Wit brood of bruin brood? De dekker legt een nieuw dak.",
]
PUPIL_WITH_COMMON = [
    PersonName("Roos", "de", "Boer"),
    PersonName("Ben", "", "Bakker"),
    PersonName("Storm", "", "Smit"),
    PersonName("Fleur", "", "Visser"),
    PersonName("Max", "de", "Groot"),
    PersonName("Mees", "", "Kok"),
    PersonName("Sem", "de", "Jong"),
    PersonName("Lot", "", "Koster"),
    PersonName("Jan", "", "Mulder"),
    PersonName("Noah", "de", "Haan"),
]


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def _tokens(text: str) -> list[str]:
    """Folded word tokens, split at separators and camelCase humps."""
    spaced = re.sub(r"(?<=[a-zà-ÿ])(?=[A-ZÀ-Þ])", " ", text)
    return [t for t in re.split(r"[^0-9a-z]+", _strip_accents(fold(spaced))) if t]


PREFIX_WORDS = {"van", "de", "der", "den", "ter", "ten", "te", "t", "in", "el", "het"}


def _surname_words(p: PersonName) -> list[str]:
    """Words of the surname proper (a leading 'Van' typed into the surname is a tussenvoegsel)."""
    words = [t for t in _tokens(p.surname) if len(t) >= 2]
    while len(words) > 1 and words[0] in PREFIX_WORDS:
        words = words[1:]
    return words


def _first_words(p: PersonName) -> list[str]:
    return _tokens(p.first_name)


def generate_people(n: int, seed: int) -> list[PersonName]:
    rng = random.Random(seed)
    people = []
    for k in range(n):
        sur = rng.choice(SURNAMES)
        if k % 7 == 3:  # double surnames
            other = rng.choice([s for s in SURNAMES if s != sur and " " not in s])
            sur = f"{sur}-{other}"
        people.append(PersonName(rng.choice(FIRST_NAMES), rng.choice(PREFIXES), sur))
    return people


PEOPLE_200 = generate_people(220, seed=2026)


def _style_word(word: str, rng: random.Random, case: str) -> str:
    if case == "upper":
        return word.upper()
    if case == "lower":
        return word.lower()
    if case == "accentless":
        return _strip_accents(word)
    return word


def render_mention(p: PersonName, rng: random.Random, *, sep: str, case: str, with_first: bool) -> str:
    parts = []
    if with_first:
        parts.append(p.first_name)
    if p.surname_prefix:
        parts.append(p.surname_prefix)
    sur = p.surname
    if sep == "" and case == "camel":
        bits = [(b[:1].upper() + b[1:]) if i else b for i, b in enumerate(" ".join([*parts, sur]).split())]
        return "".join(bits)
    text = sep.join([*parts, sur.replace(" ", sep) if sep else sur])
    text = _style_word(text, rng, case)
    if rng.random() < 0.15:
        text += rng.choice(["'s", "'", "’s"])
    return text


def _left_surnames(out: str, people: list[PersonName]) -> list[str]:
    toks = _tokens(out)
    joined = "".join(toks)
    left = []
    for p in people:
        words = _surname_words(p)
        for w in words:
            if w in toks:
                left.append(w)
        glued = "".join(words)
        if len(glued) >= 4 and any(glued in t for t in toks if t not in FILLER):
            left.append(glued)
        _ = joined
    return left


def _left_first_names(out: str, people: list[PersonName]) -> list[str]:
    toks = _tokens(out)
    return [w for p in people for w in _first_words(p) if w in toks]


# --------------------------------------------------------------------------------------------
# Examples from the brief


def test_examples() -> None:
    people = [PersonName("Emma", "de", "Vries"), PersonName("Jan", "", "Bakker")]
    assert scrub_text("Emma de Vries op schoolreis", people, public=False) == "Emma op schoolreis"
    assert scrub_text("JandeVries en jan_de_vries", [PersonName("Jan", "de", "Vries")], public=False) == ("Jan en jan")
    assert scrub_text("de Vries' tas en de Vries's fiets", people, public=False) == "tas en fiets"
    assert scrub_text("Jans tas", people, public=True) == "tas"
    assert scrub_text("Jans tas", people, public=False) == "Jans tas"
    assert scrub_text("Emma DE VRIËS", people, public=False) == "Emma"
    assert scrub_text("Émma", people, public=True) == ""


def test_slugify_and_output_name() -> None:
    people = [PersonName("Jan", "de", "Vries"), PersonName("Emma", "", "Jansen")]
    assert slugify("schoolreis_jan_de_vries_en_Emma", people, public=False) == "schoolreis-jan-en-emma"
    assert slugify("schoolreis_jan_de_vries_en_Emma", people, public=True) == "schoolreis"
    assert slugify("IMG_1234", people, public=True) == "img-1234"
    assert slugify("Jan de Vries", people, public=True) == "foto"
    assert slugify("", people, public=False) == "foto"
    assert slugify("Zoë's verjaardag!!", [], public=False) == "zoe-s-verjaardag"
    name = output_name(date(2026, 11, 21), "7", "schoolreis", people, public=True, n=1, ext="jpg")
    assert name == "2026-11-21_groep-7_schoolreis_1.jpg"
    assert output_name(datetime(2026, 11, 21, 9, 0), "", "x", people, public=False, n=2, ext=".PNG") == (
        "2026-11-21_school_x_2.png"
    )
    assert output_name(date(2026, 1, 2), "5b", "Emma_Jansen", people, public=False, n=3, ext="jpg") == (
        "2026-01-02_groep-5b_emma_3.jpg"
    )
    with pytest.raises(ValueError):
        output_name(date(2026, 1, 2), "5", "x", people, public=False, n=1, ext="jpg/../x")


@pytest.mark.parametrize("sentence", ORDINARY)
def test_ordinary_dutch_sentences_stay_intact(sentence: str) -> None:
    people = PUPIL_WITH_COMMON + PEOPLE_200
    assert scrub_text(sentence, people, public=False) == sentence
    assert scrub_text(sentence, people, public=True) == sentence


def test_common_word_surnames_go_in_a_name_position() -> None:
    people = PUPIL_WITH_COMMON
    assert scrub_text("Roos de Boer speelt", people, public=False) == "Roos speelt"
    assert scrub_text("roos de boer speelt", people, public=False) == "roos speelt"
    assert scrub_text("Familie De Boer en Bakker", people, public=False) == "Familie"
    assert scrub_text("De Boer kwam ook", people, public=False) == "kwam ook"
    assert scrub_text("Bakker en Smit", people, public=False) == "Bakker"  # sentence start
    assert scrub_text("JONG GELEERD IS OUD GEDAAN", people, public=False) == "JONG GELEERD IS OUD GEDAAN"
    assert scrub_text("de boer kwam ook", people, public=False) == "de boer kwam ook"
    assert scrub_text("Ben Bakker is er", people, public=True) == "is er"
    assert scrub_text("ik ben er", people, public=True) == "ik ben er"
    # file names are not prose: a surname there always goes
    assert slugify("bezoek_bakker", people, public=False) == "bezoek"


def test_tussenvoegsel_not_belonging_to_the_name_stays() -> None:
    people = [PersonName("Emma", "", "Jansen")]
    assert scrub_text("De tas van Jansen", people, public=False) == "De tas van"


def test_contact_details_on_public_channels() -> None:
    text = (
        "Bel 06-12345678, +31 6 1234 5678 of 020-1234567; mail ouders.jansen@example.nl; "
        "wij wonen aan de Burgemeester de Withstraat 12a, 1234 AB Amsterdam."
    )
    out = scrub_text(text, [], public=True)
    for gone in ("12345678", "1234 5678", "1234567", "@", "Withstraat", "12a", "1234 AB"):
        assert gone not in out, (gone, out)
    assert "Amsterdam" in out and "Bel" in out
    assert scrub_text(text, [], public=False) == text
    assert scrub_text("Groep 7 won met 3-1 op 21 november 2026", [], public=True) == (
        "Groep 7 won met 3-1 op 21 november 2026"
    )


def test_neat_collapse() -> None:
    people = [PersonName("Emma", "de", "Vries"), PersonName("Jan", "", "Bakker")]
    assert scrub_text("Foto (Emma de Vries) , leuk", people, public=True) == "Foto, leuk"
    assert scrub_text("Emma de Vries en Jan Bakker op reis.", people, public=False) == "Emma en Jan op reis."
    assert scrub_text("Emma de Vries en Jan Bakker op reis.", people, public=True) == "op reis."
    assert slugify("__Emma--de--Vries__reis__", people, public=False) == "emma-reis"


# --------------------------------------------------------------------------------------------
# The 200-name set


def test_two_hundred_generated_names_in_captions_and_file_names() -> None:
    rng = random.Random(7)
    people = PEOPLE_200
    assert len({(p.first_name, p.surname_prefix, p.surname) for p in people}) >= 200
    assert any("-" in p.surname for p in people) and any(p.surname_prefix for p in people)
    surname_left, first_left, files_left = [], [], []
    for p in people:
        for sep, case in [(" ", "title"), ("_", "lower"), ("-", "upper"), ("", "camel"), (".", "accentless")]:
            mention = render_mention(p, rng, sep=sep, case=case, with_first=True)
            caption = f"{rng.choice(FILLER)} {mention} {rng.choice(FILLER)} {rng.choice(FILLER)}"
            out = scrub_text(caption, people, public=False)
            surname_left += [(caption, out, w) for w in _left_surnames(out, [p])]
            pub = scrub_text(caption, people, public=True)
            first_left += [(caption, pub, w) for w in _left_first_names(pub, [p]) + _left_surnames(pub, [p])]
            stem = f"{rng.choice(FILLER)}_{mention}_{rng.randint(1, 99)}"
            for public in (False, True):
                slug = slugify(stem, people, public=public)
                bad = _left_surnames(slug, [p]) + (_left_first_names(slug, [p]) if public else [])
                files_left += [(stem, slug, w) for w in bad]
    assert surname_left == []
    assert first_left == []
    assert files_left == []


# --------------------------------------------------------------------------------------------
# Properties

person_st = st.builds(
    PersonName,
    first_name=st.sampled_from(FIRST_NAMES),
    surname_prefix=st.sampled_from(PREFIXES),
    surname=st.sampled_from(SURNAMES),
)


@settings(max_examples=300, deadline=None)
@given(
    people=st.lists(person_st, min_size=1, max_size=6),
    pick=st.integers(0, 5),
    seed=st.integers(0, 10**6),
    sep=st.sampled_from([" ", "_", "-", ".", "  ", ""]),
    case=st.sampled_from(["title", "lower", "upper", "accentless", "camel"]),
    with_first=st.booleans(),
    before=st.lists(st.sampled_from(FILLER), max_size=4),
    after=st.lists(st.sampled_from(FILLER), max_size=4),
)
def test_property_no_surname_survives(
    people: list[PersonName],
    pick: int,
    seed: int,
    sep: str,
    case: str,
    with_first: bool,
    before: list[str],
    after: list[str],
) -> None:
    p = people[pick % len(people)]
    rng = random.Random(seed)
    sur_key = "".join(_surname_words(p))
    if not with_first and sur_key in COMMON_SURNAMES:
        # a lone lowercase 'bakker', or 'Bakker' opening a sentence, is the word, by design
        case = "title"
        before = before or ["groep"]
    if sep == "" and case != "camel":
        sep = " "
    mention = render_mention(p, rng, sep=sep, case=case, with_first=with_first)
    text = " ".join([*before, mention, *after])
    out = scrub_text(text, people, public=False)
    assert _left_surnames(out, [p]) == [], (text, out)
    pub = scrub_text(text, people, public=True)
    assert _left_surnames(pub, [p]) == [], (text, pub)
    if with_first:
        assert _left_first_names(pub, [p]) == [], (text, pub)
        assert _first_words(p)[0] in _tokens(out), (text, out)  # first name kept off public
    for public in (False, True):
        slug = slugify("_".join([*before, mention, *after]), people, public=public)
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug), slug
        assert _left_surnames(slug, [p]) == [], (text, slug)


@settings(max_examples=200, deadline=None)
@given(
    people=st.lists(person_st, min_size=0, max_size=5),
    words=st.lists(st.sampled_from(FILLER), min_size=1, max_size=10),
)
def test_property_text_without_names_is_unchanged(people: list[PersonName], words: list[str]) -> None:
    text = " ".join(words)
    assert scrub_text(text, people, public=False) == text
    assert scrub_text(text, people, public=True) == text


@settings(max_examples=200, deadline=None)
@given(stem=st.text(max_size=60), people=st.lists(person_st, max_size=3), public=st.booleans())
def test_property_slug_is_always_a_safe_non_empty_ascii_slug(stem: str, people: list[PersonName], public: bool) -> None:
    slug = slugify(stem, people, public=public)
    assert slug and len(slug) <= 60
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug)


# --------------------------------------------------------------------------------------------
# Per channel: first names of pupils who may not be named there; captions

from photoguard.config import ChannelConfig  # noqa: E402
from photoguard.core.naming import scrub_caption, unnamed  # noqa: E402
from photoguard.core.records import Pupil  # noqa: E402

_NOOR = Pupil("2001", "Noor", "ter", "Horst", "5", consents={})
_MO = Pupil("2005", "Mohammed", "", "El Amrani", "7", consents={"newsletter": False, "parro": True})
_EMMA = Pupil("2002", "Emma", "de", "Vries", "5", consents={"newsletter": True, "parro": True})
_PARRO = ChannelConfig(name="parro", consent="parro", public=False)
_NEWS = ChannelConfig(name="newsletter", consent="newsletter", public=False)
_WEB = ChannelConfig(name="website", consent="website", public=True)
_DAY = date(2026, 12, 2)


def _people() -> list[PersonName]:
    return [PersonName(p.first_name, p.surname_prefix, p.surname) for p in (_NOOR, _MO, _EMMA)]


def test_unnamed_follows_the_eligibility_rule() -> None:
    roster = [_NOOR, _MO, _EMMA]
    assert [p.first_name for p in unnamed(roster, _PARRO, _DAY)] == ["Noor"]
    assert [p.first_name for p in unnamed(roster, _NEWS, _DAY)] == ["Noor", "Mohammed"]
    assert [p.first_name for p in unnamed(roster, _WEB, _DAY)] == ["Noor", "Mohammed", "Emma"]


def test_closed_channel_file_name_drops_first_names_that_may_not_be_named() -> None:
    roster = [_NOOR, _MO, _EMMA]
    people = _people()
    assert slugify("tekening-noor", people, public=False) == "tekening-noor"  # unchanged without hidden
    assert slugify("tekening-noor", people, public=False, hidden=unnamed(roster, _PARRO, _DAY)) == "tekening"
    news = unnamed(roster, _NEWS, _DAY)
    assert slugify("musical-mohammed", people, public=False, hidden=news) == "musical"
    assert slugify("musical emma en mohammed", people, public=False, hidden=news) == "musical-emma"
    name = output_name(_DAY, "groep-7", "Musical_Mohammed", people, public=False, n=2, ext="jpg", hidden=news)
    assert name == "2026-12-02_groep-7_musical_2.jpg"


@pytest.mark.parametrize(
    ("public", "want"),
    [
        (True, "Ons Dorp."),
        (False, "Ons Dorp."),
    ],
)
def test_caption_contact_details_go_with_their_clause(public: bool, want: str) -> None:
    text = "Bel juf Anne op 06-12345678 of mail anne@school.nl, Dorpsstraat 3, Ons Dorp."
    assert scrub_caption(text, _people(), public=public) == want


def test_caption_scrubbed_per_channel() -> None:
    text = "Noor ter Horst en Emma de Vries bij de musical. Vragen? Bel 0612345678 of mail info@school.nl."
    people = _people()
    roster = [_NOOR, _MO, _EMMA]
    assert scrub_caption(text, people, public=True, hidden=unnamed(roster, _WEB, _DAY)) == "bij de musical. Vragen?"
    parro = scrub_caption(text, people, public=False, hidden=unnamed(roster, _PARRO, _DAY))
    assert parro == "Emma bij de musical. Vragen?"
    for out in (parro,):
        assert "Horst" not in out and "Vries" not in out and "@" not in out and "06" not in out


@pytest.mark.parametrize(
    "text",
    [
        "Ophalen (06-12345678) om vier uur.",
        "Adres: Kerkstraat 12, 1234 AB Ons Dorp.",
        "Mail naar info@school.nl; tot morgen!",
        "Tekening van Noor: mijn huis, Dorpsstraat 3",
        "Bel +31 6 1234 5678, of mail noor.terhorst@gmail.com.",
    ],
)
def test_caption_reads_as_a_sentence_after_scrubbing(text: str) -> None:
    out = scrub_caption(text, _people(), public=False, hidden=[PersonName("Noor", "ter", "Horst")])
    assert not re.search(r"\d{4}|@|straat|Noor", out), out
    assert not re.search(r"[,;:]\s*[,;:.]|\(\s*\)|^\s*[,;:.)]|\s[,;:.]|\b(?:of|en|op|van)\s*[,;:.]", out), out
