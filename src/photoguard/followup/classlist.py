"""The class list (klassenlijst) of one group, for the parents of that class.

Internal by nature: it carries full names (first name, tussenvoegsel, surname). A parent phone
number appears only where ``classlist_phone`` consent is given; pupils who have left are not
listed. Sorted the Dutch way: by surname without the tussenvoegsel, then first name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from photoguard.core.eligibility import has_left
from photoguard.core.textsafe import OutputStyle, terminal_text, write_csv
from photoguard.followup.takedown import html_page, html_table
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store

FORMATS = ("table", "csv", "html")


@dataclass(frozen=True, slots=True)
class ClassEntry:
    first_name: str
    surname_prefix: str
    surname: str
    phone: str  # "" without classlist_phone consent

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.surname_prefix, self.surname) if p)


def _norm_group(g: str) -> str:
    g = g.strip().lower()
    return g[len("groep") :].strip() if g.startswith("groep") else g


def class_list(store: Store, group: str, today: date | None = None) -> list[ClassEntry]:
    today = today or date.today()
    want = _norm_group(group)
    out = [
        ClassEntry(p.first_name, p.surname_prefix, p.surname, p.phone if p.consents_to("classlist_phone") else "")
        for p in Registry(store).pupils().values()
        if _norm_group(p.group) == want and not has_left(p, today)
    ]
    out.sort(
        key=lambda e: (e.surname.casefold(), e.first_name.casefold(), e.surname_prefix.casefold())
    )
    return out


def render(entries: Sequence[ClassEntry], group: str, fmt: str, style: OutputStyle | None = None) -> str:
    """The list as a table, CSV (``style``: separator, byte-order mark) or an HTML page; every
    name passes :mod:`photoguard.core.textsafe` (no formulas, no terminal escapes)."""
    style = style or OutputStyle()
    header = ["voornaam", "tussenvoegsel", "achternaam", "telefoon"]
    if fmt == "csv":
        return write_csv(header, ([e.first_name, e.surname_prefix, e.surname, e.phone] for e in entries), style)
    if fmt == "html":
        body = (
            f'<p class="note">{len(entries)} leerling(en). Alleen voor ouders van deze groep; '
            "telefoonnummers alleen met toestemming. Niet doorsturen.</p>\n"
            + html_table(header, [[e.first_name, e.surname_prefix, e.surname, e.phone] for e in entries])
        )
        return html_page(f"Klassenlijst groep {group}", body)
    if fmt == "table":
        shown = terminal_text(group)
        if not entries:
            return f"no pupils in group {shown}\n"
        names = [terminal_text(e.full_name) for e in entries]
        width = max(len(n) for n in names)
        lines = [f"class list group {shown} ({len(entries)} pupils)"]
        lines += [f"  {n.ljust(width)}  {terminal_text(e.phone)}".rstrip() for n, e in zip(names, entries, strict=True)]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
