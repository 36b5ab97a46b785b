"""The watch service with a REAL watchdog observer on real temporary folders (fake face models)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from photoguard.cli.app import main
from photoguard.config import Settings
from photoguard.photo.formats import Completeness, completeness
from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import (
    WatchService,
    clean_stale_temps,
    next_sweep_time,
    path_id,
)
from tests.support.photos import make_photo, photo_bytes
from tests.support.school import make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(60)
CHANNELS = ("newsletter", "parro", "guide", "website", "social")


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


class Spy:
    """Wraps a pipeline: counts calls and records the sha256 each call saw."""

    def __init__(self, pipe: Pipeline, delay: float = 0.0) -> None:
        self.pipe = pipe
        self.store = pipe.store
        self.settings = pipe.settings
        self.calls: list[str] = []
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def process_path(self, path: Path, **kw: Any) -> Any:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            data = path.read_bytes() if path.exists() else b""
            self.calls.append(hashlib.sha256(data).hexdigest())
            if self.delay:
                time.sleep(self.delay)
            return self.pipe.process_path(path, **kw)
        finally:
            with self._lock:
                self.active -= 1


def _settings(pipe: Pipeline, **service: Any) -> Settings:
    s = pipe.settings
    return s.model_copy(update={"service": s.service.model_copy(update=service)})


def _service(root: Path, pipe: Any, settings: Settings | None = None, **kw: Any) -> WatchService:
    opts: dict[str, Any] = {
        "settle_seconds": 0.3,
        "tick_seconds": 0.05,
        "heartbeat_seconds": 0.2,
        "incomplete_grace": 3.0,
        "retry_seconds": 0.3,
        "min_free_bytes": 0,
    }
    opts.update(kw)
    return WatchService(root, settings or pipe.settings, pipe, **opts)


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[Path, Pipeline]]:
    root, pipe = make_school(tmp_path)
    yield root, pipe
    pipe.store.close()


def _published(root: Path, channel: str) -> list[Path]:
    folder = root / "outbox" / channel
    return (
        sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    )


def _all_channels(root: Path, n: int = 1) -> bool:
    return all(len(_published(root, ch)) >= n for ch in CHANNELS)


def test_dropped_photo_appears_in_every_channel(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    svc = _service(root, pipe, rescan_seconds=300)
    svc.start()
    try:
        src = make_photo(root / "inbox" / "juf-anne" / "IMG_0001.jpg", seed=11)
        assert wait_for(lambda: _all_channels(root), 15), "not published to every channel"
        assert wait_for(lambda: not src.exists(), 5), "original must leave the inbox"
        beat = json.loads((root / "state" / "service.json").read_text())
        assert beat["state"] == "running" and beat["observer"] == "native"
    finally:
        svc.stop()
    beat = json.loads((root / "state" / "service.json").read_text())
    assert beat["state"] == "stopped" and beat["counts"].get("published") == 1
    rows = pipe.store.query("SELECT channel FROM outputs WHERE withdrawn_at IS NULL")
    assert sorted(r["channel"] for r in rows) == sorted(CHANNELS)


def test_slow_writer_is_processed_once_after_it_is_complete(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    spy = Spy(pipe)
    svc = _service(root, spy, settle_seconds=1.0)
    data = photo_bytes(seed=21)
    target = root / "inbox" / "meester-bas" / "IMG_0002.jpg"
    target.parent.mkdir(parents=True)
    svc.start()
    try:
        pieces = 10
        step = -(-len(data) // pieces)
        with open(target, "wb") as fh:  # written in pieces over ~2.5 s, 0.25 s apart
            for i in range(pieces):
                fh.write(data[i * step : (i + 1) * step])
                fh.flush()
                time.sleep(0.25)
        assert wait_for(lambda: _all_channels(root), 15)
        assert wait_for(lambda: not target.exists(), 5)
    finally:
        svc.stop()
    assert spy.calls == [hashlib.sha256(data).hexdigest()], "processed exactly once, complete"
    assert pipe.store.one("SELECT COUNT(*) AS n FROM quarantine")["n"] == 0  # type: ignore[index]


def test_writer_pausing_longer_than_settle_is_not_cut_off(school: tuple[Path, Pipeline]) -> None:
    """A sync client that stalls mid-file: the JPEG has no end marker yet, so the service waits
    (up to ``incomplete_grace``) instead of publishing or rejecting half a photo."""
    root, pipe = school
    spy = Spy(pipe)
    svc = _service(root, spy, settle_seconds=0.3, incomplete_grace=10.0)
    data = photo_bytes(seed=22)
    target = root / "inbox" / "juf-anne" / "IMG_0003.jpg"
    target.parent.mkdir(parents=True)
    svc.start()
    try:
        with open(target, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(1.5)  # five times the settle time
            fh.write(data[len(data) // 2 :])
        assert wait_for(lambda: _all_channels(root), 15)
    finally:
        svc.stop()
    assert spy.calls == [hashlib.sha256(data).hexdigest()]


def test_links_and_paths_outside_the_inbox_are_ignored_with_a_log_line(
    school: tuple[Path, Pipeline], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, pipe = school
    caplog.set_level(logging.INFO, logger="photoguard")
    secret_dir = tmp_path / "outside_Emma_de_Vries"
    secret = make_photo(secret_dir / "secret_Emma_de_Vries.jpg", seed=31)
    spy = Spy(pipe)
    svc = _service(root, spy, rescan_seconds=0.5)
    svc.start()
    try:
        inbox = root / "inbox"
        (inbox / "x").mkdir()
        (inbox / "x" / "link_Emma.jpg").symlink_to(secret)
        (inbox / "linked_folder").symlink_to(secret_dir, target_is_directory=True)
        assert not svc.offer(secret), "a path outside the inbox is refused"
        assert wait_for(lambda: "reason=symbolic_link" in caplog.text, 10), caplog.text
        time.sleep(1.2)  # a few rescans: logged once, never processed
    finally:
        svc.stop()
    assert spy.calls == []
    assert secret.exists()
    assert not any(_published(root, ch) for ch in CHANNELS)
    assert "reason=outside_inbox" in caplog.text
    # each link (the file link and the linked folder) is logged once, however often it is seen
    assert caplog.text.count("reason=symbolic_link") == 2
    for rec in caplog.records:  # no file or folder names in any log line
        msg = rec.getMessage()
        assert "Emma" not in msg and "secret" not in msg and "link_" not in msg, msg


def test_polling_observer_works(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    settings = _settings(pipe, polling=True, poll_seconds=0.2)
    svc = _service(root, pipe, settings=settings, rescan_seconds=300)
    assert svc.polling
    svc.start()
    try:
        make_photo(root / "inbox" / "groep7" / "IMG_0004.jpg", seed=41)
        assert wait_for(lambda: _all_channels(root), 15)
        beat = json.loads((root / "state" / "service.json").read_text())
        assert beat["observer"] == "polling"
    finally:
        svc.stop()


def test_startup_reconciles_inbox_and_stale_temp_files(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    waiting = make_photo(root / "inbox" / "juf-anne" / "IMG_0005.jpg", seed=51)
    stale = root / "outbox" / "website" / ".pg-0123456789abcdef.tmp"
    fresh = root / "outbox" / "website" / ".pg-fedcba9876543210.tmp"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written by a running command")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    svc = _service(root, pipe, rescan_seconds=300)
    svc.start()
    try:
        assert not stale.exists(), "stale temp files are removed at start"
        assert fresh.exists(), "young temp files may belong to a running command"
        assert wait_for(lambda: _all_channels(root), 15)
        assert wait_for(lambda: not waiting.exists(), 5)
    finally:
        svc.stop()


def test_same_photo_twice_and_restarts_make_no_duplicates(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    data = photo_bytes(seed=61)
    svc = _service(root, pipe, workers=2, rescan_seconds=300)
    svc.start()
    try:
        for folder in ("a", "b", "c"):  # the same photo in three folders at once
            (root / "inbox" / folder).mkdir()
            (root / "inbox" / folder / f"IMG_{folder}.jpg").write_bytes(data)
        assert wait_for(lambda: _all_channels(root), 15)
        assert wait_for(lambda: not any((root / "inbox").rglob("*.jpg")), 10)
    finally:
        svc.stop()
    for _ in range(2):  # restart, drop it again
        svc = _service(root, pipe, rescan_seconds=300)
        (root / "inbox" / "a" / "again.jpg").write_bytes(data)
        svc.start()
        try:
            assert wait_for(lambda: not (root / "inbox" / "a" / "again.jpg").exists(), 10)
        finally:
            svc.stop()
    for ch in CHANNELS:
        assert len(_published(root, ch)) == 1, ch
    n = pipe.store.one("SELECT COUNT(*) AS n FROM outputs")["n"]  # type: ignore[index]
    assert n == len(CHANNELS)


def test_bounded_queue_applies_back_pressure_and_rescan_catches_up(
    school: tuple[Path, Pipeline],
) -> None:
    root, pipe = school
    spy = Spy(pipe, delay=0.15)
    settings = _settings(pipe, queue_max=3)
    svc = _service(root, spy, settings=settings, workers=1, rescan_seconds=0.5, settle_seconds=0.1)
    svc.start()
    peak = 0
    try:
        for i in range(10):
            make_photo(root / "inbox" / "burst" / f"IMG_{i:04d}.jpg", seed=100 + i)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_published(root, "website")) < 10:
            peak = max(peak, svc.busy())
            time.sleep(0.01)
    finally:
        svc.stop()
    assert peak <= 3, peak
    assert len(_published(root, "website")) == 10
    assert spy.max_active == 1


def test_graceful_stop_finishes_the_photo_in_hand(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    spy = Spy(pipe, delay=1.0)
    svc = _service(root, spy, workers=1, rescan_seconds=300, settle_seconds=0.1)
    svc.start()
    try:
        first = make_photo(root / "inbox" / "x" / "IMG_0100.jpg", seed=200)
        assert wait_for(lambda: spy.active == 1, 10)
        second = make_photo(root / "inbox" / "x" / "IMG_0101.jpg", seed=201)
        time.sleep(0.3)
    finally:
        svc.stop()
    assert not first.exists() and _all_channels(root), "the photo in hand is finished"
    assert second.exists(), "work not started stays untouched in the inbox"
    assert second.read_bytes() == photo_bytes(seed=201)
    assert len(spy.calls) == 1


def test_full_disk_keeps_the_photo_in_the_inbox_until_space_returns(
    school: tuple[Path, Pipeline], caplog: pytest.LogCaptureFixture
) -> None:
    root, pipe = school
    caplog.set_level(logging.INFO, logger="photoguard")
    svc = _service(root, pipe, min_free_bytes=1 << 62, rescan_seconds=0.3)
    svc.start()
    try:
        src = make_photo(root / "inbox" / "x" / "IMG_0200.jpg", seed=300)
        time.sleep(1.5)
        assert src.exists() and not any(_published(root, ch) for ch in CHANNELS)
        beat = json.loads((root / "state" / "service.json").read_text())
        assert any("full" in p for p in beat["problems"]), beat
        assert "is full" in caplog.text
        svc.min_free_bytes = 0
        assert wait_for(lambda: _all_channels(root), 20)
    finally:
        svc.stop()


def test_missing_inbox_is_a_clear_start_error(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    (root / "inbox").rename(root / "inbox-gone")
    svc = _service(root, pipe)
    with pytest.raises(Exception, match=r"inbox folder .* is missing"):
        svc.start()
    svc.stop()


def test_second_instance_is_refused(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    a = _service(root, pipe)
    a.start()
    try:
        b = _service(root, pipe)
        with pytest.raises(Exception, match="already running"):
            b.start()
        b.stop()
    finally:
        a.stop()


def test_status_reads_the_heartbeat(
    school: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    root, pipe = school
    assert main(["--root", str(root), "status"]) == 1
    assert "NOT running" in capsys.readouterr().out
    svc = _service(root, pipe)
    svc.start()
    try:
        make_photo(root / "inbox" / "x" / "IMG_0300.jpg", seed=400)
        assert wait_for(lambda: svc.counts.get("published") == 1, 15)
        time.sleep(0.5)
        assert main(["--root", str(root), "status", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["service"]["running"] is True
        assert report["service"]["counts"]["published"] == 1
        assert report["db"]["photos"]["published"] == 1
        assert main(["--root", str(root), "status"]) == 0
        assert "service: running" in capsys.readouterr().out
    finally:
        svc.stop()


def test_nightly_sweep_is_scheduled_and_runs(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    now = [datetime(2026, 11, 21, 2, 29, 0)]
    calls: list[Path] = []

    def sweep(r: Path, s: Settings, st: Any) -> dict[str, int]:
        calls.append(r)
        return {"removed": 0}

    svc = _service(root, pipe, sweep=sweep, local_now=lambda: now[0])
    assert svc.next_sweep == datetime(2026, 11, 21, 2, 30)
    svc.start()
    try:
        time.sleep(0.3)
        assert calls == []
        now[0] = datetime(2026, 11, 21, 2, 30, 5)
        assert wait_for(lambda: len(calls) == 1, 5)
        assert svc.next_sweep == datetime(2026, 11, 22, 2, 30)
        assert wait_for(lambda: svc.last_sweep is not None and svc.last_sweep["ok"], 5)
    finally:
        svc.stop()
    assert next_sweep_time(datetime(2026, 11, 21, 23, 0), "02:30") == datetime(2026, 11, 22, 2, 30)


def test_clean_stale_temps_only_touches_temp_names(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    keep = root / "outbox" / "parro" / "photo.jpg"
    keep.write_bytes(b"x")
    tmp = root / "quarantine" / "abc" / ".pg-00.tmp"
    tmp.parent.mkdir()
    tmp.write_bytes(b"x")
    old = time.time() - 7200
    for p in (keep, tmp):
        os.utime(p, (old, old))
    from photoguard.config import Layout

    assert clean_stale_temps(Layout(root, pipe.settings), 3600) == 1
    assert keep.exists() and not tmp.exists()


@pytest.mark.parametrize(
    ("kind", "complete"),
    [("jpeg", True), ("jpeg-half", False), ("png", True), ("png-half", False), ("empty", False)],
)
def test_looks_complete(kind: str, complete: bool) -> None:
    from io import BytesIO

    from PIL import Image

    if kind.startswith("jpeg"):
        data = photo_bytes(seed=5)
    elif kind.startswith("png"):
        buf = BytesIO()
        Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        data = b""
    if kind.endswith("half"):
        data = data[: len(data) // 2]
    expected = Completeness.COMPLETE if complete else Completeness.INCOMPLETE
    assert completeness(data) is expected


def test_looks_complete_webp_and_heic_boxes() -> None:
    riff = b"RIFF" + (16).to_bytes(4, "little") + b"WEBP" + b"\x00" * 12
    assert completeness(riff) is Completeness.COMPLETE
    assert completeness(riff[:-4]) is Completeness.INCOMPLETE
    ftyp = (16).to_bytes(4, "big") + b"ftypmp42" + b"\x00" * 4
    mdat = (24).to_bytes(4, "big") + b"mdat" + b"\x01" * 16
    moov = (8).to_bytes(4, "big") + b"moov"
    assert completeness(ftyp + mdat + moov) is Completeness.COMPLETE
    assert completeness(ftyp + mdat[:-5]) is Completeness.INCOMPLETE
    # a clip paused after its media data, before the movie header a phone writes last
    assert completeness(ftyp + mdat) is Completeness.INCOMPLETE


def test_path_id_hides_the_name() -> None:
    pid = path_id("/school/inbox/juf-anne/Emma_de_Vries.jpg")
    assert len(pid) == 12 and "Emma" not in pid
    assert pid == path_id("/school/inbox/juf-anne/Emma_de_Vries.jpg")
