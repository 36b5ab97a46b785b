"""What the database keeps of an upload's original file name (pure).

A teacher's file name can carry a pupil's full name (``Noor ter Horst tekening.jpg``). The
``photos.stem`` column is read later to name the outputs of a review approval or a re-render, so
it cannot simply be dropped; instead the database keeps:

* the stem itself when it names no pupil of the registry (``IMG_1234``, ``schoolreis``): outputs
  named from it later get exactly the file names they get today;
* otherwise the stem's slug with every pupil's name removed (first names too, as on a public
  channel), or ``foto`` when nothing else is left.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from photoguard.core.naming import PersonName, scrub_text, slugify

#: a slug is cut at 60 characters: a long stem is also checked in windows of whole words
_WINDOW = 48
_TOKENS = re.compile(r"[^\W_]+|[\W_]+")


def _windows(stem: str) -> Iterator[str]:
    if len(stem) <= _WINDOW:
        yield stem
        return
    tokens = _TOKENS.findall(stem)
    for i, tok in enumerate(tokens):
        if not tok[0].isalnum():
            continue
        part = tok
        for nxt in tokens[i + 1 :]:
            if len(part) + len(nxt) > _WINDOW:
                break
            part += nxt
        yield part


def names_in(stem: str, people: Sequence[PersonName]) -> bool:
    """Whether ``stem`` names any of ``people`` (as a file name or as free text)."""
    if not stem or not people:
        return False
    if scrub_text(stem, people, public=True) != scrub_text(stem, (), public=True):
        return True
    return any(slugify(part, people, public=True) != slugify(part, (), public=True) for part in _windows(stem))


def stored_stem(stem: str, people: Sequence[PersonName]) -> str:
    """The stem as the database keeps it (see the module docstring)."""
    if not names_in(stem, people):
        return stem
    return slugify(stem, people, public=True)
