"""The ``photoguard`` command: parser assembly, the :class:`Context` a command gets, and ``main``.

Each noun has its own module: :mod:`~photoguard.cli.setup` (init, check-config),
:mod:`~photoguard.cli.consent` (consent, enrol), :mod:`~photoguard.cli.photos` (process, demo,
watch, status), :mod:`~photoguard.cli.review`, :mod:`~photoguard.cli.records` (sweep, takedown,
report, classlist) and :mod:`~photoguard.cli.dns`; exit codes live in
:mod:`~photoguard.cli.exitcodes`.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from photoguard import __version__
from photoguard.cli import consent, dns, photos, records, review, setup, users, web
from photoguard.cli.exitcodes import EXIT_CONFIG, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_USAGE
from photoguard.config import CONFIG_NAME, ConfigError, Layout, Settings, load_settings, resolve_root
from photoguard.service.runtime import tune_allocator

log = logging.getLogger(__name__)

#: builds the photo pipeline for a root and its settings (the installed command uses the real one)
PipelineFactory = Callable[[Path, Settings], Any]

#: what ``add_subparsers()`` returns; each command module adds its parsers to it
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: commands that decode and render photos: they get the large-buffer allocator settings
PHOTO_COMMANDS = frozenset({"process", "watch", "demo", "review", "enrol"})

#: the top-level commands in the order ``photoguard --help`` lists them
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    setup.add_init,
    setup.add_check_config,
    consent.add_consent,
    consent.add_enrol,
    photos.add_process,
    photos.add_demo,
    photos.add_watch,
    review.add_review,
    photos.add_status,
    records.add_sweep,
    records.add_takedown,
    records.add_report,
    records.add_classlist,
    dns.add_dns,
    users.add_user,
    web.add_web,
)


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

    def service_pipeline(self) -> tuple[Any, bool]:
        """The pipeline for the commands that publish on their own (``watch``, ``review approve``),
        and whether its models were injected by an embedding program (then said loudly in the log)."""
        pipe = self.pipeline()
        if self.injected_models:
            log.warning("TEST MODE: face models injected by the caller; never use this in production")
        return pipe, self.injected_models


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photoguard",
        description="Consent-aware face redaction and metadata-free publishing for school photos.",
    )
    parser.add_argument("--version", action="version", version=f"photoguard {__version__}")
    parser.add_argument("--root", help="photoguard root folder (default: $PHOTOGUARD_ROOT or .)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _stdout_reader_gone() -> bool:
    """True when standard output is a pipe or socket whose reader has gone away (``| head``)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (an embedding program's capture)
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLHUP) for _fd, ev in poller.poll(0))


def main(argv: Sequence[str] | None = None, *, pipeline_factory: PipelineFactory | None = None) -> int:
    """Run one command; ``pipeline_factory`` lets an embedding program (tests) supply the models.

    When the reader of our output goes away (``photoguard review list | head -1``), the command
    ends quietly with exit 1 instead of a traceback: what is still buffered goes to /dev/null, so
    the interpreter's final flush stays quiet too. A broken pipe anywhere else is a real error.
    """
    try:
        try:
            return _run(argv, pipeline_factory)
        finally:
            sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_FAIL


def _run(argv: Sequence[str] | None, pipeline_factory: PipelineFactory | None) -> int:
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
        if getattr(args, "needs_config", True):
            _ = ctx.settings
        return int(args.func(args, ctx))
    except ConfigError as exc:
        print(f"invalid configuration in {exc.path}:", file=sys.stderr)
        for e in exc.errors:
            print(f"  {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
