"""The key file replaced by another (valid) key while the service runs (issue 17, key loss): the
face templates and vaulted originals were encrypted with the old key, so the service stops
publishing with a clear reason instead of carrying on with a key that reads nothing. At start, a
key file that does not decrypt the school's stored keys or held files is refused (exit 4) before
anything is processed: a photo held with the wrong key could never be read with the right one.
test_state_loss.py covers a deleted key and a lost, emptied or replaced database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.cli.exitcodes import EXIT_STATE
from photoguard.photo.pipeline import Pipeline
from photoguard.service.health import read_heartbeat
from photoguard.service.watch import WatchService
from tests.support.fake_cli import fake_pipeline
from tests.support.photos import make_photo
from tests.support.school import init_school, make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


def _outbox(root: Path) -> list[Path]:
    return sorted(p for p in (root / "outbox").rglob("*") if p.is_file() and not p.name.startswith("."))


def test_a_key_file_swapped_for_another_stops_publishing(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    svc = WatchService(
        root, pipe.settings, pipe, settle_seconds=0.2, tick_seconds=0.05, heartbeat_seconds=0.2,
        retry_seconds=0.3, min_free_bytes=0, rescan_seconds=300,
    )
    key = root / "state" / "photoguard.key"
    svc.start()
    try:
        make_photo(root / "inbox" / "groep7" / "IMG_0001.jpg", seed=5)
        assert wait_for(lambda: len(_outbox(root)) == 5, 15), "the first photo is published"
        published = _outbox(root)
        other = init_school(tmp_path / "other")  # another school's key, moved over ours
        shutil.copy(other / "state" / "photoguard.key", tmp_path / "swap.key")
        os.replace(tmp_path / "swap.key", key)
        later = make_photo(root / "inbox" / "groep7" / "IMG_0002.jpg", seed=6)
        assert wait_for(svc.failed.is_set, 15), "the service must notice the other key"
        assert _outbox(root) == published, "nothing is published with the other key"
        assert later.exists(), "the photo stays in the inbox"
        assert svc.failure is not None and "photoguard.key" in svc.failure and "replaced" in svc.failure
        assert wait_for(lambda: (read_heartbeat(svc.layout) or {}).get("state") == "failed", 10), "heartbeat"
        assert "photoguard.key" in (read_heartbeat(svc.layout) or {})["failure"]
    finally:
        svc.stop()
        pipe.store.close()


# -- another key at start -------------------------------------------------------------------------
def _swap_key(root: Path, tmp_path: Path) -> None:
    other = init_school(tmp_path / "other")
    shutil.copy(other / "state" / "photoguard.key", root / "state" / "photoguard.key")


def _vault_one(root: Path, pipe: Pipeline) -> None:
    """A published photo whose original is kept in vault/ encrypted with the school's key."""
    res = pipe.process_path(make_photo(root / "inbox" / "groep7" / "IMG_0001.jpg", seed=4))
    assert res.status.value == "published" and any((root / "vault").glob("*.enc"))


@pytest.mark.parametrize("encrypted", ["templates", "vaulted-original"])
@pytest.mark.parametrize("command", ["process", "watch"])
def test_another_key_file_at_start_is_a_hard_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encrypted: str, command: str
) -> None:
    if encrypted == "templates":
        root, pipe = make_school(tmp_path)  # pupil 1001 enrolled
    else:
        root, pipe = make_school(tmp_path, enrol={}, config={"action": '"vault"'})
        _vault_one(root, pipe)
    pipe.store.close()
    _swap_key(root, tmp_path)
    outbox_before = _outbox(root)
    photo = make_photo(root / "inbox" / "groep7" / "IMG_0003.jpg", seed=9)
    capsys.readouterr()
    argv = ["--root", str(root), command, *([str(photo)] if command == "process" else [])]
    rc = main(argv, pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    text = "".join(capsys.readouterr())
    assert rc == EXIT_STATE, text
    assert "photoguard.key does not decrypt this school's data" in text and "backup" in text, text
    assert "Traceback" not in text
    assert photo.exists() and _outbox(root) == outbox_before, "nothing processed with the other key"
    assert not any((root / "quarantine").iterdir())


def test_a_school_with_nothing_encrypted_takes_a_new_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path, enrol={})  # no templates, nothing held
    # a pupil who left: the key was shredded (zeroed), which proves nothing about the key file
    with pipe.store.transaction() as conn:
        conn.execute(
            "INSERT INTO pupil_keys(pupil_id, wrapped_key, created_at) VALUES('1002', zeroblob(120), '2026-01-01')"
        )
    pipe.store.close()
    _swap_key(root, tmp_path)
    photo = make_photo(root / "inbox" / "groep7" / "IMG_0004.jpg", seed=10)
    rc = main(["--root", str(root), "process", str(photo)], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    assert rc == 0, capsys.readouterr()
    assert not photo.exists() and len(_outbox(root)) == 5
