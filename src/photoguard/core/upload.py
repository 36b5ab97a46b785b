"""The upload in flight: one record for what travels from ingest through the pipeline."""

from __future__ import annotations

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
