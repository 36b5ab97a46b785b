"""Damage inside a JPEG's entropy-coded data (issue 17): Pillow hides libjpeg's "Corrupt JPEG
data" warnings and decodes what it has no data for as flat grey. Cut scans, inserted or flipped
markers and restart markers out of order are refused as damaged; sound files of every kind
(baseline, progressive, restart markers, grey, 4:2:0 and 4:4:4) still decode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from photoguard.config import MediaConfig
from photoguard.photo import decode
from photoguard.photo.decode import MediaError, decode_bytes, walk_jpeg
from photoguard.photo.formats import entropy_data_sound

CFG = MediaConfig()


def _photo_like(w: int = 240, h: int = 176, grey: bool = False) -> Image.Image:
    """A gradient with noise: no flat mid-grey block anywhere (like a camera's picture)."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 // w, yy * 200 // h, (xx + yy) * 100 // (w + h) + 60], axis=-1)
    px = np.clip(base + rng.integers(-25, 26, (h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(px, "RGB")
    return im.convert("L") if grey else im


def _jpeg(*, progressive: bool = False, restart: int = 0, grey: bool = False, subsampling: int = 2) -> bytes:
    buf = io.BytesIO()
    kw: dict[str, object] = {"restart_marker_blocks": restart} if restart else {}
    _photo_like(grey=grey).save(buf, "JPEG", quality=90, progressive=progressive, subsampling=subsampling, **kw)
    return buf.getvalue()


def _reason(data: bytes) -> str:
    with pytest.raises(MediaError) as exc:
        decode_bytes(data, CFG)
    return exc.value.reason


def _scan_bounds(data: bytes, which: int = 0) -> tuple[int, int]:
    """(first entropy byte, end) of scan number ``which``."""
    segs = walk_jpeg(data).segments
    k = [i for i, s in enumerate(segs) if s.marker == 0xDA][which]
    sos = segs[k]
    start = sos.offset + 4 + len(sos.payload)
    return start, segs[k + 1].offset


KINDS = {
    "baseline 4:2:0": {},
    "baseline 4:4:4": {"subsampling": 0},
    "baseline grey": {"grey": True},
    "baseline restart": {"restart": 3},
    "progressive": {"progressive": True},
    "progressive restart": {"progressive": True, "restart": 2},
}


@pytest.mark.parametrize("kind", KINDS)
def test_sound_jpegs_of_every_kind_decode(kind: str) -> None:
    data = _jpeg(**KINDS[kind])  # type: ignore[arg-type]
    assert entropy_data_sound(data, walk_jpeg(data))
    assert decode_bytes(data, CFG).pixels.shape[:2] == (176, 240)


@pytest.mark.parametrize("kind", KINDS)
def test_a_scan_cut_short_and_closed_is_refused(kind: str) -> None:
    data = _jpeg(**KINDS[kind])  # type: ignore[arg-type]
    start, end = _scan_bounds(data)
    cut = data[: start + (end - start) // 3] + b"\xff\xd9"  # the upload ends early, an EOI glued on
    assert "damaged" in _reason(cut)


@pytest.mark.parametrize("marker", [0xC0, 0xD8, 0x01, 0xD5])
def test_a_marker_inserted_in_the_scan_is_refused(marker: int) -> None:
    data = _jpeg()
    start, end = _scan_bounds(data)
    mid = start + (end - start) // 2
    while data[mid - 1] == 0xFF:  # not inside a stuffed FF00
        mid += 1
    bad = data[:mid] + bytes([0xFF, marker]) + data[mid:]
    assert "damaged" in _reason(bad)


def test_restart_markers_out_of_order_are_refused() -> None:
    data = _jpeg(restart=3)
    start, end = _scan_bounds(data)
    first = data.index(b"\xff\xd1", start, end)  # RST1 becomes RST4
    bad = data[:first] + b"\xff\xd4" + data[first + 2 :]
    assert not entropy_data_sound(bad, walk_jpeg(bad))
    assert "damaged" in _reason(bad)


def test_a_missing_restart_interval_is_refused() -> None:
    data = _jpeg(restart=3)
    segs = walk_jpeg(data).segments
    dri = next(s for s in segs if s.marker == 0xDD)
    bad = data[: dri.offset] + data[dri.offset + 6 :]  # restart markers without an interval
    assert "damaged" in _reason(bad)


def test_a_restart_segment_dropped_is_refused() -> None:
    data = _jpeg(restart=3)
    start, end = _scan_bounds(data)
    # drop everything from RST2 to just before RST3 and renumber the rest: the count is short
    r2 = data.index(b"\xff\xd2", start, end)
    r3 = data.index(b"\xff\xd3", start, end)
    body = bytearray(data[:r2] + data[r3:])
    seq = 2
    for k in range(r2, len(body) - 1):
        if body[k] == 0xFF and 0xD0 <= body[k + 1] <= 0xD7:
            body[k + 1] = 0xD0 + seq % 8
            seq += 1
    assert "damaged" in _reason(bytes(body))


def test_a_stuffed_byte_flipped_into_a_marker_is_refused() -> None:
    data = _jpeg()
    start, end = _scan_bounds(data)
    k = data.index(b"\xff\x00", start, end)
    bad = data[: k + 1] + b"\x01" + data[k + 2 :]  # FF00 -> FF01 (TEM): not allowed in a scan
    assert "damaged" in _reason(bad)


def test_one_trailing_restart_marker_before_the_end_is_tolerated() -> None:
    data = _jpeg(restart=3)
    start, end = _scan_bounds(data)
    seen = len([k for k in range(start, end - 1) if data[k] == 0xFF and 0xD0 <= data[k + 1] <= 0xD7])
    extra = data[:end] + bytes([0xFF, 0xD0 + seen % 8]) + data[end:]
    assert entropy_data_sound(extra, walk_jpeg(extra))


def _grey_collage() -> bytes:
    """A picture on a flat #808080 canvas (a collage, a class photo grid): its last block is
    exactly the grey libjpeg fills with, without any damage."""
    px = np.full((176, 240, 3), 128, np.uint8)
    px[16:120, 16:160] = np.asarray(_photo_like())[16:120, 16:160]
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_a_picture_that_is_truly_grey_in_its_last_block_is_not_refused() -> None:
    data = _grey_collage()
    assert (decode_bytes(data, CFG).pixels[-8:, -8:] == 128).all()  # the trigger fires, FFmpeg says sound
    assert not decode._ffmpeg_finds_damage(data)


def test_the_same_picture_cut_short_is_refused() -> None:
    data = _grey_collage()
    start, end = _scan_bounds(data)
    cut = data[: start + (end - start) // 2] + b"\xff\xd9"
    assert decode._ffmpeg_finds_damage(cut)
    assert "damaged" in _reason(cut)
