"""``photoguard web``: wrong --listen or --timezone is a usage error, a taken port a failure."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

import pytest

from photoguard.cli.app import main
from tests.integration.web.school import web_server
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


def _get(base: str, path: str, headers: dict[str, str]) -> tuple[int, list[str], bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, r.headers.get_all("set-cookie") or [], r.read()
    finally:
        conn.close()


def test_the_server_behind_a_local_tls_proxy(tmp_path: Path) -> None:
    """A real server: the login form's cookie is Secure only when the local proxy says https;
    photos need a session; SIGTERM ends it with exit 0 (checked by ``web_server``)."""
    root = init_school(tmp_path / "school")
    with web_server(root) as base:
        status, cookies, body = _get(base, "/login", {})
        assert status == 200 and b'name="csrf_token"' in body
        assert cookies and all("Secure" not in c for c in cookies)
        status, cookies, _ = _get(base, "/login", {"X-Forwarded-Proto": "https"})
        assert status == 200 and cookies and all("Secure" in c and "HttpOnly" in c for c in cookies)
        status, _, body = _get(base, "/review/0123456789abcdef/original", {})
        assert status == 303 and body == b""
        status, _, body = _get(base, "/review", {"Accept": "application/json"})
        assert status == 401 and b"login required" in body


def test_the_pages_take_the_schools_time_zone_unless_told_otherwise() -> None:
    from photoguard.cli.web import page_zone
    from photoguard.config import LocaleConfig, Settings

    school = Settings().model_copy(update={"locale": LocaleConfig(timezone="America/Curacao")})
    assert page_zone(None, school) == "America/Curacao"
    assert page_zone("Europe/Amsterdam", school) == "Europe/Amsterdam"
    assert page_zone(None, Settings()) == "Europe/Amsterdam"
