"""The SQLite database: schema, connection, transactions and the small ``meta`` table.

What the tables mean and the SQL that reads and writes them live beside this module: ``ledger``
(photos, outputs, takedowns, quarantine), ``consent`` (registry and history), ``templates``
(encrypted face templates), ``audit`` (audit trail and deletion log).

One file under ``state/``. WAL mode so the watch service and a CLI command can work side by
side; ``secure_delete`` so deleted rows (templates, keys) are overwritten on disk, not merely
unlinked.
Every table here holds ids and hashes; names live only in ``pupils`` (needed to scrub surnames).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from photoguard.ledger import audit as _audit
from photoguard.ledger.audit import AuditEvent
from photoguard.ledger.clock import iso, utcnow

__all__ = ["SCHEMA_VERSION", "AuditEvent", "Store", "iso", "utcnow"]

#: 2: ``templates.engine`` (the template family that made each row; rows from version 1 are 'dlib')
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pupils (
    pupil_id TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    surname_prefix TEXT NOT NULL DEFAULT '',
    surname TEXT NOT NULL,
    grp TEXT NOT NULL DEFAULT '',
    left_on TEXT,
    phone TEXT NOT NULL DEFAULT '',
    confirmed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent (
    pupil_id TEXT NOT NULL REFERENCES pupils(pupil_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (0, 1)),
    PRIMARY KEY (pupil_id, key)
);
CREATE TABLE IF NOT EXISTS consent_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    pupil_id TEXT NOT NULL,
    key TEXT NOT NULL,
    old_value INTEGER,
    new_value INTEGER,
    source TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_history_pupil ON consent_history(pupil_id);
CREATE TABLE IF NOT EXISTS pupil_keys (
    pupil_id TEXT PRIMARY KEY,
    wrapped_key BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pupil_id TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    blob BLOB NOT NULL,
    created_at TEXT NOT NULL,
    engine TEXT NOT NULL DEFAULT 'dlib'
);
CREATE INDEX IF NOT EXISTS templates_pupil ON templates(pupil_id);
CREATE TABLE IF NOT EXISTS photos (
    sha256 TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    grp TEXT NOT NULL DEFAULT '',
    stem TEXT NOT NULL DEFAULT '',
    taken_on TEXT,
    uploader TEXT NOT NULL DEFAULT '',
    vault_path TEXT,
    quarantine_id TEXT,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_sha256 TEXT NOT NULL,
    channel TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    visible_pupils TEXT NOT NULL,
    consent_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    withdrawn_at TEXT,
    withdrawn_reason TEXT
);
CREATE INDEX IF NOT EXISTS outputs_source ON outputs(source_sha256, channel);
CREATE UNIQUE INDEX IF NOT EXISTS outputs_live_path ON outputs(path) WHERE withdrawn_at IS NULL;
CREATE TABLE IF NOT EXISTS output_pupils (
    output_id INTEGER NOT NULL REFERENCES outputs(id) ON DELETE CASCADE,
    pupil_id TEXT NOT NULL,
    PRIMARY KEY (output_id, pupil_id)
);
CREATE INDEX IF NOT EXISTS output_pupils_pupil ON output_pupils(pupil_id);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    held_channels TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    resolved_at TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    photo_sha256 TEXT,
    pupil_id TEXT,
    channel TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE TABLE IF NOT EXISTS deletion_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    sha256 TEXT,
    channel TEXT,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS takedowns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    channel TEXT NOT NULL,
    output_path TEXT NOT NULL,
    output_sha256 TEXT NOT NULL,
    pupil_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    replacement_path TEXT
);
CREATE INDEX IF NOT EXISTS takedowns_channel ON takedowns(channel, at);
CREATE INDEX IF NOT EXISTS takedowns_at ON takedowns(at);
CREATE INDEX IF NOT EXISTS outputs_path ON outputs(path);
CREATE INDEX IF NOT EXISTS outputs_withdrawn ON outputs(withdrawn_at) WHERE withdrawn_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deletion_log_at ON deletion_log(at);
CREATE INDEX IF NOT EXISTS consent_history_at ON consent_history(at);
"""


class Store:
    """A thread-safe handle on the SQLite database (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._conn.executescript(_SCHEMA)
            columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(templates)")}
            if "engine" not in columns:
                # version 1 stored only dlib-family templates (dlib's ResNet, run in dlib or OpenCV)
                self._conn.execute("ALTER TABLE templates ADD COLUMN engine TEXT NOT NULL DEFAULT 'dlib'")
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params))

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> None:
        with self.transaction() as c:
            c.execute(sql, params)

    def checkpoint(self) -> None:
        """Move the WAL into the database file and truncate it (so shredded pages leave the WAL)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str = "") -> str:
        with self._lock:
            return self.meta_in(self._conn, key, default)

    @staticmethod
    def meta_in(conn: sqlite3.Connection, key: str, default: str = "") -> str:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row["value"]) if row else default

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def consent_version(self) -> int:
        return int(self.get_meta("consent_version", "0"))

    @classmethod
    def consent_version_in(cls, conn: sqlite3.Connection) -> int:
        """The consent version as seen inside the caller's transaction."""
        return int(cls.meta_in(conn, "consent_version", "0"))

    # -- audit (kept here for callers that hold a Store; the rows live in ``audit``) --------
    @staticmethod
    def audit_in(conn: sqlite3.Connection, ev: AuditEvent) -> None:
        _audit.record_in(conn, ev)

    def audit(self, ev: AuditEvent) -> None:
        _audit.record(self, ev)

    @staticmethod
    def log_deletion(
        conn: sqlite3.Connection,
        kind: str,
        ref: str,
        reason: str,
        *,
        sha256: str | None = None,
        channel: str | None = None,
    ) -> None:
        _audit.log_deletion_in(conn, kind, ref, reason, sha256=sha256, channel=channel)
