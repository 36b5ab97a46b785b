"""The class list (klassenlijst) of one group, for the parents of that class.

Internal by nature: it carries full names (first name, tussenvoegsel, surname). A parent phone
number appears only where ``classlist_phone`` consent is given; pupils who have left are not
listed. Sorted the Dutch way: by surname without the tussenvoegsel, then first name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from photoguard.core.eligibility import has_left
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


def render(entries: Sequence[ClassEntry], group: str, fmt: str) -> str:
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["voornaam", "tussenvoegsel", "achternaam", "telefoon"])
        for e in entries:
            w.writerow([e.first_name, e.surname_prefix, e.surname, e.phone])
        return buf.getvalue()
    if fmt == "html":
        body = (
            f'<p class="note">{len(entries)} leerling(en). Alleen voor ouders van deze groep; '
            "telefoonnummers alleen met toestemming. Niet doorsturen.</p>\n"
            + html_table(
                ["voornaam", "tussenvoegsel", "achternaam", "telefoon"],
                [[e.first_name, e.surname_prefix, e.surname, e.phone] for e in entries],
            )
        )
        return html_page(f"Klassenlijst groep {group}", body)
    if fmt == "table":
        if not entries:
            return f"no pupils in group {group}\n"
        width = max(len(e.full_name) for e in entries)
        lines = [f"class list group {group} ({len(entries)} pupils)"]
        lines += [f"  {e.full_name.ljust(width)}  {e.phone}".rstrip() for e in entries]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
