"""Atomic, link-safe file operations. Temp files are hidden (``.pg-<pid>-*.tmp``) in the target
folder; the pid says which process writes it, so a start-up can remove those of dead processes.

Files are written private (0600) unless the caller asks for :data:`SHARED_MODE` (the outbox,
which the school's web server or comms staff read); folders this module creates are 0700 when
the file in them is private.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".pg-"
TEMP_SUFFIX = ".tmp"
#: quarantine, vault, state: only the service user reads them
PRIVATE_MODE = 0o600
#: outbox files: the service user writes, its group (web server, comms staff) reads
SHARED_MODE = 0o640
_TEMP_OWNER = re.compile(r"^\.pg-(\d{1,10})-[0-9a-f]+\.tmp$")

#: errno values that mean "this folder cannot take the file", with the words staff read
STORAGE_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "not writable (read-only file system)",
    errno.EACCES: "not writable (permission denied)",
    errno.EPERM: "not writable (operation not permitted)",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: SQLite's result codes with the same meaning (SQLITE_FULL, SQLITE_READONLY)
_SQLITE_CODES: dict[int, str] = {13: "disk full", 8: "not writable (read-only database)"}


def storage_problem(exc: BaseException) -> str | None:
    """"disk full", "not writable (...)" for an OSError (or a SQLite error) that means a folder
    cannot take a file; ``None`` for anything else."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return STORAGE_ERRNOS.get(exc.errno)
    if isinstance(exc, sqlite3.Error):
        return _SQLITE_CODES.get(getattr(exc, "sqlite_errorcode", -1) & 0xFF)
    return None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name() -> str:
    """A new hidden temp-file name carrying this process's pid."""
    return f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{TEMP_SUFFIX}"


def temp_owner(name: str) -> int | None:
    """The pid in a temp-file name made by :func:`temp_name` (``None`` for older names)."""
    m = _TEMP_OWNER.match(name)
    return int(m.group(1)) if m else None


def write_temp(folder: Path, data: bytes, *, mode: int = PRIVATE_MODE) -> Path:
    """Write ``data`` to a new hidden temp file in ``folder`` and fsync it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700 if mode & 0o077 == 0 else 0o777)
    tmp = folder / temp_name()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(tmp)  # which folder could not take it (ENOSPC names no file)
        raise
    os.close(fd)
    return tmp


def commit_temp(tmp: Path, final: Path) -> None:
    """Rename a temp file over ``final`` (atomic on one filesystem) and fsync the folder."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def atomic_write(final: Path, data: bytes, *, mode: int = PRIVATE_MODE) -> None:
    commit_temp(write_temp(final.parent, data, mode=mode), final)


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def remove_quietly(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


_LIBC: Any = None


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``). A 12 MP photo goes
    through buffers of tens of MB on several threads; without this the service's resident memory
    keeps the high-water mark of every thread's arena (measured: +300 MB over 8 photos). A no-op
    where the C library has no such call."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)
