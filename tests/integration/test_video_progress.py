"""Progress of a clip: reported frame by frame in both passes, drawn by ``process`` on a
terminal only, and shown in the watch service's heartbeat (``status``) while the clip is in hand."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photoguard.cli.progress import Progress
from photoguard.core.records import Detection, PhotoStatus
from photoguard.photo.video import clip_progress
from photoguard.service.health import clip_progress_entry
from photoguard.service.watch import WatchService
from tests.support.clips import BLUE, RED, BlobDetector, MovingFace, TintTemplates, make_clip
from tests.support.school import make_school
from tests.support.threads import thread_guard, wait_for

FACES = [MovingFace(RED, 8, 10, dx=2, dy=1, seed=1), MovingFace(BLUE, 140, 70, dx=-1, dy=-1, seed=2)]


def test_both_passes_report_every_frame_of_the_clip(tmp_path: Path) -> None:
    _root, pipe = make_school(tmp_path, detector=BlobDetector(), templates=TintTemplates())
    seen: list[tuple[str, int, int]] = []
    with clip_progress(lambda stage, done, total: seen.append((stage, done, total))):
        res = pipe.process_bytes(make_clip(FACES, frames=12), source="a.mp4", stem="a", suffix=".mp4", group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert [s for s in seen if s[0] == "analyse"] == [("analyse", i, 12) for i in range(1, 13)]
    assert [s for s in seen if s[0] == "render"] == [("render", i, 12) for i in range(1, 13)]
    assert seen.index(("analyse", 12, 12)) < seen.index(("render", 1, 12))
    seen.clear()
    pipe.process_bytes(make_clip(FACES, frames=5), source="b.mp4", stem="b", suffix=".mp4", group="7")
    assert seen == []  # outside the block nothing reports


def test_the_line_is_drawn_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    bar = Progress(3, enabled=True)
    bar.clip("analyse", 40, 300)
    bar.clip("analyse", 41, 300)  # within the redraw interval: not drawn again
    bar.clip("render", 300, 300)  # the last frame always is
    text = out.getvalue()
    assert "clip: analyse frame 40/300" in text and "41/300" not in text
    assert "clip: render frame 300/300" in text and "0/3" in text
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    off = Progress(3, enabled=False)
    off.clip("analyse", 1, 10)
    off.step()
    off.close()
    assert quiet.getvalue() == ""


def test_heartbeat_percent_runs_over_both_passes() -> None:
    assert clip_progress_entry("x", "analyse", 0, 300)["percent"] == 0
    assert clip_progress_entry("x", "analyse", 150, 300)["percent"] == 25
    assert clip_progress_entry("x", "render", 150, 300)["percent"] == 75
    assert clip_progress_entry("x", "render", 300, 300) == {
        "id": "x", "stage": "render", "frames_done": 300, "frames_total": 300, "percent": 100,
    }
    assert clip_progress_entry("x", "analyse", 320, 300)["frames_total"] == 320  # the container guessed short


class _Watching(BlobDetector):
    """A BlobDetector that reads the service's heartbeat on one of its calls (inside the clip)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.service: WatchService | None = None
        self.beat: dict[str, Any] | None = None

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if self.calls == self.at and self.service is not None:
            self.beat = self.service.snapshot()
        return super().detect(rgb)


def test_the_service_heartbeat_shows_the_clip_in_hand(tmp_path: Path) -> None:
    detector = _Watching(at=6)
    root, pipe = make_school(tmp_path, detector=detector, templates=TintTemplates())
    with thread_guard():
        svc = WatchService(root, pipe.settings, pipe, settle_seconds=0.2, tick_seconds=0.05, min_free_bytes=0)
        detector.service = svc
        svc.start()
        try:
            (root / "inbox" / "juf-anne").mkdir(parents=True, exist_ok=True)
            src = root / "inbox" / "juf-anne" / "toneel.mp4"
            src.write_bytes(make_clip(FACES, frames=20))
            assert wait_for(lambda: not src.exists() and svc.counts.get("published") == 1, 30)
            after = svc.snapshot()
        finally:
            svc.stop()
    assert detector.beat is not None
    [clip] = detector.beat["clips"]
    assert clip["stage"] == "analyse" and clip["frames_total"] == 20
    assert 0 < clip["frames_done"] < 20 and 0 < clip["percent"] < 50
    assert "toneel" not in str(clip)  # an id, never the file's name
    assert after["clips"] == []


def test_status_prints_the_clip_in_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import time

    from photoguard.cli.app import main
    from photoguard.service.health import write_heartbeat

    root, _pipe = make_school(tmp_path, detector=BlobDetector(), templates=TintTemplates())
    beat = {
        "pid": os.getpid(), "state": "running", "updated_unix": time.time(), "heartbeat_seconds": 2.0,
        "clips": [clip_progress_entry("a1b2c3", "render", 150, 300)],
    }
    write_heartbeat(_pipe.layout, beat)
    main(["--root", str(root), "status"])
    assert "clip a1b2c3: 75% (render, frame 150/300)" in capsys.readouterr().out
