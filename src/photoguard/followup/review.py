"""Reviewing held photos: list, show, approve (publish the held channels with the redactions as
decided, near-matches redacted), reject (delete the held original, logged in the deletion log).

``quarantine/<id>/`` holds ``original.<ext>.enc`` (the held original, encrypted with the master
key like the vault; a stalled upload set aside stays a plain ``original.<ext>``), ``reason.json``
and, when the photo came with one, the teacher's caption ``caption.txt.enc`` (encrypted too); the
``quarantine`` table is the index. Every action is audited with ids only. A reviewer looks at a
held photo through :meth:`Review.export_original` (``review show ID --export FILE``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken

from photoguard.config import Layout, Settings
from photoguard.core.records import PhotoStatus
from photoguard.ledger import audit, keys, ledger
from photoguard.ledger.db import AuditEvent, Store
from photoguard.photo.ingest import ENCRYPTED_SUFFIX, HELD_CAPTION

log = logging.getLogger(__name__)

OPEN_STATUSES = ("held", "rejected")


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


class Review:
    """Review actions on one root. ``pipeline`` is needed only for :meth:`approve`."""

    def __init__(self, root: Path, settings: Settings, store: Store, pipeline: Any = None) -> None:
        self.root = root
        self.settings = settings
        self.layout = Layout(root, settings)
        self.store = store
        self.pipeline = pipeline

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
        item.faces = list(info.get("faces", []))
        item.group = str(info.get("group", ""))
        return item

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
            self._delete_original(qid, item.sha256, "approved in review and published")
        log.info("event=review_approve id=%s outcome=%s", qid, outcome)
        return result

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
