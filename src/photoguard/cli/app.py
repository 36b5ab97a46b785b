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
import re
import select
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from photoguard import __version__
from photoguard.cli import consent, dns, photos, records, review, setup, users, web
from photoguard.cli.exitcodes import EXIT_CONFIG, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_STATE, EXIT_USAGE
from photoguard.config import CONFIG_NAME, ConfigError, Layout, Settings, load_settings, resolve_root
from photoguard.ledger.db import RESTORE_ADVICE, StateError
from photoguard.ledger.keys import KeyError_
from photoguard.service.health import path_id
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


#: libraries whose debug and info lines name folders and files (pupils' names): WARNING at most
QUIET_LOGGERS = ("watchdog", "PIL", "urllib3", "asyncio", "concurrent", "onnxruntime", "multipart", "numba")
#: a word with a slash in it: a path (or a URL) in a log line
_PATHLIKE = re.compile(r"[^\s'\"()\[\]{},;=]*[/\\][^\s'\"()\[\]{},;=]*")


class LogGuard(logging.Filter):
    """Every log line is ours to control. Other libraries' records below WARNING are dropped
    (watchdog's inotify grouper and PIL log folder and file names at debug level); in what
    passes, every path-like word is replaced by a keyed hash. Our own messages carry ids and
    hashes by design; in their exception text a path under the photoguard root is hashed the
    same way (an OSError names the output file, and output names carry first names)."""

    def __init__(self, root: Path | None = None) -> None:
        super().__init__("")
        self.root = str(root) if root is not None else None

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "photoguard" or record.name.startswith("photoguard.")
        if not ours and record.levelno < logging.WARNING:
            return False
        root = self.root

        def scrub(m: re.Match[str]) -> str:
            word = m.group()
            if ours and (root is None or root not in word):
                return word
            return f"<path {path_id(word)}>"

        if not ours:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record: keep it as the logging module would show it
                return True
            record.msg, record.args = _PATHLIKE.sub(scrub, message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _PATHLIKE.sub(scrub, record.exc_text)
        return True


def setup_logging(verbose: int, root: Path | None = None) -> None:
    """``-v`` info, ``-vv`` debug for photoguard's own lines; other libraries stay at WARNING
    whatever ``-v`` says, and every handler on the root logger gets the :class:`LogGuard`."""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, LogGuard)]:
            handler.removeFilter(old)
        handler.addFilter(LogGuard(root))


def _refuse(exc: Exception) -> int:
    """The one refusal path: the database or the key file cannot be used. Never a fresh start."""
    print(f"photoguard stopped: {exc}", file=sys.stderr)
    return EXIT_STATE


def _run(argv: Sequence[str] | None, pipeline_factory: PipelineFactory | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        log_root: Path | None = resolve_root(args.root).resolve()
    except (OSError, ValueError):
        log_root = None
    setup_logging(args.verbose, log_root)
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
    except (StateError, KeyError_) as exc:
        return _refuse(exc)
    except sqlite3.DatabaseError as exc:
        # SQLITE_CORRUPT (11) / SQLITE_NOTADB (26) met in the middle of a command
        if getattr(exc, "sqlite_errorcode", 0) not in (11, 26):
            raise
        return _refuse(StateError(ctx.layout.db, f"the database is damaged ({exc})", RESTORE_ADVICE))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
