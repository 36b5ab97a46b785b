"""Hostile and damaged image files (issue 17): content that only shows through transparency,
decode bombs made of scans, segments or chunks, and damaged image data."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from photoguard.config import MediaConfig
from photoguard.core.records import Box
from photoguard.photo.decode import MediaError, decode_bytes, walk_jpeg
from photoguard.photo.formats import (
    MAX_JPEG_SEGMENTS,
    MAX_PNG_CHUNKS,
    Completeness,
    completeness,
    png_raw_size,
)
from tests.support.models import FACE_A, FACE_B, FakeDetector

CFG = MediaConfig()
W, H = 320, 200


def _reason(data: bytes, cfg: MediaConfig = CFG) -> str:
    with pytest.raises(MediaError) as exc:
        decode_bytes(data, cfg)
    return exc.value.reason


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(ihdr: bytes, raw: bytes, *extra: bytes) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(extra)
        + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    )


def _face_mask(seed: int = 3) -> np.ndarray:
    """(H, W) uint8: 0 outside the fake detector's boxes, a strong texture inside them."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((H, W), np.uint8)
    for b in (FACE_A, FACE_B):
        x1, y1, x2, y2 = b.as_ints()
        mask[y1:y2, x1:x2] = rng.integers(0, 256, size=(y2 - y1, x2 - x1), dtype=np.uint8)
    return mask


def _faces_seen(pixels: np.ndarray) -> list[Box]:
    return [d.box for d in FakeDetector([FACE_A, FACE_B]).detect(pixels)]


# --------------------------------------------------------------------------------------------
# Content that only shows through transparency


def _alpha_only(fmt: str) -> bytes:
    """RGB black everywhere; the alpha channel draws the faces (a viewer shows them over white)."""
    alpha = _face_mask()
    buf = io.BytesIO()
    if fmt == "LA":
        Image.fromarray(np.dstack([np.zeros_like(alpha), alpha]), "LA").save(buf, "PNG")
    elif fmt == "PNG":
        Image.fromarray(np.dstack([np.zeros((H, W, 3), np.uint8), alpha]), "RGBA").save(buf, "PNG")
    elif fmt == "WEBP":
        Image.fromarray(np.dstack([np.zeros((H, W, 3), np.uint8), alpha]), "RGBA").save(buf, "WEBP", lossless=True)
    elif fmt == "HEIF":
        Image.fromarray(np.dstack([np.zeros((H, W, 3), np.uint8), alpha]), "RGBA").save(buf, "HEIF", quality=-1)
    elif fmt == "palette":  # 256 black palette entries whose tRNS alpha is their index
        pal = Image.fromarray(alpha, "L").convert("P")
        pal.putpalette([0, 0, 0] * 256)
        pal.save(buf, "PNG", transparency=bytes(range(256)))
    else:
        raise AssertionError(fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "LA", "palette", "WEBP", "HEIF"])
def test_faces_drawn_only_in_alpha_are_seen_by_the_detector(fmt: str) -> None:
    data = _alpha_only(fmt)
    plain = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))[..., :3]
    assert _faces_seen(plain) == []  # the colour alone hides the faces: only alpha draws them
    img = decode_bytes(data, CFG)
    assert img.transparent
    assert _faces_seen(img.pixels) == [FACE_A, FACE_B]
    # what a viewer shows: the clear background is white
    assert (img.pixels[:30, :30] >= 250).all()


def _colour_key_faces() -> np.ndarray:
    """True inside the faces where a pixel is opaque (a binary texture), False elsewhere."""
    return _face_mask() >= 128


def test_faces_drawn_by_a_16_bit_grey_colour_key_are_seen() -> None:
    opaque = _colour_key_faces()
    grey = np.where(opaque, 1, 0).astype(">u2")  # 0 is the tRNS key: clear; 1 is near black
    raw = b"".join(b"\x00" + row.tobytes() for row in grey)
    data = _png(struct.pack(">IIBBBBB", W, H, 16, 0, 0, 0, 0), raw, _chunk(b"tRNS", struct.pack(">H", 0)))
    img = decode_bytes(data, CFG)
    assert img.transparent
    assert _faces_seen(img.pixels) == [FACE_A, FACE_B]
    assert (img.pixels[~opaque] == 255).all() and (img.pixels[opaque] == 0).all()


def test_faces_drawn_by_an_rgb_colour_key_are_seen() -> None:
    opaque = _colour_key_faces()
    rgb = np.where(opaque[..., None], 1, 0).astype(np.uint8).repeat(3, axis=2)
    raw = b"".join(b"\x00" + row.tobytes() for row in rgb)
    data = _png(struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0), raw, _chunk(b"tRNS", b"\x00\x00" * 3))
    img = decode_bytes(data, CFG)
    assert img.transparent and _faces_seen(img.pixels) == [FACE_A, FACE_B]


def test_colour_under_clear_pixels_is_not_published() -> None:
    """The reverse: a face in the colour of fully clear pixels is invisible, and stays so."""
    rng = np.random.default_rng(4)
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    img = decode_bytes(buf.getvalue(), CFG)
    assert (img.pixels == 255).all()


# --------------------------------------------------------------------------------------------
# Decode bombs: scans, segments, chunks


def _progressive(size: int = 64) -> bytes:
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=90, progressive=True
    )
    return buf.getvalue()


def _with_scans(data: bytes, copies: int) -> bytes:
    """``data`` with its last scan (header and entropy-coded data) repeated ``copies`` times."""
    segs = walk_jpeg(data).segments
    last = [s for s in segs if s.marker == 0xDA][-1]
    eoi = segs[-1].offset
    return data[: eoi] + data[last.offset : eoi] * copies + data[eoi:]


def test_a_normal_progressive_jpeg_decodes() -> None:
    data = _progressive()
    scans = sum(s.marker == 0xDA for s in walk_jpeg(data).segments)
    assert 2 < scans <= CFG.max_jpeg_scans
    assert decode_bytes(data, CFG).pixels.shape == (64, 64, 3)


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding() -> None:
    bomb = _with_scans(_progressive(), 3000)
    assert len(bomb) < 2_000_000
    assert completeness(bomb) is Completeness.COMPLETE
    reason = _reason(bomb)
    assert "too many scans" in reason and "limit is 100" in reason


def test_the_scan_limit_comes_from_the_config() -> None:
    data = _progressive()
    scans = sum(s.marker == 0xDA for s in walk_jpeg(data).segments)
    assert decode_bytes(data, MediaConfig(max_jpeg_scans=scans)).width == 64
    assert "too many scans" in _reason(data, MediaConfig(max_jpeg_scans=scans - 1))


def test_a_jpeg_of_tens_of_thousands_of_segments_is_refused() -> None:
    data = _progressive(16)
    comments = b"\xff\xfe\x00\x02" * (MAX_JPEG_SEGMENTS + 10)
    bomb = data[:2] + comments + data[2:]
    # judged complete (more bytes cannot save it), then refused with a reason
    assert completeness(bomb) is Completeness.COMPLETE
    assert "too many parts" in _reason(bomb)


def test_a_png_of_too_many_chunks_is_refused() -> None:
    raw = b"\x00" + b"\x00" * 3 * 4
    many = _chunk(b"teXt", b"") * (MAX_PNG_CHUNKS + 1)
    bomb = _png(struct.pack(">IIBBBBB", 4, 1, 8, 2, 0, 0, 0), raw, many)
    assert completeness(bomb) is Completeness.COMPLETE
    assert "too many parts" in _reason(bomb)


# --------------------------------------------------------------------------------------------
# Damaged image data


def _good_png() -> bytes:
    rng = np.random.default_rng(6)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _idat(data: bytes) -> tuple[int, int]:
    """(offset of the IDAT chunk's data, its length) of the first IDAT."""
    i = data.index(b"IDAT")
    return i + 4, struct.unpack_from(">I", data, i - 4)[0]


def _recrc(data: bytearray, start: int, length: int) -> None:
    struct.pack_into(">I", data, start + length, zlib.crc32(bytes(data[start - 4 : start + length])))


def _pillow_loads(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).load()
    except Exception:
        return False
    return True


def test_a_good_png_passes_the_damage_checks() -> None:
    assert decode_bytes(_good_png(), CFG).pixels.shape == (40, 60, 3)


def test_a_png_whose_idat_crc_does_not_match_is_refused() -> None:
    data = bytearray(_good_png())
    start, length = _idat(bytes(data))
    data[start + length] ^= 0x01  # the stored CRC only: the pixels themselves decode fine
    assert _pillow_loads(bytes(data))  # Pillow alone would publish it
    assert "damaged" in _reason(bytes(data))


def test_a_png_with_a_damaged_zlib_checksum_is_refused() -> None:
    data = bytearray(_good_png())
    start, length = _idat(bytes(data))
    data[start + length - 1] ^= 0xFF  # the zlib stream's Adler-32, chunk CRC made to match
    _recrc(data, start, length)
    assert "damaged" in _reason(bytes(data))


def test_a_png_whose_idat_holds_too_few_rows_is_refused() -> None:
    raw = b"\x00" + b"\x80" * 3 * 50  # one row of a 50x40 image
    data = _png(struct.pack(">IIBBBBB", 50, 40, 8, 2, 0, 0, 0), raw)
    assert "damaged" in _reason(data)


def test_a_png_whose_idat_holds_more_than_its_size_is_refused() -> None:
    raw = (b"\x00" + b"\x80" * 3 * 50) * 41  # one row too many for a 50x40 image
    data = _png(struct.pack(">IIBBBBB", 50, 40, 8, 2, 0, 0, 0), raw)
    assert "damaged" in _reason(data)


def test_a_png_with_a_damaged_ancillary_chunk_is_refused() -> None:
    good = _good_png()
    text = bytearray(_chunk(b"tEXt", b"Comment\x00hello"))
    text[-1] ^= 0x01
    data = good[:33] + bytes(text) + good[33:]
    assert "damaged" in _reason(data)


@pytest.mark.parametrize(("w", "h", "depth", "colour", "interlace"), [
    (1, 1, 8, 2, 0), (7, 5, 1, 0, 0), (33, 17, 16, 6, 0), (9, 9, 4, 3, 1), (1, 1, 8, 6, 1), (37, 11, 16, 4, 1),
])  # fmt: skip
def test_png_raw_size_matches_what_pillow_writes(w: int, h: int, depth: int, colour: int, interlace: int) -> None:
    mode = {(1, 0): "1", (8, 2): "RGB", (16, 6): "RGBA", (4, 3): "P", (8, 6): "RGBA", (16, 4): "LA"}
    if (depth, colour) in ((16, 6), (16, 4)):
        # Pillow writes 8-bit RGBA/LA; build the raw stream size from first principles instead
        bits = {6: 4, 4: 2}[colour] * depth
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        sizes = [((w - x + dx - 1) // dx, (h - y + dy - 1) // dy) for x, y, dx, dy in passes] if interlace else [(w, h)]
        want = sum(ph * (1 + (pw * bits + 7) // 8) for pw, ph in sizes if pw and ph)
        assert png_raw_size(w, h, depth, colour, interlace) == want
        return
    im = Image.new(mode[(depth, colour)], (w, h))
    if (depth, colour) == (4, 3):
        im.putpalette([0, 0, 0] * 16)
    buf = io.BytesIO()
    im.save(buf, "PNG", bits=4 if depth == 4 else None, interlace=interlace)  # type: ignore[arg-type]
    data = buf.getvalue()
    ihdr = data[16:29]
    start, length = _idat(data)
    raw = zlib.decompress(data[start : start + length])
    assert png_raw_size(*struct.unpack(">II", ihdr[:8]), ihdr[8], ihdr[9], ihdr[12]) == len(raw)


def test_a_jpeg_with_data_before_its_frame_header_is_refused() -> None:
    data = _progressive(16)
    segs = walk_jpeg(data).segments
    sof = next(s for s in segs if s.marker == 0xC2)
    sos = next(s for s in segs if s.marker == 0xDA)
    # the first scan moved in front of the frame header
    end = next(s.offset for s in segs if s.offset > sos.offset)
    moved = data[:sof.offset] + data[sos.offset:end] + data[sof.offset:sos.offset] + data[end:]
    assert "damaged" in _reason(moved)


def test_a_jpeg_without_image_data_is_refused() -> None:
    data = _progressive(16)
    segs = walk_jpeg(data).segments
    first_scan = next(s.offset for s in segs if s.marker == 0xDA)
    assert "damaged" in _reason(data[:first_scan] + b"\xff\xd9")
