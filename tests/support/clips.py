"""Tiny synthetic video clips for tests, made with PyAV: textured 'faces' moving over a flat
background, with optional rotation side data, metadata tags and a sound track; and fake models
that find those faces wherever they are (and tell them apart by colour).

A face is a square of coarse random blocks: red-tinted faces get template 1 (enrolled as pupil
1001 by ``make_school``), blue-tinted faces template 2 (nobody). The blocks survive H.264, a
redaction fill does not, so "is the face still there" is "is the square still textured".
"""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from photoguard.core.records import Box, Detection
from tests.support.models import fake_vector

FACE = 44  # face square side in pixels (identify.min_face_px is 40)
RED, BLUE = "red", "blue"


@dataclass(frozen=True)
class MovingFace:
    tint: str  # RED (the enrolled pupil's template) or BLUE (a stranger)
    x: float  # top-left at frame 0 (upright coordinates)
    y: float
    dx: float = 0.0  # pixels per frame
    dy: float = 0.0
    seed: int = 0
    turns_into: str | None = None  # from frame ``turn_at`` on the face has this tint (an unsure track)
    turn_at: int = 0
    shown_from: int = 0  # the face is in the picture on frames shown_from..shown_until (inclusive)
    shown_until: int | None = None

    def shown(self, frame: int) -> bool:
        return frame >= self.shown_from and (self.shown_until is None or frame <= self.shown_until)

    def tint_at(self, frame: int) -> str:
        return self.turns_into if self.turns_into and frame >= self.turn_at else self.tint

    def box(self, frame: int) -> Box:
        x, y = round(self.x + self.dx * frame), round(self.y + self.dy * frame)
        return Box(x, y, x + FACE, y + FACE)


def face_patch(tint: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(FACE // 4, FACE // 4), dtype=np.uint8)
    lum = cv2.resize(blocks, (FACE, FACE), interpolation=cv2.INTER_NEAREST).astype(np.int16)
    patch = np.zeros((FACE, FACE, 3), dtype=np.int16)
    main, other = (0, 2) if tint == RED else (2, 0)
    patch[:, :, main] = 130 + lum // 2
    patch[:, :, 1] = lum // 3
    patch[:, :, other] = lum // 4
    return patch.clip(0, 255).astype(np.uint8)


def upright_frame(size: tuple[int, int], faces: Sequence[MovingFace], frame: int) -> np.ndarray:
    """The upright picture of ``frame``: grey background, a dark marker bottom-left, the faces."""
    w, h = size
    img = np.full((h, w, 3), 150, dtype=np.uint8)
    img[h - 12 : h, 0:12] = 20  # where "down and left" is: the rotation tests look for it
    for f in faces:
        if not f.shown(frame):
            continue
        x1, y1, x2, y2 = f.box(frame).as_ints()
        patch = face_patch(f.tint_at(frame), f.seed)
        xs, ys = max(x1, 0), max(y1, 0)
        xe, ye = min(x2, w), min(y2, h)
        if xe > xs and ye > ys:
            img[ys:ye, xs:xe] = patch[ys - y1 : ye - y1, xs - x1 : xe - x1]
    return img


def make_clip(
    faces: Sequence[MovingFace],
    *,
    size: tuple[int, int] = (192, 128),
    frames: int = 20,
    fps: int = 20,
    rotation: int = 0,
    tags: Mapping[str, str] | None = None,
    audio: bool = False,
    container: str = "mp4",
    codec: str | None = None,
    paint: Callable[[int, np.ndarray], None] | None = None,
) -> bytes:
    """An H.264 clip (VP9 for ``container='webm'``; ``codec='libx265'`` for HEVC as iPhones write
    it, tagged ``hvc1``; ``container='mov'`` for QuickTime). ``size`` is the upright (width, height);
    with ``rotation`` (degrees counter-clockwise, FFmpeg's display rotation) the stored frames
    are turned the other way, so a player that applies the rotation shows the upright picture."""
    turns = (rotation // 90) % 4
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container)
    for k, v in (tags or {}).items():
        out.metadata[k] = v
    codec = codec or ("libvpx-vp9" if container == "webm" else "libx264")
    opts = {} if container == "webm" else {"crf": "12", "preset": "ultrafast"}
    if codec == "libx265":
        opts["x265-params"] = "log-level=error"
    v = out.add_stream(codec, rate=fps, options=opts)
    if codec == "libx265":
        v.codec_tag = "hvc1"
    stored = size if turns % 2 == 0 else (size[1], size[0])
    v.width, v.height = stored
    v.pix_fmt = "yuv420p"
    if tags:
        for k, val in tags.items():
            v.metadata[k] = val
    if turns:
        v.set_display_rotation(rotation)
    a = None
    if audio:
        a = out.add_stream("libopus" if container == "webm" else "aac", rate=48000)
    for i in range(frames):
        img = upright_frame(size, faces, i)
        if paint is not None:
            paint(i, img)  # e.g. a name card (tests/support/text.py), drawn in place
        raw = np.ascontiguousarray(np.rot90(img, -turns)) if turns else img
        for p in v.encode(av.VideoFrame.from_ndarray(raw, format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    if a is not None:
        samples = int(48000 * frames / fps)
        t = np.arange(samples, dtype=np.float32) / 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, samples, 960):
            chunk = tone[start : start + 960]
            af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
            af.sample_rate = 48000
            af.pts = start
            af.time_base = Fraction(1, 48000)
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    out.close()
    return buf.getvalue()


def decode_clip(data: bytes) -> list[np.ndarray]:
    """Every frame as RGB, exactly as stored (no rotation applied)."""
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def textured(rgb: np.ndarray, box: Box, inset: int = 4) -> bool:
    """Is the face square at ``box`` still there (coarse texture inside it)?"""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box.as_ints()
    region = rgb[max(y1 + inset, 0) : min(y2 - inset, h), max(x1 + inset, 0) : min(x2 - inset, w)]
    return bool(region.size) and float(region.astype(np.float32).std()) > 18.0


class BlobDetector:
    """Finds every textured square; ``miss``: call numbers (0-based) on which it finds nothing."""

    name = "blob"

    def __init__(self, miss: Collection[int] = ()) -> None:
        self.miss = set(miss)
        self.calls = 0

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        call = self.calls
        self.calls += 1
        if call in self.miss:
            return []
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        mean = cv2.blur(grey, (7, 7))
        var = cv2.blur(grey * grey, (7, 7)) - mean * mean
        mask = (var > 400).astype(np.uint8)
        n, _labels, stats, _c = cv2.connectedComponentsWithStats(mask)
        out = []
        for k in range(1, n):
            x, y, w, h, area = stats[k]
            if area >= 150 and w >= 12 and h >= 12:
                out.append(Detection(Box(float(x), float(y), float(x + w), float(y + h)), 0.9, "blob"))
        return out


class TintTemplates:
    """Template 1 for red faces, template 2 for blue ones (by the patch's mean colour)."""

    def templates(
        self, rgb: np.ndarray, boxes: Sequence[Box], landmarks: Sequence[object] | None = None
    ) -> list[np.ndarray]:
        out = []
        h, w = rgb.shape[:2]
        for b in boxes:
            x1, y1, x2, y2 = b.clipped(w, h).as_ints()
            m = rgb[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
            out.append(fake_vector(1) if m[0] > m[2] else fake_vector(2))
        return out
