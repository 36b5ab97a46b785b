"""Video clips: the same protection as photos, frame by frame.

A face stays visible in a channel only when its track is confidently one pupil with consent for
that channel; every other face is redacted on every frame it is on (and a little around it in
time and space, see :mod:`photoguard.photo.track`).

The clip is decoded twice with PyAV (the ``av`` wheel bundles FFmpeg; no external binary):

1. **analyse**: every frame upright; the pipeline's detector on every ``full_detect_every``-th
   frame and a quick detector (``video.quick_detector``) on every frame between; detections linked into tracks;
   face templates taken every ``identify_every`` frames of a track with the pipeline's template
   model and matched like a photo's faces. One decision per track (:func:`track_match`), then
   the consent rule per channel (``core.decide``), exactly as for a photo's faces.
2. **render**: frames decoded again, each version (a set of visible tracks) redacted once,
   scaled per channel and encoded to H.264 in a fresh MP4 with no metadata: no container or
   stream tags, no encoder string (``bitexact``, and the encoder's SEI message removed), no
   rotation (the pixels are upright). Sound only for the channels in ``video.audio_channels``,
   decoded and encoded again (never copied). Each file is read back by
   :func:`verify_clean_video` before it is published.

Publishing, holding and the ledger are the pipeline's own (``Pipeline._publish`` and
``Pipeline._hold``), so takedowns, retention, re-rendering after a consent change and review
work for clips as for photos.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import math
import queue
import re
import struct
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
import cv2
import numpy as np
from av.bitstream import BitStreamFilterContext
from av.video.reformatter import VideoReformatter

from photoguard.config import ChannelConfig, VideoConfig
from photoguard.core.decide import Verdict, decide_all, held_channels, visible_pupils
from photoguard.core.naming import PersonName, unnamed
from photoguard.core.records import Box, Detection, FaceAction, Match, MatchKind, PhotoStatus
from photoguard.core.textpolicy import TextBox, decide_text
from photoguard.core.upload import Upload
from photoguard.ledger import ledger
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import AuditEvent
from photoguard.photo.decode import clean_caption
from photoguard.photo.detect import Detector, build_detector
from photoguard.photo.formats import TRUNCATED, Completeness, MediaError, _boxes, sniff_video
from photoguard.photo.pipeline import (
    MAX_CONSENT_RETRIES,
    ConsentChanged,
    FaceReport,
    Held,
    ProcessResult,
    Rendered,
    _Done,
)
from photoguard.photo.redact import redact
from photoguard.photo.track import IouTracker, MaskPlan, Track, _grown

if TYPE_CHECKING:
    from photoguard.photo.pipeline import Pipeline

log = logging.getLogger(__name__)

#: the time base of the clips photoguard writes (the MPEG 90 kHz clock)
OUT_TIME_BASE = Fraction(1, 90_000)
AUDIO_RATE = 48_000
#: container tags FFmpeg reports for every MP4 (structure, not metadata about the clip)
_STRUCTURAL_TAGS = {"major_brand", "minor_version", "compatible_brands"}
#: stream tags every MP4 track carries: the handler of the track type and an empty vendor
_GENERIC_STREAM_TAGS = {
    ("handler_name", "VideoHandler"),
    ("handler_name", "SoundHandler"),
    ("vendor_id", "[0][0][0][0]"),
    ("language", "und"),
}
#: bytes that betray an encoder or a metadata atom (QuickTime user data, XMP), searched in the
#: boxes around the media data (short atoms would turn up by chance in megabytes of video)
_FORBIDDEN_BOX_BYTES = (b"Lavf", b"Lavc", b"\xa9too", b"\xa9xyz", b"\xa9nam", b"\xa9mak", b"\xa9mod", b"\xa9day",
                        b"\xa9cmt", b"udta", b"<x:xmpmeta", b"com.apple.quicktime")  # fmt: skip
#: encoder strings searched everywhere, the media data included (an SEI or fill element)
_FORBIDDEN_MEDIA = re.compile(rb"x264 - core|x265 \(build|Lav[fc]\d\d")


def _unreadable() -> MediaError:
    return MediaError("the clip could not be read (damaged or an unsupported codec); please upload it again")


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What the container says about a clip, upright."""

    width: int
    height: int
    quarter_turns: int  # np.rot90 turns that make the decoded frames upright
    fps: Fraction
    seconds: float
    audio: bool
    codec: str


def _open(data: bytes) -> Any:
    return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")


def _turns(rotation: float) -> int:
    """FFmpeg's display rotation (degrees counter-clockwise) as np.rot90 turns; MediaError for
    angles that are not a quarter turn."""
    turns = round(rotation / 90)
    if abs(rotation - 90 * turns) > 1:
        raise MediaError(f"the clip has an unsupported rotation ({rotation:.0f} degrees)")
    return turns % 4


def _check_frame_size(width: int, height: int, cfg: VideoConfig) -> None:
    if width * height > cfg.max_pixels:
        raise MediaError(
            f"the clip's frames are too large ({width}x{height}; the limit is "
            f"{cfg.max_pixels / 1e6:.1f} megapixels)"
        )


def probe(data: bytes, cfg: VideoConfig) -> ClipInfo:
    """Read the container and the first frame; MediaError with a clear reason when the clip
    cannot be read or exceeds a limit in ``cfg``."""
    if len(data) > cfg.max_bytes:
        raise MediaError(f"the clip is too large ({len(data) / 1e6:.0f} MB; the limit is {cfg.max_bytes / 1e6:.0f} MB)")
    fmt = sniff_video(data)
    if fmt is None:
        raise MediaError("the file is not a supported video (MP4, MOV, M4V or WebM)")
    if fmt.completeness(data) is Completeness.INCOMPLETE:
        raise MediaError(TRUNCATED)
    try:
        with _open(data) as c:
            if not c.streams.video:
                raise MediaError("the clip has no picture")
            v = c.streams.video[0]
            # the frame size the stream declares, before a frame is decoded: a clip of huge frames
            # is refused without allocating one (turning it does not change the pixel count)
            _check_frame_size(v.codec_context.width or 0, v.codec_context.height or 0, cfg)
            fps = v.average_rate or v.guessed_rate or v.base_rate
            if c.duration is not None:
                seconds = c.duration / av.time_base
            elif v.duration is not None and v.time_base is not None:
                seconds = float(v.duration * v.time_base)
            else:
                seconds = math.inf
            first = next(c.decode(v), None)
            if first is None:
                raise MediaError("the clip has no frames")
            turns = _turns(float(first.rotation or 0))
            w, h = first.width, first.height
            info = ClipInfo(
                width=h if turns % 2 else w,
                height=w if turns % 2 else h,
                quarter_turns=turns,
                fps=Fraction(fps) if fps else Fraction(0),
                seconds=seconds,
                audio=bool(c.streams.audio),
                codec=v.codec_context.name,
            )
    except MediaError:
        raise
    except (av.FFmpegError, ValueError, StopIteration, OverflowError) as exc:
        log.info("clip unreadable: %s", type(exc).__name__)
        raise _unreadable() from None
    if info.seconds > cfg.max_seconds:
        what = "unknown" if math.isinf(info.seconds) else f"{info.seconds:.0f} s"
        raise MediaError(f"the clip is too long ({what}; the limit is {cfg.max_seconds:.0f} s)")
    _check_frame_size(info.width, info.height, cfg)
    if info.fps <= 0 or info.fps > cfg.max_fps:
        raise MediaError(f"the clip's frame rate is not supported ({float(info.fps):.0f} fps)")
    return info


def iter_frames(data: bytes, turns: int) -> Iterator[tuple[int, np.ndarray, float | None]]:
    """(index, upright RGB frame, time in seconds) for every frame of the first video stream."""
    with _open(data) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(v)):
            rgb = frame.to_ndarray(format="rgb24")
            if turns:
                rgb = np.ascontiguousarray(np.rot90(rgb, turns))
            yield i, rgb, frame.time


# --------------------------------------------------------------------------------------------
# One decision per track


def track_match(samples: Sequence[Match], min_fraction: float) -> Match:
    """One Match for a whole track from the matches of its sampled frames. MATCH only when
    every sample that names a pupil names the same one with a MATCH, and at least
    ``min_fraction`` of the samples large enough to judge are that MATCH; a track that names a
    pupil otherwise is NEAR that pupil (the policy holds or redacts it); else NONE or TOO_SMALL."""
    if not samples:
        return Match(MatchKind.TOO_SMALL)
    named = [m for m in samples if m.kind in (MatchKind.MATCH, MatchKind.NEAR) and m.pupil_id]
    judged = [m for m in samples if m.kind is not MatchKind.TOO_SMALL]
    if not named:
        return Match(MatchKind.NONE) if judged else Match(MatchKind.TOO_SMALL)
    counts = Counter(m.pupil_id for m in named)
    pupil = min(counts, key=lambda p: (-counts[p], p or ""))
    mine = [m for m in named if m.pupil_id == pupil]
    distances = [m.distance for m in mine if m.distance is not None]
    runners = [m.runner_up for m in samples if m.runner_up is not None]
    matched = [m for m in mine if m.kind is MatchKind.MATCH]
    if len(counts) == 1 and len(matched) == len(named) and len(matched) >= min_fraction * len(judged):
        return Match(
            MatchKind.MATCH, pupil, max(distances) if distances else None, min(runners) if runners else None
        )
    return Match(MatchKind.NEAR, pupil, min(distances) if distances else None, None)


def exclusive(tracks: Sequence[Track], matches: Sequence[Match]) -> list[Match]:
    """A pupil is one face at a time: tracks MATCHed to the same pupil that overlap in time are
    all demoted to NEAR (a look-alike in the same shot is not a confident match)."""
    out = list(matches)
    for i, (ti, mi) in enumerate(zip(tracks, matches, strict=True)):
        if mi.kind is not MatchKind.MATCH:
            continue
        for j, (tj, mj) in enumerate(zip(tracks, matches, strict=True)):
            same = i != j and mj.kind is MatchKind.MATCH and mj.pupil_id == mi.pupil_id
            if same and ti.first <= tj.last and tj.first <= ti.last:
                out[i] = Match(MatchKind.NEAR, mi.pupil_id, mi.distance, mi.runner_up)
    return out


# --------------------------------------------------------------------------------------------
# Encoding and verification


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Never larger than the source, longest side at most ``max_side``, both sides even."""
    scale = min(1.0, max_side / max(width, height))
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def yuv_frame(rgb: np.ndarray) -> av.VideoFrame:
    """``rgb`` as a YUV 4:2:0 frame (BT.601, as FFmpeg converts it). OpenCV converts at the
    source size, then each writer scales the planes (4x cheaper, measured, than one swscale
    pass from RGB per file); frames with an odd side go through swscale."""
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
    planes: np.ndarray = np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420), np.uint8)
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


class ClipWriter:
    """One output MP4 in memory: H.264 (and AAC when ``audio``), no metadata."""

    def __init__(self, size: tuple[int, int], fps: Fraction, cfg: VideoConfig, *, audio: bool) -> None:
        self.size = size
        self._buf = io.BytesIO()
        self._out = av.open(self._buf, mode="w", format="mp4", options={"fflags": "+bitexact"})
        self._out.metadata.clear()
        rate = fps.limit_denominator(1001) if fps > 0 else Fraction(30)
        self._v = self._out.add_stream(
            "libx264", rate=rate, options={"crf": str(cfg.crf), "preset": cfg.preset, "threads": "0"}
        )
        self._v.width, self._v.height = size
        self._v.pix_fmt = "yuv420p"
        self._v.codec_context.time_base = OUT_TIME_BASE
        self._v.time_base = OUT_TIME_BASE
        self._a: Any = None
        if audio:
            # bitexact: FFmpeg's AAC encoder otherwise writes its name into the first frame
            self._a = self._out.add_stream("aac", rate=AUDIO_RATE, layout="stereo", options={"flags": "+bitexact"})
            self._a.time_base = Fraction(1, AUDIO_RATE)
        self._out.start_encoding()
        # the encoder's SEI user data carries its version and settings string: removed
        self._bsf = BitStreamFilterContext("filter_units=remove_types=6", self._v)
        self._last_pts = -1
        self._index = 0
        self._scaler = VideoReformatter()

    def _mux_video(self, packets: Sequence[Any]) -> None:
        for p in packets:
            for q in self._bsf.filter(p):
                q.stream = self._v
                self._out.mux(q)

    def add_frame(self, rgb: np.ndarray | av.VideoFrame, seconds: float | None, fps: Fraction) -> None:
        """One frame: RGB pixels, or a frame from :func:`yuv_frame` (converted once, shared by
        the writers of the same pixels at every size); scaled here to this file's size."""
        frame = rgb if isinstance(rgb, av.VideoFrame) else yuv_frame(rgb)
        if (frame.width, frame.height) != self.size or frame.format.name != "yuv420p":
            # the writer's own scaler: a frame's cached one must not serve two threads at once
            frame = self._scaler.reformat(frame, self.size[0], self.size[1], "yuv420p", interpolation="AREA")
        elif frame is rgb:
            # a frame of its own: the pts is set on it, and other writers may share the source
            frame = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
        if seconds is None:
            seconds = self._index / float(fps or 30)
        pts = max(round(seconds / OUT_TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        self._index += 1
        frame.pts = pts
        frame.time_base = OUT_TIME_BASE
        self._mux_video(self._v.encode(frame))

    def add_audio(self, data: bytes) -> None:
        """Decode the source's first audio stream and encode it again (never copied)."""
        if self._a is None:
            return
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        with _open(data) as c:
            if not c.streams.audio:
                return
            for frame in c.decode(c.streams.audio[0]):
                frame.pts = None
                for r in resampler.resample(frame):
                    for p in self._a.encode(r):
                        self._out.mux(p)
        for r in resampler.resample(None):
            for p in self._a.encode(r):
                self._out.mux(p)

    def finish(self, *, index_first: bool = True) -> bytes:
        """The MP4's bytes, its index (``moov``) in front of the media unless ``index_first`` is
        off (FFmpeg's own layout, for tests)."""
        self._mux_video(self._v.encode(None))
        for q in self._bsf.filter(None):
            q.stream = self._v
            self._out.mux(q)
        if self._a is not None:
            for p in self._a.encode(None):
                self._out.mux(p)
        self._out.close()
        data = self._buf.getvalue()
        return fast_start(data) if index_first else data

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed or failed: nothing to keep
            self._out.close()


#: boxes on the way from ``moov`` to the chunk offset tables (stco, co64) of each track
_CONTAINER_BOXES = {b"trak", b"mdia", b"minf", b"stbl"}


def _shift_chunk_offsets(moov: bytearray, body: int, end: int, shift: int) -> None:
    """Add ``shift`` to every chunk offset (``stco``/``co64``) under ``moov[body:end]``, in place."""
    for typ, b, e in _boxes(bytes(moov), body, end) or []:
        if typ in _CONTAINER_BOXES:
            _shift_chunk_offsets(moov, b, e, shift)
        elif typ in (b"stco", b"co64"):
            wide = typ == b"co64"
            (count,) = struct.unpack_from(">I", moov, b + 4)  # after version and flags
            fmt, size = (">Q", 8) if wide else (">I", 4)
            if b + 8 + count * size > e:
                raise MediaError("the encoded clip has a damaged chunk table")
            for k in range(count):
                at = b + 8 + k * size
                (off,) = struct.unpack_from(fmt, moov, at)
                if not wide and off + shift >= 2**32:
                    raise MediaError("the encoded clip is too large to be moved to fast start")
                struct.pack_into(fmt, moov, at, off + shift)


def fast_start(data: bytes) -> bytes:
    """The MP4 with its ``moov`` box moved in front of its media data, so that a player can start
    while the clip still downloads ("fast start"; FFmpeg's ``movflags=+faststart`` needs a file
    it can open again, and photoguard encodes in memory), and without the ``udta`` box in the
    ``moov``: the muxer always writes an empty iTunes tag list there, with Apple's handler
    vendor code. Applies to FFmpeg's layout (``ftyp``, media, ``moov`` last); anything else is
    returned as it is (:func:`moov_first` tells)."""
    top = _boxes(data, 0, len(data))
    if not top or top[0][0] != b"ftyp" or top[-1][0] != b"moov" or b"mdat" not in [t for t, _b, _e in top[:-1]]:
        return data
    _typ, body, end = top[-1]
    start = body - 8
    if end - start != struct.unpack_from(">I", data, start)[0]:
        return data  # a 64-bit size moov: not what FFmpeg writes for clips of this size
    children = _boxes(data, body, end) or []
    if not children or any(cb - 8 < body for _ct, cb, _ce in children):
        return data
    kept = b"".join(data[cb - 8 : ce] for ct, cb, ce in children if ct != b"udta")
    moov = bytearray(struct.pack(">I4s", 8 + len(kept), b"moov") + kept)
    ftyp_end = top[0][2]
    # everything between ftyp and moov (free, mdat) moves back by the moov's size
    _shift_chunk_offsets(moov, 8, len(moov), len(moov))
    return data[:ftyp_end] + bytes(moov) + data[ftyp_end:start] + data[end:]


def moov_first(data: bytes) -> bool:
    """Does the MP4's ``moov`` box come before its ``mdat`` (can it play while downloading)?"""
    order = [t for t, _b, _e in _boxes(data, 0, len(data)) or []]
    return b"moov" in order and b"mdat" in order and order.index(b"moov") < order.index(b"mdat")


def clip_tags(data: bytes) -> dict[str, str]:
    """Every metadata tag FFmpeg reads from a clip: container tags as ``key``, stream tags as
    ``s<index>:key`` (the structural brand tags and generic track handler tags left out)."""
    out: dict[str, str] = {}
    with _open(data) as c:
        for k, v in c.metadata.items():
            if k not in _STRUCTURAL_TAGS:
                out[k] = v
        for s in c.streams:
            for k, v in s.metadata.items():
                if (k, v) not in _GENERIC_STREAM_TAGS:
                    out[f"s{s.index}:{k}"] = v
    return out


def verify_clean_video(data: bytes, *, audio: bool = False) -> list[str]:
    """Problems with a clip photoguard wrote (empty = clean): remaining metadata tags, chapters,
    a rotation, streams other than one H.264 video (and one AAC audio when ``audio``), encoder
    strings or metadata atoms in the bytes, no decodable frame, or the ``moov`` box after the media
    data (the clip would not play while it downloads)."""
    problems: list[str] = []
    if sniff_video(data) is None or data[8:12] not in (b"isom", b"mp42", b"mp41"):
        return ["not an MP4 file"]
    try:
        for key in sorted(clip_tags(data)):
            problems.append(f"metadata tag {key}")
        with _open(data) as c:
            kinds = sorted(s.type for s in c.streams)
            want = ["audio", "video"] if audio else ["video"]
            if kinds != want:
                problems.append(f"streams {kinds}, expected {want}")
            if c.streams.video and c.streams.video[0].codec_context.name != "h264":
                problems.append("video is not H.264")
            if c.streams.audio and c.streams.audio[0].codec_context.name != "aac":
                problems.append("audio is not AAC")
            if getattr(c, "chapters", None) and c.chapters():
                problems.append("chapters")
            first = next(c.decode(video=0), None) if c.streams.video else None
            if first is None:
                problems.append("no decodable frame")
            elif first.rotation:
                problems.append(f"rotation {first.rotation}")
    except (av.FFmpegError, ValueError) as exc:
        problems.append(f"unreadable ({type(exc).__name__})")
    if not moov_first(data):
        problems.append("the moov box is not in front of the media data (no fast start)")
    top = _boxes(data, 0, len(data)) or []
    around = b"".join(data[b - 8 : e] for t, b, e in top if t != b"mdat") if top else data
    for needle in _FORBIDDEN_BOX_BYTES:
        if needle in around:
            problems.append(f"forbidden bytes {needle!r}")
    found = _FORBIDDEN_MEDIA.search(data)
    if found:
        problems.append(f"encoder string {found.group()!r}")
    return problems


# --------------------------------------------------------------------------------------------
# The processor


@dataclass
class Analysis:
    info: ClipInfo
    tracks: list[Track]
    samples: dict[int, list[Match]]
    frames: int
    stages: dict[str, float]
    carried: int = 0  # frames not detected: the tracks' masks carried over them
    #: (frame, text lines found on it) for every frame the text stage read, in frame order
    text: list[tuple[int, list[TextBox]]] = field(default_factory=list)


IdentifyFn = Callable[[np.ndarray, Sequence[Detection]], list[Any]]

#: text to cover in a file: (first frame, last frame, box) per region
TextCover = tuple[tuple[int, int, Box], ...]
#: one distinct output file: (visible track ids, size, sound, text covered)
FileKey = tuple[frozenset[int], tuple[int, int], bool, TextCover]

#: (pass, frames done, frames in the clip): "analyse" then "render"
ClipProgress = Callable[[str, int, int], None]
_progress: contextvars.ContextVar[ClipProgress | None] = contextvars.ContextVar("clip_progress", default=None)
#: frames a writer's thread may lag behind the decoder (bounds the frames held in memory)
_ENCODE_AHEAD = 4
#: a frame where at least this share of the picture changed starts a new scene (text is read again)
SCENE_CUT_SHARE = 0.3


@contextlib.contextmanager
def clip_progress(report: ClipProgress) -> Iterator[None]:
    """Clips processed by this thread inside the block report their progress to ``report``
    (``process`` prints a line, the watch service puts it in its heartbeat). Reports come from
    the processing thread, about once a frame: ``report`` must be quick."""
    token = _progress.set(report)
    try:
        yield
    finally:
        _progress.reset(token)



_QUICK: weakref.WeakKeyDictionary[Any, list[Detector]] = weakref.WeakKeyDictionary()
_QUICK_LOCK = threading.Lock()


def quick_detectors(pipeline: Pipeline) -> list[Detector]:
    """The detectors for the frames between full detections: ``video.quick_detector``, one per
    detection thread (``video.detect_threads``), built once per pipeline. A pipeline whose
    detector serves as its own self-check detector was given one detector (tests, injected
    models): that one serves here too, on one thread."""
    if pipeline.checker is pipeline.detector:
        return [pipeline.detector]
    cfg = pipeline.settings.video
    with _QUICK_LOCK:
        found = _QUICK.setdefault(pipeline, [])
        while len(found) < cfg.detect_threads:
            found.append(build_detector(cfg.quick_detector))
        return found[: cfg.detect_threads]


def _snapped(box: Box, step: int = 8) -> Box:
    """``box`` grown outward to a grid of ``step`` pixels (the same text read a little
    differently on the next frame gives the same box, and one region covers it)."""
    return Box(
        step * math.floor(box.x1 / step), step * math.floor(box.y1 / step),
        step * math.ceil(box.x2 / step), step * math.ceil(box.y2 / step),
    )


def _merged(regions: Sequence[tuple[int, int, Box]]) -> TextCover:
    """The same box over overlapping or touching frame spans, one region (sorted)."""
    out: list[tuple[int, int, Box]] = []
    for first, last, box in sorted(regions, key=lambda r: (r[2].to_list(), r[0], r[1])):
        if out and out[-1][2] == box and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last), box)
        else:
            out.append((first, last, box))
    return tuple(sorted(out, key=lambda r: (r[0], r[1], r[2].to_list())))


def _cover(pixels: np.ndarray, boxes: Sequence[Box], fresh: bool) -> np.ndarray:
    """Text boxes filled solid, as :func:`photoguard.photo.text.cover_text` fills a region
    without a polygon (one flat colour: the mean of a ring around it quantised to steps of 32,
    so no ink colour survives), for axis-aligned boxes only and without its per-region mask
    work (a clip fills the same boxes on many frames). ``fresh``: ``pixels`` is a copy of our
    own, filled in place."""
    out = pixels if fresh else pixels.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x1, y1 = max(0, math.floor(box.x1)), max(0, math.floor(box.y1))
        x2, y2 = min(w, math.ceil(box.x2)), min(h, math.ceil(box.y2))
        if x2 <= x1 or y2 <= y1:
            continue
        pad = max(3, int(0.15 * min(x2 - x1, y2 - y1)))
        rx1, ry1, rx2, ry2 = max(0, x1 - pad), max(0, y1 - pad), min(w, x2 + pad), min(h, y2 + pad)
        ring = pixels[ry1:ry2, rx1:rx2].reshape(-1, 3).astype(np.float64).sum(axis=0)
        inner = pixels[y1:y2, x1:x2].reshape(-1, 3).astype(np.float64).sum(axis=0)
        count = (ry2 - ry1) * (rx2 - rx1) - (y2 - y1) * (x2 - x1)
        mean = (ring - inner) / count if count > 0 else np.array([128.0, 128.0, 128.0])
        out[y1:y2, x1:x2] = (np.floor(mean / 32) * 32 + 16).clip(0, 255).astype(np.uint8)
    return out


class MotionGate:
    """Does something start to move where nothing moved before, outside the faces already
    followed? Each frame is compared with the one before on a small grey copy (longest side
    ``side`` pixels); what changes is "new" unless it changed in the frame before too (a little
    around it: things move) or lies in a known face's box grown by half its size. A person
    walking in, a face turning up from behind something: new. A body that keeps moving, a
    face that is followed: not. A camera that starts to pan: new everywhere, then every frame
    is detected by the schedule."""

    def __init__(self, width: int, height: int, *, side: int = 240, level: int = 12, pixels: int = 4) -> None:
        self.scale = side / max(width, height, 1)
        self.size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.level = level
        self.pixels = pixels
        self._prev: np.ndarray | None = None
        self._moving: np.ndarray | None = None
        self._near = np.ones((7, 7), np.uint8)
        #: the share of the picture that changed from the frame before (a scene cut: most of it)
        self.share = 1.0

    def moved(self, rgb: np.ndarray, boxes: Sequence[Box]) -> bool:
        small = cv2.cvtColor(cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        prev, self._prev = self._prev, small
        if prev is None or prev.shape != small.shape:
            self.share = 1.0
            return True
        changed = (cv2.absdiff(small, prev) > self.level).astype(np.uint8)
        self.share = float(np.count_nonzero(changed)) / changed.size
        before, self._moving = self._moving, changed
        new = changed if before is None else changed & (cv2.dilate(before, self._near) == 0)
        w, h = self.size
        for b in boxes:
            grow = 0.5 * max(b.width, b.height)
            x1, y1 = max(0, math.floor((b.x1 - grow) * self.scale)), max(0, math.floor((b.y1 - grow) * self.scale))
            x2, y2 = min(w, math.ceil((b.x2 + grow) * self.scale)), min(h, math.ceil((b.y2 + grow) * self.scale))
            if x2 > x1 and y2 > y1:
                new[y1:y2, x1:x2] = 0
        return int(np.count_nonzero(new)) >= self.pixels


class VideoProcessor:
    """Processes clips for a :class:`~photoguard.photo.pipeline.Pipeline` (its detectors,
    template matching, consent registry, publishing and holding)."""

    def __init__(self, pipeline: Pipeline, *, quick: Sequence[Detector] = ()) -> None:
        self.pipe = pipeline
        self.settings = pipeline.settings
        self.cfg = pipeline.settings.video
        self.identify: IdentifyFn = pipeline._identify
        self.full: Detector = pipeline.detector
        self.quick: list[Detector] = list(quick) or quick_detectors(pipeline)

    # -- analysis ----------------------------------------------------------------------------
    def _detections(
        self,
        data: bytes,
        info: ClipInfo,
        stages: dict[str, float],
        tracker: IouTracker,
        carried: list[int],
        cuts: set[int],
    ) -> Iterator[tuple[int, np.ndarray, list[Detection] | None]]:
        """(index, upright frame, detections or None where the frame was not detected) in frame
        order. The full detector runs on every ``full_detect_every``-th frame, the quick one on
        every ``quick_detect_every``-th frame between and on every frame where something moves
        outside the faces ``tracker`` follows or the frame after a face came or went
        (``tracker.unsettled``); the masks carry the tracks over the frames between
        (:class:`~photoguard.photo.track.MaskPlan`). With more than one quick detector the frames
        are detected on that many threads (OpenCV releases the GIL; one YuNet pass hardly uses a
        second core by itself), a few frames ahead of the caller."""
        cfg = self.cfg
        every = cfg.full_detect_every
        free: queue.SimpleQueue[Detector] = queue.SimpleQueue()
        for d in self.quick:
            free.put(d)
        lock = threading.Lock()
        gate = MotionGate(info.width, info.height)
        force_until = -1

        def add(stage: str, seconds: float) -> None:
            with lock:
                stages[stage] += seconds

        def detect(i: int, rgb: np.ndarray, full: bool) -> list[Detection]:
            t = time.perf_counter()
            if full:
                dets = self.full.detect(rgb)
                add("detect_full", time.perf_counter() - t)
                return dets
            det = free.get()
            try:
                dets = det.detect(rgb)
            finally:
                free.put(det)
            add("detect_quick", time.perf_counter() - t)
            return dets

        def wanted(i: int, rgb: np.ndarray) -> bool:
            # the gate sees every frame, in order (it compares each with the one before)
            moved = gate.moved(rgb, tracker.open_boxes())
            if gate.share >= SCENE_CUT_SHARE:
                cuts.add(i)
            return i % every == 0 or i % cfg.quick_detect_every == 0 or moved or i <= force_until

        def settle(i: int, dets: list[Detection] | None) -> None:
            nonlocal force_until
            if dets is None:
                carried[0] += 1
            elif tracker.unsettled:
                force_until = max(force_until, i + 1)

        frames = iter_frames(data, info.quarter_turns)
        if len(self.quick) == 1:
            for i, rgb, _t in frames:
                dets = detect(i, rgb, i % every == 0) if wanted(i, rgb) else None
                yield i, rgb, dets
                settle(i, dets)
            return
        ahead = 2 * len(self.quick)
        with ThreadPoolExecutor(len(self.quick), thread_name_prefix="video-detect") as pool:
            window: deque[tuple[int, np.ndarray, Future[list[Detection]] | None]] = deque()
            try:
                for i, rgb, _t in frames:
                    fut = pool.submit(detect, i, rgb, i % every == 0) if wanted(i, rgb) else None
                    window.append((i, rgb, fut))
                    if len(window) > ahead:
                        j, img, done = window.popleft()
                        dets = done.result() if done is not None else None
                        yield j, img, dets
                        settle(j, dets)
                while window:
                    j, img, done = window.popleft()
                    dets = done.result() if done is not None else None
                    yield j, img, dets
                    settle(j, dets)
            finally:
                for _j, _img, left in window:
                    if left is not None:
                        left.cancel()

    def analyse(self, data: bytes, info: ClipInfo, sha: str = "") -> Analysis:
        """Faces detected, tracked and matched over the whole clip; text read on the first frame,
        about every ``video.text_every_seconds`` and after every scene cut (``text.enabled``)."""
        cfg = self.cfg
        tracker = IouTracker(iou=cfg.track_iou, gap=cfg.track_gap)
        samples: dict[int, list[Match]] = {}
        sampled_at: dict[int, int] = {}
        # seconds summed over the detection threads; frames not detected (carried by the tracks)
        stages = {"detect_full": 0.0, "detect_quick": 0.0, "identify": 0.0}
        carried = [0]
        cuts: set[int] = set()
        # text is read on a thread of its own, beside the detection (results in frame order)
        reads: list[tuple[int, Future[list[TextBox]]]] = []
        text_every = max(1, round(float(info.fps) * cfg.text_every_seconds)) if info.fps > 0 else 30
        frames = 0
        report = _progress.get()
        total = max(1, round(info.seconds * float(info.fps))) if math.isfinite(info.seconds) else 0

        def read(rgb: np.ndarray) -> list[TextBox]:
            t = time.perf_counter()
            try:
                return self.pipe._find_text(rgb, sha)  # Held when text cannot be checked
            finally:
                stages["text"] = stages.get("text", 0.0) + time.perf_counter() - t

        with ThreadPoolExecutor(1, thread_name_prefix="video-text") as texts:
            try:
                for i, rgb, dets in self._detections(data, info, stages, tracker, carried, cuts):
                    frames = i + 1
                    if report is not None:
                        report("analyse", frames, max(total, frames))
                    if self.settings.text.enabled and (not reads or i - reads[-1][0] >= text_every or i in cuts):
                        reads.append((i, texts.submit(read, rgb)))
                    if dets is None:
                        continue
                    ids = tracker.update(i, dets)
                    # templates for the faces whose track has not been sampled for identify_every frames
                    due = [j for j, tid in enumerate(ids) if i - sampled_at.get(tid, -(10**9)) >= cfg.identify_every]
                    if not due:
                        continue
                    t = time.perf_counter()
                    matches = self.identify(rgb, [dets[j] for j in due])
                    stages["identify"] += time.perf_counter() - t
                    for j, m in zip(due, matches, strict=True):
                        samples.setdefault(ids[j], []).append(m)
                        sampled_at[ids[j]] = i
                text = [(i, fut.result()) for i, fut in reads]
            finally:
                for _i, fut in reads:
                    fut.cancel()
        if frames == 0:
            raise MediaError("the clip has no frames")
        return Analysis(info, tracker.tracks, samples, frames, stages, carried[0], text)

    def _text_covers(
        self, analysis: Analysis, channels: Sequence[ChannelConfig], roster: Sequence[Any], today: Any
    ) -> tuple[dict[str, TextCover], set[str]]:
        """Per channel, the text to cover (``core.textpolicy.decide_text`` on every frame read,
        as for a photo), each region from the frame read before to the frame read after it,
        grown for movement; and the channels where a pupil's name was found."""
        info = analysis.info
        margin = 0.01 * max(info.width, info.height)
        samples = analysis.text
        covers: dict[str, TextCover] = {}
        named: set[str] = set()
        for ch in channels:
            regions: list[tuple[int, int, Box]] = []
            for k, (frame, lines) in enumerate(samples):
                if not lines:
                    continue
                first = samples[k - 1][0] if k > 0 else 0
                last = samples[k + 1][0] if k + 1 < len(samples) else max(analysis.frames - 1, frame)
                for r in decide_text(lines, roster, ch, today, self.settings.text):
                    regions.append((first, last, _snapped(_grown(r.box, max(margin, 0.3 * r.box.height)))))
                    if r.pupil_ids:
                        named.add(ch.name)
            covers[ch.name] = _merged(regions)
        return covers, named

    # -- rendering ---------------------------------------------------------------------------
    def _faces_redacted(
        self,
        rgb: np.ndarray,
        frame: int,
        masks: dict[int, Box],
        shown: frozenset[int],
        done: dict[frozenset[int], np.ndarray],
    ) -> np.ndarray:
        """``rgb`` with every track's mask on ``frame`` redacted but those in ``shown``. Starts
        from a version already made that shows a superset (its redacted faces are redacted
        here too), so each face is filled once per frame rather than once per version."""
        base, base_shown = rgb, frozenset(masks)
        for other, pixels in done.items():
            if shown <= other and len(other & base_shown) < len(base_shown):
                base, base_shown = pixels, other & frozenset(masks)
        hidden = [b for tid, b in masks.items() if tid in base_shown and tid not in shown]
        return redact(base, hidden, self.settings.redact, seed=frame) if hidden else base

    def render(
        self,
        data: bytes,
        analysis: Analysis,
        files: dict[FileKey, list[ChannelConfig]],
    ) -> dict[FileKey, bytes]:
        """Encode every distinct file: (visible track ids, size, audio) -> MP4 bytes. The clip is
        decoded once; each version (set of visible tracks) is redacted once per frame and handed
        to its files' writers, each on its own thread (scaling and H.264 run without the GIL),
        a few frames behind the decoder."""
        info = analysis.info
        plan = MaskPlan(analysis.tracks, self.cfg.track_gap, self.cfg.motion_grow)
        writers = {key: ClipWriter(key[1], info.fps, self.cfg, audio=key[2]) for key in files}
        # the versions that show most first: one that shows less starts from one that shows more
        versions = sorted(dict.fromkeys((key[0], key[3]) for key in files), key=lambda v: -len(v[0]))
        pools = {key: ThreadPoolExecutor(1, thread_name_prefix="video-encode") for key in writers}
        backlog: dict[FileKey, deque[Future[None]]] = {
            key: deque() for key in writers
        }
        report = _progress.get()
        try:
            for key, w in writers.items():
                if key[2]:
                    w.add_audio(data)
            for i, rgb, seconds in iter_frames(data, info.quarter_turns):
                masks = plan.boxes(i)
                faced: dict[frozenset[int], np.ndarray] = {}
                for shown, text in versions:
                    if shown not in faced:
                        faced[shown] = self._faces_redacted(rgb, i, masks, shown, faced)
                    pixels = faced[shown]
                    on = [box for first, last, box in text if first <= i <= last]
                    if on:
                        pixels = _cover(pixels, on, fresh=False)
                    frame = yuv_frame(pixels)
                    for key, w in writers.items():
                        if (key[0], key[3]) == (shown, text):
                            backlog[key].append(pools[key].submit(w.add_frame, frame, seconds, info.fps))
                            while len(backlog[key]) > _ENCODE_AHEAD:
                                backlog[key].popleft().result()
                if report is not None:
                    report("render", i + 1, analysis.frames)
            for futures in backlog.values():
                while futures:
                    futures.popleft().result()
            return {key: w.finish() for key, w in writers.items()}
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True, cancel_futures=True)
            for w in writers.values():
                w.close()

    # -- the whole clip ----------------------------------------------------------------------
    def process(
        self,
        upload: Upload,
        *,
        approved_channels: Collection[str],
        from_quarantine: str | None,
        channels: Collection[str] | None,
        rerender: bool,
    ) -> ProcessResult:
        pipe = self.pipe
        sha, source, data, suffix, stem, group = (
            upload.sha256, upload.source, upload.data, upload.suffix, upload.stem, upload.group
        )
        timings: dict[str, float] = {}
        t = time.perf_counter()
        try:
            info = probe(data, self.cfg)
        except MediaError as exc:
            return pipe._hold(
                sha, source, data, suffix, exc.reason, PhotoStatus.REJECTED, stem, group, uploader=upload.uploader
            )
        timings["decode"] = time.perf_counter() - t
        try:
            t = time.perf_counter()
            analysis = self.analyse(data, info, sha)
            timings["detect"] = time.perf_counter() - t
            timings.update(analysis.stages)
            log.info(
                "clip %s: %d frames, %d tracks, %d frames carried by the tracks (not detected)",
                sha[:12], analysis.frames, len(analysis.tracks), analysis.carried,
            )
            for _attempt in range(MAX_CONSENT_RETRIES):
                try:
                    return self._decide_and_publish(
                        upload, analysis, timings, approved_channels, from_quarantine, channels,
                        skip_live=not rerender,
                    )
                except ConsentChanged:
                    log.info("consent changed while clip %s was processed; deciding again", sha[:12])
            raise Held("consent kept changing while the clip was processed")
        except MediaError as exc:
            return pipe._hold(
                sha, source, data, suffix, exc.reason, PhotoStatus.REJECTED, stem, group, uploader=upload.uploader
            )
        except Held as exc:
            return pipe._hold(
                sha, source, data, suffix, str(exc), PhotoStatus.HELD, stem, group, uploader=upload.uploader
            )
        except Exception as exc:  # fail closed: anything unexpected holds the clip
            log.exception("clip %s held after an internal error", sha[:12])
            reason = f"internal error ({type(exc).__name__}); the clip was held, nothing published"
            return pipe._hold(
                sha, source, data, suffix, reason, PhotoStatus.HELD, stem, group, uploader=upload.uploader
            )

    def _decide_and_publish(
        self,
        upload: Upload,
        analysis: Analysis,
        timings: dict[str, float],
        approved: Collection[str],
        from_quarantine: str | None,
        only: Collection[str] | None,
        *,
        skip_live: bool,
    ) -> ProcessResult:
        pipe = self.pipe
        sha, source, data, suffix, stem, group, uploader = (
            upload.sha256, upload.source, upload.data, upload.suffix, upload.stem, upload.group, upload.uploader
        )
        tracks = analysis.tracks
        matches = exclusive(
            tracks, [track_match(analysis.samples.get(t.track_id, []), self.cfg.min_match_fraction) for t in tracks]
        )
        version = pipe.store.consent_version()
        pupils = Registry(pipe.store).pupils()
        today = pipe.today()
        channels = [c for c in self.settings.channels if only is None or c.name in only]
        if skip_live:
            live = ledger.live_channels(pipe.store, sha)
            channels = [c for c in channels if c.name not in live]
        verdicts: list[dict[str, Verdict]] = decide_all(
            matches, channels, pupils, today, self.settings.identify.near_match, approved
        )
        faces = [
            FaceReport(t.boxes[t.first], max(t.scores.values()), m, v)
            for t, m, v in zip(tracks, matches, verdicts, strict=True)
        ]
        held = held_channels(verdicts, channels)
        covers, named = self._text_covers(analysis, channels, list(pupils.values()), today)
        # a name read in the picture is covered where it was read, and the clip is held for a
        # person to check the cover between the frames read (an approval publishes it covered)
        text_held = [c.name for c in channels if c.name in named and c.name not in held and c.name not in approved]
        held += text_held
        publish = [c for c in channels if c.name not in held]
        if from_quarantine is not None:
            was_held = set(pipe._quarantine_held(from_quarantine)) or {c.name for c in channels}
            publish = [c for c in publish if c.name in approved]
            held += [c.name for c in channels if c.name in was_held and c.name not in approved and c.name not in held]
        t = time.perf_counter()
        info = analysis.info
        files: dict[FileKey, list[ChannelConfig]] = {}
        for ch in publish:
            shown = frozenset(
                t.track_id for t, v in zip(tracks, verdicts, strict=True) if v[ch.name].action is FaceAction.VISIBLE
            )
            size = output_size(info.width, info.height, min(ch.max_side, self.cfg.max_side))
            audio = info.audio and ch.name in self.cfg.audio_channels
            files.setdefault((shown, size, audio, covers[ch.name]), []).append(ch)
        encoded = self.render(data, analysis, files) if files else {}
        rendered: list[Rendered] = []
        for key, chans in files.items():
            problems = verify_clean_video(encoded[key], audio=key[2])
            if problems:
                raise Held(f"clip for {', '.join(c.name for c in chans)} failed the metadata check: {problems[0]}")
            rendered += [
                Rendered(
                    ch,
                    encoded[key],
                    "mp4",
                    visible_pupils(verdicts, matches, ch.name),
                    unnamed=tuple(unnamed(list(pupils.values()), ch, today)),
                )
                for ch in chans
            ]
        timings["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        everyone = [PersonName(p.first_name, p.surname_prefix, p.surname) for p in pupils.values()]
        # the teacher's sidecar caption only (as for photos), scrubbed per channel when published
        caption = clean_caption(upload.sidecar_text) if upload.sidecar_text else None
        done = None if held else _Done(uploader, len(faces), from_quarantine)
        outputs = pipe._publish(
            sha, rendered, today, group, stem, everyone, caption, version, guard_live=skip_live, done=done
        )
        timings["publish"] = time.perf_counter() - t
        status = PhotoStatus.HELD if held else PhotoStatus.PUBLISHED
        result = ProcessResult(source, sha, status, faces=faces, outputs=outputs, held_channels=held, timings=timings)
        if held:
            faces_held = [c for c in held if c not in text_held]
            reasons = []
            if faces_held:
                reasons.append("uncertain match to a consenting pupil; review needed for: " + ", ".join(faces_held))
            if text_held:
                reasons.append(
                    "a pupil's name is in the picture (covered where it was read; check the clip); review needed"
                    " for: " + ", ".join(text_held)
                )
            result.reason = "; ".join(reasons)
            pipe._hold(
                sha, source, data, suffix, result.reason, PhotoStatus.HELD, stem, group, held, result, upload.uploader
            )
            pipe.store.audit(
                AuditEvent(
                    "photo." + status.value,
                    photo_sha256=sha,
                    detail={"faces": len(faces), "channels": sorted(outputs), "held": held, "video": True},
                )
            )
        return result


# --------------------------------------------------------------------------------------------
# Preview frames for review


@dataclass(frozen=True, slots=True)
class PreviewFrame:
    """One frame of a held clip for the reviewer: redacted for a channel, faces outlined."""

    index: int  # frame number in the clip
    seconds: float
    faces: int  # faces outlined on it
    jpeg: bytes  # a fresh JPEG without metadata


#: outline colours (RGB): shown on the channel, resembles a pupil but stays covered, covered
_OUTLINE = {"visible": (40, 180, 60), "uncertain": (255, 150, 0), "redact": (220, 30, 30)}


def _frames_at(data: bytes, turns: int, times: Sequence[float]) -> list[tuple[int, float, np.ndarray]]:
    """(frame number, time, upright RGB frame) of the first frame at or after each time in
    ``times`` (ascending), decoded in one pass."""
    out: list[tuple[int, float, np.ndarray]] = []
    want = list(times)
    for i, rgb, seconds in iter_frames(data, turns):
        at = seconds if seconds is not None else 0.0
        if want and at + 1e-6 >= want[0]:
            out.append((i, at, rgb))
            while want and at + 1e-6 >= want[0]:
                want.pop(0)
        if not want:
            break
    return out


def clip_preview_frames(
    pipeline: Pipeline,
    data: bytes,
    faces: Sequence[dict[str, Any]],
    channel: str,
    *,
    count: int = 4,
    side: int = 1200,
    group: str = "",
) -> list[PreviewFrame]:
    """Up to ``count`` frames of a (held) clip for review, spread over the clip (in each of
    ``count`` stretches the sampled frame with the most faces), each as a JPEG redacted as
    ``channel`` would get it, every face outlined and numbered: green when shown, orange when it
    resembles a pupil but stays covered (what the reviewer decides on), red when covered.

    ``faces`` are the clip's recorded face decisions (``reason.json``). The frames are detected
    again with the pipeline's full detector and matched again; fail closed, a face stays visible
    only when this frame's match is that of a pupil whose recorded face is ``visible`` for
    ``channel``; everything else, a face the detector finds now and did not before included, is
    redacted. MediaError when the clip cannot be read."""
    from photoguard.photo.encode import encode_clean  # the photo encoder's JPEG, without metadata

    info = probe(data, pipeline.settings.video)
    shown = {
        str(f.get("pupil_id"))
        for f in faces
        if f.get("pupil_id") and f.get("match") == "match" and (f.get("decision") or {}).get(channel) == "visible"
    }
    seconds = info.seconds if math.isfinite(info.seconds) else 0.0
    samples = max(count, 3 * count)
    times = [seconds * (k + 0.5) / samples for k in range(samples)]
    quick = quick_detectors(pipeline)[0]
    found = [(i, t, rgb, len(quick.detect(rgb))) for i, t, rgb in _frames_at(data, info.quarter_turns, times)]
    chosen: list[tuple[int, float, np.ndarray]] = []
    per = max(1, math.ceil(len(found) / max(count, 1)))
    for start in range(0, len(found), per):
        i, t, rgb, _n = max(found[start : start + per], key=lambda c: (c[3], -c[0]))
        chosen.append((i, t, rgb))
    out: list[PreviewFrame] = []
    for i, t, rgb in chosen[:count]:
        dets = pipeline.detector.detect(rgb)
        matches = pipeline._identify(rgb, dets, group) if dets else []
        kinds: list[str] = []
        for m in matches:
            if m.kind is MatchKind.MATCH and m.pupil_id in shown:
                kinds.append("visible")
            elif m.kind in (MatchKind.MATCH, MatchKind.NEAR):
                kinds.append("uncertain")
            else:
                kinds.append("redact")
        hidden = [d.box for d, k in zip(dets, kinds, strict=True) if k != "visible"]
        pixels = redact(rgb, hidden, pipeline.settings.redact, seed=i) if hidden else rgb.copy()
        h, w = pixels.shape[:2]
        scale = min(1.0, side / max(w, h))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        pixels = np.ascontiguousarray(pixels)
        thick = max(2, round(max(pixels.shape[:2]) / 400))
        for n, (d, k) in enumerate(zip(dets, kinds, strict=True), 1):
            x1, y1, x2, y2 = (round(v * scale) for v in (d.box.x1, d.box.y1, d.box.x2, d.box.y2))
            cv2.rectangle(pixels, (x1, y1), (x2, y2), _OUTLINE[k], thick)
            at = (x1 + 2, max(y1 - 4, 12))
            cv2.putText(pixels, str(n), at, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, _OUTLINE[k], thick)
        jpeg, _ext = encode_clean(pixels, None, fmt="jpeg", quality=80, max_side=side)
        out.append(PreviewFrame(i, t, len(dets), jpeg))
    return out
