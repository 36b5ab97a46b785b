"""Storage, logging and operations faults (issue 17): file modes, log lines at ``-vv``, temp files
of killed runs, a full disk and a read-only channel folder, and the time of a manual sweep."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photoguard import fsutil
from photoguard.cli.app import LogGuard, main
from photoguard.core.records import PhotoStatus
from photoguard.core.textsafe import OutputStyle
from photoguard.ledger import audit
from photoguard.ledger.db import Store
from photoguard.service.health import clean_stale_temps
from photoguard.service.watch import WatchService
from tests.support.fake_cli import fake_pipeline
from tests.support.photos import make_photo
from tests.support.school import make_school
from tests.support.shared import REPO
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(90)
FAKE_CLI = REPO / "tests" / "support" / "fake_cli.py"
CHANNELS = ("newsletter", "parro", "guide", "website", "social")
PUPIL_NAMES = ("Vries", "Emma", "Berg", "Daan")


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _outbox_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "outbox").rglob("*") if p.is_file() and not p.name.startswith("."))


# -- 3. file modes --------------------------------------------------------------------------------
def test_private_files_and_folders_are_0600_and_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: modes must not depend on it being strict
    try:
        root, pipe = make_school(tmp_path, config={"action": '"vault"'})
        db = root / "state" / "photoguard.sqlite3"
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), root / "state" / "photoguard.key"):
            assert p.exists() and _mode(p) == 0o600, (p.name, oct(_mode(p)))
        for d in (root / "state", root / "quarantine"):
            assert _mode(d) == 0o700, (d.name, oct(_mode(d)))
        ok = pipe.process_path(make_photo(root / "inbox" / "groep7" / "IMG_1.jpg", seed=4))
        assert ok.status is PhotoStatus.PUBLISHED
        vault = root / "vault"
        assert _mode(vault) == 0o700 and all(_mode(p) == 0o600 for p in vault.iterdir())
        assert any(vault.iterdir())
        for out in _outbox_files(root):  # the outbox is read by the web server's group
            assert _mode(out) == 0o640, out
        bad = root / "inbox" / "groep7" / "kapot.jpg"
        bad.write_bytes(b"\xff\xd8\xff" + os.urandom(500))
        os.chmod(bad, 0o644)
        held = pipe.process_path(bad)
        assert held.quarantine_id is not None
        q = root / "quarantine" / held.quarantine_id
        assert _mode(q) == 0o700
        names = {p.name for p in q.iterdir()}
        assert "reason.json" in names and any(n.startswith("original") for n in names), names
        for p in q.iterdir():  # the copy written, and the teacher's original moved onto it
            assert _mode(p) == 0o600, (p.name, oct(_mode(p)))
        pipe.store.close()
        # an older database left 0644 by an earlier version is tightened when it is opened
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if p.exists():
                os.chmod(p, 0o644)
        Store(db).close()
        assert _mode(db) == 0o600
    finally:
        os.umask(old)


# -- 4. log lines ---------------------------------------------------------------------------------
def test_log_guard_drops_library_debug_and_hashes_paths() -> None:
    guard = LogGuard(Path("/srv/school"))

    def rec(name: str, level: int, msg: str, *args: Any) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, args, None)

    assert not guard.filter(rec("watchdog.observers.inotify_buffer", logging.DEBUG, "in-event %s", "/x/Emma"))
    assert not guard.filter(rec("PIL.PngImagePlugin", logging.INFO, "STREAM b'IHDR'"))
    warn = rec("PIL.Image", logging.WARNING, "cannot open %s", "/srv/school/inbox/groep7/Emma_de_Vries.jpg")
    assert guard.filter(warn) and "Vries" not in warn.getMessage() and "<path " in warn.getMessage()
    ours = rec("photoguard.service.watch", logging.DEBUG, "event=processed photo=%s", "abc123")
    assert guard.filter(ours) and ours.getMessage() == "event=processed photo=abc123"
    try:
        raise OSError(28, "No space left on device", "/srv/school/outbox/parro/2026-groep-7-Emma.jpg")
    except OSError:
        crash = logging.LogRecord("photoguard.photo.pipeline", logging.ERROR, __file__, 1, "held", (), sys.exc_info())
    assert guard.filter(crash) and crash.exc_text and "Emma" not in crash.exc_text


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_process_at_vv_never_logs_a_pupils_name(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    folder = root / "inbox" / "groep7 Emma de Vries"
    make_photo(folder / "Emma_de_Vries_en_Daan_van_der_Berg.jpg", seed=12)
    (folder / "Daan van der Berg kapot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    out = subprocess.run(
        [sys.executable, str(FAKE_CLI), "--", "--root", str(root), "-vv", "process", str(root / "inbox")],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120,
    )
    # stdout is the staff's report (it names the file they gave); the log lines are stderr
    for name in PUPIL_NAMES:
        assert name not in out.stderr, (name, out.stderr[-3000:])


def test_watch_at_vv_never_logs_a_pupils_name(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    log = tmp_path / "watch.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(FAKE_CLI), "--", "--root", str(root), "-vv", "watch"],
            cwd=REPO, env=_env(), stdout=fh, stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: _beat(root).get("state") == "running", 30), log.read_text()
        folder = root / "inbox" / "juf Emma de Vries"
        folder.mkdir(parents=True)
        make_photo(folder / "Daan_van_der_Berg_schoolreis.jpg", seed=13)
        (folder / "Emma de Vries.heic").write_bytes(b"not a photo at all")
        assert wait_for(lambda: len(_outbox_files(root)) >= 5, 30), log.read_text()[-3000:]
        assert wait_for(lambda: _beat(root).get("counts", {}).get("rejected", 0) >= 1, 30)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = log.read_text()
    assert "event=processed" in text
    for name in PUPIL_NAMES:
        assert name not in text, (name, text[-3000:])


def _beat(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "state" / "service.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- 5. temp files of killed runs ---------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant_temps(root: Path) -> tuple[list[Path], list[Path]]:
    """Temp files of a killed run (to go) and files that are not ours to remove (to stay)."""
    dead = _dead_pid()
    gone = [
        root / "outbox" / "parro" / f".pg-{dead}-0123456789abcdef.tmp",
        root / "quarantine" / "abcd" / f".pg-{dead}-00aa.tmp",
        root / "state" / f".pg-{dead}-11bb.tmp",
    ]
    stay = [
        root / "outbox" / "parro" / f".pg-{os.getpid()}-22cc.tmp",  # a live process's
        root / "outbox" / "parro" / ".pg-33dd.tmp",  # an older name without a pid, young
        root / "outbox" / "parro" / ".other-tool.tmp",  # not our prefix
        root / "inbox" / "groep7" / f".pg-{dead}-44ee.tmp",  # not our folder
    ]
    for p in gone + stay:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a file")
    return gone, stay


def test_temp_files_of_killed_runs_are_removed_at_service_start(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    gone, stay = _plant_temps(root)
    link_target = tmp_path / "not-ours.txt"
    link_target.write_text("keep me")
    (root / "outbox" / "parro" / f".pg-{_dead_pid()}-55ff.tmp").symlink_to(link_target)
    svc = WatchService(root, pipe.settings, pipe, min_free_bytes=0, rescan_seconds=300, heartbeat_seconds=0.2)
    svc.start()
    try:
        assert not any(p.exists() for p in gone), [p for p in gone if p.exists()]
        assert all(p.exists() for p in stay), [p for p in stay if not p.exists()]
        assert link_target.read_text() == "keep me"
    finally:
        svc.stop()
        pipe.store.close()


def test_temp_files_of_killed_runs_are_removed_when_process_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    gone, stay = _plant_temps(root)
    photo = make_photo(tmp_path / "elsewhere" / "IMG_9.jpg", seed=9)
    rc = main(["--root", str(root), "process", str(photo)], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    assert rc == 0, capsys.readouterr()
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in stay)


def test_clean_stale_temps_keeps_young_files_of_unknown_owners(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    gone, stay = _plant_temps(root)
    assert clean_stale_temps(pipe.layout, 3600) == len(gone)
    assert all(p.exists() for p in stay)


# -- 6. disk full, read-only channel folder ---------------------------------------------------
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path | None]:
    """A 1 MB tmpfs mounted at a folder (unmounted afterwards), or ``None`` where this machine
    does not let the test mount one: the test then injects the same errors (ENOSPC, EROFS) the
    kernel would give, at the point where photoguard writes into the channel folder."""
    where = tmp_path / "mnt"
    where.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(where)],
            check=True, capture_output=True, timeout=30,
        )
    except (OSError, subprocess.CalledProcessError):
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True, timeout=30)


def _inject(monkeypatch: pytest.MonkeyPatch, folder: Path, fault: str) -> None:
    """Writes into ``folder`` fail as a full or read-only file system makes them fail."""
    import errno

    code = errno.ENOSPC if fault == "disk-full" else errno.EROFS
    real = fsutil.write_temp

    def failing(where: Path, data: bytes, **kw: Any) -> Path:
        if Path(where) == folder:
            raise OSError(code, os.strerror(code), str(Path(where) / fsutil.temp_name()))  # as open() reports it
        return real(where, data, **kw)

    monkeypatch.setattr(fsutil, "write_temp", failing)


def _mount_channel(root: Path, channel: str, fs: Path) -> Path:
    """Put the channel's outbox folder on ``fs`` (a symlink-free bind: the folder is replaced by
    a mount point)."""
    folder = root / "outbox" / channel
    folder.rmdir()
    folder.mkdir()
    subprocess.run(["mount", "--bind", str(fs), str(folder)], check=True, capture_output=True, timeout=30)
    return folder


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_a_folder_that_cannot_take_the_file_keeps_the_original_with_a_reason(
    tmp_path: Path,
    small_fs: Path | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    if small_fs is None:
        folder = root / "outbox" / "website"
        _inject(monkeypatch, folder, fault)
    else:
        folder = _mount_channel(root, "website", small_fs)
    try:
        if small_fs is not None and fault == "disk-full":
            with open(small_fs / ".filler", "wb") as fh, pytest.raises(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
        elif small_fs is not None:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        photo = make_photo(root / "inbox" / "groep7" / "IMG_0001.jpg", seed=21)
        capsys.readouterr()
        rc = main(["--root", str(root), "process", str(photo)], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
        out = capsys.readouterr()
        text = out.out + out.err
        assert rc == 1, text
        assert "Traceback" not in text and "internal error" not in text
        want = "disk full: outbox/website" if fault == "disk-full" else "outbox/website not writable"
        assert want in text, text
        assert photo.exists(), "the original stays in the inbox"
        assert not _outbox_files(root), "nothing published on any channel"
        assert not list((root / "quarantine").iterdir()), "not quarantined: it is tried again"
        store = Store(root / "state" / "photoguard.sqlite3")
        try:
            assert store.one("SELECT COUNT(*) AS n FROM outputs")["n"] == 0  # type: ignore[index]
        finally:
            store.close()
    finally:
        if small_fs is None:
            monkeypatch.undo()
        else:
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True, timeout=30)
    # room again: the same command publishes it
    rc = main(["--root", str(root), "process", str(photo)], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    assert rc == 0 and not photo.exists() and len(_outbox_files(root)) == 5


def test_a_database_full_at_commit_leaves_no_file_the_ledger_does_not_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pipe = make_school(tmp_path)
    real = audit.record_in

    def full_at_the_end(conn: sqlite3.Connection, ev: audit.AuditEvent) -> None:
        if ev.event == "photo.published":
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = 13  # SQLITE_FULL
            raise exc
        real(conn, ev)

    monkeypatch.setattr(audit, "record_in", full_at_the_end)
    photo = make_photo(root / "inbox" / "groep7" / "IMG_0002.jpg", seed=22)
    res = pipe.process_path(photo)
    assert res.kept and res.status is PhotoStatus.HELD and res.reason.startswith("disk full"), res.reason
    assert photo.exists()
    assert not _outbox_files(root), "renamed outputs are taken back when the transaction fails"
    assert pipe.store.one("SELECT COUNT(*) AS n FROM outputs")["n"] == 0  # type: ignore[index]
    monkeypatch.setattr(audit, "record_in", real)
    assert pipe.process_path(photo).status is PhotoStatus.PUBLISHED
    pipe.store.close()


def test_service_keeps_and_retries_a_photo_while_a_folder_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pipe = make_school(tmp_path)
    real = fsutil.write_temp
    full = {"on": True}

    def write_temp(folder: Path, data: bytes, **kw: Any) -> Path:
        if full["on"] and folder.name == "parro":
            raise OSError(28, "No space left on device", str(folder / ".pg-x.tmp"))
        return real(folder, data, **kw)

    monkeypatch.setattr(fsutil, "write_temp", write_temp)
    svc = WatchService(
        root, pipe.settings, pipe, settle_seconds=0.2, tick_seconds=0.05, heartbeat_seconds=0.2,
        retry_seconds=0.2, min_free_bytes=0, rescan_seconds=300,
    )
    svc.start()
    try:
        photo = make_photo(root / "inbox" / "groep7" / "IMG_0003.jpg", seed=23)
        assert wait_for(lambda: svc.counts.get("errors", 0) >= 1, 15)
        assert photo.exists() and not _outbox_files(root)
        assert svc.last_error is not None and svc.last_error["kind"] == "storage"
        full["on"] = False
        assert wait_for(lambda: len(_outbox_files(root)) == 5 and not photo.exists(), 20)
    finally:
        svc.stop()
        pipe.store.close()


# -- 7. the time of a manual sweep --------------------------------------------------------------
def test_status_shows_a_manual_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()

    def status() -> dict[str, Any]:
        capsys.readouterr()
        main(["--root", str(root), "status", "--json"])
        data: dict[str, Any] = json.loads(capsys.readouterr().out)
        return data

    assert status().get("last_sweep") is None
    assert main(["--root", str(root), "sweep"]) == 0
    swept = status()["last_sweep"]
    assert swept is not None and swept["by"] == "manual" and swept["ok"] is True and swept["at"]
    capsys.readouterr()
    main(["--root", str(root), "status"])
    # for people: the school's time zone ([locale], Europe/Amsterdam by default)
    local = OutputStyle().time(swept["at"])
    assert f"last sweep: {local} (manual, ok)" in capsys.readouterr().out


def test_service_sweep_is_recorded_where_status_reads_it(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    svc = WatchService(root, pipe.settings, pipe, min_free_bytes=0, rescan_seconds=300)
    out = svc.run_sweep()
    assert out["ok"]
    from photoguard.service.health import last_sweep

    rec = last_sweep(pipe.store)
    assert rec is not None and rec["by"] == "service" and rec["at"] == out["at"]
    pipe.store.close()
