"""When is a file in the inbox ready? The debounce/settle state of one tracked path.

A path the observer (or a rescan) offers is *pending* until it is judged:

* ``SETTLING``: its size or mtime changed, or an event came, less than ``settle`` seconds ago;
* ``PAUSED``: a retry back-off runs, or a folder problem (full disk) pauses all processing;
* ``INCOMPLETE``: it is stable, but its structure ends early (:mod:`photoguard.photo.formats`):
  a writer may be stalled mid-file. It waits; it is never judged or removed for looking
  incomplete. Only when it stays unchanged and incomplete for ``incomplete_wait`` seconds is it
  *set aside*: processed to quarantine (moved, with a reason) instead of published;
* ``READY``: stable for ``settle`` seconds and structurally complete (or of an unknown kind,
  which the pipeline refuses with a reason).

Captions. A teacher's caption (``IMG_1.txt`` beside ``IMG_1.jpg``) may be copied just before or
just after its photo. A photo without a caption waits ``caption_wait`` seconds from when it was
first seen (default :data:`CAPTION_SETTLE_FACTOR` settle periods: 5 s with the default settle of
1 s) so a caption that arrives a few seconds late is paired with it; a caption that appears or
changes restarts the photo's settle time, so a caption still being written is not cut off.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from photoguard.photo import formats, ingest

#: a photo without a caption waits this many settle periods after it was first seen
CAPTION_SETTLE_FACTOR = 5.0


class IntakeState(Enum):
    SETTLING = "settling"
    PAUSED = "paused"
    INCOMPLETE = "incomplete"
    READY = "ready"


class Verdict(Enum):
    WAIT = "wait"  # keep it pending
    READY = "ready"  # queue it for processing
    SET_ASIDE = "set_aside"  # stalled incomplete past the bound: queue it for quarantine
    DROP = "drop"  # gone, or not ours (a link, not a regular file, outside the inbox)


@dataclass
class Entry:
    """The intake state of one pending path (monotonic times)."""

    first_seen: float
    last_event: float
    sig: tuple[int, int] | None = None  # (size, mtime_ns) last seen
    stable_since: float = 0.0  # when ``sig`` was first seen
    not_before: float = 0.0  # retry back-off
    state: IntakeState = IntakeState.SETTLING
    judged_sig: tuple[int, int] | None = None  # the sig ``completeness`` belongs to
    completeness: formats.Completeness | None = None
    side_sig: tuple[int, int] | None = None  # (size, mtime_ns) of the caption sidecar, if any


def sidecar_sig(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of the caption sidecar of ``path`` when it is a regular file, else None."""
    for side in ingest.sidecar_paths(path):
        try:
            st = os.lstat(side)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            return (st.st_size, st.st_mtime_ns)
    return None


def file_completeness(path: Path, max_bytes: int) -> formats.Completeness:
    """Is the upload at ``path`` finished? Files that cannot be read or are too large are
    UNKNOWN: the pipeline judges them (with a reason)."""
    try:
        data, _st = ingest.read_regular(path, max_bytes)
    except ingest.IngestError:
        return formats.Completeness.UNKNOWN
    return formats.completeness(data)


def judge(
    entry: Entry,
    path: Path,
    st: os.stat_result,
    now: float,
    *,
    settle: float,
    incomplete_wait: float,
    paused: bool,
    max_bytes: int,
    caption_wait: float | None = None,
) -> Verdict:
    """Advance ``entry`` for the regular file ``path`` (``st`` from ``lstat``) at ``now``.
    ``caption_wait``: how long a photo without a caption waits for one (default
    :data:`CAPTION_SETTLE_FACTOR` times ``settle``)."""
    sig = (st.st_size, st.st_mtime_ns)
    side = sidecar_sig(path)
    if sig != entry.sig or side != entry.side_sig:
        entry.sig = sig
        entry.side_sig = side
        entry.stable_since = now
        entry.state = IntakeState.SETTLING
        return Verdict.WAIT
    if now - entry.stable_since < settle or now - entry.last_event < settle:
        if entry.state is not IntakeState.INCOMPLETE:
            entry.state = IntakeState.SETTLING
        return Verdict.WAIT
    if now < entry.not_before or paused:
        entry.state = IntakeState.PAUSED
        return Verdict.WAIT
    if entry.judged_sig != sig:
        entry.completeness = file_completeness(path, max_bytes)
        entry.judged_sig = sig
    if entry.completeness is formats.Completeness.INCOMPLETE:
        entry.state = IntakeState.INCOMPLETE
        if now - entry.stable_since >= incomplete_wait:
            return Verdict.SET_ASIDE
        return Verdict.WAIT
    wait = CAPTION_SETTLE_FACTOR * settle if caption_wait is None else caption_wait
    if side is None and now - entry.first_seen < wait:  # complete: a late caption may still come
        entry.state = IntakeState.SETTLING
        return Verdict.WAIT
    entry.state = IntakeState.READY
    return Verdict.READY
