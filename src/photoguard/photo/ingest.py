"""Finding input photos in files and folders (links are never followed)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from photoguard.fsutil import is_temp_name

#: names that are never photos: partial downloads, office locks, OS litter
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
IGNORED_SUFFIXES = (".part", ".crdownload", ".tmp", ".download", ".partial", ".txt", ".json")


def is_ignored(name: str) -> bool:
    low = name.lower()
    return (
        low.startswith(".")
        or low.startswith("~$")
        or low in IGNORED_NAMES
        or low.endswith(IGNORED_SUFFIXES)
        or is_temp_name(name)
    )


def iter_inputs(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield candidate files: explicit files as given (the pipeline judges them), folder contents
    recursively in a stable order, skipping hidden/temporary names and symbolic links."""
    for p in paths:
        if p.is_symlink() or not p.is_dir():
            yield p
            continue
        for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not is_ignored(name):
                    yield Path(dirpath) / name
