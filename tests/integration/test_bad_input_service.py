"""Bad input dropped into the watched inbox: each is held or rejected with a reason (or ignored
with a log line) and the service keeps running and publishing good photos afterwards."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import WatchService
from tests.support.photos import make_photo, photo_bytes, png_header_only
from tests.support.school import make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, Pipeline, WatchService]]:
    root, pipe = make_school(tmp_path)
    svc = WatchService(
        root,
        pipe.settings,
        pipe,
        settle_seconds=0.2,
        tick_seconds=0.05,
        incomplete_grace=1.0,
        rescan_seconds=0.5,
        retry_seconds=0.3,
        min_free_bytes=0,
    )
    svc.start()
    try:
        yield root, pipe, svc
    finally:
        svc.stop()
        pipe.store.close()


def _status(pipe: Pipeline, data: bytes) -> tuple[str, str] | None:
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    row = pipe.store.one("SELECT status, reason FROM quarantine WHERE sha256=?", (sha,))
    return (str(row["status"]), str(row["reason"])) if row else None


def _still_works(root: Path, svc: WatchService, seed: int) -> None:
    good = make_photo(root / "inbox" / "ok" / f"IMG_{seed}.jpg", seed=seed)
    assert wait_for(lambda: not good.exists(), 15), "the service must keep publishing"
    assert svc.busy() == 0 or wait_for(lambda: svc.busy() == 0, 10)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("truncated.jpg", "truncated"),
        ("zero.jpg", "zero"),
        ("notes.jpg", "text"),
        ("bomb.png", "bomb"),
    ],
)
def test_bad_file_is_rejected_with_a_reason(running: tuple[Path, Pipeline, WatchService], name: str, kind: str) -> None:
    root, pipe, svc = running
    good = photo_bytes(seed=3)
    data = {
        "truncated": good[: len(good) // 2],
        "zero": b"",
        "text": b"this is not a photo, just notes\n",
        "bomb": png_header_only(20000, 20000),
    }[kind]
    path = root / "inbox" / "juf-anne" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert wait_for(lambda: _status(pipe, data) is not None, 15), "not judged"
    status, reason = _status(pipe, data)  # type: ignore[misc]
    assert status == "rejected" and reason
    assert wait_for(lambda: not path.exists(), 5), "the original moved to quarantine"
    assert not any(p for p in (root / "outbox").rglob("*") if p.is_file() and not p.name.startswith("."))
    _still_works(root, svc, 50)


def test_folder_named_like_a_photo(
    running: tuple[Path, Pipeline, WatchService], caplog: pytest.LogCaptureFixture
) -> None:
    root, _pipe, svc = running
    caplog.set_level(logging.INFO, logger="photoguard")
    (root / "inbox" / "juf-anne").mkdir()
    (root / "inbox" / "juf-anne" / "x.jpg").mkdir()
    assert wait_for(lambda: "reason=folder_named_like_a_photo" in caplog.text, 10)
    _still_works(root, svc, 51)
    assert (root / "inbox" / "juf-anne" / "x.jpg").is_dir()


def test_file_removed_while_it_is_read(
    running: tuple[Path, Pipeline, WatchService], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pipe, svc = running
    import photoguard.photo.ingest as ingest

    real = ingest.read_upload
    hits: list[int] = []

    def vanishing(path: Path, *a: Any, **kw: Any) -> Any:
        if path.name == "vanish.jpg":
            hits.append(1)
            path.unlink()
            raise ingest.IngestError("gone", "the file disappeared while it was read")
        return real(path, *a, **kw)

    monkeypatch.setattr(ingest, "read_upload", vanishing)
    make_photo(root / "inbox" / "x" / "vanish.jpg", seed=60)
    assert wait_for(lambda: hits, 10)
    assert wait_for(lambda: svc.counts.get("rejected", 0) >= 1, 10)
    _still_works(root, svc, 52)
    assert pipe.store.one("SELECT COUNT(*) AS n FROM quarantine")["n"] == 0  # type: ignore[index]


def test_unreadable_permissions(
    running: tuple[Path, Pipeline, WatchService],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """chmod 000 does not stop root (the tests run as root), so the permission error is
    simulated: ``os.open`` raises PermissionError for that one file, as it would for a normal
    service user. The file is left where it is, logged once, and not retried until it changes."""
    root, _pipe, svc = running
    caplog.set_level(logging.INFO, logger="photoguard")
    target = root / "inbox" / "x" / "locked.jpg"
    real_open = os.open
    attempts: list[int] = []
    lock = threading.Lock()

    def guarded_open(path: Any, flags: int, *a: Any, **kw: Any) -> int:
        if os.fspath(path) == str(target):
            with lock:
                attempts.append(1)
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", guarded_open)
    make_photo(target, seed=61)
    target.chmod(0o000)
    assert wait_for(lambda: svc.counts.get("rejected", 0) >= 1, 10)
    _still_works(root, svc, 53)
    n = len(attempts)
    import time

    time.sleep(1.5)  # three rescans
    assert target.exists(), "an unreadable file stays in the inbox"
    assert len(attempts) <= n + 1, "not retried while unchanged"
    assert "reason=unreadable" in caplog.text
    assert "locked" not in caplog.text


def test_process_error_keeps_the_original_and_retries(
    running: tuple[Path, Pipeline, WatchService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception escaping the pipeline (e.g. the disk filled while writing the quarantine
    copy) leaves the original in the inbox; the service retries it later."""
    root, pipe, svc = running
    real = pipe.process_path
    failures: list[int] = []

    def flaky(path: Path, **kw: Any) -> Any:
        if not failures:
            failures.append(1)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, **kw)

    monkeypatch.setattr(pipe, "process_path", flaky)
    src = make_photo(root / "inbox" / "x" / "IMG_ENOSPC.jpg", seed=62)
    assert wait_for(lambda: failures, 10)
    assert wait_for(lambda: not src.exists(), 15)
    assert wait_for(lambda: svc.counts.get("published") == 1, 10)
    assert svc.counts.get("errors") == 1
    assert svc.last_error is not None and svc.last_error["kind"] == "OSError"
