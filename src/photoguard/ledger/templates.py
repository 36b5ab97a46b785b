"""Encrypted face templates of enrolled pupils (special-category data, AVG art. 9).

Only pupils with current ``face_matching`` consent who have not left may have templates. Each
pupil's templates are encrypted with that pupil's own data key (see ``keys``); ``destroy``
deletes key and ciphertexts under ``secure_delete``. Templates are decrypted into memory only
to build the matching gallery.

Each template records the **family** of the engine that made it (``engine`` column): ``"dlib"``
(dlib's ResNet, whether run in dlib or in OpenCV: the same templates) or ``"sface"``. Distances
between families mean nothing, so the gallery holds only templates of the configured family. A
school that switches ``identify.template_engine`` enrols its pupils again (``photoguard enrol
--dir``; enrolment photos are never kept, so they cannot be re-read): until then the pupils
without a template of the new family are simply not recognised (redacted, never shown), and
:meth:`TemplateVault.gallery_for` counts them.
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
from photoguard.photo.identify import UNIT_NORM_TOLERANCE, Gallery

log = logging.getLogger(__name__)
TEMPLATE_DIM = 128
FAMILIES = ("dlib", "sface")


def template_family(engine: str) -> str:
    """The template family of a configured engine: "sface", or "dlib" for "dlib" and "opencv"."""
    if engine == "sface":
        return "sface"
    if engine in ("dlib", "opencv"):
        return "dlib"
    raise ValueError(f"unknown template engine {engine!r}")


def _unit(vec: np.ndarray) -> bool:
    return abs(float(np.linalg.norm(vec)) - 1.0) < UNIT_NORM_TOLERANCE


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


def _gallery(rows: list[tuple[str, str, np.ndarray]]) -> Gallery:
    if not rows:
        return Gallery.empty()
    return Gallery(pupil_ids=tuple(r[0] for r in rows), vectors=np.vstack([r[2] for r in rows]).astype(np.float32))


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

    def add(self, pupil_id: str, template: np.ndarray, photo_sha256: str, engine: str = "dlib") -> bool:
        """Store one template made by ``engine`` (a configured engine name or a family);
        returns False when this photo was already enrolled for the pupil with that family."""
        family = template_family(engine)
        vec = np.asarray(template, dtype=np.float32).reshape(-1)
        if vec.shape != (TEMPLATE_DIM,) or not np.all(np.isfinite(vec)):
            raise EnrolmentRefused("the face template is not a valid 128-d vector")
        if _unit(vec) != (family == "sface"):  # sface templates are L2-normalised, dlib's never are
            raise EnrolmentRefused(f"the face template was not made by the {family} engine")
        with self.store.transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM templates WHERE pupil_id=? AND photo_sha256=? AND engine=?",
                (pupil_id, photo_sha256, family),
            ).fetchone():
                return False
            f = self._pupil_key(conn, pupil_id)
            conn.execute(
                "INSERT INTO templates(pupil_id, photo_sha256, blob, created_at, engine) VALUES(?,?,?,?,?)",
                (pupil_id, photo_sha256, f.encrypt(vec.tobytes()), iso(), family),
            )
            detail = {"engine": family}
            audit.record_in(
                conn, AuditEvent("enrol.template", photo_sha256=photo_sha256, pupil_id=pupil_id, detail=detail)
            )
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

    def _decrypted(self, today: date) -> list[tuple[str, str, np.ndarray]]:
        """(pupil id, family, template) of every stored template of pupils who may be matched
        today (``core.eligibility``), in id order. A row stored as "dlib" that is L2-normalised
        was made by sface before the family was recorded (schema version 1) and counts as sface."""
        rows = self.store.query(
            "SELECT t.pupil_id, t.blob, t.engine, k.wrapped_key FROM templates t "
            "JOIN pupil_keys k ON k.pupil_id = t.pupil_id "
            "ORDER BY t.pupil_id, t.id"
        )
        if not rows:
            return []
        pupils = Registry(self.store).pupils({r["pupil_id"] for r in rows})
        out: list[tuple[str, str, np.ndarray]] = []
        cache: dict[str, Fernet] = {}
        for r in rows:
            pid = r["pupil_id"]
            if not may_match(pupils.get(pid), today):
                continue
            if pid not in cache:
                cache[pid] = keys.unwrap(self.master, bytes(r["wrapped_key"]))
            vec = np.frombuffer(cache[pid].decrypt(bytes(r["blob"])), dtype=np.float32)
            family = str(r["engine"])
            if family == "dlib" and _unit(vec):
                family = "sface"
            out.append((pid, family, vec))
        return out

    def gallery(self, today: date | None = None, engine: str | None = None) -> Gallery:
        """Decrypt templates of pupils who may be matched today (``core.eligibility``); with
        ``engine``, only the templates of that engine's family (the pipeline always passes it)."""
        if engine is None:
            return _gallery(self._decrypted(today or date.today()))
        return self.gallery_for(engine, today)[0]

    def gallery_for(self, engine: str, today: date | None = None) -> tuple[Gallery, int]:
        """The gallery of ``engine``'s family, and how many pupils who may be matched have
        templates but none of that family (enrolled before the school switched engines): they
        are not recognised until they are enrolled again."""
        family = template_family(engine)
        rows = self._decrypted(today or date.today())
        families: dict[str, set[str]] = {}
        for pid, fam, _ in rows:
            families.setdefault(pid, set()).add(fam)
        missing = sum(1 for fams in families.values() if family not in fams)
        return _gallery([r for r in rows if r[1] == family]), missing

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
