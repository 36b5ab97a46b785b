"""A zero-length database at start (issue 17, database loss) refused by the commands that
test_state_loss.py does not list: the web app and its accounts, and the review actions. Each
exits 4 and names the file; the file stays zero-length (never a fresh start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.cli.exitcodes import EXIT_STATE
from tests.support.school import init_school
from tests.support.shared import REPO

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def emptied(tmp_path: Path) -> tuple[Path, Path]:
    root = init_school(tmp_path / "school")
    db = root / "state" / "photoguard.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{db}{suffix}")
        if p.exists():
            p.unlink()
    db.write_bytes(b"")
    return root, db


@pytest.mark.parametrize(
    "argv",
    [("user", "list"), ("user", "remove", "anne"), ("review", "show", "q1"), ("review", "approve", "q1"),
     ("review", "reject", "q1")],
    ids=lambda a: "-".join(a),
)
def test_accounts_and_review_refuse_a_zero_length_database(
    emptied: tuple[Path, Path], capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    root, db = emptied
    assert main(["--root", str(root), *argv]) == EXIT_STATE
    err = capsys.readouterr().err
    assert str(db) in err and "backup" in err and "Traceback" not in err
    assert db.stat().st_size == 0


def test_the_web_app_refuses_to_start_on_a_zero_length_database(emptied: tuple[Path, Path]) -> None:
    root, db = emptied
    out = subprocess.run(
        [sys.executable, "-m", "photoguard", "--root", str(root), "web", "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ},
    )
    assert out.returncode == EXIT_STATE, out.stderr
    assert str(db) in out.stderr and "backup" in out.stderr and "listening on" not in out.stdout
    assert db.stat().st_size == 0
