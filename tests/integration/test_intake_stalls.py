"""Stalled, incomplete and oddly named uploads: never lost, processed exactly once.

Unit level: every proper prefix of a JPEG (with an EXIF thumbnail), PNG, WebP and HEIC is judged
incomplete, at every structural boundary and at random offsets. Service level (the real watch
service, real folders, fake face models): writers that stall at those boundaries and then finish
are published once; a writer that never finishes is moved to quarantine with a reason, and what
it writes afterwards lands in the quarantined file; names that are not UTF-8 are handled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from photoguard.cli.app import main
from photoguard.photo.formats import Completeness, completeness, walk_jpeg
from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import WatchService
from tests.support.photos import photo_bytes
from tests.support.school import held_original, make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(90)
CHANNELS = ("newsletter", "parro", "guide", "website", "social")
pillow_heif.register_heif_opener()


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


# -- files and their structural boundaries ----------------------------------------------------
def _pixels(seed: int) -> Image.Image:
    return Image.open(io.BytesIO(photo_bytes(seed=seed))).convert("RGB")


def _jpeg_with_thumbnail(seed: int) -> tuple[bytes, int]:
    """A JPEG whose APP1 Exif carries a thumbnail JPEG; returns (file, end of thumbnail EOI)."""
    buf = io.BytesIO()
    _pixels(seed).resize((32, 20)).save(buf, format="JPEG", quality=70)
    thumb = buf.getvalue()

    def entry(tag: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, 4, 1, value)

    ifd1 = struct.pack("<H", 2) + entry(0x0201, 44) + entry(0x0202, len(thumb)) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<HI", 0, 14) + ifd1 + thumb
    body = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    main_jpeg = photo_bytes(seed=seed)
    data = main_jpeg[:2] + app1 + main_jpeg[2:]
    return data, 2 + 4 + len(body)


def _jpeg_boundaries(data: bytes, thumb_end: int) -> list[int]:
    out = {2, thumb_end, len(data) - 2, len(data) - 1}
    for seg in walk_jpeg(data).segments:
        out.add(seg.offset)
        if seg.marker == 0xDA:  # just after the scan header (SOS), and inside the scan
            sos_end = seg.offset + 4 + len(seg.payload)
            out |= {sos_end, (sos_end + len(data)) // 2}
    return sorted(o for o in out if 0 < o < len(data))


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    _pixels(seed).save(buf, format="PNG")
    return buf.getvalue()


def _chunk_boundaries(data: bytes, start: int, little: bool) -> list[int]:
    """Offsets after each chunk header and each whole chunk (PNG: big-endian, CRC; RIFF: LE, pad)."""
    out: list[int] = [start]
    i = start
    while i + 8 <= len(data):
        # PNG: length then type; RIFF: fourcc then length
        n = struct.unpack_from("<I", data, i + 4)[0] if little else struct.unpack_from(">I", data, i)[0]
        out.append(i + 8)
        i += 8 + n + (n & 1 if little else 4)
        out.append(i)
    return sorted(o for o in set(out) if 0 < o < len(data))


def _webp(seed: int) -> bytes:
    buf = io.BytesIO()
    _pixels(seed).save(buf, format="WEBP", quality=90, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00")
    return buf.getvalue()


def _heic(seed: int) -> bytes:
    buf = io.BytesIO()
    _pixels(seed).save(buf, format="HEIF", quality=90)
    return buf.getvalue()


def _box_boundaries(data: bytes) -> list[int]:
    out: list[int] = []
    i = 0
    while i + 8 <= len(data):
        size = struct.unpack_from(">I", data, i)[0]
        out += [i + 8, i + size]
        if data[i + 4 : i + 8] == b"mdat":
            out.append(i + size // 2)
        i += size
    return sorted(o for o in set(out) if 0 < o < len(data))


def _cases(seed: int) -> list[tuple[str, bytes, list[int]]]:
    """(format, file, stall offsets): every structural boundary plus random offsets."""
    rng = np.random.default_rng(seed)
    jpeg, thumb_end = _jpeg_with_thumbnail(seed)
    png, webp, heic = _png(seed + 1), _webp(seed + 2), _heic(seed + 3)
    cases = [
        ("jpeg", jpeg, _jpeg_boundaries(jpeg, thumb_end)),
        ("png", png, _chunk_boundaries(png, 8, little=False)),
        ("webp", webp, _chunk_boundaries(webp, 12, little=True)),
        ("heic", heic, _box_boundaries(heic)),
    ]
    return [(k, d, sorted(set(b) | {int(x) for x in rng.integers(1, len(d), 6)})) for k, d, b in cases]


def test_the_test_files_have_the_structures_they_claim() -> None:
    jpeg, thumb_end = _jpeg_with_thumbnail(1)
    assert jpeg[thumb_end - 2 : thumb_end] == b"\xff\xd9", "the cut ends on the thumbnail's EOI"
    png = _png(2)
    assert png[-12:-4] == b"\x00\x00\x00\x00IEND"
    assert len(_chunk_boundaries(png, 8, little=False)) >= 6
    webp = _webp(3)
    assert webp[12:16] == b"VP8X" and len(_chunk_boundaries(webp, 12, little=True)) >= 5
    heic = _heic(4)
    assert [heic[o + 4 : o + 8] for o in (0, 28)] == [b"ftyp", b"meta"]


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "heic"])
def test_every_prefix_at_a_boundary_or_random_offset_is_incomplete(fmt: str) -> None:
    [(_k, data, stalls)] = [c for c in _cases(10) if c[0] == fmt]
    assert completeness(data) is Completeness.COMPLETE
    for off in stalls:
        assert completeness(data[:off]) is Completeness.INCOMPLETE, (fmt, off, len(data))
    step = max(1, len(data) // 400)  # and a dense sweep over the whole file
    for off in range(0, len(data), step):
        assert completeness(data[:off]) is Completeness.INCOMPLETE, (fmt, off, len(data))


def test_a_heic_paused_after_its_item_table_is_incomplete() -> None:
    heic = _heic(5)
    mdat = heic.index(b"mdat") - 4
    assert completeness(heic[:mdat]) is Completeness.INCOMPLETE  # ftyp + meta: boxes tile it


# -- the running service ----------------------------------------------------------------------
class Spy:
    """Counts process_path calls by the sha256 of the bytes each call saw."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.store = pipe.store
        self.settings = pipe.settings
        self.calls: list[tuple[str, bool]] = []

    def process_path(self, path: Path, **kw: Any) -> Any:
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        res = self.pipe.process_path(path, **kw)
        self.calls.append((hashlib.sha256(data).hexdigest(), res.status.value == "published"))
        return res


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[Path, Pipeline]]:
    root, pipe = make_school(tmp_path)
    yield root, pipe
    pipe.store.close()


def _service(root: Path, pipe: Any, **kw: Any) -> WatchService:
    opts: dict[str, Any] = {
        "settle_seconds": 0.2,
        "tick_seconds": 0.05,
        "heartbeat_seconds": 0.2,
        "incomplete_grace": 30.0,
        "retry_seconds": 0.3,
        "rescan_seconds": 300,
        "min_free_bytes": 0,
    }
    opts.update(kw)
    return WatchService(root, pipe.settings, pipe, **opts)


def _stalling_writer(path: Path, data: bytes, stall_at: int, stall: float) -> None:
    with open(path, "wb") as fh:
        fh.write(data[:stall_at])
        fh.flush()
        time.sleep(stall)
        fh.write(data[stall_at:])


def _live_outputs(pipe: Pipeline) -> Counter[str]:
    rows = pipe.store.query("SELECT source_sha256 FROM outputs WHERE withdrawn_at IS NULL")
    return Counter(str(r["source_sha256"]) for r in rows)


def test_writers_stalling_at_every_boundary_are_published_exactly_once(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    spy = Spy(pipe)
    svc = _service(root, spy)
    uploads: list[tuple[Path, bytes, int]] = []
    for k, (fmt, _data, stalls) in enumerate(_cases(20)):
        for j, off in enumerate(stalls):
            # a distinct file per writer (the same content twice would be a duplicate)
            data = next(c for c in _cases(100 + 10 * k + j) if c[0] == fmt)[1]
            off = min(off, len(data) - 1)
            uploads.append((root / "inbox" / f"juf-{fmt}" / f"IMG_{j:03d}.{fmt}", data, off))
    for path, _d, _o in uploads:
        path.parent.mkdir(parents=True, exist_ok=True)
    svc.start()
    try:
        threads = [
            threading.Thread(target=_stalling_writer, args=(p, d, o, 1.0)) for p, d, o in uploads
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wait_for(lambda: not any(p.exists() for p, _d, _o in uploads), 60), "inbox not emptied"
        assert wait_for(lambda: svc.busy() == 0, 10)
    finally:
        svc.stop()
    want = {hashlib.sha256(d).hexdigest() for _p, d, _o in uploads}
    assert len(want) == len(uploads)
    assert Counter(sha for sha, _ok in spy.calls) == Counter(want), "each upload processed exactly once"
    assert all(ok for _sha, ok in spy.calls), "every upload published, none judged half-written"
    live = _live_outputs(pipe)
    assert set(live) == want and all(n == len(CHANNELS) for n in live.values())
    assert pipe.store.one("SELECT COUNT(*) AS n FROM quarantine")["n"] == 0  # type: ignore[index]


def test_an_upload_that_stays_incomplete_is_moved_aside_and_keeps_what_comes_later(
    school: tuple[Path, Pipeline],
) -> None:
    root, pipe = school
    svc = _service(root, pipe, incomplete_grace=1.0)
    data, thumb_end = _jpeg_with_thumbnail(7)
    path = root / "inbox" / "juf-anne" / "IMG_stalled.jpg"
    path.parent.mkdir(parents=True)
    svc.start()
    try:
        fh = open(path, "wb")  # noqa: SIM115 - the writer keeps its file open across the stall
        try:
            fh.write(data[:thumb_end])
            fh.flush()
            assert wait_for(lambda: _heartbeat(root).get("incomplete", {}).get("waiting") == 1, 10)
            assert path.exists(), "an incomplete upload waits in the inbox"
            assert wait_for(lambda: not path.exists(), 15), "past the bound it is moved aside"
            fh.write(data[thumb_end:])  # the writer wakes up and finishes
        finally:
            fh.close()
        assert wait_for(lambda: svc.busy() == 0, 10)
    finally:
        svc.stop()
    partial = hashlib.sha256(data[:thumb_end]).hexdigest()
    row = pipe.store.one("SELECT id, status, reason FROM quarantine WHERE sha256=?", (partial,))
    assert row is not None and row["status"] == "rejected" and "incomplete" in row["reason"]
    qdir = root / "quarantine" / str(row["id"])
    reason = json.loads((qdir / "reason.json").read_text())
    assert "incomplete" in reason["reason"]
    assert (qdir / "original.jpg").read_bytes() == data, "nothing the writer wrote is lost"
    assert sorted(p.name for p in qdir.iterdir() if p.name.startswith("original")) == ["original.jpg"]
    assert not _live_outputs(pipe), "nothing of it is published"


def test_a_damaged_but_complete_file_is_moved_aside_not_deleted(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    svc = _service(root, pipe)
    data = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9"  # a "JPEG" that ends, with no image in it
    path = root / "inbox" / "juf-anne" / "IMG_damaged.jpg"
    path.parent.mkdir(parents=True)
    svc.start()
    try:
        path.write_bytes(data)
        assert wait_for(lambda: not path.exists(), 15)
        assert wait_for(lambda: svc.busy() == 0, 10)
    finally:
        svc.stop()
    row = pipe.store.one("SELECT id, status FROM quarantine WHERE sha256=?", (hashlib.sha256(data).hexdigest(),))
    assert row is not None and row["status"] == "rejected"
    assert held_original(root, str(row["id"])) == data


def _heartbeat(root: Path) -> dict[str, Any]:
    try:
        out = json.loads((root / "state" / "service.json").read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


# -- names that are not UTF-8 -----------------------------------------------------------------
RAW_NAME = b"IMG_\xff\xfe_Emma\xe9.jpg"  # Latin-1 bytes: not UTF-8


def test_a_name_that_is_not_utf8_is_published_once_with_its_ledger_row(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    folder = os.fsencode(root / "inbox") + b"/juf-\xe9"
    os.mkdir(folder)
    data = photo_bytes(seed=77)
    raw = folder + b"/" + RAW_NAME
    svc = _service(root, pipe)
    svc.start()
    try:
        with open(raw, "wb") as fh:
            fh.write(data)
        assert wait_for(lambda: not os.path.exists(raw), 15), "the original leaves the inbox"
        assert wait_for(lambda: svc.busy() == 0, 10)
        time.sleep(0.5)  # a retry loop would show here
    finally:
        svc.stop()
    sha = hashlib.sha256(data).hexdigest()
    row = pipe.store.one("SELECT status, stem, uploader FROM photos WHERE sha256=?", (sha,))
    assert row is not None and row["status"] == "published"
    str(row["stem"]).encode("utf-8")  # valid text in the database
    assert _live_outputs(pipe) == Counter({sha: len(CHANNELS)})
    assert svc.counts.get("errors", 0) == 0 and svc.counts.get("published") == 1


def test_process_command_on_names_that_are_not_utf8(
    school: tuple[Path, Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    root, pipe = school
    folder = os.fsencode(root / "drop")
    os.mkdir(folder)
    good, bad = folder + b"/" + RAW_NAME, folder + b"/notes_\xff.jpg"
    with open(good, "wb") as fh:
        fh.write(photo_bytes(seed=78))
    with open(bad, "wb") as fh:
        fh.write(b"not a photo")

    def factory(root_: Path, settings: Any) -> Pipeline:
        return pipe

    code = main(["--root", str(root), "process", "--json", os.fsdecode(folder)], pipeline_factory=factory)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert code == 1  # one rejected
    assert sorted(x["status"] for x in lines) == ["published", "rejected"]
    for x in lines:
        x["source"].encode("utf-8")
    assert not os.path.exists(good) and not os.path.exists(bad)
    qid = next(x["quarantine_id"] for x in lines if x["status"] == "rejected")
    assert held_original(root, qid) == b"not a photo"


def test_an_mpo_paused_after_its_first_image_is_incomplete() -> None:
    buf = io.BytesIO()
    _pixels(8).save(buf, format="MPO", save_all=True, append_images=[_pixels(9)])
    mpo = buf.getvalue()
    first_end = walk_jpeg(mpo).eoi_end
    assert first_end is not None and first_end < len(mpo)
    assert completeness(mpo) is Completeness.COMPLETE
    for off in (first_end, first_end + 2, len(mpo) - 1):
        assert completeness(mpo[:off]) is Completeness.INCOMPLETE, off
