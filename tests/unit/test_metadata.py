"""Clean encoding and the byte-level verifier (photoguard.photo.encode). The verifier's speed is
printed by bench/encode_bench.py; leakcheck on random dirty images is integration/test_leakcheck."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from photoguard.config import MediaConfig
from photoguard.photo.decode import (
    decode_bytes,
    estimate_jpeg_quality,
    jpeg_sampling,
    parse_dqt,
    walk_jpeg,
)
from photoguard.photo.encode import encode_clean, fit_size, verify_clean, verify_decodes

CFG = MediaConfig()

RNG = np.random.default_rng(7)
PHOTO = RNG.integers(0, 255, (120, 160, 3), dtype=np.uint8)


def _clean_jpeg(pixels: np.ndarray = PHOTO, q: int = 90) -> bytes:
    return encode_clean(pixels, None, fmt="jpeg", quality=q, max_side=4000)[0]


def _insert_after_soi(data: bytes, marker: int, body: bytes) -> bytes:
    seg = bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    return data[:2] + seg + data[2:]


def _png_chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def _insert_png_chunk(data: bytes, typ: bytes, body: bytes) -> bytes:
    ihdr_end = 8 + 12 + 13
    return data[:ihdr_end] + _png_chunk(typ, body) + data[ihdr_end:]


# --------------------------------------------------------------------------------------------
# encode_clean


def test_jpeg_output_is_a_bare_jfif_stream() -> None:
    data, ext = encode_clean(PHOTO, None, fmt="jpeg", quality=88, max_side=2000)
    assert ext == "jpg"
    layout = walk_jpeg(data)
    app = [s for s in layout.segments if 0xE0 <= s.marker <= 0xEF or s.marker == 0xFE]
    assert [s.marker for s in app] == [0xE0] and app[0].payload.startswith(b"JFIF\x00")
    assert layout.eoi_end == len(data)
    assert verify_clean(data) == []


def test_auto_format_png_only_with_alpha() -> None:
    alpha = np.full(PHOTO.shape[:2], 255, np.uint8)
    alpha[:10] = 0
    assert encode_clean(PHOTO, None, fmt="auto", quality=90, max_side=500)[1] == "jpg"
    data, ext = encode_clean(PHOTO, alpha, fmt="auto", quality=90, max_side=500)
    assert ext == "png" and data.startswith(b"\x89PNG")
    assert encode_clean(PHOTO, None, fmt="png", quality=90, max_side=500)[1] == "png"


def test_png_output_has_only_structural_chunks_and_no_hidden_colour() -> None:
    alpha = np.full(PHOTO.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0
    data, _ = encode_clean(PHOTO, alpha, fmt="png", quality=90, max_side=500)
    i, chunks = 8, []
    while i < len(data):
        n, t = struct.unpack_from(">I4s", data, i)
        chunks.append(t)
        i += 12 + n
    assert set(chunks) <= {b"IHDR", b"IDAT", b"IEND"}
    with Image.open(io.BytesIO(data)) as im:
        rgba = np.asarray(im.convert("RGBA"))
    # colour under fully transparent pixels is gone (it could hold an unredacted face)
    assert (rgba[:, :40, :3] == 0).all() and (rgba[:, :40, 3] == 0).all()
    assert np.array_equal(rgba[:, 40:, :3], PHOTO[:, 40:])


def test_jpeg_with_alpha_is_flattened_on_white() -> None:
    alpha = np.zeros(PHOTO.shape[:2], np.uint8)
    data, _ = encode_clean(PHOTO, alpha, fmt="jpeg", quality=95, max_side=500)
    with Image.open(io.BytesIO(data)) as im:
        assert np.asarray(im.convert("RGB")).min() > 245


@pytest.mark.parametrize(
    ("size", "max_side", "want"),
    [((4000, 3000), 2000, (2000, 1500)), ((3000, 4000), 1080, (810, 1080)), ((640, 480), 2000, (640, 480))],
)
def test_resize_longest_side_never_upscale(size: tuple[int, int], max_side: int, want: tuple[int, int]) -> None:
    assert fit_size(*size, max_side) == want
    w, h = size
    px = np.zeros((h // 10, w // 10, 3), np.uint8)
    data, _ = encode_clean(px, None, fmt="jpeg", quality=80, max_side=max_side // 10)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == fit_size(w // 10, h // 10, max_side // 10)


def test_downscale_is_area_averaged_not_aliased() -> None:
    stripes = np.zeros((400, 400, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes alias badly with nearest neighbour
    data, _ = encode_clean(stripes, None, fmt="png", quality=90, max_side=100)
    with Image.open(io.BytesIO(data)) as im:
        small = np.asarray(im.convert("L"), np.float64)
    assert abs(small.mean() - 127.5) < 3 and small.std() < 3


@pytest.mark.parametrize(("q", "sampling"), [(95, (1, 1)), (85, (2, 1)), (70, (2, 2))])
def test_quality_and_chroma_subsampling(q: int, sampling: tuple[int, int]) -> None:
    data = _clean_jpeg(q=q)
    layout = walk_jpeg(data)
    assert estimate_jpeg_quality(parse_dqt(layout)) == q
    samp = jpeg_sampling(layout)
    assert samp is not None and samp[:2] == sampling


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError):
        encode_clean(PHOTO.astype(np.float32), None, fmt="jpeg", quality=90, max_side=100)
    with pytest.raises(ValueError):
        encode_clean(PHOTO, np.zeros((3, 3), np.uint8), fmt="png", quality=90, max_side=100)
    with pytest.raises(ValueError):
        encode_clean(PHOTO, None, fmt="gif", quality=90, max_side=100)


def test_decode_encode_roundtrip_keeps_the_picture() -> None:
    smooth = np.zeros((90, 120, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 120, dtype=np.uint8)[None, :]
    smooth[..., 1] = np.linspace(0, 255, 90, dtype=np.uint8)[:, None]
    data, _ = encode_clean(smooth, None, fmt="jpeg", quality=92, max_side=1000)
    back = decode_bytes(data, CFG)
    assert back.jpeg_quality == 92
    assert float(np.abs(back.pixels.astype(int) - smooth.astype(int)).mean()) < 2


# --------------------------------------------------------------------------------------------
# verify_clean finds every kind of leftover


def test_verify_clean_accepts_clean_outputs() -> None:
    assert verify_clean(_clean_jpeg()) == []
    assert verify_clean(encode_clean(PHOTO, None, fmt="png", quality=90, max_side=500)[0]) == []


@pytest.mark.parametrize(
    ("marker", "body", "expect"),
    [
        (0xE1, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00", "APP1"),
        (0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>", "APP1"),
        (0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x00", "APP13"),
        (0xFE, b"Emma de Vries, groep 7", "comment"),
        (0xEC, b"Ducky\x00\x01", "APP12"),
        (0xE2, b"MPF\x00II*\x00", "APP2"),
        (0xEE, b"Adobe\x00d\x00\x00\x00\x00\x01", "APP14"),
        (0xE0, b"JFXX\x00\x10" + bytes(20), "APP0"),
    ],
)
def test_verify_clean_flags_metadata_segments(marker: int, body: bytes, expect: str) -> None:
    problems = verify_clean(_insert_after_soi(_clean_jpeg(), marker, body))
    assert any(expect in p for p in problems), problems


def test_verify_clean_flags_non_srgb_icc_but_not_srgb() -> None:
    from PIL import ImageCms

    built_in = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(PHOTO).save(buf, "JPEG", icc_profile=built_in)
    problems = verify_clean(buf.getvalue())
    assert any("ICC" in p for p in problems), problems  # 'sRGB built-in' is a generated profile


def test_verify_clean_flags_trailers_thumbnails_and_frames() -> None:
    clean = _clean_jpeg()
    assert any("after end" in p for p in verify_clean(clean + b"AFCP trailer"))
    assert any("embedded JPEG" in p for p in verify_clean(clean + _clean_jpeg(PHOTO[:8, :8])))
    jfif_thumb = bytearray(clean)
    app0 = walk_jpeg(clean).segments[0]
    jfif_thumb[app0.offset + 4 + 12] = 1  # Xthumbnail = 1
    assert any("thumbnail" in p for p in verify_clean(bytes(jfif_thumb)))
    buf = io.BytesIO()
    Image.fromarray(PHOTO).save(buf, "MPO", save_all=True, append_images=[Image.fromarray(PHOTO)])
    problems = verify_clean(buf.getvalue())
    assert problems and any("MPF" in p or "frames" in p or "MPO" in p for p in problems)


def test_verify_clean_flags_undecodable_and_foreign_files() -> None:
    clean = _clean_jpeg()
    assert verify_decodes(clean) == []
    sos = next(s for s in walk_jpeg(clean).segments if s.marker == 0xDA)
    bad_table = bytearray(clean)
    bad_table[sos.offset + 6] = 0x33  # first component uses Huffman tables that do not exist
    assert verify_decodes(bytes(bad_table)) != []
    no_sof = bytearray(clean)
    sof = next(s for s in walk_jpeg(clean).segments if s.marker == 0xC0)
    no_sof[sof.offset + 1] = 0xC7  # lossless differential frame: not a photo we write
    assert verify_clean(bytes(no_sof)) != []
    assert verify_clean(b"GIF89a....") == ["not a JPEG or PNG file"]
    assert verify_clean(b"") == ["not a JPEG or PNG file"]
    webp = io.BytesIO()
    Image.fromarray(PHOTO).save(webp, "WEBP")
    assert verify_clean(webp.getvalue()) != []


@pytest.mark.parametrize(
    ("typ", "body"),
    [
        (b"tEXt", b"Author\x00Emma de Vries"),
        (b"zTXt", b"Comment\x00\x00" + zlib.compress(b"groep 7")),
        (b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta/>"),
        (b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x00"),
        (b"tIME", b"\x07\xea\x0b\x15\x0a\x00\x00"),
        (b"iCCP", b"Emma's monitor\x00\x00" + zlib.compress(b"x" * 200)),
        (b"prVW", b"preview"),
    ],
)
def test_verify_clean_flags_png_chunks(typ: bytes, body: bytes) -> None:
    clean = encode_clean(PHOTO, None, fmt="png", quality=90, max_side=500)[0]
    problems = verify_clean(_insert_png_chunk(clean, typ, body))
    assert any(typ.decode() in p for p in problems), problems


def test_verify_clean_flags_png_trailer_and_bad_crc() -> None:
    clean = encode_clean(PHOTO, None, fmt="png", quality=90, max_side=500)[0]
    assert any("after IEND" in p for p in verify_clean(clean + b"secret"))
    bad = bytearray(clean)
    bad[30] ^= 0xFF
    assert verify_clean(bytes(bad)) != []


def test_problems_never_quote_segment_content() -> None:
    dirty = _insert_after_soi(_clean_jpeg(), 0xE5, b"Emma de Vries, Dorpsstraat 1")
    dirty = _insert_after_soi(dirty, 0xFE, b"Emma de Vries")
    problems = verify_clean(dirty)
    assert any("APP5" in p for p in problems) and any("comment" in p for p in problems)
    assert not any("Emma" in p or "Vries" in p for p in problems)


def test_optimised_huffman_tables_give_a_smaller_clean_file_of_the_same_image() -> None:
    plain, _ = encode_clean(PHOTO, None, fmt="jpeg", quality=90, max_side=2000)
    tight, _ = encode_clean(PHOTO, None, fmt="jpeg", quality=90, max_side=2000, optimize=True)
    assert len(tight) < len(plain)
    assert verify_clean(tight) == [] and verify_decodes(tight) == []
    a = np.asarray(Image.open(io.BytesIO(plain)))
    b = np.asarray(Image.open(io.BytesIO(tight)))
    np.testing.assert_array_equal(a, b)  # lossless: only the entropy coding differs
