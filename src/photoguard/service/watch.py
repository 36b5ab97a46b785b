"""``photoguard watch``: a long-running service over ``inbox/``.

Shape (all threads are non-daemon and joined on stop):

* a watchdog observer (inotify, or ``PollingObserver`` for network shares) only *offers* paths;
* one control loop ("pg-control") debounces: a path becomes ready when its size and mtime have
  been stable for ``settle_seconds`` and no event arrived for that long (files that look
  truncated get extra patience); it also rescans the inbox periodically, checks the folders,
  writes the heartbeat ``state/service.json`` and starts the nightly retention sweep;
* a bounded queue feeds ``workers`` threads that share one thread-safe :class:`Pipeline`.

Back-pressure: at most ``queue_max`` paths are tracked (pending + queued + running). When that is
reached new events are dropped and remembered only as "overflow"; the next rescan (sooner when
there is room again) picks the skipped files up. Memory stays bounded whatever lands in the inbox.

The database and the key file are checked before each photo (and every few seconds when idle):
when either vanished, was emptied or was replaced while running, the service stops publishing at
once, says why (log, heartbeat ``state: failed``), leaves every photo in the inbox and ends
(``failed`` is set; ``photoguard watch`` exits with :data:`~photoguard.cli.exitcodes.EXIT_STATE`).

Crash safety comes from the pipeline's ordering (outputs and ledger rows are committed before the
original leaves the inbox; temp files are hidden ``.pg-*.tmp``) plus the start-up reconciliation
here: stale temp files are removed and everything still in the inbox is processed again; content
identity (sha256) makes re-processing idempotent.

Logs carry ids and hashes only: a photo is named by ``sha256[:12]``, a path by a keyed hash
(:func:`path_id`), never by its file name (file names often contain pupils' names).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import cv2
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from photoguard import __version__
from photoguard.config import Layout, Settings
from photoguard.core.records import PhotoStatus
from photoguard.followup import retention
from photoguard.ledger import keys
from photoguard.ledger.db import AuditEvent, StateError, Store, iso
from photoguard.photo import ingest
from photoguard.photo.ingest import is_ignored
from photoguard.service.health import (
    HEARTBEAT_NAME,
    MIN_FREE_BYTES,
    check_folders,
    clean_stale_temps,
    clip_progress_entry,
    incomplete_by_folder,
    next_sweep_time,
    path_id,
    read_heartbeat,
    record_sweep,
    school_clock,
    write_heartbeat,
)
from photoguard.service.intake import Entry, IntakeState, Verdict, judge
from photoguard.service.lock import LOCK_NAME, ServiceError, release_lock, take_lock

__all__ = [
    "HEARTBEAT_NAME",
    "LOCK_NAME",
    "MIN_FREE_BYTES",
    "PipelineLike",
    "ServiceError",
    "WatchService",
    "check_folders",
    "clean_stale_temps",
    "next_sweep_time",
    "path_id",
    "read_heartbeat",
]

log = logging.getLogger(__name__)

_PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".tif", ".tiff")


class PipelineLike(Protocol):
    """What the service needs of :class:`photoguard.photo.pipeline.Pipeline` (tests pass fakes)."""

    store: Store

    def process_path(
        self,
        path: Path,
        *,
        group: str | None = ...,
        uploader: str = ...,
        remove_original: bool = ...,
        wait_incomplete: bool = ...,
    ) -> Any: ...


class _Handler(FileSystemEventHandler):
    def __init__(self, service: WatchService) -> None:
        super().__init__()
        self.service = service

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind not in (
            EVENT_TYPE_CREATED,
            EVENT_TYPE_MODIFIED,
            EVENT_TYPE_MOVED,
            EVENT_TYPE_CLOSED,
        ):
            return
        raw = event.dest_path if kind == EVENT_TYPE_MOVED else event.src_path
        if not raw:
            return
        path = Path(os.fsdecode(raw))
        if event.is_directory:
            if kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MOVED):
                self.service.directory_appeared(path)
            return
        self.service.offer(path)


class WatchService:
    """The watch service for one root. ``start()`` then ``stop()``; or ``run(stop_event)``."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        pipeline: PipelineLike,
        *,
        polling: bool | None = None,
        workers: int | None = None,
        settle_seconds: float | None = None,
        rescan_seconds: float = 30.0,
        heartbeat_seconds: float = 2.0,
        incomplete_grace: float | None = None,
        retry_seconds: float = 15.0,
        min_free_bytes: int = MIN_FREE_BYTES,
        tick_seconds: float = 0.2,
        sweep: Callable[[Path, Settings, Store], object] | None = None,
        local_now: Callable[[], datetime] | None = None,
        fake_models: bool = False,
    ) -> None:
        self.root = root
        self.settings = settings
        self.layout = Layout(root, settings)
        self.pipeline = pipeline
        self.store = pipeline.store
        svc = settings.service
        self.polling = svc.polling if polling is None else polling
        n = svc.workers if workers is None else workers
        # auto: half the cores. Detection already uses every core inside one photo, and each
        # 12 MP photo in flight costs ~0.25 GB, so more threads buy little speed for much memory
        self.workers = n if n > 0 else max(1, (os.cpu_count() or 1) // 2)
        self.queue_max = svc.queue_max
        self.settle = svc.settle_seconds if settle_seconds is None else settle_seconds
        self.rescan_seconds = rescan_seconds
        self.heartbeat_seconds = heartbeat_seconds
        #: how long an unchanged, structurally incomplete upload waits before it is set aside
        self.incomplete_grace = svc.incomplete_wait_seconds if incomplete_grace is None else incomplete_grace
        self.retry_seconds = retry_seconds
        self.min_free_bytes = min_free_bytes
        self.tick = tick_seconds
        self._sweep_fn = sweep
        #: the school's wall clock (naive, [locale] timezone): ``service.sweep_at`` is read on it,
        #: whatever time zone the server itself runs in
        self.local_now = local_now or school_clock(settings.locale.timezone)
        self.fake_models = fake_models

        self._inbox_real = self.layout.inbox.resolve()
        self._lock = threading.Lock()
        self._pending: dict[Path, Entry] = {}
        self._queued: set[Path] = set()
        self._running: set[Path] = set()
        self._set_aside: set[Path] = set()  # queued to be moved to quarantine, not waited for
        self._dirty: set[Path] = set()
        self._noted: dict[Path, tuple[int, int, int]] = {}
        self._attempts: dict[Path, int] = {}
        self._dirs: set[Path] = set()
        self._overflow = False
        self._queue: queue.Queue[Path | None] = queue.Queue(maxsize=self.queue_max)
        self._stop = threading.Event()
        self._rescan_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sweep_thread: threading.Thread | None = None
        self._control_thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self._lock_fd: int | None = None
        self.counts: Counter[str] = Counter()
        self.last_processed_at: str | None = None
        self.last_photo: str | None = None
        #: clips in progress: path id -> heartbeat entry (health.clip_progress_entry)
        self._clips: dict[str, dict[str, Any]] = {}
        self.last_error: dict[str, str] | None = None
        self.last_sweep: dict[str, Any] | None = None
        self.problems: list[str] = []
        #: why the service stopped publishing for good (database or key file lost), or None
        self.failure: str | None = None
        #: set when :attr:`failure` is: the caller stops the service and exits
        self.failed = threading.Event()
        self._key_identity: tuple[int, int] | None = None
        self.started_at = iso()
        self.next_sweep: datetime = next_sweep_time(self.local_now(), svc.sweep_at)
        self._state = "starting"

    # -- lifecycle ---------------------------------------------------------------------------
    def _prepare_models(self) -> None:
        """Share the cores between the workers (OpenCV's DNN threads per photo) and start the
        template processes before the first photo arrives."""
        cores = os.cpu_count() or 1
        cv2.setNumThreads(max(1, cores // self.workers))
        start = getattr(getattr(self.pipeline, "templates", None), "start", None)
        if callable(start):
            start()

    def start(self) -> None:
        """Check the folders, take the instance lock, reconcile, and start all threads.
        Raises :class:`ServiceError` with a clear message when it cannot run."""
        missing = [
            p for p in check_folders(self.layout, 0) if p.startswith(("the inbox", "the state"))
        ]
        if missing:
            raise ServiceError("; ".join(missing))
        # the database and the key file must be the school's own (StateError / KeyError_ otherwise)
        self.store.verify()
        self._key_identity = self._key_file_identity()
        self._lock_fd = take_lock(self.layout.state, self.root)
        try:
            self.problems = check_folders(self.layout, self.min_free_bytes)
            for p in self.problems:
                log.error("event=folder_problem detail=%s", p)
            # temp files of killed runs: at once when their process is gone, else after the age
            clean_stale_temps(self.layout, self.settings.retention.temp_minutes * 60)
            self._observer = (
                PollingObserver(timeout=self.settings.service.poll_seconds)
                if self.polling
                else Observer()
            )
            self._observer.schedule(_Handler(self), str(self.layout.inbox), recursive=True)
            self._observer.start()
            self._prepare_models()
            for i in range(self.workers):
                t = threading.Thread(target=self._worker, name=f"pg-worker-{i}")
                t.start()
                self._threads.append(t)
            self.rescan()  # start-up reconciliation: whatever is already in the inbox
            self._control_thread = threading.Thread(target=self._control, name="pg-control")
            self._control_thread.start()
        except BaseException:
            self.stop()
            raise
        self._state = "running"
        self.store.audit(
            AuditEvent("service.started", detail={"workers": self.workers, "polling": self.polling})
        )
        log.info(
            "event=service_started version=%s workers=%d polling=%s queue_max=%d settle=%.1f",
            __version__,
            self.workers,
            self.polling,
            self.queue_max,
            self.settle,
        )
        self._write_heartbeat()

    def stop(self, timeout: float = 120.0) -> None:
        """Stop taking work, finish the photos in hand (queued ones stay untouched in the inbox),
        stop the observer and the workers. Idempotent."""
        self._stop.set()
        self._rescan_now.set()
        if self.failure is None:
            self._state = "stopping"
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(timeout)
        deadline = time.monotonic() + timeout
        if self._control_thread is not None:
            self._control_thread.join(max(0.1, deadline - time.monotonic()))
        with self._lock:
            self._pending.clear()
        # hand back what was queued but not started: it stays in the inbox for the next start
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                with self._lock:
                    self._queued.discard(item)
        for _ in range(self.workers):
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=max(0.1, deadline - time.monotonic()))
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if self._sweep_thread is not None:
            self._sweep_thread.join(max(0.1, deadline - time.monotonic()))
        extra = [t for t in (self._control_thread, self._sweep_thread) if t is not None]
        alive = [t.name for t in [*self._threads, *extra] if t.is_alive()]
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._lock_fd is not None:
            if self.failure is None:
                self._state = "stopped"
            with contextlib.suppress(OSError):
                self._write_heartbeat()
            with contextlib.suppress(Exception):
                self.store.audit(AuditEvent("service.stopped", detail=dict(self.counts)))
            release_lock(self._lock_fd)
            self._lock_fd = None
        if alive:
            log.error("event=service_stop_timeout threads=%s", ",".join(alive))
        else:
            log.info("event=service_stopped")

    def run(self, stop_event: threading.Event) -> int:
        """Start, wait for ``stop_event`` (set by a signal handler), stop. Returns an exit code."""
        self.start()
        while not stop_event.wait(1.0) and not self.failed.is_set():
            pass
        self.stop()
        return 0 if self.failure is None else 4  # cli.exitcodes.EXIT_STATE

    # -- intake --------------------------------------------------------------------------------
    def _candidate(self, path: Path) -> Path | None:
        """``path`` when it may be a photo inside the inbox, else ``None`` (with a log line for
        paths outside the inbox)."""
        try:
            rel = path.relative_to(self.layout.inbox)
        except ValueError:
            try:
                rel = path.relative_to(self._inbox_real)
                path = self.layout.inbox / rel
            except ValueError:
                log.warning("event=ignored reason=outside_inbox path=%s", path_id(path))
                return None
        if (
            not rel.parts
            or any(part.startswith(".") for part in rel.parts[:-1])
            or is_ignored(rel.name)
        ):
            return None
        return path

    def offer(self, path: Path, *, from_scan: bool = False) -> bool:
        """Track ``path`` (an event or a rescan saw it). Returns False when it was not taken
        (ignored, or the service is at its bound: back-pressure)."""
        if self._stop.is_set():
            return False
        cand = self._candidate(path)
        if cand is None:
            return False
        now = time.monotonic()
        with self._lock:
            if cand in self._running or cand in self._queued:
                self._dirty.add(cand)
                return True
            entry = self._pending.get(cand)
            if entry is not None:
                if not from_scan:
                    entry.last_event = now
                return True
            if len(self._pending) + len(self._queued) + len(self._running) >= self.queue_max:
                if not self._overflow:
                    log.warning(
                        "event=backpressure queue_max=%d; new files wait for the next rescan",
                        self.queue_max,
                    )
                self._overflow = True
                return False
            self._pending[cand] = Entry(
                first_seen=now, last_event=now if not from_scan else now - self.settle
            )
        return True

    def directory_appeared(self, path: Path) -> None:
        """A folder was created or moved in: its contents may bring no events of their own."""
        cand = self._candidate(path / "x")  # containment and hidden-folder check on the folder
        if cand is None:
            return
        if path.name.lower().endswith(_PHOTO_SUFFIXES):
            log.warning("event=rejected reason=folder_named_like_a_photo path=%s", path_id(path))
            with contextlib.suppress(Exception):
                self.store.audit(
                    AuditEvent("ingest.rejected", detail={"reason": "folder named like a photo"})
                )
        with self._lock:
            self._dirs.add(path)
        self._rescan_now.set()

    def rescan(self, top: Path | None = None) -> int:
        """Offer every candidate file under ``top`` (default: the whole inbox). Never follows
        links. Stops early at the bound (the next rescan continues)."""
        base = top or self.layout.inbox
        offered = 0
        for path in ingest.walk_inbox(base):
            if self._stop.is_set():
                return offered
            if self.offer(path, from_scan=True):
                offered += 1
            elif self._overflow:
                return offered
        return offered

    # -- the control loop ----------------------------------------------------------------------
    def _control(self) -> None:
        last_rescan = time.monotonic()
        last_beat = 0.0
        last_health = time.monotonic()
        while not self._stop.is_set():
            self._rescan_now.wait(self.tick)
            if self._stop.is_set():
                break
            now = time.monotonic()
            try:
                with self._lock:
                    dirs, self._dirs = self._dirs, set()
                for d in dirs:
                    self.rescan(d)
                room = self.queue_max - self._tracked()
                if now - last_rescan >= self.rescan_seconds or (
                    self._overflow and room >= max(1, self.queue_max // 2)
                ):
                    self._overflow = False
                    self.rescan()
                    last_rescan = now
                self._rescan_now.clear()
                if now - last_health >= 5.0:
                    self._check_health()
                    self.state_ok()
                    last_health = now
                self._settle_pass(now)
                if now - last_beat >= self.heartbeat_seconds:
                    self._write_heartbeat()
                    last_beat = now
                self._maybe_sweep()
            except Exception:  # the loop must survive anything (full disk, a vanished folder)
                log.exception("event=control_loop_error")
                self._note_error("control")
                time.sleep(min(5.0, self.retry_seconds))

    def _tracked(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._queued) + len(self._running)

    def _settle_pass(self, now: float) -> None:
        with self._lock:
            items = list(self._pending.items())
        for path, entry in items:
            if self._stop.is_set():
                return
            verdict = self._judge(path, entry, now)
            if verdict is Verdict.WAIT:
                continue
            with self._lock:
                if self._pending.get(path) is not entry:
                    continue
                if verdict is Verdict.DROP:
                    del self._pending[path]
                    continue
                try:
                    self._queue.put_nowait(path)
                except queue.Full:
                    continue
                del self._pending[path]
                self._queued.add(path)
                if verdict is Verdict.SET_ASIDE:
                    self._set_aside.add(path)

    def _judge(self, path: Path, entry: Entry, now: float) -> Verdict:
        """The intake verdict for one pending path (links and strangers are dropped here, with
        one log line each; the settle/completeness state is :func:`intake.judge`)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return Verdict.DROP
        except OSError as exc:
            self._note_once(path, (0, 0, 0), f"cannot stat ({exc.strerror})")
            return Verdict.DROP
        key = (st.st_ino, st.st_size, st.st_ctime_ns)
        if stat.S_ISLNK(st.st_mode):
            self._note_once(path, key, "symbolic_link")
            return Verdict.DROP
        if not stat.S_ISREG(st.st_mode):
            self._note_once(path, key, "not_a_regular_file")
            return Verdict.DROP
        if not self._contained(path):
            self._note_once(path, key, "outside_inbox")
            return Verdict.DROP
        with self._lock:
            if self._noted.get(path) == key:
                return Verdict.DROP  # already judged and logged; unchanged since
        before = entry.state
        verdict = judge(
            entry,
            path,
            st,
            now,
            settle=self.settle,
            incomplete_wait=self.incomplete_grace,
            paused=bool(self.problems),
            max_bytes=self.settings.media.max_bytes,
        )
        if entry.state is IntakeState.INCOMPLETE and before is not IntakeState.INCOMPLETE:
            log.info(
                "event=waiting_incomplete path=%s bytes=%d limit=%.0fs; the upload ends early, "
                "waiting for the rest",
                path_id(path),
                st.st_size,
                self.incomplete_grace,
            )
        if verdict is Verdict.SET_ASIDE:
            log.warning(
                "event=incomplete_set_aside path=%s bytes=%d; unchanged and incomplete for %.0fs, "
                "moving it to quarantine",
                path_id(path),
                st.st_size,
                self.incomplete_grace,
            )
        return verdict

    def _contained(self, path: Path) -> bool:
        """The real location of ``path``'s folder is inside the real inbox (no linked folders)."""
        try:
            real_parent = path.parent.resolve(strict=True)
        except OSError:
            return False
        return real_parent == self._inbox_real or self._inbox_real in real_parent.parents

    def _note_once(self, path: Path, key: tuple[int, int, int], reason: str) -> None:
        with self._lock:
            if self._noted.get(path) == key:
                return
            if len(self._noted) > 10_000:
                self._noted.clear()
            self._noted[path] = key
        log.warning("event=ignored reason=%s path=%s", reason, path_id(path))
        with contextlib.suppress(Exception):
            self.store.audit(
                AuditEvent("ingest.ignored", detail={"reason": reason, "path": path_id(path)})
            )

    def _check_health(self) -> None:
        problems = check_folders(self.layout, self.min_free_bytes)
        if problems != self.problems:
            for p in problems:
                if p not in self.problems:
                    log.error("event=folder_problem detail=%s; photos wait in the inbox", p)
            if not problems:
                log.info("event=folders_ok; processing resumes")
                self._rescan_now.set()
        self.problems = problems

    # -- workers -------------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self._lock:
                if item not in self._queued:
                    continue  # handed back during stop
                self._queued.discard(item)
                self._running.add(item)
            try:
                self._process(item)
            finally:
                with self._lock:
                    self._running.discard(item)
                    dirty = item in self._dirty
                    self._dirty.discard(item)
                if dirty and not self._stop.is_set() and os.path.lexists(item):
                    self.offer(item)

    def _retry_later(self, path: Path, delay: float) -> None:
        if self._stop.is_set():
            return
        now = time.monotonic()
        with self._lock:
            entry = self._pending.get(path) or Entry(first_seen=now, last_event=now - self.settle)
            self._attempts[path] = self._attempts.get(path, 0) + 1
            if len(self._attempts) > 10_000:
                self._attempts.clear()
            entry.not_before = now + delay
            self._pending[path] = entry

    # -- the database and the key file -------------------------------------------------------
    def _key_file_identity(self) -> tuple[int, int]:
        try:
            st = os.stat(self.layout.key)
        except FileNotFoundError:
            raise keys.KeyError_(keys.missing_key_message(self.layout.key)) from None
        except OSError as exc:
            raise keys.KeyError_(f"the key file {self.layout.key} cannot be read ({exc.strerror})") from None
        return (st.st_dev, st.st_ino)

    def state_ok(self) -> bool:
        """The database and the key file are still the ones the service started with. When not,
        :meth:`fail` (once) and False: nothing more is published."""
        if self.failure is not None:
            return False
        try:
            self.store.verify()
            if self._key_identity is not None and self._key_file_identity() != self._key_identity:
                raise keys.KeyError_(
                    f"the key file {self.layout.key} was replaced while photoguard was running. "
                    + keys.LOST_KEY_ADVICE
                )
        except (StateError, keys.KeyError_) as exc:
            self.fail(str(exc))
            return False
        return True

    def fail(self, reason: str) -> None:
        """Stop publishing for good: photos stay in the inbox, the heartbeat says ``failed``
        with the reason, and :attr:`failed` tells the caller to stop the service."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = reason
            self.counts["errors"] += 1
            self.last_error = {"at": iso(), "kind": "state"}
        self._state = "failed"
        self.problems = [reason, *self.problems]
        log.critical("event=state_lost detail=%s; publishing stopped, photos stay in the inbox", reason)
        self._write_heartbeat()
        self.failed.set()
        self._rescan_now.set()

    def _process(self, path: Path) -> None:
        pid = path_id(path)
        if not self.state_ok():
            return  # the photo stays in the inbox for the restored database
        problems = check_folders(self.layout, self.min_free_bytes)
        if problems:
            self.problems = problems
            log.error(
                "event=paused path=%s detail=%s; the photo stays in the inbox", pid, problems[0]
            )
            self._retry_later(path, self.retry_seconds)
            return
        if not self._contained(path):
            self._note_once(path, (0, 0, 0), "outside_inbox")
            return
        folder = ingest.inbox_folder(path, self.layout.inbox)
        group = ingest.group_for(folder, self.settings)
        with self._lock:
            final = path in self._set_aside
            self._set_aside.discard(path)
        t0 = time.monotonic()
        try:
            st_before = os.lstat(path)
            with self._clip_progress(pid):
                res = self.pipeline.process_path(
                    path, group=group, uploader=ingest.safe_text(folder), wait_incomplete=not final
                )
        except FileNotFoundError:
            return
        except (StateError, keys.KeyError_) as exc:
            self.fail(str(exc))
            return
        except Exception as exc:
            # e.g. the disk filled up while writing the quarantine copy: the original is still in
            # the inbox (it leaves only after its outputs are committed); try again later
            log.error("event=process_failed path=%s error=%s", pid, type(exc).__name__)
            self._note_error(type(exc).__name__)
            with self._lock:
                attempts = self._attempts.get(path, 0)
            self._retry_later(path, min(600.0, self.retry_seconds * (2 ** min(attempts, 6))))
            return
        secs = time.monotonic() - t0
        status: PhotoStatus = res.status
        if status is PhotoStatus.REJECTED and res.quarantine_id is None and res.reason == ingest.INCOMPLETE:
            # it changed between the settle check and the read: wait for it again
            log.info("event=waiting_incomplete path=%s; the upload ends early", pid)
            self._retry_later(path, 0.0)
            return
        if getattr(res, "kept", False):
            # a folder could not take a file (disk full, read-only): the original stays; retry
            log.error("event=kept path=%s detail=%s", pid, res.reason)
            self._note_error("storage")
            with self._lock:
                attempts = self._attempts.get(path, 0)
            self._retry_later(path, min(600.0, self.retry_seconds * (2 ** min(attempts, 6))))
            return
        with self._lock:
            self._attempts.pop(path, None)
        sha12 = res.sha256[:12] if res.sha256 else "-"
        kind = "duplicate" if res.duplicate else status.value
        with self._lock:
            self.counts[kind] += 1
            self.last_processed_at = iso()
            self.last_photo = sha12
        if status is PhotoStatus.REJECTED and res.quarantine_id is None:
            # not taken at all (link, permission, vanished): remember it so rescans do not retry
            # it until it changes
            self._note_once(
                path, (st_before.st_ino, st_before.st_size, st_before.st_ctime_ns), "unreadable"
            )
        log.info(
            "event=processed photo=%s path=%s status=%s channels=%d held=%s qid=%s secs=%.2f",
            sha12,
            pid,
            kind,
            len(res.outputs),
            ",".join(res.held_channels) or "-",
            res.quarantine_id or "-",
            secs,
        )

    def _note_error(self, kind: str) -> None:
        with self._lock:
            self.counts["errors"] += 1
            self.last_error = {"at": iso(), "kind": kind}

    # -- sweep ---------------------------------------------------------------------------------
    def _maybe_sweep(self) -> None:
        if self.failure is not None:
            return
        now = self.local_now()
        if now < self.next_sweep:
            return
        self.next_sweep = next_sweep_time(now, self.settings.service.sweep_at)
        if self._sweep_thread is not None and self._sweep_thread.is_alive():
            log.warning("event=sweep_skipped reason=previous_sweep_still_running")
            return
        self._sweep_thread = threading.Thread(target=self.run_sweep, name="pg-sweep")
        self._sweep_thread.start()

    def run_sweep(self) -> dict[str, Any]:
        fn = self._sweep_fn or retention.run_sweep
        name = "retention.run_sweep" if self._sweep_fn is None else "custom"
        t0 = time.monotonic()
        try:
            out = fn(self.root, self.settings, self.store)
        except Exception as exc:
            log.exception("event=sweep_failed")
            self._note_error("sweep")
            self.last_sweep = {"at": iso(), "ok": False, "error": type(exc).__name__, "kind": name}
            return self.last_sweep
        if isinstance(out, dict):
            summary = out
        elif dataclasses.is_dataclass(out) and not isinstance(out, type):
            summary = dataclasses.asdict(out)
        else:
            summary = {"result": type(out).__name__}
        self.last_sweep = {
            "at": iso(),
            "ok": True,
            "kind": name,
            "secs": round(time.monotonic() - t0, 2),
            "summary": {
                k: v for k, v in summary.items() if isinstance(v, int | float | str | bool)
            },
        }
        log.info("event=sweep_done kind=%s", name)
        record_sweep(self.store, {**self.last_sweep, "by": "service"})
        return self.last_sweep

    # -- heartbeat -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _clip_progress(self, pid: str) -> Iterator[None]:
        """A clip processed in the block shows in the heartbeat (``clips``) with its percentage;
        a photo never reports, and costs nothing here."""
        from photoguard.photo.video import clip_progress  # PyAV loads with the first file processed

        def report(stage: str, done: int, total: int) -> None:
            entry = clip_progress_entry(pid, stage, done, total)
            with self._lock:
                self._clips[pid] = entry

        try:
            with clip_progress(report):
                yield
        finally:
            with self._lock:
                self._clips.pop(pid, None)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            pending, queued, running = len(self._pending), len(self._queued), len(self._running)
            counts = dict(self.counts)
            stalled = [
                now - e.stable_since for e in self._pending.values() if e.state is IntakeState.INCOMPLETE
            ]
            stalled_paths = [p for p, e in self._pending.items() if e.state is IntakeState.INCOMPLETE]
            clips = [dict(c) for c in self._clips.values()]
        # per teacher's folder (the name the ledger keeps as the uploader), ids only
        by_folder = incomplete_by_folder(
            (ingest.safe_text(ingest.inbox_folder(p, self.layout.inbox)), p) for p in stalled_paths
        )
        return {
            "pid": os.getpid(),
            "version": __version__,
            "state": self._state,
            "started_at": self.started_at,
            "updated_at": iso(),
            "updated_unix": time.time(),
            "heartbeat_seconds": self.heartbeat_seconds,
            "observer": "polling" if self.polling else "native",
            "workers": self.workers,
            "queue": {
                "pending": pending,
                "queued": queued,
                "running": running,
                "max": self.queue_max,
            },
            "overflow": self._overflow,
            "incomplete": {
                "waiting": len(stalled),
                "longest_wait_seconds": round(max(stalled, default=0.0), 1),
                "limit_seconds": self.incomplete_grace,
                "folders": by_folder,
            },
            "counts": counts,
            "clips": clips,
            "last_processed_at": self.last_processed_at,
            "last_photo": self.last_photo,
            "last_error": self.last_error,
            "problems": list(self.problems),
            "next_sweep_at": self.next_sweep.isoformat(timespec="minutes"),
            "last_sweep": self.last_sweep,
            "failure": self.failure,
            "fake_models": self.fake_models,
        }

    def _write_heartbeat(self) -> None:
        write_heartbeat(self.layout, self.snapshot())

    # -- for tests and status ------------------------------------------------------------------
    def busy(self) -> int:
        """Paths tracked right now (pending + queued + running)."""
        return self._tracked()

    def wait_idle(self, timeout: float, settle_extra: float = 0.0) -> bool:
        """Block until nothing is tracked for ``settle_extra`` seconds (tests)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self._tracked() == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_extra:
                    return True
            else:
                quiet_since = None
            time.sleep(0.05)
        return False

