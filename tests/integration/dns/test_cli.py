"""``photoguard dns ...`` commands, the config section and the query log retention."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dnslib import DNSRecord
from pydantic import ValidationError

from photoguard.cli import dns as dns_cli
from photoguard.dnsfilter.config import DnsConfig, QueryLogConfig
from photoguard.dnsfilter.querylog import QueryLog, reduce_client
from tests.support.dns import dns_serve, write_lists
from tests.support.shared import REPO


class FakeCtx:
    def __init__(self, root: Path) -> None:
        self.root = root

    def settings_or_default(self) -> Any:
        from photoguard.config import Settings

        return Settings()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="photoguard")
    sub = parser.add_subparsers(dest="command")
    dns_cli.add_dns(sub)
    return parser.parse_args(argv)


def test_check_explains_rule_and_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_lists(tmp_path)
    args = _parse(
        [
            "dns",
            "check",
            "deep.pornsite.test",
            "--list",
            f"porn={files['porn']}",
            "--allow",
            str(files["allow"]),
            "--json",
        ]
    )
    assert args.func(args, FakeCtx(tmp_path)) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["verdict"] == "blocked" and res["group"] == "default"
    assert res["rules"][0]["file"] == str(files["porn"])
    assert res["rules"][0]["line"] == 2 and res["rules"][0]["rule"] == "0.0.0.0 pornsite.test"

    args = _parse(
        [
            "dns",
            "check",
            "allowed.pornsite.test",
            "--list",
            f"porn={files['porn']}",
            "--allow",
            str(files["allow"]),
        ]
    )
    assert args.func(args, FakeCtx(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "ALLOWED" in out and "allow.txt:2" in out

    args = _parse(["dns", "check", "www.google.com", "--list", f"porn={files['porn']}"])
    assert args.func(args, FakeCtx(tmp_path)) == 0
    assert "forcesafesearch.google.com" in capsys.readouterr().out

    args = _parse(["dns", "check", "example.org", "--list", f"porn={files['porn']}"])
    args.func(args, FakeCtx(tmp_path))
    assert "FORWARDED (not listed)" in capsys.readouterr().out


def test_check_missing_list_is_an_error(tmp_path: Path) -> None:
    args = _parse(["dns", "check", "x.test", "--list", f"porn={tmp_path / 'nope'}"])
    assert args.func(args, FakeCtx(tmp_path)) == 2


def test_stats_without_server_fails_cleanly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    args = _parse(["dns", "stats", "--stats-listen", f"127.0.0.1:{port}"])
    assert args.func(args, FakeCtx(tmp_path)) == 1


def test_cli_options_override_config(tmp_path: Path) -> None:
    args = _parse(
        [
            "dns",
            "serve",
            "--listen",
            "127.0.0.1:5353",
            "--upstream",
            "127.0.0.1:5400",
            "--list",
            "porn=a.txt",
            "--allow",
            "b.txt",
            "--block-mode",
            "null_ip",
            "--no-stats",
        ]
    )
    cfg = dns_cli.effective_config(args, DnsConfig())
    assert cfg.listen == ["127.0.0.1:5353"] and cfg.upstreams == ["127.0.0.1:5400"]
    assert cfg.lists[0].category == "porn" and Path(cfg.lists[0].path).is_absolute()
    assert cfg.block_mode == "null_ip" and cfg.stats_listen == ""


def test_config_validation() -> None:
    DnsConfig()  # defaults are valid
    with pytest.raises(ValidationError):
        DnsConfig(stats_listen="0.0.0.0:9153")  # stats on loopback only
    with pytest.raises(ValidationError):
        DnsConfig(upstreams=["dns.google:53"])  # no names: addresses only
    with pytest.raises(ValidationError):
        DnsConfig.model_validate({"groups": [{"name": "a"}], "default_group": "b"})
    with pytest.raises(ValidationError):
        DnsConfig.model_validate({"unknown_key": 1})
    for name, field in DnsConfig.model_fields.items():
        assert field.description, name


def test_query_log_reduction_and_retention(tmp_path: Path) -> None:
    cfg = QueryLogConfig()
    assert reduce_client("192.168.7.42", cfg, b"s" * 32) == "192.168.7.0/24"
    assert reduce_client("2001:db8:1:2:3::5", cfg, b"s" * 32) == "2001:db8:1::/56"
    hashed = QueryLogConfig(client="hash")
    h1 = reduce_client("10.0.0.1", hashed, b"a" * 32)
    assert h1 != "10.0.0.1" and h1 == reduce_client("10.0.0.1", hashed, b"a" * 32)
    assert h1 != reduce_client("10.0.0.1", hashed, b"b" * 32)
    qdir = tmp_path / "log"
    qdir.mkdir()
    old = qdir / "dns-2000-01-01.jsonl"
    old.write_text("{}\n")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    fresh = qdir / f"dns-{today}.jsonl"
    fresh.write_text("{}\n")
    QueryLog(QueryLogConfig(retention_days=3), qdir)
    assert not old.exists() and fresh.exists()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(port: int, name: str, timeout: float = 1.0) -> DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(DNSRecord.question(name).pack(), ("127.0.0.1", port))
        return DNSRecord.parse(s.recv(4096))


def test_python_m_photoguard_dns_serve_sighup_and_check(tmp_path: Path) -> None:
    files = write_lists(tmp_path)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "photoguard", "--root", str(tmp_path), "dns"]
    out = subprocess.run(
        [*cmd, "check", "pornsite.test", "--list", f"porn={files['porn']}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "BLOCKED" in out.stdout and "porn.txt:2" in out.stdout
    upstream_port = _free_port()  # nothing listens: forwarded names SERVFAIL, which is fine here
    with dns_serve(tmp_path, port, upstream_port, files["porn"], "--no-stats", merge_stderr=True) as (proc, _, _):
        deadline = time.monotonic() + 30
        while True:
            try:
                r = _ask(port, "pornsite.test", 0.5)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
        assert r.header.rcode == 3
        assert _ask(port, "later.test", 8.0).header.rcode == 2  # SERVFAIL: no upstream
        files["porn"].write_text(files["porn"].read_text() + "later.test\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while _ask(port, "later.test", 8.0).header.rcode != 3:
            assert time.monotonic() < deadline, "SIGHUP reload not seen"
            time.sleep(0.1)


def test_documented_example_config_is_valid() -> None:
    """The commented ``[dns]`` example in docs/DNS.md must load as it is."""
    import re
    import tomllib

    from photoguard.config import parse_settings

    text = (REPO / "docs" / "DNS.md").read_text()
    block = re.search(r"```toml\n(\[dns\].*?)```", text, re.S)
    assert block, "no [dns] toml example in docs/DNS.md"
    data = tomllib.loads(block.group(1))
    cfg = DnsConfig.model_validate(data["dns"])
    assert [g.name for g in cfg.groups] == ["pupils", "staff"]
    assert cfg.query_log.mode == "blocked" and len(cfg.lists) == 6
    assert parse_settings(data).dns == cfg  # embedded in the main config as [dns]
