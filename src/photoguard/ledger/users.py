"""Web accounts, the login throttle, and the reads that decide what an account may see.

An account has a login, one role and, for a teacher, the inbox folders that are theirs. Only a
password hash is stored (the hashing itself is :mod:`photoguard.web.passwords`, stdlib only).
The throttle is a token bucket per key; the caller passes keys that are already salted hashes
(never a raw address or login), the salt lives in ``meta``.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from photoguard.ledger.clock import iso

if TYPE_CHECKING:
    from photoguard.ledger.db import Store


class Role(StrEnum):
    """What an account is for. ``teacher``: their own uploads; ``comms``: review and channels;
    ``privacy``: review, originals on request, and (later) the privacy officer's desk; ``admin``:
    accounts only, no photos."""

    TEACHER = "teacher"
    COMMS = "comms"
    PRIVACY = "privacy"
    ADMIN = "admin"


class UserError(Exception):
    """An account action that cannot be done (unknown login, login taken, bad folder)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    role: Role
    folders: tuple[str, ...]
    password_hash: str
    created_at: str
    updated_at: str


def _user(row: sqlite3.Row) -> User:
    folders = json.loads(row["folders"] or "[]")
    return User(
        id=int(row["id"]),
        login=str(row["login"]),
        role=Role(row["role"]),
        folders=tuple(str(f) for f in folders),
        password_hash=str(row["password_hash"]),
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
    )


# -- accounts ---------------------------------------------------------------------------------
def add_user(store: Store, login: str, role: Role, folders: tuple[str, ...], password_hash: str) -> User:
    """Create an account; raises :class:`UserError` when the login is taken."""
    now = iso()
    try:
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO web_users(login, role, folders, password_hash, created_at, updated_at) "
                "VALUES(?,?,?,?,?,?)",
                (login, role.value, json.dumps(list(folders)), password_hash, now, now),
            )
    except sqlite3.IntegrityError:
        raise UserError(f"an account named {login!r} already exists") from None
    user = get_user(store, login)
    assert user is not None
    return user


def get_user(store: Store, login: str) -> User | None:
    row = store.one("SELECT * FROM web_users WHERE login=?", (login,))
    return _user(row) if row else None


def get_user_by_id(store: Store, user_id: int) -> User | None:
    row = store.one("SELECT * FROM web_users WHERE id=?", (user_id,))
    return _user(row) if row else None


def list_users(store: Store) -> list[User]:
    return [_user(r) for r in store.query("SELECT * FROM web_users ORDER BY login")]


def remove_user(store: Store, login: str) -> bool:
    """Delete an account; False when there was none."""
    with store.transaction() as conn:
        cur = conn.execute("DELETE FROM web_users WHERE login=?", (login,))
        return bool(cur.rowcount)


def set_password(store: Store, login: str, password_hash: str) -> bool:
    """Replace an account's password hash; False when there is no such account."""
    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE web_users SET password_hash=?, updated_at=? WHERE login=?", (password_hash, iso(), login)
        )
        return bool(cur.rowcount)


# -- the login throttle -------------------------------------------------------------------------
THROTTLE_SALT_KEY = "web_throttle_salt"


def throttle_salt(store: Store) -> bytes:
    """The school's random salt for throttle keys (made once, kept in ``meta``)."""
    with store.transaction() as conn:
        salt = store.meta_in(conn, THROTTLE_SALT_KEY)
        if not salt:
            salt = secrets.token_hex(32)
            store.set_meta(conn, THROTTLE_SALT_KEY, salt)
    return bytes.fromhex(salt)


def _refilled(conn: sqlite3.Connection, key: str, capacity: float, per_second: float, now: float) -> float:
    row = conn.execute("SELECT tokens, updated FROM login_throttle WHERE key=?", (key,)).fetchone()
    if row is None:
        return capacity
    elapsed = max(0.0, now - float(row["updated"]))
    return min(capacity, float(row["tokens"]) + elapsed * per_second)


def throttle_has_token(store: Store, key: str, capacity: float, per_second: float, now: float) -> bool:
    """True when ``key``'s bucket holds at least one token (nothing is spent)."""
    with store.transaction() as conn:
        return _refilled(conn, key, capacity, per_second, now) >= 1.0


def throttle_spend(store: Store, key: str, capacity: float, per_second: float, now: float) -> float:
    """Take one token from ``key``'s bucket (never below zero); returns what is left."""
    with store.transaction() as conn:
        left = max(0.0, _refilled(conn, key, capacity, per_second, now) - 1.0)
        conn.execute(
            "INSERT INTO login_throttle(key, tokens, updated) VALUES(?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET tokens=excluded.tokens, updated=excluded.updated",
            (key, left, now),
        )
        conn.execute("DELETE FROM login_throttle WHERE updated < ?", (now - 86400.0,))
    return left


# -- what an account may see ------------------------------------------------------------------------
def uploads_in_folders(store: Store, folders: tuple[str, ...], limit: int = 500) -> list[sqlite3.Row]:
    """The photos uploaded from these inbox folders (the ``uploader`` the watch service records),
    newest first. An empty folder list gives nothing."""
    if not folders:
        return []
    marks = ",".join("?" * len(folders))
    return store.query(
        f"SELECT sha256, status, reason, grp, stem, uploader, quarantine_id, first_seen, updated_at "
        f"FROM photos WHERE uploader IN ({marks}) ORDER BY first_seen DESC, sha256 LIMIT ?",
        (*folders, limit),
    )


def recent_audit(store: Store, limit: int = 200) -> list[sqlite3.Row]:
    """The newest audit rows (for the privacy officer's page)."""
    return store.query(
        "SELECT id, at, event, photo_sha256, pupil_id, channel, detail FROM audit ORDER BY id DESC LIMIT ?",
        (limit,),
    )
