"""Reports for the privacy officer: ``photoguard report privacy`` and ``consent stale``.

The privacy report covers a period (UTC dates, both ends inclusive): consent changes (from the
consent history), withdrawals (the takedown list), deletions (the deletion log) and counts per
channel. It carries pupil ids, hashes and reasons, never names; file names of closed channels
are shown with names removed. Text, CSV and HTML show times in the school's time zone and pass
every value through :mod:`photoguard.core.textsafe`; JSON keeps the stored UTC times.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from photoguard.core.textsafe import OutputStyle, terminal_text, write_csv
from photoguard.followup.takedown import NameScrubber, html_page, html_table, list_takedowns
from photoguard.ledger import audit, ledger
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store, iso

FORMATS = ("text", "csv", "html", "json")


# -- privacy report ---------------------------------------------------------------------------
@dataclass
class ChannelCounts:
    published: int = 0
    withdrawn: int = 0
    takedowns: int = 0
    live_now: int = 0


@dataclass
class PrivacyReport:
    start: str
    end: str
    generated_at: str
    consent_changes: list[dict[str, Any]] = field(default_factory=list)
    withdrawals: list[dict[str, Any]] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[str, ChannelCounts] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, Any]:
        changes = Counter(
            f"{c['key']}:{_yn(c['old'])}->{_yn(c['new'])}" for c in self.consent_changes
        )
        return {
            "consent_changes": len(self.consent_changes),
            "consent_changes_by_kind": dict(sorted(changes.items())),
            "withdrawals": len(self.withdrawals),
            "deletions": len(self.deletions),
            "deletions_by_kind": dict(sorted(Counter(d["kind"] for d in self.deletions).items())),
        }

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["totals"] = self.totals
        return d


def _bounds(start: date | None, end: date | None) -> tuple[str, str]:
    lo = start.isoformat() if start else ""
    hi = (end + timedelta(days=1)).isoformat() if end else "9999"
    return lo, hi


def build_privacy_report(
    store: Store, channels: Sequence[str], *, start: date | None = None, end: date | None = None
) -> PrivacyReport:
    lo, hi = _bounds(start, end)
    rep = PrivacyReport(
        start=start.isoformat() if start else "(beginning)",
        end=end.isoformat() if end else "(now)",
        generated_at=iso(),
    )
    for r in Registry(store).history_between(lo, hi):
        source = str(r["source"])
        rep.consent_changes.append(
            {
                "at": r["at"],
                "pupil_id": r["pupil_id"],
                "key": r["key"],
                "old": r["old_value"],
                "new": r["new_value"],
                "source": source.split(":", 1)[0],
                "version": r["version"],
            }
        )
    names = NameScrubber.from_store(store)
    for t in list_takedowns(store, since=start, until=end):
        row = t.row(names)
        rep.withdrawals.append(
            {
                "at": t.at,
                "channel": t.channel,
                "pupil_id": t.pupil_id,
                "file": row["file"],
                "sha256": t.output_sha256,
                "reason": t.reason,
                "replacement": row["replacement"],
            }
        )
    for r in audit.deletions_between(store, lo, hi):
        rep.deletions.append(
            {
                "at": r["at"],
                "kind": r["kind"],
                "ref": r["ref"],
                "sha256": r["sha256"] or "",
                "channel": r["channel"] or "",
                "reason": r["reason"],
            }
        )
    counts = {ch: ChannelCounts() for ch in channels}
    for ch, n in ledger.published_count_by_channel(store, lo, hi).items():
        counts.setdefault(ch, ChannelCounts()).published = n
    for ch, n in ledger.withdrawn_count_by_channel(store, lo, hi).items():
        counts.setdefault(ch, ChannelCounts()).withdrawn = n
    for ch, n in ledger.live_count_by_channel(store).items():
        counts.setdefault(ch, ChannelCounts()).live_now = n
    for w in rep.withdrawals:
        counts.setdefault(w["channel"], ChannelCounts()).takedowns += 1
    rep.channels = counts
    return rep


def _yn(v: Any) -> str:
    if v is None:
        return "-"
    if v in (0, 1):
        return "yes" if v else "no"
    return str(v)


def render_privacy(rep: PrivacyReport, fmt: str, style: OutputStyle | None = None) -> str:
    style = style or OutputStyle()
    if fmt == "json":
        # ASCII escapes: no control or bidi character reaches a terminal raw
        return json.dumps(rep.to_json(), indent=2) + "\n"
    if fmt == "csv":
        return _privacy_csv(rep, style)
    if fmt == "html":
        return _privacy_html(rep, style)
    if fmt == "text":
        return _privacy_text(rep, style)
    raise ValueError(f"unknown format {fmt!r}")


def _privacy_text(rep: PrivacyReport, style: OutputStyle) -> str:
    t = rep.totals
    safe = terminal_text
    out = [
        f"privacy report {rep.start} .. {rep.end} (generated {style.time(rep.generated_at)} {style.timezone})",
        "",
        f"consent changes: {t['consent_changes']}",
        *(f"  {safe(k):36} {v}" for k, v in t["consent_changes_by_kind"].items()),
        f"withdrawals (takedowns): {t['withdrawals']}",
        f"deletions: {t['deletions']}",
        *(f"  {safe(k):36} {v}" for k, v in t["deletions_by_kind"].items()),
        "",
        f"{'channel':12} {'published':>9} {'withdrawn':>9} {'takedowns':>9} {'live now':>9}",
    ]
    for ch, c in sorted(rep.channels.items()):
        out.append(f"{safe(ch):12} {c.published:9} {c.withdrawn:9} {c.takedowns:9} {c.live_now:9}")
    if rep.consent_changes:
        out += ["", "consent changes:"]
        out += [
            f"  {style.time(c['at'])}  pupil {safe(c['pupil_id'])}  {safe(c['key'])}: "
            f"{safe(_yn(c['old']))} -> {safe(_yn(c['new']))}  ({safe(c['source'])}, v{c['version']})"
            for c in rep.consent_changes
        ]
    if rep.withdrawals:
        out += ["", "withdrawals:"]
        out += [
            f"  {style.time(w['at'])}  {safe(w['channel'])}  {safe(w['file'])}  pupil {safe(w['pupil_id'])}: "
            f"{safe(w['reason'])}" + (f" -> {safe(w['replacement'])}" if w["replacement"] else "")
            for w in rep.withdrawals
        ]
    if rep.deletions:
        out += ["", "deletion log:"]
        out += [
            f"  {style.time(d['at'])}  {safe(d['kind'])}  {safe(d['ref'])}  {safe(d['sha256'][:12])}  "
            f"{safe(d['channel'])}  {safe(d['reason'])}"
            for d in rep.deletions
        ]
    return "\n".join(out) + "\n"


_CSV_COLUMNS = ("section", "at", "pupil_id", "channel", "kind", "ref", "sha256", "key", "old", "new", "reason", "count")


def _privacy_csv(rep: PrivacyReport, style: OutputStyle) -> str:
    rows: list[dict[str, Any]] = []
    for c in rep.consent_changes:
        rows.append(
            {
                "section": "consent_change",
                "at": style.time(c["at"], seconds=True),
                "pupil_id": c["pupil_id"],
                "key": c["key"],
                "old": _yn(c["old"]),
                "new": _yn(c["new"]),
                "kind": c["source"],
            }
        )
    for x in rep.withdrawals:
        rows.append(
            {
                "section": "withdrawal",
                "at": style.time(x["at"], seconds=True),
                "pupil_id": x["pupil_id"],
                "channel": x["channel"],
                "ref": x["file"],
                "sha256": x["sha256"],
                "reason": x["reason"],
            }
        )
    for d in rep.deletions:
        rows.append(
            {
                "section": "deletion",
                "at": style.time(d["at"], seconds=True),
                "channel": d["channel"],
                "kind": d["kind"],
                "ref": d["ref"],
                "sha256": d["sha256"],
                "reason": d["reason"],
            }
        )
    for ch, n in sorted(rep.channels.items()):
        for k, v in asdict(n).items():
            rows.append({"section": "channel_count", "channel": ch, "kind": k, "count": v})
    return write_csv(_CSV_COLUMNS, ([r.get(c, "") for c in _CSV_COLUMNS] for r in rows), style)


def _privacy_html(rep: PrivacyReport, style: OutputStyle) -> str:
    t = rep.totals
    parts = [
        f'<p class="note">Period {html.escape(rep.start)} .. {html.escape(rep.end)}; generated '
        f"{html.escape(style.time(rep.generated_at))} ({html.escape(style.timezone)}). "
        "Pupils are shown by id only.</p>",
        "<h2>Totals</h2>",
        html_table(
            ["what", "count"],
            [
                ["consent changes", str(t["consent_changes"])],
                ["withdrawals", str(t["withdrawals"])],
                ["deletions", str(t["deletions"])],
            ]
            + [[f"deletions: {k}", str(v)] for k, v in t["deletions_by_kind"].items()]
            + [[f"consent: {k}", str(v)] for k, v in t["consent_changes_by_kind"].items()],
        ),
        "<h2>Per channel</h2>",
        html_table(
            ["channel", "published", "withdrawn", "takedowns", "live now"],
            [
                [ch, str(c.published), str(c.withdrawn), str(c.takedowns), str(c.live_now)]
                for ch, c in sorted(rep.channels.items())
            ],
        ),
        "<h2>Consent changes</h2>",
        html_table(
            ["at", "pupil id", "key", "old", "new", "source", "version"],
            [
                [
                    style.time(c["at"]),
                    c["pupil_id"],
                    c["key"],
                    _yn(c["old"]),
                    _yn(c["new"]),
                    c["source"],
                    str(c["version"]),
                ]
                for c in rep.consent_changes
            ],
        ),
        "<h2>Withdrawals</h2>",
        html_table(
            ["at", "channel", "file", "sha256", "pupil id", "reason", "replacement"],
            [
                [
                    style.time(w["at"]),
                    w["channel"],
                    w["file"],
                    w["sha256"][:16],
                    w["pupil_id"],
                    w["reason"],
                    w["replacement"] or "-",
                ]
                for w in rep.withdrawals
            ],
        ),
        "<h2>Deletion log</h2>",
        html_table(
            ["at", "kind", "ref", "sha256", "channel", "reason"],
            [
                [style.time(d["at"]), d["kind"], d["ref"], d["sha256"][:16], d["channel"], d["reason"]]
                for d in rep.deletions
            ],
        ),
    ]
    return html_page("photoguard privacy report", "\n".join(parts))


# -- consent stale ----------------------------------------------------------------------------
_PERIOD = re.compile(r"^\s*(\d{1,4})\s*([dwmy])\s*$", re.IGNORECASE)


def parse_period(text: str) -> tuple[int, str]:
    """'12m' -> (12, 'm'); accepts Nd, Nw, Nm, Ny (N >= 1)."""
    m = _PERIOD.match(text)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"expected a period like 30d, 8w, 12m or 1y, got {text!r}")
    return int(m.group(1)), m.group(2).lower()


def period_cutoff(text: str, today: date) -> date:
    """The date ``text`` before ``today`` (months and years are calendar months and years;
    the 31st of a shorter month becomes its last day)."""
    n, unit = parse_period(text)
    if unit == "d":
        return today - timedelta(days=n)
    if unit == "w":
        return today - timedelta(weeks=n)
    months = n if unit == "m" else 12 * n
    y, m = divmod(today.year * 12 + (today.month - 1) - months, 12)
    m += 1
    day = today.day
    while True:
        try:
            return date(y, m, day)
        except ValueError:
            day -= 1


@dataclass(frozen=True, slots=True)
class StalePupil:
    pupil_id: str
    group: str
    confirmed_at: str
    days: int


def stale_pupils(store: Store, older_than: str, today: date | None = None) -> list[StalePupil]:
    """Pupils still at school whose consent was last confirmed before the period."""
    today = today or date.today()
    cutoff = period_cutoff(older_than, today)
    out: list[StalePupil] = []
    for r in Registry(store).confirmed_before(cutoff.isoformat()):
        if r["left_on"] and date.fromisoformat(r["left_on"]) <= today:
            continue
        confirmed = datetime.fromisoformat(r["confirmed_at"]).astimezone(UTC).date()
        out.append(StalePupil(r["pupil_id"], r["grp"], r["confirmed_at"], (today - confirmed).days))
    return out
