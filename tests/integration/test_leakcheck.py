"""Property: random images with random metadata come out clean, by verify_clean and by
../shared/meta/leakcheck.py (exiftool in a subprocess)."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from photoguard.config import MediaConfig
from photoguard.photo.decode import MediaError, decode_bytes
from photoguard.photo.encode import encode_clean, verify_clean
from tests.support.shared import shared_path

CFG = MediaConfig()
PHOTO = np.random.default_rng(7).integers(0, 255, (120, 160, 3), dtype=np.uint8)


def _clean_jpeg(pixels: np.ndarray = PHOTO, q: int = 90) -> bytes:
    return encode_clean(pixels, None, fmt="jpeg", quality=q, max_side=4000)[0]


def _insert_after_soi(data: bytes, marker: int, body: bytes) -> bytes:
    seg = bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    return data[:2] + seg + data[2:]


def _leakcheck(path: Path) -> dict:
    leakcheck = shared_path("meta", "leakcheck.py")
    if shutil.which("exiftool") is None:
        pytest.fail("exiftool not found: apt-get install -y libimage-exiftool-perl")
    proc = subprocess.run([sys.executable, str(leakcheck), "--json", str(path)], capture_output=True, text=True)
    result: dict = json.loads(proc.stdout)[0]
    result["rc"] = proc.returncode
    return result


_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x24F), min_size=1, max_size=40)


@st.composite
def dirty_images(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(["JPEG", "PNG", "WEBP", "HEIF"]))
    w = draw(st.integers(1, 64))
    h = draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**32 - 1))
    alpha = draw(st.booleans()) and fmt != "JPEG"
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 255, (h, w, 4 if alpha else 3), dtype=np.uint8)
    im = Image.fromarray(px, "RGBA" if alpha else "RGB")
    exif = Image.Exif()
    exif[0x010E] = draw(_TEXT)  # ImageDescription
    exif[0x013B] = draw(_TEXT)  # Artist
    exif[0x0112] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        exif[0x8825] = {1: "N", 2: (52.0, 5.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.25)}  # GPS
    kw: dict = {"exif": exif.tobytes()}
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
        'syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="'
        + draw(st.text(alphabet="abcdefghij klm", min_size=1, max_size=20))
        + '"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    if fmt in ("JPEG", "WEBP", "HEIF") and draw(st.booleans()):
        kw["xmp"] = xmp
    if fmt == "JPEG":
        kw["comment"] = draw(_TEXT).encode("utf-8")
        kw["quality"] = draw(st.integers(40, 100))
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", draw(_TEXT))
        info.add_itxt("Comment", draw(_TEXT), zip=draw(st.booleans()))
        kw["pnginfo"] = info
    if fmt == "HEIF":
        kw["quality"] = 80
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=dirty_images(), channel_side=st.sampled_from([16, 1080]), fmt=st.sampled_from(["jpeg", "auto"]))
def test_random_dirty_images_come_out_clean(data: bytes, channel_side: int, fmt: str, tmp_path: Path) -> None:
    try:
        img = decode_bytes(data, CFG)
    except MediaError as exc:  # pragma: no cover - every generated file is valid
        pytest.fail(f"valid input refused: {exc.reason}")
    out, ext = encode_clean(img.pixels, None, fmt=fmt, quality=img.jpeg_quality or 92, max_side=channel_side)
    assert verify_clean(out) == []
    path = tmp_path / f"out.{ext}"
    path.write_bytes(out)
    result = _leakcheck(path)
    leaks = [f for f in result["findings"] if f["level"] != "INFO"]
    assert result["rc"] == 0 and leaks == []


def test_leakcheck_catches_a_dirty_file(tmp_path: Path) -> None:
    """The property test above could not fail if leakcheck never reported anything."""
    path = tmp_path / "dirty.jpg"
    path.write_bytes(_insert_after_soi(_clean_jpeg(), 0xFE, b"Emma de Vries"))
    assert _leakcheck(path)["rc"] == 1
