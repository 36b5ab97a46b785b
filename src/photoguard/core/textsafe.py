"""Text that people read: harmless in a spreadsheet and a terminal, times in the school's zone.

Pupils' names, captions, file names and reasons come from a parent's export, a teacher's folder or
an uploaded file: any of them can hold a spreadsheet formula or a terminal escape sequence. Every
CSV, table, text and HTML output of photoguard passes such values through this module:

* :func:`csv_cell` -- a cell a spreadsheet would run as a formula (it starts with ``=``, ``+``,
  ``-``, ``@``, a tab or a line break, also after spaces or in full-width form) gets a leading
  ``'``, which Excel and LibreOffice show as text and hide; controls are escaped as below.
* :func:`terminal_text` -- control characters (C0 such as ESC, DEL, C1 such as CSI and OSC), bidi
  overrides and isolates, and line/paragraph separators are replaced by visible escapes
  (``\\x1b``, ``\\u202e``): nothing a list prints can move the cursor, recolour, retitle the
  terminal or reorder what is shown.
* :func:`write_csv` -- CSV the way a Dutch office opens it: ``;`` separated, UTF-8 with a
  byte-order mark (both configurable, ``[locale]``), every cell through :func:`csv_cell`.
* :func:`local_time` -- a stored UTC time shown in the school's time zone.

Pure: no I/O, no configuration reading (the caller passes an :class:`OutputStyle`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_TIMEZONE",
    "OutputStyle",
    "csv_cell",
    "local_time",
    "terminal_text",
    "write_csv",
]

DEFAULT_TIMEZONE = "Europe/Amsterdam"
BOM = "\ufeff"

#: bidi embeddings, overrides, isolates and marks; line and paragraph separators
_INVISIBLE = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_INVISIBLE}]")
#: what makes a spreadsheet read a cell as a formula (full-width forms included)
_FORMULA_START = tuple("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(value: object) -> str:
    """``value`` as text with every control, bidi and line-separator character made visible."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as the text it is. Numbers stay numbers; a lone
    ``-`` (an empty value) stays as it is."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    raw = value if isinstance(value, str) else str(value)
    if raw.lstrip(" ").startswith(_FORMULA_START) and raw.strip() != "-":
        return "'" + terminal_text(raw)
    return terminal_text(raw)


@dataclass(frozen=True, slots=True)
class OutputStyle:
    """How outputs for people are written: CSV separator and byte-order mark, time zone."""

    timezone: str = DEFAULT_TIMEZONE
    csv_separator: str = ";"
    csv_bom: bool = True
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        if self.csv_separator not in (";", ","):
            raise ValueError(f"CSV separator must be ';' or ',', not {self.csv_separator!r}")

    @classmethod
    def from_settings(cls, locale: Any) -> OutputStyle:
        """From the ``[locale]`` settings (``photoguard.config.LocaleConfig``)."""
        return cls(locale.timezone, locale.csv_separator, locale.csv_bom)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def time(self, value: str | datetime | None, *, seconds: bool = False) -> str:
        return local_time(value, self._zone, seconds=seconds)


def local_time(value: str | datetime | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """A stored time (ISO text, UTC unless it says otherwise) as ``YYYY-MM-DD HH:MM`` in ``zone``.
    A plain date stays a date; text that is not a time is returned made terminal-safe."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if len(value) == 10:
            return terminal_text(value)
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return terminal_text(value)
    else:
        dt = value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]], style: OutputStyle) -> str:
    """CSV text: ``style``'s separator, a byte-order mark when ``style`` asks, safe cells."""
    buf = io.StringIO()
    if style.csv_bom:
        buf.write(BOM)
    w = csv.writer(buf, delimiter=style.csv_separator, lineterminator="\n")
    w.writerow([csv_cell(h) for h in header])
    for row in rows:
        w.writerow([csv_cell(c) for c in row])
    return buf.getvalue()
