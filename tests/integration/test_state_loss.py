"""Losing the database or the key file (issue 17): a hard stop with a clear message, never a
fresh start. Every command refuses (exit 4, the file named, "restore ... backup"); only ``init``
creates a database or a key, and ``init`` never replaces one; the running service checks both
before each photo and stops publishing when either vanished, was emptied or was replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photoguard.cli.app import main
from photoguard.cli.exitcodes import EXIT_STATE
from photoguard.ledger import keys
from photoguard.ledger.db import StateError, Store
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root
from photoguard.service.watch import WatchService
from tests.support.fake_cli import fake_pipeline
from tests.support.photos import make_photo
from tests.support.school import init_school, make_school
from tests.support.shared import REPO
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(90)
FAKE_CLI = REPO / "tests" / "support" / "fake_cli.py"


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


def _db(root: Path) -> Path:
    return root / "state" / "photoguard.sqlite3"


def _drop_db(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(_db(root)) + suffix)
        if p.exists():
            p.unlink()


def _run(root: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["--root", str(root), *argv], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    out = capsys.readouterr()
    return rc, out.out + out.err


#: every command that opens the database (each must refuse, none may create one)
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("process", "{photo}"),
    ("watch",),
    ("sweep",),
    ("status",),
    ("review", "list"),
    ("consent", "show", "1001"),
    ("consent", "stale"),
    ("consent", "import", "{csv}"),
    ("takedown", "list"),
    ("report", "privacy"),
    ("classlist", "7"),
    ("enrol", "1001", "{photo}"),
)


def _argv(cmd: tuple[str, ...], root: Path) -> list[str]:
    photo = make_photo(root / "inbox" / "groep7" / "Emma_de_Vries.jpg", seed=3)
    csv = root / "c2.csv"
    csv.write_text("leerling_id;voornaam;achternaam\n1;A;B\n", encoding="utf-8")
    return [a.format(photo=photo, csv=csv) for a in cmd]


@pytest.mark.parametrize("fault", ["zero-length", "missing", "garbage", "foreign-sqlite", "table-dropped"])
def test_every_command_refuses_a_lost_database_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    db = _db(root)
    _drop_db(root)
    if fault == "zero-length":
        db.write_bytes(b"")
    elif fault == "garbage":
        db.write_bytes(os.urandom(8192))
    elif fault == "foreign-sqlite":
        other = sqlite3.connect(db)
        other.execute("CREATE TABLE notes (x TEXT)")
        other.commit()
        other.close()
    elif fault == "table-dropped":
        Store(db, create=True).close()
        conn = sqlite3.connect(db)
        conn.execute("DROP TABLE pupils")
        conn.commit()
        conn.close()
    before = db.read_bytes() if db.exists() else None
    for cmd in COMMANDS:
        argv = _argv(cmd, root)
        rc, text = _run(root, *argv, capsys=capsys)
        if cmd == ("status",):
            # status reports what is wrong instead of refusing to say anything
            assert "PROBLEM" in text and str(db) in text, text
            continue
        assert rc == EXIT_STATE, (cmd, rc, text)
        assert str(db) in text and "backup" in text, (cmd, text)
        assert "Traceback" not in text
        # never a fresh start: the file is exactly what it was (or still absent)
        assert (db.read_bytes() if db.exists() else None) == before, cmd
    # nothing was published and the pupil's photo is still in the inbox
    assert not any(p.is_file() for p in (root / "outbox").rglob("*"))
    assert (root / "inbox" / "groep7" / "Emma_de_Vries.jpg").exists()


def test_init_creates_a_database_only_where_there_is_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = init_school(tmp_path / "school")
    db = _db(root)
    db.write_bytes(b"")  # replaced by a zero-length file
    rc, text = _run(root, "init", str(root), capsys=capsys)
    assert rc == EXIT_STATE and str(db) in text and "never replaces" in text
    assert db.stat().st_size == 0
    _drop_db(root)  # gone for good (no backup): init may start a new one, on purpose
    rc, text = _run(root, "init", str(root), capsys=capsys)
    assert rc == 0 and db.stat().st_size > 0


def test_missing_key_is_refused_never_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path)  # pupil 1001 enrolled: templates encrypted with the key
    pipe.store.close()
    key = root / "state" / "photoguard.key"
    key.unlink()
    for cmd in (("process", "{photo}"), ("watch",), ("review", "list"), ("enrol", "1001", "{photo}")):
        rc, text = _run(root, *_argv(cmd, root), capsys=capsys)
        if cmd == ("review", "list"):
            assert not key.exists()
            continue  # lists held photos from the database; it does not need the key
        assert rc == EXIT_STATE, (cmd, rc, text)
        assert str(key) in text and "backup" in text and "Traceback" not in text
        assert not key.exists(), f"{cmd} made a new key"
    # init does not make a new key either: the templates could never be read again
    rc, text = _run(root, "init", str(root), capsys=capsys)
    assert rc == EXIT_STATE and str(key) in text and "templates of 1 pupil" in text
    assert not key.exists()
    with pytest.raises(keys.KeyError_, match="backup"):
        keys.load_master(key)


def test_init_makes_a_key_when_nothing_is_encrypted_with_the_old_one(tmp_path: Path) -> None:
    root = init_school(tmp_path / "school")  # no pupils enrolled, no vault
    key = root / "state" / "photoguard.key"
    key.unlink()
    assert key in init_root(root)
    assert keys.load_master(key) is not None


# -- the running service ------------------------------------------------------------------------
def _service(root: Path, pipe: Pipeline) -> WatchService:
    return WatchService(
        root, pipe.settings, pipe, settle_seconds=0.2, tick_seconds=0.05, heartbeat_seconds=0.2,
        retry_seconds=0.3, min_free_bytes=0, rescan_seconds=300,
    )


def _outbox_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "outbox").rglob("*") if p.is_file() and not p.name.startswith("."))


def _lose(root: Path, how: str, tmp_path: Path) -> None:
    db = _db(root)
    if how == "deleted":
        _drop_db(root)
    elif how == "emptied":
        with open(db, "r+b") as fh:
            fh.truncate(0)
    elif how == "replaced":  # another school's fresh database moved over it (a new inode)
        other = init_school(tmp_path / "other")
        shutil.copy(_db(other), tmp_path / "swap.sqlite3")
        os.replace(tmp_path / "swap.sqlite3", db)
    elif how == "key-deleted":
        (root / "state" / "photoguard.key").unlink()
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["deleted", "emptied", "replaced", "key-deleted"])
def test_service_stops_publishing_when_the_database_or_key_is_lost(tmp_path: Path, how: str) -> None:
    root, pipe = make_school(tmp_path)
    svc = _service(root, pipe)
    svc.start()
    try:
        make_photo(root / "inbox" / "groep7" / "IMG_0001.jpg", seed=5)
        assert wait_for(lambda: len(_outbox_files(root)) == 5, 15), "the first photo is published"
        published = _outbox_files(root)
        _lose(root, how, tmp_path)
        later = make_photo(root / "inbox" / "groep7" / "Emma_de_Vries_verjaardag.jpg", seed=6)
        assert wait_for(svc.failed.is_set, 15), "the service must notice the loss"
        time.sleep(0.5)
        assert _outbox_files(root) == published, "nothing is published after the loss"
        assert later.exists(), "the photo stays in the inbox"
        target = "photoguard.key" if how == "key-deleted" else "photoguard.sqlite3"
        assert svc.failure is not None and target in svc.failure and "backup" in svc.failure
        beat = json.loads((root / "state" / "service.json").read_text())
        assert beat["state"] == "failed" and target in beat["failure"]
    finally:
        svc.stop()
        pipe.store.close()
    beat = json.loads((root / "state" / "service.json").read_text())
    assert beat["state"] == "failed", "the heartbeat keeps saying why the service stopped"


def test_watch_process_exits_4_when_its_database_is_deleted(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    log = tmp_path / "watch.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(FAKE_CLI), "--", "--root", str(root), "watch"],
            cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: _beat(root).get("state") == "running", 30), log.read_text()
        _drop_db(root)
        make_photo(root / "inbox" / "groep7" / "Emma_de_Vries.jpg", seed=8)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert rc == EXIT_STATE, text
    assert f"photoguard stopped: {_db(root)}" in text and "backup" in text
    assert not _db(root).exists(), "no new database"
    assert not _outbox_files(root)
    assert (root / "inbox" / "groep7" / "Emma_de_Vries.jpg").exists()
    # what the admin sees afterwards
    out = subprocess.run(
        [sys.executable, str(FAKE_CLI), "--", "--root", str(root), "status"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert "state failed" in out.stdout and "PROBLEM: the service stopped" in out.stdout, out.stdout


def _beat(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "state" / "service.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def test_store_verify_sees_deletion_emptying_and_replacement(tmp_path: Path) -> None:
    db = tmp_path / "state" / "photoguard.sqlite3"
    store = Store(db, create=True)
    store.verify()
    with store.transaction() as conn:
        Store.set_meta(conn, "x", "1")
    db.unlink()
    with pytest.raises(StateError, match="missing"):
        store.verify()
    with pytest.raises(StateError, match="deleted"), store.transaction():
        pass
    store.close()
    store = Store(db, create=True)
    with open(db, "r+b") as fh:
        fh.truncate(0)
    with pytest.raises(StateError, match="empty"):
        store.verify()
    store.close()
    db.unlink()
    store = Store(db, create=True)
    twin = Store(tmp_path / "twin.sqlite3", create=True)
    twin.close()
    os.replace(tmp_path / "twin.sqlite3", db)
    with pytest.raises(StateError, match="replaced"):
        store.verify()
    store.close()


@pytest.mark.parametrize("cmd", [("process", "{photo}"), ("watch",)])
def test_a_registry_without_pupils_is_a_hard_stop_with_the_import_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cmd: tuple[str, ...]
) -> None:
    root, pipe = make_school(tmp_path, consent="", enrol={})  # right after init: nobody imported
    pipe.store.close()
    rc, text = _run(root, *_argv(cmd, root), capsys=capsys)
    assert rc == EXIT_STATE, text
    assert "photoguard consent import" in text and "toestemmingenlijst is leeg" in text, text
    assert "registry is empty" in text and "Traceback" not in text
    assert not any(p.is_file() for p in (root / "outbox").rglob("*"))
    assert (root / "inbox" / "groep7" / "Emma_de_Vries.jpg").exists()
    assert not any((root / "quarantine").iterdir())


def test_after_the_consent_import_the_same_photo_is_processed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.school import consent_csv

    root, pipe = make_school(tmp_path, consent="", enrol={})
    pipe.store.close()
    photo = make_photo(root / "inbox" / "groep7" / "IMG_1.jpg", seed=4)
    assert _run(root, "process", str(photo), capsys=capsys)[0] == EXIT_STATE
    csv = root / "toestemmingen.csv"
    csv.write_text(consent_csv(), encoding="utf-8")
    rc, text = _run(root, "consent", "import", str(csv), capsys=capsys)
    assert rc == 0, text
    rc, text = _run(root, "process", str(photo), capsys=capsys)
    assert rc in (0, 1) and "published" in text, text
    assert any(p.is_file() for p in (root / "outbox").rglob("*"))


def test_status_names_an_empty_registry_as_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path, consent="", enrol={})
    pipe.store.close()
    _rc, text = _run(root, "status", capsys=capsys)
    assert "PROBLEM" in text and "photoguard consent import" in text, text
    root2, pipe2 = make_school(tmp_path, name="imported")
    pipe2.store.close()
    _rc, text = _run(root2, "status", capsys=capsys)
    assert "consent import" not in text, text
