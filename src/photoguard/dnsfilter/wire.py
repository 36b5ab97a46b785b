"""Hand-written DNS wire format helpers (RFC 1035, EDNS(0) RFC 6891, EDE RFC 8914).

Only what the filter needs: the hot path reads the header and question by slicing bytes in
``server.py``; this module walks resource records of upstream answers (TTL offsets for the cache,
CNAME targets for cloaking checks) and builds the filter's own answers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

T_A = 1
T_NS = 2
T_CNAME = 5
T_SOA = 6
T_PTR = 12
T_AAAA = 28
T_OPT = 41
T_HTTPS = 65

RC_NOERROR = 0
RC_FORMERR = 1
RC_SERVFAIL = 2
RC_NXDOMAIN = 3
RC_NOTIMP = 4
RC_REFUSED = 5

EDE_BLOCKED = 15
EDE_FILTERED = 17
EDE_PROHIBITED = 18

_U16 = struct.Struct("!H")
_RR_FIXED = struct.Struct("!HHIH")


class WireError(ValueError):
    """Malformed packet."""


class RR(NamedTuple):
    section: int  # 0 answer, 1 authority, 2 additional
    name_off: int
    rtype: int
    rclass: int
    ttl_off: int
    rdata_off: int
    rdlen: int


#: Longest name on the wire (RFC 1035 3.1: labels with their length bytes and the root byte).
MAX_NAME_WIRE = 255


def skip_name(buf: bytes, off: int) -> int:
    """Offset just past the (possibly compressed) name at ``off``.

    Checks what can be checked without following a pointer: label types, the length of the
    uncompressed part, and that a pointer points back to an earlier offset after the header.
    """
    n = len(buf)
    start = off
    while True:
        if off >= n:
            raise WireError("name runs past end")
        ln = buf[off]
        if ln == 0:
            if off + 1 - start > MAX_NAME_WIRE:
                raise WireError("name too long")
            return off + 1
        if ln >= 0xC0:
            if off + 1 >= n:
                raise WireError("truncated pointer")
            target = ((ln & 0x3F) << 8) | buf[off + 1]
            if target < 12 or target >= off:
                raise WireError("bad compression pointer")
            if off + 1 - start > MAX_NAME_WIRE:
                raise WireError("name too long")
            return off + 2
        if ln > 63:
            raise WireError("bad label type")
        off += ln + 1


def read_name(buf: bytes, off: int) -> tuple[str, int]:
    """Decode a name (following compression pointers), lower-cased, no trailing dot.

    Pointers must point strictly backwards into the message (after the header), which rules out
    loops; the whole name, pointers followed, must fit in 255 octets on the wire.
    """
    labels: list[str] = []
    end = -1
    jumps = 0
    length = 1  # the root label
    n = len(buf)
    while True:
        if off >= n:
            raise WireError("name runs past end")
        ln = buf[off]
        if ln == 0:
            if end < 0:
                end = off + 1
            break
        if ln >= 0xC0:
            if off + 1 >= n:
                raise WireError("truncated pointer")
            if end < 0:
                end = off + 2
            target = ((ln & 0x3F) << 8) | buf[off + 1]
            if target < 12 or target >= off:
                raise WireError("bad compression pointer")
            off = target
            jumps += 1
            if jumps > 64:
                raise WireError("compression loop")
            continue
        if ln > 63:
            raise WireError("bad label type")
        length += ln + 1
        if length > MAX_NAME_WIRE:
            raise WireError("name too long")
        if off + 1 + ln > n:
            raise WireError("label runs past end")
        labels.append(buf[off + 1 : off + 1 + ln].decode("latin-1"))
        off += ln + 1
    return ".".join(labels).lower(), end


def wire_to_name(qwire: bytes) -> str:
    """Uncompressed wire name (e.g. a question's) to a dotted string (as is, no lowering)."""
    out: list[str] = []
    off = 0
    while True:
        ln = qwire[off]
        if ln == 0:
            return ".".join(out)
        out.append(qwire[off + 1 : off + 1 + ln].decode("latin-1"))
        off += ln + 1


def encode_name(name: str) -> bytes:
    name = name.rstrip(".")
    if not name:
        return b"\x00"
    parts = []
    for label in name.split("."):
        b = label.encode("ascii")
        if not 0 < len(b) <= 63:
            raise WireError(f"bad label in {name!r}")
        parts.append(bytes((len(b),)) + b)
    out = b"".join(parts) + b"\x00"
    if len(out) > MAX_NAME_WIRE:
        raise WireError(f"name longer than {MAX_NAME_WIRE} octets")
    return out


def question_end(buf: bytes) -> int:
    """Offset after the single question (header assumed 12 bytes, uncompressed qname)."""
    off = 12
    n = len(buf)
    while True:
        if off >= n:
            raise WireError("question runs past end")
        ln = buf[off]
        if ln == 0:
            break
        if ln > 63:
            raise WireError("bad label in question")
        off += ln + 1
    if off - 11 > MAX_NAME_WIRE:
        raise WireError("question name too long")
    off += 5
    if off > n:
        raise WireError("question runs past end")
    return off


def query_tail_ok(buf: bytes, qend: int) -> bool:
    """Whether the records after a query's question fill the message exactly and sensibly.

    Every record must parse (names checked as in :func:`skip_name`), nothing may follow the last
    one (no trailing garbage), and an OPT record may appear once, in the additional section,
    with the root as its owner (RFC 6891 6.1.1).
    """
    n = len(buf)
    if n < 12:
        return False
    counts = struct.unpack_from("!HHH", buf, 6)
    off = qend
    opts = 0
    try:
        for section, count in enumerate(counts):
            for _ in range(count):
                name_off = off
                off = skip_name(buf, off)
                if off + 10 > n:
                    return False
                rtype, _rclass, _ttl, rdlen = _RR_FIXED.unpack_from(buf, off)
                off += 10 + rdlen
                if off > n:
                    return False
                if rtype == T_OPT:
                    opts += 1
                    if section != 2 or opts > 1 or buf[name_off] != 0:
                        return False
    except WireError:
        return False
    return off == n


def iter_rrs(buf: bytes, off: int | None = None) -> Iterator[RR]:
    """Resource records after the question section."""
    if off is None:
        off = question_end(buf) if buf[5] == 1 and buf[4] == 0 else _skip_questions(buf)
    counts = struct.unpack_from("!HHH", buf, 6)
    n = len(buf)
    for section, count in enumerate(counts):
        for _ in range(count):
            name_off = off
            off = skip_name(buf, off)
            if off + 10 > n:
                raise WireError("record runs past end")
            rtype, rclass, _ttl, rdlen = _RR_FIXED.unpack_from(buf, off)
            rdata = off + 10
            if rdata + rdlen > n:
                raise WireError("rdata runs past end")
            yield RR(section, name_off, rtype, rclass, off + 4, rdata, rdlen)
            off = rdata + rdlen


def _skip_questions(buf: bytes) -> int:
    off = 12
    for _ in range(_U16.unpack_from(buf, 4)[0]):
        off = skip_name(buf, off) + 4
    return off


class AnswerInfo(NamedTuple):
    ttl_offsets: tuple[int, ...]
    ttls: tuple[int, ...]
    min_ttl: int  # over answer RRs, or the SOA minimum for negative answers; -1 when unknown
    cnames: tuple[str, ...]  # CNAME targets in the answer section
    opt_off: int  # offset of the OPT RR (-1 if none)


def analyse_answer(buf: bytes) -> AnswerInfo:
    """TTL positions, CNAME targets and a cache lifetime for an upstream answer."""
    offs: list[int] = []
    ttls: list[int] = []
    cnames: list[str] = []
    min_ttl = -1
    soa_ttl = -1
    opt_off = -1
    n = len(buf)
    off = question_end(buf) if buf[4] == 0 and buf[5] == 1 else _skip_questions(buf)
    an = (buf[6] << 8) | buf[7]
    total = an + ((buf[8] << 8) | buf[9]) + ((buf[10] << 8) | buf[11])
    unpack = _RR_FIXED.unpack_from
    for i in range(total):
        name_off = off
        # skip the owner name (usually a 2-byte compression pointer)
        if buf[off] >= 0xC0:
            off += 2
        else:
            off = skip_name(buf, off)
        if off + 10 > n:
            raise WireError("record runs past end")
        rtype, _rclass, ttl, rdlen = unpack(buf, off)
        rdata = off + 10
        if rdata + rdlen > n:
            raise WireError("rdata runs past end")
        ttl_off = off + 4
        off = rdata + rdlen
        if rtype == T_OPT:
            opt_off = name_off
            continue
        if ttl > 0x7FFFFFFF:
            ttl = 0
        offs.append(ttl_off)
        ttls.append(ttl)
        if i < an:
            if min_ttl < 0 or ttl < min_ttl:
                min_ttl = ttl
            if rtype == T_CNAME:
                cnames.append(read_name(buf, rdata)[0])
        elif i < total and rtype == T_SOA and soa_ttl < 0:
            # negative caching (RFC 2308): min(SOA TTL, SOA MINIMUM)
            end = skip_name(buf, skip_name(buf, rdata))
            minimum = struct.unpack_from("!I", buf, end + 16)[0]
            soa_ttl = min(ttl, minimum)
    if min_ttl < 0:
        min_ttl = soa_ttl
    return AnswerInfo(tuple(offs), tuple(ttls), min_ttl, tuple(cnames), opt_off)


def opt_rr(udp_size: int, do: bool, ede: tuple[int, str] | None = None) -> bytes:
    """An OPT pseudo-RR, optionally carrying one Extended DNS Error option."""
    rdata = b""
    if ede is not None:
        code, text = ede
        payload = _U16.pack(code) + text.encode("utf-8")
        rdata = _U16.pack(15) + _U16.pack(len(payload)) + payload
    return (
        b"\x00"
        + _U16.pack(T_OPT)
        + _U16.pack(udp_size)
        + bytes((0, 0, 0x80 if do else 0, 0))
        + _U16.pack(len(rdata))
        + rdata
    )


def header(qid: bytes, qflags: bytes, rcode: int, an: int, ns: int, ar: int, aa: bool = False) -> bytes:
    """Response header echoing the query's RD and CD bits."""
    b2 = 0x80 | (qflags[0] & 0x01) | (0x04 if aa else 0)
    b3 = 0x80 | (qflags[1] & 0x10) | rcode
    return qid + bytes((b2, b3, 0, 1)) + struct.pack("!HHH", an, ns, ar)


def rr_bytes(name_wire: bytes, rtype: int, ttl: int, rdata: bytes, rclass: int = 1) -> bytes:
    return name_wire + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


QNAME_PTR = b"\xc0\x0c"


def soa_rdata(ttl: int) -> bytes:
    """A synthetic SOA for negative answers of the filter (negative TTL = ``ttl``)."""
    return (
        encode_name("filter.photoguard.invalid")
        + encode_name("hostmaster.photoguard.invalid")
        + struct.pack("!IIIII", 1, 3600, 600, 86400, ttl)
    )


def build_response(
    query: bytes,
    qend: int,
    rcode: int,
    answers: list[bytes] | None = None,
    authority: list[bytes] | None = None,
    edns: tuple[int, bool] | None = None,
    ede: tuple[int, str] | None = None,
) -> bytes:
    """A response to ``query`` (question echoed) with the given records and optional OPT/EDE."""
    answers = answers or []
    authority = authority or []
    ar = 1 if edns is not None else 0
    out = [
        header(query[:2], query[2:4], rcode, len(answers), len(authority), ar),
        query[12:qend],
        *answers,
        *authority,
    ]
    if edns is not None:
        out.append(opt_rr(edns[0], edns[1], ede))
    return b"".join(out)


def make_query(qid: int, name: str, qtype: int, rd: bool = True) -> bytes:
    return (
        struct.pack("!HBBHHHH", qid, 0x01 if rd else 0, 0, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", qtype, 1)
    )


def truncated(resp: bytes, qend: int) -> bytes:
    """Header + question only, TC set, counts zeroed (client retries over TCP)."""
    return resp[:2] + bytes((resp[2] | 0x02, resp[3])) + b"\x00\x01\x00\x00\x00\x00\x00\x00" + (resp[12:qend])


def patch_ttls(body: bytes, offsets: tuple[int, ...], ttls: tuple[int, ...], age: int) -> bytes:
    ba = bytearray(body)
    pack = struct.pack_into
    for off, ttl in zip(offsets, ttls, strict=True):
        pack("!I", ba, off, ttl - age if ttl > age else 0)
    return bytes(ba)


def strip_opt(buf: bytes, info: AnswerInfo) -> bytes:
    """Remove the OPT RR (last record of the additional section) from a response."""
    if info.opt_off < 0:
        return buf
    end = info.opt_off + 11 + _U16.unpack_from(buf, info.opt_off + 9)[0]
    arcount = _U16.unpack_from(buf, 10)[0]
    return buf[:10] + _U16.pack(arcount - 1) + buf[12 : info.opt_off] + buf[end:]


def records_for(buf: bytes, types: frozenset[int]) -> list[tuple[str, int, int, bytes]]:
    """Answer-section records of the given types as (owner, type, ttl, uncompressed rdata)."""
    out: list[tuple[str, int, int, bytes]] = []
    for rr in iter_rrs(buf):
        if rr.section != 0 or rr.rtype not in types:
            continue
        ttl = struct.unpack_from("!I", buf, rr.ttl_off)[0]
        if rr.rtype in (T_CNAME, T_NS, T_PTR):
            rdata = encode_name(read_name(buf, rr.rdata_off)[0])
        else:
            rdata = buf[rr.rdata_off : rr.rdata_off + rr.rdlen]
        out.append((read_name(buf, rr.name_off)[0], rr.rtype, ttl, rdata))
    return out
