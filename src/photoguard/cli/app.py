"""The ``photoguard`` command: a thin shell over the library. ``main(argv) -> int``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from photoguard import __version__
from photoguard.config import (
    CONFIG_NAME,
    CONSENT_KEYS,
    ConfigError,
    Layout,
    Settings,
    load_settings,
    resolve_root,
)
from photoguard.service.runtime import tune_allocator

log = logging.getLogger("photoguard")

#: builds the photo pipeline for a root and its settings (the installed command uses the real one)
PipelineFactory = Callable[[Path, Settings], Any]

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3

#: commands that decode and render photos: they get the large-buffer allocator settings
PHOTO_COMMANDS = frozenset({"process", "watch", "demo", "review", "enrol"})


class Context:
    """What a command handler gets: the root, and settings/pipeline built on first use."""

    def __init__(self, root: Path, pipeline_factory: PipelineFactory | None = None) -> None:
        self.root = root
        self._settings: Settings | None = None
        self._pipeline: Any = None
        self._factory = pipeline_factory

    @property
    def injected_models(self) -> bool:
        """True when the caller (a test harness, never the installed command) supplied the pipeline."""
        return self._factory is not None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.root)
        return self._settings

    def settings_or_default(self) -> Settings:
        if (self.root / CONFIG_NAME).is_file():
            return self.settings
        return Settings()

    @property
    def layout(self) -> Layout:
        return Layout(self.root, self.settings)

    def pipeline(self) -> Any:
        if self._pipeline is None:
            if self._factory is not None:
                self._pipeline = self._factory(self.root, self.settings)
            else:
                from photoguard.photo.pipeline import Pipeline

                self._pipeline = Pipeline(self.root, self.settings)
        return self._pipeline


# -- commands -------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.service.setup import init_root

    root = Path(args.path).expanduser().resolve()
    created = init_root(root)
    print(f"photoguard root ready at {root}")
    for p in created:
        print(f"  created {p}")
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace, ctx: Context) -> int:
    s = ctx.settings  # raises ConfigError, reported by main()
    print(f"{ctx.root / CONFIG_NAME}: OK ({len(s.channels)} channels: {', '.join(c.name for c in s.channels)})")
    return EXIT_OK


def cmd_consent_import(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger.consent import ConsentImportError, import_csv
    from photoguard.ledger.db import Store

    _ = ctx.settings
    store = Store(ctx.layout.db)
    try:
        report = import_csv(store, Path(args.file))
    except ConsentImportError as exc:
        print(f"refused {args.file}: nothing was imported", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return EXIT_FAIL
    print(
        f"imported: {report.added} new, {report.updated} changed, {report.unchanged} unchanged "
        f"({len(report.changes)} changes; consent version {report.version})"
    )
    if report.missing_from_file:
        print(f"  {len(report.missing_from_file)} pupil(s) in the registry are not in this file (kept)")
    from photoguard.followup.propagate import after_changes

    summary = after_changes(ctx, report.changes)
    for line in summary:
        print(f"  {line}")
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
        print(f"  {line}")
    return EXIT_OK


def cmd_consent_show(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger.consent import Registry
    from photoguard.ledger.db import Store

    _ = ctx.settings
    reg = Registry(Store(ctx.layout.db))
    p = reg.pupil(args.pupil)
    if p is None:
        print(f"no pupil with id {args.pupil}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        doc = {"pupil_id": p.pupil_id, "group": p.group, "left_on": str(p.left_on or ""), "consents": p.consents}
        print(json.dumps(doc))
        return EXIT_OK
    print(f"pupil {p.pupil_id} (group {p.group or '-'}){'; left on ' + str(p.left_on) if p.left_on else ''}")
    for k in CONSENT_KEYS:
        print(f"  {k:16} {'yes' if p.consents.get(k) else 'no'}")
    hist = reg.history(p.pupil_id)
    if hist:
        print("history:")
        for h in hist:
            print(f"  {h['at']}  {h['key']}: {h['old_value']} -> {h['new_value']}  ({h['source']}, v{h['version']})")
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
        print(f"{mark} {o.pupil_id} {Path(o.photo).name}: {o.reason}")
    print(f"{ok} of {len(outcomes)} photo(s) enrolled")
    return EXIT_OK if ok == len(outcomes) and outcomes else EXIT_FAIL


def cmd_process(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.cli.progress import Progress
    from photoguard.photo.ingest import iter_inputs

    pipe = ctx.pipeline()
    inputs = list(iter_inputs([Path(p) for p in args.paths]))
    if not inputs:
        print("no photos found in the given paths", file=sys.stderr)
        return EXIT_FAIL
    counts: Counter[str] = Counter()
    per_channel: Counter[str] = Counter()
    held: list[str] = []
    bar = Progress(len(inputs), enabled=not args.json and sys.stderr.isatty())
    for path in inputs:
        res = pipe.process_path(path, remove_original=not args.keep)
        counts[res.status.value] += 1
        for ch in res.outputs:
            per_channel[ch] += 1
        if args.json:
            print(json.dumps(res.to_json()), flush=True)
        elif res.status.value != "published" or res.held_channels:
            held.append(f"{res.status.value:9} {path.name}: {res.reason}")
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


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.cli.demo import run_demo

    return run_demo(Path(args.path))


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photoguard",
        description="Consent-aware face redaction and metadata-free publishing for school photos.",
    )
    parser.add_argument("--version", action="version", version=f"photoguard {__version__}")
    parser.add_argument("--root", help="photoguard root folder (default: $PHOTOGUARD_ROOT or .)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="create a root with inbox/ outbox/ quarantine/ state/ and a config")
    p.add_argument("path", help="the root folder to create")
    p.set_defaults(func=cmd_init, needs_config=False)

    p = sub.add_parser("check-config", help="validate photoguard.toml and name every error's key path")
    p.set_defaults(func=cmd_check_config)

    consent = sub.add_parser("consent", help="the consent registry")
    csub = consent.add_subparsers(dest="consent_command", metavar="ACTION", required=True)
    p = csub.add_parser("import", help="import a consent CSV export (all or nothing)")
    p.add_argument("file")
    p.set_defaults(func=cmd_consent_import)
    p = csub.add_parser("set", help="record a single change, e.g. website=no")
    p.add_argument("pupil")
    p.add_argument("changes", nargs="+", metavar="CHANNEL=yes|no")
    p.set_defaults(func=cmd_consent_set)
    p = csub.add_parser("show", help="a pupil's consents and history")
    p.add_argument("pupil")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_consent_show)

    p = sub.add_parser("enrol", help="enrol a pupil with face_matching consent from provided photos")
    p.add_argument("pupil", nargs="?", metavar="PUPIL_ID")
    p.add_argument("photos", nargs="*", metavar="PHOTO")
    p.add_argument("--dir", help="folder with one sub-folder of photos per pupil id")
    p.set_defaults(func=cmd_enrol)

    p = sub.add_parser("process", help="process photo files or folders once")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.add_argument("--keep", action="store_true", help="leave the originals where they are")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("demo", help="set up ROOT with sample photos and run the main job on them")
    p.add_argument("path", help="a new folder for the demo root")
    p.set_defaults(func=cmd_demo, needs_config=False)

    from photoguard.cli import ops as ops_cli
    from photoguard.cli import records as retention_cli
    from photoguard.dnsfilter import cli as dns_cli

    ops_cli.register(sub)
    retention_cli.register(sub, csub)
    dns_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, pipeline_factory: PipelineFactory | None = None) -> int:
    """Run one command; ``pipeline_factory`` lets an embedding program (tests) supply the models."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command in PHOTO_COMMANDS:
        tune_allocator()
    ctx = Context(resolve_root(args.root), pipeline_factory)
    try:
        if getattr(args, "needs_config", True) and args.command not in ("dns",):
            _ = ctx.settings
        return int(args.func(args, ctx))
    except ConfigError as exc:
        print(f"invalid configuration in {exc.path}:", file=sys.stderr)
        for e in exc.errors:
            print(f"  {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
