"""The quarantine folder full (or read-only) when a photo must be held or refused (issue 17,
disk full): the original stays in the inbox with the reason, nothing is lost, every file in the
outbox is one the ledger knows, and the reason says truly what went out. A photo whose other
channels need no review has those published before the hold is written: the reason names them
instead of saying "nothing published"; the retry holds the rest and publishes nothing twice.
test_storage_faults.py covers a full or read-only channel folder."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photoguard import fsutil
from photoguard.cli.app import main
from photoguard.ledger.db import Store
from tests.support.fake_cli import fake_pipeline
from tests.support.photos import make_photo
from tests.support.school import make_school

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r, pipe = make_school(tmp_path)
    pipe.store.close()
    return r


@pytest.fixture
def quarantine_full(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Writes under quarantine/ fail as a full file system makes them fail."""
    real = fsutil.write_temp
    q = root / "quarantine"

    def failing(where: Path, data: bytes, **kw: Any) -> Path:
        if Path(where) == q or q in Path(where).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(where) / fsutil.temp_name()))
        return real(where, data, **kw)

    monkeypatch.setattr(fsutil, "write_temp", failing)
    yield
    monkeypatch.undo()


def _process(root: Path, photo: Path, capsys: pytest.CaptureFixture[str], near: bool = False) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["--root", str(root), "process", str(photo)], pipeline_factory=fake_pipeline(0.0, near))  # type: ignore[arg-type]
    out = capsys.readouterr()
    return rc, out.out + out.err


def _outbox(root: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in (root / "outbox").rglob("*") if p.is_file() and not p.name.startswith(".")
    }


def _ledger(root: Path) -> set[str]:
    store = Store(root / "state" / "photoguard.sqlite3")
    try:
        return {str(r["path"]) for r in store.query("SELECT path FROM outputs WHERE withdrawn_at IS NULL")}
    finally:
        store.close()


def test_a_refused_upload_with_the_quarantine_full_stays_in_the_inbox(
    root: Path, capsys: pytest.CaptureFixture[str], quarantine_full: None
) -> None:
    bad = root / "inbox" / "groep7" / "kapot.jpg"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\xff\xd8\xff" + b"\x00" * 300)
    rc, text = _process(root, bad, capsys)
    assert rc == 1 and "Traceback" not in text
    assert re.search(r"disk full: quarantine\S* could not take the file; nothing published", text), text
    assert bad.exists() and not any((root / "quarantine").iterdir()) and not _outbox(root)


def test_a_held_photo_with_the_quarantine_full_says_what_went_out(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, quarantine_full: None
) -> None:
    # FACE_A nearly matches pupil 1001, who consents to newsletter, parro and guide: those three
    # channels wait for review; website and social show her face redacted and need no review
    photo = make_photo(root / "inbox" / "groep7" / "IMG_0001.jpg", seed=3)
    rc, text = _process(root, photo, capsys, near=True)
    assert rc == 1 and "Traceback" not in text
    assert re.search(r"disk full: quarantine\S* could not take the file", text), text
    assert "nothing published" not in text, text
    assert "published: social, website; the rest waits" in text, text
    assert photo.exists(), "the original stays in the inbox"
    first = _outbox(root)
    assert {Path(p).parts[1] for p in first} == {"social", "website"}
    assert first == _ledger(root), "every file in the outbox is one the ledger knows (and can withdraw)"
    monkeypatch.undo()  # room again
    rc, text = _process(root, photo, capsys, near=True)
    assert "review needed for: newsletter, parro, guide" in text, text
    assert not photo.exists() and _outbox(root) == first, "held now; nothing published twice"
    assert len(list((root / "quarantine").iterdir())) == 1


def test_an_approval_onto_a_read_only_channel_keeps_the_item_and_says_why(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_photo(root / "inbox" / "groep7" / "IMG_0002.jpg", seed=3)
    rc, text = _process(root, photo, capsys, near=True)
    assert "review needed for: newsletter, parro, guide" in text, text
    [qdir] = list((root / "quarantine").iterdir())
    real = fsutil.write_temp
    parro = root / "outbox" / "parro"

    def read_only(where: Path, data: bytes, **kw: Any) -> Path:
        if Path(where) == parro:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(where) / fsutil.temp_name()))
        return real(where, data, **kw)

    monkeypatch.setattr(fsutil, "write_temp", read_only)
    capsys.readouterr()
    argv = ["--root", str(root), "review", "approve", qdir.name]
    rc = main(argv, pipeline_factory=fake_pipeline(0.0, True))  # type: ignore[arg-type]
    out = capsys.readouterr()
    assert rc == 1, out
    assert "the approval could not be published: outbox/parro not writable" in out.err, out.err
    assert "the photo stays held: approve it again" in out.err and "inbox" not in out.err
    assert qdir.exists(), "the held original is kept"
    assert _outbox(root) == _ledger(root) and not any("parro" in p for p in _outbox(root))
    monkeypatch.undo()
    rc = main(argv, pipeline_factory=fake_pipeline(0.0, True))  # type: ignore[arg-type]
    assert rc == 0 and not qdir.exists()
    assert {Path(p).parts[1] for p in _outbox(root)} == {"newsletter", "parro", "guide", "website", "social"}
    assert _outbox(root) == _ledger(root)
