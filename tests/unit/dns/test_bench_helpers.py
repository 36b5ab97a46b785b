"""Parsing helpers of bench/dns_bench.py (the benchmark itself is too slow for the suite)."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

import pytest

from tests.support.shared import REPO

DNSPERF_OUT = """DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 5353 -d q.txt -l 6
[Status] Sending queries (to 127.0.0.1:5353)
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         412345
  Queries completed:    412331 (100.00%)
  Queries lost:         14 (0.00%)

  Response codes:       NOERROR 288632 (70.00%), NXDOMAIN 123699 (30.00%)
  Average packet size:  request 36, response 52
  Run time (s):         6.000112
  Queries per second:   68720.571213

  Average Latency (s):  0.001423 (min 0.000021, max 0.012311)
  Latency StdDev (s):   0.000612
"""


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dns_bench", REPO / "bench" / "dns_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dns_bench"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_parse_dnsperf() -> None:
    r = _bench().parse_dnsperf(DNSPERF_OUT)
    assert r["sent"] == 412345 and r["completed"] == 412331 and r["lost"] == 14
    assert r["qps"] == pytest.approx(68720.571213)
    assert r["rcode_NXDOMAIN"] == 123699 and r["rcode_NOERROR"] == 288632
    assert r["latency_avg_s"] == pytest.approx(0.001423)
    with pytest.raises(ValueError):
        _bench().parse_dnsperf("dnsperf: could not open file")


def test_cpu_and_rss_of_this_process() -> None:
    b = _bench()
    c0 = b.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert b.cpu_seconds(os.getpid()) >= c0
    assert 5 < b.rss_mb(os.getpid()) < 10_000


def test_query_mix_and_padding() -> None:
    b = _bench()
    text = b.make_queries((0.5, 0.3, 0.2), ["blocked.example"], 1000, seed=1)
    lines = text.splitlines()
    assert len(lines) == 1000 and all(line.endswith(" A") for line in lines)
    blocked = sum(line.startswith("blocked.example") for line in lines)
    fwd = sum(line.startswith("fwd-") for line in lines)
    assert 220 < blocked < 380 and 130 < fwd < 270
    pads = b.pad_names(5000)
    assert len(set(pads)) == 5000 and all(p.startswith("pad") for p in pads)
