"""Which text in a photo to cover, per channel (pure: no I/O, no models).

Input: the text lines found in a photo (``TextBox``, from ``photoguard.photo.text``), the
registry's pupils, one channel and the ``[text]`` settings. Output: the regions to fill, each with
a reason. The rules (issue 13, the school's protocol):

- a pupil's **surname** (with or without tussenvoegsel, glued to the first name or not) is covered
  on every channel;
- a pupil's **first name** is covered on public channels, and on any channel where a pupil of that
  first name may not be named (left the school, or no consent for the channel's key). When several
  pupils share the first name, one of them without consent is enough (fail closed);
- on public channels **e-mail addresses, phone numbers, postcodes and street addresses** are covered;
- on every channel **words about health** ('ziek', 'koorts', 'astma', ...: ``core.health``) are covered;
- a line that was found but **cannot be read** (often a pupil's handwriting) follows
  ``TextConfig.unreadable`` (default: covered on public channels).

Names are matched fuzzily: case, accents and look-alike letters (``naming.fold``), spacing and
glued words (windows of consecutive words are compared without separators), the characters OCR
confuses (``naming.ocr_key``: 0/O, 1/l/I, rn/m, ...) and one further edit for keys of five or more
letters. Surnames and first names that are ordinary Dutch words ('Bakker', 'Roos', 'huis') are
covered only when written as a name (capitalised or in capitals) or next to the pupil's other name.

Where the OCR gives character positions, only the matched words are covered (up to halfway to
the neighbouring characters plus half a character, and 15 % of the line height above and below);
otherwise the whole line is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from photoguard.config import ChannelConfig, TextConfig, UnreadableText
from photoguard.core.eligibility import may_be_named
from photoguard.core.health import health_spans
from photoguard.core.naming import (
    COMMON_WORD_FIRST_NAMES,
    COMMON_WORD_SURNAMES,
    TUSSENVOEGSELS,
    contact_details,
    deletions,
    edit_distance,
    fold,
    ocr_key,
)
from photoguard.core.records import Box, Pupil

__all__ = ["TextBox", "TextRedaction", "decide_text", "may_be_named"]

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


@dataclass(frozen=True, slots=True)
class TextBox:
    """One line of text found in a photo. ``box``: axis-aligned, photo pixels, x2/y2 exclusive.
    ``polygon``: the line's quadrilateral (top-left, top-right, bottom-right, bottom-left in reading
    direction). ``score``: recognition confidence (0 when nothing could be read); ``det_score``: how
    sure the detector is that this is text at all. ``char_spans``: per character of ``text``, its
    place along the line as fractions (0 = start, 1 = end); empty when unknown."""

    box: Box
    text: str
    score: float
    polygon: Quad | None = None
    det_score: float = 1.0
    char_spans: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class TextRedaction:
    """A region to fill: ``polygon`` (when known) and its bounding ``box``, in photo pixels.
    ``line`` is the index of the ``TextBox``; ``reason`` names the kind, never the name."""

    line: int
    box: Box
    polygon: Quad | None
    reason: str
    pupil_ids: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Roster index


@dataclass(frozen=True, slots=True)
class _Form:
    pupil_id: str
    surname: bool  # the form contains the surname
    common: bool  # an ordinary word: needs a name position
    words: int  # how many name words it spans (first + surname > surname alone)
    with_first: bool = False  # the form starts with the first name


_PREFIX_KEYS = frozenset(ocr_key(t) for t in TUSSENVOEGSELS)
_WORD = re.compile(r"[^\W_]+|[|!$]+")


def _words(raw: str) -> list[str]:
    return [w for w in re.split(r"[\s_\-.,]+", fold(raw)) if w.strip("'")]


def _forms(pid: str, first_name: str, surname_prefix: str, surname: str) -> Iterable[tuple[str, _Form]]:
    first = [ocr_key(w) for w in _words(first_name)]
    first = [w for w in first if w]
    prefix = [ocr_key(w) for w in _words(surname_prefix)]
    sur = [ocr_key(w) for w in _words(surname)]
    sur = [w for w in sur if w]
    while len(sur) > 1 and sur[0] in _PREFIX_KEYS:  # 'de Vries' typed into the surname field
        prefix.append(sur.pop(0))
    prefix = [w for w in prefix if w]
    if sur:
        cores = {"".join(sur)}
        if len(sur) > 1:
            cores.update(w for w in sur if len(w) >= 3)
        for core in cores:
            common = core in COMMON_WORD_SURNAMES or len(core) <= 2
            yield core, _Form(pid, True, common, 1)
            if prefix:
                yield "".join(prefix) + core, _Form(pid, True, False, 2)
                yield prefix[-1] + core, _Form(pid, True, False, 2)
            for f in ({"".join(first)} | set(first)) if first else set():
                yield f + core, _Form(pid, True, False, 2, True)
                if prefix:
                    yield f + "".join(prefix) + core, _Form(pid, True, False, 3, True)
    if first:
        names = {"".join(first)} | ({w for w in first if len(w) >= 2} if len(first) > 1 else set())
        for f in names:
            common = fold(f) in COMMON_WORD_FIRST_NAMES or len(f) <= 1
            yield f, _Form(pid, False, common, 1)


@dataclass(frozen=True, eq=False)  # hashed by identity: one cached index per registry
class _Index:
    exact: dict[str, list[_Form]]
    #: pupil id -> keys of their first name (to leave a first name visible next to a surname)
    first_keys: dict[str, frozenset[str]]
    #: one-deletion variants of keys of >= 5 letters -> keys
    dels: dict[str, set[str]]
    #: keys of >= 8 letters and their one- and two-deletion variants -> keys
    dels2: dict[str, set[str]]
    longest: int


def _index(pupils: Sequence[Pupil]) -> _Index:
    return _index_of(tuple((p.pupil_id, p.first_name, p.surname_prefix, p.surname) for p in pupils))


@functools.lru_cache(maxsize=8)
def _index_of(names: tuple[tuple[str, str, str, str], ...]) -> _Index:
    """The roster's name keys (cached: the same registry serves every photo and channel)."""
    exact: dict[str, list[_Form]] = {}
    first_keys: dict[str, set[str]] = {}
    for pid, first, prefix, surname in names:
        for key, form in _forms(pid, first, prefix, surname):
            exact.setdefault(key, []).append(form)
            if not form.surname:
                first_keys.setdefault(pid, set()).add(key)
            exact.setdefault(key + "s", []).append(form)  # possessive: 'Noors tekening'
    dels: dict[str, set[str]] = {}
    dels2: dict[str, set[str]] = {}
    for key in exact:
        if len(key) >= 5:
            for d in deletions(key):
                dels.setdefault(d, set()).add(key)
        if len(key) >= _LONG:
            for d in _two_deletions(key):
                dels2.setdefault(d, set()).add(key)
    return _Index(
        exact,
        {k: frozenset(v) for k, v in first_keys.items()},
        dels,
        dels2,
        max((len(k) for k in exact), default=0),
    )


#: keys at least this long match with two edits
_LONG = 8


def _two_deletions(key: str) -> set[str]:
    """``key`` and every string made by deleting one or two of its characters."""
    one = deletions(key)
    out = {key} | one
    for d in one:
        out |= deletions(d)
    return out


def _lookup(index: _Index, key: str) -> list[_Form]:
    hits = list(index.exact.get(key, ()))
    if hits or len(key) < 5:
        return hits
    near: set[str] = set()
    near.update(index.dels.get(key, ()))  # the OCR text misses one letter
    for d in deletions(key):
        if d in index.exact and len(d) >= 5:
            near.add(d)  # the OCR text has one letter too many
        near.update(index.dels.get(d, ()))  # one letter read wrong
    near = {k for k in near if len(k) >= 5}
    if not near and len(key) >= _LONG - 2:
        # long keys (a full name, 'daanmaas' read as 'danmas'): two edits
        cands: set[str] = set()
        for d in _two_deletions(key):
            cands.update(index.dels2.get(d, ()))
        near = {k for k in cands if edit_distance(k, key) <= 2}
    for k in sorted(near):
        hits.extend(index.exact[k])
    return hits


# --------------------------------------------------------------------------------------------
# Matching in one line


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    forms: tuple[_Form, ...]
    #: (start, end, key) of the words the hit spans
    tokens: tuple[tuple[int, int, str], ...]


def _name_case(text: str, start: int, end: int) -> bool:
    word = text[start:end]
    return bool(word) and word[0].isupper()


@functools.lru_cache(maxsize=2048)
def _find_names(text: str, index: _Index) -> tuple[_Hit, ...]:
    """Name hits in one line (cached: every channel of a photo asks for the same lines)."""
    tokens = [(m.start(), m.end(), ocr_key(m.group())) for m in _WORD.finditer(text)]
    tokens = [t for t in tokens if t[2]]
    hits: list[_Hit] = []
    for i in range(len(tokens)):
        key = ""
        for j in range(i, min(len(tokens), i + 8)):
            key += tokens[j][2]
            if len(key) > index.longest + 1:
                break
            forms = _lookup(index, key)
            if forms:
                hits.append(_Hit(tokens[i][0], tokens[j][1], tuple(forms), tuple(tokens[i : j + 1])))
        # a surname with OCR debris glued on ('Dekkergep' for 'Dekker groep'): the word goes whole
        word = tokens[i][2]
        for n in range(len(word) - 1, 4, -1):
            glued = [f for f in index.exact.get(word[:n], ()) if f.surname]
            if glued:
                hits.append(_Hit(tokens[i][0], tokens[i][1], tuple(glued), (tokens[i],)))
                break
    return tuple(hits)


def _after_first_name(hit: _Hit, index: _Index, ids: set[str]) -> int:
    """Where the surname starts in a 'first name + surname' hit whose first name may stay: after
    the words that spell the first name (a name glued into one word is covered whole)."""
    firsts = set.intersection(*(set(index.first_keys.get(i, ())) for i in ids))
    key = ""
    start = hit.start
    for k, (_, _, word) in enumerate(hit.tokens[:-1]):
        key += word
        if key in firsts:  # the longest first name wins: 'Anne-Sophie', not 'Anne'
            start = hit.tokens[k + 1][0]
    return start


def _accept(hit: _Hit, form: _Form, text: str) -> bool:
    if not form.common or form.words > 1:
        return True
    # an ordinary word ('huis', 'roos'): only written as a name
    return _name_case(text, hit.start, hit.end)


# --------------------------------------------------------------------------------------------
# Regions


#: A word's region reaches this share of the line height above and below the detected line
#: (ascenders, descenders and accents poke out of the detector's box).
_GROW = 0.15


def _taller(poly: Quad, g: float) -> Quad:
    tl, tr, br, bl = poly

    def away(p: Point, q: Point) -> Point:  # p moved away from q by g of their distance
        return (p[0] + (p[0] - q[0]) * g, p[1] + (p[1] - q[1]) * g)

    return (away(tl, bl), away(tr, br), away(br, tr), away(bl, tl))


def _sub_quad(tb: TextBox, start: int, end: int) -> tuple[Box, Quad | None]:
    """The part of the line holding characters [start, end), with a margin (see below)."""
    poly = tb.polygon
    spans = tb.char_spans
    if poly is None or len(spans) != len(tb.text) or not spans:
        return tb.box, poly
    # OCR places a character where it was recognised (a narrow time step), not over its whole
    # width: a word runs from halfway after the previous character to halfway before the next,
    # plus half an average character
    f0 = 0.0 if start == 0 else (spans[start - 1][1] + spans[start][0]) / 2
    f1 = 1.0 if end == len(spans) else (spans[end - 1][1] + spans[end][0]) / 2
    pad = 0.5 / len(spans)
    f0, f1 = max(0.0, f0 - pad), min(1.0, f1 + pad)
    tl, tr, br, bl = _taller(poly, _GROW)

    def lerp(p: Point, q: Point, f: float) -> Point:
        return (p[0] + (q[0] - p[0]) * f, p[1] + (q[1] - p[1]) * f)

    quad: Quad = (lerp(tl, tr, f0), lerp(tl, tr, f1), lerp(bl, br, f1), lerp(bl, br, f0))
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    return Box(min(xs), min(ys), max(xs), max(ys)), quad


def _redaction(line: int, tb: TextBox, start: int, end: int, reason: str, ids: Iterable[str] = ()) -> TextRedaction:
    box, quad = _sub_quad(tb, start, end)
    return TextRedaction(line, box, quad, reason, tuple(sorted(set(ids))))


def decide_text(
    boxes: Sequence[TextBox],
    pupils: Sequence[Pupil],
    channel: ChannelConfig,
    today: date,
    settings: TextConfig | None = None,
) -> list[TextRedaction]:
    """The regions to fill in ``channel``, in line order, each with a reason."""
    cfg = settings or TextConfig()
    by_id = {p.pupil_id: p for p in pupils}
    index = _index(pupils)
    out: list[TextRedaction] = []
    for n, tb in enumerate(boxes):
        text = tb.text
        readable = bool(text.strip()) and tb.score >= cfg.min_read_score
        if not readable and tb.det_score >= cfg.unreadable_min_det_score:
            policy = cfg.unreadable
            if policy is UnreadableText.REDACT_ALL or (policy is UnreadableText.REDACT_PUBLIC and channel.public):
                out.append(TextRedaction(n, tb.box, tb.polygon, "unreadable text"))
                continue
        if not text.strip():
            continue
        for hit in _find_names(text, index):
            forms = [f for f in hit.forms if _accept(hit, f, text)]
            if not forms:
                continue
            surname_ids = {f.pupil_id for f in forms if f.surname}
            if surname_ids:
                start = hit.start
                if all(f.with_first for f in forms if f.surname) and all(
                    may_be_named(by_id[i], channel, today) for i in surname_ids
                ):
                    start = _after_first_name(hit, index, surname_ids)
                out.append(_redaction(n, tb, start, hit.end, "surname", surname_ids))
                continue
            ids = {f.pupil_id for f in forms}
            if channel.public:
                out.append(_redaction(n, tb, hit.start, hit.end, "first name on a public channel", ids))
            elif any(not may_be_named(by_id[i], channel, today) for i in ids):
                out.append(_redaction(n, tb, hit.start, hit.end, f"first name without {channel.consent} consent", ids))
        if channel.public:
            for start, end, kind in contact_details(text):
                out.append(_redaction(n, tb, start, end, kind))
        for start, end in health_spans(text):  # every channel: special-category data (AVG art. 9)
            out.append(_redaction(n, tb, start, end, "health"))
    return out
