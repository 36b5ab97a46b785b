"""Clips stalled at their structural boundaries (issue 17, data loss, for the video formats): a
phone writes an MP4/MOV's media data first and the movie header (``moov``) last, so a pause just
before ``moov`` leaves boxes that tile the file; a fast-start clip paused after ``moov`` before its
media data the same. Such prefixes, every other box boundary, random offsets and a WebM cut inside
its EBML header are judged incomplete (before, they were "complete", so the clip was refused as
damaged and set aside). At service level a writer pausing just before ``moov`` is published once.
Images: test_intake_stalls.py."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from photoguard.photo.formats import Completeness, completeness
from photoguard.service.watch import WatchService
from tests.support.clips import BLUE, RED, BlobDetector, MovingFace, TintTemplates, make_clip
from tests.support.school import make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(120)
FACES = [MovingFace(RED, 8, 10, dx=2, dy=1, seed=1), MovingFace(BLUE, 140, 70, dx=-1, dy=-1, seed=2)]


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


def _top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the top-level ISO-BMFF boxes."""
    out: list[tuple[bytes, int, int]] = []
    i = 0
    while i + 8 <= len(data):
        size, typ = struct.unpack_from(">I4s", data, i)
        if size == 1:
            size = struct.unpack_from(">Q", data, i + 8)[0]
        out.append((typ, i, i + size))
        i += size
    return out


def _stalls(data: bytes, seed: int) -> list[int]:
    cuts = {o for _t, s, e in _top_boxes(data) for o in (s + 8, e, (s + e) // 2)}
    rng = np.random.default_rng(seed)
    cuts |= {int(x) for x in rng.integers(1, len(data), 12)}
    return sorted(o for o in cuts if 0 < o < len(data))


@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_every_box_boundary_and_random_offset_of_a_clip_is_incomplete(container: str) -> None:
    data = make_clip(FACES, frames=6, container=container)
    kinds = [t for t, _s, _e in _top_boxes(data)]
    assert b"mdat" in kinds and kinds.index(b"mdat") < kinds.index(b"moov"), "moov last, as phones write"
    assert completeness(data) is Completeness.COMPLETE
    for off in _stalls(data, 3):
        assert completeness(data[:off]) is Completeness.INCOMPLETE, (container, off, len(data))


def test_a_fast_start_clip_paused_after_its_movie_header_is_incomplete() -> None:
    data = make_clip(FACES, frames=6)
    boxes = _top_boxes(data)
    ftyp = next(data[s:e] for t, s, e in boxes if t == b"ftyp")
    moov = next(data[s:e] for t, s, e in boxes if t == b"moov")
    assert completeness(ftyp + moov) is Completeness.INCOMPLETE  # no media data yet


def test_a_webm_cut_anywhere_is_incomplete() -> None:
    data = make_clip(FACES, frames=6, container="webm")
    assert completeness(data) is Completeness.COMPLETE
    rng = np.random.default_rng(5)
    cuts = set(range(1, 48)) | {int(x) for x in rng.integers(48, len(data), 24)}
    for off in sorted(cuts):
        assert completeness(data[:off]) is Completeness.INCOMPLETE, (off, len(data))


def test_a_clip_whose_writer_pauses_before_its_movie_header_is_published_once(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path, detector=BlobDetector(), templates=TintTemplates())
    calls: list[str] = []
    real = pipe.process_path

    def counting(path: Path, **kw: object) -> object:
        calls.append(hashlib.sha256(path.read_bytes()).hexdigest())
        return real(path, **kw)  # type: ignore[arg-type]

    pipe.process_path = counting  # type: ignore[method-assign,assignment]
    data = make_clip(FACES, frames=8)
    moov_at = next(s for t, s, _e in _top_boxes(data) if t == b"moov")
    path = root / "inbox" / "juf-anne" / "VID_0001.mp4"
    path.parent.mkdir(parents=True)
    svc = WatchService(
        root, pipe.settings, pipe, settle_seconds=0.2, tick_seconds=0.05, heartbeat_seconds=0.2,
        incomplete_grace=30.0, retry_seconds=0.3, rescan_seconds=300, min_free_bytes=0,
    )

    def writer() -> None:
        with open(path, "wb") as fh:
            fh.write(data[:moov_at])
            fh.flush()
            time.sleep(1.5)  # many settle periods: the service looks at the tiled prefix
            fh.write(data[moov_at:])

    svc.start()
    try:
        t = threading.Thread(target=writer)
        t.start()
        t.join()
        assert wait_for(lambda: not path.exists(), 60), "the clip leaves the inbox"
        assert wait_for(lambda: svc.busy() == 0, 30)
    finally:
        svc.stop()
        pipe.store.close()
    sha = hashlib.sha256(data).hexdigest()
    assert calls == [sha], "processed once, and only when whole"
    assert svc.counts.get("published") == 1 and not svc.counts.get("rejected")
    assert not any((root / "quarantine").iterdir())
