"""Fault injection: the real ``photoguard watch`` process is killed with SIGKILL at random moments
while photos stream in, restarted, and finally stopped with SIGTERM. Afterwards no original is
lost, nothing partial or temporary is visible in the outbox, and nothing is published twice.

The subprocess is the real command line with fake face models injected
(``tests/support/fake_cli.py``).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from photoguard.ledger.db import Store
from tests.support.photos import photo_bytes
from tests.support.school import consent_csv, held_original, import_consent, init_school
from tests.support.shared import REPO
from tests.support.threads import thread_guard, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
KILLS = 22
PHOTOS = 40
CHANNELS = ("newsletter", "parro", "guide", "website", "social")
FAKE_CLI = REPO / "tests" / "support" / "fake_cli.py"


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


def _start(root: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(FAKE_CLI), "--detect-seconds", "0.15", "--", "--root", str(root), "watch"],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def _feed(inbox: Path, contents: list[bytes], stop: threading.Event, rng: random.Random) -> None:
    """Teachers dropping photos: most copied at once (sync clients rename into place), some
    written in two pieces, one content twice in different folders."""
    for i, data in enumerate(contents):
        if stop.is_set():
            return
        folder = inbox / ("juf-anne" if i % 2 else "meester-bas")
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"klassenfoto_Emma_de_Vries_{i:03d}.jpg"
        if i % 5 == 0:
            with open(final, "wb") as fh:
                fh.write(data[: len(data) // 2])
                fh.flush()
                time.sleep(0.05)
                fh.write(data[len(data) // 2 :])
        else:
            tmp = folder / f".sync-{i}.part"
            tmp.write_bytes(data)
            os.replace(tmp, final)
        time.sleep(rng.uniform(0.2, 1.4))  # spread over the kill cycles


def _running(root: Path, pid: int) -> bool:
    """The heartbeat is this process's and says running."""
    import json

    try:
        beat = json.loads((root / "state" / "service.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(beat.get("pid") == pid and beat.get("state") == "running")


def _visible_files(top: Path) -> list[Path]:
    return [p for p in top.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("PHOTOGUARD_CRASH_SEED", "0") or time.time_ns() % 100_000)
    rng = random.Random(seed)
    root = tmp_path / "school"
    init_school(root, settle_seconds="0.2", workers="2")
    store = Store(root / "state" / "photoguard.sqlite3")  # watch refuses a registry without pupils
    import_consent(store, root / "c.csv", consent_csv())
    store.close()
    log = tmp_path / "service.log"
    contents = [photo_bytes(seed=1000 + i) for i in range(PHOTOS - 2)]
    contents += [contents[3], contents[7]]  # the same photo dropped twice
    expected = {hashlib.sha256(c).hexdigest() for c in contents}

    stop_feed = threading.Event()
    feeder = threading.Thread(target=_feed, args=(root / "inbox", contents, stop_feed, rng), name="feeder")
    feeder.start()
    kills = 0
    try:
        while kills < KILLS:
            proc = _start(root, log)
            time.sleep(rng.uniform(0.8, 2.6))  # start-up takes ~1 s
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        feeder.join(60)
    finally:
        stop_feed.set()
        feeder.join(10)
    assert not feeder.is_alive()
    killed_while_working = log.read_text(encoding="utf-8", errors="replace").count("event=processed")
    assert killed_while_working > 0, "the kills never met a working service"

    # a last run that is allowed to finish, then a clean stop
    proc = _start(root, log)
    try:
        assert wait_for(lambda: not _visible_files(root / "inbox"), 90, 0.2), f"inbox not drained (seed {seed})"
        assert wait_for(lambda: _running(root, proc.pid), 30), "service did not start"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, f"SIGTERM must exit 0 (seed {seed})"

    store = Store(root / "state" / "photoguard.sqlite3")
    try:
        # every original is published or held (none lost)
        photos = {r["sha256"]: r["status"] for r in store.query("SELECT sha256, status FROM photos")}
        missing = expected - set(photos)
        assert not missing, f"{len(missing)} photo(s) lost (seed {seed})"
        for sha in expected:
            if photos[sha] == "published":
                chans = {
                    r["channel"]
                    for r in store.query(
                        "SELECT channel FROM outputs WHERE source_sha256=? AND withdrawn_at IS NULL", (sha,)
                    )
                }
                assert chans == set(CHANNELS), (sha[:12], chans, seed)
            else:
                assert hashlib.sha256(held_original(root, sha[:16])).hexdigest() == sha

        # no duplicates: one live ledger row per (photo, channel); outbox files == ledger paths
        dups = store.query(
            "SELECT source_sha256, channel, COUNT(*) AS n FROM outputs WHERE withdrawn_at IS NULL "
            "GROUP BY source_sha256, channel HAVING n > 1"
        )
        assert not dups, f"duplicates (seed {seed}): {[dict(d) for d in dups]}"
        ledger = {
            r["path"]: r["sha256"] for r in store.query("SELECT path, sha256 FROM outputs WHERE withdrawn_at IS NULL")
        }
        on_disk = {str(p.relative_to(root)) for p in _visible_files(root / "outbox") if p.suffix != ".txt"}
        assert on_disk == set(ledger), f"outbox differs from the ledger (seed {seed})"

        # nothing partial: every file decodes and matches its ledger hash
        for rel, sha in ledger.items():
            data = (root / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha, rel
            with Image.open(root / rel) as im:
                im.load()
    finally:
        store.close()

    # no visible temp files; hidden ones left by kills are removed at the next start once stale
    for top in ("outbox", "quarantine"):
        for p in _visible_files(root / top):
            assert not p.name.endswith(".tmp"), p
    hidden = [p for p in (root / "outbox").rglob(".pg-*.tmp")] + [p for p in (root / "quarantine").rglob(".pg-*.tmp")]
    old = time.time() - 3 * 3600
    for p in hidden:
        os.utime(p, (old, old))
    proc = _start(root, log)
    try:
        assert wait_for(lambda: _running(root, proc.pid), 30), "service did not start"
        assert not any(p.exists() for p in hidden), "stale temp files are removed at start"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Emma" not in text and "Vries" not in text and "klassenfoto" not in text, "names in logs"
    assert text.count("event=service_started") >= 2
