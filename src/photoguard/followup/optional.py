"""Optional review work after publication: published photos where a near match of a consenting
pupil was redacted on a channel where that pupil could have been shown (the pipeline records
them in ``optional_faces``). Nothing waits for it.

Confirming a face renders the photo again from its vaulted original, with the confirmation as a
reviewer's decision (:mod:`photoguard.core.overrides`), for the channels of that face: the new
outputs are published first, then the old ones are withdrawn (deletion log, audit), so a channel
is never left without its photo. Without a vaulted original (``originals.action`` is not
``vault``) there is nothing to render again: the face can only be dismissed. The render applies
the decisions kept for the photo from earlier reviews too, and the new confirmation is kept with
them (:mod:`photoguard.ledger.decisions`) for every later render of the photo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from photoguard.core.eligibility import may_show
from photoguard.core.overrides import FaceOverride, OverrideKind, was_applied
from photoguard.core.records import Box, PhotoStatus
from photoguard.followup.propagate import safe_unlink
from photoguard.followup.review import Desk, ReviewError
from photoguard.ledger import audit, decisions, ledger, optional
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import AuditEvent, iso

log = logging.getLogger(__name__)


@dataclass
class OptionalPhoto:
    sha256: str
    group: str
    created_at: str
    vaulted: bool
    faces: list[optional.OptionalFace] = field(default_factory=list)


class OptionalReview(Desk):
    """The list and its two actions. ``pipeline`` is needed only for :meth:`confirm`."""

    def photos(self) -> list[OptionalPhoto]:
        """The open optional faces per photo, each with only the channels where its pupil may
        still be shown today (the eligibility rule); a face with none left is not listed."""
        out: dict[str, OptionalPhoto] = {}
        for f in self._still_showable(optional.open_faces(self.store)):
            p = out.get(f.sha256)
            if p is None:
                row = ledger.photo(self.store, f.sha256)
                p = out[f.sha256] = OptionalPhoto(
                    f.sha256, str(row["grp"]) if row else "", f.created_at, self._vaulted(f.sha256)
                )
            p.faces.append(f)
        return list(out.values())

    def _still_showable(self, faces: list[optional.OptionalFace]) -> list[optional.OptionalFace]:
        pupils = Registry(self.store).pupils(sorted({f.pupil_id for f in faces})) if faces else {}
        consent = {c.name: c.consent for c in self.settings.channels}
        today = self.today()
        kept: list[optional.OptionalFace] = []
        for f in faces:
            pupil = pupils.get(f.pupil_id)
            chs = tuple(c for c in f.channels if c in consent and may_show(pupil, consent[c], today))
            if chs:
                kept.append(replace(f, channels=chs))
        return kept

    def face(self, sha: str, box: Box, pupil_id: str) -> optional.OptionalFace:
        for f in self._still_showable(optional.open_faces(self.store, sha)):
            if f.box == box and f.pupil_id == pupil_id:
                return f
        raise ReviewError("no open optional face like that for this photo")

    def dismiss(self, sha: str, box: Box, pupil_id: str, *, account: int | None = None) -> None:
        self.face(sha, box, pupil_id)
        with self.store.transaction() as conn:
            optional.resolve_in(conn, sha, box, pupil_id, "dismissed")
            audit.record_in(conn, self._event("optional.dismissed", sha, pupil_id, account))

    def confirm(self, sha: str, box: Box, pupil_id: str, *, account: int | None = None) -> dict[str, str]:
        """Render the photo again with the face confirmed as ``pupil_id`` for the face's
        channels; returns the new outputs (channel -> path)."""
        if self.pipeline is None:
            raise ReviewError("confirming needs a pipeline")
        face = self.face(sha, box, pupil_id)
        data = self.pipeline.vault_bytes(sha) if self._vaulted(sha) else None
        if data is None:
            raise ReviewError("the original of this photo was not kept (originals.action is not 'vault')")
        old = optional.live_output_rows(self.store, sha, face.channels)
        channels = sorted({str(r["channel"]) for r in old})
        if not channels:
            raise ReviewError("the photo has no live output on these channels any more")
        photo = ledger.photo(self.store, sha)
        confirmed = FaceOverride(box, OverrideKind.CONFIRM, pupil_id)
        result = self.pipeline.process_bytes(
            data,
            source=f"vault:{sha[:12]}",
            stem=str(photo["stem"]) if photo and photo["stem"] else "foto",
            group=str(photo["grp"]) if photo else "",
            channels=channels,
            approved_channels=channels,  # other uncertain faces: redacted, never held again
            rerender=True,
            overrides=[*decisions.for_render(self.store, sha, self.today()), confirmed],
        )
        if result.status is not PhotoStatus.PUBLISHED:
            raise ReviewError(f"the photo could not be rendered again ({result.reason or result.status.value})")
        replaced = [r for r in old if str(r["channel"]) in result.outputs]
        now = iso()
        with self.store.transaction() as conn:
            for r in replaced:
                reason = "replaced after review (a redacted pupil confirmed)"
                if not ledger.withdraw_in(conn, int(r["id"]), reason, now):
                    continue
                audit.log_deletion_in(
                    conn, "output", f"output {r['id']}", reason, sha256=str(r["sha256"]), channel=str(r["channel"])
                )
                audit.record_in(
                    conn,
                    AuditEvent(
                        "output.replaced",
                        photo_sha256=sha,
                        channel=str(r["channel"]),
                        detail={"output_id": int(r["id"]), "by": "optional review"},
                    ),
                )
            optional.resolve_in(conn, sha, box, pupil_id, "confirmed")
            if was_applied(confirmed, [(f.box, f.reviewed) for f in result.faces]):
                decisions.record_in(conn, sha, [decisions.Kept(confirmed, account, now)])
            event = self._event("optional.confirmed", sha, pupil_id, account, channels=sorted(result.outputs))
            audit.record_in(conn, event)
        for r in replaced:
            target = self.root / str(r["path"])
            if safe_unlink(self.layout.outbox, target) != "refused":
                safe_unlink(self.layout.outbox, target.with_name(target.name + ".txt"))
        log.info("event=optional_confirm photo=%s channels=%s", sha[:12], ",".join(sorted(result.outputs)))
        return dict(result.outputs)

    def vault_bytes(self, sha: str) -> bytes:
        """The vaulted original, decrypted (:class:`ReviewError` when it is not there or unreadable)."""
        from cryptography.fernet import InvalidToken

        from photoguard.ledger import keys

        if not self._vaulted(sha):
            raise ReviewError("the original of this photo was not kept")
        try:
            return keys.load_master(self.layout.key).decrypt((self.layout.vault / f"{sha}.enc").read_bytes())
        except (OSError, keys.KeyError_, InvalidToken) as exc:
            raise ReviewError(f"the kept original cannot be read ({type(exc).__name__})") from None

    def _vaulted(self, sha: str) -> bool:
        target = self.layout.vault / f"{sha}.enc"
        return target.is_file() and not target.is_symlink()

    @staticmethod
    def _event(name: str, sha: str, pupil_id: str, account: int | None, **extra: Any) -> AuditEvent:
        detail: dict[str, Any] = {**extra} if account is None else {"account": account, **extra}
        return AuditEvent(name, photo_sha256=sha, pupil_id=pupil_id, detail=detail)
