"""``photoguard consent import|set|show|stale`` and ``photoguard enrol``: the pupils in the
registry, what their parents consented to, and the face templates that consent allows."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from photoguard.config import CONSENT_KEYS
from photoguard.core.textsafe import terminal_text as safe

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers


def add_consent(sub: SubParsers) -> None:
    consent = sub.add_parser("consent", help="the consent registry")
    csub = consent.add_subparsers(dest="consent_command", metavar="ACTION", required=True)
    p = csub.add_parser("import", help="import a consent CSV export (all or nothing)")
    p.add_argument("file")
    p.add_argument(
        "--accept-regrants",
        action="store_true",
        help="also re-grant consents that another source (paper, web) withdrew and the export says yes to",
    )
    p.set_defaults(func=cmd_consent_import)
    p = csub.add_parser("set", help="record a single change, e.g. website=no")
    p.add_argument("pupil")
    p.add_argument("changes", nargs="+", metavar="CHANNEL=yes|no")
    p.set_defaults(func=cmd_consent_set)
    p = csub.add_parser("show", help="a pupil's consents and history")
    p.add_argument("pupil")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_consent_show)
    p = csub.add_parser("stale", help="pupils whose consent was not confirmed recently")
    p.add_argument("--older-than", default="12m", help="period: Nd, Nw, Nm or Ny (default 12m)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_consent_stale)


def add_enrol(sub: SubParsers) -> None:
    p = sub.add_parser("enrol", help="enrol a pupil with face_matching consent from provided photos")
    p.add_argument("pupil", nargs="?", metavar="PUPIL_ID")
    p.add_argument("photos", nargs="*", metavar="PHOTO")
    p.add_argument("--dir", help="folder with one sub-folder of photos per pupil id")
    p.set_defaults(func=cmd_enrol)


def cmd_consent_import(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.propagate import after_changes
    from photoguard.ledger.consent import ConsentImportError, import_csv
    from photoguard.ledger.db import Store

    _ = ctx.settings
    store = Store(ctx.layout.db)
    try:
        report = import_csv(store, Path(args.file), accept_regrants=args.accept_regrants)
    except ConsentImportError as exc:
        # the file's name and its header come from outside: shown, never obeyed by the terminal
        print(f"refused {safe(args.file)}: nothing was imported", file=sys.stderr)
        for p in exc.problems:
            print(f"  {safe(p)}", file=sys.stderr)
        return EXIT_FAIL
    print(
        f"imported: {report.added} new, {report.updated} changed, {report.unchanged} unchanged "
        f"({len(report.changes)} changes; consent version {report.version})"
    )
    if report.missing_from_file:
        print(f"  {len(report.missing_from_file)} pupil(s) in the registry are not in this file (kept)")
    if report.regrants_accepted:
        print(f"  {len(report.regrants_accepted)} re-grant(s) accepted over a withdrawal by another source:")
        for c in report.regrants_accepted:
            print(f"    {safe(c.line())}")
    for line in after_changes(ctx, report.changes):
        print(f"  {safe(line)}")
    if report.conflicts:
        print(
            f"  {len(report.conflicts)} conflict(s): NOT re-granted, withdrawn by another source "
            "(the rest of the file was imported):"
        )
        for c in report.conflicts:
            print(f"    {safe(c.line())}")
        print(
            "  check with the parents; re-grant with 'photoguard consent set PUPIL KEY=yes' or "
            "'photoguard consent import --accept-regrants FILE'"
        )
        return EXIT_FAIL
    return EXIT_OK


def cmd_consent_set(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.propagate import after_changes
    from photoguard.ledger.consent import Registry, parse_yes
    from photoguard.ledger.db import Store

    _ = ctx.settings
    reg = Registry(Store(ctx.layout.db))
    changes = []
    for item in args.changes:
        key, sep, value = item.partition("=")
        if not sep or value.strip().lower() not in {"yes", "no", "ja", "nee", "true", "false", "1", "0", "j", "n"}:
            print(f"expected CHANNEL=yes|no, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        try:
            changes.extend(reg.set_consent(args.pupil, key.strip(), parse_yes(value), source="manual"))
        except (ValueError, LookupError) as exc:
            print(str(exc).strip("'\""), file=sys.stderr)
            return EXIT_FAIL
    print(f"{len(changes)} change(s) recorded for pupil {args.pupil}")
    for line in after_changes(ctx, changes):
        print(f"  {safe(line)}")
    return EXIT_OK


def cmd_consent_show(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger.consent import KIND_ADMIN, Registry
    from photoguard.ledger.db import Store

    _ = ctx.settings
    reg = Registry(Store(ctx.layout.db))
    p = reg.pupil(args.pupil)
    if p is None:
        print(f"no pupil with id {args.pupil}", file=sys.stderr)
        return EXIT_FAIL
    prov = reg.provenance(p.pupil_id)
    hist = reg.history(p.pupil_id)
    if args.json:
        doc = {
            "pupil_id": p.pupil_id,
            "group": p.group,
            "left_on": str(p.left_on or ""),
            "consents": p.consents,
            "sources": {k: v.to_json() for k, v in prov.items()},
            "history": [
                {
                    "at": h["at"],
                    "key": h["key"],
                    "old": h["old_value"],
                    "new": h["new_value"],
                    "source": h["source"],
                    "kind": h["kind"],
                    "version": h["version"],
                }
                for h in hist
            ],
        }
        print(json.dumps(doc))
        return EXIT_OK
    from photoguard.core.textsafe import OutputStyle

    style = OutputStyle.from_settings(ctx.settings.locale)
    left = "; left on " + safe(p.left_on) if p.left_on else ""
    print(f"pupil {safe(p.pupil_id)} (group {safe(p.group or '-')}){left}")
    for k in CONSENT_KEYS:
        print(f"  {k:16} {'yes' if p.consents.get(k) else 'no'}")
    differs = [(k, v) for k, v in prov.items() if v.kind != KIND_ADMIN]
    if differs:
        print("not from the administration's export:")
        for k, v in differs:
            office = "" if v.admin_value is None else f"; the administration says {'yes' if v.admin_value else 'no'}"
            print(
                f"  {k:16} {'yes' if v.value else 'no'} since {safe(v.since[:10]) or '?'} "
                f"({safe(v.kind)}: {safe(v.source)}){office}"
            )
    if hist:
        print(f"history ({style.timezone}):")
        for h in hist:
            print(
                f"  {style.time(h['at'])}  {safe(h['key'])}: {safe(h['old_value'])} -> {safe(h['new_value'])}"
                f"  ({safe(h['source'])}, v{h['version']})"
            )
    return EXIT_OK


def cmd_consent_stale(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.reports import parse_period, stale_pupils
    from photoguard.ledger.db import Store

    try:
        parse_period(args.older_than)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    store = Store(ctx.layout.db)
    try:
        rows = stale_pupils(store, args.older_than)
    finally:
        store.close()
    if args.json:
        print(json.dumps([asdict(r) for r in rows]))
        return EXIT_OK
    if not rows:
        print(f"every pupil's consent was confirmed within {args.older_than}")
        return EXIT_OK
    from photoguard.core.textsafe import OutputStyle

    style = OutputStyle.from_settings(ctx.settings.locale)
    print(f"{len(rows)} pupil(s) without a confirmed consent record in the last {safe(args.older_than)}:")
    for r in rows:
        confirmed = style.time(r.confirmed_at)[:10]
        print(f"  {safe(r.pupil_id):12} group {safe(r.group or '-'):6} last confirmed {confirmed} ({r.days} days)")
    return EXIT_OK


def cmd_enrol(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.enrol import enrol_dir, enrol_photos

    pipe = ctx.pipeline()
    if args.dir:
        if args.pupil or args.photos:
            print("use either PUPIL_ID PHOTO... or --dir DIR", file=sys.stderr)
            return EXIT_USAGE
        outcomes = enrol_dir(pipe, Path(args.dir))
    else:
        if not args.pupil or not args.photos:
            print("enrol needs PUPIL_ID and at least one PHOTO (or --dir DIR)", file=sys.stderr)
            return EXIT_USAGE
        outcomes = enrol_photos(pipe, args.pupil, [Path(p) for p in args.photos])
    ok = 0
    for o in outcomes:
        ok += o.ok
        mark = "ok     " if o.ok else "refused"
        print(f"{mark} {safe(o.pupil_id)} {safe(Path(o.photo).name)}: {safe(o.reason)}")
    print(f"{ok} of {len(outcomes)} photo(s) enrolled")
    return EXIT_OK if ok == len(outcomes) and outcomes else EXIT_FAIL
