"""The photo's group comes from the teacher's inbox folder (``service.folders``), in ``photoguard
process`` exactly as in ``watch``, and makes matching group-first: a face that is close to a pupil
of the photo's group is recognised; the same face in another group's photo must pass the
stricter outside-group rule.

Emma (1001, group 7, newsletter yes, enrolled as ``fake_vector(1)``) and a face at Euclidean
distance 0.43 from her template: within ``match_distance`` (0.45), outside
``outside_group_distance`` (0.40), within ``review_distance`` (0.55).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photoguard.cli import main
from photoguard.config import Settings
from photoguard.core.records import Detection, FaceAction, MatchKind, PhotoStatus
from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import WatchService
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import make_school
from tests.support.threads import wait_for

FOLDERS = '[{folder = "groep7", group = "7"}, {folder = "groep8", group = "8"}]'


def _near_emma(distance: float = 0.43) -> np.ndarray:
    u = np.random.default_rng(42).normal(size=128).astype(np.float32)
    return (fake_vector(1) + distance * u / np.linalg.norm(u)).astype(np.float32)


def _templates() -> FakeTemplates:
    return FakeTemplates({FACE_A: _near_emma(), FACE_B: fake_vector(2)})


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    return make_school(tmp_path, templates=_templates(), config={"folders": FOLDERS})


@pytest.mark.parametrize(
    ("folder", "emma_visible"),
    [("groep7", True), ("groep8", False), ("juf-anne", True)],  # juf-anne: no group, one rule for all
)
def test_process_path_takes_the_group_from_the_folder(
    school: tuple[Path, Pipeline], folder: str, emma_visible: bool
) -> None:
    root, pipe = school
    res = pipe.process_path(make_photo(root / "inbox" / folder / "IMG_1.jpg", seed=3))
    emma = next(f for f in res.faces if f.box == FACE_A)
    if emma_visible:
        assert emma.match.kind is MatchKind.MATCH and emma.match.pupil_id == "1001"
        assert emma.verdicts["newsletter"].action is FaceAction.VISIBLE
        assert res.status is PhotoStatus.PUBLISHED
    else:
        # outside her group the face needs the stricter rule: near her, so held where she could be shown
        assert emma.match.kind is MatchKind.NEAR
        assert emma.verdicts["newsletter"].action is FaceAction.HOLD
        assert emma.verdicts["website"].action is FaceAction.REDACT  # she has no website consent
        assert res.status is PhotoStatus.HELD and "website" not in res.held_channels


def test_an_explicit_group_overrides_the_folder(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    res = pipe.process_path(make_photo(root / "inbox" / "groep8" / "IMG_2.jpg", seed=4), group="7")
    emma = next(f for f in res.faces if f.box == FACE_A)
    assert emma.match.kind is MatchKind.MATCH


def test_a_group_without_registered_pupils_puts_everyone_outside(tmp_path: Path) -> None:
    root, pipe = make_school(
        tmp_path, templates=_templates(), config={"folders": '[{folder = "x", group = "99"}]'}
    )
    res = pipe.process_path(make_photo(root / "inbox" / "x" / "IMG_3.jpg", seed=5))
    assert next(f for f in res.faces if f.box == FACE_A).match.kind is MatchKind.NEAR


def test_cli_process_uses_the_folders_group(school: tuple[Path, Pipeline]) -> None:
    root, _ = school

    def factory(r: Path, s: Settings) -> Pipeline:
        return Pipeline(r, s, detector=FakeDetector([FACE_A, FACE_B]), templates=_templates())  # type: ignore[arg-type]

    held = make_photo(root / "inbox" / "groep8" / "IMG_4.jpg", seed=6)
    shown = make_photo(root / "inbox" / "groep7" / "IMG_5.jpg", seed=7)
    main(["--root", str(root), "process", str(held), str(shown)], pipeline_factory=factory)
    rows = {r["grp"]: r["status"] for r in school[1].store.query("SELECT grp, status FROM photos")}
    assert rows == {"8": "held", "7": "published"}


def test_watch_uses_the_folders_group(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    svc = WatchService(
        root, pipe.settings, pipe, settle_seconds=0.3, tick_seconds=0.05, heartbeat_seconds=0.2,
        incomplete_grace=3.0, retry_seconds=0.3, min_free_bytes=0, rescan_seconds=300,
    )
    svc.start()
    try:
        make_photo(root / "inbox" / "groep8" / "IMG_6.jpg", seed=8)
        make_photo(root / "inbox" / "groep7" / "IMG_7.jpg", seed=9)
        assert wait_for(lambda: len(pipe.store.query("SELECT 1 FROM photos")) == 2, 20)
    finally:
        svc.stop()
    rows = {r["grp"]: r["status"] for r in pipe.store.query("SELECT grp, status FROM photos")}
    assert rows == {"8": "held", "7": "published"}
    newsletter = pipe.store.query("SELECT visible_pupils FROM outputs WHERE channel='newsletter'")
    assert [r["visible_pupils"] for r in newsletter] == ['["1001"]']


class _LandmarkDetector(FakeDetector):
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return [
            Detection(d.box, d.score, d.source, tuple((d.box.x1 + k, d.box.y1 + k) for k in range(5)))
            for d in super().detect(rgb)
        ]


def test_the_detectors_landmarks_reach_the_template_model(tmp_path: Path) -> None:
    templates = _templates()
    root, pipe = make_school(tmp_path, detector=_LandmarkDetector([FACE_A, FACE_B]), templates=templates)
    pipe.process_path(make_photo(root / "inbox" / "juf-anne" / "IMG_8.jpg", seed=10))
    assert len(templates.landmarks_seen) == 2
    assert all(lm is not None and len(lm) == 5 for lm in templates.landmarks_seen)  # type: ignore[arg-type]
