"""Held photos: held by the running service (real watchdog observer), then listed, shown, approved
per channel (only the held channels are published; nothing twice) or rejected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photoguard.cli.app import main
from photoguard.followup.review import Review, ReviewError
from photoguard.ledger.db import Store
from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import WatchService
from tests.support.models import FACE_A, FACE_B, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(60)
HELD = {"newsletter", "parro", "guide"}  # Emma (near match) has consent there


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    with thread_guard():
        yield


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, Pipeline, str]]:
    """A photo dropped into the watched inbox whose face nearly matches pupil 1001: held for the
    channels where 1001 has consent, published (face redacted) on website and social."""
    root, pipe = make_school(tmp_path)
    pipe.templates = FakeTemplates({FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2)})  # type: ignore[assignment]
    svc = WatchService(root, pipe.settings, pipe, settle_seconds=0.2, tick_seconds=0.05, min_free_bytes=0)
    svc.start()
    try:
        make_photo(root / "inbox" / "juf-anne" / "schoolreis.jpg", seed=7)
        assert wait_for(lambda: svc.counts.get("held") == 1, 15)
    finally:
        svc.stop()
    row = pipe.store.one("SELECT id FROM quarantine")
    assert row is not None
    yield root, pipe, str(row["id"])
    pipe.store.close()


def _outputs(store: Store) -> dict[str, int]:
    rows = store.query("SELECT channel, COUNT(*) AS n FROM outputs WHERE withdrawn_at IS NULL GROUP BY channel")
    return {r["channel"]: r["n"] for r in rows}


def _files(root: Path, channel: str) -> list[Path]:
    return [p for p in (root / "outbox" / channel).iterdir() if not p.name.startswith(".")]


def test_list_and_show(held: tuple[Path, Pipeline, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe, qid = held
    rv = Review(root, pipe.settings, pipe.store)
    items = rv.list()
    assert [i.id for i in items] == [qid]
    assert set(items[0].held_channels) == HELD
    assert set(items[0].published) == {"website", "social"}
    item = rv.get(qid)
    assert len(item.faces) == 2
    preview = rv.channel_preview(item)
    assert preview["website"].startswith("published already")
    assert preview["newsletter"] == "on approval: 0 face(s) visible, 2 redacted"

    assert main(["--root", str(root), "review", "list"]) == 0
    out = capsys.readouterr().out
    assert qid in out and "1 item(s)" in out
    assert main(["--root", str(root), "review", "show", qid, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == qid and set(shown["channels"]) == {c.name for c in pipe.settings.channels}
    assert main(["--root", str(root), "review", "show", qid]) == 0
    text = capsys.readouterr().out
    assert "faces: 2" in text and "Emma" not in text and "Vries" not in text
    assert main(["--root", str(root), "review", "show", "nope"]) == 1


def test_approve_one_channel_then_the_rest_publishes_only_held_channels(
    held: tuple[Path, Pipeline, str],
) -> None:
    root, pipe, qid = held
    rv = Review(root, pipe.settings, pipe.store, pipe)
    assert _outputs(pipe.store) == {"website": 1, "social": 1}

    res = rv.approve(qid, "newsletter")
    assert set(res.outputs) == {"newsletter"}, "only the approved channel is published"
    assert set(res.held_channels) == {"parro", "guide"}
    assert _outputs(pipe.store) == {"website": 1, "social": 1, "newsletter": 1}
    assert (root / "quarantine" / qid).is_dir(), "still held for parro and guide"
    assert set(rv.get(qid).held_channels) == {"parro", "guide"}

    with pytest.raises(ReviewError, match="not held"):
        rv.approve(qid, "website")

    res = rv.approve(qid)
    assert set(res.outputs) == {"parro", "guide"}
    assert res.status.value == "published"
    counts = _outputs(pipe.store)
    assert counts == {c: 1 for c in ("website", "social", "newsletter", "parro", "guide")}
    for ch in counts:
        assert len(_files(root, ch)) == 1, ch
    assert not (root / "quarantine" / qid).exists(), "the original is deleted once published"
    assert rv.list() == []
    q = pipe.store.one("SELECT status, resolved_at FROM quarantine WHERE id=?", (qid,))
    assert q is not None and q["status"] == "approved" and q["resolved_at"]
    assert pipe.store.one("SELECT 1 FROM deletion_log WHERE ref=?", (qid,)) is not None
    audit = pipe.store.query("SELECT event, detail FROM audit WHERE event LIKE 'review.%'")
    assert [a["event"] for a in audit] == ["review.approve", "review.approve"]
    assert "Emma" not in json.dumps([dict(a) for a in audit])
    with pytest.raises(ReviewError, match="already resolved"):
        rv.approve(qid)


def test_approved_near_match_is_redacted(held: tuple[Path, Pipeline, str]) -> None:
    root, pipe, qid = held
    rv = Review(root, pipe.settings, pipe.store, pipe)
    res = rv.approve(qid)
    for face in res.faces:
        assert all(a.action.value == "redact" for a in face.verdicts.values())


def test_reject_deletes_the_original_and_logs_it(
    held: tuple[Path, Pipeline, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, pipe, qid = held
    assert main(["--root", str(root), "review", "reject", qid]) == 0
    assert not (root / "quarantine" / qid).exists()
    dl = pipe.store.one("SELECT kind, reason FROM deletion_log WHERE ref=?", (qid,))
    assert dl is not None and dl["kind"] == "quarantine_original" and "rejected" in dl["reason"]
    ev = pipe.store.one("SELECT detail FROM audit WHERE event='review.reject'")
    assert ev is not None and json.loads(ev["detail"]) == {"id": qid}
    assert main(["--root", str(root), "review", "reject", qid]) == 1
    assert "already resolved" in capsys.readouterr().err
    assert _outputs(pipe.store) == {"website": 1, "social": 1}, "published channels untouched"


def test_approve_through_the_command(
    held: tuple[Path, Pipeline, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, pipe, qid = held

    def injected(_root: Path, _settings: Any) -> Pipeline:
        return pipe

    assert main(["--root", str(root), "review", "approve", qid, "--channel", "bogus"], pipeline_factory=injected) == 1
    assert "not held" in capsys.readouterr().err
    assert main(["--root", str(root), "review", "approve", qid, "--channel", "guide"], pipeline_factory=injected) == 0
    out = capsys.readouterr().out
    assert "published guide" in out and "still held" in out
    assert _outputs(pipe.store)["guide"] == 1


def test_rejected_file_cannot_be_approved(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)
    bad = root / "inbox" / "x" / "notes.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_text("this is not a photo")
    res = pipe.process_path(bad)
    rv = Review(root, pipe.settings, pipe.store, pipe)
    with pytest.raises(ReviewError, match="rejected"):
        rv.approve(str(res.quarantine_id))
    rv.reject(str(res.quarantine_id))
    assert rv.list() == []
    pipe.store.close()


def test_dropping_a_reviewed_photo_again_does_not_republish(held: tuple[Path, Pipeline, str]) -> None:
    """After a reject the same photo may come back: it is held again for the held channels, and
    the channels published before are not published a second time."""
    root, pipe, qid = held
    Review(root, pipe.settings, pipe.store).reject(qid)
    again = make_photo(root / "inbox" / "juf-anne" / "again.jpg", seed=7)
    res = pipe.process_path(again)
    assert res.status.value == "held" and set(res.held_channels) == HELD
    assert res.outputs == {}
    assert _outputs(pipe.store) == {"website": 1, "social": 1}
