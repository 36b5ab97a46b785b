"""A reviewer's face decisions kept per published photo (``face_decisions``), so that every later
render of the photo from its vaulted original (a consent change, the optional list, the approval
of a photo held again) applies them instead of deciding those faces afresh.

One row per decided face: the source photo's sha256, the face's box, the kind (``confirm``,
``stranger``, ``not_a_face``), the pupil id (confirm: the pupil; stranger: the candidate
rejected), the account that decided (web; none on the command line) and the time (UTC). Ids and
boxes only: no names, no templates, no pixels.

Rows are written only while the photo's original is in the vault (without it nothing can be
rendered again) and they go:

* with the vault original (the sweep's vault period, or a photo with no vaulted original any more:
  :func:`forget_unkept_in`);
* with the pupil's biometrics (:func:`forget_pupil_in`): a pupil who left, whose ``face_matching``
  consent was withdrawn or who is no longer in the registry loses every row naming them.

Every deletion is written to the deletion log (kind ``face_decisions``; the photo's sha256 or the
pupil id, never a name).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from photoguard.core.overrides import FaceOverride, face_for, standing
from photoguard.core.records import Detection
from photoguard.ledger import audit
from photoguard.ledger.clock import iso
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store

#: the deletion log's kind for these rows
KIND = "face_decisions"


@dataclass(frozen=True, slots=True)
class Kept:
    """One kept decision: what was decided, by which account (None: the command line), when."""

    decision: FaceOverride
    account: int | None = None
    decided_at: str = ""


def record_in(conn: sqlite3.Connection, sha256: str, kept: Iterable[Kept]) -> int:
    """Keep ``kept`` for the photo; a decision replaces the one kept before on the same face
    (IoU >= ``SAME_FACE_IOU``). Returns how many were written."""
    n = 0
    for k in kept:
        rows = conn.execute("SELECT id, box, kind, pupil_id FROM face_decisions WHERE sha256=?", (sha256,)).fetchall()
        for r in rows:
            old = _override(r)
            if old is None or face_for(k.decision.box, [Detection(old.box, 1.0)]) is not None:
                conn.execute("DELETE FROM face_decisions WHERE id=?", (r["id"],))
        d = k.decision
        conn.execute(
            "INSERT INTO face_decisions(sha256, box, kind, pupil_id, account, decided_at) VALUES(?,?,?,?,?,?)",
            (sha256, json.dumps(d.box.to_list()), d.kind.value, d.pupil_id, k.account, k.decided_at or iso()),
        )
        n += 1
    return n


def kept(src: Store | sqlite3.Connection, sha256: str) -> list[Kept]:
    """Every well-formed decision kept for the photo, oldest first (a malformed row is skipped:
    without it the face is decided afresh)."""
    sql = "SELECT id, box, kind, pupil_id, account, decided_at FROM face_decisions WHERE sha256=? ORDER BY id"
    rows = src.query(sql, (sha256,)) if isinstance(src, Store) else src.execute(sql, (sha256,)).fetchall()
    out: list[Kept] = []
    for r in rows:
        o = _override(r)
        if o is not None:
            account = None if r["account"] is None else int(r["account"])
            out.append(Kept(o, account, str(r["decided_at"])))
    return out


def for_render(store: Store, sha256: str, today: date) -> list[FaceOverride]:
    """The kept decisions a render of the photo applies today: a confirmation only while its pupil
    may be matched (:func:`photoguard.core.overrides.standing`); where the pupil may be *shown*
    is then decided per channel by the consent rule, as for any match."""
    decisions = [k.decision for k in kept(store, sha256)]
    ids = {str(d.pupil_id) for d in decisions if d.pupil_id}
    pupils = Registry(store).pupils(sorted(ids)) if ids else {}
    return standing(decisions, pupils, today)


def pupils(store: Store) -> set[str]:
    """Every pupil named in a kept decision."""
    return {str(r[0]) for r in store.query("SELECT DISTINCT pupil_id FROM face_decisions WHERE pupil_id IS NOT NULL")}


def forget_pupil_in(conn: sqlite3.Connection, pupil_id: str, reason: str) -> int:
    """Delete every kept decision naming ``pupil_id`` (logged once, by pupil id)."""
    n = int(conn.execute("DELETE FROM face_decisions WHERE pupil_id=?", (pupil_id,)).rowcount)
    if n:
        audit.log_deletion_in(conn, KIND, pupil_id, f"{n} kept face decision(s): {reason}")
    return n


def forget_photo_in(conn: sqlite3.Connection, sha256: str, reason: str) -> int:
    """Delete the photo's kept decisions (logged by the photo's sha256)."""
    n = int(conn.execute("DELETE FROM face_decisions WHERE sha256=?", (sha256,)).rowcount)
    if n:
        audit.log_deletion_in(conn, KIND, sha256, f"{n} kept face decision(s): {reason}", sha256=sha256)
    return n


def forget_unkept_in(conn: sqlite3.Connection) -> int:
    """Delete the decisions of photos whose original is no longer in the vault (nothing can be
    rendered again from it)."""
    shas = [
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT d.sha256 FROM face_decisions d WHERE NOT EXISTS (SELECT 1 FROM photos p "
            "WHERE p.sha256=d.sha256 AND p.vault_path IS NOT NULL)"
        )
    ]
    return sum(forget_photo_in(conn, sha, "the original is no longer in the vault") for sha in shas)


def _override(r: sqlite3.Row) -> FaceOverride | None:
    try:
        box = json.loads(str(r["box"]))
    except ValueError:
        return None
    return FaceOverride.from_json({"box": box, "kind": r["kind"], "pupil_id": r["pupil_id"]})
