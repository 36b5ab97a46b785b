"""``dns stats`` tells the admin what hostile clients did (issue 17, DNS faults): malformed
queries, TCP connections closed by the deadline or the caps, query-log lines over the rate cap,
each on its own line in the same value column."""

from __future__ import annotations

import json
import re
import urllib.request

from photoguard.cli import dns as dns_cli
from tests.support.dns import Env, raw_query


def test_stats_show_malformed_queries_tcp_closures_and_log_suppression(env: Env) -> None:
    header = b"\x42\x42\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    over_long = header + (b"\x09" + b"a" * 9) * 30 + b"\x00\x00\x01\x00\x01"  # a 301-octet name
    assert raw_query(over_long, env.port)[3] & 0x0F == 1  # FORMERR
    env.srv.stats.tcp_deadline_closed += 2  # as the TCP limits count them (test_tcp_limits.py)
    env.srv.stats.tcp_evicted += 1
    env.srv.qlog.suppressed += 7  # as the rate cap counts them (test_querylog_caps.py)
    assert env.srv.stats_addr is not None
    host, port = env.srv.stats_addr
    with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=10) as r:  # what 'dns stats' reads
        lines = dns_cli.format_stats(json.load(r)).splitlines()
    rows = {line[:18].strip(): line[18:] for line in lines}
    assert rows["malformed"].startswith("1 (answered FORMERR")
    assert rows["tcp closed"] == "deadline 2, idle 0, per-client cap 0, total cap 1"
    assert rows["query log"].startswith("7 lines over the rate cap")
    column = {m.start(1) for line in lines if (m := re.match(r"\S.*?\s{2,}(\S)", line))}
    assert len(column) == 1, lines  # one value column
