"""The upload in flight: one record for what travels from ingest through the pipeline."""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path


def safe_text(name: str) -> str:
    """``name`` as valid Unicode text. File names on Linux are bytes: a name that is not UTF-8
    arrives as a str with surrogate escapes, which SQLite, JSON and a terminal refuse. Bytes that
    are not UTF-8 become U+FFFD; valid names are returned unchanged."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "replace")


def caption_text(raw: bytes) -> str:
    """A teacher's caption file as text, whatever editor wrote it: UTF-8 (with or without a BOM),
    UTF-16 or UTF-32 with a BOM (Notepad's "Unicode"), UTF-16 without one, and otherwise Windows
    "ANSI" (cp1252, which old Notepad writes). Decoding a cp1252 or UTF-16 caption as UTF-8 would
    turn "Öztürk" into "?zt?rk" and "Emre" into "E m r e", which no name matcher recognises:
    the surname would be published. Pure."""
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    )
    for bom, encoding in boms:
        if raw.startswith(bom):
            return raw.decode(encoding, "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if len(raw) >= 2 and raw.count(0) * 3 >= len(raw):  # UTF-16 without a BOM: every other byte 0
        odd = sum(1 for b in raw[1::2] if b == 0)
        return raw.decode("utf-16-le" if odd * 2 >= raw.count(0) else "utf-16-be", "replace")
    return raw.decode("cp1252", "replace")


@dataclass(frozen=True, slots=True)
class Upload:
    """One photo as ingest read it. ``source``, ``stem`` and ``suffix`` are safe text (see
    :func:`safe_text`); ``path`` is the inbox file itself (bytes-exact), when there is one."""

    sha256: str
    source: str
    data: bytes = field(repr=False)
    suffix: str = ".jpg"
    stem: str = ""
    group: str = ""
    uploader: str = ""
    sidecar_text: str | None = field(default=None, repr=False)
    path: Path | None = None
    #: (inode, size, mtime_ns) of the file when it was read: "is it still the file we read?"
    identity: tuple[int, int, int] | None = None

    @classmethod
    def of_bytes(
        cls,
        data: bytes,
        *,
        source: str,
        stem: str,
        suffix: str = ".jpg",
        group: str = "",
        uploader: str = "",
        sidecar_text: str | None = None,
        path: Path | None = None,
        identity: tuple[int, int, int] | None = None,
    ) -> Upload:
        return cls(
            sha256=hashlib.sha256(data).hexdigest(),
            source=safe_text(source),
            data=data,
            suffix=safe_text(suffix),
            stem=safe_text(stem),
            group=safe_text(group),
            uploader=safe_text(uploader),
            sidecar_text=sidecar_text,
            path=path,
            identity=identity,
        )
