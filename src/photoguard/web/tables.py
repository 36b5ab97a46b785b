"""The lists of the comms and privacy pages: one :class:`Table` is both the page's table and its
CSV download, so what is shown and what is exported never differ. CSV the way a Dutch office opens
it (``[locale]``: ``;``, UTF-8 with BOM), every cell through ``core.textsafe`` (no formulas, no
control characters), times in the school's zone written the Dutch way (``2-12-2026 18:04``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from starlette.responses import Response

from photoguard.config import Settings
from photoguard.core.textsafe import OutputStyle, write_csv
from photoguard.web import i18n


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: its text, and on the page optionally a link or a form button (``action``,
    the POST URL) with ``label``. The CSV takes the text only."""

    text: str
    href: str = ""
    action: str = ""
    label: str = ""


@dataclass
class Table:
    """Column titles (i18n keys) and rows of cells (plain strings or :class:`Cell`)."""

    columns: list[str]
    rows: list[list[str | Cell]] = field(default_factory=list)

    def headers(self, lang: str) -> list[str]:
        return [label(c, lang) for c in self.columns]

    def cells(self) -> list[list[Cell]]:
        return [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in self.rows]


def label(key: str, lang: str) -> str:
    """A column title: the word for ``key``; ``consent.<key>`` of a channel is the channel's name."""
    text = i18n.word(key, lang)
    if text == key and key.startswith("consent."):
        return i18n.channel_label(key.removeprefix("consent."), lang)
    return text


def dutch_time(value: str | None, tz: ZoneInfo) -> str:
    """A stored time as ``d-m-jjjj uu:mm`` in the school's zone; a plain date as ``d-m-jjjj``."""
    if not value:
        return ""
    if len(value) == 10:
        try:
            d = date.fromisoformat(value)
        except ValueError:
            return value
        return f"{d.day}-{d.month}-{d.year}"
    return i18n.local_time(value, tz) or value


def utc_bounds(start: date | None, end: date | None, tz: ZoneInfo) -> tuple[str | None, str | None]:
    """The UTC ISO bounds ``[lo, hi)`` of the school-zone days ``start`` .. ``end`` (inclusive)."""

    def midnight(d: date) -> str:
        from datetime import UTC

        return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC).isoformat(timespec="seconds")

    lo = midnight(start) if start else None
    hi = midnight(date.fromordinal(end.toordinal() + 1)) if end else None
    return lo, hi


def parse_day(raw: object) -> date | None:
    """A form's ``YYYY-MM-DD`` (an ``<input type=date>``) or ``d-m-yyyy``; None when empty or
    unreadable (a filter that cannot be read is no filter, never an error page)."""
    text = str(raw or "").strip()[:10]
    for fmt in ("%Y-%m-%d", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def yes_no(value: object, lang: str) -> str:
    if value is None:
        return "-"
    return i18n.word("desk.yes" if value in (1, True) else "desk.no", lang)


def csv_response(table: Table, settings: Settings, lang: str, filename: str) -> Response:
    """The table as a CSV download (``filename`` is ours: letters, digits, ``-`` and ``.``)."""
    style = OutputStyle.from_settings(settings.locale)
    text = write_csv(table.headers(lang), ([c.text for c in r] for r in table.cells()), style)
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
