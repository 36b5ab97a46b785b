"""Optional review work: published photos in which a near match of a consenting pupil was
redacted on a channel where that pupil could have been shown (``optional_faces``).

The pipeline records a row per (photo, face box, pupil, channel) in the transaction that
publishes the output; a reviewer later confirms (the photo is rendered again) or dismisses it.
Never blocking: nothing waits for these rows. Ids, boxes and channel names only; no names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from photoguard.core.records import Box
from photoguard.ledger.clock import iso
from photoguard.ledger.db import Store
from photoguard.ledger.ledger import LIVE


@dataclass(frozen=True, slots=True)
class OptionalFace:
    """A redacted face of a published photo that could be shown on ``channels`` if confirmed."""

    sha256: str
    box: Box
    pupil_id: str
    channels: tuple[str, ...]
    created_at: str


def box_key(box: Box) -> str:
    return json.dumps(box.to_list())


def add_in(
    conn: sqlite3.Connection, sha256: str, faces: Iterable[tuple[Box, str]], channels: Sequence[str]
) -> int:
    """Record each (box, pupil id) for each of ``channels``; a row already there stays as it is."""
    now = iso()
    rows = [(sha256, box_key(b), pid, ch, now) for b, pid in faces for ch in channels]
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO optional_faces(sha256, box, pupil_id, channel, created_at) VALUES(?,?,?,?,?)",
        rows,
    )
    return conn.total_changes - before


def open_faces(store: Store, sha256: str | None = None) -> list[OptionalFace]:
    """Open rows whose channel still has a live output of the photo, per (photo, box, pupil),
    newest photo first."""
    sql = (
        "SELECT f.sha256, f.box, f.pupil_id, f.channel, MIN(f.created_at) AS created_at FROM optional_faces f "
        "WHERE f.resolved_at IS NULL AND EXISTS (SELECT 1 FROM outputs o WHERE o.source_sha256=f.sha256 "
        f"AND o.channel=f.channel AND o.{LIVE})"
    )
    params: tuple[str, ...] = ()
    if sha256 is not None:
        sql += " AND f.sha256=?"
        params = (sha256,)
    sql += " GROUP BY f.sha256, f.box, f.pupil_id, f.channel ORDER BY created_at DESC, f.sha256, f.box, f.channel"
    grouped: dict[tuple[str, str, str], list[str]] = {}
    created: dict[tuple[str, str, str], str] = {}
    for r in store.query(sql, params):
        key = (str(r["sha256"]), str(r["box"]), str(r["pupil_id"]))
        grouped.setdefault(key, []).append(str(r["channel"]))
        created.setdefault(key, str(r["created_at"]))
    return [
        OptionalFace(sha, Box(*(float(v) for v in json.loads(box))), pid, tuple(chs), created[(sha, box, pid)])
        for (sha, box, pid), chs in grouped.items()
    ]


def resolve_in(conn: sqlite3.Connection, sha256: str, box: Box, pupil_id: str, resolution: str) -> int:
    """Close the open rows of one face of one photo (``confirmed``, ``rejected``, ``dismissed``)."""
    cur = conn.execute(
        "UPDATE optional_faces SET resolved_at=?, resolution=? WHERE sha256=? AND box=? AND pupil_id=? "
        "AND resolved_at IS NULL",
        (iso(), resolution, sha256, box_key(box), pupil_id),
    )
    return cur.rowcount


def live_output_rows(src: Store | sqlite3.Connection, sha256: str, channels: Iterable[str]) -> list[sqlite3.Row]:
    """The live outputs (id, channel, path, sha256) of one photo in ``channels``."""
    chs = sorted(set(channels))
    if not chs:
        return []
    sql = (
        "SELECT id, channel, path, sha256 FROM outputs WHERE source_sha256=? AND "
        f"channel IN ({','.join('?' * len(chs))}) AND {LIVE} ORDER BY id"
    )
    params = (sha256, *chs)
    if isinstance(src, Store):
        return src.query(sql, params)
    return list(src.execute(sql, params).fetchall())
