"""Reviewing held photos: list, show, approve (publish the held channels with the redactions as
decided, near-matches redacted), reject (delete the held original, logged in the deletion log).

``quarantine/<id>/`` holds ``original.<ext>.enc`` (the held original, encrypted with the master
key like the vault; a stalled upload set aside stays a plain ``original.<ext>``), ``reason.json``
and, when the photo came with one, the teacher's caption ``caption.txt.enc`` (encrypted too); the
``quarantine`` table is the index. Every action is audited with ids only. A reviewer looks at a
held photo through :meth:`Review.export_original` (``review show ID --export FILE``).

Per face a reviewer may decide (:meth:`Review.decide`): "this is the candidate pupil" (confirm),
"not this pupil" (a stranger), or "not a face" (a false-positive blob that matched nobody). The
decisions are kept with the face's box in ``decisions.json`` beside the reason file until the
photo is approved or rejected; the previews and the approval apply them
(:mod:`photoguard.core.overrides`), and :mod:`photoguard.core.decide` decides every channel again,
so a confirmed pupil is visible exactly where the eligibility rule allows it. When the approval
publishes the photo in full and its original is in the vault, the decisions applied are kept in
the ledger (:mod:`photoguard.ledger.decisions`) for every later render of the photo; a photo
held again (after a re-render) starts from those kept decisions, and its own new ones win.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken

from photoguard import fsutil
from photoguard.config import Layout, NearMatchPolicy, OriginalAction, Settings
from photoguard.core.decide import decide_face
from photoguard.core.overrides import FaceOverride, OverrideKind, face_for, was_applied
from photoguard.core.records import Box, Detection, Match, MatchKind, PhotoStatus, Pupil
from photoguard.ledger import audit, keys, ledger
from photoguard.ledger import decisions as kept_decisions
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import AuditEvent, Store, iso
from photoguard.photo.ingest import ENCRYPTED_SUFFIX, HELD_CAPTION

log = logging.getLogger(__name__)

OPEN_STATUSES = ("held", "rejected")
#: the channel decision shown for a face a reviewer marked "not a face" (no fill)
NOT_A_FACE = "not_a_face"
#: the reviewer's face decisions of a held photo, beside its reason file
DECISIONS = "decisions.json"
#: one writer of decisions.json at a time (the web serves requests on threads)
_DECIDING = threading.Lock()


class ReviewError(Exception):
    """A review action that cannot be done (unknown id, already resolved, wrong channel)."""


@dataclass
class Item:
    id: str
    sha256: str
    status: str
    reason: str
    held_channels: list[str]
    created_at: str
    resolved_at: str | None
    published: dict[str, str] = field(default_factory=dict)
    #: per face, as recorded and then with the reviewer's decisions applied (``reviewed``,
    #: ``not_a_face`` and the channel decisions made again); see :meth:`Review.get`
    faces: list[dict[str, Any]] = field(default_factory=list)
    group: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "status": self.status,
            "reason": self.reason,
            "held_channels": self.held_channels,
            "created_at": self.created_at,
            "resolved_at": self.resolved_at,
            "published": self.published,
            "faces": self.faces,
            "group": self.group,
        }


class Desk:
    """A reviewer's desk on one root; ``pipeline`` (the face models) only for what renders."""

    def __init__(self, root: Path, settings: Settings, store: Store, pipeline: Any = None) -> None:
        self.root = root
        self.settings = settings
        self.layout = Layout(root, settings)
        self.store = store
        self.pipeline = pipeline

    def today(self) -> date:
        return self.pipeline.today() if self.pipeline is not None else date.today()


class Review(Desk):
    """Review actions on one root. ``pipeline`` is needed only for :meth:`approve` (and a
    confirmation that keeps a template)."""

    # -- reading -----------------------------------------------------------------------------
    def list(self, include_resolved: bool = False) -> list[Item]:
        rows = ledger.quarantine_items(self.store, include_resolved=include_resolved)
        return [self._item(r) for r in rows]

    def get(self, qid: str) -> Item:
        row = ledger.quarantine_item(self.store, qid)
        if row is None:
            raise ReviewError(f"no held photo with id {qid}")
        item = self._item(row)
        info = self._reason_file(qid)
        item.faces = self._redecided(list(info.get("faces", [])), self.decisions(qid), set(item.published))
        item.group = str(info.get("group", ""))
        return item

    def decisions(self, qid: str) -> builtins.list[FaceOverride]:
        """The face decisions that apply to a held photo: those kept in the ledger from an earlier
        review of the same photo (a confirmation only while its pupil may be matched), then the
        reviewer's decisions about this hold (the later decision about a face wins). Without
        any, every face is decided as the pipeline decided it."""
        row = ledger.quarantine_item(self.store, qid)
        earlier = kept_decisions.for_render(self.store, str(row["sha256"]), self.today()) if row else []
        return [*earlier, *(k.decision for k in self._held_decisions(qid))]

    def _held_decisions(self, qid: str) -> builtins.list[kept_decisions.Kept]:
        """The decisions made about this hold, in ``decisions.json`` (none when the file is
        missing or unreadable), each with its account and time."""
        path = self.layout.quarantine / qid / DECISIONS
        if path.is_symlink() or not path.is_file():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("review decisions of %s unreadable; ignored", qid)
            return []
        out: builtins.list[kept_decisions.Kept] = []
        for d in data if isinstance(data, list) else []:
            o = FaceOverride.from_json(d)
            if o is None:
                continue
            account = d.get("account")
            at = d.get("at")
            out.append(
                kept_decisions.Kept(o, account if isinstance(account, int) else None, at if isinstance(at, str) else "")
            )
        return out

    def is_clip(self, qid: str) -> bool:
        """Is the held original a video clip? (Decisions per face are for photos only.)"""
        from photoguard.photo.formats import sniff_video

        try:
            data, _suffix = self.original_bytes(qid)
        except ReviewError:
            return False
        return sniff_video(data) is not None

    def candidates(self, item: Item) -> dict[str, Pupil]:
        """The registry records of the pupils named as candidates or confirmed on the item's
        faces (for first name and group on the review page; a surname is never shown)."""
        ids = {str(f.get("candidate") or f.get("pupil_id") or "") for f in item.faces} - {""}
        return Registry(self.store).pupils(sorted(ids)) if ids else {}

    def _redecided(
        self,
        faces: builtins.list[dict[str, Any]],
        decisions: builtins.list[FaceOverride],
        published: set[str],
    ) -> builtins.list[dict[str, Any]]:
        """The recorded faces with the decisions applied and every channel not yet published
        decided again (the same rule as the pipeline: :func:`photoguard.core.decide.decide_face`);
        a published channel keeps what it was published with (an approval does not touch it)."""
        if not decisions or not faces:
            return faces
        boxes = [_face_box(f) for f in faces]
        per_face: dict[int, FaceOverride] = {}
        for dec in decisions:
            i = face_for(dec.box, [Detection(b, 1.0) for b in boxes])
            if i is not None:
                per_face[i] = dec
        pupils = Registry(self.store).pupils()
        today = self.today()
        confirmed = {o.pupil_id for o in per_face.values() if o.kind is OverrideKind.CONFIRM}
        out: builtins.list[dict[str, Any]] = []
        for i, f in enumerate(faces):
            face = dict(f)
            d = per_face.get(i)
            match = _match_of(face)
            if d is None and match.kind is MatchKind.MATCH and match.pupil_id in confirmed:
                match = Match(MatchKind.NEAR, match.pupil_id)  # one face per pupil
            elif d is not None and d.kind is OverrideKind.CONFIRM:
                match = Match(MatchKind.MATCH, d.pupil_id)
                face["pupil_id"] = d.pupil_id
            elif d is not None and d.kind is OverrideKind.STRANGER:
                match = Match(MatchKind.NONE, d.pupil_id)
            elif d is not None and match.kind in (MatchKind.NONE, MatchKind.TOO_SMALL):
                face["not_a_face"] = True
            if d is not None:
                face["reviewed"] = d.kind.value
            if match != _match_of(f) or face.get("not_a_face"):
                face["match"] = match.kind.value
                decision: dict[str, str] = dict(f.get("decision") or {})
                reason: dict[str, str] = dict(f.get("reason") or {})
                for ch in self.settings.channels:
                    if ch.name in published:
                        continue
                    v = decide_face(match, ch, pupils, today, self._near_policy())
                    decision[ch.name], reason[ch.name] = v.action.value, v.reason
                    if face.get("not_a_face"):  # no fill on approval (the self-check leaves it too)
                        decision[ch.name], reason[ch.name] = NOT_A_FACE, "marked not a face by a reviewer"
                face["decision"], face["reason"] = decision, reason
            out.append(face)
        return out

    def _near_policy(self) -> NearMatchPolicy:
        return self.settings.identify.near_match

    def channel_preview(self, item: Item) -> dict[str, str]:
        """What each channel has or would get on approval, one line per channel."""
        out: dict[str, str] = {}
        for ch in self.settings.channels:
            name = ch.name
            if name in item.published:
                out[name] = f"published already ({item.published[name]})"
                continue
            if item.status == "rejected":
                out[name] = "nothing: the file was rejected (" + item.reason + ")"
                continue
            if item.held_channels and name not in item.held_channels:
                out[name] = "nothing new (not held for this channel)"
                continue
            visible = redacted = 0
            for f in item.faces:
                action = (f.get("decision") or {}).get(name)
                if action == NOT_A_FACE:
                    continue
                if action == "visible":
                    visible += 1
                else:  # redact, and hold: an approval redacts an uncertain face
                    redacted += 1
            if not item.faces:
                out[name] = "on approval: processed again (no face decisions were recorded)"
            else:
                out[name] = f"on approval: {visible} face(s) visible, {redacted} redacted"
        return out

    def original_path(self, qid: str) -> Path | None:
        qdir = self.layout.quarantine / qid
        if not qdir.is_dir() or qdir.is_symlink():
            return None
        for p in sorted(qdir.iterdir()):
            if p.name.startswith("original") and p.is_file() and not p.is_symlink():
                return p
        return None

    def original_bytes(self, qid: str) -> tuple[bytes, str]:
        """The held original's bytes (decrypted with the key file) and its suffix ('.jpg').
        Raises :class:`ReviewError` when it is missing or does not decrypt."""
        original = self.original_path(qid)
        if original is None:
            raise ReviewError(f"the original of item {qid} is missing from the quarantine folder")
        try:
            data = original.read_bytes()
        except OSError as exc:
            raise ReviewError(f"the original of item {qid} cannot be read: {exc.strerror}") from None
        if not original.name.endswith(ENCRYPTED_SUFFIX):
            return data, original.suffix
        try:
            plain = keys.load_master(self.layout.key).decrypt(data)
        except keys.KeyError_ as exc:
            raise ReviewError(str(exc)) from None
        except InvalidToken:
            raise ReviewError(f"the original of item {qid} does not decrypt with this key file") from None
        return plain, Path(original.name[: -len(ENCRYPTED_SUFFIX)]).suffix

    def export_original(self, qid: str, target: Path) -> None:
        """Write the held original, decrypted, to a new file ``target`` (mode 0600) for a
        reviewer to look at; refuses to overwrite. Audited."""
        item = self.get(qid)
        data, _suffix = self.original_bytes(qid)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise ReviewError(f"cannot write {target}: {exc.strerror}") from None
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.store.audit(AuditEvent("review.export", photo_sha256=item.sha256, detail={"id": qid}))

    def held_caption(self, qid: str) -> str | None:
        """The teacher's caption that came with the held photo, if there was one."""
        path = self.layout.quarantine / qid / HELD_CAPTION
        if path.is_symlink() or not path.is_file():
            return None
        try:
            token = path.read_bytes()
            master = keys.load_master(self.layout.key)
            return master.decrypt(token).decode("utf-8", errors="replace")
        except (OSError, keys.KeyError_, InvalidToken) as exc:
            # fail closed: without its caption an approval publishes no caption at all
            log.warning("caption of held photo %s unreadable (%s); approved without it", qid, type(exc).__name__)
            return None

    # -- actions -------------------------------------------------------------------------------
    def approve(self, qid: str, channel: str | None = None) -> Any:
        """Publish the held channels (or only ``channel``) with the redactions as decided;
        uncertain faces are redacted. Channels published before are not published again."""
        if self.pipeline is None:
            raise ReviewError("approve needs a pipeline")
        item = self.get(qid)
        if item.resolved_at is not None:
            raise ReviewError(f"item {qid} is already resolved ({item.status})")
        if item.status != "held":
            raise ReviewError(f"item {qid} was rejected ({item.reason}); it cannot be published")
        candidates = item.held_channels or [
            c.name for c in self.settings.channels if c.name not in item.published
        ]
        if channel is not None:
            if channel not in candidates:
                held = ", ".join(candidates) or "-"
                raise ReviewError(f"channel {channel} is not held for item {qid} (held: {held})")
            approved = [channel]
        else:
            approved = list(candidates)
        data, suffix = self.original_bytes(qid)
        caption = self.held_caption(qid)
        photo = ledger.photo(self.store, item.sha256)
        stem = str(photo["stem"]) if photo and photo["stem"] else qid
        group = str(photo["grp"]) if photo else item.group
        result = self.pipeline.process_bytes(
            data,
            source=f"quarantine/{qid}",
            stem=stem,
            suffix=suffix,
            group=group,
            sidecar_text=caption,
            approved_channels=approved,
            from_quarantine=qid,
            overrides=self.decisions(qid),
        )
        outcome = result.status.value
        self.store.audit(
            AuditEvent(
                "review.approve",
                photo_sha256=item.sha256,
                detail={
                    "id": qid,
                    "channels": approved,
                    "published": sorted(result.outputs),
                    "outcome": outcome,
                    "still_held": list(result.held_channels),
                },
            )
        )
        if result.status is PhotoStatus.PUBLISHED:
            self._vault_if_kept(item.sha256, data)
            self._keep_decisions(qid, item.sha256, result)
            self._delete_original(qid, item.sha256, "approved in review and published")
        log.info("event=review_approve id=%s outcome=%s", qid, outcome)
        return result

    def decide(
        self,
        qid: str,
        face_no: int,
        kind: OverrideKind,
        pupil_id: str | None = None,
        *,
        account: int | None = None,
        learn: bool = False,
    ) -> FaceOverride:
        """Record a reviewer's decision about face ``face_no`` (1-based, as listed) of a held
        photo. ``confirm`` takes the face's candidate pupil (``pupil_id`` must be it); ``stranger``
        turns a near match into nobody; ``not_a_face`` is for a detection that matched nobody.
        A new decision about the same face replaces the old one. Audited with ids only.
        ``learn`` (confirm only): also keep the face's template for the pupil, which the template
        vault allows only with ``face_matching`` consent (needs the pipeline's models)."""
        with _DECIDING:
            item = self.get(qid)
            if item.resolved_at is not None or item.status != "held":
                raise ReviewError(f"item {qid} is not waiting for review ({item.status})")
            if not 1 <= face_no <= len(item.faces):
                raise ReviewError(f"item {qid} has no face {face_no} (faces: {len(item.faces)})")
            if self.is_clip(qid):
                raise ReviewError(
                    f"item {qid} is a clip: its faces are tracks over many frames; approve it (uncertain faces"
                    " redacted) or reject it"
                )
            face = item.faces[face_no - 1]
            box = _face_box(face)
            decision = self._checked(face, face_no, kind, pupil_id, item)
            if learn and kind is OverrideKind.CONFIRM:
                self._may_learn(str(decision.pupil_id))  # refused before anything is recorded
            held = [k for k in self._held_decisions(qid) if face_for(k.decision.box, [Detection(box, 1.0)]) is None]
            held.append(kept_decisions.Kept(decision, account, iso()))
            rows = [{**k.decision.to_json(), "account": k.account, "at": k.decided_at} for k in held]
            path = self.layout.quarantine / qid / DECISIONS
            fsutil.atomic_write(path, json.dumps(rows, indent=1).encode())
        detail: dict[str, Any] = {"id": qid, "face": face_no, "kind": kind.value}
        if account is not None:
            detail["account"] = account
        self.store.audit(
            AuditEvent("review.face", photo_sha256=item.sha256, pupil_id=decision.pupil_id, detail=detail)
        )
        log.info("event=review_face id=%s face=%s kind=%s", qid, face_no, kind.value)
        if learn and kind is OverrideKind.CONFIRM and decision.pupil_id:
            self._learn(item, box, decision.pupil_id, account)
        return decision

    def _checked(
        self, face: dict[str, Any], face_no: int, kind: OverrideKind, pupil_id: str | None, item: Item
    ) -> FaceOverride:
        box = _face_box(face)
        candidate = str(face.get("candidate") or "")
        if kind is OverrideKind.CONFIRM:
            if not candidate or pupil_id != candidate:
                raise ReviewError(
                    f"face {face_no} of item {item.id} has no uncertain match to pupil {pupil_id}"
                )
            for n, other in enumerate(item.faces, 1):
                if n != face_no and other.get("reviewed") == "confirm" and other.get("pupil_id") == pupil_id:
                    raise ReviewError(f"pupil {pupil_id} is already confirmed on face {n} of this photo")
            return FaceOverride(box, kind, pupil_id)
        if kind is OverrideKind.STRANGER:
            if not candidate:
                raise ReviewError(f"face {face_no} of item {item.id} is not an uncertain match")
            return FaceOverride(box, kind, candidate)
        if face.get("match") not in (MatchKind.NONE.value, MatchKind.TOO_SMALL.value) or candidate:
            raise ReviewError(
                f"face {face_no} of item {item.id} matches a pupil; only a face that matched nobody"
                " can be marked as not a face"
            )
        return FaceOverride(box, kind, None)

    def _may_learn(self, pupil_id: str) -> None:
        from photoguard.ledger.templates import EnrolmentRefused

        if self.pipeline is None:
            raise ReviewError("learning a template needs the face models (a pipeline)")
        try:
            self.pipeline.template_vault().may_enrol(pupil_id, self.today())
        except EnrolmentRefused as exc:
            raise ReviewError(f"no template kept: {exc.reason}") from None

    def _learn(self, item: Item, box: Box, pupil_id: str, account: int | None) -> None:
        """Keep the confirmed face's template for the pupil (the vault refuses without
        ``face_matching`` consent: :class:`ReviewError`)."""
        from photoguard.ledger.templates import EnrolmentRefused
        from photoguard.photo.decode import MediaError, decode_bytes

        if self.pipeline is None:
            raise ReviewError("learning a template needs the face models (a pipeline)")
        data, _suffix = self.original_bytes(item.id)
        try:
            img = decode_bytes(data, self.settings.media)
        except MediaError as exc:
            raise ReviewError(exc.reason) from None
        dets = list(self.pipeline.detector.detect(img.pixels))
        i = face_for(box, dets)
        if i is None:
            raise ReviewError("the confirmed face was not found again; no template kept")
        [template] = self.pipeline.templates.templates(img.pixels, [dets[i].box], [dets[i].landmarks])
        vault = self.pipeline.template_vault()
        try:
            vault.may_enrol(pupil_id, self.today())
            added = vault.add(pupil_id, template, item.sha256, self.settings.identify.template_engine)
        except EnrolmentRefused as exc:
            raise ReviewError(f"no template kept: {exc.reason}") from None
        detail: dict[str, Any] = {"id": item.id, "added": added}
        if account is not None:
            detail["account"] = account
        self.store.audit(AuditEvent("review.template", photo_sha256=item.sha256, pupil_id=pupil_id, detail=detail))

    def reject(self, qid: str) -> None:
        """Delete the held original; nothing more of it is published."""
        item = self.get(qid)
        if item.resolved_at is not None:
            raise ReviewError(f"item {qid} is already resolved ({item.status})")
        with self.store.transaction() as conn:
            ledger.resolve_in(conn, qid, "discarded")
            audit.record_in(
                conn, AuditEvent("review.reject", photo_sha256=item.sha256, detail={"id": qid})
            )
        self._delete_original(qid, item.sha256, "rejected in review")
        log.info("event=review_reject id=%s", qid)

    # -- helpers -------------------------------------------------------------------------------
    def _vault_if_kept(self, sha: str, data: bytes) -> None:
        """With ``originals.action = "vault"`` an approved original is kept encrypted like one
        published straight away (so it can be rendered again: consent changes, optional review)."""
        if self.settings.originals.action is not OriginalAction.VAULT:
            return
        target = self.layout.vault / f"{sha}.enc"
        if target.exists():
            return
        fsutil.atomic_write(target, keys.load_master(self.layout.key).encrypt(data))
        with self.store.transaction() as conn:
            ledger.set_vault_path_in(conn, sha, str(target.relative_to(self.root)))
            audit.record_in(conn, AuditEvent("original.vaulted", photo_sha256=sha))

    def _keep_decisions(self, qid: str, sha: str, result: Any) -> None:
        """Keep the decisions of this hold that the approval applied, for later renders of the
        photo, while its original is in the vault (nothing renders it again otherwise). A decision
        that did not apply (its face was not found, or "not a face" on a face that matched
        someone) is not kept: it could only do something unforeseen later."""
        target = self.layout.vault / f"{sha}.enc"
        if not target.is_file() or target.is_symlink():
            return
        faces = [(f.box, f.reviewed) for f in getattr(result, "faces", [])]
        applied = [k for k in self._held_decisions(qid) if was_applied(k.decision, faces)]
        if not applied:
            return
        with self.store.transaction() as conn:
            kept_decisions.record_in(conn, sha, applied)
        log.info("event=review_decisions_kept id=%s count=%s", qid, len(applied))

    def _delete_original(self, qid: str, sha: str, reason: str) -> None:
        qdir = self.layout.quarantine / qid
        if qdir.is_dir() and not qdir.is_symlink():
            shutil.rmtree(qdir)
        with self.store.transaction() as conn:
            audit.log_deletion_in(conn, "quarantine_original", qid, reason, sha256=sha)

    def _item(self, row: Any) -> Item:
        sha = str(row["sha256"])
        published = ledger.live_outputs(self.store, sha)
        return Item(
            id=str(row["id"]),
            sha256=sha,
            status=str(row["status"]),
            reason=str(row["reason"]),
            held_channels=list(json.loads(row["held_channels"] or "[]")),
            created_at=str(row["created_at"]),
            resolved_at=row["resolved_at"],
            published=published,
        )

    def _reason_file(self, qid: str) -> dict[str, Any]:
        path = self.layout.quarantine / qid / "reason.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def clip_preview_frames(review: Review, qid: str, channel: str, *, count: int = 4, side: int = 1200) -> list[Any]:
    """A held clip's preview frames for ``channel``: up to ``count`` frames spread over the clip
    (the ones with the most faces), each a fresh JPEG redacted as ``channel`` would get it, every
    face outlined and numbered (:func:`photoguard.photo.video.clip_preview_frames`; each item has
    ``index``, ``seconds``, ``faces`` and ``jpeg``). Empty for a photo, a rejected item and an item
    without recorded face decisions (fail closed: no pixels without decisions). Needs the
    review's pipeline (its detectors and templates); ReviewError when the original is missing or
    the clip cannot be read."""
    from photoguard.photo.formats import MediaError, sniff_video

    item = review.get(qid)
    if item.status == PhotoStatus.REJECTED.value or not item.faces or review.pipeline is None:
        return []
    data, _suffix = review.original_bytes(qid)
    if sniff_video(data) is None:
        return []
    from photoguard.photo.video import clip_preview_frames as frames

    try:
        return list(frames(review.pipeline, data, item.faces, channel, count=count, side=side, group=item.group))
    except MediaError as exc:
        raise ReviewError(f"the clip of item {qid} cannot be read: {exc.reason}") from None


def _face_box(face: dict[str, Any]) -> Box:
    box = face.get("box")
    if not isinstance(box, list | tuple) or len(box) != 4:
        raise ReviewError("a face without a usable box")
    return Box(*(float(v) for v in box))


def _match_of(face: dict[str, Any]) -> Match:
    """The match a face record holds (an unknown kind counts as nobody)."""
    try:
        kind = MatchKind(str(face.get("match") or "none"))
    except ValueError:
        kind = MatchKind.NONE
    pid = face.get("pupil_id") if kind is MatchKind.MATCH else face.get("candidate")
    return Match(kind, str(pid) if pid else None)
