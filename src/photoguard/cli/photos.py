"""The photos' path through the service: ``process`` (once), ``watch`` (the service),
``status`` (its heartbeat) and ``demo`` (the main job on sample data)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_STATE
from photoguard.photo import ingest

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers

log = logging.getLogger(__name__)


def add_process(sub: SubParsers) -> None:
    p = sub.add_parser("process", help="process photo files or folders once")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.add_argument("--keep", action="store_true", help="leave the originals where they are")
    p.set_defaults(func=cmd_process)


def add_demo(sub: SubParsers) -> None:
    p = sub.add_parser("demo", help="set up ROOT with sample photos and run the main job on them")
    p.add_argument("path", help="a new folder for the demo root")
    p.set_defaults(func=cmd_demo, needs_config=False)


def add_watch(sub: SubParsers) -> None:
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


def add_status(sub: SubParsers) -> None:
    p = sub.add_parser("status", help="service heartbeat, queue, last photo, held count, errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


# -- the registry a photo needs ----------------------------------------------------------------
#: what the admin reads when no pupil was imported yet (Dutch first: the school's language)
NO_PUPILS = (
    "de toestemmingenlijst is leeg: er zijn nog geen leerlingen geïmporteerd / "
    "the consent registry is empty: no pupils were imported yet"
)
NO_PUPILS_ADVICE = (
    "Zonder leerlingen kan photoguard geen achternamen weglaten en geen toestemming controleren, "
    "dus verwerkt het geen foto's. Importeer eerst de export van de administratie: "
    "'photoguard consent import BESTAND.csv' (en daarna 'photoguard enrol'). / Without pupils "
    "photoguard cannot scrub surnames or check consent, so it processes no photo. Import the "
    "administration's export first: 'photoguard consent import FILE.csv' (then 'photoguard enrol')."
)


def require_registry(ctx: Context, pipe: Any) -> None:
    """A hard stop (exit 4, like a missing database) when no pupil was ever imported: the
    photos stay in the inbox, untouched, until the consent list is there."""
    from photoguard.ledger.consent import Registry
    from photoguard.ledger.db import StateError

    if Registry(pipe.store).is_empty():
        raise StateError(ctx.layout.db, NO_PUPILS, NO_PUPILS_ADVICE)


# -- process ---------------------------------------------------------------------------------
def cmd_process(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.cli.progress import Progress
    from photoguard.core.textsafe import terminal_text
    from photoguard.photo.ingest import iter_inputs
    from photoguard.photo.video import clip_progress
    from photoguard.service.health import clean_stale_temps

    pipe = ctx.pipeline()  # refuses (exit 4) when the database or the key file is not there
    require_registry(ctx, pipe)  # and when no pupil was imported yet
    # temp files of killed runs whose process is gone (never those of a running service)
    clean_stale_temps(ctx.layout, ctx.settings.retention.temp_minutes * 60)
    inputs = list(iter_inputs([Path(p) for p in args.paths]))
    if not inputs:
        print("no photos found in the given paths", file=sys.stderr)
        return EXIT_FAIL
    counts: Counter[str] = Counter()
    per_channel: Counter[str] = Counter()
    held: list[str] = []
    bar = Progress(len(inputs), enabled=not args.json and sys.stderr.isatty())
    for path in inputs:
        pipe.store.verify()  # the database vanished or was replaced meanwhile: stop (exit 4)
        # a file in a teacher's inbox folder is that teacher's upload (their "Mijn uploads"), as in watch
        folder = ingest.inbox_folder(path, pipe.layout.inbox)
        with clip_progress(bar.clip):
            res = pipe.process_path(path, remove_original=not args.keep, uploader=ingest.safe_text(folder))
        counts[res.status.value] += 1
        for ch in res.outputs:
            per_channel[ch] += 1
        if args.json:
            print(json.dumps(res.to_json()), flush=True)
        elif res.status.value != "published" or res.held_channels:
            # file names and reasons come from outside: shown with escapes made visible
            held.append(f"{res.status.value:9} {terminal_text(path.name)}: {terminal_text(res.reason)}")
        bar.step()
    bar.close()
    if not args.json:
        for line in held:
            print(line)
        print(
            f"{len(inputs)} photo(s): {counts['published']} published, {counts['held']} held, "
            f"{counts['rejected']} rejected"
        )
        for ch in pipe.settings.channels:
            print(f"  {ch.name:12} {per_channel[ch.name]} file(s) in {pipe.layout.channel_dir(ch.name)}")
    return EXIT_OK if counts["rejected"] == 0 and counts["held"] == 0 else EXIT_FAIL


# -- demo ------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.cli.demo import run_demo

    return run_demo(Path(args.path))


# -- watch -----------------------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace, ctx: Context) -> int:
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


def _watch(args: argparse.Namespace, ctx: Context, stop: threading.Event) -> int:
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
    from photoguard.ledger.db import StateError
    from photoguard.ledger.keys import KeyError_

    try:
        pipe, fake = ctx.service_pipeline()
        require_registry(ctx, pipe)
        warm = getattr(pipe.detector, "warm_up", None)
        if callable(warm):
            warm()
    except (StateError, KeyError_):
        raise  # the database or the key file: the one refusal path in cli.app (exit 4)
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
        while not stop.wait(0.5) and not svc.failed.is_set():
            pass
    finally:
        svc.stop()
    if svc.failure is not None:
        print(f"photoguard stopped: {svc.failure}", file=sys.stderr)
        return EXIT_STATE
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


def status_report(ctx: Context) -> dict[str, Any]:
    from photoguard.ledger.db import StateError, Store
    from photoguard.service.health import last_sweep
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
    problems: list[str] = []
    if beat is not None and beat.get("failure"):
        problems.append(f"the service stopped: {beat['failure']}")
    try:
        store = Store(layout.db)
    except StateError as exc:
        problems.append(str(exc))
    else:
        # the newest sweep, the service's (heartbeat) or a manual one (the database's meta row)
        swept = last_sweep(store)
        beat_sweep = service.get("last_sweep")
        if swept is not None and (
            not isinstance(beat_sweep, dict) or str(swept.get("at", "")) > str(beat_sweep.get("at", ""))
        ):
            service["last_sweep"] = swept
        report["last_sweep"] = service.get("last_sweep") or swept
        from photoguard.ledger.consent import Registry
        from photoguard.ledger.ledger import counts

        if Registry(store).is_empty():
            problems.append(f"{NO_PUPILS}: photoguard consent import BESTAND.csv / FILE.csv")
        c = counts(store)
        report["db"] = {
            "photos": c.photos,
            "waiting_for_review": c.waiting_for_review,
            "live_outputs": c.live_outputs,
            "last_photo_at": c.last_photo_at,
        }
        store.close()
    report["problems"] = problems + check_folders(layout)
    return report


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.core.textsafe import OutputStyle, terminal_text

    report = status_report(ctx)
    if args.json:  # the contract: times stay UTC ISO
        print(json.dumps(report, indent=1))
        return EXIT_OK if report["service"].get("running") else EXIT_FAIL
    # for people: times in the school's time zone ([locale] timezone)
    when = OutputStyle.from_settings(ctx.settings.locale).time
    svc = report["service"]
    if svc.get("running"):
        q = svc.get("queue", {})
        print(
            f"service: running (pid {svc.get('pid')}, since {when(svc.get('started_at'))}, "
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
        print(f"  last processed: {when(svc.get('last_processed_at')) or '-'} (photo {svc.get('last_photo') or '-'})")
        for clip in svc.get("clips") or []:
            print(
                f"  clip {clip.get('id')}: {clip.get('percent', 0)}% ({clip.get('stage')}, frame "
                f"{clip.get('frames_done', 0)}/{clip.get('frames_total', 0)})"
            )
        if svc.get("last_error"):
            err = svc["last_error"]
            print(f"  last error: {when(err.get('at'))} {terminal_text(err.get('kind'))}")
        incomplete = svc.get("incomplete") or {}
        if incomplete.get("waiting"):
            # an upload that ends too early waits (never deleted); past the limit it is set aside
            print(
                f"  still arriving: {incomplete['waiting']} upload(s) end too early; the longest has not "
                f"changed for {incomplete.get('longest_wait_seconds', 0):.0f} s (moved to quarantine after "
                f"{incomplete.get('limit_seconds', 0):.0f} s without change)"
            )
        # the service keeps the next sweep in the school's clock ([locale] timezone)
        nxt = str(svc.get("next_sweep_at") or "-").replace("T", " ")
        print(f"  next sweep: {terminal_text(nxt)} {ctx.settings.locale.timezone}")
        if svc.get("fake_models"):
            print("  WARNING: TEST MODE, fake face models in use")
    elif svc.get("state"):
        print(f"service: NOT running (last heartbeat {when(svc.get('updated_at'))}, state {svc.get('state')})")
    else:
        print("service: NOT running (no heartbeat found)")
    sw = report.get("last_sweep")
    if sw:
        outcome = "ok" if sw.get("ok", True) else "FAILED"
        print(f"last sweep: {when(sw.get('at'))} ({sw.get('by', 'service')}, {outcome})")
    db = report.get("db")
    if db:
        ph = db["photos"]
        print(
            f"photos: {ph.get('published', 0)} published, {ph.get('held', 0)} held, "
            f"{ph.get('rejected', 0)} rejected; {db['live_outputs']} files in the outbox ledger"
        )
        print(f"waiting for review: {db['waiting_for_review']} (photoguard review list)")
    for p in report["problems"]:
        print(f"PROBLEM: {terminal_text(p)}")  # folder names and reasons come from outside
    return EXIT_OK if svc.get("running") else EXIT_FAIL
