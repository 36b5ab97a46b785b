"""What the admin sees: ``dns serve`` prints a start line without ``-v``, and ``dns check`` asks
the running filter (the lists and groups really in use), falling back to the config with a note."""

from __future__ import annotations

import argparse
import json
import select
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from photoguard.cli import dns as dns_cli
from photoguard.dnsfilter.control import check_via_server
from tests.support.dns import Env, dns_serve, write_lists


class Ctx:
    """The CLI context: a root folder and a ``[dns]`` section (as from photoguard.toml)."""

    def __init__(self, root: Path, dns: dict[str, Any]) -> None:
        self.root = root
        self.dns = dns

    def settings_or_default(self) -> Any:
        from photoguard.config import Settings

        return Settings.model_validate({"dns": self.dns})


def _run_check(argv: list[str], ctx: Ctx) -> int:
    parser = argparse.ArgumentParser(prog="photoguard")
    dns_cli.add_dns(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dns", "check", *argv])
    return int(args.func(args, ctx))


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_asks_the_running_filter(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert env.srv.stats_addr is not None
    # the config file has no lists at all: only the running filter knows what it blocks
    ctx = Ctx(env.tmp, {"stats_listen": f"127.0.0.1:{env.srv.stats_addr[1]}"})
    assert _run_check(["pornsite.test"], ctx) == 0
    out, err = capsys.readouterr()
    assert out.startswith("pornsite.test: BLOCKED (category)")
    assert "porn.txt:2: 0.0.0.0 pornsite.test" in out and "answer: NXDOMAIN" in out
    assert "running filter at http://127.0.0.1:" in err
    # the client selects the server's group: hate is blocked for pupils only
    assert _run_check(["hateful.test", "--client", "127.0.0.2", "--json"], ctx) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["verdict"] == "blocked" and res["group"] == "pupils" and res["categories"] == ["hate"]
    assert res["source"].startswith("running filter at")
    assert _run_check(["hateful.test"], ctx) == 0
    assert "FORWARDED (category not enabled for this group)" in capsys.readouterr().out
    # a reload is seen at once
    (env.tmp / "porn.txt").write_text((env.tmp / "porn.txt").read_text() + "later.test\n")
    assert env.lt.run(env.srv.reload(force=True))
    assert _run_check(["later.test"], ctx) == 0
    assert "BLOCKED" in capsys.readouterr().out


def test_check_falls_back_to_the_config_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_lists(tmp_path)
    port = _free_port()  # nothing listens there
    dns = {"stats_listen": f"127.0.0.1:{port}", "lists": [{"category": "porn", "path": str(files["porn"])}]}
    assert _run_check(["pornsite.test"], Ctx(tmp_path, dns)) == 0
    out, err = capsys.readouterr()
    assert "BLOCKED" in out
    assert f"no running DNS filter answers at http://127.0.0.1:{port}" in err
    assert "config file" in err
    assert _run_check(["pornsite.test"], Ctx(tmp_path, {"stats_listen": ""})) == 0
    out, err = capsys.readouterr()
    assert "FORWARDED (not listed)" in out and "endpoint is off" in err
    # lists on the command line: explicit, no server asked, no note
    assert _run_check(["pornsite.test", "--list", f"porn={files['porn']}"], Ctx(tmp_path, dns)) == 0
    out, err = capsys.readouterr()
    assert "BLOCKED" in out and err == ""


def test_check_endpoint_refuses_bad_input(env: Env) -> None:
    assert env.srv.stats_addr is not None
    base = f"http://127.0.0.1:{env.srv.stats_addr[1]}"
    for query in ("name=x.test&client=not-an-ip", "client=127.0.0.1", "name=" + "a" * 300):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}/check?{query}", timeout=10)
        assert e.value.code == 400
    assert check_via_server(f"127.0.0.1:{env.srv.stats_addr[1]}", "pornsite.test", "127.0.0.1") is not None


def test_start_line_counts_per_category(make_env: Callable[..., Env]) -> None:
    env = make_env()
    line = env.srv.start_line()
    assert f"listening on 127.0.0.1:{env.port} (udp+tcp)" in line
    assert "lists: 9 names (porn 7, hate 2)" in line
    assert f"upstreams 127.0.0.1:{env.ups[0].port}" in line
    assert "groups pupils, staff (default staff)" in line and "query log blocked" in line


def _read_line(proc: subprocess.Popen[str], limit: float) -> str:
    assert proc.stdout is not None
    end = time.monotonic() + limit
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
        assert proc.poll() is None, "dns serve exited"
    raise AssertionError("no start line")


def test_serve_prints_start_line_and_check_sees_its_lists(tmp_path: Path) -> None:
    """The walkthrough: serve with --list, then a plain 'dns check' on the same machine."""
    files = write_lists(tmp_path)
    dns_port, stats_port, up_port = _free_port(socket.SOCK_DGRAM), _free_port(), _free_port(socket.SOCK_DGRAM)
    (tmp_path / "photoguard.toml").write_text(f'[dns]\nstats_listen = "127.0.0.1:{stats_port}"\n')
    with dns_serve(tmp_path, dns_port, up_port, files["porn"]) as (proc, cmd, env):
        line = _read_line(proc, 60.0)
        assert line.startswith(f"photoguard dns: listening on 127.0.0.1:{dns_port} (udp+tcp)")
        assert "porn 7" in line and f"upstreams 127.0.0.1:{up_port}" in line
        assert f"stats/control http://127.0.0.1:{stats_port}" in line
        out = subprocess.run(
            [*cmd, "check", "pornsite.test"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("pornsite.test: BLOCKED"), out.stdout
        assert "running filter" in out.stderr
