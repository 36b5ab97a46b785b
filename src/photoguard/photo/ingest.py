"""Ingest: the one place that touches an uploaded file before the pipeline sees its bytes.

* which names are inputs at all (:func:`is_ignored`, :func:`iter_inputs`; links never followed);
* reading a file race-free (:func:`read_regular`): ``O_NOFOLLOW`` refuses a link, ``fstat`` on
  the open descriptor checks "regular file" and the size limit on the very file that is read;
* the folder-to-group rule (:func:`inbox_folder`, :func:`group_for`);
* the :class:`~photoguard.core.upload.Upload` record (:func:`read_upload`);
* what happens to an original that is not published: it is *moved* into its quarantine folder
  (:func:`move_aside`), never unlinked while a writer may still be writing into it.

File names are bytes on Linux; every name that reaches a record, a reason or the database goes
through :func:`~photoguard.core.upload.safe_text`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from photoguard import fsutil
from photoguard.config import Settings
from photoguard.core.upload import Upload, caption_text, safe_text
from photoguard.fsutil import is_temp_name

#: names that are never photos: partial downloads, office locks, OS litter
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
IGNORED_SUFFIXES = (".part", ".crdownload", ".tmp", ".download", ".partial", ".txt", ".json")
MAX_SIDECAR_BYTES = 64_000

#: the reason given for an upload that is not finished yet (it stays where it is)
INCOMPLETE = "the upload is not complete yet (the file ends too early); it stays in the inbox"


class IngestError(Exception):
    """The file cannot be taken. ``reason`` is user-facing and names no file; ``kind`` is one of
    'gone', 'link', 'not_regular', 'permission', 'too_large', 'unreadable'."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


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
        yield from walk_inbox(p)


def walk_inbox(top: Path) -> Iterator[Path]:
    """Candidate files under ``top`` in a stable order; hidden folders and ignored names are
    skipped, links to folders are never entered."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not is_ignored(name):
                yield Path(dirpath) / name


# -- reading -----------------------------------------------------------------------------------
def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """An open descriptor on the regular file ``path`` (never through a link, never blocking on
    a FIFO) and its ``fstat``. Raises :class:`IngestError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IngestError("gone", "the file disappeared before it was read") from None
    except PermissionError:
        raise IngestError("permission", "permission denied reading the file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IngestError("link", "symbolic links are not followed") from None
        raise IngestError("unreadable", f"unreadable file: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise IngestError("unreadable", f"unreadable file: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise IngestError("not_regular", "not a regular file")
    return fd, st


def read_regular(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``path`` (at most ``max_bytes``) and its ``fstat`` taken on
    the descriptor that was read. Raises :class:`IngestError`."""
    fd, st = _open_regular(path)
    try:
        if st.st_size > max_bytes:
            raise IngestError("too_large", f"unreadable file: file is larger than the limit of {max_bytes} bytes")
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            try:
                chunk = os.read(fd, min(1 << 20, remaining))
            except OSError as exc:
                raise IngestError("unreadable", f"unreadable file: {exc.strerror}") from None
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise IngestError("too_large", f"unreadable file: file is larger than the limit of {max_bytes} bytes")
        return data, st
    finally:
        os.close(fd)


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """:func:`read_regular` without the stat, raising ``OSError``/``ValueError`` like plain file
    reading (enrolment photos, the vault copy)."""
    try:
        return read_regular(path, max_bytes)[0]
    except IngestError as exc:
        if exc.kind == "gone":
            raise FileNotFoundError(errno.ENOENT, exc.reason) from None
        if exc.kind == "permission":
            raise PermissionError(errno.EACCES, exc.reason) from None
        raise ValueError(exc.reason.removeprefix("unreadable file: ")) from None


def identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def unchanged(path: Path, ident: tuple[int, int, int] | None) -> bool:
    """Whether ``path`` is still the file that was read (not rewritten or grown since)."""
    try:
        now = os.lstat(path)
    except OSError:
        return True  # gone or unreadable: moving or removing is a no-op
    return ident is not None and identity(now) == ident


SIDECAR_SUFFIX = ".txt"


def sidecar_paths(path: Path) -> list[Path]:
    """Where the caption of the photo ``path`` may be, in the order they are tried:
    ``IMG_1.txt`` and ``IMG_1.jpg.txt`` (as :func:`photoguard.photo.decode.sidecar_paths`)."""
    out = [path.with_suffix(SIDECAR_SUFFIX), path.with_name(path.name + SIDECAR_SUFFIX)]
    return [p for i, p in enumerate(out) if p != path and p not in out[:i]]


def _find_sidecar(path: Path) -> tuple[Path, str] | None:
    for side in sidecar_paths(path):
        try:
            data, _st = read_regular(side, MAX_SIDECAR_BYTES - 1)
        except IngestError:
            continue
        return side, caption_text(data)
    return None


def read_sidecar(path: Path) -> str | None:
    """The caption a teacher may put next to a photo (``IMG_1.txt``), read like the photo."""
    found = _find_sidecar(path)
    return found[1] if found else None


def photo_partners(side: Path) -> list[Path]:
    """The photos (any file that is not ignored) in the folder of the caption ``side`` that pair
    with it: ``IMG_1.jpg`` or ``IMG_1.heic`` for ``IMG_1.txt``, ``IMG_1.jpg`` for
    ``IMG_1.jpg.txt``. Links are not followed (a link is a partner too: the caption stays)."""
    stem = side.stem
    try:
        with os.scandir(side.parent) as it:
            names = [e.name for e in it]
    except OSError:
        return []
    return [
        side.parent / n
        for n in sorted(names)
        if n != side.name
        and (n == stem or Path(n).stem == stem)
        and Path(n).suffix.lower() != SIDECAR_SUFFIX
        and not is_ignored(n)
    ]


def retire_sidecar(photo: Path, caption: str | None) -> bool:
    """The caption of ``photo`` leaves the inbox with it: when the sidecar still holds ``caption``
    (the text read with the photo) and no other photo of the same stem is left beside it, it is
    removed (the caller keeps a copy first where one is needed: a held photo's quarantine).
    A caption that changed or arrived after the photo was read stays (the sweep removes it once
    it has been without a photo for the retention period). Returns whether it left."""
    if caption is None:
        return False
    found = _find_sidecar(photo)
    if found is None or found[1] != caption:
        return False
    side = found[0]
    if photo_partners(side):
        return False
    try:
        side.unlink()
    except FileNotFoundError:
        return False
    return True


# -- the folder-to-group rule ------------------------------------------------------------------
def inbox_folder(path: Path, inbox: Path) -> str:
    """The teacher's folder a file was dropped in (the first folder below the inbox), or ''."""
    try:
        rel = path.relative_to(inbox)
    except ValueError:
        try:
            rel = (path.parent.resolve() / path.name).relative_to(inbox.resolve())
        except (OSError, ValueError):
            return ""
    return rel.parts[0] if len(rel.parts) > 1 else ""


def group_for(folder: str, settings: Settings) -> str:
    """The pupils' group of an inbox folder (``service.folders``), '' when it has none."""
    return (settings.group_for_folder(folder) or "") if folder else ""


def read_upload(
    path: Path,
    settings: Settings,
    inbox: Path,
    *,
    group: str | None = None,
    uploader: str = "",
) -> Upload:
    """Read one uploaded file into an :class:`Upload`. ``group`` defaults to the folder's group.
    Raises :class:`IngestError`."""
    data, st = read_regular(path, settings.media.max_bytes)
    if group is None:
        group = group_for(inbox_folder(path, inbox), settings)
    return Upload.of_bytes(
        data,
        source=str(path),
        stem=path.stem,
        suffix=path.suffix,
        group=group,
        uploader=uploader,
        sidecar_text=read_sidecar(path),
        path=path,
        identity=identity(st),
    )


# -- originals that are not published ----------------------------------------------------------
def move_aside(path: Path, target: Path, ident: tuple[int, int, int] | None) -> bool:
    """Move the inbox original ``path`` to ``target`` (replacing the copy there) when it is still
    the file that was read. A rename keeps the inode: a writer that is still writing writes into
    the moved file, nothing is lost. Across file systems the copy at ``target`` (already written
    and fsynced) stays and the original is unlinked only if unchanged. Returns whether it moved."""
    if not unchanged(path, ident):
        return False
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV or not target.is_file():
            raise
        if not unchanged(path, ident):
            return False
        fsutil.remove_quietly(path)
        return True
    fsutil.fsync_dir(target.parent)
    return True


#: the teacher's caption of a held photo, kept beside its original in the quarantine folder,
#: encrypted with the master key (``ledger/keys.py``) like the vault
HELD_CAPTION = "caption.txt.enc"


#: the suffix of a file encrypted with the master key (vault originals, held originals)
ENCRYPTED_SUFFIX = ".enc"


def quarantine_ext(suffix: str) -> str:
    """The extension a held original keeps in its quarantine folder ('.jpg', or '.bin')."""
    return suffix.lower() if suffix and len(suffix) <= 6 and suffix[1:].isalnum() else ".bin"


def quarantine_original(qdir: Path) -> Path | None:
    """The ``original.*`` file in a quarantine folder, if there is one: the encrypted copy
    ``original.<ext>.enc``, or a plain ``original.<ext>`` (a stalled upload set aside, whose
    writer may still add to it; a quarantine item from before held originals were encrypted),
    which comes first."""
    try:
        names = sorted(p for p in qdir.iterdir() if p.name.startswith("original"))
    except OSError:
        return None
    return names[0] if names else None


__all__ = [
    "ENCRYPTED_SUFFIX",
    "HELD_CAPTION",
    "INCOMPLETE",
    "IngestError",
    "Upload",
    "group_for",
    "identity",
    "inbox_folder",
    "is_ignored",
    "iter_inputs",
    "move_aside",
    "photo_partners",
    "quarantine_ext",
    "quarantine_original",
    "read_regular",
    "read_regular_file",
    "read_sidecar",
    "read_upload",
    "retire_sidecar",
    "safe_text",
    "sidecar_paths",
    "unchanged",
    "walk_inbox",
]
