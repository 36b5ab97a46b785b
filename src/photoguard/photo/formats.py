"""What photoguard knows about each image container, one class per format.

A format class answers three questions about raw bytes, without decoding a pixel:

* :meth:`ImageFormat.sniff` -- is this my container? (magic bytes, never the file name)
* :meth:`ImageFormat.completeness` -- is the upload finished? A structural walk (JPEG marker
  segments up to the EOI of the primary image, PNG chunks up to IEND, the RIFF length of a WebP,
  ISO-BMFF boxes and the item locations of a HEIF). "Incomplete" means "more bytes may still
  come": the watch service waits instead of judging half a file.
* :meth:`ImageFormat.check` -- the structural checks the decoder runs before Pillow sees the
  data (truncation, header pixel count). Raises :class:`MediaError`.

:data:`FORMATS` is the registry keyed by the sniffed name ('jpeg', 'png', 'webp', 'heif'); a new
format is one class here plus its entry. Video containers have their own registry,
:data:`VIDEO_FORMATS` ('mp4' for ISO-BMFF/QuickTime with a video brand, 'webm'), so that an image
decoder never sees a clip; :mod:`photoguard.photo.video` handles them. ISO-BMFF files are split
by their ``ftyp`` brands: any HEIF or AVIF brand makes an image, otherwise a video brand makes a
clip. Other ISO-BMFF files (AVIF) are not supported, but their completeness is still judged by
the box walk so a refusal never cuts an upload short.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from photoguard.config import MediaConfig

SUPPORTED_TEXT = "JPEG, PNG, WebP or HEIC"
TRUNCATED = "the file is incomplete or damaged (it ends too early); please upload it again"


class MediaError(Exception):
    """A photo that cannot be published. ``reason`` is user-facing and free of personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Completeness(Enum):
    COMPLETE = "complete"  # the structure ends where it says it ends
    INCOMPLETE = "incomplete"  # ends early: more bytes may still be written
    UNKNOWN = "unknown"  # not a container we know: the decoder judges it


def too_many_pixels(w: int, h: int, cfg: MediaConfig) -> MediaError:
    return MediaError(
        f"the image is too large ({w}x{h} pixels; the limit is {cfg.max_pixels / 1e6:.0f} megapixels)"
    )


# --------------------------------------------------------------------------------------------
# JPEG structure (also used by photoguard.photo.encode.verify_clean)

#: After SOS: the next 0xFF that is not byte stuffing (FF00), a restart marker or fill (FFFF).
_ENTROPY_END = re.compile(rb"\xff(?![\x00\xd0-\xd7\xff])")
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


@dataclass(frozen=True, slots=True)
class JpegSegment:
    marker: int  # second marker byte, e.g. 0xE1 for APP1
    offset: int  # offset of the 0xFF that starts the segment
    payload: bytes  # segment body without marker and length (empty for stand-alone markers)


#: A JPEG with more marker segments than this is refused before decoding (no camera writes more
#: than a few dozen; tens of thousands of tiny segments are a way to make every pass slow).
MAX_JPEG_SEGMENTS = 100_000
#: A PNG with more chunks than this is refused (libpng writes 8 KiB IDAT chunks: 100,000 of them
#: is 800 MB of image data, beyond the upload limit).
MAX_PNG_CHUNKS = 100_000
DAMAGED = "the image data is damaged (a checksum or the compressed data is wrong); please upload the original again"


class JpegTooComplex(ValueError):
    """More marker segments than :data:`MAX_JPEG_SEGMENTS` (a hostile file, not an unfinished one)."""


@dataclass(frozen=True, slots=True)
class JpegLayout:
    segments: tuple[JpegSegment, ...]
    eoi_end: int | None  # offset just after EOI, None when the stream never ends (truncated)
    garbage: bool  # bytes between segments that are not a marker


def walk_jpeg(data: bytes, max_segments: int = MAX_JPEG_SEGMENTS) -> JpegLayout:
    """Walk the marker segments of the first JPEG stream in ``data`` up to its EOI. Segments are
    skipped by their length, so an embedded thumbnail's EOI inside APP1 is never taken for the
    end of the photo.

    Raises ``ValueError`` when ``data`` does not start with SOI or a segment runs past the end,
    :class:`JpegTooComplex` after ``max_segments`` segments.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("no SOI")
    n = len(data)
    i = 2
    segments: list[JpegSegment] = []
    garbage = False
    while i < n:
        if len(segments) > max_segments:
            raise JpegTooComplex("too many segments")
        if data[i] != 0xFF:
            garbage = True
            j = data.find(b"\xff", i)
            if j < 0:
                break
            i = j
            continue
        start = i
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:
            segments.append(JpegSegment(marker, start, b""))
            return JpegLayout(tuple(segments), i, garbage)
        if marker in _STANDALONE or marker == 0xD8:
            segments.append(JpegSegment(marker, start, b""))
            continue
        if i + 2 > n:
            raise ValueError("segment header past end")
        length = struct.unpack_from(">H", data, i)[0]
        if length < 2 or i + length > n:
            raise ValueError("segment past end")
        segments.append(JpegSegment(marker, start, data[i + 2 : i + length]))
        i += length
        if marker == 0xDA:
            m = _ENTROPY_END.search(data, i)
            if m is None:
                break
            i = m.start()
    return JpegLayout(tuple(segments), None, garbage)


def _mpf_end(tiff: bytes, base: int) -> int:
    """The furthest file offset the MP Entries of an MPF (CIPA DC-007) segment declare; 0 when
    the index cannot be read (the decoder then uses the first image, as always)."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        ifd = struct.unpack_from(order + "I", tiff, 4)[0]
        count = struct.unpack_from(order + "H", tiff, ifd)[0]
        for k in range(min(count, 64)):
            tag, _typ, n, value = struct.unpack_from(order + "HHII", tiff, ifd + 2 + 12 * k)
            if tag != 0xB002:
                continue
            furthest = 0
            for e in range(min(n // 16, 64)):
                _attr, size, offset = struct.unpack_from(order + "III", tiff, value + 16 * e)
                furthest = max(furthest, size if offset == 0 else base + offset + size)
            return furthest
    except (KeyError, struct.error):
        return 0
    return 0


def _is_sof(marker: int) -> bool:
    return 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)


#: markers that may follow a scan's entropy-coded data: tables, restart interval, the next scan,
#: the end of the image, comments, application data, DNL (a ``0xFF`` + anything else there is damage)
_AFTER_SCAN = {0xC4, 0xCC, 0xDB, 0xDD, 0xDA, 0xD9, 0xDC, 0xFE, *range(0xE0, 0xF0)}
_RST = re.compile(rb"\xff([\xd0-\xd7])")  # fill bytes before it are more 0xFF


def _frame(payload: bytes) -> tuple[int, int, dict[int, tuple[int, int]]] | None:
    """(width, height, component id -> (h, v) sampling) of a SOF segment; None when cut short."""
    if len(payload) < 6:
        return None
    h, w, count = struct.unpack_from(">HHB", payload, 1)
    if len(payload) < 6 + 3 * count:
        return None
    comps = {payload[6 + 3 * k]: (payload[7 + 3 * k] >> 4, payload[7 + 3 * k] & 15) for k in range(count)}
    return w, h, comps


def _scan_mcus(frame: tuple[int, int, dict[int, tuple[int, int]]], scan: bytes) -> int | None:
    """MCUs in a scan (ITU T.81 A.2): interleaved scans count MCUs of the largest sampling,
    a one-component scan counts that component's 8x8 blocks. None when it cannot be told."""
    w, h, comps = frame
    if not scan or h == 0 or not comps:
        return None  # height given later by a DNL marker: not counted
    hmax = max(c[0] for c in comps.values()) or 1
    vmax = max(c[1] for c in comps.values()) or 1
    ids = [scan[1 + 2 * k] for k in range(scan[0]) if 2 + 2 * k < len(scan)]
    if len(ids) != 1:
        return -(-w // (8 * hmax)) * -(-h // (8 * vmax))
    hs, vs = comps.get(ids[0], (0, 0))
    if not hs or not vs:
        return None
    cw, ch = -(-w * hs // hmax), -(-h * vs // vmax)
    return -(-cw // 8) * -(-ch // 8)


def _scan_start(data: bytes, seg: JpegSegment) -> int:
    """Offset of the first entropy-coded byte after the SOS segment ``seg``."""
    p = seg.offset
    while data[p] == 0xFF:
        p += 1
    return p + 1 + 2 + len(seg.payload)


def _in_order(found: bytes) -> bool:
    """Restart markers RST0..RST7, RST0.. in order (``found``: their second bytes)."""
    reps = -(-len(found) // 8)
    return found == (bytes(range(0xD0, 0xD8)) * reps)[: len(found)]


def entropy_data_sound(data: bytes, layout: JpegLayout) -> bool:
    """A structural check of every scan's entropy-coded data, without Huffman decoding: it is
    not empty, its restart markers come in order (RST0..RST7, again from RST0 in each scan) and
    in the number the restart interval and the frame size call for, and what follows it is a
    marker that may follow a scan. Finds inserted or flipped markers and scans cut short where
    the file has restart markers; damage that keeps the marker structure is not seen here (the
    decoder checks for libjpeg's grey fill, see :mod:`photoguard.photo.decode`)."""
    segs = layout.segments
    frame: tuple[int, int, dict[int, tuple[int, int]]] | None = None
    interval = 0
    for k, seg in enumerate(segs):
        if _is_sof(seg.marker):
            frame = _frame(seg.payload)
        elif seg.marker == 0xDD and len(seg.payload) >= 2:
            interval = struct.unpack_from(">H", seg.payload)[0]
        elif 0xD0 <= seg.marker <= 0xD7:
            return False  # a restart marker outside any scan
        if seg.marker != 0xDA:
            continue
        if k + 1 >= len(segs) or segs[k + 1].marker not in _AFTER_SCAN:
            return False
        start, end = _scan_start(data, seg), segs[k + 1].offset
        if end <= start:
            return False  # a scan without data
        found = b"".join(_RST.findall(data, start, end))  # the restart markers' second bytes
        seen = len(found)
        if seen and (interval == 0 or not _in_order(found)):
            return False
        mcus = _scan_mcus(frame, seg.payload) if frame is not None and interval else None
        if mcus is not None:
            expected = -(-mcus // interval) - 1
            # some encoders end a scan with one restart marker too many: harmless when nothing follows it
            at_end = data[end - 2] == 0xFF and 0xD0 <= data[end - 1] <= 0xD7
            if seen != expected and not (seen == expected + 1 and at_end):
                return False
    return True


# --------------------------------------------------------------------------------------------
# The format classes


class ImageFormat:
    """One container format. Subclasses set :attr:`name` and :attr:`magic`."""

    name: ClassVar[str]
    #: a prefix every file of this format starts with (used to wait for a too-short upload)
    magic: ClassVar[bytes] = b""

    def sniff(self, data: bytes) -> bool:
        return bool(self.magic) and data[: len(self.magic)] == self.magic

    def could_become(self, data: bytes) -> bool:
        """``data`` is too short to tell, but is the start of this format's magic."""
        return len(data) < len(self.magic) and self.magic.startswith(data)

    def completeness(self, data: bytes) -> Completeness:
        raise NotImplementedError

    def check(self, data: bytes, cfg: MediaConfig) -> JpegLayout | None:
        """Structural checks before decoding; raises :class:`MediaError`."""
        if self.completeness(data) is not Completeness.COMPLETE:
            raise MediaError(TRUNCATED)
        return None


class Jpeg(ImageFormat):
    """JPEG and MPO. Complete when the primary image's marker walk reaches its EOI."""

    name = "jpeg"
    magic = b"\xff\xd8\xff"

    def completeness(self, data: bytes) -> Completeness:
        try:
            layout = walk_jpeg(data)
        except JpegTooComplex:
            return Completeness.COMPLETE  # refused whatever follows: let the decoder say why
        except ValueError:
            return Completeness.INCOMPLETE
        if layout.eoi_end is None:
            return Completeness.INCOMPLETE
        for seg in layout.segments:  # an MPO declares where its further images end
            mpf = seg.marker == 0xE2 and seg.payload[:4] == b"MPF\x00"
            if mpf and _mpf_end(seg.payload[4:], seg.offset + 8) > len(data):
                return Completeness.INCOMPLETE
        return Completeness.COMPLETE

    def check(self, data: bytes, cfg: MediaConfig) -> JpegLayout:
        try:
            layout = walk_jpeg(data)
        except JpegTooComplex:
            raise MediaError(
                f"the image is built from too many parts (more than {MAX_JPEG_SEGMENTS} JPEG segments); "
                "please export it again as a normal photo"
            ) from None
        except ValueError:
            raise MediaError(TRUNCATED) from None
        if layout.eoi_end is None:
            raise MediaError(TRUNCATED)
        sof = next((seg for seg in layout.segments if _is_sof(seg.marker)), None)
        if sof is not None and len(sof.payload) >= 5:
            h, w = struct.unpack_from(">HH", sof.payload, 1)
            if w * h > cfg.max_pixels:
                raise too_many_pixels(w, h, cfg)
        scans = [seg for seg in layout.segments if seg.marker == 0xDA]
        if len(scans) > cfg.max_jpeg_scans:
            # every scan is another pass over all the pixels: a few thousand keep a worker busy
            # for minutes (cameras write 1; progressive files about 10)
            raise MediaError(
                f"the image has too many scans ({len(scans)}; the limit is {cfg.max_jpeg_scans}); "
                "please export it again as a normal photo"
            )
        if sof is None or not scans or scans[0].offset < sof.offset:
            raise MediaError(DAMAGED)  # no frame header, no image data, or data before its frame
        if not entropy_data_sound(data, layout):
            raise MediaError(DAMAGED)
        return layout


class Png(ImageFormat):
    """PNG and APNG. Complete when the chunk walk reaches IEND."""

    name = "png"
    magic = b"\x89PNG\r\n\x1a\n"

    def completeness(self, data: bytes) -> Completeness:
        i, n = 8, len(data)
        chunks = 0
        while i + 8 <= n:
            length, typ = struct.unpack_from(">I4s", data, i)
            i += 12 + length
            if i > n:
                return Completeness.INCOMPLETE
            if typ == b"IEND":
                return Completeness.COMPLETE
            chunks += 1
            if chunks > MAX_PNG_CHUNKS:
                return Completeness.COMPLETE  # refused whatever follows: let the decoder say why
        return Completeness.INCOMPLETE

    def check(self, data: bytes, cfg: MediaConfig) -> None:
        if len(data) < 33 or data[12:16] != b"IHDR":
            raise MediaError(TRUNCATED)
        w, h = struct.unpack_from(">II", data, 16)
        if w == 0 or h == 0:
            raise MediaError("the image has no pixels")
        if w * h > cfg.max_pixels:
            raise too_many_pixels(w, h, cfg)
        chunks = png_chunks(data)
        if chunks is None:
            raise MediaError(TRUNCATED)
        if len(chunks) > MAX_PNG_CHUNKS:
            raise MediaError(
                f"the image is built from too many parts (more than {MAX_PNG_CHUNKS} PNG chunks); "
                "please export it again as a normal image"
            )
        idat: list[bytes] = []
        for typ, start, end, crc in chunks:
            if zlib.crc32(memoryview(data)[start - 4 : end]) != crc:  # type and data
                raise MediaError(DAMAGED)
            if typ == b"IDAT":
                idat.append(data[start:end])
        ihdr = data[16:29]
        expected = png_raw_size(w, h, ihdr[8], ihdr[9], ihdr[12])
        if expected is None or not idat or not _inflates_to(idat, expected):
            raise MediaError(DAMAGED)


#: PNG colour type -> samples per pixel
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_chunks(data: bytes) -> list[tuple[bytes, int, int, int]] | None:
    """(type, data start, data end, stored CRC) of each chunk up to IEND, stopping after
    :data:`MAX_PNG_CHUNKS` + 1; None when a chunk runs past the end or IEND never comes."""
    out: list[tuple[bytes, int, int, int]] = []
    i, n = 8, len(data)
    while i + 12 <= n:
        length, typ = struct.unpack_from(">I4s", data, i)
        start, end = i + 8, i + 8 + length
        if end + 4 > n:
            return None
        out.append((typ, start, end, struct.unpack_from(">I", data, end)[0]))
        if typ == b"IEND" or len(out) > MAX_PNG_CHUNKS:
            return out
        i = end + 4
    return None


def png_raw_size(w: int, h: int, depth: int, colour: int, interlace: int) -> int | None:
    """Bytes the IDAT stream inflates to (filter byte per row included); None for an invalid IHDR."""
    samples = _PNG_SAMPLES.get(colour)
    if samples is None or depth not in (1, 2, 4, 8, 16) or interlace not in (0, 1):
        return None
    bits = samples * depth

    def size(pw: int, ph: int) -> int:
        return 0 if pw == 0 or ph == 0 else ph * (1 + (pw * bits + 7) // 8)

    if interlace == 0:
        return size(w, h)
    return sum(size((w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def _inflates_to(parts: list[bytes], expected: int) -> bool:
    """The zlib stream in ``parts`` is whole (its checksum included) and inflates to exactly
    ``expected`` bytes; inflated in bounded pieces that are thrown away (no bomb, little memory)."""
    d = zlib.decompressobj()
    produced = 0
    step = 1 << 20
    try:
        for part in parts:
            buf = part
            while buf and not d.eof:
                produced += len(d.decompress(buf, step))
                if produced > expected:
                    return False
                buf = d.unconsumed_tail
        while not d.eof:  # output still held back by the step limit
            out = d.decompress(b"", step)
            if not out:
                break
            produced += len(out)
            if produced > expected:
                return False
    except zlib.error:
        return False
    return d.eof and produced == expected


class WebP(ImageFormat):
    """WebP (RIFF). Complete when the file holds the RIFF length its header declares."""

    name = "webp"
    magic = b"RIFF"

    def sniff(self, data: bytes) -> bool:
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"

    def could_become(self, data: bytes) -> bool:
        return len(data) < 12 and (b"RIFF".startswith(data[:4]) and b"WEBP".startswith(data[8:]))

    def completeness(self, data: bytes) -> Completeness:
        if len(data) < 12:
            return Completeness.INCOMPLETE
        riff_len = struct.unpack_from("<I", data, 4)[0]
        if riff_len < 12:
            return Completeness.UNKNOWN  # a nonsense header: let the decoder refuse it
        return Completeness.COMPLETE if len(data) >= 8 + riff_len else Completeness.INCOMPLETE


_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1",
                b"msf1", b"mif2", b"MiHE", b"MiHB", b"MiPr", b"miaf"}  # fmt: skip
AVIF_BRANDS = {b"avif", b"avis"}


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]] | None:
    """(type, body start, box end) of the ISO-BMFF boxes in ``data[start:end]``; None when a box
    runs past ``end`` (the file ends early)."""
    out: list[tuple[bytes, int, int]] = []
    off = start
    for _ in range(100_000):
        if off == end:
            return out
        if off + 8 > end:
            return None
        size, typ = struct.unpack_from(">I4s", data, off)
        body = off + 8
        if size == 1:
            if off + 16 > end:
                return None
            size = struct.unpack_from(">Q", data, off + 8)[0]
            body = off + 16
        elif size == 0:
            size = end - off  # "to the end of the file"
        if size < body - off:
            return out  # not a box structure we understand: stop here, the decoder judges
        if off + size > end:
            return None
        out.append((typ, body, off + size))
        off += size
    return out


def _iloc_end(data: bytes, body: int, end: int) -> int:
    """The furthest file offset an ``iloc`` box (ISO 14496-12 8.11.3) points to (0 when it only
    points into ``idat``, or when it cannot be read: the decoder judges that)."""
    try:
        version = data[body]
        p = body + 4
        sizes = struct.unpack_from(">H", data, p)[0]
        p += 2
        off_size, len_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
        idx_size = sizes & 15 if version in (1, 2) else 0

        def num(width: int) -> int:
            nonlocal p
            if width == 0:
                return 0
            if width not in (4, 8) or p + width > end:
                raise ValueError("bad iloc field")
            v = int.from_bytes(data[p : p + width], "big")
            p += width
            return v

        if version == 2:
            count = num(4)
        else:
            count = struct.unpack_from(">H", data, p)[0]
            p += 2
        furthest = 0
        for _ in range(min(count, 65_536)):
            p += 4 if version == 2 else 2  # item_ID
            method = 0
            if version in (1, 2):
                method = struct.unpack_from(">H", data, p)[0] & 15
                p += 2
            p += 2  # data_reference_index
            base = num(base_size)
            extents = struct.unpack_from(">H", data, p)[0]
            p += 2
            for _ in range(extents):
                num(idx_size)
                e_off, e_len = num(off_size), num(len_size)
                if method == 0 and e_len > 0:
                    furthest = max(furthest, base + e_off + e_len)
        return furthest
    except (ValueError, struct.error, IndexError):
        return 0


def bmff_completeness(data: bytes) -> Completeness:
    """Top-level boxes must tile the file, and every item a ``meta/iloc`` locates in the file
    must lie inside it (a pause after ``meta`` but before ``mdat`` is a complete box walk)."""
    n = len(data)
    top = _boxes(data, 0, n)
    if top is None or not top:
        return Completeness.INCOMPLETE
    kinds = [t for t, _b, _e in top]
    if kinds[0] != b"ftyp":
        return Completeness.UNKNOWN
    furthest = 0
    for typ, body, end in top:
        if typ != b"meta":
            continue
        children = _boxes(data, body + 4, end) or []
        for ctyp, cbody, cend in children:
            if ctyp == b"iloc":
                furthest = max(furthest, _iloc_end(data, cbody, cend))
    if furthest > n:
        return Completeness.INCOMPLETE
    brands = _brands(data)
    if brands & (_HEIF_BRANDS | AVIF_BRANDS) and b"meta" not in kinds:
        return Completeness.INCOMPLETE  # an image file without its item table yet
    return Completeness.COMPLETE


def _brands(data: bytes) -> set[bytes]:
    if len(data) < 16 or data[4:8] != b"ftyp":
        return set()
    size = struct.unpack(">I", data[:4])[0]
    return {data[8:12]} | {data[k : k + 4] for k in range(16, min(size, 256, len(data)) - 3, 4)}


class Heif(ImageFormat):
    """HEIF/HEIC (ISO-BMFF with a HEIF brand; AVIF is refused). Complete when the boxes tile the
    file and every located item is inside it; libheif refuses damaged items itself."""

    name = "heif"
    magic = b""

    def sniff(self, data: bytes) -> bool:
        if data[4:8] != b"ftyp" or len(data) < 16 or data[8:12] in AVIF_BRANDS:
            return False
        return bool(_brands(data) & _HEIF_BRANDS)

    def could_become(self, data: bytes) -> bool:
        return len(data) < 16 and b"ftyp".startswith(data[4:8])

    def completeness(self, data: bytes) -> Completeness:
        return bmff_completeness(data)

    def check(self, data: bytes, cfg: MediaConfig) -> None:
        return None  # libheif refuses truncated items itself (and the service waited for them)


#: the supported formats by sniffed name, in sniffing order
FORMATS: dict[str, ImageFormat] = {f.name: f for f in (Jpeg(), Png(), WebP(), Heif())}


# --------------------------------------------------------------------------------------------
# Video containers (decoded by photoguard.photo.video, never by the image decoder)

#: ``ftyp`` brands of MP4, MOV (QuickTime), M4V and 3GP clips as phones and cameras write them
VIDEO_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
                b"qt  ", b"M4V ", b"M4VH", b"M4VP", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"mmp4",
                b"MSNV", b"XAVC", b"dash", b"hvc1", b"f4v "}  # fmt: skip


class VideoFormat(ImageFormat):
    """A video container. :meth:`check` is the same structural gate as for images; the limits
    on duration, frame size and bytes are checked by :mod:`photoguard.photo.video`."""


class IsoVideo(VideoFormat):
    """MP4, MOV, M4V (ISO-BMFF / QuickTime): an ``ftyp`` with a video brand and no HEIF or AVIF
    brand (a HEIC photo is ISO-BMFF too). Complete when the top-level boxes tile the file and it
    holds both the movie header (``moov``) and media data (``mdat``): a phone writes ``moov`` last,
    so a pause just before it, or just after a fast-start ``moov``, is a box walk that tiles."""

    name = "mp4"
    magic = b""

    def sniff(self, data: bytes) -> bool:
        brands = _brands(data)
        if not brands or brands & (_HEIF_BRANDS | AVIF_BRANDS):
            return False
        return bool(brands & VIDEO_BRANDS)

    def could_become(self, data: bytes) -> bool:
        return len(data) < 16 and b"ftyp".startswith(data[4:8])

    def completeness(self, data: bytes) -> Completeness:
        verdict = bmff_completeness(data)
        if verdict is not Completeness.COMPLETE:
            return verdict
        kinds = {t for t, _b, _e in _boxes(data, 0, len(data)) or []}
        return Completeness.COMPLETE if {b"moov", b"mdat"} <= kinds else Completeness.INCOMPLETE


_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_SEGMENT = 0x18538067


def _ebml_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """(value, next position) of the EBML variable-size integer at ``pos``; None past the end.
    An all-ones size ("unknown size") is returned as -1."""
    if pos >= len(data):
        return None
    first = data[pos]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8 or pos + width > len(data):
        return None
    value = int.from_bytes(data[pos : pos + width], "big")
    if keep_marker:
        return value, pos + width
    value &= (1 << (7 * width)) - 1
    if value == (1 << (7 * width)) - 1:
        return -1, pos + width
    return value, pos + width


def _ebml_element(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(id, body start, body size or -1) of the element at ``pos``; None when its header is cut."""
    ident = _ebml_vint(data, pos, keep_marker=True)
    if ident is None:
        return None
    size = _ebml_vint(data, ident[1], keep_marker=False)
    if size is None:
        return None
    return ident[0], size[1], size[0]


class WebM(VideoFormat):
    """WebM (EBML with DocType ``webm``). Complete when the file holds the Segment its header
    declares; a Segment of unknown size (a live recording) is judged by the decoder."""

    name = "webm"
    magic = _EBML_MAGIC

    def sniff(self, data: bytes) -> bool:
        if data[:4] != _EBML_MAGIC:
            return False
        head = _ebml_element(data, 0)
        if head is None or head[2] < 0:
            return False
        return b"\x42\x82\x84webm" in data[head[1] : head[1] + head[2]]

    def completeness(self, data: bytes) -> Completeness:
        head = _ebml_element(data, 0)
        if head is None or head[2] < 0:
            return Completeness.INCOMPLETE
        seg = _ebml_element(data, head[1] + head[2])
        if seg is None:
            return Completeness.INCOMPLETE
        ident, body, size = seg
        if ident != _EBML_SEGMENT:
            return Completeness.UNKNOWN
        if size < 0:
            return Completeness.UNKNOWN
        return Completeness.COMPLETE if len(data) >= body + size else Completeness.INCOMPLETE


#: the supported video containers by sniffed name
VIDEO_FORMATS: dict[str, VideoFormat] = {f.name: f for f in (IsoVideo(), WebM())}


def sniff_video(data: bytes) -> VideoFormat | None:
    """The video container of ``data`` from its magic bytes and brands, or None."""
    for fmt in VIDEO_FORMATS.values():
        if fmt.sniff(data):
            return fmt
    return None


def sniff(data: bytes) -> ImageFormat | None:
    """The supported format of ``data`` from its magic bytes, or None."""
    for fmt in FORMATS.values():
        if fmt.sniff(data):
            return fmt
    return None


def sniff_format(data: bytes) -> str | None:
    """'jpeg' | 'png' | 'webp' | 'heif' from the magic bytes, or None."""
    fmt = sniff(data)
    return fmt.name if fmt is not None else None


def completeness(data: bytes) -> Completeness:
    """Is this upload finished? Empty and too-short-to-tell prefixes of a known magic are
    incomplete; unknown containers are UNKNOWN (the decoder refuses them with a reason)."""
    if not data:
        return Completeness.INCOMPLETE
    fmt = sniff(data) or sniff_video(data)
    if fmt is not None:
        return fmt.completeness(data)
    if data[4:8] == b"ftyp":
        return bmff_completeness(data)  # AVIF and other ISO-BMFF: refused, but only once whole
    if data[:4] == _EBML_MAGIC or (len(data) < 4 and _EBML_MAGIC.startswith(data)):
        head = _ebml_element(data, 0)  # the EBML header names the DocType: until it is whole, wait
        if head is None or (head[2] >= 0 and len(data) < head[1] + head[2]):
            return Completeness.INCOMPLETE
        return Completeness.UNKNOWN
    if any(f.could_become(data) for f in FORMATS.values()):
        return Completeness.INCOMPLETE
    return Completeness.UNKNOWN


def describe_unknown(data: bytes) -> str:
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return f"GIF images are not supported; please send the photo as {SUPPORTED_TEXT}"
    if data[4:8] == b"ftyp" and data[8:12] in AVIF_BRANDS:
        return f"AVIF images are not supported; please send the photo as {SUPPORTED_TEXT}"
    if data[4:8] == b"ftyp":
        return f"video or unknown media files are not supported; please send a {SUPPORTED_TEXT} photo"
    return f"the file is not a supported image ({SUPPORTED_TEXT})"
