"""What the admin reads in ``status`` (issue 17, operations and locale): an upload that is still
arriving is named as such (not only counted as "settling"), with how long it has waited and the
limit after which it is set aside; the nightly sweep runs on the school's clock ([locale]
timezone), not on the server's, and ``status`` says which clock its next-sweep time is in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from photoguard.cli.app import main
from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import WatchService
from tests.support.photos import photo_bytes
from tests.support.school import make_school
from tests.support.threads import thread_guard

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


def _far_zone() -> str:
    """A time zone at least 11 hours away from the one this machine runs in."""
    offset = datetime.now().astimezone().utcoffset() or timedelta(0)
    return "Etc/GMT-14" if offset <= timedelta(0) else "Etc/GMT+12"


def _service(root: Path, pipe: Pipeline, **kw: float) -> WatchService:
    return WatchService(root, pipe.settings, pipe, settle_seconds=0.0, min_free_bytes=0, **kw)  # type: ignore[arg-type]


def test_the_sweep_clock_is_the_schools_not_the_servers(tmp_path: Path) -> None:
    zone = _far_zone()
    root, pipe = make_school(tmp_path, config={"timezone": f'"{zone}"'})
    try:
        svc = _service(root, pipe)  # not started: no threads
        school_now = datetime.now(ZoneInfo(zone)).replace(tzinfo=None)
        assert abs(svc.local_now() - school_now) < timedelta(minutes=1)
        assert abs(svc.local_now() - datetime.now()) > timedelta(hours=10), "not the server's clock"
        hh, mm = (int(x) for x in pipe.settings.service.sweep_at.split(":"))
        assert (svc.next_sweep.hour, svc.next_sweep.minute) == (hh, mm)
        assert timedelta(0) < svc.next_sweep - school_now <= timedelta(days=1, minutes=1)
    finally:
        pipe.store.close()


def test_status_names_an_upload_still_arriving_and_the_sweeps_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, pipe = make_school(tmp_path)
    try:
        half = root / "inbox" / "juf-anne" / "IMG_0001.jpg"
        half.parent.mkdir(parents=True)
        data = photo_bytes(seed=4)
        half.write_bytes(data[: len(data) // 2])
        svc = _service(root, pipe, incomplete_grace=900.0)
        assert svc.offer(half, from_scan=True)
        svc._settle_pass(time.monotonic())  # first look: size and time noted
        svc._settle_pass(time.monotonic())  # unchanged and ending early: waiting for the rest
        svc._write_heartbeat()
        capsys.readouterr()
        assert main(["--root", str(root), "status", "--json"]) == 0  # our own pid: "running"
        doc = json.loads(capsys.readouterr().out)
        waiting = doc["service"]["incomplete"]
        assert waiting["waiting"] == 1 and waiting["limit_seconds"] == 900.0
        assert main(["--root", str(root), "status"]) == 0
        text = capsys.readouterr().out
        assert "still arriving: 1 upload(s) end too early" in text, text
        assert "moved to quarantine after 900 s without change" in text
        assert "IMG_0001" not in text  # counts, never file names
        assert f"next sweep: {svc.next_sweep:%Y-%m-%d %H:%M} Europe/Amsterdam" in text, text
        assert half.exists(), "waiting, never removed"
    finally:
        pipe.store.close()
