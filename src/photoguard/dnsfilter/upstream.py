"""Upstream resolvers: UDP with per-query timeouts and failover, TCP retry of truncated answers."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from photoguard.dnsfilter.config import parse_hostport
from photoguard.dnsfilter.stats import Stats

log = logging.getLogger(__name__)

Callback = Callable[[bytes | None], None]

SOCKETS_PER_UPSTREAM = 4  # several source ports: an off-path spoofer must guess port and ID
FAILS_BEFORE_DOWN = 3
DOWN_SECONDS = 10.0
MAX_PENDING = 50000  # of 65536 query IDs: beyond this, SERVFAIL instead of queueing


@dataclass
class Upstream:
    host: str
    port: int
    transports: list[asyncio.DatagramTransport] = field(default_factory=list)
    fails: int = 0
    down_until: float = 0.0

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class _Pending:
    __slots__ = ("cb", "deadline", "packet", "qid", "qsec", "sent", "tried", "up")

    def __init__(self, packet: bytes, qsec: bytes, cb: Callback) -> None:
        self.packet = packet
        self.qsec = qsec
        self.cb = cb
        self.tried: list[int] = []
        self.up = -1
        self.qid = 0
        self.deadline = 0.0
        self.sent = 0.0


class _UpstreamProtocol(asyncio.DatagramProtocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.pool.on_reply(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("upstream socket error: %s", exc)


class UpstreamPool:
    """Sends queries to the configured upstreams in order, failing over on timeout/SERVFAIL."""

    def __init__(self, upstreams: list[str], timeout_ms: int, stats: Stats) -> None:
        self.upstreams = [Upstream(*parse_hostport(u, 53)) for u in upstreams]
        self.timeout = timeout_ms / 1000.0
        self.stats = stats
        self.pending: dict[int, _Pending] = {}
        self.max_attempts = max(2, len(self.upstreams))
        self._rng = random.Random(os.urandom(16))
        self._sweeper: asyncio.Task[None] | None = None
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = 0.0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        for up in self.upstreams:
            for _ in range(SOCKETS_PER_UPSTREAM):
                tr, _p = await loop.create_datagram_endpoint(
                    lambda: _UpstreamProtocol(self), remote_addr=(up.host, up.port)
                )
                up.transports.append(tr)
        self._sweeper = loop.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for t in list(self._tcp_tasks):
            t.cancel()
        for up in self.upstreams:
            for tr in up.transports:
                tr.close()
            up.transports.clear()
        for p in list(self.pending.values()):
            p.cb(None)
        self.pending.clear()

    # -- sending -------------------------------------------------------------------------------

    def query(self, packet: bytes, qsec: bytes, cb: Callback) -> None:
        """Resolve ``packet`` (its ID is replaced); ``qsec`` is its lower-cased question section.

        ``cb`` gets the upstream's answer (ID not restored) or None when every upstream failed.
        """
        self._send(_Pending(packet, qsec, cb))

    def _pick(self, p: _Pending, now: float) -> int:
        if not p.tried and self.upstreams[0].down_until <= now:
            return 0
        if len(p.tried) >= self.max_attempts:
            return -1
        candidates = [i for i in range(len(self.upstreams)) if i not in p.tried]
        if not candidates:
            candidates = list(range(len(self.upstreams)))
        for i in candidates:
            if self.upstreams[i].down_until <= now:
                return i
        return candidates[0]

    def _new_id(self) -> int:
        rnd = self._rng.getrandbits
        qid = rnd(16)
        while qid in self.pending:
            qid = rnd(16)
        return qid

    def _send(self, p: _Pending) -> None:
        now = time.monotonic()
        idx = self._pick(p, now)
        if idx < 0:
            p.cb(None)
            return
        up = self.upstreams[idx]
        if not up.transports or len(self.pending) >= MAX_PENDING:
            if up.transports and now - self._warned > 10:
                self._warned = now
                log.warning("too many queries waiting for upstreams; answering SERVFAIL")
            p.cb(None)
            return
        p.tried.append(idx)
        p.up = idx
        p.qid = self._new_id()
        p.sent = now
        p.deadline = now + self.timeout
        self.pending[p.qid] = p
        self.stats.forwarded += 1
        tr = up.transports[p.qid % len(up.transports)]  # the ID is random: so is the socket
        tr.sendto(p.qid.to_bytes(2, "big") + p.packet[2:])

    def _failed(self, p: _Pending, timeout: bool) -> None:
        up = self.upstreams[p.up]
        up.fails += 1
        self.stats.upstream_errors += 1
        if timeout:
            self.stats.upstream_timeouts += 1
        if up.fails >= FAILS_BEFORE_DOWN and up.down_until <= time.monotonic():
            up.down_until = time.monotonic() + DOWN_SECONDS
            log.warning("upstream %s marked down for %.0f s", up.label, DOWN_SECONDS)
        self._send(p)

    # -- receiving -----------------------------------------------------------------------------

    def on_reply(self, data: bytes) -> None:
        if len(data) < 12:
            return
        p = self.pending.get((data[0] << 8) | data[1])
        if p is None:
            return
        n = len(p.qsec)
        if data[12 : 12 + n].lower() != p.qsec or not data[2] & 0x80:
            return  # not the answer to our question: ignore (spoofing / stale)
        del self.pending[p.qid]
        rcode = data[3] & 0x0F
        # SERVFAIL / REFUSED: the next upstream if there is one
        if rcode in (2, 5) and len(p.tried) < self.max_attempts and len(self.upstreams) > 1:
            self._failed(p, timeout=False)
            return
        up = self.upstreams[p.up]
        up.fails = 0
        up.down_until = 0.0
        self.stats.observe_latency(time.monotonic() - p.sent)
        if data[2] & 0x02:  # TC: ask the same upstream over TCP
            self.stats.upstream_tcp += 1
            assert self._loop is not None
            task = self._loop.create_task(self._tcp_retry(p))
            self._tcp_tasks.add(task)
            task.add_done_callback(self._tcp_tasks.discard)
            return
        p.cb(data)

    async def _tcp_retry(self, p: _Pending) -> None:
        order = [p.up] + [i for i in range(len(self.upstreams)) if i != p.up]
        for idx in order:
            up = self.upstreams[idx]
            try:
                reply = await asyncio.wait_for(self._tcp_exchange(up, p.packet), self.timeout * 2)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                self.stats.upstream_errors += 1
                log.info("TCP query to %s failed: %s", up.label, e.__class__.__name__)
                continue
            if reply[12 : 12 + len(p.qsec)].lower() == p.qsec:
                p.cb(reply)
                return
        p.cb(None)

    async def _tcp_exchange(self, up: Upstream, packet: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(up.host, up.port)
        try:
            qid = self._rng.getrandbits(16)
            msg = struct.pack("!H", qid) + packet[2:]
            writer.write(struct.pack("!H", len(msg)) + msg)
            await writer.drain()
            while True:
                hdr = await reader.readexactly(2)
                body = await reader.readexactly(struct.unpack("!H", hdr)[0])
                if len(body) >= 12 and (body[0] << 8 | body[1]) == qid:
                    return body
        finally:
            writer.close()

    async def _sweep(self) -> None:
        period = min(0.1, self.timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            expired: list[_Pending] = []
            for p in self.pending.values():
                if p.deadline > now:
                    break  # insertion order == deadline order (constant timeout)
                expired.append(p)
            for p in expired:
                del self.pending[p.qid]
                self._failed(p, timeout=True)
