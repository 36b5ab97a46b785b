"""One watch service per root: an exclusive ``flock`` on ``state/service.lock``."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "service.lock"


class ServiceError(Exception):
    """The service cannot start (missing folder, another instance running, ...)."""


def take_lock(state: Path, root: Path) -> int:
    """Take the instance lock in the ``state`` folder and write our pid into it; returns the open
    descriptor (hold it while running). Raises :class:`ServiceError` when another instance runs."""
    path = state / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ServiceError(
            f"another 'photoguard watch' is already running for {root} (lock {path})"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def release_lock(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
