"""The filtering DNS forwarder: UDP/TCP front end, cache, policy, reload, stats/control endpoint.

Hot path (one UDP query): header checks and question walk by byte indexing, a dict lookup for
the client's group, a memoised verdict for the name, then either a prebuilt blocked answer, a
cached upstream answer (ID and question patched in, TTLs decremented once per second of age), or
a forward upstream (in-flight duplicates coalesced).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import json
import logging
import signal
import struct
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from photoguard.dnsfilter import wire
from photoguard.dnsfilter.config import DnsConfig, parse_hostport
from photoguard.dnsfilter.lists import ListSet, file_mtimes, load_lists
from photoguard.dnsfilter.policy import (
    SP_CANARY,
    SP_DDR,
    SP_RELAY,
    SPECIAL_LABELS,
    Group,
    Policy,
    Verdict,
)
from photoguard.dnsfilter.querylog import QueryLog
from photoguard.dnsfilter.stats import Stats
from photoguard.dnsfilter.upstream import UpstreamPool

log = logging.getLogger(__name__)

Transport = asyncio.DatagramTransport | asyncio.Transport
Addr = tuple[Any, ...] | None  # None: a TCP client (the transport is the connection)

_ADDR_TYPES = frozenset({wire.T_A, wire.T_AAAA, wire.T_CNAME})
_FLAG_BYTES = [bytes((i,)) for i in range(256)]
_NULL_A = b"\x00\x00\x00\x00"
_NULL_AAAA = b"\x00" * 16
_NO_RECORDS = bytes(6)
#: Answers a TCP client may leave unread before it is cut off (bytes).
_TCP_MAX_UNREAD = 256 * 1024


@dataclass
class ListPaths:
    """Resolved list file paths (the policy's input besides the config)."""

    sources: list[tuple[str, Path]]
    allow: list[Path]

    @classmethod
    def from_config(cls, cfg: DnsConfig, root: Path) -> ListPaths:
        return cls(
            [(s.category, _resolve(root, s.path)) for s in cfg.lists],
            [_resolve(root, p) for p in cfg.allowlists],
        )

    def all_paths(self) -> list[Path]:
        return [p for _, p in self.sources] + self.allow


def _resolve(root: Path, p: str) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else root / path


def build_policy(cfg: DnsConfig, paths: ListPaths) -> Policy:
    cats = [c for g in cfg.groups for c in g.categories if c != "*"]
    lists = load_lists(paths.sources, paths.allow, extra_categories=[])
    missing = [c for c in cats if c not in lists.categories]
    if missing:
        log.warning("categories enabled in groups but without lists: %s", sorted(set(missing)))
    return Policy(lists, cfg)


class CacheEntry:
    __slots__ = (
        "age",
        "body",
        "cname_gen",
        "cname_mask",
        "cnames",
        "expires",
        "now",
        "offs",
        "stored",
        "ttls",
    )

    def __init__(self, body: bytes, info: wire.AnswerInfo, now: float, ttl: int) -> None:
        self.body = body
        self.now = body
        self.offs = info.ttl_offsets
        self.ttls = info.ttls
        self.stored = now
        self.expires = now + ttl
        self.age = 0
        self.cnames = info.cnames
        self.cname_gen = -1
        self.cname_mask = 0


class _Waiter:
    __slots__ = ("addr", "data", "group", "limit", "qend", "t0", "tr")

    def __init__(self, tr: Transport, addr: Addr, data: bytes, qend: int, group: Group, limit: int) -> None:
        self.tr = tr
        self.addr = addr
        self.data = data
        self.qend = qend
        self.group = group
        self.limit = limit
        self.t0 = time.monotonic()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, srv: FilterServer) -> None:
        self.srv = srv
        self.transport: asyncio.DatagramTransport | None = None
        self.handle = srv.handle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tr = cast(asyncio.DatagramTransport, transport)
        self.transport = tr
        self.srv._udp_transports.append(tr)
        self.handle = self.srv.handle

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.handle(data, self.transport, addr)  # type: ignore[arg-type]

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class _TcpProtocol(asyncio.Protocol):
    """One TCP client (RFC 7766 framing: a 2-byte length, then the message).

    Two timers, never reset by single bytes: a whole-message deadline (``tcp_query_timeout_s``)
    that starts at connect or at the first byte of a query and ends when the last byte of that
    query is in, and an idle timer (``tcp_idle_timeout_s``) between queries. A client that
    trickles bytes is cut off at the deadline however often it sends.
    """

    def __init__(self, srv: FilterServer) -> None:
        self.srv = srv
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[Any, ...] = ("",)
        self.ip = ""
        self.since = time.monotonic()  # start of the current wait (for a query, or idle)
        self.idle = False
        self.counted = False  # in the server's connection set and per-address counts
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = self.transport.get_extra_info("peername") or ("",)
        self.ip = str(self.peer[0])
        if not self.srv._tcp_admit(self):
            self.transport.abort()
            return
        self._arm(self.srv.cfg.tcp_query_timeout_s, idle=False)  # the first query, whole

    def _arm(self, seconds: float, idle: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.idle = idle
        self.since = time.monotonic()
        self.timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _expired(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            if self.idle:
                self.srv.stats.tcp_idle_closed += 1
            else:
                self.srv.stats.tcp_deadline_closed += 1
            self.transport.abort()  # abort, not close: a client that never reads cannot hold it

    def drop(self) -> None:
        """Close at once (shutdown, or making room for a new client)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.srv._tcp_forget(self)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.srv._tcp_forget(self)

    def data_received(self, data: bytes) -> None:
        if self.idle:  # the first byte of a new query: its whole-message deadline starts now
            self._arm(self.srv.cfg.tcp_query_timeout_s, idle=False)
        buf = self.buf + data
        done = 0
        while len(buf) >= 2:
            n = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + n:
                break
            msg = buf[2 : 2 + n]
            buf = buf[2 + n :]
            done += 1
            assert self.transport is not None
            self.srv.stats.queries_tcp += 1
            self.srv.handle(msg, self.transport, None, self.ip)
        self.buf = buf
        if done and self.transport is not None and not self.transport.is_closing():
            if buf:  # part of the next query is in: a new deadline from now
                self._arm(self.srv.cfg.tcp_query_timeout_s, idle=False)
            else:
                self._arm(self.srv.cfg.tcp_idle_timeout_s, idle=True)


class FilterServer:
    """One filter instance. ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        cfg: DnsConfig,
        paths: ListPaths,
        querylog_dir: Path | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.cfg = cfg
        self.paths = paths
        self.stats = Stats()
        self.policy: Policy = policy or build_policy(cfg, paths)
        self._note_lists(self.policy.lists)
        self.gen = 0
        self.cache: dict[bytes, CacheEntry] = {}
        self.inflight: dict[bytes, list[_Waiter]] = {}
        self.upstream = UpstreamPool(list(cfg.upstreams), cfg.upstream_timeout_ms, self.stats)
        self.qlog = QueryLog(cfg.query_log, querylog_dir or Path(cfg.query_log.directory))
        self._blocked_memo: dict[tuple[bytes, bytes, int, int, int], bytes] = {}
        self._udp_transports: list[asyncio.DatagramTransport] = []
        self._tcp_servers: list[asyncio.Server] = []
        self._tcp_conns: set[_TcpProtocol] = set()
        self._tcp_per_ip: dict[str, int] = {}
        self._http: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._reload_lock = asyncio.Lock()
        self._stopped: asyncio.Event | None = None
        self.udp_addrs: list[tuple[str, int]] = []
        self.tcp_addrs: list[tuple[str, int]] = []
        self.stats_addr: tuple[str, int] | None = None
        self.edns_size = cfg.edns_udp_size
        self._cname_check = cfg.cname_check
        self._log_all = self.qlog.log_all

    def _note_lists(self, ls: ListSet) -> None:
        self.stats.list_names = len(ls.block)
        self.stats.list_load_seconds = ls.load_seconds

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        await self.upstream.start()
        for spec in self.cfg.listen:
            host, port = parse_hostport(spec, 53)
            # TCP on the same port as UDP. With port 0 the port UDP got may be taken for TCP
            # (a client socket of this machine): then try another one, a few times.
            attempts = 20 if port == 0 else 1
            for attempt in range(attempts):
                tr, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
                sock_addr = tr.get_extra_info("sockname")
                try:
                    srv = await loop.create_server(lambda: _TcpProtocol(self), host, sock_addr[1], reuse_address=True)
                except OSError as e:
                    tr.close()
                    self._udp_transports.remove(cast(asyncio.DatagramTransport, tr))
                    if e.errno != errno.EADDRINUSE or attempt == attempts - 1:
                        raise
                    continue
                break
            self.udp_addrs.append((sock_addr[0], sock_addr[1]))
            self._tcp_servers.append(srv)
            tcp_addr = srv.sockets[0].getsockname()
            self.tcp_addrs.append((tcp_addr[0], tcp_addr[1]))
        if self.cfg.stats_listen:
            host, port = parse_hostport(self.cfg.stats_listen, 9153)
            self._http = await asyncio.start_server(self._http_client, host, port)
            a = self._http.sockets[0].getsockname()
            self.stats_addr = (a[0], a[1])
        self._tasks.append(loop.create_task(self._housekeeping()))
        log.debug("%s", self.start_line())

    def start_line(self) -> str:
        """One line for the admin: where it listens, what it loaded, where it forwards.

        Addresses of the filter and its upstreams, counts and category names only: no client
        addresses, no queried names.
        """
        ls = self.policy.lists
        cats = ", ".join(f"{c} {n}" for c, n in ls.names_per_category().items()) or "none"
        stats = f"http://{_hostport(*self.stats_addr)}" if self.stats_addr else "off"
        parts = [
            "photoguard dns: listening on " + ", ".join(_hostport(h, p) for h, p in self.udp_addrs) + " (udp+tcp)",
            f"lists: {len(ls.block)} names ({cats})",
            f"allowlisted {len(ls.allow)}",
            "upstreams " + ", ".join(u.label for u in self.upstream.upstreams),
            "groups " + ", ".join(g.name for g in self.cfg.groups) + f" (default {self.cfg.default_group})",
            f"stats/control {stats}",
            f"query log {self.cfg.query_log.mode}",
        ]
        if ls.errors:
            parts.append(f"UNREADABLE LISTS: {len(ls.errors)}")
        return "; ".join(parts)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: self.schedule_reload(force=True))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    def request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for tr in self._udp_transports:
            tr.close()
        for s in self._tcp_servers:
            s.close()
        for c in list(self._tcp_conns):
            c.drop()
        if self._http is not None:
            self._http.close()
        await self.upstream.close()
        self.qlog.close()
        self.request_stop()

    async def _housekeeping(self) -> None:
        last_reload_check = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            self.qlog.flush()
            self._note_qlog()
            now = time.monotonic()
            if len(self.cache) > self.cfg.cache_size:
                self._evict(now)
            ri = self.cfg.reload_interval_s
            if ri and now - last_reload_check >= ri:
                last_reload_check = now
                self.schedule_reload(force=False)

    def _evict(self, now: float) -> None:
        """Drop expired entries, then the oldest, down to 90% of ``cache_size`` (amortised)."""
        expired = [k for k, e in self.cache.items() if e.expires <= now]
        for k in expired:
            del self.cache[k]
        excess = len(self.cache) - (self.cfg.cache_size * 9) // 10
        if excess > 0:
            for k in list(itertools.islice(self.cache, excess)):  # oldest insertions first
                del self.cache[k]

    # -- TCP client limits --------------------------------------------------------------------

    def _tcp_admit(self, conn: _TcpProtocol) -> bool:
        """Count a new TCP client in, or refuse it (per-address cap).

        At the total cap the client that has waited longest (for the rest of a query, or idle)
        is closed to make room, so stalled connections cannot lock everybody else out.
        """
        cfg = self.cfg
        per = self._tcp_per_ip.get(conn.ip, 0)
        if per >= cfg.max_tcp_clients_per_ip:
            self.stats.tcp_refused += 1
            return False
        if len(self._tcp_conns) >= cfg.max_tcp_clients:
            victim = min(self._tcp_conns, key=lambda c: c.since)
            self.stats.tcp_evicted += 1
            victim.drop()
        self._tcp_conns.add(conn)
        self._tcp_per_ip[conn.ip] = per + 1
        conn.counted = True
        return True

    def _tcp_forget(self, conn: _TcpProtocol) -> None:
        if not conn.counted:
            return
        conn.counted = False
        self._tcp_conns.discard(conn)
        left = self._tcp_per_ip.get(conn.ip, 1) - 1
        if left > 0:
            self._tcp_per_ip[conn.ip] = left
        else:
            self._tcp_per_ip.pop(conn.ip, None)

    # -- reload --------------------------------------------------------------------------------

    def schedule_reload(self, force: bool = True) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(force))
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def reload(self, force: bool = True) -> bool:
        """Build a new policy in a worker thread and swap it in; queries never wait for it."""
        async with self._reload_lock:
            if not force and file_mtimes(self.paths.all_paths()) == self.policy.lists.mtimes:
                return False
            loop = asyncio.get_running_loop()
            try:
                policy = await loop.run_in_executor(None, build_policy, self.cfg, self.paths)
            except Exception:
                self.stats.reload_errors += 1
                log.exception("list reload failed; keeping the old lists")
                return False
            self.policy = policy  # one reference swap: in-flight queries finish on either
            self.gen += 1
            self._blocked_memo.clear()
            self.stats.reloads += 1
            self._note_lists(policy.lists)
            log.info("lists reloaded: %d names", len(policy.lists.block))
            return True

    # -- the hot path --------------------------------------------------------------------------

    def _send(self, tr: Transport, addr: Addr, resp: bytes) -> None:
        if addr is None:
            if not tr.is_closing():  # a TCP client may leave before its answer is ready
                tcp = cast(asyncio.Transport, tr)
                tcp.write(struct.pack("!H", len(resp)) + resp)
                if tcp.get_write_buffer_size() > _TCP_MAX_UNREAD:  # a client that does not read
                    self.stats.tcp_deadline_closed += 1
                    tcp.abort()
        else:
            tr.sendto(resp, addr)  # type: ignore[union-attr]

    def handle(self, data: bytes, tr: Transport, addr: Addr, tcp_peer: str = "") -> None:
        """Answer one query. ``addr`` None means TCP (``tcp_peer`` is then the client IP)."""
        stats = self.stats
        stats.queries += 1
        n = len(data)
        if n < 17 or data[2] & 0xF8 or data[4] or data[5] != 1:
            self._bad(data, tr, addr)
            return
        # question name: walk the labels
        pos = 12
        ln = data[12]
        while ln:
            if ln > 63:
                self._bad(data, tr, addr)
                return
            pos += ln + 1
            if pos >= n:
                self._bad(data, tr, addr)
                return
            ln = data[pos]
        qend = pos + 5
        if qend > n or pos > 266:  # runs past the end, or longer than 255 octets on the wire
            self._bad(data, tr, addr)
            return
        # What follows the question: nothing, or one OPT RR (where every client puts it), and
        # then the end of the message. Anything else goes through the full record walk, which
        # refuses bad names, a second or misplaced OPT and trailing garbage.
        has_opt = (
            n >= qend + 11
            and data[11] == 1
            and not (data[6] or data[7] or data[8] or data[9] or data[10])
            and data[qend] == 0
            and data[qend + 1] == 0
            and data[qend + 2] == 41
            and qend + 11 + ((data[qend + 9] << 8) | data[qend + 10]) == n
        )
        if not has_opt and (n != qend or data[6:12] != _NO_RECORDS) and not wire.query_tail_ok(data, qend):
            self._bad(data, tr, addr)
            return
        # EDNS(0): an OPT RR right after the question
        flags = data[3] & 0x10  # CD
        limit = 512
        if (
            (data[11] or data[10])
            and n >= qend + 11
            and data[qend] == 0
            and data[qend + 1] == 0
            and data[qend + 2] == 41
        ):
            flags |= 1
            if data[qend + 7] & 0x80:
                flags |= 2  # DO
            limit = (data[qend + 3] << 8) | data[qend + 4]
            limit = 512 if limit < 512 else min(limit, self.edns_size)
        if addr is None:
            limit = 65535
        policy = self.policy
        ip = tcp_peer if addr is None else addr[0]
        gi = policy.clients.cache.get(ip)
        if gi is None:
            gi = policy.clients.lookup(ip)
        if gi < 0:
            stats.refused += 1
            self._send(tr, addr, self._simple(data, qend, flags, wire.RC_REFUSED))
            return
        group = policy.groups[gi]
        qkey = data[12:qend].lower()
        wname = qkey[: qend - 16]
        v = policy.vcache.get(wname)
        if v is None:
            v = policy.verdict(wname, wire.wire_to_name(wname))
        if v.special and self._special(data, qend, flags, v, group, tr, addr, limit):
            return
        if v.mask & group.block_mask and not v.allowed:
            name = v.name
            m = v.mask & group.block_mask
            if not group.allows(name):
                self._blocked(data, qend, flags, m, tr, addr, group, name, policy, "list")
                return
        key = qkey + _FLAG_BYTES[flags]
        e = self.cache.get(key)
        if e is not None:
            now = time.monotonic()
            if now < e.expires:
                age = int(now - e.stored)
                if age != e.age:
                    e.now = wire.patch_ttls(e.body, e.offs, e.ttls, age)
                    e.age = age
                if e.cnames and self._cname_check:
                    if e.cname_gen != self.gen:
                        e.cname_mask = self._cname_mask(e.cnames, policy)
                        e.cname_gen = self.gen
                    m = e.cname_mask & group.block_mask
                    if m and not self._cname_allowed(e.cnames, group, policy):
                        stats.cname_blocked += 1
                        name = v.name
                        self._blocked(data, qend, flags, m, tr, addr, group, name, policy, "cname")
                        return
                stats.cache_hits += 1
                body = e.now
                resp = data[:2] + body[2:12] + data[12:qend] + body[qend:]
                if len(resp) > limit:
                    stats.truncated += 1
                    resp = wire.truncated(resp, qend)
                if addr is not None:
                    tr.sendto(resp, addr)  # type: ignore[union-attr]
                else:
                    self._send(tr, addr, resp)
                if self._log_all:
                    self._log(tr, addr, wname, data, qend, "cached", "", group)
                return
        stats.cache_misses += 1
        self._forward(key, data, qend, flags, tr, addr, group, limit)

    def _bad(self, data: bytes, tr: Transport, addr: Addr) -> None:
        self.stats.malformed += 1
        if len(data) < 12 or data[2] & 0x80:
            return  # a response, or too short to answer: drop
        opcode = (data[2] >> 3) & 0x0F
        rcode = wire.RC_NOTIMP if opcode else wire.RC_FORMERR
        self._send(tr, addr, wire.header(data[:2], data[2:4], rcode, 0, 0, 0)[:4] + bytes(8))

    def _edns(self, flags: int) -> tuple[int, bool] | None:
        return (self.edns_size, bool(flags & 2)) if flags & 1 else None

    def _simple(self, data: bytes, qend: int, flags: int, rcode: int, soa_ttl: int = -1) -> bytes:
        auth = []
        if soa_ttl >= 0:
            auth = [wire.rr_bytes(wire.QNAME_PTR, wire.T_SOA, soa_ttl, wire.soa_rdata(soa_ttl))]
        return wire.build_response(data, qend, rcode, authority=auth, edns=self._edns(flags))

    def _blocked(
        self,
        data: bytes,
        qend: int,
        flags: int,
        mask: int,
        tr: Transport,
        addr: Addr,
        group: Group,
        name: str,
        policy: Policy,
        how: str,
    ) -> None:
        cat_bit = mask & -mask
        cat = policy.cat_of_bit.get(cat_bit, "?")
        self.stats.blocked[cat] = self.stats.blocked.get(cat, 0) + 1
        qtype = data[qend - 4 : qend - 2]
        mkey = (qtype, data[2:4], flags, cat_bit, 1 if how == "cname" else 0)
        tail = self._blocked_memo.get(mkey)
        if tail is None:
            tail = self._build_blocked(data, qend, flags, cat, how)
            if len(self._blocked_memo) > 4096:
                self._blocked_memo.clear()
            self._blocked_memo[mkey] = tail
        self._send(tr, addr, data[:2] + tail[:10] + data[12:qend] + tail[10:])
        if self.qlog.enabled:
            self._log_name(tr, addr, name, data, qend, "blocked", f"{how}:{cat}", group)

    def _build_blocked(self, data: bytes, qend: int, flags: int, cat: str, how: str) -> bytes:
        """Blocked answer without ID and question: header[2:12] + records."""
        cfg = self.cfg
        ttl = cfg.block_ttl
        qtype = (data[qend - 4] << 8) | data[qend - 3]
        answers: list[bytes] = []
        auth: list[bytes] = []
        rcode = wire.RC_NXDOMAIN
        if cfg.block_mode == "null_ip":
            rcode = wire.RC_NOERROR
            if qtype == wire.T_A:
                answers.append(wire.rr_bytes(wire.QNAME_PTR, wire.T_A, ttl, _NULL_A))
            elif qtype == wire.T_AAAA:
                answers.append(wire.rr_bytes(wire.QNAME_PTR, wire.T_AAAA, ttl, _NULL_AAAA))
        if not answers:
            auth.append(wire.rr_bytes(wire.QNAME_PTR, wire.T_SOA, ttl, wire.soa_rdata(ttl)))
        text = f"blocked by school filter: {cat}" + (" (cname)" if how == "cname" else "")
        resp = wire.build_response(
            data,
            qend,
            rcode,
            answers,
            auth,
            edns=self._edns(flags),
            ede=(wire.EDE_BLOCKED, text),
        )
        return resp[2:12] + resp[qend:]

    def _special(
        self,
        data: bytes,
        qend: int,
        flags: int,
        v: Verdict,
        group: Group,
        tr: Transport,
        addr: Addr,
        limit: int,
    ) -> bool:
        sp = v.special
        label = SPECIAL_LABELS[sp]
        if sp in (SP_CANARY, SP_RELAY):
            resp = self._simple(data, qend, flags, wire.RC_NXDOMAIN, self.cfg.block_ttl)
        elif sp == SP_DDR:
            resp = self._simple(data, qend, flags, wire.RC_NOERROR, self.cfg.block_ttl)
        else:
            safe = group.safesearch.get(sp)
            if safe is None:
                return False
            self.stats.special[label] = self.stats.special.get(label, 0) + 1
            self._safesearch(data, qend, flags, safe, tr, addr, limit)
            return True
        self.stats.special[label] = self.stats.special.get(label, 0) + 1
        self._send(tr, addr, resp)
        if self.qlog.enabled:
            self._log(tr, addr, data[12 : qend - 4].lower(), data, qend, "local", label, group)
        return True

    # -- SafeSearch ----------------------------------------------------------------------------

    def _safesearch(
        self,
        data: bytes,
        qend: int,
        flags: int,
        safe: str,
        tr: Transport,
        addr: Addr,
        limit: int,
    ) -> None:
        qtype = (data[qend - 4] << 8) | data[qend - 3]
        swire = wire.encode_name(safe)
        key = swire + data[qend - 4 : qend] + b"\x00"
        e = self.cache.get(key)
        if e is not None and time.monotonic() < e.expires:
            self.stats.cache_hits += 1
            self._send_safesearch(data, qend, flags, swire, e.body, tr, addr, limit)
            return

        def done(reply: bytes | None) -> None:
            if reply is None:
                self.stats.servfail += 1
                self._send(tr, addr, self._simple(data, qend, flags, wire.RC_SERVFAIL))
                return
            self._store(key, reply)
            self._send_safesearch(data, qend, flags, swire, reply, tr, addr, limit)

        q = wire.make_query(0, safe, qtype)
        self.upstream.query(q, q[12:].lower(), done)

    def _send_safesearch(
        self,
        data: bytes,
        qend: int,
        flags: int,
        swire: bytes,
        reply: bytes,
        tr: Transport,
        addr: Addr,
        limit: int,
    ) -> None:
        try:
            recs = wire.records_for(reply, _ADDR_TYPES | {(data[qend - 4] << 8) | data[qend - 3]})
        except wire.WireError:
            recs = []
        answers = [wire.rr_bytes(wire.QNAME_PTR, wire.T_CNAME, 300, swire)]
        for owner, rtype, ttl, rdata in recs:
            answers.append(wire.rr_bytes(wire.encode_name(owner), rtype, min(ttl, 300), rdata))
        resp = wire.build_response(data, qend, reply[3] & 0x0F, answers, edns=self._edns(flags))
        if len(resp) > limit:
            resp = wire.truncated(resp, qend)
        self._send(tr, addr, resp)

    # -- forwarding ----------------------------------------------------------------------------

    def _forward(
        self,
        key: bytes,
        data: bytes,
        qend: int,
        flags: int,
        tr: Transport,
        addr: Addr,
        group: Group,
        limit: int,
    ) -> None:
        w = _Waiter(tr, addr, data, qend, group, limit)
        waiters = self.inflight.get(key)
        if waiters is not None:
            waiters.append(w)
            return
        self.inflight[key] = [w]
        # Forward header + question + our own clean OPT (no client cookies / ECS / padding).
        if flags & 1:
            q = (
                data[:4]
                + b"\x00\x01\x00\x00\x00\x00\x00\x01"
                + data[12:qend]
                + wire.opt_rr(self.edns_size, bool(flags & 2))
            )
        else:
            q = data[:4] + b"\x00\x01\x00\x00\x00\x00\x00\x00" + data[12:qend]
        self.upstream.query(q, data[12:qend].lower(), lambda r: self._answer(key, r))

    def _store(self, key: bytes, reply: bytes) -> CacheEntry | None:
        try:
            info = wire.analyse_answer(reply)
        except (wire.WireError, struct.error, IndexError):
            return None
        rcode = reply[3] & 0x0F
        if self.cfg.cache_size <= 0 or rcode not in (wire.RC_NOERROR, wire.RC_NXDOMAIN):
            e = CacheEntry(reply, info, time.monotonic(), 0)
            return e
        ttl = info.min_ttl
        negative = rcode == wire.RC_NXDOMAIN or (reply[6] << 8 | reply[7]) == 0
        if ttl < 0:
            ttl = 60 if negative else 0
        ttl = min(ttl, self.cfg.cache_negative_ttl if negative else self.cfg.cache_max_ttl)
        e = CacheEntry(reply, info, time.monotonic(), ttl)
        if ttl > 0:
            if len(self.cache) >= self.cfg.cache_size:
                self._evict(time.monotonic())
            self.cache[key] = e
        return e

    def _cname_mask(self, cnames: tuple[str, ...], policy: Policy) -> int:
        m = 0
        for c in cnames:
            v = policy.verdict_for_name(c)
            if not v.allowed:
                m |= v.mask
        return m

    def _cname_allowed(self, cnames: tuple[str, ...], group: Group, policy: Policy) -> bool:
        return all(not policy.blocked_by(c, group) for c in cnames)

    def _answer(self, key: bytes, reply: bytes | None) -> None:
        waiters = self.inflight.pop(key, [])
        stats = self.stats
        if reply is None:
            for w in waiters:
                stats.servfail += 1
                flags = key[-1]
                self._send(w.tr, w.addr, self._simple(w.data, w.qend, flags, wire.RC_SERVFAIL))
            return
        e = self._store(key, reply)
        if e is None:
            for w in waiters:
                stats.servfail += 1
                self._send(w.tr, w.addr, self._simple(w.data, w.qend, key[-1], wire.RC_SERVFAIL))
            return
        policy = self.policy
        cmask = 0
        if e.cnames and self.cfg.cname_check:
            cmask = self._cname_mask(e.cnames, policy)
            e.cname_mask = cmask
            e.cname_gen = self.gen
        for w in waiters:
            m = cmask & w.group.block_mask
            if m and not self._cname_allowed(e.cnames, w.group, policy):
                stats.cname_blocked += 1
                name = wire.wire_to_name(w.data[12 : w.qend - 4].lower())
                self._blocked(w.data, w.qend, key[-1], m, w.tr, w.addr, w.group, name, policy, "cname")
                continue
            resp = w.data[:2] + reply[2:12] + w.data[12 : w.qend] + reply[w.qend :]
            if len(resp) > w.limit:
                stats.truncated += 1
                resp = wire.truncated(resp, w.qend)
            self._send(w.tr, w.addr, resp)
            if self.qlog.log_all:
                self._log(
                    w.tr,
                    w.addr,
                    w.data[12 : w.qend - 4].lower(),
                    w.data,
                    w.qend,
                    "forwarded",
                    "",
                    w.group,
                )

    # -- query log -----------------------------------------------------------------------------

    def _client_ip(self, tr: Transport, addr: Addr) -> str:
        if addr is not None:
            return str(addr[0])
        peer = tr.get_extra_info("peername") or ("",)
        return str(peer[0])

    def _log(
        self,
        tr: Transport,
        addr: Addr,
        wname: bytes,
        data: bytes,
        qend: int,
        action: str,
        reason: str,
        group: Group,
    ) -> None:
        self._log_name(tr, addr, wire.wire_to_name(wname), data, qend, action, reason, group)

    def _log_name(
        self,
        tr: Transport,
        addr: Addr,
        name: str,
        data: bytes,
        qend: int,
        action: str,
        reason: str,
        group: Group,
    ) -> None:
        qtype = (data[qend - 4] << 8) | data[qend - 3]
        self.qlog.write(self._client_ip(tr, addr), name, qtype, action, reason, group.name)

    # -- stats endpoint ------------------------------------------------------------------------

    async def _http_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, ctype, body = "200 OK", "application/json", b""
            if method == "GET" and path == "/metrics":
                self._note_qlog()
                ctype = "text/plain; version=0.0.4"
                body = self.stats.prometheus().encode()
            elif method == "GET" and path in ("/stats", "/stats.json"):
                body = json.dumps(self.stats_snapshot()).encode()
            elif method == "GET" and urllib.parse.urlsplit(path).path == "/check":
                status, body = await self._check(urllib.parse.urlsplit(path).query)
            elif method == "POST" and path == "/reload":
                ok = await self.reload(force=True)
                body = json.dumps({"reloaded": ok, "names": len(self.policy.lists.block)}).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
            pass
        finally:
            writer.close()

    async def _check(self, query: str) -> tuple[str, bytes]:
        """``GET /check?name=NAME&client=IP``: the running policy's explanation (``dns check``)."""
        q = urllib.parse.parse_qs(query)
        name = q.get("name", [""])[0].strip()
        client = q.get("client", ["127.0.0.1"])[0].strip()
        try:
            ipaddress.ip_address(client)
        except ValueError:
            return "400 Bad Request", json.dumps({"error": "client must be an IP address"}).encode()
        if not name or len(name) > 255:
            return "400 Bad Request", json.dumps({"error": "name: 1 to 255 characters"}).encode()
        policy = self.policy  # the lists in use right now, even if a reload swaps them meanwhile
        try:
            res = await asyncio.get_running_loop().run_in_executor(None, policy.explain, name, client)
        except Exception:
            log.exception("check failed")
            return "500 Internal Server Error", json.dumps({"error": "check failed"}).encode()
        return "200 OK", json.dumps(res).encode()

    def _note_qlog(self) -> None:
        self.stats.query_log_suppressed = self.qlog.suppressed
        self.stats.query_log_rotations = self.qlog.rotations

    def stats_snapshot(self) -> dict[str, Any]:
        self._note_qlog()
        d = self.stats.as_dict()
        d["cache_entries"] = len(self.cache)
        d["categories"] = list(self.policy.lists.categories)
        d["upstreams"] = [
            {"upstream": u.label, "down": u.down_until > time.monotonic(), "fails": u.fails}
            for u in self.upstream.upstreams
        ]
        return d


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if use_uvloop:
        try:
            import uvloop

            return uvloop.new_event_loop()  # type: ignore[no-any-return,unused-ignore]
        except ImportError:
            log.info("uvloop not installed; using the standard asyncio loop")
    return asyncio.new_event_loop()


def run_server(
    cfg: DnsConfig,
    paths: ListPaths,
    querylog_dir: Path,
    ready: Callable[[FilterServer], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (the ``dns serve`` command)."""
    loop = new_event_loop(cfg.use_uvloop)

    async def main() -> None:
        srv = FilterServer(cfg, paths, querylog_dir)
        await srv.start()
        # printed, not logged: the admin sees it without -v (and in the journal under systemd)
        print(srv.start_line(), flush=True)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            srv.install_signal_handlers()
        if ready is not None:
            ready(srv)
        try:
            await srv.wait_stopped()
        finally:
            await srv.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return 0
