"""Who is asking, and may they: sessions, CSRF tokens, the login throttle, and the one
permission check per request.

Sessions live in server memory (a restart logs everybody out); the cookie holds a random token,
the server keeps only its sha256. A session ends after ``idle_seconds`` without a request, at
logout, and when its account is removed or its password changed. Every POST carries the
session's CSRF token (the login form: a token from a cookie set with the form).
Failed logins spend a token from two buckets, one per account and one per client address, each
keyed by a salted hash; an empty bucket answers 429 before the password is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from photoguard.ledger import users
from photoguard.ledger.db import Store
from photoguard.ledger.users import Role, User

SESSION_COOKIE = "pg_session"
LOGIN_CSRF_COOKIE = "pg_login_csrf"
IDLE_SECONDS = 30 * 60
#: failed logins allowed per account and per address before 429; refilled over a minute
THROTTLE_CAPACITY = 10.0
THROTTLE_PER_SECOND = THROTTLE_CAPACITY / 60.0

#: who may do what; the one table the views consult
REVIEWERS = frozenset({Role.COMMS, Role.PRIVACY})
ORIGINAL_VIEWERS = frozenset({Role.COMMS, Role.PRIVACY})
TEACHERS = frozenset({Role.TEACHER})
#: comms' channel pages and takedown list: comms and admin work there, the privacy officer reads
COMMS_DESK = frozenset({Role.COMMS, Role.ADMIN})
COMMS_READERS = frozenset({Role.COMMS, Role.ADMIN, Role.PRIVACY})
#: the privacy officer's pages without names (takedowns, deletion log, report, audit trail)
PRIVACY_DESK = frozenset({Role.PRIVACY, Role.ADMIN})
#: pages with pupils' names (consents, their history, unconfirmed consents): this role only
NAMES = frozenset({Role.PRIVACY})


class Forbidden(Exception):
    """The account's role may not do this."""


@dataclass
class Session:
    user_id: int
    login: str
    role: Role
    folders: tuple[str, ...]
    password_hash: str
    csrf: str
    last_seen: float
    flash: list[str] = field(default_factory=list)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class Sessions:
    """The open sessions, keyed by the sha256 of the cookie token."""

    def __init__(self, store: Store, idle_seconds: float = IDLE_SECONDS, clock: Callable[[], float] = time.time):
        self.store = store
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, Session] = {}

    def open(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        s = Session(
            user.id, user.login, user.role, user.folders, user.password_hash, secrets.token_urlsafe(32), self.clock()
        )
        with self._lock:
            self._prune()
            self._open[_digest(token)] = s
        return token

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie token (its idle clock restarted), or None. A session whose
        account is gone, changed role or folders, or got a new password ends here."""
        if not token:
            return None
        key = _digest(token)
        now = self.clock()
        with self._lock:
            s = self._open.get(key)
            if s is None:
                return None
            if now - s.last_seen > self.idle_seconds:
                del self._open[key]
                return None
        user = users.get_user_by_id(self.store, s.user_id)
        if user is None or (user.role, user.folders, user.password_hash) != (s.role, s.folders, s.password_hash):
            self.close(token)
            return None
        s.last_seen = now
        return s

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._open.pop(_digest(token), None)

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._open.items() if now - s.last_seen > self.idle_seconds]:
            del self._open[key]


def csrf_ok(expected: str | None, given: object) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(str(expected), given)


class Throttle:
    """Failed-login buckets per account and per address, persistent in the ledger."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._salt = users.throttle_salt(store)

    def _keys(self, login: str, address: str) -> tuple[str, str]:
        def key(kind: str, value: str) -> str:
            return hmac.new(self._salt, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()

        return key("login", login.strip().lower()), key("addr", address)

    def allowed(self, login: str, address: str) -> bool:
        now = self.clock()
        return all(
            users.throttle_has_token(self.store, k, THROTTLE_CAPACITY, THROTTLE_PER_SECOND, now)
            for k in self._keys(login, address)
        )

    def failed(self, login: str, address: str) -> None:
        now = self.clock()
        for k in self._keys(login, address):
            users.throttle_spend(self.store, k, THROTTLE_CAPACITY, THROTTLE_PER_SECOND, now)


def require(session: Session, allowed: frozenset[Role]) -> None:
    """The permission check: raises :class:`Forbidden` unless the session's role is in ``allowed``."""
    if session.role not in allowed:
        raise Forbidden(session.role.value)


def may_see_upload(session: Session, uploader: str) -> bool:
    """A teacher sees the uploads of their own folders; reviewers see every upload."""
    if session.role in REVIEWERS:
        return True
    return session.role is Role.TEACHER and bool(uploader) and uploader in session.folders
