"""Hostile and damaged images through the whole pipeline (issue 17): faces drawn only in the alpha
channel are found and redacted, and the outputs carry exactly the checked pixels; scan bombs and
damaged image data are refused with a reason and the original is kept aside."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.core.records import Box, PhotoStatus
from photoguard.photo.decode import walk_jpeg
from photoguard.photo.pipeline import Pipeline
from tests.support.models import FACE_A, FACE_B
from tests.support.school import held_original, make_school

W, H = 320, 200


def _alpha_only_png() -> bytes:
    """RGB black; the alpha channel draws a textured face at FACE_A and FACE_B."""
    rng = np.random.default_rng(11)
    rgba = np.zeros((H, W, 4), np.uint8)
    for b in (FACE_A, FACE_B):
        x1, y1, x2, y2 = b.as_ints()
        rgba[y1:y2, x1:x2, 3] = rng.integers(0, 256, size=(y2 - y1, x2 - x1), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def _textured(out: Path, box: Box) -> bool:
    img = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    x1, y1, x2, y2 = box.as_ints()
    return float(img[y1:y2, x1:x2].std()) > 40


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    return make_school(tmp_path)


def test_faces_only_in_alpha_are_redacted_and_outputs_have_no_alpha(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    # one public channel with format 'auto': a transparent source gives a PNG, flattened
    chans = pipe.settings.channels
    site = next(i for i, c in enumerate(chans) if c.name == "website")
    chans[site] = chans[site].model_copy(update={"format": "auto"})
    src = root / "inbox" / "juf-anne" / "logo.png"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(_alpha_only_png())
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert [f.box for f in res.faces] == [FACE_A, FACE_B]
    for ch, rel in res.outputs.items():
        out = root / rel
        with Image.open(out) as im:
            assert im.mode == "RGB", f"{ch}: an alpha channel left the pipeline"
            assert im.format == ("PNG" if ch == "website" else "JPEG")
        # Emma (FACE_A) may be shown in the closed channels only; the stranger nowhere
        assert _textured(out, FACE_A) is (ch in ("newsletter", "parro", "guide")), ch
        assert not _textured(out, FACE_B), ch
        # the background a viewer saw (white) is what was published
        assert np.asarray(Image.open(out).convert("RGB"))[:20, :20].min() >= 240


def _scan_bomb() -> bytes:
    rng = np.random.default_rng(12)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    segs = walk_jpeg(data).segments
    last, eoi = [s for s in segs if s.marker == 0xDA][-1], segs[-1].offset
    return data[:eoi] + data[last.offset : eoi] * 2000 + data[eoi:]


def _png_bad_crc() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(13).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    i = data.index(b"IDAT")
    length = struct.unpack_from(">I", data, i - 4)[0]
    data[i + 4 + length // 2] ^= 0x10  # one bit of image data
    return bytes(data)


def _png_short_idat() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    rows = zlib.compress((b"\x00" + b"\x90" * 192) * 8)  # 8 of 64 rows
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _photo_jpeg(**kw: object) -> bytes:
    rng = np.random.default_rng(14)
    yy, xx = np.mgrid[0:H, 0:W]
    px = np.stack([xx * 200 // W, yy * 200 // H, (xx + yy) * 100 // (W + H) + 60], axis=-1)
    px = np.clip(px + rng.integers(-25, 26, (H, W, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _scan_data(data: bytes) -> tuple[int, int]:
    segs = walk_jpeg(data).segments
    k = next(i for i, s in enumerate(segs) if s.marker == 0xDA)
    return segs[k].offset + 4 + len(segs[k].payload), segs[k + 1].offset


def _jpeg_cut_scan() -> bytes:
    """The scan cut at half and an end marker glued on: libjpeg would fill the rest with grey."""
    data = _photo_jpeg()
    start, end = _scan_data(data)
    return data[: (start + end) // 2] + b"\xff\xd9"


def _jpeg_bad_restart() -> bytes:
    """A restart marker out of its sequence in the middle of the scan."""
    data = _photo_jpeg(restart_marker_blocks=4)
    start, end = _scan_data(data)
    k = data.index(b"\xff\xd2", start, end)
    return data[: k + 1] + b"\xd6" + data[k + 2 :]


def _jpeg_flipped_bytes() -> bytes:
    """Bytes of the scan overwritten, the way a bad SD card sector does: the scan runs into the
    end marker early."""
    data = _photo_jpeg()
    start, end = _scan_data(data)
    mid = (start + end) // 2
    return data[:mid] + b"\xff\xc4" + data[mid + 2 :]


def test_a_sound_photo_like_jpeg_is_published(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    path = root / "inbox" / "x" / "ok.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_photo_jpeg(restart_marker_blocks=4))
    res = pipe.process_path(path)
    assert res.status is PhotoStatus.PUBLISHED, res.reason


@pytest.mark.parametrize(
    ("name", "make", "reason_part"),
    [
        ("bomb.jpg", _scan_bomb, "too many scans"),
        ("cut.jpg", _jpeg_cut_scan, "damaged"),
        ("restart.jpg", _jpeg_bad_restart, "damaged"),
        ("flipped.jpg", _jpeg_flipped_bytes, "damaged"),
        ("crc.png", _png_bad_crc, "damaged"),
        ("short.png", _png_short_idat, "damaged"),
    ],
)
def test_bombs_and_damaged_data_are_refused_and_kept(
    school: tuple[Path, Pipeline], name: str, make: object, reason_part: str
) -> None:
    root, pipe = school
    content = make()  # type: ignore[operator]
    path = root / "inbox" / "x" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    res = pipe.process_path(path)
    assert res.status is PhotoStatus.REJECTED
    assert res.reason and reason_part in res.reason
    assert res.outputs == {} and not any(p.is_file() for p in (root / "outbox").rglob("*"))
    assert held_original(root, str(res.quarantine_id)) == content


def test_a_decode_past_the_deadline_is_refused_and_the_next_photo_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photoguard.photo import decode

    root, pipe = make_school(tmp_path, config={"max_decode_seconds": "1.0"})
    assert pipe.settings.media.max_decode_seconds == 1.0
    heavy, normal = _photo_jpeg(), _photo_jpeg(progressive=True)
    real = decode._decode

    def slow_for_heavy(data: bytes, cfg: object, sidecar: str | None, cancelled: threading.Event) -> object:
        if data == heavy:
            cancelled.wait(30)  # stands in for a file that keeps libjpeg busy for minutes
            raise decode._Cancelled
        return real(data, cfg, sidecar, cancelled)  # type: ignore[arg-type]

    monkeypatch.setattr(decode, "_decode", slow_for_heavy)
    inbox = root / "inbox" / "x"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "heavy.jpg").write_bytes(heavy)
    (inbox / "normal.jpg").write_bytes(normal)
    first = pipe.process_path(inbox / "heavy.jpg")
    assert first.status is PhotoStatus.REJECTED
    assert first.reason and "too heavy" in first.reason
    assert held_original(root, str(first.quarantine_id)) == heavy
    second = pipe.process_path(inbox / "normal.jpg")
    assert second.status is PhotoStatus.PUBLISHED, second.reason
