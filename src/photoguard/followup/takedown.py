"""The takedown list: every withdrawn output, per channel, for comms staff.

photoguard removes its own files at once, but a file that was already posted on the website, on
social media, in a Parro message or printed in the guide has to be taken down (or replaced) by a
person. This list says which file (name and sha256), why, since when, and what replaces it.

Formats: a readable table (default), CSV, and a self-contained HTML page without pupil names:
pupil ids only, and file names of closed channels (which may carry a first name) shown with all
names removed; the sha256 prefix identifies the file unambiguously. Times are shown in the
school's time zone, CSV is written the Dutch-Excel way, and every value passes
:mod:`photoguard.core.textsafe` (no formulas, no terminal escapes); see :class:`OutputStyle`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import PurePosixPath

from photoguard.core.naming import PersonName, scrub_text
from photoguard.core.textsafe import OutputStyle, terminal_text, write_csv
from photoguard.ledger import ledger
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store, iso

COLUMNS = ("at", "channel", "file", "sha256", "pupil_id", "reason", "replacement")


@dataclass(frozen=True, slots=True)
class Takedown:
    id: int
    at: str
    channel: str
    output_path: str
    output_sha256: str
    pupil_id: str
    reason: str
    replacement_path: str | None

    def row(self, names: NameScrubber | None = None) -> dict[str, str]:
        fix = names.file if names else (lambda p: PurePosixPath(p).name)
        return {
            "at": self.at,
            "channel": self.channel,
            "file": fix(self.output_path),
            "sha256": self.output_sha256,
            "pupil_id": self.pupil_id,
            "reason": self.reason,
            "replacement": fix(self.replacement_path) if self.replacement_path else "",
        }


class NameScrubber:
    """Removes every pupil's first name and surname from file names (for pages without names)."""

    def __init__(self, people: Sequence[PersonName]) -> None:
        self.people = list(people)

    @classmethod
    def from_store(cls, store: Store) -> NameScrubber:
        return cls([PersonName(*names) for names in Registry(store).names()])

    def file(self, path: str) -> str:
        name = PurePosixPath(path).name
        if not self.people:
            return name
        return scrub_text(name, self.people, public=True)


def list_takedowns(
    store: Store,
    *,
    channel: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[Takedown]:
    rows = ledger.takedowns(
        store,
        channel=channel,
        since=since.isoformat() if since else None,
        before=(until + timedelta(days=1)).isoformat() if until else None,
    )
    return [
        Takedown(
            r["id"],
            r["at"],
            r["channel"],
            r["output_path"],
            r["output_sha256"],
            r["pupil_id"],
            r["reason"],
            r["replacement_path"],
        )
        for r in rows
    ]


def render_table(items: Sequence[Takedown], style: OutputStyle | None = None) -> str:
    style = style or OutputStyle()
    if not items:
        return "no takedowns\n"
    rows = [{k: terminal_text(v) for k, v in it.row().items()} for it in items]
    for r, it in zip(rows, items, strict=True):
        r["sha256"] = r["sha256"][:12]
        r["at"] = style.time(it.at)
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    lines.extend("  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows)
    per: dict[str, int] = {}
    for it in items:
        per[it.channel] = per.get(it.channel, 0) + 1
    lines.append("")
    lines.append(
        f"{len(items)} takedown(s): " + ", ".join(f"{terminal_text(k)} {v}" for k, v in sorted(per.items()))
    )
    return "\n".join(lines) + "\n"


def render_csv(items: Sequence[Takedown], style: OutputStyle | None = None) -> str:
    style = style or OutputStyle()
    header = [*COLUMNS, "path", "replacement_path"]
    rows = []
    for it in items:
        row: dict[str, str] = {
            **it.row(),
            "at": style.time(it.at, seconds=True),
            "path": it.output_path,
            "replacement_path": it.replacement_path or "",
        }
        rows.append([row[c] for c in header])
    return write_csv(header, rows, style)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3em .5em;"
    "text-align:left;font-size:.9em}th{background:#eee}code{font-size:.85em}"
    "h2{margin-top:1.5em}.note{color:#555}"
)


def html_page(title: str, body: str) -> str:
    """A self-contained page (inline CSS, no scripts, nothing loaded from elsewhere)."""
    return (
        '<!DOCTYPE html>\n<html lang="nl"><head><meta charset="utf-8">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(terminal_text(title))}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(terminal_text(title))}</h1>\n{body}\n</body></html>\n"
    )


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; every cell escaped, with controls and bidi overrides made visible."""
    head = "".join(f"<th>{html.escape(terminal_text(h))}</th>" for h in headers)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(terminal_text(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def render_html(
    items: Sequence[Takedown],
    names: NameScrubber,
    *,
    generated: str | None = None,
    style: OutputStyle | None = None,
) -> str:
    style = style or OutputStyle()
    by_channel: dict[str, list[Takedown]] = {}
    for it in items:
        by_channel.setdefault(it.channel, []).append(it)
    when = style.time(generated or iso())
    parts = [
        f'<p class="note">Generated {html.escape(when)} ({html.escape(style.timezone)}). '
        f"{len(items)} takedown(s). "
        "Take each file down where it was posted (website, social media, Parro, newsletter) and "
        "use the replacement where there is one. Printed copies cannot be recalled: correct them "
        "in the next edition. Pupils are shown by id only; match files by date and sha256.</p>"
    ]
    if not items:
        parts.append("<p>No takedowns.</p>")
    for ch in sorted(by_channel):
        rows = []
        for it in by_channel[ch]:
            r = it.row(names)
            rows.append(
                [
                    style.time(it.at),
                    r["file"],
                    r["sha256"][:16],
                    r["pupil_id"],
                    r["reason"],
                    r["replacement"] or "-",
                ]
            )
        parts.append(f"<h2>{html.escape(terminal_text(ch))} ({len(rows)})</h2>")
        parts.append(
            html_table(["withdrawn", "file", "sha256", "pupil id", "reason", "replacement"], rows)
        )
    return html_page("photoguard takedown list", "\n".join(parts))
