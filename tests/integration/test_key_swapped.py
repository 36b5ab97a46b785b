"""The key file replaced by another (valid) key while the service runs (issue 17, key loss): the
face templates and vaulted originals were encrypted with the old key, so the service stops
publishing with a clear reason instead of carrying on with a key that reads nothing.
test_state_loss.py covers a deleted key and a lost, emptied or replaced database."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoguard.service.watch import WatchService
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
        beat = json.loads((root / "state" / "service.json").read_text())
        assert beat["state"] == "failed" and "photoguard.key" in beat["failure"]
    finally:
        svc.stop()
        pipe.store.close()
