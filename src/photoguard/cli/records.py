"""Commands for consent follow-up and retention (sweep, takedown, report, classlist, stale)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _store(ctx: Any) -> Any:
    from photoguard.ledger.db import Store

    return Store(ctx.layout.db)


def cmd_sweep(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.retention import run_sweep

    store = _store(ctx)
    try:
        rep = run_sweep(ctx.root, ctx.settings, store, today=args.today)
    finally:
        store.close()
    if args.json:
        print(json.dumps(rep.to_json()))
    else:
        print("\n".join(rep.lines()))
    return EXIT_OK if not rep.refused else EXIT_FAIL


def cmd_takedown_list(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup import takedown

    store = _store(ctx)
    try:
        items = takedown.list_takedowns(store, channel=args.channel, since=args.since)
        if args.format == "csv":
            out = takedown.render_csv(items)
        elif args.format == "html":
            out = takedown.render_html(items, takedown.NameScrubber.from_store(store))
        else:
            out = takedown.render_table(items)
    finally:
        store.close()
    sys.stdout.write(out)
    return EXIT_OK


def cmd_report_privacy(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.reports import build_privacy_report, render_privacy

    if args.start and args.end and args.end < args.start:
        print("--to is before --from", file=sys.stderr)
        return EXIT_USAGE
    store = _store(ctx)
    try:
        rep = build_privacy_report(
            store, [c.name for c in ctx.settings.channels], start=args.start, end=args.end
        )
    finally:
        store.close()
    sys.stdout.write(render_privacy(rep, args.format))
    return EXIT_OK


def cmd_classlist(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.classlist import class_list, render

    store = _store(ctx)
    try:
        entries = class_list(store, args.group)
    finally:
        store.close()
    sys.stdout.write(render(entries, args.group, args.format))
    return EXIT_OK if entries else EXIT_FAIL


def cmd_consent_stale(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.reports import parse_period, stale_pupils

    try:
        parse_period(args.older_than)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    store = _store(ctx)
    try:
        rows = stale_pupils(store, args.older_than)
    finally:
        store.close()
    if args.json:
        print(json.dumps([_asdict(r) for r in rows]))
        return EXIT_OK
    if not rows:
        print(f"every pupil's consent was confirmed within {args.older_than}")
        return EXIT_OK
    print(f"{len(rows)} pupil(s) without a confirmed consent record in the last {args.older_than}:")
    for r in rows:
        print(
            f"  {r.pupil_id:12} group {r.group or '-':6} "
            f"last confirmed {r.confirmed_at[:10]} ({r.days} days)"
        )
    return EXIT_OK


def _asdict(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(r)


def register(
    sub: argparse._SubParsersAction,
    consent_sub: argparse._SubParsersAction,
) -> None:
    """Add the retention command groups to the main parser (and ``consent stale`` to
    ``consent_sub``, the sub-parsers of ``photoguard consent``)."""
    p = sub.add_parser(
        "sweep", help="retention sweep: leavers, expired originals and quarantine, audit"
    )
    p.add_argument("--json", action="store_true", help="print the sweep report as JSON")
    p.add_argument("--today", type=_date, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_sweep)

    td = sub.add_parser("takedown", help="files to take down or replace after withdrawals")
    tsub = td.add_subparsers(dest="takedown_command", metavar="ACTION", required=True)
    p = tsub.add_parser("list", help="list withdrawn outputs per channel")
    p.add_argument("--channel", help="only this channel")
    p.add_argument(
        "--since", type=_date, help="only withdrawals on or after this date (YYYY-MM-DD)"
    )
    p.add_argument("--format", choices=("table", "csv", "html"), default="table")
    p.set_defaults(func=cmd_takedown_list)

    rp = sub.add_parser("report", help="reports for the privacy officer")
    rsub = rp.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    p = rsub.add_parser(
        "privacy", help="consent changes, withdrawals, deletions, counts per channel"
    )
    p.add_argument("--from", dest="start", type=_date, help="first day (YYYY-MM-DD, UTC)")
    p.add_argument("--to", dest="end", type=_date, help="last day, inclusive (YYYY-MM-DD, UTC)")
    p.add_argument("--format", choices=("text", "csv", "html", "json"), default="text")
    p.set_defaults(func=cmd_report_privacy)

    p = sub.add_parser("classlist", help="class list of a group (names; phone only with consent)")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--format", choices=("table", "csv", "html"), default="table")
    p.set_defaults(func=cmd_classlist)

    p = consent_sub.add_parser("stale", help="pupils whose consent was not confirmed recently")
    p.add_argument("--older-than", default="12m", help="period: Nd, Nw, Nm or Ny (default 12m)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_consent_stale)
