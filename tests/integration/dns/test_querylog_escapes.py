"""A client's query name reaches the query log, which the admin reads with ``tail`` or ``less``
(issue 17, escapes in every text output): control bytes, quotes, backslashes and 8-bit bytes in
a label are written escaped (JSON), so a log line can neither move the admin's cursor nor break
the line format. The name reads back exactly as it was asked."""

from __future__ import annotations

import json
import re
import struct

from tests.support.dns import Env, raw_query

PUPIL = "127.0.0.2"  # in the 'pupils' group: blocked queries are logged
RAW = re.compile(rb"[\x00-\x1f\x7f-\xff]")


def _query(labels: list[bytes]) -> bytes:
    qname = b"".join(bytes((len(x),)) + x for x in labels) + b"\x00"
    return struct.pack("!HBBHHHH", 0x1717, 0x01, 0, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def test_hostile_bytes_in_a_logged_name_are_escaped(env: Env) -> None:
    hostile = b'\x1b]0;pwned\x07"\\\xe9\x9b'  # OSC retitle, bell, quote, backslash, Latin-1, C1 CSI
    resp = raw_query(_query([hostile, b"pornsite", b"test"]), env.port, src=PUPIL)
    assert resp[3] & 0x0F == 3  # NXDOMAIN: blocked as a name under a listed one, so it is logged
    env.lt.call(env.srv.qlog.flush)
    [log] = list((env.tmp / "qlog").glob("dns-*.jsonl"))
    raw = log.read_bytes()
    assert not RAW.search(raw.replace(b"\n", b"")), raw
    [rec] = [json.loads(line) for line in raw.decode("ascii").splitlines()]
    assert rec["name"] == hostile.decode("latin-1") + ".pornsite.test"
