"""TCP clients that trickle bytes or hog connections cannot starve legitimate TCP queries:
a whole-query deadline (bytes do not reset it), a per-address cap and a total cap that closes
the longest-waiting connection to admit a new one. Real sockets on 127.0.0.x, small limits."""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.dns import Env, LoopThread, rcode_of

LIMITS = {
    "tcp_query_timeout_s": 0.5,
    "tcp_idle_timeout_s": 1,
    "max_tcp_clients": 12,
    "max_tcp_clients_per_ip": 4,
}


def _connect(port: int, src: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(3.0)
    s.connect(("127.0.0.1", port))
    return s


def _is_closed(s: socket.socket) -> bool:
    """True once the server closed (FIN or RST) the connection; never blocks."""
    readable, _, _ = select.select([s], [], [], 0)
    if not readable:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _wait_closed(s: socket.socket, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if _is_closed(s):
            return True
        time.sleep(0.02)
    return False


class Dripper:
    """Sockets that each send one byte of a 256-byte query every ``interval`` seconds."""

    def __init__(self, socks: list[socket.socket], interval: float) -> None:
        self.socks = socks
        self.interval = interval
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        first = {id(s): True for s in self.socks}
        while not self.stop.is_set():
            for s in self.socks:
                try:
                    s.send(b"\x01" if first[id(s)] else b"x")  # length 0x01.. = 256+, never complete
                    first[id(s)] = False
                    self.sent += 1
                except OSError:
                    pass  # closed by the server: that is the point
            self.stop.wait(self.interval)

    def __enter__(self) -> Dripper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


@pytest.fixture
def tcp_env(make_env: Callable[..., Env]) -> Iterator[Env]:
    yield make_env(**LIMITS)


def test_dripping_connections_do_not_starve_a_legitimate_query(tcp_env: Env) -> None:
    env = tcp_env
    # 8 addresses x 4 connections = 32 drippers against a total cap of 12
    socks = [_connect(env.port, f"127.0.0.{10 + i // 4}") for i in range(32)]
    with Dripper(socks, interval=0.1) as drip:
        time.sleep(0.3)
        for _ in range(5):  # every legitimate query gets through while the drip goes on
            r = env.query("example.org", tcp=True, timeout=3.0)
            assert rcode_of(r) == "NOERROR"
            time.sleep(0.15)
        assert drip.sent > 32  # the drip really kept sending
        # every dripping connection is closed (by the deadline, or to make room), bounded wait
        assert all(_wait_closed(s, 5.0) for s in socks)
    st = env.srv.stats
    assert st.tcp_deadline_closed > 0 and st.tcp_evicted > 0
    assert st.tcp_deadline_closed + st.tcp_evicted >= 32
    assert len(env.srv._tcp_conns) <= LIMITS["max_tcp_clients"]


def test_bytes_do_not_extend_the_query_deadline(tcp_env: Env) -> None:
    env = tcp_env
    s = _connect(env.port, "127.0.0.20")
    with Dripper([s], interval=0.05):
        # without a whole-query deadline each byte would reset the idle timer and keep it open
        assert _wait_closed(s, 5.0)
    assert env.srv.stats.tcp_deadline_closed == 1
    assert not env.srv._tcp_conns and not env.srv._tcp_per_ip


def test_per_client_address_cap(tcp_env: Env) -> None:
    env = tcp_env
    socks = [_connect(env.port, "127.0.0.30") for _ in range(4)]
    try:
        extra = _connect(env.port, "127.0.0.30")
        assert _wait_closed(extra, 3.0)  # the fifth from one address is turned away
        extra.close()
        assert not any(_is_closed(s) for s in socks)
        assert env.srv.stats.tcp_refused == 1
        # another address is still welcome, and its query answered
        assert rcode_of(env.query("example.org", tcp=True, src="127.0.0.31")) == "NOERROR"
    finally:
        for s in socks:
            s.close()


def test_pipelined_queries_and_idle_close(tcp_env: Env) -> None:
    """A well-behaved client keeps its connection for several queries, then idles out."""
    import struct

    from dnslib import DNSRecord

    env = tcp_env
    s = _connect(env.port, "127.0.0.1")
    try:
        for name in ("example.org", "www.example.org"):
            q = DNSRecord.question(name).pack()
            s.sendall(struct.pack("!H", len(q)) + q)
            n = struct.unpack("!H", s.recv(2, socket.MSG_WAITALL))[0]
            r = DNSRecord.parse(s.recv(n, socket.MSG_WAITALL))
            assert r.header.rcode == 0 and r.rr
            time.sleep(0.6)  # longer than the query deadline: idle between queries is allowed
        assert _wait_closed(s, 5.0)
    finally:
        s.close()
    assert env.srv.stats.tcp_idle_closed == 1 and env.srv.stats.tcp_deadline_closed == 0


def test_ephemeral_port_taken_for_tcp_is_retried(loop_thread: LoopThread, make_env: Callable[..., Env]) -> None:
    """Port 0: when the port UDP got is taken for TCP, another port is tried (no start failure)."""
    loop = loop_thread.loop
    real = loop.create_server
    calls: list[int] = []

    async def flaky(*args: Any, **kw: Any) -> Any:
        if kw.get("reuse_address"):  # the filter's own TCP listener
            calls.append(args[2])
            if len(calls) == 1:
                raise OSError(errno.EADDRINUSE, "address already in use")
        return await real(*args, **kw)

    loop.create_server = flaky  # type: ignore[method-assign]
    try:
        env = make_env()
    finally:
        del loop.create_server  # back to the class's method
    assert len(calls) == 2 and env.srv.tcp_addrs[0][1] == env.port == calls[1]
    assert len(env.srv._udp_transports) == 1
    assert rcode_of(env.query("example.org", tcp=True)) == "NOERROR"
