"""Fixtures for the DNS filter (tests/conftest.py registers them): a fake upstream resolver
and a filter on 127.0.0.1, both on ephemeral ports in one background event loop thread; a
blocking client in the test thread.

dnslib is used here only (crafting and checking packets); the filter itself never imports it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dnslib import AAAA, CNAME, EDNS0, QTYPE, RCODE, RR, SOA, A, DNSRecord

from photoguard.dnsfilter.config import DnsConfig
from photoguard.dnsfilter.server import FilterServer, ListPaths
from tests.support.shared import REPO

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; ``run(coro)`` waits for a result (bounded)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def wrap() -> T:
            return fn()

        return self.run(wrap(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class FakeUpstream:
    """A tiny authoritative-style resolver: answers from ``zone``, follows CNAMEs in it."""

    zone: dict[str, list[tuple[str, str]]]
    tc_over_udp: set[str] = field(default_factory=set)
    dead: bool = False
    udp_queries: list[str] = field(default_factory=list)
    tcp_queries: list[str] = field(default_factory=list)
    port: int = 0
    _udp: Any = None
    _tcp: Any = None

    def answer(self, data: bytes, tcp: bool) -> bytes | None:
        req = DNSRecord.parse(data)
        qname = str(req.q.qname).rstrip(".").lower()
        (self.tcp_queries if tcp else self.udp_queries).append(qname)
        if self.dead:
            return None
        rep = req.reply()
        if not tcp and qname in self.tc_over_udp:
            rep.header.tc = 1
            return rep.pack()
        name = qname
        found = False
        for _ in range(8):
            recs = self.zone.get(name)
            if recs is None:
                break
            found = True
            nxt = None
            for rtype, value in recs:
                if rtype == "CNAME":
                    rep.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(value), ttl=300))
                    nxt = value
                elif rtype == "A" and req.q.qtype == QTYPE.A:
                    rep.add_answer(RR(name, QTYPE.A, rdata=A(value), ttl=300))
                elif rtype == "AAAA" and req.q.qtype == QTYPE.AAAA:
                    rep.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(value), ttl=300))
            if nxt is None:
                break
            name = nxt
        if not found:
            rep.header.rcode = RCODE.NXDOMAIN
            rep.add_auth(RR("test", QTYPE.SOA, ttl=300, rdata=SOA("ns.test", "h.test", (1, 2, 3, 4, 60))))
        return rep.pack()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        up = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.tr = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                out = up.answer(data, tcp=False)
                if out is not None:
                    self.tr.sendto(out, addr)

        async def tcp_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while True:
                    n = struct.unpack("!H", await r.readexactly(2))[0]
                    out = up.answer(await r.readexactly(n), tcp=True)
                    if out is None:
                        continue
                    w.write(struct.pack("!H", len(out)) + out)
                    await w.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()

        # TCP on the port UDP got; that number can already be a TCP client's ephemeral port on a
        # busy machine, so take another pair then (bounded)
        for attempt in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
            self.port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(tcp_client, "127.0.0.1", self.port)
                return
            except OSError:
                self._udp.close()
                if attempt == 19:
                    raise

    async def stop(self) -> None:
        self._udp.close()
        self._tcp.close()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"


def default_zone() -> dict[str, list[tuple[str, str]]]:
    big = [("A", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(60)]
    return {
        "example.org": [("A", "192.0.2.1"), ("AAAA", "2001:db8::1")],
        "www.example.org": [("A", "192.0.2.2")],
        "cloak.example.org": [("CNAME", "metrics.trackerbad.test")],
        "metrics.trackerbad.test": [("A", "192.0.2.66")],
        "big.example.org": big,
        "forcesafesearch.google.com": [("A", "216.239.38.120"), ("AAAA", "2001:4860:4802:32::78")],
        "restrict.youtube.com": [("A", "216.239.38.120")],
        "restrictmoderate.youtube.com": [("A", "216.239.38.119")],
        "strict.bing.com": [("A", "204.79.197.220")],
        "safe.duckduckgo.com": [("A", "52.250.41.2")],
        "www.google.com": [("A", "142.250.1.1")],
        "ok.pornsite.test": [("A", "192.0.2.9")],
        "pornsite.test": [("A", "192.0.2.10")],
        "wild.test": [("A", "192.0.2.11")],
        "hateful.test": [("A", "192.0.2.12")],
    }


PORN_LIST = """# porn list in mixed formats
0.0.0.0 pornsite.test
0.0.0.0 other.pornsite2.test another.test   # two names on one line
127.0.0.1 localhost
||adblock-style.test^
||adblock-mod.test^$important
*.wild.test
plain.test
1.2.3.4
! adblock comment
@@||ok.pornsite.test^
"""
HATE_LIST = "hateful.test\ntrackerbad.test\n"
ALLOW_LIST = "# allowed despite lists\nallowed.pornsite.test\n"


@dataclass
class Env:
    lt: LoopThread
    srv: FilterServer
    ups: list[FakeUpstream]
    tmp: Path

    @property
    def port(self) -> int:
        return self.srv.udp_addrs[0][1]

    def query(
        self,
        name: str,
        qtype: str = "A",
        edns: bool = False,
        tcp: bool = False,
        src: str = "127.0.0.1",
        timeout: float = 3.0,
    ) -> DNSRecord:
        q = DNSRecord.question(name, qtype)
        if edns:
            q.add_ar(EDNS0(udp_len=1232))
        return DNSRecord.parse(raw_query(q.pack(), self.port, tcp=tcp, src=src, timeout=timeout))


def raw_query(packet: bytes, port: int, tcp: bool = False, src: str = "127.0.0.1", timeout: float = 3.0) -> bytes:
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(packet)) + packet)
            n = struct.unpack("!H", _recv_exact(s, 2))[0]
            return _recv_exact(s, n)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.sendto(packet, ("127.0.0.1", port))
        return s.recv(65535)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def write_lists(tmp: Path) -> dict[str, Path]:
    files = {"porn": tmp / "porn.txt", "hate": tmp / "hate.txt", "allow": tmp / "allow.txt"}
    files["porn"].write_text(PORN_LIST)
    files["hate"].write_text(HATE_LIST)
    files["allow"].write_text(ALLOW_LIST)
    return files


def make_config(files: dict[str, Path], ups: list[FakeUpstream], **over: Any) -> DnsConfig:
    data: dict[str, Any] = {
        "listen": ["127.0.0.1:0"],
        "upstreams": [u.addr for u in ups],
        "upstream_timeout_ms": 300,
        "allowed_networks": ["127.0.0.0/8"],
        "lists": [
            {"category": "porn", "path": str(files["porn"])},
            {"category": "hate", "path": str(files["hate"])},
        ],
        "allowlists": [str(files["allow"])],
        "groups": [
            # pupils (sent from 127.0.0.2): everything blocked, SafeSearch, strict YouTube
            {"name": "pupils", "networks": ["127.0.0.2/32"], "categories": ["*"]},
            # staff / default: porn only, no SafeSearch
            {
                "name": "staff",
                "categories": ["porn"],
                "safesearch": False,
                "youtube": "off",
            },
        ],
        "default_group": "staff",
        "stats_listen": "127.0.0.1:0",
        "reload_interval_s": 0,
        "query_log": {"mode": "blocked", "directory": str(files["porn"].parent / "qlog")},
    }
    data.update(over)
    return DnsConfig.model_validate(data)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def make_env(loop_thread: LoopThread, tmp_path: Path) -> Iterator[Callable[..., Env]]:
    started: list[Env] = []

    def factory(n_upstreams: int = 1, **over: Any) -> Env:
        ups = [FakeUpstream(default_zone()) for _ in range(n_upstreams)]
        for u in ups:
            loop_thread.run(u.start())
        files = write_lists(tmp_path)
        cfg = make_config(files, ups, **over)

        async def start() -> FilterServer:
            srv = FilterServer(cfg, ListPaths.from_config(cfg, tmp_path), tmp_path / "qlog")
            await srv.start()
            return srv

        env = Env(loop_thread, loop_thread.run(start()), ups, tmp_path)
        started.append(env)
        return env

    yield factory
    for env in started:
        loop_thread.run(env.srv.stop())
        for u in env.ups:
            loop_thread.run(u.stop())


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env(1)


def rcode_of(r: DNSRecord) -> str:
    return str(RCODE.get(r.header.rcode))


def answers(r: DNSRecord) -> list[tuple[str, str, str]]:
    return [(str(a.rname).rstrip("."), QTYPE.get(a.rtype), str(a.rdata).rstrip(".")) for a in r.rr]


def ede_codes(r: DNSRecord) -> list[int]:
    """Extended DNS Error codes in the OPT record (RFC 8914, option 15)."""
    out = []
    for ar in r.ar:
        if ar.rtype == QTYPE.OPT:
            for opt in ar.rdata:
                if opt.code == 15:
                    out.append(struct.unpack("!H", opt.data[:2])[0])
    return out


@contextmanager
def dns_serve(
    root: Path, dns_port: int, upstream_port: int, porn_list: Path, *extra: str, merge_stderr: bool = False
) -> Iterator[tuple[subprocess.Popen[str], list[str], dict[str, str]]]:
    """``python -m photoguard --root ROOT dns serve`` on 127.0.0.1 with one porn list, as a
    subprocess; yields it, the ``dns`` command prefix and the environment (for ``dns check`` in
    the same setting). Stopped with SIGTERM, which must end it with exit 0."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("PYTHONWARNINGS", None)
    cmd = [sys.executable, "-m", "photoguard", "--root", str(root), "dns"]
    argv = [
        *cmd, "serve",
        "--listen", f"127.0.0.1:{dns_port}",
        "--upstream", f"127.0.0.1:{upstream_port}",
        "--list", f"porn={porn_list}",
        "--query-log", "off",
        *extra,
    ]
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, cmd, env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
