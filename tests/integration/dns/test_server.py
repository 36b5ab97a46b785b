"""The filter on real sockets (127.0.0.1, ephemeral ports) against a fake upstream."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from dnslib import QTYPE, DNSRecord

from tests.support.dns import Env, answers, ede_codes, raw_query, rcode_of

PUPIL = "127.0.0.2"  # in the 'pupils' group (all categories, SafeSearch)


def test_allowed_name_is_forwarded_and_cached(env: Env) -> None:
    r = env.query("example.org")
    assert rcode_of(r) == "NOERROR"
    assert answers(r) == [("example.org", "A", "192.0.2.1")]
    r2 = env.query("EXAMPLE.org")  # same cache entry, question case echoed
    assert str(r2.q.qname) == "EXAMPLE.org."
    assert answers(r2)[0][2] == "192.0.2.1"
    assert env.ups[0].udp_queries.count("example.org") == 1
    assert env.srv.stats.cache_hits == 1


def test_cached_ttl_decrements(env: Env) -> None:
    env.query("www.example.org")
    for e in env.srv.cache.values():
        e.stored -= 7  # pretend the answer is 7 s old
    r = env.query("www.example.org")
    assert r.rr[0].ttl == 300 - 7


def test_blocked_nxdomain_with_ede(env: Env) -> None:
    r = env.query("pornsite.test", edns=True)
    assert rcode_of(r) == "NXDOMAIN"
    assert ede_codes(r) == [15]
    soa = [a for a in r.auth if a.rtype == QTYPE.SOA]
    assert soa and soa[0].ttl == 60
    assert "pornsite.test" not in env.ups[0].udp_queries
    # no EDNS from the client → no OPT in the answer
    r2 = env.query("pornsite.test", edns=False)
    assert rcode_of(r2) == "NXDOMAIN" and not r2.ar


def test_subdomain_hosts_adblock_and_wildcard(env: Env) -> None:
    assert rcode_of(env.query("deep.sub.pornsite.test")) == "NXDOMAIN"
    assert rcode_of(env.query("another.test")) == "NXDOMAIN"  # second name on a hosts line
    assert rcode_of(env.query("x.adblock-style.test")) == "NXDOMAIN"
    assert rcode_of(env.query("adblock-mod.test")) == "NXDOMAIN"
    assert rcode_of(env.query("a.wild.test")) == "NXDOMAIN"
    r = env.query("wild.test")  # *.wild.test does not block wild.test itself
    assert rcode_of(r) == "NOERROR" and answers(r)[0][2] == "192.0.2.11"


def test_allowlist_and_exception_win(env: Env) -> None:
    # allow.txt lists allowed.pornsite.test; the list itself has @@||ok.pornsite.test^
    r = env.query("allowed.pornsite.test")
    assert rcode_of(r) == "NXDOMAIN"  # forwarded: the fake upstream does not know it
    assert "allowed.pornsite.test" in env.ups[0].udp_queries
    r = env.query("ok.pornsite.test")
    assert answers(r) == [("ok.pornsite.test", "A", "192.0.2.9")]


def test_groups_by_network(env: Env) -> None:
    # staff (default group) only blocks porn; pupils block hate too
    assert rcode_of(env.query("hateful.test")) == "NOERROR"
    assert rcode_of(env.query("hateful.test", src=PUPIL)) == "NXDOMAIN"


def test_null_ip_mode(make_env: Callable[..., Env]) -> None:
    env = make_env(block_mode="null_ip", block_ttl=30)
    r = env.query("pornsite.test")
    assert rcode_of(r) == "NOERROR" and answers(r) == [("pornsite.test", "A", "0.0.0.0")]
    assert r.rr[0].ttl == 30
    r = env.query("pornsite.test", "AAAA", edns=True)
    assert answers(r) == [("pornsite.test", "AAAA", "::")] and ede_codes(r) == [15]
    r = env.query("pornsite.test", "MX")
    assert rcode_of(r) == "NOERROR" and not r.rr


def test_safesearch_rewrites(env: Env) -> None:
    r = env.query("www.google.com", src=PUPIL)
    assert answers(r) == [
        ("www.google.com", "CNAME", "forcesafesearch.google.com"),
        ("forcesafesearch.google.com", "A", "216.239.38.120"),
    ]
    r = env.query("www.google.nl", "AAAA", src=PUPIL)
    assert answers(r)[1] == ("forcesafesearch.google.com", "AAAA", "2001:4860:4802:32::78")
    r = env.query("www.youtube.com", src=PUPIL)
    assert answers(r)[0] == ("www.youtube.com", "CNAME", "restrict.youtube.com")
    assert answers(r)[1][2] == "216.239.38.120"
    assert answers(env.query("www.bing.com", src=PUPIL))[0][2] == "strict.bing.com"
    assert answers(env.query("duckduckgo.com", src=PUPIL))[0][2] == "safe.duckduckgo.com"
    # staff: no SafeSearch, the real answer
    assert answers(env.query("www.google.com")) == [("www.google.com", "A", "142.250.1.1")]


def test_canary_ddr_and_private_relay(env: Env) -> None:
    r = env.query("use-application-dns.net")
    assert rcode_of(r) == "NXDOMAIN"
    r = env.query("_dns.resolver.arpa", "SVCB" if hasattr(QTYPE, "SVCB") else "TXT")
    assert rcode_of(r) == "NOERROR" and not r.rr
    assert rcode_of(env.query("mask.icloud.com")) == "NXDOMAIN"
    sent = env.ups[0].udp_queries
    assert "use-application-dns.net" not in sent and "_dns.resolver.arpa" not in sent


def test_cname_cloaking_blocked(env: Env) -> None:
    # cloak.example.org is a CNAME to metrics.trackerbad.test (listed under 'hate')
    r = env.query("cloak.example.org", src=PUPIL, edns=True)
    assert rcode_of(r) == "NXDOMAIN" and ede_codes(r) == [15]
    # from the cache too
    r = env.query("cloak.example.org", src=PUPIL)
    assert rcode_of(r) == "NXDOMAIN"
    # staff do not block 'hate': the full chain is returned
    r = env.query("cloak.example.org")
    assert answers(r)[0] == ("cloak.example.org", "CNAME", "metrics.trackerbad.test")
    assert env.srv.stats.cname_blocked == 2


def test_tcp_queries(env: Env) -> None:
    r = env.query("example.org", tcp=True)
    assert answers(r) == [("example.org", "A", "192.0.2.1")]
    r = env.query("pornsite.test", tcp=True)
    assert rcode_of(r) == "NXDOMAIN"
    # two pipelined queries on one connection
    q1 = DNSRecord.question("example.org").pack()
    q2 = DNSRecord.question("www.example.org").pack()
    with socket.create_connection(("127.0.0.1", env.port), timeout=3) as s:
        s.sendall(len(q1).to_bytes(2, "big") + q1 + len(q2).to_bytes(2, "big") + q2)
        got = set()
        buf = b""
        while len(got) < 2:
            buf += s.recv(4096)
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                n = int.from_bytes(buf[:2], "big")
                got.add(str(DNSRecord.parse(buf[2 : 2 + n]).q.qname))
                buf = buf[2 + n :]
    assert got == {"example.org.", "www.example.org."}


def test_truncated_upstream_answer_retried_over_tcp(env: Env) -> None:
    env.ups[0].tc_over_udp.add("big.example.org")
    r = env.query("big.example.org", edns=True)  # 60 A records ≈ 1 kB: fits 1232
    assert rcode_of(r) == "NOERROR" and len(r.rr) == 60 and not r.header.tc
    assert env.ups[0].tcp_queries == ["big.example.org"]
    # a client without EDNS gets TC (512 bytes max) and retries over TCP itself
    r = env.query("big.example.org")
    assert r.header.tc == 1 and not r.rr
    r = env.query("big.example.org", tcp=True)
    assert len(r.rr) == 60


def test_failover_to_second_upstream(make_env: Callable[..., Env]) -> None:
    env = make_env(2)
    env.ups[0].dead = True
    r = env.query("example.org")
    assert answers(r) == [("example.org", "A", "192.0.2.1")]
    assert env.ups[0].udp_queries == ["example.org"]
    assert env.ups[1].udp_queries == ["example.org"]
    assert env.srv.stats.upstream_timeouts == 1


def test_all_upstreams_down_servfail(env: Env) -> None:
    env.ups[0].dead = True
    r = env.query("example.org")
    assert rcode_of(r) == "SERVFAIL"


def test_client_outside_allowed_networks_refused(make_env: Callable[..., Env]) -> None:
    env = make_env(allowed_networks=["127.0.0.2/32"])
    r = env.query("example.org", src="127.0.0.1")
    assert rcode_of(r) == "REFUSED" and not r.rr
    assert env.ups[0].udp_queries == []
    assert rcode_of(env.query("example.org", src="127.0.0.2")) == "NOERROR"
    r = env.query("example.org", tcp=True)  # TCP from 127.0.0.1: refused too
    assert rcode_of(r) == "REFUSED"


def test_malformed_packets_do_not_kill_the_server(env: Env) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        for junk in (b"", b"\x00" * 5, b"\x12\x34" + b"\xff" * 30, bytes(12) + b"\x40abc"):
            s.sendto(junk, ("127.0.0.1", env.port))
    raw = raw_query(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05hello\x00", env.port)
    assert raw[:2] == b"\xab\xcd" and raw[3] & 0x0F == 1  # FORMERR
    assert rcode_of(env.query("example.org")) == "NOERROR"


def test_reload_under_load_loses_no_query(env: Env) -> None:
    names = ["example.org", "pornsite.test", "www.example.org", "newly-bad.test"]
    expect_before = {"example.org": "NOERROR", "pornsite.test": "NXDOMAIN"}
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def client() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            for i in range(2000):
                name = names[i % 2]
                q = DNSRecord.question(name)
                q.header.id = i
                s.sendto(q.pack(), ("127.0.0.1", env.port))
                try:
                    r = DNSRecord.parse(s.recv(4096))
                except OSError as e:
                    failures.append(f"{i}: {e}")
                    continue
                if r.header.id != i or rcode_of(r) != expect_before[name]:
                    failures.append(f"{i}: {rcode_of(r)}")
                answered[0] += 1
        stop.set()

    (env.tmp / "porn.txt").write_text((env.tmp / "porn.txt").read_text() + "newly-bad.test\n")
    t = threading.Thread(target=client)
    t.start()
    reloads = 0
    while not stop.is_set() and reloads < 5:
        assert env.lt.run(env.srv.reload(force=True), timeout=20)
        reloads += 1
    t.join(60)
    assert not failures, failures[:5]
    assert answered[0] == 2000 and reloads >= 1
    assert rcode_of(env.query(names[3])) == "NXDOMAIN"  # the reloaded list is in force


def test_stats_endpoint_and_prometheus(env: Env) -> None:
    env.query("example.org")
    env.query("pornsite.test")
    env.query("example.org")
    assert env.srv.stats_addr is not None
    host, port = env.srv.stats_addr
    with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=5) as resp:
        d = json.load(resp)
    assert d["queries"] == 3 and d["blocked"] == {"porn": 1} and d["cache_hits"] == 1
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'photoguard_dns_blocked_total{category="porn"} 1' in text
    assert "photoguard_dns_upstream_latency_seconds_count 1" in text
    req = urllib.request.Request(f"http://{host}:{port}/reload", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.load(resp)["reloaded"] is True


def test_query_log_is_private_by_default(env: Env) -> None:
    env.query("example.org", src=PUPIL)
    env.query("pornsite.test", src=PUPIL)
    env.lt.call(env.srv.qlog.flush)
    files = list((env.tmp / "qlog").glob("dns-*.jsonl"))
    assert len(files) == 1
    recs = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [r["name"] for r in recs] == ["pornsite.test"]  # only blocked queries
    assert recs[0]["client"] == "127.0.0.0/24" and recs[0]["group"] == "pupils"
    assert "127.0.0.2" not in files[0].read_text()


def test_tmp_paths_are_absolute(env: Env) -> None:
    assert all(Path(p).is_absolute() for p in env.srv.paths.all_paths())


def test_scheduled_reload_picks_up_changed_list(make_env: Callable[..., Env]) -> None:
    env = make_env(reload_interval_s=1)
    assert rcode_of(env.query("later-added.test")) == "NXDOMAIN"  # unknown upstream: NXDOMAIN
    assert "later-added.test" in env.ups[0].udp_queries
    porn = env.tmp / "porn.txt"
    porn.write_text(porn.read_text() + "later-added.test\n")
    os.utime(porn, (time.time() + 5, time.time() + 5))  # a clearly newer mtime
    deadline = time.monotonic() + 10
    while env.srv.stats.reloads == 0:
        assert time.monotonic() < deadline, "scheduled reload did not happen"
        time.sleep(0.1)
    n_before = len(env.ups[0].udp_queries)
    env.lt.call(env.srv.cache.clear)
    assert rcode_of(env.query("later-added.test")) == "NXDOMAIN"
    assert len(env.ups[0].udp_queries) == n_before  # answered by the filter, not upstream


def test_dns_stats_command_reads_running_server(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from photoguard.cli import dns as dns_cli

    env.query("pornsite.test")
    env.query("example.org")
    assert env.srv.stats_addr is not None
    host, port = env.srv.stats_addr
    parser = argparse.ArgumentParser()
    dns_cli.add_dns(parser.add_subparsers())
    args = parser.parse_args(["dns", "stats", "--stats-listen", f"{host}:{port}"])
    assert args.func(args, None) == 0
    out = capsys.readouterr().out
    assert "queries           2" in out and "porn" in out
    args = parser.parse_args(["dns", "stats", "--stats-listen", f"{host}:{port}", "--prometheus"])
    assert args.func(args, None) == 0
    assert "photoguard_dns_queries_total 2" in capsys.readouterr().out
    args = parser.parse_args(["dns", "reload", "--stats-listen", f"{host}:{port}"])
    assert args.func(args, None) == 0
    assert env.srv.stats.reloads == 1


def test_dns_stats_columns_line_up_with_long_labels(
    make_env: Callable[..., Env], capsys: pytest.CaptureFixture[str]
) -> None:
    """Long special-answer kinds (safesearch-duckduckgo) and upstream addresses keep one value column."""
    import argparse
    import re

    from photoguard.cli import dns as dns_cli

    env = make_env(2)
    env.query("pornsite.test")
    env.query("example.org")
    env.query("www.youtube.com", src=PUPIL)
    env.query("duckduckgo.com", src=PUPIL)
    assert env.srv.stats_addr is not None
    host, port = env.srv.stats_addr
    parser = argparse.ArgumentParser()
    dns_cli.add_dns(parser.add_subparsers())
    args = parser.parse_args(["dns", "stats", "--stats-listen", f"{host}:{port}"])
    assert args.func(args, None) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("safesearch-duckduckgo" in line for line in lines)
    ups = [line.split() for line in lines if re.match(r"upstream +127\.0\.0\.1:", line)]
    assert [(u[2], len(u)) for u in ups] == [("up", 3), ("up", 3)], lines
    columns = set()
    for line in lines:
        # a label (words separated by single spaces), then at least two spaces, then the value
        m = re.fullmatch(r"( *\S+(?: \S+)*?) {2,}(\S.*)", line)
        assert m, f"no label/value columns in {line!r}"
        columns.add(m.start(2))
    assert len(columns) == 1, lines
