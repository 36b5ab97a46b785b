"""What people read in a terminal (issue 17): ``status`` gives its times in the school's time zone
(``--json`` stays UTC ISO), and ``process`` and ``sweep`` show file names with their control and
bidi characters made visible, never acted on by the terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from photoguard.cli.app import main
from photoguard.config import Layout
from photoguard.service.health import write_heartbeat
from photoguard.service.watch import WatchService
from tests.support.fake_cli import fake_pipeline
from tests.support.school import make_school

pytestmark = pytest.mark.timeout(60)
#: an ESC sequence (clear screen) and a right-to-left override in a file name
HOSTILE = "klas\x1b[2J\u202egpj"


def test_status_shows_times_in_the_school_time_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path)  # [locale] timezone: the default, Europe/Amsterdam
    svc = WatchService(root, pipe.settings, pipe, min_free_bytes=0)
    beat: dict[str, Any] = {
        **svc.snapshot(),
        "state": "running",
        "started_at": "2026-07-01T10:00:00+00:00",  # summer time: +2
        "last_processed_at": "2026-01-15T23:30:00+00:00",  # winter time: +1, the next day
        "last_error": {"at": "2026-03-29T00:59:00+00:00", "kind": "storage"},  # just before the switch
    }
    write_heartbeat(Layout(root, pipe.settings), beat)
    pipe.store.close()
    capsys.readouterr()
    assert main(["--root", str(root), "status"]) == 0
    out = capsys.readouterr().out
    assert "since 2026-07-01 12:00," in out
    assert "last processed: 2026-01-16 00:30 " in out
    assert "last error: 2026-03-29 01:59 storage" in out
    assert "T10:00" not in out and "+00:00" not in out
    # the JSON is a contract: UTC ISO as stored
    assert main(["--root", str(root), "status", "--json"]) == 0
    svc_json = json.loads(capsys.readouterr().out)["service"]
    assert svc_json["started_at"] == "2026-07-01T10:00:00+00:00"
    assert svc_json["last_processed_at"] == "2026-01-15T23:30:00+00:00"


def test_process_shows_a_hostile_file_name_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    bad = root / "inbox" / f"{HOSTILE}.jpg"
    bad.write_bytes(b"not a photo at all " * 50)
    capsys.readouterr()
    rc = main(["--root", str(root), "process", str(bad)], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    assert rc == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "klas\\x1b[2J\\u202egpj.jpg" in out


def test_sweep_shows_a_hostile_file_name_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe = make_school(tmp_path)
    vault = Layout(root, pipe.settings).vault
    pipe.store.close()
    vault.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path / "elsewhere", vault / f"{HOSTILE}.enc")  # never followed: refused, listed
    capsys.readouterr()
    assert main(["--root", str(root), "sweep"]) == 1
    out = capsys.readouterr().out
    assert "NOT deleted" in out
    assert "\x1b" not in out and "\u202e" not in out
    assert "klas\\x1b[2J\\u202egpj.enc" in out
