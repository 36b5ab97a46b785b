"""Operational commands: ``watch`` (the service), ``review`` (held photos) and ``status``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAIL = 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the operational command groups to the main parser."""
    p = sub.add_parser(
        "watch",
        help="run the service: process what lands in inbox/ until stopped (SIGTERM/SIGINT)",
    )
    p.add_argument(
        "--polling",
        action="store_true",
        help="poll the inbox instead of using OS events (network shares, sync clients)",
    )
    p.add_argument("--workers", type=int, help="worker threads (default: service.workers)")
    p.set_defaults(func=cmd_watch)

    review = sub.add_parser("review", help="held photos: list, show, approve, reject")
    rsub = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    p = rsub.add_parser("list", help="held and rejected photos waiting for a decision")
    p.add_argument("--all", action="store_true", help="include resolved items")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_review_list)
    p = rsub.add_parser("show", help="reasons, faces and what each channel would get")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_review_show)
    p = rsub.add_parser("approve", help="publish the held channels (uncertain faces redacted)")
    p.add_argument("id")
    p.add_argument("--channel", help="approve only this channel")
    p.set_defaults(func=cmd_review_approve)
    p = rsub.add_parser("reject", help="delete the held original (recorded in the deletion log)")
    p.add_argument("id")
    p.set_defaults(func=cmd_review_reject)

    p = sub.add_parser("status", help="service heartbeat, queue, last photo, held count, errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


# -- helpers ---------------------------------------------------------------------------------
def _pipeline(ctx: Any) -> tuple[Any, bool]:
    """The context's pipeline, and whether its models were injected by an embedding program."""
    pipe = ctx.pipeline()
    if ctx.injected_models:
        log.warning("TEST MODE: face models injected by the caller; never use this in production")
    return pipe, bool(ctx.injected_models)


def _review(ctx: Any, with_pipeline: bool = False) -> Any:
    from photoguard.followup.review import Review
    from photoguard.ledger.db import Store

    if with_pipeline:
        pipe, _fake = _pipeline(ctx)
        return Review(ctx.root, ctx.settings, pipe.store, pipe)
    return Review(ctx.root, ctx.settings, Store(ctx.layout.db))


# -- watch -----------------------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace, ctx: Any) -> int:
    # signals first: a stop during start-up (model loading) is honoured too, with exit 0
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("event=signal signal=%d; finishing the photos in hand", signum)
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _watch(args, ctx, stop)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _watch(args: argparse.Namespace, ctx: Any, stop: threading.Event) -> int:
    from photoguard.service.watch import ServiceError, WatchService, check_folders

    settings = ctx.settings
    layout = ctx.layout
    if args.verbose == 0:
        logging.getLogger("photoguard").setLevel(logging.INFO)
    problems = [p for p in check_folders(layout, 0) if p.startswith("the state")]
    if problems:
        for p in problems:
            print(f"cannot start: {p}", file=sys.stderr)
        return EXIT_FAIL
    try:
        pipe, fake = _pipeline(ctx)
        warm = getattr(pipe.detector, "warm_up", None)
        if callable(warm):
            warm()
    except Exception as exc:  # a missing or corrupt model file: say so and stop
        print(f"cannot start: the face models could not be loaded ({exc})", file=sys.stderr)
        return EXIT_FAIL
    svc = WatchService(
        ctx.root,
        settings,
        pipe,
        polling=True if args.polling else None,
        workers=args.workers,
        fake_models=fake,
    )
    if stop.is_set():
        return EXIT_OK
    try:
        svc.start()
    except ServiceError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return EXIT_FAIL
    try:
        while not stop.wait(0.5):
            pass
    finally:
        svc.stop()
    return EXIT_OK


# -- review ----------------------------------------------------------------------------------
def cmd_review_list(args: argparse.Namespace, ctx: Any) -> int:
    items = _review(ctx).list(include_resolved=args.all)
    if args.json:
        print(json.dumps([i.to_json() for i in items], indent=1))
        return EXIT_OK
    if not items:
        print("nothing held for review")
        return EXIT_OK
    for i in items:
        held = ",".join(i.held_channels) or "all"
        print(f"{i.id}  {i.status:9} {i.created_at}  channels: {held}  {i.reason}")
    print(f"{len(items)} item(s); see: photoguard review show ID")
    return EXIT_OK


def cmd_review_show(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.review import ReviewError

    rv = _review(ctx)
    try:
        item = rv.get(args.id)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    preview = rv.channel_preview(item)
    if args.json:
        print(json.dumps({**item.to_json(), "channels": preview}, indent=1))
        return EXIT_OK
    print(f"item {item.id} ({item.status}, since {item.created_at})")
    print(f"  reason: {item.reason}")
    print(f"  photo sha256: {item.sha256}")
    original = rv.original_path(item.id)
    print(f"  original: {original if original else '(missing)'}")
    print(f"  faces: {len(item.faces)}")
    for n, f in enumerate(item.faces, 1):
        who = f.get("pupil_id") or "-"
        decisions = ", ".join(f"{ch}={a}" for ch, a in (f.get("decision") or {}).items())
        print(f"    {n}. box {f.get('box')} match={f.get('match')} pupil={who}: {decisions}")
    print("  channels:")
    for ch, line in preview.items():
        print(f"    {ch:12} {line}")
    return EXIT_OK


def cmd_review_approve(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.review import ReviewError

    try:
        res = _review(ctx, with_pipeline=True).approve(args.id, args.channel)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    for ch, path in sorted(res.outputs.items()):
        print(f"published {ch}: {path}")
    if res.held_channels:
        print(f"still held: {', '.join(res.held_channels)} ({res.reason})")
    print(f"item {args.id}: {res.status.value}")
    return EXIT_OK if res.status.value in ("published", "held") else EXIT_FAIL


def cmd_review_reject(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.followup.review import ReviewError

    try:
        _review(ctx).reject(args.id)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    print(f"item {args.id}: original deleted (recorded in the deletion log)")
    return EXIT_OK


# -- status ----------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_report(ctx: Any) -> dict[str, Any]:
    from photoguard.ledger.db import Store
    from photoguard.service.watch import check_folders, read_heartbeat

    layout = ctx.layout
    beat = read_heartbeat(layout)
    service: dict[str, Any] = {"running": False}
    if beat is not None:
        age = time.time() - float(beat.get("updated_unix", 0))
        limit = 3 * float(beat.get("heartbeat_seconds", 2.0)) + 5
        running = beat.get("state") in ("running", "starting") and age < limit
        running = running and _alive(int(beat.get("pid", 0)))
        service = {**beat, "running": running, "heartbeat_age_seconds": round(age, 1)}
    report: dict[str, Any] = {"root": str(ctx.root), "service": service}
    if layout.db.exists():
        store = Store(layout.db)
        photos = {r["status"]: r["n"] for r in store.query("SELECT status, COUNT(*) AS n FROM photos GROUP BY status")}
        held = store.one(
            "SELECT COUNT(*) AS n FROM quarantine WHERE resolved_at IS NULL AND status IN ('held','rejected')"
        )
        outputs = store.one("SELECT COUNT(*) AS n FROM outputs WHERE withdrawn_at IS NULL")
        last = store.one("SELECT MAX(updated_at) AS at FROM photos")
        report["db"] = {
            "photos": photos,
            "waiting_for_review": int(held["n"]) if held else 0,
            "live_outputs": int(outputs["n"]) if outputs else 0,
            "last_photo_at": last["at"] if last else None,
        }
        store.close()
    report["problems"] = check_folders(layout)
    return report


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    report = status_report(ctx)
    if args.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK if report["service"].get("running") else EXIT_FAIL
    svc = report["service"]
    if svc.get("running"):
        q = svc.get("queue", {})
        print(
            f"service: running (pid {svc.get('pid')}, since {svc.get('started_at')}, "
            f"{svc.get('workers')} workers, {svc.get('observer')} observer)"
        )
        print(
            f"  queue: {q.get('pending', 0)} settling, {q.get('queued', 0)} queued, "
            f"{q.get('running', 0)} in progress (max {q.get('max')})"
        )
        counts = svc.get("counts", {})
        print(
            "  since start: "
            + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("published", "held", "rejected", "duplicate", "errors"))
        )
        print(f"  last processed: {svc.get('last_processed_at') or '-'} (photo {svc.get('last_photo') or '-'})")
        if svc.get("last_error"):
            print(f"  last error: {svc['last_error'].get('at')} {svc['last_error'].get('kind')}")
        print(f"  next sweep: {svc.get('next_sweep_at')}")
        if svc.get("fake_models"):
            print("  WARNING: TEST MODE, fake face models in use")
    elif svc.get("state"):
        print(f"service: NOT running (last heartbeat {svc.get('updated_at')}, state {svc.get('state')})")
    else:
        print("service: NOT running (no heartbeat found)")
    db = report.get("db")
    if db:
        ph = db["photos"]
        print(
            f"photos: {ph.get('published', 0)} published, {ph.get('held', 0)} held, "
            f"{ph.get('rejected', 0)} rejected; {db['live_outputs']} files in the outbox ledger"
        )
        print(f"waiting for review: {db['waiting_for_review']} (photoguard review list)")
    for p in report["problems"]:
        print(f"PROBLEM: {p}")
    return EXIT_OK if svc.get("running") else EXIT_FAIL
