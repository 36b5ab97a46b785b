"""Encrypted face templates of enrolled pupils (special-category data, AVG art. 9).

Only pupils with current ``face_matching`` consent who have not left may have templates. Each
pupil's templates are encrypted with that pupil's own data key (see ``keys``); ``destroy``
deletes key and ciphertexts under ``secure_delete``. Templates are decrypted into memory only
to build the matching gallery.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date

import numpy as np
from cryptography.fernet import Fernet

from photoguard.core.eligibility import Bar, matching_bar, may_match
from photoguard.ledger import audit, keys
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import AuditEvent, Store, iso
from photoguard.photo.identify import Gallery

log = logging.getLogger(__name__)
TEMPLATE_DIM = 128


class EnrolmentRefused(Exception):
    """The pupil may not be enrolled, or a photo is unusable; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


_REFUSAL: dict[Bar, str] = {
    Bar.NOT_REGISTERED: "no pupil with id {pid} in the consent registry",
    Bar.LEFT: "pupil {pid} has left the school",
    Bar.NO_FACE_MATCHING: "pupil {pid} has no face_matching consent",
}


class TemplateVault:
    def __init__(self, store: Store, master: Fernet) -> None:
        self.store = store
        self.master = master

    def may_enrol(self, pupil_id: str, today: date | None = None) -> None:
        """Raise EnrolmentRefused unless the pupil exists, has face_matching consent and is here."""
        today = today or date.today()
        bar = matching_bar(Registry(self.store).pupil(pupil_id), today)
        if bar is not None:
            raise EnrolmentRefused(_REFUSAL[bar].format(pid=pupil_id))

    def add(self, pupil_id: str, template: np.ndarray, photo_sha256: str) -> bool:
        """Store one template; returns False when this photo was already enrolled for the pupil."""
        vec = np.asarray(template, dtype=np.float32).reshape(-1)
        if vec.shape != (TEMPLATE_DIM,) or not np.all(np.isfinite(vec)):
            raise EnrolmentRefused("the face template is not a valid 128-d vector")
        with self.store.transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM templates WHERE pupil_id=? AND photo_sha256=?", (pupil_id, photo_sha256)
            ).fetchone():
                return False
            f = self._pupil_key(conn, pupil_id)
            conn.execute(
                "INSERT INTO templates(pupil_id, photo_sha256, blob, created_at) VALUES(?,?,?,?)",
                (pupil_id, photo_sha256, f.encrypt(vec.tobytes()), iso()),
            )
            audit.record_in(conn, AuditEvent("enrol.template", photo_sha256=photo_sha256, pupil_id=pupil_id))
        return True

    def _pupil_key(self, conn: sqlite3.Connection, pupil_id: str) -> Fernet:
        row = conn.execute("SELECT wrapped_key FROM pupil_keys WHERE pupil_id=?", (pupil_id,)).fetchone()
        if row is None:
            wrapped = keys.new_wrapped_key(self.master)
            conn.execute(
                "INSERT INTO pupil_keys(pupil_id, wrapped_key, created_at) VALUES(?,?,?)",
                (pupil_id, wrapped, iso()),
            )
            return keys.unwrap(self.master, wrapped)
        return keys.unwrap(self.master, bytes(row["wrapped_key"]))

    def gallery(self, today: date | None = None) -> Gallery:
        """Decrypt templates of pupils who may be matched today (``core.eligibility``)."""
        today = today or date.today()
        rows = self.store.query(
            "SELECT t.pupil_id, t.blob, k.wrapped_key FROM templates t "
            "JOIN pupil_keys k ON k.pupil_id = t.pupil_id "
            "ORDER BY t.pupil_id, t.id"
        )
        if not rows:
            return Gallery.empty()
        pupils = Registry(self.store).pupils({r["pupil_id"] for r in rows})
        ids: list[str] = []
        vecs: list[np.ndarray] = []
        cache: dict[str, Fernet] = {}
        for r in rows:
            pid = r["pupil_id"]
            if not may_match(pupils.get(pid), today):
                continue
            if pid not in cache:
                cache[pid] = keys.unwrap(self.master, bytes(r["wrapped_key"]))
            vecs.append(np.frombuffer(cache[pid].decrypt(bytes(r["blob"])), dtype=np.float32))
            ids.append(pid)
        if not ids:
            return Gallery.empty()
        return Gallery(pupil_ids=tuple(ids), vectors=np.vstack(vecs).astype(np.float32))

    @staticmethod
    def holders(store: Store) -> set[str]:
        """Pupils with any template or data key stored."""
        return {
            str(r["pupil_id"])
            for r in store.query(
                "SELECT pupil_id FROM pupil_keys UNION SELECT DISTINCT pupil_id FROM templates"
            )
        }

    def count(self, pupil_id: str | None = None) -> int:
        if pupil_id is None:
            row = self.store.one("SELECT COUNT(*) AS n FROM templates")
        else:
            row = self.store.one("SELECT COUNT(*) AS n FROM templates WHERE pupil_id=?", (pupil_id,))
        return int(row["n"]) if row else 0

    @staticmethod
    def destroy_in(conn: sqlite3.Connection, pupil_id: str, reason: str) -> int:
        """Shred a pupil's templates and data key inside the caller's transaction."""
        n = conn.execute("SELECT COUNT(*) FROM templates WHERE pupil_id=?", (pupil_id,)).fetchone()[0]
        has_key = conn.execute("SELECT 1 FROM pupil_keys WHERE pupil_id=?", (pupil_id,)).fetchone()
        if not n and not has_key:
            return 0
        # overwrite before delete (belt and braces on top of secure_delete)
        conn.execute("UPDATE templates SET blob=zeroblob(length(blob)) WHERE pupil_id=?", (pupil_id,))
        conn.execute("UPDATE pupil_keys SET wrapped_key=zeroblob(length(wrapped_key)) WHERE pupil_id=?", (pupil_id,))
        conn.execute("DELETE FROM templates WHERE pupil_id=?", (pupil_id,))
        conn.execute("DELETE FROM pupil_keys WHERE pupil_id=?", (pupil_id,))
        audit.log_deletion_in(conn, "templates", pupil_id, reason)
        detail = {"templates": n, "reason": reason}
        audit.record_in(conn, AuditEvent("biometrics.destroyed", pupil_id=pupil_id, detail=detail))
        return int(n)

    def destroy(self, pupil_id: str, reason: str) -> int:
        with self.store.transaction() as conn:
            n = self.destroy_in(conn, pupil_id, reason)
        self.store.checkpoint()
        if n:
            log.info("destroyed %s template(s) of pupil %s (%s)", n, pupil_id, reason)
        return n
