"""The SQLite database: schema, connection, transactions and the small ``meta`` table.

What the tables mean and the SQL that reads and writes them live beside this module: ``ledger``
(photos, outputs, takedowns, quarantine), ``consent`` (registry and history), ``templates``
(encrypted face templates), ``audit`` (audit trail and deletion log), ``users`` (web accounts and the login throttle),
``decisions`` (reviewers' face decisions kept for re-renders).

One file under ``state/``. WAL mode so the watch service and a CLI command can work side by
side; ``secure_delete`` so deleted rows (templates, keys) are overwritten on disk, not merely
unlinked.
Every table here holds ids and hashes; names live only in ``pupils`` (needed to scrub surnames).
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from photoguard.core.naming import PersonName
from photoguard.core.stems import stored_stem
from photoguard.ledger import audit as _audit
from photoguard.ledger.audit import AuditEvent
from photoguard.ledger.clock import iso, utcnow

__all__ = ["SCHEMA_VERSION", "AuditEvent", "StateError", "Store", "iso", "utcnow"]

#: 2: consent provenance columns; ``templates.engine`` (the template family that made each row;
#: rows from version 1 are 'dlib'). 3: both (two version-2 lines met; every step checks before it adds).
#: 4: ``optional_faces`` (published photos where a consenting pupil's near match was redacted).
#: 5: the web desk: ``web_visits`` (comms' last visit per channel), ``takedowns.done_at``/``done_by``
#: 6: ``face_decisions`` (a reviewer's face decisions kept per published photo for its re-renders)
SCHEMA_VERSION = 6

#: columns added after version 1: (table, column, declaration); added to an older database
_ADDED_COLUMNS = (
    ("consent", "kind", "TEXT NOT NULL DEFAULT ''"),
    ("consent", "source", "TEXT NOT NULL DEFAULT ''"),
    ("consent", "set_at", "TEXT"),
    ("consent", "admin_value", "INTEGER"),
    ("consent_history", "kind", "TEXT NOT NULL DEFAULT ''"),
    # version 4: a takedown marked done on the web desk (UTC time, the account's id)
    ("takedowns", "done_at", "TEXT"),
    ("takedowns", "done_by", "INTEGER"),
)

#: the kind of a consent source written as SQL, for history rows of a version-1 database
_KIND_OF_SOURCE = (
    "CASE WHEN source LIKE 'csv:%' THEN 'administration' WHEN source LIKE 'web%' THEN 'web' ELSE 'manual' END"
)
_LATEST = "FROM consent_history h WHERE h.pupil_id=consent.pupil_id AND h.key=consent.key ORDER BY h.id DESC LIMIT 1"

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
    kind TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    set_at TEXT,
    admin_value INTEGER,
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
    version INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT ''
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
CREATE TABLE IF NOT EXISTS web_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('teacher', 'comms', 'privacy', 'admin')),
    folders TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS login_throttle (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS optional_faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    box TEXT NOT NULL,
    pupil_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT,
    UNIQUE (sha256, box, pupil_id, channel)
);
CREATE INDEX IF NOT EXISTS optional_faces_open ON optional_faces(resolved_at, sha256);
CREATE TABLE IF NOT EXISTS web_visits (
    user_id INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    visited_at TEXT NOT NULL,
    seen_output INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, channel)
);
CREATE TABLE IF NOT EXISTS face_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    box TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confirm', 'stranger', 'not_a_face')),
    pupil_id TEXT,
    account INTEGER,
    decided_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS face_decisions_photo ON face_decisions(sha256);
CREATE INDEX IF NOT EXISTS face_decisions_pupil ON face_decisions(pupil_id);
"""


#: every table of the schema: a database that lacks one of them is damaged, never re-created
TABLES: frozenset[str] = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", _SCHEMA))
#: the first bytes of every SQLite 3 database file
SQLITE_MAGIC = b"SQLite format 3\x00"
#: the ``meta`` row that names this database (made once, by ``init``; compared while running)
DB_ID_KEY = "db_id"
#: SQLITE_BUSY, SQLITE_LOCKED: another process holds the database (not damage)
_BUSY = (5, 6)
#: mode of the database and of its -wal and -shm files (SQLite gives those the database's mode)
DB_MODE = 0o600
#: what to do when the database is lost (the same words in every refusal)
RESTORE_ADVICE = (
    "photoguard never starts over with a new, empty database on its own (published files would "
    "no longer be known, surnames no longer scrubbed). Stop the service, restore this file from "
    "your backup (with its -wal file if the backup has one) and start again. Only 'photoguard "
    "init' creates a database, for a new school."
)


class StateError(Exception):
    """The database (or the key file) is missing, empty, damaged or was replaced: a hard stop.

    ``str(exc)`` names the file, what is wrong with it and what to do."""

    def __init__(self, path: Path, problem: str, advice: str = RESTORE_ADVICE) -> None:
        self.path = path
        self.problem = problem
        self.advice = advice
        super().__init__(f"{path}: {problem}. {advice}")


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def check_file(path: Path) -> os.stat_result:
    """The database file exists, is a regular file, is not empty and starts like SQLite; its
    ``lstat``. Raises :class:`StateError` otherwise (cheap: one ``lstat`` and one 16-byte read)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise StateError(path, "the database is missing") from None
    except OSError as exc:
        raise StateError(path, f"the database cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise StateError(path, "the database is not a regular file (a link or a folder)")
    if st.st_size == 0:
        raise StateError(path, "the database is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StateError(path, f"the database cannot be read ({exc.strerror})") from None
    if head != SQLITE_MAGIC:
        raise StateError(path, "the file is not a SQLite database (damaged or replaced)")
    return st


def _private(path: Path) -> None:
    """Tighten the database and its -wal/-shm files to 0600 (they hold names and consent)."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != DB_MODE:
            os.chmod(p, DB_MODE)


class Store:
    """A thread-safe handle on the SQLite database (one connection, serialised by a lock).

    Opens an existing photoguard database only: a missing, empty, foreign or damaged file raises
    :class:`StateError` (never a fresh start). ``create=True`` (``init`` and tests) makes a new
    database when the file does not exist yet; it still refuses an empty or damaged one.
    Files are created 0600, and an existing database's files are tightened to 0600.
    """

    def __init__(self, path: Path, *, create: bool = False, advice: str = RESTORE_ADVICE) -> None:
        self.path = path
        self._lock = threading.RLock()
        #: set once the file is open and checked; until then (schema and migrations inside
        #: ``__init__``) there is no earlier identity to compare writes against
        self._identity: tuple[int, int] | None = None
        fresh = False
        if create and not os.path.lexists(path):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, DB_MODE)
            os.close(fd)
            fresh = True
        else:
            try:
                check_file(path)
            except StateError as exc:
                raise StateError(path, exc.problem, advice) from None
        _private(path)
        self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout=30000")
            if not fresh:
                self._check_schema()  # before anything is written to the file
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if getattr(exc, "sqlite_errorcode", 0) in _BUSY:
                raise
            raise StateError(path, f"the database cannot be used ({exc})", advice) from None
        except StateError as exc:
            self._conn.close()
            raise StateError(path, exc.problem, advice if exc.advice == RESTORE_ADVICE else exc.advice) from None
        except BaseException:
            self._conn.close()
            raise
        _private(path)
        self._identity = _identity(os.stat(path))
        self.db_id = self.get_meta(DB_ID_KEY)

    def _check_schema(self) -> None:
        """An existing file must hold photoguard's tables (read only: nothing is written to a
        file that turns out not to be ours). A table missing from it is damage."""
        with self._lock:
            have = {
                str(r[0]) for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if not have & TABLES:
                raise StateError(self.path, "the file is a SQLite database, but not photoguard's")
            missing = sorted(TABLES - have)
            if missing and version >= SCHEMA_VERSION:  # (an older version's file is migrated)
                raise StateError(self.path, "the database is damaged: table(s) missing: " + ", ".join(missing))
            if version > SCHEMA_VERSION:
                raise StateError(
                    self.path,
                    f"the database has schema version {version}; this photoguard knows {SCHEMA_VERSION}",
                    "Use the photoguard version that wrote it (or a newer one).",
                )

    def _migrate(self) -> None:
        """Create the schema in a new file; in an existing one add only what a newer version
        adds (indexes, the ``db_id`` row)."""
        with self._lock:
            self._conn.executescript(_SCHEMA)
            columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(templates)")}
            if "engine" not in columns:
                # version 1 stored only dlib-family templates (dlib's ResNet, run in dlib or OpenCV)
                self._conn.execute("ALTER TABLE templates ADD COLUMN engine TEXT NOT NULL DEFAULT 'dlib'")
            with self.transaction() as conn:
                _add_columns(conn)
                _backfill_provenance(conn)
                if self.meta_in(conn, "stems_scrubbed") != "1":
                    scrub_stems_in(conn)
                    self.set_meta(conn, "stems_scrubbed", "1")
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            if not self.meta_in(self._conn, DB_ID_KEY):
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES(?, ?)", (DB_ID_KEY, secrets.token_hex(16))
                )

    def verify(self) -> None:
        """Still the database we opened? Raises :class:`StateError` when the file vanished, was
        emptied, replaced by another file, or lost its identity row (cheap: an ``lstat``, a
        16-byte read and one indexed row; the service calls it before each photo)."""
        st = check_file(self.path)
        if _identity(st) != self._identity:
            raise StateError(self.path, "the database was replaced by another file while photoguard was running")
        try:
            now = self.get_meta(DB_ID_KEY)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", 0) in _BUSY:
                raise  # another process holds it: not damage
            raise StateError(self.path, f"the database is damaged ({exc})") from None
        if now != self.db_id:
            raise StateError(self.path, "the database lost its identity row (emptied or replaced while running)")

    def _check_same_file(self) -> None:
        """Before a write: the file at ``path`` is still the one this connection writes to."""
        if self._identity is None:  # still opening (schema, migrations)
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StateError(self.path, "the database was deleted while photoguard was running") from None
        except OSError as exc:
            raise StateError(self.path, f"the database cannot be read ({exc.strerror})") from None
        if st.st_size == 0:
            raise StateError(self.path, "the database was emptied (0 bytes) while photoguard was running")
        if self._identity is not None and _identity(st) != self._identity:
            raise StateError(self.path, "the database was replaced by another file while photoguard was running")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception. Refuses (:class:`StateError`)
        when the database file was deleted, emptied or replaced since it was opened: nothing is
        ever committed into a file the school no longer has."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError:
                self._check_same_file()  # a vanished or emptied file is the clearer reason
                raise
            try:
                self._check_same_file()
            except StateError:
                self._conn.execute("ROLLBACK")
                raise
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


# -- migration and upkeep -----------------------------------------------------------------------
def _add_columns(conn: sqlite3.Connection) -> None:
    for table, column, decl in _ADDED_COLUMNS:
        have = {str(r["name"]) for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")


def _backfill_provenance(conn: sqlite3.Connection) -> None:
    """Give the consent values of a version-1 database a source (see ``ledger.consent``): the
    latest history row of the value, else the administration's import; and the administration's
    own value: that of its latest import row, else the value itself when the administration set
    it, else *no* (a pupil's first import records only the *yes* answers)."""
    conn.execute(f"UPDATE consent_history SET kind = {_KIND_OF_SOURCE} WHERE kind = ''")
    conn.execute(
        "UPDATE consent SET admin_value = COALESCE("
        "(SELECT h.new_value FROM consent_history h WHERE h.pupil_id=consent.pupil_id AND h.key=consent.key "
        " AND h.kind='administration' ORDER BY h.id DESC LIMIT 1), "
        f"CASE WHEN COALESCE((SELECT h.kind {_LATEST}), 'administration') = 'administration' "
        "THEN value ELSE 0 END) WHERE kind = ''"
    )
    conn.execute(
        "UPDATE consent SET "
        f"source = COALESCE((SELECT h.source {_LATEST}), 'administration'), "
        f"set_at = COALESCE((SELECT h.at {_LATEST}), "
        "(SELECT p.updated_at FROM pupils p WHERE p.pupil_id=consent.pupil_id)), "
        f"kind = COALESCE((SELECT h.kind {_LATEST}), 'administration') "
        "WHERE kind = ''"
    )


def registry_people_in(conn: sqlite3.Connection) -> list[PersonName]:
    """The names of every pupil in the registry (to scrub them from stored text)."""
    return [
        PersonName(str(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute("SELECT first_name, surname_prefix, surname FROM pupils")
    ]


def scrub_stems_in(conn: sqlite3.Connection) -> int:
    """Re-scrub every stored file stem with the registry's current names (a pupil added later,
    a database from before stems were scrubbed). Returns how many stems changed."""
    people = registry_people_in(conn)
    if not people:
        return 0
    n = 0
    for r in list(conn.execute("SELECT sha256, stem FROM photos WHERE stem != ''")):
        new = stored_stem(str(r["stem"]), people)
        if new != r["stem"]:
            conn.execute("UPDATE photos SET stem=? WHERE sha256=?", (new, r["sha256"]))
            n += 1
    return n
