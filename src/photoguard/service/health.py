"""What the admin sees of the running service: folder checks, the heartbeat file that
``photoguard status`` reads, the sweep schedule, stale temp files, and log-safe path ids."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from photoguard import fsutil
from photoguard.config import Layout
from photoguard.ledger.db import Store

log = logging.getLogger("photoguard.service.watch")

HEARTBEAT_NAME = "service.json"
#: below this much free space (bytes) a folder counts as full and photos wait in the inbox
MIN_FREE_BYTES = 200 * 1024 * 1024
_RUN_KEY = secrets.token_bytes(16)


def path_id(path: Path | str) -> str:
    """A short keyed hash of a path for log lines (stable within one run, meaningless outside)."""
    return hashlib.blake2b(os.fsencode(str(path)), key=_RUN_KEY, digest_size=6).hexdigest()


def clip_progress_entry(clip_id: str, stage: str, done: int, total: int) -> dict[str, Any]:
    """The heartbeat's entry for a clip in progress (``clips``): its path id, the pass
    ("analyse", then "render"), frames done of the clip's frames, and a percentage over both
    passes (each half of the work)."""
    total = max(total, done, 1)
    half = 50.0 * min(done, total) / total
    percent = half + (50.0 if stage == "render" else 0.0)
    return {"id": clip_id, "stage": stage, "frames_done": done, "frames_total": total, "percent": round(percent)}


def check_folders(layout: Layout, min_free_bytes: int = MIN_FREE_BYTES) -> list[str]:
    """Human-readable problems with the folders the service writes to (empty list: all fine)."""
    problems: list[str] = []
    for label, folder in (
        ("inbox", layout.inbox),
        ("outbox", layout.outbox),
        ("quarantine", layout.quarantine),
        ("state", layout.state),
    ):
        if not folder.is_dir():
            problems.append(f"the {label} folder {folder} is missing")
            continue
        if not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"the {label} folder {folder} is not writable for this user")
            continue
        try:
            st = os.statvfs(folder)
        except OSError as exc:
            problems.append(
                f"cannot check free space of the {label} folder {folder}: {exc.strerror}"
            )
            continue
        free = st.f_bavail * st.f_frsize
        if free < min_free_bytes or (st.f_files > 0 and st.f_favail == 0):
            problems.append(
                f"the disk of the {label} folder {folder} is full ({free >> 20} MB free, "
                f"at least {min_free_bytes >> 20} MB needed)"
            )
    return problems


def school_clock(timezone: str) -> Callable[[], datetime]:
    """A clock of the school's wall time: naive local datetimes in ``timezone`` (e.g.
    Europe/Amsterdam), independent of the server's own time zone (often UTC)."""
    zone = ZoneInfo(timezone)

    def now() -> datetime:
        return datetime.now(zone).replace(tzinfo=None)

    return now


def next_sweep_time(now: datetime, at: str) -> datetime:
    """The next local time ``at`` (HH:MM) strictly after ``now`` (naive local datetimes)."""
    hh, mm = (int(x) for x in at.split(":"))
    hh, mm = min(hh, 23), min(mm, 59)
    candidate = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if candidate <= now:
        candidate += timedelta(days=1)
    return candidate


def _walk_files(top: Path) -> Iterator[Path]:
    if not top.is_dir():
        return
    for dirpath, _dirnames, filenames in os.walk(top, followlinks=False):
        for name in filenames:
            yield Path(dirpath) / name


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (ours included; unknown owners count as alive)."""
    if pid <= 0:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def clean_stale_temps(layout: Layout, max_age_seconds: float) -> int:
    """Remove our own hidden temp files under outbox, quarantine, vault and state (left behind
    by a killed run): at once when the process named in the file (``.pg-<pid>-*.tmp``) is gone,
    else when older than ``max_age_seconds`` (a file of a running command, or an older name
    without a pid, is left alone until then). Only our prefix, only in our folders, never
    following links; a link with our name is removed itself, never its target."""
    cutoff = time.time() - max_age_seconds
    removed = 0
    for top in (layout.outbox, layout.quarantine, layout.vault, layout.state):
        if top.is_symlink():
            continue
        for p in _walk_files(top):
            if not fsutil.is_temp_name(p.name):
                continue
            try:
                st = os.lstat(p)
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    continue
                owner = fsutil.temp_owner(p.name)
                if st.st_mtime < cutoff or (owner is not None and not pid_alive(owner)):
                    p.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("event=temp_cleanup_failed path=%s error=%s", path_id(p), exc.strerror)
    if removed:
        log.info("event=temp_cleanup removed=%d", removed)
    return removed


def write_heartbeat(layout: Layout, snapshot: dict[str, Any]) -> None:
    try:
        fsutil.atomic_write(layout.state / HEARTBEAT_NAME, json.dumps(snapshot, indent=1).encode())
    except OSError as exc:
        log.warning("event=heartbeat_failed error=%s", exc.strerror)


def read_heartbeat(layout: Layout) -> dict[str, Any] | None:
    try:
        data = json.loads((layout.state / HEARTBEAT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def heartbeat_fresh(beat: dict[str, Any], now: float | None = None) -> bool:
    """The heartbeat is of a service that is up: starting or running, and written recently
    (within three beats and five seconds)."""
    try:
        age = (time.time() if now is None else now) - float(beat.get("updated_unix", 0))
        limit = 3 * float(beat.get("heartbeat_seconds", 2.0)) + 5
    except (TypeError, ValueError):
        return False
    return beat.get("state") in ("running", "starting") and -5 < age < limit


def incomplete_by_folder(waiting: Iterable[tuple[str, Path]]) -> dict[str, dict[str, Any]]:
    """The heartbeat's ``incomplete.folders``: per inbox folder (the teacher's own folder name)
    the uploads that wait for the rest of their bytes, as path ids only (never file names)."""
    out: dict[str, dict[str, Any]] = {}
    for folder, path in waiting:
        entry = out.setdefault(folder, {"waiting": 0, "ids": []})
        entry["waiting"] += 1
        entry["ids"].append(path_id(path))
    for entry in out.values():
        entry["ids"].sort()
    return out


def waiting_uploads(beat: dict[str, Any] | None, folders: Iterable[str], now: float | None = None) -> int:
    """How many uploads in ``folders`` the running service waits on (incomplete so far); 0 when
    no service is up or its heartbeat says nothing about them."""
    if beat is None or not heartbeat_fresh(beat, now):
        return 0
    per = (beat.get("incomplete") or {}).get("folders")
    if not isinstance(per, dict):
        return 0
    total = 0
    for folder in set(folders):
        entry = per.get(folder)
        if isinstance(entry, dict) and isinstance(entry.get("waiting"), int):
            total += max(0, entry["waiting"])
    return total


#: the ``meta`` row where every sweep (the service's and a manual ``photoguard sweep``) leaves
#: its time; ``photoguard status`` reads it
LAST_SWEEP_KEY = "last_sweep"


def record_sweep(store: Store, summary: dict[str, Any]) -> None:
    """Remember when a sweep ran and how it went (never fails the sweep itself)."""
    data = {k: v for k, v in summary.items() if isinstance(v, int | float | str | bool | dict | None)}
    try:
        with store.transaction() as conn:
            Store.set_meta(conn, LAST_SWEEP_KEY, json.dumps(data, sort_keys=True))
    except Exception as exc:  # a full disk, a lost database: the sweep's own report still stands
        log.warning("event=sweep_record_failed error=%s", type(exc).__name__)


def last_sweep(store: Store) -> dict[str, Any] | None:
    """What :func:`record_sweep` last stored, or None."""
    try:
        data = json.loads(store.get_meta(LAST_SWEEP_KEY) or "null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
