"""Pairing a caption with its photo at intake (issue 13): a photo without a caption waits a few
settle periods for one, a caption being written restarts the settle time; and which sidecar
belongs to which photo."""

from __future__ import annotations

import os
from pathlib import Path

from photoguard.photo import ingest
from photoguard.service.intake import CAPTION_SETTLE_FACTOR, Entry, Verdict, judge
from tests.support.photos import photo_bytes

SETTLE = 1.0


def _judge(entry: Entry, path: Path, now: float) -> Verdict:
    return judge(
        entry, path, os.lstat(path), now, settle=SETTLE, incomplete_wait=900.0, paused=False, max_bytes=10**8
    )


def test_a_photo_without_a_caption_waits_for_one_then_goes(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_1.jpg"
    photo.write_bytes(photo_bytes(seed=1))
    entry = Entry(first_seen=0.0, last_event=0.0)
    assert _judge(entry, photo, 0.0) is Verdict.WAIT
    assert _judge(entry, photo, 2 * SETTLE) is Verdict.WAIT  # settled, but a caption may still come
    assert _judge(entry, photo, CAPTION_SETTLE_FACTOR * SETTLE - 0.1) is Verdict.WAIT
    assert _judge(entry, photo, CAPTION_SETTLE_FACTOR * SETTLE) is Verdict.READY


def test_a_caption_three_seconds_late_is_waited_for(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_2.jpg"
    photo.write_bytes(photo_bytes(seed=2))
    entry = Entry(first_seen=0.0, last_event=0.0)
    assert _judge(entry, photo, 0.0) is Verdict.WAIT
    assert _judge(entry, photo, 2.0) is Verdict.WAIT
    (tmp_path / "IMG_2.txt").write_text("Sportdag", encoding="utf-8")
    assert _judge(entry, photo, 3.0) is Verdict.WAIT  # the caption appeared: settle again
    assert _judge(entry, photo, 3.0 + SETTLE / 2) is Verdict.WAIT
    assert _judge(entry, photo, 3.0 + SETTLE) is Verdict.READY
    assert ingest.read_sidecar(photo) == "Sportdag"


def test_a_photo_whose_caption_came_first_goes_after_the_usual_settle_time(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_3.jpg"
    (tmp_path / "IMG_3.jpg.txt").write_text("Kerstviering", encoding="utf-8")
    photo.write_bytes(photo_bytes(seed=3))
    entry = Entry(first_seen=0.0, last_event=0.0)
    assert _judge(entry, photo, 0.0) is Verdict.WAIT
    assert _judge(entry, photo, SETTLE) is Verdict.READY


def test_which_files_pair_with_a_caption(tmp_path: Path) -> None:
    for name in ("IMG_1.jpg", "IMG_1.heic", "IMG_1.jpg.part", "IMG_10.jpg", "IMG_2.jpg", "IMG_1.txt", "IMG_2.jpg.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in ingest.photo_partners(tmp_path / "IMG_1.txt")] == ["IMG_1.heic", "IMG_1.jpg"]
    assert [p.name for p in ingest.photo_partners(tmp_path / "IMG_2.jpg.txt")] == ["IMG_2.jpg"]
    (tmp_path / "IMG_2.jpg").unlink()
    assert ingest.photo_partners(tmp_path / "IMG_2.jpg.txt") == []


def test_retire_sidecar_only_removes_the_caption_that_was_read(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_4.jpg"
    side = tmp_path / "IMG_4.txt"
    side.write_text("Eerste versie", encoding="utf-8")
    assert ingest.retire_sidecar(photo, None) is False  # nothing was read with the photo
    assert ingest.retire_sidecar(photo, "Tweede versie") is False and side.exists()
    photo.write_bytes(b"x")
    assert ingest.retire_sidecar(photo, "Eerste versie") is False, "its photo is still there"
    photo.unlink()
    assert ingest.retire_sidecar(photo, "Eerste versie") is True and not side.exists()
