"""The records a school keeps and hands over: ``sweep`` (retention), ``takedown list``,
``report privacy`` and ``classlist``.

Lists for people use ``[locale]``: times in the school's time zone, CSV with ``;`` and a UTF-8
byte-order mark by default (``csv_separator = ","`` and ``csv_bom = false`` for other tools);
names and reasons pass :mod:`photoguard.core.textsafe` (no formulas, no terminal escapes)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import TYPE_CHECKING, Any

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def add_sweep(sub: SubParsers) -> None:
    p = sub.add_parser("sweep", help="retention sweep: leavers, expired originals and quarantine, audit")
    p.add_argument("--json", action="store_true", help="print the sweep report as JSON")
    p.add_argument("--today", type=_date, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_sweep)


def add_takedown(sub: SubParsers) -> None:
    td = sub.add_parser("takedown", help="files to take down or replace after withdrawals")
    tsub = td.add_subparsers(dest="takedown_command", metavar="ACTION", required=True)
    p = tsub.add_parser("list", help="list withdrawn outputs per channel")
    p.add_argument("--channel", help="only this channel")
    p.add_argument("--since", type=_date, help="only withdrawals on or after this date (YYYY-MM-DD)")
    p.add_argument("--format", choices=("table", "csv", "html"), default="table")
    p.set_defaults(func=cmd_takedown_list)


def add_report(sub: SubParsers) -> None:
    rp = sub.add_parser("report", help="reports for the privacy officer")
    rsub = rp.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    p = rsub.add_parser("privacy", help="consent changes, withdrawals, deletions, counts per channel")
    p.add_argument("--from", dest="start", type=_date, help="first day (YYYY-MM-DD, UTC)")
    p.add_argument("--to", dest="end", type=_date, help="last day, inclusive (YYYY-MM-DD, UTC)")
    p.add_argument("--format", choices=("text", "csv", "html", "json"), default="text")
    p.set_defaults(func=cmd_report_privacy)


def add_classlist(sub: SubParsers) -> None:
    p = sub.add_parser("classlist", help="class list of a group (names; phone only with consent)")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--format", choices=("table", "csv", "html"), default="table")
    p.set_defaults(func=cmd_classlist)


def _style(ctx: Context) -> Any:
    """How the lists are written for people: ``[locale]`` (time zone, CSV separator and BOM)."""
    from photoguard.core.textsafe import OutputStyle

    return OutputStyle.from_settings(ctx.settings.locale)


def _store(ctx: Context) -> Any:
    from photoguard.ledger.db import Store

    return Store(ctx.layout.db)


def cmd_sweep(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.retention import run_sweep
    from photoguard.ledger.db import iso
    from photoguard.service.health import record_sweep

    store = _store(ctx)
    try:
        rep = run_sweep(ctx.root, ctx.settings, store, today=args.today)
        # where ``photoguard status`` reads it (the service records its own sweeps the same way)
        summary = {k: v for k, v in rep.to_json().items() if isinstance(v, int | float | str)}
        record_sweep(store, {"at": iso(), "ok": True, "by": "manual", "summary": summary})
    finally:
        store.close()
    if args.json:
        print(json.dumps(rep.to_json()))
    else:
        from photoguard.core.textsafe import terminal_text

        print("\n".join(terminal_text(line) for line in rep.lines()))
    return EXIT_OK if not rep.refused else EXIT_FAIL


def cmd_takedown_list(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup import takedown

    store = _store(ctx)
    try:
        items = takedown.list_takedowns(store, channel=args.channel, since=args.since)
        style = _style(ctx)
        if args.format == "csv":
            out = takedown.render_csv(items, style)
        elif args.format == "html":
            out = takedown.render_html(items, takedown.NameScrubber.from_store(store), style=style)
        else:
            out = takedown.render_table(items, style)
    finally:
        store.close()
    sys.stdout.write(out)
    return EXIT_OK


def cmd_report_privacy(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.reports import build_privacy_report, render_privacy

    if args.start and args.end and args.end < args.start:
        print("--to is before --from", file=sys.stderr)
        return EXIT_USAGE
    store = _store(ctx)
    try:
        rep = build_privacy_report(store, [c.name for c in ctx.settings.channels], start=args.start, end=args.end)
    finally:
        store.close()
    sys.stdout.write(render_privacy(rep, args.format, _style(ctx)))
    return EXIT_OK


def cmd_classlist(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.classlist import class_list, render

    store = _store(ctx)
    try:
        entries = class_list(store, args.group)
    finally:
        store.close()
    sys.stdout.write(render(entries, args.group, args.format, _style(ctx)))
    return EXIT_OK if entries else EXIT_FAIL
