"""The publication ledger: photos seen, outputs published (and withdrawn), takedowns, quarantine.

What "a live output" means is written once, here (:data:`LIVE`): an output row not withdrawn.
Readers take a ``Store`` (own snapshot) or, inside a write transaction, its connection; writers
named ``*_in`` run inside the caller's transaction so a change commits with its audit event.
Rows hold ids, hashes and paths relative to the root; no names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from photoguard.core.stems import stored_stem
from photoguard.ledger.clock import iso
from photoguard.ledger.db import Store, registry_people_in

#: an output that is published now: not withdrawn (the one definition of "live")
LIVE = "withdrawn_at IS NULL"
WITHDRAWN = "withdrawn_at IS NOT NULL"

Source = Store | sqlite3.Connection


def _rows(src: Source, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    if isinstance(src, Store):
        return src.query(sql, params)
    return list(src.execute(sql, params).fetchall())


# -- outputs ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewOutput:
    """One file just committed to ``outbox/<channel>/`` (``path`` relative to the root)."""

    source_sha256: str
    channel: str
    path: str
    sha256: str
    visible_pupils: Sequence[str]
    consent_version: int


def add_output_in(conn: sqlite3.Connection, out: NewOutput) -> int:
    """Record a published output and who is visible in it; returns its ledger id."""
    visible = list(out.visible_pupils)
    cur = conn.execute(
        "INSERT INTO outputs(source_sha256, channel, path, sha256, visible_pupils, "
        "consent_version, created_at) VALUES(?,?,?,?,?,?,?)",
        (out.source_sha256, out.channel, out.path, out.sha256, json.dumps(visible), out.consent_version, iso()),
    )
    oid = int(cur.lastrowid or 0)
    conn.executemany("INSERT INTO output_pupils(output_id, pupil_id) VALUES(?,?)", [(oid, p) for p in visible])
    return oid


def path_ever_used(conn: Source, path: str) -> bool:
    """Whether any output, live or withdrawn, ever had ``path`` (names are never reused)."""
    return bool(_rows(conn, "SELECT 1 FROM outputs WHERE path=? LIMIT 1", (path,)))


def live_outputs(src: Source, source_sha256: str) -> dict[str, str]:
    """channel -> path of the live outputs of one photo."""
    return {
        str(r["channel"]): str(r["path"])
        for r in _rows(src, f"SELECT channel, path FROM outputs WHERE source_sha256=? AND {LIVE}", (source_sha256,))
    }


def live_channels(src: Source, source_sha256: str) -> set[str]:
    """Channels in which one photo is published now."""
    return set(live_outputs(src, source_sha256))


def live_count_by_channel(store: Store) -> dict[str, int]:
    return {
        str(r["channel"]): int(r["n"])
        for r in store.query(f"SELECT channel, COUNT(*) AS n FROM outputs WHERE {LIVE} GROUP BY channel")
    }


def published_count_by_channel(store: Store, lo: str, hi: str) -> dict[str, int]:
    """Outputs created with ``lo <= created_at < hi``, per channel (live or withdrawn since)."""
    return {
        str(r["channel"]): int(r["n"])
        for r in store.query(
            "SELECT channel, COUNT(*) AS n FROM outputs WHERE created_at >= ? AND created_at < ? GROUP BY channel",
            (lo, hi),
        )
    }


def withdrawn_count_by_channel(store: Store, lo: str, hi: str) -> dict[str, int]:
    """Outputs withdrawn with ``lo <= withdrawn_at < hi``, per channel."""
    return {
        str(r["channel"]): int(r["n"])
        for r in store.query(
            "SELECT channel, COUNT(*) AS n FROM outputs WHERE withdrawn_at >= ? AND withdrawn_at < ? "
            "GROUP BY channel",
            (lo, hi),
        )
    }


@dataclass(frozen=True, slots=True)
class ShownPupil:
    """One pupil visible in one live output, with the consent key its channel requires."""

    output_id: int
    source_sha256: str
    channel: str
    path: str
    sha256: str
    pupil_id: str
    consent_key: str


def withdrawal_candidates(
    store: Store, channels: Sequence[tuple[str, str]], pupil_ids: Iterable[str] | None = None
) -> list[ShownPupil]:
    """Pupils shown in live outputs of the ``(channel, consent key)`` pairs who *could* have to be
    withdrawn: not in the registry, without the channel's consent, or with a leave date (what
    ``core.eligibility.could_need_withdrawal`` says, as SQL). The dated rule is the caller's.
    ``pupil_ids``: only these pupils. Ordered by output id, then pupil id."""
    if not channels:
        return []
    values = ",".join("(?,?)" for _ in channels)
    params: list[Any] = [v for pair in channels for v in pair]
    sql = (
        f"WITH chans(name, ckey) AS (VALUES {values}) "
        "SELECT o.id, o.source_sha256, o.channel, o.path, o.sha256, op.pupil_id, ch.ckey "
        "FROM output_pupils op "
        "JOIN outputs o ON o.id = op.output_id "
        "JOIN chans ch ON ch.name = o.channel "
        "LEFT JOIN pupils p ON p.pupil_id = op.pupil_id "
        "LEFT JOIN consent c ON c.pupil_id = op.pupil_id AND c.key = ch.ckey "
        f"WHERE o.{LIVE} "
        "AND (p.pupil_id IS NULL OR p.left_on IS NOT NULL OR COALESCE(c.value, 0) = 0)"
    )
    if pupil_ids is not None:
        ids = sorted(set(pupil_ids))
        if not ids:
            return []
        sql += " AND op.pupil_id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(ids))
    rows = store.query(sql + " ORDER BY o.id, op.pupil_id", tuple(params))
    return [
        ShownPupil(
            int(r["id"]), r["source_sha256"], r["channel"], r["path"], r["sha256"], r["pupil_id"], r["ckey"]
        )
        for r in rows
    ]


def withdraw_in(conn: sqlite3.Connection, output_id: int, reason: str, at: str) -> bool:
    """Mark a live output withdrawn; False when it is unknown or was withdrawn meanwhile."""
    row = conn.execute("SELECT withdrawn_at FROM outputs WHERE id=?", (output_id,)).fetchone()
    if row is None or row["withdrawn_at"] is not None:
        return False
    conn.execute("UPDATE outputs SET withdrawn_at=?, withdrawn_reason=? WHERE id=?", (at, reason, output_id))
    return True


def withdrawn_leftovers(store: Store) -> dict[str, tuple[int, str]]:
    """path -> (output id, sha256) of withdrawn outputs whose path no live output uses now."""
    return {
        str(r["path"]): (int(r["id"]), str(r["sha256"]))
        for r in store.query(
            f"SELECT id, path, sha256 FROM outputs WHERE {WITHDRAWN} "
            f"AND path NOT IN (SELECT path FROM outputs WHERE {LIVE})"
        )
    }


# -- takedowns --------------------------------------------------------------------------------
def add_takedown_in(
    conn: sqlite3.Connection, at: str, channel: str, path: str, sha256: str, pupil_id: str, reason: str
) -> int:
    cur = conn.execute(
        "INSERT INTO takedowns(at, channel, output_path, output_sha256, pupil_id, reason) VALUES(?,?,?,?,?,?)",
        (at, channel, path, sha256, pupil_id, reason),
    )
    return int(cur.lastrowid or 0)


def set_replacement_in(conn: sqlite3.Connection, takedown_ids: Iterable[int], path: str) -> None:
    conn.executemany("UPDATE takedowns SET replacement_path=? WHERE id=?", [(path, tid) for tid in takedown_ids])


def takedowns(
    store: Store, *, channel: str | None = None, since: str | None = None, before: str | None = None
) -> list[sqlite3.Row]:
    """Takedown rows, oldest first; ``since <= at < before`` (ISO strings) when given."""
    sql = "SELECT * FROM takedowns WHERE 1=1"
    params: list[Any] = []
    if channel:
        sql += " AND channel=?"
        params.append(channel)
    if since:
        sql += " AND at >= ?"
        params.append(since)
    if before:
        sql += " AND at < ?"
        params.append(before)
    return store.query(sql + " ORDER BY at, id", tuple(params))


# -- photos -----------------------------------------------------------------------------------
def photo(src: Source, sha256: str) -> sqlite3.Row | None:
    rows = _rows(src, "SELECT * FROM photos WHERE sha256=?", (sha256,))
    return rows[0] if rows else None


def upsert_photo_in(
    conn: sqlite3.Connection,
    sha: str,
    status: str,
    reason: str,
    group: str,
    stem: str,
    uploader: str,
    taken: str | None,
    qid: str | None,
) -> None:
    """Insert or update a photo's row; a known ``taken``/``qid`` is kept when the new one is None.
    ``stem`` is kept without the names of the registry's pupils (:mod:`photoguard.core.stems`)."""
    now = iso()
    stem = stored_stem(stem, registry_people_in(conn))
    conn.execute(
        "INSERT INTO photos(sha256, status, reason, grp, stem, taken_on, uploader, quarantine_id, first_seen, "
        "updated_at) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(sha256) DO UPDATE SET status=excluded.status, "
        "reason=excluded.reason, grp=excluded.grp, stem=excluded.stem, "
        "taken_on=COALESCE(excluded.taken_on, photos.taken_on), "
        "quarantine_id=COALESCE(excluded.quarantine_id, photos.quarantine_id), updated_at=excluded.updated_at",
        (sha, status, reason, group, stem, taken, uploader, qid, now, now),
    )


def set_vault_path_in(conn: sqlite3.Connection, sha256: str, path: str | None) -> None:
    conn.execute("UPDATE photos SET vault_path=? WHERE sha256=?", (path, sha256))


# -- quarantine -------------------------------------------------------------------------------
def hold_in(
    conn: sqlite3.Connection, qid: str, sha256: str, status: str, reason: str, held_channels: Sequence[str]
) -> None:
    """Open (or re-open) quarantine item ``qid``."""
    conn.execute(
        "INSERT INTO quarantine(id, sha256, status, reason, held_channels, created_at) "
        "VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status, "
        "reason=excluded.reason, held_channels=excluded.held_channels, resolved_at=NULL",
        (qid, sha256, status, reason, json.dumps(list(held_channels)), iso()),
    )


def resolve_in(conn: sqlite3.Connection, qid: str, status: str) -> None:
    """Close quarantine item ``qid`` as ``status`` (approved, discarded, expired)."""
    conn.execute("UPDATE quarantine SET status=?, resolved_at=? WHERE id=?", (status, iso(), qid))


def quarantine_item(store: Store, qid: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM quarantine WHERE id=?", (qid,))


def quarantine_items(store: Store, *, include_resolved: bool = False) -> list[sqlite3.Row]:
    sql = "SELECT * FROM quarantine"
    if not include_resolved:
        sql += " WHERE resolved_at IS NULL"
    return store.query(sql + " ORDER BY created_at, id")


def quarantine_created(store: Store) -> dict[str, tuple[str, str]]:
    """id -> (created_at, sha256) of every quarantine item, open or resolved."""
    return {
        str(r["id"]): (str(r["created_at"]), str(r["sha256"]))
        for r in store.query("SELECT id, created_at, sha256 FROM quarantine")
    }


def open_quarantine_older_than(store: Store, cutoff: str) -> list[sqlite3.Row]:
    """(id, sha256) of unresolved quarantine items created before ``cutoff`` (ISO time)."""
    return store.query("SELECT id, sha256 FROM quarantine WHERE resolved_at IS NULL AND created_at < ?", (cutoff,))


# -- status counts (``photoguard status``) ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class LedgerCounts:
    photos: dict[str, int]  # status -> count
    waiting_for_review: int  # open quarantine items (held or rejected)
    live_outputs: int
    last_photo_at: str | None


def counts(store: Store) -> LedgerCounts:
    photos = {
        str(r["status"]): int(r["n"]) for r in store.query("SELECT status, COUNT(*) AS n FROM photos GROUP BY status")
    }
    held = store.one(
        "SELECT COUNT(*) AS n FROM quarantine WHERE resolved_at IS NULL AND status IN ('held','rejected')"
    )
    live = store.one(f"SELECT COUNT(*) AS n FROM outputs WHERE {LIVE}")
    last = store.one("SELECT MAX(updated_at) AS at FROM photos")
    return LedgerCounts(
        photos,
        int(held["n"]) if held else 0,
        int(live["n"]) if live else 0,
        last["at"] if last else None,
    )
