"""The command line: exit codes, messages, and that every command is documented."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.cli.app import build_parser, main
from tests.support.school import consent_csv
from tests.support.shared import REPO

COLUMNS = (
    "leerling_id", "voornaam", "tussenvoegsel", "achternaam", "groep", "nieuwsbrief", "website", "gezichtsherkenning"
)
EMMA = ("1001", "Emma", "de", "Vries", "7", "ja", "nee", "ja")
CSV = consent_csv([EMMA], COLUMNS)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "school"
    assert main(["init", str(r)]) == 0
    return r


def test_init_and_check_config(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "check-config"]) == 0
    assert "OK" in capsys.readouterr().out


def test_invalid_config_names_key_path_and_every_command_refuses(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = root / "photoguard.toml"
    cfg.write_text(cfg.read_text().replace("match_distance = 0.45", "match_distance = 2.5"))
    assert main(["--root", str(root), "check-config"]) == 3
    err = capsys.readouterr().err
    assert "identify.match_distance" in err
    assert main(["--root", str(root), "consent", "show", "1001"]) == 3
    assert main(["--root", str(root), "process", str(root / "inbox")]) == 3


def test_missing_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tmp_path), "check-config"]) == 3
    assert "photoguard init" in capsys.readouterr().err


def test_root_from_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOGUARD_ROOT", str(root))
    assert main(["check-config"]) == 0


def test_consent_import_show_and_bad_file(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "ok.csv"
    good.write_text(CSV, encoding="utf-8")
    assert main(["--root", str(root), "consent", "import", str(good)]) == 0
    assert "1 new" in capsys.readouterr().out
    assert main(["--root", str(root), "consent", "show", "1001", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["consents"]["newsletter"] is True and shown["consents"]["website"] is False
    bad = tmp_path / "bad.csv"
    bad.write_text(consent_csv([EMMA, ("1002", "Daan", "", "", "7", "ja", "ja", "ja")], COLUMNS), encoding="utf-8")
    assert main(["--root", str(root), "consent", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 3" in err and "nothing was imported" in err
    assert main(["--root", str(root), "consent", "set", "1001", "website=yes"]) == 0
    assert main(["--root", str(root), "consent", "set", "1001", "website=perhaps"]) == 2


def test_enrol_refuses_without_face_matching_consent(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.csv"
    f.write_text(consent_csv([(*EMMA[:-1], "nee")], COLUMNS), encoding="utf-8")
    assert main(["--root", str(root), "consent", "import", str(f)]) == 0
    photo = tmp_path / "p.jpg"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(photo)
    assert main(["--root", str(root), "enrol", "1001", str(photo)]) == 1
    assert "face_matching" in capsys.readouterr().out


def test_process_json_reports_rejected_input(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.school import consent_csv

    (root / "c.csv").write_text(consent_csv(), encoding="utf-8")  # process refuses an empty registry
    assert main(["--root", str(root), "consent", "import", str(root / "c.csv")]) == 0
    capsys.readouterr()
    bad = root / "inbox" / "juf" / "kapot.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a jpeg")
    assert main(["--root", str(root), "process", "--json", str(root / "inbox")]) == 1
    [line] = capsys.readouterr().out.strip().splitlines()
    doc = json.loads(line)
    assert doc["status"] == "rejected" and doc["reason"] and doc["outputs"] == {}
    assert doc["sha256"] and len(doc["sha256"]) == 64


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [name for name in sub.choices if not re.search(rf"`{re.escape(name)}[ `]", readme)]
    assert not missing, f"commands not documented in README.md: {missing}"


def _run_into_closed_pipe(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m photoguard ARGS`` with stdout a pipe whose reader has already gone, as in
    ``photoguard review list | head -1`` once ``head`` has its line and exits."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "photoguard", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args", [["review", "list"], ["consent", "show", "1001"], ["report", "privacy", "--format", "csv"]]
)
def test_a_reader_that_goes_away_ends_the_command_quietly(root: Path, tmp_path: Path, args: list[str]) -> None:
    good = tmp_path / "ok.csv"
    good.write_text(CSV, encoding="utf-8")
    assert main(["--root", str(root), "consent", "import", str(good)]) == 0
    out = _run_into_closed_pipe(["--root", str(root), *args])
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr
    assert "Exception ignored" not in out.stderr, out.stderr
    assert out.returncode == 1  # the output did not arrive: not a success, the way Python reports EPIPE


def test_a_broken_pipe_elsewhere_is_not_swallowed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a reader of stdout that went away ends quietly; a command's own broken pipe is an error."""
    from photoguard.cli import setup

    def broken(args: object, ctx: object) -> int:
        raise BrokenPipeError("a pipe to some helper process")

    monkeypatch.setattr(setup, "cmd_check_config", broken)
    with pytest.raises(BrokenPipeError, match="helper"):
        main(["--root", str(root), "check-config"])
