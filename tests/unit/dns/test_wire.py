"""Wire-level robustness: random packets never break the server; answers are well formed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dnslib import EDNS0, RR, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photoguard.dnsfilter import wire
from photoguard.dnsfilter.config import DnsConfig
from photoguard.dnsfilter.server import FilterServer, ListPaths


class _Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append(data)

    def write(self, data: bytes) -> None:
        self.sent.append(data[2:])

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1)


def _server(tmp: Path) -> FilterServer:
    lst = tmp / "l.txt"
    lst.write_text("blocked.test\n")
    cfg = DnsConfig.model_validate(
        {
            "upstreams": ["127.0.0.1:9"],
            "lists": [{"category": "porn", "path": str(lst)}],
            "stats_listen": "",
            "query_log": {"mode": "off"},
        }
    )
    return FilterServer(cfg, ListPaths.from_config(cfg, tmp), tmp / "q")


_SRV: dict[str, FilterServer] = {}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=80))
def test_random_packets_never_raise(tmp_path: Path, data: bytes) -> None:
    srv = _SRV.get("s") or _SRV.setdefault("s", _server(tmp_path))
    sink = _Sink()
    # not started: no upstream sockets, so a forwarded query gets SERVFAIL at once
    srv.handle(data, sink, ("127.0.0.1", 1))  # type: ignore[arg-type]
    srv.handle(data, sink, None, "127.0.0.1")  # type: ignore[arg-type]
    for out in sink.sent:
        assert out[:2] == data[:2] and out[2] & 0x80  # a response to that query ID


def test_blocked_answer_parses_with_dnslib(tmp_path: Path) -> None:
    srv = _server(tmp_path)
    sink = _Sink()
    q = DNSRecord.question("x.blocked.test", "AAAA")
    q.add_ar(EDNS0(udp_len=4096, flags="do"))
    srv.handle(bytes(q.pack()), sink, ("127.0.0.1", 1))  # type: ignore[arg-type]
    r = DNSRecord.parse(sink.sent[0])
    assert r.header.rcode == 3 and r.header.id == q.header.id and r.header.qr == 1
    assert str(r.q.qname) == "x.blocked.test."
    opt = next(a for a in r.ar if a.rtype == 41)
    assert opt.edns_do == 1


def test_analyse_answer_ttls_and_cnames() -> None:
    r = DNSRecord.question("a.test").reply()
    r.add_answer(*RR.fromZone("a.test. 120 IN CNAME b.test.\nb.test. 60 IN A 192.0.2.1"))
    buf = r.pack()
    info = wire.analyse_answer(buf)
    assert info.ttls == (120, 60) and info.min_ttl == 60 and info.cnames == ("b.test",)
    patched = wire.patch_ttls(buf, info.ttl_offsets, info.ttls, 70)
    assert [rr.ttl for rr in DNSRecord.parse(patched).rr] == [50, 0]


def test_inflight_duplicates_sent_upstream_once(tmp_path: Path) -> None:
    srv = _server(tmp_path)
    upstream_sink = _Sink()
    srv.upstream.upstreams[0].transports = [upstream_sink]  # type: ignore[list-item]
    clients = _Sink()
    q1 = DNSRecord.question("same.example")
    q2 = DNSRecord.question("SAME.example")
    srv.handle(bytes(q1.pack()), clients, ("127.0.0.1", 1))  # type: ignore[arg-type]
    srv.handle(bytes(q2.pack()), clients, ("127.0.0.1", 2))  # type: ignore[arg-type]
    assert len(upstream_sink.sent) == 1 and not clients.sent
    reply = DNSRecord.parse(upstream_sink.sent[0]).reply()
    reply.add_answer(*RR.fromZone("same.example. 300 IN A 192.0.2.7"))
    srv.upstream.on_reply(bytes(reply.pack()))
    got = {DNSRecord.parse(p).header.id: DNSRecord.parse(p) for p in clients.sent}
    assert set(got) == {q1.header.id, q2.header.id}
    assert str(got[q2.header.id].q.qname) == "SAME.example."  # each client's own question
    assert str(got[q1.header.id].rr[0].rdata) == "192.0.2.7"
