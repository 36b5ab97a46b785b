"""Public file names and captions without pupils' surnames (pure functions, no I/O).

Matching works on a *folded* copy of the text: every character is lower-cased and stripped of
accents one-to-one (so positions map back to the original), apostrophe and dash variants are
unified, and an invisible boundary mark is inserted at camelCase and letter/digit transitions.
One regex (built as a character trie over all names of the registry) then finds name mentions
that start and end on word boundaries, with any separators (space, ``_``, ``-``, ``.``,
apostrophes, nothing at all) between the words of a name::

    [first name] [tussenvoegsel] surname [possessive]

Surnames that are also ordinary Dutch words (Bakker, de Boer, Smit, Visser, ...) are removed from
free text only in a *name position*: directly after a pupil's first name, or capitalised. In file
names (``slugify``) every surname is removed wherever it stands as a whole word: losing a word
from a file name costs nothing, a surname in a published file name breaks the protocol.

On public channels every first name goes too (the same rule for first names that are ordinary
words, e.g. Roos, Fleur, Storm), as do phone numbers, e-mail addresses, street addresses and
postcodes.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from photoguard.config import ChannelConfig
from photoguard.core.eligibility import may_be_named
from photoguard.core.health import health_spans
from photoguard.core.records import Pupil

__all__ = [
    "PersonName",
    "contact_details",
    "deletions",
    "edit_distance",
    "fold",
    "ocr_key",
    "output_name",
    "person_name",
    "scrub_caption",
    "scrub_text",
    "slugify",
    "unnamed",
    "within_one_edit",
]


@dataclass(frozen=True)
class PersonName:
    first_name: str
    surname_prefix: str
    surname: str


#: Invisible boundary inserted into the folded text at camelCase / letter-digit transitions.
_MARK = "\u2063"
#: What may stand between the words of a name (including nothing, for glued names).
_SEP = r"[\s_\-.,'\u2063]*"
_SEP1 = r"[\s_\-.'\u2063]"
_POSS = r"(?:'s|'|s)?"
_WORD_START = r"(?<![^\W_])"
_WORD_END = r"(?![^\W_])"

#: Tussenvoegsels (Dutch and Flemish), folded.
TUSSENVOEGSELS: tuple[str, ...] = (
    "van", "de", "der", "den", "het", "te", "ten", "ter", "'t", "t", "van de", "van der",
    "van den", "van het", "van 't", "van t", "in 't", "in t", "in de", "in den", "in het",
    "op de", "op den", "op het", "op 't", "op ten", "uit de", "uit den", "uit het", "aan de",
    "aan den", "aan het", "bij de", "onder de", "over de", "voor de", "van ter", "van ten",
    "vander", "vanden", "la", "le", "du", "d'", "di", "da", "del", "della", "dos", "von",
    "von der", "zu", "zum", "el", "al", "ben", "bin", "mac", "o'", "vd", "v d", "v/d", "vdr",
)  # fmt: skip

#: Surnames that are also everyday Dutch words (folded, without tussenvoegsel).
COMMON_WORD_SURNAMES: frozenset[str] = frozenset(
    """
    boer bakker smit smid visser groot kok mulder jong jonge koster wit bruin zwart brouwer
    graaf koning vos haan hoek berg bergen dekker timmerman schipper post kuiper molenaar bos veld
    wolf dijk lange klein groen kort beek brink leeuw meer boom steen kamp haas beer valk zwaan
    hart roos bloem kramer schilder maas rijn heer jager herder ruiter wagenaar snijder koopman
    burger bode knecht prins keizer hertog ridder baron blom hof huis kerk school toren water wind
    storm zon regen sneeuw winter zomer lente pauw kraai mus vink uil kat hond paard geit bok ram
    lam vis snoek baars mol muis das bever hert ree oude nieuw zee strand duin heuvel dal weide
    akker hooi koren eik beuk linde wilg riet gras stok tak blad wortel peer appel kers boon kool
    peper zout honing melk kaas boter brood koek bier wijn goud zilver ijzer koper lood tin glas
    staal kalk klei zand dam poort brug sluis molen schuur stal tuin wal gracht haven
    markt plein straat weg laan pad baan berg voet hand kop kaal lang lange rood blauw geel grijs
    wijs goed kwaad stil snel traag rijk arm vrij vroom blij jonker schaap stier kalf kuiken
    haring paling karper zalm kreeft mossel oester schelvis mees spreeuw merel lijster raaf ekster
    havik arend reiger kraan ooievaar koekoek specht kievit
    """.split()  # noqa: SIM905 (a word list reads better than a literal)
)

#: First names that are also everyday words: removed on public channels only in a name position.
_FIRST_WORDS = """
    ben roos fleur storm lente zomer mees vos lot bas jet max sterre maan zon bo do kim
    hoop vera iris lelie jade noa mare luna sky rosa bloem merel lijster roosje
"""
COMMON_WORD_FIRST_NAMES: frozenset[str] = frozenset(_FIRST_WORDS.split())

_COMMON_FIRST_SAFE_LOWER = COMMON_WORD_FIRST_NAMES


# --------------------------------------------------------------------------------------------
# Folding


#: Letters from other scripts that look like Latin ones (Cyrillic, Greek, Armenian, IPA ...),
#: folded to the Latin letter they imitate, so 'Ноrst' with a Cyrillic 'Н' and 'о' is 'horst'.
_CONFUSABLES: dict[str, str] = {
    **dict(zip("аbвгdеёһіјкӏмноопрсԛтуѵхѕԁԝүһғ", "abbrdeehijklmhoonpcqtyvxsdwyhf", strict=True)),
    **dict(zip("АВЕЁЅІЈКМНОРСТУХЬԚԜӀ", "abeesijkmhopctyxbqwl", strict=True)),
    **dict(zip("αβεηικμνορτυχωϲϳϜΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹ", "abenikmvoptuxwcjfabezhikmnoptyxc", strict=True)),
    **dict(zip("օսոհցաԁɡɑɩɪʟᴀᴄᴅᴇᴋᴍᴏᴘᴛᴜᴠᴡᴢ", "ouohgwdgaiilacdekmoptuvwz", strict=True)),
    "\u0131": "i",  # dotless i
    "\u00df": "s",  # sharp s stays one letter (one character for one character)
    "\u00f8": "o",
    "\u00d8": "o",
    "\u0142": "l",
    "\u0141": "l",
    "\u0111": "d",
    "\u0110": "d",
    "\u00e6": "a",
    "\u00c6": "a",
    "\u0153": "o",
    "\u0152": "o",
}


def _fold_char(ch: str) -> str:
    if ch in "\u2019\u2018`\u00b4\u02bc":
        return "'"
    if ch in "\u2010\u2011\u2012\u2013\u2014\u2212":
        return "-"
    if ch.isascii():
        return ch.lower()
    mapped = _CONFUSABLES.get(ch)
    if mapped is not None:
        return mapped
    # NFKD also takes apart compatibility forms: fullwidth 'Ｈ', mathematical '𝐇', ligatures
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and base[0] != ch and not base[0].isascii():
        base = _CONFUSABLES.get(base[0], base[0]) + base[1:]
    low = base.casefold() if base else ch
    return low[0] if low else ch


def _invisible(ch: str) -> bool:
    """Zero-width and other format characters (they can hide inside a name: 'Hor\u200bst')."""
    return ch != _MARK and unicodedata.category(ch) == "Cf"


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower-case, accent-free, confusables to Latin, one character for one character."""
    return "".join(_fold_char(c) for c in text)


def _fold_with_marks(text: str) -> tuple[str, list[int]]:
    """Folded text with boundary marks, and for each folded char its index in ``text``
    (-1 for inserted marks)."""
    out: list[str] = []
    index: list[int] = []
    prev = ""
    for i, ch in enumerate(text):
        if _invisible(ch):
            continue
        if prev and (
            (prev.islower() and ch.isupper()) or (prev.isalpha() and ch.isdigit()) or (prev.isdigit() and ch.isalpha())
        ):
            out.append(_MARK)
            index.append(-1)
        out.append(_fold_char(ch))
        index.append(i)
        prev = ch
    return "".join(out), index


def _name_words(raw: str) -> list[str]:
    """Words of a name part, folded; apostrophes kept only inside ('t -> t)."""
    words = re.split(r"[\s_\-.,]+", fold(raw).strip())
    out = []
    for w in words:
        w = w.strip("'")
        if w:
            out.append(w)
    return out


# --------------------------------------------------------------------------------------------
# Trie regex


def _trie_regex(phrases: Iterable[tuple[str, ...]]) -> str:
    """A regex matching any phrase (tuple of words, separators allowed between words),
    preferring the longest."""
    trie: dict[str, dict] = {}
    end = ""  # key marking the end of a phrase
    for words in phrases:
        if not words:
            continue
        node = trie
        for k, word in enumerate(words):
            if k:
                node = node.setdefault(" ", {})
            for ch in word:
                node = node.setdefault(ch, {})
        node[end] = {}

    def build(node: dict[str, dict]) -> str:
        alts = []
        optional = end in node
        for key in sorted(k for k in node if k != end):
            sub = build(node[key])
            atom = _SEP if key == " " else re.escape(key)
            alts.append(atom + sub)
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if optional else body

    return build(trie)


_PREFIX_WORDS = frozenset(w for t in TUSSENVOEGSELS for w in _name_words(t))


@dataclass(frozen=True)
class _Matcher:
    surname_rx: re.Pattern[str] | None
    first_rx: re.Pattern[str] | None
    common_surnames: frozenset[str]
    common_first: frozenset[str]
    #: surname key -> the tussenvoegsels (keys) that belong to it in the registry
    prefixes_of: dict[str, frozenset[str]]


def _key(words: Sequence[str]) -> str:
    return "".join(words).replace("'", "")


@functools.lru_cache(maxsize=32)
def _matcher(people: tuple[PersonName, ...]) -> _Matcher:
    firsts: set[tuple[str, ...]] = set()
    surnames: set[tuple[str, ...]] = set()
    prefixes: set[tuple[str, ...]] = {tuple(_name_words(t)) for t in TUSSENVOEGSELS}
    common: set[str] = set()
    common_first: set[str] = set()
    prefixes_of: dict[str, set[str]] = {}
    for p in people:
        fw = _name_words(p.first_name)
        if fw:
            firsts.add(tuple(fw))
            if len(fw) > 1:  # 'Anne-Sophie' is also called 'Anne' or 'Sophie'
                firsts.update((w,) for w in fw if len(w) >= 2)
        pw = _name_words(p.surname_prefix)
        sw = _name_words(p.surname)
        # "de Vries" typed entirely into the surname field: the 'de' is a tussenvoegsel
        while len(sw) > 1 and sw[0] in _PREFIX_WORDS:
            pw = [*pw, sw[0]]
            sw = sw[1:]
        if pw:
            prefixes.add(tuple(pw))
            prefixes.add(tuple(pw[-1:]))
        if not sw:
            continue
        forms = {tuple(sw)}
        if len(sw) > 1:  # double surname: each part is a surname too
            forms.update((w,) for w in sw if len(w) >= 2)
        surnames.update(forms)
        for form in forms:
            keys = prefixes_of.setdefault(_key(form), set())
            if pw:
                keys.add(_key(pw))
                keys.add(_key(pw[-1:]))
    for s in surnames:
        k = _key(s)
        if k in COMMON_WORD_SURNAMES or len(k) <= 2:
            common.add(k)
    for f in firsts:
        k = _key(f)
        if k in COMMON_WORD_FIRST_NAMES or len(k) <= 1:
            common_first.add(k)
    prefixes.discard(())
    first_alt = _trie_regex(firsts)
    sur_alt = _trie_regex(surnames)
    pre_alt = _trie_regex(prefixes)
    surname_rx = None
    if sur_alt:
        first_part = f"(?:(?P<first>{first_alt}){_POSS}{_SEP})?" if first_alt else ""
        pre_part = f"(?:(?P<prefix>{pre_alt}){_SEP})?" if pre_alt else ""
        surname_rx = re.compile(
            _WORD_START + first_part + "(?P<sur>'?" + pre_part + f"(?P<core>{sur_alt}){_POSS})" + _WORD_END
        )
    first_rx = None
    if first_alt:
        first_rx = re.compile(_WORD_START + f"(?P<first>{first_alt}){_POSS}" + _WORD_END)
    return _Matcher(
        surname_rx,
        first_rx,
        frozenset(common),
        frozenset(common_first),
        {k: frozenset(v) for k, v in prefixes_of.items()},
    )


# --------------------------------------------------------------------------------------------
# Contact details (public channels)

_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.UNICODE)
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)31[\s\-.]*(?:\(0\)[\s\-.]*)?[1-9]|\(?0[1-9])"
    r"(?:[\s\-.()]{0,2}\d){7,8}(?!\d)"
)
_POSTCODE = re.compile(r"(?<![\w])[1-9]\d{3}[ \t]?(?!SA|SD|SS)[A-Z]{2}(?![\w])")
_STREET_SUFFIX = (
    r"straat|laan|weg|plein|gracht|kade|dijk|singel|hof|dreef|pad|steeg|plantsoen|park|markt|"
    r"erf|ring|baan|wal|veld|straatweg|dijkje|kampen|hoven|akker|weide|oord|haven|burg|bosch"
)
_STREET = re.compile(
    r"(?<![\w])(?:[A-Z][\w'\-]*[ \t]+){0,3}[\w'\-]*(?:" + _STREET_SUFFIX + r")"
    r"[ \t_\-]*\d{1,5}(?:[ \t\-]?[a-zA-Z](?![a-zA-Z]))?(?:[ \t]*[\-/][ \t]*\d{1,4})?(?!\d)",
    re.IGNORECASE,
)


def _contact_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for rx in (_EMAIL, _PHONE, _POSTCODE):
        spans += [(m.start(), m.end()) for m in rx.finditer(text)]
    for m in _STREET.finditer(text):
        # the street word must end in a street suffix and be more than the suffix itself,
        # so 'de weg 12' or 'pad 3' in a caption stays
        spans.append((m.start(), m.end()))
    return spans


def _clause_bounds(text: str, s: int, e: int) -> tuple[int, int]:
    """The clause around text[s:e]: from after the previous clause mark (``,;()``, a line break or
    a sentence end) to before the next one."""
    if s < e and text[s] == "(":
        s += 1
    i = s
    while i > 0:
        c = text[i - 1]
        if c in ",;()\n" or (c in ".!?" and (i == len(text) or text[i].isspace())):
            break
        i -= 1
    j = e
    while j < len(text):
        c = text[j]
        if c in ",;()\n" or (c in ".!?" and (j + 1 == len(text) or text[j + 1].isspace())):
            break
        j += 1
    return i, j


def _clause_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each contact detail widened to its whole clause with the punctuation that would dangle
    ('Bel juf Anne op 06-1234 5678 of mail anne@school.nl, Ons Dorp.' -> 'Ons Dorp.'): a clause
    means nothing once its phone number or address is gone."""
    out: list[tuple[int, int]] = []
    n = len(text)
    for s, e in spans:
        i, b = _clause_bounds(text, s, e)
        left = text[i - 1] if i > 0 else ""
        right = text[b] if b < n else ""
        a = i
        while a < s and text[a] in " \t":  # the space before the clause stays
            a += 1
        if left == "(" and right == ")":
            a, b = i - 1, b + 1
        elif right in (",", ";"):
            b += 1
        elif right in ("", "\n") or right in ".!?":
            if left in (",", ";"):
                a = i - 1
            else:  # the whole sentence goes, with its full stop
                while b < n and text[b] in ".!?":
                    b += 1
        out.append((a, b))
    return out


# --------------------------------------------------------------------------------------------
# Scrubbing


def _span(index: list[int], start: int, end: int) -> tuple[int, int] | None:
    real = [index[k] for k in range(start, end) if index[k] >= 0]
    if not real:
        return None
    return real[0], real[-1] + 1


def _is_capitalised(text: str, pos: int) -> bool:
    return 0 <= pos < len(text) and text[pos].isupper()


def _in_name_case(text: str, start: int, end: int) -> bool:
    """Does the word text[start:end] look like a name by its case?

    Capitalised, but not merely because it opens a sentence, and not in text that is shouted in
    capitals anyway (there case says nothing).
    """
    if not _is_capitalised(text, start):
        return False
    word = text[start:end]
    if len(word) > 1 and word.isupper():
        letters = [c for c in text if c.isalpha()]
        if letters and sum(c.isupper() for c in letters) / len(letters) > 0.6:
            return False
    before = text[:start].rstrip("\"'([\u201c\u2018")
    if before.strip() == "" or before.endswith("\n"):
        return False  # opens the text or a line
    # not when it opens a sentence
    return not (before[-1] in " \t" and before.rstrip()[-1] in ".!?:")


def _name_spans(
    text: str,
    people: tuple[PersonName, ...],
    *,
    public: bool,
    strict: bool,
    hidden: tuple[PersonName, ...] = (),
) -> list[tuple[int, int]]:
    """Spans of surnames of ``people`` (first names too when ``public``), and of the first names
    of ``hidden`` (people who may not be named in the channel)."""
    m = _matcher(people)
    folded, index = _fold_with_marks(text)
    spans: list[tuple[int, int]] = []
    if m.surname_rx is not None:
        for hit in m.surname_rx.finditer(folded):
            core_key = re.sub(r"[\s_\-.,'\u2063]", "", hit.group("core"))
            has_first = hit.group("first") is not None
            if not strict and core_key in m.common_surnames and not has_first:
                core_orig = _span(index, hit.start("core"), hit.end("core"))
                if core_orig is None or not _in_name_case(text, *core_orig):
                    continue
            start = hit.start() if public and has_first else hit.start("sur")
            prefix = hit.group("prefix")
            if prefix is not None and not (public and has_first):
                pkey = re.sub(r"[\s_\-.,'\u2063]", "", prefix)
                if pkey not in m.prefixes_of.get(core_key, frozenset()):
                    # 'de tas van Jansen': the 'van' is a preposition, not part of the name
                    start = hit.start("core")
            sp = _span(index, start, hit.end())
            if sp:
                spans.append(sp)
    firsts = m if public else (_matcher(hidden) if hidden else None)
    if firsts is not None and firsts.first_rx is not None:
        for hit in firsts.first_rx.finditer(folded):
            key = re.sub(r"[\s_\-.,'\u2063]", "", hit.group("first"))
            sp = _span(index, hit.start(), hit.end())
            if sp is None:
                continue
            if not strict and key in firsts.common_first and not _in_name_case(text, *sp):
                continue
            spans.append(sp)
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


_SEP_CHARS = " \t_-.'\u2019"
_SEP_RIGHT = " \t_-'\u2019"


_TIDY: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rx), repl)
    for rx, repl in (
        (r"\(\s*\)|\[\s*\]", ""),
        (r"[ \t]{2,}", " "),
        (r"[ \t]+([,.!?;:)\]])", r"\1"),
        (r"([(\[])[ \t]+", r"\1"),
        (r"([,;:])(?:\s*[,;:])+", r"\1"),
        (r"(^|\n)[ \t,;:]+", r"\1"),
        (r"[ \t,;:]+($|\n)", r"\1"),
        # conjunctions left dangling by a removal: 'Emma en Jan op reis' -> 'op reis'
        (r"(?i)(?<![^\W_])(en|of|and|&)(?:[ \t_\-]+(?:en|of|and|&)(?![^\W_]))+", r"\1"),
        (r"(?i)(^|\n)[ \t_\-]*(?:en|of|and|&)[ \t_\-]+", r"\1"),
        (r"(?i)[ \t_\-]+(?:en|of|and|&)[ \t_\-]*([,.!?;:]|$|\n)", r"\1"),
    )
)


#: captions: a preposition whose object was removed ('Tekening van Noor: ...' -> 'Tekening: ...')
_DANGLING = re.compile(r"(?i)[ \t]+(?:samen met|van|voor|met|door|bij|naar|aan)[ \t]*([,.!?;:]|$|\n)")


def _remove(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out = ""
    pos = 0
    for s, e in _merge(spans):
        out += text[pos:s]
        pos = e
        rest = text[pos:]
        stripped_right = rest.lstrip(_SEP_RIGHT)
        at_line_start = out == "" or out.endswith("\n")
        if at_line_start or out[-1:] in _SEP_CHARS:
            pos += len(rest) - len(stripped_right)
        if stripped_right == "" or stripped_right.startswith("\n"):
            out = out.rstrip(_SEP_CHARS)
    out += text[pos:]
    for _ in range(2):  # one rule can expose work for another: 'Foto ( ) , x'
        for rx, repl in _TIDY:
            out = rx.sub(repl, out)
    return out.strip()


def _scrub(
    text: str,
    people: Sequence[PersonName],
    *,
    public: bool,
    strict: bool,
    hidden: Sequence[PersonName] = (),
    contacts: bool | None = None,
    clauses: bool = False,
) -> str:
    if not text:
        return text
    group = tuple(people)
    hide = tuple(hidden)
    drop_contacts = public if contacts is None else contacts

    def spans_of(t: str) -> list[tuple[int, int]]:
        found = _name_spans(t, group, public=public, strict=strict, hidden=hide) if group or hide else []
        if drop_contacts and not clauses:
            found += _contact_spans(t)
        return found

    spans = spans_of(text)
    cleaned = _remove(text, spans)
    if spans:
        # a removal can join two fragments into a new mention ("Jan de Vr|ies"): repeat until stable
        for _ in range(3):
            again = spans_of(cleaned)
            if not again:
                break
            cleaned = _remove(cleaned, again)
    if drop_contacts and clauses:
        # one clause at a time: the clause marks around the next one are those left by the last;
        # a clause about someone's health goes the same way, on every channel (AVG art. 9)
        for _ in range(64):
            found = sorted(_contact_spans(cleaned) + health_spans(cleaned))
            if not found:
                break
            cleaned = _remove(cleaned, _clause_spans(cleaned, found[:1]))
        else:
            cleaned = _remove(cleaned, _contact_spans(cleaned) + health_spans(cleaned))
        if cleaned != text and (group or hide):
            cleaned = _scrub(cleaned, group, public=public, strict=strict, hidden=hide, contacts=False)
    if clauses and cleaned != text:
        cleaned = _DANGLING.sub(r"\1", cleaned).strip()
    return cleaned


def scrub_text(
    text: str,
    people: Sequence[PersonName],
    *,
    public: bool,
    hidden: Sequence[PersonName] = (),
    contacts: bool | None = None,
) -> str:
    """Remove every person's surname (all first names too when ``public``; the first names of
    ``hidden``, the people who may not be named in the channel, everywhere), and phone numbers,
    e-mail addresses, street addresses and postcodes when ``contacts`` (default: on public
    channels)."""
    return _scrub(text, people, public=public, strict=False, hidden=hidden, contacts=contacts)


def scrub_caption(
    text: str, people: Sequence[PersonName], *, public: bool, hidden: Sequence[PersonName] = ()
) -> str:
    """A caption for one channel: no surname of anyone in ``people``; no first name of ``hidden``
    (who may not be named in the channel) and none at all on public channels; and on every
    channel no phone number, e-mail address, street address or postcode and nothing about
    anyone's health (:mod:`photoguard.core.health`), each removed with the clause it stood in so
    that what is left still reads as a sentence."""
    return _scrub(text, people, public=public, strict=False, hidden=hidden, contacts=True, clauses=True)


def _ascii_slug(text: str) -> str:
    norm = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in norm if not unicodedata.combining(c)).encode("ascii", "ignore")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.decode("ascii").lower()).strip("-")


MAX_SLUG = 60


def slugify(stem: str, people: Sequence[PersonName], *, public: bool, hidden: Sequence[PersonName] = ()) -> str:
    """A lowercase ASCII slug of a file stem with names removed (the first names of ``hidden`` on
    any channel, every first name on public ones), contact details and health words; never
    empty ('foto')."""
    scrubbed = _scrub(stem, people, public=public, strict=True, hidden=hidden, contacts=True)
    scrubbed = _remove(scrubbed, health_spans(scrubbed))  # 'musical-noor-ziek' says too much
    slug = _ascii_slug(scrubbed)
    if slug and (people or hidden):
        # second pass on the final form (transliteration can reveal a name, e.g. 'Zoë' -> 'zoe')
        again = _scrub(slug.replace("-", " "), people, public=public, strict=True, hidden=hidden, contacts=True)
        slug = _ascii_slug(again)
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0] if "-" in slug[:MAX_SLUG] else slug[:MAX_SLUG]
    return slug.strip("-") or "foto"


_GROUP_NUMBER = re.compile(r"\d{1,2}[a-z]?(?:\s*[/&\-]\s*\d{1,2}[a-z]?)?", re.IGNORECASE)


def group_slug(group: str, people: Sequence[PersonName] = ()) -> str:
    """'7' -> 'groep-7', '1/2' -> 'groep-1-2', 'Groep 5b' -> 'groep-5b', '' -> 'school'."""
    g = group.strip()
    if not g:
        return "school"
    if _GROUP_NUMBER.fullmatch(g):
        return "groep-" + _ascii_slug(g)
    slug = _ascii_slug(_scrub(g, people, public=True, strict=True))
    return slug[:32].strip("-") or "school"


def output_name(
    taken: date,
    group: str,
    stem: str,
    people: Sequence[PersonName],
    *,
    public: bool,
    n: int,
    ext: str,
    hidden: Sequence[PersonName] = (),
) -> str:
    """'<YYYY-MM-DD>_<group slug>_<slug>_<n>.<ext>', e.g. '2026-11-21_groep-7_schoolreis_1.jpg'.
    ``hidden``: the people who may not be named in the channel (:func:`unnamed`)."""
    clean_ext = ext.lower().lstrip(".")
    if not re.fullmatch(r"[a-z0-9]{1,5}", clean_ext):
        raise ValueError("invalid file extension")
    if n < 0:
        raise ValueError("n must be >= 0")
    day = f"{taken.year:04d}-{taken.month:02d}-{taken.day:02d}"
    return f"{day}_{group_slug(group, people)}_{slugify(stem, people, public=public, hidden=hidden)}_{n}.{clean_ext}"


def person_name(pupil: Pupil) -> PersonName:
    return PersonName(pupil.first_name, pupil.surname_prefix, pupil.surname)


def unnamed(pupils: Iterable[Pupil], channel: ChannelConfig, today: date) -> list[PersonName]:
    """The pupils whose first names may not appear in ``channel`` (every one on a public channel;
    on a closed one those the eligibility rule does not let be named there)."""
    return [person_name(p) for p in pupils if not may_be_named(p, channel, today)]


# --------------------------------------------------------------------------------------------
# Fuzzy keys for text read by OCR (photoguard.core.textpolicy)

#: Characters OCR confuses, folded to one representative (after ``fold``).
_OCR_CHAR = str.maketrans({"0": "o", "1": "i", "l": "i", "|": "i", "!": "i", "5": "s", "$": "s", "8": "b", "2": "z"})
#: Letter pairs OCR reads as one letter (and back): applied after the single characters.
_OCR_PAIRS: tuple[tuple[str, str], ...] = (("rn", "m"), ("vv", "w"), ("ij", "y"), ("cl", "d"))


def ocr_key(text: str) -> str:
    """A matching key for OCR'd text: folded (case, accents, look-alikes), letters and digits
    only, with the characters and pairs that OCR confuses mapped to one form ('N00r' and
    'Noor' give the same key, as do 'Horn' and 'Hom', 'Bijl' and 'Byl')."""
    folded = "".join(c for c in fold(text) if c.isalnum() or c in "|!$")
    key = folded.translate(_OCR_CHAR)
    for pair, one in _OCR_PAIRS:
        key = key.replace(pair, one)
    return "".join(c for c in key if c.isalnum())


def deletions(key: str) -> set[str]:
    """Every string made by deleting one character of ``key`` (for edit distance 1 look-ups)."""
    return {key[:i] + key[i + 1 :] for i in range(len(key))}


def within_one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one inserted, deleted or replaced character."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return short in deletions(long)


def contact_details(text: str) -> list[tuple[int, int, str]]:
    """Spans of e-mail addresses, phone numbers, postcodes and street addresses in ``text``,
    each with its kind ('e-mail', 'phone number', 'postcode', 'street address')."""
    found: list[tuple[int, int, str]] = []
    kinds = ((_EMAIL, "e-mail"), (_PHONE, "phone number"), (_POSTCODE, "postcode"), (_STREET, "street address"))
    for rx, kind in kinds:
        found += [(m.start(), m.end(), kind) for m in rx.finditer(text)]
    return sorted(found)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, replacements) between two short strings."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
