"""Shared test helpers: fake models, photo makers, a school root, and a thread-leak guard."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.config import load_settings
from photoguard.core.records import Box
from photoguard.ledger.consent import import_csv
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector

__all__ = [
    "CSV",
    "FACE_A",
    "FACE_B",
    "FakeDetector",
    "FakeTemplates",
    "_vec",
    "make_photo",
    "make_school",
    "no_leaked_threads",
    "photo_bytes",
    "png_header_only",
    "thread_guard",
    "wait_for",
]

CSV = (
    "leerling_id;voornaam;tussenvoegsel;achternaam;groep;datum_uitschrijving;nieuwsbrief;parro;"
    "schoolgids;website;social_media;telefoon_klassenlijst;gezichtsherkenning\n"
    "1001;Emma;de;Vries;7;;ja;ja;ja;nee;nee;ja;ja\n"
    "1002;Daan;van der;Berg;7;;ja;ja;ja;ja;ja;nee;nee\n"
)

_vec = fake_vector


def make_photo(path: Path, boxes: Sequence[Box] = (FACE_A, FACE_B), seed: int = 1) -> Path:
    """A 320x200 JPEG with textured 'faces' at ``boxes``; ``seed`` varies the content (and sha)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(boxes, seed))
    return path


def photo_bytes(boxes: Sequence[Box] = (FACE_A, FACE_B), seed: int = 1) -> bytes:
    import io

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


def make_school(tmp_path: Path, *, enrol: bool = True) -> tuple[Path, Pipeline]:
    """A fresh root with the two-pupil registry; pupil 1001 enrolled as FACE_A's template."""
    root = tmp_path / "school"
    init_root(root)
    settings = load_settings(root)
    pipe = Pipeline(
        root,
        settings,
        detector=FakeDetector([FACE_A, FACE_B]),
        templates=FakeTemplates({FACE_A: _vec(1), FACE_B: _vec(2)}),
        today=lambda: date(2026, 11, 21),
    )
    (root / "c.csv").write_text(CSV, encoding="utf-8")
    import_csv(pipe.store, root / "c.csv")
    if enrol:
        pipe.template_vault().add("1001", _vec(1), "enrol-photo-sha")
    return root, pipe


def wait_for(cond: object, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``cond()`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(cond())  # type: ignore[operator]


@contextmanager
def thread_guard() -> Iterator[None]:
    """Fails when the block leaves a non-daemon thread running (services must stop cleanly)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"leaked threads: {[t.name for t in leaked]}"


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield
