"""Malformed queries on real sockets: over-long names, bad labels, compression pointers, loops
and trailing garbage are refused with FORMERR and never forwarded (RFC 1035 3.1, 4.1.4; RFC 6891)."""

from __future__ import annotations

import struct

import pytest
from dnslib import EDNS0, DNSRecord

from photoguard.dnsfilter import wire
from tests.support.dns import Env, raw_query

FORMERR = 1


def _header(qid: int = 0x4242, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HBBHHHH", qid, 0x01, 0, qd, an, ns, ar)


def _labels(*sizes: int) -> bytes:
    out = b"".join(bytes((n,)) + b"a" * n for n in sizes)
    return out + b"\x00"


def _question(qname_wire: bytes, qtype: int = 1) -> bytes:
    return qname_wire + struct.pack("!HH", qtype, 1)


OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


def _rcode(resp: bytes) -> int:
    return resp[3] & 0x0F


MALFORMED = {
    # 3 x 63 + 62 octet labels: 64 * 3 + 63 + 1 = 256 octets on the wire, one too many
    "name_256_octets": _header() + _question(_labels(63, 63, 63, 62)),
    "name_300_octets": _header() + _question(_labels(*([9] * 30))),
    "label_64": _header() + _question(_labels(64, 3)),
    "label_type_0x40": _header() + _question(b"\x41" + b"a" * 65 + b"\x00"),
    "pointer_in_question": _header() + _question(b"\x03abc\xc0\x0c"),
    "pointer_loop_in_question": _header() + _question(b"\xc0\x0c"),
    "name_runs_past_end": _header() + b"\x05abc",
    "trailing_garbage": _header() + _question(_labels(3, 4)) + b"JUNK",
    "garbage_after_opt": _header(ar=1) + _question(_labels(3, 4)) + OPT + b"\x00",
    "opt_rdlen_too_long": _header(ar=1) + _question(_labels(3, 4)) + OPT[:-2] + b"\x00\x08",
    "two_opts": _header(ar=2) + _question(_labels(3, 4)) + OPT + OPT,
    "opt_in_answer_section": _header(an=1) + _question(_labels(3, 4)) + OPT,
    "record_count_without_record": _header(ar=1) + _question(_labels(3, 4)),
    # an additional record whose owner is a pointer to itself (offset of the record)
    "self_pointer_in_additional": _header(ar=1)
    + _question(_labels(3, 4))
    + struct.pack("!H", 0xC000 | (12 + 10 + 4))
    + struct.pack("!HHIH", 1, 1, 0, 0),
    # a forward pointer (to a later offset) in an additional record
    "forward_pointer": _header(ar=1) + _question(_labels(3, 4)) + b"\xc0\x40" + struct.pack("!HHIH", 1, 1, 0, 0),
}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_query_gets_formerr_and_is_not_forwarded(env: Env, case: str, tcp: bool) -> None:
    packet = MALFORMED[case]
    resp = raw_query(packet, env.port, tcp=tcp)
    assert resp[:2] == packet[:2] and resp[2] & 0x80  # our answer to that query
    assert _rcode(resp) == FORMERR, case
    assert struct.unpack("!HHH", resp[6:12]) == (0, 0, 0)  # no records
    assert not env.ups[0].udp_queries and not env.ups[0].tcp_queries
    assert env.srv.stats.malformed >= 1


def test_longest_legal_name_is_still_answered(env: Env) -> None:
    # 63 + 63 + 63 + 61 octet labels: exactly 255 octets on the wire
    packet = _header() + _question(_labels(63, 63, 63, 61))
    resp = raw_query(packet, env.port)
    assert _rcode(resp) == 3  # NXDOMAIN from the fake upstream, i.e. forwarded
    assert len(env.ups[0].udp_queries) == 1


def test_queries_with_edns_and_extra_records_still_work(env: Env) -> None:
    q = DNSRecord.question("example.org")
    q.add_ar(EDNS0(udp_len=1232))
    assert _rcode(raw_query(bytes(q.pack()), env.port)) == 0
    # an OPT followed by another additional record (e.g. a signature) parses: not malformed
    rr = b"\x00" + struct.pack("!HHIH", 16, 1, 0, 2) + b"\x01x"
    packet = _header(ar=2) + _question(b"\x07example\x03org\x00") + OPT + rr
    assert _rcode(raw_query(packet, env.port)) == 0
    assert env.srv.stats.malformed == 0


def _msg(body: bytes) -> bytes:
    return _header() + body


def test_read_name_refuses_loops_forward_pointers_and_long_names() -> None:
    # a pointer to itself, a forward pointer, and two pointers pointing at each other
    loop = _header() + b"\xc0\x0c"
    with pytest.raises(wire.WireError):
        wire.read_name(loop, 12)
    fwd = _header() + b"\xc0\x0e\x01a\x00"
    with pytest.raises(wire.WireError):
        wire.read_name(fwd, 12)
    mutual = _header() + b"\xc0\x0e\xc0\x0c"
    with pytest.raises(wire.WireError):
        wire.read_name(mutual, 14)
    # a chain of pointers, each adding a label, that grows past 255 octets
    buf = bytearray(_header() + b"\x00")
    prev = 12
    for _ in range(40):
        here = len(buf)
        buf += b"\x09" + b"b" * 9 + struct.pack("!H", 0xC000 | prev)
        prev = here
    with pytest.raises(wire.WireError, match="too long"):
        wire.read_name(bytes(buf), prev)
    with pytest.raises(wire.WireError):
        wire.skip_name(fwd, 12)
    with pytest.raises(wire.WireError, match="too long"):
        wire.skip_name(_msg(_labels(63, 63, 63, 62)), 12)
    assert wire.read_name(_msg(b"\x01a\x00\x01b\xc0\x0c"), 15) == ("b.a", 19)


def test_encode_name_refuses_over_long_names() -> None:
    with pytest.raises(wire.WireError):
        wire.encode_name(".".join(["a" * 63] * 4))
    assert len(wire.encode_name(".".join(["a" * 63] * 3 + ["a" * 61]))) == 255


def test_upstream_answer_with_a_compression_loop_is_servfail(env: Env) -> None:
    """A hostile upstream cannot loop the parser: its answer is dropped, the client gets SERVFAIL."""
    up = env.ups[0]
    orig = up.answer

    def looping(data: bytes, tcp: bool) -> bytes | None:
        out = orig(data, tcp)
        if out is None:
            return None
        req = DNSRecord.parse(data)
        if str(req.q.qname).rstrip(".") != "loop.example.org":
            return out
        # one CNAME answer whose target points at itself
        body = bytearray(out[:12] + out[12 : wire.question_end(out)])
        body[6:8] = b"\x00\x01"
        body[8:12] = b"\x00\x00\x00\x00"
        rdata_off = len(body) + 12
        body += b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 2) + struct.pack("!H", 0xC000 | rdata_off)
        return bytes(body)

    up.answer = looping  # type: ignore[method-assign]
    r = env.query("loop.example.org")
    assert r.header.rcode == 2
    assert env.query("example.org").header.rcode == 0  # and the filter keeps working
