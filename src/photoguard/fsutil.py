"""Atomic, link-safe file operations. Temp files are hidden (``.pg-*.tmp``) in the target folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

TEMP_PREFIX = ".pg-"
TEMP_SUFFIX = ".tmp"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(folder: Path, data: bytes) -> Path:
    """Write ``data`` to a new hidden temp file in ``folder`` and fsync it."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    return tmp


def commit_temp(tmp: Path, final: Path) -> None:
    """Rename a temp file over ``final`` (atomic on one filesystem) and fsync the folder."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def atomic_write(final: Path, data: bytes) -> None:
    commit_temp(write_temp(final.parent, data), final)


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def remove_quietly(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
