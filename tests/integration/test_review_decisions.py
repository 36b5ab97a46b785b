"""The command-line twins of the web's face decisions (``review confirm|reject-match|not-a-face``)
and the pipeline's rule under them: a confirmed face is decided like a match, so the consent rule
alone says where it is visible; a template is kept from a confirmation only with face_matching."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photoguard.cli.app import main
from photoguard.core.overrides import FaceOverride, OverrideKind
from photoguard.core.records import Box
from photoguard.followup.review import Review, ReviewError
from photoguard.photo.pipeline import Pipeline
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
from tests.support.photos import make_photo, photo_bytes
from tests.support.school import make_school

pytestmark = pytest.mark.timeout(60)


def _near_school(tmp_path: Path) -> tuple[Path, Pipeline, str]:
    root, pipe = make_school(tmp_path)
    pipe.templates = FakeTemplates({FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2)})  # type: ignore[assignment]
    res = pipe.process_path(make_photo(root / "inbox" / "juf-anne" / "kamp.jpg", seed=7), uploader="juf-anne")
    assert res.status.value == "held" and res.quarantine_id
    return root, pipe, res.quarantine_id


def _faces_in(path: Path) -> set[Box]:
    img = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
    return {d.box for d in FakeDetector([FACE_A, FACE_B]).detect(img)}


def _live(pipe: Pipeline, root: Path, sha: str) -> dict[str, tuple[list[str], set[Box]]]:
    rows = pipe.store.query(
        "SELECT channel, path, visible_pupils FROM outputs WHERE source_sha256=? AND withdrawn_at IS NULL", (sha,)
    )
    return {str(r["channel"]): (json.loads(r["visible_pupils"]), _faces_in(root / r["path"])) for r in rows}


def test_confirm_then_approve_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, pipe, qid = _near_school(tmp_path)

    def injected(_root: Path, _settings: Any) -> Pipeline:
        return pipe

    base = ["--root", str(root), "review"]
    assert main([*base, "confirm", qid, "1", "1002"]) == 1  # not the candidate
    assert main([*base, "not-a-face", qid, "1"]) == 1  # it has a candidate: a face
    assert main([*base, "confirm", qid, "9", "1001"]) == 1  # no such face
    assert main([*base, "confirm", qid, "1", "1001"]) == 0
    assert main([*base, "not-a-face", qid, "2"]) == 0
    out = capsys.readouterr().out
    assert "face 1: confirmed as pupil 1001" in out and "face 2: not a face" in out
    assert main([*base, "show", qid]) == 0
    shown = capsys.readouterr().out
    assert "candidate=1001 reviewed=confirm" in shown and "not a face (no fill)" in shown
    assert main([*base, "approve", qid], pipeline_factory=injected) == 0
    sha = str(pipe.store.one("SELECT sha256 FROM quarantine WHERE id=?", (qid,))["sha256"])  # type: ignore[index]
    live = _live(pipe, root, sha)
    for ch in ("newsletter", "parro", "guide"):
        assert live[ch] == (["1001"], {FACE_A, FACE_B}), ch  # Emma shown, the blob not filled
    for ch in ("website", "social"):  # published at first with both redacted; untouched
        assert live[ch] == ([], set()), ch
    events = pipe.store.query("SELECT pupil_id, detail FROM audit WHERE event='review.face' ORDER BY id")
    assert [(r["pupil_id"], json.loads(r["detail"])["kind"]) for r in events] == [
        ("1001", "confirm"),
        (None, "not_a_face"),
    ]


def test_reject_match_on_the_command_line(tmp_path: Path) -> None:
    root, pipe, qid = _near_school(tmp_path)
    assert main(["--root", str(root), "review", "reject-match", qid, "2"]) == 1  # no candidate there
    assert main(["--root", str(root), "review", "reject-match", qid, "1"]) == 0
    item = Review(root, pipe.settings, pipe.store, pipe).get(qid)
    assert item.faces[0]["reviewed"] == "stranger"
    assert set(item.faces[0]["decision"].values()) == {"redact"}  # nothing held any more


def test_a_decision_on_a_resolved_item_is_refused(tmp_path: Path) -> None:
    root, pipe, qid = _near_school(tmp_path)
    rv = Review(root, pipe.settings, pipe.store, pipe)
    rv.reject(qid)
    with pytest.raises(ReviewError):
        rv.decide(qid, 1, OverrideKind.CONFIRM, "1001")


def test_a_confirmation_never_shows_a_pupil_without_consent(tmp_path: Path) -> None:
    """The pipeline with a confirmation for every channel: Emma (1001) only where she consents;
    Daan (1002, no face_matching consent) nowhere, even when a reviewer says it is him."""
    root, pipe = make_school(tmp_path)
    data = photo_bytes(seed=31)
    res = pipe.process_bytes(
        data, source="t", stem="t", rerender=True, approved_channels=[c.name for c in pipe.settings.channels],
        overrides=[FaceOverride(FACE_B, OverrideKind.CONFIRM, "1002")],
    )
    assert res.status.value == "published"
    live = _live(pipe, root, str(res.sha256))
    for ch in ("newsletter", "parro", "guide"):
        assert live[ch] == (["1001"], {FACE_A}), ch
    for ch in ("website", "social"):
        assert live[ch] == ([], set()), ch


def test_learning_a_template_needs_face_matching_consent(tmp_path: Path) -> None:
    root, pipe, qid = _near_school(tmp_path)
    rv = Review(root, pipe.settings, pipe.store, pipe)
    vault = pipe.template_vault()
    before = vault.count("1001")
    rv.decide(qid, 1, OverrideKind.CONFIRM, "1001", account=3, learn=True)
    assert vault.count("1001") == before + 1
    ev = pipe.store.one("SELECT pupil_id, detail FROM audit WHERE event='review.template'")
    assert ev is not None and ev["pupil_id"] == "1001" and json.loads(ev["detail"])["added"] is True
    # withdraw Emma's face_matching consent: a confirmation may no longer keep a template
    from photoguard.ledger.consent import Registry

    Registry(pipe.store).set_consent("1001", "face_matching", False, source="test")
    with pytest.raises(ReviewError, match="no template kept"):
        rv._learn(rv.get(qid), FACE_A, "1001", 3)
    rv.decide(qid, 1, OverrideKind.STRANGER, account=3)
    with pytest.raises(ReviewError, match="no template kept"):  # refused before it is recorded
        rv.decide(qid, 1, OverrideKind.CONFIRM, "1001", account=3, learn=True)
    assert rv.get(qid).faces[0]["reviewed"] == "stranger"
    assert vault.count("1001") == before + 1


def test_decisions_per_face_are_refused_for_a_clip(tmp_path: Path) -> None:
    """A clip's faces are tracks over many frames: approve or reject it as a whole."""
    from tests.support.clips import BLUE, RED, BlobDetector, MovingFace, TintTemplates, make_clip

    root, pipe = make_school(tmp_path, detector=BlobDetector(), templates=TintTemplates())
    unsure = MovingFace(RED, 20, 30, dx=1, seed=5, turns_into=BLUE, turn_at=8)
    res = pipe.process_bytes(make_clip([unsure], frames=20), source="c.mov", stem="toneel", suffix=".mov", group="7")
    assert res.status.value == "held" and res.quarantine_id
    rv = Review(root, pipe.settings, pipe.store, pipe)
    assert rv.is_clip(res.quarantine_id)
    with pytest.raises(ReviewError, match="is a clip"):
        rv.decide(res.quarantine_id, 1, OverrideKind.CONFIRM, "1001")
    assert rv.decisions(res.quarantine_id) == []
