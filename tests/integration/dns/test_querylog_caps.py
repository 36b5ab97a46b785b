"""A flood of blocked names cannot fill the disk through the query log: a rate cap (excess
counted and summarised, not written), a size cap with rotation, and a cap on the number of files."""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dnslib import DNSRecord

from photoguard.dnsfilter.config import QueryLogConfig
from photoguard.dnsfilter.querylog import QueryLog
from tests.support.dns import Env


def _flood(env: Env, n: int) -> None:
    """``n`` blocked queries over UDP, each waited for (so every one reached the log)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3.0)
        for i in range(n):
            s.sendto(DNSRecord.question(f"n{i}.pornsite.test").pack(), ("127.0.0.1", env.port))
            assert DNSRecord.parse(s.recv(4096)).header.rcode == 3


def _lines(qdir: Path) -> list[dict[str, object]]:
    out = []
    for p in sorted(qdir.glob("dns-*.jsonl")):
        out += [json.loads(line) for line in p.read_text().splitlines()]
    return out


def test_rate_cap_counts_and_summarises_the_excess(make_env: Callable[..., Env]) -> None:
    env = make_env(query_log={"mode": "blocked", "directory": "qlog", "max_lines_per_s": 20})
    n = 400
    _flood(env, n)
    env.lt.call(env.srv.qlog.close)  # writes the summary of the last second
    lines = _lines(env.tmp / "qlog")
    written = [x for x in lines if x.get("action") == "blocked"]
    summaries = [x for x in lines if x.get("action") == "suppressed"]
    assert summaries and all(set(x) == {"t", "action", "count", "reason"} for x in summaries)
    suppressed = sum(int(str(x["count"])) for x in summaries)
    assert len(written) + suppressed == n  # every query accounted for, nothing silently lost
    assert max(Counter(str(x["t"]) for x in written).values()) <= 20
    assert env.srv.qlog.suppressed == suppressed
    assert env.srv.stats_snapshot()["query_log_suppressed"] == suppressed


def test_size_cap_rotates_and_keeps_n_files(make_env: Callable[..., Env]) -> None:
    qcfg = {"mode": "blocked", "directory": "qlog", "max_file_kb": 4, "max_files": 3, "max_lines_per_s": 100000}
    env = make_env(query_log=qcfg)
    qdir = env.tmp / "qlog"
    n = 600  # about 80 kB of log lines against a 12 kB budget
    _flood(env, n)
    env.lt.call(env.srv.qlog.flush)
    files = sorted(qdir.glob("dns-*.jsonl"))
    assert len(files) <= 3
    assert sum(p.stat().st_size for p in files) <= 3 * 4096 + 300  # a file passes 4 KiB by < 1 line
    assert env.srv.qlog.rotations >= 15
    names = [x["name"] for x in _lines(qdir)]
    assert f"n{n - 1}.pornsite.test" in names  # the newest lines are the ones kept
    assert "n0.pornsite.test" not in names


def test_restart_respects_the_caps_of_files_already_there(tmp_path: Path) -> None:
    qdir = tmp_path / "q"
    qdir.mkdir()
    today = "2999-01-01"  # in the future: retention does not touch it
    for i in range(1, 6):
        (qdir / f"dns-{today}.{i}.jsonl").write_text("{}\n")
    (qdir / f"dns-{today}.jsonl").write_text("{}\n")
    (qdir / "notes.txt").write_text("not ours\n")
    ql = QueryLog(QueryLogConfig(max_files=2), qdir)
    assert [p.name for p in ql.files()] == [f"dns-{today}.5.jsonl", f"dns-{today}.jsonl"]
    assert (qdir / "notes.txt").exists()
    ql.close()
