"""The retention sweep (``photoguard sweep``; the watch service runs it nightly).

One run, under the exclusive lock ``state/retention.lock`` and in short DB transactions:

1. templates and data keys of pupils who left (``left_on`` <= today) or have no ``face_matching``
   consent are destroyed (crypto-shredding, WAL checkpointed), and so are the face decisions kept
   about them (``face_decisions``: "this is P", "this is not P");
2. every live output that may no longer be shown is withdrawn (leavers in
   ``retention.leaver_channels``, other channels after ``retention.leaver_other_days``, consent
   withdrawn but not yet propagated), re-rendered without the pupil where the vault has the
   original, and listed for takedown;
3. files of withdrawn outputs still in the outbox (a crash between steps) are deleted;
4. vault originals older than ``originals.vault_days`` are deleted, with the face decisions kept
   for their renders (and those of any photo whose original is no longer in the vault);
5. quarantine items older than ``retention.quarantine_days`` are deleted;
6. audit events older than ``retention.audit_days`` are pruned (the deletion log, consent history
   and takedown list are kept);
7. stale temp files (``.pg-*.tmp``) older than ``retention.temp_minutes`` are deleted;
8. caption sidecars (``IMG_1.txt``) left in the inbox without their photo for longer than
   ``retention.quarantine_days`` are deleted (a caption normally leaves with its photo).

Idempotent: a second run finds nothing to do. Never follows a symbolic link and deletes only
inside its own folders (paths are resolved and checked for containment; links are reported).
Every deletion is written to ``deletion_log`` (kind, id or path, sha256, reason; no names).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from photoguard import fsutil
from photoguard.config import Layout, Settings
from photoguard.core.upload import safe_text
from photoguard.followup.propagate import BATCH, PipelineFactory, Propagator, retention_lock, safe_unlink
from photoguard.ledger import audit, decisions, ledger
from photoguard.ledger.db import AuditEvent, Store, iso
from photoguard.photo import ingest

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass
class SweepReport:
    today: str = ""
    templates_destroyed: dict[str, int] = field(default_factory=dict)
    #: kept face decisions deleted (about pupils who may no longer be matched, of photos whose
    #: original left the vault)
    decisions_deleted: int = 0
    outputs_withdrawn: int = 0
    outputs_replaced: int = 0
    withdrawn_by_channel: dict[str, int] = field(default_factory=dict)
    held_for_review: int = 0
    orphan_files_deleted: int = 0
    vault_deleted: int = 0
    quarantine_deleted: int = 0
    audit_pruned: int = 0
    temp_deleted: int = 0
    sidecars_deleted: int = 0
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed_anything(self) -> bool:
        return bool(
            any(self.templates_destroyed.values())
            or self.decisions_deleted
            or self.outputs_withdrawn
            or self.orphan_files_deleted
            or self.vault_deleted
            or self.quarantine_deleted
            or self.audit_pruned
            or self.temp_deleted
            or self.sidecars_deleted
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"sweep for {self.today} ({self.seconds:.2f} s)"]
        destroyed = {k: v for k, v in self.templates_destroyed.items() if v}
        out.append(
            f"  templates destroyed: {sum(destroyed.values())} "
            f"({len(destroyed)} pupil(s){': ' + ', '.join(sorted(destroyed)) if destroyed else ''})"
        )
        out.append(f"  kept face decisions deleted: {self.decisions_deleted}")
        per = ", ".join(f"{k} {v}" for k, v in sorted(self.withdrawn_by_channel.items()))
        out.append(
            f"  outputs withdrawn: {self.outputs_withdrawn}{' (' + per + ')' if per else ''}, "
            f"re-rendered: {self.outputs_replaced}, held for review: {self.held_for_review}"
        )
        out.append(f"  leftover files of withdrawn outputs deleted: {self.orphan_files_deleted}")
        out.append(f"  vault originals deleted: {self.vault_deleted}")
        out.append(f"  quarantine items deleted: {self.quarantine_deleted}")
        out.append(f"  audit events pruned: {self.audit_pruned}")
        out.append(f"  stale temp files deleted: {self.temp_deleted}")
        out.append(f"  captions without a photo deleted from the inbox: {self.sidecars_deleted}")
        for p in self.refused:
            out.append(f"  NOT deleted (symbolic link, not a regular file or outside): {p}")
        if self.outputs_withdrawn:
            out.append("  see: photoguard takedown list")
        return out


class Sweeper:
    """One sweep over one root. ``pipeline`` builds the Pipeline used for re-renders (only when
    one is needed); tests pass one with fake models."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        store: Store,
        *,
        today: date | None = None,
        pipeline: PipelineFactory | None = None,
        now: datetime | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.store = store
        self.layout = Layout(root, settings)
        self.today = today or date.today()
        wall = datetime.now(UTC)
        self.now = now or (wall if today is None else datetime.combine(self.today, wall.timetz()))
        self.pipeline = pipeline

    def run(self) -> SweepReport:
        t0 = time.perf_counter()
        rep = SweepReport(today=self.today.isoformat())
        with retention_lock(self.layout):
            prop = Propagator(self.root, self.settings, self.store, today=self.today, pipeline=self.pipeline)
            rep.templates_destroyed = prop.destroy_templates()
            rep.decisions_deleted = sum(prop.forget_decisions().values())
            unknown = set(self.settings.retention.leaver_channels) - {c.name for c in self.settings.channels}
            if unknown:
                log.warning("retention.leaver_channels names unknown channel(s): %s", sorted(unknown))
            pr = prop.withdraw(prop.violations())
            rep.outputs_withdrawn = len(pr.withdrawn)
            rep.outputs_replaced = pr.replaced
            rep.held_for_review = len(pr.held_for_review)
            for w in pr.withdrawn:
                rep.withdrawn_by_channel[w.channel] = rep.withdrawn_by_channel.get(w.channel, 0) + 1
            rep.refused.extend(pr.refused_paths)
            rep.orphan_files_deleted = self._orphans(rep)
            rep.vault_deleted = self._vault(rep)
            rep.quarantine_deleted = self._quarantine(rep)
            rep.audit_pruned = self._audit()
            rep.temp_deleted = self._temps(rep)
            rep.sidecars_deleted = self._sidecars(rep)
            rep.seconds = time.perf_counter() - t0
            if rep.changed_anything:
                self.store.audit(
                    AuditEvent(
                        "sweep",
                        detail={
                            k: v
                            for k, v in rep.to_json().items()
                            if k not in ("refused", "templates_destroyed", "seconds")
                        },
                    )
                )
        log.info(
            "sweep: %s withdrawn, %s vault, %s quarantine, %s audit pruned",
            rep.outputs_withdrawn,
            rep.vault_deleted,
            rep.quarantine_deleted,
            rep.audit_pruned,
        )
        return rep

    # -- 3. leftover files of withdrawn outputs ---------------------------------------------
    def _orphans(self, rep: SweepReport) -> int:
        withdrawn = ledger.withdrawn_leftovers(self.store)
        if not withdrawn:
            return 0
        todo: list[tuple[str, Path, str, str]] = []  # channel, file, rel of the output, name
        for ch in self.settings.channels:
            folder = self.layout.channel_dir(ch.name)
            for entry in _scan(folder):
                name = entry.name
                main = name[:-4] if name.endswith(".txt") else name
                rel = str((folder / main).relative_to(self.root))
                if rel not in withdrawn:
                    continue
                if not entry.is_file(follow_symlinks=False):
                    rep.refused.append(str(folder / name))
                    continue
                todo.append((ch.name, folder / name, rel, main))
        n = 0
        for batch in _batches(todo):
            with self.store.transaction() as conn:
                for channel, path, rel, main in batch:
                    result = safe_unlink(self.layout.outbox, path)
                    if result == "deleted":
                        oid, osha = withdrawn[rel]
                        audit.log_deletion_in(
                            conn,
                            "output",
                            f"output {oid}",
                            "leftover file of a withdrawn output",
                            sha256=osha if path.name == main else None,
                            channel=channel,
                        )
                        n += 1
                    elif result == "refused":
                        rep.refused.append(str(path))
        return n

    # -- 4. vault -------------------------------------------------------------------------
    def _vault(self, rep: SweepReport) -> int:
        days = self.settings.originals.vault_days
        cutoff = (self.now - timedelta(days=days)).timestamp()
        todo: list[str] = []
        for entry in _scan(self.layout.vault):
            if not entry.name.endswith(".enc"):
                continue
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                rep.refused.append(str(self.layout.vault / entry.name))
                continue
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                todo.append(entry.name)
        n = 0
        for batch in _batches(todo):
            with self.store.transaction() as conn:
                for name in batch:
                    sha = name[: -len(".enc")]
                    result = safe_unlink(self.layout.vault, self.layout.vault / name)
                    if result == "deleted":
                        ledger.set_vault_path_in(conn, sha, None)
                        audit.log_deletion_in(conn, "original", sha, f"vault period of {days} days ended", sha256=sha)
                        rep.decisions_deleted += decisions.forget_photo_in(
                            conn, sha, f"vault period of {days} days ended"
                        )
                        n += 1
                    elif result == "refused":
                        rep.refused.append(str(self.layout.vault / name))
        with self.store.transaction() as conn:
            rep.decisions_deleted += decisions.forget_unkept_in(conn)
        return n

    # -- 5. quarantine --------------------------------------------------------------------
    def _quarantine(self, rep: SweepReport) -> int:
        days = self.settings.retention.quarantine_days
        cutoff = self.now - timedelta(days=days)
        created = ledger.quarantine_created(self.store)
        try:
            base = self.layout.quarantine.resolve(strict=True)
        except OSError:
            return 0
        todo: list[str] = []
        for entry in _scan(self.layout.quarantine):
            if fsutil.is_temp_name(entry.name):
                continue  # step 7
            if entry.is_symlink():
                rep.refused.append(str(self.layout.quarantine / entry.name))
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            info = created.get(entry.name)
            if info is not None:
                when = datetime.fromisoformat(info[0])
            else:
                when = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC)
            if when < cutoff:
                todo.append(entry.name)
        n = 0
        for batch in _batches(todo):
            with self.store.transaction() as conn:
                for name in batch:
                    target = base / name
                    try:
                        # fd-based on Linux: links inside are unlinked, never followed
                        shutil.rmtree(target)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        log.warning("quarantine item %s not deleted: %s", name, exc.strerror)
                        rep.refused.append(str(target))
                        continue
                    ledger.resolve_in(conn, name, "expired")
                    info = created.get(name)
                    audit.log_deletion_in(
                        conn,
                        "quarantine",
                        name,
                        f"quarantine period of {days} days ended",
                        sha256=info[1] if info else None,
                    )
                    n += 1
        return n

    # -- 6. audit -------------------------------------------------------------------------
    def _audit(self) -> int:
        days = self.settings.retention.audit_days
        cutoff = iso(self.now - timedelta(days=days))
        with self.store.transaction() as conn:
            n = audit.prune_in(conn, cutoff)
            if n:
                audit.log_deletion_in(
                    conn,
                    "audit",
                    f"{n} event(s) before {cutoff}",
                    f"audit period of {days} days ended",
                )
        return n

    # -- 7. temp files --------------------------------------------------------------------
    def _temps(self, rep: SweepReport) -> int:
        cutoff = (self.now - timedelta(minutes=self.settings.retention.temp_minutes)).timestamp()
        n = 0
        for base in (
            self.layout.outbox,
            self.layout.vault,
            self.layout.quarantine,
            self.layout.state,
        ):
            if not base.is_dir() or base.is_symlink():
                continue
            for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
                here = Path(dirpath)
                dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
                for name in filenames:
                    if not fsutil.is_temp_name(name):
                        continue
                    path = here / name
                    try:
                        st = os.lstat(path)
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        rep.refused.append(str(path))
                        continue
                    if st.st_mtime >= cutoff:
                        continue
                    result = safe_unlink(base, path)
                    if result == "deleted":
                        n += 1
                    elif result == "refused":
                        rep.refused.append(str(path))
        if n:
            with self.store.transaction() as conn:
                audit.log_deletion_in(conn, "temp", f"{n} temp file(s)", "stale temporary files")
        return n

    # -- 8. captions without a photo ------------------------------------------------------
    def _sidecars(self, rep: SweepReport) -> int:
        """Caption sidecars in the inbox whose photo is gone, untouched for the quarantine
        period. The deletion log names the caption by its content's hash, never its file name."""
        days = self.settings.retention.quarantine_days
        cutoff = (self.now - timedelta(days=days)).timestamp()
        inbox = self.layout.inbox
        if not inbox.is_dir() or inbox.is_symlink():
            return 0
        todo: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(inbox, followlinks=False):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink()]
            for name in filenames:
                if not name.lower().endswith(ingest.SIDECAR_SUFFIX) or name.startswith("."):
                    continue
                path = here / name
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    rep.refused.append(safe_text(str(path)))
                    continue
                if st.st_mtime >= cutoff or ingest.photo_partners(path):
                    continue
                todo.append(path)
        n = 0
        for batch in _batches(todo):
            with self.store.transaction() as conn:
                for path in batch:
                    try:
                        digest = fsutil.sha256_bytes(ingest.read_regular(path, ingest.MAX_SIDECAR_BYTES * 16)[0])
                    except ingest.IngestError:
                        digest = None
                    result = safe_unlink(inbox, path)
                    if result == "deleted":
                        audit.log_deletion_in(
                            conn,
                            "caption",
                            f"caption {digest[:16]}" if digest else "caption",
                            f"caption without its photo for {days} days",
                            sha256=digest,
                        )
                        n += 1
                    elif result == "refused":
                        rep.refused.append(safe_text(str(path)))
        return n


def _batches(items: Sequence[_T], size: int = BATCH) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _scan(folder: Path) -> Iterator[os.DirEntry[str]]:
    """Entries of ``folder`` (nothing if it is missing or a symbolic link)."""
    try:
        if folder.is_symlink() or not folder.is_dir():
            return iter(())
        with os.scandir(folder) as it:
            return iter(list(it))
    except OSError:
        return iter(())


def run_sweep(root: Path, settings: Settings, store: Store, *, today: date | None = None) -> SweepReport:
    """Run one retention sweep (safe to run twice or concurrently; the second waits, then finds
    nothing to do). Re-renders use a Pipeline built on first need (it loads the face models)."""

    def factory() -> Any:
        from photoguard.photo.pipeline import Pipeline

        return Pipeline(root, settings, store=store, today=(lambda: today) if today else date.today)

    return Sweeper(root, settings, store, today=today, pipeline=factory).run()
