"""Encryption at rest: a master key file (mode 0600, outside the database) and per-pupil keys.

Templates of a pupil are encrypted with that pupil's own data key; the data key is stored in the
database wrapped (encrypted) by the master key. Destroying a pupil's biometric data deletes the
wrapped key and the ciphertexts with SQLite's ``secure_delete`` on, so even a copy of the master
key can no longer decrypt anything of that pupil (crypto-shredding).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class KeyError_(Exception):
    """The key file is missing, unreadable or too open."""


#: what to do when the key file is gone (the same words wherever it is refused)
LOST_KEY_ADVICE = (
    "photoguard never makes a new key on its own: the face templates and the vaulted originals "
    "are encrypted with this one and a new key cannot read them. Restore the key file from your "
    "backup (mode 0600). Only 'photoguard init' creates a key, for a new school."
)


def missing_key_message(path: Path) -> str:
    return f"the key file {path} is missing. {LOST_KEY_ADVICE}"


def create_key_file(path: Path) -> None:
    """Create a new master key with mode 0600 (refuses to overwrite). Only ``init`` calls this."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, Fernet.generate_key())
        os.fsync(fd)
    finally:
        os.close(fd)


def load_master(path: Path, *, create: bool = False) -> Fernet:
    """The master key from ``path``. A missing file is refused (:class:`KeyError_`, naming the
    file and what to do); ``create=True`` is for tests that build a key outside a school root."""
    if not os.path.lexists(path):
        if not create:
            raise KeyError_(missing_key_message(path))
        create_key_file(path)
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyError_(f"key file {path} is readable by others; run: chmod 600 {path}")
    try:
        return Fernet(path.read_bytes().strip())
    except (ValueError, OSError) as exc:
        raise KeyError_(f"key file {path} is not a valid key: {exc}") from None


def new_wrapped_key(master: Fernet) -> bytes:
    return master.encrypt(Fernet.generate_key())


def unwrap(master: Fernet, wrapped: bytes) -> Fernet:
    try:
        return Fernet(master.decrypt(wrapped))
    except InvalidToken:
        raise KeyError_("a stored key does not decrypt with this key file") from None


#: what to do when the key file is not the one the school's data was encrypted with
WRONG_KEY_ADVICE = (
    "Another key file was put in its place (from another school, a test or an old backup): the face "
    "templates and held photos cannot be read with it, and what photoguard would encrypt with it "
    "could not be read with the right key later. Restore this school's own key file from your "
    "backup (mode 0600); nothing was processed."
)


def check_master(master: Fernet, path: Path, wrapped: Iterable[bytes], encrypted_files: Iterable[Path]) -> None:
    """Refuse a key file that is not the school's own: ``wrapped`` are stored pupil keys and
    ``encrypted_files`` files encrypted with the master key (the smallest one that can be read
    decides). With nothing encrypted yet, any key is the school's. Raises :class:`KeyError_`."""
    for blob in wrapped:
        if not any(blob):  # a shredded pupil's key is zeroed: it proves nothing
            continue
        try:
            master.decrypt(blob)
        except InvalidToken:
            raise KeyError_(f"the key file {path} does not decrypt this school's data. {WRONG_KEY_ADVICE}") from None
        return
    for file in sorted(encrypted_files, key=_size)[:8]:  # a held caption reads faster than an original
        try:
            token = file.read_bytes()
        except OSError:
            continue  # gone meanwhile (expired, approved): try the next
        try:
            master.decrypt(token)
        except InvalidToken:
            raise KeyError_(f"the key file {path} does not decrypt this school's data. {WRONG_KEY_ADVICE}") from None
        return


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
