"""Enrolment: photos explicitly provided for face matching -> encrypted templates.

Only pupils with ``face_matching`` consent who have not left can be enrolled. Each photo must show
exactly one usable face; anything else is refused with the reason. Enrolment photos are never
copied or kept by photoguard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from photoguard import fsutil
from photoguard.core.records import Detection
from photoguard.ledger.templates import EnrolmentRefused, TemplateVault
from photoguard.photo.decode import MediaError, decode_bytes
from photoguard.photo.identify import matchable
from photoguard.photo.ingest import read_regular_file
from photoguard.photo.pipeline import Pipeline

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"})
#: an enrolment photo is a controlled portrait: only confident detections count as faces there
ENROL_MIN_SCORE = 0.75


def distinct_faces(dets: Sequence[Detection], min_score: float = ENROL_MIN_SCORE) -> list[Detection]:
    """Confident detections, dropping boxes that lie mostly inside a larger confident box."""
    strong = sorted((d for d in dets if d.score >= min_score), key=lambda d: -d.box.area)
    kept: list[Detection] = []
    for d in strong:
        if all(k.box.intersection(d.box) < 0.6 * d.box.area for k in kept):
            kept.append(d)
    return kept


@dataclass(frozen=True, slots=True)
class EnrolOutcome:
    pupil_id: str
    photo: str
    ok: bool
    reason: str


def enrol_photos(pipe: Pipeline, pupil_id: str, photos: Iterable[Path]) -> list[EnrolOutcome]:
    vault = pipe.template_vault()
    try:
        vault.may_enrol(pupil_id, pipe.today())
    except EnrolmentRefused as exc:
        return [EnrolOutcome(pupil_id, str(p), False, exc.reason) for p in photos]
    out: list[EnrolOutcome] = []
    for photo in photos:
        out.append(_enrol_one(pipe, vault, pupil_id, photo))
    return out


def _enrol_one(pipe: Pipeline, vault: TemplateVault, pupil_id: str, photo: Path) -> EnrolOutcome:
    def refuse(reason: str) -> EnrolOutcome:
        return EnrolOutcome(pupil_id, str(photo), False, reason)

    try:
        data = read_regular_file(photo, pipe.settings.media.max_bytes)
    except (OSError, ValueError) as exc:
        return refuse(f"cannot read the photo: {getattr(exc, 'strerror', None) or exc}")
    try:
        img = decode_bytes(data, pipe.settings.media)
    except MediaError as exc:
        return refuse(exc.reason)
    dets = distinct_faces(pipe.detector.detect(img.pixels))
    if not dets:
        return refuse("no clear face found")
    usable = [d for d in dets if matchable(d.box, pipe.settings.identify)]
    if len(dets) > 1:
        return refuse(f"{len(dets)} faces found; an enrolment photo must show exactly one face")
    if not usable:
        return refuse(f"the face is too small (needs at least {pipe.settings.identify.min_face_px} px wide)")
    [template] = pipe.templates.templates(img.pixels, [usable[0].box], [usable[0].landmarks])
    try:
        added = vault.add(pupil_id, template, fsutil.sha256_bytes(data), pipe.settings.identify.template_engine)
    except EnrolmentRefused as exc:
        return refuse(exc.reason)
    return EnrolOutcome(pupil_id, str(photo), True, "enrolled" if added else "already enrolled with this photo")


def enrol_dir(pipe: Pipeline, folder: Path) -> list[EnrolOutcome]:
    """Enrol ``folder/<pupil_id>/*.jpg`` for every pupil folder."""
    out: list[EnrolOutcome] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        photos = sorted(
            p for p in sub.iterdir() if p.is_file() and not p.is_symlink() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not photos:
            out.append(EnrolOutcome(sub.name, str(sub), False, "no photos in this folder"))
            continue
        out.extend(enrol_photos(pipe, sub.name, photos))
    return out
