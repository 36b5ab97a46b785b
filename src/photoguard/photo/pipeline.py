"""The only module that chains the stages: ingest -> decode -> detect -> identify -> decide ->
redact -> encode -> name -> publish -> original -> audit.

Fail closed: any exception after ingest holds the photo in ``quarantine/`` with a reason file and
publishes nothing of it; the original leaves the inbox only after its outputs (or its quarantine
copy) are committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from photoguard import fsutil
from photoguard.config import ChannelConfig, Layout, OriginalAction, Settings
from photoguard.core.decide import Verdict, decide_all, held_channels, visible_pupils
from photoguard.core.eligibility import may_show
from photoguard.core.naming import PersonName, output_name, person_name, scrub_caption, unnamed
from photoguard.core.overrides import SAME_FACE_IOU, FaceOverride, apply_overrides
from photoguard.core.records import Box, Detection, FaceAction, Match, MatchKind, PhotoStatus
from photoguard.core.textpolicy import TextBox, TextRedaction, decide_text
from photoguard.core.upload import Upload, safe_text
from photoguard.ledger import audit, keys, ledger, optional
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import AuditEvent, StateError, Store, iso
from photoguard.ledger.templates import TemplateVault
from photoguard.photo import formats, ingest
from photoguard.photo.decode import DecodedImage, MediaError, decode_bytes
from photoguard.photo.detect import Detector, ModelError, build_detector
from photoguard.photo.encode import encode_clean, verify_clean, verify_decodes
from photoguard.photo.identify import TemplateModel, match_faces, matchable
from photoguard.photo.redact import redact, solid_fill
from photoguard.photo.text import OcrEngine, OnnxOcr, TextFinder, cover_text

log = logging.getLogger(__name__)


@dataclass
class FaceReport:
    box: Box
    score: float
    match: Match
    verdicts: dict[str, Verdict]
    #: a reviewer's decision applied to this face ('confirm', 'stranger'; '' when none)
    reviewed: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "box": self.box.to_list(),
            "score": round(self.score, 3),
            "match": self.match.kind.value,
            "pupil_id": self.match.pupil_id if self.match.kind is MatchKind.MATCH else None,
            # the nearest pupil of an uncertain match: the candidate a reviewer confirms or rejects
            # (kept after a reviewer's confirmation or rejection, so the decision can be changed)
            "candidate": self.match.pupil_id if self.match.kind is MatchKind.NEAR or self.reviewed else None,
            "reviewed": self.reviewed,
            "distance": None if self.match.distance is None else round(self.match.distance, 4),
            "decision": {ch: v.action.value for ch, v in self.verdicts.items()},
            "reason": {ch: v.reason for ch, v in self.verdicts.items()},
        }


@dataclass
class ProcessResult:
    source: str
    sha256: str | None
    status: PhotoStatus
    reason: str = ""
    faces: list[FaceReport] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    held_channels: list[str] = field(default_factory=list)
    quarantine_id: str | None = None
    duplicate: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    #: text regions covered per published channel, counted per reason (never the text itself)
    text_regions: dict[str, dict[str, int]] = field(default_factory=dict)
    #: a folder could not take a file (disk full, not writable): nothing was published or
    #: quarantined, the original stays where it is and is tried again (``reason`` says why)
    kept: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "status": self.status.value,
            "reason": self.reason,
            "faces": [f.to_json() for f in self.faces],
            "outputs": self.outputs,
            "held_channels": self.held_channels,
            "quarantine_id": self.quarantine_id,
            "duplicate": self.duplicate,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


class Held(Exception):
    """Stop processing and hold the photo with ``reason``."""


class ConsentChanged(Exception):
    """Consent changed between deciding and publishing: decide again."""


#: how often a photo is re-decided when consent keeps changing under it before it is held
MAX_CONSENT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class _Done:
    """What commits with the outputs of a photo published in full (nothing held)."""

    uploader: str
    faces: int
    from_quarantine: str | None


@dataclass
class Rendered:
    channel: ChannelConfig
    data: bytes
    ext: str
    visible: list[str]
    #: text in the image to cover in this channel (names, contact details, unreadable lines)
    text: tuple[TextRedaction, ...] = ()
    #: pupils who may not be named in this channel (their first names go from file name and caption)
    unnamed: tuple[PersonName, ...] = ()

    def text_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.text:
            counts[r.reason] = counts.get(r.reason, 0) + 1
        return counts


def _text_key(regions: Sequence[TextRedaction]) -> tuple[tuple[Box, Any], ...]:
    """What makes two channels' text cover the same pixels."""
    return tuple((r.box, r.polygon) for r in regions)


class Pipeline:
    """Processes photos for one photoguard root. Thread-safe for concurrent ``process_path`` calls
    on different files (models and the store serialise internally)."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        store: Store | None = None,
        detector: Detector | None = None,
        templates: TemplateModel | None = None,
        checker: Detector | None = None,
        text: TextFinder | OcrEngine | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        """``text``: the text finder (default: PP-OCRv6 from ``settings.text``, loaded on first
        use; tests inject a fake one)."""
        self.settings = settings
        self.layout = Layout(root, settings)
        self.store = store or Store(self.layout.db)
        self.detector = detector or build_detector(settings.detect)
        # the self-check detector: an injected detector serves both passes (tests)
        self.checker = checker or detector or build_detector(settings.redact.check_detector)
        self.templates = templates or TemplateModel(
            workers=settings.identify.template_workers, engine=settings.identify.template_engine
        )
        self.text_finder = text if isinstance(text, TextFinder) else TextFinder(text or _ocr(settings))
        self.today = today
        self._master = keys.load_master(self.layout.key)
        self._check_key()
        self._claims: dict[str, list[Any]] = {}  # sha256 -> [lock, users]: one photo at a time
        self._claims_lock = threading.Lock()
        self._missing_templates = 0  # pupils enrolled only with another template engine (last count logged)

    def _check_key(self) -> None:
        """Another key file in place of the school's own is a hard stop (KeyError_, exit 4): whatever
        was held or vaulted with it could never be read with the right key."""
        rows = self.store.query(
            "SELECT wrapped_key FROM pupil_keys WHERE wrapped_key != zeroblob(length(wrapped_key)) LIMIT 1"
        )
        enc = [p for top in (self.layout.quarantine, self.layout.vault) if top.is_dir() for p in top.rglob("*.enc")]
        keys.check_master(self._master, self.layout.key, (bytes(r["wrapped_key"]) for r in rows), enc)

    # -- public ------------------------------------------------------------------------------
    def process_path(
        self,
        path: Path,
        *,
        group: str | None = None,
        uploader: str = "",
        remove_original: bool = True,
        wait_incomplete: bool = False,
    ) -> ProcessResult:
        """Process one file. ``group`` is the pupils' group for naming (default: from the folder).
        ``wait_incomplete``: a file whose structure ends early is left where it is, with the
        reason :data:`~photoguard.photo.ingest.INCOMPLETE` (the watch service waits for it);
        otherwise it is judged (and refused as incomplete) like any other file.

        An original that is not published is moved into its quarantine folder, never unlinked;
        one that changed while it was read stays where it is (its new content comes next)."""
        t0 = time.perf_counter()
        try:
            upload = ingest.read_upload(path, self.settings, self.layout.inbox, group=group, uploader=uploader)
        except ingest.IngestError as exc:
            if exc.kind == "link":
                self.store.audit(AuditEvent("ingest.rejected", detail={"reason": "symbolic link"}))
            sha = fsutil.sha256_bytes(b"") if exc.kind in ("unreadable", "too_large") else None
            return ProcessResult(safe_text(str(path)), sha, PhotoStatus.REJECTED, exc.reason)
        if wait_incomplete and formats.completeness(upload.data) is formats.Completeness.INCOMPLETE:
            return ProcessResult(upload.source, upload.sha256, PhotoStatus.REJECTED, ingest.INCOMPLETE)
        with self._claim(upload.sha256):  # the same content twice at once (two folders, review + watch)
            result = self._process_bytes(
                upload, approved_channels=(), from_quarantine=None, channels=None, rerender=False
            )
        result.timings["ingest"] = result.timings.get("ingest", 0.0)
        if remove_original and not result.kept and (result.status is not PhotoStatus.REJECTED or result.quarantine_id):
            self._retire_original(upload, result)
        result.timings["total"] = time.perf_counter() - t0
        fsutil.release_memory()
        return result

    def _retire_original(self, upload: Upload, result: ProcessResult) -> None:
        """Published: removed (or vaulted). Held or refused: its encrypted quarantine copy holds
        the very bytes that were read, so the inbox file is removed once it is unchanged; an
        upload that ends early (a stalled writer set aside) is *moved* onto a plain quarantine
        copy instead, so what its writer adds later is not lost."""
        path = upload.path
        if path is None:
            return
        sha12 = upload.sha256[:12]
        if not ingest.unchanged(path, upload.identity):  # still being written: keep it
            log.warning("original of %s changed while it was read; left in place", sha12)
            return
        if result.quarantine_id and result.status is not PhotoStatus.PUBLISHED:
            qdir = self.layout.quarantine / result.quarantine_id
            copy = ingest.quarantine_original(qdir)
            if copy is None:
                log.warning("quarantine copy of %s missing; original left in place", sha12)
                return
            try:
                if formats.completeness(upload.data) is formats.Completeness.INCOMPLETE:
                    moved = self._set_aside_plain(upload, path, qdir)
                else:
                    moved = ingest.unchanged(path, upload.identity) and fsutil.remove_quietly(path)
            except OSError as exc:
                log.warning("could not move original of %s aside: %s", sha12, exc.strerror)
                return
            if moved:
                for held_file in qdir.glob("original*"):
                    with contextlib.suppress(OSError):  # a moved file keeps the teacher's mode: make it private
                        os.chmod(held_file, fsutil.PRIVATE_MODE)
                self.store.audit(
                    AuditEvent("original.quarantined", photo_sha256=upload.sha256, detail={"id": result.quarantine_id})
                )
                self._retire_sidecar(upload, result.quarantine_id)
            return
        if self._remove_original(path, result):
            self._retire_sidecar(upload, None)

    def _set_aside_plain(self, upload: Upload, path: Path, qdir: Path) -> bool:
        """Move a stalled, incomplete upload onto a plain copy in its quarantine folder (a rename
        keeps the inode: a writer that wakes up writes into the moved file). The encrypted copy
        goes once the move is done; the plain copy goes when the move did not happen."""
        plain = qdir / f"original{ingest.quarantine_ext(upload.suffix)}"
        if not plain.exists():
            fsutil.atomic_write(plain, upload.data)
        moved = ingest.move_aside(path, plain, upload.identity)
        if not moved:
            fsutil.remove_quietly(plain)
            return False
        for p in qdir.iterdir():
            if p.name.startswith("original") and p != plain:
                fsutil.remove_quietly(p)
        return True

    def _retire_sidecar(self, upload: Upload, quarantine_id: str | None) -> None:
        """The caption sidecar leaves the inbox with its photo; a held photo keeps a copy of it
        in its quarantine folder (an approval publishes it)."""
        if upload.path is None or upload.sidecar_text is None:
            return
        if quarantine_id is not None:
            try:
                self._write_held_caption(quarantine_id, upload.sidecar_text)
            except OSError as exc:
                log.warning("could not keep the caption of %s: %s", upload.sha256[:12], exc.strerror)
                return
        try:
            gone = ingest.retire_sidecar(upload.path, upload.sidecar_text)
        except OSError as exc:
            log.warning("could not remove the caption of %s: %s", upload.sha256[:12], exc.strerror)
            return
        if gone:
            detail = {"id": quarantine_id} if quarantine_id else {}
            event = "sidecar.quarantined" if quarantine_id else "sidecar.removed"
            self.store.audit(AuditEvent(event, photo_sha256=upload.sha256, detail=detail))

    def _write_held_caption(self, quarantine_id: str, text: str) -> None:
        """The caption of a held photo, encrypted with the master key like the vault."""
        target = self.layout.quarantine / quarantine_id / ingest.HELD_CAPTION
        fsutil.atomic_write(target, self._master.encrypt(text.encode("utf-8")))

    def process_bytes(
        self,
        data: bytes,
        *,
        source: str,
        stem: str,
        suffix: str = ".jpg",
        group: str = "",
        uploader: str = "",
        sidecar_text: str | None = None,
        approved_channels: Collection[str] = (),
        from_quarantine: str | None = None,
        channels: Collection[str] | None = None,
        rerender: bool = False,
        overrides: Sequence[FaceOverride] = (),
    ) -> ProcessResult:
        """``channels``: decide and publish only these channels (default: all configured).
        ``rerender``: a re-render of a published photo (after a withdrawal): skip the duplicate
        check so the photo is decided again with the current consent. ``overrides``: a
        reviewer's decisions about single faces (:mod:`photoguard.core.overrides`); a confirmed
        face is then decided like a match, so the consent rule still says where it is visible."""
        upload = Upload.of_bytes(
            data, source=source, stem=stem, suffix=suffix, group=group, uploader=uploader, sidecar_text=sidecar_text
        )
        with self._claim(upload.sha256):  # the same content twice at once (two folders, review + watch)
            return self._process_bytes(
                upload, approved_channels=approved_channels, from_quarantine=from_quarantine,
                channels=channels, rerender=rerender, overrides=overrides,
            )

    @contextmanager
    def _claim(self, sha: str) -> Iterator[None]:
        with self._claims_lock:
            entry = self._claims.setdefault(sha, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._claims_lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._claims[sha]

    def _process_bytes(
        self,
        upload: Upload,
        *,
        approved_channels: Collection[str],
        from_quarantine: str | None,
        channels: Collection[str] | None,
        rerender: bool,
        overrides: Sequence[FaceOverride] = (),
    ) -> ProcessResult:
        """:meth:`_process_one`, with a folder that cannot take a file (disk full, read-only,
        permission) turned into a clear reason: nothing published, nothing quarantined, the
        original kept where it is."""
        try:
            return self._process_one(
                upload, approved_channels=approved_channels, from_quarantine=from_quarantine,
                channels=channels, rerender=rerender, overrides=overrides,
            )
        except (OSError, sqlite3.Error) as exc:
            problem = fsutil.storage_problem(exc)
            if problem is None:
                raise
            return self._kept(upload, exc, problem, held=from_quarantine is not None)

    def _kept(
        self, upload: Upload, exc: OSError | sqlite3.Error, problem: str, *, held: bool = False
    ) -> ProcessResult:
        where = "the database" if isinstance(exc, sqlite3.Error) else "the photoguard folders"
        filename = getattr(exc, "filename", None)
        if filename:
            folder = Path(os.fsdecode(filename)).parent
            try:
                where = str(folder.relative_to(self.layout.root))
            except ValueError:
                where = safe_text(str(folder))
        if problem == "disk full" or problem.startswith("disk quota"):
            reason = f"{problem}: {where} could not take the file"
        else:
            reason = f"{where} {problem}"
        # channels that needed no review may have gone out before the hold could be written
        live: list[str] = []
        with contextlib.suppress(Exception):  # the database may be what is full
            rows = self.store.query(
                "SELECT DISTINCT channel FROM outputs WHERE source_sha256=? AND withdrawn_at IS NULL", (upload.sha256,)
            )
            live = sorted(str(r["channel"]) for r in rows)
        done = f"published: {', '.join(live)}; the rest waits" if live else "nothing published"
        then = "the original stays in the inbox and is tried again"
        if held:  # an approval: the original is the held copy in quarantine
            then = "the photo stays held: approve it again"
        reason += f"; {done}, {then}"
        log.error("photo %s kept: %s", upload.sha256[:12], reason)
        with contextlib.suppress(Exception):  # the database may be what is full
            self.store.audit(AuditEvent("photo.kept", photo_sha256=upload.sha256, detail={"reason": reason}))
        return ProcessResult(upload.source, upload.sha256, PhotoStatus.HELD, reason, kept=True)

    def _process_one(
        self,
        upload: Upload,
        *,
        approved_channels: Collection[str],
        from_quarantine: str | None,
        channels: Collection[str] | None,
        rerender: bool,
        overrides: Sequence[FaceOverride] = (),
    ) -> ProcessResult:
        sha, source, data, suffix, stem, group, up = (
            upload.sha256, upload.source, upload.data, upload.suffix, upload.stem, upload.group, upload.uploader
        )
        timings: dict[str, float] = {}
        dup = self._duplicate(sha, source) if not approved_channels and not rerender else None
        if dup is not None:
            return dup
        self.store.audit(AuditEvent("ingest", photo_sha256=sha, detail={"bytes": len(data)}))
        if not data:
            return self._hold(
                sha, source, data, suffix, "empty file (0 bytes)", PhotoStatus.REJECTED, stem, group, uploader=up
            )
        if self.settings.video.enabled and formats.sniff_video(data) is not None:
            from photoguard.photo.video import VideoProcessor  # PyAV loads only for clips

            return VideoProcessor(self).process(
                upload, approved_channels=approved_channels, from_quarantine=from_quarantine,
                channels=channels, rerender=rerender,
            )
        # decode
        t = time.perf_counter()
        try:
            img = decode_bytes(data, self.settings.media, sidecar_text=upload.sidecar_text)
        except MediaError as exc:
            return self._hold(sha, source, data, suffix, exc.reason, PhotoStatus.REJECTED, stem, group, uploader=up)
        timings["decode"] = time.perf_counter() - t
        try:
            for _attempt in range(MAX_CONSENT_RETRIES):
                try:
                    return self._process_image(
                        img, upload, timings, approved_channels, from_quarantine, channels,
                        skip_live=not rerender, overrides=overrides,
                    )
                except ConsentChanged:
                    log.info("consent changed while photo %s was processed; deciding again", sha[:12])
            raise Held("consent kept changing while the photo was processed")
        except Held as exc:
            return self._hold(sha, source, data, suffix, str(exc), PhotoStatus.HELD, stem, group, uploader=up)
        except StateError:
            raise  # the database was lost: a hard stop, never a hold into a database not there
        except (OSError, sqlite3.Error) as exc:
            if fsutil.storage_problem(exc) is not None:
                raise  # kept in the inbox with the reason (see _process_bytes)
            log.exception("photo %s held after an internal error", sha[:12])
            reason = f"internal error ({type(exc).__name__}); the photo was held, nothing published"
            return self._hold(sha, source, data, suffix, reason, PhotoStatus.HELD, stem, group, uploader=up)
        except Exception as exc:  # fail closed: anything unexpected holds the photo
            log.exception("photo %s held after an internal error", sha[:12])
            reason = f"internal error ({type(exc).__name__}); the photo was held, nothing published"
            return self._hold(sha, source, data, suffix, reason, PhotoStatus.HELD, stem, group, uploader=up)

    def analyse(self, rgb: np.ndarray, group: str = "") -> tuple[list[Detection], list[Match]]:
        """Detect and identify on an upright RGB image (no side effects); ``group`` as in
        :meth:`_identify`."""
        dets = self.detector.detect(rgb)
        return dets, self._identify(rgb, dets, group)

    def render(
        self, rgb: np.ndarray, redact_boxes: Sequence[Box | Detection], keep_boxes: Sequence[Box | Detection]
    ) -> np.ndarray:
        """Redact ``redact_boxes`` and run the self-check; faces found afterwards that are not one
        of ``keep_boxes`` (the visible, consented faces) get a solid fill."""
        boxes = list(keep_boxes) + list(redact_boxes)
        shown = frozenset(range(len(keep_boxes)))
        return self.render_versions(rgb, boxes, [shown])[shown]

    def render_versions(
        self, rgb: np.ndarray, faces: Sequence[Box | Detection], versions: Collection[frozenset[int]]
    ) -> dict[frozenset[int], np.ndarray]:
        """All versions of :meth:`iter_versions` at once."""
        return dict(self.iter_versions(rgb, faces, versions))

    def iter_versions(
        self,
        rgb: np.ndarray,
        faces: Sequence[Box | Detection],
        versions: Collection[frozenset[int]],
        not_faces: Sequence[Box] = (),
    ) -> Iterator[tuple[frozenset[int], np.ndarray]]:
        """One redacted image per distinct version, one at a time (a 12 MP image is 36 MB: the
        caller encodes a version and lets it go before the next one is made). A version is the
        set of indices into ``faces`` of the faces it shows; every other face is redacted (on its
        head outline: a detection's landmarks shape it). A detection lying inside a face the
        version shows, and smaller than it, is part of that face (an eye or a mouth found as a
        second "face"), not a face to fill; a detection anywhere else stays redacted.

        The self-check detector runs once, on the most-redacted image: every face redacted that
        some version redacts (only the faces all versions show stay). Each version differs from
        that image only inside faces it shows, so what the check finds elsewhere is what it
        would find in the version. Fail closed: every face the check finds that is not a face the
        version shows (a face inside a redacted area, or one the first pass missed) gets a solid
        fill in that version, except a region a reviewer marked "not a face" (``not_faces``)."""
        wanted = list(dict.fromkeys(versions))
        if not wanted:
            return
        cfg = self.settings.redact

        boxes = [_box_of(f) for f in faces]

        def redacted(shown: frozenset[int]) -> np.ndarray:
            hidden = [
                f
                for i, f in enumerate(faces)
                if i not in shown and not any(_part_of(boxes[k], boxes[i]) for k in shown)
            ]
            return redact(rgb, hidden, cfg, seed=len(hidden))

        common = frozenset.intersection(*wanted)
        base: np.ndarray | None = None
        found: list[Detection] = []
        if cfg.self_check:
            base = redacted(common)
            found = list(self.checker.detect(base))
            if common not in wanted:
                base = None
        for shown in wanted:
            img = base if base is not None and shown == common else redacted(shown)
            keep = [boxes[i] for i in shown]
            extra = [
                f
                for f in found
                if not any(f.box.iou(k) > 0.3 or _covers(k, f.box) for k in keep)
                and not any(f.box.iou(n) >= SAME_FACE_IOU for n in not_faces)
            ]
            if extra:
                log.info("self-check filled %s more face region(s)", len(extra))
                img = solid_fill(img, extra, cfg.grow)
            yield shown, img

    # -- stages ------------------------------------------------------------------------------
    def _process_image(
        self,
        img: DecodedImage,
        upload: Upload,
        timings: dict[str, float],
        approved: Collection[str],
        from_quarantine: str | None,
        only: Collection[str] | None = None,
        *,
        skip_live: bool = False,
        overrides: Sequence[FaceOverride] = (),
    ) -> ProcessResult:
        """``skip_live``: channels that already have a live output of this photo are left alone
        (a restart after a partial publish, a re-drop after review, an approval)."""
        sha, source, data, suffix, stem, group, uploader = (
            upload.sha256, upload.source, upload.data, upload.suffix, upload.stem, upload.group, upload.uploader
        )
        rgb = img.pixels
        t = time.perf_counter()
        dets = self.detector.detect(rgb)
        timings["detect"] = time.perf_counter() - t
        t = time.perf_counter()
        lines = self._find_text(rgb, sha)
        timings["text"] = time.perf_counter() - t
        t = time.perf_counter()
        matches = self._identify(rgb, dets, group)
        reviewed = [""] * len(dets)
        not_faces: list[Box] = []
        if overrides:
            applied = apply_overrides(dets, matches, overrides)
            dets, matches, reviewed, not_faces = (
                applied.detections, applied.matches, applied.decided, applied.not_faces
            )
            if applied.unmatched:
                log.info("photo %s: %s review decision(s) found no face to apply to", sha[:12], applied.unmatched)
        timings["identify"] = time.perf_counter() - t
        version = self.store.consent_version()
        pupils = Registry(self.store).pupils()
        today = self.today()
        channels = [c for c in self.settings.channels if only is None or c.name in only]
        if skip_live:
            live = ledger.live_channels(self.store, sha)
            channels = [c for c in channels if c.name not in live]
        verdicts = decide_all(matches, channels, pupils, today, self.settings.identify.near_match, approved)
        faces = [
            FaceReport(d.box, d.score, m, v, r) for d, m, v, r in zip(dets, matches, verdicts, reviewed, strict=True)
        ]
        held = held_channels(verdicts, channels)
        publish = [c for c in channels if c.name not in held]
        if from_quarantine is not None:
            # an approval publishes the approved channels only; the other channels that were held
            # stay held (an empty list held everything: e.g. an internal error)
            was_held = set(self._quarantine_held(from_quarantine)) or {c.name for c in channels}
            publish = [c for c in publish if c.name in approved]
            held += [
                c.name
                for c in channels
                if c.name in was_held and c.name not in approved and c.name not in held
            ]
        # render, redact and encode per channel; channels with the same visible set share pixels
        t = time.perf_counter()
        shown = {
            ch.name: frozenset(i for i, v in enumerate(verdicts) if v[ch.name].action is FaceAction.VISIBLE)
            for ch in publish
        }
        roster = list(pupils.values())
        rendered = [
            Rendered(
                ch,
                b"",
                "",
                visible_pupils(verdicts, matches, ch.name),
                tuple(decide_text(lines, roster, ch, today, self.settings.text)) if lines else (),
                tuple(unnamed(roster, ch, today)),
            )
            for ch in publish
        ]
        quality = img.jpeg_quality or self.settings.media.jpeg_quality
        encoding = 0.0
        for faces_shown, pixels in self.iter_versions(rgb, dets, shown.values(), not_faces):
            t_enc = time.perf_counter()
            self._encode_version(img, pixels, [r for r in rendered if shown[r.channel.name] == faces_shown], quality)
            encoding += time.perf_counter() - t_enc
            del pixels
        timings["redact"] = time.perf_counter() - t - encoding
        timings["encode"] = encoding
        t = time.perf_counter()
        everyone = [person_name(p) for p in roster]
        taken = img.taken_at.date() if img.taken_at else today
        # published in full: the photo's row, the approval and its audit event commit in the
        # same write transaction as its outputs (one transaction per published photo)
        done = None if held else _Done(uploader, len(faces), from_quarantine)
        outputs = self._publish(
            sha, rendered, taken, group, stem, everyone, img.caption, version,
            guard_live=skip_live, done=done, could_show=_could_show(faces, publish, pupils, today),
        )
        timings["publish"] = time.perf_counter() - t
        status = PhotoStatus.HELD if held else PhotoStatus.PUBLISHED
        result = ProcessResult(source, sha, status, faces=faces, outputs=outputs, held_channels=held, timings=timings)
        result.text_regions = {r.channel.name: r.text_counts() for r in rendered if r.channel.name in outputs}
        if held:
            result.reason = "uncertain match to a consenting pupil; review needed for: " + ", ".join(held)
            self._hold(sha, source, data, suffix, result.reason, PhotoStatus.HELD, stem, group, held, result, uploader)
            self.store.audit(
                AuditEvent(
                    "photo." + status.value,
                    photo_sha256=sha,
                    detail={"faces": len(faces), "channels": sorted(outputs), "held": held},
                )
            )
        return result

    def _encode_version(self, img: DecodedImage, pixels: np.ndarray, mine: Sequence[Rendered], quality: int) -> None:
        """Cover each channel's text, then encode and check the files. Channels that show the same
        faces and cover the same text get the same pixels (one text variant at a time, so at most
        one more copy of the photo is alive)."""
        variants: dict[tuple[tuple[Box, Any], ...], list[Rendered]] = {}
        for r in mine:
            variants.setdefault(_text_key(r.text), []).append(r)
        for group in variants.values():
            covered = cover_text(pixels, group[0].text) if group[0].text else pixels
            self._encode_files(img, covered, group, quality)
            del covered

    def _encode_files(self, img: DecodedImage, pixels: np.ndarray, mine: Sequence[Rendered], quality: int) -> None:
        """Encode and check one set of pixels for channels. Channels at the same size and format get
        the same file; distinct files are encoded side by side (Pillow and OpenCV release the GIL)
        on the threads OpenCV may use."""
        files = list(dict.fromkeys((r.channel.format, r.channel.max_side) for r in mine))

        def encode(key: tuple[str, int]) -> tuple[bytes, str]:
            fmt, max_side = key
            # decode flattened any transparency: the outputs are exactly the checked pixels, with
            # no alpha channel; 'auto' still gives a (flattened) PNG for a source that had alpha
            fmt = ("png" if img.transparent else "jpeg") if fmt == "auto" else fmt
            out_bytes, ext = encode_clean(
                pixels, None, fmt=fmt, quality=quality, max_side=max_side, optimize=self.settings.media.jpeg_optimize
            )
            problems = verify_clean(out_bytes) or verify_decodes(out_bytes)
            if problems:
                names = ", ".join(r.channel.name for r in mine if (r.channel.format, r.channel.max_side) == key)
                raise Held(f"output for {names} failed the metadata check: {problems[0]}")
            return out_bytes, ext

        threads = min(len(files), max(1, cv2.getNumThreads()))
        if threads > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="encode") as pool:
                encoded = dict(zip(files, pool.map(encode, files), strict=True))
        else:
            encoded = {key: encode(key) for key in files}
        for r in mine:
            r.data, r.ext = encoded[(r.channel.format, r.channel.max_side)]

    def _find_text(self, rgb: np.ndarray, sha: str) -> list[TextBox]:
        """Every text line in the photo (none when ``text.enabled`` is off). Fail closed: a text
        model that cannot be loaded, or any error while reading, holds the photo."""
        if not self.settings.text.enabled:
            return []
        try:
            return list(self.text_finder.find_text(rgb))
        except ModelError as exc:
            log.error("text finding unavailable for photo %s: %s", sha[:12], exc)
            raise Held(f"text in the photo could not be checked: {exc}") from exc
        except Exception as exc:
            log.exception("text finding failed for photo %s", sha[:12])
            raise Held(f"text in the photo could not be checked ({type(exc).__name__})") from exc

    def _identify(self, rgb: np.ndarray, dets: Sequence[Detection], group: str = "") -> list[Match]:
        """Templates of the matchable faces, matched jointly against the enrolled pupils.

        ``group`` (the photo's group, from the teacher's inbox folder) makes matching group-first:
        that group's pupils under the normal rule, the rest of the school under the stricter
        ``outside_group`` rule (a group without pupils in the registry: everyone is outside)."""
        cfg = self.settings.identify
        big = [i for i, d in enumerate(dets) if matchable(d.box, cfg)]
        gallery, missing = self.template_vault().gallery_for(cfg.template_engine, self.today())
        if missing != self._missing_templates:
            self._missing_templates = missing
            if missing:
                log.warning(
                    "%s enrolled pupil(s) have no face template of the configured engine (identify.template_engine"
                    " = %s) and are not recognised (redacted everywhere): enrol them again with"
                    " `photoguard enrol --dir DIR`",
                    missing, cfg.template_engine,
                )
        if not big or len(gallery.pupil_ids) == 0:
            return [
                Match(MatchKind.NONE) if i in big else Match(MatchKind.TOO_SMALL) for i in range(len(dets))
            ]
        vecs = self.templates.templates(rgb, [dets[i].box for i in big], [dets[i].landmarks for i in big])
        by_face: list[np.ndarray | None] = [None] * len(dets)
        for i, v in zip(big, vecs, strict=True):
            by_face[i] = v
        members = Registry(self.store).group_members(group) if group else None
        return match_faces(by_face, gallery, cfg, group_pupils=members)

    def _publish(
        self,
        sha: str,
        rendered: Sequence[Rendered],
        taken: date,
        group: str,
        stem: str,
        everyone: Sequence[PersonName],
        caption: str | None,
        decided_version: int,
        *,
        guard_live: bool = False,
        done: _Done | None = None,
        could_show: Mapping[str, Sequence[tuple[Box, str]]] | None = None,
    ) -> dict[str, str]:
        """Commit ``rendered`` to the outbox and the ledger in one write transaction; with
        ``done`` (nothing held) the photo's row, a review approval and the ``photo.published``
        event join that transaction. ``could_show``: per channel the redacted near matches of
        pupils who could be shown there (recorded as optional review work for the channels
        published now)."""
        if not rendered and done is None:
            return {}
        temps: list[tuple[Rendered, Path]] = []
        committed: list[Path] = []  # renamed into the outbox in a transaction not yet committed
        try:
            for r in rendered:
                folder = self.layout.channel_dir(r.channel.name)
                temps.append((r, fsutil.write_temp(folder, r.data, mode=fsutil.SHARED_MODE)))
            outputs: dict[str, str] = {}
            with self.store.transaction() as conn:
                version = decided_version
                if rendered:
                    version = Store.consent_version_in(conn)
                    if version != decided_version:
                        # the write lock is held: no consent change can slip in after this check
                        raise ConsentChanged()
                live = ledger.live_channels(conn, sha) if guard_live and rendered else set()
                if done is not None:
                    status = PhotoStatus.PUBLISHED.value
                    ledger.upsert_photo_in(conn, sha, status, "", group, stem, done.uploader, taken.isoformat(), None)
                    if done.from_quarantine:
                        ledger.resolve_in(conn, done.from_quarantine, "approved")
                for r, tmp in temps:
                    if r.channel.name in live:  # published meanwhile elsewhere: no duplicate
                        continue
                    folder = self.layout.channel_dir(r.channel.name)
                    name = self._free_name(conn, folder, taken, group, stem, everyone, r)
                    final = folder / name
                    committed.append(final)
                    fsutil.commit_temp(tmp, final)
                    rel = str(final.relative_to(self.layout.root))
                    ledger.add_output_in(
                        conn,
                        ledger.NewOutput(sha, r.channel.name, rel, fsutil.sha256_bytes(r.data), r.visible, version),
                    )
                    detail: dict[str, Any] = {"output_sha256": fsutil.sha256_bytes(r.data), "visible": r.visible}
                    if r.text:
                        detail["text"] = r.text_counts()  # regions per reason, never the text
                    audit.record_in(
                        conn, AuditEvent("publish", photo_sha256=sha, channel=r.channel.name, detail=detail)
                    )
                    outputs[r.channel.name] = rel
                    if caption:
                        self._write_caption(final, caption, everyone, r)
                    if could_show and could_show.get(r.channel.name):
                        optional.add_in(conn, sha, could_show[r.channel.name], [r.channel.name])
                if done is not None:
                    detail = {"faces": done.faces, "channels": sorted(outputs), "held": []}
                    audit.record_in(conn, AuditEvent("photo.published", photo_sha256=sha, detail=detail))
            committed.clear()
            return outputs
        finally:
            # the transaction failed (disk full at COMMIT, ...): a file the ledger does not know
            # must not stay in the outbox, it could never be withdrawn
            for final in committed:
                with contextlib.suppress(OSError):
                    fsutil.remove_quietly(final.with_suffix(final.suffix + ".txt"))
                    fsutil.remove_quietly(final)
            for _r, tmp in temps:
                fsutil.remove_quietly(tmp)

    def _free_name(
        self,
        conn: Any,
        folder: Path,
        taken: date,
        group: str,
        stem: str,
        everyone: Sequence[PersonName],
        r: Rendered,
    ) -> str:
        group_label = f"groep-{group}" if group else ""
        n = 1
        while True:
            name = output_name(
                taken, group_label, stem, everyone, public=r.channel.public, n=n, ext=r.ext, hidden=r.unnamed
            )
            rel = str((folder / name).relative_to(self.layout.root))
            # never reuse a name, not even a withdrawn one: a re-render gets a new name
            if not ledger.path_ever_used(conn, rel):
                return name
            n += 1

    def _write_caption(self, final: Path, caption: str, everyone: Sequence[PersonName], r: Rendered) -> None:
        """The teacher's sidecar caption, scrubbed for the channel, next to the output. Text embedded
        in the photo file is never used (see ``DecodedImage.embedded_captions``)."""
        text = scrub_caption(caption, everyone, public=r.channel.public, hidden=r.unnamed)
        if text.strip():
            target = final.with_suffix(final.suffix + ".txt")
            fsutil.atomic_write(target, (text.strip() + "\n").encode(), mode=fsutil.SHARED_MODE)

    # -- holding, records, originals ---------------------------------------------------------
    def _hold(
        self,
        sha: str,
        source: str,
        data: bytes,
        suffix: str,
        reason: str,
        status: PhotoStatus,
        stem: str,
        group: str,
        held: Sequence[str] = (),
        result: ProcessResult | None = None,
        uploader: str = "",
    ) -> ProcessResult:
        qid = sha[:16]
        qdir = self.layout.quarantine / qid
        if ingest.quarantine_original(qdir) is None:  # encrypted at rest, like the vault
            original = qdir / f"original{ingest.quarantine_ext(suffix)}{ingest.ENCRYPTED_SUFFIX}"
            fsutil.atomic_write(original, self._master.encrypt(data))
        info = {
            "id": qid,
            "sha256": sha,
            "status": status.value,
            "reason": reason,
            "held_channels": list(held),
            "created_at": iso(),
            "faces": [f.to_json() for f in result.faces] if result else [],
            "group": group,
        }
        fsutil.atomic_write(qdir / "reason.json", json.dumps(info, indent=2).encode())
        with self.store.transaction() as conn:
            ledger.hold_in(conn, qid, sha, status.value, reason, held)
            ledger.upsert_photo_in(conn, sha, status.value, reason, group, stem, uploader, None, qid)
            audit.record_in(
                conn, AuditEvent("photo.quarantined", photo_sha256=sha, detail={"id": qid, "status": status.value})
            )
        log.info("photo %s %s: %s", sha[:12], status.value, reason)
        if result is not None:
            result.quarantine_id = qid
            return result
        return ProcessResult(source, sha, status, reason, quarantine_id=qid, held_channels=list(held))

    def _quarantine_held(self, qid: str) -> list[str]:
        row = ledger.quarantine_item(self.store, qid)
        return list(json.loads(row["held_channels"])) if row else []

    def _duplicate(self, sha: str, source: str) -> ProcessResult | None:
        row = ledger.photo(self.store, sha)
        if row is None:
            return None
        outputs = ledger.live_outputs(self.store, sha)
        if row["status"] == PhotoStatus.PUBLISHED.value:
            return ProcessResult(
                source, sha, PhotoStatus.PUBLISHED, "already published", outputs=outputs, duplicate=True
            )
        qid = row["quarantine_id"]
        if qid and (self.layout.quarantine / qid).is_dir():
            q = ledger.quarantine_item(self.store, qid)
            if q is not None and q["status"] in ("held", "rejected"):
                return ProcessResult(
                    source,
                    sha,
                    PhotoStatus(q["status"]),
                    f"already in quarantine ({q['reason']})",
                    outputs=outputs,
                    held_channels=json.loads(q["held_channels"]),
                    quarantine_id=qid,
                    duplicate=True,
                )
        return None

    def _remove_original(self, path: Path, result: ProcessResult) -> bool:
        """The original leaves the inbox only once its outputs or its quarantine copy exist.
        Returns whether it left."""
        if result.sha256 is None:
            return False
        keep = self.settings.originals.action is OriginalAction.VAULT
        if keep and result.status is PhotoStatus.PUBLISHED and not result.duplicate:
            self._vault(path, result.sha256)
        try:
            fsutil.remove_quietly(path)
        except OSError as exc:
            log.warning("could not remove original of %s: %s", result.sha256[:12], exc.strerror)
            return False
        self.store.audit(AuditEvent("original.removed", photo_sha256=result.sha256))
        return True

    def _vault(self, path: Path, sha: str) -> None:
        target = self.layout.vault / f"{sha}.enc"
        if target.exists():
            return
        data = ingest.read_regular_file(path, self.settings.media.max_bytes)
        fsutil.atomic_write(target, self._master.encrypt(data))
        with self.store.transaction() as conn:
            rel = str(target.relative_to(self.layout.root))
            ledger.set_vault_path_in(conn, sha, rel)
            audit.record_in(conn, AuditEvent("original.vaulted", photo_sha256=sha))

    def template_vault(self) -> TemplateVault:
        """The encrypted face templates of this root, unlocked with its key file."""
        return TemplateVault(self.store, self._master)

    def vault_bytes(self, sha: str) -> bytes | None:
        target = self.layout.vault / f"{sha}.enc"
        if not target.is_file():
            return None
        return self._master.decrypt(target.read_bytes())

    def _group_for(self, path: Path) -> str:
        return ingest.group_for(ingest.inbox_folder(path, self.layout.inbox), self.settings)


def _could_show(
    faces: Sequence[FaceReport], channels: Sequence[ChannelConfig], pupils: Mapping[str, Any], today: date
) -> dict[str, list[tuple[Box, str]]]:
    """Per channel: the near matches redacted there whose pupil may be shown there (the
    eligibility rule), i.e. what a reviewer's confirmation would make visible."""
    out: dict[str, list[tuple[Box, str]]] = {}
    for f in faces:
        pid = f.match.pupil_id
        if f.match.kind is not MatchKind.NEAR or pid is None:
            continue
        for ch in channels:
            v = f.verdicts.get(ch.name)
            if v is not None and v.action is FaceAction.REDACT and may_show(pupils.get(pid), ch.consent, today):
                out.setdefault(ch.name, []).append((f.box, pid))
    return out


def _box_of(face: Box | Detection) -> Box:
    return face.box if isinstance(face, Detection) else face


def _part_of(shown: Box, other: Box) -> bool:
    """``other`` lies (mostly) inside the shown face ``shown`` and is smaller than half of it:
    a part of that face found as a face of its own, not another person."""
    return _covers(shown, other) and other.area < 0.5 * shown.area


def _covers(outer: Box, inner: Box) -> bool:
    return inner.area > 0 and outer.intersection(inner) / inner.area > 0.6


def _ocr(settings: Settings) -> OnnxOcr:
    cfg = settings.text
    return OnnxOcr(
        det_long_side=cfg.det_long_side,
        det_thresh=cfg.det_thresh,
        box_thresh=cfg.box_thresh,
        threads=cfg.threads,
        refine_long_side=cfg.refine_long_side,
    )


def open_pipeline(root: Path, settings: Settings, **kw: Any) -> Pipeline:
    return Pipeline(root, settings, **kw)

