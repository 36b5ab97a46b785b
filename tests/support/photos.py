"""Synthetic photos for tests: textured 'faces' painted at the fake detector's boxes, and a PNG
that claims a huge size (a decompression bomb)."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from photoguard.core.records import Box
from tests.support.models import FACE_A, FACE_B


def make_photo(path: Path, boxes: Sequence[Box] = (FACE_A, FACE_B), seed: int = 1) -> Path:
    """A 320x200 JPEG with textured 'faces' at ``boxes``; ``seed`` varies the content (and sha)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(boxes, seed))
    return path


def photo_bytes(boxes: Sequence[Box] = (FACE_A, FACE_B), seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    img = np.full((200, 320, 3), 120, dtype=np.uint8)
    img[190:200, :, :] = rng.integers(0, 255, size=(10, 320, 3), dtype=np.uint8)
    for b in boxes:
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG claiming ``w`` x ``h`` pixels with only a tiny IDAT (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * (w * 3 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
