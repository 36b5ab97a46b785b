"""Tests for photoguard.media: decoding, limits, orientation, colour, captions."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from photoguard.config import MediaConfig
from photoguard.photo.decode import (
    DecodedImage,
    MediaError,
    decode_bytes,
    decode_file,
    estimate_jpeg_quality,
    parse_dqt,
    walk_jpeg,
)

CFG = MediaConfig()

# Four coloured quadrants: every one of the 8 orientations gives a different picture.
QUAD = np.zeros((48, 64, 3), np.uint8)
QUAD[:24, :32] = (255, 0, 0)
QUAD[:24, 32:] = (0, 255, 0)
QUAD[24:, :32] = (0, 0, 255)
QUAD[24:, 32:] = (255, 255, 0)
QUAD[:8, :8] = (255, 255, 255)


def _upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The display form of stored pixels under EXIF ``orientation`` (numpy, not Pillow)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](arr))


def _encode(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
    Image.fromarray(arr, mode).save(buf, fmt, **kw)
    return buf.getvalue()


def _exif(**tags: object) -> bytes:
    ex = Image.Exif()
    ids = {"Orientation": 0x0112, "ImageDescription": 0x010E, "XPComment": 0x9C9C}
    sub_ids = {"DateTimeOriginal": 0x9003, "UserComment": 0x9286}
    for k, v in tags.items():
        if k in ids:
            ex[ids[k]] = v
    sub = {sub_ids[k]: v for k, v in tags.items() if k in sub_ids}
    if sub:
        ex[0x8769] = sub
    return ex.tobytes()


def _close(a: np.ndarray, b: np.ndarray, tol: float = 12.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(int) - b.astype(int)).mean()) < tol


def _reason(data: bytes, cfg: MediaConfig = CFG) -> str:
    with pytest.raises(MediaError) as info:
        decode_bytes(data, cfg)
    assert info.value.reason and info.value.reason == str(info.value)
    return info.value.reason


# --------------------------------------------------------------------------------------------
# Refusals


def test_empty_file_is_refused() -> None:
    assert "empty" in _reason(b"")


def test_text_named_jpg_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "IMG_0001.jpg"
    p.write_text("<html>not a photo</html>")
    with pytest.raises(MediaError) as info:
        decode_file(p, CFG)
    assert "not a supported image" in info.value.reason
    assert "IMG_0001" not in info.value.reason


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "AVIF"])
def test_unsupported_formats_are_refused(fmt: str) -> None:
    data = _encode(QUAD, fmt)
    reason = _reason(data)
    assert "not supported" in reason or "not a supported image" in reason


def test_animated_gif_is_refused_clearly() -> None:
    frames = [Image.fromarray(QUAD), Image.fromarray(255 - QUAD)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert "GIF" in _reason(buf.getvalue())


def test_too_large_file_is_refused(tmp_path: Path) -> None:
    cfg = MediaConfig(max_bytes=1_000_000)
    p = tmp_path / "big.jpg"
    p.write_bytes(b"\xff\xd8\xff" + bytes(1_000_001))
    with pytest.raises(MediaError) as info:
        decode_file(p, cfg)
    assert "too large" in info.value.reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_truncated_files_are_refused(fmt: str) -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = _encode(noisy, fmt, quality=90)
    decode_bytes(data, CFG)  # the whole file is fine
    for cut in (len(data) // 2, len(data) - 2):
        with pytest.raises(MediaError):
            decode_bytes(data[:cut], CFG)


def test_jpeg_missing_only_its_eoi_is_refused() -> None:
    data = _encode(QUAD, "JPEG", quality=90)
    assert data.endswith(b"\xff\xd9")
    assert "incomplete" in _reason(data[:-2])


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (3 * min(w, 100) + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_png_bomb_is_refused_from_the_header_in_little_memory() -> None:
    data = _png_header_only(20000, 20000)
    tracemalloc.start()
    reason = _reason(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "too large" in reason and "20000x20000" in reason
    assert peak < 5_000_000  # decoding the 1.2 GB of pixels was never started


def test_pillow_bomb_error_and_warning_become_media_error() -> None:
    loose = MediaConfig(max_pixels=1_000_000_000)

    def jpeg_claiming(w: int, h: int) -> bytes:  # a whole JPEG whose frame header claims w x h
        data = bytearray(_encode(QUAD, "JPEG", quality=90))
        sof = next(s for s in walk_jpeg(bytes(data)).segments if s.marker == 0xC0)
        struct.pack_into(">HH", data, sof.offset + 5, h, w)
        return bytes(data)

    # 400 MP > 2 x Image.MAX_IMAGE_PIXELS: Pillow raises DecompressionBombError
    assert "pixels" in _reason(jpeg_claiming(20000, 20000), loose)
    # 100 MP > Image.MAX_IMAGE_PIXELS: Pillow only warns; that must refuse too
    assert "pixels" in _reason(jpeg_claiming(10000, 10000), loose)


def test_jpeg_bomb_is_refused_from_the_sof_header() -> None:
    data = bytearray(_encode(QUAD, "JPEG", quality=90))
    sof = next(s for s in walk_jpeg(bytes(data)).segments if s.marker == 0xC0)
    struct.pack_into(">HH", data, sof.offset + 5, 60000, 60000)
    assert "60000x60000" in _reason(bytes(data))


def test_pixel_limit_from_config() -> None:
    cfg = MediaConfig(max_pixels=1_000_000)
    big = np.zeros((1001, 1000, 3), np.uint8)
    assert "too large" in _reason(_encode(big, "JPEG"), cfg)
    assert "too large" in _reason(_encode(big, "WEBP"), cfg)
    assert "too large" in _reason(_encode(big, "HEIF"), cfg)


def test_symlink_and_missing_file_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "a.jpg"
    real.write_bytes(_encode(QUAD, "JPEG"))
    link = tmp_path / "b.jpg"
    link.symlink_to(real)
    for p in (link, tmp_path / "missing.jpg"):
        with pytest.raises(MediaError):
            decode_file(p, CFG)


_VALID = {
    "jpeg": _encode(QUAD, "JPEG", quality=90, exif=_exif(Orientation=6)),
    "png": _encode(QUAD, "PNG"),
    "webp": _encode(QUAD, "WEBP", quality=80),
    "heif": _encode(QUAD, "HEIF", quality=80),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(_VALID)),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_corrupted_files_never_raise_anything_but_media_error(
    kind: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(_VALID[kind])
    for pos, val in edits:
        data[pos % len(data)] = val
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        img = decode_bytes(bytes(data), CFG)
    except MediaError as exc:
        assert exc.reason
        return
    assert isinstance(img, DecodedImage)
    assert img.pixels.dtype == np.uint8 and img.pixels.ndim == 3 and img.pixels.shape[2] == 3


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(MediaError):
        decode_bytes(data, CFG)


# --------------------------------------------------------------------------------------------
# Orientation


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt: str, orientation: int) -> None:
    data = _encode(QUAD, fmt, quality=95, exif=_exif(Orientation=orientation))
    img = decode_bytes(data, CFG)
    expect = _upright(QUAD, orientation)
    assert _close(img.pixels, expect), f"{fmt} orientation {orientation}"
    for other in range(1, 9):
        if other != orientation and not np.array_equal(_upright(QUAD, other), expect):
            assert not _close(img.pixels, _upright(QUAD, other))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_transforms_applied_once(orientation: int) -> None:
    """pillow-heif writes irot/imir from the EXIF Orientation *and* keeps the EXIF tag: the
    decoder must apply the transform exactly once."""
    data = _encode(QUAD, "HEIF", quality=95, exif=_exif(Orientation=orientation))
    heif = pillow_heif.open_heif(io.BytesIO(data))
    assert heif.info.get("exif")  # the EXIF travels along
    img = decode_bytes(data, CFG)
    assert _close(img.pixels, _upright(QUAD, orientation), tol=16)
    assert img.source_format == "heif"


def test_orientation_rotates_the_transparent_part_too() -> None:
    rgba = np.dstack([QUAD, np.full(QUAD.shape[:2], 255, np.uint8)])
    rgba[:10, :, 3] = 0
    data = _encode(rgba, "PNG", exif=_exif(Orientation=6))
    img = decode_bytes(data, CFG)
    assert img.transparent and img.pixels.shape == (64, 48, 3)
    assert (img.pixels[:, -10:] == 255).all()  # the clear rows, rotated, flattened over white
    assert _close(img.pixels[:, :-10], _upright(QUAD, 6)[:, :-10], 1)


# --------------------------------------------------------------------------------------------
# Frames, modes and colour


def test_animated_webp_uses_the_first_frame() -> None:
    red = np.zeros((32, 32, 3), np.uint8)
    red[...] = (255, 0, 0)
    blue = np.zeros_like(red)
    blue[...] = (0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(red).save(buf, "WEBP", save_all=True, append_images=[Image.fromarray(blue)], lossless=True)
    img = decode_bytes(buf.getvalue(), CFG)
    assert _close(img.pixels, red, 2)


def test_mpo_uses_the_first_frame() -> None:
    red = np.zeros((32, 32, 3), np.uint8)
    red[...] = (255, 0, 0)
    buf = io.BytesIO()
    Image.fromarray(red).save(buf, "MPO", save_all=True, append_images=[Image.fromarray(255 - red)], quality=95)
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    img = decode_bytes(buf.getvalue(), CFG)
    assert img.source_format == "jpeg" and _close(img.pixels, red, 4)


def test_cmyk_jpeg_adobe_inverted_is_converted() -> None:
    cmyk = Image.fromarray(QUAD).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=98)
    segs = walk_jpeg(buf.getvalue()).segments
    assert any(s.marker == 0xEE and s.payload.startswith(b"Adobe") for s in segs)
    img = decode_bytes(buf.getvalue(), CFG)
    assert _close(img.pixels, QUAD, 8)


def test_sixteen_bit_png_grey_and_rgb() -> None:
    grey = np.full((20, 30), 0x8080, np.uint16)
    ok, enc = cv2.imencode(".png", grey)
    assert ok
    img = decode_bytes(enc.tobytes(), CFG)
    assert img.pixels.shape == (20, 30, 3) and abs(int(img.pixels[0, 0, 0]) - 128) <= 1
    rgb16 = (QUAD.astype(np.uint16) * 257)[:, :, ::-1]  # cv2 writes BGR
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(rgb16))
    assert ok
    img = decode_bytes(enc.tobytes(), CFG)
    assert _close(img.pixels, QUAD, 1)


def test_palette_png_with_transparency_is_flattened_on_white() -> None:
    pal = Image.fromarray(QUAD).quantize(8)
    clear = int(np.asarray(pal)[30, 10])  # the blue quadrant's palette entry
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=clear)
    img = decode_bytes(buf.getvalue(), CFG)
    index = np.asarray(pal)
    assert img.transparent
    assert (img.pixels[index == clear] == 255).all()
    assert (img.pixels[index != clear] == np.asarray(pal.convert("RGB"))[index != clear]).all()


def test_opaque_alpha_is_dropped_and_grey_alpha_flattened() -> None:
    rgba = np.dstack([QUAD, np.full(QUAD.shape[:2], 255, np.uint8)])
    opaque = decode_bytes(_encode(rgba, "PNG"), CFG)
    assert not opaque.transparent and (opaque.pixels == QUAD).all()
    la = Image.fromarray(QUAD).convert("LA")
    la.putalpha(Image.new("L", la.size, 100))
    buf = io.BytesIO()
    la.save(buf, "PNG")
    img = decode_bytes(buf.getvalue(), CFG)
    grey = int(np.asarray(la)[0, 0, 0])
    assert img.transparent
    assert (img.pixels[0, 0] == (grey * 100 + 255 * 155 + 127) // 255).all()


def test_heic_with_alpha() -> None:
    rgba = np.dstack([QUAD, np.full(QUAD.shape[:2], 255, np.uint8)])
    rgba[:, :16, 3] = 0
    img = decode_bytes(_encode(rgba, "HEIF", quality=-1), CFG)
    assert img.transparent and img.pixels[:, :8].min() > 225  # clear columns shown over white


def _icc_profile(red: tuple[float, float, float], green: tuple[float, float, float]) -> bytes:
    """A minimal ICC v2 matrix/TRC RGB profile (gamma 2.2) with the given red/green colorants."""
    blue = (0.1431, 0.0606, 0.7141)

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v: tuple[float, float, float]) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(s15(c) for c in v)

    text = b"Swapped test RGB\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(12) + bytes(67)
    curve = b"curv" + bytes(4) + struct.pack(">I", 1) + struct.pack(">H", 0x0233) + bytes(2)
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        while (offset + len(body)) % 4:
            body += b"\x00"
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + bytes(48)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_non_srgb_icc_profile_is_converted(fmt: str) -> None:
    swapped = _icc_profile(SRGB_GREEN, SRGB_RED)  # the 'red' channel means sRGB green
    red = np.zeros((16, 16, 3), np.uint8)
    red[...] = (255, 0, 0)
    data = _encode(red, fmt, quality=98, icc_profile=swapped)
    img = decode_bytes(data, CFG)
    r, g, b = (int(v) for v in img.pixels[8, 8])
    assert g > 200 and r < 60 and b < 60, (r, g, b)


def test_srgb_like_profile_leaves_pixels_alone() -> None:
    plain = _icc_profile(SRGB_RED, SRGB_GREEN)
    data = _encode(QUAD, "PNG", icc_profile=plain)
    img = decode_bytes(data, CFG)
    assert _close(img.pixels, QUAD, 3)


def test_broken_icc_profile_is_ignored_not_fatal() -> None:
    data = _encode(QUAD, "PNG", icc_profile=b"\x00" * 200)
    assert _close(decode_bytes(data, CFG).pixels, QUAD, 1)


# --------------------------------------------------------------------------------------------
# Quality, captions, date


@pytest.mark.parametrize("q", [30, 50, 75, 85, 92, 95, 100])
def test_jpeg_quality_is_estimated_from_the_tables(q: int) -> None:
    rng = np.random.default_rng(q)
    data = _encode(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), "JPEG", quality=q)
    assert estimate_jpeg_quality(parse_dqt(walk_jpeg(data))) == q
    assert decode_bytes(data, CFG).jpeg_quality == q


def test_non_jpeg_has_no_quality() -> None:
    assert decode_bytes(_encode(QUAD, "PNG"), CFG).jpeg_quality is None


def _iptc_app13(caption: str) -> bytes:
    rec = b"\x1c\x02\x78" + struct.pack(">H", len(caption.encode())) + caption.encode()
    irb = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(rec)) + rec
    if len(irb) % 2:
        irb += b"\x00"
    body = b"Photoshop 3.0\x00" + irb
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def test_captions_from_every_source(tmp_path: Path) -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
        b'syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>'
        b'<rdf:Alt><rdf:li xml:lang="x-default">Sportdag &amp; spelletjes</rdf:li></rdf:Alt>'
        b"</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    exif = _exif(
        ImageDescription="Kerstviering",
        XPComment="Musical".encode("utf-16-le") + b"\x00\x00",
        UserComment=b"ASCII\x00\x00\x00Voorleesontbijt",
        DateTimeOriginal="2026:11:21 10:30:00",
    )
    base = _encode(QUAD, "JPEG", quality=90, exif=exif, xmp=xmp, comment=b"Schoolreis")
    data = base[:2] + _iptc_app13("Koningsspelen") + base[2:]
    p = tmp_path / "IMG_7.jpg"
    p.write_bytes(data)
    (tmp_path / "IMG_7.txt").write_text("Eerste schooldag\n", encoding="utf-8")
    img = decode_file(p, CFG)
    assert img.caption == "Eerste schooldag"  # the teacher's sidecar: the only caption published
    assert "Eerste schooldag" not in img.embedded_captions
    for want in (
        "Sportdag & spelletjes",
        "Koningsspelen",
        "Kerstviering",
        "Musical",
        "Voorleesontbijt",
        "Schoolreis",
    ):
        assert want in img.embedded_captions, (want, img.embedded_captions)
    assert img.taken_at == datetime(2026, 11, 21, 10, 30, 0)


def test_unicode_user_comment_and_sidecar_beside_full_name(tmp_path: Path) -> None:
    exif = _exif(UserComment=b"UNICODE\x00" + "Juf Anneke".encode("utf-16-le"))
    p = tmp_path / "a.heic"
    p.write_bytes(_encode(QUAD, "HEIF", quality=80, exif=exif))
    (tmp_path / "a.heic.txt").write_text("Sinterklaas", encoding="utf-8")
    img = decode_file(p, CFG)
    assert img.embedded_captions == ("Juf Anneke",) and img.caption == "Sinterklaas"


def test_camera_default_captions_are_ignored_and_no_date_without_exif() -> None:
    data = _encode(QUAD, "JPEG", exif=_exif(ImageDescription="OLYMPUS DIGITAL CAMERA         "))
    img = decode_bytes(data, CFG)
    assert img.embedded_captions == () and img.caption is None and img.taken_at is None


def test_png_text_caption_and_sidecar_argument() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "Juffendag")
    data = _encode(QUAD, "PNG", pnginfo=info)
    img = decode_bytes(data, CFG, sidecar_text="Opa en oma dag")
    assert img.caption == "Opa en oma dag" and img.embedded_captions == ("Juffendag",)


def test_pixels_are_writable_contiguous_uint8() -> None:
    img = decode_bytes(_encode(QUAD, "JPEG", exif=_exif(Orientation=8)), CFG)
    assert img.pixels.flags.writeable and img.pixels.flags.c_contiguous
    img.pixels[0, 0] = 0  # the pipeline redacts in place
