"""The audit trail and the deletion log: who did what, and what was deleted, with ids and hashes
only (never names, original file names or templates).

Writes come in two forms: ``*_in(conn, ...)`` inside the caller's write transaction (so an event
commits with the change it describes), and :func:`record` in a transaction of its own.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from photoguard.ledger.clock import iso

if TYPE_CHECKING:
    from photoguard.ledger.db import Store


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit row: an event name, a UTC time, and ids/hashes only (never names or templates)."""

    event: str
    photo_sha256: str | None = None
    pupil_id: str | None = None
    channel: str | None = None
    detail: dict[str, Any] | None = None


# -- writes -----------------------------------------------------------------------------------
def record_in(conn: sqlite3.Connection, ev: AuditEvent) -> None:
    conn.execute(
        "INSERT INTO audit(at, event, photo_sha256, pupil_id, channel, detail) VALUES(?,?,?,?,?,?)",
        (iso(), ev.event, ev.photo_sha256, ev.pupil_id, ev.channel, json.dumps(ev.detail or {})),
    )


def record(store: Store, ev: AuditEvent) -> None:
    with store.transaction() as conn:
        record_in(conn, ev)


def log_deletion_in(
    conn: sqlite3.Connection,
    kind: str,
    ref: str,
    reason: str,
    *,
    sha256: str | None = None,
    channel: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO deletion_log(at, kind, ref, sha256, channel, reason) VALUES(?,?,?,?,?,?)",
        (iso(), kind, ref, sha256, channel, reason),
    )


def prune_in(conn: sqlite3.Connection, before: str) -> int:
    """Delete audit events older than ``before`` (ISO time); returns how many."""
    cur = conn.execute("DELETE FROM audit WHERE at < ?", (before,))
    return int(cur.rowcount or 0)


# -- reads ------------------------------------------------------------------------------------
def deletions_between(store: Store, lo: str, hi: str) -> list[sqlite3.Row]:
    """Deletion-log rows with ``lo <= at < hi`` (ISO strings), oldest first."""
    return store.query(
        "SELECT at, kind, ref, sha256, channel, reason FROM deletion_log "
        "WHERE at >= ? AND at < ? ORDER BY id",
        (lo, hi),
    )


def event_counts(store: Store) -> list[sqlite3.Row]:
    """(event, n) per audit event name, by name."""
    return store.query("SELECT event, COUNT(*) AS n FROM audit GROUP BY event ORDER BY event")
