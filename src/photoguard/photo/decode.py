"""Decode an uploaded photo into upright sRGB pixels, failing closed on anything doubtful.

What this module guarantees for :func:`decode_bytes` / :func:`decode_file`:

* Only JPEG (incl. MPO), PNG (incl. APNG), WebP and HEIF/HEIC are accepted, recognised by their
  magic bytes, never by the file name. GIF, AVIF, TIFF, BMP ... are refused.
* The pixel count is checked from the header *before* any pixel is decoded (decompression bombs);
  Pillow's own ``DecompressionBombWarning``/``Error`` are turned into :class:`MediaError` too.
* Truncated files are refused: a JPEG must reach its EOI marker, a PNG its IEND chunk, a WebP its
  declared RIFF length; libheif refuses truncated HEIF items itself.
* Multi-frame files (MPO, animated WebP, APNG, HEIF sequences/collections) publish the **first
  (primary) frame only**. The other frames are never decoded, so they cannot leak.
* Orientation: JPEG/PNG/WebP have their EXIF (or XMP) Orientation 1-8 applied. HEIF has its
  ``irot``/``imir`` transforms applied by libheif; the HEIF specification makes those authoritative,
  so any EXIF Orientation inside a HEIF is ignored (never rotated twice).
* Colour: CMYK (Adobe inverted included, which Pillow un-inverts) becomes RGB through its ICC
  profile when there is one; any non-sRGB ICC profile (Display P3, Adobe RGB, ...) is converted
  to sRGB with LittleCMS; HEIF ``nclx`` colour with Display P3 / BT.2020 primaries is converted too.
  An unreadable ICC profile is treated as sRGB (a colour problem, not a privacy one).
* Transparency (an alpha channel, a PNG ``tRNS`` colour key or palette entry, LA, WebP/HEIF alpha)
  is flattened over white, the way a viewer shows the file, *before* anything looks at the pixels.
  The face detector sees what a person would see, and the outputs are made from exactly those
  pixels: no alpha channel leaves this module, so none can carry content that was not checked
  (RGB black with the face drawn in alpha is a face; colour under fully transparent pixels is not).
* Captions are read from the metadata before the caller strips it.

Every failure raises :class:`MediaError` whose ``reason`` is safe to show to a teacher: it never
contains a file name or any metadata value.
"""

from __future__ import annotations

import functools
import html
import io
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, IptcImagePlugin

from photoguard.config import MediaConfig
from photoguard.core.upload import caption_text
from photoguard.photo.formats import (
    DAMAGED,
    SUPPORTED_TEXT,
    TRUNCATED,
    JpegLayout,
    JpegSegment,
    MediaError,
    describe_unknown,
    sniff,
    sniff_format,
    too_many_pixels,
    walk_jpeg,
)

__all__ = [
    "SUPPORTED_TEXT",
    "DecodedImage",
    "JpegLayout",
    "JpegSegment",
    "MediaError",
    "decode_bytes",
    "decode_file",
    "estimate_jpeg_quality",
    "flatten_on_white",
    "jpeg_sampling",
    "parse_dqt",
    "sniff_format",
    "walk_jpeg",
]

logger = logging.getLogger(__name__)

# Thumbnails, depth maps and auxiliary images are never wanted: not decoding them at all also
# guarantees Pillow's draft() can never swap in an embedded (unredacted) HEIF thumbnail.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

#: Pillow formats we open (an MPO is opened through the JPEG plugin); everything else is refused.
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
_PIL_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "HEIF")
_SOURCE_FORMAT = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "HEIF": "heif"}

MAX_SIDECAR_BYTES = 64 * 1024
MAX_CAPTION_CHARS = 2000
MAX_CAPTIONS = 16



@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, upright, sRGB, any transparency flattened over white
    transparent: bool  # the source had transparency (now flattened into ``pixels``)
    source_format: str  # "jpeg" | "png" | "webp" | "heif"
    jpeg_quality: int | None  # estimated source JPEG quality, when known
    #: the teacher's sidecar caption (cleaned): the only caption ever published (scrubbed per channel)
    caption: str | None
    #: text embedded in the file (EXIF, XMP, IPTC, JPEG comment, PNG text): never published on
    #: any channel (it is often a press caption or a photographer's credit, not the school's words)
    embedded_captions: tuple[str, ...]
    taken_at: datetime | None  # EXIF DateTimeOriginal

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


# --------------------------------------------------------------------------------------------
# JPEG quality (the marker walk itself lives in photoguard.photo.formats)

# IJG (Annex K) base tables in natural order.
_STD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_STD_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
)  # fmt: skip
_ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip


def _ijg_tables() -> np.ndarray:
    """(100, 2, 64) IJG tables for quality 1..100, in zigzag (DQT) order."""
    base = np.array([[_STD_LUMA[z] for z in _ZIGZAG], [_STD_CHROMA[z] for z in _ZIGZAG]], np.int64)
    out = np.empty((100, 2, 64), np.int64)
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        out[q - 1] = np.clip((base * scale + 50) // 100, 1, 255)
    return out


_IJG = _ijg_tables()


def parse_dqt(layout: JpegLayout) -> dict[int, np.ndarray]:
    """Quantisation tables by id (0-3), values in DQT (zigzag) order."""
    tables: dict[int, np.ndarray] = {}
    for seg in layout.segments:
        if seg.marker != 0xDB:
            continue
        p, body = 0, seg.payload
        while p < len(body):
            precision, tid = body[p] >> 4, body[p] & 15
            p += 1
            if precision:
                if p + 128 > len(body):
                    break
                tables[tid] = np.frombuffer(body, ">u2", 64, p).astype(np.int64)
                p += 128
            else:
                if p + 64 > len(body):
                    break
                tables[tid] = np.frombuffer(body, np.uint8, 64, p).astype(np.int64)
                p += 64
    return tables


def estimate_jpeg_quality(tables: dict[int, np.ndarray]) -> int | None:
    """The IJG quality (1-100) whose scaled standard tables are nearest to ``tables``.

    Cameras use their own tables; the nearest IJG quality is then a good equivalent for re-encoding.
    """
    if 0 not in tables:
        return None
    err = np.abs(_IJG[:, 0, :] - tables[0][None, :]).sum(axis=1).astype(np.float64)
    if 1 in tables:
        err += np.abs(_IJG[:, 1, :] - tables[1][None, :]).sum(axis=1)
    # ties go to the higher quality (argmin over the reversed array)
    best = 99 - int(np.argmin(err[::-1]))
    return best + 1


def jpeg_sampling(layout: JpegLayout) -> tuple[int, ...] | None:
    """(h, v) sampling factors of each component from the first SOF, flattened."""
    for seg in layout.segments:
        if 0xC0 <= seg.marker <= 0xCF and seg.marker not in (0xC4, 0xC8, 0xCC):
            body = seg.payload
            if len(body) < 6:
                return None
            count = body[5]
            out: list[int] = []
            for k in range(count):
                b = body[6 + 3 * k + 1] if 6 + 3 * k + 1 < len(body) else 0x11
                out += [b >> 4, b & 15]
            return tuple(out)
    return None


# --------------------------------------------------------------------------------------------
# Structural checks before Pillow sees the data: one class per format in photoguard.photo.formats

_TRUNCATED = TRUNCATED


# --------------------------------------------------------------------------------------------
# Captions and date (read before stripping)

_CAMERA_DEFAULTS = re.compile(
    r"^(olympus digital camera|sony dsc|digital camera|konica minolta digital camera|"
    r"samsung( digital camera)?|exif_jpeg_picture|default|untitled|image|picture|"
    r"lg digital camera|minolta digital camera|camera|photo|\s*|\d+)$",
    re.IGNORECASE,
)
_XMP_FIELD = re.compile(
    rb"<dc:(description|title)\b[^>]*>(.*?)</dc:\1>|\bdc:(description|title)=\"([^\"]*)\"",
    re.DOTALL,
)
_XMP_LI = re.compile(rb"<rdf:li\b[^>]*>(.*?)</rdf:li>", re.DOTALL)


def _clean_caption(raw: str) -> str | None:
    text = raw.replace("\x00", " ").strip()
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    text = re.sub(r"[ \t]+", " ", text).strip()
    if not text or _CAMERA_DEFAULTS.match(text):
        return None
    return text[:MAX_CAPTION_CHARS]


def clean_caption(raw: str) -> str | None:
    """The teacher's sidecar caption as it may be published (before per-channel scrubbing):
    camera defaults and empty text dropped, length capped; ``None`` when nothing is left."""
    return _clean_caption(raw)


def _xmp_captions(xmp: bytes | str) -> list[str]:
    raw = xmp.encode("utf-8", "replace") if isinstance(xmp, str) else xmp
    out: list[str] = []
    for m in _XMP_FIELD.finditer(raw):
        body = m.group(2)
        items = (_XMP_LI.findall(body) or [body]) if body is not None else [m.group(4)]
        for item in items:
            text = re.sub(rb"<[^>]*>", b"", item)
            out.append(html.unescape(text.decode("utf-8", "replace")))
    return out


def _user_comment(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes | bytearray):
        return None
    head, body = bytes(value[:8]), bytes(value[8:])
    if head.startswith(b"UNICODE"):
        # the byte order is not stated; UCS-2 text in a Latin script has many zero high bytes
        le = body[1::2].count(0) >= body[0::2].count(0)
        return body.decode("utf-16-le" if le else "utf-16-be", "replace")
    if head.startswith(b"ASCII") or head == b"\x00" * 8:
        return body.decode("latin-1")
    if head.startswith(b"JIS"):
        return body.decode("shift_jis", "replace")
    return bytes(value).decode("utf-8", "replace")


def _xp_text(value: Any) -> str | None:
    if isinstance(value, tuple | list):
        value = bytes(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-16-le", "replace")
    if isinstance(value, str):
        return value
    return None


def _exif_text(exif: Image.Exif) -> tuple[list[str], datetime | None]:
    out: list[str] = []
    desc = exif.get(0x010E)  # ImageDescription
    if isinstance(desc, bytes):
        desc = desc.decode("utf-8", "replace")
    if isinstance(desc, str):
        out.append(desc)
    for tag in (0x9C9B, 0x9C9C):  # XPTitle, XPComment
        text = _xp_text(exif.get(tag))
        if text:
            out.append(text)
    taken: datetime | None = None
    try:
        sub = exif.get_ifd(0x8769)
    except Exception:  # a damaged Exif IFD is not a reason to refuse the pixels
        sub = {}
    comment = _user_comment(sub.get(0x9286))
    if comment:
        out.append(comment)
    for tag in (0x9003, 0x9004):  # DateTimeOriginal, DateTimeDigitized
        taken = _exif_datetime(sub.get(tag))
        if taken is not None:
            break
    return out, taken


def _exif_datetime(value: Any) -> datetime | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    m = re.match(r"\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})", value)
    if not m:
        return None
    try:
        y, mo, d, hh, mi, ss = (int(g) for g in m.groups())
        dt = datetime(y, mo, d, hh, mi, ss)
    except ValueError:
        return None
    return dt if 1990 <= dt.year <= 2100 else None


def _iptc_captions(im: Image.Image) -> list[str]:
    try:
        info = IptcImagePlugin.getiptcinfo(im)  # type: ignore[arg-type]
    except Exception:
        return []
    out: list[str] = []
    if not info:
        return out
    for key in ((2, 120), (2, 105)):  # Caption-Abstract, Headline
        val = info.get(key)
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if isinstance(v, bytes):
                try:
                    out.append(v.decode("utf-8"))
                except UnicodeDecodeError:
                    out.append(v.decode("latin-1"))
    return out


def _read_captions(im: Image.Image) -> tuple[tuple[str, ...], datetime | None]:
    """Text embedded in the file (never published) and the EXIF date taken."""
    raw: list[str] = []
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, bytes | str):
        raw += _xmp_captions(xmp)
    raw += _iptc_captions(im)
    taken: datetime | None = None
    try:
        exif = im.getexif()
    except Exception:
        exif = None
    if exif is not None:
        texts, taken = _exif_text(exif)
        raw += texts
    for key in ("comment", "Comment", "Description", "Title"):  # JPEG COM, PNG text chunks
        val = im.info.get(key)
        if isinstance(val, bytes):
            val = val.decode("utf-8", "replace")
        if isinstance(val, str):
            raw.append(val)
    seen: set[str] = set()
    out: list[str] = []
    for r in raw:
        c = _clean_caption(r)
        if c and c.casefold() not in seen:
            seen.add(c.casefold())
            out.append(c)
    return tuple(out[:MAX_CAPTIONS]), taken


# --------------------------------------------------------------------------------------------
# Colour

_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=16)
def _icc_transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform ``in_mode`` -> sRGB 'RGB', or None when the profile is sRGB or unusable."""
    try:
        prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except Exception:
        logger.warning("unreadable ICC profile ignored (treated as sRGB)")
        return None
    space = (prof.profile.xcolor_space or "").strip()
    want = {"RGB": "RGB", "CMYK": "CMYK"}[in_mode]
    if space != want:
        logger.info("ICC colour space %r does not match %s pixels; ignored", space, in_mode)
        return None
    desc = (prof.profile.profile_description or "").lower()
    if in_mode == "RGB" and "srgb" in desc:
        return None
    try:
        return ImageCms.buildTransform(prof, _SRGB_PROFILE, in_mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except Exception:
        try:
            return ImageCms.buildTransform(
                prof,
                _SRGB_PROFILE,
                in_mode,
                "RGB",
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            )
        except Exception:
            logger.warning("ICC transform could not be built; colours left as they are")
            return None


# Linear-light RGB of a primaries set -> linear sRGB (D65 whites for all three).
_P3_TO_SRGB = np.array([[1.2249, -0.2247, 0.0], [-0.0420, 1.0419, 0.0], [-0.0197, -0.0786, 1.0979]], np.float32)
_BT2020_TO_SRGB = np.array(
    [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]], np.float32
)


def _srgb_decode_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _srgb_encode_lut(n: int = 4096) -> np.ndarray:
    v = np.arange(n, dtype=np.float64) / (n - 1)
    e = np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)
    return np.clip(np.round(e * 255.0), 0, 255).astype(np.uint8)


_DEC_LUT = _srgb_decode_lut()
_ENC_LUT = _srgb_encode_lut()


def _convert_primaries(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Convert sRGB-transfer RGB with other primaries to sRGB (relative, clipped)."""
    import cv2

    lin = cv2.LUT(np.ascontiguousarray(rgb), _DEC_LUT)
    lin = cv2.transform(lin, matrix)
    idx = np.clip(lin * 4095.0 + 0.5, 0, 4095).astype(np.uint16)
    return np.ascontiguousarray(_ENC_LUT[idx])


def _nclx_matrix(info: dict[Any, Any]) -> np.ndarray | None:
    nclx = info.get("nclx_profile")
    if not isinstance(nclx, dict):
        return None
    prim = nclx.get("color_primaries")
    if prim == 12:  # SMPTE EG 432-1 (Display P3)
        return _P3_TO_SRGB
    if prim == 9:  # BT.2020 (8-bit SDR decode; approximate)
        return _BT2020_TO_SRGB
    return None


# --------------------------------------------------------------------------------------------
# Decoding

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(im: Image.Image) -> int:
    try:
        val = im.getexif().get(0x0112)
    except Exception:
        return 1
    try:
        o = int(val) if val is not None else 1
    except (TypeError, ValueError):
        return 1
    return o if 1 <= o <= 8 else 1


def flatten_on_white(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite (H, W, 3) colour with (H, W) alpha over white, as a viewer shows it."""
    a = alpha.astype(np.uint16)[..., None]
    out = (pixels.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _to_rgb_alpha(im: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    """Any decoded mode -> an 'RGB' image (colour-managed later) plus its alpha array when the
    source has any transparency at all (an alpha channel, a tRNS colour key, a palette entry)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I" and arr.max(initial=0) <= 255:
            g = arr.astype(np.uint8)
        else:
            g = ((arr.astype(np.uint32) + 128) // 257).clip(0, 255).astype(np.uint8)
        rgb16 = Image.fromarray(np.ascontiguousarray(g), "L").convert("RGB")
        key = im.info.get("transparency")
        if isinstance(key, int):  # 16-bit grey with a tRNS colour key: that exact value is clear
            a16 = np.where(arr == key, 0, 255).astype(np.uint8)
            return rgb16, (a16 if int(a16.min(initial=255)) < 255 else None)
        return rgb16, None
    if mode == "F":
        arr = np.asarray(im)
        g = np.clip(arr, 0, 255).astype(np.uint8)
        return Image.fromarray(g, "L").convert("RGB"), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        a = np.array(rgba.getchannel("A"))
        rgb = rgba.convert("RGB")
        return rgb, (a if int(a.min(initial=255)) < 255 else None)
    if mode == "RGB":
        return im, None
    return im.convert("RGB"), None


#: the colour libjpeg gives blocks it had no data for (all coefficients zero) in a YCbCr or grey JPEG
_FILL = 128
#: the block checked: the last 8x8 pixels decoded (the last MCU holds at least one such block)
_FILL_BLOCK = 8


def _ends_in_libjpeg_fill(im: Image.Image) -> bool:
    """libjpeg meets damaged entropy-coded data (a cut scan, a bad Huffman code that runs into
    the end marker) with a warning Pillow does not pass on, and decodes every block it has no
    data for as flat mid-grey: exactly 128 in every channel. The last block of the image (in the
    stored orientation) being exactly that grey is the trace the damage leaves. A photo from a
    camera never has such a block (sensor noise), but a collage on a #808080 background does:
    :func:`_ffmpeg_finds_damage` tells the two apart."""
    if im.mode not in ("L", "RGB"):
        return False  # CMYK/YCCK fill is not grey in RGB: not checked
    w, h = im.size
    b = _FILL_BLOCK
    corner = np.asarray(im.crop((max(0, w - b), max(0, h - b), w, h)))
    return bool(corner.size) and bool((corner == _FILL).all())


def _ffmpeg_finds_damage(data: bytes) -> bool:
    """A second opinion on a JPEG that ends in libjpeg's grey fill: FFmpeg's JPEG decoder (PyAV,
    already installed for clips) with ``err_detect=explode`` fails on entropy-coded data that
    runs out before the picture does, and passes a picture that is truly grey there. Only the DC
    coefficients are turned into pixels (``lowres=3``), so this costs a fraction of a decode. A
    variant FFmpeg does not support (arithmetic coding, ...) is not called damaged."""
    import av  # PyAV loads only for such a file (like photo.video for clips)
    from av.codec.context import CodecContext

    ctx = CodecContext.create("mjpeg", "r")
    ctx.options = {"err_detect": "explode", "lowres": "3"}
    try:
        frames = ctx.decode(av.Packet(data))
        frames += ctx.decode(None)
    except av.error.InvalidDataError:
        return True
    except av.error.FFmpegError:
        logger.info("JPEG second opinion unavailable for this variant; the grey block is kept")
        return False
    return not frames


def _color_manage(im: Image.Image, rgb: Image.Image, fmt: str) -> Image.Image:
    icc = im.info.get("icc_profile")
    if im.mode == "CMYK":
        if isinstance(icc, bytes) and icc:
            t = _icc_transform(icc, "CMYK")
            if t is not None:
                return ImageCms.applyTransform(im, t)  # type: ignore[return-value]
        return rgb
    if isinstance(icc, bytes) and icc and rgb.mode == "RGB" and im.mode not in ("L", "LA", "1"):
        t = _icc_transform(icc, "RGB")
        if t is not None:
            return ImageCms.applyTransform(rgb, t)  # type: ignore[return-value]
        return rgb
    if fmt == "heif":
        m = _nclx_matrix(im.info)
        if m is not None:
            return Image.fromarray(_convert_primaries(np.asarray(rgb), m), "RGB")
    return rgb


class _Cancelled(Exception):
    """The caller stopped waiting for this decode (past ``media.max_decode_seconds``)."""


class _CancellableBytes(io.BytesIO):
    """The file Pillow decodes from. libjpeg and zlib ask for the data in blocks, so a decode
    whose caller gave up ends at its next read instead of running on for minutes."""

    def __init__(self, data: bytes, cancelled: threading.Event) -> None:
        super().__init__(data)
        self._cancelled = cancelled

    def read(self, size: int | None = -1, /) -> bytes:
        if self._cancelled.is_set():
            raise _Cancelled
        return super().read(size)


def too_heavy(cfg: MediaConfig) -> MediaError:
    return MediaError(
        f"the image is too heavy to decode (it took longer than {cfg.max_decode_seconds:g} s); "
        "please export it again as a normal photo"
    )


def _decode(data: bytes, cfg: MediaConfig, sidecar_text: str | None, cancelled: threading.Event) -> DecodedImage:
    if not data:
        raise MediaError("the file is empty")
    if len(data) > cfg.max_bytes:
        raise MediaError(f"the file is too large (limit {cfg.max_bytes // 1_000_000} MB)")
    container = sniff(data)
    if container is None:
        raise MediaError(describe_unknown(data))
    fmt = container.name
    quality: int | None = None
    layout = container.check(data, cfg)
    if layout is not None:
        quality = estimate_jpeg_quality(parse_dqt(layout))

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(_CancellableBytes(data, cancelled), formats=_OPEN_FORMATS)
        if im.format not in _PIL_FORMATS or _SOURCE_FORMAT[im.format] != fmt:
            raise MediaError(describe_unknown(data))
        w, h = im.size
        if w <= 0 or h <= 0:
            raise MediaError("the image has no pixels")
        if w * h > cfg.max_pixels:
            raise too_many_pixels(w, h, cfg)
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            logger.info("multi-frame %s: only the first frame is used (%d frames)", fmt, frames)
            if im.tell() != 0 and fmt != "heif":
                im.seek(0)
        embedded, taken = _read_captions(im)
        orientation = 1 if fmt == "heif" else _orientation(im)
        im.load()
        if fmt == "jpeg" and _ends_in_libjpeg_fill(im) and _ffmpeg_finds_damage(data):
            raise MediaError(DAMAGED)

    rgb, alpha = _to_rgb_alpha(im)
    rgb = _color_manage(im, rgb, fmt)
    if rgb.mode != "RGB":
        rgb = rgb.convert("RGB")
    if orientation != 1:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
        if alpha is not None:
            alpha = np.array(Image.fromarray(alpha, "L").transpose(_TRANSPOSE[orientation]))
    pixels = np.array(rgb, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise MediaError("the image could not be decoded into colour pixels")
    if alpha is not None:
        if alpha.shape != pixels.shape[:2]:
            raise MediaError("the image's transparency does not match its size")
        # what a viewer shows is what the detector checks and what is published
        pixels = flatten_on_white(pixels, alpha)
    caption = _clean_caption(sidecar_text) if sidecar_text else None
    return DecodedImage(pixels, alpha is not None, fmt, quality, caption, embedded, taken)


def decode_bytes(data: bytes, cfg: MediaConfig, *, sidecar_text: str | None = None) -> DecodedImage:
    """Decode ``data`` into upright sRGB pixels. Raises :class:`MediaError` and nothing else.

    The decode runs in its own thread and the caller waits at most ``cfg.max_decode_seconds``:
    a file that takes longer is refused as too heavy and the caller goes on with the next one.
    The abandoned decode stops at its next read of the data (JPEG, PNG) or ends on its own
    (WebP and HEIF decode in one call, bounded by the pixel limit)."""
    data = bytes(data)
    cancelled = threading.Event()
    outcome: list[DecodedImage | BaseException] = []

    def work() -> None:
        try:
            outcome.append(_decode_or_reason(data, cfg, sidecar_text, cancelled))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=work, name="photoguard-decode", daemon=True)
    worker.start()
    worker.join(cfg.max_decode_seconds)
    if worker.is_alive() or not outcome:
        cancelled.set()
        logger.warning("decode abandoned after %.0f s (refused as too heavy)", cfg.max_decode_seconds)
        raise too_heavy(cfg)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _decode_or_reason(
    data: bytes, cfg: MediaConfig, sidecar_text: str | None, cancelled: threading.Event
) -> DecodedImage:
    try:
        return _decode(data, cfg, sidecar_text, cancelled)
    except _Cancelled:
        raise too_heavy(cfg) from None
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(f"the image has too many pixels (limit {cfg.max_pixels / 1e6:.0f} megapixels)") from None
    except MemoryError:
        raise MediaError("the image is too large to process") from None
    except Exception as exc:
        text = str(exc).lower()
        logger.info("decode failed: %s", type(exc).__name__)
        if "truncated" in text or "premature" in text or "broken data stream" in text:
            raise MediaError(_TRUNCATED) from exc
        raise MediaError("the image could not be decoded (damaged or unsupported variant)") from exc


def sidecar_paths(path: Path) -> Iterator[Path]:
    """Caption files a teacher may put next to a photo: ``IMG_1.txt`` and ``IMG_1.jpg.txt``."""
    yield path.with_suffix(".txt")
    yield path.with_name(path.name + ".txt")


def read_sidecar(path: Path) -> str | None:
    for p in sidecar_paths(path):
        if p == path or not p.is_file() or p.is_symlink():
            continue
        try:
            with p.open("rb") as fh:
                raw = fh.read(MAX_SIDECAR_BYTES + 1)
        except OSError:
            continue
        return caption_text(raw[:MAX_SIDECAR_BYTES])
    return None


def decode_file(path: Path, cfg: MediaConfig) -> DecodedImage:
    """Read and decode one uploaded photo (plus its sidecar caption). Raises :class:`MediaError`."""
    from photoguard.photo.ingest import IngestError, read_regular

    try:
        data, _st = read_regular(path, cfg.max_bytes)
    except IngestError as exc:
        logger.info("read failed: %s", exc.kind)
        if exc.kind == "too_large":
            raise MediaError(f"the file is too large (limit {cfg.max_bytes // 1_000_000} MB)") from None
        if exc.kind in ("link", "not_regular"):
            raise MediaError("the upload is not a regular file") from None
        raise MediaError("the file could not be read") from None
    if not data:
        raise MediaError("the file is empty")
    return decode_bytes(data, cfg, sidecar_text=read_sidecar(path))
