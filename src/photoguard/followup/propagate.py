"""What happens after consent changes: biometric data destroyed, published files withdrawn.

The rules are *state based*: after a change, every live output in the ledger showing an affected
pupil is checked against the registry as it is now (``core.eligibility.withdrawal_reason``; the
ledger's ``withdrawal_candidates`` narrows the search). An output is withdrawn when a visible pupil

* no longer has consent for the channel's consent key,
* has left the school (``left_on`` <= today) and the channel is one of
  ``retention.leaver_channels`` (or ``retention.leaver_other_days`` have passed since), or
* is no longer in the registry at all (fail closed).

A withdrawal, in one transaction: the ledger row is marked ``withdrawn_at``/``withdrawn_reason``,
one ``takedowns`` row per withdrawn pupil is written, the deletion is logged, and the file and
its caption sidecar are unlinked (inside the write transaction, so a publish that reuses the
folder cannot slip in between). Where the original is still in the vault, the photo is then
re-rendered through the pipeline for the affected channel(s) only: the normal decision redacts
the pupil, the result is published under a new name and noted as the replacement.

A withdrawn ``face_matching`` consent (or a pupil who has left) destroys the pupil's templates
and data key at once, and with them every face decision a reviewer made about the pupil that the
ledger kept (:mod:`photoguard.ledger.decisions`: "this is P", "this is not P"); a leave date in
the future waits for the sweep on that date. Published photos are not withdrawn for a
``face_matching`` withdrawal alone: the publication consents still stand (re-renders will no
longer recognise the pupil, so they redact the face).

A re-render applies the reviewers' decisions kept for the photo (a confirmation only while its
pupil may be matched), so a confirmed face is not held for review a second time and a "not a
face" mark is not filled again; the consent rule still decides per channel where a confirmed
pupil is visible, with the consent as it is now.

Only ids and hashes are logged. ``propagate_changes`` and the sweep serialise on one lock file
(``state/retention.lock``) so two runs never withdraw or re-render the same output twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photoguard.config import Layout, Settings
from photoguard.core.eligibility import Bar, matching_bar, may_match, withdrawal_reason
from photoguard.ledger import audit, decisions, ledger
from photoguard.ledger.consent import Change, Registry
from photoguard.ledger.db import AuditEvent, Store, iso
from photoguard.ledger.templates import TemplateVault

if TYPE_CHECKING:
    from photoguard.photo.pipeline import Pipeline

log = logging.getLogger(__name__)

LOCK_NAME = "retention.lock"
#: outputs withdrawn per write transaction (keeps the write lock short for the watch service)
BATCH = 500

PipelineFactory = Callable[[], "Pipeline"]


# -- the lock ---------------------------------------------------------------------------------
@contextlib.contextmanager
def retention_lock(layout: Layout) -> Iterator[None]:
    """An exclusive ``flock`` on ``state/retention.lock`` (blocks until free; never a symlink).

    ``flock`` locks belong to the open file description, so two threads of one process that
    each call this also exclude each other. Not re-entrant: take it once per run."""
    layout.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.state / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# -- link-safe deletion -----------------------------------------------------------------------
def safe_unlink(base: Path, path: Path) -> str:
    """Delete the regular file ``path`` only if it lies inside ``base``; never follows a link.

    Returns ``"deleted"``, ``"missing"`` or ``"refused"`` (outside ``base``, a link, a folder)."""
    try:
        base_r = base.resolve(strict=True)
        parent = path.parent.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except (OSError, RuntimeError):
        return "refused"
    if path.name in ("", ".", "..") or not parent.is_relative_to(base_r):
        return "refused"
    try:
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "refused"
    try:
        try:
            st = os.stat(path.name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return "missing"
        if not stat.S_ISREG(st.st_mode):
            return "refused"
        try:
            os.unlink(path.name, dir_fd=fd)
        except FileNotFoundError:
            return "missing"
        return "deleted"
    finally:
        os.close(fd)


# -- records ----------------------------------------------------------------------------------
@dataclass
class Withdrawal:
    output_id: int
    source_sha256: str
    channel: str
    path: str
    sha256: str
    pupil_ids: list[str]
    reason: str
    file: str = "missing"  # deleted | missing | refused
    takedown_ids: list[int] = field(default_factory=list)
    replacement: str | None = None


@dataclass
class PropagationReport:
    templates_destroyed: dict[str, int] = field(default_factory=dict)
    #: per pupil: how many kept face decisions naming them were deleted
    decisions_forgotten: dict[str, int] = field(default_factory=dict)
    withdrawn: list[Withdrawal] = field(default_factory=list)
    held_for_review: list[str] = field(default_factory=list)  # source sha256 of re-renders held
    refused_paths: list[str] = field(default_factory=list)

    def merge(self, other: PropagationReport) -> None:
        for k, v in other.templates_destroyed.items():
            self.templates_destroyed[k] = self.templates_destroyed.get(k, 0) + v
        for k, v in other.decisions_forgotten.items():
            self.decisions_forgotten[k] = self.decisions_forgotten.get(k, 0) + v
        self.withdrawn.extend(other.withdrawn)
        self.held_for_review.extend(other.held_for_review)
        self.refused_paths.extend(other.refused_paths)

    @property
    def replaced(self) -> int:
        return sum(1 for w in self.withdrawn if w.replacement)

    def lines(self) -> list[str]:
        out = [
            f"destroyed {n} face template(s) of pupil {pid}"
            for pid, n in sorted(self.templates_destroyed.items())
            if n
        ]
        out += [
            f"deleted {n} kept face decision(s) about pupil {pid}"
            for pid, n in sorted(self.decisions_forgotten.items())
            if n
        ]
        for w in self.withdrawn:
            msg = f"withdrew {w.path} ({w.channel}; pupil(s) {', '.join(w.pupil_ids)}: {w.reason})"
            if w.replacement:
                msg += f"; replaced by {w.replacement}"
            out.append(msg)
        if self.held_for_review:
            out.append(f"{len(self.held_for_review)} re-render(s) held for review in quarantine/")
        for p in self.refused_paths:
            out.append(f"NOT deleted (outside photoguard's folders or not a regular file): {p}")
        if self.withdrawn:
            out.append("see: photoguard takedown list")
        return out


# -- the engine -------------------------------------------------------------------------------
class Propagator:
    """Withdraws outputs that may no longer be shown and re-renders them from the vault.

    Callers hold ``retention_lock``; ``pipeline`` builds a Pipeline only when a re-render is
    actually needed (the real one loads the face models)."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        store: Store,
        *,
        today: date,
        pipeline: PipelineFactory | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.layout = Layout(root, settings)
        self.store = store
        self.today = today
        self._factory = pipeline
        self._pipeline: Pipeline | None = None

    # biometrics -------------------------------------------------------------------------
    def destroy_templates(self, pupil_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Destroy templates/keys of the given pupils (default: everyone holding any) who may no
        longer be matched today. Idempotent."""
        holders = TemplateVault.holders(self.store)
        if pupil_ids is not None:
            holders &= set(pupil_ids)
        if not holders:
            return {}
        pupils = Registry(self.store).pupils(holders)
        destroyed: dict[str, int] = {}
        for pid in sorted(holders):
            st = pupils.get(pid)
            if may_match(st, self.today):
                continue
            reason = (
                "pupil left the school"
                if st is not None and st.left_on
                else ("face_matching consent withdrawn")
            )
            with self.store.transaction() as conn:
                destroyed[pid] = TemplateVault.destroy_in(conn, pid, reason)
            log.info("destroyed %s template(s) of pupil %s", destroyed[pid], pid)
        if destroyed:
            self.store.checkpoint()
        return destroyed

    def forget_decisions(self, pupil_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Delete the kept face decisions naming the given pupils (default: everyone named in
        one) who may no longer be matched today: left, no ``face_matching`` consent, or no
        longer in the registry. Idempotent; run before any re-render."""
        named = decisions.pupils(self.store)
        if pupil_ids is not None:
            named &= set(pupil_ids)
        if not named:
            return {}
        pupils = Registry(self.store).pupils(named)
        reasons = {
            Bar.NOT_REGISTERED: "pupil no longer in the registry",
            Bar.LEFT: "pupil left the school",
            Bar.NO_FACE_MATCHING: "face_matching consent withdrawn",
        }
        forgotten: dict[str, int] = {}
        for pid in sorted(named):
            bar = matching_bar(pupils.get(pid), self.today)
            if bar is None:
                continue
            with self.store.transaction() as conn:
                forgotten[pid] = decisions.forget_pupil_in(conn, pid, reasons.get(bar, str(bar)))
            log.info("deleted %s kept face decision(s) of pupil %s", forgotten[pid], pid)
        if forgotten:
            self.store.checkpoint()
        return forgotten

    # outputs ----------------------------------------------------------------------------
    def violations(self, pupil_ids: Iterable[str] | None = None) -> list[Withdrawal]:
        """Live outputs that show a pupil who may no longer be shown in that channel."""
        chans = [(c.name, c.consent) for c in self.settings.channels]
        rows = ledger.withdrawal_candidates(self.store, chans, pupil_ids)
        if not rows:
            return []
        pupils = Registry(self.store).pupils({r.pupil_id for r in rows})
        found: dict[int, Withdrawal] = {}
        for r in rows:
            reason = withdrawal_reason(
                pupils.get(r.pupil_id), r.consent_key, r.channel, self.settings.retention, self.today
            )
            if reason is None:
                continue
            w = found.get(r.output_id)
            if w is None:
                found[r.output_id] = Withdrawal(
                    r.output_id, r.source_sha256, r.channel, r.path, r.sha256, [r.pupil_id], reason
                )
            else:
                w.pupil_ids.append(r.pupil_id)
        return list(found.values())

    def withdraw(self, candidates: Sequence[Withdrawal]) -> PropagationReport:
        """Withdraw ``candidates`` (files unlinked inside the write transaction), then re-render
        what the vault still holds."""
        report = PropagationReport()
        done: list[Withdrawal] = []
        for start in range(0, len(candidates), BATCH):
            batch = candidates[start : start + BATCH]
            with self.store.transaction() as conn:
                for w in batch:
                    if self._withdraw_in(conn, w):
                        done.append(w)
        for w in done:
            if w.file == "refused":
                report.refused_paths.append(w.path)
        report.withdrawn.extend(done)
        if done:
            log.info("withdrew %s output(s)", len(done))
            report.held_for_review.extend(self._replace(done))
        return report

    def _withdraw_in(self, conn: sqlite3.Connection, w: Withdrawal) -> bool:
        now = iso()
        if not ledger.withdraw_in(conn, w.output_id, w.reason, now):
            return False  # someone else withdrew it meanwhile
        for pid in w.pupil_ids:
            w.takedown_ids.append(
                ledger.add_takedown_in(conn, now, w.channel, w.path, w.sha256, pid, w.reason)
            )
        # ref by ledger id: a closed channel's file name may carry a first name
        audit.log_deletion_in(
            conn, "output", f"output {w.output_id}", w.reason, sha256=w.sha256, channel=w.channel
        )
        audit.record_in(
            conn,
            AuditEvent(
                "output.withdrawn",
                photo_sha256=w.source_sha256,
                channel=w.channel,
                detail={
                    "output_id": w.output_id,
                    "output_sha256": w.sha256,
                    "pupils": w.pupil_ids,
                    "reason": w.reason,
                },
            ),
        )
        target = self.root / w.path
        w.file = safe_unlink(self.layout.outbox, target)
        if w.file != "refused":
            safe_unlink(self.layout.outbox, target.with_name(target.name + ".txt"))
        else:
            log.warning(
                "output %s not deleted: outside the outbox or not a regular file", w.output_id
            )
        return True

    def _replace(self, done: Sequence[Withdrawal]) -> list[str]:
        """Re-render each affected photo once, for the withdrawn channels only."""
        by_source: dict[str, list[Withdrawal]] = {}
        for w in done:
            by_source.setdefault(w.source_sha256, []).append(w)
        held: list[str] = []
        for sha, ws in by_source.items():
            vaulted = self.layout.vault / f"{sha}.enc"
            if not vaulted.is_file() or vaulted.is_symlink() or self._factory is None:
                continue
            channels = {w.channel for w in ws}
            # only channels without a live output of this photo (a concurrent run may have one)
            channels -= ledger.live_channels(self.store, sha)
            if not channels:
                continue
            try:
                pipe = self._get_pipeline()
                data = pipe.vault_bytes(sha)
            except Exception as exc:  # the vault copy is unreadable: withdrawn stays withdrawn
                log.warning("cannot re-render photo %s: %s", sha[:12], type(exc).__name__)
                continue
            if data is None:
                continue
            photo = ledger.photo(self.store, sha)
            res = pipe.process_bytes(
                data,
                source=f"vault:{sha[:12]}",
                stem=photo["stem"] if photo else "foto",
                group=photo["grp"] if photo else "",
                channels=sorted(channels),
                rerender=True,
                overrides=decisions.for_render(self.store, sha, self.today),
            )
            if res.held_channels or res.status.value != "published":
                held.append(sha)
            with self.store.transaction() as conn:
                for w in ws:
                    new = res.outputs.get(w.channel)
                    if not new:
                        continue
                    w.replacement = new
                    ledger.set_replacement_in(conn, w.takedown_ids, new)
                    audit.record_in(
                        conn,
                        AuditEvent(
                            "output.replaced",
                            photo_sha256=sha,
                            channel=w.channel,
                            detail={"output_id": w.output_id},
                        ),
                    )
        return held

    def _get_pipeline(self) -> Pipeline:
        if self._pipeline is None:
            assert self._factory is not None
            self._pipeline = self._factory()
        return self._pipeline


# -- entry points -----------------------------------------------------------------------------
def affected_pupils(changes: Iterable[Change]) -> set[str]:
    """Pupils whose outputs or templates may have to go after ``changes``."""
    return {
        c.pupil_id
        for c in changes
        if (c.key == "left_on" and c.new) or (c.new is False) or c.key == "face_matching"
    }


def propagate_changes(
    root: Path,
    settings: Settings,
    store: Store,
    changes: Sequence[Change],
    *,
    today: date | None = None,
    pipeline: PipelineFactory | None = None,
) -> PropagationReport:
    """Apply the consequences of ``changes`` now (templates, withdrawals, re-renders)."""
    pids = affected_pupils(changes)
    report = PropagationReport()
    if not pids:
        return report
    prop = Propagator(root, settings, store, today=today or date.today(), pipeline=pipeline)
    with retention_lock(prop.layout):
        report.templates_destroyed = prop.destroy_templates(pids)
        report.decisions_forgotten = prop.forget_decisions(pids)
        report.merge(prop.withdraw(prop.violations(pids)))
    return report


def after_changes(ctx: Any, changes: Sequence[Change]) -> list[str]:
    """Apply the consequences of ``changes``; returns lines for the user (CLI entry point)."""
    if not affected_pupils(changes):
        return []
    store = Store(ctx.layout.db)
    try:
        report = propagate_changes(ctx.root, ctx.settings, store, changes, pipeline=ctx.pipeline)
    finally:
        store.close()
    return report.lines()
