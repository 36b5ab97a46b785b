"""The reads and writes of the web desk (comms' channel pages, the privacy officer's pages):
published files per channel, each account's last visit per channel, takedowns marked done, and
the audit trail filtered and paged. Ids, hashes and paths only (names live in ``consent``)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from photoguard.ledger.audit import AuditEvent, record_in
from photoguard.ledger.clock import iso
from photoguard.ledger.db import Store
from photoguard.ledger.ledger import LIVE


# -- published files per channel ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Published:
    """One live output of a channel: its ledger id, path (relative to the root), sha256 and time."""

    id: int
    source_sha256: str
    path: str
    sha256: str
    created_at: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


def _published(r: sqlite3.Row) -> Published:
    return Published(int(r["id"]), str(r["source_sha256"]), str(r["path"]), str(r["sha256"]), str(r["created_at"]))


def channel_files(store: Store, channel: str, limit: int = 1000) -> list[Published]:
    """The live outputs of ``channel``, newest first."""
    rows = store.query(
        f"SELECT id, source_sha256, path, sha256, created_at FROM outputs WHERE channel=? AND {LIVE} "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        (channel, limit),
    )
    return [_published(r) for r in rows]


def channel_file(store: Store, channel: str, name: str) -> Published | None:
    """The live output of ``channel`` whose file name is ``name`` exactly, or None."""
    rows = store.query(
        f"SELECT id, source_sha256, path, sha256, created_at FROM outputs WHERE channel=? AND {LIVE} "
        "AND (path = ? OR path LIKE ? ESCAPE '\\')",
        (channel, name, "%/" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")),
    )
    for r in rows:
        p = _published(r)
        if p.name == name:
            return p
    return None


def new_count_by_channel(store: Store, seen: dict[str, int]) -> dict[str, int]:
    """channel -> live outputs newer than output id ``seen[channel]`` (0: all of them)."""
    out: dict[str, int] = {}
    for channel, seen_id in seen.items():
        row = store.one(f"SELECT COUNT(*) AS n FROM outputs WHERE channel=? AND {LIVE} AND id > ?", (channel, seen_id))
        out[channel] = int(row["n"]) if row else 0
    return out


def live_count(store: Store, channel: str) -> int:
    row = store.one(f"SELECT COUNT(*) AS n FROM outputs WHERE channel=? AND {LIVE}", (channel,))
    return int(row["n"]) if row else 0


# -- last visit per account and channel ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Visit:
    """When an account last opened a channel's page, and the newest output id it was shown."""

    at: str
    seen_output: int


def last_visits(store: Store, user_id: int) -> dict[str, Visit]:
    """channel -> the account's last visit of that channel's page."""
    return {
        str(r["channel"]): Visit(str(r["visited_at"]), int(r["seen_output"]))
        for r in store.query("SELECT channel, visited_at, seen_output FROM web_visits WHERE user_id=?", (user_id,))
    }


def visit(store: Store, user_id: int, channel: str, seen_output: int) -> Visit | None:
    """Record a visit of ``channel`` now that showed outputs up to id ``seen_output`` (ids only
    grow, so "new" is exact even within one second); returns the previous visit (None: first)."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT visited_at, seen_output FROM web_visits WHERE user_id=? AND channel=?", (user_id, channel)
        ).fetchone()
        conn.execute(
            "INSERT INTO web_visits(user_id, channel, visited_at, seen_output) VALUES(?,?,?,?) "
            "ON CONFLICT(user_id, channel) DO UPDATE SET visited_at=excluded.visited_at, "
            "seen_output=MAX(web_visits.seen_output, excluded.seen_output)",
            (user_id, channel, iso(), seen_output),
        )
    return Visit(str(row["visited_at"]), int(row["seen_output"])) if row else None


# -- takedowns marked done -------------------------------------------------------------------------
def takedown_marks(store: Store) -> dict[int, tuple[str, int | None]]:
    """takedown id -> (done_at, account id) of the takedowns marked done."""
    return {
        int(r["id"]): (str(r["done_at"]), None if r["done_by"] is None else int(r["done_by"]))
        for r in store.query("SELECT id, done_at, done_by FROM takedowns WHERE done_at IS NOT NULL")
    }


def mark_takedown_done(store: Store, takedown_id: int, account: int) -> bool:
    """Mark a takedown done by ``account``, audited in the same transaction (``web.takedown_done``).
    False when there is no such takedown or it was marked already (nothing changes then)."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT channel, output_sha256, done_at FROM takedowns WHERE id=?", (takedown_id,)
        ).fetchone()
        if row is None or row["done_at"] is not None:
            return False
        conn.execute("UPDATE takedowns SET done_at=?, done_by=? WHERE id=?", (iso(), account, takedown_id))
        record_in(
            conn,
            AuditEvent(
                "web.takedown_done",
                channel=str(row["channel"]),
                detail={"account": account, "takedown": takedown_id, "output_sha256": str(row["output_sha256"])},
            ),
        )
    return True


# -- the audit trail, filtered and paged -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Who (account id), what (event name), when (``lo <= at < hi``, UTC ISO); None: any."""

    account: int | None = None
    event: str | None = None
    lo: str | None = None
    hi: str | None = None

    def where(self) -> tuple[str, tuple[Any, ...]]:
        sql = "WHERE 1=1"
        params: list[Any] = []
        if self.account is not None:
            sql += " AND json_extract(detail, '$.account') = ?"
            params.append(self.account)
        if self.event:
            sql += " AND event = ?"
            params.append(self.event)
        if self.lo:
            sql += " AND at >= ?"
            params.append(self.lo)
        if self.hi:
            sql += " AND at < ?"
            params.append(self.hi)
        return sql, tuple(params)


def audit_page(store: Store, flt: AuditFilter, limit: int, offset: int = 0) -> tuple[list[sqlite3.Row], int]:
    """The matching audit rows, newest first, ``limit`` from ``offset``; and how many match in all."""
    where, params = flt.where()
    total = store.one(f"SELECT COUNT(*) AS n FROM audit {where}", params)
    rows = store.query(
        f"SELECT id, at, event, photo_sha256, pupil_id, channel, detail FROM audit {where} "
        "ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return rows, int(total["n"]) if total else 0


def audit_event_names(store: Store) -> list[str]:
    """Every event name in the audit trail, sorted."""
    return [str(r["event"]) for r in store.query("SELECT DISTINCT event FROM audit ORDER BY event")]


def all_deletions(store: Store, limit: int = 10_000) -> list[sqlite3.Row]:
    """The deletion log, newest first."""
    return store.query(
        "SELECT id, at, kind, ref, sha256, channel, reason FROM deletion_log ORDER BY id DESC LIMIT ?", (limit,)
    )
