"""``photoguard web``: wrong --listen or --timezone is a usage error, a taken port a failure."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from photoguard.cli.app import main
from tests.support.school import init_school


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return init_school(tmp_path / "school")


@pytest.mark.parametrize("listen", ["8080", "example.org:80", "127.0.0.1:70000"])
def test_a_bad_listen_address_is_a_usage_error(root: Path, listen: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "web", "--listen", listen]) == 2
    assert "--listen" in capsys.readouterr().err


def test_an_unknown_time_zone_is_a_usage_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "web", "--listen", "127.0.0.1:0", "--timezone", "Mars/Olympus"]) == 2
    assert "time zone" in capsys.readouterr().err


def test_a_taken_port_fails_with_a_message(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--root", str(root), "web", "--listen", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_without_a_config_it_refuses(tmp_path: Path) -> None:
    assert main(["--root", str(tmp_path / "nothing"), "web"]) == 3
