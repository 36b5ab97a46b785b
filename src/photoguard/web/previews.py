"""Redacted previews of held photos for the review pages, made from the quarantined original and
the face decisions in its ``reason.json``; and the originals, for the roles allowed to see them.

Fail closed: a preview is made only for a held item that has recorded faces. Every face whose
decision for the channel is not ``visible`` is redacted; a face without a decision is redacted.
No preview exists for an item without face records (a rejected file, or one held before
detection ran): the page says so instead of showing unredacted pixels.
The bytes are a fresh JPEG without metadata (:func:`photoguard.photo.encode.encode_clean`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import cv2
import numpy as np

from photoguard.config import Settings
from photoguard.core.records import Box
from photoguard.photo.decode import MediaError, decode_bytes
from photoguard.photo.encode import encode_clean
from photoguard.photo.redact import redact

#: longest side in pixels of a page preview and of a queue thumbnail
PREVIEW_SIDE = 1200
THUMB_SIDE = 320


class NoPreview(Exception):
    """There is no safe preview for this item and channel."""


class ClipFrame(Protocol):
    """One redacted frame of a held clip (:class:`photoguard.photo.video.PreviewFrame`)."""

    seconds: float
    jpeg: bytes


def clip_sheet(frames: Sequence[ClipFrame], side: int) -> bytes:
    """The frames of a held clip on one contact sheet (two per row, each with its time in the
    clip written above it), at most ``side`` pixels wide: a fresh JPEG without metadata.
    The frames arrive redacted and outlined; nothing here adds pixels of the clip."""
    if not frames:
        raise NoPreview("no frames")
    tiles: list[np.ndarray] = []
    for f in frames:
        bgr = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise NoPreview("a frame that does not decode")
        tiles.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    cols = 1 if len(tiles) == 1 else 2
    tw = max(1, (side - 8 * (cols - 1)) // cols)
    scaled: list[np.ndarray] = []
    for rgb, f in zip(tiles, frames, strict=True):
        h, w = rgb.shape[:2]
        th = max(1, round(h * tw / w))
        tile = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA if tw < w else cv2.INTER_LINEAR)
        minutes, secs = divmod(max(0.0, f.seconds), 60.0)
        label = f"{int(minutes)}:{secs:04.1f}"
        scale = max(0.5, tw / 500)
        (_lw, lh), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        band = np.full((lh + base + 10, tw, 3), 255, np.uint8)  # above the frame: covers nothing of it
        cv2.putText(band, label, (4, lh + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 2, cv2.LINE_AA)
        tile = np.vstack([band, tile])
        scaled.append(tile)
    rows = -(-len(scaled) // cols)
    row_h = [max(t.shape[0] for t in scaled[r * cols : (r + 1) * cols]) for r in range(rows)]
    sheet = np.full((sum(row_h) + 8 * (rows - 1), tw * cols + 8 * (cols - 1), 3), 255, np.uint8)
    y = 0
    for r in range(rows):
        for c, tile in enumerate(scaled[r * cols : (r + 1) * cols]):
            x = c * (tw + 8)
            sheet[y : y + tile.shape[0], x : x + tw] = tile
        y += row_h[r] + 8
    data, _ext = encode_clean(sheet, None, fmt="jpeg", quality=80, max_side=max(side, 1))
    return data


def redacted_boxes(faces: list[dict[str, Any]], channel: str) -> list[Box]:
    """The boxes a preview for ``channel`` redacts: every face not decided ``visible`` there and
    not marked "not a face" by a reviewer."""
    out: list[Box] = []
    for f in faces:
        action = (f.get("decision") or {}).get(channel)
        if action in ("visible", "not_a_face"):  # not_a_face: a reviewer's explicit mark only
            continue
        box = f.get("box")
        if not isinstance(box, list | tuple) or len(box) != 4:
            raise NoPreview("a face without a usable box")
        out.append(Box(*(float(v) for v in box)))
    return out


class PreviewCache:
    """Rendered previews by (item id, channel, size); a few dozen kept in memory, none on disk."""

    def __init__(self, settings: Settings, capacity: int = 64) -> None:
        self.settings = settings
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str, int, str], bytes] = OrderedDict()
        self._sizes: OrderedDict[str, tuple[int, int] | None] = OrderedDict()
        self._making: dict[tuple[str, str, int, str], threading.Lock] = {}

    def render(self, qid: str, original: bytes, faces: list[dict[str, Any]], channel: str, side: int) -> bytes:
        # the faces' decisions are part of the key: a reviewer's decision never meets an older picture
        key = (qid, channel, side, hashlib.sha256(json.dumps(faces, sort_keys=True).encode()).hexdigest())
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        if not faces:
            raise NoPreview("no face records")
        boxes = redacted_boxes(faces, channel)
        try:
            img = decode_bytes(original, self.settings.media)
        except MediaError as exc:
            raise NoPreview(str(exc)) from None
        pixels = redact(img.pixels, boxes, self.settings.redact, seed=len(boxes))
        data, _ext = encode_clean(pixels, None, fmt="jpeg", quality=80, max_side=side)
        with self._lock:
            self._items[key] = data
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return data

    def clip(self, qid: str, faces: list[dict[str, Any]], channel: str, side: int, make: Callable[[], bytes]) -> bytes:
        """A held clip's contact sheet for ``channel``, made once by ``make`` (it decodes the
        clip and runs the detectors, seconds of work) and kept like a photo preview; two
        requests for the same sheet wait for one making."""
        key = ("clip:" + qid, channel, side, hashlib.sha256(json.dumps(faces, sort_keys=True).encode()).hexdigest())
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                data = make()
            finally:
                with self._lock:
                    self._making.pop(key, None)
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return data

    def size(self, qid: str, original: bytes) -> tuple[int, int] | None:
        """The upright original's (width, height), decoded once per item (``original``: its
        plain bytes, as :meth:`photoguard.followup.review.Review.original_bytes` gives them)."""
        with self._lock:
            if qid in self._sizes:
                return self._sizes[qid]
        size = image_size(original, self.settings)
        with self._lock:
            self._sizes[qid] = size
            while len(self._sizes) > 4 * self.capacity:
                self._sizes.popitem(last=False)
        return size

    def forget(self, qid: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] in (qid, "clip:" + qid)]:
                del self._items[key]
            self._sizes.pop(qid, None)


def face_rows(faces: list[dict[str, Any]], channel: str, width: int, height: int) -> list[dict[str, Any]]:
    """Per face: its outline in the photo's pixels (x, y, w, h, for the overlay), the label size,
    the decision for ``channel`` (a face without one counts as redacted) and its reason."""
    rows: list[dict[str, Any]] = []
    label = max(12, round(max(width, height) / 40))
    for n, f in enumerate(faces, 1):
        box = f.get("box") or [0, 0, 0, 0]
        x1, y1, x2, y2 = (max(0.0, float(v)) for v in box)
        rows.append(
            {
                "n": n,
                "x": round(min(x1, width), 1),
                "y": round(min(y1, height), 1),
                "w": round(max(0.0, min(x2, width) - x1), 1),
                "h": round(max(0.0, min(y2, height) - y1), 1),
                "label": label,
                "action": (f.get("decision") or {}).get(channel, "redact"),
                "reason": (f.get("reason") or {}).get(channel, ""),
                "match": str(f.get("match") or ""),
                "candidate": str(f.get("candidate") or ""),
                "reviewed": str(f.get("reviewed") or ""),
            }
        )
    return rows


def image_size(original: bytes, settings: Settings) -> tuple[int, int] | None:
    """(width, height) of the upright original, or None when it cannot be decoded."""
    try:
        img = decode_bytes(original, settings.media)
    except MediaError:
        return None
    return img.width, img.height
